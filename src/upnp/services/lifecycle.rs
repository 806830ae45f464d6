//! The management controller's lifecycle actions on the gateway's root device (DESIGN.md §5):
//! Enroll (a device presenting its identity certificate over mutual TLS), ApproveEnrollment,
//! RejectEnrollment, AssignGroup and DecommissionDevice; and the one place lifecycle moves are
//! persisted, evented and logged.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use iotmc_adapter::{IdentityEvidence, Readings, Value};
use sha2::Digest as _;

use super::specs::{LIFECYCLE, MANAGEMENT_CONTROLLER};
use super::{Caller, ChangeSource, FaceState, configuration_changed, errors, event_key};
use crate::config::{ApprovalMode, GroupConfig};
use crate::diagnostics::observe;
use crate::lifecycle::{Enrollment, Identities, IdentityRecord, LifecycleState, Outcome};
use crate::upnp::device::VirtualDevice;
use crate::upnp::soap::UpnpError;
use crate::upnp::xml_text::escape;
use crate::utc::unix_ms;

/// The device's lifecycle state does not allow the request.
pub const WRONG_STATE: u16 = 718;
/// The group's initial configuration could not be applied or was not confirmed.
pub const NOT_CONFIRMED: u16 = 719;

/// How long the controller waits for a device's identity evidence at enrollment.
const EVIDENCE_TIMEOUT: Duration = Duration::from_secs(10);

type Answer = Result<Vec<(&'static str, String)>, UpnpError>;

/// Runs a lifecycle action on a task of its own and waits for it: a caller that goes away (a
/// dropped connection, the request timeout) must not cut an approval or a decommissioning
/// halfway; it finishes, and a repeated call sees the outcome.
pub(super) async fn detached(
    state: &FaceState,
    action: &str,
    args: &[&str],
    caller: &Caller,
) -> Answer {
    let Some(face) = state.batches.face() else {
        return dispatch(state, action, args, caller).await;
    };
    let action = action.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let caller = caller.clone();
    tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dispatch(&face, &action, &args, &caller).await
    })
    .await
    .unwrap_or_else(|e| {
        Err(UpnpError::action_failed(format!(
            "the lifecycle operation stopped ({e}); call it again to see where it stands"
        )))
    })
}

async fn dispatch(state: &FaceState, action: &str, args: &[&str], caller: &Caller) -> Answer {
    match action {
        "Enroll" => enroll(state, args, caller).await,
        "ApproveEnrollment" => approve(state, args, caller).await,
        "RejectEnrollment" => reject(state, args, caller).await,
        "AssignGroup" => assign_group(state, args, caller).await,
        "DecommissionDevice" => decommission(state, args, caller).await,
        other => Err(UpnpError::action_failed(format!(
            "internal: {other} is not a lifecycle action"
        ))),
    }
}

/// Enroll(DeviceDescriptionURL) -> EnrollmentState, DeviceUDN, Detail.
async fn enroll(state: &FaceState, args: &[&str], caller: &Caller) -> Answer {
    let chain = match caller {
        Caller::Device { chain, .. } => chain,
        Caller::Untrusted { subject, reason } => {
            return Err(UpnpError::not_authorized(format!(
                "Enroll refused: the client certificate `{subject}` is not accepted: {reason}"
            )));
        }
        Caller::Operator { subject } => {
            return Err(UpnpError::not_authorized(format!(
                "Enroll refused: `{subject}` is an operator certificate; a device enrolls with its own identity certificate"
            )));
        }
        Caller::Anonymous => {
            return Err(UpnpError::not_authorized(format!(
                "Enroll needs mutual TLS: call it over HTTPS{} presenting the device's identity certificate (issued by the gateway's issuing CA or a CA of [trust] device_cas)",
                state
                    .https_port
                    .map(|p| format!(" (port {p})"))
                    .unwrap_or_default()
            )));
        }
    };
    let identities = identities(state)?;
    let description_url = bounded(arg(args, 0), "none given");
    let Some(leaf) = chain.first() else {
        return Err(UpnpError::not_authorized("Enroll refused: no certificate"));
    };
    let presented = Presented::parse(leaf.as_ref())?;
    let Some(device) = presented.device(state) else {
        return Err(UpnpError::not_implemented(format!(
            "Enroll: the certificate `{}` (issued by `{}`) names no device this gateway manages; enrollment of native UPnP devices (certificates of [trust] device_cas) is not served yet, only of the devices declared in the gateway's config",
            presented.subject, presented.issuer
        )));
    };
    let id = device.record().id;
    let _serial = lock(&device).await;
    let current = identities
        .get(&id)
        .map_err(|e| storage(&device, "Enroll", &e))?;
    // The whole certificate, not only its serial: another CA's certificate with the same
    // serial and name is not this identity.
    let Some(mut identity) = current.filter(|i| is_same_certificate(&i.certificate_pem, leaf))
    else {
        return Err(UpnpError::not_authorized(format!(
            "Enroll refused for {}: the certificate with serial {} is not its current identity (superseded or revoked); enroll with the certificate the gateway issued last",
            device.describe(),
            presented.serial
        )));
    };
    let record = device.record();
    let answer = |identity: &IdentityRecord, detail: String| {
        let outcome = identity
            .enrollment
            .as_ref()
            .map_or("pending", |e| e.outcome.as_str());
        Ok(vec![
            ("EnrollmentState", outcome.to_owned()),
            ("DeviceUDN", format!("uuid:{}", device.udn)),
            ("Detail", detail),
        ])
    };
    match record.lifecycle {
        LifecycleState::Commissioned | LifecycleState::Maintenance => {
            return answer(
                &identity,
                format!(
                    "commissioned in group {}",
                    record.group.as_deref().unwrap_or("(none)")
                ),
            );
        }
        LifecycleState::Provisioned => {
            if let Some(Enrollment {
                serial,
                outcome: Outcome::Rejected { reason, by, .. },
                ..
            }) = &identity.enrollment
                && *serial == identity.serial
            {
                return answer(&identity, format!("rejected by {by}: {reason}"));
            }
        }
        LifecycleState::PendingApproval => {}
        LifecycleState::Manufactured | LifecycleState::Decommissioned => {
            return Err(wrong_state(&device, "Enroll", record.lifecycle));
        }
    }

    // The adapter's evidence, asked afresh: a proof of possession answers this request.
    let (evidence, unobtained) = match device.link() {
        Ok(link) => match tokio::time::timeout(EVIDENCE_TIMEOUT, link.identify()).await {
            Ok(Ok(found)) => (found.evidence, None),
            Ok(Err(e)) => {
                tracing::warn!(device = %id, error = %e, "no identity evidence: the device did not identify itself");
                (IdentityEvidence::None, Some(e.to_string()))
            }
            Err(_) => (
                IdentityEvidence::None,
                Some(format!("no answer within {EVIDENCE_TIMEOUT:?}")),
            ),
        },
        Err(e) => (IdentityEvidence::None, Some(e.to_string())),
    };
    let fingerprint = evidence_sha256(&evidence);
    if record.lifecycle == LifecycleState::Provisioned {
        identity.enrollment = Some(Enrollment {
            at_ms: unix_ms(SystemTime::now()),
            serial: identity.serial.clone(),
            evidence: evidence.kind_name().to_owned(),
            evidence_sha256: fingerprint.clone(),
            outcome: Outcome::Pending,
        });
        identities
            .put(&identity)
            .map_err(|e| storage(&device, "Enroll", &e))?;
        move_to(
            state,
            &device,
            LifecycleState::PendingApproval,
            // The evidence's fingerprint stays in the identity record: the diagnostics log
            // and the events are readable without a certificate.
            &format!(
                "enrolled over mutual TLS with certificate {} (description {description_url}; evidence: {})",
                identity.serial,
                evidence.kind_name(),
            ),
        )?;
    }
    match decide(
        state,
        &device,
        &evidence,
        unobtained.as_deref(),
        fingerprint.as_deref(),
    ) {
        Decision::ZeroTouch(group) => {
            let by = format!("zero-touch rule of group {}", group.name);
            match commission(state, &device, &group, &by).await {
                Ok(applied) => {
                    let identity = identities
                        .get(&id)
                        .map_err(|e| storage(&device, "Enroll", &e))?
                        .unwrap_or(identity);
                    answer(&identity, format!("approved by {by}; {applied}"))
                }
                Err(e) => answer(
                    &identity,
                    format!(
                        "waiting: zero-touch approval into group {} failed ({}); it is tried again when the device enrolls again (at the gateway's next start), or an operator approves",
                        group.name, e.description
                    ),
                ),
            }
        }
        Decision::Manual(why) => answer(&identity, format!("waiting for an operator: {why}")),
    }
}

/// ApproveEnrollment(DeviceUDN, Group) -> LifecycleState.
async fn approve(state: &FaceState, args: &[&str], caller: &Caller) -> Answer {
    let device = find(state, arg(args, 0), "ApproveEnrollment")?;
    let _serial = lock(&device).await;
    let record = device.record();
    let rejected = record.lifecycle == LifecycleState::Provisioned
        && enrollment(state, &device)?
            .is_some_and(|e| matches!(e.outcome, Outcome::Rejected { .. }));
    if record.lifecycle != LifecycleState::PendingApproval && !rejected {
        return Err(wrong_state(&device, "ApproveEnrollment", record.lifecycle));
    }
    let name = match arg(args, 1).trim() {
        "" => record.group.clone().ok_or_else(|| {
            UpnpError::argument_value_invalid(format!(
                "ApproveEnrollment of {}: it has no group in the config, so give Group; declared groups: {}",
                device.describe(),
                group_names(state)
            ))
        })?,
        name => name.to_owned(),
    };
    let group = group(state, &device, "ApproveEnrollment", &name)?;
    let operator = caller.operator().unwrap_or("an operator");
    if rejected {
        move_to(
            state,
            &device,
            LifecycleState::PendingApproval,
            &format!("rejection overruled by operator {operator}"),
        )?;
    }
    commission(state, &device, &group, &format!("operator {operator}")).await?;
    Ok(vec![(
        "LifecycleState",
        device.record().lifecycle.as_str().to_owned(),
    )])
}

/// RejectEnrollment(DeviceUDN, Reason).
async fn reject(state: &FaceState, args: &[&str], caller: &Caller) -> Answer {
    let device = find(state, arg(args, 0), "RejectEnrollment")?;
    let _serial = lock(&device).await;
    let record = device.record();
    if record.lifecycle != LifecycleState::PendingApproval {
        return Err(wrong_state(&device, "RejectEnrollment", record.lifecycle));
    }
    let reason = bounded(arg(args, 1), "no reason given");
    let operator = caller.operator().unwrap_or("an operator").to_owned();
    let identities = identities(state)?;
    if let Some(mut identity) = identities
        .get(&record.id)
        .map_err(|e| storage(&device, "RejectEnrollment", &e))?
    {
        if let Some(enrollment) = &mut identity.enrollment {
            enrollment.outcome = Outcome::Rejected {
                reason: reason.clone(),
                by: operator.clone(),
                at_ms: unix_ms(SystemTime::now()),
            };
        }
        identities
            .put(&identity)
            .map_err(|e| storage(&device, "RejectEnrollment", &e))?;
    }
    move_to(
        state,
        &device,
        LifecycleState::Provisioned,
        &format!("enrollment rejected by operator {operator}: {reason}"),
    )?;
    Ok(Vec::new())
}

/// AssignGroup(DeviceUDN, Group): moves a commissioned device to another group and applies
/// that group's initial configuration.
async fn assign_group(state: &FaceState, args: &[&str], caller: &Caller) -> Answer {
    let device = find(state, arg(args, 0), "AssignGroup")?;
    let _serial = lock(&device).await;
    let record = device.record();
    if !matches!(
        record.lifecycle,
        LifecycleState::Commissioned | LifecycleState::Maintenance
    ) {
        return Err(wrong_state(&device, "AssignGroup", record.lifecycle));
    }
    let group = group(state, &device, "AssignGroup", arg(args, 1).trim())?;
    let applied = apply_group(state, &device, &group, "AssignGroup").await?;
    let operator = caller.operator().unwrap_or("an operator");
    let text = format!(
        "moved from group {} to {} by operator {operator}; {applied}",
        record.group.as_deref().unwrap_or("(none)"),
        group.name
    );
    tracing::info!(device = %record.id, group = %group.name, "{text}");
    state
        .diagnostics
        .record(&record.id, observe::lifecycle_note(&text));
    enrollment_update(state, &device, "group", &text);
    Ok(Vec::new())
}

/// DecommissionDevice(DeviceUDN, Reason) -> Result.
async fn decommission(state: &FaceState, args: &[&str], caller: &Caller) -> Answer {
    let device = find(state, arg(args, 0), "DecommissionDevice")?;
    let _serial = lock(&device).await;
    let record = device.record();
    if record.lifecycle == LifecycleState::Decommissioned {
        return Err(wrong_state(&device, "DecommissionDevice", record.lifecycle));
    }
    let reason = bounded(arg(args, 1), "no reason given");
    let operator = caller.operator().unwrap_or("an operator").to_owned();
    // An update in flight would go on talking to the device: the operator ends it first.
    state.firmware.retire(&record.id).map_err(|e| {
        let code = match e {
            crate::firmware::engine::EngineError::Busy(_) => 714,
            _ => 501,
        };
        UpnpError::new(
            code,
            format!("DecommissionDevice of {}: {e}", device.describe()),
        )
    })?;

    let reset = factory_reset(&device).await;
    let now = SystemTime::now();
    let revocation = match &state.identities {
        Some(identities) => identities
            .revocation(&record.id, &reason, now)
            .map_err(|e| storage(&device, "DecommissionDevice", &e))?,
        None => None,
    };
    let revoked = revocation.as_ref().map(|(r, _)| r.serial.clone());
    let audit = AuditRecord {
        device_id: record.id.clone(),
        udn: format!("uuid:{}", device.udn),
        protocol: record.protocol.clone(),
        address: record.address.clone(),
        profile: record.profile.clone(),
        group: record.group.clone(),
        state_before: record.lifecycle.as_str().to_owned(),
        decommissioned_at: crate::utc::format_ms(unix_ms(now)),
        by: operator.clone(),
        reason: reason.clone(),
        revoked_serial: revoked.clone(),
        factory_reset: reset.clone(),
    };
    let cause = format!("decommissioned by operator {operator}: {reason}");
    // One transaction: revocation, move, wipe of the records, audit. What follows (key file,
    // CRL, log) can be redone.
    let kept = state
        .registry
        .decommission(
            &record.id,
            &cause,
            now,
            &audit,
            revocation.as_ref().map(|(r, rev)| (r.serial.as_str(), rev)),
        )
        .map_err(|e| storage(&device, "DecommissionDevice", &e))?;
    device.update_record(|r| *r = kept);
    if let (Some(identities), Some((identity, _))) = (&state.identities, &revocation) {
        if let Err(e) = identities.revoked(identity, now) {
            tracing::error!(device = %record.id, error = %e, "the CRL could not be signed after the revocation; the revoked certificate is refused by the listener only after the next successful signing");
        }
        refresh_crl(state, identities, now);
    }
    let wiped_records = state.diagnostics.retire(&record.id);
    tracing::warn!(device = %record.id, operator = %operator, reason = %reason, factory_reset = %reset, revoked = ?revoked, "device decommissioned");
    state.eventing.publish(
        &event_key(device.udn, &LIFECYCLE),
        vec![(
            "LifecycleState".into(),
            LifecycleState::Decommissioned.as_str().into(),
        )],
    );
    enrollment_update(state, &device, "decommissioned", &cause);
    super::retire_device(state, &device);
    let xml = format!(
        "<Decommissioned><Id>{}</Id><UDN>uuid:{}</UDN><RevokedSerial>{}</RevokedSerial><FactoryReset>{}</FactoryReset><WipedLogRecords>{wiped_records}</WipedLogRecords><Audit>kept</Audit></Decommissioned>",
        escape(&record.id),
        device.udn,
        revoked.as_deref().unwrap_or(""),
        escape(&reset),
    );
    Ok(vec![("Result", xml)])
}

/// What is kept of a decommissioned device.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Device id.
    pub device_id: String,
    /// Its UDN.
    pub udn: String,
    /// Protocol.
    pub protocol: String,
    /// Address.
    pub address: String,
    /// Profile.
    pub profile: String,
    /// Its last group.
    pub group: Option<String>,
    /// Lifecycle state before.
    pub state_before: String,
    /// When (RFC 3339).
    pub decommissioned_at: String,
    /// The operator.
    pub by: String,
    /// The operator's reason.
    pub reason: String,
    /// Serial of the identity certificate revoked.
    pub revoked_serial: Option<String>,
    /// How the factory reset went.
    pub factory_reset: String,
}

/// Applies the group to the device and moves it to Commissioned: group assigned, initial
/// configuration written and confirmed, enrollment approved.
async fn commission(
    state: &FaceState,
    device: &Arc<VirtualDevice>,
    group: &GroupConfig,
    by: &str,
) -> Result<String, UpnpError> {
    let applied = apply_group(state, device, group, "ApproveEnrollment").await?;
    let id = device.record().id;
    if let Some(identities) = &state.identities
        && let Some(mut identity) = identities
            .get(&id)
            .map_err(|e| storage(device, "ApproveEnrollment", &e))?
        && let Some(enrollment) = &mut identity.enrollment
    {
        enrollment.outcome = Outcome::Approved {
            group: group.name.clone(),
            by: by.to_owned(),
            at_ms: unix_ms(SystemTime::now()),
        };
        identities
            .put(&identity)
            .map_err(|e| storage(device, "ApproveEnrollment", &e))?;
    }
    move_to(
        state,
        device,
        LifecycleState::Commissioned,
        &format!("approved by {by} into group {}; {applied}", group.name),
    )?;
    Ok(applied)
}

/// Writes the group's defaults the device's profile has, reads them back (the device
/// confirms), then records the group. Returns what was applied, in words.
async fn apply_group(
    state: &FaceState,
    device: &Arc<VirtualDevice>,
    group: &GroupConfig,
    action: &str,
) -> Result<String, UpnpError> {
    let mut values = Readings::new();
    for (name, raw) in &group.defaults {
        let Some(parameter) = device.profile.parameter(name) else {
            continue;
        };
        let problem = match Value::from_toml(raw) {
            Some(value) if parameter.access.can_write() => match parameter.check_value(&value) {
                Ok(value) => {
                    values.insert(name.clone(), value);
                    continue;
                }
                Err(e) => e.to_string(),
            },
            Some(_) => format!("`{name}` is {}", parameter.access.as_str()),
            None => format!("`{name}` = {raw} is not a value"),
        };
        return Err(UpnpError::new(
            errors::INVALID_VALUE,
            format!(
                "{action} of {}: group {}'s default does not fit profile `{}`: {problem}; fix [[groups]] defaults",
                device.describe(),
                group.name,
                device.profile.id
            ),
        ));
    }
    if !values.is_empty() {
        let link = device
            .link()
            .map_err(|e| errors::link_error(device, action, &e))?;
        link.write(&values)
            .await
            .map_err(|e| errors::link_error(device, action, &e))?;
        let names: Vec<String> = values.keys().cloned().collect();
        let read = link
            .read(&names)
            .await
            .map_err(|e| errors::link_error(device, action, &e))?;
        let differing: Vec<String> = values
            .iter()
            .filter(|(n, v)| read.get(*n) != Some(*v))
            .map(|(n, v)| {
                format!(
                    "{n}: wrote {}, reads {}",
                    super::cms::value_text(v),
                    read.get(n)
                        .map_or_else(|| "nothing".to_owned(), super::cms::value_text)
                )
            })
            .collect();
        if !differing.is_empty() {
            return Err(UpnpError::new(
                NOT_CONFIRMED,
                format!(
                    "{action} of {}: the device did not confirm group {}'s initial configuration ({}); it stays where it was",
                    device.describe(),
                    group.name,
                    differing.join("; ")
                ),
            ));
        }
        configuration_changed(state, device, values.clone(), ChangeSource::Write);
    }
    let id = device.record().id;
    let kept = state
        .registry
        .update_device(&id, |r| {
            r.group = Some(group.name.clone());
            r.group_assigned = true;
        })
        .map_err(|e| storage(device, action, &e))?;
    device.update_record(|r| {
        r.group = kept.group.clone();
        r.group_assigned = true;
    });
    state.firmware.set_group(&id, Some(group.name.clone()));
    Ok(if values.is_empty() {
        format!(
            "group {} has no initial configuration for this profile",
            group.name
        )
    } else {
        format!(
            "initial configuration confirmed by the device: {}",
            values
                .iter()
                .map(|(n, v)| format!("{n}={}", super::cms::value_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Moves the device to `to`: persisted with `cause`, then evented (Lifecycle:1 LifecycleState
/// on the device, EnrollmentUpdate on the gateway) and logged in the device's diagnostics.
pub(super) fn move_to(
    state: &FaceState,
    device: &VirtualDevice,
    to: LifecycleState,
    cause: &str,
) -> Result<(), UpnpError> {
    let id = device.record().id;
    let at = SystemTime::now();
    let entry = state
        .registry
        .transition(&id, to, cause, at)
        .map_err(|e| match e {
            crate::registry::RegistryError::Transition { source, .. } => {
                UpnpError::new(WRONG_STATE, format!("{}: {source}", device.describe()))
            }
            other => storage(device, "a lifecycle move", &other),
        })?;
    device.update_record(|r| {
        r.lifecycle = to;
        r.lifecycle_since_ms = entry.at_ms;
    });
    let from = entry.from.map_or("", LifecycleState::as_str);
    tracing::info!(device = %id, from, to = to.as_str(), cause, "lifecycle");
    state
        .diagnostics
        .record_at(&id, at, observe::lifecycle(from, to.as_str(), cause));
    state.eventing.publish(
        &event_key(device.udn, &LIFECYCLE),
        vec![("LifecycleState".into(), to.as_str().into())],
    );
    enrollment_update(state, device, to.as_str(), cause);
    Ok(())
}

/// Events `EnrollmentUpdate` on the gateway: `uuid:<udn> <id> <what>: <text>`.
fn enrollment_update(state: &FaceState, device: &VirtualDevice, what: &str, text: &str) {
    state.eventing.publish(
        &event_key(state.gateway.udn, &MANAGEMENT_CONTROLLER),
        vec![(
            "EnrollmentUpdate".into(),
            format!("uuid:{} {} {what}: {text}", device.udn, device.record().id),
        )],
    );
}

/// Whether a device is approved without an operator.
#[derive(Debug)]
enum Decision {
    ZeroTouch(Box<GroupConfig>),
    Manual(String),
}

/// Zero-touch only for cryptographic evidence (certificates chaining to a device CA) that
/// matches the zero-touch rule of the device's group; everything else waits for an operator.
fn decide(
    state: &FaceState,
    device: &VirtualDevice,
    evidence: &IdentityEvidence,
    unobtained: Option<&str>,
    fingerprint: Option<&str>,
) -> Decision {
    let record = device.record();
    let Some(group) = record.group.as_deref().and_then(|g| state.config.group(g)) else {
        return Decision::Manual("it has no management group in the config".into());
    };
    if group.approval != ApprovalMode::ZeroTouch {
        return Decision::Manual(format!("group {} approves manually", group.name));
    }
    if let Some(why) = unobtained {
        return Decision::Manual(format!(
            "its identity evidence could not be obtained ({why}); it is asked again when the device enrolls again (at the gateway's next start), or an operator approves"
        ));
    }
    if !evidence.is_cryptographic() {
        return Decision::Manual(
            "its only identity is its address or serial number, which is never enough for zero-touch approval".into(),
        );
    }
    if let IdentityEvidence::Certificate { der } = evidence {
        let chained = state.client_trust.as_ref().map(|t| t.verify_evidence(der));
        match chained {
            Some(Ok(())) => {}
            Some(Err(why)) => {
                return Decision::Manual(format!(
                    "the certificate it proved is not accepted as evidence: {why}"
                ));
            }
            None => {
                return Decision::Manual("HTTPS and its trust are not configured".into());
            }
        }
    }
    // One piece of evidence proves one device: the same certificate (or bond, or install
    // code) on two devices means it was copied.
    if let (Some(fingerprint), Some(identities)) = (fingerprint, &state.identities)
        && let Some(other) = identities.evidence_holder(fingerprint, &record.id)
    {
        return Decision::Manual(format!(
            "the same identity evidence was already presented by device {other}"
        ));
    }
    if !group
        .zero_touch
        .matches(&record.profile, &record.address, evidence.kind_name())
    {
        return Decision::Manual(format!(
            "it does not match group {}'s zero_touch rule (profile {}, address {}, evidence {})",
            group.name,
            record.profile,
            record.address,
            evidence.kind_name()
        ));
    }
    Decision::ZeroTouch(Box::new(group.clone()))
}

/// What a presented certificate says.
#[derive(Debug)]
struct Presented {
    subject: String,
    issuer: String,
    serial: String,
    /// `urn:iotmc:<gateway>:<protocol>:<address>` names, decoded.
    names: Vec<(String, String, String)>,
}

impl Presented {
    fn parse(der: &[u8]) -> Result<Self, UpnpError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
            UpnpError::not_authorized(format!(
                "Enroll refused: the certificate does not parse: {e}"
            ))
        })?;
        let names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        x509_parser::extensions::GeneralName::URI(uri) => parse_urn(uri),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: crate::firmware::store::hex(cert.raw_serial()),
            names,
        })
    }

    /// The managed device the certificate names.
    fn device(&self, state: &FaceState) -> Option<Arc<VirtualDevice>> {
        self.names
            .iter()
            .filter(|(gateway, _, _)| *gateway == state.gateway.id)
            .find_map(|(_, protocol, address)| {
                let udn = crate::registry::device_udn(&state.gateway.id, protocol, address);
                state.device(udn)
            })
    }
}

fn is_same_certificate(pem: &str, presented: &[u8]) -> bool {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .is_ok_and(|stored| stored.as_ref() == presented)
}

fn parse_urn(uri: &str) -> Option<(String, String, String)> {
    let rest = uri.strip_prefix("urn:iotmc:")?;
    let mut parts = rest.splitn(3, ':');
    let gateway = parts.next()?.to_owned();
    let protocol = parts.next()?.to_owned();
    let address: String = form_urlencoded::parse(format!("a={}", parts.next()?).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    Some((gateway, protocol, address))
}

/// SHA-256 (hex) of the evidence.
fn evidence_sha256(evidence: &IdentityEvidence) -> Option<String> {
    let hex = |b: &[u8]| crate::firmware::store::hex(b);
    match evidence {
        IdentityEvidence::Certificate { der } => Some(hex(&sha2::Sha256::digest(der))),
        IdentityEvidence::InstallCode { sha256 } => Some(hex(sha256)),
        IdentityEvidence::BondedKey { fingerprint } => Some(hex(fingerprint)),
        IdentityEvidence::None => None,
    }
}

/// Factory-resets through the profile's action; the outcome in words (decommissioning goes on
/// when it fails: a broken device must still be retired).
async fn factory_reset(device: &VirtualDevice) -> String {
    use iotmc_adapter::profile::ActionKind;
    let Some(action) = device
        .profile
        .actions
        .iter()
        .find(|a| a.kind == ActionKind::FactoryReset)
    else {
        return format!(
            "not possible: profile `{}` declares no factory-reset action; reset the device by hand",
            device.profile.id
        );
    };
    let Ok(link) = device.link() else {
        return "not possible: the gateway has no link to the device; reset it by hand".into();
    };
    match link
        .invoke(&iotmc_adapter::ActionRequest::new(action.name.clone()))
        .await
    {
        Ok(_) => "done".into(),
        Err(e) => format!("failed: {e}; reset the device by hand"),
    }
}

/// Hands the current CRL to the TLS listener (at start).
pub fn load_crl(state: &FaceState, identities: &Identities) {
    refresh_crl(state, identities, SystemTime::now());
}

/// Re-signs the CRL and hands it to the TLS listener, so that the revoked certificate is
/// refused from the next connection on.
fn refresh_crl(state: &FaceState, identities: &Identities, now: SystemTime) {
    use rustls_pki_types::pem::PemObject as _;
    let crl = identities
        .crl_pem(now)
        .map_err(|e| e.to_string())
        .and_then(|pem| {
            rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| e.to_string())
        });
    match (crl, &state.client_trust) {
        (Ok(crl), Some(trust)) => {
            if let Err(e) = trust.set_crls(vec![crl]) {
                tracing::error!(error = %e, "the TLS listener could not take the new CRL; revoked certificates are still refused by serial");
            }
        }
        (Err(e), _) => tracing::error!(error = %e, "cannot sign the CRL"),
        (Ok(_), None) => {}
    }
}

/// The device a DeviceUDN argument names (`uuid:<udn>`, the bare UUID, or the device id).
fn find(state: &FaceState, text: &str, action: &str) -> Result<Arc<VirtualDevice>, UpnpError> {
    let text = text.trim();
    let udn = uuid::Uuid::parse_str(text.strip_prefix("uuid:").unwrap_or(text)).ok();
    let found = match udn {
        Some(udn) => state.device(udn),
        None => state
            .live_devices()
            .find(|d| d.record().id == text)
            .cloned(),
    };
    found.ok_or_else(|| {
        UpnpError::argument_value_invalid(format!(
            "{action}: DeviceUDN {:?} names no managed device of this gateway (decommissioned devices are gone); GetInventory lists them",
            text.chars().take(64).collect::<String>()
        ))
    })
}

fn group(
    state: &FaceState,
    device: &VirtualDevice,
    action: &str,
    name: &str,
) -> Result<GroupConfig, UpnpError> {
    state.config.group(name).cloned().ok_or_else(|| {
        UpnpError::argument_value_invalid(format!(
            "{action} of {}: no group named {:?}; declared groups: {}",
            device.describe(),
            name.chars().take(64).collect::<String>(),
            group_names(state)
        ))
    })
}

fn group_names(state: &FaceState) -> String {
    let names: Vec<&str> = state
        .config
        .groups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    if names.is_empty() {
        "none (declare [[groups]] in the config)".into()
    } else {
        names.join(", ")
    }
}

fn enrollment(state: &FaceState, device: &VirtualDevice) -> Result<Option<Enrollment>, UpnpError> {
    let Some(identities) = &state.identities else {
        return Ok(None);
    };
    Ok(identities
        .get(&device.record().id)
        .map_err(|e| storage(device, "ApproveEnrollment", &e))?
        .and_then(|i| i.enrollment))
}

fn identities(state: &FaceState) -> Result<&Arc<Identities>, UpnpError> {
    state.identities.as_ref().ok_or_else(|| {
        UpnpError::not_implemented(
            "enrollment is off on this gateway: set [trust] issuing_ca_certificate and issuing_ca_key (or [enrollment] lab_pki = true in a lab)",
        )
    })
}

fn wrong_state(device: &VirtualDevice, action: &str, now: LifecycleState) -> UpnpError {
    UpnpError::new(
        WRONG_STATE,
        format!(
            "{action} of {}: not possible while it is {now}{}",
            device.describe(),
            match action {
                "ApproveEnrollment" | "RejectEnrollment" =>
                    "; only a device waiting in PendingApproval can be approved or rejected (a rejected one can be approved later)",
                "AssignGroup" => "; only a commissioned device changes group",
                _ => "",
            }
        ),
    )
}

fn storage(device: &VirtualDevice, action: &str, e: &dyn std::fmt::Display) -> UpnpError {
    UpnpError::action_failed(format!("{action} of {}: {e}", device.describe()))
}

fn arg<'a>(args: &[&'a str], i: usize) -> &'a str {
    args.get(i).copied().unwrap_or_default()
}

/// The argument, trimmed and at most 256 characters, or `default` when empty.
fn bounded(text: &str, default: &str) -> String {
    let text: String = text.trim().chars().take(256).collect();
    if text.is_empty() {
        default.to_owned()
    } else {
        text
    }
}

/// One lifecycle operation at a time per device (two approvals must not both push defaults).
async fn lock(device: &VirtualDevice) -> tokio::sync::MutexGuard<'_, ()> {
    device.lifecycle_lock.lock().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_urn_should_decode_its_address() {
        let (gateway, protocol, address) =
            parse_urn("urn:iotmc:bldg-a:modbus:tcp%3A%2F%2F192.0.2.7%3A502%3Funit%3D1").unwrap();
        assert_eq!(gateway, "bldg-a");
        assert_eq!(protocol, "modbus");
        assert_eq!(address, "tcp://192.0.2.7:502?unit=1");
        assert!(parse_urn("urn:other:x:y:z").is_none());
        assert!(parse_urn("urn:iotmc:only-gateway").is_none());
    }

    #[test]
    fn reasons_should_be_bounded_and_never_empty() {
        assert_eq!(bounded("  ", "none"), "none");
        assert_eq!(bounded(&"x".repeat(1000), "none").len(), 256);
    }
}
