//! Header-typed topics (topics.json `type_header` and `types`): each record's type is named by
//! a header, and each type has its own format. A batch becomes one row per record with a
//! `value_type` column and one struct column per type, null where the record is of another
//! type: a union, as Parquet holds Avro unions, so files keep one schema and offsets stay in
//! order. A missing or unknown type is a record error (a dead letter, by default).

use super::{Payload, PayloadError, Piece, take};
use crate::config::TopicConfig;
use crate::read::RawBatch;
use crate::registry::Registry;
use arrow::array::{Array, ArrayRef, StringArray, StructArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Fields};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The column that names each record's type.
pub const TYPE_COLUMN: &str = "value_type";

pub(super) struct Typed {
    header: String,
    types: BTreeMap<String, Payload>,
    /// The struct type each type decoded to last: a type absent from a batch keeps its
    /// column, so the file schema stays the same.
    seen: BTreeMap<String, DataType>,
}

impl Typed {
    pub(super) fn new(topic: &TopicConfig, registry: Option<Arc<Registry>>) -> Option<Typed> {
        let header = topic.type_header.clone()?;
        let types = topic
            .types
            .iter()
            .flatten()
            .map(|(name, t)| {
                let mut one = topic.clone();
                one.format = t.format;
                one.schema_file = t.schema_file.clone();
                one.message = t.message.clone();
                let payload = Payload::new(t.format, &one, registry.clone(), true);
                (name.clone(), payload)
            })
            .collect();
        Some(Typed {
            header,
            types,
            seen: BTreeMap::new(),
        })
    }

    /// Payload columns of `batch`; a type whose schema changes inside the batch splits it.
    pub(super) fn decode(&mut self, batch: &RawBatch) -> Result<Vec<Piece>, PayloadError> {
        let names = self.type_names(batch)?;
        let mut rows: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            rows.entry(name.as_str()).or_default().push(i);
        }
        let mut columns: BTreeMap<String, ArrayRef> = BTreeMap::new();
        for (name, picked) in &rows {
            let Some(payload) = self.types.get_mut(*name) else {
                continue;
            };
            let sub = take(batch, picked);
            let mut pieces = payload
                .decode(&sub.values)
                .map_err(|e| e.reindex(|index| picked[index]))?;
            if pieces.len() > 1 {
                // The type's schema changed at this record: decode each side on its own.
                let split = picked[pieces[0].rows];
                return self.decode_split(batch, split);
            }
            let Some(piece) = pieces.pop() else {
                continue;
            };
            let column = struct_of(piece)?;
            self.seen
                .insert(name.to_string(), column.data_type().clone());
            let positions: UInt32Array = names
                .iter()
                .scan(0u32, |next, n| {
                    Some(if n == name {
                        *next += 1;
                        Some(*next - 1)
                    } else {
                        None
                    })
                })
                .collect();
            let spread = arrow::compute::take(&column, &positions, None)
                .map_err(|e| PayloadError::Batch(e.to_string()))?;
            columns.insert(name.to_string(), spread);
        }
        let mut fields = vec![Field::new(TYPE_COLUMN, DataType::Utf8, false)];
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(&names))];
        for (name, data_type) in &self.seen {
            let column = columns
                .remove(name)
                .unwrap_or_else(|| arrow::array::new_null_array(data_type, batch.len()));
            fields.push(Field::new(name, data_type.clone(), true));
            arrays.push(column);
        }
        Ok(vec![Piece::new(fields, arrays, batch.len())])
    }

    fn decode_split(&mut self, batch: &RawBatch, split: usize) -> Result<Vec<Piece>, PayloadError> {
        let all: Vec<usize> = (0..batch.len()).collect();
        let mut pieces = self.decode(&take(batch, &all[..split]))?;
        let rest = self
            .decode(&take(batch, &all[split..]))
            .map_err(|e| e.reindex(|index| index + split))?;
        pieces.extend(rest);
        Ok(pieces)
    }

    /// Each record's type; the first record without a known one is the error.
    fn type_names(&self, batch: &RawBatch) -> Result<Vec<String>, PayloadError> {
        let Some(types) = &batch.types else {
            return Err(PayloadError::Batch(format!(
                "the reader did not keep header {}",
                self.header
            )));
        };
        let mut names = Vec::with_capacity(types.len());
        for (index, name) in types.iter().enumerate() {
            match name {
                Some(name) if self.types.contains_key(name) => names.push(name.clone()),
                // The reader keeps header bytes that are not UTF-8 as U+FFFD.
                Some(name) if name.contains('\u{FFFD}') => {
                    return Err(PayloadError::Record {
                        index,
                        reason: format!(
                            "header {} is not UTF-8 text (`{name}`); it must name one of the topic's types",
                            self.header
                        ),
                    });
                }
                Some(name) => {
                    let known: Vec<&str> = self.types.keys().map(String::as_str).collect();
                    return Err(PayloadError::Record {
                        index,
                        reason: format!(
                            "header {} names type `{name}`, which is not in the topic's types ({}); add it to topics.json",
                            self.header,
                            known.join(", ")
                        ),
                    });
                }
                None => {
                    return Err(PayloadError::Record {
                        index,
                        reason: format!(
                            "header {} is missing; it names the record's type",
                            self.header
                        ),
                    });
                }
            }
        }
        Ok(names)
    }
}

fn struct_of(piece: Piece) -> Result<ArrayRef, PayloadError> {
    if piece.fields.is_empty() {
        return Ok(Arc::new(StructArray::new_empty_fields(piece.rows, None)));
    }
    let fields: Fields = piece.fields.into_iter().collect();
    StructArray::try_new(fields, piece.columns, None)
        .map(|s| Arc::new(s) as ArrayRef)
        .map_err(|e| PayloadError::Batch(e.to_string()))
}
