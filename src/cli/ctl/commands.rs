//! Each `ctl` command: resolve the device, call the action, print the outcome.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::error::CtlError;
use super::follow::{MAX_POLL_FAILURES, follow};
use super::records::{FirmwareStatus, parse_batch_results, parse_record};
use super::render;
use super::requests::{self, Call};
use super::session::{Session, Target, out_argument};
use super::{CtlCommand, FirmwareCommand};

/// How often `--follow` polls.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Prints `text` and a newline on standard output; a closed pipe is not worth a panic.
pub(super) fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

fn print_json(value: &serde_json::Value) {
    print(
        &serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")),
    );
}

pub(super) async fn execute(session: &Session, command: CtlCommand) -> Result<ExitCode, CtlError> {
    let json = session.settings.json;
    match command {
        CtlCommand::Devices => {
            let devices = session.inventory().await?;
            if json {
                print_json(&json!(devices));
            } else {
                print(render::devices(&devices).trim_end());
            }
            Ok(ExitCode::SUCCESS)
        }
        CtlCommand::Approve { device, group } => {
            let target = session.resolve(&device).await?;
            let call = requests::approve(target.udn, group.as_deref());
            decision(session, &target, &call, |out| {
                let state = out_argument(out, "LifecycleState").unwrap_or("?");
                format!("approved; lifecycle state {state}")
            })
            .await
        }
        CtlCommand::Reject { device, reason } => {
            let target = session.resolve(&device).await?;
            let call = requests::reject(target.udn, &reason);
            decision(session, &target, &call, |_| "enrollment rejected".into()).await
        }
        CtlCommand::AssignGroup { device, group } => {
            let target = session.resolve(&device).await?;
            let call = requests::assign_group(target.udn, &group);
            decision(session, &target, &call, |_| {
                format!("assigned to group {group}")
            })
            .await
        }
        CtlCommand::Decommission {
            device,
            reason,
            yes,
        } => {
            let target = session.resolve(&device).await?;
            let stdin = std::io::stdin();
            confirm(yes, stdin.is_terminal(), &device, &target, || {
                let mut answer = String::new();
                stdin.lock().read_line(&mut answer).map(|_| answer)
            })?;
            let call = requests::decommission(target.udn, &reason);
            let out = session.gateway_about(&call, &target).await?;
            let result = out_argument(&out, "Result").unwrap_or_default();
            let fields = parse_record(result, "Decommissioned");
            if json {
                let mut value = render::action_json(&target, call.action, &out);
                if let Ok(fields) = &fields {
                    value["decommissioned"] = render::fields_json(fields);
                }
                print_json(&value);
            } else {
                let told = match &fields {
                    Ok(fields) => render::decommissioned(fields),
                    Err(_) => result.to_owned(),
                };
                print(&format!("{}: decommissioned; {told}", target.label()));
            }
            Ok(ExitCode::SUCCESS)
        }
        CtlCommand::Set { device, values } => {
            let values = requests::assignments(&values).map_err(CtlError::usage)?;
            let target = session.resolve(&device).await?;
            let out = session
                .device(&target, &requests::set_values(&values))
                .await?;
            if json {
                let mut value = render::action_json(&target, "SetValues", &out);
                value["values"] = json!(
                    values
                        .iter()
                        .cloned()
                        .collect::<std::collections::BTreeMap<_, _>>()
                );
                print_json(&value);
            } else {
                let status = out_argument(&out, "Status").unwrap_or("done");
                let names: Vec<&str> = values.iter().map(|(p, _)| p.as_str()).collect();
                print(&format!(
                    "{}: {status} ({})",
                    target.label(),
                    names.join(", ")
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        CtlCommand::BatchSet {
            targets,
            values,
            batch_id,
            max_concurrent,
        } => batch_set(session, &targets, &values, batch_id, max_concurrent).await,
        CtlCommand::Firmware(FirmwareCommand::Schedule {
            device,
            image,
            at,
            follow,
        }) => {
            let start =
                requests::start_time(at.as_deref(), SystemTime::now()).map_err(CtlError::usage)?;
            let image = requests::image_sha256(image.as_deref()).map_err(CtlError::usage)?;
            let target = session.resolve(&device).await?;
            let out = session
                .device(&target, &requests::schedule_firmware(&start, &image))
                .await?;
            let update = out_argument(&out, "UpdateId").unwrap_or_default();
            if json {
                let mut value = render::action_json(&target, "ScheduleFirmwareUpdate", &out);
                value["start_time"] = json!(start);
                print(&value.to_string());
            } else {
                print(&format!(
                    "{}: update {update} scheduled for {start}",
                    target.label()
                ));
            }
            if follow {
                follow_firmware(session, &target).await
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
        CtlCommand::Firmware(FirmwareCommand::Status { device, follow }) => {
            let target = session.resolve(&device).await?;
            if follow {
                return follow_firmware(session, &target).await;
            }
            let status = firmware_status(session, &target).await?;
            if json {
                print_json(&render::firmware_json(&target, &status, None));
            } else {
                print(&render::firmware_line(&target, &status));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An enrollment decision (approve, reject, assign-group) on the gateway about `target`; `say`
/// words the outcome.
async fn decision(
    session: &Session,
    target: &Target,
    call: &Call,
    say: impl FnOnce(&[(String, String)]) -> String,
) -> Result<ExitCode, CtlError> {
    let out = session.gateway_about(call, target).await?;
    if session.settings.json {
        print_json(&render::action_json(target, call.action, &out));
    } else {
        print(&format!("{}: {}", target.label(), say(&out)));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether to go ahead with an irreversible command: `--yes`, or the operator typing the
/// device's name at a terminal. `answer` reads the typed line.
fn confirm(
    yes: bool,
    terminal: bool,
    given: &str,
    target: &Target,
    answer: impl FnOnce() -> std::io::Result<String>,
) -> Result<(), CtlError> {
    if yes {
        return Ok(());
    }
    if !terminal {
        return Err(CtlError::usage(format!(
            "decommissioning {} cannot be undone: add --yes to confirm (standard input is not a terminal to ask on)",
            target.label()
        )));
    }
    eprint!(
        "Decommission {}? Its certificate is revoked, the device is factory-reset and its data is wiped from the gateway; this cannot be undone.\nType `{given}` to confirm: ",
        target.label()
    );
    let _ = std::io::stderr().flush();
    let typed =
        answer().map_err(|e| CtlError::usage(format!("cannot read the confirmation: {e}")))?;
    let typed = typed.trim();
    if typed == given || target.id.as_deref() == Some(typed) {
        Ok(())
    } else {
        Err(CtlError::plain(
            "not-confirmed",
            format!("not confirmed: {} was not decommissioned", target.label()),
        ))
    }
}

async fn batch_set(
    session: &Session,
    targets: &str,
    values: &[String],
    batch_id: Option<String>,
    max_concurrent: u32,
) -> Result<ExitCode, CtlError> {
    let values = requests::assignments(values).map_err(CtlError::usage)?;
    let batch_id = match batch_id {
        Some(id) => id,
        None => {
            let id = requests::fresh_batch_id();
            eprintln!(
                "batch id {id}: to retry this batch without writing anything twice, repeat the command with --batch-id {id}"
            );
            id
        }
    };
    let call = requests::batch_set(&batch_id, targets, &values, max_concurrent);
    let out = session.gateway(&call).await?;
    let results = out_argument(&out, "Results")
        .and_then(parse_batch_results)
        .map_err(|why| {
            CtlError::plain(
                "malformed",
                format!(
                    "BatchSetValues {batch_id}: the gateway's Results cannot be read ({why}); repeat with --batch-id {batch_id} to get them again"
                ),
            )
        })?;
    if session.settings.json {
        print_json(&render::batch_json(&results, &batch_id));
    } else {
        print(render::batch(&results, &batch_id).trim_end());
    }
    Ok(if results.any_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn firmware_status(session: &Session, target: &Target) -> Result<FirmwareStatus, CtlError> {
    let out = session.device(target, &requests::firmware_status()).await?;
    FirmwareStatus::from_out(&out).map_err(|why| {
        CtlError::plain(
            "malformed",
            format!("GetFirmwareUpdateStatus on {}: {why}", target.label()),
        )
    })
}

/// Follows the update on `target` until it is over; exit 1 unless it ended Confirmed (or
/// there is none).
async fn follow_firmware(session: &Session, target: &Target) -> Result<ExitCode, CtlError> {
    let json = session.settings.json;
    let now = || humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let end = follow(
        || firmware_status(session, target),
        FOLLOW_EVERY,
        |status| {
            let time = now();
            if json {
                print(&render::firmware_json(target, status, Some(&time)).to_string());
            } else {
                print(&format!("{time} {}", render::firmware_line(target, status)));
            }
        },
        |e| eprintln!("warning: {e} (following goes on; it stops after {MAX_POLL_FAILURES} failures in a row)"),
    )
    .await?;
    Ok(if end.ended_badly() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            id: Some("relay-1".into()),
            udn: uuid::Uuid::from_u128(5),
        }
    }

    #[test]
    fn decommission_should_go_ahead_with_yes_without_asking() {
        confirm(true, false, "relay-1", &target(), || panic!("asked")).unwrap();
    }

    #[test]
    fn decommission_without_a_terminal_should_refuse_without_yes() {
        let err = confirm(false, false, "relay-1", &target(), || panic!("asked")).unwrap_err();
        assert!(err.message.contains("add --yes"), "{err}");
    }

    #[test]
    fn decommission_at_a_terminal_should_go_ahead_only_when_the_device_is_typed() {
        confirm(false, true, "relay-1", &target(), || Ok("relay-1\n".into())).unwrap();
        let udn = format!("uuid:{}", uuid::Uuid::from_u128(5));
        confirm(false, true, &udn, &target(), || Ok("relay-1\n".into())).unwrap();
        let err = confirm(false, true, "relay-1", &target(), || Ok("y\n".into())).unwrap_err();
        assert_eq!(err.kind, "not-confirmed");
        let err = confirm(false, true, "relay-1", &target(), || {
            Err(std::io::Error::other("closed"))
        })
        .unwrap_err();
        assert!(err.message.contains("cannot read"), "{err}");
    }
}
