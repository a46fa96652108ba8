//! `path_template`: the folder of each output file, e.g.
//! `{topic}/date={yyyy}-{MM}-{dd}/hour={HH}` (record time, UTC) or `{topic}/country={field:country}`.

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Topic,
    Partition,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    /// A top-level column of the decoded record.
    Field(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pieces: Vec<Piece>,
}

pub const DEFAULT_TEMPLATE: &str = "{topic}/partition={partition}";

const PLACEHOLDERS: &str =
    "{topic}, {partition}, {yyyy}, {MM}, {dd}, {HH}, {mm} (record time, UTC) and {field:<column>}";

impl Default for PathTemplate {
    fn default() -> Self {
        PathTemplate::parse(DEFAULT_TEMPLATE).unwrap_or(PathTemplate {
            pieces: vec![Piece::Topic],
        })
    }
}

impl PathTemplate {
    pub fn parse(text: &str) -> Result<PathTemplate, String> {
        let trimmed = text.trim_matches('/');
        if trimmed.is_empty() {
            return Err(format!("is empty; use for example \"{DEFAULT_TEMPLATE}\""));
        }
        for segment in trimmed.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(format!(
                    "\"{text}\" has an empty, `.` or `..` folder; remove it"
                ));
            }
        }
        let mut pieces = Vec::new();
        let mut rest = trimmed;
        while !rest.is_empty() {
            let Some(open) = rest.find(['{', '}']) else {
                pieces.push(Piece::Text(rest.to_string()));
                break;
            };
            if rest[open..].starts_with('}') {
                return Err(format!("\"{text}\" has a `}}` without `{{`"));
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("\"{text}\" has a `{{` without `}}`"));
            };
            let name = &rest[open + 1..open + close];
            pieces.push(
                placeholder(name).ok_or_else(|| {
                    format!("{{{name}}} is not a placeholder; use {PLACEHOLDERS}")
                })?,
            );
            rest = &rest[open + close + 1..];
        }
        Ok(PathTemplate { pieces })
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// True when the folder depends on each record (time or field), not only on the partition.
    pub fn per_record(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| !matches!(p, Piece::Text(_) | Piece::Topic | Piece::Partition))
    }
}

fn placeholder(name: &str) -> Option<Piece> {
    Some(match name {
        "topic" => Piece::Topic,
        "partition" => Piece::Partition,
        "yyyy" => Piece::Year,
        "MM" => Piece::Month,
        "dd" => Piece::Day,
        "HH" => Piece::Hour,
        "mm" => Piece::Minute,
        _ => {
            let column = name.strip_prefix("field:")?.trim();
            if column.is_empty() {
                return None;
            }
            Piece::Field(column.to_string())
        }
    })
}

impl<'de> Deserialize<'de> for PathTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PathTemplate::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_time_and_field_placeholders() {
        let t = PathTemplate::parse("/{topic}/date={yyyy}-{MM}-{dd}/c={field:country}/").unwrap();
        assert!(t.per_record());
        assert_eq!(t.pieces()[0], Piece::Topic);
        assert_eq!(t.pieces()[1], Piece::Text("/date=".into()));
        assert_eq!(t.pieces()[8], Piece::Field("country".into()));
        assert!(!PathTemplate::default().per_record());
    }

    #[test]
    fn rejects_what_cannot_make_a_path() {
        for (bad, says) in [
            ("{topc}/x", "{topc} is not a placeholder"),
            ("{topic/x", "without `}`"),
            ("a}b", "without `{`"),
            ("a//b", "empty"),
            ("a/../b", "`..`"),
            ("", "is empty"),
            ("{field:}", "not a placeholder"),
        ] {
            let e = PathTemplate::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
