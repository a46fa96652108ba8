//! A `std::io::Write` over an object_store multipart upload, so the synchronous Parquet writer
//! streams straight to the store with bounded memory.

use super::{Sink, SinkError};
use object_store::path::Path;
use object_store::{MultipartUpload, WriteMultipart};
use std::io;
use tokio::runtime::Handle;

/// Parts uploading at once per file; more wait, which bounds memory.
const MAX_PARTS_IN_FLIGHT: usize = 4;
/// object_store's part size for `WriteMultipart::new`.
const PART_SIZE: u64 = 5 * 1024 * 1024;

pub struct ObjectWriter {
    upload: Option<WriteMultipart>,
    path: Path,
    written: u64,
    rt: Handle,
}

impl ObjectWriter {
    pub(super) fn new(sink: &Sink, path: Path, upload: Box<dyn MultipartUpload>) -> Self {
        ObjectWriter {
            upload: Some(WriteMultipart::new(upload)),
            path,
            written: 0,
            rt: sink.rt.clone(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Completes the upload: the object appears whole, then is made durable.
    pub fn finish(mut self, sink: &Sink) -> Result<u64, SinkError> {
        if let Some(upload) = self.upload.take() {
            self.rt
                .block_on(upload.finish())
                .map_err(|source| sink.write_error(&self.path, source))?;
        }
        sink.sync(&self.path)?;
        Ok(self.written)
    }
}

impl io::Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let upload = self
            .upload
            .as_mut()
            .ok_or_else(|| io::Error::other("upload already finished"))?;
        // Part uploads are spawned onto the runtime; wait for room only when a part fills.
        let _entered = self.rt.enter();
        let before = self.written / PART_SIZE;
        let after = (self.written + buf.len() as u64) / PART_SIZE;
        if before != after {
            self.rt
                .block_on(upload.wait_for_capacity(MAX_PARTS_IN_FLIGHT))
                .map_err(io::Error::other)?;
        }
        upload.write(buf);
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter {
    /// An unfinished upload is aborted so no partial object or staging file is left behind.
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take()
            && Handle::try_current().is_err()
        {
            let _ = self.rt.block_on(upload.abort());
        }
    }
}
