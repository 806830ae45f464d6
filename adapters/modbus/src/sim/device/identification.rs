//! Read Device Identification (FC 0x2B / MEI 0x0E) of a simulated device: the basic, regular
//! and extended streams, split over several responses with "more follows" when the objects do
//! not fit one, and individual access.

use crate::frame::{Answer, DeviceIdCode, DeviceIdentification, ExceptionCode, Response};

/// Object bytes one response carries at most (each object also takes two header bytes); a
/// real device's limit is the PDU size, this one is lower so that streams really split.
const RESPONSE_BUDGET: usize = 100;

/// Longest object value sent; longer values are cut.
const MAX_OBJECT: usize = 200;

/// The answer to one request, given every object the device has, ordered by id.
pub(super) fn answer(objects: &[(u8, Vec<u8>)], code: DeviceIdCode, object_id: u8) -> Answer {
    let extended = objects.iter().any(|(id, _)| *id >= 0x80);
    let conformity = if extended { 0x83 } else { 0x82 };
    let cut = |value: &Vec<u8>| value.iter().take(MAX_OBJECT).copied().collect::<Vec<u8>>();
    if code == DeviceIdCode::Specific {
        let (id, value) = objects
            .iter()
            .find(|(id, _)| *id == object_id)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        return Ok(Response::ReadDeviceIdentification(DeviceIdentification {
            code,
            conformity,
            more_follows: false,
            next_object_id: 0,
            objects: vec![(*id, cut(value))],
        }));
    }
    let last = match code {
        DeviceIdCode::Basic => 0x02,
        DeviceIdCode::Regular => 0x7F,
        _ => 0xFF,
    };
    if code == DeviceIdCode::Extended && !extended {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    let stream: Vec<&(u8, Vec<u8>)> = objects.iter().filter(|(id, _)| *id <= last).collect();
    // An object id the stream does not hold restarts it at its beginning (§6.21).
    let start = if stream.iter().any(|(id, _)| *id == object_id) {
        object_id
    } else {
        stream.first().map_or(0, |(id, _)| *id)
    };
    let mut sent = Vec::new();
    let mut used = 0;
    let mut rest = stream.iter().filter(|(id, _)| *id >= start).peekable();
    while let Some((id, value)) = rest.peek() {
        let value = cut(value);
        if !sent.is_empty() && used + 2 + value.len() > RESPONSE_BUDGET {
            break;
        }
        used += 2 + value.len();
        sent.push((*id, value));
        rest.next();
    }
    let next = rest.peek().map(|(id, _)| *id);
    Ok(Response::ReadDeviceIdentification(DeviceIdentification {
        code,
        conformity,
        more_follows: next.is_some(),
        next_object_id: next.unwrap_or(0),
        objects: sent,
    }))
}
