//! kill -9 of the real gateway binary during a firmware update, then a restart on the same state
//! directory (issue 6, item 7): a transfer resumes from its acknowledged offset instead of
//! starting again, and a probation deadline holds. The simulated Modbus controller lives in
//! this test process, so it survives the gateway; everything is observed through UPnP.
#![cfg(feature = "modbus")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;
mod firmware;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use firmware::control::{Face, Service};
use firmware::events::{Listener, UpdateStatus};
use firmware::images::{Imported, MODBUS_PROFILE, SimImage, Vendor};
use firmware::modbus::{CHUNK, Controller};
use firmware::{GUARD, firmware_update_type, parse_utc, quote, utc};
use iotmc_gateway::registry::gateway_udn;
use iotmc_gateway::upnp::tls::{DemoPki, generate_demo_pki};
use tokio::sync::mpsc;

const GATEWAY_ID: &str = "fw-restart";
const DEVICE: &str = "controller-1";

/// The gateway binary, killed (SIGKILL) when dropped; its log is printed if the test failed.
struct Daemon {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    log: Vec<String>,
}

impl Daemon {
    /// `iotmc-gateway run --config <config> --log-format json`.
    fn spawn(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iotmc-gateway"))
            .args(["run", "--config"])
            .arg(config)
            .args(["--log-format", "json"])
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for the face to serve and returns it, called as the operator of `pki`.
    async fn face(&mut self, pki: &DemoPki) -> Face {
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| {
                    panic!(
                        "the gateway never said `UPnP face serving`; its log:\n{}",
                        self.log.join("\n")
                    )
                });
            self.log.push(line.clone());
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if event["message"] != "UPnP face serving" {
                continue;
            }
            let http: SocketAddr = event["http"].as_str().unwrap().parse().unwrap();
            let https = event["https"].as_str().unwrap();
            let https: SocketAddr = https
                .strip_prefix("Some(")
                .and_then(|a| a.strip_suffix(')'))
                .unwrap_or(https)
                .parse()
                .unwrap_or_else(|e| panic!("https address {https}: {e}"));
            return Face::new(http, https, pki);
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            while let Ok(line) = self.lines.try_recv() {
                self.log.push(line);
            }
            let from = self.log.len().saturating_sub(200);
            eprintln!(
                "--- gateway log (last {} lines) ---\n{}",
                self.log.len() - from,
                self.log[from..].join("\n")
            );
        }
    }
}

/// A state directory, a config for the binary, the vendor's keys, the demo PKI and the
/// simulated controller (in this process).
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    vendor: Vendor,
    pki: DemoPki,
    controller: Controller,
}

impl Setup {
    /// Everything for a gateway whose `hvac` group has `probation`.
    fn new(probation: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let vendor = Vendor::new(dir.path());
        let pki = generate_demo_pki(&dir.path().join("pki")).unwrap();
        let controller = Controller::start();
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[gateway]
id = "{GATEWAY_ID}"
name = "Firmware restart test"
state_dir = {state}
profile_dirs = [{profiles}]
shutdown_grace = "2s"

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
ssdp_port = 0

[trust]
gateway_certificate = {certificate}
gateway_key = {key}
operator_ca = {ca}
firmware_keys = {firmware_keys}

[firmware]
scan_interval = "200ms"
check_interval = "300ms"
test_probation_floor = "1s"

[[groups]]
name = "hvac"

[groups.firmware]
probation = "{probation}"
emergency_probation = "1s"

[[devices]]
id = "{DEVICE}"
profile = "{MODBUS_PROFILE}"
address = "{address}"
group = "hvac"
"#,
                state = quote(&dir.path().join("state")),
                profiles = quote(&firmware::profile_dir()),
                certificate = quote(&pki.server_certificate),
                key = quote(&pki.server_key),
                ca = quote(&pki.ca),
                firmware_keys = quote(&vendor.trust_dir),
                address = controller.address(),
            ),
        )
        .unwrap();
        Self {
            dir,
            config,
            vendor,
            pki,
            controller,
        }
    }

    /// Signs and imports `image` into the gateway's store.
    fn import(&self, image: &SimImage) -> Imported {
        self.vendor.import(&self.dir.path().join("state"), image)
    }

    /// Starts the binary and finds the controller's FirmwareUpdate service through UPnP.
    async fn start(&self) -> (Daemon, Face, Service) {
        let mut daemon = Daemon::spawn(&self.config);
        let face = daemon.face(&self.pki).await;
        let udn = face.inventory(gateway_udn(GATEWAY_ID)).await[DEVICE];
        let service = face.service(udn, &firmware_update_type()).await;
        (daemon, face, service)
    }
}

/// Whether `value` is a FirmwareUpdateStatus of `update_id` for which `accept` holds.
fn status_of(value: &str, update_id: &str, accept: impl Fn(&UpdateStatus) -> bool) -> bool {
    let status = UpdateStatus::parse(value);
    status.update_id == update_id && accept(&status)
}

fn is_terminal(status: &UpdateStatus) -> bool {
    matches!(
        status.status.as_str(),
        "Confirmed" | "RolledBack" | "Failed" | "Cancelled"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_killed_mid_way_should_resume_from_its_offset_after_a_restart_and_be_confirmed()
{
    let setup = Setup::new("3s");
    let image = setup.import(&SimImage::new("2.0.0", true, 512 * 1024, &[MODBUS_PROFILE]));
    let (mut daemon, face, service) = setup.start().await;
    let mut events = Listener::start().await;
    events.subscribe(face.http, &service.event, "/before").await;
    let offer = image.available();
    events
        .until("/before", "FirmwareAvailable", "the image on offer", |v| {
            v == offer
        })
        .await;

    // ~2150 Write File Record requests, each answered after 4 ms: the transfer takes seconds.
    setup
        .controller
        .sim()
        .faults()
        .set_delay(Duration::from_millis(4));
    let update = face
        .schedule_ok(&service, &utc(SystemTime::now()), &image.sha256)
        .await;
    events
        .until(
            "/before",
            "FirmwareUpdateStatus",
            "the transfer under way",
            |v| {
                status_of(v, &update, |s| {
                    s.status == "Transferring" && s.acknowledged > 0
                })
            },
        )
        .await;
    let before = face.update_status(&service).await;
    assert_eq!(before.update_id, update);
    assert_eq!(before.status, "Transferring", "{before:?}");
    assert!(
        before.acknowledged > 0 && before.acknowledged < image.size,
        "mid-transfer: {before:?}"
    );
    assert_eq!(before.total, image.size);

    daemon.kill();
    let sent_before_kill = setup.controller.image_bytes();
    assert!(
        sent_before_kill >= before.acknowledged,
        "the device received what the gateway reported acknowledged"
    );

    let (_daemon, face, service) = setup.start().await;
    let after = face.update_status(&service).await;
    assert_eq!(
        after.update_id, update,
        "the same update goes on: {after:?}"
    );
    assert_eq!(after.status, "Transferring", "{after:?}");
    assert!(
        after.acknowledged >= before.acknowledged,
        "the acknowledged offset survived the kill: {} before, {} after",
        before.acknowledged,
        after.acknowledged
    );

    events.subscribe(face.http, &service.event, "/after").await;
    let end = events
        .until("/after", "FirmwareUpdateStatus", "the update to end", |v| {
            status_of(v, &update, is_terminal)
        })
        .await;
    let end = UpdateStatus::parse(&end);
    assert_eq!(
        (end.status.as_str(), end.result),
        ("Confirmed", 1),
        "{end:?}"
    );
    assert_eq!(
        events.phases("/after", &update),
        [
            "Transferring",
            "Staged",
            "Rebooting",
            "Probation",
            "Confirmed"
        ],
        "after the restart the transfer went on, and every phase was evented"
    );
    assert_eq!(setup.controller.sim().running_version(), "2.0.0");
    assert_eq!(setup.controller.confirmed(), Some(true));

    let received = setup.controller.image_bytes();
    let resumed = received - sent_before_kill;
    assert!(received >= image.size, "the whole image arrived");
    assert!(
        resumed < image.size,
        "the transfer resumed instead of starting again: {resumed} bytes after the restart, of {}",
        image.size
    );
    // At most the request in flight at the kill (counted after it) and one re-sent request.
    assert!(
        resumed <= image.size - before.acknowledged + 2 * CHUNK,
        "the transfer resumed from the offset acknowledged before the kill ({}): {resumed} bytes after the restart, of {}",
        before.acknowledged,
        image.size
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probation_killed_mid_way_should_keep_its_deadline_after_a_restart_and_confirm_no_earlier()
 {
    let setup = Setup::new("8s");
    let image = setup.import(&SimImage::new("2.0.0", true, 64 * 1024, &[MODBUS_PROFILE]));
    let (mut daemon, face, service) = setup.start().await;
    let mut events = Listener::start().await;
    events.subscribe(face.http, &service.event, "/before").await;
    let offer = image.available();
    events
        .until("/before", "FirmwareAvailable", "the image on offer", |v| {
            v == offer
        })
        .await;

    let update = face
        .schedule_ok(&service, &utc(SystemTime::now()), &image.sha256)
        .await;
    events
        .until("/before", "FirmwareUpdateStatus", "probation", |v| {
            status_of(v, &update, |s| s.status == "Probation")
        })
        .await;
    let before = face.update_status(&service).await;
    assert_eq!(
        (before.update_id.as_str(), before.status.as_str()),
        (update.as_str(), "Probation"),
        "{before:?}"
    );
    let deadline = parse_utc(&before.probation_ends);
    assert!(
        deadline > SystemTime::now(),
        "probation ends in the future: {before:?}"
    );
    assert_eq!(setup.controller.sim().running_version(), "2.0.0");
    assert_eq!(
        setup.controller.confirmed(),
        Some(false),
        "the new image runs on test"
    );

    // Probation time passes on purpose (this is not a wait for something to happen): killed
    // 3 s into the 8 s probation, a deadline counted again from the restart would end seconds
    // after the one reported before, even at the one-second resolution of ProbationEnds.
    let kill_at = deadline - Duration::from_secs(5);
    if let Ok(left) = kill_at.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
    assert_eq!(
        face.update_status(&service).await.status,
        "Probation",
        "still on probation when killed"
    );
    daemon.kill();
    assert_eq!(
        setup.controller.confirmed(),
        Some(false),
        "nobody confirmed it yet"
    );

    let (_daemon, face, service) = setup.start().await;
    let after = face.update_status(&service).await;
    assert_eq!(
        (after.update_id.as_str(), after.status.as_str()),
        (update.as_str(), "Probation"),
        "{after:?}"
    );
    assert_eq!(
        parse_utc(&after.probation_ends),
        deadline,
        "the probation deadline survived the kill: {} before, {} after",
        before.probation_ends,
        after.probation_ends
    );

    events.subscribe(face.http, &service.event, "/after").await;
    let end = events
        .until("/after", "FirmwareUpdateStatus", "the update to end", |v| {
            status_of(v, &update, is_terminal)
        })
        .await;
    let confirmed_seen = SystemTime::now();
    let end = UpdateStatus::parse(&end);
    assert_eq!(
        (end.status.as_str(), end.result),
        ("Confirmed", 1),
        "{end:?}"
    );
    assert!(
        confirmed_seen >= deadline,
        "confirmed no earlier than the deadline: seen at {}, probation ends {}",
        utc(confirmed_seen),
        before.probation_ends
    );
    assert_eq!(setup.controller.sim().running_version(), "2.0.0");
    assert_eq!(
        setup.controller.confirmed(),
        Some(true),
        "the restarted gateway confirmed it"
    );
}
