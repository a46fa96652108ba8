//! Avro framed for the Schema Registry, end to end: the in-process registry, the mock cluster,
//! typed Parquet read back value by value, schema versions and dead letters.

mod common;

use apache_avro::types::Value;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Float64Type, Int64Type};
use common::*;
use runner::embedded::EmbeddedKafka;
use runner::registry::{EmbeddedRegistry, Registry, SchemaType};
use std::sync::Arc;

const V1: &str = r#"{
  "type": "record", "name": "Payment", "namespace": "bank",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "account", "type": "string"},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "rate", "type": "double"},
    {"name": "settled", "type": "boolean"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "DONE"]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "limits", "type": {"type": "map", "values": "long"}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "clock", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "at_micros", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "address", "type": {"type": "record", "name": "Address",
      "fields": [{"name": "city", "type": "string"}]}}
  ]
}"#;

fn v2() -> String {
    V1.replacen(
        r#"{"name": "id", "type": "long"},"#,
        r#"{"name": "id", "type": "long"}, {"name": "channel", "type": ["null", "string"], "default": null},"#,
        1,
    )
}

fn payment(i: i64, with_channel: bool) -> Vec<(String, Value)> {
    let mut fields = vec![("id".to_string(), Value::Long(i))];
    if with_channel {
        fields.push((
            "channel".into(),
            Value::Union(1, Box::new(Value::String("web".into()))),
        ));
    }
    let cents = (i * 101) as i128;
    fields.extend([
        ("account".to_string(), Value::String(format!("ACC{i:03}"))),
        (
            "amount".into(),
            Value::Decimal(apache_avro::Decimal::from(cents.to_be_bytes().to_vec())),
        ),
        ("rate".into(), Value::Double(i as f64 / 8.0)),
        ("settled".into(), Value::Boolean(i % 2 == 0)),
        (
            "status".into(),
            Value::Enum((i % 2) as u32, ["NEW", "DONE"][(i % 2) as usize].into()),
        ),
        (
            "tags".into(),
            Value::Array((0..i % 3).map(|t| Value::String(format!("t{t}"))).collect()),
        ),
        (
            "limits".into(),
            Value::Map([("daily".to_string(), Value::Long(i * 10))].into()),
        ),
        (
            "note".into(),
            if i % 4 == 0 {
                Value::Union(0, Box::new(Value::Null))
            } else {
                Value::Union(1, Box::new(Value::String(format!("n{i}"))))
            },
        ),
        ("at".into(), Value::TimestampMillis(1_795_384_800_000 + i)),
        ("day".into(), Value::Date(20_000 + i as i32)),
        ("clock".into(), Value::TimeMillis(3_600_000 + i as i32)),
        (
            "at_micros".into(),
            Value::TimestampMicros(1_795_384_800_000_000 + i),
        ),
        (
            "ref".into(),
            Value::String(format!("123e4567-e89b-12d3-a456-{:012}", i)),
        ),
        (
            "address".into(),
            Value::Record(vec![("city".into(), Value::String(format!("city{i}")))]),
        ),
    ]);
    fields
}

/// Registers V1 then v2 under `payments-value`; returns their ids.
fn register_versions(registry: &Registry) -> (u32, u32) {
    let id1 = registry
        .register("payments-value", SchemaType::Avro, V1)
        .unwrap();
    let id2 = registry
        .register("payments-value", SchemaType::Avro, &v2())
        .unwrap();
    (id1, id2)
}

fn framed(id: u32, schema: &apache_avro::Schema, fields: Vec<(String, Value)>) -> Vec<u8> {
    let mut bytes = vec![0u8];
    bytes.extend(id.to_be_bytes());
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .unwrap();
    bytes.extend(writer.write_value_to_vec(Value::Record(fields)).unwrap());
    bytes
}

#[test]
fn framed_avro_becomes_typed_columns_across_schema_versions_with_bad_records_set_aside() {
    let env = WithRegistry::start("payments");
    let (ctx, kafka, out, registry) = (&env.ctx, &env.kafka, &env.out, &env.registry);
    let (id1, id2) = register_versions(registry);
    assert_ne!(id1, id2);
    let s1 = apache_avro::Schema::parse_str(V1).unwrap();
    let s2 = apache_avro::Schema::parse_str(&v2()).unwrap();

    // Offsets 0-9: v1; 10: wrong magic; 11: unknown id; 12: truncated; 13-22: v2; 23: v1 again.
    let mut values: Vec<Vec<u8>> = (0..10)
        .map(|i| framed(id1, &s1, payment(i, false)))
        .collect();
    let good = framed(id1, &s1, payment(99, false));
    values.push([&[1u8][..], &good[1..]].concat());
    values.push([&[0u8, 0, 0, 3, 231][..], &good[5..]].concat());
    values.push(good[..good.len() - 3].to_vec());
    values.extend((13..23).map(|i| framed(id2, &s2, payment(i, true))));
    values.push(framed(id1, &s1, payment(23, false)));
    kafka
        .produce("payments", values.into_iter().map(record))
        .unwrap();

    let t = topic(serde_json::json!({"topic": "payments", "format": "avro"}));
    let outcomes = run(ctx, &[t]);
    let summary = outcomes[0].result.as_ref().unwrap();
    assert_eq!((summary.records, summary.dead_letters), (21, 3));

    let mut ids = Vec::new();
    for batch in &batches(out.path(), "payments") {
        let id = column(batch, "id").as_primitive::<Int64Type>();
        let offsets = column(batch, "kafka_offset").as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let i = id.value(row);
            assert_eq!(offsets.value(row), i, "record {i} at its own offset");
            ids.push(i);
            let amount = column(batch, "amount");
            assert_eq!(amount.data_type(), &DataType::Decimal128(10, 2));
            assert_eq!(
                amount.as_primitive::<Decimal128Type>().value(row),
                (i * 101) as i128
            );
            let account = arrow::compute::cast(column(batch, "account"), &DataType::Utf8).unwrap();
            assert_eq!(account.as_string::<i32>().value(row), format!("ACC{i:03}"));
            assert_eq!(
                column(batch, "rate")
                    .as_primitive::<Float64Type>()
                    .value(row),
                i as f64 / 8.0
            );
            assert_eq!(column(batch, "settled").as_boolean().value(row), i % 2 == 0);
            let status = arrow::compute::cast(column(batch, "status"), &DataType::Utf8).unwrap();
            assert_eq!(
                status.as_string::<i32>().value(row),
                ["NEW", "DONE"][(i % 2) as usize]
            );
            let tags = column(batch, "tags").as_list::<i32>().value(row);
            assert_eq!(
                tags.len() as i64,
                i % 3,
                "record {i}: tags (empty arrays included)"
            );
            let note = column(batch, "note");
            assert_eq!(note.is_null(row), i % 4 == 0, "record {i}: nullable union");
            let day = column(batch, "day").as_primitive::<Date32Type>().value(row);
            assert_eq!(day, 20_000 + i as i32);
            let at = column(batch, "at");
            assert!(matches!(
                at.data_type(),
                DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, _)
            ));
            assert!(matches!(
                column(batch, "limits").data_type(),
                DataType::Map(..)
            ));
            let clock = column(batch, "clock");
            assert_eq!(
                clock.data_type(),
                &DataType::Time32(arrow::datatypes::TimeUnit::Millisecond)
            );
            let micros = column(batch, "at_micros");
            let micros = micros.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            assert_eq!(micros.value(row), 1_795_384_800_000_000 + i);
            assert_eq!(
                column(batch, "ref").data_type(),
                &DataType::FixedSizeBinary(16)
            );
            let address = column(batch, "address").as_struct();
            let city =
                arrow::compute::cast(address.column_by_name("city").unwrap(), &DataType::Utf8)
                    .unwrap();
            assert_eq!(city.as_string::<i32>().value(row), format!("city{i}"));
            let has_channel = batch.column_by_name("channel").is_some();
            assert_eq!(
                has_channel,
                (13..23).contains(&i),
                "record {i}: schema version"
            );
        }
    }
    // uuid is Parquet's UUID logical type, which readers show as a UUID.
    let file = &parquet_files(&out.path().join("payments"))[0];
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(file).unwrap())
            .unwrap();
    use parquet::file::reader::FileReader;
    let schema = reader.metadata().file_metadata().schema_descr();
    let uuid = (0..schema.num_columns())
        .map(|i| schema.column(i))
        .find(|c| c.name() == "ref")
        .unwrap();
    assert_eq!(
        uuid.logical_type_ref(),
        Some(&parquet::basic::LogicalType::Uuid)
    );
    ids.sort();
    let want: Vec<i64> = (0..10).chain(13..24).collect();
    assert_eq!(ids, want);

    let dead_dir = out.path().join("_dead_letters");
    let mut dead = offsets_of(&batches(&dead_dir, "payments"));
    dead.sort();
    assert_eq!(dead, [(0, 10), (0, 11), (0, 12)]);
    let errors = column_strings(&dead_dir, "payments", "error");
    assert!(
        errors[0].as_deref().unwrap().contains("magic byte is 0x01"),
        "{errors:?}"
    );
    assert!(
        errors[1]
            .as_deref()
            .unwrap()
            .contains("no schema with id 999"),
        "{errors:?}"
    );
    assert!(
        errors[2].as_deref().unwrap().contains("truncated"),
        "{errors:?}"
    );
}

#[test]
fn an_unreachable_registry_fails_the_topic_and_sets_nothing_aside() {
    let rt = runtime();
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("payments", 1).unwrap();
    let s1 = apache_avro::Schema::parse_str(V1).unwrap();
    kafka
        .produce("payments", [record(framed(1, &s1, payment(1, false)))])
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    ctx.config.connections.schema_registry_url = Some(format!("http://{closed}"));
    let registry = Registry::from_connections(&ctx.config.connections, rt.handle().clone());
    ctx.registry = registry.unwrap().map(Arc::new);
    let t = topic(serde_json::json!({"topic": "payments", "format": "avro"}));
    let outcomes = runner::jobs::run_once(&ctx, &[t]);
    let error = outcomes[0]
        .result
        .as_ref()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("is unreachable"), "{error}");
    assert!(error.contains(&format!("http://{closed}")), "{error}");
    assert!(
        parquet_files(out.path()).is_empty(),
        "nothing written, nothing set aside"
    );
}

#[test]
fn a_union_of_several_types_becomes_a_struct_with_one_field_per_member() {
    const UNIONS: &str = r#"{"type": "record", "name": "U", "fields": [
      {"name": "id", "type": "long"},
      {"name": "choice", "type": ["int", "string"]},
      {"name": "maybe", "type": ["null", "long", "string"]}
    ]}"#;
    let env = WithRegistry::start("unions");
    let (ctx, kafka, out, registry) = (&env.ctx, &env.kafka, &env.out, &env.registry);
    let id = registry
        .register("unions-value", SchemaType::Avro, UNIONS)
        .unwrap();
    let schema = apache_avro::Schema::parse_str(UNIONS).unwrap();
    let values = (0..6i64).map(|i| {
        let choice = if i % 2 == 0 {
            Value::Union(0, Box::new(Value::Int(i as i32)))
        } else {
            Value::Union(1, Box::new(Value::String(format!("s{i}"))))
        };
        let maybe = match i % 3 {
            0 => Value::Union(0, Box::new(Value::Null)),
            1 => Value::Union(1, Box::new(Value::Long(i * 100))),
            _ => Value::Union(2, Box::new(Value::String(format!("m{i}")))),
        };
        let fields = vec![
            ("id".to_string(), Value::Long(i)),
            ("choice".to_string(), choice),
            ("maybe".to_string(), maybe),
        ];
        record(framed(id, &schema, fields))
    });
    kafka.produce("unions", values).unwrap();
    let t = topic(serde_json::json!({"topic": "unions", "format": "avro"}));
    assert_eq!(records(&run(ctx, &[t])), 6);

    let batch = arrow::compute::concat_batches(
        &batches(out.path(), "unions")[0].schema(),
        &batches(out.path(), "unions"),
    )
    .unwrap();
    let choice = column(&batch, "choice").as_struct();
    assert_eq!(choice.num_columns(), 2, "{:?}", choice.fields());
    let maybe = column(&batch, "maybe").as_struct();
    assert_eq!(
        maybe.num_columns(),
        2,
        "the null member has no field: {:?}",
        maybe.fields()
    );
    for row in 0..6 {
        let i = column(&batch, "id").as_primitive::<Int64Type>().value(row);
        let (int_member, string_member) = (choice.column(0), choice.column(1));
        assert_eq!(int_member.is_valid(row), i % 2 == 0, "row {i}");
        assert_eq!(string_member.is_valid(row), i % 2 == 1, "row {i}");
        if i % 2 == 1 {
            let s = arrow::compute::cast(string_member, &DataType::Utf8).unwrap();
            assert_eq!(s.as_string::<i32>().value(row), format!("s{i}"));
        }
        assert_eq!(maybe.column(0).is_valid(row), i % 3 == 1, "row {i}");
        assert_eq!(maybe.column(1).is_valid(row), i % 3 == 2, "row {i}");
    }
}

#[test]
fn unframed_avro_with_a_schema_file_and_json_with_a_declared_schema() {
    let dir = tempfile::tempdir().unwrap();
    let avsc = dir.path().join("payment.avsc");
    std::fs::write(&avsc, V1).unwrap();
    let schema = apache_avro::Schema::parse_str(V1).unwrap();
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap();
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("bare", 1).unwrap();
    kafka.create_topic("declared", 1).unwrap();
    let mut bodies: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            writer
                .write_value_to_vec(Value::Record(payment(i, false)))
                .unwrap()
        })
        .collect();
    bodies[3].truncate(4);
    kafka
        .produce("bare", bodies.into_iter().map(record))
        .unwrap();

    let small = dir.path().join("small.avsc");
    std::fs::write(
        &small,
        r#"{"type": "record", "name": "S", "fields": [
            {"name": "id", "type": "long"}, {"name": "account", "type": ["null", "string"]}]}"#,
    )
    .unwrap();
    let json_values = [
        r#"{"id": 1, "account": "A"}"#,
        r#"{"id": 2}"#,
        r#"{"id": "three", "account": "C"}"#,
        r#"{"id": 4, "account": "D", "extra": true}"#,
    ];
    kafka
        .produce(
            "declared",
            json_values.iter().map(|v| record(v.as_bytes().to_vec())),
        )
        .unwrap();

    let rt = runtime();
    let out = tempfile::tempdir().unwrap();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let bare = topic(serde_json::json!({"topic": "bare", "format": "avro", "schema_file": avsc}));
    let declared =
        topic(serde_json::json!({"topic": "declared", "format": "json", "schema_file": small}));
    let outcomes = run(&ctx, &[bare, declared]);
    let by_topic = |name: &str| {
        outcomes
            .iter()
            .find(|o| o.topic == name)
            .and_then(|o| o.result.as_ref().ok())
            .map(|s| (s.records, s.dead_letters))
    };
    assert_eq!(by_topic("bare"), Some((7, 1)));
    assert_eq!(by_topic("declared"), Some((2, 2)));

    let ids: Vec<i64> = batches(out.path(), "bare")
        .iter()
        .flat_map(|b| {
            column(b, "id")
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, [0, 1, 2, 4, 5, 6, 7]);
    let declared_batches = batches(out.path(), "declared");
    assert_eq!(
        column(&declared_batches[0], "id").data_type(),
        &DataType::Int64
    );
    let accounts = column_strings(out.path(), "declared", "account");
    assert_eq!(accounts, [Some("A".to_string()), None]);
    let dead = offsets_of(&batches(&out.path().join("_dead_letters"), "declared"));
    assert_eq!(dead, [(0, 2), (0, 3)]);
}

#[test]
fn a_registry_with_basic_auth_takes_the_credentials_and_names_a_rejection() {
    let rt = runtime();
    let server = EmbeddedRegistry::start_with_basic_auth(rt.handle(), "api-key", "s3cret").unwrap();
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("payments", 1).unwrap();
    let connections = |password: &str| -> runner::config::Connections {
        serde_json::from_value(serde_json::json!({
            "bootstrap_servers": kafka.bootstrap_servers(),
            "schema_registry_url": server.url(),
            "schema_registry_username": "api-key",
            "schema_registry_password": password,
        }))
        .unwrap()
    };
    let good = Registry::from_connections(&connections("s3cret"), rt.handle().clone())
        .unwrap()
        .unwrap();
    let id = good
        .register("payments-value", SchemaType::Avro, V1)
        .unwrap();
    let s1 = apache_avro::Schema::parse_str(V1).unwrap();
    kafka
        .produce(
            "payments",
            (0..3).map(|i| record(framed(id, &s1, payment(i, false)))),
        )
        .unwrap();

    let out = tempfile::tempdir().unwrap();
    let t = topic(serde_json::json!({"topic": "payments", "format": "avro"}));
    let mut ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let wrong = Registry::from_connections(&connections("wrong"), rt.handle().clone()).unwrap();
    ctx.registry = wrong.map(Arc::new);
    let outcomes = runner::jobs::run_once(&ctx, std::slice::from_ref(&t));
    let error = outcomes[0]
        .result
        .as_ref()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("rejected the credentials"), "{error}");
    assert!(error.contains("schema_registry_password"), "{error}");
    assert!(
        !error.contains("wrong"),
        "the password is never shown: {error}"
    );
    assert!(
        parquet_files(out.path()).is_empty(),
        "no record set aside for a registry problem"
    );

    ctx.registry = Some(Arc::new(good));
    assert_eq!(records(&run(&ctx, &[t])), 3);
}

/// DuckDB and pyarrow read all files of a topic together across schema versions.
#[test]
fn duckdb_and_pyarrow_read_every_file_of_a_topic_together() {
    let env = WithRegistry::start("payments");
    let (ctx, kafka, out, registry) = (&env.ctx, &env.kafka, &env.out, &env.registry);
    let (id1, id2) = register_versions(registry);
    let s1 = apache_avro::Schema::parse_str(V1).unwrap();
    let s2 = apache_avro::Schema::parse_str(&v2()).unwrap();
    let values = (0..10)
        .map(|i| framed(id1, &s1, payment(i, false)))
        .chain((10..20).map(|i| framed(id2, &s2, payment(i, true))));
    kafka.produce("payments", values.map(record)).unwrap();
    let t = topic(serde_json::json!({"topic": "payments", "format": "avro"}));
    assert_eq!(records(&run(ctx, &[t])), 20);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_back.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(out.path().join("payments"))
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "reading back failed ({stderr}); install the readers with: bash tests/run.sh, or pip install duckdb==2.0.0 pyarrow==26.0.1"
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["duckdb_rows"], 20);
    assert_eq!(
        summary["duckdb_with_channel"], 10,
        "the v2 column, null in v1 files"
    );
    let cents: i64 = (0..20).map(|i| i * 101).sum();
    assert_eq!(
        summary["duckdb_amount"],
        format!("{}.{:02}", cents / 100, cents % 100)
    );
    assert_eq!(summary["pyarrow_rows"], 20);
    let columns = summary["pyarrow_columns"].as_array().unwrap();
    assert!(
        columns.contains(&serde_json::json!("channel")),
        "{columns:?}"
    );
    assert!(
        columns.contains(&serde_json::json!("kafka_offset")),
        "{columns:?}"
    );
}

#[test]
fn validate_connect_lists_the_registry_subjects_or_says_it_is_unreachable() {
    let env = WithRegistry::start("payments");
    env.registry
        .register("payments-value", SchemaType::Avro, V1)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let validate = |registry_url: &str| {
        let connections = serde_json::json!({
            "bootstrap_servers": env.kafka.bootstrap_servers(),
            "schema_registry_url": registry_url,
        });
        std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();
        std::fs::write(dir.path().join("topics.json"), r#"[{"topic": "payments"}]"#).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
            .args([
                "--config-dir",
                &dir.path().to_string_lossy(),
                "validate",
                "--connect",
            ])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, stdout) = validate(env.server.url());
    assert_eq!(code, Some(0), "{stdout}");
    let line = format!(
        "ok      registry: {} answers with 1 subjects",
        env.server.url()
    );
    assert!(stdout.contains(&line), "{stdout}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, stdout) = validate(&format!("http://{closed}"));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FAILED  registry: Schema Registry http://{closed} is unreachable"
        )),
        "{stdout}"
    );
}

/// A registry behind TLS with a private CA: reached with schema_registry_ca, refused without.
#[test]
fn a_registry_behind_a_private_ca_needs_schema_registry_ca() {
    use std::io::BufRead;
    let pki = common::pki::Pki::new();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls_registry.py");
    let mut server = std::process::Command::new("python3")
        .arg(script)
        .args([pki.file("server.pem"), pki.file("server.key")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let url = format!("https://127.0.0.1:{}", port.trim());

    let rt = runtime();
    let registry = |ca: Option<&std::path::Path>| {
        let connections: runner::config::Connections = serde_json::from_value(serde_json::json!({
            "bootstrap_servers": "unused:9092",
            "schema_registry_url": url,
            "schema_registry_ca": ca,
        }))
        .unwrap();
        Registry::from_connections(&connections, rt.handle().clone())
            .unwrap()
            .unwrap()
    };
    let trusted = registry(Some(&pki.file("ca.pem")));
    assert!(
        trusted
            .schema(1)
            .unwrap()
            .schema
            .contains("\"name\": \"T\"")
    );
    let untrusted = registry(None).schema(1).unwrap_err().to_string();
    assert!(untrusted.contains("is unreachable"), "{untrusted}");
    assert!(
        untrusted.to_lowercase().contains("certificate"),
        "{untrusted}"
    );
    assert!(untrusted.contains("schema_registry_ca"), "{untrusted}");
    let _ = server.kill();
    let _ = server.wait();
}

/// The in-process registry answers the REST subset producers and runner use.
#[test]
fn the_embedded_registry_serves_register_by_id_and_latest_by_subject() {
    let env = WithRegistry::start("payments");
    let id1 = env
        .registry
        .register("payments-value", SchemaType::Avro, V1)
        .unwrap();
    let again = env
        .registry
        .register("payments-value", SchemaType::Avro, V1)
        .unwrap();
    assert_eq!(id1, again, "registering the same schema twice keeps its id");
    let id2 = env
        .registry
        .register("payments-value", SchemaType::Avro, &v2())
        .unwrap();
    let get = |path: &str| {
        let url = format!("{}{path}", env.server.url());
        env.rt.block_on(async {
            let response = reqwest::get(&url).await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        })
    };
    let (status, latest) = get("/subjects/payments-value/versions/latest");
    assert_eq!(status, 200);
    assert_eq!(
        (latest["id"].as_u64(), latest["version"].as_u64()),
        (Some(id2 as u64), Some(2))
    );
    assert_eq!(get("/subjects").1, serde_json::json!(["payments-value"]));
    assert_eq!(
        get("/subjects/payments-value/versions").1,
        serde_json::json!([1, 2])
    );
    assert_eq!(get(&format!("/schemas/ids/{id1}")).1["schema"], V1);
    let (status, missing) = get("/schemas/ids/999");
    assert_eq!((status, missing["error_code"].as_u64()), (404, Some(40403)));
}
