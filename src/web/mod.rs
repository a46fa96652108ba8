//! The web console (`runner serve`, or `runner schedule --listen`): a browse page for
//! messages, the jobs page, their JSON API under `/api/` (described by `/api/openapi.json`),
//! `/metrics` and the `/healthz` and `/readyz` probes. Server-rendered HTML with one small
//! embedded script; nothing is fetched from elsewhere.

mod api;
pub mod browse;
pub mod jobs;
pub mod metrics;
pub mod options;
mod pages;

pub use metrics::Metrics;
pub use options::{Auth, ConsoleOptions, OptionsError};

use crate::jobs::RunContext;
use crate::schedule::scheduler::Trigger;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the console stopped: {0}")]
    Serve(std::io::Error),
}

/// What every handler shares.
pub struct Console {
    /// Replaced when the scheduler reloads its config.
    pub context: Arc<RwLock<RunContext>>,
    pub options: ConsoleOptions,
    pub metrics: Arc<Metrics>,
    /// Present when a scheduler hosts the jobs (`runner schedule --listen`).
    pub trigger: Option<Trigger>,
}

impl Console {
    pub fn context(&self) -> RunContext {
        match self.context.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

type Shared = Arc<Console>;

/// Every route: method, path, handler. The router is built from this list, and a test holds
/// it against the OpenAPI document, so the two cannot drift apart.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<Shared>)> {
    use axum::routing::{get, post};
    vec![
        (Method::GET, "/", get(pages::home)),
        (Method::GET, "/browse", get(pages::browse)),
        (Method::GET, "/jobs", get(pages::jobs)),
        (
            Method::GET,
            "/message/{topic}/{partition}/{offset}",
            get(pages::message),
        ),
        (Method::GET, "/assets/{file}", get(pages::asset)),
        (Method::GET, "/healthz", get(api::healthz)),
        (Method::GET, "/readyz", get(api::readyz)),
        (Method::GET, "/metrics", get(api::metrics)),
        (Method::GET, "/api/openapi.json", get(api::openapi)),
        (Method::GET, "/api/topics", get(api::topics)),
        (
            Method::GET,
            "/api/topics/{topic}/messages",
            get(api::messages),
        ),
        (
            Method::GET,
            "/api/topics/{topic}/download",
            get(api::download),
        ),
        (
            Method::GET,
            "/api/topics/{topic}/partitions/{partition}/offsets/{offset}",
            get(api::one_message),
        ),
        (Method::GET, "/api/jobs", get(api::job_list)),
        (Method::GET, "/api/jobs/{job}", get(api::job)),
        (Method::POST, "/api/jobs/{job}/run", post(api::run_job)),
        (Method::GET, "/api/history", get(api::history)),
    ]
}

/// Probes answer without credentials: kubelets do not carry them, and they reveal nothing.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

pub fn router(console: Shared) -> Router {
    let mut open = Router::new();
    let mut guarded = Router::new();
    for (_, path, handler) in routes() {
        if OPEN_PATHS.contains(&path) {
            open = open.route(path, handler);
        } else {
            guarded = guarded.route(path, handler);
        }
    }
    let guarded = guarded.layer(axum::middleware::from_fn_with_state(
        console.clone(),
        authenticate,
    ));
    open.merge(guarded).with_state(console)
}

async fn authenticate(State(console): State<Shared>, request: Request, next: Next) -> Response {
    let Some(auth) = &console.options.auth else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth.accepts(given) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, auth.scheme())],
        "authentication required\n",
    )
        .into_response()
}

/// Checks the options (off loopback, credentials are required) and binds the address.
pub async fn bind(options: &ConsoleOptions) -> Result<tokio::net::TcpListener, WebError> {
    options.check()?;
    let addr = options.listen;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })
}

/// How often the lag gauges of `/metrics` are refreshed.
const LAG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Serves until `shutdown` completes, refreshing the lag gauges meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Console,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    if let Ok(local) = listener.local_addr() {
        tracing::info!(address = %local, "console listening");
        println!("console on http://{local}/");
    }
    let console = Arc::new(console);
    let refresher = tokio::spawn(refresh_lag(console.clone()));
    let served = axum::serve(listener, router(console))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(WebError::Serve);
    refresher.abort();
    served
}

async fn refresh_lag(console: Shared) {
    let mut every = tokio::time::interval(LAG_INTERVAL);
    loop {
        every.tick().await;
        let ctx = console.context();
        let metrics = console.metrics.clone();
        let done = tokio::task::spawn_blocking(move || {
            for job in ctx.config.jobs.iter().filter(|j| j.enabled) {
                match jobs::lag(&ctx, job) {
                    Ok(rows) => {
                        for r in rows {
                            metrics.set_lag(&job.name, &r.topic, r.partition, r.lag);
                        }
                    }
                    Err(e) => tracing::debug!(job = %job.name, error = %e, "lag not refreshed"),
                }
            }
        });
        let _ = done.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI document describes exactly the API routes, probes and metrics served.
    #[test]
    fn openapi_matches_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(api::OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, methods) in doc["paths"].as_object().unwrap() {
            for method in methods.as_object().unwrap().keys() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        documented.sort();
        let pages = ["/", "/browse", "/jobs", "/assets/{file}"];
        let mut served: Vec<(String, String)> = routes()
            .into_iter()
            .filter(|(_, path, _)| !pages.contains(path) && !path.starts_with("/message/"))
            .map(|(method, path, _)| (method.to_string(), path.to_string()))
            .collect();
        served.sort();
        assert_eq!(documented, served);
    }
}
