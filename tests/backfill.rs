//! `runner once --topic T --from/--to` backfills and `--shard I/N`, through the binary on the
//! mock cluster.

mod common;

use serde_json::json;
use std::path::Path;

/// Rows of the topic's files whose name has (or lacks) `backfill-to-`.
fn rows(out: &Path, topic: &str, backfill: bool) -> Vec<(i32, i64)> {
    let files = common::parquet_files(&out.join(topic));
    let chosen: Vec<_> = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("backfill-to-") == backfill)
        .flat_map(|f| common::file_batches(f))
        .collect();
    common::offsets_of(&chosen)
}

fn runner(dir: &Path, args: &[&str]) -> String {
    let out = common::runner_command(dir).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "runner {args:?}: {stdout}\n{stderr}");
    stdout
}

/// A mock cluster with topic `orders`, and a config folder for it with files of 300 records.
fn orders(
    partitions: i32,
    per_partition: usize,
) -> (runner::embedded::EmbeddedKafka, tempfile::TempDir) {
    let kafka = common::kafka_with("orders", partitions, per_partition);
    let dir = common::config_for(
        &kafka,
        json!([{"topic": "orders", "max_records_per_file": 300}]),
    );
    (kafka, dir)
}

#[test]
fn a_backfill_leaves_progress_alone_and_never_replaces_a_regular_file() {
    let (_kafka, dir) = orders(2, 1000);
    let out = dir.path().join("out");
    runner(dir.path(), &["once"]);
    let progress_file = out.join("_runner/progress/runner.orders/orders.json");
    let progress = std::fs::read(&progress_file).unwrap();

    // The last 100 of each partition up to 40 before the end, twice: the rerun replaces
    // its own files.
    for _ in 0..2 {
        let line = runner(
            dir.path(),
            &["once", "--topic", "orders", "--from", "-100", "--to", "-40"],
        );
        assert!(line.contains("records=120"), "{line}");
    }
    common::assert_rows_exactly(
        rows(&out, "orders", true),
        "orders",
        &[(0, 900..960), (1, 900..960)],
    );
    // A backfill from the start: its files start where regular files do, but keep their own
    // names, so the regular files stay whole.
    runner(
        dir.path(),
        &[
            "once",
            "--topic",
            "orders",
            "--from",
            "0=beginning",
            "--to",
            "0=100",
        ],
    );
    common::assert_rows_exactly(
        rows(&out, "orders", false),
        "orders",
        &[(0, 0..1000), (1, 0..1000)],
    );
    assert_eq!(std::fs::read(&progress_file).unwrap(), progress);

    // Nothing new since: the regular run reads nothing.
    assert!(runner(dir.path(), &["once"]).contains("records=0"));

    // Every run is in the history, newest first, with its bounds and ranges.
    let history = runner(dir.path(), &["history", "--json"]);
    let entries: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 5, "{history}");
    assert_eq!(entries[0]["topics"][0]["records"], 0);
    let backfill = &entries[3];
    assert_eq!(backfill["backfill"], "--from -100 --to -40", "{backfill}");
    assert_eq!(backfill["status"], "ok");
    assert_eq!(
        backfill["topics"][0]["ranges"],
        json!([[0, 900, 960], [1, 900, 960]])
    );
    assert_eq!(entries[4]["topics"][0]["records"], 2000);
    let table = runner(dir.path(), &["history", "--last", "2"]);
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[test]
fn record_progress_makes_the_regular_runs_continue_where_the_backfill_ended() {
    let (kafka, dir) = orders(2, 1000);
    let out = dir.path().join("out");
    let plan = runner(
        dir.path(),
        &[
            "plan", "--topic", "orders", "--from", "600", "--to", "1=800",
        ],
    );
    assert!(plan.contains("--from"), "{plan}");
    runner(
        dir.path(),
        &[
            "once",
            "--topic",
            "orders",
            "--from",
            "600",
            "--to",
            "1=800",
            "--record-progress",
        ],
    );
    for p in 0..2 {
        kafka
            .produce("orders", common::numbered(p, 1000, 50))
            .unwrap();
    }
    runner(dir.path(), &["once"]);
    common::assert_rows_exactly(
        rows(&out, "orders", false),
        "orders",
        &[(0, 600..1050), (1, 600..1050)],
    );
    assert!(rows(&out, "orders", true).is_empty());

    // A failed run is recorded with its error.
    common::write_config(
        dir.path(),
        json!({"bootstrap_servers": kafka.bootstrap_servers()}),
        json!([{"topic": "orders"}, {"topic": "ghost"}]),
    );
    let failed = common::runner_command(dir.path())
        .args(["once", "--topic", "ghost"])
        .output()
        .unwrap();
    // A missing topic is not fixed by a retry: exit 2, for a podFailurePolicy FailJob rule.
    assert_eq!(failed.status.code(), Some(2));
    let newest = runner(dir.path(), &["history", "--json", "--last", "1"]);
    let newest: serde_json::Value = serde_json::from_str(newest.trim()).unwrap();
    assert_eq!(newest["status"], "failed");
    assert_eq!(newest["job"], "(topics)");
    let error = newest["topics"][0]["error"].as_str().unwrap();
    assert!(error.contains("ghost does not exist"), "{error}");
}

#[test]
fn bad_bounds_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    common::write_config(
        dir.path(),
        json!({"bootstrap_servers": "127.0.0.1:1"}),
        json!([{"topic": "orders"}]),
    );
    let out = common::runner_command(dir.path())
        .args(["once", "--topic", "orders", "--from", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--from yesterday") && stderr.contains("s@<ms>"),
        "{stderr}"
    );
    let out = common::runner_command(dir.path())
        .args(["once", "--shard", "3"])
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JOB_COMPLETION_INDEX"));
}

#[test]
fn two_shards_running_together_cover_every_partition_exactly_once() {
    let per_partition = 3000;
    let (_kafka, dir) = orders(6, per_partition);
    // Shard 1 takes its index from JOB_COMPLETION_INDEX, as in an Indexed Job.
    let spawn = |args: &[&str], index: &str| {
        common::runner_command(dir.path())
            .args(args)
            .env("JOB_COMPLETION_INDEX", index)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = [
        spawn(&["once", "--shard", "0/2"], "9"),
        spawn(&["once", "--shard", "2"], "1"),
    ];
    let mut total = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let records: u64 = stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix("records="))
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(
            records > 0 && records < 6 * per_partition as u64,
            "{stdout}"
        );
        total += records;
    }
    assert_eq!(total, 6 * per_partition as u64);
    let n = per_partition as i64;
    let all: Vec<_> = (0..6).map(|p| (p, 0..n)).collect();
    common::assert_exactly(&dir.path().join("out"), "orders", &all);
    // Both shards saved into one progress record without losing each other's partitions.
    let progress: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join("out/_runner/progress/runner.orders/orders.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for p in 0..6 {
        assert_eq!(
            progress["partitions"][p.to_string()]["next_offset"],
            n,
            "{progress}"
        );
    }
    // A whole-topic run afterwards has nothing left.
    assert!(runner(dir.path(), &["once"]).contains("records=0"));
}

#[test]
fn off_a_terminal_long_runs_log_progress_lines() {
    let (_kafka, dir) = orders(2, 5000);
    let out = common::runner_command(dir.path())
        .args(["--progress-interval", "0", "once"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let done: Vec<u64> = stderr
        .lines()
        .filter(|l| l.contains("progress") && l.contains("planned=10000"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("records="))
        })
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(done.len() > 1, "{stderr}");
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    assert_eq!(done.last(), Some(&10_000), "{stderr}");
}

/// The mock cluster keeps about 5 MB per partition, dropping the oldest records beyond it, as
/// retention does.
#[test]
fn a_range_partly_deleted_by_retention_fails_naming_it_unless_data_loss_is_allowed() {
    let kafka = runner::embedded::EmbeddedKafka::start().unwrap();
    kafka.create_topic("big", 1).unwrap();
    let filler = "x".repeat(2000);
    let records = (0..3500).map(|seq| runner::embedded::Record {
        partition: Some(0),
        value: Some(format!("{seq} {filler}").into_bytes()),
        ..Default::default()
    });
    kafka.produce("big", records).unwrap();
    let dir = common::config_for(&kafka, json!([{"topic": "big"}]));
    let refused = common::runner_command(dir.path())
        .args(["once", "--topic", "big", "--from", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("offsets 0.."), "{stdout}");
    assert!(stdout.contains("were deleted by retention"), "{stdout}");
    assert!(stdout.contains("Pass --allow-data-loss"), "{stdout}");

    let line = runner(
        dir.path(),
        &["once", "--topic", "big", "--from", "0", "--allow-data-loss"],
    );
    let low: i64 = line
        .split("lost_ranges=[(0, 0, ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lost range in {line}"));
    assert!(low > 0 && low < 3500, "{line}");
    common::assert_rows_exactly(
        rows(&dir.path().join("out"), "big", true),
        "big",
        &[(0, low..3500)],
    );
    let newest = runner(dir.path(), &["history", "--json", "--last", "1"]);
    let newest: serde_json::Value = serde_json::from_str(newest.trim()).unwrap();
    assert_eq!(newest["topics"][0]["lost"], json!([[0, 0, low]]));
}
