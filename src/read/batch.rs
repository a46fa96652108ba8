//! Records of one partition in columns: what the readers hand on, and the buffer they fill.

use super::Fields;
use arrow::array::{BinaryArray, BinaryBuilder};
use std::sync::Arc;
use std::time::Instant;

/// Records of one partition in columns, ready to decode without per-record allocations.
#[derive(Debug, Clone)]
pub struct RawBatch {
    pub partition: i32,
    pub offsets: Vec<i64>,
    pub timestamps: Vec<Option<i64>>,
    pub keys: BinaryArray,
    pub values: BinaryArray,
    /// The next offset to read after this batch: the partition is covered up to here.
    pub next_offset: i64,
    /// The partition's range is finished with this batch.
    pub last: bool,
    /// Each record's type header value, for a header-typed topic (`HeaderCapture::type_header`).
    pub types: Option<Vec<Option<String>>>,
    /// Each record's headers as text (invalid UTF-8 replaced), when a stream job asks for them.
    pub headers: Option<Vec<Vec<(String, String)>>>,
}

/// Which headers the reader keeps: reading them costs a lookup per record, so only when asked.
#[derive(Debug, Clone, Default)]
pub struct HeaderCapture {
    /// The header naming each record's type (topics.json `type_header`).
    pub type_header: Option<Arc<str>>,
    /// Every header, for stream jobs.
    pub all: bool,
}

impl HeaderCapture {
    pub fn for_topic(topic: &crate::config::TopicConfig) -> Self {
        HeaderCapture {
            type_header: topic.type_header.as_deref().map(Arc::from),
            all: false,
        }
    }
}

impl RawBatch {
    pub fn len(&self) -> usize {
        self.offsets.len()
    }
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Lets go of the keys, values and headers once they are decoded: a batch then waits
    /// for the writer with its rows only (the offsets stay, for counting and coverage).
    pub fn release_payloads(&mut self) {
        self.keys = BinaryArray::new_null(0);
        self.values = BinaryArray::new_null(0);
        self.types = None;
        self.headers = None;
    }
}

/// One partition's records buffered until they make a batch, and where its range stands.
pub(super) struct Pending {
    pub(super) next: i64,
    pub(super) end: i64,
    pub(super) done: bool,
    pub(super) offsets: Vec<i64>,
    timestamps: Vec<Option<i64>>,
    keys: BinaryBuilder,
    values: BinaryBuilder,
    /// When the oldest buffered record arrived.
    pub(super) first_at: Instant,
    /// Key and value bytes buffered.
    pub(super) bytes: usize,
    capture: HeaderCapture,
    types: Vec<Option<String>>,
    headers: Vec<Vec<(String, String)>>,
}

impl Pending {
    pub(super) fn new(start: i64, end: i64) -> Self {
        Pending {
            next: start,
            end,
            done: false,
            offsets: Vec::new(),
            timestamps: Vec::new(),
            keys: BinaryBuilder::new(),
            values: BinaryBuilder::new(),
            first_at: Instant::now(),
            bytes: 0,
            capture: HeaderCapture::default(),
            types: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub(super) fn with_capture(mut self, capture: &HeaderCapture) -> Self {
        self.capture = capture.clone();
        self
    }
    /// Appends a message's columns; the partition is then covered up to after it.
    pub(super) fn push(&mut self, msg: &Fields<'_>) {
        let offset = msg.offset;
        if self.offsets.is_empty() {
            self.first_at = Instant::now();
        }
        self.offsets.push(offset);
        self.timestamps.push(msg.timestamp);
        self.keys.append_option(msg.key);
        self.values.append_option(msg.payload);
        self.bytes += msg.key.map_or(0, <[u8]>::len) + msg.payload.map_or(0, <[u8]>::len);
        self.next = offset + 1;
        if self.capture.type_header.is_some() || self.capture.all {
            self.push_headers(msg);
        }
    }

    fn push_headers(&mut self, msg: &Fields<'_>) {
        let (mut kind, mut all) = (None, Vec::new());
        msg.headers(|key, value| {
            if let Some(name) = &self.capture.type_header
                && key == name.as_ref()
            {
                kind = value.map(|v| String::from_utf8_lossy(v).into_owned());
            }
            if self.capture.all {
                let value = value.map(String::from_utf8_lossy).unwrap_or_default();
                all.push((key.to_string(), value.into_owned()));
            }
        });
        if self.capture.type_header.is_some() {
            self.types.push(kind);
        }
        if self.capture.all {
            self.headers.push(all);
        }
    }

    pub(super) fn take(&mut self, partition: i32) -> RawBatch {
        self.bytes = 0;
        RawBatch {
            partition,
            offsets: std::mem::take(&mut self.offsets),
            timestamps: std::mem::take(&mut self.timestamps),
            keys: self.keys.finish(),
            values: self.values.finish(),
            next_offset: self.next,
            types: self
                .capture
                .type_header
                .is_some()
                .then(|| std::mem::take(&mut self.types)),
            headers: self.capture.all.then(|| std::mem::take(&mut self.headers)),
            last: self.done,
        }
    }
}
