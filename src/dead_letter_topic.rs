//! Dead letters produced to a Kafka topic (`dead_letter_topic`) instead of the sink: the
//! record's key and value as they came, with headers naming the source topic, partition,
//! offset and the reason. Every dead letter is acknowledged (acks=all, idempotent producer)
//! before progress moves past it; a crash between the two can send one again (at least once).

use crate::config::Connections;
use crate::decode::Decoded;
use crate::kafka::Deliveries;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(
        "dead-letter topic {topic}: cannot create a producer: {source}; check connections.json"
    )]
    Producer {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "dead-letter topic {topic}: {failed} dead letters were not acknowledged ({reason}); progress stays before them, rerun when the topic accepts writes"
    )]
    Delivery {
        topic: String,
        failed: usize,
        reason: String,
    },
}

pub struct DeadLetterTopic {
    topic: String,
    producer: ThreadedProducer<Deliveries>,
}

impl DeadLetterTopic {
    pub fn new(connections: &Connections, topic: &str) -> Result<Self, DeadLetterError> {
        let producer = crate::kafka::acknowledged_producer_config(connections)
            .create_with_context(Deliveries::default())
            .map_err(|source| DeadLetterError::Producer {
                topic: topic.to_string(),
                source,
            })?;
        Ok(DeadLetterTopic {
            topic: topic.to_string(),
            producer,
        })
    }

    /// Produces the dead letters of a batch and waits until each is acknowledged; afterwards
    /// `decoded` holds none, so the writer does not put them in the sink too.
    pub fn send(
        &self,
        source: &str,
        partition: i32,
        decoded: &mut Decoded,
    ) -> Result<u64, DeadLetterError> {
        let Some(dead) = decoded.dead.take() else {
            return Ok(0);
        };
        decoded.dead_offsets.clear();
        let failed = |failed: usize, reason: String| DeadLetterError::Delivery {
            topic: self.topic.clone(),
            failed,
            reason,
        };
        let offsets = dead
            .column_by_name("kafka_offset")
            .map(|c| c.as_primitive::<Int64Type>().clone());
        let keys = dead
            .column_by_name("kafka_key")
            .and_then(|c| c.as_binary_opt::<i32>().cloned());
        let values = dead
            .column_by_name("value")
            .and_then(|c| c.as_binary_opt::<i32>().cloned());
        let errors = dead
            .column_by_name("error")
            .and_then(|c| c.as_string_opt::<i32>().cloned());
        let (Some(offsets), Some(keys), Some(values), Some(errors)) =
            (offsets, keys, values, errors)
        else {
            return Err(failed(
                dead.num_rows(),
                "dead-letter rows lack their columns".into(),
            ));
        };
        let partition_text = partition.to_string();
        for row in 0..dead.num_rows() {
            let offset_text = offsets.value(row).to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "runner.topic",
                    value: Some(source),
                })
                .insert(Header {
                    key: "runner.partition",
                    value: Some(&partition_text),
                })
                .insert(Header {
                    key: "runner.offset",
                    value: Some(&offset_text),
                })
                .insert(Header {
                    key: "runner.error",
                    value: Some(errors.value(row)),
                });
            let mut record: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to(&self.topic).headers(headers);
            if keys.is_valid(row) {
                record = record.key(keys.value(row));
            }
            if values.is_valid(row) {
                record = record.payload(values.value(row));
            }
            crate::kafka::send(&self.producer, record)
                .map_err(|e| failed(dead.num_rows() - row, e.to_string()))?;
        }
        self.producer.flush(Duration::from_secs(60)).map_err(|e| {
            failed(
                self.producer.in_flight_count().max(1) as usize,
                e.to_string(),
            )
        })?;
        let failures = self.producer.context().take_failures();
        if let Some(first) = failures.first() {
            return Err(failed(failures.len(), first.clone()));
        }
        Ok(dead.num_rows() as u64)
    }
}
