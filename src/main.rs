//! The `runner` command line. Errors become messages and exit codes here, nowhere else.

// The library's errors carry their topic, partition and offset by value, as in lib.rs.
#![allow(clippy::result_large_err)]

mod cli;
mod continuous_command;
mod demo;
mod once_command;
mod schedule_command;
mod serve_command;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use runner::config::Config;
use runner::jobs::{JobOutcome, JobResults, RunContext, RunOptions, TopicOutcome};
use runner::logging::LogFormat;
use runner::registry::Registry;
use runner::sink::Sink;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes (README lists them for CronJob authors).
pub(crate) const EXIT_FAILED: u8 = 1;
pub(crate) const EXIT_CONFIG: u8 = 2;
/// Every topic of the run failed: nothing moved.
const EXIT_ALL_FAILED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The campaign's crash points read FAILPOINTS (a test build only).
    #[cfg(feature = "failpoints")]
    let _crash_points = fail::FailScenario::setup();
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
        Command::Once(args) => once_command::run(load, args, meter, &rt, run_id),
        Command::History(args) => {
            let config = load()?;
            let ctx = context(config, &rt, RunOptions::default())?;
            cli::print_history(&ctx, &args)
        }
        Command::Schedule(args) => schedule_command::run(load, &args, meter, &rt),
        Command::Serve(args) => serve_command::run(load, &args, &rt),
        Command::Continuous(args) => continuous_command::run(load, args, &rt),
        Command::Fleet(command) => continuous_command::fleet(load, command),
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

/// Appends the run to the history in the sink; a failure there is logged, not fatal.
pub(crate) fn remember(
    ctx: &RunContext,
    outcome: &JobOutcome,
    run_id: &str,
    started: chrono::DateTime<chrono::Utc>,
    labels: &runner::history::RunLabels,
) -> runner::history::Entry {
    let entry = runner::history::Entry::new(outcome, run_id, started, labels);
    if let Err(e) = runner::history::append(&ctx.sink, &entry) {
        tracing::warn!(error = %e, "cannot record the run in the history");
    }
    entry
}

/// The run context: the configured sink plus run options.
pub(crate) fn context(
    config: Config,
    rt: &tokio::runtime::Runtime,
    options: RunOptions,
) -> anyhow::Result<RunContext> {
    let sink = Sink::open(&config.sink, rt.handle().clone())?;
    let registry = Registry::from_connections(&config.connections, rt.handle().clone())?;
    Ok(RunContext {
        processors: Default::default(),
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
