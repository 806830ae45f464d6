#![allow(clippy::unwrap_used)]

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use uuid::Uuid;

use super::record::{BatchRecord, DeviceResult, Outcome};
use super::request::{BatchRequest, DEFAULT_CONCURRENCY, MAX_CONCURRENCY, RequestError};
use super::{Batches, RecordTable, Registry};
use crate::upnp::xml_list;

fn list(pairs: &[(&str, &str)]) -> String {
    let items: String = pairs
        .iter()
        .map(|(p, v)| {
            format!("<Parameter><ParameterPath>{p}</ParameterPath><Value>{v}</Value></Parameter>")
        })
        .collect();
    format!(
        r#"<cms:ParameterValueList xmlns:cms="urn:schemas-upnp-org:dm:cms">{items}</cms:ParameterValueList>"#
    )
}

fn setpoint() -> String {
    list(&[("/IoTMC/Parameters/setpoint", "22.5")])
}

fn parse(id: &str, targets: &str, list: &str, max: &str) -> Result<BatchRequest, RequestError> {
    BatchRequest::parse(id, targets, list, max)
}

#[test]
fn a_batch_id_of_allowed_characters_should_be_taken_trimmed() {
    let request = parse(" nightly-2026.11.24:run_1 ", "dev-1", &setpoint(), "0").unwrap();
    assert_eq!(request.id, "nightly-2026.11.24:run_1");
    let longest = "a".repeat(128);
    assert_eq!(
        parse(&longest, "dev-1", &setpoint(), "0").unwrap().id,
        longest
    );
}

#[test]
fn an_empty_overlong_or_badly_formed_batch_id_should_be_refused_with_600() {
    for (id, why) in [
        ("", "is empty"),
        ("   ", "is empty"),
        (&"a".repeat(129), "is too long"),
        ("run 1", "not allowed"),
        ("run/1", "not allowed"),
        ("run<1>", "not allowed"),
        ("lauf-ü", "not allowed"),
    ] {
        let error = parse(id, "dev-1", &setpoint(), "0").unwrap_err();
        assert!(matches!(error, RequestError::BadId { .. }), "{id:?}");
        let upnp = error.to_upnp();
        assert_eq!(upnp.code, 600, "{id:?}");
        assert!(
            upnp.description.contains(why),
            "{id:?}: {}",
            upnp.description
        );
        assert!(
            upnp.description.contains("BatchSetValues: BatchId"),
            "{}",
            upnp.description
        );
    }
}

#[test]
fn max_concurrent_zero_should_mean_eight_and_be_capped_at_sixty_four() {
    let max = |text: &str| {
        parse("b", "dev-1", &setpoint(), text)
            .unwrap()
            .max_concurrent
    };
    assert_eq!(max("0"), DEFAULT_CONCURRENCY);
    assert_eq!(DEFAULT_CONCURRENCY, 8);
    assert_eq!(max("1"), 1);
    assert_eq!(max(" 3 "), 3);
    assert_eq!(max("64"), 64);
    assert_eq!(max("65"), MAX_CONCURRENCY);
    assert_eq!(max("4294967295"), MAX_CONCURRENCY);
    let error = parse("b", "dev-1", &setpoint(), "many").unwrap_err();
    assert_eq!(error.to_upnp().code, 600);
}

#[test]
fn a_malformed_or_empty_list_should_be_refused_with_701_and_a_repeated_path_with_706() {
    for bad in [
        "not xml".to_owned(),
        "<Other/>".to_owned(),
        list(&[]),
        r#"<cms:ParameterValueList xmlns:cms="urn:schemas-upnp-org:dm:cms"><Parameter><ParameterPath>/IoTMC/Parameters/setpoint</ParameterPath></Parameter></cms:ParameterValueList>"#.to_owned(),
    ] {
        let error = parse("b", "dev-1", &bad, "0").unwrap_err();
        assert_eq!(error.to_upnp().code, 701, "{bad}: {error}");
    }
    let twice = list(&[
        ("/IoTMC/Parameters/setpoint", "21"),
        (" /IoTMC/Parameters/setpoint ", "22"),
    ]);
    let error = parse("b", "dev-1", &twice, "0").unwrap_err();
    assert_eq!(error.to_upnp().code, 706);
    assert!(
        error.to_string().contains("/IoTMC/Parameters/setpoint"),
        "{error}"
    );
}

#[test]
fn targets_should_be_trimmed_without_blanks_or_repeats_in_their_order() {
    let request = parse("b", " dev-2 ,, group: hall ,dev-1,dev-2,", &setpoint(), "0").unwrap();
    assert_eq!(request.targets, ["dev-2", "group:hall", "dev-1"]);
    assert_eq!(request.targets_spec(), "dev-2,group:hall,dev-1");
}

#[test]
fn the_digest_should_not_depend_on_spacing_parameter_order_or_concurrency() {
    let a = parse(
        "b",
        "group:hall,dev-1",
        &list(&[
            ("/IoTMC/Parameters/setpoint", "22.5"),
            ("/IoTMC/Parameters/mode", "eco"),
        ]),
        "2",
    )
    .unwrap();
    let b = parse(
        "b",
        " group: hall , dev-1 ,",
        &list(&[
            ("/IoTMC/Parameters/mode", " eco "),
            (" /IoTMC/Parameters/setpoint", "22.5"),
        ]),
        "0",
    )
    .unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.digest().len(), 64);
}

#[test]
fn the_digest_should_differ_for_another_value_path_or_target() {
    let base = parse("b", "dev-1,dev-2", &setpoint(), "0")
        .unwrap()
        .digest();
    let others = [
        parse(
            "b",
            "dev-1,dev-2",
            &list(&[("/IoTMC/Parameters/setpoint", "22.6")]),
            "0",
        ),
        parse(
            "b",
            "dev-1,dev-2",
            &list(&[("/IoTMC/Parameters/other", "22.5")]),
            "0",
        ),
        parse("b", "dev-1", &setpoint(), "0"),
        parse("b", "dev-2,dev-1", &setpoint(), "0"),
        // Field boundaries are part of the digest: moving text between them changes it.
        parse("b", "dev-1dev-2", &setpoint(), "0"),
    ];
    for other in others {
        assert_ne!(other.unwrap().digest(), base);
    }
}

#[test]
fn the_list_each_device_gets_should_carry_the_normalised_values_escaped() {
    let request = parse(
        "b",
        "dev-1",
        &list(&[
            ("/IoTMC/Parameters/label", " a &amp; b &lt;c&gt; "),
            ("/IoTMC/Parameters/setpoint", "21"),
        ]),
        "0",
    )
    .unwrap();
    let items = xml_list::parse(&request.list_xml(), "ParameterValueList").unwrap();
    let pairs: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i.field("ParameterPath").unwrap(), i.field("Value").unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("/IoTMC/Parameters/label", "a & b <c>"),
            ("/IoTMC/Parameters/setpoint", "21")
        ]
    );
}

fn record(id: &str, finished_ms: u64) -> BatchRecord {
    BatchRecord {
        batch_id: id.into(),
        digest: "d".repeat(64),
        targets: "group:hall".into(),
        values: vec![("/IoTMC/Parameters/setpoint".into(), "22.5".into())],
        operator: Some("CN=operator".into()),
        started_ms: finished_ms.saturating_sub(1500),
        finished_ms,
        results: vec![
            DeviceResult {
                id: "t-1".into(),
                udn: Uuid::nil(),
                outcome: Outcome::ChangesApplied,
                config_version: 4,
            },
            DeviceResult {
                id: "t-<2>".into(),
                udn: Uuid::from_u128(2),
                outcome: Outcome::Failed {
                    code: 707,
                    description: "SetValues on device t-2: timed out & gave up".into(),
                },
                config_version: 1,
            },
        ],
    }
}

/// The element names of a well-formed document, in order; panics otherwise.
fn well_formed(xml: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut seen = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => {
                seen.push(e.name().into_inner().to_owned());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    seen
}

#[test]
fn results_should_count_and_list_every_device_in_order_escaped() {
    let record = record("nightly-1", 1_764_000_000_000);
    let xml = record.results_xml(false);
    let elements = well_formed(&xml);
    assert_eq!(elements.iter().filter(|e| *e == "Device").count(), 2);
    assert!(
        xml.contains(r#"<BatchResults BatchId="nightly-1" Devices="2" Succeeded="1" Failed="1" Replayed="0" Started="2025-11-24T15:59:58.500Z" Finished="2025-11-24T16:00:00.000Z">"#),
        "{xml}"
    );
    assert!(
        xml.contains("<Device><Id>t-1</Id><UDN>uuid:00000000-0000-0000-0000-000000000000</UDN><Status>ChangesApplied</Status><ConfigurationVersion>4</ConfigurationVersion></Device>"),
        "{xml}"
    );
    assert!(
        xml.contains("<Id>t-&lt;2&gt;</Id><UDN>uuid:00000000-0000-0000-0000-000000000002</UDN><Status>Failed</Status><ErrorCode>707</ErrorCode><ErrorDescription>SetValues on device t-2: timed out &amp; gave up</ErrorDescription><ConfigurationVersion>1</ConfigurationVersion>"),
        "{xml}"
    );
    assert!(xml.find("t-1").unwrap() < xml.find("t-&lt;2").unwrap());
}

#[test]
fn replayed_results_should_say_so_and_differ_only_there() {
    let record = record("b", 1_764_000_000_000);
    let first = record.results_xml(false);
    let again = record.results_xml(true);
    assert!(again.contains(r#"Replayed="1""#), "{again}");
    assert_eq!(again.replace(r#"Replayed="1""#, r#"Replayed="0""#), first);
}

#[test]
fn a_record_should_survive_its_json_round_trip() {
    let record = record("b", 1_764_000_000_000);
    let json = serde_json::to_string(&record).unwrap();
    assert!(json.contains(r#""status":"Failed""#), "{json}");
    assert_eq!(serde_json::from_str::<BatchRecord>(&json).unwrap(), record);
}

#[test]
fn storing_past_the_bound_should_remove_the_oldest_batches_including_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    // Two batches stored by an earlier run of the gateway, out of key order.
    registry
        .put_record(RecordTable::Batches, "z-old", &record("z-old", 1_000))
        .unwrap();
    registry
        .put_record(RecordTable::Batches, "a-newer", &record("a-newer", 2_000))
        .unwrap();
    let batches = Batches::default();
    for (i, id) in ["c", "d", "e"].iter().enumerate() {
        let finished = 3_000 + u64::try_from(i).unwrap();
        batches.store(&registry, &record(id, finished), 3).unwrap();
    }
    let kept: Vec<String> = registry
        .records::<BatchRecord>(RecordTable::Batches)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(kept, ["c", "d", "e"]);
    let stored: BatchRecord = registry
        .get_record(RecordTable::Batches, "e")
        .unwrap()
        .unwrap();
    assert_eq!(stored, record("e", 3_002));
}

#[test]
fn storing_within_the_bound_should_keep_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    let batches = Batches::default();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let finished = 1_000 + u64::try_from(i).unwrap();
        batches.store(&registry, &record(id, finished), 3).unwrap();
    }
    assert_eq!(
        registry
            .records::<BatchRecord>(RecordTable::Batches)
            .unwrap()
            .len(),
        3
    );
}
