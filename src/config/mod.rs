//! Configuration: `connections.json` and `topics.json` in the exporter's format, plus runner's
//! optional extensions. Everything is checked here, before any stage touches Kafka.

pub mod aggregate;
mod connections;
pub mod fleet;
mod interpolate;
pub mod jobs;
mod partition_map;
mod path_template;
pub mod sink;
pub mod stream;
mod strict_json;
mod topics;

pub use connections::{Connections, SaslConfig, SaslMechanism, Secret, SslConfig};
pub use jobs::{ContinuousSettings, JOBS_DIR, JobConfig, JobKind};
pub use partition_map::PartitionMap;
pub use path_template::{DEFAULT_TEMPLATE, PathTemplate, Piece};
pub use topics::{Compression, Format, OnDecodeError, TopicConfig, TypeConfig};

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

pub const CONNECTIONS_FILE: &str = "connections.json";
pub const TOPICS_FILE: &str = "topics.json";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}. Create it, or pass --config-dir with the folder that holds it", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: line {line}, column {column}: {message}. Fix the JSON syntax there", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: field `{field}`: {message}", file.display())]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
    /// A command-line flag that cannot be used as given.
    #[error("{0}")]
    Flags(String),
}

impl ConfigError {
    pub(crate) fn invalid(
        file: &Path,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            file: file.to_path_buf(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A loaded, validated configuration folder.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub connections: Connections,
    pub sink: sink::SinkConfig,
    pub topics: Vec<TopicConfig>,
    /// `jobs/*.json`, sorted by name.
    pub jobs: Vec<JobConfig>,
}

impl Config {
    /// Loads and validates `connections.json`, `topics.json` and `jobs/` from `dir`.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        Config::load_from(dir, &dir.join(CONNECTIONS_FILE))
    }

    /// As [`Config::load`], with connections from another file (a mounted Secret, say); paths
    /// in it are relative to its own folder.
    pub fn load_from(dir: &Path, connections_file: &Path) -> Result<Config, ConfigError> {
        let topics_file = dir.join(TOPICS_FILE);
        let connections_dir = connections_file.parent().unwrap_or(dir);
        let mut connections: Connections = load_json(connections_file)?;
        connections.validate(connections_file)?;
        let sink =
            sink::SinkConfig::from_connections(&connections, connections_file, connections_dir)?;
        let mut topics: Vec<TopicConfig> = load_json(&topics_file)?;
        for topic in &mut topics {
            topic.schema_file = topic.schema_file.as_ref().map(|f| dir.join(f));
            for t in topic.types.iter_mut().flat_map(|t| t.values_mut()) {
                t.schema_file = t.schema_file.as_ref().map(|f| dir.join(f));
            }
        }
        topics::validate_all(&topics, &topics_file)?;
        connections.resolve_paths(connections_dir);
        let jobs = jobs::load_all(dir, &connections, &topics)?;
        Ok(Config {
            dir: dir.to_path_buf(),
            connections,
            sink,
            topics,
            jobs,
        })
    }

    /// The enabled topics, or exactly the named ones (enabled or not) when names are given.
    pub fn select_topics(&self, names: &[String]) -> Result<Vec<TopicConfig>, ConfigError> {
        if names.is_empty() {
            return Ok(self.topics.iter().filter(|t| t.enabled).cloned().collect());
        }
        let mut chosen = Vec::new();
        for name in names {
            let found: Vec<_> = self.topics.iter().filter(|t| &t.topic == name).collect();
            if found.is_empty() {
                let known: Vec<_> = self.topics.iter().map(|t| t.topic.as_str()).collect();
                return Err(ConfigError::invalid(
                    &self.dir.join(TOPICS_FILE),
                    "topic",
                    format!(
                        "--topic {name} is not listed; add an entry for it or use one of: {}",
                        known.join(", ")
                    ),
                ));
            }
            chosen.extend(found.into_iter().cloned());
        }
        Ok(chosen)
    }
}

impl Config {
    /// The enabled jobs, or exactly the named ones (enabled or not) when names are given.
    pub fn select_jobs(&self, names: &[String]) -> Result<Vec<JobConfig>, ConfigError> {
        if names.is_empty() {
            return Ok(self.jobs.iter().filter(|j| j.enabled).cloned().collect());
        }
        names
            .iter()
            .map(|name| {
                self.jobs.iter().find(|j| &j.name == name).cloned().ok_or_else(|| {
                    let known: Vec<_> = self.jobs.iter().map(|j| j.name.as_str()).collect();
                    ConfigError::invalid(
                        &self.dir.join(JOBS_DIR),
                        "name",
                        format!(
                            "--job {name} is not defined; add jobs/{name}.json or use one of: {}",
                            known.join(", ")
                        ),
                    )
                })
            })
            .collect()
    }
}

/// Reads a JSON file, expands `${ENV_VAR}` in its strings, then deserializes it with the JSON
/// path of any error.
pub(crate) fn load_json<T: DeserializeOwned>(file: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let strict_json::StrictValue(mut value) =
        serde_json::from_str(&text).map_err(|e| ConfigError::Syntax {
            file: file.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
    interpolate::expand_env(&mut value, "")
        .map_err(|(field, message)| ConfigError::invalid(file, field, message))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let message = strip_position(&e.inner().to_string());
        ConfigError::invalid(file, field, message)
    })
}

/// serde_json appends "at line 0 column 0" when deserializing from a `Value`; it means nothing.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests;
