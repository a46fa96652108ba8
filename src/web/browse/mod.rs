//! Browsing a topic: a query from the URL, a capped scan over its partitions, and the result
//! shown, streamed or downloaded.

pub mod download;
mod found;
mod matcher;
pub mod message;
mod outcome;
pub mod query;
pub mod scan;

pub use message::Message;
pub use outcome::{Event, Outcome, ScanError, Stats, Stopped};
pub use query::{Caps, Query, QueryError};
pub use scan::Scan;
