//! `iotmc-gateway ctl ...`: a control point for operators. Lists the gateway's devices,
//! approves, rejects, groups and decommissions them, writes configuration to one device or a
//! batch, and schedules and follows firmware updates — all over HTTPS with the operator's client
//! certificate (mutual TLS), through the gateway's UPnP actions.
//!
//! The gateway's own root device (GetInventory, enrollment decisions, batches) is found by the
//! gateway's id (`--gateway-id`, its UDN is derived the way the gateway derives it) or its UDN
//! (`--gateway-udn`): the gateway serves no HTTP index to discover it by, and SSDP may not
//! reach the operator's network.

mod commands;
mod error;
mod follow;
mod records;
mod render;
mod requests;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use error::CtlError;
use session::{Flags, Session, Settings};

/// `ctl`: the connection flags (accepted before or after the command) and the command.
#[derive(Debug, Args)]
pub struct CtlArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(subcommand)]
    command: CtlCommand,
}

/// How to reach the gateway and who the operator is.
#[derive(Debug, Args)]
struct ConnectionArgs {
    /// The gateway: https://HOST:PORT (its [listen] https); http://HOST:PORT reaches read-only
    /// actions only. Env IOTMC_CTL_GATEWAY.
    #[arg(long, global = true, value_name = "URL")]
    gateway: Option<String>,
    /// The CA certificate (PEM) that issued the gateway's certificate. Env IOTMC_CTL_CA.
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The operator's certificate (PEM), issued by the gateway's [trust] operator_ca. Env
    /// IOTMC_CTL_CERT.
    #[arg(long, global = true, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The operator certificate's private key (PEM). Env IOTMC_CTL_KEY.
    #[arg(long, global = true, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The gateway's [gateway] id, to address its own root device. Env IOTMC_CTL_GATEWAY_ID.
    #[arg(long, global = true, value_name = "ID")]
    gateway_id: Option<String>,
    /// The UDN of the gateway's own root device, instead of --gateway-id. Env
    /// IOTMC_CTL_GATEWAY_UDN.
    #[arg(long, global = true, value_name = "UUID")]
    gateway_udn: Option<String>,
    /// The gateway's [gateway] vendor_domain (for its vendor service types). Env
    /// IOTMC_CTL_VENDOR_DOMAIN; default iotmc-gateway.local.
    #[arg(long, global = true, value_name = "DOMAIN")]
    vendor_domain: Option<String>,
    /// Time allowed for each request.
    #[arg(long, global = true, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print JSON instead of text (with --follow, one object per line).
    #[arg(long, global = true)]
    json: bool,
}

/// `ctl` commands.
#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// List the gateway's devices (GetInventory).
    Devices,
    /// Approve a device waiting in PendingApproval (ApproveEnrollment).
    Approve {
        /// Device id or UDN.
        #[arg(value_name = "DEVICE")]
        device: String,
        /// The management group to put it in (default: the one the gateway's policy picks).
        #[arg(long)]
        group: Option<String>,
    },
    /// Reject a device's enrollment (RejectEnrollment).
    Reject {
        /// Device id or UDN.
        #[arg(value_name = "DEVICE")]
        device: String,
        /// Why, for the gateway's audit record.
        #[arg(long)]
        reason: String,
    },
    /// Move a device to another management group (AssignGroup).
    AssignGroup {
        /// Device id or UDN.
        #[arg(value_name = "DEVICE")]
        device: String,
        /// The group.
        group: String,
    },
    /// Write parameters of one device (ConfigurationManagement SetValues).
    Set {
        /// Device id or UDN.
        #[arg(value_name = "DEVICE")]
        device: String,
        /// NAME=VALUE: a profile parameter (/IoTMC/Parameters/NAME), or a whole path when
        /// NAME starts with /.
        #[arg(value_name = "NAME=VALUE", required = true)]
        values: Vec<String>,
    },
    /// Write parameters of many devices (BatchSetValues); exit 1 if any device failed.
    BatchSet {
        /// `group:NAME` or device ids, comma-separated.
        #[arg(long, value_name = "SPEC")]
        targets: String,
        /// NAME=VALUE, as for `set`.
        #[arg(value_name = "NAME=VALUE", required = true)]
        values: Vec<String>,
        /// Repeat a batch (after a timeout, say): the gateway answers the first run's results
        /// and writes nothing twice. Default: a fresh id, printed on standard error.
        #[arg(long, value_name = "ID")]
        batch_id: Option<String>,
        /// Devices written at once (default: the gateway's).
        #[arg(long, value_name = "N", default_value_t = 0)]
        max_concurrent: u32,
    },
    /// Decommission a device: revoke its certificate, factory-reset it, wipe its data from
    /// the gateway (DecommissionDevice). Asks for confirmation.
    Decommission {
        /// Device id or UDN.
        #[arg(value_name = "DEVICE")]
        device: String,
        /// Why, for the gateway's audit record.
        #[arg(long)]
        reason: String,
        /// Do not ask (required when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Firmware updates of a device (FirmwareUpdate:1).
    #[command(subcommand)]
    Firmware(FirmwareCommand),
}

/// `ctl firmware` commands.
#[derive(Debug, Subcommand)]
enum FirmwareCommand {
    /// Schedule an update (ScheduleFirmwareUpdate).
    Schedule {
        /// Device id or UDN.
        #[arg(value_name = "DEVICE")]
        device: String,
        /// The image's SHA-256 (default: the image the gateway offers the device).
        #[arg(long, value_name = "SHA256")]
        image: Option<String>,
        /// When to start, UTC (e.g. 2026-11-24T02:30:00Z); default now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Then follow it (see `status --follow`).
        #[arg(long)]
        follow: bool,
    },
    /// Show the update's status (GetFirmwareUpdateStatus).
    Status {
        /// Device id or UDN.
        #[arg(value_name = "DEVICE")]
        device: String,
        /// Poll every second, printing each phase change and progress, until the update is
        /// over; exit 1 unless it ended Confirmed.
        #[arg(long)]
        follow: bool,
    },
}

impl ConnectionArgs {
    fn flags(&self) -> Flags {
        Flags {
            gateway: self.gateway.clone(),
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            gateway_id: self.gateway_id.clone(),
            gateway_udn: self.gateway_udn.clone(),
            vendor_domain: self.vendor_domain.clone(),
            timeout: self.timeout,
            json: self.json,
        }
    }
}

pub(super) fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let json = args.connection.json;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(async {
        let settings = Settings::resolve(args.connection.flags(), |name| std::env::var(name).ok())?;
        let session = Session::open(settings)?;
        commands::execute(&session, args.command).await
    });
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            report(&e, json);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Tells the operator why the command failed: on standard error, and with --json also as a
/// JSON object on standard output.
fn report(error: &CtlError, json: bool) {
    eprintln!("error: {error}");
    if json {
        commands::print(&serde_json::json!({ "error": error }).to_string());
    }
}
