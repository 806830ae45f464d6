//! Sending one NOTIFY (UDA 2.0 §4.3.2): a fresh HTTP/1.1 connection per delivery, each callback
//! URL tried in order until one answers 2xx, each try bounded by the delivery timeout.

use std::time::Duration;

use http_body_util::Full;
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::headers::CallbackUrl;
use super::publisher::Notify;

/// Why one NOTIFY to one callback URL failed.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("cannot connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("cannot build the request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Delivers `notify`, trying its callback URLs in order; whether one took it.
pub(crate) async fn deliver(notify: &Notify, timeout: Duration) -> bool {
    for url in &notify.callbacks {
        let error = match tokio::time::timeout(timeout, send(url, notify)).await {
            Ok(Ok(status)) if status.is_success() => return true,
            Ok(Ok(status)) => DeliveryError::Status(status),
            Ok(Err(e)) => e,
            Err(_) => DeliveryError::Timeout(timeout),
        };
        tracing::debug!(sid = %notify.sid, seq = notify.seq, callback = %url, %error,
            "NOTIFY not delivered");
    }
    false
}

async fn send(url: &CallbackUrl, notify: &Notify) -> Result<StatusCode, DeliveryError> {
    let stream = TcpStream::connect(url.addr()).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let request = Request::builder()
        .method(Method::from_bytes(b"NOTIFY").map_err(hyper::http::Error::from)?)
        .uri(url.path())
        .header(HOST, url.addr().to_string())
        .header(CONTENT_TYPE, r#"text/xml; charset="utf-8""#)
        .header("NT", "upnp:event")
        .header("NTS", "upnp:propchange")
        .header("SID", notify.sid.to_string())
        .header("SEQ", notify.seq.to_string())
        .header(CONTENT_LENGTH, notify.body.len())
        .header(CONNECTION, "close")
        .body(Full::new(notify.body.clone()))?;
    let mut conn = std::pin::pin!(conn);
    let mut response = std::pin::pin!(sender.send_request(request));
    // With `Connection: close` the connection future can finish in the same poll that hands
    // the response over; the response is what counts, so it is awaited after a clean close.
    tokio::select! {
        biased;
        response = &mut response => Ok(response?.status()),
        closed = &mut conn => {
            closed?;
            Ok(response.await?.status())
        }
    }
}
