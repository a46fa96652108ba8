//! The entry point of a custom binary that links runner as a library to offer Rust processors
//! to stream jobs: `main_with(registry)` runs `<binary> [--config-dir DIR] --job NAME` like
//! `runner continuous --job NAME`, until SIGTERM or SIGINT.

use super::StreamError;
use crate::config::{Config, JobKind};
use crate::jobs::{RunContext, RunOptions, Stop};
use crate::process::Registry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs one stream job with `processors`; exit 0 after a SIGTERM drain, 1 on failure, 2 on
/// a configuration or command-line mistake.
pub fn main_with(processors: Registry) -> ExitCode {
    let _logs = crate::logging::init(crate::logging::LogFormat::Text, None);
    match run(processors) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

fn run(processors: Registry) -> Result<(), (u8, String)> {
    let usage = |m: &str| (2, format!("{m}; usage: --job NAME [--config-dir DIR]"));
    let mut args = std::env::args().skip(1);
    let (mut dir, mut job) = (PathBuf::from("."), None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config-dir" => {
                dir = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| usage("--config-dir needs a folder"))?
            }
            "--job" => job = Some(args.next().ok_or_else(|| usage("--job needs a name"))?),
            other => return Err(usage(&format!("unknown argument `{other}`"))),
        }
    }
    let name = job.ok_or_else(|| usage("--job is missing"))?;
    let config = Config::load(&dir).map_err(|e| (2, e.to_string()))?;
    let job = config
        .jobs
        .iter()
        .find(|j| j.name == name && j.kind == JobKind::Stream)
        .cloned()
        .ok_or_else(|| {
            (
                2,
                format!("no stream job `{name}` in {}/jobs", dir.display()),
            )
        })?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| (1, e.to_string()))?;
    let stop = Stop::default();
    let signal_stop = stop.clone();
    rt.spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            signal_stop.request();
        }
    });
    let sink = crate::sink::Sink::open(&config.sink, rt.handle().clone())
        .map_err(|e| (2, e.to_string()))?;
    let registry =
        crate::registry::Registry::from_connections(&config.connections, rt.handle().clone())
            .map_err(|e| (2, e.to_string()))?;
    let ctx = RunContext {
        config,
        sink: Arc::new(sink),
        registry: registry.map(Arc::new),
        options: RunOptions {
            stop,
            ..RunOptions::default()
        },
        processors: processors.clone(),
    };
    let summary =
        super::run(&ctx, &job, &processors).map_err(|e: StreamError| (1, e.to_string()))?;
    println!(
        "job {}: {} records in, {} results out, {} dead letters",
        job.name, summary.records, summary.sent, summary.dead_letters
    );
    Ok(())
}
