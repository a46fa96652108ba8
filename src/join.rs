//! Joins by id for stream jobs: records of N topics that share an id are merged once every
//! topic has delivered one. Groups wait per input partition (inputs are co-partitioned, so a
//! group's members all arrive at the member that owns partition p); a group still incomplete
//! at its timeout is given up, as is the oldest one when `max_pending` groups wait.
//!
//! Every change of a pending group is an `Update` for the changelog topic (the group, or
//! `None` once it is emitted or given up), so the groups survive a restart.

use crate::config::stream::{JoinClock, JoinConfig};
use crate::expr::Expr;
use crate::records::Record;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A pending group: its members by topic, and when it started on the join's clock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Group {
    pub started_ms: i64,
    pub members: BTreeMap<String, Value>,
}

/// What the join tells the job to do.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// Every topic delivered: the merged record goes on.
    Complete {
        partition: i32,
        id: String,
        merged: Value,
    },
    /// Given up: its members go to the dead letters (or the log) with the reason.
    Incomplete {
        partition: i32,
        id: String,
        group: Group,
        reason: String,
    },
    /// The changelog entry of (partition, id): the group, or `None` to remove it.
    Update {
        partition: i32,
        id: String,
        group: Option<Group>,
    },
}

pub struct Join {
    topics: Vec<String>,
    by: Expr,
    timeout_ms: i64,
    grace_ms: i64,
    clock: JoinClock,
    max_pending: usize,
    groups: HashMap<(i32, String), Group>,
    /// The pending groups by start, oldest first: expiry and `max_pending` look at the oldest
    /// only, not at every group on every record.
    by_start: BTreeSet<(i64, i32, String)>,
    /// The largest record timestamp seen per partition (the record clock's "now").
    stream_time: HashMap<i32, i64>,
}

impl Join {
    pub fn new(config: &JoinConfig, topics: &[String]) -> Result<Join, crate::expr::ExprError> {
        Ok(Join {
            topics: topics.to_vec(),
            by: Expr::compile(&config.by)?,
            timeout_ms: (config.timeout_seconds * 1000) as i64,
            grace_ms: (config.grace_seconds * 1000) as i64,
            clock: config.clock,
            max_pending: config.max_pending,
            groups: HashMap::new(),
            by_start: BTreeSet::new(),
            stream_time: HashMap::new(),
        })
    }

    pub fn pending(&self) -> usize {
        self.groups.len()
    }

    /// The id of a record, as text; an error when the expression fails or gives null.
    pub fn id_of(&self, record: &Record) -> Result<String, String> {
        match self
            .by
            .eval(&record.bindings())
            .map_err(|e| e.to_string())?
        {
            Value::Null => Err(format!("join id `{}` is null", self.by.source())),
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }

    /// Adds one record with its id; `now_ms` is the wall clock.
    pub fn add(&mut self, record: &Record, id: String, now_ms: i64) -> Vec<Event> {
        let partition = record.partition;
        let time = match self.clock {
            JoinClock::Processing => now_ms,
            JoinClock::Record => {
                let t = record.timestamp.unwrap_or(now_ms);
                let st = self.stream_time.entry(partition).or_insert(t);
                *st = (*st).max(t);
                t
            }
        };
        let mut events = Vec::new();
        let key = (partition, id);
        let fresh = !self.groups.contains_key(&key);
        if fresh && self.groups.len() >= self.max_pending {
            events.extend(self.give_up_oldest());
        }
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            started_ms: time,
            members: BTreeMap::new(),
        });
        if fresh || time < group.started_ms {
            self.by_start
                .remove(&(group.started_ms, key.0, key.1.clone()));
            group.started_ms = group.started_ms.min(time);
            self.by_start
                .insert((group.started_ms, key.0, key.1.clone()));
        }
        // A second record of a topic for a pending id replaces the first (the latest wins).
        group
            .members
            .insert(record.topic.clone(), record.value.clone());
        let (partition, id) = key;
        if self.topics.iter().all(|t| group.members.contains_key(t)) {
            let group = self.remove(partition, &id).unwrap_or_else(|| Group {
                started_ms: time,
                members: BTreeMap::new(),
            });
            events.push(Event::Update {
                partition,
                id: id.clone(),
                group: None,
            });
            events.push(Event::Complete {
                partition,
                merged: merged(&id, &self.topics, group.members),
                id,
            });
        } else {
            events.push(Event::Update {
                partition,
                id,
                group: Some(group.clone()),
            });
        }
        if self.clock == JoinClock::Record {
            events.extend(self.expire(now_ms));
        }
        events
    }

    /// Gives up the groups whose time is over.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Event> {
        let limit = self.timeout_ms + self.grace_ms;
        let now_of = |p: &i32| match self.clock {
            JoinClock::Processing => now_ms,
            JoinClock::Record => self.stream_time.get(p).copied().unwrap_or(i64::MIN),
        };
        // No partition's clock is past this, so no group started after it can be over.
        let latest = match self.clock {
            JoinClock::Processing => now_ms,
            JoinClock::Record => self.stream_time.values().copied().max().unwrap_or(i64::MIN),
        };
        let expired: Vec<(i32, String)> = self
            .by_start
            .iter()
            .take_while(|(started, _, _)| latest.saturating_sub(*started) > limit)
            .filter(|(started, p, _)| now_of(p).saturating_sub(*started) > limit)
            .map(|(_, p, id)| (*p, id.clone()))
            .collect();
        let reason = format!(
            "incomplete after the join timeout of {}s ({} clock)",
            self.timeout_ms / 1000,
            match self.clock {
                JoinClock::Processing => "processing",
                JoinClock::Record => "record",
            }
        );
        expired
            .into_iter()
            .flat_map(|key| self.give_up(key, reason.clone()))
            .collect()
    }

    fn give_up_oldest(&mut self) -> Vec<Event> {
        let Some(oldest) = self.by_start.first().map(|(_, p, id)| (*p, id.clone())) else {
            return Vec::new();
        };
        tracing::warn!(max_pending = self.max_pending, id = %oldest.1, "join: max_pending groups are waiting; the oldest is given up as incomplete");
        let reason = format!(
            "incomplete: given up early because max_pending ({}) groups were waiting",
            self.max_pending
        );
        self.give_up(oldest, reason)
    }

    fn give_up(&mut self, (partition, id): (i32, String), reason: String) -> Vec<Event> {
        match self.remove(partition, &id) {
            Some(group) => vec![
                Event::Update {
                    partition,
                    id: id.clone(),
                    group: None,
                },
                Event::Incomplete {
                    partition,
                    id,
                    group,
                    reason,
                },
            ],
            None => Vec::new(),
        }
    }

    /// Puts back a pending group read from the changelog.
    pub fn restore(&mut self, partition: i32, id: String, group: Option<Group>) {
        match group {
            Some(g) => {
                if self.clock == JoinClock::Record {
                    let st = self.stream_time.entry(partition).or_insert(g.started_ms);
                    *st = (*st).max(g.started_ms);
                }
                self.remove(partition, &id);
                self.by_start.insert((g.started_ms, partition, id.clone()));
                self.groups.insert((partition, id), g);
            }
            None => {
                self.remove(partition, &id);
            }
        }
    }

    /// Takes a pending group out of both the map and the order.
    fn remove(&mut self, partition: i32, id: &str) -> Option<Group> {
        let group = self.groups.remove(&(partition, id.to_string()))?;
        self.by_start
            .remove(&(group.started_ms, partition, id.to_string()));
        Some(group)
    }

    /// Forgets the groups of partitions this member no longer owns.
    pub fn drop_partitions(&mut self, partitions: &[i32]) {
        self.groups.retain(|(p, _), _| !partitions.contains(p));
        self.by_start.retain(|(_, p, _)| !partitions.contains(p));
        self.stream_time.retain(|p, _| !partitions.contains(p));
    }
}

/// The merged record: `{"id": ..., "content": <every member's fields, later topics winning>,
/// "<topic>": <its value>, ...}`; `content` is what seed 002's `process()` reads.
fn merged(id: &str, topics: &[String], mut members: BTreeMap<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id.to_string()));
    let mut content = Map::new();
    for topic in topics {
        if let Some(value) = members.remove(topic) {
            if let Value::Object(fields) = &value {
                content.extend(fields.clone());
            }
            out.insert(topic.clone(), value);
        }
    }
    out.insert("content".into(), Value::Object(content));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(clock: JoinClock, max_pending: usize) -> JoinConfig {
        serde_json::from_value(json!({
            "by": "value.id", "timeout_seconds": 10, "clock": match clock {
                JoinClock::Processing => "processing", JoinClock::Record => "record" },
            "max_pending": max_pending
        }))
        .unwrap()
    }

    fn record(topic: &str, id: i64, ts: i64) -> Record {
        Record {
            topic: topic.into(),
            partition: 0,
            offset: 0,
            timestamp: Some(ts),
            key: None,
            headers: Vec::new(),
            type_name: None,
            value: json!({"id": id, topic: true}),
        }
    }

    fn add(j: &mut Join, r: &Record, now: i64) -> Vec<Event> {
        let id = j.id_of(r).unwrap();
        j.add(r, id, now)
    }

    fn completes(events: &[Event]) -> Vec<&Value> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Complete { merged, .. } => Some(merged),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_group_completes_once_every_topic_delivered() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let mut j = Join::new(&config(JoinClock::Processing, 10), &topics).unwrap();
        assert!(completes(&add(&mut j, &record("a", 1, 0), 0)).is_empty());
        let events = add(&mut j, &record("b", 1, 0), 5);
        assert_eq!(
            completes(&events),
            [
                &json!({"id": "1", "a": {"id": 1, "a": true}, "b": {"id": 1, "b": true}, "content": {"id": 1, "a": true, "b": true}})
            ]
        );
        assert_eq!(j.pending(), 0);
        assert!(events.contains(&Event::Update {
            partition: 0,
            id: "1".into(),
            group: None
        }));
    }

    #[test]
    fn the_processing_clock_gives_up_incomplete_groups_after_the_timeout() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let mut j = Join::new(&config(JoinClock::Processing, 10), &topics).unwrap();
        add(&mut j, &record("a", 1, 0), 1_000);
        assert!(j.expire(11_000).is_empty());
        let events = j.expire(11_001);
        assert!(
            matches!(&events[1], Event::Incomplete { id, reason, .. } if id == "1" && reason.contains("processing clock"))
        );
    }

    #[test]
    fn the_record_clock_advances_with_timestamps_not_the_wall() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let mut j = Join::new(&config(JoinClock::Record, 10), &topics).unwrap();
        add(&mut j, &record("a", 1, 1_000), 999_999_999);
        assert!(
            j.expire(i64::MAX).is_empty(),
            "the wall clock does not matter"
        );
        let events = add(&mut j, &record("a", 2, 11_001), 0);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Incomplete { id, .. } if id == "1"))
        );
        assert_eq!(j.pending(), 1);
    }

    #[test]
    fn past_max_pending_the_oldest_group_is_given_up() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let mut j = Join::new(&config(JoinClock::Processing, 2), &topics).unwrap();
        add(&mut j, &record("a", 1, 0), 1);
        add(&mut j, &record("a", 2, 0), 2);
        let events = add(&mut j, &record("a", 3, 0), 3);
        assert!(events.iter().any(|e| matches!(e, Event::Incomplete { id, reason, .. } if id == "1" && reason.contains("max_pending"))));
        assert_eq!(j.pending(), 2);
    }

    #[test]
    fn restored_groups_complete_after_a_restart() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let mut before = Join::new(&config(JoinClock::Processing, 10), &topics).unwrap();
        let events = add(&mut before, &record("a", 7, 0), 1);
        let Some(Event::Update {
            partition,
            id,
            group,
        }) = events.into_iter().next()
        else {
            panic!()
        };
        let mut after = Join::new(&config(JoinClock::Processing, 10), &topics).unwrap();
        after.restore(partition, id, group);
        assert_eq!(completes(&add(&mut after, &record("b", 7, 0), 2)).len(), 1);
    }
}
