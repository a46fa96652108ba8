//! One Parquet file being written: rows are kept as Arrow batches until a row group is due,
//! then the row group is encoded at once, its columns in parallel on rayon's threads when it
//! is large enough to be worth waking them.
//!
//! parquet's `ArrowWriter` keeps a column writer per column open for as long as a row group
//! is in progress, each with its page buffers and a zstd compressor and decompressor (about
//! 150 KB allocated per column). With a file open per partition being read, that state, not
//! the rows, was most of a run's memory (docs/performance.md). Here column writers exist only
//! while a row group is encoded, and encoding a large one uses every core.

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;
use std::io::Write;

type Result<T> = std::result::Result<T, ParquetError>;

/// Row groups of fewer Arrow bytes than this are encoded on the calling thread (default).
const PARALLEL_BYTES: usize = 256 * 1024;

pub struct ParquetFile<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Per top-level field, how many leaf columns (column writers) it has.
    leaves: Vec<usize>,
    buffered: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
    row_groups: usize,
    max_rows: usize,
    max_bytes: usize,
    /// Row groups of at least this many Arrow bytes are encoded on every core.
    parallel_bytes: usize,
}

impl<W: Write + Send> ParquetFile<W> {
    pub fn try_new(out: W, schema: SchemaRef, props: WriterProperties) -> Result<Self> {
        let max_rows = props.max_row_group_row_count().unwrap_or(usize::MAX).max(1);
        let max_bytes = props.max_row_group_bytes().unwrap_or(usize::MAX).max(1);
        let (writer, factory) =
            ArrowWriter::try_new(out, schema.clone(), Some(props))?.into_serialized_writer()?;
        let descr = writer.schema_descr();
        let mut leaves = vec![0; schema.fields().len()];
        for i in 0..descr.num_columns() {
            if let Some(n) = leaves.get_mut(descr.get_column_root_idx(i)) {
                *n += 1;
            }
        }
        Ok(ParquetFile {
            writer,
            factory,
            schema,
            leaves,
            buffered: Vec::new(),
            rows: 0,
            bytes: 0,
            row_groups: 0,
            max_rows,
            max_bytes,
            // On one core the other threads only take turns with this one.
            parallel_bytes: if crate::cores::available() > 1 {
                PARALLEL_BYTES
            } else {
                usize::MAX
            },
        })
    }

    #[cfg(test)]
    fn with_parallel_bytes(mut self, bytes: usize) -> Self {
        self.parallel_bytes = bytes;
        self
    }

    /// Buffers the rows; a row group is written each time `max_row_group_row_count` rows or
    /// `max_row_group_bytes` of Arrow data are buffered.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut batch = batch.clone();
        while batch.num_rows() > 0 {
            let take = batch.num_rows().min(self.max_rows - self.rows);
            let part = batch.slice(0, take);
            batch = batch.slice(take, batch.num_rows() - take);
            self.bytes += arrow_bytes(&part);
            self.rows += take;
            self.buffered.push(part);
            if self.rows >= self.max_rows || self.bytes >= self.max_bytes {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes the buffered rows out as a row group.
    pub fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.buffered);
        let chunks = self.encode(&batches)?;
        let mut row_group = self.writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.row_groups += 1;
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }

    /// Encodes a row group's columns, each top-level field on whichever core is free.
    fn encode(&self, batches: &[RecordBatch]) -> Result<Vec<ArrowColumnChunk>> {
        let mut writers = self
            .factory
            .create_column_writers(self.row_groups)?
            .into_iter();
        let mut fields: Vec<(usize, Vec<ArrowColumnWriter>)> = Vec::new();
        for (i, n) in self.leaves.iter().enumerate() {
            fields.push((i, writers.by_ref().take(*n).collect()));
        }
        let schema = &self.schema;
        let encode = |(i, mut writers): (usize, Vec<ArrowColumnWriter>)| {
            let field = schema.field(i);
            for batch in batches {
                let leaves = compute_leaves(field, batch.column(i))?;
                for (writer, leaf) in writers.iter_mut().zip(&leaves) {
                    writer.write(leaf)?;
                }
            }
            writers.into_iter().map(ArrowColumnWriter::close).collect()
        };
        // A small row group is encoded here: waking rayon's idle threads costs more than
        // they save, as they spin before sleeping again (a fifth of the CPU over 1,000
        // partitions of 200 records, docs/performance.md).
        let encoded: Vec<Result<Vec<ArrowColumnChunk>>> = if self.bytes < self.parallel_bytes {
            fields.into_iter().map(encode).collect()
        } else {
            fields.into_par_iter().map(encode).collect()
        };
        let mut chunks = Vec::with_capacity(self.leaves.iter().sum());
        for field in encoded {
            chunks.extend(field?);
        }
        Ok(chunks)
    }

    /// Arrow bytes of the rows buffered for the next row group.
    pub fn memory_size(&self) -> usize {
        self.bytes
    }

    pub fn in_progress_rows(&self) -> usize {
        self.rows
    }

    /// The file's size once the buffered rows are written (about: Arrow bytes for those).
    pub fn size(&self) -> usize {
        self.writer.bytes_written() + self.bytes
    }

    pub fn inner(&self) -> &W {
        self.writer.inner()
    }

    /// Writes the buffered rows and the footer; returns the output.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        self.writer.into_inner()
    }
}

/// The bytes a batch's rows take in Arrow (its slice, not the buffers it shares).
fn arrow_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, StructArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    fn batch(from: i64, n: i64) -> RecordBatch {
        let ids = Int64Array::from_iter_values(from..from + n);
        let names =
            StringArray::from_iter((from..from + n).map(|i| (i % 3 != 0).then(|| format!("n{i}"))));
        let inner = StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Int64, false)),
                Arc::new(ids.clone()) as _,
            ),
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(names.clone()) as _,
            ),
        ]);
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("nested", inner.data_type().clone(), false),
            Field::new("name", DataType::Utf8, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(ids), Arc::new(inner), Arc::new(names)],
        )
        .unwrap()
    }

    fn props(rows: usize) -> WriterProperties {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(rows))
            .build()
    }

    /// The same rows, values and types as parquet's own `ArrowWriter` writes, in row groups
    /// of the configured size, nested columns included.
    #[test]
    fn writes_what_arrow_writer_writes() {
        // Row groups encoded on every core and on the calling thread alike.
        for parallel_bytes in [0, usize::MAX] {
            writes_what_arrow_writer_writes_with(parallel_bytes);
        }
    }

    fn writes_what_arrow_writer_writes_with(parallel_bytes: usize) {
        let batches: Vec<RecordBatch> = (0..7).map(|i| batch(i * 1000, 1000)).collect();
        let schema = batches[0].schema();
        let mut ours = ParquetFile::try_new(Vec::new(), schema.clone(), props(2500))
            .unwrap()
            .with_parallel_bytes(parallel_bytes);
        let mut theirs =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props(2500))).unwrap();
        for b in &batches {
            ours.write(b).unwrap();
            theirs.write(b).unwrap();
        }
        let read = |bytes: Vec<u8>| {
            let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
            let groups: Vec<i64> = builder
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            let rows: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
            (
                groups,
                arrow::compute::concat_batches(&schema, &rows).unwrap(),
            )
        };
        let (our_groups, our_rows) = read(ours.into_inner().unwrap());
        let (their_groups, their_rows) = read(theirs.into_inner().unwrap());
        assert_eq!(our_groups, vec![2500, 2500, 2000]);
        assert_eq!(our_groups, their_groups);
        assert_eq!(our_rows, their_rows);
        assert_eq!(our_rows.num_rows(), 7000);
    }

    #[test]
    fn an_empty_file_has_no_row_group() {
        let schema = batch(0, 1).schema();
        let file = ParquetFile::try_new(Vec::new(), schema, props(10)).unwrap();
        let bytes = file.into_inner().unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
        assert_eq!(builder.metadata().num_row_groups(), 0);
    }
}
