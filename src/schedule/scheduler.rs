//! `runner schedule`: fires jobs on their cron schedules through tokio-cron-scheduler.
//!
//! The crate only ever sees one-shot jobs at instants runner computes itself, so users get
//! standard cron semantics (five or six fields, day-of-month OR day-of-week, time zones)
//! whatever the crate's parser does, and a job cannot stop firing: every fire arms the next.
//! runner also adds what the crate lacks: no two runs of one job at once (a tick that finds
//! its job running is skipped), a limit on jobs running together, reloads that keep runs in
//! flight, and a stop that lets running jobs finish their current files.

use crate::config::JobConfig;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("the scheduler failed: {0}")]
    Scheduler(#[from] JobSchedulerError),
}

/// What the scheduler did, in order; the command line prints these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A job was armed for its next fire time.
    Armed {
        job: String,
        at: DateTime<Utc>,
    },
    Started {
        job: String,
        at: DateTime<Utc>,
    },
    Finished {
        job: String,
        ok: bool,
    },
    /// A tick found its job still running.
    Skipped {
        job: String,
        at: DateTime<Utc>,
    },
}

/// Runs one job to the end; true when it succeeded. Called on a blocking thread.
pub type RunJob = Arc<dyn Fn(&JobConfig) -> bool + Send + Sync>;

struct Shared {
    run: RunJob,
    slots: Arc<Semaphore>,
    events: mpsc::UnboundedSender<Event>,
    state: Mutex<State>,
    /// Signalled whenever a run ends.
    idle: Notify,
}

#[derive(Default)]
struct State {
    running: HashSet<String>,
    /// Bumped by every reload: fires armed by an older set of jobs do nothing.
    generation: u64,
    armed: HashMap<String, Uuid>,
    stopping: bool,
    /// The enabled batch jobs, scheduled or not: what `Trigger::run_now` may start.
    jobs: HashMap<String, Arc<JobConfig>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TriggerError {
    #[error("job {0} is not a batch job of this scheduler's jobs/ (or it is disabled)")]
    Unknown(String),
    #[error("job {0} is running now; wait for the run to finish")]
    Running(String),
    #[error("the scheduler is stopping; no new runs")]
    Stopping,
}

/// Starts runs on demand (the console's button), under the same rules as fires: one run of
/// a job at a time, within the scheduler's parallel slots.
#[derive(Clone)]
pub struct Trigger {
    shared: Arc<Shared>,
}

impl Trigger {
    /// Starts a run of `job` now; it goes on in the background.
    pub fn run_now(&self, job: &str) -> Result<(), TriggerError> {
        let config = {
            let mut state = lock(&self.shared.state);
            if state.stopping {
                return Err(TriggerError::Stopping);
            }
            let Some(config) = state.jobs.get(job).cloned() else {
                return Err(TriggerError::Unknown(job.to_string()));
            };
            if !state.running.insert(job.to_string()) {
                return Err(TriggerError::Running(job.to_string()));
            }
            config
        };
        tokio::spawn(run_claimed(self.shared.clone(), config, Utc::now()));
        Ok(())
    }

    /// Whether `job` can be started here.
    pub fn hosts(&self, job: &str) -> bool {
        lock(&self.shared.state).jobs.contains_key(job)
    }

    pub fn is_running(&self, job: &str) -> bool {
        lock(&self.shared.state).running.contains(job)
    }
}

pub struct Scheduler {
    cron: JobScheduler,
    shared: Arc<Shared>,
}

impl Scheduler {
    /// Starts firing the enabled, scheduled jobs of `jobs`; at most `parallel` run at once.
    pub async fn start(
        jobs: &[JobConfig],
        parallel: usize,
        run: RunJob,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<Scheduler, ScheduleError> {
        let cron = JobScheduler::new().await?;
        cron.start().await?;
        let scheduler = Scheduler {
            cron,
            shared: Arc::new(Shared {
                run,
                slots: Arc::new(Semaphore::new(parallel.max(1))),
                events,
                state: Mutex::new(State::default()),
                idle: Notify::new(),
            }),
        };
        scheduler.reload(jobs).await?;
        Ok(scheduler)
    }

    /// Replaces the set of jobs. Runs in flight go on with the config they started with.
    pub async fn reload(&self, jobs: &[JobConfig]) -> Result<(), ScheduleError> {
        let (generation, old) = {
            let mut state = lock(&self.shared.state);
            state.generation += 1;
            state.jobs = jobs
                .iter()
                .filter(|j| j.enabled && !j.is_continuous())
                .map(|j| (j.name.clone(), Arc::new(j.clone())))
                .collect();
            (state.generation, std::mem::take(&mut state.armed))
        };
        for id in old.values() {
            // Already fired one-shots are gone from the crate; that is not an error here.
            let _ = self.cron.remove(id).await;
        }
        for job in jobs.iter().filter(|j| j.enabled && j.cron.is_some()) {
            arm(
                self.cron.clone(),
                self.shared.clone(),
                Arc::new(job.clone()),
                generation,
                Utc::now(),
            )
            .await?;
        }
        Ok(())
    }

    /// Stops firing, then waits up to `grace` for running jobs; true when all finished.
    pub async fn stop(mut self, grace: Duration) -> bool {
        lock(&self.shared.state).stopping = true;
        let _ = self.cron.shutdown().await;
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.shared.idle.notified();
            if lock(&self.shared.state).running.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return false;
            }
        }
    }

    pub fn trigger(&self) -> Trigger {
        Trigger {
            shared: self.shared.clone(),
        }
    }

    /// Names of the jobs running now.
    pub fn running(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.shared.state).running.iter().cloned().collect();
        names.sort();
        names
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // The state stays consistent across a panic in a run: runs hold no lock while working.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

type Armed = Pin<Box<dyn Future<Output = Result<(), ScheduleError>> + Send>>;

/// Arms `job` for its first fire time after `after`, as a one-shot of the crate. Boxed with
/// an explicit `Send`: firing arms again, and the compiler cannot see through that cycle.
fn arm(
    cron: JobScheduler,
    shared: Arc<Shared>,
    job: Arc<JobConfig>,
    generation: u64,
    after: DateTime<Utc>,
) -> Armed {
    Box::pin(arm_at(cron, shared, job, generation, after))
}

async fn arm_at(
    cron: JobScheduler,
    shared: Arc<Shared>,
    job: Arc<JobConfig>,
    generation: u64,
    after: DateTime<Utc>,
) -> Result<(), ScheduleError> {
    let Some(at) = job.cron.as_ref().and_then(|c| c.next_after(after)) else {
        return Ok(());
    };
    let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let shared_fire = shared.clone();
    let fire_job = job.clone();
    let one_shot = Job::new_one_shot_at_instant_async(Instant::now() + wait, move |_, cron| {
        let shared = shared_fire.clone();
        let job = fire_job.clone();
        Box::pin(async move { fire(cron, shared, job, generation, at).await })
    })?;
    let id = cron.add(one_shot).await?;
    let mut state = lock(&shared.state);
    if state.generation == generation && !state.stopping {
        state.armed.insert(job.name.clone(), id);
        let _ = shared.events.send(Event::Armed {
            job: job.name.clone(),
            at,
        });
    }
    Ok(())
}

/// One tick: arm the next one, then start the job unless it is still running.
async fn fire(
    cron: JobScheduler,
    shared: Arc<Shared>,
    job: Arc<JobConfig>,
    generation: u64,
    at: DateTime<Utc>,
) {
    // The crate keeps whole seconds; never start before the cron time.
    if let Ok(early) = (at - Utc::now()).to_std() {
        tokio::time::sleep(early).await;
    }
    {
        let state = lock(&shared.state);
        if state.generation != generation || state.stopping {
            return;
        }
    }
    if let Err(e) = arm(cron, shared.clone(), job.clone(), generation, at).await {
        tracing::error!(job = %job.name, error = %e, "cannot arm the next run; the job stops firing");
    }
    {
        let mut state = lock(&shared.state);
        if !state.running.insert(job.name.clone()) {
            tracing::warn!(job = %job.name, at = %at, "skipped: the previous run is still going");
            let _ = shared.events.send(Event::Skipped {
                job: job.name.clone(),
                at,
            });
            return;
        }
    }
    run_claimed(shared, job, at).await;
}

/// Runs `job`, already marked running, when a slot is free.
async fn run_claimed(shared: Arc<Shared>, job: Arc<JobConfig>, at: DateTime<Utc>) {
    let permit = shared.slots.clone().acquire_owned().await;
    let _ = shared.events.send(Event::Started {
        job: job.name.clone(),
        at,
    });
    let run = shared.run.clone();
    let config = job.clone();
    let ok = tokio::task::spawn_blocking(move || run(&config))
        .await
        .unwrap_or(false);
    drop(permit);
    lock(&shared.state).running.remove(&job.name);
    let _ = shared.events.send(Event::Finished {
        job: job.name.clone(),
        ok,
    });
    shared.idle.notify_waiters();
}
