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
        let seconds = (entry.ended_at - entry.started_at)
            .as_seconds_f64()
            .max(0.0);
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
            self.dead_letters
                .get_or_create(&labels)
                .inc_by(t.dead_letters);
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

/// The content type of `classic_text`.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text turned into the classic Prometheus text format: a counter family's HELP
/// and TYPE name its `_total` samples, and there is no `# EOF`.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_by_their_samples() {
        let text = "# HELP a_runs Runs.\n# TYPE a_runs counter\na_runs_total{job=\"x\"} 1\n# HELP g A gauge.\n# TYPE g gauge\ng 2\n# EOF\n";
        assert_eq!(
            classic_text(text),
            "# HELP a_runs_total Runs.\n# TYPE a_runs_total counter\na_runs_total{job=\"x\"} 1\n# HELP g A gauge.\n# TYPE g gauge\ng 2\n"
        );
    }

    #[test]
    fn a_run_counts_its_records_and_files() {
        let metrics = Metrics::new();
        let now = chrono::Utc::now();
        let entry = Entry {
            job: "j".into(),
            run_id: "r".into(),
            started_at: now - chrono::Duration::seconds(3),
            ended_at: now,
            status: "ok".into(),
            shard: None,
            backfill: None,
            topics: vec![crate::history::TopicEntry {
                topic: "t".into(),
                status: "ok".into(),
                records: 7,
                files: 2,
                bytes: 100,
                ..Default::default()
            }],
        };
        metrics.record(&entry);
        metrics.record(&entry);
        let text = classic_text(&metrics.encode());
        assert!(
            text.contains("runner_records_total{job=\"j\",topic=\"t\"} 14\n"),
            "{text}"
        );
        assert!(
            text.contains("runner_files_written_total{job=\"j\",topic=\"t\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("runner_job_runs_total{job=\"j\",status=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("runner_job_run_duration_seconds_count{job=\"j\"} 2\n"),
            "{text}"
        );
    }
}
