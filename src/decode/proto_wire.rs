//! Protobuf messages read from the wire straight into their column builders, without a
//! `DynamicMessage` per record: prost-reflect's message costs an allocation per field and a
//! shared descriptor's reference count per access, most of Protobuf's decoding time. Scalar,
//! string, bytes and enum fields, nested messages (struct columns),
//! `google.protobuf.Timestamp`, repeated fields of all of these (list columns) and maps
//! (their values scalars or messages) are read here; only recursive types are left to the
//! general path, which refuses them.

use arrow::array::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, ListBuilder, MapBuilder, StringBuilder, StringDictionaryBuilder, StructBuilder,
    TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::Int32Type;
use prost_reflect::{Kind, MessageDescriptor};
use std::borrow::Cow;
use std::collections::HashMap;

/// How one field's value becomes its column.
enum Shape {
    Scalar,
    /// A repeated scalar: a list column, its items packed or one per occurrence.
    List,
    /// Repeated messages (Timestamps with `timestamp`): a list column, an item per occurrence.
    Messages {
        inner: Box<WireMessage>,
        timestamp: bool,
    },
    /// A nested message: a struct column, read by the message's own reader.
    Message(Box<WireMessage>),
    /// `google.protobuf.Timestamp`: microseconds from its `seconds` and `nanos`.
    Timestamp(Box<WireMessage>),
    /// A map: its entries (messages with the key in field 1, the value in field 2) read by
    /// the entry's reader.
    Map(Box<WireMessage>),
}

/// How one field is read and where it goes.
struct Column {
    kind: Kind,
    /// Null when unset (messages, proto3 `optional`, proto2); otherwise the type's default.
    presence: bool,
    /// The wire type of one value: a scalar's (packed items too), `None` for length-delimited.
    wire: Option<u8>,
    /// A string: its bytes are checked as UTF-8.
    text: bool,
    /// Enum value names by number, sorted by number (the last of aliases of one number).
    names: Vec<(i32, String)>,
    /// The enum's default: its first value.
    default_name: String,
    shape: Shape,
}

/// A value as read from the wire, before it is typed by its column.
#[derive(Clone, Copy)]
enum Raw {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// Start and end of a length-delimited value in the message.
    Bytes(usize, usize),
}

impl Raw {
    /// The value as a varint, or 0 when it was written otherwise (checked by `fits`).
    fn varint(self) -> u64 {
        match self {
            Raw::Varint(v) => v,
            _ => 0,
        }
    }

    fn fixed64(self) -> u64 {
        match self {
            Raw::Fixed64(v) => v,
            _ => 0,
        }
    }

    fn fixed32(self) -> u32 {
        match self {
            Raw::Fixed32(v) => v,
            _ => 0,
        }
    }
}

pub struct WireMessage {
    columns: Vec<Column>,
    /// Column index by field number, for numbers up to 1,024; larger ones in `sparse`.
    by_number: Vec<Option<usize>>,
    sparse: HashMap<u32, usize>,
    /// The last value of each column in the message being read.
    seen: Vec<Option<Raw>>,
    /// Where each message column occurs in the message being read: a message field written
    /// more than once is the merge of every occurrence, as Protobuf parsers read it.
    parts: Vec<Vec<(usize, usize)>>,
    /// The items of each repeated column in the message being read.
    items: Vec<Vec<Raw>>,
    /// Every column a scalar: no parts or items to keep, nothing nested to check.
    flat: bool,
}

impl WireMessage {
    /// The wire reader of `message`, or `None` when a field needs the general path.
    pub fn new(message: &MessageDescriptor) -> Option<WireMessage> {
        WireMessage::inside(message, &mut Vec::new())
    }

    /// `outer` holds the types this one is nested in; a recursive type is left to the
    /// general path, which refuses it.
    fn inside(message: &MessageDescriptor, outer: &mut Vec<String>) -> Option<WireMessage> {
        if outer.iter().any(|name| name == message.full_name()) {
            return None;
        }
        outer.push(message.full_name().to_string());
        let reader = WireMessage::of_fields(message, outer);
        outer.pop();
        reader
    }

    fn of_fields(message: &MessageDescriptor, outer: &mut Vec<String>) -> Option<WireMessage> {
        let mut columns = Vec::new();
        let mut by_number = Vec::new();
        let mut sparse = HashMap::new();
        for (index, field) in message.fields().enumerate() {
            let shape = match field.kind() {
                Kind::Message(entry) if field.is_map() => {
                    Shape::Map(Box::new(map_entry(&entry, outer)?))
                }
                Kind::Message(m) if field.is_list() => Shape::Messages {
                    timestamp: m.full_name() == super::proto_arrow::TIMESTAMP,
                    inner: Box::new(WireMessage::inside(&m, outer)?),
                },
                _ if field.is_list() => Shape::List,
                Kind::Message(m) if m.full_name() == super::proto_arrow::TIMESTAMP => {
                    Shape::Timestamp(Box::new(WireMessage::inside(&m, outer)?))
                }
                Kind::Message(m) => Shape::Message(Box::new(WireMessage::inside(&m, outer)?)),
                _ => Shape::Scalar,
            };
            let (names, default_name) = match field.kind() {
                Kind::Enum(e) => {
                    let by_number: HashMap<i32, String> = e
                        .values()
                        .map(|v| (v.number(), v.name().to_string()))
                        .collect();
                    let mut names: Vec<_> = by_number.into_iter().collect();
                    names.sort_unstable_by_key(|(number, _)| *number);
                    (names, e.default_value().name().to_string())
                }
                _ => (Vec::new(), String::new()),
            };
            let number = field.number() as usize;
            if number < 1024 {
                if by_number.len() <= number {
                    by_number.resize(number + 1, None);
                }
                by_number[number] = Some(index);
            } else {
                sparse.insert(field.number(), index);
            }
            columns.push(Column {
                wire: packed_wire(&field.kind()),
                text: field.kind() == Kind::String,
                kind: field.kind(),
                presence: field.supports_presence(),
                names,
                default_name,
                shape,
            });
        }
        Some(WireMessage {
            flat: columns.iter().all(|c| matches!(c.shape, Shape::Scalar)),
            seen: vec![None; columns.len()],
            parts: vec![Vec::new(); columns.len()],
            items: vec![Vec::new(); columns.len()],
            columns,
            by_number,
            sparse,
        })
    }

    /// Reads one message and appends a row to `builders` (one per field, in field order).
    /// A message that cannot be read leaves the builders as they were.
    pub fn append(
        &mut self,
        bytes: &[u8],
        builders: &mut [Box<dyn ArrayBuilder>],
    ) -> Result<(), String> {
        self.scan(bytes, &[(0, bytes.len())])?;
        self.emit(bytes, builders, true)
    }

    /// Reads the fields in `parts` of `bytes` (one message, or the occurrences of a nested
    /// one) and checks every value, nested ones included, before anything is appended.
    fn scan(&mut self, bytes: &[u8], parts: &[(usize, usize)]) -> Result<(), String> {
        self.seen.fill(None);
        if self.flat {
            for &(start, end) in parts {
                self.scan_part(&bytes[..end], start)?;
            }
            return Ok(());
        }
        self.parts.iter_mut().for_each(Vec::clear);
        self.items.iter_mut().for_each(Vec::clear);
        for &(start, end) in parts {
            self.scan_part(&bytes[..end], start)?;
        }
        for (c, column) in self.columns.iter_mut().enumerate() {
            match (&mut column.shape, self.seen[c]) {
                (Shape::Messages { inner, timestamp }, _) => {
                    for item in &self.items[c] {
                        if let Raw::Bytes(start, end) = *item {
                            inner.scan(bytes, &[(start, end)])?;
                            if *timestamp {
                                timestamp_micros(inner)?;
                            }
                        }
                    }
                }
                (Shape::Map(entry), _) => {
                    for item in &self.items[c] {
                        if let Raw::Bytes(start, end) = *item {
                            entry.scan(bytes, &[(start, end)])?;
                        }
                    }
                }
                (Shape::Message(inner), Some(_)) => inner.scan(bytes, &self.parts[c])?,
                (Shape::Timestamp(inner), Some(_)) => {
                    inner.scan(bytes, &self.parts[c])?;
                    timestamp_micros(inner)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn scan_part(&mut self, bytes: &[u8], mut at: usize) -> Result<(), String> {
        while at < bytes.len() {
            let key = varint(bytes, &mut at)?;
            // A key is a 32-bit value (a 29-bit field number and the wire type), as prost reads it.
            if key > u64::from(u32::MAX) {
                return Err(format!("invalid key value {key}"));
            }
            let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
            if number == 0 {
                return Err("invalid field number 0".into());
            }
            let raw = match wire {
                0 => Raw::Varint(varint(bytes, &mut at)?),
                1 => Raw::Fixed64(u64::from_le_bytes(take::<8>(bytes, &mut at)?)),
                5 => Raw::Fixed32(u32::from_le_bytes(take::<4>(bytes, &mut at)?)),
                2 => {
                    let len = usize::try_from(varint(bytes, &mut at)?)
                        .map_err(|_| "length too large".to_string())?;
                    let end = at
                        .checked_add(len)
                        .filter(|end| *end <= bytes.len())
                        .ok_or("buffer underflow")?;
                    let raw = Raw::Bytes(at, end);
                    at = end;
                    raw
                }
                _ => return Err(format!("wire type {wire} is not supported")),
            };
            let column = match self.by_number.get(number as usize) {
                Some(found) => *found,
                None => self.sparse.get(&number).copied(),
            };
            // A field this schema does not know (a newer writer's) is skipped.
            if let Some(c) = column {
                let column = &self.columns[c];
                if let (Shape::List, Raw::Bytes(start, end), Some(item)) =
                    (&column.shape, raw, column.wire)
                {
                    unpack(bytes, start, end, item, &mut self.items[c])?;
                    continue;
                }
                if !fits(column.wire, raw) {
                    return Err(format!(
                        "field {number} has wire type {wire}, not its type's"
                    ));
                }
                // Every occurrence, as prost checks each before a later one replaces it.
                if column.text {
                    utf8(bytes, raw)?;
                }
                if let (Shape::Message(_) | Shape::Timestamp(_), Raw::Bytes(start, end)) =
                    (&column.shape, raw)
                {
                    self.parts[c].push((start, end));
                }
                if let Shape::List | Shape::Messages { .. } | Shape::Map(_) = column.shape {
                    self.items[c].push(raw);
                }
                self.seen[c] = Some(raw);
            }
        }
        Ok(())
    }

    /// Appends the message last scanned, or (`present` false) an absent one: nulls, and the
    /// defaults of fields without presence, as prost-reflect's empty message holds.
    fn emit(
        &mut self,
        bytes: &[u8],
        builders: &mut [Box<dyn ArrayBuilder>],
        present: bool,
    ) -> Result<(), String> {
        for (c, column) in self.columns.iter_mut().enumerate() {
            let seen = if present { self.seen[c] } else { None };
            let builder = builders[c].as_mut();
            match &mut column.shape {
                Shape::Scalar => append(column, seen, bytes, builder)?,
                Shape::List => {
                    let b = downcast::<ListBuilder<Box<dyn ArrayBuilder>>>(builder)?;
                    if present {
                        for item in &self.items[c] {
                            append(column, Some(*item), bytes, b.values().as_mut())?;
                        }
                    }
                    b.append(true);
                }
                Shape::Messages { inner, timestamp } => {
                    let b = downcast::<ListBuilder<Box<dyn ArrayBuilder>>>(builder)?;
                    let items = if present { &self.items[c][..] } else { &[] };
                    for item in items {
                        let Raw::Bytes(start, end) = *item else {
                            continue;
                        };
                        // Each item is a message of its own, read again here (scan checked it).
                        inner.scan(bytes, &[(start, end)])?;
                        if *timestamp {
                            let t = downcast::<TimestampMicrosecondBuilder>(b.values().as_mut())?;
                            t.append_value(timestamp_micros(inner)?);
                        } else {
                            let item = downcast::<StructBuilder>(b.values().as_mut())?;
                            inner.emit(bytes, item.field_builders_mut(), true)?;
                            item.append(true);
                        }
                    }
                    b.append(true);
                }
                Shape::Map(entry) => {
                    let items = if present { &self.items[c][..] } else { &[] };
                    append_map(entry, items, bytes, builder)?;
                }
                Shape::Message(inner) => {
                    let b = downcast::<StructBuilder>(builder)?;
                    inner.emit(bytes, b.field_builders_mut(), seen.is_some())?;
                    b.append(seen.is_some());
                }
                Shape::Timestamp(inner) => {
                    let b = downcast::<TimestampMicrosecondBuilder>(builder)?;
                    match seen {
                        Some(_) => b.append_value(timestamp_micros(inner)?),
                        None => b.append_null(),
                    }
                }
            }
        }
        Ok(())
    }

    /// The last value read of field `number` (a varint).
    fn varint_of(&self, number: usize) -> u64 {
        let column = self.by_number.get(number).copied().flatten();
        column.and_then(|c| self.seen[c]).map_or(0, Raw::varint)
    }
}

/// The reader of a map's entry message. A missing value is the type's default, as in every
/// parser (a proto2 entry too): a scalar's zero, an empty message (not null).
fn map_entry(entry: &MessageDescriptor, outer: &mut Vec<String>) -> Option<WireMessage> {
    let mut reader = WireMessage::of_fields(entry, outer)?;
    for column in &mut reader.columns {
        column.presence = false;
    }
    Some(reader)
}

/// Appends a map: its entries with one per key (the last one written wins) in key order, as
/// the general path appends the map prost-reflect reads.
fn append_map(
    entry: &mut WireMessage,
    items: &[Raw],
    bytes: &[u8],
    builder: &mut dyn ArrayBuilder,
) -> Result<(), String> {
    let b = downcast::<MapBuilder<Box<dyn ArrayBuilder>, Box<dyn ArrayBuilder>>>(builder)?;
    let column = |number: usize| entry.by_number.get(number).copied().flatten();
    let (Some(k), Some(v)) = (column(1), column(2)) else {
        return Err("internal: a map entry without its key or value field".into());
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Raw::Bytes(start, end) = *item else {
            continue;
        };
        entry.scan(bytes, &[(start, end)])?;
        let (key, value) = (entry.seen[k], entry.seen[v]);
        entries.push((
            map_key(&entry.columns[k].kind, key, bytes)?,
            key,
            value,
            (start, end),
        ));
    }
    // A stable sort keeps the entries of one key in the order written: the last one wins.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (sort_key, key, value, part)) in entries.iter().enumerate() {
        if entries.get(i + 1).is_some_and(|next| next.0 == *sort_key) {
            continue;
        }
        append(&entry.columns[k], *key, bytes, b.keys().as_mut())?;
        let values = b.values().as_mut();
        if let Shape::Scalar = entry.columns[v].shape {
            append(&entry.columns[v], *value, bytes, values)?;
            continue;
        }
        // A message value is read again: a later entry's has been read since.
        entry.scan(bytes, &[*part])?;
        let present = entry.seen[v].is_some();
        match &mut entry.columns[v].shape {
            Shape::Message(inner) => {
                if !present {
                    inner.scan(bytes, &[])?;
                }
                let s = downcast::<StructBuilder>(values)?;
                inner.emit(bytes, s.field_builders_mut(), true)?;
                s.append(true);
            }
            Shape::Timestamp(inner) => {
                if !present {
                    inner.scan(bytes, &[])?;
                }
                let t = downcast::<TimestampMicrosecondBuilder>(values)?;
                t.append_value(timestamp_micros(inner)?);
            }
            _ => return Err("internal: a map value of another shape".into()),
        }
    }
    b.append(true).map_err(|e| e.to_string())
}

/// A map key, ordered as prost-reflect's `MapKey` (all keys of a map have one type; strings
/// compare as their UTF-8 bytes, as `String` does); an absent key is the type's default.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    Bool(bool),
    Signed(i64),
    Unsigned(u64),
    Text(&'a [u8]),
}

fn map_key<'a>(kind: &Kind, raw: Option<Raw>, bytes: &'a [u8]) -> Result<Key<'a>, String> {
    let varint = raw.map_or(0, Raw::varint);
    let fixed32 = raw.map_or(0, Raw::fixed32);
    let fixed64 = raw.map_or(0, Raw::fixed64);
    Ok(match kind {
        Kind::Int32 => Key::Signed(i64::from(varint as i32)),
        Kind::Sint32 => Key::Signed(i64::from(zigzag32(varint as u32))),
        Kind::Sfixed32 => Key::Signed(i64::from(fixed32 as i32)),
        Kind::Int64 => Key::Signed(varint as i64),
        Kind::Sint64 => Key::Signed(zigzag(varint)),
        Kind::Sfixed64 => Key::Signed(fixed64 as i64),
        Kind::Uint32 => Key::Unsigned(u64::from(varint as u32)),
        Kind::Fixed32 => Key::Unsigned(u64::from(fixed32)),
        Kind::Uint64 => Key::Unsigned(varint),
        Kind::Fixed64 => Key::Unsigned(fixed64),
        Kind::Bool => Key::Bool(varint != 0),
        // Checked as UTF-8 when the entry was scanned.
        Kind::String => Key::Text(match raw {
            Some(Raw::Bytes(start, end)) => &bytes[start..end],
            _ => &[],
        }),
        other => return Err(format!("a map key of type {other:?}")),
    })
}

/// Checks that a string field's bytes are UTF-8 text, as prost does: `append` relies on it.
/// ASCII, the common text, is checked a word at a time without the general check's setup.
fn utf8(bytes: &[u8], raw: Raw) -> Result<(), &'static str> {
    match raw {
        Raw::Bytes(start, end) if !bytes[start..end].is_ascii() => {
            std::str::from_utf8(&bytes[start..end])
                .map(|_| ())
                .map_err(|_| "invalid string value: data is not UTF-8 encoded")
        }
        _ => Ok(()),
    }
}

/// A string field's text, which `scan` checked with `utf8` before anything was appended.
fn checked_text(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: every string value `append` takes was checked by `utf8` when its message was
    // scanned (`WireMessage::scan`: scalar and repeated strings, nested messages and map
    // entries alike), and `bytes` has not changed since. Checking again cost 5% of a
    // Protobuf topic's instructions.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// The wire type of one item of a packed repeated field of `kind`; `None` for kinds that are
/// never packed (strings, bytes, messages).
fn packed_wire(kind: &Kind) -> Option<u8> {
    match kind {
        Kind::Int32
        | Kind::Int64
        | Kind::Uint32
        | Kind::Uint64
        | Kind::Sint32
        | Kind::Sint64
        | Kind::Bool
        | Kind::Enum(_) => Some(0),
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => Some(1),
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => Some(5),
        _ => None,
    }
}

/// The items of a packed repeated field in `bytes[start..end]`, each of wire type `wire`.
fn unpack(
    bytes: &[u8],
    mut at: usize,
    end: usize,
    wire: u8,
    items: &mut Vec<Raw>,
) -> Result<(), String> {
    let bytes = &bytes[..end];
    while at < end {
        items.push(match wire {
            0 => Raw::Varint(varint(bytes, &mut at)?),
            1 => Raw::Fixed64(u64::from_le_bytes(take::<8>(bytes, &mut at)?)),
            _ => Raw::Fixed32(u32::from_le_bytes(take::<4>(bytes, &mut at)?)),
        });
    }
    Ok(())
}

/// A scanned `google.protobuf.Timestamp` in microseconds.
fn timestamp_micros(timestamp: &WireMessage) -> Result<i64, String> {
    let seconds = timestamp.varint_of(1) as i64;
    let nanos = timestamp.varint_of(2) as i32;
    super::proto_arrow::micros(seconds, nanos)
}

fn downcast<T: 'static>(builder: &mut dyn ArrayBuilder) -> Result<&mut T, String> {
    builder
        .as_any_mut()
        .downcast_mut::<T>()
        .ok_or_else(|| format!("internal: builder is not a {}", std::any::type_name::<T>()))
}

/// Whether `raw` has its column's wire type (`Column::wire`): a scalar's (as when packed),
/// or length-delimited (`None`) for strings, bytes and messages.
fn fits(column_wire: Option<u8>, raw: Raw) -> bool {
    let wire = match raw {
        Raw::Varint(_) => Some(0),
        Raw::Fixed64(_) => Some(1),
        Raw::Fixed32(_) => Some(5),
        Raw::Bytes(..) => None,
    };
    column_wire == wire
}

/// Appends one value (`None`: unset) to its column. Errors are static texts, so the result
/// is returned in registers.
fn append(
    column: &Column,
    raw: Option<Raw>,
    bytes: &[u8],
    builder: &mut dyn ArrayBuilder,
) -> Result<(), &'static str> {
    macro_rules! put {
        ($builder:ty, $value:expr, $default:expr) => {{
            let b = builder
                .as_any_mut()
                .downcast_mut::<$builder>()
                .ok_or("a column builder of another type")?;
            match raw {
                Some(raw) => b.append_value(($value)(raw)),
                None if column.presence => b.append_null(),
                None => b.append_value($default),
            }
        }};
    }
    let (varint, fixed64, fixed32) = (Raw::varint, Raw::fixed64, Raw::fixed32);
    let slice = |raw: Raw| match raw {
        Raw::Bytes(start, end) => &bytes[start..end],
        _ => &[][..],
    };
    match &column.kind {
        Kind::Double => put!(Float64Builder, |r| f64::from_bits(fixed64(r)), 0.0),
        Kind::Float => put!(Float32Builder, |r| f32::from_bits(fixed32(r)), 0.0),
        Kind::Int32 => put!(Int32Builder, |r| varint(r) as i32, 0),
        // Truncated to 32 bits before the zigzag, as prost reads a sint32.
        Kind::Sint32 => put!(Int32Builder, |r| zigzag32(varint(r) as u32), 0),
        Kind::Sfixed32 => put!(Int32Builder, |r| fixed32(r) as i32, 0),
        Kind::Int64 => put!(Int64Builder, |r| varint(r) as i64, 0),
        Kind::Sint64 => put!(Int64Builder, |r| zigzag(varint(r)), 0),
        Kind::Sfixed64 => put!(Int64Builder, |r| fixed64(r) as i64, 0),
        Kind::Uint32 => put!(UInt32Builder, |r| varint(r) as u32, 0),
        Kind::Fixed32 => put!(UInt32Builder, fixed32, 0),
        Kind::Uint64 => put!(UInt64Builder, varint, 0),
        Kind::Fixed64 => put!(UInt64Builder, fixed64, 0),
        Kind::Bool => put!(BooleanBuilder, |r| varint(r) != 0, false),
        Kind::Bytes => put!(BinaryBuilder, slice, &[][..]),
        Kind::String => put!(StringBuilder, |r| checked_text(slice(r)), ""),
        Kind::Enum(_) => {
            let name = |r: Raw| {
                let n = varint(r) as i32;
                match column.names.binary_search_by_key(&n, |(number, _)| *number) {
                    Ok(i) => Cow::Borrowed(column.names[i].1.as_str()),
                    // A number this schema does not name (written by a newer schema).
                    Err(_) => Cow::Owned(n.to_string()),
                }
            };
            put!(
                StringDictionaryBuilder<Int32Type>,
                name,
                column.default_name.as_str()
            )
        }
        Kind::Message(_) => return Err("internal: a message field read as a scalar"),
    }
    Ok(())
}

fn zigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A varint at `at`. The error is a static text, so the result fits in two registers (a
/// `String` error made every call return through memory).
fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    // Most keys and many values are one byte.
    if let Some(&byte) = bytes.get(*at)
        && byte < 0x80
    {
        *at += 1;
        return Ok(u64::from(byte));
    }
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *bytes.get(*at).ok_or("buffer underflow")?;
        *at += 1;
        if shift == 63 && byte > 1 {
            return Err("invalid varint");
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err("invalid varint")
}

fn take<const N: usize>(bytes: &[u8], at: &mut usize) -> Result<[u8; N], &'static str> {
    let end = at.checked_add(N).filter(|end| *end <= bytes.len());
    let end = end.ok_or("buffer underflow")?;
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[*at..end]);
    *at = end;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::proto_arrow::MessageColumns;
    use proptest::prelude::*;
    use prost::Message;
    use prost_reflect::{DynamicMessage, MessageDescriptor, Value};

    const FLAT: &str = r#"syntax = "proto3";
message Flat {
  double d = 1; float f = 2; int32 i32 = 3; int64 i64 = 4; uint32 u32 = 5; uint64 u64 = 6;
  sint32 s32 = 7; sint64 s64 = 8; fixed32 fx32 = 9; fixed64 fx64 = 10; sfixed32 sf32 = 11;
  sfixed64 sf64 = 12; bool b = 13; string s = 14; bytes by = 15;
  enum E { A = 0; B = 1; C = 5; } E e = 16;
  optional string os = 17; optional int64 oi = 18; int32 far = 2000;
}"#;

    fn flat() -> MessageDescriptor {
        let pool = super::super::protobuf::compile_source("flat.proto", FLAT).unwrap();
        pool.get_message_by_name("Flat").unwrap()
    }

    /// Both paths over the same messages: `None` when a path refuses one.
    fn both(
        bytes: &[Vec<u8>],
    ) -> (
        Option<Vec<arrow::array::ArrayRef>>,
        Option<Vec<arrow::array::ArrayRef>>,
    ) {
        both_of(&flat(), bytes)
    }

    fn both_of(
        d: &MessageDescriptor,
        bytes: &[Vec<u8>],
    ) -> (
        Option<Vec<arrow::array::ArrayRef>>,
        Option<Vec<arrow::array::ArrayRef>>,
    ) {
        let mut wire = MessageColumns::new(d, bytes.len()).unwrap();
        let mut general = MessageColumns::general(d, bytes.len()).unwrap();
        let mut wire_ok = true;
        let mut general_ok = true;
        for b in bytes {
            wire_ok &= wire
                .append_wire(b)
                .expect("a type the wire reader reads")
                .is_ok();
            match DynamicMessage::decode(d.clone(), b.as_slice()) {
                Ok(m) => general_ok &= general.append(&m).is_ok(),
                Err(_) => general_ok = false,
            }
        }
        let columns = |mut c: MessageColumns| c.finish().columns;
        (
            wire_ok.then(|| columns(wire)),
            general_ok.then(|| columns(general)),
        )
    }

    /// Both paths read every message, to the same columns.
    fn read_alike(
        d: &MessageDescriptor,
        messages: &[Vec<u8>],
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let (wire, general) = both_of(d, messages);
        prop_assert!(wire.is_some() && general.is_some());
        prop_assert_eq!(wire, general);
        Ok(())
    }

    fn message(values: Vec<(u32, Value)>, unknown: &[u8]) -> Vec<u8> {
        let mut m = DynamicMessage::new(flat());
        for (number, value) in values {
            m.set_field_by_number(number, value);
        }
        let mut bytes = m.encode_to_vec();
        bytes.extend_from_slice(unknown);
        bytes
    }

    fn value_of(number: u32) -> BoxedStrategy<Value> {
        match number {
            1 => any::<f64>().prop_map(Value::F64).boxed(),
            2 => any::<f32>().prop_map(Value::F32).boxed(),
            3 | 7 | 11 | 2000 => any::<i32>().prop_map(Value::I32).boxed(),
            4 | 8 | 12 | 18 => any::<i64>().prop_map(Value::I64).boxed(),
            5 | 9 => any::<u32>().prop_map(Value::U32).boxed(),
            6 | 10 => any::<u64>().prop_map(Value::U64).boxed(),
            13 => any::<bool>().prop_map(Value::Bool).boxed(),
            14 | 17 => ".{0,12}".prop_map(Value::String).boxed(),
            15 => proptest::collection::vec(any::<u8>(), 0..12)
                .prop_map(|v| Value::Bytes(v.into()))
                .boxed(),
            // Named values and a number the schema does not name.
            _ => prop_oneof![Just(0), Just(1), Just(5), Just(7)]
                .prop_map(Value::EnumNumber)
                .boxed(),
        }
    }

    fn values() -> impl Strategy<Value = Vec<(u32, Value)>> {
        let numbers = [
            1u32, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 2000,
        ];
        numbers
            .into_iter()
            .map(|n| proptest::option::of(value_of(n)).prop_map(move |v| v.map(|v| (n, v))))
            .collect::<Vec<_>>()
            .prop_map(|all| all.into_iter().flatten().collect())
    }

    proptest! {
        /// The wire reader writes the columns prost-reflect's path writes, unknown fields
        /// (a newer writer's) skipped.
        #[test]
        fn the_wire_reader_writes_what_dynamic_message_writes(
            messages in proptest::collection::vec(values(), 1..8),
            unknown in prop_oneof![Just(vec![]), Just(vec![0xa8, 0x1f, 0x2a]), Just(vec![0xb2, 0x1f, 0x01, 0x41])],
        ) {
            let bytes: Vec<Vec<u8>> = messages.into_iter().map(|v| message(v, &unknown)).collect();
            let (wire, general) = both(&bytes);
            prop_assert!(wire.is_some() && general.is_some());
            prop_assert_eq!(wire, general);
        }

        /// Arbitrary bytes: what the wire reader accepts, prost-reflect accepts the same way,
        /// for a flat type, a nested one with a Timestamp and one with repeated scalars.
        #[test]
        fn the_wire_reader_accepts_no_bytes_prost_reflect_refuses(
            bytes in proptest::collection::vec(any::<u8>(), 0..48),
        ) {
            for d in [flat(), nested("Outer"), lists("Lists"), places("Places")] {
                let (wire, general) = both_of(&d, std::slice::from_ref(&bytes));
                if wire.is_some() {
                    prop_assert_eq!(wire, general, "{}", d.full_name());
                }
            }
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let (wire, general) = both(&[vec![0x72, 2, 0xff, 0xfe]]);
        assert!(wire.is_none() && general.is_none());
        // Also when a later occurrence of the field (the one kept) is text: prost checks each.
        let (wire, general) = both(&[vec![0x72, 2, 0xff, 0xfe, 0x72, 1, b'a']]);
        assert!(wire.is_none() && general.is_none());
        let (wire, general) = both(&[vec![0x72, 2, 0xc3, 0xa9, 0x72, 1, b'a']]);
        assert!(wire.is_some() && general.is_some());
    }

    const NESTED: &str = r#"syntax = "proto3";
import "google/protobuf/timestamp.proto";
message Leaf { bool b = 1; double d = 2; }
message Inner { int32 a = 1; string s = 2; optional int64 o = 3; Leaf leaf = 4; }
message Outer {
  int64 id = 1; Inner inner = 2; google.protobuf.Timestamp at = 3; Leaf leaf = 4; string name = 5;
}"#;

    fn nested(name: &str) -> MessageDescriptor {
        let pool = super::super::protobuf::compile_source("nested.proto", NESTED).unwrap();
        pool.get_message_by_name(name).unwrap()
    }

    fn leaf() -> impl Strategy<Value = Option<DynamicMessage>> {
        proptest::option::of(
            (any::<Option<bool>>(), any::<Option<f64>>()).prop_map(|(b, d)| {
                let mut m = DynamicMessage::new(nested("Leaf"));
                if let Some(b) = b {
                    m.set_field_by_number(1, Value::Bool(b));
                }
                if let Some(d) = d {
                    m.set_field_by_number(2, Value::F64(d));
                }
                m
            }),
        )
    }

    fn inner() -> impl Strategy<Value = Option<DynamicMessage>> {
        let fields = (
            any::<Option<i32>>(),
            proptest::option::of(".{0,8}"),
            any::<Option<i64>>(),
            leaf(),
        );
        proptest::option::of(fields.prop_map(|(a, s, o, leaf)| {
            let mut m = DynamicMessage::new(nested("Inner"));
            if let Some(a) = a {
                m.set_field_by_number(1, Value::I32(a));
            }
            if let Some(s) = s {
                m.set_field_by_number(2, Value::String(s));
            }
            if let Some(o) = o {
                m.set_field_by_number(3, Value::I64(o));
            }
            if let Some(l) = leaf {
                m.set_field_by_number(4, Value::Message(l));
            }
            m
        }))
    }

    fn timestamp_type() -> MessageDescriptor {
        let at = nested("Outer").get_field(3).unwrap();
        at.kind().as_message().unwrap().clone()
    }

    /// An Outer message's bytes; with `again`, a second message appended, which Protobuf
    /// parsers merge into the first (scalars replaced, nested messages merged).
    fn outer() -> impl Strategy<Value = Vec<u8>> {
        maybe_twice(one_outer)
    }

    /// A message's bytes, sometimes followed by a second message's: a parser reads the two
    /// as one, scalars replaced, nested messages merged, repeated fields concatenated.
    fn maybe_twice<S: Strategy<Value = Vec<u8>>>(
        one: impl Fn() -> S,
    ) -> impl Strategy<Value = Vec<u8>> {
        (one(), proptest::option::of(one())).prop_map(|(mut first, again)| {
            first.extend(again.unwrap_or_default());
            first
        })
    }

    fn one_outer() -> impl Strategy<Value = Vec<u8>> {
        let timestamp =
            proptest::option::of((-62_135_596_800i64..253_402_300_800, 0..1_000_000_000i32));
        let fields = (
            any::<Option<i64>>(),
            inner(),
            timestamp,
            leaf(),
            proptest::option::of(".{0,8}"),
        );
        fields.prop_map(|(id, inner, at, leaf, name)| {
            let mut m = DynamicMessage::new(nested("Outer"));
            if let Some(id) = id {
                m.set_field_by_number(1, Value::I64(id));
            }
            if let Some(i) = inner {
                m.set_field_by_number(2, Value::Message(i));
            }
            if let Some((seconds, nanos)) = at {
                let mut t = DynamicMessage::new(timestamp_type());
                t.set_field_by_number(1, Value::I64(seconds));
                t.set_field_by_number(2, Value::I32(nanos));
                m.set_field_by_number(3, Value::Message(t));
            }
            if let Some(l) = leaf {
                m.set_field_by_number(4, Value::Message(l));
            }
            if let Some(n) = name {
                m.set_field_by_number(5, Value::String(n));
            }
            m.encode_to_vec()
        })
    }

    #[test]
    fn a_timestamp_past_64_bits_of_microseconds_is_refused_on_both_paths() {
        // Outer.at (field 3) holding seconds = i64::MAX.
        let mut at = vec![0x08];
        prost::encoding::encode_varint(i64::MAX as u64, &mut at);
        let mut bytes = vec![0x1a, at.len() as u8];
        bytes.extend(at);
        let (wire, general) = both_of(&nested("Outer"), &[bytes]);
        assert!(wire.is_none() && general.is_none());
    }

    #[test]
    fn only_recursive_types_keep_the_general_path() {
        let pool = super::super::protobuf::compile_source(
            "maps.proto",
            "syntax = \"proto3\"; message V { int32 v = 1; } \
             message M { map<string, V> m = 1; } message Out { repeated M ms = 1; } \
             message Scalars { map<string, int32> m = 1; } \
             message In { repeated int32 a = 1; repeated In more = 2; } \
             message Tree { map<string, Tree> children = 1; }",
        )
        .unwrap();
        for name in ["M", "Out", "Scalars"] {
            let message = pool.get_message_by_name(name).unwrap();
            assert!(super::WireMessage::new(&message).is_some(), "{name}");
        }
        for name in ["In", "Tree"] {
            let message = pool.get_message_by_name(name).unwrap();
            assert!(
                super::WireMessage::new(&message).is_none(),
                "{name} is recursive"
            );
        }
    }

    const MAPS: &str = r#"syntax = "proto3";
message Maps {
  map<string, int32> counts = 1; map<int64, string> names = 2; enum E { A = 0; B = 1; }
  map<bool, E> flags = 3; map<sint32, bytes> blobs = 4; map<fixed64, double> values = 5;
  string id = 6; Inner inner = 7;
}
message Inner { map<uint32, sfixed64> m = 1; }"#;

    fn maps() -> MessageDescriptor {
        let pool = super::super::protobuf::compile_source("maps.proto", MAPS).unwrap();
        pool.get_message_by_name("Maps").unwrap()
    }

    /// One map entry's bytes as field `number` of its message, key and value of the types of
    /// Maps' field `types` (6: Inner's map): each maybe missing, in either order.
    fn entry(number: u32, types: u32) -> impl Strategy<Value = Vec<u8>> {
        use prost::encoding::{WireType, encode_key, encode_varint};
        let varint_field = |n: u32, v: u64| {
            let mut b = Vec::new();
            encode_key(n, WireType::Varint, &mut b);
            encode_varint(v, &mut b);
            b
        };
        let bytes_field = |n: u32, v: &[u8]| {
            let mut b = Vec::new();
            encode_key(n, WireType::LengthDelimited, &mut b);
            encode_varint(v.len() as u64, &mut b);
            b.extend_from_slice(v);
            b
        };
        let fixed64_field = |n: u32, v: u64| {
            let mut b = Vec::new();
            encode_key(n, WireType::SixtyFourBit, &mut b);
            b.extend_from_slice(&v.to_le_bytes());
            b
        };
        // Few distinct keys, so that keys repeat.
        let key = move |n: u32| -> BoxedStrategy<Vec<u8>> {
            match n {
                1 => prop_oneof![Just("a"), Just("b"), Just("é")]
                    .prop_map(move |k| bytes_field(1, k.as_bytes()))
                    .boxed(),
                2 => (-2i64..3)
                    .prop_map(move |k| varint_field(1, k as u64))
                    .boxed(),
                3 => any::<bool>()
                    .prop_map(move |k| varint_field(1, k as u64))
                    .boxed(),
                4 => (-2i64..3)
                    .prop_map(move |k| varint_field(1, ((k << 1) ^ (k >> 63)) as u64))
                    .boxed(),
                5 => (0u64..3).prop_map(move |k| fixed64_field(1, k)).boxed(),
                _ => (0u64..3).prop_map(move |k| varint_field(1, k)).boxed(),
            }
        };
        let value = move |n: u32| -> BoxedStrategy<Vec<u8>> {
            match n {
                1 => any::<i32>()
                    .prop_map(move |v| varint_field(2, v as i64 as u64))
                    .boxed(),
                2 => ".{0,4}"
                    .prop_map(move |v: String| bytes_field(2, v.as_bytes()))
                    .boxed(),
                3 => prop_oneof![Just(0u64), Just(1), Just(7)]
                    .prop_map(move |v| varint_field(2, v))
                    .boxed(),
                4 => proptest::collection::vec(any::<u8>(), 0..4)
                    .prop_map(move |v| bytes_field(2, &v))
                    .boxed(),
                5 => any::<f64>()
                    .prop_map(move |v| fixed64_field(2, v.to_bits()))
                    .boxed(),
                _ => any::<i64>()
                    .prop_map(move |v| fixed64_field(2, v as u64))
                    .boxed(),
            }
        };
        (
            proptest::option::of(key(types)),
            proptest::option::of(value(types)),
            any::<bool>(),
        )
            .prop_map(move |(k, v, value_first)| {
                let (k, v) = (k.unwrap_or_default(), v.unwrap_or_default());
                let body = if value_first {
                    [v, k].concat()
                } else {
                    [k, v].concat()
                };
                bytes_field(number, &body)
            })
    }

    /// A Maps message's bytes: entries of every map in any order, keys repeated, and
    /// sometimes an Inner message with a map of its own.
    fn maps_message() -> impl Strategy<Value = Vec<u8>> {
        let entries = prop_oneof![
            entry(1, 1),
            entry(2, 2),
            entry(3, 3),
            entry(4, 4),
            entry(5, 5)
        ];
        let inner = proptest::option::of(proptest::collection::vec(entry(1, 6), 0..4));
        (proptest::collection::vec(entries, 0..8), inner).prop_map(|(entries, inner)| {
            let mut bytes = entries.concat();
            bytes.extend([0x32, 1, b'x']);
            if let Some(inner) = inner {
                let inner = inner.concat();
                bytes.push(0x3a);
                prost::encoding::encode_varint(inner.len() as u64, &mut bytes);
                bytes.extend(inner);
            }
            bytes
        })
    }

    proptest! {
        /// Maps of scalars, keys repeated (the last entry wins) and entries missing their key
        /// or value, give the map columns prost-reflect's path gives.
        #[test]
        fn maps_from_the_wire_match_dynamic_message(
            messages in proptest::collection::vec(maps_message(), 1..6),
        ) {
            read_alike(&maps(), &messages)?;
        }

        /// Maps of messages and of Timestamps, values missing, written in parts (merged) or
        /// holding nested messages, lists and maps, give the columns prost-reflect's gives.
        #[test]
        fn maps_of_messages_from_the_wire_match_dynamic_message(
            messages in proptest::collection::vec(places_message(), 1..6),
        ) {
            read_alike(&places("Places"), &messages)?;
        }
    }

    const PLACES: &str = r#"syntax = "proto3";
import "google/protobuf/timestamp.proto";
message Leaf { bool b = 1; }
message Point {
  int32 x = 1; optional string label = 2; Leaf leaf = 3; repeated int64 tags = 4;
  map<string, int32> counts = 5;
}
message Places {
  map<string, Point> points = 1; map<int32, google.protobuf.Timestamp> times = 2; string id = 3;
}"#;

    fn places(name: &str) -> MessageDescriptor {
        let pool = super::super::protobuf::compile_source("places.proto", PLACES).unwrap();
        pool.get_message_by_name(name).unwrap()
    }

    fn point() -> impl Strategy<Value = Vec<u8>> {
        let fields = (
            any::<Option<i32>>(),
            proptest::option::of(".{0,4}"),
            any::<Option<Option<bool>>>(),
            proptest::collection::vec(any::<i64>(), 0..3),
            proptest::collection::btree_map(prop_oneof![Just("a"), Just("b")], any::<i32>(), 0..2),
        );
        fields.prop_map(|(x, label, leaf, tags, counts)| {
            let mut m = DynamicMessage::new(places("Point"));
            if let Some(x) = x {
                m.set_field_by_number(1, Value::I32(x));
            }
            if let Some(label) = label {
                m.set_field_by_number(2, Value::String(label));
            }
            if let Some(b) = leaf {
                let mut l = DynamicMessage::new(places("Leaf"));
                if let Some(b) = b {
                    l.set_field_by_number(1, Value::Bool(b));
                }
                m.set_field_by_number(3, Value::Message(l));
            }
            m.set_field_by_number(4, Value::List(tags.into_iter().map(Value::I64).collect()));
            let counts = counts
                .into_iter()
                .map(|(k, v)| (prost_reflect::MapKey::String(k.into()), Value::I32(v)))
                .collect();
            m.set_field_by_number(5, Value::Map(counts));
            m.encode_to_vec()
        })
    }

    /// A Places message's bytes: entries of both maps in any order, keys repeated, values
    /// missing or written in two parts, which a parser merges.
    fn places_message() -> impl Strategy<Value = Vec<u8>> {
        use prost::encoding::{WireType, encode_key, encode_varint};
        let field = |n: u32, v: &[u8]| {
            let mut b = Vec::new();
            encode_key(n, WireType::LengthDelimited, &mut b);
            encode_varint(v.len() as u64, &mut b);
            b.extend_from_slice(v);
            b
        };
        let point_entry = (
            prop_oneof![Just("p"), Just("q"), Just("")],
            proptest::collection::vec(point(), 0..3),
            any::<bool>(),
        )
            .prop_map(move |(key, parts, value_first)| {
                let k = field(1, key.as_bytes());
                let v: Vec<u8> = parts.iter().flat_map(|p| field(2, p)).collect();
                let body = if value_first {
                    [v, k].concat()
                } else {
                    [k, v].concat()
                };
                field(1, &body)
            });
        let time_entry = (
            0i32..3,
            proptest::option::of((-1_000_000_000i64..4_000_000_000, 0..1_000_000_000i32)),
        )
            .prop_map(move |(key, at)| {
                let mut body = vec![0x08];
                encode_varint(key as u64, &mut body);
                if let Some((seconds, nanos)) = at {
                    let mut t = vec![0x08];
                    encode_varint(seconds as u64, &mut t);
                    t.push(0x10);
                    encode_varint(nanos as u64, &mut t);
                    body.extend(field(2, &t));
                }
                field(2, &body)
            });
        let entries = proptest::collection::vec(prop_oneof![point_entry, time_entry], 0..6);
        (entries, proptest::option::of(".{0,4}")).prop_map(move |(entries, id)| {
            let mut bytes = entries.concat();
            if let Some(id) = id {
                bytes.extend(field(3, id.as_bytes()));
            }
            bytes
        })
    }

    #[test]
    fn a_type_that_contains_itself_twice_is_refused_at_once_on_both_paths() {
        // Expanded level by level, two self references would double at every level.
        let pool = super::super::protobuf::compile_source(
            "tree.proto",
            "syntax = \"proto3\"; message Tree { Tree left = 1; repeated Tree right = 2; }",
        )
        .unwrap();
        let tree = pool.get_message_by_name("Tree").unwrap();
        assert!(super::WireMessage::new(&tree).is_none());
        let refused = super::super::proto_arrow::fields(&tree).unwrap_err();
        assert!(refused.contains("Tree contains itself"), "{refused}");
    }

    const LISTS: &str = r#"syntax = "proto3";
import "google/protobuf/timestamp.proto";
message Lists {
  repeated int32 i = 1; repeated string s = 2; repeated double d = 3; repeated sint64 z = 4;
  repeated bool b = 5; repeated bytes by = 6; enum E { A = 0; B = 1; } repeated E e = 7;
  repeated fixed32 f = 8; repeated int32 unpacked = 9 [packed = false]; Inner inner = 10;
  repeated Inner items = 11; repeated google.protobuf.Timestamp times = 12;
}
message Inner { repeated uint64 u = 1; }"#;

    fn lists(name: &str) -> MessageDescriptor {
        let pool = super::super::protobuf::compile_source("lists.proto", LISTS).unwrap();
        pool.get_message_by_name(name).unwrap()
    }

    fn list_of(number: u32) -> BoxedStrategy<Value> {
        let items = |s: BoxedStrategy<Value>| {
            proptest::collection::vec(s, 0..5)
                .prop_map(Value::List)
                .boxed()
        };
        match number {
            1 | 9 => items(any::<i32>().prop_map(Value::I32).boxed()),
            2 => items(".{0,6}".prop_map(Value::String).boxed()),
            3 => items(any::<f64>().prop_map(Value::F64).boxed()),
            4 => items(any::<i64>().prop_map(Value::I64).boxed()),
            5 => items(any::<bool>().prop_map(Value::Bool).boxed()),
            6 => items(
                proptest::collection::vec(any::<u8>(), 0..6)
                    .prop_map(|v| Value::Bytes(v.into()))
                    .boxed(),
            ),
            7 => items(
                prop_oneof![Just(0), Just(1), Just(9)]
                    .prop_map(Value::EnumNumber)
                    .boxed(),
            ),
            _ => items(any::<u32>().prop_map(Value::U32).boxed()),
        }
    }

    /// A Lists message's bytes, twice over with `again` (repeated fields then concatenate).
    fn lists_message() -> impl Strategy<Value = Vec<u8>> {
        let one = || {
            let fields: Vec<_> = (1..=9u32)
                .map(|n| proptest::option::of(list_of(n)).prop_map(move |v| v.map(|v| (n, v))))
                .collect();
            let inner = proptest::option::of(proptest::collection::vec(any::<u64>(), 0..4));
            let items =
                proptest::collection::vec(proptest::collection::vec(any::<u64>(), 0..3), 0..3);
            let times = proptest::collection::vec(
                (-1_000_000_000i64..4_000_000_000, 0..1_000_000_000i32),
                0..3,
            );
            (fields, inner, items, times).prop_map(|(fields, inner, items, times)| {
                let mut m = DynamicMessage::new(lists("Lists"));
                for (n, v) in fields.into_iter().flatten() {
                    m.set_field_by_number(n, v);
                }
                if let Some(u) = inner {
                    let mut i = DynamicMessage::new(lists("Inner"));
                    i.set_field_by_number(1, Value::List(u.into_iter().map(Value::U64).collect()));
                    m.set_field_by_number(10, Value::Message(i));
                }
                let inner = |u: Vec<u64>| {
                    let mut i = DynamicMessage::new(lists("Inner"));
                    i.set_field_by_number(1, Value::List(u.into_iter().map(Value::U64).collect()));
                    Value::Message(i)
                };
                m.set_field_by_number(11, Value::List(items.into_iter().map(inner).collect()));
                let at = lists("Lists").get_field(12).unwrap();
                let stamp = at.kind().as_message().unwrap().clone();
                let time = |(seconds, nanos): (i64, i32)| {
                    let mut t = DynamicMessage::new(stamp.clone());
                    t.set_field_by_number(1, Value::I64(seconds));
                    t.set_field_by_number(2, Value::I32(nanos));
                    Value::Message(t)
                };
                m.set_field_by_number(12, Value::List(times.into_iter().map(time).collect()));
                m.encode_to_vec()
            })
        };
        maybe_twice(one)
    }

    proptest! {
        /// Nested messages, Timestamps and merged occurrences give the columns prost-reflect's
        /// path gives.
        #[test]
        fn nested_messages_from_the_wire_match_dynamic_message(
            messages in proptest::collection::vec(outer(), 1..6),
        ) {
            read_alike(&nested("Outer"), &messages)?;
        }

        /// Repeated fields (scalars packed and not, messages, Timestamps), concatenated across
        /// occurrences and merged messages, give the list columns prost-reflect's path gives.
        #[test]
        fn repeated_fields_from_the_wire_match_dynamic_message(
            messages in proptest::collection::vec(lists_message(), 1..6),
        ) {
            read_alike(&lists("Lists"), &messages)?;
        }
    }

    #[test]
    fn a_packable_field_written_unpacked_and_packed_reads_both_ways() {
        // Lists.i (1): one item unpacked (varint 7), then two packed (3, 300).
        let bytes = vec![0x08, 7, 0x0a, 3, 3, 0xac, 0x02];
        let (wire, general) = both_of(&lists("Lists"), &[bytes]);
        assert!(wire.is_some());
        assert_eq!(wire, general);
    }
}
