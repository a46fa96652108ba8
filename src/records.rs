//! Records one at a time, for stream jobs: decoded rows turned back into JSON values with
//! their Kafka coordinates, for expressions, joins and processing hooks.

use crate::decode::{Decoded, METADATA_COLUMNS, TYPE_COLUMN};
use crate::read::RawBatch;
use arrow::array::{Array, RecordBatch};
use serde::Serialize;
use serde_json::{Map, Value};

/// One record: where it came from and its decoded value. This is also what a command hook
/// receives, one JSON object per record.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// The key as text (invalid UTF-8 replaced).
    pub key: Option<String>,
    /// Header names and values as text.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// For a header-typed topic, the record's type.
    #[serde(rename = "type", default)]
    pub type_name: Option<String>,
    pub value: Value,
}

impl Record {
    pub fn bindings(&self) -> crate::expr::Bindings<'_> {
        crate::expr::Bindings::new(crate::expr::Variables {
            value: &self.value,
            key: self.key.as_deref(),
            headers: &self.headers,
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            type_name: self.type_name.as_deref(),
        })
    }
}

/// The decoded rows of `raw` (of `topic`) as records, in offset order. Rows share their
/// batch's schema, so a field a record lacks reads as null.
pub fn from_decoded(topic: &str, raw: &RawBatch, decoded: &Decoded) -> Result<Vec<Record>, String> {
    let mut records = Vec::with_capacity(decoded.offsets.len());
    // Decoded offsets are a subsequence of the raw ones: walk both.
    let mut at = 0;
    let mut row = 0;
    for piece in &decoded.rows {
        for value in values_of(piece)? {
            let offset = *decoded.offsets.get(row).ok_or("more rows than offsets")?;
            while at < raw.offsets.len() && raw.offsets[at] != offset {
                at += 1;
            }
            let (type_name, value) = split_type(value);
            records.push(record_at(topic, raw, at, type_name, value));
            row += 1;
        }
    }
    Ok(records)
}

/// The record at index `i` of `raw`, with its value.
fn record_at(
    topic: &str,
    raw: &RawBatch,
    i: usize,
    type_name: Option<String>,
    value: Value,
) -> Record {
    Record {
        topic: topic.to_string(),
        partition: raw.partition,
        offset: raw.offsets.get(i).copied().unwrap_or(-1),
        timestamp: raw.timestamps.get(i).copied().flatten(),
        key: (i < raw.keys.len() && raw.keys.is_valid(i))
            .then(|| String::from_utf8_lossy(raw.keys.value(i)).into_owned()),
        headers: raw
            .headers
            .as_ref()
            .and_then(|h| h.get(i).cloned())
            .unwrap_or_default(),
        type_name,
        value,
    }
}

/// The records of a JSON topic straight from their bytes, with no columnar detour: each value
/// exactly as written. Returns the records and the (offset, reason) of those that are not JSON.
pub fn from_json(topic: &str, raw: &RawBatch) -> (Vec<Record>, Vec<(i64, String)>) {
    let mut records = Vec::with_capacity(raw.len());
    let mut bad = Vec::new();
    for (i, &offset) in raw.offsets.iter().enumerate() {
        let value = if raw.values.is_valid(i) {
            match serde_json::from_slice(raw.values.value(i)) {
                Ok(v) => v,
                Err(e) => {
                    bad.push((offset, format!("not valid JSON: {e}")));
                    continue;
                }
            }
        } else {
            Value::Null
        };
        records.push(record_at(topic, raw, i, None, value));
    }
    (records, bad)
}

/// Each row's payload: the fields after the metadata columns, or the lone `value` column of
/// the raw and string formats.
fn values_of(batch: &RecordBatch) -> Result<Vec<Map<String, Value>>, String> {
    let payload = batch
        .project(&(METADATA_COLUMNS.len()..batch.num_columns()).collect::<Vec<_>>())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(&mut out);
    writer.write(&payload).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    // A schema without fields (`{}`, an empty message) has nothing to write.
    if payload.num_columns() == 0 || out.is_empty() {
        return Ok(vec![Map::new(); batch.num_rows()]);
    }
    let rows: Vec<Map<String, Value>> = serde_json::from_slice(&out).map_err(|e| e.to_string())?;
    if rows.len() != batch.num_rows() {
        return Err(format!(
            "{} rows became {} JSON values",
            batch.num_rows(),
            rows.len()
        ));
    }
    Ok(rows)
}

fn split_type(mut row: Map<String, Value>) -> (Option<String>, Value) {
    if let Some(Value::String(t)) = row.get(TYPE_COLUMN).cloned() {
        let value = row.remove(&t).unwrap_or(Value::Null);
        return (Some(t), value);
    }
    if row.len() == 1
        && let Some(v) = row.remove("value")
    {
        return (None, v);
    }
    (None, Value::Object(row))
}
