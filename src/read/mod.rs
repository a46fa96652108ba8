//! Reading: exactly the planned ranges, through one assigned (not subscribed) BaseConsumer;
//! `group` reads continuously as a member of a consumer group.
//!
//! A partition is finished by position, not by counting messages: when a message at or past its
//! end arrives, or at partition EOF, so compacted gaps and transaction markers cannot stall it.

use crate::plan::TopicPlan;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod batch;
pub mod group;
mod prefetch;
mod queue;
mod tail;

use batch::Pending;
pub use batch::{HeaderCapture, RawBatch};
pub use prefetch::Prefetch;
pub use tail::TailReader;

pub use queue::Fields;
use queue::{BatchQueue, Taken};

/// Key and value bytes a bounded reader buffers over all partitions before it sends the
/// largest partial batch on (default).
pub const MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;

/// Partitions a bounded reader reads at once; the others wait their turn. Every partition
/// being read has an open file, its share of librdkafka's prefetch and of the reader's
/// buffers, so this, not the partition count, bounds the memory of a run
/// (docs/performance.md: 400 partitions all at once took 301 MB and 61 s, 32 at a time
/// 196 MB and 14.5 s).
pub const PARTITIONS_AT_ONCE: usize = 32;

/// How many partitions of `plan` a bounded reader reads at once.
pub fn at_once(plan: &TopicPlan) -> usize {
    plan.to_read().count().clamp(1, PARTITIONS_AT_ONCE)
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("topic {topic}: cannot assign partitions: {source}")]
    Assign { topic: String, source: KafkaError },
    #[error("topic {topic} partition {partition} at offset {offset}: {source}")]
    Consume {
        topic: String,
        partition: i32,
        offset: i64,
        source: KafkaError,
    },
    #[error("topic {topic}: {source}")]
    Kafka { topic: String, source: KafkaError },
    #[error(
        "topic {topic} partition {partition}: no data for {seconds}s at offset {offset} (planned end {end}); check that the brokers are reachable, then rerun: progress is kept"
    )]
    Stalled {
        topic: String,
        partition: i32,
        offset: i64,
        end: i64,
        seconds: u64,
    },
}

pub struct BoundedReader {
    /// The assigned partitions' messages, in batches; `None` if librdkafka would not make
    /// the queue (then the consumer is polled a message at a time).
    queue: Option<BatchQueue>,
    consumer: Arc<BaseConsumer>,
    topic: String,
    batch_rows: usize,
    stall_timeout: Duration,
    partitions: BTreeMap<i32, Pending>,
    /// Planned partitions not assigned yet: one is assigned as another finishes.
    waiting: VecDeque<(i32, Pending)>,
    /// Partitions whose batch is full or whose range is done, newest last; `true` when the
    /// batch goes out before it is full, to keep the buffers within `MAX_BUFFERED_BYTES`.
    ready: Vec<(i32, bool)>,
    /// Key and value bytes buffered over all partitions, and the most allowed.
    buffered: usize,
    budget: usize,
    /// A partial batch is on its way out: no need to look for the largest again.
    releasing: bool,
    last_data: Instant,
    /// Set when the batches are no longer wanted (see `Prefetch`).
    cancel: Arc<AtomicBool>,
}

impl BoundedReader {
    /// Assigns the partitions of `plan` that have something to read, at their start offsets,
    /// and takes their messages in batches from a queue of their own.
    pub fn start(
        consumer: BaseConsumer,
        plan: &TopicPlan,
        batch_rows: usize,
        stall_timeout: Duration,
        capture: HeaderCapture,
    ) -> Result<Self, ReadError> {
        Self::start_with(consumer, plan, batch_rows, stall_timeout, capture, true)
    }

    /// As `start`, polling the consumer for one message at a time: the path librdkafka's
    /// batches replaced, kept as the fallback and to compare against.
    pub fn start_one_at_a_time(
        consumer: BaseConsumer,
        plan: &TopicPlan,
        batch_rows: usize,
        stall_timeout: Duration,
        capture: HeaderCapture,
    ) -> Result<Self, ReadError> {
        Self::start_with(consumer, plan, batch_rows, stall_timeout, capture, false)
    }

    fn start_with(
        consumer: BaseConsumer,
        plan: &TopicPlan,
        batch_rows: usize,
        stall_timeout: Duration,
        capture: HeaderCapture,
        batches: bool,
    ) -> Result<Self, ReadError> {
        let mut waiting = VecDeque::new();
        for p in plan.to_read() {
            waiting.push_back((
                p.partition,
                Pending::new(p.start, p.end).with_capture(&capture),
            ));
        }
        // Every planned partition's queue is forwarded before any is assigned, so that no
        // message goes to the consumer's queue first; the forward outlives assignments.
        let queue = batches
            .then(|| BatchQueue::forward(&consumer, &plan.topic, waiting.iter().map(|w| w.0)))
            .flatten();
        let mut reader = BoundedReader {
            queue,
            consumer: Arc::new(consumer),
            topic: plan.topic.clone(),
            batch_rows: batch_rows.max(1),
            stall_timeout,
            partitions: BTreeMap::new(),
            waiting,
            ready: Vec::new(),
            buffered: 0,
            budget: MAX_BUFFERED_BYTES,
            releasing: false,
            last_data: Instant::now(),
            cancel: Arc::new(AtomicBool::new(false)),
        };
        reader.assign_next(PARTITIONS_AT_ONCE)?;
        Ok(reader)
    }

    /// Assigns up to `count` waiting partitions at their start offsets.
    fn assign_next(&mut self, count: usize) -> Result<(), ReadError> {
        let mut tpl = TopicPartitionList::new();
        for _ in 0..count {
            let Some((partition, pending)) = self.waiting.pop_front() else {
                break;
            };
            tpl.add_partition_offset(&self.topic, partition, Offset::Offset(pending.next))
                .map_err(|source| ReadError::Assign {
                    topic: self.topic.clone(),
                    source,
                })?;
            self.partitions.insert(partition, pending);
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        self.consumer
            .incremental_assign(&tpl)
            .map_err(|source| ReadError::Assign {
                topic: self.topic.clone(),
                source,
            })
    }

    pub fn consumer(&self) -> &BaseConsumer {
        &self.consumer
    }

    /// Reads every partition at once rather than `PARTITIONS_AT_ONCE`: for a scan that
    /// samples every partition before it reaches its cap.
    pub fn read_every_partition(mut self) -> Result<Self, ReadError> {
        let rest = self.waiting.len();
        self.assign_next(rest)?;
        Ok(self)
    }

    /// Buffers at most this many key and value bytes over all partitions.
    pub fn with_buffer_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes.max(1);
        self
    }

    /// The next full batch of a partition, or the last (possibly empty) batch of a finished
    /// partition. `None` once every partition has reached its end.
    pub fn next_batch(&mut self) -> Result<Option<RawBatch>, ReadError> {
        loop {
            if let Some(batch) = self.ready_batch() {
                return Ok(Some(batch));
            }
            if self.cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if self.partitions.is_empty() {
                if self.waiting.is_empty() {
                    return Ok(None);
                }
                self.assign_next(1)?;
            }
            self.poll_once()?;
        }
    }

    /// The batch of a partition that filled up or finished since the last call. Only the
    /// partition a message just went to can have become ready, so nothing is scanned.
    fn ready_batch(&mut self) -> Option<RawBatch> {
        while let Some((partition, early)) = self.ready.pop() {
            self.releasing &= !early;
            let Some(pending) = self.partitions.get_mut(&partition) else {
                continue;
            };
            let full = pending.done || pending.offsets.len() >= self.batch_rows;
            let wanted = full || (early && !pending.offsets.is_empty());
            if !wanted {
                continue;
            }
            self.buffered -= pending.bytes.min(self.buffered);
            let batch = pending.take(partition);
            if pending.done {
                self.partitions.remove(&partition);
            }
            return Some(batch);
        }
        None
    }

    /// Takes what the partitions' queue holds (waiting up to 200 ms for the first message),
    /// and serves the consumer's own queue, where client-wide errors arrive.
    fn poll_once(&mut self) -> Result<(), ReadError> {
        let consumer = self.consumer.clone();
        match consumer.poll(Duration::ZERO) {
            Some(Ok(msg)) => self.arrived().message(&Fields::of(&msg)),
            Some(Err(error)) => self.error(error),
            None => Ok(()),
        }?;
        let Some(queue) = self.queue.take() else {
            return match consumer.poll(Duration::from_millis(200)) {
                None => self.check_stall(),
                Some(Ok(msg)) => self.arrived().message(&Fields::of(&msg)),
                Some(Err(error)) => self.error(error),
            };
        };
        let (mut result, mut messages) = (Ok(()), false);
        queue.take(Duration::from_millis(200), |taken| {
            if result.is_ok() {
                result = match taken {
                    Taken::Message(fields) => {
                        messages = true;
                        self.message(&fields)
                    }
                    Taken::Error(error) => self.error(error),
                };
            }
        });
        self.queue = Some(queue);
        // Errors alone (a broker gone) are not data: the stall timeout keeps running.
        if messages {
            self.arrived();
        } else {
            self.check_stall()?;
        }
        result
    }

    fn arrived(&mut self) -> &mut Self {
        self.last_data = Instant::now();
        self
    }

    /// A message; the caller notes the time data last came (`arrived`), once per take:
    /// reading the clock per message was 1% of a run's CPU.
    fn message(&mut self, msg: &Fields<'_>) -> Result<(), ReadError> {
        let partition = msg.partition;
        let Some(p) = self.partitions.get_mut(&partition) else {
            return Ok(());
        };
        let offset = msg.offset;
        if p.done || offset < p.next {
            return Ok(());
        }
        if offset >= p.end {
            p.next = p.end;
            return self.finish(partition);
        }
        let before = p.bytes;
        p.push(msg);
        self.buffered += p.bytes - before;
        if p.next >= p.end {
            self.finish(partition)?;
        } else if p.offsets.len() >= self.batch_rows {
            self.ready.push((partition, false));
        } else if self.buffered > self.budget && !self.releasing {
            self.release_largest();
        }
        Ok(())
    }

    fn error(&mut self, error: KafkaError) -> Result<(), ReadError> {
        if let KafkaError::PartitionEOF(partition) = error {
            self.last_data = Instant::now();
            // Everything up to the current high watermark (or the last stable offset under
            // read_committed) has been seen: cover up to the consumer's position.
            let position = self.position(partition)?;
            if let Some(p) = self.partitions.get_mut(&partition)
                && !p.done
            {
                p.next = p.next.max(position.unwrap_or(p.next)).min(p.end);
                self.finish(partition)?;
            }
            return Ok(());
        }
        // librdkafka reconnects and refetches by itself after these; a broker that stays away
        // ends the read through the stall timeout, with a message that says so.
        if let KafkaError::MessageConsumption(
            RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown,
        ) = error
        {
            tracing::warn!(topic = %self.topic, error = %error, "lost the broker for now; librdkafka reconnects");
            return Ok(());
        }
        let (partition, offset) = self
            .partitions
            .iter()
            .find(|(_, p)| !p.done)
            .map(|(k, p)| (*k, p.next))
            .unwrap_or((-1, -1));
        Err(ReadError::Consume {
            topic: self.topic.clone(),
            partition,
            offset,
            source: error,
        })
    }

    /// With many partitions, batches that never fill would hold the whole range in memory:
    /// past the budget the largest one goes out early.
    fn release_largest(&mut self) {
        let largest = self
            .partitions
            .iter()
            .filter(|(_, p)| !p.done)
            .max_by_key(|(_, p)| p.bytes)
            .map(|(k, _)| *k);
        if let Some(partition) = largest {
            self.releasing = true;
            self.ready.push((partition, true));
        }
    }

    /// Marks the partition's range read and lets the next waiting partition in.
    fn finish(&mut self, partition: i32) -> Result<(), ReadError> {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.done = true;
            self.ready.push((partition, false));
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, partition);
        // Stop fetching past the end and let the partition go; a failure only costs some
        // wasted fetches, whose messages are dropped as past the end.
        if self.consumer.incremental_unassign(&tpl).is_err() {
            let _ = self.consumer.pause(&tpl);
        }
        self.assign_next(1)
    }

    fn position(&self, partition: i32) -> Result<Option<i64>, ReadError> {
        let positions = self
            .consumer
            .position()
            .map_err(|source| ReadError::Kafka {
                topic: self.topic.clone(),
                source,
            })?;
        Ok(positions
            .find_partition(&self.topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }))
    }

    fn check_stall(&self) -> Result<(), ReadError> {
        if self.last_data.elapsed() < self.stall_timeout {
            return Ok(());
        }
        let (partition, p) = self
            .partitions
            .iter()
            .find(|(_, p)| !p.done)
            .map(|(k, p)| (*k, (p.next, p.end)))
            .unwrap_or((-1, (-1, -1)));
        Err(ReadError::Stalled {
            topic: self.topic.clone(),
            partition,
            offset: p.0,
            end: p.1,
            seconds: self.stall_timeout.as_secs(),
        })
    }
}
