use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn record(id: &str, address: &str) -> DeviceRecord {
    DeviceRecord {
        id: id.into(),
        name: None,
        profile: "acme-meter".into(),
        protocol: "modbus".into(),
        address: address.into(),
        group: Some("hvac".into()),
        udn: device_udn("gw", "modbus", address),
        lifecycle: LifecycleState::Provisioned,
        lifecycle_since_ms: unix_ms(at(0)),
        config_version: 0,
        in_config: true,
        group_assigned: false,
    }
}

#[test]
fn transitions_should_be_persisted_with_history() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    registry
        .insert_device(&record("m1", "a"), "declared in config", at(0))
        .unwrap();
    registry
        .transition("m1", LifecycleState::PendingApproval, "enrolled", at(10))
        .unwrap();
    registry
        .transition(
            "m1",
            LifecycleState::Commissioned,
            "approved by alice",
            at(20),
        )
        .unwrap();
    drop(registry);

    let registry = Registry::open(dir.path()).unwrap();
    let device = registry.device("m1").unwrap().unwrap();
    assert_eq!(device.lifecycle, LifecycleState::Commissioned);
    assert_eq!(device.lifecycle_since_ms, unix_ms(at(20)));
    let history = registry.history("m1").unwrap();
    let moves: Vec<_> = history
        .iter()
        .map(|e| (e.seq, e.from, e.to, e.cause.as_str()))
        .collect();
    assert_eq!(
        moves,
        vec![
            (0, None, LifecycleState::Provisioned, "declared in config"),
            (
                1,
                Some(LifecycleState::Provisioned),
                LifecycleState::PendingApproval,
                "enrolled"
            ),
            (
                2,
                Some(LifecycleState::PendingApproval),
                LifecycleState::Commissioned,
                "approved by alice"
            ),
        ]
    );
}

#[test]
fn refused_transition_should_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    registry
        .insert_device(&record("m1", "a"), "declared", at(0))
        .unwrap();
    let err = registry
        .transition("m1", LifecycleState::Commissioned, "skip approval", at(5))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("device `m1`: a device cannot move from Provisioned to Commissioned"),
        "{err}"
    );
    assert_eq!(
        registry.device("m1").unwrap().unwrap().lifecycle,
        LifecycleState::Provisioned
    );
    assert_eq!(registry.history("m1").unwrap().len(), 1);
}

#[test]
fn history_of_one_device_should_not_include_another_with_a_longer_id() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    registry
        .insert_device(&record("m1", "a"), "declared", at(0))
        .unwrap();
    registry
        .insert_device(&record("m10", "b"), "declared", at(0))
        .unwrap();
    registry
        .transition("m10", LifecycleState::PendingApproval, "enrolled", at(1))
        .unwrap();
    assert_eq!(registry.history("m1").unwrap().len(), 1);
    assert_eq!(registry.history("m10").unwrap().len(), 2);
}

#[test]
fn reconcile_should_add_update_and_orphan_but_keep_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    registry
        .reconcile(&[record("m1", "a"), record("m2", "b")], "declared", at(0))
        .unwrap();
    registry
        .transition("m1", LifecycleState::PendingApproval, "enrolled", at(1))
        .unwrap();
    registry.bump_config_version("m1").unwrap();

    let mut moved = record("m1", "a");
    moved.group = None;
    let report = registry
        .reconcile(&[moved, record("m3", "c")], "declared", at(2))
        .unwrap();
    assert_eq!(
        report,
        Reconciled {
            added: vec!["m3".into()],
            updated: vec!["m1".into()],
            orphaned: vec!["m2".into()],
            decommissioned: vec![],
        }
    );

    let m1 = registry.device("m1").unwrap().unwrap();
    assert_eq!((m1.address.as_str(), m1.group.as_deref()), ("a", None));
    assert_eq!(
        m1.lifecycle,
        LifecycleState::PendingApproval,
        "reconcile must not reset the lifecycle"
    );
    assert_eq!(m1.config_version, 1);
    assert!(!registry.device("m2").unwrap().unwrap().in_config);

    let again = registry
        .reconcile(&[record("m3", "c")], "declared", at(3))
        .unwrap();
    assert_eq!(
        again.orphaned,
        vec!["m1".to_owned()],
        "m2 was already orphaned"
    );
}

#[test]
fn newer_schema_should_be_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", SCHEMA_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Registry::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, RegistryError::IncompatibleSchema { found: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("written by a newer iotmc-gateway"),
        "{err}"
    );
}

#[test]
fn second_writer_should_be_told_the_registry_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Registry::open(dir.path()).unwrap();
    let err = Registry::open(dir.path()).unwrap_err();
    assert!(matches!(err, RegistryError::InUse { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("two gateways cannot share a state directory"),
        "{err}"
    );
}

#[test]
fn read_only_handle_should_read_but_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let registry = Registry::open(dir.path()).unwrap();
        registry
            .insert_device(&record("m1", "a"), "declared", at(0))
            .unwrap();
    }
    let registry = Registry::open_read_only(dir.path()).unwrap();
    assert_eq!(registry.devices().unwrap().len(), 1);
    let err = registry.bump_config_version("m1").unwrap_err();
    assert!(matches!(err, RegistryError::ReadOnly), "{err}");
}

#[test]
fn read_only_open_of_a_missing_registry_should_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let err = Registry::open_read_only(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("has not run with this state directory"),
        "{err}"
    );
}

#[test]
fn file_that_is_not_a_database_should_give_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(FILE_NAME),
        b"this is not a redb file at all, just text",
    )
    .unwrap();
    let err = Registry::open(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("cannot open the registry"),
        "{err}"
    );
}

#[test]
fn reconcile_should_send_a_device_at_a_new_address_back_to_provisioned() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    registry
        .reconcile(&[record("m1", "a")], "declared", at(0))
        .unwrap();
    registry
        .transition("m1", LifecycleState::PendingApproval, "enrolled", at(1))
        .unwrap();
    registry
        .transition("m1", LifecycleState::Commissioned, "approved", at(2))
        .unwrap();

    let report = registry
        .reconcile(&[record("m1", "b")], "declared in gw.toml", at(3))
        .unwrap();
    assert_eq!(report.updated, vec!["m1".to_owned()]);
    let m1 = registry.device("m1").unwrap().unwrap();
    assert_eq!(m1.lifecycle, LifecycleState::Provisioned);
    assert_eq!(m1.udn, device_udn("gw", "modbus", "b"));
    let last = registry.history("m1").unwrap().pop().unwrap();
    assert_eq!(last.from, Some(LifecycleState::Commissioned));
    assert!(
        last.cause
            .contains("address changed from modbus a to modbus b"),
        "{}",
        last.cause
    );
}

#[test]
fn reconcile_should_leave_a_decommissioned_device_alone() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    registry
        .reconcile(&[record("m1", "a")], "declared", at(0))
        .unwrap();
    registry
        .transition("m1", LifecycleState::Decommissioned, "retired", at(1))
        .unwrap();
    let before = registry.device("m1").unwrap().unwrap();

    let report = registry
        .reconcile(&[record("m1", "b")], "declared", at(2))
        .unwrap();
    assert_eq!(report.decommissioned, vec!["m1".to_owned()]);
    assert!(report.updated.is_empty());
    assert_eq!(registry.device("m1").unwrap().unwrap(), before);
}

#[test]
fn boot_id_should_increase_across_reopens_and_config_id_only_when_descriptions_change() {
    let dir = tempfile::tempdir().unwrap();
    let (first, config_a) = {
        let registry = Registry::open(dir.path()).unwrap();
        (
            registry.next_boot_id().unwrap(),
            registry.config_id_for(7).unwrap(),
        )
    };
    let registry = Registry::open(dir.path()).unwrap();
    assert_eq!(registry.next_boot_id().unwrap(), first + 1);
    assert_eq!(registry.config_id_for(7).unwrap(), config_a);
    let config_b = registry.config_id_for(8).unwrap();
    assert_eq!(config_b, config_a + 1);
    assert_eq!(registry.config_id_for(8).unwrap(), config_b);
}

#[test]
fn decommissioning_should_wipe_the_device_but_keep_an_audit_and_a_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    registry
        .insert_device(&record("m1", "a"), "declared", at(0))
        .unwrap();
    registry
        .insert_device(&record("m2", "b"), "declared", at(0))
        .unwrap();
    registry
        .transition("m1", LifecycleState::PendingApproval, "enrolled", at(1))
        .unwrap();
    for id in ["m1", "m2"] {
        registry
            .put_record(
                RecordTable::Jobs,
                id,
                &serde_json::json!({"phase": "Confirmed"}),
            )
            .unwrap();
        registry
            .put_record(
                RecordTable::Identities,
                id,
                &serde_json::json!({"serial": id}),
            )
            .unwrap();
    }

    let kept = registry
        .decommission(
            "m1",
            "by alice: broken",
            at(5),
            &serde_json::json!({"by": "alice"}),
            Some(("0a1b", &serde_json::json!({"serial": "0a1b"}))),
        )
        .unwrap();
    assert_eq!(kept.lifecycle, LifecycleState::Decommissioned);
    let history = registry.history("m1").unwrap();
    assert_eq!(history.len(), 1, "only the decommissioning: {history:?}");
    assert_eq!(history[0].cause, "by alice: broken");
    for table in [RecordTable::Jobs, RecordTable::Identities] {
        let gone: Option<serde_json::Value> = registry.get_record(table, "m1").unwrap();
        assert!(gone.is_none(), "{table:?}");
        let other: Option<serde_json::Value> = registry.get_record(table, "m2").unwrap();
        assert!(other.is_some(), "another device's {table:?} must stay");
    }
    let audit: serde_json::Value = registry
        .get_record(RecordTable::Audit, "m1")
        .unwrap()
        .unwrap();
    assert_eq!(audit["by"], "alice");
    let revoked: Option<serde_json::Value> = registry
        .get_record(RecordTable::Revocations, "0a1b")
        .unwrap();
    assert!(
        revoked.is_some(),
        "the revocation is stored with the decommissioning"
    );
    assert_eq!(registry.history("m2").unwrap().len(), 1);

    // Final: a second decommissioning is refused and the config cannot bring it back.
    let err = registry
        .decommission(
            "m1",
            "again",
            at(6),
            &serde_json::json!({}),
            None::<(&str, &())>,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("decommissioning is final"),
        "{err}"
    );
    let report = registry
        .reconcile(&[record("m1", "a")], "declared", at(7))
        .unwrap();
    assert_eq!(report.decommissioned, vec!["m1".to_owned()]);
}

#[test]
fn an_operators_group_should_survive_a_restart_with_the_configs_group() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    registry
        .insert_device(&record("m1", "a"), "declared", at(0))
        .unwrap();
    let updated = registry
        .update_device("m1", |r| {
            r.group = Some("lighting".into());
            r.group_assigned = true;
            // A lifecycle change here is ignored: moves go through `transition`.
            r.lifecycle = LifecycleState::Commissioned;
        })
        .unwrap();
    assert_eq!(updated.lifecycle, LifecycleState::Provisioned);
    registry
        .reconcile(&[record("m1", "a")], "declared", at(1))
        .unwrap();
    let device = registry.device("m1").unwrap().unwrap();
    assert_eq!(device.group.as_deref(), Some("lighting"));
}
