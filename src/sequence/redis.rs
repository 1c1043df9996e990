//! The Redis sequence generator: `INCR`/`INCRBY` on `sequence_<name>`, as SmashPig does.
//!
//! The key naming is SmashPig's `PredisSequenceGenerator` (`sequence_contribution-tracking`),
//! so the ledger and SmashPig can share one counter during a migration. `INCRBY` is atomic in
//! Redis, so a block is contiguous and concurrent callers never overlap. `initialize` is a
//! Lua script, so the backwards check and the `SET` run as one atomic step.
//!
//! Durability is Redis's: without `appendfsync always`, or after a failover to a replica
//! that had not received the last `INCR`s, the counter can go back and ids are handed out
//! again. That is why [`SequenceGenerator::allocate`] returns tokens, and why the counter
//! should be checked against the highest id in the log after a failover.

use std::ops::RangeInclusive;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::{
    block_ending_at, check_count, check_start, InitializeMode, SequenceError, SequenceGenerator,
    SequenceName,
};

/// URL query parameter naming a prefix for every key (test isolation); default empty.
pub const KEY_PREFIX_PARAM: &str = "key_prefix";

/// Sets the key to ARGV[1] unless ARGV[2] is "0" and the current value is larger. Returns
/// nil when it wrote, the current value when it refused. Values are compared as canonical
/// decimal strings (length, then text) because Lua numbers are doubles and lose precision
/// above 2^53.
const INITIALIZE_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if current and ARGV[2] == '0' then
  if not (current == '0' or string.match(current, '^[1-9][0-9]*$')) then
    return redis.error_reply('sequence value is not a non-negative integer')
  end
  local start = ARGV[1]
  if #current > #start or (#current == #start and current > start) then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return false
"#;

/// The Redis sequence generator. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisSequenceGenerator {
    conn: ConnectionManager,
    key_prefix: String,
    initialize_script: Script,
}

impl RedisSequenceGenerator {
    /// Connects from a `redis://host:port/db` URL. An optional `key_prefix=…` query parameter
    /// is removed from the URL and put in front of every key.
    pub async fn connect(url: &str) -> Result<Self, SequenceError> {
        let (url, key_prefix) = split_key_prefix(url)?;
        Self::connect_with_prefix(&url, &key_prefix).await
    }

    /// Connects and puts `key_prefix` in front of every key (`<prefix>sequence_<name>`).
    pub async fn connect_with_prefix(url: &str, key_prefix: &str) -> Result<Self, SequenceError> {
        let client = redis::Client::open(url).map_err(|_| SequenceError::InvalidUrl {
            rule: "must be a valid `redis://host:port/db` URL".to_owned(),
        })?;
        // A command that times out may still have run: that burns ids, never repeats them.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(3);
        let conn = client.get_connection_manager_with_config(config).await?;
        Ok(Self {
            conn,
            key_prefix: key_prefix.to_owned(),
            initialize_script: Script::new(INITIALIZE_SCRIPT),
        })
    }

    /// The key of a sequence: `<prefix>sequence_<name>`.
    pub fn key(&self, name: SequenceName) -> String {
        format!("{}sequence_{}", self.key_prefix, name.as_str())
    }
}

/// Splits `key_prefix=…` off a Redis URL's query string.
fn split_key_prefix(url: &str) -> Result<(String, String), SequenceError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), String::new()));
    };
    let mut prefix = String::new();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((KEY_PREFIX_PARAM, value)) => prefix = value.to_owned(),
            _ => rest.push(pair),
        }
    }
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
    {
        return Err(SequenceError::InvalidUrl {
            rule: format!(
                "`{KEY_PREFIX_PARAM}` may contain only ASCII letters, digits, `-`, `_`, `:` and `.`"
            ),
        });
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, prefix))
}

/// Converts a value Redis returned.
fn stored(name: SequenceName, value: i64) -> Result<u64, SequenceError> {
    u64::try_from(value).map_err(|_| SequenceError::Corrupt {
        name,
        detail: format!("negative value {value}"),
    })
}

#[async_trait]
impl SequenceGenerator for RedisSequenceGenerator {
    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn next_id(&self, name: SequenceName) -> Result<u64, SequenceError> {
        // Plain INCR, byte for byte what SmashPig sends.
        let last: i64 = redis::cmd("INCR")
            .arg(self.key(name))
            .query_async(&mut self.conn.clone())
            .await?;
        stored(name, last)
    }

    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn next_block(
        &self,
        name: SequenceName,
        count: u64,
    ) -> Result<RangeInclusive<u64>, SequenceError> {
        check_count(count)?;
        // Redis refuses an INCRBY that would overflow i64, so the sum cannot wrap.
        let last: i64 = redis::cmd("INCRBY")
            .arg(self.key(name))
            .arg(count)
            .query_async(&mut self.conn.clone())
            .await?;
        let last = stored(name, last)?;
        if last < count {
            return Err(SequenceError::Corrupt {
                name,
                detail: format!("value {last} after adding {count}"),
            });
        }
        Ok(block_ending_at(last, count))
    }

    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn initialize(
        &self,
        name: SequenceName,
        start: u64,
        mode: InitializeMode,
    ) -> Result<(), SequenceError> {
        check_start(start)?;
        let force = if mode == InitializeMode::AllowBackwards {
            "1"
        } else {
            "0"
        };
        let refused: Option<String> = self
            .initialize_script
            .key(self.key(name))
            .arg(start.to_string())
            .arg(force)
            .invoke_async(&mut self.conn.clone())
            .await?;
        match refused {
            None => {
                tracing::info!(sequence = %name, start, ?mode, "sequence initialised");
                Ok(())
            }
            Some(current) => Err(SequenceError::Backwards {
                name,
                current: current.parse().map_err(|_| SequenceError::Corrupt {
                    name,
                    detail: format!("value {current:?}"),
                })?,
                requested: start,
            }),
        }
    }

    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn current(&self, name: SequenceName) -> Result<Option<u64>, SequenceError> {
        let value: Option<String> = redis::cmd("GET")
            .arg(self.key(name))
            .query_async(&mut self.conn.clone())
            .await?;
        value
            .map(|v| {
                v.parse::<u64>().map_err(|_| SequenceError::Corrupt {
                    name,
                    detail: format!("value {v:?}"),
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_prefix_is_taken_out_of_the_url() {
        let (url, prefix) =
            split_key_prefix("redis://127.0.0.1:6379/0?key_prefix=t1_&protocol=resp3").unwrap();
        assert_eq!(url, "redis://127.0.0.1:6379/0?protocol=resp3");
        assert_eq!(prefix, "t1_");
        let (url, prefix) = split_key_prefix("redis://h/0?key_prefix=a").unwrap();
        assert_eq!((url.as_str(), prefix.as_str()), ("redis://h/0", "a"));
    }

    #[test]
    fn urls_without_a_prefix_keep_smashpig_keys() {
        let (url, prefix) = split_key_prefix("redis://127.0.0.1:6379").unwrap();
        assert_eq!(
            (url.as_str(), prefix.as_str()),
            ("redis://127.0.0.1:6379", "")
        );
    }

    #[test]
    fn key_prefixes_with_odd_characters_are_refused() {
        assert!(split_key_prefix("redis://h?key_prefix=a%20b").is_err());
    }
}
