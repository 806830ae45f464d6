//! The requests a device link makes, in the device's words: reads of points and blocks,
//! writes of parameters and steps, with exceptions turned into errors that say what was asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{LinkError, Profile, Readings, Value, ValueType};

use crate::driver::{BusHandle, Policy, Priority};
use crate::encoding::{Codec, internal_parameter};
use crate::frame::{ExceptionCode, Request, Response, Table};
use crate::plan::{self, Limits, Span};
use crate::profile::{ModbusSection, Point, RawValue, TableName, WriteFunction, WriteStep};

/// A mapped parameter: its declaration, where it lives and how it is encoded.
#[derive(Debug, Clone)]
pub(crate) struct Mapped {
    pub(crate) parameter: Parameter,
    pub(crate) table: Table,
    pub(crate) address: u16,
    pub(crate) codec: Codec,
}

impl Mapped {
    pub(crate) fn span(&self) -> Span {
        Span {
            table: self.table,
            address: self.address,
            count: self.codec.span(),
        }
    }
}

/// Everything a link needs to talk to its device; shared by the link, its poller, its
/// firmware target and its log source.
#[derive(Debug)]
pub(crate) struct Device {
    pub(crate) device_id: String,
    pub(crate) profile: Arc<Profile>,
    pub(crate) section: Arc<ModbusSection>,
    pub(crate) bus: BusHandle,
    pub(crate) unit: u8,
    pub(crate) policy: Policy,
    pub(crate) mapped: BTreeMap<String, Mapped>,
}

/// What a device said to a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteAck {
    /// Done.
    Done,
    /// Exception 05 (acknowledge) or 06 (busy): accepted, still in progress.
    InProgress,
}

impl Device {
    pub(crate) fn new(
        device_id: String,
        profile: Arc<Profile>,
        section: Arc<ModbusSection>,
        bus: BusHandle,
        unit: u8,
    ) -> Self {
        let policy = Policy {
            timeout: profile.poll.timeout,
            retries: profile.poll.retries,
        };
        let mapped = profile
            .parameters
            .iter()
            .filter_map(|parameter| {
                let point = section.parameters.get(&parameter.name)?;
                Some((
                    parameter.name.clone(),
                    Mapped {
                        parameter: parameter.clone(),
                        table: point.table.into(),
                        address: point.address,
                        codec: Codec::new(&section, point),
                    },
                ))
            })
            .collect();
        Self {
            device_id,
            profile,
            section,
            bus,
            unit,
            policy,
            mapped,
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_gap: self.section.max_gap,
            max_registers: self.section.max_read_registers,
            max_bits: self.section.max_read_bits,
        }
    }

    /// Sends one request; an exception becomes [`LinkError::DeviceRefused`] naming `what`.
    pub(crate) async fn call(
        &self,
        request: Request,
        priority: Priority,
        what: &str,
    ) -> Result<Response, LinkError> {
        match self
            .bus
            .call(self.unit, request, priority, self.policy)
            .await?
        {
            Ok(response) => Ok(response),
            Err(code) => Err(refused(code, what)),
        }
    }

    /// Like [`Self::call`], but an exception comes back as it is, for callers that treat some
    /// codes (05, 06, 01) as answers.
    pub(crate) async fn call_raw(
        &self,
        request: Request,
        priority: Priority,
    ) -> Result<Result<Response, ExceptionCode>, LinkError> {
        self.bus
            .call(self.unit, request, priority, self.policy)
            .await
    }

    /// Reads the named mapped parameters with as few requests as the plan allows. Fails as a
    /// whole.
    pub(crate) async fn read_parameters(
        &self,
        names: &[String],
        priority: Priority,
    ) -> Result<Readings, LinkError> {
        let wanted: Vec<&Mapped> = names
            .iter()
            .map(|name| {
                self.mapped
                    .get(name)
                    .ok_or_else(|| LinkError::UnknownParameter { name: name.clone() })
            })
            .collect::<Result<_, _>>()?;
        let spans: Vec<Span> = wanted.iter().map(|m| m.span()).collect();
        let mut readings = Readings::new();
        for block in plan::plan_reads(&spans, self.limits()) {
            let what = format!(
                "reading {} {} for {}",
                block.span.table,
                describe_range(block.span.address, block.span.count),
                block
                    .members
                    .iter()
                    .filter_map(|&i| wanted.get(i))
                    .map(|m| format!("`{}`", m.parameter.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let data = self.read_span(block.span, priority, &what).await?;
            for &i in &block.members {
                let (Some(mapped), Some(span)) = (wanted.get(i), spans.get(i)) else {
                    continue;
                };
                let offset = usize::from(span.address - block.span.address);
                let value = data.decode(mapped, offset)?;
                readings.insert(mapped.parameter.name.clone(), value);
            }
        }
        Ok(readings)
    }

    /// Reads one span (registers or bits).
    pub(crate) async fn read_span(
        &self,
        span: Span,
        priority: Priority,
        what: &str,
    ) -> Result<Data, LinkError> {
        let response = self
            .call(span.table.read(span.address, span.count), priority, what)
            .await?;
        match response {
            Response::ReadHoldingRegisters(words) | Response::ReadInputRegisters(words) => {
                Ok(Data::Words(words))
            }
            Response::ReadCoils(bits) | Response::ReadDiscreteInputs(bits) => Ok(Data::Bits(bits)),
            other => Err(LinkError::Malformed(format!(
                "{what}: unexpected answer {other:?}"
            ))),
        }
    }

    /// Reads one point with a made-up parameter of `value_type` (identity fields, status
    /// registers, versions).
    pub(crate) async fn read_point(
        &self,
        point: &Point,
        value_type: ValueType,
        name: &str,
        priority: Priority,
    ) -> Result<Value, LinkError> {
        let mapped = Mapped {
            parameter: synthetic(name, value_type, point),
            table: point.table.into(),
            address: point.address,
            codec: Codec::new(&self.section, point),
        };
        let what = format!(
            "reading {} {} for {name}",
            mapped.table,
            describe_range(mapped.address, mapped.codec.span())
        );
        let data = self.read_span(mapped.span(), priority, &what).await?;
        data.decode(&mapped, 0)
    }

    /// Writes checked, normalised values of mapped parameters, one request per parameter, in
    /// name order. Every value is encoded before the first request goes out, so a value the
    /// registers cannot hold (between raw steps, outside the encoding) refuses the whole write.
    pub(crate) async fn write_parameters(&self, values: &Readings) -> Result<(), LinkError> {
        let mapped = |name: &String| {
            self.mapped
                .get(name)
                .ok_or_else(|| LinkError::UnknownParameter { name: name.clone() })
        };
        for (name, value) in values {
            // The bits outside a mask do not change what a value encodes to: 0 stands in.
            self.write_request(mapped(name)?, value, Some(0))?;
        }
        for (name, value) in values {
            let mapped = mapped(name)?;
            let what = format!(
                "writing `{name}` to {} {}",
                mapped.table,
                describe_range(mapped.address, mapped.codec.span())
            );
            let current = if !mapped.table.is_bits() && mapped.codec.needs_read_modify_write() {
                match self
                    .read_span(mapped.span(), Priority::Management, &what)
                    .await?
                {
                    Data::Words(words) => words.first().copied(),
                    Data::Bits(_) => None,
                }
            } else {
                None
            };
            let request = self.write_request(mapped, value, current)?;
            self.call(request, Priority::Management, &what).await?;
        }
        Ok(())
    }

    /// The request that writes `value` to `mapped`; `current` is the register's content for
    /// masked points.
    fn write_request(
        &self,
        mapped: &Mapped,
        value: &Value,
        current: Option<u16>,
    ) -> Result<Request, LinkError> {
        if mapped.table.is_bits() {
            return Ok(Request::WriteSingleCoil {
                address: mapped.address,
                value: mapped.codec.encode_bit(&mapped.parameter, value)?,
            });
        }
        let words = mapped
            .codec
            .encode_registers(&mapped.parameter, value, current)?;
        Ok(self.register_write(mapped.address, words))
    }

    /// The request writing `words` from `address`, by the section's write function.
    pub(crate) fn register_write(&self, address: u16, words: Vec<u16>) -> Request {
        match (self.section.write_function, words.as_slice()) {
            (WriteFunction::Auto, [value]) => Request::WriteSingleRegister {
                address,
                value: *value,
            },
            _ => Request::WriteMultipleRegisters {
                address,
                values: words,
            },
        }
    }

    /// Carries out one write step of an action or a firmware operation; `arguments` supplies
    /// values for steps that take one.
    pub(crate) async fn write_step(
        &self,
        step: &WriteStep,
        arguments: &BTreeMap<String, Value>,
        what: &str,
    ) -> Result<WriteAck, LinkError> {
        let request = self.step_request(step, arguments)?;
        match self.call_raw(request, Priority::Management).await? {
            Ok(_) => Ok(WriteAck::Done),
            Err(ExceptionCode::Acknowledge | ExceptionCode::ServerDeviceBusy) => {
                Ok(WriteAck::InProgress)
            }
            Err(code) => Err(refused(code, what)),
        }
    }

    fn step_request(
        &self,
        step: &WriteStep,
        arguments: &BTreeMap<String, Value>,
    ) -> Result<Request, LinkError> {
        let point = step.point();
        let codec = Codec::new(&self.section, &point);
        let (value, value_type) = match (&step.value, &step.argument) {
            (Some(RawValue::Bool(b)), _) => (Value::Bool(*b), ValueType::Bool),
            (Some(RawValue::Int(i)), _) if step.table == TableName::Coil => {
                (Value::Bool(*i != 0), ValueType::Bool)
            }
            (Some(RawValue::Int(i)), _) => (Value::Int(*i), ValueType::Int),
            (None, Some(argument)) => {
                let value =
                    arguments
                        .get(argument)
                        .cloned()
                        .ok_or_else(|| LinkError::WrongType {
                            name: argument.clone(),
                            expected: "a value".to_owned(),
                            got: "nothing (the argument is required)".to_owned(),
                        })?;
                let value_type = match &value {
                    Value::Bool(_) => ValueType::Bool,
                    Value::Int(_) => ValueType::Int,
                    Value::Float(_) => ValueType::Float,
                    Value::Text(_) => ValueType::String,
                };
                (value, value_type)
            }
            (None, None) => {
                return Err(LinkError::Unsupported {
                    operation: format!(
                        "write to {} {}",
                        Table::from(step.table),
                        describe_range(step.address, 1)
                    ),
                    reason: "the profile gives neither `value` nor `argument`".to_owned(),
                });
            }
        };
        let parameter = synthetic("step", value_type, &point);
        if step.table == TableName::Coil {
            return Ok(Request::WriteSingleCoil {
                address: step.address,
                value: codec.encode_bit(&parameter, &value)?,
            });
        }
        let words = codec.encode_registers(&parameter, &value, None)?;
        Ok(self.register_write(step.address, words))
    }
}

/// Registers or bits read in one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

impl Data {
    fn decode(&self, mapped: &Mapped, offset: usize) -> Result<Value, LinkError> {
        let span = usize::from(mapped.codec.span());
        let short = || {
            LinkError::Malformed(format!(
                "the device returned too few values for `{}`",
                mapped.parameter.name
            ))
        };
        match self {
            Data::Words(words) => {
                let slice = words.get(offset..offset + span).ok_or_else(short)?;
                mapped.codec.decode_registers(&mapped.parameter, slice)
            }
            Data::Bits(bits) => {
                let slice = bits.get(offset..offset + span).ok_or_else(short)?;
                mapped.codec.decode_bits(&mapped.parameter, slice)
            }
        }
    }
}

/// A parameter declaration standing in for a point that is not a profile parameter; an enum
/// takes its members from the point's map.
pub(crate) fn synthetic(name: &str, value_type: ValueType, point: &Point) -> Parameter {
    let mut parameter = internal_parameter(name, value_type);
    if value_type == ValueType::Enum {
        parameter.values = point.map.keys().cloned().collect();
    }
    parameter
}

/// The device's refusal, in words that say what was asked.
pub(crate) fn refused(code: ExceptionCode, what: &str) -> LinkError {
    LinkError::DeviceRefused {
        code: code.to_string(),
        detail: Some(what.to_owned()),
    }
}

/// `0x0100` or `0x0100..=0x0103`.
pub(crate) fn describe_range(address: u16, count: u16) -> String {
    if count <= 1 {
        format!("0x{address:04X}")
    } else {
        format!(
            "0x{address:04X}..=0x{:04X}",
            address.saturating_add(count - 1)
        )
    }
}
