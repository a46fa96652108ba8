//! Continuous jobs: `cargo bench --bench continuous`.
//!
//! The broker is librdkafka's mock cluster in this process; runner runs as its own process.
//! 1. Throughput: BENCH_RECORDS (default 120,000: the mock cluster keeps about 5 MB a
//!    partition) JSON records on 6 partitions, exported once
//!    by `runner once` and once by `runner continuous` (another group, files sealed by age
//!    within 2 s), each to its own folder, until every record is recorded: records/s, CPU
//!    seconds and peak RSS of the runner process.
//! 2. Delay: records produced at BENCH_RATE per second (default 2,000) for 30 s to a continuous
//!    job with `max_file_age_seconds` 1; per record, the time from its produce timestamp to the
//!    moment its file is visible: p50, p99, max.
//! 3. Soak: BENCH_SOAK_SECONDS (default 600) at BENCH_RATE; RSS sampled every 10 s must stay
//!    flat, and every record is exported once at the end.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use runner::embedded::{EmbeddedKafka, Record};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PARTITIONS: i32 = 6;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` only checks that this builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let records = env("BENCH_RECORDS", 120_000) as usize;
    let rate = env("BENCH_RATE", 2_000);
    let soak = env("BENCH_SOAK_SECONDS", 600);
    let kafka = EmbeddedKafka::start().unwrap();
    throughput(&kafka, records);
    delay(&kafka, rate, 30);
    if soak > 0 {
        soak_rss(&kafka, rate, soak);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn record(partition: i32, seq: usize) -> Record {
    let value = serde_json::json!({
        "seq": seq, "account": format!("ACC{:04}", seq % 20), "amount": seq as f64 / 4.0,
        "channel": "web", "note": "a record of about two hundred bytes, as the export bench has",
    });
    Record {
        partition: Some(partition),
        key: Some(format!("k{seq}").into_bytes()),
        value: Some(value.to_string().into_bytes()),
        timestamp: Some(now_ms()),
    }
}

/// A config folder for `topic` with a continuous job `live` (group `group`) and its output.
fn config(kafka: &EmbeddedKafka, topic: &str, group: &str, max_file_age: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, value: serde_json::Value| {
        std::fs::write(dir.path().join(name), value.to_string()).unwrap()
    };
    write(
        "connections.json",
        serde_json::json!({"bootstrap_servers": kafka.bootstrap_servers(), "storage_url": "out"}),
    );
    write(
        "topics.json",
        serde_json::json!([{"topic": topic, "format": "json", "group_id": "batch"}]),
    );
    std::fs::create_dir(dir.path().join("jobs")).unwrap();
    write(
        "jobs/live.json",
        serde_json::json!({"schedule": "continuous", "topics": [topic],
            "continuous": {"max_file_age_seconds": max_file_age, "group_id": group}}),
    );
    dir
}

fn runner(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(["--config-dir", &dir.to_string_lossy(), "--progress", "off"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// CPU seconds (user + system) and resident KiB (now, peak) of a running process.
fn usage(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which ends with ')': utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (cpu, kb("VmRSS:"), kb("VmHWM:"))
}

/// Offsets the progress record of `group` has covered, over every partition.
fn recorded(dir: &Path, group: &str, topic: &str) -> i64 {
    let path = dir.join(format!("out/_runner/progress/{group}/{topic}.json"));
    let record: serde_json::Value = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    (0..PARTITIONS)
        .map(|p| {
            record["partitions"][p.to_string()]["next_offset"]
                .as_i64()
                .unwrap_or(0)
        })
        .sum()
}

fn terminate(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "runner continuous exited with {status}");
}

fn throughput(kafka: &EmbeddedKafka, records: usize) {
    let topic = "throughput";
    kafka.create_topic(topic, PARTITIONS).unwrap();
    let started = Instant::now();
    let batch = (0..records).map(|i| record(i as i32 % PARTITIONS, i));
    kafka.produce(topic, batch).unwrap();
    println!(
        "produced {records} records in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!("| run | records/s | CPU s per million records | peak RSS |\n|---|---|---|---|");

    // Each run writes to its own folder: the same file names would overwrite each other.
    let dir = config(kafka, topic, "continuous", 300);
    let started = Instant::now();
    let mut once = runner(dir.path(), &["once", "--topic", topic]);
    let (mut cpu, mut peak) = (0.0, 0);
    let status = loop {
        if let Some(status) = once.try_wait().unwrap() {
            break status;
        }
        let (c, _, hwm) = usage(once.id());
        (cpu, peak) = (c.max(cpu), hwm.max(peak));
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "runner once failed");
    // Every record must still be in the topic: the mock cluster keeps about 5 MB a partition.
    assert_eq!(recorded(dir.path(), "batch", topic), records as i64);
    let exported: usize = files_rows(&dir.path().join("out").join(topic));
    assert_eq!(
        exported, records,
        "records lost to the mock cluster's retention: lower BENCH_RECORDS"
    );
    row("runner once (batch)", records, started.elapsed(), cpu, peak);

    // Files sealed by age within 2 s: the tail of the range is recorded that long after it
    // is read, which the figure includes.
    let dir = config(kafka, topic, "continuous", 2);
    let started = Instant::now();
    let child = runner(dir.path(), &["continuous", "--job", "live"]);
    let (mut cpu, mut peak) = (0.0, 0);
    while recorded(dir.path(), "continuous", topic) < records as i64 {
        let (c, _, hwm) = usage(child.id());
        (cpu, peak) = (c.max(cpu), hwm.max(peak));
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "continuous did not finish"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let (c, _, hwm) = usage(child.id());
    row(
        "runner continuous (to caught up)",
        records,
        elapsed,
        c.max(cpu),
        hwm.max(peak),
    );
    terminate(child);
}

fn row(name: &str, records: usize, elapsed: Duration, cpu: f64, peak_kb: u64) {
    let secs = elapsed.as_secs_f64();
    println!(
        "| {name} | {:.0} | {:.2} | {:.1} MB |",
        records as f64 / secs,
        cpu / (records as f64 / 1e6),
        peak_kb as f64 / 1024.0
    );
}

/// Produces `rate` records per second for `seconds` (in steps of 100 ms) on a thread.
fn producer(
    bootstrap: String,
    topic: &'static str,
    rate: u64,
    seconds: u64,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let per_step = (rate / 10).max(1) as usize;
        let started = Instant::now();
        let mut sent = 0;
        for step in 0..seconds * 10 {
            let batch = (0..per_step).map(|i| record(((sent + i) % 6) as i32, sent + i));
            runner::embedded::produce(&bootstrap, topic, batch).unwrap();
            sent += per_step;
            let next = Duration::from_millis((step + 1) * 100);
            if let Some(wait) = next.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        sent
    })
}

fn parquet_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            parquet_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            into.push(path);
        }
    }
}

/// Rows in every Parquet file under a folder.
fn files_rows(folder: &Path) -> usize {
    let mut files = Vec::new();
    parquet_files(folder, &mut files);
    files.iter().map(|f| timestamps(f).len()).sum()
}

/// The Kafka timestamps (ms) of a file's records.
fn timestamps(file: &Path) -> Vec<i64> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column_by_name("kafka_timestamp").unwrap();
        let cast = arrow::compute::cast(column, &arrow::datatypes::DataType::Int64).unwrap();
        out.extend(cast.as_primitive::<Int64Type>().iter().flatten());
    }
    out
}

fn delay(kafka: &EmbeddedKafka, rate: u64, seconds: u64) {
    let topic = "delay";
    kafka.create_topic(topic, PARTITIONS).unwrap();
    let dir = config(kafka, topic, "delay", 1);
    let child = runner(dir.path(), &["continuous", "--job", "live"]);
    // One record first: the clock starts once the member has joined the group and exported it.
    kafka.produce(topic, [record(0, 0)]).unwrap();
    let joined = Instant::now();
    while recorded(dir.path(), "delay", topic) < 1 {
        assert!(
            joined.elapsed() < Duration::from_secs(60),
            "the member never joined"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let start_ms = now_ms();
    let sending = producer(kafka.bootstrap_servers(), topic, rate, seconds);
    let folder = dir.path().join("out").join(topic);
    let mut seen = BTreeSet::new();
    let mut delays = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds + 60);
    let mut total = None;
    while Instant::now() < deadline {
        let mut files = Vec::new();
        parquet_files(&folder, &mut files);
        let visible = now_ms();
        for file in files.into_iter().filter(|f| seen.insert(f.clone())) {
            let measured = timestamps(&file).into_iter().filter(|ts| *ts >= start_ms);
            delays.extend(measured.map(|ts| visible - ts));
        }
        if total.is_none() && sending.is_finished() {
            total = Some(0);
        }
        if let Some(t) = total.as_mut() {
            *t = recorded(dir.path(), "delay", topic);
        }
        if total.is_some_and(|t| t as usize > (rate as usize / 10).max(1) * seconds as usize * 10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = sending.join().unwrap();
    terminate(child);
    delays.sort_unstable();
    let at = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    println!(
        "\ndelay from produce to a visible file, {rate} records/s for {seconds}s ({sent} records, {} seen), max_file_age_seconds 1: p50 {} ms, p99 {} ms, max {} ms",
        delays.len(),
        at(0.5),
        at(0.99),
        delays.last().copied().unwrap_or(0)
    );
}

fn soak_rss(kafka: &EmbeddedKafka, rate: u64, seconds: u64) {
    let topic = "soak";
    kafka.create_topic(topic, PARTITIONS).unwrap();
    let dir = config(kafka, topic, "soak", 10);
    let child = runner(dir.path(), &["continuous", "--job", "live"]);
    let sending = producer(kafka.bootstrap_servers(), topic, rate, seconds);
    let started = Instant::now();
    let mut samples = Vec::new();
    while !sending.is_finished() {
        std::thread::sleep(Duration::from_secs(10));
        let (_, rss, _) = usage(child.id());
        samples.push((started.elapsed().as_secs(), rss));
        println!(
            "soak t={}s rss={:.1} MB",
            started.elapsed().as_secs(),
            rss as f64 / 1024.0
        );
    }
    let sent = sending.join().unwrap() as i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while recorded(dir.path(), "soak", topic) < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let done = recorded(dir.path(), "soak", topic);
    terminate(child);
    let rss: Vec<u64> = samples.iter().map(|s| s.1).collect();
    let tail = &rss[rss.len() / 2..];
    println!(
        "\nsoak: {seconds}s at {rate} records/s, {sent} produced, {done} recorded; RSS min {:.1} MB, max {:.1} MB, first half max {:.1} MB, second half max {:.1} MB",
        *rss.iter().min().unwrap_or(&0) as f64 / 1024.0,
        *rss.iter().max().unwrap_or(&0) as f64 / 1024.0,
        rss[..rss.len() / 2].iter().max().copied().unwrap_or(0) as f64 / 1024.0,
        tail.iter().max().copied().unwrap_or(0) as f64 / 1024.0,
    );
}
