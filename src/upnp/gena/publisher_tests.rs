use std::time::Duration;

use super::*;
use crate::upnp::gena::service::Moderation;

const SECOND: Duration = Duration::from_secs(1);

fn key(name: &str) -> ServiceKey {
    ServiceKey {
        device: uuid::Uuid::from_u128(7),
        service_id: format!("urn:x-test:serviceId:{name}"),
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

fn limits() -> GenaLimits {
    GenaLimits {
        initial_event_delay: Duration::ZERO,
        ..GenaLimits::default()
    }
}

/// A publisher with service `Lifecycle` evented as `LifecycleState` and `Availability`.
fn publisher(limits: GenaLimits) -> Publisher {
    let mut p = Publisher::new(limits);
    p.register(
        key("Lifecycle"),
        vec![
            EventedVariable::new("LifecycleState"),
            EventedVariable::new("Availability"),
        ],
        vec![
            ("LifecycleState".into(), "Active".into()),
            ("Availability".into(), "1".into()),
        ],
    );
    p
}

fn subscribe_with(
    p: &mut Publisher,
    callback: &str,
    timeout: RequestedTimeout,
    now: Instant,
) -> Result<Sid, GenaError> {
    let request = GenaRequest::Subscribe {
        callbacks: vec![CallbackUrl::parse(callback).unwrap()],
        timeout,
    };
    match p.handle_request(&key("Lifecycle"), request, &eth0(), now)? {
        Accepted::Subscribed { sid, .. } => Ok(sid),
        other => panic!("not subscribed: {other:?}"),
    }
}

fn subscribe(p: &mut Publisher, now: Instant) -> Sid {
    subscribe_with(
        p,
        "http://192.168.1.20:5000/evt",
        RequestedTimeout::Seconds(300),
        now,
    )
    .unwrap()
}

fn renew(p: &mut Publisher, sid: Sid, now: Instant) -> Result<Accepted, GenaError> {
    let request = GenaRequest::Renew {
        sid,
        timeout: RequestedTimeout::Seconds(300),
    };
    p.handle_request(&key("Lifecycle"), request, &eth0(), now)
}

fn publish(p: &mut Publisher, name: &str, value: &str, now: Instant) {
    p.publish(&key("Lifecycle"), &[(name.into(), value.into())], now);
}

fn body(n: &Notify) -> String {
    String::from_utf8(n.body.to_vec()).unwrap()
}

/// Sends every NOTIFY due at `now` and reports each delivered.
fn deliver_all(p: &mut Publisher, now: Instant) -> Vec<Notify> {
    let mut sent = Vec::new();
    while let Some(n) = p.poll_transmit(now) {
        p.handle_delivery_result(n.sid, n.id, true, now);
        sent.push(n);
    }
    sent
}

#[test]
fn new_subscription_should_get_an_initial_event_at_seq_0_with_every_variable() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    publish(&mut p, "LifecycleState", "Maintenance", t0);
    let sid = subscribe(&mut p, t0);
    let n = p.poll_transmit(t0).expect("initial event");
    assert_eq!((n.sid, n.seq), (sid, 0));
    assert_eq!(n.callbacks[0].as_str(), "http://192.168.1.20:5000/evt");
    let xml = body(&n);
    assert!(
        xml.contains("<LifecycleState>Maintenance</LifecycleState>"),
        "{xml}"
    );
    assert!(xml.contains("<Availability>1</Availability>"), "{xml}");
}

#[test]
fn initial_event_should_be_held_for_the_settle_delay() {
    let t0 = Instant::now();
    let mut p = publisher(GenaLimits {
        initial_event_delay: Duration::from_millis(200),
        ..GenaLimits::default()
    });
    subscribe(&mut p, t0);
    assert!(p.poll_transmit(t0).is_none());
    assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(200)));
    assert!(p.poll_transmit(t0 + Duration::from_millis(199)).is_none());
    assert_eq!(
        p.poll_transmit(t0 + Duration::from_millis(200))
            .map(|n| n.seq),
        Some(0)
    );
}

#[test]
fn seq_should_increment_per_notify_and_each_event_carry_only_its_changes() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    let sid = subscribe(&mut p, t0);
    deliver_all(&mut p, t0);
    publish(&mut p, "Availability", "0", t0);
    publish(&mut p, "LifecycleState", "Faulted", t0);
    let sent = deliver_all(&mut p, t0);
    assert_eq!(
        sent.iter().map(|n| (n.sid, n.seq)).collect::<Vec<_>>(),
        [(sid, 1), (sid, 2)]
    );
    assert!(body(&sent[0]).contains("<Availability>0</Availability>"));
    assert!(!body(&sent[0]).contains("LifecycleState"));
    assert!(body(&sent[1]).contains("<LifecycleState>Faulted</LifecycleState>"));
}

#[test]
fn renewal_should_extend_the_subscription_and_keep_seq() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    let sid = subscribe(&mut p, t0);
    deliver_all(&mut p, t0);
    let t1 = t0 + 200 * SECOND;
    assert_eq!(
        renew(&mut p, sid, t1),
        Ok(Accepted::Renewed {
            sid,
            timeout: 300 * SECOND
        })
    );
    // Past the first lease, inside the renewed one.
    let t2 = t0 + 400 * SECOND;
    p.handle_timeout(t2);
    publish(&mut p, "Availability", "0", t2);
    let sent = deliver_all(&mut p, t2);
    assert_eq!(sent.iter().map(|n| n.seq).collect::<Vec<_>>(), [1]);
}

#[test]
fn expired_subscription_should_not_receive_notify() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    let sid = subscribe(&mut p, t0);
    deliver_all(&mut p, t0);
    let late = t0 + 300 * SECOND;
    publish(&mut p, "Availability", "0", late);
    assert!(p.poll_transmit(late).is_none());
    assert!(matches!(
        renew(&mut p, sid, late),
        Err(GenaError::UnknownSid(_))
    ));
}

#[test]
fn expired_subscription_should_be_dropped_by_the_timer() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    subscribe(&mut p, t0);
    deliver_all(&mut p, t0);
    assert_eq!(p.poll_timeout(), Some(t0 + 300 * SECOND));
    p.handle_timeout(t0 + 300 * SECOND);
    assert_eq!(p.poll_timeout(), None);
    assert!(p.is_idle());
}

#[test]
fn unsubscribed_subscription_should_not_receive_notify_and_its_sid_is_forgotten() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    let sid = subscribe(&mut p, t0);
    deliver_all(&mut p, t0);
    let cancel = GenaRequest::Unsubscribe { sid };
    assert_eq!(
        p.handle_request(&key("Lifecycle"), cancel.clone(), &eth0(), t0),
        Ok(Accepted::Unsubscribed)
    );
    publish(&mut p, "Availability", "0", t0);
    assert!(p.poll_transmit(t0).is_none());
    assert!(matches!(
        p.handle_request(&key("Lifecycle"), cancel, &eth0(), t0),
        Err(GenaError::UnknownSid(_))
    ));
}

#[test]
fn a_sid_should_only_be_valid_on_its_own_event_url() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    p.register(key("Other"), vec![EventedVariable::new("X")], vec![]);
    let sid = subscribe(&mut p, t0);
    let renew_elsewhere = GenaRequest::Renew {
        sid,
        timeout: RequestedTimeout::Unspecified,
    };
    assert!(matches!(
        p.handle_request(&key("Other"), renew_elsewhere, &eth0(), t0),
        Err(GenaError::UnknownSid(_))
    ));
}

#[test]
fn subscribing_to_an_unregistered_service_should_fail_the_precondition() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    let request = GenaRequest::Subscribe {
        callbacks: vec![CallbackUrl::parse("http://192.168.1.20/").unwrap()],
        timeout: RequestedTimeout::Unspecified,
    };
    assert_eq!(
        p.handle_request(&key("Nope"), request, &eth0(), t0),
        Err(GenaError::NoSuchService)
    );
}

#[test]
fn subscriptions_beyond_the_per_service_cap_should_be_refused_with_503() {
    let t0 = Instant::now();
    let mut p = publisher(GenaLimits {
        max_per_service: 2,
        ..limits()
    });
    subscribe(&mut p, t0);
    subscribe(&mut p, t0);
    let third = subscribe_with(
        &mut p,
        "http://192.168.1.21/",
        RequestedTimeout::Unspecified,
        t0,
    );
    assert_eq!(third, Err(GenaError::TooMany("on this service")));
    assert_eq!(
        third.unwrap_err().status(),
        hyper::StatusCode::SERVICE_UNAVAILABLE
    );
    // Another service still has room until the total cap.
    p.register(key("Other"), vec![EventedVariable::new("X")], vec![]);
    let request = GenaRequest::Subscribe {
        callbacks: vec![CallbackUrl::parse("http://192.168.1.20/").unwrap()],
        timeout: RequestedTimeout::Unspecified,
    };
    assert!(
        p.handle_request(&key("Other"), request, &eth0(), t0)
            .is_ok()
    );
    // A lapsed subscription frees its place.
    assert!(
        subscribe_with(
            &mut p,
            "http://192.168.1.21/",
            RequestedTimeout::Unspecified,
            t0 + 300 * SECOND
        )
        .is_ok()
    );
}

#[test]
fn subscriptions_beyond_the_total_cap_should_be_refused_with_503() {
    let t0 = Instant::now();
    let mut p = publisher(GenaLimits {
        max_total: 1,
        ..limits()
    });
    subscribe(&mut p, t0);
    assert_eq!(
        subscribe_with(
            &mut p,
            "http://192.168.1.21/",
            RequestedTimeout::Unspecified,
            t0
        ),
        Err(GenaError::TooMany("on this gateway"))
    );
}

#[test]
fn off_subnet_https_and_hostname_callbacks_should_be_refused() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    let off = subscribe_with(
        &mut p,
        "http://10.0.0.5/evt",
        RequestedTimeout::Unspecified,
        t0,
    );
    let Err(err @ GenaError::BadCallback { .. }) = off else {
        panic!("{off:?}");
    };
    assert_eq!(err.status(), hyper::StatusCode::PRECONDITION_FAILED);
    assert!(err.to_string().contains("http://10.0.0.5/evt"), "{err}");
    assert!(err.to_string().contains("subnet"), "{err}");
    // https and host names never get this far: parse_request refuses them (headers_tests).
    assert!(CallbackUrl::parse("https://192.168.1.20/").is_err());
    assert!(CallbackUrl::parse("http://cp.example/").is_err());
    assert!(p.is_idle());
}

#[test]
fn maximum_rate_should_hold_a_change_and_send_the_latest_when_the_period_ends() {
    let t0 = Instant::now();
    let mut p = Publisher::new(limits());
    let k = key("Lifecycle");
    p.register(
        k.clone(),
        vec![EventedVariable {
            name: "Temperature".into(),
            moderation: Moderation::MaximumRate(10 * SECOND),
        }],
        vec![("Temperature".into(), "20".into())],
    );
    subscribe(&mut p, t0);
    deliver_all(&mut p, t0);
    p.publish(&k, &[("Temperature".into(), "21".into())], t0);
    p.publish(&k, &[("Temperature".into(), "22".into())], t0 + SECOND);
    p.publish(&k, &[("Temperature".into(), "23".into())], t0 + 2 * SECOND);
    let sent = deliver_all(&mut p, t0 + 2 * SECOND);
    assert_eq!(sent.len(), 1);
    assert!(body(&sent[0]).contains("<Temperature>21</Temperature>"));
    assert_eq!(p.poll_timeout(), Some(t0 + 10 * SECOND));
    p.handle_timeout(t0 + 10 * SECOND);
    let sent = deliver_all(&mut p, t0 + 10 * SECOND);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].seq, 2);
    assert!(body(&sent[0]).contains("<Temperature>23</Temperature>"));
}

#[test]
fn minimum_delta_should_suppress_small_changes() {
    let t0 = Instant::now();
    let mut p = Publisher::new(limits());
    let k = key("Lifecycle");
    p.register(
        k.clone(),
        vec![EventedVariable {
            name: "Temperature".into(),
            moderation: Moderation::MinimumDelta(0.5),
        }],
        vec![("Temperature".into(), "20.0".into())],
    );
    subscribe(&mut p, t0);
    deliver_all(&mut p, t0);
    p.publish(&k, &[("Temperature".into(), "20.3".into())], t0);
    assert!(p.poll_transmit(t0).is_none());
    p.publish(&k, &[("Temperature".into(), "20.6".into())], t0);
    let sent = deliver_all(&mut p, t0);
    assert_eq!(sent.len(), 1);
    assert!(body(&sent[0]).contains("<Temperature>20.6</Temperature>"));
}

#[test]
fn failed_delivery_should_be_retried_with_backoff_under_the_same_seq() {
    let t0 = Instant::now();
    let mut p = publisher(GenaLimits {
        delivery_attempts: 3,
        ..limits()
    });
    subscribe(&mut p, t0);
    let n = p.poll_transmit(t0).unwrap();
    assert!(
        p.poll_transmit(t0).is_none(),
        "one in flight per subscriber"
    );
    p.handle_delivery_result(n.sid, n.id, false, t0);
    assert!(p.poll_transmit(t0 + SECOND).is_none());
    let retry = p
        .poll_transmit(t0 + 2 * SECOND)
        .expect("retry after backoff");
    assert_eq!(retry.seq, 0);
    p.handle_delivery_result(retry.sid, retry.id, true, t0 + 2 * SECOND);
    publish(&mut p, "Availability", "0", t0 + 3 * SECOND);
    assert_eq!(p.poll_transmit(t0 + 3 * SECOND).map(|n| n.seq), Some(1));
}

#[test]
fn dead_subscriber_should_be_dropped_after_repeated_failed_deliveries() {
    let t0 = Instant::now();
    let mut p = publisher(GenaLimits {
        delivery_attempts: 2,
        dead_after: 2,
        retry_backoff: SECOND,
        ..limits()
    });
    let sid = subscribe(&mut p, t0);
    publish(&mut p, "Availability", "0", t0);
    let mut now = t0;
    let mut seqs = Vec::new();
    while let Some(at) = p.poll_timeout().filter(|at| *at < t0 + 100 * SECOND) {
        now = now.max(at);
        p.handle_timeout(now);
        if let Some(n) = p.poll_transmit(now) {
            seqs.push(n.seq);
            p.handle_delivery_result(n.sid, n.id, false, now);
        }
    }
    // Two attempts at SEQ 0, abandoned; two at SEQ 1, abandoned; then the subscriber is gone.
    assert_eq!(seqs, [0, 0, 1, 1]);
    assert!(p.is_idle());
    assert!(matches!(
        renew(&mut p, sid, now),
        Err(GenaError::UnknownSid(_))
    ));
}

#[test]
fn a_delivered_event_should_reset_the_dead_subscriber_count() {
    let t0 = Instant::now();
    let mut p = publisher(GenaLimits {
        delivery_attempts: 1,
        dead_after: 2,
        ..limits()
    });
    let sid = subscribe(&mut p, t0);
    for (i, ok) in [false, true, false, true, false].into_iter().enumerate() {
        publish(&mut p, "Availability", &i.to_string(), t0);
        let n = p.poll_transmit(t0).unwrap();
        p.handle_delivery_result(n.sid, n.id, ok, t0);
    }
    assert!(renew(&mut p, sid, t0).is_ok());
}

#[test]
fn a_stalled_subscriber_should_not_queue_more_than_the_bound() {
    let t0 = Instant::now();
    let mut p = publisher(GenaLimits {
        queue_len: 4,
        ..limits()
    });
    subscribe(&mut p, t0);
    let stuck = p.poll_transmit(t0).unwrap();
    for i in 0..1000 {
        publish(&mut p, "Availability", &i.to_string(), t0);
    }
    assert!(p.subscriptions.values().all(|s| s.waiting() <= 4));
    p.handle_delivery_result(stuck.sid, stuck.id, true, t0);
    let sent = deliver_all(&mut p, t0);
    assert!(sent.len() <= 4, "{}", sent.len());
    assert!(body(sent.last().unwrap()).contains("<Availability>999</Availability>"));
}

#[test]
fn a_late_result_for_a_cancelled_subscription_should_be_ignored() {
    let t0 = Instant::now();
    let mut p = publisher(limits());
    let sid = subscribe(&mut p, t0);
    let n = p.poll_transmit(t0).unwrap();
    p.handle_request(
        &key("Lifecycle"),
        GenaRequest::Unsubscribe { sid },
        &eth0(),
        t0,
    )
    .unwrap();
    p.handle_delivery_result(n.sid, n.id, false, t0);
    p.handle_delivery_result(n.sid, n.id + 7, true, t0);
    assert!(p.is_idle());
}
