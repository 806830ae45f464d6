//! Figures for the Modbus adapter, printed (run with `cargo bench -p iotmc-adapter-modbus`):
//! how many requests a poll of each shipped profile takes after coalescing, how long a poll
//! round takes against the simulator over loopback TCP and over a pty, how fast the RTU codec
//! decodes, and how fast a firmware image moves by file records.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::{Adapter, DeviceBinding, DeviceLink, FirmwareImage, Profile};
use iotmc_adapter_modbus::ModbusAdapter;
use iotmc_adapter_modbus::codec::encode_answer;
use iotmc_adapter_modbus::codec::rtu::{self, Direction, RtuDecoder};
use iotmc_adapter_modbus::frame::Response;
use iotmc_adapter_modbus::plan::{Limits, Span, plan_reads};
use iotmc_adapter_modbus::profile::load_section;
use iotmc_adapter_modbus::sim::{RtuServer, SimDevice, SimIdentity, TcpServer, Unit, open_pty};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

fn profiles() -> Vec<(String, Arc<Profile>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../device-profiles/modbus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("device-profiles/modbus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
            (
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                Arc::new(profile),
            )
        })
        .collect()
}

fn coalescing() {
    println!("poll coalescing (readable parameters -> read requests per poll):");
    for (file, profile) in profiles() {
        let section = load_section(&profile).unwrap_or_else(|e| panic!("{e:?}"));
        let spans: Vec<Span> = profile
            .readable_parameters()
            .iter()
            .filter_map(|name| section.parameters.get(name))
            .map(|point| Span {
                table: point.table.into(),
                address: point.address,
                count: point.span(),
            })
            .collect();
        let blocks = plan_reads(
            &spans,
            Limits {
                max_gap: section.max_gap,
                max_registers: section.max_read_registers,
                max_bits: section.max_read_bits,
            },
        );
        println!(
            "  {file:<32} {:>3} parameters -> {:>2} requests",
            spans.len(),
            blocks.len()
        );
    }
}

fn simulate(profile: &Arc<Profile>, unit: u8) -> SimDevice {
    let section = load_section(profile).unwrap_or_else(|e| panic!("{e:?}"));
    SimDevice::new(Arc::clone(profile), section, unit, SimIdentity::default())
        .with_reboot_time(Duration::from_millis(100))
}

async fn attach(profile: &Arc<Profile>, address: String) -> Arc<dyn DeviceLink> {
    ModbusAdapter::new()
        .attach(&DeviceBinding {
            device_id: "bench".into(),
            profile: Arc::clone(profile),
            address,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn poll_rounds(label: &str, link: &Arc<dyn DeviceLink>, names: &[String], rounds: usize) {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        link.read(names).await.unwrap_or_else(|e| panic!("{e}"));
        times.push(started.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / u32::try_from(rounds).unwrap_or(1);
    let p99 = times[(rounds * 99 / 100).min(rounds - 1)];
    println!(
        "  {label:<44} mean {:>8.3} ms  p99 {:>8.3} ms  ({rounds} rounds, {} parameters)",
        mean.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        names.len()
    );
}

fn codec_speed() {
    let mut pdu = Vec::new();
    encode_answer(
        0x03,
        &Ok(Response::ReadHoldingRegisters((0..125).collect())),
        &mut pdu,
    );
    let mut frame = Vec::new();
    rtu::encode_frame(1, &pdu, &mut frame);
    let frames = 200_000;
    let mut stream = Vec::with_capacity(frame.len());
    let mut decoder = RtuDecoder::new(Direction::Response);
    let started = Instant::now();
    let mut decoded = 0;
    // As the driver sees them: one answer in the buffer at a time.
    for _ in 0..frames {
        stream.extend_from_slice(&frame);
        while decoder.decode(&mut stream).is_some() {
            decoded += 1;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(decoded, frames);
    println!(
        "RTU codec: {:.0} ns per 125-register response frame ({} frames)",
        elapsed.as_nanos() as f64 / f64::from(frames),
        frames
    );
}

async fn firmware_transfer(profile: &Arc<Profile>) {
    let device = simulate(profile, 1);
    let server = TcpServer::bind(
        "127.0.0.1:0".parse().expect("address"),
        vec![Arc::new(device) as Arc<dyn Unit>],
    )
    .expect("server");
    let link = attach(profile, format!("tcp://{}?unit=1", server.local_addr())).await;
    let Some(target) = link.firmware() else {
        println!("firmware: the demo controller declares no firmware target");
        return;
    };
    let mut bytes = b"SIMFW:9.9.9\n".to_vec();
    bytes.extend((0..(512 * 1024u32)).map(|i| (i % 253) as u8));
    let image = FirmwareImage {
        sha256: Sha256::digest(&bytes).into(),
        bytes: bytes.into(),
        version: "9.9.9".into(),
        download_url: None,
    };
    let started = Instant::now();
    let outcome = target
        .stage(&image, 0, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let elapsed = started.elapsed();
    println!(
        "firmware by file records over loopback TCP: {} KiB in {:.2} s = {:.0} KiB/s (verified on device: {})",
        outcome.transferred / 1024,
        elapsed.as_secs_f64(),
        outcome.transferred as f64 / 1024.0 / elapsed.as_secs_f64(),
        outcome.verified_on_device
    );
}

fn main() {
    coalescing();
    codec_speed();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let all = profiles();
        let controller = all
            .iter()
            .find(|(f, _)| f == "iotmc-demo-controller.toml")
            .map(|(_, p)| Arc::clone(p))
            .expect("demo controller profile");
        let meter = all
            .iter()
            .find(|(f, _)| f == "eastron-sdm120.toml")
            .map(|(_, p)| Arc::clone(p))
            .expect("SDM120 profile");
        println!("poll round (read every readable parameter), simulator:");
        let server = TcpServer::bind(
            "127.0.0.1:0".parse().expect("address"),
            vec![Arc::new(simulate(&controller, 1)) as Arc<dyn Unit>],
        )
        .expect("server");
        let link = attach(&controller, format!("tcp://{}?unit=1", server.local_addr())).await;
        poll_rounds(
            "demo controller, Modbus TCP over loopback",
            &link,
            &controller.readable_parameters(),
            2000,
        )
        .await;
        let (master, path) = open_pty().expect("pty");
        let _rtu = RtuServer::spawn(
            master,
            vec![Arc::new(simulate(&meter, 5)) as Arc<dyn Unit>],
            rtu::frame_silence(9600, 10),
        );
        let link = attach(&meter, format!("rtu://{path}?baud=9600&parity=none&unit=5")).await;
        poll_rounds(
            "SDM120, Modbus RTU over a pty (t3.5 at 9600)",
            &link,
            &meter.readable_parameters(),
            200,
        )
        .await;
        firmware_transfer(&controller).await;
    });
}
