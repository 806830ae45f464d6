//! The HTTP response to a SUBSCRIBE or UNSUBSCRIBE (UDA 2.0 §4.1.2–4.1.4).

use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, DATE, HeaderValue, SERVER};
use hyper::{Response, StatusCode};

use super::error::GenaError;
use super::publisher::Accepted;

/// The response for `result`: 200 with SID and TIMEOUT for a (re)subscription, a bare 200 for
/// an UNSUBSCRIBE, or the refusal's status with its reason as plain text.
pub(crate) fn build(
    result: &Result<Accepted, GenaError>,
    server: &str,
    date: SystemTime,
) -> Response<Full<Bytes>> {
    let (status, body) = match result {
        Ok(_) => (StatusCode::OK, Bytes::new()),
        Err(e) => (e.status(), Bytes::from(format!("{e}\n"))),
    };
    let mut response = Response::new(Full::new(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(date)) {
        headers.insert(DATE, date);
    }
    match HeaderValue::from_str(server) {
        Ok(server) => {
            headers.insert(SERVER, server);
        }
        Err(_) => tracing::warn!(
            server,
            "SERVER header value is not a valid header; left out"
        ),
    }
    match result {
        Ok(Accepted::Subscribed { sid, timeout } | Accepted::Renewed { sid, timeout }) => {
            if let Ok(sid) = HeaderValue::from_str(&sid.to_string()) {
                headers.insert("SID", sid);
            }
            if let Ok(timeout) = HeaderValue::from_str(&format!("Second-{}", timeout.as_secs())) {
                headers.insert("TIMEOUT", timeout);
            }
        }
        Ok(Accepted::Unsubscribed) => {}
        Err(_) => {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::upnp::gena::Sid;

    const SERVER_VALUE: &str = "Linux/6.1 UPnP/2.0 iotmc-gateway/0.1";

    #[test]
    fn accepted_subscription_should_answer_200_with_sid_timeout_and_no_body() {
        let sid = Sid::random();
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ok = Ok(Accepted::Subscribed {
            sid,
            timeout: Duration::from_secs(1800),
        });
        let response = build(&ok, SERVER_VALUE, date);
        assert_eq!(response.status(), StatusCode::OK);
        let h = response.headers();
        assert_eq!(h["SID"], sid.to_string().as_str());
        assert_eq!(h["TIMEOUT"], "Second-1800");
        assert_eq!(h[CONTENT_LENGTH], "0");
        assert_eq!(h[SERVER], SERVER_VALUE);
        assert_eq!(h[DATE], "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn refusal_should_answer_its_status_with_the_reason_as_text() {
        let refused = Err(GenaError::TooMany("on this service"));
        let response = build(&refused, SERVER_VALUE, SystemTime::now());
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert!(response.headers().get("SID").is_none());
        let length: usize = response.headers()[CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(length > 10);
    }
}
