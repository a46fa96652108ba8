//! Export throughput and memory against tansu: `cargo bench --bench export`.
//!
//! Produces BENCH_RECORDS (default 1,000,000) JSON records of about 200 bytes to a 4-partition
//! topic, then measures, each in its own process so peak RSS is its own: a bare consume of the
//! same records (no decode, no write: the ceiling), `runner once` for the raw and json formats
//! to a local folder, and json to Azurite (Azure Storage's emulator) through multipart uploads.

#[path = "../tests/common/azurite.rs"]
#[allow(dead_code)]
mod azurite;
#[path = "../tests/common/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "../tests/common/tansu.rs"]
mod tansu;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::process::Command;
use std::time::{Duration, Instant};

const TOPIC: &str = "bench";
const PARTITIONS: i32 = 4;

fn main() {
    if std::env::var("BENCH_CHILD").as_deref() == Ok("consume") {
        bare_consume(&std::env::var("BENCH_BOOTSTRAP").unwrap());
        return;
    }
    // `cargo bench` passes --bench; `cargo test --all-targets` only checks that this builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let records: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = tansu::Tansu::start();
    broker.create_topic(&rt, TOPIC, PARTITIONS);
    let bootstrap = broker.bootstrap_servers();
    let started = Instant::now();
    let bytes = produce(&bootstrap, records);
    println!(
        "produced {records} records ({:.1} MB of values) to tansu in {:.1}s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let mb = bytes as f64 / 1e6;
    let (secs, rss) = measure(
        Command::new(std::env::current_exe().unwrap())
            .env("BENCH_CHILD", "consume")
            .env("BENCH_BOOTSTRAP", &bootstrap),
    );
    report("bare consume (ceiling)", records, mb, secs, rss);
    let local = serde_json::json!({"bootstrap_servers": bootstrap, "storage_url": "out"});
    for format in ["raw", "json"] {
        let (secs, rss) = runner_once(&local, format, &[]);
        report(
            &format!("runner once, format {format}"),
            records,
            mb,
            secs,
            rss,
        );
    }
    let store = azurite::Azurite::start();
    store.create_container("bench");
    let azure = serde_json::json!({
        "bootstrap_servers": bootstrap,
        "storage_url": "az://bench/kafka",
        "storage_options": {"azure_storage_use_emulator": "true"},
    });
    let env = [("AZURITE_BLOB_STORAGE_URL", store.url())];
    let (secs, rss) = runner_once(&azure, "json", &env);
    report("runner once, json, Azurite", records, mb, secs, rss);
    for format in ["raw", "json"] {
        let secs = stages_only(&rt, format, records);
        println!(
            "{:<26} {:>9.0} records/s {:>7.1} MB/s {secs:>7.2}s  (decode + write, no Kafka)",
            format!("stages only, format {format}"),
            records as f64 / secs,
            mb / secs
        );
    }
}

/// Runner's own cost: decode and write the same records from memory, one partition.
fn stages_only(rt: &tokio::runtime::Runtime, format: &str, records: usize) -> f64 {
    use arrow::array::BinaryBuilder;
    use runner::read::RawBatch;
    let dir = tempfile::tempdir().unwrap();
    let sink =
        std::sync::Arc::new(runner::sink::Sink::local(dir.path(), rt.handle().clone()).unwrap());
    let topic: runner::config::TopicConfig =
        serde_json::from_value(serde_json::json!({"topic": TOPIC, "format": format})).unwrap();
    let mut decoder = runner::decode::Decoder::new(&topic, None);
    let mut writer = runner::write::TopicWriter::new(sink.clone(), &topic, [(0, 0)].into());
    let rows = 8192;
    let started = Instant::now();
    let mut offset = 0usize;
    while offset < records {
        let n = rows.min(records - offset);
        let (mut keys, mut values) = (BinaryBuilder::new(), BinaryBuilder::new());
        for i in offset..offset + n {
            let (key, value) = record(i);
            keys.append_value(key);
            values.append_value(value);
        }
        let raw = RawBatch {
            partition: 0,
            offsets: (offset as i64..(offset + n) as i64).collect(),
            timestamps: vec![Some(1_763_800_000_000); n],
            keys: keys.finish(),
            values: values.finish(),
            next_offset: (offset + n) as i64,
            last: offset + n == records,
            types: None,
            headers: None,
        };
        let decoded = decoder.decode(&raw).unwrap();
        for sealed in writer.write(&raw, decoded, raw.last).unwrap() {
            for file in sealed.files {
                file.commit(&sink).unwrap();
            }
        }
        offset += n;
    }
    started.elapsed().as_secs_f64()
}

/// The benchmark's record `i`: an account key and a JSON value of about 200 bytes.
fn record(i: usize) -> (String, String) {
    let key = format!("ACC{:05}", i % 10_000);
    let value = format!(
        r#"{{"id":{i},"account":"{key}","amount":{}.{:02},"currency":"EUR","ts":"2026-11-22T10:00:00Z","note":"{}"}}"#,
        i % 5_000,
        i % 100,
        "x".repeat(90)
    );
    (key, value)
}

/// `runner once` of the bench topic in its own process with these connections.
fn runner_once(
    connections: &serde_json::Value,
    format: &str,
    env: &[(&str, String)],
) -> (f64, i64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
    let sink = if env.is_empty() { "local" } else { "azure" };
    let group = format!("bench-{format}-{sink}");
    let topics = serde_json::json!([{"topic": TOPIC, "group_id": group, "format": format}]);
    std::fs::write(dir.path().join("topics.json"), topics.to_string()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runner"));
    cmd.args(["--config-dir", &dir.path().to_string_lossy(), "once"])
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)));
    measure(&mut cmd)
}

fn report(name: &str, records: usize, mb: f64, secs: f64, rss_kb: i64) {
    println!(
        "{name:<26} {:>9.0} records/s {:>7.1} MB/s {:>7.2}s  peak RSS {:>6.1} MB",
        records as f64 / secs,
        mb / secs,
        secs,
        rss_kb as f64 / 1024.0
    );
}

/// Runs a child to completion; returns its wall time and its own peak RSS in KiB. The peak is
/// the child's VmHWM (getrusage would count the forked copy of this process too).
fn measure(cmd: &mut Command) -> (f64, i64) {
    let started = Instant::now();
    let mut child = cmd.stdout(std::process::Stdio::null()).spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "child failed: {status}");
            break;
        }
        // VmHWM is itself a high-water mark, so the last read before exit is the peak.
        let hwm = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        });
        peak_kb = peak_kb.max(hwm.unwrap_or(0));
        std::thread::sleep(Duration::from_millis(5));
    }
    (started.elapsed().as_secs_f64(), peak_kb)
}

fn produce(bootstrap: &str, records: usize) -> usize {
    let mut bytes = 0;
    let values = (0..records).map(|i| {
        let (key, value) = record(i);
        bytes += value.len();
        runner::embedded::Record {
            partition: Some((i % PARTITIONS as usize) as i32),
            key: Some(key.into_bytes()),
            value: Some(value.into_bytes()),
            timestamp: None,
        }
    });
    runner::embedded::produce(bootstrap, TOPIC, values).unwrap();
    bytes
}

/// Reads every record once with the same consumer settings and no other work.
fn bare_consume(bootstrap: &str) {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-bare")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
            .unwrap();
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
        ends.push(high);
    }
    consumer.assign(&tpl).unwrap();
    let mut left: usize = ends.iter().filter(|e| **e > 0).count();
    let mut bytes = 0usize;
    while left > 0 {
        if let Some(Ok(msg)) = consumer.poll(Duration::from_secs(5)) {
            bytes += msg.payload().map_or(0, <[u8]>::len);
            if msg.offset() + 1 == ends[msg.partition() as usize] {
                left -= 1;
            }
        }
    }
    println!("{bytes}");
}
