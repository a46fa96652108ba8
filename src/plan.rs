//! Planning: the bounded `[start, end)` offset range per partition, computed before any read.
//!
//! start: `starting_offsets` (only listed partitions) > `reset_offsets` (log start) > recorded
//! progress > the group's committed offset > log start. end: the high watermark at plan time,
//! lowered by the `num_messages` cap. A backfill's `--from`/`--to` bounds replace both rules,
//! and a shard keeps only its part of the partitions.

pub mod bounds;

use crate::config::TopicConfig;
use bounds::{Backfill, Position, Shard};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "topic {topic}: cannot read its metadata from Kafka: {source}. Check that the broker is up and connections.json: bootstrap_servers, and ssl_config (ca for a private CA; cert and key when the broker asks for a client certificate) and sasl (mechanism, username, password) when the broker uses TLS or SASL; the librdkafka error logged before this one names the cause (a refused connection, an SSL handshake or a SASL authentication failure)"
    )]
    Metadata {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("topic {topic} does not exist on the cluster; create it or remove it from topics.json")]
    UnknownTopic { topic: String },
    #[error(
        "topic {topic}: starting_offsets names partition {partition}, but the topic has partitions 0..{count}; fix topics.json"
    )]
    UnknownPartition {
        topic: String,
        partition: i32,
        count: usize,
    },
    #[error("topic {topic} partition {partition}: cannot read watermarks: {source}")]
    Watermarks {
        topic: String,
        partition: i32,
        source: rdkafka::error::KafkaError,
    },
    #[error("topic {topic}: cannot read the committed offsets of group {group}: {source}")]
    Committed {
        topic: String,
        group: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "topic {topic} partition {partition}: offsets {start}..{low} were deleted by retention before they were exported (start from {source_name}). {fix} to continue from offset {low} and record the gap"
    )]
    DataLoss {
        topic: String,
        partition: i32,
        start: i64,
        low: i64,
        source_name: &'static str,
        fix: &'static str,
    },
    #[error("topic {topic}: cannot look up offsets by timestamp: {source}")]
    Times {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("topic {topic} partition {partition}: {problem}")]
    Bounds {
        topic: String,
        partition: i32,
        problem: String,
    },
    #[error(
        "topic {topic} partition {partition}: start offset {start} (from {source_name}) is beyond the end of the partition ({high}). The topic may have been recreated; set \"reset_offsets\": true or use a new group_id"
    )]
    BeyondEnd {
        topic: String,
        partition: i32,
        start: i64,
        high: i64,
        source_name: &'static str,
    },
}

/// Where a partition's start offset came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartSource {
    StartingOffsets,
    Reset,
    Progress,
    Committed,
    Earliest,
    Backfill,
}

impl StartSource {
    pub fn name(self) -> &'static str {
        match self {
            StartSource::StartingOffsets => "starting_offsets",
            StartSource::Reset => "reset_offsets",
            StartSource::Progress => "recorded progress",
            StartSource::Committed => "the group's committed offset",
            StartSource::Earliest => "the log start",
            StartSource::Backfill => "--from",
        }
    }
}

/// What Kafka and the progress records say about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
    pub recorded: Option<i64>,
    pub committed: Option<i64>,
    /// Per looked-up timestamp, the first offset at or after it (`None`: no such record).
    pub at_time: BTreeMap<i64, Option<i64>>,
}

/// What a run asks of the plan beyond topics.json: backfill bounds and a shard.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub backfill: Option<&'a Backfill>,
    pub shard: Option<Shard>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionPlan {
    pub partition: i32,
    pub start: i64,
    pub end: i64,
    pub high: i64,
    pub source: StartSource,
    /// Offsets lost to retention that the run skips (only with fail_on_data_loss false).
    pub lost: Option<(i64, i64)>,
}

impl PartitionPlan {
    pub fn count(&self) -> i64 {
        self.end - self.start
    }
    /// Offsets left after this run's range.
    pub fn lag_after(&self) -> i64 {
        self.high - self.end
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicPlan {
    pub topic: String,
    pub group_id: String,
    pub partitions: Vec<PartitionPlan>,
}

impl TopicPlan {
    pub fn count(&self) -> i64 {
        self.partitions.iter().map(PartitionPlan::count).sum()
    }
    /// The partitions that have something to read.
    pub fn to_read(&self) -> impl Iterator<Item = &PartitionPlan> {
        self.partitions.iter().filter(|p| p.count() > 0)
    }
}

/// Asks Kafka for partitions, watermarks and committed offsets, then plans the topic.
pub fn plan_topic(
    consumer: &BaseConsumer,
    topic: &TopicConfig,
    recorded: &BTreeMap<i32, i64>,
    request: Request,
    timeout: Duration,
) -> Result<TopicPlan, PlanError> {
    let times = request.backfill.map(Backfill::times).unwrap_or_default();
    let states = partition_states(consumer, topic, recorded, &times, timeout)?;
    let partitions = compute(topic, &states, request)?;
    Ok(TopicPlan {
        topic: topic.topic.clone(),
        group_id: topic.group_id(),
        partitions,
    })
}

fn partition_states(
    consumer: &BaseConsumer,
    topic: &TopicConfig,
    recorded: &BTreeMap<i32, i64>,
    times: &[i64],
    timeout: Duration,
) -> Result<Vec<PartitionState>, PlanError> {
    let name = topic.topic.as_str();
    let metadata = consumer
        .fetch_metadata(Some(name), timeout)
        .map_err(|source| PlanError::Metadata {
            topic: name.to_string(),
            source,
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == name && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(PlanError::UnknownTopic {
            topic: name.to_string(),
        });
    }
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition(name, *p);
    }
    let group = topic.group_id();
    let committed =
        consumer
            .committed_offsets(tpl, timeout)
            .map_err(|source| PlanError::Committed {
                topic: name.to_string(),
                group: group.clone(),
                source,
            })?;
    let mut states = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let (low, high) = retrying(timeout, || {
            consumer.fetch_watermarks(name, partition, timeout)
        })
        .map_err(|source| PlanError::Watermarks {
            topic: name.to_string(),
            partition,
            source,
        })?;
        let committed = committed
            .find_partition(name, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            });
        states.push(PartitionState {
            partition,
            low,
            high,
            recorded: recorded.get(&partition).copied(),
            committed,
            at_time: BTreeMap::new(),
        });
    }
    states.sort_by_key(|s| s.partition);
    for &ms in times {
        look_up_time(consumer, name, &mut states, ms, timeout)?;
    }
    Ok(states)
}

/// Kafka's offsets-for-times: per partition, the first offset whose timestamp is at or after
/// `ms` (`None` when no record is that late).
fn look_up_time(
    consumer: &BaseConsumer,
    topic: &str,
    states: &mut [PartitionState],
    ms: i64,
    timeout: Duration,
) -> Result<(), PlanError> {
    let error = |source| PlanError::Times {
        topic: topic.to_string(),
        source,
    };
    let mut tpl = TopicPartitionList::new();
    for s in states.iter() {
        tpl.add_partition_offset(topic, s.partition, Offset::Offset(ms))
            .map_err(error)?;
    }
    let found = consumer.offsets_for_times(tpl, timeout).map_err(error)?;
    for s in states.iter_mut() {
        let Some(entry) = found.find_partition(topic, s.partition) else {
            continue;
        };
        entry.error().map_err(error)?;
        let offset = match entry.offset() {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        };
        s.at_time.insert(ms, offset);
    }
    Ok(())
}

/// The pure planning rule, separate from Kafka so it can be tested on its own.
pub fn compute(
    topic: &TopicConfig,
    states: &[PartitionState],
    request: Request,
) -> Result<Vec<PartitionPlan>, PlanError> {
    let name = &topic.topic;
    let named = topic
        .starting_offsets
        .iter()
        .flat_map(|s| s.0.keys())
        .chain(
            request
                .backfill
                .iter()
                .flat_map(|b| b.from.partitions.keys().chain(b.to.partitions.keys())),
        );
    for partition in named {
        if !states.iter().any(|s| s.partition == *partition) {
            return Err(PlanError::UnknownPartition {
                topic: name.clone(),
                partition: *partition,
                count: states.len(),
            });
        }
    }
    let mut plans = Vec::new();
    for s in states {
        if request
            .shard
            .is_some_and(|shard| !shard.owns(name, s.partition))
        {
            continue;
        }
        let bounds_error = |problem: String| PlanError::Bounds {
            topic: name.clone(),
            partition: s.partition,
            problem,
        };
        let (start, source) = match request.backfill {
            Some(b) if b.from.is_set() => match b.from.get(s.partition) {
                Some(Position::Stored) => stored(s),
                Some(position) => (resolve(position, s), StartSource::Backfill),
                None => continue,
            },
            _ => match regular_start(topic, s) {
                Some(start) => start,
                None => continue,
            },
        };
        let end = match request.backfill.and_then(|b| b.to.get(s.partition)) {
            None => s.high,
            Some(position) => {
                let end = resolve(position, s);
                if end > s.high {
                    tracing::warn!(
                        partition = s.partition,
                        to = end,
                        high = s.high,
                        "--to is past the end of the partition; reading to the end"
                    );
                }
                end.min(s.high)
            }
        };
        if start > s.high {
            if source == StartSource::Backfill {
                return Err(bounds_error(format!(
                    "--from resolves to offset {start}, past the end of the partition ({})",
                    s.high
                )));
            }
            return Err(PlanError::BeyondEnd {
                topic: name.clone(),
                partition: s.partition,
                start,
                high: s.high,
                source_name: source.name(),
            });
        }
        if end < start {
            return Err(bounds_error(format!(
                "--to resolves to offset {end}, before the start {start} (from {}); swap or fix the bounds",
                source.name()
            )));
        }
        let mut plan = PartitionPlan {
            partition: s.partition,
            start,
            end,
            high: s.high,
            source,
            lost: None,
        };
        if start < s.low {
            let lost_end = s.low.min(end);
            if topic.fail_on_data_loss {
                return Err(PlanError::DataLoss {
                    topic: name.clone(),
                    partition: s.partition,
                    start,
                    low: s.low,
                    source_name: source.name(),
                    fix: match (source, request.backfill) {
                        (_, Some(_)) => "Pass --allow-data-loss",
                        _ => "Set \"fail_on_data_loss\": false",
                    },
                });
            }
            plan.lost = Some((start, lost_end));
            plan.start = lost_end;
        }
        plans.push(plan);
    }
    // A backfill's bounds are its range; the per-run cap is for regular runs.
    if let (Some(cap), None) = (topic.num_messages, request.backfill) {
        apply_cap(&mut plans, cap);
    }
    Ok(plans)
}

/// A regular run's start: `starting_offsets` (listed partitions only), `reset_offsets`, then
/// the stored position.
fn regular_start(topic: &TopicConfig, s: &PartitionState) -> Option<(i64, StartSource)> {
    match &topic.starting_offsets {
        Some(starts) => starts
            .get(s.partition)
            .map(|o| (o, StartSource::StartingOffsets)),
        None if topic.reset_offsets => Some((s.low, StartSource::Reset)),
        None => Some(stored(s)),
    }
}

/// Recorded progress, else the group's committed offset, else the log start.
fn stored(s: &PartitionState) -> (i64, StartSource) {
    match (s.recorded, s.committed) {
        (Some(o), _) => (o, StartSource::Progress),
        (None, Some(o)) => (o, StartSource::Committed),
        (None, None) => (s.low, StartSource::Earliest),
    }
}

/// The offset a bound names in this partition.
fn resolve(position: Position, s: &PartitionState) -> i64 {
    match position {
        Position::Beginning => s.low,
        Position::End => s.high,
        Position::Stored => stored(s).0,
        Position::Offset(o) => o,
        Position::FromEnd(n) => (s.high - n).max(s.low),
        Position::Time(ms) => s.at_time.get(&ms).copied().flatten().unwrap_or(s.high),
    }
}

/// Splits the cap evenly over partitions in ascending order; a partition with fewer offsets
/// available hands its unused share to the others; any remainder goes to the lowest partitions.
fn apply_cap(plans: &mut [PartitionPlan], cap: u64) {
    let available: Vec<u64> = plans.iter().map(|p| p.count().max(0) as u64).collect();
    let mut given = vec![0u64; plans.len()];
    let mut left = cap;
    loop {
        let open: Vec<usize> = (0..plans.len())
            .filter(|&i| given[i] < available[i])
            .collect();
        if open.is_empty() || left == 0 {
            break;
        }
        let share = (left / open.len() as u64).max(1);
        for i in open {
            let take = share.min(available[i] - given[i]).min(left);
            given[i] += take;
            left -= take;
            if left == 0 {
                break;
            }
        }
    }
    for (plan, n) in plans.iter_mut().zip(given) {
        plan.end = plan.start + n as i64;
    }
}

#[cfg(test)]
mod tests;

/// Runs a request again while it fails in a way a broker recovers from (a leader moving, a
/// timeout, a connection lost) and `timeout` has not passed.
fn retrying<T>(
    timeout: Duration,
    mut request: impl FnMut() -> Result<T, rdkafka::error::KafkaError>,
) -> Result<T, rdkafka::error::KafkaError> {
    use rdkafka::types::RDKafkaErrorCode as Code;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match request() {
            Err(e)
                if std::time::Instant::now() < deadline
                    && e.rdkafka_error_code().is_some_and(|code| {
                        matches!(
                            code,
                            Code::NotLeaderForPartition
                                | Code::LeaderNotAvailable
                                | Code::RequestTimedOut
                                | Code::BrokerTransportFailure
                                | Code::AllBrokersDown
                                | Code::NetworkException
                        )
                    }) =>
            {
                tracing::debug!(error = %e, "retrying a request the broker failed for now");
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}
