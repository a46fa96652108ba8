//! `/metrics`: runner's counters in the Prometheus/OpenMetrics text format, named by the
//! Prometheus conventions. Labels are jobs, topics, statuses and partitions, never offsets or
//! keys (unbounded label values would swamp Prometheus).

use crate::history::Entry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    job: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    job: String,
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    job: String,
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

fn duration_histogram() -> Histogram {
    // 0.5 s to about 17 minutes.
    Histogram::new(exponential_buckets(0.5, 2.0, 12))
}

pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    duration: Family<JobLabels, Histogram, fn() -> Histogram>,
    last_success: Family<JobLabels, Gauge<f64, AtomicU64>>,
    records: Family<TopicLabels, Counter>,
    bytes: Family<TopicLabels, Counter>,
    files: Family<TopicLabels, Counter>,
    dead_letters: Family<TopicLabels, Counter>,
    lag: Family<PartitionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("runner_build_info", "runner's version; always 1", build);
        let m = Metrics {
            runs: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            last_success: Family::default(),
            records: Family::default(),
            bytes: Family::default(),
            files: Family::default(),
            dead_letters: Family::default(),
            lag: Family::default(),
            registry,
        };
        let mut m = m;
        let r = &mut m.registry;
        r.register(
            "runner_job_runs",
            "Runs of a job by how they ended: ok, partial, failed or stopped",
            m.runs.clone(),
        );
        r.register(
            "runner_job_run_duration_seconds",
            "How long runs of a job took",
            m.duration.clone(),
        );
        r.register(
            "runner_job_last_success_timestamp_seconds",
            "When the last run of a job that ended ok ended, in seconds since the epoch",
            m.last_success.clone(),
        );
        r.register(
            "runner_records",
            "Records a job exported or aggregated, by topic",
            m.records.clone(),
        );
        r.register(
            "runner_bytes_written",
            "Bytes of the files a job wrote, by topic",
            m.bytes.clone(),
        );
        r.register(
            "runner_files_written",
            "Files a job wrote, by topic",
            m.files.clone(),
        );
        r.register(
            "runner_dead_letters",
            "Records a job set aside as dead letters, by topic",
            m.dead_letters.clone(),
        );
        r.register(
            "runner_consumer_lag",
            "Records between a job's progress and the partition's high watermark",
            m.lag.clone(),
        );
        m
    }

    /// Counts one finished run.
    pub fn record(&self, entry: &Entry) {
        let job = || entry.job.clone();
        self.runs
            .get_or_create(&RunLabels {
                job: job(),
                status: entry.status.clone(),
            })
            .inc();
        let seconds = (entry.ended_at - entry.started_at).as_seconds_f64().max(0.0);
        self.duration
            .get_or_create(&JobLabels { job: job() })
            .observe(seconds);
        if entry.status == "ok" {
            self.last_success
                .get_or_create(&JobLabels { job: job() })
                .set(entry.ended_at.timestamp_millis() as f64 / 1000.0);
        }
        for t in entry.topics.iter().filter(|t| !t.topic.is_empty()) {
            let labels = TopicLabels {
                job: job(),
                topic: t.topic.clone(),
            };
            self.records.get_or_create(&labels).inc_by(t.records);
            self.bytes.get_or_create(&labels).inc_by(t.bytes);
            self.files.get_or_create(&labels).inc_by(t.files);
            self.dead_letters.get_or_create(&labels).inc_by(t.dead_letters);
        }
    }

    pub fn set_lag(&self, job: &str, topic: &str, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&PartitionLabels {
                job: job.to_string(),
                topic: topic.to_string(),
                partition: partition.to_string(),
            })
            .set(lag);
    }

    /// The text a scrape gets.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of `Metrics::encode`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
