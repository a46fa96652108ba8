//! The Kafka metadata columns every output file starts with.

use crate::read::RawBatch;
use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, TimeUnit};
use std::sync::Arc;

/// Position of `kafka_key`, which `key_format` may replace with decoded columns.
pub const KEY: usize = 4;

pub const METADATA_COLUMNS: [&str; 5] = [
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "kafka_key",
];

/// Metadata fields and columns; `increment` shifts the written offsets (not the read position).
pub fn columns(topic: &str, batch: &RawBatch, increment: i64) -> (Vec<Field>, Vec<ArrayRef>) {
    let rows = batch.len();
    let fields = vec![
        Field::new(METADATA_COLUMNS[0], DataType::Utf8, false),
        Field::new(METADATA_COLUMNS[1], DataType::Int32, false),
        Field::new(METADATA_COLUMNS[2], DataType::Int64, false),
        Field::new(
            METADATA_COLUMNS[3],
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new(METADATA_COLUMNS[4], DataType::Binary, true),
    ];
    let offsets: Int64Array = batch.offsets.iter().map(|o| o + increment).collect();
    let timestamps = TimestampMillisecondArray::from(batch.timestamps.clone()).with_timezone("UTC");
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            topic, rows,
        ))),
        Arc::new(Int32Array::from_value(batch.partition, rows)),
        Arc::new(offsets),
        Arc::new(timestamps),
        Arc::new(batch.keys.clone()),
    ];
    (fields, columns)
}
