//! Requests the Modbus fuzz targets decode answers against: one of every function code from a
//! fixed list, or one built from the fuzzer's bytes.

// Each target uses part of this module.
#![allow(dead_code)]

use iotmc_adapter_modbus::frame::{DeviceIdCode, FileRecord, FileRecordRef, Request, diagnostic};

/// One request of every function code, with small counts.
pub fn fixed() -> Vec<Request> {
    vec![
        Request::ReadCoils {
            address: 0,
            count: 10,
        },
        Request::ReadDiscreteInputs {
            address: 0,
            count: 1,
        },
        Request::ReadHoldingRegisters {
            address: 0,
            count: 3,
        },
        Request::ReadInputRegisters {
            address: 0,
            count: 1,
        },
        Request::WriteSingleCoil {
            address: 1,
            value: true,
        },
        Request::WriteSingleRegister {
            address: 1,
            value: 2,
        },
        Request::Diagnostics {
            sub_function: diagnostic::RETURN_QUERY_DATA,
            data: 0xA537,
        },
        Request::Diagnostics {
            sub_function: diagnostic::BUS_MESSAGE_COUNT,
            data: 0,
        },
        Request::GetCommEventLog,
        Request::WriteMultipleCoils {
            address: 0,
            values: vec![true; 10],
        },
        Request::WriteMultipleRegisters {
            address: 0,
            values: vec![1, 2],
        },
        Request::ReadFileRecord(vec![
            FileRecordRef {
                file: 1,
                record: 0,
                count: 2,
            },
            FileRecordRef {
                file: 2,
                record: 9,
                count: 1,
            },
        ]),
        Request::WriteFileRecord(vec![FileRecord {
            file: 1,
            record: 0,
            data: vec![1, 2, 3],
        }]),
        Request::ReadDeviceIdentification {
            code: DeviceIdCode::Basic,
            object_id: 0,
        },
    ]
}

/// Reads fields off the fuzzer's bytes, zero once they run out.
pub struct Fields<'a>(pub &'a [u8]);

impl Fields<'_> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
}

/// A request of any function code, its fields (in and out of the protocol's limits) from
/// `fields`.
pub fn built(fields: &mut Fields<'_>) -> Request {
    let address = fields.u16();
    match fields.u8() % 13 {
        0 => Request::ReadCoils {
            address,
            count: fields.u16() % 2100,
        },
        1 => Request::ReadDiscreteInputs {
            address,
            count: fields.u16() % 2100,
        },
        2 => Request::ReadHoldingRegisters {
            address,
            count: fields.u16() % 130,
        },
        3 => Request::ReadInputRegisters {
            address,
            count: fields.u16() % 130,
        },
        4 => Request::WriteSingleCoil {
            address,
            value: fields.u8() & 1 == 1,
        },
        5 => Request::WriteSingleRegister {
            address,
            value: fields.u16(),
        },
        6 => Request::Diagnostics {
            sub_function: fields.u16() % 0x14,
            data: fields.u16(),
        },
        7 => Request::GetCommEventLog,
        8 => {
            let count = usize::from(fields.u16() % 2000);
            Request::WriteMultipleCoils {
                address,
                values: vec![fields.u8() & 1 == 1; count],
            }
        }
        9 => {
            let count = usize::from(fields.u8() % 130);
            Request::WriteMultipleRegisters {
                address,
                values: vec![fields.u16(); count],
            }
        }
        10 => {
            let groups = usize::from(fields.u8() % 5);
            Request::ReadFileRecord(
                (0..groups)
                    .map(|_| FileRecordRef {
                        file: fields.u16(),
                        record: fields.u16(),
                        count: fields.u16() % 130,
                    })
                    .collect(),
            )
        }
        11 => {
            let groups = usize::from(fields.u8() % 4);
            Request::WriteFileRecord(
                (0..groups)
                    .map(|_| FileRecord {
                        file: fields.u16(),
                        record: fields.u16(),
                        data: vec![fields.u16(); usize::from(fields.u8() % 10)],
                    })
                    .collect(),
            )
        }
        _ => Request::ReadDeviceIdentification {
            code: DeviceIdCode::from_code(fields.u8() % 4 + 1).unwrap_or(DeviceIdCode::Basic),
            object_id: fields.u8(),
        },
    }
}
