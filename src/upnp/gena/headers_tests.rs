use hyper::StatusCode;

use super::*;

const SID: &str = "uuid:6f2c1a34-4b1e-4d7a-9d55-0123456789ab";

fn request(method: &str, headers: &[(&str, &str)]) -> Result<GenaRequest, GenaError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    parse_request(&Method::from_bytes(method.as_bytes()).unwrap(), &map)
}

fn status(result: Result<GenaRequest, GenaError>) -> StatusCode {
    result.unwrap_err().status()
}

fn callbacks(header: &str) -> Result<Vec<CallbackUrl>, GenaError> {
    match request("SUBSCRIBE", &[("NT", "upnp:event"), ("CALLBACK", header)])? {
        GenaRequest::Subscribe { callbacks, .. } => Ok(callbacks),
        other => panic!("not a new subscription: {other:?}"),
    }
}

fn refusal(header: &str) -> CallbackRefusal {
    match callbacks(header) {
        Err(GenaError::BadCallback { why, .. }) => why,
        other => panic!("{header} should be refused, got {other:?}"),
    }
}

fn timeout(value: &str) -> Result<RequestedTimeout, GenaError> {
    match request("SUBSCRIBE", &[("SID", SID), ("TIMEOUT", value)])? {
        GenaRequest::Renew { timeout, .. } => Ok(timeout),
        other => panic!("not a renewal: {other:?}"),
    }
}

#[test]
fn new_subscription_should_parse_callbacks_in_order_and_the_timeout() {
    let parsed = request(
        "SUBSCRIBE",
        &[
            ("NT", "upnp:event"),
            (
                "CALLBACK",
                "<http://192.168.1.20:49152/evt?x=1> <http://192.168.1.20/b#frag>",
            ),
            ("TIMEOUT", "Second-300"),
        ],
    )
    .unwrap();
    let GenaRequest::Subscribe { callbacks, timeout } = parsed else {
        panic!("{parsed:?}");
    };
    assert_eq!(timeout, RequestedTimeout::Seconds(300));
    assert_eq!(callbacks.len(), 2);
    assert_eq!(callbacks[0].addr(), "192.168.1.20:49152".parse().unwrap());
    assert_eq!(callbacks[0].path(), "/evt?x=1");
    assert_eq!(callbacks[1].addr(), "192.168.1.20:80".parse().unwrap());
    assert_eq!(callbacks[1].path(), "/b");
    assert_eq!(callbacks[1].as_str(), "http://192.168.1.20/b#frag");
}

#[test]
fn renewal_and_unsubscribe_should_parse_the_sid() {
    let sid = Sid::parse(SID).unwrap();
    assert_eq!(sid.to_string(), SID);
    assert_eq!(
        request("SUBSCRIBE", &[("SID", SID)]).unwrap(),
        GenaRequest::Renew {
            sid,
            timeout: RequestedTimeout::Unspecified
        }
    );
    assert_eq!(
        request("UNSUBSCRIBE", &[("SID", SID)]).unwrap(),
        GenaRequest::Unsubscribe { sid }
    );
}

#[test]
fn sid_with_nt_or_callback_should_be_a_bad_request() {
    let cb = "<http://10.0.0.2/>";
    for method in ["SUBSCRIBE", "UNSUBSCRIBE"] {
        for extra in [("NT", "upnp:event"), ("CALLBACK", cb)] {
            let result = request(method, &[("SID", SID), extra]);
            assert_eq!(result, Err(GenaError::Incompatible), "{method} {extra:?}");
            assert_eq!(status(result), StatusCode::BAD_REQUEST);
        }
    }
}

#[test]
fn a_repeated_header_should_be_a_bad_request() {
    let result = request(
        "SUBSCRIBE",
        &[
            ("NT", "upnp:event"),
            ("CALLBACK", "<http://10.0.0.2/>"),
            ("CALLBACK", "<http://10.0.0.3/>"),
        ],
    );
    assert_eq!(result, Err(GenaError::Duplicate("CALLBACK")));
    assert_eq!(status(result), StatusCode::BAD_REQUEST);
}

#[test]
fn missing_or_wrong_nt_or_callback_should_fail_the_precondition() {
    let cb = ("CALLBACK", "<http://10.0.0.2/>");
    let cases = [
        (vec![cb], GenaError::MissingNt),
        (
            vec![("NT", "upnp:propchange"), cb],
            GenaError::BadNt("upnp:propchange".into()),
        ),
        (vec![("NT", "upnp:event")], GenaError::MissingCallback),
        (vec![], GenaError::MissingNt),
    ];
    for (headers, expected) in cases {
        let result = request("SUBSCRIBE", &headers);
        assert_eq!(result, Err(expected), "{headers:?}");
        assert_eq!(status(result), StatusCode::PRECONDITION_FAILED);
    }
}

#[test]
fn unsubscribe_without_sid_and_a_malformed_sid_should_fail_the_precondition() {
    assert_eq!(request("UNSUBSCRIBE", &[]), Err(GenaError::MissingSid));
    for bad in [
        "uuid:not-a-uuid",
        "6f2c1a34-4b1e-4d7a-9d55-0123456789ab",
        "",
    ] {
        let result = request("SUBSCRIBE", &[("SID", bad)]);
        assert!(matches!(result, Err(GenaError::UnknownSid(_))), "{bad}");
        assert_eq!(status(result), StatusCode::PRECONDITION_FAILED);
    }
}

#[test]
fn other_methods_should_not_be_allowed() {
    assert_eq!(status(request("GET", &[])), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn timeout_should_accept_seconds_and_infinite_in_any_case() {
    assert_eq!(timeout("Second-1800"), Ok(RequestedTimeout::Seconds(1800)));
    assert_eq!(timeout("second-60 "), Ok(RequestedTimeout::Seconds(60)));
    assert_eq!(timeout("Second-infinite"), Ok(RequestedTimeout::Infinite));
    assert_eq!(timeout("SECOND-INFINITE"), Ok(RequestedTimeout::Infinite));
    assert_eq!(
        timeout("Second-999999999999"),
        Ok(RequestedTimeout::Seconds(999_999_999_999))
    );
}

#[test]
fn malformed_timeout_should_be_a_bad_request() {
    for bad in [
        "1800",
        "Second-",
        "Second--5",
        "Second-+5",
        "Second-1e3",
        "Minute-5",
        "Second-9999999999999",
        "Sec",
    ] {
        let result = timeout(bad);
        assert!(matches!(result, Err(GenaError::BadTimeout(_))), "{bad}");
    }
}

#[test]
fn callback_lists_that_are_not_bracketed_urls_should_fail_the_precondition() {
    for bad in [
        "http://10.0.0.2/",
        "<http://10.0.0.2/",
        "<http://10.0.0.2/> junk",
        "",
        "   ",
    ] {
        let result = callbacks(bad);
        assert!(
            matches!(result, Err(GenaError::BadCallbackList(_))),
            "{bad:?}: {result:?}"
        );
        assert_eq!(
            result.unwrap_err().status(),
            StatusCode::PRECONDITION_FAILED
        );
    }
}

#[test]
fn more_than_four_callbacks_or_an_oversize_header_should_be_refused() {
    let five = "<http://10.0.0.2/>".repeat(5);
    assert_eq!(
        callbacks(&five),
        Err(GenaError::BadCallbackList("lists more than 4 URLs"))
    );
    assert_eq!(callbacks(&"<http://10.0.0.2/>".repeat(4)).unwrap().len(), 4);
    let long_url = format!("<http://10.0.0.2/{}>", "a".repeat(MAX_CALLBACK_URL_LEN));
    assert_eq!(
        refusal(&long_url),
        CallbackRefusal::TooLong(MAX_CALLBACK_URL_LEN)
    );
    let huge = format!("<{}>", "a".repeat(8 * 1024));
    assert_eq!(
        callbacks(&huge),
        Err(GenaError::BadCallbackList("is too long"))
    );
}

#[test]
fn callbacks_other_than_http_to_an_ipv4_literal_should_be_refused() {
    assert_eq!(refusal("<https://10.0.0.2/>"), CallbackRefusal::Https);
    assert_eq!(refusal("<ftp://10.0.0.2/>"), CallbackRefusal::NotHttp);
    assert_eq!(refusal("<gopher://10.0.0.2/>"), CallbackRefusal::NotHttp);
    assert_eq!(refusal("</relative/path>"), CallbackRefusal::NotAbsolute);
    assert_eq!(refusal("<http://cp.local/evt>"), CallbackRefusal::Hostname);
    assert_eq!(refusal("<http://localhost/>"), CallbackRefusal::Hostname);
    assert_eq!(refusal("<http://127.1/>"), CallbackRefusal::Hostname);
    assert_eq!(refusal("<http://[::1]:80/>"), CallbackRefusal::Ipv6);
    assert_eq!(refusal("<http://u:p@10.0.0.2/>"), CallbackRefusal::UserInfo);
    assert_eq!(refusal("<http://10.0.0.2:0/>"), CallbackRefusal::BadPort);
    assert_eq!(
        refusal("<http://10.0.0.2:99999/>"),
        CallbackRefusal::BadPort
    );
    assert_eq!(refusal("<http://10.0.0.2:+80/>"), CallbackRefusal::BadPort);
    assert_eq!(refusal("<http://10.0.0.2:/>"), CallbackRefusal::BadPort);
}

#[test]
fn a_callback_path_that_could_split_the_request_line_should_be_refused() {
    // HeaderValue already refuses CR and LF; a space or tab would end the request target.
    assert_eq!(refusal("<http://10.0.0.2/a b>"), CallbackRefusal::BadPath);
    assert_eq!(refusal("<http://10.0.0.2/a\tb>"), CallbackRefusal::BadPath);
}

#[test]
fn the_refusal_reason_should_name_the_url_and_why() {
    let err = callbacks("<http://10.0.0.2/> <https://10.0.0.3/x>").unwrap_err();
    let reason = err.to_string();
    assert!(reason.contains("https://10.0.0.3/x"), "{reason}");
    assert!(reason.contains("https"), "{reason}");
}

fn iface(addr: [u8; 4], mask: [u8; 4]) -> ServedInterface {
    ServedInterface {
        name: "eth0".into(),
        index: 2,
        addr: addr.into(),
        netmask: mask.into(),
    }
}

#[test]
fn callbacks_off_the_arrival_subnet_should_be_refused() {
    let eth0 = iface([192, 168, 1, 10], [255, 255, 255, 0]);
    let url = |u: &str| CallbackUrl::parse(u).unwrap();
    assert_eq!(
        url("http://192.168.1.77:5000/e").check_reachable_from(&eth0),
        Ok(())
    );
    let off = url("http://192.168.2.77/e").check_reachable_from(&eth0);
    assert_eq!(
        off,
        Err(CallbackRefusal::OffSubnet {
            addr: Ipv4Addr::new(192, 168, 2, 77),
            interface: "eth0".into(),
            local: Ipv4Addr::new(192, 168, 1, 10),
            prefix: 24,
        })
    );
    let why = off.unwrap_err().to_string();
    assert!(
        why.contains("192.168.2.77") && why.contains("eth0"),
        "{why}"
    );
    for not_unicast in [
        "0.0.0.0",
        "255.255.255.255",
        "239.255.255.250",
        "192.168.1.255",
    ] {
        assert!(
            matches!(
                url(&format!("http://{not_unicast}/")).check_reachable_from(&eth0),
                Err(CallbackRefusal::NotUnicast(_))
            ),
            "{not_unicast}"
        );
    }
}
