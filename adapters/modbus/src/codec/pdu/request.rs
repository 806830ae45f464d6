//! Request PDUs: the master encodes them, the simulator decodes them.

use super::{
    COIL_OFF, COIL_ON, CodecError, FILE_REFERENCE_TYPE, MEI_READ_DEVICE_ID, Reader, bit_bytes,
    malformed, pack_bits, put_registers, put_u16, unpack_bits,
};
use crate::frame::{
    DeviceIdCode, FileRecord, FileRecordRef, MAX_PDU, MAX_READ_BITS, MAX_READ_REGISTERS,
    MAX_RECORD_NUMBER, MAX_WRITE_BITS, MAX_WRITE_REGISTERS, Request,
};

/// Byte count of a Read File Record request: 7 bytes per sub-request (§6.14).
const READ_FILE_BYTE_COUNT: std::ops::RangeInclusive<u8> = 0x07..=0xF5;
/// Request data length of a Write File Record request: one sub-request of one register, to a
/// full PDU (§6.15).
const WRITE_FILE_DATA_LENGTH: std::ops::RangeInclusive<u8> = 0x09..=0xFB;
/// Bytes of one file record sub-request before its data.
const FILE_SUB_REQUEST_HEADER: usize = 7;

pub(super) fn encode(request: &Request, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    out.push(request.function_code());
    match request {
        Request::ReadCoils { address, count } | Request::ReadDiscreteInputs { address, count } => {
            check_count("bits to read", usize::from(*count), MAX_READ_BITS)?;
            put_u16(out, *address);
            put_u16(out, *count);
        }
        Request::ReadHoldingRegisters { address, count }
        | Request::ReadInputRegisters { address, count } => {
            check_count("registers to read", usize::from(*count), MAX_READ_REGISTERS)?;
            put_u16(out, *address);
            put_u16(out, *count);
        }
        Request::WriteSingleCoil { address, value } => {
            put_u16(out, *address);
            put_u16(out, if *value { COIL_ON } else { COIL_OFF });
        }
        Request::WriteSingleRegister { address, value } => {
            put_u16(out, *address);
            put_u16(out, *value);
        }
        Request::Diagnostics { sub_function, data } => {
            put_u16(out, *sub_function);
            put_u16(out, *data);
        }
        Request::GetCommEventLog => {}
        Request::WriteMultipleCoils { address, values } => {
            check_count("coils to write", values.len(), MAX_WRITE_BITS)?;
            put_u16(out, *address);
            put_u16(out, len_u16(values.len())?);
            out.push(len_u8(bit_bytes(values.len()))?);
            pack_bits(out, values);
        }
        Request::WriteMultipleRegisters { address, values } => {
            check_count("registers to write", values.len(), MAX_WRITE_REGISTERS)?;
            put_u16(out, *address);
            put_u16(out, len_u16(values.len())?);
            out.push(len_u8(values.len() * 2)?);
            put_registers(out, values);
        }
        Request::ReadFileRecord(refs) => encode_read_file(refs, out)?,
        Request::WriteFileRecord(records) => encode_file_records(records, out)?,
        Request::ReadDeviceIdentification { code, object_id } => {
            out.extend_from_slice(&[MEI_READ_DEVICE_ID, code.code(), *object_id]);
        }
    }
    let len = out.len() - start;
    if len > MAX_PDU {
        return Err(CodecError::Encode(format!(
            "request PDU of {len} bytes, more than {MAX_PDU}"
        )));
    }
    Ok(())
}

fn check_count(what: &str, count: usize, max: u16) -> Result<(), CodecError> {
    if (1..=usize::from(max)).contains(&count) {
        Ok(())
    } else {
        Err(CodecError::Encode(format!(
            "{count} {what}, the limit is 1 to {max}"
        )))
    }
}

fn len_u8(len: usize) -> Result<u8, CodecError> {
    u8::try_from(len).map_err(|_| CodecError::Encode(format!("byte count {len} exceeds 255")))
}

fn len_u16(len: usize) -> Result<u16, CodecError> {
    u16::try_from(len).map_err(|_| CodecError::Encode(format!("count {len} exceeds 65535")))
}

fn check_file_address(file: u16, record: u16) -> Result<(), CodecError> {
    if file == 0 {
        return Err(CodecError::Encode(
            "file number 0, files are numbered 1 to 65535".into(),
        ));
    }
    if record > MAX_RECORD_NUMBER {
        return Err(CodecError::Encode(format!(
            "record number {record}, the limit is {MAX_RECORD_NUMBER}"
        )));
    }
    Ok(())
}

fn encode_read_file(refs: &[FileRecordRef], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let byte_count = refs.len().saturating_mul(FILE_SUB_REQUEST_HEADER);
    let max = usize::from(*READ_FILE_BYTE_COUNT.end()) / FILE_SUB_REQUEST_HEADER;
    if !(1..=max).contains(&refs.len()) {
        return Err(CodecError::Encode(format!(
            "{} file record sub-requests, the limit is 1 to {max}",
            refs.len()
        )));
    }
    // The answer must fit too: function code, data length, then per group its length byte,
    // reference type and registers.
    let mut response = 2usize;
    for FileRecordRef {
        file,
        record,
        count,
    } in refs
    {
        check_file_address(*file, *record)?;
        if *count == 0 {
            return Err(CodecError::Encode(
                "file record sub-request of 0 registers".into(),
            ));
        }
        response += 2 + 2 * usize::from(*count);
    }
    if response > MAX_PDU {
        return Err(CodecError::Encode(format!(
            "file record response would be {response} bytes, more than {MAX_PDU}"
        )));
    }
    out.push(len_u8(byte_count)?);
    for FileRecordRef {
        file,
        record,
        count,
    } in refs
    {
        out.push(FILE_REFERENCE_TYPE);
        put_u16(out, *file);
        put_u16(out, *record);
        put_u16(out, *count);
    }
    Ok(())
}

/// The sub-requests of Write File Record, as in the request and its echo. Checks the limits.
pub(super) fn encode_file_records(
    records: &[FileRecord],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if records.is_empty() {
        return Err(CodecError::Encode("no file record sub-request".into()));
    }
    let mut data_length = 0usize;
    for FileRecord { file, record, data } in records {
        check_file_address(*file, *record)?;
        if data.is_empty() {
            return Err(CodecError::Encode(
                "file record sub-request of 0 registers".into(),
            ));
        }
        data_length = data_length
            .saturating_add(FILE_SUB_REQUEST_HEADER)
            .saturating_add(data.len().saturating_mul(2));
    }
    let max = usize::from(*WRITE_FILE_DATA_LENGTH.end());
    if data_length > max {
        return Err(CodecError::Encode(format!(
            "file record data of {data_length} bytes, the limit is {max} (a {MAX_PDU}-byte PDU)"
        )));
    }
    out.push(len_u8(data_length)?);
    for FileRecord { file, record, data } in records {
        out.push(FILE_REFERENCE_TYPE);
        put_u16(out, *file);
        put_u16(out, *record);
        put_u16(out, len_u16(data.len())?);
        put_registers(out, data);
    }
    Ok(())
}

pub(super) fn decode(pdu: &[u8]) -> Result<Request, CodecError> {
    let Some((&fc, data)) = pdu.split_first() else {
        return Err(CodecError::Malformed {
            what: "request".into(),
            detail: "empty PDU".into(),
        });
    };
    if pdu.len() > MAX_PDU {
        return Err(malformed(
            fc,
            "request",
            format!("PDU of {} bytes, more than {MAX_PDU}", pdu.len()),
        ));
    }
    let mut r = Reader::new(fc, "request", data);
    let request = match fc {
        0x01..=0x04 => {
            let address = r.u16("starting address")?;
            let count = r.u16("quantity")?;
            let max = if fc <= 0x02 {
                MAX_READ_BITS
            } else {
                MAX_READ_REGISTERS
            };
            if !(1..=max).contains(&count) {
                return Err(r.malformed(format!("quantity {count} outside 1 to {max}")));
            }
            match fc {
                0x01 => Request::ReadCoils { address, count },
                0x02 => Request::ReadDiscreteInputs { address, count },
                0x03 => Request::ReadHoldingRegisters { address, count },
                _ => Request::ReadInputRegisters { address, count },
            }
        }
        0x05 => {
            let address = r.u16("output address")?;
            let raw = r.u16("output value")?;
            let value = decode_coil(&r, raw)?;
            Request::WriteSingleCoil { address, value }
        }
        0x06 => Request::WriteSingleRegister {
            address: r.u16("register address")?,
            value: r.u16("register value")?,
        },
        0x08 => Request::Diagnostics {
            sub_function: r.u16("sub-function")?,
            data: r.u16("data")?,
        },
        0x0C => Request::GetCommEventLog,
        0x0F => {
            let address = r.u16("starting address")?;
            let count = r.u16("quantity of outputs")?;
            if !(1..=MAX_WRITE_BITS).contains(&count) {
                return Err(r.malformed(format!(
                    "quantity of outputs {count} outside 1 to {MAX_WRITE_BITS}"
                )));
            }
            let byte_count = r.u8("byte count")?;
            if usize::from(byte_count) != bit_bytes(usize::from(count)) {
                return Err(r.malformed(format!(
                    "byte count {byte_count} does not match {count} outputs"
                )));
            }
            let packed = r.bytes(usize::from(byte_count), "outputs value")?;
            Request::WriteMultipleCoils {
                address,
                values: unpack_bits(packed, usize::from(count)),
            }
        }
        0x10 => {
            let address = r.u16("starting address")?;
            let count = r.u16("quantity of registers")?;
            if !(1..=MAX_WRITE_REGISTERS).contains(&count) {
                return Err(r.malformed(format!(
                    "quantity of registers {count} outside 1 to {MAX_WRITE_REGISTERS}"
                )));
            }
            let byte_count = r.u8("byte count")?;
            if usize::from(byte_count) != 2 * usize::from(count) {
                return Err(r.malformed(format!(
                    "byte count {byte_count} does not match {count} registers"
                )));
            }
            Request::WriteMultipleRegisters {
                address,
                values: r.registers(usize::from(count), "registers value")?,
            }
        }
        0x14 => decode_read_file(&mut r)?,
        0x15 => Request::WriteFileRecord(decode_file_records(&mut r, "request data length")?),
        0x2B => {
            let mei = r.u8("MEI type")?;
            if mei != MEI_READ_DEVICE_ID {
                // Only Read Device Identification is served: another MEI type is another
                // function as far as the device is concerned (exception 0x01).
                return Err(CodecError::UnsupportedFunction(fc));
            }
            let code = r.u8("read device id code")?;
            let Some(code) = DeviceIdCode::from_code(code) else {
                return Err(r.malformed(format!("read device id code {code} outside 1 to 4")));
            };
            Request::ReadDeviceIdentification {
                code,
                object_id: r.u8("object id")?,
            }
        }
        _ => return Err(CodecError::UnsupportedFunction(fc)),
    };
    r.finish()?;
    Ok(request)
}

/// The value of FC 0x05 and its echo: 0xFF00 or 0x0000, nothing else (§6.5).
pub(super) fn decode_coil(r: &Reader<'_>, value: u16) -> Result<bool, CodecError> {
    match value {
        COIL_ON => Ok(true),
        COIL_OFF => Ok(false),
        other => Err(r.malformed(format!(
            "output value 0x{other:04X}, neither 0xFF00 nor 0x0000"
        ))),
    }
}

fn decode_read_file(r: &mut Reader<'_>) -> Result<Request, CodecError> {
    let byte_count = r.u8("byte count")?;
    if !READ_FILE_BYTE_COUNT.contains(&byte_count)
        || usize::from(byte_count) % FILE_SUB_REQUEST_HEADER != 0
    {
        return Err(r.malformed(format!(
            "byte count {byte_count} is not 7 to 245 in steps of 7"
        )));
    }
    let sub_requests = usize::from(byte_count) / FILE_SUB_REQUEST_HEADER;
    let mut refs = Vec::with_capacity(sub_requests);
    for _ in 0..sub_requests {
        let reference_type = r.u8("reference type")?;
        if reference_type != FILE_REFERENCE_TYPE {
            return Err(r.malformed(format!("reference type {reference_type}, not 6")));
        }
        let file = r.u16("file number")?;
        let record = r.u16("record number")?;
        let count = r.u16("record length")?;
        if count == 0 {
            return Err(r.malformed("record length 0"));
        }
        refs.push(FileRecordRef {
            file,
            record,
            count,
        });
    }
    Ok(Request::ReadFileRecord(refs))
}

/// The sub-requests of Write File Record after their length byte, as in the request and its
/// echo; the length must cover them exactly.
pub(super) fn decode_file_records(
    r: &mut Reader<'_>,
    length_field: &str,
) -> Result<Vec<FileRecord>, CodecError> {
    let length = r.u8(length_field)?;
    if !WRITE_FILE_DATA_LENGTH.contains(&length) {
        return Err(r.malformed(format!("{length_field} {length} outside 9 to 251")));
    }
    let data = r.bytes(usize::from(length), "file records")?;
    let mut records = Reader::new(r.function_code, r.kind, data);
    let mut out = Vec::new();
    while !records.is_empty() {
        let reference_type = records.u8("reference type")?;
        if reference_type != FILE_REFERENCE_TYPE {
            return Err(records.malformed(format!("reference type {reference_type}, not 6")));
        }
        let file = records.u16("file number")?;
        let record = records.u16("record number")?;
        let count = records.u16("record length")?;
        if count == 0 {
            return Err(records.malformed("record length 0"));
        }
        let data = records.registers(usize::from(count), "record data")?;
        out.push(FileRecord { file, record, data });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
