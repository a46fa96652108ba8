//! `runner once`: every enabled job once, or some topics (a backfill with --from/--to), on
//! one shard or all; SIGTERM and SIGINT stop it cleanly.

use crate::cli::OnceArgs;
use crate::{EXIT_FAILED, context, remember, report, report_jobs};
use runner::config::{Config, ConfigError, JobConfig};
use runner::jobs::{self, JobOutcome, JobResults, RunOptions, Stop};
use runner::meter::Meter;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::runtime::Runtime;

pub fn run(
    load: impl Fn() -> Result<Config, ConfigError>,
    args: OnceArgs,
    meter: Meter,
    rt: &Runtime,
    run_id: &str,
) -> anyhow::Result<ExitCode> {
    let mut config = load()?;
    let flags = ConfigError::Flags;
    let stop = Stop::default();
    stop_on_signals(rt, stop.clone());
    let options = RunOptions {
        concurrency: args.concurrency,
        stop: stop.clone(),
        backfill: args.bounds.backfill().map_err(flags)?.map(Arc::new),
        shard: args.shard().map_err(flags)?,
        meter,
        ..RunOptions::default()
    };
    if args.allow_data_loss {
        for t in config.topics.iter_mut() {
            t.fail_on_data_loss = false;
        }
    }
    let labels = runner::history::RunLabels {
        shard: options.shard.map(|s| s.to_string()),
        backfill: args.bounds.describe(),
    };
    let code = if !args.topic.is_empty() || config.jobs.is_empty() {
        let topics = config.select_topics(&args.topic)?;
        let ctx = context(config, rt, options)?;
        let started = chrono::Utc::now();
        let outcomes = jobs::run_once(&ctx, &topics);
        let code = report(&outcomes);
        let outcome = JobOutcome {
            job: TOPICS_JOB.into(),
            results: JobResults::Export(outcomes),
        };
        remember(&ctx, &outcome, run_id, started, &labels);
        code
    } else {
        let chosen = bounded_jobs(&config, &args.job)?;
        let ctx = context(config, rt, options)?;
        let outcomes: Vec<JobOutcome> = chosen
            .iter()
            .map(|j| {
                let started = chrono::Utc::now();
                let outcome = jobs::run_job(&ctx, j);
                remember(&ctx, &outcome, run_id, started, &labels);
                outcome
            })
            .collect();
        report_jobs(&outcomes)
    };
    Ok(if stop.requested() {
        stopped(code)
    } else {
        code
    })
}

/// The jobs `once` runs: continuous ones run elsewhere, and naming one is a mistake.
fn bounded_jobs(config: &Config, names: &[String]) -> Result<Vec<JobConfig>, ConfigError> {
    let mut jobs = config.select_jobs(names)?;
    if let Some(job) = jobs.iter().find(|j| j.is_continuous() && !names.is_empty()) {
        return Err(ConfigError::Flags(format!(
            "--job {}: the job runs continuously (\"schedule\": \"continuous\"); run it with `runner continuous --job {}` or `runner schedule`, or export its topics once with `runner once --topic T`",
            job.name, job.name
        )));
    }
    jobs.retain(|j| {
        if j.is_continuous() {
            tracing::info!(job = %j.name, "skipping a continuous job: `runner continuous` or `runner schedule` runs it");
        }
        !j.is_continuous()
    });
    Ok(jobs)
}

/// The history's job name of `runner once --topic` and of runs without jobs/.
const TOPICS_JOB: &str = "(topics)";

/// SIGTERM or SIGINT asks the run to stop after its current batches: open files are sealed
/// and recorded. A second signal aborts: files in flight are never visible and progress never
/// passes the data, so that is safe too.
pub(crate) fn stop_on_signals(rt: &Runtime, stop: Stop) {
    use tokio::signal::unix::{SignalKind, signal};
    rt.spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        eprintln!(
            "stopping: sealing open files and recording their progress (a second signal aborts)"
        );
        stop.request();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        eprintln!("error: aborted; the next run redoes the unrecorded part");
        std::process::exit(i32::from(EXIT_FAILED));
    });
}

/// A run stopped by a signal did not reach its planned end: at least exit 1, so a Job
/// retries it (a rerun continues where it stopped).
fn stopped(code: ExitCode) -> ExitCode {
    eprintln!(
        "error: stopped by a signal before the planned end; the next run continues from the recorded progress (a backfill redoes its range, replacing its own files)"
    );
    if code == ExitCode::SUCCESS {
        ExitCode::from(EXIT_FAILED)
    } else {
        code
    }
}
