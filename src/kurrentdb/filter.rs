//! Server-side filters of `$all` reads and subscriptions: on the stream name or the event type,
//! by prefixes or by a regular expression, as the clients send them. The regular expressions are
//! .NET-style and the clients use look-around (the Python client's default excludes system
//! events with `^(?!(\$.+$|…))`), so they compile with `fancy-regex`, which has it.

use fancy_regex::Regex;

use super::errors::Refusal;
use crate::proto::kurrentdb::event_store::client::streams::read_req::options::{
    filter_options, FilterOptions,
};
use crate::store::RecordedEvent;

/// Longest regular expression accepted.
const MAX_REGEX_LEN: usize = 4096;
/// Most prefixes accepted.
const MAX_PREFIXES: usize = 1024;
/// How many events KurrentDB's checkpoint window counts by default (`max` 32).
const DEFAULT_WINDOW: u32 = 32;

/// What a filter matches.
enum Matcher {
    Prefixes(Vec<String>),
    Regex(Box<Regex>),
}

/// Which property a filter looks at.
#[derive(Clone, Copy)]
enum Target {
    Stream,
    EventType,
}

/// A compiled filter, with the checkpoint interval of a filtered subscription.
pub struct Filter {
    target: Target,
    matcher: Matcher,
    /// Events read (matching or not) between checkpoints of a subscription.
    pub checkpoint_interval: u64,
}

impl Filter {
    /// Compiles the request's filter; invalid expressions are refused, naming the field.
    pub fn compile(options: &FilterOptions) -> Result<Self, Refusal> {
        let (target, expression) = match &options.filter {
            Some(filter_options::Filter::StreamIdentifier(e)) => (Target::Stream, e),
            Some(filter_options::Filter::EventType(e)) => (Target::EventType, e),
            None => {
                return Err(Refusal::BadRequest(
                    "invalid filter: name `stream_identifier` or `event_type`".into(),
                ))
            }
        };
        let matcher = if !expression.regex.is_empty() {
            if expression.regex.len() > MAX_REGEX_LEN {
                return Err(Refusal::BadRequest(format!(
                    "invalid filter regex: longer than {MAX_REGEX_LEN} characters"
                )));
            }
            let regex = Regex::new(&expression.regex).map_err(|e| {
                Refusal::BadRequest(format!("invalid filter regex {:?}: {e}", expression.regex))
            })?;
            Matcher::Regex(Box::new(regex))
        } else if expression.prefix.len() > MAX_PREFIXES {
            return Err(Refusal::BadRequest(format!(
                "invalid filter: more than {MAX_PREFIXES} prefixes"
            )));
        } else {
            Matcher::Prefixes(expression.prefix.clone())
        };
        let window = match options.window {
            Some(filter_options::Window::Max(max)) if max > 0 => max,
            _ => DEFAULT_WINDOW,
        };
        let multiplier = options.checkpoint_interval_multiplier.max(1);
        Ok(Self {
            target,
            matcher,
            checkpoint_interval: u64::from(window) * u64::from(multiplier),
        })
    }

    /// Whether the filter lets `event` through. A regex that fails at run time (backtracking
    /// limit) lets nothing through, rather than failing the read.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        let subject = match self.target {
            Target::Stream => event.stream.as_str(),
            Target::EventType => event.event_type.as_str(),
        };
        match &self.matcher {
            Matcher::Prefixes(prefixes) => prefixes.iter().any(|p| subject.starts_with(p.as_str())),
            Matcher::Regex(regex) => regex.is_match(subject).unwrap_or(false),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::proto::kurrentdb::event_store::client::streams::read_req::options::filter_options::Expression;

    /// A foreign event of `event_type` in `stream` (the port's modules' tests share it).
    pub(in crate::kurrentdb) fn event(stream: &str, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            stream: stream.into(),
            revision: 0,
            position: 1,
            id: uuid::Uuid::new_v4(),
            event_type: event_type.into(),
            payload: Vec::new(),
            metadata: crate::store::EventMetadata::Foreign {
                content_type: crate::store::ContentType::Json,
                bytes: Vec::new(),
            },
            recorded_at: chrono::Utc::now(),
        }
    }

    fn on_type(regex: &str, prefix: &[&str]) -> Result<Filter, Refusal> {
        Filter::compile(&FilterOptions {
            filter: Some(filter_options::Filter::EventType(Expression {
                regex: regex.into(),
                prefix: prefix.iter().map(|p| (*p).into()).collect(),
            })),
            window: Some(filter_options::Window::Max(30)),
            checkpoint_interval_multiplier: 5,
        })
    }

    #[test]
    fn the_python_clients_negative_lookahead_excludes_system_events() {
        let filter = on_type(r"^(?!(\$.+$|PersistentConfig\d+$|Result$))", &[]).unwrap();
        assert!(filter.matches(&event("orders-1", "OrderCreated")));
        assert!(!filter.matches(&event("$$orders-1", "$metadata")));
        assert!(!filter.matches(&event("x", "PersistentConfig1")));
        assert_eq!(filter.checkpoint_interval, 150);
    }

    #[test]
    fn prefixes_match_the_start_and_invalid_regexes_are_refused() {
        let filter = on_type("", &["Order", "Invoice"]).unwrap();
        assert!(filter.matches(&event("a", "OrderCreated")));
        assert!(!filter.matches(&event("a", "Shipped")));
        let refused = on_type("(unclosed", &[]).err().unwrap();
        assert!(matches!(refused, Refusal::BadRequest(m) if m.contains("(unclosed")));
    }
}
