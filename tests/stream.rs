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

/// A test that fails mid-way must not leave its runner behind.
impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// A plain librdkafka consumer of `topic` from the start, in a group of its own, that sees
/// committed transactions only.
fn committed_reader(bootstrap: &str, topic: &str) -> rdkafka::consumer::BaseConsumer {
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
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
    consumer
}

/// Every committed record of `topic` as (key, JSON value), read until `expected` arrive and
/// then a little longer to catch duplicates; panics after 60 s without them.
fn read_committed(bootstrap: &str, topic: &str, expected: usize) -> Vec<(String, Value)> {
    use rdkafka::Message;
    let consumer = committed_reader(bootstrap, topic);
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

/// A local HTTP server for the hooks: `/analyze` answers `{"sentiment": "positive"}`;
/// `/enrich` answers by the body's `kind`: `ok` 200, `flaky` 500 on its first call then 200,
/// `bad` 400.
fn serve(rt: &tokio::runtime::Runtime) -> String {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/analyze",
            post(|body: String| async move {
                let text = serde_json::from_str::<Value>(&body).unwrap()["text"].clone();
                axum::Json(json!({"sentiment": "positive", "analyzed": text}))
            }),
        )
        .route(
            "/enrich",
            post(
                |State(seen): State<Arc<Mutex<std::collections::HashSet<String>>>>,
                 body: String| async move {
                    let value: Value = serde_json::from_str(&body).unwrap();
                    let id = value["id"].to_string();
                    match value["kind"].as_str() {
                        Some("bad") => (StatusCode::BAD_REQUEST, "no such customer".to_string()),
                        Some("flaky") if seen.lock().unwrap().insert(id) => {
                            (StatusCode::INTERNAL_SERVER_ERROR, "try again".to_string())
                        }
                        _ => (StatusCode::OK, json!({"enriched": true}).to_string()),
                    }
                },
            ),
        )
        .with_state(seen);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python")
}

/// Seed 002 end to end: two topics joined by id, its `process()` (which calls an HTTP API)
/// through the adapter in batches, and the result forwarded.
#[test]
fn seed_002_process_runs_through_the_python_adapter() {
    let rt = runtime();
    let api = serve(&rt);
    let kafka = EmbeddedKafka::start().unwrap();
    let adapter = examples().join("runner_adapter.py");
    let job = json!({
        "kind": "stream",
        "topics": ["texts", "meta"],
        "stream": {
            "join": {"by": "key", "timeout_seconds": 60, "changelog_topic": "seed-changelog"},
            "process": {"command": {
                "command": ["python3", adapter.to_string_lossy(), "worker"],
                "batch_size": 5,
                "env": {"PYTHONPATH": examples().to_string_lossy(), "ANALYZE_URL": format!("{api}/analyze")}
            }},
            "outputs": [{"topic": "enriched", "key": "value.id"}],
            "delivery": "at_least_once",
            "commit_interval_ms": 100
        }
    });
    let topics = json!([{"topic": "texts", "format": "json"}, {"topic": "meta", "format": "json"}]);
    let dir = setup(
        &kafka,
        topics,
        2,
        &["enriched", "seed-changelog"],
        "seed",
        job,
    );
    let mut runner = Runner::start(dir.path(), "seed", "seed");
    runner.wait_assigned();
    for i in 0..12 {
        let id = format!("m{i}");
        kafka
            .produce("texts", [keyed(&id, json!({"text": format!("hello {i}")}))])
            .unwrap();
        kafka
            .produce("meta", [keyed(&id, json!({"lang": "en"}))])
            .unwrap();
    }
    let out = read_committed(&kafka.bootstrap_servers(), "enriched", 12);
    assert_eq!(out.len(), 12, "{}", runner.log());
    for (key, value) in &out {
        let content = &value["content"];
        assert_eq!(content["sentiment"], "positive", "{value}");
        assert_eq!(content["lang"], "en", "{value}");
        assert_eq!(content["analyzed"], content["text"], "{value}");
        assert_eq!(value["id"].as_str(), Some(key.as_str()));
    }
    let (code, log) = runner.terminate();
    assert_eq!(code, Some(0), "{log}");
}

fn hook_job(command: &[&str], extra: Value) -> Value {
    let mut process = json!({"command": command, "timeout_seconds": 2, "max_restarts": 2});
    process
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({
        "kind": "stream",
        "topics": ["in"],
        "stream": {
            "process": {"command": process},
            "outputs": [{"topic": "out"}],
            "delivery": "at_least_once",
            "commit_interval_ms": 100
        }
    })
}

/// A hook that crashes once is restarted and the request sent again: nothing is lost.
#[test]
fn a_crashing_hook_is_restarted_and_nothing_is_lost() {
    let kafka = EmbeddedKafka::start().unwrap();
    let marker = tempfile::tempdir().unwrap();
    let script = format!(
        r#"
import json, os, sys
marker = {:?}
for line in sys.stdin:
    record = json.loads(line)
    if record["value"]["n"] == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        sys.exit(1)
    print(json.dumps({{"n": record["value"]["n"], "seen": True}}), flush=True)
"#,
        marker.path().join("crashed").to_string_lossy()
    );
    let job = hook_job(&["python3", "-c", &script], json!({}));
    let dir = setup(
        &kafka,
        json!([{"topic": "in", "format": "json"}]),
        1,
        &["out"],
        "hook",
        job,
    );
    let mut runner = Runner::start(dir.path(), "hook", "hook");
    runner.wait_assigned();
    kafka
        .produce("in", (0..8).map(|n| keyed("k", json!({"n": n}))))
        .unwrap();
    let out = read_committed(&kafka.bootstrap_servers(), "out", 8);
    let ns: Vec<i64> = out.iter().map(|(_, v)| v["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, (0..8).collect::<Vec<_>>(), "{}", runner.log());
    assert!(
        runner
            .log()
            .contains("processing hook failed; restarting it")
    );
    let (code, log) = runner.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// A hook that hangs is killed at its timeout and restarted; after max_restarts in a row the
/// job stops with an error naming the hook, and commits nothing past the record.
#[test]
fn a_hanging_hook_fails_the_job_after_its_restarts() {
    let kafka = EmbeddedKafka::start().unwrap();
    let script = r#"
import json, sys, time
for line in sys.stdin:
    if json.loads(line)["value"]["n"] == 2:
        time.sleep(1000)
    print(line.strip() and json.dumps(json.loads(line)["value"]), flush=True)
"#;
    let job = hook_job(&["python3", "-c", script], json!({}));
    let dir = setup(
        &kafka,
        json!([{"topic": "in", "format": "json"}]),
        1,
        &["out"],
        "hang",
        job,
    );
    let mut runner = Runner::start(dir.path(), "hang", "hang");
    runner.wait_assigned();
    kafka
        .produce("in", (0..4).map(|n| keyed("k", json!({"n": n}))))
        .unwrap();
    let status = runner.child.wait().unwrap();
    let log = runner.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("failed 3 times in a row (max_restarts 2); last: no reply within 2s"),
        "{log}"
    );
}

/// The HTTP hook merges replies, retries a 500 and dead-letters a 400 with the reason.
#[test]
fn the_http_hook_merges_retries_and_dead_letters() {
    let rt = runtime();
    let api = serve(&rt);
    let kafka = EmbeddedKafka::start().unwrap();
    let job = json!({
        "kind": "stream",
        "topics": ["in"],
        "stream": {
            "process": {"http": {"url": format!("{api}/enrich"), "concurrency": 3, "retries": 3}},
            "outputs": [{"topic": "out", "key": "string(value.id)"}],
            "dead_letter_topic": "dlq",
            "delivery": "at_least_once",
            "commit_interval_ms": 100
        }
    });
    let dir = setup(
        &kafka,
        json!([{"topic": "in", "format": "json"}]),
        2,
        &["out", "dlq"],
        "http",
        job,
    );
    let mut runner = Runner::start(dir.path(), "http", "http");
    runner.wait_assigned();
    let kinds = ["ok", "flaky", "bad", "ok", "flaky", "ok"];
    let records = kinds
        .iter()
        .enumerate()
        .map(|(id, kind)| keyed(&id.to_string(), json!({"id": id, "kind": kind})));
    kafka.produce("in", records).unwrap();
    let out = read_committed(&kafka.bootstrap_servers(), "out", 5);
    let mut ids: Vec<String> = out.iter().map(|(k, _)| k.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["0", "1", "3", "4", "5"], "{}", runner.log());
    assert!(
        out.iter()
            .all(|(_, v)| v["enriched"] == true && v["kind"] != "bad")
    );
    let dead = read_committed(&kafka.bootstrap_servers(), "dlq", 1);
    assert_eq!(dead[0].1["kind"], "bad");
    assert!(
        runner
            .log()
            .contains("HTTP hook rejected it: 400 Bad Request: no such customer"),
        "{}",
        runner.log()
    );
    let (code, log) = runner.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// Seed 003: the header picks each record's type; the outputs are routed by type and an
/// unknown or missing type is a dead letter with the reason.
#[test]
fn header_typed_records_are_decoded_by_type_and_unknown_types_dead_lettered() {
    let kafka = EmbeddedKafka::start().unwrap();
    let job = json!({
        "kind": "stream",
        "topics": ["shop"],
        "stream": {
            "select": {"type": "type", "order": "value.order", "detail": "has(value.courier) ? value.courier : value.reason"},
            "outputs": [
                {"topic": "delivered", "when": "value.type == 'com.shop.Delivered'"},
                {"topic": "returned", "when": "value.type == 'com.shop.Returned'"}
            ],
            "dead_letter_topic": "dlq",
            "commit_interval_ms": 100
        }
    });
    let dir = setup(
        &kafka,
        common::typed_topic(),
        1,
        &["delivered", "returned", "dlq"],
        "typed",
        job,
    );
    let mut runner = Runner::start(dir.path(), "typed", "typed");
    runner.wait_assigned();
    common::produce_typed(
        &kafka.bootstrap_servers(),
        "shop",
        &[
            (
                Some("com.shop.Delivered"),
                json!({"order": 1, "courier": "dhl"}),
            ),
            (
                Some("com.shop.Returned"),
                json!({"order": 2, "reason": "broken"}),
            ),
            (Some("com.shop.Lost"), json!({"order": 3})),
            (None, json!({"order": 4})),
            (
                Some("com.shop.Delivered"),
                json!({"order": 5, "courier": "ups"}),
            ),
        ],
    );
    let delivered = read_committed(&kafka.bootstrap_servers(), "delivered", 2);
    let details: Vec<&Value> = delivered.iter().map(|(_, v)| &v["detail"]).collect();
    assert_eq!(details, [&json!("dhl"), &json!("ups")], "{}", runner.log());
    let returned = read_committed(&kafka.bootstrap_servers(), "returned", 1);
    assert_eq!(
        returned[0].1,
        json!({"type": "com.shop.Returned", "order": 2, "detail": "broken"})
    );
    let dead = read_committed(&kafka.bootstrap_servers(), "dlq", 2);
    assert_eq!(
        dead.iter()
            .map(|(_, v)| v["order"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4]
    );
    let log = runner.log();
    assert!(
        log.contains("names type `com.shop.Lost`, which is not in the topic's types"),
        "{log}"
    );
    assert!(log.contains("header item_type_name is missing"), "{log}");
    let (code, log) = runner.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// The same header-typed topic exported to Parquet: one `value_type` column and a struct
/// column per type; the unknown type in the dead letters.
#[test]
fn a_batch_export_writes_header_typed_records_as_a_union() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("shop", 1).unwrap();
    let dir = config_for(&kafka, common::typed_topic());
    common::produce_typed(
        &kafka.bootstrap_servers(),
        "shop",
        &[
            (
                Some("com.shop.Delivered"),
                json!({"order": 1, "courier": "dhl"}),
            ),
            (Some("com.shop.Lost"), json!({"order": 2})),
            (
                Some("com.shop.Returned"),
                json!({"order": 3, "reason": "broken"}),
            ),
        ],
    );
    let connections = json!({"bootstrap_servers": kafka.bootstrap_servers(), "storage_url": "out"});
    std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
    let out = dir.path().join("out");
    let status = runner_command(dir.path()).arg("once").status().unwrap();
    assert!(status.success());
    let rows = batches(&out, "shop");
    let types = column_strings(&out, "shop", "value_type");
    assert_eq!(
        types,
        [
            Some("com.shop.Delivered".into()),
            Some("com.shop.Returned".into())
        ]
    );
    let schema = rows[0].schema();
    let delivered = schema.field_with_name("com.shop.Delivered").unwrap();
    assert_eq!(
        delivered.data_type().to_string(),
        "Struct(\"courier\": Utf8, \"order\": Int64)"
    );
    let dead = parquet_files(&out.join("_dead_letters"));
    assert_eq!(dead.len(), 1, "the unknown type is a dead letter");
}

/// Joined inputs must be co-partitioned: different partition counts are refused at start.
#[test]
fn a_join_of_inputs_with_different_partition_counts_is_refused() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("three", 3).unwrap();
    let job = json!({
        "kind": "stream",
        "topics": ["two", "three"],
        "stream": {"join": {"by": "key", "timeout_seconds": 5}, "outputs": [{"topic": "out"}]}
    });
    let topics = json!([{"topic": "two", "format": "json"}, {"topic": "three", "format": "json"}]);
    let dir = setup(&kafka, json!([]), 2, &["two", "out"], "bad", job);
    std::fs::write(dir.path().join("topics.json"), topics.to_string()).unwrap();
    let output = runner_command(dir.path())
        .args(["continuous", "--job", "bad"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("a join needs co-partitioned inputs")
            && stderr.contains("two: 2, three: 3"),
        "{stderr}"
    );
}

/// Two workers in one group: partition p of every input goes to the same worker, so no group
/// is split between them: every group completes once and none times out.
#[test]
fn two_workers_never_split_a_join_group() {
    let kafka = EmbeddedKafka::start().unwrap();
    let mut job = join_job("at_least_once");
    job["stream"]["join"]["timeout_seconds"] = json!(20);
    let dir = setup(
        &kafka,
        join_topics(),
        6,
        &["paid", "incomplete", "runner.stream.paid-join-changelog"],
        "paid",
        job,
    );
    let mut a = Runner::start(dir.path(), "paid", "a");
    a.wait_assigned();
    let mut b = Runner::start(dir.path(), "paid", "b");
    b.wait_assigned();
    // Both have been through the rebalance that shares the partitions.
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.log().matches("partitions assigned").count() < 2 {
        assert!(Instant::now() < deadline, "{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = ["orders", "payments", "shipments"];
    for id in 0..120 {
        produce_group(&kafka, id, &all);
    }
    let paid = read_committed(&kafka.bootstrap_servers(), "paid", 120);
    let ids: std::collections::BTreeSet<&str> = paid.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        (paid.len(), ids.len()),
        (120, 120),
        "{}\n{}",
        a.log(),
        b.log()
    );
    let last = |log: &str| {
        log.lines()
            .rev()
            .find(|l| l.contains("partitions assigned"))
            .unwrap_or_default()
            .to_string()
    };
    eprintln!("a: {}\nb: {}", last(&a.log()), last(&b.log()));
    assert!(
        !last(&a.log()).contains("partitions=[]") && !last(&b.log()).contains("partitions=[]"),
        "both workers own partitions"
    );
    a.kill();
    let log = b.kill();
    assert!(!log.contains("join group given up"), "{log}");
    let incomplete = read_committed_for(
        &kafka.bootstrap_servers(),
        "incomplete",
        Duration::from_secs(2),
    );
    assert!(incomplete.is_empty(), "no group was split: {incomplete:?}");
}

/// Records written to `topic` so far (its high watermarks).
fn written(bootstrap: &str, topic: &str, partitions: i32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_or(0, |(_, high)| high)
        })
        .sum()
}

/// Whatever arrives on `topic` within `wait`.
fn read_committed_for(bootstrap: &str, topic: &str, wait: Duration) -> Vec<(String, Value)> {
    use rdkafka::Message;
    let consumer = committed_reader(bootstrap, topic);
    let until = Instant::now() + wait;
    let mut seen = Vec::new();
    while Instant::now() < until {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let value =
                serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or(Value::Null);
            seen.push((
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                value,
            ));
        }
    }
    seen
}

/// The example custom binary's Rust processor, selected by name in a job file.
#[test]
fn a_rust_processor_in_a_custom_binary_runs_a_stream_job() {
    let kafka = EmbeddedKafka::start().unwrap();
    let job = json!({
        "kind": "stream",
        "topics": ["in"],
        "stream": {
            "process": {"rust": {"name": "shout"}},
            "outputs": [{"topic": "out"}],
            "dead_letter_topic": "dlq",
            "commit_interval_ms": 100
        }
    });
    let dir = setup(
        &kafka,
        json!([{"topic": "in", "format": "json"}]),
        1,
        &["out", "dlq"],
        "shout",
        job,
    );
    // `cargo test` builds examples as test harnesses: build the real binary (a no-op when
    // tests/run.sh has built it), into target/debug/examples/ beside this test's deps/.
    let built = std::process::Command::new(env!("CARGO"))
        .args(["build", "--example", "custom_processor"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(
        built.success(),
        "cargo build --example custom_processor failed"
    );
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/custom_processor");
    assert!(
        binary.is_file(),
        "{} is missing after the build",
        binary.display()
    );
    let log = dir.path().join("custom.log");
    let mut child = std::process::Command::new(&binary)
        .args([
            "--config-dir",
            &dir.path().to_string_lossy(),
            "--job",
            "shout",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    kafka
        .produce(
            "in",
            [
                keyed("a", json!({"text": "hello kafka world"})),
                keyed("b", json!({"n": 1})),
            ],
        )
        .unwrap();
    let out = read_committed(&kafka.bootstrap_servers(), "out", 1);
    assert_eq!(out[0].1, json!({"text": "HELLO KAFKA WORLD", "words": 3}));
    let dead = read_committed(&kafka.bootstrap_servers(), "dlq", 1);
    assert_eq!(dead[0].1, json!({"n": 1}));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// At least once, SIGKILL while records stream in: after a restart no record is lost; the
/// duplicates (results of records processed since the last commit) are counted and printed.
#[test]
fn a_kill_mid_stream_loses_nothing_at_least_once() {
    let kafka = EmbeddedKafka::start().unwrap();
    let job = json!({
        "kind": "stream",
        "topics": ["in"],
        "stream": {"outputs": [{"topic": "out", "key": "string(value.n)"}], "delivery": "at_least_once"}
    });
    let dir = setup(
        &kafka,
        json!([{"topic": "in", "format": "json"}]),
        3,
        &["out"],
        "fwd",
        job,
    );
    let mut first = Runner::start(dir.path(), "fwd", "first");
    first.wait_assigned();
    let total = 20_000;
    let bootstrap = kafka.bootstrap_servers();
    let producer = std::thread::spawn(move || {
        for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
            let records = chunk.iter().map(|n| keyed(&n.to_string(), json!({"n": n})));
            runner::embedded::produce(&bootstrap, "in", records).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while written(&kafka.bootstrap_servers(), "out", 3) < 3000 {
        assert!(Instant::now() < deadline, "{}", first.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill();
    let mut second = Runner::start(dir.path(), "fwd", "second");
    second.wait_assigned();
    producer.join().unwrap();
    let out = read_committed(&kafka.bootstrap_servers(), "out", total);
    let distinct: std::collections::BTreeSet<i64> =
        out.iter().map(|(_, v)| v["n"].as_i64().unwrap()).collect();
    assert_eq!(distinct.len(), total, "no record lost: {}", second.log());
    eprintln!(
        "at least once, SIGKILL mid-stream: {total} records, 0 lost, {} duplicated",
        out.len() - total
    );
}

/// Outputs in Avro through the Schema Registry (the latest schema of `<topic>-value`),
/// framed with its id; a result that does not fit the schema is a dead letter.
#[test]
fn outputs_are_encoded_in_avro_through_the_registry() {
    let rt = runtime();
    let server = runner::registry::EmbeddedRegistry::start(rt.handle()).unwrap();
    let kafka = EmbeddedKafka::start().unwrap();
    let job = json!({
        "kind": "stream",
        "topics": ["in"],
        "stream": {
            "select": {"order": "value.id", "amount": "value.amount"},
            "outputs": [{"topic": "paid", "format": "avro", "key": "value.order"}],
            "dead_letter_topic": "dlq",
            "commit_interval_ms": 100
        }
    });
    let dir = setup(
        &kafka,
        json!([{"topic": "in", "format": "json"}]),
        1,
        &["paid", "dlq"],
        "avro",
        job,
    );
    let connections = json!({"bootstrap_servers": kafka.bootstrap_servers(), "schema_registry_url": server.url()});
    std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
    let schema = r#"{"type": "record", "name": "Paid", "fields": [
        {"name": "order", "type": "string"}, {"name": "amount", "type": "double"}]}"#;
    let registry = runner::registry::Registry::from_connections(
        &serde_json::from_value(connections).unwrap(),
        rt.handle().clone(),
    )
    .unwrap()
    .unwrap();
    let id = registry
        .register("paid-value", runner::registry::SchemaType::Avro, schema)
        .unwrap();
    let mut runner = Runner::start(dir.path(), "avro", "avro");
    runner.wait_assigned();
    kafka
        .produce(
            "in",
            [
                keyed("a", json!({"id": "o-1", "amount": 12.5})),
                keyed("b", json!({"id": "o-2", "amount": "twelve"})),
                keyed("c", json!({"id": "o-3", "amount": 7.25})),
            ],
        )
        .unwrap();
    let dead = read_committed(&kafka.bootstrap_servers(), "dlq", 1);
    assert_eq!(dead[0].1["amount"], "twelve", "{}", runner.log());
    let parsed = apache_avro::Schema::parse_str(schema).unwrap();
    let raw = raw_values(&kafka.bootstrap_servers(), "paid", 2);
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&parsed)
        .build()
        .unwrap();
    let mut decoded = Vec::new();
    for bytes in raw {
        assert_eq!(bytes[0], 0, "Confluent framing");
        assert_eq!(u32::from_be_bytes(bytes[1..5].try_into().unwrap()), id);
        let value = reader.read_value(&mut &bytes[5..]).unwrap();
        decoded.push(apache_avro::from_value::<serde_json::Value>(&value).unwrap());
    }
    assert_eq!(
        decoded,
        [
            json!({"order": "o-1", "amount": 12.5}),
            json!({"order": "o-3", "amount": 7.25})
        ]
    );
    drop(runner);
}

/// The raw values of the first `expected` records of `topic`.
fn raw_values(bootstrap: &str, topic: &str, expected: usize) -> Vec<Vec<u8>> {
    use rdkafka::Message;
    let consumer = committed_reader(bootstrap, topic);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < expected {
        assert!(
            Instant::now() < deadline,
            "{} of {expected} on {topic}",
            seen.len()
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            seen.push(m.payload().unwrap_or_default().to_vec());
        }
    }
    seen
}
