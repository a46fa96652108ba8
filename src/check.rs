//! `runner validate --connect`: checks over the network that Kafka and the sink answer with
//! the configured settings and credentials, and says precisely what is wrong when not.

use crate::config::Config;
use crate::kafka;
use crate::registry::Registry;
use crate::sink::{Sink, SinkError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(
        "Kafka at {servers}: {source}. Check bootstrap_servers, ssl_config, sasl and kafka_properties in connections.json, and that the brokers are reachable from here"
    )]
    Kafka {
        servers: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "Kafka at {servers}: topic {topic} (topics.json) does not exist or is not readable with these credentials; create it or fix its name"
    )]
    MissingTopic { servers: String, topic: String },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

/// Reaches the brokers and looks up every enabled topic; returns a one-line summary.
pub fn kafka(config: &Config, timeout: Duration) -> Result<String, CheckError> {
    let servers = config.connections.bootstrap_servers.clone();
    let error = |source| CheckError::Kafka {
        servers: servers.clone(),
        source,
    };
    let consumer: BaseConsumer = kafka::client_config(&config.connections)
        .create()
        .map_err(error)?;
    let metadata = consumer.fetch_metadata(None, timeout).map_err(error)?;
    let mut topics = Vec::new();
    for topic in config.topics.iter().filter(|t| t.enabled) {
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic.topic && t.error().is_none());
        let Some(found) = found else {
            return Err(CheckError::MissingTopic {
                servers,
                topic: topic.topic.clone(),
            });
        };
        topics.push(format!(
            "{} ({} partitions)",
            found.name(),
            found.partitions().len()
        ));
    }
    Ok(format!(
        "{} broker(s) at {servers}; topics: {}",
        metadata.brokers().len(),
        if topics.is_empty() {
            "none enabled".to_string()
        } else {
            topics.join(", ")
        }
    ))
}

/// Writes, reads back, lists and deletes a probe object in the sink.
pub fn sink(sink: &Sink, id: &str) -> Result<String, CheckError> {
    sink.probe(id)?;
    Ok(format!(
        "{} is reachable and writable (credential: {})",
        sink.url(),
        sink.config().credential()
    ))
}

/// Lists the Schema Registry's subjects, when one is configured.
pub fn registry(registry: Option<&Registry>) -> Result<String, CheckError> {
    let Some(registry) = registry else {
        return Ok("none configured (only needed for the avro and protobuf formats)".into());
    };
    let subjects = registry.subjects()?;
    Ok(format!(
        "{} answers with {} subjects",
        registry.url(),
        subjects.len()
    ))
}
