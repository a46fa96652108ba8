//! Aggregate jobs: read a bounded range like an export, decode, total per group, write the
//! totals to their outputs, then commit offsets (and cumulative totals) in one step.

use super::RunContext;
use crate::aggregate::accumulate::{AccumulateError, Aggregator, order_key};
use crate::aggregate::output;
use crate::aggregate::state::{self, AggregateState, StateError};
use crate::config::aggregate::{Aggregate, AggregateConfig, CastType, Mode};
use crate::config::{JobConfig, TopicConfig};
use crate::crash::crash_point;
use crate::dead_letter_topic::{DeadLetterError, DeadLetterTopic};
use crate::decode::{DecodeError, Decoder};
use crate::plan::{self, PlanError, TopicPlan};
use crate::read::{BoundedReader, HeaderCapture, ReadError};
use arrow::record_batch::RecordBatch;
use rdkafka::consumer::BaseConsumer;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error("job {job}: {message}; fix {}", file.display())]
    Config {
        job: String,
        file: std::path::PathBuf,
        message: String,
    },
    #[error("topic {topic}: cannot create a Kafka consumer: {source}. Check connections.json")]
    Consumer {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{0}. The state stays before it; rerun once this is fixed")]
    Decode(#[from] DecodeError),
    #[error(
        "topic {topic} partition {partition} offset {offset}: {reason}. An aggregate cannot skip a record silently: set \"dead_letter_topic\" on the topic in topics.json to set such records aside"
    )]
    DeadLetter {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error(transparent)]
    DeadLetterTopic(#[from] DeadLetterError),
    #[error("job {job}, topic {topic}: {source}; fix aggregate in {}", file.display())]
    Accumulate {
        job: String,
        topic: String,
        file: std::path::PathBuf,
        source: AccumulateError,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("job {job}: output topic {source}")]
    Output {
        job: String,
        source: crate::produce::ProduceError,
    },
}

#[derive(Debug, Clone)]
pub struct AggregateSummary {
    pub job: String,
    pub topic: String,
    /// Records read this run.
    pub records: u64,
    pub dead_letters: u64,
    /// The run number committed, or the previous one when there was nothing new.
    pub run: u64,
    pub mode: Mode,
    /// The totals written (per run or cumulative), without hidden merge columns.
    pub totals: Option<RecordBatch>,
    pub seconds: f64,
}

/// A job's aggregate block with its computations and casts parsed.
pub struct Spec {
    pub config: AggregateConfig,
    pub aggregates: Vec<Aggregate>,
    pub casts: Vec<(String, CastType)>,
}

impl Spec {
    pub fn of(job: &JobConfig) -> Result<Spec, AggregateError> {
        let config_error = |message: String| AggregateError::Config {
            job: job.name.clone(),
            file: job.file.clone(),
            message,
        };
        let config = job
            .aggregate
            .clone()
            .ok_or_else(|| config_error("has no aggregate block".into()))?;
        let aggregates = config.aggregates().map_err(|(_, m)| config_error(m))?;
        let casts = config.casts().map_err(|(_, m)| config_error(m))?;
        Ok(Spec {
            config,
            aggregates,
            casts,
        })
    }

    /// An empty accumulator of these totals.
    pub fn aggregator(&self) -> Aggregator {
        Aggregator::new(&self.config.group_by, &self.aggregates, &self.casts)
    }
}

/// Runs an aggregate job over one topic: plan, read and total, write the outputs, commit.
pub fn run(
    ctx: &RunContext,
    job: &JobConfig,
    topic: &TopicConfig,
) -> Result<AggregateSummary, AggregateError> {
    let started = Instant::now();
    let parsed = Spec::of(job)?;
    let mode = parsed.config.mode;
    let this = Steps::new(ctx, job, topic, mode);
    let mut lock = crate::lock::acquire(
        &ctx.sink,
        &this.topic.group_id(),
        &topic.topic,
        None,
        ctx.options.lock_lease,
    )?;
    let mut state = AggregateState::load(&ctx.sink, &job.name, &topic.topic)?;
    let plan = this.plan(&state)?;
    tracing::info!(job = %job.name, records = plan.count(), "planned");

    let mut totals = parsed.aggregator();
    if mode == Mode::Cumulative {
        for batch in state.totals(&ctx.sink)?.unwrap_or_default() {
            totals.merge(&batch).map_err(|e| this.accumulate_error(e))?;
        }
    }
    let mut summary = AggregateSummary {
        job: job.name.clone(),
        topic: topic.topic.clone(),
        records: 0,
        dead_letters: 0,
        run: state.run,
        mode,
        totals: None,
        seconds: 0.0,
    };
    if plan.count() == 0 {
        tracing::info!(job = %job.name, "no new records; totals unchanged");
    } else {
        (summary.records, summary.dead_letters) = this.total(&plan, &mut totals)?;
        let result = totals
            .finish(mode == Mode::Cumulative)
            .map_err(|e| this.accumulate_error(e))?;
        summary.totals = Some(this.commit(&plan, &result, &mut state, &mut lock)?);
        summary.run = state.run;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The steps of one aggregate job over one topic.
struct Steps<'a> {
    ctx: &'a RunContext,
    job: &'a JobConfig,
    /// The topic under the job's own group: committed offsets of the export must not move
    /// its start.
    topic: TopicConfig,
    mode: Mode,
}

impl<'a> Steps<'a> {
    fn new(ctx: &'a RunContext, job: &'a JobConfig, topic: &TopicConfig, mode: Mode) -> Self {
        let mut topic = topic.clone();
        topic.group_id = Some(format!("runner.aggregate.{}", job.name));
        Steps {
            ctx,
            job,
            topic,
            mode,
        }
    }

    /// The range after the state's offsets.
    fn plan(&self, state: &AggregateState) -> Result<TopicPlan, AggregateError> {
        let connections = &self.ctx.config.connections;
        let consumer: BaseConsumer =
            crate::kafka::export_consumer_config(connections, &self.topic.group_id())
                .create()
                .map_err(|source| self.consumer_error(source))?;
        let plan = plan::plan_topic(
            &consumer,
            &self.topic,
            &state.offsets,
            plan::Request::default(),
            self.ctx.options.kafka_timeout,
        );
        crate::kafka::close(&consumer);
        Ok(plan?)
    }

    /// Reads and decodes the planned range into `totals`; returns the records added and the
    /// dead letters sent.
    fn total(
        &self,
        plan: &TopicPlan,
        totals: &mut Aggregator,
    ) -> Result<(u64, u64), AggregateError> {
        let (ctx, topic) = (self.ctx, &self.topic);
        // A consumer of its own, its prefetch shared out among the partitions to read.
        let consumer: BaseConsumer = crate::kafka::reading_consumer_config(
            &ctx.config.connections,
            &topic.group_id(),
            crate::read::at_once(plan),
        )
        .create()
        .map_err(|source| self.consumer_error(source))?;
        let options = &ctx.options;
        let mut reader = BoundedReader::start(
            consumer,
            plan,
            options.batch_rows,
            options.stall_timeout,
            HeaderCapture::for_topic(topic),
        )?;
        let mut decoder = Decoder::new(topic, ctx.registry.clone());
        let dead_letter_topic = match &topic.dead_letter_topic {
            Some(name) => Some(DeadLetterTopic::new(&ctx.config.connections, name)?),
            None => None,
        };
        let mut meter = options.meter.topic(&topic.topic, plan.count() as u64);
        let (mut records, mut dead_letters) = (0, 0);
        while let Some(raw) = reader.next_batch()? {
            meter.add(raw.len() as u64);
            if raw.is_empty() {
                continue;
            }
            crash_point!("after-fetch");
            let decoded = decoder.decode(&raw)?;
            crash_point!("after-decode");
            let (added, dead) = add_batch(
                totals,
                decoded,
                &topic.topic,
                raw.partition,
                dead_letter_topic.as_ref(),
            )
            .map_err(|e| e.into_error(|e| self.accumulate_error(e)))?;
            records += added;
            dead_letters += dead;
        }
        crate::kafka::close(reader.consumer());
        if let Some(field) = totals.missing_fields().first() {
            return Err(AggregateError::Config {
                job: self.job.name.clone(),
                file: self.job.file.clone(),
                message: format!(
                    "field `{field}` is not in any record of topic {}; name a decoded field (see `runner plan` and the exported columns)",
                    topic.topic
                ),
            });
        }
        Ok((records, dead_letters))
    }

    /// Writes the run's totals to the outputs, then (cumulative) the totals the next run
    /// starts from, then the state with the new offsets: a crash before the state is saved
    /// repeats the run with the same outputs. Returns the totals shown.
    fn commit(
        &self,
        plan: &TopicPlan,
        result: &RecordBatch,
        state: &mut AggregateState,
        lock: &mut crate::lock::TopicLock,
    ) -> Result<RecordBatch, AggregateError> {
        let (ctx, job, topic) = (self.ctx, self.job, &self.topic);
        let run = state.run + 1;
        let shown = state::visible(result);
        write_outputs(ctx, job, topic, &shown, run)?;
        crash_point!("aggregate-outputs-written");
        let superseded = state.totals.take();
        if self.mode == Mode::Cumulative {
            let path = state::totals_path(&job.name, &topic.topic, run);
            state::write_parquet(&ctx.sink, &path, result)?;
            state.totals = Some(path.to_string());
            crash_point!("aggregate-totals-written");
        }
        for p in &plan.partitions {
            state.offsets.insert(p.partition, p.end);
        }
        state.run = run;
        state.updated_at = chrono::Utc::now().to_rfc3339();
        lock.confirm()?;
        state.save(&ctx.sink)?;
        crash_point!("aggregate-state-saved");
        // The totals of the run before are no longer referenced.
        if let Some(old) = superseded.filter(|old| state.totals.as_ref() != Some(old))
            && let Err(e) = ctx
                .sink
                .delete(&object_store::path::Path::from(old.as_str()))
        {
            tracing::warn!(error = %e, "cannot delete superseded totals; harmless");
        }
        Ok(shown)
    }

    fn accumulate_error(&self, source: AccumulateError) -> AggregateError {
        AggregateError::Accumulate {
            job: self.job.name.clone(),
            topic: self.topic.topic.clone(),
            file: self.job.file.clone(),
            source,
        }
    }

    fn consumer_error(&self, source: rdkafka::error::KafkaError) -> AggregateError {
        AggregateError::Consumer {
            topic: self.topic.topic.clone(),
            source,
        }
    }
}

/// Why adding a batch failed: the totals' own error needs the job's context to be told.
pub enum AddError {
    Accumulate(AccumulateError),
    Other(AggregateError),
}

impl AddError {
    pub fn into_error(
        self,
        accumulate: impl Fn(AccumulateError) -> AggregateError,
    ) -> AggregateError {
        match self {
            AddError::Accumulate(e) => accumulate(e),
            AddError::Other(e) => e,
        }
    }
}

/// Adds a decoded batch of `partition` to `totals`, in record order for first and last. A
/// record that did not decode goes to the dead-letter topic, or fails the job: a total that
/// silently skipped it would be wrong. Returns the records added and the dead letters sent.
pub fn add_batch(
    totals: &mut Aggregator,
    mut decoded: crate::decode::Decoded,
    topic: &str,
    partition: i32,
    dead_letter_topic: Option<&DeadLetterTopic>,
) -> Result<(u64, u64), AddError> {
    let mut dead = 0;
    if let Some(first) = decoded.dead_offsets.first() {
        let Some(dlq) = dead_letter_topic else {
            return Err(AddError::Other(AggregateError::DeadLetter {
                topic: topic.to_string(),
                partition,
                offset: *first,
                reason: dead_reason(&decoded),
            }));
        };
        dead = dlq
            .send(topic, partition, &mut decoded)
            .map_err(|e| AddError::Other(e.into()))?;
    }
    let order: Vec<_> = decoded
        .offsets
        .iter()
        .zip(&decoded.timestamps)
        .map(|(o, t)| order_key(*t, partition, *o))
        .collect();
    let mut at = 0;
    for piece in &decoded.rows {
        let rows = piece.num_rows();
        totals
            .add(piece, &order[at..at + rows])
            .map_err(AddError::Accumulate)?;
        at += rows;
    }
    Ok((decoded.offsets.len() as u64, dead))
}

fn dead_reason(decoded: &crate::decode::Decoded) -> String {
    use arrow::array::AsArray;
    decoded
        .dead
        .as_ref()
        .and_then(|d| d.column_by_name("error"))
        .and_then(|c| c.as_string_opt::<i32>().map(|s| s.value(0).to_string()))
        .unwrap_or_else(|| "cannot be decoded".into())
}

/// Log lines, topic records and the Parquet file of one run's totals. Written before the state
/// moves: a crash after them repeats them with the same content (same file name, same keys).
fn write_outputs(
    ctx: &RunContext,
    job: &JobConfig,
    topic: &TopicConfig,
    totals: &RecordBatch,
    run: u64,
) -> Result<(), AggregateError> {
    let Some(spec) = &job.aggregate else {
        return Ok(());
    };
    if spec.outputs.log {
        for line in output::lines(totals) {
            tracing::info!(job = %job.name, topic = %topic.topic, run, "{line}");
        }
    }
    if let Some(folder) = &spec.outputs.parquet {
        let path = object_store::path::Path::from_iter(
            folder
                .split('/')
                .filter(|s| !s.is_empty())
                .map(object_store::path::PathPart::from)
                .chain([
                    object_store::path::PathPart::from(topic.topic.as_str()),
                    object_store::path::PathPart::from(format!("run={run:08}.parquet")),
                ]),
        );
        state::write_parquet(&ctx.sink, &path, totals)?;
    }
    if let Some(out) = &spec.outputs.topic {
        output::to_topic(&ctx.config.connections, out, totals, spec.group_by.len()).map_err(
            |source| AggregateError::Output {
                job: job.name.clone(),
                source,
            },
        )?;
    }
    Ok(())
}
