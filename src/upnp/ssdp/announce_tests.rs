use std::collections::HashMap;

use super::*;
use crate::upnp::ssdp::device::tests::managed;

const ETH0: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const ETH0_NEW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 11);
const MAX_AGE: Duration = Duration::from_secs(1800);

fn config(packets_per_second: u32) -> AnnounceConfig {
    AnnounceConfig {
        max_age: MAX_AGE,
        packets_per_second,
        shutdown_packets_per_second: 1000,
        repeat: 2,
    }
}

fn devices(n: u128) -> Vec<Arc<DeviceAdverts>> {
    (0..n)
        .map(|i| DeviceAdverts::new(managed(i)).unwrap())
        .collect()
}

/// Runs the scheduler from `start` to `until`, polling exactly when it asks to, and returns
/// every datagram with the time it left.
fn run(announcer: &mut Announcer, start: Instant, until: Instant) -> Vec<(Instant, Notification)> {
    let mut sent = Vec::new();
    let mut now = start;
    loop {
        while let Some(n) = announcer.poll_transmit(now) {
            sent.push((now, n));
        }
        match announcer.poll_timeout() {
            Some(next) if next <= until => now = next.max(now),
            _ => return sent,
        }
    }
}

fn nt(n: &Notification) -> &str {
    &n.device.adverts[n.advert].nt
}

#[test]
fn initial_alive_should_cover_every_advert_and_be_repeated() {
    let start = Instant::now();
    let device = devices(1);
    let mut announcer = Announcer::new(config(100), vec![ETH0], 7, device.clone(), start, 1);
    let sent = run(&mut announcer, start, start + Duration::from_secs(10));
    let nts: Vec<&str> = sent.iter().map(|(_, n)| nt(n)).collect();
    let expected: Vec<&str> = device[0].adverts.iter().map(|a| a.nt.as_str()).collect();
    assert_eq!(
        expected.len(),
        6,
        "rootdevice, uuid, device type, 3 services"
    );
    assert_eq!(nts, [expected.clone(), expected].concat(), "two rounds");
    assert!(
        sent.iter()
            .all(|(_, n)| n.nts == Nts::Alive && n.interface == ETH0 && n.boot_id == 7)
    );
    // The two copies of one datagram are a round (6 datagrams at 10 ms) apart.
    assert_eq!(sent[6].0 - sent[0].0, Duration::from_millis(60));
}

#[test]
fn every_advert_should_be_re_announced_before_half_of_max_age() {
    let start = Instant::now();
    let mut announcer = Announcer::new(config(100), vec![ETH0], 1, devices(20), start, 2);
    let until = start + MAX_AGE * 3;
    let sent = run(&mut announcer, start, until);
    let mut last: HashMap<(Uuid, String), Instant> = HashMap::new();
    let mut count: HashMap<(Uuid, String), usize> = HashMap::new();
    for (at, n) in &sent {
        let key = (n.device.udn(), nt(n).to_owned());
        if let Some(before) = last.insert(key.clone(), *at) {
            assert!(
                *at - before <= MAX_AGE / 2,
                "{key:?} silent for {:?}",
                *at - before
            );
        }
        *count.entry(key).or_default() += 1;
    }
    assert_eq!(last.len(), 20 * 6);
    for (key, at) in &last {
        assert!(until - *at <= MAX_AGE / 2, "{key:?} silent at the end");
    }
    // 2 initial copies plus at least one re-announcement per 720 s over 5400 s.
    assert!(count.values().all(|c| *c >= 2 + 7), "{count:?}");
}

#[test]
fn devices_should_re_announce_on_their_own_phases() {
    let start = Instant::now();
    let mut announcer = Announcer::new(config(1000), vec![ETH0], 1, devices(50), start, 3);
    let sent = run(&mut announcer, start, start + MAX_AGE / 2);
    // First re-announcement of each device (its third rootdevice alive).
    let mut seen: HashMap<Uuid, Vec<Instant>> = HashMap::new();
    for (at, n) in &sent {
        if n.advert == 0 {
            seen.entry(n.device.udn()).or_default().push(*at);
        }
    }
    let mut firsts: Vec<Instant> = seen.values().filter_map(|t| t.get(2).copied()).collect();
    firsts.sort();
    assert_eq!(firsts.len(), 50);
    let spread = *firsts.last().unwrap() - firsts[0];
    assert!(spread > MAX_AGE / 5, "phases bunched within {spread:?}");
}

#[test]
fn two_thousand_devices_should_never_exceed_the_budget_in_any_second() {
    let start = Instant::now();
    let budget = 100;
    let mut announcer = Announcer::new(config(budget), vec![ETH0], 1, devices(2000), start, 4);
    let until = start + MAX_AGE * 2;
    let sent = run(&mut announcer, start, until);
    // 2000 devices × 6 adverts × 2 copies, then ~12000 per re-announce cycle.
    assert!(sent.len() > 24_000 + 3 * 12_000, "only {} sent", sent.len());
    let times: Vec<Instant> = sent.iter().map(|(at, _)| *at).collect();
    let mut first = 0;
    for last in 0..times.len() {
        while times[last] - times[first] >= Duration::from_secs(1) {
            first += 1;
        }
        let in_window = last - first + 1;
        assert!(
            in_window <= budget as usize,
            "{in_window} datagrams within 1 s ending at #{last}"
        );
    }
    // And even then nobody goes silent for max-age/2 once its first alive is out.
    let mut last: HashMap<(Uuid, usize), Instant> = HashMap::new();
    for (at, n) in &sent {
        if let Some(before) = last.insert((n.device.udn(), n.advert), *at) {
            assert!(*at - before <= MAX_AGE / 2, "silent for {:?}", *at - before);
        }
    }
}

#[test]
fn shutdown_should_send_one_byebye_per_advert_and_drop_pending_alives() {
    let start = Instant::now();
    let all = devices(3);
    let mut announcer = Announcer::new(config(100), vec![ETH0], 9, all.clone(), start, 5);
    // A few alives out, most still queued.
    let early = run(&mut announcer, start, start + Duration::from_millis(50));
    assert!(!early.is_empty());
    let now = start + Duration::from_millis(55);
    announcer.handle_shutdown(now);
    assert!(!announcer.is_finished());
    let sent = run(&mut announcer, now, now + Duration::from_secs(5));
    assert!(announcer.is_finished());
    assert!(
        sent.iter()
            .all(|(_, n)| n.nts == Nts::ByeBye && n.boot_id == 9)
    );
    let mut got: Vec<(Uuid, &str)> = sent.iter().map(|(_, n)| (n.device.udn(), nt(n))).collect();
    got.sort();
    let mut expected: Vec<(Uuid, &str)> = all
        .iter()
        .flat_map(|d| d.adverts.iter().map(|a| (d.udn(), a.nt.as_str())))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    // At 1000/s, 18 byebyes take 17 ms.
    assert!(sent.last().unwrap().0 - now < Duration::from_millis(20));
    assert_eq!(announcer.poll_timeout(), None, "no more re-announcements");
}

#[test]
fn interface_change_should_send_update_then_alive_with_the_next_boot_id() {
    let start = Instant::now();
    let all = devices(2);
    let mut announcer = Announcer::new(config(100), vec![ETH0], 41, all, start, 6);
    let now = start + Duration::from_secs(60);
    run(&mut announcer, start, now);
    assert!(!announcer.handle_interfaces(vec![ETH0], now), "no change");
    assert!(announcer.handle_interfaces(vec![ETH0_NEW], now));
    assert_eq!(announcer.boot_id(), 42);
    let sent = run(&mut announcer, now, now + Duration::from_secs(10));
    assert!(sent.iter().all(|(_, n)| n.interface == ETH0_NEW));
    let per_round = 2 * 6;
    let (updates, alives) = sent.split_at(2 * per_round);
    assert!(
        updates
            .iter()
            .all(|(_, n)| n.nts == Nts::Update { next_boot_id: 42 } && n.boot_id == 41)
    );
    assert_eq!(alives.len(), 2 * per_round);
    assert!(
        alives
            .iter()
            .all(|(_, n)| n.nts == Nts::Alive && n.boot_id == 42)
    );
}

#[test]
fn set_devices_should_byebye_the_removed_and_announce_the_added() {
    let start = Instant::now();
    let all = devices(3);
    let mut announcer = Announcer::new(config(100), vec![ETH0], 1, all[..2].to_vec(), start, 7);
    let now = start + Duration::from_secs(60);
    run(&mut announcer, start, now);
    // Device 0 stays, 1 leaves, 2 arrives; device 0 also loses a service.
    let mut changed = managed(0);
    changed.service_types.pop();
    let changed = DeviceAdverts::new(changed).unwrap();
    announcer.handle_devices(vec![changed, all[2].clone()], now);
    let sent = run(&mut announcer, now, now + Duration::from_secs(5));
    let of = |udn: Uuid, nts: Nts| {
        sent.iter()
            .filter(|(_, n)| n.device.udn() == udn && n.nts == nts)
            .map(|(_, n)| nt(n).to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(all[0].udn(), Nts::ByeBye),
        ["urn:example-com:service:FirmwareUpdate:1"; 2]
    );
    assert_eq!(of(all[0].udn(), Nts::Alive).len(), 2 * 5);
    assert_eq!(of(all[1].udn(), Nts::ByeBye).len(), 2 * 6);
    assert!(of(all[1].udn(), Nts::Alive).is_empty());
    assert_eq!(of(all[2].udn(), Nts::Alive).len(), 2 * 6);
}

#[test]
fn a_load_beyond_half_the_budget_should_be_reported() {
    let start = Instant::now();
    let announcer = Announcer::new(config(100), vec![ETH0], 1, devices(2000), start, 8);
    assert_eq!(announcer.over_budget(), None, "12000 of 72000 per cycle");
    let four = vec![
        ETH0,
        ETH0_NEW,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 1, 1),
    ];
    let announcer = Announcer::new(config(20), four, 1, devices(2000), start, 8);
    assert_eq!(announcer.over_budget(), Some((48_000, 14_400)));
}
