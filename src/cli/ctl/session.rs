//! The connection to one gateway: settings from flags and environment, the SOAP client, the
//! gateway's root device, and devices named by id or UDN.

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use super::error::{CtlError, Subject};
use super::records::{InventoryDevice, parse_inventory};
use super::requests::{self, Call, parse_udn};
use crate::upnp::client::SoapClient;

/// The default vendor domain (`[gateway] vendor_domain`).
pub(super) const DEFAULT_VENDOR_DOMAIN: &str = "iotmc-gateway.local";

/// The connection flags, after the environment filled in what the command line left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    /// The gateway's base URL.
    pub(super) gateway: String,
    /// The CA to trust for the gateway's certificate.
    pub(super) ca: Option<PathBuf>,
    /// The operator certificate.
    pub(super) cert: Option<PathBuf>,
    /// Its key.
    pub(super) key: Option<PathBuf>,
    /// The gateway's root device, when given (by UDN, or by gateway id).
    pub(super) gateway_udn: Option<Uuid>,
    /// For the vendor service types.
    pub(super) vendor_domain: String,
    /// Per request.
    pub(super) timeout: Duration,
    /// Machine-readable output.
    pub(super) json: bool,
}

/// The connection flags as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Flags {
    pub(super) gateway: Option<String>,
    pub(super) ca: Option<PathBuf>,
    pub(super) cert: Option<PathBuf>,
    pub(super) key: Option<PathBuf>,
    pub(super) gateway_id: Option<String>,
    pub(super) gateway_udn: Option<String>,
    pub(super) vendor_domain: Option<String>,
    pub(super) timeout: Duration,
    pub(super) json: bool,
}

impl Settings {
    /// Fills `flags` from the environment (`env` looks a variable up), and checks them.
    pub(super) fn resolve(
        flags: Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CtlError> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let gateway = flags
            .gateway
            .or_else(|| var("IOTMC_CTL_GATEWAY"))
            .ok_or_else(|| {
                CtlError::usage(
                    "which gateway? give --gateway https://HOST:PORT (or set IOTMC_CTL_GATEWAY)",
                )
            })?;
        let ca = flags.ca.or_else(|| var("IOTMC_CTL_CA").map(PathBuf::from));
        let cert = flags
            .cert
            .or_else(|| var("IOTMC_CTL_CERT").map(PathBuf::from));
        let key = flags
            .key
            .or_else(|| var("IOTMC_CTL_KEY").map(PathBuf::from));
        match (&cert, &key) {
            (Some(_), None) => {
                return Err(CtlError::usage(
                    "--cert needs --key (or IOTMC_CTL_KEY): the operator certificate's private key",
                ));
            }
            (None, Some(_)) => {
                return Err(CtlError::usage(
                    "--key needs --cert (or IOTMC_CTL_CERT): the operator certificate",
                ));
            }
            _ => {}
        }
        let gateway_udn =
            match (flags.gateway_udn, flags.gateway_id) {
                (Some(udn), _) => Some(parse_udn(&udn).ok_or_else(|| {
                    CtlError::usage(format!("--gateway-udn `{udn}` is not a UUID"))
                })?),
                (None, Some(id)) => Some(crate::registry::gateway_udn(&id)),
                (None, None) => match (var("IOTMC_CTL_GATEWAY_UDN"), var("IOTMC_CTL_GATEWAY_ID")) {
                    (Some(udn), _) => Some(parse_udn(&udn).ok_or_else(|| {
                        CtlError::usage(format!("IOTMC_CTL_GATEWAY_UDN `{udn}` is not a UUID"))
                    })?),
                    (None, Some(id)) => Some(crate::registry::gateway_udn(&id)),
                    (None, None) => None,
                },
            };
        let vendor_domain = flags
            .vendor_domain
            .or_else(|| var("IOTMC_CTL_VENDOR_DOMAIN"))
            .unwrap_or_else(|| DEFAULT_VENDOR_DOMAIN.to_owned());
        Ok(Self {
            gateway,
            ca,
            cert,
            key,
            gateway_udn,
            vendor_domain,
            timeout: flags.timeout,
            json: flags.json,
        })
    }
}

/// A device a command is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    /// Its id, when known.
    pub(super) id: Option<String>,
    /// Its UDN.
    pub(super) udn: Uuid,
}

impl Target {
    /// `thermostat-1 (uuid:...)`, or the UDN alone.
    pub(super) fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("{id} (uuid:{})", self.udn),
            None => format!("uuid:{}", self.udn),
        }
    }
}

/// A connection to one gateway.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) settings: Settings,
    client: SoapClient,
}

impl Session {
    /// Reads the certificate files and checks the URL; nothing is sent yet.
    pub(super) fn open(settings: Settings) -> Result<Self, CtlError> {
        let client = SoapClient::from_pem_files(
            &settings.gateway,
            settings.ca.as_deref(),
            settings.cert.as_deref(),
            settings.key.as_deref(),
            settings.timeout,
        )
        .map_err(|e| {
            let flag = match &e {
                crate::upnp::client::ClientError::File { what, .. } => match *what {
                    "CA certificate" => " (--ca, IOTMC_CTL_CA)",
                    "client certificate" => " (--cert, IOTMC_CTL_CERT)",
                    "client key" => " (--key, IOTMC_CTL_KEY)",
                    _ => "",
                },
                _ => "",
            };
            CtlError::usage(format!("{e}{flag}"))
        })?;
        Ok(Self { settings, client })
    }

    /// Calls `call` on the gateway's root device.
    pub(super) async fn gateway(&self, call: &Call) -> Result<Vec<(String, String)>, CtlError> {
        self.gateway_call(call, Subject::Gateway).await
    }

    /// Calls `call`, an action about `device`, on the gateway's root device.
    pub(super) async fn gateway_about(
        &self,
        call: &Call,
        device: &Target,
    ) -> Result<Vec<(String, String)>, CtlError> {
        self.gateway_call(call, Subject::About(&device.label()))
            .await
    }

    async fn gateway_call(
        &self,
        call: &Call,
        subject: Subject<'_>,
    ) -> Result<Vec<(String, String)>, CtlError> {
        let udn = self.settings.gateway_udn.ok_or_else(|| {
            CtlError::usage(format!(
                "{} is an action of the gateway's own root device: give --gateway-id ID (the gateway's [gateway] id; IOTMC_CTL_GATEWAY_ID) or --gateway-udn UUID",
                call.action
            ))
        })?;
        self.send(udn, call)
            .await
            .map_err(|e| CtlError::action(&self.settings, call.action, subject, e))
    }

    /// Calls `call` on `device`.
    pub(super) async fn device(
        &self,
        device: &Target,
        call: &Call,
    ) -> Result<Vec<(String, String)>, CtlError> {
        self.send(device.udn, call).await.map_err(|e| {
            CtlError::action(
                &self.settings,
                call.action,
                Subject::Device(&device.label()),
                e,
            )
        })
    }

    async fn send(
        &self,
        udn: Uuid,
        call: &Call,
    ) -> Result<Vec<(String, String)>, crate::upnp::client::ClientError> {
        let control = format!("/upnp/{udn}/{}/control", call.spec.path);
        let service = call.spec.service_type(&self.settings.vendor_domain);
        let args: Vec<(&str, &str)> = call.args.iter().map(|(n, v)| (*n, v.as_str())).collect();
        self.client
            .call(&control, &service, call.action, &args)
            .await
    }

    /// The gateway's inventory.
    pub(super) async fn inventory(&self) -> Result<Vec<InventoryDevice>, CtlError> {
        let call = requests::inventory();
        let out = self.gateway(&call).await?;
        let xml = out_argument(&out, "Inventory").map_err(|why| {
            CtlError::plain("malformed", format!("GetInventory on the gateway: {why}"))
        })?;
        parse_inventory(xml).map_err(|why| {
            CtlError::plain(
                "malformed",
                format!("GetInventory on the gateway: the Inventory cannot be read: {why}"),
            )
        })
    }

    /// The device `name` (a device id, or a UDN with or without `uuid:`); ids are looked up in
    /// the inventory.
    pub(super) async fn resolve(&self, name: &str) -> Result<Target, CtlError> {
        if let Some(udn) = parse_udn(name) {
            return Ok(Target { id: None, udn });
        }
        let devices = self.inventory().await?;
        find(&devices, name)
    }
}

/// The device called `name` in `devices`, or an error listing some known ids.
pub(super) fn find(devices: &[InventoryDevice], name: &str) -> Result<Target, CtlError> {
    let Some(device) = devices.iter().find(|d| d.is_named(name)) else {
        let mut known: Vec<&str> = devices.iter().map(|d| d.id.as_str()).take(20).collect();
        if devices.len() > known.len() {
            known.push("...");
        }
        return Err(CtlError::plain(
            "not-found",
            format!(
                "the gateway has no device `{name}`; {}",
                if known.is_empty() {
                    "it has no devices".to_owned()
                } else {
                    format!("its devices are {} (see `ctl devices`)", known.join(", "))
                }
            ),
        ));
    };
    let udn = parse_udn(&device.udn).ok_or_else(|| {
        CtlError::plain(
            "malformed",
            format!(
                "the gateway lists device `{name}` with the UDN `{}`, which is not a UUID",
                device.udn.chars().take(64).collect::<String>()
            ),
        )
    })?;
    Ok(Target {
        id: Some(device.id.clone()),
        udn,
    })
}

/// The out argument `name`, or why it is missing.
pub(super) fn out_argument<'a>(out: &'a [(String, String)], name: &str) -> Result<&'a str, String> {
    out.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| format!("the reply has no {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags {
            timeout: Duration::from_secs(30),
            ..Flags::default()
        }
    }

    #[test]
    fn flags_should_win_over_the_environment_which_fills_the_rest() {
        let env = |name: &str| match name {
            "IOTMC_CTL_GATEWAY" => Some("https://env:1".to_owned()),
            "IOTMC_CTL_CA" => Some("/env/ca.pem".to_owned()),
            "IOTMC_CTL_CERT" => Some("/env/op.pem".to_owned()),
            "IOTMC_CTL_KEY" => Some("/env/op.key".to_owned()),
            "IOTMC_CTL_GATEWAY_ID" => Some("plant-1".to_owned()),
            _ => None,
        };
        let settings = Settings::resolve(
            Flags {
                gateway: Some("https://flag:2".into()),
                ..flags()
            },
            env,
        )
        .unwrap();
        assert_eq!(settings.gateway, "https://flag:2");
        assert_eq!(settings.ca, Some(PathBuf::from("/env/ca.pem")));
        assert_eq!(settings.cert, Some(PathBuf::from("/env/op.pem")));
        assert_eq!(
            settings.gateway_udn,
            Some(crate::registry::gateway_udn("plant-1"))
        );
        assert_eq!(settings.vendor_domain, DEFAULT_VENDOR_DOMAIN);
    }

    #[test]
    fn a_gateway_udn_flag_should_win_over_a_gateway_id() {
        let udn = Uuid::from_u128(9);
        let settings = Settings::resolve(
            Flags {
                gateway: Some("https://g:1".into()),
                gateway_udn: Some(format!("uuid:{udn}")),
                gateway_id: Some("other".into()),
                ..flags()
            },
            |_| None,
        )
        .unwrap();
        assert_eq!(settings.gateway_udn, Some(udn));
    }

    #[test]
    fn missing_or_half_given_settings_should_say_what_to_add() {
        let none = |_: &str| None;
        let err = Settings::resolve(flags(), none).unwrap_err();
        assert!(err.message.contains("--gateway https://HOST:PORT"), "{err}");
        let err = Settings::resolve(
            Flags {
                gateway: Some("https://g:1".into()),
                cert: Some("op.pem".into()),
                ..flags()
            },
            none,
        )
        .unwrap_err();
        assert!(err.message.contains("--cert needs --key"), "{err}");
        let err = Settings::resolve(
            Flags {
                gateway: Some("https://g:1".into()),
                gateway_udn: Some("nope".into()),
                ..flags()
            },
            none,
        )
        .unwrap_err();
        assert!(err.message.contains("not a UUID"), "{err}");
    }

    #[test]
    fn a_device_id_should_resolve_through_the_inventory_and_an_unknown_one_list_the_known() {
        let udn = Uuid::from_u128(3);
        let devices = vec![InventoryDevice {
            id: "relay-1".into(),
            udn: format!("uuid:{udn}"),
            ..InventoryDevice::default()
        }];
        assert_eq!(
            find(&devices, "relay-1").unwrap(),
            Target {
                id: Some("relay-1".into()),
                udn
            }
        );
        let err = find(&devices, "relay-9").unwrap_err();
        assert_eq!(err.kind, "not-found");
        assert!(err.message.contains("no device `relay-9`") && err.message.contains("relay-1"));
        let broken = vec![InventoryDevice {
            id: "x".into(),
            udn: "uuid:zzz".into(),
            ..InventoryDevice::default()
        }];
        assert_eq!(find(&broken, "x").unwrap_err().kind, "malformed");
    }
}
