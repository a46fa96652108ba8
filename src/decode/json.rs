//! JSON objects to typed columns with arrow-json. The schema is inferred once, then reused in
//! strict mode; a batch that does not fit (a new field, another type) is inferred again and the
//! schemas merged, which makes the writer start a new file. Nothing is dropped on the way.

use super::{PayloadError, PayloadResult, Piece};
use arrow::array::{Array, ArrayRef, BinaryArray};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::json::ReaderBuilder;
use arrow::json::reader::infer_json_schema_from_iterator;
use std::sync::Arc;

#[derive(Default)]
pub struct JsonDecoder {
    schema: Option<SchemaRef>,
    /// A declared schema (`.avsc`): no inference; a record that does not fit is a dead letter.
    declared: Option<std::path::PathBuf>,
}

impl JsonDecoder {
    pub fn new(declared: Option<std::path::PathBuf>) -> Self {
        JsonDecoder {
            schema: None,
            declared,
        }
    }

    pub fn decode(&mut self, values: &BinaryArray) -> PayloadResult {
        if let Some(file) = &self.declared {
            if self.schema.is_none() {
                let avro = super::avro::read_schema(file).map_err(PayloadError::Batch)?;
                let schema = super::avro::arrow_schema(&avro).map_err(PayloadError::Batch)?;
                self.schema = Some(schema);
            }
            let schema = self
                .schema
                .clone()
                .ok_or_else(|| PayloadError::Batch("no schema".into()))?;
            return match decode_chunks(&schema, values) {
                Ok(pieces) => Ok(pieces),
                // arrow-json reports some mismatches for the whole batch; find the record.
                Err(PayloadError::Batch(reason)) => Err(first_misfit(&schema, values, reason)),
                Err(e) => Err(e),
            };
        }
        if let Some(schema) = &self.schema
            && let Ok(pieces) = decode_chunks(schema, values)
        {
            return Ok(pieces);
        }
        let inferred = infer(values)?;
        let schema = match &self.schema {
            Some(current) => {
                Schema::try_merge([current.as_ref().clone(), inferred.clone()]).unwrap_or(inferred)
            }
            None => inferred,
        };
        let schema = Arc::new(schema);
        let pieces = decode_chunks(&schema, values)?;
        self.schema = Some(schema);
        Ok(pieces)
    }
}

/// `decode_with` over chunks of the batch on every core: one piece per chunk, in order.
fn decode_chunks(schema: &SchemaRef, values: &BinaryArray) -> PayloadResult {
    super::in_chunks(values.len(), |rows| {
        let columns = decode_with(schema, &values.slice(rows.start, rows.len()))?;
        Ok(split(schema, columns, rows.len()))
    })
}

/// The first record that does not fit `schema` on its own, or the batch error.
fn first_misfit(schema: &SchemaRef, values: &BinaryArray, batch_reason: String) -> PayloadError {
    for index in 0..values.len() {
        match decode_with(schema, &values.slice(index, 1)) {
            Err(PayloadError::Record { reason, .. } | PayloadError::Batch(reason)) => {
                return PayloadError::Record {
                    index,
                    reason: format!("does not fit the declared schema: {reason}"),
                };
            }
            Err(e @ PayloadError::Unavailable(_)) => return e,
            Ok(_) => {}
        }
    }
    PayloadError::Batch(batch_reason)
}

fn split(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Piece {
    let fields = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    Piece::new(fields, columns, rows)
}

/// Infers the schema of a batch; a record that is not a JSON object is an error naming it.
fn infer(values: &BinaryArray) -> Result<Schema, PayloadError> {
    let mut parsed = Vec::with_capacity(values.len());
    for index in 0..values.len() {
        if values.is_null(index) {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_slice(values.value(index)).map_err(|e| PayloadError::Record {
                index,
                reason: format!("not valid JSON: {e}"),
            })?;
        if !value.is_object() {
            return Err(PayloadError::Record {
                index,
                reason: "is JSON but not an object; use \"format\": \"raw\" for such topics"
                    .to_string(),
            });
        }
        parsed.push(value);
    }
    infer_json_schema_from_iterator(parsed.into_iter().map(Ok))
        .map_err(|e| PayloadError::Batch(format!("cannot infer a schema: {e}")))
}

/// Decodes every record (a null payload becomes a row of nulls) with the given schema.
fn decode_with(schema: &SchemaRef, values: &BinaryArray) -> Result<Vec<ArrayRef>, PayloadError> {
    let rows = values.len();
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.max(1))
        .with_strict_mode(true)
        .build_decoder()
        .map_err(|e| PayloadError::Batch(e.to_string()))?;
    for index in 0..rows {
        let bytes: &[u8] = if values.is_null(index) {
            b"{}"
        } else {
            values.value(index)
        };
        let record_error = |e: arrow::error::ArrowError| PayloadError::Record {
            index,
            reason: e.to_string(),
        };
        let read = decoder.decode(bytes).map_err(record_error)?;
        if read != bytes.len() {
            return Err(PayloadError::Record {
                index,
                reason: "holds more than one JSON value".to_string(),
            });
        }
        decoder.decode(b"\n").map_err(record_error)?;
    }
    let batch = decoder
        .flush()
        .map_err(|e| PayloadError::Batch(e.to_string()))?
        .ok_or_else(|| PayloadError::Batch("no rows decoded".to_string()))?;
    if batch.num_rows() != rows {
        return Err(PayloadError::Batch(format!(
            "decoded {} rows from {rows} records",
            batch.num_rows()
        )));
    }
    Ok(batch.columns().to_vec())
}
