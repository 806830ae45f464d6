//! The broker driver against the embedded broker (rumqttd on loopback): publish and subscribe on
//! both protocol versions and across them, shared filters, retained messages, acknowledged
//! publishes, MQTT 5 request/response, failures while the broker is down, and recovery after
//! the connection drops.
#![cfg(feature = "sim")]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use iotmc_adapter::{ErrorKind, LinkError};
use iotmc_adapter_mqtt::driver::{
    BrokerHandle, ConnectionState, Request, SUBSCRIPTION_QUEUE, Subscription,
};
use iotmc_adapter_mqtt::frame::{Message, Outgoing, Properties, QoS};
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::{BrokerSettings, MqttVersion};
use tokio::time::timeout;

#[path = "driver/peers.rs"]
mod peers;
use peers::{Proxy, fake_broker, responder, tls_front, unused_addr, v4_client};

/// Longest any step of these tests may take; they finish in milliseconds when they pass.
const DEADLINE: Duration = Duration::from_secs(10);
/// How long to wait to be sure a message does not come.
const QUIET: Duration = Duration::from_millis(300);

fn settings(addr: SocketAddr, version: MqttVersion, client_id: &str) -> BrokerSettings {
    let mut settings = BrokerSettings::plain("test", "127.0.0.1", addr.port(), client_id);
    settings.version = version;
    settings
}

fn v5(broker: &EmbeddedBroker, client_id: &str) -> BrokerHandle {
    BrokerHandle::spawn(settings(broker.v5_addr(), MqttVersion::V5, client_id))
}

fn v311(broker: &EmbeddedBroker, client_id: &str) -> BrokerHandle {
    BrokerHandle::spawn(settings(broker.v311_addr(), MqttVersion::V311, client_id))
}

/// Waits until the handle's state satisfies `pred`; fails the test with the last state.
async fn wait_state(
    handle: &BrokerHandle,
    pred: impl Fn(&ConnectionState) -> bool,
) -> ConnectionState {
    let mut state = handle.state();
    let result = timeout(DEADLINE, state.wait_for(|s| pred(s)))
        .await
        .map(|r| r.map(|s| s.clone()));
    match result {
        Ok(Ok(s)) => s,
        _ => panic!(
            "broker `{}` stayed {}",
            handle.name(),
            *handle.state().borrow()
        ),
    }
}

async fn connected(handle: &BrokerHandle) {
    wait_state(handle, |s| *s == ConnectionState::Connected).await;
}

async fn subscribed(handle: &BrokerHandle, filter: &str) -> Subscription {
    let mut subscription = handle
        .subscribe(filter)
        .await
        .unwrap_or_else(|e| panic!("subscribing to `{filter}`: {e}"));
    timeout(DEADLINE, subscription.ready())
        .await
        .unwrap_or_else(|_| panic!("no SUBACK for `{filter}`"))
        .unwrap_or_else(|e| panic!("subscribing to `{filter}`: {e}"));
    subscription
}

async fn next(subscription: &mut Subscription) -> Message {
    timeout(DEADLINE, subscription.recv())
        .await
        .unwrap_or_else(|_| panic!("nothing arrived on `{}`", subscription.filter()))
        .expect("the driver stopped")
}

async fn nothing(subscription: &mut Subscription) {
    if let Ok(message) = timeout(QUIET, subscription.recv()).await {
        panic!(
            "expected nothing on `{}`, got {message:?}",
            subscription.filter()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_handle_and_a_v311_device_should_exchange_messages_through_the_broker() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-cross");
    connected(&handle).await;
    let mut from_device = subscribed(&handle, "tele/plug/STATE").await;
    let (device, mut to_device) =
        v4_client(broker.v311_addr(), "plug-cross", &["cmnd/plug/POWER"]).await;

    device
        .publish(
            "tele/plug/STATE",
            rumqttc::QoS::AtLeastOnce,
            false,
            r#"{"POWER":"ON"}"#,
        )
        .await
        .unwrap();
    let message = next(&mut from_device).await;
    assert_eq!(message.topic, "tele/plug/STATE");
    assert_eq!(message.text(), Some(r#"{"POWER":"ON"}"#));

    handle
        .publish(Outgoing::new("cmnd/plug/POWER", "OFF"))
        .await
        .unwrap();
    let command = timeout(DEADLINE, to_device.recv()).await.unwrap().unwrap();
    assert_eq!(command.topic, "cmnd/plug/POWER");
    assert_eq!(&command.payload[..], b"OFF");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_of_both_versions_should_publish_and_subscribe() {
    let broker = EmbeddedBroker::start().unwrap();
    for (handle, other) in [
        (v5(&broker, "gw-a5"), v5(&broker, "gw-b5")),
        (v311(&broker, "gw-a4"), v311(&broker, "gw-b4")),
        (v311(&broker, "gw-c4"), v5(&broker, "gw-c5")),
    ] {
        connected(&handle).await;
        connected(&other).await;
        let topic = format!("test/{}/x", handle.version() as u8);
        let mut subscription = subscribed(&handle, &topic).await;
        other
            .publish(Outgoing::new(topic.as_str(), "hello"))
            .await
            .unwrap();
        let message = next(&mut subscription).await;
        assert_eq!(
            (message.topic.as_str(), message.text()),
            (topic.as_str(), Some("hello"))
        );
        assert!(!message.retain);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_should_get_the_answer_of_a_v5_responder() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-req");
    connected(&handle).await;
    let _responder = responder(broker.v5_addr(), "dev-req", Duration::ZERO).await;

    let answer = handle
        .request(Request {
            message: Outgoing::new("dev/req/rpc", "ping"),
            timeout: DEADLINE,
        })
        .await
        .unwrap();
    assert_eq!(answer.text(), Some("pong:ping"));
    assert!(
        answer.topic.starts_with("iotmc/gw-req/reply/"),
        "{}",
        answer.topic
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_on_mqtt_311_should_be_unsupported() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v311(&broker, "gw-req4");
    let err = handle
        .request(Request {
            message: Outgoing::new("dev/req/rpc", "ping"),
            timeout: DEADLINE,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("MQTT 5"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_properties_on_mqtt_311_should_be_unsupported() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v311(&broker, "gw-props4");
    connected(&handle).await;
    let message = Outgoing::new("a/b", "x").with_properties(Properties {
        content_type: Some("application/json".into()),
        ..Properties::default()
    });
    let err = handle.publish(message).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos1_publish_should_return_after_the_puback() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-qos1");
    connected(&handle).await;
    // Retained, so the broker holds it once it acknowledged: a subscriber that comes after
    // publish() returned must get it.
    handle
        .publish(Outgoing::new("qos1/state", Bytes::from_static(b"42")).retained())
        .await
        .unwrap();
    let mut late = subscribed(&handle, "qos1/state").await;
    let message = next(&mut late).await;
    assert_eq!(message.text(), Some("42"));
    assert!(message.retain);
    let _ = LinkError::Closed;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_sharing_a_filter_should_unsubscribe_only_with_the_last() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-share");
    let publisher = v5(&broker, "gw-share-pub");
    connected(&handle).await;
    connected(&publisher).await;
    let mut first = subscribed(&handle, "share/+/x").await;
    let mut second = subscribed(&handle, "share/+/x").await;

    publisher
        .publish(Outgoing::new("share/1/x", "one"))
        .await
        .unwrap();
    assert_eq!(next(&mut first).await.text(), Some("one"));
    assert_eq!(next(&mut second).await.text(), Some("one"));

    drop(first);
    publisher
        .publish(Outgoing::new("share/2/x", "two"))
        .await
        .unwrap();
    assert_eq!(next(&mut second).await.text(), Some("two"));

    // Once both are gone the broker stops sending: a new subscription to a wider filter sees
    // the message once, not also a copy for the old one.
    drop(second);
    let mut wide = subscribed(&handle, "share/#").await;
    publisher
        .publish(Outgoing::new("share/3/x", "three"))
        .await
        .unwrap();
    assert_eq!(next(&mut wide).await.text(), Some("three"));
    nothing(&mut wide).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subscription_should_get_the_retained_message_also_after_a_resubscribe() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-retain");
    connected(&handle).await;
    handle
        .publish(Outgoing::new("retain/dev/$state", "ready").retained())
        .await
        .unwrap();
    let mut first = subscribed(&handle, "retain/dev/$state").await;
    let message = next(&mut first).await;
    assert_eq!((message.text(), message.retain), (Some("ready"), true));

    // A device link detached and attached again: the old subscription is dropped just before
    // the new one subscribes the same filter. (rumqttd does not send retained messages again
    // for a filter the client still holds, although MQTT 5 §3.8.4 says it must, so a
    // subscription joining a live shared filter gets them only from other brokers.)
    drop(first);
    let mut again = subscribed(&handle, "retain/dev/$state").await;
    let message = next(&mut again).await;
    assert_eq!((message.text(), message.retain), (Some("ready"), true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nobody_answers_should_time_out() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-timeout");
    connected(&handle).await;
    let wait = Duration::from_millis(300);
    let err = handle
        .request(Request {
            message: Outgoing::new("dev/nobody/rpc", "ping"),
            timeout: wait,
        })
        .await
        .unwrap_err();
    assert_eq!(err, LinkError::Timeout { after: wait });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_answer_should_be_dropped_and_the_next_request_answered() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-late");
    connected(&handle).await;
    let _responder = responder(broker.v5_addr(), "dev-late", Duration::from_millis(400)).await;

    let err = handle
        .request(Request {
            message: Outgoing::new("dev/req/rpc", "first"),
            timeout: Duration::from_millis(100),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // The second request is sent before the first answer arrives and answered after it: it
    // must get its own answer, not the late one.
    let answer = handle
        .request(Request {
            message: Outgoing::new("dev/req/rpc", "second"),
            timeout: DEADLINE,
        })
        .await
        .unwrap();
    assert_eq!(answer.text(), Some("pong:second"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_not_there_should_be_down_with_connection_refused() {
    let nothing_there = unused_addr();
    let handle = BrokerHandle::spawn(settings(nothing_there, MqttVersion::V5, "gw-nobroker"));
    let state = wait_state(&handle, |s| matches!(s, ConnectionState::Down { .. })).await;
    let ConnectionState::Down { reason, retry_in } = state else {
        unreachable!()
    };
    assert!(reason.contains("connection refused"), "{reason}");
    assert_eq!(retry_in, Duration::from_millis(500));
    // The next attempt fails too, and waits twice as long.
    let state = wait_state(&handle, |s| {
        matches!(s, ConnectionState::Down { retry_in, .. } if *retry_in == Duration::from_secs(1))
    })
    .await;
    assert!(state.to_string().contains("connection refused"), "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_while_down_should_fail_at_once_naming_the_broker() {
    let handle = BrokerHandle::spawn(settings(unused_addr(), MqttVersion::V311, "gw-down"));
    wait_state(&handle, |s| matches!(s, ConnectionState::Down { .. })).await;
    let started = tokio::time::Instant::now();
    let err = handle
        .publish(Outgoing::new("cmnd/plug/POWER", "ON"))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("broker `test`") && text.contains("connection refused"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_should_close_the_connection_and_every_subscription() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v311(&broker, "gw-shutdown");
    connected(&handle).await;
    let mut subscription = subscribed(&handle, "bye/#").await;
    handle.shutdown();
    wait_state(&handle, |s| *s == ConnectionState::Closed).await;
    assert_eq!(timeout(DEADLINE, subscription.recv()).await.unwrap(), None);
    let err = handle
        .publish(Outgoing::new("bye/x", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_should_stop_the_driver() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-drop");
    connected(&handle).await;
    let mut subscription = subscribed(&handle, "drop/#").await;
    let mut state = handle.state();
    let clone = handle.clone();
    drop(handle);
    // One handle is left: the driver still runs.
    clone.publish(Outgoing::new("drop/x", "1")).await.unwrap();
    assert_eq!(next(&mut subscription).await.text(), Some("1"));
    drop(clone);
    timeout(DEADLINE, state.wait_for(|s| *s == ConnectionState::Closed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(timeout(DEADLINE, subscription.recv()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_should_come_back_with_its_subscriptions() {
    let broker = EmbeddedBroker::start().unwrap();
    for (version, upstream) in [
        (MqttVersion::V5, broker.v5_addr()),
        (MqttVersion::V311, broker.v311_addr()),
    ] {
        let proxy = Proxy::start(upstream).await;
        let handle = BrokerHandle::spawn(settings(
            proxy.addr,
            version,
            &format!("gw-cut-{version:?}"),
        ));
        let publisher = v5(&broker, &format!("pub-cut-{version:?}"));
        connected(&handle).await;
        connected(&publisher).await;
        let mut subscription = subscribed(&handle, "cut/+/state").await;

        proxy.cut();
        let down = wait_state(&handle, |s| matches!(s, ConnectionState::Down { .. })).await;
        assert!(down.to_string().contains("closed the connection"), "{down}");
        connected(&handle).await;

        publisher
            .publish(Outgoing::new("cut/1/state", "after"))
            .await
            .unwrap();
        let message = next(&mut subscription).await;
        assert_eq!(message.text(), Some("after"), "{version}");
        // The subscription counts as established again.
        timeout(DEADLINE, subscription.ready())
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_connection_dropped_should_say_so_when_it_times_out() {
    let broker = EmbeddedBroker::start().unwrap();
    let proxy = Proxy::start(broker.v5_addr()).await;
    let handle = BrokerHandle::spawn(settings(proxy.addr, MqttVersion::V5, "gw-cut-req"));
    connected(&handle).await;
    let mut seen = subscribed(&handle, "dev/silent/rpc").await;

    let request = handle.request(Request {
        message: Outgoing::new("dev/silent/rpc", "reboot"),
        timeout: Duration::from_millis(1500),
    });
    let cut = async {
        // The request is out once the broker echoes it to our own subscription.
        next(&mut seen).await;
        proxy.cut();
    };
    let (result, ()) = tokio::join!(request, cut);
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("broker `test` dropped at") && text.contains("may have carried out"),
        "{text}"
    );
}

/// rumqttc's codec refuses a packet above the limit and drops the connection (rumqttd also
/// ignores the MQTT 5 Maximum Packet Size the client announces), so the driver reconnects:
/// the oversized message is lost, the state says why, and the subscription works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_above_the_packet_limit_should_be_dropped_and_the_connection_come_back() {
    let broker = EmbeddedBroker::start().unwrap();
    for (version, addr) in [
        (MqttVersion::V5, broker.v5_addr()),
        (MqttVersion::V311, broker.v311_addr()),
    ] {
        let mut small = settings(addr, version, &format!("gw-small-{version:?}"));
        small.max_packet_size = 1024;
        let handle = BrokerHandle::spawn(small);
        let publisher = v5(&broker, &format!("pub-big-{version:?}"));
        connected(&handle).await;
        connected(&publisher).await;
        let mut subscription = subscribed(&handle, "big/#").await;

        publisher
            .publish(Outgoing::new("big/blob", vec![b'x'; 4096]))
            .await
            .unwrap();
        let down = wait_state(&handle, |s| matches!(s, ConnectionState::Down { .. })).await;
        assert!(
            down.to_string().contains("max_packet_size of 1024"),
            "{down}"
        );
        connected(&handle).await;

        publisher
            .publish(Outgoing::new("big/small", "fits"))
            .await
            .unwrap();
        let message = next(&mut subscription).await;
        assert_eq!(
            (message.topic.as_str(), message.text()),
            ("big/small", Some("fits")),
            "{version}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_subscription_queue_should_drop_and_count_new_messages() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-full");
    let publisher = v5(&broker, "pub-full");
    connected(&handle).await;
    connected(&publisher).await;
    let mut slow = subscribed(&handle, "full/data").await;
    let mut marker = subscribed(&handle, "full/marker").await;
    let sent = SUBSCRIPTION_QUEUE + 44;
    for i in 0..sent {
        publisher
            .publish(Outgoing::new("full/data", i.to_string()).with_qos(QoS::AtMostOnce))
            .await
            .unwrap();
    }
    publisher
        .publish(Outgoing::new("full/marker", "end"))
        .await
        .unwrap();
    // Messages are routed in arrival order: once the marker is in, every data message was.
    next(&mut marker).await;
    assert_eq!(slow.dropped(), 44);
    for i in 0..SUBSCRIPTION_QUEUE {
        assert_eq!(next(&mut slow).await.text(), Some(i.to_string().as_str()));
    }
    // The queue has room again.
    publisher
        .publish(Outgoing::new("full/data", "later"))
        .await
        .unwrap();
    assert_eq!(next(&mut slow).await.text(), Some("later"));
    assert_eq!(slow.dropped(), 44);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_should_be_a_device_refusal_naming_the_filter() {
    let addr = fake_broker(rumqttc::ConnectReturnCode::Success).await;
    let handle = BrokerHandle::spawn(settings(addr, MqttVersion::V311, "gw-refused"));
    connected(&handle).await;
    let mut refused = handle.subscribe("forbidden/secrets").await.unwrap();
    let err = timeout(DEADLINE, refused.ready())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeviceRefused, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("0x80") && text.contains("`forbidden/secrets`"),
        "{text}"
    );
    // Other subscriptions and publishes are not affected.
    subscribed(&handle, "allowed/#").await;
    handle
        .publish(Outgoing::new("allowed/x", "1"))
        .await
        .unwrap();
    handle
        .publish(Outgoing::new("allowed/y", "0").with_qos(QoS::AtMostOnce))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_should_say_why() {
    for (code, expected) in [
        (
            rumqttc::ConnectReturnCode::BadUserNamePassword,
            "bad user name or password",
        ),
        (rumqttc::ConnectReturnCode::NotAuthorized, "not authorised"),
    ] {
        let addr = fake_broker(code).await;
        let mut with_password = settings(addr, MqttVersion::V311, "gw-auth");
        with_password.credentials = Some(("gateway".into(), "wrong".into()));
        let handle = BrokerHandle::spawn(with_password);
        let state = wait_state(&handle, |s| matches!(s, ConnectionState::Down { .. })).await;
        assert!(state.to_string().contains(expected), "{state}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_should_report_each_announced_device_once() {
    use iotmc_adapter::Adapter;
    use iotmc_adapter_mqtt::MqttAdapter;
    let broker = EmbeddedBroker::start().unwrap();
    let (device, _) = v4_client(broker.v311_addr(), "announcer", &[]).await;
    let announce = |topic: &'static str, payload: &'static str| {
        let device = device.clone();
        async move {
            device
                .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload)
                .await
                .expect("the announcer's queue is open");
        }
    };
    // Retained before discovery starts: found from the retained store.
    announce("tele/plug-1/LWT", "Online").await;
    announce("homie/5/gone-1/$state", "lost").await;

    let adapter = MqttAdapter::new(vec![settings(broker.v5_addr(), MqttVersion::V5, "gw-disc")]);
    let mut found = adapter.discovered().unwrap();
    assert!(
        adapter.discovered().is_none(),
        "discovery is handed out once"
    );
    let first = timeout(DEADLINE, found.recv()).await.unwrap().unwrap();
    assert_eq!(first.address, "mqtt://test/plug-1");
    assert_eq!((first.identity, first.suggested_profile), (None, None));

    // Live: a Homie device comes up, an offline plug and the known plug again are not news.
    announce("tele/plug-2/LWT", "Offline").await;
    announce("tele/plug-1/LWT", "Online").await;
    announce("homie/5/thermostat-3/$state", "init").await;
    announce("homie/5/thermostat-3/$state", "ready").await;
    let second = timeout(DEADLINE, found.recv()).await.unwrap().unwrap();
    assert_eq!(second.address, "mqtt://test/thermostat-3");
    if let Ok(more) = timeout(QUIET, found.recv()).await {
        panic!("expected nothing more, got {more:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_connection_should_work_with_the_right_ca_and_say_why_it_fails_otherwise() {
    use iotmc_adapter_mqtt::settings::tls_client_config;
    let broker = EmbeddedBroker::start().unwrap();
    let (front, ca) = tls_front(broker.v5_addr()).await;

    let mut tls = settings(front, MqttVersion::V5, "gw-tls");
    tls.tls = Some(tls_client_config(ca.as_bytes(), None).unwrap());
    let handle = BrokerHandle::spawn(tls);
    connected(&handle).await;
    let mut echo = subscribed(&handle, "tls/echo").await;
    handle
        .publish(Outgoing::new("tls/echo", "secret"))
        .await
        .unwrap();
    assert_eq!(next(&mut echo).await.text(), Some("secret"));

    // Another CA: the server certificate is not trusted.
    let (_, other_ca) = tls_front(broker.v5_addr()).await;
    let mut untrusted = settings(front, MqttVersion::V5, "gw-tls-untrusted");
    untrusted.tls = Some(tls_client_config(other_ca.as_bytes(), None).unwrap());
    let handle = BrokerHandle::spawn(untrusted);
    let state = wait_state(&handle, |s| matches!(s, ConnectionState::Down { .. })).await;
    let text = state.to_string();
    assert!(
        text.contains("TLS handshake failed") && text.contains("certificate"),
        "{text}"
    );

    // TLS to a port that speaks plain MQTT.
    let mut plain = settings(broker.v5_addr(), MqttVersion::V5, "gw-tls-plain");
    plain.tls = Some(tls_client_config(ca.as_bytes(), None).unwrap());
    let handle = BrokerHandle::spawn(plain);
    let state = wait_state(&handle, |s| matches!(s, ConnectionState::Down { .. })).await;
    assert!(
        state.to_string().contains("TLS handshake failed"),
        "{state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_of_every_qos_should_be_delivered_in_order() {
    let broker = EmbeddedBroker::start().unwrap();
    let handle = v5(&broker, "gw-qos");
    let publisher = v311(&broker, "pub-qos");
    connected(&handle).await;
    connected(&publisher).await;
    let mut subscription = subscribed(&handle, "qos/+").await;
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publisher
            .publish(Outgoing::new(format!("qos/{i}"), format!("{qos:?}")).with_qos(qos))
            .await
            .unwrap_or_else(|e| panic!("{qos:?}: {e}"));
    }
    for expected in ["AtMostOnce", "AtLeastOnce", "ExactlyOnce"] {
        assert_eq!(next(&mut subscription).await.text(), Some(expected));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_while_the_broker_is_down_should_not_be_ready() {
    let handle = BrokerHandle::spawn(settings(unused_addr(), MqttVersion::V5, "gw-notready"));
    wait_state(&handle, |s| matches!(s, ConnectionState::Down { .. })).await;
    let mut subscription = handle.subscribe("a/#").await.unwrap();
    let err = subscription.ready().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("`a/#`") && text.contains("connection refused"),
        "{text}"
    );
    // And an invalid filter is our own refusal.
    let err = handle.subscribe("a/#/b").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

/// The reconnect delays run on tokio's clock, so paused time goes through them at once.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn reconnect_delays_should_double_from_half_a_second_under_paused_time() {
    let handle = BrokerHandle::spawn(settings(unused_addr(), MqttVersion::V311, "gw-paused"));
    let mut state = handle.state();
    let mut delays = Vec::new();
    let collect = async {
        while delays.len() < 8 {
            state.changed().await.expect("the driver runs");
            if let ConnectionState::Down { retry_in, .. } = &*state.borrow_and_update() {
                delays.push(retry_in.as_millis());
            }
        }
    };
    timeout(Duration::from_secs(600), collect)
        .await
        .expect("eight failed attempts within ten minutes of paused time");
    assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
}
