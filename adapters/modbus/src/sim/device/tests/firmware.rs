//! The simulated firmware: staging by file records, digest, banks, probation, failed boots.

use std::time::Duration;

use iotmc_adapter::Value;
use tokio::time::advance;

use super::{answer, device, identification, input, text, write};
use crate::frame::{DeviceIdCode, ExceptionCode, FileRecord, FileRecordRef, Request, Response};
use crate::sim::device::SimDevice;
use crate::sim::{Reply, Unit};

/// A simulated image of `version`, `len` bytes long in all.
fn image(header: &str, len: usize) -> Vec<u8> {
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend((0..len.saturating_sub(bytes.len())).map(|i| (i % 251) as u8));
    bytes
}

fn registers(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]))
        .collect()
}

/// Declares the size, then writes records `from` (a register index) to the end.
fn stage(device: &SimDevice, image: &[u8], from: usize, size: u32) {
    write(device, 300, &[(size >> 16) as u16, size as u16]).unwrap();
    let words = registers(image);
    for (i, chunk) in words.chunks(122).enumerate().skip(from / 122) {
        let record = u16::try_from(i * 122).unwrap();
        let written = answer(
            device,
            Request::WriteFileRecord(vec![FileRecord {
                file: 1,
                record,
                data: chunk.to_vec(),
            }]),
        );
        assert!(written.is_ok(), "{written:?}");
    }
}

fn stage_all(device: &SimDevice, image: &[u8]) {
    stage(device, image, 0, u32::try_from(image.len()).unwrap());
}

/// (running version, active bank, state register, bank 1 version)
fn banks(device: &SimDevice) -> (String, u16, u16, String) {
    let running = text(&input(device, 310, 8).unwrap());
    let state = input(device, 320, 2).unwrap();
    let bank1 = text(&input(device, 338, 8).unwrap());
    (running, state[0], state[1], bank1)
}

#[tokio::test(start_paused = true)]
async fn test_activation_should_boot_the_staged_image_on_probation_until_confirmed() {
    let device = device();
    stage_all(&device, &image("SIMFW:2.0\n", 3000));
    assert_eq!(write(&device, 303, &[1]), Ok(()), "select the standby bank");
    assert_eq!(write(&device, 302, &[1]), Ok(()), "activate: test");
    assert_eq!(
        device.reply(&Request::ReadInputRegisters {
            address: 310,
            count: 8
        }),
        Reply::Silent
    );
    advance(Duration::from_secs(2)).await;
    assert_eq!(banks(&device), ("2.0".into(), 1, 1, "2.0".into()));
    assert_eq!(device.running_version(), "2.0");
    assert_eq!(device.active_bank(), 1);
    write(&device, 304, &[1]).unwrap();
    assert_eq!(banks(&device).2, 0, "confirmed");
    advance(Duration::from_secs(120)).await;
    assert_eq!(device.running_version(), "2.0", "a confirmed image stays");
    let Ok(Response::ReadDeviceIdentification(id)) =
        identification(&device, DeviceIdCode::Specific, 2)
    else {
        panic!()
    };
    assert_eq!(id.objects, vec![(2, b"2.0".to_vec())]);
}

#[tokio::test(start_paused = true)]
async fn revert_should_boot_the_other_bank_confirmed() {
    let device = device();
    stage_all(&device, &image("SIMFW:2.0\n", 500));
    write(&device, 302, &[2]).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(banks(&device), ("2.0".into(), 1, 0, "2.0".into()));
    write(&device, 305, &[1]).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(banks(&device), ("1.0".into(), 0, 0, "2.0".into()));
}

#[tokio::test(start_paused = true)]
async fn unconfirmed_test_image_should_revert_after_the_confirm_window() {
    let device = device();
    stage_all(&device, &image("SIMFW:2.0\n", 500));
    write(&device, 302, &[1]).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(device.running_version(), "2.0");
    advance(Duration::from_secs(60)).await;
    assert_eq!(
        device.reply(&Request::ReadInputRegisters {
            address: 310,
            count: 8
        }),
        Reply::Silent,
        "rebooting back"
    );
    advance(Duration::from_secs(2)).await;
    assert_eq!(banks(&device), ("1.0".into(), 0, 0, "2.0".into()));
}

#[tokio::test(start_paused = true)]
async fn restart_while_testing_should_revert() {
    let device = device();
    stage_all(&device, &image("SIMFW:2.0\n", 500));
    write(&device, 302, &[1]).unwrap();
    advance(Duration::from_secs(2)).await;
    write(&device, 200, &[0xA5A5]).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(banks(&device).0, "1.0");
}

#[tokio::test(start_paused = true)]
async fn image_without_header_or_incomplete_should_fail_to_boot() {
    let device = device();
    stage_all(&device, &image("garbage\n", 500));
    write(&device, 302, &[1]).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(banks(&device), ("1.0".into(), 0, 0, String::new()));

    let whole = image("SIMFW:3.0\n", 1000);
    stage(&device, &whole[..500], 0, 1000);
    write(&device, 302, &[2]).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(banks(&device).0, "1.0", "500 of 1000 bytes do not boot");
}

#[tokio::test(start_paused = true)]
async fn unhealthy_image_should_fail_the_first_health_check_while_it_runs() {
    let device = device();
    stage_all(&device, &image("SIMFW:2.1;unhealthy\n", 500));
    write(&device, 302, &[1]).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(device.running_version(), "2.1");
    let Some(Value::Float(t)) = device.value("supply_temperature") else {
        panic!()
    };
    assert!(!(-20.0..=90.0).contains(&t), "{t}");
    let raw = input(&device, 0, 1).unwrap()[0].cast_signed();
    assert!(!(-200..=900).contains(&raw), "{raw}");
    write(&device, 305, &[1]).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(device.value("supply_temperature"), Some(Value::Float(35.0)));
}

#[test]
fn select_should_name_the_standby_bank() {
    let device = device();
    assert_eq!(
        write(&device, 303, &[0]),
        Err(ExceptionCode::IllegalDataValue)
    );
    assert_eq!(write(&device, 303, &[1]), Ok(()));
}

#[test]
fn same_size_should_keep_the_staging_buffer_so_transfers_resume() {
    let device = device();
    let bytes = image("SIMFW:2.0\n", 4000);
    let size = u32::try_from(bytes.len()).unwrap();
    stage(&device, &bytes[..2000], 0, size);
    stage(&device, &bytes, 976, size);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes);
    assert_eq!(
        input(&device, 300, 2),
        Ok(vec![(crc >> 16) as u16, crc as u16])
    );
    let read = answer(
        &device,
        Request::ReadFileRecord(vec![FileRecordRef {
            file: 1,
            record: 0,
            count: 5,
        }]),
    );
    assert_eq!(
        read,
        Ok(Response::ReadFileRecord(vec![registers(&bytes[..10])]))
    );
    // A different size starts over.
    write(&device, 300, &[0, 10]).unwrap();
    let read = answer(
        &device,
        Request::ReadFileRecord(vec![FileRecordRef {
            file: 1,
            record: 0,
            count: 5,
        }]),
    );
    assert_eq!(read, Ok(Response::ReadFileRecord(vec![vec![0; 5]])));
}

#[test]
fn records_beyond_the_largest_image_should_be_illegal_data_address() {
    let device = device();
    // 65536 bytes: record 32768 of file 4 is byte 2 * 32768 = 65536 past file 1's start... it
    // is file 4, record 2768: ((4 - 1) * 10000 + 2768) * 2 = 65536.
    let beyond = answer(
        &device,
        Request::WriteFileRecord(vec![FileRecord {
            file: 4,
            record: 2768,
            data: vec![1],
        }]),
    );
    assert_eq!(beyond, Err(ExceptionCode::IllegalDataAddress));
    let last = answer(
        &device,
        Request::WriteFileRecord(vec![FileRecord {
            file: 4,
            record: 2767,
            data: vec![1],
        }]),
    );
    assert!(last.is_ok(), "{last:?}");
    assert_eq!(
        write(&device, 300, &[1, 1]),
        Err(ExceptionCode::IllegalDataValue),
        "a size above max_image_size"
    );
}
