//! Where totals go: log lines, a Kafka topic (one record per group, keyed by the group, for a
//! compacted topic) and Parquet files in the sink.

use crate::config::Connections;
use crate::produce::{ProduceError, send_all};
use arrow::json::LineDelimitedWriter;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// One line per group: `account_number=ACC001 total=1234.50 count=12`.
pub fn lines(totals: &RecordBatch) -> Vec<String> {
    let options = FormatOptions::default().with_null("null");
    let formatters: Vec<_> = totals
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok())
        .collect();
    let names: Vec<String> = totals
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    (0..totals.num_rows())
        .map(|row| {
            names
                .iter()
                .zip(&formatters)
                .map(|(name, f)| match f {
                    Some(f) => format!("{name}={}", f.value(row)),
                    None => format!("{name}=?"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Sends one JSON record per group, keyed by the group columns (`group_count` first columns):
/// the value itself for one column, a JSON array of them for several. Decimals keep every
/// digit (arrow's JSON writer prints them as numbers).
pub fn to_topic(
    connections: &Connections,
    topic: &str,
    totals: &RecordBatch,
    group_count: usize,
) -> Result<u64, ProduceError> {
    let setup = |reason: String| ProduceError::Setup {
        topic: topic.to_string(),
        reason,
    };
    let mut writer = LineDelimitedWriter::new(Vec::new());
    writer.write(totals).map_err(|e| setup(e.to_string()))?;
    writer.finish().map_err(|e| setup(e.to_string()))?;
    let body = writer.into_inner();
    let keys = keys(totals, group_count);
    let payloads = body.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let records = keys
        .into_iter()
        .zip(payloads)
        .map(|(key, payload)| Ok((Some(key), payload.to_vec())));
    send_all(connections, topic, records)
}

/// Each row's group as text: the value for one group column, a JSON array for several.
pub fn keys(totals: &RecordBatch, group_count: usize) -> Vec<String> {
    let options = FormatOptions::default().with_null("null");
    let formatters: Vec<_> = totals.columns()[..group_count.min(totals.num_columns())]
        .iter()
        .filter_map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok())
        .collect();
    (0..totals.num_rows())
        .map(|row| {
            let parts: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            if parts.len() == 1 {
                parts.into_iter().next().unwrap_or_default()
            } else {
                serde_json::to_string(&parts).unwrap_or_default()
            }
        })
        .collect()
}
