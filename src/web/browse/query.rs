//! A browse query as it lives in the URL: every field a plain parameter, so a link reproduces
//! the view. Parsed by hand (not serde) to accept the repeated `partition` of a multi-select
//! and to name the field that is wrong.

use crate::expr::Expr;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Results shown or downloaded at most, whatever the query asks.
pub const MAX_LIMIT: usize = 100_000;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("query field `{field}`: {reason}")]
pub struct QueryError {
    pub field: &'static str,
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> QueryError {
    QueryError {
        field,
        reason: reason.into(),
    }
}

/// Where reading starts and which way it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// The first records of each partition.
    Oldest,
    /// The last records before the end of each partition.
    Newest,
    /// From `offset` on.
    FromOffset(i64),
    /// The last records before `offset` (exclusive).
    ToOffset(i64),
    /// From the first record at or after a time on.
    Since(i64),
    /// The last records before a time.
    Until(i64),
    /// New records as they arrive, until the time cap or a cancel.
    Tail,
}

impl Seek {
    pub fn name(self) -> &'static str {
        match self {
            Seek::Oldest => "oldest",
            Seek::Newest => "newest",
            Seek::FromOffset(_) => "from_offset",
            Seek::ToOffset(_) => "to_offset",
            Seek::Since(_) => "since",
            Seek::Until(_) => "until",
            Seek::Tail => "tail",
        }
    }

    /// Reads backwards from an end (the newest matching records are wanted).
    pub fn backwards(self) -> bool {
        matches!(self, Seek::Newest | Seek::ToOffset(_) | Seek::Until(_))
    }
}

/// How a text filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    Equals,
    NotContains,
}

impl TextOp {
    fn parse(field: &'static str, s: &str) -> Result<TextOp, QueryError> {
        match s {
            "" | "contains" => Ok(TextOp::Contains),
            "equals" => Ok(TextOp::Equals),
            "not_contains" => Ok(TextOp::NotContains),
            other => Err(bad(
                field,
                format!("`{other}` is not one of contains, equals, not_contains"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TextOp::Contains => "contains",
            TextOp::Equals => "equals",
            TextOp::NotContains => "not_contains",
        }
    }

    pub fn matches(self, text: Option<&str>, wanted: &str) -> bool {
        match (self, text) {
            (TextOp::Contains, Some(t)) => t.contains(wanted),
            (TextOp::Equals, Some(t)) => t == wanted,
            (TextOp::NotContains, Some(t)) => !t.contains(wanted),
            (TextOp::NotContains, None) => true,
            (_, None) => false,
        }
    }
}

/// How bytes that are not decoded (raw topics, records that fail to decode) are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RawAs {
    #[default]
    Utf8,
    Base64,
    Hex,
}

impl RawAs {
    pub fn name(self) -> &'static str {
        match self {
            RawAs::Utf8 => "utf8",
            RawAs::Base64 => "base64",
            RawAs::Hex => "hex",
        }
    }

    pub fn show(self, bytes: &[u8]) -> String {
        use base64::Engine;
        match self {
            RawAs::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            RawAs::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
            RawAs::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextFilter {
    pub op: TextOp,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Query {
    pub topic: String,
    /// Empty: every partition.
    pub partitions: BTreeSet<i32>,
    pub seek: Seek,
    pub limit: usize,
    pub key: Option<TextFilter>,
    pub value: Option<TextFilter>,
    /// A header's name, and a filter on its value (`None`: the header is present).
    pub header: Option<(String, Option<TextFilter>)>,
    pub expr: Option<Expr>,
    pub raw: RawAs,
    /// Records read at most, over all partitions.
    pub max_scan: u64,
    pub max_seconds: u64,
    /// IANA zone times are also shown in; UTC always.
    pub zone: Option<chrono_tz::Tz>,
}

/// Caps the server allows whatever a query asks.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_scan: u64,
    pub max_seconds: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_scan: 10_000_000,
            max_seconds: 300,
        }
    }
}

impl Query {
    pub fn has_filter(&self) -> bool {
        self.key.is_some() || self.value.is_some() || self.header.is_some() || self.expr.is_some()
    }

    /// Parses `a=b&c=d` (the URL's query); `topic` may come from the path instead.
    pub fn parse(query: &str, topic: Option<&str>, caps: Caps) -> Result<Query, QueryError> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
        };
        let int = |field: &'static str| -> Result<Option<i64>, QueryError> {
            get(field)
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| bad(field, format!("`{v}` is not a whole number")))
                })
                .transpose()
        };
        let topic = match topic.map(str::to_string).or_else(|| get("topic")) {
            Some(t) => t,
            None => return Err(bad("topic", "pick a topic")),
        };
        let mut partitions = BTreeSet::new();
        for (k, v) in &pairs {
            if k != "partition" && k != "partitions" {
                continue;
            }
            for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let p = part
                    .parse::<i32>()
                    .ok()
                    .filter(|p| *p >= 0)
                    .ok_or_else(|| bad("partition", format!("`{part}` is not a partition")))?;
                partitions.insert(p);
            }
        }
        let offset = int("offset")?;
        let time = get("time").map(|t| parse_time(&t)).transpose()?;
        let need_offset = || offset.ok_or_else(|| bad("offset", "give an offset for this seek"));
        let need_time = || time.ok_or_else(|| bad("time", "give a time for this seek"));
        let seek = match get("seek").as_deref().unwrap_or("newest") {
            "oldest" => Seek::Oldest,
            "newest" => Seek::Newest,
            "from_offset" => Seek::FromOffset(need_offset()?),
            "to_offset" => Seek::ToOffset(need_offset()?),
            "since" => Seek::Since(need_time()?),
            "until" => Seek::Until(need_time()?),
            "tail" => Seek::Tail,
            other => {
                return Err(bad(
                    "seek",
                    format!(
                        "`{other}` is not one of oldest, newest, from_offset, to_offset, since, until, tail"
                    ),
                ));
            }
        };
        let limit = match int("limit")? {
            None => 50,
            Some(n) if n >= 1 && n as usize <= MAX_LIMIT => n as usize,
            Some(n) => return Err(bad("limit", format!("{n} is not within 1..={MAX_LIMIT}"))),
        };
        let text = |field: &'static str, op_field: &'static str| -> Result<_, QueryError> {
            get(field)
                .map(|text| {
                    Ok(TextFilter {
                        op: TextOp::parse(op_field, get(op_field).as_deref().unwrap_or(""))?,
                        text,
                    })
                })
                .transpose()
        };
        let header = match get("header") {
            Some(name) => Some((name, text("header_value", "header_op")?)),
            None => None,
        };
        let expr = get("expr")
            .map(|e| Expr::compile(&e).map_err(|err| bad("expr", err.to_string())))
            .transpose()?;
        let raw = match get("raw").as_deref() {
            None | Some("utf8") => RawAs::Utf8,
            Some("base64") => RawAs::Base64,
            Some("hex") => RawAs::Hex,
            Some(other) => {
                return Err(bad(
                    "raw",
                    format!("`{other}` is not one of utf8, base64, hex"),
                ));
            }
        };
        let capped = |field: &'static str, default: u64, most: u64| -> Result<u64, QueryError> {
            match int(field)? {
                None => Ok(default.min(most)),
                Some(n) if n >= 1 && n as u64 <= most => Ok(n as u64),
                Some(n) => Err(bad(
                    field,
                    format!("{n} is not within 1..={most} (the server's cap)"),
                )),
            }
        };
        let zone = get("tz")
            .map(|z| {
                z.parse::<chrono_tz::Tz>()
                    .map_err(|_| bad("tz", format!("`{z}` is not an IANA time zone")))
            })
            .transpose()?;
        Ok(Query {
            topic,
            partitions,
            seek,
            limit,
            key: text("key", "key_op")?,
            value: text("value", "value_op")?,
            header,
            expr,
            raw,
            max_scan: capped("max_scan", 1_000_000, caps.max_scan)?,
            max_seconds: capped("max_seconds", 30, caps.max_seconds)?,
            zone,
        })
    }
}

/// Milliseconds since the epoch of an RFC 3339 time (`2026-12-01T10:00:00Z`), a time without
/// zone (read as UTC), or a bare date.
pub fn parse_time(text: &str) -> Result<i64, QueryError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    Err(bad(
        "time",
        format!("`{text}` is not a time; write it as 2026-12-01T10:00:00Z"),
    ))
}

/// A time in UTC ISO-8601, with milliseconds.
pub fn utc(millis: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The same time in `zone`.
pub fn zoned(millis: i64, zone: chrono_tz::Tz) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(millis).map(|t| {
        t.with_timezone(&zone)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Query, QueryError> {
        Query::parse(q, None, Caps::default())
    }

    #[test]
    fn defaults_and_partitions() {
        let q = parse("topic=orders&partition=0&partition=2&partitions=3,4").unwrap();
        assert_eq!(q.topic, "orders");
        assert_eq!(
            q.partitions.iter().copied().collect::<Vec<_>>(),
            [0, 2, 3, 4]
        );
        assert_eq!(q.seek, Seek::Newest);
        assert_eq!(q.limit, 50);
        assert!(!q.has_filter());
    }

    #[test]
    fn seeks_need_their_field() {
        assert_eq!(
            parse("topic=t&seek=from_offset").unwrap_err().field,
            "offset"
        );
        assert_eq!(parse("topic=t&seek=since").unwrap_err().field, "time");
        assert_eq!(
            parse("topic=t&seek=since&time=2026-12-01T10:00:00Z")
                .unwrap()
                .seek,
            Seek::Since(1_796_119_200_000)
        );
        assert_eq!(parse("topic=t&seek=sideways").unwrap_err().field, "seek");
        assert_eq!(parse("seek=oldest").unwrap_err().field, "topic");
    }

    #[test]
    fn filters_and_caps() {
        let q =
            parse("topic=t&value=abc&value_op=not_contains&expr=value.amount+%3E+3&header=type")
                .unwrap();
        assert_eq!(q.value.unwrap().op, TextOp::NotContains);
        assert_eq!(q.expr.unwrap().source(), "value.amount > 3");
        assert_eq!(q.header, Some(("type".into(), None)));
        assert_eq!(parse("topic=t&expr=nope(").unwrap_err().field, "expr");
        assert_eq!(parse("topic=t&expr=secret.x").unwrap_err().field, "expr");
        let caps = Caps {
            max_scan: 10,
            max_seconds: 5,
        };
        assert_eq!(
            Query::parse("topic=t&max_scan=11", None, caps)
                .unwrap_err()
                .field,
            "max_scan"
        );
        assert_eq!(Query::parse("topic=t", None, caps).unwrap().max_scan, 10);
    }

    #[test]
    fn text_ops() {
        assert!(TextOp::Contains.matches(Some("abc"), "b"));
        assert!(!TextOp::Equals.matches(Some("abc"), "b"));
        assert!(TextOp::NotContains.matches(None, "b"));
        assert!(!TextOp::Contains.matches(None, ""));
    }
}
