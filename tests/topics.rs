//! `runner topics` against tansu (the mock cluster has no CreateTopics): create, list,
//! describe with watermarks and group lag, delete.

mod common;

use common::tansu::Tansu;
use common::*;
use runner::admin::Admin;

#[test]
fn topics_are_created_listed_described_with_group_lag_and_deleted() {
    let kafka = Tansu::start();
    let rt = runtime();
    let connections: runner::config::Connections =
        serde_json::from_value(serde_json::json!({"bootstrap_servers": kafka.bootstrap_servers()}))
            .unwrap();
    let admin = Admin::new(&connections, rt.handle().clone()).unwrap();
    admin
        .create(
            "events",
            3,
            1,
            &[("cleanup.policy".into(), "compact".into())],
        )
        .unwrap();
    let listed = admin.list().unwrap();
    assert!(
        listed
            .iter()
            .any(|t| t.topic == "events" && t.partitions == 3),
        "{listed:?}"
    );

    let bootstrap = kafka.bootstrap_servers();
    for p in 0..3 {
        runner::embedded::produce(&bootstrap, "events", numbered(p, 0, 10 * (p as usize + 1)))
            .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let ctx = context(&kafka.bootstrap_servers(), out.path(), &rt);
    let t = topic(serde_json::json!({"topic": "events", "group_id": "exporter", "format": "json"}));
    run(&ctx, &[t]);
    runner::embedded::produce(&bootstrap, "events", numbered(1, 20, 5)).unwrap();

    let d = admin.describe("events", &["exporter".to_string()]).unwrap();
    let highs: Vec<i64> = d.partitions.iter().map(|p| p.high).collect();
    assert_eq!(highs, [10, 25, 30]);
    let group = d
        .groups
        .iter()
        .find(|g| g.group == "exporter")
        .expect("the exporter's group");
    assert_eq!(group.total_lag, 5, "{group:?}");
    assert_eq!(group.partitions[1], (1, Some(20), 5));

    // The same through the command line, with the group taken from topics.json.
    let dir = tempfile::tempdir().unwrap();
    let conn = serde_json::json!({"bootstrap_servers": bootstrap});
    std::fs::write(dir.path().join("connections.json"), conn.to_string()).unwrap();
    let topics = serde_json::json!([{"topic": "events", "group_id": "exporter"}]);
    std::fs::write(dir.path().join("topics.json"), topics.to_string()).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
        .args([
            "--config-dir",
            &dir.path().to_string_lossy(),
            "topics",
            "describe",
            "events",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("group exporter lag 5"), "{stdout}");
    assert!(
        stdout.contains("partition 1 committed 20 lag 5"),
        "{stdout}"
    );

    let missing = admin.describe("nope", &[]).unwrap_err().to_string();
    assert!(missing.contains("topic nope does not exist"), "{missing}");
    admin.delete("events").unwrap();
    assert!(!admin.list().unwrap().iter().any(|t| t.topic == "events"));
}
