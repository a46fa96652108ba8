//! Builds the object_store client of a `SinkConfig`: one backend per store kind, each with the
//! configured retries, then scoped to the prefix.

use super::{SinkConfig, StoreKind};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use std::sync::Arc;

/// Builds the store; offline, so bad keys or credentials show up before any network call.
/// Returns the store and, for a local sink, its canonical folder.
pub fn build(
    cfg: &SinkConfig,
) -> Result<(Arc<dyn ObjectStore>, Option<std::path::PathBuf>), String> {
    if let Some(dir) = &cfg.local_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the folder: {e}; check its permissions"))?;
        let root = dir.canonicalize().map_err(|e| e.to_string())?;
        let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| e.to_string())?;
        return Ok((Arc::new(store), Some(root)));
    }
    if cfg.kind == StoreKind::Azure
        && let Some(container) = cfg.container()
    {
        crate::config::sink::check_container(&container).map_err(|e| {
            format!("{e}; fix storage_url (or azure_filesystem_name) in connections.json")
        })?;
    }
    let store = remote(cfg).map_err(|e| explain_build(cfg, e))?;
    let store = if cfg.prefix.is_empty() {
        store
    } else {
        let prefix = Path::parse(&cfg.prefix).map_err(|e| format!("bad prefix: {e}"))?;
        Arc::new(PrefixStore::new(store, prefix))
    };
    Ok((store, None))
}

#[cfg(any(feature = "azure", feature = "s3", feature = "gcs"))]
fn retry(cfg: &SinkConfig) -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: cfg.retry.max_retries,
        retry_timeout: std::time::Duration::from_secs(cfg.retry.timeout_secs),
        ..Default::default()
    }
}

fn remote(cfg: &SinkConfig) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    // Unread when no object store is compiled in.
    #[cfg_attr(
        not(any(feature = "azure", feature = "s3", feature = "gcs")),
        allow(unused_variables)
    )]
    let options = cfg.options.iter().map(|(k, v)| (k.as_str(), v.expose()));
    match cfg.kind {
        #[cfg(feature = "azure")]
        StoreKind::Azure => {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_url(&cfg.store_url)
                .with_retry(retry(cfg));
            for (k, v) in options {
                b = b.with_config(k.parse::<AzureConfigKey>()?, v);
            }
            Ok(Arc::new(b.build()?))
        }
        #[cfg(feature = "s3")]
        StoreKind::S3 => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            let mut b = AmazonS3Builder::from_env()
                .with_url(&cfg.store_url)
                .with_retry(retry(cfg));
            for (k, v) in options {
                b = b.with_config(k.parse::<AmazonS3ConfigKey>()?, v);
            }
            Ok(Arc::new(b.build()?))
        }
        #[cfg(feature = "gcs")]
        StoreKind::Gcs => {
            use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_url(&cfg.store_url)
                .with_retry(retry(cfg));
            for (k, v) in options {
                b = b.with_config(k.parse::<GoogleConfigKey>()?, v);
            }
            Ok(Arc::new(b.build()?))
        }
        #[allow(unreachable_patterns)]
        other => Err(object_store::Error::NotSupported {
            source: format!("{} support is not compiled in", other.name()).into(),
        }),
    }
}

fn explain_build(cfg: &SinkConfig, e: object_store::Error) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("access key") || lower.contains("base64") {
        "; azure_storage_account_key must be the account's base64 key (portal: Access keys)"
    } else if lower.contains("account") {
        "; set azure_storage_account_name or use storage_url abfss://<filesystem>@<account>.dfs.core.windows.net/"
    } else {
        ""
    };
    format!("{text} (credential: {}){hint}", cfg.credential())
}

/// What a failed store request says about its cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Denied,
    NoContainer,
    Unreachable,
    Other,
}

pub fn cause(e: &object_store::Error) -> Cause {
    use object_store::Error as E;
    let text = format!("{e:?}").to_lowercase();
    match e {
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => Cause::Denied,
        E::NotFound { .. } => Cause::NoContainer,
        // Before the status checks: a URL's port or block id may hold "403" too.
        _ if text.contains("connect") || text.contains("dns") || text.contains("timed out") => {
            Cause::Unreachable
        }
        _ if text.contains("authoriz")
            || [
                "403 forbidden",
                "401 unauthorized",
                "status: 403",
                "status: 401",
            ]
            .iter()
            .any(|s| text.contains(s)) =>
        {
            Cause::Denied
        }
        _ if text.contains("containernotfound") || text.contains("nosuchbucket") => {
            Cause::NoContainer
        }
        _ => Cause::Other,
    }
}

/// A hint to append to a failed store request, by the kind of failure.
pub fn hint(cfg: &SinkConfig, e: &object_store::Error) -> String {
    match cause(e) {
        Cause::Denied => format!(
            "the store rejected the credentials ({}); check them and that they grant write access",
            cfg.credential()
        ),
        Cause::NoContainer if cfg.kind == StoreKind::Azure => {
            "the container (filesystem) does not exist; create it, e.g. `az storage fs create -n <filesystem> --account-name <account>`".into()
        }
        Cause::NoContainer => "the bucket or container does not exist; create it".into(),
        Cause::Unreachable => {
            "cannot reach the store; check the network, the URL and that the store is up. Progress is recorded only after data, so a rerun redoes exactly the unfinished work".into()
        }
        Cause::Other => "a rerun redoes exactly the unfinished work".into(),
    }
}

/// The error on one line: a store's XML error body shrinks to its code and first message line.
pub fn condense(e: &object_store::Error) -> String {
    let text = e.to_string();
    let Some(xml) = text.find("<?xml") else {
        return text.replace('\n', " ").trim_end_matches('.').to_string();
    };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(['<', '\n'])? + start;
        Some(text[start..end].trim().to_string())
    };
    let head = text[..xml].trim_end_matches([' ', ':']);
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => {
            format!("{head}: {code}: {}", message.trim_end_matches('.'))
        }
        (Some(code), None) => format!("{head}: {code}"),
        _ => head.to_string(),
    }
}
