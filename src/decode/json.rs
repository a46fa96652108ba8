//! JSON objects to typed columns, read directly (`json_text`) or, for types that reader does
//! not cover, with arrow-json. The schema is inferred once, then reused in
//! strict mode; a batch that does not fit (a new field, another type) is inferred again and the
//! schemas merged, which makes the writer start a new file. Nothing is dropped on the way.

use super::json_text::{JsonColumns, Refusal};
use super::{PayloadError, PayloadResult, Piece};
use arrow::array::{Array, ArrayRef, BinaryArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
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
        let inferred = infer(values, self.schema.as_deref())?;
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
            Err(e @ (PayloadError::Unavailable(_) | PayloadError::Records(_))) => return e,
            Ok(_) => {}
        }
    }
    PayloadError::Batch(batch_reason)
}

fn split(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Piece {
    let fields = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    Piece::new(fields, columns, rows)
}

/// Leaf columns a JSON topic's files may have. Each open column costs the Parquet writer about
/// 45 KB, and an object whose keys are data (ids, dates) would add one column per key.
pub const MAX_COLUMNS: usize = 2_000;

/// Infers the schema of a batch; a record that is not a JSON object is an error naming it, and
/// records that would take the columns (with `current`'s) past `MAX_COLUMNS` are set aside.
fn infer(values: &BinaryArray, current: Option<&Schema>) -> Result<Schema, PayloadError> {
    let mut parsed = Vec::with_capacity(values.len());
    let mut columns = Columns::of(current);
    let mut too_wide = Vec::new();
    for index in 0..values.len() {
        if values.is_null(index) {
            continue;
        }
        let bytes = values.value(index);
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Record {
                index,
                reason: match std::str::from_utf8(bytes) {
                    Err(utf8) => format!("not valid JSON: not UTF-8 text ({utf8})"),
                    Ok(_) => format!("not valid JSON: {e}"),
                },
            })?;
        if !value.is_object() {
            return Err(PayloadError::Record {
                index,
                reason: "is JSON but not an object; use \"format\": \"raw\" for such topics"
                    .to_string(),
            });
        }
        if let Err(reason) = columns.admit(&value) {
            too_wide.push((index, reason));
            continue;
        }
        parsed.push(value);
    }
    if !too_wide.is_empty() {
        return Err(PayloadError::Records(too_wide));
    }
    infer_json_schema_from_iterator(parsed.into_iter().map(Ok))
        .map_err(|e| PayloadError::Batch(format!("cannot infer a schema: {e}")))
}

/// Decodes every record (a null payload becomes a row of nulls) with the given schema: read
/// directly when its types allow, with arrow-json otherwise.
pub(super) fn decode_with(
    schema: &SchemaRef,
    values: &BinaryArray,
) -> Result<Vec<ArrayRef>, PayloadError> {
    let offsets = values.value_offsets();
    let bytes = match (offsets.first(), offsets.last()) {
        (Some(first), Some(last)) => usize::try_from(last - first).unwrap_or(0),
        _ => 0,
    };
    if let Some(mut columns) = JsonColumns::new(schema, values.len(), bytes) {
        match (0..values.len()).try_for_each(|index| {
            let record = (!values.is_null(index)).then(|| values.value(index));
            columns.append(record).map_err(|refusal| (index, refusal))
        }) {
            Ok(()) => return columns.finish().map_err(PayloadError::Batch),
            Err((index, Refusal::Record(reason))) => {
                return Err(PayloadError::Record { index, reason });
            }
            Err((_, Refusal::Undecided)) => {}
        }
    }
    decode_arrow_json(schema, values)
}

pub(super) fn decode_arrow_json(
    schema: &SchemaRef,
    values: &BinaryArray,
) -> Result<Vec<ArrayRef>, PayloadError> {
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

/// The leaf columns (paths) of a topic's schema so far, to keep it under `MAX_COLUMNS`.
struct Columns(std::collections::HashSet<String>);

impl Columns {
    fn of(schema: Option<&Schema>) -> Self {
        let mut paths = std::collections::HashSet::new();
        if let Some(schema) = schema {
            for field in schema.fields() {
                field_paths(field.data_type(), field.name().clone(), &mut paths);
            }
        }
        Columns(paths)
    }

    /// Adds the record's columns, or says why it would make the files too wide.
    fn admit(&mut self, value: &serde_json::Value) -> Result<(), String> {
        let mut paths = std::collections::HashSet::new();
        if let serde_json::Value::Object(fields) = value {
            for (name, v) in fields {
                value_paths(v, name.clone(), &mut paths);
            }
        }
        let new: Vec<String> = paths.into_iter().filter(|p| !self.0.contains(p)).collect();
        let total = self.0.len() + new.len();
        if total > MAX_COLUMNS {
            return Err(format!(
                "would make {total} columns with the records before it, more than the {MAX_COLUMNS} \
                 a JSON topic's files take (each costs memory while a file is open); an object \
                 whose keys are data (ids, dates) belongs in a map: declare the schema with a map \
                 in schema_file (.avsc), or use \"format\": \"raw\""
            ));
        }
        self.0.extend(new);
        Ok(())
    }
}

/// Column paths as arrow-json infers them: an object's fields below it, an array's items.
fn value_paths(
    value: &serde_json::Value,
    path: String,
    out: &mut std::collections::HashSet<String>,
) {
    match value {
        serde_json::Value::Object(fields) if !fields.is_empty() => {
            for (name, v) in fields {
                value_paths(v, format!("{path}\0{name}"), out);
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() => {
            for item in items {
                value_paths(item, format!("{path}\0[]"), out);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

fn field_paths(data_type: &DataType, path: String, out: &mut std::collections::HashSet<String>) {
    match data_type {
        DataType::Struct(fields) if !fields.is_empty() => {
            for f in fields {
                field_paths(f.data_type(), format!("{path}\0{}", f.name()), out);
            }
        }
        DataType::List(item) | DataType::LargeList(item) => {
            field_paths(item.data_type(), format!("{path}\0[]"), out);
        }
        _ => {
            out.insert(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The column count of a schema arrow-json inferred equals that of the records it came
    /// from, so a known schema's records add no columns.
    #[test]
    fn columns_of_an_inferred_schema_match_its_records() {
        let record =
            serde_json::json!({"a": {"b": 1, "c": [{"d": 1, "e": "x"}]}, "f": [1, 2], "g": null});
        let values = BinaryArray::from_vec(vec![record.to_string().as_bytes()]);
        let schema = infer(&values, None).unwrap();
        let mut columns = Columns::of(Some(&schema));
        assert_eq!(columns.0.len(), 5, "{:?}", columns.0);
        columns.admit(&record).unwrap();
        assert_eq!(columns.0.len(), 5);
    }
}
