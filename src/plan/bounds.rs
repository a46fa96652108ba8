//! Backfill bounds for `runner once --topic T --from X --to Y`, in the grammar kcat users
//! know: `beginning`, `end`, `stored`, an offset, `-N` (N before the end), `s@<ms>` /
//! `e@<ms>` or an RFC 3339 time (the first offset whose timestamp is at or after it), each
//! for every partition or, as `P=X`, for partition P.

use std::collections::BTreeMap;

/// One position in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Beginning,
    End,
    /// Recorded progress, else the group's committed offset, else the log start.
    Stored,
    Offset(i64),
    /// N offsets before the end.
    FromEnd(i64),
    /// The first offset whose timestamp is at or after these milliseconds since the epoch.
    Time(i64),
}

/// A bound for every partition, with per-partition overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bound {
    pub all: Option<Position>,
    pub partitions: BTreeMap<i32, Position>,
}

impl Bound {
    /// The partition's position; `None` when the bound names other partitions only.
    pub fn get(&self, partition: i32) -> Option<Position> {
        self.partitions.get(&partition).copied().or(self.all)
    }

    pub fn is_set(&self) -> bool {
        self.all.is_some() || !self.partitions.is_empty()
    }

    /// Parses the values of a repeatable flag: `X` for all partitions, `P=X` for one.
    pub fn parse(values: &[String], flag: &str) -> Result<Bound, String> {
        let mut bound = Bound::default();
        for value in values {
            match value.split_once('=') {
                Some((p, spec)) => {
                    let partition: i32 =
                        p.trim().parse().ok().filter(|p| *p >= 0).ok_or_else(|| {
                            format!("{flag} {value}: \"{p}\" is not a partition number")
                        })?;
                    let position = Position::parse(spec, flag)?;
                    if bound.partitions.insert(partition, position).is_some() {
                        return Err(format!("{flag} names partition {partition} twice"));
                    }
                }
                None if bound.all.is_some() => {
                    return Err(format!(
                        "{flag} is given twice for every partition; use P=X for one partition"
                    ));
                }
                None => bound.all = Some(Position::parse(value, flag)?),
            }
        }
        Ok(bound)
    }

    /// Every timestamp the bound looks up.
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        self.all
            .iter()
            .chain(self.partitions.values())
            .filter_map(|p| match p {
                Position::Time(ms) => Some(*ms),
                _ => None,
            })
    }
}

impl Position {
    pub fn parse(text: &str, flag: &str) -> Result<Position, String> {
        let text = text.trim();
        let bad = |why: &str| {
            format!(
                "{flag} {text}: {why}. Use beginning, end, stored, an offset, -N, s@<ms>, e@<ms> or a time like 2026-11-01T00:00:00Z"
            )
        };
        match text {
            "beginning" | "earliest" => return Ok(Position::Beginning),
            "end" | "latest" => return Ok(Position::End),
            "stored" => return Ok(Position::Stored),
            _ => {}
        }
        if let Some(ms) = text.strip_prefix("s@").or_else(|| text.strip_prefix("e@")) {
            return ms
                .parse::<i64>()
                .ok()
                .filter(|ms| *ms >= 0)
                .map(Position::Time)
                .ok_or_else(|| bad("the part after @ must be milliseconds since the epoch"));
        }
        if let Some(n) = text.strip_prefix('-') {
            return n
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Position::FromEnd)
                .ok_or_else(|| bad("-N needs a positive count"));
        }
        if let Ok(offset) = text.parse::<i64>() {
            return Ok(Position::Offset(offset));
        }
        parse_time(text)
            .map(Position::Time)
            .ok_or_else(|| bad("not a position"))
    }
}

/// Milliseconds since the epoch of an RFC 3339 time, or of a date (its midnight in UTC).
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// The bounds of a backfill, and whether it moves the recorded progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backfill {
    pub from: Bound,
    pub to: Bound,
    /// Move the recorded progress (and the group's offsets) as a regular run does.
    pub record_progress: bool,
}

impl Backfill {
    pub fn times(&self) -> Vec<i64> {
        let mut all: Vec<i64> = self.from.times().chain(self.to.times()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// A part of the partitions: partition p of topic t belongs to shard
/// `(p + hash(t)) mod count`, so every pod computes the same split without talking to the
/// others, and topics with fewer partitions than shards still spread over the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {text}: expected I/N with 0 <= I < N, like 0/4");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn owns(&self, topic: &str, partition: i32) -> bool {
        let spread = fnv1a(topic.as_bytes()) % u64::from(self.count);
        (partition as u64 + spread) % u64::from(self.count) == u64::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a: stable across versions and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_as_kcat_spells_them() {
        let p = |s: &str| Position::parse(s, "--from").unwrap();
        assert_eq!(p("beginning"), Position::Beginning);
        assert_eq!(p("end"), Position::End);
        assert_eq!(p("stored"), Position::Stored);
        assert_eq!(p("1200"), Position::Offset(1200));
        assert_eq!(p("-50"), Position::FromEnd(50));
        assert_eq!(p("s@1700000000000"), Position::Time(1_700_000_000_000));
        assert_eq!(p("e@5"), Position::Time(5));
        assert_eq!(p("2023-11-14T22:13:20Z"), Position::Time(1_700_000_000_000));
        assert_eq!(p("2023-11-15"), Position::Time(1_700_006_400_000));
        let err = Position::parse("yesterday", "--from").unwrap_err();
        assert!(
            err.contains("--from yesterday") && err.contains("s@<ms>"),
            "{err}"
        );
        assert!(Position::parse("-0", "--to").is_err());
        assert!(Position::parse("s@x", "--from").is_err());
    }

    #[test]
    fn bounds_take_one_default_and_per_partition_overrides() {
        let values = ["beginning".to_string(), "2=-10".to_string()];
        let b = Bound::parse(&values, "--from").unwrap();
        assert_eq!(b.get(0), Some(Position::Beginning));
        assert_eq!(b.get(2), Some(Position::FromEnd(10)));
        let only = Bound::parse(&["1=5".to_string()], "--to").unwrap();
        assert_eq!(
            (only.get(0), only.get(1)),
            (None, Some(Position::Offset(5)))
        );
        assert!(Bound::parse(&["1=5".into(), "1=6".into()], "--to").is_err());
        assert!(Bound::parse(&["end".into(), "end".into()], "--to").is_err());
        assert!(Bound::parse(&["x=5".into()], "--to").is_err());
    }

    #[test]
    fn shards_split_every_partition_exactly_once() {
        for count in 1..=5u32 {
            for topic in ["orders", "payments", "t"] {
                for partition in 0..12 {
                    let owners = (0..count)
                        .filter(|&index| Shard { index, count }.owns(topic, partition))
                        .count();
                    assert_eq!(owners, 1, "{topic}/{partition} over {count} shards");
                }
            }
        }
        assert_eq!(Shard::parse("1/2"), Ok(Shard { index: 1, count: 2 }));
        assert!(Shard::parse("2/2").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("1").is_err());
    }
}
