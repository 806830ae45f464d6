//! SSDP discovery (UDA 2.0 §1): advertisements, M-SEARCH answers and the multicast sockets.
//!
//! Placeholder with the interface the face uses; the implementation lands from its branch.

use std::net::SocketAddr;
use std::time::Duration;

use crate::upnp::net::ServedInterface;

/// A device to advertise.
#[derive(Debug, Clone)]
pub struct AdvertisedDevice {
    /// UDN.
    pub udn: uuid::Uuid,
    /// Device type.
    pub device_type: String,
    /// Service types.
    pub service_types: Vec<String>,
    /// Description path.
    pub description_path: String,
    /// Capabilities.
    pub capabilities: Vec<String>,
}

/// Config.
#[derive(Debug, Clone)]
pub struct SsdpConfig {
    /// Interfaces.
    pub interfaces: Vec<ServedInterface>,
    /// Port.
    pub port: u16,
    /// Join.
    pub join_multicast: bool,
    /// HTTP port.
    pub http_port: u16,
    /// Boot id.
    pub boot_id: u32,
    /// Config id.
    pub config_id: u32,
    /// Server.
    pub server: String,
    /// Vendor domain.
    pub vendor_domain: String,
    /// Max age.
    pub max_age: Duration,
}

/// Ssdp.
#[derive(Debug)]
pub struct Ssdp;

/// Handle.
#[derive(Debug)]
pub struct SsdpHandle {
    local: SocketAddr,
}

impl Ssdp {
    /// Start.
    pub async fn start(
        config: SsdpConfig,
        _devices: Vec<AdvertisedDevice>,
    ) -> std::io::Result<SsdpHandle> {
        Ok(SsdpHandle {
            local: SocketAddr::from(([127, 0, 0, 1], config.port)),
        })
    }
}

impl SsdpHandle {
    /// Local addr.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
    /// Shutdown.
    pub async fn shutdown(self) {}
}
