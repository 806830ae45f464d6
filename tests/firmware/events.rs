//! A control point's GENA side: a callback server on 127.0.0.1:0 that answers every NOTIFY and
//! records each evented value, waits that end on an event (bounded by [`super::GUARD`]), and
//! the firmware engine's evented values parsed.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::GUARD;
use crate::common::http;

/// One evented value as it arrived: the callback path it came to, the variable and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Evented {
    pub(crate) path: String,
    pub(crate) variable: String,
    pub(crate) value: String,
}

/// The callback server and everything it received so far.
#[derive(Debug)]
pub(crate) struct Listener {
    addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<(String, String)>,
    seen: Vec<Evented>,
}

impl Listener {
    /// Starts the callback server.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            if let Ok(body) = body {
                                let _ =
                                    tx.send((path, String::from_utf8_lossy(&body).into_owned()));
                            }
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self {
            addr,
            rx,
            seen: Vec::new(),
        }
    }

    /// Subscribes `path` of this server to the events at `event_url` on `face` (plain HTTP).
    pub(crate) async fn subscribe(&self, face: SocketAddr, event_url: &str, path: &str) {
        let callback = format!("<http://{}{path}>", self.addr);
        let reply = http(
            face,
            "SUBSCRIBE",
            event_url,
            &[
                ("CALLBACK", callback.as_str()),
                ("NT", "upnp:event"),
                ("TIMEOUT", "Second-1800"),
            ],
            Bytes::new(),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "SUBSCRIBE {event_url}: {}",
            reply.body
        );
    }

    /// The first value of `variable` at `path` for which `accept` holds: one that arrived
    /// already, or else the next one to arrive (everything arriving meanwhile is recorded).
    /// `what` says what is awaited, for the failure message. Callers accept values that can
    /// arrive only once (they name an update or campaign id, or an image's hash).
    pub(crate) async fn until(
        &mut self,
        path: &str,
        variable: &str,
        what: &str,
        accept: impl Fn(&str) -> bool,
    ) -> String {
        if let Some(earlier) = self
            .seen
            .iter()
            .find(|e| e.path == path && e.variable == variable && accept(&e.value))
        {
            return earlier.value.clone();
        }
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let next = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            let Ok(Some((at, body))) = next else {
                panic!(
                    "waited {GUARD:?} for {what} ({variable} at {path}); {variable} values seen there: {:#?}",
                    self.values(path, variable)
                );
            };
            let mut found = None;
            for (name, value) in properties(&body) {
                if found.is_none() && at == path && name == variable && accept(&value) {
                    found = Some(value.clone());
                }
                self.seen.push(Evented {
                    path: at.clone(),
                    variable: name,
                    value,
                });
            }
            if let Some(value) = found {
                return value;
            }
        }
    }

    /// Every value of `variable` that arrived at `path`, in order.
    pub(crate) fn values(&self, path: &str, variable: &str) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| e.path == path && e.variable == variable)
            .map(|e| e.value.clone())
            .collect()
    }

    /// The `FirmwareUpdateStatus` values of update `update_id` that arrived at `path`.
    pub(crate) fn update_statuses(&self, path: &str, update_id: &str) -> Vec<UpdateStatus> {
        self.values(path, "FirmwareUpdateStatus")
            .iter()
            .map(|v| UpdateStatus::parse(v))
            .filter(|s| s.update_id == update_id)
            .collect()
    }

    /// The phases update `update_id` went through as evented at `path`, repeated values (the
    /// progress of one phase) folded into one.
    pub(crate) fn phases(&self, path: &str, update_id: &str) -> Vec<String> {
        let mut phases: Vec<String> = Vec::new();
        for status in self.update_statuses(path, update_id) {
            if phases.last() != Some(&status.status) {
                phases.push(status.status);
            }
        }
        phases
    }
}

/// `(variable, value)` of every property of a GENA propertyset.
pub(crate) fn properties(body: &str) -> Vec<(String, String)> {
    let mut reader = Reader::from_str(body);
    reader.config_mut().expand_empty_elements = true;
    let mut out = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut current: Option<(String, String)> = None;
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("malformed NOTIFY body ({e}): {body}"))
        {
            Event::Start(start) => {
                let name = start.local_name().into_inner().to_owned();
                if stack.last().is_some_and(|parent| parent == "property") {
                    current = Some((name.clone(), String::new()));
                }
                stack.push(name);
            }
            Event::End(_) => {
                stack.pop();
                if stack.last().is_some_and(|parent| parent == "property")
                    && let Some(done) = current.take()
                {
                    out.push(done);
                }
            }
            Event::Text(text) => {
                if let Some((_, value)) = current.as_mut() {
                    value.push_str(&text.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some((_, value)) = current.as_mut() {
                    value.push(match &*reference {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => reference
                            .resolve_char_ref()
                            .ok()
                            .flatten()
                            .unwrap_or('\u{fffd}'),
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// `FirmwareUpdateStatus`: `<Status>,<UpdateId>,<ResultCode>,<acknowledged>/<total>`, or `Idle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpdateStatus {
    pub(crate) status: String,
    pub(crate) update_id: String,
    pub(crate) result: i32,
    pub(crate) acknowledged: u64,
    pub(crate) total: u64,
}

impl UpdateStatus {
    /// Parses an evented value; panics on one that breaks the contract.
    pub(crate) fn parse(value: &str) -> Self {
        if value == "Idle" {
            return Self {
                status: "Idle".into(),
                update_id: String::new(),
                result: 0,
                acknowledged: 0,
                total: 0,
            };
        }
        let fields: Vec<&str> = value.split(',').collect();
        let bad = || {
            panic!(
                "FirmwareUpdateStatus `{value}` is not `<Status>,<UpdateId>,<ResultCode>,<acked>/<total>`"
            )
        };
        let [status, update_id, result, bytes] = fields[..] else {
            bad()
        };
        let Some((acknowledged, total)) = bytes.split_once('/') else {
            bad()
        };
        Self {
            status: status.to_owned(),
            update_id: update_id.to_owned(),
            result: result.parse().unwrap_or_else(|_| bad()),
            acknowledged: acknowledged.parse().unwrap_or_else(|_| bad()),
            total: total.parse().unwrap_or_else(|_| bad()),
        }
    }
}

/// `FirmwareCampaignStatus`: `<id>,<State>,pending=n,running=n,succeeded=n,failed=n,cancelled=n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CampaignSummary {
    pub(crate) id: String,
    pub(crate) state: String,
    pub(crate) pending: u32,
    pub(crate) running: u32,
    pub(crate) succeeded: u32,
    pub(crate) failed: u32,
    pub(crate) cancelled: u32,
}

impl CampaignSummary {
    /// Parses an evented value (None for the empty value before any campaign); panics on one
    /// that breaks the contract.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        if value.is_empty() {
            return None;
        }
        let bad = || {
            panic!(
                "FirmwareCampaignStatus `{value}` is not `<id>,<State>,pending=n,running=n,succeeded=n,failed=n,cancelled=n`"
            )
        };
        let fields: Vec<&str> = value.split(',').collect();
        let [id, state, counts @ ..] = &fields[..] else {
            bad()
        };
        let count = |name: &str| -> u32 {
            counts
                .iter()
                .find_map(|c| c.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_else(|| bad())
                .parse()
                .unwrap_or_else(|_| bad())
        };
        Some(Self {
            id: (*id).to_owned(),
            state: (*state).to_owned(),
            pending: count("pending"),
            running: count("running"),
            succeeded: count("succeeded"),
            failed: count("failed"),
            cancelled: count("cancelled"),
        })
    }
}
