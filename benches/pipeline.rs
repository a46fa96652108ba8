//! The export pipeline against the broker's ceiling: `cargo bench --bench pipeline`.
//!
//! A child process runs librdkafka's mock cluster and the in-process Schema Registry (so the
//! broker never shares runner's process) and loads PIPELINE_RECORDS (default 300,000) records
//! of a 20-field schema into one topic per format, each of PIPELINE_PARTITIONS (default 32)
//! partitions: Avro in Schema Registry framing, Protobuf (unframed, with its .proto), the seeds'
//! Protobuf `bank.Transaction` with its nested Timestamp (`transaction`), JSON, and the JSON
//! bytes as raw. Then, per format, Debian's `kcat -C -e` reads the topic (the bare
//! consume ceiling) and `runner once --topic` exports it to zstd Parquet in a local folder,
//! each as its own process: records/s, CPU seconds per million records (user + system, from
//! wait4), peak RSS (VmHWM), and the cores the run and the broker's process kept busy together
//! (the broker's CPU from /proc: at 2.0 the machine is full). PIPELINE_FORMATS (default
//! `avro,protobuf,transaction,json,raw`) picks; PIPELINE_BASELINE=<another runner binary> adds
//! its rows, measured in the same run, and a table of CPU per record against it.
//! PIPELINE_CALLGRIND=1 adds a table of the instructions of each process (kcat's and runner's,
//! once each under `valgrind --tool=callgrind`, with the ratio to the baseline), which repeat
//! from run to run where times drift. A timed run counts only if kcat printed every record's
//! offset and runner's files hold every record; `tests/run.sh` runs this at 2,000 records a
//! format as a smoke test.

#[allow(dead_code)]
#[path = "support/fixtures.rs"]
mod fixtures;

use std::path::Path;
use std::process::{Command, Stdio};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    if std::env::var("BENCH_CHILD").as_deref() == Ok("broker") {
        broker();
        return;
    }
    // `cargo bench` passes --bench; `cargo test --all-targets` only checks that this builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let records: usize = env("PIPELINE_RECORDS", "300000").parse().unwrap();
    let formats = env("PIPELINE_FORMATS", "avro,protobuf,transaction,json,raw");
    if Command::new("kcat").arg("-V").output().is_err() {
        eprintln!("kcat is missing: install it with `apt-get install -y kcat` (Debian's package)");
        std::process::exit(2);
    }
    let callgrind = std::env::var("PIPELINE_CALLGRIND").is_ok_and(|v| v == "1");
    if callgrind && Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("valgrind is missing: install it with `apt-get install -y valgrind`");
        std::process::exit(2);
    }
    let (mut child, bootstrap, registry) = fixtures::spawn_broker();
    let (bootstrap, registry) = (bootstrap.as_str(), registry.as_str());
    let broker = child.id();
    println!(
        "{records} records per topic, {} partitions, broker {bootstrap} (its own process)\n",
        env("PIPELINE_PARTITIONS", "32")
    );
    println!(
        "| format | what | records/s | of kcat | CPU s per million records | cores busy | with the broker | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let runs: usize = env("PIPELINE_RUNS", "3").parse().unwrap();
    let baseline = std::env::var("PIPELINE_BASELINE").ok();
    let mut group = 0;
    let mut against = Vec::new();
    for format in formats.split(',') {
        let topic = format!("bench-{format}");
        let (mut ceiling, mut current, mut before) = (Vec::new(), Vec::new(), Vec::new());
        // Interleaved, so that the machine's drift hits every row alike; medians reported.
        for _ in 0..runs {
            ceiling.push(with_broker(broker, || consume(bootstrap, &topic, records)));
            group += 1;
            current.push(with_broker(broker, || {
                export(
                    env!("CARGO_BIN_EXE_runner"),
                    bootstrap,
                    registry,
                    format,
                    group,
                    records,
                )
            }));
            if let Some(binary) = &baseline {
                group += 1;
                before.push(with_broker(broker, || {
                    export(binary, bootstrap, registry, format, group, records)
                }));
            }
        }
        if !before.is_empty() {
            against.push((format, median_cpu(&current), median_cpu(&before)));
        }
        let ceiling = median(ceiling);
        row(format, "kcat -C -e (ceiling)", records, &ceiling, &ceiling);
        row(format, "runner once", records, &median(current), &ceiling);
        if !before.is_empty() {
            row(
                format,
                "baseline runner once",
                records,
                &median(before),
                &ceiling,
            );
        }
    }
    if !against.is_empty() {
        let each = if runs == 1 {
            "one run".to_string()
        } else {
            format!("medians of {runs} runs")
        };
        println!("\nCPU per record against the baseline ({each} each):\n");
        println!("| format | runner µs of CPU a record | baseline | runner / baseline |");
        println!("|---|---|---|---|");
        let per = |s: f64| s / records as f64 * 1e6;
        for (format, cpu, base) in against {
            println!(
                "| {format} | {:.2} | {:.2} | {:.2} |",
                per(cpu),
                per(base),
                cpu / base
            );
        }
    }
    if callgrind {
        println!("\n| format | what | instructions | per record |");
        println!("|---|---|---|---|");
        let mut builds = vec![("runner once", env!("CARGO_BIN_EXE_runner").to_string())];
        builds.extend(baseline.map(|b| ("baseline runner once", b)));
        for format in formats.split(',') {
            let topic = format!("bench-{format}");
            let count = instructions(&mut kcat(bootstrap, &topic));
            count_row(format, "kcat -C -e (ceiling)", records, count);
            let mut counts = Vec::new();
            for (what, binary) in &builds {
                group += 1;
                let dir = tempfile::tempdir().unwrap();
                config(dir.path(), bootstrap, registry, format, group);
                let count = instructions(&mut runner(binary, dir.path()));
                count_row(format, what, records, count);
                counts.push(count);
            }
            if let [Some(now), Some(base)] = counts[..] {
                println!(
                    "| {format} | runner / baseline | | {:.2} |",
                    now as f64 / base as f64
                );
            }
        }
    }
    drop(child.stdin.take());
    let _ = child.wait();
}

/// The instructions a command runs under callgrind (the `Collected` line of its report).
fn instructions(cmd: &mut Command) -> Option<u64> {
    let dir = tempfile::tempdir().ok()?;
    let out = dir.path().join("callgrind.out");
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(Stdio::null())
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().find(|l| l.contains("Collected :"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

fn count_row(format: &str, what: &str, records: usize, count: Option<u64>) {
    match count {
        Some(n) => println!(
            "| {format} | {what} | {:.0} M | {:.0} |",
            n as f64 / 1e6,
            n as f64 / records as f64
        ),
        None => println!("| {format} | {what} | (callgrind gave no count) | |"),
    }
}

/// `runner once` of `binary` over one format's topic, as a new group into a new folder.
fn export(
    binary: &str,
    bootstrap: &str,
    registry: &str,
    format: &str,
    group: usize,
    records: usize,
) -> fixtures::Measured {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), bootstrap, registry, format, group);
    let measured = fixtures::measure(&mut runner(binary, dir.path()));
    let written = fixtures::parquet_rows(dir.path());
    assert_eq!(
        written, records as u64,
        "{binary} wrote {written} of {records} {format} rows"
    );
    measured
}

/// kcat's consume of the whole topic, measured; it must print every record's offset.
fn consume(bootstrap: &str, topic: &str, records: usize) -> fixtures::Measured {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = kcat(bootstrap, topic);
    cmd.stdout(file.reopen().unwrap());
    let measured = fixtures::measure(&mut cmd);
    let read = std::fs::read(file.path()).unwrap();
    let lines = read.iter().filter(|b| **b == b'\n').count();
    assert_eq!(
        lines, records,
        "kcat read {lines} of {records} records of {topic}"
    );
    measured
}

/// A bare consume of the whole topic: the ceiling.
fn kcat(bootstrap: &str, topic: &str) -> Command {
    let mut cmd = Command::new("kcat");
    cmd.args([
        "-C",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
    ])
    .args(["-f", "%o\n"])
    .stdout(Stdio::null());
    cmd
}

/// `runner once` of `binary` with the configuration in `dir`.
fn runner(binary: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(["--config-dir", &dir.to_string_lossy()])
        .args(["--progress", "off", "once"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    cmd
}

/// A measured run and the CPU seconds the broker's process spent meanwhile.
struct Run {
    measured: fixtures::Measured,
    broker_cpu: f64,
}

fn with_broker(broker: u32, run: impl FnOnce() -> fixtures::Measured) -> Run {
    let before = cpu_seconds(broker);
    let measured = run();
    Run {
        measured,
        broker_cpu: cpu_seconds(broker) - before,
    }
}

/// User plus system CPU seconds of a running process (fields 14 and 15 of /proc/PID/stat,
/// counted after the command name, which may hold spaces).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_second
}

/// The median of the runs' CPU seconds (of all runs, not of the median wall time's run).
fn median_cpu(runs: &[Run]) -> f64 {
    let mut cpu: Vec<f64> = runs.iter().map(|r| r.measured.cpu).collect();
    cpu.sort_by(f64::total_cmp);
    cpu[cpu.len() / 2]
}

/// The run with the median wall time.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.measured.seconds.total_cmp(&b.measured.seconds));
    runs.swap_remove(runs.len() / 2)
}

/// Writes connections.json and topics.json for one format's topic, read by a new group.
fn config(dir: &Path, bootstrap: &str, registry: &str, format: &str, group: usize) {
    let connections = serde_json::json!({
        "bootstrap_servers": bootstrap, "schema_registry_url": registry, "storage_url": "out"
    });
    let topic = format!("bench-{format}");
    let mut entry =
        serde_json::json!({"topic": topic, "format": format, "group_id": format!("bench-{group}")});
    if format == "protobuf" {
        std::fs::write(dir.join("payment.proto"), fixtures::PROTO).unwrap();
        entry["schema_file"] = "payment.proto".into();
        entry["message"] = "Payment".into();
    }
    if format == "transaction" {
        entry["format"] = "protobuf".into();
        entry["schema_file"] = fixtures::TRANSACTION_PROTO.into();
        entry["message"] = "bank.Transaction".into();
    }
    std::fs::write(dir.join("connections.json"), connections.to_string()).unwrap();
    std::fs::write(
        dir.join("topics.json"),
        serde_json::json!([entry]).to_string(),
    )
    .unwrap();
}

fn row(format: &str, what: &str, records: usize, run: &Run, ceiling: &Run) {
    let m = &run.measured;
    println!(
        "| {format} | {what} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} MB |",
        records as f64 / m.seconds,
        ceiling.measured.seconds / m.seconds,
        m.cpu / (records as f64 / 1e6),
        m.cpu / m.seconds,
        (m.cpu + run.broker_cpu) / m.seconds,
        m.peak_kb as f64 / 1024.0
    );
}

/// The broker process: mock cluster and registry, one loaded topic per format; runs until its
/// stdin closes.
fn broker() {
    let records: usize = env("PIPELINE_RECORDS", "300000").parse().unwrap();
    let partitions: i32 = env("PIPELINE_PARTITIONS", "32").parse().unwrap();
    let formats = env("PIPELINE_FORMATS", "avro,protobuf,transaction,json,raw");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kafka = runner::embedded::EmbeddedKafka::start().unwrap();
    let (server, registry) = fixtures::registry(&rt);
    let values = fixtures::Values::new(&registry, "bench-avro-value");
    for format in formats.split(',') {
        let topic = format!("bench-{format}");
        kafka.create_topic(&topic, partitions).unwrap();
        let batch = (0..records).map(|i| runner::embedded::Record {
            partition: Some(i as i32 % partitions),
            key: Some(format!("ACC{:06}", i % 50_000).into_bytes()),
            value: Some(values.encode(format, i)),
            timestamp: Some(1_795_384_800_000 + i as i64),
        });
        kafka.produce(&topic, batch).unwrap();
        eprintln!("loaded {records} {format} records into {topic}");
    }
    fixtures::serve(&kafka, &server);
}
