//! Run history: every run leaves one record (job, run id, start, end, status, per-topic
//! counts, ranges and error) in the sink under `_runner/history/<date>/`, one object per run
//! because object stores cannot append. `runner history` reads the newest back.

use crate::jobs::{JobOutcome, JobResults};
use crate::sink::{Sink, SinkError};
use chrono::{DateTime, Duration, Utc};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Sink(#[from] SinkError),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub job: String,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// ok, partial (some topics failed), failed (all did) or stopped (by a signal).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<String>,
    pub topics: Vec<TopicEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TopicEntry {
    pub topic: String,
    pub status: String,
    pub records: u64,
    #[serde(default)]
    pub files: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub dead_letters: u64,
    /// `[partition, first offset, offset after the last]` per partition read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<(i32, i64, i64)>,
    /// Ranges retention deleted before export, skipped with fail_on_data_loss false.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<(i32, i64, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run was asked to do beyond its job: its shard and backfill bounds, as typed.
#[derive(Debug, Clone, Default)]
pub struct RunLabels {
    pub shard: Option<String>,
    pub backfill: Option<String>,
}

impl Entry {
    pub fn new(
        outcome: &JobOutcome,
        run_id: &str,
        started_at: DateTime<Utc>,
        labels: &RunLabels,
    ) -> Entry {
        let topics: Vec<TopicEntry> = match &outcome.results {
            JobResults::Export(r) => r
                .iter()
                .map(|o| match &o.result {
                    Ok(s) => TopicEntry {
                        topic: s.topic.clone(),
                        status: if s.stopped { "stopped" } else { "ok" }.into(),
                        records: s.records,
                        files: s.files,
                        bytes: s.bytes,
                        dead_letters: s.dead_letters,
                        ranges: s.ranges.clone(),
                        lost: s.lost.clone(),
                        error: None,
                    },
                    Err(e) => failed(&o.topic, e.to_string()),
                })
                .collect(),
            JobResults::Aggregate(r) => r
                .iter()
                .map(|o| match &o.result {
                    Ok(s) => TopicEntry {
                        topic: s.topic.clone(),
                        status: "ok".into(),
                        records: s.records,
                        dead_letters: s.dead_letters,
                        ..TopicEntry::default()
                    },
                    Err(e) => failed(&o.topic, e.to_string()),
                })
                .collect(),
            JobResults::Setup(e) => vec![failed("", e.to_string())],
        };
        let bad = topics.iter().filter(|t| t.status == "failed").count();
        let status = if bad > 0 && bad == topics.len() {
            "failed"
        } else if bad > 0 {
            "partial"
        } else if topics.iter().any(|t| t.status == "stopped") {
            "stopped"
        } else {
            "ok"
        };
        Entry {
            job: outcome.job.clone(),
            run_id: run_id.to_string(),
            started_at,
            ended_at: Utc::now(),
            status: status.into(),
            shard: labels.shard.clone(),
            backfill: labels.backfill.clone(),
            topics,
        }
    }

    pub fn records(&self) -> u64 {
        self.topics.iter().map(|t| t.records).sum()
    }
}

fn failed(topic: &str, error: String) -> TopicEntry {
    TopicEntry {
        topic: topic.to_string(),
        status: "failed".into(),
        error: Some(error),
        ..TopicEntry::default()
    }
}

fn day_folder(day: DateTime<Utc>) -> Path {
    Path::from(format!("_runner/history/{}", day.format("%Y-%m-%d")))
}

/// Stores the record of one run; its name sorts by start time.
pub fn append(sink: &Sink, entry: &Entry) -> Result<(), HistoryError> {
    // The job is in the name too: one `runner once` runs several jobs under one run id.
    let job: String = entry
        .job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = format!(
        "{}/{}-{}-{job}.json",
        day_folder(entry.started_at),
        entry.started_at.format("%H%M%S%.3f"),
        entry.run_id
    );
    let body = serde_json::to_vec_pretty(entry).unwrap_or_default();
    sink.put(&Path::from(name), body.into())?;
    Ok(())
}

/// The newest `last` records of the past `days` days (of `job` when given), newest first.
/// Unreadable records are skipped with a warning: history must not block a look at it.
pub fn recent(
    sink: &Sink,
    last: usize,
    days: u32,
    job: Option<&str>,
) -> Result<Vec<Entry>, HistoryError> {
    let mut found = Vec::new();
    let today = Utc::now();
    for back in 0..days.max(1) {
        let mut paths = sink.list(&day_folder(today - Duration::days(i64::from(back))))?;
        paths.sort();
        for path in paths.iter().rev() {
            let Some(bytes) = sink.get(path)? else {
                continue;
            };
            match serde_json::from_slice::<Entry>(&bytes) {
                Ok(entry) if job.is_none_or(|j| j == entry.job) => found.push(entry),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(path = %path, error = %e, "skipping an unreadable history record")
                }
            }
            if found.len() >= last {
                return Ok(found);
            }
        }
    }
    Ok(found)
}
