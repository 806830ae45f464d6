//! What the BatchSetValues tests share: a gateway with five thermostats (three in group `hall`)
//! behind a gated memory adapter, its face with the demo PKI, and readers of the Results.

pub(crate) mod gate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use iotmc_adapter::testkit::SimulatedDevice as _;
use iotmc_adapter::testkit::memory::{Fault, MemoryAdapter};
use iotmc_adapter::{Adapter, Value};
use iotmc_gateway::adapters::AdapterSet;
use iotmc_gateway::config::Config;
use iotmc_gateway::daemon::Gateway;
use iotmc_gateway::registry::gateway_udn;
use iotmc_gateway::upnp::UpnpFace;
use iotmc_gateway::upnp::services::specs::MANAGEMENT_CONTROLLER;
use iotmc_gateway::upnp::tls::{DemoPki, generate_demo_pki};
use tokio::sync::Semaphore;

use crate::common::{Reply, envelope, https, request, soap_action, texts, tls_client};
use gate::{Gate, GatedAdapter};

/// The SetValues path of the thermostats' setpoint.
pub(crate) const SETPOINT: &str = "/IoTMC/Parameters/setpoint";

/// A thermostat whose silence is noticed within 300 ms (no retries).
const THERMOSTAT_PROFILE: &str = r#"
id = "batch-thermostat"
manufacturer = "Batch Works"
model = "Batch thermostat"
protocol = "memory"

[[parameters]]
name = "setpoint"
type = "float"
access = "read-write"
range = { min = 5, max = 30 }

[[parameters]]
name = "mode"
type = "enum"
values = ["off", "heat", "eco"]
access = "read-write"

[poll]
timeout = "300ms"
retries = 0

[memory]
initial = { setpoint = 21.0, mode = "heat" }
"#;

/// A started gateway with thermostats `t-1`..`t-5` (`t-1`..`t-3` in group `hall`) behind the
/// gated memory adapter, and its face with the demo PKI.
pub(crate) struct Bench {
    pub(crate) memory: Arc<MemoryAdapter>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) gateway: Gateway,
    pub(crate) face: UpnpFace,
    pub(crate) pki: DemoPki,
}

fn quote(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

fn config(dir: &Path, pki: &DemoPki) -> Config {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("thermostat.toml"), THERMOSTAT_PROFILE).unwrap();
    let devices: String = (1..=5)
        .map(|i| {
            let group = if i <= 3 { "group = \"hall\"\n" } else { "" };
            format!(
                "[[devices]]\nid = \"t-{i}\"\nprofile = \"batch-thermostat\"\naddress = \"memory:t-{i}\"\n{group}\n"
            )
        })
        .collect();
    let text = format!(
        r#"
[gateway]
id = "batch-test"
name = "Batch test gateway"
state_dir = {state}
profile_dirs = [{profiles}]

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
ssdp_port = 0

[trust]
gateway_certificate = {cert}
gateway_key = {key}
operator_ca = {ca}

[[groups]]
name = "hall"

{devices}"#,
        state = quote(&dir.join("state")),
        profiles = quote(&profiles),
        cert = quote(&pki.server_certificate),
        key = quote(&pki.server_key),
        ca = quote(&pki.ca),
    );
    Config::from_toml(&dir.join("gateway.toml"), &text).unwrap_or_else(|e| panic!("{e:?}"))
}

impl Bench {
    pub(crate) async fn start(dir: &Path) -> Self {
        let pki = generate_demo_pki(&dir.join("pki")).unwrap();
        Self::start_with(dir, pki).await
    }

    pub(crate) async fn start_with(dir: &Path, pki: DemoPki) -> Self {
        let memory = Arc::new(MemoryAdapter::new(Fault::None));
        let gate = Arc::new(Gate::new());
        let adapter = GatedAdapter {
            memory: Arc::clone(&memory),
            gate: Arc::clone(&gate),
        };
        let adapters = AdapterSet::built().with(Arc::new(adapter) as Arc<dyn Adapter>);
        let gateway = Gateway::start(config(dir, &pki), adapters)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let face = UpnpFace::start(&gateway)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            memory,
            gate,
            gateway,
            face,
            pki,
        }
    }

    /// Stops the face and the gateway, and gives the PKI back for a restart.
    pub(crate) async fn stop(self) -> DemoPki {
        // Whatever a test left held goes through, so nothing waits on shutdown.
        self.gate.held.store(false, Ordering::SeqCst);
        self.gate.permits.add_permits(Semaphore::MAX_PERMITS / 2);
        self.face.stop().await;
        self.gateway.stop().await;
        self.pki
    }

    pub(crate) fn setpoint(&self, id: &str) -> Value {
        self.memory
            .device(&format!("memory:{id}"))
            .unwrap()
            .value("setpoint")
            .unwrap()
    }

    pub(crate) fn silence(&self, id: &str, silent: bool) {
        self.memory
            .device(&format!("memory:{id}"))
            .unwrap()
            .set_unresponsive(silent);
    }

    pub(crate) fn config_version(&self, id: &str) -> u64 {
        self.gateway
            .registry()
            .device(id)
            .unwrap()
            .unwrap()
            .config_version
    }

    pub(crate) fn versions(&self) -> Vec<u64> {
        (1..=5)
            .map(|i| self.config_version(&format!("t-{i}")))
            .collect()
    }

    pub(crate) fn control(&self) -> String {
        format!(
            "/upnp/{}/ManagementController/control",
            gateway_udn("batch-test")
        )
    }

    /// BatchSetValues over HTTPS with `identity` (the operator's when `None` is not asked for).
    pub(crate) async fn batch_as(
        &self,
        identity: Option<(&PathBuf, &PathBuf)>,
        args: [&str; 4],
    ) -> Reply {
        let connector = tls_client(
            &self.pki.ca,
            identity.map(|(c, k)| (c.as_path(), k.as_path())),
        );
        let addr = self.face.https_addr().unwrap();
        let controller = MANAGEMENT_CONTROLLER.service_type(&self.face.state().vendor_domain);
        https(
            &connector,
            addr,
            request(
                "POST",
                addr,
                &self.control(),
                &[
                    ("CONTENT-TYPE", "text/xml; charset=\"utf-8\""),
                    ("SOAPACTION", &soap_action(&controller, "BatchSetValues")),
                ],
                envelope(&controller, "BatchSetValues", &batch_args(args)),
            ),
        )
        .await
        .unwrap()
    }

    /// BatchSetValues(BatchId, Targets, ParameterValueList, MaxConcurrent) as the operator.
    pub(crate) async fn batch(&self, args: [&str; 4]) -> Reply {
        let pki = &self.pki;
        self.batch_as(Some((&pki.operator_certificate, &pki.operator_key)), args)
            .await
    }
}

pub(crate) fn batch_args(args: [&str; 4]) -> Vec<(&'static str, &str)> {
    ["BatchId", "Targets", "ParameterValueList", "MaxConcurrent"]
        .into_iter()
        .zip(args)
        .collect()
}

/// One `<Device>` of the Results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRow {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) code: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) version: u64,
}

/// The `<Device>` rows of a Results document, in order.
pub(crate) fn rows(results: &str) -> Vec<DeviceRow> {
    results
        .split("<Device>")
        .skip(1)
        .map(|device| {
            let one = |name: &str| {
                texts(
                    &format!("<Device>{}", device.replace("</BatchResults>", "")),
                    name,
                )
                .first()
                .cloned()
            };
            DeviceRow {
                id: one("Id").unwrap(),
                status: one("Status").unwrap(),
                code: one("ErrorCode"),
                description: one("ErrorDescription"),
                version: one("ConfigurationVersion").unwrap().parse().unwrap(),
            }
        })
        .collect()
}

/// The value of attribute `name` of the BatchResults element.
pub(crate) fn attribute(results: &str, name: &str) -> String {
    let start = results
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("{name} in {results}"));
    let rest = &results[start + name.len() + 3..];
    rest[..rest.find('"').unwrap()].to_owned()
}
