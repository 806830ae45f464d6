#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;

fn image(version: &str) -> Vec<u8> {
    let mut bytes = format!("SIMFW:{version}\n").into_bytes();
    bytes.extend((0..3000u32).map(|i| (i % 251) as u8));
    bytes
}

fn begin(fw: &mut Firmware, bytes: &[u8], offset: u64) -> Result<u64, Refused> {
    let request = json!({
        "op": "begin", "size": bytes.len(), "sha256": hex(&Sha256::digest(bytes)),
        "version": "x", "offset": offset,
    });
    fw.operation(&request)
        .map(|(answer, _)| answer["offset"].as_u64().unwrap())
}

fn send(fw: &mut Firmware, bytes: &[u8], from: usize) {
    for (i, chunk) in bytes[from..].chunks(1000).enumerate() {
        let offset = (from + i * 1000) as u64;
        fw.chunk(offset, Some(chunk.len() as u64), chunk).unwrap();
    }
}

fn op(fw: &mut Firmware, request: Json) -> Result<(Json, After), Refused> {
    fw.operation(&request)
}

#[test]
fn begin_of_the_same_image_should_resume_where_the_device_is() {
    let mut fw = Firmware::new("1.0.0", 1 << 20);
    let bytes = image("2.0.0");
    assert_eq!(begin(&mut fw, &bytes, 0), Ok(0));
    send(&mut fw, &bytes[..1500], 0);
    assert_eq!(begin(&mut fw, &bytes, 5000), Ok(1500));
    assert_eq!(begin(&mut fw, &bytes, 1000), Ok(1000));
    let other = image("3.0.0");
    assert_eq!(begin(&mut fw, &other, 1000), Ok(0));
}

#[test]
fn test_image_should_boot_unconfirmed_and_revert_unless_confirmed() {
    let mut fw = Firmware::new("1.0.0", 1 << 20);
    let bytes = image("2.0.0");
    begin(&mut fw, &bytes, 0).unwrap();
    send(&mut fw, &bytes, 0);
    let (answer, _) = op(&mut fw, json!({"op": "verify"})).unwrap();
    assert_eq!(answer["sha256"], hex(&Sha256::digest(&bytes)));
    let (_, after) = op(&mut fw, json!({"op": "activate", "mode": "test"})).unwrap();
    assert_eq!(after, After::Restart);
    fw.boot(Instant::now(), Duration::from_secs(60));
    assert_eq!(fw.running(), "2.0.0");
    assert!(fw.probation_until().is_some());
    let (banks, _) = op(&mut fw, json!({"op": "banks"})).unwrap();
    assert_eq!(banks[1]["active"], true);
    assert_eq!(banks[1]["confirmed"], false);
    fw.probation_expired();
    fw.boot(Instant::now(), Duration::from_secs(60));
    assert_eq!(fw.running(), "1.0.0");
}

fn install(fw: &mut Firmware, bytes: &[u8], mode: &str) -> (u8, String) {
    begin(fw, bytes, 0).unwrap();
    send(fw, bytes, 0);
    op(fw, json!({"op": "activate", "mode": mode})).unwrap();
    fw.boot(Instant::now(), Duration::from_secs(60))
}

fn unhealthy(version: &str) -> Vec<u8> {
    let mut bytes = format!("SIMFW:{version};unhealthy\n").into_bytes();
    bytes.extend((0..3000u32).map(|i| (i % 251) as u8));
    bytes
}

#[test]
fn header_should_carry_the_version_and_the_unhealthy_flag() {
    let header = |text: &[u8]| parse_header(text);
    assert_eq!(
        header(b"SIMFW:2.0.0\nbody"),
        Some(Header {
            version: "2.0.0".into(),
            healthy: true
        })
    );
    assert_eq!(
        header(b"SIMFW:2.0.0;unhealthy\n"),
        Some(Header {
            version: "2.0.0".into(),
            healthy: false
        })
    );
    assert_eq!(header(b"SIMFW:2.0.0;beta\n").map(|h| h.healthy), Some(true));
    assert_eq!(header(b"SIMFW:;unhealthy\n"), None);
    assert_eq!(header(b"SIMFW:2.0.0"), None);
}

#[test]
fn unhealthy_image_should_boot_on_test_and_be_unhealthy_until_reverted() {
    let mut fw = Firmware::new("1.0.0", 1 << 20);
    let (severity, line) = install(&mut fw, &unhealthy("2.0.0"), "test");
    assert_eq!(severity, 6, "{line}");
    assert_eq!(fw.running(), "2.0.0");
    assert!(fw.running_unhealthy());
    let (_, after) = op(&mut fw, json!({"op": "revert"})).unwrap();
    assert_eq!(after, After::Restart);
    fw.boot(Instant::now(), Duration::from_secs(60));
    assert_eq!(fw.running(), "1.0.0");
    assert!(!fw.running_unhealthy());
}

#[test]
fn a_healthy_image_installed_after_an_unhealthy_one_should_be_healthy() {
    let mut fw = Firmware::new("1.0.0", 1 << 20);
    install(&mut fw, &unhealthy("2.0.0"), "test");
    op(&mut fw, json!({"op": "confirm"})).unwrap();
    assert!(fw.running_unhealthy());
    install(&mut fw, &image("2.0.1"), "test");
    assert_eq!(fw.running(), "2.0.1");
    assert!(!fw.running_unhealthy());
}

#[test]
fn revert_after_a_failed_test_boot_should_be_refused_and_keep_the_running_image() {
    let mut fw = Firmware::new("1.0.0", 1 << 20);
    install(&mut fw, b"not a firmware image", "test");
    let (code, message) = op(&mut fw, json!({"op": "revert"})).unwrap_err();
    assert_eq!(code, "no_image");
    assert!(message.contains("still running 1.0.0"), "{message}");
    fw.boot(Instant::now(), Duration::from_secs(60));
    assert_eq!(fw.running(), "1.0.0");
}

#[test]
fn a_long_confirm_window_should_hold_and_one_past_the_clock_should_never_run_out() {
    let now = Instant::now();
    let mut fw = Firmware::new("1.0.0", 1 << 20);
    begin(&mut fw, &image("2.0.0"), 0).unwrap();
    send(&mut fw, &image("2.0.0"), 0);
    op(&mut fw, json!({"op": "activate", "mode": "test"})).unwrap();
    fw.boot(now, Duration::from_secs(30 * 60));
    assert_eq!(
        fw.probation_until(),
        Some(now + Duration::from_secs(30 * 60))
    );
    op(&mut fw, json!({"op": "revert"})).unwrap();
    fw.boot(now, Duration::from_secs(60));
    begin(&mut fw, &image("2.0.0"), 0).unwrap();
    send(&mut fw, &image("2.0.0"), 0);
    op(&mut fw, json!({"op": "activate", "mode": "test"})).unwrap();
    fw.boot(now, Duration::MAX);
    assert_eq!(fw.running(), "2.0.0");
    assert_eq!(fw.probation_until(), None);
}

#[test]
fn bad_image_should_fail_its_test_boot_and_keep_the_running_one() {
    let mut fw = Firmware::new("1.0.0", 1 << 20);
    let bytes = b"not a firmware image".to_vec();
    begin(&mut fw, &bytes, 0).unwrap();
    send(&mut fw, &bytes, 0);
    op(&mut fw, json!({"op": "activate", "mode": "test"})).unwrap();
    let (severity, line) = fw.boot(Instant::now(), Duration::from_secs(60));
    assert_eq!(severity, 3, "{line}");
    assert_eq!(fw.running(), "1.0.0");
}

#[test]
fn corrupted_chunk_should_make_activation_refused() {
    let mut fw = Firmware::new("1.0.0", 1 << 20);
    let bytes = image("2.0.0");
    begin(&mut fw, &bytes, 0).unwrap();
    fw.corrupt_next_chunk = true;
    send(&mut fw, &bytes, 0);
    let (answer, _) = op(&mut fw, json!({"op": "verify"})).unwrap();
    assert_ne!(answer["sha256"], hex(&Sha256::digest(&bytes)));
    let err = op(&mut fw, json!({"op": "activate", "mode": "permanent"})).unwrap_err();
    assert_eq!(err.0, "not_verified");
}

#[test]
fn oversized_images_and_gaps_should_be_refused_or_corrected() {
    let mut fw = Firmware::new("1.0.0", 2000);
    let bytes = image("2.0.0");
    assert_eq!(begin(&mut fw, &bytes, 0).unwrap_err().0, "too_large");
    let mut fw = Firmware::new("1.0.0", 1 << 20);
    begin(&mut fw, &bytes, 0).unwrap();
    assert_eq!(fw.chunk(1000, Some(10), &bytes[1000..1010]), Ok(0));
    assert_eq!(
        fw.chunk(0, Some(11), &bytes[..10]).unwrap_err().0,
        "bad_chunk"
    );
}
