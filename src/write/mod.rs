//! Writing: typed Parquet files per partition, rotated by records, bytes and schema changes.
//!
//! A partition's output is a sequence of segments. A segment holds one open file per folder of
//! the topic's `path_template`, all named by the offset where the segment's coverage starts, so
//! a rerun from recorded progress rewrites the same names instead of adding duplicates. A
//! segment is sealed as a whole: its files are committed together, then progress moves past it.

mod file;
mod layout;

pub use layout::NULL_VALUE;

use crate::config::{Compression, TopicConfig};
use crate::decode::Decoded;
use crate::read::RawBatch;
use crate::sink::{ObjectWriter, Sink, SinkError};
use arrow::array::{RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;
use file::ParquetFile;
use layout::Layout;
use object_store::path::Path;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The sink folder of records that could not be decoded, beside (not inside) topic folders.
pub const DEAD_LETTERS: &str = "_dead_letters";

/// Folders open at once in one segment; more seal it, which bounds memory for wide layouts.
const MAX_OPEN_FILES: usize = 64;

/// Arrow rows (and upload buffers) held over every open file of a topic (default); past it
/// the largest file writes its row group out, so memory stays flat however many are open.
pub const MAX_BUFFERED_BYTES: usize = 32 * 1024 * 1024;

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

/// A file whose Parquet footer is written; it becomes visible on `commit`.
pub struct SealedFile {
    pub path: Path,
    pub records: u64,
    object: ObjectWriter,
}

impl SealedFile {
    /// A sealed file holding `bytes`, for tests of the commit protocol.
    #[cfg(test)]
    pub(crate) fn of_bytes(sink: &Sink, path: Path, records: u64, bytes: &[u8]) -> Self {
        use std::io::Write;
        let mut object = sink.create(path.clone()).unwrap();
        object.write_all(bytes).unwrap();
        SealedFile {
            path,
            records,
            object,
        }
    }

    /// Bytes the file still holds in memory for its upload.
    pub fn held(&self) -> u64 {
        self.object.buffered()
    }

    pub fn commit(self, sink: &Sink) -> Result<WrittenFile, SinkError> {
        let bytes = self.object.finish(sink)?;
        Ok(WrittenFile {
            path: self.path.to_string(),
            records: self.records,
            bytes,
        })
    }
}

/// A sealed segment: once its files are committed, the partition is covered from `start` up
/// to `next_offset` (with no files when the range held no records).
pub struct Sealed {
    pub partition: i32,
    pub start: i64,
    pub next_offset: i64,
    pub files: Vec<SealedFile>,
}

/// Where the file of `topic`/`partition` in `folder` whose segment starts at `start` goes;
/// a backfill's files carry a tag so they never replace a regular run's.
pub fn file_path(folder: &str, topic: &str, partition: i32, start: i64, tag: &str) -> Path {
    Path::from(format!(
        "{folder}/{topic}+{partition}+{start:020}{tag}.parquet"
    ))
}

struct OpenFile {
    path: Path,
    records: u64,
    writer: ParquetFile<ObjectWriter>,
}

impl OpenFile {
    fn size(&self) -> u64 {
        self.writer.size() as u64
    }
}

struct Segment {
    start: i64,
    /// When its first file was opened: continuous jobs seal segments by age.
    opened: Instant,
    /// The data rows' schema; `None` while the segment holds only dead letters.
    schema: Option<SchemaRef>,
    records: u64,
    files: BTreeMap<String, OpenFile>,
}

impl Segment {
    fn size(&self) -> u64 {
        self.files.values().map(OpenFile::size).sum()
    }
}

pub struct TopicWriter {
    sink: Arc<Sink>,
    topic: String,
    layout: Layout,
    max_records: u64,
    max_bytes: u64,
    props: WriterProperties,
    open: BTreeMap<i32, Segment>,
    /// Offset up to which a partition's records are in files, open or sealed.
    covered: BTreeMap<i32, i64>,
    /// Offset last reported through a `Sealed`.
    reported: BTreeMap<i32, i64>,
    /// Per partition, appended to file names (see `file_path`).
    tags: BTreeMap<i32, String>,
    /// See `MAX_BUFFERED_BYTES`.
    buffer_budget: usize,
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
            // No dictionaries: on event data most columns are (nearly) unique, and zstd on
            // plain values made files half the size at 16% fewer instructions than
            // dictionary pages did (docs/performance.md).
            .set_dictionary_enabled(false)
            .build();
        TopicWriter {
            sink,
            topic: topic.topic.clone(),
            layout: Layout::new(&topic.path_template, &topic.topic),
            max_records: topic.max_records_per_file.max(1),
            max_bytes: topic.max_bytes_per_file,
            props,
            open: BTreeMap::new(),
            reported: starts.clone(),
            covered: starts,
            tags: BTreeMap::new(),
            buffer_budget: MAX_BUFFERED_BYTES,
        }
    }

    /// Bytes of encoded rows buffered over all open files before row groups are written out.
    pub fn set_buffer_budget(&mut self, bytes: usize) {
        self.buffer_budget = bytes.max(1);
    }

    /// Names the partition's files `...+<start>.<tag>.parquet`.
    pub fn tag_files(&mut self, partition: i32, tag: &str) {
        self.tags.insert(partition, format!(".{tag}"));
    }

    /// Writes the decoded rows and dead letters of `raw` and returns the segments sealed on
    /// the way. On the partition's last batch its open segment is sealed. A dead letter goes
    /// into the segment that covers its offset, so it is committed exactly once too.
    pub fn write(
        &mut self,
        raw: &RawBatch,
        decoded: Decoded,
        last: bool,
    ) -> Result<Vec<Sealed>, WriteError> {
        let p = raw.partition;
        let mut done = Vec::new();
        let mut dead = 0usize;
        let mut base = 0usize;
        for batch in &decoded.rows {
            let mut row = 0usize;
            while row < batch.num_rows() {
                let here = decoded.offsets[base + row];
                let schema = Some(batch.schema());
                if self
                    .open
                    .get(&p)
                    .is_some_and(|s| s.schema.is_some() && s.schema != schema)
                {
                    dead = self.append_dead(p, &decoded, dead, here)?;
                    done.push(self.seal(p, here)?);
                }
                let records = self.open.get(&p).map_or(0, |s| s.records);
                let room = self.max_records.saturating_sub(records).max(1) as usize;
                let end = row + room.min(batch.num_rows() - row);
                let ts = &decoded.timestamps[base + row..base + end];
                self.append(p, &batch.slice(row, end - row), ts)?;
                row = end;
                if row < batch.num_rows() {
                    let next = decoded.offsets[base + row];
                    dead = self.append_dead(p, &decoded, dead, next)?;
                    done.push(self.seal(p, next)?);
                }
            }
            base += batch.num_rows();
        }
        self.append_dead(p, &decoded, dead, i64::MAX)?;
        self.covered.insert(p, raw.next_offset);
        self.limit_memory(&mut done)?;
        let full = self.open.get(&p).is_some_and(|s| {
            s.records >= self.max_records
                || s.files.len() >= MAX_OPEN_FILES
                || s.size() >= self.max_bytes
        });
        if full
            || (last && self.open.contains_key(&p))
            || (last && self.reported.get(&p) != Some(&raw.next_offset))
        {
            // Also when nothing is open: the range ended past the last record (markers, gaps).
            done.push(self.seal(p, raw.next_offset)?);
        }
        Ok(done)
    }

    /// Keeps the memory of all open files within the buffer budget: the file holding the most
    /// writes its row group out, or, when what it holds is waiting in its upload, its
    /// partition's segment is sealed (a smaller file; it is recorded like any other).
    fn limit_memory(&mut self, done: &mut Vec<Sealed>) -> Result<(), WriteError> {
        let held = |f: &OpenFile| f.writer.memory_size() + f.writer.inner().buffered() as usize;
        loop {
            let total: usize = self
                .open
                .values()
                .flat_map(|s| s.files.values())
                .map(held)
                .sum();
            if total <= self.buffer_budget {
                return Ok(());
            }
            let largest = self
                .open
                .iter_mut()
                .flat_map(|(p, s)| s.files.values_mut().map(move |f| (*p, f)))
                .max_by_key(|(_, f)| held(f));
            let Some((p, file)) = largest else {
                return Ok(());
            };
            let rows_held = file.writer.in_progress_rows() > 0;
            if rows_held && file.writer.memory_size() > file.writer.inner().buffered() as usize {
                file.writer
                    .flush()
                    .map_err(|source| parquet_error(&self.topic, p, file.path.as_ref(), source))?;
            } else {
                let next = self.covered.get(&p).copied().unwrap_or_default();
                done.push(self.seal(p, next)?);
            }
        }
    }

    /// Seals every partition's open segment at the offset read so far: a run asked to stop
    /// leaves complete files and progress that covers them.
    pub fn seal_all(&mut self) -> Result<Vec<Sealed>, WriteError> {
        let pending: Vec<(i32, i64)> = self
            .covered
            .iter()
            .filter(|(p, next)| self.reported.get(p) != Some(next))
            .map(|(p, next)| (*p, *next))
            .collect();
        pending
            .into_iter()
            .map(|(p, next)| self.seal(p, next))
            .collect()
    }

    /// Starts (or restarts) a partition at `offset`, as a new assignment does.
    pub fn start_partition(&mut self, p: i32, offset: i64) {
        self.open.remove(&p);
        self.covered.insert(p, offset);
        self.reported.insert(p, offset);
    }

    /// Seals the partition's open segment, if anything was read since the last seal.
    pub fn seal_partition(&mut self, p: i32) -> Result<Option<Sealed>, WriteError> {
        match self.covered.get(&p).copied() {
            Some(next) if self.reported.get(&p) != Some(&next) || self.open.contains_key(&p) => {
                Ok(Some(self.seal(p, next)?))
            }
            _ => Ok(None),
        }
    }

    /// Forgets a partition: its open files are dropped unfinished, so they never become
    /// visible (an unfinished upload is aborted).
    pub fn abort_partition(&mut self, p: i32) {
        self.open.remove(&p);
        self.covered.remove(&p);
        self.reported.remove(&p);
    }

    /// Seals the segments whose first file is older than `age`, so that data lands within a
    /// known delay even on a quiet topic.
    pub fn seal_aged(&mut self, age: Duration) -> Result<Vec<Sealed>, WriteError> {
        let old: Vec<i32> = self
            .open
            .iter()
            .filter(|(_, s)| s.opened.elapsed() >= age)
            .map(|(p, _)| *p)
            .collect();
        let mut sealed = Vec::with_capacity(old.len());
        for p in old {
            sealed.extend(self.seal_partition(p)?);
        }
        Ok(sealed)
    }

    /// Files open now, over every partition.
    pub fn open_files(&self) -> usize {
        self.open.values().map(|s| s.files.len()).sum()
    }

    /// Appends the dead letters from index `from` whose offsets are below `before`; returns
    /// the index of the first one left.
    fn append_dead(
        &mut self,
        p: i32,
        decoded: &Decoded,
        from: usize,
        before: i64,
    ) -> Result<usize, WriteError> {
        let Some(dead) = &decoded.dead else {
            return Ok(from);
        };
        let end = from
            + decoded.dead_offsets[from..]
                .iter()
                .take_while(|o| **o < before)
                .count();
        if end > from {
            let folder = format!("{DEAD_LETTERS}/{}/partition={p}", self.topic);
            self.append_to(p, &folder, &dead.slice(from, end - from), None)?;
        }
        Ok(end)
    }

    fn append(
        &mut self,
        p: i32,
        batch: &RecordBatch,
        timestamps: &[Option<i64>],
    ) -> Result<(), WriteError> {
        for (folder, rows) in self.layout.split(p, timestamps, batch) {
            let part = match rows {
                None => batch.clone(),
                Some(rows) => arrow::compute::take_record_batch(batch, &UInt32Array::from(rows))
                    .map_err(|e| parquet::errors::ParquetError::ArrowError(e.to_string()))
                    .map_err(|source| parquet_error(&self.topic, p, &folder, source))?,
            };
            self.append_to(p, &folder, &part, Some(batch.schema()))?;
        }
        Ok(())
    }

    /// Appends rows to the file of `folder` in the partition's open segment, opening either as
    /// needed. `schema` is the segment's data schema (`None` for dead letters).
    fn append_to(
        &mut self,
        p: i32,
        folder: &str,
        part: &RecordBatch,
        schema: Option<SchemaRef>,
    ) -> Result<(), WriteError> {
        let start = self.covered.get(&p).copied().unwrap_or(0);
        let segment = self.open.entry(p).or_insert_with(|| Segment {
            start,
            opened: Instant::now(),
            schema: schema.clone(),
            records: 0,
            files: BTreeMap::new(),
        });
        if segment.schema.is_none() {
            segment.schema = schema;
        }
        if !segment.files.contains_key(folder) {
            let tag = self.tags.get(&p).map_or("", String::as_str);
            let path = file_path(folder, &self.topic, p, segment.start, tag);
            let object = self.sink.create(path.clone())?;
            let writer = ParquetFile::try_new(object, part.schema(), self.props.clone())
                .map_err(|source| parquet_error(&self.topic, p, path.as_ref(), source))?;
            let file = OpenFile {
                path,
                records: 0,
                writer,
            };
            segment.files.insert(folder.to_string(), file);
        }
        if let Some(file) = segment.files.get_mut(folder) {
            file.writer
                .write(part)
                .map_err(|source| parquet_error(&self.topic, p, file.path.as_ref(), source))?;
            file.records += part.num_rows() as u64;
        }
        segment.records += part.num_rows() as u64;
        Ok(())
    }

    /// Seals the partition's open segment, whose coverage ends at `next_offset`.
    fn seal(&mut self, p: i32, next_offset: i64) -> Result<Sealed, WriteError> {
        let start = self.reported.get(&p).copied().unwrap_or(next_offset);
        let mut files = Vec::new();
        if let Some(segment) = self.open.remove(&p) {
            for file in segment.files.into_values() {
                let object = file
                    .writer
                    .into_inner()
                    .map_err(|source| parquet_error(&self.topic, p, file.path.as_ref(), source))?;
                files.push(SealedFile {
                    path: file.path,
                    records: file.records,
                    object,
                });
            }
        }
        self.covered.insert(p, next_offset);
        self.reported.insert(p, next_offset);
        Ok(Sealed {
            partition: p,
            start,
            next_offset,
            files,
        })
    }
}

fn parquet_error(
    topic: &str,
    partition: i32,
    path: &str,
    source: parquet::errors::ParquetError,
) -> WriteError {
    WriteError::Parquet {
        topic: topic.to_string(),
        partition,
        path: path.to_string(),
        source,
    }
}
