//! Protobuf end to end: unframed with a .proto file (the seed's transaction events) and framed
//! for the Schema Registry, into typed Parquet read back value by value.

mod common;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use common::*;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use runner::embedded::EmbeddedKafka;
use runner::registry::SchemaType;
use std::sync::Arc;

const PROTO: &str = r#"
syntax = "proto3";
package bank;
import "google/protobuf/timestamp.proto";

message Transaction {
  string transaction_id = 1;
  string account_number = 2;
  string transaction_reference = 3;
  google.protobuf.Timestamp transaction_datetime = 4;
  double amount = 5;
  enum Channel { UNKNOWN = 0; WEB = 1; BRANCH = 2; }
  Channel channel = 6;
  repeated string tags = 7;
  map<string, int64> limits = 8;
  Address address = 9;
  optional string note = 10;
  map<string, Address> branches = 11;
}

message Address {
  string city = 1;
  int32 zip = 2;
}
"#;

fn write_proto(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("transaction.proto");
    std::fs::write(&file, PROTO).unwrap();
    file
}

fn descriptor(file: &std::path::Path, name: &str) -> MessageDescriptor {
    let pool = protox::compile([file.file_name().unwrap()], [file.parent().unwrap()]).unwrap();
    let pool = prost_reflect::DescriptorPool::from_file_descriptor_set(pool).unwrap();
    pool.get_message_by_name(name).unwrap()
}

fn transaction(d: &MessageDescriptor, i: i64) -> Vec<u8> {
    let mut m = DynamicMessage::new(d.clone());
    m.set_field_by_name("transaction_id", Value::String(format!("tx{i}")));
    m.set_field_by_name("account_number", Value::String(format!("ACC{}", i % 3)));
    m.set_field_by_name("transaction_reference", Value::String(format!("ref{i}")));
    let ts_desc = d.get_field_by_name("transaction_datetime").unwrap();
    let prost_reflect::Kind::Message(ts_desc) = ts_desc.kind() else {
        panic!()
    };
    let mut ts = DynamicMessage::new(ts_desc);
    ts.set_field_by_name("seconds", Value::I64(1_795_384_800 + i));
    ts.set_field_by_name("nanos", Value::I32(123_456_789));
    m.set_field_by_name("transaction_datetime", Value::Message(ts));
    m.set_field_by_name("amount", Value::F64(i as f64 * 1.5));
    m.set_field_by_name("channel", Value::EnumNumber((i % 3) as i32));
    let tags = (0..i % 3).map(|t| Value::String(format!("t{t}"))).collect();
    m.set_field_by_name("tags", Value::List(tags));
    let limits = [(
        prost_reflect::MapKey::String("daily".into()),
        Value::I64(i * 10),
    )]
    .into();
    m.set_field_by_name("limits", Value::Map(limits));
    if i % 2 == 0 {
        let address = d.parent_pool().get_message_by_name("bank.Address").unwrap();
        let mut a = DynamicMessage::new(address);
        a.set_field_by_name("city", Value::String(format!("city{i}")));
        a.set_field_by_name("zip", Value::I32(1000 + i as i32));
        m.set_field_by_name("address", Value::Message(a));
        m.set_field_by_name("note", Value::String(format!("n{i}")));
    }
    // A map of messages: one branch with its address, or (every third) one left empty.
    let address = d.parent_pool().get_message_by_name("bank.Address").unwrap();
    let mut branch = DynamicMessage::new(address);
    if i % 3 != 1 {
        branch.set_field_by_name("city", Value::String(format!("b{i}")));
        branch.set_field_by_name("zip", Value::I32(i as i32));
    }
    let branches = [(
        prost_reflect::MapKey::String(format!("branch{}", i % 2)),
        Value::Message(branch),
    )]
    .into();
    m.set_field_by_name("branches", Value::Map(branches));
    m.encode_to_vec()
}

fn text(array: &Arc<dyn Array>, row: usize) -> String {
    let array = arrow::compute::cast(array, &DataType::Utf8).unwrap();
    array.as_string::<i32>().value(row).to_string()
}

/// Checks every value of the exported transactions with ids in `ids`.
fn check_transactions(batches: &[RecordBatch], ids: &[i64]) {
    let mut seen = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let id = text(column(batch, "transaction_id"), row);
            let i: i64 = id[2..].parse().unwrap();
            seen.push(i);
            assert_eq!(
                text(column(batch, "account_number"), row),
                format!("ACC{}", i % 3)
            );
            let at = column(batch, "transaction_datetime");
            assert_eq!(
                at.data_type(),
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            );
            let micros = at.as_primitive::<TimestampMicrosecondType>().value(row);
            assert_eq!(micros, (1_795_384_800 + i) * 1_000_000 + 123_456);
            assert_eq!(
                column(batch, "amount")
                    .as_primitive::<Float64Type>()
                    .value(row),
                i as f64 * 1.5
            );
            assert_eq!(
                text(column(batch, "channel"), row),
                ["UNKNOWN", "WEB", "BRANCH"][(i % 3) as usize]
            );
            let tags = column(batch, "tags").as_list::<i32>().value(row);
            assert_eq!(
                tags.len() as i64,
                i % 3,
                "tx{i}: tags, empty lists included"
            );
            let limits = column(batch, "limits").as_map().value(row);
            assert_eq!(
                limits.column(1).as_primitive::<Int64Type>().value(0),
                i * 10
            );
            let address = column(batch, "address").as_struct();
            assert_eq!(
                address.is_null(row),
                i % 2 != 0,
                "tx{i}: unset message is null"
            );
            if i % 2 == 0 {
                let zip = address
                    .column_by_name("zip")
                    .unwrap()
                    .as_primitive::<Int32Type>();
                assert_eq!(zip.value(row), 1000 + i as i32);
            }
            assert_eq!(
                column(batch, "note").is_null(row),
                i % 2 != 0,
                "tx{i}: optional"
            );
            let branches = column(batch, "branches").as_map().value(row);
            assert_eq!(branches.len(), 1, "tx{i}: one branch");
            assert_eq!(
                branches.column(0).as_string::<i32>().value(0),
                format!("branch{}", i % 2)
            );
            let branch = branches.column(1).as_struct();
            assert!(!branch.is_null(0), "tx{i}: an empty message is not null");
            let (city, zip) = match i % 3 {
                1 => (String::new(), 0),
                _ => (format!("b{i}"), i as i32),
            };
            assert_eq!(text(branch.column_by_name("city").unwrap(), 0), city);
            let zips = branch.column_by_name("zip").unwrap();
            assert_eq!(zips.as_primitive::<Int32Type>().value(0), zip);
        }
    }
    seen.sort();
    assert_eq!(seen, ids);
}

#[test]
fn unframed_transactions_with_a_proto_file_become_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let proto = write_proto(dir.path());
    let d = descriptor(&proto, "bank.Transaction");
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("transactions", 1).unwrap();
    let mut values: Vec<Vec<u8>> = (0..20).map(|i| transaction(&d, i)).collect();
    values.insert(7, vec![0xff, 0xff, 0xff]);
    kafka
        .produce("transactions", values.into_iter().map(record))
        .unwrap();

    let rt = runtime();
    let out = tempfile::tempdir().unwrap();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(serde_json::json!({
        "topic": "transactions", "format": "protobuf",
        "schema_file": proto, "message": "bank.Transaction"
    }));
    let outcomes = run(&ctx, &[t]);
    let summary = outcomes[0].result.as_ref().unwrap();
    assert_eq!((summary.records, summary.dead_letters), (20, 1));
    check_transactions(
        &batches(out.path(), "transactions"),
        &(0..20).collect::<Vec<_>>(),
    );
    let dead_dir = out.path().join("_dead_letters");
    assert_eq!(offsets_of(&batches(&dead_dir, "transactions")), [(0, 7)]);
    let errors = column_strings(&dead_dir, "transactions", "error");
    assert!(
        errors[0]
            .as_deref()
            .unwrap()
            .contains("not a valid bank.Transaction message"),
        "{errors:?}"
    );
}

#[test]
fn framed_protobuf_resolves_message_indexes_through_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let proto = write_proto(dir.path());
    let d = descriptor(&proto, "bank.Transaction");
    let env = WithRegistry::start("tx");
    let (ctx, kafka, out, registry) = (&env.ctx, &env.kafka, &env.out, &env.registry);
    let id = registry
        .register("tx-value", SchemaType::Protobuf, PROTO)
        .unwrap();

    let header = |indexes: &[u8]| {
        let mut h = vec![0u8];
        h.extend(id.to_be_bytes());
        h.extend(indexes);
        h
    };
    // Offsets 0-9: Transaction (index shorthand 0); 10: Address (indexes [1]); 11-14: Transaction.
    let mut values: Vec<Vec<u8>> = (0..10)
        .map(|i| [header(&[0]), transaction(&d, i)].concat())
        .collect();
    let address = d.parent_pool().get_message_by_name("bank.Address").unwrap();
    let mut a = DynamicMessage::new(address);
    a.set_field_by_name("city", Value::String("Lyon".into()));
    values.push([header(&[2, 2]), a.encode_to_vec()].concat());
    values.extend((11..15).map(|i| [header(&[0]), transaction(&d, i)].concat()));
    kafka.produce("tx", values.into_iter().map(record)).unwrap();

    let t = topic(serde_json::json!({"topic": "tx", "format": "protobuf"}));
    let outcomes = run(ctx, &[t]);
    assert_eq!(outcomes[0].result.as_ref().unwrap().records, 15);
    let all = batches(out.path(), "tx");
    let (transactions, addresses): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|b| b.column_by_name("transaction_id").is_some());
    let ids: Vec<i64> = (0..10).chain(11..15).collect();
    check_transactions(&transactions, &ids);
    assert_eq!(addresses.len(), 1);
    assert_eq!(text(column(&addresses[0], "city"), 0), "Lyon");
    assert_eq!(
        addresses[0]
            .column_by_name("kafka_offset")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        10
    );
}

#[test]
fn framed_protobuf_versions_split_files_and_an_unmappable_schema_sets_its_records_aside() {
    const V1: &str = "syntax = \"proto3\"; message Order { int64 id = 1; }";
    const V2: &str = "syntax = \"proto3\"; message Order { int64 id = 1; string shop = 2; }";
    const TREE: &str = "syntax = \"proto3\"; message Node { int64 id = 1; Node child = 2; }";
    let env = WithRegistry::start("orders");
    let ids: Vec<u32> = [V1, V2, TREE]
        .iter()
        .map(|p| {
            env.registry
                .register("orders-value", SchemaType::Protobuf, p)
                .unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let message = |proto: &str, name: &str| {
        std::fs::write(dir.path().join("m.proto"), proto).unwrap();
        descriptor(&dir.path().join("m.proto"), name)
    };
    let (v1, v2, tree) = (
        message(V1, "Order"),
        message(V2, "Order"),
        message(TREE, "Node"),
    );
    let encode = |d: &MessageDescriptor, id: u32, i: i64| {
        let mut m = DynamicMessage::new(d.clone());
        m.set_field_by_name("id", Value::I64(i));
        if d.get_field_by_name("shop").is_some() {
            m.set_field_by_name("shop", Value::String(format!("shop{i}")));
        }
        [
            vec![0u8],
            id.to_be_bytes().to_vec(),
            vec![0u8],
            m.encode_to_vec(),
        ]
        .concat()
    };
    // Offsets 0-4: v1; 5-9: v2; 10: a recursive message, which has no column form.
    let values = (0..5)
        .map(|i| encode(&v1, ids[0], i))
        .chain((5..10).map(|i| encode(&v2, ids[1], i)))
        .chain([encode(&tree, ids[2], 10)]);
    env.kafka.produce("orders", values.map(record)).unwrap();

    let t = topic(serde_json::json!({"topic": "orders", "format": "protobuf"}));
    let outcomes = run(&env.ctx, &[t]);
    let summary = outcomes[0].result.as_ref().unwrap();
    assert_eq!((summary.records, summary.dead_letters), (10, 1));
    let files = parquet_files(&env.out.path().join("orders"));
    assert_eq!(files.len(), 2, "one file per schema version: {files:?}");
    let exported = column_strings(env.out.path(), "orders", "kafka_offset");
    assert_eq!(exported.len(), 10);
    let dead_dir = env.out.path().join("_dead_letters");
    assert_eq!(offsets_of(&batches(&dead_dir, "orders")), [(0, 10)]);
    let errors = column_strings(&dead_dir, "orders", "error");
    assert!(
        errors[0]
            .as_deref()
            .unwrap()
            .contains("cannot be mapped to columns"),
        "{errors:?}"
    );
}
