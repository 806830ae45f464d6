//! The conformance kit: one run of checks that every adapter's tests drive against the adapter's
//! simulator, so every protocol honours the same contract.
//!
//! ```text
//! let report = Conformance::new(link, profile, &simulator)
//!     .with_firmware(FirmwareFixture { first, second })
//!     .run()
//!     .await;
//! report.assert_passed();
//! ```
//!
//! The checks: identify; read every readable parameter; write every writable parameter with a
//! valid value different from the current one and read it back; every declared action (waiting
//! for the device to come back where it accepted an action that takes it away); firmware stage /
//! activate / confirm / revert where the target supports them; log fetch with cursors; and the
//! error cases (unknown parameter and action, read-only write, wrong type, out-of-range value,
//! device timeout and recovery) giving the documented [`ErrorKind`]s.

mod firmware;
pub mod memory;
mod values;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::{
    ActionOutcome, ActionRequest, DeviceLink, ErrorKind, FirmwareImage, LinkError, Profile,
    Readings, Severity, Value,
};

/// Control over the simulated device behind a link, for the checks that need the device to
/// misbehave or to produce something.
pub trait SimulatedDevice: Send + Sync {
    /// Stops answering any request (`true`), or answers again (`false`).
    fn set_unresponsive(&self, unresponsive: bool);

    /// Appends a record to the device's own log (only called when the link has a log source).
    fn append_log(&self, severity: Severity, message: &str);
}

/// Two images the simulator accepts, with different versions, for the firmware checks.
#[derive(Debug, Clone)]
pub struct FirmwareFixture {
    /// Installed and confirmed first.
    pub first: FirmwareImage,
    /// Installed in test mode and then reverted (dual-bank targets).
    pub second: FirmwareImage,
}

/// How one check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It held.
    Passed,
    /// It did not hold; the text says what was seen.
    Failed(String),
    /// It does not apply to this device; the text says why.
    Skipped(String),
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `write reads back: setpoint`.
    pub name: String,
    /// How it went.
    pub outcome: Outcome,
}

/// All the checks of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every check, in the order run.
    pub checks: Vec<Check>,
}

impl Report {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    /// Whether the check of this name ran and passed.
    pub fn passed(&self, name: &str) -> bool {
        self.checks
            .iter()
            .any(|c| c.name == name && c.outcome == Outcome::Passed)
    }

    /// Panics with every failed check listed, if any failed.
    #[track_caller]
    pub fn assert_passed(&self) {
        let failures: Vec<String> = self.failures().map(ToString::to_string).collect();
        assert!(
            failures.is_empty(),
            "{} of {} conformance checks failed:\n  {}\n\nfull report:\n{self}",
            failures.len(),
            self.checks.len(),
            failures.join("\n  ")
        );
    }

    fn record(&mut self, name: impl Into<String>, outcome: Outcome) {
        self.checks.push(Check {
            name: name.into(),
            outcome,
        });
    }

    fn check(&mut self, name: impl Into<String>, result: Result<(), String>) {
        let outcome = match result {
            Ok(()) => Outcome::Passed,
            Err(why) => Outcome::Failed(why),
        };
        self.record(name, outcome);
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Passed => write!(f, "pass  {}", self.name),
            Outcome::Failed(why) => write!(f, "FAIL  {}: {why}", self.name),
            Outcome::Skipped(why) => write!(f, "skip  {}: {why}", self.name),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "  {check}")?;
        }
        Ok(())
    }
}

/// One conformance run against one link.
pub struct Conformance<'a> {
    link: Arc<dyn DeviceLink>,
    profile: Arc<Profile>,
    device: &'a dyn SimulatedDevice,
    firmware: Option<FirmwareFixture>,
    report: Report,
}

impl fmt::Debug for Conformance<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conformance")
            .field("link", &self.link)
            .field("profile", &self.profile.id)
            .finish_non_exhaustive()
    }
}

/// The default bound on any single operation the kit waits for.
const OPERATION_DEADLINE: Duration = Duration::from_secs(120);

impl<'a> Conformance<'a> {
    /// A run against `link`, attached with `profile`, to the simulated `device`.
    pub fn new(
        link: Arc<dyn DeviceLink>,
        profile: Arc<Profile>,
        device: &'a dyn SimulatedDevice,
    ) -> Self {
        Self {
            link,
            profile,
            device,
            firmware: None,
            report: Report::default(),
        }
    }

    /// Images for the firmware checks; required when the profile declares a firmware method.
    pub fn with_firmware(mut self, fixture: FirmwareFixture) -> Self {
        self.firmware = Some(fixture);
        self
    }

    /// Runs every check and returns the report.
    pub async fn run(mut self) -> Report {
        self.identify().await;
        self.capabilities_match_profile();
        self.reads().await;
        self.writes().await;
        self.refusals().await;
        self.actions().await;
        self.firmware().await;
        self.logs().await;
        self.timeout_and_recovery().await;
        self.report
    }

    async fn identify(&mut self) {
        let result = match bounded(self.link.identify()).await {
            Ok(identity) if identity.manufacturer.trim().is_empty() => {
                Err("identify returned an empty manufacturer".to_owned())
            }
            Ok(identity) if identity.model.trim().is_empty() => {
                Err("identify returned an empty model".to_owned())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(format!("identify failed: {e}")),
        };
        self.report.check("identify", result);
    }

    fn capabilities_match_profile(&mut self) {
        let declared = self.profile.firmware.is_supported();
        let present = self.link.firmware().is_some();
        self.report.check(
            "firmware target present exactly when the profile declares a method",
            expect_eq("firmware target present", present, declared),
        );
        let declared = self.profile.logs.is_supported();
        let present = self.link.logs().is_some();
        self.report.check(
            "log source present exactly when the profile declares a method",
            expect_eq("log source present", present, declared),
        );
    }

    async fn reads(&mut self) {
        let readable = self.profile.readable_parameters();
        if readable.is_empty() {
            self.report
                .record("read all", Outcome::Skipped("no readable parameter".into()));
            return;
        }
        let result = match bounded(self.link.read(&readable)).await {
            Ok(values) => check_readings(&self.profile, &readable, &values),
            Err(e) => Err(format!("read failed: {e}")),
        };
        self.report.check("read all readable parameters", result);
    }

    async fn writes(&mut self) {
        let profile = Arc::clone(&self.profile);
        for parameter in profile.parameters.iter().filter(|p| p.access.can_write()) {
            let name = format!("write reads back: {}", parameter.name);
            let current = if parameter.access.can_read() {
                match bounded(self.link.read(std::slice::from_ref(&parameter.name))).await {
                    Ok(mut values) => values.remove(&parameter.name),
                    Err(e) => {
                        self.report
                            .check(name, Err(format!("read before write failed: {e}")));
                        continue;
                    }
                }
            } else {
                None
            };
            let Some(value) = values::different_valid_value(parameter, current.as_ref()) else {
                self.report.record(
                    name,
                    Outcome::Skipped("the declaration allows no other value".into()),
                );
                continue;
            };
            let request = Readings::from([(parameter.name.clone(), value.clone())]);
            if let Err(e) = bounded(self.link.write(&request)).await {
                self.report
                    .check(name, Err(format!("writing {value} failed: {e}")));
                continue;
            }
            if !parameter.access.can_read() {
                self.report
                    .record(name, Outcome::Skipped("write-only parameter".into()));
                continue;
            }
            let result = match bounded(self.link.read(std::slice::from_ref(&parameter.name))).await
            {
                Ok(values) => match values.get(&parameter.name) {
                    Some(back) if values::same(parameter, back, &value) => Ok(()),
                    Some(back) => Err(format!("wrote {value}, read back {back}")),
                    None => Err("the read after the write returned no value".into()),
                },
                Err(e) => Err(format!("read after write failed: {e}")),
            };
            self.report.check(name, result);
        }
    }

    async fn refusals(&mut self) {
        let unknown = "no_such_parameter_in_any_profile".to_owned();
        let result = bounded(self.link.read(std::slice::from_ref(&unknown))).await;
        self.report.check(
            "read of an unknown parameter is UnknownParameter",
            expect_kind(result.map(|_| ()), ErrorKind::UnknownParameter),
        );
        let result = bounded(self.link.write(&Readings::from([(unknown, Value::Int(1))]))).await;
        self.report.check(
            "write of an unknown parameter is UnknownParameter",
            expect_kind(result, ErrorKind::UnknownParameter),
        );
        let result = bounded(
            self.link
                .invoke(&ActionRequest::new("no_such_action_in_any_profile")),
        )
        .await;
        self.report.check(
            "unknown action is UnknownAction",
            expect_kind(result.map(|_| ()), ErrorKind::UnknownAction),
        );

        let profile = Arc::clone(&self.profile);
        if let Some((p, value)) = profile
            .parameters
            .iter()
            .filter(|p| !p.access.can_write())
            .find_map(|p| values::different_valid_value(p, None).map(|v| (p, v)))
        {
            let result = bounded(self.link.write(&Readings::from([(p.name.clone(), value)]))).await;
            self.report.check(
                format!("write of read-only `{}` is AccessDenied", p.name),
                expect_kind(result, ErrorKind::AccessDenied),
            );
        }
        if let Some(p) = profile
            .parameters
            .iter()
            .find(|p| p.access.can_write() && p.value_type.is_numeric())
        {
            let request = Readings::from([(p.name.clone(), Value::Text("not a number".into()))]);
            let result = bounded(self.link.write(&request)).await;
            self.report.check(
                format!("write of text to numeric `{}` is WrongType", p.name),
                expect_kind(result, ErrorKind::WrongType),
            );
        }
        match profile.parameters.iter().find_map(|p| {
            p.access
                .can_write()
                .then(|| values::out_of_range_value(p))
                .flatten()
                .map(|v| (p, v))
        }) {
            Some((p, value)) => {
                let result = bounded(
                    self.link
                        .write(&Readings::from([(p.name.clone(), value.clone())])),
                )
                .await;
                self.report.check(
                    format!("write of {value} to `{}` is OutOfRange", p.name),
                    expect_kind(result, ErrorKind::OutOfRange),
                );
            }
            None => self.report.record(
                "out-of-range write is OutOfRange",
                Outcome::Skipped("no writable parameter with a range or members".into()),
            ),
        }
    }

    async fn actions(&mut self) {
        let profile = Arc::clone(&self.profile);
        // Factory reset last among the actions, so it cannot hide what the others did.
        let mut actions: Vec<_> = profile.actions.iter().collect();
        actions.sort_by_key(|a| a.kind == crate::profile::ActionKind::FactoryReset);
        for action in actions {
            let request = ActionRequest {
                name: action.name.clone(),
                arguments: values::valid_arguments(action),
            };
            let name = format!("action: {}", action.name);
            let result = match bounded(self.link.invoke(&request)).await {
                Ok(ActionOutcome::Done { .. }) => Ok(()),
                Ok(ActionOutcome::Accepted) => self.wait_until_back(action.timeout).await,
                Err(e) => Err(format!("invoke failed: {e}")),
            };
            self.report.check(name, result);
        }
    }

    /// Waits until the device answers `identify` again, within `deadline`.
    async fn wait_until_back(&self, deadline: Duration) -> Result<(), String> {
        let poll = async {
            loop {
                match self.link.identify().await {
                    Ok(_) => return,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        };
        tokio::time::timeout(deadline, poll).await.map_err(|_| {
            format!("the device did not answer again within the action's timeout of {deadline:?}")
        })
    }

    async fn logs(&mut self) {
        let Some(logs) = self.link.logs() else {
            self.report
                .record("log fetch", Outcome::Skipped("no log source".into()));
            return;
        };
        self.device
            .append_log(Severity::Error, "conformance record one");
        let first = match collect_until(logs, None, "conformance record one").await {
            Ok(found) => found,
            Err(e) => {
                self.report
                    .check("log fetch returns a record the device logged", Err(e));
                return;
            }
        };
        self.report
            .check("log fetch returns a record the device logged", Ok(()));
        self.device
            .append_log(Severity::Warning, "conformance record two");
        let result = match collect_until(logs, first.next, "conformance record two").await {
            Ok(found) if has(&found.records, "conformance record one") => {
                Err("fetch from the cursor repeated a record".to_owned())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(format!("fetch from the cursor: {e}")),
        };
        self.report
            .check("log fetch from a cursor returns only newer records", result);
    }

    async fn timeout_and_recovery(&mut self) {
        let Some(parameter) = self.profile.parameters.iter().find(|p| p.access.can_read()) else {
            self.report.record(
                "device timeout",
                Outcome::Skipped("no readable parameter".into()),
            );
            return;
        };
        let names = vec![parameter.name.clone()];
        self.device.set_unresponsive(true);
        // A link that learns of a device's absence from a push (an MQTT last will, a Homie
        // `$state`) may answer from its last values until that push arrives; reads are
        // repeated until they fail, within a deadline.
        let poll = async {
            loop {
                match bounded(self.link.read(&names)).await {
                    Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    Err(e) => return Err::<(), _>(e),
                }
            }
        };
        let result = tokio::time::timeout(UNRESPONSIVE_NOTICED, poll)
            .await
            .unwrap_or(Ok(()));
        self.report.check(
            "read from an unresponsive device is Timeout",
            expect_kind(result, ErrorKind::Timeout),
        );
        self.device.set_unresponsive(false);
        let result = bounded(self.link.read(&names)).await;
        self.report.check(
            "the link recovers when the device answers again",
            result
                .map(|_| ())
                .map_err(|e| format!("read after recovery failed: {e}")),
        );
    }
}

fn has(records: &[crate::DeviceLogRecord], text: &str) -> bool {
    records.iter().any(|r| r.message.contains(text))
}

/// How long a link may keep answering from its last values after the device stopped answering.
const UNRESPONSIVE_NOTICED: Duration = Duration::from_secs(15);

/// How long a record the simulator logged may take to reach the link (logs pushed over a broker
/// arrive asynchronously).
const LOG_ARRIVAL: Duration = Duration::from_secs(5);

/// Fetches from `since`, following the returned cursors, until a record containing `text` was
/// fetched or [`LOG_ARRIVAL`] passed. Returns every record fetched and the last cursor.
async fn collect_until(
    logs: &dyn crate::LogSource,
    since: Option<crate::LogCursor>,
    text: &str,
) -> Result<crate::LogBatch, String> {
    let mut found = crate::LogBatch {
        records: Vec::new(),
        next: since,
    };
    let poll = async {
        loop {
            let batch = bounded(logs.fetch(found.next))
                .await
                .map_err(|e| format!("fetch failed: {e}"))?;
            found.records.extend(batch.records);
            if batch.next.is_some() {
                found.next = batch.next;
            }
            if has(&found.records, text) {
                return Ok::<(), String>(());
            }
            // Polling a push-fed source for a record that is on its way.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    match tokio::time::timeout(LOG_ARRIVAL, poll).await {
        Ok(Ok(())) => Ok(found),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "{} records fetched within {LOG_ARRIVAL:?}, none is {text:?} the simulator logged",
            found.records.len()
        )),
    }
}

/// Runs `operation` with the kit's outer deadline, so a link that hangs fails the check instead
/// of hanging the test.
async fn bounded<T>(operation: impl Future<Output = Result<T, LinkError>>) -> Result<T, LinkError> {
    tokio::time::timeout(OPERATION_DEADLINE, operation)
        .await
        .unwrap_or(Err(LinkError::Transport(format!(
            "the kit gave up after {OPERATION_DEADLINE:?}: the link hung instead of timing out"
        ))))
}

fn expect_kind(result: Result<(), LinkError>, expected: ErrorKind) -> Result<(), String> {
    match result {
        Ok(()) => Err(format!("succeeded; expected a {expected:?} error")),
        Err(e) if e.kind() == expected => Ok(()),
        Err(e) => Err(format!(
            "failed as {:?} ({e}); expected {expected:?}",
            e.kind()
        )),
    }
}

fn expect_eq<T: PartialEq + fmt::Debug>(what: &str, got: T, expected: T) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {expected:?}"))
    }
}

fn check_readings(profile: &Profile, asked: &[String], values: &Readings) -> Result<(), String> {
    for name in asked {
        let Some(value) = values.get(name) else {
            return Err(format!("no value returned for `{name}`"));
        };
        let Some(parameter) = profile.parameter(name) else {
            return Err(format!("the kit asked for undeclared `{name}`"));
        };
        if let Err(e) = values::type_matches(parameter, value) {
            return Err(format!("`{name}`: {e}"));
        }
    }
    if let Some(extra) = values.keys().find(|k| !asked.contains(k)) {
        return Err(format!("returned `{extra}`, which was not asked for"));
    }
    Ok(())
}
