use super::*;
use crate::upnp::ssdp::device::tests::managed;
use crate::upnp::ssdp::message::parse;

const MULTICAST: &str = "239.255.255.250:1900";

fn iface(name: &str, addr: [u8; 4], mask: [u8; 4]) -> ServedInterface {
    ServedInterface {
        name: name.into(),
        index: 2,
        addr: addr.into(),
        netmask: mask.into(),
    }
}

fn new_responder(devices: usize) -> SearchResponder {
    responder_with(devices, 10, 20_000)
}

fn responder_with(devices: usize, burst: u32, max_pending: usize) -> SearchResponder {
    let config = SearchConfig {
        burst,
        refill: Duration::from_secs(1),
        max_sources: 64,
        max_pending,
    };
    let interfaces = vec![
        iface("eth0", [192, 168, 1, 10], [255, 255, 255, 0]),
        iface("eth0.20", [10, 20, 0, 1], [255, 255, 0, 0]),
    ];
    let devices = (0..devices as u128)
        .map(|i| DeviceAdverts::new(managed(i)).unwrap())
        .collect();
    SearchResponder::new(config, interfaces, 5, devices, 11)
}

fn search(st: &str, host: &str, mx: Option<&str>) -> SsdpMessage {
    let mx = mx.map(|mx| format!("MX: {mx}\r\n")).unwrap_or_default();
    let text = format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: {host}\r\nMAN: \"ssdp:discover\"\r\n{mx}ST: {st}\r\n\r\n"
    );
    parse(text.as_bytes()).unwrap()
}

fn from(addr: [u8; 4]) -> SocketAddr {
    SocketAddr::from((addr, 50_000))
}

const CP: [u8; 4] = [192, 168, 1, 77];

/// Every response queued by the searches so far, as (due, ST, USN).
fn drain(responder: &mut SearchResponder) -> Vec<(Instant, String, String, SearchResponse)> {
    let mut out = Vec::new();
    while let Some(due) = responder.poll_timeout() {
        let response = responder.poll_transmit(due).unwrap();
        let (st, usn) = response.answer.st_usn(&response.device);
        out.push((due, st, usn, response));
    }
    out
}

/// STs answered by a unicast search for `st`.
fn answered(st: &str) -> Vec<(String, String)> {
    let mut responder = new_responder(1);
    let now = Instant::now();
    responder.handle_search(&search(st, "192.168.1.10:1900", None), from(CP), now);
    drain(&mut responder)
        .into_iter()
        .map(|(_, st, usn, _)| (st, usn))
        .collect()
}

#[test]
fn each_kind_of_search_target_should_match() {
    let uuid = "uuid:12340000-0000-4000-8000-000000000000";
    let device = "urn:schemas-upnp-org:device:ManageableDevice:2";
    let service = "urn:schemas-upnp-org:service:ConfigurationManagement:2";
    assert_eq!(answered("ssdp:all").len(), 6);
    assert_eq!(
        answered("upnp:rootdevice"),
        [("upnp:rootdevice".into(), format!("{uuid}::upnp:rootdevice"))]
    );
    assert_eq!(answered(uuid), [(uuid.into(), uuid.into())]);
    assert_eq!(
        answered(&uuid.to_uppercase().replace("UUID:", "uuid:")).len(),
        1
    );
    assert_eq!(
        answered(device),
        [(device.into(), format!("{uuid}::{device}"))]
    );
    assert_eq!(
        answered(service),
        [(service.into(), format!("{uuid}::{service}"))]
    );
    assert!(answered("uuid:12340000-0000-4000-8000-000000000999").is_empty());
    assert!(answered("urn:schemas-upnp-org:service:ContentDirectory:1").is_empty());
    assert!(answered("garbage").is_empty());
}

#[test]
fn a_lower_version_should_be_answered_with_the_searched_version_but_a_higher_should_not() {
    let uuid = "uuid:12340000-0000-4000-8000-000000000000";
    let basic1 = "urn:schemas-upnp-org:service:BasicManagement:1";
    assert_eq!(
        answered(basic1),
        [(basic1.into(), format!("{uuid}::{basic1}"))]
    );
    let device1 = "urn:schemas-upnp-org:device:ManageableDevice:1";
    assert_eq!(answered(device1).len(), 1);
    assert!(answered("urn:schemas-upnp-org:service:BasicManagement:3").is_empty());
    assert!(answered("urn:example-com:service:FirmwareUpdate:2").is_empty());
}

#[test]
fn a_multicast_search_without_mx_should_be_dropped() {
    let mut responder = new_responder(1);
    let now = Instant::now();
    let outcome = responder.handle_search(&search("ssdp:all", MULTICAST, None), from(CP), now);
    assert_eq!(outcome, SearchOutcome::Ignored(IgnoreReason::NoMx));
    let outcome =
        responder.handle_search(&search("ssdp:all", MULTICAST, Some("soon")), from(CP), now);
    assert_eq!(outcome, SearchOutcome::Ignored(IgnoreReason::BadMx));
    assert_eq!(responder.poll_timeout(), None);
}

#[test]
fn mx_should_be_capped_at_five_and_every_delay_should_fall_within_it() {
    let mut responder = new_responder(40);
    let now = Instant::now();
    let outcome = responder.handle_search(
        &search("ssdp:all", "239.255.255.250", Some("120")),
        from(CP),
        now,
    );
    assert_eq!(
        outcome,
        SearchOutcome::Answered {
            responses: 240,
            dropped: 0
        }
    );
    let sent = drain(&mut responder);
    assert_eq!(sent.len(), 240);
    let delays: Vec<Duration> = sent.iter().map(|(due, ..)| *due - now).collect();
    assert!(
        delays.iter().all(|d| *d < Duration::from_secs(5)),
        "{delays:?}"
    );
    assert!(
        delays.iter().any(|d| *d > Duration::from_secs(3)),
        "spread over the window"
    );
    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "sent in due order");

    let mut responder = new_responder(40);
    responder.handle_search(&search("ssdp:all", MULTICAST, Some("2")), from(CP), now);
    let sent = drain(&mut responder);
    assert!(
        sent.iter()
            .all(|(due, ..)| *due - now < Duration::from_secs(2))
    );
    assert!(
        sent.iter().any(|(due, ..)| *due > now),
        "delayed, not at once"
    );
}

#[test]
fn a_unicast_search_should_be_answered_at_once_whatever_mx_says() {
    let mut responder = new_responder(3);
    let now = Instant::now();
    responder.handle_search(
        &search("ssdp:all", "192.168.1.10:1900", Some("5")),
        from(CP),
        now,
    );
    let mut count = 0;
    while let Some(response) = responder.poll_transmit(now) {
        assert_eq!(response.to, "192.168.1.77:50000".parse().unwrap());
        assert_eq!(response.interface, Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(response.boot_id, 5);
        count += 1;
    }
    assert_eq!(count, 18);
    assert_eq!(responder.poll_timeout(), None);
}

#[test]
fn an_off_subnet_sender_should_be_dropped_and_each_subnet_answered_from_its_interface() {
    let mut responder = new_responder(1);
    let now = Instant::now();
    let st = "upnp:rootdevice";
    let outcome = responder.handle_search(
        &search(st, "192.168.1.10:1900", None),
        from([192, 168, 2, 77]),
        now,
    );
    assert_eq!(outcome, SearchOutcome::Ignored(IgnoreReason::OffSubnet));
    responder.handle_search(
        &search(st, "10.20.0.1:1900", None),
        from([10, 20, 9, 9]),
        now,
    );
    let sent = drain(&mut responder);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].3.interface, Ipv4Addr::new(10, 20, 0, 1));
}

#[test]
fn man_must_be_quoted_ssdp_discover_and_st_and_host_present() {
    let mut responder = new_responder(1);
    let now = Instant::now();
    let unquoted =
        parse(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: ssdp:discover\r\nMX: 1\r\nST: ssdp:all\r\n\r\n")
            .unwrap();
    assert_eq!(
        responder.handle_search(&unquoted, from(CP), now),
        SearchOutcome::Ignored(IgnoreReason::BadMan)
    );
    let no_st =
        parse(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n")
            .unwrap();
    assert_eq!(
        responder.handle_search(&no_st, from(CP), now),
        SearchOutcome::Ignored(IgnoreReason::NoSearchTarget)
    );
    let no_host =
        parse(b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n")
            .unwrap();
    assert_eq!(
        responder.handle_search(&no_host, from(CP), now),
        SearchOutcome::Ignored(IgnoreReason::NoHost)
    );
    let notify = parse(b"NOTIFY * HTTP/1.1\r\nNTS: ssdp:alive\r\n\r\n").unwrap();
    assert_eq!(
        responder.handle_search(&notify, from(CP), now),
        SearchOutcome::Ignored(IgnoreReason::NotASearch)
    );
    assert_eq!(responder.poll_timeout(), None);
}

#[test]
fn the_rate_limit_should_kick_in_per_source_and_recover_over_time() {
    let mut responder = responder_with(1, 3, 20_000);
    let now = Instant::now();
    let unicast = search("upnp:rootdevice", "192.168.1.10:1900", None);
    let answered = SearchOutcome::Answered {
        responses: 1,
        dropped: 0,
    };
    for _ in 0..3 {
        assert_eq!(responder.handle_search(&unicast, from(CP), now), answered);
    }
    let limited = SearchOutcome::Ignored(IgnoreReason::RateLimited);
    assert_eq!(responder.handle_search(&unicast, from(CP), now), limited);
    assert_eq!(
        responder.handle_search(&unicast, from([192, 168, 1, 78]), now),
        answered,
        "another source is unaffected"
    );
    let later = now + Duration::from_secs(1);
    assert_eq!(responder.handle_search(&unicast, from(CP), later), answered);
    assert_eq!(responder.handle_search(&unicast, from(CP), later), limited);
    assert_eq!(drain(&mut responder).len(), 5);
}

#[test]
fn waiting_responses_should_be_bounded() {
    let mut responder = responder_with(10, 10, 100);
    let now = Instant::now();
    let outcome = responder.handle_search(&search("ssdp:all", MULTICAST, Some("3")), from(CP), now);
    assert_eq!(
        outcome,
        SearchOutcome::Answered {
            responses: 60,
            dropped: 0
        }
    );
    let outcome = responder.handle_search(&search("ssdp:all", MULTICAST, Some("3")), from(CP), now);
    assert_eq!(
        outcome,
        SearchOutcome::Answered {
            responses: 40,
            dropped: 20
        }
    );
}
