//! Evaluates a topic's `path_template` per record: which folder each row of a batch goes to.
//! Values are escaped as Hive does, so Spark, Synapse and DuckDB read them back unchanged.

use crate::config::{PathTemplate, Piece};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use chrono::{DateTime, Datelike, Timelike};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Hive's folder name for a missing value.
pub const NULL_VALUE: &str = "__HIVE_DEFAULT_PARTITION__";

/// Rows of a batch per folder; `None` rows means every row.
pub type Split = Vec<(String, Option<Vec<u32>>)>;

pub struct Layout {
    template: PathTemplate,
    topic: String,
}

impl Layout {
    pub fn new(template: &PathTemplate, topic: &str) -> Self {
        Layout {
            template: template.clone(),
            topic: topic.to_string(),
        }
    }

    /// Groups the rows of `batch` (whose Kafka timestamps are `timestamps`) by folder, keeping
    /// their order within each folder.
    pub fn split(&self, partition: i32, timestamps: &[Option<i64>], batch: &RecordBatch) -> Split {
        if !self.template.per_record() {
            return vec![(self.folder(partition, None, &[], 0), None)];
        }
        let fields: Vec<Option<arrow::array::ArrayRef>> = self
            .template
            .pieces()
            .iter()
            .filter_map(|p| match p {
                Piece::Field(name) => Some(
                    batch
                        .column_by_name(name)
                        .and_then(|c| arrow::compute::cast(c, &DataType::Utf8).ok()),
                ),
                _ => None,
            })
            .collect();
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let mut last: Option<(String, Vec<u32>)> = None;
        for row in 0..batch.num_rows() {
            let ts = timestamps.get(row).copied().flatten();
            let folder = self.folder(partition, ts, &fields, row);
            // Consecutive rows usually share a folder: extend the current run.
            match &mut last {
                Some((f, rows)) if *f == folder => rows.push(row as u32),
                _ => {
                    if let Some((f, rows)) = last.take() {
                        groups.entry(f).or_default().extend(rows);
                    }
                    last = Some((folder, vec![row as u32]));
                }
            }
        }
        if let Some((f, rows)) = last {
            groups.entry(f).or_default().extend(rows);
        }
        if groups.len() == 1 {
            return groups.into_keys().map(|f| (f, None)).collect();
        }
        groups
            .into_iter()
            .map(|(f, rows)| (f, Some(rows)))
            .collect()
    }

    fn folder(
        &self,
        partition: i32,
        ts: Option<i64>,
        fields: &[Option<arrow::array::ArrayRef>],
        row: usize,
    ) -> String {
        let time = ts.and_then(DateTime::from_timestamp_millis);
        let mut out = String::new();
        let mut field = 0;
        for piece in self.template.pieces() {
            let _ = match piece {
                Piece::Text(t) => write!(out, "{t}"),
                Piece::Topic => write!(out, "{}", self.topic),
                Piece::Partition => write!(out, "{partition}"),
                Piece::Year => time_part(&mut out, time.map(|t| (t.year(), 4))),
                Piece::Month => time_part(&mut out, time.map(|t| (t.month() as i32, 2))),
                Piece::Day => time_part(&mut out, time.map(|t| (t.day() as i32, 2))),
                Piece::Hour => time_part(&mut out, time.map(|t| (t.hour() as i32, 2))),
                Piece::Minute => time_part(&mut out, time.map(|t| (t.minute() as i32, 2))),
                Piece::Field(_) => {
                    let value = fields.get(field).and_then(|c| c.as_ref()).and_then(|c| {
                        let c = c.as_string::<i32>();
                        c.is_valid(row).then(|| c.value(row))
                    });
                    field += 1;
                    escape(&mut out, value);
                    Ok(())
                }
            };
        }
        out
    }
}

fn time_part(out: &mut String, value: Option<(i32, usize)>) -> std::fmt::Result {
    match value {
        Some((v, width)) => write!(out, "{v:0width$}"),
        None => write!(out, "{NULL_VALUE}"),
    }
}

/// Hive's escaping of partition values: `/`, `=`, `%` and other unsafe characters as `%XX`.
fn escape(out: &mut String, value: Option<&str>) {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        out.push_str(NULL_VALUE);
        return;
    };
    if value == "." || value == ".." {
        out.push_str(&value.replace('.', "%2E"));
        return;
    }
    for c in value.chars() {
        if c.is_control()
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '{'
                    | '}'
                    | '['
                    | ']'
                    | '^'
            )
        {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("country", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("FR"),
                    Some("a/b=c"),
                    None,
                    Some("FR"),
                ])),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn splits_rows_by_record_time_in_utc() {
        let t = PathTemplate::parse("{topic}/date={yyyy}-{MM}-{dd}/hour={HH}").unwrap();
        let layout = Layout::new(&t, "orders");
        // 2026-11-22T23:59:59.999Z, then the next hour twice, then no timestamp.
        let ts = [
            Some(1_795_391_999_999),
            Some(1_795_392_000_000),
            Some(1_795_392_000_001),
            None,
        ];
        let split = layout.split(3, &ts, &batch());
        assert_eq!(
            split,
            vec![
                ("orders/date=2026-11-22/hour=23".to_string(), Some(vec![0])),
                (
                    "orders/date=2026-11-23/hour=00".to_string(),
                    Some(vec![1, 2])
                ),
                (
                    format!("orders/date={NULL_VALUE}-{NULL_VALUE}-{NULL_VALUE}/hour={NULL_VALUE}"),
                    Some(vec![3])
                ),
            ]
        );
    }

    #[test]
    fn splits_rows_by_a_field_with_hive_escaping() {
        let t = PathTemplate::parse("{topic}/c={field:country}/p={partition}").unwrap();
        let split = Layout::new(&t, "t").split(0, &[None; 4], &batch());
        assert_eq!(
            split,
            vec![
                ("t/c=FR/p=0".to_string(), Some(vec![0, 3])),
                (format!("t/c={NULL_VALUE}/p=0"), Some(vec![2])),
                ("t/c=a%2Fb%3Dc/p=0".to_string(), Some(vec![1])),
            ]
        );
        let missing = PathTemplate::parse("{field:nope}").unwrap();
        let split = Layout::new(&missing, "t").split(0, &[None; 4], &batch());
        assert_eq!(split, vec![(NULL_VALUE.to_string(), None)]);
    }
}
