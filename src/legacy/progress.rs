//! The import's progress line on stderr: rows done of the total, the rate and the time left.
//! Only on a terminal (a log file or a pipe gets the summary at the end, nothing else).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress line.
#[derive(Debug)]
pub struct Progress {
    total: u64,
    done: u64,
    started: Instant,
    shown: Option<Instant>,
    on: bool,
}

impl Progress {
    /// A progress of `total` rows, shown when `wanted` and stderr is a terminal.
    pub fn new(total: u64, wanted: bool) -> Self {
        Self {
            total,
            done: 0,
            started: Instant::now(),
            shown: None,
            on: wanted && std::io::stderr().is_terminal(),
        }
    }

    /// Rows per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// `n` more rows done; redraws at most four times a second.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if !self.on
            || self
                .shown
                .is_some_and(|t| t.elapsed() < Duration::from_millis(250))
        {
            return;
        }
        self.shown = Some(Instant::now());
        eprint!("\r{}", self.line());
        let _ = std::io::stderr().flush();
    }

    /// The line: `12,000 / 1,000,000 rows (1.2 %)  9,870 rows/s  1m40s left`.
    pub fn line(&self) -> String {
        let rate = self.rate();
        let left = self.total.saturating_sub(self.done);
        let eta = if rate > 0.0 {
            let s = (left as f64 / rate).round() as u64;
            format!("{}m{:02}s left", s / 60, s % 60)
        } else {
            "time left unknown".into()
        };
        let pct = if self.total == 0 {
            100.0
        } else {
            self.done as f64 * 100.0 / self.total as f64
        };
        format!(
            "{} / {} rows ({pct:.1} %)  {} rows/s  {eta}   ",
            group(self.done),
            group(self.total),
            group(rate.round() as u64)
        )
    }

    /// Ends the line.
    pub fn finish(&mut self) {
        if self.on {
            eprintln!("\r{}", self.line());
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_counts_rate_and_time_left() {
        let mut p = Progress::new(1_000_000, false);
        p.advance(12_000);
        let line = p.line();
        assert!(
            line.starts_with("12,000 / 1,000,000 rows (1.2 %)"),
            "{line}"
        );
        assert!(line.contains("rows/s") && line.contains("left"), "{line}");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
    }
}
