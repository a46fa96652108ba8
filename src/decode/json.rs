//! JSON objects to typed columns with arrow-json. The schema is inferred once, then reused in
//! strict mode; a batch that does not fit (a new field, another type) is inferred again and the
//! schemas merged, which makes the writer start a new file. Nothing is dropped on the way.

use super::{PayloadError, PayloadResult};
use arrow::array::{Array, ArrayRef, BinaryArray};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::json::ReaderBuilder;
use arrow::json::reader::infer_json_schema_from_iterator;
use std::sync::Arc;

#[derive(Default)]
pub struct JsonDecoder {
    schema: Option<SchemaRef>,
}

impl JsonDecoder {
    pub fn decode(&mut self, values: &BinaryArray) -> PayloadResult {
        if let Some(schema) = &self.schema
            && let Ok(columns) = decode_with(schema, values)
        {
            return Ok(split(schema, columns));
        }
        let inferred = infer(values)?;
        let schema = match &self.schema {
            Some(current) => {
                Schema::try_merge([current.as_ref().clone(), inferred.clone()]).unwrap_or(inferred)
            }
            None => inferred,
        };
        let schema = Arc::new(schema);
        let columns = decode_with(&schema, values)?;
        self.schema = Some(schema.clone());
        Ok(split(&schema, columns))
    }
}

fn split(schema: &SchemaRef, columns: Vec<ArrayRef>) -> (Vec<Field>, Vec<ArrayRef>) {
    let fields = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    (fields, columns)
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
