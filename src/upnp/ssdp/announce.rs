//! The announce scheduler (UDA 2.0 §1.2): which NOTIFY datagrams go out and when. Sans-IO:
//! every input takes `now`, outputs come from [`Announcer::poll_transmit`], and
//! [`Announcer::poll_timeout`] says when to poll next.
//!
//! All NOTIFYs wait in one queue drained at most `packets_per_second`, so thousands of devices
//! never burst. Each device re-announces on its own random phase, every 80–100 % of
//! `max_age * 2 / 5`, which leaves a fifth of max-age/2 for queueing before control points
//! would drop it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;
use uuid::Uuid;

use super::device::DeviceAdverts;

/// The NTS of a NOTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nts {
    /// `ssdp:alive`.
    Alive,
    /// `ssdp:byebye`.
    ByeBye,
    /// `ssdp:update`, announcing the BOOTID that follows the one in the message.
    Update {
        /// NEXTBOOTID.UPNP.ORG.
        next_boot_id: u32,
    },
}

/// One NOTIFY datagram to send.
#[derive(Debug, Clone)]
pub(crate) struct Notification {
    /// alive, byebye or update.
    pub(crate) nts: Nts,
    /// The device.
    pub(crate) device: Arc<DeviceAdverts>,
    /// Which of its adverts (index into [`DeviceAdverts::adverts`]).
    pub(crate) advert: usize,
    /// The interface to send on (and the LOCATION address).
    pub(crate) interface: Ipv4Addr,
    /// BOOTID.UPNP.ORG.
    pub(crate) boot_id: u32,
}

/// The scheduler's knobs.
#[derive(Debug, Clone)]
pub(crate) struct AnnounceConfig {
    /// CACHE-CONTROL max-age.
    pub(crate) max_age: Duration,
    /// NOTIFY budget.
    pub(crate) packets_per_second: u32,
    /// NOTIFY budget for the byebyes at shutdown.
    pub(crate) shutdown_packets_per_second: u32,
    /// Copies of each alive, update and byebye.
    pub(crate) repeat: u8,
}

#[derive(Debug)]
struct Scheduled {
    device: Arc<DeviceAdverts>,
    next: Instant,
}

/// The announce scheduler for every device on every served interface.
#[derive(Debug)]
pub(crate) struct Announcer {
    config: AnnounceConfig,
    interfaces: Vec<Ipv4Addr>,
    boot_id: u32,
    devices: BTreeMap<Uuid, Scheduled>,
    /// `(due, udn)` of every device's next re-announcement.
    schedule: BTreeSet<(Instant, Uuid)>,
    queue: VecDeque<Notification>,
    /// No datagram leaves before this.
    next_send: Instant,
    interval: Duration,
    rng: SmallRng,
    shutting_down: bool,
}

/// Spacing between datagrams for a budget of `per_second`, rounded up so no 1-second window
/// holds more than `per_second`.
fn spacing(per_second: u32) -> Duration {
    Duration::from_nanos(1_000_000_000_u64.div_ceil(u64::from(per_second.max(1))))
}

/// The BOOTID after `boot_id`; BOOTID is a non-negative 31-bit value (UDA 2.0 §1.2.2).
pub(crate) fn next_boot_id(boot_id: u32) -> u32 {
    boot_id.wrapping_add(1) & 0x7fff_ffff
}

impl Announcer {
    /// A scheduler that starts by announcing `devices` on `interfaces`.
    pub(crate) fn new(
        config: AnnounceConfig,
        interfaces: Vec<Ipv4Addr>,
        boot_id: u32,
        devices: Vec<Arc<DeviceAdverts>>,
        now: Instant,
        seed: u64,
    ) -> Self {
        let interval = spacing(config.packets_per_second);
        let mut announcer = Self {
            config,
            interfaces,
            boot_id,
            devices: BTreeMap::new(),
            schedule: BTreeSet::new(),
            queue: VecDeque::new(),
            next_send: now,
            interval,
            rng: SmallRng::seed_from_u64(seed),
            shutting_down: false,
        };
        announcer.handle_devices(devices, now);
        announcer
    }

    /// The current BOOTID.UPNP.ORG.
    pub(crate) fn boot_id(&self) -> u32 {
        self.boot_id
    }

    /// `(datagrams, budget)` of one re-announce cycle when the datagrams take more than half
    /// the cycle's budget: then queueing may push re-announcements past max-age/2.
    pub(crate) fn over_budget(&self) -> Option<(u64, u64)> {
        let adverts: usize = self.devices.values().map(|s| s.device.adverts.len()).sum();
        let datagrams = (adverts * self.interfaces.len()) as u64;
        let budget = u64::from(self.config.packets_per_second) * self.cycle().as_secs();
        (datagrams * 2 > budget).then_some((datagrams, budget))
    }

    /// The re-announce period before jitter.
    fn cycle(&self) -> Duration {
        self.config.max_age * 2 / 5
    }

    /// Replaces the advertised devices: byebye for the removed ones (and for the adverts a
    /// changed one dropped), alive for the added and changed ones.
    pub(crate) fn handle_devices(&mut self, devices: Vec<Arc<DeviceAdverts>>, now: Instant) {
        if self.shutting_down {
            return;
        }
        let mut new: BTreeMap<Uuid, Arc<DeviceAdverts>> =
            devices.into_iter().map(|d| (d.udn(), d)).collect();
        // Queued datagrams of removed and changed devices are stale; drop them in one pass.
        let stale: BTreeSet<Uuid> = self
            .devices
            .iter()
            .filter(|(udn, s)| new.get(*udn) != Some(&s.device))
            .map(|(udn, _)| *udn)
            .collect();
        self.queue.retain(|n| !stale.contains(&n.device.udn()));
        for udn in stale {
            let Some(before) = self.devices.get(&udn).map(|s| Arc::clone(&s.device)) else {
                continue;
            };
            match new.remove(&udn) {
                Some(after) => {
                    let gone: Vec<usize> = (0..before.adverts.len())
                        .filter(|&i| !after.adverts.contains(&before.adverts[i]))
                        .collect();
                    self.enqueue(&before, &gone, Nts::ByeBye, self.config.repeat);
                    self.enqueue_all(&after, Nts::Alive, self.config.repeat);
                    if let Some(scheduled) = self.devices.get_mut(&udn) {
                        scheduled.device = after;
                    }
                }
                None => {
                    if let Some(scheduled) = self.devices.remove(&udn) {
                        self.schedule.remove(&(scheduled.next, udn));
                    }
                    self.enqueue_all(&before, Nts::ByeBye, self.config.repeat);
                }
            }
        }
        // Unchanged devices stay as they are.
        new.retain(|udn, _| !self.devices.contains_key(udn));
        for (udn, device) in new {
            self.enqueue_all(&device, Nts::Alive, self.config.repeat);
            // Each device's own phase in the re-announce cycle.
            let next = now + self.cycle().mul_f64(self.rng.random_range(0.25..=1.0));
            self.schedule.insert((next, udn));
            self.devices.insert(udn, Scheduled { device, next });
        }
    }

    /// The served interface addresses changed: `ssdp:update` (BOOTID → NEXTBOOTID) then alive
    /// with the new BOOTID, per device, on the new interfaces. Returns whether anything changed.
    pub(crate) fn handle_interfaces(&mut self, interfaces: Vec<Ipv4Addr>, _now: Instant) -> bool {
        let same = interfaces.len() == self.interfaces.len()
            && interfaces.iter().all(|i| self.interfaces.contains(i));
        if same || self.shutting_down {
            return false;
        }
        // Queued alives name the old addresses and BOOTID; byebyes still matter where the
        // interface stays.
        self.queue
            .retain(|n| n.nts == Nts::ByeBye && interfaces.contains(&n.interface));
        self.interfaces = interfaces;
        let next_boot_id = next_boot_id(self.boot_id);
        let devices: Vec<_> = self.devices.values().map(|s| s.device.clone()).collect();
        for device in &devices {
            self.enqueue_all(device, Nts::Update { next_boot_id }, self.config.repeat);
        }
        self.boot_id = next_boot_id;
        for device in &devices {
            self.enqueue_all(device, Nts::Alive, self.config.repeat);
        }
        true
    }

    /// Clean shutdown: drop whatever is queued and send one byebye per advert, at the
    /// shutdown budget.
    pub(crate) fn handle_shutdown(&mut self, now: Instant) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.queue.clear();
        self.schedule.clear();
        self.interval = spacing(self.config.shutdown_packets_per_second);
        // The shutdown budget applies from now on, not after the normal spacing.
        self.next_send = self.next_send.min(now + self.interval);
        let devices: Vec<_> = self.devices.values().map(|s| s.device.clone()).collect();
        for device in &devices {
            self.enqueue_all(device, Nts::ByeBye, 1);
        }
    }

    /// Whether shutdown has started and every byebye has been handed out.
    pub(crate) fn is_finished(&self) -> bool {
        self.shutting_down && self.queue.is_empty()
    }

    /// The next datagram to send at `now`, if the budget allows one.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Notification> {
        self.enqueue_due(now);
        if now < self.next_send {
            return None;
        }
        let notification = self.queue.pop_front()?;
        self.next_send = now + self.interval;
        Some(notification)
    }

    /// When [`Self::poll_transmit`] may next return something.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if !self.queue.is_empty() {
            return Some(self.next_send);
        }
        self.schedule.first().map(|(due, _)| *due)
    }

    /// Moves every device whose re-announcement is due into the queue (one copy each).
    fn enqueue_due(&mut self, now: Instant) {
        while let Some(&(due, udn)) = self.schedule.first() {
            if due > now {
                break;
            }
            self.schedule.remove(&(due, udn));
            let jitter = self.rng.random_range(0.8..=1.0);
            let next = now + self.cycle().mul_f64(jitter);
            let Some(scheduled) = self.devices.get_mut(&udn) else {
                continue;
            };
            scheduled.next = next;
            let device = scheduled.device.clone();
            self.schedule.insert((next, udn));
            self.enqueue_all(&device, Nts::Alive, 1);
        }
    }

    fn enqueue_all(&mut self, device: &Arc<DeviceAdverts>, nts: Nts, copies: u8) {
        let all: Vec<usize> = (0..device.adverts.len()).collect();
        self.enqueue(device, &all, nts, copies);
    }

    /// `copies` rounds of `adverts` on every interface; a round goes out before the next one
    /// starts, which spaces the copies of one datagram apart.
    fn enqueue(&mut self, device: &Arc<DeviceAdverts>, adverts: &[usize], nts: Nts, copies: u8) {
        for _ in 0..copies {
            for &interface in &self.interfaces {
                for &advert in adverts {
                    self.queue.push_back(Notification {
                        nts,
                        device: Arc::clone(device),
                        advert,
                        interface,
                        boot_id: self.boot_id,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "announce_tests.rs"]
mod tests;
