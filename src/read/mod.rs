//! Reading: exactly the planned ranges, through one assigned (not subscribed) BaseConsumer;
//! `group` reads continuously as a member of a consumer group.
//!
//! A partition is finished by position, not by counting messages: when a message at or past its
//! end arrives, or at partition EOF, so compacted gaps and transaction markers cannot stall it.

use crate::plan::TopicPlan;
use arrow::array::{BinaryArray, BinaryBuilder};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod group;
mod queue;

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

/// Records of one partition in columns, ready to decode without per-record allocations.
#[derive(Debug, Clone)]
pub struct RawBatch {
    pub partition: i32,
    pub offsets: Vec<i64>,
    pub timestamps: Vec<Option<i64>>,
    pub keys: BinaryArray,
    pub values: BinaryArray,
    /// The next offset to read after this batch: the partition is covered up to here.
    pub next_offset: i64,
    /// The partition's range is finished with this batch.
    pub last: bool,
    /// Each record's type header value, for a header-typed topic (`HeaderCapture::type_header`).
    pub types: Option<Vec<Option<String>>>,
    /// Each record's headers as text (invalid UTF-8 replaced), when a stream job asks for them.
    pub headers: Option<Vec<Vec<(String, String)>>>,
}

/// Which headers the reader keeps: reading them costs a lookup per record, so only when asked.
#[derive(Debug, Clone, Default)]
pub struct HeaderCapture {
    /// The header naming each record's type (topics.json `type_header`).
    pub type_header: Option<Arc<str>>,
    /// Every header, for stream jobs.
    pub all: bool,
}

impl HeaderCapture {
    pub fn for_topic(topic: &crate::config::TopicConfig) -> Self {
        HeaderCapture {
            type_header: topic.type_header.as_deref().map(Arc::from),
            all: false,
        }
    }
}

impl RawBatch {
    pub fn len(&self) -> usize {
        self.offsets.len()
    }
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Lets go of the keys, values and headers once they are decoded: a batch then waits
    /// for the writer with its rows only (the offsets stay, for counting and coverage).
    pub fn release_payloads(&mut self) {
        self.keys = BinaryArray::new_null(0);
        self.values = BinaryArray::new_null(0);
        self.types = None;
        self.headers = None;
    }
}

struct Pending {
    next: i64,
    end: i64,
    done: bool,
    offsets: Vec<i64>,
    timestamps: Vec<Option<i64>>,
    keys: BinaryBuilder,
    values: BinaryBuilder,
    /// When the oldest buffered record arrived.
    first_at: Instant,
    /// Key and value bytes buffered.
    bytes: usize,
    capture: HeaderCapture,
    types: Vec<Option<String>>,
    headers: Vec<Vec<(String, String)>>,
}

impl Pending {
    fn new(start: i64, end: i64) -> Self {
        Pending {
            next: start,
            end,
            done: false,
            offsets: Vec::new(),
            timestamps: Vec::new(),
            keys: BinaryBuilder::new(),
            values: BinaryBuilder::new(),
            first_at: Instant::now(),
            bytes: 0,
            capture: HeaderCapture::default(),
            types: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn with_capture(mut self, capture: &HeaderCapture) -> Self {
        self.capture = capture.clone();
        self
    }
    /// Appends a message's columns; the partition is then covered up to after it.
    fn push(&mut self, msg: &Fields<'_>) {
        let offset = msg.offset;
        if self.offsets.is_empty() {
            self.first_at = Instant::now();
        }
        self.offsets.push(offset);
        self.timestamps.push(msg.timestamp);
        self.keys.append_option(msg.key);
        self.values.append_option(msg.payload);
        self.bytes += msg.key.map_or(0, <[u8]>::len) + msg.payload.map_or(0, <[u8]>::len);
        self.next = offset + 1;
        if self.capture.type_header.is_some() || self.capture.all {
            self.push_headers(msg);
        }
    }

    fn push_headers(&mut self, msg: &Fields<'_>) {
        let (mut kind, mut all) = (None, Vec::new());
        msg.headers(|key, value| {
            if let Some(name) = &self.capture.type_header
                && key == name.as_ref()
            {
                kind = value.map(|v| String::from_utf8_lossy(v).into_owned());
            }
            if self.capture.all {
                let value = value.map(String::from_utf8_lossy).unwrap_or_default();
                all.push((key.to_string(), value.into_owned()));
            }
        });
        if self.capture.type_header.is_some() {
            self.types.push(kind);
        }
        if self.capture.all {
            self.headers.push(all);
        }
    }

    fn take(&mut self, partition: i32) -> RawBatch {
        self.bytes = 0;
        RawBatch {
            partition,
            offsets: std::mem::take(&mut self.offsets),
            timestamps: std::mem::take(&mut self.timestamps),
            keys: self.keys.finish(),
            values: self.values.finish(),
            next_offset: self.next,
            types: self
                .capture
                .type_header
                .is_some()
                .then(|| std::mem::take(&mut self.types)),
            headers: self.capture.all.then(|| std::mem::take(&mut self.headers)),
            last: self.done,
        }
    }
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

/// A reader on its own thread, up to `ahead` batches ahead of the caller, so that reading and
/// the caller's work run on two cores. `work` turns each batch into what the caller takes
/// (decoding it, say) on that thread too. Batches arrive in the reader's order; dropping it
/// stops the thread.
pub struct Prefetch<T> {
    /// `None` only while dropping.
    batches: Option<Receiver<Result<T, ReadError>>>,
    consumer: Arc<BaseConsumer>,
    cancel: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// A batch taken by `ready`, handed out by the next `next_batch`.
    early: Option<Result<T, ReadError>>,
}

/// Raw batches read ahead of the work: reading goes on while a batch is worked on.
const RAW_AHEAD: usize = 2;

impl<T: Send + 'static> Prefetch<T> {
    /// Reads on one thread and does `work` on another, so that taking messages from
    /// librdkafka, the work (decoding) and the caller's own work (writing) overlap.
    pub fn start(
        mut reader: BoundedReader,
        ahead: usize,
        mut work: impl FnMut(RawBatch) -> T + Send + 'static,
    ) -> Prefetch<T> {
        let (send_raw, raw) = sync_channel(RAW_AHEAD);
        let (send, batches) = sync_channel(ahead.max(1));
        let (consumer, cancel) = (reader.consumer.clone(), reader.cancel.clone());
        let span = tracing::Span::current();
        let read_span = span.clone();
        let reading = std::thread::spawn(move || {
            let _entered = read_span.enter();
            loop {
                let next = reader.next_batch().transpose();
                let end = !matches!(next, Some(Ok(_)));
                if let Some(item) = next
                    && send_raw.send(item).is_err()
                {
                    return;
                }
                // Time spent waiting for the caller is not the broker's silence.
                reader.last_data = Instant::now();
                if end {
                    return;
                }
            }
        });
        let working = std::thread::spawn(move || {
            let _entered = span.enter();
            // Ends when the reader is done (its sender dropped) or the caller is gone.
            for item in raw.iter() {
                if send.send(item.map(&mut work)).is_err() {
                    return;
                }
            }
        });
        Prefetch {
            batches: Some(batches),
            consumer,
            cancel,
            threads: vec![reading, working],
            early: None,
        }
    }

    /// Whether the next batch is here already, so `next_batch` would not wait.
    pub fn ready(&mut self) -> bool {
        if self.early.is_none()
            && let Some(batches) = &self.batches
        {
            self.early = batches.try_recv().ok();
        }
        self.early.is_some()
    }

    /// As `BoundedReader::next_batch`, with the work done.
    pub fn next_batch(&mut self) -> Result<Option<T>, ReadError> {
        if let Some(batch) = self.early.take() {
            return batch.map(Some);
        }
        match &self.batches {
            Some(batches) => batches.recv().ok().transpose(),
            None => Ok(None),
        }
    }

    pub fn consumer(&self) -> &BaseConsumer {
        &self.consumer
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        // A send into a closed channel fails, so each thread ends even if it was blocked:
        // the worker's send fails first, and its end closes the reader's channel.
        drop(self.batches.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Reads new records as they arrive, with no end: for a live view. Each `poll` returns what
/// came within its wait, one batch per partition.
pub struct TailReader {
    consumer: BaseConsumer,
    topic: String,
    capture: HeaderCapture,
}

impl TailReader {
    /// Assigns `partitions` at the offsets given.
    pub fn start(
        consumer: BaseConsumer,
        topic: &str,
        starts: &BTreeMap<i32, i64>,
        capture: HeaderCapture,
    ) -> Result<Self, ReadError> {
        let assign = |source| ReadError::Assign {
            topic: topic.to_string(),
            source,
        };
        let mut tpl = TopicPartitionList::new();
        for (&p, &start) in starts {
            tpl.add_partition_offset(topic, p, Offset::Offset(start))
                .map_err(assign)?;
        }
        consumer.assign(&tpl).map_err(assign)?;
        Ok(TailReader {
            consumer,
            topic: topic.to_string(),
            capture,
        })
    }

    /// The records that arrive within `wait` (at most `most`), by partition.
    pub fn poll(&mut self, wait: Duration, most: usize) -> Result<Vec<RawBatch>, ReadError> {
        let deadline = Instant::now() + wait;
        let mut pending: BTreeMap<i32, Pending> = BTreeMap::new();
        let mut count = 0;
        while count < most {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.consumer.poll(left) {
                None => break,
                Some(Ok(msg)) => {
                    pending
                        .entry(msg.partition())
                        .or_insert_with(|| {
                            Pending::new(msg.offset(), i64::MAX).with_capture(&self.capture)
                        })
                        .push(&Fields::of(&msg));
                    count += 1;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(source)) => {
                    return Err(ReadError::Kafka {
                        topic: self.topic.clone(),
                        source,
                    });
                }
            }
        }
        Ok(pending
            .iter_mut()
            .map(|(p, pending)| pending.take(*p))
            .collect())
    }
}
