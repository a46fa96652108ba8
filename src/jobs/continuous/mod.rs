//! Continuous jobs: each topic is read by members of a consumer group that work on records as
//! they arrive, until asked to stop. `export` writes files, `aggregate` keeps running totals.
//!
//! Both share this loop: poll into per-partition buffers, let the work take what is ready,
//! retry failures a retry may fix with backoff (keeping the partitions), and on stop drain:
//! finish what is buffered, record it, commit and leave the group.

mod aggregate;
mod export;

use super::RunContext;
use super::export::ExportError;
use crate::config::{ContinuousSettings, JobConfig, JobKind, TopicConfig};
use crate::jobs::aggregate::AggregateError;
use crate::read::group::{self, Assignment, Buffers, GroupConsumer};
use rdkafka::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest pause after a failure a retry may fix; well under max.poll.interval.ms.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ContinuousError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Aggregate(#[from] AggregateError),
    #[error(transparent)]
    Stream(#[from] super::stream::StreamError),
}

impl ContinuousError {
    pub fn is_permanent(&self) -> bool {
        match self {
            ContinuousError::Export(e) => e.is_permanent(),
            ContinuousError::Aggregate(e) => e.is_permanent(),
            ContinuousError::Stream(e) => e.is_permanent(),
        }
    }
}

/// What one member did before it stopped.
#[derive(Debug, Clone, Default)]
pub struct MemberSummary {
    pub records: u64,
    pub files: u64,
    pub dead_letters: u64,
}

/// What the loop drives over the partitions a member owns.
trait Work: Assignment {
    fn buffers(&mut self) -> &mut Buffers;
    /// Works on the batches that are ready; reports a failure from the last rebalance.
    fn step(&mut self, consumer: &GroupConsumer) -> Result<(), ContinuousError>;
    /// On stop: everything buffered is worked on and recorded.
    fn drain(&mut self, consumer: &GroupConsumer) -> Result<(), ContinuousError>;
    /// After a failure: drops unrecorded work and starts each owned partition again from the
    /// recorded position.
    fn restart(&mut self, consumer: &GroupConsumer);
    fn summary(&self) -> MemberSummary;
    /// Extra status fields, e.g. `open_files=2`.
    fn status(&self) -> String;
    /// A plain consumer of the group, for watermarks.
    fn planner(&self) -> &rdkafka::consumer::BaseConsumer;
}

/// Runs a continuous job: `threads` members per topic, each on its own thread, until
/// `ctx.options.stop` is requested or one fails permanently (then the others stop too).
pub fn run_job(ctx: &RunContext, job: &JobConfig) -> Result<MemberSummary, ContinuousError> {
    if job.kind == JobKind::Stream {
        let summary = super::stream::run(ctx, job, &ctx.processors)?;
        return Ok(MemberSummary {
            records: summary.records,
            files: 0,
            dead_letters: summary.dead_letters,
        });
    }
    let settings = job.continuous.clone().unwrap_or_default();
    let topics = job.topics(&ctx.config.topics);
    let mut ctx = ctx.clone();
    ctx.options.stop = ctx.options.stop.child();
    let ctx = &ctx;
    let members: Vec<(&TopicConfig, usize)> = topics
        .iter()
        .flat_map(|topic| (0..settings.threads).map(move |member| (topic, member)))
        .collect();
    let results = super::run_members(
        &ctx.options.stop,
        &members,
        |(topic, _)| tracing::info_span!("topic", topic = %topic.topic),
        |(topic, member)| run_member(ctx, job, topic, &settings, *member),
        |panic| ContinuousError::from(ExportError::Panic(panic)),
    );
    let mut total = MemberSummary::default();
    for result in results {
        let summary = result?;
        total.records += summary.records;
        total.files += summary.files;
        total.dead_letters += summary.dead_letters;
    }
    Ok(total)
}

/// A continuous read starts where the group left off: the topics.json settings that pick
/// other starts or caps belong to bounded runs.
fn continuous_topic(topic: &TopicConfig, group: String) -> TopicConfig {
    let mut topic = topic.clone();
    topic.reset_offsets = false;
    topic.starting_offsets = None;
    topic.num_messages = None;
    topic.group_id = Some(group);
    topic
}

fn run_member(
    ctx: &RunContext,
    job: &JobConfig,
    topic: &TopicConfig,
    settings: &ContinuousSettings,
    member: usize,
) -> Result<MemberSummary, ContinuousError> {
    let config = |group: &str| {
        let mut config = crate::kafka::export_consumer_config(&ctx.config.connections, group);
        if let Some(ms) = settings.max_poll_interval_ms {
            config.set("max.poll.interval.ms", ms.to_string());
        }
        config.set("client.id", format!("runner-{}-{member}", topic.topic));
        config
    };
    // An aggregate has its own group, as in batch runs: an export must not move its start.
    let group = settings.group_id.clone().unwrap_or_else(|| match job.kind {
        JobKind::Export => topic.group_id(),
        JobKind::Aggregate => format!("runner.aggregate.{}", job.name),
        JobKind::Stream => super::stream::group_of(job),
    });
    let topic = continuous_topic(topic, group);
    let config = config(&topic.group_id());
    let stop = &ctx.options.stop;
    match job.kind {
        JobKind::Export => {
            let work = with_retries(stop, || export::ExportWork::new(ctx, &topic, settings))?;
            run_loop(ctx, &topic, config, work, settings, member)
        }
        JobKind::Aggregate => {
            let work = with_retries(stop, || {
                aggregate::AggregateWork::new(ctx, job, &topic, settings)
            })?;
            run_loop(ctx, &topic, config, work, settings, member)
        }
        // run_job hands stream jobs to their own loop before it gets here.
        JobKind::Stream => Err(super::stream::StreamError::Setup(format!(
            "job {}: a stream job runs through jobs::stream::run",
            job.name
        ))
        .into()),
    }
}

/// Starts a member's work, retrying with backoff while the failure is one a retry may fix (a
/// store or broker that is down): a pod must not crash-loop through an outage.
fn with_retries<W, E: Into<ContinuousError>>(
    stop: &super::Stop,
    mut start: impl FnMut() -> Result<W, E>,
) -> Result<W, ContinuousError> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match start().map_err(Into::into) {
            Ok(work) => return Ok(work),
            Err(e) if e.is_permanent() || stop.requested() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot start; retrying");
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop.requested() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Polls, works and drains one member until its stop is requested. Generic over the work so
/// that the rebalance callback reaches the same state the loop works on.
fn run_loop<W: Work + 'static>(
    ctx: &RunContext,
    topic: &TopicConfig,
    config: ClientConfig,
    work: W,
    settings: &ContinuousSettings,
    member: usize,
) -> Result<MemberSummary, ContinuousError> {
    let worker = Arc::new(Mutex::new(work));
    let consumer = group::subscribe(config, &topic.topic, worker.clone()).map_err(|source| {
        ExportError::Consumer {
            topic: topic.topic.clone(),
            source,
        }
    })?;
    let status_every = Duration::from_secs(settings.status_interval_seconds);
    let mut status = Status::new();
    let mut backoff = Duration::from_secs(1);
    while !ctx.options.stop.requested() {
        poll_some(&consumer, &worker);
        let step = lock(&worker).step(&consumer);
        match step {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "continuing after a failure a retry may fix: unrecorded work is redone");
                pause(&consumer, backoff, &ctx.options.stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                lock(&worker).restart(&consumer);
            }
        }
        if status.last.elapsed() >= status_every {
            status.log(&mut *lock(&worker), &topic.topic, member);
        }
    }
    let drained = lock(&worker).drain(&consumer);
    consumer.unsubscribe();
    // Dropping the consumer closes it: it leaves the group, serving the last revocation.
    drop(consumer);
    drained?;
    let summary = lock(&worker).summary();
    tracing::info!(
        records = summary.records,
        files = summary.files,
        "member stopped: everything read is recorded and committed"
    );
    Ok(summary)
}

/// Polls messages into the buffers for at most 50 ms (or 4096 messages); returns early when
/// none is waiting. The bound keeps file ages and saves on time under a steady stream.
fn poll_some<W: Work>(consumer: &GroupConsumer, worker: &Mutex<W>) {
    let until = Instant::now() + Duration::from_millis(50);
    for _ in 0..4096 {
        if Instant::now() >= until {
            return;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => return,
            Some(Ok(msg)) => lock(worker).buffers().push(&msg),
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange))) => {
                // Retention deleted offsets before they were read: planning again applies
                // fail_on_data_loss, as a batch run does.
                lock(worker).restart(consumer);
                return;
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Kafka reports a problem; the client retries");
                return;
            }
        }
    }
}

/// Waits out a backoff while serving the group, so the member keeps its partitions.
fn pause(consumer: &GroupConsumer, wait: Duration, stop: &super::Stop) {
    if let Ok(tpl) = consumer.assignment() {
        let _ = consumer.pause(&tpl);
    }
    let until = Instant::now() + wait;
    while Instant::now() < until && !stop.requested() {
        // Paused partitions deliver nothing; the poll serves heartbeats and rebalances.
        let _ = consumer.poll(Duration::from_millis(200));
    }
    if let Ok(tpl) = consumer.assignment() {
        let _ = consumer.resume(&tpl);
    }
}

fn lock<W>(worker: &Mutex<W>) -> MutexGuard<'_, W> {
    match worker.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Where each partition starts: recorded progress (or state), else the group's committed
/// offset, else the log start, with retention checked as for a batch run.
fn plan_starts(
    planner: &rdkafka::consumer::BaseConsumer,
    topic: &TopicConfig,
    recorded: &BTreeMap<i32, i64>,
    partitions: &[i32],
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, crate::plan::PlanError> {
    use crate::plan::{self, PlanError};
    let plan = plan::plan_topic(planner, topic, recorded, plan::Request::default(), timeout)?;
    let mut starts = BTreeMap::new();
    for p in plan
        .partitions
        .iter()
        .filter(|p| partitions.contains(&p.partition))
    {
        if let Some((from, to)) = p.lost {
            tracing::warn!(
                partition = p.partition,
                from,
                to,
                "offsets deleted by retention were skipped"
            );
        }
        starts.insert(p.partition, p.start);
    }
    if let Some(&missing) = partitions.iter().find(|p| !starts.contains_key(p)) {
        return Err(PlanError::UnknownPartition {
            topic: topic.topic.clone(),
            partition: missing,
            count: plan.partitions.len(),
        });
    }
    Ok(starts)
}

/// Each partition's start from `planned` (`begin` starts the stages there), in the order of
/// `partitions`; a planning failure is kept in `failure` for the next step to report, and no
/// partition gets a start.
fn apply_starts<E>(
    partitions: &[i32],
    planned: Result<BTreeMap<i32, i64>, E>,
    failure: &mut Option<E>,
    mut begin: impl FnMut(i32, i64),
) -> Vec<Option<i64>> {
    match planned {
        Ok(starts) => partitions
            .iter()
            .map(|&p| {
                let start = starts.get(&p).copied();
                if let Some(offset) = start {
                    begin(p, offset);
                }
                start
            })
            .collect(),
        Err(e) => {
            *failure = Some(e);
            vec![None; partitions.len()]
        }
    }
}

/// Moves the consumer of owned `partitions` to their `starts` (after a restart); a partition
/// without a start is left where it is.
fn seek(
    consumer: &GroupConsumer,
    topic: &str,
    partitions: &[i32],
    starts: Vec<Option<i64>>,
    timeout: Duration,
) {
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (p, offset) in partitions.iter().zip(starts) {
        if let Some(offset) = offset {
            let _ = tpl.add_partition_offset(topic, *p, rdkafka::Offset::Offset(offset));
        }
    }
    if tpl.count() > 0
        && let Err(e) = consumer.seek_partitions(tpl, timeout)
    {
        tracing::warn!(error = %e, "cannot seek back to the recorded position");
    }
}

/// The partitions of `topic` the consumer owns now.
fn owned(consumer: &GroupConsumer, topic: &str) -> Vec<i32> {
    consumer
        .assignment()
        .map(|tpl| {
            tpl.elements_for_topic(topic)
                .iter()
                .map(|e| e.partition())
                .collect()
        })
        .unwrap_or_default()
}

/// The periodic status line of a member.
struct Status {
    last: Instant,
    records: u64,
}

impl Status {
    fn new() -> Self {
        Status {
            last: Instant::now(),
            records: 0,
        }
    }

    fn log(&mut self, work: &mut dyn Work, topic: &str, index: usize) {
        let seconds = self.last.elapsed().as_secs_f64().max(0.001);
        let records = work.summary().records;
        let per_second = records.saturating_sub(self.records) as f64 / seconds;
        let timeout = Duration::from_secs(5);
        let lag: Vec<String> = work
            .buffers()
            .positions()
            .into_iter()
            .filter_map(|(p, next)| {
                let (_, high) = work.planner().fetch_watermarks(topic, p, timeout).ok()?;
                Some(format!("{p}:{}", (high - next).max(0)))
            })
            .collect();
        tracing::info!(
            member = index,
            records,
            per_second = per_second.round() as u64,
            lag = %lag.join(","),
            "status {}",
            work.status()
        );
        self.last = Instant::now();
        self.records = records;
    }
}
