//! What a scan ends with or reports on its way: its matches, counts and why it stopped, or
//! the error that ended it.

use super::message::Message;
use crate::read::ReadError;
use arrow::array::RecordBatch;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("topic {topic}: {reason}")]
    Kafka { topic: String, reason: String },
    #[error(
        "topic {topic} has no partition {partition} (it has {count}); pick partitions 0 to {last}",
        last = count - 1
    )]
    NoPartition {
        topic: String,
        partition: i32,
        count: i32,
    },
    #[error("topic {topic} does not exist or is not readable with these credentials")]
    NoTopic { topic: String },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
    #[error("topic {topic}: {reason}")]
    Rows { topic: String, reason: String },
}

/// Why a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// Enough matches.
    Limit,
    /// Every partition read to its end.
    End,
    MaxScan,
    MaxSeconds,
    Cancelled,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Stats {
    pub scanned: u64,
    pub matched: u64,
    pub elapsed_ms: u64,
}

/// What a scan reports while it runs; the callback returns false to cancel it.
pub enum Event<'a> {
    Progress(Stats),
    /// A match of a live tail, as it arrives.
    Message(&'a Message),
}

pub struct Outcome {
    /// In display order: newest first when reading backwards.
    pub messages: Vec<Message>,
    /// With `keep_rows`, the typed rows of `messages` that decoded, in the same order.
    pub rows: Vec<RecordBatch>,
    /// Matches that did not decode, so have no typed row.
    pub undecoded: u64,
    pub stats: Stats,
    pub stopped: Stopped,
}
