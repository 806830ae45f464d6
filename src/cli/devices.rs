//! `iotmc-gateway devices ...`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::registry::{Registry, from_unix_ms};

/// `devices` subcommands.
#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// List the devices in the registry.
    List {
        /// Read the state directory from this config file.
        #[arg(
            long,
            short,
            conflicts_with = "state_dir",
            default_value = "/etc/iotmc-gateway/gateway.toml"
        )]
        config: PathBuf,
        /// Read this state directory directly.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(command: DevicesCommand) -> anyhow::Result<ExitCode> {
    let DevicesCommand::List {
        config,
        state_dir,
        json,
    } = command;
    let state_dir = match state_dir {
        Some(dir) => dir,
        None => super::load_config(&config)?.gateway.state_dir,
    };
    let registry = Registry::open_read_only(&state_dir)?;
    let devices = registry.devices()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<8} {:<22} {:<16} {:<12} {:<16} {:<20} ADDRESS",
        "ID", "PROTOCOL", "PROFILE", "GROUP", "CONFIG-VER", "LIFECYCLE", "SINCE (UTC)"
    );
    for d in &devices {
        let since = since(d.lifecycle_since_ms);
        println!(
            "{:<20} {:<8} {:<22} {:<16} {:<12} {:<16} {:<20} {}{}",
            d.id,
            d.protocol,
            d.profile,
            d.group.as_deref().unwrap_or("-"),
            d.config_version,
            d.lifecycle.as_str(),
            since,
            d.address,
            if d.in_config { "" } else { "  (not in config)" }
        );
    }
    println!(
        "{} device(s) in {}",
        devices.len(),
        registry.path().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A registry timestamp as RFC 3339 UTC, or raw milliseconds when it is beyond year 9999.
fn since(ms: u64) -> String {
    const YEAR_10000_MS: u64 = 253_402_300_800_000;
    if ms < YEAR_10000_MS {
        humantime::format_rfc3339_seconds(from_unix_ms(ms)).to_string()
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_beyond_year_9999_should_print_as_milliseconds() {
        assert_eq!(super::since(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::since(u64::MAX), format!("{} ms", u64::MAX));
    }
}
