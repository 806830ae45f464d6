//! `iotmc-gateway profile ...`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use iotmc_adapter::Profile;

use crate::adapters::AdapterSet;
use crate::profile::{Catalog, Severity, schema_document};

/// `profile` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Check profile files or directories; every error is listed, exit 1 on any.
    Validate {
        /// Files or directories (searched recursively for *.toml).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Show one profile: identity, parameters, actions, firmware, logs, polling.
    Show {
        /// The profile id.
        id: String,
        /// Where to look (default: ./device-profiles, /usr/share/iotmc-gateway/device-profiles,
        /// /etc/iotmc-gateway/profiles).
        #[arg(long = "profile-dir")]
        profile_dirs: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of device profiles, for editors.
    Schema,
}

pub(super) fn run(command: ProfileCommand, adapters: &AdapterSet) -> anyhow::Result<ExitCode> {
    match command {
        ProfileCommand::Validate { paths } => Ok(validate(&paths, adapters)),
        ProfileCommand::Show {
            id,
            profile_dirs,
            json,
        } => show(&id, profile_dirs, json, adapters),
        ProfileCommand::Schema => {
            print!("{}", schema_document(adapters));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn validate(paths: &[PathBuf], adapters: &AdapterSet) -> ExitCode {
    let (catalog, findings) = Catalog::load(paths, adapters);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    for finding in &findings {
        println!("{finding}");
    }
    println!(
        "{} valid profile(s), {errors} error(s), {warnings} warning(s)",
        catalog.len()
    );
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn show(
    id: &str,
    dirs: Vec<PathBuf>,
    json: bool,
    adapters: &AdapterSet,
) -> anyhow::Result<ExitCode> {
    let dirs = if dirs.is_empty() {
        default_dirs()
    } else {
        dirs
    };
    let (catalog, findings) = Catalog::load(&dirs, adapters);
    let Some(profile) = catalog.get(id) else {
        for finding in findings.iter().filter(|f| f.severity == Severity::Error) {
            eprintln!("{finding}");
        }
        let known: Vec<_> = catalog.iter().map(|p| p.id.as_str()).collect();
        anyhow::bail!(
            "no profile `{id}` in {}; known: {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    if json {
        println!("{}", serde_json::to_string_pretty(profile.as_ref())?);
    } else {
        print!("{}", describe(profile));
    }
    Ok(ExitCode::SUCCESS)
}

fn default_dirs() -> Vec<PathBuf> {
    [
        "device-profiles",
        "/usr/share/iotmc-gateway/device-profiles",
        "/etc/iotmc-gateway/profiles",
    ]
    .iter()
    .map(PathBuf::from)
    .filter(|d| Path::is_dir(d))
    .collect()
}

/// A profile as text for people.
fn describe(p: &Profile) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {} {} ({})",
        p.id, p.manufacturer, p.model, p.protocol
    );
    let _ = writeln!(out, "file: {}", p.source().path().display());
    if let Some(d) = &p.description {
        let _ = writeln!(out, "{d}");
    }
    let _ = writeln!(out, "\nparameters:");
    for q in &p.parameters {
        let mut constraint = String::new();
        if let Some(r) = &q.range {
            let _ = write!(
                constraint,
                " range {}..{}",
                r.min.map(|v| v.to_string()).unwrap_or_default(),
                r.max.map(|v| v.to_string()).unwrap_or_default()
            );
        }
        if !q.values.is_empty() {
            let _ = write!(constraint, " one of {}", q.values.join("|"));
        }
        let line = format!(
            "  {:<24} {:<6} {:<10} {:<6}{constraint}",
            q.name,
            q.value_type.as_str(),
            q.access.as_str(),
            q.unit.as_deref().unwrap_or("")
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out, "\nactions:");
    for a in &p.actions {
        let args: Vec<_> = a
            .arguments
            .iter()
            .map(|x| format!("{}: {}", x.name, x.value_type))
            .collect();
        let _ = writeln!(
            out,
            "  {:<24} {:<14} ({}) timeout {}",
            a.name,
            format!("{:?}", a.kind).to_lowercase(),
            args.join(", "),
            humantime::format_duration(a.timeout)
        );
    }
    let _ = writeln!(
        out,
        "\nfirmware: {}{}, max image {} bytes",
        p.firmware.method,
        if p.firmware.dual_bank {
            " (dual bank)"
        } else {
            ""
        },
        p.firmware.max_image_size
    );
    let _ = writeln!(out, "logs: {}", p.logs.method);
    let _ = writeln!(
        out,
        "poll: every {}, timeout {}, {} retries",
        humantime::format_duration(p.poll.interval),
        humantime::format_duration(p.poll.timeout),
        p.poll.retries
    );
    out
}
