//! The embedded Kafka broker: librdkafka's in-process mock cluster, for the demo and tests.

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use std::time::Duration;

pub struct EmbeddedKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

/// One record to produce: an optional partition, key and value.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the epoch; the producer's clock when absent.
    pub timestamp: Option<i64>,
}

impl EmbeddedKafka {
    pub fn start() -> Result<Self, KafkaError> {
        Ok(EmbeddedKafka {
            cluster: MockCluster::new(1)?,
        })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), KafkaError> {
        self.cluster.create_topic(topic, partitions, 1)
    }

    /// The mock cluster itself, for fault injection (brokers down, request errors, latency).
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }

    /// Produces records and waits until every one is acknowledged.
    pub fn produce(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<usize, KafkaError> {
        produce(&self.bootstrap_servers(), topic, records)
    }
}

/// Produces records to any cluster and waits for their acknowledgement.
pub fn produce(
    bootstrap_servers: &str,
    topic: &str,
    records: impl IntoIterator<Item = Record>,
) -> Result<usize, KafkaError> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("linger.ms", "5")
        .set("acks", "all")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut count = 0;
    for record in records {
        let mut base: BaseRecord<'_, Vec<u8>, Vec<u8>> = BaseRecord::to(topic);
        if let Some(p) = record.partition {
            base = base.partition(p);
        }
        if let Some(key) = record.key.as_ref() {
            base = base.key(key);
        }
        if let Some(value) = record.value.as_ref() {
            base = base.payload(value);
        }
        if let Some(ts) = record.timestamp {
            base = base.timestamp(ts);
        }
        let mut pending = base;
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    producer.poll(Duration::from_millis(50));
                    pending = back;
                }
                Err((e, _)) => return Err(e),
            }
        }
        count += 1;
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(count)
}
