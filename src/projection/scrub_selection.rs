//! Read-model queries of the scrub job: which donations, membership applications and address
//! changes the policy allows to scrub (through partial indexes, so the cost follows the
//! candidates, not the table), and purging the residue a blanked row leaves behind.
use chrono::{DateTime, Utc};

use super::backend::{db_error, ProjectionError, Statement};
use super::rows::{ColType, Value};
use super::ReadModel;

/// What the candidate statements return (the id is a donation's or an application's).
const CANDIDATE_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("created_at", ColType::Time),
    ("rule", ColType::Text),
];

/// A donation the read model says may be scrubbed, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubCandidate {
    /// The donation.
    pub donation_id: u64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// `exported`, `cancelled_or_deleted`, `abandoned` or `stale_moderation`.
    pub rule: String,
}

/// A membership application the read model says may be scrubbed, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipScrubCandidate {
    /// The application.
    pub membership_id: u64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// `exported`, `cancelled_or_deleted` or `after_grace_period`.
    pub rule: String,
}

/// An address change whose address the read model says may be scrubbed, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressChangeScrubCandidate {
    /// The address change.
    pub address_change_id: u64,
    /// When it was last changed.
    pub modified_at: DateTime<Utc>,
    /// `exported` or `after_grace_period`.
    pub rule: String,
}

/// A subscription the read model says may be removed, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionScrubCandidate {
    /// The subscription.
    pub subscription_id: u64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// `exported` or `after_grace_period`.
    pub rule: String,
}

impl ReadModel {
    /// Up to `limit` candidates, oldest first: exported, cancelled/deleted, or abandoned before
    /// `abandoned_before`; plus, when given, still moderated before `stale_moderation_before`.
    pub async fn scrub_candidates(
        &self,
        abandoned_before: DateTime<Utc>,
        stale_moderation_before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<ScrubCandidate>, ProjectionError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        // A donation both abandoned and stale is listed once. A set, not a scan of `out` per
        // row: that made a backlog of 25,000 cost 312 million comparisons (2.6 s).
        let mut seen = std::collections::HashSet::new();
        let mut queries = vec![(abandoned_before, true)];
        if let Some(t) = stale_moderation_before {
            queries.push((t, false));
        }
        for (cutoff, main) in queries {
            let statement = if main {
                Statement::ScrubCandidates
            } else {
                Statement::ScrubStaleModeration
            };
            for (id, created_at, rule) in self.fetch_candidates(statement, cutoff, limit).await? {
                if seen.insert(id) {
                    out.push(ScrubCandidate {
                        donation_id: id,
                        created_at,
                        rule,
                    });
                }
            }
        }
        out.sort_by_key(|c| c.created_at);
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    /// Up to `limit` membership applications the membership rule allows to scrub, oldest
    /// first: exported, cancelled, or created before `grace_cutoff`
    /// (`membership_scrub_candidates.sql`; the log confirms each with
    /// `domain::membership::commands::scrub_rule`).
    pub async fn membership_scrub_candidates(
        &self,
        grace_cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<MembershipScrubCandidate>, ProjectionError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .fetch_candidates(Statement::MembershipScrubCandidates, grace_cutoff, limit)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(membership_id, created_at, rule)| MembershipScrubCandidate {
                    membership_id,
                    created_at,
                    rule,
                },
            )
            .collect())
    }

    /// Up to `limit` address changes the address-change rule allows to scrub, oldest change
    /// first: holding an address, and exported or changed before `grace_cutoff`
    /// (`address_change_scrub_candidates.sql`; the log confirms each with
    /// `domain::address_change::commands::scrub_rule`).
    pub async fn address_change_scrub_candidates(
        &self,
        grace_cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AddressChangeScrubCandidate>, ProjectionError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .fetch_candidates(Statement::AddressChangeScrubCandidates, grace_cutoff, limit)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(address_change_id, modified_at, rule)| AddressChangeScrubCandidate {
                    address_change_id,
                    modified_at,
                    rule,
                },
            )
            .collect())
    }

    /// Up to `limit` subscriptions the removal rule allows to remove, oldest first: exported,
    /// or made before `grace_cutoff` (`subscription_scrub_candidates.sql`; the log confirms
    /// each with `domain::subscription::commands::removal_rule`).
    pub async fn subscription_scrub_candidates(
        &self,
        grace_cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<SubscriptionScrubCandidate>, ProjectionError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .fetch_candidates(Statement::SubscriptionScrubCandidates, grace_cutoff, limit)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(subscription_id, created_at, rule)| SubscriptionScrubCandidate {
                    subscription_id,
                    created_at,
                    rule,
                },
            )
            .collect())
    }

    /// Runs one candidate statement: `(id, created at, rule)` rows.
    async fn fetch_candidates(
        &self,
        statement: Statement,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(u64, DateTime<Utc>, String)>, ProjectionError> {
        let rows = self
            .backend
            .fetch(
                self.backend.statement(statement),
                &[Value::Time(Some(cutoff)), Value::int(limit)],
                CANDIDATE_COLUMNS,
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    r[0].as_i64()? as u64,
                    r[1].as_time()?,
                    r[2].as_text()?.to_owned(),
                ))
            })
            .collect())
    }

    /// Removes what blanked rows leave behind: SQLite moves the zeroed pages (the connection
    /// runs with `secure_delete`) into the file and empties the WAL; PostgreSQL vacuums the
    /// tables that held personal data.
    pub async fn purge_residue(&self) -> Result<(), ProjectionError> {
        self.backend.purge_residue().await
    }
}

impl ReadModel {
    /// Runs one statement; for benchmarks that fill the read model directly.
    #[doc(hidden)]
    pub async fn execute_for_bench(&self, sql: &str) -> Result<(), ProjectionError> {
        self.backend
            .execute(sql, &[])
            .await
            .map(|_| ())
            .map_err(db_error)
    }
}
