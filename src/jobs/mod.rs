//! Jobs compose the stages. `run_once` exports topics in parallel with bounded concurrency;
//! a failing topic never stops the others.

pub mod aggregate;
pub mod continuous;
pub mod export;
pub mod stream;

use crate::config::{Config, JobConfig, JobKind, TopicConfig};
use crate::plan::bounds::{Backfill, Shard};
use crate::sink::Sink;
use aggregate::{AggregateError, AggregateSummary};
use export::{ExportError, TopicSummary};
use rayon::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Asks running exports to stop after the file they are writing: they seal their open files,
/// record progress for them and return. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    /// A child stops with its parent too, but stopping it leaves the parent running.
    parent: Option<Box<Stop>>,
}

impl Stop {
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || self.parent.as_ref().is_some_and(|p| p.requested())
    }

    /// A stop for one job: requested by this one's signal, or on its own.
    pub fn child(&self) -> Stop {
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            parent: Some(Box::new(self.clone())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Topics exported at once.
    pub concurrency: usize,
    /// Records per decoded batch.
    pub batch_rows: usize,
    /// Timeout of metadata, watermark and offset requests.
    pub kafka_timeout: Duration,
    /// How long a partition may deliver nothing before the topic fails.
    pub stall_timeout: Duration,
    /// Set by a signal: finish the current files, record progress, start nothing new.
    pub stop: Stop,
    /// How long a topic's lock holds without renewal; a killed holder's lock frees after it.
    pub lock_lease: Duration,
    /// `--from`/`--to` bounds of a backfill; `None` for a regular run.
    pub backfill: Option<Arc<Backfill>>,
    /// This process's part of the partitions (`--shard I/N`).
    pub shard: Option<Shard>,
    /// Progress bars or progress log lines of long runs.
    pub meter: crate::meter::Meter,
    /// Encoded rows a topic buffers over its open files before writing row groups out.
    pub write_buffer_bytes: usize,
    /// Record bytes a topic's reader buffers over its partitions before sending partial
    /// batches on.
    pub read_buffer_bytes: usize,
    /// Export reads take librdkafka's messages in batches (false: one poll per message, the
    /// slower path, kept to compare their output in tests).
    pub read_in_batches: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 4,
            batch_rows: 8192,
            kafka_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(120),
            stop: Stop::default(),
            lock_lease: Duration::from_secs(600),
            backfill: None,
            shard: None,
            meter: crate::meter::Meter::default(),
            write_buffer_bytes: crate::write::MAX_BUFFERED_BYTES,
            read_buffer_bytes: crate::read::MAX_BUFFERED_BYTES,
            read_in_batches: true,
        }
    }
}

#[derive(Clone)]
pub struct RunContext {
    pub config: Config,
    pub sink: Arc<Sink>,
    /// The Schema Registry of connections.json, for the avro and protobuf formats.
    pub registry: Option<Arc<crate::registry::Registry>>,
    pub options: RunOptions,
    /// Rust processors a custom binary offers to stream jobs (`stream.process.rust`).
    pub processors: crate::process::Registry,
}

pub struct TopicOutcome {
    pub topic: String,
    pub result: Result<TopicSummary, ExportError>,
}

pub struct AggregateOutcome {
    pub topic: String,
    pub result: Result<AggregateSummary, AggregateError>,
}

pub enum JobResults {
    Export(Vec<TopicOutcome>),
    Aggregate(Vec<AggregateOutcome>),
    /// The job's own sink (its storage_url) could not be opened.
    Setup(crate::sink::SinkError),
}

pub struct JobOutcome {
    pub job: String,
    pub results: JobResults,
}

impl JobOutcome {
    /// Topics that succeeded and failed.
    pub fn counts(&self) -> (usize, usize) {
        let (ok, all) = match &self.results {
            JobResults::Export(r) => (r.iter().filter(|o| o.result.is_ok()).count(), r.len()),
            JobResults::Aggregate(r) => (r.iter().filter(|o| o.result.is_ok()).count(), r.len()),
            JobResults::Setup(_) => (0, 1),
        };
        (ok, all - ok)
    }
}

/// Runs one job once, with its overrides (sink, concurrency, limits).
pub fn run_job(ctx: &RunContext, job: &JobConfig) -> JobOutcome {
    let span = tracing::info_span!("job", job = %job.name);
    let _entered = span.enter();
    let ctx = match job_context(ctx, job) {
        Ok(ctx) => ctx,
        Err(e) => {
            return JobOutcome {
                job: job.name.clone(),
                results: JobResults::Setup(e),
            };
        }
    };
    let topics = job.topics(&ctx.config.topics);
    let results = match job.kind {
        JobKind::Export => JobResults::Export(run_once(&ctx, &topics)),
        // Stream jobs run continuously (`runner continuous`); `once` refuses them earlier.
        JobKind::Stream => JobResults::Export(Vec::new()),
        // Totals need every partition in one place: the first shard computes them.
        JobKind::Aggregate if ctx.options.shard.is_some_and(|s| s.index > 0) => {
            tracing::info!("aggregate jobs run on shard 0 only");
            JobResults::Aggregate(Vec::new())
        }
        JobKind::Aggregate => JobResults::Aggregate(
            topics
                .iter()
                // A stop request lets the topic in progress finish and starts no other.
                .take_while(|_| !ctx.options.stop.requested())
                .map(|t| {
                    let result = aggregate::run(&ctx, job, t);
                    if let Err(e) = &result {
                        tracing::error!(topic = %t.topic, error = %e, "aggregate failed");
                    }
                    AggregateOutcome {
                        topic: t.topic.clone(),
                        result,
                    }
                })
                .collect(),
        ),
    };
    JobOutcome {
        job: job.name.clone(),
        results,
    }
}

/// The context of one job, with its overrides: its own sink, its concurrency.
pub fn job_context(
    ctx: &RunContext,
    job: &JobConfig,
) -> Result<RunContext, crate::sink::SinkError> {
    let mut ctx = ctx.clone();
    if let Some(c) = job.concurrency {
        ctx.options.concurrency = c;
    }
    if let Some(cfg) = &job.sink {
        ctx.sink = Arc::new(Sink::open(cfg, ctx.sink.runtime())?);
    }
    Ok(ctx)
}

/// Exports each topic once; results come back in the order of `topics`.
pub fn run_once(ctx: &RunContext, topics: &[TopicConfig]) -> Vec<TopicOutcome> {
    let run_span = tracing::Span::current();
    let export = |topic: &TopicConfig| {
        let span = tracing::info_span!(parent: &run_span, "topic", topic = %topic.topic);
        let _entered = span.enter();
        if ctx.options.stop.requested() {
            return TopicOutcome {
                topic: topic.topic.clone(),
                result: Ok(TopicSummary {
                    topic: topic.topic.clone(),
                    stopped: true,
                    ..TopicSummary::default()
                }),
            };
        }
        // A bug in one topic must not take the others down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            export::export_topic(ctx, topic)
        }))
        .unwrap_or_else(|panic| Err(ExportError::Panic(panic_message(&panic))));
        if let Err(e) = &result {
            tracing::error!(error = %e, "topic failed");
        }
        TopicOutcome {
            topic: topic.topic.clone(),
            result,
        }
    };
    match rayon::ThreadPoolBuilder::new()
        .num_threads(ctx.options.concurrency.max(1))
        .thread_name(|i| format!("runner-topic-{i}"))
        .build()
    {
        Ok(pool) => pool.install(|| topics.par_iter().map(export).collect()),
        Err(_) => topics.iter().map(export).collect(),
    }
}

/// Runs one member per item on its own scoped thread, inside the item's span. The first to
/// fail logs its error and asks `stop` to end the others; a panic becomes `panicked(message)`.
/// Results come back in the order of `items`.
pub(crate) fn run_members<I: Sync, T: Send, E: std::fmt::Display + Send>(
    stop: &Stop,
    items: &[I],
    span: impl Fn(&I) -> tracing::Span,
    work: impl Fn(&I) -> Result<T, E> + Sync,
    panicked: impl Fn(String) -> E,
) -> Vec<Result<T, E>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| {
                let span = span(item);
                let work = &work;
                scope.spawn(move || {
                    let _entered = span.enter();
                    let result = work(item);
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "member failed; stopping the job");
                        stop.request();
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|p| Err(panicked(panic_message(&p))))
            })
            .collect()
    })
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}
