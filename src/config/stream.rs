//! The `stream` block of a `"kind": "stream"` job: records of the job's topics are filtered,
//! optionally joined by id, reshaped, processed by a user hook and sent to output topics.

use super::{ConfigError, Format};
use crate::expr::Expr;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// CEL condition on each input record; records for which it is false are skipped.
    #[serde(default)]
    pub filter: Option<String>,
    /// Merge the records of every input topic that share an id.
    #[serde(default)]
    pub join: Option<JoinConfig>,
    /// Output fields: name → CEL expression over the (joined) record, e.g. `value.amount`.
    #[serde(default)]
    pub select: Option<BTreeMap<String, String>>,
    /// A user hook each record goes through before the outputs.
    #[serde(default)]
    pub process: Option<ProcessConfig>,
    /// Output topics; may be empty when a `process` hook does the work (then at least once).
    #[serde(default)]
    pub outputs: Vec<OutputConfig>,
    #[serde(default)]
    pub delivery: Delivery,
    /// Records that cannot be decoded, filtered, processed or encoded go here with the reason;
    /// without it such a record fails the job.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Milliseconds between commits (each a transaction in exactly-once mode).
    #[serde(default = "default_commit_interval")]
    pub commit_interval_ms: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Outputs and consumed offsets commit together in one Kafka transaction.
    #[default]
    ExactlyOnce,
    /// Offsets commit after the outputs are acknowledged; a crash may repeat outputs.
    AtLeastOnce,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinConfig {
    /// The id: a CEL expression such as `value.order_id`, or `key`.
    pub by: String,
    /// How long a group waits for its missing members.
    pub timeout_seconds: u64,
    #[serde(default)]
    pub clock: JoinClock,
    /// Record time only: how late a record may arrive after the window closed.
    #[serde(default)]
    pub grace_seconds: u64,
    /// Pending groups held per member; past it the oldest is given up as incomplete.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Incomplete groups go here, with the members they had; otherwise they are logged.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// The compacted topic that keeps pending groups across restarts
    /// (`<group>-join-changelog` when absent).
    #[serde(default)]
    pub changelog_topic: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum JoinClock {
    /// The timeout runs on the wall clock from the group's first member.
    #[default]
    Processing,
    /// The timeout runs on record timestamps (stream time), as Kafka Streams' JoinWindows.
    Record,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ProcessConfig {
    /// A long-lived child process speaking JSON lines on stdin and stdout.
    Command(CommandConfig),
    /// POST each record (or batch) to a URL and merge the JSON reply.
    Http(HttpConfig),
    /// A processor registered by a custom binary that links runner as a library.
    Rust(RustConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// Program and arguments, run from the configuration folder.
    pub command: Vec<String>,
    /// Records per request: 1 sends each record as a JSON object, more sends JSON arrays.
    #[serde(default = "one")]
    pub batch_size: usize,
    #[serde(default = "default_hook_timeout")]
    pub timeout_seconds: u64,
    /// Restarts after crashes or timeouts before the job fails.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    /// Extra environment variables for the child.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub url: String,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "one")]
    pub batch_size: usize,
    #[serde(default = "default_hook_timeout")]
    pub timeout_seconds: u64,
    /// Retries on 5xx, 429 and connection errors, with exponential backoff.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Request headers, e.g. `{"Authorization": "Bearer ${API_TOKEN}"}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RustConfig {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    pub topic: String,
    #[serde(default = "json_format")]
    pub format: Format,
    /// CEL expression over the outgoing record giving its key, e.g. `value.account`.
    #[serde(default)]
    pub key: Option<String>,
    /// CEL condition: only records for which it is true go to this output.
    #[serde(default)]
    pub when: Option<String>,
    /// Avro or Protobuf: the schema (`.avsc`, `.proto`); without it the latest schema of
    /// subject `<topic>-value` in the Schema Registry.
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
    /// Protobuf with schema_file: the message's full name.
    #[serde(default)]
    pub message: Option<String>,
}

fn default_commit_interval() -> u64 {
    500
}
fn default_max_pending() -> usize {
    100_000
}
fn one() -> usize {
    1
}
fn default_hook_timeout() -> u64 {
    30
}
fn default_max_restarts() -> u32 {
    5
}
fn default_concurrency() -> usize {
    4
}
fn default_retries() -> u32 {
    5
}
fn json_format() -> Format {
    Format::Json
}

impl StreamConfig {
    /// Checks every field and expression, naming the field of `file` that is wrong.
    pub(super) fn validate(&mut self, file: &Path, dir: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::invalid(file, field, message);
        let expr = |field: &str, source: &str| {
            Expr::compile(source)
                .map(|_| ())
                .map_err(|e| invalid(field, e.to_string()))
        };
        if let Some(filter) = &self.filter {
            expr("stream.filter", filter)?;
        }
        if let Some(join) = &self.join {
            expr("stream.join.by", &join.by)?;
            if join.timeout_seconds == 0 {
                return Err(invalid(
                    "stream.join.timeout_seconds",
                    "must be at least 1".into(),
                ));
            }
            if join.max_pending == 0 {
                return Err(invalid(
                    "stream.join.max_pending",
                    "must be at least 1".into(),
                ));
            }
            if join.grace_seconds > 0 && join.clock == JoinClock::Processing {
                return Err(invalid(
                    "stream.join.grace_seconds",
                    "applies to \"clock\": \"record\" only; remove it or set the clock".into(),
                ));
            }
        }
        for (name, source) in self.select.iter().flatten() {
            expr(&format!("stream.select.{name}"), source)?;
        }
        match &mut self.process {
            Some(ProcessConfig::Command(c)) => {
                if c.command.is_empty() {
                    return Err(invalid(
                        "stream.process.command.command",
                        "is empty; give the program and its arguments, e.g. [\"python3\", \"hook.py\"]".into(),
                    ));
                }
                if c.batch_size == 0 || c.timeout_seconds == 0 {
                    return Err(invalid(
                        "stream.process.command",
                        "batch_size and timeout_seconds must be at least 1".into(),
                    ));
                }
            }
            Some(ProcessConfig::Http(h)) => {
                if url::Url::parse(&h.url).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
                {
                    return Err(invalid(
                        "stream.process.http.url",
                        format!("`{}` is not an http(s) URL", h.url),
                    ));
                }
                if h.batch_size == 0 || h.timeout_seconds == 0 || h.concurrency == 0 {
                    return Err(invalid(
                        "stream.process.http",
                        "batch_size, timeout_seconds and concurrency must be at least 1".into(),
                    ));
                }
            }
            Some(ProcessConfig::Rust(_)) | None => {}
        }
        // Without outputs the hook's own work is the result (seed 000's consumers).
        if self.outputs.is_empty() && self.process.is_none() {
            return Err(invalid(
                "stream.outputs",
                "is empty; name at least one topic, e.g. [{\"topic\": \"enriched\"}], or add a process step whose work is the output".into(),
            ));
        }
        if self.outputs.is_empty() && self.delivery == Delivery::ExactlyOnce {
            return Err(invalid(
                "stream.delivery",
                "a job without outputs has nothing to put in a transaction; set \"at_least_once\""
                    .into(),
            ));
        }
        for (i, output) in self.outputs.iter_mut().enumerate() {
            let at = format!("stream.outputs[{i}]");
            if let Some(key) = &output.key {
                expr(&format!("{at}.key"), key)?;
            }
            if let Some(when) = &output.when {
                expr(&format!("{at}.when"), when)?;
            }
            if matches!(output.format, Format::Raw | Format::String) {
                return Err(invalid(
                    &format!("{at}.format"),
                    "outputs are json, avro or protobuf".into(),
                ));
            }
            output.schema_file = output.schema_file.as_ref().map(|f| dir.join(f));
            if let Some(schema) = &output.schema_file
                && !schema.is_file()
            {
                return Err(invalid(
                    &format!("{at}.schema_file"),
                    format!(
                        "{} does not exist; paths are relative to the configuration folder",
                        schema.display()
                    ),
                ));
            }
        }
        if self.commit_interval_ms == 0 {
            return Err(invalid(
                "stream.commit_interval_ms",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
