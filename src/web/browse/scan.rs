//! A scan: the query's ranges of every chosen partition read through one assigned consumer
//! (librdkafka fetches the partitions in parallel), decoded with the topic's format, filtered,
//! and capped by records scanned, time and results. Reading backwards (newest first) goes in
//! growing windows from the end until each partition has enough matches.

use super::message::Message;
use super::query::{Query, Seek};
use crate::config::{Connections, Format, OnDecodeError, TopicConfig};
use crate::decode::{DEAD_LETTER_COLUMNS, Decoded, Decoder};
use crate::plan::{PartitionPlan, StartSource, TopicPlan};
use crate::read::{BoundedReader, HeaderCapture, RawBatch, ReadError, TailReader};
use crate::registry::Registry;
use arrow::array::{Array, RecordBatch, StringArray, UInt32Array};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);
const BATCH_ROWS: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("topic {topic}: {reason}")]
    Kafka { topic: String, reason: String },
    #[error(
        "topic {topic} has no partition {partition} (it has {count}); pick partitions 0 to {last}",
        last = count - 1
    )]
    NoPartition {
        topic: String,
        partition: i32,
        count: i32,
    },
    #[error("topic {topic} does not exist or is not readable with these credentials")]
    NoTopic { topic: String },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
    #[error("topic {topic}: {reason}")]
    Rows { topic: String, reason: String },
}

/// Why a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// Enough matches.
    Limit,
    /// Every partition read to its end.
    End,
    MaxScan,
    MaxSeconds,
    Cancelled,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Stats {
    pub scanned: u64,
    pub matched: u64,
    pub elapsed_ms: u64,
}

/// What a scan reports while it runs; the callback returns false to cancel it.
pub enum Event<'a> {
    Progress(Stats),
    /// A match of a live tail, as it arrives.
    Message(&'a Message),
}

pub struct Outcome {
    /// In display order: newest first when reading backwards.
    pub messages: Vec<Message>,
    /// With `keep_rows`, the typed rows of `messages` that decoded, in the same order.
    pub rows: Vec<RecordBatch>,
    /// Matches that did not decode, so have no typed row.
    pub undecoded: u64,
    pub stats: Stats,
    pub stopped: Stopped,
}

/// What a scan needs besides the query.
pub struct Scan<'a> {
    pub query: &'a Query,
    pub topic: &'a TopicConfig,
    pub connections: &'a Connections,
    pub registry: Option<Arc<Registry>>,
    /// Keep the typed rows of the matches (for a Parquet download).
    pub keep_rows: bool,
}

/// A match, with its typed row when kept.
struct Hit {
    message: Message,
    row: Option<RecordBatch>,
}

struct Run<'a> {
    scan: &'a Scan<'a>,
    decoder: Option<Decoder>,
    stats: Stats,
    started: Instant,
    last_report: Instant,
    report: &'a mut dyn FnMut(Event) -> bool,
    cancelled: bool,
}

/// Runs `scan`; `report` hears progress (and tail matches) and may cancel.
pub fn run(scan: &Scan, report: &mut dyn FnMut(Event) -> bool) -> Result<Outcome, ScanError> {
    let mut topic = scan.topic.clone();
    // Browsing shows bad records with their reason rather than failing on the first.
    topic.on_decode_error = OnDecodeError::DeadLetter;
    let decoder = (!matches!(topic.format, Format::Raw) || topic.type_header.is_some())
        .then(|| Decoder::new(&topic, scan.registry.clone()));
    let mut run = Run {
        scan,
        decoder,
        stats: Stats::default(),
        started: Instant::now(),
        last_report: Instant::now(),
        report,
        cancelled: false,
    };
    let consumer = run.consumer()?;
    let ranges = run.ranges(&consumer)?;
    let query = scan.query;
    let (mut hits, stopped) = match query.seek {
        Seek::Tail => run.tail(consumer, &ranges)?,
        s if s.backwards() => run.backwards(consumer, ranges)?,
        _ => run.forwards(consumer, ranges)?,
    };
    if query.seek.backwards() {
        hits.sort_by_key(|h| {
            std::cmp::Reverse((h.message.timestamp, h.message.partition, h.message.offset))
        });
    } else {
        hits.sort_by_key(|h| (h.message.timestamp, h.message.partition, h.message.offset));
    }
    hits.truncate(query.limit);
    run.stats.elapsed_ms = run.started.elapsed().as_millis() as u64;
    let undecoded = hits.iter().filter(|h| h.row.is_none()).count() as u64;
    let (messages, rows): (Vec<Message>, Vec<Option<RecordBatch>>) =
        hits.into_iter().map(|h| (h.message, h.row)).unzip();
    Ok(Outcome {
        messages,
        rows: rows.into_iter().flatten().collect(),
        undecoded,
        stats: run.stats,
        stopped,
    })
}

/// Per partition: the low and high watermarks and the window to read.
#[derive(Debug, Clone, Copy)]
struct Range {
    low: i64,
    start: i64,
    end: i64,
}

impl Run<'_> {
    fn topic(&self) -> &str {
        &self.scan.topic.topic
    }

    fn kafka(&self, reason: impl ToString) -> ScanError {
        ScanError::Kafka {
            topic: self.topic().to_string(),
            reason: reason.to_string(),
        }
    }

    fn consumer(&self) -> Result<BaseConsumer, ScanError> {
        crate::kafka::export_consumer_config(self.scan.connections, "runner.console")
            .create()
            .map_err(|e| self.kafka(e))
    }

    /// The window of each chosen partition, from its watermarks and the seek.
    fn ranges(&self, consumer: &BaseConsumer) -> Result<BTreeMap<i32, Range>, ScanError> {
        let topic = self.topic();
        let metadata = consumer
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(|e| self.kafka(e))?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len() as i32);
        if count == 0 {
            return Err(ScanError::NoTopic {
                topic: topic.to_string(),
            });
        }
        let wanted: Vec<i32> = if self.scan.query.partitions.is_empty() {
            (0..count).collect()
        } else {
            self.scan.query.partitions.iter().copied().collect()
        };
        if let Some(&partition) = wanted.iter().find(|p| **p >= count) {
            return Err(ScanError::NoPartition {
                topic: topic.to_string(),
                partition,
                count,
            });
        }
        let times = match self.scan.query.seek {
            Seek::Since(t) | Seek::Until(t) => Some(self.offsets_for_time(consumer, &wanted, t)?),
            _ => None,
        };
        let mut ranges = BTreeMap::new();
        for p in wanted {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, TIMEOUT)
                .map_err(|e| self.kafka(format!("partition {p}: {e}")))?;
            let at_time = times
                .as_ref()
                .and_then(|t| t.get(&p).copied())
                .unwrap_or(high);
            let clamp = |o: i64| o.clamp(low, high);
            let (start, end) = match self.scan.query.seek {
                Seek::Oldest => (low, high),
                Seek::Newest => (low, high),
                Seek::FromOffset(o) => (clamp(o), high),
                Seek::ToOffset(o) => (low, clamp(o)),
                Seek::Since(_) => (clamp(at_time), high),
                Seek::Until(_) => (low, clamp(at_time)),
                Seek::Tail => (high, high),
            };
            ranges.insert(p, Range { low, start, end });
        }
        Ok(ranges)
    }

    /// The first offset at or after `time` per partition (the end when there is none).
    fn offsets_for_time(
        &self,
        consumer: &BaseConsumer,
        partitions: &[i32],
        time: i64,
    ) -> Result<BTreeMap<i32, i64>, ScanError> {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition_offset(self.topic(), p, Offset::Offset(time))
                .map_err(|e| self.kafka(e))?;
        }
        let found = consumer
            .offsets_for_times(tpl, TIMEOUT)
            .map_err(|e| self.kafka(e))?;
        Ok(found
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    /// Whether to go on; reports progress now and then.
    fn keep_going(&mut self) -> Option<Stopped> {
        let query = self.scan.query;
        if self.last_report.elapsed() >= Duration::from_millis(250) {
            self.last_report = Instant::now();
            self.stats.elapsed_ms = self.started.elapsed().as_millis() as u64;
            if !(self.report)(Event::Progress(self.stats)) {
                self.cancelled = true;
            }
        }
        if self.cancelled {
            Some(Stopped::Cancelled)
        } else if self.stats.scanned >= query.max_scan {
            Some(Stopped::MaxScan)
        } else if self.started.elapsed() >= Duration::from_secs(query.max_seconds) {
            Some(Stopped::MaxSeconds)
        } else {
            None
        }
    }

    fn reader(
        &self,
        consumer: BaseConsumer,
        windows: &BTreeMap<i32, (i64, i64)>,
    ) -> Result<BoundedReader, ScanError> {
        let plan = TopicPlan {
            topic: self.topic().to_string(),
            group_id: String::new(),
            partitions: windows
                .iter()
                .map(|(&partition, &(start, end))| PartitionPlan {
                    partition,
                    start,
                    end,
                    high: end,
                    source: StartSource::Backfill,
                    lost: None,
                })
                .collect(),
        };
        let mut capture = HeaderCapture::for_topic(self.scan.topic);
        capture.all = true;
        let stall = Duration::from_secs(self.scan.query.max_seconds.clamp(5, 60));
        Ok(BoundedReader::start(consumer, &plan, BATCH_ROWS, stall, capture)?)
    }

    fn forwards(
        &mut self,
        consumer: BaseConsumer,
        ranges: BTreeMap<i32, Range>,
    ) -> Result<(Vec<Hit>, Stopped), ScanError> {
        let limit = self.scan.query.limit as i64;
        let filtered = self.scan.query.has_filter();
        // Without a filter each partition needs no more than `limit` records.
        let windows: BTreeMap<i32, (i64, i64)> = ranges
            .iter()
            .map(|(&p, r)| {
                let end = if filtered { r.end } else { r.end.min(r.start + limit) };
                (p, (r.start, end))
            })
            .collect();
        let mut found: BTreeMap<i32, Vec<Hit>> = BTreeMap::new();
        let mut reader = self.reader(consumer, &windows)?;
        let enough = |found: &BTreeMap<i32, Vec<Hit>>| {
            windows
                .keys()
                .all(|p| found.get(p).is_some_and(|h| h.len() as i64 >= limit))
        };
        while let Some(batch) = reader.next_batch()? {
            let hits = found.entry(batch.partition).or_default();
            let room = (limit as usize).saturating_sub(hits.len());
            let mut new = self.matches(&batch)?;
            new.truncate(room);
            hits.extend(new);
            if enough(&found) {
                return Ok((found.into_values().flatten().collect(), Stopped::Limit));
            }
            if let Some(stopped) = self.keep_going() {
                return Ok((found.into_values().flatten().collect(), stopped));
            }
        }
        Ok((found.into_values().flatten().collect(), Stopped::End))
    }

    fn backwards(
        &mut self,
        consumer: BaseConsumer,
        mut ranges: BTreeMap<i32, Range>,
    ) -> Result<(Vec<Hit>, Stopped), ScanError> {
        let limit = self.scan.query.limit;
        let mut window = if self.scan.query.has_filter() {
            (limit as i64).max(1_000)
        } else {
            limit as i64
        };
        let mut found: BTreeMap<i32, Vec<Hit>> = BTreeMap::new();
        let mut consumer = Some(consumer);
        loop {
            let windows: BTreeMap<i32, (i64, i64)> = ranges
                .iter()
                .filter(|(p, r)| r.end > r.low && found.get(p).is_none_or(|h| h.len() < limit))
                .map(|(&p, r)| (p, ((r.end - window).max(r.low), r.end)))
                .collect();
            if windows.is_empty() {
                return Ok((found.into_values().flatten().collect(), Stopped::End));
            }
            let this = match consumer.take() {
                Some(c) => c,
                None => self.consumer()?,
            };
            let mut reader = self.reader(this, &windows)?;
            let mut round: BTreeMap<i32, Vec<Hit>> = BTreeMap::new();
            let mut stopped = None;
            while let Some(batch) = reader.next_batch()? {
                let new = self.matches(&batch)?;
                round.entry(batch.partition).or_default().extend(new);
                stopped = self.keep_going();
                if stopped.is_some() {
                    break;
                }
            }
            for (p, mut older) in round {
                // Within a partition offsets ascend: keep the newest `limit`.
                let hits = found.entry(p).or_default();
                older.sort_by_key(|h| h.message.offset);
                older.append(hits);
                let drop = older.len().saturating_sub(limit);
                older.drain(..drop);
                *hits = older;
            }
            for (p, (start, _)) in &windows {
                if let Some(r) = ranges.get_mut(p) {
                    r.end = *start;
                }
            }
            if let Some(stopped) = stopped {
                return Ok((found.into_values().flatten().collect(), stopped));
            }
            if ranges
                .keys()
                .all(|p| found.get(p).is_some_and(|h| h.len() >= limit))
            {
                return Ok((found.into_values().flatten().collect(), Stopped::Limit));
            }
            window = window.saturating_mul(4).min(1 << 24);
        }
    }

    fn tail(
        &mut self,
        consumer: BaseConsumer,
        ranges: &BTreeMap<i32, Range>,
    ) -> Result<(Vec<Hit>, Stopped), ScanError> {
        let starts = ranges.iter().map(|(&p, r)| (p, r.start)).collect();
        let mut capture = HeaderCapture::for_topic(self.scan.topic);
        capture.all = true;
        let mut reader = TailReader::start(consumer, self.topic(), &starts, capture)?;
        let mut all = Vec::new();
        loop {
            for batch in reader.poll(Duration::from_millis(200), BATCH_ROWS)? {
                for hit in self.matches(&batch)? {
                    if !(self.report)(Event::Message(&hit.message)) {
                        self.cancelled = true;
                    }
                    all.push(hit);
                    if all.len() >= self.scan.query.limit {
                        return Ok((all, Stopped::Limit));
                    }
                }
            }
            if let Some(stopped) = self.keep_going() {
                return Ok((all, stopped));
            }
        }
    }

    /// The matches of one batch, in offset order.
    fn matches(&mut self, batch: &RawBatch) -> Result<Vec<Hit>, ScanError> {
        self.stats.scanned += batch.len() as u64;
        let query = self.scan.query;
        let topic = self.scan.topic;
        let mut messages: Vec<Message> = (0..batch.len())
            .map(|i| Message::at(batch, i, topic, query))
            .collect();
        let mut rows: Vec<Option<(usize, usize)>> = vec![None; batch.len()];
        let mut pieces = Vec::new();
        match &mut self.decoder {
            None => {
                for (i, m) in messages.iter_mut().enumerate() {
                    m.raw = batch.values.is_valid(i).then(|| query.raw.show(batch.values.value(i)));
                }
            }
            Some(_) if topic.format == Format::Json && topic.type_header.is_none() && !self.scan.keep_rows => {
                let (records, bad) = crate::records::from_json(&topic.topic, batch);
                let index = index_of(batch);
                for r in records {
                    if let Some(&i) = index.get(&r.offset) {
                        messages[i].value = Some(r.value);
                    }
                }
                for (offset, reason) in bad {
                    if let Some(&i) = index.get(&offset) {
                        self.set_error(&mut messages[i], batch, i, reason);
                    }
                }
            }
            Some(decoder) => {
                let decoded = decoder.decode(batch)?;
                let records = crate::records::from_decoded(&topic.topic, batch, &decoded)
                    .map_err(|reason| ScanError::Rows {
                        topic: topic.topic.clone(),
                        reason,
                    })?;
                let index = index_of(batch);
                let places = row_places(&decoded);
                for (g, r) in records.into_iter().enumerate() {
                    if let Some(&i) = index.get(&r.offset) {
                        messages[i].value = Some(r.value);
                        if r.type_name.is_some() {
                            messages[i].type_name = r.type_name;
                        }
                        rows[i] = places.get(g).copied();
                    }
                }
                for (offset, reason) in dead_reasons(&decoded) {
                    if let Some(&i) = index.get(&offset) {
                        self.set_error(&mut messages[i], batch, i, reason);
                    }
                }
                pieces = decoded.rows;
            }
        }
        let mut hits = Vec::new();
        let mut picked: Vec<Vec<(usize, u32)>> = vec![Vec::new(); pieces.len()];
        for (i, message) in messages.into_iter().enumerate() {
            if !message.matches(&topic.topic, query) {
                continue;
            }
            if let Some((piece, row)) = rows[i].filter(|_| self.scan.keep_rows) {
                picked[piece].push((hits.len(), row as u32));
            }
            hits.push(Hit { message, row: None });
        }
        self.stats.matched += hits.len() as u64;
        // Matched rows are copied out of their batch, so a kept row does not hold it all.
        for (piece, wanted) in pieces.iter().zip(picked) {
            if wanted.is_empty() {
                continue;
            }
            let indices = UInt32Array::from_iter_values(wanted.iter().map(|(_, r)| *r));
            let taken = arrow::compute::take_record_batch(piece, &indices).map_err(|e| {
                ScanError::Rows {
                    topic: topic.topic.clone(),
                    reason: e.to_string(),
                }
            })?;
            for (n, (hit, _)) in wanted.iter().enumerate() {
                hits[*hit].row = Some(taken.slice(n, 1));
            }
        }
        Ok(hits)
    }

    fn set_error(&self, message: &mut Message, batch: &RawBatch, i: usize, reason: String) {
        message.error = Some(reason);
        message.raw = batch
            .values
            .is_valid(i)
            .then(|| self.scan.query.raw.show(batch.values.value(i)));
    }
}

fn index_of(batch: &RawBatch) -> std::collections::HashMap<i64, usize> {
    batch
        .offsets
        .iter()
        .enumerate()
        .map(|(i, &o)| (o, i))
        .collect()
}

/// (piece, row in piece) of each decoded row, in order.
fn row_places(decoded: &Decoded) -> Vec<(usize, usize)> {
    decoded
        .rows
        .iter()
        .enumerate()
        .flat_map(|(piece, b)| (0..b.num_rows()).map(move |row| (piece, row)))
        .collect()
}

/// The offset and reason of each record that did not decode.
fn dead_reasons(decoded: &Decoded) -> Vec<(i64, String)> {
    let Some(dead) = &decoded.dead else {
        return Vec::new();
    };
    let reasons = dead
        .column_by_name(DEAD_LETTER_COLUMNS[1])
        .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
    decoded
        .dead_offsets
        .iter()
        .enumerate()
        .map(|(i, &o)| {
            let reason = reasons
                .as_ref()
                .filter(|r| i < r.len())
                .map_or_else(|| "could not be decoded".to_string(), |r| r.value(i).to_string());
            (o, reason)
        })
        .collect()
}
