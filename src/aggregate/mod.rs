//! Totals per key: the accumulator, the state that carries offsets and cumulative totals
//! between runs, and the outputs. A job's `aggregate` block is `crate::config::aggregate`;
//! the aggregate jobs that compose these with the other stages are `crate::jobs::aggregate`.

pub mod accumulate;
pub mod output;
pub mod state;
