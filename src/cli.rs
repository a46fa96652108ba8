//! Command-line arguments and the plan table.

use clap::{Args, Parser, Subcommand};
use runner::jobs::RunContext;
use runner::logging::LogFormat;
use runner::plan::TopicPlan;
use std::path::PathBuf;
use std::process::ExitCode;

/// Moves data out of Kafka: bounded, exactly-once exports of topics to Parquet files.
///
/// Configuration lives in a folder: connections.json (Kafka, Schema Registry, storage) and
/// topics.json (one entry per topic). See README.md.
#[derive(Debug, Parser)]
#[command(name = "runner", version, about, long_about)]
pub struct Cli {
    /// Folder holding connections.json and topics.json.
    #[arg(long, global = true, env = "RUNNER_CONFIG_DIR", default_value = ".")]
    pub config_dir: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Also write one log file per topic (<topic>.log) into this folder.
    #[arg(long, global = true, env = "RUNNER_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export each enabled topic once: from its recorded progress to the current end.
    ///
    /// Prints one summary line per topic and exits non-zero if any topic failed; the other
    /// topics still finish. Safe to rerun after any crash: no record is lost or duplicated.
    Once(OnceArgs),
    /// Show what `once` would read (topic, partition, start, end, count, lag), reading no
    /// messages.
    Plan(PlanArgs),
    /// Check connections.json and topics.json; with --connect, also reach Kafka and the sink.
    Validate(ValidateArgs),
    /// Run the export on an embedded Kafka broker with sample data, writing to out/demo.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct OnceArgs {
    /// Export only this topic (repeatable); it runs even when disabled in topics.json.
    #[arg(long)]
    pub topic: Vec<String>,
    /// Topics exported at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Also connect: look up the topics in Kafka, write, read and delete a probe object in the
    /// sink, and list the Schema Registry's subjects, with the configured credentials.
    #[arg(long)]
    pub connect: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan only this topic (repeatable).
    #[arg(long)]
    pub topic: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Sample records produced per topic.
    #[arg(long, default_value_t = 10_000)]
    pub records: usize,
}

/// Plans every topic and prints a table (or JSON); exit 1 when a topic cannot be planned.
pub fn print_plans(
    ctx: &RunContext,
    topics: &[runner::config::TopicConfig],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut plans: Vec<TopicPlan> = Vec::new();
    let mut failed = false;
    for topic in topics {
        match runner::jobs::export::plan_only(ctx, topic) {
            Ok(plan) => plans.push(plan),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else {
        println!(
            "{:<30} {:>9} {:>14} {:>14} {:>12} {:>12}  start from",
            "topic", "partition", "start", "end", "count", "lag after"
        );
        for plan in &plans {
            for p in &plan.partitions {
                println!(
                    "{:<30} {:>9} {:>14} {:>14} {:>12} {:>12}  {}",
                    plan.topic,
                    p.partition,
                    p.start,
                    p.end,
                    p.count(),
                    p.lag_after(),
                    p.source.name()
                );
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints one line per check; exit 1 when any fails.
pub fn print_checks(ctx: &RunContext, run_id: &str) -> ExitCode {
    let timeout = std::time::Duration::from_secs(10);
    let checks = [
        ("kafka", runner::check::kafka(&ctx.config, timeout)),
        ("sink", runner::check::sink(&ctx.sink, run_id)),
        ("registry", runner::check::registry(ctx.registry.as_deref())),
    ];
    let mut failed = false;
    for (name, result) in checks {
        match result {
            Ok(summary) => println!("ok      {name}: {summary}"),
            Err(e) => {
                println!("FAILED  {name}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
