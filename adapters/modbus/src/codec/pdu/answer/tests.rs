use super::*;
use crate::frame::{FileRecord, FileRecordRef};

fn encoded(function_code: u8, answer: &Answer) -> Vec<u8> {
    let mut out = Vec::new();
    encode(function_code, answer, &mut out);
    out
}

/// Encodes `response` to `bytes`, and decodes them back against `request`.
fn round_trip(request: &Request, response: Response, bytes: &[u8]) {
    let answer = Ok(response);
    assert_eq!(encoded(request.function_code(), &answer), bytes);
    assert_eq!(decode(request, bytes), Ok(answer));
}

fn refused(request: &Request, bytes: &[u8]) -> CodecError {
    match decode(request, bytes) {
        Err(error) => error,
        Ok(answer) => panic!("{bytes:02X?} was accepted as {answer:?}"),
    }
}

fn holding(count: u16) -> Request {
    Request::ReadHoldingRegisters {
        address: 0x006B,
        count,
    }
}

#[test]
fn read_coils_response_should_decode_trimmed_to_the_count() {
    round_trip(
        &Request::ReadCoils {
            address: 0x0013,
            count: 19,
        },
        Response::ReadCoils(vec![
            true, false, true, true, false, false, true, true, // 0xCD
            true, true, false, true, false, true, true, false, // 0x6B
            true, false, true, // 0x05
        ]),
        &[
            0x01, // function code
            0x03, // byte count
            0xCD, 0x6B, 0x05, // coil status, LSB first, padded
        ],
    );
}

#[test]
fn read_discrete_inputs_response_should_decode() {
    round_trip(
        &Request::ReadDiscreteInputs {
            address: 0x00C4,
            count: 3,
        },
        Response::ReadDiscreteInputs(vec![false, true, true]),
        &[
            0x02, // function code
            0x01, // byte count
            0x06, // inputs
        ],
    );
}

#[test]
fn read_holding_registers_response_should_decode() {
    round_trip(
        &holding(3),
        Response::ReadHoldingRegisters(vec![0x022B, 0x0000, 0x0064]),
        &[
            0x03, // function code
            0x06, // byte count
            0x02, 0x2B, // register 108
            0x00, 0x00, // register 109
            0x00, 0x64, // register 110
        ],
    );
}

#[test]
fn read_input_registers_response_should_decode() {
    round_trip(
        &Request::ReadInputRegisters {
            address: 0x0008,
            count: 1,
        },
        Response::ReadInputRegisters(vec![0x000A]),
        &[0x04, 0x02, 0x00, 0x0A],
    );
}

#[test]
fn single_write_responses_should_decode_as_echoes() {
    round_trip(
        &Request::WriteSingleCoil {
            address: 0x00AC,
            value: true,
        },
        Response::WriteSingleCoil {
            address: 0x00AC,
            value: true,
        },
        &[
            0x05, // function code
            0x00, 0xAC, // output address
            0xFF, 0x00, // on
        ],
    );
    round_trip(
        &Request::WriteSingleRegister {
            address: 0x0001,
            value: 0x0003,
        },
        Response::WriteSingleRegister {
            address: 0x0001,
            value: 0x0003,
        },
        &[0x06, 0x00, 0x01, 0x00, 0x03],
    );
}

#[test]
fn multiple_write_responses_should_decode() {
    round_trip(
        &Request::WriteMultipleCoils {
            address: 0x0013,
            values: vec![true; 10],
        },
        Response::WriteMultipleCoils {
            address: 0x0013,
            count: 10,
        },
        &[
            0x0F, // function code
            0x00, 0x13, // starting address
            0x00, 0x0A, // quantity of outputs
        ],
    );
    round_trip(
        &Request::WriteMultipleRegisters {
            address: 0x0001,
            values: vec![0x000A, 0x0102],
        },
        Response::WriteMultipleRegisters {
            address: 0x0001,
            count: 2,
        },
        &[0x10, 0x00, 0x01, 0x00, 0x02],
    );
}

#[test]
fn diagnostics_response_should_decode_a_counter() {
    round_trip(
        &Request::Diagnostics {
            sub_function: diagnostic::BUS_MESSAGE_COUNT,
            data: 0,
        },
        Response::Diagnostics {
            sub_function: diagnostic::BUS_MESSAGE_COUNT,
            data: 0x0123,
        },
        &[
            0x08, // function code
            0x00, 0x0B, // sub-function: bus message count
            0x01, 0x23, // the count
        ],
    );
}

#[test]
fn comm_event_log_response_should_decode() {
    round_trip(
        &Request::GetCommEventLog,
        Response::GetCommEventLog(CommEventLog {
            status: 0x0000,
            event_count: 0x0108,
            message_count: 0x0121,
            events: vec![0x20, 0x00],
        }),
        &[
            0x0C, // function code
            0x08, // byte count
            0x00, 0x00, // status
            0x01, 0x08, // event count
            0x01, 0x21, // message count
            0x20, 0x00, // events, newest first
        ],
    );
}

#[test]
fn read_file_record_response_should_decode_one_group_per_sub_request() {
    let request = Request::ReadFileRecord(vec![
        FileRecordRef {
            file: 4,
            record: 1,
            count: 2,
        },
        FileRecordRef {
            file: 3,
            record: 9,
            count: 2,
        },
    ]);
    round_trip(
        &request,
        Response::ReadFileRecord(vec![vec![0x0DFE, 0x0020], vec![0x33CD, 0x0040]]),
        &[
            0x14, // function code
            0x0C, // response data length
            0x05, 0x06, // file response length, reference type
            0x0D, 0xFE, 0x00, 0x20, // registers
            0x05, 0x06, // file response length, reference type
            0x33, 0xCD, 0x00, 0x40, // registers
        ],
    );
}

#[test]
fn write_file_record_response_should_decode_as_the_echo() {
    let records = vec![FileRecord {
        file: 4,
        record: 7,
        data: vec![0x06AF, 0x04BE, 0x100D],
    }];
    round_trip(
        &Request::WriteFileRecord(records.clone()),
        Response::WriteFileRecord(records),
        &[
            0x15, // function code
            0x0D, // response data length
            0x06, // reference type
            0x00, 0x04, // file number
            0x00, 0x07, // record number
            0x00, 0x03, // record length
            0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D, // record data
        ],
    );
}

#[test]
fn read_device_identification_response_should_decode_its_objects() {
    round_trip(
        &Request::ReadDeviceIdentification {
            code: DeviceIdCode::Basic,
            object_id: 0,
        },
        Response::ReadDeviceIdentification(DeviceIdentification {
            code: DeviceIdCode::Basic,
            conformity: 0x01,
            more_follows: false,
            next_object_id: 0x00,
            objects: vec![
                (0x00, b"Company".to_vec()),
                (0x01, b"PC".to_vec()),
                (0x02, b"V2.1".to_vec()),
            ],
        }),
        &[
            0x2B, // function code
            0x0E, // MEI type
            0x01, // read device id code
            0x01, // conformity level
            0x00, // more follows: no
            0x00, // next object id
            0x03, // number of objects
            0x00, 0x07, b'C', b'o', b'm', b'p', b'a', b'n', b'y', // vendor name
            0x01, 0x02, b'P', b'C', // product code
            0x02, 0x04, b'V', b'2', b'.', b'1', // revision
        ],
    );
}

#[test]
fn exception_response_should_decode_as_the_device_answer() {
    let answer = Err(ExceptionCode::IllegalDataAddress);
    let bytes = [
        0x83, // function code | 0x80
        0x02, // exception code: illegal data address
    ];
    assert_eq!(encoded(0x03, &answer), bytes);
    assert_eq!(decode(&holding(1), &bytes), Ok(answer));
    assert_eq!(
        decode(&holding(1), &[0x83, 0x42]),
        Ok(Err(ExceptionCode::Other(0x42)))
    );
    assert!(matches!(
        refused(&holding(1), &[0x83]),
        CodecError::Malformed { .. }
    ));
    assert!(matches!(
        refused(&holding(1), &[0x83, 0x02, 0x00]),
        CodecError::Malformed { .. }
    ));
}

#[test]
fn response_of_another_function_should_be_refused() {
    assert_eq!(
        refused(&holding(1), &[0x04, 0x02, 0x00, 0x01]),
        CodecError::UnexpectedFunction {
            expected: 0x03,
            got: 0x04
        }
    );
    assert_eq!(
        refused(&holding(1), &[0x84, 0x02]),
        CodecError::UnexpectedFunction {
            expected: 0x03,
            got: 0x84
        }
    );
}

#[test]
fn responses_that_do_not_match_the_request_should_be_refused() {
    let malformed = |request: &Request, bytes: &[u8]| {
        assert!(
            matches!(refused(request, bytes), CodecError::Malformed { .. }),
            "{bytes:02X?}"
        );
    };
    // Two registers for a read of three, and a byte count that lies about the data.
    malformed(&holding(3), &[0x03, 0x04, 0x00, 0x01, 0x00, 0x02]);
    malformed(&holding(1), &[0x03, 0x02, 0x00]);
    malformed(&holding(1), &[0x03, 0x02, 0x00, 0x01, 0x00]);
    malformed(&holding(1), &[]);
    // Nine coils need two bytes.
    malformed(
        &Request::ReadCoils {
            address: 0,
            count: 9,
        },
        &[0x01, 0x01, 0xFF],
    );
    // Echoes of another address or value.
    malformed(
        &Request::WriteSingleRegister {
            address: 1,
            value: 3,
        },
        &[0x06, 0x00, 0x01, 0x00, 0x04],
    );
    malformed(
        &Request::WriteSingleCoil {
            address: 1,
            value: true,
        },
        &[0x05, 0x00, 0x01, 0x00, 0x00],
    );
    malformed(
        &Request::WriteMultipleRegisters {
            address: 1,
            values: vec![1, 2],
        },
        &[0x10, 0x00, 0x01, 0x00, 0x03],
    );
    malformed(
        &Request::WriteMultipleCoils {
            address: 1,
            values: vec![true; 3],
        },
        &[0x0F, 0x00, 0x02, 0x00, 0x03],
    );
    malformed(
        &Request::Diagnostics {
            sub_function: diagnostic::RETURN_QUERY_DATA,
            data: 0xA537,
        },
        &[0x08, 0x00, 0x00, 0xA5, 0x38],
    );
    malformed(
        &Request::Diagnostics {
            sub_function: diagnostic::BUS_MESSAGE_COUNT,
            data: 0,
        },
        &[0x08, 0x00, 0x0C, 0x00, 0x01],
    );
    // 65 events, and a byte count below the fixed fields.
    let mut log = vec![0x0C, 71, 0, 0, 0, 0, 0, 0];
    log.extend([0u8; 65]);
    malformed(&Request::GetCommEventLog, &log);
    malformed(&Request::GetCommEventLog, &[0x0C, 0x05, 0, 0, 0, 0, 0]);
}

#[test]
fn file_record_responses_that_do_not_match_should_be_refused() {
    let one = |count| FileRecordRef {
        file: 1,
        record: 0,
        count,
    };
    let malformed = |request: &Request, bytes: &[u8]| {
        assert!(
            matches!(refused(request, bytes), CodecError::Malformed { .. }),
            "{bytes:02X?}"
        );
    };
    let two_groups = Request::ReadFileRecord(vec![one(1), one(1)]);
    // One group for two sub-requests.
    malformed(&two_groups, &[0x14, 0x04, 0x03, 0x06, 0x00, 0x01]);
    // Three groups for two.
    malformed(
        &two_groups,
        &[
            0x14, 0x0C, 0x03, 0x06, 0, 1, 0x03, 0x06, 0, 2, 0x03, 0x06, 0, 3,
        ],
    );
    // A group of two registers for a sub-request of one.
    malformed(
        &Request::ReadFileRecord(vec![one(1)]),
        &[0x14, 0x06, 0x05, 0x06, 0, 1, 0, 2],
    );
    // Another reference type.
    malformed(
        &Request::ReadFileRecord(vec![one(1)]),
        &[0x14, 0x04, 0x03, 0x07, 0, 1],
    );
    // Response data length past the end.
    malformed(
        &Request::ReadFileRecord(vec![one(1)]),
        &[0x14, 0x05, 0x03, 0x06, 0, 1],
    );
    // A write echo with other data.
    let write = Request::WriteFileRecord(vec![FileRecord {
        file: 1,
        record: 0,
        data: vec![0x1234],
    }]);
    malformed(&write, &[0x15, 0x09, 0x06, 0, 1, 0, 0, 0, 1, 0x12, 0x35]);
    assert!(decode(&write, &[0x15, 0x09, 0x06, 0, 1, 0, 0, 0, 1, 0x12, 0x34]).is_ok());
}

#[test]
fn device_identification_responses_that_break_the_layout_should_be_refused() {
    let request = Request::ReadDeviceIdentification {
        code: DeviceIdCode::Regular,
        object_id: 0,
    };
    for bytes in [
        &[0x2B, 0x0D, 0x02, 0x01, 0x00, 0x00, 0x00][..], // MEI type 0x0D
        &[0x2B, 0x0E, 0x05, 0x01, 0x00, 0x00, 0x00][..], // code 5
        &[0x2B, 0x0E, 0x02, 0x01, 0x01, 0x00, 0x00][..], // more follows 0x01
        &[0x2B, 0x0E, 0x02, 0x01, 0x00, 0x00, 0x01, 0x00, 0x03, b'a'][..], // short value
        &[0x2B, 0x0E, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00][..], // trailing byte
    ] {
        assert!(
            matches!(refused(&request, bytes), CodecError::Malformed { .. }),
            "{bytes:02X?}"
        );
    }
}

#[test]
fn answers_too_big_for_a_pdu_should_be_sent_as_server_device_failure() {
    let failure = [
        0x83, // function code | 0x80
        0x04, // server device failure
    ];
    assert_eq!(
        encoded(0x03, &Ok(Response::ReadHoldingRegisters(vec![0; 127]))),
        failure
    );
    // 126 registers still fit the byte count, but not a PDU.
    assert_eq!(
        encoded(0x03, &Ok(Response::ReadHoldingRegisters(vec![0; 126]))),
        failure
    );
    assert_eq!(
        encoded(0x03, &Ok(Response::ReadHoldingRegisters(vec![0; 125]))).len(),
        252
    );
    let id = DeviceIdentification {
        code: DeviceIdCode::Basic,
        conformity: 1,
        more_follows: false,
        next_object_id: 0,
        objects: vec![(0, vec![b'x'; 300])],
    };
    assert_eq!(
        encoded(0x2B, &Ok(Response::ReadDeviceIdentification(id))),
        [0xAB, 0x04]
    );
}
