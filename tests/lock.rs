//! Topic locks: two processes never export the same topic at once, and a stale lock is taken
//! over safely.

mod common;

use runner::lock::{self, LockError};
use runner::plan::bounds::Shard;
use runner::sink::Sink;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_held_lock_refuses_a_second_holder_until_released() {
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Sink::local(dir.path(), rt.handle().clone()).unwrap());
    let mut first = lock::acquire(&sink, "g", "orders", None, Duration::from_secs(60)).unwrap();
    let refused = lock::acquire(&sink, "g", "orders", None, Duration::from_secs(60)).map(|_| ());
    match refused {
        Err(LockError::Held { owner, .. }) => {
            assert!(owner.contains(&format!("pid {}", std::process::id())))
        }
        other => panic!("expected Held, got {other:?}"),
    }
    // Another topic or group is independent.
    let _other = lock::acquire(&sink, "g", "payments", None, Duration::from_secs(60)).unwrap();
    first.confirm().unwrap();
    drop(first);
    let again = lock::acquire(&sink, "g", "orders", None, Duration::from_secs(60)).unwrap();
    drop(again);
}

#[test]
fn shards_of_one_split_lock_apart_and_overlapping_scopes_refuse() {
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Sink::local(dir.path(), rt.handle().clone()).unwrap());
    let lease = Duration::from_secs(60);
    let shard = |index, count| Some(Shard { index, count });
    let zero = lock::acquire(&sink, "g", "orders", shard(0, 2), lease).unwrap();
    let one = lock::acquire(&sink, "g", "orders", shard(1, 2), lease).unwrap();
    for overlapping in [None, shard(0, 3), shard(1, 2)] {
        let refused = lock::acquire(&sink, "g", "orders", overlapping, lease).map(|_| ());
        assert!(
            matches!(refused, Err(LockError::Held { .. })),
            "{overlapping:?}"
        );
    }
    drop((zero, one));
    let whole = lock::acquire(&sink, "g", "orders", None, lease).unwrap();
    let refused = lock::acquire(&sink, "g", "orders", shard(0, 2), lease).map(|_| ());
    assert!(matches!(refused, Err(LockError::Held { .. })));
    drop(whole);
}

#[test]
fn progress_saves_are_compare_and_swap_on_a_local_folder() {
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Sink::local(dir.path(), rt.handle().clone()).unwrap());
    common::progress_writers_merge_or_conflict(sink);
}

#[test]
fn a_run_refused_by_a_held_lock_exits_3_as_a_retry_may_pass() {
    let kafka = common::kafka_with("orders", 1, 10);
    let dir = common::config_for(&kafka, json!([{"topic": "orders"}]));
    let rt = common::runtime();
    let sink = Arc::new(Sink::local(&dir.path().join("out"), rt.handle().clone()).unwrap());
    let held = lock::acquire(
        &sink,
        "runner.orders",
        "orders",
        None,
        Duration::from_secs(60),
    );
    let out = common::runner_command(dir.path())
        .arg("once")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("is being exported by"), "{stdout}");
    drop(held);
}

#[test]
fn aggregate_state_saves_are_compare_and_swap() {
    use runner::aggregate::state::{AggregateState, StateError};
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::local(dir.path(), rt.handle().clone()).unwrap();
    let mut first = AggregateState::load(&sink, "totals", "orders").unwrap();
    let mut second = AggregateState::load(&sink, "totals", "orders").unwrap();
    first.run = 1;
    first.save(&sink).unwrap();
    second.run = 1;
    assert!(matches!(
        second.save(&sink),
        Err(StateError::Conflict { .. })
    ));
    first.run = 2;
    first.save(&sink).unwrap();
    assert_eq!(
        AggregateState::load(&sink, "totals", "orders").unwrap().run,
        2
    );
}

#[test]
fn a_shard_removes_only_its_own_unfinished_commits() {
    use runner::progress::Progress;
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Sink::local(dir.path(), rt.handle().clone()).unwrap());
    for p in 0..2 {
        let file = dir.path().join(format!("t/p{p}.parquet"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"part of a segment being committed").unwrap();
    }
    let record = json!({"topic": "t", "group_id": "g", "partitions": {
        "0": {"next_offset": 5, "updated_at": "", "pending": ["t/p0.parquet"]},
        "1": {"next_offset": 7, "updated_at": "", "pending": ["t/p1.parquet"]}
    }});
    std::fs::create_dir_all(dir.path().join("_runner/progress/g")).unwrap();
    std::fs::write(
        dir.path().join("_runner/progress/g/t.json"),
        record.to_string(),
    )
    .unwrap();
    // Shard of partition 0: partition 1's segment may be mid-commit by the other shard.
    let mut progress = Progress::load(sink.clone(), "g", "t").unwrap();
    progress.recover(&[0]).unwrap();
    assert!(!dir.path().join("t/p0.parquet").exists());
    assert!(dir.path().join("t/p1.parquet").exists());
    let reread = Progress::load(sink, "g", "t").unwrap();
    assert!(reread.state().partitions[&0].pending.is_empty());
    assert_eq!(reread.state().partitions[&1].pending, ["t/p1.parquet"]);
}

#[test]
fn an_expired_lock_is_taken_over_and_its_old_holder_stops_before_recording() {
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Sink::local(dir.path(), rt.handle().clone()).unwrap());
    // A lease of zero: expired at once, as a holder that stopped renewing.
    let mut stale = lock::acquire(&sink, "g", "orders", None, Duration::ZERO).unwrap();
    let mut taker = lock::acquire(&sink, "g", "orders", None, Duration::from_secs(60)).unwrap();
    match stale.confirm() {
        Err(LockError::Lost { owner, .. }) => assert!(owner.contains("pid")),
        other => panic!("expected Lost, got {other:?}"),
    }
    taker.confirm().unwrap();
    // The old holder's release must not free the new holder's lock.
    drop(stale);
    assert!(matches!(
        lock::acquire(&sink, "g", "orders", None, Duration::from_secs(60)).map(|_| ()),
        Err(LockError::Held { .. })
    ));
}

#[test]
fn two_concurrent_runner_once_processes_export_every_record_exactly_once() {
    let per_partition = 20_000;
    let kafka = common::kafka_with("orders", 2, per_partition);
    let dir = common::config_for(
        &kafka,
        json!([{"topic": "orders", "max_records_per_file": 1000}]),
    );
    let spawn = || {
        common::runner_command(dir.path())
            .arg("once")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let mut refused = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            assert!(stdout.contains("is being exported by"), "{stdout}");
            refused += 1;
        }
    }
    assert!(refused <= 1, "one of the two always gets the lock");
    // Whatever the interleaving, a rerun completes the topic with no duplicate.
    let rerun = common::runner_command(dir.path())
        .arg("once")
        .output()
        .unwrap();
    assert!(rerun.status.success());
    let n = per_partition as i64;
    common::assert_exactly(&dir.path().join("out"), "orders", &[(0, 0..n), (1, 0..n)]);
}
