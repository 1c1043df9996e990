//! Times given on the command line (`--as-of`, `--from`, `--to`): RFC 3339, refused with a
//! message that names the accepted format and shows it, instead of the parser's "premature end
//! of input".
use chrono::{DateTime, NaiveDate, Utc};

/// The accepted format, as error messages name it.
const FORMAT: &str = "expected an RFC 3339 time with a date, a time and an offset, such as \
                      2026-11-01T00:00:00Z or 2026-11-01T09:30:00+01:00";

/// Parses an RFC 3339 time (`T` or a space between date and time) into UTC. A clap value
/// parser: its error is printed after the flag and the value.
pub fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    // A bare date is the common slip; say which instant to write for its start.
    if let Ok(date) = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
        return Err(format!(
            "a date without a time of day: {FORMAT}; for the start of that day in UTC write \
             {date}T00:00:00Z"
        ));
    }
    Err(format!("not a time: {FORMAT}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3339_times_are_read_in_any_offset_and_kept_as_utc() {
        let utc = parse_time("2026-11-01T12:00:00Z").unwrap();
        assert_eq!(parse_time("2026-11-01T13:00:00+01:00").unwrap(), utc);
        assert_eq!(parse_time("2026-11-01 12:00:00Z").unwrap(), utc);
    }

    #[test]
    fn a_bare_date_is_refused_with_the_format_and_the_instant_to_write() {
        let e = parse_time("2026-11-01").unwrap_err();
        assert!(
            e.contains("RFC 3339") && e.contains("2026-11-01T00:00:00Z"),
            "{e}"
        );
        let e = parse_time("yesterday").unwrap_err();
        assert!(e.contains("not a time") && e.contains("RFC 3339"), "{e}");
    }
}
