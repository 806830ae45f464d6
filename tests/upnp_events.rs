//! Eventing and discovery through the UPnP face: GENA subscriptions with NOTIFYs to a callback
//! server on loopback, and SSDP M-SEARCH answered on an ephemeral port.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use common::{HANG_GUARD, Harness, get, http, texts, texts_at};
use http_body_util::{BodyExt as _, Full};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use iotmc_adapter::Value;
use iotmc_adapter::testkit::SimulatedDevice as _;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

/// One NOTIFY the callback server received.
#[derive(Debug)]
struct Notify {
    path: String,
    sid: String,
    seq: u32,
    nt: String,
    nts: String,
    body: String,
}

impl Notify {
    /// The value of evented variable `name` in the propertyset, if it is there.
    fn variable(&self, name: &str) -> Option<String> {
        let values = texts_at(&self.body, &["propertyset", "property", name]);
        assert!(values.len() <= 1, "{}", self.body);
        values.into_iter().next()
    }
}

/// A control point's callback server on 127.0.0.1: every NOTIFY is answered 200 and handed over.
async fn callback_server() -> (SocketAddr, mpsc::UnboundedReceiver<Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let (sid, seq, nt, nts) =
                            (header("SID"), header("SEQ"), header("NT"), header("NTS"));
                        let path = req.uri().path().to_owned();
                        assert_eq!(req.method().as_str(), "NOTIFY");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let _ = tx.send(Notify {
                            path,
                            sid,
                            seq: seq.parse().unwrap(),
                            nt,
                            nts,
                            body: String::from_utf8(body.to_vec()).unwrap(),
                        });
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, rx)
}

async fn next_notify(rx: &mut mpsc::UnboundedReceiver<Notify>) -> Notify {
    tokio::time::timeout(HANG_GUARD, rx.recv())
        .await
        .expect("a NOTIFY arrives")
        .unwrap()
}

async fn subscribe(
    addr: SocketAddr,
    event_url: &str,
    callback: &str,
    timeout: &str,
) -> common::Reply {
    http(
        addr,
        "SUBSCRIBE",
        event_url,
        &[
            ("CALLBACK", callback),
            ("NT", "upnp:event"),
            ("TIMEOUT", timeout),
        ],
        Bytes::new(),
    )
    .await
}

#[tokio::test]
async fn a_subscriber_should_get_the_initial_event_then_each_configuration_change() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let addr = h.face.http_addr();
    let (callback, mut notifies) = callback_server().await;
    let event_url = format!(
        "/upnp/{}/ConfigurationManagement/event",
        h.udn("thermostat-1")
    );
    let version = h.config_version("thermostat-1");

    let reply = subscribe(
        addr,
        &event_url,
        &format!("<http://{callback}/cms>"),
        "Second-300",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let sid = reply.header("SID").unwrap().to_owned();
    assert!(sid.starts_with("uuid:"), "{sid}");
    assert_eq!(reply.header("TIMEOUT"), Some("Second-300"));

    let initial = next_notify(&mut notifies).await;
    assert_eq!(initial.path, "/cms");
    assert_eq!(initial.sid, sid);
    assert_eq!(initial.seq, 0);
    assert_eq!(
        (initial.nt.as_str(), initial.nts.as_str()),
        ("upnp:event", "upnp:propchange")
    );
    assert_eq!(
        initial.variable("ConfigurationUpdate"),
        Some(version.to_string())
    );

    h.simulated("thermostat-1").change_locally(
        [("setpoint".to_owned(), Value::Float(23.0))]
            .into_iter()
            .collect(),
    );
    let change = next_notify(&mut notifies).await;
    assert_eq!(change.sid, sid);
    assert_eq!(change.seq, 1);
    let update = change.variable("ConfigurationUpdate").unwrap_or_default();
    let fields: Vec<&str> = update.split(',').collect();
    assert_eq!(
        fields.first().copied(),
        Some((version + 1).to_string().as_str()),
        "a device-side change of a writable parameter is a new configuration: {update}"
    );
    assert!(
        fields
            .get(1)
            .is_some_and(|t| humantime::parse_rfc3339(t).is_ok()),
        "the change time follows the version: {update}"
    );
    assert_eq!(
        fields.get(2..),
        Some(&["/IoTMC/Parameters/setpoint"][..]),
        "{update}"
    );
    assert_eq!(h.config_version("thermostat-1"), version + 1);

    // Renewal keeps the SID and grants the new time.
    let renewed = http(
        addr,
        "SUBSCRIBE",
        &event_url,
        &[("SID", sid.as_str()), ("TIMEOUT", "Second-600")],
        Bytes::new(),
    )
    .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    assert_eq!(renewed.header("SID"), Some(sid.as_str()));
    assert_eq!(renewed.header("TIMEOUT"), Some("Second-600"));

    // UNSUBSCRIBE ends it: a renewal afterwards no longer finds it.
    let gone = http(
        addr,
        "UNSUBSCRIBE",
        &event_url,
        &[("SID", sid.as_str())],
        Bytes::new(),
    )
    .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    let again = http(
        addr,
        "SUBSCRIBE",
        &event_url,
        &[("SID", sid.as_str()), ("TIMEOUT", "Second-600")],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        again.body
    );
    h.stop().await;
}

#[tokio::test]
async fn a_callback_on_another_subnet_should_be_refused_with_412() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let event_url = format!(
        "/upnp/{}/ConfigurationManagement/event",
        h.udn("thermostat-1")
    );
    let reply = subscribe(
        h.face.http_addr(),
        &event_url,
        "<http://10.1.2.3:80/>",
        "Second-300",
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        reply.body
    );
    assert!(reply.header("SID").is_none());
    assert!(
        reply
            .body
            .contains("10.1.2.3 is not on the subnet of interface lo"),
        "{}",
        reply.body
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn lifecycle_subscribers_should_hear_the_state_and_a_device_going_offline() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let addr = h.face.http_addr();
    let (callback, mut notifies) = callback_server().await;
    let event_url = format!("/upnp/{}/Lifecycle/event", h.udn("thermostat-1"));
    let reply = subscribe(
        addr,
        &event_url,
        &format!("<http://{callback}/life>"),
        "Second-300",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let initial = next_notify(&mut notifies).await;
    assert_eq!(initial.seq, 0);
    assert_eq!(
        initial.variable("LifecycleState").as_deref(),
        Some("Provisioned")
    );
    assert_eq!(initial.variable("Availability").as_deref(), Some("Online"));

    h.simulated("thermostat-1").set_unresponsive(true);
    let (code, _) = h
        .get_values("thermostat-1", &["/IoTMC/Parameters/setpoint"])
        .await
        .upnp_error();
    assert_eq!(code, 707);
    let offline = next_notify(&mut notifies).await;
    assert_eq!(offline.seq, 1);
    assert_eq!(offline.variable("Availability").as_deref(), Some("Offline"));
    let status = h.device_status("thermostat-1").await;
    assert!(status.starts_with("Unreachable,"), "{status}");
    h.stop().await;
}

/// One SSDP search response's headers, names upper-cased.
type Headers = BTreeMap<String, String>;

fn parse_response(datagram: &[u8]) -> Headers {
    let text = std::str::from_utf8(datagram).unwrap();
    let mut lines = text.split("\r\n");
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"), "{text}");
    lines
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(':').unwrap_or_else(|| panic!("{l}"));
            (name.trim().to_ascii_uppercase(), value.trim().to_owned())
        })
        .collect()
}

/// Sends one unicast M-SEARCH for `st` and collects responses until their USNs are `expected`.
async fn search(ssdp: SocketAddr, st: &str, expected: &BTreeSet<String>) -> Vec<Headers> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = SocketAddr::from(([127, 0, 0, 1], ssdp.port()));
    let request = format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: 127.0.0.1:{}\r\nMAN: \"ssdp:discover\"\r\nST: {st}\r\n\r\n",
        ssdp.port()
    );
    socket.send_to(request.as_bytes(), target).await.unwrap();
    let mut responses = Vec::new();
    let mut seen = BTreeSet::new();
    let mut buf = [0_u8; 2048];
    while seen != *expected {
        let (len, _) = tokio::time::timeout(HANG_GUARD, socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("responses for {:?}", expected.difference(&seen)))
            .unwrap();
        let headers = parse_response(&buf[..len]);
        let usn = headers["USN"].clone();
        assert!(expected.contains(&usn), "unexpected USN {usn}");
        assert!(seen.insert(usn.clone()), "{usn} answered twice");
        responses.push(headers);
    }
    responses
}

/// Every USN an `ssdp:all` search should be answered with: for each root device, the root,
/// its UUID, its type, and each service type its description lists.
async fn all_usns(h: &Harness) -> BTreeSet<String> {
    let mut udns = vec![h.face.state().gateway.udn];
    udns.extend(h.face.state().devices.keys());
    let mut usns = BTreeSet::new();
    for udn in udns {
        let description = get(h.face.http_addr(), &format!("/upnp/{udn}/description.xml"))
            .await
            .body;
        let uuid = format!("uuid:{udn}");
        usns.insert(format!("{uuid}::upnp:rootdevice"));
        usns.insert(uuid.clone());
        for device_type in texts_at(&description, &["device", "deviceType"]) {
            usns.insert(format!("{uuid}::{device_type}"));
        }
        for service_type in texts(&description, "serviceType") {
            usns.insert(format!("{uuid}::{service_type}"));
        }
    }
    usns
}

#[tokio::test]
async fn a_unicast_search_for_everything_should_answer_for_every_device_and_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let ssdp = h.face.ssdp_addr().expect("SSDP runs");
    assert_ne!(ssdp.port(), 0);
    let expected = all_usns(&h).await;
    assert_eq!(expected.len(), 2 * (3 + 5) + (3 + 1), "{expected:#?}");
    let responses = search(ssdp, "ssdp:all", &expected).await;

    let http_port = h.face.http_addr().port();
    let gateway = h.face.state().gateway.udn;
    for r in &responses {
        let usn = &r["USN"];
        let udn: uuid::Uuid = usn[5..41].parse().unwrap();
        assert_eq!(
            r["LOCATION"],
            format!("http://127.0.0.1:{http_port}/upnp/{udn}/description.xml"),
            "{usn}"
        );
        assert_eq!(r["BOOTID.UPNP.ORG"], h.face.boot_id().to_string(), "{usn}");
        assert_eq!(
            r["CONFIGID.UPNP.ORG"],
            h.face.config_id().to_string(),
            "{usn}"
        );
        // The controller advertises enrollment only when it serves it (no issuing CA here).
        let capabilities = if udn == gateway {
            "controller,lifecycle"
        } else {
            "config,firmware,diagnostics,lifecycle"
        };
        assert_eq!(
            r.get("MANAGEMENT.IOTMC-GATEWAY.LOCAL").map(String::as_str),
            Some(capabilities),
            "{r:#?}"
        );
        // ST names what was found; the USN carries it after the UUID.
        let st = &r["ST"];
        assert!(
            usn == &format!("uuid:{udn}") && st == usn || usn.ends_with(&format!("::{st}")),
            "{r:#?}"
        );
        assert!(
            r.contains_key("CACHE-CONTROL") && r.contains_key("SERVER") && r.contains_key("EXT"),
            "{r:#?}"
        );
    }
    // Each LOCATION resolves.
    for r in responses.iter().filter(|r| r["ST"] == "upnp:rootdevice") {
        let path = r["LOCATION"]
            .split_once(&format!(":{http_port}"))
            .unwrap()
            .1;
        assert_eq!(get(h.face.http_addr(), path).await.status, StatusCode::OK);
    }
    h.stop().await;
}

#[tokio::test]
async fn bootid_should_increase_when_the_face_starts_again_on_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let roots = |h: &Harness| -> BTreeSet<String> {
        std::iter::once(h.face.state().gateway.udn)
            .chain(h.face.state().devices.keys().copied())
            .map(|u| format!("uuid:{u}::upnp:rootdevice"))
            .collect()
    };
    let h = Harness::start(dir.path(), false).await;
    let first = search(h.face.ssdp_addr().unwrap(), "upnp:rootdevice", &roots(&h)).await;
    let first_boot: u32 = first[0]["BOOTID.UPNP.ORG"].parse().unwrap();
    assert!(
        first
            .iter()
            .all(|r| r["BOOTID.UPNP.ORG"] == first_boot.to_string())
    );
    h.stop().await;

    let h = Harness::start(dir.path(), false).await;
    let second = search(h.face.ssdp_addr().unwrap(), "upnp:rootdevice", &roots(&h)).await;
    let second_boot: u32 = second[0]["BOOTID.UPNP.ORG"].parse().unwrap();
    assert!(second_boot > first_boot, "{first_boot} then {second_boot}");
    assert_eq!(second_boot, h.face.boot_id());
    h.stop().await;
}
