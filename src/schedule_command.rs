//! `runner schedule`: fires the jobs of jobs/ until SIGTERM or SIGINT, reloading them on
//! SIGHUP or when a config file changes.

use crate::cli::ScheduleArgs;
use anyhow::Context;
use runner::config::{Config, JobConfig};
use runner::jobs::{self, RunContext, RunOptions, Stop};
use runner::schedule::scheduler::{Event, RunJob, Scheduler};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::runtime::Runtime;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

pub fn run(
    load: impl Fn() -> Result<Config, runner::config::ConfigError>,
    args: &ScheduleArgs,
    meter: runner::meter::Meter,
    rt: &Runtime,
) -> anyhow::Result<ExitCode> {
    let config = load()?;
    let stop = Stop::default();
    let options = RunOptions {
        concurrency: args.concurrency,
        stop: stop.clone(),
        meter,
        ..RunOptions::default()
    };
    let scheduled: Vec<&str> = config
        .jobs
        .iter()
        .filter(|j| j.enabled && j.cron.is_some())
        .map(|j| j.name.as_str())
        .collect();
    let continuous: Vec<JobConfig> = config
        .jobs
        .iter()
        .filter(|j| j.enabled && j.is_continuous())
        .cloned()
        .collect();
    if scheduled.is_empty() && continuous.is_empty() {
        anyhow::bail!(
            "no enabled job in {}/jobs has a schedule; add \"schedule\": \"*/15 * * * *\" (or \"continuous\") to a job file (runner validate lists them)",
            config.dir.display()
        );
    }
    if !scheduled.is_empty() {
        println!("scheduling jobs {}", scheduled.join(", "));
    }
    let watched = watched_files(&config.dir);
    let ctx = Arc::new(RwLock::new(crate::context(config, rt, options.clone())?));
    // Continuous jobs run from the start to SIGTERM; a reload does not restart them.
    let hosted = match ctx.read() {
        Ok(c) if !continuous.is_empty() => {
            let names: Vec<&str> = continuous.iter().map(|j| j.name.as_str()).collect();
            println!("running continuous jobs {}", names.join(", "));
            crate::continuous_command::spawn(&c, &continuous)
        }
        _ => Vec::new(),
    };
    let console_options = match args.listen {
        Some(addr) => Some(args.console.options(addr, args.allow_trigger)?),
        None => None,
    };
    let metrics = Arc::new(runner::web::Metrics::new());
    let run_ctx = ctx.clone();
    let run_metrics = metrics.clone();
    let run: RunJob = Arc::new(move |job| {
        let ctx: RunContext = match run_ctx.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let started = chrono::Utc::now();
        let outcome = jobs::run_job(&ctx, job);
        let run_id = runner::logging::new_run_id();
        let entry = crate::remember(&ctx, &outcome, &run_id, started, &Default::default());
        run_metrics.record(&entry);
        crate::report_jobs(std::slice::from_ref(&outcome)) == ExitCode::SUCCESS
    });
    rt.block_on(async {
        // Bound before the first run, so a taken port or missing credentials stop the start.
        let listener = match &console_options {
            Some(options) => Some(runner::web::bind(options).await?),
            None => None,
        };
        let (events, mut received) = mpsc::unbounded_channel();
        let jobs = ctx
            .read()
            .map(|c| c.config.jobs.clone())
            .unwrap_or_default();
        let scheduler = Scheduler::start(&jobs, args.max_parallel, run, events).await?;
        let console_stop = Arc::new(tokio::sync::Notify::new());
        if let (Some(listener), Some(options)) = (listener, console_options) {
            let console = runner::web::Console {
                context: ctx.clone(),
                options,
                metrics: metrics.clone(),
                trigger: Some(scheduler.trigger()),
            };
            let stop = console_stop.clone();
            tokio::spawn(async move {
                let shutdown = async move { stop.notified().await };
                if let Err(e) = runner::web::serve(listener, console, shutdown).await {
                    eprintln!("error: {e}");
                }
            });
        }
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        let mut poll = tokio::time::interval(Duration::from_secs(args.watch_interval.max(1)));
        let mut seen = fingerprint(&watched);
        loop {
            tokio::select! {
                Some(event) = received.recv() => print_event(&event),
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = hangup.recv() => reload(&load, &scheduler, &ctx, rt, &options, "SIGHUP").await,
                _ = poll.tick() => {
                    let now = fingerprint(&watched_files(&ctx_dir(&ctx)));
                    if now != seen {
                        seen = now;
                        reload(&load, &scheduler, &ctx, rt, &options, "a changed file").await;
                    }
                }
            }
        }
        stop.request();
        // The console goes on answering (probes, metrics) while runs drain; it stops last.
        let running = scheduler.running();
        println!(
            "stopping: no new runs; waiting up to {}s for {} (a second signal aborts)",
            args.grace_period,
            if running.is_empty() {
                "nothing".to_string()
            } else {
                running.join(", ")
            }
        );
        let grace = Duration::from_secs(args.grace_period);
        let finished = tokio::select! {
            done = scheduler.stop(grace) => done,
            _ = terminate.recv() => false,
            _ = interrupt.recv() => false,
        };
        while let Ok(event) = received.try_recv() {
            print_event(&event);
        }
        // Continuous jobs drain on the same stop: seal, record, commit, leave the group.
        let drained = tokio::task::spawn_blocking(move || {
            hosted
                .into_iter()
                .map(crate::continuous_command::finish)
                .all(|code| code == ExitCode::SUCCESS)
        });
        let finished = tokio::select! {
            drained = drained => finished && drained.unwrap_or(false),
            _ = tokio::time::sleep(grace) => false,
            _ = terminate.recv() => false,
            _ = interrupt.recv() => false,
        };
        console_stop.notify_one();
        if finished {
            println!("stopped: every run finished and recorded its progress");
            Ok(ExitCode::SUCCESS)
        } else {
            // Files in flight are never visible and progress never passes data: safe to abort.
            eprintln!(
                "error: aborted with runs in flight; the next run redoes their unrecorded part"
            );
            Ok(ExitCode::from(crate::EXIT_FAILED))
        }
    })
}

fn print_event(event: &Event) {
    match event {
        Event::Armed { job, at } => tracing::debug!(job = %job, at = %at, "armed"),
        Event::Started { job, at } => println!("job={job} status=started at={}", at.to_rfc3339()),
        Event::Skipped { job, at } => println!(
            "job={job} status=skipped at={} reason=\"the previous run is still going\"",
            at.to_rfc3339()
        ),
        Event::Finished { job, ok } => {
            println!(
                "job={job} status={}",
                if *ok { "finished" } else { "failed" }
            )
        }
    }
}

/// Loads the config again; a broken edit is logged and the jobs keep their old schedules.
async fn reload(
    load: &impl Fn() -> Result<Config, runner::config::ConfigError>,
    scheduler: &Scheduler,
    ctx: &RwLock<RunContext>,
    rt: &Runtime,
    options: &RunOptions,
    why: &str,
) {
    let loaded = load()
        .map_err(anyhow::Error::from)
        .and_then(|config| crate::context(config, rt, options.clone()));
    match loaded {
        Ok(new) => {
            let jobs = new.config.jobs.clone();
            if let Ok(mut current) = ctx.write() {
                *current = new;
            }
            match scheduler.reload(&jobs).await {
                Ok(()) => println!("reloaded jobs after {why}: {} jobs", jobs.len()),
                Err(e) => eprintln!("error: reload after {why} failed: {e}"),
            }
        }
        Err(e) => {
            eprintln!("error: not reloaded after {why}, the jobs keep running as they were: {e:#}")
        }
    }
}

fn ctx_dir(ctx: &RwLock<RunContext>) -> PathBuf {
    ctx.read().map(|c| c.config.dir.clone()).unwrap_or_default()
}

/// connections.json, topics.json and every file of jobs/.
fn watched_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![
        dir.join(runner::config::CONNECTIONS_FILE),
        dir.join(runner::config::TOPICS_FILE),
    ];
    if let Ok(entries) = std::fs::read_dir(dir.join(runner::config::JOBS_DIR)) {
        files.extend(entries.flatten().map(|e| e.path()));
    }
    files.sort();
    files
}

fn fingerprint(files: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok();
            (
                f.clone(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            )
        })
        .collect()
}
