//! Stream jobs: the job's topics are read continuously in a consumer group; each record is
//! decoded, filtered, joined by id (optional), reshaped by `select`, handed to a processing
//! hook (optional) and sent to the output topics. Offsets commit only with the outputs: in
//! one Kafka transaction (exactly once) or after the outputs are acknowledged (at least once).

mod custom;
mod member;
mod outputs;

use super::RunContext;
use crate::config::stream::StreamConfig;
use crate::config::{ContinuousSettings, JobConfig, TopicConfig};
use crate::process::Registry;
pub use custom::main_with;
use member::Member;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    Setup(String),
    #[error("{what}: {source}; check connections.json and that the broker is reachable")]
    Kafka { what: String, source: KafkaError },
    #[error(
        "Kafka transactions failed: {source}. If the broker does not support transactions, set \"delivery\": \"at_least_once\" in the job's stream block"
    )]
    Transactions { source: KafkaError },
    #[error(
        "topic {topic} partition {partition} offset {offset}: {reason}; set stream.dead_letter_topic to set such records aside instead of stopping"
    )]
    Record {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
}

impl StreamError {
    /// Whether a restart fails the same way (exit 2: fix the configuration or the data), as
    /// opposed to a broker, hook or transaction failure a restart may get past (exit 1).
    pub fn is_permanent(&self) -> bool {
        match self {
            StreamError::Setup(_) | StreamError::Record { .. } => true,
            StreamError::Decode(e) => !e.is_transient(),
            StreamError::Process(e) => matches!(e, crate::process::ProcessError::Unregistered(_)),
            // A broker without transactions fails the same way again.
            StreamError::Transactions { source } => {
                source.rdkafka_error_code()
                    == Some(rdkafka::error::RDKafkaErrorCode::UnsupportedFeature)
            }
            StreamError::Kafka { .. } => false,
        }
    }
}

/// What a stream job did before it stopped.
#[derive(Debug, Clone, Default)]
pub struct StreamSummary {
    pub records: u64,
    /// Records sent to the output topics.
    pub sent: u64,
    pub dead_letters: u64,
}

/// Runs a stream job until `ctx.options.stop` is requested or a member fails; `processors`
/// are the Rust processors this binary offers (`stream.process.rust`).
pub fn run(
    ctx: &RunContext,
    job: &JobConfig,
    processors: &Registry,
) -> Result<StreamSummary, StreamError> {
    let settings = job.continuous.clone().unwrap_or_default();
    let mut ctx = ctx.clone();
    ctx.options.stop = ctx.options.stop.child();
    let ctx = &ctx;
    let members: Vec<usize> = (0..settings.threads).collect();
    let results = super::run_members(
        &ctx.options.stop,
        &members,
        |member| tracing::info_span!("stream", job = %job.name, member),
        |member| run_member(ctx, job, &settings, *member, processors),
        |panic| StreamError::Setup(format!("a member panicked: {panic}")),
    );
    let mut total = StreamSummary::default();
    for result in results {
        let s = result?;
        total.records += s.records;
        total.sent += s.sent;
        total.dead_letters += s.dead_letters;
    }
    Ok(total)
}

/// The consumer group of a stream job.
pub fn group_of(job: &JobConfig) -> String {
    job.continuous
        .as_ref()
        .and_then(|c| c.group_id.clone())
        .unwrap_or_else(|| format!("runner.stream.{}", job.name))
}

fn run_member(
    ctx: &RunContext,
    job: &JobConfig,
    settings: &ContinuousSettings,
    index: usize,
    processors: &Registry,
) -> Result<StreamSummary, StreamError> {
    let stream = job.stream.clone().ok_or_else(|| {
        StreamError::Setup(format!(
            "{}: the stream block is missing",
            job.file.display()
        ))
    })?;
    let inputs: Vec<TopicConfig> = job.topics(&ctx.config.topics);
    let group = group_of(job);
    let kafka = |what: &str| {
        let what = what.to_string();
        move |source| StreamError::Kafka {
            what: what.clone(),
            source,
        }
    };
    let mut config = crate::kafka::client_config(&ctx.config.connections);
    config
        .set("group.id", &group)
        .set("client.id", format!("runner-{}-{index}", job.name))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // librdkafka's default waits a second to fetch again once its queue was full.
        .set("fetch.queue.backoff.ms", "10")
        // Range keeps partition p of every input on one member: a join's groups meet there.
        .set("partition.assignment.strategy", "range");
    if let Some(ms) = settings.max_poll_interval_ms {
        config.set("max.poll.interval.ms", ms.to_string());
    }
    for (k, v) in &ctx.config.connections.kafka_properties {
        config.set(k, v);
    }
    let partitions = check_inputs(&config, &inputs, &stream)?;
    let changelog = match &stream.join {
        Some(join) => {
            let name = join
                .changelog_topic
                .clone()
                .unwrap_or_else(|| format!("{group}-join-changelog"));
            ensure_changelog(ctx, &config, &name, partitions)?;
            Some(name)
        }
        None => None,
    };
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "runner".into());
    let transactional_id = format!("{group}.{host}.{index}");
    let member = Member::new(
        ctx,
        job,
        &stream,
        &inputs,
        settings,
        changelog,
        &transactional_id,
        processors,
    )?;
    let member = Arc::new(Mutex::new(member));
    let context = member::StreamContext::new(
        member.clone(),
        inputs.iter().map(|t| t.topic.clone()).collect(),
    );
    let consumer: BaseConsumer<member::StreamContext> = config
        .create_with_context(context)
        .map_err(kafka("cannot create the consumer"))?;
    let names: Vec<&str> = inputs.iter().map(|t| t.topic.as_str()).collect();
    consumer
        .subscribe(&names)
        .map_err(kafka("cannot subscribe"))?;
    tracing::info!(group = %group, topics = ?names, delivery = ?stream.delivery, "stream member started");

    let commit_every = Duration::from_millis(stream.commit_interval_ms);
    let status_every = Duration::from_secs(settings.status_interval_seconds);
    let (mut last_commit, mut last_status) = (Instant::now(), Instant::now());
    let stop = &ctx.options.stop;
    let result = loop {
        if stop.requested() {
            break member::lock(&member).commit(&consumer);
        }
        // Poll without the member locked: the rebalance callback runs inside poll.
        let mut polled = 0;
        while polled < 1000 {
            match consumer.poll(Duration::from_millis(if polled == 0 { 50 } else { 0 })) {
                Some(Ok(msg)) => {
                    member::lock(&member).push(&msg);
                    polled += 1;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error; librdkafka retries");
                    break;
                }
                None => break,
            }
        }
        let mut m = member::lock(&member);
        if let Err(e) = m.step(false) {
            break Err(e);
        }
        if last_commit.elapsed() >= commit_every {
            if let Err(e) = m.commit(&consumer) {
                break Err(e);
            }
            last_commit = Instant::now();
        }
        if last_status.elapsed() >= status_every {
            m.status();
            last_status = Instant::now();
        }
    };
    if result.is_err() {
        member::lock(&member).abort();
    }
    // Leaving the group runs the revoke callback: nothing new to commit by then.
    consumer.unsubscribe();
    let summary = member::lock(&member).summary();
    result.map(|_| summary)
}

/// The inputs exist; joined inputs have the same partition count (co-partitioned). Returns
/// the partition count of the first input.
fn check_inputs(
    config: &rdkafka::ClientConfig,
    inputs: &[TopicConfig],
    stream: &StreamConfig,
) -> Result<i32, StreamError> {
    let consumer: BaseConsumer = config.create().map_err(|source| StreamError::Kafka {
        what: "cannot create a consumer".into(),
        source,
    })?;
    let mut counts = Vec::new();
    for topic in inputs {
        let metadata = consumer
            .fetch_metadata(Some(&topic.topic), Duration::from_secs(30))
            .map_err(|source| StreamError::Kafka {
                what: format!("cannot read the metadata of topic {}", topic.topic),
                source,
            })?;
        let count = metadata
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .map_or(0, |t| t.partitions().len() as i32);
        if count == 0 {
            return Err(StreamError::Setup(format!(
                "input topic {} does not exist; create it or fix the job's topics",
                topic.topic
            )));
        }
        counts.push((topic.topic.clone(), count));
    }
    if stream.join.is_some() && counts.iter().any(|(_, c)| *c != counts[0].1) {
        let list: Vec<String> = counts.iter().map(|(t, c)| format!("{t}: {c}")).collect();
        return Err(StreamError::Setup(format!(
            "a join needs co-partitioned inputs (the same partition count, keyed by the join id), but the partition counts differ ({}); repartition the inputs into topics of one count",
            list.join(", ")
        )));
    }
    Ok(counts.first().map_or(1, |(_, c)| *c))
}

/// Creates the join's changelog (compacted, one partition per input partition) if missing.
fn ensure_changelog(
    ctx: &RunContext,
    config: &rdkafka::ClientConfig,
    name: &str,
    partitions: i32,
) -> Result<(), StreamError> {
    let consumer: BaseConsumer = config.create().map_err(|source| StreamError::Kafka {
        what: "cannot create a consumer".into(),
        source,
    })?;
    let metadata = consumer
        .fetch_metadata(Some(name), Duration::from_secs(30))
        .map_err(|source| StreamError::Kafka {
            what: format!("cannot read the metadata of topic {name}"),
            source,
        })?;
    let existing = metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map_or(0, |t| t.partitions().len() as i32);
    if existing == partitions {
        return Ok(());
    }
    if existing > 0 {
        return Err(StreamError::Setup(format!(
            "the join changelog topic {name} has {existing} partitions but the inputs have {partitions}; delete it or name another changelog_topic"
        )));
    }
    let admin = crate::admin::Admin::new(&ctx.config.connections, ctx.sink.runtime())
        .map_err(|e| StreamError::Setup(e.to_string()))?;
    match admin.create(
        name,
        partitions,
        1,
        &[("cleanup.policy".into(), "compact".into())],
    ) {
        Ok(()) => Ok(()),
        // Another member created it first.
        Err(e) if e.to_string().contains("already exists") => Ok(()),
        Err(e) => Err(StreamError::Setup(format!(
            "cannot create the join changelog topic {name}: {e}; create it yourself (compacted, {partitions} partitions) or name an existing one in stream.join.changelog_topic"
        ))),
    }
}
