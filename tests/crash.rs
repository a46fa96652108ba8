//! A `runner once` process killed with SIGKILL mid-run, then rerun: every record exactly once.

mod common;

use common::*;
use runner::embedded::EmbeddedKafka;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_config(dir: &Path, bootstrap: &str) {
    let connections = serde_json::json!({"bootstrap_servers": bootstrap, "storage_url": "out"});
    let topics = serde_json::json!([{
        "topic": "crash", "group_id": "g", "format": "json", "max_records_per_file": 10
    }]);
    std::fs::write(dir.join("connections.json"), connections.to_string()).unwrap();
    std::fs::write(dir.join("topics.json"), topics.to_string()).unwrap();
}

fn runner_once(dir: &Path) -> Command {
    let mut cmd = runner_command(dir);
    cmd.arg("once").stdout(Stdio::piped()).stderr(Stdio::null());
    cmd
}

#[test]
fn sigkill_mid_run_then_rerun_exports_every_record_exactly_once() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("crash", 4).unwrap();
    for p in 0..4 {
        kafka.produce("crash", numbered(p, 0, 5_000)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &kafka.bootstrap_servers());
    let out = dir.path().join("out");
    let progress = out.join("_runner/progress/g/crash.json");

    // Kill as soon as some progress is recorded: files and progress are then mid-flight.
    let mut child = runner_once(dir.path()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !progress.exists() {
        assert!(Instant::now() < deadline, "no progress recorded within 60s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "runner ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let before_rerun = exported(&out, "crash").len();
    assert!(
        before_rerun < 20_000,
        "the kill came after the run had finished"
    );

    let rerun = runner_once(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert!(rerun.status.success(), "rerun failed: {stdout}");
    assert!(stdout.contains("topic=crash status=ok"), "{stdout}");
    assert_exactly(
        &out,
        "crash",
        &[(0, 0..5000), (1, 0..5000), (2, 0..5000), (3, 0..5000)],
    );
    // Every visible .parquet file was read back whole above: none is partial. A killed
    // upload may leave a staging file named `<file>.parquet#<n>`, which no reader globs.
}
