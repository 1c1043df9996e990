//! The projector runtime: reads the log from a checkpoint, folds each batch in memory into
//! read-model rows, and writes the rows and the new checkpoint in one transaction.
//!
//! * One function, [`decode`], turns a recorded event into a [`DomainEvent`]; decryption of the
//!   personal-data units will hook in there.
//! * A batch loads the rows it touches with one `SELECT ... WHERE id IN (...)` per table,
//!   applies its events to row structs (`donation.rs`, `membership.rs`,
//!   `contribution_tracking.rs`) and writes
//!   them back with one multi-row upsert per table (SQLite and MariaDB: expanded `VALUES`;
//!   PostgreSQL: `UNNEST` of column arrays), plus the checkpoint, in the same transaction. The
//!   statements are the files in `projections/{sqlite,postgres,mariadb}/`.
//! * An event that cannot be projected — it breaks the admission rule
//!   (`domain/admission.rs`), the fold refuses it, or the database refuses a value of it (a
//!   batch that fails so is retried event by event to find it) — is quarantined: recorded in
//!   `projector_skipped_event` with its cause (`skipped_by = quarantine`), counted, logged at
//!   ERROR, and passed over; no event in the log can stop a read model. With
//!   [`ProjectorConfig::quarantine`] off it stops the projector instead, with
//!   [`ProjectionError::EventRejected`] naming it, until [`Projector::skip_event`] records an
//!   operator's decision to pass over it. `ledger verify` lists the quarantined events;
//!   [`ReadModel::release_quarantined`] and a rebuild replay one after a fix.
//! * Database outages are retried with capped exponential back-off; since rows and checkpoint
//!   commit together, a retry neither loses nor doubles anything.
//! * Positions are opaque: lag is reported in positions (head minus checkpoint) and, on
//!   request, as a capped count of events read from the log ([`Projector::lag`]).

//!
//! Layout: `backend.rs` is the read-model interface (error type and traits), implemented by
//! one file per dialect (`sqlite.rs`, `postgres.rs`, `mariadb.rs`); `read_model.rs` is the dialect-neutral
//! handle on it. `projector.rs` runs the loop, `reader.rs` reads and decodes a batch,
//! `batch.rs` folds it with the row logic of `donation.rs`, `membership.rs` and
//! `contribution_tracking.rs` over `rows.rs`' layouts (`moderation_reasons.rs` keeps the
//! reason tables of both contexts); `config.rs` holds settings and stats; `rebuild.rs`, `verify.rs`
//! (with `compare.rs`) and `scrub_selection.rs` are the jobs built on top.

mod address_change;
pub(crate) mod backend;
mod batch;
mod cache;
pub mod compare;
mod config;
mod contribution_tracking;
mod diff;
mod donation;
mod entity_rows;
mod mariadb;
mod membership;
pub mod migrations;
mod moderation_reasons;
mod overview;
mod postgres;
mod projector;
mod read_model;
mod reader;
mod rebuild;
pub(crate) mod rows;
pub mod scrub_selection;
mod snapshot;
mod sqlite;
mod subscription;
pub mod verify;

use crate::domain::{CodecError, DomainEvent};
use crate::store::RecordedEvent;

pub use backend::{classify, DbFailure, Dialect, ProjectionError};
pub use config::{
    CatchUpOutcome, Lag, ProjectorConfig, ProjectorStats, RetryPolicy, StatsHandle, StepOutcome,
};
/// Whether a read-model URL names a MariaDB (MySQL) server, and the URL as sqlx's MySQL driver
/// reads it; whether it names a PostgreSQL server.
pub(crate) use mariadb::{accepts as is_mariadb_url, driver_url as mariadb_driver_url};
pub use overview::{CheckpointRow, Overview, StateCount};
pub(crate) use postgres::accepts as is_postgres_url;
pub use projector::Projector;
pub use read_model::{ReadModel, TableDump, QUARANTINE};
pub use rebuild::{rebuild, rebuild_with_progress, RebuildProgress, RebuildReport};

/// The statement building of a projector batch, reachable for `benches/hot_paths.rs` (not a
/// stable API): the bench measures the real code, not a copy.
#[doc(hidden)]
pub mod hot_paths {
    use super::rows::{self, ColType, Value};

    /// Donation rows with every column set, opaque to callers.
    pub struct DonationRows(Vec<Vec<Value>>);

    /// `n` donation rows with every column set (the widest table of a batch).
    pub fn donation_rows(n: usize) -> DonationRows {
        let now = chrono::Utc::now();
        DonationRows(
            (0..n as i64)
                .map(|i| {
                    rows::DONATION_COLUMNS
                        .iter()
                        .map(|(name, t)| match t {
                            ColType::I64 => Value::int(i),
                            ColType::Text => Value::text(&format!("{name}-{i}")),
                            ColType::Bool => Value::Bool(Some(i % 2 == 0)),
                            ColType::Time => Value::Time(Some(now)),
                        })
                        .collect()
                })
                .collect(),
        )
    }

    /// Builds SQLite's `rows`-row donation upsert; returns its length.
    pub fn sqlite_donation_statement(rows: usize) -> usize {
        rows::expand_values(super::sqlite::DONATION_UPSERT, rows).len()
    }

    /// Binds `rows` to PostgreSQL's `UNNEST` donation upsert (one array per column), as a
    /// batch write does before it sends the statement.
    pub fn postgres_donation_binds(rows: &DonationRows) {
        let q = super::postgres::bind_columns(
            sqlx::query(super::postgres::DONATION_UPSERT),
            rows::DONATION_COLUMNS,
            &rows.0,
        );
        drop(std::hint::black_box(q));
    }
}

/// The default projector name (its checkpoint row).
pub const DEFAULT_PROJECTOR: &str = "readmodel";
/// The default PostgreSQL schema of the read model.
pub const DEFAULT_SCHEMA: &str = "readmodel";
/// The default events per transaction of a rebuild (see [`ProjectorConfig::rebuild_batch_size`]).
/// `ledger bench --donations 100000` on PostgreSQL: 93,800 events/s at 10,000, 101,000 at
/// 20,000 (fewer round trips per event); SQLite about the same either way.
pub const REBUILD_BATCH_SIZE: usize = 20_000;
/// The default rows of each table a rebuild keeps in memory between batches (see
/// [`ProjectorConfig::write_back_rows`]): about 1.5 KB a donation with its payment, some
/// 75 MB; the other tables' rows (contribution tracking, memberships, address changes,
/// subscriptions) are narrower.
pub const REBUILD_CACHE_ROWS: usize = 50_000;

/// Errors turning a recorded event into a domain event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The type name or payload is not understood.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A sealed personal unit cannot be opened: its ciphertext does not authenticate, its
    /// clear text does not decode, or its key id is out of range (an altered or foreign event).
    #[error("sealed personal data cannot be opened: {0}")]
    Unseal(crate::privacy::PrivacyError),
}

/// Decodes a recorded event. The one place every projector turns stored bytes into a domain
/// event; `unseal_batch` then decrypts the personal units of the whole batch.
pub fn decode(event: &RecordedEvent) -> Result<DomainEvent, DecodeError> {
    Ok(DomainEvent::decode(&event.event_type, &event.payload)?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;

    use super::rows::{statement_columns, TABLES};
    use super::*;

    #[test]
    fn every_statement_lists_the_columns_of_its_layout() {
        use backend::Write;
        for what in [
            Write::DonationTracking,
            Write::Donation,
            Write::Payment,
            Write::ModerationReason,
            Write::DonationEvent,
            Write::ContributionTracking,
            Write::Conflict,
            Write::Membership,
            Write::MembershipModerationReason,
            Write::AddressChange,
            Write::Subscription,
            Write::MembershipEvent,
            Write::CivishareOutgoing,
            Write::CivishareIncoming,
            Write::CivishareStatusCheckpoint,
            Write::AddressChangeEvent,
        ] {
            for (sql, columns) in [
                sqlite::write_statement(what),
                postgres::write_statement(what),
                mariadb::write_statement(what),
            ] {
                let expected: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
                assert_eq!(statement_columns(sql), expected, "{what:?}");
            }
        }
        assert!(TABLES.iter().any(|t| t.name == "donation"));
    }

    #[test]
    fn back_off_doubles_and_is_capped() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_attempts: None,
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(4), Duration::from_millis(800));
        assert_eq!(p.delay(5), Duration::from_secs(1));
        assert_eq!(p.delay(60), Duration::from_secs(1));
    }

    #[test]
    fn decode_errors_name_the_type() {
        let event = RecordedEvent {
            stream: "donation-1".into(),
            revision: 0,
            position: 1,
            id: uuid::Uuid::new_v4(),
            event_type: "DonationVanished.v1".into(),
            payload: vec![],
            metadata: crate::store::Metadata::new(
                crate::store::Actor::system("t"),
                "t",
                uuid::Uuid::nil(),
            )
            .into(),
            recorded_at: Utc::now(),
        };
        assert!(decode(&event)
            .unwrap_err()
            .to_string()
            .contains("DonationVanished.v1"));
    }
}
