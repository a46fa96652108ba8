//! A scan: the query's ranges of every chosen partition read through one assigned consumer
//! (librdkafka fetches the partitions in parallel) on a thread of its own, decoded and filtered
//! on every core (rayon), and capped by records scanned, time and results. Reading backwards
//! (newest first) goes in growing windows from the end. A partition stops once it has enough
//! matches, or once its records can no longer be among the first `limit` by timestamp
//! (timestamps are taken to grow with offsets within a partition, as Kafka appends them).

use super::found::Found;
use super::matcher::{Hit, Matcher};
use super::message::Message;
use super::outcome::{Event, Outcome, ScanError, Stats, Stopped};
use super::query::{Query, Seek};
use crate::config::{Connections, OnDecodeError, TopicConfig};
use crate::plan::{PartitionPlan, StartSource, TopicPlan};
use crate::read::{BoundedReader, HeaderCapture, Prefetch, RawBatch, TailReader};
use crate::registry::Registry;
use arrow::array::RecordBatch;
use rayon::prelude::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);
const BATCH_ROWS: usize = 2_000;
/// Batches read ahead of the matching, and matched at once.
const AHEAD: usize = 8;
const CHUNK: usize = 4;

/// What a scan needs besides the query.
pub struct Scan<'a> {
    pub query: &'a Query,
    pub topic: &'a TopicConfig,
    pub connections: &'a Connections,
    pub registry: Option<Arc<Registry>>,
    /// Keep the typed rows of the matches (for a Parquet download).
    pub keep_rows: bool,
}

struct Run<'a> {
    scan: &'a Scan<'a>,
    matcher: Matcher<'a>,
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
    let mut run = Run {
        scan,
        matcher: Matcher {
            query: scan.query,
            topic: &topic,
            registry: scan.registry.clone(),
            keep_rows: scan.keep_rows,
        },
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
    // Which topic and how much, never the filters: they may quote sensitive values.
    tracing::info!(
        topic = %scan.topic.topic,
        seek = query.seek.name(),
        scanned = run.stats.scanned,
        matched = run.stats.matched,
        returned = hits.len(),
        stopped = ?stopped,
        ms = run.stats.elapsed_ms,
        "browse scan"
    );
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
        Ok(
            BoundedReader::start(consumer, &plan, BATCH_ROWS, stall, capture)?
                .read_every_partition()?,
        )
    }

    /// Matches a chunk of batches on every core; counts what was read and matched.
    fn match_chunk(&mut self, chunk: &[RawBatch]) -> Result<Vec<Vec<Hit>>, ScanError> {
        let matcher = &self.matcher;
        let found: Vec<Result<Vec<Hit>, ScanError>> = chunk
            .par_iter()
            .map_init(|| matcher.decoder(), |d, b| matcher.batch(d.as_mut(), b))
            .collect();
        let found = found.into_iter().collect::<Result<Vec<_>, _>>()?;
        self.stats.scanned += chunk.iter().map(|b| b.len() as u64).sum::<u64>();
        self.stats.matched += found.iter().map(|h| h.len() as u64).sum::<u64>();
        Ok(found)
    }

    /// Up to `CHUNK` batches, fewer when they reach the scan cap; at least one unless the
    /// reader is done.
    fn next_chunk(&self, reader: &mut Prefetch<RawBatch>) -> Result<Vec<RawBatch>, ScanError> {
        let budget = self.scan.query.max_scan.saturating_sub(self.stats.scanned);
        let mut chunk: Vec<RawBatch> = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK && (chunk.iter().map(|b| b.len() as u64).sum::<u64>()) < budget {
            match reader.next_batch()? {
                Some(b) => chunk.push(b),
                None => break,
            }
        }
        Ok(chunk)
    }

    fn forwards(
        &mut self,
        consumer: BaseConsumer,
        ranges: BTreeMap<i32, Range>,
    ) -> Result<(Vec<Hit>, Stopped), ScanError> {
        let limit = self.scan.query.limit;
        let filtered = self.scan.query.has_filter();
        // Without a filter each partition needs no more than `limit` records.
        let windows: BTreeMap<i32, (i64, i64)> = ranges
            .iter()
            .map(|(&p, r)| {
                let end = if filtered {
                    r.end
                } else {
                    r.end.min(r.start + limit as i64)
                };
                (p, (r.start, end))
            })
            .collect();
        let mut found = Found::new(limit, false);
        let reader = Prefetch::start(self.reader(consumer, &windows)?, AHEAD, |b| b);
        let stopped = match self.drain(reader, &mut found, |f| f.enough(windows.keys()))? {
            None => Stopped::End,
            Some(Stopped::Limit) => {
                // The end only when no window was cut short by the limit.
                let whole = windows.iter().all(|(p, (_, end))| {
                    found.finished.contains(p) && ranges.get(p).is_some_and(|r| r.end == *end)
                });
                if whole { Stopped::End } else { Stopped::Limit }
            }
            Some(cap) => cap,
        };
        Ok((found.into_hits(), stopped))
    }

    /// Reads `reader` to its end, matching as it goes; stops early once `enough` holds
    /// (`Limit`) or at a cap. `None`: the reader is done. The reader closes in the background.
    fn drain(
        &mut self,
        mut reader: Prefetch<RawBatch>,
        found: &mut Found,
        enough: impl Fn(&Found) -> bool,
    ) -> Result<Option<Stopped>, ScanError> {
        let result = loop {
            let chunk = match self.next_chunk(&mut reader) {
                Ok(chunk) if chunk.is_empty() => break Ok(None),
                Ok(chunk) => chunk,
                Err(e) => break Err(e),
            };
            let hits = match self.match_chunk(&chunk) {
                Ok(hits) => hits,
                Err(e) => break Err(e),
            };
            for (batch, hits) in chunk.iter().zip(hits) {
                found.add(batch, hits);
            }
            if enough(found) {
                break Ok(Some(Stopped::Limit));
            }
            if let Some(stopped) = self.keep_going() {
                break Ok(Some(stopped));
            }
        };
        close_later(reader);
        result
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
        let mut found = Found::new(limit, true);
        let mut consumer = Some(consumer);
        loop {
            let windows: BTreeMap<i32, (i64, i64)> = ranges
                .iter()
                .filter(|(p, r)| r.end > r.low && !found.satisfied(**p))
                .map(|(&p, r)| (p, ((r.end - window).max(r.low), r.end)))
                .collect();
            if windows.is_empty() {
                return Ok((found.into_hits(), Stopped::End));
            }
            let this = match consumer.take() {
                Some(c) => c,
                None => self.consumer()?,
            };
            let reader = Prefetch::start(self.reader(this, &windows)?, AHEAD, |b| b);
            let stopped = self.drain(reader, &mut found, |_| false)?;
            for (p, (start, _)) in &windows {
                if let Some(r) = ranges.get_mut(p) {
                    r.end = *start;
                    if r.end <= r.low {
                        found.finished.insert(*p);
                    }
                }
            }
            if let Some(stopped) = stopped {
                return Ok((found.into_hits(), stopped));
            }
            if found.enough(ranges.keys()) {
                let stopped = found.end_or_limit(ranges.keys());
                return Ok((found.into_hits(), stopped));
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
            let batches = reader.poll(Duration::from_millis(200), BATCH_ROWS)?;
            for hits in self.match_chunk(&batches)? {
                for hit in hits {
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
}

/// Drops a reader on another thread: closing its consumer can take a tenth of a second,
/// which the answer need not wait for.
fn close_later(reader: Prefetch<RawBatch>) {
    std::thread::spawn(move || drop(reader));
}
