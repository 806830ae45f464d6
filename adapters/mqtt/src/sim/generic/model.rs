//! The simulated AHU-5 controller without its MQTT connection: its values, the requests it
//! answers, its log ring and its faults. Pure: the device task feeds it requests and `now`.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde_json::{Value as Json, json};
use tokio::time::Instant;

use super::firmware::{After, Firmware, Refused};
use super::identity::{ProofAnswer, Prover};

/// Records the log ring keeps.
const LOG_CAPACITY: usize = 200;

/// The filter pressure (Pa) an image with a `;unhealthy` header reports while it runs: above
/// the shipped profile's health limit (`filter_pressure` at most 250).
pub(super) const UNHEALTHY_FILTER_PRESSURE: f64 = 400.0;

/// The modes the controller knows.
pub(super) const MODES: [&str; 4] = ["off", "eco", "comfort", "boost"];

/// Which of the device's request topics a request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// `.../rpc`.
    Rpc,
    /// `.../firmware`.
    Firmware,
    /// `.../log`.
    Log,
}

/// The answer to a request and what follows it.
#[derive(Debug)]
pub(super) struct Handled {
    /// The answer's payload; `None` when the device stays silent.
    pub(super) answer: Option<Vec<u8>>,
    /// Restart after answering.
    pub(super) after: After,
    /// The values changed: push the state.
    pub(super) state_changed: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Values {
    supply_temperature: f64,
    extract_temperature: f64,
    filter_pressure: f64,
    alarm: bool,
    setpoint: f64,
    fan: i64,
    mode: String,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            supply_temperature: 19.0,
            extract_temperature: 22.0,
            filter_pressure: 110.0,
            alarm: false,
            setpoint: 21.0,
            fan: 40,
            mode: "comfort".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
struct LogEntry {
    index: u64,
    time: SystemTime,
    severity: u8,
    message: String,
}

/// Faults a test can switch on.
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// Answer nothing.
    pub(super) unresponsive: bool,
    /// Answer the next request with this error (code, message).
    pub(super) fail_next: Option<(String, String)>,
    /// Answer the next request with these raw bytes.
    pub(super) raw_next: Option<Vec<u8>>,
}

/// The controller.
#[derive(Debug)]
pub(super) struct Model {
    device: String,
    serial: String,
    values: Values,
    pub(super) firmware: Firmware,
    log: VecDeque<LogEntry>,
    next_index: u64,
    drift: u64,
    pub(super) faults: Faults,
    /// Requests received (answered or not).
    pub(super) requests: u64,
    /// Its identity and the answers to proof requests.
    pub(super) prover: Prover,
}

impl Model {
    pub(super) fn new(device: &str, version: &str, max_image_size: u64) -> Self {
        Self {
            device: device.to_owned(),
            serial: format!("AHU5-{}", device.replace('/', "-")),
            values: Values::default(),
            firmware: Firmware::new(version, max_image_size),
            log: VecDeque::new(),
            next_index: 1,
            drift: 0x2545_f491_4f6c_dd1d,
            faults: Faults::default(),
            requests: 0,
            prover: Prover::default(),
        }
    }

    /// The state the device pushes and answers `get` with.
    pub(super) fn state(&self) -> Json {
        let v = &self.values;
        json!({
            "supply": {"temperature": round1(v.supply_temperature), "fan": v.fan},
            "extract": {"temperature": round1(v.extract_temperature)},
            "filter": {"pressure": self.filter_pressure()},
            "setpoint": v.setpoint,
            "mode": v.mode,
            "alarm": v.alarm,
        })
    }

    /// A value by the shipped profile's parameter name, as JSON (for tests).
    pub(super) fn value(&self, name: &str) -> Option<Json> {
        let v = &self.values;
        Some(match name {
            "supply_temperature" => json!(round1(v.supply_temperature)),
            "extract_temperature" => json!(round1(v.extract_temperature)),
            "filter_pressure" => json!(self.filter_pressure()),
            "alarm" => json!(v.alarm),
            "setpoint" => json!(v.setpoint),
            "supply_fan_speed" => json!(v.fan),
            "mode" => json!(v.mode),
            _ => return None,
        })
    }

    /// The filter pressure it reports: out of the health range while an unhealthy image runs.
    fn filter_pressure(&self) -> f64 {
        if self.firmware.running_unhealthy() {
            UNHEALTHY_FILTER_PRESSURE
        } else {
            self.values.filter_pressure.round()
        }
    }

    /// Measurements drift a little (a deterministic random walk).
    pub(super) fn drift(&mut self) {
        self.drift = self
            .drift
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let step = f64::from(u8::try_from(self.drift >> 59).unwrap_or(0)) / 10.0 - 1.5;
        let v = &mut self.values;
        v.supply_temperature += (v.setpoint - v.supply_temperature) * 0.2 + step * 0.1;
        v.extract_temperature += step * 0.05;
        v.filter_pressure = (v.filter_pressure + 0.05).min(240.0);
    }

    /// Appends a record to the log ring.
    pub(super) fn log(&mut self, severity: u8, message: impl Into<String>) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry {
            index: self.next_index,
            time: SystemTime::now(),
            severity,
            message: message.into(),
        });
        self.next_index += 1;
    }

    /// Back to factory settings (at the restart that follows).
    fn factory_reset(&mut self) {
        self.values = Values::default();
        self.log.clear();
    }

    /// Answers one request.
    pub(super) fn handle(
        &mut self,
        endpoint: Endpoint,
        payload: &[u8],
        user: &[(String, String)],
    ) -> Handled {
        self.requests += 1;
        let silent = Handled {
            answer: None,
            after: After::Stay,
            state_changed: false,
        };
        if self.faults.unresponsive {
            return silent;
        }
        if let Some(raw) = self.faults.raw_next.take() {
            return Handled {
                answer: Some(raw),
                ..silent
            };
        }
        if let Some((code, message)) = self.faults.fail_next.take() {
            return Handled {
                answer: Some(error(&code, &message)),
                ..silent
            };
        }
        let property = |key: &str| user.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        if endpoint == Endpoint::Firmware
            && let Some(offset) = property("offset")
        {
            let Ok(offset) = offset.parse::<u64>() else {
                return answered(Err((
                    "bad_chunk",
                    format!("`offset` {offset:?} is not a number"),
                )));
            };
            let length = property("length").and_then(|l| l.parse::<u64>().ok());
            let result = self
                .firmware
                .chunk(offset, length, payload)
                .map(|held| (json!({ "acknowledged": held }), After::Stay));
            return answered(result);
        }
        let request: Json = match serde_json::from_slice(payload) {
            Ok(Json::Object(o)) => Json::Object(o),
            _ => {
                return answered(Err((
                    "bad_request",
                    "the request must be a JSON object with `op`".into(),
                )));
            }
        };
        if endpoint == Endpoint::Rpc && request.get("op").and_then(Json::as_str) == Some("prove") {
            return match self.prover.answer(&self.device, &request) {
                ProofAnswer::Json(result) => answered(result.map(|json| (json, After::Stay))),
                ProofAnswer::Raw(bytes) => Handled {
                    answer: Some(bytes),
                    ..silent
                },
                ProofAnswer::Silent => silent,
            };
        }
        let result = match endpoint {
            Endpoint::Rpc => self.rpc(&request),
            Endpoint::Firmware => self.firmware.operation(&request),
            Endpoint::Log => self.log_request(&request),
        };
        let state_changed = endpoint == Endpoint::Rpc && result.is_ok();
        Handled {
            state_changed,
            ..answered(result)
        }
    }

    fn rpc(&mut self, request: &Json) -> Result<(Json, After), Refused> {
        let op = request.get("op").and_then(Json::as_str).unwrap_or_default();
        match op {
            "info" => Ok((
                json!({
                    "manufacturer": "iotmc",
                    "model": "AHU-5",
                    "serial": self.serial,
                    "version": self.firmware.running(),
                    "hardware": "rev B",
                }),
                After::Stay,
            )),
            "get" => Ok((self.state(), After::Stay)),
            "set" => self
                .set(request.get("values"))
                .map(|()| (json!({"ok": true}), After::Stay)),
            "reboot" => {
                self.log(5, "restart requested");
                Ok((json!({"ok": true}), After::Restart))
            }
            "factory_reset" => {
                self.factory_reset();
                self.log(5, "factory reset");
                Ok((json!({"ok": true}), After::Restart))
            }
            "self_test" => {
                self.log(6, "self test passed");
                Ok((json!({"result": {"passed": true, "code": 0}}), After::Stay))
            }
            "boost" => {
                let minutes = request.get("minutes").and_then(Json::as_i64);
                match minutes {
                    Some(m) if (5..=120).contains(&m) => {
                        self.values.mode = "boost".to_owned();
                        let until = SystemTime::now()
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .unwrap_or_default()
                            + Duration::from_secs(u64::try_from(m).unwrap_or(0) * 60);
                        Ok((json!({"until": until.as_secs()}), After::Stay))
                    }
                    _ => Err((
                        "range",
                        format!("`minutes` must be 5..120, got {minutes:?}"),
                    )),
                }
            }
            other => Err(("bad_request", format!("unknown op {other:?}"))),
        }
    }

    /// Sets every value or none.
    fn set(&mut self, values: Option<&Json>) -> Result<(), Refused> {
        let Some(Json::Object(values)) = values else {
            return Err(("bad_request", "`values` must be an object".into()));
        };
        let mut next = self.values.clone();
        for (key, value) in values {
            match key.as_str() {
                "setpoint" => match value.as_f64() {
                    Some(x) if (12.0..=30.0).contains(&x) => next.setpoint = x,
                    _ => return Err(("range", format!("setpoint must be 12..30 °C, got {value}"))),
                },
                "fan" => match value.as_i64() {
                    Some(x) if (0..=100).contains(&x) => next.fan = x,
                    _ => return Err(("range", format!("fan must be 0..100 %, got {value}"))),
                },
                "mode" => match value.as_str() {
                    Some(m) if MODES.contains(&m) => next.mode = m.to_owned(),
                    _ => {
                        return Err((
                            "range",
                            format!("mode must be one of {}, got {value}", MODES.join(", ")),
                        ));
                    }
                },
                other => return Err(("unknown", format!("no setting {other:?}"))),
            }
        }
        if next != self.values {
            self.log(
                6,
                format!("settings changed: {}", Json::Object(values.clone())),
            );
        }
        self.values = next;
        Ok(())
    }

    fn log_request(&mut self, request: &Json) -> Result<(Json, After), Refused> {
        match request.get("op").and_then(Json::as_str) {
            Some("fetch") => {
                let after = request.get("after").and_then(Json::as_u64).unwrap_or(0);
                let max = request
                    .get("max")
                    .and_then(Json::as_u64)
                    .unwrap_or(100)
                    .clamp(1, 500);
                let records: Vec<Json> = self
                    .log
                    .iter()
                    .filter(|e| e.index > after)
                    .take(usize::try_from(max).unwrap_or(500))
                    .map(|e| {
                        let time = e
                            .time
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_secs_f64();
                        json!({
                            "index": e.index,
                            "time": (time * 1000.0).round() / 1000.0,
                            "severity": e.severity,
                            "message": e.message,
                            "fields": {"source": "controller"},
                        })
                    })
                    .collect();
                let next = records
                    .last()
                    .and_then(|r| r["index"].as_u64())
                    .unwrap_or(after);
                Ok((json!({"records": records, "next": next}), After::Stay))
            }
            Some("clear") => {
                self.log.clear();
                Ok((json!({}), After::Stay))
            }
            other => Err(("bad_request", format!("unknown log operation {other:?}"))),
        }
    }

    /// The device restarts: carry out the firmware's boot, log it.
    pub(super) fn restart(&mut self, now: Instant, confirm_window: Duration) {
        let (severity, line) = self.firmware.boot(now, confirm_window);
        self.log(severity, line);
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn error(code: &str, message: &str) -> Vec<u8> {
    json!({"error": {"code": code, "message": message}})
        .to_string()
        .into_bytes()
}

fn answered(result: Result<(Json, After), Refused>) -> Handled {
    match result {
        Ok((json, after)) => Handled {
            answer: Some(json.to_string().into_bytes()),
            after,
            state_changed: false,
        },
        Err((code, message)) => Handled {
            answer: Some(error(code, &message)),
            after: After::Stay,
            state_changed: false,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ask(model: &mut Model, endpoint: Endpoint, request: Json) -> Json {
        let handled = model.handle(endpoint, request.to_string().as_bytes(), &[]);
        serde_json::from_slice(&handled.answer.unwrap()).unwrap()
    }

    /// Sends `bytes` as one image and boots it on test, as the gateway would.
    fn install_on_test(model: &mut Model, bytes: &[u8]) {
        use sha2::{Digest, Sha256};
        let sha256 = crate::codec::generic::hex(&Sha256::digest(bytes));
        let begin = json!({"op": "begin", "size": bytes.len(), "sha256": sha256, "offset": 0});
        assert_eq!(ask(model, Endpoint::Firmware, begin)["offset"], 0);
        let length = bytes.len().to_string();
        let chunk = model.handle(
            Endpoint::Firmware,
            bytes,
            &[("offset".into(), "0".into()), ("length".into(), length)],
        );
        let chunk: Json = serde_json::from_slice(&chunk.answer.unwrap()).unwrap();
        assert_eq!(chunk["acknowledged"], bytes.len());
        let activate = json!({"op": "activate", "mode": "test"});
        let handled = model.handle(Endpoint::Firmware, activate.to_string().as_bytes(), &[]);
        assert_eq!(handled.after, After::Restart);
        model.restart(Instant::now(), Duration::from_secs(600));
    }

    #[test]
    fn an_unhealthy_image_should_report_filter_pressure_out_of_range_until_reverted() {
        let mut model = Model::new("ahu-1", "1.0.0", 1 << 20);
        let healthy = model.value("filter_pressure").unwrap().as_f64().unwrap();
        assert!(healthy <= 250.0, "{healthy}");
        install_on_test(&mut model, b"SIMFW:2.0.0;unhealthy\nbody");
        let info = ask(&mut model, Endpoint::Rpc, json!({"op": "info"}));
        assert_eq!(info["version"], "2.0.0");
        assert_eq!(model.value("filter_pressure"), Some(json!(400.0)));
        assert_eq!(model.state()["filter"]["pressure"], 400.0);
        let get = ask(&mut model, Endpoint::Rpc, json!({"op": "get"}));
        assert_eq!(get["filter"]["pressure"], 400.0);
        model.drift();
        assert_eq!(model.value("filter_pressure"), Some(json!(400.0)));
        let revert = model.handle(Endpoint::Firmware, br#"{"op": "revert"}"#, &[]);
        assert_eq!(revert.after, After::Restart);
        model.restart(Instant::now(), Duration::from_secs(600));
        assert_eq!(model.firmware.running(), "1.0.0");
        let after = model.value("filter_pressure").unwrap().as_f64().unwrap();
        assert!(after <= 250.0, "{after}");
    }

    #[test]
    fn a_healthy_image_should_keep_filter_pressure_in_range() {
        let mut model = Model::new("ahu-1", "1.0.0", 1 << 20);
        install_on_test(&mut model, b"SIMFW:2.0.0\nbody");
        assert_eq!(model.firmware.running(), "2.0.0");
        let pressure = model.value("filter_pressure").unwrap().as_f64().unwrap();
        assert!(pressure <= 250.0, "{pressure}");
    }

    #[test]
    fn set_should_change_every_value_or_none() {
        let mut model = Model::new("ahu-1", "1.0.0", 1 << 20);
        let answer = ask(
            &mut model,
            Endpoint::Rpc,
            json!({"op": "set", "values": {"setpoint": 22.5, "fan": 101}}),
        );
        assert_eq!(answer["error"]["code"], "range");
        assert_eq!(model.value("setpoint"), Some(json!(21.0)));
        let answer = ask(
            &mut model,
            Endpoint::Rpc,
            json!({"op": "set", "values": {"setpoint": 22.5, "mode": "eco"}}),
        );
        assert_eq!(answer, json!({"ok": true}));
        assert_eq!(model.state()["setpoint"], 22.5);
        assert_eq!(model.state()["mode"], "eco");
    }

    #[test]
    fn log_fetch_should_continue_after_the_cursor() {
        let mut model = Model::new("ahu-1", "1.0.0", 1 << 20);
        model.log(3, "one");
        model.log(4, "two");
        let all = ask(&mut model, Endpoint::Log, json!({"op": "fetch"}));
        assert_eq!(all["records"].as_array().unwrap().len(), 2);
        assert_eq!(all["next"], 2);
        model.log(6, "three");
        let newer = ask(
            &mut model,
            Endpoint::Log,
            json!({"op": "fetch", "after": 2}),
        );
        assert_eq!(newer["records"][0]["message"], "three");
        assert_eq!(newer["records"][0]["index"], 3);
        ask(&mut model, Endpoint::Log, json!({"op": "clear"}));
        let none = ask(
            &mut model,
            Endpoint::Log,
            json!({"op": "fetch", "after": 3}),
        );
        assert_eq!(none["records"], json!([]));
        assert_eq!(none["next"], 3);
    }

    #[test]
    fn faults_should_shape_the_next_answer() {
        let mut model = Model::new("ahu-1", "1.0.0", 1 << 20);
        model.faults.fail_next = Some(("busy".into(), "defrosting".into()));
        let answer = ask(&mut model, Endpoint::Rpc, json!({"op": "get"}));
        assert_eq!(answer["error"]["message"], "defrosting");
        assert!(ask(&mut model, Endpoint::Rpc, json!({"op": "get"}))["error"].is_null());
        model.faults.unresponsive = true;
        assert!(model.handle(Endpoint::Rpc, b"{}", &[]).answer.is_none());
    }
}
