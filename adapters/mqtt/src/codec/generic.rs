//! The generic dialect's payloads, pure and bounded: answers with the device's error, values at
//! JSON pointers, request payloads built from templates, availability, identity, the chunked
//! firmware answers (`{offset}`, `{acknowledged}`, `{sha256}`, banks) and log records.
//!
//! The wire protocol is described for device makers in `device-profiles/mqtt/generic.md`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{Availability, BankInfo, DeviceLogRecord, Severity, Value};
use serde_json::{Map, Value as Json};

use super::PayloadError;
use super::json;

/// Most log records taken from one answer or kept from one message.
pub const MAX_LOG_RECORDS: usize = 1000;
/// Longest log message kept, in bytes (longer ones are cut at a character boundary).
pub const MAX_LOG_MESSAGE: usize = 2048;
/// Most structured fields kept per log record.
pub const MAX_LOG_FIELDS: usize = 32;
/// Most banks a device may report.
pub const MAX_BANKS: usize = 8;
/// Longest text taken from the device for a version, error or identity string, in bytes.
pub const MAX_TEXT: usize = 256;

fn unexpected(topic: &str, reason: impl Into<String>) -> PayloadError {
    PayloadError::Unexpected {
        topic: topic.to_owned(),
        reason: reason.into(),
    }
}

/// The device's own refusal found at the profile's error pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The device's code (or its words, when it gives only a message).
    pub code: String,
    /// Its message, when it gave a code and a message.
    pub message: Option<String>,
}

/// Parses an answer and looks for the device's error at `error_pointer`: `Ok(Err(refusal))`
/// when the device refused, `Ok(Ok(json))` when it did not. An error value may be a string
/// (`{"error": "busy"}`), a number, or an object with `code` and/or `message`. A `null` or
/// `false` there is no error.
pub fn answer(
    topic: &str,
    payload: &[u8],
    error_pointer: &str,
) -> Result<Result<Json, Refusal>, PayloadError> {
    let json = json::parse(topic, payload)?;
    let refusal = match json.pointer(error_pointer) {
        None | Some(Json::Null | Json::Bool(false)) => return Ok(Ok(json)),
        Some(Json::Object(error)) => {
            let code = error.get("code").map(text_of);
            let message = error.get("message").map(text_of);
            match (code, message) {
                (Some(code), message) => Refusal { code, message },
                (None, Some(message)) => Refusal {
                    code: message,
                    message: None,
                },
                (None, None) => Refusal {
                    code: bounded(&Json::Object(error.clone()).to_string()),
                    message: None,
                },
            }
        }
        Some(other) => Refusal {
            code: text_of(other),
            message: None,
        },
    };
    Ok(Err(refusal))
}

fn text_of(json: &Json) -> String {
    match json {
        Json::String(s) => bounded(s),
        other => bounded(&other.to_string()),
    }
}

/// `text` cut to [`MAX_TEXT`] bytes at a character boundary.
fn bounded(text: &str) -> String {
    cut(text, MAX_TEXT)
}

fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The value of `parameter` at `pointer` in `json`, converted to the declared type.
pub fn value_at(
    topic: &str,
    json: &Json,
    pointer: &str,
    parameter: &Parameter,
) -> Result<Value, PayloadError> {
    let found = json.pointer(pointer).ok_or_else(|| {
        unexpected(
            topic,
            format!(
                "expected `{}` at JSON pointer `{pointer}`, found nothing there",
                parameter.name
            ),
        )
    })?;
    json::to_value(parameter, found)
        .map_err(|why| unexpected(topic, format!("`{}` at `{pointer}`: {why}", parameter.name)))
}

/// An action's output value, typed by what the JSON holds (objects and arrays as their JSON
/// text).
pub fn output_value(json: &Json) -> Value {
    match json {
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) => Value::Float(f),
            (None, None) => Value::Text(n.to_string()),
        },
        Json::String(s) => Value::Text(bounded(s)),
        other => Value::Text(bounded(&other.to_string())),
    }
}

/// Places `value` at `pointer` in `template`, creating the objects on the way. Fails when the
/// pointer runs through something that is not an object (an array, a string, ...). The empty
/// pointer replaces the whole document.
pub fn place(template: &mut Json, pointer: &str, value: Json) -> Result<(), String> {
    if pointer.is_empty() {
        *template = value;
        return Ok(());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("JSON pointer {pointer:?} must start with `/`"));
    };
    let keys: Vec<String> = rest
        .split('/')
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut at = template;
    for (i, key) in keys.iter().enumerate() {
        let Json::Object(object) = at else {
            let parent = keys[..i].join("/");
            return Err(format!(
                "cannot place a value at `{pointer}`: `/{parent}` in the payload is not a JSON object"
            ));
        };
        if i + 1 == keys.len() {
            object.insert(key.clone(), value);
            return Ok(());
        }
        at = object
            .entry(key.clone())
            .or_insert_with(|| Json::Object(Map::new()));
    }
    Ok(())
}

/// What an availability message says, given the profile's mapping: the payload (or the string
/// at `pointer` in its JSON) compared with the online and offline words. `None` for anything
/// else (the caller logs it and keeps the previous availability).
pub fn availability(
    payload: &[u8],
    pointer: Option<&str>,
    online: &str,
    offline: &str,
) -> Option<Availability> {
    let word = match pointer {
        None => std::str::from_utf8(payload).ok()?.trim().to_owned(),
        Some(pointer) => match json::parse("", payload).ok()?.pointer(pointer)? {
            Json::String(s) => s.clone(),
            Json::Bool(b) => b.to_string(),
            other => other.to_string(),
        },
    };
    if word == online {
        Some(Availability::Online)
    } else if word == offline {
        Some(Availability::Offline)
    } else {
        None
    }
}

/// An optional string at `pointer` (identity fields): absent, or text; numbers are taken as
/// their decimal text.
pub fn text_at(topic: &str, json: &Json, pointer: &str) -> Result<Option<String>, PayloadError> {
    match json.pointer(pointer) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(bounded(s))),
        Some(Json::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(unexpected(
            topic,
            format!("expected text at `{pointer}`, got {other}"),
        )),
    }
}

fn u64_field(topic: &str, json: &Json, field: &str, what: &str) -> Result<u64, PayloadError> {
    match json.get(field) {
        Some(Json::Number(n)) => n.as_u64().ok_or_else(|| {
            unexpected(
                topic,
                format!("`{field}` ({what}) must be a whole number of bytes, got {n}"),
            )
        }),
        Some(other) => Err(unexpected(
            topic,
            format!("`{field}` ({what}) must be a number, got {other}"),
        )),
        None => Err(unexpected(
            topic,
            format!("expected `{{\"{field}\": <{what}>}}`, got {}", shown(json)),
        )),
    }
}

fn shown(json: &Json) -> String {
    cut(&json.to_string(), 120)
}

/// The answer to `begin`: `{"offset": n}`, where the transfer continues. Must not pass `size`.
pub fn begin_offset(topic: &str, json: &Json, size: u64) -> Result<u64, PayloadError> {
    let offset = u64_field(topic, json, "offset", "where to continue")?;
    if offset > size {
        return Err(unexpected(
            topic,
            format!("`offset` {offset} is past the end of the {size}-byte image"),
        ));
    }
    Ok(offset)
}

/// The answer to a chunk: `{"acknowledged": n}`, every byte before `n` is on the device. Must
/// not pass `end` (the end of the chunk just sent).
pub fn acknowledged(topic: &str, json: &Json, end: u64) -> Result<u64, PayloadError> {
    let acknowledged = u64_field(topic, json, "acknowledged", "bytes held")?;
    if acknowledged > end {
        return Err(unexpected(
            topic,
            format!("`acknowledged` {acknowledged} is past the end of what was sent ({end})"),
        ));
    }
    Ok(acknowledged)
}

/// The answer to `verify`: `{"sha256": "<64 hex digits>"}`.
pub fn sha256(topic: &str, json: &Json) -> Result<[u8; 32], PayloadError> {
    let text = match json.get("sha256") {
        Some(Json::String(s)) => s,
        other => {
            return Err(unexpected(
                topic,
                format!(
                    "expected `{{\"sha256\": \"<64 hex digits>\"}}`, got {}",
                    other.map_or_else(|| shown(json), shown)
                ),
            ));
        }
    };
    parse_hex32(text).ok_or_else(|| {
        unexpected(
            topic,
            format!("`sha256` must be 64 hex digits, got {:?}", cut(text, 80)),
        )
    })
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The answer to `banks`: `[{"slot", "version", "active", "confirmed", "pending"}]` (or the
/// same array under `"banks"`).
pub fn banks(topic: &str, json: &Json) -> Result<Vec<BankInfo>, PayloadError> {
    let list = match json {
        Json::Array(list) => list,
        Json::Object(o) => match o.get("banks") {
            Some(Json::Array(list)) => list,
            _ => {
                return Err(unexpected(
                    topic,
                    format!(
                        "expected an array of banks `[{{\"slot\": 0, \"version\": \"1.0\", \"active\": true, \"confirmed\": true, \"pending\": false}}]`, got {}",
                        shown(json)
                    ),
                ));
            }
        },
        other => {
            return Err(unexpected(
                topic,
                format!("expected an array of banks, got {}", shown(other)),
            ));
        }
    };
    if list.is_empty() || list.len() > MAX_BANKS {
        return Err(unexpected(
            topic,
            format!("expected 1 to {MAX_BANKS} banks, got {}", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, bank)| {
            let flag = |name: &str| match bank.get(name) {
                None | Some(Json::Null) => Ok(false),
                Some(Json::Bool(b)) => Ok(*b),
                Some(other) => Err(unexpected(
                    topic,
                    format!("bank {i}: `{name}` must be true or false, got {other}"),
                )),
            };
            let slot = match bank.get("slot") {
                Some(Json::Number(n)) => n.as_u64().and_then(|s| u8::try_from(s).ok()),
                None => u8::try_from(i).ok(),
                Some(_) => None,
            }
            .ok_or_else(|| unexpected(topic, format!("bank {i}: `slot` must be 0..=255")))?;
            Ok(BankInfo {
                slot,
                version: text_at(topic, bank, "/version")?,
                active: flag("active")?,
                confirmed: flag("confirmed")?,
                pending: flag("pending")?,
            })
        })
        .collect()
}

/// A batch of log records: `{"records": [...], "next": <index>}`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAnswer {
    /// The records, oldest first.
    pub records: Vec<DeviceLogRecord>,
    /// The device's index to continue after, if it gave one.
    pub next: Option<u64>,
}

/// The answer to a log `fetch`.
pub fn log_answer(topic: &str, json: &Json) -> Result<LogAnswer, PayloadError> {
    let Some(Json::Array(list)) = json.get("records") else {
        return Err(unexpected(
            topic,
            format!(
                "expected `{{\"records\": [...], \"next\": <index>}}`, got {}",
                shown(json)
            ),
        ));
    };
    if list.len() > MAX_LOG_RECORDS {
        return Err(unexpected(
            topic,
            format!(
                "{} records in one answer; at most {MAX_LOG_RECORDS} are accepted (ask for fewer with `max`)",
                list.len()
            ),
        ));
    }
    let records = list
        .iter()
        .enumerate()
        .map(|(i, record)| {
            log_record(record).map_err(|why| unexpected(topic, format!("record {i}: {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let next =
        match json.get("next") {
            None | Some(Json::Null) => records.iter().filter_map(|r| r.index).max(),
            Some(Json::Number(n)) => Some(n.as_u64().ok_or_else(|| {
                unexpected(topic, format!("`next` must be a record index, got {n}"))
            })?),
            Some(other) => {
                return Err(unexpected(
                    topic,
                    format!("`next` must be a record index, got {other}"),
                ));
            }
        };
    Ok(LogAnswer { records, next })
}

/// One log record: `{"index", "time", "severity", "message", "fields"}`; only `message` is
/// required. `time` is RFC 3339 text or seconds since 1970 UTC; `severity` a syslog name
/// (`err`, `warning`, ...) or number 0..=7 (default informational).
pub fn log_record(json: &Json) -> Result<DeviceLogRecord, String> {
    let Json::Object(o) = json else {
        return Err(format!("expected an object, got {}", shown(json)));
    };
    let message = match o.get("message") {
        Some(Json::String(s)) => cut(s, MAX_LOG_MESSAGE),
        Some(other) => return Err(format!("`message` must be text, got {}", shown(other))),
        None => return Err("`message` is missing".to_owned()),
    };
    let index = match o.get("index") {
        None | Some(Json::Null) => None,
        Some(Json::Number(n)) => Some(
            n.as_u64()
                .ok_or_else(|| format!("`index` must be a whole number, got {n}"))?,
        ),
        Some(other) => return Err(format!("`index` must be a number, got {other}")),
    };
    let timestamp = match o.get("time") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(parse_rfc3339(s).ok_or_else(|| {
            format!(
                "`time` {:?} is not RFC 3339 (e.g. 2026-11-24T08:19:42Z)",
                cut(s, 60)
            )
        })?),
        Some(Json::Number(n)) => match n.as_f64() {
            Some(s) if (0.0..1.0e11).contains(&s) => {
                Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s))
            }
            _ => return Err(format!("`time` {n} is not seconds since 1970")),
        },
        Some(other) => return Err(format!("`time` must be text or a number, got {other}")),
    };
    let severity = match o.get("severity") {
        None | Some(Json::Null) => Severity::Informational,
        Some(value) => severity(value)?,
    };
    let fields = match o.get("fields") {
        None | Some(Json::Null) => BTreeMap::new(),
        Some(Json::Object(fields)) => fields
            .iter()
            .take(MAX_LOG_FIELDS)
            .map(|(k, v)| (bounded(k), text_of(v)))
            .collect(),
        Some(other) => return Err(format!("`fields` must be an object, got {}", shown(other))),
    };
    Ok(DeviceLogRecord {
        index,
        timestamp,
        severity,
        message,
        fields,
    })
}

/// A syslog severity from its name (`emerg`, `alert`, `crit`, `err`, `warning`, `notice`,
/// `info`, `debug`, and the long forms) or number 0..=7.
pub fn severity(json: &Json) -> Result<Severity, String> {
    const ALL: [Severity; 8] = [
        Severity::Emergency,
        Severity::Alert,
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Notice,
        Severity::Informational,
        Severity::Debug,
    ];
    let by_code = |code: u64| usize::try_from(code).ok().and_then(|c| ALL.get(c).copied());
    let found = match json {
        Json::Number(n) => n.as_u64().and_then(by_code),
        Json::String(s) => match s.to_ascii_lowercase().as_str() {
            "emerg" | "emergency" | "panic" => Some(Severity::Emergency),
            "alert" => Some(Severity::Alert),
            "crit" | "critical" | "fatal" => Some(Severity::Critical),
            "err" | "error" => Some(Severity::Error),
            "warning" | "warn" => Some(Severity::Warning),
            "notice" => Some(Severity::Notice),
            "info" | "informational" => Some(Severity::Informational),
            "debug" | "trace" => Some(Severity::Debug),
            other => other.parse::<u64>().ok().and_then(by_code),
        },
        _ => None,
    };
    found.ok_or_else(|| {
        format!(
            "`severity` {} is not a syslog severity (a name such as `err` or `warning`, or 0..=7)",
            shown(json)
        )
    })
}

/// Parses RFC 3339 date-time text (`2026-11-24T08:19:42Z`, `2026-11-24T09:19:42.5+01:00`).
/// Times before 1970 are refused.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20
        || b.len() > 40
        || b[4] != b'-'
        || b[7] != b'-'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return None;
        }
        let kept = &fraction[..end.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - u32::try_from(kept.len()).ok()?);
        rest = &fraction[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let seconds = u64::try_from(seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
