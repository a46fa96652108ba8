//! Protobuf messages (prost-reflect) straight into Arrow builders: nested messages become
//! structs, repeated fields lists, maps maps, enums dictionary strings, and
//! `google.protobuf.Timestamp` a UTC timestamp in microseconds. Fields without presence
//! (proto3 scalars) always hold a value; fields with presence are null when unset.

use super::Piece;
use super::proto_wire::{TIMESTAMP, WireMessage, downcast, micros};
use arrow::array::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, ListBuilder, MapBuilder, StringBuilder, StringDictionaryBuilder, StructBuilder,
    TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder, make_builder,
};
use arrow::datatypes::{DataType, Field, Fields, Int32Type, TimeUnit};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};
use std::sync::Arc;

/// The Arrow fields of a message's fields.
pub fn fields(message: &MessageDescriptor) -> Result<Vec<Field>, String> {
    fields_at(message, &mut Vec::new())
}

/// `outer` holds the message types this one is nested in: a type found among them contains
/// itself, which has no Arrow schema (and would be expanded without end).
fn fields_at(message: &MessageDescriptor, outer: &mut Vec<String>) -> Result<Vec<Field>, String> {
    if outer.iter().any(|name| name == message.full_name()) {
        return Err(format!(
            "message {} contains itself (a recursive message); it has no column form",
            message.full_name()
        ));
    }
    outer.push(message.full_name().to_string());
    let fields = message
        .fields()
        .map(|f| Ok(Field::new(f.name(), field_type(&f, outer)?, true)))
        .collect();
    outer.pop();
    fields
}

fn field_type(field: &FieldDescriptor, outer: &mut Vec<String>) -> Result<DataType, String> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(format!(
                "map field {} has no entry message",
                field.full_name()
            ));
        };
        let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let entries = Fields::from(vec![
            Field::new("key", kind_type(&key.kind(), outer)?, false),
            Field::new("value", kind_type(&value.kind(), outer)?, true),
        ]);
        let entries = Field::new("entries", DataType::Struct(entries), false);
        return Ok(DataType::Map(Arc::new(entries), false));
    }
    let item = kind_type(&field.kind(), outer)?;
    Ok(if field.is_list() {
        DataType::List(Arc::new(Field::new("item", item, true)))
    } else {
        item
    })
}

fn kind_type(kind: &Kind, outer: &mut Vec<String>) -> Result<DataType, String> {
    Ok(match kind {
        Kind::Double => DataType::Float64,
        Kind::Float => DataType::Float32,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => DataType::Int32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => DataType::Int64,
        Kind::Uint32 | Kind::Fixed32 => DataType::UInt32,
        Kind::Uint64 | Kind::Fixed64 => DataType::UInt64,
        Kind::Bool => DataType::Boolean,
        Kind::String => DataType::Utf8,
        Kind::Bytes => DataType::Binary,
        Kind::Enum(_) => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        Kind::Message(m) if m.full_name() == TIMESTAMP => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        Kind::Message(m) => DataType::Struct(Fields::from(fields_at(m, outer)?)),
    })
}

/// Builders for the columns of one message type, filled one message at a time.
pub struct MessageColumns {
    descriptor: MessageDescriptor,
    /// The wire reader of the type, unless it needs `DynamicMessage` (see proto_wire).
    wire: Option<WireMessage>,
    fields: Vec<Field>,
    builders: Vec<Box<dyn ArrayBuilder>>,
    /// Messages appended; a message type without fields has no column to count them.
    rows: usize,
}

impl MessageColumns {
    pub fn new(descriptor: &MessageDescriptor, capacity: usize) -> Result<Self, String> {
        let fields = fields(descriptor)?;
        let builders = fields
            .iter()
            .map(|f| make_builder(f.data_type(), capacity))
            .collect();
        Ok(MessageColumns {
            descriptor: descriptor.clone(),
            wire: WireMessage::new(descriptor),
            fields,
            builders,
            rows: 0,
        })
    }

    /// The same columns without the wire reader: every message through `DynamicMessage`, to
    /// compare the two paths in tests.
    #[cfg(test)]
    pub fn general(descriptor: &MessageDescriptor, capacity: usize) -> Result<Self, String> {
        let mut columns = MessageColumns::new(descriptor, capacity)?;
        columns.wire = None;
        Ok(columns)
    }

    /// Reads a message from its bytes into the columns; `None` when its type needs the
    /// general path (decode it and `append` it).
    pub fn append_wire(&mut self, bytes: &[u8]) -> Option<Result<(), String>> {
        let wire = self.wire.as_mut()?;
        let appended = wire.append(bytes, &mut self.builders);
        if appended.is_ok() {
            self.rows += 1;
        }
        Some(appended)
    }

    pub fn append(&mut self, message: &DynamicMessage) -> Result<(), String> {
        self.rows += 1;
        append_fields(&self.descriptor, message, &mut self.builders)
    }

    pub fn finish(&mut self) -> Piece {
        let columns = self.builders.iter_mut().map(|b| b.finish()).collect();
        let rows = std::mem::take(&mut self.rows);
        Piece::new(self.fields.clone(), columns, rows)
    }
}

fn append_fields(
    descriptor: &MessageDescriptor,
    message: &DynamicMessage,
    builders: &mut [Box<dyn ArrayBuilder>],
) -> Result<(), String> {
    for (field, builder) in descriptor.fields().zip(builders.iter_mut()) {
        let unset = field.supports_presence() && !message.has_field(&field);
        let value = message.get_field(&field);
        append_field(builder.as_mut(), &field, (!unset).then_some(value.as_ref()))?;
    }
    Ok(())
}

fn append_field(
    builder: &mut dyn ArrayBuilder,
    field: &FieldDescriptor,
    value: Option<&Value>,
) -> Result<(), String> {
    if field.is_map() {
        let b = downcast::<MapBuilder<Box<dyn ArrayBuilder>, Box<dyn ArrayBuilder>>>(builder)?;
        let (Kind::Message(entry), Some(Value::Map(map))) = (field.kind(), value) else {
            b.append(false).map_err(|e| e.to_string())?;
            return Ok(());
        };
        let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        // Sorted, so the same message always gives the same bytes.
        let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in entries {
            append_kind(
                b.keys().as_mut(),
                &key_field.kind(),
                Some(&Value::from(k.clone())),
            )?;
            append_kind(b.values().as_mut(), &value_field.kind(), Some(v))?;
        }
        return b.append(true).map_err(|e| e.to_string());
    }
    if field.is_list() {
        let b = downcast::<ListBuilder<Box<dyn ArrayBuilder>>>(builder)?;
        if let Some(Value::List(items)) = value {
            for item in items {
                append_kind(b.values().as_mut(), &field.kind(), Some(item))?;
            }
        }
        b.append(value.is_some());
        return Ok(());
    }
    append_kind(builder, &field.kind(), value)
}

fn append_kind(
    builder: &mut dyn ArrayBuilder,
    kind: &Kind,
    value: Option<&Value>,
) -> Result<(), String> {
    macro_rules! scalar {
        ($builder:ty, $variant:ident) => {{
            let b = downcast::<$builder>(builder)?;
            match value {
                Some(Value::$variant(v)) => b.append_value(v.clone()),
                _ => b.append_null(),
            }
        }};
    }
    match kind {
        Kind::Double => scalar!(Float64Builder, F64),
        Kind::Float => scalar!(Float32Builder, F32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => scalar!(Int32Builder, I32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => scalar!(Int64Builder, I64),
        Kind::Uint32 | Kind::Fixed32 => scalar!(UInt32Builder, U32),
        Kind::Uint64 | Kind::Fixed64 => scalar!(UInt64Builder, U64),
        Kind::Bool => scalar!(BooleanBuilder, Bool),
        Kind::String => {
            let b = downcast::<StringBuilder>(builder)?;
            match value {
                Some(Value::String(s)) => b.append_value(s),
                _ => b.append_null(),
            }
        }
        Kind::Bytes => {
            let b = downcast::<BinaryBuilder>(builder)?;
            match value {
                Some(Value::Bytes(v)) => b.append_value(v),
                _ => b.append_null(),
            }
        }
        Kind::Enum(e) => {
            let b = downcast::<StringDictionaryBuilder<Int32Type>>(builder)?;
            match value {
                Some(Value::EnumNumber(n)) => match e.get_value(*n) {
                    Some(v) => b.append_value(v.name()),
                    // A number this schema does not name (written by a newer schema).
                    None => b.append_value(n.to_string()),
                },
                _ => b.append_null(),
            }
        }
        Kind::Message(m) if m.full_name() == TIMESTAMP => {
            let b = downcast::<TimestampMicrosecondBuilder>(builder)?;
            match value {
                Some(Value::Message(ts)) => {
                    let seconds = ts
                        .get_field_by_name("seconds")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(0);
                    let nanos = ts
                        .get_field_by_name("nanos")
                        .and_then(|v| v.as_i32())
                        .unwrap_or(0);
                    b.append_value(micros(seconds, nanos)?);
                }
                _ => b.append_null(),
            }
        }
        Kind::Message(m) => {
            let b = downcast::<StructBuilder>(builder)?;
            match value {
                Some(Value::Message(inner)) => {
                    append_fields(m, inner, b.field_builders_mut())?;
                    b.append(true);
                }
                _ => {
                    let empty = DynamicMessage::new(m.clone());
                    append_fields(m, &empty, b.field_builders_mut())?;
                    b.append(false);
                }
            }
        }
    }
    Ok(())
}
