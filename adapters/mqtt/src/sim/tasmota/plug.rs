//! The plug itself, without IO: settings, relay, energy meter, and what it answers to each
//! command, as Tasmota 13/14 on an Athom Plug V2 does (payload shapes from Tasmota's
//! `support_command.ino` and from real devices). The session (`session.rs`) carries the
//! effects out over MQTT.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};

use crate::codec::tasmota::Prefix;

/// Tasmota's default OTA URL (`OtaUrl 1` restores it).
const DEFAULT_OTA_URL: &str = "http://ota.tasmota.com/tasmota/release/tasmota.bin.gz";

/// What the plug does in answer to something.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Effect {
    /// Publish `payload` on `<prefix>/<topic>/<suffix>`.
    Publish {
        prefix: Prefix,
        suffix: String,
        payload: String,
        retain: bool,
    },
    /// Log a line at Tasmota level `level` (1 error, 2 info, 3 debug).
    Log { level: u8, text: String },
    /// Restart with the settings saved, and come back.
    Restart,
    /// `Reset <level>`: settings to defaults; only level 6 keeps Wi-Fi and MQTT, so with any
    /// other level the plug never comes back to the broker.
    Reset { level: u8 },
    /// Download and install the image at this URL.
    Upgrade { url: String },
}

fn publish(prefix: Prefix, suffix: &str, payload: impl Into<String>) -> Effect {
    Effect::Publish {
        prefix,
        suffix: suffix.to_owned(),
        payload: payload.into(),
        retain: false,
    }
}

fn result(payload: Json) -> Effect {
    publish(Prefix::Stat, "RESULT", payload.to_string())
}

/// The settings a reset returns to.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Settings {
    pub(super) device_name: String,
    pub(super) tele_period: u32,
    pub(super) power_on_state: u8,
    pub(super) pulse_time: u32,
    pub(super) mqtt_log_level: u8,
    pub(super) ota_url: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            device_name: "Athom Plug V2".to_owned(),
            tele_period: 300,
            power_on_state: 3,
            pulse_time: 0,
            mqtt_log_level: 0,
            ota_url: DEFAULT_OTA_URL.to_owned(),
        }
    }
}

/// The energy meter's readings.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Energy {
    pub(super) load_watts: f64,
    pub(super) voltage: f64,
    pub(super) today: f64,
    pub(super) total: f64,
    pub(super) yesterday: f64,
}

/// The simulated plug.
#[derive(Debug, Clone)]
pub(super) struct Plug {
    pub(super) topic: String,
    pub(super) mac: String,
    pub(super) version: String,
    pub(super) settings: Settings,
    pub(super) power: bool,
    pub(super) energy: Energy,
    pub(super) boot_count: u32,
    pub(super) booted_at: SystemTime,
    pub(super) restart_reason: &'static str,
}

impl Plug {
    pub(super) fn new(topic: &str, mac: &str, version: &str, device_name: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            mac: mac.to_owned(),
            version: version.to_owned(),
            settings: Settings {
                device_name: device_name.to_owned(),
                ..Settings::default()
            },
            power: true,
            energy: Energy {
                load_watts: 42.0,
                voltage: 230.0,
                today: 0.125,
                total: 12.5,
                yesterday: 0.482,
            },
            boot_count: 1,
            booted_at: SystemTime::now(),
            restart_reason: "Power On",
        }
    }

    /// The version as Tasmota prints it.
    pub(super) fn full_version(&self) -> String {
        format!("{}(tasmota)", self.version)
    }

    /// The state after a restart: relay by PowerOnState, uptime from zero.
    pub(super) fn boot(&mut self, reason: &'static str) {
        self.boot_count += 1;
        self.booted_at = SystemTime::now();
        self.restart_reason = reason;
        match self.settings.power_on_state {
            0 => self.power = false,
            1 | 4 => self.power = true,
            2 => self.power = !self.power,
            _ => {}
        }
    }

    /// What Tasmota publishes once connected: its LWT, then INFO1..3.
    pub(super) fn on_connect(&self) -> Vec<Effect> {
        vec![
            Effect::Publish {
                prefix: Prefix::Tele,
                suffix: "LWT".into(),
                payload: "Online".into(),
                retain: true,
            },
            publish(
                Prefix::Tele,
                "INFO1",
                json!({"Info1": {"Module": "Athom Plug V2", "Version": self.full_version(),
                    "FallbackTopic": format!("cmnd/DVES_{}_fb/", self.mac_suffix()),
                    "GroupTopic": "cmnd/tasmotas/"}})
                .to_string(),
            ),
            publish(
                Prefix::Tele,
                "INFO2",
                json!({"Info2": {"WebServerMode": "Admin", "Hostname": self.hostname(),
                    "IPAddress": "192.168.1.50"}})
                .to_string(),
            ),
            publish(
                Prefix::Tele,
                "INFO3",
                json!({"Info3": {"RestartReason": self.restart_reason, "BootCount": self.boot_count}})
                    .to_string(),
            ),
        ]
    }

    fn mac_suffix(&self) -> String {
        self.mac.replace(':', "").chars().skip(6).collect()
    }

    fn hostname(&self) -> String {
        format!("{}-{}", self.topic, &self.mac_suffix())
    }

    /// Handles `cmnd/<topic>/<command>` with `payload`, as Tasmota's CommandHandler does: the
    /// name is matched ignoring case, trailing digits are its index, `?` reads.
    pub(super) fn command(&mut self, command: &str, payload: &str) -> Vec<Effect> {
        let upper = command.to_ascii_uppercase();
        let stem = upper.trim_end_matches(|c: char| c.is_ascii_digit());
        let index: Option<u32> = upper[stem.len()..].parse().ok();
        let payload = payload.trim();
        let payload = if payload == "?" { "" } else { payload };
        let number: Option<i64> = payload.parse().ok();
        let mut effects = vec![Effect::Log {
            level: 3,
            text: format!(
                "CMD: Grp 0, Cmd '{stem}', Idx {}, Len {}, Pld {}, Data '{payload}'",
                index.unwrap_or(1),
                payload.len(),
                number.unwrap_or(-99)
            ),
        }];
        let answer = match stem {
            "POWER" => return self.power_command(index, payload, effects),
            "STATUS" => return self.status_command(index, number, effects),
            "TELEPERIOD" => {
                if let Some(n) = number.filter(|n| (0..=3600).contains(n)) {
                    self.settings.tele_period = match n {
                        1 => 300,
                        2..10 => 10,
                        n => u32::try_from(n).unwrap_or(300),
                    };
                }
                json!({"TelePeriod": self.settings.tele_period})
            }
            "POWERONSTATE" => {
                if let Some(n) = number.filter(|n| (0..=5).contains(n)) {
                    self.settings.power_on_state = u8::try_from(n).unwrap_or(3);
                }
                json!({"PowerOnState": self.settings.power_on_state})
            }
            "PULSETIME" if index.unwrap_or(1) == 1 => {
                if let Some(n) = number.filter(|n| (0..=64900).contains(n)) {
                    self.settings.pulse_time = u32::try_from(n).unwrap_or(0);
                }
                json!({"PulseTime1": {"Set": self.settings.pulse_time, "Remaining": 0}})
            }
            "MQTTLOG" => {
                if let Some(n) = number.filter(|n| (0..=4).contains(n)) {
                    self.settings.mqtt_log_level = u8::try_from(n).unwrap_or(0);
                }
                json!({"MqttLog": self.settings.mqtt_log_level})
            }
            "DEVICENAME" => {
                if !payload.is_empty() {
                    self.settings.device_name = match payload {
                        "1" => Settings::default().device_name,
                        "\"" => String::new(),
                        name => name.to_owned(),
                    };
                }
                json!({"DeviceName": self.settings.device_name})
            }
            "OTAURL" => {
                if !payload.is_empty() {
                    self.settings.ota_url = if payload == "1" {
                        DEFAULT_OTA_URL.to_owned()
                    } else {
                        payload.to_owned()
                    };
                }
                json!({"OtaUrl": self.settings.ota_url})
            }
            "UPGRADE" => {
                if payload == "1" {
                    effects.push(result(json!({"Upgrade": format!("Version {} from {}", self.version, self.settings.ota_url)})));
                    effects.push(Effect::Upgrade {
                        url: self.settings.ota_url.clone(),
                    });
                    return effects;
                }
                json!({"Upgrade": format!("1 or >{} to upgrade", self.version)})
            }
            "RESTART" => match payload {
                "1" | "99" => {
                    effects.push(result(json!({"Restart": "Restarting"})));
                    effects.push(Effect::Restart);
                    return effects;
                }
                _ => json!({"Restart": "1 to restart"}),
            },
            "RESET" => match number {
                Some(level @ 1..=6) => {
                    let words = if level == 1 {
                        "Reset and Restarting"
                    } else {
                        "Erase, Reset and Restarting"
                    };
                    effects.push(result(json!({"Reset": words})));
                    effects.push(Effect::Reset {
                        level: u8::try_from(level).unwrap_or(1),
                    });
                    return effects;
                }
                Some(99) => {
                    self.boot_count = 0;
                    json!({"Reset": "Done"})
                }
                _ => json!({"Reset": "1 to reset"}),
            },
            _ => json!({"Command": "Unknown"}),
        };
        effects.push(result(answer));
        effects
    }

    fn power_command(
        &mut self,
        index: Option<u32>,
        payload: &str,
        mut effects: Vec<Effect>,
    ) -> Vec<Effect> {
        if index.unwrap_or(1) > 1 {
            effects.push(result(json!({"Command": "Error"})));
            return effects;
        }
        let new = match payload.to_ascii_uppercase().as_str() {
            "0" | "OFF" | "FALSE" => Some(false),
            "1" | "ON" | "TRUE" => Some(true),
            "2" | "TOGGLE" => Some(!self.power),
            _ => None,
        };
        if let Some(on) = new {
            self.power = on;
        }
        effects.extend(self.power_report());
        effects
    }

    /// What Tasmota publishes when the relay is reported: RESULT as JSON and POWER as text.
    pub(super) fn power_report(&self) -> Vec<Effect> {
        let state = on_off(self.power);
        vec![
            result(json!({"POWER": state})),
            publish(Prefix::Stat, "POWER", state),
        ]
    }

    fn status_command(
        &mut self,
        index: Option<u32>,
        number: Option<i64>,
        mut effects: Vec<Effect>,
    ) -> Vec<Effect> {
        if index == Some(0) {
            let mut all = serde_json::Map::new();
            for n in [0u8, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11] {
                if let Some(Json::Object(section)) = self.status_section(n) {
                    all.extend(section);
                }
            }
            effects.push(publish(
                Prefix::Stat,
                "STATUS0",
                Json::Object(all).to_string(),
            ));
            return effects;
        }
        let wanted: Vec<u8> = match number {
            None | Some(-99) => vec![0],
            Some(0) => vec![0, 1, 2, 3, 4, 5, 6, 7, 10, 11],
            Some(n) => match u8::try_from(n) {
                Ok(n) if self.status_section(n).is_some() => vec![n],
                _ => {
                    effects.push(result(json!({"Command": "Error"})));
                    return effects;
                }
            },
        };
        for n in wanted {
            if let Some(section) = self.status_section(n) {
                let suffix = if n == 0 {
                    "STATUS".to_owned()
                } else {
                    format!("STATUS{n}")
                };
                effects.push(publish(Prefix::Stat, &suffix, section.to_string()));
            }
        }
        effects
    }

    /// `Status <n>`'s answer, or `None` where Tasmota has none (12 without a crash, 13 without
    /// shutters).
    fn status_section(&self, n: u8) -> Option<Json> {
        let s = &self.settings;
        Some(match n {
            0 => json!({"Status": {"Module": 0, "DeviceName": s.device_name,
                "FriendlyName": [s.device_name], "Topic": self.topic, "ButtonTopic": "0",
                "Power": if self.power { "1" } else { "0" }, "PowerLock": "0",
                "PowerOnState": s.power_on_state, "LedState": 1, "LedMask": "FFFF", "SaveData": 1,
                "SaveState": 1, "SwitchTopic": "0", "SwitchMode": [0, 0, 0, 0, 0, 0, 0, 0],
                "ButtonRetain": 0, "SwitchRetain": 0, "SensorRetain": 0, "PowerRetain": 0,
                "InfoRetain": 0, "StateRetain": 0, "StatusRetain": 0}}),
            1 => json!({"StatusPRM": {"Baudrate": 4800, "SerialConfig": "8E1",
                "GroupTopic": "tasmotas", "OtaUrl": s.ota_url, "RestartReason": self.restart_reason,
                "Uptime": self.uptime(), "StartupUTC": iso_time(self.booted_at), "Sleep": 50,
                "CfgHolder": 4617, "BootCount": self.boot_count, "BCResetTime": "2024-01-01T00:00:00",
                "SaveCount": 40, "SaveAddress": "F5000"}}),
            2 => json!({"StatusFWR": {"Version": self.full_version(),
                "BuildDateTime": "2024-06-18T12:00:00", "Boot": 31, "Core": "2_7_7",
                "SDK": "2.2.2-dev(38a443e)", "CpuFrequency": 80, "Hardware": "ESP8285N08",
                "CR": "372/699"}}),
            3 => json!({"StatusLOG": {"SerialLog": 0, "WebLog": 2, "MqttLog": s.mqtt_log_level,
                "SysLog": 0, "LogHost": "", "LogPort": 514, "SSId": ["iot", ""],
                "TelePeriod": s.tele_period, "Resolution": "558180C0",
                "SetOption": ["00008009", "2805C80001000600003C5A0A192800000000", "00000080",
                    "00006000", "00004000", "00000000"]}}),
            4 => json!({"StatusMEM": {"ProgramSize": 640, "Free": 360, "Heap": 25,
                "ProgramFlashSize": 2048, "FlashSize": 2048, "FlashChipId": "1540A1",
                "FlashFrequency": 40, "FlashMode": "DOUT",
                "Features": ["0809", "9588C383", "04310000"], "Drivers": "1,2,3,4,5,6,7,8,9,10,12",
                "Sensors": "1,2,3,4,5,6"}}),
            5 => json!({"StatusNET": {"Hostname": self.hostname(), "IPAddress": "192.168.1.50",
                "Gateway": "192.168.1.1", "Subnetmask": "255.255.255.0", "DNSServer1": "192.168.1.1",
                "DNSServer2": "0.0.0.0", "Mac": self.mac, "Webserver": 2, "HTTP_API": 1,
                "WifiConfig": 4, "WifiPower": 17.0}}),
            6 => json!({"StatusMQT": {"MqttHost": "127.0.0.1", "MqttPort": 1883,
                "MqttClientMask": "DVES_%06X", "MqttClient": format!("DVES_{}", self.mac_suffix()),
                "MqttUser": "DVES_USER", "MqttCount": 1, "MAX_PACKET_SIZE": 1200, "KEEPALIVE": 30,
                "SOCKET_TIMEOUT": 4}}),
            7 => json!({"StatusTIM": {"UTC": iso_time(SystemTime::now()),
                "Local": iso_time(SystemTime::now()), "StartDST": "2024-03-31T02:00:00",
                "EndDST": "2024-10-27T03:00:00", "Timezone": "+00:00", "Sunrise": "07:12",
                "Sunset": "18:03"}}),
            9 => json!({"StatusPTH": {"PowerDelta": [0, 0, 0], "PowerLow": 0, "PowerHigh": 0,
                "VoltageLow": 0, "VoltageHigh": 0, "CurrentLow": 0, "CurrentHigh": 0}}),
            8 | 10 => json!({"StatusSNS": self.sensor(false)}),
            11 => json!({"StatusSTS": self.state()}),
            _ => return None,
        })
    }

    fn uptime(&self) -> String {
        let secs = SystemTime::now()
            .duration_since(self.booted_at)
            .unwrap_or_default()
            .as_secs();
        format!(
            "{}T{:02}:{:02}:{:02}",
            secs / 86400,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        )
    }

    /// The `tele/<topic>/STATE` object (also `StatusSTS`).
    pub(super) fn state(&self) -> Json {
        let uptime_sec = SystemTime::now()
            .duration_since(self.booted_at)
            .unwrap_or_default()
            .as_secs();
        json!({"Time": iso_time(SystemTime::now()), "Uptime": self.uptime(), "UptimeSec": uptime_sec,
            "Heap": 25, "SleepMode": "Dynamic", "Sleep": 50, "LoadAvg": 19, "MqttCount": 1,
            "POWER": on_off(self.power),
            "Wifi": {"AP": 1, "SSId": "iot", "BSSId": "AA:BB:CC:DD:EE:FF", "Channel": 6,
                "Mode": "11n", "RSSI": 76, "Signal": -62, "LinkCount": 1, "Downtime": "0T00:00:03"}})
    }

    /// The `tele/<topic>/SENSOR` object (also `StatusSNS`); telemetry adds `Period`.
    pub(super) fn sensor(&self, tele: bool) -> Json {
        let e = &self.energy;
        let watts = if self.power {
            e.load_watts.round()
        } else {
            0.0
        };
        let factor: f64 = if watts > 0.0 { 0.94 } else { 0.0 };
        let apparent = if factor > 0.0 {
            (watts / factor).round()
        } else {
            0.0
        };
        let reactive = (apparent * apparent - watts * watts)
            .max(0.0)
            .sqrt()
            .round();
        let current = if e.voltage > 0.0 {
            apparent / e.voltage
        } else {
            0.0
        };
        let mut energy = json!({"TotalStartTime": "2024-01-01T00:00:00", "Total": round(e.total, 3),
            "Yesterday": round(e.yesterday, 3), "Today": round(e.today, 3), "Power": watts,
            "ApparentPower": apparent, "ReactivePower": reactive, "Factor": round(factor, 2),
            "Voltage": e.voltage.round(), "Current": round(current, 3)});
        if tele && let Some(object) = energy.as_object_mut() {
            object.insert("Period".into(), json!(0));
        }
        json!({"Time": iso_time(SystemTime::now()), "ENERGY": energy})
    }

    /// Moves the readings on by `elapsed`, the load wandering by `step` watts.
    pub(super) fn drift(&mut self, elapsed: Duration, step: f64) {
        let e = &mut self.energy;
        e.load_watts = (e.load_watts + step).clamp(5.0, 2000.0);
        e.voltage = (230.0 + step / 4.0).clamp(220.0, 240.0);
        if self.power {
            let kwh = e.load_watts * elapsed.as_secs_f64() / 3_600_000.0;
            e.today += kwh;
            e.total += kwh;
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, as Tasmota prints times.
pub(super) fn iso_time(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let days = i64::try_from(secs / 86400).unwrap_or(0);
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The time of day a log line starts with, `HH:MM:SS.mmm`.
pub(super) fn log_time(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() % 86400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests;
