use super::*;

fn encoded(request: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    encode(request, &mut out).expect("encodes");
    out
}

/// Encodes, checks the bytes, and decodes them back to the same request.
fn round_trip(request: Request, bytes: &[u8]) {
    assert_eq!(encoded(&request), bytes);
    assert_eq!(decode(bytes), Ok(request));
}

#[test]
fn read_requests_should_round_trip() {
    round_trip(
        Request::ReadCoils {
            address: 0x0013,
            count: 0x0013,
        },
        &[
            0x01, // function code
            0x00, 0x13, // starting address
            0x00, 0x13, // quantity
        ],
    );
    round_trip(
        Request::ReadDiscreteInputs {
            address: 0x00C4,
            count: 0x0016,
        },
        &[0x02, 0x00, 0xC4, 0x00, 0x16],
    );
    round_trip(
        Request::ReadHoldingRegisters {
            address: 0x006B,
            count: 0x0003,
        },
        &[
            0x03, // function code
            0x00, 0x6B, // starting address
            0x00, 0x03, // quantity
        ],
    );
    round_trip(
        Request::ReadInputRegisters {
            address: 0x0008,
            count: 0x0001,
        },
        &[0x04, 0x00, 0x08, 0x00, 0x01],
    );
}

#[test]
fn single_writes_should_round_trip() {
    round_trip(
        Request::WriteSingleCoil {
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
        Request::WriteSingleCoil {
            address: 0x00AC,
            value: false,
        },
        &[0x05, 0x00, 0xAC, 0x00, 0x00],
    );
    round_trip(
        Request::WriteSingleRegister {
            address: 0x0001,
            value: 0x0003,
        },
        &[0x06, 0x00, 0x01, 0x00, 0x03],
    );
}

#[test]
fn serial_line_requests_should_round_trip() {
    round_trip(
        Request::Diagnostics {
            sub_function: 0x0000,
            data: 0xA537,
        },
        &[
            0x08, // function code
            0x00, 0x00, // sub-function: return query data
            0xA5, 0x37, // data
        ],
    );
    round_trip(Request::GetCommEventLog, &[0x0C]);
}

#[test]
fn multiple_writes_should_round_trip() {
    round_trip(
        Request::WriteMultipleCoils {
            address: 0x0013,
            values: vec![
                true, false, true, true, false, false, true, true, true, false,
            ],
        },
        &[
            0x0F, // function code
            0x00, 0x13, // starting address
            0x00, 0x0A, // quantity of outputs
            0x02, // byte count
            0xCD, 0x01, // outputs, LSB first
        ],
    );
    round_trip(
        Request::WriteMultipleRegisters {
            address: 0x0001,
            values: vec![0x000A, 0x0102],
        },
        &[
            0x10, // function code
            0x00, 0x01, // starting address
            0x00, 0x02, // quantity of registers
            0x04, // byte count
            0x00, 0x0A, 0x01, 0x02, // registers
        ],
    );
}

#[test]
fn read_file_record_request_should_round_trip() {
    round_trip(
        Request::ReadFileRecord(vec![
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
        ]),
        &[
            0x14, // function code
            0x0E, // byte count
            0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, // ref, file 4, record 1, 2 regs
            0x06, 0x00, 0x03, 0x00, 0x09, 0x00, 0x02, // ref, file 3, record 9, 2 regs
        ],
    );
}

#[test]
fn write_file_record_request_should_round_trip() {
    round_trip(
        Request::WriteFileRecord(vec![FileRecord {
            file: 4,
            record: 7,
            data: vec![0x06AF, 0x04BE, 0x100D],
        }]),
        &[
            0x15, // function code
            0x0D, // request data length
            0x06, // reference type
            0x00, 0x04, // file number
            0x00, 0x07, // record number
            0x00, 0x03, // record length
            0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D, // record data
        ],
    );
}

#[test]
fn read_device_identification_request_should_round_trip() {
    round_trip(
        Request::ReadDeviceIdentification {
            code: DeviceIdCode::Basic,
            object_id: 0x00,
        },
        &[
            0x2B, // function code
            0x0E, // MEI type
            0x01, // read device id code: basic
            0x00, // object id
        ],
    );
}

#[test]
fn encode_request_should_refuse_counts_over_the_limits() {
    let refused = |request: Request| {
        let mut out = Vec::new();
        let result = encode(&request, &mut out);
        assert!(
            matches!(result, Err(CodecError::Encode(_))),
            "{request:?} gave {result:?}"
        );
    };
    refused(Request::ReadHoldingRegisters {
        address: 0,
        count: 126,
    });
    refused(Request::ReadInputRegisters {
        address: 0,
        count: 0,
    });
    refused(Request::ReadCoils {
        address: 0,
        count: 2001,
    });
    refused(Request::WriteMultipleRegisters {
        address: 0,
        values: vec![0; 124],
    });
    refused(Request::WriteMultipleRegisters {
        address: 0,
        values: vec![],
    });
    refused(Request::WriteMultipleCoils {
        address: 0,
        values: vec![true; 1969],
    });
    let file = |file, record, count| FileRecordRef {
        file,
        record,
        count,
    };
    refused(Request::ReadFileRecord(vec![]));
    refused(Request::ReadFileRecord(vec![file(0, 0, 1)]));
    refused(Request::ReadFileRecord(vec![file(1, 0x2710, 1)]));
    refused(Request::ReadFileRecord(vec![file(1, 0, 125)]));
    refused(Request::ReadFileRecord(vec![file(1, 0, 1); 36]));
    refused(Request::WriteFileRecord(vec![FileRecord {
        file: 1,
        record: 0,
        data: vec![0; 123],
    }]));
    refused(Request::WriteFileRecord(vec![FileRecord {
        file: 1,
        record: 0,
        data: vec![],
    }]));
}

#[test]
fn encode_request_should_accept_counts_at_the_limits() {
    for request in [
        Request::ReadHoldingRegisters {
            address: 0,
            count: 125,
        },
        Request::ReadCoils {
            address: 0,
            count: 2000,
        },
        Request::WriteMultipleRegisters {
            address: 0,
            values: vec![0; 123],
        },
        Request::WriteMultipleCoils {
            address: 0,
            values: vec![true; 1968],
        },
        Request::ReadFileRecord(vec![
            FileRecordRef {
                file: 1,
                record: 0x270F,
                count: 1,
            };
            35
        ]),
        Request::ReadFileRecord(vec![FileRecordRef {
            file: 0xFFFF,
            record: 0,
            count: 124,
        }]),
        Request::WriteFileRecord(vec![FileRecord {
            file: 1,
            record: 0,
            data: vec![0; 122],
        }]),
    ] {
        let bytes = encoded(&request);
        assert!(bytes.len() <= MAX_PDU);
        assert_eq!(decode(&bytes), Ok(request));
    }
}

#[test]
fn decode_request_should_refuse_bad_layouts() {
    for (bytes, why) in [
        (&[][..], "empty"),
        (&[0x03, 0x00, 0x00, 0x00][..], "truncated"),
        (&[0x03, 0x00, 0x00, 0x00, 0x7E][..], "126 registers"),
        (&[0x01, 0x00, 0x00, 0x00, 0x00][..], "0 coils"),
        (&[0x03, 0x00, 0x00, 0x00, 0x01, 0x00][..], "trailing byte"),
        (&[0x05, 0x00, 0x01, 0x12, 0x34][..], "coil value"),
        (
            &[0x0F, 0x00, 0x00, 0x00, 0x09, 0x01, 0xFF][..],
            "byte count",
        ),
        (
            &[0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00][..],
            "short data",
        ),
        (&[0x14, 0x06, 0x06, 0, 1, 0, 0, 0][..], "byte count 6"),
        (&[0x14, 0x07, 0x05, 0, 1, 0, 0, 0, 1][..], "reference type"),
        (
            &[0x15, 0x09, 0x06, 0, 1, 0, 0, 0, 2, 0, 0][..],
            "record length",
        ),
        (&[0x2B, 0x0E, 0x05, 0x00][..], "read device id code"),
    ] {
        assert!(
            matches!(decode(bytes), Err(CodecError::Malformed { .. })),
            "{why}: {:?}",
            decode(bytes)
        );
    }
}

#[test]
fn decode_request_should_call_unknown_functions_unsupported() {
    assert_eq!(decode(&[0x07]), Err(CodecError::UnsupportedFunction(0x07)));
    assert_eq!(
        decode(&[0x2B, 0x0D, 0x00]),
        Err(CodecError::UnsupportedFunction(0x2B))
    );
    assert_eq!(
        decode(&[0x83, 0x02]),
        Err(CodecError::UnsupportedFunction(0x83))
    );
}
