//! What the firmware engine costs on the gateway itself, as figures (release build):
//!
//! - importing a 32 MiB image (SHA-256, signature check, durable write), and reading it back
//!   (re-hashed before every transfer);
//! - one store scan with 100 images (every envelope's signature is checked again; the running
//!   gateway scans every `[firmware] scan_interval`);
//! - the state machine's steps (a whole successful update, sans IO).
//!
//! `cargo bench --bench firmware`

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use iotmc_gateway::firmware::machine::{
    Command, HealthSample, ImageRef, Input, Machine, NewUpdate, Phase, Strategy,
};
use iotmc_gateway::firmware::manifest::Manifest;
use iotmc_gateway::firmware::signing::{self, TrustedKeys};
use iotmc_gateway::firmware::store::{ImageStore, ImportCheck, hex, sha256};
use tokio::time::Instant;

const PROFILE: &str = "bench-device";

fn manifest(bytes: &[u8], version: &str) -> Manifest {
    Manifest {
        targets: vec![PROFILE.to_owned()],
        version: version.to_owned(),
        release_date: "2026-11-24".to_owned(),
        size: bytes.len() as u64,
        sha256: hex(&sha256(bytes)),
        emergency: false,
        min_hardware: None,
        min_bootloader: None,
    }
}

fn image(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (key, public) = signing::generate(&keys, "bench").unwrap();
    let trust_dir = dir.path().join("trust");
    std::fs::create_dir_all(&trust_dir).unwrap();
    std::fs::copy(&public, trust_dir.join("bench.pub")).unwrap();
    let trust = TrustedKeys::load_dir(&trust_dir).unwrap();
    let check = ImportCheck {
        max_image_size: 32 * 1024 * 1024,
        profiles: BTreeMap::from([(PROFILE.to_owned(), 32 * 1024 * 1024)]),
    };
    let state = dir.path().join("state");
    let store = ImageStore::open(&state).unwrap();

    // A 32 MiB image: sign, import, read back.
    let big = image(32 * 1024 * 1024, 7);
    let started = Instant::now();
    let envelope = signing::sign(&key, &manifest(&big, "9.0.0")).unwrap();
    let signed = started.elapsed();
    let started = Instant::now();
    let stored = store.import(&big, &envelope, &trust, &check).unwrap();
    let imported = started.elapsed();
    let started = Instant::now();
    let bytes = store.read(&stored.sha256).unwrap();
    let read = started.elapsed();
    assert_eq!(bytes.len(), big.len());
    println!(
        "32 MiB image: sign (SHA-256 + Ed25519) {:.1} ms",
        ms(signed)
    );
    println!(
        "32 MiB image: import (checks + durable write) {:.1} ms ({:.0} MB/s)",
        ms(imported),
        32.0 * 1.048_576 / imported.as_secs_f64()
    );
    println!(
        "32 MiB image: read back with SHA-256 check {:.1} ms ({:.0} MB/s)",
        ms(read),
        32.0 * 1.048_576 / read.as_secs_f64()
    );

    // 99 more small images, then scans.
    for i in 0..99u8 {
        let small = image(64 * 1024, i);
        let envelope = signing::sign(&key, &manifest(&small, &format!("1.0.{i}"))).unwrap();
        store.import(&small, &envelope, &trust, &check).unwrap();
    }
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        assert_eq!(store.list(&trust).unwrap().len(), 100);
    }
    let scan = started.elapsed() / rounds;
    println!(
        "store scan, 100 images: {:.2} ms each (every scan_interval, default 5 s: {:.3} % of one core)",
        ms(scan),
        scan.as_secs_f64() / 5.0 * 100.0
    );

    // The machine: a whole successful two-bank update, sans IO.
    let updates = 100_000u64;
    let started = Instant::now();
    for n in 0..updates {
        run_update(n);
    }
    let per_update = started.elapsed() / u32::try_from(updates).unwrap();
    println!(
        "state machine: one whole update (schedule to Confirmed, 3 health checks) {:.2} µs",
        per_update.as_secs_f64() * 1e6
    );
}

fn run_update(n: u64) {
    let image = ImageRef {
        sha256: "00".repeat(32),
        version: "2.0.0".to_owned(),
        size: 65536,
    };
    let mut machine = Machine::schedule(
        NewUpdate {
            update_id: format!("fw-{n}"),
            device: "d".to_owned(),
            image,
            previous_version: Some("1.0.0".to_owned()),
            previous: None,
            strategy: Strategy::NativeTest,
            start_at: 0,
            window: None,
            probation_ms: 3000,
            offline_grace_ms: 3000,
            check_every_ms: 1000,
            campaign: None,
        },
        0,
    );
    let mut now = 0;
    machine.handle_timeout(now);
    for _ in 0..100 {
        if machine.job().phase == Phase::Confirmed {
            return;
        }
        match machine.poll_command() {
            Some(Command::LoadImage { .. }) => machine.handle(Input::ImageLoaded, now),
            Some(Command::Transfer { .. }) => machine.handle(
                Input::TransferDone {
                    verified_on_device: true,
                },
                now,
            ),
            Some(Command::Activate(_)) => machine.handle(
                Input::Activated {
                    running_version: Some("2.0.0".to_owned()),
                },
                now,
            ),
            Some(Command::CheckHealth) => machine.handle(
                Input::Health(HealthSample {
                    reachable: true,
                    running_version: Some("2.0.0".to_owned()),
                    problems: Vec::new(),
                }),
                now,
            ),
            Some(Command::Confirm) => machine.handle(Input::Confirmed, now),
            Some(other) => panic!("unexpected {other:?}"),
            None => {
                now = machine.poll_timeout().unwrap_or(now + 1000);
                machine.handle_timeout(now);
            }
        }
        let _ = machine.take_change();
    }
    panic!("the update did not end: {:?}", machine.job().phase);
}
