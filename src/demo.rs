//! `runner demo`: the export job end to end on an embedded broker with sample data.

use crate::cli::DemoArgs;
use anyhow::Context;
use runner::config::{Config, Connections, Format, TopicConfig};
use runner::embedded::{EmbeddedKafka, Record};
use runner::jobs::{self, RunContext, RunOptions};
use runner::produce::{Encoder, transactions};
use runner::sink::Sink;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::runtime::Handle;

const PARTITIONS: i32 = 3;

pub fn run(config_dir: &Path, args: &DemoArgs, rt: Handle) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_dir)?;
    let kafka = EmbeddedKafka::start().context("cannot start the embedded Kafka broker")?;
    let out = config_dir.join("out").join("demo");
    // The demo's own folder: a fresh broker starts at offset 0 again.
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    let connections: Connections = serde_json::from_value(serde_json::json!({
        "bootstrap_servers": kafka.bootstrap_servers(),
    }))?;
    let topics: Vec<TopicConfig> = config
        .topics
        .iter()
        .filter(|t| t.enabled)
        .cloned()
        .collect();
    for topic in &topics {
        kafka.create_topic(&topic.topic, PARTITIONS)?;
    }
    let ctx = RunContext {
        config: Config {
            connections,
            ..config
        },
        sink: Arc::new(Sink::local(&out, rt)?),
        registry: None,
        options: RunOptions::default(),
    };
    println!(
        "embedded broker at {}; output in {}",
        kafka.bootstrap_servers(),
        out.display()
    );
    let mut code = ExitCode::SUCCESS;
    for (round, count) in [(1, args.records), (2, args.records / 2)] {
        let first = if round == 1 { 0 } else { args.records };
        for topic in &topics {
            match topic.format {
                // Typed formats get the seed's transaction events, encoded as configured.
                Format::Avro | Format::Protobuf => {
                    let encoder = Encoder::new(topic, None)?;
                    let records = transactions(first..first + count, 20)
                        .map(|v| {
                            let v = v.map_err(anyhow::Error::msg)?;
                            let key = v["account_number"].as_str().map(|k| k.as_bytes().to_vec());
                            let value = encoder.encode(&v).map_err(anyhow::Error::msg)?;
                            Ok(Record {
                                key,
                                value: Some(value),
                                ..Record::default()
                            })
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    kafka.produce(&topic.topic, records)?;
                }
                _ => {
                    kafka.produce(&topic.topic, sample(first, count))?;
                }
            }
        }
        println!("\nrun {round}: produced {count} records per topic, exporting");
        let outcomes = jobs::run_once(&ctx, &topics);
        if crate::report(&outcomes) != ExitCode::SUCCESS {
            code = ExitCode::from(1);
        }
    }
    println!(
        "\nThe second run exported only the new records: it resumed from the progress recorded in {}/_runner.\nRead the files with DuckDB:\n  duckdb -c \"SELECT kafka_partition, count(*) FROM '{}/*/*/*.parquet' GROUP BY 1\"\n  duckdb -c \"SELECT account_number, sum(amount) FROM '{}/transactions/*/*.parquet' GROUP BY 1 ORDER BY 1\"",
        out.display(),
        out.display(),
        out.display()
    );
    Ok(code)
}

/// Sample orders as JSON objects; raw topics carry the same bytes.
fn sample(first: usize, count: usize) -> impl Iterator<Item = Record> {
    (first..first + count).map(move |i| {
        let account = format!("ACC{:03}", i % 20);
        let value = serde_json::json!({
            "order_id": i,
            "account_number": account,
            "amount": (i % 997) as f64 * 1.25,
            "currency": "EUR",
            "paid": i % 3 != 0,
        })
        .to_string();
        Record {
            partition: None,
            key: Some(account.into_bytes()),
            value: Some(value.into_bytes()),
            timestamp: None,
        }
    })
}
