//! A custom binary that links runner as a library and offers a Rust processor to stream jobs.
//! A job file selects it with `"process": {"rust": {"name": "shout"}}`; run it as
//! `custom_processor --config-dir DIR --job NAME` (like `runner continuous --job NAME`).

use runner::process::{Outcome, ProcessError, Processor, Registry};
use runner::records::Record;
use serde_json::Value;

/// Upper-cases the `text` field of each record and counts its words; a record without
/// `text` is a dead letter.
struct Shout;

impl Processor for Shout {
    fn process(&mut self, records: &[Record]) -> Result<Vec<Outcome>, ProcessError> {
        Ok(records
            .iter()
            .map(|record| {
                let text = record
                    .value
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or("no text field")?;
                let mut value = record.value.clone();
                value["text"] = Value::from(text.to_uppercase());
                value["words"] = Value::from(text.split_whitespace().count());
                Ok(vec![value])
            })
            .collect())
    }

    fn batch_size(&self) -> usize {
        100
    }
}

fn main() -> std::process::ExitCode {
    runner::jobs::stream::main_with(Registry::default().with("shout", || Box::new(Shout)))
}
