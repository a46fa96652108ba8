//! `runner schedule`: repeated fires pick up new records, overlapping ticks are skipped, and
//! SIGTERM leaves complete files and progress that the next run continues from.

mod common;

use common::numbered;
use runner::config::JobConfig;
use runner::embedded::EmbeddedKafka;
use runner::schedule::cron::CronSchedule;
use runner::schedule::scheduler::{Event, RunJob, Scheduler};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Lines of a child's stdout, read on a thread.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (at most `limit`) for a line that satisfies `want`; returns every line seen.
fn wait_for(
    lines: &Receiver<String>,
    seen: &mut Vec<String>,
    limit: Duration,
    mut want: impl FnMut(&str) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = want(&line);
                seen.push(line);
                if done {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("no such line within {limit:?}; saw:\n{}", seen.join("\n"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("runner ended; saw:\n{}", seen.join("\n"))
            }
        }
    }
}

fn write_job(dir: &Path, name: &str, job: serde_json::Value) {
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::write(
        dir.join("jobs").join(format!("{name}.json")),
        job.to_string(),
    )
    .unwrap();
}

fn terminate(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM once the first files are in `folder`, so the run is under way; then its exit.
fn terminate_under_way(child: &mut Child, folder: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::parquet_files(folder).len() < 2 {
        assert!(Instant::now() < deadline, "no file written");
        std::thread::sleep(Duration::from_millis(20));
    }
    terminate(child);
    wait_exit(child, Duration::from_secs(60))
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("runner did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_schedule_every_second_keeps_firing_and_exports_each_new_batch_once() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("orders", 2).unwrap();
    let dir = common::config_for(&kafka, json!([{"topic": "orders"}]));
    write_job(
        dir.path(),
        "export",
        json!({"schedule": "* * * * * *", "topics": ["orders"]}),
    );
    kafka
        .produce("orders", numbered(0, 0, 60).chain(numbered(1, 0, 40)))
        .unwrap();
    let mut child = common::runner_command(dir.path())
        .args(["schedule", "--watch-interval", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    let limit = Duration::from_secs(30);
    wait_for(&lines, &mut seen, limit, |l| {
        l.contains("topic=orders status=ok records=100 ")
    });
    // Each new batch is picked up by a later fire, and only once.
    let mut per_partition = [60i64, 40];
    for (round, count) in [(1, 7usize), (2, 13), (3, 21)] {
        kafka
            .produce(
                "orders",
                numbered(
                    round % 2,
                    per_partition[(round % 2) as usize] as usize,
                    count,
                ),
            )
            .unwrap();
        per_partition[(round % 2) as usize] += count as i64;
        let want = format!("topic=orders status=ok records={count} ");
        wait_for(&lines, &mut seen, limit, |l| l.contains(&want));
    }
    // Many ticks later the job still fires (tokio-cron-scheduler's repeated jobs could stop).
    let started = |seen: &[String]| {
        seen.iter()
            .filter(|l| l.contains("job=export status=started"))
            .count()
    };
    let before = started(&seen);
    let mut count = before;
    wait_for(&lines, &mut seen, limit, |l| {
        if l.contains("job=export status=started") {
            count += 1;
        }
        count >= before + 8
    });
    // A new job file is picked up without a restart.
    write_job(
        dir.path(),
        "second",
        json!({"schedule": "*/2 * * * * *", "topics": ["orders"]}),
    );
    wait_for(&lines, &mut seen, limit, |l| {
        l.starts_with("reloaded jobs after a changed file: 2 jobs")
    });
    wait_for(&lines, &mut seen, limit, |l| {
        l.starts_with("job=second status=finished")
    });
    terminate(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    seen.extend(lines.try_iter());
    assert!(status.success(), "{status}\n{}", seen.join("\n"));
    assert!(
        seen.iter()
            .any(|l| l.starts_with("stopped: every run finished")),
        "{}",
        seen.join("\n")
    );
    common::assert_exactly(
        &dir.path().join("out"),
        "orders",
        &[(0, 0..per_partition[0]), (1, 0..per_partition[1])],
    );
}

#[test]
fn sigterm_in_the_middle_of_a_run_leaves_complete_files_and_the_next_run_continues() {
    let per_partition = 40_000;
    let kafka = common::kafka_with("big", 2, per_partition);
    let dir = common::config_for(
        &kafka,
        json!([{"topic": "big", "max_records_per_file": 500}]),
    );
    write_job(dir.path(), "export", json!({"schedule": "* * * * * *"}));
    let mut child = common::runner_command(dir.path())
        .args(["schedule"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    wait_for(&lines, &mut seen, Duration::from_secs(30), |l| {
        l.contains("job=export status=started")
    });
    let out = dir.path().join("out");
    let status = terminate_under_way(&mut child, &out.join("big"));
    seen.extend(lines.try_iter());
    assert!(status.success(), "{status}\n{}", seen.join("\n"));

    // Every visible file is complete, and progress covers exactly the files written.
    common::assert_files_match_progress(&out, "big", 2);

    let once = common::runner_command(dir.path())
        .args(["once", "--job", "export"])
        .output()
        .unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stdout)
    );
    common::assert_exactly(
        &out,
        "big",
        &[(0, 0..per_partition as i64), (1, 0..per_partition as i64)],
    );
}

#[test]
fn sigterm_to_runner_once_seals_its_files_records_them_and_exits_1() {
    let per_partition = 40_000;
    let kafka = common::kafka_with("big", 2, per_partition);
    let dir = common::config_for(
        &kafka,
        json!([{"topic": "big", "max_records_per_file": 500}]),
    );
    let mut child = common::runner_command(dir.path())
        .args(["once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = dir.path().join("out");
    let status = terminate_under_way(&mut child, &out.join("big"));
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    // Usually stopped mid-run (exit 1, stopped=true); a run that ended first is fine too.
    if stdout.contains("stopped=true") {
        assert_eq!(status.code(), Some(1), "{stdout}");
    } else {
        assert!(status.success(), "{status}: {stdout}");
    }
    common::assert_files_match_progress(&out, "big", 2);
    let rerun = common::runner_command(dir.path())
        .arg("once")
        .output()
        .unwrap();
    assert!(rerun.status.success());
    let n = per_partition as i64;
    common::assert_exactly(&out, "big", &[(0, 0..n), (1, 0..n)]);
}

fn job(name: &str, schedule: &str) -> JobConfig {
    let mut job: JobConfig =
        serde_json::from_value(json!({"name": name, "schedule": schedule})).unwrap();
    job.cron = Some(CronSchedule::parse(schedule, None).unwrap());
    job
}

#[test]
fn a_tick_that_finds_its_job_running_is_skipped_and_the_job_fires_again_after() {
    let rt = common::runtime();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    // The first run blocks until the test releases it; later runs return at once.
    let first = std::sync::atomic::AtomicBool::new(true);
    let run: RunJob = Arc::new(move |_| {
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(30));
        }
        true
    });
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let scheduler = rt
        .block_on(Scheduler::start(&[job("slow", "* * * * * *")], 2, run, tx))
        .unwrap();
    let next = |events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>| {
        rt.block_on(async {
            loop {
                match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                    Ok(Some(Event::Armed { .. })) => continue,
                    Ok(Some(e)) => return e,
                    other => panic!("no event: {other:?}"),
                }
            }
        })
    };
    assert!(matches!(next(&mut events), Event::Started { .. }));
    assert!(matches!(next(&mut events), Event::Skipped { .. }));
    assert!(matches!(next(&mut events), Event::Skipped { .. }));
    assert_eq!(scheduler.running(), vec!["slow".to_string()]);
    release.send(()).unwrap();
    assert_eq!(
        next(&mut events),
        Event::Finished {
            job: "slow".into(),
            ok: true
        }
    );
    assert!(
        matches!(next(&mut events), Event::Started { .. }),
        "fires again after the skip"
    );
    assert!(rt.block_on(scheduler.stop(Duration::from_secs(10))));
}
