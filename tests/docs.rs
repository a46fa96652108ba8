//! The examples of README.md and docs/ are checked against the code: every JSON block that is a
//! connections.json, topics.json or job file loads with runner's own loader, and every
//! `runner ...` command line parses with the CLI. An example that drifts fails here.
//!
//! A JSON block says what it is after the language: ```` ```json topics.json ````,
//! ```` ```json jobs/<name>.json ````, or ```` ```json fragment ```` for a part of a file
//! (checked as JSON only).

#[allow(dead_code)]
#[path = "../src/cli.rs"]
mod cli;

use clap::Parser;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Environment variables are process-wide: the tests that set or read them take turns.
static ENV: Mutex<()> = Mutex::new(());

struct Block {
    file: String,
    line: usize,
    info: Vec<String>,
    text: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn blocks(path: &Path) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in read(path).lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match (&mut open, fence) {
            (None, true) => {
                let info = line.trim_start().trim_start_matches('`');
                open = Some(Block {
                    file: name(path),
                    line: i + 1,
                    info: info.split_whitespace().map(str::to_string).collect(),
                    text: String::new(),
                });
            }
            (Some(_), true) => out.extend(open.take()),
            (Some(block), false) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, false) => {}
        }
    }
    assert!(open.is_none(), "{}: a code block is not closed", name(path));
    out
}

/// Sets every `${VAR}` of the text to a value each field accepts (base64 for account keys).
fn set_env_vars(text: &str) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let var = &rest[start + 2..start + len];
        // SAFETY: callers hold ENV, so no other test thread reads the environment meanwhile.
        unsafe { std::env::set_var(var, "c2VjcmV0") };
        rest = &rest[start + len..];
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// A config folder with the repository's schemas, connections.json and topics.json, in which
/// the example replaces its own file.
fn config_folder(block: &Block, kind: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&repo().join("config"), &dir.path().join("config"));
    std::fs::copy(
        repo().join("connections.json"),
        dir.path().join("connections.json"),
    )
    .expect("copy connections.json");
    let mut topics: Vec<serde_json::Value> =
        serde_json::from_str(&read(&repo().join("topics.json"))).expect("topics.json");
    if let Some(job) = kind.strip_prefix("jobs/") {
        let value: serde_json::Value = serde_json::from_str(&block.text).expect("checked JSON");
        // A job may name topics the repository does not list: give each a plain entry.
        for topic in value["topics"].as_array().into_iter().flatten() {
            let topic = topic.as_str().unwrap_or_default();
            if !topics.iter().any(|t| t["topic"] == topic) {
                topics.push(serde_json::json!({ "topic": topic }));
            }
        }
        std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs/");
        std::fs::write(dir.path().join("jobs").join(job), &block.text).expect("job file");
    }
    std::fs::write(
        dir.path().join("topics.json"),
        serde_json::to_string(&topics).expect("topics"),
    )
    .expect("topics.json");
    if kind == "connections.json" || kind == "topics.json" {
        std::fs::write(dir.path().join(kind), &block.text).expect("example file");
    }
    dir
}

#[test]
fn every_json_example_loads() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let mut checked = 0;
    let mut failures = Vec::new();
    for page in pages() {
        for block in blocks(&page)
            .into_iter()
            .filter(|b| b.info.first().is_some_and(|l| l == "json"))
        {
            let at = format!("{}:{}", block.file, block.line);
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&block.text) {
                failures.push(format!("{at}: not JSON: {e}"));
                continue;
            }
            let Some(kind) = block.info.get(1).map(String::as_str) else {
                failures.push(format!(
                    "{at}: say what the block is: ```json connections.json, topics.json, jobs/<name>.json or fragment"
                ));
                continue;
            };
            let loadable = kind == "connections.json"
                || kind == "topics.json"
                || (kind.starts_with("jobs/") && kind.ends_with(".json"));
            if kind == "fragment" {
                continue;
            }
            if !loadable {
                failures.push(format!("{at}: unknown block kind `{kind}`"));
                continue;
            }
            set_env_vars(&block.text);
            let dir = config_folder(&block, kind);
            match runner::config::Config::load(dir.path()) {
                Ok(config) => {
                    checked += 1;
                    if let Some(job) = kind.strip_prefix("jobs/") {
                        let job = job.trim_end_matches(".json");
                        assert!(
                            config.jobs.iter().any(|j| j.name == job),
                            "{at}: job {job} did not load"
                        );
                    }
                }
                Err(e) => failures.push(format!("{at} ({kind}): {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "examples that do not load:\n{}",
        failures.join("\n")
    );
    assert!(
        checked >= 8,
        "only {checked} examples were loaded: is the block tagging lost?"
    );
}

/// A command line to check, and whether it may stop short of the required arguments: an
/// inline span such as `runner produce` names a command rather than running it.
struct Line {
    at: String,
    text: String,
    inline: bool,
}

/// The command lines of a shell block and the inline `runner ...` spans of the prose.
fn command_lines(page: &Path) -> Vec<Line> {
    let mut lines = Vec::new();
    for block in blocks(page) {
        let shell = matches!(
            block.info.first().map(String::as_str),
            Some("sh" | "bash" | "console" | "shell")
        );
        if !shell {
            continue;
        }
        let mut joined = String::new();
        for (i, line) in block.text.lines().enumerate() {
            let line = line.trim().trim_start_matches("$ ");
            if let Some(head) = line.strip_suffix('\\') {
                joined.push_str(head);
                continue;
            }
            joined.push_str(line);
            lines.push(Line {
                at: format!("{}:{}", block.file, block.line + 1 + i),
                text: joined.clone(),
                inline: false,
            });
            joined.clear();
        }
    }
    let mut in_block = false;
    for (i, line) in read(page).lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        for (n, span) in line.split('`').enumerate() {
            if n % 2 == 1 && span.starts_with("runner ") {
                lines.push(Line {
                    at: format!("{}:{}", name(page), i + 1),
                    text: span.to_string(),
                    inline: true,
                });
            }
        }
    }
    lines
}

/// The arguments after `runner` (or `cargo run ... --`), up to a shell comment; None for a
/// line that runs something else.
fn runner_args(line: &str) -> Option<Vec<String>> {
    let words = shlex::split(line)?;
    let start = if words.first()? == "runner" {
        1
    } else if words.first()? == "cargo" && words.get(1)? == "run" {
        words.iter().position(|w| w == "--")? + 1
    } else {
        return None;
    };
    let args = words[start..]
        .iter()
        .take_while(|w| !w.starts_with('#'))
        .cloned()
        .collect();
    Some(args)
}

#[test]
fn every_command_line_parses() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let mut checked = 0;
    let mut failures = Vec::new();
    for page in pages() {
        for line in command_lines(&page) {
            let Some(args) = runner_args(&line.text) else {
                continue;
            };
            let argv = std::iter::once("runner".to_string()).chain(args);
            use clap::error::ErrorKind as Kind;
            match cli::Cli::try_parse_from(argv) {
                Ok(_) => checked += 1,
                Err(e) if matches!(e.kind(), Kind::DisplayHelp | Kind::DisplayVersion) => {
                    checked += 1
                }
                Err(e)
                    if line.inline
                        && matches!(
                            e.kind(),
                            Kind::MissingRequiredArgument
                                | Kind::DisplayHelpOnMissingArgumentOrSubcommand
                                | Kind::MissingSubcommand
                        ) =>
                {
                    checked += 1
                }
                Err(e) => failures.push(format!("{}: `{}`: {}", line.at, line.text, e.kind())),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "command lines that do not parse:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 40, "only {checked} command lines were checked");
}

/// Each heading of the troubleshooting page quotes a message; it must still be in the source.
#[test]
fn troubleshooting_quotes_messages_runner_prints() {
    let page = repo().join("docs/troubleshooting.md");
    let mut source = String::new();
    let mut stack = vec![repo().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src folder") {
            let path = entry.expect("src entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                // Messages may wrap in the source: compare with runs of blanks made one.
                let text = read(&path);
                source.push_str(&text.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
    }
    let mut quoted = 0;
    for line in read(&page).lines().filter(|l| l.starts_with("### ")) {
        let message = line.trim_start_matches("### ").trim_matches('`');
        assert!(
            source.contains(message),
            "docs/troubleshooting.md quotes `{message}`, which runner no longer prints"
        );
        quoted += 1;
    }
    assert!(quoted >= 20, "only {quoted} messages are listed");
}
