//! The services behind the control URLs: checks common to every action (does it exist, may
//! this caller call it, are the arguments right, is its engine built), then the action itself
//! through the adapter contract, and the events its outcome causes.

pub mod batch;
pub mod cms;
pub mod diagnostics;
pub mod errors;
mod firmware;
pub mod lifecycle;
pub mod specs;

pub use firmware::forward_notices;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::upnp::xml_text::escape;
use iotmc_adapter::profile::ActionKind;
use iotmc_adapter::{ActionOutcome, ActionRequest, LinkEvent, Readings};
use uuid::Uuid;

use super::device::{Availability, VirtualDevice};
use super::gena::{EventedVariable, Eventing, Moderation, ServiceKey};
use super::scpd::{Access, ServiceSpec};
use super::soap::{ActionCall, UpnpError};
use crate::registry::Registry;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Plain HTTP, or HTTPS without a client certificate.
    Anonymous,
    /// HTTPS with a client certificate the operator CA issued.
    Operator {
        /// The certificate's subject, for the log.
        subject: String,
    },
    /// HTTPS with a device identity certificate (the issuing CA's or a `[trust] device_cas`
    /// one, not revoked): it may enroll, nothing else that changes state.
    Device {
        /// The certificate's subject.
        subject: String,
        /// The chain presented, leaf first.
        chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    },
    /// HTTPS with a certificate the gateway does not accept: treated as anonymous, and told
    /// why when it tries more.
    Untrusted {
        /// The certificate's subject.
        subject: String,
        /// Why it is refused.
        reason: String,
    },
}

impl Caller {
    /// The operator's certificate subject, when the caller is an operator.
    pub fn operator(&self) -> Option<&str> {
        match self {
            Self::Operator { subject } => Some(subject),
            _ => None,
        }
    }
}

/// The gateway's own root device.
#[derive(Debug, Clone)]
pub struct GatewayInfo {
    /// Its UDN.
    pub udn: Uuid,
    /// Gateway id.
    pub id: String,
    /// Friendly name.
    pub name: String,
}

/// Everything the handlers need.
#[derive(Debug)]
pub struct FaceState {
    /// Vendor domain for URNs and the SSDP header.
    pub vendor_domain: String,
    /// The gateway root device.
    pub gateway: GatewayInfo,
    /// Virtual devices by UDN.
    pub devices: BTreeMap<Uuid, Arc<VirtualDevice>>,
    /// The registry.
    pub registry: Arc<Registry>,
    /// GENA.
    pub eventing: Eventing,
    /// Port of the HTTPS listener, when it runs (for error messages).
    pub https_port: Option<u16>,
    /// Firmware images on offer to devices that pull them (served at `/firmware/<token>`).
    pub offers: Arc<crate::firmware::ImageOffers>,
    /// The firmware engine.
    pub firmware: Arc<crate::firmware::engine::FirmwareEngine>,
    /// The diagnostics engine (every device's log).
    pub diagnostics: crate::diagnostics::DiagnosticsEngine,
    /// Port of the plain HTTP listener (the log URLs point there).
    pub http_port: u16,
    /// Host part of URLs handed out when the request named none: the first served address.
    pub default_host: String,
    /// Who may call over HTTPS (when it is served).
    pub client_trust: Option<Arc<crate::upnp::tls::ClientTrust>>,
    /// Device identities and enrollments (when enrollment is on).
    pub identities: Option<Arc<crate::lifecycle::Identities>>,
    /// The configuration (groups, their defaults and zero-touch rules).
    pub config: Arc<crate::config::Config>,
    /// Where the SSDP face takes its advertised devices (set once SSDP runs).
    pub ssdp_devices:
        std::sync::OnceLock<tokio::sync::watch::Sender<Vec<crate::upnp::ssdp::AdvertisedDevice>>>,
    /// BatchSetValues: the batches running now, and the bound on the finished ones kept.
    pub batches: batch::Batches,
}

impl FaceState {
    /// The managed (not decommissioned) device with this UDN.
    pub fn device(&self, udn: Uuid) -> Option<Arc<VirtualDevice>> {
        self.devices.get(&udn).filter(|d| d.is_active()).cloned()
    }

    /// The managed (not decommissioned) devices.
    pub fn live_devices(&self) -> impl Iterator<Item = &Arc<VirtualDevice>> {
        self.devices.values().filter(|d| d.is_active())
    }
}

/// Takes a decommissioned device off the network face: its services' subscriptions end, and
/// SSDP says byebye for it.
pub fn retire_device(state: &FaceState, device: &VirtualDevice) {
    for spec in specs::DEVICE_SERVICES {
        if spec.is_evented() {
            state.eventing.unregister(&event_key(device.udn, spec));
        }
    }
    if let Some(ssdp) = state.ssdp_devices.get() {
        ssdp.send_replace(crate::upnp::face::advertised_devices(state));
    }
}

/// What a control URL addresses.
#[derive(Debug, Clone)]
pub enum Target {
    /// A virtual device.
    Device(Arc<VirtualDevice>),
    /// The gateway root device.
    Gateway,
}

impl Target {
    /// Its UDN.
    pub fn udn(&self, state: &FaceState) -> Uuid {
        match self {
            Self::Device(d) => d.udn,
            Self::Gateway => state.gateway.udn,
        }
    }
}

/// The GENA key of `spec` on `udn`.
pub fn event_key(udn: Uuid, spec: &ServiceSpec) -> ServiceKey {
    ServiceKey {
        device: udn,
        service_id: spec.name.to_owned(),
    }
}

/// Registers every evented service of every device with GENA, with their current values.
pub fn register_events(state: &FaceState) {
    for device in state.devices.values() {
        for spec in specs::DEVICE_SERVICES {
            if spec.is_evented() {
                state.eventing.register(
                    event_key(device.udn, spec),
                    evented_variables(spec),
                    initial_values(device, spec, &state.firmware),
                );
            }
        }
    }
    for spec in specs::GATEWAY_SERVICES {
        if spec.is_evented() {
            state.eventing.register(
                event_key(state.gateway.udn, spec),
                evented_variables(spec),
                vec![
                    ("InventoryVersion".into(), "1".into()),
                    ("FirmwareCampaignStatus".into(), String::new()),
                    ("EnrollmentUpdate".into(), String::new()),
                ],
            );
        }
    }
}

fn evented_variables(spec: &ServiceSpec) -> Vec<EventedVariable> {
    spec.variables
        .iter()
        .filter(|v| v.evented)
        .map(|v| EventedVariable {
            name: v.name.to_owned(),
            moderation: v
                .maximum_rate
                .map_or(Moderation::None, Moderation::MaximumRate),
        })
        .collect()
}

fn initial_values(
    device: &VirtualDevice,
    spec: &ServiceSpec,
    firmware: &crate::firmware::engine::FirmwareEngine,
) -> Vec<(String, String)> {
    let live = device.live();
    let pairs: Vec<(&str, String)> = match spec.name {
        "BasicManagement" => vec![("DeviceStatus", device.device_status())],
        "ConfigurationManagement" => vec![("ConfigurationUpdate", live.configuration_update)],
        "FirmwareUpdate" => {
            let id = device.record().id;
            vec![
                ("FirmwareAvailable", firmware.available_value(&id)),
                ("FirmwareUpdateStatus", firmware.status_value(&id)),
            ]
        }
        "Diagnostics" => vec![("LastError", live.last_error)],
        "Lifecycle" => vec![
            (
                "LifecycleState",
                device.record().lifecycle.as_str().to_owned(),
            ),
            ("Availability", live.availability.as_str().to_owned()),
        ],
        _ => Vec::new(),
    };
    pairs.into_iter().map(|(n, v)| (n.to_owned(), v)).collect()
}

/// Runs one action call on `target`'s service `spec` for `caller`. `host` is the host (name or
/// address, without port) the caller reached the gateway by, for URLs in answers.
pub async fn call(
    state: &FaceState,
    target: &Target,
    spec: &ServiceSpec,
    call: &ActionCall,
    caller: &Caller,
    host: Option<&str>,
) -> Result<Vec<(&'static str, String)>, UpnpError> {
    let Some(action) = spec.action(&call.action) else {
        return Err(UpnpError::invalid_action(format!(
            "{} has no action {}; its actions are {}",
            spec.name,
            call.action.chars().take(64).collect::<String>(),
            spec.actions
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if action.access == Access::StateChanging && caller.operator().is_none() {
        if let Target::Device(device) = target {
            state.diagnostics.record_limited(
                &device.record().id,
                &format!("refused {}#{}", spec.name, action.name),
                crate::diagnostics::observe::refused_caller(spec.name, action.name),
            );
        }
        let presented = match caller {
            Caller::Untrusted { subject, reason } => {
                format!("the client certificate `{subject}` is not accepted: {reason}; ")
            }
            Caller::Device { subject, .. } => {
                format!("`{subject}` is a device identity certificate, which may only enroll; ")
            }
            _ => String::new(),
        };
        return Err(UpnpError::not_authorized(format!(
            "{presented}{} changes device state and needs an authenticated operator: call it over HTTPS{} with a client certificate issued by the operator CA ([trust] operator_ca)",
            action.name,
            state
                .https_port
                .map(|p| format!(" (port {p})"))
                .unwrap_or_else(|| " (not configured on this gateway: set [trust] gateway_certificate, gateway_key and operator_ca)".into())
        )));
    }
    let args = spec
        .check_arguments(action, &call.arguments)
        .map_err(|mut e| {
            if let Target::Device(device) = target {
                e.description = format!(
                    "{} on {}: {}",
                    action.name,
                    device.describe(),
                    e.description
                );
            }
            e
        })?;
    if let Some(missing) = action.missing {
        return Err(UpnpError::not_implemented(format!(
            "{}#{} is declared but not served yet: {missing}",
            spec.name, action.name
        )));
    }
    let operator = caller.operator();
    if let Some(subject) = operator {
        tracing::info!(operator = %subject, service = spec.name, action = action.name, "state-changing action");
    }
    match target {
        Target::Gateway => gateway_action(state, action.name, &args, caller).await,
        Target::Device(device) => {
            let request = Request {
                spec,
                action: action.name,
                args: &args,
                caller,
                host,
            };
            let result = device_action(state, device, &request).await;
            match &result {
                Err(e) => note_error(state, device, spec.name, action.name, e),
                // ClearDiagnosticsLog records its own outcome.
                Ok(_)
                    if action.access == Access::StateChanging
                        && action.name != "ClearDiagnosticsLog" =>
                {
                    state.diagnostics.record(
                        &device.record().id,
                        crate::diagnostics::observe::action_done(spec.name, action.name, operator),
                    );
                }
                Ok(_) => {}
            }
            result
        }
    }
}

async fn gateway_action(
    state: &FaceState,
    action: &str,
    args: &[&str],
    caller: &Caller,
) -> Result<Vec<(&'static str, String)>, UpnpError> {
    match action {
        "GetInventory" => {
            let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Inventory>"#);
            for device in state.live_devices() {
                let record = device.record();
                let enrollment = state
                    .identities
                    .as_ref()
                    .and_then(|i| i.get(&record.id).ok().flatten())
                    .and_then(|i| i.enrollment);
                xml.push_str(&format!(
                    "<Device><UDN>uuid:{}</UDN><Id>{}</Id><Protocol>{}</Protocol><Address>{}</Address><Profile>{}</Profile><LifecycleState>{}</LifecycleState><Availability>{}</Availability><Group>{}</Group><Enrollment>{}</Enrollment><Evidence>{}</Evidence></Device>",
                    device.udn,
                    escape(record.id.as_str()),
                    escape(record.protocol.as_str()),
                    escape(record.address.as_str()),
                    escape(record.profile.as_str()),
                    record.lifecycle.as_str(),
                    device.live().availability.as_str(),
                    escape(record.group.as_deref().unwrap_or("")),
                    enrollment.as_ref().map_or("", |e| e.outcome.as_str()),
                    escape(enrollment.as_ref().map_or("", |e| e.evidence.as_str())),
                ));
            }
            xml.push_str("</Inventory>");
            Ok(vec![("Inventory", xml)])
        }
        "StartFirmwareCampaign"
        | "PauseFirmwareCampaign"
        | "ResumeFirmwareCampaign"
        | "AbortFirmwareCampaign"
        | "GetFirmwareCampaignStatus" => firmware::campaign_action(state, action, args),
        "BatchSetValues" => batch::batch_set_values(state, args, caller).await,
        "Enroll" | "ApproveEnrollment" | "RejectEnrollment" | "AssignGroup"
        | "DecommissionDevice" => lifecycle::detached(state, action, args, caller).await,
        other => Err(UpnpError::action_failed(format!(
            "internal: {other} has no handler"
        ))),
    }
}

/// One device action call, checked.
struct Request<'a> {
    spec: &'a ServiceSpec,
    action: &'a str,
    args: &'a [&'a str],
    caller: &'a Caller,
    host: Option<&'a str>,
}

async fn device_action(
    state: &FaceState,
    device: &Arc<VirtualDevice>,
    request: &Request<'_>,
) -> Result<Vec<(&'static str, String)>, UpnpError> {
    let args = request.args;
    let arg = |i: usize| args.get(i).copied().unwrap_or_default();
    match (request.spec.name, request.action) {
        ("BasicManagement", "GetDeviceStatus") => {
            Ok(vec![("DeviceStatus", device.device_status())])
        }
        ("BasicManagement", "Reboot") => {
            invoke_kind(state, device, ActionKind::Reboot, "Reboot").await?;
            Ok(Vec::new())
        }
        ("BasicManagement", "BaselineReset") => {
            invoke_kind(state, device, ActionKind::FactoryReset, "BaselineReset").await?;
            Ok(Vec::new())
        }
        ("BasicManagement", "GetLogURIs") => diagnostics::get_log_uris(state, device, request.host),
        ("BasicManagement", "GetLogInfo") => diagnostics::get_log_info(state, device, request.host),
        ("Diagnostics", "GetDiagnosticsLog") => diagnostics::get_log(state, device, args).await,
        ("Diagnostics", "ClearDiagnosticsLog") => {
            diagnostics::clear_log(state, device, args, request.caller)
        }
        ("ConfigurationManagement", "GetSupportedDataModels") => Ok(vec![(
            "SupportedDataModels",
            cms::supported_data_models(&state.vendor_domain),
        )]),
        ("ConfigurationManagement", "GetSupportedParameters") => {
            let depth = arg(1).trim().parse().unwrap_or(0);
            Ok(vec![(
                "Result",
                cms::supported_parameters(device, arg(0), depth)?,
            )])
        }
        ("ConfigurationManagement", "GetValues") => {
            let result = cms::get_values(device, arg(0)).await;
            note_availability(
                state,
                device,
                result.as_ref().map(|(_, readings)| !readings.is_empty()),
            );
            let (list, readings) = result?;
            configuration_changed(state, device, readings, ChangeSource::Device);
            Ok(vec![("ParameterValueList", list)])
        }
        ("ConfigurationManagement", "SetValues") => {
            write_values(state, device, arg(0)).await?;
            Ok(vec![("Status", "ChangesApplied".into())])
        }
        ("ConfigurationManagement", "GetCurrentConfigurationVersion") => Ok(vec![(
            "CurrentConfigurationVersion",
            device
                .record()
                .config_version
                .min(u64::from(u32::MAX))
                .to_string(),
        )]),
        ("ConfigurationManagement", "GetConfigurationUpdate") => Ok(vec![(
            "StateVariableValue",
            device.live().configuration_update,
        )]),
        ("FirmwareUpdate", action) => firmware::device_action(state, device, action, args).await,
        ("Lifecycle", "GetLifecycleState") => {
            let record = device.record();
            Ok(vec![
                ("LifecycleState", record.lifecycle.as_str().to_owned()),
                (
                    "Since",
                    humantime::format_rfc3339_seconds(crate::registry::from_unix_ms(
                        record.lifecycle_since_ms,
                    ))
                    .to_string(),
                ),
                (
                    "Availability",
                    device.live().availability.as_str().to_owned(),
                ),
            ])
        }
        (service, action) => Err(UpnpError::action_failed(format!(
            "internal: {service}#{action} has no handler"
        ))),
    }
}

/// SetValues of `list` on `device` (ConfigurationManagement's action, and each device of a
/// BatchSetValues): checks and writes through the adapter, notes what the exchange said about
/// availability, and events the change.
async fn write_values(
    state: &FaceState,
    device: &VirtualDevice,
    list: &str,
) -> Result<(), UpnpError> {
    let result = cms::set_values(device, list).await;
    note_availability(state, device, result.as_ref().map(|_| true));
    let written = result?;
    configuration_changed(state, device, written, ChangeSource::Write);
    Ok(())
}

/// Invokes the profile action of `kind` (Reboot, BaselineReset).
async fn invoke_kind(
    state: &FaceState,
    device: &Arc<VirtualDevice>,
    kind: ActionKind,
    operation: &str,
) -> Result<(), UpnpError> {
    let Some(spec) = device.profile.actions.iter().find(|a| a.kind == kind) else {
        return Err(UpnpError::not_implemented(format!(
            "{operation} on {}: its profile `{}` declares no action of kind {}; add one to the profile if the device supports it",
            device.describe(),
            device.profile.id,
            match kind {
                ActionKind::Reboot => "reboot",
                ActionKind::FactoryReset => "factory-reset",
                _ => "this kind",
            }
        )));
    };
    let link = device
        .link()
        .map_err(|e| errors::link_error(device, operation, &e))?;
    let result = link
        .invoke(&ActionRequest::new(spec.name.clone()))
        .await
        .map_err(|e| errors::link_error(device, operation, &e));
    note_availability(state, device, result.as_ref().map(|_| true));
    match result {
        Ok(ActionOutcome::Done { .. } | ActionOutcome::Accepted) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Records what an operation learned about the device's availability: `Ok(true)` when it
/// exchanged with the device, `Ok(false)` when it did not need to, or its error. Only an
/// exchange (or a timeout) says anything: refusals of the caller's arguments never reach the
/// device and change nothing.
fn note_availability(state: &FaceState, device: &VirtualDevice, outcome: Result<bool, &UpnpError>) {
    let availability = match outcome {
        Ok(true) => Availability::Online,
        Err(e) if e.code == errors::DEVICE_UNREACHABLE => Availability::Offline,
        Err(e)
            if matches!(
                e.code,
                errors::DEVICE_BUSY | errors::DEVICE_REFUSED | errors::DEVICE_MALFORMED
            ) =>
        {
            Availability::Online
        }
        _ => return,
    };
    set_availability(state, device, availability, SystemTime::now());
}

/// Sets availability and events it when it changed.
pub fn set_availability(
    state: &FaceState,
    device: &VirtualDevice,
    availability: Availability,
    at: SystemTime,
) {
    let previous = device.update_live(|live| {
        if live.availability == availability {
            return None;
        }
        let previous = (live.availability, live.availability_since);
        live.availability = availability;
        live.availability_since = at;
        Some(previous)
    });
    if let Some((was, since)) = previous {
        if availability != Availability::Unknown {
            let previous = format!(
                "{} since {}",
                was.as_str(),
                humantime::format_rfc3339_seconds(since)
            );
            state.diagnostics.record_at(
                &device.record().id,
                at,
                crate::diagnostics::observe::availability(
                    availability == Availability::Online,
                    &previous,
                ),
            );
        }
        tracing::info!(device = %device.record().id, availability = availability.as_str(), "availability changed");
        state.eventing.publish(
            &event_key(device.udn, &specs::LIFECYCLE),
            vec![("Availability".into(), availability.as_str().into())],
        );
        state.eventing.publish(
            &event_key(device.udn, &specs::BASIC_MANAGEMENT),
            vec![("DeviceStatus".into(), device.device_status())],
        );
    }
}

fn note_error(
    state: &FaceState,
    device: &VirtualDevice,
    service: &str,
    action: &str,
    error: &UpnpError,
) {
    // Only failures the device caused; the caller's own mistakes (bad paths, bad values) are
    // answered to the caller and must not overwrite the device's last real error.
    if !(error.code == 501
        || (errors::DEVICE_UNREACHABLE..=errors::DEVICE_MALFORMED).contains(&error.code))
    {
        return;
    }
    let text = format!(
        "{} {}: {}",
        humantime::format_rfc3339_seconds(SystemTime::now()),
        error.code,
        error.description
    );
    state.diagnostics.record_limited(
        &device.record().id,
        &format!("failed {service}#{action} {}", error.code),
        crate::diagnostics::observe::action_failed(service, action, error.code, &error.description),
    );
    device.update_live(|live| live.last_error = text.clone());
    state.eventing.publish(
        &event_key(device.udn, &specs::DIAGNOSTICS),
        vec![("LastError".into(), text)],
    );
}

/// Where a set of values comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSource {
    /// Written through the gateway (SetValues): a value differing from the last known one, or
    /// with none known, is a change.
    Write,
    /// Read from or reported by the device: a value differing from the last known one is a
    /// change. A value with none known (the device did not answer the read at start) is
    /// evented but does not make a new configuration version, since it may be no change.
    Device,
}

/// Events a change of profile parameters, whatever its source (SetValues, a read, the device's
/// own report). Values equal to the last known ones are not changes. The configuration version
/// is bumped (and persisted) when a writable parameter changed, evented or not; measurements
/// alone do not make a new configuration. Parameters the profile marks `evented = false` are
/// not listed in the event.
pub fn configuration_changed(
    state: &FaceState,
    device: &VirtualDevice,
    values: Readings,
    source: ChangeSource,
) {
    // (name, whether it certainly differs from what was known before).
    let changed: Vec<(String, bool)> = device.update_live(|live| {
        let changed = values
            .iter()
            .filter_map(|(n, v)| match live.known.get(n) {
                Some(known) if known == v => None,
                Some(_) => Some((n.clone(), true)),
                None => Some((n.clone(), source == ChangeSource::Write)),
            })
            .collect();
        live.known.extend(values);
        changed
    });
    let certain: Vec<String> = changed
        .iter()
        .filter(|(_, certain)| *certain)
        .map(|(n, _)| n.clone())
        .collect();
    let bump = cms::is_configuration_change(device, &certain);
    let names: Vec<String> = changed
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| device.profile.parameter(n).is_some_and(|p| p.evented))
        .collect();
    if names.is_empty() && !bump {
        return;
    }

    let mut version = device.record().config_version;
    if bump {
        match state.registry.bump_config_version(&device.record().id) {
            Ok(v) => {
                version = v;
                device.update_record(|r| r.config_version = v);
            }
            Err(e) => {
                tracing::error!(device = %device.record().id, error = %e, "cannot persist the configuration version");
            }
        }
    }
    let value = cms::configuration_update(version, SystemTime::now(), &names);
    device.update_live(|live| live.configuration_update = value.clone());
    state.eventing.publish(
        &event_key(device.udn, &specs::CONFIGURATION_MANAGEMENT),
        vec![("ConfigurationUpdate".into(), value)],
    );
}

/// Follows a device's link events until the link's sender goes away: value changes become
/// ConfigurationUpdate events, availability changes Lifecycle and BasicManagement events.
pub async fn follow_link_events(state: Arc<FaceState>, device: Arc<VirtualDevice>) {
    let Some(link) = device.link.clone() else {
        return;
    };
    let mut events = link.events();
    loop {
        let event = events.recv().await;
        // A decommissioned device's reports are no longer the gateway's business.
        if !device.is_active() {
            return;
        }
        match event {
            Ok(LinkEvent::Changed { values, .. }) => {
                configuration_changed(&state, &device, values, ChangeSource::Device);
                set_availability(&state, &device, Availability::Online, SystemTime::now());
            }
            Ok(LinkEvent::Availability { at, availability }) => {
                let availability = match availability {
                    iotmc_adapter::Availability::Online => Availability::Online,
                    iotmc_adapter::Availability::Offline => Availability::Offline,
                };
                set_availability(&state, &device, availability, at);
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(device = %device.record().id, missed, "link events lagged; some value changes were not evented");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
