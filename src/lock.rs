//! A lock per consumer group and topic, kept in the sink beside the progress, so two
//! processes (two CronJob pods, a scheduler and a manual backfill) never export the same
//! partitions at once.
//!
//! A lock is a numbered file `_runner/locks/<group>/<topic>/<scope>/<n>.json` created with a put that
//! fails when the file exists, which every object store and the local file system provide
//! atomically: of two processes racing for generation `n`, exactly one wins. The newest
//! generation rules. A holder that is gone (its lease ran out, or its process no longer runs
//! on this host) is replaced by creating generation `n + 1`; the old holder sees that before
//! it records progress and stops. The scope is `all`, or `shard-I-of-N` for `--shard I/N`:
//! shards of one split lock apart, and a live lock of an overlapping scope (a whole-topic
//! run, or a split into another N) refuses the run.

use crate::crash::crash_point;
use crate::plan::bounds::Shard;
use crate::sink::{Sink, SinkError};
use bytes::Bytes;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "topic {topic} (group {group}) is being exported by {owner} until {until}: this run leaves it alone. If that process is gone, its lock expires then (or delete {path})"
    )]
    Held {
        topic: String,
        group: String,
        owner: String,
        until: String,
        path: String,
    },
    #[error(
        "topic {topic} (group {group}): {owner} took over the lock ({path}), so this run stops before recording more progress; the files written so far are overwritten or extended by the next run"
    )]
    Lost {
        topic: String,
        group: String,
        owner: String,
        path: String,
    },
    #[error("lock {path} cannot be read: {reason}; delete it if no runner is exporting the topic")]
    Corrupt { path: String, reason: String },
    #[error(transparent)]
    Sink(#[from] SinkError),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Holder {
    owner: String,
    host: String,
    pid: u32,
    acquired_at: String,
    /// Milliseconds since the epoch; renewed while the run goes on.
    expires_at_ms: i64,
    released: bool,
}

/// Locks this process holds now, as `dir`; a lock file of this process that is not among
/// them was left by a run whose release failed (the store was down) and is stale.
static HELD: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn held() -> std::sync::MutexGuard<'static, BTreeMap<String, usize>> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Holder {
    fn live(&self, dir: &str) -> bool {
        let now = chrono::Utc::now().timestamp_millis();
        let here = self.host == host();
        let gone = here && !process_runs(self.pid);
        let left_by_us = here && self.pid == std::process::id() && !held().contains_key(dir);
        !self.released && now < self.expires_at_ms && !gone && !left_by_us
    }

    fn held(&self, topic: &str, group: &str, path: String) -> LockError {
        LockError::Held {
            topic: topic.to_string(),
            group: group.to_string(),
            owner: self.owner.clone(),
            until: self.until(),
            path,
        }
    }

    fn until(&self) -> String {
        chrono::DateTime::from_timestamp_millis(self.expires_at_ms)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }
}

pub struct TopicLock {
    sink: Arc<Sink>,
    group: String,
    topic: String,
    dir: String,
    generation: u64,
    holder: Holder,
    lease: Duration,
}

/// Takes the lock of `topic` (or of a shard of its partitions) under `group` for `lease`, or
/// says who holds it.
pub fn acquire(
    sink: &Arc<Sink>,
    group: &str,
    topic: &str,
    shard: Option<Shard>,
    lease: Duration,
) -> Result<TopicLock, LockError> {
    let topic_dir = format!("_runner/locks/{group}/{topic}");
    let scope = shard.map_or("all".to_string(), |s| {
        format!("shard-{}-of-{}", s.index, s.count)
    });
    let dir = format!("{topic_dir}/{scope}");
    for other in overlapping(sink, &topic_dir, shard)? {
        if let Some((_, holder, path)) = newest(sink, &other)?
            && holder.live(&other)
        {
            return Err(holder.held(topic, group, path));
        }
    }
    let mut last = None;
    // A lost race means another process just took it; one more look says by whom.
    for _ in 0..2 {
        let next = match newest(sink, &dir)? {
            Some((_, holder, path)) if holder.live(&dir) => {
                return Err(holder.held(topic, group, path));
            }
            Some((n, holder, _)) => {
                if !holder.released {
                    tracing::warn!(owner = %holder.owner, "taking over a stale lock");
                }
                n + 1
            }
            None => 1,
        };
        let holder = new_holder(lease);
        let body = serde_json::to_vec_pretty(&holder).unwrap_or_default();
        // A create whose answer was lost is refused on its retry: the file is then ours.
        let created = sink.put_new(&file(&dir, next), Bytes::from(body))?
            || matches!(newest(sink, &dir)?, Some((n, h, _)) if n == next && h == holder);
        if created {
            if next > 1 {
                crash_point!("lock-takeover");
            }
            tidy(sink, &dir, next);
            *held().entry(dir.clone()).or_default() += 1;
            return Ok(TopicLock {
                sink: sink.clone(),
                group: group.to_string(),
                topic: topic.to_string(),
                dir,
                generation: next,
                holder,
                lease,
            });
        }
        last = Some(next);
    }
    Err(LockError::Held {
        topic: topic.to_string(),
        group: group.to_string(),
        owner: "another runner".into(),
        until: "it finishes".into(),
        path: file(&dir, last.unwrap_or(1)).to_string(),
    })
}

impl TopicLock {
    /// Checks that no one took the lock over and extends the lease when a third of it has
    /// passed. Called before each progress record.
    pub fn confirm(&mut self) -> Result<(), LockError> {
        if let Some((n, holder, path)) = newest(&self.sink, &self.dir)?
            && n != self.generation
        {
            return Err(LockError::Lost {
                topic: self.topic.clone(),
                group: self.group.clone(),
                owner: holder.owner,
                path,
            });
        }
        let left = self.holder.expires_at_ms - chrono::Utc::now().timestamp_millis();
        if left < (self.lease.as_millis() as i64) * 2 / 3 {
            self.holder.expires_at_ms = expiry(self.lease);
            self.write()?;
        }
        Ok(())
    }

    fn write(&self) -> Result<(), LockError> {
        let body = serde_json::to_vec_pretty(&self.holder).unwrap_or_default();
        self.sink
            .put(&file(&self.dir, self.generation), Bytes::from(body))?;
        Ok(())
    }
}

impl Drop for TopicLock {
    /// Marks the lock released (kept, so generation numbers only grow).
    fn drop(&mut self) {
        {
            let mut held = held();
            if let Some(count) = held.get_mut(&self.dir) {
                *count -= 1;
                if *count == 0 {
                    held.remove(&self.dir);
                }
            }
        }
        self.holder.released = true;
        let ours =
            matches!(newest(&self.sink, &self.dir), Ok(Some((n, _, _))) if n == self.generation);
        if ours && let Err(e) = self.write() {
            tracing::warn!(error = %e, "cannot release the lock; it expires with its lease");
        }
    }
}

fn file(dir: &str, generation: u64) -> Path {
    Path::from(format!("{dir}/{generation:012}.json"))
}

/// Lock folders of other scopes of the topic whose partitions may overlap `shard`'s.
fn overlapping(
    sink: &Sink,
    topic_dir: &str,
    shard: Option<Shard>,
) -> Result<BTreeSet<String>, SinkError> {
    let mine = shard.map(|s| (s.index, s.count));
    let mut found = BTreeSet::new();
    for path in sink.list(&Path::from(topic_dir))? {
        let parts: Vec<String> = path.parts().map(|p| p.as_ref().to_string()).collect();
        let Some(scope) = parts.len().checked_sub(2).and_then(|i| parts.get(i)) else {
            continue;
        };
        let theirs = if scope == "all" {
            None
        } else {
            let Some((i, n)) = scope
                .strip_prefix("shard-")
                .and_then(|s| s.split_once("-of-"))
                .and_then(|(i, n)| Some((i.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
            else {
                continue;
            };
            Some((i, n))
        };
        let disjoint = matches!((mine, theirs), (Some((i, n)), Some((j, m))) if n == m && i != j);
        if theirs != mine && !disjoint {
            found.insert(format!("{topic_dir}/{scope}"));
        }
    }
    Ok(found)
}

/// The newest generation with its holder.
fn newest(sink: &Sink, dir: &str) -> Result<Option<(u64, Holder, String)>, LockError> {
    let Some((n, path)) = generations(sink, dir)?.pop() else {
        return Ok(None);
    };
    let corrupt = |reason: String| LockError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let Some(body) = sink.get(&path)? else {
        // Deleted by hand between listing and reading: as if it were released.
        return Ok(None);
    };
    let holder: Holder = serde_json::from_slice(&body).map_err(|e| corrupt(e.to_string()))?;
    Ok(Some((n, holder, path.to_string())))
}

/// Generation files, oldest first.
fn generations(sink: &Sink, dir: &str) -> Result<Vec<(u64, Path)>, SinkError> {
    let mut found: Vec<(u64, Path)> = sink
        .list(&Path::from(dir))?
        .into_iter()
        .filter_map(|p| {
            let n = p.filename()?.strip_suffix(".json")?.parse().ok()?;
            Some((n, p))
        })
        .collect();
    found.sort_by_key(|(n, _)| *n);
    Ok(found)
}

/// Deletes generations older than the one just taken; a failure only leaves files behind.
fn tidy(sink: &Sink, dir: &str, taken: u64) {
    if let Ok(all) = generations(sink, dir) {
        for (_, path) in all.iter().filter(|(n, _)| *n + 1 < taken) {
            let _ = sink.delete(path);
        }
    }
}

fn new_holder(lease: Duration) -> Holder {
    let host = host();
    let pid = std::process::id();
    Holder {
        owner: format!("{host} pid {pid}"),
        host,
        pid,
        acquired_at: chrono::Utc::now().to_rfc3339(),
        expires_at_ms: expiry(lease),
        released: false,
    }
}

fn expiry(lease: Duration) -> i64 {
    chrono::Utc::now().timestamp_millis() + lease.as_millis() as i64
}

/// The host name (the pod name in Kubernetes).
fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown-host".into())
}

/// Whether a process of this host runs with `pid` (Linux's /proc); true where that cannot
/// be told, so only the lease decides.
fn process_runs(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.exists() || proc.join(pid.to_string()).exists()
}
