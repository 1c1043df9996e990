//! A fast reader for the one JSON form the ledger writes its envelope metadata in
//! ([`Metadata::to_bytes`]: `serde_json` with the fields in declaration order, no spaces).
//!
//! Every event read from the log carries that JSON, and parsing it with `serde_json` (a
//! generic field-by-field deserialiser, then chrono's relaxed RFC 3339 parser for the time)
//! was about 10 % of all CPU time of a rebuild (`perf` of `ledger bench --parts projection`:
//! half of the log reader's thread). This reads the canonical form directly: fixed keys in
//! their order, strings without escapes, the UUIDs, and the time as serde writes it
//! (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`). Anything else — escapes, another key order, spaces,
//! another time form, a foreign writer's JSON — answers `None`, and the caller parses it with
//! `serde_json` as before: this only ever accepts bytes `serde_json` reads to the same value.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Actor, ActorKind, Metadata};

/// The metadata in `bytes` if they are in the canonical form, else `None`.
pub(super) fn parse(bytes: &[u8]) -> Option<Metadata> {
    let mut r = Reader { bytes, at: 0 };
    r.literal(b"{\"actor\":{\"kind\":\"")?;
    let kind = ActorKind::from_name(r.plain_string()?)?;
    r.literal(b",\"id\":\"")?;
    let id = r.plain_string()?.to_owned();
    r.literal(b"},\"source\":\"")?;
    let source = r.plain_string()?.to_owned();
    r.literal(b",\"$correlationId\":\"")?;
    let correlation_id = Uuid::parse_str(r.plain_string()?).ok()?;
    r.literal(b",\"$causationId\":\"")?;
    let causation_id = Uuid::parse_str(r.plain_string()?).ok()?;
    r.literal(b",\"occurredAt\":\"")?;
    let occurred_at = utc_time(r.plain_string()?.as_bytes())?;
    r.literal(b"}")?;
    (r.at == bytes.len()).then_some(Metadata {
        actor: Actor { kind, id },
        source,
        correlation_id,
        causation_id,
        occurred_at,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Consumes `expected` exactly.
    fn literal(&mut self, expected: &[u8]) -> Option<()> {
        let rest = self.bytes.get(self.at..)?;
        rest.starts_with(expected)
            .then(|| self.at += expected.len())
    }

    /// Consumes a string's content and its closing quote: `None` if it holds an escape or a
    /// control character (JSON allows neither unescaped) or is not UTF-8.
    fn plain_string(&mut self) -> Option<&'a str> {
        let rest = self.bytes.get(self.at..)?;
        let end = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[end] != b'"' {
            return None;
        }
        self.at += end + 1;
        std::str::from_utf8(&rest[..end]).ok()
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.d{1,9}]Z`, the form chrono's serde writes a `DateTime<Utc>` in.
fn utc_time(s: &[u8]) -> Option<DateTime<Utc>> {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(range)?;
        part.iter().try_fold(0u32, |n, &b| {
            if b.is_ascii_digit() {
                Some(n * 10 + u32::from(b - b'0'))
            } else {
                None
            }
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if s.len() < 20 || separators.iter().any(|&(i, c)| s[i] != c) || s.last() != Some(&b'Z') {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let fraction = &s[19..s.len() - 1];
    let nanos = match fraction {
        [] => 0,
        [b'.', f @ ..] if (1..=9).contains(&f.len()) => {
            digits(20..20 + f.len())? * 10u32.pow(9 - f.len() as u32)
        }
        _ => return None,
    };
    // A leap second (`:60`) is left to chrono's own parser.
    if second > 59 {
        return None;
    }
    let time = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_nano_opt(hour, minute, second, nanos)?;
    Some(time.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn metadata(kind: ActorKind, id: &str, source: &str, at: DateTime<Utc>) -> Metadata {
        Metadata {
            actor: Actor {
                kind,
                id: id.to_owned(),
            },
            source: source.to_owned(),
            correlation_id: Uuid::now_v7(),
            causation_id: Uuid::new_v4(),
            occurred_at: at,
        }
    }

    fn by_serde(bytes: &[u8]) -> Option<Metadata> {
        serde_json::from_slice(bytes).ok()
    }

    #[test]
    fn the_canonical_form_reads_back_to_the_same_metadata_as_serde_reads_it() {
        let base = Utc.with_ymd_and_hms(2026, 12, 7, 23, 37, 13).unwrap();
        let times = [
            base,
            base + chrono::Duration::milliseconds(120),
            base + chrono::Duration::microseconds(123_456),
            base + chrono::Duration::nanoseconds(123_456_789),
            base + chrono::Duration::nanoseconds(1),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
        ];
        for (i, at) in times.into_iter().enumerate() {
            for kind in ActorKind::ALL {
                let m = metadata(kind, "spenden.wikimedia.de", "grpc:AddDonation", at);
                let bytes = m.to_bytes();
                assert_eq!(parse(&bytes), Some(m.clone()), "time {i}, {kind:?}");
                assert_eq!(by_serde(&bytes), Some(m));
            }
        }
        let unicode = metadata(ActorKind::FocUser, "foc:jürgen", "Größe 🐘", times[2]);
        assert_eq!(parse(&unicode.to_bytes()), Some(unicode));
    }

    #[test]
    fn anything_but_the_canonical_form_is_left_to_serde() {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 23, 37, 13).unwrap();
        // Escapes in a string: serde reads them, the fast path does not try.
        let escaped = metadata(ActorKind::Frontend, "a\"b\\c\nd", "tab\there", at);
        let bytes = escaped.to_bytes();
        assert_eq!(parse(&bytes), None);
        assert_eq!(by_serde(&bytes), Some(escaped));

        let canonical =
            String::from_utf8(metadata(ActorKind::System, "x", "y", at).to_bytes()).unwrap();
        let other_forms = [
            canonical.replace("\":", "\": "),
            canonical.replace("Z\"}", "+00:00\"}"),
            canonical.replace("T23", "t23"),
            canonical.replace(":13Z", ":60Z"),
            canonical.replace(":13Z", ":13.1234567891Z"),
            canonical.replace(":13Z", ":13.Z"),
            canonical.replace("\"system\"", "\"robot\""),
            canonical.replace("-12-07", "-13-07"),
            format!("{canonical} "),
            canonical[..canonical.len() - 1].to_owned(),
            canonical.replacen('-', "x", 1),
            String::new(),
        ];
        for form in other_forms {
            assert_eq!(parse(form.as_bytes()), None, "{form}");
        }
        // Not UTF-8 inside a string.
        let mut bytes = canonical.into_bytes();
        let i = bytes.iter().position(|&b| b == b'x').unwrap();
        bytes[i] = 0xff;
        assert_eq!(parse(&bytes), None);
    }
}
