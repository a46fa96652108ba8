//! Decoding: a `RawBatch` of one partition into an Arrow `RecordBatch` with Kafka metadata
//! columns first, then the payload columns of the topic's format.

mod json;
mod metadata;

use crate::config::{Format, TopicConfig};
use crate::read::RawBatch;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use std::sync::Arc;

pub use metadata::METADATA_COLUMNS;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("topic {topic} partition {partition} offset {offset}: {reason}")]
    Record {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error("topic {topic} partition {partition} offsets {first}..={last}: {reason}")]
    Batch {
        topic: String,
        partition: i32,
        first: i64,
        last: i64,
        reason: String,
    },
}

/// Payload columns for one batch, or the offset of the record that could not be decoded.
type PayloadResult = Result<(Vec<Field>, Vec<ArrayRef>), PayloadError>;

#[derive(Debug)]
enum PayloadError {
    Record { index: usize, reason: String },
    Batch(String),
}

enum Payload {
    Raw,
    Json(json::JsonDecoder),
}

pub struct Decoder {
    topic: TopicConfig,
    payload: Payload,
}

impl Decoder {
    pub fn new(topic: &TopicConfig) -> Self {
        let payload = match topic.format {
            Format::Raw => Payload::Raw,
            Format::Json => Payload::Json(json::JsonDecoder::default()),
        };
        Decoder {
            topic: topic.clone(),
            payload,
        }
    }

    /// Decodes a non-empty batch.
    pub fn decode(&mut self, batch: &RawBatch) -> Result<RecordBatch, DecodeError> {
        let increment = self.topic.offset_increment(batch.partition);
        let (mut fields, mut columns) = metadata::columns(&self.topic.topic, batch, increment);
        let payload = match &mut self.payload {
            Payload::Raw => Ok((
                vec![Field::new(
                    "value",
                    arrow::datatypes::DataType::Binary,
                    true,
                )],
                vec![Arc::new(batch.values.clone()) as ArrayRef],
            )),
            Payload::Json(decoder) => decoder.decode(&batch.values),
        };
        let (payload_fields, payload_columns) = payload.map_err(|e| self.error(batch, e))?;
        fields.extend(payload_fields);
        columns.extend(payload_columns);
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| self.error(batch, PayloadError::Batch(e.to_string())))
    }

    fn error(&self, batch: &RawBatch, e: PayloadError) -> DecodeError {
        let topic = self.topic.topic.clone();
        let partition = batch.partition;
        match e {
            PayloadError::Record { index, reason } => DecodeError::Record {
                topic,
                partition,
                offset: batch.offsets.get(index).copied().unwrap_or(-1),
                reason,
            },
            PayloadError::Batch(reason) => DecodeError::Batch {
                topic,
                partition,
                first: batch.offsets.first().copied().unwrap_or(-1),
                last: batch.offsets.last().copied().unwrap_or(-1),
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests;
