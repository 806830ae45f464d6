//! The device side of enrollment for the virtual devices (DESIGN.md §5): a legacy device has
//! no certificate and speaks no UPnP, so the gateway acts for it. Each declared device still in
//! Provisioned gets its identity certificate from the issuing CA and enrolls with the
//! management controller exactly as a native device would: Enroll over HTTPS, presenting that
//! certificate with mutual TLS (the key used through the PKI's key trait). The controller then
//! judges it like any other enrolling device; nothing here decides approval.
//!
//! Commissioned devices get their certificate renewed when less than a tenth of its validity
//! is left.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::client::{ClientError, SoapClient};
use super::description;
use super::device::VirtualDevice;
use super::services::FaceState;
use super::services::specs::MANAGEMENT_CONTROLLER;
use crate::lifecycle::LifecycleState;
use crate::lifecycle::pki::HandleSigningKey;

/// How long one Enroll call may take (the controller may push a zero-touch configuration).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// First wait after a failed attempt; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Devices enrolling at once.
const CONCURRENT: usize = 4;

/// Where the agent reaches the controller and which certificate it expects there.
#[derive(Debug, Clone)]
pub struct Controller {
    /// The HTTPS listener (an unspecified address is reached over loopback).
    pub https: SocketAddr,
    /// The gateway's own TLS certificate, pinned.
    pub certificate: CertificateDer<'static>,
}

impl Controller {
    /// The gateway certificate (first PEM certificate of `path`) and its HTTPS listener.
    pub fn new(https: SocketAddr, certificate: &std::path::Path) -> Option<Self> {
        let certificate = CertificateDer::pem_file_iter(certificate)
            .ok()?
            .next()?
            .ok()?;
        Some(Self { https, certificate })
    }

    fn base(&self) -> String {
        format!("https://{}", loopback_if_unspecified(self.https))
    }
}

fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// Enrolls every Provisioned device (at most [`CONCURRENT`] at once), retrying each whose
/// enrollment could not be delivered, until it is answered; renews the others' certificates
/// when due. Returns when every device was answered.
pub async fn run(state: Arc<FaceState>, controller: Controller) {
    let Some(identities) = state.identities.clone() else {
        return;
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
    let mut tasks = tokio::task::JoinSet::new();
    for device in state.live_devices().cloned().collect::<Vec<_>>() {
        let record = device.record();
        // A device waiting in a zero-touch group enrolls again: its evidence may be there now
        // (it was offline), or the configuration push that failed may succeed.
        let zero_touch_wait = record.lifecycle == LifecycleState::PendingApproval
            && record
                .group
                .as_deref()
                .and_then(|g| state.config.group(g))
                .is_some_and(|g| g.approval == crate::config::ApprovalMode::ZeroTouch);
        if record.lifecycle != LifecycleState::Provisioned && !zero_touch_wait {
            if identities.get(&record.id).ok().flatten().is_some()
                && let Err(e) = identities.ensure(&record, SystemTime::now())
            {
                tracing::error!(device = %record.id, error = %e, "cannot renew the device's identity certificate");
            }
            continue;
        }
        let rejected = identities
            .get(&record.id)
            .ok()
            .flatten()
            .and_then(|i| i.enrollment)
            .is_some_and(|e| matches!(e.outcome, crate::lifecycle::Outcome::Rejected { .. }));
        if rejected {
            tracing::info!(device = %record.id, "enrollment was rejected; an operator may approve it (ApproveEnrollment)");
            continue;
        }
        let state = Arc::clone(&state);
        let controller = controller.clone();
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let attempt = {
                    let _permit = permits.acquire().await;
                    enroll_once(&state, &controller, &device).await
                };
                match attempt {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(device = %device.record().id, error = %e, retry_in = ?backoff, "enrollment not delivered; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        if !device.is_active()
                            || !matches!(
                                device.record().lifecycle,
                                LifecycleState::Provisioned | LifecycleState::PendingApproval
                            )
                        {
                            return;
                        }
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// One Enroll call for `device` with its current identity.
async fn enroll_once(
    state: &FaceState,
    controller: &Controller,
    device: &VirtualDevice,
) -> Result<(), String> {
    let identities = state.identities.as_ref().ok_or("enrollment is off")?;
    let record = device.record();
    let identity = identities
        .ensure(&record, SystemTime::now())
        .map_err(|e| e.to_string())?;
    let chain = CertificateDer::pem_slice_iter(identity.certificate_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the stored identity certificate does not parse: {e}"))?;
    let handle = identities.key(&identity).map_err(|e| e.to_string())?;
    let location = handle.location();
    let key = HandleSigningKey::new(handle).ok_or_else(|| {
        format!("the identity key {location} is of a kind TLS client authentication cannot use")
    })?;
    let client = SoapClient::pinned(
        &controller.base(),
        controller.certificate.clone(),
        chain,
        Arc::new(key),
        CALL_TIMEOUT,
    )
    .map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}:{}{}",
        state.default_host,
        state.http_port,
        description::description_path(device.udn)
    );
    let control = format!(
        "/upnp/{}/{}/control",
        state.gateway.udn, MANAGEMENT_CONTROLLER.path
    );
    let answer = client
        .call(
            &control,
            &MANAGEMENT_CONTROLLER.service_type(&state.vendor_domain),
            "Enroll",
            &[("DeviceDescriptionURL", url.as_str())],
        )
        .await;
    match answer {
        Ok(out) => {
            let get = |name: &str| {
                out.iter()
                    .find(|(n, _)| n == name)
                    .map_or("", |(_, v)| v.as_str())
                    .to_owned()
            };
            tracing::info!(device = %record.id, state = %get("EnrollmentState"), detail = %get("Detail"), "enrolled with the management controller");
            Ok(())
        }
        // The controller answered with a refusal: retrying the same call changes nothing.
        Err(ClientError::Upnp { code, description }) => {
            tracing::error!(device = %record.id, code, %description, "the management controller refused the enrollment");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}
