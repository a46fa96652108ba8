//! Exports to Azure Blob Storage / ADLS Gen2 through Azurite, the Azure Storage emulator.

mod common;

use common::azurite::Azurite;
use common::*;
use runner::config::Config;
use runner::embedded::EmbeddedKafka;
use runner::sink::Sink;
use std::path::Path;
use std::process::{Command, Output};

fn write_config(dir: &Path, connections: serde_json::Value, topics: serde_json::Value) {
    std::fs::write(dir.join("connections.json"), connections.to_string()).unwrap();
    std::fs::write(dir.join("topics.json"), topics.to_string()).unwrap();
}

fn runner(dir: &Path, azurite: &Azurite, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(["--config-dir", &dir.to_string_lossy()])
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
fn once_in_emulator_mode_puts_every_record_in_the_container_once() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("orders", 3).unwrap();
    for p in 0..3 {
        kafka.produce("orders", numbered(p, 0, 250)).unwrap();
    }
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
        stdout.contains("topic=orders status=ok records=750 files=9"),
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
