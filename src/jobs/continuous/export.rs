//! The continuous export: a member writes its partitions' records into files, sealed by
//! records, bytes, schema and age.
//!
//! A member owns a partition from its assignment to its revocation. On assignment it starts at
//! the recorded progress, the source of truth (Kafka's committed offsets mirror it). On
//! revocation it seals and records the partition before letting go; a lost partition (missed
//! heartbeats) is dropped unrecorded, and its new owner redoes that work. Every segment is
//! claimed in the progress record (compare-and-swap) before its files become visible, so a
//! member that lost a partition cannot publish it twice.

use super::{ContinuousError, MemberSummary, Work};
use crate::config::{ContinuousSettings, TopicConfig};
use crate::crash::crash_point;
use crate::dead_letter_topic::DeadLetterTopic;
use crate::decode::{Decoded, Decoder};
use crate::jobs::RunContext;
use crate::jobs::export::ExportError;
use crate::progress::{CLAIM, Progress};
use crate::read::group::{Assignment, Buffers, GroupConsumer};
use crate::read::{HeaderCapture, RawBatch};
use crate::write::{Sealed, TopicWriter};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// A new owner waits this much past a claim's end before deleting its files: a commit that
/// started just before the end may still be landing.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// One member's stages and the partitions it owns.
pub(super) struct ExportWork {
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

impl ExportWork {
    pub(super) fn new(
        ctx: &RunContext,
        topic: &TopicConfig,
        settings: &ContinuousSettings,
    ) -> Result<Self, ExportError> {
        let consumer_error = |source| ExportError::Consumer {
            topic: topic.topic.clone(),
            source,
        };
        let planner =
            crate::kafka::export_consumer_config(&ctx.config.connections, &topic.group_id())
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
        Ok(ExportWork {
            topic: topic.clone(),
            buffers: Buffers::new(batch_rows, linger).with_capture(HeaderCapture::for_topic(topic)),
            decoder: Decoder::new(topic, ctx.registry.clone()),
            writer: {
                let mut writer = TopicWriter::new(ctx.sink.clone(), topic, BTreeMap::new());
                writer.set_buffer_budget(ctx.options.write_buffer_bytes);
                writer
            },
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
    fn step_export(&mut self, consumer: &GroupConsumer) -> Result<(), ExportError> {
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
        crash_point!("after-fetch");
        let mut decoded = if raw.is_empty() {
            Decoded::default()
        } else {
            self.decoder.decode(&raw)?
        };
        crash_point!("after-decode");
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
    fn drain_export(&mut self, consumer: &GroupConsumer) -> Result<(), ExportError> {
        for raw in self.buffers.take_ready(true) {
            self.write(consumer, raw)?;
        }
        let sealed = self.writer.seal_all()?;
        self.commit(consumer, sealed, CommitMode::Sync)
    }

    /// After a failure: drops every unrecorded file and buffered record, and starts each
    /// owned partition again from its recorded progress.
    fn restart_owned(&mut self, consumer: &GroupConsumer) {
        let owned = super::owned(consumer, &self.topic.topic);
        // Starting clears this member's own claims without waiting (`Progress::recover`).
        for &p in &owned {
            self.buffers.stop(p);
            self.writer.abort_partition(p);
            self.progress.release(p);
        }
        let starts = self.start(&owned);
        super::seek(consumer, &self.topic.topic, &owned, starts, self.timeout);
    }

    /// Where each partition starts: recorded progress, else the group's committed offset,
    /// else the log start, with retention checked as for a batch run. A partition that a
    /// previous owner is still committing waits for that claim to end.
    fn start(&mut self, partitions: &[i32]) -> Vec<Option<i64>> {
        let planned = self.plan_starts(partitions);
        let (writer, buffers) = (&mut self.writer, &mut self.buffers);
        super::apply_starts(partitions, planned, &mut self.failure, |p, offset| {
            writer.start_partition(p, offset);
            buffers.start(p, offset);
        })
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
        let recorded = self.progress.offsets();
        Ok(super::plan_starts(
            &self.planner,
            &self.topic,
            &recorded,
            partitions,
            self.timeout,
        )?)
    }
}

impl Assignment for ExportWork {
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
            crash_point!("revoke-sealed");
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

impl Work for ExportWork {
    fn buffers(&mut self) -> &mut Buffers {
        &mut self.buffers
    }

    fn step(&mut self, consumer: &GroupConsumer) -> Result<(), ContinuousError> {
        Ok(self.step_export(consumer)?)
    }

    fn drain(&mut self, consumer: &GroupConsumer) -> Result<(), ContinuousError> {
        Ok(self.drain_export(consumer)?)
    }

    fn restart(&mut self, consumer: &GroupConsumer) {
        self.restart_owned(consumer);
    }

    fn summary(&self) -> MemberSummary {
        self.summary.clone()
    }

    fn status(&self) -> String {
        format!("open_files={}", self.writer.open_files())
    }

    fn planner(&self) -> &BaseConsumer {
        &self.planner
    }
}
