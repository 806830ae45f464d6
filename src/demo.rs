//! `iotmc-gateway demo`: the gateway with simulated devices of every built protocol, on
//! loopback, with state in a temporary directory.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::time::Instant;

use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::Value;
use iotmc_adapter::testkit::memory::{Fault, MemoryAdapter};

use crate::adapters::{AdapterSet, KNOWN_PROTOCOLS};
use crate::config::Config;
use crate::daemon::Gateway;
use crate::registry::gateway_udn;
use crate::upnp::UpnpFace;
use crate::upnp::tls::{DemoPki, generate_demo_pki};

mod firmware;
#[cfg(feature = "modbus")]
mod modbus;
#[cfg(feature = "mqtt")]
mod mqtt;

/// Gateway id the demo runs as.
pub const DEMO_GATEWAY_ID: &str = "demo";

/// The in-memory simulated devices the demo always serves (protocol simulators join them as
/// their adapters land): `(id, name, profile file name, profile text)`.
const SIMULATED: [(&str, &str, &str, &str); 2] = [
    (
        "thermostat-1",
        "Demo thermostat (simulated)",
        "demo-thermostat.toml",
        include_str!("demo/thermostat.toml"),
    ),
    (
        "relay-1",
        "Demo relay (simulated)",
        "demo-relay.toml",
        include_str!("demo/relay.toml"),
    ),
];

/// A simulated device the demo's config lists.
#[derive(Debug, Clone)]
pub struct ConfiguredDevice {
    /// Device id.
    pub id: String,
    /// Friendly name.
    pub name: String,
    /// Profile id.
    pub profile: String,
    /// Address in its adapter's syntax.
    pub address: String,
}

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Keep state here instead of in a removed temporary directory.
    pub state_dir: Option<PathBuf>,
    /// How often the simulated thermostat's temperature drifts.
    pub change_every: Duration,
    /// An external MQTT broker (`host:port`) for the simulated MQTT devices, instead of the
    /// embedded one.
    pub mqtt_broker: Option<String>,
}

/// The demo's config: loopback listeners on free ports, the repository's profiles plus the
/// simulated devices' profiles in `state_dir/demo-profiles`, the demo PKI, and the simulated
/// devices.
pub fn demo_config(
    state_dir: &Path,
    profile_dirs: &[PathBuf],
    pki: Option<&DemoPki>,
    firmware_keys: Option<&Path>,
    protocol_devices: &[ConfiguredDevice],
    protocol_tables: &str,
) -> anyhow::Result<Config> {
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let profile_dirs = profile_dirs
        .iter()
        .map(|d| quote(d))
        .chain(std::iter::once(quote(&state_dir.join("demo-profiles"))))
        .collect::<Vec<_>>()
        .join(", ");
    let mut trust = pki
        .map(|pki| {
            format!(
                "gateway_certificate = {}\ngateway_key = {}\noperator_ca = {}\n",
                quote(&pki.server_certificate),
                quote(&pki.server_key),
                quote(&pki.ca)
            )
        })
        .unwrap_or_default();
    if let Some(keys) = firmware_keys {
        trust.push_str(&format!("firmware_keys = {}\n", quote(keys)));
    }
    // With HTTPS the demo's devices enroll: each gets an identity certificate from a lab
    // issuing CA and waits in PendingApproval for `iotmc-gateway ctl approve`.
    let enrollment = if pki.is_some() {
        "[enrollment]\nlab_pki = true\n\n[[groups]]\nname = \"demo\"\napproval = \"manual\"\n"
    } else {
        "[[groups]]\nname = \"demo\"\n"
    };
    let memory = SIMULATED
        .iter()
        .map(|(id, name, file, _)| ConfiguredDevice {
            id: (*id).to_owned(),
            name: (*name).to_owned(),
            profile: file.trim_end_matches(".toml").to_owned(),
            address: format!("memory:{id}"),
        });
    let devices: String = memory
        .chain(protocol_devices.iter().cloned())
        .map(|d| {
            format!(
                "[[devices]]\nid = {}\nname = {}\nprofile = {}\naddress = {}\ngroup = \"demo\"\n\n",
                toml::Value::String(d.id),
                toml::Value::String(d.name),
                toml::Value::String(d.profile),
                toml::Value::String(d.address)
            )
        })
        .collect();
    let state_dir = quote(state_dir);

    let text = format!(
        r#"
[gateway]
id = "{DEMO_GATEWAY_ID}"
name = "iotmc-gateway demo"
state_dir = {state_dir}
profile_dirs = [{profile_dirs}]
shutdown_grace = "5s"

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"

[trust]
{trust}
[firmware]
scan_interval = "1s"

{enrollment}
{devices}
{protocol_tables}"#
    );
    Config::from_toml(Path::new("<demo>"), &text).map_err(|errors| {
        anyhow::anyhow!(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// Runs the demo until `shutdown` completes. Writes one line per served device to `out`.
pub async fn run(
    options: DemoOptions,
    adapters: AdapterSet,
    out: &mut (dyn std::io::Write + Send),
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let temporary = match &options.state_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("iotmc-demo-")
                .tempdir()
                .context("cannot create a temporary state directory")?,
        ),
    };
    let state_path = options.state_dir.clone().unwrap_or_else(|| {
        temporary
            .as_ref()
            .map(|t| t.path().to_owned())
            .unwrap_or_default()
    });
    let profiles = state_path.join("demo-profiles");
    std::fs::create_dir_all(&profiles)
        .with_context(|| format!("cannot create {}", profiles.display()))?;
    for (_, _, file, text) in SIMULATED {
        std::fs::write(profiles.join(file), text)
            .with_context(|| format!("cannot write {}", profiles.join(file).display()))?;
    }
    let pki = generate_demo_pki(&state_path.join("demo-pki"))?;
    let repository_profiles = profile_dirs();
    #[cfg(feature = "modbus")]
    let modbus = modbus::start().await?;
    #[allow(unused_mut)]
    let mut protocol_devices: Vec<ConfiguredDevice> = Vec::new();
    #[allow(unused_mut)]
    let mut protocol_tables = String::new();
    #[cfg(feature = "modbus")]
    {
        for (file, text) in modbus::PROFILES {
            // An installed binary may run without the repository's profiles beside it.
            if !repository_profiles
                .iter()
                .any(|dir| dir.join("modbus").join(file).is_file())
            {
                std::fs::write(profiles.join(file), text)
                    .with_context(|| format!("cannot write {}", profiles.join(file).display()))?;
            }
        }
        protocol_devices.extend(modbus.devices.iter().map(|d| ConfiguredDevice {
            id: d.id.to_owned(),
            name: d.name.to_owned(),
            profile: d.profile.clone(),
            address: d.address.clone(),
        }));
    }
    #[cfg(feature = "mqtt")]
    let mqtt = mqtt::start(options.mqtt_broker.as_deref()).await?;
    #[cfg(feature = "mqtt")]
    let adapters = {
        for (file, text) in mqtt::PROFILES {
            if !repository_profiles
                .iter()
                .any(|dir| dir.join("mqtt").join(file).is_file())
            {
                std::fs::write(profiles.join(file), text)
                    .with_context(|| format!("cannot write {}", profiles.join(file).display()))?;
            }
        }
        protocol_devices.extend(mqtt.devices.iter().cloned());
        protocol_tables.push_str(&mqtt.config_table());
        adapters.with(Arc::new(iotmc_adapter_mqtt::MqttAdapter::new(vec![
            mqtt.broker_settings(),
        ])))
    };
    #[cfg(not(feature = "mqtt"))]
    if options.mqtt_broker.is_some() {
        anyhow::bail!("--mqtt-broker: the mqtt adapter is not built into this binary");
    }
    let firmware_keys = firmware::prepare(&state_path)?;
    let config = demo_config(
        &state_path,
        &repository_profiles,
        Some(&pki),
        Some(&firmware_keys),
        &protocol_devices,
        &protocol_tables,
    )?;
    let grace = config.gateway.shutdown_grace;
    let memory = Arc::new(MemoryAdapter::new(Fault::None));
    let adapters = adapters.with(Arc::clone(&memory) as Arc<dyn iotmc_adapter::Adapter>);
    let gateway = Gateway::start(config, adapters.clone())
        .await
        .context("the demo gateway could not start")?;
    let face = match UpnpFace::start(&gateway).await {
        Ok(face) => face,
        Err(e) => {
            gateway.stop().await;
            return Err(anyhow::Error::new(e).context("the demo's UPnP face could not start"));
        }
    };

    writeln!(
        out,
        "iotmc-gateway {} demo: state in {}{}",
        env!("CARGO_PKG_VERSION"),
        state_path.display(),
        if temporary.is_some() {
            " (removed on exit)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "{:<28} {:<8} DESCRIPTION URL",
        "FRIENDLY NAME", "PROTOCOL"
    )?;
    writeln!(
        out,
        "{:<28} {:<8} {}",
        gateway.config().gateway.name,
        "-",
        face.description_url(gateway_udn(DEMO_GATEWAY_ID))
    )?;
    for device in gateway.devices() {
        // The name the face describes it with, in config order.
        let name = face.state().devices.get(&device.record.udn).map_or_else(
            || device.record.id.clone(),
            |d| d.facts.friendly_name.clone(),
        );
        writeln!(
            out,
            "{name:<28} {:<8} {}",
            device.record.protocol,
            face.description_url(device.record.udn)
        )?;
    }
    let missing: Vec<_> = KNOWN_PROTOCOLS
        .iter()
        .filter(|p| adapters.get(p).is_none())
        .copied()
        .collect();
    if !missing.is_empty() {
        writeln!(
            out,
            "No simulated devices for: {} (their adapters are not built into this binary yet).",
            missing.join(", ")
        )?;
    }
    #[cfg(feature = "modbus")]
    {
        writeln!(
            out,
            "Modbus TCP simulator on {} (unit 1: demo controller){}",
            modbus.tcp_addr(),
            modbus
                .rtu_port()
                .map(|p| format!("; Modbus RTU simulator on {p} (unit 5: energy meter)"))
                .unwrap_or_default()
        )?;
    }
    #[cfg(feature = "mqtt")]
    {
        writeln!(
            out,
            "MQTT broker on {}{} (Tasmota topic tasmota_demo_plug, Homie device thermostat-demo, MQTT 5 device ahu-5)",
            mqtt.broker_v5,
            if mqtt.embedded {
                format!(" (embedded; MQTT 3.1.1 clients on {})", mqtt.broker_v311)
            } else {
                String::new()
            }
        )?;
    }
    match face.ssdp_addr() {
        Some(addr) => writeln!(
            out,
            "SSDP on {addr} (interface lo): discover with `upnp-client search`"
        )?,
        None => writeln!(
            out,
            "SSDP is not running (see the log); use the description URLs above"
        )?,
    }
    if let (Some(https), Some(thermostat)) = (
        face.https_addr(),
        gateway
            .devices()
            .iter()
            .find(|d| d.record.id == SIMULATED[0].0),
    ) {
        writeln!(
            out,
            "HTTPS on {https}; operator certificate {} key {} CA {}",
            pki.operator_certificate.display(),
            pki.operator_key.display(),
            pki.ca.display()
        )?;
        writeln!(
            out,
            "Set the thermostat (state-changing actions need the operator certificate):\n  curl --cacert {ca} --cert {cert} --key {key} -H 'Content-Type: text/xml; charset=\"utf-8\"' -H 'SOAPACTION: \"urn:schemas-upnp-org:service:ConfigurationManagement:2#SetValues\"' --data '{body}' https://{https}/upnp/{udn}/ConfigurationManagement/control",
            ca = pki.ca.display(),
            cert = pki.operator_certificate.display(),
            key = pki.operator_key.display(),
            body = set_setpoint_envelope(22.5),
            udn = thermostat.record.udn,
        )?;
        writeln!(
            out,
            "Devices wait for approval; list and approve them with `iotmc-gateway ctl`:\n  export IOTMC_CTL_GATEWAY=https://{https} IOTMC_CTL_CA={ca} IOTMC_CTL_CERT={cert} IOTMC_CTL_KEY={key} IOTMC_CTL_GATEWAY_ID={DEMO_GATEWAY_ID}\n  iotmc-gateway ctl devices; iotmc-gateway ctl approve {id}",
            ca = pki.ca.display(),
            cert = pki.operator_certificate.display(),
            key = pki.operator_key.display(),
            id = thermostat.record.id,
        )?;
    }
    writeln!(
        out,
        "Demo ready in {:.2} s. Press Ctrl-C to stop.",
        started.elapsed().as_secs_f64()
    )?;
    out.flush()?;

    let drift = tokio::spawn(drift(Arc::clone(&memory), options.change_every));
    #[cfg(feature = "modbus")]
    let controller_drift = tokio::spawn(modbus::drift(
        modbus.controller.clone(),
        options.change_every,
    ));
    // The MQTT devices log a line of their own every 15 s (the first at once), so that their
    // logs hold records the gateway received while subscribed.
    let activity = async {
        #[cfg(feature = "mqtt")]
        {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            for step in 1.. {
                tick.tick().await;
                mqtt.log_activity(step);
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = shutdown => {}
        () = activity => {}
    }
    drift.abort();
    #[cfg(feature = "modbus")]
    controller_drift.abort();
    let stop_all = async {
        face.stop().await;
        gateway.stop().await;
    };
    if tokio::time::timeout(grace, stop_all).await.is_err() {
        tracing::warn!("demo devices did not stop within the grace period");
    }
    #[cfg(feature = "modbus")]
    drop(modbus);
    drop(temporary);
    writeln!(out, "Demo stopped.")?;
    out.flush()?;
    Ok(())
}

/// A SetValues envelope that sets the thermostat's setpoint.
pub fn set_setpoint_envelope(setpoint: f64) -> String {
    let list = format!(
        "<cms:ParameterValueList xmlns:cms=\"urn:schemas-upnp-org:dm:cms\"><Parameter><ParameterPath>/IoTMC/Parameters/setpoint</ParameterPath><Value>{setpoint}</Value></Parameter></cms:ParameterValueList>"
    );
    let escaped = quick_xml::escape::escape(list.as_str()).into_owned();
    format!(
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:SetValues xmlns:u=\"urn:schemas-upnp-org:service:ConfigurationManagement:2\"><ParameterValueList>{escaped}</ParameterValueList></u:SetValues></s:Body></s:Envelope>"
    )
}

/// The simulated thermostat's measured temperature drifts between 19 and 23 °C, one step of
/// 0.1 °C per `every`: a device-side change the face events to subscribers.
async fn drift(memory: Arc<MemoryAdapter>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.tick().await;
    let mut step = 0u32;
    loop {
        tick.tick().await;
        let Some(device) = memory.device(&format!("memory:{}", SIMULATED[0].0)) else {
            continue;
        };
        step = step.wrapping_add(1);
        // A triangle wave: 20.0 → 23.0 → 19.0 → 20.0 ...
        let phase = f64::from(step % 80);
        let tenths = if phase < 30.0 {
            phase
        } else if phase < 70.0 {
            60.0 - phase
        } else {
            phase - 80.0
        };
        let temperature = 20.0 + tenths / 10.0;
        let temperature = (temperature * 10.0).round() / 10.0;
        device.change_locally(
            [("temperature".to_owned(), Value::Float(temperature))]
                .into_iter()
                .collect(),
        );
    }
}

/// The profiles the demo serves: the repository's `device-profiles/` when run from a checkout
/// (`cargo run`), else the installed copy, if there is one.
fn profile_dirs() -> Vec<PathBuf> {
    [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles"),
        PathBuf::from("/usr/share/iotmc-gateway/device-profiles"),
    ]
    .into_iter()
    .find(|dir| dir.is_dir())
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_should_keep_paths_with_quotes_backslashes_and_accents() {
        let state = Path::new("/tmp/with \"quotes\" and \\backslash\\ and e\u{301}");
        let profiles = PathBuf::from("/srv/profil\u{e9}s");
        let config =
            demo_config(state, std::slice::from_ref(&profiles), None, None, &[], "").unwrap();
        assert_eq!(config.gateway.state_dir, state);
        assert_eq!(config.gateway.profile_dirs[0], profiles);
        assert_eq!(config.gateway.profile_dirs[1], state.join("demo-profiles"));
        assert_eq!(config.devices.len(), SIMULATED.len());
    }
}
