//! Decoding: a `RawBatch` of one partition into an Arrow `RecordBatch` with Kafka metadata
//! columns first, then the payload columns of the topic's format. A record that cannot be
//! decoded becomes a dead-letter row (or fails the topic with `on_decode_error: fail`).

mod avro;
mod dead_letter;
mod json;
mod json_text;
mod keys;
mod metadata;
mod proto_arrow;
mod proto_wire;
mod protobuf;
mod typed;
mod unions;

use crate::config::{Format, OnDecodeError, TopicConfig};
use crate::read::RawBatch;
use crate::registry::Registry;
use arrow::array::{Array, ArrayRef, BinaryArray, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use std::sync::Arc;

pub use dead_letter::DEAD_LETTER_COLUMNS;
pub use metadata::METADATA_COLUMNS;
pub use protobuf::{first_message, load_message};
pub use typed::TYPE_COLUMN;

/// A decoded batch: the rows that decoded, with the offsets and timestamps they came from, and
/// the dead-letter rows of those that did not, with their offsets.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Consecutive pieces, each of one schema (a schema change inside a batch splits it).
    pub rows: Vec<RecordBatch>,
    pub offsets: Vec<i64>,
    pub timestamps: Vec<Option<i64>>,
    pub dead: Option<RecordBatch>,
    pub dead_offsets: Vec<i64>,
}

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
    #[error("topic {topic} partition {partition} offsets {first}..={last}: {reason}")]
    Unavailable {
        topic: String,
        partition: i32,
        first: i64,
        last: i64,
        reason: String,
    },
}

impl DecodeError {
    /// Whether a rerun could succeed: only when the Schema Registry was unavailable. A record
    /// or schema that cannot be decoded fails the same way again.
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::Unavailable { .. })
    }
}

/// Payload columns for one batch, or the offset of the record that could not be decoded.
type PayloadResult = Result<Vec<Piece>, PayloadError>;

/// Rows per chunk when a batch is decoded on several cores. Small enough that the partial
/// batches of a reader at its buffer budget (a few hundred KB a partition) are split too.
const CHUNK_ROWS: usize = 512;

/// Runs `decode` on consecutive chunks of `rows` rows and returns the results in order, on
/// every core when there are cores to spare. `decode` counts record indexes from its chunk's
/// start; the error returned is that of the first failing chunk, with its index counted from
/// the batch's start, as one call over the whole batch would report it.
fn in_chunks<T: Send>(
    rows: usize,
    decode: impl Fn(std::ops::Range<usize>) -> Result<T, PayloadError> + Sync,
) -> Result<Vec<T>, PayloadError> {
    in_chunks_on(rows, spare_cores(), decode)
}

/// Whether a batch's chunks may be decoded on other threads too. The reading, decoding and
/// writing threads keep two cores busy already: on two, chunks handed to other threads cost
/// 3 to 6% more CPU for no time saved (docs/performance.md).
fn spare_cores() -> bool {
    crate::cores::available() > 2
}

fn in_chunks_on<T: Send>(
    rows: usize,
    parallel: bool,
    decode: impl Fn(std::ops::Range<usize>) -> Result<T, PayloadError> + Sync,
) -> Result<Vec<T>, PayloadError> {
    use rayon::prelude::*;
    if rows < 2 * CHUNK_ROWS {
        return decode(0..rows).map(|t| vec![t]);
    }
    let chunk = |start: usize| {
        let range = start..(start + CHUNK_ROWS).min(rows);
        decode(range).map_err(|e| e.reindex(|index| index + start))
    };
    let starts = (0..rows).step_by(CHUNK_ROWS);
    if !parallel {
        // Stops at the first failing chunk.
        return starts.map(chunk).collect();
    }
    starts
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(chunk)
        // rayon's own Result collect returns whichever error it meets; in order, the first.
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

#[derive(Debug)]
enum PayloadError {
    Record {
        index: usize,
        reason: String,
    },
    /// Several records found in one pass (JSON's column cap), set aside together: one at a
    /// time would cost a pass over the batch each.
    Records(Vec<(usize, String)>),
    Batch(String),
    /// The Schema Registry did not answer: a later run may succeed.
    Unavailable(String),
}

impl PayloadError {
    /// The same error naming records by `at(index)`: from a subset or a chunk to its batch.
    fn reindex(self, at: impl Fn(usize) -> usize) -> Self {
        match self {
            PayloadError::Record { index, reason } => PayloadError::Record {
                index: at(index),
                reason,
            },
            PayloadError::Records(list) => {
                PayloadError::Records(list.into_iter().map(|(i, r)| (at(i), r)).collect())
            }
            other => other,
        }
    }
}

enum Payload {
    Raw,
    String,
    Json(json::JsonDecoder),
    Avro(Box<avro::AvroDecoder>),
    Protobuf(Box<protobuf::ProtobufDecoder>),
}

pub struct Decoder {
    topic: TopicConfig,
    payload: Payload,
    /// How keys are decoded; `None` keeps them as bytes.
    key: Option<Payload>,
    /// For a header-typed topic, the payload of each type (then `payload` is unused).
    typed: Option<typed::Typed>,
}

impl Decoder {
    /// `registry` serves the formats framed for a Schema Registry.
    pub fn new(topic: &TopicConfig, registry: Option<Arc<Registry>>) -> Self {
        let payload = Payload::new(topic.format, topic, registry.clone(), true);
        let key = (topic.key_format != Format::Raw)
            .then(|| Payload::new(topic.key_format, topic, registry.clone(), false));
        Decoder {
            topic: topic.clone(),
            payload,
            typed: typed::Typed::new(topic, registry.clone()),
            key,
        }
    }

    /// Decodes a batch. Bad records are set aside one at a time and the rest decoded again,
    /// so one bad record costs one more pass over its batch; they are rare.
    pub fn decode(&mut self, batch: &RawBatch) -> Result<Decoded, DecodeError> {
        let mut good: Vec<usize> = (0..batch.len()).collect();
        let mut dead: Vec<(usize, String)> = Vec::new();
        let mut current = batch.clone();
        let rows = loop {
            if current.is_empty() {
                break Vec::new();
            }
            match self.decode_all(&current) {
                Ok(rows) => break rows,
                Err(PayloadError::Record { index, reason })
                    if self.topic.on_decode_error == OnDecodeError::DeadLetter =>
                {
                    let original = good.remove(index);
                    tracing::warn!(partition = batch.partition, offset = batch.offsets[original], %reason, "record sent to the dead letters");
                    dead.push((original, reason));
                    current = take(batch, &good);
                }
                Err(PayloadError::Records(list))
                    if self.topic.on_decode_error == OnDecodeError::DeadLetter =>
                {
                    let set_aside: std::collections::BTreeSet<usize> =
                        list.iter().map(|(i, _)| *i).collect();
                    for (index, reason) in list {
                        let original = good[index];
                        tracing::warn!(partition = batch.partition, offset = batch.offsets[original], %reason, "record sent to the dead letters");
                        dead.push((original, reason));
                    }
                    good = good
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !set_aside.contains(i))
                        .map(|(_, g)| *g)
                        .collect();
                    current = take(batch, &good);
                }
                Err(e) => return Err(self.error(&current, e)),
            }
        };
        dead.sort_by_key(|(i, _)| *i);
        let dead_rows = dead_letter::batch(&self.topic.topic, batch, &dead)
            .map_err(|e| self.error(batch, PayloadError::Batch(e.to_string())))?;
        Ok(Decoded {
            rows,
            offsets: current.offsets,
            timestamps: current.timestamps,
            dead_offsets: dead.iter().map(|(i, _)| batch.offsets[*i]).collect(),
            dead: dead_rows,
        })
    }

    fn decode_all(&mut self, batch: &RawBatch) -> Result<Vec<RecordBatch>, PayloadError> {
        let increment = self.topic.offset_increment(batch.partition);
        let (mut fields, mut columns) = metadata::columns(&self.topic.topic, batch, increment);
        if let Some(key) = &mut self.key {
            let decoded = keys::decode(key, &batch.keys)?;
            fields[metadata::KEY] = Field::new(
                METADATA_COLUMNS[metadata::KEY],
                decoded.data_type().clone(),
                true,
            );
            columns[metadata::KEY] = decoded;
        }
        let payload = match &mut self.typed {
            Some(typed) => typed.decode(batch)?,
            None => self.payload.decode(&batch.values)?,
        };
        // Slicing the metadata columns needs exactly one payload row per record.
        let decoded_rows: usize = payload.iter().map(|p| p.rows).sum();
        if decoded_rows != batch.len() {
            return Err(PayloadError::Batch(format!(
                "decoded {decoded_rows} rows from {} records",
                batch.len()
            )));
        }
        let mut pieces = Vec::with_capacity(payload.len());
        let mut row = 0;
        for Piece {
            fields: payload_fields,
            columns: payload_columns,
            rows,
        } in payload
        {
            let mut all_fields = fields.clone();
            all_fields.extend(payload_fields);
            let mut all_columns: Vec<ArrayRef> =
                columns.iter().map(|c| c.slice(row, rows)).collect();
            all_columns.extend(payload_columns);
            let schema = Arc::new(Schema::new(all_fields));
            let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
            let piece = RecordBatch::try_new_with_options(schema, all_columns, &options)
                .map_err(|e| PayloadError::Batch(e.to_string()))?;
            pieces.push(piece);
            row += rows;
        }
        Ok(pieces)
    }

    fn error(&self, batch: &RawBatch, e: PayloadError) -> DecodeError {
        let topic = self.topic.topic.clone();
        let partition = batch.partition;
        match e {
            PayloadError::Records(list) => {
                let (index, reason) = list.into_iter().next().unwrap_or((0, String::new()));
                self.error(batch, PayloadError::Record { index, reason })
            }
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
            PayloadError::Unavailable(reason) => DecodeError::Unavailable {
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

impl Payload {
    fn new(
        format: Format,
        topic: &TopicConfig,
        registry: Option<Arc<Registry>>,
        value: bool,
    ) -> Payload {
        match format {
            Format::Raw => Payload::Raw,
            Format::String => Payload::String,
            Format::Json => Payload::Json(json::JsonDecoder::new(
                topic.schema_file.clone().filter(|_| value),
            )),
            Format::Avro => Payload::Avro(Box::new(avro::AvroDecoder::new(
                registry,
                topic.schema_file.clone().filter(|_| value),
            ))),
            Format::Protobuf => {
                // schema_file and message describe the value; keys use registry framing.
                let fixed = if value {
                    topic.schema_file.clone().zip(topic.message.clone())
                } else {
                    None
                };
                Payload::Protobuf(Box::new(protobuf::ProtobufDecoder::new(registry, fixed)))
            }
        }
    }

    /// Payload columns of `values`, in consecutive pieces of one schema each.
    fn decode(&mut self, values: &BinaryArray) -> Result<Vec<Piece>, PayloadError> {
        Ok(match self {
            Payload::Raw => {
                let field = Field::new("value", DataType::Binary, true);
                let column = Arc::new(values.clone()) as ArrayRef;
                vec![Piece::new(vec![field], vec![column], values.len())]
            }
            Payload::String => {
                for index in 0..values.len() {
                    if values.is_valid(index) && std::str::from_utf8(values.value(index)).is_err() {
                        return Err(PayloadError::Record {
                            index,
                            reason: "not valid UTF-8 text".into(),
                        });
                    }
                }
                let text = arrow::compute::cast(values, &DataType::Utf8)
                    .map_err(|e| PayloadError::Batch(e.to_string()))?;
                let field = Field::new("value", DataType::Utf8, true);
                vec![Piece::new(vec![field], vec![text], values.len())]
            }
            Payload::Json(decoder) => decoder.decode(values)?,
            Payload::Avro(decoder) => decoder
                .decode(values)?
                .into_iter()
                .map(|b| {
                    let fields = b
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .collect();
                    Piece::new(fields, b.columns().to_vec(), b.num_rows())
                })
                .collect(),
            Payload::Protobuf(decoder) => decoder.decode(values)?,
        })
    }
}

/// Payload columns of consecutive records of one schema. `rows` is kept apart because a
/// schema without fields (`{}`, an empty message) has no column to count them by.
pub(super) struct Piece {
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
    rows: usize,
}

impl Piece {
    fn new(fields: Vec<Field>, columns: Vec<ArrayRef>, rows: usize) -> Piece {
        Piece {
            fields,
            columns,
            rows,
        }
    }
}

/// The rows `rows` of a raw batch.
fn take(batch: &RawBatch, rows: &[usize]) -> RawBatch {
    let indices = UInt32Array::from_iter_values(rows.iter().map(|&i| i as u32));
    let pick = |a: &arrow::array::BinaryArray| {
        arrow::compute::take(a, &indices, None)
            .ok()
            .and_then(|a| {
                a.as_any()
                    .downcast_ref::<arrow::array::BinaryArray>()
                    .cloned()
            })
            .unwrap_or_else(|| arrow::array::BinaryArray::from_iter_values(Vec::<&[u8]>::new()))
    };
    RawBatch {
        partition: batch.partition,
        offsets: rows.iter().map(|&i| batch.offsets[i]).collect(),
        timestamps: rows.iter().map(|&i| batch.timestamps[i]).collect(),
        keys: pick(&batch.keys),
        values: pick(&batch.values),
        next_offset: batch.next_offset,
        last: batch.last,
        types: batch
            .types
            .as_ref()
            .map(|t| rows.iter().map(|&i| t[i].clone()).collect()),
        headers: batch
            .headers
            .as_ref()
            .map(|h| rows.iter().map(|&i| h[i].clone()).collect()),
    }
}
