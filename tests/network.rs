//! Network faults for real: tansu runs in a network namespace joined by a veth pair, and the
//! link is slowed (a `tc` token bucket) or cut off (set down) while runner reads. Every run ends
//! complete or with a clear failure whose progress is not ahead of the files; a rerun has every
//! record exactly once. Needs root and iproute2, as tests/run.sh provides.

mod common;

use common::netns::Netns;
use common::tansu::Tansu;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const PER_PARTITION: usize = 20_000;

fn setup(rt: &tokio::runtime::Runtime, netns: &Netns) -> Tansu {
    let tansu = Tansu::start_in(netns);
    tansu.create_topic(rt, "net", 3);
    for p in 0..3 {
        runner::embedded::produce(
            &tansu.bootstrap_servers(),
            "net",
            numbered(p, 0, PER_PARTITION),
        )
        .unwrap();
    }
    tansu
}

fn net_topic() -> runner::config::TopicConfig {
    topic(serde_json::json!({"topic": "net", "format": "json", "max_records_per_file": 2000}))
}

fn everything() -> Vec<(i32, std::ops::Range<i64>)> {
    (0..3).map(|p| (p, 0..PER_PARTITION as i64)).collect()
}

/// librdkafka prefetches up to 16 MB by default, the whole topic here: with 256 KB the cut
/// comes while most records are still at the broker.
fn small_prefetch(mut ctx: runner::jobs::RunContext) -> runner::jobs::RunContext {
    let properties = &mut ctx.config.connections.kafka_properties;
    properties.insert("queued.max.messages.kbytes".into(), "256".into());
    properties.insert("max.partition.fetch.bytes".into(), "32768".into());
    ctx
}

/// Runs the export on another thread and calls `during` once its first progress is recorded.
fn run_with(
    ctx: &runner::jobs::RunContext,
    out: &Path,
    during: impl FnOnce(),
) -> Vec<runner::jobs::TopicOutcome> {
    let progress = out.join("_runner/progress/runner.net/net.json");
    std::thread::scope(|s| {
        let running = s.spawn(|| runner::jobs::run_once(ctx, &[net_topic()]));
        let deadline = Instant::now() + Duration::from_secs(120);
        while !progress.exists() {
            assert!(Instant::now() < deadline, "no progress within 120 s");
            if running.is_finished() {
                let outcomes = running.join().unwrap();
                panic!("the run ended before the fault: {:?}", outcomes[0].result);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        during();
        running.join().unwrap()
    })
}

#[test]
fn a_slow_link_to_the_broker_still_exports_every_record_once() {
    let rt = runtime();
    let netns = Netns::create();
    let tansu = setup(&rt, &netns);
    netns.slow("8mbit");
    let out = tempfile::tempdir().unwrap();
    let ctx = context(&tansu.bootstrap_servers(), out.path(), &rt);
    let outcomes = run(&ctx, &[net_topic()]);
    netns.unslow();
    assert_eq!(records(&outcomes), 3 * PER_PARTITION as u64);
    assert_exactly(out.path(), "net", &everything());
}

#[test]
fn a_link_cut_for_three_seconds_mid_run_is_ridden_out() {
    let rt = runtime();
    let netns = Netns::create();
    let tansu = setup(&rt, &netns);
    let out = tempfile::tempdir().unwrap();
    let ctx = small_prefetch(context(&tansu.bootstrap_servers(), out.path(), &rt));
    let outcomes = run_with(&ctx, out.path(), || {
        netns.cut();
        std::thread::sleep(Duration::from_secs(3));
        netns.restore();
    });
    if let Err(e) = &outcomes[0].result {
        panic!("the run did not ride out a 3 s cut: {e}");
    }
    assert_exactly(out.path(), "net", &everything());
}

#[test]
fn a_link_cut_for_good_fails_cleanly_and_a_rerun_after_it_returns_is_exact() {
    let rt = runtime();
    let netns = Netns::create();
    let tansu = setup(&rt, &netns);
    let out = tempfile::tempdir().unwrap();
    let mut ctx = small_prefetch(context(&tansu.bootstrap_servers(), out.path(), &rt));
    ctx.options.stall_timeout = Duration::from_secs(15);
    ctx.options.kafka_timeout = Duration::from_secs(15);
    let outcomes = run_with(&ctx, out.path(), || netns.cut());
    let error = match &outcomes[0].result {
        Ok(summary) if summary.records < 3 * PER_PARTITION as u64 => {
            panic!("a cut run ended as if complete: {summary:?}")
        }
        Ok(_) => panic!("the run had read everything before the cut; produce more"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("topic net"), "{error}");
    netns.restore();
    assert_files_match_progress(out.path(), "net", 3);
    let rerun = run(&ctx, &[net_topic()]);
    if let Err(e) = &rerun[0].result {
        panic!("the rerun after the link returned failed: {e}");
    }
    assert_exactly(out.path(), "net", &everything());
}
