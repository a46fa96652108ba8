//! The state of an aggregate job per topic, kept in the sink beside the export progress:
//! `_runner/aggregates/<job>/<topic>.json` holds the next offset of each partition, the run
//! number and (cumulative mode) the Parquet file of the totals so far. That one small object is
//! replaced atomically after the outputs are written, so offsets and totals move together and
//! a crash before it means the run is redone from the previous state, never counted twice.
//! The save is a compare-and-swap on the version loaded, so two runs can never both move it.

use crate::sink::{Sink, SinkError, Version};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use object_store::path::{Path, PathPart};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(
        "aggregate state {path} is unreadable ({reason}); restore it, or delete it (and the job's totals) to start the totals over"
    )]
    Corrupt { path: String, reason: String },
    #[error("cannot encode {path} as Parquet: {reason}")]
    Encode { path: String, reason: String },
    #[error(
        "aggregate state {path} was changed by another run while this one computed; this run's totals are discarded and the next run starts from the new state"
    )]
    Conflict { path: String },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AggregateState {
    pub job: String,
    pub topic: String,
    /// Runs committed so far; the next run is `run + 1`.
    pub run: u64,
    pub offsets: BTreeMap<i32, i64>,
    /// Cumulative mode: the totals after `run`, with the columns needed to merge them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<String>,
    #[serde(default)]
    pub updated_at: String,
    /// The stored version this state was loaded from; `None` before the first save.
    #[serde(skip)]
    version: Option<Version>,
}

fn folder(job: &str) -> [PathPart<'static>; 3] {
    [
        PathPart::from("_runner"),
        PathPart::from("aggregates"),
        PathPart::from(job.to_string()),
    ]
}

pub fn state_path(job: &str, topic: &str) -> Path {
    Path::from_iter(
        folder(job)
            .into_iter()
            .chain([PathPart::from(format!("{topic}.json"))]),
    )
}

/// A new name per attempt: a run that loses the race for the state never overwrites the
/// totals file the winner's state points to.
pub fn totals_path(job: &str, topic: &str, run: u64) -> Path {
    let attempt = uuid::Uuid::new_v4().simple().to_string();
    Path::from_iter(folder(job).into_iter().chain([
        PathPart::from(topic.to_string()),
        PathPart::from(format!("totals-{run:08}-{}.parquet", &attempt[..12])),
    ]))
}

impl AggregateState {
    pub fn load(sink: &Sink, job: &str, topic: &str) -> Result<AggregateState, StateError> {
        let path = state_path(job, topic);
        match sink.get_versioned(&path)? {
            None => Ok(AggregateState {
                job: job.to_string(),
                topic: topic.to_string(),
                ..AggregateState::default()
            }),
            Some((bytes, version)) => serde_json::from_slice(&bytes)
                .map(|state| AggregateState {
                    version: Some(version),
                    ..state
                })
                .map_err(|e| StateError::Corrupt {
                    path: format!("{}/{path}", sink.url()),
                    reason: e.to_string(),
                }),
        }
    }

    /// The totals of the last run (cumulative mode), `None` before the first.
    pub fn totals(&self, sink: &Sink) -> Result<Option<Vec<RecordBatch>>, StateError> {
        let Some(file) = &self.totals else {
            return Ok(None);
        };
        let path = Path::from(file.as_str());
        let corrupt = |reason: String| StateError::Corrupt {
            path: format!("{}/{path}", sink.url()),
            reason,
        };
        let bytes = sink
            .get(&path)?
            .ok_or_else(|| corrupt("the file is missing".into()))?;
        read_parquet(bytes).map(Some).map_err(corrupt)
    }

    /// Replaces the state in one conditional put; the totals file must already be written.
    pub fn save(&mut self, sink: &Sink) -> Result<(), StateError> {
        let path = state_path(&self.job, &self.topic);
        let json = serde_json::to_vec_pretty(self).map_err(|e| StateError::Encode {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        match sink.put_if(&path, json.into(), self.version.as_ref())? {
            Some(version) => {
                self.version = Some(version);
                Ok(())
            }
            None => Err(StateError::Conflict {
                path: format!("{}/{path}", sink.url()),
            }),
        }
    }
}

/// A record batch as one Parquet object (totals are small: one row per group).
pub fn parquet_bytes(batch: &RecordBatch) -> Result<Bytes, String> {
    let mut writer =
        ArrowWriter::try_new(Vec::new(), batch.schema(), None).map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

pub fn write_parquet(sink: &Sink, path: &Path, batch: &RecordBatch) -> Result<(), StateError> {
    let bytes = parquet_bytes(batch).map_err(|reason| StateError::Encode {
        path: path.to_string(),
        reason,
    })?;
    sink.put(path, bytes)?;
    Ok(())
}

fn read_parquet(bytes: Bytes) -> Result<Vec<RecordBatch>, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Drops the hidden merge columns from totals, for the outputs.
pub fn visible(batch: &RecordBatch) -> RecordBatch {
    let keep: Vec<usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.name().starts_with("__runner_"))
        .map(|(i, _)| i)
        .collect();
    batch.project(&keep).unwrap_or_else(|_| batch.clone())
}
