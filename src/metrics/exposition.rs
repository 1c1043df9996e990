//! Reads the Prometheus text format back: samples with their labels, and the HELP and TYPE of
//! each family. What the status console shows and what tests compare comes through here.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name as shown (`ledger_scrubbed_total`, `…_bucket`).
    pub name: String,
    /// Its labels in the order shown.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if it has one.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// HELP text by family name.
    pub help: BTreeMap<String, String>,
    /// TYPE by family name.
    pub types: BTreeMap<String, String>,
    /// Lines that are neither comments nor samples.
    pub malformed: Vec<String>,
}

impl Exposition {
    /// The family a sample belongs to: its own name, or for a histogram's `_bucket`, `_sum`
    /// and `_count` series the histogram's.
    pub fn family_of<'a>(&self, sample: &'a str) -> &'a str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix) {
                if self.types.get(base).is_some_and(|t| t == "histogram") {
                    return base;
                }
            }
        }
        sample
    }

    /// The value of the series `name` with exactly `labels` (any order).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.label(k) == Some(v))
            })
            .map(|s| s.value)
    }
}

/// Parses `text`.
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.help.insert(name.to_owned(), help.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            out.types.insert(name.to_owned(), kind.to_owned());
        } else if line.starts_with('#') {
            continue;
        } else if let Some(sample) = sample(line) {
            out.samples.push(sample);
        } else {
            out.malformed.push(line.to_owned());
        }
    }
    out
}

fn sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
        None => (series, Vec::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes in values.
fn labels(mut rest: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((key.trim_start_matches(',').to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_help_and_types_are_read_back() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\na_total{k=\"x \\\"y\\\"\",j=\"2\"} 5\n\
                    # HELP h Seconds.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n";
        let e = parse(text);
        assert!(e.malformed.is_empty());
        assert_eq!(
            e.value("a_total", &[("j", "2"), ("k", "x \"y\"")]),
            Some(5.0)
        );
        assert_eq!(e.types["h"], "histogram");
        assert_eq!(e.family_of("h_count"), "h");
        assert_eq!(e.family_of("a_total"), "a_total");
        assert_eq!(e.help["a_total"], "Things.");
    }
}
