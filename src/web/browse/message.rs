//! One message as the console shows it: Kafka coordinates, times, key, headers, the decoded
//! value or the raw bytes with the reason they did not decode.

use super::query::{Query, RawAs, TextFilter};
use crate::config::{Format, TopicConfig};
use crate::read::RawBatch;
use arrow::array::Array;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// The timestamp in UTC ISO-8601.
    pub time: Option<String>,
    /// The timestamp in the zone the query asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_time: Option<String>,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// The Schema Registry id in the record's framing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<u32>,
    /// The decoded value; absent for raw topics and records that do not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The bytes in the query's raw encoding, when there is no decoded value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Why the value did not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Value bytes.
    pub size: usize,
}

impl Message {
    /// The shell of record `i` of `raw`: everything but the value.
    pub fn at(raw: &RawBatch, i: usize, topic: &TopicConfig, query: &Query) -> Message {
        let timestamp = raw.timestamps.get(i).copied().flatten();
        let value = (raw.values.is_valid(i)).then(|| raw.values.value(i));
        let key = raw
            .keys
            .is_valid(i)
            .then(|| key_text(raw.keys.value(i), query.raw).into_owned());
        Message {
            partition: raw.partition,
            offset: raw.offsets[i],
            timestamp,
            time: timestamp.and_then(super::query::utc),
            local_time: timestamp
                .zip(query.zone)
                .and_then(|(t, z)| super::query::zoned(t, z)),
            key,
            headers: raw
                .headers
                .as_ref()
                .and_then(|h| h.get(i).cloned())
                .unwrap_or_default(),
            type_name: raw.types.as_ref().and_then(|t| t.get(i).cloned().flatten()),
            schema_id: value.and_then(|v| schema_id(topic, v)),
            value: None,
            raw: None,
            error: None,
            size: value.map_or(0, <[u8]>::len),
        }
    }
}

/// A record as the filters see it, before a message is built: most records of a scan are
/// tested and dropped, so nothing is formatted or copied for them.
pub struct Candidate<'a> {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<std::borrow::Cow<'a, str>>,
    pub headers: &'a [(String, String)],
    pub type_name: Option<&'a str>,
    pub value: Option<&'a Value>,
    /// The shown bytes of a value that is not decoded.
    pub raw: Option<&'a str>,
}

impl Candidate<'_> {
    /// The value's text, for filters: a string as itself, anything else as JSON.
    fn value_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match (self.value, self.raw) {
            (Some(Value::String(s)), _) => Some(Cow::Borrowed(s.as_str())),
            (Some(v), _) => Some(Cow::Owned(v.to_string())),
            (None, Some(r)) => Some(Cow::Borrowed(r)),
            (None, None) => None,
        }
    }

    /// Whether the query's filters keep this record.
    pub fn matches(&self, topic: &str, query: &Query) -> bool {
        let text_ok = |f: &Option<TextFilter>, text: Option<&str>| {
            f.as_ref().is_none_or(|f| f.op.matches(text, &f.text))
        };
        if !text_ok(&query.key, self.key.as_deref()) {
            return false;
        }
        if query.value.is_some() && !text_ok(&query.value, self.value_text().as_deref()) {
            return false;
        }
        if let Some((name, filter)) = &query.header {
            let found = self
                .headers
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str());
            let ok = match filter {
                None => found.is_some(),
                Some(f) => f.op.matches(found, &f.text),
            };
            if !ok {
                return false;
            }
        }
        let Some(expr) = &query.expr else {
            return true;
        };
        let null = Value::Null;
        let bindings = crate::expr::Bindings::new(crate::expr::Variables {
            value: self.value.unwrap_or(&null),
            key: self.key.as_deref(),
            headers: self.headers,
            topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            type_name: self.type_name,
        });
        // A record the expression cannot be asked about (a missing field) is not a match.
        expr.test(&bindings).unwrap_or(false)
    }
}

/// The key as shown: as is when it is UTF-8, else in the query's raw encoding.
pub fn key_text(bytes: &[u8], raw: RawAs) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(raw.show(bytes)),
    }
}

/// The schema id of a record framed for the Schema Registry (magic byte 0, then 4 bytes).
fn schema_id(topic: &TopicConfig, value: &[u8]) -> Option<u32> {
    let framed = matches!(topic.format, Format::Avro | Format::Protobuf)
        && topic.schema_file.is_none()
        && topic.type_header.is_none();
    match value {
        [0, a, b, c, d, ..] if framed => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}
