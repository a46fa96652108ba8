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

pub(super) const TIMESTAMP: &str = "google.protobuf.Timestamp";

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
                    timestamp: m.full_name() == TIMESTAMP,
                    inner: Box::new(WireMessage::inside(&m, outer)?),
                },
                _ if field.is_list() => Shape::List,
                Kind::Message(m) if m.full_name() == TIMESTAMP => {
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
    micros(seconds, nanos)
}

pub(super) fn downcast<T: 'static>(builder: &mut dyn ArrayBuilder) -> Result<&mut T, String> {
    builder
        .as_any_mut()
        .downcast_mut::<T>()
        .ok_or_else(|| format!("internal: builder is not a {}", std::any::type_name::<T>()))
}

/// A Timestamp's microseconds; seconds past what 64 bits of microseconds hold (about
/// 292,000 years) are refused rather than wrapped.
pub(super) fn micros(seconds: i64, nanos: i32) -> Result<i64, String> {
    seconds
        .checked_mul(1_000_000)
        .and_then(|us| us.checked_add(i64::from(nanos) / 1_000))
        .ok_or_else(|| format!("timestamp of {seconds} seconds is out of range"))
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
mod tests;
