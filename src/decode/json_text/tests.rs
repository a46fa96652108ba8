//! The direct reader against arrow-json: the same columns for every record both read, the
//! same refusals, and only text that is not JSON (or a fraction in an integer column) refused
//! where arrow-json reads it.

use super::*;
use crate::decode::json::decode_arrow_json;
use arrow::array::{Array, BinaryArray};
use arrow::datatypes::{Field, SchemaRef};
use proptest::prelude::*;

fn schema() -> SchemaRef {
    let inner = Fields::from(vec![
        Field::new("x", DataType::Int64, true),
        Field::new("y", DataType::Utf8, true),
        Field::new_list("l", Field::new_list_field(DataType::Utf8, true), true),
    ]);
    let item = Fields::from(vec![Field::new("z", DataType::Float64, true)]);
    Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("n", DataType::Null, true),
        Field::new("o", DataType::Struct(inner), true),
        Field::new_list("l", Field::new_list_field(DataType::Int64, true), true),
        Field::new_list(
            "lo",
            Field::new_list_field(DataType::Struct(item), true),
            true,
        ),
        Field::new("r", DataType::Utf8, false),
        Field::new("h", DataType::Int32, true),
        Field::new("g", DataType::Float32, true),
    ]))
}

/// Each record read alone by both readers.
fn direct(schema: &SchemaRef, records: &[&str]) -> Result<Vec<ArrayRef>, Refusal> {
    let mut columns = JsonColumns::new(schema, records.len(), 64).unwrap();
    for record in records {
        columns.append(Some(record.as_bytes()))?;
    }
    Ok(columns.finish().unwrap())
}

fn arrow_json(schema: &SchemaRef, records: &[&str]) -> Result<Vec<ArrayRef>, String> {
    let values = BinaryArray::from_vec(records.iter().map(|r| r.as_bytes()).collect());
    decode_arrow_json(schema, &values).map_err(|e| format!("{e:?}"))
}

fn same(a: &[ArrayRef], b: &[ArrayRef]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_data() == b.to_data())
}

fn whitespace() -> impl Strategy<Value = String> {
    prop_oneof![4 => Just(String::new()), 1 => "[ \t\r\n]{1,3}"]
}

/// A string as JSON, sometimes with every character past ASCII as `\u` escapes (surrogate
/// pairs past the first plane, below U+20000: arrow-json reads those wrong, see
/// `arrow_json_misreads_escaped_characters_from_u20000_on`).
fn text() -> BoxedStrategy<String> {
    (".{0,12}", any::<bool>())
        .prop_map(|(s, ascii)| {
            if !ascii {
                return serde_json::to_string(&s).unwrap();
            }
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    ' '..='~' => out.push(c),
                    '\u{20000}'.. => out.push(c),
                    _ => {
                        let mut units = [0u16; 2];
                        for unit in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                }
            }
            out.push('"');
            out
        })
        .boxed()
}

fn integer() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (-1000i64..1000).prop_map(|v| format!("{v}.0")),
        (-1000i64..1000).prop_map(|v| format!("{v}e0")),
    ]
    .boxed()
}

fn float() -> BoxedStrategy<String> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| serde_json::to_string(&v).unwrap()),
        any::<i32>().prop_map(|v| v.to_string()),
        (any::<i32>(), 0u32..40).prop_map(|(m, e)| format!("{m}.5E-{e}")),
    ]
    .boxed()
}

/// A value of another type than the column's (never a fraction for an integer column).
fn other() -> BoxedStrategy<String> {
    prop_oneof![
        Just("true".to_string()),
        Just("\"12\"".to_string()),
        Just("\"x\"".to_string()),
        Just("7".to_string()),
        Just("[1]".to_string()),
        Just("{}".to_string()),
    ]
    .boxed()
}

/// Mostly a value the column takes, sometimes null or another type.
fn value(right: BoxedStrategy<String>) -> BoxedStrategy<Option<String>> {
    proptest::option::of(prop_oneof![
        12 => right,
        1 => Just("null".to_string()),
        1 => other(),
    ])
    .boxed()
}

fn object(entries: Vec<(&'static str, Option<String>)>, gaps: Vec<String>) -> String {
    let mut fields: Vec<String> = entries
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| format!("\"{name}\":{v}")))
        .collect();
    // A deterministic reordering chosen by the gaps drawn: keys come in any order.
    if gaps.len() % 2 == 1 {
        fields.reverse();
    }
    let mut out = String::from("{");
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&gaps[i % gaps.len()]);
        out.push_str(field);
        out.push_str(&gaps[(i + 1) % gaps.len()]);
    }
    out.push('}');
    out
}

fn inner() -> BoxedStrategy<String> {
    let list =
        proptest::collection::vec(text(), 0..3).prop_map(|items| format!("[{}]", items.join(",")));
    (
        value(integer()),
        value(text()),
        value(list.boxed()),
        proptest::collection::vec(whitespace(), 1..4),
    )
        .prop_map(|(x, y, l, gaps)| object(vec![("x", x), ("y", y), ("l", l)], gaps))
        .boxed()
}

fn record() -> impl Strategy<Value = String> {
    let ints =
        proptest::collection::vec(integer(), 0..4).prop_map(|v| format!("[{}]", v.join(" , ")));
    let item = (
        value(float()),
        proptest::collection::vec(whitespace(), 1..3),
    )
        .prop_map(|(z, gaps)| object(vec![("z", z)], gaps));
    let items =
        proptest::collection::vec(prop_oneof![4 => item, 1 => Just("null".to_string())], 0..3)
            .prop_map(|v| format!("[{}]", v.join(",")));
    let boolean = prop_oneof![Just("true".to_string()), Just("false".to_string())];
    (
        (
            value(integer()),
            value(float()),
            value(boolean.boxed()),
            value(text()),
        ),
        (
            value(Just("null".to_string()).boxed()),
            value(inner()),
            value(ints.boxed()),
        ),
        (
            value(items.boxed()),
            prop_oneof![9 => text().prop_map(Some), 1 => Just(None)],
            value(integer()),
            value(float()),
        ),
        proptest::option::of(Just(("unknown", Some("1".to_string())))),
        proptest::collection::vec(whitespace(), 1..5),
    )
        .prop_map(|((i, f, b, s), (n, o, l), (lo, r, h, g), unknown, gaps)| {
            let mut entries = vec![("i", i), ("f", f), ("b", b), ("s", s), ("n", n)];
            entries.extend([("o", o), ("l", l), ("lo", lo), ("r", r), ("h", h), ("g", g)]);
            entries.extend(unknown);
            object(entries, gaps)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn records_read_as_arrow_json_reads_them(records in proptest::collection::vec(record(), 1..6)) {
        let schema = schema();
        let mut read = Vec::new();
        for record in &records {
            match (direct(&schema, &[record]), arrow_json(&schema, &[record])) {
                (Ok(a), Ok(b)) => {
                    prop_assert!(same(&a, &b), "{record}");
                    read.push(record.as_str());
                }
                // Refused by both, or left to arrow-json.
                (Err(Refusal::Record(_)), Err(_)) | (Err(Refusal::Undecided), _) => {}
                (a, b) => prop_assert!(false, "{record}: direct {:?}, arrow-json {:?}", a.err(), b.err()),
            }
        }
        if !read.is_empty() {
            let (a, b) = (direct(&schema, &read), arrow_json(&schema, &read));
            prop_assert!(same(&a.unwrap(), &b.unwrap()));
        }
    }

    /// A byte replaced, removed or added: what the direct reader takes is JSON that arrow-json
    /// reads the same; what it refuses is not JSON, or refused by arrow-json too.
    #[test]
    fn damaged_records_are_read_alike_or_refused(
        record in record(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        how in 0..3,
    ) {
        let mut bytes = record.into_bytes();
        let at = at.index(bytes.len());
        match how {
            0 => bytes[at] = byte,
            1 => { bytes.remove(at); }
            _ => bytes.insert(at, byte),
        }
        let schema = schema();
        let mut columns = JsonColumns::new(&schema, 1, 0).unwrap();
        let direct = columns.append(Some(&bytes)).map(|()| columns.finish().unwrap());
        let values = BinaryArray::from_vec(vec![&bytes[..]]);
        let arrow = decode_arrow_json(&schema, &values);
        let json = serde_json::from_slice::<serde_json::Value>(&bytes).is_ok();
        let text = String::from_utf8_lossy(&bytes);
        match (direct, arrow) {
            (Ok(a), Ok(b)) => prop_assert!(
                json && (same(&a, &b) || arrow_misreads(&text)),
                "{text}"
            ),
            (Ok(_), Err(e)) => prop_assert!(false, "{text}: arrow-json refused ({e:?})"),
            // With a key twice arrow-json reads only the last value; the direct reader may
            // refuse the first before it sees the second.
            (Err(Refusal::Record(reason)), Ok(_)) => prop_assert!(
                !json
                    || (reason.contains("holds the number") && reason.contains("(integers)"))
                    || serde_json::from_slice::<Twice>(&bytes).is_ok_and(|t| t.0),
                "{text}: refused ({reason}) but arrow-json read it"
            ),
            _ => {}
        }
    }
}

/// Whether a JSON value has an object with a key twice.
struct Twice(bool);

impl<'de> serde::Deserialize<'de> for Twice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Twice;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Twice, A::Error> {
                let (mut keys, mut twice) = (std::collections::HashSet::new(), false);
                while let Some((key, value)) = map.next_entry::<String, Twice>()? {
                    twice |= value.0 || !keys.insert(key);
                }
                Ok(Twice(twice))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Twice, A::Error> {
                let mut twice = false;
                while let Some(item) = seq.next_element::<Twice>()? {
                    twice |= item.0;
                }
                Ok(Twice(twice))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Twice, E> {
                Ok(Twice(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Twice, E> {
                Ok(Twice(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Twice, E> {
                Ok(Twice(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Twice, E> {
                Ok(Twice(false))
            }
            fn visit_str<E>(self, _: &str) -> Result<Twice, E> {
                Ok(Twice(false))
            }
            fn visit_unit<E>(self) -> Result<Twice, E> {
                Ok(Twice(false))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Whether `text` has a `\u` escape of a high surrogate from U+20000 on (`\ud840` and up).
fn arrow_misreads(text: &str) -> bool {
    text.match_indices("\\u").any(|(at, _)| {
        text.get(at + 2..at + 6)
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .is_some_and(|unit| (0xD840..0xDC00).contains(&unit))
    })
}

/// arrow-json joins a surrogate pair with `|` where `+` belongs: from U+20000 on the plane
/// bit collides and `\ud840\udc00` (U+20000) becomes U+10000. The direct reader reads what
/// serde_json reads.
#[test]
fn arrow_json_misreads_escaped_characters_from_u20000_on() {
    let schema = schema();
    let record = r#"{"r": "\ud840\udc00 \ud83d\ude00"}"#;
    let expected: serde_json::Value = serde_json::from_str(record).unwrap();
    assert_eq!(expected["r"], "\u{20000} \u{1F600}");
    let read = direct(&schema, &[record]).unwrap();
    let strings = read[8]
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!(strings.value(0), "\u{20000} \u{1F600}");
    let arrow = arrow_json(&schema, &[record]).unwrap();
    let strings = arrow[8]
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!(strings.value(0), "\u{10000} \u{1F600}");
}

proptest! {
    /// The fast path for floats (digits below 2^53 times an exact power of ten) and the
    /// integers gathered while scanning give what the standard parsers give.
    #[test]
    fn numbers_read_as_the_standard_parsers_read_them(
        int in "-?(0|[1-9][0-9]{0,20})",
        fraction in proptest::option::of("[0-9]{1,20}"),
        exponent in proptest::option::of(-40i32..40),
    ) {
        let mut text = int.clone();
        if let Some(f) = &fraction {
            text.push_str(&format!(".{f}"));
        }
        if let Some(e) = exponent {
            text.push_str(&format!("e{e}"));
        }
        let mut reader = Reader { text: &text, at: 0 };
        let number = reader.number().unwrap();
        prop_assert_eq!(reader.at, text.len());
        let standard = text.parse::<f64>().ok().filter(|v| v.is_finite());
        prop_assert_eq!(number.float().map(f64::to_bits), standard.map(f64::to_bits), "{}", text);
        if fraction.is_none() && exponent.is_none() {
            prop_assert_eq!(number.integer(), text.parse::<i64>().ok(), "{}", text);
        }
    }
}

#[test]
fn a_fraction_in_an_integer_column_is_refused_not_truncated() {
    let schema = schema();
    let record = r#"{"i": 1.5, "r": ""}"#;
    let truncated = arrow_json(&schema, &[record]).unwrap();
    assert_eq!(
        truncated[0].to_data(),
        Arc::new(arrow::array::Int64Array::from(vec![1])).to_data()
    );
    assert_eq!(
        direct(&schema, &[record]).unwrap_err(),
        Refusal::Record(
            "field \"i\" holds the number 1.5, which its column (integers) does not take".into()
        )
    );
    // An integer written as a float is taken, as arrow-json takes it.
    let exact = direct(&schema, &[r#"{"i": 2.0e3, "r": ""}"#]).unwrap();
    assert_eq!(
        exact[0].to_data(),
        Arc::new(arrow::array::Int64Array::from(vec![2000])).to_data()
    );
}

#[test]
fn text_that_is_not_json_is_refused_where_arrow_json_reads_past_it() {
    let schema = schema();
    for record in [
        r#"{"i": 1 "r": ""}"#,
        "{\"s\": \"a\tb\", \"r\": \"\"}",
        r#"{,"r": ""}"#,
    ] {
        assert!(arrow_json(&schema, &[record]).is_ok(), "{record}");
        let Err(Refusal::Record(reason)) = direct(&schema, &[record]) else {
            panic!("{record} was read");
        };
        assert!(reason.starts_with("is not valid JSON"), "{reason}");
    }
}

#[test]
fn a_key_written_twice_is_left_to_arrow_json() {
    let schema = schema();
    assert_eq!(
        direct(&schema, &[r#"{"i": 1, "i": 2, "r": ""}"#]).unwrap_err(),
        Refusal::Undecided
    );
    let values = BinaryArray::from_vec(vec![br#"{"i": 1, "i": 2, "r": ""}"#.as_slice()]);
    let columns = crate::decode::json::decode_with(&schema, &values).unwrap();
    assert_eq!(
        columns[0].to_data(),
        Arc::new(arrow::array::Int64Array::from(vec![2])).to_data()
    );
}

#[test]
fn a_type_this_reader_does_not_cover_keeps_arrow_json() {
    let schema = Schema::new(vec![Field::new(
        "at",
        DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
        true,
    )]);
    assert!(JsonColumns::new(&schema, 1, 0).is_none());
}

#[test]
fn a_missing_required_field_and_a_null_in_it_are_refused_as_arrow_json_refuses_them() {
    let schema = schema();
    for record in ["{}", r#"{"r": null}"#] {
        assert!(arrow_json(&schema, &[record]).is_err());
        assert!(matches!(
            direct(&schema, &[record]),
            Err(Refusal::Record(_))
        ));
    }
    assert!(direct(&schema, &[r#"{"o": null, "lo": [null], "r": ""}"#]).is_ok());
    assert!(direct(&schema, &[r#"{"r": ""}"#]).unwrap()[8].null_count() == 0);
}

proptest! {
    /// A key held as words matches exactly where the text starts with it, whatever the
    /// lengths of the key and of the text after it.
    #[test]
    fn a_key_matches_as_starts_with_does(
        name in proptest::collection::vec(b'a'..=b'd', 0..20),
        rest in proptest::collection::vec(prop_oneof![b'a'..=b'd', Just(b'"')], 0..40),
        prefix in any::<bool>(),
    ) {
        let key = Key::new(&name);
        let mut text = rest.clone();
        if prefix {
            text = [&key.text[..], &rest[..]].concat();
        }
        prop_assert_eq!(key.starts(&text), text.starts_with(&key.text));
    }
}
