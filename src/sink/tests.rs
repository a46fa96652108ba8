use super::{SinkConfig, StoreKind};
use crate::config::{Config, ConfigError};

fn load(connections: serde_json::Value) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
    std::fs::write(dir.path().join("topics.json"), "[]").unwrap();
    Config::load(dir.path())
}

fn sink(connections: serde_json::Value) -> SinkConfig {
    load(connections).unwrap().sink
}

fn error(connections: serde_json::Value) -> String {
    load(connections).unwrap_err().to_string()
}

#[test]
fn azure_url_forms_resolve_to_container_and_prefix() {
    for (url, store_url, prefix) in [
        (
            "abfss://raw@lake.dfs.core.windows.net/kafka/exports",
            "abfss://raw@lake.dfs.core.windows.net",
            "kafka/exports",
        ),
        ("az://raw/kafka", "az://raw", "kafka"),
        ("azure://raw", "azure://raw", ""),
        (
            "https://lake.blob.core.windows.net/raw/kafka/",
            "https://lake.blob.core.windows.net/raw",
            "kafka",
        ),
    ] {
        let s = sink(serde_json::json!({"bootstrap_servers": "k:9092", "storage_url": url}));
        assert_eq!(s.kind, StoreKind::Azure, "{url}");
        assert_eq!(s.store_url, store_url, "{url}");
        assert_eq!(s.prefix, prefix, "{url}");
    }
}

#[test]
fn s3_gcs_and_local_forms() {
    let s = sink(serde_json::json!({"bootstrap_servers": "k", "storage_url": "s3://bucket/a/b"}));
    assert_eq!(
        (s.kind, s.store_url.as_str(), s.prefix.as_str()),
        (StoreKind::S3, "s3://bucket", "a/b")
    );
    let s = sink(serde_json::json!({"bootstrap_servers": "k", "storage_url": "gs://bucket"}));
    assert_eq!((s.kind, s.prefix.as_str()), (StoreKind::Gcs, ""));
    let s = sink(serde_json::json!({"bootstrap_servers": "k", "storage_url": "file:///tmp/x"}));
    assert_eq!(s.local_dir.as_deref(), Some(std::path::Path::new("/tmp/x")));
    let s = sink(serde_json::json!({"bootstrap_servers": "k"}));
    assert!(s.local_dir.unwrap().ends_with("out"));
}

#[test]
fn the_exporters_azure_fields_make_an_adls_sink_with_an_account_key() {
    let s = sink(serde_json::json!({
        "bootstrap_servers": "k",
        "azure_storage_account_name": "lake",
        "azure_storage_account_key": "a2V5",
        "azure_filesystem_name": "raw",
    }));
    assert_eq!(s.kind, StoreKind::Azure);
    assert_eq!(s.url, "abfss://raw@lake.dfs.core.windows.net");
    assert_eq!(s.options["azure_storage_account_key"].expose(), "a2V5");
    assert_eq!(s.credential(), "account key");
    assert!(!format!("{s:?}").contains("a2V5"), "keys are masked");
}

#[test]
fn credential_kinds_are_named_from_the_options() {
    for (options, kind) in [
        (
            serde_json::json!({"azure_storage_sas_token": "sv=1&sig=x"}),
            "SAS token",
        ),
        (
            serde_json::json!({"azure_client_id": "c", "azure_client_secret": "s", "azure_tenant_id": "t"}),
            "service principal (client id and secret)",
        ),
        (
            serde_json::json!({"azure_client_id": "c", "azure_tenant_id": "t", "azure_federated_token_file": "/var/run/token"}),
            "workload identity (federated token)",
        ),
        (
            serde_json::json!({"azure_use_azure_cli": "true"}),
            "Azure CLI login",
        ),
    ] {
        let s = sink(serde_json::json!({
            "bootstrap_servers": "k", "storage_url": "az://raw", "storage_options": options
        }));
        assert_eq!(s.credential(), kind);
    }
}

#[test]
fn mistakes_name_the_field_and_the_fix() {
    for (connections, says) in [
        (
            serde_json::json!({"bootstrap_servers": "k", "storage_url": "ftp://x/y"}),
            "field `storage_url`: the scheme ftp:// is not supported; use a folder",
        ),
        (
            serde_json::json!({"bootstrap_servers": "k", "storage_url": "az://raw", "storage_options": {"azure_sas": "x"}}),
            "field `storage_options.azure_sas`: is not an option of the Azure store",
        ),
        (
            serde_json::json!({"bootstrap_servers": "k", "storage_url": "abfss://raw@other.dfs.core.windows.net", "azure_storage_account_name": "lake"}),
            "field `azure_storage_account_name`: is lake but storage_url names account other",
        ),
        (
            serde_json::json!({"bootstrap_servers": "k", "azure_filesystem_name": "raw"}),
            "field `azure_storage_account_name`: is missing",
        ),
        (
            serde_json::json!({"bootstrap_servers": "k", "storage_url": "https://lake.blob.core.windows.net/raw?sv=1&sig=x"}),
            "put a SAS token in storage_options.azure_storage_sas_token",
        ),
        (
            serde_json::json!({"bootstrap_servers": "k", "storage_options": {"timeout": "5s"}}),
            "a local folder takes no storage_options",
        ),
        (
            serde_json::json!({"bootstrap_servers": "k", "storage_retry": {"retries": 1}}),
            "field `storage_retry.retries`: unknown field",
        ),
    ] {
        let e = error(connections);
        assert!(e.contains(says), "{e}\nshould say: {says}");
        assert!(e.contains("connections.json"), "{e}");
    }
}

#[test]
fn a_bad_container_name_is_reported_when_the_store_is_built() {
    let cfg = sink(
        serde_json::json!({"bootstrap_servers": "k", "storage_url": "abfss://Raw_Data@lake.dfs.core.windows.net"}),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let e = match super::Sink::open(&cfg, rt.handle().clone()) {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("\"Raw_Data\" is not a valid Azure name"), "{e}");
    assert!(
        e.contains("fix storage_url (or azure_filesystem_name) in connections.json"),
        "{e}"
    );
}
