//! Building outgoing SSDP datagrams: NOTIFY alive, byebye and update (UDA 2.0 §1.2) and
//! search responses (§1.3.3), with the UPnP 2.0 BOOTID/CONFIGID fields and the
//! `MANAGEMENT.<vendor domain>` vendor extension header (DESIGN.md §4).

use std::fmt::Write as _;
use std::time::SystemTime;

use super::announce::{Notification, Nts};
use super::search::SearchResponse;

/// Largest datagram we send: one Ethernet frame of UDP payload. Our messages are far smaller.
pub(crate) const MAX_SEND: usize = 1472;

/// The header values that are the same in every datagram.
#[derive(Debug, Clone)]
pub(crate) struct HeaderValues {
    /// SERVER.
    pub(crate) server: String,
    /// Domain of the `MANAGEMENT.<domain>` header.
    pub(crate) vendor_domain: String,
    /// HTTP listener port, for LOCATION.
    pub(crate) http_port: u16,
    /// CACHE-CONTROL max-age in seconds.
    pub(crate) max_age_secs: u64,
    /// CONFIGID.UPNP.ORG.
    pub(crate) config_id: u32,
}

/// Appends `name: value` CRLF. Writing to a `String` cannot fail.
fn field(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "{name}: {value}\r\n");
}

impl HeaderValues {
    fn location(&self, out: &mut String, interface: std::net::Ipv4Addr, path: &str) {
        let _ = write!(
            out,
            "LOCATION: http://{interface}:{}{path}\r\n",
            self.http_port
        );
    }

    fn ids(&self, out: &mut String, boot_id: u32) {
        field(out, "BOOTID.UPNP.ORG", boot_id);
        field(out, "CONFIGID.UPNP.ORG", self.config_id);
    }

    fn management(&self, out: &mut String, capabilities: &str) {
        if !capabilities.is_empty() {
            field(
                out,
                &format!("MANAGEMENT.{}", self.vendor_domain),
                capabilities,
            );
        }
    }

    /// The NOTIFY datagram for `n`.
    pub(crate) fn notify(&self, n: &Notification) -> String {
        let mut out = String::with_capacity(512);
        let (nt, usn) = n
            .device
            .adverts
            .get(n.advert)
            .map(|a| (a.nt.as_str(), a.usn.as_str()))
            .unwrap_or_default();
        out.push_str("NOTIFY * HTTP/1.1\r\n");
        field(&mut out, "HOST", "239.255.255.250:1900");
        if n.nts == Nts::Alive {
            field(
                &mut out,
                "CACHE-CONTROL",
                format_args!("max-age={}", self.max_age_secs),
            );
        }
        if n.nts != Nts::ByeBye {
            self.location(&mut out, n.interface, &n.device.device.description_path);
        }
        field(&mut out, "NT", nt);
        let nts = match n.nts {
            Nts::Alive => "ssdp:alive",
            Nts::ByeBye => "ssdp:byebye",
            Nts::Update { .. } => "ssdp:update",
        };
        field(&mut out, "NTS", nts);
        if n.nts == Nts::Alive {
            field(&mut out, "SERVER", &self.server);
        }
        field(&mut out, "USN", usn);
        self.ids(&mut out, n.boot_id);
        match n.nts {
            Nts::Alive => self.management(&mut out, &n.device.capabilities),
            Nts::Update { next_boot_id } => field(&mut out, "NEXTBOOTID.UPNP.ORG", next_boot_id),
            Nts::ByeBye => {}
        }
        out.push_str("\r\n");
        out
    }

    /// The response datagram for `r`, dated `date`.
    pub(crate) fn search_response(&self, r: &SearchResponse, date: SystemTime) -> String {
        let mut out = String::with_capacity(512);
        let (st, usn) = r.answer.st_usn(&r.device);
        out.push_str("HTTP/1.1 200 OK\r\n");
        field(
            &mut out,
            "CACHE-CONTROL",
            format_args!("max-age={}", self.max_age_secs),
        );
        field(&mut out, "DATE", httpdate::fmt_http_date(date));
        out.push_str("EXT:\r\n");
        self.location(&mut out, r.interface, &r.device.device.description_path);
        field(&mut out, "SERVER", &self.server);
        field(&mut out, "ST", st);
        field(&mut out, "USN", usn);
        self.ids(&mut out, r.boot_id);
        self.management(&mut out, &r.device.capabilities);
        out.push_str("\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::upnp::ssdp::device::tests::managed;
    use crate::upnp::ssdp::device::{Answer, DeviceAdverts};
    use crate::upnp::ssdp::message::{StartLine, parse};

    const ETH0: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

    fn values() -> HeaderValues {
        HeaderValues {
            server: "Linux/6.1 UPnP/2.0 iotmc-gateway/0.1.0".into(),
            vendor_domain: "example.com".into(),
            http_port: 49152,
            max_age_secs: 1800,
            config_id: 3,
        }
    }

    fn notification(nts: Nts, advert: usize) -> Notification {
        Notification {
            nts,
            device: DeviceAdverts::new(managed(1)).unwrap(),
            advert,
            interface: ETH0,
            boot_id: 7,
        }
    }

    #[test]
    fn an_alive_should_carry_every_required_header_and_parse_back() {
        let text = values().notify(&notification(Nts::Alive, 5));
        let msg = parse(text.as_bytes()).unwrap();
        assert_eq!(msg.start_line(), StartLine::Notify);
        let uuid = "uuid:12340000-0000-4000-8000-000000000001";
        let nt = "urn:example-com:service:FirmwareUpdate:1";
        assert_eq!(msg.header("HOST"), Some("239.255.255.250:1900"));
        assert_eq!(msg.header("CACHE-CONTROL"), Some("max-age=1800"));
        assert_eq!(
            msg.header("LOCATION"),
            Some(
                format!(
                    "http://192.168.1.10:49152/upnp/{}/description.xml",
                    &uuid[5..]
                )
                .as_str()
            )
        );
        assert_eq!(msg.header("NT"), Some(nt));
        assert_eq!(msg.header("NTS"), Some("ssdp:alive"));
        assert_eq!(
            msg.header("SERVER"),
            Some("Linux/6.1 UPnP/2.0 iotmc-gateway/0.1.0")
        );
        assert_eq!(msg.header("USN"), Some(format!("{uuid}::{nt}").as_str()));
        assert_eq!(msg.header("BOOTID.UPNP.ORG"), Some("7"));
        assert_eq!(msg.header("CONFIGID.UPNP.ORG"), Some("3"));
        assert_eq!(
            msg.header("MANAGEMENT.example.com"),
            Some("config,firmware")
        );
        assert!(text.len() < 600, "{} bytes", text.len());
    }

    #[test]
    fn byebye_and_update_should_carry_their_own_headers() {
        let bye = values().notify(&notification(Nts::ByeBye, 0));
        let msg = parse(bye.as_bytes()).unwrap();
        assert_eq!(msg.header("NTS"), Some("ssdp:byebye"));
        assert_eq!(msg.header("NT"), Some("upnp:rootdevice"));
        assert_eq!(msg.header("BOOTID.UPNP.ORG"), Some("7"));
        assert_eq!(msg.header("LOCATION"), None);
        assert_eq!(msg.header("CACHE-CONTROL"), None);

        let update = values().notify(&notification(Nts::Update { next_boot_id: 8 }, 1));
        let msg = parse(update.as_bytes()).unwrap();
        assert_eq!(msg.header("NTS"), Some("ssdp:update"));
        assert_eq!(msg.header("BOOTID.UPNP.ORG"), Some("7"));
        assert_eq!(msg.header("NEXTBOOTID.UPNP.ORG"), Some("8"));
        assert!(msg.header("LOCATION").is_some());
    }

    #[test]
    fn a_search_response_should_echo_the_searched_version_with_ext_and_date() {
        let device = DeviceAdverts::new(managed(1)).unwrap();
        let st = "urn:schemas-upnp-org:service:BasicManagement:1";
        let response = SearchResponse {
            to: "192.168.1.77:50000".parse().unwrap(),
            interface: ETH0,
            device: Arc::clone(&device),
            answer: Answer::Lower(st.into()),
            boot_id: 7,
        };
        let date = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let text = values().search_response(&response, date);
        let msg = parse(text.as_bytes()).unwrap();
        assert_eq!(msg.start_line(), StartLine::Response { status: 200 });
        assert_eq!(msg.header("ST"), Some(st));
        assert_eq!(
            msg.header("USN"),
            Some(format!("uuid:12340000-0000-4000-8000-000000000001::{st}").as_str())
        );
        assert_eq!(msg.header("EXT"), Some(""));
        assert_eq!(msg.header("DATE"), Some("Tue, 14 Nov 2023 22:13:20 GMT"));
        assert_eq!(msg.header("CACHE-CONTROL"), Some("max-age=1800"));
        assert_eq!(
            msg.header("MANAGEMENT.example.com"),
            Some("config,firmware")
        );
        assert!(text.len() < MAX_SEND);
    }

    #[test]
    fn no_capabilities_should_leave_the_management_header_out() {
        let mut bare = managed(2);
        bare.capabilities.clear();
        let n = Notification {
            device: DeviceAdverts::new(bare).unwrap(),
            ..notification(Nts::Alive, 0)
        };
        let msg = parse(values().notify(&n).as_bytes()).unwrap();
        assert_eq!(msg.header("MANAGEMENT.example.com"), None);
    }
}
