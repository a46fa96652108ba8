//! Decode throughput on one core for a realistic 20-field record: `cargo bench --bench decode`.
//!
//! Builds DECODE_RECORDS (default 200,000) records once per format, then times runner's decoder
//! (RawBatch of 8,192 records to an Arrow RecordBatch with metadata columns) for JSON, Avro
//! (arrow-avro, Schema Registry framing) and Protobuf (unframed: the 20-field message, and the
//! seeds' `bank.Transaction` with its nested Timestamp), plus apache-avro decoding the same Avro
//! bodies into its generic values, for comparison.

#[allow(dead_code)]
#[path = "support/fixtures.rs"]
mod fixtures;

use arrow::array::BinaryBuilder;
use fixtures::{AVRO, PROTO, Values};
use runner::read::RawBatch;
use runner::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

const BATCH: usize = 8192;

fn batches(values: &[Vec<u8>]) -> Vec<RawBatch> {
    values
        .chunks(BATCH)
        .enumerate()
        .map(|(n, chunk)| {
            let (mut keys, mut vals) = (BinaryBuilder::new(), BinaryBuilder::new());
            for v in chunk {
                keys.append_null();
                vals.append_value(v);
            }
            let first = (n * BATCH) as i64;
            RawBatch {
                partition: 0,
                offsets: (first..first + chunk.len() as i64).collect(),
                timestamps: vec![Some(1_795_384_800_000); chunk.len()],
                keys: keys.finish(),
                values: vals.finish(),
                next_offset: first + chunk.len() as i64,
                last: false,
                types: None,
                headers: None,
            }
        })
        .collect()
}

fn time(name: &str, values: &[Vec<u8>], run: impl FnOnce() -> usize) {
    let bytes: usize = values.iter().map(Vec::len).sum();
    let started = Instant::now();
    let rows = run();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(rows, values.len(), "{name}: every record decoded");
    println!(
        "{name:<34} {:>10.0} records/s {:>7.1} MB/s  ({} records, {:.0} bytes each)",
        rows as f64 / secs,
        bytes as f64 / 1e6 / secs,
        rows,
        bytes as f64 / rows as f64
    );
}

fn decode_all(
    topic: serde_json::Value,
    registry: Option<Arc<Registry>>,
    raw: &[RawBatch],
) -> usize {
    let topic: runner::config::TopicConfig = serde_json::from_value(topic).unwrap();
    let mut decoder = runner::decode::Decoder::new(&topic, registry);
    raw.iter()
        .map(|b| {
            let d = decoder.decode(b).unwrap();
            assert!(d.dead.is_none());
            d.rows.iter().map(|r| r.num_rows()).sum::<usize>()
        })
        .sum()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("DECODE_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_server, registry) = fixtures::registry(&rt);
    let values = Values::new(&registry, "bench-value");
    let avro_schema = apache_avro::Schema::parse_str(AVRO).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.proto"), PROTO).unwrap();

    let json_values: Vec<Vec<u8>> = (0..n).map(|i| values.encode("json", i)).collect();
    let avro_bodies: Vec<Vec<u8>> = (0..n).map(|i| values.avro_body(i)).collect();
    let avro_values: Vec<Vec<u8>> = (0..n).map(|i| values.encode("avro", i)).collect();
    let proto_values: Vec<Vec<u8>> = (0..n).map(|i| values.encode("protobuf", i)).collect();

    let json_raw = batches(&json_values);
    time("json (arrow-json)", &json_values, || {
        decode_all(
            serde_json::json!({"topic": "b", "format": "json"}),
            None,
            &json_raw,
        )
    });
    let avro_raw = batches(&avro_values);
    time("avro (arrow-avro, framed)", &avro_values, || {
        decode_all(
            serde_json::json!({"topic": "b", "format": "avro"}),
            Some(registry.clone()),
            &avro_raw,
        )
    });
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&avro_schema)
        .build()
        .unwrap();
    time(
        "avro (apache-avro to Value, no Arrow)",
        &avro_bodies,
        || {
            avro_bodies
                .iter()
                .map(|b| {
                    reader.read_value(&mut &b[..]).unwrap();
                    1
                })
                .sum()
        },
    );
    let proto_raw = batches(&proto_values);
    let proto_file = dir.path().join("p.proto");
    time("protobuf (from the wire)", &proto_values, || {
        decode_all(
            serde_json::json!({"topic": "b", "format": "protobuf", "schema_file": proto_file, "message": "Payment"}),
            None,
            &proto_raw,
        )
    });
    let transaction = fixtures::TRANSACTION_PROTO;
    let tx_values: Vec<Vec<u8>> = (0..n).map(|i| values.encode("transaction", i)).collect();
    let tx_raw = batches(&tx_values);
    time("protobuf, Transaction + Timestamp", &tx_values, || {
        decode_all(
            serde_json::json!({"topic": "b", "format": "protobuf", "schema_file": transaction, "message": "bank.Transaction"}),
            None,
            &tx_raw,
        )
    });
}
