//! Stream jobs as real `runner continuous` processes on the mock cluster (which supports
//! transactions): joins by id across restarts and workers, header-typed decoding, and
//! processing hooks. Outputs are read back with a plain read_committed librdkafka consumer.

mod common;

use common::*;
use runner::embedded::{EmbeddedKafka, Record};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A `runner continuous --job <job>` process logging to `<dir>/<name>.log`.
struct Runner {
    child: Child,
    log: PathBuf,
}

impl Runner {
    fn start(dir: &Path, job: &str, name: &str) -> Runner {
        let log = dir.join(format!("{name}.log"));
        let child = runner_command(dir)
            .args(["continuous", "--job", job])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Runner { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_assigned(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log().contains("partitions assigned") {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "runner exited: {}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "not assigned in 60s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.log()
    }

    fn terminate(mut self) -> (Option<i32>, String) {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        (status.code(), self.log())
    }
}

/// A config folder for `kafka` with JSON `topics` (created with `partitions` each, plus
/// `others`), and `jobs/<name>.json` = `job`.
fn setup(
    kafka: &EmbeddedKafka,
    topics: Value,
    partitions: i32,
    others: &[&str],
    name: &str,
    job: Value,
) -> tempfile::TempDir {
    for t in topics.as_array().unwrap() {
        kafka
            .create_topic(t["topic"].as_str().unwrap(), partitions)
            .unwrap();
    }
    for t in others {
        kafka.create_topic(t, partitions).unwrap();
    }
    let dir = config_for(kafka, topics);
    let connections = json!({
        "bootstrap_servers": kafka.bootstrap_servers(),
        "kafka_properties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
    });
    std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
    std::fs::create_dir(dir.path().join("jobs")).unwrap();
    std::fs::write(
        dir.path().join(format!("jobs/{name}.json")),
        job.to_string(),
    )
    .unwrap();
    dir
}

fn keyed(id: &str, value: Value) -> Record {
    Record {
        key: Some(id.as_bytes().to_vec()),
        value: Some(value.to_string().into_bytes()),
        ..Record::default()
    }
}

/// Every committed record of `topic` as (key, JSON value), read until `expected` arrive and
/// then a little longer to catch duplicates; panics after 60 s without them.
fn read_committed(bootstrap: &str, topic: &str, expected: usize) -> Vec<(String, Value)> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("check-{topic}-{}", uuid::Uuid::new_v4()),
        )
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_until: Option<Instant> = None;
    loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let value =
                serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or(Value::Null);
            seen.push((key, value));
        }
        if seen.len() >= expected {
            // Anything extra (a duplicate) would arrive with the rest: wait 2 s more.
            let until = *quiet_until.get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
            if Instant::now() > until {
                return seen;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} of {expected} records on {topic} in 60s: {seen:?}",
            seen.len()
        );
    }
}

fn join_job(delivery: &str) -> Value {
    json!({
        "kind": "stream",
        "topics": ["orders", "payments", "shipments"],
        "continuous": {"status_interval_seconds": 1},
        "stream": {
            "join": {"by": "key", "timeout_seconds": 25, "dead_letter_topic": "incomplete"},
            "select": {"order": "value.id", "amount": "value.payments.amount", "carrier": "value.shipments.carrier"},
            "outputs": [{"topic": "paid", "key": "string(value.order)"}],
            "delivery": delivery,
            "commit_interval_ms": 200
        }
    })
}

fn join_topics() -> Value {
    json!([
        {"topic": "orders", "format": "json"},
        {"topic": "payments", "format": "json"},
        {"topic": "shipments", "format": "json"}
    ])
}

fn produce_group(kafka: &EmbeddedKafka, id: usize, topics: &[&str]) {
    let key = format!("o{id}");
    for t in topics {
        let value = match *t {
            "orders" => json!({"item": "book"}),
            "payments" => json!({"amount": id}),
            _ => json!({"carrier": "dhl"}),
        };
        kafka.produce(t, [keyed(&key, value)]).unwrap();
    }
}

/// Complete groups, groups completed after a SIGKILL and restart (their first members come
/// back from the changelog), and groups that never complete: each complete group is in `paid`
/// once, each incomplete one in `incomplete` after the timeout, with the members it had.
/// At least once (the mock cluster does not store transactional offsets): the kill comes
/// after a commit, so nothing is repeated.
#[test]
fn a_join_emits_each_complete_group_once_across_a_kill() {
    let kafka = EmbeddedKafka::start().unwrap();
    let dir = setup(
        &kafka,
        join_topics(),
        3,
        &["paid", "incomplete", "runner.stream.paid-join-changelog"],
        "paid",
        join_job("at_least_once"),
    );
    let mut first = Runner::start(dir.path(), "paid", "first");
    first.wait_assigned();
    let all = ["orders", "payments", "shipments"];
    for id in 0..40 {
        produce_group(&kafka, id, &all);
    }
    // Groups 40..60 get two members now and their third after the restart; 60..70 never.
    for id in 40..70 {
        produce_group(&kafka, id, &all[..2]);
    }
    let before = read_committed(&kafka.bootstrap_servers(), "paid", 40);
    assert_eq!(before.len(), 40);
    let log = first.kill();
    assert!(log.contains("stream member started"), "{log}");
    let mut second = Runner::start(dir.path(), "paid", "second");
    second.wait_assigned();
    for id in 40..60 {
        produce_group(&kafka, id, &all[2..]);
    }
    let paid = read_committed(&kafka.bootstrap_servers(), "paid", 60);
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (key, value) in &paid {
        *count.entry(key.clone()).or_default() += 1;
        assert_eq!(value["carrier"], "dhl", "{value}");
        assert_eq!(format!("o{}", value["amount"]), *key, "{value}");
    }
    let expected: BTreeMap<String, usize> = (0..60).map(|i| (format!("o{i}"), 1)).collect();
    assert_eq!(
        count,
        expected,
        "every complete group exactly once; {}",
        second.log()
    );
    let incomplete = read_committed(&kafka.bootstrap_servers(), "incomplete", 10);
    let ids: std::collections::BTreeSet<String> =
        incomplete.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(ids, (60..70).map(|i| format!("o{i}")).collect());
    for (_, v) in &incomplete {
        assert_eq!(v["members"].as_object().unwrap().len(), 2, "{v}");
        assert!(
            v["reason"].as_str().unwrap().contains("join timeout"),
            "{v}"
        );
    }
    let (code, log) = second.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// Exactly once: outputs and offsets go through Kafka transactions (init, begin, send
/// offsets, commit), and a read_committed reader sees every output once.
#[test]
fn exactly_once_mode_commits_outputs_in_transactions() {
    let kafka = EmbeddedKafka::start().unwrap();
    let job = json!({
        "kind": "stream",
        "topics": ["orders"],
        "stream": {
            "filter": "value.amount >= 10",
            "select": {"id": "key", "cents": "value.amount * 100"},
            "outputs": [
                {"topic": "big", "key": "value.id", "when": "value.cents >= 5000"},
                {"topic": "small", "key": "value.id", "when": "value.cents < 5000"}
            ],
            "commit_interval_ms": 100
        }
    });
    let dir = setup(
        &kafka,
        json!([{"topic": "orders", "format": "json"}]),
        2,
        &["big", "small"],
        "route",
        job,
    );
    let mut runner = Runner::start(dir.path(), "route", "route");
    runner.wait_assigned();
    let records = (0..100).map(|i| keyed(&format!("k{i}"), json!({"amount": i})));
    kafka.produce("orders", records).unwrap();
    let big = read_committed(&kafka.bootstrap_servers(), "big", 50);
    let small = read_committed(&kafka.bootstrap_servers(), "small", 40);
    let keys = |v: &[(String, Value)]| {
        v.iter()
            .map(|(k, _)| k.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(big.len(), 50);
    assert_eq!(keys(&big), (50..100).map(|i| format!("k{i}")).collect());
    assert_eq!(small.len(), 40, "amounts 10..50, the filter drops 0..10");
    assert_eq!(small[0].1["cents"].as_i64().unwrap() % 100, 0);
    let (code, log) = runner.terminate();
    assert_eq!(code, Some(0), "{log}");
}
