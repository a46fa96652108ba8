//! `connections.json`: where Kafka, the Schema Registry and the sink are.

use super::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connections {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// TLS files (paths relative to connections.json), as in the exporter.
    #[serde(default)]
    pub ssl_config: Option<SslConfig>,
    /// SASL authentication; combined with `ssl_config` it becomes SASL_SSL.
    #[serde(default)]
    pub sasl: Option<SaslConfig>,
    #[serde(default)]
    pub schema_registry_url: Option<String>,
    /// Basic authentication for the Schema Registry (Confluent Cloud: API key and secret).
    #[serde(default)]
    pub schema_registry_username: Option<String>,
    #[serde(default)]
    pub schema_registry_password: Option<Secret>,
    /// A PEM CA certificate for a registry whose certificate a private CA signed.
    #[serde(default)]
    pub schema_registry_ca: Option<PathBuf>,
    #[serde(default)]
    pub azure_storage_account_name: Option<String>,
    #[serde(default)]
    pub azure_storage_account_key: Option<Secret>,
    #[serde(default)]
    pub azure_filesystem_name: Option<String>,
    /// Where output and progress records go: a folder (relative to connections.json), a
    /// `file://`, Azure, `s3://` or `gs://` URL. Defaults to the exporter's Azure fields when
    /// they are set, else `out` beside connections.json.
    #[serde(default)]
    pub storage_url: Option<String>,
    /// object_store options of the store (credentials, endpoint, timeouts); values are secret.
    #[serde(default)]
    pub storage_options: BTreeMap<String, Secret>,
    #[serde(default)]
    pub storage_retry: Option<super::sink::StorageRetry>,
    /// Local folder to stage each file in before upload (relative to connections.json).
    #[serde(default)]
    pub staging_dir: Option<PathBuf>,
    /// Any librdkafka property, passed through as is (it overrides runner's own settings).
    #[serde(default)]
    pub kafka_properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SslConfig {
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub key_password: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A secret string: never shown by `Debug`, so it cannot reach a log line or an error.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl Connections {
    pub(super) fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(ConfigError::invalid(
                file,
                "bootstrap_servers",
                "is empty; set it to host:port of one or more brokers",
            ));
        }
        let base = file.parent().unwrap_or(Path::new("."));
        if let Some(ssl) = &self.ssl_config {
            for (name, path) in [("ca", &ssl.ca), ("cert", &ssl.cert), ("key", &ssl.key)] {
                if let Some(path) = path {
                    let full = base.join(path);
                    if !full.is_file() {
                        return Err(ConfigError::invalid(
                            file,
                            format!("ssl_config.{name}"),
                            format!(
                                "file {} does not exist; paths are relative to {}",
                                full.display(),
                                file.display()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Makes file paths absolute against the config folder, as the exporter did.
    pub(super) fn resolve_paths(&mut self, dir: &Path) {
        if let Some(ca) = &mut self.schema_registry_ca {
            *ca = dir.join(&*ca);
        }
        if let Some(ssl) = &mut self.ssl_config {
            for path in [&mut ssl.ca, &mut ssl.cert, &mut ssl.key]
                .into_iter()
                .flatten()
            {
                *path = dir.join(&*path);
            }
        }
    }
}
