//! The JSON API under `/api/`, the probes and `/metrics`. Kafka, the sink and the registry
//! are reached on blocking threads: their clients block.

use super::browse::download::{self, FileFormat};
use super::browse::{Event, Message, Outcome, Query, Scan};
use super::{Shared, jobs};
use crate::config::TopicConfig;
use crate::jobs::RunContext;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;

/// An error as the API answers it: a status and a message that says what to do.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl ToString) -> ApiError {
        ApiError {
            status,
            message: message.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// Runs blocking work (Kafka, the sink) off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when Kafka answers a metadata request and the sink can be listed.
pub async fn readyz(State(console): State<Shared>) -> Response {
    let ctx = console.context();
    let checked = blocking(move || readiness(&ctx)).await;
    match checked {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(what)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {what}\n"),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn readiness(ctx: &RunContext) -> Result<(), &'static str> {
    let consumer: BaseConsumer = crate::kafka::client_config(&ctx.config.connections)
        .create()
        .map_err(|_| "cannot create a Kafka client")?;
    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(5)) {
        tracing::warn!(error = %e, "readiness: Kafka does not answer");
        return Err("Kafka does not answer");
    }
    if let Err(e) = ctx.sink.list(&object_store::path::Path::from("_runner")) {
        tracing::warn!(error = %e, "readiness: the sink does not answer");
        return Err("the sink does not answer");
    }
    Ok(())
}

/// OpenMetrics for scrapers that ask for it (Prometheus does), the classic text format
/// otherwise (promtool, curl, older agents).
pub async fn metrics(State(console): State<Shared>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let text = console.metrics.encode();
    if openmetrics {
        ([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], text).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, super::metrics::TEXT_CONTENT_TYPE)],
            super::metrics::classic_text(&text),
        )
            .into_response()
    }
}

pub const OPENAPI: &str = include_str!("assets/openapi.json");

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicInfo {
    pub topic: String,
    /// None when the cluster does not list it.
    pub partitions: Option<usize>,
    /// In topics.json (decoded with its format); others are shown raw.
    pub configured: bool,
    pub format: String,
    pub browse: bool,
    pub download: bool,
}

/// topics.json's topics and, unless switched off, the cluster's others.
pub fn topic_list(ctx: &RunContext, configured_only: bool) -> Result<Vec<TopicInfo>, String> {
    let consumer: BaseConsumer = crate::kafka::client_config(&ctx.config.connections)
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| format!("Kafka at {}: {e}", ctx.config.connections.bootstrap_servers))?;
    let counts: std::collections::BTreeMap<&str, usize> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name(), t.partitions().len()))
        .collect();
    let mut list: Vec<TopicInfo> = ctx
        .config
        .topics
        .iter()
        .map(|t| TopicInfo {
            topic: t.topic.clone(),
            partitions: counts.get(t.topic.as_str()).copied(),
            configured: true,
            format: format!("{:?}", t.format).to_lowercase(),
            browse: t.browse,
            download: t.browse && t.download,
        })
        .collect();
    if !configured_only {
        for (name, count) in &counts {
            if name.starts_with("__") || list.iter().any(|t| t.topic == *name) {
                continue;
            }
            list.push(TopicInfo {
                topic: name.to_string(),
                partitions: Some(*count),
                configured: false,
                format: "raw".into(),
                browse: true,
                download: true,
            });
        }
    }
    list.sort_by(|a, b| a.topic.cmp(&b.topic));
    Ok(list)
}

pub async fn topics(State(console): State<Shared>) -> Result<Json<Vec<TopicInfo>>, ApiError> {
    let ctx = console.context();
    let only = console.options.configured_topics_only;
    let list = blocking(move || topic_list(&ctx, only)).await?;
    list.map(Json)
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))
}

/// The topic's config for browsing, if the console may show it.
pub fn browsable(
    ctx: &RunContext,
    configured_only: bool,
    topic: &str,
    download: bool,
) -> Result<TopicConfig, ApiError> {
    let forbidden = |what: &str| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "topic {topic}: {what} is switched off in topics.json (\"browse\"/\"download\": false) for this topic"
            ),
        )
    };
    match ctx.config.topics.iter().find(|t| t.topic == topic) {
        Some(t) if !t.browse => Err(forbidden("browsing")),
        Some(t) if download && !t.download => Err(forbidden("download")),
        Some(t) => Ok(t.clone()),
        None if configured_only => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "topic {topic} is not in topics.json, and this console shows only those (--configured-topics-only)"
            ),
        )),
        None => serde_json::from_value(json!({ "topic": topic }))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e)),
    }
}

fn parse_query(console: &Shared, raw: Option<&str>, topic: &str) -> Result<Query, ApiError> {
    Query::parse(raw.unwrap_or(""), Some(topic), console.options.caps)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))
}

/// Runs a scan to its end.
pub async fn scan_all(
    console: &Shared,
    topic: &str,
    query: Query,
    download: bool,
    keep_rows: bool,
) -> Result<Outcome, ApiError> {
    let ctx = console.context();
    let config = browsable(
        &ctx,
        console.options.configured_topics_only,
        topic,
        download,
    )?;
    blocking(move || {
        let scan = Scan {
            query: &query,
            topic: &config,
            connections: &ctx.config.connections,
            registry: ctx.registry.clone(),
            keep_rows,
        };
        super::browse::scan::run(&scan, &mut |_| true)
    })
    .await?
    .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))
}

/// Streams a scan as JSON lines: `{"progress": …}` while it runs, each `{"message": …}`,
/// then `{"done": …}` (or `{"error": …}`). Closing the connection cancels the scan.
pub async fn messages(
    State(console): State<Shared>,
    Path(topic): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = parse_query(&console, raw.as_deref(), &topic)?;
    let ctx = console.context();
    let config = browsable(&ctx, console.options.configured_topics_only, &topic, false)?;
    let (send, receive) = tokio::sync::mpsc::channel::<String>(64);
    tokio::task::spawn_blocking(move || {
        let line = |v: serde_json::Value| format!("{v}\n");
        let scan = Scan {
            query: &query,
            topic: &config,
            connections: &ctx.config.connections,
            registry: ctx.registry.clone(),
            keep_rows: false,
        };
        let mut report = |event: Event| {
            let text = match event {
                Event::Progress(stats) => line(json!({ "progress": stats })),
                Event::Message(m) => line(json!({ "message": m })),
            };
            send.blocking_send(text).is_ok()
        };
        let result = super::browse::scan::run(&scan, &mut report);
        match result {
            Ok(outcome) => {
                // A tail's messages went out as they came.
                if query.seek != super::browse::query::Seek::Tail {
                    for m in &outcome.messages {
                        if send.blocking_send(line(json!({ "message": m }))).is_err() {
                            return;
                        }
                    }
                }
                let _ = send.blocking_send(line(json!({ "done": {
                    "scanned": outcome.stats.scanned,
                    "matched": outcome.stats.matched,
                    "returned": outcome.messages.len(),
                    "elapsed_ms": outcome.stats.elapsed_ms,
                    "stopped": outcome.stopped,
                }})));
            }
            Err(e) => {
                let _ = send.blocking_send(line(json!({ "error": e.to_string() })));
            }
        }
    });
    let stream = futures_util::stream::unfold(receive, |mut receive| async move {
        receive
            .recv()
            .await
            .map(|line| (Ok::<_, std::convert::Infallible>(line), receive))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The scan's result as a file: `format` is jsonl, csv or parquet.
pub async fn download(
    State(console): State<Shared>,
    Path(topic): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = parse_query(&console, raw.as_deref(), &topic)?;
    let format_name = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "jsonl".into());
    let Some(format) = FileFormat::parse(&format_name) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("query field `format`: `{format_name}` is not one of jsonl, csv, parquet"),
        ));
    };
    if query.seek == super::browse::query::Seek::Tail {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "query field `seek`: a live tail has no end to download; pick another seek",
        ));
    }
    let outcome = scan_all(&console, &topic, query, true, format == FileFormat::Parquet).await?;
    let bytes = match format {
        FileFormat::Jsonl => download::jsonl(&outcome.messages),
        FileFormat::Csv => download::csv(&outcome.messages),
        FileFormat::Parquet => download::parquet(&outcome.rows),
    }
    .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let name = format!(
        "{}-{}.{}",
        topic.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "_"
        ),
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    };
    set("content-type", format.content_type().to_string());
    set(
        "content-disposition",
        format!("attachment; filename=\"{name}\""),
    );
    set("x-runner-scanned", outcome.stats.scanned.to_string());
    set("x-runner-returned", outcome.messages.len().to_string());
    set(
        "x-runner-stopped",
        json!(outcome.stopped).as_str().unwrap_or("").to_string(),
    );
    if format == FileFormat::Parquet {
        // Matches that did not decode have no typed row; the header says how many.
        set("x-runner-undecoded", outcome.undecoded.to_string());
    }
    Ok((headers, bytes).into_response())
}

/// One message by its coordinates.
pub async fn one_message(
    State(console): State<Shared>,
    Path((topic, partition, offset)): Path<(String, i32, i64)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Message>, ApiError> {
    find_message(&console, &topic, partition, offset, raw.as_deref())
        .await
        .map(Json)
}

pub async fn find_message(
    console: &Shared,
    topic: &str,
    partition: i32,
    offset: i64,
    raw: Option<&str>,
) -> Result<Message, ApiError> {
    let mut text = format!("seek=from_offset&offset={offset}&partition={partition}&limit=1");
    // Display options (raw encoding, zone) carry over; filters do not apply to one message.
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k == "raw" || k == "tz" {
            text.push_str(&format!(
                "&{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            ));
        }
    }
    let query = parse_query(console, Some(&text), topic)?;
    let outcome = scan_all(console, topic, query, false, false).await?;
    outcome
        .messages
        .into_iter()
        .find(|m| m.offset == offset)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "topic {topic} partition {partition} has no message at offset {offset} (before the log start, past the end, or compacted away)"
                ),
            )
        })
}

pub async fn job_list(
    State(console): State<Shared>,
) -> Result<Json<Vec<jobs::JobStatus>>, ApiError> {
    let ctx = console.context();
    let trigger = console.trigger.clone();
    let allow = console.options.allow_trigger;
    let list = blocking(move || {
        ctx.config
            .jobs
            .iter()
            .map(|j| {
                let running = trigger.as_ref().is_some_and(|t| t.is_running(&j.name));
                let can = allow && trigger.as_ref().is_some_and(|t| t.hosts(&j.name));
                let last = jobs::history(&ctx, j, 1).pop();
                jobs::status(&ctx, j, last, running, can)
            })
            .collect()
    })
    .await?;
    Ok(Json(list))
}

#[derive(Serialize)]
pub struct JobDetail {
    #[serde(flatten)]
    pub status: jobs::JobStatus,
    pub lag: Vec<jobs::Lag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_error: Option<String>,
    pub history: Vec<crate::history::Entry>,
}

pub async fn job_detail(console: &Shared, name: &str) -> Result<JobDetail, ApiError> {
    let ctx = console.context();
    let Some(job) = ctx.config.jobs.iter().find(|j| j.name == name).cloned() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no job {name} in jobs/"),
        ));
    };
    let trigger = console.trigger.clone();
    let allow = console.options.allow_trigger;
    let metrics = console.metrics.clone();
    blocking(move || {
        let running = trigger.as_ref().is_some_and(|t| t.is_running(&job.name));
        let can = allow && trigger.as_ref().is_some_and(|t| t.hosts(&job.name));
        // One read of the history serves both the last run and the list.
        let history = jobs::history(&ctx, &job, 20);
        let status = jobs::status(&ctx, &job, history.first().cloned(), running, can);
        let (lag, lag_error) = match jobs::lag(&ctx, &job) {
            Ok(rows) => {
                for r in &rows {
                    metrics.set_lag(&job.name, &r.topic, r.partition, r.lag);
                }
                (rows, None)
            }
            Err(e) => (Vec::new(), Some(e)),
        };
        JobDetail {
            status,
            lag,
            lag_error,
            history,
        }
    })
    .await
}

pub async fn job(
    State(console): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<JobDetail>, ApiError> {
    job_detail(&console, &name).await.map(Json)
}

/// The header a trigger must carry, naming the job: a cross-site form cannot set it.
pub const CONFIRM_HEADER: &str = "x-runner-confirm";

pub async fn run_job(
    State(console): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(trigger) = console
        .trigger
        .as_ref()
        .filter(|_| console.options.allow_trigger)
    else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this console is read-only; runs can be started from the console of `runner schedule --listen ADDR --allow-trigger`",
        ));
    };
    let confirmed = headers
        .get(CONFIRM_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == name);
    if !confirmed {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("send the header {CONFIRM_HEADER}: {name} to confirm the run"),
        ));
    }
    use crate::schedule::scheduler::TriggerError;
    match trigger.run_now(&name) {
        Ok(()) => Ok((StatusCode::ACCEPTED, Json(json!({ "started": name }))).into_response()),
        Err(e @ TriggerError::Unknown(_)) => Err(ApiError::new(StatusCode::NOT_FOUND, e)),
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, e)),
    }
}

pub async fn history(
    State(console): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<crate::history::Entry>>, ApiError> {
    let mut job = None;
    let mut last = 50usize;
    for (k, v) in url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "job" if !v.is_empty() => job = Some(v.into_owned()),
            "last" => {
                last = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            format!("query field `last`: `{v}` is not within 1..=1000"),
                        )
                    })?
            }
            _ => {}
        }
    }
    let ctx = console.context();
    blocking(move || crate::history::recent(&ctx.sink, last, 30, job.as_deref()))
        .await?
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))
}
