//! Aggregate jobs on the mock cluster: totals equal totals computed here from the produced
//! records, per run and cumulative, through a crash before the state moves, and to a topic.

mod common;

use arrow::array::AsArray;
use arrow::datatypes::{Decimal128Type, Int64Type};
use common::*;
use runner::config::Config;
use runner::embedded::{EmbeddedKafka, Record};
use runner::jobs::{JobOutcome, JobResults, RunContext};
use runner::produce::{Encoder, transactions};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

const PROTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/schemas/transaction.proto"
);
const ACCOUNTS: usize = 7;

/// (sum of cents, count, max cents) per account, from the generator's JSON.
type Totals = BTreeMap<String, (i128, i64, i128)>;

fn expected(range: std::ops::Range<usize>) -> Totals {
    let mut totals = Totals::new();
    for v in transactions(range, ACCOUNTS) {
        let v = v.unwrap();
        let cents = (v["amount"].as_f64().unwrap() * 100.0).round() as i128;
        let e = totals
            .entry(v["account_number"].as_str().unwrap().to_string())
            .or_default();
        e.0 += cents;
        e.1 += 1;
        e.2 = e.2.max(cents);
    }
    totals
}

/// Produces transactions `range` in Protobuf (the seed's events) over 3 partitions.
fn produce(kafka: &EmbeddedKafka, config: &Config, range: std::ops::Range<usize>) {
    let topic = config
        .topics
        .iter()
        .find(|t| t.topic == "transactions")
        .unwrap();
    let encoder = Encoder::new(topic, None).unwrap();
    let records: Vec<Record> = transactions(range, ACCOUNTS)
        .map(|v| {
            let v = v.unwrap();
            Record {
                key: Some(v["account_number"].as_str().unwrap().as_bytes().to_vec()),
                value: Some(encoder.encode(&v).unwrap()),
                ..Record::default()
            }
        })
        .collect();
    kafka.produce("transactions", records).unwrap();
}

fn setup(dir: &Path, kafka: &EmbeddedKafka, jobs: &[(&str, serde_json::Value)]) -> Config {
    write_config(
        dir,
        json!({"bootstrap_servers": kafka.bootstrap_servers(), "storage_url": dir.join("out").to_string_lossy()}),
        json!([{"topic": "transactions", "format": "protobuf", "schema_file": PROTO,
                "message": "bank.Transaction", "key_format": "string"}]),
    );
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    for (name, job) in jobs {
        std::fs::write(
            dir.join("jobs").join(format!("{name}.json")),
            job.to_string(),
        )
        .unwrap();
    }
    Config::load(dir).unwrap()
}

fn job(outputs: serde_json::Value, mode: &str) -> serde_json::Value {
    json!({
        "kind": "aggregate",
        "topics": ["transactions"],
        "aggregate": {
            "group_by": ["account_number"],
            "compute": ["sum(amount) as total", "count(*) as transactions", "max(amount) as largest"],
            "cast": {"amount": "decimal(18,2)"},
            "mode": mode,
            "outputs": outputs
        }
    })
}

fn context_for(config: Config, rt: &tokio::runtime::Runtime) -> RunContext {
    let mut ctx = context(
        &config.connections.bootstrap_servers,
        &config.dir.join("out"),
        rt,
    );
    ctx.config = config;
    ctx
}

fn run_job(ctx: &RunContext, name: &str) -> JobOutcome {
    let job = ctx.config.jobs.iter().find(|j| j.name == name).unwrap();
    let outcome = runner::jobs::run_job(ctx, job);
    if let JobResults::Aggregate(results) = &outcome.results {
        for r in results {
            if let Err(e) = &r.result {
                panic!("job {name} topic {} failed: {e}", r.topic);
            }
        }
    } else {
        panic!("job {name} is not an aggregate");
    }
    outcome
}

/// The totals a run reported, as the test's own type.
fn totals_of(outcome: &JobOutcome) -> Totals {
    let JobResults::Aggregate(results) = &outcome.results else {
        panic!("not an aggregate");
    };
    let batch = results[0]
        .result
        .as_ref()
        .unwrap()
        .totals
        .clone()
        .expect("totals");
    totals_from(&batch)
}

fn totals_from(batch: &arrow::array::RecordBatch) -> Totals {
    let accounts = batch
        .column_by_name("account_number")
        .unwrap()
        .as_string::<i32>();
    let total = batch
        .column_by_name("total")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    assert_eq!(total.scale(), 2, "the cast's scale is kept");
    let count = batch
        .column_by_name("transactions")
        .unwrap()
        .as_primitive::<Int64Type>();
    let largest = batch
        .column_by_name("largest")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    (0..batch.num_rows())
        .map(|i| {
            (
                accounts.value(i).to_string(),
                (total.value(i), count.value(i), largest.value(i)),
            )
        })
        .collect()
}

#[test]
fn per_run_and_cumulative_totals_equal_the_produced_records() {
    let dir = tempfile::tempdir().unwrap();
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("transactions", 3).unwrap();
    kafka.create_topic("account_totals", 1).unwrap();
    let config = setup(
        dir.path(),
        &kafka,
        &[
            (
                "per-run",
                job(json!({"parquet": "totals/per-run"}), "per_run"),
            ),
            (
                "running",
                job(
                    json!({"topic": "account_totals", "parquet": "totals/running"}),
                    "cumulative",
                ),
            ),
        ],
    );
    let rt = runtime();
    produce(&kafka, &config, 0..3000);
    let ctx = context_for(config.clone(), &rt);
    assert_eq!(totals_of(&run_job(&ctx, "per-run")), expected(0..3000));
    assert_eq!(totals_of(&run_job(&ctx, "running")), expected(0..3000));

    produce(&kafka, &config, 3000..5000);
    assert_eq!(totals_of(&run_job(&ctx, "per-run")), expected(3000..5000));
    assert_eq!(totals_of(&run_job(&ctx, "running")), expected(0..5000));

    // A run with nothing new changes nothing.
    let JobResults::Aggregate(r) = run_job(&ctx, "running").results else {
        unreachable!()
    };
    let s = r[0].result.as_ref().unwrap();
    assert_eq!((s.records, s.run), (0, 2));

    // Parquet: one file per run, each holding that run's totals.
    let per_run = sink_batches(&ctx.sink, "totals/per-run/transactions");
    assert_eq!(per_run.len(), 2);
    assert_eq!(totals_from(&per_run[0]), expected(0..3000));
    assert_eq!(totals_from(&per_run[1]), expected(3000..5000));
    let running = sink_batches(&ctx.sink, "totals/running/transactions");
    assert_eq!(totals_from(&running[1]), expected(0..5000));
    assert!(
        running[1]
            .column_by_name("__runner_order_largest")
            .is_none()
            && running[1].num_columns() == 4,
        "outputs carry no hidden state columns"
    );

    // The topic: one record per account per run, keyed by the account; the latest wins.
    let records = consume_all(&kafka.bootstrap_servers(), "account_totals", 2 * ACCOUNTS);
    assert_eq!(records.len(), 2 * ACCOUNTS);
    let latest: BTreeMap<String, &String> = records.iter().map(|(k, v)| (k.clone(), v)).collect();
    let want = expected(0..5000);
    assert_eq!(
        latest.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (account, raw) in &latest {
        let value: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!(value["account_number"], json!(account));
        assert_eq!(value["transactions"], json!(want[account].1));
        // Decimals keep their digits in the JSON text: the total equals the exact cents.
        let text = raw
            .split("\"total\":")
            .nth(1)
            .unwrap()
            .split([',', '}'])
            .next()
            .unwrap();
        let (units, cents) = text.split_once('.').unwrap();
        let parsed = units.parse::<i128>().unwrap() * 100
            + (if units.starts_with('-') { -1 } else { 1 }) * cents.parse::<i128>().unwrap();
        assert_eq!(parsed, want[account].0, "{account}: {text}");
    }
}

#[test]
fn a_crash_before_the_state_moves_never_counts_a_record_twice() {
    let dir = tempfile::tempdir().unwrap();
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("transactions", 3).unwrap();
    let config = setup(
        dir.path(),
        &kafka,
        &[("running", job(json!({"parquet": "totals"}), "cumulative"))],
    );
    let rt = runtime();
    let ctx = context_for(config.clone(), &rt);
    produce(&kafka, &config, 0..2000);
    run_job(&ctx, "running");
    // Keep the state as it was, run again over new records, then put the old state back: the
    // situation of a process killed after writing its outputs but before the state moved.
    let state = dir.path().join("out/_runner/aggregates");
    let saved = dir.path().join("saved-state");
    copy_dir(&state, &saved);
    produce(&kafka, &config, 2000..3500);
    assert_eq!(totals_of(&run_job(&ctx, "running")), expected(0..3500));
    std::fs::remove_dir_all(&state).unwrap();
    copy_dir(&saved, &state);

    let rerun = run_job(&ctx, "running");
    assert_eq!(
        totals_of(&rerun),
        expected(0..3500),
        "the rerun counts 2000..3500 once"
    );
    let JobResults::Aggregate(r) = &rerun.results else {
        unreachable!()
    };
    assert_eq!(
        r[0].result.as_ref().unwrap().run,
        2,
        "the same run again, same output file"
    );
    let files = sink_batches(&ctx.sink, "totals/transactions");
    assert_eq!(files.len(), 2);
    assert_eq!(totals_from(&files[1]), expected(0..3500));
    // And a third run over more records builds on the right totals.
    produce(&kafka, &config, 3500..4000);
    assert_eq!(totals_of(&run_job(&ctx, "running")), expected(0..4000));
}

#[test]
fn an_undecodable_record_fails_the_job_naming_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("transactions", 1).unwrap();
    let config = setup(dir.path(), &kafka, &[("t", job(json!({}), "per_run"))]);
    produce(&kafka, &config, 0..10);
    kafka
        .produce(
            "transactions",
            [Record {
                value: Some(b"\xff\xff\xff".to_vec()),
                ..Record::default()
            }],
        )
        .unwrap();
    let rt = runtime();
    let ctx = context_for(config, &rt);
    let job = ctx.config.jobs[0].clone();
    let JobResults::Aggregate(r) = runner::jobs::run_job(&ctx, &job).results else {
        unreachable!()
    };
    let e = r[0]
        .result
        .as_ref()
        .map(|_| ())
        .expect_err("the job fails")
        .to_string();
    assert!(
        e.contains("partition 0 offset 10") && e.contains("dead_letter_topic"),
        "{e}"
    );
    assert!(
        !dir.path()
            .join("out/_runner/aggregates/t/transactions.json")
            .exists()
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
