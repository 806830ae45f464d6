//! A child process writes to the registry as fast as it can and reports each acknowledged write;
//! the parent kills it with SIGKILL mid-burst, reopens the registry and checks that every
//! acknowledged write is there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use iotmc_gateway::lifecycle::LifecycleState;
use iotmc_gateway::registry::{DeviceRecord, Registry, device_udn, unix_ms};

const CHILD_ENV: &str = "IOTMC_CRASH_TEST_STATE_DIR";

fn record(i: u64) -> DeviceRecord {
    let address = format!("tcp://127.0.0.1:502?unit={i}");
    DeviceRecord {
        id: format!("dev-{i:06}"),
        name: None,
        profile: "acme-meter".into(),
        protocol: "modbus".into(),
        udn: device_udn("crash", "modbus", &address),
        address,
        group: None,
        lifecycle: LifecycleState::Provisioned,
        lifecycle_since_ms: unix_ms(SystemTime::now()),
        config_version: 0,
        in_config: true,
        group_assigned: false,
    }
}

/// The child: runs only when the parent starts this test binary with the state dir set.
#[test]
#[ignore = "run by every_acknowledged_write_should_survive_a_kill in a child process"]
fn crash_child_writer() {
    let dir = std::env::var(CHILD_ENV).expect("started by the parent test with the state dir set");
    let registry = Registry::open(Path::new(&dir)).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        registry
            .insert_device(&record(i), "crash test", SystemTime::now())
            .unwrap();
        registry
            .transition(
                &record(i).id,
                LifecycleState::PendingApproval,
                "crash test",
                SystemTime::now(),
            )
            .unwrap();
        registry.bump_config_version(&record(i).id).unwrap();
        // Acknowledged: all three transactions have committed.
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

fn kill_after(acks_before_kill: usize) -> (tempfile::TempDir, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < acks_before_kill {
        let line = lines
            .next()
            .expect("the child stopped before it was killed")
            .unwrap();
        if let Some(n) = ack(&line) {
            acked.push(n);
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no commit runs after this.
    child.wait().unwrap();
    // Acknowledgements already in the pipe were written after their commits: they count too.
    for line in lines {
        acked.extend(ack(&line.unwrap()));
    }
    assert!(
        acked.iter().copied().eq(0..acked.len() as u64),
        "acknowledgements are read in order, none missed: {acked:?}"
    );
    (dir, acked)
}

/// The index in an acknowledgement line. The harness prints `test crash_child_writer ... `
/// without a newline before the test runs, so the first one shares its line.
fn ack(line: &str) -> Option<u64> {
    line.rsplit_once("ack ")
        .map(|(_, n)| n.trim().parse().expect("an ack line ends with its index"))
}

#[test]
fn every_acknowledged_write_should_survive_a_kill() {
    for acks_before_kill in [1, 25, 60] {
        let (dir, acked) = kill_after(acks_before_kill);
        let registry = Registry::open(dir.path()).expect("the registry reopens after a kill");
        for i in &acked {
            let id = record(*i).id;
            let device = registry
                .device(&id)
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged {id} was lost"));
            assert_eq!(device.lifecycle, LifecycleState::PendingApproval, "{id}");
            assert_eq!(device.config_version, 1, "{id}");
            assert_eq!(registry.history(&id).unwrap().len(), 2, "{id}");
        }
        // At most the one write in flight at the kill may be there beyond the acknowledged ones,
        // and it must be whole or absent, never half-applied across tables.
        let devices = registry.devices().unwrap();
        assert!(
            devices.len() <= acked.len() + 1,
            "{} devices, {} acknowledged: {acked:?} vs {:?}",
            devices.len(),
            acked.len(),
            devices.iter().map(|d| d.id.as_str()).collect::<Vec<_>>()
        );
        for device in devices {
            let history = registry.history(&device.id).unwrap();
            assert!(!history.is_empty(), "{} has no history", device.id);
        }
    }
}
