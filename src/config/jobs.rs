//! `jobs/`: one JSON file per job. A job names its kind, the topics.json entries it covers, an
//! optional cron schedule and per-job overrides.

use super::aggregate::AggregateConfig;
use super::{ConfigError, TopicConfig};
use crate::schedule::cron::CronSchedule;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const JOBS_DIR: &str = "jobs";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Defaults to the file name without `.json`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: JobKind,
    /// Cron: five fields (`*/15 * * * *`) or six with seconds first; `runner schedule` fires it.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule; UTC when absent.
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// topics.json entries; an export job with none covers every enabled topic.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Topics worked on at once.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Another sink for this job (same forms as connections.json's storage_url).
    #[serde(default)]
    pub storage_url: Option<String>,
    /// Overrides of the topics' limits for this job.
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub aggregate: Option<AggregateConfig>,
    /// What a `"kind": "stream"` job does with its records.
    #[serde(default)]
    pub stream: Option<super::stream::StreamConfig>,
    /// Settings of a job whose schedule is `continuous`.
    #[serde(default)]
    pub continuous: Option<ContinuousSettings>,
    #[serde(skip)]
    pub file: PathBuf,
    #[serde(skip)]
    pub cron: Option<CronSchedule>,
    /// The sink of `storage_url`, when the job has its own.
    #[serde(skip)]
    pub sink: Option<super::sink::SinkConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Topics to Parquet files in the sink.
    #[default]
    Export,
    /// Totals per group to the log, a topic or Parquet.
    Aggregate,
    /// Records filtered, joined, processed and sent to topics, continuously.
    Stream,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub num_messages: Option<u64>,
    pub max_records_per_file: Option<u64>,
    pub max_bytes_per_file: Option<u64>,
}

/// The `schedule` of a job that runs as a long-lived consumer-group member.
pub const CONTINUOUS: &str = "continuous";

/// How a continuous job runs (`"schedule": "continuous"`); every field has a default.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ContinuousSettings {
    /// A file is sealed and made visible at most this many seconds after it was opened, so
    /// data lands within a known delay even on a quiet topic.
    #[serde(default = "default_max_file_age")]
    pub max_file_age_seconds: u64,
    /// Group members (consumers) per topic in one process.
    #[serde(default = "one")]
    pub threads: usize,
    /// Processes (pods) meant to run the job: the replicas of its Deployment.
    #[serde(default = "one")]
    pub workers: usize,
    /// Records per decoded batch (8192 when absent).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// librdkafka's `max.poll.interval.ms` for the members.
    #[serde(default)]
    pub max_poll_interval_ms: Option<u64>,
    /// Seconds between status lines.
    #[serde(default = "default_status_interval")]
    pub status_interval_seconds: u64,
    /// The consumer group, instead of the topic's `group_id` (`runner.aggregate.<job>` for
    /// an aggregate).
    #[serde(default)]
    pub group_id: Option<String>,
    /// Aggregates: seconds between saves of the running totals (and their outputs).
    #[serde(default = "default_save_interval")]
    pub save_interval_seconds: u64,
    /// Aggregates: seconds between Parquet snapshots of the whole totals.
    #[serde(default = "default_max_file_age")]
    pub snapshot_interval_seconds: u64,
}

impl Default for ContinuousSettings {
    fn default() -> Self {
        ContinuousSettings {
            max_file_age_seconds: default_max_file_age(),
            threads: 1,
            workers: 1,
            batch_size: None,
            max_poll_interval_ms: None,
            status_interval_seconds: default_status_interval(),
            group_id: None,
            save_interval_seconds: default_save_interval(),
            snapshot_interval_seconds: default_max_file_age(),
        }
    }
}

fn default_max_file_age() -> u64 {
    300
}

fn default_save_interval() -> u64 {
    10
}

fn default_status_interval() -> u64 {
    30
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

impl JobConfig {
    /// The topics.json entries this job covers, with the job's limits applied.
    pub fn topics(&self, all: &[TopicConfig]) -> Vec<TopicConfig> {
        let chosen = all.iter().filter(|t| {
            if self.topics.is_empty() {
                t.enabled
            } else {
                self.topics.contains(&t.topic)
            }
        });
        chosen
            .map(|t| {
                let mut t = t.clone();
                if let Some(n) = self.limits.num_messages {
                    t.num_messages = Some(n);
                }
                if let Some(n) = self.limits.max_records_per_file {
                    t.max_records_per_file = n;
                }
                if let Some(n) = self.limits.max_bytes_per_file {
                    t.max_bytes_per_file = n;
                }
                t
            })
            .collect()
    }
}

/// Loads every `*.json` in `dir/jobs`, sorted by name; no folder means no jobs.
pub(super) fn load_all(
    dir: &Path,
    connections: &super::Connections,
    topics: &[TopicConfig],
) -> Result<Vec<JobConfig>, ConfigError> {
    let folder = dir.join(JOBS_DIR);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                file: folder,
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        // Editor backups and Kubernetes' `..data` entries of a mounted ConfigMap.
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    let mut jobs: Vec<JobConfig> = Vec::with_capacity(files.len());
    for file in files {
        let mut job: JobConfig = super::load_json(&file)?;
        if job.name.is_empty() {
            job.name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        job.file = file.clone();
        validate(&mut job, topics)?;
        if let Some(url) = &job.storage_url {
            let mut own = connections.clone();
            own.storage_url = Some(url.clone());
            job.sink = Some(super::sink::SinkConfig::from_connections(&own, &file, dir)?);
        }
        if let Some(other) = jobs.iter().find(|j| j.name == job.name) {
            return Err(ConfigError::invalid(
                &file,
                "name",
                format!(
                    "job `{}` is also defined in {}; job names must be unique",
                    job.name,
                    other.file.display()
                ),
            ));
        }
        jobs.push(job);
    }
    Ok(jobs)
}

fn validate_continuous(job: &mut JobConfig) -> Result<(), ConfigError> {
    let invalid =
        |field: &str, message: &str| ConfigError::invalid(&job.file, field, message.to_string());
    if job.time_zone.is_some() {
        return Err(invalid(
            "time_zone",
            "a continuous job has no schedule to read in a zone; remove it",
        ));
    }
    let settings = job
        .continuous
        .get_or_insert_with(ContinuousSettings::default);
    let checks = [
        (
            "continuous.max_file_age_seconds",
            settings.max_file_age_seconds == 0,
        ),
        ("continuous.threads", settings.threads == 0),
        ("continuous.workers", settings.workers == 0),
        ("continuous.batch_size", settings.batch_size == Some(0)),
        (
            "continuous.status_interval_seconds",
            settings.status_interval_seconds == 0,
        ),
        (
            "continuous.save_interval_seconds",
            settings.save_interval_seconds == 0,
        ),
        (
            "continuous.snapshot_interval_seconds",
            settings.snapshot_interval_seconds == 0,
        ),
    ];
    for (field, zero) in checks {
        if zero {
            return Err(invalid(field, "must be at least 1"));
        }
    }
    if settings.group_id.as_deref().is_some_and(str::is_empty) {
        return Err(invalid(
            "continuous.group_id",
            "is empty; remove it to use the topic's group_id",
        ));
    }
    Ok(())
}

impl JobConfig {
    pub fn is_continuous(&self) -> bool {
        self.continuous.is_some()
    }
}

fn validate(job: &mut JobConfig, topics: &[TopicConfig]) -> Result<(), ConfigError> {
    let file = job.file.clone();
    let invalid = |field: &str, message: String| ConfigError::invalid(&file, field, message);
    if job.name.is_empty()
        || !job
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(invalid(
            "name",
            format!(
                "`{}` is not a job name; use letters, digits, `_`, `-` and `.`",
                job.name
            ),
        ));
    }
    if job.kind == JobKind::Stream {
        validate_stream(job)?;
    }
    if job.schedule.as_deref() == Some(CONTINUOUS) {
        validate_continuous(job)?;
    } else if job.continuous.is_some() {
        return Err(invalid(
            "continuous",
            "is only read with \"schedule\": \"continuous\"; set that or remove the block".into(),
        ));
    } else if let Some(expr) = &job.schedule {
        let cron = CronSchedule::parse(expr, job.time_zone.as_deref()).map_err(|m| {
            invalid(
                if m.contains("IANA") {
                    "time_zone"
                } else {
                    "schedule"
                },
                m,
            )
        })?;
        job.cron = Some(cron);
    } else if job.time_zone.is_some() {
        return Err(invalid(
            "time_zone",
            "is set but there is no schedule".into(),
        ));
    }
    if job.concurrency == Some(0) {
        return Err(invalid("concurrency", "must be at least 1".into()));
    }
    for (i, name) in job.topics.iter().enumerate() {
        if !topics.iter().any(|t| &t.topic == name) {
            let known: Vec<_> = topics.iter().map(|t| t.topic.as_str()).collect();
            return Err(invalid(
                &format!("topics[{i}]"),
                format!(
                    "`{name}` is not in topics.json; add an entry for it there or use one of: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    match (job.kind, &job.aggregate) {
        (JobKind::Aggregate, None) => {
            return Err(invalid(
                "aggregate",
                "is missing: an aggregate job needs {\"group_by\": [...], \"compute\": [...]}"
                    .into(),
            ));
        }
        (JobKind::Export, Some(_)) => {
            return Err(invalid(
                "aggregate",
                "is only read when \"kind\": \"aggregate\"; set the kind or remove the block"
                    .into(),
            ));
        }
        (JobKind::Aggregate, Some(agg)) => {
            if job.topics.is_empty() {
                return Err(invalid(
                    "topics",
                    "an aggregate job names its topics, e.g. [\"transactions\"]".into(),
                ));
            }
            if agg.group_by.is_empty() {
                return Err(invalid(
                    "aggregate.group_by",
                    "is empty; name the fields to group by, e.g. [\"account_number\"] or [\"kafka_key\"]".into(),
                ));
            }
            agg.aggregates().map_err(|(f, m)| invalid(&f, m))?;
            agg.casts().map_err(|(f, m)| invalid(&f, m))?;
        }
        (JobKind::Export | JobKind::Stream, None) => {}
        (JobKind::Stream, Some(_)) => {
            return Err(invalid(
                "aggregate",
                "is only read when \"kind\": \"aggregate\"; remove the block".into(),
            ));
        }
    }
    Ok(())
}

/// A stream job runs continuously: its schedule is `continuous` (or left out).
fn validate_stream(job: &mut JobConfig) -> Result<(), ConfigError> {
    let file = job.file.clone();
    let invalid = |field: &str, message: &str| ConfigError::invalid(&file, field, message);
    match job.schedule.as_deref() {
        None => job.schedule = Some(CONTINUOUS.to_string()),
        Some(CONTINUOUS) => {}
        Some(_) => {
            return Err(invalid(
                "schedule",
                "a stream job runs continuously; remove the schedule or set \"continuous\"",
            ));
        }
    }
    if job.topics.is_empty() {
        return Err(invalid(
            "topics",
            "a stream job names its input topics, e.g. [\"orders\", \"payments\"]",
        ));
    }
    let dir = file
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .to_path_buf();
    match &mut job.stream {
        Some(stream) => stream.validate(&file, &dir),
        None => Err(invalid(
            "stream",
            "is missing: a stream job needs {\"outputs\": [{\"topic\": \"...\"}]}",
        )),
    }
}
