//! The broker driver against the embedded broker (rumqttd on loopback): publish and subscribe on
//! both protocol versions and across them, shared filters, retained messages, acknowledged
//! publishes, MQTT 5 request/response, failures while the broker is down, and recovery after
//! the connection drops.
#![cfg(feature = "sim")]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use iotmc_adapter::{ErrorKind, LinkError};
use iotmc_adapter_mqtt::driver::{BrokerHandle, ConnectionState, Request, Subscription};
use iotmc_adapter_mqtt::frame::{Message, Outgoing, Properties};
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::{BrokerSettings, MqttVersion};
use tokio::sync::mpsc;
use tokio::time::timeout;

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

/// A device-side MQTT 3.1.1 client (rumqttc directly, not our driver): what it receives comes
/// out of the returned channel.
async fn v4_client(
    addr: SocketAddr,
    client_id: &str,
    filters: &[&str],
) -> (
    rumqttc::AsyncClient,
    mpsc::UnboundedReceiver<rumqttc::Publish>,
) {
    let options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", addr.port());
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, mut subscribed_rx) = mpsc::unbounded_channel();
    let expected = filters.len();
    for filter in filters {
        client
            .subscribe(*filter, rumqttc::QoS::AtLeastOnce)
            .await
            .expect("the test client's queue is open");
    }
    tokio::spawn(async move {
        let mut acks = 0;
        if expected == 0 {
            let _ = subscribed_tx.send(());
        }
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ = tx.send(p);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    acks += 1;
                    if acks == expected {
                        let _ = subscribed_tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    timeout(DEADLINE, subscribed_rx.recv())
        .await
        .expect("the MQTT 3.1.1 test client did not subscribe");
    (client, rx)
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

/// A device that answers every message on `dev/req/rpc` after `delay`, as MQTT 5
/// request/response says: on the response topic, echoing the correlation data.
async fn responder(
    addr: SocketAddr,
    client_id: &str,
    delay: Duration,
) -> tokio::task::JoinHandle<()> {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let options = MqttOptions::new(client_id, "127.0.0.1", addr.port());
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    client
        .subscribe("dev/req/rpc", QoS::AtLeastOnce)
        .await
        .expect("the responder's queue is open");
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Some(props) = p.properties else { continue };
                    let Some(topic) = props.response_topic else {
                        continue;
                    };
                    let answer = PublishProperties {
                        correlation_data: props.correlation_data,
                        ..PublishProperties::default()
                    };
                    let mut payload = b"pong:".to_vec();
                    payload.extend_from_slice(&p.payload);
                    let client = client.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = client
                            .publish_with_properties(
                                topic,
                                QoS::AtLeastOnce,
                                false,
                                payload,
                                answer,
                            )
                            .await;
                    });
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    timeout(DEADLINE, ready.recv())
        .await
        .expect("the responder did not subscribe");
    task
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

/// A loopback address nothing listens on.
fn unused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
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
