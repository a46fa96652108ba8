//! Reading with no end, for a live view.

use super::{Fields, HeaderCapture, Pending, RawBatch, ReadError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
