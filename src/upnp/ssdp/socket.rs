//! The one SSDP driver task: it owns the sockets, the announce scheduler and the search
//! responder, and `select!`s over received datagrams, the next timer, device and interface
//! changes and shutdown. Callers hold an [`SsdpHandle`].
//!
//! Sockets: one receive socket on `0.0.0.0:<port>` (SO_REUSEADDR and SO_REUSEPORT, so other
//! SSDP stacks on the host keep working), joined to 239.255.255.250 on each served interface;
//! one send socket per interface, bound to its address, with IP_MULTICAST_IF, TTL 2 and loop on.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::RngExt;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::announce::{AnnounceConfig, Announcer};
use super::config::SsdpConfig;
use super::device::{AdvertisedDevice, DeviceAdverts, check_token};
use super::message::{MAX_DATAGRAM, StartLine, parse};
use super::render::{HeaderValues, MAX_SEND};
use super::search::{MULTICAST_ADDR, SearchConfig, SearchOutcome, SearchResponder};
use crate::upnp::net::ServedInterface;

/// The SSDP multicast group and port.
const MULTICAST_GROUP: SocketAddr =
    SocketAddr::V4(std::net::SocketAddrV4::new(MULTICAST_ADDR, 1900));
/// IP_MULTICAST_TTL for NOTIFY (UDA 2.0 §1.1.3 advises 2).
const MULTICAST_TTL: u32 = 2;
/// Most search responses sent before the driver looks at its inputs again.
const RESPONSES_PER_TURN: usize = 256;

/// Starts the SSDP face.
#[derive(Debug)]
pub struct Ssdp;

impl Ssdp {
    /// Binds the sockets, starts announcing `devices` and answering searches, and returns the
    /// handle that controls it. Fails if the receive socket cannot be bound or the
    /// configuration holds a value that would break a header. Devices that cannot be
    /// advertised (bad type URN, bad path) are logged and left out.
    pub async fn start(
        config: SsdpConfig,
        devices: Vec<AdvertisedDevice>,
    ) -> io::Result<SsdpHandle> {
        check_config(&config)?;
        let recv = receive_socket(config.port)?;
        let local_addr = recv.local_addr()?;
        let max_age = Duration::from_secs(config.max_age_secs());
        let tuning = &config.tuning;
        let devices = adverts(devices);
        let mut rng = rand::rng();
        let now = Instant::now();
        let announcer = Announcer::new(
            AnnounceConfig {
                max_age,
                packets_per_second: tuning.packets_per_second,
                shutdown_packets_per_second: tuning.shutdown_packets_per_second,
                repeat: tuning.repeat,
            },
            config.interfaces.iter().map(|i| i.addr).collect(),
            config.boot_id,
            devices.clone(),
            now,
            rng.random(),
        );
        let responder = SearchResponder::new(
            SearchConfig {
                burst: tuning.search_burst,
                refill: tuning.search_refill,
                max_sources: tuning.max_search_sources,
                max_pending: tuning.max_pending_responses,
            },
            config.interfaces.clone(),
            config.boot_id,
            devices,
            rng.random(),
        );
        let mut driver = Driver {
            recv,
            senders: Vec::new(),
            interfaces: Vec::new(),
            join_multicast: config.join_multicast,
            notify_to: config.notify_to.unwrap_or(MULTICAST_GROUP),
            headers: HeaderValues {
                server: config.server,
                vendor_domain: config.vendor_domain,
                http_port: config.http_port,
                max_age_secs: max_age.as_secs(),
                config_id: config.config_id,
            },
            announcer,
            responder,
        };
        driver.set_sockets(config.interfaces.clone());
        driver.check_budget();
        let (devices_tx, devices_rx) = watch::channel(Vec::new());
        let (interfaces_tx, interfaces_rx) = watch::channel(config.interfaces);
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        tracing::info!(%local_addr, "SSDP started");
        let task = tokio::spawn(driver.run(devices_rx, interfaces_rx, shutdown_rx));
        Ok(SsdpHandle {
            local_addr,
            devices: devices_tx,
            interfaces: interfaces_tx,
            shutdown: shutdown_tx,
            task,
        })
    }
}

/// Controls a running SSDP face. Dropping it without [`SsdpHandle::shutdown`] still sends the
/// byebyes, in the background.
#[derive(Debug)]
pub struct SsdpHandle {
    local_addr: SocketAddr,
    devices: watch::Sender<Vec<AdvertisedDevice>>,
    interfaces: watch::Sender<Vec<ServedInterface>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl SsdpHandle {
    /// Where M-SEARCH is received: `0.0.0.0:<port>`; with port 0, the ephemeral port bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Replaces the advertised devices: byebye for the removed ones, alive for the added and
    /// changed ones. Never blocks; the latest set wins if called again before it is applied.
    pub fn set_devices(&self, devices: Vec<AdvertisedDevice>) {
        self.devices.send_replace(devices);
    }

    /// A cloneable way to call [`SsdpHandle::set_devices`] from another task (a device
    /// decommissioned while the gateway runs).
    pub fn device_updates(&self) -> watch::Sender<Vec<AdvertisedDevice>> {
        self.devices.clone()
    }

    /// The served interfaces changed: `ssdp:update` (BOOTID → NEXTBOOTID) and alive on the new
    /// addresses, and searches answered from them. Never blocks.
    pub fn update_interfaces(&self, interfaces: Vec<ServedInterface>) {
        self.interfaces.send_replace(interfaces);
    }

    /// A cloneable way to call [`SsdpHandle::update_interfaces`] from another task (the face's
    /// address watcher).
    pub fn interface_updates(&self) -> watch::Sender<Vec<ServedInterface>> {
        self.interfaces.clone()
    }

    /// Sends byebye for every advert (at the shutdown budget) and stops. Wrap in a timeout
    /// for a bounded stop: 2000 devices on one interface take about 12 s at 1000/s.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        if let Err(error) = self.task.await {
            tracing::error!(%error, "SSDP task failed");
        }
    }
}

fn check_config(config: &SsdpConfig) -> io::Result<()> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    if config.server.is_empty() || config.server.chars().any(char::is_control) {
        return Err(invalid(format!("SSDP SERVER value {:?}", config.server)));
    }
    check_token("vendor domain", &config.vendor_domain).map_err(|e| invalid(e.to_string()))?;
    if config.vendor_domain.contains(':') {
        return Err(invalid(format!("vendor domain {:?}", config.vendor_domain)));
    }
    Ok(())
}

/// Works out each device's adverts; devices that cannot be advertised, and repeated UDNs, are
/// logged and left out.
fn adverts(devices: Vec<AdvertisedDevice>) -> Vec<Arc<DeviceAdverts>> {
    let mut out: Vec<Arc<DeviceAdverts>> = Vec::with_capacity(devices.len());
    for device in devices {
        let udn = device.udn;
        if out.iter().any(|d| d.udn() == udn) {
            tracing::warn!(%udn, "device listed twice for SSDP; advertising the first");
            continue;
        }
        match DeviceAdverts::new(device) {
            Ok(adverts) => out.push(adverts),
            Err(error) => tracing::warn!(%udn, %error, "device not advertised"),
        }
    }
    out
}

fn receive_socket(port: u16) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReusePort, &true)
        .map_err(io::Error::from)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(socket.into())
}

fn send_socket(interface: Ipv4Addr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_multicast_if_v4(&interface)?;
    socket.set_multicast_ttl_v4(MULTICAST_TTL)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((interface, 0)).into())?;
    UdpSocket::from_std(socket.into())
}

/// What woke the driver.
enum Event {
    Shutdown,
    Devices,
    Interfaces,
    Received(io::Result<(usize, SocketAddr)>),
    Timer,
}

struct Driver {
    recv: UdpSocket,
    /// One send socket per served interface address.
    senders: Vec<(Ipv4Addr, UdpSocket)>,
    interfaces: Vec<ServedInterface>,
    join_multicast: bool,
    notify_to: SocketAddr,
    headers: HeaderValues,
    announcer: Announcer,
    responder: SearchResponder,
}

impl Driver {
    async fn run(
        mut self,
        mut devices: watch::Receiver<Vec<AdvertisedDevice>>,
        mut interfaces: watch::Receiver<Vec<ServedInterface>>,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        // One byte more than the parser accepts, so an oversize datagram is seen as such.
        let mut buf = vec![0_u8; MAX_DATAGRAM + 1];
        let mut stopping = false;
        loop {
            self.flush(Instant::now()).await;
            if stopping && self.announcer.is_finished() {
                tracing::info!("SSDP stopped");
                return;
            }
            let deadline = match (self.announcer.poll_timeout(), self.responder.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let event = tokio::select! {
                biased;
                _ = &mut shutdown, if !stopping => Event::Shutdown,
                Ok(()) = interfaces.changed(), if !stopping => Event::Interfaces,
                Ok(()) = devices.changed(), if !stopping => Event::Devices,
                received = self.recv.recv_from(&mut buf), if !stopping => Event::Received(received),
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Event::Timer,
                else => Event::Timer,
            };
            match event {
                Event::Shutdown => {
                    stopping = true;
                    self.announcer.handle_shutdown(Instant::now());
                    self.responder.handle_shutdown();
                }
                Event::Interfaces => {
                    let new = interfaces.borrow_and_update().clone();
                    self.change_interfaces(new);
                }
                Event::Devices => {
                    let new = adverts(devices.borrow_and_update().clone());
                    self.announcer.handle_devices(new.clone(), Instant::now());
                    self.responder.handle_devices(new);
                    self.check_budget();
                }
                Event::Received(received) => self.receive(received, &buf),
                Event::Timer => {}
            }
        }
    }

    /// Sends whatever the scheduler and responder have due.
    async fn flush(&mut self, now: Instant) {
        while let Some(notification) = self.announcer.poll_transmit(now) {
            let text = self.headers.notify(&notification);
            self.send(notification.interface, self.notify_to, &text)
                .await;
        }
        for _ in 0..RESPONSES_PER_TURN {
            let Some(response) = self.responder.poll_transmit(now) else {
                break;
            };
            let text = self.headers.search_response(&response, SystemTime::now());
            self.send(response.interface, response.to.into(), &text)
                .await;
        }
    }

    async fn send(&self, interface: Ipv4Addr, to: SocketAddr, text: &str) {
        if text.len() > MAX_SEND {
            tracing::warn!(len = text.len(), "SSDP datagram too large; not sent");
            return;
        }
        let Some((_, socket)) = self.senders.iter().find(|(addr, _)| *addr == interface) else {
            tracing::debug!(%interface, "no SSDP send socket for the interface");
            return;
        };
        if let Err(error) = socket.send_to(text.as_bytes(), to).await {
            tracing::debug!(%interface, %to, %error, "SSDP send failed");
        }
    }

    fn receive(&mut self, received: io::Result<(usize, SocketAddr)>, buf: &[u8]) {
        let (len, from) = match received {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "SSDP receive failed");
                return;
            }
        };
        let message = match parse(buf.get(..len).unwrap_or_default()) {
            Ok(message) => message,
            Err(error) => {
                tracing::trace!(%from, %error, "not an SSDP message");
                return;
            }
        };
        if message.start_line() != StartLine::Search {
            return;
        }
        match self.responder.handle_search(&message, from, Instant::now()) {
            SearchOutcome::Answered { responses, dropped } => {
                tracing::debug!(%from, st = message.header("ST"), responses, dropped, "M-SEARCH");
                if dropped > 0 {
                    tracing::warn!(%from, dropped, "too many SSDP responses waiting; some dropped");
                }
            }
            SearchOutcome::Ignored(reason) => {
                tracing::debug!(%from, ?reason, "M-SEARCH ignored");
            }
        }
    }

    fn change_interfaces(&mut self, new: Vec<ServedInterface>) {
        let addrs = new.iter().map(|i| i.addr).collect();
        if self.announcer.handle_interfaces(addrs, Instant::now()) {
            tracing::info!(
                boot_id = self.announcer.boot_id(),
                "served interfaces changed"
            );
        }
        self.responder
            .handle_interfaces(new.clone(), self.announcer.boot_id());
        self.set_sockets(new);
        self.check_budget();
    }

    fn check_budget(&self) {
        if let Some((datagrams, budget)) = self.announcer.over_budget() {
            tracing::warn!(
                datagrams,
                budget,
                "SSDP re-announcements need more than half the NOTIFY budget; raise \
                 packets_per_second or max_age, or some devices may expire at control points"
            );
        }
    }

    /// Joins the group on new interfaces, leaves it on old ones, and opens or closes their
    /// send sockets.
    fn set_sockets(&mut self, new: Vec<ServedInterface>) {
        for old in &self.interfaces {
            if !new.iter().any(|i| i.addr == old.addr)
                && self.join_multicast
                && let Err(error) = self.recv.leave_multicast_v4(MULTICAST_ADDR, old.addr)
            {
                tracing::debug!(interface = %old.name, %error, "cannot leave the SSDP group");
            }
        }
        self.senders
            .retain(|(addr, _)| new.iter().any(|i| i.addr == *addr));
        for interface in &new {
            if self.senders.iter().any(|(addr, _)| *addr == interface.addr) {
                continue;
            }
            if self.join_multicast
                && let Err(error) = self.recv.join_multicast_v4(MULTICAST_ADDR, interface.addr)
            {
                tracing::warn!(interface = %interface.name, %error, "cannot join the SSDP group");
            }
            match send_socket(interface.addr) {
                Ok(socket) => self.senders.push((interface.addr, socket)),
                Err(error) => {
                    tracing::warn!(interface = %interface.name, %error, "cannot open an SSDP send socket");
                }
            }
        }
        self.interfaces = new;
    }
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;
