//! ManagementController#BatchSetValues over mutual TLS against in-memory devices: per-device
//! results with a silent device among them, a retried BatchId that writes nothing (also after a
//! restart), a reused one refused, anonymous callers refused, bad calls refused before anything
//! is written, and MaxConcurrent held while writes are kept waiting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod batch;
mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use batch::{Bench, SETPOINT, attribute, batch_args, rows};
use common::{envelope, http, parameter_values, soap_action};
use iotmc_adapter::Value;
use iotmc_gateway::diagnostics::Filter;
use iotmc_gateway::lifecycle::LifecycleState;
use iotmc_gateway::upnp::services::specs::MANAGEMENT_CONTROLLER;

#[tokio::test]
async fn a_group_batch_with_a_silent_device_should_apply_the_others_and_report_each_device() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bench::start(dir.path()).await;
    b.silence("t-2", true);
    let before = b.versions();
    let list = parameter_values(&[(SETPOINT, "22.5")]);

    let results = b
        .batch(["nightly-1", "group:hall", &list, "0"])
        .await
        .argument("Results");

    assert_eq!(attribute(&results, "BatchId"), "nightly-1");
    assert_eq!(attribute(&results, "Devices"), "3");
    assert_eq!(attribute(&results, "Succeeded"), "2");
    assert_eq!(attribute(&results, "Failed"), "1");
    assert_eq!(attribute(&results, "Replayed"), "0");
    let rows = rows(&results);
    assert_eq!(
        rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["t-1", "t-2", "t-3"]
    );
    for row in [&rows[0], &rows[2]] {
        assert_eq!(row.status, "ChangesApplied", "{results}");
        assert_eq!((row.code.as_ref(), row.description.as_ref()), (None, None));
    }
    let failed = &rows[1];
    assert_eq!(failed.status, "Failed", "{results}");
    assert_eq!(failed.code.as_deref(), Some("707"), "{results}");
    let description = failed.description.as_deref().unwrap();
    assert!(description.contains("device t-2"), "{description}");

    // The simulators hold the value; each applied device made one new configuration version.
    assert_eq!(b.setpoint("t-1"), Value::Float(22.5));
    assert_eq!(b.setpoint("t-3"), Value::Float(22.5));
    assert_eq!(b.setpoint("t-2"), Value::Float(21.0));
    assert_eq!(
        b.setpoint("t-4"),
        Value::Float(21.0),
        "t-4 is not in the group"
    );
    let after = b.versions();
    assert_eq!(
        after,
        [
            before[0] + 1,
            before[1],
            before[2] + 1,
            before[3],
            before[4]
        ]
    );
    assert_eq!(
        rows.iter().map(|r| r.version).collect::<Vec<_>>(),
        [after[0], after[1], after[2]]
    );
    assert_eq!(b.gate.counts().started, 3);

    // Each device's log has the batch's outcome, with the batch id and the operator.
    let state = b.face.state();
    let done = state.diagnostics.records("t-1", &Filter::all(100));
    let done = done
        .iter()
        .find(|r| r.message == "SetValues carried out")
        .expect("t-1's log has the write");
    assert!(
        done.fields
            .iter()
            .any(|(n, v)| n == "batch" && v == "nightly-1"),
        "{done:?}"
    );
    assert!(done.fields.iter().any(|(n, _)| n == "operator"), "{done:?}");
    let failure = state.diagnostics.records("t-2", &Filter::all(100));
    assert!(
        failure
            .iter()
            .any(|r| r.message.starts_with("SetValues failed")
                && r.fields.iter().any(|(n, v)| n == "code" && v == "707")),
        "{failure:?}"
    );

    // The same batch again (another pace, other spacing, t-2 back): the stored results,
    // replayed, and nothing written.
    b.silence("t-2", false);
    let again = b
        .batch([" nightly-1 ", " group: hall ", &list, "1"])
        .await
        .argument("Results");
    assert_eq!(attribute(&again, "Replayed"), "1");
    assert_eq!(again.replace(r#"Replayed="1""#, r#"Replayed="0""#), results);
    assert_eq!(b.gate.counts().started, 3, "a replay writes nothing");
    assert_eq!(b.versions(), after);
    assert_eq!(b.setpoint("t-2"), Value::Float(21.0));

    // The same id for another request is refused, naming the batch and when it ran.
    let other = parameter_values(&[(SETPOINT, "19")]);
    let (code, description) = b
        .batch(["nightly-1", "group:hall", &other, "0"])
        .await
        .upnp_error();
    assert_eq!(code, 720, "{description}");
    assert!(
        description.contains("BatchId nightly-1 was already used for a different request"),
        "{description}"
    );
    assert!(description.contains("ran from 20"), "{description}");
    assert!(description.contains("new BatchId"), "{description}");
    assert_eq!(b.gate.counts().started, 3);
    assert_eq!(b.setpoint("t-1"), Value::Float(22.5));

    // After a restart (the simulators start afresh) the batch is still known and not rerun.
    let pki = b.stop().await;
    let b = Bench::start_with(dir.path(), pki).await;
    let replayed = b
        .batch(["nightly-1", "group:hall", &list, "0"])
        .await
        .argument("Results");
    assert_eq!(replayed, again);
    assert_eq!(b.gate.counts().started, 0);
    assert_eq!(b.setpoint("t-1"), Value::Float(21.0));
    assert_eq!(b.versions(), after);
    b.stop().await;
}

#[tokio::test]
async fn anonymous_batch_set_values_should_be_refused_with_606_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bench::start(dir.path()).await;
    let list = parameter_values(&[(SETPOINT, "25")]);
    let args = ["anon-1", "t-1,t-4", list.as_str(), "0"];

    let over_https = b.batch_as(None, args).await.upnp_error();
    let controller = MANAGEMENT_CONTROLLER.service_type(&b.face.state().vendor_domain);
    let over_http = http(
        b.face.http_addr(),
        "POST",
        &b.control(),
        &[
            ("CONTENT-TYPE", "text/xml; charset=\"utf-8\""),
            ("SOAPACTION", &soap_action(&controller, "BatchSetValues")),
        ],
        envelope(&controller, "BatchSetValues", &batch_args(args)),
    )
    .await
    .upnp_error();
    for (code, description) in [over_https, over_http] {
        assert_eq!(code, 606, "{description}");
        assert!(description.contains("BatchSetValues"), "{description}");
    }
    assert_eq!(b.gate.counts().started, 0);
    assert_eq!(b.setpoint("t-1"), Value::Float(21.0));

    // Nothing was recorded under the id: the operator can use it.
    let results = b.batch(args).await.argument("Results");
    assert_eq!(attribute(&results, "Replayed"), "0");
    assert_eq!(attribute(&results, "Succeeded"), "2");
    b.stop().await;
}

#[tokio::test]
async fn a_bad_call_should_be_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bench::start(dir.path()).await;
    let list = parameter_values(&[(SETPOINT, "25")]);
    let long_id = "x".repeat(129);
    // t-5 is decommissioned: no longer a target.
    let t5 = b
        .face
        .state()
        .devices
        .values()
        .find(|d| d.record().id == "t-5")
        .unwrap()
        .clone();
    t5.update_record(|r| r.lifecycle = LifecycleState::Decommissioned);
    let cases: [([&str; 4], u16, &str); 8] = [
        (["", "t-1", &list, "0"], 600, "BatchId"),
        ([&long_id, "t-1", &list, "0"], 600, "too long"),
        (["a b", "t-1", &list, "0"], 600, "not allowed"),
        (["bad-1", "t-1,t-9", &list, "0"], 600, "t-9"),
        (["bad-2", "group:cellar", &list, "0"], 600, "cellar"),
        (["bad-3", "t-5", &list, "0"], 600, "t-5"),
        (["bad-4", "t-1", "<Nope/>", "0"], 701, "ParameterValueList"),
        (
            [
                "bad-5",
                "t-1",
                &parameter_values(&[(SETPOINT, "20"), (SETPOINT, "21")]),
                "0",
            ],
            706,
            SETPOINT,
        ),
    ];
    for (args, expected, named) in cases {
        let (code, description) = b.batch(args).await.upnp_error();
        assert_eq!(code, expected, "{args:?}: {description}");
        assert!(description.contains(named), "{args:?}: {description}");
    }
    assert_eq!(b.gate.counts().started, 0);

    // A value one device's profile refuses fails that device alone, not the call.
    let results = b
        .batch([
            "range-1",
            "t-1",
            &parameter_values(&[(SETPOINT, "99")]),
            "0",
        ])
        .await
        .argument("Results");
    let refused = rows(&results);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].status, "Failed");
    assert_eq!(refused[0].code.as_deref(), Some("704"), "{results}");
    assert_eq!(b.setpoint("t-1"), Value::Float(21.0));

    // The group skips the decommissioned device too: t-5 is not in hall, t-3 is made so.
    b.face
        .state()
        .devices
        .values()
        .find(|d| d.record().id == "t-3")
        .unwrap()
        .update_record(|r| r.lifecycle = LifecycleState::Decommissioned);
    let results = b
        .batch(["hall-1", "group:hall", &list, "0"])
        .await
        .argument("Results");
    assert_eq!(
        rows(&results)
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["t-1", "t-2"]
    );
    assert_eq!(b.setpoint("t-3"), Value::Float(21.0));
    b.stop().await;
}

#[tokio::test]
async fn max_concurrent_should_bound_the_writes_and_a_retry_during_the_batch_should_not_rerun_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(Bench::start(dir.path()).await);
    b.gate.held.store(true, Ordering::SeqCst);
    let list = parameter_values(&[(SETPOINT, "18.5")]);
    let targets = "t-1,t-2,t-3,t-4,t-5";

    let first = tokio::spawn({
        let (b, list) = (Arc::clone(&b), list.clone());
        async move { b.batch(["paced-1", targets, &list, "2"]).await }
    });
    b.gate
        .wait_for("two writes under way", |c| c.in_flight >= 2)
        .await;
    let retry = tokio::spawn({
        let (b, list) = (Arc::clone(&b), list.clone());
        async move { b.batch(["paced-1", targets, &list, "2"]).await }
    });
    // While it runs, the id is taken: another request under it is refused at once.
    let (code, description) = b
        .batch([
            "paced-1",
            targets,
            &parameter_values(&[(SETPOINT, "19")]),
            "2",
        ])
        .await
        .upnp_error();
    assert_eq!(code, 720, "{description}");
    assert!(description.contains("is running since"), "{description}");

    // Release the writes one at a time: never more than two under way.
    for done in 1..=5 {
        assert_eq!(b.gate.counts().max_in_flight, 2);
        b.gate.permits.add_permits(1);
        b.gate
            .wait_for("a write to finish", |c| c.finished == done)
            .await;
    }
    let first = first.await.unwrap().argument("Results");
    let retry = retry.await.unwrap().argument("Results");
    let counts = b.gate.counts();
    assert_eq!((counts.started, counts.max_in_flight), (5, 2), "{counts:?}");
    assert_eq!(attribute(&first, "Succeeded"), "5");
    assert_eq!(attribute(&first, "Replayed"), "0");
    assert_eq!(attribute(&retry, "Replayed"), "1");
    assert_eq!(retry.replace(r#"Replayed="1""#, r#"Replayed="0""#), first);
    for i in 1..=5 {
        assert_eq!(b.setpoint(&format!("t-{i}")), Value::Float(18.5));
    }
    Arc::into_inner(b).unwrap().stop().await;
}
