//! An HTTP hook: each record's value (or an array of them, with `batch_size` > 1) is POSTed as
//! JSON and the reply object merged into the value (its fields win). At most `concurrency`
//! requests are in flight; 5xx, 429 and connection errors are retried with backoff, a 4xx
//! makes the record a dead letter, and retries used up fail the job (nothing is committed).

use super::command::preview;
use super::{Outcome, ProcessError, Processor};
use crate::config::stream::HttpConfig;
use crate::records::Record;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

pub struct HttpHook {
    config: HttpConfig,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

enum Reply {
    Ok(Value),
    Rejected(String),
}

impl HttpHook {
    pub fn new(config: &HttpConfig) -> Result<Self, ProcessError> {
        let failed = |reason: String| ProcessError::Failed {
            hook: config.url.clone(),
            reason,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds))
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed(e.to_string()))?;
        Ok(HttpHook {
            config: config.clone(),
            client,
            runtime,
        })
    }

    async fn post(&self, body: Value) -> Result<Reply, String> {
        let mut attempt = 0;
        loop {
            let mut request = self
                .client
                .post(&self.config.url)
                .header("content-type", "application/json")
                .body(body.to_string());
            for (name, value) in &self.config.headers {
                request = request.header(name, value);
            }
            let retry = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        return serde_json::from_str(&text).map(Reply::Ok).map_err(|e| {
                            format!("the reply is not JSON ({e}): {}", preview(&text))
                        });
                    }
                    if status.is_server_error() || status.as_u16() == 429 {
                        format!("{status}: {}", preview(&text))
                    } else {
                        return Ok(Reply::Rejected(format!("{status}: {}", preview(&text))));
                    }
                }
                Err(e) => e.to_string(),
            };
            attempt += 1;
            if attempt > self.config.retries {
                return Err(format!(
                    "still failing after {} retries (retries): {retry}",
                    self.config.retries
                ));
            }
            let backoff = Duration::from_millis(100 << attempt.min(8));
            tracing::warn!(url = %self.config.url, reason = %retry, attempt, ?backoff, "HTTP hook failed; retrying");
            tokio::time::sleep(backoff).await;
        }
    }
}

impl Processor for HttpHook {
    fn batch_size(&self) -> usize {
        self.config.batch_size * self.config.concurrency
    }

    fn process(&mut self, records: &[Record]) -> Result<Vec<Outcome>, ProcessError> {
        let size = self.config.batch_size;
        let batched = size > 1;
        let chunks: Vec<&[Record]> = records.chunks(size).collect();
        let replies: Vec<Result<Reply, String>> = self.runtime.block_on(
            futures_util::stream::iter(chunks.iter().map(|chunk| {
                let body = if batched {
                    Value::Array(chunk.iter().map(|r| r.value.clone()).collect())
                } else {
                    chunk[0].value.clone()
                };
                self.post(body)
            }))
            .buffered(self.config.concurrency)
            .collect(),
        );
        let mut outcomes = Vec::with_capacity(records.len());
        for (chunk, reply) in chunks.iter().zip(replies) {
            let reply = reply.map_err(|reason| ProcessError::Failed {
                hook: self.config.url.clone(),
                reason,
            })?;
            match reply {
                Reply::Rejected(reason) => outcomes.extend(
                    chunk
                        .iter()
                        .map(|_| Err(format!("HTTP hook rejected it: {reason}"))),
                ),
                Reply::Ok(Value::Array(items)) if batched && items.len() == chunk.len() => outcomes
                    .extend(
                        chunk
                            .iter()
                            .zip(items)
                            .map(|(r, reply)| merge(&r.value, reply)),
                    ),
                Reply::Ok(reply) if !batched => outcomes.push(merge(&chunk[0].value, reply)),
                Reply::Ok(other) => {
                    return Err(ProcessError::Failed {
                        hook: self.config.url.clone(),
                        reason: format!(
                            "a batch of {} needs an array of {} replies, got: {}",
                            chunk.len(),
                            chunk.len(),
                            preview(&other.to_string())
                        ),
                    });
                }
            }
        }
        Ok(outcomes)
    }
}

/// The value with the reply's fields added (replacing those of the same name).
fn merge(value: &Value, reply: Value) -> Outcome {
    match (value, reply) {
        (Value::Object(v), Value::Object(r)) => {
            let mut merged = v.clone();
            merged.extend(r);
            Ok(vec![Value::Object(merged)])
        }
        (_, Value::Null) => Ok(vec![value.clone()]),
        (_, other) => Err(format!(
            "the HTTP hook's reply is not an object to merge: {}",
            preview(&other.to_string())
        )),
    }
}
