//! The sink: where Parquet files and progress records go, through object_store. Objects become
//! visible only when complete (a local staging file renamed, or a committed multipart upload).

mod writer;

pub use writer::ObjectWriter;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::runtime::Handle;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot open the sink at {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("sink {url}: cannot write {path}: {source}")]
    Write {
        url: String,
        path: String,
        source: object_store::Error,
    },
    #[error("sink {url}: cannot read {path}: {source}")]
    Read {
        url: String,
        path: String,
        source: object_store::Error,
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
    rt: Handle,
}

impl Sink {
    /// A local folder, created when missing.
    pub fn local(dir: &std::path::Path, rt: Handle) -> Result<Sink, SinkError> {
        let url = format!("file://{}", dir.display());
        let open_error = |reason: String| SinkError::Open {
            url: url.clone(),
            reason,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| open_error(format!("{e}; check the folder's permissions")))?;
        let root = dir.canonicalize().map_err(|e| open_error(e.to_string()))?;
        let store =
            LocalFileSystem::new_with_prefix(&root).map_err(|e| open_error(e.to_string()))?;
        Ok(Sink {
            store: Arc::new(store),
            url: format!("file://{}", root.display()),
            local_root: Some(root),
            rt,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts a streaming upload; nothing is visible at `path` until `ObjectWriter::finish`.
    pub fn create(&self, path: Path) -> Result<ObjectWriter, SinkError> {
        let upload = self
            .rt
            .block_on(self.store.put_multipart(&path))
            .map_err(|source| self.write_error(&path, source))?;
        Ok(ObjectWriter::new(self, path, upload))
    }

    /// Writes a small object in one atomic put.
    pub fn put(&self, path: &Path, bytes: Bytes) -> Result<(), SinkError> {
        self.rt
            .block_on(self.store.put(path, PutPayload::from(bytes)))
            .map_err(|source| self.write_error(path, source))?;
        self.sync(path)
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
        self.rt.block_on(read).map_err(|source| SinkError::Read {
            url: self.url.clone(),
            path: path.to_string(),
            source,
        })
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
            .map_err(|source| SinkError::Read {
                url: self.url.clone(),
                path: prefix.to_string(),
                source,
            })
    }

    /// The file behind `path` on a local sink, for fsync and for tests.
    pub fn local_path(&self, path: &Path) -> Option<PathBuf> {
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

    fn write_error(&self, path: &Path, source: object_store::Error) -> SinkError {
        SinkError::Write {
            url: self.url.clone(),
            path: path.to_string(),
            source,
        }
    }
}
