//! Writing: typed Parquet files per partition, rotated by records, bytes and schema changes.
//!
//! A file is named by the offset where its coverage starts (the run's start or the previous
//! file's end), so a rerun from recorded progress rewrites the same names instead of adding
//! duplicates.

use crate::config::{Compression, TopicConfig};
use crate::read::RawBatch;
use crate::sink::{ObjectWriter, Sink, SinkError};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("topic {topic} partition {partition}: cannot write Parquet file {path}: {source}")]
    Parquet {
        topic: String,
        partition: i32,
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// A complete, durable file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub path: String,
    pub records: u64,
    pub bytes: u64,
}

/// The partition is covered up to `next_offset`; progress may be recorded there.
#[derive(Debug, Clone)]
pub struct Advance {
    pub partition: i32,
    pub next_offset: i64,
    pub file: Option<WrittenFile>,
}

/// Where the file of `topic`/`partition` that starts at `start` goes.
pub fn file_path(topic: &str, partition: i32, start: i64) -> Path {
    Path::from(format!(
        "{topic}/partition={partition}/{topic}+{partition}+{start:020}.parquet"
    ))
}

struct OpenFile {
    path: Path,
    records: u64,
    schema: SchemaRef,
    writer: ArrowWriter<ObjectWriter>,
}

impl OpenFile {
    fn size(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }
}

pub struct TopicWriter {
    sink: Arc<Sink>,
    topic: String,
    max_records: u64,
    max_bytes: u64,
    props: WriterProperties,
    open: BTreeMap<i32, OpenFile>,
    /// Offset up to which a partition's records are in files, open or closed.
    covered: BTreeMap<i32, i64>,
    /// Offset last reported through an `Advance`.
    reported: BTreeMap<i32, i64>,
}

impl TopicWriter {
    /// `starts` holds each partition's planned start offset.
    pub fn new(sink: Arc<Sink>, topic: &TopicConfig, starts: BTreeMap<i32, i64>) -> Self {
        let compression = match topic.compression {
            Compression::Zstd => ParquetCompression::ZSTD(ZstdLevel::default()),
            Compression::Snappy => ParquetCompression::SNAPPY,
            Compression::Lz4 => ParquetCompression::LZ4_RAW,
            Compression::None => ParquetCompression::UNCOMPRESSED,
        };
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_created_by(format!("runner {}", env!("CARGO_PKG_VERSION")))
            // Row groups bound the memory of each open file.
            .set_max_row_group_row_count(Some(128 * 1024))
            .set_max_row_group_bytes(Some(32 * 1024 * 1024))
            .build();
        TopicWriter {
            sink,
            topic: topic.topic.clone(),
            max_records: topic.max_records_per_file,
            max_bytes: topic.max_bytes_per_file,
            props,
            open: BTreeMap::new(),
            reported: starts.clone(),
            covered: starts,
        }
    }

    /// Writes the decoded rows of `raw` (absent when it is empty) and returns what became
    /// durable. On the partition's last batch every open file is closed.
    pub fn write(
        &mut self,
        raw: &RawBatch,
        decoded: Option<RecordBatch>,
        last: bool,
    ) -> Result<Vec<Advance>, WriteError> {
        let p = raw.partition;
        let mut done = Vec::new();
        if let Some(mut batch) = decoded {
            let mut first_row = 0usize;
            loop {
                if self
                    .open
                    .get(&p)
                    .is_some_and(|f| f.schema != batch.schema())
                {
                    done.push(self.close(p, raw.offsets[first_row])?);
                }
                if !self.open.contains_key(&p) {
                    self.open_file(p, batch.schema())?;
                }
                let records = self.open.get(&p).map_or(0, |f| f.records);
                let room = self.max_records.saturating_sub(records) as usize;
                if batch.num_rows() > room {
                    self.append(p, &batch.slice(0, room))?;
                    first_row += room;
                    batch = batch.slice(room, batch.num_rows() - room);
                    done.push(self.close(p, raw.offsets[first_row])?);
                    continue;
                }
                self.append(p, &batch)?;
                break;
            }
        }
        self.covered.insert(p, raw.next_offset);
        let full = self
            .open
            .get(&p)
            .is_some_and(|f| f.size() >= self.max_bytes || f.records >= self.max_records);
        if full || (last && self.open.contains_key(&p)) {
            done.push(self.close(p, raw.next_offset)?);
        } else if last && self.reported.get(&p) != Some(&raw.next_offset) {
            // Nothing left to write, but the range ended past the last record (markers, gaps).
            done.push(self.advance(p, raw.next_offset, None));
        }
        Ok(done)
    }

    fn open_file(&mut self, p: i32, schema: SchemaRef) -> Result<(), WriteError> {
        let start = self.covered.get(&p).copied().unwrap_or(0);
        let path = file_path(&self.topic, p, start);
        let object = self.sink.create(path.clone())?;
        let writer = ArrowWriter::try_new(object, schema.clone(), Some(self.props.clone()))
            .map_err(|source| self.parquet_error(p, &path, source))?;
        self.open.insert(
            p,
            OpenFile {
                path,
                records: 0,
                schema,
                writer,
            },
        );
        Ok(())
    }

    fn append(&mut self, p: i32, batch: &RecordBatch) -> Result<(), WriteError> {
        let Some(file) = self.open.get_mut(&p) else {
            let path = file_path(&self.topic, p, self.covered.get(&p).copied().unwrap_or(0));
            let source = parquet::errors::ParquetError::General("no open file".into());
            return Err(self.parquet_error(p, &path, source));
        };
        let result = file.writer.write(batch);
        file.records += batch.num_rows() as u64;
        let path = file.path.clone();
        result.map_err(|source| self.parquet_error(p, &path, source))
    }

    /// Closes the partition's open file, whose coverage ends at `next_offset`.
    fn close(&mut self, p: i32, next_offset: i64) -> Result<Advance, WriteError> {
        let Some(file) = self.open.remove(&p) else {
            return Ok(self.advance(p, next_offset, None));
        };
        let object = file
            .writer
            .into_inner()
            .map_err(|source| self.parquet_error(p, &file.path, source))?;
        let bytes = object.finish(&self.sink)?;
        self.covered.insert(p, next_offset);
        let written = WrittenFile {
            path: file.path.to_string(),
            records: file.records,
            bytes,
        };
        Ok(self.advance(p, next_offset, Some(written)))
    }

    fn advance(&mut self, p: i32, next_offset: i64, file: Option<WrittenFile>) -> Advance {
        self.reported.insert(p, next_offset);
        Advance {
            partition: p,
            next_offset,
            file,
        }
    }

    fn parquet_error(
        &self,
        partition: i32,
        path: &Path,
        source: parquet::errors::ParquetError,
    ) -> WriteError {
        WriteError::Parquet {
            topic: self.topic.clone(),
            partition,
            path: path.to_string(),
            source,
        }
    }
}
