//! Which `ledger serve` runs a singleton job: when several processes share one log and one
//! read model (the KurrentDB log backend, a PostgreSQL or MariaDB read model), each projector
//! and the scrub schedule run in exactly one of them at a time. The holder takes a lock in the
//! read-model database — PostgreSQL `pg_try_advisory_lock`, MariaDB `GET_LOCK` — on a
//! connection of its own, and keeps it for as long as that connection answers. The database
//! releases the lock when the holder's session ends (the process died, the network dropped),
//! and another process takes it at its next try, within [`TRY_EVERY`]. A holder whose lock
//! connection stops answering gives the job up (cancels its [`Lease::lost`] token) at once.
//!
//! A SQLite read model is a file on one machine, used by one `serve` (its directory is locked):
//! its lease is held at once and never lost.

use std::time::Duration;

use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;

use crate::metrics::{catalog, Metrics};
use crate::projection::{is_mariadb_url, is_postgres_url, mariadb_driver_url};

/// How often a process that does not hold a lease tries to take it, and how often the holder
/// checks that its lock connection answers.
pub const TRY_EVERY: Duration = Duration::from_secs(1);
/// How long a check of the lock connection may take before the lease counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The lock's connection, per database.
enum Holder {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
    /// Nothing to hold (SQLite).
    Local,
}

/// A held lease on a job; the job runs until [`Lease::lost`] is cancelled.
pub struct Lease {
    lost: CancellationToken,
    watch: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Cancelled when the lease is lost (or at shutdown).
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Dropping the lock connection ends its session: the database releases the lock.
        self.watch.abort();
    }
}

/// A stable 63-bit key for a job's name (PostgreSQL's advisory locks take an `i64`).
fn lock_key(name: &str) -> i64 {
    // FNV-1a: fixed across processes and versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("ledger:{name}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 1) as i64
}

async fn try_take(url: &str, name: &str) -> Result<Option<Holder>, sqlx::Error> {
    if is_postgres_url(url) {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lock_key(name))
            .fetch_one(&mut conn)
            .await?;
        return Ok(taken.then_some(Holder::Postgres(conn)));
    }
    if is_mariadb_url(url) {
        let mut conn = sqlx::MySqlConnection::connect(&mariadb_driver_url(url)).await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
            .bind(format!("ledger:{name}"))
            .fetch_one(&mut conn)
            .await?;
        return Ok((taken == Some(1)).then_some(Holder::MySql(conn)));
    }
    Ok(Some(Holder::Local))
}

async fn answers(holder: &mut Holder) -> bool {
    let check = async {
        match holder {
            Holder::Postgres(conn) => conn.ping().await.is_ok(),
            Holder::MySql(conn) => conn.ping().await.is_ok(),
            Holder::Local => true,
        }
    };
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or(false)
}

/// Waits until this process holds the lease on job `name` in the read model at `url`, or
/// shutdown (`None`). While it waits and while it holds, `ledger_job_lease_held{job}` says so.
pub async fn acquire(
    url: &str,
    name: &'static str,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Option<Lease> {
    metrics.gauge(catalog::JOB_LEASE_HELD, &[("job", name)], 0.0);
    let mut waiting_said = false;
    let mut holder = loop {
        if shutdown.is_cancelled() {
            return None;
        }
        match try_take(url, name).await {
            Ok(Some(holder)) => break holder,
            Ok(None) => {
                if !waiting_said {
                    tracing::info!(
                        job = name,
                        "another ledger process holds this job's lease; standing by"
                    );
                    waiting_said = true;
                }
            }
            Err(e) => {
                tracing::warn!(job = name, error = %e, "cannot reach the read model to take the job's lease; retrying")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(TRY_EVERY) => {}
        }
    };
    if !matches!(holder, Holder::Local) {
        tracing::info!(
            job = name,
            "took the job's lease: running it in this process"
        );
    }
    metrics.gauge(catalog::JOB_LEASE_HELD, &[("job", name)], 1.0);
    let lost = shutdown.child_token();
    let watch = tokio::spawn({
        let (lost, metrics) = (lost.clone(), metrics.clone());
        async move {
            loop {
                tokio::select! {
                    () = lost.cancelled() => break,
                    () = tokio::time::sleep(TRY_EVERY) => {}
                }
                if !answers(&mut holder).await {
                    tracing::error!(
                        job = name,
                        "the job's lock connection stopped answering: giving the job up so \
                         that another process may take it"
                    );
                    break;
                }
            }
            metrics.gauge(catalog::JOB_LEASE_HELD, &[("job", name)], 0.0);
            lost.cancel();
        }
    });
    Some(Lease { lost, watch })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_positive_and_differ_per_job() {
        assert_eq!(lock_key("projector"), lock_key("projector"));
        assert_ne!(lock_key("projector"), lock_key("scrub_schedule"));
        assert!(lock_key("projector") >= 0 && lock_key("scrub_schedule") >= 0);
    }
}
