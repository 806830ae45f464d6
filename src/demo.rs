//! `iotmc-gateway demo`: the gateway with simulated devices of every built protocol, on
//! loopback, with state in a temporary directory.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::time::Instant;

use crate::adapters::{AdapterSet, KNOWN_PROTOCOLS};
use crate::config::Config;
use crate::daemon::Gateway;
use crate::registry::gateway_udn;

/// Gateway id the demo runs as.
pub const DEMO_GATEWAY_ID: &str = "demo";

/// The demo's config: loopback listeners on free ports, the repository's profiles, and the
/// simulated devices of the built adapters.
pub fn demo_config(state_dir: &Path, profile_dirs: &[PathBuf]) -> anyhow::Result<Config> {
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let profile_dirs = profile_dirs
        .iter()
        .map(|d| quote(d))
        .collect::<Vec<_>>()
        .join(", ");
    let state_dir = quote(state_dir);

    let text = format!(
        r#"
[gateway]
id = "{DEMO_GATEWAY_ID}"
name = "iotmc-gateway demo"
state_dir = {state_dir}
profile_dirs = [{profile_dirs}]
shutdown_grace = "5s"

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
"#
    );
    Config::from_toml(Path::new("<demo>"), &text).map_err(|errors| {
        anyhow::anyhow!(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// Runs the demo until `shutdown` completes. Writes one line per served device to `out`.
pub async fn run(
    state_dir: Option<PathBuf>,
    adapters: AdapterSet,
    out: &mut (dyn std::io::Write + Send),
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let temporary = match &state_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("iotmc-demo-")
                .tempdir()
                .context("cannot create a temporary state directory")?,
        ),
    };
    let state_path = state_dir.unwrap_or_else(|| {
        temporary
            .as_ref()
            .map(|t| t.path().to_owned())
            .unwrap_or_default()
    });
    let config = demo_config(&state_path, &profile_dirs())?;
    let grace = config.gateway.shutdown_grace;
    let gateway = Gateway::start(config, adapters.clone())
        .await
        .context("the demo gateway could not start")?;

    writeln!(
        out,
        "iotmc-gateway {} demo: state in {}{}",
        env!("CARGO_PKG_VERSION"),
        state_path.display(),
        if temporary.is_some() {
            " (removed on exit)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "{:<28} {:<8} DESCRIPTION URL",
        "FRIENDLY NAME", "PROTOCOL"
    )?;
    writeln!(
        out,
        "{:<28} {:<8} {}",
        gateway.config().gateway.name,
        "-",
        format_args!(
            "not served yet: the UPnP face is not built (gateway UDN uuid:{})",
            gateway_udn(DEMO_GATEWAY_ID)
        )
    )?;
    for device in gateway.devices() {
        let name = device
            .record
            .name
            .clone()
            .unwrap_or_else(|| format!("{} {}", device.profile.model, device.record.id));
        writeln!(
            out,
            "{name:<28} {:<8} not served yet: the UPnP face is not built",
            device.record.protocol
        )?;
    }
    let missing: Vec<_> = KNOWN_PROTOCOLS
        .iter()
        .filter(|p| adapters.get(p).is_none())
        .copied()
        .collect();
    if !missing.is_empty() {
        writeln!(
            out,
            "No simulated devices for: {} (their adapters are not built into this binary yet).",
            missing.join(", ")
        )?;
    }
    writeln!(
        out,
        "Demo ready in {:.2} s. Press Ctrl-C to stop.",
        started.elapsed().as_secs_f64()
    )?;
    out.flush()?;

    shutdown.await;
    if tokio::time::timeout(grace, gateway.stop()).await.is_err() {
        tracing::warn!("demo devices did not stop within the grace period");
    }
    drop(temporary);
    writeln!(out, "Demo stopped.")?;
    out.flush()?;
    Ok(())
}

/// The profiles the demo serves: the repository's `device-profiles/` when run from a checkout
/// (`cargo run`), else the installed copy, if there is one.
fn profile_dirs() -> Vec<PathBuf> {
    [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles"),
        PathBuf::from("/usr/share/iotmc-gateway/device-profiles"),
    ]
    .into_iter()
    .find(|dir| dir.is_dir())
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_should_keep_paths_with_quotes_backslashes_and_accents() {
        let state = Path::new("/tmp/with \"quotes\" and \\backslash\\ and e\u{301}");
        let profiles = PathBuf::from("/srv/profil\u{e9}s");
        let config = demo_config(state, std::slice::from_ref(&profiles)).unwrap();
        assert_eq!(config.gateway.state_dir, state);
        assert_eq!(config.gateway.profile_dirs, vec![profiles]);
    }
}
