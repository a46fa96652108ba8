//! `runner produce`: JSON lines in, records out, encoded as the topic's format in topics.json
//! (Avro and Protobuf framed for the Schema Registry, or bare with `schema_file`). Every record
//! must be acknowledged, or the command fails saying how many were not.

use crate::config::{Connections, Format, TopicConfig};
use crate::kafka::Deliveries;
use crate::registry::{Registry, SchemaType};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("topic {topic}: {reason}")]
    Setup { topic: String, reason: String },
    #[error("topic {topic}, input line {line}: {reason}")]
    Encode {
        topic: String,
        line: usize,
        reason: String,
    },
    #[error("topic {topic}: cannot create a producer: {source}; check connections.json")]
    Producer {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "topic {topic}: {failed} of {sent} records were not acknowledged ({reason}); check that the topic exists and accepts writes"
    )]
    Delivery {
        topic: String,
        sent: u64,
        failed: usize,
        reason: String,
    },
}

/// Encodes JSON values as one topic's format.
pub enum Encoder {
    Bytes,
    Json,
    Avro {
        schema: apache_avro::Schema,
        id: Option<u32>,
    },
    Protobuf {
        message: MessageDescriptor,
        id: Option<u32>,
    },
}

impl Encoder {
    /// For `topic`; framed formats take the latest schema of subject `<topic>-value`.
    pub fn new(topic: &TopicConfig, registry: Option<&Registry>) -> Result<Encoder, ProduceError> {
        let setup = |reason: String| ProduceError::Setup {
            topic: topic.topic.clone(),
            reason,
        };
        let subject = format!("{}-value", topic.topic);
        let latest = |kind: SchemaType| {
            let registry = registry.ok_or_else(|| {
                setup("its format needs schema_registry_url (or a schema_file)".into())
            })?;
            let found = registry
                .latest(&subject)
                .map_err(|e| setup(e.to_string()))?;
            if found.schema_type != kind {
                return Err(setup(format!(
                    "subject {subject} holds a {:?} schema",
                    found.schema_type
                )));
            }
            Ok((found.id, found.schema))
        };
        Ok(match (topic.format, &topic.schema_file) {
            (Format::Raw | Format::String, _) => Encoder::Bytes,
            (Format::Json, _) => Encoder::Json,
            (Format::Avro, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| setup(format!("cannot read {}: {e}", file.display())))?;
                let schema =
                    apache_avro::Schema::parse_str(&text).map_err(|e| setup(e.to_string()))?;
                Encoder::Avro { schema, id: None }
            }
            (Format::Avro, None) => {
                let (id, text) = latest(SchemaType::Avro)?;
                let schema =
                    apache_avro::Schema::parse_str(&text).map_err(|e| setup(e.to_string()))?;
                Encoder::Avro {
                    schema,
                    id: Some(id),
                }
            }
            (Format::Protobuf, Some(file)) => {
                let name = topic.message.clone().unwrap_or_default();
                let message = crate::decode::load_message(file, &name).map_err(setup)?;
                Encoder::Protobuf { message, id: None }
            }
            (Format::Protobuf, None) => {
                let (id, text) = latest(SchemaType::Protobuf)?;
                let message = crate::decode::first_message(&format!("{subject}.proto"), &text)
                    .map_err(setup)?;
                Encoder::Protobuf {
                    message,
                    id: Some(id),
                }
            }
        })
    }

    pub fn encode(&self, value: &Value) -> Result<Vec<u8>, String> {
        match self {
            Encoder::Bytes => Ok(match value {
                Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            }),
            Encoder::Json => Ok(value.to_string().into_bytes()),
            Encoder::Avro { schema, id } => {
                let avro = apache_avro::types::Value::try_from(value.clone())
                    .map_err(|e| e.to_string())?
                    .resolve(schema)
                    .map_err(|e| format!("does not fit the Avro schema: {e}"))?;
                let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
                    .build()
                    .map_err(|e| e.to_string())?;
                let body = writer.write_value_to_vec(avro).map_err(|e| e.to_string())?;
                Ok(frame(*id, &[], body))
            }
            Encoder::Protobuf { message, id } => {
                let decoded = DynamicMessage::deserialize(message.clone(), value.clone())
                    .map_err(|e| format!("does not fit {}: {e}", message.full_name()))?;
                // Message index 0 (the file's first message), written as the single byte 0.
                Ok(frame(*id, &[0], decoded.encode_to_vec()))
            }
        }
    }
}

/// Confluent framing (magic byte, schema id, then `extra`) when there is an id.
fn frame(id: Option<u32>, extra: &[u8], body: Vec<u8>) -> Vec<u8> {
    match id {
        None => body,
        Some(id) => {
            let mut out = Vec::with_capacity(body.len() + 5 + extra.len());
            out.push(0);
            out.extend(id.to_be_bytes());
            out.extend(extra);
            out.extend(body);
            out
        }
    }
}

/// Encodes and sends every JSON value, keyed by `key_field` when given, and waits until each
/// one is acknowledged. Returns how many were sent.
pub fn produce(
    connections: &Connections,
    topic: &str,
    encoder: &Encoder,
    key_field: Option<&str>,
    values: impl Iterator<Item = Result<Value, String>>,
) -> Result<u64, ProduceError> {
    let records = values.map(|value| {
        let value = value?;
        let payload = encoder.encode(&value)?;
        let key = key_field.and_then(|k| value.get(k)).map(|k| match k {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        Ok((key, payload))
    });
    send_all(connections, topic, records)
}

/// Sends keyed payloads and waits until each one is acknowledged. Returns how many were sent;
/// an `Err` item fails the call naming its input line.
pub fn send_all(
    connections: &Connections,
    topic: &str,
    records: impl Iterator<Item = Result<(Option<String>, Vec<u8>), String>>,
) -> Result<u64, ProduceError> {
    let producer: ThreadedProducer<Deliveries> =
        crate::kafka::acknowledged_producer_config(connections)
            .create_with_context(Deliveries::default())
            .map_err(|source| ProduceError::Producer {
                topic: topic.to_string(),
                source,
            })?;
    let mut sent = 0u64;
    for (index, item) in records.enumerate() {
        let encode_error = |reason: String| ProduceError::Encode {
            topic: topic.to_string(),
            line: index + 1,
            reason,
        };
        let (key, payload) = item.map_err(encode_error)?;
        let mut record: BaseRecord<'_, str, [u8]> = BaseRecord::to(topic).payload(&payload);
        if let Some(key) = key.as_deref() {
            record = record.key(key);
        }
        crate::kafka::send(&producer, record).map_err(|e| encode_error(e.to_string()))?;
        sent += 1;
    }
    let flushed = producer.flush(Duration::from_secs(60));
    let mut failures = producer.context().take_failures();
    if let Err(e) = flushed {
        failures.push(e.to_string());
    }
    if let Some(first) = failures.first() {
        return Err(ProduceError::Delivery {
            topic: topic.to_string(),
            sent,
            failed: failures.len(),
            reason: first.clone(),
        });
    }
    Ok(sent)
}

/// The seed's transaction events `range` as JSON (Protobuf JSON mapping: the time as
/// RFC 3339), deterministic for a given index and number of accounts.
pub fn transactions(
    range: std::ops::Range<usize>,
    accounts: usize,
) -> impl Iterator<Item = Result<Value, String>> {
    let accounts = accounts.max(1);
    range.map(move |i| {
        // A small linear congruential step keeps amounts varied and repeatable.
        let mix = (i as u64)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let cents = (mix >> 33) % 100_000;
        let at =
            chrono::DateTime::from_timestamp(1_795_384_800 + i as i64 * 7, 0).unwrap_or_default();
        Ok(serde_json::json!({
            "transaction_id": format!("tx-{i:08}"),
            "account_number": format!("ACC{:04}", i % accounts + 1),
            "transaction_reference": format!("REF{:010}", mix >> 40),
            "transaction_datetime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "amount": cents as f64 / 100.0,
        }))
    })
}
