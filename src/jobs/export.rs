//! The export job for one topic: plan, read, decode, write, then record progress.

use super::RunContext;
use crate::config::TopicConfig;
use crate::dead_letter_topic::{DeadLetterError, DeadLetterTopic};
use crate::decode::{DecodeError, Decoded, Decoder};
use crate::kafka;
use crate::lock::{self, LockError};
use crate::plan::{self, PlanError, TopicPlan};
use crate::progress::{Progress, ProgressError};
use crate::read::{BoundedReader, ReadError};
use crate::write::{Sealed, TopicWriter, WriteError};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
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
}

/// Plans a topic without reading any message.
pub fn plan_only(ctx: &RunContext, topic: &TopicConfig) -> Result<TopicPlan, ExportError> {
    let (_, _, plan) = prepare(ctx, topic)?;
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
    let progress = Progress::load(ctx.sink.clone(), &group, &topic.topic)?;
    let plan = plan::plan_topic(
        &consumer,
        topic,
        &progress.offsets(),
        ctx.options.kafka_timeout,
    )?;
    Ok((consumer, progress, plan))
}

pub fn export_topic(ctx: &RunContext, topic: &TopicConfig) -> Result<TopicSummary, ExportError> {
    let started = Instant::now();
    let mut lock = lock::acquire(
        &ctx.sink,
        &topic.group_id(),
        &topic.topic,
        ctx.options.lock_lease,
    )?;
    let (consumer, mut progress, plan) = prepare(ctx, topic)?;
    progress.recover()?;
    let mut summary = summary_of(&plan);
    tracing::info!(
        records = plan.count(),
        partitions = plan.to_read().count(),
        "planned"
    );
    if plan.count() > 0 {
        let starts = plan.to_read().map(|p| (p.partition, p.start)).collect();
        let options = &ctx.options;
        let mut reader =
            BoundedReader::start(consumer, &plan, options.batch_rows, options.stall_timeout)?;
        let mut decoder = Decoder::new(topic, ctx.registry.clone());
        let dead_letter_topic = match &topic.dead_letter_topic {
            Some(name) => Some(DeadLetterTopic::new(&ctx.config.connections, name)?),
            None => None,
        };
        let mut writer = TopicWriter::new(ctx.sink.clone(), topic, starts);
        let mut commits = TopicPartitionList::new();
        while let Some(raw) = reader.next_batch()? {
            let mut decoded = if raw.is_empty() {
                Decoded::default()
            } else {
                decoder.decode(&raw)?
            };
            if let Some(dlq) = &dead_letter_topic {
                summary.dead_letters += dlq.send(&topic.topic, raw.partition, &mut decoded)?;
            }
            let mut sealed = writer.write(&raw, decoded, raw.last)?;
            let stopping = options.stop.requested();
            if stopping {
                sealed.extend(writer.seal_all()?);
            }
            for sealed in sealed {
                let (partition, next) = (sealed.partition, Offset::Offset(sealed.next_offset));
                lock.confirm()?;
                commit(&mut progress, sealed, &mut summary)?;
                if commits
                    .set_partition_offset(&topic.topic, partition, next)
                    .is_err()
                {
                    let _ = commits.add_partition_offset(&topic.topic, partition, next);
                }
                // Lag tools see progress as it happens; the store stays the source of truth.
                let _ = reader.consumer().commit(&commits, CommitMode::Async);
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
        if commits.count() > 0
            && let Err(e) = reader.consumer().commit(&commits, CommitMode::Sync)
        {
            tracing::warn!(error = %e, "progress is recorded, but committing it to the consumer group failed");
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
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
        ..TopicSummary::default()
    }
}

fn commit(
    progress: &mut Progress,
    sealed: Sealed,
    summary: &mut TopicSummary,
) -> Result<(), ProgressError> {
    let (partition, next_offset) = (sealed.partition, sealed.next_offset);
    for f in progress.commit(sealed)? {
        if f.path.starts_with(crate::write::DEAD_LETTERS) {
            summary.dead_letters += f.records;
        } else {
            summary.records += f.records;
        }
        summary.files += 1;
        summary.bytes += f.bytes;
        tracing::info!(partition, path = %f.path, records = f.records, bytes = f.bytes, next_offset, "file written");
    }
    Ok(())
}
