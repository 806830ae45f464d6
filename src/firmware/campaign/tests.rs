#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;

const T0: UnixMs = 1_800_000_000_000;

fn devices(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("dev-{i}")).collect()
}

fn campaign(n: usize, max_concurrent: u32, failure_threshold: u32) -> Campaign {
    Campaign::new(
        NewCampaign {
            id: "c1".into(),
            image: "ab".repeat(32),
            devices: devices(n),
            max_concurrent,
            failure_threshold,
            start_at: T0,
        },
        T0 - 1_000,
    )
}

/// Starts every due device with update id `u-<device>`; returns them.
fn start_due(c: &mut Campaign, now: UnixMs) -> Vec<String> {
    let due = c.due(now);
    for device in &due {
        c.started(device, &format!("u-{device}"), now);
    }
    due
}

fn confirm(c: &mut Campaign, device: &str) {
    c.ended(device, Phase::Confirmed, ResultCode::Success, T0);
}

fn roll_back(c: &mut Campaign, device: &str) {
    c.ended(device, Phase::RolledBack, ResultCode::ProbationFailed, T0);
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn new_campaign_should_run_with_every_device_pending() {
    let c = campaign(3, 1, 1);
    assert_eq!(c.state, CampaignState::Running);
    assert!(c.devices.iter().all(|(_, slot)| *slot == Slot::Pending));
    assert_eq!(
        c.counts(),
        Counts {
            pending: 3,
            ..Counts::default()
        }
    );
    assert_eq!((c.created_at, c.updated_at), (T0 - 1_000, T0 - 1_000));
}

#[test]
fn no_device_should_be_due_before_start_at() {
    let c = campaign(3, 2, 1);
    assert!(c.due(T0 - 1).is_empty());
    assert_eq!(c.due(T0), names(&["dev-1", "dev-2"]));
}

#[test]
fn concurrency_cap_should_be_respected_as_devices_end() {
    let mut c = campaign(5, 2, 5);
    assert_eq!(start_due(&mut c, T0), names(&["dev-1", "dev-2"]));
    assert!(c.due(T0).is_empty(), "both slots are taken");
    confirm(&mut c, "dev-2");
    assert_eq!(start_due(&mut c, T0), names(&["dev-3"]));
    assert!(c.due(T0).is_empty());
    confirm(&mut c, "dev-1");
    confirm(&mut c, "dev-3");
    assert_eq!(start_due(&mut c, T0), names(&["dev-4", "dev-5"]));
    assert_eq!(c.counts().running, 2);
    assert_eq!(c.counts().succeeded, 3);
}

#[test]
fn a_cap_of_zero_should_start_one_device_at_a_time() {
    let mut c = campaign(3, 0, 1);
    assert_eq!(start_due(&mut c, T0), names(&["dev-1"]));
    assert!(c.due(T0).is_empty());
}

#[test]
fn reaching_the_failure_threshold_should_pause_and_start_no_more_devices() {
    let mut c = campaign(6, 3, 2);
    start_due(&mut c, T0);
    roll_back(&mut c, "dev-1");
    assert_eq!(c.state, CampaignState::Running, "one failure is below 2");
    c.ended("dev-2", Phase::Failed, ResultCode::UpdateFailed, T0 + 5);
    let CampaignState::Paused { reason } = &c.state else {
        panic!("expected Paused, got {:?}", c.state);
    };
    assert_eq!(
        reason,
        "paused: 2 of 6 devices failed (threshold 2); fix the cause, then \
         ResumeFirmwareCampaign or AbortFirmwareCampaign"
    );
    assert_eq!(c.updated_at, T0 + 5);
    assert!(
        c.due(T0 + 10).is_empty(),
        "a paused campaign starts nothing"
    );
    // The update under way goes on and its end is recorded; the campaign stays paused.
    confirm(&mut c, "dev-3");
    assert!(matches!(c.state, CampaignState::Paused { .. }));
    assert_eq!(c.counts().pending, 3);
}

#[test]
fn resume_should_continue_and_pause_again_only_after_new_failures_reach_the_threshold() {
    let mut c = campaign(8, 1, 2);
    for device in ["dev-1", "dev-2"] {
        start_due(&mut c, T0);
        roll_back(&mut c, device);
    }
    assert!(matches!(c.state, CampaignState::Paused { .. }));
    c.resume(T0 + 1).unwrap();
    assert_eq!(c.state, CampaignState::Running);
    assert_eq!(c.counts().failed, 2, "resuming resets nothing");
    // One new failure is below the threshold again.
    assert_eq!(start_due(&mut c, T0 + 1), names(&["dev-3"]));
    roll_back(&mut c, "dev-3");
    assert_eq!(c.state, CampaignState::Running);
    assert_eq!(start_due(&mut c, T0 + 1), names(&["dev-4"]));
    confirm(&mut c, "dev-4");
    // The second new failure reaches it.
    assert_eq!(start_due(&mut c, T0 + 1), names(&["dev-5"]));
    roll_back(&mut c, "dev-5");
    let CampaignState::Paused { reason } = &c.state else {
        panic!("expected Paused, got {:?}", c.state);
    };
    assert!(
        reason.starts_with("paused: 4 of 8 devices failed"),
        "{reason}"
    );
}

#[test]
fn resume_after_an_operator_pause_should_keep_counting_earlier_failures() {
    let mut c = campaign(5, 1, 2);
    start_due(&mut c, T0);
    roll_back(&mut c, "dev-1");
    c.pause("", T0).unwrap();
    c.resume(T0).unwrap();
    start_due(&mut c, T0);
    roll_back(&mut c, "dev-2");
    assert!(
        matches!(c.state, CampaignState::Paused { .. }),
        "the failure before the pause still counts: {:?}",
        c.state
    );
}

#[test]
fn the_resume_baseline_should_survive_a_round_trip_through_json() {
    let mut c = campaign(4, 1, 2);
    for device in ["dev-1", "dev-2"] {
        start_due(&mut c, T0);
        roll_back(&mut c, device);
    }
    c.resume(T0).unwrap();
    let json = serde_json::to_string(&c).unwrap();
    let mut back: Campaign = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    start_due(&mut back, T0);
    roll_back(&mut back, "dev-3");
    assert_eq!(
        back.state,
        CampaignState::Running,
        "one failure since the resume is below the threshold"
    );
}

#[test]
fn a_campaign_stored_without_the_resume_baseline_should_load() {
    let c = campaign(2, 1, 1);
    let mut json = serde_json::to_value(&c).unwrap();
    json.as_object_mut()
        .unwrap()
        .remove("failures_at_resume")
        .unwrap();
    let back: Campaign = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
}

#[test]
fn operator_pause_should_stop_starts_until_resumed() {
    let mut c = campaign(3, 1, 1);
    c.pause("  maintenance crew on site ", T0 + 2).unwrap();
    assert_eq!(
        c.state,
        CampaignState::Paused {
            reason: "maintenance crew on site".into()
        }
    );
    assert_eq!(c.updated_at, T0 + 2);
    assert!(c.due(T0 + 3).is_empty());
    let err = c.pause("again", T0 + 3).unwrap_err();
    assert!(
        err.contains("\"c1\"") && err.contains("paused (maintenance crew on site)"),
        "{err}"
    );
    c.resume(T0 + 4).unwrap();
    assert_eq!(c.due(T0 + 4), names(&["dev-1"]));
    let err = c.resume(T0 + 5).unwrap_err();
    assert!(err.contains("cannot be resumed: it is running"), "{err}");
}

#[test]
fn an_empty_pause_reason_should_say_an_operator_paused_it() {
    let mut c = campaign(1, 1, 1);
    c.pause(" ", T0).unwrap();
    assert_eq!(
        c.state,
        CampaignState::Paused {
            reason: "paused by an operator".into()
        }
    );
}

#[test]
fn abort_should_skip_pending_devices_and_return_the_running_updates() {
    let mut c = campaign(5, 2, 3);
    start_due(&mut c, T0);
    confirm(&mut c, "dev-1");
    start_due(&mut c, T0);
    let running = c.abort(T0 + 7).unwrap();
    assert_eq!(running, names(&["u-dev-2", "u-dev-3"]));
    assert_eq!(c.state, CampaignState::Aborted);
    assert_eq!(c.updated_at, T0 + 7);
    assert_eq!(
        c.counts(),
        Counts {
            pending: 0,
            running: 2,
            succeeded: 1,
            failed: 0,
            cancelled: 2,
        }
    );
    assert!(c.due(T0 + 8).is_empty());
    // The running updates end (cancelled or not); the campaign stays aborted.
    c.ended("dev-2", Phase::Cancelled, ResultCode::Cancelled, T0 + 9);
    c.ended("dev-3", Phase::Confirmed, ResultCode::Success, T0 + 9);
    assert_eq!(c.state, CampaignState::Aborted);
    assert_eq!(c.counts().cancelled, 3);
    let err = c.abort(T0 + 10).unwrap_err();
    assert!(err.contains("cannot be aborted: it is aborted"), "{err}");
    let err = c.resume(T0 + 10).unwrap_err();
    assert!(err.contains("cannot be resumed"), "{err}");
}

#[test]
fn a_paused_campaign_should_abort_too() {
    let mut c = campaign(3, 1, 1);
    start_due(&mut c, T0);
    roll_back(&mut c, "dev-1");
    assert_eq!(c.abort(T0).unwrap(), Vec::<String>::new());
    assert_eq!(c.state, CampaignState::Aborted);
    assert_eq!(c.counts().cancelled, 2);
}

#[test]
fn an_update_started_after_an_abort_should_still_be_tracked() {
    let mut c = campaign(2, 2, 1);
    let due = c.due(T0);
    c.abort(T0).unwrap();
    c.started(&due[0], "u-late", T0);
    assert_eq!(c.counts().running, 1);
    c.ended(&due[0], Phase::Confirmed, ResultCode::Success, T0);
    assert_eq!(c.counts().succeeded, 1);
    assert_eq!(c.state, CampaignState::Aborted);
}

#[test]
fn campaign_should_complete_when_every_device_has_ended() {
    let mut c = campaign(3, 3, 5);
    start_due(&mut c, T0);
    confirm(&mut c, "dev-1");
    roll_back(&mut c, "dev-2");
    assert_eq!(c.state, CampaignState::Running);
    c.ended("dev-3", Phase::Cancelled, ResultCode::Cancelled, T0);
    assert_eq!(c.state, CampaignState::Completed);
    assert_eq!(
        c.counts(),
        Counts {
            pending: 0,
            running: 0,
            succeeded: 1,
            failed: 1,
            cancelled: 1,
        }
    );
    let err = c.pause("x", T0).unwrap_err();
    assert!(err.contains("it is completed"), "{err}");
    assert!(c.abort(T0).is_err());
}

#[test]
fn a_paused_campaign_should_complete_when_nothing_is_pending_and_nothing_runs() {
    let mut c = campaign(2, 2, 1);
    start_due(&mut c, T0);
    roll_back(&mut c, "dev-1");
    assert!(matches!(c.state, CampaignState::Paused { .. }));
    confirm(&mut c, "dev-2");
    assert_eq!(c.state, CampaignState::Completed);
}

#[test]
fn refused_device_should_count_as_a_failure() {
    let mut c = campaign(3, 2, 2);
    let due = c.due(T0);
    c.refused(&due[0], "the image does not fit dev-1's profile", T0);
    c.started(&due[1], "u-2", T0);
    assert_eq!(c.counts().failed, 1);
    assert_eq!(
        c.slots()["dev-1"],
        &Slot::Refused {
            reason: "the image does not fit dev-1's profile".into()
        }
    );
    // A refused device frees its place at once.
    assert_eq!(c.due(T0), names(&["dev-3"]));
    c.refused("dev-3", "no link", T0);
    assert!(matches!(c.state, CampaignState::Paused { .. }));
}

#[test]
fn stale_and_unknown_calls_should_change_nothing() {
    let mut c = campaign(3, 1, 1);
    start_due(&mut c, T0);
    let before = c.clone();
    c.started("nobody", "u-x", T0 + 1);
    c.started("dev-1", "u-again", T0 + 1);
    c.refused("dev-1", "late", T0 + 1);
    c.refused("nobody", "late", T0 + 1);
    c.ended("dev-2", Phase::Confirmed, ResultCode::Success, T0 + 1);
    c.ended("dev-1", Phase::Transferring, ResultCode::Initial, T0 + 1);
    c.ended("nobody", Phase::Failed, ResultCode::UpdateFailed, T0 + 1);
    assert_eq!(c, before);
    confirm(&mut c, "dev-1");
    let after = c.clone();
    roll_back(&mut c, "dev-1");
    assert_eq!(c, after, "a second end of the same update is ignored");
}

#[test]
fn campaign_should_survive_a_serde_round_trip_in_every_slot_kind() {
    let mut c = campaign(5, 5, 5);
    let due = start_due(&mut c, T0);
    confirm(&mut c, &due[0]);
    roll_back(&mut c, &due[1]);
    c.pause("night", T0).unwrap();
    let mut with_refusal = c.clone();
    with_refusal.devices[4].1 = Slot::Refused {
        reason: "busy".into(),
    };
    with_refusal.devices[3].1 = Slot::Skipped;
    for c in [c, with_refusal] {
        let json = serde_json::to_vec(&c).unwrap();
        let back: Campaign = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, c);
    }
}

#[test]
fn status_value_should_name_the_state_and_the_counts() {
    let mut c = campaign(4, 2, 5);
    assert_eq!(
        c.status_value(),
        "c1,Running,pending=4,running=0,succeeded=0,failed=0,cancelled=0"
    );
    start_due(&mut c, T0);
    confirm(&mut c, "dev-1");
    c.refused("dev-3", "busy", T0);
    c.abort(T0).unwrap();
    assert_eq!(
        c.status_value(),
        "c1,Aborted,pending=0,running=1,succeeded=1,failed=1,cancelled=1"
    );
}

#[test]
fn status_xml_should_list_every_device_escaped() {
    let mut c = Campaign::new(
        NewCampaign {
            id: "c<1>".into(),
            image: "ab".repeat(32),
            devices: names(&["a&b", "c", "d", "e", "f"]),
            max_concurrent: 2,
            failure_threshold: 3,
            start_at: T0,
        },
        T0,
    );
    start_due(&mut c, T0);
    c.ended("a&b", Phase::RolledBack, ResultCode::ProbationFailed, T0);
    c.refused("d", "link \"down\"", T0);
    start_due(&mut c, T0);
    c.pause("night <shift>", T0).unwrap();
    let image = "ab".repeat(32);
    assert_eq!(
        c.status_xml(),
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Campaign id="c&lt;1&gt;" state="Paused" image="{image}" maxConcurrent="2" failureThreshold="3" reason="night &lt;shift&gt;"><Device id="a&amp;b" status="RolledBack" updateId="u-a&amp;b" resultCode="12" detail=""/><Device id="c" status="Started" updateId="u-c" resultCode="0" detail=""/><Device id="d" status="Refused" updateId="" resultCode="0" detail="link &quot;down&quot;"/><Device id="e" status="Started" updateId="u-e" resultCode="0" detail=""/><Device id="f" status="Pending" updateId="" resultCode="0" detail=""/></Campaign>"#
        )
    );
    c.abort(T0).unwrap();
    let xml = c.status_xml();
    assert!(
        xml.contains(r#"state="Aborted""#) && xml.contains(r#"reason="""#),
        "{xml}"
    );
    assert!(
        xml.contains(
            r#"<Device id="f" status="Skipped" updateId="" resultCode="0" detail="not started: the campaign was aborted"/>"#
        ),
        "{xml}"
    );
}

#[test]
fn status_xml_should_parse_as_xml() {
    let mut c = campaign(2, 1, 1);
    c.refused("dev-1", "a & b < c", T0);
    let xml = c.status_xml();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut devices = 0;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Empty(e) if e.name().into_inner() == "Device" => devices += 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(devices, 2);
}

fn groups() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([
        ("boiler-room".to_owned(), names(&["dev-3", "dev-1"])),
        ("roof".to_owned(), names(&["dev-2"])),
        ("empty".to_owned(), Vec::new()),
    ])
}

#[test]
fn parse_targets_should_expand_a_group_in_its_order() {
    let known = devices(4);
    assert_eq!(
        parse_targets("group:boiler-room", &groups(), &known),
        Ok(names(&["dev-3", "dev-1"]))
    );
}

#[test]
fn parse_targets_should_take_a_list_of_devices() {
    let known = devices(4);
    assert_eq!(
        parse_targets(" dev-4 , dev-2,", &groups(), &known),
        Ok(names(&["dev-4", "dev-2"]))
    );
}

#[test]
fn parse_targets_should_mix_groups_and_devices_keeping_the_first_of_duplicates() {
    let known = devices(4);
    assert_eq!(
        parse_targets(
            "dev-1,group:boiler-room,group:roof,dev-2,dev-4,dev-4",
            &groups(),
            &known
        ),
        Ok(names(&["dev-1", "dev-3", "dev-2", "dev-4"]))
    );
}

#[test]
fn parse_targets_should_name_an_unknown_group_and_list_the_known_ones() {
    let err = parse_targets("dev-1,group:cellar", &groups(), &devices(4)).unwrap_err();
    assert_eq!(
        err,
        "Targets names group \"cellar\", which does not exist; known groups: boiler-room, \
         empty, roof"
    );
    let err = parse_targets("group:cellar", &BTreeMap::new(), &devices(4)).unwrap_err();
    assert!(err.ends_with("there are no groups"), "{err}");
}

#[test]
fn parse_targets_should_name_an_unknown_device_and_list_at_most_twenty_known_ones() {
    let known = devices(25);
    let err = parse_targets("dev-1,pump-9", &groups(), &known).unwrap_err();
    assert!(
        err.starts_with("Targets names device \"pump-9\", which the gateway does not know"),
        "{err}"
    );
    assert!(err.contains("dev-20 and 5 more"), "{err}");
    assert!(!err.contains("dev-21"), "{err}");
    assert!(err.contains("group:<name>"), "{err}");
}

#[test]
fn parse_targets_should_refuse_a_spec_that_names_no_device() {
    let known = devices(2);
    let err = parse_targets(" , ", &groups(), &known).unwrap_err();
    assert!(err.starts_with("Targets names no device"), "{err}");
    let err = parse_targets("group:empty", &groups(), &known).unwrap_err();
    assert!(err.contains("empty have no members"), "{err}");
}
