//! An embedded MQTT broker (rumqttd) on loopback, for the demo and the tests, so neither needs
//! an external service. It serves MQTT 3.1.1 and MQTT 5 on two ports (rumqttd serves one
//! protocol version per listener) sharing one router, so a Tasmota simulator on 3.1.1 and the
//! gateway on MQTT 5 see each other's messages.
//!
//! rumqttd cannot report the port it bound, so [`EmbeddedBroker::start`] asks the kernel for a
//! free loopback port, releases it and hands it to rumqttd. It then waits, with a deadline,
//! until both listeners accept connections. rumqttd has no shutdown: the broker's threads live
//! until the process exits.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Largest payload the embedded broker accepts (firmware chunks included).
const MAX_PAYLOAD: usize = 1024 * 1024;

/// How long [`EmbeddedBroker::start`] waits for the listeners.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A running embedded broker.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    v4: SocketAddr,
    v5: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts a broker on two free loopback ports and waits until both accept connections.
    pub fn start() -> io::Result<Self> {
        let v4 = free_port()?;
        let v5 = free_port()?;
        let config = Config {
            id: 0,
            router: RouterConfig {
                max_connections: 1000,
                max_outgoing_packet_count: 200,
                max_segment_size: 16 * 1024 * 1024,
                max_segment_count: 10,
                ..RouterConfig::default()
            },
            v4: Some(HashMap::from([("v4".to_owned(), server("v4", v4))])),
            v5: Some(HashMap::from([("v5".to_owned(), server("v5", v5))])),
            ..Config::default()
        };
        let mut broker = Broker::new(config);
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded MQTT broker stopped");
                }
            })?;
        for (addr, connect) in [(v4, &CONNECT_V311[..]), (v5, &CONNECT_V5[..])] {
            let mut waited = Duration::ZERO;
            while probe(addr, connect).is_err() {
                waited += Duration::from_millis(10);
                if waited > START_DEADLINE {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the embedded MQTT broker did not listen on {addr} within {START_DEADLINE:?}"
                        ),
                    ));
                }
                // Polling a listener that is starting on another thread; not synchronisation
                // between our own tasks.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(Self { v4, v5 })
    }

    /// Where MQTT 3.1.1 clients connect.
    pub fn v311_addr(&self) -> SocketAddr {
        self.v4
    }

    /// Where MQTT 5 clients connect.
    pub fn v5_addr(&self) -> SocketAddr {
        self.v5
    }
}

fn server(name: &str, listen: SocketAddr) -> ServerSettings {
    ServerSettings {
        name: name.to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: MAX_PAYLOAD,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

/// MQTT 3.1.1 CONNECT: protocol `MQTT` level 4, clean session, keep-alive 60 s, client id
/// `probe`.
const CONNECT_V311: [u8; 19] = [
    0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'p', b'r', b'o', b'b', b'e',
];
/// MQTT 5 CONNECT: level 5, clean start, keep-alive 60 s, no properties, client id `probe`.
const CONNECT_V5: [u8; 20] = [
    0x10, 18, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 5, b'p', b'r', b'o', b'b', b'e',
];

/// Connects as an MQTT client, waits for the CONNACK and disconnects cleanly: the listener is up
/// and speaks MQTT (a bare TCP probe would make rumqttd log a broken connect as an error).
fn probe(addr: SocketAddr, connect: &[u8]) -> io::Result<()> {
    use std::io::{Read as _, Write as _};
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(connect)?;
    let mut header = [0_u8; 2];
    stream.read_exact(&mut header)?;
    if header[0] != 0x20 {
        return Err(io::Error::other(format!(
            "expected a CONNACK from {addr}, got packet type 0x{:02x}",
            header[0]
        )));
    }
    let mut rest = vec![0_u8; usize::from(header[1])];
    stream.read_exact(&mut rest)?;
    stream.write_all(&[0xE0, 0x00])?;
    Ok(())
}

fn free_port() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.local_addr()
}
