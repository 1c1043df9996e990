//! Named sequence generators: the interface, name and count validation, and `connect(url)`.
//!
//! A sequence generator hands out positive integer ids per name (`contribution-tracking`,
//! `donation`, `payment`) and never hands out the same number twice, across restarts and
//! concurrent callers. Ids are not gap-free: a crash or a lost reply burns numbers. The
//! semantics follow SmashPig's `ISequenceGenerator`: a fresh sequence starts at 1, and after
//! `initialize(name, start)` the next id handed out is `start + 1`.
//!
//! Backends, chosen by URL scheme in [`connect`]:
//! * `sqlite://path` — the embedded default, one durable SQLite file ([`sqlite`]);
//! * `postgres://…` — one PostgreSQL `SEQUENCE` per name ([`postgres`]);
//! * `redis://…` — `INCR` on `sequence_<name>`, SmashPig's key naming ([`redis`]).

pub mod postgres;
pub mod redis;
pub mod sqlite;

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

/// Largest block [`SequenceGenerator::next_block`] hands out in one call.
pub const MAX_BLOCK: u64 = 10_000;

/// Largest value a sequence can reach: every backend stores a signed 64-bit integer.
pub const MAX_VALUE: u64 = i64::MAX as u64;

/// Longest sequence name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// A sequence the ledger knows. The set is fixed; a new sequence is a code change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SequenceName {
    /// Contribution-tracking ids (SmashPig's `contribution-tracking`).
    ContributionTracking,
    /// Donation ids.
    Donation,
    /// Payment ids.
    Payment,
    /// Membership application ids.
    Membership,
    /// Address change ids.
    AddressChange,
    /// Subscription ids.
    Subscription,
}

impl SequenceName {
    /// Every known sequence.
    pub const ALL: [SequenceName; 6] = [
        SequenceName::ContributionTracking,
        SequenceName::Donation,
        SequenceName::Payment,
        SequenceName::Membership,
        SequenceName::AddressChange,
        SequenceName::Subscription,
    ];

    /// The stable name, as stored by every backend (e.g. in the Redis key).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContributionTracking => "contribution-tracking",
            Self::Donation => "donation",
            Self::Payment => "payment",
            Self::Membership => "membership",
            Self::AddressChange => "address-change",
            Self::Subscription => "subscription",
        }
    }

    /// Validates and resolves a name: first its form, then membership in the known set.
    pub fn parse(name: &str) -> Result<Self, SequenceError> {
        let invalid = |rule: String| SequenceError::InvalidName {
            field: "name",
            name: crate::telemetry::excerpt(name),
            rule,
        };
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(invalid(format!(
                "must be 1 to {MAX_NAME_LEN} characters long, got {}",
                name.len()
            )));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(invalid(format!(
                "may contain only lowercase letters, digits, `-` and `_`, found {c:?}"
            )));
        }
        Self::ALL
            .into_iter()
            .find(|known| known.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|n| n.as_str()).collect();
                invalid(format!("must be one of {}", known.join(", ")))
            })
    }
}

impl fmt::Display for SequenceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SequenceName {
    type Err = SequenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether [`SequenceGenerator::initialize`] may move a sequence backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitializeMode {
    /// Refuse to set a sequence below the last id it handed out (the safe default).
    ForwardOnly,
    /// Set it anyway. Ids between the new start and the old value will be handed out again:
    /// only for repairing a sequence that is known to be ahead of reality.
    AllowBackwards,
}

/// An id together with a token unique to this allocation.
///
/// Two allocations of the same id (a sequence fault, e.g. after a Redis failover lost the
/// last `INCR`s) carry different tokens, so a later layer can tell tracking messages from two
/// allocations apart from legitimate repeats of one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The id handed out.
    pub id: u64,
    /// A random 128-bit identifier as 32 lowercase hex digits. Not stored by the generator.
    pub token: String,
}

/// Errors of the sequence generators.
#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    /// The sequence name is malformed or not a known sequence.
    #[error("invalid {field} {name:?}: {rule}")]
    InvalidName {
        /// The offending field (`name`).
        field: &'static str,
        /// The name given, cut to [`crate::telemetry::excerpt`] (it is echoed to the client).
        name: String,
        /// The rule it broke.
        rule: String,
    },
    /// A block size outside `1..=MAX_BLOCK`.
    #[error("invalid count {count}: must be between 1 and {MAX_BLOCK}")]
    InvalidCount {
        /// The count given.
        count: u64,
    },
    /// A start value the backends cannot store.
    #[error("invalid start {start}: must be at most {MAX_VALUE}")]
    InvalidStart {
        /// The start given.
        start: u64,
    },
    /// `initialize` would move the sequence below an id it already handed out.
    #[error("refusing to move sequence `{name}` backwards from {current} to {requested}: ids {requested}+1..={current} would be handed out twice")]
    Backwards {
        /// The sequence.
        name: SequenceName,
        /// The last id handed out.
        current: u64,
        /// The start requested.
        requested: u64,
    },
    /// The sequence cannot hand out `count` more ids without passing [`MAX_VALUE`].
    #[error("sequence `{name}` is exhausted: {count} more ids would pass {MAX_VALUE}")]
    Exhausted {
        /// The sequence.
        name: SequenceName,
        /// How many ids were asked for.
        count: u64,
    },
    /// The backend holds a value that is not a valid sequence value.
    #[error("sequence `{name}` holds an invalid value: {detail}")]
    Corrupt {
        /// The sequence.
        name: SequenceName,
        /// What was found.
        detail: String,
    },
    /// The backend URL is not usable. Never contains the URL itself (it may hold a password).
    #[error("invalid sequence generator url: {rule}")]
    InvalidUrl {
        /// The rule it broke.
        rule: String,
    },
    /// The backend failed (connection, I/O, server error).
    #[error("sequence backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for SequenceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Backend(Box::new(e))
    }
}

impl From<::redis::RedisError> for SequenceError {
    fn from(e: ::redis::RedisError) -> Self {
        Self::Backend(Box::new(e))
    }
}

/// A named sequence generator. Object safe; share it as `Arc<dyn SequenceGenerator>`.
#[async_trait]
pub trait SequenceGenerator: Send + Sync + 'static {
    /// Hands out the next id of `name` (1 for a fresh sequence).
    async fn next_id(&self, name: SequenceName) -> Result<u64, SequenceError> {
        Ok(*self.next_block(name, 1).await?.start())
    }

    /// Hands out `count` (1..=[`MAX_BLOCK`]) contiguous ids atomically: no other caller gets
    /// any id inside the returned range.
    async fn next_block(
        &self,
        name: SequenceName,
        count: u64,
    ) -> Result<RangeInclusive<u64>, SequenceError>;

    /// Sets the sequence so that the next id handed out is `start + 1` (SmashPig's
    /// `initializeSequence`). With [`InitializeMode::ForwardOnly`], refuses with
    /// [`SequenceError::Backwards`] when `start` is below the last id handed out.
    async fn initialize(
        &self,
        name: SequenceName,
        start: u64,
        mode: InitializeMode,
    ) -> Result<(), SequenceError>;

    /// The last id handed out (or set by `initialize`), `None` for a fresh sequence.
    async fn current(&self, name: SequenceName) -> Result<Option<u64>, SequenceError>;

    /// Hands out the next id with a fresh allocation token.
    async fn allocate(&self, name: SequenceName) -> Result<Allocation, SequenceError> {
        let id = self.next_id(name).await?;
        Ok(Allocation {
            id,
            token: new_token(),
        })
    }
}

/// The URL schemes [`connect`] opens.
const SCHEMES: &[&str] = &["sqlite", "postgres", "postgresql", "redis", "rediss"];

/// The scheme of a URL: what comes before the first `:`.
fn scheme(url: &str) -> &str {
    url.split_once(':').map(|(s, _)| s).unwrap_or_default()
}

/// Whether [`connect`] has a backend for `url`'s scheme (start-up checks refuse anything else
/// by name).
pub fn accepts(url: &str) -> bool {
    SCHEMES.contains(&scheme(url))
}

/// Opens the generator a URL names: `sqlite://path`, `postgres://…` (or `postgresql://…`),
/// `redis://…?key_prefix=…`. See each backend for its options.
pub async fn connect(url: &str) -> Result<Arc<dyn SequenceGenerator>, SequenceError> {
    let scheme = scheme(url);
    let generator: Arc<dyn SequenceGenerator> = match scheme {
        "sqlite" => Arc::new(sqlite::SqliteSequenceGenerator::connect(url).await?),
        "postgres" | "postgresql" => {
            Arc::new(postgres::PostgresSequenceGenerator::connect(url).await?)
        }
        "redis" | "rediss" => Arc::new(redis::RedisSequenceGenerator::connect(url).await?),
        _ => {
            return Err(SequenceError::InvalidUrl {
                rule: format!("scheme must be one of {}", SCHEMES.join(", ")),
            })
        }
    };
    tracing::info!(backend = scheme, "sequence generator connected");
    Ok(generator)
}

/// Checks a block size.
pub(crate) fn check_count(count: u64) -> Result<(), SequenceError> {
    if (1..=MAX_BLOCK).contains(&count) {
        Ok(())
    } else {
        Err(SequenceError::InvalidCount { count })
    }
}

/// Checks an initialisation start value.
pub(crate) fn check_start(start: u64) -> Result<(), SequenceError> {
    if start <= MAX_VALUE {
        Ok(())
    } else {
        Err(SequenceError::InvalidStart { start })
    }
}

/// The block ending at `last` (the backend's new value) of `count` ids.
pub(crate) fn block_ending_at(last: u64, count: u64) -> RangeInclusive<u64> {
    (last + 1 - count)..=last
}

/// A fresh random 128-bit allocation token, as 32 lowercase hex digits.
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_round_trip_through_parse() {
        for name in SequenceName::ALL {
            assert_eq!(SequenceName::parse(name.as_str()).unwrap(), name);
        }
    }

    #[test]
    fn malformed_names_name_the_field_and_the_rule() {
        for (bad, rule) in [
            ("", "1 to 64"),
            (&"a".repeat(65), "1 to 64"),
            ("Donation", "lowercase"),
            ("don ation", "lowercase"),
            ("donation!", "lowercase"),
        ] {
            let err = SequenceName::parse(bad).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("invalid name"), "{text}");
            assert!(text.contains(rule), "{text}");
        }
    }

    #[test]
    fn well_formed_unknown_names_list_the_known_ones() {
        let text = SequenceName::parse("contribution_tracking")
            .unwrap_err()
            .to_string();
        assert!(text.contains(
            "must be one of contribution-tracking, donation, payment, membership, address-change, subscription"
        ));
    }

    #[test]
    fn counts_outside_one_to_ten_thousand_are_refused() {
        assert!(check_count(0).is_err());
        assert!(check_count(1).is_ok());
        assert!(check_count(MAX_BLOCK).is_ok());
        assert!(check_count(MAX_BLOCK + 1).is_err());
    }

    #[test]
    fn tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
