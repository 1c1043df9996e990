//! The receiving side's memory: message ids (for the replay rule), origin signatures of the
//! changes processed (for the loop rule, and to forward a change with its loop list), and the
//! status of every change received, queryable by SQL in `civishare_inbox`.
use sqlx::Row;

use super::{CivishareError, CivishareStore};

/// What became of a received change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    /// Appended to the log.
    Applied,
    /// Seen before, or stamped by this node.
    IgnoredLoop,
    /// Not applied, with a reason.
    Refused,
}

impl ChangeStatus {
    /// Its name in the table, in answers and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::IgnoredLoop => "ignored_loop",
            Self::Refused => "refused",
        }
    }
}

/// One row of `civishare_inbox`.
#[derive(Debug, Clone)]
pub struct InboxRow<'a> {
    /// The message it came in.
    pub message_id: &'a str,
    /// The sending node.
    pub sender: &'a str,
    /// Its index in the message.
    pub change_index: usize,
    /// The change.
    pub change: &'a super::Change,
    /// What became of it.
    pub status: ChangeStatus,
    /// Why, when refused or ignored.
    pub reason: Option<String>,
    /// The local entity id, when applied.
    pub local_reference: Option<String>,
}

impl CivishareStore {
    /// Remembers message id `id`, first forgetting ids older than `keep_secs`; `false` when
    /// it was already remembered (a replay).
    pub async fn remember_message(
        &self,
        id: &str,
        sender: &str,
        now_secs: i64,
        keep_secs: i64,
    ) -> Result<bool, CivishareError> {
        sqlx::query("DELETE FROM civishare_message_seen WHERE received_at < ?1")
            .bind(now_secs - keep_secs)
            .execute(&self.pool)
            .await?;
        let done = sqlx::query(
            "INSERT INTO civishare_message_seen (id, sender, received_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(sender)
        .bind(now_secs)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether a change with origin signature `origin` was processed within the retention
    /// (`Some(true)`), was being applied when this node stopped (`Some(false)`), or is new.
    pub async fn origin_done(&self, origin: &str) -> Result<Option<bool>, CivishareError> {
        let row = sqlx::query("SELECT state FROM civishare_change_seen WHERE origin = ?1")
            .bind(origin)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<&str, _>("state") == "done"))
    }

    /// Marks a remembered change applied.
    pub async fn change_done(&self, origin: &str) -> Result<(), CivishareError> {
        sqlx::query("UPDATE civishare_change_seen SET state = 'done' WHERE origin = ?1")
            .bind(origin)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remembers a change about to be applied (state `applying`): its origin, its loop list and
    /// the correlation id of the request that applies it. `false` when it was remembered
    /// already.
    pub async fn remember_change(
        &self,
        origin: &str,
        sender: &str,
        loop_detection: &[String],
        correlation_id: Option<uuid::Uuid>,
        now_secs: i64,
    ) -> Result<bool, CivishareError> {
        let done = sqlx::query(
            "INSERT INTO civishare_change_seen \
             (origin, state, sender, loop_detection, correlation_id, seen_at) \
             VALUES (?1, 'applying', ?2, ?3, ?4, ?5) ON CONFLICT (origin) DO NOTHING",
        )
        .bind(origin)
        .bind(sender)
        .bind(serde_json::to_string(loop_detection).expect("strings serialise"))
        .bind(correlation_id.map(|c| c.to_string()))
        .bind(now_secs)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets a change whose application failed for a reason of this node, so that the
    /// sender's retry applies it.
    pub async fn forget_change(&self, origin: &str) -> Result<(), CivishareError> {
        sqlx::query("DELETE FROM civishare_change_seen WHERE origin = ?1")
            .bind(origin)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets origins processed before `before_secs` (the retention).
    pub async fn purge_changes(&self, before_secs: i64) -> Result<u64, CivishareError> {
        Ok(
            sqlx::query("DELETE FROM civishare_change_seen WHERE seen_at < ?1")
                .bind(before_secs)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// The loop list a change applied under `correlation_id` arrived with.
    pub async fn loop_of(
        &self,
        correlation_id: &uuid::Uuid,
    ) -> Result<Option<Vec<String>>, CivishareError> {
        let row = sqlx::query(
            "SELECT loop_detection FROM civishare_change_seen WHERE correlation_id = ?1",
        )
        .bind(correlation_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| serde_json::from_str(r.get::<&str, _>("loop_detection")).ok()))
    }

    /// The local id of the entity `sender` calls `entity_reference`, from the change that
    /// created it here.
    pub async fn local_reference(
        &self,
        sender: &str,
        entity: &str,
        entity_reference: &str,
    ) -> Result<Option<String>, CivishareError> {
        let row = sqlx::query(
            "SELECT local_reference FROM civishare_inbox \
             WHERE sender = ?1 AND entity = ?2 AND entity_reference = ?3 \
             AND status = 'applied' AND local_reference IS NOT NULL ORDER BY seq LIMIT 1",
        )
        .bind(sender)
        .bind(entity)
        .bind(entity_reference)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.get("local_reference")))
    }

    /// Records what became of a received change.
    pub async fn record(&self, row: &InboxRow<'_>) -> Result<(), CivishareError> {
        sqlx::query(
            "INSERT INTO civishare_inbox \
             (message_id, sender, change_index, change_type, entity, entity_reference, origin, \
              status, reason, local_reference, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .bind(row.message_id)
        .bind(row.sender)
        .bind(row.change_index as i64)
        .bind(&row.change.change_type)
        .bind(&row.change.entity)
        .bind(&row.change.entity_reference)
        .bind(row.change.origin().unwrap_or(""))
        .bind(row.status.as_str())
        .bind(&row.reason)
        .bind(&row.local_reference)
        .bind(super::message::format_time(chrono::Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Received changes per sender and status.
    pub async fn inbox_counts(&self) -> Result<Vec<(String, String, i64)>, CivishareError> {
        let rows = sqlx::query(
            "SELECT sender, status, COUNT(*) AS n FROM civishare_inbox \
             GROUP BY sender, status ORDER BY sender, status",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("sender"), r.get("status"), r.get("n")))
            .collect())
    }
}
