use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::testkit::SimulatedDevice;
use iotmc_adapter::{Severity, Value};
use tokio::time::advance;

use super::{SimDevice, SimIdentity};
use crate::frame::{
    Answer, DeviceIdCode, ExceptionCode, FileRecord, FileRecordRef, Request, Response, diagnostic,
};
use crate::profile::load_section;
use crate::profile::tests::demo_profile;
use crate::sim::{Reply, Unit};

fn identity() -> SimIdentity {
    SimIdentity {
        vendor: "Acme".into(),
        product_code: "HP-9".into(),
        revision: "1.0".into(),
        model_name: "Heat pump HP-9".into(),
        serial: Some("SN-42".into()),
    }
}

fn device_with(identity: SimIdentity) -> SimDevice {
    let profile = Arc::new(demo_profile());
    let section = load_section(&profile).unwrap();
    SimDevice::new(profile, section, 7, identity)
        .with_reboot_time(Duration::from_secs(2))
        .with_action_time(Duration::from_secs(1))
        .with_confirm_window(Duration::from_secs(60))
}

fn device() -> SimDevice {
    device_with(identity())
}

#[track_caller]
fn answer(device: &SimDevice, request: Request) -> Answer {
    match device.reply(&request) {
        Reply::Answer(answer) => answer,
        other => panic!("expected an answer to {request:?}, got {other:?}"),
    }
}

fn holding(device: &SimDevice, address: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
    match answer(device, Request::ReadHoldingRegisters { address, count })? {
        Response::ReadHoldingRegisters(words) => Ok(words),
        other => panic!("{other:?}"),
    }
}

fn input(device: &SimDevice, address: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
    match answer(device, Request::ReadInputRegisters { address, count })? {
        Response::ReadInputRegisters(words) => Ok(words),
        other => panic!("{other:?}"),
    }
}

fn write(device: &SimDevice, address: u16, values: &[u16]) -> Result<(), ExceptionCode> {
    answer(
        device,
        Request::WriteMultipleRegisters {
            address,
            values: values.to_vec(),
        },
    )
    .map(|_| ())
}

fn text(words: &[u16]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\0')
        .to_owned()
}

#[test]
fn registers_should_hold_valid_initial_values_encoded_as_the_profile_says() {
    let device = device();
    // setpoint: middle of 5..=30 in tenths; mode: first member; alarm: false.
    assert_eq!(holding(&device, 100, 3), Ok(vec![175, 0, 0]));
    // supply temperature: middle of its health check (-20..=90), i16 tenths.
    assert_eq!(input(&device, 0, 1), Ok(vec![350]));
    assert_eq!(device.value("supply_temperature"), Some(Value::Float(35.0)));
    assert_eq!(device.value("label"), Some(Value::from("SIM")));
    assert_eq!(text(&holding(&device, 110, 4).unwrap()), "SIM");
    assert_eq!(device.value("pump_on"), Some(Value::Bool(false)));
    assert_eq!(device.unit(), 7);
}

#[test]
fn write_should_change_the_value() {
    let device = device();
    assert_eq!(write(&device, 100, &[215]), Ok(()));
    assert_eq!(device.value("setpoint"), Some(Value::Float(21.5)));
    let echo = answer(
        &device,
        Request::WriteSingleCoil {
            address: 0,
            value: true,
        },
    );
    assert_eq!(
        echo,
        Ok(Response::WriteSingleCoil {
            address: 0,
            value: true
        })
    );
    assert_eq!(device.value("pump_on"), Some(Value::Bool(true)));
}

#[test]
fn write_outside_the_declaration_should_be_illegal_data_value_and_change_nothing() {
    let device = device();
    // 40.0 °C is above the setpoint's range; 7 is no member of `mode`.
    assert_eq!(
        write(&device, 100, &[400]),
        Err(ExceptionCode::IllegalDataValue)
    );
    assert_eq!(
        write(&device, 100, &[200, 7]),
        Err(ExceptionCode::IllegalDataValue)
    );
    assert_eq!(device.value("setpoint"), Some(Value::Float(17.5)));
    assert_eq!(device.value("mode"), Some(Value::from("auto")));
}

#[test]
fn write_to_read_only_or_unmapped_registers_should_be_illegal_data_address() {
    let device = device();
    // `alarm` is read-only; 500 is nothing.
    assert_eq!(
        write(&device, 102, &[1]),
        Err(ExceptionCode::IllegalDataAddress)
    );
    assert_eq!(
        write(&device, 500, &[1]),
        Err(ExceptionCode::IllegalDataAddress)
    );
    assert_eq!(
        write(&device, 101, &[1, 1]),
        Err(ExceptionCode::IllegalDataAddress),
        "a write reaching a read-only register is refused whole"
    );
    assert_eq!(device.value("mode"), Some(Value::from("auto")));
}

#[test]
fn read_with_no_mapped_register_should_be_illegal_data_address_and_gaps_read_zero() {
    let device = device();
    assert_eq!(
        holding(&device, 500, 10),
        Err(ExceptionCode::IllegalDataAddress)
    );
    assert_eq!(holding(&device, 98, 4), Ok(vec![0, 0, 175, 0]));
    assert_eq!(
        holding(&device, 65535, 2),
        Err(ExceptionCode::IllegalDataAddress)
    );
    assert_eq!(
        holding(&device, 100, 126),
        Err(ExceptionCode::IllegalDataValue)
    );
    assert_eq!(
        holding(&device, 100, 0),
        Err(ExceptionCode::IllegalDataValue)
    );
}

#[test]
fn local_change_should_be_read_by_the_master_and_keep_other_bits() {
    let device = device();
    device.set_value("alarm", Value::Bool(true)).unwrap();
    assert_eq!(holding(&device, 102, 1), Ok(vec![1]));
    assert!(device.set_value("setpoint", Value::Float(99.0)).is_err());
    assert!(device.set_value("nothing", Value::Bool(true)).is_err());
}

fn identification(device: &SimDevice, code: DeviceIdCode, object_id: u8) -> Answer {
    answer(
        device,
        Request::ReadDeviceIdentification { code, object_id },
    )
}

/// Follows one stream to its end; the number of responses and the objects.
fn stream(device: &SimDevice, code: DeviceIdCode) -> (usize, Vec<(u8, Vec<u8>)>) {
    let mut next = 0;
    let mut objects = Vec::new();
    for responses in 1..20 {
        let Ok(Response::ReadDeviceIdentification(id)) = identification(device, code, next) else {
            panic!("no identification");
        };
        objects.extend(id.objects);
        if !id.more_follows {
            return (responses, objects);
        }
        next = id.next_object_id;
    }
    panic!("the stream does not end");
}

#[test]
fn identification_streams_should_list_their_objects() {
    let device = device();
    let (responses, basic) = stream(&device, DeviceIdCode::Basic);
    assert_eq!(responses, 1);
    assert_eq!(
        basic,
        vec![
            (0, b"Acme".to_vec()),
            (1, b"HP-9".to_vec()),
            (2, b"1.0".to_vec())
        ]
    );
    let (_, extended) = stream(&device, DeviceIdCode::Extended);
    assert!(
        extended.contains(&(0x80, b"SN-42".to_vec())),
        "{extended:?}"
    );
    assert!(extended.contains(&(0x05, b"Heat pump HP-9".to_vec())));
}

#[test]
fn long_objects_should_split_the_stream_with_more_follows() {
    let device = device_with(SimIdentity {
        vendor: "V".repeat(60),
        product_code: "P".repeat(60),
        model_name: "M".repeat(60),
        ..identity()
    });
    let (responses, regular) = stream(&device, DeviceIdCode::Regular);
    assert_eq!(
        responses, 3,
        "objects of 60 bytes fit one per 100-byte response, 2 with 1.0"
    );
    let ids: Vec<u8> = regular.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [0, 1, 2, 5]);
    let Ok(Response::ReadDeviceIdentification(first)) =
        identification(&device, DeviceIdCode::Regular, 0)
    else {
        panic!()
    };
    assert!(first.more_follows);
    assert_eq!(first.next_object_id, 1);
}

#[test]
fn individual_access_should_answer_one_object_or_illegal_data_address() {
    let device = device();
    let Ok(Response::ReadDeviceIdentification(id)) =
        identification(&device, DeviceIdCode::Specific, 0x80)
    else {
        panic!()
    };
    assert_eq!(id.objects, vec![(0x80, b"SN-42".to_vec())]);
    assert_eq!(
        identification(&device, DeviceIdCode::Specific, 0x81),
        Err(ExceptionCode::IllegalDataAddress)
    );
    let plain = device_with(SimIdentity {
        serial: None,
        ..identity()
    });
    assert_eq!(
        identification(&plain, DeviceIdCode::Extended, 0x80),
        Err(ExceptionCode::IllegalDataAddress)
    );
}

#[tokio::test(start_paused = true)]
async fn reboot_should_silence_the_device_for_the_reboot_time() {
    let device = device();
    assert_eq!(write(&device, 200, &[0xA5A5]), Ok(()));
    assert_eq!(
        device.reply(&Request::ReadHoldingRegisters {
            address: 100,
            count: 1
        }),
        Reply::Silent
    );
    advance(Duration::from_millis(1999)).await;
    assert_eq!(
        device.reply(&Request::ReadHoldingRegisters {
            address: 100,
            count: 1
        }),
        Reply::Silent
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(holding(&device, 100, 1), Ok(vec![175]));
    assert_eq!(
        write(&device, 200, &[0x1234]),
        Ok(()),
        "another value is no reboot"
    );
    assert_eq!(holding(&device, 100, 1), Ok(vec![175]));
}

#[tokio::test(start_paused = true)]
async fn factory_reset_should_restore_initial_values() {
    let device = device();
    write(&device, 100, &[250]).unwrap();
    write(&device, 201, &[0x5A5A]).unwrap();
    advance(Duration::from_secs(2)).await;
    assert_eq!(device.value("setpoint"), Some(Value::Float(17.5)));
}

#[tokio::test(start_paused = true)]
async fn action_with_status_should_read_busy_then_done_with_its_output() {
    let device = device();
    let started = answer(
        &device,
        Request::WriteSingleCoil {
            address: 10,
            value: true,
        },
    );
    assert!(started.is_ok(), "{started:?}");
    let busy = input(&device, 20, 1).unwrap()[0];
    assert!(busy != 2 && busy != 3, "busy reads {busy}");
    assert_eq!(
        answer(&device, Request::GetCommEventLog).map(|r| match r {
            Response::GetCommEventLog(log) => log.status,
            _ => 0,
        }),
        Ok(0xFFFF)
    );
    advance(Duration::from_secs(1)).await;
    assert_eq!(input(&device, 20, 2), Ok(vec![2, 0]));
}

#[tokio::test(start_paused = true)]
async fn acknowledged_action_should_still_run() {
    let device = device();
    device.faults().acknowledge_actions(true);
    assert_eq!(
        answer(
            &device,
            Request::WriteSingleCoil {
                address: 10,
                value: true
            }
        ),
        Err(ExceptionCode::Acknowledge)
    );
    advance(Duration::from_secs(1)).await;
    assert_eq!(input(&device, 20, 1), Ok(vec![2]));
    // Plain writes are still answered normally.
    assert_eq!(write(&device, 100, &[200]), Ok(()));
}

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

#[test]
fn log_ring_should_wrap_and_keep_the_newest_entries_with_text() {
    let device = device();
    assert_eq!(input(&device, 996, 2), Ok(vec![0, 0]), "empty");
    for i in 1..=6u16 {
        device.append_log(Severity::Warning, 16 + i, &format!("fan {i}"));
    }
    assert_eq!(input(&device, 996, 2), Ok(vec![0, 6]));
    let ring = input(&device, 1000, 40).unwrap();
    let entry = |slot: usize| &ring[slot * 10..slot * 10 + 10];
    // Sequence n lives in slot n % 4: 6 in slot 2, 3 in slot 3.
    assert_eq!(entry(2)[..2], [0, 6]);
    assert_eq!(entry(2)[4], 22);
    assert_eq!(entry(2)[5], 4, "warning");
    assert_eq!(text(&entry(2)[6..]), "fan 6");
    assert_eq!(entry(3)[..2], [0, 3]);
    let time = u32::from(entry(2)[2]) << 16 | u32::from(entry(2)[3]);
    assert!(time > 1_600_000_000, "{time}");
    // Clearing empties it; sequence numbers are not reused.
    write(&device, 998, &[1]).unwrap();
    assert_eq!(input(&device, 996, 2), Ok(vec![0, 0]));
    assert!(input(&device, 1000, 40).unwrap().iter().all(|w| *w == 0));
    SimulatedDevice::append_log(&device, Severity::Error, "after clear");
    assert_eq!(input(&device, 996, 2), Ok(vec![0, 7]));
    assert_eq!(input(&device, 1034, 1), Ok(vec![0]), "code 0");
}

#[tokio::test(start_paused = true)]
async fn faults_should_shape_the_replies() {
    let device = device();
    let read = Request::ReadHoldingRegisters {
        address: 100,
        count: 1,
    };
    SimulatedDevice::set_unresponsive(&device, true);
    assert_eq!(device.reply(&read), Reply::Silent);
    SimulatedDevice::set_unresponsive(&device, false);

    device
        .faults()
        .fail_next(ExceptionCode::ServerDeviceFailure, 2);
    assert_eq!(
        answer(&device, read.clone()),
        Err(ExceptionCode::ServerDeviceFailure)
    );
    assert_eq!(
        write(&device, 100, &[200]),
        Err(ExceptionCode::ServerDeviceFailure)
    );
    assert_eq!(holding(&device, 100, 1), Ok(vec![175]), "not carried out");

    device.faults().drop_next(1);
    assert_eq!(
        device.reply(&Request::WriteSingleRegister {
            address: 100,
            value: 200
        }),
        Reply::Silent
    );
    assert_eq!(
        holding(&device, 100, 1),
        Ok(vec![200]),
        "carried out, reply lost"
    );

    device.faults().corrupt_next(1);
    assert_eq!(
        device.reply(&read),
        Reply::Corrupted(Ok(Response::ReadHoldingRegisters(vec![200])))
    );

    device.faults().set_delay(Duration::from_millis(30));
    assert_eq!(
        device.reply(&read),
        Reply::Delayed(
            Duration::from_millis(30),
            Ok(Response::ReadHoldingRegisters(vec![200]))
        )
    );
    device.faults().set_delay(Duration::ZERO);

    device.faults().busy_for(Duration::from_secs(5));
    assert_eq!(
        answer(&device, read.clone()),
        Err(ExceptionCode::ServerDeviceBusy)
    );
    advance(Duration::from_secs(5)).await;
    assert_eq!(holding(&device, 100, 1), Ok(vec![200]));
}

#[test]
fn diagnostics_should_count_and_clear() {
    let device = device();
    holding(&device, 100, 1).unwrap();
    let _ = holding(&device, 500, 1);
    let count = |sub_function| match answer(
        &device,
        Request::Diagnostics {
            sub_function,
            data: 0,
        },
    ) {
        Ok(Response::Diagnostics { data, .. }) => data,
        other => panic!("{other:?}"),
    };
    assert_eq!(count(diagnostic::BUS_MESSAGE_COUNT), 3);
    assert_eq!(count(diagnostic::BUS_EXCEPTION_ERROR_COUNT), 1);
    assert_eq!(count(diagnostic::CLEAR_COUNTERS), 0);
    assert_eq!(count(diagnostic::BUS_MESSAGE_COUNT), 1);
    assert_eq!(
        answer(
            &device,
            Request::Diagnostics {
                sub_function: diagnostic::RETURN_QUERY_DATA,
                data: 0xBEEF
            }
        ),
        Ok(Response::Diagnostics {
            sub_function: 0,
            data: 0xBEEF
        })
    );
    let Ok(Response::GetCommEventLog(log)) = answer(&device, Request::GetCommEventLog) else {
        panic!()
    };
    assert_eq!(log.status, 0);
    assert_eq!(
        log.events[..2],
        [0x80, 0x40],
        "newest first: this receive, the last send"
    );
    assert!(log.events.contains(&0x41), "the exception 02 sent");
}
