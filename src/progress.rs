//! Progress records: per topic and group, the next offset to read of each partition, kept in
//! the sink beside the data (so they outlive Kafka's offset retention) and written only after
//! the files they point past are durable.

use crate::sink::{Sink, SinkError};
use crate::write::{Sealed, WrittenFile};
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
    /// Files of a segment being committed; a run that finds any deletes them first, since
    /// the segment after `next_offset` will be written again (perhaps split differently).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
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

    /// Deletes the files of a segment whose commit a previous run did not finish.
    pub fn recover(&mut self) -> Result<(), ProgressError> {
        let mut changed = false;
        for (partition, entry) in self.state.partitions.iter_mut() {
            for file in entry.pending.drain(..) {
                let path = Path::parse(&file).map_err(|e| ProgressError::Corrupt {
                    path: self.path.to_string(),
                    reason: format!("pending file {file}: {e}"),
                })?;
                tracing::info!(partition, path = %file, "removing a file of an unfinished commit");
                self.sink.delete(&path)?;
                changed = true;
            }
        }
        if changed {
            self.save()?;
        }
        Ok(())
    }

    /// Commits a sealed segment: its files become visible, then progress moves past them and
    /// is saved atomically. A segment of several files is first recorded as pending, so a
    /// crash between two files cannot leave one behind that a rerun would not overwrite.
    pub fn commit(&mut self, sealed: Sealed) -> Result<Vec<WrittenFile>, ProgressError> {
        let entry = self
            .state
            .partitions
            .entry(sealed.partition)
            .or_insert_with(|| PartitionProgress {
                next_offset: sealed.start,
                ..PartitionProgress::default()
            });
        if sealed.files.len() > 1 {
            entry.pending = sealed.files.iter().map(|f| f.path.to_string()).collect();
            self.save()?;
        }
        let mut written = Vec::with_capacity(sealed.files.len());
        for file in sealed.files {
            written.push(file.commit(&self.sink)?);
        }
        let entry = self.state.partitions.entry(sealed.partition).or_default();
        entry.next_offset = sealed.next_offset;
        entry.updated_at = chrono::Utc::now().to_rfc3339();
        entry.pending.clear();
        if let Some(file) = written.last() {
            entry.last_file = Some(file.path.clone());
        }
        self.save()?;
        Ok(written)
    }

    fn save(&self) -> Result<(), ProgressError> {
        let json = serde_json::to_vec_pretty(&self.state).map_err(|e| ProgressError::Corrupt {
            path: self.path.to_string(),
            reason: e.to_string(),
        })?;
        self.sink.put(&self.path, json.into())?;
        Ok(())
    }
}
