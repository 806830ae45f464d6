//! The generic MQTT 5 dialect end to end: the embedded broker, the simulated AHU-5 controller
//! and the gateway's link through the driver.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)]

#[path = "generic/rig.rs"]
mod rig;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use iotmc_adapter::testkit::{Conformance, FirmwareFixture, SimulatedDevice};
use iotmc_adapter::{
    ActionOutcome, ActionRequest, ActivationMode, Availability, ErrorKind, LinkError, LinkEvent,
    Readings, StageProgress, Value,
};
use iotmc_adapter_mqtt::MqttVersion;
use iotmc_adapter_mqtt::codec::generic::hex;
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::generic::{GenericDevice, SimTiming};
use rumqttc::v5::mqttbytes::QoS;

use rig::{
    DEADLINE, Proxy, attach, filter_pressure, filter_pressure_max, image, names, profile_from,
    publisher, quick_profile, raw_image, raw_request, rig, rig_with, shipped_text, unhealthy_image,
    wait_availability,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_should_answer_on_the_response_topic_with_the_correlation_data() {
    let broker = EmbeddedBroker::start().unwrap();
    let device = GenericDevice::start(broker.v5_addr(), "ahu-1")
        .await
        .unwrap();
    let (answer, correlation) =
        raw_request(&broker, "iotmc/ahu/ahu-1/rpc", r#"{"op": "info"}"#).await;
    assert_eq!(answer["model"], "AHU-5");
    assert_eq!(answer["version"], "1.0.0");
    assert_eq!(correlation.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(device.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ahu_controller_should_pass_the_conformance_kit() {
    let profile = profile_from(&shipped_text());
    let rig = rig_with(profile, SimTiming::default(), None).await;
    let report = Conformance::new(Arc::clone(&rig.link), Arc::clone(&rig.profile), &rig.device)
        .with_firmware(FirmwareFixture {
            first: image("2.0.0", 10_000),
            second: image("3.0.0", 9_000),
        })
        .run()
        .await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(rig.device.running_version(), "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_broker_should_be_refused_at_attach_naming_the_broker_and_the_setting() {
    let broker = EmbeddedBroker::start().unwrap();
    let err = attach(&quick_profile(), broker.v311_addr(), MqttVersion::V311)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let text = err.to_string();
    for words in [
        "`plant-room`",
        "MQTT 3.1.1",
        "MQTT 5",
        "[[mqtt.brokers]]",
        "mqtt.generic.identity.request",
    ] {
        assert!(text.contains(words), "{words:?} not in: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_state_should_be_evented_and_availability_should_follow_the_status_topic() {
    let timing = SimTiming {
        state_interval: Duration::from_millis(50),
        ..SimTiming::default()
    };
    let rig = rig_with(quick_profile(), timing, None).await;
    let mut events = rig.link.events();
    // The supply temperature drifts towards the setpoint; a write makes it move for sure.
    let values = Readings::from([("setpoint".to_owned(), Value::Float(28.0))]);
    rig.link.write(&values).await.unwrap();
    let changed = async {
        loop {
            if let Ok(LinkEvent::Changed { values, .. }) = events.recv().await
                && values.contains_key("supply_temperature")
            {
                return values;
            }
        }
    };
    let values = tokio::time::timeout(DEADLINE, changed).await.unwrap();
    assert!(
        matches!(values["supply_temperature"], Value::Float(_)),
        "{values:?}"
    );

    let mut events = rig.link.events();
    rig.link
        .invoke(&ActionRequest::new("reboot"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let sequence = async {
        while let Ok(event) = events.recv().await {
            if let LinkEvent::Availability { availability, .. } = event {
                seen.push(availability);
                if seen.ends_with(&[Availability::Offline, Availability::Online]) {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(DEADLINE, sequence)
        .await
        .unwrap_or_else(|_| panic!("availability events were {seen:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_should_fail_as_a_whole_and_writes_should_check_everything_first() {
    let rig = rig().await;
    let all = names(&["supply_temperature", "setpoint", "mode", "alarm"]);
    let before = rig.device.requests();
    let values = rig.link.read(&all).await.unwrap();
    assert_eq!(values.len(), 4);
    assert_eq!(
        rig.device.requests() - before,
        1,
        "one request for one read mapping"
    );
    assert_eq!(values["mode"], Value::Text("comfort".into()));

    // A valid setpoint with an out-of-range fan speed: nothing goes out, nothing changes.
    let before = rig.device.requests();
    let bad = Readings::from([
        ("setpoint".to_owned(), Value::Float(22.0)),
        ("supply_fan_speed".to_owned(), Value::Int(140)),
    ]);
    let err = rig.link.write(&bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");
    assert_eq!(rig.device.requests(), before);
    assert_eq!(rig.device.value("setpoint"), Some(serde_json::json!(21.0)));

    // Two values of the same write request go in one payload.
    let good = Readings::from([
        ("setpoint".to_owned(), Value::Float(22.5)),
        ("mode".to_owned(), Value::Text("eco".into())),
    ]);
    rig.link.write(&good).await.unwrap();
    assert_eq!(rig.device.requests(), before + 1);
    assert_eq!(rig.device.value("setpoint"), Some(serde_json::json!(22.5)));
    assert_eq!(rig.device.value("mode"), Some(serde_json::json!("eco")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_refusals_should_carry_the_device_s_words() {
    let rig = rig().await;
    rig.device.fail_next("E_INTERLOCK", "fire damper closed");
    let values = Readings::from([("supply_fan_speed".to_owned(), Value::Int(60))]);
    let err = rig.link.write(&values).await.unwrap_err();
    let LinkError::DeviceRefused { code, detail } = &err else {
        panic!("expected DeviceRefused, got {err:?}");
    };
    assert_eq!(code, "E_INTERLOCK");
    let detail = detail.as_deref().unwrap_or_default();
    assert!(detail.contains("fire damper closed"), "{detail}");
    assert!(detail.contains("iotmc/ahu/ahu-1/rpc"), "{detail}");

    rig.device.set_firmware_busy(true);
    let firmware = rig.link.firmware().unwrap();
    let err = firmware
        .stage(&image("2.0.0", 1000), 0, &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LinkError::DeviceRefused { code, .. } if code == "busy"),
        "{err:?}"
    );
    assert!(err.to_string().contains("try again later"), "{err}");
    rig.device.set_firmware_busy(false);

    let huge = image("2.0.0", 2 * 1024 * 1024);
    let err = firmware.stage(&huge, 0, &|_| {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");

    // The link keeps working.
    rig.link.write(&values).await.unwrap();
    assert_eq!(
        rig.device.value("supply_fan_speed"),
        Some(serde_json::json!(60))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_should_time_out_after_the_response_timeout() {
    let text = shipped_text()
        .replace("response_timeout = \"5s\"", "response_timeout = \"1s\"")
        .replace("timeout = \"20s\"", "timeout = \"2s\"");
    let rig = rig_with(profile_from(&text), SimTiming::default(), None).await;
    rig.device.set_unresponsive(true);
    let started = tokio::time::Instant::now();
    let err = rig.link.read(&names(&["setpoint"])).await.unwrap_err();
    assert_eq!(
        err,
        LinkError::Timeout {
            after: Duration::from_secs(1)
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let err = rig
        .link
        .invoke(&ActionRequest::new("self_test"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    rig.device.set_unresponsive(false);
    rig.link.read(&names(&["setpoint"])).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_should_be_clear_errors_and_the_link_should_keep_working() {
    let rig = rig().await;
    let setpoint = names(&["setpoint"]);
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    for (answer, words) in [
        ("OK".to_owned(), "not JSON"),
        (huge, "bytes; at most"),
        (r#"{"setpoint": "warm"}"#.to_owned(), "expected a number"),
        (r#"{"supply": {}}"#.to_owned(), "found nothing there"),
        ("[1, 2]".to_owned(), "`/setpoint`"),
    ] {
        rig.device.answer_next_with(answer.clone());
        let err = rig.link.read(&setpoint).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed, "{answer:.40}: {err}");
        let text = err.to_string();
        assert!(text.contains(words), "{answer:.40}: {text}");
        assert!(
            text.contains("iotmc/ahu/ahu-1/rpc") && text.contains("`ahu-1`"),
            "{text}"
        );
        let values = rig.link.read(&setpoint).await.unwrap();
        assert_eq!(values["setpoint"], Value::Float(21.0));
    }
    rig.device.answer_next_with(r#"{"sha256": 7}"#);
    let err = rig
        .link
        .firmware()
        .unwrap()
        .stage(&image("2.0.0", 100), 0, &|_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed, "{err}");
    assert!(err.to_string().contains("\"offset\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_should_place_arguments_and_return_outputs() {
    let rig = rig().await;
    let outcome = rig
        .link
        .invoke(&ActionRequest::new("self_test"))
        .await
        .unwrap();
    let ActionOutcome::Done { output } = outcome else {
        panic!("self test should be done, got {outcome:?}");
    };
    assert_eq!(output["passed"], Value::Bool(true));
    assert_eq!(output["code"], Value::Int(0));
    let mut boost = ActionRequest::new("boost");
    boost.arguments.insert("minutes".into(), Value::Int(30));
    let outcome = rig.link.invoke(&boost).await.unwrap();
    assert!(
        matches!(&outcome, ActionOutcome::Done { output } if matches!(output["until"], Value::Int(_))),
        "{outcome:?}"
    );
    assert_eq!(rig.device.value("mode"), Some(serde_json::json!("boost")));
    boost.arguments.insert("minutes".into(), Value::Int(500));
    let err = rig.link.invoke(&boost).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_cut_by_a_broker_disconnect_should_resume_from_the_acknowledged_offset() {
    let broker = EmbeddedBroker::start().unwrap();
    let device = GenericDevice::start(broker.v5_addr(), "ahu-1")
        .await
        .unwrap();
    let proxy = Proxy::start(broker.v5_addr()).await;
    let profile = quick_profile();
    let link = attach(&profile, proxy.addr, MqttVersion::V5).await.unwrap();
    wait_availability(&*link, Availability::Online).await;
    let firmware = link.firmware().unwrap();
    let image = image("2.0.0", 64 * 1024);
    let total = image.bytes.len() as u64;

    // Cut the gateway's connection once half the image is acknowledged.
    let acknowledged = Arc::new(RwLock::new(0u64));
    let seen = Arc::clone(&acknowledged);
    let cut_once = std::sync::Once::new();
    let progress = |p: StageProgress| {
        *seen.write().unwrap_or_else(PoisonError::into_inner) = p.acknowledged;
        if p.acknowledged >= total / 2 {
            cut_once.call_once(|| proxy.cut());
        }
    };
    let mut events = link.events();
    let err = firmware.stage(&image, 0, &progress).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Transport | ErrorKind::Timeout),
        "{err}"
    );
    let resume_at = *acknowledged.read().unwrap_or_else(PoisonError::into_inner);
    assert!(
        (total / 2..total).contains(&resume_at),
        "acknowledged {resume_at} of {total}"
    );

    // The driver reconnects through the proxy; the device's retained status says online again.
    let back = async {
        loop {
            if let Ok(LinkEvent::Availability {
                availability: Availability::Online,
                ..
            }) = events.recv().await
            {
                return;
            }
        }
    };
    tokio::time::timeout(DEADLINE, back)
        .await
        .expect("the link came back online");

    let outcome = firmware.stage(&image, resume_at, &|_| {}).await.unwrap();
    assert_eq!(outcome.transferred, total - resume_at);
    assert!(outcome.verified_on_device);
    firmware.activate(ActivationMode::Permanent).await.unwrap();
    assert_eq!(device.running_version(), "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_transfer_should_fail_verification_naming_both_hashes() {
    let rig = rig().await;
    let firmware = rig.link.firmware().unwrap();
    let image = image("2.0.0", 20_000);
    rig.device.corrupt_next_chunk();
    let err = firmware.stage(&image, 0, &|_| {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed, "{err}");
    let text = err.to_string();
    let expected = hex(&image.sha256);
    assert!(text.contains(&expected), "{text}");
    let other = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_hexdigit()))
        .find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()) && *w != expected);
    assert!(other.is_some(), "the device's hash is not named: {text}");
    // Activating the damaged image is refused by the device; staging again from 0 works.
    let err = firmware.activate(ActivationMode::Test).await.unwrap_err();
    assert!(
        matches!(&err, LinkError::DeviceRefused { code, .. } if code == "not_verified"),
        "{err:?}"
    );
    firmware.stage(&image, 0, &|_| {}).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_fails_its_test_boot_should_be_reported_and_the_old_one_kept() {
    let rig = rig().await;
    let firmware = rig.link.firmware().unwrap();
    let bad = raw_image("9.9.9", vec![0x7f; 6000]);
    firmware.stage(&bad, 0, &|_| {}).await.unwrap();
    let err = firmware.activate(ActivationMode::Test).await.unwrap_err();
    let LinkError::DeviceRefused { code, detail } = &err else {
        panic!("expected DeviceRefused, got {err:?}");
    };
    assert_eq!(code, "boot failed");
    let detail = detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("1.0.0") && detail.contains("9.9.9"),
        "{detail}"
    );
    assert_eq!(rig.device.running_version(), "1.0.0");
    let logs = rig.link.logs().unwrap().fetch(None).await.unwrap();
    assert!(
        logs.records.iter().any(
            |r| r.message.contains("test boot") && r.severity == iotmc_adapter::Severity::Error
        ),
        "{:#?}",
        logs.records
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_image_should_boot_on_test_and_fail_the_health_range_until_reverted() {
    // A window of an hour: only the revert below ends the test image.
    let timing = SimTiming {
        confirm_window: Duration::from_secs(3600),
        ..SimTiming::default()
    };
    let rig = rig_with(quick_profile(), timing, None).await;
    let max = filter_pressure_max(&rig);
    assert!(filter_pressure(&rig).await <= max);
    let firmware = rig.link.firmware().unwrap();
    firmware
        .stage(&unhealthy_image("2.0.0", 8000), 0, &|_| {})
        .await
        .unwrap();
    firmware.activate(ActivationMode::Test).await.unwrap();
    let identity = rig.link.identify().await.unwrap();
    assert_eq!(identity.firmware_version.as_deref(), Some("2.0.0"));
    let banks = firmware.banks().await.unwrap();
    let active = banks.iter().find(|b| b.active).unwrap();
    assert_eq!(
        (active.version.as_deref(), active.confirmed),
        (Some("2.0.0"), false)
    );
    let unhealthy = filter_pressure(&rig).await;
    assert!(unhealthy > max, "{unhealthy}");
    firmware.revert().await.unwrap();
    assert_eq!(rig.device.running_version(), "1.0.0");
    let identity = rig.link.identify().await.unwrap();
    assert_eq!(identity.firmware_version.as_deref(), Some("1.0.0"));
    let healthy = filter_pressure(&rig).await;
    assert!(healthy <= max, "{healthy}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_test_image_should_revert_after_the_confirm_window() {
    let timing = SimTiming {
        confirm_window: Duration::from_millis(500),
        ..SimTiming::default()
    };
    let rig = rig_with(quick_profile(), timing, None).await;
    let firmware = rig.link.firmware().unwrap();
    assert!(firmware.capabilities().confirm_required);
    firmware
        .stage(&image("2.0.0", 8000), 0, &|_| {})
        .await
        .unwrap();
    let mut events = rig.link.events();
    firmware.activate(ActivationMode::Test).await.unwrap();
    let banks = firmware.banks().await.unwrap();
    let active = banks.iter().find(|b| b.active).unwrap();
    assert_eq!(
        (active.version.as_deref(), active.confirmed),
        (Some("2.0.0"), false)
    );
    // Activation went offline and online once; the revert does it again.
    let mut onlines = 0;
    let reverted = async {
        while let Ok(event) = events.recv().await {
            if let LinkEvent::Availability {
                availability: Availability::Online,
                ..
            } = event
            {
                onlines += 1;
                if onlines == 2 {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(DEADLINE, reverted)
        .await
        .expect("the device restarted to revert");
    let banks = firmware.banks().await.unwrap();
    let active = banks.iter().find(|b| b.active).unwrap();
    assert_eq!(
        (active.version.as_deref(), active.confirmed),
        (Some("1.0.0"), true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_fetch_should_continue_from_the_device_s_index_and_clear() {
    let rig = rig().await;
    let logs = rig.link.logs().unwrap();
    rig.device
        .append_log(iotmc_adapter::Severity::Warning, "filter 80 % loaded");
    let first = logs.fetch(None).await.unwrap();
    let record = first
        .records
        .iter()
        .find(|r| r.message == "filter 80 % loaded")
        .unwrap();
    assert_eq!(record.severity, iotmc_adapter::Severity::Warning);
    assert!(record.index.is_some() && record.timestamp.is_some());
    assert_eq!(
        first.next,
        record.index.map(iotmc_adapter::LogCursor::Index)
    );
    let again = logs.fetch(first.next).await.unwrap();
    assert!(again.records.is_empty(), "{:?}", again.records);
    logs.clear().await.unwrap();
    assert!(logs.fetch(None).await.unwrap().records.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_from_a_retained_info_topic_and_logs_from_a_log_topic_should_be_collected() {
    let text = shipped_text()
        .replace(
            "identity = { request = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"info\" } } }",
            "identity = { topic = \"iotmc/ahu/{device}/info\", serial = \"/sn\" }",
        )
        .replace("[logs]\nmethod = \"request\"", "[logs]\nmethod = \"topic\"")
        .replace(
            "request_topic = \"iotmc/ahu/{device}/log\"\nmax = 100",
            "topic = \"iotmc/ahu/{device}/events\"",
        )
        // `alarm` only pushed, never asked for.
        .replace(
            "pointer = \"/alarm\"\nstate_topic = \"iotmc/ahu/{device}/state\"\nread = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"get\" } }",
            "pointer = \"/alarm\"\nstate_topic = \"iotmc/ahu/{device}/state\"",
        );
    let broker = EmbeddedBroker::start().unwrap();
    let (client, _poller) = publisher(&broker).await;
    client
        .publish(
            "iotmc/ahu/ahu-1/info",
            QoS::AtLeastOnce,
            true,
            r#"{"sn": "AHU5-0042", "version": "1.0.0", "hardware": "rev B"}"#,
        )
        .await
        .unwrap();
    let device = GenericDevice::start(broker.v5_addr(), "ahu-1")
        .await
        .unwrap();
    let profile = profile_from(&text);
    let link = attach(&profile, broker.v5_addr(), MqttVersion::V5)
        .await
        .unwrap();

    // Until the broker connection is up and the retained status came, the device counts as
    // offline and identify says so; each failure waits for the next availability event.
    let mut events = link.events();
    let identity = tokio::time::timeout(DEADLINE, async {
        loop {
            match link.identify().await {
                Ok(identity) => return identity,
                Err(e) if e.kind() == ErrorKind::Transport => {
                    while !matches!(events.recv().await, Ok(LinkEvent::Availability { .. })) {}
                }
                Err(e) => panic!("identify: {e}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(identity.serial.as_deref(), Some("AHU5-0042"));
    assert_eq!(identity.manufacturer, "iotmc");
    assert_eq!(identity.firmware_version.as_deref(), Some("1.0.0"));

    let before = device.requests();
    let values = link.read(&names(&["alarm"])).await.unwrap();
    assert_eq!(values["alarm"], Value::Bool(false));
    assert_eq!(
        device.requests(),
        before,
        "a pushed-only value is not asked for"
    );

    let logs = link.logs().unwrap();
    let record =
        r#"{"time": 1790000000, "severity": "crit", "message": "frost protection tripped"}"#;
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            client
                .publish("iotmc/ahu/ahu-1/events", QoS::AtLeastOnce, false, record)
                .await
                .unwrap();
            let batch = logs.fetch(None).await.unwrap();
            if let Some(r) = batch.records.first() {
                return (r.clone(), batch.next);
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert_eq!(found.0.severity, iotmc_adapter::Severity::Critical);
    assert_eq!(found.0.index, Some(1));
    assert!(found.1.is_some());
    // Garbage on the log topic is ignored, the link keeps collecting.
    client
        .publish(
            "iotmc/ahu/ahu-1/events",
            QoS::AtLeastOnce,
            false,
            "not json",
        )
        .await
        .unwrap();
    logs.clear().await.unwrap();
    assert!(logs.fetch(None).await.unwrap().records.is_empty());
}
