//! A command hook: one long-lived child process. Each request is one line of JSON on its
//! stdin (a record object, or an array of them when `batch_size` > 1) and each reply one line
//! on its stdout (`null`, a value or an array of values per record; an array of those per
//! batch). Its stderr goes to runner's. A child that exits or does not answer in time is
//! killed and started again with backoff, and the request sent again; after `max_restarts`
//! failures in a row the job fails.

use super::{Outcome, ProcessError, Processor, outputs_of};
use crate::config::stream::CommandConfig;
use crate::records::Record;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

pub struct CommandHook {
    config: CommandConfig,
    dir: PathBuf,
    consumer_name: String,
    child: Option<Running>,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<std::io::Result<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CommandHook {
    pub fn start(
        config: &CommandConfig,
        dir: &Path,
        consumer_name: &str,
    ) -> Result<Self, ProcessError> {
        let mut hook = CommandHook {
            config: config.clone(),
            dir: dir.to_path_buf(),
            consumer_name: consumer_name.to_string(),
            child: None,
        };
        hook.child = Some(hook.spawn()?);
        Ok(hook)
    }

    fn name(&self) -> String {
        self.config.command.join(" ")
    }

    fn failed(&self, reason: impl Into<String>) -> ProcessError {
        ProcessError::Failed {
            hook: self.name(),
            reason: reason.into(),
        }
    }

    fn spawn(&self) -> Result<Running, ProcessError> {
        let (program, args) = self
            .config
            .command
            .split_first()
            .ok_or_else(|| self.failed("the command is empty"))?;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .envs(&self.config.env)
            .env("RUNNER_CONSUMER_NAME", &self.consumer_name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                self.failed(format!(
                    "cannot start it: {e}; check the program and that it is installed"
                ))
            })?;
        let stdin = child.stdin.take().ok_or_else(|| self.failed("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| self.failed("no stdout"))?;
        let (tx, lines) = channel();
        // A thread per child reads its replies, so a hung child cannot block the job.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let end = line.is_err();
                if tx.send(line).is_err() || end {
                    break;
                }
            }
        });
        Ok(Running {
            child,
            stdin,
            lines,
        })
    }

    /// One request and its reply line, on the running child.
    fn ask(&mut self, request: &str) -> Result<String, String> {
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        let running = self.child.as_mut().ok_or("not running")?;
        writeln!(running.stdin, "{request}")
            .and_then(|_| running.stdin.flush())
            .map_err(|e| format!("cannot write to it: {e} (it exited?)"))?;
        match running.lines.recv_timeout(timeout) {
            Ok(Ok(line)) => Ok(line),
            Ok(Err(e)) => Err(format!("cannot read its reply: {e}")),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "no reply within {}s (timeout_seconds)",
                self.config.timeout_seconds
            )),
            Err(RecvTimeoutError::Disconnected) => {
                let status = running
                    .child
                    .wait()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                Err(format!("it exited ({status}) without replying"))
            }
        }
    }
}

impl Processor for CommandHook {
    fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    fn process(&mut self, records: &[Record]) -> Result<Vec<Outcome>, ProcessError> {
        let batched = self.config.batch_size > 1;
        let request = if batched {
            serde_json::to_string(records)
        } else {
            records
                .first()
                .map(serde_json::to_string)
                .unwrap_or_else(|| Ok("null".into()))
        }
        .map_err(|e| self.failed(e.to_string()))?;
        let mut failures = 0;
        let line = loop {
            match self.ask(&request) {
                Ok(line) => break line,
                Err(reason) => {
                    failures += 1;
                    if failures > self.config.max_restarts {
                        return Err(self.failed(format!(
                            "failed {failures} times in a row (max_restarts {}); last: {reason}",
                            self.config.max_restarts
                        )));
                    }
                    let backoff = Duration::from_millis(100 << failures.min(6));
                    tracing::warn!(hook = %self.name(), %reason, restarts = failures, ?backoff, "processing hook failed; restarting it");
                    self.child = None;
                    std::thread::sleep(backoff);
                    self.child = Some(self.spawn()?);
                }
            }
        };
        let reply: Value = serde_json::from_str(&line)
            .map_err(|e| self.failed(format!("its reply is not JSON ({e}): {}", preview(&line))))?;
        if !batched {
            return Ok(vec![Ok(outputs_of(reply))]);
        }
        match reply {
            Value::Array(items) if items.len() == records.len() => {
                Ok(items.into_iter().map(|v| Ok(outputs_of(v))).collect())
            }
            other => Err(self.failed(format!(
                "a batch of {} records needs an array of {} replies, got: {}",
                records.len(),
                records.len(),
                preview(&other.to_string())
            ))),
        }
    }
}

pub(crate) fn preview(text: &str) -> String {
    let cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}
