//! Continuous reading as a member of a consumer group (cooperative-sticky assignment).
//!
//! librdkafka calls the rebalance callback from inside `poll`, on the polling thread. The
//! callback hands revoked partitions to the job before they are let go (so it can seal and
//! record them) and asks the job where each new partition starts (its recorded progress),
//! so the starting offsets are set in the assignment itself instead of by a later seek.

use super::{Pending, RawBatch};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a job does when the group moves partitions. Both run on the polling thread.
pub trait Assignment: Send {
    /// Partitions given to this member: the offset each starts at (`None`: the group's
    /// committed offset, as Kafka keeps it).
    fn assigned(&mut self, consumer: &GroupConsumer, partitions: &[i32]) -> Vec<Option<i64>>;
    /// Partitions taken away. `lost` means another member may own them already (this one
    /// missed its heartbeats or its poll interval), so nothing of theirs may be recorded.
    fn revoked(&mut self, consumer: &GroupConsumer, partitions: &[i32], lost: bool);
}

pub type GroupConsumer = BaseConsumer<GroupContext>;

pub struct GroupContext {
    topic: String,
    job: Arc<Mutex<dyn Assignment>>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let mut job = match self.job.lock() {
            Ok(job) => job,
            Err(poisoned) => poisoned.into_inner(),
        };
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let starts = job.assigned(consumer, &partitions);
                for (p, start) in partitions.iter().zip(starts) {
                    if let Some(offset) = start {
                        let _ = tpl.set_partition_offset(&self.topic, *p, Offset::Offset(offset));
                    }
                }
                tracing::info!(topic = %self.topic, ?partitions, "partitions assigned");
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                job.revoked(consumer, &partitions, lost);
                if lost {
                    tracing::warn!(topic = %self.topic, ?partitions, "partitions lost (missed heartbeats or max.poll.interval.ms): their unrecorded work is dropped and redone by their new owner");
                } else {
                    tracing::info!(topic = %self.topic, ?partitions, "partitions revoked after sealing and recording them");
                }
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(topic = %self.topic, error = ?other, "rebalance error; the member rejoins");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::warn!(topic = %self.topic, error = %e, "cannot apply the new assignment");
        }
    }
}

/// Subscribes a consumer of `config` (whose `group.id` is set) to `topic`, handing its
/// rebalances to `job`.
pub fn subscribe(
    mut config: ClientConfig,
    topic: &str,
    job: Arc<Mutex<dyn Assignment>>,
) -> Result<GroupConsumer, KafkaError> {
    config
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.partition.eof", "false");
    let context = GroupContext {
        topic: topic.to_string(),
        job,
    };
    let consumer: GroupConsumer = config.create_with_context(context)?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Records of the assigned partitions, gathered into columnar batches per partition. A batch
/// is ready when it is full or its oldest record has waited `linger`.
pub struct Buffers {
    capture: super::HeaderCapture,
    batch_rows: usize,
    linger: Duration,
    partitions: BTreeMap<i32, Pending>,
}

impl Buffers {
    pub fn new(batch_rows: usize, linger: Duration) -> Self {
        Buffers {
            capture: Default::default(),
            batch_rows: batch_rows.max(1),
            linger,
            partitions: BTreeMap::new(),
        }
    }

    /// Keeps these headers of the records buffered from now on.
    pub fn with_capture(mut self, capture: super::HeaderCapture) -> Self {
        self.capture = capture;
        self
    }

    /// Starts buffering `partition` at `offset`; earlier offsets are ignored.
    pub fn start(&mut self, partition: i32, offset: i64) {
        self.partitions.insert(
            partition,
            Pending::new(offset, i64::MAX).with_capture(&self.capture),
        );
    }

    /// Drops what was buffered of `partition`; it is no longer read.
    pub fn stop(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// Buffers a message of a started partition, once; anything else is ignored (a message
    /// fetched before a revoke, or before a seek back).
    pub fn push(&mut self, msg: &rdkafka::message::BorrowedMessage<'_>) {
        if let Some(p) = self.partitions.get_mut(&msg.partition())
            && msg.offset() >= p.next
        {
            p.push(&super::Fields::of(msg));
        }
    }

    /// The next offset to read of each started partition.
    pub fn positions(&self) -> BTreeMap<i32, i64> {
        self.partitions.iter().map(|(p, s)| (*p, s.next)).collect()
    }

    /// The batches that are full or have waited long enough; with `all`, every non-empty one.
    pub fn take_ready(&mut self, all: bool) -> Vec<RawBatch> {
        let now = Instant::now();
        let mut ready = Vec::new();
        for (partition, p) in self.partitions.iter_mut() {
            let due = !p.offsets.is_empty()
                && (all
                    || p.offsets.len() >= self.batch_rows
                    || now.duration_since(p.first_at) >= self.linger);
            if due {
                ready.push(p.take(*partition));
            }
        }
        ready
    }
}
