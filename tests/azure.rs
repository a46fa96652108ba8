//! Exports to Azure Blob Storage / ADLS Gen2 through Azurite, the Azure Storage emulator.

mod common;

use common::azurite::Azurite;
use common::*;
use runner::config::Config;
use runner::embedded::EmbeddedKafka;
use runner::sink::Sink;
use std::path::Path;
use std::process::Output;

fn runner(dir: &Path, azurite: &Azurite, args: &[&str]) -> Output {
    runner_command(dir)
        .args(args)
        .env("AZURITE_BLOB_STORAGE_URL", azurite.url())
        .output()
        .unwrap()
}

/// The test's own view of the store: the explicit-endpoint form, no emulator mode.
fn open_store(azurite: &Azurite, url: &str, rt: &tokio::runtime::Runtime) -> Sink {
    let dir = tempfile::tempdir().unwrap();
    let connections = serde_json::json!({
        "bootstrap_servers": "unused:9092",
        "storage_url": url,
        "storage_options": azurite.endpoint_options(),
    });
    write_config(dir.path(), connections, serde_json::json!([]));
    let config = Config::load(dir.path()).unwrap();
    Sink::open(&config.sink, rt.handle().clone()).unwrap()
}

fn names(sink: &Sink, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = sink
        .list(&prefix.into())
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn progress_saves_are_compare_and_swap_on_azure_etags() {
    let rt = runtime();
    let azurite = Azurite::start();
    azurite.create_container("lake");
    let sink = open_store(&azurite, "az://lake/cas", &rt);
    progress_writers_merge_or_conflict(std::sync::Arc::new(sink));
}

#[test]
fn once_in_emulator_mode_puts_every_record_in_the_container_once() {
    let kafka = kafka_with("orders", 3, 250);
    let azurite = Azurite::start();
    azurite.create_container("lake");
    let dir = tempfile::tempdir().unwrap();
    let connections = serde_json::json!({
        "bootstrap_servers": kafka.bootstrap_servers(),
        "storage_url": "az://lake/exports/kafka",
        "storage_options": {"azure_storage_use_emulator": "true"},
    });
    let topics = serde_json::json!([
        {"topic": "orders", "format": "json", "max_records_per_file": 100}
    ]);
    write_config(dir.path(), connections, topics);

    let first = runner(dir.path(), &azurite, &["once"]);
    assert!(first.status.success(), "{first:?}");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("topic=orders status=ok records=750 dead_letters=0 files=9"),
        "{stdout}"
    );

    let rt = runtime();
    let store = open_store(&azurite, "az://lake/exports/kafka", &rt);
    let files = names(&store, "orders");
    assert_eq!(files.len(), 9, "{files:?}");
    for p in 0..3 {
        for start in [0, 100, 200] {
            let name = format!("orders/partition={p}/orders+{p}+{start:020}.parquet");
            assert!(files.contains(&name), "{name} missing from {files:?}");
        }
    }
    let rows = offsets_of(&sink_batches(&store, "orders"));
    assert_rows_exactly(rows, "orders", &[(0, 0..250), (1, 0..250), (2, 0..250)]);
    let progress = store
        .get(&"_runner/progress/runner.orders/orders.json".into())
        .unwrap()
        .expect("progress beside the data");
    let progress: serde_json::Value = serde_json::from_slice(&progress).unwrap();
    assert_eq!(progress["partitions"]["2"]["next_offset"], 250);

    kafka.produce("orders", numbered(1, 250, 30)).unwrap();
    let second = runner(dir.path(), &azurite, &["once"]);
    assert!(second.status.success(), "{second:?}");
    let rows = offsets_of(&sink_batches(&store, "orders"));
    assert_rows_exactly(rows, "orders", &[(0, 0..250), (1, 0..280), (2, 0..250)]);
}

fn endpoint_config(
    dir: &Path,
    azurite: &Azurite,
    bootstrap: &str,
    extra: serde_json::Value,
    topics: serde_json::Value,
) {
    let mut connections = serde_json::json!({
        "bootstrap_servers": bootstrap,
        "storage_url": "abfss://lake@devstoreaccount1.dfs.core.windows.net/raw",
        "storage_options": azurite.endpoint_options(),
        "storage_retry": {"max_retries": 2, "timeout_secs": 2},
    });
    for (k, v) in extra.as_object().unwrap() {
        connections[k] = v.clone();
    }
    write_config(dir, connections, topics);
}

#[test]
fn validate_connect_names_what_is_wrong_with_the_store() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("orders", 2).unwrap();
    let azurite = Azurite::start();
    let dir = tempfile::tempdir().unwrap();
    let topics = serde_json::json!([{"topic": "orders"}]);
    let bootstrap = kafka.bootstrap_servers();

    // The container does not exist yet.
    endpoint_config(
        dir.path(),
        &azurite,
        &bootstrap,
        serde_json::json!({}),
        topics.clone(),
    );
    let missing = runner(dir.path(), &azurite, &["validate", "--connect"]);
    let stdout = String::from_utf8_lossy(&missing.stdout);
    assert_eq!(missing.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ok      kafka: 1 broker(s)"), "{stdout}");
    assert!(stdout.contains("orders (2 partitions)"), "{stdout}");
    assert!(stdout.contains("FAILED  sink"), "{stdout}");
    assert!(stdout.contains("ContainerNotFound"), "{stdout}");
    assert!(stdout.contains("does not exist; create it"), "{stdout}");

    azurite.create_container("lake");
    let ok = runner(dir.path(), &azurite, &["validate", "--connect"]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok      sink: abfss://lake@devstoreaccount1.dfs.core.windows.net/raw is reachable and writable (credential: account key)"),
        "{stdout}"
    );
    let rt = runtime();
    let store = open_store(&azurite, "az://lake", &rt);
    assert_eq!(
        names(&store, ""),
        Vec::<String>::new(),
        "the probe object is deleted"
    );

    // A wrong key: the store rejects it and the message says which credential was used.
    let mut options = azurite.endpoint_options();
    options["azure_storage_account_key"] =
        serde_json::json!(common::azurite::KEY.replace("Eby8", "AAAA"));
    let extra = serde_json::json!({"storage_options": options});
    endpoint_config(dir.path(), &azurite, &bootstrap, extra, topics.clone());
    let rejected = runner(dir.path(), &azurite, &["validate", "--connect"]);
    let stdout = String::from_utf8_lossy(&rejected.stdout);
    assert_eq!(rejected.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("403 Forbidden"), "{stdout}");
    assert!(
        stdout.contains("rejected the credentials (account key)"),
        "{stdout}"
    );
    assert!(!stdout.contains("AAAA"), "the key is never shown: {stdout}");
    // An export with that key fails in a way no retry fixes: exit 2.
    let export = runner(dir.path(), &azurite, &["once"]);
    let stdout = String::from_utf8_lossy(&export.stdout);
    assert_eq!(export.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("rejected the credentials"), "{stdout}");

    // A key that is not base64 is a configuration error, found without a request.
    options["azure_storage_account_key"] = serde_json::json!("your_storage_account_key");
    let extra = serde_json::json!({"storage_options": options});
    endpoint_config(dir.path(), &azurite, &bootstrap, extra, topics);
    let bad = runner(dir.path(), &azurite, &["validate"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("must be the account's base64 key"),
        "{stderr}"
    );
}

/// An in-process run context on Azurite (explicit endpoint), built from config files.
fn azure_context(
    dir: &Path,
    azurite: &Azurite,
    bootstrap: &str,
    extra: serde_json::Value,
    rt: &tokio::runtime::Runtime,
) -> runner::jobs::RunContext {
    endpoint_config(dir, azurite, bootstrap, extra, serde_json::json!([]));
    let config = Config::load(dir).unwrap();
    let sink = Sink::open(&config.sink, rt.handle().clone()).unwrap();
    let local = context(bootstrap, dir, rt);
    runner::jobs::RunContext {
        processors: Default::default(),
        config,
        sink: std::sync::Arc::new(sink),
        registry: None,
        options: local.options,
    }
}

#[test]
fn the_exporters_azure_fields_with_a_time_layout_and_a_staging_folder() {
    const T0: i64 = 1_795_384_800_000; // 2026-11-22T22:00:00Z
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("events", 2).unwrap();
    for p in 0..2 {
        kafka.produce("events", bucketed(p, 180, 3, T0)).unwrap();
    }
    let azurite = Azurite::start();
    azurite.create_container("lake");
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // The exporter's own Azure fields, plus the emulator's endpoint.
    let extra = serde_json::json!({
        "staging_dir": "staging",
        "storage_url": null,
        "azure_storage_account_name": common::azurite::ACCOUNT,
        "azure_storage_account_key": common::azurite::KEY,
        "azure_filesystem_name": "lake",
        "storage_options": {
            "azure_storage_endpoint": format!("{}/{}", azurite.url(), common::azurite::ACCOUNT),
            "allow_http": "true",
        },
    });
    let ctx = azure_context(dir.path(), &azurite, &kafka.bootstrap_servers(), extra, &rt);
    let t = topic(serde_json::json!({
        "topic": "events", "format": "json",
        "path_template": "{topic}/date={yyyy}-{MM}-{dd}/hour={HH}"
    }));
    assert_eq!(records(&run(&ctx, &[t])), 360);

    let store = open_store(&azurite, "az://lake", &rt);
    let files = names(&store, "events");
    let want: Vec<String> = [
        "2026-11-22/hour=22",
        "2026-11-22/hour=23",
        "2026-11-23/hour=00",
    ]
    .iter()
    .flat_map(|h| (0..2).map(move |p| format!("events/date={h}/events+{p}+{:020}.parquet", 0)))
    .collect::<std::collections::BTreeSet<_>>()
    .into_iter()
    .collect();
    assert_eq!(files, want);
    let rows = offsets_of(&sink_batches(&store, "events"));
    assert_rows_exactly(rows, "events", &[(0, 0..180), (1, 0..180)]);
    let staged = parquet_files(&dir.path().join("staging"));
    assert!(staged.is_empty(), "staging files left behind: {staged:?}");
}

#[test]
fn azurite_stopped_mid_run_fails_cleanly_and_a_rerun_after_it_returns_completes_exactly_once() {
    let kafka = kafka_with("orders", 4, 20_000);
    let mut azurite = Azurite::start();
    azurite.create_container("lake");
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = azure_context(
        dir.path(),
        &azurite,
        &kafka.bootstrap_servers(),
        serde_json::json!({}),
        &rt,
    );
    let t = topic(serde_json::json!({
        "topic": "orders", "group_id": "g", "format": "json", "max_records_per_file": 500
    }));
    let store = open_store(&azurite, "az://lake/raw", &rt);
    let progress_path = "_runner/progress/g/orders.json".into();

    let outcomes = std::thread::scope(|s| {
        let running = s.spawn(|| runner::jobs::run_once(&ctx, std::slice::from_ref(&t)));
        // Stop Azurite as soon as the first progress record exists: the run is mid-flight.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while store.get(&progress_path).ok().flatten().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "no progress within 60 s"
            );
            assert!(
                !running.is_finished(),
                "the run ended before Azurite could be stopped"
            );
        }
        azurite.stop();
        running.join().unwrap()
    });
    let error = outcomes[0]
        .result
        .as_ref()
        .expect_err("the run must fail")
        .to_string();
    assert!(
        error.contains("sink abfss://lake@devstoreaccount1.dfs.core.windows.net/raw"),
        "{error}"
    );
    assert!(error.contains("cannot reach the store"), "{error}");

    azurite.restart();
    // Progress never runs ahead of the data: every offset before it is in a visible file.
    let state: serde_json::Value =
        serde_json::from_slice(&store.get(&progress_path).unwrap().unwrap()).unwrap();
    let rows = offsets_of(&sink_batches(&store, "orders"));
    assert!(
        rows.len() < 80_000,
        "Azurite stopped after the run had written everything"
    );
    for (p, entry) in state["partitions"].as_object().unwrap() {
        let p: i32 = p.parse().unwrap();
        let next = entry["next_offset"].as_i64().unwrap();
        let have = rows.iter().filter(|(rp, o)| *rp == p && *o < next).count() as i64;
        assert_eq!(
            have, next,
            "partition {p}: progress {next} but {have} records stored"
        );
    }

    // The rerun starts exactly at the recorded progress; a file that became visible just
    // before the outage, without progress, is rewritten under the same name.
    let recorded: i64 = state["partitions"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["next_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(records(&run(&ctx, &[t])) as i64, 80_000 - recorded);
    let rows = offsets_of(&sink_batches(&store, "orders"));
    assert_rows_exactly(
        rows,
        "orders",
        &[
            (0, 0..20_000),
            (1, 0..20_000),
            (2, 0..20_000),
            (3, 0..20_000),
        ],
    );
}
