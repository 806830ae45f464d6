//! Tasmota messages, pure and bounded: topics built from the device's FullTopic, answers told
//! apart from the rest of `stat/<topic>/...`, values converted through a profile's value map,
//! LWT, log lines, upgrade reports and version strings. No IO; never panics on wire input.
//!
//! What Tasmota (13/14) publishes, from its source (`tasmota/tasmota_support/support_command.ino`,
//! `support_tasmota.ino`, `tasmota/tasmota_xdrv_driver/xdrv_02_9_mqtt.ino`):
//! - a command's answer on `stat/<topic>/RESULT`, keyed by the command's name as Tasmota spells
//!   it (`{"POWER":"ON"}`, `{"TelePeriod":300}`, `{"PulseTime1":{"Set":0,"Remaining":0}}`);
//!   `{"Command":"Unknown"}` for a command it does not know and `{"Command":"Error"}` for one
//!   it could not carry out;
//! - `Status <n>` on `stat/<topic>/STATUS<n>`, and `Status0` (all of them in one message) on
//!   `stat/<topic>/STATUS0`;
//! - the outcome of `Upgrade 1` on `stat/<topic>/UPGRADE`: `{"Upgrade":"Successful. Restarting"}`
//!   or `{"Upgrade":"Failed <reason>"}`;
//! - log lines (`MqttLog` > 0) on `stat/<topic>/LOGGING`, as plain text
//!   `HH:MM:SS.mmm TAG: message` without their level;
//! - `tele/<topic>/LWT` (retained `Online` / `Offline`), `tele/<topic>/STATE` and `SENSOR`.

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{Availability, Severity, Value, ValueType};
use serde_json::{Map, Value as Json};

use super::PayloadError;
use super::json;

/// Longest log line accepted, in bytes (Tasmota's own lines stay under 700).
pub const MAX_LOG_LINE: usize = 4096;

/// The three topic prefixes of Tasmota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// `cmnd`: commands to the device.
    Cmnd,
    /// `stat`: answers and status.
    Stat,
    /// `tele`: telemetry, LWT.
    Tele,
}

impl Prefix {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cmnd => "cmnd",
            Self::Stat => "stat",
            Self::Tele => "tele",
        }
    }
}

/// A device's topics, from its FullTopic (Tasmota's default `%prefix%/%topic%/`) and its
/// topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    cmnd: String,
    stat: String,
    tele: String,
}

impl Topics {
    /// The topics of device `topic` under `full_topic` (which must hold `%prefix%` and
    /// `%topic%`; a missing trailing `/` is added, as Tasmota does).
    pub fn new(full_topic: &str, topic: &str) -> Self {
        let base = |prefix: Prefix| {
            let mut t = full_topic
                .replace("%prefix%", prefix.as_str())
                .replace("%topic%", topic);
            if !t.ends_with('/') {
                t.push('/');
            }
            t
        };
        Self {
            cmnd: base(Prefix::Cmnd),
            stat: base(Prefix::Stat),
            tele: base(Prefix::Tele),
        }
    }

    /// The topic a command is published to, e.g. `cmnd/plug/Power1`.
    pub fn command(&self, command: &str) -> String {
        format!("{}{command}", self.cmnd)
    }

    /// A topic of the device, e.g. `tele/plug/LWT`.
    pub fn topic(&self, prefix: Prefix, suffix: &str) -> String {
        let base = match prefix {
            Prefix::Cmnd => &self.cmnd,
            Prefix::Stat => &self.stat,
            Prefix::Tele => &self.tele,
        };
        format!("{base}{suffix}")
    }

    /// The filter of everything the device publishes under `prefix`, e.g. `stat/plug/#`.
    pub fn filter(&self, prefix: Prefix) -> String {
        self.topic(prefix, "#")
    }

    /// Which prefix `topic` is under, and the rest (`RESULT`, `STATUS8`, `LWT`, ...).
    pub fn classify<'a>(&self, topic: &'a str) -> Option<(Prefix, &'a str)> {
        [Prefix::Stat, Prefix::Tele, Prefix::Cmnd]
            .into_iter()
            .find_map(|prefix| {
                let base = match prefix {
                    Prefix::Cmnd => &self.cmnd,
                    Prefix::Stat => &self.stat,
                    Prefix::Tele => &self.tele,
                };
                topic.strip_prefix(base.as_str()).map(|rest| (prefix, rest))
            })
    }
}

/// Whether `name` is a command name Tasmota accepts: a letter, then letters, digits or `_`, at
/// most 32 characters.
pub fn is_command_name(name: &str) -> bool {
    name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a key of an answer on `RESULT` is the answer to `command`. Tasmota keys the answer
/// by the command's name, in its own capitalisation, and drops the index of an indexed command
/// on a device with one relay (`Power1` is answered `{"POWER":"ON"}`); so the names match when
/// equal ignoring case, or when one carries an index and the other none.
pub fn answers_command(command: &str, key: &str) -> bool {
    if command.eq_ignore_ascii_case(key) {
        return true;
    }
    let stem = |s: &str| s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (c, k) = (stem(command), stem(key));
    let one_has_no_index = c == command.len() || k == key.len();
    one_has_no_index && command[..c].eq_ignore_ascii_case(&key[..k])
}

/// What a command waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The answer on `RESULT` keyed by this command.
    Result(String),
    /// The answer on `STATUS<n>` (`Status0` is answered on `STATUS0`).
    Status(u8),
    /// The outcome of an upgrade, on `UPGRADE`.
    Upgrade,
}

/// A message on the device's `stat/` topics, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum StatMessage {
    /// On `RESULT`: a JSON object.
    Result(Map<String, Json>),
    /// On `STATUS<n>`: a JSON object.
    Status(u8, Map<String, Json>),
    /// On `UPGRADE`.
    Upgrade(UpgradeOutcome),
    /// On `LOGGING`.
    Logging(LogLine),
    /// Anything else (`POWER` as plain text, `STATUS` of `Status 0`, ...).
    Other,
}

/// Decodes a message on `stat/<topic>/<suffix>`. Errors name the topic and say what was
/// expected.
pub fn decode_stat(topic: &str, suffix: &str, payload: &[u8]) -> Result<StatMessage, PayloadError> {
    if suffix == "RESULT" {
        return object(topic, payload).map(StatMessage::Result);
    }
    if suffix == "UPGRADE" {
        let answer = object(topic, payload)?;
        return upgrade_outcome(topic, &answer).map(StatMessage::Upgrade);
    }
    if suffix == "LOGGING" {
        return decode_log_line(topic, payload).map(StatMessage::Logging);
    }
    if let Some(n) = suffix
        .strip_prefix("STATUS")
        .filter(|n| !n.is_empty() && n.len() <= 2)
        .and_then(|n| n.parse::<u8>().ok())
    {
        return object(topic, payload).map(|o| StatMessage::Status(n, o));
    }
    Ok(StatMessage::Other)
}

/// How the device answered a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Its answer.
    Value(Map<String, Json>),
    /// `{"Command":"Unknown"}`, `{"Command":"Error"}`, or the command's own key holding
    /// `"Error"` or `"Failed"`.
    Refused {
        /// The device's words, e.g. `Command Unknown`.
        code: String,
    },
    /// The upgrade's outcome.
    Upgrade(UpgradeOutcome),
}

impl Expect {
    /// The answer in `message` if it is the one this waits for.
    pub fn answer(&self, message: &StatMessage) -> Option<Answer> {
        match (self, message) {
            (Self::Result(command), StatMessage::Result(object)) => {
                if let Some(verdict) = object.get("Command").and_then(Json::as_str)
                    && object.len() == 1
                {
                    return Some(Answer::Refused {
                        code: format!("Command {verdict}"),
                    });
                }
                let (key, value) = object.iter().find(|(k, _)| answers_command(command, k))?;
                match value.as_str() {
                    Some(word @ ("Error" | "Failed")) => Some(Answer::Refused {
                        code: format!("{key} {word}"),
                    }),
                    _ => Some(Answer::Value(object.clone())),
                }
            }
            (Self::Status(_), StatMessage::Result(object)) => {
                let verdict = object.get("Command").and_then(Json::as_str)?;
                Some(Answer::Refused {
                    code: format!("Command {verdict}"),
                })
            }
            (Self::Status(n), StatMessage::Status(m, object)) if n == m => {
                Some(Answer::Value(object.clone()))
            }
            (Self::Upgrade, StatMessage::Upgrade(outcome)) => {
                Some(Answer::Upgrade(outcome.clone()))
            }
            _ => None,
        }
    }
}

/// A JSON object payload.
pub fn object(topic: &str, payload: &[u8]) -> Result<Map<String, Json>, PayloadError> {
    match json::parse(topic, payload)? {
        Json::Object(object) => Ok(object),
        other => Err(PayloadError::Unexpected {
            topic: topic.to_owned(),
            reason: format!(
                "expected a JSON object, as Tasmota sends, got {}",
                kind_of(&other)
            ),
        }),
    }
}

fn kind_of(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The value at a JSON pointer; Tasmota's keys are matched ignoring case when the exact
/// pointer finds nothing (`/POWER` finds `Power`).
pub fn lookup<'a>(json: &'a Json, pointer: &str) -> Option<&'a Json> {
    if let Some(found) = json.pointer(pointer) {
        return Some(found);
    }
    let mut current = json;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        current = match current {
            Json::Object(map) => map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&token))
                .map(|(_, v)| v)?,
            Json::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// A profile's value map: the device's words and the parameter values they stand for.
pub type ValueMap = [(String, Value)];

/// The device's word for a JSON value, as a value map holds it: strings as they are, numbers
/// and booleans as JSON prints them.
fn word_of(json: &Json) -> Option<String> {
    match json {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Converts what the device reported to a value of `parameter`, through `map` when the profile
/// gives one. The error says what was expected and what came.
pub fn decode_value(parameter: &Parameter, map: &ValueMap, json: &Json) -> Result<Value, String> {
    if map.is_empty() {
        return json::to_value(parameter, json);
    }
    let word = word_of(json);
    word.as_deref()
        .and_then(|w| {
            map.iter()
                .find(|(device, _)| device.eq_ignore_ascii_case(w))
        })
        .map(|(_, value)| value.clone())
        .ok_or_else(|| {
            format!(
                "expected one of {}, got {json}",
                map.iter()
                    .map(|(device, _)| device.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The command payload that sets `value` (already checked against `parameter`), through `map`
/// when the profile gives one. Booleans without a map are sent as `1`/`0`, which every
/// Tasmota on/off command takes; an empty string as `"`, Tasmota's way to clear a text.
pub fn encode_value(
    parameter: &Parameter,
    map: &ValueMap,
    value: &Value,
) -> Result<String, String> {
    if !map.is_empty() {
        return map
            .iter()
            .find(|(_, v)| same_value(parameter, v, value))
            .map(|(device, _)| device.clone())
            .ok_or_else(|| {
                format!(
                    "{value} has no device word in the profile's value map (it maps {})",
                    map.iter()
                        .map(|(d, v)| format!("{d} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
    }
    Ok(match value {
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Text(t) if t.is_empty() => "\"".to_owned(),
        Value::Text(t) => t.clone(),
    })
}

/// Whether two values of `parameter` are the same, floats within half its resolution.
pub fn same_value(parameter: &Parameter, a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if parameter.value_type == ValueType::Float => {
            let tolerance = parameter
                .resolution
                .map_or(1e-9 * x.abs().max(1.0), |r| r / 2.0);
            (x - y).abs() <= tolerance
        }
        _ => a == b,
    }
}

/// The availability an LWT payload announces (`Online` / `Offline`, as Tasmota's defaults
/// spell them), or `None` for anything else.
pub fn decode_lwt(payload: &[u8]) -> Option<Availability> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    if text.eq_ignore_ascii_case("online") {
        Some(Availability::Online)
    } else if text.eq_ignore_ascii_case("offline") {
        Some(Availability::Offline)
    } else {
        None
    }
}

/// The outcome of `Upgrade 1` as the device reports it on `stat/<topic>/UPGRADE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// `Successful. Restarting`.
    Successful,
    /// `Failed <reason>`: the reason in the device's words.
    Failed(String),
}

fn upgrade_outcome(
    topic: &str,
    answer: &Map<String, Json>,
) -> Result<UpgradeOutcome, PayloadError> {
    let unexpected = |reason: String| PayloadError::Unexpected {
        topic: topic.to_owned(),
        reason,
    };
    let text = answer
        .get("Upgrade")
        .and_then(Json::as_str)
        .ok_or_else(|| {
            unexpected(format!(
                "expected {{\"Upgrade\":\"...\"}}, got {}",
                Json::Object(answer.clone())
            ))
        })?;
    if text.starts_with("Successful") {
        Ok(UpgradeOutcome::Successful)
    } else if let Some(reason) = text.strip_prefix("Failed") {
        Ok(UpgradeOutcome::Failed(reason.trim().to_owned()))
    } else {
        Err(unexpected(format!(
            "expected `Successful. Restarting` or `Failed <reason>`, got {text:?}"
        )))
    }
}

/// Whether the immediate answer to `Upgrade 1` says the upgrade started (`Version 13.1.0 from
/// <url>`); otherwise Tasmota answers `1 or >13.1.0 to upgrade`.
pub fn upgrade_started(answer: &Map<String, Json>) -> Result<(), String> {
    let text = answer
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Upgrade"))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default();
    if text.starts_with("Version ") {
        Ok(())
    } else {
        Err(format!(
            "the device answered {}",
            Json::Object(answer.clone())
        ))
    }
}

/// A version as Tasmota prints it (`13.1.0(tasmota)`, `14.2.0.3(release-tasmota32)`) reduced to
/// the version an image declares (`13.1.0`): the build variant in parentheses and a leading `v`
/// dropped.
pub fn core_version(version: &str) -> &str {
    let version = version.trim();
    let version = version.split('(').next().unwrap_or(version).trim();
    version
        .strip_prefix(['v', 'V'])
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(version)
}

/// Whether a device's version and an image's are the same release.
pub fn same_version(device: &str, image: &str) -> bool {
    core_version(device) == core_version(image)
}

/// One line of the device's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The device's time of day, `HH:MM:SS.mmm`, if the line starts with it.
    pub device_time: Option<String>,
    /// The tag of the part of Tasmota that logged it (`MQT`, `CMD`, `UPL`, ...), if any.
    pub tag: Option<String>,
    /// The line after the time of day.
    pub message: String,
    /// Severity, inferred (see [`infer_severity`]).
    pub severity: Severity,
}

/// Decodes a line from `stat/<topic>/LOGGING`.
pub fn decode_log_line(topic: &str, payload: &[u8]) -> Result<LogLine, PayloadError> {
    if payload.len() > MAX_LOG_LINE {
        return Err(PayloadError::TooLarge {
            topic: topic.to_owned(),
            size: payload.len(),
            limit: MAX_LOG_LINE,
        });
    }
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotText {
        topic: topic.to_owned(),
    })?;
    let text = text.trim_end_matches(['\r', '\n']);
    let (device_time, rest) = match text.split_once(' ') {
        Some((time, rest)) if is_time_of_day(time) => (Some(time.to_owned()), rest),
        _ => (None, text),
    };
    let tag = rest
        .split_once(": ")
        .map(|(tag, _)| tag)
        .filter(|tag| {
            (2..=4).contains(&tag.len())
                && tag
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .map(str::to_owned);
    Ok(LogLine {
        device_time,
        tag,
        message: rest.to_owned(),
        severity: line_severity(rest),
    })
}

fn is_time_of_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b.iter().enumerate().all(|(i, c)| match i {
            2 | 5 => *c == b':',
            8 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
}

/// The severity of a log line. A line echoing an MQTT message the device published
/// (`MQT: stat/plug/STATUS6 = {...}`, logged at `MqttLog 2`) is judged by the message's values
/// only: its keys are names (`SOCKET_TIMEOUT`, `MqttTimeout`), not news of trouble.
fn line_severity(line: &str) -> Severity {
    let echoed = line
        .strip_prefix("MQT: ")
        .and_then(|rest| rest.split_once(" = "))
        .filter(|(topic, _)| !topic.contains(' '))
        .map(|(_, payload)| payload);
    let Some(payload) = echoed else {
        return infer_severity(line);
    };
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(value) => {
            let mut values = String::new();
            collect_strings(&value, &mut values, 0);
            infer_severity(&values)
        }
        Err(_) => infer_severity(payload),
    }
}

/// The string values of `value`, space separated (nesting bounded: the line is at most
/// [`MAX_LOG_LINE`] bytes anyway).
fn collect_strings(value: &serde_json::Value, out: &mut String, depth: usize) {
    match value {
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push(' ');
        }
        serde_json::Value::Array(items) if depth < 32 => {
            items
                .iter()
                .for_each(|v| collect_strings(v, out, depth + 1));
        }
        serde_json::Value::Object(map) if depth < 32 => {
            map.values()
                .for_each(|v| collect_strings(v, out, depth + 1));
        }
        _ => {}
    }
}

/// Tasmota does not publish a line's level, so it is inferred from the words, conservatively:
/// a line that speaks of a failure (`error`, `fail`, `exception`, `crash`, `watchdog`) is
/// [`Severity::Error`], one that speaks of trouble short of that (`retry`, `timeout`, `lost`,
/// `disconnect`, `unknown`, `overrun`, `invalid`) is [`Severity::Warning`], and every other line
/// is [`Severity::Informational`]: no line is ever ranked below informational, so a filter on
/// severity never hides a line that might matter.
pub fn infer_severity(message: &str) -> Severity {
    const ERROR: [&str; 5] = ["error", "fail", "exception", "crash", "watchdog"];
    const WARNING: [&str; 8] = [
        "retry",
        "timeout",
        "timed out",
        "lost",
        "disconnect",
        "unknown",
        "overrun",
        "invalid",
    ];
    let lower = message.to_ascii_lowercase();
    if ERROR.iter().any(|w| lower.contains(w)) {
        Severity::Error
    } else if WARNING.iter().any(|w| lower.contains(w)) {
        Severity::Warning
    } else {
        Severity::Informational
    }
}

#[cfg(test)]
mod tests;
