//! Progress bars for long commands (`rebuild`, `verify`, `scrub`, imports): a count with its
//! rate and, when the total is known, the time left. Drawn on stderr only when stderr is a
//! terminal, so CI logs, pipes and tests see nothing of them.
//!
//! ```no_run
//! use ledger::cli::progress::Progress;
//! let bar = Progress::new("rebuilding", Some(120_000), "events");
//! for _ in 0..120 {
//!     bar.inc(1_000);
//! }
//! bar.finish();
//! ```

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Redraws per second at most.
const REFRESH_HZ: u8 = 8;

/// One progress bar (or nothing, when stderr is not a terminal). Cheap to clone; clones move
/// the same bar, so a clone can go into a callback.
#[derive(Clone, Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `what` (a verb phrase such as `"rebuilding"`) counting `unit`s (a plural such
    /// as `"events"`), with a `total` when it is known: then it shows the time left, else a
    /// spinner with the count and rate.
    pub fn new(what: &str, total: Option<u64>, unit: &str) -> Self {
        Self::with_target(what, total, unit, std::io::stderr().is_terminal())
    }

    /// A bar drawn on stderr when `visible`, hidden otherwise (for tests and `--quiet`).
    pub fn with_target(what: &str, total: Option<u64>, unit: &str, visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr_with_hz(REFRESH_HZ)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(total, target);
        bar.set_style(style(total.is_some(), unit));
        bar.set_message(what.to_owned());
        if total.is_none() {
            bar.enable_steady_tick(Duration::from_millis(250));
        }
        Self { bar }
    }

    /// A bar that never draws.
    pub fn hidden() -> Self {
        Self::with_target("", None, "", false)
    }

    /// Whether the bar draws anything.
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Sets the total (for work whose size is learnt after the start); shows the time left.
    /// Setting the same total again changes nothing.
    pub fn set_total(&self, total: u64, unit: &str) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
            self.bar.set_style(style(true, unit));
        }
    }

    /// Prints `line` above the bar (nothing when the bar is hidden).
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    /// Sets the count done so far.
    pub fn set_position(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Adds `n` to the count.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// The count done so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Replaces the phrase in front of the bar (a new phase of the same command).
    pub fn set_phase(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    /// Removes the bar from the terminal (the command prints its own summary).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The bar's layout: with a total, a bar with the count, rate and time left; without, a
/// spinner with the count and rate.
fn template(known_total: bool, unit: &str) -> String {
    if known_total {
        format!(
            "{{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec:0}}, {{eta}} left)"
        )
    } else {
        format!("{{spinner}} {{msg}}: {{human_pos}} {unit} ({{per_sec:0}}, {{elapsed}})")
    }
}

fn style(known_total: bool, unit: &str) -> ProgressStyle {
    ProgressStyle::with_template(&template(known_total, unit))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_bar_counts_without_drawing() {
        let bar = Progress::with_target("rebuilding", None, "events", false);
        assert!(!bar.is_visible());
        bar.inc(5);
        bar.clone().inc(7);
        assert_eq!(bar.position(), 12, "clones move the same bar");
        bar.set_total(100, "events");
        bar.set_position(40);
        assert_eq!(bar.position(), 40);
        bar.finish();
    }

    #[test]
    fn every_layout_is_a_valid_template() {
        for known in [true, false] {
            let template = template(known, "events");
            assert!(
                ProgressStyle::with_template(&template).is_ok(),
                "{template}"
            );
        }
    }
}
