//! `runner topics`: list, describe (partitions, leaders, replicas, watermarks, configs and each
//! consumer group's lag), create and delete topics with the connections.json credentials.

use crate::config::Connections;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use std::time::Duration;
use tokio::runtime::Handle;

const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "Kafka at {servers}: {source}; check bootstrap_servers and the credentials in connections.json"
    )]
    Kafka { servers: String, source: KafkaError },
    #[error("topic {topic} does not exist; `runner topics list` shows the topics")]
    NoSuchTopic { topic: String },
    #[error("topic {topic}: {operation} failed: {reason}")]
    Operation {
        topic: String,
        operation: &'static str,
        reason: String,
    },
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TopicSummary {
    pub topic: String,
    pub partitions: usize,
}

#[derive(Debug, Serialize)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub low: i64,
    pub high: i64,
}

#[derive(Debug, Serialize)]
pub struct GroupLag {
    pub group: String,
    /// Per partition: committed offset (None when the group has none there) and lag.
    pub partitions: Vec<(i32, Option<i64>, i64)>,
    pub total_lag: i64,
}

#[derive(Debug, Serialize)]
pub struct TopicDescription {
    pub topic: String,
    pub partitions: Vec<PartitionInfo>,
    pub configs: Vec<(String, String)>,
    pub groups: Vec<GroupLag>,
}

pub struct Admin {
    servers: String,
    connections: Connections,
    client: AdminClient<DefaultClientContext>,
    consumer: BaseConsumer,
    rt: Handle,
}

impl Admin {
    pub fn new(connections: &Connections, rt: Handle) -> Result<Admin, AdminError> {
        let servers = connections.bootstrap_servers.clone();
        let error = |source| AdminError::Kafka {
            servers: servers.clone(),
            source,
        };
        let config = crate::kafka::client_config(connections);
        Ok(Admin {
            client: config.create().map_err(error)?,
            consumer: config.create().map_err(error)?,
            connections: connections.clone(),
            servers,
            rt,
        })
    }

    fn kafka(&self, source: KafkaError) -> AdminError {
        AdminError::Kafka {
            servers: self.servers.clone(),
            source,
        }
    }

    /// Every topic but Kafka's internal ones, by name.
    pub fn list(&self) -> Result<Vec<TopicSummary>, AdminError> {
        let metadata = self
            .consumer
            .fetch_metadata(None, TIMEOUT)
            .map_err(|e| self.kafka(e))?;
        let mut topics: Vec<TopicSummary> = metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__") && t.error().is_none())
            .map(|t| TopicSummary {
                topic: t.name().to_string(),
                partitions: t.partitions().len(),
            })
            .collect();
        topics.sort_by(|a, b| a.topic.cmp(&b.topic));
        Ok(topics)
    }

    /// `known_groups` (the groups topics.json uses) are reported even when the cluster cannot
    /// list its groups.
    pub fn describe(
        &self,
        topic: &str,
        known_groups: &[String],
    ) -> Result<TopicDescription, AdminError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(|e| self.kafka(e))?;
        let Some(found) = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        else {
            return Err(AdminError::NoSuchTopic {
                topic: topic.to_string(),
            });
        };
        let mut partitions = Vec::new();
        for p in found.partitions() {
            let (low, high) = self
                .consumer
                .fetch_watermarks(topic, p.id(), TIMEOUT)
                .map_err(|e| self.kafka(e))?;
            partitions.push(PartitionInfo {
                partition: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                low,
                high,
            });
        }
        partitions.sort_by_key(|p| p.partition);
        Ok(TopicDescription {
            topic: topic.to_string(),
            configs: self.configs(topic),
            groups: self.lags(topic, &partitions, known_groups)?,
            partitions,
        })
    }

    /// The topic's configs; empty when the cluster cannot describe them.
    fn configs(&self, topic: &str) -> Vec<(String, String)> {
        let resource = [ResourceSpecifier::Topic(topic)];
        let described = self
            .rt
            .block_on(self.client.describe_configs(&resource, &options()));
        let mut configs: Vec<(String, String)> = described
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|r| r.entries)
            .filter_map(|e| e.value.map(|v| (e.name, v)))
            .collect();
        configs.sort();
        configs
    }

    /// Committed offsets and lag of every group that has committed on the topic.
    fn lags(
        &self,
        topic: &str,
        partitions: &[PartitionInfo],
        known_groups: &[String],
    ) -> Result<Vec<GroupLag>, AdminError> {
        let mut names: Vec<String> = known_groups.to_vec();
        match self.consumer.fetch_group_list(None, TIMEOUT) {
            Ok(list) => names.extend(list.groups().iter().map(|g| g.name().to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "the cluster cannot list its groups; showing the groups of topics.json")
            }
        }
        names.sort();
        names.dedup();
        let mut lags = Vec::new();
        for group in names {
            let consumer: BaseConsumer = crate::kafka::client_config(&self.connections)
                .set("group.id", &group)
                .create()
                .map_err(|e| self.kafka(e))?;
            let mut tpl = TopicPartitionList::new();
            for p in partitions {
                tpl.add_partition(topic, p.partition);
            }
            let committed = consumer
                .committed_offsets(tpl, TIMEOUT)
                .map_err(|e| self.kafka(e))?;
            let mut rows = Vec::new();
            for p in partitions {
                let offset =
                    committed
                        .find_partition(topic, p.partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                rows.push((p.partition, offset, p.high - offset.unwrap_or(p.low)));
            }
            if rows.iter().any(|(_, offset, _)| offset.is_some()) {
                lags.push(GroupLag {
                    group,
                    total_lag: rows.iter().map(|(_, _, lag)| lag).sum(),
                    partitions: rows,
                });
            }
        }
        Ok(lags)
    }

    pub fn create(
        &self,
        topic: &str,
        partitions: i32,
        replication: i32,
        configs: &[(String, String)],
    ) -> Result<(), AdminError> {
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
        for (k, v) in configs {
            new = new.set(k, v);
        }
        let results = self
            .rt
            .block_on(self.client.create_topics([&new], &options()))
            .map_err(|e| self.kafka(e))?;
        check(results, topic, "create")
    }

    pub fn delete(&self, topic: &str) -> Result<(), AdminError> {
        let results = self
            .rt
            .block_on(self.client.delete_topics(&[topic], &options()))
            .map_err(|e| self.kafka(e))?;
        check(results, topic, "delete")
    }
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(TIMEOUT))
        .request_timeout(Some(TIMEOUT))
}

fn check(
    results: Vec<Result<String, (String, rdkafka::types::RDKafkaErrorCode)>>,
    topic: &str,
    operation: &'static str,
) -> Result<(), AdminError> {
    for result in results {
        if let Err((_, code)) = result {
            return Err(AdminError::Operation {
                topic: topic.to_string(),
                operation,
                reason: code.to_string(),
            });
        }
    }
    Ok(())
}
