//! Progress records: per topic and group, the next offset to read of each partition, kept in
//! the sink beside the data (so they outlive Kafka's offset retention) and written only after
//! the files they point past are durable.

use crate::sink::{Sink, SinkError};
use object_store::path::{Path, PathPart};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(
        "progress record {path} is unreadable ({reason}); restore it, or delete it to restart from the group's committed offset"
    )]
    Corrupt { path: String, reason: String },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionProgress {
    pub next_offset: i64,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_file: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicProgress {
    pub topic: String,
    pub group_id: String,
    pub partitions: BTreeMap<i32, PartitionProgress>,
}

/// The progress record of one topic and group, loaded once and saved after each advance.
pub struct Progress {
    sink: Arc<Sink>,
    path: Path,
    state: TopicProgress,
}

/// `_runner/progress/<group>/<topic>.json`; the group is escaped as a path segment.
pub fn progress_path(group_id: &str, topic: &str) -> Path {
    Path::from_iter([
        PathPart::from("_runner"),
        PathPart::from("progress"),
        PathPart::from(group_id),
        PathPart::from(format!("{topic}.json")),
    ])
}

impl Progress {
    pub fn load(sink: Arc<Sink>, group_id: &str, topic: &str) -> Result<Self, ProgressError> {
        let path = progress_path(group_id, topic);
        let state = match sink.get(&path)? {
            None => TopicProgress {
                topic: topic.to_string(),
                group_id: group_id.to_string(),
                partitions: BTreeMap::new(),
            },
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| ProgressError::Corrupt {
                path: format!("{}/{path}", sink.url()),
                reason: e.to_string(),
            })?,
        };
        Ok(Progress { sink, path, state })
    }

    /// Next offset per partition, as recorded.
    pub fn offsets(&self) -> BTreeMap<i32, i64> {
        self.state
            .partitions
            .iter()
            .map(|(p, s)| (*p, s.next_offset))
            .collect()
    }

    pub fn state(&self) -> &TopicProgress {
        &self.state
    }

    /// Records that `partition` is exported up to `next_offset` and saves atomically.
    pub fn advance(
        &mut self,
        partition: i32,
        next_offset: i64,
        file: Option<&str>,
    ) -> Result<(), ProgressError> {
        let entry = self.state.partitions.entry(partition).or_default();
        entry.next_offset = next_offset;
        entry.updated_at = chrono::Utc::now().to_rfc3339();
        if let Some(file) = file {
            entry.last_file = Some(file.to_string());
        }
        let json = serde_json::to_vec_pretty(&self.state).map_err(|e| ProgressError::Corrupt {
            path: self.path.to_string(),
            reason: e.to_string(),
        })?;
        self.sink.put(&self.path, json.into())?;
        Ok(())
    }
}
