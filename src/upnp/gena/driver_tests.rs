//! The driver end to end: requests through [`Eventing::handle_request`], and NOTIFYs to a real
//! callback server on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;
use crate::upnp::net::ServedInterface;

const SERVER: &str = "Linux/6.1 UPnP/2.0 iotmc-gateway/0.1";

/// A NOTIFY as the control point's callback server saw it.
#[derive(Debug)]
struct Received {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: String,
}

/// A control point's callback server on 127.0.0.1, port 0. Every request is put on the channel
/// before it is answered 200, so a delivery the driver counts as done is already on the channel.
async fn callback_server() -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let _ = tx.send(Received {
                            method: parts.method,
                            path: parts.uri.to_string(),
                            headers: parts.headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, rx)
}

fn lo() -> ServedInterface {
    ServedInterface {
        name: "lo".into(),
        index: 1,
        addr: [127, 0, 0, 1].into(),
        netmask: [255, 0, 0, 0].into(),
    }
}

fn eth0() -> ServedInterface {
    ServedInterface {
        name: "eth0".into(),
        index: 2,
        addr: [192, 168, 1, 10].into(),
        netmask: [255, 255, 255, 0].into(),
    }
}

fn key() -> ServiceKey {
    ServiceKey {
        device: uuid::Uuid::from_u128(0x1234),
        service_id: "urn:x-test:serviceId:Lifecycle".into(),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

fn eventing(limits: GenaLimits) -> Eventing {
    let eventing = Eventing::start(limits);
    eventing.register(
        key(),
        vec![
            EventedVariable::new("LifecycleState"),
            EventedVariable::new("LastError"),
        ],
        vec![
            ("LifecycleState".into(), "Active".into()),
            ("LastError".into(), "<none> & \"ok\"".into()),
        ],
    );
    eventing
}

async fn body(response: Response<Full<Bytes>>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    // A bound so a broken driver fails the test instead of hanging it; never a synchroniser.
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("no NOTIFY within 20 s")
        .expect("callback server stopped")
}

#[tokio::test]
async fn subscriber_should_get_the_initial_event_then_changes_and_nothing_after_unsubscribe() {
    let (addr, mut rx) = callback_server().await;
    let eventing = eventing(GenaLimits {
        initial_event_delay: Duration::from_millis(20),
        ..GenaLimits::default()
    });
    let callback = format!("<http://{addr}/cp/evt?n=1>");
    let subscribe = headers(&[
        ("NT", "upnp:event"),
        ("CALLBACK", &callback),
        ("TIMEOUT", "Second-300"),
    ]);
    let response = eventing
        .handle_request(&key(), &method("SUBSCRIBE"), &subscribe, &lo(), SERVER)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["TIMEOUT"], "Second-300");
    assert_eq!(response.headers()["SERVER"], SERVER);
    assert_eq!(response.headers()["CONTENT-LENGTH"], "0");
    assert!(response.headers().contains_key("DATE"));
    let sid = response.headers()["SID"].to_str().unwrap().to_owned();
    assert!(Sid::parse(&sid).is_some(), "{sid}");

    let initial = next(&mut rx).await;
    assert_eq!(initial.method.as_str(), "NOTIFY");
    assert_eq!(initial.path, "/cp/evt?n=1");
    let h = &initial.headers;
    assert_eq!(h["HOST"], addr.to_string().as_str());
    assert_eq!(h["CONTENT-TYPE"], r#"text/xml; charset="utf-8""#);
    assert_eq!(h["NT"], "upnp:event");
    assert_eq!(h["NTS"], "upnp:propchange");
    assert_eq!(h["SID"], sid.as_str());
    assert_eq!(h["SEQ"], "0");
    assert_eq!(h["CONTENT-LENGTH"], initial.body.len().to_string().as_str());
    assert!(
        initial.body.starts_with(
            r#"<?xml version="1.0"?><e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">"#
        ),
        "{}",
        initial.body
    );
    assert!(
        initial
            .body
            .contains("<LifecycleState>Active</LifecycleState>")
    );
    assert!(
        initial
            .body
            .contains("<LastError>&lt;none&gt; &amp; &quot;ok&quot;</LastError>")
    );

    eventing.publish(
        &key(),
        vec![("LifecycleState".into(), "Maintenance".into())],
    );
    let change = next(&mut rx).await;
    assert_eq!(change.headers["SEQ"], "1");
    assert_eq!(change.headers["SID"], sid.as_str());
    assert!(
        change
            .body
            .contains("<LifecycleState>Maintenance</LifecycleState>")
    );
    assert!(!change.body.contains("LastError"));

    let unsubscribe = headers(&[("SID", &sid)]);
    let response = eventing
        .handle_request(&key(), &method("UNSUBSCRIBE"), &unsubscribe, &lo(), SERVER)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    eventing.publish(&key(), vec![("LifecycleState".into(), "Faulted".into())]);
    // Once the driver is idle every NOTIFY it sent has been answered, and the server put each on
    // the channel before answering: an empty channel now means none was sent.
    eventing.flush().await;
    assert!(rx.try_recv().is_err(), "NOTIFY after UNSUBSCRIBE");
    let renew = headers(&[("SID", &sid)]);
    let response = eventing
        .handle_request(&key(), &method("SUBSCRIBE"), &renew, &lo(), SERVER)
        .await;
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    eventing.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn refusals_should_carry_uda_statuses_and_a_reason() {
    let eventing = eventing(GenaLimits {
        max_per_service: 1,
        ..GenaLimits::default()
    });
    let ask = |m: &'static str, h: HeaderMap, iface: ServedInterface, k: ServiceKey| {
        let eventing = eventing.clone();
        async move {
            let response = eventing
                .handle_request(&k, &method(m), &h, &iface, SERVER)
                .await;
            (response.status(), body(response).await)
        }
    };
    let off_subnet = headers(&[("NT", "upnp:event"), ("CALLBACK", "<http://10.9.9.9:80/x>")]);
    let (status, reason) = ask("SUBSCRIBE", off_subnet, eth0(), key()).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(
        reason.contains("http://10.9.9.9:80/x") && reason.contains("eth0"),
        "{reason}"
    );

    let hostname = headers(&[("NT", "upnp:event"), ("CALLBACK", "<http://cp.lan/x>")]);
    let (status, reason) = ask("SUBSCRIBE", hostname, eth0(), key()).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(reason.contains("http://cp.lan/x"), "{reason}");

    let mixed = headers(&[
        ("SID", "uuid:6f2c1a34-4b1e-4d7a-9d55-0123456789ab"),
        ("NT", "upnp:event"),
    ]);
    let (status, _) = ask("SUBSCRIBE", mixed, eth0(), key()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let good = headers(&[
        ("NT", "upnp:event"),
        ("CALLBACK", "<http://192.168.1.20/x>"),
    ]);
    let unknown = ServiceKey {
        service_id: "urn:x-test:serviceId:Nope".into(),
        ..key()
    };
    let (status, reason) = ask("SUBSCRIBE", good.clone(), eth0(), unknown).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(reason.contains("no such event URL"), "{reason}");

    let (status, _) = ask("SUBSCRIBE", good.clone(), eth0(), key()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, reason) = ask("SUBSCRIBE", good, eth0(), key()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reason.contains("too many"), "{reason}");
    eventing.clone().shutdown().await;

    let late = headers(&[
        ("NT", "upnp:event"),
        ("CALLBACK", "<http://192.168.1.20/x>"),
    ]);
    let (status, _) = ask("SUBSCRIBE", late, eth0(), key()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
