//! The syslog sink: RFC 5424 messages ([`super::rfc5424`]) to one collector.
//!
//! - UDP (RFC 5426): one message per datagram, at most [`UDP_MAX`] bytes, from a socket
//!   connected to the collector (so that an ICMP "port unreachable" shows up as an error on a
//!   later send instead of the records vanishing unnoticed for ever).
//! - TCP (RFC 6587 octet counting): one kept connection. Before each batch the connection is
//!   checked for a close by the collector, and reopened; a failed write drops it, and the next
//!   batch reconnects. The collector's name is resolved at each connect.
//!
//! Syslog has no acknowledgements: a batch is taken as delivered when the kernel took it.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use super::rfc5424::{Rfc5424, UDP_MAX, octet_counted};
use crate::config::{SyslogExport, SyslogTransport};
use crate::diagnostics::record::LogRecord;

/// How long connecting or writing to the collector may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Why records could not be sent to a collector.
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    /// The collector's name did not resolve.
    #[error(
        "cannot resolve the syslog collector {collector}: {reason}; check its name in [diagnostics] syslog.collector and the gateway's DNS"
    )]
    Resolve {
        /// `host:port` as configured.
        collector: String,
        /// What the resolver said.
        reason: String,
    },
    /// No connection (TCP) or no socket (UDP) could be made.
    #[error(
        "cannot connect to the syslog collector {collector} ({addr}) over {transport}: {source}; check that it runs and accepts {transport} on that port, and the firewalls between"
    )]
    Connect {
        /// `host:port` as configured.
        collector: String,
        /// The address tried.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        transport: &'static str,
        /// What the OS said.
        source: io::Error,
    },
    /// Sending failed.
    #[error(
        "cannot send to the syslog collector {collector} ({addr}) over {transport}: {source}; check that it runs and listens on that port"
    )]
    Send {
        /// `host:port` as configured.
        collector: String,
        /// The address sent to.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        transport: &'static str,
        /// What the OS said.
        source: io::Error,
    },
}

#[derive(Debug)]
enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// Sends records to one syslog collector.
#[derive(Debug)]
pub struct SyslogSender {
    collector: String,
    transport: SyslogTransport,
    formatter: Rfc5424,
    connection: Option<(Connection, SocketAddr)>,
}

impl SyslogSender {
    /// A sender to `export.collector`, naming the gateway `hostname`. Nothing is opened before
    /// the first send.
    pub fn new(export: &SyslogExport, hostname: &str) -> Self {
        // `config check` refuses unknown facilities; local0 if one slipped through.
        let facility = export.facility_code().unwrap_or(16);
        Self {
            collector: export.collector.clone(),
            transport: export.transport,
            formatter: Rfc5424::new(facility, hostname),
            connection: None,
        }
    }

    fn transport_name(&self) -> &'static str {
        match self.transport {
            SyslogTransport::Udp => "udp",
            SyslogTransport::Tcp => "tcp",
        }
    }

    /// Sends `records` of `device`, in order. On an error the connection is dropped; the next
    /// call reconnects.
    pub async fn send<'r>(
        &mut self,
        device: &str,
        records: impl IntoIterator<Item = &'r LogRecord>,
    ) -> Result<(), SyslogError> {
        let result = self.try_send(device, records).await;
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    async fn try_send<'r>(
        &mut self,
        device: &str,
        records: impl IntoIterator<Item = &'r LogRecord>,
    ) -> Result<(), SyslogError> {
        self.drop_if_closed();
        if self.connection.is_none() {
            self.connection = Some(self.connect().await?);
        }
        let transport = self.transport_name();
        let Some((connection, addr)) = &mut self.connection else {
            return Ok(());
        };
        let addr = *addr;
        let send_error = |source| SyslogError::Send {
            collector: self.collector.clone(),
            addr,
            transport,
            source,
        };
        match connection {
            Connection::Udp(socket) => {
                for record in records {
                    let message = self.formatter.format(device, record, Some(UDP_MAX));
                    timed(socket.send(message.as_bytes()))
                        .await
                        .map_err(send_error)?;
                }
            }
            Connection::Tcp(stream) => {
                let mut frames = Vec::new();
                for record in records {
                    frames.extend(octet_counted(&self.formatter.format(device, record, None)));
                }
                timed(async {
                    stream.write_all(&frames).await?;
                    stream.flush().await
                })
                .await
                .map_err(send_error)?;
            }
        }
        Ok(())
    }

    /// Drops a TCP connection the collector closed (or reset) since the last batch, so the
    /// batch goes to a new one instead of into the void.
    fn drop_if_closed(&mut self) {
        let Some((Connection::Tcp(stream), addr)) = &self.connection else {
            return;
        };
        // Asked of the socket itself: tokio's readiness may not have seen the close yet.
        let socket = socket2::SockRef::from(stream);
        let mut buf = [MaybeUninit::<u8>::uninit(); 512];
        let closed = loop {
            match socket.recv(&mut buf) {
                // Collectors say nothing on this channel; whatever they said is discarded.
                Ok(n) if n > 0 => continue,
                Ok(_) => break true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        if closed {
            tracing::debug!(collector = %self.collector, %addr, "syslog collector closed the connection; reconnecting");
            self.connection = None;
        }
    }

    async fn connect(&self) -> Result<(Connection, SocketAddr), SyslogError> {
        let resolve_error = |reason: String| SyslogError::Resolve {
            collector: self.collector.clone(),
            reason,
        };
        let addr = timed(tokio::net::lookup_host(self.collector.as_str()))
            .await
            .map_err(|e| resolve_error(e.to_string()))?
            .next()
            .ok_or_else(|| resolve_error("no address".into()))?;
        let transport = self.transport_name();
        let connect_error = |source| SyslogError::Connect {
            collector: self.collector.clone(),
            addr,
            transport,
            source,
        };
        let connection = match self.transport {
            SyslogTransport::Udp => {
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(local).await.map_err(connect_error)?;
                socket.connect(addr).await.map_err(connect_error)?;
                Connection::Udp(socket)
            }
            SyslogTransport::Tcp => {
                let stream = timed(TcpStream::connect(addr))
                    .await
                    .map_err(connect_error)?;
                // Small batches should leave at once rather than wait for more.
                let _ = stream.set_nodelay(true);
                Connection::Tcp(stream)
            }
        };
        tracing::debug!(collector = %self.collector, %addr, transport, "syslog collector connected");
        Ok((connection, addr))
    }
}

/// `io` bounded by [`IO_TIMEOUT`].
async fn timed<T>(io: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(IO_TIMEOUT, io)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no progress within {}",
                    humantime::format_duration(IO_TIMEOUT)
                ),
            ))
        })
}
