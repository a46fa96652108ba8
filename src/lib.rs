//! runner: bounded, exactly-once exports from Kafka to Parquet.
//!
//! Data flows one way through one module per stage: `config` → `plan` → `read` → `decode` →
//! `write` (into the `sink`) → `progress`. `jobs` composes them.

// Errors carry their topic, partition and offset by value; they are rare, so size is no concern.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod aggregate;
pub mod check;
pub mod config;
pub mod cores;
pub mod crash;
pub mod dead_letter_topic;
pub mod decode;
pub mod embedded;
pub mod expr;
pub mod failure;
pub mod history;
pub mod jobs;
pub mod join;
pub mod kafka;
pub mod lock;
pub mod logging;
pub mod meter;
pub mod plan;
pub mod process;
pub mod produce;
pub mod progress;
pub mod read;
pub mod records;
pub mod registry;
pub mod schedule;
pub mod sink;
pub mod web;
pub mod write;
