//! Progress records: per topic and group, the next offset to read of each partition, kept in
//! the sink beside the data (so they outlive Kafka's offset retention) and written only after
//! the files they point past are durable.
//!
//! Every save is a compare-and-swap against the version last read (an ETag on object
//! stores), so two writers cannot both advance a partition: when the record changed under a
//! run, it takes the other writer's partitions and keeps its own, unless the other writer
//! moved one of its own; then it stops. Shards of one topic share the record this way.

use crate::crash::crash_point;
use crate::sink::{Sink, SinkError, Version};
use crate::write::{Sealed, WrittenFile};
use object_store::path::{Path, PathPart};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(
        "progress record {path} is unreadable ({reason}); restore it, or delete it to restart from the group's committed offset"
    )]
    Corrupt { path: String, reason: String },
    #[error(
        "topic {topic} (group {group}) partition {partition}: another run recorded progress (next offset {theirs}) while this run exported the partition, so this run stops without recording; the run that goes on rewrites or extends its files. Check that one process exports a topic at a time"
    )]
    Conflict {
        topic: String,
        group: String,
        partition: i32,
        theirs: i64,
    },
    #[error(
        "progress record {path} changed under every one of 8 attempts to save it; too many processes export this topic at once"
    )]
    Contended { path: String },
    #[error(
        "topic {topic} partition {partition}: the claim on a segment's files ran out before they were committed (a stall of over {seconds}s); they are dropped and the partition's next owner writes them again"
    )]
    ClaimExpired {
        topic: String,
        partition: i32,
        seconds: u64,
    },
    #[error(
        "topic {topic} partition {partition}: another member claimed a segment of this partition until {until} (it owned the partition before and is still committing); this member starts the partition again from the recorded progress once that claim ends"
    )]
    Claimed {
        topic: String,
        partition: i32,
        until: String,
    },
}

/// A segment whose files are visible and recorded: the partition is covered up to
/// `next_offset`.
#[derive(Debug)]
pub struct Committed {
    pub partition: i32,
    pub next_offset: i64,
    pub files: Vec<WrittenFile>,
}

/// How long a continuous member's claim on a segment's pending files holds. Committing a
/// segment takes seconds; a member stalled this long may have been replaced.
pub const CLAIM: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionProgress {
    pub next_offset: i64,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_file: Option<String>,
    /// Files of a segment being committed; a run that finds any deletes them first, since
    /// the segment after `next_offset` will be written again (perhaps split differently).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// A continuous member's claim on its pending files holds until then (RFC 3339): it
    /// commits none after, and a new owner of the partition deletes them only after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_until: Option<String>,
    /// Which member holds the claim: a member clears its own claim without waiting for it
    /// to run out, and never the files of another's live claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_owner: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicProgress {
    pub topic: String,
    pub group_id: String,
    pub partitions: BTreeMap<i32, PartitionProgress>,
}

/// The progress record of one topic and group, loaded once and saved after each advance.
pub struct Progress {
    sink: Arc<Sink>,
    path: Path,
    state: TopicProgress,
    /// The record as last read or written, which a save expects to replace.
    base: TopicProgress,
    version: Option<Version>,
    /// Partitions this run has moved: only these are its to write.
    touched: BTreeSet<i32>,
    /// False for a backfill that leaves progress alone: files are committed, nothing recorded.
    recording: bool,
    /// Continuous members share partitions over time: every segment is claimed (recorded as
    /// pending, compare-and-swap) before any of its files becomes visible.
    claims: bool,
    /// This instance's name in the claims it makes.
    owner: String,
    /// Saves made, for the tests of grouped commits.
    #[cfg(test)]
    saves: usize,
}

/// `_runner/progress/<group>/<topic>.json`; the group is escaped as a path segment.
pub fn progress_path(group_id: &str, topic: &str) -> Path {
    Path::from_iter([
        PathPart::from("_runner"),
        PathPart::from("progress"),
        PathPart::from(group_id),
        PathPart::from(format!("{topic}.json")),
    ])
}

impl Progress {
    pub fn load(sink: Arc<Sink>, group_id: &str, topic: &str) -> Result<Self, ProgressError> {
        let path = progress_path(group_id, topic);
        let (state, version) = read(&sink, &path, group_id, topic)?;
        Ok(Progress {
            sink,
            path,
            base: state.clone(),
            state,
            version,
            touched: BTreeSet::new(),
            recording: true,
            claims: false,
            owner: uuid::Uuid::new_v4().to_string(),
            #[cfg(test)]
            saves: 0,
        })
    }

    /// Claims every segment before committing it (continuous members, see `claims`).
    pub fn claim_segments(&mut self) {
        self.claims = true;
    }

    /// Re-reads the record for partitions another member may have moved, keeping this
    /// member's own; fails if one of those was moved by someone else.
    pub fn refresh(&mut self) -> Result<(), ProgressError> {
        self.merge_latest().map(|_| ())
    }

    /// Lets go of a partition: its entry is no longer this member's to write.
    pub fn release(&mut self, partition: i32) {
        self.touched.remove(&partition);
    }

    /// A live claim of another member on `partition`: when it runs out.
    pub fn claimed_until(&self, partition: i32) -> Option<chrono::DateTime<chrono::Utc>> {
        let entry = self.state.partitions.get(&partition)?;
        if entry.pending_owner.as_deref() == Some(self.owner.as_str()) {
            return None;
        }
        live_claim(entry)
    }

    /// Stops recording: commits make files visible but never move the record.
    pub fn detach(&mut self) {
        self.recording = false;
    }

    /// Next offset per partition, as recorded.
    pub fn offsets(&self) -> BTreeMap<i32, i64> {
        self.state
            .partitions
            .iter()
            .map(|(p, s)| (*p, s.next_offset))
            .collect()
    }

    pub fn state(&self) -> &TopicProgress {
        &self.state
    }

    /// Deletes the files of a segment whose commit a previous run did not finish, as the
    /// stored record lists them: what this run holds in memory for `partitions` may be a
    /// claim the store refused, whose file names another member has since used. Only
    /// `partitions` (this run's): another shard may be committing its own right now. A live
    /// claim of another member is left alone (its new owner waits it out, `claimed_until`);
    /// an expired one is taken over first, so no two members clean up one segment.
    pub fn recover(&mut self, partitions: &[i32]) -> Result<(), ProgressError> {
        for p in partitions {
            self.touched.remove(p);
        }
        self.merge_latest()?;
        for &partition in partitions {
            let Some(entry) = self.state.partitions.get(&partition) else {
                continue;
            };
            if entry.pending.is_empty() || self.claimed_until(partition).is_some() {
                continue;
            }
            self.touched.insert(partition);
            let until = self
                .claims
                .then(|| self.take_claim(partition))
                .transpose()?;
            let files = self
                .state
                .partitions
                .get(&partition)
                .map(|e| e.pending.clone());
            for file in files.unwrap_or_default() {
                self.check_claim(partition, until)?;
                let path = Path::parse(&file).map_err(|e| ProgressError::Corrupt {
                    path: self.path.to_string(),
                    reason: format!("pending file {file}: {e}"),
                })?;
                tracing::info!(partition, path = %file, "removing a file of an unfinished commit");
                self.sink.delete(&path)?;
            }
            if let Some(entry) = self.state.partitions.get_mut(&partition) {
                clear_pending(entry);
            }
            self.save()?;
        }
        Ok(())
    }

    /// Makes the pending segment of `partition` this member's (its own live claim stays as
    /// it is); the compare-and-swap fails if another member changed the entry since.
    fn take_claim(
        &mut self,
        partition: i32,
    ) -> Result<chrono::DateTime<chrono::Utc>, ProgressError> {
        let Some(entry) = self.state.partitions.get_mut(&partition) else {
            return Ok(chrono::Utc::now() + CLAIM);
        };
        if entry.pending_owner.as_deref() == Some(self.owner.as_str())
            && let Some(until) = live_claim(entry)
        {
            return Ok(until);
        }
        let until = chrono::Utc::now() + CLAIM;
        entry.pending_until = Some(until.to_rfc3339());
        entry.pending_owner = Some(self.owner.clone());
        self.save()?;
        Ok(until)
    }

    /// Fails once a claim (`None` for a run without claims) ran out: past it, another member
    /// may own the partition and its files.
    fn check_claim(
        &self,
        partition: i32,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), ProgressError> {
        match until {
            Some(until) if chrono::Utc::now() >= until => Err(ProgressError::ClaimExpired {
                topic: self.state.topic.clone(),
                partition,
                seconds: CLAIM.as_secs(),
            }),
            _ => Ok(()),
        }
    }

    /// Commits a sealed segment: its files become visible, then progress moves past them and
    /// is saved atomically. A segment of several files is first recorded as pending, so a
    /// crash between two files cannot leave one behind that a rerun would not overwrite.
    pub fn commit(&mut self, sealed: Sealed) -> Result<Vec<WrittenFile>, ProgressError> {
        let committed = self.commit_all(vec![sealed])?;
        Ok(committed.into_iter().flat_map(|c| c.files).collect())
    }

    /// Commits sealed segments as `commit` does, with one save for a group of them instead
    /// of one each: the record holds every partition of the topic, so a save per segment
    /// made a run over many small partitions quadratic. A group holds at most one segment
    /// per partition (a second starts the next group), so a crash still leaves at most one
    /// visible segment per partition past its recorded offset, which a rerun rewrites under
    /// the same name.
    pub fn commit_all(&mut self, sealed: Vec<Sealed>) -> Result<Vec<Committed>, ProgressError> {
        let mut committed = Vec::with_capacity(sealed.len());
        let mut group: Vec<Sealed> = Vec::new();
        for segment in sealed {
            if group.iter().any(|s| s.partition == segment.partition) {
                committed.extend(self.commit_group(std::mem::take(&mut group))?);
            }
            group.push(segment);
        }
        committed.extend(self.commit_group(group)?);
        Ok(committed)
    }

    /// Commits segments of distinct partitions: pending files recorded first where a segment
    /// has several (or is claimed), then every file made visible, then one save.
    fn commit_group(&mut self, group: Vec<Sealed>) -> Result<Vec<Committed>, ProgressError> {
        if group.is_empty() {
            return Ok(Vec::new());
        }
        if !self.recording {
            let mut committed = Vec::with_capacity(group.len());
            for segment in group {
                let files = segment.files.into_iter().map(|f| f.commit(&self.sink));
                committed.push(Committed {
                    partition: segment.partition,
                    next_offset: segment.next_offset,
                    files: files.collect::<Result<_, _>>()?,
                });
            }
            return Ok(committed);
        }
        for segment in &group {
            if self.claims
                && let Some(until) = self.claimed_until(segment.partition)
            {
                // Claiming over it would let two members publish files of one name.
                return Err(ProgressError::Claimed {
                    topic: self.state.topic.clone(),
                    partition: segment.partition,
                    until: until.to_rfc3339(),
                });
            }
        }
        let until = chrono::Utc::now() + CLAIM;
        let mut claims = Vec::with_capacity(group.len());
        let mut pending = false;
        for segment in &group {
            self.touched.insert(segment.partition);
            let entry = self
                .state
                .partitions
                .entry(segment.partition)
                .or_insert_with(|| PartitionProgress {
                    next_offset: segment.start,
                    ..PartitionProgress::default()
                });
            let claimed = self.claims && !segment.files.is_empty();
            if segment.files.len() > 1 || claimed {
                entry.pending = segment.files.iter().map(|f| f.path.to_string()).collect();
                entry.pending_until = claimed.then(|| until.to_rfc3339());
                entry.pending_owner = claimed.then(|| self.owner.clone());
                pending = true;
            }
            claims.push(claimed.then_some(until));
        }
        if pending {
            self.save()?;
            crash_point!("progress-pending-saved");
        }
        let mut committed = Vec::with_capacity(group.len());
        for (segment, until) in group.into_iter().zip(claims) {
            let partition = segment.partition;
            let mut written = Vec::with_capacity(segment.files.len());
            for file in segment.files {
                self.check_claim(partition, until)?;
                written.push(file.commit(&self.sink)?);
                crash_point!("file-visible");
            }
            let entry = self.state.partitions.entry(partition).or_default();
            entry.next_offset = segment.next_offset;
            entry.updated_at = chrono::Utc::now().to_rfc3339();
            clear_pending(entry);
            if let Some(file) = written.last() {
                entry.last_file = Some(file.path.clone());
            }
            committed.push(Committed {
                partition,
                next_offset: segment.next_offset,
                files: written,
            });
        }
        self.save()?;
        // The group commit that mirrors progress comes after this.
        crash_point!("progress-saved");
        Ok(committed)
    }

    fn save(&mut self) -> Result<(), ProgressError> {
        // Each retry follows another writer's save; a handful means something is wrong.
        for _ in 0..8 {
            let json =
                serde_json::to_vec_pretty(&self.state).map_err(|e| ProgressError::Corrupt {
                    path: self.path.to_string(),
                    reason: e.to_string(),
                })?;
            let expected = self.version.as_ref();
            if let Some(version) = self.sink.put_if(&self.path, json.into(), expected)? {
                #[cfg(test)]
                {
                    self.saves += 1;
                }
                self.version = Some(version);
                self.base = self.state.clone();
                return Ok(());
            }
            if self.merge_latest()? {
                return Ok(());
            }
        }
        Err(ProgressError::Contended {
            path: format!("{}/{}", self.sink.url(), self.path),
        })
    }

    /// Takes the record another writer saved, keeping this run's partitions, or fails if
    /// that writer moved one of them. True when the stored record already holds this run's
    /// partitions as they are to be saved: the save had landed and its answer was lost, so
    /// the store's retry found its own write and refused it.
    fn merge_latest(&mut self) -> Result<bool, ProgressError> {
        let (latest, version) = read(
            &self.sink,
            &self.path,
            &self.state.group_id,
            &self.state.topic,
        )?;
        let landed = self
            .touched
            .iter()
            .all(|p| latest.partitions.get(p) == self.state.partitions.get(p));
        if landed && !self.touched.is_empty() {
            self.state = latest.clone();
            self.base = latest;
            self.version = version;
            return Ok(true);
        }
        let mut merged = latest.clone();
        for p in &self.touched {
            let theirs = latest.partitions.get(p);
            if theirs != self.base.partitions.get(p) {
                return Err(ProgressError::Conflict {
                    topic: self.state.topic.clone(),
                    group: self.state.group_id.clone(),
                    partition: *p,
                    theirs: theirs.map_or(-1, |t| t.next_offset),
                });
            }
            if let Some(ours) = self.state.partitions.get(p) {
                merged.partitions.insert(*p, ours.clone());
            }
        }
        self.state = merged;
        self.base = latest;
        self.version = version;
        Ok(false)
    }
}

/// When a claim on pending files runs out, if it has not yet.
fn live_claim(entry: &PartitionProgress) -> Option<chrono::DateTime<chrono::Utc>> {
    if entry.pending.is_empty() {
        return None;
    }
    let until = chrono::DateTime::parse_from_rfc3339(entry.pending_until.as_deref()?).ok()?;
    let until = until.with_timezone(&chrono::Utc);
    (until > chrono::Utc::now()).then_some(until)
}

fn clear_pending(entry: &mut PartitionProgress) {
    entry.pending.clear();
    entry.pending_until = None;
    entry.pending_owner = None;
}

#[cfg(test)]
mod tests;

fn read(
    sink: &Sink,
    path: &Path,
    group_id: &str,
    topic: &str,
) -> Result<(TopicProgress, Option<Version>), ProgressError> {
    match sink.get_versioned(path)? {
        None => Ok((
            TopicProgress {
                topic: topic.to_string(),
                group_id: group_id.to_string(),
                partitions: BTreeMap::new(),
            },
            None,
        )),
        Some((bytes, version)) => serde_json::from_slice(&bytes)
            .map(|state| (state, Some(version)))
            .map_err(|e| ProgressError::Corrupt {
                path: format!("{}/{path}", sink.url()),
                reason: e.to_string(),
            }),
    }
}
