//! The web console against a real broker (librdkafka's mock cluster) through the `runner`
//! binary: browse queries, caps, downloads read back, permissions, authentication, the jobs
//! API with a triggered run, and /metrics checked by promtool.

mod common;

use common::console::{Served, coordinates};
use common::{bucketed, config_for, numbered};
use runner::embedded::EmbeddedKafka;
use serde_json::json;

/// orders: 3 partitions of 100 numbered JSON records; events: one partition of 60 records a
/// minute apart from 2026-01-01T00:00Z; secret: browsing off; nodownload: download off.
/// (Seeks by time are tested against tansu: the mock cluster cannot look up timestamps.)
fn cluster() -> (EmbeddedKafka, tempfile::TempDir) {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("orders", 3).unwrap();
    for p in 0..3 {
        kafka.produce("orders", numbered(p, 0, 100)).unwrap();
    }
    kafka.create_topic("events", 1).unwrap();
    kafka
        .produce("events", bucketed(0, 60, 7, 1_767_225_600_000))
        .unwrap();
    kafka.create_topic("many", 1).unwrap();
    kafka.produce("many", numbered(0, 0, 5000)).unwrap();
    for t in ["secret", "nodownload"] {
        kafka.create_topic(t, 1).unwrap();
        kafka.produce(t, numbered(0, 0, 5)).unwrap();
    }
    let dir = config_for(
        &kafka,
        json!([
            {"topic": "orders", "format": "json"},
            {"topic": "events", "format": "json"},
            {"topic": "many", "format": "json"},
            {"topic": "secret", "format": "json", "browse": false},
            {"topic": "nodownload", "format": "json", "download": false}
        ]),
    );
    (kafka, dir)
}

#[test]
fn browse_queries_filters_and_caps() {
    let (_kafka, dir) = cluster();
    let served = Served::start(dir.path(), &["serve"], &[]);

    // Newest 20 over three partitions: the last records of the partitions, newest first.
    let (messages, done) = served.scan("orders", "seek=newest&limit=20");
    assert_eq!(messages.len(), 20);
    assert_eq!(done["stopped"], "limit");
    assert!(
        coordinates(&messages).iter().all(|(_, o)| *o >= 80),
        "{messages:?}"
    );
    let times: Vec<i64> = messages
        .iter()
        .map(|m| m["timestamp"].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    assert!(messages[0]["time"].as_str().unwrap().ends_with('Z'));

    // Oldest 5 of partition 1 only, in offset order.
    let (messages, _) = served.scan("orders", "seek=oldest&limit=5&partition=1");
    assert_eq!(
        coordinates(&messages),
        (0..5).map(|o| (1, o)).collect::<Vec<_>>()
    );
    assert_eq!(
        messages[0]["value"],
        json!({"partition": 1, "seq": 0, "amount": 0.0})
    );
    assert_eq!(messages[0]["key"], "k0");

    // From and up to an offset.
    let (messages, _) = served.scan("orders", "seek=from_offset&offset=95&partition=2&limit=50");
    assert_eq!(
        coordinates(&messages),
        (95..100).map(|o| (2, o)).collect::<Vec<_>>()
    );
    let (messages, _) = served.scan("orders", "seek=to_offset&offset=10&partition=0&limit=3");
    assert_eq!(coordinates(&messages), vec![(0, 9), (0, 8), (0, 7)]);

    // A CEL expression and a text filter, over every partition: exact counts.
    let (messages, done) = served.scan(
        "orders",
        "seek=oldest&limit=1000&expr=value.seq+%25+10+%3D%3D+3",
    );
    assert_eq!(messages.len(), 30);
    assert_eq!(done["scanned"], 300);
    assert_eq!(done["stopped"], "end");
    assert!(
        messages
            .iter()
            .all(|m| m["value"]["seq"].as_i64().unwrap() % 10 == 3)
    );
    let (messages, _) = served.scan("orders", "seek=oldest&limit=1000&key=k7&key_op=equals");
    assert_eq!(messages.len(), 3);
    let (messages, _) = served.scan(
        "orders",
        "seek=oldest&limit=1000&value=%22seq%22%3A9&value_op=not_contains&partition=0",
    );
    // 9 and 90..99 contain "seq":9.
    assert_eq!(messages.len(), 89);
    // Newest with a filter reads back in windows until it has its matches.
    let (messages, _) = served.scan(
        "orders",
        "seek=newest&limit=4&partition=0&expr=value.seq+%3C+3",
    );
    assert_eq!(coordinates(&messages), vec![(0, 2), (0, 1), (0, 0)]);

    // The scan cap stops the scan (between batches) and says so.
    let (_, done) = served.scan("many", "seek=oldest&limit=1000&expr=false&max_scan=1000");
    assert_eq!(done["stopped"], "max_scan");
    let scanned = done["scanned"].as_u64().unwrap();
    assert!((1000..5000).contains(&scanned), "{done}");

    // Raw bytes in hex for a topic runner does not know (not in topics.json).
    let (messages, _) = served.scan("orders", "seek=oldest&limit=1&partition=0&raw=hex");
    assert!(messages[0].get("value").is_some());
    let one = served
        .get("/api/topics/orders/partitions/1/offsets/42")
        .json();
    assert_eq!(one["value"]["seq"], 42);
    let missing = served.get("/api/topics/orders/partitions/1/offsets/100");
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("no message at offset 100"),
        "{}",
        missing.text()
    );

    // Bad fields are named.
    let bad = served.get("/api/topics/orders/messages?seek=from_offset");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("`offset`"), "{}", bad.text());
    let bad = served.get("/api/topics/orders/messages?expr=value.seq+%3E");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("`expr`"), "{}", bad.text());
    let bad = served.get("/api/topics/orders/messages?partition=7");
    assert!(
        bad.text().contains("has no partition 7 (it has 3)"),
        "{}",
        bad.text()
    );
}

#[test]
fn downloads_read_back_and_switches_refuse() {
    let (_kafka, dir) = cluster();
    let served = Served::start(dir.path(), &["serve"], &[]);
    let query = "seek=oldest&limit=1000&expr=value.seq+%3C+10";
    let (messages, _) = served.scan("orders", query);
    assert_eq!(messages.len(), 30);

    let jsonl = served.get(&format!("/api/topics/orders/download?format=jsonl&{query}"));
    assert_eq!(jsonl.status, 200);
    assert!(jsonl.header("content-disposition").contains(".jsonl"));
    assert_eq!(jsonl.lines(), messages);

    let csv = served.get(&format!("/api/topics/orders/download?format=csv&{query}"));
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(csv.body.as_slice());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "partition",
            "offset",
            "timestamp",
            "key",
            "headers",
            "type",
            "amount",
            "partition",
            "seq",
            "raw",
            "error"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 30);
    for (row, m) in rows.iter().zip(&messages) {
        assert_eq!(row[1], m["offset"].to_string());
        assert_eq!(row[8], m["value"]["seq"].to_string());
    }

    let parquet = served.get(&format!(
        "/api/topics/orders/download?format=parquet&{query}"
    ));
    assert_eq!(parquet.status, 200, "{}", parquet.text());
    assert_eq!(parquet.header("x-runner-undecoded"), "0");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(parquet.body.clone()),
    )
    .unwrap()
    .build()
    .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let offsets = common::offsets_of(&batches);
    let expected: Vec<(i32, i64)> = coordinates(&messages)
        .into_iter()
        .map(|(p, o)| (p as i32, o))
        .collect();
    assert_eq!(offsets, expected, "the same rows in the same order");
    let schema = batches[0].schema();
    assert_eq!(
        schema.field_with_name("seq").unwrap().data_type(),
        &arrow::datatypes::DataType::Int64,
        "typed columns, as an export writes"
    );

    // Switches in topics.json.
    let secret = served.get("/api/topics/secret/messages");
    assert_eq!(secret.status, 403);
    assert!(
        secret.text().contains("browsing is switched off"),
        "{}",
        secret.text()
    );
    assert_eq!(
        served
            .get("/api/topics/secret/partitions/0/offsets/0")
            .status,
        403
    );
    let (messages, _) = served.scan("nodownload", "seek=oldest");
    assert_eq!(messages.len(), 5);
    let refused = served.get("/api/topics/nodownload/download?format=csv");
    assert_eq!(refused.status, 403);
    assert!(
        refused.text().contains("download is switched off"),
        "{}",
        refused.text()
    );
    let page = served.get("/browse?topic=secret").text();
    assert!(page.contains("browsing is switched off"), "{page}");
    assert!(
        !page.contains("data-api"),
        "no scan starts for a closed topic"
    );
}

#[test]
fn only_configured_topics_when_asked() {
    let (kafka, dir) = cluster();
    kafka.create_topic("other", 1).unwrap();
    let served = Served::start(dir.path(), &["serve", "--configured-topics-only"], &[]);
    let topics = served.get("/api/topics").json();
    let names: Vec<&str> = topics
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["events", "many", "nodownload", "orders", "secret"]);
    assert_eq!(served.get("/api/topics/other/messages").status, 403);
    drop(served);
    let served = Served::start(dir.path(), &["serve"], &[]);
    let topics = served.get("/api/topics").json();
    let other = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "other")
        .unwrap();
    assert_eq!(other["configured"], false);
    assert_eq!(other["format"], "raw");
}

#[test]
fn off_loopback_needs_credentials() {
    let (_kafka, dir) = cluster();
    let refused = common::runner_command(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("RUNNER_CONSOLE_TOKEN")
        .env_remove("RUNNER_CONSOLE_USER")
        .env_remove("RUNNER_CONSOLE_PASSWORD")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refusing to serve on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    assert!(stderr.contains("RUNNER_CONSOLE_TOKEN"), "{stderr}");

    let token = "s3cret-console-token";
    let served = Served::start(dir.path(), &["serve"], &[("RUNNER_CONSOLE_TOKEN", token)]);
    assert_eq!(served.get("/healthz").status, 200, "probes stay open");
    for path in ["/api/topics", "/browse", "/metrics", "/api/openapi.json"] {
        let denied = served.get(path);
        assert_eq!(denied.status, 401, "{path}");
        assert_eq!(denied.header("www-authenticate"), "Bearer realm=\"runner\"");
    }
    let bearer = format!("Bearer {token}");
    let allowed = served.request(
        reqwest::Method::GET,
        "/api/topics",
        &[("authorization", &bearer)],
    );
    assert_eq!(allowed.status, 200);
    let wrong = served.request(
        reqwest::Method::GET,
        "/api/topics",
        &[("authorization", "Bearer nope")],
    );
    assert_eq!(wrong.status, 401);
    // The secret is never shown back.
    for path in ["/browse?topic=orders", "/jobs", "/api/jobs", "/metrics"] {
        let page = served.request(reqwest::Method::GET, path, &[("authorization", &bearer)]);
        assert!(!page.text().contains(token), "{path} shows the token");
    }
}

/// Every route of the OpenAPI document answers on a live server (none is 404 or 405).
#[test]
fn openapi_paths_are_served() {
    let (_kafka, dir) = cluster();
    std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
    std::fs::write(
        dir.path().join("jobs/export.json"),
        r#"{"topics": ["orders"]}"#,
    )
    .unwrap();
    let served = Served::start(dir.path(), &["serve"], &[]);
    let doc = served.get("/api/openapi.json").json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12);
    for (path, methods) in paths {
        let concrete = path
            .replace("{topic}", "orders")
            .replace("{partition}", "0")
            .replace("{offset}", "1")
            .replace("{job}", "export");
        for method in methods.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = served.request(m, &concrete, &[]);
            assert!(
                ![404, 405].contains(&response.status),
                "{method} {concrete}: {} {}",
                response.status,
                response.text()
            );
        }
    }
}

#[test]
fn triggered_run_shows_in_jobs_history_and_metrics() {
    let (_kafka, dir) = cluster();
    std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
    // Yearly: the only run in this test is the triggered one.
    std::fs::write(
        dir.path().join("jobs/export.json"),
        r#"{"topics": ["orders"], "schedule": "0 0 1 1 *"}"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let connections: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("connections.json")).unwrap())
            .unwrap();
    let mut connections = connections;
    connections["storage_url"] = json!(out.to_string_lossy());
    std::fs::write(dir.path().join("connections.json"), connections.to_string()).unwrap();

    let read_only = Served::start(dir.path(), &["serve"], &[]);
    let refused = read_only.request(
        reqwest::Method::POST,
        "/api/jobs/export/run",
        &[("x-runner-confirm", "export")],
    );
    assert_eq!(refused.status, 403, "serve is read-only");
    drop(read_only);

    let served = Served::start(dir.path(), &["schedule", "--allow-trigger"], &[]);
    let before = served.get("/api/jobs/export").json();
    assert_eq!(before["can_trigger"], true);
    assert_eq!(before["last_run"], serde_json::Value::Null);
    assert_eq!(
        before["lag"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["lag"].as_i64().unwrap())
            .sum::<i64>(),
        300
    );
    let unconfirmed = served.request(reqwest::Method::POST, "/api/jobs/export/run", &[]);
    assert_eq!(unconfirmed.status, 400);
    assert!(unconfirmed.text().contains("x-runner-confirm"));
    let started = served.request(
        reqwest::Method::POST,
        "/api/jobs/export/run",
        &[("x-runner-confirm", "export")],
    );
    assert_eq!(started.status, 202, "{}", started.text());
    let after = served.get_until("/api/jobs/export", 120, |j| {
        j["running"] == false && j["last_run"]["status"] == "ok"
    });
    assert_eq!(after["last_run"]["topics"][0]["records"], 300);
    assert_eq!(
        after["lag"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["lag"].as_i64().unwrap())
            .sum::<i64>(),
        0
    );
    assert_eq!(after["history"].as_array().unwrap().len(), 1);
    let files = common::parquet_files(&out).len() as u64;
    assert!(files >= 3, "one file per partition at least");
    assert_eq!(after["last_run"]["topics"][0]["files"], files);

    let metrics = served.get("/metrics");
    let text = metrics.text();
    let value = |sample: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(sample)
                    .map(|v| v.trim().parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no {sample} in\n{text}"))
    };
    assert_eq!(
        value(r#"runner_records_total{job="export",topic="orders"}"#),
        300.0
    );
    assert_eq!(
        value(r#"runner_files_written_total{job="export",topic="orders"}"#),
        files as f64
    );
    assert_eq!(
        value(r#"runner_job_runs_total{job="export",status="ok"}"#),
        1.0
    );
    assert_eq!(
        value(r#"runner_job_run_duration_seconds_count{job="export"}"#),
        1.0
    );
    assert!(value(r#"runner_job_last_success_timestamp_seconds{job="export"}"#) > 1.7e9);
    assert!(value(r#"runner_bytes_written_total{job="export",topic="orders"}"#) > 0.0);
    assert!(
        text.contains(&format!(
            "runner_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(!text.contains("offset="), "no offsets as labels");

    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut promtool = promtool.unwrap_or_else(|e| {
        panic!("promtool is missing ({e}); install it with `apt-get install prometheus` or run `bash tests/run.sh`")
    });
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The jobs page shows the run and offers the button.
    let page = served.get("/jobs").text();
    assert!(page.contains("data-run=\"export\""), "{page}");
    assert!(page.contains("ok at "), "{page}");
}

/// Avro through the Schema Registry: each message shows its schema id and decoded value; a
/// record that does not decode shows why, with its bytes; the registry's password shows nowhere.
#[test]
fn avro_messages_show_their_schema_id_and_bad_ones_their_reason() {
    use runner::registry::{EmbeddedRegistry, Registry, SchemaType};
    const SCHEMA: &str = r#"{"type": "record", "name": "Payment", "fields": [
        {"name": "id", "type": "long"}, {"name": "account", "type": "string"}]}"#;
    let password = "registry-pa55word";
    let rt = common::runtime();
    let server = EmbeddedRegistry::start_with_basic_auth(rt.handle(), "api-key", password).unwrap();
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("payments", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let connections = json!({
        "bootstrap_servers": kafka.bootstrap_servers(),
        "schema_registry_url": server.url(),
        "schema_registry_username": "api-key",
        "schema_registry_password": password,
    });
    common::write_config(
        dir.path(),
        connections.clone(),
        json!([{"topic": "payments", "format": "avro"}]),
    );
    let registry = Registry::from_connections(
        &serde_json::from_value(connections).unwrap(),
        rt.handle().clone(),
    )
    .unwrap()
    .unwrap();
    let id = registry
        .register("payments-value", SchemaType::Avro, SCHEMA)
        .unwrap();
    let schema = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let framed = |i: i64| {
        common::framed_avro(
            id,
            &schema,
            vec![
                ("id".into(), apache_avro::types::Value::Long(i)),
                (
                    "account".into(),
                    apache_avro::types::Value::String(format!("ACC{i}")),
                ),
            ],
        )
    };
    let mut values = vec![framed(0), framed(1)];
    values.push([&[7u8][..], &framed(2)[1..]].concat()); // wrong magic byte
    values.push(framed(3));
    kafka
        .produce("payments", values.into_iter().map(common::record))
        .unwrap();

    let served = Served::start(dir.path(), &["serve"], &[]);
    let (messages, done) = served.scan("payments", "seek=oldest&limit=10&raw=hex");
    assert_eq!(done["returned"], 4, "{messages:?}");
    for i in [0, 1, 3] {
        assert_eq!(messages[i]["schema_id"], id);
        assert_eq!(
            messages[i]["value"],
            json!({"id": i, "account": format!("ACC{i}")})
        );
        assert!(messages[i].get("error").is_none());
    }
    let bad = &messages[2];
    assert!(bad.get("value").is_none());
    assert!(bad["error"].as_str().unwrap().contains("magic"), "{bad}");
    assert!(
        bad["raw"].as_str().unwrap().starts_with("07"),
        "hex bytes: {bad}"
    );
    // A CEL filter on the decoded value.
    let (messages, _) = served.scan("payments", "seek=oldest&expr=value.id+%3E%3D+1");
    assert_eq!(coordinates(&messages), vec![(0, 1), (0, 3)]);
    // Parquet has the typed rows of the records that decoded, and counts the other.
    let parquet = served.get("/api/topics/payments/download?format=parquet&seek=oldest");
    assert_eq!(parquet.status, 200, "{}", parquet.text());
    assert_eq!(parquet.header("x-runner-undecoded"), "1");
    for path in [
        "/browse?topic=payments",
        "/api/topics",
        "/jobs",
        "/api/topics/payments/messages?seek=oldest",
        "/message/payments/0/2",
    ] {
        assert!(
            !served.get(path).text().contains(password),
            "{path} shows the registry password"
        );
    }
}

/// A header-typed topic (seed 003): each message shows its type, decoded with that type's
/// format; a header filter picks one type; a record of an unknown type shows why.
#[test]
fn header_typed_messages_show_their_type_and_filter_by_header() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("shop", 1).unwrap();
    common::produce_typed(
        &kafka.bootstrap_servers(),
        "shop",
        &[
            (
                Some("com.shop.Delivered"),
                json!({"order": 1, "courier": "ups"}),
            ),
            (
                Some("com.shop.Returned"),
                json!({"order": 2, "reason": "size"}),
            ),
            (Some("com.shop.Lost"), json!({"order": 3})),
            (
                Some("com.shop.Delivered"),
                json!({"order": 4, "courier": "dhl"}),
            ),
        ],
    );
    let dir = config_for(&kafka, common::typed_topic());
    let served = Served::start(dir.path(), &["serve"], &[]);
    let (messages, _) = served.scan("shop", "seek=oldest");
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["type"], "com.shop.Delivered");
    assert_eq!(messages[0]["value"]["courier"], "ups");
    assert_eq!(messages[1]["type"], "com.shop.Returned");
    assert_eq!(messages[1]["value"]["reason"], "size");
    assert!(
        messages[2]["error"]
            .as_str()
            .unwrap()
            .contains("com.shop.Lost"),
        "{}",
        messages[2]
    );
    assert_eq!(
        messages[0]["headers"],
        json!([["item_type_name", "com.shop.Delivered"]])
    );
    let (delivered, _) = served.scan(
        "shop",
        "seek=oldest&header=item_type_name&header_value=Delivered&header_op=contains",
    );
    assert_eq!(coordinates(&delivered), vec![(0, 0), (0, 3)]);
    let (typed, _) = served.scan(
        "shop",
        "seek=oldest&expr=type+%3D%3D+%27com.shop.Returned%27",
    );
    assert_eq!(coordinates(&typed), vec![(0, 1)]);
}

/// `/readyz` says ready while Kafka and the sink answer, and 503 with which one does not;
/// `/healthz` only says the process answers.
#[test]
fn readiness_follows_kafka() {
    let (kafka, dir) = cluster();
    let served = Served::start(dir.path(), &["serve"], &[]);
    let ready = served.get("/readyz");
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));
    drop(kafka);
    let not = served.get("/readyz");
    assert_eq!(not.status, 503);
    assert_eq!(not.text(), "not ready: Kafka does not answer\n");
    assert_eq!(served.get("/healthz").status, 200);
}
