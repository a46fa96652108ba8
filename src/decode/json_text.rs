//! JSON objects read straight into their column builders, for the types schema inference
//! gives (integers, floats, booleans, strings, nulls, lists and objects) and 32-bit numbers.
//! arrow-json first copies every value onto a tape, then finds each key's column through a
//! hash map (past 16 fields): two thirds of a JSON topic's CPU. Other types (a declared
//! schema's timestamps, decimals, maps) keep arrow-json. Three differences, all on purpose:
//! text that is not JSON (arrow-json reads past a missing comma and takes control characters
//! in strings) and a number with a fraction in an integer column (arrow-json truncates it) are
//! refused, so the record is set aside or its batch's schema inferred again; and escaped
//! characters from U+20000 on are read as written (arrow-json 60 changes them).

use arrow::array::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    ListArray, NullArray, StringArray, StringBuilder, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::kernels::cast_utils::Parser;
use arrow::datatypes::{
    DataType, FieldRef, Fields, Float32Type, Float64Type, Int32Type, Int64Type, Schema,
};
use std::borrow::Cow;
use std::sync::Arc;

/// Why a record was not read.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// It is not JSON or does not fit the schema: why.
    Record(String),
    /// An object names a key twice: arrow-json keeps the last value; let it decide.
    Undecided,
}

/// A batch's columns being filled, one record at a time. After a refusal the builders hold
/// part of a row: drop them.
pub struct JsonColumns {
    root: Object,
}

impl JsonColumns {
    /// Builders for `rows` records of `bytes` in all, or None when a type of `schema` is not
    /// one this reader covers.
    pub fn new(schema: &Schema, rows: usize, bytes: usize) -> Option<JsonColumns> {
        // The strings' bytes are some of the records' bytes: shared out (up to 16 a row), they
        // are reserved once instead of growing by copies, and cut to size when finished.
        let texts = text_columns(schema.fields()).max(1);
        let size = Size {
            rows,
            text: (bytes / texts).min(rows.saturating_mul(16)),
        };
        Some(JsonColumns {
            root: Object::of(schema.fields(), size)?,
        })
    }

    /// Appends one record; a null payload is a row of nulls.
    pub fn append(&mut self, record: Option<&[u8]>) -> Result<(), Refusal> {
        let text = std::str::from_utf8(record.unwrap_or(b"{}"))
            .map_err(|e| Refusal::Record(format!("is not valid JSON: not UTF-8 text ({e})")))?;
        let mut reader = Reader { text, at: 0 };
        reader.whitespace();
        if reader.next() != Some(b'{') {
            return Err(Refusal::Record(
                "is not a JSON object; use \"format\": \"raw\" for such topics".to_string(),
            ));
        }
        reader.object(&mut self.root)?;
        reader.whitespace();
        if reader.at < text.len() {
            return Err(reader.not_json("holds more than one JSON value"));
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Vec<ArrayRef>, String> {
        self.root.columns.into_iter().map(Column::finish).collect()
    }
}

#[derive(Clone, Copy)]
struct Size {
    rows: usize,
    /// Bytes reserved for each string column.
    text: usize,
}

fn text_columns(fields: &Fields) -> usize {
    fields.iter().map(|f| texts_in(f.data_type())).sum()
}

fn texts_in(data_type: &DataType) -> usize {
    match data_type {
        DataType::Utf8 => 1,
        DataType::List(item) => texts_in(item.data_type()),
        DataType::Struct(fields) => text_columns(fields),
        _ => 0,
    }
}

enum Column {
    Null(usize),
    Boolean(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    List(Box<List>),
    Struct(Object),
}

struct List {
    item: FieldRef,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    items: Column,
}

struct Object {
    fields: Fields,
    /// Each field's name as it appears in the text when it needs no escape: the common key
    /// is matched by one comparison.
    keys: Vec<Option<Key>>,
    nullable: Vec<bool>,
    columns: Vec<Column>,
    nulls: NullBufferBuilder,
    /// The fields the object being read has named so far.
    seen: Vec<bool>,
    rows: usize,
}

/// A field's name as the text has it, closing quote included. Names of up to 16 bytes are
/// also held as two words and a mask each, so a key is matched by two loads and compares
/// rather than a call to `memcmp` (5% of a JSON topic's instructions).
struct Key {
    text: Box<[u8]>,
    words: Option<[(u64, u64); 2]>,
}

impl Key {
    fn new(name: &[u8]) -> Key {
        let text: Box<[u8]> = [name, b"\""].concat().into();
        let words = (text.len() <= 16).then(|| {
            let mut padded = [0u8; 16];
            padded[..text.len()].copy_from_slice(&text);
            let word = |i: usize| {
                let bytes = padded[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]);
                let used = text.len().saturating_sub(i * 8).min(8);
                let mask = u64::MAX.checked_shr(64 - 8 * used as u32).unwrap_or(0);
                (u64::from_le_bytes(bytes), mask)
            };
            [word(0), word(1)]
        });
        Key { text, words }
    }

    /// Whether `rest` starts with this key.
    fn starts(&self, rest: &[u8]) -> bool {
        match (self.words, rest.first_chunk::<16>()) {
            (Some([(head, head_mask), (tail, tail_mask)]), Some(chunk)) => {
                let (a, b) = chunk.split_at(8);
                let a = u64::from_le_bytes(a.try_into().unwrap_or([0; 8]));
                let b = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                ((a ^ head) & head_mask) | ((b ^ tail) & tail_mask) == 0
            }
            _ => rest.starts_with(&self.text),
        }
    }
}

impl Object {
    fn of(fields: &Fields, size: Size) -> Option<Object> {
        let columns = fields
            .iter()
            .map(|f| Column::of(f.data_type(), size))
            .collect::<Option<Vec<_>>>()?;
        Some(Object {
            fields: fields.clone(),
            keys: fields
                .iter()
                .map(|f| {
                    let name = f.name().as_bytes();
                    let plain = special(name, 0).is_none();
                    plain.then(|| Key::new(name))
                })
                .collect(),
            nullable: fields.iter().map(|f| f.is_nullable()).collect(),
            columns,
            nulls: NullBufferBuilder::new(size.rows),
            seen: vec![false; fields.len()],
            rows: 0,
        })
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name() == name)
    }

    fn append_null(&mut self) {
        self.nulls.append_null();
        self.rows += 1;
        for column in &mut self.columns {
            column.append_null();
        }
    }
}

impl Column {
    fn of(data_type: &DataType, size: Size) -> Option<Column> {
        let rows = size.rows;
        Some(match data_type {
            DataType::Null => Column::Null(0),
            DataType::Boolean => Column::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::Int32 => Column::Int32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => Column::Int64(Int64Builder::with_capacity(rows)),
            DataType::Float32 => Column::Float32(Float32Builder::with_capacity(rows)),
            DataType::Float64 => Column::Float64(Float64Builder::with_capacity(rows)),
            DataType::Utf8 => Column::Utf8(StringBuilder::with_capacity(rows, size.text)),
            DataType::List(item) => Column::List(Box::new(List {
                item: item.clone(),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(rows),
                items: Column::of(item.data_type(), size)?,
            })),
            DataType::Struct(fields) => Column::Struct(Object::of(fields, size)?),
            _ => return None,
        })
    }

    fn append_null(&mut self) {
        match self {
            Column::Null(rows) => *rows += 1,
            Column::Boolean(b) => b.append_null(),
            Column::Int32(b) => b.append_null(),
            Column::Int64(b) => b.append_null(),
            Column::Float32(b) => b.append_null(),
            Column::Float64(b) => b.append_null(),
            Column::Utf8(b) => b.append_null(),
            Column::List(list) => {
                let end = list.offsets.last().copied().unwrap_or(0);
                list.offsets.push(end);
                list.nulls.append_null();
            }
            Column::Struct(object) => object.append_null(),
        }
    }

    fn finish(self) -> Result<ArrayRef, String> {
        Ok(match self {
            Column::Null(rows) => Arc::new(NullArray::new(rows)),
            Column::Boolean(mut b) => Arc::new(b.finish()),
            Column::Int32(mut b) => Arc::new(b.finish()),
            Column::Int64(mut b) => Arc::new(b.finish()),
            Column::Float32(mut b) => Arc::new(b.finish()),
            Column::Float64(mut b) => Arc::new(b.finish()),
            Column::Utf8(mut b) => Arc::new(compact(b.finish()).map_err(|e| e.to_string())?),
            Column::List(list) => {
                let List {
                    item,
                    offsets,
                    mut nulls,
                    items,
                } = *list;
                let offsets = OffsetBuffer::new(offsets.into());
                let array = ListArray::try_new(item, offsets, items.finish()?, nulls.finish())
                    .map_err(|e| e.to_string())?;
                Arc::new(array)
            }
            Column::Struct(mut object) => {
                let nulls = object.nulls.finish();
                if object.fields.is_empty() {
                    return Ok(Arc::new(StructArray::new_empty_fields(object.rows, nulls)));
                }
                let columns = object
                    .columns
                    .into_iter()
                    .map(Column::finish)
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(
                    StructArray::try_new(object.fields, columns, nulls)
                        .map_err(|e| e.to_string())?,
                )
            }
        })
    }
}

/// The strings of `array` in a buffer of their size: the builder's reserve is generous (no
/// copies while it fills), and the arrays wait in queues before they are written.
fn compact(array: StringArray) -> Result<StringArray, arrow::error::ArrowError> {
    let used = array.values().len();
    if array.values().capacity() <= used + used / 8 {
        return Ok(array);
    }
    let (offsets, values, nulls) = array.into_parts();
    let values = arrow::buffer::Buffer::from_slice_ref(values.as_slice());
    StringArray::try_new(offsets, values, nulls)
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn rest(&self) -> &'a [u8] {
        self.text.as_bytes().get(self.at..).unwrap_or_default()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn not_json(&self, what: &str) -> Refusal {
        Refusal::Record(format!("is not valid JSON: {what} at byte {}", self.at))
    }

    /// Reads `{...}` (its `{` already read) as one row of `object`.
    fn object(&mut self, object: &mut Object) -> Result<(), Refusal> {
        object.seen.fill(false);
        let (mut hint, mut named) = (0, 0);
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                if self.next() != Some(b'"') {
                    return Err(self.not_json("expected a key"));
                }
                let index = match object.keys.get(hint) {
                    Some(Some(key)) if key.starts(self.rest()) => {
                        self.at += key.text.len();
                        hint
                    }
                    _ => {
                        let key = self.string()?;
                        object.index_of(&key).ok_or_else(|| {
                            Refusal::Record(format!(
                                "has field \"{key}\", which the schema does not have"
                            ))
                        })?
                    }
                };
                if std::mem::replace(&mut object.seen[index], true) {
                    return Err(Refusal::Undecided);
                }
                (hint, named) = (index + 1, named + 1);
                self.whitespace();
                if self.next() != Some(b':') {
                    return Err(self.not_json("expected ':'"));
                }
                self.whitespace();
                let name = object.fields[index].name();
                self.value(&mut object.columns[index], name, object.nullable[index])?;
                self.whitespace();
                match self.next() {
                    Some(b',') => self.whitespace(),
                    Some(b'}') => break,
                    _ => return Err(self.not_json("expected ',' or '}'")),
                }
            }
        }
        // Fields the object did not name are null (the loop ends at once when it named all).
        let missing = object.seen.iter().enumerate().filter(|(_, seen)| !**seen);
        for (index, _) in missing.take(object.seen.len() - named) {
            let field = &object.fields[index];
            if !field.is_nullable() {
                return Err(Refusal::Record(format!(
                    "has no field \"{}\", which the schema requires",
                    field.name()
                )));
            }
            object.columns[index].append_null();
        }
        object.nulls.append_non_null();
        object.rows += 1;
        Ok(())
    }

    /// Reads one value into `column`, the column of field `name`.
    fn value(&mut self, column: &mut Column, name: &str, nullable: bool) -> Result<(), Refusal> {
        let first = self
            .peek()
            .ok_or_else(|| self.not_json("expected a value"))?;
        if first == b'n' {
            self.literal("null")?;
            if !nullable {
                return Err(Refusal::Record(format!(
                    "field \"{name}\" is null, which the schema does not allow"
                )));
            }
            column.append_null();
            return Ok(());
        }
        match (first, column) {
            (b'"', Column::Utf8(b)) => {
                self.at += 1;
                b.append_value(self.string()?);
            }
            (b'"', Column::Int32(b)) => {
                self.at += 1;
                b.append_value(parsed::<Int32Type>(&self.string()?, name, "integers")?);
            }
            (b'"', Column::Int64(b)) => {
                self.at += 1;
                b.append_value(parsed::<Int64Type>(&self.string()?, name, "integers")?);
            }
            (b'"', Column::Float32(b)) => {
                self.at += 1;
                b.append_value(parsed::<Float32Type>(&self.string()?, name, "numbers")?);
            }
            (b'"', Column::Float64(b)) => {
                self.at += 1;
                b.append_value(parsed::<Float64Type>(&self.string()?, name, "numbers")?);
            }
            (b'-' | b'0'..=b'9', Column::Int32(b)) => {
                let number = self.number()?;
                let value = number.integer().and_then(|v| i32::try_from(v).ok());
                b.append_value(value.ok_or_else(|| number.refused(name))?);
            }
            (b'-' | b'0'..=b'9', Column::Int64(b)) => {
                let number = self.number()?;
                b.append_value(number.integer().ok_or_else(|| number.refused(name))?);
            }
            // Past the float's range arrow-json's parser may read a number differently: let it.
            (b'-' | b'0'..=b'9', Column::Float32(b)) => {
                let value = self.number()?.text.parse::<f32>().ok();
                b.append_value(value.filter(|v| v.is_finite()).ok_or(Refusal::Undecided)?);
            }
            (b'-' | b'0'..=b'9', Column::Float64(b)) => {
                b.append_value(self.number()?.float().ok_or(Refusal::Undecided)?);
            }
            (b't', Column::Boolean(b)) => {
                self.literal("true")?;
                b.append_value(true);
            }
            (b'f', Column::Boolean(b)) => {
                self.literal("false")?;
                b.append_value(false);
            }
            (b'[', Column::List(list)) => {
                self.at += 1;
                self.list(list)?;
            }
            (b'{', Column::Struct(object)) => {
                self.at += 1;
                self.object(object)?;
            }
            (b'"', column) => return Err(mismatch(name, column_name(column), "a string")),
            (b'-' | b'0'..=b'9', column) => {
                return Err(mismatch(name, column_name(column), "a number"));
            }
            (b't' | b'f', column) => return Err(mismatch(name, column_name(column), "a boolean")),
            (b'[', column) => return Err(mismatch(name, column_name(column), "a list")),
            (b'{', column) => return Err(mismatch(name, column_name(column), "an object")),
            _ => return Err(self.not_json("expected a value")),
        }
        Ok(())
    }

    /// Reads `[...]` (its `[` already read) as one row of `list`.
    fn list(&mut self, list: &mut List) -> Result<(), Refusal> {
        let mut count = 0usize;
        self.whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
        } else {
            loop {
                let item = &list.item;
                self.value(&mut list.items, item.name(), item.is_nullable())?;
                count += 1;
                self.whitespace();
                match self.next() {
                    Some(b',') => self.whitespace(),
                    Some(b']') => break,
                    _ => return Err(self.not_json("expected ',' or ']'")),
                }
            }
        }
        let start = list.offsets.last().copied().unwrap_or(0);
        let end = i32::try_from(count)
            .ok()
            .and_then(|count| start.checked_add(count))
            .ok_or_else(|| Refusal::Record("holds more list items than a batch takes".into()))?;
        list.offsets.push(end);
        list.nulls.append_non_null();
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<(), Refusal> {
        if self.rest().starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.not_json("expected a value"))
        }
    }

    /// Reads a string's text (its `"` already read), unescaped.
    fn string(&mut self) -> Result<Cow<'a, str>, Refusal> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let stop = special(bytes, start);
        match stop.map(|i| (i, bytes[i])) {
            Some((end, b'"')) => {
                self.at = end + 1;
                Ok(Cow::Borrowed(&self.text[start..end]))
            }
            Some((end, b'\\')) => {
                self.at = end;
                let mut owned = self.text[start..end].to_string();
                self.escaped(&mut owned)?;
                Ok(Cow::Owned(owned))
            }
            Some((end, _)) => {
                self.at = end;
                Err(self.not_json("a control character in a string"))
            }
            None => {
                self.at = bytes.len();
                Err(self.not_json("an unterminated string"))
            }
        }
    }

    /// The rest of a string from its first backslash on.
    fn escaped(&mut self, out: &mut String) -> Result<(), Refusal> {
        loop {
            let rest = &self.text[self.at..];
            let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') else {
                self.at = self.text.len();
                return Err(self.not_json("an unterminated string"));
            };
            out.push_str(&rest[..i]);
            self.at += i;
            match self.next() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => {}
                _ => return Err(self.not_json("a control character in a string")),
            }
            let c = match self.next() {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => self.unicode()?,
                _ => return Err(self.not_json("an unknown escape")),
            };
            out.push(c);
        }
    }

    /// `\uXXXX` (its `\u` already read), and a second one when the first is a high surrogate.
    fn unicode(&mut self) -> Result<char, Refusal> {
        let high = self.hex4()?;
        if let Some(c) = char::from_u32(high) {
            return Ok(c);
        }
        if (0xD800..0xDC00).contains(&high) && self.text[self.at..].starts_with("\\u") {
            self.at += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low)
                && let Some(c) = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            {
                return Ok(c);
            }
        }
        Err(self.not_json("a lone UTF-16 surrogate"))
    }

    fn hex4(&mut self) -> Result<u32, Refusal> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.not_json("expected four hex digits"))?;
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.not_json("expected four hex digits"))
    }

    /// A number, read by the JSON grammar.
    fn number(&mut self) -> Result<Number<'a>, Refusal> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut at = start;
        let negative = bytes.get(at) == Some(&b'-');
        at += usize::from(negative);
        let (mut mantissa, mut digits) = (0u64, 0usize);
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                let end;
                (end, mantissa) = decimal(bytes, at, mantissa);
                digits += end - at;
                at = end;
            }
            _ => return Err(self.not_json("a malformed number")),
        }
        let mut exponent = 0i64;
        let mut integral = true;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            integral = false;
            let end;
            (end, mantissa) = decimal(bytes, at, mantissa);
            let fraction = end - at;
            if fraction == 0 {
                return Err(self.not_json("a malformed number"));
            }
            (at, digits) = (end, digits + fraction);
            exponent -= fraction as i64;
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            integral = false;
            let sign = match bytes.get(at) {
                Some(b'-') => -1,
                Some(b'+') => 1,
                _ => 0,
            };
            at += usize::from(sign != 0);
            let from = at;
            let mut written = 0i64;
            while let Some(d) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
                written = written
                    .saturating_mul(10)
                    .saturating_add(i64::from(d - b'0'));
                at += 1;
            }
            if at == from {
                return Err(self.not_json("a malformed number"));
            }
            exponent = exponent.saturating_add(if sign < 0 { -written } else { written });
        }
        self.at = at;
        Ok(Number {
            text: &self.text[start..at],
            negative,
            mantissa: (digits <= 19).then_some(mantissa),
            exponent,
            integral,
        })
    }
}

/// Where the digits from `at` end, and `mantissa` with them appended (wrapping past 19
/// digits, when it is not used).
fn decimal(bytes: &[u8], at: usize, mut mantissa: u64) -> (usize, u64) {
    let mut end = at;
    for &b in bytes.get(at..).unwrap_or_default() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(digit));
        end += 1;
    }
    (end, mantissa)
}

/// A JSON number: its text, and its digits as an integer with a power of ten when they fit.
struct Number<'a> {
    text: &'a str,
    negative: bool,
    mantissa: Option<u64>,
    exponent: i64,
    integral: bool,
}

impl Number<'_> {
    fn refused(&self, name: &str) -> Refusal {
        mismatch(name, "integers", &format!("the number {}", self.text))
    }

    /// An integer column's value: exact integers only, where arrow-json would truncate `1.5`.
    fn integer(&self) -> Option<i64> {
        if self.integral {
            if let Some(m) = self.mantissa.and_then(|m| i64::try_from(m).ok()) {
                return Some(if self.negative { -m } else { m });
            }
            return self.text.parse().ok();
        }
        let value = self.float()?;
        // Below 2^53 every integer is exact in a float; the cast is then exact too.
        (value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0).then_some(value as i64)
    }

    /// The nearest float, or None past f64's range. Digits below 2^53 times a power of ten
    /// that a float holds exactly give a correctly rounded result with one operation
    /// (Clinger's fast path); everything else goes through the standard parser.
    fn float(&self) -> Option<f64> {
        const POWERS: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        let value = match self.mantissa {
            Some(m) if m < 1 << 53 && self.exponent.unsigned_abs() < 23 => {
                let power = POWERS[self.exponent.unsigned_abs() as usize];
                let value = if self.exponent < 0 {
                    m as f64 / power
                } else {
                    m as f64 * power
                };
                if self.negative { -value } else { value }
            }
            _ => self.text.parse::<f64>().ok()?,
        };
        value.is_finite().then_some(value)
    }
}

/// The first `"`, `\\` or control character from `at` on, eight bytes at a time: a byte
/// equal to one sets its high bit in `found` (the lowest set bit is always exact).
fn special(bytes: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let found = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let found = found & HIGH;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    let i = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + i)
}

/// A string in a number column, read as arrow-json reads it.
fn parsed<T: Parser>(text: &str, name: &str, column: &str) -> Result<T::Native, Refusal> {
    T::parse(text).ok_or_else(|| mismatch(name, column, &format!("the string \"{text}\"")))
}

fn mismatch(name: &str, column: &str, found: &str) -> Refusal {
    Refusal::Record(format!(
        "field \"{name}\" holds {found}, which its column ({column}) does not take"
    ))
}

fn column_name(column: &Column) -> &'static str {
    match column {
        Column::Null(_) => "only nulls so far",
        Column::Boolean(_) => "booleans",
        Column::Int32(_) | Column::Int64(_) => "integers",
        Column::Float32(_) => "numbers",
        Column::Float64(_) => "numbers",
        Column::Utf8(_) => "strings",
        Column::List(_) => "lists",
        Column::Struct(_) => "objects",
    }
}

#[cfg(test)]
mod tests;
