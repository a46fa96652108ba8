//! The sink as the user configures it in connections.json: `storage_url` (a folder, `file://`,
//! an Azure form, `s3://` or `gs://`), the exporter's `azure_*` fields, `storage_options`
//! (object_store's own keys), `storage_retry` and `staging_dir`. Checked at load, offline.

use super::{ConfigError, Connections, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Local,
    Azure,
    S3,
    Gcs,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Local => "local folder",
            StoreKind::Azure => "Azure",
            StoreKind::S3 => "S3",
            StoreKind::Gcs => "Google Cloud Storage",
        }
    }
}

/// Retries of one store request on transient errors (timeouts, 5xx, refused connections),
/// with exponential backoff; after either limit the run fails and the next run redoes the work.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StorageRetry {
    #[serde(default = "default_max_retries")]
    pub max_retries: usize,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl Default for StorageRetry {
    fn default() -> Self {
        StorageRetry {
            max_retries: default_max_retries(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

fn default_max_retries() -> usize {
    10
}
fn default_timeout_secs() -> u64 {
    180
}

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub kind: StoreKind,
    /// The store as shown in messages (no secrets): `file:///abs/out`, `abfss://fs@acct...`.
    pub url: String,
    /// The local folder of a `Local` sink.
    pub local_dir: Option<PathBuf>,
    /// The URL given to the object_store builder (scheme and container or bucket).
    pub store_url: String,
    /// Folder inside the container or bucket; empty for its root.
    pub prefix: String,
    /// object_store keys (`azure_storage_sas_token`, `aws_region`, `timeout`, ...).
    pub options: BTreeMap<String, Secret>,
    pub retry: StorageRetry,
    /// Write each file here first, upload it, verify its size, then delete it (as the exporter).
    pub staging_dir: Option<PathBuf>,
}

impl SinkConfig {
    /// Resolves the sink from connections.json (`file`), whose folder is `dir`.
    pub fn from_connections(
        c: &Connections,
        file: &Path,
        dir: &Path,
    ) -> Result<SinkConfig, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::invalid(file, field, message);
        let mut options = c.storage_options.clone();
        let url = match (&c.storage_url, &c.azure_filesystem_name) {
            (Some(url), _) => url.clone(),
            (None, Some(fs)) => {
                let Some(account) = &c.azure_storage_account_name else {
                    return Err(invalid(
                        "azure_storage_account_name",
                        "is missing; azure_filesystem_name needs the storage account's name".into(),
                    ));
                };
                format!("abfss://{fs}@{account}.dfs.core.windows.net/")
            }
            (None, None) => "out".to_string(),
        };
        let mut sink = match scheme(&url) {
            None | Some("file") => local(&url, dir),
            Some(_) => remote(&url).map_err(|m| invalid("storage_url", m))?,
        };
        if sink.kind == StoreKind::Azure {
            seed_azure_fields(c, &mut options, &sink).map_err(|(f, m)| invalid(f, m))?;
        } else if c.azure_storage_account_key.is_some() && c.storage_url.is_some() {
            return Err(invalid(
                "azure_storage_account_key",
                format!(
                    "is set but storage_url {url} is not an Azure store; remove it or point storage_url at Azure"
                ),
            ));
        }
        for key in options.keys() {
            check_option(sink.kind, key)
                .map_err(|m| invalid(&format!("storage_options.{key}"), m))?;
        }
        sink.options = options;
        sink.retry = c.storage_retry.unwrap_or_default();
        sink.staging_dir = c.staging_dir.as_ref().map(|d| dir.join(d));
        Ok(sink)
    }

    /// The Azure container (filesystem) named by the URL.
    pub fn container(&self) -> Option<String> {
        let url = Url::parse(&self.store_url).ok()?;
        Some(match url.username() {
            "" if url.scheme() == "https" => url.path().trim_matches('/').to_string(),
            "" => url.host_str()?.to_string(),
            fs => fs.to_string(),
        })
    }

    /// How the sink authenticates, for logs and `validate`; never the secret itself.
    pub fn credential(&self) -> String {
        let has = |keys: &[&str]| {
            keys.iter().any(|k| {
                self.options.contains_key(*k)
                    || std::env::var(k.to_uppercase()).is_ok_and(|v| !v.is_empty())
            })
        };
        match self.kind {
            StoreKind::Local => "file system permissions".into(),
            StoreKind::Azure => {
                let kind = if has(&["azure_storage_use_emulator"]) {
                    "the Azurite emulator's well-known key"
                } else if has(&["azure_storage_token", "bearer_token"]) {
                    "bearer token"
                } else if has(&["azure_storage_account_key", "azure_storage_access_key"]) {
                    "account key"
                } else if has(&["azure_federated_token_file"]) && has(&["azure_client_id"]) {
                    "workload identity (federated token)"
                } else if has(&["azure_client_secret"]) {
                    "service principal (client id and secret)"
                } else if has(&["azure_storage_sas_token", "azure_storage_sas_key"]) {
                    "SAS token"
                } else if has(&["azure_use_azure_cli"]) {
                    "Azure CLI login"
                } else {
                    "managed identity (no other credential given)"
                };
                kind.into()
            }
            StoreKind::S3 | StoreKind::Gcs => {
                "storage_options and the environment (see README)".into()
            }
        }
    }
}

fn scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(s, _)| s)
}

fn local(url: &str, dir: &Path) -> SinkConfig {
    let folder = dir.join(url.strip_prefix("file://").unwrap_or(url));
    SinkConfig {
        kind: StoreKind::Local,
        url: format!("file://{}", folder.display()),
        local_dir: Some(folder),
        store_url: String::new(),
        prefix: String::new(),
        options: BTreeMap::new(),
        retry: StorageRetry::default(),
        staging_dir: None,
    }
}

const SUPPORTED: &str = "use a folder, file:///path, abfss://<filesystem>@<account>.dfs.core.windows.net/<prefix>, az://<container>/<prefix>, https://<account>.blob.core.windows.net/<container>/<prefix>, s3://<bucket>/<prefix> or gs://<bucket>/<prefix>";

fn remote(text: &str) -> Result<SinkConfig, String> {
    let url =
        Url::parse(text).map_err(|e| format!("{text} is not a valid URL ({e}); {SUPPORTED}"))?;
    if url.query().is_some() {
        return Err(format!(
            "{text} has a query string; put a SAS token in storage_options.azure_storage_sas_token instead"
        ));
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let path: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let (kind, store_url, prefix) = match url.scheme() {
        "abfs" | "abfss" | "az" | "azure" | "adl" => (
            StoreKind::Azure,
            url[..url::Position::BeforePath].to_string(),
            path.join("/"),
        ),
        "https" if host.ends_with(".core.windows.net") => {
            let Some((container, rest)) = path.split_first() else {
                return Err(format!(
                    "{text} names no container; add it: https://{host}/<container>/<prefix>"
                ));
            };
            (
                StoreKind::Azure,
                format!("https://{host}/{container}"),
                rest.join("/"),
            )
        }
        "s3" | "s3a" => (StoreKind::S3, format!("s3://{host}"), path.join("/")),
        "gs" => (StoreKind::Gcs, format!("gs://{host}"), path.join("/")),
        other => {
            return Err(format!(
                "the scheme {other}:// is not supported; {SUPPORTED}"
            ));
        }
    };
    if host.is_empty() {
        return Err(format!("{text} names no container or bucket; {SUPPORTED}"));
    }
    compiled_in(kind)?;
    Ok(SinkConfig {
        kind,
        url: text.trim_end_matches('/').to_string(),
        local_dir: None,
        store_url,
        prefix,
        options: BTreeMap::new(),
        retry: StorageRetry::default(),
        staging_dir: None,
    })
}

/// Azure's rule for container (filesystem) names, checked when the store is built (not at
/// load, so the exporter's example files with placeholder names still load).
pub(crate) fn check_container(name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "container (filesystem) \"{name}\" is not a valid Azure name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit"
        ))
    }
}

/// The exporter's `azure_storage_account_name` and `_key` feed the Azure store.
fn seed_azure_fields(
    c: &Connections,
    options: &mut BTreeMap<String, Secret>,
    sink: &SinkConfig,
) -> Result<(), (&'static str, String)> {
    if let Some(account) = &c.azure_storage_account_name {
        let in_url = Url::parse(&sink.url)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| h.split('.').next().unwrap_or("").to_string())
            })
            .filter(|_| sink.url.contains(".core.windows.net"));
        if let Some(in_url) = in_url.filter(|a| a != account) {
            return Err((
                "azure_storage_account_name",
                format!("is {account} but storage_url names account {in_url}; make them agree"),
            ));
        }
        options
            .entry("azure_storage_account_name".into())
            .or_insert_with(|| Secret::from(account.as_str()));
    }
    if let Some(key) = &c.azure_storage_account_key {
        options
            .entry("azure_storage_account_key".into())
            .or_insert_with(|| key.clone());
    }
    Ok(())
}

fn check_option(kind: StoreKind, key: &str) -> Result<(), String> {
    // Unread when no object store is compiled in.
    let _ = key;
    let known = match kind {
        StoreKind::Local => {
            return Err("a local folder takes no storage_options; remove them".into());
        }
        #[cfg(feature = "azure")]
        StoreKind::Azure => key.parse::<object_store::azure::AzureConfigKey>().is_ok(),
        #[cfg(feature = "s3")]
        StoreKind::S3 => key.parse::<object_store::aws::AmazonS3ConfigKey>().is_ok(),
        #[cfg(feature = "gcs")]
        StoreKind::Gcs => key.parse::<object_store::gcp::GoogleConfigKey>().is_ok(),
        #[allow(unreachable_patterns)]
        _ => false,
    };
    if known {
        Ok(())
    } else {
        Err(format!(
            "is not an option of the {} store; see README's Storage section for the keys",
            kind.name()
        ))
    }
}

fn compiled_in(kind: StoreKind) -> Result<(), String> {
    let (on, feature) = match kind {
        StoreKind::Local => (true, ""),
        StoreKind::Azure => (cfg!(feature = "azure"), "azure"),
        StoreKind::S3 => (cfg!(feature = "s3"), "s3"),
        StoreKind::Gcs => (cfg!(feature = "gcs"), "gcs"),
    };
    if on {
        Ok(())
    } else {
        Err(format!(
            "this build of runner has no {} support; rebuild with `cargo build --release --features {feature}`",
            kind.name()
        ))
    }
}

impl SinkConfig {
    /// A local folder sink (tests, the demo, benchmarks).
    pub fn local_folder(dir: &Path) -> SinkConfig {
        local(&dir.display().to_string(), Path::new(""))
    }
}
