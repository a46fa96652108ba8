//! Helpers shared by the integration tests: a run context on a temp folder, numbered records,
//! and reading every exported Parquet row back.
#![allow(dead_code)]

pub mod azurite;
pub mod console;
pub mod fault_proxy;
pub mod netns;
pub mod pki;
pub mod tansu;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use runner::config::{Config, Connections, TopicConfig};
use runner::embedded::{EmbeddedKafka, Record};
use runner::jobs::{RunContext, RunOptions, TopicOutcome};
use runner::sink::Sink;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn topic(json: serde_json::Value) -> TopicConfig {
    serde_json::from_value(json).expect("topic config")
}

pub fn context(bootstrap: &str, out: &Path, rt: &tokio::runtime::Runtime) -> RunContext {
    let connections: Connections =
        serde_json::from_value(serde_json::json!({ "bootstrap_servers": bootstrap }))
            .expect("connections");
    RunContext {
        processors: Default::default(),
        config: Config {
            dir: out.to_path_buf(),
            connections,
            sink: runner::sink::SinkConfig::local_folder(out),
            topics: Vec::new(),
            jobs: Vec::new(),
        },
        sink: Arc::new(Sink::local(out, rt.handle().clone()).expect("sink")),
        registry: None,
        options: RunOptions {
            concurrency: 2,
            batch_rows: 1000,
            kafka_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            ..RunOptions::default()
        },
    }
}

/// `count` records to `partition` whose JSON value names partition and sequence number.
pub fn numbered(partition: i32, first: usize, count: usize) -> impl Iterator<Item = Record> {
    (first..first + count).map(move |seq| Record {
        partition: Some(partition),
        key: Some(format!("k{seq}").into_bytes()),
        value: Some(
            serde_json::json!({"partition": partition, "seq": seq, "amount": seq as f64 / 4.0})
                .to_string()
                .into_bytes(),
        ),
        timestamp: None,
    })
}

/// `count` records to `partition`: `{"seq", "bucket": seq % buckets}`, timestamped one
/// minute apart from `first_ms`.
pub fn bucketed(
    partition: i32,
    count: usize,
    buckets: usize,
    first_ms: i64,
) -> impl Iterator<Item = Record> {
    (0..count).map(move |seq| Record {
        partition: Some(partition),
        key: None,
        value: Some(
            serde_json::json!({"seq": seq, "bucket": seq % buckets})
                .to_string()
                .into_bytes(),
        ),
        timestamp: Some(first_ms + seq as i64 * 60_000),
    })
}

pub fn run(ctx: &RunContext, topics: &[TopicConfig]) -> Vec<TopicOutcome> {
    let outcomes = runner::jobs::run_once(ctx, topics);
    for o in &outcomes {
        if let Err(e) = &o.result {
            panic!("topic {} failed: {e}", o.topic);
        }
    }
    outcomes
}

pub fn records(outcomes: &[TopicOutcome]) -> u64 {
    outcomes
        .iter()
        .map(|o| o.result.as_ref().map(|s| s.records).unwrap_or(0))
        .sum()
}

pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every record batch of one Parquet file.
pub fn file_batches(file: &Path) -> Vec<arrow::array::RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// Every record batch of a topic's output, in file order.
pub fn batches(out: &Path, topic: &str) -> Vec<arrow::array::RecordBatch> {
    parquet_files(&out.join(topic))
        .iter()
        .flat_map(|file| file_batches(file))
        .collect()
}

/// A mock cluster with `topic` of `partitions`, each holding `per_partition` numbered records.
pub fn kafka_with(topic: &str, partitions: i32, per_partition: usize) -> EmbeddedKafka {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic(topic, partitions).unwrap();
    for p in 0..partitions {
        kafka.produce(topic, numbered(p, 0, per_partition)).unwrap();
    }
    kafka
}

/// Every record batch of the Parquet objects under `prefix` in a sink, in name order.
pub fn sink_batches(sink: &Sink, prefix: &str) -> Vec<arrow::array::RecordBatch> {
    let mut paths = sink.list(&prefix.into()).expect("list the sink");
    paths.retain(|p| p.as_ref().ends_with(".parquet"));
    paths.sort();
    paths
        .iter()
        .flat_map(|path| {
            let bytes = sink.get(path).expect("read object").expect("object exists");
            ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap()
                .map(|b| b.unwrap())
        })
        .collect()
}

/// Every (partition, written offset) of a topic's output, in file order.
pub fn exported(out: &Path, topic: &str) -> Vec<(i32, i64)> {
    offsets_of(&batches(out, topic))
}

/// Every (partition, written offset) of some batches.
pub fn offsets_of(batches: &[arrow::array::RecordBatch]) -> Vec<(i32, i64)> {
    let mut rows = Vec::new();
    for batch in batches {
        let partitions = batch.column_by_name("kafka_partition").unwrap();
        let offsets = batch.column_by_name("kafka_offset").unwrap();
        let partitions = partitions.as_primitive::<Int32Type>();
        let offsets = offsets.as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            rows.push((partitions.value(i), offsets.value(i)));
        }
    }
    rows
}

/// Asserts the output holds exactly offsets `[from, to)` of each listed partition, once each.
pub fn assert_exactly(out: &Path, topic: &str, expected: &[(i32, std::ops::Range<i64>)]) {
    assert_rows_exactly(exported(out, topic), topic, expected);
}

/// Asserts `rows` hold exactly offsets `[from, to)` of each listed partition, once each.
pub fn assert_rows_exactly(
    mut rows: Vec<(i32, i64)>,
    topic: &str,
    expected: &[(i32, std::ops::Range<i64>)],
) {
    let total = rows.len();
    rows.sort();
    rows.dedup();
    assert_eq!(
        total,
        rows.len(),
        "topic {topic}: duplicated records in the output"
    );
    let mut want: Vec<(i32, i64)> = expected
        .iter()
        .flat_map(|(p, r)| r.clone().map(move |o| (*p, o)))
        .collect();
    want.sort();
    let by_partition = |v: &[(i32, i64)]| {
        let mut m: BTreeMap<i32, usize> = BTreeMap::new();
        for (p, _) in v {
            *m.entry(*p).or_default() += 1;
        }
        m
    };
    assert_eq!(
        by_partition(&rows),
        by_partition(&want),
        "topic {topic}: records per partition"
    );
    assert_eq!(rows, want, "topic {topic}: exported offsets");
}

/// The column of one name, as strings, over all files of a topic.
pub fn column_strings(out: &Path, topic: &str, column: &str) -> Vec<Option<String>> {
    let mut values = Vec::new();
    for batch in batches(out, topic) {
        let col = batch.column_by_name(column).unwrap();
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).unwrap();
        let col = col.as_string::<i32>();
        for i in 0..col.len() {
            values.push(col.is_valid(i).then(|| col.value(i).to_string()));
        }
    }
    values
}

/// The mock cluster with one single-partition topic, the in-process Schema Registry, and a run
/// context that uses both. Fields drop in order, the runtime last.
pub struct WithRegistry {
    pub ctx: RunContext,
    pub registry: Arc<runner::registry::Registry>,
    pub kafka: EmbeddedKafka,
    pub out: tempfile::TempDir,
    pub server: runner::registry::EmbeddedRegistry,
    pub rt: tokio::runtime::Runtime,
}

impl WithRegistry {
    pub fn start(topic: &str) -> WithRegistry {
        let rt = runtime();
        let server = runner::registry::EmbeddedRegistry::start(rt.handle()).unwrap();
        let kafka = EmbeddedKafka::start().unwrap();
        kafka.create_topic(topic, 1).unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
        ctx.config.connections.schema_registry_url = Some(server.url().to_string());
        let registry = runner::registry::Registry::from_connections(
            &ctx.config.connections,
            rt.handle().clone(),
        )
        .unwrap()
        .unwrap();
        let registry = Arc::new(registry);
        ctx.registry = Some(registry.clone());
        WithRegistry {
            ctx,
            registry,
            kafka,
            out,
            server,
            rt,
        }
    }
}

/// A record for partition 0 with this value.
pub fn record(value: Vec<u8>) -> Record {
    Record {
        partition: Some(0),
        value: Some(value),
        ..Default::default()
    }
}

/// The column of a batch by name; panics naming the schema when it is missing.
pub fn column<'a>(batch: &'a arrow::array::RecordBatch, name: &str) -> &'a arrow::array::ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", batch.schema()))
}

/// Writes connections.json and topics.json into `dir`.
pub fn write_config(dir: &Path, connections: serde_json::Value, topics: serde_json::Value) {
    std::fs::write(dir.join("connections.json"), connections.to_string()).unwrap();
    std::fs::write(dir.join("topics.json"), topics.to_string()).unwrap();
}

/// The `runner` binary with `--config-dir dir`; the caller adds the command.
pub fn runner_command(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_runner"));
    cmd.args(["--config-dir", &dir.to_string_lossy()]);
    cmd
}

/// Every record of `topic` from the beginning as (key, value), read until `expected` arrive
/// (or 30 s pass).
pub fn consume_all(bootstrap: &str, topic: &str, expected: usize) -> Vec<(String, String)> {
    consume_until(bootstrap, topic, 30, |seen| seen.len() >= expected)
}

/// Every record of `topic` from the beginning as (key, value), read by a group of its own
/// until `done` says so or `seconds` pass.
pub fn consume_until(
    bootstrap: &str,
    topic: &str,
    seconds: u64,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("reader-{topic}-{}", uuid::Uuid::new_v4()),
        )
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while !done(&seen) && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.push((text(m.key()), text(m.payload())));
        }
    }
    seen
}

/// Two writers of one progress record: different partitions merge, the same partition
/// conflicts. Shared by the local-folder and Azurite tests of conditional writes.
pub fn progress_writers_merge_or_conflict(sink: Arc<Sink>) {
    use runner::progress::{Progress, ProgressError};
    use runner::write::Sealed;
    let sealed = |partition, next_offset| Sealed {
        partition,
        start: 0,
        next_offset,
        files: Vec::new(),
    };
    let mut a = Progress::load(sink.clone(), "g", "orders").expect("load");
    let mut b = Progress::load(sink.clone(), "g", "orders").expect("load");
    a.commit(sealed(0, 10)).expect("first save");
    // b's record is stale: its save finds a's and keeps partition 0 as a wrote it.
    b.commit(sealed(1, 20)).expect("merged save");
    a.commit(sealed(0, 15)).expect("a again, after b");
    let reread = Progress::load(sink.clone(), "g", "orders").expect("load");
    assert_eq!(reread.offsets(), BTreeMap::from([(0, 15), (1, 20)]));
    // Both move partition 1: the second finds it moved under it and stops.
    let mut c = Progress::load(sink.clone(), "g", "orders").expect("load");
    b.commit(sealed(1, 30)).expect("b owns partition 1");
    match c.commit(sealed(1, 25)) {
        Err(ProgressError::Conflict {
            partition, theirs, ..
        }) => assert_eq!((partition, theirs), (1, 30)),
        Err(e) => panic!("expected a conflict, got {e}"),
        Ok(_) => panic!("expected a conflict, the save went through"),
    }
    let reread = Progress::load(sink, "g", "orders").expect("load");
    assert_eq!(reread.offsets(), BTreeMap::from([(0, 15), (1, 30)]));
}

/// A config folder whose connections.json points at `kafka` and whose topics.json is `topics`.
pub fn config_for(kafka: &EmbeddedKafka, topics: serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write_config(
        dir.path(),
        serde_json::json!({"bootstrap_servers": kafka.bootstrap_servers()}),
        topics,
    );
    dir
}

/// Asserts that the files of `topic` hold exactly the offsets its progress record says are
/// done (group `runner.<topic>`), each once: nothing partial, nothing ahead of the data.
pub fn assert_files_match_progress(out: &Path, topic: &str, partitions: i32) {
    let record = out.join(format!("_runner/progress/runner.{topic}/{topic}.json"));
    let progress: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).expect("progress record")).expect("json");
    let next = |p: i32| {
        progress["partitions"][p.to_string()]["next_offset"]
            .as_i64()
            .unwrap_or(0)
    };
    let expected: Vec<_> = (0..partitions).map(|p| (p, 0..next(p))).collect();
    assert_rows_exactly(exported(out, topic), topic, &expected);
}

/// Produces JSON values with an `item_type_name` header (none when `type_name` is None).
pub fn produce_typed(bootstrap: &str, topic: &str, records: &[(Option<&str>, serde_json::Value)]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (type_name, value) in records {
        let payload = value.to_string();
        let mut record = BaseRecord::<str, str>::to(topic).payload(&payload).key("k");
        if let Some(t) = type_name {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "item_type_name",
                value: Some(*t),
            }));
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// An Avro record of `schema` framed for the Schema Registry with `id`.
pub fn framed_avro(
    id: u32,
    schema: &apache_avro::Schema,
    fields: Vec<(String, apache_avro::types::Value)>,
) -> Vec<u8> {
    let mut bytes = vec![0u8];
    bytes.extend(id.to_be_bytes());
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .expect("an Avro writer");
    bytes.extend(
        writer
            .write_value_to_vec(apache_avro::types::Value::Record(fields))
            .expect("a record of the schema"),
    );
    bytes
}

/// topics.json for `shop`, a header-typed topic (seed 003) of two JSON types.
pub fn typed_topic() -> serde_json::Value {
    serde_json::json!([{
        "topic": "shop",
        "type_header": "item_type_name",
        "types": {
            "com.shop.Delivered": {"format": "json"},
            "com.shop.Returned": {"format": "json"}
        }
    }])
}

/// Crash-point tests need runner built with its crash points; without them they fail and say
/// how to run them.
pub fn require_failpoints() {
    #[cfg(not(feature = "failpoints"))]
    panic!(
        "the crash points need a test build with them: run `bash tests/run.sh` (it passes --features failpoints)"
    );
}

/// Of the offsets `0..n` produced to each partition, how many `rows` miss and how many extra
/// copies they hold.
pub fn lost_and_duplicated(
    rows: &[(i32, i64)],
    produced: &std::collections::BTreeMap<i32, usize>,
) -> (usize, usize) {
    let mut seen: std::collections::BTreeMap<(i32, i64), usize> = Default::default();
    for row in rows {
        *seen.entry(*row).or_default() += 1;
    }
    let lost = produced
        .iter()
        .flat_map(|(p, n)| (0..*n as i64).map(move |o| (*p, o)))
        .filter(|k| !seen.contains_key(k))
        .count();
    (lost, seen.values().map(|n| n - 1).sum())
}
