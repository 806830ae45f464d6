//! Firmware by file records and the device log, end to end: a `ModbusLink` over Modbus TCP
//! (loopback, port 0) to the simulated demo controller (two banks, SHA-256 verification, a
//! register-ring event log of 32 entries).
#![cfg(feature = "sim")]

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use iotmc_adapter::testkit::{Conformance, FirmwareFixture};
use iotmc_adapter::{
    ActivationMode, DeviceLink, ErrorKind, FirmwareImage, LinkError, LogCursor, Profile, Severity,
    StageProgress,
};
use iotmc_adapter_modbus::ModbusLink;
use iotmc_adapter_modbus::address::BusKey;
use iotmc_adapter_modbus::driver::{BusHandle, Framing, TcpConnector};
use iotmc_adapter_modbus::frame::ExceptionCode;
use iotmc_adapter_modbus::profile::load_section;
use iotmc_adapter_modbus::sim::{SimDevice, SimIdentity, TcpServer, Unit};
use sha2::{Digest, Sha256};

struct Bench {
    device: SimDevice,
    link: Arc<ModbusLink>,
    profile: Arc<Profile>,
    _server: TcpServer,
}

fn demo_profile() -> Arc<Profile> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/modbus/iotmc-demo-controller.toml");
    Arc::new(Profile::load(&path).unwrap_or_else(|e| panic!("{e:?}")))
}

async fn bench() -> Bench {
    let profile = demo_profile();
    let section = load_section(&profile).unwrap_or_else(|e| panic!("{e:?}"));
    let device = SimDevice::new(
        Arc::clone(&profile),
        section.clone(),
        1,
        SimIdentity {
            vendor: "iotmc".into(),
            product_code: "DC-1".into(),
            revision: "1.0.0".into(),
            model_name: "Demo Controller".into(),
            serial: Some("SIM-0001".into()),
        },
    )
    .with_reboot_time(Duration::from_millis(300));
    let server = TcpServer::bind(
        "127.0.0.1:0".parse().expect("a socket address"),
        vec![Arc::new(device.clone()) as Arc<dyn Unit>],
    )
    .expect("the simulator binds a loopback port");
    let addr = server.local_addr().to_string();
    let bus = BusHandle::spawn(
        BusKey::Tcp(addr.clone()),
        Framing::Tcp,
        TcpConnector::new(addr),
    );
    let link = Arc::new(ModbusLink::new(
        "dut",
        Arc::clone(&profile),
        Arc::new(section),
        bus,
        1,
    ));
    Bench {
        device,
        link,
        profile,
        _server: server,
    }
}

/// A simulated image: the simulator boots images that start with `SIMFW:<version>\n`.
fn image(version: &str, len: usize) -> FirmwareImage {
    let mut bytes = format!("SIMFW:{version}\n").into_bytes();
    bytes.extend((0..len as u32).map(|i| (i % 251) as u8));
    from_bytes(bytes, version)
}

fn from_bytes(bytes: Vec<u8>, version: &str) -> FirmwareImage {
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    FirmwareImage {
        bytes: bytes.into(),
        sha256,
        version: version.to_owned(),
        download_url: None,
    }
}

/// Stages `image` from `from`, returning the progress reported.
async fn stage(
    link: &ModbusLink,
    image: &FirmwareImage,
    from: u64,
) -> Result<Vec<StageProgress>, LinkError> {
    let seen = RwLock::new(Vec::new());
    let progress = |p: StageProgress| seen.write().expect("not poisoned").push(p);
    let target = link
        .firmware()
        .expect("the demo controller has a firmware target");
    target.stage(image, from, &progress).await?;
    Ok(seen.into_inner().expect("not poisoned"))
}

async fn active(link: &ModbusLink) -> (Option<String>, bool) {
    let target = link.firmware().expect("a firmware target");
    let banks = target.banks().await.expect("banks");
    let active: Vec<_> = banks.iter().filter(|b| b.active).collect();
    assert_eq!(active.len(), 1, "{banks:?}");
    (active[0].version.clone(), active[0].confirmed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_should_stage_boot_on_test_confirm_and_a_second_one_revert() {
    let b = bench().await;
    let target = b.link.firmware().unwrap();
    let caps = target.capabilities();
    assert!(caps.dual_bank && caps.confirm_required && caps.resumable);
    assert_eq!(caps.preferred_chunk, 244);
    assert_eq!(active(&b.link).await, (Some("1.0.0".into()), true));

    // 30 000 bytes = 15 000 registers: more than one file of 10 000 records.
    let first = image("2.0.0", 30_000);
    let seen = stage(&b.link, &first, 0).await.unwrap();
    let total = first.bytes.len() as u64;
    assert!(
        seen.windows(2)
            .all(|w| w[0].acknowledged < w[1].acknowledged)
    );
    assert_eq!(
        seen.last().map(|p| (p.acknowledged, p.total)),
        Some((total, total))
    );

    target.activate(ActivationMode::Test).await.unwrap();
    assert_eq!(b.device.running_version(), "2.0.0");
    assert_eq!(b.device.active_bank(), 1);
    assert_eq!(active(&b.link).await, (Some("2.0.0".into()), false));
    target.confirm().await.unwrap();
    assert_eq!(active(&b.link).await, (Some("2.0.0".into()), true));

    let second = image("3.0.0", 5_000);
    stage(&b.link, &second, 0).await.unwrap();
    target.activate(ActivationMode::Test).await.unwrap();
    assert_eq!(active(&b.link).await, (Some("3.0.0".into()), false));
    target.revert().await.unwrap();
    assert_eq!(active(&b.link).await, (Some("2.0.0".into()), true));
    assert_eq!(b.device.running_version(), "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_broken_off_should_resume_from_the_acknowledged_offset() {
    let b = bench().await;
    let img = image("2.1.0", 8_000);
    let total = img.bytes.len() as u64;
    // The device fails one write once the transfer is past half way.
    let device = b.device.clone();
    let acknowledged = RwLock::new(0u64);
    let progress = |p: StageProgress| {
        let mut last = acknowledged.write().unwrap();
        if *last < total / 2 && p.acknowledged >= total / 2 {
            device
                .faults()
                .fail_next(ExceptionCode::ServerDeviceFailure, 1);
        }
        *last = p.acknowledged;
    };
    let target = b.link.firmware().unwrap();
    let err = target.stage(&img, 0, &progress).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeviceRefused, "{err}");
    assert!(
        err.to_string().contains("writing firmware file 1 record"),
        "{err}"
    );
    let from = *acknowledged.read().unwrap();
    assert!(from >= total / 2 && from < total, "{from}");

    let seen = stage(&b.link, &img, from).await.unwrap();
    assert!(seen.first().unwrap().acknowledged > from);
    assert_eq!(seen.last().unwrap().acknowledged, total);
    target.activate(ActivationMode::Permanent).await.unwrap();
    assert_eq!(active(&b.link).await, (Some("2.1.0".into()), true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_device_should_be_waited_for_during_the_transfer() {
    let b = bench().await;
    b.device.faults().busy_for(Duration::from_millis(700));
    stage(&b.link, &image("2.2.0", 2_000), 0).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_does_not_boot_should_be_reported_and_the_old_one_kept() {
    let b = bench().await;
    let target = b.link.firmware().unwrap();
    // No `SIMFW:` header: the device receives it (the digest matches) but cannot boot it.
    let broken = from_bytes(vec![0xA5; 3_001], "4.0.0");
    stage(&b.link, &broken, 0).await.unwrap();
    let err = target.activate(ActivationMode::Test).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("boot failed"), "{text}");
    assert!(
        text.contains("came back running 1.0.0 instead of 4.0.0"),
        "{text}"
    );
    assert_eq!(b.device.running_version(), "1.0.0");
    assert_eq!(active(&b.link).await, (Some("1.0.0".into()), true));

    // A header cut short (no newline) does not boot either.
    let short = from_bytes(b"SIMFW:4.0.1".to_vec(), "4.0.1");
    stage(&b.link, &short, 0).await.unwrap();
    let err = target
        .activate(ActivationMode::Permanent)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("boot failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_over_the_size_limit_should_be_refused_before_any_byte_moves() {
    let b = bench().await;
    let limit = b.profile.firmware.max_image_size as usize;
    let big = from_bytes(vec![0; limit + 1], "9.9.9");
    let err = stage(&b.link, &big, 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");
    assert!(
        err.to_string().contains(&format!("{} bytes", limit + 1)),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_should_be_read_from_a_cursor_across_the_end_of_the_ring() {
    let b = bench().await;
    let logs = b.link.logs().expect("the demo controller has a log");
    let empty = logs.fetch(None).await.unwrap();
    assert!(empty.records.is_empty(), "{:?}", empty.records);
    assert_eq!(empty.next, Some(LogCursor::Index(0)));

    b.device.append_log(Severity::Warning, 31, "fan 2");
    b.device.append_log(Severity::Error, 99, "");
    let first = logs.fetch(empty.next).await.unwrap();
    let messages: Vec<_> = first.records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["supply fan failure: fan 2", "event 99"]);
    assert_eq!(first.records[0].severity, Severity::Warning);
    assert_eq!(first.records[1].fields["sequence"], "2");
    assert!(first.records[0].timestamp.is_some());
    assert_eq!(first.next, Some(LogCursor::Index(2)));

    // 40 more entries in a ring of 32: entries 3..=10 are overwritten before they are read.
    for i in 0..40 {
        b.device
            .append_log(Severity::Informational, 10, &format!("entry {}", i + 3));
    }
    let wrapped = logs.fetch(first.next).await.unwrap();
    assert_eq!(
        wrapped.records[0].message,
        "8 entries were overwritten before they were read"
    );
    assert_eq!(wrapped.records[0].severity, Severity::Warning);
    assert_eq!(wrapped.records.len(), 33);
    assert_eq!(wrapped.records[1].fields["sequence"], "11");
    assert_eq!(wrapped.records[1].fields["lost"], "8");
    assert_eq!(wrapped.records[32].message, "setpoint changed: entry 42");
    assert_eq!(wrapped.next, Some(LogCursor::Index(42)));
    assert!(logs.fetch(wrapped.next).await.unwrap().records.is_empty());

    // Cleared: the cursor is past the newest entry, so the log is read from the start.
    logs.clear().await.unwrap();
    let cleared = logs.fetch(wrapped.next).await.unwrap();
    assert!(cleared.records.is_empty(), "{:?}", cleared.records);
    b.device.append_log(Severity::Notice, 32, "");
    let after = logs.fetch(cleared.next).await.unwrap();
    let messages: Vec<_> = after.records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["alarm cleared"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_controller_link_should_pass_the_conformance_kit() {
    let b = bench().await;
    let report = Conformance::new(
        Arc::clone(&b.link) as Arc<dyn DeviceLink>,
        Arc::clone(&b.profile),
        &b.device,
    )
    .with_firmware(FirmwareFixture {
        first: image("2.0.0", 5_000),
        second: image("3.0.0", 5_000),
    })
    .run()
    .await;
    println!("{report}");
    report.assert_passed();
}
