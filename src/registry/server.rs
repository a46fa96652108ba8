//! A Schema Registry served in-process for tests and the demo: the Confluent REST subset that
//! runner and common producers use (register under a subject, get by id, versions of a
//! subject). Production points `schema_registry_url` at a real registry.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;

#[derive(Debug, Clone)]
struct Entry {
    subject: String,
    version: u32,
    id: u32,
    schema: String,
    schema_type: String,
}

#[derive(Default)]
struct Schemas {
    entries: Vec<Entry>,
    next_id: u32,
}

type Shared = Arc<Mutex<Schemas>>;

/// The registry's address and the task serving it; the task ends when this is dropped.
pub struct EmbeddedRegistry {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl EmbeddedRegistry {
    /// Serves on a free port of 127.0.0.1.
    pub fn start(rt: &Handle) -> std::io::Result<EmbeddedRegistry> {
        Self::serve(rt, None)
    }

    /// Serves like `start`, answering 401 to requests without these basic-auth credentials.
    pub fn start_with_basic_auth(
        rt: &Handle,
        user: &str,
        password: &str,
    ) -> std::io::Result<EmbeddedRegistry> {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self::serve(rt, Some(format!("Basic {token}")))
    }

    fn serve(rt: &Handle, authorization: Option<String>) -> std::io::Result<EmbeddedRegistry> {
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let state: Shared = Arc::new(Mutex::new(Schemas {
            entries: Vec::new(),
            next_id: 1,
        }));
        let app = Router::new()
            .route("/subjects", get(subjects))
            .route("/subjects/{subject}/versions", post(register).get(versions))
            .route("/subjects/{subject}/versions/{version}", get(version))
            .route("/schemas/ids/{id}", get(by_id))
            .with_state(state)
            .layer(axum::middleware::from_fn(
                move |request: Request, next: Next| {
                    let expected = authorization.clone();
                    async move {
                        let given = request
                            .headers()
                            .get(axum::http::header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok());
                        match expected {
                            Some(expected) if given != Some(expected.as_str()) => {
                                let body = json!({"error_code": 40101, "message": "Unauthorized"});
                                (StatusCode::UNAUTHORIZED, Json(body)).into_response()
                            }
                            _ => next.run(request).await,
                        }
                    }
                },
            ));
        let task = rt.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the embedded Schema Registry stopped");
            }
        });
        Ok(EmbeddedRegistry { url, task })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `f` on the schemas; a poisoned lock (a panicked handler) answers 500.
fn with_schemas(state: &Shared, f: impl FnOnce(&mut Schemas) -> Response) -> Response {
    match state.lock() {
        Ok(mut schemas) => f(&mut schemas),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn not_found(code: u32, message: &str) -> Response {
    let body = json!({"error_code": code, "message": message});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Register {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
}

async fn register(
    State(state): State<Shared>,
    Path(subject): Path<String>,
    Json(body): Json<Register>,
) -> Response {
    let schema_type = body.schema_type.unwrap_or_else(|| "AVRO".to_string());
    with_schemas(&state, |s| {
        let same = |e: &Entry| e.schema == body.schema && e.schema_type == schema_type;
        if let Some(e) = s.entries.iter().find(|e| e.subject == subject && same(e)) {
            return Json(json!({"id": e.id})).into_response();
        }
        // The same schema under another subject keeps its id, as in Confluent's registry.
        let id = match s.entries.iter().find(|e| same(e)) {
            Some(e) => e.id,
            None => {
                s.next_id += 1;
                s.next_id - 1
            }
        };
        let version = s.entries.iter().filter(|e| e.subject == subject).count() as u32 + 1;
        s.entries.push(Entry {
            subject,
            version,
            id,
            schema: body.schema,
            schema_type,
        });
        Json(json!({"id": id})).into_response()
    })
}

/// The schema as the registry returns it; `schemaType` is left out for Avro, as Confluent does.
fn schema_json(e: &Entry) -> Value {
    let mut v = json!({"schema": e.schema});
    if e.schema_type != "AVRO" {
        v["schemaType"] = json!(e.schema_type);
    }
    v
}

fn describe(e: &Entry) -> Value {
    let mut v = schema_json(e);
    v["subject"] = json!(e.subject);
    v["version"] = json!(e.version);
    v["id"] = json!(e.id);
    v
}

async fn by_id(State(state): State<Shared>, Path(id): Path<u32>) -> Response {
    with_schemas(&state, |s| match s.entries.iter().find(|e| e.id == id) {
        Some(e) => Json(schema_json(e)).into_response(),
        None => not_found(40403, "Schema not found"),
    })
}

async fn subjects(State(state): State<Shared>) -> Response {
    with_schemas(&state, |s| {
        let mut names: Vec<&str> = s.entries.iter().map(|e| e.subject.as_str()).collect();
        names.sort();
        names.dedup();
        Json(json!(names)).into_response()
    })
}

async fn versions(State(state): State<Shared>, Path(subject): Path<String>) -> Response {
    with_schemas(&state, |s| {
        let versions: Vec<u32> = s
            .entries
            .iter()
            .filter(|e| e.subject == subject)
            .map(|e| e.version)
            .collect();
        if versions.is_empty() {
            return not_found(40401, "Subject not found");
        }
        Json(json!(versions)).into_response()
    })
}

async fn version(
    State(state): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    with_schemas(&state, |s| {
        let of_subject = s.entries.iter().filter(|e| e.subject == subject);
        let found = match version.as_str() {
            "latest" => of_subject.max_by_key(|e| e.version),
            v => {
                let wanted: u32 = v.parse().unwrap_or(0);
                of_subject.into_iter().find(|e| e.version == wanted)
            }
        };
        match found {
            Some(e) => Json(describe(e)).into_response(),
            None => not_found(40402, "Version not found"),
        }
    })
}
