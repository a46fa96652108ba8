//! `runner continuous`: continuous jobs in the foreground until SIGTERM; `runner fleet import`:
//! a consumer fleet file into such jobs. `runner schedule` hosts continuous jobs through
//! `spawn` below.

use crate::cli::{ContinuousArgs, FleetCommand};
use crate::{EXIT_CONFIG, EXIT_FAILED};
use runner::config::{Config, ConfigError, JobConfig};
use runner::jobs::continuous::{self, ContinuousError, MemberSummary};
use runner::jobs::export::ExportError;
use runner::jobs::{RunContext, RunOptions, Stop};
use std::process::ExitCode;
use std::thread::JoinHandle;
use tokio::runtime::Runtime;

pub fn run(
    load: impl Fn() -> Result<Config, ConfigError>,
    args: ContinuousArgs,
    rt: &Runtime,
) -> anyhow::Result<ExitCode> {
    let config = load()?;
    let jobs = chosen(&config, &args.job)?;
    let stop = Stop::default();
    crate::once_command::stop_on_signals(rt, stop.clone());
    let options = RunOptions {
        stop,
        ..RunOptions::default()
    };
    let ctx = crate::context(config, rt, options)?;
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    println!("running continuous jobs {} until SIGTERM", names.join(", "));
    let code = spawn(&ctx, &jobs)
        .into_iter()
        .map(finish)
        .fold(ExitCode::SUCCESS, |code, next| {
            if next == ExitCode::SUCCESS {
                code
            } else {
                next
            }
        });
    Ok(code)
}

/// The named continuous jobs, or every enabled one; a named job that is not continuous is a
/// mistake in the command line.
fn chosen(config: &Config, names: &[String]) -> Result<Vec<JobConfig>, ConfigError> {
    let jobs = config.select_jobs(names)?;
    if let Some(job) = jobs
        .iter()
        .find(|j| !j.is_continuous() && !names.is_empty())
    {
        return Err(ConfigError::Flags(format!(
            "--job {}: the job has no \"schedule\": \"continuous\"; run it with `runner once --job {}` or `runner schedule`",
            job.name, job.name
        )));
    }
    let jobs: Vec<JobConfig> = jobs.into_iter().filter(|j| j.is_continuous()).collect();
    if jobs.is_empty() {
        return Err(ConfigError::Flags(format!(
            "no enabled job in {}/jobs is continuous; give one \"schedule\": \"continuous\"",
            config.dir.display()
        )));
    }
    Ok(jobs)
}

type Running = JoinHandle<(String, Result<MemberSummary, ContinuousError>)>;

/// Starts each job on its own thread; they run until `ctx`'s stop is requested.
pub fn spawn(ctx: &RunContext, jobs: &[JobConfig]) -> Vec<Running> {
    jobs.iter()
        .map(|job| {
            let (ctx, job) = (ctx.clone(), job.clone());
            std::thread::spawn(move || {
                let span = tracing::info_span!("job", job = %job.name);
                let _entered = span.enter();
                let result = runner::jobs::job_context(&ctx, &job)
                    .map_err(|e| ContinuousError::Export(ExportError::Write(e.into())))
                    .and_then(|ctx| continuous::run_job(&ctx, &job));
                (job.name, result)
            })
        })
        .collect()
}

/// Waits for a job and prints its summary line; the exit code it calls for.
pub fn finish(handle: Running) -> ExitCode {
    let (job, result) = match handle.join() {
        Ok(done) => done,
        Err(_) => return ExitCode::from(EXIT_FAILED),
    };
    match result {
        Ok(s) => {
            println!(
                "job={job} status=stopped records={} files={} dead_letters={}",
                s.records, s.files, s.dead_letters
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("job={job} status=failed error=\"{e}\"");
            eprintln!("error: job {job}: {e}");
            ExitCode::from(if e.is_permanent() {
                EXIT_CONFIG
            } else {
                EXIT_FAILED
            })
        }
    }
}

pub fn fleet(
    load: impl Fn() -> Result<Config, ConfigError>,
    command: FleetCommand,
) -> anyhow::Result<ExitCode> {
    let FleetCommand::Import {
        file,
        functions,
        manifests,
        force,
    } = command;
    let config = load()?;
    let functions = functions.into_iter().collect();
    let jobs = runner::config::fleet::load(&file, &functions, &config.topics)?;
    let folder = config.dir.join(runner::config::JOBS_DIR);
    std::fs::create_dir_all(&folder)?;
    for job in &jobs {
        let path = folder.join(format!("{}.json", job.name));
        if path.exists() && !force {
            anyhow::bail!(
                "{} exists; pass --force to replace it, or rename the consumer",
                path.display()
            );
        }
        std::fs::write(&path, serde_json::to_string_pretty(&job.job)? + "\n")?;
        println!("wrote {}", path.display());
        if let Some(dir) = &manifests {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{}.yaml", job.name));
            std::fs::write(&path, runner::config::fleet::deployment(job))?;
            println!("wrote {} ({} replicas)", path.display(), job.workers);
        }
    }
    // The new files must load: a mistake shows now, not when a pod starts.
    load()?;
    Ok(ExitCode::SUCCESS)
}
