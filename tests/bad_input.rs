//! The bad-input corpus: records that are truncated, oversized, of the wrong framing, with an
//! unknown schema id, a schema that cannot be mapped, invalid UTF-8 in keys and headers, huge
//! maps, deep nesting and nulls everywhere. Each case says what must become of its record:
//! exported as a row, or a dead letter whose reason names the problem. Nothing may crash the
//! job and no record may be dropped: rows plus dead letters are every produced offset, once.

mod common;

use common::*;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::BTreeMap;
use std::time::Duration;

/// What must become of a record.
#[derive(Debug, Clone)]
enum Expect {
    Row,
    /// A dead letter whose reason contains this text.
    Dead(&'static str),
}

struct Case {
    name: &'static str,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// (header name, header bytes)
    header: Option<(&'static str, Vec<u8>)>,
    expect: Expect,
}

fn case(name: &'static str, value: Option<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        key: None,
        value,
        header: None,
        expect,
    }
}

fn produce(bootstrap: &str, topic: &str, cases: &[Case]) {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.max.bytes", "20000000")
        .create()
        .unwrap();
    for c in cases {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).partition(0);
        if let Some(key) = &c.key {
            record = record.key(key);
        }
        if let Some(value) = &c.value {
            record = record.payload(value);
        }
        if let Some((name, bytes)) = &c.header {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: name,
                value: Some(bytes.as_slice()),
            }));
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
        // One at a time keeps offsets in case order.
        producer.flush(Duration::from_secs(30)).unwrap();
    }
}

/// Exports `topic` and checks every case: its row, or its dead letter with its reason.
fn check(ctx: &runner::jobs::RunContext, topic: serde_json::Value, cases: &[Case]) {
    let name = topic["topic"].as_str().unwrap().to_string();
    let out = ctx.sink.url().trim_start_matches("file://").to_string();
    let outcomes = run(ctx, &[common::topic(topic)]);
    let summary = match &outcomes[0].result {
        Ok(s) => s.clone(),
        Err(e) => panic!("topic {name}: the export failed: {e}"),
    };
    let out = std::path::Path::new(&out);
    let rows = exported(out, &name);
    let dead_dir = out.join("_dead_letters");
    let dead = offsets_of(&batches(&dead_dir, &name));
    let reasons = column_strings(&dead_dir, &name, "error");
    let reason_of: BTreeMap<i64, String> = dead
        .iter()
        .zip(&reasons)
        .map(|((_, o), r)| (*o, r.clone().unwrap_or_default()))
        .collect();
    println!("| {name} | case | outcome |");
    let mut wrong = Vec::new();
    for (offset, c) in cases.iter().enumerate() {
        let offset = offset as i64;
        let as_row = rows.iter().filter(|r| r.1 == offset).count();
        let as_dead = dead.iter().filter(|r| r.1 == offset).count();
        let outcome = match (as_row, as_dead) {
            (1, 0) => "row".to_string(),
            (0, 1) => format!("dead letter: {}", reason_of[&offset]),
            (r, d) => format!("{r} rows and {d} dead letters"),
        };
        println!(
            "| {name} | {} | {} |",
            c.name,
            outcome.chars().take(160).collect::<String>()
        );
        let ok = match &c.expect {
            Expect::Row => as_row == 1 && as_dead == 0,
            Expect::Dead(why) => as_dead == 1 && as_row == 0 && reason_of[&offset].contains(why),
        };
        if !ok {
            wrong.push(format!(
                "{}: expected {:?}, got {outcome}",
                c.name, c.expect
            ));
        }
    }
    assert_eq!(
        summary.records + summary.dead_letters,
        cases.len() as u64,
        "{name}: rows plus dead letters against records produced"
    );
    assert!(wrong.is_empty(), "{name}: {wrong:#?}");
}

fn nested(depth: usize) -> Vec<u8> {
    format!("{{\"deep\": {}{}}}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

fn wide(fields: usize) -> Vec<u8> {
    wide_from(0, fields)
}

fn wide_from(first: usize, fields: usize) -> Vec<u8> {
    let body: Vec<String> = (first..first + fields)
        .map(|i| format!("\"f{i}\": {i}"))
        .collect();
    format!("{{{}}}", body.join(", ")).into_bytes()
}

#[test]
fn bad_json_records_become_dead_letters_with_their_reason_and_the_rest_rows() {
    let kafka = runner::embedded::EmbeddedKafka::start().unwrap();
    kafka.create_topic("corpus-json", 1).unwrap();
    let ok = |v: serde_json::Value| Some(v.to_string().into_bytes());
    let cases = vec![
        case(
            "a plain object",
            ok(serde_json::json!({"id": 1, "name": "a"})),
            Expect::Row,
        ),
        case(
            "nulls everywhere",
            ok(serde_json::json!({"id": null, "name": null, "tags": null})),
            Expect::Row,
        ),
        case("a tombstone (null value)", None, Expect::Row),
        case("an empty value", Some(Vec::new()), Expect::Dead("JSON")),
        case(
            "truncated",
            Some(br#"{"id": 2, "name": "b"#.to_vec()),
            Expect::Dead("JSON"),
        ),
        case(
            "an array, not an object",
            Some(b"[1, 2, 3]".to_vec()),
            Expect::Dead("object"),
        ),
        case(
            "a bare number",
            Some(b"42".to_vec()),
            Expect::Dead("object"),
        ),
        case(
            "invalid UTF-8",
            Some(b"\xff\xfe{\"id\": 3}".to_vec()),
            Expect::Dead("JSON"),
        ),
        case(
            "nested 100,000 deep",
            Some(nested(100_000)),
            Expect::Dead("JSON"),
        ),
        case("nested 50 deep", Some(nested(50)), Expect::Row),
        case(
            "20,000 fields in one record",
            Some(wide(20_000)),
            Expect::Dead("columns"),
        ),
        case("1,500 fields", Some(wide(1_500)), Expect::Row),
        case(
            "1,000 more fields (keys that are data)",
            Some(wide_from(1_500, 1_000)),
            Expect::Dead("columns"),
        ),
        case(
            "a 1 MB string",
            ok(serde_json::json!({"id": 4, "name": "x".repeat(1 << 20)})),
            Expect::Row,
        ),
        Case {
            key: Some(b"\xff\xfe".to_vec()),
            ..case(
                "invalid UTF-8 in the key (key_format string)",
                ok(serde_json::json!({"id": 5})),
                Expect::Dead("key:"),
            )
        },
        case(
            "a plain object after them all",
            ok(serde_json::json!({"id": 6, "name": "z"})),
            Expect::Row,
        ),
    ];
    produce(&kafka.bootstrap_servers(), "corpus-json", &cases);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    check(
        &ctx,
        serde_json::json!({"topic": "corpus-json", "format": "json", "key_format": "string"}),
        &cases,
    );
}

const FLAT: &str = r#"{"type": "record", "name": "Flat", "fields": [
    {"name": "id", "type": ["null", "long"], "default": null},
    {"name": "name", "type": ["null", "string"], "default": null},
    {"name": "attrs", "type": ["null", {"type": "map", "values": "string"}], "default": null}]}"#;

/// A linked list: a schema that refers to itself, which columns cannot hold.
const RECURSIVE: &str = r#"{"type": "record", "name": "Node", "fields": [
    {"name": "value", "type": "long"},
    {"name": "next", "type": ["null", "Node"], "default": null}]}"#;

/// A record nested `depth` records deep.
fn deep_schema(depth: usize) -> String {
    let mut schema =
        r#"{"type": "record", "name": "L0", "fields": [{"name": "v", "type": "long"}]}"#
            .to_string();
    for level in 1..depth {
        schema = format!(
            r#"{{"type": "record", "name": "L{level}", "fields": [{{"name": "inner", "type": {schema}}}]}}"#
        );
    }
    schema
}

fn deep_value(depth: usize) -> apache_avro::types::Value {
    use apache_avro::types::Value;
    let mut value = Value::Record(vec![("v".into(), Value::Long(7))]);
    for _ in 1..depth {
        value = Value::Record(vec![("inner".into(), value)]);
    }
    value
}

fn framed(id: u32, schema: &apache_avro::Schema, value: apache_avro::types::Value) -> Vec<u8> {
    let mut bytes = vec![0u8];
    bytes.extend(id.to_be_bytes());
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .unwrap();
    bytes.extend(writer.write_value_to_vec(value).unwrap());
    bytes
}

#[test]
fn bad_avro_records_become_dead_letters_with_their_reason_and_the_rest_rows() {
    use apache_avro::types::Value;
    use runner::registry::SchemaType;
    let env = WithRegistry::start("corpus-avro");
    let flat_id = env
        .registry
        .register("corpus-avro-value", SchemaType::Avro, FLAT)
        .unwrap();
    let flat = apache_avro::Schema::parse_str(FLAT).unwrap();
    let recursive_id = env
        .registry
        .register("corpus-avro-recursive", SchemaType::Avro, RECURSIVE)
        .unwrap();
    let recursive = apache_avro::Schema::parse_str(RECURSIVE).unwrap();
    let deep_id = env
        .registry
        .register("corpus-avro-deep", SchemaType::Avro, &deep_schema(25))
        .unwrap();
    let deep = apache_avro::Schema::parse_str(&deep_schema(25)).unwrap();
    let row = |id: Value, name: Value, attrs: Value| {
        Value::Record(vec![
            ("id".into(), id),
            ("name".into(), name),
            ("attrs".into(), attrs),
        ])
    };
    let some = |v: Value| Value::Union(1, Box::new(v));
    let null = || Value::Union(0, Box::new(Value::Null));
    let good = framed(
        flat_id,
        &flat,
        row(
            some(Value::Long(1)),
            some(Value::String("a".into())),
            null(),
        ),
    );
    let huge_map: std::collections::HashMap<String, Value> = (0..100_000)
        .map(|i| (format!("k{i}"), Value::String(format!("v{i}"))))
        .collect();
    // The name field's string holds invalid UTF-8: length 2, bytes ff fe.
    let mut bad_text = vec![0u8];
    bad_text.extend(flat_id.to_be_bytes());
    bad_text.extend([2, 2, 2, 4, 0xff, 0xfe, 0]);
    let cases = vec![
        case("a plain record", Some(good.clone()), Expect::Row),
        case(
            "nulls everywhere",
            Some(framed(flat_id, &flat, row(null(), null(), null()))),
            Expect::Row,
        ),
        case("a tombstone (null value)", None, Expect::Dead("tombstone")),
        case(
            "3 bytes",
            Some(vec![0, 0, 0]),
            Expect::Dead("shorter than the 5-byte"),
        ),
        case(
            "wrong magic byte",
            Some([&[1u8][..], &good[1..]].concat()),
            Expect::Dead("magic byte"),
        ),
        case(
            "unknown schema id",
            Some([&[0u8, 0, 0, 3, 231][..], &good[5..]].concat()),
            Expect::Dead("999"),
        ),
        case(
            "truncated body",
            Some(good[..good.len() - 2].to_vec()),
            Expect::Dead("Avro"),
        ),
        case(
            "invalid UTF-8 in a string",
            Some(bad_text),
            Expect::Dead("Avro"),
        ),
        case(
            "a map of 100,000 entries",
            Some(framed(
                flat_id,
                &flat,
                row(some(Value::Long(2)), null(), some(Value::Map(huge_map))),
            )),
            Expect::Row,
        ),
        case(
            "a schema that refers to itself",
            Some(framed(
                recursive_id,
                &recursive,
                Value::Record(vec![
                    ("value".into(), Value::Long(1)),
                    ("next".into(), Value::Union(0, Box::new(Value::Null))),
                ]),
            )),
            Expect::Dead("cannot be mapped"),
        ),
        case(
            "records nested 25 deep",
            Some(framed(deep_id, &deep, deep_value(25))),
            Expect::Row,
        ),
        case("a plain record after them all", Some(good), Expect::Row),
    ];
    produce(&env.kafka.bootstrap_servers(), "corpus-avro", &cases);
    check(
        &env.ctx,
        serde_json::json!({"topic": "corpus-avro", "format": "avro"}),
        &cases,
    );
}

#[test]
fn bad_protobuf_and_header_typed_records_become_dead_letters_with_their_reason() {
    let kafka = runner::embedded::EmbeddedKafka::start().unwrap();
    kafka.create_topic("corpus-proto", 1).unwrap();
    kafka.create_topic("corpus-typed", 1).unwrap();
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/schemas/transaction.proto"
    );
    let topic = serde_json::json!({"topic": "corpus-proto", "format": "protobuf",
        "schema_file": proto, "message": "bank.Transaction"});
    let encoder = runner::produce::Encoder::new(&common::topic(topic.clone()), None).unwrap();
    let good = encoder
        .encode(
            &serde_json::json!({"transaction_id": "t1", "account_number": "ACC1", "amount": 2.5}),
        )
        .unwrap();
    // Field 1 (transaction_id, a string) of length 2 holding ff fe.
    let bad_text = vec![0x0a, 2, 0xff, 0xfe];
    let cases = vec![
        case("a plain message", Some(good.clone()), Expect::Row),
        case(
            "an empty message (every field default)",
            Some(Vec::new()),
            Expect::Row,
        ),
        case(
            "garbage",
            Some(vec![0xff; 16]),
            Expect::Dead("not a valid bank.Transaction"),
        ),
        case(
            "truncated",
            Some(good[..good.len() - 3].to_vec()),
            Expect::Dead("not a valid bank.Transaction"),
        ),
        case(
            "invalid UTF-8 in a string field",
            Some(bad_text),
            Expect::Dead("not UTF-8"),
        ),
        case("a tombstone (null value)", None, Expect::Dead("tombstone")),
        case("a plain message after them all", Some(good), Expect::Row),
    ];
    produce(&kafka.bootstrap_servers(), "corpus-proto", &cases);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    check(&ctx, topic, &cases);

    // Header-typed: the header picks the type.
    let json = |v: serde_json::Value| Some(v.to_string().into_bytes());
    let typed = |name: &'static str, header: &[u8], value, expect| Case {
        header: Some(("item_type_name", header.to_vec())),
        ..case(name, value, expect)
    };
    let cases = vec![
        typed(
            "a listed type",
            b"com.shop.Delivered",
            json(serde_json::json!({"id": 1})),
            Expect::Row,
        ),
        case(
            "no type header",
            json(serde_json::json!({"id": 2})),
            Expect::Dead("item_type_name"),
        ),
        typed(
            "a type not listed",
            b"com.shop.Lost",
            json(serde_json::json!({"id": 3})),
            Expect::Dead("com.shop.Lost"),
        ),
        typed(
            "invalid UTF-8 in the type header",
            b"\xff\xfe",
            json(serde_json::json!({"id": 4})),
            Expect::Dead("is not UTF-8 text"),
        ),
        typed(
            "a listed type, not valid JSON",
            b"com.shop.Returned",
            Some(b"{".to_vec()),
            Expect::Dead("JSON"),
        ),
        typed(
            "a listed type after them all",
            b"com.shop.Returned",
            json(serde_json::json!({"id": 5})),
            Expect::Row,
        ),
    ];
    produce(&kafka.bootstrap_servers(), "corpus-typed", &cases);
    check(
        &ctx,
        serde_json::json!({"topic": "corpus-typed", "type_header": "item_type_name", "types": {
            "com.shop.Delivered": {"format": "json"}, "com.shop.Returned": {"format": "json"}}}),
        &cases,
    );
}

/// Found by this corpus: arrow-avro checks text when it finishes a batch, so one string that
/// is not UTF-8 failed its whole batch (and every rerun) instead of becoming a dead letter.
#[test]
fn avro_text_that_is_not_utf8_becomes_a_dead_letter_instead_of_failing_its_batch() {
    use apache_avro::types::Value;
    let env = WithRegistry::start("utf8-avro");
    let id = env
        .registry
        .register("utf8-avro-value", runner::registry::SchemaType::Avro, FLAT)
        .unwrap();
    let flat = apache_avro::Schema::parse_str(FLAT).unwrap();
    let good = framed(
        id,
        &flat,
        Value::Record(vec![
            ("id".into(), Value::Union(1, Box::new(Value::Long(1)))),
            ("name".into(), Value::Union(0, Box::new(Value::Null))),
            ("attrs".into(), Value::Union(0, Box::new(Value::Null))),
        ]),
    );
    let mut bad = vec![0u8];
    bad.extend(id.to_be_bytes());
    bad.extend([2, 2, 2, 4, 0xff, 0xfe, 0]);
    let cases = vec![
        case("before", Some(good.clone()), Expect::Row),
        case("not UTF-8", Some(bad), Expect::Dead("non UTF-8")),
        case("after", Some(good), Expect::Row),
    ];
    produce(&env.kafka.bootstrap_servers(), "utf8-avro", &cases);
    check(
        &env.ctx,
        serde_json::json!({"topic": "utf8-avro", "format": "avro"}),
        &cases,
    );
}

/// Found by this corpus: a JSON object of 20,000 keys became a file of 20,000 columns, and
/// about 45 KB of writer state each (900 MB for one record).
#[test]
fn a_json_object_with_thousands_of_keys_becomes_a_dead_letter_instead_of_a_900_mb_writer() {
    let kafka = runner::embedded::EmbeddedKafka::start().unwrap();
    kafka.create_topic("wide-json", 1).unwrap();
    let cases = vec![
        case("20,000 keys", Some(wide(20_000)), Expect::Dead("columns")),
        case("3 keys", Some(wide(3)), Expect::Row),
    ];
    produce(&kafka.bootstrap_servers(), "wide-json", &cases);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    check(
        &ctx,
        serde_json::json!({"topic": "wide-json", "format": "json"}),
        &cases,
    );
}

/// A 10 MB record through decoding and writing (neither test broker serves one: the mock
/// cluster keeps about 5 MB per partition, tansu 0.6 stops at 6 MB).
#[test]
fn a_10_mb_record_is_decoded_and_written_whole() {
    use arrow::array::{AsArray, BinaryBuilder};
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let sink =
        std::sync::Arc::new(runner::sink::Sink::local(dir.path(), rt.handle().clone()).unwrap());
    let topic = common::topic(serde_json::json!({"topic": "large", "format": "json"}));
    let mut decoder = runner::decode::Decoder::new(&topic, None);
    let mut writer = runner::write::TopicWriter::new(sink.clone(), &topic, [(0, 0)].into());
    let body = "x".repeat(10 << 20);
    let (mut keys, mut values) = (BinaryBuilder::new(), BinaryBuilder::new());
    for (i, text) in ["a", body.as_str(), "b"].iter().enumerate() {
        keys.append_null();
        values.append_value(serde_json::json!({"seq": i, "body": text}).to_string());
    }
    let raw = runner::read::RawBatch {
        partition: 0,
        offsets: vec![0, 1, 2],
        timestamps: vec![None; 3],
        keys: keys.finish(),
        values: values.finish(),
        next_offset: 3,
        last: true,
        types: None,
        headers: None,
    };
    let decoded = decoder.decode(&raw).unwrap();
    for sealed in writer.write(&raw, decoded, true).unwrap() {
        for file in sealed.files {
            file.commit(&sink).unwrap();
        }
    }
    let lengths: Vec<usize> = batches(dir.path(), "large")
        .iter()
        .flat_map(|b| {
            let bodies = column(b, "body").as_string::<i32>().clone();
            (0..b.num_rows()).map(move |i| bodies.value(i).len())
        })
        .collect();
    assert_eq!(lengths, vec![1, 10 << 20, 1]);
}
