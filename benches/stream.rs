//! Stream jobs: `cargo bench --bench stream`.
//!
//! The broker is librdkafka's mock cluster in this process; runner and the baseline run as
//! their own processes. BENCH_RECORDS (default 100,000) JSON records of about 200 bytes on 6
//! partitions, then:
//! - bare: this binary as a child that consumes them and produces each to another topic with
//!   plain librdkafka (the ceiling of consume + produce);
//! - forward: `runner continuous` with a stream job that sends every record to an output
//!   topic, at least once and exactly once (transactions every 500 ms);
//! - join: the records split over two topics by id, joined pairwise;
//! - command hook: BENCH_HOOK_RECORDS (default 20,000) through a Python `process()` via the
//!   adapter, one record per request and 100 per request.
//!
//! Each row: records/s until the last output is in the topic, CPU µs per record (the
//! process's user + system time), peak RSS, and the ratio to bare.

use runner::embedded::{EmbeddedKafka, Record};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

const PARTITIONS: i32 = 6;

fn main() {
    if std::env::var("BENCH_CHILD").as_deref() == Ok("bare") {
        return bare_child();
    }
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let records = env("BENCH_RECORDS", 100_000);
    let hook_records = env("BENCH_HOOK_RECORDS", 20_000);
    let kafka = EmbeddedKafka::start().unwrap();
    for topic in ["in", "left", "right", "hook-in"] {
        kafka.create_topic(topic, PARTITIONS).unwrap();
    }
    kafka
        .produce("in", (0..records).map(|i| record(i, "in")))
        .unwrap();
    let half = records / 2;
    kafka
        .produce("left", (0..half).map(|i| record(i, "left")))
        .unwrap();
    kafka
        .produce("right", (0..half).map(|i| record(i, "right")))
        .unwrap();
    kafka
        .produce("hook-in", (0..hook_records).map(|i| record(i, "hook")))
        .unwrap();

    println!("| what | records | records/s | CPU µs/record | peak RSS | of bare |");
    println!("|---|---|---|---|---|---|");
    kafka.create_topic("bare-out", PARTITIONS).unwrap();
    let bare = {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env("BENCH_CHILD", "bare")
            .env("BENCH_BOOTSTRAP", kafka.bootstrap_servers())
            .env("BENCH_RECORDS", records.to_string());
        let m = fixtures::measure(&mut cmd);
        assert_eq!(count(&kafka, "bare-out"), records as i64);
        row(
            "bare consume + produce (librdkafka)",
            records,
            m.seconds,
            m.cpu,
            m.peak_kb,
            None,
        )
    };
    let forward = |delivery: &str| {
        json!({"kind": "stream", "topics": ["in"], "stream": {
            "outputs": [{"topic": "out", "key": "string(value.id)"}], "delivery": delivery}})
    };
    run(
        &kafka,
        "forward at least once",
        forward("at_least_once"),
        records,
        Some(bare),
    );
    run(
        &kafka,
        "forward exactly once",
        forward("exactly_once"),
        records,
        Some(bare),
    );
    let join = json!({"kind": "stream", "topics": ["left", "right"], "stream": {
        "join": {"by": "key", "timeout_seconds": 600, "changelog_topic": "changelog"},
        "outputs": [{"topic": "out"}], "delivery": "at_least_once"}});
    kafka.create_topic("changelog", PARTITIONS).unwrap();
    run(
        &kafka,
        "join of two topics (input records)",
        join,
        half * 2,
        Some(bare),
    );
    let hooks = tempfile::tempdir().unwrap();
    std::fs::write(
        hooks.path().join("passthrough.py"),
        "def process(message, name):\n    return message\n",
    )
    .unwrap();
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/runner_adapter.py");
    for batch in [1, 100] {
        let job = json!({"kind": "stream", "topics": ["hook-in"], "stream": {
            "process": {"command": {"command": ["python3", adapter, "passthrough"], "batch_size": batch,
                "env": {"PYTHONPATH": hooks.path()}}},
            "outputs": [{"topic": "out"}], "delivery": "at_least_once"}});
        let name = format!("command hook (Python), {batch} per request");
        run(&kafka, &name, job, hook_records, None);
    }
}

fn record(i: usize, side: &str) -> Record {
    let value = json!({"id": i, "side": side, "account": format!("acc-{:05}", i % 5000),
        "amount": (i % 997) as f64 * 1.25, "currency": "EUR", "note": "x".repeat(60)});
    Record {
        key: Some(format!("id-{i}").into_bytes()),
        value: Some(value.to_string().into_bytes()),
        ..Record::default()
    }
}

/// Records written to every partition of `topic`: the high watermarks, since the mock
/// cluster drops the oldest segments of a partition past about 5 MB.
fn count(kafka: &EmbeddedKafka, topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .create()
        .unwrap();
    (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_or(0, |(_, hi)| hi)
        })
        .sum()
}

/// Runs `job` as `runner continuous` until `expected` records are in a fresh `out` topic.
fn run(
    kafka: &EmbeddedKafka,
    name: &str,
    job: serde_json::Value,
    expected: usize,
    bare: Option<f64>,
) {
    let out = format!("out-{}", uuid::Uuid::new_v4().simple());
    kafka.create_topic(&out, PARTITIONS).unwrap();
    let mut text = job
        .to_string()
        .replace("\"topic\":\"out\"", &format!("\"topic\":\"{out}\""));
    text = text.replace("\"changelog\"", &format!("\"{out}-changelog\""));
    if text.contains(&format!("{out}-changelog")) {
        kafka
            .create_topic(&format!("{out}-changelog"), PARTITIONS)
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let topics: Vec<_> = ["in", "left", "right", "hook-in"]
        .iter()
        .map(|t| json!({"topic": t, "format": "json"}))
        .collect();
    std::fs::write(dir.path().join("topics.json"), json!(topics).to_string()).unwrap();
    std::fs::write(
        dir.path().join("connections.json"),
        json!({"bootstrap_servers": kafka.bootstrap_servers()}).to_string(),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("jobs")).unwrap();
    let mut job: serde_json::Value = serde_json::from_str(&text).unwrap();
    job["continuous"] = json!({"group_id": out, "status_interval_seconds": 5});
    std::fs::write(dir.path().join("jobs/bench.json"), job.to_string()).unwrap();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_runner"))
        .args([
            "--config-dir",
            &dir.path().to_string_lossy(),
            "continuous",
            "--job",
            "bench",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("runner.log")).unwrap())
        .spawn()
        .unwrap();
    let outputs = if name.starts_with("join") {
        expected / 2
    } else {
        expected
    } as i64;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut peak = 0;
    while count(kafka, &out) < outputs {
        assert!(
            Instant::now() < deadline,
            "{name}: {} of {outputs} outputs; runner's log: {}",
            count(kafka, &out),
            std::fs::read_to_string(dir.path().join("runner.log")).unwrap_or_default()
        );
        peak = peak.max(usage(child.id()).1);
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (cpu, hwm) = usage(child.id());
    terminate(child);
    row(name, expected, seconds, cpu, peak.max(hwm), bare);
}

fn row(name: &str, records: usize, seconds: f64, cpu: f64, peak_kb: u64, bare: Option<f64>) -> f64 {
    let rate = records as f64 / seconds;
    let ratio = bare.map_or("-".to_string(), |b| format!("{:.2}", rate / b));
    println!(
        "| {name} | {records} | {rate:.0} | {:.1} | {:.0} MB | {ratio} |",
        cpu * 1e6 / records as f64,
        peak_kb as f64 / 1024.0
    );
    rate
}

/// CPU seconds (user + system) and peak resident KiB of a running process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    ((ticks(11) + ticks(12)) / 100.0, hwm)
}

fn terminate(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "runner continuous exited with {status}");
}

/// The baseline: consume every record of `in` and produce it to `bare-out`, then flush.
fn bare_child() {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let bootstrap = std::env::var("BENCH_BOOTSTRAP").unwrap();
    let records: usize = std::env::var("BENCH_RECORDS").unwrap().parse().unwrap();
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "bare")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["in"]).unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut seen = 0;
    while seen < records {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let mut record =
                BaseRecord::<[u8], [u8]>::to("bare-out").payload(m.payload().unwrap_or_default());
            if let Some(k) = m.key() {
                record = record.key(k);
            }
            let mut pending = record;
            while let Err((_, back)) = producer.send(pending) {
                std::thread::sleep(Duration::from_millis(1));
                pending = back;
            }
            seen += 1;
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}
