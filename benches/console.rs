//! The console's browse queries: `cargo bench --bench console`.
//!
//! A broker child (librdkafka's mock cluster in its own process) holds BENCH_RECORDS (default
//! 1,000,000) JSON records of about 90 bytes on 32 partitions. `runner serve` (release) answers:
//! 1. newest 100 over every partition, no filter, and with a filter (min and median of 5, ms);
//! 2. a filter scan of every record (no match, so all are read and decoded): records/s and
//!    CPU µs per record of the runner process, beside `kcat -C -e` consuming the same records.

#[path = "support/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 32;
const TOPIC: &str = "big";

fn main() {
    if std::env::var("BENCH_CHILD").as_deref() == Ok("broker") {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let kafka = runner::embedded::EmbeddedKafka::start().unwrap();
        kafka.create_topic(TOPIC, PARTITIONS).unwrap();
        let (server, _) = fixtures::registry(&rt);
        fixtures::serve(&kafka, &server);
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let records: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (mut broker, bootstrap, _) = fixtures::spawn_broker();
    let loaded = Instant::now();
    let per = records / PARTITIONS as usize;
    let all = (0..PARTITIONS).flat_map(|p| {
        (0..per).map(move |i| runner::embedded::Record {
            partition: Some(p),
            key: Some(format!("ACC{:06}", i % 50_000).into_bytes()),
            value: Some(
                format!(
                    r#"{{"id":{i},"account":"ACC{:06}","amount":{:.2},"status":"NEW","city":"city{}"}}"#,
                    i % 50_000,
                    (i % 10_000) as f64 / 7.0,
                    i % 500
                )
                .into_bytes(),
            ),
            timestamp: None,
        })
    });
    runner::embedded::produce(&bootstrap, TOPIC, all).unwrap();
    let total = per * PARTITIONS as usize;
    println!(
        "loaded {total} records on {PARTITIONS} partitions in {:.1} s",
        loaded.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("connections.json"),
        serde_json::json!({"bootstrap_servers": bootstrap}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("topics.json"),
        serde_json::json!([{"topic": TOPIC, "format": "json"}]).to_string(),
    )
    .unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(["--config-dir", &dir.path().to_string_lossy()])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(serve.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(url) = line.strip_prefix("console on ") {
            break url.trim_end_matches('/').to_string();
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let get = |query: &str| -> (f64, serde_json::Value) {
        let url = format!("{base}/api/topics/{TOPIC}/messages?{query}");
        let started = Instant::now();
        let body = rt.block_on(async {
            client
                .get(&url)
                .timeout(Duration::from_secs(600))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        let seconds = started.elapsed().as_secs_f64();
        let done = body
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v.get("done").cloned())
            .unwrap_or_else(|| panic!("no done line: {}", &body[..body.len().min(500)]));
        (seconds, done)
    };
    let cpu = |pid: u32| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    };

    println!("\n| query | min ms | median ms | records read | returned |");
    println!("|---|---|---|---|---|");
    for (name, query) in [
        ("newest 100, no filter", "seek=newest&limit=100"),
        (
            "newest 100, value contains",
            "seek=newest&limit=100&value=city7",
        ),
        (
            "newest 100, CEL",
            "seek=newest&limit=100&expr=value.amount+%3E+1000.0",
        ),
    ] {
        let mut times = Vec::new();
        let mut last = serde_json::Value::Null;
        for _ in 0..5 {
            let (s, done) = get(query);
            times.push(s * 1000.0);
            last = done;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.0} | {:.0} | {} | {} |",
            times[0], times[2], last["scanned"], last["returned"]
        );
    }

    println!("\n| scan of every record | seconds | records/s | runner CPU µs/record |");
    println!("|---|---|---|---|");
    let cap = format!("&max_scan={total}&max_seconds=300");
    for (name, query) in [
        (
            "CEL `value.amount < 0.0` (no match)",
            "seek=oldest&limit=100&expr=value.amount+%3C+0.0",
        ),
        (
            "value contains `nowhere` (no match)",
            "seek=oldest&limit=100&value=nowhere",
        ),
        (
            "key equals (no match)",
            "seek=oldest&limit=100&key=none&key_op=equals",
        ),
    ] {
        let before = cpu(serve.id());
        let (s, done) = get(&format!("{query}{cap}"));
        let used = cpu(serve.id()) - before;
        let scanned = done["scanned"].as_f64().unwrap();
        println!(
            "| {name} | {s:.2} | {:.0} | {:.2} |",
            scanned / s,
            used / scanned * 1e6
        );
    }
    for (name, isolation) in [
        ("", "read_uncommitted"),
        (", read_committed", "read_committed"),
    ] {
        let started = Instant::now();
        let Ok(out) = Command::new("kcat")
            .args([
                "-C",
                "-b",
                &bootstrap,
                "-t",
                TOPIC,
                "-e",
                "-q",
                "-o",
                "beginning",
                "-f",
                "%o\n",
            ])
            .args(["-X", &format!("isolation.level={isolation}")])
            .stderr(Stdio::null())
            .output()
        else {
            println!("| kcat is missing (apt-get install kcat) | | | |");
            break;
        };
        let s = started.elapsed().as_secs_f64();
        let n = out.stdout.iter().filter(|b| **b == b'\n').count();
        println!(
            "| kcat -C -e{name} (bare consume, no decode) | {s:.2} | {:.0} | - |",
            n as f64 / s
        );
    }
    let _ = serve.kill();
    let _ = serve.wait();
    drop(broker.stdin.take());
    let _ = broker.wait();
}
