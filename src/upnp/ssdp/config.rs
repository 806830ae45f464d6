//! What the SSDP face is started with.

use std::net::SocketAddr;
use std::time::Duration;

use crate::upnp::net::ServedInterface;

/// The smallest CACHE-CONTROL max-age UDA 2.0 §1.2.2 allows (30 minutes).
pub const MIN_MAX_AGE: Duration = Duration::from_secs(1800);

/// How the SSDP face runs.
#[derive(Debug, Clone)]
pub struct SsdpConfig {
    /// The interfaces to advertise on and answer searches from.
    pub interfaces: Vec<ServedInterface>,
    /// UDP port to receive M-SEARCH on: 1900 in production, 0 (ephemeral) in tests.
    pub port: u16,
    /// Join 239.255.255.250 on each interface; tests pass `false`.
    pub join_multicast: bool,
    /// Port of the HTTP listener, for LOCATION.
    pub http_port: u16,
    /// BOOTID.UPNP.ORG at start; each interface change sends `ssdp:update` and moves to the
    /// next value.
    pub boot_id: u32,
    /// CONFIGID.UPNP.ORG.
    pub config_id: u32,
    /// SERVER header, `<OS>/<version> UPnP/2.0 iotmc-gateway/<version>`.
    pub server: String,
    /// Vendor domain of the `MANAGEMENT.<vendor_domain>` header, e.g. `example.com`.
    pub vendor_domain: String,
    /// CACHE-CONTROL max-age; raised to [`MIN_MAX_AGE`] when lower.
    pub max_age: Duration,
    /// Where NOTIFY datagrams go instead of 239.255.255.250:1900 (tests).
    pub notify_to: Option<SocketAddr>,
    /// Pacing and flood-control knobs.
    pub tuning: SsdpTuning,
}

/// Pacing and flood-control knobs; [`Default`] gives values fit for thousands of devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsdpTuning {
    /// NOTIFY datagrams per second, over all devices and interfaces. Announcements queue
    /// behind this budget, so thousands of devices never burst.
    pub packets_per_second: u32,
    /// NOTIFY datagrams per second while sending byebye at shutdown, so shutdown stays short.
    pub shutdown_packets_per_second: u32,
    /// Copies of each alive, update and byebye (UDA 2.0 §1.2.2 advises more than one). The
    /// periodic re-announcements and the byebyes at shutdown go once.
    pub repeat: u8,
    /// Searches a single source address may make in a burst before it is rate limited.
    pub search_burst: u32,
    /// A rate-limited source earns one more search each `search_refill`.
    pub search_refill: Duration,
    /// Most source addresses the rate limiter tracks; a new source is refused while the table
    /// is full of sources still being limited.
    pub max_search_sources: usize,
    /// Most search responses waiting for their random delay; later ones are dropped.
    pub max_pending_responses: usize,
}

impl Default for SsdpTuning {
    fn default() -> Self {
        Self {
            packets_per_second: 100,
            shutdown_packets_per_second: 1000,
            repeat: 2,
            search_burst: 10,
            search_refill: Duration::from_millis(500),
            max_search_sources: 1024,
            max_pending_responses: 20_000,
        }
    }
}

impl SsdpConfig {
    /// A configuration for `interfaces` on port 1900 with the default tuning and a 30-minute
    /// max-age; the caller fills in the rest.
    pub fn new(
        interfaces: Vec<ServedInterface>,
        http_port: u16,
        server: String,
        vendor_domain: String,
    ) -> Self {
        Self {
            interfaces,
            port: 1900,
            join_multicast: true,
            http_port,
            boot_id: 1,
            config_id: 1,
            server,
            vendor_domain,
            max_age: MIN_MAX_AGE,
            notify_to: None,
            tuning: SsdpTuning::default(),
        }
    }

    /// The max-age actually advertised, in seconds.
    pub(crate) fn max_age_secs(&self) -> u64 {
        self.max_age.max(MIN_MAX_AGE).as_secs()
    }
}
