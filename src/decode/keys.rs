//! Keys with their own format (`key_format`): the `kafka_key` column becomes text or a struct
//! of the decoded key fields. A null key stays null; only keys that are set are decoded.

use super::{Payload, PayloadError, Piece};
use arrow::array::{Array, ArrayRef, BinaryArray, StructArray, UInt32Array};
use arrow::datatypes::{DataType, Fields};
use std::sync::Arc;

pub(super) fn decode(payload: &mut Payload, keys: &BinaryArray) -> Result<ArrayRef, PayloadError> {
    let set: Vec<u32> = (0..keys.len() as u32)
        .filter(|i| keys.is_valid(*i as usize))
        .collect();
    let subset = arrow::compute::take(keys, &UInt32Array::from(set.clone()), None)
        .map_err(|e| PayloadError::Batch(e.to_string()))?;
    let subset = subset
        .as_any()
        .downcast_ref::<BinaryArray>()
        .cloned()
        .ok_or_else(|| PayloadError::Batch("keys are not binary".into()))?;
    let pieces = payload.decode(&subset).map_err(|e| {
        // Errors name the record in the subset; map back to the batch.
        let e = match e {
            PayloadError::Record { index, reason } => PayloadError::Record {
                index,
                reason: format!("key: {reason}"),
            },
            PayloadError::Records(list) => PayloadError::Records(
                list.into_iter()
                    .map(|(i, r)| (i, format!("key: {r}")))
                    .collect(),
            ),
            other => other,
        };
        e.reindex(|index| set.get(index).map_or(index, |i| *i as usize))
    })?;
    let mut arrays = Vec::with_capacity(pieces.len());
    for Piece {
        fields,
        columns,
        rows,
    } in pieces
    {
        // Text keys stay a plain string column; structured keys become a struct of fields.
        let array: ArrayRef = if matches!(payload, Payload::String) && columns.len() == 1 {
            columns[0].clone()
        } else if fields.is_empty() {
            Arc::new(StructArray::new_empty_fields(rows, None))
        } else {
            Arc::new(
                StructArray::try_new(Fields::from(fields), columns, None)
                    .map_err(|e| PayloadError::Batch(e.to_string()))?,
            )
        };
        arrays.push(array);
    }
    let decoded = match arrays.as_slice() {
        [] => return Ok(arrow::array::new_null_array(&DataType::Binary, keys.len())),
        [one] => one.clone(),
        many => {
            let refs: Vec<&dyn Array> = many.iter().map(|a| a.as_ref()).collect();
            arrow::compute::concat(&refs).map_err(|_| {
                PayloadError::Batch(
                    "the key schema changes inside one batch; runner cannot put both key schemas in one column yet (set key_format to raw for this topic)".into(),
                )
            })?
        }
    };
    // Back to one row per record, null where the key was null.
    let positions: UInt32Array = {
        let mut next = 0u32;
        (0..keys.len())
            .map(|i| {
                keys.is_valid(i).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    };
    arrow::compute::take(decoded.as_ref(), &positions, None)
        .map_err(|e| PayloadError::Batch(e.to_string()))
}
