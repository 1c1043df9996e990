//! The projector under failure, on SQLite, PostgreSQL and MariaDB: a database outage mid catch-up, a
//! projector killed at random points, a rebuild from scratch, and concurrent writers while it
//! runs live. Each ends with exactly the rows of an undisturbed run. And the property under it
//! all: over generated histories that use every event type, a live projection with random
//! batch sizes, aborted batches and restarts equals a rebuild (random batch and cache sizes),
//! compared by `verify`.

use crate::projection_support;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::projection::{rebuild, Projector, ReadModel, TableDump};
use ledger::proto::events as ev;
use ledger::store::EventLog;
use projection_support::*;
use rand::{Rng, SeedableRng};
use sqlx::Connection;

read_model_conformance!(
    a_database_outage_mid_catch_up_ends_with_the_rows_of_an_uninterrupted_run,
    a_projector_killed_at_random_points_resumes_without_loss_or_duplicates,
    a_rebuild_from_scratch_produces_exactly_the_rows_of_the_incremental_build,
    concurrent_writers_while_projecting_live_project_every_event_exactly_once,
    live_projection_with_random_batches_aborts_and_restarts_equals_a_rebuild_over_every_event_type,
);

/// Projects the whole log into a separate read model with big batches: the reference rows.
async fn baseline(env: &Env) -> TableDump {
    let rm = env.other_read_model("baseline").await;
    Projector::with_config(env.log(), rm.clone(), config(1000))
        .run_once()
        .await
        .unwrap();
    let dump = rm.dump().await.unwrap();
    rm.close().await;
    dump
}

fn assert_same(actual: &TableDump, expected: &TableDump) {
    for (table, rows) in expected {
        assert_eq!(actual[table].len(), rows.len(), "row count of {table}");
        assert_eq!(&actual[table], rows, "rows of {table}");
    }
    assert!(
        expected["donation"].len() > 10,
        "the workload produced donations"
    );
}

async fn a_database_outage_mid_catch_up_ends_with_the_rows_of_an_uninterrupted_run(env: Env) {
    workload(&env, 1, 300, 7).await;
    let expected = baseline(&env).await;
    let rm = env.read_model().await;
    let projector = Projector::with_config(env.log(), rm.clone(), config(10));
    // Mid catch-up: a few batches in, most of the log still to go.
    for _ in 0..3 {
        projector.try_step().await.unwrap();
    }
    let at_outage = rm.checkpoint("readmodel").await.unwrap();
    let head = env.log.head_position().await.unwrap();
    assert!(at_outage.is_some() && at_outage < head);

    // The outage starts before the catch-up goes on and ends only once the projector has
    // felt it: no timing decides whether the two overlap.
    let deadline = Instant::now() + Duration::from_secs(60);
    let outcome = match env.db {
        // PostgreSQL: the test database refuses connections and loses the ones it has; back
        // once the projector has retried.
        Db::Postgres => {
            let name = env.pg.as_ref().unwrap().name.clone();
            let mut admin = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
            sqlx::query(&format!(
                "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
            ))
            .execute(&mut admin)
            .await
            .unwrap();
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&name)
            .execute(&mut admin)
            .await
            .unwrap();
            let run = {
                let projector = projector.clone();
                tokio::spawn(async move { projector.run_once().await })
            };
            while projector.stats().snapshot().retries_total == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the projector never met the outage"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sqlx::query(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
                .execute(&mut admin)
                .await
                .unwrap();
            let outcome = run.await.unwrap().unwrap();
            assert!(outcome.retries > 0, "the projector retried the outage");
            assert_eq!(projector.stats().snapshot().retries_total, outcome.retries);
            outcome
        }
        // MariaDB has no per-database switch to refuse connections: another session holds the
        // checkpoint row's lock, so the projector's batch waits inside the server, and every
        // connection to the test database but that session's is killed until the projector
        // has felt it and retried (reconnecting); then the lock goes.
        Db::Mariadb => {
            let mut blocker = sqlx::MySqlConnection::connect(&env.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
            let held: i64 = sqlx::query_scalar(
                "SELECT position FROM projector_checkpoint WHERE projector = 'readmodel' \
                 FOR UPDATE",
            )
            .fetch_one(&mut blocker)
            .await
            .unwrap();
            assert_eq!(Some(held as u64), at_outage);
            let blocker_id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
                .fetch_one(&mut blocker)
                .await
                .unwrap();
            let name = env.maria.as_ref().unwrap().name.clone();
            let mut admin = sqlx::MySqlConnection::connect(&support::mariadb::admin_url())
                .await
                .unwrap();
            let run = {
                let projector = projector.clone();
                tokio::spawn(async move { projector.run_once().await })
            };
            while projector.stats().snapshot().retries_total == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the projector never met the outage"
                );
                let others: Vec<i64> = sqlx::query_scalar(
                    "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST \
                     WHERE DB = ? AND ID <> ?",
                )
                .bind(&name)
                .bind(blocker_id)
                .fetch_all(&mut admin)
                .await
                .unwrap();
                for id in others {
                    // A connection may end by itself meanwhile: an unknown id is fine.
                    let _ = sqlx::query(&format!("KILL CONNECTION {id}"))
                        .execute(&mut admin)
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
            let outcome = run.await.unwrap().unwrap();
            assert!(outcome.retries > 0, "the projector retried the outage");
            outcome
        }
        // SQLite has no server to lose: another process holds the file's exclusive lock;
        // nothing is written while it does, everything after.
        Db::Sqlite => {
            let mut other = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut other)
                .await
                .unwrap();
            let run = {
                let projector = projector.clone();
                tokio::spawn(async move { projector.run_once().await })
            };
            tokio::time::sleep(Duration::from_millis(300)).await;
            let held: i64 = sqlx::query_scalar(
                "SELECT position FROM projector_checkpoint WHERE projector = 'readmodel'",
            )
            .fetch_one(&mut other)
            .await
            .unwrap();
            assert_eq!(
                Some(held as u64),
                at_outage,
                "nothing written under the lock"
            );
            sqlx::query("COMMIT").execute(&mut other).await.unwrap();
            run.await.unwrap().unwrap()
        }
    };
    assert_eq!(outcome.checkpoint, head);
    assert_same(&rm.dump().await.unwrap(), &expected);
}

async fn a_projector_killed_at_random_points_resumes_without_loss_or_duplicates(env: Env) {
    workload(&env, 1, 300, 11).await;
    let expected = baseline(&env).await;
    let rm = env.read_model().await;
    let head = env.log.head_position().await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut kills = 0;
    for _ in 0..60 {
        if rm.checkpoint("readmodel").await.unwrap() == head {
            break;
        }
        // A new projector with its own connections each time, as after a process restart.
        // An in-process abort is not a kill: a connection cut off mid-query goes back to its
        // pool through a clean-up that talks to the server without a time limit (and sqlx's
        // MySQL prepare does not record the reply it leaves unread), where a killed process
        // would simply have closed it. With one pool shared by every incarnation, such
        // leftovers once used up all its connections (`PoolTimedOut` on MariaDB in CI).
        let incarnation = ReadModel::connect(&env.url).await.unwrap();
        let projector = Projector::with_config(env.log(), incarnation, config(9));
        let task = tokio::spawn(async move { projector.run_once().await });
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1..20))).await;
        task.abort();
        match task.await {
            Err(_) => kills += 1,
            Ok(Err(e)) => panic!(
                "the projector failed: {e}: {:?}",
                std::error::Error::source(&e)
            ),
            Ok(Ok(_)) => {}
        }
    }
    assert!(
        kills > 3,
        "the projector was killed mid-run ({kills} times)"
    );
    Projector::with_config(env.log(), rm.clone(), config(9))
        .run_once()
        .await
        .unwrap();
    assert_same(&rm.dump().await.unwrap(), &expected);
}

async fn a_rebuild_from_scratch_produces_exactly_the_rows_of_the_incremental_build(env: Env) {
    let rm = env.read_model().await;
    let projector = Projector::with_config(env.log(), rm.clone(), config(7));
    let mut total = workload(&env, 1, 150, 5).await;
    // Memberships, address changes and subscriptions, and later changes to them.
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut others = OtherContexts::new(1);
    total += others.steps(&env, &mut rng, 150).await;
    projector.run_once().await.unwrap();
    total += workload(&env, 151, 150, 6).await;
    total += others.steps(&env, &mut rng, 150).await;
    // Later events for donations projected in the first run.
    for id in 1..=20u64 {
        env.append(
            &format!("deletion-{id}"),
            ev::DonationDeleted {
                reason: "admin".into(),
            },
        )
        .await;
    }
    total += 20;
    projector.run_once().await.unwrap();
    let incremental = rm.dump().await.unwrap();

    let report = rebuild(env.log(), &env.url, config(500)).await.unwrap();
    assert_eq!(report.events as usize, total);
    assert_eq!(report.checkpoint, env.log.head_position().await.unwrap());
    assert!(report.events_per_second > 0.0);
    // The connections that served before the switch now read the rebuilt tables.
    assert_same(&rm.dump().await.unwrap(), &incremental);
    let fresh = ReadModel::connect(&env.url).await.unwrap();
    assert_same(&fresh.dump().await.unwrap(), &incremental);
    // A row cache far smaller than the data: rows leave it and are loaded back many times
    // over, and the result is still exactly the incremental build.
    let tiny_cache = ledger::projection::ProjectorConfig {
        write_back_rows: 5,
        ..config(37)
    };
    rebuild(env.log(), &env.url, tiny_cache).await.unwrap();
    assert_same(&fresh.dump().await.unwrap(), &incremental);
    // And the live projector continues from the rebuilt checkpoint.
    workload(&env, 301, 10, 9).await;
    projector.run_once().await.unwrap();
    assert_eq!(
        rm.checkpoint("readmodel").await.unwrap(),
        env.log.head_position().await.unwrap()
    );
}

async fn concurrent_writers_while_projecting_live_project_every_event_exactly_once(env: Env) {
    let env = Arc::new(env);
    let rm = env.read_model().await;
    let projector = Arc::new(Projector::with_config(env.log(), rm.clone(), config(50)));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let live = {
        let projector = projector.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { projector.run_until_stopped(shutdown).await })
    };
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let env = env.clone();
            tokio::spawn(async move {
                for i in 0..40u64 {
                    let id = w * 1000 + i + 1;
                    create_donation(
                        &env,
                        id,
                        ["BEZ", "UEB", "MCP", "PPL", "SUB"][(i % 5) as usize],
                    )
                    .await;
                    if i % 3 == 0 {
                        env.append(
                            &format!("export-{id}"),
                            ev::DonationExported {
                                batch_id: "b".into(),
                                exported_at: None,
                            },
                        )
                        .await;
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let head = env.log.head_position().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while rm.checkpoint("readmodel").await.unwrap() != head {
        assert!(
            Instant::now() < deadline,
            "the live projector did not catch up in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    live.await.unwrap().unwrap();

    let positions: BTreeSet<u64> = env
        .log
        .read_all(0, 100_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for row in &rm.dump().await.unwrap()["donation_event"] {
        let position: u64 = row.split(" | ").nth(1).unwrap().parse().unwrap();
        *seen.entry(position).or_default() += 1;
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "a position was projected twice"
    );
    assert_eq!(
        seen.keys().copied().collect::<BTreeSet<_>>(),
        positions,
        "every position is present"
    );
    assert_eq!(rm.dump().await.unwrap()["donation"].len(), 320);
    assert_eq!(projector.stats().snapshot().lag_positions, 0);
}

/// Polls `step` at most `polls` times, letting its I/O progress for a little while between
/// polls, then drops it: a batch cut off wherever it got to (its transaction rolled back, or
/// committed if the commit got through), as when a process dies. `None` when cut off.
async fn cut_off<F: std::future::Future>(
    step: F,
    polls: usize,
    pause: Duration,
) -> Option<F::Output> {
    let mut step = std::pin::pin!(step);
    for _ in 0..polls {
        if let std::task::Poll::Ready(done) = futures::poll!(step.as_mut()) {
            return Some(done);
        }
        tokio::time::sleep(pause).await;
    }
    None
}

async fn live_projection_with_random_batches_aborts_and_restarts_equals_a_rebuild_over_every_event_type(
    env: Env,
) {
    use ledger::projection::verify::{verify, VerifyConfig};
    use ledger::projection::{ProjectorConfig, StepOutcome};
    let seed = 20261206 + env.db as u64;
    let types = every_type_workload(&env, 40, 400, seed).await;
    let every: BTreeSet<String> = ledger::domain::DomainEvent::CURRENT_TYPES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    assert_eq!(types, every, "the generated history uses every event type");

    let rm = env.read_model().await;
    let head = env.log.head_position().await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut restarts, mut cut) = (0, 0);
    while rm.checkpoint("readmodel").await.unwrap() != head {
        // A new projector, as after a restart, with another batch size.
        let projector =
            Projector::with_config(env.log(), rm.clone(), config(rng.gen_range(1..=40)));
        restarts += 1;
        for _ in 0..rng.gen_range(1..8) {
            let pause = Duration::from_micros(rng.gen_range(10..2_000));
            let outcome = if rng.gen_bool(0.4) {
                match cut_off(projector.try_step(), rng.gen_range(1..4), pause).await {
                    Some(outcome) => outcome,
                    None => {
                        cut += 1;
                        continue;
                    }
                }
            } else {
                projector.try_step().await
            };
            if outcome.unwrap() == StepOutcome::CaughtUp {
                break;
            }
        }
    }
    assert!(
        cut > 0 && restarts > 1,
        "cut {cut} batches, {restarts} restarts"
    );

    let report = verify(
        env.log(),
        &env.url,
        VerifyConfig {
            projector: ProjectorConfig {
                rebuild_batch_size: rng.gen_range(1..300),
                // Small enough that rows of every table leave the cache and come back.
                write_back_rows: rng.gen_range(1..16),
                ..config(100)
            },
            catch_up_live: false,
            compare: Default::default(),
        },
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.position, head);
    assert!(
        report.is_identical(),
        "live differs from a rebuild (seed {seed}): {:?}",
        report.differing_tables()
    );
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    let dump = rm.dump().await.unwrap();
    for table in [
        "donation",
        "payment",
        "contribution_tracking",
        "donation_moderation_reason",
        "membership_application",
        "membership_moderation_reason",
        "address_change",
        "subscription",
    ] {
        assert!(!dump[table].is_empty(), "the history filled {table}");
    }
}
