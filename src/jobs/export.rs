//! The export job for one topic: plan, read, decode, write, then record progress.

use super::{RunContext, RunOptions};
use crate::config::TopicConfig;
use crate::crash::crash_point;
use crate::dead_letter_topic::{DeadLetterError, DeadLetterTopic};
use crate::decode::{DecodeError, Decoded, Decoder};
use crate::kafka;
use crate::lock::{self, LockError, TopicLock};
use crate::meter::TopicMeter;
use crate::plan::{self, PlanError, TopicPlan};
use crate::progress::{Committed, Progress, ProgressError};
use crate::read::{BoundedReader, HeaderCapture, Prefetch, RawBatch, ReadError};
use crate::write::{Sealed, SealedFile, TopicWriter, WriteError};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "topic {topic}: cannot create a Kafka consumer: {source}. Check connections.json (kafka_properties, ssl_config, sasl)"
    )]
    Consumer {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{0}. Progress stays before it; rerun once this is fixed")]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Progress(#[from] ProgressError),
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("internal error (a bug, please report it): {0}")]
    Panic(String),
}

#[derive(Debug, Clone, Default)]
pub struct TopicSummary {
    pub topic: String,
    pub planned: i64,
    pub records: u64,
    pub files: u64,
    pub bytes: u64,
    /// Records that could not be decoded, kept in `_dead_letters/`.
    pub dead_letters: u64,
    pub seconds: f64,
    /// Offset ranges retention deleted before export (fail_on_data_loss false).
    pub lost: Vec<(i32, i64, i64)>,
    /// Asked to stop before the planned end; the rest is left for the next run.
    pub stopped: bool,
    /// Per partition read: first offset and the offset after the last one committed.
    pub ranges: Vec<(i32, i64, i64)>,
}

/// Plans a topic without reading any message.
pub fn plan_only(ctx: &RunContext, topic: &TopicConfig) -> Result<TopicPlan, ExportError> {
    let (planner, _, plan) = prepare(ctx, topic)?;
    kafka::close(&planner);
    Ok(plan)
}

fn prepare(
    ctx: &RunContext,
    topic: &TopicConfig,
) -> Result<(BaseConsumer, Progress, TopicPlan), ExportError> {
    let group = topic.group_id();
    let consumer: BaseConsumer = kafka::export_consumer_config(&ctx.config.connections, &group)
        .create()
        .map_err(|source| ExportError::Consumer {
            topic: topic.topic.clone(),
            source,
        })?;
    let mut progress = Progress::load(ctx.sink.clone(), &group, &topic.topic)?;
    let request = plan::Request {
        backfill: ctx.options.backfill.as_deref(),
        shard: ctx.options.shard,
    };
    let plan = plan::plan_topic(
        &consumer,
        topic,
        &progress.offsets(),
        request,
        ctx.options.kafka_timeout,
    )?;
    if !records_progress(ctx) {
        progress.detach();
        warn_overlap(&plan, &progress.offsets());
    }
    Ok((consumer, progress, plan))
}

pub fn export_topic(ctx: &RunContext, topic: &TopicConfig) -> Result<TopicSummary, ExportError> {
    let started = Instant::now();
    let mut lock = lock::acquire(
        &ctx.sink,
        &topic.group_id(),
        &topic.topic,
        ctx.options.shard,
        ctx.options.lock_lease,
    )?;
    let (planner, mut progress, plan) = prepare(ctx, topic)?;
    let recording = records_progress(ctx);
    if recording {
        let mine: Vec<i32> = plan.partitions.iter().map(|p| p.partition).collect();
        progress.recover(&mine)?;
    }
    let mut summary = summary_of(&plan);
    tracing::info!(
        records = plan.count(),
        partitions = plan.to_read().count(),
        "planned"
    );
    if plan.count() > 0 {
        // A consumer of its own, its prefetch shared out among the partitions to read.
        kafka::close(&planner);
        drop(planner);
        let partitions = crate::read::at_once(&plan);
        let consumer: BaseConsumer =
            kafka::reading_consumer_config(&ctx.config.connections, &topic.group_id(), partitions)
                .create()
                .map_err(|source| ExportError::Consumer {
                    topic: topic.topic.clone(),
                    source,
                })?;
        let options = &ctx.options;
        let start = if options.read_in_batches {
            BoundedReader::start
        } else {
            BoundedReader::start_one_at_a_time
        };
        let reader = start(
            consumer,
            &plan,
            options.batch_rows,
            options.stall_timeout,
            HeaderCapture::for_topic(topic),
        )?
        .with_buffer_budget(options.read_buffer_bytes);
        // Reading and decoding run a few batches ahead on their own thread, writing on this
        // one: two cores at work, the batches in the same order.
        let mut decoder = Decoder::new(topic, ctx.registry.clone());
        let mut reader = Prefetch::start(reader, 4, move |mut raw: RawBatch| {
            crash_point!("after-fetch");
            let decoded = if raw.is_empty() {
                Ok(Decoded::default())
            } else {
                decoder.decode(&raw)
            };
            crash_point!("after-decode");
            // Decoded batches wait for the writer: not with a second copy of their records.
            raw.release_payloads();
            (raw, decoded)
        });
        let dead_letter_topic = match &topic.dead_letter_topic {
            Some(name) => Some(DeadLetterTopic::new(&ctx.config.connections, name)?),
            None => None,
        };
        let mut writer = writer(ctx, topic, &plan, recording);
        let mut commits = Commits {
            lock: &mut lock,
            progress: &mut progress,
            group: GroupCommits::new(&topic.topic, recording),
            waiting: Vec::new(),
            since: None,
        };
        let mut meter = options.meter.topic(&topic.topic, plan.count() as u64);
        let mut stages = Stages {
            reader: &mut reader,
            writer: &mut writer,
            dead_letter_topic: dead_letter_topic.as_ref(),
        };
        let outcome = stages.run(&mut commits, &mut summary, &mut meter, options);
        // Segments sealed before an error are whole: they land before it is reported.
        let committed = commits.commit(reader.consumer(), &mut summary);
        outcome?;
        committed?;
        commits.group.finish(reader.consumer());
        kafka::close(reader.consumer());
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

type Batches = Prefetch<(RawBatch, Result<Decoded, DecodeError>)>;

/// The stages of one export after planning: read and decode (on their own threads), write.
struct Stages<'a> {
    reader: &'a mut Batches,
    writer: &'a mut TopicWriter,
    dead_letter_topic: Option<&'a DeadLetterTopic>,
}

impl Stages<'_> {
    /// Writes every planned batch, handing sealed segments to `commits`.
    fn run(
        &mut self,
        commits: &mut Commits,
        summary: &mut TopicSummary,
        meter: &mut TopicMeter,
        options: &RunOptions,
    ) -> Result<(), ExportError> {
        while let Some((raw, decoded)) = self.reader.next_batch()? {
            meter.add(raw.len() as u64);
            let mut decoded = decoded?;
            if let Some(dlq) = self.dead_letter_topic {
                summary.dead_letters += dlq.send(&summary.topic, raw.partition, &mut decoded)?;
            }
            let mut sealed = self.writer.write(&raw, decoded, raw.last)?;
            let stopping = options.stop.requested();
            if stopping {
                sealed.extend(self.writer.seal_all()?);
            }
            commits.waiting.extend(sealed);
            if stopping || !self.reader.ready() || commits.due() {
                commits.commit(self.reader.consumer(), summary)?;
            }
            if stopping {
                tracing::info!(
                    records = summary.records,
                    "stopped on request; progress covers every file written"
                );
                summary.stopped = true;
                break;
            }
        }
        Ok(())
    }
}

/// Sealed segments on their way into progress, committed in groups: one save of the
/// progress record per group instead of one per segment (`Progress::commit_all`). A group
/// is committed as soon as no batch is waiting to be written, so it only forms while the
/// writer is behind, as it is over many small partitions.
struct Commits<'a> {
    lock: &'a mut TopicLock,
    progress: &'a mut Progress,
    group: GroupCommits,
    waiting: Vec<Sealed>,
    /// When the oldest waiting segment was sealed.
    since: Option<Instant>,
}

/// At the latest, a group is committed at this many segments, ...
const GROUP_SEGMENTS: usize = 32;
/// ... at this many bytes they hold for their uploads, ...
const GROUP_BYTES: u64 = 16 * 1024 * 1024;
/// ... or once its oldest segment waited this long, so progress stays close behind the files.
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

impl Commits<'_> {
    fn due(&mut self) -> bool {
        if self.waiting.is_empty() {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        let held: u64 = self
            .waiting
            .iter()
            .flat_map(|s| &s.files)
            .map(SealedFile::held)
            .sum();
        self.waiting.len() >= GROUP_SEGMENTS || held >= GROUP_BYTES || since.elapsed() >= GROUP_WAIT
    }

    fn commit(
        &mut self,
        consumer: &BaseConsumer,
        summary: &mut TopicSummary,
    ) -> Result<(), ExportError> {
        self.since = None;
        if self.waiting.is_empty() {
            return Ok(());
        }
        self.lock.confirm()?;
        let waiting = std::mem::take(&mut self.waiting);
        let committed = self.progress.commit_all(waiting)?;
        for segment in &committed {
            record(segment, summary);
        }
        let moved = committed.iter().map(|c| (c.partition, c.next_offset));
        self.group.advance(consumer, moved);
        Ok(())
    }
}

/// The topic's writer; a backfill's files are named by its end too, so a rerun of the same
/// backfill replaces its own files and no backfill replaces a regular run's file.
fn writer(ctx: &RunContext, topic: &TopicConfig, plan: &TopicPlan, recording: bool) -> TopicWriter {
    let starts = plan.to_read().map(|p| (p.partition, p.start)).collect();
    let mut writer = TopicWriter::new(ctx.sink.clone(), topic, starts);
    writer.set_buffer_budget(ctx.options.write_buffer_bytes);
    if !recording {
        for p in plan.to_read() {
            writer.tag_files(p.partition, &format!("backfill-to-{}", p.end));
        }
    }
    writer
}

/// Mirrors recorded progress into the consumer group, so lag tools see it as it happens; the
/// store stays the source of truth. Off for a backfill that records nothing.
struct GroupCommits {
    topic: String,
    /// Each partition's next offset, committed once more at the end.
    offsets: Option<BTreeMap<i32, i64>>,
}

impl GroupCommits {
    fn new(topic: &str, enabled: bool) -> Self {
        GroupCommits {
            topic: topic.to_string(),
            offsets: enabled.then(BTreeMap::new),
        }
    }

    /// Commits the partitions that moved, in one request: committing the whole list each
    /// time made a run over many partitions quadratic (librdkafka matches every partition of
    /// a response against its list: 1,000 partitions spent a fifth of their CPU there).
    fn advance(&mut self, consumer: &BaseConsumer, moved: impl Iterator<Item = (i32, i64)>) {
        let Some(offsets) = &mut self.offsets else {
            return;
        };
        let moved: BTreeMap<i32, i64> = moved.collect();
        offsets.extend(&moved);
        if let Some(list) = self.list(moved).filter(|l| l.count() > 0) {
            let _ = consumer.commit(&list, CommitMode::Async);
        }
    }

    fn finish(&self, consumer: &BaseConsumer) {
        let all = self.offsets.iter().flatten().map(|(p, o)| (*p, *o));
        if let Some(list) = self.list(all).filter(|l| l.count() > 0)
            && let Err(e) = consumer.commit(&list, CommitMode::Sync)
        {
            tracing::warn!(error = %e, "progress is recorded, but committing it to the consumer group failed");
        }
    }

    fn list(&self, offsets: impl IntoIterator<Item = (i32, i64)>) -> Option<TopicPartitionList> {
        let mut list = TopicPartitionList::new();
        for (p, next) in offsets {
            list.add_partition_offset(&self.topic, p, Offset::Offset(next))
                .ok()?;
        }
        Some(list)
    }
}

/// A backfill leaves progress alone unless `--record-progress` asks otherwise.
fn records_progress(ctx: &RunContext) -> bool {
    ctx.options
        .backfill
        .as_ref()
        .is_none_or(|b| b.record_progress)
}

/// A backfill over offsets the regular runs already exported writes them a second time.
fn warn_overlap(plan: &TopicPlan, recorded: &BTreeMap<i32, i64>) {
    for p in plan.to_read() {
        if let Some(&next) = recorded.get(&p.partition)
            && p.start < next
        {
            tracing::warn!(
                partition = p.partition,
                from = p.start,
                to = next.min(p.end),
                "this backfill writes offsets the regular runs already exported: a second copy in the sink"
            );
        }
    }
}

fn summary_of(plan: &TopicPlan) -> TopicSummary {
    let lost = plan
        .partitions
        .iter()
        .filter_map(|p| p.lost.map(|(from, to)| (p.partition, from, to)))
        .collect::<Vec<_>>();
    for (partition, from, to) in &lost {
        tracing::warn!(
            partition,
            from,
            to,
            "offsets deleted by retention were skipped"
        );
    }
    TopicSummary {
        topic: plan.topic.clone(),
        planned: plan.count(),
        lost,
        ranges: plan
            .to_read()
            .map(|p| (p.partition, p.start, p.start))
            .collect(),
        ..TopicSummary::default()
    }
}

/// Counts a committed segment's files in the summary.
fn record(committed: &Committed, summary: &mut TopicSummary) {
    let (partition, next_offset) = (committed.partition, committed.next_offset);
    if let Some(range) = summary.ranges.iter_mut().find(|r| r.0 == partition) {
        range.2 = next_offset;
    }
    for f in &committed.files {
        if f.path.starts_with(crate::write::DEAD_LETTERS) {
            summary.dead_letters += f.records;
        } else {
            summary.records += f.records;
        }
        summary.files += 1;
        summary.bytes += f.bytes;
        tracing::info!(partition, path = %f.path, records = f.records, bytes = f.bytes, next_offset, "file written");
    }
}
