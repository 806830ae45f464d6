//! Service descriptions as data: every action with its arguments and access, every state
//! variable with its data type, allowed values and eventing. The SCPD XML, the SOAP argument
//! checks and the authorisation rule are all derived from this one table, so they cannot
//! disagree.

use std::fmt::Write as _;
use std::time::Duration;

use crate::upnp::xml_text::escape;

use super::soap::UpnpError;

/// UDA data types used by our services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// `string`.
    String,
    /// `ui4`.
    Ui4,
    /// `i4`.
    I4,
    /// `boolean`.
    Boolean,
    /// `dateTime.tz` (ISO 8601 with zone; we always write UTC, `Z`).
    DateTime,
}

impl DataType {
    /// The UDA name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Ui4 => "ui4",
            Self::I4 => "i4",
            Self::Boolean => "boolean",
            Self::DateTime => "dateTime.tz",
        }
    }
}

/// A state variable.
#[derive(Debug, Clone, Copy)]
pub struct StateVariable {
    /// Its name.
    pub name: &'static str,
    /// Its data type.
    pub data_type: DataType,
    /// Allowed values (empty: any).
    pub allowed: &'static [&'static str],
    /// Whether changes are evented over GENA.
    pub evented: bool,
    /// For evented variables: at most one event per this period (UDA `maximumRate`).
    pub maximum_rate: Option<Duration>,
}

impl StateVariable {
    /// A non-evented `A_ARG_TYPE_` style variable.
    pub const fn arg(name: &'static str, data_type: DataType) -> Self {
        Self {
            name,
            data_type,
            allowed: &[],
            evented: false,
            maximum_rate: None,
        }
    }

    /// An evented variable.
    pub const fn evented(name: &'static str, data_type: DataType) -> Self {
        Self {
            name,
            data_type,
            allowed: &[],
            evented: true,
            maximum_rate: None,
        }
    }

    /// This variable restricted to `allowed` values.
    pub const fn allowing(mut self, allowed: &'static [&'static str]) -> Self {
        self.allowed = allowed;
        self
    }

    /// This variable moderated to one event per `period`.
    pub const fn at_most_every(mut self, period: Duration) -> Self {
        self.maximum_rate = Some(period);
        self
    }
}

/// Argument direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the control point.
    In,
    /// Returned by the device.
    Out,
}

/// One action argument.
#[derive(Debug, Clone, Copy)]
pub struct Argument {
    /// Its name.
    pub name: &'static str,
    /// Its direction.
    pub direction: Direction,
    /// The state variable that gives its type.
    pub related: &'static str,
}

/// An in argument.
pub const fn input(name: &'static str, related: &'static str) -> Argument {
    Argument {
        name,
        direction: Direction::In,
        related,
    }
}

/// An out argument.
pub const fn output(name: &'static str, related: &'static str) -> Argument {
    Argument {
        name,
        direction: Direction::Out,
        related,
    }
}

/// Who may call an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who can reach the HTTP listener: reads nothing secret, changes nothing.
    ReadOnly,
    /// Only an authenticated operator over HTTPS with a client certificate.
    StateChanging,
}

/// One action.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    /// Its name.
    pub name: &'static str,
    /// Its arguments, in order.
    pub arguments: &'static [Argument],
    /// Who may call it.
    pub access: Access,
    /// When the engine behind it is not built yet: what is missing. The action is declared and
    /// answers UPnPError 602 with this text.
    pub missing: Option<&'static str>,
}

/// A service description.
#[derive(Debug)]
pub struct ServiceSpec {
    /// Service name (`BasicManagement`).
    pub name: &'static str,
    /// Version.
    pub version: u8,
    /// Standard UPnP Forum service (`urn:schemas-upnp-org`) or ours (vendor domain).
    pub standard: bool,
    /// Path segment in the device's URLs.
    pub path: &'static str,
    /// Actions.
    pub actions: &'static [Action],
    /// State variables.
    pub variables: &'static [StateVariable],
}

impl ServiceSpec {
    /// The service type URN.
    pub fn service_type(&self, vendor_domain: &str) -> String {
        if self.standard {
            format!(
                "urn:schemas-upnp-org:service:{}:{}",
                self.name, self.version
            )
        } else {
            format!(
                "urn:{}:service:{}:{}",
                urn_domain(vendor_domain),
                self.name,
                self.version
            )
        }
    }

    /// The service id URN.
    pub fn service_id(&self, vendor_domain: &str) -> String {
        if self.standard {
            format!("urn:upnp-org:serviceId:{}", self.name)
        } else {
            format!("urn:{}:serviceId:{}", urn_domain(vendor_domain), self.name)
        }
    }

    /// The action called `name`.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The state variable called `name`.
    pub fn variable(&self, name: &str) -> Option<&StateVariable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// Whether any variable is evented (the service then has an event URL).
    pub fn is_evented(&self) -> bool {
        self.variables.iter().any(|v| v.evented)
    }

    /// The SCPD document.
    pub fn scpd(&self) -> String {
        let mut x = String::with_capacity(4096);
        x.push_str(
            r#"<?xml version="1.0" encoding="utf-8"?>
<scpd xmlns="urn:schemas-upnp-org:service-1-0">
<specVersion><major>2</major><minor>0</minor></specVersion>
<actionList>
"#,
        );
        for action in self.actions {
            let _ = write!(x, "<action><name>{}</name>", action.name);
            if !action.arguments.is_empty() {
                x.push_str("<argumentList>");
                for arg in action.arguments {
                    let _ = write!(
                        x,
                        "<argument><name>{}</name><direction>{}</direction><relatedStateVariable>{}</relatedStateVariable></argument>",
                        arg.name,
                        match arg.direction {
                            Direction::In => "in",
                            Direction::Out => "out",
                        },
                        arg.related
                    );
                }
                x.push_str("</argumentList>");
            }
            x.push_str("</action>\n");
        }
        x.push_str("</actionList>\n<serviceStateTable>\n");
        for var in self.variables {
            let _ = write!(
                x,
                r#"<stateVariable sendEvents="{}"><name>{}</name><dataType>{}</dataType>"#,
                if var.evented { "yes" } else { "no" },
                var.name,
                var.data_type.as_str()
            );
            if !var.allowed.is_empty() {
                x.push_str("<allowedValueList>");
                for value in var.allowed {
                    let _ = write!(x, "<allowedValue>{}</allowedValue>", escape(value));
                }
                x.push_str("</allowedValueList>");
            }
            x.push_str("</stateVariable>\n");
        }
        x.push_str("</serviceStateTable>\n</scpd>\n");
        x
    }

    /// Checks a call's in arguments against the description: every in argument present, in
    /// order, nothing else (402), and each value valid for its variable's type (600) and
    /// allowed values (600). Returns the values by argument name.
    pub fn check_arguments<'a>(
        &self,
        action: &Action,
        given: &'a [(String, String)],
    ) -> Result<Vec<&'a str>, UpnpError> {
        let expected: Vec<&Argument> = action
            .arguments
            .iter()
            .filter(|a| a.direction == Direction::In)
            .collect();
        let names = |list: &mut dyn Iterator<Item = &str>| list.collect::<Vec<_>>().join(", ");
        if given.len() != expected.len()
            || given
                .iter()
                .zip(&expected)
                .any(|((name, _), arg)| name != arg.name)
        {
            return Err(UpnpError::invalid_args(format!(
                "{} takes the in arguments [{}] in this order; the request had [{}]",
                action.name,
                names(&mut expected.iter().map(|a| a.name)),
                names(&mut given.iter().map(|(n, _)| n.as_str())),
            )));
        }
        let mut values = Vec::with_capacity(given.len());
        for ((name, value), arg) in given.iter().zip(&expected) {
            let Some(var) = self.variable(arg.related) else {
                return Err(UpnpError::action_failed(format!(
                    "internal: {}.{} refers to an undeclared state variable",
                    action.name, arg.related
                )));
            };
            check_value(var, value).map_err(|why| {
                UpnpError::argument_value_invalid(format!(
                    "argument {name} of {}: {why}",
                    action.name
                ))
            })?;
            values.push(value.as_str());
        }
        Ok(values)
    }
}

/// Checks `value` against a variable's data type and allowed values.
fn check_value(var: &StateVariable, value: &str) -> Result<(), String> {
    let ok = match var.data_type {
        DataType::String => true,
        DataType::Ui4 => value.trim().parse::<u32>().is_ok(),
        DataType::I4 => value.trim().parse::<i32>().is_ok(),
        DataType::Boolean => matches!(value.trim(), "0" | "1" | "true" | "false" | "yes" | "no"),
        DataType::DateTime => {
            humantime::parse_rfc3339_weak(value.trim().trim_end_matches('Z')).is_ok()
        }
    };
    if !ok {
        return Err(format!(
            "`{}` is not a valid {}",
            value.chars().take(64).collect::<String>(),
            var.data_type.as_str()
        ));
    }
    if !var.allowed.is_empty() && !var.allowed.contains(&value) {
        return Err(format!(
            "`{}` is not one of {}",
            value.chars().take(64).collect::<String>(),
            var.allowed.join(", ")
        ));
    }
    Ok(())
}

/// A domain name as UDA writes it in URNs: periods become hyphens.
pub fn urn_domain(domain: &str) -> String {
    domain.replace('.', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "Test",
        version: 1,
        standard: false,
        path: "test",
        actions: &[Action {
            name: "Set",
            arguments: &[
                input("Count", "A_ARG_TYPE_Count"),
                input("Mode", "Mode"),
                output("Result", "A_ARG_TYPE_Text"),
            ],
            access: Access::StateChanging,
            missing: None,
        }],
        variables: &[
            StateVariable::arg("A_ARG_TYPE_Count", DataType::Ui4),
            StateVariable::arg("A_ARG_TYPE_Text", DataType::String),
            StateVariable::evented("Mode", DataType::String).allowing(&["On", "Off"]),
        ],
    };

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn the_scpd_should_list_every_action_argument_and_variable() {
        let xml = SPEC.scpd();
        for needle in [
            "<name>Set</name>",
            "<argument><name>Count</name><direction>in</direction><relatedStateVariable>A_ARG_TYPE_Count</relatedStateVariable></argument>",
            "<direction>out</direction>",
            r#"<stateVariable sendEvents="yes"><name>Mode</name><dataType>string</dataType><allowedValueList><allowedValue>On</allowedValue><allowedValue>Off</allowedValue></allowedValueList>"#,
            r#"<stateVariable sendEvents="no"><name>A_ARG_TYPE_Count</name><dataType>ui4</dataType>"#,
        ] {
            assert!(xml.contains(needle), "missing {needle} in\n{xml}");
        }
        assert!(crate::upnp::soap::parse_envelope(xml.as_bytes()).is_err());
    }

    #[test]
    fn urns_should_use_the_vendor_domain_with_hyphens() {
        assert_eq!(
            SPEC.service_type("iotmc-gateway.local"),
            "urn:iotmc-gateway-local:service:Test:1"
        );
        assert_eq!(
            SPEC.service_id("example.com"),
            "urn:example-com:serviceId:Test"
        );
    }

    #[test]
    fn arguments_should_be_checked_for_presence_order_type_and_allowed_values() {
        let action = &SPEC.actions[0];
        assert_eq!(
            SPEC.check_arguments(action, &args(&[("Count", "3"), ("Mode", "On")]))
                .unwrap(),
            ["3", "On"]
        );
        let missing = SPEC
            .check_arguments(action, &args(&[("Count", "3")]))
            .unwrap_err();
        assert_eq!(missing.code, 402);
        assert!(missing.description.contains("[Count, Mode]"), "{missing}");
        let swapped = SPEC
            .check_arguments(action, &args(&[("Mode", "On"), ("Count", "3")]))
            .unwrap_err();
        assert_eq!(swapped.code, 402);
        let bad_type = SPEC
            .check_arguments(action, &args(&[("Count", "-1"), ("Mode", "On")]))
            .unwrap_err();
        assert_eq!(bad_type.code, 600);
        assert!(
            bad_type.description.contains("not a valid ui4"),
            "{bad_type}"
        );
        let not_allowed = SPEC
            .check_arguments(action, &args(&[("Count", "1"), ("Mode", "Dim")]))
            .unwrap_err();
        assert_eq!(not_allowed.code, 600);
        assert!(not_allowed.description.contains("On, Off"), "{not_allowed}");
    }
}
