//! Modbus TCP and RTU servers in front of simulated devices.
//!
//! Both decode requests with [`crate::codec`], ask the addressed [`Unit`] for a [`Reply`] and
//! carry it out on the wire: an answer, a late answer, a corrupted one, or silence. A request
//! the codec cannot decode is answered with exception 0x01 (unknown function) or 0x03
//! (malformed data), as a device would.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::{Reply, Unit};
use crate::codec::rtu::{self, Direction, RtuDecoder};
use crate::codec::{CodecError, decode_request, encode_answer, tcp};
use crate::frame::{Answer, ExceptionCode};

/// Bytes read from a stream at a time.
const READ_CHUNK: usize = 512;
/// Pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What the unit `unit_id` replies to `pdu`, and the function code to answer under. `None`
/// when no unit has that id.
fn reply_of(units: &[Arc<dyn Unit>], unit_id: u8, pdu: &[u8]) -> Option<(u8, Reply)> {
    let unit = units.iter().find(|unit| unit.unit() == unit_id)?;
    let function_code = pdu.first().copied().unwrap_or_default();
    let reply = match decode_request(pdu) {
        Ok(request) => unit.reply(&request),
        Err(error) => {
            tracing::debug!(unit = unit_id, %error, "undecodable request");
            Reply::Answer(Err(exception_for(&error)))
        }
    };
    Some((function_code, reply))
}

/// The exception a device answers a request the codec refused with.
fn exception_for(error: &CodecError) -> ExceptionCode {
    match error {
        CodecError::UnsupportedFunction(_) => ExceptionCode::IllegalFunction,
        _ => ExceptionCode::IllegalDataValue,
    }
}

fn answer_pdu(function_code: u8, answer: &Answer) -> Vec<u8> {
    let mut pdu = Vec::new();
    encode_answer(function_code & 0x7F, answer, &mut pdu);
    pdu
}

/// A Modbus TCP server: any number of connections, each served in its own task, requests
/// dispatched by unit id. A unit id nobody answers to gets exception 0x0B (gateway target
/// failed to respond), as from a TCP gateway; a bad MBAP header closes the connection.
#[derive(Debug)]
pub struct TcpServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TcpServer {
    /// Binds `addr` (port 0 for any) and serves `units` there. Must be called within a Tokio
    /// runtime; returns an error otherwise.
    pub fn bind(addr: SocketAddr, units: Vec<Arc<dyn Unit>>) -> io::Result<TcpServer> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|error| io::Error::other(format!("no Tokio runtime: {error}")))?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let local_addr = listener.local_addr()?;
        let task = runtime.spawn(accept_loop(listener, units.into()));
        Ok(TcpServer { local_addr, task })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening and drops every connection.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections; the connection tasks live in a set that is dropped, and so aborted,
/// with this task.
async fn accept_loop(listener: TcpListener, units: Arc<[Arc<dyn Unit>]>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, units.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "Modbus TCP simulator failed to accept");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, units: Arc<[Arc<dyn Unit>]>) {
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        loop {
            match tcp::decode_frame(&mut buf) {
                Ok(Some(frame)) => {
                    if let Err(error) = serve_tcp_frame(&mut stream, &units, frame).await {
                        tracing::debug!(%peer, %error, "Modbus TCP simulator write failed");
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(%peer, %error, "closing the connection: bad MBAP header");
                    return;
                }
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(error) => {
                tracing::debug!(%peer, %error, "Modbus TCP simulator read failed");
                return;
            }
        }
    }
}

async fn serve_tcp_frame(
    stream: &mut TcpStream,
    units: &[Arc<dyn Unit>],
    frame: tcp::TcpFrame,
) -> io::Result<()> {
    let (function_code, reply) = reply_of(units, frame.unit, &frame.pdu).unwrap_or_else(|| {
        let function_code = frame.pdu.first().copied().unwrap_or_default();
        (
            function_code,
            Reply::Answer(Err(ExceptionCode::GatewayTargetFailedToRespond)),
        )
    });
    let pdu = match reply {
        Reply::Answer(answer) => answer_pdu(function_code, &answer),
        Reply::Delayed(delay, answer) => {
            tokio::time::sleep(delay).await;
            answer_pdu(function_code, &answer)
        }
        // The function code alone: every response layout needs more, so the master finds
        // it malformed, while the MBAP length keeps the stream in step.
        Reply::Corrupted(answer) => answer_pdu(function_code, &answer)
            .into_iter()
            .take(1)
            .collect(),
        Reply::Silent => return Ok(()),
    };
    let mut out = Vec::with_capacity(tcp::MBAP_LEN + pdu.len());
    tcp::encode_frame(frame.transaction, frame.unit, &pdu, &mut out);
    stream.write_all(&out).await
}

/// A Modbus RTU server on a byte stream (a pty, a serial port, an in-memory duplex): answers
/// the units it has after at least the frame silence, ignores frames for other units (other
/// devices on the bus), and passes broadcasts (unit 0) to every unit without answering.
#[derive(Debug)]
pub struct RtuServer {
    task: JoinHandle<()>,
}

impl RtuServer {
    /// Serves `units` on `stream`, answering no sooner than `silence` after a request. Must be
    /// called within a Tokio runtime, like [`tokio::spawn`].
    pub fn spawn<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
        stream: S,
        units: Vec<Arc<dyn Unit>>,
        silence: Duration,
    ) -> RtuServer {
        RtuServer {
            task: tokio::spawn(serve_rtu(stream, units, silence)),
        }
    }

    /// Stops serving and drops the stream.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for RtuServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_rtu<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    units: Vec<Arc<dyn Unit>>,
    silence: Duration,
) {
    let mut decoder = RtuDecoder::new(Direction::Request);
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        while let Some(frame) = decoder.decode(&mut buf) {
            if let Err(error) = serve_rtu_frame(&mut stream, &units, silence, frame).await {
                tracing::debug!(%error, "Modbus RTU simulator write failed");
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(error) => {
                tracing::debug!(%error, "Modbus RTU simulator read failed");
                return;
            }
        }
    }
}

async fn serve_rtu_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    units: &[Arc<dyn Unit>],
    silence: Duration,
    frame: rtu::RtuFrame,
) -> io::Result<()> {
    if frame.unit == 0 {
        if let Ok(request) = decode_request(&frame.pdu) {
            for unit in units {
                let _ = unit.reply(&request);
            }
        }
        return Ok(());
    }
    let Some((function_code, reply)) = reply_of(units, frame.unit, &frame.pdu) else {
        return Ok(());
    };
    let (delay, answer, corrupt) = match reply {
        Reply::Answer(answer) => (silence, answer, false),
        Reply::Delayed(delay, answer) => (delay.max(silence), answer, false),
        Reply::Corrupted(answer) => (silence, answer, true),
        Reply::Silent => return Ok(()),
    };
    let mut out = Vec::new();
    rtu::encode_frame(frame.unit, &answer_pdu(function_code, &answer), &mut out);
    if corrupt && let Some(crc_high) = out.last_mut() {
        *crc_high ^= 0xFF;
    }
    tokio::time::sleep(delay).await;
    stream.write_all(&out).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests;
