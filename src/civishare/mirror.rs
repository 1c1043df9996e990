//! The status mirror: copies what became of every change this node sent and received from
//! `civishare.sqlite` into the read model (`civishare_outgoing`, `civishare_incoming`), so the
//! back office queries CiviShare's statuses with the rest of its data, on whichever database
//! the read model is (SQLite, PostgreSQL, MariaDB), and several nodes can share one.
//!
//! Every insert, update and deletion of an outgoing or incoming row takes the next *revision*
//! of `civishare.sqlite` (its triggers, migration `20261208000001`). A round reads the rows
//! changed after the mirror's checkpoint, in revision order, and writes them and the new
//! checkpoint in one read-model transaction: a crash or an unreachable database repeats the
//! round, and a repeated row is the same upsert. The checkpoint lives in the read model
//! (`civishare_status_checkpoint`, per node), so a rebuilt read model is filled again from
//! the start. Rows of a removed peering show as `dropped`.
//!
//! Peers' strings (change types, references, reasons) are untrusted: they are fitted to the
//! columns (no control characters, bounded length) so no value can stop the mirror.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::message::parse_time;
use super::{CivishareError, CivishareStore};
use crate::jobs::projector::ProjectorReady;
use crate::projection::backend::Write;
use crate::projection::rows::{ColType, Value};
use crate::projection::{ProjectionError, ReadModel};
use crate::telemetry::format_chain;

/// Rows per table and round.
const PAGE: i64 = 500;
/// Between rounds that found nothing new.
const IDLE: Duration = Duration::from_millis(500);
/// The longest pause after failed rounds.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Characters kept of a short text column (`VARCHAR(255)` in MariaDB).
const SHORT: usize = 255;
/// Characters kept of an error or a reason.
const LONG: usize = 2000;

/// What became of one change sent to one peer, as the mirror copies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingStatus {
    /// The queue's sequence number (never reused).
    pub seq: i64,
    /// The peer's node name.
    pub peer: String,
    /// The event's log position.
    pub log_position: i64,
    /// The event's id.
    pub event_id: String,
    /// The change type.
    pub change_type: String,
    /// The entity.
    pub entity: String,
    /// Its id here.
    pub entity_reference: String,
    /// `queued`, `sent`, `acknowledged`, `failed`, or `dropped` (the peering was removed).
    pub status: String,
    /// Delivery attempts.
    pub attempts: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// The message that carried it last.
    pub message_id: Option<String>,
    /// What the peer did with it: `applied`, `ignored_loop`, `refused`.
    pub peer_status: Option<String>,
    /// The peer's reason for a refusal.
    pub peer_reason: Option<String>,
    /// When it was queued.
    pub queued_at: String,
    /// When it was last sent.
    pub sent_at: Option<String>,
    /// When the peer acknowledged it.
    pub acknowledged_at: Option<String>,
}

/// What became of one change received, as the mirror copies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingStatus {
    /// The inbox's sequence number.
    pub seq: i64,
    /// The sending node.
    pub sender: String,
    /// The message's id.
    pub message_id: String,
    /// The change's index in the message.
    pub change_index: i64,
    /// The change type.
    pub change_type: String,
    /// The entity.
    pub entity: String,
    /// The sender's id of it.
    pub entity_reference: String,
    /// `applied`, `ignored_loop`, `refused`.
    pub status: String,
    /// Why it was refused.
    pub reason: Option<String>,
    /// The local id it was applied to.
    pub local_reference: Option<String>,
    /// When it was received.
    pub received_at: String,
}

/// The rows changed after a revision, none skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revised {
    /// Outgoing rows, queued and dropped.
    pub outgoing: Vec<OutgoingStatus>,
    /// Incoming rows.
    pub incoming: Vec<IncomingStatus>,
    /// The highest revision they cover (the next checkpoint).
    pub last: i64,
}

impl Revised {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.outgoing.is_empty() && self.incoming.is_empty()
    }
}

impl CivishareStore {
    /// The newest revision of this file.
    pub async fn revision(&self) -> Result<i64, CivishareError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM civishare_revision WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    /// The outgoing and incoming rows changed after `revision`, in one snapshot, at most
    /// `limit` from each source. A source that filled its page bounds the others, so a
    /// page never covers a revision it has not read.
    pub async fn revised_since(
        &self,
        revision: i64,
        limit: i64,
    ) -> Result<Revised, CivishareError> {
        // One read transaction: the three reads see the same committed state.
        let mut tx = self.pool.begin().await?;
        let queued = sqlx::query(
            "SELECT o.seq, p.node_name AS peer, o.position, o.event_id, o.change_type, o.entity, \
             o.entity_reference, o.status, o.attempts, o.last_error, o.message_id, \
             o.peer_status, o.peer_reason, o.queued_at, o.sent_at, o.acknowledged_at, \
             o.revision \
             FROM civishare_outbox AS o JOIN civishare_peering AS p ON p.id = o.peering_id \
             WHERE o.revision > ?1 ORDER BY o.revision LIMIT ?2",
        )
        .bind(revision)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let dropped = sqlx::query(
            "SELECT seq, peer, position, event_id, change_type, entity, entity_reference, \
             'dropped' AS status, attempts, last_error, message_id, peer_status, peer_reason, \
             queued_at, sent_at, acknowledged_at, revision \
             FROM civishare_outbox_dropped WHERE revision > ?1 ORDER BY revision LIMIT ?2",
        )
        .bind(revision)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let received = sqlx::query(
            "SELECT seq, sender, message_id, change_index, change_type, entity, \
             entity_reference, status, reason, local_reference, received_at, revision \
             FROM civishare_inbox WHERE revision > ?1 ORDER BY revision LIMIT ?2",
        )
        .bind(revision)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;

        let revisions = |rows: &[sqlx::sqlite::SqliteRow]| -> Vec<i64> {
            rows.iter().map(|r| r.get::<i64, _>("revision")).collect()
        };
        let sources = [
            revisions(&queued),
            revisions(&dropped),
            revisions(&received),
        ];
        // A full page may have more rows after it: nothing beyond its last revision is
        // certain to be complete in the other sources' pages either.
        let full_bound = sources
            .iter()
            .filter(|r| r.len() as i64 >= limit)
            .filter_map(|r| r.last().copied())
            .min();
        let bound = full_bound.unwrap_or_else(|| {
            sources
                .iter()
                .filter_map(|r| r.last().copied())
                .max()
                .unwrap_or(revision)
        });
        let outgoing = queued
            .iter()
            .chain(&dropped)
            .filter(|r| r.get::<i64, _>("revision") <= bound)
            .map(outgoing_status)
            .collect();
        let incoming = received
            .iter()
            .filter(|r| r.get::<i64, _>("revision") <= bound)
            .map(|r| IncomingStatus {
                seq: r.get("seq"),
                sender: r.get("sender"),
                message_id: r.get("message_id"),
                change_index: r.get("change_index"),
                change_type: r.get("change_type"),
                entity: r.get("entity"),
                entity_reference: r.get("entity_reference"),
                status: r.get("status"),
                reason: r.get("reason"),
                local_reference: r.get("local_reference"),
                received_at: r.get("received_at"),
            })
            .collect();
        Ok(Revised {
            outgoing,
            incoming,
            last: bound,
        })
    }
}

fn outgoing_status(r: &sqlx::sqlite::SqliteRow) -> OutgoingStatus {
    OutgoingStatus {
        seq: r.get("seq"),
        peer: r.get("peer"),
        log_position: r.get("position"),
        event_id: r.get("event_id"),
        change_type: r.get("change_type"),
        entity: r.get("entity"),
        entity_reference: r.get("entity_reference"),
        status: r.get("status"),
        attempts: r.get("attempts"),
        last_error: r.get("last_error"),
        message_id: r.get("message_id"),
        peer_status: r.get("peer_status"),
        peer_reason: r.get("peer_reason"),
        queued_at: r.get("queued_at"),
        sent_at: r.get("sent_at"),
        acknowledged_at: r.get("acknowledged_at"),
    }
}

/// Errors of a mirror round.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// `civishare.sqlite` failed.
    #[error("reading CiviShare's statuses")]
    Civishare(#[from] CivishareError),
    /// The read model failed.
    #[error("writing CiviShare's statuses into the read model")]
    ReadModel(#[from] ProjectionError),
}

/// What a round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Copied this many rows.
    Processed(usize),
    /// Nothing new (or no local node yet).
    CaughtUp,
}

/// The status mirror of one node.
pub struct StatusMirror {
    store: CivishareStore,
}

impl StatusMirror {
    /// The mirror of the node whose CiviShare database is `store`.
    pub fn new(store: CivishareStore) -> Self {
        Self { store }
    }

    /// Copies one page of changed rows into `rm`, with the checkpoint, in one transaction.
    pub async fn try_mirror(&self, rm: &ReadModel) -> Result<Outcome, MirrorError> {
        let Some(node) = self.store.local_node().await? else {
            return Ok(Outcome::CaughtUp);
        };
        let checkpoint = checkpoint(rm, &node).await?;
        if self.store.revision().await? <= checkpoint {
            return Ok(Outcome::CaughtUp);
        }
        let page = self.store.revised_since(checkpoint, PAGE).await?;
        let copied = page.outgoing.len() + page.incoming.len();
        let mut session = rm.begin().await?;
        if !page.outgoing.is_empty() {
            let rows = page
                .outgoing
                .iter()
                .map(|o| outgoing_row(&node, o))
                .collect();
            session.write(Write::CivishareOutgoing, rows).await?;
        }
        if !page.incoming.is_empty() {
            let rows = page
                .incoming
                .iter()
                .map(|i| incoming_row(&node, i))
                .collect();
            session.write(Write::CivishareIncoming, rows).await?;
        }
        let at = Value::Time(Some(Utc::now()));
        let row = vec![Value::text(&node), Value::int(page.last), at];
        session
            .write(Write::CivishareStatusCheckpoint, vec![row])
            .await?;
        session.commit().await?;
        Ok(Outcome::Processed(copied))
    }

    /// Copies until `shutdown`, once the live projector's read model has answered (it
    /// migrates the tables). Failures are logged and the round repeated after a pause.
    pub async fn run_until_stopped(self, mut ready: ProjectorReady, shutdown: CancellationToken) {
        let Some(projector) = ready.wait(&shutdown).await else {
            return;
        };
        let rm = projector.read_model();
        let mut pause = IDLE;
        while !shutdown.is_cancelled() {
            match self.try_mirror(rm).await {
                Ok(Outcome::Processed(_)) => {
                    pause = IDLE;
                    continue;
                }
                Ok(Outcome::CaughtUp) => pause = IDLE,
                Err(e) => {
                    tracing::error!(
                        error = %format_chain(&e),
                        "copying CiviShare's statuses into the read model failed; retrying"
                    );
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The mirror's checkpoint for `node` in `rm` (0 before its first round).
async fn checkpoint(rm: &ReadModel, node: &str) -> Result<i64, ProjectionError> {
    let flavor = rm.backend.flavor();
    let sql = format!(
        "SELECT {} FROM civishare_status_checkpoint WHERE node = {}",
        flavor.typed("revision", ColType::I64),
        flavor.param(1)
    );
    let rows = rm
        .backend
        .fetch(&sql, &[Value::text(node)], &[("revision", ColType::I64)])
        .await?;
    Ok(rows.first().and_then(|r| r[0].as_i64()).unwrap_or_default())
}

fn outgoing_row(node: &str, o: &OutgoingStatus) -> Vec<Value> {
    vec![
        short(node),
        Value::int(o.seq.max(0)),
        short(&o.peer),
        Value::int(o.log_position.max(0)),
        short(&o.event_id),
        short(&o.change_type),
        short(&o.entity),
        short(&o.entity_reference),
        short(&o.status),
        Value::int(o.attempts.max(0)),
        long(o.last_error.as_deref().unwrap_or_default()),
        short(o.message_id.as_deref().unwrap_or_default()),
        short(o.peer_status.as_deref().unwrap_or_default()),
        long(o.peer_reason.as_deref().unwrap_or_default()),
        Value::Time(Some(time(&o.queued_at))),
        Value::Time(o.sent_at.as_deref().map(time)),
        Value::Time(o.acknowledged_at.as_deref().map(time)),
    ]
}

fn incoming_row(node: &str, i: &IncomingStatus) -> Vec<Value> {
    vec![
        short(node),
        Value::int(i.seq.max(0)),
        short(&i.sender),
        short(&i.message_id),
        Value::int(i.change_index.max(0)),
        short(&i.change_type),
        short(&i.entity),
        short(&i.entity_reference),
        short(&i.status),
        long(i.reason.as_deref().unwrap_or_default()),
        short(i.local_reference.as_deref().unwrap_or_default()),
        Value::Time(Some(time(&i.received_at))),
    ]
}

/// A time this node wrote; the epoch for text that does not parse (it cannot happen for
/// rows this code wrote, and must not stop the mirror if it does).
fn time(text: &str) -> DateTime<Utc> {
    parse_time(text).unwrap_or_default()
}

fn short(text: &str) -> Value {
    Value::Text(Some(fit(text, SHORT)))
}

fn long(text: &str) -> Value {
    Value::Text(Some(fit(text, LONG)))
}

/// `text` as every dialect's column holds it: control characters (NUL among them, which
/// PostgreSQL refuses) replaced by U+FFFD, at most `max` characters.
pub(crate) fn fit(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_string_is_fitted_to_the_column_without_control_characters() {
        assert_eq!(fit("a\0b\nc", 10), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(fit(&"é".repeat(300), SHORT).chars().count(), SHORT);
        assert_eq!(fit("refused: bad", LONG), "refused: bad");
    }

    #[test]
    fn a_time_that_does_not_parse_becomes_the_epoch_instead_of_stopping_the_mirror() {
        assert_eq!(time("not a time"), DateTime::<Utc>::default());
        assert_eq!(
            time("2026-12-08T10:00:00Z").to_rfc3339(),
            "2026-12-08T10:00:00+00:00"
        );
    }
}
