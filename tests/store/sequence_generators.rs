//! Conformance suite for the sequence generators, written once and run against every backend.
//!
//! SQLite runs in a temporary directory. PostgreSQL (`LEDGER_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) gets a fresh database per test, dropped
//! afterwards. Redis (`LEDGER_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`) gets a fresh
//! key prefix per test, deleted afterwards. An unreachable server skips its tests with a loud
//! message, except under `CI=true`, where it fails them.

use crate::support::ci;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ledger::sequence::{
    connect, InitializeMode, SequenceError, SequenceGenerator, SequenceName, MAX_BLOCK, MAX_VALUE,
};

const CT: SequenceName = SequenceName::ContributionTracking;

/// A backend under test: a URL to (re)connect to, and whatever cleans it up when dropped.
struct Backend {
    url: String,
    _cleanup: Option<Cleanup>,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    PostgresDatabase { admin_url: String, database: String },
    RedisPrefix { url: String, prefix: String },
}

impl Backend {
    /// A fresh generator on this backend, as a restarted process would get it.
    async fn connect(&self) -> Arc<dyn SequenceGenerator> {
        connect(&self.url)
            .await
            .expect("connect to the sequence backend")
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Dir(_) => {}
            Cleanup::PostgresDatabase {
                admin_url,
                database,
            } => {
                let (admin_url, name) = (admin_url.clone(), database.clone());
                // Drop runs outside any async context we could borrow: use a runtime of its own.
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(async {
                        let pool = sqlx::PgPool::connect(&admin_url).await?;
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&pool)
                            .await?;
                        pool.close().await;
                        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("warning: could not drop test database {database}");
                }
            }
            Cleanup::RedisPrefix { url, prefix } => {
                let deleted = redis::Client::open(url.as_str()).and_then(|c| {
                    let mut conn = c.get_connection()?;
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}*"))
                        .query(&mut conn)?;
                    if !keys.is_empty() {
                        redis::cmd("DEL").arg(keys).query::<()>(&mut conn)?;
                    }
                    Ok(())
                });
                if deleted.is_err() {
                    eprintln!("warning: could not delete redis keys {prefix}*");
                }
            }
        }
    }
}

fn unique_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Skips loudly, or fails under `CI=true`.
fn unreachable(what: &str, url: &str, error: &dyn std::fmt::Display) -> Option<Backend> {
    let message = format!(
        "SKIPPED: {what} not reachable at {}: {error}",
        redact_password(url)
    );
    ci::skip_or_fail(&message);
    None
}

/// The URL with any password replaced, so that skip messages never print a secret.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

async fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("sequences.db").display());
    Some(Backend {
        url,
        _cleanup: Some(Cleanup::Dir(dir)),
    })
}

async fn postgres() -> Option<Backend> {
    let admin_url = std::env::var("LEDGER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let admin =
        match tokio::time::timeout(Duration::from_secs(5), sqlx::PgPool::connect(&admin_url)).await
        {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => return unreachable("PostgreSQL", &admin_url, &e),
            Err(e) => return unreachable("PostgreSQL", &admin_url, &e),
        };
    let database = format!("ledger_seq_test_{}", unique_suffix());
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&admin)
        .await
        .expect("create the test database");
    admin.close().await;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url.as_str(), String::new()),
    };
    let server = base
        .rsplit_once('/')
        .map(|(s, _)| s)
        .filter(|s| !s.ends_with('/'))
        .unwrap_or(base);
    Some(Backend {
        url: format!("{server}/{database}{query}"),
        _cleanup: Some(Cleanup::PostgresDatabase {
            admin_url,
            database,
        }),
    })
}

async fn redis() -> Option<Backend> {
    let url = std::env::var("LEDGER_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let reachable = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(5), reachable).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return unreachable("Redis", &url, &e),
        Err(e) => return unreachable("Redis", &url, &e),
    }
    let prefix = format!("ledger_test_{}_", unique_suffix());
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(Backend {
        url: format!("{url}{separator}key_prefix={prefix}"),
        _cleanup: Some(Cleanup::RedisPrefix { url, prefix }),
    })
}

/// The contract, one function per rule, each given a fresh backend.
mod checks {
    use super::*;

    pub async fn fresh_sequences_start_at_one_and_count_up(b: &Backend) {
        let seq = b.connect().await;
        assert_eq!(seq.current(CT).await.unwrap(), None);
        for expected in 1..=3 {
            assert_eq!(seq.next_id(CT).await.unwrap(), expected);
        }
        assert_eq!(seq.current(CT).await.unwrap(), Some(3));
        // Sequences are independent of each other.
        assert_eq!(seq.current(SequenceName::Donation).await.unwrap(), None);
        assert_eq!(seq.next_id(SequenceName::Donation).await.unwrap(), 1);
        assert_eq!(seq.next_id(SequenceName::Payment).await.unwrap(), 1);
        assert_eq!(seq.current(CT).await.unwrap(), Some(3));
    }

    pub async fn blocks_are_contiguous_disjoint_and_follow_single_ids(b: &Backend) {
        let seq = b.connect().await;
        assert_eq!(seq.next_id(CT).await.unwrap(), 1);
        assert_eq!(seq.next_block(CT, 10).await.unwrap(), 2..=11);
        assert_eq!(seq.next_block(CT, 1).await.unwrap(), 12..=12);
        assert_eq!(seq.next_id(CT).await.unwrap(), 13);
        let big = seq.next_block(CT, MAX_BLOCK).await.unwrap();
        assert_eq!(big, 14..=(13 + MAX_BLOCK));
        assert_eq!(seq.current(CT).await.unwrap(), Some(13 + MAX_BLOCK));
    }

    pub async fn concurrent_callers_never_get_the_same_id(b: &Backend) {
        // Two generators on one backend stand for two processes.
        let generators = [b.connect().await, b.connect().await];
        let mut tasks = Vec::new();
        for task in 0..64usize {
            let seq = generators[task % 2].clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::with_capacity(200);
                let mut tokens = Vec::new();
                while ids.len() < 200 {
                    match (task + ids.len()) % 3 {
                        0 => ids.push(seq.next_id(CT).await.unwrap()),
                        1 => {
                            let a = seq.allocate(CT).await.unwrap();
                            ids.push(a.id);
                            tokens.push(a.token);
                        }
                        _ => {
                            let count = (1 + task as u64 % 7).min(200 - ids.len() as u64);
                            let block = seq.next_block(CT, count).await.unwrap();
                            assert_eq!(block.end() - block.start() + 1, count);
                            ids.extend(block);
                        }
                    }
                }
                (ids, tokens)
            }));
        }
        let mut seen = HashSet::new();
        let mut tokens = HashSet::new();
        for task in tasks {
            let (ids, task_tokens) = task.await.unwrap();
            for id in ids {
                assert!(id >= 1);
                assert!(seen.insert(id), "id {id} was handed out twice");
            }
            for token in task_tokens {
                assert!(tokens.insert(token), "an allocation token repeated");
            }
        }
        assert_eq!(seen.len(), 64 * 200);
        let current = generators[0].current(CT).await.unwrap().unwrap();
        assert!(current >= *seen.iter().max().unwrap());
    }

    pub async fn reconnecting_never_hands_out_an_id_again(b: &Backend) {
        let mut seen = HashSet::new();
        let mut last_before = 0;
        for round in 0..3 {
            let seq = b.connect().await;
            let current = seq.current(CT).await.unwrap();
            assert_eq!(current, (round > 0).then_some(last_before));
            let first = seq.next_id(CT).await.unwrap();
            assert!(
                first > last_before,
                "{first} after restart, was at {last_before}"
            );
            assert!(seen.insert(first));
            for id in seq.next_block(CT, 50).await.unwrap() {
                assert!(seen.insert(id), "id {id} repeated after a restart");
            }
            last_before = seq.current(CT).await.unwrap().unwrap();
            drop(seq);
        }
        assert_eq!(seen.len(), 3 * 51);
    }

    pub async fn initialize_makes_the_next_id_start_plus_one(b: &Backend) {
        let seq = b.connect().await;
        // SmashPig's SequenceGeneratorTest: init 5, next is 6; init 0, next is 1 then 2.
        seq.initialize(CT, 5, InitializeMode::ForwardOnly)
            .await
            .unwrap();
        assert_eq!(seq.current(CT).await.unwrap(), Some(5));
        assert_eq!(seq.next_id(CT).await.unwrap(), 6);
        seq.initialize(SequenceName::Donation, 0, InitializeMode::ForwardOnly)
            .await
            .unwrap();
        assert_eq!(seq.next_id(SequenceName::Donation).await.unwrap(), 1);
        assert_eq!(seq.next_id(SequenceName::Donation).await.unwrap(), 2);
        // Forwards, then to the current value itself (a no-op), then a block.
        seq.initialize(CT, 87_654_321, InitializeMode::ForwardOnly)
            .await
            .unwrap();
        seq.initialize(CT, 87_654_321, InitializeMode::ForwardOnly)
            .await
            .unwrap();
        assert_eq!(
            seq.next_block(CT, 3).await.unwrap(),
            87_654_322..=87_654_324
        );
        // It survives a restart.
        drop(seq);
        assert_eq!(b.connect().await.next_id(CT).await.unwrap(), 87_654_325);
    }

    pub async fn initialize_refuses_to_move_backwards_without_force(b: &Backend) {
        let seq = b.connect().await;
        seq.next_block(CT, 10).await.unwrap();
        let err = seq
            .initialize(CT, 4, InitializeMode::ForwardOnly)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                SequenceError::Backwards {
                    current: 10,
                    requested: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("backwards"), "{err}");
        assert_eq!(seq.next_id(CT).await.unwrap(), 11);
        // With force it moves, and the next allocation of a reused id has a new token.
        let before = seq.allocate(CT).await.unwrap();
        seq.initialize(CT, before.id - 1, InitializeMode::AllowBackwards)
            .await
            .unwrap();
        let again = seq.allocate(CT).await.unwrap();
        assert_eq!(again.id, before.id);
        assert_ne!(again.token, before.token);
    }

    pub async fn invalid_counts_and_starts_leave_the_sequence_alone(b: &Backend) {
        let seq = b.connect().await;
        for count in [0, MAX_BLOCK + 1, u64::MAX] {
            let err = seq.next_block(CT, count).await.unwrap_err();
            assert!(matches!(err, SequenceError::InvalidCount { .. }), "{err:?}");
            assert!(err.to_string().contains("count"), "{err}");
        }
        let err = seq
            .initialize(CT, MAX_VALUE + 1, InitializeMode::AllowBackwards)
            .await
            .unwrap_err();
        assert!(matches!(err, SequenceError::InvalidStart { .. }), "{err:?}");
        assert_eq!(seq.current(CT).await.unwrap(), None);
        assert_eq!(seq.next_id(CT).await.unwrap(), 1);
    }

    pub async fn an_exhausted_sequence_refuses_instead_of_wrapping(b: &Backend) {
        let seq = b.connect().await;
        seq.initialize(CT, MAX_VALUE - 5, InitializeMode::ForwardOnly)
            .await
            .unwrap();
        assert_eq!(
            seq.next_block(CT, 5).await.unwrap(),
            (MAX_VALUE - 4)..=MAX_VALUE
        );
        assert!(seq.next_id(CT).await.is_err());
        assert!(seq.next_block(CT, 2).await.is_err());
        assert_eq!(seq.current(CT).await.unwrap(), Some(MAX_VALUE));
    }

    pub async fn allocations_carry_distinct_random_tokens(b: &Backend) {
        let seq = b.connect().await;
        let a = seq.allocate(CT).await.unwrap();
        let c = seq.allocate(CT).await.unwrap();
        assert_eq!((a.id, c.id), (1, 2));
        assert_ne!(a.token, c.token);
        for token in [&a.token, &c.token] {
            assert_eq!(token.len(), 32);
            assert!(token
                .chars()
                .all(|ch| ch.is_ascii_digit() || ('a'..='f').contains(&ch)));
        }
    }
}

/// Instantiates every check of [`checks`] as a test against one backend.
macro_rules! conformance {
    ($module:ident, $backend:ident) => {
        conformance!($module, $backend;
            fresh_sequences_start_at_one_and_count_up,
            blocks_are_contiguous_disjoint_and_follow_single_ids,
            concurrent_callers_never_get_the_same_id,
            reconnecting_never_hands_out_an_id_again,
            initialize_makes_the_next_id_start_plus_one,
            initialize_refuses_to_move_backwards_without_force,
            invalid_counts_and_starts_leave_the_sequence_alone,
            an_exhausted_sequence_refuses_instead_of_wrapping,
            allocations_carry_distinct_random_tokens,
        );
    };
    ($module:ident, $backend:ident; $($check:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    if let Some(backend) = super::$backend().await {
                        super::checks::$check(&backend).await;
                    }
                }
            )*
        }
    };
}

conformance!(on_sqlite, sqlite);
conformance!(on_postgres, postgres);
conformance!(on_redis, redis);

#[test]
fn unknown_and_malformed_sequence_names_are_refused_with_field_and_rule() {
    for (bad, rule) in [
        ("", "1 to 64 characters"),
        ("Contribution-Tracking", "lowercase letters, digits"),
        ("contribution tracking", "lowercase letters, digits"),
        (
            "refund",
            "must be one of contribution-tracking, donation, payment, membership, address-change, subscription",
        ),
    ] {
        let err = bad.parse::<SequenceName>().unwrap_err();
        assert!(
            matches!(err, SequenceError::InvalidName { field: "name", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(rule), "{err}");
    }
    assert_eq!("contribution-tracking".parse::<SequenceName>().unwrap(), CT);
}

#[tokio::test]
async fn connect_refuses_unknown_schemes_and_in_memory_sqlite() {
    for url in [
        "mysql://localhost/x",
        "sqlite::memory:",
        "sqlite://:memory:",
        "nonsense",
    ] {
        let err = match connect(url).await {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => e,
        };
        assert!(
            matches!(err, SequenceError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
    }
}

#[tokio::test]
async fn redis_keys_are_named_like_smashpigs() {
    let Some(b) = redis().await else { return };
    let seq = b.connect().await;
    seq.next_block(CT, 7).await.unwrap();
    let Some(Cleanup::RedisPrefix { url, prefix }) = &b._cleanup else {
        unreachable!()
    };
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let value: String = redis::cmd("GET")
        .arg(format!("{prefix}sequence_contribution-tracking"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, "7");
}

#[tokio::test]
async fn postgres_sequences_are_real_sequences() {
    let Some(b) = postgres().await else { return };
    let seq = b.connect().await;
    seq.next_block(CT, 7).await.unwrap();
    let pool = sqlx::PgPool::connect(&b.url).await.unwrap();
    let last: i64 = sqlx::query_scalar("SELECT last_value FROM ledger_seq_contribution_tracking")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(last, 7);
    pool.close().await;
}
