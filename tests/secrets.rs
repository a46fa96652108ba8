//! No configured secret ever reaches a user's eyes: every line runner prints (stdout, stderr,
//! log files), `--help`, `validate` with and without `--connect`, errors from rejected
//! credentials, and every page and answer of the web console are collected and searched for
//! each secret. Zero hits.

mod common;

use common::console::Served;
use runner::embedded::EmbeddedKafka;
use runner::registry::{EmbeddedRegistry, Registry, SchemaType};
use serde_json::json;
use std::path::Path;

const SASL: &str = "sasl-Secret-1";
const REGISTRY: &str = "registry-Secret-2";
const CONSOLE: &str = "console-Secret-3";
const FROM_ENV: &str = "env-Secret-4";
const WRONG: &str = "wrong-Secret-5";
const ALL: [&str; 5] = [SASL, REGISTRY, CONSOLE, FROM_ENV, WRONG];

/// Runs runner with `args` in `dir` (logs into `dir/logs` too); returns stdout and stderr.
fn run(dir: &Path, args: &[&str]) -> String {
    let out = common::runner_command(dir)
        .args(["--log-dir", &dir.join("logs").to_string_lossy()])
        .args(args)
        .env("SASL_FROM_ENV", FROM_ENV)
        .env("RUNNER_CONSOLE_TOKEN", CONSOLE)
        .output()
        .unwrap();
    format!(
        "$ runner {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir/logs`.
fn logs(dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("logs")) {
        for e in entries.flatten() {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    text
}

#[test]
fn no_secret_shows_in_output_logs_errors_or_the_console() {
    let rt = common::runtime();
    let server = EmbeddedRegistry::start_with_basic_auth(rt.handle(), "api-key", REGISTRY).unwrap();
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("payments", 2).unwrap();
    let schema_text =
        r#"{"type": "record", "name": "P", "fields": [{"name": "id", "type": "long"}]}"#;
    let connections = |password: &str| {
        json!({
            "bootstrap_servers": kafka.bootstrap_servers(),
            "schema_registry_url": server.url(),
            "schema_registry_username": "api-key",
            "schema_registry_password": password,
            "storage_url": "out",
        })
    };
    let registry = Registry::from_connections(
        &serde_json::from_value(connections(REGISTRY)).unwrap(),
        rt.handle().clone(),
    )
    .unwrap()
    .unwrap();
    let id = registry
        .register("payments-value", SchemaType::Avro, schema_text)
        .unwrap();
    let schema = apache_avro::Schema::parse_str(schema_text).unwrap();
    let framed = |i: i64| {
        common::framed_avro(
            id,
            &schema,
            vec![("id".into(), apache_avro::types::Value::Long(i))],
        )
    };
    kafka
        .produce("payments", (0..20).map(|i| common::record(framed(i))))
        .unwrap();
    let topics = json!([{"topic": "payments", "format": "avro"}]);
    let mut seen = String::new();

    // Working credentials: the everyday commands and the console.
    let good = tempfile::tempdir().unwrap();
    common::write_config(good.path(), connections(REGISTRY), topics.clone());
    for args in [
        &["--help"][..],
        &["once", "--help"],
        &["serve", "--help"],
        &["schedule", "--help"],
        &["validate"],
        &["validate", "--connect"],
        &["plan"],
        &["once"],
        &["history"],
    ] {
        seen.push_str(&run(good.path(), args));
    }
    assert!(seen.contains("status=ok records=20"), "{seen}");
    {
        let served = Served::start(
            good.path(),
            &["serve"],
            &[("RUNNER_CONSOLE_TOKEN", CONSOLE)],
        );
        let bearer = format!("Bearer {CONSOLE}");
        for path in [
            "/browse",
            "/browse?topic=payments",
            "/browse?topic=payments&seek=from_offset",
            "/api/topics",
            "/api/topics/payments/messages?seek=oldest",
            "/api/topics/payments/download?format=csv&seek=oldest",
            "/api/topics/payments/partitions/0/offsets/0",
            "/message/payments/0/0",
            "/jobs",
            "/api/jobs",
            "/api/history",
            "/metrics",
            "/api/openapi.json",
            "/readyz",
            "/healthz",
        ] {
            let answer = served.request(reqwest::Method::GET, path, &[("authorization", &bearer)]);
            seen.push_str(&format!(
                "GET {path} {}\n{}\n",
                answer.status,
                answer.text()
            ));
            // Without the token: the refusal, too.
            seen.push_str(&served.get(path).text());
        }
    }
    assert!(
        seen.contains("\"value\":{\"id\":0}"),
        "the console answered: {seen}"
    );

    // Wrong registry credentials: the rejection names the registry, not the password.
    let wrong = tempfile::tempdir().unwrap();
    common::write_config(wrong.path(), connections(WRONG), topics.clone());
    for args in [&["validate", "--connect"][..], &["once"]] {
        seen.push_str(&run(wrong.path(), args));
    }
    assert!(
        seen.contains("401") || seen.to_lowercase().contains("unauthorized"),
        "{seen}"
    );

    // SASL from the environment against a broker that does not speak it.
    let sasl = tempfile::tempdir().unwrap();
    let mut with_sasl = connections(REGISTRY);
    with_sasl["sasl"] =
        json!({"mechanism": "PLAIN", "username": "svc", "password": "${SASL_FROM_ENV}"});
    with_sasl["kafka_properties"] = json!({"sasl.kerberos.service.name": "kafka"});
    common::write_config(sasl.path(), with_sasl.clone(), topics.clone());
    let mut literal = with_sasl;
    literal["sasl"]["password"] = json!(SASL);
    let sasl_literal = tempfile::tempdir().unwrap();
    common::write_config(sasl_literal.path(), literal, topics);
    seen.push_str(&run(sasl.path(), &["validate"]));
    seen.push_str(&run(sasl.path(), &["validate", "--connect"]));
    seen.push_str(&run(sasl_literal.path(), &["validate"]));
    assert!(
        seen.contains("error"),
        "some commands failed, with messages: {seen}"
    );

    for dir in [good.path(), wrong.path(), sasl.path(), sasl_literal.path()] {
        seen.push_str(&logs(dir));
    }
    assert!(seen.len() > 10_000, "collected {} bytes", seen.len());
    for secret in ALL {
        let hits: Vec<&str> = seen.lines().filter(|l| l.contains(secret)).collect();
        assert!(hits.is_empty(), "{secret} shown in:\n{}", hits.join("\n"));
    }
}
