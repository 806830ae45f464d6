//! The simulated thermostat itself, without MQTT: its description, its values as Homie
//! payloads, how it takes a `/set`, and how its temperature drifts.
//!
//! Nodes and properties (device `$description` version [`DESCRIPTION_VERSION`]):
//!
//! | property                 | datatype | format            | settable | retained |
//! |--------------------------|----------|-------------------|----------|----------|
//! | `thermostat/temperature` | float    | `-40:125`, °C     | no       | yes      |
//! | `thermostat/setpoint`    | float    | `5:30:0.5`, °C    | yes      | yes      |
//! | `thermostat/mode`        | enum     | `off,heat,cool,auto` | yes   | yes      |
//! | `thermostat/heating`     | boolean  | `idle,heating`    | no       | yes      |
//! | `system/uptime`          | integer  | `0:`, s           | no       | yes      |
//! | `system/firmware`        | string   |                   | no       | yes      |
//! | `system/serial`          | string   |                   | no       | yes      |
//! | `system/reboot`          | boolean  |                   | yes      | no (a command) |

use std::time::Duration;

use serde_json::json;

use crate::codec::homie::parse_float;

/// The version of the thermostat's `$description`.
pub(crate) const DESCRIPTION_VERSION: i64 = 1;

/// The firmware version the thermostat reports.
pub const FIRMWARE_VERSION: &str = "1.4.2";

/// Setpoint bounds and step, as its format says.
const SETPOINT_MIN: f64 = 5.0;
const SETPOINT_MAX: f64 = 30.0;
const SETPOINT_STEP: f64 = 0.5;

/// The modes, as the `mode` format lists them.
pub const MODES: [&str; 4] = ["off", "heat", "cool", "auto"];

/// The room temperature the thermostat drifts to when it neither heats nor cools.
const AMBIENT: f64 = 18.0;

/// The properties the thermostat subscribes `/set` for.
pub(crate) const SETTABLE: [&str; 3] = ["thermostat/setpoint", "thermostat/mode", "system/reboot"];

/// What a `/set` did.
#[derive(Debug, Clone, PartialEq)]
pub enum SetOutcome {
    /// Taken: publish these (topic below the device, payload), retained.
    Publish(Vec<(&'static str, String)>),
    /// Refused, as a real device does: value unchanged; the line it logs at `warn`.
    Ignored(String),
    /// Restart now.
    Reboot,
}

/// The thermostat's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Thermostat {
    /// Room temperature, °C, in tenths.
    pub temperature: f64,
    /// Setpoint, °C, on its 0.5 steps.
    pub setpoint: f64,
    /// One of [`MODES`].
    pub mode: &'static str,
    /// Whether it is heating.
    pub heating: bool,
    /// Seconds since it started.
    pub uptime: i64,
    /// Its serial number.
    pub serial: String,
}

impl Thermostat {
    /// A thermostat just switched on: 19.0 °C in the room, set to 21.0 °C, heating mode.
    pub fn new(serial: &str) -> Self {
        Self {
            temperature: 19.0,
            setpoint: 21.0,
            mode: "heat",
            heating: false,
            uptime: 0,
            serial: serial.to_owned(),
        }
    }

    /// The `$description` document.
    pub fn description(&self) -> String {
        json!({
            "homie": "5.0",
            "version": DESCRIPTION_VERSION,
            "name": "Simulated thermostat",
            "type": "org.iotmc.sim.thermostat",
            "nodes": {
                "thermostat": {
                    "name": "Thermostat",
                    "type": "org.iotmc.sim.thermostat",
                    "properties": {
                        "temperature": {"name": "Room temperature", "datatype": "float", "format": "-40:125", "unit": "°C"},
                        "setpoint": {"name": "Setpoint", "datatype": "float", "format": "5:30:0.5", "unit": "°C", "settable": true},
                        "mode": {"name": "Mode", "datatype": "enum", "format": MODES.join(","), "settable": true},
                        "heating": {"name": "Heating", "datatype": "boolean", "format": "idle,heating"}
                    }
                },
                "system": {
                    "name": "System",
                    "properties": {
                        "uptime": {"name": "Uptime", "datatype": "integer", "format": "0:", "unit": "s"},
                        "firmware": {"name": "Firmware version", "datatype": "string"},
                        "serial": {"name": "Serial number", "datatype": "string"},
                        "reboot": {"name": "Reboot", "datatype": "boolean", "settable": true, "retained": false}
                    }
                }
            }
        })
        .to_string()
    }

    /// Every retained value, as published on (re)connection. (No property uses `$target`:
    /// Homie meant it for slow transitions, and every change here is immediate.)
    pub fn retained(&self) -> Vec<(&'static str, String)> {
        vec![
            ("thermostat/temperature", tenths(self.temperature)),
            ("thermostat/setpoint", self.setpoint.to_string()),
            ("thermostat/mode", self.mode.to_owned()),
            ("thermostat/heating", self.heating.to_string()),
            ("system/uptime", self.uptime.to_string()),
            ("system/firmware", FIRMWARE_VERSION.to_owned()),
            ("system/serial", self.serial.clone()),
        ]
    }

    /// Takes a `/set` of `property` (`<node>/<property>`), validating like a real device: a
    /// value it cannot take is ignored and logged, and the value stays.
    pub fn set(&mut self, property: &str, payload: &str) -> SetOutcome {
        match property {
            "thermostat/setpoint" => {
                let Some(wanted) = parse_float(payload) else {
                    return SetOutcome::Ignored(format!(
                        "setpoint: {payload:?} is not a number; ignored"
                    ));
                };
                // Homie § Formats: round to the nearest step from the minimum, then check.
                let rounded = ((wanted - SETPOINT_MIN) / SETPOINT_STEP + 0.5).floor()
                    * SETPOINT_STEP
                    + SETPOINT_MIN;
                if !(SETPOINT_MIN..=SETPOINT_MAX).contains(&rounded) {
                    return SetOutcome::Ignored(format!(
                        "setpoint: {payload} is outside {SETPOINT_MIN}..{SETPOINT_MAX}; ignored"
                    ));
                }
                self.setpoint = rounded;
                SetOutcome::Publish(vec![("thermostat/setpoint", rounded.to_string())])
            }
            "thermostat/mode" => match MODES.iter().find(|m| **m == payload) {
                Some(mode) => {
                    self.mode = mode;
                    SetOutcome::Publish(vec![("thermostat/mode", payload.to_owned())])
                }
                None => SetOutcome::Ignored(format!(
                    "mode: {payload:?} is not one of {}; ignored",
                    MODES.join(", ")
                )),
            },
            "system/reboot" if payload == "true" => SetOutcome::Reboot,
            "system/reboot" => {
                SetOutcome::Ignored(format!("reboot: {payload:?}; only \"true\" reboots"))
            }
            other => SetOutcome::Ignored(format!("{other} is not settable; ignored")),
        }
    }

    /// One tick of `elapsed`: the room warms while heating, cools while cooling, and drifts
    /// to ambient otherwise, 0.1 °C per tick; the uptime counts whole seconds, at least one
    /// per tick (a fast-ticking simulator ages fast). Returns the values that changed.
    pub fn tick(&mut self, elapsed: Duration) -> Vec<(&'static str, String)> {
        let before = self.clone();
        let heat = matches!(self.mode, "heat" | "auto") && self.temperature < self.setpoint - 0.05;
        let cool = matches!(self.mode, "cool" | "auto") && self.temperature > self.setpoint + 0.05;
        self.heating = heat;
        let step = if heat {
            0.1
        } else if cool {
            -0.1
        } else if self.temperature < AMBIENT - 0.05 {
            0.1
        } else if self.temperature > AMBIENT + 0.05 {
            -0.1
        } else {
            0.0
        };
        self.temperature = ((self.temperature + step) * 10.0).round() / 10.0;
        self.uptime += i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX).max(1);
        let mut changed = Vec::new();
        if tenths(before.temperature) != tenths(self.temperature) {
            changed.push(("thermostat/temperature", tenths(self.temperature)));
        }
        if before.heating != self.heating {
            changed.push(("thermostat/heating", self.heating.to_string()));
        }
        changed.push(("system/uptime", self.uptime.to_string()));
        changed
    }
}

/// A temperature as the thermostat prints it: one decimal.
fn tenths(celsius: f64) -> String {
    format!("{celsius:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::homie::decode_description;

    #[test]
    fn the_thermostat_description_should_be_valid_homie_5() {
        let t = Thermostat::new("TH-1");
        let d = decode_description("t", t.description().as_bytes()).unwrap();
        assert!(d.skipped.is_empty(), "{:?}", d.skipped);
        for settable in SETTABLE {
            let (node, property) = settable.split_once('/').unwrap();
            assert!(d.property(node, property).unwrap().settable, "{settable}");
        }
        assert!(!d.property("system", "reboot").unwrap().retained);
    }

    #[test]
    fn setpoints_should_round_to_the_step_and_out_of_range_ones_be_ignored() {
        let mut t = Thermostat::new("TH-1");
        assert_eq!(
            t.set("thermostat/setpoint", "22.3"),
            SetOutcome::Publish(vec![("thermostat/setpoint", "22.5".into())])
        );
        assert!(matches!(
            t.set("thermostat/setpoint", "30.5"),
            SetOutcome::Ignored(line) if line.contains("outside")
        ));
        assert!(matches!(
            t.set("thermostat/setpoint", "warm"),
            SetOutcome::Ignored(_)
        ));
        assert_eq!(t.setpoint, 22.5);
        assert!(matches!(
            t.set("thermostat/mode", "Heat"),
            SetOutcome::Ignored(_)
        ));
        assert_eq!(t.mode, "heat");
        assert!(matches!(
            t.set("thermostat/temperature", "25"),
            SetOutcome::Ignored(_)
        ));
        assert_eq!(t.set("system/reboot", "true"), SetOutcome::Reboot);
    }

    #[test]
    fn the_room_should_warm_towards_the_setpoint_while_heating() {
        let mut t = Thermostat::new("TH-1");
        let changed = t.tick(Duration::from_secs(1));
        assert!(t.heating);
        assert_eq!(t.temperature, 19.1);
        assert!(changed.contains(&("thermostat/temperature", "19.1".into())));
        assert!(changed.contains(&("thermostat/heating", "true".into())));
        t.set("thermostat/mode", "off");
        t.tick(Duration::from_secs(1));
        assert!(!t.heating);
        assert_eq!(t.temperature, 19.0, "drifts back to ambient");
        assert_eq!(t.uptime, 2);
    }
}
