use crate::decode::proto_arrow::MessageColumns;
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
        let items = proptest::collection::vec(proptest::collection::vec(any::<u64>(), 0..3), 0..3);
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
