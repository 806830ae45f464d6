//! One task per bus that owns it (a serial port, or a TCP connection to a device or a Modbus TCP
//! gateway), as rumqttc's event loop owns its broker connection.
//!
//! Callers hold a cheap [`BusHandle`] and send it requests over a bounded channel. The task:
//! - keeps one request in flight for every unit id on the bus (RS-485 is half duplex; most
//!   Modbus TCP gateways in front of a serial line are too);
//! - serves [`Priority::Management`] requests (writes, actions, firmware, identification) ahead
//!   of [`Priority::Poll`] requests, and takes units round-robin within a priority, so one busy
//!   device cannot starve the others;
//! - times each attempt out and retries by the caller's [`Policy`];
//! - on RTU keeps the bus silent for t3.5 between frames and resynchronises after noise; on TCP
//!   matches answers by transaction id and drops late answers to requests that timed out;
//! - reconnects with exponential backoff (0.5 s doubling to 30 s) and fails requests quickly
//!   with a clear error while the bus is down.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use iotmc_adapter::LinkError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::address::{BusKey, LineSettings, Parity};
use crate::codec::rtu::{self, Direction, RtuDecoder};
use crate::codec::{self, tcp};
use crate::frame::{Answer, Request};

/// Requests waiting for a bus, across all its devices.
const QUEUE: usize = 256;
/// First reconnect delay after a failed connection.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the bus stays quiet after a broadcast (no answer comes), per the serial line
/// specification's "turnaround delay" (100 to 200 ms).
const TURNAROUND: Duration = Duration::from_millis(200);

/// Which queue a request waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Operator and engine actions: writes, actions, firmware, identification, on-demand reads.
    Management,
    /// Background polling.
    Poll,
}

/// How patient to be with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// How many times to send again after a timeout or a transport failure.
    pub retries: u32,
}

impl Policy {
    /// The longest the request may take, all attempts together.
    pub fn deadline(&self) -> Duration {
        self.timeout.saturating_mul(self.retries.saturating_add(1))
    }
}

/// Something a driver can open: the serial port or TCP connection of its bus.
pub trait Connect: Send + 'static {
    /// Opens a fresh connection.
    fn connect(&mut self) -> Connecting<'_>;
}

/// A connection being opened.
pub type Connecting<'a> = Pin<Box<dyn Future<Output = io::Result<Box<dyn Stream>>> + Send + 'a>>;

/// A byte stream a driver talks over.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// How frames are delimited on a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Modbus TCP (MBAP header).
    Tcp,
    /// Modbus RTU with this inter-frame silence (t3.5).
    Rtu {
        /// The silence that ends a frame.
        silence: Duration,
    },
}

/// Connects to a TCP endpoint `host:port`.
#[derive(Debug)]
pub struct TcpConnector {
    endpoint: String,
}

impl TcpConnector {
    /// A connector for `endpoint` (`host:port`, IPv6 in brackets).
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
        }
    }
}

impl Connect for TcpConnector {
    fn connect(&mut self) -> Connecting<'_> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(&self.endpoint).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Box<dyn Stream>)
        })
    }
}

/// Opens a serial port with its line settings.
#[derive(Debug)]
pub struct SerialConnector {
    path: String,
    line: LineSettings,
}

impl SerialConnector {
    /// A connector for the port at `path`.
    pub fn new(path: impl Into<String>, line: LineSettings) -> Self {
        Self {
            path: path.into(),
            line,
        }
    }
}

impl Connect for SerialConnector {
    fn connect(&mut self) -> Connecting<'_> {
        Box::pin(async move {
            use tokio_serial::SerialPortBuilderExt;
            let builder = tokio_serial::new(&self.path, self.line.baud)
                .data_bits(match self.line.data_bits {
                    7 => tokio_serial::DataBits::Seven,
                    _ => tokio_serial::DataBits::Eight,
                })
                .parity(match self.line.parity {
                    Parity::None => tokio_serial::Parity::None,
                    Parity::Even => tokio_serial::Parity::Even,
                    Parity::Odd => tokio_serial::Parity::Odd,
                })
                .stop_bits(match self.line.stop_bits {
                    2 => tokio_serial::StopBits::Two,
                    _ => tokio_serial::StopBits::One,
                });
            let port = builder.open_native_async().map_err(io::Error::other)?;
            Ok(Box::new(port) as Box<dyn Stream>)
        })
    }
}

struct Command {
    unit: u8,
    request: Request,
    priority: Priority,
    policy: Policy,
    reply: oneshot::Sender<Result<Answer, LinkError>>,
}

/// A cheap handle onto the driver task of one bus.
#[derive(Clone)]
pub struct BusHandle {
    bus: BusKey,
    commands: mpsc::Sender<Command>,
}

impl fmt::Debug for BusHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusHandle").field("bus", &self.bus).finish()
    }
}

impl BusHandle {
    /// Starts the driver task of `bus`; it runs until every handle is dropped.
    pub fn spawn(bus: BusKey, framing: Framing, connector: impl Connect) -> Self {
        let (commands, queue) = mpsc::channel(QUEUE);
        let driver = Driver {
            bus: bus.clone(),
            framing,
            connector: Box::new(connector),
            connection: None,
            read_buf: Vec::new(),
            decoder: RtuDecoder::new(Direction::Response),
            next_transaction: 0,
            quiet_until: None,
            down_until: None,
            backoff: BACKOFF_START,
            last_connect_error: None,
            waiting: Queues::default(),
        };
        tokio::spawn(driver.run(queue));
        Self { bus, commands }
    }

    /// The bus this handle drives.
    pub fn bus(&self) -> &BusKey {
        &self.bus
    }

    /// A handle that does not keep the driver alive (see [`WeakBusHandle::upgrade`]).
    pub fn downgrade(&self) -> WeakBusHandle {
        WeakBusHandle {
            bus: self.bus.clone(),
            commands: self.commands.downgrade(),
        }
    }

    /// Sends `request` to `unit` and waits for its answer: the device's response or exception,
    /// or a [`LinkError`] for timeouts (after every retry), transport failures and a closed
    /// bus. Dropping the future withdraws the request if it has not been sent yet.
    pub async fn call(
        &self,
        unit: u8,
        request: Request,
        priority: Priority,
        policy: Policy,
    ) -> Result<Answer, LinkError> {
        let (reply, answer) = oneshot::channel();
        let command = Command {
            unit,
            request,
            priority,
            policy,
            reply,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| LinkError::Closed)?;
        answer.await.map_err(|_| LinkError::Closed)?
    }
}

/// A handle that does not keep the driver alive; the adapter keeps these so a bus closes when
/// its last device is detached.
#[derive(Debug, Clone)]
pub struct WeakBusHandle {
    bus: BusKey,
    commands: mpsc::WeakSender<Command>,
}

impl WeakBusHandle {
    /// The handle, if the driver still runs.
    pub fn upgrade(&self) -> Option<BusHandle> {
        self.commands.upgrade().map(|commands| BusHandle {
            bus: self.bus.clone(),
            commands,
        })
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("unit", &self.unit)
            .field("function", &self.request.function_code())
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// Waiting requests: one queue per priority and unit, served by priority, then round-robin
/// across units.
#[derive(Debug, Default)]
struct Queues {
    by_priority: BTreeMap<Priority, BTreeMap<u8, VecDeque<Command>>>,
    last_unit: Option<u8>,
}

impl Queues {
    fn push(&mut self, command: Command) {
        self.by_priority
            .entry(command.priority)
            .or_default()
            .entry(command.unit)
            .or_default()
            .push_back(command);
    }

    fn pop(&mut self) -> Option<Command> {
        let (&priority, units) = self.by_priority.iter_mut().find(|(_, u)| !u.is_empty())?;
        // The first unit after the one served last, wrapping around.
        let unit = match self.last_unit {
            Some(last) => units
                .range(last.saturating_add(1)..)
                .next()
                .filter(|_| last < u8::MAX)
                .or_else(|| units.iter().next())
                .map(|(u, _)| *u),
            None => units.keys().next().copied(),
        }?;
        let queue = units.get_mut(&unit)?;
        let command = queue.pop_front();
        if queue.is_empty() {
            units.remove(&unit);
        }
        if units.is_empty() {
            self.by_priority.remove(&priority);
        }
        self.last_unit = Some(unit);
        command
    }
}

struct Driver {
    bus: BusKey,
    framing: Framing,
    connector: Box<dyn Connect>,
    connection: Option<Box<dyn Stream>>,
    read_buf: Vec<u8>,
    decoder: RtuDecoder,
    next_transaction: u16,
    /// RTU: no frame may start before this (t3.5 after the last byte on the bus).
    quiet_until: Option<Instant>,
    /// After a failed connect: requests fail at once until then.
    down_until: Option<Instant>,
    backoff: Duration,
    last_connect_error: Option<String>,
    waiting: Queues,
}

/// How one attempt went.
enum Attempt {
    Answered(Answer),
    /// Nothing (or nothing decodable) came back in time.
    TimedOut,
    /// The connection failed; it has been dropped.
    Failed(String),
    /// Something came back that does not answer the request.
    Malformed(String),
}

impl Driver {
    async fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        tracing::debug!(bus = %self.bus, "bus driver started");
        loop {
            while let Ok(command) = queue.try_recv() {
                self.waiting.push(command);
            }
            if let Some(command) = self.waiting.pop() {
                if command.reply.is_closed() {
                    continue;
                }
                let result = self.serve(&command).await;
                // The caller may have given up; nothing to do then.
                let _ = command.reply.send(result);
                continue;
            }
            match queue.recv().await {
                Some(command) => self.waiting.push(command),
                None => break,
            }
        }
        tracing::debug!(bus = %self.bus, "bus driver stopped: no device uses the bus any more");
    }

    async fn serve(&mut self, command: &Command) -> Result<Answer, LinkError> {
        let mut pdu = Vec::with_capacity(crate::frame::MAX_PDU);
        codec::encode_request(&command.request, &mut pdu).map_err(|e| LinkError::Unsupported {
            operation: format!("Modbus function 0x{:02X}", command.request.function_code()),
            reason: e.to_string(),
        })?;
        let span = tracing::debug_span!("modbus", bus = %self.bus, unit = command.unit, function = command.request.function_code());
        let _enter = span.enter();
        if command.unit == 0 && !command.request.is_write() {
            return Err(LinkError::Unsupported {
                operation: format!(
                    "Modbus function 0x{:02X} to unit 0",
                    command.request.function_code()
                ),
                reason: "unit 0 is the broadcast address, which only writes may use".to_owned(),
            });
        }
        let mut last_failure = None;
        let mut last_malformed = None;
        for attempt in 0..=command.policy.retries {
            if command.reply.is_closed() {
                return Err(LinkError::Closed);
            }
            match self.attempt(command, &pdu).await {
                Attempt::Answered(answer) => return Ok(answer),
                Attempt::TimedOut => {
                    tracing::debug!(attempt, "no answer in time");
                }
                Attempt::Malformed(why) => {
                    tracing::debug!(attempt, why = %why, "answer does not match the request");
                    last_malformed = Some(why);
                }
                Attempt::Failed(why) => {
                    tracing::debug!(attempt, why = %why, "transport failure");
                    if self.down_until.is_some() {
                        // Not connected and backing off: retrying now cannot help.
                        return Err(LinkError::Transport(why));
                    }
                    last_failure = Some(why);
                }
            }
        }
        match (last_malformed, last_failure) {
            (Some(why), _) => Err(LinkError::Malformed(why)),
            (None, Some(why)) => Err(LinkError::Transport(why)),
            (None, None) => Err(LinkError::Timeout {
                after: command.policy.deadline(),
            }),
        }
    }

    /// Connects if needed, then sends `frame`.
    async fn send(&mut self, frame: &[u8]) -> Result<(), String> {
        self.connect().await?;
        let Some(stream) = self.connection.as_mut() else {
            return Err("not connected".to_owned());
        };
        let written = async {
            stream.write_all(frame).await?;
            stream.flush().await
        }
        .await;
        if let Err(e) = written {
            let why = format!("sending to {} failed: {e}", self.bus);
            self.drop_connection(&why);
            return Err(why);
        }
        Ok(())
    }

    async fn connect(&mut self) -> Result<(), String> {
        if self.connection.is_none() {
            let now = Instant::now();
            if let Some(until) = self.down_until
                && now < until
            {
                return Err(format!(
                    "{} is unreachable ({}); the gateway tries again in {:.1} s",
                    self.bus,
                    self.last_connect_error
                        .as_deref()
                        .unwrap_or("connect failed"),
                    (until - now).as_secs_f64()
                ));
            }
            match self.connector.connect().await {
                Ok(stream) => {
                    tracing::info!(bus = %self.bus, "connected");
                    self.connection = Some(stream);
                    self.down_until = None;
                    self.backoff = BACKOFF_START;
                    self.last_connect_error = None;
                    self.read_buf.clear();
                }
                Err(e) => {
                    let why = format!("cannot open {}: {e}", self.bus);
                    tracing::warn!(bus = %self.bus, error = %e, retry_in = ?self.backoff, "cannot connect");
                    self.down_until = Some(now + self.backoff);
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    self.last_connect_error = Some(e.to_string());
                    return Err(why);
                }
            }
        }
        Ok(())
    }

    fn drop_connection(&mut self, why: &str) {
        if self.connection.take().is_some() {
            tracing::warn!(bus = %self.bus, why, "connection dropped; reconnecting on the next request");
        }
        self.read_buf.clear();
    }

    async fn attempt(&mut self, command: &Command, pdu: &[u8]) -> Attempt {
        match self.framing {
            Framing::Tcp => self.attempt_tcp(command, pdu).await,
            Framing::Rtu { silence } => self.attempt_rtu(command, pdu, silence).await,
        }
    }

    async fn attempt_tcp(&mut self, command: &Command, pdu: &[u8]) -> Attempt {
        self.next_transaction = self.next_transaction.wrapping_add(1);
        let transaction = self.next_transaction;
        let mut frame = Vec::with_capacity(tcp::MBAP_LEN + pdu.len());
        tcp::encode_frame(transaction, command.unit, pdu, &mut frame);
        let deadline = Instant::now() + command.policy.timeout;
        if let Err(why) = self.send(&frame).await {
            return Attempt::Failed(why);
        }
        loop {
            match tcp::decode_frame(&mut self.read_buf) {
                Ok(Some(answer)) if answer.transaction == transaction => {
                    return self.decode(command, &answer.pdu);
                }
                Ok(Some(stale)) => {
                    tracing::debug!(
                        transaction = stale.transaction,
                        "dropped a late answer to an earlier request"
                    );
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    let why = format!("{} sent a broken Modbus TCP frame: {e}", self.bus);
                    self.drop_connection(&why);
                    return Attempt::Failed(why);
                }
            }
            match self.read_more(deadline).await {
                Ok(true) => {}
                Ok(false) => return Attempt::TimedOut,
                Err(why) => return Attempt::Failed(why),
            }
        }
    }

    async fn attempt_rtu(&mut self, command: &Command, pdu: &[u8], silence: Duration) -> Attempt {
        let mut frame = Vec::with_capacity(pdu.len() + 3);
        rtu::encode_frame(command.unit, pdu, &mut frame);
        if let Some(quiet) = self.quiet_until {
            sleep_until(quiet).await;
        }
        // Anything already received is the tail of an earlier answer that came too late.
        self.drain().await;
        if !self.read_buf.is_empty() {
            tracing::debug!(
                bytes = self.read_buf.len(),
                "discarded stale bytes before sending"
            );
            self.read_buf.clear();
        }
        if let Err(why) = self.send(&frame).await {
            return Attempt::Failed(why);
        }
        let sent = Instant::now();
        if command.unit == 0 {
            // Broadcast: nobody answers; give the devices the turnaround delay to act.
            self.quiet_until = Some(sent + TURNAROUND.max(silence));
            return Attempt::Answered(Ok(broadcast_answer(&command.request)));
        }
        let deadline = sent + command.policy.timeout;
        let result = loop {
            if let Some(answer) = self.decoder.decode(&mut self.read_buf) {
                if answer.unit == command.unit {
                    break self.decode(command, &answer.pdu);
                }
                tracing::debug!(unit = answer.unit, "dropped a frame from another unit");
                continue;
            }
            match self.read_more(deadline).await {
                Ok(true) => {}
                Ok(false) => break Attempt::TimedOut,
                Err(why) => break Attempt::Failed(why),
            }
        };
        self.quiet_until = Some(Instant::now() + silence);
        result
    }

    /// Takes in whatever the connection has ready, without waiting.
    async fn drain(&mut self) {
        for _ in 0..8 {
            match self.read_more(Instant::now()).await {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
        }
    }

    /// Reads what has arrived into the buffer; `Ok(false)` when the deadline passed first.
    async fn read_more(&mut self, deadline: Instant) -> Result<bool, String> {
        let Some(stream) = self.connection.as_mut() else {
            return Err("not connected".to_owned());
        };
        let mut chunk = [0u8; 512];
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) => {
                let why = format!("{} closed the connection", self.bus);
                self.drop_connection(&why);
                Err(why)
            }
            Ok(Ok(n)) => {
                self.read_buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                // A peer that floods us without ever completing a frame is cut off.
                if self.read_buf.len() > 4096 {
                    let why = format!("{} sent more than 4 KiB without a valid frame", self.bus);
                    self.drop_connection(&why);
                    return Err(why);
                }
                Ok(true)
            }
            Ok(Err(e)) => {
                let why = format!("reading from {} failed: {e}", self.bus);
                self.drop_connection(&why);
                Err(why)
            }
        }
    }

    fn decode(&mut self, command: &Command, pdu: &[u8]) -> Attempt {
        match codec::decode_answer(&command.request, pdu) {
            Ok(answer) => Attempt::Answered(answer),
            Err(e) => {
                tracing::warn!(bus = %self.bus, unit = command.unit, error = %e, "answer does not match the request");
                // Resynchronise TCP streams; the retry policy decides whether to ask again.
                if self.framing == Framing::Tcp {
                    self.drop_connection(&e.to_string());
                }
                Attempt::Malformed(e.to_string())
            }
        }
    }
}

/// What a broadcast write "returns": the echo a unicast write would have had.
fn broadcast_answer(request: &Request) -> crate::frame::Response {
    use crate::frame::Response;
    match request {
        Request::WriteSingleCoil { address, value } => Response::WriteSingleCoil {
            address: *address,
            value: *value,
        },
        Request::WriteSingleRegister { address, value } => Response::WriteSingleRegister {
            address: *address,
            value: *value,
        },
        Request::WriteMultipleCoils { address, values } => Response::WriteMultipleCoils {
            address: *address,
            count: u16::try_from(values.len()).unwrap_or(u16::MAX),
        },
        Request::WriteMultipleRegisters { address, values } => Response::WriteMultipleRegisters {
            address: *address,
            count: u16::try_from(values.len()).unwrap_or(u16::MAX),
        },
        Request::WriteFileRecord(records) => Response::WriteFileRecord(records.clone()),
        Request::Diagnostics { sub_function, data } => Response::Diagnostics {
            sub_function: *sub_function,
            data: *data,
        },
        // Reads are refused before sending to unit 0.
        Request::ReadCoils { .. }
        | Request::ReadDiscreteInputs { .. }
        | Request::ReadHoldingRegisters { .. }
        | Request::ReadInputRegisters { .. }
        | Request::GetCommEventLog
        | Request::ReadFileRecord(_)
        | Request::ReadDeviceIdentification { .. } => Response::WriteMultipleRegisters {
            address: 0,
            count: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::DuplexStream;

    use super::*;
    use crate::frame::{ExceptionCode, Response};

    fn command(
        unit: u8,
        priority: Priority,
    ) -> (Command, oneshot::Receiver<Result<Answer, LinkError>>) {
        let (reply, rx) = oneshot::channel();
        (
            Command {
                unit,
                request: Request::ReadHoldingRegisters {
                    address: u16::from(unit),
                    count: 1,
                },
                priority,
                policy: POLICY,
                reply,
            },
            rx,
        )
    }

    const POLICY: Policy = Policy {
        timeout: Duration::from_millis(100),
        retries: 1,
    };

    fn order(queues: &mut Queues) -> Vec<(Priority, u8)> {
        std::iter::from_fn(|| queues.pop().map(|c| (c.priority, c.unit))).collect()
    }

    #[test]
    fn management_requests_should_go_ahead_of_waiting_polls() {
        let mut queues = Queues::default();
        let mut keep = Vec::new();
        for (unit, priority) in [
            (1, Priority::Poll),
            (2, Priority::Poll),
            (3, Priority::Management),
        ] {
            let (c, rx) = command(unit, priority);
            queues.push(c);
            keep.push(rx);
        }
        assert_eq!(
            order(&mut queues),
            [
                (Priority::Management, 3),
                (Priority::Poll, 1),
                (Priority::Poll, 2)
            ]
        );
    }

    #[test]
    fn units_should_take_turns_so_a_busy_device_cannot_starve_the_others() {
        let mut queues = Queues::default();
        let mut keep = Vec::new();
        for unit in [1, 1, 1, 2, 255] {
            let (c, rx) = command(unit, Priority::Poll);
            queues.push(c);
            keep.push(rx);
        }
        let units: Vec<u8> = order(&mut queues).into_iter().map(|(_, u)| u).collect();
        assert_eq!(units, [1, 2, 255, 1, 1]);
    }

    /// Connects to in-memory streams the test holds the other end of.
    struct Duplexes {
        ends: mpsc::UnboundedSender<DuplexStream>,
        connects: Arc<AtomicUsize>,
        fail: bool,
    }

    impl Connect for Duplexes {
        fn connect(&mut self) -> Connecting<'_> {
            Box::pin(async move {
                self.connects.fetch_add(1, Ordering::SeqCst);
                if self.fail {
                    return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
                }
                let (ours, theirs) = tokio::io::duplex(1024);
                let _ = self.ends.send(theirs);
                Ok(Box::new(ours) as Box<dyn Stream>)
            })
        }
    }

    fn bus(
        framing: Framing,
        fail: bool,
    ) -> (
        BusHandle,
        mpsc::UnboundedReceiver<DuplexStream>,
        Arc<AtomicUsize>,
    ) {
        let (ends, rx) = mpsc::unbounded_channel();
        let connects = Arc::new(AtomicUsize::new(0));
        let handle = BusHandle::spawn(
            BusKey::Tcp("test:502".into()),
            framing,
            Duplexes {
                ends,
                connects: Arc::clone(&connects),
                fail,
            },
        );
        (handle, rx, connects)
    }

    async fn read_tcp_request(end: &mut DuplexStream) -> tcp::TcpFrame {
        let mut buf = Vec::new();
        loop {
            if let Some(frame) = tcp::decode_frame(&mut buf).expect("valid frame") {
                return frame;
            }
            let mut chunk = [0u8; 260];
            let n = end.read(&mut chunk).await.expect("read");
            assert!(n > 0, "driver closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn answer_tcp(end: &mut DuplexStream, request: &tcp::TcpFrame, answer: &Answer) {
        let mut pdu = Vec::new();
        let fc = request.pdu.first().copied().unwrap_or_default();
        codec::encode_answer(fc, answer, &mut pdu);
        let mut frame = Vec::new();
        tcp::encode_frame(request.transaction, request.unit, &pdu, &mut frame);
        end.write_all(&frame).await.expect("write");
    }

    fn read(address: u16) -> Request {
        Request::ReadHoldingRegisters { address, count: 1 }
    }

    #[tokio::test(start_paused = true)]
    async fn late_tcp_answer_should_be_dropped_and_not_taken_for_the_next_one() {
        let (bus, mut ends, _) = bus(Framing::Tcp, false);
        let policy = Policy {
            timeout: Duration::from_millis(100),
            retries: 0,
        };
        let first = tokio::spawn({
            let bus = bus.clone();
            async move { bus.call(1, read(10), Priority::Poll, policy).await }
        });
        let mut end = ends.recv().await.expect("connected");
        let stale = read_tcp_request(&mut end).await;
        assert!(matches!(
            first.await.expect("task"),
            Err(LinkError::Timeout { .. })
        ));
        // The first answer arrives after the driver gave up, just before the second one.
        let second = tokio::spawn({
            let bus = bus.clone();
            async move { bus.call(1, read(20), Priority::Poll, policy).await }
        });
        let request = read_tcp_request(&mut end).await;
        answer_tcp(
            &mut end,
            &stale,
            &Ok(Response::ReadHoldingRegisters(vec![111])),
        )
        .await;
        answer_tcp(
            &mut end,
            &request,
            &Ok(Response::ReadHoldingRegisters(vec![222])),
        )
        .await;
        assert_eq!(
            second.await.expect("task"),
            Ok(Ok(Response::ReadHoldingRegisters(vec![222])))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn exception_should_come_back_as_the_device_answer() {
        let (bus, mut ends, _) = bus(Framing::Tcp, false);
        let call =
            tokio::spawn(async move { bus.call(7, read(1), Priority::Management, POLICY).await });
        let mut end = ends.recv().await.expect("connected");
        let request = read_tcp_request(&mut end).await;
        assert_eq!(request.unit, 7);
        answer_tcp(&mut end, &request, &Err(ExceptionCode::IllegalDataAddress)).await;
        assert_eq!(
            call.await.expect("task"),
            Ok(Err(ExceptionCode::IllegalDataAddress))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn timed_out_request_should_be_retried_by_the_policy() {
        let (bus, mut ends, _) = bus(Framing::Tcp, false);
        let call = tokio::spawn(async move { bus.call(1, read(5), Priority::Poll, POLICY).await });
        let mut end = ends.recv().await.expect("connected");
        let _ignored = read_tcp_request(&mut end).await;
        let retry = read_tcp_request(&mut end).await;
        answer_tcp(
            &mut end,
            &retry,
            &Ok(Response::ReadHoldingRegisters(vec![5])),
        )
        .await;
        assert_eq!(
            call.await.expect("task"),
            Ok(Ok(Response::ReadHoldingRegisters(vec![5])))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unreachable_bus_should_fail_fast_while_backing_off() {
        let (bus, _ends, connects) = bus(Framing::Tcp, true);
        let err = bus
            .call(1, read(1), Priority::Poll, POLICY)
            .await
            .unwrap_err();
        assert!(matches!(err, LinkError::Transport(_)), "{err}");
        assert!(err.to_string().contains("refused"), "{err}");
        let err = bus
            .call(1, read(1), Priority::Poll, POLICY)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("tries again in"), "{err}");
        assert_eq!(
            connects.load(Ordering::SeqCst),
            1,
            "no reconnect during backoff"
        );
        tokio::time::advance(BACKOFF_START).await;
        let _ = bus.call(1, read(1), Priority::Poll, POLICY).await;
        assert_eq!(
            connects.load(Ordering::SeqCst),
            2,
            "reconnects after the backoff"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rtu_bus_should_stay_silent_for_t35_between_frames() {
        let silence = Duration::from_millis(4);
        let (bus, mut ends, _) = bus(Framing::Rtu { silence }, false);
        let calls = tokio::spawn(async move {
            let a = bus.call(3, read(1), Priority::Poll, POLICY).await;
            let b = bus.call(3, read(2), Priority::Poll, POLICY).await;
            (a, b)
        });
        let mut end = ends.recv().await.expect("connected");
        let mut decoder = RtuDecoder::new(Direction::Request);
        let mut buf = Vec::new();
        let mut answered_at = None;
        for value in [1u16, 2] {
            let frame = loop {
                if let Some(frame) = decoder.decode(&mut buf) {
                    break frame;
                }
                let mut chunk = [0u8; 64];
                let n = end.read(&mut chunk).await.expect("read");
                buf.extend_from_slice(&chunk[..n]);
            };
            if let Some(at) = answered_at {
                let quiet: Duration = Instant::now() - at;
                assert!(
                    quiet >= silence,
                    "next frame after {quiet:?}, t3.5 is {silence:?}"
                );
            }
            let mut pdu = Vec::new();
            codec::encode_answer(
                0x03,
                &Ok(Response::ReadHoldingRegisters(vec![value])),
                &mut pdu,
            );
            let mut out = Vec::new();
            rtu::encode_frame(frame.unit, &pdu, &mut out);
            end.write_all(&out).await.expect("write");
            answered_at = Some(Instant::now());
        }
        let (a, b) = calls.await.expect("task");
        assert_eq!(a, Ok(Ok(Response::ReadHoldingRegisters(vec![1]))));
        assert_eq!(b, Ok(Ok(Response::ReadHoldingRegisters(vec![2]))));
    }

    #[tokio::test]
    async fn reads_to_the_broadcast_address_should_be_refused_before_sending() {
        let (bus, _ends, connects) = bus(
            Framing::Rtu {
                silence: Duration::from_millis(2),
            },
            false,
        );
        let err = bus
            .call(0, read(1), Priority::Management, POLICY)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("broadcast"), "{err}");
        assert_eq!(connects.load(Ordering::SeqCst), 0);
    }
}
