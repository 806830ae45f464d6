//! Stand-ins for the world around the driver in its tests: devices that are plain rumqttc
//! clients (an MQTT 3.1.1 device, an MQTT 5 responder), a TCP proxy whose connections can be
//! cut, a stand-in broker for answers rumqttd cannot be made to give, and a TLS terminator.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::timeout;

use super::DEADLINE;

/// A device-side MQTT 3.1.1 client (rumqttc directly, not our driver): what it receives comes
/// out of the returned channel.
pub(crate) async fn v4_client(
    addr: SocketAddr,
    client_id: &str,
    filters: &[&str],
) -> (
    rumqttc::AsyncClient,
    mpsc::UnboundedReceiver<rumqttc::Publish>,
) {
    let options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", addr.port());
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, mut subscribed_rx) = mpsc::unbounded_channel();
    let expected = filters.len();
    for filter in filters {
        client
            .subscribe(*filter, rumqttc::QoS::AtLeastOnce)
            .await
            .expect("the test client's queue is open");
    }
    tokio::spawn(async move {
        let mut acks = 0;
        if expected == 0 {
            let _ = subscribed_tx.send(());
        }
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ = tx.send(p);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    acks += 1;
                    if acks == expected {
                        let _ = subscribed_tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    timeout(DEADLINE, subscribed_rx.recv())
        .await
        .expect("the MQTT 3.1.1 test client did not subscribe");
    (client, rx)
}

/// A device that answers every message on `dev/req/rpc` after `delay`, as MQTT 5
/// request/response says: on the response topic, echoing the correlation data.
pub(crate) async fn responder(
    addr: SocketAddr,
    client_id: &str,
    delay: Duration,
) -> tokio::task::JoinHandle<()> {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let options = MqttOptions::new(client_id, "127.0.0.1", addr.port());
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    client
        .subscribe("dev/req/rpc", QoS::AtLeastOnce)
        .await
        .expect("the responder's queue is open");
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Some(props) = p.properties else { continue };
                    let Some(topic) = props.response_topic else {
                        continue;
                    };
                    let answer = PublishProperties {
                        correlation_data: props.correlation_data,
                        ..PublishProperties::default()
                    };
                    let mut payload = b"pong:".to_vec();
                    payload.extend_from_slice(&p.payload);
                    let client = client.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = client
                            .publish_with_properties(
                                topic,
                                QoS::AtLeastOnce,
                                false,
                                payload,
                                answer,
                            )
                            .await;
                    });
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    timeout(DEADLINE, ready.recv())
        .await
        .expect("the responder did not subscribe");
    task
}

/// A loopback address nothing listens on.
pub(crate) fn unused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback port");
    listener.local_addr().expect("bound address")
}

/// A TCP proxy on loopback between a handle and the broker, whose connections can be cut.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let addr = listener.local_addr().expect("bound address");
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { addr, cut }
    }

    /// Closes every connection through the proxy (new ones are accepted).
    pub(crate) fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// A stand-in MQTT 3.1.1 broker that answers CONNECT with `connack`, refuses subscriptions to
/// filters under `forbidden/`, grants the others and acknowledges publishes. For what rumqttd
/// cannot be made to do.
pub(crate) async fn fake_broker(connack: rumqttc::ConnectReturnCode) -> SocketAddr {
    use bytes::BytesMut;
    use rumqttc::mqttbytes::v4::{ConnAck, Packet, PingResp, PubAck, SubAck, SubscribeReasonCode};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut input = BytesMut::new();
                loop {
                    let packet = match Packet::read(&mut input, 1 << 20) {
                        Ok(packet) => packet,
                        Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {
                            if stream.read_buf(&mut input).await.unwrap_or(0) == 0 {
                                return;
                            }
                            continue;
                        }
                        Err(_) => return,
                    };
                    let mut out = BytesMut::new();
                    let written = match packet {
                        Packet::Connect(_) => ConnAck::new(connack, false).write(&mut out),
                        Packet::Subscribe(s) => SubAck::new(
                            s.pkid,
                            s.filters
                                .iter()
                                .map(|f| {
                                    if f.path.starts_with("forbidden/") {
                                        SubscribeReasonCode::Failure
                                    } else {
                                        SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce)
                                    }
                                })
                                .collect(),
                        )
                        .write(&mut out),
                        Packet::Publish(p) if p.pkid != 0 => PubAck::new(p.pkid).write(&mut out),
                        Packet::PingReq => PingResp.write(&mut out),
                        _ => Ok(0),
                    };
                    if written.is_err() || stream.write_all(&out).await.is_err() {
                        return;
                    }
                    if connack != rumqttc::ConnectReturnCode::Success {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A TLS terminator on loopback in front of the broker's plain MQTT 5 port, with a server
/// certificate for 127.0.0.1 signed by a fresh CA. Returns its address and the CA's PEM.
pub(crate) async fn tls_front(upstream: SocketAddr) -> (SocketAddr, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rumqttc::tokio_rustls::TlsAcceptor;
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("CA key");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &Issuer::from_params(&ca_params, &ca_key))
        .expect("server certificate");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![server.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    )
    .expect("server TLS config");
    let acceptor = TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(inbound).await else {
                    return;
                };
                let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
            });
        }
    });
    (addr, ca.pem())
}
