//! The `runner` command line. Errors become messages and exit codes here, nowhere else.

mod cli;
mod demo;
mod schedule_command;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use runner::config::Config;
use runner::jobs::{self, JobOutcome, JobResults, RunContext, RunOptions, TopicOutcome};
use runner::logging::LogFormat;
use runner::registry::Registry;
use runner::sink::Sink;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes (README lists them for CronJob authors).
pub(crate) const EXIT_FAILED: u8 = 1;
const EXIT_CONFIG: u8 = 2;
/// Every topic of the run failed: nothing moved.
const EXIT_ALL_FAILED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run_id = runner::logging::new_run_id();
    let _logs = runner::logging::init(cli.log_format, cli.log_dir.clone());
    let span = tracing::info_span!("run", run_id = %run_id);
    let _entered = span.enter();
    match run(cli, &run_id) {
        Ok(code) => code,
        Err(e) => {
            // A store that cannot even be built (bad key, unknown option) is a config problem.
            let config_error = e.downcast_ref::<runner::config::ConfigError>().is_some()
                || matches!(
                    e.downcast_ref::<runner::sink::SinkError>(),
                    Some(runner::sink::SinkError::Open { .. })
                );
            eprintln!("error: {e:#}");
            ExitCode::from(if config_error {
                EXIT_CONFIG
            } else {
                EXIT_FAILED
            })
        }
    }
}

fn run(cli: Cli, run_id: &str) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let load = || cli::load(&cli.config_dir, cli.connections.as_deref());
    let meter = {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal() && cli.log_format == LogFormat::Text;
        let every = std::time::Duration::from_secs(cli.progress_interval);
        runner::meter::Meter::new(cli.progress, every, terminal)
    };
    match cli.command {
        Command::Validate(args) => {
            let config = load()?;
            println!(
                "{} and {} in {} are valid: {} topics ({} enabled); sink {} (credential: {})",
                runner::config::CONNECTIONS_FILE,
                runner::config::TOPICS_FILE,
                cli.config_dir.display(),
                config.topics.len(),
                config.topics.iter().filter(|t| t.enabled).count(),
                config.sink.url,
                config.sink.credential()
            );
            cli::print_jobs(&config);
            let ctx = context(config, &rt, RunOptions::default())?;
            if !args.connect {
                return Ok(ExitCode::SUCCESS);
            }
            Ok(cli::print_checks(&ctx, run_id))
        }
        Command::Plan(args) => {
            let config = load()?;
            let topics = config.select_topics(&args.topic)?;
            let flags = |e: String| runner::config::ConfigError::Flags(e);
            let shard = match &args.shard {
                Some(s) => Some(runner::plan::bounds::Shard::parse(s).map_err(flags)?),
                None => None,
            };
            let options = RunOptions {
                backfill: args.bounds.backfill().map_err(flags)?.map(Arc::new),
                shard,
                ..RunOptions::default()
            };
            let ctx = context(config, &rt, options)?;
            cli::print_plans(&ctx, &topics, args.json)
        }
        Command::Once(args) => {
            let mut config = load()?;
            let flags = |e: String| runner::config::ConfigError::Flags(e);
            let stop = runner::jobs::Stop::default();
            stop_on_signals(&rt, stop.clone());
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
            let started = chrono::Utc::now();
            if !args.topic.is_empty() || config.jobs.is_empty() {
                let topics = config.select_topics(&args.topic)?;
                let ctx = context(config, &rt, options)?;
                let outcomes = jobs::run_once(&ctx, &topics);
                let code = report(&outcomes);
                let code = if stop.requested() {
                    stopped(code)
                } else {
                    code
                };
                let outcome = JobOutcome {
                    job: TOPICS_JOB.into(),
                    results: JobResults::Export(outcomes),
                };
                remember(&ctx, &outcome, run_id, started, &labels);
                return Ok(code);
            }
            let chosen = config.select_jobs(&args.job)?;
            let ctx = context(config, &rt, options)?;
            let outcomes: Vec<JobOutcome> = chosen
                .iter()
                .map(|j| {
                    let started = chrono::Utc::now();
                    let outcome = jobs::run_job(&ctx, j);
                    remember(&ctx, &outcome, run_id, started, &labels);
                    outcome
                })
                .collect();
            let code = report_jobs(&outcomes);
            Ok(if stop.requested() {
                stopped(code)
            } else {
                code
            })
        }
        Command::History(args) => {
            let config = load()?;
            let ctx = context(config, &rt, RunOptions::default())?;
            cli::print_history(&ctx, &args)
        }
        Command::Schedule(args) => schedule_command::run(load, &args, meter, &rt),
        Command::Demo(args) => demo::run(&cli.config_dir, &args, &rt),
        Command::Produce(args) => {
            let config = load()?;
            let registry = Registry::from_connections(&config.connections, rt.handle().clone())?;
            cli::produce(&config, registry.as_ref(), args)
        }
        Command::Topics(command) => {
            let config = load()?;
            let admin = runner::admin::Admin::new(&config.connections, rt.handle().clone())?;
            cli::topics(&admin, &config, command)
        }
    }
}

/// SIGTERM or SIGINT asks the run to stop after its current batches: open files are sealed
/// and recorded. A second signal aborts: files in flight are never visible and progress never
/// passes the data, so that is safe too.
fn stop_on_signals(rt: &tokio::runtime::Runtime, stop: runner::jobs::Stop) {
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

/// The history's job name of `runner once --topic` and of runs without jobs/.
const TOPICS_JOB: &str = "(topics)";

/// Appends the run to the history in the sink; a failure there is logged, not fatal.
pub(crate) fn remember(
    ctx: &RunContext,
    outcome: &JobOutcome,
    run_id: &str,
    started: chrono::DateTime<chrono::Utc>,
    labels: &runner::history::RunLabels,
) {
    let entry = runner::history::Entry::new(outcome, run_id, started, labels);
    if let Err(e) = runner::history::append(&ctx.sink, &entry) {
        tracing::warn!(error = %e, "cannot record the run in the history");
    }
}

/// The run context: the configured sink plus run options.
fn context(
    config: Config,
    rt: &tokio::runtime::Runtime,
    options: RunOptions,
) -> anyhow::Result<RunContext> {
    let sink = Sink::open(&config.sink, rt.handle().clone())?;
    let registry = Registry::from_connections(&config.connections, rt.handle().clone())?;
    Ok(RunContext {
        config,
        sink: Arc::new(sink),
        registry: registry.map(Arc::new),
        options,
    })
}

/// One summary line per topic on stdout; non-zero exit naming failed topics.
pub fn report(outcomes: &[TopicOutcome]) -> ExitCode {
    let failed: Vec<Failed> = outcomes
        .iter()
        .filter(|o| !print_topic(None, o))
        .map(|o| Failed {
            name: o.topic.clone(),
            permanent: o.result.as_ref().is_err_and(|e| e.is_permanent()),
        })
        .collect();
    exit_code(&failed, outcomes.len())
}

/// A failed topic (or job), and whether a rerun cannot fix it.
struct Failed {
    name: String,
    permanent: bool,
}

/// One summary line per job and topic; non-zero exit naming what failed.
pub fn report_jobs(outcomes: &[JobOutcome]) -> ExitCode {
    let mut failed = Vec::new();
    let mut total = 0;
    for outcome in outcomes {
        let job = outcome.job.as_str();
        match &outcome.results {
            JobResults::Export(topics) => {
                for t in topics {
                    total += 1;
                    if !print_topic(Some(job), t) {
                        failed.push(Failed {
                            name: format!("{job}/{}", t.topic),
                            permanent: t.result.as_ref().is_err_and(|e| e.is_permanent()),
                        });
                    }
                }
            }
            JobResults::Aggregate(topics) => {
                for t in topics {
                    total += 1;
                    match &t.result {
                        Ok(s) => println!(
                            "job={job} topic={} status=ok records={} groups={} run={} mode={} seconds={:.2}",
                            s.topic,
                            s.records,
                            s.totals.as_ref().map_or(0, |t| t.num_rows()),
                            s.run,
                            s.mode.as_str(),
                            s.seconds
                        ),
                        Err(e) => {
                            println!("job={job} topic={} status=failed error=\"{e}\"", t.topic);
                            failed.push(Failed {
                                name: format!("{job}/{}", t.topic),
                                permanent: e.is_permanent(),
                            });
                        }
                    }
                }
            }
            JobResults::Setup(e) => {
                total += 1;
                println!("job={job} status=failed error=\"{e}\"");
                failed.push(Failed {
                    name: job.to_string(),
                    permanent: e.is_permanent(),
                });
            }
        }
    }
    exit_code(&failed, total)
}

/// Prints a topic's summary line; false when it failed.
fn print_topic(job: Option<&str>, outcome: &TopicOutcome) -> bool {
    let prefix = job.map_or(String::new(), |j| format!("job={j} "));
    match &outcome.result {
        Ok(s) => {
            println!(
                "{prefix}topic={} status=ok records={} dead_letters={} files={} bytes={} seconds={:.2}{}{}",
                s.topic,
                s.records,
                s.dead_letters,
                s.files,
                s.bytes,
                s.seconds,
                if s.lost.is_empty() {
                    String::new()
                } else {
                    format!(" lost_ranges={:?}", s.lost)
                },
                if s.stopped { " stopped=true" } else { "" }
            );
            true
        }
        Err(e) => {
            println!(
                "{prefix}topic={} status=failed error=\"{e}\"",
                outcome.topic
            );
            false
        }
    }
}

/// 2 when every failure is one a rerun cannot fix; else 3 when everything failed, 1 when
/// some topics did.
fn exit_code(failed: &[Failed], total: usize) -> ExitCode {
    if failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    let names: Vec<&str> = failed.iter().map(|f| f.name.as_str()).collect();
    eprintln!(
        "error: {} of {} topics failed: {}",
        failed.len(),
        total,
        names.join(", ")
    );
    if failed.iter().all(|f| f.permanent) {
        eprintln!(
            "error: a rerun cannot fix these failures (configuration, authorization, schema, bounds or data loss): fix what the messages name"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    ExitCode::from(if failed.len() == total {
        EXIT_ALL_FAILED
    } else {
        EXIT_FAILED
    })
}
