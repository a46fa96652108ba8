//! Store faults between runner and Azurite, through a fault-injecting proxy: 503 and 500
//! answers, slow answers, uploads cut off mid-body and answers lost after the store acted.
//! Each run ends complete or with a clear failure whose progress is not ahead of the files;
//! once the faults stop, a rerun has every record exactly once.

mod common;

use common::azurite::{ACCOUNT, Azurite, KEY};
use common::fault_proxy::{FaultProxy, Faults, KINDS};
use common::*;
use runner::config::Config;
use runner::embedded::EmbeddedKafka;
use runner::sink::Sink;
use std::collections::BTreeMap;

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 4;

fn connections(kafka: &EmbeddedKafka, endpoint: &str, retries: usize) -> serde_json::Value {
    serde_json::json!({
        "bootstrap_servers": kafka.bootstrap_servers(),
        "storage_url": "az://lake/raw",
        "storage_options": {
            "azure_storage_account_name": ACCOUNT,
            "azure_storage_account_key": KEY,
            "azure_storage_endpoint": format!("{endpoint}/{ACCOUNT}"),
            "allow_http": "true"
        },
        "storage_retry": {"max_retries": retries, "timeout_secs": 60}
    })
}

/// The test's own view of the store, straight to Azurite.
fn direct_store(kafka: &EmbeddedKafka, azurite: &Azurite, rt: &tokio::runtime::Runtime) -> Sink {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        connections(kafka, &azurite.url(), 6),
        serde_json::json!([]),
    );
    let config = Config::load(dir.path()).unwrap();
    Sink::open(&config.sink, rt.handle().clone()).unwrap()
}

/// Every offset below a partition's recorded next offset is in a visible file.
fn assert_progress_not_ahead(store: &Sink, rows: &[(i32, i64)], what: &str) {
    let path = format!("_runner/progress/runner.{TOPIC}/{TOPIC}.json");
    let Some(bytes) = store.get(&path.as_str().into()).unwrap() else {
        return;
    };
    let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let have: std::collections::BTreeSet<(i32, i64)> = rows.iter().copied().collect();
    for (p, entry) in state["partitions"].as_object().unwrap() {
        let p: i32 = p.parse().unwrap();
        let next = entry["next_offset"].as_i64().unwrap();
        let missing = (0..next).filter(|o| !have.contains(&(p, *o))).count();
        assert_eq!(
            missing, 0,
            "{what}: partition {p} recorded up to {next}, {missing} offsets below it in no file"
        );
    }
}

struct Scenario {
    name: &'static str,
    faults: Faults,
    rounds: usize,
    /// The store client's retries of one request (`storage_retry.max_retries`).
    retries: usize,
}

fn run_scenario(s: &Scenario, seed: u64) -> (Vec<usize>, usize, usize, usize, usize, usize) {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic(TOPIC, PARTITIONS).unwrap();
    let azurite = Azurite::start();
    azurite.create_container("lake");
    let proxy = FaultProxy::start(azurite.port, Faults::default(), seed);
    let rt = runtime();
    let store = direct_store(&kafka, &azurite, &rt);
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        connections(&kafka, &proxy.url(), s.retries),
        serde_json::json!([{"topic": TOPIC, "format": "json", "max_records_per_file": 400}]),
    );
    let mut produced: BTreeMap<i32, usize> = BTreeMap::new();
    let mut failed = 0;
    proxy.set_faults(s.faults);
    for round in 0..s.rounds {
        for p in 0..PARTITIONS {
            let first = produced.entry(p).or_default();
            kafka.produce(TOPIC, numbered(p, *first, 1000)).unwrap();
            *first += 1000;
        }
        let out = runner_command(dir.path()).arg("once").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            assert!(
                stdout.contains("status=failed"),
                "{}: round {round} ended without a clear failure: {:?}\n{stdout}\n{}",
                s.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            failed += 1;
            for line in stdout.lines().filter(|l| l.contains("status=failed")) {
                println!("{}: {line}", s.name);
            }
        }
        let rows = offsets_of(&sink_batches(&store, TOPIC));
        assert_progress_not_ahead(&store, &rows, s.name);
    }
    let injected: Vec<usize> = KINDS.iter().map(|k| proxy.injected(*k)).collect();
    assert!(
        injected.iter().sum::<usize>() > 0,
        "{}: no fault was injected in {} requests",
        s.name,
        proxy.requests()
    );
    proxy.set_faults(Faults::default());
    let last = runner_command(dir.path()).arg("once").output().unwrap();
    assert!(
        last.status.success(),
        "{}: the run after the faults failed: {}",
        s.name,
        String::from_utf8_lossy(&last.stdout)
    );
    let rows = offsets_of(&sink_batches(&store, TOPIC));
    let (lost, duplicated) = lost_and_duplicated(&rows, &produced);
    (
        injected,
        proxy.requests(),
        failed,
        rows.len(),
        lost,
        duplicated,
    )
}

#[test]
fn store_faults_end_each_run_complete_or_cleanly_failed_and_lose_or_duplicate_nothing() {
    let seed: u64 = std::env::var("CAMPAIGN_SEED")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let scenarios = [
        Scenario {
            name: "a few of each fault",
            faults: Faults {
                busy_503: 40,
                error_500: 20,
                slow: 10,
                cut_upload: 30,
                lost_answer: 30,
                only: None,
            },
            rounds: 3,
            retries: 6,
        },
        Scenario {
            name: "bursts: a third of requests faulted",
            faults: Faults {
                busy_503: 150,
                error_500: 60,
                slow: 10,
                cut_upload: 60,
                lost_answer: 60,
                only: None,
            },
            rounds: 3,
            retries: 6,
        },
        Scenario {
            name: "a storm: most requests faulted, 2 retries",
            faults: Faults {
                busy_503: 300,
                error_500: 100,
                slow: 0,
                cut_upload: 100,
                lost_answer: 100,
                only: None,
            },
            rounds: 4,
            retries: 2,
        },
    ];
    println!("seed {seed}");
    println!(
        "| scenario | requests | 503 | 500 | slow | cut uploads | lost answers | runs failed cleanly | records checked | lost | duplicated | outcome |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for s in &scenarios {
        let (injected, requests, failed, checked, lost, dup) = run_scenario(s, seed);
        let ok = lost == 0 && dup == 0;
        println!(
            "| {} | {requests} | {} | {} | {} | {} | {} | {failed} of {} | {checked} | {lost} | {dup} | {} |",
            s.name,
            injected[0],
            injected[1],
            injected[2],
            injected[3],
            injected[4],
            s.rounds,
            if ok { "exact" } else { "FAILED" }
        );
        if !ok {
            failures.push(s.name);
        }
    }
    assert!(failures.is_empty(), "lost or duplicated: {failures:?}");
}

/// Found by the store faults: a commit whose answer was lost failed the run although it had
/// landed. Blob block lists (the store's retry answered `InvalidBlockList`), progress saves
/// (the retry's If-Match no longer matched its own write) and lock creations (the retry found
/// its own file) now check what the store holds.
#[test]
fn a_commit_whose_answer_is_lost_is_found_landed_instead_of_failing_the_run() {
    for only in ["comp=blocklist", "_runner/progress", "_runner/locks"] {
        let s = Scenario {
            name: only,
            faults: Faults {
                lost_answer: 300,
                only: Some(only),
                ..Faults::default()
            },
            rounds: 2,
            retries: 6,
        };
        let (injected, _, failed, _, lost, dup) = run_scenario(&s, 0x5eed_cafe);
        assert!(injected[4] > 0, "{only}: no answer was lost");
        assert_eq!(
            (failed, lost, dup),
            (0, 0, 0),
            "{only}: failed runs, lost, duplicated"
        );
    }
}
