//! Dead-letter rows: the records that could not be decoded, kept whole with the reason, so
//! nothing is dropped and each can be inspected or replayed.

use super::metadata;
use crate::read::RawBatch;
use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use std::sync::Arc;

/// The columns after the metadata ones: the payload as it came, and why it was set aside.
pub const DEAD_LETTER_COLUMNS: [&str; 2] = ["value", "error"];

/// Rows for the records `dead` (index into `batch`, reason); `None` when there are none.
pub fn batch(
    topic: &str,
    batch: &RawBatch,
    dead: &[(usize, String)],
) -> Result<Option<RecordBatch>, arrow::error::ArrowError> {
    if dead.is_empty() {
        return Ok(None);
    }
    let rows: Vec<usize> = dead.iter().map(|(i, _)| *i).collect();
    let picked = super::take(batch, &rows);
    // Dead letters carry the real Kafka offset, for replay; no offset_increment.
    let (mut fields, mut columns) = metadata::columns(topic, &picked, 0);
    fields.push(Field::new(DEAD_LETTER_COLUMNS[0], DataType::Binary, true));
    fields.push(Field::new(DEAD_LETTER_COLUMNS[1], DataType::Utf8, false));
    columns.push(Arc::new(picked.values.clone()) as ArrayRef);
    columns.push(Arc::new(StringArray::from_iter_values(
        dead.iter().map(|(_, reason)| reason.as_str()),
    )));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map(Some)
}
