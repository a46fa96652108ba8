//! The crash campaign: `runner once` processes killed with SIGKILL at random moments while new
//! records keep arriving, then one run to the end; every file is read back and every offset
//! must be there exactly once. `bash tests/campaign.sh` runs it with 100 kills per scenario
//! and prints the table; the regular suite runs CAMPAIGN_KILLS (default 10) per scenario.

mod common;

use common::*;
use runner::embedded::{EmbeddedKafka, Record};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

struct Scenario {
    name: &'static str,
    /// An aggregate job (sum and count per partition, cumulative) instead of an export.
    aggregate: bool,
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
            aggregate: false,
            name: "export json, 4 partitions, a file every 50 records",
            topic: serde_json::json!({"topic": "small-files", "format": "json",
                "max_records_per_file": 50}),
            partitions: 4,
            per_round: 300,
            fault: Fault::None,
        },
        Scenario {
            aggregate: false,
            name: "export raw, 16 partitions, one file per partition and run",
            topic: serde_json::json!({"topic": "wide", "format": "raw"}),
            partitions: 16,
            per_round: 200,
            fault: Fault::None,
        },
        Scenario {
            aggregate: false,
            name: "export json, hourly folders by record time",
            topic: serde_json::json!({"topic": "by-hour", "format": "json",
                "path_template": "{topic}/date={yyyy}-{MM}-{dd}/hour={HH}"}),
            partitions: 2,
            per_round: 500,
            fault: Fault::None,
        },
        Scenario {
            aggregate: false,
            name: "export json, broker request errors and 20 ms round trips",
            topic: serde_json::json!({"topic": "errors", "format": "json",
                "max_records_per_file": 100}),
            partitions: 4,
            per_round: 300,
            fault: Fault::RequestErrors,
        },
        Scenario {
            aggregate: false,
            name: "export json, the broker down and back during each run",
            topic: serde_json::json!({"topic": "outage", "format": "json",
                "max_records_per_file": 100}),
            partitions: 4,
            per_round: 300,
            fault: Fault::BrokerDown,
        },
        Scenario {
            name: "aggregate, cumulative sums per partition",
            aggregate: true,
            topic: serde_json::json!({"topic": "sums", "format": "json"}),
            partitions: 3,
            per_round: 300,
            fault: Fault::None,
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
    if s.aggregate {
        aggregate_job(dir.path(), &topic);
    }
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
        cmd.arg("once").stdout(Stdio::piped()).stderr(Stdio::null());
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
            Some(status) if !status.success() => {
                failed += 1;
                let mut out = String::new();
                if let Some(mut stdout) = child.stdout.take() {
                    use std::io::Read;
                    let _ = stdout.read_to_string(&mut out);
                }
                for line in out.lines().filter(|l| l.contains("status=failed")) {
                    println!("  {}: a run failed by itself: {line}", s.name);
                }
            }
            Some(_) => {}
        }
        let _ = child.kill();
        let _ = child.wait_with_output();
    }
    s.fault.clear(&kafka);
    // The last run must finish whatever the kills and faults left, within the lock's rules.
    let last = once().output().unwrap();
    assert!(
        last.status.success(),
        "{}: the run after the kills failed",
        s.name
    );

    let (checked, lost, duplicated) = if s.aggregate {
        check_totals(&dir.path().join("out"), &topic, &produced)
    } else {
        check(&dir.path().join("out"), &topic, &produced)
    };
    Outcome {
        kills: hit,
        failed,
        checked,
        lost,
        duplicated,
    }
}

/// jobs/sums.json: cumulative sum of amount and count per partition of `topic`, to Parquet.
fn aggregate_job(dir: &Path, topic: &str) {
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    let job = serde_json::json!({"kind": "aggregate", "topics": [topic], "aggregate": {
        "group_by": ["partition"], "compute": ["sum(amount) as total", "count(*) as n"],
        "mode": "cumulative", "outputs": {"parquet": "totals"}}});
    std::fs::write(dir.join("jobs/sums.json"), job.to_string()).unwrap();
}

/// The saved totals against the produced records: (records counted, missing, counted twice).
fn check_totals(out: &Path, topic: &str, produced: &BTreeMap<i32, usize>) -> (usize, usize, usize) {
    let state_file = out.join(format!("_runner/aggregates/sums/{topic}.json"));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let saved = totals_in(&out.join(state["totals"].as_str().unwrap()));
    let want = expected_totals(produced);
    let (mut counted, mut lost, mut dup) = (0, 0, 0);
    for (p, (sum, n)) in &want {
        let (got_sum, got_n) = saved.get(p).copied().unwrap_or_default();
        counted += got_n as usize;
        lost += (n - got_n).max(0) as usize;
        dup += (got_n - n).max(0) as usize;
        assert!(
            got_n != *n || got_sum == *sum,
            "partition {p}: the count is right but the sum is {got_sum}, not {sum}"
        );
    }
    (counted, lost, dup)
}

/// Reads every file of `topic` back: (rows, offsets produced but missing, extra copies).
fn check(out: &Path, topic: &str, produced: &BTreeMap<i32, usize>) -> (usize, usize, usize) {
    let rows = exported(out, topic);
    let (lost, duplicated) = lost_and_duplicated(&rows, produced);
    let expected: usize = produced.values().sum();
    assert!(
        rows.len() - duplicated <= expected,
        "{topic}: offsets never produced"
    );
    (rows.len(), lost, duplicated)
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
    // e.g. CAMPAIGN_SCENARIOS=errors,outage to run some scenarios only.
    let wanted = std::env::var("CAMPAIGN_SCENARIOS").unwrap_or_default();
    let chosen = scenarios().into_iter().filter(|s| {
        wanted.is_empty()
            || wanted
                .split(',')
                .any(|w| s.topic["topic"].as_str() == Some(w))
    });
    for s in chosen {
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

/// The named crash points (src/crash.rs) an export passes, in order.
const EXPORT_POINTS: &[&str] = &[
    "after-fetch",
    "after-decode",
    "file-half-written",
    "progress-pending-saved",
    "file-visible",
    "progress-saved",
    "lock-takeover",
];

/// The named crash points an aggregate job passes, in order.
const AGGREGATE_POINTS: &[&str] = &[
    "after-fetch",
    "after-decode",
    "aggregate-outputs-written",
    "aggregate-totals-written",
    "aggregate-state-saved",
    "lock-takeover",
];

/// A point is hit at its first pass and at its third (a later partition, file or batch); a point
/// a run passes once, at its first only.
fn passes(point: &str) -> &'static [u32] {
    if point == "lock-takeover" || point.starts_with("aggregate-") {
        &[0]
    } else {
        &[0, 2]
    }
}

/// `FAILPOINTS` that stops the process at `point` after `passes` passes through it.
fn failpoints(point: &str, passes: u32) -> String {
    match passes {
        0 => format!("{point}=return"),
        n => format!("{point}={n}*off->return"),
    }
}

/// Runs `runner once` stopped at `point`: the run must have reached it and stopped there.
fn crash_at(dir: &Path, point: &str, passes: u32) {
    use std::os::unix::process::ExitStatusExt;
    let out = runner_command(dir)
        .arg("once")
        .env("FAILPOINTS", failpoints(point, passes))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.signal() == Some(libc::SIGABRT)
            && stderr.contains(&format!("crash point {point}:")),
        "the run did not stop at {point} (pass {}): {:?}\n{stderr}",
        passes + 1,
        out.status
    );
}

fn once_to_the_end(dir: &Path, what: &str) {
    let out = runner_command(dir).arg("once").output().unwrap();
    assert!(
        out.status.success(),
        "{what}: the rerun failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Progress is never ahead of the data: every offset below a partition's recorded next offset
/// is in a file.
fn assert_progress_not_ahead(out: &Path, topic: &str, point: &str) {
    let record = out.join(format!("_runner/progress/runner.{topic}/{topic}.json"));
    let Ok(bytes) = std::fs::read(&record) else {
        return;
    };
    let progress: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let rows: std::collections::BTreeSet<(i32, i64)> = exported(out, topic).into_iter().collect();
    for (p, entry) in progress["partitions"].as_object().unwrap() {
        let p: i32 = p.parse().unwrap();
        let next = entry["next_offset"].as_i64().unwrap();
        let missing = (0..next).filter(|o| !rows.contains(&(p, *o))).count();
        assert_eq!(
            missing, 0,
            "after a stop at {point}: partition {p} recorded up to {next}, {missing} offsets below it in no file"
        );
    }
}

/// Records ten minutes apart from 2026-01-01: in hourly folders a segment spans several files.
fn timed(partition: i32, first: usize, count: usize) -> impl Iterator<Item = Record> {
    numbered(partition, first, count)
        .zip(first..)
        .map(|(mut r, seq)| {
            r.timestamp = Some(1_767_225_600_000 + seq as i64 * 600_000);
            r
        })
}

fn point_row(job: &str, point: &str, passes: u32, checked: usize, lost: usize, dup: usize) {
    let outcome = if lost == 0 && dup == 0 {
        "exact"
    } else {
        "FAILED"
    };
    println!(
        "| {job} | {point} | {} | {checked} | {lost} | {dup} | {outcome} |",
        passes + 1
    );
}

fn point_header() {
    println!(
        "| job | crash point | stopped at pass | records checked | lost | duplicated | outcome |"
    );
    println!("|---|---|---|---|---|---|---|");
}

#[test]
fn an_export_stopped_at_each_crash_point_then_rerun_has_every_record_exactly_once() {
    require_failpoints();
    let kafka = EmbeddedKafka::start().unwrap();
    let topic = "points";
    kafka.create_topic(topic, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let connections =
        serde_json::json!({"bootstrap_servers": kafka.bootstrap_servers(), "storage_url": "out"});
    // Hourly folders give segments of several files (the pending record), 40 records a file
    // gives many commits per run.
    let topics = serde_json::json!([{"topic": topic, "format": "json", "max_records_per_file": 40,
        "path_template": "{topic}/date={yyyy}-{MM}-{dd}/hour={HH}"}]);
    write_config(dir.path(), connections, topics);
    let out = dir.path().join("out");
    let mut produced: BTreeMap<i32, usize> = BTreeMap::new();
    point_header();
    let mut failures = Vec::new();
    for point in EXPORT_POINTS {
        for &passes in passes(point) {
            for p in 0..3 {
                let first = produced.entry(p).or_default();
                kafka.produce(topic, timed(p, *first, 100)).unwrap();
                *first += 100;
            }
            if *point == "lock-takeover" {
                // A killed run's lock is what a takeover takes over.
                crash_at(dir.path(), "after-fetch", 0);
            }
            crash_at(dir.path(), point, passes);
            assert_progress_not_ahead(&out, topic, point);
            // More records before the rerun: its segments need not end where the stopped
            // run's did, so a file the stopped run left must be found, not overwritten.
            for p in 0..3 {
                let first = produced.entry(p).or_default();
                kafka.produce(topic, timed(p, *first, 25)).unwrap();
                *first += 25;
            }
            once_to_the_end(dir.path(), point);
            let (checked, lost, dup) = check(&out, topic, &produced);
            point_row("export", point, passes, checked, lost, dup);
            if lost + dup > 0 {
                failures.push(format!("{point} pass {}", passes + 1));
            }
        }
    }
    assert!(failures.is_empty(), "lost or duplicated after {failures:?}");
}

/// (sum of amount, count) per partition after the first `n` records of each, as
/// `numbered` makes them (amount = seq / 4).
fn expected_totals(produced: &BTreeMap<i32, usize>) -> BTreeMap<i64, (f64, i64)> {
    produced
        .iter()
        .map(|(p, n)| {
            let sum = (0..*n).map(|seq| seq as f64 / 4.0).sum();
            (*p as i64, (sum, *n as i64))
        })
        .collect()
}

fn totals_in(file: &Path) -> BTreeMap<i64, (f64, i64)> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float64Type, Int64Type};
    let mut totals = BTreeMap::new();
    for batch in file_batches(file) {
        let partitions = column(&batch, "partition").as_primitive::<Int64Type>();
        let sums = column(&batch, "total").as_primitive::<Float64Type>();
        let counts = column(&batch, "n").as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            totals.insert(partitions.value(i), (sums.value(i), counts.value(i)));
        }
    }
    totals
}

#[test]
fn an_aggregate_stopped_at_each_crash_point_then_rerun_counts_every_record_once() {
    require_failpoints();
    let kafka = EmbeddedKafka::start().unwrap();
    let topic = "amounts";
    kafka.create_topic(topic, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let connections =
        serde_json::json!({"bootstrap_servers": kafka.bootstrap_servers(), "storage_url": "out"});
    write_config(
        dir.path(),
        connections,
        serde_json::json!([{"topic": topic, "format": "json"}]),
    );
    std::fs::create_dir(dir.path().join("jobs")).unwrap();
    let job = serde_json::json!({"kind": "aggregate", "topics": [topic], "aggregate": {
        "group_by": ["partition"], "compute": ["sum(amount) as total", "count(*) as n"],
        "mode": "cumulative", "outputs": {"parquet": "totals"}}});
    std::fs::write(dir.path().join("jobs/sums.json"), job.to_string()).unwrap();
    let out = dir.path().join("out");
    let state_file = out.join(format!("_runner/aggregates/sums/{topic}.json"));
    let mut produced: BTreeMap<i32, usize> = BTreeMap::new();
    point_header();
    let mut failures = Vec::new();
    for point in AGGREGATE_POINTS {
        for &passes in passes(point) {
            for p in 0..3 {
                let first = produced.entry(p).or_default();
                // Small batches, so a run passes the read points several times.
                for chunk in 0..4 {
                    kafka
                        .produce(topic, numbered(p, *first + chunk * 50, 50))
                        .unwrap();
                }
                *first += 200;
            }
            if *point == "lock-takeover" {
                crash_at(dir.path(), "after-fetch", 0);
            }
            let passes = if point.starts_with("aggregate-") {
                0
            } else {
                passes
            };
            crash_at(dir.path(), point, passes);
            once_to_the_end(dir.path(), point);
            let state: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
            let saved = totals_in(&out.join(state["totals"].as_str().unwrap()));
            let outputs = parquet_files(&out.join("totals"));
            let latest = totals_in(outputs.last().unwrap());
            let want = expected_totals(&produced);
            let records: i64 = want.values().map(|t| t.1).sum();
            let counted = |t: &BTreeMap<i64, (f64, i64)>| t.values().map(|t| t.1).sum::<i64>();
            let (lost, dup) = (
                (records - counted(&saved)).max(0) as usize,
                (counted(&saved) - records).max(0) as usize,
            );
            point_row("aggregate", point, passes, records as usize, lost, dup);
            if saved != want || latest != want {
                failures.push(format!("{point} pass {}", passes + 1));
            }
        }
    }
    assert!(failures.is_empty(), "totals wrong after {failures:?}");
}

/// Found by the campaign: a broker that answered ListOffsets with NOT_LEADER_OR_FOLLOWER or
/// REQUEST_TIMED_OUT while a run planned failed the run; such errors are retried now.
#[test]
fn a_retriable_error_while_planning_is_retried_instead_of_failing_the_run() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let kafka = kafka_with("plan-errors", 2, 500);
    kafka.cluster().request_errors(
        RDKafkaApiKey::ListOffsets,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(serde_json::json!({"topic": "plan-errors", "format": "json"}));
    // The run must not fail; what it covers, and a run after it, hold every record once.
    run(&ctx, std::slice::from_ref(&t));
    kafka
        .cluster()
        .clear_request_errors(RDKafkaApiKey::ListOffsets);
    run(&ctx, &[t]);
    assert_exactly(out.path(), "plan-errors", &[(0, 0..500), (1, 0..500)]);
}

/// Found by the campaign: the broker gone for a moment mid-read ("Broker transport failure")
/// failed the run although librdkafka reconnects by itself; the run now rides it out, and
/// only a broker away past the stall timeout ends it.
#[test]
fn a_broker_lost_for_a_moment_mid_read_is_ridden_out() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("blip", 2).unwrap();
    for p in 0..2 {
        kafka.produce("blip", numbered(p, 0, 20_000)).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    // A small prefetch, so that records are still at the broker when it goes away.
    let properties = &mut ctx.config.connections.kafka_properties;
    properties.insert("queued.max.messages.kbytes".into(), "64".into());
    properties.insert("max.partition.fetch.bytes".into(), "16384".into());
    let t =
        topic(serde_json::json!({"topic": "blip", "format": "json", "max_records_per_file": 1000}));
    let progress = out.path().join("_runner/progress/runner.blip/blip.json");
    let outcomes = std::thread::scope(|s| {
        let running = s.spawn(|| runner::jobs::run_once(&ctx, std::slice::from_ref(&t)));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !progress.exists() {
            assert!(Instant::now() < deadline, "no progress within 60 s");
            assert!(
                !running.is_finished(),
                "the run ended before the broker went away"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        kafka.cluster().broker_down(1).unwrap();
        std::thread::sleep(Duration::from_secs(2));
        kafka.cluster().broker_up(1).unwrap();
        running.join().unwrap()
    });
    if let Err(e) = &outcomes[0].result {
        panic!("a two-second broker outage failed the run: {e}");
    }
    assert_exactly(out.path(), "blip", &[(0, 0..20_000), (1, 0..20_000)]);
}
