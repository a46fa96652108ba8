//! Protobuf, framed for the Confluent Schema Registry (magic byte 0, a 4-byte schema id, the
//! message-index list, the message) or unframed with a message type from a `.proto` file or a
//! descriptor set. Messages are decoded with prost-reflect into Arrow builders.

use super::proto_arrow::MessageColumns;
use super::{PayloadError, Piece};
use crate::registry::{Registry, RegistryError, SchemaType};
use arrow::array::{Array, BinaryArray};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct ProtobufDecoder {
    registry: Option<Arc<Registry>>,
    /// `schema_file` and `message` of an unframed topic.
    fixed: Option<(PathBuf, String)>,
    fixed_type: Option<MessageDescriptor>,
    /// Descriptor pools of registry schemas, by schema id.
    pools: HashMap<u32, DescriptorPool>,
}

impl ProtobufDecoder {
    pub fn new(registry: Option<Arc<Registry>>, fixed: Option<(PathBuf, String)>) -> Self {
        ProtobufDecoder {
            registry,
            fixed,
            fixed_type: None,
            pools: HashMap::new(),
        }
    }

    /// Decodes every record; consecutive records of one message type form one piece.
    pub fn decode(&mut self, values: &BinaryArray) -> Result<Vec<Piece>, PayloadError> {
        let mut pieces = Vec::new();
        let mut current: Option<(MessageDescriptor, MessageColumns)> = None;
        for index in 0..values.len() {
            let record_error = |reason: String| PayloadError::Record { index, reason };
            if values.is_null(index) {
                return Err(record_error(
                    "null value (a tombstone): there is no Protobuf message to decode".into(),
                ));
            }
            let (descriptor, body) = self.message_type(values.value(index), index)?;
            if current.as_ref().is_none_or(|(d, _)| *d != descriptor) {
                if let Some((_, mut columns)) = current.take() {
                    pieces.push(columns.finish());
                }
                let columns = MessageColumns::new(&descriptor, values.len()).map_err(|e| {
                    // A registry schema is the record's; a schema_file is the topic's config.
                    if self.fixed.is_some() {
                        PayloadError::Batch(e)
                    } else {
                        record_error(format!("its message type cannot be mapped to columns: {e}"))
                    }
                })?;
                current = Some((descriptor.clone(), columns));
            }
            let Some((_, columns)) = current.as_mut() else {
                continue;
            };
            let invalid = |e: String| {
                let name = descriptor.full_name();
                record_error(format!("not a valid {name} message: {e}"))
            };
            match columns.append_wire(body) {
                Some(appended) => appended
                    .map_err(|e| invalid(format!("failed to decode Protobuf message: {e}")))?,
                None => {
                    let message = DynamicMessage::decode(descriptor.clone(), body)
                        .map_err(|e| invalid(e.to_string()))?;
                    columns.append(&message).map_err(PayloadError::Batch)?;
                }
            }
        }
        if let Some((_, mut columns)) = current {
            pieces.push(columns.finish());
        }
        Ok(pieces)
    }

    /// The message type of a record and its message bytes.
    fn message_type<'a>(
        &mut self,
        bytes: &'a [u8],
        index: usize,
    ) -> Result<(MessageDescriptor, &'a [u8]), PayloadError> {
        if let Some((file, name)) = &self.fixed {
            if self.fixed_type.is_none() {
                self.fixed_type = Some(load_message(file, name).map_err(PayloadError::Batch)?);
            }
            let descriptor = self.fixed_type.clone();
            return descriptor
                .map(|d| (d, bytes))
                .ok_or_else(|| PayloadError::Batch("no message type".into()));
        }
        let record_error = |reason: String| PayloadError::Record { index, reason };
        let (id, path, body) = confluent_frame(bytes).map_err(record_error)?;
        if !self.pools.contains_key(&id) {
            let pool = self.fetch(id).map_err(|e| match e {
                Fetch::Record(reason) => record_error(reason),
                Fetch::Batch(reason) => PayloadError::Batch(reason),
                Fetch::Unavailable(reason) => PayloadError::Unavailable(reason),
            })?;
            self.pools.insert(id, pool);
        }
        let pool = &self.pools[&id];
        let descriptor = by_index_path(pool, &path).ok_or_else(|| {
            record_error(format!(
                "schema id {id} has no message at index path {path:?}"
            ))
        })?;
        Ok((descriptor, body))
    }

    fn fetch(&self, id: u32) -> Result<DescriptorPool, Fetch> {
        let Some(registry) = &self.registry else {
            return Err(Fetch::Batch(RegistryError::NotConfigured.to_string()));
        };
        let schema = registry.schema(id).map_err(|e| {
            if e.is_about_the_record() {
                Fetch::Record(e.to_string())
            } else if e.is_transient() {
                Fetch::Unavailable(e.to_string())
            } else {
                Fetch::Batch(e.to_string())
            }
        })?;
        if schema.schema_type != SchemaType::Protobuf {
            return Err(Fetch::Record(format!(
                "schema id {id} is a {:?} schema, not Protobuf; set the topic's format to match",
                schema.schema_type
            )));
        }
        if !schema.references.is_empty() {
            return Err(Fetch::Record(format!(
                "schema id {id} imports other subjects (references); runner does not resolve references yet"
            )));
        }
        compile_source(&format!("schema-{id}.proto"), &schema.schema)
            .map_err(|e| Fetch::Record(format!("schema id {id} does not compile: {e}")))
    }
}

enum Fetch {
    Record(String),
    Unavailable(String),
    Batch(String),
}

/// Splits a Confluent Protobuf frame into schema id, message-index path and message bytes.
fn confluent_frame(bytes: &[u8]) -> Result<(u32, Vec<i32>, &[u8]), String> {
    if bytes.len() < 6 {
        return Err(format!(
            "{} bytes, shorter than the Schema Registry header",
            bytes.len()
        ));
    }
    if bytes[0] != 0 {
        return Err(format!(
            "magic byte is 0x{:02x}, not 0x00: not framed for the Confluent Schema Registry",
            bytes[0]
        ));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let mut rest = &bytes[5..];
    let count = zigzag(&mut rest)?;
    // A count of 0 is the common shorthand for the first message of the file.
    let path = if count == 0 {
        vec![0]
    } else {
        (0..count)
            .map(|_| zigzag(&mut rest))
            .collect::<Result<_, _>>()?
    };
    Ok((id, path, rest))
}

/// Reads one zigzag-encoded varint, as Confluent writes the message indexes.
fn zigzag(bytes: &mut &[u8]) -> Result<i32, String> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let Some((&b, rest)) = bytes.split_first() else {
            return Err("the message-index list is truncated".into());
        };
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            let decoded = ((value >> 1) as i64) ^ -((value & 1) as i64);
            return i32::try_from(decoded).map_err(|_| "a message index is out of range".into());
        }
    }
    Err("a message index varint is too long".into())
}

/// The message at a Confluent index path: top-level message, then nested ones.
fn by_index_path(pool: &DescriptorPool, path: &[i32]) -> Option<MessageDescriptor> {
    let file = pool.files().last()?;
    let (first, rest) = path.split_first()?;
    let mut message = file.messages().nth(usize::try_from(*first).ok()?)?;
    for i in rest {
        let child = message.child_messages().nth(usize::try_from(*i).ok()?)?;
        message = child;
    }
    Some(message)
}

pub(super) fn compile_source(name: &str, source: &str) -> Result<DescriptorPool, String> {
    let resolver = protox::file::ChainFileResolver::new();
    let mut resolver = resolver;
    resolver.add(InMemory {
        name: name.to_string(),
        source: source.to_string(),
    });
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler.open_file(name).map_err(|e| e.to_string())?;
    Ok(compiler.descriptor_pool())
}

struct InMemory {
    name: String,
    source: String,
}

impl protox::file::FileResolver for InMemory {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        if name == self.name {
            protox::file::File::from_source(name, &self.source)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

/// The first message of `.proto` source, as Confluent's message index 0 names it.
pub fn first_message(name: &str, source: &str) -> Result<MessageDescriptor, String> {
    let pool = compile_source(name, source)?;
    by_index_path(&pool, &[0]).ok_or_else(|| format!("{name} defines no message"))
}

/// The message type `name` from a `.proto` file (compiled with its folder as include path) or
/// a binary descriptor set (`protoc --include_imports --descriptor_set_out`).
pub fn load_message(file: &Path, name: &str) -> Result<MessageDescriptor, String> {
    let what = file.display();
    let pool = if file.extension().is_some_and(|e| e == "proto") {
        let folder = file.parent().unwrap_or(Path::new("."));
        let mut compiler = protox::Compiler::new([folder]).map_err(|e| format!("{what}: {e}"))?;
        compiler.include_imports(true);
        let file_name = file.file_name().unwrap_or_default();
        compiler
            .open_file(file_name)
            .map_err(|e| format!("{what} does not compile: {e}"))?;
        compiler.descriptor_pool()
    } else {
        let bytes = std::fs::read(file).map_err(|e| format!("cannot read {what}: {e}"))?;
        DescriptorPool::decode(bytes.as_slice())
            .map_err(|e| format!("{what} is not a descriptor set: {e}"))?
    };
    let known: Vec<String> = pool
        .all_messages()
        .map(|m| m.full_name().to_string())
        .collect();
    pool.get_message_by_name(name)
        .ok_or_else(|| format!("{what} has no message {name}; it has: {}", known.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confluent_frames_split_into_id_path_and_body() {
        assert_eq!(
            confluent_frame(&[0, 0, 0, 0, 7, 0, 42]).unwrap(),
            (7, vec![0], &[42u8][..])
        );
        // Two indexes, [1, 0]: count 2 (zigzag 4), 1 (zigzag 2), 0.
        assert_eq!(
            confluent_frame(&[0, 0, 0, 1, 0, 4, 2, 0, 9]).unwrap(),
            (256, vec![1, 0], &[9u8][..])
        );
        assert!(
            confluent_frame(&[1, 0, 0, 0, 7, 0])
                .unwrap_err()
                .contains("magic byte is 0x01")
        );
        assert!(
            confluent_frame(&[0, 0, 0, 0, 7, 4, 2])
                .unwrap_err()
                .contains("truncated")
        );
    }
}
