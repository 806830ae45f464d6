//! Why a `ctl` command failed, in words that say which device, which action, what the gateway
//! answered, and which flag or file to check.

use serde::Serialize;

use crate::upnp::client::{ClientError, TlsFailure};

use super::session::Settings;

/// What a failed action was called on.
#[derive(Debug, Clone, Copy)]
pub(super) enum Subject<'a> {
    /// The gateway's own root device, about nothing in particular.
    Gateway,
    /// The gateway's own root device, about this device (its label).
    About(&'a str),
    /// This device (its label).
    Device(&'a str),
}

/// A failed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct CtlError {
    /// What kind of failure: `usage`, `file`, `connect`, `tls`, `timeout`, `http`, `upnp`,
    /// `malformed`, `not-found`, `not-confirmed`.
    pub(super) kind: &'static str,
    /// The whole message.
    pub(super) message: String,
    /// What to check or do, when the message alone does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hint: Option<String>,
    /// The UPnP action that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) action: Option<String>,
    /// The device it was for (as given, or its id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) device: Option<String>,
    /// The UPnP error code, when the gateway answered one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) upnp_error_code: Option<u16>,
    /// The UPnP error description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) upnp_error_description: Option<String>,
}

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  {hint}")?;
        }
        Ok(())
    }
}

impl CtlError {
    /// A mistake on the command line or in the environment.
    pub(super) fn usage(message: impl Into<String>) -> Self {
        Self::plain("usage", message.into())
    }

    /// Any other failure without a UPnP action behind it.
    pub(super) fn plain(kind: &'static str, message: String) -> Self {
        Self {
            kind,
            message,
            hint: None,
            action: None,
            device: None,
            upnp_error_code: None,
            upnp_error_description: None,
        }
    }

    /// `action` on `subject` failed with `error`; `settings` give the flags to name in the
    /// hint.
    pub(super) fn action(
        settings: &Settings,
        action: &str,
        subject: Subject<'_>,
        error: ClientError,
    ) -> Self {
        let (on, device) = match subject {
            Subject::Gateway => (
                format!("{action} on the gateway at {}", settings.gateway),
                None,
            ),
            Subject::About(device) => (format!("{action} for {device}"), Some(device)),
            Subject::Device(device) => (format!("{action} on {device}"), Some(device)),
        };
        let (kind, hint) = hint(settings, matches!(subject, Subject::Device(_)), &error);
        let (code, description) = match &error {
            ClientError::Upnp { code, description } => (Some(*code), Some(description.clone())),
            _ => (None, None),
        };
        Self {
            kind,
            message: format!("{on}: {error}"),
            hint,
            action: Some(action.to_owned()),
            device: device.map(str::to_owned),
            upnp_error_code: code,
            upnp_error_description: description,
        }
    }
}

/// What to check when the gateway refused the operator certificate (at the TLS handshake, or
/// with a 606 naming why).
fn refused_certificate(settings: &Settings) -> String {
    format!(
        "the gateway refused the client certificate: check --cert{} (IOTMC_CTL_CERT) is issued by the gateway's [trust] operator_ca and has not expired or been revoked",
        settings
            .cert
            .as_ref()
            .map_or_else(String::new, |p| format!(" ({})", p.display()))
    )
}

/// The kind of `error` and what to check, naming the flags and files in `settings`.
fn hint(
    settings: &Settings,
    on_device: bool,
    error: &ClientError,
) -> (&'static str, Option<String>) {
    let shown = |path: &Option<std::path::PathBuf>| {
        path.as_ref()
            .map_or_else(String::new, |p| format!(" ({})", p.display()))
    };
    match error {
        ClientError::Request(_) => ("usage", None),
        ClientError::File { .. } => ("file", None),
        ClientError::Connect { .. } => (
            "connect",
            Some(format!(
                "check --gateway {} (IOTMC_CTL_GATEWAY): the gateway must run and listen there ([listen] https for https://)",
                settings.gateway
            )),
        ),
        ClientError::Tls { failure, .. } => (
            "tls",
            Some(match failure {
                TlsFailure::ClientRefused => refused_certificate(settings),
                TlsFailure::ClientCertificateRequired => {
                    "the gateway requires a client certificate: give --cert and --key (IOTMC_CTL_CERT, IOTMC_CTL_KEY)".into()
                }
                TlsFailure::ServerNotTrusted => format!(
                    "the gateway's certificate is not trusted: check --ca{} (IOTMC_CTL_CA) is the CA that issued the gateway's [trust] gateway_certificate",
                    shown(&settings.ca)
                ),
                TlsFailure::ServerName => format!(
                    "the gateway's certificate does not name the host in --gateway {}: use the name or address it was issued for",
                    settings.gateway
                ),
                TlsFailure::Other => format!(
                    "check --gateway {} is the gateway's HTTPS listener ([listen] https)",
                    settings.gateway
                ),
            }),
        ),
        ClientError::Timeout { .. } => (
            "timeout",
            Some(format!(
                "no answer within --timeout {}: retry, raise --timeout, or check the gateway's log",
                humantime::format_duration(settings.timeout)
            )),
        ),
        ClientError::Http { status: 404, .. } if !on_device => (
            "http",
            Some(
                "the gateway has no such root device: check --gateway-id (its [gateway] id; IOTMC_CTL_GATEWAY_ID) or --gateway-udn"
                    .into(),
            ),
        ),
        ClientError::Http { status: 404, .. } => (
            "http",
            Some("the gateway serves no such device: list them with `iotmc-gateway ctl devices`".into()),
        ),
        ClientError::Http { .. } => ("http", None),
        ClientError::Upnp { code: 606, .. } if settings.cert.is_some() => (
            "upnp",
            Some(refused_certificate(settings)),
        ),
        ClientError::Upnp { code: 606, .. } => (
            "upnp",
            Some(
                "no client certificate was given: give an operator certificate with --cert FILE --key FILE (IOTMC_CTL_CERT, IOTMC_CTL_KEY), issued by the gateway's [trust] operator_ca, and an https:// --gateway"
                    .into(),
            ),
        ),
        ClientError::Upnp { code: 602, .. } => (
            "upnp",
            Some("this gateway does not serve the action yet (the description says what is missing)".into()),
        ),
        ClientError::Upnp { .. } => ("upnp", None),
        ClientError::Malformed(_) => (
            "malformed",
            Some(format!(
                "the reply is not what a gateway answers: check --gateway {} points at an iotmc-gateway",
                settings.gateway
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cert: Option<&str>) -> Settings {
        Settings {
            gateway: "https://gw:8443".into(),
            ca: Some("/etc/ctl/ca.pem".into()),
            cert: cert.map(Into::into),
            key: cert.map(|_| "/etc/ctl/op.key".into()),
            gateway_udn: None,
            vendor_domain: "iotmc-gateway.local".into(),
            timeout: std::time::Duration::from_secs(30),
            json: false,
        }
    }

    #[test]
    fn a_upnp_error_should_name_action_device_code_and_description() {
        let error = CtlError::action(
            &settings(Some("/etc/ctl/op.pem")),
            "SetValues",
            Subject::Device("thermostat-1 (uuid:1)"),
            ClientError::Upnp {
                code: 704,
                description: "setpoint 99 is above 30".into(),
            },
        );
        assert_eq!(
            error.message,
            "SetValues on thermostat-1 (uuid:1): UPnPError 704: setpoint 99 is above 30"
        );
        assert_eq!((error.kind, error.upnp_error_code), ("upnp", Some(704)));
        assert_eq!(error.hint, None);
    }

    #[test]
    fn a_606_without_a_certificate_should_say_to_give_one() {
        let error = CtlError::action(
            &settings(None),
            "SetValues",
            Subject::Device("t"),
            ClientError::Upnp {
                code: 606,
                description: "needs an operator".into(),
            },
        );
        let text = error.to_string();
        assert!(text.contains("UPnPError 606: needs an operator"), "{text}");
        assert!(text.contains("--cert FILE --key FILE"), "{text}");
    }

    #[test]
    fn a_606_despite_a_certificate_should_say_to_check_it() {
        let error = CtlError::action(
            &settings(Some("/etc/ctl/op.pem")),
            "SetValues",
            Subject::Device("t"),
            ClientError::Upnp {
                code: 606,
                description: "the client certificate is not accepted".into(),
            },
        );
        let text = error.to_string();
        assert!(
            text.contains(
                "the gateway refused the client certificate: check --cert (/etc/ctl/op.pem)"
            ),
            "{text}"
        );
    }

    #[test]
    fn tls_refusals_should_name_the_flag_and_file_to_check() {
        let tls = |failure| ClientError::Tls {
            address: "gw:8443".into(),
            failure,
            why: "received fatal alert: UnknownCA".into(),
        };
        let refused = CtlError::action(
            &settings(Some("/etc/ctl/op.pem")),
            "GetInventory",
            Subject::Gateway,
            tls(TlsFailure::ClientRefused),
        )
        .to_string();
        assert!(
            refused.contains("GetInventory on the gateway at https://gw:8443"),
            "{refused}"
        );
        assert!(
            refused.contains(
                "the gateway refused the client certificate: check --cert (/etc/ctl/op.pem)"
            ),
            "{refused}"
        );
        assert!(refused.contains("[trust] operator_ca"), "{refused}");
        let untrusted = CtlError::action(
            &settings(None),
            "GetInventory",
            Subject::Gateway,
            tls(TlsFailure::ServerNotTrusted),
        )
        .to_string();
        assert!(
            untrusted.contains("check --ca (/etc/ctl/ca.pem)"),
            "{untrusted}"
        );
    }

    #[test]
    fn a_404_should_point_at_the_gateway_id_or_the_device() {
        let not_found = || ClientError::Http {
            status: 404,
            body: "nothing at".into(),
        };
        let gateway = CtlError::action(
            &settings(None),
            "GetInventory",
            Subject::Gateway,
            not_found(),
        );
        assert!(gateway.to_string().contains("--gateway-id"), "{gateway}");
        let device = CtlError::action(
            &settings(None),
            "SetValues",
            Subject::Device("t"),
            not_found(),
        );
        assert!(device.to_string().contains("ctl devices"), "{device}");
    }

    #[test]
    fn the_json_form_should_carry_the_upnp_error() {
        let error = CtlError::action(
            &settings(None),
            "ApproveEnrollment",
            Subject::About("relay-1"),
            ClientError::Upnp {
                code: 602,
                description: "not yet".into(),
            },
        );
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(json["upnp_error_code"], 602);
        assert_eq!(json["action"], "ApproveEnrollment");
        assert_eq!(json["device"], "relay-1");
        assert_eq!(json["kind"], "upnp");
    }
}
