//! Logs through tracing: every line carries the run id; each topic also gets its own file
//! (`<log_dir>/<topic>.log`, as the exporter had), and stderr can be JSON on request.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Keep alive for the whole process: dropping it flushes the log files.
pub struct LogGuard {
    _topic_files: Option<std::sync::Arc<TopicFiles>>,
}

/// A run id: UTC start time plus a few random hex digits, sortable and unique enough.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = (now.timestamp_subsec_nanos() ^ std::process::id()) & 0xffff;
    format!("{}-{salt:04x}", now.format("%Y%m%dT%H%M%SZ"))
}

/// `RUST_LOG`, or by default `info` (rdkafka's and the scheduler's own lines from `warn`).
fn filter<S: Subscriber>() -> impl tracing_subscriber::layer::Filter<S> + Send + Sync + 'static {
    leaving_out_closed_on_drop(
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,tokio_cron_scheduler=warn")),
    )
}

fn leaving_out_closed_on_drop<S: Subscriber>(
    levels: EnvFilter,
) -> impl tracing_subscriber::layer::Filter<S> + Send + Sync + 'static {
    levels.and(filter_fn(|meta| !closed_on_drop(meta)))
}

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat, log_dir: Option<PathBuf>) -> LogGuard {
    let stderr = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(crate::meter::StderrLine::new)
            // Colors only for a person at a terminal, never in collected logs.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(crate::meter::StderrLine::new)
            .with_current_span(false)
            .with_filter(filter())
            .boxed(),
    };
    let topic_files = log_dir.map(|dir| std::sync::Arc::new(TopicFiles::new(dir)));
    let files_layer = topic_files
        .clone()
        .map(|files| SharedLayer(files).with_filter(filter()));
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(files_layer)
        .try_init();
    LogGuard {
        _topic_files: topic_files,
    }
}

/// rdkafka's only error in its consumer module: a consumer's drop found its group closed
/// already, as `kafka::close` leaves it (the drop's own close waits 100 ms).
fn closed_on_drop(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::ERROR && meta.target() == "rdkafka::consumer::base_consumer"
}

/// Span fields worth repeating on each line of a topic's file.
#[derive(Default, Clone)]
struct SpanTags {
    topic: Option<String>,
    run_id: Option<String>,
}

impl Visit for SpanTags {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "topic" => self.topic = Some(format!("{value:?}").trim_matches('"').to_string()),
            "run_id" => self.run_id = Some(format!("{value:?}").trim_matches('"').to_string()),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value)
    }
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

pub struct TopicFiles {
    dir: PathBuf,
    writers: Mutex<HashMap<String, (NonBlocking, WorkerGuard)>>,
}

impl TopicFiles {
    fn new(dir: PathBuf) -> Self {
        TopicFiles {
            dir,
            writers: Mutex::new(HashMap::new()),
        }
    }

    fn write(&self, topic: &str, line: &str) {
        let Ok(mut writers) = self.writers.lock() else {
            return;
        };
        let entry = writers.entry(topic.to_string()).or_insert_with(|| {
            let appender = tracing_appender::rolling::never(&self.dir, format!("{topic}.log"));
            tracing_appender::non_blocking(appender)
        });
        let _ = entry.0.write_all(line.as_bytes());
    }
}

struct SharedLayer(std::sync::Arc<TopicFiles>);

impl<S> Layer<S> for SharedLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut tags = SpanTags::default();
        attrs.record(&mut tags);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(tags);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut tags = SpanTags::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(t) = span.extensions().get::<SpanTags>() {
                    tags.topic = t.topic.clone().or(tags.topic);
                    tags.run_id = t.run_id.clone().or(tags.run_id);
                }
            }
        }
        let Some(topic) = tags.topic else {
            return;
        };
        let mut line = Line(format!(
            "{} {} run_id={}",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            event.metadata().level(),
            tags.run_id.as_deref().unwrap_or("-")
        ));
        event.record(&mut line);
        line.0.push('\n');
        self.0.write(&topic, &line.0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::{EnvFilter, Layer};

    #[derive(Clone, Default)]
    struct Count(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_dropped_consumer_found_closed_is_not_an_error_and_other_errors_still_are() {
        let count = Count::default();
        let filter = super::leaving_out_closed_on_drop(EnvFilter::new("info,rdkafka=warn"));
        let subscriber = tracing_subscriber::registry().with(count.clone().with_filter(filter));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(
                target: "rdkafka::consumer::base_consumer",
                "Failed to close consumer queue on drop: BrokerDestroy"
            );
            tracing::error!(target: "rdkafka::client", "a broker's error");
            tracing::warn!(target: "rdkafka::consumer::base_consumer", "invalid rebalance event");
            tracing::error!(target: "runner::jobs::export", "topic failed");
        });
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
    }
}
