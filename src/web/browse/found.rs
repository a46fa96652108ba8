//! A scan's matches so far, per partition, and which partitions can add nothing more: enough
//! matches of their own, read to the end, or past the `limit`-th match by timestamp.

use super::matcher::Hit;
use super::outcome::Stopped;
use crate::read::RawBatch;
use std::collections::{BTreeMap, BTreeSet};

/// The matches so far, per partition, and which partitions need no more.
pub(super) struct Found {
    limit: usize,
    backwards: bool,
    hits: BTreeMap<i32, Vec<Hit>>,
    /// The timestamp of the farthest record read (oldest backwards, newest forwards).
    frontier: BTreeMap<i32, i64>,
    /// Partitions read to the end of their range.
    pub(super) finished: BTreeSet<i32>,
    threshold: Option<i64>,
}

impl Found {
    pub(super) fn new(limit: usize, backwards: bool) -> Found {
        Found {
            limit,
            backwards,
            hits: BTreeMap::new(),
            frontier: BTreeMap::new(),
            finished: Default::default(),
            threshold: None,
        }
    }

    pub(super) fn add(&mut self, batch: &RawBatch, mut new: Vec<Hit>) {
        let p = batch.partition;
        if batch.last && !self.backwards {
            self.finished.insert(p);
        }
        let far = if self.backwards {
            batch.timestamps.iter().flatten().min()
        } else {
            batch.timestamps.iter().flatten().max()
        };
        if let Some(&far) = far {
            let at = self.frontier.entry(p).or_insert(far);
            *at = if self.backwards {
                (*at).min(far)
            } else {
                (*at).max(far)
            };
        }
        let hits = self.hits.entry(p).or_default();
        if self.backwards {
            // Windows arrive newest first, each in offset order: keep the newest `limit`.
            new.append(hits);
            new.sort_by_key(|h| h.message.offset);
            let drop = new.len().saturating_sub(self.limit);
            new.drain(..drop);
            *hits = new;
        } else {
            let room = self.limit.saturating_sub(hits.len());
            new.truncate(room);
            hits.extend(new);
        }
        self.threshold = self.nth_timestamp();
    }

    /// The `limit`-th best timestamp over every partition, once there are that many matches.
    fn nth_timestamp(&self) -> Option<i64> {
        let total: usize = self.hits.values().map(Vec::len).sum();
        if total < self.limit || self.limit == 0 {
            return None;
        }
        let mut times: Vec<i64> = self
            .hits
            .values()
            .flatten()
            .map(|h| h.message.timestamp.unwrap_or(i64::MIN))
            .collect();
        let n = self.limit - 1;
        if self.backwards {
            times.select_nth_unstable_by(n, |a, b| b.cmp(a));
        } else {
            times.select_nth_unstable(n);
        }
        Some(times[n])
    }

    /// Whether `p` can add nothing to the result.
    pub(super) fn satisfied(&self, p: i32) -> bool {
        if self.finished.contains(&p) || self.hits.get(&p).is_some_and(|h| h.len() >= self.limit) {
            return true;
        }
        match (self.threshold, self.frontier.get(&p)) {
            (Some(t), Some(&far)) if self.backwards => far < t,
            (Some(t), Some(&far)) => far > t,
            _ => false,
        }
    }

    pub(super) fn enough<'a>(&self, mut partitions: impl Iterator<Item = &'a i32>) -> bool {
        partitions.all(|p| self.satisfied(*p))
    }

    /// Why a scan with every partition satisfied ended: each read to its end, or enough.
    pub(super) fn end_or_limit<'a>(
        &self,
        mut partitions: impl Iterator<Item = &'a i32>,
    ) -> Stopped {
        if partitions.all(|p| self.finished.contains(p)) {
            Stopped::End
        } else {
            Stopped::Limit
        }
    }

    pub(super) fn into_hits(self) -> Vec<Hit> {
        self.hits.into_values().flatten().collect()
    }
}
