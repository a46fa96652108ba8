//! A `std::io::Write` over an object_store multipart upload, so the synchronous Parquet writer
//! streams straight to the store with bounded memory. With a `staging_dir`, the file is written
//! locally first, uploaded on finish, verified by size, then deleted (the exporter's way).

use super::{Sink, SinkError};
use crate::crash::crash_point;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStoreExt, WriteMultipart};
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::runtime::Handle;

/// Parts uploading at once per file; more wait, which bounds memory.
const MAX_PARTS_IN_FLIGHT: usize = 4;
/// object_store's part size for `WriteMultipart::new`: S3 and GCS need 5 MiB parts.
const PART_SIZE: u64 = 5 * 1024 * 1024;
/// Azure blocks and local parts may be small: less memory per open file.
const SMALL_PART_SIZE: u64 = 256 * 1024;

static STAGED: AtomicU64 = AtomicU64::new(0);

enum Target {
    Stream(WriteMultipart),
    Staged {
        file: BufWriter<File>,
        local: PathBuf,
    },
}

pub struct ObjectWriter {
    target: Option<Target>,
    path: Path,
    written: u64,
    /// Bytes of one part: what a streaming upload holds before it sends a part.
    part: u64,
    /// When the upload began: an object changed before it is not this upload's.
    started: chrono::DateTime<chrono::Utc>,
    rt: Handle,
}

impl ObjectWriter {
    pub(super) fn streaming(sink: &Sink, path: Path, upload: Box<dyn MultipartUpload>) -> Self {
        use super::StoreKind;
        let part = match sink.cfg.kind {
            StoreKind::Local | StoreKind::Azure => SMALL_PART_SIZE,
            StoreKind::S3 | StoreKind::Gcs => PART_SIZE,
        };
        ObjectWriter {
            target: Some(Target::Stream(WriteMultipart::new_with_chunk_size(
                upload,
                part as usize,
            ))),
            path,
            written: 0,
            part,
            started: chrono::Utc::now(),
            rt: sink.rt.clone(),
        }
    }

    /// Bytes written but still held in memory, waiting to fill a part.
    pub fn buffered(&self) -> u64 {
        match self.target {
            Some(Target::Stream(_)) => self.written % self.part,
            _ => 0,
        }
    }

    pub(super) fn staged(sink: &Sink, path: Path, dir: &std::path::Path) -> io::Result<Self> {
        let folder = dir.join(format!("runner-{}", std::process::id()));
        std::fs::create_dir_all(&folder)?;
        let local = folder.join(format!(
            "{}.parquet",
            STAGED.fetch_add(1, Ordering::Relaxed)
        ));
        let file = BufWriter::with_capacity(1 << 20, File::create(&local)?);
        Ok(ObjectWriter {
            target: Some(Target::Staged { file, local }),
            path,
            written: 0,
            part: PART_SIZE,
            started: chrono::Utc::now(),
            rt: sink.rt.clone(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Completes the upload: the object appears whole, then is made durable.
    pub fn finish(mut self, sink: &Sink) -> Result<u64, SinkError> {
        match self.target.take() {
            Some(Target::Stream(upload)) => {
                if let Err(source) = self.rt.block_on(upload.finish())
                    && !self.landed(sink)
                {
                    return Err(sink.write_error(&self.path, source));
                }
            }
            Some(Target::Staged { file, local }) => {
                let result = self.upload_staged(sink, file, &local);
                let _ = std::fs::remove_file(&local);
                result?;
            }
            None => {}
        }
        sink.sync(&self.path)?;
        Ok(self.written)
    }

    /// Whether a completion that failed had landed anyway: the store did it and its answer was
    /// lost, so the retry found the parts gone (Azure `InvalidBlockList`, S3 `NoSuchUpload`).
    /// The object is then there with this upload's size, changed since it began (a minute
    /// of leeway for the store's clock).
    fn landed(&self, sink: &Sink) -> bool {
        let since = self.started - chrono::Duration::seconds(60);
        match sink.stat(&self.path) {
            Ok(Some((size, changed))) => size == self.written && changed >= since,
            _ => false,
        }
    }

    fn upload_staged(
        &self,
        sink: &Sink,
        file: BufWriter<File>,
        local: &std::path::Path,
    ) -> Result<(), SinkError> {
        let staging_error = |source: io::Error| SinkError::Staging {
            url: sink.url.clone(),
            path: self.path.to_string(),
            staging: local.display().to_string(),
            source,
        };
        let file = file
            .into_inner()
            .map_err(|e| staging_error(e.into_error()))?;
        file.sync_all().map_err(staging_error)?;
        let mut reader = File::open(local).map_err(staging_error)?;
        let upload = self
            .rt
            .block_on(sink.store.put_multipart(&self.path))
            .map_err(|source| sink.write_error(&self.path, source))?;
        let mut upload = WriteMultipart::new(upload);
        let mut chunk = vec![0u8; PART_SIZE as usize];
        loop {
            let n = reader.read(&mut chunk).map_err(staging_error)?;
            if n == 0 {
                break;
            }
            let _entered = self.rt.enter();
            self.rt
                .block_on(upload.wait_for_capacity(MAX_PARTS_IN_FLIGHT))
                .map_err(|source| sink.write_error(&self.path, source))?;
            upload.write(&chunk[..n]);
        }
        if let Err(source) = self.rt.block_on(upload.finish())
            && !self.landed(sink)
        {
            return Err(sink.write_error(&self.path, source));
        }
        let found = sink.size(&self.path)?.unwrap_or(0);
        if found != self.written {
            return Err(SinkError::Verify {
                url: sink.url.clone(),
                path: self.path.to_string(),
                expected: self.written,
                found,
            });
        }
        Ok(())
    }
}

impl io::Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.target.as_mut() {
            Some(Target::Stream(upload)) => {
                // Part uploads are spawned onto the runtime; wait for room only when a part fills.
                let _entered = self.rt.enter();
                let before = self.written / self.part;
                let after = (self.written + buf.len() as u64) / self.part;
                if before != after {
                    self.rt
                        .block_on(upload.wait_for_capacity(MAX_PARTS_IN_FLIGHT))
                        .map_err(io::Error::other)?;
                }
                upload.write(buf);
            }
            Some(Target::Staged { file, .. }) => file.write_all(buf)?,
            None => return Err(io::Error::other("upload already finished")),
        }
        self.written += buf.len() as u64;
        crash_point!("file-half-written");
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter {
    /// An unfinished upload is aborted so no partial object or staging file is left behind.
    fn drop(&mut self) {
        match self.target.take() {
            Some(Target::Stream(upload)) if Handle::try_current().is_err() => {
                let _ = self.rt.block_on(upload.abort());
            }
            Some(Target::Staged { local, .. }) => {
                let _ = std::fs::remove_file(local);
            }
            _ => {}
        }
    }
}

/// Creates the staging folder and removes what killed runs left there: folders of processes
/// that no longer exist. Each process stages under its own `runner-<pid>` folder.
pub(super) fn prepare_staging(dir: &std::path::Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if !std::path::Path::new("/proc/self").exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("runner-")) else {
            continue;
        };
        let alive = std::path::Path::new("/proc").join(pid).exists();
        if !alive && pid.parse::<u32>().is_ok() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}
