//! The HTTP and HTTPS listeners: descriptions, SOAP control and GENA subscriptions.
//!
//! Bounds (DESIGN.md §8), each answered with a clear error: request headers must arrive within
//! [`HttpLimits::header_timeout`] (slow clients are cut off — slowloris), a whole request within
//! [`HttpLimits::request_timeout`] (503 after), bodies are at most [`soap::MAX_BODY`] (413),
//! and at most [`HttpLimits::max_connections`] connections are served at once per listener
//! (later ones are closed at accept).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use uuid::Uuid;

use super::description;
use super::device::VirtualDevice;
use super::net::ServedInterface;
use super::scpd::ServiceSpec;
use super::services::specs::{DEVICE_SERVICES, DIAGNOSTICS, GATEWAY_SERVICES};
use super::services::{self, Caller, FaceState, Target, event_key};
use super::soap;
use crate::diagnostics::{LogRequest, RequestText, render};

/// Bounds of the listeners.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Time allowed for a request's headers to arrive.
    pub header_timeout: Duration,
    /// Time allowed for a whole request, body and action included.
    pub request_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// What the request handlers share.
#[derive(Debug)]
pub struct Site {
    /// Handler state.
    pub state: Arc<FaceState>,
    /// The interfaces served (to find the one a connection arrived on); updated when their
    /// addresses change.
    pub interfaces: std::sync::RwLock<Vec<ServedInterface>>,
    /// Pre-rendered descriptions and SCPDs by path.
    pub documents: HashMap<String, Bytes>,
    /// SERVER header value.
    pub server: String,
    /// Bounds.
    pub limits: HttpLimits,
}

impl Site {
    /// Renders every description and SCPD.
    pub fn new(
        state: Arc<FaceState>,
        interfaces: Vec<ServedInterface>,
        server: String,
        config_id: u32,
        limits: HttpLimits,
    ) -> Self {
        let mut documents = HashMap::new();
        for device in state.devices.values() {
            documents.insert(
                description::description_path(device.udn),
                Bytes::from(description::device_description(&state, device, config_id)),
            );
            for spec in DEVICE_SERVICES {
                documents.insert(
                    description::service_path(device.udn, spec, "scpd.xml"),
                    Bytes::from(spec.scpd()),
                );
            }
        }
        let gateway = state.gateway.udn;
        documents.insert(
            description::description_path(gateway),
            Bytes::from(description::gateway_description(&state, config_id)),
        );
        for spec in GATEWAY_SERVICES {
            documents.insert(
                description::service_path(gateway, spec, "scpd.xml"),
                Bytes::from(spec.scpd()),
            );
        }
        Self {
            state,
            interfaces: std::sync::RwLock::new(interfaces),
            documents,
            server,
            limits,
        }
    }
}

/// Where the issuing CA's CRL is served (plain HTTP: a CRL is signed and public).
pub const CRL_PATH: &str = "/pki/crl.pem";
/// Where the issuing CA's certificate is served.
pub const ISSUING_CA_PATH: &str = "/pki/issuing-ca.pem";

/// Serves plain HTTP on `listener` until `stop` turns true.
pub async fn serve_http(site: Arc<Site>, listener: TcpListener, stop: watch::Receiver<bool>) {
    serve(site, listener, None, stop).await;
}

/// Serves HTTPS on `listener` until `stop` turns true.
pub async fn serve_https(
    site: Arc<Site>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    stop: watch::Receiver<bool>,
) {
    serve(
        site,
        listener,
        Some(tokio_rustls::TlsAcceptor::from(tls)),
        stop,
    )
    .await;
}

async fn serve(
    site: Arc<Site>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(site.limits.max_connections));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors, most likely: back off rather than spin.
                tracing::warn!(error = %e, "accept failed; pausing accepts for 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(%peer, limit = site.limits.max_connections, "too many connections; closing this one");
            continue;
        };
        let local = stream.local_addr().ok();
        let site = Arc::clone(&site);
        let tls = tls.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let arrived_on = local.and_then(|l| {
                let interfaces = site
                    .interfaces
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                arrived_on(&interfaces, l)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(site.limits.header_timeout)
                .max_buf_size(16 * 1024);
            match tls {
                None => {
                    let ctx = Connection {
                        site: Arc::clone(&site),
                        caller: Caller::Anonymous,
                        arrived_on,
                    };
                    serve_connection(&builder, TokioIo::new(stream), ctx, &mut stop, peer).await;
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        site.limits.handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await;
                    let stream = match handshake {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let caller = match (
                        stream.get_ref().1.peer_certificates(),
                        &site.state.client_trust,
                    ) {
                        (Some(chain), Some(trust)) => trust.classify(chain),
                        _ => Caller::Anonymous,
                    };
                    let ctx = Connection {
                        site: Arc::clone(&site),
                        caller,
                        arrived_on,
                    };
                    serve_connection(&builder, TokioIo::new(stream), ctx, &mut stop, peer).await;
                }
            }
        });
    }
}

/// Serves one accepted connection (plain or after the TLS handshake) until it ends or `stop`
/// turns true.
async fn serve_connection<I>(
    builder: &hyper::server::conn::http1::Builder,
    io: I,
    ctx: Connection,
    stop: &mut watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let ctx = Arc::new(ctx);
    let service = hyper::service::service_fn(move |req| {
        let ctx = Arc::clone(&ctx);
        async move { Ok::<_, Infallible>(ctx.handle(req).await) }
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended");
        },
        _ = stop.changed() => conn.as_mut().graceful_shutdown(),
    }
}

/// The served interface a connection to `local` arrived through.
fn arrived_on(interfaces: &[ServedInterface], local: SocketAddr) -> Option<ServedInterface> {
    match local.ip() {
        IpAddr::V4(v4) => ServedInterface::by_local_addr(interfaces, v4).cloned(),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .and_then(|v4| ServedInterface::by_local_addr(interfaces, v4).cloned()),
    }
}

/// One connection's view.
#[derive(Debug)]
struct Connection {
    site: Arc<Site>,
    caller: Caller,
    arrived_on: Option<ServedInterface>,
}

type Reply = Response<Full<Bytes>>;

impl Connection {
    async fn handle(&self, req: Request<Incoming>) -> Reply {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let span = tracing::debug_span!("request", %method, %path);
        let routed = tracing::Instrument::instrument(self.route(req), span);
        match tokio::time::timeout(self.site.limits.request_timeout, routed).await {
            Ok(reply) => reply,
            Err(_) => {
                tracing::warn!(%method, %path, "request timed out");
                self.text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "the request took longer than {} s and was abandoned; retry, and check the device's connection if it keeps happening",
                        self.site.limits.request_timeout.as_secs()
                    ),
                )
            }
        }
    }

    async fn route(&self, req: Request<Incoming>) -> Reply {
        let path = req.uri().path().to_owned();
        if path == CRL_PATH || path == ISSUING_CA_PATH {
            return self.pki(&req, &path);
        }
        if let Some(udn) = path
            .strip_prefix("/upnp/")
            .and_then(|p| p.split('/').next())
            .and_then(|u| Uuid::parse_str(u).ok())
            && self.site.state.devices.contains_key(&udn)
            && self.site.state.device(udn).is_none()
        {
            return self.text(
                StatusCode::NOT_FOUND,
                format!("uuid:{udn} is decommissioned: it is no longer managed by this gateway"),
            );
        }
        if let Some(doc) = self.site.documents.get(&path) {
            return if req.method() == Method::GET || req.method() == Method::HEAD {
                self.reply(StatusCode::OK, "text/xml; charset=\"utf-8\"", doc.clone())
            } else {
                self.method_not_allowed("GET, HEAD")
            };
        }
        if let Some(token) = path.strip_prefix("/firmware/") {
            return self.firmware_image(&req, token);
        }
        let Some((udn, rest)) = path
            .strip_prefix("/upnp/")
            .and_then(|p| p.split_once('/'))
            .and_then(|(u, rest)| Some((Uuid::parse_str(u).ok()?, rest)))
        else {
            return self.not_found(&path);
        };
        let target = if udn == self.site.state.gateway.udn {
            Target::Gateway
        } else if let Some(device) = self.site.state.device(udn) {
            Target::Device(device)
        } else {
            return self.not_found(&path);
        };
        if rest.is_empty() {
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return self.method_not_allowed("GET, HEAD");
            }
            let device = match &target {
                Target::Device(d) => Some(d.as_ref()),
                Target::Gateway => None,
            };
            let page = description::presentation_page(&self.site.state, device);
            return self.reply(
                StatusCode::OK,
                "text/html; charset=utf-8",
                Bytes::from(page),
            );
        }
        let services: &[&ServiceSpec] = match target {
            Target::Gateway => &GATEWAY_SERVICES,
            Target::Device(_) => &DEVICE_SERVICES,
        };
        let Some((service, leaf)) = rest.split_once('/') else {
            return self.not_found(&path);
        };
        let Some(spec) = services.iter().copied().find(|s| s.path == service) else {
            return self.not_found(&path);
        };
        match leaf {
            "log.jsonl" | "log.txt" if spec.name == DIAGNOSTICS.name => match &target {
                Target::Device(device) => self.device_log(&req, device, leaf).await,
                Target::Gateway => self.not_found(&path),
            },
            "control" if req.method() == Method::POST => self.control(req, &target, spec).await,
            "control" => self.method_not_allowed("POST"),
            "event" if spec.is_evented() => {
                if req.method().as_str() != "SUBSCRIBE" && req.method().as_str() != "UNSUBSCRIBE" {
                    return self.method_not_allowed("SUBSCRIBE, UNSUBSCRIBE");
                }
                let Some(interface) = &self.arrived_on else {
                    return self.text(
                        StatusCode::PRECONDITION_FAILED,
                        "this connection did not arrive on a served interface; subscribe through an address of an interface in [listen] interfaces".into(),
                    );
                };
                let key = event_key(target.udn(&self.site.state), spec);
                self.site
                    .state
                    .eventing
                    .handle_request(
                        &key,
                        req.method(),
                        req.headers(),
                        interface,
                        &self.site.server,
                    )
                    .await
            }
            _ => self.not_found(&path),
        }
    }

    async fn control(&self, req: Request<Incoming>, target: &Target, spec: &ServiceSpec) -> Reply {
        let host = request_host(req.headers());
        let soap_action = req
            .headers()
            .get("soapaction")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let declared_length = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared_length.is_some_and(|n| n > soap::MAX_BODY) {
            return self.too_large();
        }
        let body = match Limited::new(req.into_body(), soap::MAX_BODY)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return self.too_large();
            }
            Err(e) => {
                return self.text(
                    StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {e}"),
                );
            }
        };
        let Some(soap_action) = soap_action else {
            return self.fault(&soap::UpnpError::invalid_action(
                "the SOAPACTION header is missing; send SOAPACTION: \"<service type>#<action>\"",
            ));
        };
        let call = match soap::parse_request(&body, &soap_action) {
            Ok(call) => call,
            Err(e @ soap::SoapError::BadSoapAction) => {
                return self.fault(&soap::UpnpError::invalid_action(e.to_string()));
            }
            Err(e) => return self.fault(&soap::UpnpError::invalid_args(e.to_string())),
        };
        let expected = spec.service_type(&self.site.state.vendor_domain);
        if !service_type_matches(&call.service_type, &expected) {
            return self.fault(&soap::UpnpError::invalid_action(format!(
                "this control URL serves {expected}, not {}",
                call.service_type
            )));
        }
        match services::call(
            &self.site.state,
            target,
            spec,
            &call,
            &self.caller,
            host.as_deref(),
        )
        .await
        {
            Ok(out) => {
                let out: Vec<(&str, String)> = out;
                self.reply(
                    StatusCode::OK,
                    "text/xml; charset=\"utf-8\"",
                    Bytes::from(soap::response(&call.service_type, &call.action, &out)),
                )
            }
            Err(e) => {
                tracing::info!(action = %call.action, code = e.code, error = %e.description, "action refused or failed");
                self.fault(&e)
            }
        }
    }

    fn fault(&self, error: &soap::UpnpError) -> Reply {
        self.reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/xml; charset=\"utf-8\"",
            Bytes::from(soap::fault(error)),
        )
    }

    fn too_large(&self) -> Reply {
        self.text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {} bytes", soap::MAX_BODY),
        )
    }

    /// Serves a firmware image on offer (see [`crate::firmware::offers`]); the first GET takes
    /// the offer.
    fn firmware_image(&self, req: &Request<Incoming>, token: &str) -> Reply {
        if req.method() != Method::GET {
            return self.method_not_allowed("GET");
        }
        match self.site.state.offers.take(token) {
            Some(offer) => {
                tracing::info!(
                    device = %offer.device_id,
                    bytes = offer.bytes.len(),
                    "firmware image downloaded"
                );
                self.reply(
                    StatusCode::OK,
                    "application/octet-stream",
                    Bytes::from_owner(offer.bytes),
                )
            }
            None => self.text(
                StatusCode::NOT_FOUND,
                "no firmware image is on offer at this URL: each URL serves one download and expires; the gateway offers a new one when it retries the update".into(),
            ),
        }
    }

    /// The device's log over HTTP (GetLogURIs): `log.jsonl` or `log.txt`, with the query
    /// `severity`, `start`, `end`, `max`, `cursor` (GetDiagnosticsLog's arguments). The cursor
    /// to continue from is in the `X-Next-Cursor` header, with `X-Missed` and `X-More`.
    async fn device_log(
        &self,
        req: &Request<Incoming>,
        device: &VirtualDevice,
        leaf: &str,
    ) -> Reply {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return self.method_not_allowed("GET, HEAD");
        }
        let query: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .take(16)
                    .collect()
            })
            .unwrap_or_default();
        let known = ["severity", "start", "end", "max", "cursor"];
        if let Some(unknown) = query.keys().find(|k| !known.contains(&k.as_str())) {
            return self.text(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown query parameter `{}`; the log takes {}",
                    unknown.chars().take(32).collect::<String>(),
                    known.join(", ")
                ),
            );
        }
        let get = |k: &str| query.get(k).map_or("", String::as_str);
        let state = &self.site.state;
        let request = match LogRequest::parse(
            &RequestText {
                min_severity: get("severity"),
                start: get("start"),
                end: get("end"),
                max: get("max"),
                cursor: get("cursor"),
            },
            state.diagnostics.max_records(),
        ) {
            Ok(request) => request,
            Err(why) => {
                return self.text(
                    StatusCode::BAD_REQUEST,
                    format!("log of {}: {why}", device.describe()),
                );
            }
        };
        let page = match state
            .diagnostics
            .read_log(&device.record().id, &request)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                return self.text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("log of {}: {e}", device.describe()),
                );
            }
        };
        let (content_type, body) = if leaf == "log.jsonl" {
            ("application/jsonl; charset=utf-8", render::jsonl(&page))
        } else {
            ("text/plain; charset=utf-8", render::text(&page))
        };
        let mut reply = self.reply(StatusCode::OK, content_type, Bytes::from(body));
        let headers = reply.headers_mut();
        for (name, value) in [
            ("x-next-cursor", page.next.to_string()),
            ("x-missed", page.missed.to_string()),
            ("x-more", u8::from(page.more).to_string()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        reply
    }

    /// The issuing CA's CRL and certificate (PEM): public, signed, for anyone checking a
    /// device identity.
    fn pki(&self, req: &Request<Incoming>, path: &str) -> Reply {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return self.method_not_allowed("GET, HEAD");
        }
        let Some(identities) = &self.site.state.identities else {
            return self.text(
                StatusCode::NOT_FOUND,
                "enrollment is off on this gateway: it issues no device identities".into(),
            );
        };
        if path == ISSUING_CA_PATH {
            return self.reply(
                StatusCode::OK,
                "application/x-pem-file",
                Bytes::from(identities.ca_pem().to_owned()),
            );
        }
        match identities.crl_pem(std::time::SystemTime::now()) {
            Ok(pem) => self.reply(StatusCode::OK, "application/x-pem-file", Bytes::from(pem)),
            Err(e) => {
                tracing::error!(error = %e, "cannot sign the CRL");
                self.text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the CRL cannot be signed now: {e}"),
                )
            }
        }
    }

    fn not_found(&self, path: &str) -> Reply {
        self.text(
            StatusCode::NOT_FOUND,
            format!(
                "nothing at `{}`; device descriptions are at /upnp/<udn>/description.xml (find them with SSDP)",
                path.chars().take(128).collect::<String>()
            ),
        )
    }

    fn method_not_allowed(&self, allowed: &'static str) -> Reply {
        let mut reply = self.text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("this URL accepts {allowed}"),
        );
        reply
            .headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static(allowed));
        reply
    }

    fn text(&self, status: StatusCode, message: String) -> Reply {
        self.reply(
            status,
            "text/plain; charset=utf-8",
            Bytes::from(message + "\n"),
        )
    }

    fn reply(&self, status: StatusCode, content_type: &'static str, body: Bytes) -> Reply {
        let mut reply = Response::new(Full::new(body));
        *reply.status_mut() = status;
        let headers = reply.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(server) = HeaderValue::from_str(&self.site.server) {
            headers.insert(hyper::header::SERVER, server);
        }
        headers.insert("EXT", HeaderValue::from_static(""));
        if let Ok(date) =
            HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))
        {
            headers.insert(hyper::header::DATE, date);
        }
        reply
    }
}

/// The host part (name or address, without the port) of the request's Host header, if it is a
/// plausible one; URLs in answers use it so the caller can reach them.
fn request_host(headers: &hyper::HeaderMap) -> Option<String> {
    let host = headers.get(hyper::header::HOST)?.to_str().ok()?.trim();
    if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal: only a real address is echoed back.
        let (address, _) = rest.split_once(']')?;
        return address
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|a| format!("[{a}]"));
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    // A name or an IPv4 address; anything else (an unbracketed IPv6 address, junk) makes the
    // caller fall back to the served address.
    let plausible = (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    plausible.then(|| name.to_owned())
}

/// Whether a call's service type is this service, at its version or a lower one (UDA: a
/// control point written for version 1 may call a version 2 service).
fn service_type_matches(called: &str, served: &str) -> bool {
    let split = |s: &str| {
        s.rsplit_once(':')
            .and_then(|(base, v)| Some((base.to_owned(), v.parse::<u32>().ok()?)))
    };
    match (split(called), split(served)) {
        (Some((a, va)), Some((b, vb))) => a == b && va >= 1 && va <= vb,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_hosts_should_be_echoed_into_urls() {
        let host = |value: &str| {
            let mut headers = hyper::HeaderMap::new();
            headers.insert(hyper::header::HOST, HeaderValue::from_str(value).unwrap());
            request_host(&headers)
        };
        assert_eq!(
            host("gw.example.net:49152").as_deref(),
            Some("gw.example.net")
        );
        assert_eq!(host("192.0.2.7").as_deref(), Some("192.0.2.7"));
        assert_eq!(
            host("[2001:db8::5]:49152").as_deref(),
            Some("[2001:db8::5]")
        );
        for junk in [
            "::1",
            "fe80::1",
            "[x]",
            "a]b",
            "a b",
            "",
            "user@host",
            "h/x",
        ] {
            assert_eq!(host(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_lower_service_version_should_be_served_and_a_higher_one_not() {
        let served = "urn:schemas-upnp-org:service:BasicManagement:2";
        assert!(service_type_matches(
            "urn:schemas-upnp-org:service:BasicManagement:1",
            served
        ));
        assert!(service_type_matches(served, served));
        assert!(!service_type_matches(
            "urn:schemas-upnp-org:service:BasicManagement:3",
            served
        ));
        assert!(!service_type_matches(
            "urn:schemas-upnp-org:service:Other:1",
            served
        ));
        assert!(!service_type_matches("garbage", served));
    }
}
