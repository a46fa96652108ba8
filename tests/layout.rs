//! `path_template` folders (record time, fields) and the commit of multi-file segments.

mod common;

use arrow::array::AsArray;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use common::*;
use runner::embedded::EmbeddedKafka;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

/// 2026-11-22T22:00:00Z.
const T0: i64 = 1_795_384_800_000;

fn relative(out: &Path, file: &Path) -> String {
    file.strip_prefix(out)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_time_template_puts_each_record_in_the_folder_of_its_hour() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("events", 2).unwrap();
    for p in 0..2 {
        kafka.produce("events", bucketed(p, 240, 3, T0)).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({
        "topic": "events", "format": "json",
        "path_template": "{topic}/date={yyyy}-{MM}-{dd}/hour={HH}"
    }));
    assert_eq!(records(&run(&ctx, &[t])), 480);
    assert_exactly(out.path(), "events", &[(0, 0..240), (1, 0..240)]);

    let mut folders = BTreeSet::new();
    for file in parquet_files(&out.path().join("events")) {
        let name = relative(out.path(), &file);
        let folder = name.rsplit_once('/').unwrap().0.to_string();
        let hour: u32 = folder.rsplit_once("hour=").unwrap().1.parse().unwrap();
        for batch in file_batches(&file) {
            let ts = batch.column_by_name("kafka_timestamp").unwrap();
            let ts = ts.as_primitive::<TimestampMillisecondType>();
            for i in 0..ts.len() {
                let at = chrono::DateTime::from_timestamp_millis(ts.value(i)).unwrap();
                let want = at.format("events/date=%Y-%m-%d/hour=%H").to_string();
                assert_eq!(folder, want, "record at {at} in {name} (hour {hour})");
            }
        }
        folders.insert(folder);
    }
    let want: BTreeSet<String> = [
        "events/date=2026-11-22/hour=22",
        "events/date=2026-11-22/hour=23",
        "events/date=2026-11-23/hour=00",
        "events/date=2026-11-23/hour=01",
    ]
    .map(String::from)
    .into();
    assert_eq!(folders, want);
    let name = out
        .path()
        .join("events/date=2026-11-23/hour=01/events+1+00000000000000000000.parquet");
    assert!(name.is_file(), "deterministic names by segment start");
}

#[test]
fn a_field_template_splits_each_file_by_value_and_segments_rotate_together() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("orders", 1).unwrap();
    kafka.produce("orders", bucketed(0, 300, 3, T0)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(json!({
        "topic": "orders", "format": "json", "max_records_per_file": 100,
        "path_template": "{topic}/bucket={field:bucket}/partition={partition}"
    }));
    let outcome = run(&ctx, &[t]);
    assert_eq!(records(&outcome), 300);
    assert_exactly(out.path(), "orders", &[(0, 0..300)]);
    let files: Vec<String> = parquet_files(&out.path().join("orders"))
        .iter()
        .map(|f| relative(out.path(), f))
        .collect();
    // Three segments of 100 records, each one file per bucket.
    assert_eq!(files.len(), 9, "{files:?}");
    for bucket in 0..3 {
        for start in [0, 100, 200] {
            let name = format!("orders/bucket={bucket}/partition=0/orders+0+{start:020}.parquet");
            assert!(files.contains(&name), "{name} missing from {files:?}");
            for batch in file_batches(&out.path().join(&name)) {
                let col = batch.column_by_name("bucket").unwrap();
                let col = col.as_primitive::<Int64Type>();
                assert!(col.iter().all(|v| v == Some(bucket)), "{name}");
            }
        }
    }
}

#[test]
fn files_of_an_unfinished_multi_file_commit_are_removed_before_the_rerun() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("orders", 1).unwrap();
    kafka.produce("orders", bucketed(0, 100, 3, T0)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let template = "{topic}/bucket={field:bucket}";
    let one_segment = topic(json!({
        "topic": "orders", "group_id": "g", "format": "json", "path_template": template
    }));
    assert_eq!(records(&run(&ctx, &[one_segment])), 100);

    // The state a crash leaves after the segment's three files became visible but before
    // progress moved past them: progress still at 0, the files listed as pending.
    let progress = out.path().join("_runner/progress/g/orders.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    let entry = &mut state["partitions"]["0"];
    entry["next_offset"] = json!(0);
    entry["pending"] = json!(
        (0..3)
            .map(|b| format!("orders/bucket={b}/orders+0+{:020}.parquet", 0))
            .collect::<Vec<_>>()
    );
    std::fs::write(&progress, state.to_string()).unwrap();
    assert_eq!(exported(out.path(), "orders").len(), 100);

    // The rerun splits the range differently (one record a segment, so its first segment
    // has no bucket 1 or 2 file); without removing the pending files, bucket=1 and bucket=2
    // would hold their records twice.
    let small_segments = topic(json!({
        "topic": "orders", "group_id": "g", "format": "json", "path_template": template,
        "max_records_per_file": 1
    }));
    assert_eq!(records(&run(&ctx, &[small_segments])), 100);
    assert_exactly(out.path(), "orders", &[(0, 0..100)]);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    assert_eq!(state["partitions"]["0"]["next_offset"], 100);
    assert!(state["partitions"]["0"].get("pending").is_none());
}
