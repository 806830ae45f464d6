//! Figures for the MQTT adapter, printed (run with
//! `cargo bench -p iotmc-adapter-mqtt --features sim`): the memory a Tasmota link costs, the
//! driver's MQTT 5 request/response round trip and acknowledged publishes, publish throughput,
//! a Tasmota read, a Homie write the device confirms, and a chunked firmware transfer.
//!
//! All over loopback and the embedded broker (rumqttd, on its own threads), with the simulated
//! devices and the gateway's side on one 2-thread runtime, so the latencies are those of the
//! whole chain. The memory figure is taken in fresh processes: once with the broker and the
//! plugs in a child process (the gateway's own cost), once with everything in one process.

use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::{
    Adapter, DeviceBinding, DeviceLink, FirmwareImage, LinkError, Profile, Readings, Value,
};
use iotmc_adapter_mqtt::driver::{BrokerHandle, Request};
use iotmc_adapter_mqtt::frame::Outgoing;
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::generic::GenericDevice;
use iotmc_adapter_mqtt::sim::homie::{HomieThermostat, ThermostatOptions};
use iotmc_adapter_mqtt::sim::tasmota::{PlugOptions, TasmotaPlug};
use iotmc_adapter_mqtt::{BrokerSettings, MqttAdapter};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Longest any setup step may take; they take milliseconds.
const DEADLINE: Duration = Duration::from_secs(30);
/// Plugs in the memory figure.
const PLUGS: usize = 200;
/// Messages in the publish throughput figure.
// Below the driver's bound on publishes waiting at once (rumqttc's request queue of 4096 plus
// 100 in flight); a larger burst fails the excess with "the connection's request queue is full".
const BURST: usize = 4_000;
/// Size of the firmware image's body (after its `SIMFW:<version>\n` header).
const IMAGE_BODY: usize = 512 * 1024;
/// Set to `plugs` or `in-process` in the child processes of the memory figure.
const CHILD: &str = "IOTMC_BENCH_CHILD";

fn profile(file: &str, edit: impl FnOnce(String) -> String) -> Arc<Profile> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/mqtt")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Arc::new(Profile::from_toml(&path, &edit(text)).unwrap_or_else(|e| panic!("{e:?}")))
}

fn settings(port: u16, client_id: &str) -> BrokerSettings {
    BrokerSettings::plain("bench", "127.0.0.1", port, client_id)
}

async fn link(adapter: &MqttAdapter, profile: &Arc<Profile>, device: &str) -> Arc<dyn DeviceLink> {
    let binding = DeviceBinding {
        device_id: device.to_owned(),
        profile: Arc::clone(profile),
        address: format!("mqtt://bench/{device}"),
    };
    adapter
        .attach(&binding)
        .await
        .unwrap_or_else(|e| panic!("attaching `{device}`: {e}"))
}

/// Retries `op` until it succeeds: the devices and the links come up asynchronously.
async fn until_ok<T, Fut>(what: &str, mut op: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Result<T, LinkError>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        match op().await {
            Ok(value) => return value,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            // Polling a device that is still coming up, within the deadline.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Times `rounds` calls of `op` (given the round's number) after `warmup` untimed ones, and
/// prints mean, p50 and p99. Returns the mean.
async fn timed<Fut>(
    label: &str,
    warmup: usize,
    rounds: usize,
    mut op: impl FnMut(usize) -> Fut,
) -> Duration
where
    Fut: Future<Output = Result<(), LinkError>>,
{
    let mut times = Vec::with_capacity(rounds);
    for i in 0..warmup + rounds {
        let started = Instant::now();
        op(i)
            .await
            .unwrap_or_else(|e| panic!("{label}, round {i}: {e}"));
        if i >= warmup {
            times.push(started.elapsed());
        }
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / u32::try_from(rounds).expect("round count");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  {label:<44} mean {:>8.3} ms  p50 {:>8.3} ms  p99 {:>8.3} ms  (n = {rounds})",
        ms(mean),
        ms(times[rounds / 2]),
        ms(times[(rounds * 99 / 100).min(rounds - 1)])
    );
    mean
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:"));
    let kib = line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
    kib.expect("VmRSS in /proc/self/status")
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Reads the plug's `power` through `link`; a value that is not a bool is an error.
async fn read_power(link: &dyn DeviceLink) -> Result<(), LinkError> {
    match link.read(&["power".to_owned()]).await?.remove("power") {
        Some(Value::Bool(_)) => Ok(()),
        other => Err(LinkError::Malformed(format!("`power` read as {other:?}"))),
    }
}

/// Starts the plugs of the memory figure and waits until they are online.
async fn plugs(broker: &EmbeddedBroker) -> Vec<TasmotaPlug> {
    let plugs: Vec<TasmotaPlug> = (0..PLUGS)
        .map(|i| {
            let mut options = PlugOptions::new(&format!("plug-{i:03}"));
            // Tasmota's default TelePeriod, so telemetry does not churn the heap meanwhile.
            options.tele_interval = Duration::from_secs(300);
            TasmotaPlug::start(broker.v311_addr(), options)
        })
        .collect();
    for plug in &plugs {
        assert!(plug.wait_online(DEADLINE).await, "a plug did not connect");
    }
    plugs
}

/// Serves the broker and the plugs of the memory figure for the parent: prints the broker's
/// MQTT 5 port, runs until stdin closes.
fn serve_plugs() {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    let runtime = runtime();
    let _plugs = runtime.block_on(plugs(&broker));
    println!("{}", broker.v5_addr().port());
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}

/// RSS and tokio tasks before and after attaching a link to each plug behind `port`.
async fn link_memory(label: &str, port: u16) {
    let profile = profile("tasmota-plug.toml", |t| t);
    let adapter = MqttAdapter::new(vec![settings(port, "gw-memory")]);
    let (rss_before, tasks_before) = (rss_kib(), alive_tasks());
    let mut links = vec![link(&adapter, &profile, "plug-000").await];
    until_ok("plug-000", || read_power(&*links[0])).await;
    let (rss_one, tasks_one) = (rss_kib(), alive_tasks());
    for i in 1..PLUGS {
        links.push(link(&adapter, &profile, &format!("plug-{i:03}")).await);
    }
    // Every link answers: its subscriptions are up and the plug's MqttLog is set.
    for (i, link) in links.iter().enumerate() {
        until_ok(&format!("plug-{i:03}"), || read_power(&**link)).await;
    }
    let (rss_all, tasks_all) = (rss_kib(), alive_tasks());
    let rest = (PLUGS - 1) as f64;
    println!(
        "  {label}: before {rss_before} KiB; first link and the driver +{} KiB, {} tasks; \
         all {PLUGS} links +{} KiB\n    per link after the first: {:.1} KiB, {:.1} tasks",
        rss_one.saturating_sub(rss_before),
        tasks_one.saturating_sub(tasks_before),
        rss_all.saturating_sub(rss_before),
        rss_all.saturating_sub(rss_one) as f64 / rest,
        tasks_all.saturating_sub(tasks_one) as f64 / rest,
    );
}

/// A device that answers every message on `bench/rpc` at once (once subscribed), as MQTT 5
/// request/response says: on the response topic, echoing the payload and correlation data.
async fn responder(addr: SocketAddr) {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let mut options = MqttOptions::new("bench-responder", "127.0.0.1", addr.port());
    // Measure the driver, not this stand-in: no Nagle delay on its answers.
    let mut network = options.network_options();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    client
        .subscribe("bench/rpc", QoS::AtLeastOnce)
        .await
        .expect("the responder's queue is open");
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(publish)) = event
                && let Some(props) = publish.properties
                && let Some(topic) = props.response_topic
            {
                let answer = PublishProperties {
                    correlation_data: props.correlation_data,
                    ..PublishProperties::default()
                };
                // From the event loop's own task: never wait on its queue.
                let sent = client.try_publish_with_properties(
                    topic,
                    QoS::AtLeastOnce,
                    false,
                    publish.payload,
                    answer,
                );
                if let Err(e) = sent {
                    eprintln!("responder: the answer was not sent: {e}");
                }
            }
        }
    });
}

async fn driver() {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    responder(broker.v5_addr()).await;
    let port = broker.v5_addr().port();
    let handle = BrokerHandle::spawn(settings(port, "gw-driver"));
    // Until the responder's subscription is up, requests go unanswered.
    until_ok("the responder", || {
        let message = Outgoing::new("bench/rpc", "hello");
        let timeout = Duration::from_millis(500);
        handle.request(Request { message, timeout })
    })
    .await;
    println!("driver (MQTT 5, loopback):");
    let handle = &handle;
    timed("request/response round trip", 20, 500, |i| async move {
        let message = Outgoing::new("bench/rpc", format!("ping {i}"));
        let answer = handle
            .request(Request {
                message,
                timeout: Duration::from_secs(5),
            })
            .await?;
        match answer.text() {
            Some(text) if text == format!("ping {i}") => Ok(()),
            other => Err(LinkError::Malformed(format!(
                "answer {other:?} to ping {i}"
            ))),
        }
    })
    .await;
    timed("QoS 1 publish until PUBACK", 200, 2000, |i| async move {
        handle
            .publish(Outgoing::new("bench/one", format!("reading {i}")))
            .await
    })
    .await;
    let mut burst = JoinSet::new();
    let started = Instant::now();
    for i in 0..BURST {
        let handle = handle.clone();
        let message = Outgoing::new("bench/burst", format!("reading {i:05}"));
        burst.spawn(async move { handle.publish(message).await });
    }
    while let Some(done) = burst.join_next().await {
        done.expect("a publish task")
            .unwrap_or_else(|e| panic!("burst publish: {e}"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  QoS 1 publish throughput, {BURST} messages of 13 bytes at once, no subscriber: \
         all acknowledged in {elapsed:.3} s = {:.0} messages/s",
        BURST as f64 / elapsed
    );
}

async fn tasmota_read() {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    let mut options = PlugOptions::new("bench-plug");
    options.tele_interval = Duration::from_secs(300);
    let plug = TasmotaPlug::start(broker.v311_addr(), options);
    assert!(plug.wait_online(DEADLINE).await, "the plug did not connect");
    let adapter = MqttAdapter::new(vec![settings(broker.v5_addr().port(), "gw-tasmota")]);
    let link = link(&adapter, &profile("tasmota-plug.toml", |t| t), "bench-plug").await;
    until_ok("the plug through the link", || read_power(&*link)).await;
    println!("device round trips through the link (gateway on MQTT 5, devices on MQTT 3.1.1):");
    let link = &*link;
    timed("Tasmota read `power` (Power1 -> RESULT)", 20, 500, |_| {
        read_power(link)
    })
    .await;
}

async fn homie_write() {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    let options = ThermostatOptions::new(broker.v311_addr(), "bench-th");
    let _thermostat = HomieThermostat::with_options(options);
    let adapter = MqttAdapter::new(vec![settings(broker.v5_addr().port(), "gw-homie")]);
    let link = link(
        &adapter,
        &profile("homie-thermostat.toml", |t| t),
        "bench-th",
    )
    .await;
    until_ok("the thermostat through the link", || link.identify()).await;
    let link = &*link;
    // Alternate between two setpoints so every write changes the value the device confirms.
    timed(
        "Homie write `setpoint` (confirmed)",
        20,
        300,
        |i| async move {
            let setpoint = if i % 2 == 0 { 20.0 } else { 21.5 };
            let values = Readings::from([("setpoint".to_owned(), Value::Float(setpoint))]);
            link.write(&values).await
        },
    )
    .await;
}

async fn firmware() {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    let _device = GenericDevice::start(broker.v5_addr(), "ahu-1")
        .await
        .expect("the generic simulator");
    let mut bytes = b"SIMFW:2.0.0\n".to_vec();
    bytes.extend((0..IMAGE_BODY).map(|i| (i % 251) as u8));
    let image = &FirmwareImage {
        sha256: Sha256::digest(&bytes).into(),
        bytes: bytes.into(),
        version: "2.0.0".into(),
        download_url: None,
    };
    let size = image.bytes.len() as u64;
    println!(
        "generic chunked firmware, {} KiB SIMFW image (stop-and-wait: a request per chunk):",
        size / 1024
    );
    // The shipped profile's chunk size first, then larger ones for comparison.
    for chunk in [4096, 16_384, 65_536] {
        let profile = profile("iotmc-mqtt5-controller.toml", |t| {
            t.replace("chunk_size = 4096", &format!("chunk_size = {chunk}"))
        });
        let client_id = format!("gw-firmware-{chunk}");
        let adapter = MqttAdapter::new(vec![settings(broker.v5_addr().port(), &client_id)]);
        let link = link(&adapter, &profile, "ahu-1").await;
        until_ok("the controller through the link", || link.identify()).await;
        let target = link
            .firmware()
            .expect("the controller has a firmware target");
        let used = target.capabilities().preferred_chunk;
        assert_eq!(used, chunk, "the link's chunk size");
        let label = format!("stage, {used} B chunks ({})", size.div_ceil(used.into()));
        let mean = timed(&label, 1, 5, |_| async move {
            let outcome = target.stage(image, 0, &|_| {}).await?;
            if outcome.transferred == size && outcome.verified_on_device {
                Ok(())
            } else {
                Err(LinkError::Malformed(format!("staged {outcome:?}")))
            }
        })
        .await;
        println!(
            "    = {:.2} MB/s ({:.0} KiB/s)",
            size as f64 / 1e6 / mean.as_secs_f64(),
            size as f64 / 1024.0 / mean.as_secs_f64()
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    match std::env::var(CHILD).as_deref() {
        Ok("plugs") => return serve_plugs(),
        Ok("in-process") => {
            let broker = EmbeddedBroker::start().expect("embedded broker");
            return runtime().block_on(async {
                let _plugs = plugs(&broker).await;
                link_memory("everything in one process", broker.v5_addr().port()).await;
            });
        }
        _ => {}
    }
    // The memory figure first, in fresh processes (freed heap would hide growth).
    let exe = std::env::current_exe().expect("this bench");
    let mut child = Command::new(&exe)
        .env(CHILD, "plugs")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child process with the broker and the plugs");
    let mut port = String::new();
    BufReader::new(child.stdout.take().expect("the child's stdout"))
        .read_line(&mut port)
        .expect("the child's broker port");
    let port = port.trim().parse().expect("the child's broker port");
    println!("memory (VmRSS of the gateway's process) of {PLUGS} Tasmota links on one driver:");
    runtime().block_on(link_memory("broker and plugs in a child process", port));
    drop(child.stdin.take());
    let _ = child.wait();
    let status = Command::new(&exe).env(CHILD, "in-process").status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "the in-process memory figure failed"
    );
    runtime().block_on(async {
        driver().await;
        tasmota_read().await;
        homie_write().await;
        firmware().await;
    });
}
