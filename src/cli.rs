//! Command-line arguments and the plan table.

use clap::{Args, Parser, Subcommand};
use runner::jobs::RunContext;
use runner::logging::LogFormat;
use runner::meter::Display;
use runner::plan::TopicPlan;
use runner::plan::bounds::{Backfill, Bound, Shard};
use std::path::PathBuf;
use std::process::ExitCode;

/// Moves data out of Kafka: bounded, exactly-once exports of topics to Parquet files.
///
/// Configuration lives in a folder: connections.json (Kafka, Schema Registry, storage),
/// topics.json (one entry per topic) and jobs/ (one file per job). See README.md.
#[derive(Debug, Parser)]
#[command(name = "runner", version, about, long_about)]
pub struct Cli {
    /// Folder holding connections.json and topics.json.
    #[arg(long, global = true, env = "RUNNER_CONFIG_DIR", default_value = ".")]
    pub config_dir: PathBuf,
    /// connections.json from another path (a mounted Secret, or `runner demo --keep`'s);
    /// paths inside it are relative to its folder.
    #[arg(long, global = true, env = "RUNNER_CONNECTIONS")]
    pub connections: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How long runs show progress: bars on a terminal (auto), or a log line per topic every
    /// --progress-interval seconds (lines, and auto elsewhere).
    #[arg(long, global = true, value_enum, default_value_t = Display::Auto)]
    pub progress: Display,
    /// Seconds between progress log lines (0: one per batch read).
    #[arg(long, global = true, default_value_t = 10)]
    pub progress_interval: u64,
    /// Also write one log file per topic (<topic>.log) into this folder.
    #[arg(long, global = true, env = "RUNNER_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every enabled job of jobs/ once (every enabled topic when there is no jobs/ folder):
    /// each topic from its recorded progress to the current end.
    ///
    /// Prints one summary line per topic and exits non-zero if any topic failed; the other
    /// topics still finish. Safe to rerun after any crash: no record is lost or duplicated.
    Once(OnceArgs),
    /// Fire the jobs of jobs/ on their cron schedules until SIGTERM or SIGINT.
    ///
    /// A tick that finds its job still running is skipped. SIGHUP, or a change to a config
    /// file, reloads jobs/ without touching runs in flight. The first SIGTERM/SIGINT starts no
    /// new run and lets running ones finish their current files (exit 0); a second aborts.
    Schedule(ScheduleArgs),
    /// Serve the web console: browse and download messages, the jobs with their lag and
    /// history, /metrics, /healthz and /readyz. Read-only.
    Serve(ServeArgs),
    /// Run continuous jobs (`"schedule": "continuous"`) in the foreground, as members of their
    /// topics' consumer groups, until SIGTERM or SIGINT: for a Kubernetes Deployment.
    ///
    /// Files rotate by records, bytes and age (`max_file_age_seconds`). SIGTERM seals and
    /// records every open file, commits, leaves the group and exits 0.
    Continuous(ContinuousArgs),
    /// Turn a consumer fleet file (deployment_details.json) into jobs/ files and Deployment
    /// manifests.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Show what `once` would read (topic, partition, start, end, count, lag), reading no
    /// messages.
    Plan(PlanArgs),
    /// Check connections.json and topics.json; with --connect, also reach Kafka and the sink.
    Validate(ValidateArgs),
    /// Run the jobs of jobs/ twice on an embedded Kafka broker and Schema Registry with sample
    /// data, writing to out/demo; --keep leaves both running.
    Demo(DemoArgs),
    /// Produce JSON lines (a file or stdin) to a topic, encoded as its format in topics.json;
    /// fails unless every record is acknowledged.
    Produce(ProduceArgs),
    /// The last runs from the history in the sink: job, start, status, records, errors.
    History(HistoryArgs),
    /// List, describe, create or delete topics on the cluster of connections.json.
    #[command(subcommand)]
    Topics(TopicsCommand),
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic; its entry in topics.json gives the format (raw when it has none).
    #[arg(long)]
    pub topic: String,
    /// JSON lines to read; stdin when absent.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Use this field of each JSON value as the record key.
    #[arg(long)]
    pub key_field: Option<String>,
    /// Generate sample events instead of reading input: `transactions` (the seed's events).
    #[arg(long, value_parser = ["transactions"])]
    pub generate: Option<String>,
    /// Generated events.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Distinct accounts of generated transactions.
    #[arg(long, default_value_t = 20)]
    pub accounts: usize,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Topics and their partition counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Partitions (leader, replicas, low and high watermarks), configs, and each group's lag.
    Describe {
        topic: String,
        #[arg(long)]
        json: bool,
    },
    /// Create a topic.
    Create {
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// A topic config, `key=value` (repeatable), e.g. `--config cleanup.policy=compact`.
        #[arg(long = "config", value_parser = key_value)]
        configs: Vec<(String, String)>,
    },
    /// Delete a topic.
    Delete { topic: String },
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text} is not key=value"))
}

#[derive(Debug, Args)]
pub struct OnceArgs {
    /// Run only this job of jobs/ (repeatable); it runs even when disabled.
    #[arg(long, conflicts_with = "topic")]
    pub job: Vec<String>,
    /// Export only this topic (repeatable); it runs even when disabled in topics.json. Without
    /// --from/--to it is the topic's regular run, from its recorded progress to the end.
    #[arg(long)]
    pub topic: Vec<String>,
    #[command(flatten)]
    pub bounds: BackfillArgs,
    /// When retention deleted part of the range, continue from the log start and report the
    /// gap (lost_ranges=) instead of failing.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Export only part of each topic's partitions: `I/N` for shard I of N, or `N` to take I
    /// from JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs). Every partition belongs to
    /// exactly one shard.
    #[arg(long, env = "RUNNER_SHARD")]
    pub shard: Option<String>,
    /// Topics exported at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// `--from`/`--to` of `once` and `plan`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Backfill start, for every partition (`X`) or one (`P=X`, repeatable): beginning, end,
    /// stored, an offset, -N (N before the end), s@<ms> or a time (the first offset at or
    /// after it). A backfill leaves the recorded progress alone unless --record-progress.
    #[arg(long, requires = "topic", allow_hyphen_values = true)]
    pub from: Vec<String>,
    /// Backfill end (exclusive), same forms as --from; e@<ms> or a time ends before the first
    /// record at or after it. Default: the end of each partition.
    #[arg(long, requires = "topic", allow_hyphen_values = true)]
    pub to: Vec<String>,
    /// Same as --from with a time: RFC 3339 (2026-11-01T00:00:00Z) or a date (UTC midnight).
    #[arg(long, requires = "topic", conflicts_with = "from")]
    pub from_time: Option<String>,
    /// Same as --to with a time.
    #[arg(long, requires = "topic", conflicts_with = "to")]
    pub to_time: Option<String>,
    /// Move the recorded progress and the group's offsets to where the backfill ends, so the
    /// regular runs continue from there.
    #[arg(long, requires = "topic")]
    pub record_progress: bool,
}

impl BackfillArgs {
    /// The bounds as typed, for the run history.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        parts.extend(self.from.iter().map(|f| format!("--from {f}")));
        parts.extend(self.to.iter().map(|t| format!("--to {t}")));
        parts.extend(self.from_time.iter().map(|t| format!("--from-time {t}")));
        parts.extend(self.to_time.iter().map(|t| format!("--to-time {t}")));
        if self.record_progress {
            parts.push("--record-progress".into());
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// The backfill the flags describe; `None` for a regular run.
    pub fn backfill(&self) -> Result<Option<Backfill>, String> {
        let from: Vec<String> = match &self.from_time {
            Some(t) => vec![time_position(t, "--from-time")?],
            None => self.from.clone(),
        };
        let to: Vec<String> = match &self.to_time {
            Some(t) => vec![time_position(t, "--to-time")?],
            None => self.to.clone(),
        };
        let backfill = Backfill {
            from: Bound::parse(&from, "--from")?,
            to: Bound::parse(&to, "--to")?,
            record_progress: self.record_progress,
        };
        let regular = !backfill.from.is_set() && !backfill.to.is_set();
        Ok((!regular).then_some(backfill))
    }
}

impl OnceArgs {
    /// The shard of `--shard`, its index from JOB_COMPLETION_INDEX when only N is given.
    pub fn shard(&self) -> Result<Option<Shard>, String> {
        let Some(text) = &self.shard else {
            return Ok(None);
        };
        if text.contains('/') {
            return Shard::parse(text).map(Some);
        }
        let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
            format!("--shard {text} takes its index from JOB_COMPLETION_INDEX, which Kubernetes Indexed Jobs set; it is not set here: pass --shard I/{text}")
        })?;
        Shard::parse(&format!("{index}/{text}")).map(Some)
    }
}

fn time_position(text: &str, flag: &str) -> Result<String, String> {
    runner::plan::bounds::parse_time(text)
        .map(|ms| format!("s@{ms}"))
        .ok_or_else(|| format!("{flag} {text}: not a time; use RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01)"))
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Jobs running at the same time; a job due while all slots are busy waits for one.
    #[arg(long, default_value_t = 2)]
    pub max_parallel: usize,
    /// Topics of one job worked on at once, unless the job sets `concurrency`.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seconds running jobs get to finish their current files after SIGTERM or SIGINT
    /// (Kubernetes sends SIGKILL 30 s after SIGTERM by default).
    #[arg(long, default_value_t = 25)]
    pub grace_period: u64,
    /// Seconds between checks of the config files for changes.
    #[arg(long, default_value_t = 5)]
    pub watch_interval: u64,
    /// Also serve the web console, /metrics and the probes on this address (e.g.
    /// 0.0.0.0:8080; off loopback it needs RUNNER_CONSOLE_TOKEN or RUNNER_CONSOLE_USER and
    /// RUNNER_CONSOLE_PASSWORD).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Let the console's jobs page start a run of a job now (a guarded button).
    #[arg(long, requires = "listen")]
    pub allow_trigger: bool,
    #[command(flatten)]
    pub console: ConsoleArgs,
}

/// What the console allows, for `serve` and `schedule --listen`.
#[derive(Debug, Args, Clone)]
pub struct ConsoleArgs {
    /// Show only topics.json's topics, not every topic of the cluster.
    #[arg(long)]
    pub configured_topics_only: bool,
    /// Records one browse query may read at most.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_scan: u64,
    /// Seconds one browse query may take at most.
    #[arg(long, default_value_t = 300)]
    pub max_seconds: u64,
}

impl ConsoleArgs {
    /// The console's options; credentials come from the environment.
    pub fn options(
        &self,
        listen: std::net::SocketAddr,
        allow_trigger: bool,
    ) -> Result<runner::web::ConsoleOptions, runner::web::OptionsError> {
        Ok(runner::web::ConsoleOptions {
            listen,
            auth: runner::web::Auth::from_env()?,
            allow_trigger,
            configured_topics_only: self.configured_topics_only,
            caps: runner::web::browse::Caps {
                max_scan: self.max_scan.max(1),
                max_seconds: self.max_seconds.max(1),
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve on. Off loopback, set RUNNER_CONSOLE_TOKEN (bearer) or
    /// RUNNER_CONSOLE_USER and RUNNER_CONSOLE_PASSWORD (basic): runner refuses to start
    /// without them.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub console: ConsoleArgs,
}

#[derive(Debug, Args)]
pub struct ContinuousArgs {
    /// A continuous job to run (repeatable); every enabled continuous job when absent.
    #[arg(long)]
    pub job: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Write one continuous job file per enabled consumer of FILE into jobs/, and with
    /// --manifests one Deployment per job (replicas: NUMBER_OF_WORKERS).
    Import {
        /// The fleet file, e.g. deployment_details.json.
        file: PathBuf,
        /// What a CONSUMER_FUNCTION_NAME runs, `NAME=export` (repeatable); `export` needs none.
        #[arg(long = "function", value_parser = key_value)]
        functions: Vec<(String, String)>,
        /// Where the Deployment manifests go (one `<job>.yaml` each); none when absent.
        #[arg(long)]
        manifests: Option<PathBuf>,
        /// Replace job files that exist.
        #[arg(long)]
        force: bool,
    },
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
    #[command(flatten)]
    pub bounds: BackfillArgs,
    /// Plan only shard I of N of each topic's partitions (see `once --shard`).
    #[arg(long)]
    pub shard: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Runs shown, newest first.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
    /// Only this job's runs (`(topics)` for `once --topic`).
    #[arg(long)]
    pub job: Option<String>,
    /// Days looked back.
    #[arg(long, default_value_t = 31)]
    pub days: u32,
    /// Print the records as JSON lines (per topic ranges and errors included).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Sample records produced per topic.
    #[arg(long, default_value_t = 10_000)]
    pub records: usize,
    /// Keep the broker and the Schema Registry running until Ctrl-C, to try other commands.
    #[arg(long)]
    pub keep: bool,
}

/// The configuration of `--config-dir`, with connections from `--connections` when given.
pub fn load(
    config_dir: &std::path::Path,
    connections: Option<&std::path::Path>,
) -> Result<runner::config::Config, runner::config::ConfigError> {
    match connections {
        Some(file) => runner::config::Config::load_from(config_dir, file),
        None => runner::config::Config::load(config_dir),
    }
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

/// Runs a `runner topics` command and prints its result.
pub fn topics(
    admin: &runner::admin::Admin,
    config: &runner::config::Config,
    command: TopicsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        TopicsCommand::List { json } => {
            let topics = admin.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&topics)?);
            } else {
                println!("{:<40} {:>10}", "topic", "partitions");
                for t in topics {
                    println!("{:<40} {:>10}", t.topic, t.partitions);
                }
            }
        }
        TopicsCommand::Describe { topic, json } => {
            let groups: Vec<String> = config
                .topics
                .iter()
                .filter(|t| t.topic == topic)
                .map(|t| t.group_id())
                .collect();
            let d = admin.describe(&topic, &groups)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("topic {}", d.topic);
            println!(
                "{:>9} {:>7} {:<12} {:>14} {:>14}",
                "partition", "leader", "replicas", "low", "high"
            );
            for p in &d.partitions {
                let replicas = format!("{:?}", p.replicas);
                println!(
                    "{:>9} {:>7} {:<12} {:>14} {:>14}",
                    p.partition, p.leader, replicas, p.low, p.high
                );
            }
            for (k, v) in &d.configs {
                println!("config {k}={v}");
            }
            for g in &d.groups {
                println!("group {} lag {}", g.group, g.total_lag);
                for (partition, committed, lag) in &g.partitions {
                    let committed = committed.map_or("-".to_string(), |o| o.to_string());
                    println!("  partition {partition} committed {committed} lag {lag}");
                }
            }
        }
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
        } => {
            admin.create(&topic, partitions, replication_factor, &configs)?;
            println!("created topic {topic} with {partitions} partitions");
        }
        TopicsCommand::Delete { topic } => {
            admin.delete(&topic)?;
            println!("deleted topic {topic}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `runner produce`.
pub fn produce(
    config: &runner::config::Config,
    registry: Option<&runner::registry::Registry>,
    args: ProduceArgs,
) -> anyhow::Result<ExitCode> {
    use std::io::BufRead;
    let topic = match config.topics.iter().find(|t| t.topic == args.topic) {
        Some(t) => t.clone(),
        None => serde_json::from_value(serde_json::json!({"topic": args.topic}))?,
    };
    let encoder = runner::produce::Encoder::new(&topic, registry)?;
    let key = args
        .key_field
        .as_deref()
        .or(args.generate.as_ref().map(|_| "account_number"));
    let parse = |line: std::io::Result<String>| -> Result<serde_json::Value, String> {
        let line = line.map_err(|e| e.to_string())?;
        serde_json::from_str(&line).map_err(|e| format!("not JSON: {e}"))
    };
    let values: Box<dyn Iterator<Item = Result<serde_json::Value, String>>> =
        match (&args.generate, &args.file) {
            (Some(_), _) => Box::new(runner::produce::transactions(0..args.count, args.accounts)),
            (None, file) => {
                let reader: Box<dyn BufRead> = match file {
                    Some(file) => Box::new(std::io::BufReader::new(std::fs::File::open(file)?)),
                    None => Box::new(std::io::stdin().lock()),
                };
                let lines = reader
                    .lines()
                    .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()));
                Box::new(lines.map(parse))
            }
        };
    let sent = runner::produce::produce(&config.connections, &topic.topic, &encoder, key, values)?;
    println!(
        "produced {sent} records to {}, all acknowledged",
        topic.topic
    );
    Ok(ExitCode::SUCCESS)
}

/// The jobs of jobs/ with their next fire times.
pub fn print_jobs(config: &runner::config::Config) {
    if config.jobs.is_empty() {
        println!("no jobs/ folder: `runner once` exports every enabled topic");
        return;
    }
    let now = chrono::Utc::now();
    for job in &config.jobs {
        let topics = job.topics(&config.topics);
        let names: Vec<&str> = topics.iter().map(|t| t.topic.as_str()).collect();
        let state = if job.enabled { "" } else { " (disabled)" };
        let kind = match job.kind {
            runner::config::JobKind::Export => "export",
            runner::config::JobKind::Aggregate => "aggregate",
            runner::config::JobKind::Stream => "stream",
        };
        println!(
            "job {} ({kind}){state}: topics {}",
            job.name,
            names.join(", ")
        );
        match &job.cron {
            None => println!("  no schedule: runs with `runner once`"),
            Some(cron) => {
                let next: Vec<String> = cron
                    .upcoming(now, 3)
                    .iter()
                    .map(|t| t.with_timezone(&cron.zone()).to_rfc3339())
                    .collect();
                println!(
                    "  schedule `{}`, next: {}",
                    cron.expression(),
                    next.join(", ")
                );
            }
        }
    }
}

/// Prints the newest runs of the history.
pub fn print_history(ctx: &RunContext, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let entries = runner::history::recent(&ctx.sink, args.last, args.days, args.job.as_deref())?;
    if args.json {
        for e in &entries {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!(
            "no runs recorded in {} in the last {} days",
            ctx.sink.url(),
            args.days
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<20} {:<8} {:>8} {:>12} {:>6}  detail",
        "started (UTC)", "job", "status", "seconds", "records", "topics"
    );
    for e in &entries {
        let seconds = (e.ended_at - e.started_at).num_milliseconds() as f64 / 1000.0;
        let mut detail: Vec<String> = e
            .topics
            .iter()
            .filter_map(|t| t.error.as_ref().map(|err| format!("{}: {err}", t.topic)))
            .collect();
        detail.extend(e.shard.iter().map(|s| format!("shard {s}")));
        detail.extend(e.backfill.clone());
        let line = format!(
            "{:<20} {:<20} {:<8} {:>8.1} {:>12} {:>6}  {}",
            e.started_at.format("%Y-%m-%d %H:%M:%S"),
            e.job,
            e.status,
            seconds,
            e.records(),
            e.topics.len(),
            detail.join("; ")
        );
        println!("{}", line.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
