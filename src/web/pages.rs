//! The console's pages, rendered on the server (maud). The one script, `console.js`, streams a
//! scan's results into the browse table and confirms triggers; everything else is HTML.

use super::Shared;
use super::api::{self, ApiError, TopicInfo};
use super::browse::Query;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};

const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Pages load nothing but their own script and style.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn page(title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · runner" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                nav {
                    strong { "runner" }
                    a href="/browse" { "Browse" }
                    a href="/jobs" { "Jobs" }
                    a href="/metrics" { "Metrics" }
                    a href="/api/openapi.json" { "API" }
                }
                main { (body) }
            }
        }
    };
    (
        [
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        markup,
    )
        .into_response()
}

fn error_box(message: &str) -> Markup {
    html! { p.error role="alert" { (message) } }
}

pub async fn home() -> Redirect {
    Redirect::to("/browse")
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "console.js" => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            SCRIPT,
        )
            .into_response(),
        "console.css" => {
            ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
        }
        _ => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// The query's fields as given, to fill the form again (even when invalid).
struct Given(Vec<(String, String)>);

impl Given {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
    fn partitions(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == "partition" || k == "partitions")
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn select(name: &str, given: &str, options: &[(&str, &str)]) -> Markup {
    html! {
        select name=(name) id=(name) {
            @for (value, label) in options {
                option value=(value) selected[*value == given] { (label) }
            }
        }
    }
}

const TEXT_OPS: [(&str, &str); 3] = [
    ("contains", "contains"),
    ("equals", "equals"),
    ("not_contains", "does not contain"),
];

pub async fn browse(State(console): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let raw = raw.unwrap_or_default();
    let given = Given(
        url::form_urlencoded::parse(raw.as_bytes())
            .into_owned()
            .collect(),
    );
    let ctx = console.context();
    let only = console.options.configured_topics_only;
    let topics = api::blocking(move || api::topic_list(&ctx, only)).await;
    let (topics, list_error) = match topics {
        Ok(Ok(t)) => (t, None),
        Ok(Err(e)) => (Vec::new(), Some(e)),
        Err(e) => (Vec::new(), Some(e.message)),
    };
    let chosen = given.get("topic");
    let info = topics.iter().find(|t| t.topic == chosen);
    // A chosen topic runs the query; a bad field or a closed topic says why instead.
    let outcome: Option<Result<(Query, &TopicInfo), String>> = (!chosen.is_empty()).then(|| {
        let query = Query::parse(&raw, None, console.options.caps).map_err(|e| e.to_string())?;
        match info {
            Some(i) if !i.browse => Err(format!(
                "topic {chosen}: browsing is switched off in topics.json (\"browse\": false) for this topic"
            )),
            Some(i) => Ok((query, i)),
            None => Err(format!(
                "topic {chosen} is not listed (not on the cluster{})",
                if only { ", or not in topics.json" } else { "" }
            )),
        }
    });
    let api_query = {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &given.0 {
            if k != "topic" && !v.is_empty() {
                pairs.append_pair(k, v);
            }
        }
        pairs.finish()
    };
    let topic_path = url::form_urlencoded::byte_serialize(chosen.as_bytes()).collect::<String>();
    let partitions = given.partitions();
    let body = html! {
        h1 { "Browse messages" }
        @if let Some(e) = &list_error { (error_box(&format!("cannot list topics: {e}"))) }
        form #query method="get" action="/browse" {
            fieldset {
                label { "Topic " select name="topic" id="topic" {
                    option value="" { "— pick a topic —" }
                    @for t in &topics {
                        option value=(t.topic) selected[t.topic == chosen] disabled[!t.browse] {
                            (t.topic) " (" (t.format)
                            @if let Some(n) = t.partitions { ", " (n) " partitions" }
                            @if !t.browse { ", browsing off" }
                            ")"
                        }
                    }
                } }
                @if let Some(n) = info.and_then(|i| i.partitions) {
                    label { "Partitions " select name="partition" id="partition" multiple size=(n.clamp(2, 6)) {
                        @for p in 0..n {
                            option value=(p) selected[partitions.contains(&p.to_string())] { (p) }
                        }
                    } }
                }
            }
            fieldset {
                label { "Seek " (select("seek", given.get("seek"), &[
                    ("newest", "newest"), ("oldest", "oldest"), ("from_offset", "from offset"),
                    ("to_offset", "up to offset"), ("since", "since time"), ("until", "until time"),
                    ("tail", "live tail"),
                ])) }
                label { "Offset " input type="number" name="offset" value=(given.get("offset")); }
                label { "Time (UTC) " input type="text" name="time" placeholder="2026-12-01T10:00:00Z" value=(given.get("time")); }
                label { "Limit " input type="number" name="limit" min="1" value=(if given.get("limit").is_empty() { "50" } else { given.get("limit") }); }
            }
            fieldset {
                label { "Key " (select("key_op", given.get("key_op"), &TEXT_OPS)) input type="text" name="key" value=(given.get("key")); }
                label { "Value " (select("value_op", given.get("value_op"), &TEXT_OPS)) input type="text" name="value" value=(given.get("value")); }
                label { "Header " input type="text" name="header" placeholder="name" value=(given.get("header")); (select("header_op", given.get("header_op"), &TEXT_OPS)) input type="text" name="header_value" placeholder="value" value=(given.get("header_value")); }
            }
            fieldset {
                label.wide { "Expression (CEL) " input type="text" name="expr" size="60" placeholder="value.amount > 100 && key.startsWith(\"acc\")" value=(given.get("expr")); }
            }
            fieldset {
                label { "Raw bytes as " (select("raw", given.get("raw"), &[("utf8", "UTF-8"), ("base64", "base64"), ("hex", "hex")])) }
                label { "Also in zone " input type="text" name="tz" placeholder="Europe/Paris" value=(given.get("tz")); }
                label { "Scan at most " input type="number" name="max_scan" placeholder=(1_000_000u64.min(console.options.caps.max_scan)) value=(given.get("max_scan")); " records" }
                label { "for " input type="number" name="max_seconds" placeholder=(30u64.min(console.options.caps.max_seconds)) value=(given.get("max_seconds")); " s" }
            }
            button type="submit" #run { "Run" }
            button type="button" #cancel disabled { "Cancel" }
        }
        @match &outcome {
            None => p.hint { "Pick a topic and press Run. The page's address holds the whole query: copy it to share the view." },
            Some(Err(e)) => (error_box(e)),
            Some(Ok((_, info))) => {
                p #status role="status" { "Starting…" }
                @if info.download {
                    p.downloads { "Download: "
                        @for (f, label) in [("jsonl", "JSON lines"), ("csv", "CSV"), ("parquet", "Parquet")] {
                            a href={ "/api/topics/" (topic_path) "/download?format=" (f) "&" (api_query) } download { (label) } " "
                        }
                    }
                } @else {
                    p.hint { "Download is switched off for this topic in topics.json." }
                }
                table #results data-api={ "/api/topics/" (topic_path) "/messages?" (api_query) } data-topic=(chosen) {
                    thead { tr { th { "Partition" } th { "Offset" } th { "Time" } th { "Key" } th { "Headers" } th { "Value" } } }
                    tbody {}
                }
            }
        }
    };
    page("Browse", body)
}

pub async fn message(
    State(console): State<Shared>,
    Path((topic, partition, offset)): Path<(String, i32, i64)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let found = api::find_message(&console, &topic, partition, offset, raw.as_deref()).await;
    let title = format!("{topic} / {partition} / {offset}");
    let back = format!(
        "/browse?topic={}&partition={partition}&seek=from_offset&offset={offset}&limit=50",
        url::form_urlencoded::byte_serialize(topic.as_bytes()).collect::<String>()
    );
    let body = match found {
        Err(ApiError { message, .. }) => html! { h1 { (title) } (error_box(&message)) },
        Ok(m) => {
            let value = m
                .value
                .as_ref()
                .map(|v| serde_json::to_string_pretty(v).unwrap_or_default());
            html! {
                h1 { (title) }
                p { a href=(back) { "Browse from here" } }
                dl.message {
                    dt { "Time (UTC)" } dd { (m.time.clone().unwrap_or_default()) }
                    @if let Some(local) = &m.local_time { dt { "Local time" } dd { (local) } }
                    dt { "Key" } dd { code { (m.key.clone().unwrap_or_else(|| "null".into())) } }
                    @if let Some(t) = &m.type_name { dt { "Type" } dd { (t) } }
                    @if let Some(id) = m.schema_id { dt { "Schema id" } dd { (id) } }
                    dt { "Headers" } dd {
                        @if m.headers.is_empty() { "none" }
                        @for (k, v) in &m.headers { code { (k) ": " (v) } br; }
                    }
                    dt { "Size" } dd { (m.size) " bytes" }
                    @if let Some(e) = &m.error { dt { "Decode error" } dd.error { (e) } }
                }
                @if let Some(v) = value { h2 { "Value" } pre.value { (v) } }
                @if let Some(r) = &m.raw { h2 { "Raw value" } pre.value.raw { (r) } }
            }
        }
    };
    page(&title, body)
}

pub async fn jobs(State(console): State<Shared>) -> Response {
    let names: Vec<String> = console
        .context()
        .config
        .jobs
        .iter()
        .map(|j| j.name.clone())
        .collect();
    let mut details = Vec::new();
    for name in &names {
        details.push(api::job_detail(&console, name).await);
    }
    let body = html! {
        h1 { "Jobs" }
        @if names.is_empty() { p.hint { "No job files in jobs/." } }
        @if console.trigger.is_none() {
            p.hint { "Runs can be started from the console of " code { "runner schedule --listen ADDR --allow-trigger" } "; this one only shows." }
        }
        table.jobs {
            thead { tr { th { "Job" } th { "Kind" } th { "Schedule" } th { "Next run (UTC)" } th { "Last run" } th { "Records" } th { "Files" } th { "Lag" } th {} } }
            tbody {
                @for d in details.iter().flatten() {
                    @let s = &d.status;
                    @let last = s.last_run.as_ref();
                    tr data-job=(s.name) {
                        td { a href={ "#job-" (s.name) } { (s.name) } }
                        td { (s.kind) }
                        td { (s.schedule.clone().unwrap_or_else(|| "on demand".into())) @if let Some(z) = &s.time_zone { " (" (z) ")" } }
                        td { (s.next_run.clone().unwrap_or_default()) }
                        td class=(last.map_or("", |l| l.status.as_str())) {
                            @if s.running { "running" } @else if let Some(l) = last { (l.status) " at " (l.ended_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) } @else { "never" }
                        }
                        td { (last.map_or(0, |l| l.records())) }
                        td { (last.map_or(0, |l| l.topics.iter().map(|t| t.files).sum::<u64>())) }
                        td { (d.lag.iter().map(|l| l.lag).sum::<i64>()) }
                        td { @if s.can_trigger { button type="button" data-run=(s.name) { "Run now" } } }
                    }
                }
            }
        }
        @for (name, d) in names.iter().zip(&details) {
            section id={ "job-" (name) } {
                h2 { (name) }
                @match d {
                    Err(e) => (error_box(&e.message)),
                    Ok(d) => {
                        @if let Some(e) = &d.lag_error { (error_box(&format!("lag: {e}"))) }
                        @if !d.lag.is_empty() {
                            table.lag {
                                thead { tr { th { "Topic" } th { "Partition" } th { "Position" } th { "High watermark" } th { "Lag" } } }
                                tbody { @for l in &d.lag { tr { td { (l.topic) } td { (l.partition) } td { (l.position.map_or("none".into(), |p| p.to_string())) } td { (l.high) } td { (l.lag) } } } }
                            }
                        }
                        h3 { "History" }
                        @if d.history.is_empty() { p.hint { "No runs recorded in the last 30 days." } }
                        @else {
                            table.history {
                                thead { tr { th { "Started (UTC)" } th { "Status" } th { "Seconds" } th { "Records" } th { "Files" } th { "Error" } } }
                                tbody { @for e in &d.history {
                                    tr {
                                        td { (e.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) }
                                        td class=(e.status) { (e.status) }
                                        td { (format!("{:.1}", (e.ended_at - e.started_at).as_seconds_f64())) }
                                        td { (e.records()) }
                                        td { (e.topics.iter().map(|t| t.files).sum::<u64>()) }
                                        td { (e.topics.iter().filter_map(|t| t.error.clone()).collect::<Vec<_>>().join("; ")) }
                                    }
                                } }
                            }
                        }
                    }
                }
            }
        }
    };
    page("Jobs", body)
}
