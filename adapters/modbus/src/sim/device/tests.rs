use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::testkit::SimulatedDevice;
use iotmc_adapter::{Severity, Value};
use tokio::time::advance;

use super::{SimDevice, SimIdentity};
use crate::frame::{Answer, DeviceIdCode, ExceptionCode, Request, Response, diagnostic};
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

mod firmware;

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

#[test]
fn identity_registers_should_show_the_serial_as_the_profile_encodes_it() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/modbus/eastron-sdm120.toml");
    let profile = Arc::new(iotmc_adapter::Profile::load(&path).unwrap());
    let section = load_section(&profile).unwrap();
    let meter = SimDevice::new(
        profile,
        section,
        5,
        SimIdentity {
            serial: Some("SIM-0042".into()),
            ..identity()
        },
    );
    // A u32 serial number shows the digits of the simulated one.
    assert_eq!(holding(&meter, 0xFC00, 2), Ok(vec![0, 42]));
    // The meter has no Read Device Identification.
    assert_eq!(
        identification(&meter, DeviceIdCode::Basic, 0),
        Err(ExceptionCode::IllegalFunction)
    );
}
