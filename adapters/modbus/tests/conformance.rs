//! The adapter contract's conformance kit, run through the Modbus adapter against simulated
//! devices over Modbus TCP (loopback, port 0) and Modbus RTU (a pty pair).
#![cfg(feature = "sim")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::testkit::{Conformance, FirmwareFixture};
use iotmc_adapter::{Adapter, DeviceBinding, FirmwareImage, Profile};
use iotmc_adapter_modbus::ModbusAdapter;
use iotmc_adapter_modbus::profile::load_section;
use iotmc_adapter_modbus::sim::{RtuServer, SimDevice, SimIdentity, TcpServer, Unit, open_pty};
use sha2::{Digest, Sha256};

fn profile(file: &str) -> Arc<Profile> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/modbus")
        .join(file);
    Arc::new(Profile::load(&path).unwrap_or_else(|e| panic!("{file}: {e:?}")))
}

fn simulate(profile: &Arc<Profile>, unit: u8) -> SimDevice {
    let section = load_section(profile).unwrap_or_else(|e| panic!("{e:?}"));
    SimDevice::new(
        Arc::clone(profile),
        section,
        unit,
        SimIdentity {
            vendor: "iotmc".into(),
            product_code: "DC-1".into(),
            revision: "1.0".into(),
            model_name: "Demo Controller".into(),
            serial: Some("SIM-0001".into()),
        },
    )
    .with_reboot_time(Duration::from_millis(300))
}

/// A simulated firmware image of `version`, 5000 bytes so it spans several record writes.
fn image(version: &str) -> FirmwareImage {
    let mut bytes = format!("SIMFW:{version}\n").into_bytes();
    bytes.extend((0..5000u32).map(|i| (i % 251) as u8));
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    FirmwareImage {
        bytes: bytes.into(),
        sha256,
        version: version.to_owned(),
        download_url: None,
    }
}

async fn attach(profile: &Arc<Profile>, address: String) -> Arc<dyn iotmc_adapter::DeviceLink> {
    let adapter = ModbusAdapter::new();
    adapter
        .attach(&DeviceBinding {
            device_id: "dut".into(),
            profile: Arc::clone(profile),
            address,
        })
        .await
        .unwrap_or_else(|e| panic!("attach: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_controller_over_modbus_tcp_should_pass_the_conformance_kit() {
    let profile = profile("iotmc-demo-controller.toml");
    let device = simulate(&profile, 1);
    let server = TcpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        vec![Arc::new(device.clone()) as Arc<dyn Unit>],
    )
    .unwrap();
    let link = attach(&profile, format!("tcp://{}?unit=1", server.local_addr())).await;
    let report = Conformance::new(link, Arc::clone(&profile), &device)
        .with_firmware(FirmwareFixture {
            first: image("2.0.0"),
            second: image("3.0.0"),
        })
        .run()
        .await;
    println!("{report}");
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn energy_meter_over_modbus_rtu_should_pass_the_conformance_kit() {
    let profile = profile("eastron-sdm120.toml");
    let device = simulate(&profile, 5);
    let (master, path) = open_pty().unwrap();
    let _server = RtuServer::spawn(
        master,
        vec![Arc::new(device.clone()) as Arc<dyn Unit>],
        Duration::from_micros(1750),
    );
    let link = attach(
        &profile,
        format!("rtu://{path}?baud=9600&parity=none&unit=5"),
    )
    .await;
    let report = Conformance::new(link, Arc::clone(&profile), &device)
        .run()
        .await;
    println!("{report}");
    report.assert_passed();
}
