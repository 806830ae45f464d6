//! The exporter against real sinks: a local UDP and TCP collector (127.0.0.1:0) and files in a
//! temporary directory. Waits are on real events (a datagram, a frame, a record in the ring,
//! a mark moving) bounded by a generous timeout, never sleeps.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::Profile;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::rfc5424::{SD_ID, UDP_MAX};
use super::*;
use crate::config::Config;
use crate::diagnostics::engine::DeviceEntry;
use crate::diagnostics::record::{Category, Event, LogRecord, Severity};
use crate::diagnostics::ring::Filter;

/// Longest any wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Fast enough for tests; same shape as the real pace.
const FAST: Timing = Timing {
    tick: Duration::from_millis(50),
    backoff_first: Duration::from_millis(20),
    backoff_max: Duration::from_millis(200),
    batch: 256,
};

fn profile() -> Arc<Profile> {
    let text = "id = \"export-test\"\nmanufacturer = \"Test\"\nmodel = \"Export test\"\nprotocol = \"memory\"\n";
    Arc::new(Profile::from_toml(Path::new("export-test.toml"), text).unwrap())
}

/// An engine for `devices` (id, group) under a config whose tail is `rest` (the
/// `[diagnostics]` section and any groups).
fn engine(rest: &str, devices: &[(&str, Option<&str>)]) -> DiagnosticsEngine {
    let text = format!(
        "[gateway]\nid = \"gw-test\"\nname = \"Export test\"\nstate_dir = \"state\"\n\n{rest}"
    );
    let config = Config::from_toml(Path::new("/etc/iotmc-gateway/gateway.toml"), &text)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let devices = devices
        .iter()
        .map(|(id, group)| DeviceEntry {
            id: (*id).to_owned(),
            group: group.map(str::to_owned),
            profile: profile(),
            link: None,
        })
        .collect();
    DiagnosticsEngine::new(&config, devices, 0x1234)
}

fn event(message: &str) -> Event {
    Event::gateway(Severity::Error, Category::Error, message).with("code", 701)
}

/// Waits until `done` holds, checking whenever records arrive and every 10 ms.
async fn wait_until(engine: &DiagnosticsEngine, what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !done() {
            tokio::select! {
                () = engine.arrived() => {}
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

/// Reads one RFC 6587 octet-counted frame.
async fn read_frame(reader: &mut BufReader<TcpStream>) -> String {
    let mut length = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        reader.read_until(b' ', &mut length).await.unwrap();
        let length: usize = std::str::from_utf8(&length[..length.len() - 1])
            .unwrap()
            .parse()
            .unwrap();
        let mut frame = vec![0; length];
        reader.read_exact(&mut frame).await.unwrap();
        String::from_utf8(frame).unwrap()
    })
    .await;
    read.expect("a frame from the exporter")
}

async fn accept(listener: &TcpListener) -> BufReader<TcpStream> {
    let (stream, _) = tokio::time::timeout(PATIENCE, listener.accept())
        .await
        .expect("the exporter connects")
        .unwrap();
    BufReader::new(stream)
}

/// The `seq` and `device` SD-PARAMs and the MSG of a message.
fn parts(message: &str) -> (u64, String, String) {
    let parsed =
        syslog_rfc5424::parse_message(message).unwrap_or_else(|e| panic!("{e}: {message:?}"));
    let sd = parsed.sd.find_sdid(SD_ID).unwrap();
    (
        sd["seq"].parse().unwrap(),
        sd["device"].clone(),
        parsed.msg.trim_start_matches('\u{feff}').to_owned(),
    )
}

#[tokio::test]
async fn records_should_reach_a_udp_collector_one_datagram_each() {
    let collector = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = collector.local_addr().unwrap();
    let engine = engine(
        &format!("[diagnostics]\nsyslog = {{ collector = \"{addr}\", facility = \"local3\" }}\n"),
        &[("boiler-1", None)],
    );
    start_timed(&engine, "gw-test", FAST);
    engine.record("boiler-1", event("went offline"));
    // A record far over 2048 bytes as a message: 16 long fields and a long message.
    let mut big = event(&"x".repeat(1000));
    for i in 0..16 {
        big = big.with(&format!("f{i:02}"), "y".repeat(250));
    }
    engine.record("boiler-1", big);
    let mut buf = vec![0; 65536];
    let mut got = Vec::new();
    for _ in 0..2 {
        let n = tokio::time::timeout(PATIENCE, collector.recv(&mut buf))
            .await
            .expect("a datagram")
            .unwrap();
        assert!(n <= UDP_MAX, "{n} bytes");
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    let parsed = syslog_rfc5424::parse_message(&got[0]).unwrap();
    assert_eq!(parsed.hostname.as_deref(), Some("gw-test"));
    // local3 (19) * 8 + error (3)
    assert!(got[0].starts_with("<155>1 "), "{}", got[0]);
    assert_eq!(
        parts(&got[0]),
        (1, "boiler-1".into(), "went offline".into())
    );
    assert_eq!(parts(&got[1]), (2, "boiler-1".into(), "x".repeat(1000)));
    engine.stop();
}

#[tokio::test]
async fn records_should_follow_a_tcp_collector_through_a_restart_without_repeats() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = engine(
        &format!("[diagnostics]\nsyslog = {{ collector = \"{addr}\", transport = \"tcp\" }}\n"),
        &[("boiler-1", None), ("pump-2", None)],
    );
    start_timed(&engine, "gw-test", FAST);
    for i in 1..=5 {
        engine.record("boiler-1", event(&format!("before {i}")));
    }
    let mut first = accept(&listener).await;
    let mut seqs = Vec::new();
    for _ in 1..=5 {
        let (seq, device, message) = parts(&read_frame(&mut first).await);
        assert_eq!(
            (device.as_str(), message),
            ("boiler-1", format!("before {seq}"))
        );
        seqs.push(seq);
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    wait_until(&engine, "the mark to cover 5", || {
        engine.info("boiler-1").unwrap().ring.exports[0].exported == 5
    })
    .await;

    // The collector goes away (and its port refuses) while records keep arriving.
    drop(first);
    drop(listener);
    for i in 6..=10 {
        engine.record("boiler-1", event(&format!("after {i}")));
    }
    engine.record("pump-2", event("after 1"));
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut second = accept(&listener).await;
    let mut got = Vec::new();
    for _ in 0..6 {
        let (seq, device, message) = parts(&read_frame(&mut second).await);
        got.push((device, seq, message));
    }
    got.sort();
    let expected: Vec<_> = (6..=10)
        .map(|i| ("boiler-1".to_owned(), i, format!("after {i}")))
        .chain([("pump-2".to_owned(), 1, "after 1".to_owned())])
        .collect();
    assert_eq!(
        got, expected,
        "everything after the mark once, nothing before it"
    );
    wait_until(&engine, "the marks to cover everything", || {
        engine.info("boiler-1").unwrap().ring.exports[0].exported == 10
            && engine.info("pump-2").unwrap().ring.exports[0].exported == 1
    })
    .await;
    assert_eq!(engine.info("boiler-1").unwrap().ring.exports[0].lost, 0);
    engine.stop();
}

#[tokio::test]
async fn a_stuck_sink_should_report_the_lost_count_once_and_warn_in_the_ring_once() {
    // A port nothing listens on: the collector is down.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let engine = engine(
        &format!(
            "[diagnostics]\nring_size = 16384\nsyslog = {{ collector = \"{addr}\", transport = \"tcp\" }}\n"
        ),
        &[("boiler-1", None)],
    );
    start_timed(&engine, "gw-test", FAST);
    for i in 0..400 {
        engine.record("boiler-1", event(&format!("burst one, record {i}")));
    }
    let warnings = || {
        engine
            .records("boiler-1", &Filter::all(10_000))
            .into_iter()
            .filter(|r| r.field("sink") == Some("syslog:gateway"))
            .collect::<Vec<LogRecord>>()
    };
    wait_until(&engine, "a warning in the ring", || !warnings().is_empty()).await;
    let warning = warnings().remove(0);
    assert_eq!(warning.severity, Severity::Warning);
    assert!(
        warning.message.contains("before export to syslog:gateway")
            && warning.message.contains("ring_size")
            && warning.message.contains(&addr.to_string()),
        "{}",
        warning.message
    );
    let first_loss: u64 = warning.field("lost").unwrap().parse().unwrap();
    assert!(first_loss > 0);

    // More records overflow the ring while the collector stays down; then it comes back.
    for i in 0..50 {
        engine.record("boiler-1", event(&format!("burst two, record {i}")));
    }
    let last = engine.info("boiler-1").unwrap().ring.last_seq;
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut collector = accept(&listener).await;
    let mut frames = Vec::new();
    loop {
        let frame = read_frame(&mut collector).await;
        let seq = parts(&frame).0;
        frames.push(frame);
        if seq == last {
            break;
        }
    }
    let notices: Vec<_> = frames.iter().filter(|f| parts(f).0 == 0).collect();
    assert_eq!(notices.len(), 1, "one notice for the whole outage");
    let notice = syslog_rfc5424::parse_message(notices[0]).unwrap();
    let lost_in_ring = engine.info("boiler-1").unwrap().ring.exports[0].lost;
    assert!(
        lost_in_ring > first_loss,
        "the second burst lost records too"
    );
    assert_eq!(
        notice.sd.find_sdid(SD_ID).unwrap()["lost"],
        lost_in_ring.to_string()
    );
    assert!(
        notice
            .msg
            .contains(&format!("{lost_in_ring} records of boiler-1"))
    );
    // The notice comes first, then the held records in order, the warning among them.
    assert_eq!(parts(&frames[0]).0, 0);
    let seqs: Vec<u64> = frames[1..].iter().map(|f| parts(f).0).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(seqs.contains(&warning.seq));
    assert_eq!(
        warnings().len(),
        1,
        "one warning in the ring for one outage"
    );
    engine.stop();
}

#[tokio::test]
async fn file_sinks_should_write_json_lines_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display();
    let engine = engine(
        &format!(
            r#"[diagnostics]
file = {{ directory = "{root}/all" }}

[[groups]]
name = "hvac"

[groups.diagnostics]
file = {{ directory = "{root}/hvac", max_size = 4096, keep = 2 }}

[[groups]]
name = "lighting"
"#
        ),
        &[
            ("ahu-1", Some("hvac")),
            ("lamp-1", Some("lighting")),
            ("meter-1", None),
        ],
    );
    start_timed(&engine, "gw-test", FAST);
    for device in ["ahu-1", "lamp-1", "meter-1"] {
        engine.record(device, event(&format!("{device} says hello")));
    }
    wait_until(&engine, "every record to be exported", || {
        ["ahu-1", "lamp-1", "meter-1"]
            .iter()
            .all(|d| engine.info(d).unwrap().ring.exports[0].exported == 1)
    })
    .await;
    let read = |path: String| -> Vec<serde_json::Value> {
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let hvac = read(format!("{root}/hvac/hvac.jsonl"));
    assert_eq!(hvac.len(), 1);
    assert_eq!(hvac[0]["device"], "ahu-1");
    assert_eq!(hvac[0]["message"], "ahu-1 says hello");
    assert_eq!(hvac[0]["fields"]["code"], "701");
    let all = read(format!("{root}/all/gateway.jsonl"));
    let mut devices: Vec<_> = all.iter().map(|l| l["device"].as_str().unwrap()).collect();
    devices.sort_unstable();
    assert_eq!(devices, ["lamp-1", "meter-1"]);
    engine.stop();
}

#[tokio::test]
async fn a_burst_that_overflows_the_ring_of_a_working_sink_should_be_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(
        &format!(
            "[diagnostics]\nring_size = 16384\nfile = {{ directory = \"{}\" }}\n",
            dir.path().display()
        ),
        &[("boiler-1", None)],
    );
    start_timed(&engine, "gw-test", FAST);
    // Faster than any round: most of the burst is overwritten before the first one.
    for i in 0..400 {
        engine.record("boiler-1", event(&format!("burst, record {i}")));
    }
    let exported = || engine.info("boiler-1").unwrap().ring.exports[0].exported;
    // The warning about the burst is recorded after the burst's batch; once it is exported, a
    // sentinel tells when everything before it has been written.
    wait_until(&engine, "the burst and its warning to be exported", || {
        exported() > 400
    })
    .await;
    engine.record("boiler-1", event("sentinel"));
    let sentinel = engine.info("boiler-1").unwrap().ring.last_seq;
    wait_until(&engine, "the sentinel to be exported", || {
        exported() == sentinel
    })
    .await;
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("gateway.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let notices: Vec<_> = lines.iter().filter(|l| l["seq"] == 0).collect();
    assert_eq!(notices.len(), 1, "{notices:#?}");
    let lost = engine.info("boiler-1").unwrap().ring.exports[0].lost;
    assert_eq!(notices[0]["fields"]["lost"], lost.to_string());
    assert_eq!(notices[0]["fields"]["sink"], "file:gateway");
    assert_eq!(lines.last().unwrap()["message"], "sentinel");
    let warnings = lines
        .iter()
        .filter(|l| l["seq"] != 0 && l["fields"]["sink"] == "file:gateway")
        .count();
    assert_eq!(warnings, 1, "one warning record for one burst");
}

#[tokio::test]
async fn a_stop_should_write_what_the_sinks_still_hold() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display();
    let engine = engine(
        &format!(
            "[diagnostics]\nring_size = 2097152\nfile = {{ directory = \"{root}\", max_size = 104857600 }}\n"
        ),
        &[("ahu-1", None)],
    );
    for i in 0..3000 {
        engine.record("ahu-1", event(&format!("record {i}")));
    }
    start_timed(&engine, "gw-test", FAST);
    // Twelve batches of 256 to write: the stop comes long before they are done.
    engine.shutdown(PATIENCE).await;
    let lines = std::fs::read_to_string(format!("{root}/gateway.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3000);
    assert_eq!(engine.info("ahu-1").unwrap().ring.exports[0].exported, 3000);
}

#[tokio::test]
async fn a_stop_should_not_wait_for_a_failing_sink() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let collector = closed.local_addr().unwrap();
    drop(closed);
    let engine = engine(
        &format!(
            "[diagnostics]\nsyslog = {{ collector = \"{collector}\", transport = \"tcp\" }}\n"
        ),
        &[("ahu-1", None)],
    );
    engine.record("ahu-1", event("never delivered"));
    start_timed(&engine, "gw-test", FAST);
    let started = tokio::time::Instant::now();
    engine.shutdown(PATIENCE).await;
    assert!(started.elapsed() < PATIENCE / 2, "{:?}", started.elapsed());
    assert_eq!(engine.info("ahu-1").unwrap().ring.exports[0].exported, 0);
}
