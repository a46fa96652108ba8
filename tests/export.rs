//! The export job end to end on librdkafka's mock cluster (in process, real protocol).

mod common;

use common::*;
use runner::embedded::EmbeddedKafka;
use serde_json::json;

#[test]
fn fresh_group_exports_everything_and_a_rerun_resumes_from_progress() {
    let kafka = kafka_with("orders", 3, 100);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let topics = [topic(
        json!({"topic": "orders", "group_id": "g1", "format": "json"}),
    )];

    assert_eq!(records(&run(&ctx, &topics)), 300);
    assert_exactly(
        out.path(),
        "orders",
        &[(0, 0..100), (1, 0..100), (2, 0..100)],
    );

    // Nothing new: nothing read, nothing rewritten.
    assert_eq!(records(&run(&ctx, &topics)), 0);

    for p in 0..3 {
        kafka.produce("orders", numbered(p, 100, 50)).unwrap();
    }
    assert_eq!(records(&run(&ctx, &topics)), 150);
    assert_exactly(
        out.path(),
        "orders",
        &[(0, 0..150), (1, 0..150), (2, 0..150)],
    );

    // Progress sits beside the data and was committed to the group for lag tools.
    let progress =
        std::fs::read_to_string(out.path().join("_runner/progress/g1/orders.json")).unwrap();
    let progress: serde_json::Value = serde_json::from_str(&progress).unwrap();
    for p in ["0", "1", "2"] {
        assert_eq!(progress["partitions"][p]["next_offset"], 150);
    }
    assert_eq!(
        committed(&kafka.bootstrap_servers(), "g1", "orders", 3),
        vec![150, 150, 150]
    );
}

#[test]
fn json_fields_become_typed_columns_next_to_kafka_metadata() {
    let kafka = kafka_with("typed", 1, 10);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    run(&ctx, &[topic(json!({"topic": "typed", "format": "json"}))]);
    let file = &parquet_files(&out.path().join("typed"))[0];
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(file).unwrap(),
    )
    .unwrap();
    let schema = reader.schema().clone();
    let types: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect();
    assert_eq!(
        types,
        [
            "kafka_topic:Utf8",
            "kafka_partition:Int32",
            "kafka_offset:Int64",
            "kafka_timestamp:Timestamp(ms, \"UTC\")",
            "kafka_key:Binary",
            "amount:Float64",
            "partition:Int64",
            "seq:Int64",
        ]
    );
    assert_eq!(
        column_strings(out.path(), "typed", "seq"),
        (0..10).map(|i| Some(i.to_string())).collect::<Vec<_>>()
    );
}

#[test]
fn reset_offsets_rereads_from_earliest_and_rewrites_the_same_files() {
    let kafka = kafka_with("reset", 2, 120);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let plain = topic(json!({"topic": "reset", "group_id": "g", "max_records_per_file": 50}));
    run(&ctx, &[plain]);
    let files_before = parquet_files(out.path());
    let reset = topic(
        json!({"topic": "reset", "group_id": "g", "reset_offsets": true, "max_records_per_file": 50}),
    );
    assert_eq!(records(&run(&ctx, &[reset])), 240);
    assert_eq!(parquet_files(out.path()), files_before);
    assert_exactly(out.path(), "reset", &[(0, 0..120), (1, 0..120)]);
}

#[test]
fn starting_offsets_read_only_the_listed_partitions() {
    let kafka = kafka_with("starts", 3, 40);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({"topic": "starts", "starting_offsets": {"0": 10, "2": 35}}));
    assert_eq!(records(&run(&ctx, &[t])), 35);
    assert_exactly(out.path(), "starts", &[(0, 10..40), (2, 35..40)]);
}

#[test]
fn offset_increment_shifts_written_offsets_not_the_read_position() {
    let kafka = kafka_with("shifted", 2, 20);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({"topic": "shifted", "group_id": "g", "offset_increment": {"0": 200}}));
    assert_eq!(records(&run(&ctx, &[t])), 40);
    assert_exactly(out.path(), "shifted", &[(0, 200..220), (1, 0..20)]);
    // Progress holds the real Kafka offsets.
    let progress =
        std::fs::read_to_string(out.path().join("_runner/progress/g/shifted.json")).unwrap();
    assert!(progress.contains("\"next_offset\": 20"), "{progress}");
}

#[test]
fn num_messages_caps_each_run_and_the_next_run_continues() {
    let kafka = kafka_with("capped", 3, 100);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({"topic": "capped", "num_messages": 10}));
    assert_eq!(records(&run(&ctx, std::slice::from_ref(&t))), 10);
    // 10 over 3 partitions: 4, 3, 3 (the remainder goes to the lowest partition).
    assert_exactly(out.path(), "capped", &[(0, 0..4), (1, 0..3), (2, 0..3)]);
    assert_eq!(records(&run(&ctx, &[t])), 10);
    assert_exactly(out.path(), "capped", &[(0, 0..8), (1, 0..6), (2, 0..6)]);
}

#[test]
fn an_empty_topic_finishes_with_nothing_written() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("empty", 2).unwrap();
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let outcomes = run(&ctx, &[topic(json!({"topic": "empty"}))]);
    let summary = outcomes[0].result.as_ref().unwrap();
    assert_eq!((summary.records, summary.files), (0, 0));
    assert!(parquet_files(out.path()).is_empty());
}

#[test]
fn several_topics_run_in_parallel_and_a_failing_one_does_not_stop_the_others() {
    let kafka = kafka_with("a", 2, 30);
    kafka.create_topic("b", 4).unwrap();
    for p in 0..4 {
        kafka.produce("b", numbered(p, 0, 25)).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let topics = [
        topic(json!({"topic": "a", "format": "json"})),
        topic(json!({"topic": "missing"})),
        topic(json!({"topic": "b"})),
    ];
    let outcomes = runner::jobs::run_once(&ctx, &topics);
    assert_eq!(outcomes.len(), 3);
    let error = outcomes[1]
        .result
        .as_ref()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("topic missing does not exist"), "{error}");
    assert_eq!(outcomes[0].result.as_ref().unwrap().records, 60);
    assert_eq!(outcomes[2].result.as_ref().unwrap().records, 100);
    assert_exactly(out.path(), "a", &[(0, 0..30), (1, 0..30)]);
    assert_exactly(
        out.path(),
        "b",
        &[(0, 0..25), (1, 0..25), (2, 0..25), (3, 0..25)],
    );
}

#[test]
fn a_producer_writing_during_the_run_cannot_keep_it_from_ending() {
    let kafka = kafka_with("busy", 2, 500);
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({"topic": "busy", "max_records_per_file": 100}));
    let bootstrap = kafka.bootstrap_servers();
    let producer = std::thread::spawn(move || {
        for round in 0..20 {
            for p in 0..2 {
                runner::embedded::produce(&bootstrap, "busy", numbered(p, 500 + round * 50, 50))
                    .unwrap();
            }
        }
    });
    run(&ctx, std::slice::from_ref(&t));
    producer.join().unwrap();
    run(&ctx, &[t]);
    assert_exactly(out.path(), "busy", &[(0, 0..1500), (1, 0..1500)]);
}

#[test]
fn with_fail_fast_a_record_that_is_not_json_fails_the_topic_and_keeps_progress_before_it() {
    let kafka = kafka_with("bad", 1, 30);
    kafka
        .produce(
            "bad",
            [runner::embedded::Record {
                partition: Some(0),
                key: None,
                value: Some(b"not json".to_vec()),
                timestamp: None,
            }],
        )
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(
        json!({"topic": "bad", "group_id": "g", "format": "json", "max_records_per_file": 10,
               "on_decode_error": "fail"}),
    );
    let outcomes = runner::jobs::run_once(&ctx, &[t]);
    let error = outcomes[0]
        .result
        .as_ref()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("topic bad partition 0 offset 30: not valid JSON"),
        "{error}"
    );
    let rows = exported(out.path(), "bad");
    assert!(rows.iter().all(|(_, o)| *o < 30));
}

#[test]
fn records_that_cannot_be_decoded_become_dead_letters_once_and_the_rest_is_exported() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("mixed", 1).unwrap();
    // Offsets 0..100; every 7th record (7, 14, ...) is not JSON.
    let produced = (0..100).map(|i| runner::embedded::Record {
        partition: Some(0),
        value: Some(if i % 7 == 0 && i > 0 {
            format!("garbage {i}").into_bytes()
        } else {
            json!({"seq": i}).to_string().into_bytes()
        }),
        ..Default::default()
    });
    kafka.produce("mixed", produced).unwrap();
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({"topic": "mixed", "format": "json", "max_records_per_file": 10}));
    let outcomes = run(&ctx, std::slice::from_ref(&t));
    let summary = outcomes[0].result.as_ref().unwrap();
    let bad: Vec<i64> = (1..100).filter(|i| i % 7 == 0).collect();
    assert_eq!(summary.dead_letters, bad.len() as u64);
    assert_eq!(summary.records, 100 - bad.len() as u64);

    let mut good = exported(out.path(), "mixed");
    good.sort();
    let want: Vec<(i32, i64)> = (0..100)
        .filter(|i| !bad.contains(i))
        .map(|o| (0, o))
        .collect();
    assert_eq!(good, want);
    let dead_dir = out.path().join("_dead_letters");
    let mut dead = offsets_of(&batches(&dead_dir, "mixed"));
    dead.sort();
    assert_eq!(dead, bad.iter().map(|o| (0, *o)).collect::<Vec<_>>());
    let errors = column_strings(&dead_dir, "mixed", "error");
    assert!(
        errors
            .iter()
            .all(|e| e.as_deref().unwrap_or("").contains("not valid JSON"))
    );
    let values = column_strings(&dead_dir, "mixed", "value");
    assert_eq!(values[0].as_deref(), Some("garbage 7"));

    // A rerun finds nothing new and writes no dead letter twice.
    assert_eq!(records(&run(&ctx, &[t])), 0);
    assert_eq!(offsets_of(&batches(&dead_dir, "mixed")).len(), bad.len());
}

#[test]
fn keys_decode_with_their_own_format_and_null_keys_stay_null() {
    use arrow::array::{Array, AsArray};
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("keyed", 1).unwrap();
    let produced = (0..30).map(|i| runner::embedded::Record {
        partition: Some(0),
        key: (i % 5 != 0).then(|| {
            json!({"account": format!("A{i}"), "region": "eu"})
                .to_string()
                .into_bytes()
        }),
        value: Some(json!({"seq": i}).to_string().into_bytes()),
        ..Default::default()
    });
    kafka.produce("keyed", produced).unwrap();
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({"topic": "keyed", "format": "json", "key_format": "json"}));
    assert_eq!(records(&run(&ctx, &[t])), 30);
    for batch in batches(out.path(), "keyed") {
        let key = batch.column_by_name("kafka_key").unwrap().as_struct();
        let account = key.column_by_name("account").unwrap();
        let account = arrow::compute::cast(account, &arrow::datatypes::DataType::Utf8).unwrap();
        let seq = batch.column_by_name("seq").unwrap();
        let seq = seq.as_primitive::<arrow::datatypes::Int64Type>();
        for row in 0..batch.num_rows() {
            let i = seq.value(row);
            assert_eq!(
                key.is_null(row),
                i % 5 == 0,
                "record {i}: a null key stays null"
            );
            if i % 5 != 0 {
                assert_eq!(account.as_string::<i32>().value(row), format!("A{i}"));
            }
        }
    }
}

#[test]
fn a_key_that_is_not_text_becomes_a_dead_letter_with_key_format_string() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("texts", 1).unwrap();
    let produced = (0..10).map(|i| runner::embedded::Record {
        partition: Some(0),
        key: Some(if i == 4 {
            vec![0xff, 0xfe]
        } else {
            format!("k{i}").into_bytes()
        }),
        value: Some(format!("v{i}").into_bytes()),
        ..Default::default()
    });
    kafka.produce("texts", produced).unwrap();
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({"topic": "texts", "format": "string", "key_format": "string"}));
    let outcomes = run(&ctx, &[t]);
    assert_eq!(outcomes[0].result.as_ref().unwrap().dead_letters, 1);
    let keys = column_strings(out.path(), "texts", "kafka_key");
    let values = column_strings(out.path(), "texts", "value");
    assert_eq!(keys.len(), 9);
    assert_eq!(keys[0].as_deref(), Some("k0"));
    assert_eq!(values[0].as_deref(), Some("v0"));
    let errors = column_strings(&out.path().join("_dead_letters"), "texts", "error");
    assert_eq!(errors, [Some("key: not valid UTF-8 text".to_string())]);
}

#[test]
fn dead_letters_can_go_to_a_kafka_topic_with_their_origin_in_headers() {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("mixed", 1).unwrap();
    kafka.create_topic("mixed.dlq", 1).unwrap();
    let produced = (0..20).map(|i| runner::embedded::Record {
        partition: Some(0),
        key: Some(format!("k{i}").into_bytes()),
        value: Some(if i == 5 || i == 12 {
            b"not json".to_vec()
        } else {
            json!({"seq": i}).to_string().into_bytes()
        }),
        ..Default::default()
    });
    kafka.produce("mixed", produced).unwrap();
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({"topic": "mixed", "format": "json", "dead_letter_topic": "mixed.dlq"}));
    let outcomes = run(&ctx, &[t]);
    let summary = outcomes[0].result.as_ref().unwrap();
    assert_eq!((summary.records, summary.dead_letters), (18, 2));
    assert!(
        !out.path().join("_dead_letters").exists(),
        "not in the sink as well"
    );

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["mixed.dlq"]).unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while seen.len() < 2 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(std::time::Duration::from_millis(200)) {
            let headers = m.headers().unwrap();
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap()
            };
            assert_eq!(header("runner.topic"), "mixed");
            assert_eq!(header("runner.partition"), "0");
            assert!(header("runner.error").contains("not valid JSON"));
            assert_eq!(m.payload(), Some(&b"not json"[..]));
            seen.push((header("runner.offset"), m.key().map(|k| k.to_vec())));
        }
    }
    assert_eq!(
        seen,
        [
            ("5".to_string(), Some(b"k5".to_vec())),
            ("12".to_string(), Some(b"k12".to_vec()))
        ]
    );
}

fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(tpl, std::time::Duration::from_secs(10))
        .unwrap();
    offsets
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(-1))
        .collect()
}

#[test]
fn small_read_and_write_buffers_flush_early_and_write_the_same_rows() {
    let kafka = kafka_with("wide", 6, 3000);
    let rt = runtime();
    let (roomy, tight) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let topics = [topic(json!({"topic": "wide", "format": "json"}))];
    let mut ctx = context(&kafka.bootstrap_servers(), roomy.path(), &rt);
    assert_eq!(records(&run(&ctx, &topics)), 18_000);
    ctx = context(&kafka.bootstrap_servers(), tight.path(), &rt);
    // Another group, the same records; buffers over all six open files capped at 64 KiB.
    let topics = [topic(
        json!({"topic": "wide", "format": "json", "group_id": "tight"}),
    )];
    ctx.options.write_buffer_bytes = 64 * 1024;
    // And the reader sends partial batches on past 16 KiB of records.
    ctx.options.read_buffer_bytes = 16 * 1024;
    assert_eq!(records(&run(&ctx, &topics)), 18_000);

    let all: Vec<_> = (0..6).map(|p| (p, 0..3000)).collect();
    assert_exactly(roomy.path(), "wide", &all);
    assert_exactly(tight.path(), "wide", &all);
    assert_eq!(
        batches(roomy.path(), "wide"),
        batches(tight.path(), "wide"),
        "the same rows, values and types either way"
    );
    let row_groups = |dir: &std::path::Path| -> usize {
        parquet_files(dir)
            .iter()
            .map(|f| {
                let file = std::fs::File::open(f).unwrap();
                let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
                parquet::file::reader::FileReader::metadata(&reader).num_row_groups()
            })
            .sum()
    };
    assert_eq!(
        row_groups(&roomy.path().join("wide")),
        6,
        "one row group per file"
    );
    assert!(
        row_groups(&tight.path().join("wide")) > 12,
        "the budget wrote row groups out early"
    );
}

#[test]
fn reading_in_batches_and_decoding_in_chunks_write_the_same_rows_as_one_message_at_a_time() {
    // 10,000 records a partition: batches of 8,192 rows, which JSON decodes in chunks of
    // 2,048 rows on every core; the other run polls one message at a time.
    let kafka = kafka_with("same", 2, 10_000);
    let rt = runtime();
    let (batched, polled) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ctx = context(&kafka.bootstrap_servers(), batched.path(), &rt);
    let topics = [topic(json!({"topic": "same", "format": "json"}))];
    assert_eq!(records(&run(&ctx, &topics)), 20_000);
    let mut ctx = context(&kafka.bootstrap_servers(), polled.path(), &rt);
    ctx.options.read_in_batches = false;
    let topics = [topic(
        json!({"topic": "same", "format": "json", "group_id": "polled"}),
    )];
    assert_eq!(records(&run(&ctx, &topics)), 20_000);

    let all: Vec<_> = (0..2).map(|p| (p, 0..10_000)).collect();
    assert_exactly(batched.path(), "same", &all);
    assert_exactly(polled.path(), "same", &all);
    let (a, b) = (
        batches(batched.path(), "same"),
        batches(polled.path(), "same"),
    );
    assert!(a[0].num_columns() > 6, "typed columns next to the metadata");
    assert_eq!(a, b, "the same rows, values and types either way");
}

/// A topic of more partitions than the reader takes at once: no more than that many are ever
/// assigned (each holds an open file), and every record of every partition is read once.
#[test]
fn partitions_past_those_read_at_once_wait_their_turn_and_are_read_whole() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use runner::plan::{PartitionPlan, StartSource, TopicPlan};
    use runner::read::{BoundedReader, HeaderCapture, PARTITIONS_AT_ONCE};
    let partitions = PARTITIONS_AT_ONCE as i32 * 2 + 5;
    let kafka = kafka_with("wide", partitions, 40);
    let plan = TopicPlan {
        topic: "wide".into(),
        group_id: "wide".into(),
        partitions: (0..partitions)
            .map(|partition| PartitionPlan {
                partition,
                // Partition 3 has nothing left to read; partition 4 starts midway.
                start: [(3, 40), (4, 25)]
                    .iter()
                    .find(|(p, _)| *p == partition)
                    .map_or(0, |(_, s)| *s),
                end: 40,
                high: 40,
                source: StartSource::Backfill,
                lost: None,
            })
            .collect(),
    };
    let connections: runner::config::Connections =
        serde_json::from_value(json!({ "bootstrap_servers": kafka.bootstrap_servers() })).unwrap();
    let consumer: BaseConsumer =
        runner::kafka::reading_consumer_config(&connections, "wide", PARTITIONS_AT_ONCE)
            .create()
            .unwrap();
    let mut reader = BoundedReader::start(
        consumer,
        &plan,
        16,
        std::time::Duration::from_secs(20),
        HeaderCapture::default(),
    )
    .unwrap();
    let mut read: Vec<(i32, i64)> = Vec::new();
    let mut most_assigned = 0;
    while let Some(batch) = reader.next_batch().unwrap() {
        let assigned = reader.consumer().assignment().unwrap().count();
        most_assigned = most_assigned.max(assigned);
        read.extend(batch.offsets.iter().map(|o| (batch.partition, *o)));
    }
    assert!(
        most_assigned <= PARTITIONS_AT_ONCE,
        "{most_assigned} partitions assigned at once"
    );
    read.sort();
    let expected: Vec<(i32, i64)> = plan
        .partitions
        .iter()
        .flat_map(|p| (p.start..p.end).map(move |o| (p.partition, o)))
        .collect();
    assert_eq!(read, expected, "every planned offset once, nothing else");
}
