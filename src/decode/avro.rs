//! Avro framed for the Confluent Schema Registry (magic byte 0, a 4-byte big-endian schema id,
//! the Avro body) straight into Arrow columns with arrow-avro. Top-level record fields become
//! columns; nested records, arrays, maps, enums and logical types keep their Arrow types.
//! Writer schemas are fetched by id from the registry once per process.

use super::PayloadError;
use crate::registry::{Registry, RegistryError, SchemaType};
use arrow::array::{Array, BinaryArray, RecordBatch};
use arrow_avro::reader::{Decoder, DecoderMode, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct AvroDecoder {
    registry: Option<Arc<Registry>>,
    /// The writer schema (`.avsc`) of an unframed topic, loaded on first use.
    fixed: Option<PathBuf>,
    fixed_schema: Option<AvroSchema>,
    /// Writer schemas by id, as seen so far.
    schemas: BTreeMap<u32, AvroSchema>,
    /// Built for the schemas above and a batch size; dropped after an error or a new id.
    decoder: Option<(Decoder, usize)>,
}

impl AvroDecoder {
    pub fn new(registry: Option<Arc<Registry>>, fixed: Option<PathBuf>) -> Self {
        AvroDecoder {
            registry,
            fixed,
            fixed_schema: None,
            schemas: BTreeMap::new(),
            decoder: None,
        }
    }

    /// Decodes every record; consecutive records of one schema form one piece.
    pub fn decode(&mut self, values: &BinaryArray) -> Result<Vec<RecordBatch>, PayloadError> {
        if let Some(file) = &self.fixed {
            if self.fixed_schema.is_none() {
                self.fixed_schema = Some(read_schema(file).map_err(PayloadError::Batch)?);
            }
            for index in 0..values.len() {
                if values.is_null(index) {
                    return Err(PayloadError::Record {
                        index,
                        reason: "null value (a tombstone): there is no Avro record to decode"
                            .into(),
                    });
                }
            }
        } else {
            for index in 0..values.len() {
                self.check_framing(values, index)?;
            }
        }
        let rows = values.len().max(1);
        if self.decoder.as_ref().is_none_or(|(_, size)| *size < rows) {
            self.decoder = Some((self.build(rows)?, rows));
        }
        let result = self.decode_all(values);
        if result.is_err() {
            // The decoder may hold part of a record; start the next attempt afresh.
            self.decoder = None;
        }
        match result {
            Err(PayloadError::Batch(reason)) if values.len() > 1 => {
                Err(self.first_failing(values, reason))
            }
            other => other,
        }
    }

    /// Some faults show only when arrow-avro finishes a batch (text that is not UTF-8): the
    /// first record that fails on its own is named, so it alone becomes a dead letter.
    fn first_failing(&mut self, values: &BinaryArray, batch_reason: String) -> PayloadError {
        let mut found = PayloadError::Batch(batch_reason);
        for index in 0..values.len() {
            match self.build(1) {
                Ok(decoder) => self.decoder = Some((decoder, 1)),
                Err(e) => {
                    found = e;
                    break;
                }
            }
            match self.decode_all(&values.slice(index, 1)) {
                Ok(_) => {}
                Err(PayloadError::Record { reason, .. } | PayloadError::Batch(reason)) => {
                    found = PayloadError::Record { index, reason };
                    break;
                }
                Err(e) => {
                    found = e;
                    break;
                }
            }
        }
        self.decoder = None;
        found
    }

    fn decode_all(&mut self, values: &BinaryArray) -> Result<Vec<RecordBatch>, PayloadError> {
        let Some((decoder, size)) = self.decoder.as_mut() else {
            return Err(PayloadError::Batch("the Avro decoder is missing".into()));
        };
        let size = *size;
        let mut pieces = Vec::new();
        for index in 0..values.len() {
            let record_error = |reason: String| PayloadError::Record { index, reason };
            let message = values.value(index);
            let held = size - decoder.capacity();
            let mut read = decoder
                .decode(message)
                .map_err(|e| record_error(format!("not valid Avro for its schema: {e}")))?;
            let mut expected = held + 1;
            if read < message.len() && decoder.batch_is_full() && self.fixed.is_none() {
                // A new schema id: arrow-avro ends the piece before the record's body. (With
                // a schema file there are no ids: bytes left over are the record's fault.)
                pieces.extend(flush(decoder)?);
                read += decoder
                    .decode(&message[read..])
                    .map_err(|e| record_error(format!("not valid Avro for its schema: {e}")))?;
                expected = 1;
            }
            if read != message.len() || size - decoder.capacity() != expected {
                return Err(record_error(format!(
                    "Avro body of {} bytes is truncated or has {} bytes left over",
                    message.len(),
                    message.len().saturating_sub(read)
                )));
            }
        }
        pieces.extend(flush(decoder)?);
        Ok(pieces)
    }

    /// Magic byte, length and a known Avro schema id; fetches new ids from the registry.
    fn check_framing(&mut self, values: &BinaryArray, index: usize) -> Result<(), PayloadError> {
        let record_error = |reason: String| PayloadError::Record { index, reason };
        if values.is_null(index) {
            return Err(record_error(
                "null value (a tombstone): there is no Avro record to decode".into(),
            ));
        }
        let message = values.value(index);
        if message.len() < 5 {
            return Err(record_error(format!(
                "{} bytes, shorter than the 5-byte Schema Registry header",
                message.len()
            )));
        }
        if message[0] != 0 {
            return Err(record_error(format!(
                "magic byte is 0x{:02x}, not 0x00: not framed for the Confluent Schema Registry",
                message[0]
            )));
        }
        let id = u32::from_be_bytes([message[1], message[2], message[3], message[4]]);
        if self.schemas.contains_key(&id) {
            return Ok(());
        }
        let Some(registry) = &self.registry else {
            return Err(PayloadError::Batch(
                RegistryError::NotConfigured.to_string(),
            ));
        };
        let schema = registry.schema(id).map_err(|e| {
            if e.is_about_the_record() {
                record_error(e.to_string())
            } else if e.is_transient() {
                PayloadError::Unavailable(e.to_string())
            } else {
                PayloadError::Batch(e.to_string())
            }
        })?;
        if schema.schema_type != SchemaType::Avro {
            return Err(record_error(format!(
                "schema id {id} is a {:?} schema, not Avro; set the topic's format to match",
                schema.schema_type
            )));
        }
        let avro = AvroSchema::new(schema.schema.clone());
        arrow_schema(&avro)
            .map_err(|e| record_error(format!("schema id {id} cannot be mapped to Arrow: {e}")))?;
        self.schemas.insert(id, avro);
        self.decoder = None;
        Ok(())
    }

    fn build(&self, rows: usize) -> Result<Decoder, PayloadError> {
        if let Some(schema) = &self.fixed_schema {
            let mut store = SchemaStore::new();
            let fingerprint = store
                .register(schema.clone())
                .map_err(|e| PayloadError::Batch(format!("the writer schema: {e}")))?;
            return ReaderBuilder::new()
                .with_writer_schema_store(store)
                .with_active_fingerprint(fingerprint)
                .with_decoder_mode(DecoderMode::UnframedDatum)
                .with_batch_size(rows)
                .build_decoder()
                .map_err(|e| {
                    PayloadError::Batch(format!("cannot map the Avro schema to Arrow: {e}"))
                });
        }
        let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
        for (id, schema) in &self.schemas {
            store
                .set(Fingerprint::Id(*id), schema.clone())
                .map_err(|e| PayloadError::Batch(format!("schema id {id}: {e}")))?;
        }
        ReaderBuilder::new()
            .with_writer_schema_store(store)
            .with_batch_size(rows)
            .build_decoder()
            .map_err(|e| PayloadError::Batch(format!("cannot map the Avro schemas to Arrow: {e}")))
    }
}

fn flush(decoder: &mut Decoder) -> Result<Option<RecordBatch>, PayloadError> {
    let batch = decoder
        .flush()
        .map_err(|e| PayloadError::Batch(format!("cannot finish the Avro batch: {e}")))?;
    batch
        .map(super::unions::without_unions)
        .transpose()
        .map_err(|e| PayloadError::Batch(format!("cannot turn an Avro union into a struct: {e}")))
}

/// An Avro schema file (`.avsc`), checked by building an Arrow schema from it.
pub fn read_schema(file: &Path) -> Result<AvroSchema, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the Avro schema {}: {e}", file.display()))?;
    let schema = AvroSchema::new(text);
    arrow_schema(&schema).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(schema)
}

/// The Arrow schema that records of `schema` decode to.
pub fn arrow_schema(schema: &AvroSchema) -> Result<arrow::datatypes::SchemaRef, String> {
    let mut store = SchemaStore::new();
    let fingerprint = store.register(schema.clone()).map_err(|e| e.to_string())?;
    let decoder = ReaderBuilder::new()
        .with_writer_schema_store(store)
        .with_active_fingerprint(fingerprint)
        .with_decoder_mode(DecoderMode::UnframedDatum)
        .build_decoder()
        .map_err(|e| format!("not a usable Avro schema: {e}"))?;
    Ok(decoder.schema())
}
