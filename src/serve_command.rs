//! `runner serve`: the web console on its own, read-only, until SIGTERM or SIGINT.

use crate::cli::ServeArgs;
use anyhow::Context;
use runner::config::Config;
use runner::jobs::RunOptions;
use runner::web::{Console, Metrics};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use tokio::runtime::Runtime;

pub fn run(
    load: impl Fn() -> Result<Config, runner::config::ConfigError>,
    args: &ServeArgs,
    rt: &Runtime,
) -> anyhow::Result<ExitCode> {
    let options = args.console.options(args.listen, false)?;
    let ctx = crate::context(load()?, rt, RunOptions::default())?;
    rt.block_on(async {
        let listener = runner::web::bind(&options).await?;
        let console = Console {
            context: Arc::new(RwLock::new(ctx)),
            options,
            metrics: Arc::new(Metrics::new()),
            trigger: None,
        };
        runner::web::serve(listener, console, stopped()).await?;
        Ok::<_, anyhow::Error>(())
    })
    .context("the console failed")?;
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Completes on the first SIGTERM or SIGINT.
pub async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process still ends on the default action.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}
