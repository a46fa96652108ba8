//! A scan's result as a file: JSON lines (one message per line, as the API shows it), CSV
//! (RFC 4180: quoted where needed, CRLF line ends; one column per top-level field) or Parquet
//! (the typed columns an export writes).

use super::message::Message;
use arrow::array::RecordBatch;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot write the file: {0}")]
    Write(String),
    #[error(
        "the matches have {0} different schemas (the schema changed within the range); narrow the range to one schema, or download JSON lines or CSV"
    )]
    Schemas(usize),
    #[error(
        "no match decoded, so there are no typed rows for Parquet; download JSON lines or CSV to see the records and why they did not decode"
    )]
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Jsonl,
    Csv,
    Parquet,
}

impl FileFormat {
    pub fn parse(s: &str) -> Option<FileFormat> {
        match s {
            "jsonl" | "json" => Some(FileFormat::Jsonl),
            "csv" => Some(FileFormat::Csv),
            "parquet" => Some(FileFormat::Parquet),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "application/x-ndjson",
            FileFormat::Csv => "text/csv; charset=utf-8",
            FileFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

pub fn jsonl(messages: &[Message]) -> Result<Vec<u8>, DownloadError> {
    let mut out = Vec::new();
    for m in messages {
        serde_json::to_writer(&mut out, m).map_err(|e| DownloadError::Write(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(out)
}

pub fn csv(messages: &[Message]) -> Result<Vec<u8>, DownloadError> {
    let objects = messages
        .iter()
        .all(|m| matches!(m.value, Some(Value::Object(_)) | None));
    // Fields in the order they first appear.
    let mut fields: Vec<String> = Vec::new();
    if objects {
        for m in messages {
            if let Some(Value::Object(map)) = &m.value {
                for k in map.keys() {
                    if !fields.contains(k) {
                        fields.push(k.clone());
                    }
                }
            }
        }
    }
    let mut header: Vec<String> = ["partition", "offset", "timestamp", "key", "headers", "type"]
        .map(String::from)
        .to_vec();
    if objects {
        header.extend(fields.iter().cloned());
    } else {
        header.push("value".into());
    }
    header.extend(["raw", "error"].map(String::from));
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let error = |e: csv::Error| DownloadError::Write(e.to_string());
    writer.write_record(&header).map_err(error)?;
    for m in messages {
        let mut row = vec![
            m.partition.to_string(),
            m.offset.to_string(),
            m.time.clone().unwrap_or_default(),
            m.key.clone().unwrap_or_default(),
            if m.headers.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&m.headers).unwrap_or_default()
            },
            m.type_name.clone().unwrap_or_default(),
        ];
        if objects {
            for f in &fields {
                row.push(match &m.value {
                    Some(Value::Object(map)) => cell(map.get(f)),
                    _ => String::new(),
                });
            }
        } else {
            row.push(cell(m.value.as_ref()));
        }
        row.push(m.raw.clone().unwrap_or_default());
        row.push(m.error.clone().unwrap_or_default());
        writer.write_record(&row).map_err(error)?;
    }
    writer
        .into_inner()
        .map_err(|e| DownloadError::Write(e.to_string()))
}

/// A string as itself, null as empty, anything else as JSON.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub fn parquet(rows: &[RecordBatch]) -> Result<Vec<u8>, DownloadError> {
    let Some(first) = rows.first() else {
        return Err(DownloadError::Empty);
    };
    let schema = first.schema();
    let schemas = {
        let mut seen = vec![schema.clone()];
        for r in rows {
            if !seen.iter().any(|s| *s == r.schema()) {
                seen.push(r.schema());
            }
        }
        seen.len()
    };
    if schemas > 1 {
        return Err(DownloadError::Schemas(schemas));
    }
    let error = |e: parquet::errors::ParquetError| DownloadError::Write(e.to_string());
    let batch = arrow::compute::concat_batches(&schema, rows)
        .map_err(|e| DownloadError::Write(e.to_string()))?;
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut out = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(properties)).map_err(error)?;
    writer.write(&batch).map_err(error)?;
    writer.close().map_err(error)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64, value: Value) -> Message {
        Message {
            partition: 0,
            offset,
            timestamp: Some(0),
            time: Some("1970-01-01T00:00:00.000Z".into()),
            local_time: None,
            key: Some("k,\"1\"".into()),
            headers: vec![],
            type_name: None,
            schema_id: None,
            value: Some(value),
            raw: None,
            error: None,
            size: 1,
        }
    }

    #[test]
    fn csv_quotes_by_rfc_4180() {
        let out = csv(&[
            message(1, serde_json::json!({"a": "x\ny", "b": {"c": 1}})),
            message(2, serde_json::json!({"b": null, "d": 2})),
        ])
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "partition,offset,timestamp,key,headers,type,a,b,d,raw,error\r\n\
             0,1,1970-01-01T00:00:00.000Z,\"k,\"\"1\"\"\",,,\"x\ny\",\"{\"\"c\"\":1}\",,,\r\n\
             0,2,1970-01-01T00:00:00.000Z,\"k,\"\"1\"\"\",,,,,2,,\r\n"
        );
    }
}
