//! The jobs page's facts: each job's schedule and next fire time, its last run from the
//! history, and its lag per partition (where its next run would start against the high
//! watermark, or a stream job's committed offsets).

use crate::config::{JobConfig, JobKind, TopicConfig};
use crate::history::Entry;
use crate::jobs::RunContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub name: String,
    pub kind: &'static str,
    pub enabled: bool,
    /// The cron expression, `continuous`, or none (runs only when asked).
    pub schedule: Option<String>,
    pub time_zone: Option<String>,
    /// The next fire time in UTC.
    pub next_run: Option<String>,
    pub topics: Vec<String>,
    /// A run is going on in this process now.
    pub running: bool,
    /// The console may start a run here (`runner schedule --allow-trigger`).
    pub can_trigger: bool,
    pub last_run: Option<Entry>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Lag {
    pub topic: String,
    pub partition: i32,
    /// Where the job's next run starts (or the group's committed offset).
    pub position: Option<i64>,
    pub high: i64,
    pub lag: i64,
}

fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Export => "export",
        JobKind::Aggregate => "aggregate",
        JobKind::Stream => "stream",
    }
}

/// The newest `last` runs of `job` in the last 30 days, newest first; none when the history
/// cannot be read (it must not block a look at the jobs).
pub fn history(ctx: &RunContext, job: &JobConfig, last: usize) -> Vec<Entry> {
    crate::history::recent(&ctx.sink, last, 30, Some(&job.name)).unwrap_or_else(|e| {
        tracing::warn!(job = %job.name, error = %e, "cannot read the history");
        Vec::new()
    })
}

/// The status of `job`; `last_run` is its newest history entry.
pub fn status(
    ctx: &RunContext,
    job: &JobConfig,
    last_run: Option<Entry>,
    running: bool,
    can_trigger: bool,
) -> JobStatus {
    JobStatus {
        name: job.name.clone(),
        kind: kind_name(job.kind),
        enabled: job.enabled,
        schedule: job.schedule.clone(),
        time_zone: job.time_zone.clone(),
        next_run: job
            .cron
            .as_ref()
            .filter(|_| job.enabled)
            .and_then(|c| c.next_after(chrono::Utc::now()))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        topics: job
            .topics(&ctx.config.topics)
            .into_iter()
            .map(|t| t.topic)
            .collect(),
        running,
        can_trigger,
        last_run,
    }
}

/// The lag of every partition of the job's topics; an error names the topic.
pub fn lag(ctx: &RunContext, job: &JobConfig) -> Result<Vec<Lag>, String> {
    let mut rows = Vec::new();
    for topic in job.topics(&ctx.config.topics) {
        let found = match job.kind {
            JobKind::Stream => committed_lag(ctx, &crate::jobs::stream::group_of(job), &topic),
            JobKind::Aggregate => aggregate_lag(ctx, job, &topic),
            JobKind::Export => {
                let mut planned = topic.clone();
                if let Some(group) = job.continuous.as_ref().and_then(|c| c.group_id.clone()) {
                    planned.group_id = Some(group);
                }
                planned_lag(ctx, &planned)
            }
        };
        rows.extend(found.map_err(|e| format!("topic {}: {e}", topic.topic))?);
    }
    Ok(rows)
}

fn planned_lag(ctx: &RunContext, topic: &TopicConfig) -> Result<Vec<Lag>, String> {
    let plan = crate::jobs::export::plan_only(ctx, topic).map_err(|e| e.to_string())?;
    Ok(rows_of(topic, &plan))
}

/// An aggregate keeps its offsets in its own state, beside its totals.
fn aggregate_lag(
    ctx: &RunContext,
    job: &JobConfig,
    topic: &TopicConfig,
) -> Result<Vec<Lag>, String> {
    let state = crate::aggregate::state::AggregateState::load(&ctx.sink, &job.name, &topic.topic)
        .map_err(|e| e.to_string())?;
    let mut planned = topic.clone();
    planned.group_id = Some(format!("runner.aggregate.{}", job.name));
    let consumer: BaseConsumer =
        crate::kafka::export_consumer_config(&ctx.config.connections, &planned.group_id())
            .create()
            .map_err(|e| e.to_string())?;
    let plan = crate::plan::plan_topic(
        &consumer,
        &planned,
        &state.offsets,
        crate::plan::Request::default(),
        ctx.options.kafka_timeout,
    )
    .map_err(|e| e.to_string())?;
    crate::kafka::close(&consumer);
    Ok(rows_of(topic, &plan))
}

fn rows_of(topic: &TopicConfig, plan: &crate::plan::TopicPlan) -> Vec<Lag> {
    plan.partitions
        .iter()
        .map(|p| Lag {
            topic: topic.topic.clone(),
            partition: p.partition,
            position: Some(p.start),
            high: p.high,
            lag: (p.high - p.start).max(0),
        })
        .collect()
}

fn committed_lag(ctx: &RunContext, group: &str, topic: &TopicConfig) -> Result<Vec<Lag>, String> {
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer =
        crate::kafka::export_consumer_config(&ctx.config.connections, group)
            .create()
            .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(&topic.topic), timeout)
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic.topic) {
        for p in t.partitions() {
            tpl.add_partition(&topic.topic, p.id());
        }
    }
    let committed = consumer
        .committed_offsets(tpl, timeout)
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for e in committed.elements() {
        let (low, high) = consumer
            .fetch_watermarks(&topic.topic, e.partition(), timeout)
            .map_err(|e| e.to_string())?;
        let position = match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        rows.push(Lag {
            topic: topic.topic.clone(),
            partition: e.partition(),
            position,
            high,
            lag: (high - position.unwrap_or(low)).max(0),
        });
    }
    crate::kafka::close(&consumer);
    Ok(rows)
}
