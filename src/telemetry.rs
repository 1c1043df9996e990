//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as plain text
//! (coloured only on a terminal) or JSON lines when `LEDGER_LOG_FORMAT=json`; and the one-line
//! rendering of errors for logs and for the exit message of the binary.
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LEDGER_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Whether log lines get colour codes: only on a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>). A log file or a journal gets none.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The line the binary prints for an error that ends a command: its cause chain on one line
/// ([`format_chain`], line breaks inside a message turned into spaces), never a backtrace.
pub fn error_line(error: &anyhow::Error) -> String {
    let chain = format_chain(error.as_ref());
    chain.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An error with its cause chain, `outer: cause: root cause`, for logs. A cause whose text
/// the message before it already ends with (a `Display` that prints its source) is not
/// repeated.
pub fn format_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The most characters of a client-supplied value an error message or log line repeats.
pub const EXCERPT_CHARS: usize = 64;

/// A client-supplied value as error messages and logs may repeat it: at most
/// [`EXCERPT_CHARS`] characters, then `…` when cut. A megabyte-long value echoed whole would
/// break the `grpc-message` header (and flood the logs).
pub fn excerpt(value: &str) -> String {
    match value.char_indices().nth(EXCERPT_CHARS) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}…", &value[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("printing: {0}")]
    struct Printing(#[source] std::io::Error);

    #[test]
    fn format_chain_names_every_cause_once() {
        let root = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(format_chain(&Outer(root())), "outer: refused");
        assert_eq!(format_chain(&Printing(root())), "printing: refused");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }

    #[test]
    fn an_error_line_is_one_line_with_every_cause() {
        let error = anyhow::Error::new(Outer(std::io::Error::other("disk\nfull")))
            .context("opening the event log");
        assert_eq!(
            error_line(&error),
            "opening the event log: outer: disk full"
        );
    }

    #[test]
    fn excerpt_cuts_long_values_at_a_character_boundary() {
        assert_eq!(excerpt("short"), "short");
        let exact = "a".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&exact), exact);
        let long = "ä".repeat(1 << 20);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
