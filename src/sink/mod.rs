//! The sink: where Parquet files and progress records go, through object_store (a local
//! folder, Azure, S3 or GCS). Objects become visible only when complete (a committed multipart
//! upload, or on a local folder a staging file renamed and fsynced).

pub(crate) mod store;
mod writer;

pub use crate::config::sink::{SinkConfig, StoreKind};
pub use writer::ObjectWriter;

/// An object's version (its ETag), for compare-and-swap writes.
pub type Version = object_store::UpdateVersion;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::runtime::Handle;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot open the sink at {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("sink {url}: cannot write {path}: {reason}. {hint}")]
    Write {
        url: String,
        path: String,
        reason: String,
        hint: String,
        #[source]
        source: object_store::Error,
    },
    #[error("sink {url}: cannot read {path}: {reason}. {hint}")]
    Read {
        url: String,
        path: String,
        reason: String,
        hint: String,
        #[source]
        source: object_store::Error,
    },
    #[error(
        "sink {url}: cannot stage {path} in {staging}: {source}; check the staging_dir's space and permissions"
    )]
    Staging {
        url: String,
        path: String,
        staging: String,
        source: std::io::Error,
    },
    #[error(
        "sink {url}: uploaded {path} has {found} bytes where {expected} were written; the run stops so the next one redoes it"
    )]
    Verify {
        url: String,
        path: String,
        expected: u64,
        found: u64,
    },
    #[error("sink {url}: cannot lock the folder of {path} for a conditional write: {source}")]
    LocalLock {
        url: String,
        path: String,
        source: std::io::Error,
    },
    #[error("sink {url}: cannot make {path} durable: {source}")]
    Sync {
        url: String,
        path: String,
        source: std::io::Error,
    },
}

pub struct Sink {
    store: Arc<dyn ObjectStore>,
    url: String,
    /// Set for a local folder, whose files must be fsynced before progress may point past them.
    local_root: Option<PathBuf>,
    cfg: SinkConfig,
    rt: Handle,
}

impl Sink {
    /// Opens the configured store; offline (no request is sent).
    pub fn open(cfg: &SinkConfig, rt: Handle) -> Result<Sink, SinkError> {
        let (store, local_root) = store::build(cfg).map_err(|reason| SinkError::Open {
            url: cfg.url.clone(),
            reason,
        })?;
        let mut cfg = cfg.clone();
        if let Some(root) = &local_root {
            cfg.url = format!("file://{}", root.display());
        }
        if let Some(dir) = &cfg.staging_dir {
            writer::prepare_staging(dir).map_err(|e| SinkError::Open {
                url: cfg.url.clone(),
                reason: format!("staging_dir {}: {e}", dir.display()),
            })?;
        }
        Ok(Sink {
            store,
            url: cfg.url.clone(),
            local_root,
            cfg,
            rt,
        })
    }

    /// A local folder, created when missing.
    pub fn local(dir: &std::path::Path, rt: Handle) -> Result<Sink, SinkError> {
        Sink::open(&SinkConfig::local_folder(dir), rt)
    }

    pub fn config(&self) -> &SinkConfig {
        &self.cfg
    }

    /// The I/O runtime this sink's requests run on.
    pub fn runtime(&self) -> Handle {
        self.rt.clone()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts a streaming upload; nothing is visible at `path` until `ObjectWriter::finish`.
    pub fn create(&self, path: Path) -> Result<ObjectWriter, SinkError> {
        if let Some(dir) = &self.cfg.staging_dir {
            return ObjectWriter::staged(self, path.clone(), dir).map_err(|source| {
                SinkError::Staging {
                    url: self.url.clone(),
                    path: path.to_string(),
                    staging: dir.display().to_string(),
                    source,
                }
            });
        }
        let upload = self
            .rt
            .block_on(self.store.put_multipart(&path))
            .map_err(|source| self.write_error(&path, source))?;
        Ok(ObjectWriter::streaming(self, path, upload))
    }

    /// Writes a small object in one atomic put.
    pub fn put(&self, path: &Path, bytes: Bytes) -> Result<(), SinkError> {
        self.rt
            .block_on(self.store.put(path, PutPayload::from(bytes)))
            .map_err(|source| self.write_error(path, source))?;
        self.sync(path)
    }

    /// Writes a small object only if nothing is at `path` yet; false when something is. Of
    /// two writers racing for one path exactly one gets true, on every store.
    pub fn put_new(&self, path: &Path, bytes: Bytes) -> Result<bool, SinkError> {
        let opts = object_store::PutOptions::from(object_store::PutMode::Create);
        match self
            .rt
            .block_on(self.store.put_opts(path, PutPayload::from(bytes), opts))
        {
            Ok(_) => self.sync(path).map(|_| true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(source) => Err(self.write_error(path, source)),
        }
    }

    /// Reads an object with its version (ETag), for a later `put_if`.
    pub fn get_versioned(&self, path: &Path) -> Result<Option<(Bytes, Version)>, SinkError> {
        let read = async {
            match self.store.get(path).await {
                Ok(result) => {
                    let version = Version {
                        e_tag: result.meta.e_tag.clone(),
                        version: result.meta.version.clone(),
                    };
                    result.bytes().await.map(|b| Some((b, version)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        self.rt
            .block_on(read)
            .map_err(|source| self.read_error(path, source))
    }

    /// Compare-and-swap: writes `bytes` only if the object is still at `expected` (absent when
    /// `None`). `Ok(None)` when another writer changed it first; otherwise its new version.
    /// Object stores check the ETag (If-Match); a local folder, which object_store cannot do
    /// this for, compares under an exclusive lock of the folder.
    pub fn put_if(
        &self,
        path: &Path,
        bytes: Bytes,
        expected: Option<&Version>,
    ) -> Result<Option<Version>, SinkError> {
        let mode = match expected {
            None => object_store::PutMode::Create,
            Some(v) => object_store::PutMode::Update(v.clone()),
        };
        let Some(file) = self.local_path(path) else {
            let opts = object_store::PutOptions::from(mode);
            return match self.rt.block_on(self.store.put_opts(
                path,
                PutPayload::from(bytes.clone()),
                opts,
            )) {
                Ok(put) => Ok(Some(Version {
                    e_tag: put.e_tag,
                    version: put.version,
                })),
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => Ok(None),
                // An S3-compatible store without conditional writes (aws_conditional_put =
                // disabled): the topic lock is then the only guard, as the warning says.
                Err(object_store::Error::NotImplemented { .. }) => {
                    static WARNED: std::sync::Once = std::sync::Once::new();
                    WARNED.call_once(|| {
                        tracing::warn!(url = %self.url, "the store cannot write conditionally; progress is guarded by the topic locks only");
                    });
                    self.put(path, bytes)?;
                    Ok(Some(Version {
                        e_tag: None,
                        version: None,
                    }))
                }
                Err(source) => Err(self.write_error(path, source)),
            };
        };
        let lock_error = |source| SinkError::LocalLock {
            url: self.url.clone(),
            path: path.to_string(),
            source,
        };
        let folder = file.parent().unwrap_or(std::path::Path::new("/"));
        std::fs::create_dir_all(folder).map_err(lock_error)?;
        let guard = std::fs::File::open(folder).map_err(lock_error)?;
        lock_folder(&guard, folder).map_err(lock_error)?;
        let current = match self.rt.block_on(self.store.head(path)) {
            Ok(meta) => Some(meta.e_tag),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(source) => return Err(self.read_error(path, source)),
        };
        if current.as_ref() != expected.map(|v| &v.e_tag) {
            return Ok(None);
        }
        let put = self
            .rt
            .block_on(self.store.put(path, PutPayload::from(bytes)))
            .map_err(|source| self.write_error(path, source))?;
        self.sync(path)?;
        drop(guard);
        Ok(Some(Version {
            e_tag: put.e_tag,
            version: put.version,
        }))
    }

    /// Reads an object; `None` when it does not exist.
    pub fn get(&self, path: &Path) -> Result<Option<Bytes>, SinkError> {
        let read = async {
            match self.store.get(path).await {
                Ok(result) => result.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        self.rt
            .block_on(read)
            .map_err(|source| self.read_error(path, source))
    }

    /// Lists every object under `prefix`.
    pub fn list(&self, prefix: &Path) -> Result<Vec<Path>, SinkError> {
        use futures_util::TryStreamExt;
        self.rt
            .block_on(
                self.store
                    .list(Some(prefix))
                    .map_ok(|m| m.location)
                    .try_collect(),
            )
            .map_err(|source| self.read_error(prefix, source))
    }

    /// The file behind `path` on a local sink, for fsync.
    fn local_path(&self, path: &Path) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        Some(
            path.parts()
                .fold(root.clone(), |p, part| p.join(part.as_ref())),
        )
    }

    /// Flushes a local file and its folder to disk, so a power loss cannot undo it.
    fn sync(&self, path: &Path) -> Result<(), SinkError> {
        let Some(file) = self.local_path(path) else {
            return Ok(());
        };
        let sync = |p: &std::path::Path| std::fs::File::open(p).and_then(|f| f.sync_all());
        sync(&file)
            .and_then(|_| file.parent().map_or(Ok(()), sync))
            .map_err(|source| SinkError::Sync {
                url: self.url.clone(),
                path: path.to_string(),
                source,
            })
    }

    /// Checks over the network that the store is reachable and writable with the configured
    /// credentials: writes, reads back, lists and deletes a small object under `_runner/`.
    pub fn probe(&self, id: &str) -> Result<(), SinkError> {
        let path = Path::from(format!("_runner/probe/{id}.txt"));
        let body = Bytes::from(format!("runner probe {id}"));
        self.put(&path, body.clone())?;
        let back = self.get(&path)?;
        if back.as_ref() != Some(&body) {
            return Err(SinkError::Verify {
                url: self.url.clone(),
                path: path.to_string(),
                expected: body.len() as u64,
                found: back.map_or(0, |b| b.len() as u64),
            });
        }
        self.list(&Path::from("_runner/probe"))?;
        self.delete(&path)
    }

    /// Deletes an object; one that does not exist is fine.
    pub fn delete(&self, path: &Path) -> Result<(), SinkError> {
        match self.rt.block_on(self.store.delete(path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.write_error(path, source)),
        }
    }

    /// The size of an object, `None` when it does not exist.
    /// Size and last change of an object; `None` when it does not exist.
    pub fn stat(
        &self,
        path: &Path,
    ) -> Result<Option<(u64, chrono::DateTime<chrono::Utc>)>, SinkError> {
        match self.rt.block_on(self.store.head(path)) {
            Ok(meta) => Ok(Some((meta.size, meta.last_modified))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(self.read_error(path, source)),
        }
    }

    pub fn size(&self, path: &Path) -> Result<Option<u64>, SinkError> {
        match self.rt.block_on(self.store.head(path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(self.read_error(path, source)),
        }
    }

    fn write_error(&self, path: &Path, source: object_store::Error) -> SinkError {
        SinkError::Write {
            url: self.url.clone(),
            path: path.to_string(),
            reason: store::condense(&source),
            hint: store::hint(&self.cfg, &source),
            source,
        }
    }

    fn read_error(&self, path: &Path, source: object_store::Error) -> SinkError {
        SinkError::Read {
            url: self.url.clone(),
            path: path.to_string(),
            reason: store::condense(&source),
            hint: store::hint(&self.cfg, &source),
            source,
        }
    }
}

#[cfg(test)]
mod tests;

/// Locks a local folder for one compare-and-swap. The lock is held for the moment of one
/// write, but a process stopped inside that moment keeps it until it resumes or exits, and
/// every other writer of the folder waits: that wait is logged, once, after a few seconds.
fn lock_folder(guard: &std::fs::File, folder: &std::path::Path) -> std::io::Result<()> {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
    let started = std::time::Instant::now();
    loop {
        match guard.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < PATIENCE => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::warn!(folder = %folder.display(), seconds = PATIENCE.as_secs(), "another process has held this folder's write lock for a while (stopped or stalled?); waiting for it to resume or exit");
                return guard.lock();
            }
        }
    }
}
