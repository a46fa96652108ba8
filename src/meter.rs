//! How far long runs are: on a terminal a live bar per topic (records read of planned, rate,
//! time left); elsewhere a progress log line per topic every few seconds.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The bars on screen; log lines are printed above them instead of through them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Display {
    /// Bars on a terminal, log lines elsewhere.
    Auto,
    Bars,
    Lines,
    Off,
}

#[derive(Clone, Default)]
pub struct Meter {
    mode: Mode,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Off => "off",
            Mode::Lines(_) => "lines",
            Mode::Bars(_) => "bars",
        };
        f.debug_struct("Meter").field("mode", &mode).finish()
    }
}

#[derive(Clone, Default)]
enum Mode {
    #[default]
    Off,
    Lines(Duration),
    Bars(Arc<MultiProgress>),
}

impl Meter {
    /// `every` spaces the log lines; `stderr_is_terminal` decides `Auto`.
    pub fn new(display: Display, every: Duration, stderr_is_terminal: bool) -> Meter {
        let mode = match display {
            Display::Auto if stderr_is_terminal => Mode::Bars(Arc::new(bars())),
            Display::Bars => Mode::Bars(Arc::new(bars())),
            Display::Auto | Display::Lines => Mode::Lines(every),
            Display::Off => Mode::Off,
        };
        Meter { mode }
    }

    /// Starts following one topic's run of `planned` records.
    pub fn topic(&self, topic: &str, planned: u64) -> TopicMeter {
        let bar = match &self.mode {
            Mode::Bars(multi) if planned > 0 => {
                let bar = multi.add(ProgressBar::new(planned));
                bar.set_style(style());
                bar.set_prefix(topic.to_string());
                Some(bar)
            }
            _ => None,
        };
        let every = match self.mode {
            Mode::Lines(every) => Some(every),
            _ => None,
        };
        let now = Instant::now();
        TopicMeter {
            bar,
            every,
            planned,
            done: 0,
            started: now,
            last_line: now,
        }
    }
}

fn bars() -> MultiProgress {
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        .clone()
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:<24!} [{bar:30}] {human_pos:>10}/{human_len:<10} {rate:>10} left {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        },
    )
    .progress_chars("=> ")
}

pub struct TopicMeter {
    bar: Option<ProgressBar>,
    every: Option<Duration>,
    planned: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl TopicMeter {
    /// Counts `n` more records read.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if let Some(every) = self.every
            && self.last_line.elapsed() >= every
        {
            self.last_line = Instant::now();
            let seconds = self.started.elapsed().as_secs_f64().max(0.001);
            let rate = self.done as f64 / seconds;
            let left = self.planned.saturating_sub(self.done);
            tracing::info!(
                records = self.done,
                planned = self.planned,
                per_second = rate.round() as u64,
                seconds_left = if rate > 0.0 {
                    (left as f64 / rate).round() as u64
                } else {
                    0
                },
                "progress"
            );
        }
    }
}

impl Drop for TopicMeter {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            // The summary line says how it ended; a long-lived scheduler must not pile up bars.
            bar.finish_and_clear();
        }
    }
}

/// Writes log lines to stderr, above the bars while they are drawn.
pub struct StderrLine(Vec<u8>);

impl StderrLine {
    pub fn new() -> StderrLine {
        StderrLine(Vec::new())
    }
}

impl Default for StderrLine {
    fn default() -> Self {
        StderrLine::new()
    }
}

impl Write for StderrLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrLine {
    fn drop(&mut self) {
        let print = || {
            let _ = std::io::stderr().write_all(&self.0);
        };
        match BARS.get() {
            Some(multi) => multi.suspend(print),
            None => print(),
        }
    }
}
