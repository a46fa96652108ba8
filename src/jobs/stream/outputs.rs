//! Where a stream job's results go: the output topics (encoded, keyed and routed), the dead
//! letters and the join changelog, all through one producer; and the commit of the consumed
//! offsets with them: inside one transaction (exactly once), or after every record is
//! acknowledged (at least once).

use super::StreamError;
use crate::config::stream::{Delivery, OutputConfig};
use crate::config::{Connections, Format, TopicConfig};
use crate::expr::{Bindings, Expr};
use crate::kafka::Deliveries;
use crate::produce::Encoder;
use crate::registry::Registry;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use serde_json::Value;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

struct Output {
    topic: String,
    encoder: Encoder,
    key: Option<Expr>,
    when: Option<Expr>,
}

pub struct Outputs {
    producer: ThreadedProducer<Deliveries>,
    delivery: Delivery,
    outputs: Vec<Output>,
    /// A transaction is open (exactly once) with something in it.
    in_transaction: bool,
    /// Records sent since the last commit (outputs, dead letters, changelog entries).
    pub since_commit: u64,
}

impl Outputs {
    pub fn new(
        connections: &Connections,
        configs: &[OutputConfig],
        registry: Option<&Registry>,
        delivery: Delivery,
        transactional_id: &str,
    ) -> Result<Outputs, StreamError> {
        let mut outputs = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let setup = |reason: String| {
                StreamError::Setup(format!("stream.outputs[{i}] ({}): {reason}", c.topic))
            };
            let topic: TopicConfig = serde_json::from_value(serde_json::json!({
                "topic": c.topic,
                "format": match c.format { Format::Avro => "avro", Format::Protobuf => "protobuf", _ => "json" },
                "schema_file": c.schema_file,
                "message": c.message,
            }))
            .map_err(|e| setup(e.to_string()))?;
            let encoder = Encoder::new(&topic, registry).map_err(|e| setup(e.to_string()))?;
            let compile = |s: &Option<String>| {
                s.as_deref()
                    .map(Expr::compile)
                    .transpose()
                    .map_err(|e| setup(e.to_string()))
            };
            outputs.push(Output {
                topic: c.topic.clone(),
                encoder,
                key: compile(&c.key)?,
                when: compile(&c.when)?,
            });
        }
        let mut config = crate::kafka::acknowledged_producer_config(connections);
        if delivery == Delivery::ExactlyOnce {
            config.set("transactional.id", transactional_id);
        }
        let producer: ThreadedProducer<Deliveries> = config
            .create_with_context(Deliveries::default())
            .map_err(|source| StreamError::Kafka {
                what: "cannot create the producer".into(),
                source,
            })?;
        if delivery == Delivery::ExactlyOnce {
            producer
                .init_transactions(TIMEOUT)
                .map_err(|source| StreamError::Transactions { source })?;
        }
        Ok(Outputs {
            producer,
            delivery,
            outputs,
            in_transaction: false,
            since_commit: 0,
        })
    }

    fn begin(&mut self) -> Result<(), StreamError> {
        if self.delivery == Delivery::ExactlyOnce && !self.in_transaction {
            self.producer
                .begin_transaction()
                .map_err(|source| StreamError::Transactions { source })?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Sends one result value to every output whose `when` holds; `Err` is a reason to set
    /// the record aside (its key or route could not be computed, or it does not fit a schema).
    pub fn send_value(
        &mut self,
        value: &Value,
        source_topic: &str,
    ) -> Result<Result<(), String>, StreamError> {
        // Bound only when an output has an expression to evaluate.
        let needed = self
            .outputs
            .iter()
            .any(|o| o.key.is_some() || o.when.is_some());
        let bindings = needed.then(|| Bindings::value_only(value, source_topic));
        let mut ready = Vec::with_capacity(self.outputs.len());
        for output in &self.outputs {
            if let (Some(when), Some(bindings)) = (&output.when, &bindings) {
                match when.test(bindings) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => return Ok(Err(format!("output {}: when {e}", output.topic))),
                }
            }
            let key = match (&output.key, &bindings) {
                (Some(expr), Some(bindings)) => match expr.eval(bindings) {
                    Ok(Value::String(s)) => Some(s),
                    Ok(Value::Null) => None,
                    Ok(other) => Some(other.to_string()),
                    Err(e) => return Ok(Err(format!("output {}: key {e}", output.topic))),
                },
                _ => None,
            };
            let payload = match output.encoder.encode(value) {
                Ok(p) => p,
                Err(e) => return Ok(Err(format!("output {}: {e}", output.topic))),
            };
            ready.push((output.topic.clone(), key, payload));
        }
        for (topic, key, payload) in ready {
            self.send(
                &topic,
                None,
                key.as_deref().map(str::as_bytes),
                Some(&payload),
                None,
            )?;
        }
        Ok(Ok(()))
    }

    /// Sends one record as it is (dead letters, changelog entries).
    pub fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), StreamError> {
        self.begin()?;
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = payload {
            record = record.payload(v);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        crate::kafka::send(&self.producer, record).map_err(|source| StreamError::Kafka {
            what: format!("cannot send to topic {topic}"),
            source,
        })?;
        self.since_commit += 1;
        Ok(())
    }

    /// A dead letter: the payload with headers saying where it came from and why.
    pub fn dead_letter(
        &mut self,
        topic: &str,
        source: (&str, i32, i64),
        payload: Option<&[u8]>,
        reason: &str,
    ) -> Result<(), StreamError> {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "runner.error",
                value: Some(reason),
            })
            .insert(Header {
                key: "runner.topic",
                value: Some(source.0),
            })
            .insert(Header {
                key: "runner.partition",
                value: Some(&source.1.to_string()),
            })
            .insert(Header {
                key: "runner.offset",
                value: Some(&source.2.to_string()),
            });
        self.send(topic, None, None, payload, Some(headers))
    }

    /// Commits `positions` (the next offset of each input partition) with everything sent
    /// since the last commit.
    pub fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        positions: &TopicPartitionList,
    ) -> Result<(), StreamError> {
        match self.delivery {
            Delivery::ExactlyOnce => {
                self.begin()?;
                let metadata = consumer.group_metadata().ok_or_else(|| {
                    StreamError::Setup("the consumer has no group metadata to commit with".into())
                })?;
                if positions.count() > 0 {
                    self.producer
                        .send_offsets_to_transaction(positions, &metadata, TIMEOUT)
                        .map_err(|source| StreamError::Transactions { source })?;
                }
                self.producer
                    .commit_transaction(TIMEOUT)
                    .map_err(|source| StreamError::Transactions { source })?;
                self.in_transaction = false;
            }
            Delivery::AtLeastOnce => {
                self.producer
                    .flush(TIMEOUT)
                    .map_err(|source| StreamError::Kafka {
                        what: "outputs not acknowledged".into(),
                        source,
                    })?;
                let failures = self.producer.context().take_failures();
                if let Some(first) = failures.first() {
                    return Err(StreamError::Setup(format!(
                        "{} output records were not acknowledged ({first}); offsets are not committed, so they are sent again after a restart",
                        failures.len()
                    )));
                }
                if positions.count() > 0 {
                    consumer
                        .commit(positions, rdkafka::consumer::CommitMode::Sync)
                        .map_err(|source| StreamError::Kafka {
                            what: "cannot commit the consumed offsets".into(),
                            source,
                        })?;
                }
            }
        }
        Ok(())
    }

    /// Drops what was sent since the last commit (exactly once): partitions were lost.
    pub fn abort(&mut self) {
        if self.in_transaction {
            if let Err(e) = self.producer.abort_transaction(TIMEOUT) {
                tracing::warn!(error = %e, "cannot abort the open transaction");
            }
            self.in_transaction = false;
        }
    }
}
