//! The continuous export job: each topic is read by members of its consumer group that export
//! records as they arrive, until asked to stop.
//!
//! The stages are the batch export's (decode, write, progress); what changes is who owns a
//! partition and when a file ends. A member owns a partition from its assignment to its
//! revocation. On assignment it starts at the recorded progress, the source of truth (Kafka's
//! committed offsets mirror it). On revocation it seals and records the partition before
//! letting go; a lost partition (missed heartbeats) is dropped unrecorded, and its new owner
//! redoes that work. Every segment is claimed in the progress record (compare-and-swap) before
//! its files become visible, so a member that lost a partition cannot publish it twice.

use super::RunContext;
use super::export::ExportError;
use crate::config::{ContinuousSettings, TopicConfig};
use crate::dead_letter_topic::DeadLetterTopic;
use crate::decode::{Decoded, Decoder};
use crate::kafka;
use crate::plan::{self, PlanError};
use crate::progress::{CLAIM, Progress};
use crate::read::RawBatch;
use crate::read::group::{self, Assignment, Buffers, GroupConsumer};
use crate::write::{Sealed, TopicWriter};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A new owner waits this much past a claim's end before deleting its files: a commit that
/// started just before the end may still be landing.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);
/// The longest pause after a failure a retry may fix; well under max.poll.interval.ms.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one member did before it stopped.
#[derive(Debug, Clone, Default)]
pub struct MemberSummary {
    pub records: u64,
    pub files: u64,
    pub dead_letters: u64,
}

/// Runs one member of `topic`'s group until `ctx.options.stop` is requested; then it seals and
/// records its open files, commits and leaves the group. A failure a retry may fix (a broker or
/// store outage) is logged and retried with backoff; a permanent one ends the member.
pub fn run_member(
    ctx: &RunContext,
    topic: &TopicConfig,
    settings: &ContinuousSettings,
    member: usize,
) -> Result<MemberSummary, ExportError> {
    let topic = continuous_topic(topic, settings);
    let worker = Arc::new(Mutex::new(Member::new(ctx, &topic, settings)?));
    let mut config = kafka::export_consumer_config(&ctx.config.connections, &topic.group_id());
    if let Some(ms) = settings.max_poll_interval_ms {
        config.set("max.poll.interval.ms", ms.to_string());
    }
    config.set("client.id", format!("runner-{}-{member}", topic.topic));
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
            status.log(&lock(&worker), &topic.topic, member);
        }
    }
    let drained = lock(&worker).drain(&consumer);
    consumer.unsubscribe();
    // Dropping the consumer closes it: it leaves the group, serving the last revocation.
    drop(consumer);
    drained?;
    let summary = lock(&worker).summary.clone();
    tracing::info!(
        records = summary.records,
        files = summary.files,
        "member stopped: every file written is recorded and committed"
    );
    Ok(summary)
}

/// A continuous read starts where the group left off: the topics.json settings that pick
/// other starts or caps belong to bounded runs.
fn continuous_topic(topic: &TopicConfig, settings: &ContinuousSettings) -> TopicConfig {
    let mut topic = topic.clone();
    topic.reset_offsets = false;
    topic.starting_offsets = None;
    topic.num_messages = None;
    if let Some(group) = &settings.group_id {
        topic.group_id = Some(group.clone());
    }
    topic
}

/// Polls up to a batch of messages into the buffers; returns early when none is waiting.
fn poll_some(consumer: &GroupConsumer, worker: &Mutex<Member>) {
    for _ in 0..4096 {
        match consumer.poll(Duration::from_millis(100)) {
            None => return,
            Some(Ok(msg)) => lock(worker).buffers.push(&msg),
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
    let paused = consumer.assignment().ok();
    if let Some(tpl) = &paused {
        let _ = consumer.pause(tpl);
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

fn lock(worker: &Mutex<Member>) -> MutexGuard<'_, Member> {
    match worker.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// One member's stages and the partitions it owns.
struct Member {
    topic: TopicConfig,
    buffers: Buffers,
    decoder: Decoder,
    writer: TopicWriter,
    progress: Progress,
    dead_letter_topic: Option<DeadLetterTopic>,
    /// A plain consumer of the group for watermarks and committed offsets.
    planner: BaseConsumer,
    timeout: Duration,
    max_file_age: Duration,
    /// A failure inside a rebalance callback, reported by the next step.
    failure: Option<ExportError>,
    summary: MemberSummary,
}

impl Member {
    fn new(
        ctx: &RunContext,
        topic: &TopicConfig,
        settings: &ContinuousSettings,
    ) -> Result<Self, ExportError> {
        let consumer_error = |source| ExportError::Consumer {
            topic: topic.topic.clone(),
            source,
        };
        let planner = kafka::export_consumer_config(&ctx.config.connections, &topic.group_id())
            .create()
            .map_err(consumer_error)?;
        let mut progress = Progress::load(ctx.sink.clone(), &topic.group_id(), &topic.topic)?;
        progress.claim_segments();
        let dead_letter_topic = match &topic.dead_letter_topic {
            Some(name) => Some(DeadLetterTopic::new(&ctx.config.connections, name)?),
            None => None,
        };
        let max_file_age = Duration::from_secs(settings.max_file_age_seconds);
        // A partial batch joins its file at least four times per file age.
        let linger = (max_file_age / 4).min(Duration::from_secs(1));
        let batch_rows = settings.batch_size.unwrap_or(ctx.options.batch_rows);
        Ok(Member {
            topic: topic.clone(),
            buffers: Buffers::new(batch_rows, linger),
            decoder: Decoder::new(topic, ctx.registry.clone()),
            writer: TopicWriter::new(ctx.sink.clone(), topic, BTreeMap::new()),
            progress,
            dead_letter_topic,
            planner,
            timeout: ctx.options.kafka_timeout,
            max_file_age,
            failure: None,
            summary: MemberSummary::default(),
        })
    }

    /// Writes the batches that are ready, seals files that reached their age, and reports a
    /// failure from the last rebalance.
    fn step(&mut self, consumer: &GroupConsumer) -> Result<(), ExportError> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        for raw in self.buffers.take_ready(false) {
            self.write(consumer, raw)?;
        }
        let aged = self.writer.seal_aged(self.max_file_age)?;
        self.commit(consumer, aged, CommitMode::Async)
    }

    fn write(&mut self, consumer: &GroupConsumer, raw: RawBatch) -> Result<(), ExportError> {
        let mut decoded = if raw.is_empty() {
            Decoded::default()
        } else {
            self.decoder.decode(&raw)?
        };
        if let Some(dlq) = &self.dead_letter_topic {
            self.summary.dead_letters +=
                dlq.send(&self.topic.topic, raw.partition, &mut decoded)?;
        }
        let sealed = self.writer.write(&raw, decoded, false)?;
        self.commit(consumer, sealed, CommitMode::Async)
    }

    /// Records sealed segments, then mirrors the new positions into the consumer group.
    fn commit(
        &mut self,
        consumer: &GroupConsumer,
        sealed: Vec<Sealed>,
        mode: CommitMode,
    ) -> Result<(), ExportError> {
        let mut offsets = TopicPartitionList::new();
        for segment in sealed {
            let (partition, next) = (segment.partition, segment.next_offset);
            for file in self.progress.commit(segment)? {
                if file.path.starts_with(crate::write::DEAD_LETTERS) {
                    self.summary.dead_letters += file.records;
                } else {
                    self.summary.records += file.records;
                }
                self.summary.files += 1;
                tracing::info!(partition, path = %file.path, records = file.records, bytes = file.bytes, next_offset = next, "file written");
            }
            let _ =
                offsets.add_partition_offset(&self.topic.topic, partition, Offset::Offset(next));
        }
        if offsets.count() > 0
            && let Err(e) = consumer.commit(&offsets, mode)
        {
            tracing::warn!(error = %e, "progress is recorded, but committing it to the consumer group failed");
        }
        Ok(())
    }

    /// SIGTERM: writes what is buffered, seals every open file, records and commits.
    fn drain(&mut self, consumer: &GroupConsumer) -> Result<(), ExportError> {
        for raw in self.buffers.take_ready(true) {
            self.write(consumer, raw)?;
        }
        let sealed = self.writer.seal_all()?;
        self.commit(consumer, sealed, CommitMode::Sync)
    }

    /// After a failure: drops every unrecorded file and buffered record, and starts each
    /// owned partition again from its recorded progress.
    fn restart(&mut self, consumer: &GroupConsumer) {
        let owned = self.owned(consumer);
        // A claim this member made before the failure is its own to clear, without waiting.
        if let Err(e) = self.progress.recover(&owned) {
            self.failure = Some(e.into());
            return;
        }
        for &p in &owned {
            self.buffers.stop(p);
            self.writer.abort_partition(p);
            self.progress.release(p);
        }
        let starts = self.start(&owned);
        let mut tpl = TopicPartitionList::new();
        for (p, start) in owned.iter().zip(starts) {
            if let Some(offset) = start {
                let _ = tpl.add_partition_offset(&self.topic.topic, *p, Offset::Offset(offset));
            }
        }
        if tpl.count() > 0
            && let Err(e) = consumer.seek_partitions(tpl, self.timeout)
        {
            tracing::warn!(error = %e, "cannot seek back to the recorded progress");
        }
    }

    fn owned(&self, consumer: &GroupConsumer) -> Vec<i32> {
        consumer
            .assignment()
            .map(|tpl| {
                tpl.elements_for_topic(&self.topic.topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where each partition starts: recorded progress, else the group's committed offset,
    /// else the log start, with retention checked as for a batch run. A partition that a
    /// previous owner is still committing waits for that claim to end.
    fn start(&mut self, partitions: &[i32]) -> Vec<Option<i64>> {
        match self.plan_starts(partitions) {
            Ok(starts) => partitions
                .iter()
                .map(|p| {
                    let start = starts.get(p).copied();
                    if let Some(offset) = start {
                        self.writer.start_partition(*p, offset);
                        self.buffers.start(*p, offset);
                    }
                    start
                })
                .collect(),
            Err(e) => {
                self.failure = Some(e);
                vec![None; partitions.len()]
            }
        }
    }

    fn plan_starts(&mut self, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, ExportError> {
        self.progress.refresh()?;
        for &p in partitions {
            while let Some(until) = self.progress.claimed_until(p) {
                let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default() + CLAIM_MARGIN;
                tracing::info!(
                    partition = p,
                    seconds = wait.as_secs(),
                    "waiting for the previous owner's claim on a segment to end"
                );
                std::thread::sleep(wait.min(CLAIM + CLAIM_MARGIN));
                self.progress.refresh()?;
            }
        }
        self.progress.recover(partitions)?;
        let plan = plan::plan_topic(
            &self.planner,
            &self.topic,
            &self.progress.offsets(),
            plan::Request::default(),
            self.timeout,
        )?;
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
            return Err(ExportError::Plan(PlanError::UnknownPartition {
                topic: self.topic.topic.clone(),
                partition: missing,
                count: plan.partitions.len(),
            }));
        }
        Ok(starts)
    }
}

impl Assignment for Member {
    fn assigned(&mut self, _consumer: &GroupConsumer, partitions: &[i32]) -> Vec<Option<i64>> {
        self.start(partitions)
    }

    fn revoked(&mut self, consumer: &GroupConsumer, partitions: &[i32], lost: bool) {
        for &p in partitions {
            self.buffers.stop(p);
        }
        if !lost {
            let mut sealed = Vec::new();
            for &p in partitions {
                match self.writer.seal_partition(p) {
                    Ok(s) => sealed.extend(s),
                    Err(e) => self.failure = Some(e.into()),
                }
            }
            if let Err(e) = self.commit(consumer, sealed, CommitMode::Sync) {
                tracing::warn!(error = %e, "cannot record the revoked partitions; their next owner redoes the unrecorded part");
                self.failure = Some(e);
            }
        }
        for &p in partitions {
            self.writer.abort_partition(p);
            self.progress.release(p);
        }
    }
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

    fn log(&mut self, member: &Member, topic: &str, index: usize) {
        let seconds = self.last.elapsed().as_secs_f64().max(0.001);
        let records = member.summary.records;
        let per_second = (records - self.records) as f64 / seconds;
        let lag: Vec<String> = member
            .buffers
            .positions()
            .into_iter()
            .filter_map(|(p, next)| {
                let (_, high) = member
                    .planner
                    .fetch_watermarks(topic, p, member.timeout)
                    .ok()?;
                Some(format!("{p}:{}", (high - next).max(0)))
            })
            .collect();
        tracing::info!(
            member = index,
            records,
            per_second = per_second.round() as u64,
            lag = %lag.join(","),
            open_files = member.writer.open_files(),
            "status"
        );
        self.last = Instant::now();
        self.records = records;
    }
}

/// Runs a continuous job: `threads` members per topic, each on its own thread, until
/// `ctx.options.stop` is requested or one fails permanently (then the others stop too).
pub fn run_job(
    ctx: &RunContext,
    job: &crate::config::JobConfig,
) -> Result<MemberSummary, ExportError> {
    let settings = job.continuous.clone().unwrap_or_default();
    let topics = job.topics(&ctx.config.topics);
    let mut ctx = ctx.clone();
    ctx.options.stop = ctx.options.stop.child();
    let ctx = &ctx;
    let results: Vec<Result<MemberSummary, ExportError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = topics
            .iter()
            .flat_map(|topic| (0..settings.threads).map(move |member| (topic, member)))
            .map(|(topic, member)| {
                let settings = &settings;
                let span = tracing::info_span!("topic", topic = %topic.topic);
                scope.spawn(move || {
                    let _entered = span.enter();
                    let result = run_member(ctx, topic, settings, member);
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "member failed; stopping the job");
                        ctx.options.stop.request();
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|p| Err(ExportError::Panic(super::panic_message(&p))))
            })
            .collect()
    });
    let mut total = MemberSummary::default();
    for result in results {
        let summary = result?;
        total.records += summary.records;
        total.files += summary.files;
        total.dead_letters += summary.dead_letters;
    }
    Ok(total)
}
