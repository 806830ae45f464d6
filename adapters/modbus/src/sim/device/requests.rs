//! How the simulated device carries out each request: reads, writes and what they start,
//! diagnostics, file records and identification.

use iotmc_adapter::profile::ActionKind;
use tokio::time::Instant;

use super::firmware::{Firmware, step_written};
use super::{Counters, SimDevice, State, identification, span_addresses};
use crate::frame::{
    Answer, CommEventLog, ExceptionCode, FileRecordRef, MAX_READ_BITS, MAX_READ_REGISTERS,
    MAX_WRITE_BITS, MAX_WRITE_REGISTERS, Request, Response, Table, diagnostic,
};
use crate::profile::ActionMap;

impl SimDevice {
    fn identification_objects(&self, state: &State) -> Vec<(u8, Vec<u8>)> {
        let identity = &self.inner.identity;
        let revision = state
            .firmware
            .as_ref()
            .map_or_else(|| identity.revision.clone(), Firmware::running_version);
        let mut objects = vec![
            (0x00, identity.vendor.clone().into_bytes()),
            (0x01, identity.product_code.clone().into_bytes()),
            (0x02, revision.into_bytes()),
        ];
        if !identity.model_name.is_empty() {
            objects.push((0x05, identity.model_name.clone().into_bytes()));
        }
        if let (Some(id), Some(serial)) =
            (self.inner.section.identity.serial_object, &identity.serial)
        {
            objects.push((id, serial.clone().into_bytes()));
        }
        objects.sort_by_key(|(id, _)| *id);
        objects
    }

    pub(super) fn handle(&self, state: &mut State, request: &Request, now: Instant) -> Answer {
        use ExceptionCode::{IllegalDataValue, IllegalFunction};
        let section = &self.inner.section;
        match request {
            Request::ReadCoils { address, count }
            | Request::ReadDiscreteInputs { address, count } => {
                if !(1..=MAX_READ_BITS).contains(count) {
                    return Err(IllegalDataValue);
                }
                let coils = matches!(request, Request::ReadCoils { .. });
                let table = if coils {
                    Table::Coil
                } else {
                    Table::DiscreteInput
                };
                let bits = state.tables.read_bits(table, *address, *count)?;
                Ok(if coils {
                    Response::ReadCoils(bits)
                } else {
                    Response::ReadDiscreteInputs(bits)
                })
            }
            Request::ReadHoldingRegisters { address, count }
            | Request::ReadInputRegisters { address, count } => {
                if !(1..=MAX_READ_REGISTERS).contains(count) {
                    return Err(IllegalDataValue);
                }
                let holding = matches!(request, Request::ReadHoldingRegisters { .. });
                let table = if holding {
                    Table::HoldingRegister
                } else {
                    Table::InputRegister
                };
                let mut words = state.tables.read_words(table, *address, *count)?;
                self.overlay(state, table, *address, &mut words);
                Ok(if holding {
                    Response::ReadHoldingRegisters(words)
                } else {
                    Response::ReadInputRegisters(words)
                })
            }
            Request::WriteSingleCoil { address, value } => {
                self.write(state, now, Table::Coil, *address, Written::Bits(&[*value]))?;
                Ok(Response::WriteSingleCoil {
                    address: *address,
                    value: *value,
                })
            }
            Request::WriteSingleRegister { address, value } => {
                self.write(
                    state,
                    now,
                    Table::HoldingRegister,
                    *address,
                    Written::Words(&[*value]),
                )?;
                Ok(Response::WriteSingleRegister {
                    address: *address,
                    value: *value,
                })
            }
            Request::WriteMultipleCoils { address, values } => {
                let count = u16::try_from(values.len()).unwrap_or(u16::MAX);
                if !(1..=MAX_WRITE_BITS).contains(&count) {
                    return Err(IllegalDataValue);
                }
                self.write(state, now, Table::Coil, *address, Written::Bits(values))?;
                Ok(Response::WriteMultipleCoils {
                    address: *address,
                    count,
                })
            }
            Request::WriteMultipleRegisters { address, values } => {
                let count = u16::try_from(values.len()).unwrap_or(u16::MAX);
                if !(1..=MAX_WRITE_REGISTERS).contains(&count) {
                    return Err(IllegalDataValue);
                }
                self.write(
                    state,
                    now,
                    Table::HoldingRegister,
                    *address,
                    Written::Words(values),
                )?;
                Ok(Response::WriteMultipleRegisters {
                    address: *address,
                    count,
                })
            }
            Request::Diagnostics { sub_function, data } => {
                let c = state.counters;
                let answer = match *sub_function {
                    diagnostic::RETURN_QUERY_DATA => *data,
                    diagnostic::CLEAR_COUNTERS => {
                        state.counters = Counters::default();
                        *data
                    }
                    diagnostic::BUS_MESSAGE_COUNT => c.bus_messages,
                    diagnostic::BUS_EXCEPTION_ERROR_COUNT => c.exceptions,
                    diagnostic::SERVER_MESSAGE_COUNT => c.server_messages,
                    diagnostic::SERVER_NO_RESPONSE_COUNT => c.no_response,
                    diagnostic::SERVER_BUSY_COUNT => c.busy,
                    diagnostic::BUS_COMMUNICATION_ERROR_COUNT
                    | diagnostic::SERVER_NAK_COUNT
                    | diagnostic::BUS_CHARACTER_OVERRUN_COUNT => 0,
                    _ => return Err(IllegalFunction),
                };
                Ok(Response::Diagnostics {
                    sub_function: *sub_function,
                    data: answer,
                })
            }
            Request::GetCommEventLog => Ok(Response::GetCommEventLog(CommEventLog {
                status: if state.running.is_empty() { 0 } else { 0xFFFF },
                event_count: state.counters.completions,
                message_count: state.counters.bus_messages,
                events: state.events.iter().take(64).copied().collect(),
            })),
            Request::ReadFileRecord(references) => {
                let bytes: usize = references
                    .iter()
                    .map(|r| 2 + 2 * usize::from(r.count))
                    .sum();
                if references.is_empty() || bytes + 2 > crate::frame::MAX_PDU {
                    return Err(IllegalDataValue);
                }
                references
                    .iter()
                    .map(|r| read_file(state, r))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Response::ReadFileRecord)
            }
            Request::WriteFileRecord(records) => {
                let firmware = state.firmware.as_mut().ok_or(IllegalFunction)?;
                if records.is_empty() {
                    return Err(IllegalDataValue);
                }
                firmware.write_records(records)?;
                Ok(Response::WriteFileRecord(records.clone()))
            }
            Request::ReadDeviceIdentification { code, object_id } => {
                if !section.identity.device_identification {
                    return Err(IllegalFunction);
                }
                let objects = self.identification_objects(state);
                identification::answer(&objects, *code, *object_id)
            }
        }
    }

    /// A master's write; whether it should be answered "acknowledge" (an action started).
    fn write(
        &self,
        state: &mut State,
        now: Instant,
        table: Table,
        address: u16,
        written: Written<'_>,
    ) -> Result<(), ExceptionCode> {
        let section = &self.inner.section;
        let profile = &self.inner.profile;
        let count = u16::try_from(written.len()).unwrap_or(u16::MAX);
        if u32::from(address) + u32::from(count) > 65536
            || span_addresses(table, address, count).any(|a| !state.writable.contains(&a))
        {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let before = state.tables.clone();
        match written {
            Written::Words(words) => state.tables.put_words(table, address, words),
            Written::Bits(bits) => {
                for (a, bit) in span_addresses(table, address, count).zip(bits) {
                    state.tables.put_bit(a.0, a.1, *bit);
                }
            }
        }
        let covers = |t: Table, a: u16, n: u16| {
            t == table
                && u32::from(a) < u32::from(address) + u32::from(count)
                && u32::from(address) < u32::from(a) + u32::from(n)
        };
        let result = (|| {
            for (name, point) in &section.parameters {
                let Some(parameter) = profile.parameter(name) else {
                    continue;
                };
                if parameter.access.can_write()
                    && covers(point.table(), point.address, point.span())
                {
                    state
                        .tables
                        .get_value(section, point, parameter)
                        .and_then(|v| parameter.check_value(&v))
                        .map_err(|_| ExceptionCode::IllegalDataValue)?;
                }
            }
            if let Some(firmware) = &mut state.firmware {
                let timing = self.timing();
                if let Some(until) = firmware.on_write(
                    section,
                    &state.tables,
                    (table, address, count),
                    now,
                    timing,
                )? {
                    state.away_until = Some(until);
                }
            }
            Ok(())
        })();
        if let Err(code) = result {
            state.tables = before;
            return Err(code);
        }
        if let Some(log) = &mut state.log
            && log
                .clear_step()
                .is_some_and(|step| step_written(section, &state.tables, step, covers))
        {
            log.clear();
        }
        let mut started = false;
        for (name, map) in &section.actions {
            if map
                .writes
                .last()
                .is_some_and(|last| step_written(section, &state.tables, last, covers))
            {
                self.start_action(state, now, name, map);
                started = true;
            }
        }
        state.publish(section);
        if started && self.inner.faults.acknowledges_actions() {
            return Err(ExceptionCode::Acknowledge);
        }
        Ok(())
    }

    fn start_action(&self, state: &mut State, now: Instant, name: &str, map: &ActionMap) {
        let section = &self.inner.section;
        let timing = self.timing();
        if map.restarts {
            state.away_until = Some(now + timing.reboot);
            if let Some(firmware) = &mut state.firmware {
                firmware.on_restart(now, timing);
            }
            let kind = self.inner.profile.action(name).map(|a| a.kind);
            if kind == Some(ActionKind::FactoryReset) {
                for parameter in &self.inner.profile.parameters {
                    if let (Some(point), Some(value)) = (
                        section.parameters.get(&parameter.name),
                        state.initial.get(&parameter.name).cloned(),
                    ) {
                        let _ = state.tables.put_value(section, point, parameter, &value);
                    }
                }
            }
        }
        if let Some(confirm) = &map.confirm {
            let busy = (0..)
                .find(|raw| *raw != confirm.done && !confirm.failed.contains(raw))
                .unwrap_or(1);
            state.put_status(confirm, busy);
            state.running.push((name.to_owned(), now + timing.action));
        } else {
            state.finish_action(section, name, map);
        }
    }
}

/// What a write carries.
#[derive(Debug, Clone, Copy)]
enum Written<'a> {
    Words(&'a [u16]),
    Bits(&'a [bool]),
}

impl Written<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Words(w) => w.len(),
            Self::Bits(b) => b.len(),
        }
    }
}

fn read_file(state: &State, reference: &FileRecordRef) -> Result<Vec<u16>, ExceptionCode> {
    if let Some(log) = &state.log
        && log.file() == Some(reference.file)
    {
        return log.read_records(reference);
    }
    match &state.firmware {
        Some(firmware) => firmware.read_records(reference),
        None => Err(ExceptionCode::IllegalDataAddress),
    }
}
