//! The control point's action side: services found through the device descriptions, read-only
//! actions over plain HTTP and state-changing ones over HTTPS with the operator's client
//! certificate, and the firmware actions with their out arguments parsed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use hyper::StatusCode;
use iotmc_gateway::upnp::tls::DemoPki;
use uuid::Uuid;

use super::events::UpdateStatus;
use crate::common::{
    Reply, call, envelope, get, https, request, soap_action, texts, texts_at, tls_client,
};

/// A service of one device, as its description lists it.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) service_type: String,
    pub(crate) control: String,
    pub(crate) event: String,
}

/// A gateway's UPnP face as a control point sees it.
#[derive(Clone)]
pub(crate) struct Face {
    pub(crate) http: SocketAddr,
    pub(crate) https: SocketAddr,
    operator: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for Face {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Face")
            .field("http", &self.http)
            .field("https", &self.https)
            .finish_non_exhaustive()
    }
}

impl Face {
    /// The face at `http` and `https`, trusted and called as the operator of `pki`.
    pub(crate) fn new(http: SocketAddr, https: SocketAddr, pki: &DemoPki) -> Self {
        let operator = tls_client(
            &pki.ca,
            Some((
                pki.operator_certificate.as_path(),
                pki.operator_key.as_path(),
            )),
        );
        Self {
            http,
            https,
            operator,
        }
    }

    /// The service of type `service_type` of the device `udn`, from its description.
    pub(crate) async fn service(&self, udn: Uuid, service_type: &str) -> Service {
        let reply = get(self.http, &format!("/upnp/{udn}/description.xml")).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let types = texts_at(&reply.body, &["service", "serviceType"]);
        let controls = texts_at(&reply.body, &["service", "controlURL"]);
        let events = texts_at(&reply.body, &["service", "eventSubURL"]);
        let at = types
            .iter()
            .position(|t| t == service_type)
            .unwrap_or_else(|| {
                panic!(
                    "device {udn} describes no {service_type}; its services: {types:?}\n{}",
                    reply.body
                )
            });
        Service {
            service_type: service_type.to_owned(),
            control: controls[at].clone(),
            event: events[at].clone(),
        }
    }

    /// Device ids and UDNs from the gateway root device's `GetInventory`.
    pub(crate) async fn inventory(&self, gateway: Uuid) -> BTreeMap<String, Uuid> {
        let service = self
            .service(gateway, &super::management_controller_type())
            .await;
        let inventory = self
            .read(&service, "GetInventory", &[])
            .await
            .argument("Inventory");
        let ids = texts(&inventory, "Id");
        let udns = texts(&inventory, "UDN");
        assert_eq!(ids.len(), udns.len(), "{inventory}");
        ids.into_iter()
            .zip(udns)
            .map(|(id, udn)| {
                let udn = udn.strip_prefix("uuid:").unwrap_or(&udn).parse().unwrap();
                (id, udn)
            })
            .collect()
    }

    /// Calls `action` over plain HTTP, anonymously.
    pub(crate) async fn read(
        &self,
        service: &Service,
        action: &str,
        args: &[(&str, &str)],
    ) -> Reply {
        call(
            self.http,
            &service.control,
            &service.service_type,
            action,
            args,
        )
        .await
    }

    /// Calls `action` over HTTPS as the operator.
    pub(crate) async fn change(
        &self,
        service: &Service,
        action: &str,
        args: &[(&str, &str)],
    ) -> Reply {
        https(
            &self.operator,
            self.https,
            request(
                "POST",
                self.https,
                &service.control,
                &[
                    ("CONTENT-TYPE", "text/xml; charset=\"utf-8\""),
                    ("SOAPACTION", &soap_action(&service.service_type, action)),
                ],
                envelope(&service.service_type, action, args),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{action} over HTTPS: {e}"))
    }

    /// `GetFirmwareInfo`: every out argument by name.
    pub(crate) async fn firmware_info(&self, service: &Service) -> BTreeMap<&'static str, String> {
        let reply = self.read(service, "GetFirmwareInfo", &[]).await;
        [
            "RunningVersion",
            "RunningSize",
            "RunningSha256",
            "RunningReleaseDate",
            "OfferedVersion",
            "OfferedSize",
            "OfferedSha256",
            "OfferedReleaseDate",
            "OfferedEmergency",
        ]
        .into_iter()
        .map(|name| (name, reply.argument(name)))
        .collect()
    }

    /// `ScheduleFirmwareUpdate(StartTime, ImageSha256)` over HTTPS as the operator.
    pub(crate) async fn schedule(&self, service: &Service, start: &str, sha256: &str) -> Reply {
        self.change(
            service,
            "ScheduleFirmwareUpdate",
            &[("StartTime", start), ("ImageSha256", sha256)],
        )
        .await
    }

    /// Schedules and returns the UpdateId; panics with the fault if it was refused.
    pub(crate) async fn schedule_ok(&self, service: &Service, start: &str, sha256: &str) -> String {
        let update_id = self
            .schedule(service, start, sha256)
            .await
            .argument("UpdateId");
        assert!(!update_id.is_empty(), "an UpdateId");
        update_id
    }

    /// `GetFirmwareUpdateStatus`.
    pub(crate) async fn update_status(&self, service: &Service) -> StatusReply {
        let reply = self.read(service, "GetFirmwareUpdateStatus", &[]).await;
        let number = |name: &str| -> u64 {
            let text = reply.argument(name);
            text.parse()
                .unwrap_or_else(|_| panic!("{name} `{text}` is not a number"))
        };
        let result = reply.argument("ResultCode");
        StatusReply {
            update_id: reply.argument("UpdateId"),
            status: reply.argument("Status"),
            result: result
                .parse()
                .unwrap_or_else(|_| panic!("ResultCode `{result}` is not an i4")),
            acknowledged: number("BytesAcknowledged"),
            total: number("BytesTotal"),
            probation_ends: reply.argument("ProbationEnds"),
            detail: reply.argument("Detail"),
        }
    }
}

/// `GetFirmwareUpdateStatus`'s out arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusReply {
    pub(crate) update_id: String,
    pub(crate) status: String,
    pub(crate) result: i32,
    pub(crate) acknowledged: u64,
    pub(crate) total: u64,
    pub(crate) probation_ends: String,
    pub(crate) detail: String,
}

impl StatusReply {
    /// The same facts as the evented form.
    pub(crate) fn as_evented(&self) -> UpdateStatus {
        UpdateStatus {
            status: self.status.clone(),
            update_id: self.update_id.clone(),
            result: self.result,
            acknowledged: self.acknowledged,
            total: self.total,
        }
    }
}

/// The attributes of every element named `name` (local name) in `xml`.
pub(crate) fn elements(xml: &str, name: &str) -> Vec<BTreeMap<String, String>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::reader::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("malformed XML ({e}): {xml}"))
        {
            Event::Start(e) | Event::Empty(e) if e.local_name().into_inner() == name => {
                let attributes = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap_or_else(|e| panic!("bad attribute ({e}): {xml}"));
                        let key = a.key.local_name().into_inner().to_owned();
                        let value = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap_or_else(|e| panic!("bad attribute value ({e}): {xml}"))
                            .into_owned();
                        (key, value)
                    })
                    .collect();
                out.push(attributes);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}
