use std::collections::BTreeMap;

use tokio::time::timeout;

use super::*;
use crate::upnp::ssdp::config::SsdpConfig;
use crate::upnp::ssdp::device::tests::managed;
use crate::upnp::ssdp::message::SsdpMessage;

/// Guard against a hang; never used to wait for something to happen.
const GUARD: Duration = Duration::from_secs(10);

fn lo(addr: [u8; 4]) -> ServedInterface {
    ServedInterface {
        name: "lo".into(),
        index: nix::net::if_::if_nametoindex("lo").unwrap_or(1),
        addr: addr.into(),
        netmask: Ipv4Addr::new(255, 0, 0, 0),
    }
}

async fn start(notify_to: SocketAddr) -> SsdpHandle {
    let config = SsdpConfig {
        port: 0,
        join_multicast: false,
        boot_id: 17,
        config_id: 4,
        notify_to: Some(notify_to),
        ..SsdpConfig::new(
            vec![lo([127, 0, 0, 1])],
            8080,
            "Linux/6.1 UPnP/2.0 iotmc-gateway/0.1.0".into(),
            "example.com".into(),
        )
    };
    Ssdp::start(config, vec![managed(1)]).await.unwrap()
}

async fn receive(socket: &UdpSocket) -> (SsdpMessage, SocketAddr) {
    let mut buf = vec![0; 2048];
    let (len, from) = timeout(GUARD, socket.recv_from(&mut buf))
        .await
        .expect("a datagram within the guard time")
        .unwrap();
    (parse(&buf[..len]).unwrap(), from)
}

/// Receives NOTIFYs until `wanted` distinct NTs with NTS `nts` have arrived.
async fn notifies(sink: &UdpSocket, nts: &str, wanted: usize) -> BTreeMap<String, SsdpMessage> {
    let mut seen = BTreeMap::new();
    while seen.len() < wanted {
        let (msg, _) = receive(sink).await;
        if msg.header("NTS") == Some(nts) {
            seen.insert(msg.header("NT").unwrap().to_owned(), msg);
        }
    }
    seen
}

#[tokio::test]
async fn a_unicast_search_on_loopback_should_get_every_response_with_its_headers() {
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ssdp = start(sink.local_addr().unwrap()).await;
    let port = ssdp.local_addr().port();
    let cp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let search = format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: 127.0.0.1:{port}\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\n\r\n"
    );
    cp.send_to(search.as_bytes(), ("127.0.0.1", port))
        .await
        .unwrap();

    let uuid = "uuid:12340000-0000-4000-8000-000000000001";
    let mut sts = Vec::new();
    for _ in 0..6 {
        let (msg, from) = receive(&cp).await;
        assert_eq!(from.ip(), Ipv4Addr::LOCALHOST);
        assert_eq!(msg.start_line(), StartLine::Response { status: 200 });
        assert_eq!(
            msg.header("LOCATION").unwrap(),
            format!("http://127.0.0.1:8080/upnp/{}/description.xml", &uuid[5..])
        );
        let st = msg.header("ST").unwrap().to_owned();
        let usn = msg.header("USN").unwrap();
        if st == uuid {
            assert_eq!(usn, uuid);
        } else {
            assert_eq!(usn, format!("{uuid}::{st}"));
        }
        assert_eq!(msg.header("BOOTID.UPNP.ORG"), Some("17"));
        assert_eq!(msg.header("CONFIGID.UPNP.ORG"), Some("4"));
        assert_eq!(
            msg.header("MANAGEMENT.example.com"),
            Some("config,firmware")
        );
        assert_eq!(
            msg.header("SERVER"),
            Some("Linux/6.1 UPnP/2.0 iotmc-gateway/0.1.0")
        );
        assert_eq!(msg.header("EXT"), Some(""));
        assert!(msg.header("DATE").is_some());
        sts.push(st);
    }
    sts.sort();
    let mut expected: Vec<String> = DeviceAdverts::new(managed(1))
        .unwrap()
        .adverts
        .iter()
        .map(|a| a.nt.clone())
        .collect();
    expected.sort();
    assert_eq!(sts, expected);

    // The alives went to the configured NOTIFY destination; shutdown says byebye for each.
    let alive = notifies(&sink, "ssdp:alive", 6).await;
    assert_eq!(
        alive["upnp:rootdevice"].header("CACHE-CONTROL"),
        Some("max-age=1800")
    );
    timeout(GUARD, ssdp.shutdown()).await.unwrap();
    let byebye = notifies(&sink, "ssdp:byebye", 6).await;
    assert_eq!(
        byebye.keys().collect::<Vec<_>>(),
        alive.keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_interface_change_should_send_update_then_alive_from_the_new_address() {
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ssdp = start(sink.local_addr().unwrap()).await;
    notifies(&sink, "ssdp:alive", 6).await;
    ssdp.update_interfaces(vec![lo([127, 0, 0, 2])]);
    let updates = notifies(&sink, "ssdp:update", 6).await;
    let update = &updates["upnp:rootdevice"];
    assert_eq!(update.header("BOOTID.UPNP.ORG"), Some("17"));
    assert_eq!(update.header("NEXTBOOTID.UPNP.ORG"), Some("18"));
    assert!(
        update
            .header("LOCATION")
            .unwrap()
            .starts_with("http://127.0.0.2:8080/")
    );
    let (alive, from) = loop {
        let (msg, from) = receive(&sink).await;
        if msg.header("NTS") == Some("ssdp:alive") {
            break (msg, from);
        }
    };
    assert_eq!(from.ip(), Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(alive.header("BOOTID.UPNP.ORG"), Some("18"));
    timeout(GUARD, ssdp.shutdown()).await.unwrap();
}
