//! `runner produce`: JSON lines and generated transactions, encoded as the topic's format,
//! exported back field by field; unacknowledged records fail the command.

mod common;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use common::tansu::Tansu;
use common::*;
use runner::registry::SchemaType;
use std::path::Path;

fn runner(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = runner_command(dir).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn text(array: &arrow::array::ArrayRef, row: usize) -> String {
    let array = arrow::compute::cast(array, &arrow::datatypes::DataType::Utf8).unwrap();
    array.as_string::<i32>().value(row).to_string()
}

#[test]
fn generated_transactions_in_protobuf_round_trip_field_by_field() {
    let env = WithRegistry::start("transactions");
    let dir = tempfile::tempdir().unwrap();
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/schemas/transaction.proto"
    );
    write_config(
        dir.path(),
        serde_json::json!({"bootstrap_servers": env.kafka.bootstrap_servers()}),
        serde_json::json!([{"topic": "transactions", "format": "protobuf",
            "schema_file": proto, "message": "bank.Transaction"}]),
    );
    let args = [
        "produce",
        "--topic",
        "transactions",
        "--generate",
        "transactions",
        "--count",
        "200",
        "--accounts",
        "5",
    ];
    let (ok, out) = runner(dir.path(), &args);
    assert!(ok, "{out}");
    assert!(
        out.contains("produced 200 records to transactions, all acknowledged"),
        "{out}"
    );

    let t = topic(
        serde_json::json!({"topic": "transactions", "format": "protobuf",
        "schema_file": proto, "message": "bank.Transaction", "key_format": "string"}),
    );
    assert_eq!(records(&run(&env.ctx, &[t])), 200);
    let expected: Vec<serde_json::Value> = runner::produce::transactions(0..200, 5)
        .map(|v| v.unwrap())
        .collect();
    let mut seen = 0;
    for batch in batches(env.out.path(), "transactions") {
        for row in 0..batch.num_rows() {
            let id = text(column(&batch, "transaction_id"), row);
            let i: usize = id[3..].parse().unwrap();
            let want = &expected[i];
            assert_eq!(
                text(column(&batch, "account_number"), row),
                want["account_number"]
            );
            assert_eq!(
                text(column(&batch, "kafka_key"), row),
                want["account_number"],
                "keyed by account"
            );
            assert_eq!(
                text(column(&batch, "transaction_reference"), row),
                want["transaction_reference"]
            );
            let amount = column(&batch, "amount")
                .as_primitive::<Float64Type>()
                .value(row);
            assert_eq!(amount, want["amount"].as_f64().unwrap());
            let at =
                column(&batch, "transaction_datetime").as_primitive::<TimestampMicrosecondType>();
            let want_at = chrono::DateTime::parse_from_rfc3339(
                want["transaction_datetime"].as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(at.value(row), want_at.timestamp_micros());
            seen += 1;
        }
    }
    assert_eq!(seen, 200);
}

#[test]
fn json_lines_are_encoded_as_avro_with_the_latest_registry_schema() {
    let env = WithRegistry::start("payments");
    let schema = r#"{"type": "record", "name": "P", "fields": [
        {"name": "id", "type": "long"}, {"name": "account", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": null}]}"#;
    env.registry
        .register("payments-value", SchemaType::Avro, schema)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        serde_json::json!({"bootstrap_servers": env.kafka.bootstrap_servers(),
            "schema_registry_url": env.server.url()}),
        serde_json::json!([{"topic": "payments", "format": "avro"}]),
    );
    let lines = "{\"id\": 1, \"account\": \"A\", \"note\": \"first\"}\n\n{\"id\": 2, \"account\": \"B\", \"note\": null}\n";
    std::fs::write(dir.path().join("in.jsonl"), lines).unwrap();
    let file = dir.path().join("in.jsonl");
    let (ok, out) = runner(
        dir.path(),
        &[
            "produce",
            "--topic",
            "payments",
            "--file",
            &file.to_string_lossy(),
            "--key-field",
            "account",
        ],
    );
    assert!(ok, "{out}");

    let t =
        topic(serde_json::json!({"topic": "payments", "format": "avro", "key_format": "string"}));
    assert_eq!(records(&run(&env.ctx, &[t])), 2);
    let batch = &batches(env.out.path(), "payments")[0];
    assert_eq!(
        column(batch, "id")
            .as_primitive::<Int64Type>()
            .values()
            .to_vec(),
        [1, 2]
    );
    assert_eq!(text(column(batch, "kafka_key"), 1), "B");
    assert_eq!(text(column(batch, "note"), 0), "first");
    assert!(column(batch, "note").is_null(1));

    std::fs::write(&file, "{\"id\": \"three\"}\n").unwrap();
    let (ok, out) = runner(
        dir.path(),
        &[
            "produce",
            "--topic",
            "payments",
            "--file",
            &file.to_string_lossy(),
        ],
    );
    assert!(!ok);
    assert!(
        out.contains("topic payments, input line 1: does not fit the Avro schema"),
        "{out}"
    );
}

#[test]
fn records_that_are_not_acknowledged_fail_the_command() {
    let broker = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        serde_json::json!({"bootstrap_servers": broker.bootstrap_servers(),
            "kafka_properties": {"message.timeout.ms": "3000"}}),
        serde_json::json!([{"topic": "missing", "format": "json"}]),
    );
    std::fs::write(dir.path().join("in.jsonl"), "{\"a\": 1}\n{\"a\": 2}\n").unwrap();
    let file = dir.path().join("in.jsonl");
    let (ok, out) = runner(
        dir.path(),
        &[
            "produce",
            "--topic",
            "missing",
            "--file",
            &file.to_string_lossy(),
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("of 2 records were not acknowledged"), "{out}");
}
