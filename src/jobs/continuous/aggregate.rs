//! The continuous aggregate: running totals per group, updated as records arrive (the seed's
//! consumer that logs `(account_number, sum(amount))`).
//!
//! A member adds its partitions' records into a delta. Every `save_interval_seconds` it reads
//! the job's state (offsets per partition and the totals file), merges its delta into those
//! totals, writes the outputs (the changed groups to the log and the topic), a new totals file,
//! then the state with its partitions' offsets moved, in one compare-and-swap. Members of one
//! group merge their deltas into one total this way. A crash or a lost partition drops the
//! delta, and the records behind it are read again from the state's offsets: counted once.

use super::{ContinuousError, MemberSummary, Work};
use crate::aggregate::accumulate::Aggregator;
use crate::aggregate::output;
use crate::aggregate::state::{self, AggregateState, StateError};
use crate::config::{ContinuousSettings, JobConfig, TopicConfig};
use crate::crash::crash_point;
use crate::dead_letter_topic::DeadLetterTopic;
use crate::decode::Decoder;
use crate::jobs::RunContext;
use crate::jobs::aggregate::{AggregateError, Spec};
use crate::read::group::{Assignment, Buffers, GroupConsumer};
use crate::read::{HeaderCapture, RawBatch};
use crate::sink::Sink;
use arrow::array::UInt32Array;
use arrow::record_batch::RecordBatch;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Saves that may find the state changed by another member before one goes through.
const SAVE_ATTEMPTS: usize = 8;

pub(super) struct AggregateWork {
    job: JobConfig,
    spec: Spec,
    topic: TopicConfig,
    sink: Arc<Sink>,
    connections: crate::config::Connections,
    buffers: Buffers,
    decoder: Decoder,
    dead_letter_topic: Option<DeadLetterTopic>,
    planner: BaseConsumer,
    timeout: Duration,
    /// Records since the last save, of the owned partitions.
    delta: Aggregator,
    /// Per owned partition: the state's offset the delta starts at, and where it ends.
    base: BTreeMap<i32, i64>,
    next: BTreeMap<i32, i64>,
    save_every: Duration,
    last_save: Instant,
    snapshot_every: Duration,
    last_snapshot: Instant,
    /// The next step starts every owned partition again from the state (after a loss).
    reset: bool,
    failure: Option<AggregateError>,
    summary: MemberSummary,
}

impl AggregateWork {
    pub(super) fn new(
        ctx: &RunContext,
        job: &JobConfig,
        topic: &TopicConfig,
        settings: &ContinuousSettings,
    ) -> Result<Self, AggregateError> {
        let spec = Spec::of(job)?;
        let planner =
            crate::kafka::export_consumer_config(&ctx.config.connections, &topic.group_id())
                .create()
                .map_err(|source| AggregateError::Consumer {
                    topic: topic.topic.clone(),
                    source,
                })?;
        let dead_letter_topic = match &topic.dead_letter_topic {
            Some(name) => Some(DeadLetterTopic::new(&ctx.config.connections, name)?),
            None => None,
        };
        let save_every = Duration::from_secs(settings.save_interval_seconds);
        let batch_rows = settings.batch_size.unwrap_or(ctx.options.batch_rows);
        Ok(AggregateWork {
            delta: spec.aggregator(),
            job: job.clone(),
            spec,
            topic: topic.clone(),
            sink: ctx.sink.clone(),
            connections: ctx.config.connections.clone(),
            buffers: Buffers::new(batch_rows, save_every.min(Duration::from_secs(1)))
                .with_capture(HeaderCapture::for_topic(topic)),
            decoder: Decoder::new(topic, ctx.registry.clone()),
            dead_letter_topic,
            planner,
            timeout: ctx.options.kafka_timeout,
            base: BTreeMap::new(),
            next: BTreeMap::new(),
            save_every,
            last_save: Instant::now(),
            snapshot_every: Duration::from_secs(settings.snapshot_interval_seconds),
            last_snapshot: Instant::now(),
            reset: false,
            failure: None,
            summary: MemberSummary::default(),
        })
    }

    fn error(&self, source: crate::aggregate::accumulate::AccumulateError) -> AggregateError {
        AggregateError::Accumulate {
            job: self.job.name.clone(),
            topic: self.topic.topic.clone(),
            file: self.job.file.clone(),
            source,
        }
    }

    fn add(&mut self, raw: RawBatch) -> Result<(), AggregateError> {
        crash_point!("after-fetch");
        let decoded = self.decoder.decode(&raw)?;
        crash_point!("after-decode");
        let dlq = self.dead_letter_topic.as_ref();
        let added = crate::jobs::aggregate::add_batch(
            &mut self.delta,
            decoded,
            &self.topic.topic,
            raw.partition,
            dlq,
        );
        let (records, dead) = added.map_err(|e| e.into_error(|source| self.error(source)))?;
        self.summary.records += records;
        self.summary.dead_letters += dead;
        self.next.insert(raw.partition, raw.next_offset);
        Ok(())
    }

    fn step_aggregate(
        &mut self,
        consumer: &GroupConsumer,
        all: bool,
    ) -> Result<(), AggregateError> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        if self.reset {
            self.restart_owned(consumer);
        }
        for raw in self.buffers.take_ready(all) {
            self.add(raw)?;
        }
        if all || self.last_save.elapsed() >= self.save_every {
            self.save(
                consumer,
                if all {
                    CommitMode::Sync
                } else {
                    CommitMode::Async
                },
            )?;
        }
        Ok(())
    }

    /// Merges the delta into the job's totals and moves the owned partitions' offsets, in
    /// one compare-and-swap of the state; outputs go out before it.
    fn save(&mut self, consumer: &GroupConsumer, mode: CommitMode) -> Result<(), AggregateError> {
        self.last_save = Instant::now();
        if self.next == self.base {
            return Ok(());
        }
        let delta = self.delta.finish(true).map_err(|e| self.error(e))?;
        for _ in 0..SAVE_ATTEMPTS {
            let mut latest = AggregateState::load(&self.sink, &self.job.name, &self.topic.topic)?;
            for (p, start) in &self.base {
                if latest.offsets.get(p).is_some_and(|o| o != start) {
                    // Another member moved a partition of this one's: it owns it now.
                    return Err(StateError::Conflict {
                        path: state::state_path(&self.job.name, &self.topic.topic).to_string(),
                    }
                    .into());
                }
            }
            let mut totals = self.spec.aggregator();
            for batch in latest.totals(&self.sink)?.unwrap_or_default() {
                totals.merge(&batch).map_err(|e| self.error(e))?;
            }
            totals.merge(&delta).map_err(|e| self.error(e))?;
            let result = totals.finish(true).map_err(|e| self.error(e))?;
            let run = latest.run + 1;
            self.write_outputs(&result, &delta, run)?;
            let path = state::totals_path(&self.job.name, &self.topic.topic, run);
            state::write_parquet(&self.sink, &path, &result)?;
            crash_point!("aggregate-totals-written");
            let superseded = latest.totals.replace(path.to_string());
            latest
                .offsets
                .extend(self.next.iter().map(|(p, o)| (*p, *o)));
            latest.run = run;
            latest.updated_at = chrono::Utc::now().to_rfc3339();
            match latest.save(&self.sink) {
                Ok(()) => {
                    crash_point!("aggregate-state-saved");
                    if let Some(old) = superseded {
                        let _ = self
                            .sink
                            .delete(&object_store::path::Path::from(old.as_str()));
                    }
                    self.delta = self.spec.aggregator();
                    self.base = self.next.clone();
                    self.commit_group(consumer, mode);
                    return Ok(());
                }
                Err(StateError::Conflict { .. }) => {
                    // Another member saved first: its totals are the ones to merge into.
                    let _ = self.sink.delete(&path);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StateError::Conflict {
            path: state::state_path(&self.job.name, &self.topic.topic).to_string(),
        }
        .into())
    }

    /// The changed groups to the log and the topic; the full totals to Parquet at the
    /// snapshot interval.
    fn write_outputs(
        &mut self,
        result: &RecordBatch,
        delta: &RecordBatch,
        run: u64,
    ) -> Result<(), AggregateError> {
        let shown = state::visible(result);
        let changed = changed_rows(
            &shown,
            &state::visible(delta),
            self.spec.config.group_by.len(),
        );
        let outputs = &self.spec.config.outputs;
        if outputs.log {
            for line in output::lines(&changed) {
                tracing::info!(job = %self.job.name, topic = %self.topic.topic, run, "{line}");
            }
        }
        if let Some(out) = &outputs.topic {
            output::to_topic(
                &self.connections,
                out,
                &changed,
                self.spec.config.group_by.len(),
            )
            .map_err(|source| AggregateError::Output {
                job: self.job.name.clone(),
                source,
            })?;
        }
        if let Some(folder) = &outputs.parquet
            && self.last_snapshot.elapsed() >= self.snapshot_every
        {
            let path = object_store::path::Path::from(format!(
                "{}/{}/run={run:08}.parquet",
                folder.trim_matches('/'),
                self.topic.topic
            ));
            state::write_parquet(&self.sink, &path, &shown)?;
            self.summary.files += 1;
            self.last_snapshot = Instant::now();
        }
        Ok(())
    }

    fn commit_group(&self, consumer: &GroupConsumer, mode: CommitMode) {
        let mut offsets = TopicPartitionList::new();
        for (p, o) in &self.next {
            let _ = offsets.add_partition_offset(&self.topic.topic, *p, Offset::Offset(*o));
        }
        if offsets.count() > 0
            && let Err(e) = consumer.commit(&offsets, mode)
        {
            tracing::warn!(error = %e, "the state is saved, but committing it to the consumer group failed");
        }
    }

    /// Drops the delta and starts every owned partition again from the saved state.
    fn restart_owned(&mut self, consumer: &GroupConsumer) {
        self.reset = false;
        self.delta = self.spec.aggregator();
        let owned = super::owned(consumer, &self.topic.topic);
        for &p in &owned {
            self.buffers.stop(p);
        }
        // The delta is gone, so no partition has anything unsaved.
        self.base.clear();
        self.next.clear();
        let starts = self.start(&owned);
        super::seek(consumer, &self.topic.topic, &owned, starts, self.timeout);
    }

    fn start(&mut self, partitions: &[i32]) -> Vec<Option<i64>> {
        let starts = AggregateState::load(&self.sink, &self.job.name, &self.topic.topic)
            .map_err(AggregateError::from)
            .and_then(|state| {
                Ok(super::plan_starts(
                    &self.planner,
                    &self.topic,
                    &state.offsets,
                    partitions,
                    self.timeout,
                )?)
            });
        let (base, next, buffers) = (&mut self.base, &mut self.next, &mut self.buffers);
        super::apply_starts(partitions, starts, &mut self.failure, |p, offset| {
            base.insert(p, offset);
            next.insert(p, offset);
            buffers.start(p, offset);
        })
    }
}

/// The rows of `totals` whose group (the first `groups` columns) is in `delta`.
fn changed_rows(totals: &RecordBatch, delta: &RecordBatch, groups: usize) -> RecordBatch {
    let touched: BTreeSet<String> = output::keys(delta, groups).into_iter().collect();
    let rows: Vec<u32> = output::keys(totals, groups)
        .iter()
        .enumerate()
        .filter(|(_, k)| touched.contains(*k))
        .map(|(i, _)| i as u32)
        .collect();
    arrow::compute::take_record_batch(totals, &UInt32Array::from(rows))
        .unwrap_or_else(|_| totals.clone())
}

impl Assignment for AggregateWork {
    fn assigned(&mut self, _consumer: &GroupConsumer, partitions: &[i32]) -> Vec<Option<i64>> {
        self.start(partitions)
    }

    fn revoked(&mut self, consumer: &GroupConsumer, partitions: &[i32], lost: bool) {
        if lost {
            // The delta mixes every owned partition: all start again from the state.
            self.reset = true;
        } else {
            for raw in self.buffers.take_ready(true) {
                if let Err(e) = self.add(raw) {
                    self.failure = Some(e);
                    self.reset = true;
                }
            }
            if !self.reset
                && let Err(e) = self.save(consumer, CommitMode::Sync)
            {
                tracing::warn!(error = %e, "cannot save the totals of the revoked partitions; their next owner counts them from the saved state");
                self.failure = Some(e);
                self.reset = true;
            }
        }
        for p in partitions {
            self.buffers.stop(*p);
            self.base.remove(p);
            self.next.remove(p);
        }
    }
}

impl Work for AggregateWork {
    fn buffers(&mut self) -> &mut Buffers {
        &mut self.buffers
    }

    fn step(&mut self, consumer: &GroupConsumer) -> Result<(), ContinuousError> {
        Ok(self.step_aggregate(consumer, false)?)
    }

    fn drain(&mut self, consumer: &GroupConsumer) -> Result<(), ContinuousError> {
        Ok(self.step_aggregate(consumer, true)?)
    }

    fn restart(&mut self, consumer: &GroupConsumer) {
        self.restart_owned(consumer);
    }

    fn summary(&self) -> MemberSummary {
        self.summary.clone()
    }

    fn status(&self) -> String {
        format!("groups_in_delta={}", self.delta.group_count())
    }

    fn planner(&self) -> &BaseConsumer {
        &self.planner
    }
}
