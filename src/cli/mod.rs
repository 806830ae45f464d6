//! The command line.

mod ctl;
mod devices;
mod firmware;
mod profile;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::adapters::AdapterSet;
use crate::config::Config;
use crate::daemon::ShutdownSignal;
use crate::logging::{self, LogFormat};

/// iotmc-gateway: presents Modbus, MQTT, Zigbee and BLE devices as managed UPnP devices.
#[derive(Debug, Parser)]
#[command(name = "iotmc-gateway", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// Log level when RUST_LOG is not set (error, warn, info, debug, trace).
    #[arg(long, default_value = "info", global = true)]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway daemon.
    Run {
        /// The gateway config file.
        #[arg(long, short, default_value = "/etc/iotmc-gateway/gateway.toml")]
        config: PathBuf,
    },
    /// Run the gateway with simulated devices of every built protocol, on loopback.
    Demo {
        /// Keep state here instead of in a temporary directory removed on exit.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// How often the simulated thermostat's measured temperature drifts (and is evented).
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        change_every: std::time::Duration,
        /// Connect the simulated MQTT devices and the gateway to this broker (`host:port`,
        /// plain MQTT) instead of the demo's embedded one.
        #[arg(long, value_name = "HOST:PORT")]
        mqtt_broker: Option<String>,
    },
    /// Check and inspect device profiles.
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Inspect the managed devices in a gateway's registry.
    #[command(subcommand)]
    Devices(devices::DevicesCommand),
    /// Check a gateway config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Vendor keys, and signing, inspecting and importing firmware images.
    #[command(subcommand)]
    Firmware(firmware::FirmwareCommand),
    /// Manage a running gateway's devices over HTTPS with an operator certificate (a UPnP
    /// control point): list, approve, reject, group, configure, decommission, update firmware.
    Ctl(ctl::CtlArgs),
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file, its profiles and its device list; exit 1 on any error.
    Check {
        /// The config file.
        file: PathBuf,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet_default = match cli.command {
        Command::Run { .. } | Command::Demo { .. } => cli.log_level.as_str(),
        // One-shot commands print their results on stdout; only problems go to the log.
        _ => "warn",
    };
    logging::init(cli.log_format, quiet_default);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    let adapters = AdapterSet::built();
    match command {
        Command::Run { config } => {
            let config = load_config(&config)?;
            let adapters = adapters_for(&config)?;
            runtime()?.block_on(async {
                let signal = ShutdownSignal::install()?;
                crate::daemon::run(config, adapters, signal.wait()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            state_dir,
            change_every,
            mqtt_broker,
        } => {
            runtime()?.block_on(async {
                let signal = ShutdownSignal::install()?;
                let mut stdout = std::io::stdout();
                crate::demo::run(
                    crate::demo::DemoOptions {
                        state_dir,
                        change_every,
                        mqtt_broker,
                    },
                    adapters,
                    &mut stdout,
                    signal.wait(),
                )
                .await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Profile(command) => profile::run(command, &adapters),
        Command::Devices(command) => devices::run(command),
        Command::Firmware(command) => firmware::run(command),
        Command::Ctl(args) => ctl::run(args),
        Command::Config(ConfigCommand::Check { file }) => {
            let config = load_config(&file)?;
            let adapters = adapters_for(&config)?;
            let (catalog, findings) =
                crate::profile::Catalog::load(&config.gateway.profile_dirs, &adapters);
            let mut failed = false;
            for finding in &findings {
                println!("{finding}");
                failed |= finding.severity == crate::profile::Severity::Error;
            }
            match crate::daemon::plan_devices(&config, &catalog, &adapters) {
                Ok(devices) if !failed => {
                    println!(
                        "{}: ok ({} groups, {} devices, {} profiles)",
                        file.display(),
                        config.groups.len(),
                        devices.len(),
                        catalog.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Ok(_) => Ok(ExitCode::FAILURE),
                Err(errors) => {
                    for e in errors {
                        println!("error: {e}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// Loads a config file, turning its located errors into one message.
pub(crate) fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(config_errors)
}

/// Every error of a config, one per line.
fn config_errors(errors: Vec<iotmc_adapter::LocatedError>) -> anyhow::Error {
    let n = errors.len();
    let list = errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n");
    anyhow::anyhow!("{n} error(s) in the config:\n{list}")
}

/// The adapters set up from `config`, or every problem with their settings.
fn adapters_for(config: &Config) -> anyhow::Result<AdapterSet> {
    AdapterSet::for_config(config).map_err(config_errors)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("iotmc-gateway")
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}
