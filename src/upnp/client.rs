//! A small UPnP SOAP client: calls actions on a control URL over HTTPS with mutual TLS (or plain
//! HTTP, for reads), and GETs documents. Used by `iotmc-gateway ctl` and by anything that calls
//! a gateway the way a control point or an enrolling device does.
//!
//! TLS is rustls with the ring provider only, TLS 1.3 preferred and 1.2 the minimum, the server
//! verified against the CA certificates given (never the system's roots) under the host name or
//! address of the base URL. One connection per request: a control point calls rarely, and a
//! fresh connection never inherits a half-broken one's state.
//!
//! Replies are untrusted: bodies are bounded ([`MAX_REPLY`]), SOAP is parsed without DOCTYPE or
//! entities and with bounded depth, and a `UPnPError` fault becomes [`ClientError::Upnp`].

mod envelope;
mod tls;

pub use tls::TlsFailure;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use envelope::Reply;

/// Largest reply body accepted.
pub const MAX_REPLY: usize = 8 * 1024 * 1024;

/// Most characters of an unexpected HTTP body kept in [`ClientError::Http`].
const MAX_ERROR_BODY: usize = 1024;

/// A client identity: a certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(certificate: &Path, key: &Path) -> Result<Self, ClientError> {
        let chain = certificates_from_pem_file("client certificate", certificate)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ClientError::File {
            what: "client key",
            path: key.to_owned(),
            why: format!("{e} (a PEM private key is expected)"),
        })?;
        Ok(Self { chain, key })
    }
}

/// Reads every PEM certificate in `path`; `what` names the file's role in errors.
pub fn certificates_from_pem_file(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    crate::upnp::tls::pem_certificates(path).map_err(|why| ClientError::File {
        what,
        path: path.to_owned(),
        why,
    })
}

/// Why a call or GET failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL or the request cannot be used.
    #[error("{0}")]
    Request(String),
    /// A certificate or key file could not be read.
    #[error("{what} `{path}`: {why}")]
    File {
        /// The file's role (`CA certificate`, `client certificate`, `client key`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// No connection to the server, or it broke before a whole reply arrived.
    #[error("cannot talk to {address}: {why}")]
    Connect {
        /// `host:port`.
        address: String,
        /// The underlying error.
        why: String,
    },
    /// TLS failed: the server's certificate was not trusted, or the server refused ours.
    #[error("TLS with {address}: {failure} ({why})")]
    Tls {
        /// `host:port`.
        address: String,
        /// What kind of failure, for the operator.
        failure: TlsFailure,
        /// rustls' own words.
        why: String,
    },
    /// No whole reply within the timeout.
    #[error("no reply from {address} within {} s", after.as_secs_f32())]
    Timeout {
        /// `host:port`.
        address: String,
        /// The timeout.
        after: Duration,
    },
    /// An HTTP status other than a SOAP reply's (404, 413, 503, ...), with the start of the
    /// body (the gateway says what is wrong there).
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The body's first characters, trimmed.
        body: String,
    },
    /// The action failed with a UPnP error.
    #[error("UPnPError {code}: {description}")]
    Upnp {
        /// `errorCode`.
        code: u16,
        /// `errorDescription`.
        description: String,
    },
    /// The reply is not what UPnP says it should be.
    #[error("malformed reply: {0}")]
    Malformed(String),
}

/// Where the server is.
#[derive(Debug, Clone)]
struct Base {
    /// `host:port` as written (with brackets for IPv6), for the Host header and messages.
    authority: String,
    /// The host to connect to, without brackets.
    host: String,
    port: u16,
    https: bool,
}

impl Base {
    fn parse(base: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| {
            ClientError::Request(format!(
                "`{}` is not a usable gateway URL: {why}; write https://HOST:PORT (or http://HOST:PORT for reads)",
                base.chars().take(128).collect::<String>()
            ))
        };
        let uri: hyper::Uri = base.trim().parse().map_err(|_| bad("it does not parse"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("the scheme must be https or http")),
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("it must not have a path or query"));
        }
        let authority = uri.authority().ok_or_else(|| bad("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("it must not carry user information"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Self {
            authority: authority.as_str().to_owned(),
            host,
            port,
            https,
        })
    }
}

/// A UPnP SOAP client for one server.
pub struct SoapClient {
    base: Base,
    /// The TLS connector and the server name to verify, for https.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    presents_identity: bool,
    timeout: Duration,
}

impl std::fmt::Debug for SoapClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoapClient")
            .field("base", &self.base.authority)
            .field("https", &self.base.https)
            .field("presents_identity", &self.presents_identity)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SoapClient {
    /// A client of the server at `base` (`https://host:port`, or `http://host:port` for reads
    /// only). `ca`: the certificates to trust for the server (required for https). `identity`:
    /// the client certificate to present (https only). `timeout` bounds each whole request.
    pub fn new(
        base: &str,
        ca: Vec<CertificateDer<'static>>,
        identity: Option<Identity>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let base = Base::parse(base)?;
        let presents_identity = identity.is_some();
        let tls = if base.https {
            let server_name = ServerName::try_from(base.host.clone()).map_err(|_| {
                ClientError::Request(format!(
                    "`{}` is neither a DNS name nor an IP address",
                    base.host
                ))
            })?;
            Some((tls::connector(ca, identity)?, server_name))
        } else if identity.is_some() {
            return Err(ClientError::Request(format!(
                "a client certificate is only presented over https, and {} is http: use https://{}",
                base.authority, base.authority
            )));
        } else {
            None
        };
        Ok(Self {
            base,
            tls,
            presents_identity,
            timeout,
        })
    }

    /// Like [`SoapClient::new`], reading the CA certificates and the identity from PEM files;
    /// an error names the file. `certificate` and `key` go together.
    pub fn from_pem_files(
        base: &str,
        ca: Option<&Path>,
        certificate: Option<&Path>,
        key: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let ca = match ca {
            Some(path) => certificates_from_pem_file("CA certificate", path)?,
            None => Vec::new(),
        };
        let identity = match (certificate, key) {
            (Some(certificate), Some(key)) => Some(Identity::from_pem_files(certificate, key)?),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ClientError::Request(
                    "a client certificate needs its key too".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ClientError::Request(
                    "a client key needs its certificate too".into(),
                ));
            }
        };
        Self::new(base, ca, identity, timeout)
    }

    /// A client of the server at `base` (https) that accepts only the server certificate
    /// `pinned` and presents `chain` with `key`: a virtual device enrolling with its own
    /// gateway over loopback.
    pub fn pinned(
        base: &str,
        pinned: CertificateDer<'static>,
        chain: Vec<CertificateDer<'static>>,
        key: std::sync::Arc<dyn rustls::sign::SigningKey>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let base = Base::parse(base)?;
        let server_name = ServerName::try_from(base.host.clone()).map_err(|_| {
            ClientError::Request(format!(
                "`{}` is neither a DNS name nor an IP address",
                base.host
            ))
        })?;
        if !base.https {
            return Err(ClientError::Request(format!(
                "{} is http; a pinned server certificate needs https",
                base.authority
            )));
        }
        Ok(Self {
            tls: Some((tls::connector_pinned(pinned, chain, key)?, server_name)),
            base,
            presents_identity: true,
            timeout,
        })
    }

    /// `host:port` of the server.
    pub fn address(&self) -> &str {
        &self.base.authority
    }

    /// Whether requests present a client certificate.
    pub fn presents_identity(&self) -> bool {
        self.presents_identity
    }

    /// Whether requests go over TLS.
    pub fn is_https(&self) -> bool {
        self.base.https
    }

    /// Calls `action` of `service_type` at `control_path` (`/upnp/<udn>/<Service>/control`)
    /// with `args` in order; returns the out arguments in the order the server sent them.
    pub async fn call(
        &self,
        control_path: &str,
        service_type: &str,
        action: &str,
        args: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, ClientError> {
        if !envelope::is_plain_name(action) {
            return Err(ClientError::Request(format!(
                "`{action}` is not an action name"
            )));
        }
        if let Some((name, _)) = args.iter().find(|(n, _)| !envelope::is_plain_name(n)) {
            return Err(ClientError::Request(format!(
                "`{name}` is not an argument name"
            )));
        }
        let soap_action = format!("\"{service_type}#{action}\"");
        let body = envelope::request(service_type, action, args);
        let request = self
            .request(Method::POST, control_path)?
            .header(CONTENT_TYPE, "text/xml; charset=\"utf-8\"")
            .header("SOAPACTION", soap_action)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Request(format!("cannot build the request: {e}")))?;
        let (status, body) = self.exchange(request).await?;
        match envelope::parse_reply(&body, action) {
            Ok(Reply::Out(out)) if status == StatusCode::OK => Ok(out),
            Ok(Reply::Fault { code, description }) => Err(ClientError::Upnp { code, description }),
            Err(why) if status == StatusCode::OK => Err(ClientError::Malformed(why)),
            _ => Err(http_error(status, &body)),
        }
    }

    /// GETs `path`; returns the status and the body (lossily decoded as UTF-8).
    pub async fn get(&self, path: &str) -> Result<(u16, String), ClientError> {
        let request = self
            .request(Method::GET, path)?
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Request(format!("cannot build the request: {e}")))?;
        let (status, body) = self.exchange(request).await?;
        Ok((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<hyper::http::request::Builder, ClientError> {
        if !path.starts_with('/') {
            return Err(ClientError::Request(format!(
                "the path `{}` must start with /",
                path.chars().take(128).collect::<String>()
            )));
        }
        Ok(Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.base.authority.as_str())
            .header(
                USER_AGENT,
                format!(
                    "{}/1 UPnP/2.0 iotmc-gateway/{}",
                    std::env::consts::OS,
                    env!("CARGO_PKG_VERSION")
                ),
            ))
    }

    /// Sends one request on a fresh connection and reads the whole, bounded reply.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        match tokio::time::timeout(self.timeout, self.exchange_unbounded(request)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                address: self.base.authority.clone(),
                after: self.timeout,
            }),
        }
    }

    async fn exchange_unbounded(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let stream = TcpStream::connect((self.base.host.as_str(), self.base.port))
            .await
            .map_err(|e| ClientError::Connect {
                address: self.base.authority.clone(),
                why: e.to_string(),
            })?;
        match &self.tls {
            None => send(TokioIo::new(stream), request).await,
            Some((connector, name)) => match connector.connect(name.clone(), stream).await {
                Ok(stream) => send(TokioIo::new(stream), request).await,
                Err(e) => Err(Failure::Io(e)),
            },
        }
        .map_err(|failure| self.classify(failure))
    }

    fn classify(&self, failure: Failure) -> ClientError {
        let address = self.base.authority.clone();
        match failure {
            Failure::TooLarge => {
                ClientError::Malformed(format!("the reply is larger than {MAX_REPLY} bytes"))
            }
            Failure::Io(e) => tls::classify(address, &e, self.presents_identity),
            Failure::Hyper(e) if e.is_parse() || e.is_parse_status() => {
                ClientError::Malformed(format!("the reply is not valid HTTP: {e}"))
            }
            Failure::Hyper(e) => tls::classify(address, &e, self.presents_identity),
            Failure::Body(e) => tls::classify(address, e.as_ref(), self.presents_identity),
        }
    }
}

/// How an exchange failed, before it is put in the operator's words.
enum Failure {
    Io(std::io::Error),
    Hyper(hyper::Error),
    Body(Box<dyn std::error::Error + Send + Sync>),
    TooLarge,
}

/// Sends `request` over `io` and reads the whole reply, at most [`MAX_REPLY`] bytes of body.
async fn send<I>(io: I, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), Failure>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(Failure::Hyper)?;
    let driver = AbortOnDrop(tokio::spawn(connection));
    let response = sender.send_request(request).await.map_err(Failure::Hyper)?;
    let (parts, body) = response.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REPLY as u64) {
        return Err(Failure::TooLarge);
    }
    let body = match Limited::new(body, MAX_REPLY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(Failure::TooLarge);
        }
        Err(e) => return Err(Failure::Body(e)),
    };
    drop(driver);
    Ok((parts.status, body))
}

/// Aborts the connection task when the exchange ends, however it ends (timeout included).
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The error for a reply that is neither a SOAP answer nor a fault.
fn http_error(status: StatusCode, body: &[u8]) -> ClientError {
    let text = String::from_utf8_lossy(body);
    let mut body: String = text.trim().chars().take(MAX_ERROR_BODY).collect();
    if text.trim().chars().count() > MAX_ERROR_BODY {
        body.push('…');
    }
    ClientError::Http {
        status: status.as_u16(),
        body,
    }
}

#[cfg(test)]
mod tests;
