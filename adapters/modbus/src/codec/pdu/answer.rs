//! Response and exception PDUs: the simulator encodes them, the master decodes them against
//! the request it sent.

use super::request::{decode_coil, decode_file_records, encode_file_records};
use super::{
    COIL_OFF, COIL_ON, CodecError, FILE_REFERENCE_TYPE, MEI_READ_DEVICE_ID, Reader, bit_bytes,
    malformed, pack_bits, put_registers, put_u16, unpack_bits,
};
use crate::frame::{
    Answer, CommEventLog, DeviceIdCode, DeviceIdentification, ExceptionCode, MAX_PDU, Request,
    Response, diagnostic,
};

/// Most event bytes in a Get Comm Event Log response (§6.9).
const MAX_COMM_EVENTS: usize = 64;
/// Bytes of a Get Comm Event Log response's byte count before the events.
const COMM_EVENT_LOG_HEADER: usize = 6;
/// Exception bit of the function code (§7).
const EXCEPTION_BIT: u8 = 0x80;

fn response_function_code(response: &Response) -> u8 {
    match response {
        Response::ReadCoils(_) => 0x01,
        Response::ReadDiscreteInputs(_) => 0x02,
        Response::ReadHoldingRegisters(_) => 0x03,
        Response::ReadInputRegisters(_) => 0x04,
        Response::WriteSingleCoil { .. } => 0x05,
        Response::WriteSingleRegister { .. } => 0x06,
        Response::Diagnostics { .. } => 0x08,
        Response::GetCommEventLog(_) => 0x0C,
        Response::WriteMultipleCoils { .. } => 0x0F,
        Response::WriteMultipleRegisters { .. } => 0x10,
        Response::ReadFileRecord(_) => 0x14,
        Response::WriteFileRecord(_) => 0x15,
        Response::ReadDeviceIdentification(_) => 0x2B,
    }
}

pub(super) fn encode(function_code: u8, answer: &Answer, out: &mut Vec<u8>) {
    let exception = match answer {
        Err(code) => *code,
        Ok(response) => {
            let start = out.len();
            match encode_response(response, out) {
                Ok(()) if out.len() - start <= MAX_PDU => return,
                Ok(()) => {
                    tracing::warn!(
                        function_code,
                        len = out.len() - start,
                        "response longer than a PDU, answering server device failure"
                    );
                }
                Err(detail) => {
                    tracing::warn!(
                        function_code,
                        %detail,
                        "response outside the protocol's limits, answering server device failure"
                    );
                }
            }
            out.truncate(start);
            ExceptionCode::ServerDeviceFailure
        }
    };
    out.push(function_code | EXCEPTION_BIT);
    out.push(exception.code());
}

fn byte_count(len: usize) -> Result<u8, String> {
    u8::try_from(len).map_err(|_| format!("byte count {len} exceeds 255"))
}

fn encode_response(response: &Response, out: &mut Vec<u8>) -> Result<(), String> {
    out.push(response_function_code(response));
    match response {
        Response::ReadCoils(bits) | Response::ReadDiscreteInputs(bits) => {
            out.push(byte_count(bit_bytes(bits.len()))?);
            pack_bits(out, bits);
        }
        Response::ReadHoldingRegisters(values) | Response::ReadInputRegisters(values) => {
            out.push(byte_count(values.len() * 2)?);
            put_registers(out, values);
        }
        Response::WriteSingleCoil { address, value } => {
            put_u16(out, *address);
            put_u16(out, if *value { COIL_ON } else { COIL_OFF });
        }
        Response::WriteSingleRegister { address, value } => {
            put_u16(out, *address);
            put_u16(out, *value);
        }
        Response::Diagnostics { sub_function, data } => {
            put_u16(out, *sub_function);
            put_u16(out, *data);
        }
        Response::GetCommEventLog(log) => {
            if log.events.len() > MAX_COMM_EVENTS {
                return Err(format!(
                    "{} comm events, the limit is {MAX_COMM_EVENTS}",
                    log.events.len()
                ));
            }
            out.push(byte_count(COMM_EVENT_LOG_HEADER + log.events.len())?);
            put_u16(out, log.status);
            put_u16(out, log.event_count);
            put_u16(out, log.message_count);
            out.extend_from_slice(&log.events);
        }
        Response::WriteMultipleCoils { address, count }
        | Response::WriteMultipleRegisters { address, count } => {
            put_u16(out, *address);
            put_u16(out, *count);
        }
        Response::ReadFileRecord(groups) => {
            let length: usize = groups.iter().map(|group| 2 + 2 * group.len()).sum();
            out.push(byte_count(length)?);
            for group in groups {
                out.push(byte_count(1 + 2 * group.len())?);
                out.push(FILE_REFERENCE_TYPE);
                put_registers(out, group);
            }
        }
        Response::WriteFileRecord(records) => {
            encode_file_records(records, out).map_err(|error| error.to_string())?;
        }
        Response::ReadDeviceIdentification(id) => {
            out.extend_from_slice(&[
                MEI_READ_DEVICE_ID,
                id.code.code(),
                id.conformity,
                if id.more_follows { 0xFF } else { 0x00 },
                id.next_object_id,
                byte_count(id.objects.len())?,
            ]);
            for (object_id, value) in &id.objects {
                out.push(*object_id);
                out.push(byte_count(value.len())?);
                out.extend_from_slice(value);
            }
        }
    }
    Ok(())
}

pub(super) fn decode(request: &Request, pdu: &[u8]) -> Result<Answer, CodecError> {
    let expected = request.function_code();
    let Some((&fc, data)) = pdu.split_first() else {
        return Err(malformed(expected, "response", "empty PDU"));
    };
    if pdu.len() > MAX_PDU {
        return Err(malformed(
            expected,
            "response",
            format!("PDU of {} bytes, more than {MAX_PDU}", pdu.len()),
        ));
    }
    if fc == expected | EXCEPTION_BIT {
        return match data {
            [code] => Ok(Err(ExceptionCode::from_code(*code))),
            _ => Err(malformed(
                fc,
                "exception",
                format!("{} data byte(s), expected 1", data.len()),
            )),
        };
    }
    if fc != expected {
        return Err(CodecError::UnexpectedFunction { expected, got: fc });
    }
    let mut r = Reader::new(fc, "response", data);
    let response = decode_response(request, &mut r)?;
    r.finish()?;
    Ok(Ok(response))
}

fn decode_response(request: &Request, r: &mut Reader<'_>) -> Result<Response, CodecError> {
    Ok(match request {
        Request::ReadCoils { count, .. } => Response::ReadCoils(read_bits(r, *count)?),
        Request::ReadDiscreteInputs { count, .. } => {
            Response::ReadDiscreteInputs(read_bits(r, *count)?)
        }
        Request::ReadHoldingRegisters { count, .. } => {
            Response::ReadHoldingRegisters(read_registers(r, *count)?)
        }
        Request::ReadInputRegisters { count, .. } => {
            Response::ReadInputRegisters(read_registers(r, *count)?)
        }
        Request::WriteSingleCoil { address, value } => {
            echo(r, "output address", *address)?;
            let raw = r.u16("output value")?;
            if decode_coil(r, raw)? != *value {
                return Err(r.malformed(format!("output value 0x{raw:04X} is not the echo")));
            }
            Response::WriteSingleCoil {
                address: *address,
                value: *value,
            }
        }
        Request::WriteSingleRegister { address, value } => {
            echo(r, "register address", *address)?;
            echo(r, "register value", *value)?;
            Response::WriteSingleRegister {
                address: *address,
                value: *value,
            }
        }
        Request::Diagnostics { sub_function, data } => {
            echo(r, "sub-function", *sub_function)?;
            let got = r.u16("data")?;
            let echoes = matches!(
                *sub_function,
                diagnostic::RETURN_QUERY_DATA | diagnostic::CLEAR_COUNTERS
            );
            if echoes && got != *data {
                return Err(
                    r.malformed(format!("data 0x{got:04X} is not the echo of 0x{data:04X}"))
                );
            }
            Response::Diagnostics {
                sub_function: *sub_function,
                data: got,
            }
        }
        Request::GetCommEventLog => {
            let byte_count = usize::from(r.u8("byte count")?);
            let Some(events) = byte_count.checked_sub(COMM_EVENT_LOG_HEADER) else {
                return Err(r.malformed(format!("byte count {byte_count}, less than 6")));
            };
            if events > MAX_COMM_EVENTS {
                return Err(r.malformed(format!("{events} events, more than {MAX_COMM_EVENTS}")));
            }
            Response::GetCommEventLog(CommEventLog {
                status: r.u16("status")?,
                event_count: r.u16("event count")?,
                message_count: r.u16("message count")?,
                events: r.bytes(events, "events")?.to_vec(),
            })
        }
        Request::WriteMultipleCoils { address, values } => {
            echo(r, "starting address", *address)?;
            let count = u16::try_from(values.len()).unwrap_or(u16::MAX);
            echo(r, "quantity of outputs", count)?;
            Response::WriteMultipleCoils {
                address: *address,
                count,
            }
        }
        Request::WriteMultipleRegisters { address, values } => {
            echo(r, "starting address", *address)?;
            let count = u16::try_from(values.len()).unwrap_or(u16::MAX);
            echo(r, "quantity of registers", count)?;
            Response::WriteMultipleRegisters {
                address: *address,
                count,
            }
        }
        Request::ReadFileRecord(refs) => {
            let length = r.u8("response data length")?;
            let data = r.bytes(usize::from(length), "file record groups")?;
            if !r.is_empty() {
                return Err(r.malformed("bytes after the response data length"));
            }
            let mut groups = Reader::new(0x14, "response", data);
            let mut out = Vec::with_capacity(refs.len());
            for (i, wanted) in refs.iter().enumerate() {
                if groups.is_empty() {
                    return Err(
                        groups.malformed(format!("{i} record group(s), {} requested", refs.len()))
                    );
                }
                let length = groups.u8("file response length")?;
                let expected = 1 + 2 * usize::from(wanted.count);
                if usize::from(length) != expected {
                    return Err(groups.malformed(format!(
                        "group {i} has file response length {length}, {expected} expected \
                         for {} register(s)",
                        wanted.count
                    )));
                }
                let reference_type = groups.u8("reference type")?;
                if reference_type != FILE_REFERENCE_TYPE {
                    return Err(groups.malformed(format!("reference type {reference_type}, not 6")));
                }
                out.push(groups.registers(usize::from(wanted.count), "record data")?);
            }
            if !groups.is_empty() {
                return Err(groups.malformed(format!(
                    "more record groups than the {} requested",
                    refs.len()
                )));
            }
            Response::ReadFileRecord(out)
        }
        Request::WriteFileRecord(records) => {
            let echoed = decode_file_records(r, "response data length")?;
            if echoed != *records {
                return Err(r.malformed("file records are not the echo of the request"));
            }
            Response::WriteFileRecord(echoed)
        }
        Request::ReadDeviceIdentification { .. } => {
            Response::ReadDeviceIdentification(read_device_identification(r)?)
        }
    })
}

fn echo(r: &mut Reader<'_>, field: &str, sent: u16) -> Result<(), CodecError> {
    let got = r.u16(field)?;
    if got == sent {
        Ok(())
    } else {
        Err(r.malformed(format!(
            "{field} 0x{got:04X} is not the echo of 0x{sent:04X}"
        )))
    }
}

fn read_bits(r: &mut Reader<'_>, count: u16) -> Result<Vec<bool>, CodecError> {
    let byte_count = r.u8("byte count")?;
    let expected = bit_bytes(usize::from(count));
    if usize::from(byte_count) != expected {
        return Err(r.malformed(format!(
            "byte count {byte_count}, {expected} expected for {count} bit(s)"
        )));
    }
    let packed = r.bytes(expected, "status")?;
    Ok(unpack_bits(packed, usize::from(count)))
}

fn read_registers(r: &mut Reader<'_>, count: u16) -> Result<Vec<u16>, CodecError> {
    let byte_count = r.u8("byte count")?;
    let expected = 2 * usize::from(count);
    if usize::from(byte_count) != expected {
        return Err(r.malformed(format!(
            "byte count {byte_count}, {expected} expected for {count} register(s)"
        )));
    }
    r.registers(usize::from(count), "register values")
}

fn read_device_identification(r: &mut Reader<'_>) -> Result<DeviceIdentification, CodecError> {
    let mei = r.u8("MEI type")?;
    if mei != MEI_READ_DEVICE_ID {
        return Err(r.malformed(format!("MEI type 0x{mei:02X}, not 0x0E")));
    }
    let code = r.u8("read device id code")?;
    let Some(code) = DeviceIdCode::from_code(code) else {
        return Err(r.malformed(format!("read device id code {code} outside 1 to 4")));
    };
    let conformity = r.u8("conformity level")?;
    let more_follows = match r.u8("more follows")? {
        0x00 => false,
        0xFF => true,
        other => {
            return Err(r.malformed(format!("more follows 0x{other:02X}, neither 0x00 nor 0xFF")));
        }
    };
    let next_object_id = r.u8("next object id")?;
    let count = r.u8("number of objects")?;
    let mut objects = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let id = r.u8("object id")?;
        let len = r.u8("object length")?;
        objects.push((id, r.bytes(usize::from(len), "object value")?.to_vec()));
    }
    Ok(DeviceIdentification {
        code,
        conformity,
        more_follows,
        next_object_id,
        objects,
    })
}

#[cfg(test)]
mod tests;
