//! What the UPnP face tests share: a gateway with two in-memory devices behind a started face,
//! a small HTTP(S) client, SOAP envelopes and an XML text extractor.

#![allow(dead_code)] // each test file uses its own part of this module

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use iotmc_adapter::testkit::memory::{Fault, MemoryAdapter, MemoryDevice};
use iotmc_gateway::adapters::AdapterSet;
use iotmc_gateway::config::Config;
use iotmc_gateway::daemon::Gateway;
use iotmc_gateway::upnp::UpnpFace;
use iotmc_gateway::upnp::tls::{DemoPki, generate_demo_pki};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Guards against a hang only: every wait in these tests ends on an event well before it
/// (above the face's 30 s request timeout, which paused-time tests run into).
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(120);

/// The standard ConfigurationManagement service type.
pub(crate) const CMS: &str = "urn:schemas-upnp-org:service:ConfigurationManagement:2";
/// The standard BasicManagement service type.
pub(crate) const BASIC: &str = "urn:schemas-upnp-org:service:BasicManagement:2";

const THERMOSTAT_PROFILE: &str = r#"
id = "face-thermostat"
manufacturer = "Face Works"
model = "Face thermostat"
protocol = "memory"

[[parameters]]
name = "setpoint"
type = "float"
access = "read-write"
range = { min = 5, max = 30 }

[[parameters]]
name = "temperature"
type = "float"
access = "read"

[[parameters]]
name = "mode"
type = "enum"
values = ["off", "heat", "eco"]
access = "read-write"

[[actions]]
name = "reboot"
kind = "reboot"

[[actions]]
name = "factory_reset"
kind = "factory-reset"

[memory]
initial = { setpoint = 21.0, temperature = 20.0, mode = "heat" }
"#;

const RELAY_PROFILE: &str = r#"
id = "face-relay"
manufacturer = "Face Works"
model = "Face relay"
protocol = "memory"

[[parameters]]
name = "on"
type = "bool"
access = "read-write"

# Patient enough that a silent relay outlasts the face's 30 s request timeout.
[poll]
timeout = "20s"

[memory]
initial = { on = false }
"#;

/// A started gateway with a thermostat (`memory:thermostat-1`) and a relay (`memory:relay-1`)
/// and its UPnP face on loopback (HTTP, and HTTPS with the demo PKI when asked), SSDP on an
/// ephemeral port.
pub(crate) struct Harness {
    pub(crate) memory: Arc<MemoryAdapter>,
    pub(crate) gateway: Gateway,
    pub(crate) face: UpnpFace,
    pub(crate) pki: Option<DemoPki>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("http", &self.face.http_addr())
            .finish_non_exhaustive()
    }
}

fn quote(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// The config of the harness in `dir` (written files: profiles, and the PKI when `tls`).
pub(crate) fn config(dir: &Path, tls: bool) -> (Config, Option<DemoPki>) {
    config_with(dir, tls, &Extra::default())
}

/// What a test adds to the harness's config.
#[derive(Debug, Default)]
pub(crate) struct Extra<'a> {
    /// TOML appended after the devices (`[enrollment]`, `[[groups]]`, ...).
    pub(crate) toml: &'a str,
    /// The thermostat's group.
    pub(crate) thermostat_group: Option<&'a str>,
    /// The relay's group.
    pub(crate) relay_group: Option<&'a str>,
}

/// The harness's config with `extra`.
pub(crate) fn config_with(dir: &Path, tls: bool, extra: &Extra<'_>) -> (Config, Option<DemoPki>) {
    let group = |g: Option<&str>| g.map(|g| format!("group = \"{g}\"\n")).unwrap_or_default();
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("thermostat.toml"), THERMOSTAT_PROFILE).unwrap();
    std::fs::write(profiles.join("relay.toml"), RELAY_PROFILE).unwrap();
    let pki = tls.then(|| generate_demo_pki(&dir.join("pki")).unwrap());
    let trust = pki
        .as_ref()
        .map(|pki| {
            format!(
                "[trust]\ngateway_certificate = {}\ngateway_key = {}\noperator_ca = {}\n",
                quote(&pki.server_certificate),
                quote(&pki.server_key),
                quote(&pki.ca)
            )
        })
        .unwrap_or_default();
    let text = format!(
        r#"
[gateway]
id = "face-test"
name = "Face test gateway"
state_dir = {state}
profile_dirs = [{profiles}]

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
ssdp_port = 0

{trust}
[[devices]]
id = "thermostat-1"
name = "Hall thermostat"
profile = "face-thermostat"
address = "memory:thermostat-1"
{thermostat_group}
[[devices]]
id = "relay-1"
profile = "face-relay"
address = "memory:relay-1"
{relay_group}
{extra}
"#,
        state = quote(&dir.join("state")),
        profiles = quote(&profiles),
        thermostat_group = group(extra.thermostat_group),
        relay_group = group(extra.relay_group),
        extra = extra.toml,
    );
    let config =
        Config::from_toml(&dir.join("gateway.toml"), &text).unwrap_or_else(|e| panic!("{e:?}"));
    (config, pki)
}

impl Harness {
    /// Starts the gateway and its face with state in `dir`.
    pub(crate) async fn start(dir: &Path, tls: bool) -> Self {
        Self::start_with(dir, tls, &Extra::default(), |_| {}).await
    }

    /// Starts the gateway and its face with `extra` config; `prepare` sets up the simulator
    /// before any device is attached.
    pub(crate) async fn start_with(
        dir: &Path,
        tls: bool,
        extra: &Extra<'_>,
        prepare: impl FnOnce(&MemoryAdapter),
    ) -> Self {
        let (config, pki) = config_with(dir, tls, extra);
        let memory = Arc::new(MemoryAdapter::new(Fault::None));
        prepare(&memory);
        let adapters =
            AdapterSet::built().with(Arc::clone(&memory) as Arc<dyn iotmc_adapter::Adapter>);
        let gateway = Gateway::start(config, adapters)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let face = UpnpFace::start(&gateway)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            memory,
            gateway,
            face,
            pki,
        }
    }

    /// Stops the face, then the gateway.
    pub(crate) async fn stop(self) {
        self.face.stop().await;
        self.gateway.stop().await;
    }

    /// The UDN of device `id`, as the registry has it.
    pub(crate) fn udn(&self, id: &str) -> uuid::Uuid {
        self.gateway
            .devices()
            .iter()
            .find(|d| d.record.id == id)
            .unwrap_or_else(|| panic!("no device {id}"))
            .record
            .udn
    }

    /// The simulated device behind device `id`.
    pub(crate) fn simulated(&self, id: &str) -> Arc<MemoryDevice> {
        self.memory.device(&format!("memory:{id}")).unwrap()
    }

    /// The thermostat's setpoint as the simulated device holds it.
    pub(crate) fn setpoint(&self) -> iotmc_adapter::Value {
        self.simulated("thermostat-1").value("setpoint").unwrap()
    }

    /// The thermostat's configuration version as the registry has it.
    pub(crate) fn config_version(&self, id: &str) -> u64 {
        self.gateway
            .registry()
            .device(id)
            .unwrap()
            .unwrap()
            .config_version
    }

    /// The control URL path of `service` on device `id`.
    pub(crate) fn control(&self, id: &str, service: &str) -> String {
        format!("/upnp/{}/{service}/control", self.udn(id))
    }

    /// ConfigurationManagement GetValues of `paths` on device `id`, over plain HTTP.
    pub(crate) async fn get_values(&self, id: &str, paths: &[&str]) -> Reply {
        call(
            self.face.http_addr(),
            &self.control(id, "ConfigurationManagement"),
            CMS,
            "GetValues",
            &[("Parameters", &content_paths(paths))],
        )
        .await
    }

    /// BasicManagement GetDeviceStatus of device `id`, over plain HTTP.
    pub(crate) async fn device_status(&self, id: &str) -> String {
        call(
            self.face.http_addr(),
            &self.control(id, "BasicManagement"),
            BASIC,
            "GetDeviceStatus",
            &[],
        )
        .await
        .argument("DeviceStatus")
    }
}

/// A whole HTTP response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `(errorCode, errorDescription)` of a SOAP fault; panics if this is not one.
    pub(crate) fn upnp_error(&self) -> (u16, String) {
        assert_eq!(
            self.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "a fault: {self:?}"
        );
        let code = texts(&self.body, "errorCode");
        let description = texts(&self.body, "errorDescription");
        assert_eq!(code.len(), 1, "{}", self.body);
        (code[0].parse().unwrap(), description[0].clone())
    }

    /// The text of out argument `name` of a successful action; panics otherwise.
    pub(crate) fn argument(&self, name: &str) -> String {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        let values = texts(&self.body, name);
        assert_eq!(values.len(), 1, "one {name} in {}", self.body);
        values[0].clone()
    }
}

/// Sends one request over `io` (a fresh connection) and reads the whole response.
pub(crate) async fn exchange<S>(io: S, request: Request<Full<Bytes>>) -> Result<Reply, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await;
    let result = match response {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            body.collect().await.map(|body| Reply {
                status: parts.status,
                headers: parts.headers,
                body: String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            })
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
}

/// A request with `method` to `path` on `addr`, with `headers` and `body`.
pub(crate) fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .header("HOST", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body.into())).unwrap()
}

/// One plain-HTTP request to the face.
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let request = request(method, addr, path, headers, body);
    tokio::time::timeout(HANG_GUARD, exchange(stream, request))
        .await
        .expect("the face answers")
        .unwrap()
}

/// GET `path`.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[], Bytes::new()).await
}

/// A SOAP request envelope calling `action` of `service_type` with `args` (escaped here).
pub(crate) fn envelope(service_type: &str, action: &str, args: &[(&str, &str)]) -> String {
    let args: String = args
        .iter()
        .map(|(name, value)| format!("<{name}>{}</{name}>", quick_xml::escape::escape(*value)))
        .collect();
    format!(
        r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:{action} xmlns:u="{service_type}">{args}</u:{action}></s:Body></s:Envelope>"#
    )
}

/// The SOAPACTION header value for `service_type#action`.
pub(crate) fn soap_action(service_type: &str, action: &str) -> String {
    format!("\"{service_type}#{action}\"")
}

/// POSTs `body` to `control` with `soapaction` over plain HTTP.
pub(crate) async fn post_soap(
    addr: SocketAddr,
    control: &str,
    soapaction: &str,
    body: String,
) -> Reply {
    http(
        addr,
        "POST",
        control,
        &[
            ("CONTENT-TYPE", "text/xml; charset=\"utf-8\""),
            ("SOAPACTION", soapaction),
        ],
        body,
    )
    .await
}

/// Calls `action` of `service_type` at `control` over plain HTTP.
pub(crate) async fn call(
    addr: SocketAddr,
    control: &str,
    service_type: &str,
    action: &str,
    args: &[(&str, &str)],
) -> Reply {
    post_soap(
        addr,
        control,
        &soap_action(service_type, action),
        envelope(service_type, action, args),
    )
    .await
}

/// A `ContentPathList` holding `paths`.
pub(crate) fn content_paths(paths: &[&str]) -> String {
    let items: String = paths
        .iter()
        .map(|p| format!("<ContentPath>{p}</ContentPath>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><cms:ContentPathList xmlns:cms="urn:schemas-upnp-org:dm:cms">{items}</cms:ContentPathList>"#
    )
}

/// A `ParameterValueList` setting `pairs`.
pub(crate) fn parameter_values(pairs: &[(&str, &str)]) -> String {
    let items: String = pairs
        .iter()
        .map(|(p, v)| {
            format!("<Parameter><ParameterPath>{p}</ParameterPath><Value>{v}</Value></Parameter>")
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><cms:ParameterValueList xmlns:cms="urn:schemas-upnp-org:dm:cms">{items}</cms:ParameterValueList>"#
    )
}

/// `(ParameterPath, Value)` pairs of a `ParameterValueList` document.
pub(crate) fn parameter_pairs(list: &str) -> Vec<(String, String)> {
    let paths = texts(list, "ParameterPath");
    let values = texts(list, "Value");
    assert_eq!(paths.len(), values.len(), "{list}");
    paths.into_iter().zip(values).collect()
}

/// The unescaped text of every element whose local name is `name`, in document order (an
/// empty element gives ""). Panics on malformed XML: everything the face sends must parse.
pub(crate) fn texts(xml: &str, name: &str) -> Vec<String> {
    texts_at(xml, &[name])
}

/// Like [`texts`], for elements whose own and ancestors' local names end with `suffix`
/// (`["action", "name"]`: the names of actions, not of their arguments).
pub(crate) fn texts_at(xml: &str, suffix: &[&str]) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    reader.config_mut().check_end_names = true;
    let mut out = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut current: Option<(usize, String)> = None;
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("malformed XML ({e}): {xml}"))
        {
            Event::Start(start) => {
                let local = start.local_name().into_inner().to_owned();
                stack.push(local);
                let matches = stack.len() >= suffix.len()
                    && stack[stack.len() - suffix.len()..]
                        .iter()
                        .zip(suffix)
                        .all(|(a, b)| a == b);
                if current.is_none() && matches {
                    current = Some((stack.len(), String::new()));
                }
            }
            Event::End(_) => {
                if let Some((_, text)) = current.take_if(|(at, _)| *at == stack.len()) {
                    out.push(text);
                }
                stack.pop();
            }
            Event::Text(text) => {
                if let Some((_, value)) = current.as_mut() {
                    value.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some((_, value)) = current.as_mut() {
                    value.push_str(&data);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some((_, value)) = current.as_mut() {
                    let c = if reference.is_char_ref() {
                        reference.resolve_char_ref().unwrap().unwrap()
                    } else {
                        match &*reference {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => panic!("unexpected entity &{other}; in {xml}"),
                        }
                    };
                    value.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unbalanced XML: {xml}");
    out
}

/// The demo PKI's operator identity, or none, for an HTTPS client trusting the demo CA.
pub(crate) fn tls_client(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTPS request through `connector`: the TLS or HTTP error, or the reply.
pub(crate) async fn https(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<Reply, String> {
    let work = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector
            .connect(name, stream)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        exchange(tls, request)
            .await
            .map_err(|e| format!("exchange: {e:?}"))
    };
    tokio::time::timeout(HANG_GUARD, work)
        .await
        .expect("the HTTPS exchange ends")
}

/// A client identity from a CA the gateway does not trust, named unlike the demo CA:
/// `(certificate, key)` PEM paths in `dir`.
pub(crate) fn stranger_identity(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "Stranger CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "stranger operator");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) = (dir.join("stranger.pem"), dir.join("stranger.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// A second demo PKI: its CA has the same name as the trusted demo CA but another key.
pub(crate) fn foreign_pki(dir: &Path) -> DemoPki {
    generate_demo_pki(&dir.join("foreign-pki")).unwrap()
}
