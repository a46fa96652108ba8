//! Schedules: cron expressions with standard semantics, fired by `runner schedule`.

pub mod cron;
pub mod scheduler;
