//! Records for each decoder: JSON (inferred), Avro with a schema file, Protobuf with a
//! `.proto`, a header-typed topic. The first byte picks the decoder; the rest is split into
//! records at 0xFF bytes. Decoding answers rows, dead letters or an error, never a panic.
#![no_main]

use arrow::array::BinaryArray;
use libfuzzer_sys::fuzz_target;
use runner::config::TopicConfig;
use runner::decode::Decoder;
use runner::read::RawBatch;
use std::sync::OnceLock;

const AVRO: &str = include_str!("../schemas/p.avsc");
const PROTO: &str = include_str!("../schemas/m.proto");

fn topics() -> &'static Vec<TopicConfig> {
    static TOPICS: OnceLock<(tempfile::TempDir, Vec<TopicConfig>)> = OnceLock::new();
    &TOPICS
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temp dir");
            let avsc = dir.path().join("p.avsc");
            let proto = dir.path().join("m.proto");
            std::fs::write(&avsc, AVRO).expect("schema");
            std::fs::write(&proto, PROTO).expect("proto");
            let topic = |json: serde_json::Value| -> TopicConfig {
                serde_json::from_value(json).expect("a topic")
            };
            let topics = vec![
                topic(serde_json::json!({"topic": "j", "format": "json"})),
                topic(serde_json::json!({"topic": "a", "format": "avro", "schema_file": avsc})),
                topic(serde_json::json!({"topic": "p", "format": "protobuf", "schema_file": proto, "message": "f.M"})),
                topic(serde_json::json!({"topic": "s", "format": "string", "key_format": "json"})),
            ];
            (dir, topics)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let topics = topics();
    let topic = &topics[usize::from(which) % topics.len()];
    let records: Vec<&[u8]> = body.split(|b| *b == 0xFF).collect();
    let n = records.len();
    let batch = RawBatch {
        partition: 0,
        offsets: (0..n as i64).collect(),
        timestamps: vec![Some(0); n],
        keys: BinaryArray::from_iter(records.iter().map(|r| Some(*r))),
        values: BinaryArray::from_iter(records.iter().map(|r| Some(*r))),
        next_offset: n as i64,
        last: true,
        types: None,
        headers: None,
    };
    let mut decoder = Decoder::new(topic, None);
    if let Ok(decoded) = decoder.decode(&batch) {
        let _ = runner::records::from_decoded(&topic.topic, &batch, &decoded);
    }
});
