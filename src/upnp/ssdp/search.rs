//! M-SEARCH answers (UDA 2.0 §1.3): which searches are answered, by what, and when. Sans-IO:
//! searches come in through [`SearchResponder::handle_search`] with `now`, responses leave
//! through [`SearchResponder::poll_transmit`] once their random delay is over.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;
use uuid::Uuid;

use super::device::{Answer, DeviceAdverts};
use super::limiter::SourceLimiter;
use super::message::{SsdpMessage, StartLine};
use crate::upnp::net::ServedInterface;

/// The SSDP multicast group.
pub(crate) const MULTICAST_ADDR: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
/// Largest MX honoured (UDA 2.0 §1.3.2).
const MAX_MX: u64 = 5;

/// One search response to send.
#[derive(Debug, Clone)]
pub(crate) struct SearchResponse {
    /// The searching control point.
    pub(crate) to: SocketAddrV4,
    /// The served interface on the control point's subnet (LOCATION and source address).
    pub(crate) interface: Ipv4Addr,
    /// The answering device.
    pub(crate) device: Arc<DeviceAdverts>,
    /// What it answers.
    pub(crate) answer: Answer,
    /// BOOTID.UPNP.ORG.
    pub(crate) boot_id: u32,
}

/// The responder's knobs.
#[derive(Debug, Clone)]
pub(crate) struct SearchConfig {
    /// Searches per source in a burst.
    pub(crate) burst: u32,
    /// One more search per source each `refill`.
    pub(crate) refill: Duration,
    /// Most sources tracked by the rate limiter.
    pub(crate) max_sources: usize,
    /// Most responses waiting for their delay.
    pub(crate) max_pending: usize,
}

/// What became of one search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SearchOutcome {
    /// Responses were queued (possibly none: nothing matched).
    Answered {
        /// Responses queued.
        responses: usize,
        /// Responses dropped because too many were already waiting.
        dropped: usize,
    },
    /// The search was silently dropped.
    Ignored(IgnoreReason),
}

/// Why a search was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IgnoreReason {
    /// Not an M-SEARCH.
    NotASearch,
    /// From an IPv6 source.
    NotIpv4,
    /// MAN is missing or not `"ssdp:discover"`.
    BadMan,
    /// ST is missing or empty.
    NoSearchTarget,
    /// HOST is missing.
    NoHost,
    /// A multicast search without MX (UDA 2.0 §1.3.2: discard).
    NoMx,
    /// MX is not a number.
    BadMx,
    /// The sender is on none of the served subnets.
    OffSubnet,
    /// The sender has used up its searches.
    RateLimited,
}

#[derive(Debug)]
struct Pending {
    due: Instant,
    seq: u64,
    response: SearchResponse,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Answers M-SEARCH for every advertised device.
#[derive(Debug)]
pub(crate) struct SearchResponder {
    config: SearchConfig,
    devices: Vec<Arc<DeviceAdverts>>,
    interfaces: Vec<ServedInterface>,
    boot_id: u32,
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    limiter: SourceLimiter,
    rng: SmallRng,
}

impl SearchResponder {
    /// A responder for `devices` on `interfaces`.
    pub(crate) fn new(
        config: SearchConfig,
        interfaces: Vec<ServedInterface>,
        boot_id: u32,
        devices: Vec<Arc<DeviceAdverts>>,
        seed: u64,
    ) -> Self {
        let limiter = SourceLimiter::new(config.burst, config.refill, config.max_sources);
        Self {
            config,
            devices,
            interfaces,
            boot_id,
            pending: BinaryHeap::new(),
            seq: 0,
            limiter,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Replaces the devices; waiting responses of removed devices are dropped.
    pub(crate) fn handle_devices(&mut self, devices: Vec<Arc<DeviceAdverts>>) {
        let kept: HashSet<Uuid> = devices.iter().map(|d| d.udn()).collect();
        self.pending
            .retain(|p| kept.contains(&p.0.response.device.udn()));
        self.devices = devices;
    }

    /// Replaces the interfaces and BOOTID; waiting responses (old LOCATION) are dropped.
    pub(crate) fn handle_interfaces(&mut self, interfaces: Vec<ServedInterface>, boot_id: u32) {
        self.pending.clear();
        self.interfaces = interfaces;
        self.boot_id = boot_id;
    }

    /// Stops answering: waiting responses are dropped.
    pub(crate) fn handle_shutdown(&mut self) {
        self.pending.clear();
        self.devices.clear();
    }

    /// Takes in one received message from `from`; M-SEARCH from a served subnet is answered
    /// after a random delay within MX (multicast) or at once (unicast).
    pub(crate) fn handle_search(
        &mut self,
        message: &SsdpMessage,
        from: SocketAddr,
        now: Instant,
    ) -> SearchOutcome {
        match self.check(message, from, now) {
            Ok((to, interface, mx)) => self.answer(message, to, interface, mx, now),
            Err(reason) => SearchOutcome::Ignored(reason),
        }
    }

    /// The checks before answering: the sender, MX in seconds (0 for unicast), and the
    /// interface to answer from.
    fn check(
        &mut self,
        message: &SsdpMessage,
        from: SocketAddr,
        now: Instant,
    ) -> Result<(SocketAddrV4, Ipv4Addr, u64), IgnoreReason> {
        if message.start_line() != StartLine::Search {
            return Err(IgnoreReason::NotASearch);
        }
        let SocketAddr::V4(from) = from else {
            return Err(IgnoreReason::NotIpv4);
        };
        if message.header("MAN") != Some("\"ssdp:discover\"") {
            return Err(IgnoreReason::BadMan);
        }
        if message.header("ST").is_none_or(str::is_empty) {
            return Err(IgnoreReason::NoSearchTarget);
        }
        let host = message.header("HOST").ok_or(IgnoreReason::NoHost)?;
        let mx = if is_multicast_host(host) {
            let mx = message.header("MX").ok_or(IgnoreReason::NoMx)?;
            if mx.is_empty() || !mx.bytes().all(|b| b.is_ascii_digit()) {
                return Err(IgnoreReason::BadMx);
            }
            // All digits: only overflow fails, and that is more than 5.
            mx.parse::<u64>().unwrap_or(MAX_MX).min(MAX_MX)
        } else {
            0
        };
        let interface = self
            .interfaces
            .iter()
            .find(|i| i.contains(*from.ip()))
            .ok_or(IgnoreReason::OffSubnet)?
            .addr;
        if !self.limiter.allow(*from.ip(), now) {
            return Err(IgnoreReason::RateLimited);
        }
        Ok((from, interface, mx))
    }

    fn answer(
        &mut self,
        message: &SsdpMessage,
        to: SocketAddrV4,
        interface: Ipv4Addr,
        mx: u64,
        now: Instant,
    ) -> SearchOutcome {
        let st = message.header("ST").unwrap_or_default();
        let (mut responses, mut dropped) = (0, 0);
        for device in &self.devices {
            for answer in device.answers(st) {
                if self.pending.len() >= self.config.max_pending {
                    dropped += 1;
                    continue;
                }
                // UDA 2.0 §1.3.3: multiple responses spread at random over 0..MX.
                let delay = if mx == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_millis(self.rng.random_range(0..mx * 1000))
                };
                self.seq += 1;
                self.pending.push(Reverse(Pending {
                    due: now + delay,
                    seq: self.seq,
                    response: SearchResponse {
                        to,
                        interface,
                        device: Arc::clone(device),
                        answer,
                        boot_id: self.boot_id,
                    },
                }));
                responses += 1;
            }
        }
        SearchOutcome::Answered { responses, dropped }
    }

    /// The next response due at `now`.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<SearchResponse> {
        if self.pending.peek()?.0.due > now {
            return None;
        }
        self.pending.pop().map(|p| p.0.response)
    }

    /// When the next response is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending.peek().map(|p| p.0.due)
    }
}

/// Whether a HOST value names the SSDP multicast group (port optional).
fn is_multicast_host(host: &str) -> bool {
    let addr = host.split_once(':').map_or(host, |(addr, _)| addr);
    addr.parse::<Ipv4Addr>() == Ok(MULTICAST_ADDR)
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
