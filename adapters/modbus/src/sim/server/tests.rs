use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::DuplexStream;
use tokio::time::{Instant, timeout};

use super::*;
use crate::codec::{decode_answer, encode_request};
use crate::frame::{Request, Response};

/// Registers read from these addresses make the fake unit stay silent, answer an hour late,
/// or answer with a corrupted frame.
const SILENT: u16 = 100;
const DELAYED: u16 = 200;
const CORRUPTED: u16 = 300;
const DELAY: Duration = Duration::from_secs(3600);
/// How long a real-time test waits before it fails instead of hanging (never a sleep that
/// lets something happen: the tests wait for bytes, this only bounds the wait).
const GUARD: Duration = Duration::from_secs(20);

/// A unit that answers reads of holding registers with its own id in every register.
#[derive(Debug)]
struct FakeUnit {
    id: u8,
    requests: AtomicUsize,
}

impl FakeUnit {
    fn new(id: u8) -> Arc<Self> {
        Arc::new(Self {
            id,
            requests: AtomicUsize::new(0),
        })
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Unit for FakeUnit {
    fn unit(&self) -> u8 {
        self.id
    }

    fn reply(&self, request: &Request) -> Reply {
        self.requests.fetch_add(1, Ordering::SeqCst);
        match request {
            Request::ReadHoldingRegisters { address, count } => {
                let answer = Ok(Response::ReadHoldingRegisters(vec![
                    u16::from(self.id);
                    usize::from(*count)
                ]));
                match *address {
                    SILENT => Reply::Silent,
                    DELAYED => Reply::Delayed(DELAY, answer),
                    CORRUPTED => Reply::Corrupted(answer),
                    _ => Reply::Answer(answer),
                }
            }
            Request::WriteSingleRegister { address, value } => {
                Reply::Answer(Ok(Response::WriteSingleRegister {
                    address: *address,
                    value: *value,
                }))
            }
            _ => Reply::Answer(Err(ExceptionCode::IllegalFunction)),
        }
    }
}

fn units(ids: &[u8]) -> (Vec<Arc<FakeUnit>>, Vec<Arc<dyn Unit>>) {
    let fakes: Vec<_> = ids.iter().map(|id| FakeUnit::new(*id)).collect();
    let units = fakes
        .iter()
        .map(|fake| fake.clone() as Arc<dyn Unit>)
        .collect();
    (fakes, units)
}

fn read(address: u16) -> Request {
    Request::ReadHoldingRegisters { address, count: 2 }
}

fn pdu(request: &Request) -> Vec<u8> {
    let mut pdu = Vec::new();
    encode_request(request, &mut pdu).expect("encodes");
    pdu
}

// --- Modbus TCP -------------------------------------------------------------------------

async fn tcp_server(ids: &[u8]) -> (TcpServer, Vec<Arc<FakeUnit>>) {
    let (fakes, units) = units(ids);
    let server = TcpServer::bind("127.0.0.1:0".parse().expect("address"), units).expect("binds");
    (server, fakes)
}

async fn send_tcp(stream: &mut TcpStream, transaction: u16, unit: u8, pdu: &[u8]) {
    let mut out = Vec::new();
    tcp::encode_frame(transaction, unit, pdu, &mut out);
    stream.write_all(&out).await.expect("writes");
}

/// The next frame from the server, or `None` when it closed the connection.
async fn next_tcp(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<tcp::TcpFrame> {
    loop {
        if let Some(frame) = tcp::decode_frame(buf).expect("a good MBAP header") {
            return Some(frame);
        }
        let mut chunk = [0u8; 300];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn ask_tcp(stream: &mut TcpStream, transaction: u16, unit: u8, pdu: &[u8]) -> tcp::TcpFrame {
    send_tcp(stream, transaction, unit, pdu).await;
    timeout(GUARD, next_tcp(stream, &mut Vec::new()))
        .await
        .expect("answered in time")
        .expect("a frame")
}

#[tokio::test]
async fn tcp_server_should_answer_a_read_through_a_socket() {
    let (server, fakes) = tcp_server(&[7]).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    let frame = ask_tcp(&mut stream, 0x1234, 7, &pdu(&read(0))).await;
    assert_eq!((frame.transaction, frame.unit), (0x1234, 7));
    assert_eq!(
        decode_answer(&read(0), &frame.pdu),
        Ok(Ok(Response::ReadHoldingRegisters(vec![7, 7])))
    );
    assert_eq!(fakes[0].requests(), 1);
}

#[tokio::test]
async fn tcp_server_should_answer_an_absent_unit_as_a_gateway_would() {
    let (server, _) = tcp_server(&[7]).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    let frame = ask_tcp(&mut stream, 1, 8, &pdu(&read(0))).await;
    assert_eq!(
        frame.pdu,
        [
            0x83, // function code | 0x80
            0x0B, // gateway target device failed to respond
        ]
    );
}

#[tokio::test]
async fn tcp_server_should_answer_undecodable_requests_with_exceptions() {
    let (server, fakes) = tcp_server(&[7]).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    let unknown = ask_tcp(&mut stream, 1, 7, &[0x07]).await;
    assert_eq!(unknown.pdu, [0x87, 0x01], "illegal function");
    let zero_registers = ask_tcp(&mut stream, 2, 7, &[0x03, 0x00, 0x00, 0x00, 0x00]).await;
    assert_eq!(zero_registers.pdu, [0x83, 0x03], "illegal data value");
    assert_eq!(fakes[0].requests(), 0, "the unit never saw them");
}

#[tokio::test]
async fn tcp_delayed_reply_should_not_block_another_connection() {
    let (server, _) = tcp_server(&[7]).await;
    let mut slow = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    send_tcp(&mut slow, 1, 7, &pdu(&read(DELAYED))).await;
    let mut fast = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    let frame = ask_tcp(&mut fast, 2, 7, &pdu(&read(0))).await;
    assert_eq!(frame.transaction, 2);
}

#[tokio::test(start_paused = true)]
async fn tcp_delayed_reply_should_come_after_the_delay() {
    let (server, _) = tcp_server(&[7]).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    let start = Instant::now();
    send_tcp(&mut stream, 1, 7, &pdu(&read(DELAYED))).await;
    let frame = next_tcp(&mut stream, &mut Vec::new())
        .await
        .expect("a frame");
    assert!(
        start.elapsed() >= DELAY,
        "answered after {:?}",
        start.elapsed()
    );
    assert_eq!(
        decode_answer(&read(DELAYED), &frame.pdu),
        Ok(Ok(Response::ReadHoldingRegisters(vec![7, 7])))
    );
}

#[tokio::test]
async fn tcp_silent_reply_should_send_nothing() {
    let (server, fakes) = tcp_server(&[7]).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    send_tcp(&mut stream, 1, 7, &pdu(&read(SILENT))).await;
    // Requests on a connection are served in order: had the silent one been answered, its
    // frame would come before this one's.
    let frame = ask_tcp(&mut stream, 2, 7, &pdu(&read(0))).await;
    assert_eq!(frame.transaction, 2);
    assert_eq!(fakes[0].requests(), 2);
}

#[tokio::test]
async fn tcp_corrupted_reply_should_not_decode() {
    let (server, _) = tcp_server(&[7]).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    let frame = ask_tcp(&mut stream, 1, 7, &pdu(&read(CORRUPTED))).await;
    assert_eq!(frame.transaction, 1, "the MBAP header is intact");
    assert!(decode_answer(&read(CORRUPTED), &frame.pdu).is_err());
}

#[tokio::test]
async fn tcp_server_should_close_the_connection_on_a_bad_mbap_header() {
    let (server, _) = tcp_server(&[7]).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    stream
        .write_all(&[
            0x00, 0x01, // transaction
            0x00, 0x07, // protocol id: not Modbus
            0x00, 0x06, // length
            0x07, 0x03, 0x00, 0x00, 0x00, 0x01,
        ])
        .await
        .expect("writes");
    let closed = timeout(GUARD, next_tcp(&mut stream, &mut Vec::new()))
        .await
        .expect("closed in time");
    assert_eq!(closed, None);
}

#[tokio::test]
async fn tcp_server_stop_should_drop_its_connections() {
    let (server, _) = tcp_server(&[7]).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connects");
    ask_tcp(&mut stream, 1, 7, &pdu(&read(0))).await;
    server.stop();
    let closed = timeout(GUARD, next_tcp(&mut stream, &mut Vec::new()))
        .await
        .expect("closed in time");
    assert_eq!(closed, None);
}

// --- Modbus RTU -------------------------------------------------------------------------

const SILENCE: Duration = Duration::from_millis(4);

fn rtu_server(ids: &[u8]) -> (RtuServer, DuplexStream, Vec<Arc<FakeUnit>>) {
    let (fakes, units) = units(ids);
    let (master, device) = tokio::io::duplex(1024);
    (RtuServer::spawn(device, units, SILENCE), master, fakes)
}

async fn send_rtu(stream: &mut DuplexStream, unit: u8, pdu: &[u8]) {
    let mut out = Vec::new();
    rtu::encode_frame(unit, pdu, &mut out);
    stream.write_all(&out).await.expect("writes");
}

/// Reads until `len` bytes came.
async fn read_bytes<S: AsyncRead + Unpin>(stream: &mut S, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    stream.read_exact(&mut bytes).await.expect("reads");
    bytes
}

/// The next good response frame.
async fn next_rtu<S: AsyncRead + Unpin>(stream: &mut S) -> rtu::RtuFrame {
    let mut decoder = RtuDecoder::new(Direction::Response);
    let mut buf = Vec::new();
    loop {
        if let Some(frame) = decoder.decode(&mut buf) {
            return frame;
        }
        let mut chunk = [0u8; 64];
        let n = stream.read(&mut chunk).await.expect("reads");
        assert!(n > 0, "the server closed the stream");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(start_paused = true)]
async fn rtu_server_should_answer_after_the_frame_silence() {
    let (_server, mut master, _) = rtu_server(&[5]);
    let start = Instant::now();
    send_rtu(&mut master, 5, &pdu(&read(0))).await;
    let frame = next_rtu(&mut master).await;
    assert!(start.elapsed() >= SILENCE);
    assert_eq!(frame.unit, 5);
    assert_eq!(
        decode_answer(&read(0), &frame.pdu),
        Ok(Ok(Response::ReadHoldingRegisters(vec![5, 5])))
    );
}

#[tokio::test(start_paused = true)]
async fn rtu_server_should_ignore_other_units_and_not_answer_broadcasts() {
    let (_server, mut master, fakes) = rtu_server(&[5, 6]);
    let write = Request::WriteSingleRegister {
        address: 1,
        value: 2,
    };
    send_rtu(&mut master, 0, &pdu(&write)).await; // broadcast
    send_rtu(&mut master, 9, &pdu(&read(0))).await; // another device on the bus
    send_rtu(&mut master, 6, &pdu(&read(0))).await;
    // Frames are served in order: an answer to either of the first two would come first.
    let frame = next_rtu(&mut master).await;
    assert_eq!(frame.unit, 6);
    assert_eq!(fakes[0].requests(), 1, "unit 5 saw the broadcast");
    assert_eq!(
        fakes[1].requests(),
        2,
        "unit 6 saw the broadcast and its read"
    );
}

#[tokio::test(start_paused = true)]
async fn rtu_corrupted_reply_should_fail_the_crc() {
    let (_server, mut master, _) = rtu_server(&[5]);
    send_rtu(&mut master, 5, &pdu(&read(CORRUPTED))).await;
    // Address, function code, byte count, two registers, CRC.
    let bytes = read_bytes(&mut master, 9).await;
    assert_eq!(bytes[..3], [0x05, 0x03, 0x04]);
    let mut buf = bytes.clone();
    let mut decoder = RtuDecoder::new(Direction::Response);
    assert_eq!(decoder.decode(&mut buf), None);
    assert!(decoder.dropped() > 0);
    // The stream goes on: the next reply is whole.
    send_rtu(&mut master, 5, &pdu(&read(0))).await;
    assert_eq!(next_rtu(&mut master).await.unit, 5);
}

#[tokio::test(start_paused = true)]
async fn rtu_silent_and_delayed_replies_should_be_carried_out() {
    let (_server, mut master, _) = rtu_server(&[5]);
    send_rtu(&mut master, 5, &pdu(&read(SILENT))).await;
    let start = Instant::now();
    send_rtu(&mut master, 5, &pdu(&read(DELAYED))).await;
    let frame = next_rtu(&mut master).await;
    assert!(start.elapsed() >= DELAY);
    assert_eq!(
        decode_answer(&read(DELAYED), &frame.pdu),
        Ok(Ok(Response::ReadHoldingRegisters(vec![5, 5]))),
        "the first answer is the delayed one: the silent request got none"
    );
}

#[tokio::test(start_paused = true)]
async fn rtu_server_should_answer_malformed_requests_and_resynchronise_after_noise() {
    let (_server, mut master, _) = rtu_server(&[5]);
    master.write_all(&[0xFF, 0x00]).await.expect("writes"); // noise
    send_rtu(&mut master, 5, &[0x03, 0x00, 0x00, 0x00, 0x00]).await;
    assert_eq!(
        next_rtu(&mut master).await,
        rtu::RtuFrame {
            unit: 5,
            pdu: vec![0x83, 0x03],
        }
    );
}

#[cfg(unix)]
#[tokio::test]
async fn rtu_server_should_answer_through_a_pty_opened_by_tokio_serial() {
    use tokio_serial::SerialPortBuilderExt;

    let (fakes, units) = units(&[5]);
    let (pty, path) = crate::sim::open_pty().expect("opens a pty");
    let _server = RtuServer::spawn(pty, units, SILENCE);
    let mut port = tokio_serial::new(&path, 9600)
        .open_native_async()
        .unwrap_or_else(|error| panic!("tokio-serial cannot open {path}: {error}"));
    let mut out = Vec::new();
    rtu::encode_frame(5, &pdu(&read(0)), &mut out);
    port.write_all(&out).await.expect("writes");
    let frame = timeout(GUARD, next_rtu(&mut port))
        .await
        .expect("answered in time");
    assert_eq!(
        decode_answer(&read(0), &frame.pdu),
        Ok(Ok(Response::ReadHoldingRegisters(vec![5, 5])))
    );
    assert_eq!(fakes[0].requests(), 1);
}
