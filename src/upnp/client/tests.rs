//! The client against canned servers on loopback: what it sends, and every kind of bad reply.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::*;
use crate::upnp::soap::{UpnpError, fault, response};

const SERVICE: &str = "urn:schemas-upnp-org:service:ConfigurationManagement:2";
const GENEROUS: Duration = Duration::from_secs(60);

/// Serves one connection: reads one request (headers and Content-Length body), answers
/// `reply` verbatim, and hands the request's text over.
async fn canned(reply: Vec<u8>) -> (String, oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length || n == 0 {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        let _ = stream.write_all(&reply).await;
        let _ = stream.shutdown().await;
    });
    (base, rx)
}

fn http_reply(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn client(base: &str) -> SoapClient {
    SoapClient::new(base, Vec::new(), None, GENEROUS).unwrap()
}

#[tokio::test]
async fn a_call_should_post_the_envelope_with_soapaction_and_return_the_out_arguments() {
    let body = response(SERVICE, "SetValues", &[("Status", "ChangesApplied".into())]);
    let (base, request) = canned(http_reply("200 OK", "text/xml", &body)).await;
    let out = client(&base)
        .call(
            "/upnp/x/ConfigurationManagement/control",
            SERVICE,
            "SetValues",
            &[("ParameterValueList", "<a>&</a>")],
        )
        .await
        .unwrap();
    assert_eq!(out, [("Status".to_owned(), "ChangesApplied".to_owned())]);
    let request = request.await.unwrap();
    assert!(
        request.starts_with("POST /upnp/x/ConfigurationManagement/control HTTP/1.1\r\n"),
        "{request}"
    );
    let lower = request.to_ascii_lowercase();
    assert!(
        lower.contains(&format!(
            "soapaction: \"{}#setvalues\"",
            SERVICE.to_ascii_lowercase()
        )),
        "{request}"
    );
    assert!(
        lower.contains("content-type: text/xml; charset=\"utf-8\""),
        "{request}"
    );
    assert!(
        lower.contains(&format!("host: {}", &base["http://".len()..])),
        "{request}"
    );
    assert!(
        request.contains("<ParameterValueList>&lt;a&gt;&amp;&lt;/a&gt;</ParameterValueList>"),
        "{request}"
    );
}

#[tokio::test]
async fn a_fault_should_become_a_upnp_error_with_code_and_description() {
    let body = fault(&UpnpError::new(704, "setpoint 99 is above 30"));
    let (base, _) = canned(http_reply("500 Internal Server Error", "text/xml", &body)).await;
    let err = client(&base)
        .call("/c", SERVICE, "SetValues", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Upnp { code: 704, description } if description == "setpoint 99 is above 30"),
        "{err}"
    );
}

#[tokio::test]
async fn a_plain_error_page_should_become_an_http_error_with_its_text() {
    let (base, _) = canned(http_reply(
        "404 Not Found",
        "text/plain",
        "nothing at `/c`\n",
    ))
    .await;
    let err = client(&base)
        .call("/c", SERVICE, "SetValues", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Http { status: 404, body } if body == "nothing at `/c`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_garbled_200_reply_should_be_malformed_not_a_panic() {
    let (base, _) = canned(http_reply("200 OK", "text/xml", "<s:Envelope")).await;
    let err = client(&base)
        .call("/c", SERVICE, "SetValues", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Malformed(_)), "{err}");

    let (base, _) = canned(b"HTTP/1.1 200 OK\r\nContent-Length: nonsense\r\n\r\n".to_vec()).await;
    let err = client(&base).get("/").await.unwrap_err();
    assert!(err.to_string().contains("not valid HTTP"), "{err}");
}

#[tokio::test]
async fn a_reply_over_the_bound_should_be_refused_declared_or_streamed() {
    let declared = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        MAX_REPLY + 1
    );
    let (base, _) = canned(declared.into_bytes()).await;
    let err = client(&base).get("/").await.unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");

    // Chunked, no length announced: the bound cuts it off while reading.
    let mut streamed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..9 {
        streamed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        streamed.extend_from_slice(&chunk);
        streamed.extend_from_slice(b"\r\n");
    }
    streamed.extend_from_slice(b"0\r\n\r\n");
    let (base, _) = canned(streamed).await;
    let err = client(&base).get("/").await.unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test]
async fn a_silent_server_should_time_out_naming_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    // Accepts and holds the connection, never answering.
    let holder = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(stream);
    });
    let client = SoapClient::new(
        &format!("http://{address}"),
        Vec::new(),
        None,
        Duration::from_millis(200),
    )
    .unwrap();
    let err = client.get("/").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Timeout { address: a, .. } if *a == address),
        "{err}"
    );
    holder.abort();
}

#[tokio::test]
async fn a_closed_port_should_be_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let err = client(&format!("http://{address}"))
        .get("/")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
}

#[test]
fn base_urls_should_be_https_or_http_with_a_host_and_nothing_else() {
    let ok = Base::parse("https://gw.example.net:8443").unwrap();
    assert_eq!(
        (ok.host.as_str(), ok.port, ok.https),
        ("gw.example.net", 8443, true)
    );
    let v6 = Base::parse("https://[::1]:49153/").unwrap();
    assert_eq!(
        (v6.host.as_str(), v6.authority.as_str()),
        ("::1", "[::1]:49153")
    );
    assert_eq!(Base::parse("http://10.0.0.2").unwrap().port, 80);
    for bad in [
        "gw:8443",
        "ftp://gw",
        "https://gw/upnp",
        "https://gw/?x=1",
        "https://user@gw",
        "",
        "https://",
    ] {
        let err = Base::parse(bad).unwrap_err().to_string();
        assert!(err.contains("https://HOST:PORT"), "{bad}: {err}");
    }
}

#[test]
fn https_should_need_a_ca_and_an_identity_should_need_https() {
    let err = SoapClient::new("https://127.0.0.1:1", Vec::new(), None, GENEROUS).unwrap_err();
    assert!(err.to_string().contains("CA certificate"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let pki = crate::upnp::tls::generate_demo_pki(dir.path()).unwrap();
    let identity = Identity::from_pem_files(&pki.operator_certificate, &pki.operator_key).unwrap();
    let err =
        SoapClient::new("http://127.0.0.1:1", Vec::new(), Some(identity), GENEROUS).unwrap_err();
    assert!(
        err.to_string().contains("only presented over https"),
        "{err}"
    );
    let https = SoapClient::from_pem_files(
        "https://127.0.0.1:1",
        Some(&pki.ca),
        Some(&pki.operator_certificate),
        Some(&pki.operator_key),
        GENEROUS,
    )
    .unwrap();
    assert!(https.presents_identity() && https.is_https());
}

#[test]
fn unreadable_files_should_be_named_with_their_role() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let err = SoapClient::from_pem_files("https://h:1", Some(&missing), None, None, GENEROUS)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CA certificate") && err.contains("missing.pem"),
        "{err}"
    );
    let err = SoapClient::from_pem_files("https://h:1", Some(&empty), None, None, GENEROUS)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no PEM certificate"), "{err}");

    let pki = crate::upnp::tls::generate_demo_pki(&dir.path().join("pki")).unwrap();
    let err = Identity::from_pem_files(&pki.operator_certificate, &empty)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("client key") && err.contains("empty.pem"),
        "{err}"
    );
    let err = SoapClient::from_pem_files(
        "https://h:1",
        Some(&pki.ca),
        Some(&pki.operator_certificate),
        None,
        GENEROUS,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("needs its key"), "{err}");
}

#[tokio::test]
async fn names_that_cannot_be_elements_should_be_refused_before_sending() {
    let client = client("http://127.0.0.1:1");
    let err = client
        .call("/c", SERVICE, "Set Values", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an action name"), "{err}");
    let err = client
        .call("/c", SERVICE, "SetValues", &[("a<b", "1")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an argument name"), "{err}");
    let err = client.get("relative").await.unwrap_err();
    assert!(err.to_string().contains("must start with /"), "{err}");
}
