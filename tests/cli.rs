//! The command line: exit codes, messages and the plan table.

mod common;

use common::numbered;
use runner::embedded::EmbeddedKafka;
use std::path::Path;
use std::process::Output;

fn runner(dir: &Path, args: &[&str]) -> Output {
    common::runner_command(dir).args(args).output().unwrap()
}

fn write(dir: &Path, connections: &str, topics: &str) {
    std::fs::write(dir.join("connections.json"), connections).unwrap();
    std::fs::write(dir.join("topics.json"), topics).unwrap();
}

#[test]
fn bad_config_exits_2_naming_file_and_field_before_touching_kafka() {
    let dir = tempfile::tempdir().unwrap();
    // An unreachable broker: a config error must come first.
    write(
        dir.path(),
        r#"{"bootstrap_servers": "127.0.0.1:1"}"#,
        r#"[{"topic": "t", "starting_offsets": {"0": -1}}]"#,
    );
    for command in ["validate", "once", "plan"] {
        let out = runner(dir.path(), &[command]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("topics.json: field `[0].starting_offsets.0`: -1 is negative"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn validate_accepts_the_repository_config() {
    let out = runner(Path::new(env!("CARGO_MANIFEST_DIR")), &["validate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("are valid: 4 topics (4 enabled)"),
        "{stdout}"
    );
    // Both example jobs, with their next fire times.
    assert!(
        stdout.contains("job account-totals (aggregate)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("schedule `*/15 * * * *`, next: "),
        "{stdout}"
    );
}

#[test]
fn plan_prints_ranges_and_reads_nothing_and_once_reports_per_topic() {
    let kafka = EmbeddedKafka::start().unwrap();
    kafka.create_topic("planned", 2).unwrap();
    kafka.produce("planned", numbered(0, 0, 30)).unwrap();
    kafka.produce("planned", numbered(1, 0, 12)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let connections = format!(
        r#"{{"bootstrap_servers": "{}"}}"#,
        kafka.bootstrap_servers()
    );
    write(
        dir.path(),
        &connections,
        r#"[{"topic": "planned", "num_messages": 20}, {"topic": "absent"}]"#,
    );

    let out = runner(dir.path(), &["plan", "--json", "--topic", "planned"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plans: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ranges: Vec<(i64, i64, i64)> = plans[0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["start"].as_i64().unwrap(),
                p["end"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges, [(0, 0, 10), (1, 0, 10)]);
    assert!(
        !dir.path().join("out/planned").exists(),
        "plan wrote output"
    );

    let out = runner(dir.path(), &["once"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The one failure is a missing topic, which a rerun cannot fix: exit 2.
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("topic=planned status=ok records=20 dead_letters=0 files=2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("topic=absent status=failed error=\"topic absent does not exist"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 2 topics failed: absent"), "{stderr}");
    assert!(stderr.contains("a rerun cannot fix"), "{stderr}");
}

/// README's first command, on a copy of the repository's config and jobs.
#[test]
fn the_demo_runs_the_jobs_twice_and_its_totals_match_the_produced_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "connections.json",
        "topics.json",
        "jobs/export.json",
        "jobs/account-totals.json",
        "config/schemas/transaction.proto",
        "config/schemas/payment.avsc",
    ] {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join(file), to).unwrap();
    }
    let out = runner(dir.path(), &["demo", "--records", "400"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for topic in ["orders", "payments_raw", "transactions", "payments"] {
        let first = format!("job=export topic={topic} status=ok records=400 dead_letters=0");
        let second = format!("job=export topic={topic} status=ok records=200 dead_letters=0");
        assert!(stdout.contains(&first), "{stdout}");
        assert!(stdout.contains(&second), "{stdout}");
    }
    for (records, run) in [(400, 1), (200, 2)] {
        let line = format!(
            "job=account-totals topic=transactions status=ok records={records} groups=20 run={run}"
        );
        assert!(stdout.contains(&line), "{stdout}");
    }
    let amounts = common::column_strings(&dir.path().join("out/demo"), "transactions", "amount");
    assert_eq!(amounts.len(), 600, "typed amounts of every transaction");
    let payments = common::column_strings(&dir.path().join("out/demo"), "payments", "currency");
    assert_eq!(payments.len(), 600, "every Avro payment, typed");

    // The printed table against totals computed from the generator itself.
    let mut want: std::collections::BTreeMap<String, (i64, u32)> = Default::default();
    for v in runner::produce::transactions(0..600, 20) {
        let v = v.unwrap();
        let cents = (v["amount"].as_f64().unwrap() * 100.0).round() as i64;
        let e = want
            .entry(v["account_number"].as_str().unwrap().to_string())
            .or_default();
        e.0 += cents;
        e.1 += 1;
    }
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("ACC"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), want.len(), "{stdout}");
    for (row, (account, (cents, count))) in rows.iter().zip(&want) {
        assert_eq!(row[0], account, "groups print in key order");
        let total = format!("{}.{:02}", cents / 100, cents % 100);
        assert_eq!(
            (row[1], row[2]),
            (total.as_str(), count.to_string().as_str())
        );
    }
}
