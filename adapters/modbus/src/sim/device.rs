//! The register model of one simulated device, built from its profile's `[modbus]` section.
//!
//! - Every mapped parameter starts at a valid value (the middle of its health check or range,
//!   the first enum member, `false`, `"SIM"`), encoded as the profile says.
//! - Reads: a range holding no mapped address is exception 02; unmapped addresses inside a
//!   mapped range read as 0. Writes: only to writable parameters and to the registers actions,
//!   firmware and logs write (else exception 02); a value outside the parameter's declaration
//!   is exception 03 and changes nothing.
//! - Actions start on a write matching their last write step: a restart makes the device
//!   silent for the reboot time (a factory reset also restores the initial values); a status
//!   register reads "busy" for the action time, then `done`.
//! - Firmware, the event log and identification live in the submodules.
//!
//! Time is `tokio::time::Instant`, read lazily on each request, so tests run under paused time.

mod firmware;
mod identification;
mod initial;
mod log;
mod requests;
mod tables;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};
use std::time::Duration;

use iotmc_adapter::testkit::SimulatedDevice;
use iotmc_adapter::{LinkError, Profile, Severity, Value, ValueType};
use tokio::time::Instant;

use self::firmware::{Firmware, Timing, put_text, step_span};
use self::initial::{initial_value, unhealthy_words};
use self::log::EventLog;
use self::tables::Tables;
use super::{Faults, Reply, Unit};
use crate::encoding::{Codec, internal_parameter};
use crate::frame::{ExceptionCode, Request, Table};
use crate::profile::{ActionMap, ModbusSection};

/// What the simulated device says it is, in Read Device Identification.
#[derive(Debug, Clone, Default)]
pub struct SimIdentity {
    /// VendorName (object 0x00).
    pub vendor: String,
    /// ProductCode (object 0x01).
    pub product_code: String,
    /// MajorMinorRevision (object 0x02): the firmware version the device starts with, in bank 0.
    /// Once it runs other firmware, object 0x02 reports the running version.
    pub revision: String,
    /// ModelName (object 0x05), left out when empty.
    pub model_name: String,
    /// The serial number, in the extended object the profile's `identity.serial_object` names.
    pub serial: Option<String>,
}

/// One simulated device. Cheap to clone: clones share the device.
#[derive(Debug, Clone)]
pub struct SimDevice {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    profile: Arc<Profile>,
    section: ModbusSection,
    unit: u8,
    identity: SimIdentity,
    faults: Faults,
    timing: RwLock<Timing>,
    /// Words the profile's first health check parameter reads while an unhealthy image runs.
    unhealthy: Option<(Table, u16, Vec<u16>)>,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    tables: Tables,
    initial: BTreeMap<String, Value>,
    writable: BTreeSet<(Table, u16)>,
    /// The device is restarting and says nothing until then.
    away_until: Option<Instant>,
    /// Actions whose status register reads "busy" until their instant.
    running: Vec<(String, Instant)>,
    firmware: Option<Firmware>,
    log: Option<EventLog>,
    counters: Counters,
    /// Communication events, newest first (FC 0x0C).
    events: VecDeque<u8>,
    /// What the identity registers show (serial, hardware version).
    identity: SimIdentity,
}

/// The serial-line diagnostic counters (FC 0x08).
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    bus_messages: u16,
    exceptions: u16,
    server_messages: u16,
    no_response: u16,
    busy: u16,
    /// Successful message completions (FC 0x0C's event count).
    completions: u16,
}

fn span_addresses(table: Table, address: u16, count: u16) -> impl Iterator<Item = (Table, u16)> {
    (u32::from(address)..u32::from(address) + u32::from(count))
        .filter_map(move |a| u16::try_from(a).ok().map(|a| (table, a)))
}

impl SimDevice {
    /// A device answering as `unit`, with the register map of `section` (already checked
    /// against `profile` by [`crate::profile::load_section`]).
    pub fn new(
        profile: Arc<Profile>,
        section: ModbusSection,
        unit: u8,
        identity: SimIdentity,
    ) -> SimDevice {
        let timing = Timing {
            reboot: Duration::from_secs(1),
            action: Duration::from_millis(500),
            confirm_window: Duration::from_secs(60),
        };
        let mut tables = Tables::default();
        let mut writable = BTreeSet::new();
        for (name, point) in &section.parameters {
            tables.map(point.table(), point.address, point.span());
            if profile
                .parameter(name)
                .is_some_and(|p| p.access.can_write())
            {
                writable.extend(span_addresses(point.table(), point.address, point.span()));
            }
        }
        for map in section.actions.values() {
            for step in &map.writes {
                tables.map(step.table.into(), step.address, step_span(step));
                writable.extend(span_addresses(
                    step.table.into(),
                    step.address,
                    step_span(step),
                ));
            }
            if let Some(confirm) = &map.confirm {
                tables.map(confirm.table.into(), confirm.address, 1);
            }
            for point in map.output.values() {
                tables.map(point.table(), point.address, point.span());
            }
        }
        let map = &section.identity;
        for point in [&map.serial, &map.firmware_version, &map.hardware_version]
            .into_iter()
            .flatten()
        {
            tables.map(point.table(), point.address, point.span());
        }
        let firmware = section
            .firmware
            .clone()
            .filter(|_| profile.firmware.is_supported())
            .map(|map| {
                let version = if identity.revision.is_empty() {
                    "1.0".to_owned()
                } else {
                    identity.revision.clone()
                };
                let firmware = Firmware::new(
                    map,
                    profile.firmware.dual_bank,
                    profile.firmware.max_image_size,
                    version,
                    &mut tables,
                );
                for (table, address, count) in firmware.writable() {
                    writable.extend(span_addresses(table, address, count));
                }
                firmware
            });
        let log = section
            .logs
            .clone()
            .filter(|_| {
                matches!(
                    profile.logs.method.as_str(),
                    "register-ring" | "file-record"
                )
            })
            .map(|map| {
                let log = EventLog::new(map, profile.logs.method == "file-record", &mut tables);
                if let Some(clear) = log.clear_step() {
                    tables.map(clear.table.into(), clear.address, step_span(clear));
                    writable.extend(span_addresses(
                        clear.table.into(),
                        clear.address,
                        step_span(clear),
                    ));
                }
                log
            });
        let mut initial = BTreeMap::new();
        for parameter in &profile.parameters {
            let Some(point) = section.parameters.get(&parameter.name) else {
                continue;
            };
            if let Some(value) = initial_value(&profile, &section, point, parameter) {
                let _ = tables.put_value(&section, point, parameter, &value);
                initial.insert(parameter.name.clone(), value);
            }
        }
        let mut state = State {
            tables,
            initial,
            writable,
            away_until: None,
            running: Vec::new(),
            firmware,
            log,
            counters: Counters::default(),
            events: VecDeque::new(),
            identity: identity.clone(),
        };
        for (name, map) in &section.actions {
            state.finish_action(&section, name, map);
        }
        state.publish(&section);
        let unhealthy = unhealthy_words(&profile, &section);
        SimDevice {
            inner: Arc::new(Inner {
                profile,
                section,
                unit,
                identity,
                faults: Faults::default(),
                timing: RwLock::new(timing),
                unhealthy,
                state: RwLock::new(state),
            }),
        }
    }

    fn with_timing(self, change: impl FnOnce(&mut Timing)) -> Self {
        change(
            &mut self
                .inner
                .timing
                .write()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self
    }

    /// How long a restart takes (reboot, factory reset, firmware activation; default 1 s).
    pub fn with_reboot_time(self, time: Duration) -> Self {
        self.with_timing(|t| t.reboot = time)
    }

    /// How long an action with a status register stays busy (default 500 ms).
    pub fn with_action_time(self, time: Duration) -> Self {
        self.with_timing(|t| t.action = time)
    }

    /// How long a test image runs before it is reverted unless confirmed (default 60 s).
    pub fn with_confirm_window(self, time: Duration) -> Self {
        self.with_timing(|t| t.confirm_window = time)
    }

    fn timing(&self) -> Timing {
        *self
            .inner
            .timing
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The unit id it answers to.
    pub fn unit(&self) -> u8 {
        self.inner.unit
    }

    /// The faults a test injects.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The state, with everything time has brought carried out.
    fn state(&self, now: Instant) -> RwLockWriteGuard<'_, State> {
        let mut state = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        state.tick(&self.inner.section, now, self.timing());
        state
    }

    /// The value the device holds for parameter `name`, as a master would read it.
    pub fn value(&self, name: &str) -> Option<Value> {
        let parameter = self.inner.profile.parameter(name)?;
        let point = self.inner.section.parameters.get(name)?;
        let mut state = self.state(Instant::now());
        let codec = Codec::new(&self.inner.section, point);
        if codec.table().is_bits() {
            return state
                .tables
                .get_value(&self.inner.section, point, parameter)
                .ok();
        }
        let mut words = state
            .tables
            .words(codec.table(), point.address, codec.span());
        self.overlay(&mut state, codec.table(), point.address, &mut words);
        codec.decode_registers(parameter, &words).ok()
    }

    /// Changes a parameter at the device itself, as from its front panel.
    pub fn set_value(&self, name: &str, value: Value) -> Result<(), LinkError> {
        let parameter =
            self.inner
                .profile
                .parameter(name)
                .ok_or_else(|| LinkError::UnknownParameter {
                    name: name.to_owned(),
                })?;
        let point =
            self.inner
                .section
                .parameters
                .get(name)
                .ok_or_else(|| LinkError::UnknownParameter {
                    name: name.to_owned(),
                })?;
        let value = parameter.check_value(&value)?;
        self.state(Instant::now())
            .tables
            .put_value(&self.inner.section, point, parameter, &value)
    }

    /// Appends an entry to the device's own event log, if the profile gives it one.
    pub fn append_log(&self, severity: Severity, code: u16, text: &str) {
        let mut state = self.state(Instant::now());
        if let Some(log) = &mut state.log {
            log.append(severity, code, text);
        }
        state.publish(&self.inner.section);
    }

    /// The firmware version it runs.
    pub fn running_version(&self) -> String {
        match &self.state(Instant::now()).firmware {
            Some(firmware) => firmware.running_version(),
            None => self.inner.identity.revision.clone(),
        }
    }

    /// The bank it runs (0 for a device without banks).
    pub fn active_bank(&self) -> u8 {
        self.state(Instant::now())
            .firmware
            .as_ref()
            .map_or(0, Firmware::active_bank)
    }

    /// Read words computed at read time: the firmware digest, and the unhealthy health value.
    fn overlay(&self, state: &mut State, table: Table, address: u16, words: &mut [u16]) {
        let mut patches = Vec::new();
        if let Some(firmware) = &mut state.firmware {
            patches.extend(firmware.digest_words());
            if firmware.running_unhealthy() {
                patches.extend(self.inner.unhealthy.clone());
            }
        }
        for (t, start, patch) in patches {
            if t != table {
                continue;
            }
            for (i, word) in patch.iter().enumerate() {
                let at = usize::from(start) + i;
                if let Some(slot) = at
                    .checked_sub(usize::from(address))
                    .and_then(|j| words.get_mut(j))
                {
                    *slot = *word;
                }
            }
        }
    }
}

impl State {
    fn tick(&mut self, section: &ModbusSection, now: Instant, timing: Timing) {
        if let Some(firmware) = &mut self.firmware
            && let Some(until) = firmware.tick(now, timing)
        {
            self.away_until = Some(self.away_until.map_or(until, |t| t.max(until)));
        }
        if self.away_until.is_some_and(|until| until <= now) {
            self.away_until = None;
        }
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|(_, at)| *at <= now);
        self.running = running;
        for (name, _) in done {
            if let Some(map) = section.actions.get(&name) {
                self.finish_action(section, &name, map);
            }
        }
        self.publish(section);
    }

    fn publish(&mut self, section: &ModbusSection) {
        let map = &section.identity;
        let running = self
            .firmware
            .as_ref()
            .map_or_else(|| self.identity.revision.clone(), Firmware::running_version);
        let serial = self.identity.serial.clone().unwrap_or_default();
        for (point, text) in [
            (&map.serial, serial.as_str()),
            (&map.firmware_version, running.as_str()),
            (&map.hardware_version, "1"),
        ] {
            if let Some(point) = point {
                put_text(section, &mut self.tables, point, text);
            }
        }
        if let Some(firmware) = &self.firmware {
            firmware.publish(section, &mut self.tables);
        }
        if let Some(log) = &self.log {
            log.publish(section, &mut self.tables);
        }
    }

    /// The action has finished: its status reads `done`, its outputs a passing 0.
    fn finish_action(&mut self, section: &ModbusSection, name: &str, map: &ActionMap) {
        if let Some(confirm) = &map.confirm {
            self.put_status(confirm, confirm.done);
        }
        for (output, point) in &map.output {
            let parameter = internal_parameter(&format!("{name}.{output}"), ValueType::Int);
            let _ = self
                .tables
                .put_value(section, point, &parameter, &Value::Int(0));
        }
    }

    fn put_status(&mut self, confirm: &crate::profile::Confirm, raw: i64) {
        let table = Table::from(confirm.table);
        if table.is_bits() {
            self.tables.put_bit(table, confirm.address, raw != 0);
            return;
        }
        let raw = u16::try_from(raw).unwrap_or(0);
        let word = match confirm.mask {
            Some(mask) if mask != 0 => {
                let current = self.tables.words(table, confirm.address, 1)[0];
                (current & !mask) | ((raw << mask.trailing_zeros()) & mask)
            }
            _ => raw,
        };
        self.tables.put_words(table, confirm.address, &[word]);
    }
}

impl Unit for SimDevice {
    fn unit(&self) -> u8 {
        self.inner.unit
    }

    fn reply(&self, request: &Request) -> Reply {
        let now = Instant::now();
        let faults = &self.inner.faults;
        if faults.is_unresponsive() {
            return Reply::Silent;
        }
        let mut state = self.state(now);
        if state.away_until.is_some_and(|until| now < until) {
            return Reply::Silent;
        }
        state.counters.bus_messages = state.counters.bus_messages.wrapping_add(1);
        state.counters.server_messages = state.counters.server_messages.wrapping_add(1);
        state.events.push_front(0x80);
        let answer = if faults.is_busy(now) {
            Err(ExceptionCode::ServerDeviceBusy)
        } else if let Some(code) = faults.take_failure() {
            Err(code)
        } else {
            self.handle(&mut state, request, now)
        };
        let send_event = match &answer {
            Ok(_) => {
                if !matches!(request, Request::GetCommEventLog)
                    && !matches!(request, Request::Diagnostics { .. })
                {
                    state.counters.completions = state.counters.completions.wrapping_add(1);
                }
                0x40
            }
            Err(code) => {
                state.counters.exceptions = state.counters.exceptions.wrapping_add(1);
                match code {
                    ExceptionCode::ServerDeviceFailure => 0x42,
                    ExceptionCode::Acknowledge | ExceptionCode::ServerDeviceBusy => {
                        state.counters.busy = state.counters.busy.wrapping_add(1);
                        0x44
                    }
                    _ => 0x41,
                }
            }
        };
        let dropped = faults.take_drop();
        if dropped {
            state.counters.no_response = state.counters.no_response.wrapping_add(1);
        } else {
            state.events.push_front(send_event);
        }
        state.events.truncate(64);
        drop(state);
        if dropped {
            return Reply::Silent;
        }
        if faults.take_corruption() {
            return Reply::Corrupted(answer);
        }
        match faults.delay() {
            delay if delay.is_zero() => Reply::Answer(answer),
            delay => Reply::Delayed(delay, answer),
        }
    }
}

impl SimulatedDevice for SimDevice {
    fn set_unresponsive(&self, unresponsive: bool) {
        self.inner.faults.set_unresponsive(unresponsive);
    }

    fn append_log(&self, severity: Severity, message: &str) {
        SimDevice::append_log(self, severity, 0, message);
    }
}
