//! Device addresses as the gateway config writes them.
//!
//! - Modbus TCP: `tcp://<host>:<port>?unit=<id>`. Port defaults to 502, unit id to 1 (0–255;
//!   a Modbus TCP gateway forwards it as the RTU address behind it). IPv6 in brackets.
//! - Modbus RTU: `rtu://<port path>?baud=<rate>&parity=<none|even|odd>&data_bits=<7|8>&stop_bits=<1|2>&unit=<id>`,
//!   e.g. `rtu:///dev/ttyUSB0?baud=9600&parity=none&unit=5`. `unit` is required (1–247);
//!   the line settings default to the specification's 19200 baud, even parity, 8 data bits,
//!   1 stop bit. Every device on one port must give the same line settings.

use std::fmt;
use std::str::FromStr;

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

impl Parity {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Even => "even",
            Self::Odd => "odd",
        }
    }
}

/// The line settings of an RS-485 / RS-232 bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineSettings {
    /// Bits per second.
    pub baud: u32,
    /// Parity.
    pub parity: Parity,
    /// Data bits, 7 or 8 (RTU needs 8; 7 is accepted for odd devices).
    pub data_bits: u8,
    /// Stop bits, 1 or 2.
    pub stop_bits: u8,
}

impl LineSettings {
    /// Bits on the wire per character: start, data, parity, stop.
    pub fn bits_per_char(&self) -> u32 {
        1 + u32::from(self.data_bits)
            + u32::from(self.parity != Parity::None)
            + u32::from(self.stop_bits)
    }
}

impl Default for LineSettings {
    fn default() -> Self {
        Self {
            baud: 19_200,
            parity: Parity::Even,
            data_bits: 8,
            stop_bits: 1,
        }
    }
}

impl fmt::Display for LineSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "baud={}&parity={}&data_bits={}&stop_bits={}",
            self.baud,
            self.parity.as_str(),
            self.data_bits,
            self.stop_bits
        )
    }
}

/// The bus a device is on: devices with the same bus share one driver task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BusKey {
    /// A TCP server (`host:port`).
    Tcp(String),
    /// A serial port path.
    Serial(String),
}

impl fmt::Display for BusKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(endpoint) => write!(f, "tcp://{endpoint}"),
            Self::Serial(path) => write!(f, "rtu://{path}"),
        }
    }
}

/// Where one Modbus device is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// Modbus TCP.
    Tcp {
        /// Host name or IP literal (without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// Unit id.
        unit: u8,
    },
    /// Modbus RTU on a serial port.
    Rtu {
        /// Port path, e.g. `/dev/ttyUSB0`.
        port: String,
        /// Line settings.
        line: LineSettings,
        /// Server address, 1–247.
        unit: u8,
    },
}

impl Address {
    /// The unit id / server address.
    pub fn unit(&self) -> u8 {
        match self {
            Self::Tcp { unit, .. } | Self::Rtu { unit, .. } => *unit,
        }
    }

    /// The bus the device is on.
    pub fn bus(&self) -> BusKey {
        match self {
            Self::Tcp { host, port, .. } if host.contains(':') => {
                BusKey::Tcp(format!("[{host}]:{port}"))
            }
            Self::Tcp { host, port, .. } => BusKey::Tcp(format!("{host}:{port}")),
            Self::Rtu { port, .. } => BusKey::Serial(port.clone()),
        }
    }
}

const EXPECTED: &str = "expected `tcp://<host>:<port>?unit=<0-255>` or `rtu://<serial port>?baud=<rate>&parity=<none|even|odd>&unit=<1-247>`, e.g. `rtu:///dev/ttyUSB0?baud=9600&parity=none&unit=5`";

impl FromStr for Address {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = text.strip_prefix("tcp://") {
            parse_tcp(rest)
        } else if let Some(rest) = text.strip_prefix("rtu://") {
            parse_rtu(rest)
        } else {
            Err(EXPECTED.to_owned())
        }
    }
}

/// `key=value` pairs of an address, in order.
type Query<'a> = Vec<(&'a str, &'a str)>;

fn split_query(rest: &str) -> Result<(&str, Query<'_>), String> {
    let (head, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not `key=value`; {EXPECTED}"))?;
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(format!("`{key}` is given twice"));
        }
        pairs.push((key, value));
    }
    Ok((head, pairs))
}

fn number<T: FromStr>(key: &str, value: &str, range: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("`{key}={value}` is not a number in {range}"))
}

fn parse_tcp(rest: &str) -> Result<Address, String> {
    let (authority, query) = split_query(rest)?;
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("unclosed `[` in `{authority}`"))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| format!("expected `:<port>` after `]`, got `{after}`"))?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(format!(
            "`{host}` is not a host name or IP address; {EXPECTED}"
        ));
    }
    let port = match port {
        Some(port) => {
            let port: u16 = number("port", port, "1-65535")?;
            if port == 0 {
                return Err("port 0 is not a TCP port; Modbus TCP uses 502".to_owned());
            }
            port
        }
        None => 502,
    };
    let mut unit = 1;
    for (key, value) in query {
        match key {
            "unit" => unit = number("unit", value, "0-255")?,
            other => {
                return Err(format!(
                    "unknown setting `{other}` for a Modbus TCP address; only `unit` is known"
                ));
            }
        }
    }
    Ok(Address::Tcp {
        host: host.to_owned(),
        port,
        unit,
    })
}

fn parse_rtu(rest: &str) -> Result<Address, String> {
    let (port, query) = split_query(rest)?;
    if !port.starts_with('/') || port.len() < 2 {
        return Err(format!(
            "`{port}` is not a serial port path such as /dev/ttyUSB0 or /dev/serial/by-id/...; {EXPECTED}"
        ));
    }
    let mut line = LineSettings::default();
    let mut unit = None;
    for (key, value) in query {
        match key {
            "baud" => {
                line.baud = number("baud", value, "300-4000000")?;
                if !(300..=4_000_000).contains(&line.baud) {
                    return Err(format!("baud {} is outside 300-4000000", line.baud));
                }
            }
            "parity" => {
                line.parity = match value {
                    "none" => Parity::None,
                    "even" => Parity::Even,
                    "odd" => Parity::Odd,
                    other => {
                        return Err(format!("parity `{other}` is not one of none, even, odd"));
                    }
                }
            }
            "data_bits" => {
                line.data_bits = match value {
                    "7" => 7,
                    "8" => 8,
                    other => return Err(format!("data_bits `{other}` is not 7 or 8")),
                }
            }
            "stop_bits" => {
                line.stop_bits = match value {
                    "1" => 1,
                    "2" => 2,
                    other => return Err(format!("stop_bits `{other}` is not 1 or 2")),
                }
            }
            "unit" => {
                let id: u8 = number("unit", value, "1-247")?;
                if !(1..=247).contains(&id) {
                    return Err(format!(
                        "unit {id} is not a Modbus RTU server address; expected 1-247 (0 is broadcast)"
                    ));
                }
                unit = Some(id);
            }
            other => {
                return Err(format!(
                    "unknown setting `{other}` for a Modbus RTU address; known: baud, parity, data_bits, stop_bits, unit"
                ));
            }
        }
    }
    let unit = unit.ok_or_else(|| {
        format!(
            "a Modbus RTU address needs `unit=<1-247>`, the device's server address; {EXPECTED}"
        )
    })?;
    Ok(Address::Rtu {
        port: port.to_owned(),
        line,
        unit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Address, String> {
        text.parse()
    }

    #[test]
    fn tcp_address_should_default_port_and_unit() {
        assert_eq!(
            parse("tcp://192.0.2.10"),
            Ok(Address::Tcp {
                host: "192.0.2.10".into(),
                port: 502,
                unit: 1
            })
        );
    }

    #[test]
    fn tcp_address_with_ipv6_should_keep_the_host_without_brackets() {
        let address = parse("tcp://[::1]:1502?unit=255").unwrap();
        assert_eq!(
            address,
            Address::Tcp {
                host: "::1".into(),
                port: 1502,
                unit: 255
            }
        );
        assert_eq!(address.bus(), BusKey::Tcp("[::1]:1502".into()));
    }

    #[test]
    fn rtu_address_should_read_every_line_setting() {
        let address =
            parse("rtu:///dev/ttyUSB0?baud=9600&parity=none&data_bits=8&stop_bits=2&unit=5")
                .unwrap();
        assert_eq!(
            address,
            Address::Rtu {
                port: "/dev/ttyUSB0".into(),
                line: LineSettings {
                    baud: 9600,
                    parity: Parity::None,
                    data_bits: 8,
                    stop_bits: 2
                },
                unit: 5
            }
        );
        assert_eq!(address.bus(), BusKey::Serial("/dev/ttyUSB0".into()));
    }

    #[test]
    fn rtu_address_without_unit_should_say_unit_is_needed() {
        let err = parse("rtu:///dev/ttyUSB0?baud=9600").unwrap_err();
        assert!(err.contains("needs `unit=<1-247>`"), "{err}");
    }

    #[test]
    fn bad_addresses_should_say_what_is_wrong() {
        for (text, expected) in [
            ("modbus://x", "expected `tcp://"),
            ("tcp://host:0", "port 0"),
            ("tcp://host:99999", "not a number"),
            ("tcp://host?unit=300", "not a number in 0-255"),
            ("tcp://host?slave=1", "unknown setting `slave`"),
            ("rtu://ttyUSB0?unit=1", "not a serial port path"),
            ("rtu:///dev/ttyS0?unit=0", "0 is broadcast"),
            ("rtu:///dev/ttyS0?unit=1&parity=mark", "parity `mark`"),
            ("rtu:///dev/ttyS0?unit=1&unit=2", "given twice"),
            ("rtu:///dev/ttyS0?unit=1&baud=10", "outside"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
