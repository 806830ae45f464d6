//! Diagnostics:1 (GetDiagnosticsLog, ClearDiagnosticsLog) and BasicManagement:2's GetLogURIs
//! and GetLogInfo on every virtual device, on top of the diagnostics engine.

use super::specs::DIAGNOSTICS;
use super::{Caller, FaceState};
use crate::diagnostics::{DiagnosticsError, LogRequest, RequestText, observe, render};
use crate::upnp::description;
use crate::upnp::device::VirtualDevice;
use crate::upnp::soap::UpnpError;

type Out = Vec<(&'static str, String)>;

/// GetDiagnosticsLog(MinimumSeverity, StartTime, EndTime, MaximumRecords, Cursor).
pub(super) async fn get_log(
    state: &FaceState,
    device: &VirtualDevice,
    args: &[&str],
) -> Result<Out, UpnpError> {
    let arg = |i: usize| args.get(i).copied().unwrap_or_default();
    let id = device.record().id;
    let request = LogRequest::parse(
        &RequestText {
            min_severity: arg(0),
            start: arg(1),
            end: arg(2),
            max: arg(3),
            cursor: arg(4),
        },
        state.diagnostics.max_records(),
    )
    .map_err(|why| {
        UpnpError::argument_value_invalid(format!(
            "GetDiagnosticsLog on {}: {why}",
            device.describe()
        ))
    })?;
    let page = state
        .diagnostics
        .read_log(&id, &request)
        .await
        .map_err(|e| refused(device, "GetDiagnosticsLog", &e))?;
    Ok(vec![
        ("Log", render::xml(&page)),
        ("NextCursor", page.next.to_string()),
    ])
}

/// ClearDiagnosticsLog(UpToCursor).
pub(super) fn clear_log(
    state: &FaceState,
    device: &VirtualDevice,
    args: &[&str],
    caller: &Caller,
) -> Result<Out, UpnpError> {
    let cursor = args.first().copied().unwrap_or_default().trim();
    if cursor.is_empty() {
        return Err(UpnpError::argument_value_invalid(format!(
            "ClearDiagnosticsLog on {}: UpToCursor is empty; pass the NextCursor of the GetDiagnosticsLog answer you read, so that records that arrived after it are kept",
            device.describe()
        )));
    }
    let id = device.record().id;
    let removed = state
        .diagnostics
        .clear(&id, cursor)
        .map_err(|e| refused(device, "ClearDiagnosticsLog", &e))?;
    let operator = caller.operator();
    state
        .diagnostics
        .record(&id, observe::cleared(removed, cursor, operator));
    Ok(Vec::new())
}

/// The URLs of the device's log on the plain HTTP listener, reached through `host` (the
/// request's own Host, so the controller can reach them) or the first served address.
pub fn log_uris(state: &FaceState, device: &VirtualDevice, host: Option<&str>) -> Vec<String> {
    let host = host.unwrap_or(&state.default_host);
    ["log.jsonl", "log.txt"]
        .iter()
        .map(|leaf| {
            format!(
                "http://{host}:{}{}",
                state.http_port,
                description::service_path(device.udn, &DIAGNOSTICS, leaf)
            )
        })
        .collect()
}

/// GetLogURIs: the HTTP log URLs, comma separated (JSON lines first, then text). Both take
/// the query `severity`, `start`, `end`, `max` and `cursor`.
pub(super) fn get_log_uris(
    state: &FaceState,
    device: &VirtualDevice,
    host: Option<&str>,
) -> Result<Out, UpnpError> {
    Ok(vec![("LogURIs", log_uris(state, device, host).join(","))])
}

/// GetLogInfo: the ring's figures, the device's own log, the export sinks and the URLs.
pub(super) fn get_log_info(
    state: &FaceState,
    device: &VirtualDevice,
    host: Option<&str>,
) -> Result<Out, UpnpError> {
    let info = state
        .diagnostics
        .info(&device.record().id)
        .map_err(|e| refused(device, "GetLogInfo", &e))?;
    Ok(vec![(
        "LogInfo",
        render::info_xml(&info, &log_uris(state, device, host)),
    )])
}

fn refused(device: &VirtualDevice, operation: &str, error: &DiagnosticsError) -> UpnpError {
    match error {
        DiagnosticsError::BadArgument(why) => UpnpError::argument_value_invalid(format!(
            "{operation} on {}: {why}",
            device.describe()
        )),
        DiagnosticsError::UnknownDevice(_) => UpnpError::action_failed(format!(
            "{operation} on {}: internal: the diagnostics engine has no log for this device",
            device.describe()
        )),
    }
}
