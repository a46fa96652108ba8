//! `runner demo`: the jobs of jobs/ end to end on an embedded broker and Schema Registry.

use crate::cli::DemoArgs;
use anyhow::Context;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use runner::config::{Config, Format, TopicConfig};
use runner::embedded::{EmbeddedKafka, Record};
use runner::jobs::{self, JobOutcome, JobResults, RunContext, RunOptions};
use runner::produce::{Encoder, transactions};
use runner::registry::{EmbeddedRegistry, Registry, SchemaType};
use runner::sink::Sink;
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::runtime::Runtime;

const PARTITIONS: i32 = 3;
const ACCOUNTS: usize = 20;
const CURRENCIES: [&str; 3] = ["EUR", "USD", "GBP"];
/// The demo's Avro schema, registered for every Avro topic that has no schema_file.
const PAYMENT_SCHEMA: &str = "config/schemas/payment.avsc";

pub fn run(config_dir: &Path, args: &DemoArgs, rt: &Runtime) -> anyhow::Result<ExitCode> {
    let kafka = EmbeddedKafka::start().context("cannot start the embedded Kafka broker")?;
    let server = EmbeddedRegistry::start(rt.handle())
        .context("cannot start the embedded Schema Registry")?;
    let out = config_dir.join("out").join("demo");
    // A fresh broker starts at offset 0 again, so earlier progress must go.
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // The demo runs on a connections file of its own, so `--keep` users can point commands at it.
    let connections = out.join("connections.json");
    let body = json!({
        "bootstrap_servers": kafka.bootstrap_servers(),
        "schema_registry_url": server.url(),
        "storage_url": ".",
    });
    std::fs::write(&connections, serde_json::to_string_pretty(&body)?)
        .with_context(|| format!("cannot write {}", connections.display()))?;
    let config = Config::load_from(config_dir, &connections)?;
    let registry = Registry::from_connections(&config.connections, rt.handle().clone())?
        .context("the demo's connections name no Schema Registry")?;
    let topics: Vec<TopicConfig> = config
        .topics
        .iter()
        .filter(|t| t.enabled)
        .cloned()
        .collect();
    for topic in &topics {
        kafka.create_topic(&topic.topic, PARTITIONS)?;
        if topic.format == Format::Avro && topic.schema_file.is_none() {
            let schema = std::fs::read_to_string(config_dir.join(PAYMENT_SCHEMA))
                .with_context(|| format!("cannot read {PAYMENT_SCHEMA}"))?;
            registry.register(&format!("{}-value", topic.topic), SchemaType::Avro, &schema)?;
        }
    }
    let chosen = config.select_jobs(&[])?;
    let ctx = RunContext {
        processors: Default::default(),
        sink: Arc::new(Sink::open(&config.sink, rt.handle().clone())?),
        registry: Some(Arc::new(registry)),
        config,
        options: RunOptions::default(),
    };
    println!(
        "embedded Kafka broker at {}, Schema Registry at {}; output in {}",
        kafka.bootstrap_servers(),
        server.url(),
        out.display()
    );
    let mut code = ExitCode::SUCCESS;
    let mut last = Vec::new();
    for (round, first, count) in [(1, 0, args.records), (2, args.records, args.records / 2)] {
        for topic in &topics {
            let encoder = Encoder::new(topic, ctx.registry.as_deref())?;
            let records = sample(topic, first..first + count)
                .map(|item| {
                    let (key, value) = item.map_err(anyhow::Error::msg)?;
                    let value = encoder.encode(&value).map_err(anyhow::Error::msg)?;
                    Ok(Record {
                        key: Some(key.into_bytes()),
                        value: Some(value),
                        ..Record::default()
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| format!("cannot encode sample records for {}", topic.topic))?;
            kafka.produce(&topic.topic, records)?;
        }
        println!(
            "\nround {round}: produced {count} records to each of {} topics; running jobs {}",
            topics.len(),
            names(&chosen)
        );
        let run_id = runner::logging::new_run_id();
        last = chosen
            .iter()
            .map(|j| {
                let started = chrono::Utc::now();
                let outcome = jobs::run_job(&ctx, j);
                crate::remember(&ctx, &outcome, &run_id, started, &Default::default());
                outcome
            })
            .collect();
        if crate::report_jobs(&last) != ExitCode::SUCCESS {
            code = ExitCode::from(1);
        }
    }
    print_totals(&last);
    println!(
        "\nRound 2 read only the records produced since round 1: every job resumed from the \
         progress in {out}/_runner.\nOpen the Parquet files with DuckDB or pyarrow:\n  \
         duckdb -c \"SELECT account_number, sum(amount) FROM '{out}/transactions/*/*.parquet' GROUP BY 1 ORDER BY 1\"\n  \
         duckdb -c \"SELECT filename, * FROM read_parquet('{out}/totals/transactions/*.parquet', filename = true) ORDER BY account_number, filename\"\n  \
         python3 -c \"import pyarrow.parquet as pq; print(pq.read_table('{out}/payments').slice(0, 3).to_pylist())\"",
        out = out.display()
    );
    if args.keep {
        keep(rt, &connections)?;
    }
    Ok(code)
}

/// The jobs' names, comma-separated.
fn names(jobs: &[runner::config::JobConfig]) -> String {
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    names.join(", ")
}

/// Keeps the broker and registry up until Ctrl-C, with commands to try against them.
fn keep(rt: &Runtime, connections: &Path) -> anyhow::Result<()> {
    let flag = format!("--connections {}", connections.display());
    println!(
        "\nThe broker and the Schema Registry keep running until Ctrl-C. In another terminal:\n  \
         runner {flag} topics describe transactions\n  \
         runner {flag} produce --topic transactions --generate transactions --count 500\n  \
         runner {flag} once --job account-totals"
    );
    rt.block_on(tokio::signal::ctrl_c())
        .context("cannot wait for Ctrl-C")
}

/// The last round's totals of each aggregate job, as a table.
fn print_totals(outcomes: &[JobOutcome]) {
    for outcome in outcomes {
        let JobResults::Aggregate(topics) = &outcome.results else {
            continue;
        };
        for t in topics {
            if let Ok(summary) = &t.result
                && let Some(totals) = &summary.totals
            {
                println!(
                    "\ntotals of job {} ({} mode):",
                    outcome.job,
                    summary.mode.as_str()
                );
                println!("{}", table(totals));
            }
        }
    }
}

/// A plain text table: a header, then one aligned row per group.
fn table(batch: &RecordBatch) -> String {
    let options = FormatOptions::default().with_null("null");
    let mut rows: Vec<Vec<String>> = vec![
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
    ];
    let formatters: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok())
        .collect();
    for row in 0..batch.num_rows() {
        rows.push(
            formatters
                .iter()
                .map(|f| f.as_ref().map_or("?".into(), |f| f.value(row).to_string()))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            format!("  {}", cells.join("  ").trim_end())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sample records `range` for a topic as (key, JSON value): the seed's transactions for
/// Protobuf, payments for Avro, orders for JSON and raw topics.
fn sample(
    topic: &TopicConfig,
    range: std::ops::Range<usize>,
) -> Box<dyn Iterator<Item = Result<(String, Value), String>>> {
    match topic.format {
        Format::Protobuf => Box::new(transactions(range, ACCOUNTS).map(|v| {
            let v = v?;
            let key = v["account_number"].as_str().unwrap_or_default().to_string();
            Ok((key, v))
        })),
        Format::Avro => Box::new(range.map(|i| {
            let account = format!("ACC{:04}", i % ACCOUNTS + 1);
            let value = json!({
                "payment_id": format!("pay-{i:08}"),
                "account_number": account,
                "amount_cents": (i * 7919) % 50_000,
                "currency": CURRENCIES[i % 3],
                "paid_at": 1_795_384_800_000_i64 + i as i64 * 1000,
                "note": if i % 5 == 0 { Value::from("refund") } else { Value::Null },
            });
            Ok((account, value))
        })),
        _ => Box::new(range.map(|i| {
            let account = format!("ACC{:04}", i % ACCOUNTS + 1);
            let value = json!({
                "order_id": i,
                "account_number": account,
                "amount": (i % 997) as f64 * 1.25,
                "currency": "EUR",
                "paid": i % 3 != 0,
            });
            Ok((account, value))
        })),
    }
}
