//! One member of a stream job's group: the state of the partitions it owns (buffers, pending
//! join groups) and the steps a record goes through.

use super::outputs::Outputs;
use super::{StreamError, StreamSummary};
use crate::config::stream::StreamConfig;
use crate::config::{ContinuousSettings, JobConfig, TopicConfig};
use crate::decode::Decoder;
use crate::expr::Expr;
use crate::join::{Event, Group, Join};
use crate::process::{Processor, Registry};
use crate::read::group::Buffers;
use crate::read::{HeaderCapture, RawBatch};
use crate::records::Record;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub struct Member {
    job: String,
    inputs: Vec<String>,
    /// Inputs in the json format (not header-typed): their values are taken as written.
    json_topics: Vec<String>,
    decoders: BTreeMap<String, Decoder>,
    buffers: BTreeMap<String, Buffers>,
    filter: Option<Expr>,
    select: Option<Vec<(String, Expr)>>,
    join: Option<Join>,
    join_dead_letters: Option<String>,
    changelog: Option<String>,
    processor: Option<Box<dyn Processor>>,
    dead_letter_topic: Option<String>,
    outputs: Outputs,
    /// The offsets last committed, per topic and partition.
    committed: BTreeMap<(String, i32), i64>,
    connections: crate::config::Connections,
    /// A failure inside a rebalance callback, reported by the next step.
    failure: Option<StreamError>,
    records: u64,
    /// Results sent to the output topics.
    sent: u64,
    dead_letters: u64,
}

pub fn lock(member: &Mutex<Member>) -> MutexGuard<'_, Member> {
    match member.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Member {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &super::RunContext,
        job: &JobConfig,
        stream: &StreamConfig,
        inputs: &[TopicConfig],
        settings: &ContinuousSettings,
        changelog: Option<String>,
        transactional_id: &str,
        processors: &Registry,
    ) -> Result<Member, StreamError> {
        let setup =
            |e: crate::expr::ExprError| StreamError::Setup(format!("{}: {e}", job.file.display()));
        let names: Vec<String> = inputs.iter().map(|t| t.topic.clone()).collect();
        let batch_rows = settings.batch_size.unwrap_or(500);
        let capture = |t: &TopicConfig| HeaderCapture {
            all: true,
            ..HeaderCapture::for_topic(t)
        };
        let dir = job
            .file
            .parent()
            .and_then(std::path::Path::parent)
            .unwrap_or(std::path::Path::new("."));
        Ok(Member {
            job: job.name.clone(),
            decoders: inputs
                .iter()
                .map(|t| (t.topic.clone(), Decoder::new(t, ctx.registry.clone())))
                .collect(),
            buffers: inputs
                .iter()
                .map(|t| {
                    let buffers = Buffers::new(batch_rows, Duration::from_millis(20))
                        .with_capture(capture(t));
                    (t.topic.clone(), buffers)
                })
                .collect(),
            filter: stream
                .filter
                .as_deref()
                .map(Expr::compile)
                .transpose()
                .map_err(setup)?,
            select: match &stream.select {
                Some(fields) => Some(
                    fields
                        .iter()
                        .map(|(name, source)| Ok((name.clone(), Expr::compile(source)?)))
                        .collect::<Result<_, _>>()
                        .map_err(setup)?,
                ),
                None => None,
            },
            join: stream
                .join
                .as_ref()
                .map(|j| Join::new(j, &names))
                .transpose()
                .map_err(setup)?,
            join_dead_letters: stream
                .join
                .as_ref()
                .and_then(|j| j.dead_letter_topic.clone()),
            changelog,
            processor: stream
                .process
                .as_ref()
                .map(|p| crate::process::build(p, dir, processors, &job.name))
                .transpose()?,
            dead_letter_topic: stream.dead_letter_topic.clone(),
            outputs: Outputs::new(
                &ctx.config.connections,
                &stream.outputs,
                ctx.registry.as_deref(),
                stream.delivery,
                transactional_id,
            )?,
            committed: BTreeMap::new(),
            connections: ctx.config.connections.clone(),
            failure: None,
            inputs: names,
            json_topics: inputs
                .iter()
                .filter(|t| t.format == crate::config::Format::Json && t.type_header.is_none())
                .map(|t| t.topic.clone())
                .collect(),
            records: 0,
            sent: 0,
            dead_letters: 0,
        })
    }

    pub fn push(&mut self, msg: &rdkafka::message::BorrowedMessage<'_>) {
        if let Some(b) = self.buffers.get_mut(msg.topic()) {
            b.push(msg);
        }
    }

    /// Works on the batches that are ready (all of them with `all`).
    pub fn step(&mut self, all: bool) -> Result<(), StreamError> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        let topics = self.inputs.clone();
        for topic in &topics {
            let ready = match self.buffers.get_mut(topic) {
                Some(b) => b.take_ready(all),
                None => continue,
            };
            for batch in ready {
                self.handle(topic, &batch)?;
            }
        }
        if let Some(join) = &mut self.join {
            let events = join.expire(now_ms());
            self.join_events(events)?;
        }
        Ok(())
    }

    fn handle(&mut self, topic: &str, raw: &RawBatch) -> Result<(), StreamError> {
        let records = if self.json_topics.iter().any(|t| t == topic) {
            let (records, bad) = crate::records::from_json(topic, raw);
            for (offset, reason) in bad {
                let at = raw.offsets.iter().position(|o| *o == offset).unwrap_or(0);
                self.dead(
                    (topic, raw.partition, offset),
                    Some(raw.values.value(at)),
                    &reason,
                )?;
            }
            records
        } else {
            self.decode(topic, raw)?
        };
        self.records += records.len() as u64;
        let mut passed = Vec::with_capacity(records.len());
        for record in records {
            if let Some(filter) = &self.filter {
                match filter.test(&record.bindings()) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        self.dead_record(&record, &format!("filter {e}"))?;
                        continue;
                    }
                }
            }
            let Some(join) = &mut self.join else {
                passed.push(record);
                continue;
            };
            let id = match join.id_of(&record) {
                Ok(id) => id,
                Err(reason) => {
                    self.dead_record(&record, &reason)?;
                    continue;
                }
            };
            let events = join.add(&record, id, now_ms());
            for event in events {
                if let Event::Complete { merged, id, .. } = event {
                    passed.push(Record {
                        topic: self.job.clone(),
                        key: Some(id),
                        headers: Vec::new(),
                        type_name: None,
                        value: merged,
                        ..record.clone()
                    });
                } else {
                    self.join_events(vec![event])?;
                }
            }
        }
        self.finish(passed)
    }

    /// Records of a topic in another format: decoded to columns, then to values.
    fn decode(&mut self, topic: &str, raw: &RawBatch) -> Result<Vec<Record>, StreamError> {
        let Some(decoder) = self.decoders.get_mut(topic) else {
            return Ok(Vec::new());
        };
        let decoded = decoder.decode(raw)?;
        if let Some(dead) = &decoded.dead {
            let reasons = dead
                .column_by_name(crate::decode::DEAD_LETTER_COLUMNS[1])
                .and_then(|c| {
                    c.as_any()
                        .downcast_ref::<arrow::array::StringArray>()
                        .cloned()
                });
            for (i, offset) in decoded.dead_offsets.iter().enumerate() {
                let reason = reasons
                    .as_ref()
                    .map_or("cannot be decoded", |r| r.value(i))
                    .to_string();
                let at = raw.offsets.iter().position(|o| o == offset).unwrap_or(0);
                let payload = arrow::array::Array::is_valid(&raw.values, at)
                    .then(|| raw.values.value(at).to_vec());
                self.dead((topic, raw.partition, *offset), payload.as_deref(), &reason)?;
            }
        }
        crate::records::from_decoded(topic, raw, &decoded).map_err(|reason| StreamError::Record {
            topic: topic.to_string(),
            partition: raw.partition,
            offset: raw.offsets.first().copied().unwrap_or(-1),
            reason,
        })
    }

    /// Select, process and send.
    fn finish(&mut self, records: Vec<Record>) -> Result<(), StreamError> {
        let mut shaped = Vec::with_capacity(records.len());
        for mut record in records {
            if let Some(select) = &self.select {
                let bindings = record.bindings();
                let mut value = serde_json::Map::new();
                let mut failed = None;
                for (name, expr) in select {
                    match expr.eval(&bindings) {
                        Ok(v) => {
                            value.insert(name.clone(), v);
                        }
                        Err(e) => {
                            failed = Some(format!("select.{name}: {e}"));
                            break;
                        }
                    }
                }
                if let Some(reason) = failed {
                    self.dead_record(&record, &reason)?;
                    continue;
                }
                record.value = Value::Object(value);
            }
            shaped.push(record);
        }
        let Some(processor) = &mut self.processor else {
            for record in &shaped {
                self.send(record, std::slice::from_ref(&record.value))?;
            }
            return Ok(());
        };
        let size = processor.batch_size().max(1);
        for chunk in shaped.chunks(size) {
            let outcomes = match &mut self.processor {
                Some(p) => p.process(chunk)?,
                None => Vec::new(),
            };
            if outcomes.len() != chunk.len() {
                return Err(StreamError::Setup(format!(
                    "the processor returned {} outcomes for {} records",
                    outcomes.len(),
                    chunk.len()
                )));
            }
            for (record, outcome) in chunk.iter().zip(outcomes) {
                match outcome {
                    Ok(values) => self.send(record, &values)?,
                    Err(reason) => self.dead_record(record, &reason)?,
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, record: &Record, values: &[Value]) -> Result<(), StreamError> {
        for value in values {
            match self.outputs.send_value(value, &record.topic)? {
                Ok(()) => self.sent += 1,
                Err(reason) => self.dead_record(record, &reason)?,
            }
        }
        Ok(())
    }

    fn join_events(&mut self, events: Vec<Event>) -> Result<(), StreamError> {
        for event in events {
            match event {
                Event::Update {
                    partition,
                    id,
                    group,
                } => {
                    if let Some(changelog) = self.changelog.clone() {
                        let payload = group.map(|g| serde_json::to_vec(&g).unwrap_or_default());
                        self.outputs.send(
                            &changelog,
                            Some(partition),
                            Some(id.as_bytes()),
                            payload.as_deref(),
                            None,
                        )?;
                    }
                }
                Event::Incomplete {
                    partition,
                    id,
                    group,
                    reason,
                } => {
                    let topics: Vec<&String> = group.members.keys().collect();
                    match self.join_dead_letters.clone() {
                        Some(topic) => {
                            let body = serde_json::json!({"id": id, "members": group.members, "started_ms": group.started_ms, "reason": reason});
                            self.outputs.send(
                                &topic,
                                None,
                                Some(id.as_bytes()),
                                Some(body.to_string().as_bytes()),
                                None,
                            )?;
                            self.dead_letters += 1;
                        }
                        None => {
                            tracing::warn!(%id, partition, members = ?topics, %reason, "join group given up")
                        }
                    }
                }
                Event::Complete { .. } => {}
            }
        }
        Ok(())
    }

    fn dead_record(&mut self, record: &Record, reason: &str) -> Result<(), StreamError> {
        let payload = record.value.to_string();
        self.dead(
            (&record.topic, record.partition, record.offset),
            Some(payload.as_bytes()),
            reason,
        )
    }

    fn dead(
        &mut self,
        at: (&str, i32, i64),
        payload: Option<&[u8]>,
        reason: &str,
    ) -> Result<(), StreamError> {
        let Some(topic) = self.dead_letter_topic.clone() else {
            return Err(StreamError::Record {
                topic: at.0.to_string(),
                partition: at.1,
                offset: at.2,
                reason: reason.to_string(),
            });
        };
        tracing::warn!(topic = at.0, partition = at.1, offset = at.2, %reason, "record sent to the dead-letter topic");
        self.dead_letters += 1;
        self.outputs.dead_letter(&topic, at, payload, reason)
    }

    /// Works on everything buffered, then commits the offsets read with what was sent.
    pub fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamError> {
        self.step(true)?;
        let mut positions = TopicPartitionList::new();
        let mut moved = Vec::new();
        for (topic, buffers) in &self.buffers {
            for (partition, next) in buffers.positions() {
                let key = (topic.clone(), partition);
                if self.committed.get(&key) != Some(&next) {
                    let _ = positions.add_partition_offset(topic, partition, Offset::Offset(next));
                    moved.push((key, next));
                }
            }
        }
        if moved.is_empty() && self.outputs.since_commit == 0 {
            return Ok(());
        }
        self.outputs.commit(consumer, &positions)?;
        self.committed.extend(moved);
        self.outputs.since_commit = 0;
        Ok(())
    }

    pub fn abort(&mut self) {
        self.outputs.abort();
    }

    pub fn status(&self) {
        tracing::info!(
            records = self.records,
            sent = self.sent,
            dead_letters = self.dead_letters,
            pending_groups = self.join.as_ref().map_or(0, Join::pending),
            "stream status"
        );
    }

    pub fn summary(&self) -> StreamSummary {
        StreamSummary {
            records: self.records,
            sent: self.sent,
            dead_letters: self.dead_letters,
        }
    }

    fn assigned<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &mut TopicPartitionList,
    ) {
        let committed = consumer
            .committed_offsets(tpl.clone(), Duration::from_secs(30))
            .unwrap_or_else(|_| tpl.clone());
        let mut partitions = Vec::new();
        let mut starts = Vec::new();
        for e in committed.elements() {
            starts.push(format!("{}/{}@{:?}", e.topic(), e.partition(), e.offset()));
            let start = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            if let Some(b) = self.buffers.get_mut(e.topic()) {
                b.start(e.partition(), start);
            }
            self.committed
                .insert((e.topic().to_string(), e.partition()), start);
            if let Offset::Offset(o) = e.offset() {
                let _ = tpl.set_partition_offset(e.topic(), e.partition(), Offset::Offset(o));
            }
            if !partitions.contains(&e.partition()) {
                partitions.push(e.partition());
            }
        }
        if let Err(e) = self.restore(&partitions) {
            self.failure = Some(e);
        }
        tracing::info!(
            ?partitions,
            ?starts,
            pending_groups = self.join.as_ref().map_or(0, Join::pending),
            "partitions assigned"
        );
    }

    fn revoked<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, lost: bool) {
        if lost {
            tracing::warn!(
                "partitions lost: work since the last commit is dropped and redone by their new owner"
            );
            self.abort();
        } else if let Err(e) = self.commit(consumer) {
            tracing::error!(error = %e, "cannot commit before giving the partitions up");
            self.abort();
            self.failure = Some(e);
        }
        let partitions: Vec<i32> = self.committed.keys().map(|(_, p)| *p).collect();
        for b in self.buffers.values_mut() {
            for p in &partitions {
                b.stop(*p);
            }
        }
        if let Some(join) = &mut self.join {
            join.drop_partitions(&partitions);
        }
        self.committed.clear();
    }

    /// Reads the changelog partitions of `partitions` to their end into the join.
    fn restore(&mut self, partitions: &[i32]) -> Result<(), StreamError> {
        let (Some(join), Some(changelog)) = (&mut self.join, &self.changelog) else {
            return Ok(());
        };
        let kafka = |source| StreamError::Kafka {
            what: format!("cannot read the join changelog {changelog}"),
            source,
        };
        let mut config = crate::kafka::client_config(&self.connections);
        config
            .set("group.id", format!("{changelog}.restore"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true");
        let reader: BaseConsumer = config.create().map_err(kafka)?;
        let mut tpl = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for &p in partitions {
            let (low, high) = reader
                .fetch_watermarks(changelog, p, Duration::from_secs(30))
                .map_err(kafka)?;
            if high > low {
                tpl.add_partition_offset(changelog, p, Offset::Offset(low))
                    .map_err(kafka)?;
                ends.insert(p, high);
            }
        }
        if ends.is_empty() {
            return Ok(());
        }
        reader.assign(&tpl).map_err(kafka)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut read = 0u64;
        while !ends.is_empty() {
            if std::time::Instant::now() > deadline {
                return Err(StreamError::Setup(format!(
                    "the join changelog {changelog} partitions {:?} could not be read to their end in 60s; check the broker",
                    ends.keys().collect::<Vec<_>>()
                )));
            }
            match reader.poll(Duration::from_millis(200)) {
                Some(Ok(msg)) => {
                    let id = String::from_utf8_lossy(msg.key().unwrap_or_default()).into_owned();
                    let group: Option<Group> =
                        msg.payload().and_then(|v| serde_json::from_slice(v).ok());
                    join.restore(msg.partition(), id, group);
                    read += 1;
                    if msg.offset() + 1 >= ends.get(&msg.partition()).copied().unwrap_or(0) {
                        ends.remove(&msg.partition());
                    }
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                    ends.remove(&p);
                }
                Some(Err(e)) => return Err(kafka(e)),
                None => {}
            }
        }
        tracing::info!(changelog = %changelog, records = read, pending_groups = join.pending(), "join groups restored");
        Ok(())
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Hands the group's rebalances to the member, on the polling thread.
pub struct StreamContext {
    member: Arc<Mutex<Member>>,
    topics: Vec<String>,
}

impl StreamContext {
    pub fn new(member: Arc<Mutex<Member>>, topics: Vec<String>) -> Self {
        StreamContext { member, topics }
    }
}

impl ClientContext for StreamContext {}

impl ConsumerContext for StreamContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut member = lock(&self.member);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                member.assigned(consumer, tpl);
                consumer.assign(tpl)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                member.revoked(consumer, consumer.assignment_lost());
                consumer.unassign()
            }
            other => {
                tracing::warn!(topics = ?self.topics, error = ?other, "rebalance error; the member rejoins");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot apply the new assignment");
        }
    }
}
