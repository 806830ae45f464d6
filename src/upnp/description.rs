//! Device descriptions (UDA 2.0 §2.3) and the URLs inside them.
//!
//! Every virtual device and the gateway are separate root devices:
//! - `/upnp/<udn>/description.xml` — the device description;
//! - `/upnp/<udn>/<Service>/scpd.xml`, `.../control`, `.../event` — per service;
//! - `/upnp/<udn>/` — a read-only presentation page.

use std::fmt::Write as _;

use crate::upnp::xml_text::escape;
use uuid::Uuid;

use super::device::{DeviceFacts, VirtualDevice};
use super::scpd::{ServiceSpec, urn_domain};
use super::services::specs::{DEVICE_SERVICES, GATEWAY_SERVICES};
use super::services::{FaceState, GatewayInfo};

/// The device type of every virtual device.
pub const MANAGEABLE_DEVICE: &str = "urn:schemas-upnp-org:device:ManageableDevice:2";

/// The gateway's device type.
pub fn controller_device_type(vendor_domain: &str) -> String {
    format!(
        "urn:{}:device:ManagementController:1",
        urn_domain(vendor_domain)
    )
}

/// Path of a device's description.
pub fn description_path(udn: Uuid) -> String {
    format!("/upnp/{udn}/description.xml")
}

/// Path of a service URL (`scpd.xml`, `control`, `event`).
pub fn service_path(udn: Uuid, spec: &ServiceSpec, leaf: &str) -> String {
    format!("/upnp/{udn}/{}/{leaf}", spec.path)
}

/// The description of a virtual device.
pub fn device_description(state: &FaceState, device: &VirtualDevice, config_id: u32) -> String {
    render(
        config_id,
        MANAGEABLE_DEVICE,
        device.udn,
        &device.facts,
        &state.vendor_domain,
        &DEVICE_SERVICES,
    )
}

/// The description of the gateway's own root device.
pub fn gateway_description(state: &FaceState, config_id: u32) -> String {
    let GatewayInfo { udn, id, name } = &state.gateway;
    let facts = DeviceFacts {
        friendly_name: name.clone(),
        manufacturer: "iotmc-gateway".into(),
        model: "iotmc-gateway management controller".into(),
        model_number: env!("CARGO_PKG_VERSION").into(),
        description: format!(
            "Gateway `{id}`: presents {} legacy devices as UPnP managed devices",
            state.devices.len()
        ),
        serial: id.clone(),
        firmware_version: Some(env!("CARGO_PKG_VERSION").into()),
    };
    render(
        config_id,
        &controller_device_type(&state.vendor_domain),
        *udn,
        &facts,
        &state.vendor_domain,
        &GATEWAY_SERVICES,
    )
}

fn render(
    config_id: u32,
    device_type: &str,
    udn: Uuid,
    facts: &DeviceFacts,
    vendor_domain: &str,
    services: &[&ServiceSpec],
) -> String {
    let mut x = String::with_capacity(4096);
    let _ = write!(
        x,
        r#"<?xml version="1.0" encoding="utf-8"?>
<root xmlns="urn:schemas-upnp-org:device-1-0" configId="{config_id}">
<specVersion><major>2</major><minor>0</minor></specVersion>
<device>
<deviceType>{}</deviceType>
<friendlyName>{}</friendlyName>
<manufacturer>{}</manufacturer>
<modelDescription>{}</modelDescription>
<modelName>{}</modelName>
<modelNumber>{}</modelNumber>
<serialNumber>{}</serialNumber>
<UDN>uuid:{udn}</UDN>
<serviceList>
"#,
        escape(device_type),
        escape(truncate(&facts.friendly_name, 64)),
        escape(truncate(&facts.manufacturer, 64)),
        escape(truncate(&facts.description, 128)),
        escape(truncate(&facts.model, 32)),
        escape(truncate(&facts.model_number, 32)),
        escape(truncate(&facts.serial, 64)),
    );
    for spec in services {
        let _ = writeln!(
            x,
            "<service><serviceType>{}</serviceType><serviceId>{}</serviceId><SCPDURL>{}</SCPDURL><controlURL>{}</controlURL><eventSubURL>{}</eventSubURL></service>",
            escape(spec.service_type(vendor_domain).as_str()),
            escape(spec.service_id(vendor_domain).as_str()),
            service_path(udn, spec, "scpd.xml"),
            service_path(udn, spec, "control"),
            if spec.is_evented() {
                service_path(udn, spec, "event")
            } else {
                String::new()
            },
        );
    }
    let _ = write!(
        x,
        "</serviceList>\n<presentationURL>/upnp/{udn}/</presentationURL>\n</device>\n</root>\n"
    );
    x
}

/// UDA's length limits are in characters; cut there rather than send an over-long field.
fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The presentation page: a read-only summary, no scripts.
pub fn presentation_page(state: &FaceState, device: Option<&VirtualDevice>) -> String {
    let mut rows = String::new();
    let mut row = |k: &str, v: &str| {
        let _ = write!(
            rows,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(v)
        );
    };
    let title = match device {
        Some(d) => {
            let record = d.record();
            row("Device id", &record.id);
            row("Protocol", &record.protocol);
            row("Address", &record.address);
            row("Profile", &record.profile);
            row("Manufacturer", &d.facts.manufacturer);
            row("Model", &d.facts.model);
            row("Serial number", &d.facts.serial);
            row("Lifecycle", record.lifecycle.as_str());
            row("Status", &d.device_status());
            row("UDN", &format!("uuid:{}", d.udn));
            d.facts.friendly_name.clone()
        }
        None => {
            row("Gateway id", &state.gateway.id);
            row("Devices", &state.devices.len().to_string());
            row("UDN", &format!("uuid:{}", state.gateway.udn));
            state.gateway.name.clone()
        }
    };
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1><table>{rows}</table><p>Managed by iotmc-gateway {}. Use a UPnP control point to manage it.</p></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        t = escape(title.as_str())
    )
}

/// A digest of every description and SCPD, for CONFIGID.UPNP.ORG.
pub fn digest(state: &FaceState) -> u64 {
    // FNV-1a: stable across builds and platforms (std's hasher is not).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |text: &str| {
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(&gateway_description(state, 0));
    for device in state.devices.values() {
        feed(&device_description(state, device, 0));
    }
    for spec in DEVICE_SERVICES.iter().chain(GATEWAY_SERVICES.iter()) {
        feed(&spec.scpd());
    }
    hash
}
