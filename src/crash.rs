//! Named crash points for the fault campaign (`tests/campaign.rs`). Built with the
//! `failpoints` feature (tests only), `FAILPOINTS="<point>=return"` aborts the process at that
//! point as a SIGKILL would stop it, and `FAILPOINTS="<point>=2*off->return"` at its third
//! pass; without the feature a point compiles to nothing.
//!
//! The points, in the order a run passes them (docs/testing.md explains each):
//! `after-fetch`, `after-decode`, `file-half-written`, `progress-pending-saved`,
//! `file-visible`, `progress-saved`, `lock-takeover`, `revoke-sealed`,
//! `aggregate-outputs-written`, `aggregate-totals-written`, `aggregate-state-saved`.

/// Stops the process here when `FAILPOINTS` names this point (with the `failpoints` feature).
macro_rules! crash_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name, |_| $crate::crash::abort($name));
    };
}
pub(crate) use crash_point;

/// Ends the process at once: no destructor runs, no buffer is flushed, no upload is aborted.
#[cfg(feature = "failpoints")]
pub fn abort(point: &str) -> ! {
    eprintln!("crash point {point}: the process stops here");
    std::process::abort()
}
