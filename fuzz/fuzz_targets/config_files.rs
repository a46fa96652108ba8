//! connections.json, topics.json or a job file from the fuzzer (the first byte picks which),
//! the other two valid: loading must answer Ok or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CONNECTIONS: &str = r#"{"bootstrap_servers": "localhost:9092", "storage_url": "out"}"#;
const TOPICS: &str = r#"[{"topic": "orders", "format": "json"}]"#;
const JOB: &str = r#"{"topics": ["orders"], "schedule": "*/15 * * * *"}"#;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let dir = dir();
    let _ = std::fs::create_dir_all(dir.join("jobs"));
    let files = [
        (dir.join("connections.json"), CONNECTIONS.as_bytes()),
        (dir.join("topics.json"), TOPICS.as_bytes()),
        (dir.join("jobs/job.json"), JOB.as_bytes()),
    ];
    for (i, (path, valid)) in files.iter().enumerate() {
        let text = if usize::from(which) % files.len() == i {
            body
        } else {
            valid
        };
        let _ = std::fs::write(path, text);
    }
    let _ = runner::config::Config::load(dir);
});
