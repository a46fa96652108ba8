//! `topics.json`: one entry per topic to export, in the exporter's format plus optional fields.

use super::{ConfigError, PartitionMap, PathTemplate};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    pub topic: String,
    /// Consumer group: progress is kept per topic and group. Defaults to `runner.<topic>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Cap on the offsets read per run for the whole topic (split over partitions, see README).
    #[serde(default)]
    pub num_messages: Option<u64>,
    /// Read from the earliest offset instead of the recorded progress.
    #[serde(default)]
    pub reset_offsets: bool,
    /// Start offsets per partition; only the listed partitions are read.
    #[serde(default)]
    pub starting_offsets: Option<PartitionMap<i64>>,
    /// Added to the offsets written into the output, per partition; reading is unaffected.
    #[serde(default)]
    pub offset_increment: Option<PartitionMap<i64>>,
    #[serde(default)]
    pub format: Format,
    /// How keys are decoded into `kafka_key`: raw bytes by default.
    #[serde(default)]
    pub key_format: Format,
    /// Relative to topics.json: for unframed avro the writer schema (`.avsc`); for json a
    /// declared schema (`.avsc`); for unframed protobuf a `.proto` file or a descriptor set.
    #[serde(default)]
    pub schema_file: Option<std::path::PathBuf>,
    /// For unframed protobuf: the message type's full name, e.g. `bank.Transaction`.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub compression: Compression,
    /// A record that cannot be decoded: kept as a dead letter, or fails the topic.
    #[serde(default)]
    pub on_decode_error: OnDecodeError,
    /// Produce dead letters to this Kafka topic instead of `_dead_letters/` in the sink.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Folder of each file, e.g. `{topic}/date={yyyy}-{MM}-{dd}` (see README).
    #[serde(default)]
    pub path_template: PathTemplate,
    #[serde(default = "default_max_records")]
    pub max_records_per_file: u64,
    #[serde(default = "default_max_bytes")]
    pub max_bytes_per_file: u64,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A header whose value names each record's type (seed 003's `item_type_name`); each
    /// type in `types` has its own format and schema.
    #[serde(default)]
    pub type_header: Option<String>,
    /// The types `type_header` may name, each decoded with its own format.
    #[serde(default)]
    pub types: Option<std::collections::BTreeMap<String, TypeConfig>>,
    /// When retention has deleted offsets the run should read: fail (true) or start at the log
    /// start and report the gap (false).
    #[serde(default = "yes")]
    pub fail_on_data_loss: bool,
    /// The web console may show this topic's messages (false for sensitive data).
    #[serde(default = "yes")]
    pub browse: bool,
    /// The web console may offer its messages as files.
    #[serde(default = "yes")]
    pub download: bool,
}

/// One record type of a header-typed topic: its format and, where needed, its schema.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TypeConfig {
    pub format: Format,
    #[serde(default)]
    pub schema_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The payload bytes as a binary `value` column.
    #[default]
    Raw,
    /// JSON objects; top-level fields become typed columns.
    Json,
    /// Avro framed for the Confluent Schema Registry; top-level fields become typed columns.
    Avro,
    /// Protobuf framed for the Schema Registry, or unframed with `schema_file` and `message`.
    Protobuf,
    /// UTF-8 text in a string column.
    String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnDecodeError {
    /// Written whole, with the reason, to `_dead_letters/<topic>/` in the sink.
    #[default]
    DeadLetter,
    /// The topic fails at the record; progress stays before it.
    Fail,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
    Snappy,
    Lz4,
    None,
}

fn default_max_records() -> u64 {
    1_000_000
}
fn default_max_bytes() -> u64 {
    128 * 1024 * 1024
}
fn yes() -> bool {
    true
}

impl TopicConfig {
    pub fn group_id(&self) -> String {
        self.group_id
            .clone()
            .unwrap_or_else(|| format!("runner.{}", self.topic))
    }

    pub fn offset_increment(&self, partition: i32) -> i64 {
        self.offset_increment
            .as_ref()
            .and_then(|m| m.get(partition))
            .unwrap_or(0)
    }

    fn validate(&self, at: &str, file: &Path) -> Result<(), ConfigError> {
        let field = |name: &str| format!("{at}.{name}");
        if !is_topic_name(&self.topic) {
            return Err(ConfigError::invalid(
                file,
                field("topic"),
                format!(
                    "\"{}\" is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)",
                    self.topic
                ),
            ));
        }
        if self
            .group_id
            .as_deref()
            .is_some_and(|g| g.trim().is_empty())
        {
            return Err(ConfigError::invalid(
                file,
                field("group_id"),
                "is empty; remove it to use runner.<topic>, or name a group",
            ));
        }
        if self.num_messages == Some(0) {
            return Err(ConfigError::invalid(
                file,
                field("num_messages"),
                "is 0; remove it (or set null) for no cap",
            ));
        }
        if let Some(starts) = &self.starting_offsets {
            for (partition, offset) in &starts.0 {
                if *offset < 0 {
                    return Err(ConfigError::invalid(
                        file,
                        field(&format!("starting_offsets.{partition}")),
                        format!("{offset} is negative; offsets start at 0"),
                    ));
                }
            }
        }
        self.validate_types(at, file)?;
        validate_schema(
            &self.schema_file,
            &self.message,
            self.format,
            &field("schema_file"),
            &field("message"),
            file,
        )?;
        if self.max_records_per_file == 0 || self.max_bytes_per_file < 1024 {
            return Err(ConfigError::invalid(
                file,
                field("max_records_per_file"),
                "files need at least 1 record and max_bytes_per_file of at least 1024",
            ));
        }
        Ok(())
    }

    fn validate_types(&self, at: &str, file: &Path) -> Result<(), ConfigError> {
        let types = match (&self.type_header, &self.types) {
            (None, None) => return Ok(()),
            (Some(header), Some(types)) if !header.is_empty() && !types.is_empty() => types,
            (Some(_), _) => {
                return Err(ConfigError::invalid(
                    file,
                    format!("{at}.types"),
                    "type_header needs types: {\"<header value>\": {\"format\": \"avro\"}, ...}",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    file,
                    format!("{at}.type_header"),
                    "types need type_header: the header whose value names each record's type",
                ));
            }
        };
        if self.format != Format::Raw || self.schema_file.is_some() {
            return Err(ConfigError::invalid(
                file,
                format!("{at}.format"),
                "a header-typed topic takes its formats from types; remove format and schema_file",
            ));
        }
        for (name, t) in types {
            let at = format!("{at}.types.{name}");
            validate_schema(
                &t.schema_file,
                &t.message,
                t.format,
                &format!("{at}.schema_file"),
                &format!("{at}.message"),
                file,
            )?;
        }
        Ok(())
    }
}

/// `schema_file` and `message` against `format` (see `TopicConfig::schema_file`).
fn validate_schema(
    schema_file: &Option<std::path::PathBuf>,
    message: &Option<String>,
    format: Format,
    schema_field: &str,
    message_field: &str,
    file: &Path,
) -> Result<(), ConfigError> {
    {
        let field = |name: &str| {
            if name == "message" {
                message_field.to_string()
            } else {
                schema_field.to_string()
            }
        };
        let needs_message = format == Format::Protobuf;
        match (schema_file, message, format) {
            (None, None, _) => {}
            (Some(schema), message, Format::Protobuf | Format::Avro | Format::Json)
                if message.is_some() == needs_message =>
            {
                if !schema.is_file() {
                    return Err(ConfigError::invalid(
                        file,
                        field("schema_file"),
                        format!(
                            "{} does not exist; paths are relative to topics.json",
                            schema.display()
                        ),
                    ));
                }
            }
            (_, _, Format::Protobuf) => {
                return Err(ConfigError::invalid(
                    file,
                    field("schema_file"),
                    "unframed protobuf needs both schema_file (.proto or descriptor set) and message (its full name); for Schema Registry framing set neither",
                ));
            }
            (_, Some(_), _) => {
                return Err(ConfigError::invalid(
                    file,
                    field("message"),
                    "applies to format protobuf only; remove it",
                ));
            }
            (Some(_), None, _) => {
                return Err(ConfigError::invalid(
                    file,
                    field("schema_file"),
                    "applies to formats avro (unframed data), json (a declared schema) and protobuf only",
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn validate_all(topics: &[TopicConfig], file: &Path) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for (i, topic) in topics.iter().enumerate() {
        topic.validate(&format!("[{i}]"), file)?;
        if !seen.insert((topic.topic.clone(), topic.group_id())) {
            return Err(ConfigError::invalid(
                file,
                format!("[{i}].topic"),
                format!(
                    "topic {} with group {} is listed twice; merge the entries or give one another group_id",
                    topic.topic,
                    topic.group_id()
                ),
            ));
        }
    }
    Ok(())
}

fn is_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
