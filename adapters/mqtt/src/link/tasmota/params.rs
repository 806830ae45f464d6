//! Reads, writes and actions: parameters read by their command (empty payload) or from a
//! `Status <n>` answer, each command and status asked once per read; writes encoded and checked
//! before the first command goes out, each confirmed by the value the device echoes.

use std::collections::BTreeMap;

use iotmc_adapter::{ActionOutcome, ActionRequest, LinkError, Readings, Value};
use serde_json::{Map, Value as Json};

use super::device::{Device, describe};
use crate::codec::tasmota::{Expect, Prefix, decode_value, encode_value, lookup, same_value};
use crate::profile::tasmota::placeholders;

/// Where a parameter is read from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Command(String),
    Status(u8),
}

impl Device {
    /// Reads `names`, all or nothing.
    pub(super) async fn read(&self, names: &[String]) -> Result<Readings, LinkError> {
        self.profile.check_read(names)?;
        let mut sources: BTreeMap<Source, Option<Map<String, Json>>> = BTreeMap::new();
        for name in names {
            sources.insert(self.source(name)?, None);
        }
        for (source, answer) in &mut sources {
            *answer = Some(match source {
                Source::Command(command) => {
                    self.command(command, "", Expect::Result(command.clone()))
                        .await?
                }
                Source::Status(n) => {
                    self.command("Status", &n.to_string(), Expect::Status(*n))
                        .await?
                }
            });
        }
        let mut readings = Readings::new();
        for name in names {
            let source = self.source(name)?;
            let answer = sources
                .get(&source)
                .and_then(Option::as_ref)
                .ok_or(LinkError::Closed)?;
            readings.insert(name.clone(), self.value_in(name, &source, answer)?);
        }
        Ok(readings)
    }

    fn source(&self, name: &str) -> Result<Source, LinkError> {
        let mapping = self
            .mappings
            .get(name)
            .ok_or_else(|| LinkError::UnknownParameter {
                name: name.to_owned(),
            })?;
        match (&mapping.map.command, mapping.map.status) {
            (_, Some(n)) => Ok(Source::Status(n)),
            (Some(command), None) => Ok(Source::Command(command.clone())),
            (None, None) => Err(LinkError::Unsupported {
                operation: format!("reading `{name}`"),
                reason: "its [mqtt.tasmota] mapping gives neither a command nor a status"
                    .to_owned(),
            }),
        }
    }

    /// The value of parameter `name` in `answer`, which came from `source`.
    fn value_in(
        &self,
        name: &str,
        source: &Source,
        answer: &Map<String, Json>,
    ) -> Result<Value, LinkError> {
        let mapping = &self.mappings[name];
        let (what, topic) = match source {
            Source::Command(c) => (describe(c, ""), self.topics.topic(Prefix::Stat, "RESULT")),
            Source::Status(n) => (
                describe("Status", &n.to_string()),
                self.topics.topic(Prefix::Stat, &format!("STATUS{n}")),
            ),
        };
        let json = Json::Object(answer.clone());
        let found = lookup(&json, &mapping.map.pointer).ok_or_else(|| {
            LinkError::Malformed(format!(
                "the answer of device `{}` to {what} on {topic} has nothing at `{}` for `{name}` (it was {json}); check the pointer in the profile",
                self.id, mapping.map.pointer
            ))
        })?;
        decode_value(&mapping.parameter, &mapping.values, found).map_err(|reason| {
            LinkError::Malformed(format!(
                "`{name}` at `{}` in the answer of device `{}` to {what} on {topic}: {reason}",
                mapping.map.pointer, self.id
            ))
        })
    }

    /// Writes `values`: every value checked and encoded first, then one command each, each
    /// confirmed by its echo. Tasmota has no transactions: when a later command fails, the
    /// earlier ones stay applied (the error says so).
    pub(super) async fn write(&self, values: &Readings) -> Result<(), LinkError> {
        let values = self.profile.check_write(values)?;
        let mut plan = Vec::with_capacity(values.len());
        for (name, value) in &values {
            let mapping = self
                .mappings
                .get(name)
                .ok_or_else(|| LinkError::UnknownParameter { name: name.clone() })?;
            let command = mapping
                .map
                .command
                .clone()
                .ok_or_else(|| LinkError::Unsupported {
                    operation: format!("writing `{name}`"),
                    reason: "its [mqtt.tasmota] mapping has no command that sets it".to_owned(),
                })?;
            let payload =
                encode_value(&mapping.parameter, &mapping.values, value).map_err(|reason| {
                    LinkError::OutOfRange {
                        name: name.clone(),
                        value: value.to_string(),
                        expected: reason,
                    }
                })?;
            plan.push((name, command, payload, value));
        }
        let mut done: Vec<&str> = Vec::new();
        for (name, command, payload, value) in plan {
            let result = async {
                let answer = self.command(&command, &payload, Expect::Result(command.clone())).await?;
                let echoed = self.value_in(name, &Source::Command(command.clone()), &answer)?;
                if same_value(&self.mappings[name].parameter, &echoed, value) {
                    Ok(())
                } else {
                    Err(LinkError::DeviceRefused {
                        code: format!("{command} kept {echoed}"),
                        detail: Some(format!(
                            "device `{}` was sent {} and answered {}: it did not take {value} for `{name}`",
                            self.id,
                            describe(&command, &payload),
                            Json::Object(answer)
                        )),
                    })
                }
            }
            .await;
            if let Err(e) = result {
                return Err(with_done(e, &done));
            }
            done.push(name);
        }
        Ok(())
    }

    /// Runs a declared action.
    pub(super) async fn invoke(&self, request: &ActionRequest) -> Result<ActionOutcome, LinkError> {
        let spec = self
            .profile
            .action(&request.name)
            .ok_or_else(|| LinkError::UnknownAction {
                name: request.name.clone(),
            })?;
        let arguments = spec.check_arguments(&request.arguments)?;
        let map =
            self.section
                .actions
                .get(&request.name)
                .ok_or_else(|| LinkError::Unsupported {
                    operation: format!("action `{}`", request.name),
                    reason: "the profile's [mqtt.tasmota] section does not map it".to_owned(),
                })?;
        let mut payload = map.payload.clone();
        for name in placeholders(&map.payload).unwrap_or_default() {
            if let Some(value) = arguments.get(name) {
                payload = payload.replace(&format!("{{{name}}}"), &argument_text(value));
            }
        }
        let answer = self
            .command(&map.command, &payload, Expect::Result(map.command.clone()))
            .await?;
        if map.restarts {
            return Ok(ActionOutcome::Accepted);
        }
        Ok(ActionOutcome::Done {
            output: BTreeMap::from([(
                "result".to_owned(),
                Value::Text(Json::Object(answer).to_string()),
            )]),
        })
    }
}

/// An argument as a command payload takes it.
fn argument_text(value: &Value) -> String {
    match value {
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Text(t) => t.clone(),
    }
}

/// Adds to an error which parameters of the same write were already set.
fn with_done(error: LinkError, done: &[&str]) -> LinkError {
    if done.is_empty() {
        return error;
    }
    let note = format!(
        "; already set by this write: {} (Tasmota applies each command on its own)",
        done.join(", ")
    );
    match error {
        LinkError::DeviceRefused { code, detail } => LinkError::DeviceRefused {
            code,
            detail: Some(format!("{}{note}", detail.unwrap_or_default())),
        },
        LinkError::Transport(text) => LinkError::Transport(format!("{text}{note}")),
        LinkError::Malformed(text) => LinkError::Malformed(format!("{text}{note}")),
        other => {
            tracing::warn!(error = %other, "a write failed after setting {}", done.join(", "));
            other
        }
    }
}
