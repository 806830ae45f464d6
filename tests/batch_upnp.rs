//! ManagementController#BatchSetValues over mutual TLS against in-memory devices: per-device
//! results with a silent device among them, a retried BatchId that writes nothing (also after a
//! restart), a reused one refused, anonymous callers refused, bad calls refused before anything
//! is written, and MaxConcurrent held while writes are kept waiting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{
    HANG_GUARD, Reply, envelope, http, https, parameter_values, request, soap_action, texts,
    tls_client,
};
use iotmc_adapter::testkit::SimulatedDevice as _;
use iotmc_adapter::testkit::memory::{Fault, MemoryAdapter};
use iotmc_adapter::{
    ActionOutcome, ActionRequest, Adapter, DeviceBinding, DeviceLink, FirmwareTarget, Identity,
    LinkError, LinkEvent, LocatedError, LogSource, Profile, Readings, Resource, Value,
};
use iotmc_gateway::adapters::AdapterSet;
use iotmc_gateway::config::Config;
use iotmc_gateway::daemon::Gateway;
use iotmc_gateway::diagnostics::Filter;
use iotmc_gateway::lifecycle::LifecycleState;
use iotmc_gateway::registry::gateway_udn;
use iotmc_gateway::upnp::UpnpFace;
use iotmc_gateway::upnp::services::specs::MANAGEMENT_CONTROLLER;
use iotmc_gateway::upnp::tls::{DemoPki, generate_demo_pki};
use tokio::sync::{Semaphore, watch};

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

const SETPOINT: &str = "/IoTMC/Parameters/setpoint";

// ---------------------------------------------------------------------------------------------
// A memory adapter whose writes are counted and can be held until the test releases them.

/// What the test sees of the writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    /// Writes that reached the link.
    started: usize,
    /// Writes the link answered.
    finished: usize,
    /// Started, not finished.
    in_flight: usize,
    /// The most in flight at once.
    max_in_flight: usize,
}

#[derive(Debug)]
struct Gate {
    counts: watch::Sender<Counts>,
    /// When set, each write waits for a permit of `permits`.
    held: AtomicBool,
    permits: Semaphore,
}

impl Gate {
    fn new() -> Self {
        Self {
            counts: watch::channel(Counts::default()).0,
            held: AtomicBool::new(false),
            permits: Semaphore::new(0),
        }
    }

    fn counts(&self) -> Counts {
        *self.counts.borrow()
    }

    /// Waits (up to the hang guard) until the counts satisfy `f`.
    async fn wait_for(&self, what: &str, f: impl Fn(&Counts) -> bool) -> Counts {
        let mut counts = self.counts.subscribe();
        *tokio::time::timeout(HANG_GUARD, counts.wait_for(|c| f(c)))
            .await
            .unwrap_or_else(|_| panic!("waiting for {what}: {:?}", self.counts()))
            .unwrap()
    }

    async fn write(&self, inner: &dyn DeviceLink, values: &Readings) -> Result<(), LinkError> {
        self.counts.send_modify(|c| {
            c.started += 1;
            c.in_flight += 1;
            c.max_in_flight = c.max_in_flight.max(c.in_flight);
        });
        if self.held.load(Ordering::SeqCst) {
            self.permits.acquire().await.unwrap().forget();
        }
        let result = inner.write(values).await;
        self.counts.send_modify(|c| {
            c.finished += 1;
            c.in_flight -= 1;
        });
        result
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug)]
struct GatedAdapter {
    memory: Arc<MemoryAdapter>,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedLink {
    inner: Arc<dyn DeviceLink>,
    gate: Arc<Gate>,
}

// The traits are `#[async_trait]`; this crate does not depend on the macro, so the methods
// are written as it expands them.
impl Adapter for GatedAdapter {
    fn protocol(&self) -> &'static str {
        self.memory.protocol()
    }

    fn validate_profile(&self, profile: &Profile) -> Result<(), Vec<LocatedError>> {
        self.memory.validate_profile(profile)
    }

    fn profile_section_schema(&self) -> schemars::Schema {
        self.memory.profile_section_schema()
    }

    fn validate_address(&self, address: &str) -> Result<(), String> {
        self.memory.validate_address(address)
    }

    fn resources(&self, address: &str) -> Vec<Resource> {
        self.memory.resources(address)
    }

    fn attach<'a, 'b, 't>(
        &'a self,
        binding: &'b DeviceBinding,
    ) -> Boxed<'t, Result<Arc<dyn DeviceLink>, LinkError>>
    where
        'a: 't,
        'b: 't,
        Self: 't,
    {
        Box::pin(async move {
            let inner = self.memory.attach(binding).await?;
            Ok(Arc::new(GatedLink {
                inner,
                gate: Arc::clone(&self.gate),
            }) as Arc<dyn DeviceLink>)
        })
    }
}

impl DeviceLink for GatedLink {
    fn identify<'a, 't>(&'a self) -> Boxed<'t, Result<Identity, LinkError>>
    where
        'a: 't,
        Self: 't,
    {
        self.inner.identify()
    }

    fn read<'a, 'b, 't>(&'a self, names: &'b [String]) -> Boxed<'t, Result<Readings, LinkError>>
    where
        'a: 't,
        'b: 't,
        Self: 't,
    {
        self.inner.read(names)
    }

    fn write<'a, 'b, 't>(&'a self, values: &'b Readings) -> Boxed<'t, Result<(), LinkError>>
    where
        'a: 't,
        'b: 't,
        Self: 't,
    {
        Box::pin(self.gate.write(self.inner.as_ref(), values))
    }

    fn invoke<'a, 'b, 't>(
        &'a self,
        action: &'b ActionRequest,
    ) -> Boxed<'t, Result<ActionOutcome, LinkError>>
    where
        'a: 't,
        'b: 't,
        Self: 't,
    {
        self.inner.invoke(action)
    }

    fn events(&self) -> tokio::sync::broadcast::Receiver<LinkEvent> {
        self.inner.events()
    }

    fn firmware(&self) -> Option<&dyn FirmwareTarget> {
        self.inner.firmware()
    }

    fn logs(&self) -> Option<&dyn LogSource> {
        self.inner.logs()
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway under test.

/// A started gateway with thermostats `t-1`..`t-5` (`t-1`..`t-3` in group `hall`) behind the
/// gated memory adapter, and its face with the demo PKI.
struct Bench {
    memory: Arc<MemoryAdapter>,
    gate: Arc<Gate>,
    gateway: Gateway,
    face: UpnpFace,
    pki: DemoPki,
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
    async fn start(dir: &Path) -> Self {
        let pki = generate_demo_pki(&dir.join("pki")).unwrap();
        Self::start_with(dir, pki).await
    }

    async fn start_with(dir: &Path, pki: DemoPki) -> Self {
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
    async fn stop(self) -> DemoPki {
        // Whatever a test left held goes through, so nothing waits on shutdown.
        self.gate.held.store(false, Ordering::SeqCst);
        self.gate.permits.add_permits(Semaphore::MAX_PERMITS / 2);
        self.face.stop().await;
        self.gateway.stop().await;
        self.pki
    }

    fn setpoint(&self, id: &str) -> Value {
        self.memory
            .device(&format!("memory:{id}"))
            .unwrap()
            .value("setpoint")
            .unwrap()
    }

    fn silence(&self, id: &str, silent: bool) {
        self.memory
            .device(&format!("memory:{id}"))
            .unwrap()
            .set_unresponsive(silent);
    }

    fn config_version(&self, id: &str) -> u64 {
        self.gateway
            .registry()
            .device(id)
            .unwrap()
            .unwrap()
            .config_version
    }

    fn versions(&self) -> Vec<u64> {
        (1..=5)
            .map(|i| self.config_version(&format!("t-{i}")))
            .collect()
    }

    fn control(&self) -> String {
        format!(
            "/upnp/{}/ManagementController/control",
            gateway_udn("batch-test")
        )
    }

    /// BatchSetValues over HTTPS with `identity` (the operator's when `None` is not asked for).
    async fn batch_as(&self, identity: Option<(&PathBuf, &PathBuf)>, args: [&str; 4]) -> Reply {
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
    async fn batch(&self, args: [&str; 4]) -> Reply {
        let pki = &self.pki;
        self.batch_as(Some((&pki.operator_certificate, &pki.operator_key)), args)
            .await
    }
}

fn batch_args(args: [&str; 4]) -> Vec<(&'static str, &str)> {
    ["BatchId", "Targets", "ParameterValueList", "MaxConcurrent"]
        .into_iter()
        .zip(args)
        .collect()
}

/// One `<Device>` of the Results.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceRow {
    id: String,
    status: String,
    code: Option<String>,
    description: Option<String>,
    version: u64,
}

/// The `<Device>` rows of a Results document, in order.
fn rows(results: &str) -> Vec<DeviceRow> {
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
fn attribute(results: &str, name: &str) -> String {
    let start = results
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("{name} in {results}"));
    let rest = &results[start + name.len() + 3..];
    rest[..rest.find('"').unwrap()].to_owned()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_group_batch_with_a_silent_device_should_apply_the_others_and_report_each_device() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bench::start(dir.path()).await;
    b.silence("t-2", true);
    let before = b.versions();
    let list = parameter_values(&[(SETPOINT, "22.5")]);

    let results = b
        .batch(["nightly-1", "group:hall", &list, "0"])
        .await
        .argument("Results");

    assert_eq!(attribute(&results, "BatchId"), "nightly-1");
    assert_eq!(attribute(&results, "Devices"), "3");
    assert_eq!(attribute(&results, "Succeeded"), "2");
    assert_eq!(attribute(&results, "Failed"), "1");
    assert_eq!(attribute(&results, "Replayed"), "0");
    let rows = rows(&results);
    assert_eq!(
        rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["t-1", "t-2", "t-3"]
    );
    for row in [&rows[0], &rows[2]] {
        assert_eq!(row.status, "ChangesApplied", "{results}");
        assert_eq!((row.code.as_ref(), row.description.as_ref()), (None, None));
    }
    let failed = &rows[1];
    assert_eq!(failed.status, "Failed", "{results}");
    assert_eq!(failed.code.as_deref(), Some("707"), "{results}");
    let description = failed.description.as_deref().unwrap();
    assert!(description.contains("device t-2"), "{description}");

    // The simulators hold the value; each applied device made one new configuration version.
    assert_eq!(b.setpoint("t-1"), Value::Float(22.5));
    assert_eq!(b.setpoint("t-3"), Value::Float(22.5));
    assert_eq!(b.setpoint("t-2"), Value::Float(21.0));
    assert_eq!(
        b.setpoint("t-4"),
        Value::Float(21.0),
        "t-4 is not in the group"
    );
    let after = b.versions();
    assert_eq!(
        after,
        [
            before[0] + 1,
            before[1],
            before[2] + 1,
            before[3],
            before[4]
        ]
    );
    assert_eq!(
        rows.iter().map(|r| r.version).collect::<Vec<_>>(),
        [after[0], after[1], after[2]]
    );
    assert_eq!(b.gate.counts().started, 3);

    // Each device's log has the batch's outcome, with the batch id and the operator.
    let state = b.face.state();
    let done = state.diagnostics.records("t-1", &Filter::all(100));
    let done = done
        .iter()
        .find(|r| r.message == "SetValues carried out")
        .expect("t-1's log has the write");
    assert!(
        done.fields
            .iter()
            .any(|(n, v)| n == "batch" && v == "nightly-1"),
        "{done:?}"
    );
    assert!(done.fields.iter().any(|(n, _)| n == "operator"), "{done:?}");
    let failure = state.diagnostics.records("t-2", &Filter::all(100));
    assert!(
        failure
            .iter()
            .any(|r| r.message.starts_with("SetValues failed")
                && r.fields.iter().any(|(n, v)| n == "code" && v == "707")),
        "{failure:?}"
    );

    // The same batch again (another pace, other spacing, t-2 back): the stored results,
    // replayed, and nothing written.
    b.silence("t-2", false);
    let again = b
        .batch([" nightly-1 ", " group: hall ", &list, "1"])
        .await
        .argument("Results");
    assert_eq!(attribute(&again, "Replayed"), "1");
    assert_eq!(again.replace(r#"Replayed="1""#, r#"Replayed="0""#), results);
    assert_eq!(b.gate.counts().started, 3, "a replay writes nothing");
    assert_eq!(b.versions(), after);
    assert_eq!(b.setpoint("t-2"), Value::Float(21.0));

    // The same id for another request is refused, naming the batch and when it ran.
    let other = parameter_values(&[(SETPOINT, "19")]);
    let (code, description) = b
        .batch(["nightly-1", "group:hall", &other, "0"])
        .await
        .upnp_error();
    assert_eq!(code, 720, "{description}");
    assert!(
        description.contains("BatchId nightly-1 was already used for a different request"),
        "{description}"
    );
    assert!(description.contains("ran from 20"), "{description}");
    assert!(description.contains("new BatchId"), "{description}");
    assert_eq!(b.gate.counts().started, 3);
    assert_eq!(b.setpoint("t-1"), Value::Float(22.5));

    // After a restart (the simulators start afresh) the batch is still known and not rerun.
    let pki = b.stop().await;
    let b = Bench::start_with(dir.path(), pki).await;
    let replayed = b
        .batch(["nightly-1", "group:hall", &list, "0"])
        .await
        .argument("Results");
    assert_eq!(replayed, again);
    assert_eq!(b.gate.counts().started, 0);
    assert_eq!(b.setpoint("t-1"), Value::Float(21.0));
    assert_eq!(b.versions(), after);
    b.stop().await;
}

#[tokio::test]
async fn anonymous_batch_set_values_should_be_refused_with_606_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bench::start(dir.path()).await;
    let list = parameter_values(&[(SETPOINT, "25")]);
    let args = ["anon-1", "t-1,t-4", list.as_str(), "0"];

    let over_https = b.batch_as(None, args).await.upnp_error();
    let controller = MANAGEMENT_CONTROLLER.service_type(&b.face.state().vendor_domain);
    let over_http = http(
        b.face.http_addr(),
        "POST",
        &b.control(),
        &[
            ("CONTENT-TYPE", "text/xml; charset=\"utf-8\""),
            ("SOAPACTION", &soap_action(&controller, "BatchSetValues")),
        ],
        envelope(&controller, "BatchSetValues", &batch_args(args)),
    )
    .await
    .upnp_error();
    for (code, description) in [over_https, over_http] {
        assert_eq!(code, 606, "{description}");
        assert!(description.contains("BatchSetValues"), "{description}");
    }
    assert_eq!(b.gate.counts().started, 0);
    assert_eq!(b.setpoint("t-1"), Value::Float(21.0));

    // Nothing was recorded under the id: the operator can use it.
    let results = b.batch(args).await.argument("Results");
    assert_eq!(attribute(&results, "Replayed"), "0");
    assert_eq!(attribute(&results, "Succeeded"), "2");
    b.stop().await;
}

#[tokio::test]
async fn a_bad_call_should_be_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bench::start(dir.path()).await;
    let list = parameter_values(&[(SETPOINT, "25")]);
    let long_id = "x".repeat(129);
    // t-5 is decommissioned: no longer a target.
    let t5 = b
        .face
        .state()
        .devices
        .values()
        .find(|d| d.record().id == "t-5")
        .unwrap()
        .clone();
    t5.update_record(|r| r.lifecycle = LifecycleState::Decommissioned);
    let cases: [([&str; 4], u16, &str); 8] = [
        (["", "t-1", &list, "0"], 600, "BatchId"),
        ([&long_id, "t-1", &list, "0"], 600, "too long"),
        (["a b", "t-1", &list, "0"], 600, "not allowed"),
        (["bad-1", "t-1,t-9", &list, "0"], 600, "t-9"),
        (["bad-2", "group:cellar", &list, "0"], 600, "cellar"),
        (["bad-3", "t-5", &list, "0"], 600, "t-5"),
        (["bad-4", "t-1", "<Nope/>", "0"], 701, "ParameterValueList"),
        (
            [
                "bad-5",
                "t-1",
                &parameter_values(&[(SETPOINT, "20"), (SETPOINT, "21")]),
                "0",
            ],
            706,
            SETPOINT,
        ),
    ];
    for (args, expected, named) in cases {
        let (code, description) = b.batch(args).await.upnp_error();
        assert_eq!(code, expected, "{args:?}: {description}");
        assert!(description.contains(named), "{args:?}: {description}");
    }
    assert_eq!(b.gate.counts().started, 0);

    // A value one device's profile refuses fails that device alone, not the call.
    let results = b
        .batch([
            "range-1",
            "t-1",
            &parameter_values(&[(SETPOINT, "99")]),
            "0",
        ])
        .await
        .argument("Results");
    let refused = rows(&results);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].status, "Failed");
    assert_eq!(refused[0].code.as_deref(), Some("704"), "{results}");
    assert_eq!(b.setpoint("t-1"), Value::Float(21.0));

    // The group skips the decommissioned device too: t-5 is not in hall, t-3 is made so.
    b.face
        .state()
        .devices
        .values()
        .find(|d| d.record().id == "t-3")
        .unwrap()
        .update_record(|r| r.lifecycle = LifecycleState::Decommissioned);
    let results = b
        .batch(["hall-1", "group:hall", &list, "0"])
        .await
        .argument("Results");
    assert_eq!(
        rows(&results)
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["t-1", "t-2"]
    );
    assert_eq!(b.setpoint("t-3"), Value::Float(21.0));
    b.stop().await;
}

#[tokio::test]
async fn max_concurrent_should_bound_the_writes_and_a_retry_during_the_batch_should_not_rerun_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(Bench::start(dir.path()).await);
    b.gate.held.store(true, Ordering::SeqCst);
    let list = parameter_values(&[(SETPOINT, "18.5")]);
    let targets = "t-1,t-2,t-3,t-4,t-5";

    let first = tokio::spawn({
        let (b, list) = (Arc::clone(&b), list.clone());
        async move { b.batch(["paced-1", targets, &list, "2"]).await }
    });
    b.gate
        .wait_for("two writes under way", |c| c.in_flight >= 2)
        .await;
    let retry = tokio::spawn({
        let (b, list) = (Arc::clone(&b), list.clone());
        async move { b.batch(["paced-1", targets, &list, "2"]).await }
    });
    // While it runs, the id is taken: another request under it is refused at once.
    let (code, description) = b
        .batch([
            "paced-1",
            targets,
            &parameter_values(&[(SETPOINT, "19")]),
            "2",
        ])
        .await
        .upnp_error();
    assert_eq!(code, 720, "{description}");
    assert!(description.contains("is running since"), "{description}");

    // Release the writes one at a time: never more than two under way.
    for done in 1..=5 {
        assert_eq!(b.gate.counts().max_in_flight, 2);
        b.gate.permits.add_permits(1);
        b.gate
            .wait_for("a write to finish", |c| c.finished == done)
            .await;
    }
    let first = first.await.unwrap().argument("Results");
    let retry = retry.await.unwrap().argument("Results");
    let counts = b.gate.counts();
    assert_eq!((counts.started, counts.max_in_flight), (5, 2), "{counts:?}");
    assert_eq!(attribute(&first, "Succeeded"), "5");
    assert_eq!(attribute(&first, "Replayed"), "0");
    assert_eq!(attribute(&retry, "Replayed"), "1");
    assert_eq!(retry.replace(r#"Replayed="1""#, r#"Replayed="0""#), first);
    for i in 1..=5 {
        assert_eq!(b.setpoint(&format!("t-{i}")), Value::Float(18.5));
    }
    Arc::into_inner(b).unwrap().stop().await;
}
