//! The crash campaign: `runner once` processes killed with SIGKILL at random moments while new
//! records keep arriving, then one run to the end; every file is read back and every offset
//! must be there exactly once. `bash tests/campaign.sh` runs it with 100 kills per scenario
//! and prints the table; the regular suite runs CAMPAIGN_KILLS (default 10) per scenario.

mod common;

use common::*;
use runner::embedded::EmbeddedKafka;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

struct Scenario {
    name: &'static str,
    topic: serde_json::Value,
    partitions: i32,
    /// Records produced to each partition before each killed run.
    per_round: usize,
    fault: Fault,
}

/// What the broker does to each killed run, through librdkafka's mock cluster fault API.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Fetch, ListOffsets and OffsetCommit answer NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT
    /// or drop the connection a few times, and every request takes 20 ms more.
    RequestErrors,
    /// The broker goes down at a random moment of the run and comes back at another.
    BrokerDown,
}

impl Fault {
    fn before_run(self, kafka: &EmbeddedKafka) {
        use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
        if self != Fault::RequestErrors {
            return;
        }
        let errors = [
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT,
        ];
        for key in [
            RDKafkaApiKey::Fetch,
            RDKafkaApiKey::ListOffsets,
            RDKafkaApiKey::OffsetCommit,
        ] {
            kafka.cluster().request_errors(key, &errors);
        }
        let _ = kafka
            .cluster()
            .broker_round_trip_time(1, Duration::from_millis(20));
    }

    fn during_run(self, kafka: &EmbeddedKafka, moments: &mut Moments, window: Duration) {
        if self == Fault::BrokerDown {
            std::thread::sleep(moments.next(window / 2));
            let _ = kafka.cluster().broker_down(1);
            std::thread::sleep(moments.next(window / 2));
            let _ = kafka.cluster().broker_up(1);
        }
    }

    fn clear(self, kafka: &EmbeddedKafka) {
        use rdkafka::types::RDKafkaApiKey;
        for key in [
            RDKafkaApiKey::Fetch,
            RDKafkaApiKey::ListOffsets,
            RDKafkaApiKey::OffsetCommit,
        ] {
            kafka.cluster().clear_request_errors(key);
        }
        let _ = kafka.cluster().broker_round_trip_time(1, Duration::ZERO);
        let _ = kafka.cluster().broker_up(1);
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "export json, 4 partitions, a file every 50 records",
            topic: serde_json::json!({"topic": "small-files", "format": "json",
                "max_records_per_file": 50}),
            partitions: 4,
            per_round: 300,
            fault: Fault::None,
        },
        Scenario {
            name: "export raw, 16 partitions, one file per partition and run",
            topic: serde_json::json!({"topic": "wide", "format": "raw"}),
            partitions: 16,
            per_round: 200,
            fault: Fault::None,
        },
        Scenario {
            name: "export json, hourly folders by record time",
            topic: serde_json::json!({"topic": "by-hour", "format": "json",
                "path_template": "{topic}/date={yyyy}-{MM}-{dd}/hour={HH}"}),
            partitions: 2,
            per_round: 500,
            fault: Fault::None,
        },
        Scenario {
            name: "export json, broker request errors and 20 ms round trips",
            topic: serde_json::json!({"topic": "errors", "format": "json",
                "max_records_per_file": 100}),
            partitions: 4,
            per_round: 300,
            fault: Fault::RequestErrors,
        },
        Scenario {
            name: "export json, the broker down and back during each run",
            topic: serde_json::json!({"topic": "outage", "format": "json",
                "max_records_per_file": 100}),
            partitions: 4,
            per_round: 300,
            fault: Fault::BrokerDown,
        },
    ]
}

/// A small deterministic generator, so a failing campaign can be replayed with its seed.
struct Moments(u64);

impl Moments {
    fn next(&mut self, below: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        below.mul_f64((self.0 % 10_000) as f64 / 10_000.0)
    }
}

struct Outcome {
    kills: usize,
    /// Runs that ended by themselves with an error before their kill (a clear failure).
    failed: usize,
    checked: usize,
    lost: usize,
    duplicated: usize,
}

fn run_scenario(s: &Scenario, kills: usize, seed: u64) -> Outcome {
    let kafka = EmbeddedKafka::start().unwrap();
    let topic = s.topic["topic"].as_str().unwrap().to_string();
    kafka.create_topic(&topic, s.partitions).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let connections =
        serde_json::json!({"bootstrap_servers": kafka.bootstrap_servers(), "storage_url": "out"});
    write_config(dir.path(), connections, serde_json::json!([s.topic]));
    let mut produced: BTreeMap<i32, usize> = BTreeMap::new();
    let mut produce = |count: usize| {
        for p in 0..s.partitions {
            let first = produced.entry(p).or_default();
            kafka.produce(&topic, numbered(p, *first, count)).unwrap();
            *first += count;
        }
    };
    let once = || {
        let mut cmd = runner_command(dir.path());
        cmd.arg("once").stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    };
    // How long a run takes here sets the window the kill moments are drawn from.
    produce(s.per_round);
    let started = Instant::now();
    assert!(once().status().unwrap().success(), "{}: first run", s.name);
    let window = started.elapsed().mul_f64(1.5);
    let mut moments = Moments(seed);
    let (mut hit, mut failed) = (0, 0);
    for _ in 0..kills {
        produce(s.per_round);
        s.fault.before_run(&kafka);
        let mut child = once().spawn().unwrap();
        s.fault.during_run(&kafka, &mut moments, window);
        std::thread::sleep(moments.next(window));
        match child.try_wait().unwrap() {
            None => hit += 1,
            Some(status) if !status.success() => failed += 1,
            Some(_) => {}
        }
        let _ = child.kill();
        child.wait().unwrap();
    }
    s.fault.clear(&kafka);
    // The last run must finish whatever the kills and faults left, within the lock's rules.
    let last = once().output().unwrap();
    assert!(
        last.status.success(),
        "{}: the run after the kills failed",
        s.name
    );

    let rows = exported(&dir.path().join("out"), &topic);
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for row in &rows {
        *seen.entry(*row).or_default() += 1;
    }
    let expected: usize = produced.values().sum();
    let lost = produced
        .iter()
        .flat_map(|(p, n)| (0..*n as i64).map(move |o| (*p, o)))
        .filter(|k| !seen.contains_key(k))
        .count();
    let duplicated = seen.values().map(|n| n - 1).sum::<usize>();
    assert!(seen.len() <= expected, "{}: offsets never produced", s.name);
    Outcome {
        kills: hit,
        failed,
        checked: rows.len(),
        lost,
        duplicated,
    }
}

#[test]
fn random_sigkills_while_records_arrive_never_lose_or_duplicate_a_record() {
    let kills: usize = std::env::var("CAMPAIGN_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("CAMPAIGN_SEED")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(0x5eed_cafe);
    println!("seed {seed}, {kills} kills per scenario");
    println!(
        "| scenario | SIGKILLs that hit a running process | runs that failed by themselves | records checked | lost | duplicated | outcome |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for s in scenarios() {
        let o = run_scenario(&s, kills, seed);
        let ok = o.lost == 0 && o.duplicated == 0;
        println!(
            "| {} | {} of {kills} | {} | {} | {} | {} | {} |",
            s.name,
            o.kills,
            o.failed,
            o.checked,
            o.lost,
            o.duplicated,
            if ok { "exact" } else { "FAILED" }
        );
        if !ok {
            failures.push(s.name);
        }
    }
    assert!(
        failures.is_empty(),
        "records lost or duplicated: {failures:?}"
    );
}

#[test]
fn moments_cover_the_whole_window() {
    let mut m = Moments(42);
    let window = Duration::from_secs(1);
    let draws: Vec<_> = (0..1000).map(|_| m.next(window)).collect();
    assert!(draws.iter().all(|d| *d < window));
    assert!(draws.iter().any(|d| *d < window / 10));
    assert!(draws.iter().any(|d| *d > window * 9 / 10));
}
