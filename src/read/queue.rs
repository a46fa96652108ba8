//! The assigned partitions' messages on a queue of their own, taken in batches.
//!
//! rdkafka's `poll` hands out one message per call, each wrapped in a reference-counted event:
//! about 1,000 instructions a message (docs/performance.md). librdkafka's batch call takes up
//! to a thousand messages under one wait. The partitions' fetch queues are forwarded to this
//! queue before they are assigned, so it only ever holds their messages and errors; everything
//! else (client errors, logs) stays on the consumer's queue, which the reader still polls.

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedHeaders, BorrowedMessage, Message};
use rdkafka::types::RDKafkaErrorCode;
use std::ffi::{CStr, CString, c_void};
use std::time::Duration;

/// Messages taken per call.
const BATCH: usize = 1024;

pub struct BatchQueue {
    queue: *mut rd::rd_kafka_queue_t,
}

// SAFETY: librdkafka's queues are thread-safe; the handle is owned and destroyed once.
unsafe impl Send for BatchQueue {}

impl BatchQueue {
    /// A new queue that `partitions` of `topic` deliver to. Call before assigning them, so
    /// that no message goes to the consumer's queue first.
    pub fn forward<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        topic: &str,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Option<BatchQueue> {
        // SAFETY: the client outlives the call.
        let queue = unsafe { rd::rd_kafka_queue_new(consumer.client().native_ptr()) };
        if queue.is_null() {
            return None;
        }
        let me = BatchQueue { queue };
        let mut added = Vec::new();
        for p in partitions {
            if !forward(consumer, topic, p, me.queue) {
                // Back to the consumer's queue, which the caller then polls.
                for p in added {
                    forward(consumer, topic, p, std::ptr::null_mut());
                }
                return None;
            }
            added.push(p);
        }
        Some(me)
    }

    /// Waits up to `wait` for the first message, then takes what else is there without
    /// waiting, up to `BATCH`. `each` sees them in the queue's order.
    pub fn take(&self, wait: Duration, mut each: impl FnMut(Taken<'_>)) {
        let mut slots: [*mut rd::rd_kafka_message_t; BATCH] = [std::ptr::null_mut(); BATCH];
        let mut n = self.fill(0, &mut slots, BATCH);
        if n == 0 {
            let ms = wait.as_millis().min(i32::MAX as u128) as i32;
            n = self.fill(ms, &mut slots, 1);
            if n == 1 {
                n += self.fill(0, &mut slots[1..], BATCH - 1);
            }
        }
        for &message in &slots[..n] {
            // SAFETY: librdkafka returned `n` valid messages; each is read, then destroyed
            // once, and nothing borrowed from it outlives `each`.
            unsafe {
                each(Taken::from_raw(message));
                rd::rd_kafka_message_destroy(message);
            }
        }
    }

    fn fill(&self, wait_ms: i32, slots: &mut [*mut rd::rd_kafka_message_t], most: usize) -> usize {
        // SAFETY: `slots` has room for `most` pointers.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(self.queue, wait_ms, slots.as_mut_ptr(), most)
        };
        n.max(0) as usize
    }
}

/// Forwards a partition's fetch queue to `to` (null: back to the consumer's queue).
fn forward<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    to: *mut rd::rd_kafka_queue_t,
) -> bool {
    let Ok(topic) = CString::new(topic) else {
        return false;
    };
    let client = consumer.client().native_ptr();
    // SAFETY: the client outlives the call; the partition queue handle is released after
    // forwarding (librdkafka keeps the forward until the partition stops being fetched).
    unsafe {
        let queue = rd::rd_kafka_queue_get_partition(client, topic.as_ptr(), partition);
        if queue.is_null() {
            return false;
        }
        rd::rd_kafka_queue_forward(queue, to);
        rd::rd_kafka_queue_destroy(queue);
    }
    true
}

impl Drop for BatchQueue {
    fn drop(&mut self) {
        // SAFETY: created in `forward` and destroyed only here; librdkafka keeps the queue
        // itself alive while partitions still forward to it.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) }
    }
}

/// One message from the queue, or a partition's error (end of partition included).
pub enum Taken<'a> {
    Message(Fields<'a>),
    Error(KafkaError),
}

/// What the reader keeps of a message, whichever way it was read.
pub struct Fields<'a> {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    raw: Option<*const rd::rd_kafka_message_t>,
    borrowed: Option<&'a BorrowedHeaders>,
}

impl<'a> Fields<'a> {
    pub fn of(msg: &'a BorrowedMessage<'_>) -> Self {
        Fields {
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp: msg.timestamp().to_millis(),
            key: msg.key(),
            payload: msg.payload(),
            raw: None,
            borrowed: msg.headers(),
        }
    }

    /// Each header's name and value, in the message's order.
    pub fn headers(&self, mut each: impl FnMut(&str, Option<&[u8]>)) {
        use rdkafka::message::Headers;
        if let Some(headers) = self.borrowed {
            for h in headers.iter() {
                each(h.key, h.value);
            }
            return;
        }
        let Some(message) = self.raw else {
            return;
        };
        let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
        // SAFETY: the message is alive for 'a; librdkafka owns the headers it points to.
        unsafe {
            if rd::rd_kafka_message_headers(message, &mut headers)
                != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                return;
            }
            let mut idx = 0;
            loop {
                let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0usize);
                if rd::rd_kafka_header_get_all(headers, idx, &mut name, &mut value, &mut size)
                    != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                {
                    return;
                }
                let name = CStr::from_ptr(name).to_string_lossy();
                let value = bytes(value, size);
                each(&name, value);
                idx += 1;
            }
        }
    }
}

impl<'a> Taken<'a> {
    /// # Safety
    /// `message` must be a valid message that outlives 'a.
    unsafe fn from_raw(message: *const rd::rd_kafka_message_t) -> Taken<'a> {
        // SAFETY: as the caller promises.
        unsafe {
            let m = &*message;
            if m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                let error = match m.err {
                    rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                        KafkaError::PartitionEOF(m.partition)
                    }
                    code => KafkaError::MessageConsumption(RDKafkaErrorCode::from(code)),
                };
                return Taken::Error(error);
            }
            let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
            let ts = rd::rd_kafka_message_timestamp(message, &mut kind);
            let timestamp = (kind
                != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
                && ts != -1)
                .then_some(ts);
            Taken::Message(Fields {
                partition: m.partition,
                offset: m.offset,
                timestamp,
                key: bytes(m.key, m.key_len),
                payload: bytes(m.payload, m.len),
                raw: Some(message),
                borrowed: None,
            })
        }
    }
}

/// # Safety
/// `ptr` is null or points to `len` bytes that outlive 'a.
unsafe fn bytes<'a>(ptr: *const c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: as the caller promises.
    (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}
