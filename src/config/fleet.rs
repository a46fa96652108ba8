//! The consumer fleet file of the Python consumers (`deployment_details.json`), read as
//! written there, and turned into continuous job files and Deployment manifests.

use super::{ConfigError, TopicConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What a CONSUMER_FUNCTION_NAME may run in runner today: an export, or a command hook
/// (`command:<program and arguments>`, split at spaces) in a stream job.
pub const PROCESSORS: &[&str] = &["export", "command:<program and arguments>"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    consumers: BTreeMap<String, Consumer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
struct Consumer {
    #[serde(default = "yes")]
    enable: bool,
    topic_name: String,
    group_id: String,
    #[serde(default = "one")]
    number_of_workers: usize,
    #[serde(default = "one")]
    number_of_threads: usize,
    consumer_function_name: String,
    #[serde(default)]
    is_batch_consumption_enabled: bool,
    #[serde(default = "one")]
    message_consumption_batch_size: usize,
    #[serde(default)]
    max_poll_interval_in_milliseconds: Option<u64>,
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

/// One consumer of the fleet as a runner job.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetJob {
    pub name: String,
    /// The job file's content.
    pub job: serde_json::Value,
    /// NUMBER_OF_WORKERS: the replicas of the job's Deployment.
    pub workers: usize,
}

/// Reads a fleet file; `functions` maps CONSUMER_FUNCTION_NAMEs to runner processors.
pub fn load(
    file: &Path,
    functions: &BTreeMap<String, String>,
    topics: &[TopicConfig],
) -> Result<Vec<FleetJob>, ConfigError> {
    let fleet: FleetFile = super::load_json(file)?;
    let mut jobs = Vec::with_capacity(fleet.consumers.len());
    for (name, c) in fleet.consumers {
        let field = |f: &str| format!("consumers.{name}.{f}");
        let invalid = |f: &str, message: String| ConfigError::invalid(file, field(f), message);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(ConfigError::invalid(
                file,
                "consumers",
                format!("`{name}` cannot name a job; use letters, digits, `_`, `-` and `.`"),
            ));
        }
        let function = c.consumer_function_name.as_str();
        let processor = functions.get(function).map_or(function, String::as_str);
        let command: Option<Vec<&str>> = processor
            .strip_prefix("command:")
            .map(|c| c.split_whitespace().collect());
        if command.as_ref().is_some_and(Vec::is_empty)
            || (command.is_none() && processor != "export")
        {
            return Err(invalid(
                "CONSUMER_FUNCTION_NAME",
                format!(
                    "`{processor}` is not something runner runs; it runs: {}. Map the function with --function {function}=export, or --function '{function}=command:python3 runner_adapter.py {function}'",
                    PROCESSORS.join(", ")
                ),
            ));
        }
        if !topics.iter().any(|t| t.topic == c.topic_name) {
            return Err(invalid(
                "TOPIC_NAME",
                format!(
                    "topic `{}` is not in topics.json; add {{\"topic\": \"{}\", \"format\": \"json\"}} (with its format) there",
                    c.topic_name, c.topic_name
                ),
            ));
        }
        if c.group_id.is_empty() {
            return Err(invalid(
                "GROUP_ID",
                "is empty; name the consumer group".into(),
            ));
        }
        let counts = [
            ("NUMBER_OF_WORKERS", c.number_of_workers),
            ("NUMBER_OF_THREADS", c.number_of_threads),
            (
                "MESSAGE_CONSUMPTION_BATCH_SIZE",
                c.message_consumption_batch_size,
            ),
        ];
        for (f, n) in counts {
            if n == 0 {
                return Err(invalid(f, "is 0; it must be at least 1".into()));
            }
        }
        if c.max_poll_interval_in_milliseconds
            .is_some_and(|ms| ms < 1000)
        {
            return Err(invalid(
                "MAX_POLL_INTERVAL_IN_MILLISECONDS",
                "is under 1000; Kafka needs at least a second (the usual value is 300000)".into(),
            ));
        }
        let mut continuous = serde_json::json!({
            "group_id": c.group_id,
            "threads": c.number_of_threads,
            "workers": c.number_of_workers,
        });
        let batch = if c.is_batch_consumption_enabled {
            continuous["batch_size"] = c.message_consumption_batch_size.into();
            c.message_consumption_batch_size
        } else {
            1
        };
        if let Some(ms) = c.max_poll_interval_in_milliseconds {
            continuous["max_poll_interval_ms"] = ms.into();
        }
        let mut job = serde_json::json!({
            "kind": "export",
            "schedule": super::jobs::CONTINUOUS,
            "enabled": c.enable,
            "topics": [c.topic_name],
            "continuous": continuous,
        });
        if let Some(command) = command {
            // The function's work is its output: commit after it returns, nothing forwarded.
            job["kind"] = "stream".into();
            job["stream"] = serde_json::json!({
                "process": {"command": {"command": command, "batch_size": batch}},
                "outputs": [],
                "delivery": "at_least_once",
            });
        }
        jobs.push(FleetJob {
            name,
            job,
            workers: c.number_of_workers,
        });
    }
    Ok(jobs)
}

/// A Deployment running `runner continuous --job <name>` on `workers` pods, as
/// `deploy/k8s/continuous.yaml` does.
pub fn deployment(job: &FleetJob) -> String {
    let object = job.name.to_ascii_lowercase().replace(['_', '.'], "-");
    format!(
        r#"# `runner continuous --job {job}` on {replicas} pods, members of one consumer group; made by
# `runner fleet import`. SIGTERM seals, records and commits, then leaves the group.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: runner-{object}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: runner-{object}}}
  template:
    metadata:
      labels: {{app: runner-{object}}}
    spec:
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
      containers:
        - name: runner
          image: runner:latest
          args: ["continuous", "--job", "{job}"]
          resources:
            requests: {{cpu: 500m, memory: 256Mi}}
            limits: {{memory: 512Mi}}
          volumeMounts:
            - {{name: topics, mountPath: /config/topics.json, subPath: topics.json}}
            - {{name: jobs, mountPath: /config/jobs}}
            - {{name: connections, mountPath: /secrets}}
      volumes:
        - name: topics
          configMap: {{name: runner-topics}}
        - name: jobs
          configMap: {{name: runner-jobs}}
        - name: connections
          secret: {{secretName: runner-connections}}
"#,
        job = job.name,
        replicas = job.workers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/examples/fleet/deployment_details.json"
    );

    fn topics() -> Vec<TopicConfig> {
        serde_json::from_value(serde_json::json!([{"topic": "recurring_bulk_pull"}])).unwrap()
    }

    fn mapped() -> BTreeMap<String, String> {
        BTreeMap::from([("recurring_bulk_pull_consumer".into(), "export".into())])
    }

    /// Loads the seed's file with one field replaced (or removed, for `null`).
    fn with(field: &str, value: serde_json::Value) -> String {
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(SEED).unwrap()).unwrap();
        let consumer = &mut json["consumers"]["recurring_bulk_pull_consumers"];
        if value.is_null() {
            consumer.as_object_mut().unwrap().remove(field);
        } else {
            consumer[field] = value;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("deployment_details.json");
        std::fs::write(&file, json.to_string()).unwrap();
        match load(&file, &mapped(), &topics()) {
            Ok(jobs) => panic!("{field} was accepted: {jobs:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_seeds_fleet_file_loads_as_written() {
        let jobs = load(Path::new(SEED), &mapped(), &topics()).unwrap();
        assert_eq!(jobs.len(), 1);
        let job = &jobs[0];
        assert_eq!(job.name, "recurring_bulk_pull_consumers");
        assert_eq!(job.workers, 2);
        assert_eq!(
            job.job,
            serde_json::json!({
                "kind": "export",
                "schedule": "continuous",
                "enabled": true,
                "topics": ["recurring_bulk_pull"],
                "continuous": {
                    "group_id": "recurring_bulk_pull_consumers_group",
                    "threads": 2,
                    "workers": 2,
                    "max_poll_interval_ms": 600000
                }
            })
        );
        let manifest = deployment(job);
        assert!(manifest.contains("replicas: 2"), "{manifest}");
        assert!(
            manifest.contains(r#"args: ["continuous", "--job", "recurring_bulk_pull_consumers"]"#)
        );
    }

    #[test]
    fn a_function_mapped_to_a_command_becomes_a_stream_job_with_its_batches() {
        let functions = BTreeMap::from([(
            "recurring_bulk_pull_consumer".to_string(),
            "command:python3 runner_adapter.py recurring_bulk_pull_consumer".to_string(),
        )]);
        let jobs = load(Path::new(SEED), &functions, &topics()).unwrap();
        assert_eq!(jobs[0].job["kind"], "stream");
        assert_eq!(
            jobs[0].job["stream"],
            serde_json::json!({
                "process": {"command": {
                    "command": ["python3", "runner_adapter.py", "recurring_bulk_pull_consumer"],
                    "batch_size": 1
                }},
                "outputs": [],
                "delivery": "at_least_once"
            })
        );
    }

    #[test]
    fn an_unknown_function_names_the_field_and_the_fix() {
        let e = load(Path::new(SEED), &BTreeMap::new(), &topics())
            .unwrap_err()
            .to_string();
        assert!(e.contains("deployment_details.json"), "{e}");
        assert!(
            e.contains("consumers.recurring_bulk_pull_consumers.CONSUMER_FUNCTION_NAME"),
            "{e}"
        );
        assert!(e.contains("it runs: export"), "{e}");
        assert!(
            e.contains("--function recurring_bulk_pull_consumer=export"),
            "{e}"
        );
    }

    #[test]
    fn each_bad_field_is_rejected_naming_file_field_and_fix() {
        let field = |f: &str| format!("consumers.recurring_bulk_pull_consumers.{f}");
        let cases = [
            ("NUMBER_OF_WORKERS", serde_json::json!(0), "at least 1"),
            (
                "NUMBER_OF_THREADS",
                serde_json::json!("two"),
                "invalid type",
            ),
            (
                "MESSAGE_CONSUMPTION_BATCH_SIZE",
                serde_json::json!(0),
                "at least 1",
            ),
            (
                "MAX_POLL_INTERVAL_IN_MILLISECONDS",
                serde_json::json!(10),
                "at least a second",
            ),
            ("GROUP_ID", serde_json::json!(""), "name the consumer group"),
            (
                "TOPIC_NAME",
                serde_json::json!("elsewhere"),
                "add {\"topic\": \"elsewhere\"",
            ),
            ("ENABLE", serde_json::json!("yes"), "invalid type"),
            (
                "TOPIC_NAME",
                serde_json::Value::Null,
                "missing field `TOPIC_NAME`",
            ),
        ];
        for (name, value, fix) in cases {
            let e = with(name, value);
            assert!(e.contains("deployment_details.json"), "{name}: {e}");
            if !fix.starts_with("missing") {
                assert!(e.contains(&field(name)), "{name}: {e}");
            }
            assert!(e.contains(fix), "{name}: {e}");
        }
        let e = with("TOPIC_NAMES", serde_json::json!("x"));
        assert!(e.contains("unknown field `TOPIC_NAMES`"), "{e}");
    }
}
