//! Processing hooks of stream jobs: a user step between the inputs and the outputs. A hook
//! gets records and gives back, for each, zero, one or several output values, or a reason to
//! set it aside as a dead letter.
//!
//! Three kinds: a long-lived child process speaking JSON lines (`command`), an HTTP endpoint
//! whose reply is merged into the value (`http`), and Rust code in a custom binary that links
//! runner as a library (`Processor`, registered by name).

mod command;
mod http;

pub use command::CommandHook;
pub use http::HttpHook;

use crate::config::stream::ProcessConfig;
use crate::records::Record;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("hook {hook}: {reason}")]
    Failed { hook: String, reason: String },
    #[error(
        "stream.process.rust.name: no processor `{0}` is registered in this binary; a custom binary registers it with runner::process::Registry (see docs/stream-jobs.md)"
    )]
    Unregistered(String),
}

/// What became of one input record.
pub type Outcome = Result<Vec<Value>, String>;

/// A processing step. `process` gets a batch of records and returns one outcome per record,
/// in order: the output values, or why the record is a dead letter. An `Err` of the whole call
/// fails the job (the records are not committed and are processed again after a restart).
pub trait Processor: Send {
    fn process(&mut self, records: &[Record]) -> Result<Vec<Outcome>, ProcessError>;
    /// Records per call.
    fn batch_size(&self) -> usize {
        1
    }
}

/// Builds a Rust processor for a stream job (by its `stream.process.rust.name`).
pub type Factory = fn() -> Box<dyn Processor>;

/// The Rust processors a binary offers, by name.
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl Registry {
    pub fn with(mut self, name: &str, factory: Factory) -> Self {
        self.factories.insert(name.to_string(), factory);
        self
    }
}

/// The hook a job's `stream.process` describes; `dir` is where commands run.
pub fn build(
    config: &ProcessConfig,
    dir: &Path,
    registry: &Registry,
    consumer_name: &str,
) -> Result<Box<dyn Processor>, ProcessError> {
    Ok(match config {
        ProcessConfig::Command(c) => Box::new(CommandHook::start(c, dir, consumer_name)?),
        ProcessConfig::Http(h) => Box::new(HttpHook::new(h)?),
        ProcessConfig::Rust(r) => match registry.factories.get(&r.name) {
            Some(factory) => factory(),
            None => return Err(ProcessError::Unregistered(r.name.clone())),
        },
    })
}

/// A reply value as output values: `null` none, an array several, anything else one.
pub(crate) fn outputs_of(reply: Value) -> Vec<Value> {
    match reply {
        Value::Null => Vec::new(),
        Value::Array(values) => values,
        one => vec![one],
    }
}
