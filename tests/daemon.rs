//! `iotmc-gateway run` as systemd runs it: readiness over NOTIFY_SOCKET, JSON logs, a clean stop
//! on SIGTERM, and a refusal with located errors for a bad config.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Guards against a hang only.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("gateway.toml");
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::write(
        &path,
        // Port 0 everywhere: the defaults (49152, 49443, 1900) lie in the ephemeral range, where
        // a test running beside this one may hold them.
        format!("[gateway]\nid = \"gw\"\nname = \"Test\"\nstate_dir = \"state\"\nprofile_dirs = [\"profiles\"]\nshutdown_grace = \"2s\"\n\n[listen]\ninterfaces = [\"lo\"]\nhttp = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:0\"\nssdp_port = 0\n{extra}"),
    )
    .unwrap();
    path
}

#[test]
fn run_should_notify_ready_log_json_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(HANG_GUARD)).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_iotmc-gateway"))
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--log-format",
            "json",
        ])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("the daemon notified systemd");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.lines().any(|l| l == "READY=1"), "{message:?}");
    assert!(
        dir.path().join("state/registry.redb").is_file(),
        "ready means the registry is open"
    );

    let n = socket
        .recv(&mut buf)
        .expect("the daemon pinged the watchdog");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim_end(), "WATCHDOG=1");

    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    loop {
        let n = socket
            .recv(&mut buf)
            .expect("the daemon said it is stopping");
        match String::from_utf8_lossy(&buf[..n]).trim_end() {
            "WATCHDOG=1" => {}
            message => {
                assert_eq!(message, "STOPPING=1");
                break;
            }
        }
    }

    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        tx.send((
            child.wait(),
            BufReader::new(stderr)
                .lines()
                .collect::<Result<Vec<_>, _>>(),
        ))
    });
    let (status, lines) = rx
        .recv_timeout(HANG_GUARD)
        .expect("the daemon exited after SIGTERM");
    let (status, lines) = (status.unwrap(), lines.unwrap());
    assert!(status.success(), "exit status {status}; log: {lines:#?}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    for expected in ["gateway ready", "stop requested", "stopping", "stopped"] {
        assert!(
            messages.contains(&expected),
            "missing {expected:?} in {messages:?}"
        );
    }
    let stop = events
        .iter()
        .find(|e| e["message"] == "stop requested")
        .unwrap();
    assert_eq!(stop["signal"], "SIGTERM");
}

#[test]
fn run_with_a_bad_config_should_exit_1_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "\n[[groups]]\nname = \"hvac\"\nvlan = 4095\nparent_interface = \"eth0\"\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_iotmc-gateway"))
        .args(["run", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("gateway.toml:16:8: field `groups[0].vlan`: 4095 is not a usable VLAN id; expected 1 to 4094"), "{stderr}");
    assert!(
        !dir.path().join("state").exists(),
        "nothing is created for a refused config"
    );
}
