//! Matching one batch: decode it with the topic's format, test each record against the
//! query's filters, and build a message (and, for Parquet, a typed row) for the matches only.

use super::message::{Candidate, Message, key_text};
use super::outcome::ScanError;
use super::query::Query;
use crate::config::{Format, TopicConfig};
use crate::decode::{DEAD_LETTER_COLUMNS, Decoded, Decoder};
use crate::read::RawBatch;
use crate::registry::Registry;
use arrow::array::{Array, RecordBatch, StringArray, UInt32Array};
use std::sync::Arc;

/// A match, with its typed row when kept.
pub(super) struct Hit {
    pub(super) message: Message,
    pub(super) row: Option<RecordBatch>,
}

/// What matching a batch needs; shared by the threads that match.
pub(super) struct Matcher<'a> {
    pub(super) query: &'a Query,
    pub(super) topic: &'a TopicConfig,
    pub(super) registry: Option<Arc<Registry>>,
    pub(super) keep_rows: bool,
}

impl Matcher<'_> {
    pub(super) fn decoder(&self) -> Option<Decoder> {
        (!matches!(self.topic.format, Format::Raw) || self.topic.type_header.is_some())
            .then(|| Decoder::new(self.topic, self.registry.clone()))
    }

    /// The matches of one batch, in offset order.
    pub(super) fn batch(
        &self,
        decoder: Option<&mut Decoder>,
        batch: &RawBatch,
    ) -> Result<Vec<Hit>, ScanError> {
        let query = self.query;
        let topic = self.topic;
        let n = batch.len();
        let mut values: Vec<Option<serde_json::Value>> = vec![None; n];
        let mut errors: Vec<Option<String>> = vec![None; n];
        let mut types: Vec<Option<String>> = vec![None; n];
        let mut rows: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut pieces = Vec::new();
        let index = index_of(batch);
        match decoder {
            None => {}
            Some(_)
                if topic.format == Format::Json
                    && topic.type_header.is_none()
                    && !self.keep_rows =>
            {
                let (records, bad) = crate::records::from_json(&topic.topic, batch);
                for r in records {
                    if let Some(&i) = index.get(&r.offset) {
                        values[i] = Some(r.value);
                    }
                }
                for (offset, reason) in bad {
                    if let Some(&i) = index.get(&offset) {
                        errors[i] = Some(reason);
                    }
                }
            }
            Some(decoder) => {
                let decoded = decoder.decode(batch)?;
                let records = crate::records::from_decoded(&topic.topic, batch, &decoded).map_err(
                    |reason| ScanError::Rows {
                        topic: topic.topic.clone(),
                        reason,
                    },
                )?;
                let places = row_places(&decoded);
                for (g, r) in records.into_iter().enumerate() {
                    if let Some(&i) = index.get(&r.offset) {
                        values[i] = Some(r.value);
                        types[i] = r.type_name;
                        rows[i] = places.get(g).copied();
                    }
                }
                for (offset, reason) in dead_reasons(&decoded) {
                    if let Some(&i) = index.get(&offset) {
                        errors[i] = Some(reason);
                    }
                }
                pieces = decoded.rows;
            }
        }
        let shown = |i: usize| {
            batch
                .values
                .is_valid(i)
                .then(|| query.raw.show(batch.values.value(i)))
        };
        let no_headers: Vec<(String, String)> = Vec::new();
        let mut hits = Vec::new();
        let mut picked: Vec<Vec<(usize, u32)>> = vec![Vec::new(); pieces.len()];
        for i in 0..n {
            // Bytes are only shown for a value filter, and for the matches.
            let raw = (values[i].is_none() && query.value.is_some())
                .then(|| shown(i))
                .flatten();
            let candidate = Candidate {
                partition: batch.partition,
                offset: batch.offsets[i],
                timestamp: batch.timestamps[i],
                key: batch
                    .keys
                    .is_valid(i)
                    .then(|| key_text(batch.keys.value(i), query.raw)),
                headers: batch
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(i))
                    .unwrap_or(&no_headers),
                type_name: types[i]
                    .as_deref()
                    .or_else(|| batch.types.as_ref().and_then(|t| t.get(i)?.as_deref())),
                value: values[i].as_ref(),
                raw: raw.as_deref(),
            };
            if !candidate.matches(&topic.topic, query) {
                continue;
            }
            let mut message = Message::at(batch, i, topic, query);
            message.value = values[i].take();
            if let Some(t) = types[i].take() {
                message.type_name = Some(t);
            }
            message.error = errors[i].take();
            if message.value.is_none() {
                message.raw = raw.or_else(|| shown(i));
            }
            if let Some((piece, row)) = rows[i].filter(|_| self.keep_rows) {
                picked[piece].push((hits.len(), row as u32));
            }
            hits.push(Hit { message, row: None });
        }
        // Matched rows are copied out of their batch, so a kept row does not hold it all.
        for (piece, wanted) in pieces.iter().zip(picked) {
            if wanted.is_empty() {
                continue;
            }
            let indices = UInt32Array::from_iter_values(wanted.iter().map(|(_, r)| *r));
            let taken = arrow::compute::take_record_batch(piece, &indices).map_err(|e| {
                ScanError::Rows {
                    topic: topic.topic.clone(),
                    reason: e.to_string(),
                }
            })?;
            for (n, (hit, _)) in wanted.iter().enumerate() {
                hits[*hit].row = Some(taken.slice(n, 1));
            }
        }
        Ok(hits)
    }
}

fn index_of(batch: &RawBatch) -> std::collections::HashMap<i64, usize> {
    batch
        .offsets
        .iter()
        .enumerate()
        .map(|(i, &o)| (o, i))
        .collect()
}

/// (piece, row in piece) of each decoded row, in order.
fn row_places(decoded: &Decoded) -> Vec<(usize, usize)> {
    decoded
        .rows
        .iter()
        .enumerate()
        .flat_map(|(piece, b)| (0..b.num_rows()).map(move |row| (piece, row)))
        .collect()
}

/// The offset and reason of each record that did not decode.
fn dead_reasons(decoded: &Decoded) -> Vec<(i64, String)> {
    let Some(dead) = &decoded.dead else {
        return Vec::new();
    };
    let reasons = dead
        .column_by_name(DEAD_LETTER_COLUMNS[1])
        .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
    decoded
        .dead_offsets
        .iter()
        .enumerate()
        .map(|(i, &o)| {
            let reason = reasons.as_ref().filter(|r| i < r.len()).map_or_else(
                || "could not be decoded".to_string(),
                |r| r.value(i).to_string(),
            );
            (o, reason)
        })
        .collect()
}
