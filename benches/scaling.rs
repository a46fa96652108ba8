//! How wall time, CPU and memory of `runner once` grow with the range, the topic count and the
//! partition count: `cargo bench --bench scaling`, then `python3 benches/plot_scaling.py`.
//!
//! A child process runs the mock cluster (so the broker does not share runner's process) and
//! loads Avro records (Schema Registry framing, the 20-field schema of the pipeline bench):
//! - records: 100k to SCALING_MAX_RECORDS (default 10M), 25,000 records a partition (the mock
//!   cluster keeps about 5 MB a partition);
//! - topics: 1 to 200 topics of 4 partitions and 20,000 records each;
//! - partitions: one topic of 200,000 records over 8 to 1,000 partitions (fewer partitions
//!   would need more than the mock cluster keeps of a partition).
//!
//! Each point is one `runner once` process: wall seconds, CPU seconds (wait4) and peak RSS
//! (VmHWM), reported only if its files hold every record. The rows also go to `target/scaling.csv` for the plot. SCALING_SERIES (e.g.
//! `records`) measures some series only; SCALING_KAFKA_PROPERTIES passes librdkafka settings.

#[allow(dead_code)]
#[path = "support/fixtures.rs"]
mod fixtures;

use std::path::Path;
use std::process::{Command, Stdio};

const PER_PARTITION: usize = 25_000;

/// (series, x, topics, partitions per topic, records per partition)
fn points(max_records: usize) -> Vec<(&'static str, usize, usize, usize, usize)> {
    let mut points = Vec::new();
    for n in [100_000, 300_000, 1_000_000, 3_000_000, 10_000_000] {
        if n <= max_records {
            points.push(("records", n, 1, n.div_ceil(PER_PARTITION).max(4), 0));
        }
    }
    for t in [1, 10, 50, 200] {
        points.push(("topics", t, t, 4, 5_000));
    }
    // From 8: one partition of the mock cluster keeps about 33,000 of these records.
    for p in [8, 32, 100, 1000] {
        points.push(("partitions", p, 1, p, 200_000 / p));
    }
    // e.g. SCALING_SERIES=records to measure one series.
    let wanted = std::env::var("SCALING_SERIES").unwrap_or_default();
    points
        .into_iter()
        .filter(|p| wanted.is_empty() || wanted.split(',').any(|w| w == p.0))
        .map(|(series, x, topics, partitions, per)| {
            let per = if per == 0 { x / partitions } else { per };
            (series, x, topics, partitions, per)
        })
        .collect()
}

fn topic_name(series: &str, x: usize, t: usize) -> String {
    format!("{series}-{x}-{t}")
}

fn main() {
    let max: usize = std::env::var("SCALING_MAX_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    if std::env::var("BENCH_CHILD").as_deref() == Ok("broker") {
        broker(max);
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (mut child, bootstrap, registry) = fixtures::spawn_broker();
    let (bootstrap, registry) = (bootstrap.as_str(), registry.as_str());
    let mut csv = String::from("series,x,records,seconds,cpu_seconds,peak_rss_mb\n");
    println!("| series | x | records | seconds | CPU s | peak RSS |\n|---|---|---|---|---|---|");
    for (series, x, topics, partitions, per) in points(max) {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<_> = (0..topics)
            .map(|t| serde_json::json!({"topic": topic_name(series, x, t), "format": "avro"}))
            .collect();
        let mut connections = serde_json::json!({
            "bootstrap_servers": bootstrap, "schema_registry_url": registry, "storage_url": "out"
        });
        // e.g. SCALING_KAFKA_PROPERTIES='{"queued.min.messages": "10000"}' to try settings.
        if let Ok(props) = std::env::var("SCALING_KAFKA_PROPERTIES") {
            connections["kafka_properties"] = serde_json::from_str(&props).unwrap();
        }
        std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
        std::fs::write(
            dir.path().join("topics.json"),
            serde_json::Value::from(entries).to_string(),
        )
        .unwrap();
        let fixtures::Measured {
            seconds,
            cpu,
            peak_kb,
        } = measure(dir.path());
        let records = topics * partitions * per;
        let written = fixtures::parquet_rows(dir.path());
        assert_eq!(
            written, records as u64,
            "{series} {x}: {written} of {records} rows written"
        );
        let rss = peak_kb as f64 / 1024.0;
        println!("| {series} | {x} | {records} | {seconds:.2} | {cpu:.2} | {rss:.1} MB |");
        csv.push_str(&format!(
            "{series},{x},{records},{seconds:.3},{cpu:.3},{rss:.1}\n"
        ));
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scaling.csv");
    std::fs::write(&out, csv).unwrap();
    println!("\nwrote {}", out.display());
    drop(child.stdin.take());
    let _ = child.wait();
}

/// `runner once` over every topic of the folder.
fn measure(dir: &Path) -> fixtures::Measured {
    fixtures::measure(
        Command::new(env!("CARGO_BIN_EXE_runner"))
            .args([
                "--config-dir",
                &dir.to_string_lossy(),
                "--progress",
                "off",
                "once",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
}

fn broker(max: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kafka = runner::embedded::EmbeddedKafka::start().unwrap();
    let (server, registry) = fixtures::registry(&rt);
    let values = fixtures::Values::new(&registry, "scaling-value");
    let body: Vec<Vec<u8>> = (0..1000).map(|i| values.encode("avro", i)).collect();
    for (series, x, topics, partitions, per) in points(max) {
        for t in 0..topics {
            let topic = topic_name(series, x, t);
            kafka.create_topic(&topic, partitions as i32).unwrap();
            let records = (0..partitions * per).map(|i| runner::embedded::Record {
                partition: Some((i % partitions) as i32),
                key: None,
                value: Some(body[i % body.len()].clone()),
                timestamp: None,
            });
            kafka.produce(&topic, records).unwrap();
        }
        eprintln!("loaded {series} {x}");
    }
    fixtures::serve(&kafka, &server);
}
