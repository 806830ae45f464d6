//! Why a broker connection failed or dropped, in words an operator can act on: rumqttc's
//! connection errors of both protocol versions, mapped to the reasons `ConnectionState::Down`
//! carries (connection refused, bad user name or password, not authorised, TLS handshake
//! failed, the broker closed the connection, keep-alive timeout, packet too large...).

use rumqttc::v5::mqttbytes::v5 as p5;

/// Seconds rumqttc allows for TCP, TLS and CONNACK together.
pub(super) const CONNECT_TIMEOUT_SECS: u64 = 10;

/// Why an I/O error ended or prevented a connection, in words.
fn io_reason(e: &std::io::Error, endpoint: &str) -> String {
    use std::io::ErrorKind as K;
    // With TLS 1.3 the broker judges the client certificate after the handshake, so its alert
    // arrives on the first read, as an I/O error wrapping the rustls error.
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return tls_alert_reason(tls);
    }
    match e.kind() {
        K::ConnectionRefused => format!("connection refused by {endpoint}"),
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => {
            "the broker closed the connection".to_owned()
        }
        K::TimedOut => format!("{endpoint} did not answer in time"),
        _ => format!("{endpoint}: {e}"),
    }
}

/// A TLS failure in words, with what to change for the alerts about the client certificate.
fn tls_alert_reason(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            "TLS: the broker requires a client certificate; set tls.certificate and tls.key"
                .to_owned()
        }
        rustls::Error::AlertReceived(
            alert @ (A::UnknownCA
            | A::BadCertificate
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::AccessDenied),
        ) => format!(
            "TLS: the broker refused the gateway's client certificate (alert {alert:?}); it must be signed by a CA the broker trusts, valid, and not revoked"
        ),
        other => format!("TLS failed: {other}"),
    }
}

fn tls_reason(e: &rumqttc::TlsError) -> String {
    match e {
        rumqttc::TlsError::Io(io) => format!("TLS handshake failed: {io}"),
        other => format!("TLS handshake failed: {other}"),
    }
}

fn too_large(size: usize, max: usize) -> String {
    format!(
        "the broker sent a packet of {size} bytes, above this connection's max_packet_size of \
         {max} bytes; the connection was dropped (raise max_packet_size if the device needs it)"
    )
}

pub(super) fn v4(e: &rumqttc::ConnectionError, endpoint: &str, max: usize) -> String {
    use rumqttc::{ConnectReturnCode as C, ConnectionError as E, StateError as S};
    match e {
        E::ConnectionRefused(C::BadUserNamePassword) => "bad user name or password".to_owned(),
        E::ConnectionRefused(C::NotAuthorized) => "not authorised".to_owned(),
        E::ConnectionRefused(code) => format!("the broker refused the connection: {code:?}"),
        E::Io(io) => io_reason(io, endpoint),
        E::Tls(tls) => tls_reason(tls),
        E::NetworkTimeout => {
            format!("{endpoint} did not accept the connection within {CONNECT_TIMEOUT_SECS} s")
        }
        E::FlushTimeout => "writing to the broker timed out".to_owned(),
        E::MqttState(S::AwaitPingResp) => {
            "keep-alive timeout: the broker did not answer a ping".to_owned()
        }
        E::MqttState(S::ConnectionAborted) => "the broker closed the connection".to_owned(),
        E::MqttState(S::Io(io)) => io_reason(io, endpoint),
        E::MqttState(S::Deserialization(rumqttc::Error::PayloadSizeLimitExceeded(size))) => {
            too_large(*size, max)
        }
        E::MqttState(S::Deserialization(rumqttc::Error::Io(io))) => io_reason(io, endpoint),
        E::MqttState(other) => format!("protocol error: {other}"),
        E::NotConnAck(packet) => format!("the broker answered CONNECT with {packet:?}"),
        E::RequestsDone => "the driver stopped".to_owned(),
    }
}

pub(super) fn v5(e: &rumqttc::v5::ConnectionError, endpoint: &str, max: usize) -> String {
    use p5::ConnectReturnCode as C;
    use rumqttc::v5::mqttbytes::Error as B;
    use rumqttc::v5::{ConnectionError as E, StateError as S};
    let refused = |code: &C| match code {
        C::BadUserNamePassword => "bad user name or password".to_owned(),
        C::NotAuthorized => "not authorised".to_owned(),
        other => format!("the broker refused the connection: {other:?}"),
    };
    match e {
        E::ConnectionRefused(code) | E::MqttState(S::ConnFail { reason: code }) => refused(code),
        E::Io(io) => io_reason(io, endpoint),
        E::Tls(tls) => tls_reason(tls),
        E::Timeout(_) => {
            format!("{endpoint} did not accept the connection within {CONNECT_TIMEOUT_SECS} s")
        }
        E::MqttState(S::AwaitPingResp) => {
            "keep-alive timeout: the broker did not answer a ping".to_owned()
        }
        E::MqttState(S::ConnectionAborted) => "the broker closed the connection".to_owned(),
        E::MqttState(S::Io(io)) => io_reason(io, endpoint),
        E::MqttState(S::ServerDisconnect {
            reason_code,
            reason_string,
        }) => format!(
            "the broker closed the connection: {reason_code:?}{}",
            reason_string
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ),
        E::MqttState(S::IncomingPacketTooLarge { pkt_size, .. }) => too_large(*pkt_size, max),
        E::MqttState(S::Deserialization(B::PayloadSizeLimitExceeded { pkt_size, .. })) => {
            too_large(*pkt_size, max)
        }
        E::MqttState(S::Deserialization(B::Io(io))) => io_reason(io, endpoint),
        E::MqttState(other) => format!("protocol error: {other}"),
        E::NotConnAck(packet) => format!("the broker answered CONNECT with {packet:?}"),
        E::RequestsDone => "the driver stopped".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn a_client_certificate_refused_after_the_handshake_should_be_a_tls_reason() {
        use rumqttc::v5::mqttbytes::Error as B;
        use rumqttc::v5::{ConnectionError as E, StateError as S};
        let alert = |a| {
            E::MqttState(S::Deserialization(B::Io(io::Error::other(
                rustls::Error::AlertReceived(a),
            ))))
        };
        let unknown = v5(&alert(rustls::AlertDescription::UnknownCA), ENDPOINT, 1024);
        assert!(
            unknown.contains("refused the gateway's client certificate")
                && unknown.contains("UnknownCA"),
            "{unknown}"
        );
        let required = v5(
            &alert(rustls::AlertDescription::CertificateRequired),
            ENDPOINT,
            1024,
        );
        assert!(
            required.contains("requires a client certificate"),
            "{required}"
        );
        let reset = E::MqttState(S::Deserialization(B::Io(io::Error::from(
            io::ErrorKind::ConnectionReset,
        ))));
        assert_eq!(
            v5(&reset, ENDPOINT, 1024),
            "the broker closed the connection"
        );
        let v4_reset = rumqttc::ConnectionError::MqttState(rumqttc::StateError::Deserialization(
            rumqttc::Error::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
        ));
        assert_eq!(
            v4(&v4_reset, ENDPOINT, 1024),
            "the broker closed the connection"
        );
    }

    const ENDPOINT: &str = "broker.local:1883";

    fn v4_text(e: rumqttc::ConnectionError) -> String {
        v4(&e, ENDPOINT, 1024)
    }

    fn v5_text(e: rumqttc::v5::ConnectionError) -> String {
        v5(&e, ENDPOINT, 1024)
    }

    #[test]
    fn connection_failures_should_read_as_reasons() {
        use rumqttc::{ConnectReturnCode as C, ConnectionError as E, StateError as S};
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            v4_text(E::Io(refused)),
            "connection refused by broker.local:1883"
        );
        assert_eq!(
            v4_text(E::ConnectionRefused(C::BadUserNamePassword)),
            "bad user name or password"
        );
        assert_eq!(
            v4_text(E::ConnectionRefused(C::NotAuthorized)),
            "not authorised"
        );
        assert!(v4_text(E::MqttState(S::AwaitPingResp)).starts_with("keep-alive timeout"));
        assert_eq!(
            v4_text(E::MqttState(S::ConnectionAborted)),
            "the broker closed the connection"
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(
            v4_text(E::MqttState(S::Io(reset))),
            "the broker closed the connection"
        );
        let too_large = v4_text(E::MqttState(S::Deserialization(
            rumqttc::Error::PayloadSizeLimitExceeded(5000),
        )));
        assert!(
            too_large.contains("5000 bytes") && too_large.contains("max_packet_size of 1024"),
            "{too_large}"
        );
    }

    #[test]
    fn mqtt5_connection_failures_should_read_as_reasons() {
        use p5::{ConnectReturnCode as C, DisconnectReasonCode as D};
        use rumqttc::v5::{ConnectionError as E, StateError as S};
        assert_eq!(
            v5_text(E::ConnectionRefused(C::BadUserNamePassword)),
            "bad user name or password"
        );
        assert_eq!(
            v5_text(E::MqttState(S::ConnFail {
                reason: C::NotAuthorized
            })),
            "not authorised"
        );
        let disconnect = v5_text(E::MqttState(S::ServerDisconnect {
            reason_code: D::SessionTakenOver,
            reason_string: Some("another client with this id".into()),
        }));
        assert_eq!(
            disconnect,
            "the broker closed the connection: SessionTakenOver (another client with this id)"
        );
        let too_large = v5_text(E::MqttState(S::IncomingPacketTooLarge {
            pkt_size: 4109,
            max: 1024,
        }));
        assert!(too_large.contains("4109 bytes"), "{too_large}");
    }
}
