//! Parquet has no union type. An Avro union that is not just `["null", T]` arrives from
//! arrow-avro as an Arrow union; it becomes a struct with one nullable field per member (named
//! by the member), where only the member that is set holds a value. Spark reads Avro unions the
//! same way (its `member0`, `member1`, ...).

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StructArray, UInt32Array};
use arrow::compute::kernels::boolean::not;
use arrow::datatypes::{DataType, Field, Fields, Schema, UnionMode};
use arrow::error::ArrowError;
use std::sync::Arc;

/// The batch with every union column (at any struct depth) turned into a struct.
pub fn without_unions(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| has_union(f.data_type()))
    {
        return Ok(batch);
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let column = convert(column)?;
        fields.push(Field::new(field.name(), column.data_type().clone(), true));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

fn has_union(t: &DataType) -> bool {
    match t {
        DataType::Union(..) => true,
        DataType::Struct(fields) => fields.iter().any(|f| has_union(f.data_type())),
        _ => false,
    }
}

fn convert(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    match array.data_type() {
        DataType::Union(members, mode) => {
            let union = array.as_union();
            let mut fields = Vec::new();
            let mut children = Vec::new();
            for (position, (type_id, member)) in members.iter().enumerate() {
                if member.data_type() == &DataType::Null {
                    continue;
                }
                let child = union.child(type_id);
                let chosen: Vec<bool> = union.type_ids().iter().map(|t| *t == type_id).collect();
                let values = match mode {
                    UnionMode::Dense => {
                        let indices: UInt32Array = chosen
                            .iter()
                            .zip(union.offsets().into_iter().flatten())
                            .map(|(c, o)| c.then_some(*o as u32))
                            .collect();
                        arrow::compute::take(child.as_ref(), &indices, None)?
                    }
                    UnionMode::Sparse => {
                        let chosen = arrow::array::BooleanArray::from(chosen);
                        arrow::compute::nullif(child.as_ref(), &not(&chosen)?)?
                    }
                };
                let values = convert(&values)?;
                let name = if member.name().is_empty() {
                    format!("member{position}")
                } else {
                    member.name().clone()
                };
                fields.push(Field::new(name, values.data_type().clone(), true));
                children.push(values);
            }
            if fields.is_empty() {
                return Ok(arrow::array::new_null_array(&DataType::Null, array.len()));
            }
            Ok(Arc::new(StructArray::try_new(
                Fields::from(fields),
                children,
                None,
            )?))
        }
        DataType::Struct(_) if has_union(array.data_type()) => {
            let s = array.as_struct();
            let mut fields = Vec::new();
            let mut children = Vec::new();
            for (field, child) in s.fields().iter().zip(s.columns()) {
                let child = convert(child)?;
                fields.push(Field::new(field.name(), child.data_type().clone(), true));
                children.push(child);
            }
            let nulls = s.nulls().cloned();
            Ok(Arc::new(StructArray::try_new(
                Fields::from(fields),
                children,
                nulls,
            )?))
        }
        _ => Ok(array.clone()),
    }
}
