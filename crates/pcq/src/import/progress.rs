//! How an import shows its progress on standard error: a bar with the rate and the time left on
//! a terminal, a plain line every few seconds otherwise (a log, a CI job).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed.
const LINE_INTERVAL: Duration = Duration::from_secs(2);

/// The outcome counts so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub already_there: u64,
    pub failed: u64,
}

impl Counts {
    pub fn done(&self) -> u64 {
        self.created + self.already_there + self.failed
    }
}

/// The progress display of one import.
pub enum Progress {
    Bar(ProgressBar),
    Lines {
        total: u64,
        started: Instant,
        last: Instant,
    },
    Quiet,
}

impl Progress {
    /// A bar when standard error is a terminal, plain lines otherwise; nothing under `quiet`.
    pub fn start(total: u64, quiet: bool) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        let now = Instant::now();
        if !std::io::stderr().is_terminal() {
            return Progress::Lines {
                total,
                started: now,
                last: now,
            };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{bar:24.cyan/blue} {pos}/{len} {per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress::Bar(bar)
    }

    /// Takes up the counts after a row is done.
    pub fn update(&mut self, counts: &Counts) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(counts.done());
                bar.set_message(format!(
                    "{} new, {} there, {} failed",
                    counts.created, counts.already_there, counts.failed
                ));
            }
            Progress::Lines {
                total,
                started,
                last,
            } => {
                if last.elapsed() >= LINE_INTERVAL {
                    *last = Instant::now();
                    eprintln!("{}", line(*total, counts, started.elapsed()));
                }
            }
            Progress::Quiet => {}
        }
    }

    /// Clears the bar (the summary follows).
    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn message(counts: &Counts) -> String {
    format!(
        "{} created, {} already there, {} failed",
        counts.created, counts.already_there, counts.failed
    )
}

/// A plain progress line: `pcq: 1200 of 10000 rows (…), 950 rows/s`.
fn line(total: u64, counts: &Counts, elapsed: Duration) -> String {
    let rate = counts.done() as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "pcq: {} of {total} rows ({}), {rate:.0} rows/s",
        counts.done(),
        message(counts)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_how_far_and_how_fast() {
        let counts = Counts {
            created: 90,
            already_there: 8,
            failed: 2,
        };
        assert_eq!(
            line(1000, &counts, Duration::from_secs(2)),
            "pcq: 100 of 1000 rows (90 created, 8 already there, 2 failed), 50 rows/s"
        );
    }
}
