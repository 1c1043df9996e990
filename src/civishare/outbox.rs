//! The sending side's queue, `civishare_outbox`: one row per change and peer, written with the
//! outgoing projector's checkpoint in one transaction; statuses `queued`, `sent` (a request
//! is in flight), `acknowledged`, `failed` (with attempts and the last error). No personal
//! data: a row names the event by its log position, and the message is built at delivery.
use std::collections::HashMap;

use sqlx::Row;

use super::{CivishareError, CivishareStore};

/// A change to queue for one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRow {
    /// The peering.
    pub peering_id: i64,
    /// The event's log position.
    pub position: u64,
    /// The event's id.
    pub event_id: uuid::Uuid,
    /// The change type.
    pub change_type: String,
    /// The entity.
    pub entity: String,
    /// Its id here.
    pub entity_reference: String,
    /// The loop list to send (this node's stamp included).
    pub loop_detection: Vec<String>,
}

/// A queued row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRow {
    /// Queue order.
    pub seq: i64,
    /// The event's log position.
    pub position: u64,
    /// The event's id.
    pub event_id: String,
    /// The change type.
    pub change_type: String,
    /// The entity.
    pub entity: String,
    /// Its id here.
    pub entity_reference: String,
    /// The loop list to send.
    pub loop_detection: Vec<String>,
    /// Delivery attempts so far.
    pub attempts: i64,
}

/// Queue figures of one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// Rows per status.
    pub by_status: Vec<(String, i64)>,
    /// Rows not yet acknowledged.
    pub undelivered: i64,
    /// When the oldest undelivered row was queued.
    pub oldest_undelivered: Option<String>,
    /// The last delivery error.
    pub last_error: Option<String>,
}

impl CivishareStore {
    /// The next log position the outgoing projector reads.
    pub async fn checkpoint(&self) -> Result<u64, CivishareError> {
        let row = sqlx::query("SELECT position FROM civishare_checkpoint WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or(0, |r| r.get::<i64, _>("position") as u64))
    }

    /// Queues `rows` and moves the checkpoint to `next` in one transaction. A row already
    /// queued (same peer and event) is not queued twice.
    pub async fn enqueue(&self, rows: &[NewRow], next: u64) -> Result<(), CivishareError> {
        let mut tx = self.pool.begin().await?;
        insert_rows(&mut tx, rows).await?;
        sqlx::query(
            "INSERT INTO civishare_checkpoint (id, position) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET position = excluded.position",
        )
        .bind(next as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The peerings still getting their history, each with the next position to read.
    pub async fn backfills(&self) -> Result<HashMap<i64, u64>, CivishareError> {
        let rows = sqlx::query("SELECT peering_id, next_position FROM civishare_backfill")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<i64, _>("peering_id"),
                    r.get::<i64, _>("next_position") as u64,
                )
            })
            .collect())
    }

    /// One step of a peering's history: queues `rows` and moves its position to `next`, in
    /// one transaction; once `next` has reached the live projector's checkpoint the history is
    /// complete and the peering joins the live projector (its row is deleted). Whether it is
    /// complete.
    pub async fn backfill_step(
        &self,
        peering_id: i64,
        rows: &[NewRow],
        next: u64,
    ) -> Result<bool, CivishareError> {
        let mut tx = self.pool.begin().await?;
        insert_rows(&mut tx, rows).await?;
        let checkpoint: Option<i64> =
            sqlx::query_scalar("SELECT position FROM civishare_checkpoint WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        let done = next >= checkpoint.unwrap_or(0) as u64;
        if done {
            sqlx::query("DELETE FROM civishare_backfill WHERE peering_id = ?1")
                .bind(peering_id)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE civishare_backfill SET next_position = ?1 WHERE peering_id = ?2")
                .bind(next as i64)
                .bind(peering_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Up to `limit` undelivered rows of a peer, in queue order.
    pub async fn undelivered(
        &self,
        peering_id: i64,
        limit: i64,
    ) -> Result<Vec<QueuedRow>, CivishareError> {
        let rows = sqlx::query(
            "SELECT seq, position, event_id, change_type, entity, entity_reference, \
             loop_detection, attempts FROM civishare_outbox \
             WHERE peering_id = ?1 AND status <> 'acknowledged' ORDER BY seq LIMIT ?2",
        )
        .bind(peering_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| QueuedRow {
                seq: r.get("seq"),
                position: r.get::<i64, _>("position") as u64,
                event_id: r.get("event_id"),
                change_type: r.get("change_type"),
                entity: r.get("entity"),
                entity_reference: r.get("entity_reference"),
                loop_detection: serde_json::from_str(r.get::<&str, _>("loop_detection"))
                    .unwrap_or_default(),
                attempts: r.get("attempts"),
            })
            .collect())
    }

    /// Marks rows as in flight in message `message_id`.
    pub async fn mark_sent(&self, seqs: &[i64], message_id: &str) -> Result<(), CivishareError> {
        let now = super::message::format_time(chrono::Utc::now());
        let mut tx = self.pool.begin().await?;
        for seq in seqs {
            sqlx::query(
                "UPDATE civishare_outbox SET status = 'sent', message_id = ?1, sent_at = ?2, \
                 attempts = attempts + 1 WHERE seq = ?3",
            )
            .bind(message_id)
            .bind(&now)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks rows acknowledged, each with the peer's answer for it.
    pub async fn mark_acknowledged(
        &self,
        answers: &[(i64, String, Option<String>)],
    ) -> Result<(), CivishareError> {
        let now = super::message::format_time(chrono::Utc::now());
        let mut tx = self.pool.begin().await?;
        for (seq, status, reason) in answers {
            sqlx::query(
                "UPDATE civishare_outbox SET status = 'acknowledged', acknowledged_at = ?1, \
                 peer_status = ?2, peer_reason = ?3, last_error = NULL WHERE seq = ?4",
            )
            .bind(&now)
            .bind(status)
            .bind(reason)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks rows failed with `error` (they stay deliverable).
    pub async fn mark_failed(&self, seqs: &[i64], error: &str) -> Result<(), CivishareError> {
        let mut tx = self.pool.begin().await?;
        for seq in seqs {
            sqlx::query(
                "UPDATE civishare_outbox SET status = 'failed', last_error = ?1 WHERE seq = ?2",
            )
            .bind(error)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The queue figures of one peer.
    pub async fn queue_status(&self, peering_id: i64) -> Result<QueueStatus, CivishareError> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM civishare_outbox WHERE peering_id = ?1 \
             GROUP BY status ORDER BY status",
        )
        .bind(peering_id)
        .fetch_all(&self.pool)
        .await?;
        let by_status: Vec<(String, i64)> =
            rows.iter().map(|r| (r.get("status"), r.get("n"))).collect();
        let undelivered = by_status
            .iter()
            .filter(|(s, _)| s != "acknowledged")
            .map(|(_, n)| n)
            .sum();
        let oldest = sqlx::query(
            "SELECT queued_at, last_error FROM civishare_outbox \
             WHERE peering_id = ?1 AND status <> 'acknowledged' ORDER BY seq LIMIT 1",
        )
        .bind(peering_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(QueueStatus {
            by_status,
            undelivered,
            oldest_undelivered: oldest.as_ref().map(|r| r.get("queued_at")),
            last_error: oldest.and_then(|r| r.get("last_error")),
        })
    }
}

/// Queues rows in `tx`; a row already queued (same peer and event) is not queued twice.
async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    rows: &[NewRow],
) -> Result<(), CivishareError> {
    let now = super::message::format_time(chrono::Utc::now());
    for r in rows {
        sqlx::query(
            "INSERT INTO civishare_outbox \
             (peering_id, position, event_id, change_type, entity, entity_reference, \
              loop_detection, status, queued_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8) \
             ON CONFLICT (peering_id, event_id) DO NOTHING",
        )
        .bind(r.peering_id)
        .bind(r.position as i64)
        .bind(r.event_id.to_string())
        .bind(&r.change_type)
        .bind(&r.entity)
        .bind(&r.entity_reference)
        .bind(serde_json::to_string(&r.loop_detection).expect("strings serialise"))
        .bind(&now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
