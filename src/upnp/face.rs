//! Assembling the UPnP face around a started gateway: one virtual device per managed device,
//! the descriptions, GENA, the HTTP and HTTPS listeners and SSDP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::description::{self, MANAGEABLE_DEVICE, controller_device_type};
use super::device::{Availability, DeviceFacts, LiveState, VirtualDevice};
use super::enroll_agent;
use super::gena::{Eventing, GenaLimits};
use super::http::{self, HttpLimits, Site};
use super::net::{InterfaceError, ServedInterface, served_interfaces};
use super::services::specs::{DEVICE_SERVICES, GATEWAY_SERVICES};
use super::services::{self, FaceState, GatewayInfo};
use super::ssdp::{AdvertisedDevice, Ssdp, SsdpConfig, SsdpHandle};
use super::tls::{self, TlsError};
use crate::config::Config;
use crate::daemon::{Gateway, ManagedDevice};
use crate::registry::{RegistryError, gateway_udn};

/// Why the face could not start.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// The served interfaces could not be determined.
    #[error(transparent)]
    Interfaces(#[from] InterfaceError),
    /// A listener could not be bound.
    #[error(
        "cannot listen for {what} on {addr}: {source}; choose another address or port in [listen]"
    )]
    Bind {
        /// `HTTP` or `HTTPS`.
        what: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS configuration is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The management capabilities every virtual device advertises.
pub const CAPABILITIES: [&str; 4] = ["config", "firmware", "diagnostics", "lifecycle"];

/// The running face.
#[derive(Debug)]
pub struct UpnpFace {
    state: Arc<FaceState>,
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    ssdp: Option<SsdpHandle>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    boot_id: u32,
    config_id: u32,
    shutdown_grace: Duration,
}

impl UpnpFace {
    /// Starts the face for `gateway`'s devices as its config says.
    pub async fn start(gateway: &Gateway) -> Result<Self, FaceError> {
        let config = gateway.config();
        let interfaces = served_interfaces(&config.listen.interfaces)?;
        let registry = Arc::clone(gateway.registry());
        let boot_id = registry.next_boot_id()?;
        let files = https_files(config)?;
        let gateway_certificate = files.as_ref().map(|(cert, _, _)| cert.clone());
        let (tls, client_trust) = match files {
            Some((cert, key, operator_ca)) => {
                let trust = tls::ClientTrust::new(
                    &operator_ca,
                    &config.trust.device_cas,
                    gateway.identities().map(|i| i.ca_pem()),
                )?;
                (
                    Some(tls::server_config(&cert, &key, &trust)?),
                    Some(Arc::new(trust)),
                )
            }
            None => {
                tracing::warn!(
                    "HTTPS is off: set [trust] gateway_certificate, gateway_key and operator_ca to allow state-changing actions (SetValues, Reboot, ...) and enrollment"
                );
                (None, None)
            }
        };
        let http_listener = bind("HTTP", config.listen.http).await?;
        let http_addr = http_listener
            .local_addr()
            .map_err(|source| FaceError::Bind {
                what: "HTTP",
                addr: config.listen.http,
                source,
            })?;
        let https = match tls {
            Some(tls) => {
                let listener = bind("HTTPS", config.listen.https).await?;
                let addr = listener.local_addr().map_err(|source| FaceError::Bind {
                    what: "HTTPS",
                    addr: config.listen.https,
                    source,
                })?;
                Some((listener, addr, tls))
            }
            None => None,
        };

        let devices = virtual_devices(gateway.devices()).await;
        let eventing = Eventing::start(GenaLimits::default());
        // URLs handed out (firmware downloads, log URLs) use the first served address unless
        // the listener is bound to one.
        let default_host = if http_addr.ip().is_unspecified() {
            interfaces
                .first()
                .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |i| i.addr.into())
        } else {
            http_addr.ip()
        };
        let state = Arc::new(FaceState {
            vendor_domain: config.gateway.vendor_domain.clone(),
            gateway: GatewayInfo {
                udn: gateway_udn(&config.gateway.id),
                id: config.gateway.id.clone(),
                name: config.gateway.name.clone(),
            },
            devices,
            registry: Arc::clone(&registry),
            eventing,
            https_port: https.as_ref().map(|(_, addr, _)| addr.port()),
            offers: Arc::clone(gateway.image_offers()),
            firmware: Arc::clone(gateway.firmware()),
            diagnostics: gateway.diagnostics().clone(),
            http_port: http_addr.port(),
            default_host: match default_host {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            },
            client_trust,
            identities: gateway.identities().cloned(),
            config: Arc::new(config.clone()),
            ssdp_devices: std::sync::OnceLock::new(),
            batches: services::batch::Batches::default(),
        });
        state.batches.attach(&state);
        if let Some(identities) = &state.identities {
            identities.set_crl_url(format!(
                "http://{}{}",
                SocketAddr::new(default_host, http_addr.port()),
                http::CRL_PATH
            ));
            services::lifecycle::load_crl(&state, identities);
        }
        if config.listen.image_base_url.is_none() {
            // Devices reach the gateway where controllers do.
            state.offers.set_base_url(&format!(
                "http://{}",
                SocketAddr::new(default_host, http_addr.port())
            ));
        }
        services::register_events(&state);
        let config_id = registry.config_id_for(description::digest(&state))?;
        let server = server_header();
        let site = Arc::new(Site::new(
            Arc::clone(&state),
            interfaces.clone(),
            server.clone(),
            config_id,
            HttpLimits::default(),
        ));

        let interfaces_now = interfaces.clone();
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(http::serve_http(
            Arc::clone(&site),
            http_listener,
            stopped.clone(),
        ))];
        let https_addr = https.as_ref().map(|(_, addr, _)| *addr);
        if let Some((listener, _, tls)) = https {
            tasks.push(tokio::spawn(http::serve_https(
                Arc::clone(&site),
                listener,
                tls,
                stopped.clone(),
            )));
        }
        tasks.push(tokio::spawn(services::forward_notices(Arc::clone(&state))));
        if let (Some(https), Some(certificate), Some(_)) =
            (https_addr, &gateway_certificate, &state.identities)
        {
            match enroll_agent::Controller::new(https, certificate) {
                Some(controller) => tasks.push(tokio::spawn(enroll_agent::run(
                    Arc::clone(&state),
                    controller,
                ))),
                None => {
                    tracing::error!(certificate = %certificate.display(), "the gateway certificate cannot be read back: the declared devices do not enroll")
                }
            }
        }
        for device in state.devices.values() {
            tasks.push(tokio::spawn(services::follow_link_events(
                Arc::clone(&state),
                Arc::clone(device),
            )));
        }

        let ssdp = start_ssdp(
            config,
            &state,
            interfaces,
            http_addr.port(),
            boot_id,
            config_id,
            server,
        )
        .await;
        if let Some(ssdp) = &ssdp {
            tasks.push(tokio::spawn(watch_addresses(
                config.listen.interfaces.clone(),
                interfaces_now,
                ssdp.interface_updates(),
                Arc::clone(&site),
            )));
        }
        tracing::info!(
            http = %http_addr,
            https = ?https_addr,
            devices = state.devices.len(),
            boot_id,
            config_id,
            "UPnP face serving"
        );
        Ok(Self {
            state,
            http_addr,
            https_addr,
            ssdp,
            stop,
            tasks,
            boot_id,
            config_id,
            shutdown_grace: config.gateway.shutdown_grace,
        })
    }

    /// Where plain HTTP is served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where HTTPS is served, if configured.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// Where SSDP listens, if it runs.
    pub fn ssdp_addr(&self) -> Option<SocketAddr> {
        self.ssdp.as_ref().map(SsdpHandle::local_addr)
    }

    /// BOOTID.UPNP.ORG of this run.
    pub fn boot_id(&self) -> u32 {
        self.boot_id
    }

    /// CONFIGID.UPNP.ORG of this run.
    pub fn config_id(&self) -> u32 {
        self.config_id
    }

    /// The handler state (devices, eventing).
    pub fn state(&self) -> &Arc<FaceState> {
        &self.state
    }

    /// The description URL of `udn` on the HTTP listener.
    pub fn description_url(&self, udn: uuid::Uuid) -> String {
        format!(
            "http://{}{}",
            self.http_addr,
            description::description_path(udn)
        )
    }

    /// Says ssdp:byebye (within half the stop grace), stops the listeners and GENA. Requests in
    /// flight are cut; a controller retries them against the next run.
    pub async fn stop(self) {
        if let Some(ssdp) = self.ssdp {
            // Byebyes are paced; with thousands of devices they take seconds. Bounded to half
            // the stop grace, so that the devices' links are still closed within it.
            let budget = self.shutdown_grace / 2;
            if tokio::time::timeout(budget, ssdp.shutdown()).await.is_err() {
                tracing::warn!(
                    budget_s = budget.as_secs_f64(),
                    "not every ssdp:byebye was sent in time; control points will expire the rest after max-age"
                );
            }
        }
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.abort();
        }
        self.state.eventing.clone().shutdown().await;
    }
}

/// How often the served interfaces' addresses are checked for changes.
const ADDRESS_CHECK: Duration = Duration::from_secs(30);

/// Re-reads the served interfaces every [`ADDRESS_CHECK`]; on a change (DHCP renewed to a new
/// address, an interface added), SSDP sends ssdp:update and alive from the new addresses and
/// the HTTP listeners map connections to them.
async fn watch_addresses(
    names: Vec<String>,
    mut current: Vec<ServedInterface>,
    ssdp: watch::Sender<Vec<ServedInterface>>,
    site: Arc<Site>,
) {
    let mut tick = tokio::time::interval(ADDRESS_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match served_interfaces(&names) {
            Ok(now) if now != current => {
                tracing::info!(before = ?current, after = ?now, "served addresses changed; announcing ssdp:update");
                *site
                    .interfaces
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = now.clone();
                ssdp.send_replace(now.clone());
                current = now;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read the served interfaces; keeping the last known addresses")
            }
        }
    }
}

/// The gateway certificate, its key and the operator CA: from `[trust]`, or in a lab
/// (`[enrollment] lab_pki`) generated in `<state_dir>/pki` on first start, with a warning at
/// every start. `None` when HTTPS is not configured.
fn https_files(
    config: &Config,
) -> Result<Option<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)>, FaceError> {
    let t = &config.trust;
    if let (Some(cert), Some(key), Some(ca)) =
        (&t.gateway_certificate, &t.gateway_key, &t.operator_ca)
    {
        return Ok(Some((cert.clone(), key.clone(), ca.clone())));
    }
    if !config.enrollment.lab_pki {
        return Ok(None);
    }
    let dir = crate::lifecycle::identities::lab_dir(config);
    let pki = if dir.join("server.pem").exists() {
        tls::DemoPki::in_dir(&dir)
    } else {
        tls::generate_demo_pki(&dir)?
    };
    tracing::warn!(
        dir = %dir.display(),
        operator_certificate = %pki.operator_certificate.display(),
        "LAB PKI: the gateway's TLS certificate, the operator CA and an operator certificate were generated by this gateway (for localhost and 127.0.0.1 only); import real ones ([trust] gateway_certificate, gateway_key, operator_ca) before production"
    );
    Ok(Some((
        t.gateway_certificate
            .clone()
            .unwrap_or(pki.server_certificate),
        t.gateway_key.clone().unwrap_or(pki.server_key),
        t.operator_ca.clone().unwrap_or(pki.ca),
    )))
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, FaceError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| FaceError::Bind { what, addr, source })
}

async fn start_ssdp(
    config: &Config,
    state: &FaceState,
    interfaces: Vec<ServedInterface>,
    http_port: u16,
    boot_id: u32,
    config_id: u32,
    server: String,
) -> Option<SsdpHandle> {
    let vendor = &config.gateway.vendor_domain;
    let advertised = advertised_devices(state);
    let mut ssdp_config = SsdpConfig::new(interfaces, http_port, server, vendor.clone());
    ssdp_config.port = config.listen.ssdp_port;
    ssdp_config.boot_id = boot_id;
    ssdp_config.config_id = config_id;
    match Ssdp::start(ssdp_config, advertised).await {
        Ok(handle) => {
            let _ = state.ssdp_devices.set(handle.device_updates());
            Some(handle)
        }
        Err(e) => {
            tracing::error!(error = %e, port = config.listen.ssdp_port, "SSDP could not start: the devices are served but cannot be discovered; check that nothing else holds the port exclusively and that the interfaces allow multicast");
            None
        }
    }
}

/// What SSDP advertises: every managed device with the management capabilities it offers,
/// and the gateway's root device, the management controller, whose capabilities header
/// (`MANAGEMENT.<vendor domain>: controller,enrollment,lifecycle`) lets devices find where to
/// enroll.
pub(crate) fn advertised_devices(state: &FaceState) -> Vec<AdvertisedDevice> {
    let vendor = &state.vendor_domain;
    let mut advertised: Vec<AdvertisedDevice> = state
        .live_devices()
        .map(|d| AdvertisedDevice {
            udn: d.udn,
            device_type: MANAGEABLE_DEVICE.to_owned(),
            service_types: DEVICE_SERVICES
                .iter()
                .map(|s| s.service_type(vendor))
                .collect(),
            description_path: description::description_path(d.udn),
            capabilities: CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
        })
        .collect();
    let mut controller = vec!["controller".to_owned()];
    if state.identities.is_some() && state.https_port.is_some() {
        controller.push("enrollment".to_owned());
    }
    controller.push("lifecycle".to_owned());
    advertised.push(AdvertisedDevice {
        udn: state.gateway.udn,
        device_type: controller_device_type(vendor),
        service_types: GATEWAY_SERVICES
            .iter()
            .map(|s| s.service_type(vendor))
            .collect(),
        description_path: description::description_path(state.gateway.udn),
        capabilities: controller,
    });
    advertised
}

/// `<OS>/<version> UPnP/2.0 iotmc-gateway/<version>`.
pub fn server_header() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let release: String = release
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '/')
        .take(48)
        .collect();
    format!(
        "Linux/{release} UPnP/2.0 iotmc-gateway/{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// One virtual device per managed device. Asks each attached device who it is (at once, each
/// bounded by its profile's request deadline); devices that do not answer are described from
/// their profile.
async fn virtual_devices(managed: &[ManagedDevice]) -> BTreeMap<uuid::Uuid, Arc<VirtualDevice>> {
    let mut identities = tokio::task::JoinSet::new();
    for (index, device) in managed.iter().enumerate() {
        if let Some(link) = device.link.clone() {
            let deadline = device.profile.poll.request_deadline() + Duration::from_secs(1);
            let readable = device.profile.readable_parameters();
            identities.spawn(async move {
                let identity = tokio::time::timeout(deadline, link.identify()).await;
                // What the device holds now, so that later reports are compared with real
                // values (a failed read leaves it unknown).
                let known = match &identity {
                    Ok(Ok(_)) if !readable.is_empty() => {
                        match tokio::time::timeout(deadline, link.read(&readable)).await {
                            Ok(Ok(readings)) => readings,
                            _ => iotmc_adapter::Readings::new(),
                        }
                    }
                    _ => iotmc_adapter::Readings::new(),
                };
                (index, (identity, known))
            });
        }
    }
    let mut identified = BTreeMap::new();
    while let Some(joined) = identities.join_next().await {
        if let Ok((index, result)) = joined {
            identified.insert(index, result);
        }
    }
    let now = SystemTime::now();
    let mut devices = BTreeMap::new();
    for (index, device) in managed.iter().enumerate() {
        let record = device.record.clone();
        let (identity, known) = match identified.remove(&index) {
            Some((identity, known)) => (Some(identity), known),
            None => (None, iotmc_adapter::Readings::new()),
        };
        let identity = match identity {
            Some(Ok(Ok(identity))) => Some(identity),
            Some(Ok(Err(e))) => {
                tracing::warn!(device = %record.id, error = %e, hint = e.hint(), "the device did not identify itself; describing it from its profile");
                None
            }
            Some(Err(_)) => {
                tracing::warn!(device = %record.id, "the device did not identify itself in time; describing it from its profile");
                None
            }
            None => None,
        };
        let availability = match (&device.link, &identity) {
            (None, _) => Availability::Unknown,
            (Some(_), Some(_)) => Availability::Online,
            (Some(_), None) => Availability::Offline,
        };
        let profile = &device.profile;
        let facts = DeviceFacts {
            friendly_name: record
                .name
                .clone()
                .unwrap_or_else(|| format!("{} {}", profile.model, record.id)),
            manufacturer: identity
                .as_ref()
                .map_or_else(|| profile.manufacturer.clone(), |i| i.manufacturer.clone()),
            model: identity
                .as_ref()
                .map_or_else(|| profile.model.clone(), |i| i.model.clone()),
            model_number: profile.id.clone(),
            description: profile.description.clone().unwrap_or_else(|| {
                format!(
                    "{} {} ({})",
                    profile.manufacturer, profile.model, profile.protocol
                )
            }),
            serial: identity
                .as_ref()
                .and_then(|i| i.serial.clone())
                .unwrap_or_else(|| record.id.clone()),
            firmware_version: identity.as_ref().and_then(|i| i.firmware_version.clone()),
        };
        let live = LiveState {
            availability,
            availability_since: now,
            configuration_update: record.config_version.to_string(),
            last_error: String::new(),
            known,
        };
        devices.insert(
            record.udn,
            Arc::new(VirtualDevice {
                udn: record.udn,
                record: RwLock::new(record),
                profile: Arc::clone(profile),
                link: device.link.clone(),
                facts,
                live: RwLock::new(live),
                lifecycle_lock: tokio::sync::Mutex::new(()),
            }),
        );
    }
    devices
}
