use super::*;
use std::path::Path;

const CONNECTIONS: &str = r#"{"bootstrap_servers": "localhost:9092"}"#;

/// Writes the two files into a temp folder and loads it.
fn load(connections: &str, topics: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CONNECTIONS_FILE), connections).unwrap();
    std::fs::write(dir.path().join(TOPICS_FILE), topics).unwrap();
    Config::load(dir.path())
}

fn error(connections: &str, topics: &str) -> String {
    match load(connections, topics) {
        Ok(_) => panic!("config was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_exporters_own_example_files_load_unchanged() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/exporter");
    let config = Config::load(&dir).unwrap();
    assert_eq!(config.topics.len(), 2);
    let t = &config.topics[1];
    assert_eq!(t.group_id(), "consumer_group_2");
    assert_eq!(t.num_messages, Some(50));
    assert!(t.reset_offsets);
    assert_eq!(t.starting_offsets.as_ref().unwrap().get(1), Some(200));
    assert_eq!(t.offset_increment(1), 20);
    let ssl = config.connections.ssl_config.as_ref().unwrap();
    assert!(
        ssl.ca.as_ref().unwrap().is_file(),
        "cert paths resolve against the file"
    );
    assert!(!format!("{:?}", config.connections).contains("your_storage_account_key"));
}

#[test]
fn unknown_field_names_file_path_and_field() {
    let e = error(CONNECTIONS, r#"[{"topic": "t", "num_mesages": 5}]"#);
    assert!(
        e.contains("topics.json: field `[0].num_mesages`: unknown field `num_mesages`"),
        "{e}"
    );
    assert!(e.contains("expected one of"), "{e}");
}

#[test]
fn wrong_type_names_the_field() {
    let e = error(CONNECTIONS, r#"[{"topic": "t", "num_messages": "ten"}]"#);
    assert!(
        e.contains("field `[0].num_messages`: invalid type: string \"ten\""),
        "{e}"
    );
}

#[test]
fn a_partition_listed_twice_is_rejected() {
    let e = error(
        CONNECTIONS,
        r#"[{"topic": "t", "starting_offsets": {"0": 1, "0": 2}}]"#,
    );
    assert!(e.contains("topics.json: line 1"), "{e}");
    assert!(e.contains("key \"0\" appears twice"), "{e}");
    let e = error(
        CONNECTIONS,
        r#"[{"topic": "t", "starting_offsets": {"0": 1, "00": 2}}]"#,
    );
    assert!(
        e.contains("field `[0].starting_offsets`: partition 0 is listed twice"),
        "{e}"
    );
}

#[test]
fn a_partition_key_must_be_a_number() {
    let e = error(
        CONNECTIONS,
        r#"[{"topic": "t", "offset_increment": {"p0": 1}}]"#,
    );
    assert!(e.contains("key \"p0\" is not a partition number"), "{e}");
}

#[test]
fn negative_starting_offset_is_rejected() {
    let e = error(
        CONNECTIONS,
        r#"[{"topic": "t", "starting_offsets": {"3": -5}}]"#,
    );
    assert!(
        e.contains("field `[0].starting_offsets.3`: -5 is negative"),
        "{e}"
    );
}

#[test]
fn missing_cert_file_names_the_path() {
    let e = error(
        r#"{"bootstrap_servers": "b:9093", "ssl_config": {"ca": "certs/ca.pem"}}"#,
        "[]",
    );
    assert!(
        e.contains("connections.json: field `ssl_config.ca`: file"),
        "{e}"
    );
    assert!(e.contains("certs/ca.pem does not exist"), "{e}");
}

#[test]
fn syntax_error_gives_line_and_column() {
    let e = error(CONNECTIONS, "[\n  {\"topic\": \"t\",}\n]");
    assert!(e.contains("topics.json: line 2, column"), "{e}");
}

#[test]
fn missing_file_says_how_to_point_at_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let e = Config::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("connections.json") && e.contains("--config-dir"),
        "{e}"
    );
}

#[test]
fn env_vars_are_expanded_and_a_missing_one_is_named() {
    // SAFETY: the variable is unique to this test, so no other thread reads it.
    unsafe { std::env::set_var("RUNNER_TEST_SASL_PASSWORD", "s3cret") };
    let conn = r#"{"bootstrap_servers": "b:9092", "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password": "${RUNNER_TEST_SASL_PASSWORD}"}}"#;
    let config = load(conn, "[]").unwrap();
    let sasl = config.connections.sasl.as_ref().unwrap();
    assert_eq!(sasl.password.expose(), "s3cret");
    assert!(
        !format!("{:?}", config.connections).contains("s3cret"),
        "secret in Debug"
    );
    let kafka = crate::kafka::client_config(&config.connections);
    assert_eq!(kafka.get("security.protocol"), Some("SASL_PLAINTEXT"));

    let e = error(r#"{"bootstrap_servers": "${RUNNER_TEST_UNSET_VAR}"}"#, "[]");
    assert!(
        e.contains(
            "field `bootstrap_servers`: environment variable RUNNER_TEST_UNSET_VAR is not set"
        ),
        "{e}"
    );
}

#[test]
fn duplicate_topic_and_group_is_rejected() {
    let e = error(CONNECTIONS, r#"[{"topic": "t"}, {"topic": "t"}]"#);
    assert!(
        e.contains("field `[1].topic`: topic t with group runner.t is listed twice"),
        "{e}"
    );
}

#[test]
fn unknown_format_lists_the_known_ones() {
    let e = error(CONNECTIONS, r#"[{"topic": "t", "format": "xml"}]"#);
    assert!(
        e.contains("field `[0].format`: unknown variant `xml`"),
        "{e}"
    );
}

#[test]
fn bad_topic_name_and_zero_cap_are_rejected() {
    let e = error(CONNECTIONS, r#"[{"topic": "a b"}]"#);
    assert!(e.contains("\"a b\" is not a Kafka topic name"), "{e}");
    let e = error(CONNECTIONS, r#"[{"topic": "t", "num_messages": 0}]"#);
    assert!(e.contains("field `[0].num_messages`: is 0"), "{e}");
}

#[test]
fn passthrough_properties_override_runner_defaults() {
    let conn = r#"{"bootstrap_servers": "b:9092", "kafka_properties": {"isolation.level": "read_uncommitted"}}"#;
    let config = load(conn, "[]").unwrap();
    let kafka = crate::kafka::export_consumer_config(&config.connections, "g");
    assert_eq!(kafka.get("isolation.level"), Some("read_uncommitted"));
    assert_eq!(kafka.get("enable.auto.commit"), Some("false"));
}
