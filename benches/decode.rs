//! Decode throughput on one core for a realistic 20-field record: `cargo bench --bench decode`.
//!
//! Builds DECODE_RECORDS (default 200,000) records once per format, then times runner's decoder
//! (RawBatch of 8,192 records to an Arrow RecordBatch with metadata columns) for JSON (and
//! arrow-json's decoder alone, which read every JSON record before), Avro
//! (arrow-avro, Schema Registry framing) and Protobuf (unframed: the 20-field message, and the
//! seeds' `bank.Transaction` with its nested Timestamp, maps of strings and of messages), plus
//! apache-avro decoding the same Avro bodies into its generic values, for comparison.

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
    // One core: the decoders spread a batch's chunks over rayon's threads.
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap();
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
    time("json", &json_values, || {
        decode_all(
            serde_json::json!({"topic": "b", "format": "json"}),
            None,
            &json_raw,
        )
    });
    // The build before read every record with arrow-json; its decoder alone, for comparison.
    let schema = {
        let mut d = runner::decode::Decoder::new(
            &serde_json::from_value(serde_json::json!({"topic": "b", "format": "json"})).unwrap(),
            None,
        );
        d.decode(&json_raw[0]).unwrap().rows[0].schema()
    };
    let payload = Arc::new(arrow::datatypes::Schema::new(
        schema.fields()[runner::decode::METADATA_COLUMNS.len()..].to_vec(),
    ));
    time("json (arrow-json alone, no metadata)", &json_values, || {
        json_raw
            .iter()
            .map(|b| {
                let mut decoder = arrow::json::ReaderBuilder::new(payload.clone())
                    .with_batch_size(BATCH)
                    .with_strict_mode(true)
                    .build_decoder()
                    .unwrap();
                for v in b.values.iter().flatten() {
                    decoder.decode(v).unwrap();
                    decoder.decode(b"\n").unwrap();
                }
                decoder.flush().unwrap().unwrap().num_rows()
            })
            .sum()
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
    // A type with a map of strings (labels), as event schemas often carry, and one with a map
    // whose values are messages: places by role, each with a position and a name.
    let tagged = "syntax = \"proto3\"; message Tagged { string id = 1; int64 at = 2; \
                  map<string, string> labels = 3; }";
    let tagged_values: Vec<Vec<u8>> = (0..n).map(tagged_message).collect();
    time_proto(
        "protobuf, map<string, string>",
        dir.path(),
        tagged,
        "Tagged",
        &tagged_values,
    );
    let trip = "syntax = \"proto3\"; message Place { double lat = 1; double lon = 2; \
                string name = 3; } message Trip { string id = 1; map<string, Place> places = 2; }";
    let trips: Vec<Vec<u8>> = (0..n).map(trip_message).collect();
    time_proto(
        "protobuf, map<string, Place>",
        dir.path(),
        trip,
        "Trip",
        &trips,
    );
}

/// Times the decoding of unframed `values` of `message`, whose .proto source is `proto`.
fn time_proto(name: &str, dir: &std::path::Path, proto: &str, message: &str, values: &[Vec<u8>]) {
    let file = dir.join(format!("{message}.proto"));
    std::fs::write(&file, proto).unwrap();
    let raw = batches(values);
    time(name, values, || {
        decode_all(
            serde_json::json!({"topic": "b", "format": "protobuf", "schema_file": file, "message": message}),
            None,
            &raw,
        )
    });
}

/// A Trip message: an id and three places (pickup, stop, dropoff), written by hand.
fn trip_message(i: usize) -> Vec<u8> {
    let field =
        |number: u8, body: &[u8]| [&[(number << 3) | 2, body.len() as u8][..], body].concat();
    let double = |number: u8, v: f64| [&[(number << 3) | 1][..], &v.to_le_bytes()].concat();
    let mut out = field(1, format!("trip-{i:08}").as_bytes());
    for (n, role) in ["pickup", "stop", "dropoff"].iter().enumerate() {
        let place = [
            double(1, 48.85 + (i % 100) as f64 / 1e3),
            double(2, 2.35 + n as f64 / 1e2),
            field(3, format!("{role} {}", i % 50).as_bytes()),
        ]
        .concat();
        out.extend(field(
            2,
            &[field(1, role.as_bytes()), field(2, &place)].concat(),
        ));
    }
    out
}

/// A Tagged message: an id, a time and three labels, written by hand (fields 1, 2, 3).
fn tagged_message(i: usize) -> Vec<u8> {
    let field =
        |number: u8, body: &[u8]| [&[(number << 3) | 2, body.len() as u8][..], body].concat();
    let mut out = field(1, format!("evt-{i:08}").as_bytes());
    out.push(2 << 3);
    prost::encoding::encode_varint(1_795_384_800_000 + i as u64, &mut out);
    for (k, v) in [("region", "eu-west"), ("tier", "gold"), ("source", "web")] {
        let entry = [
            field(1, k.as_bytes()),
            field(2, format!("{v}-{}", i % 7).as_bytes()),
        ]
        .concat();
        out.extend(field(3, &entry));
    }
    out
}
