//! Audit: the full timeline of a donation across its streams, what each event changed, and the
//! donation's state as of a time or a log position. Contribution tracking has its own timeline
//! in [`contribution_tracking`].
//!
//! Personal data is decrypted with the keys that exist now: after a scrub, every step of the
//! history shows the donor as scrubbed, because nothing can read the sealed units any more.

pub mod address_change;
pub mod contribution_tracking;
pub mod export;
pub mod membership;
pub mod subscription;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::view::DonationView;

use crate::privacy::Vault;
use crate::repository::{self, LoadError};
use crate::store::{EventLog, Position};

/// What shows in place of personal data that can no longer be decrypted.
pub const SCRUBBED: &str = "<scrubbed>";

/// Errors of audit reads.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// No such donation in the log.
    #[error("donation {0} not found")]
    NotFound(u64),
    /// No such membership application in the log.
    #[error("membership application {0} not found")]
    MembershipNotFound(u64),
    /// No such address change in the log.
    #[error("address change {0} not found")]
    AddressChangeNotFound(u64),
    /// No such subscription in the log.
    #[error("subscription {0} not found")]
    SubscriptionNotFound(u64),
    /// The log failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A stored event does not decode.
    #[error("event at position {position} ({event_type} in {stream}) does not decode: {source}")]
    Decode {
        /// Where.
        position: Position,
        /// Its type.
        event_type: String,
        /// Its stream.
        stream: String,
        /// Why.
        source: crate::domain::CodecError,
    },
    /// Decryption failed.
    #[error(transparent)]
    Privacy(#[from] crate::privacy::PrivacyError),
}

/// One event of a donation's history: as recorded, and decoded (decrypted where its key
/// still exists).
pub use crate::repository::Step;

impl From<LoadError> for AuditError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Store(e) => Self::Store(e),
            LoadError::Decode {
                position,
                event_type,
                stream,
                source,
            } => Self::Decode {
                position,
                event_type,
                stream,
                source,
            },
        }
    }
}

/// A field that an event changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Field name.
    pub field: String,
    /// Value before (empty when unset).
    pub before: String,
    /// Value after.
    pub after: String,
}

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Global log position.
    pub position: Position,
    /// Stream.
    pub stream: String,
    /// Versioned event type.
    pub event_type: String,
    /// Actor kind.
    pub actor_kind: String,
    /// Actor id.
    pub actor: String,
    /// Source.
    pub source: String,
    /// What changed.
    pub changes: Vec<Change>,
}

/// Reads every event of a donation's streams (donation, its payment, moderation, deletion,
/// export, scrub), decrypts what can still be decrypted, in global commit order.
pub async fn load_donation(
    log: &dyn EventLog,
    vault: &Vault,
    donation_id: u64,
) -> Result<Vec<Step>, AuditError> {
    let mut steps = load_donation_sealed(log, donation_id).await?;
    vault.unseal(steps.iter_mut().map(|s| &mut s.event)).await?;
    Ok(steps)
}

/// Like [`load_donation`] but leaves personal data sealed (for decisions that need states only).
pub async fn load_donation_sealed(
    log: &dyn EventLog,
    donation_id: u64,
) -> Result<Vec<Step>, AuditError> {
    let loaded = repository::load_donation(log, donation_id)
        .await?
        .ok_or(AuditError::NotFound(donation_id))?;
    Ok(loaded.into_steps_in_commit_order())
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The fields of a combined view, flattened for display and diffing.
pub fn fields(view: &DonationView) -> BTreeMap<&'static str, String> {
    let d = &view.donation;
    let mut f = BTreeMap::new();
    f.insert("amount_cents", opt(d.amount.as_ref().map(|m| m.cents)));
    f.insert(
        "currency",
        opt(d.amount.as_ref().map(|m| m.currency.clone())),
    );
    f.insert("interval_months", d.interval_months.to_string());
    f.insert("payment_method", opt(d.payment_method.map(|m| m.as_str())));
    f.insert("payment_id", d.payment_id.to_string());
    f.insert("payment_state", view.payment.status.as_str().to_owned());
    f.insert(
        "valuation_date",
        opt(view.payment.valuation_date.map(|t| t.to_rfc3339())),
    );
    f.insert("deletion_state", view.deletion.as_str().to_owned());
    f.insert(
        "moderation_state",
        view.moderation.status().as_str().to_owned(),
    );
    f.insert(
        "moderation_reasons",
        view.moderation
            .open_reasons
            .iter()
            .map(|r| format!("{}({})", r.identifier_name(), r.source))
            .collect::<Vec<_>>()
            .join(" "),
    );
    f.insert("is_exported", view.is_exported().to_string());
    f.insert(
        "exported_at",
        opt(view.export.exported_at.map(|t| t.to_rfc3339())),
    );
    f.insert(
        "export_batch",
        view.export.batch_id.clone().unwrap_or_default(),
    );
    f.insert("is_scrubbed", view.is_scrubbed().to_string());
    f.insert("donor_kind", d.donor.kind.as_str().to_owned());
    f.insert("donor", view.donor_display().as_str().to_owned());
    f.insert("salutation", d.donor.salutation.clone());
    f.insert("wants_newsletter", d.donor.wants_newsletter.to_string());
    f.insert("wants_receipt", d.donor.wants_receipt.to_string());
    let scrubbed = view.is_scrubbed() && d.personal.is_none();
    let personal = |get: fn(&crate::proto::events::PersonalData) -> &String| -> String {
        match &d.personal {
            Some(p) => get(p).clone(),
            None if scrubbed => SCRUBBED.to_owned(),
            None => String::new(),
        }
    };
    f.insert("first_name", personal(|p| &p.first_name));
    f.insert("last_name", personal(|p| &p.last_name));
    f.insert("company_name", personal(|p| &p.company_name));
    f.insert("street", personal(|p| &p.street));
    f.insert("postcode", personal(|p| &p.postcode));
    f.insert("city", personal(|p| &p.city));
    f.insert("email", personal(|p| &p.email));
    if let Some(c) = &d.comment {
        let text = match c.text() {
            Some(t) => t.to_owned(),
            None if scrubbed => SCRUBBED.to_owned(),
            None => String::new(),
        };
        f.insert("comment", text);
        f.insert("comment_is_public", c.is_public.to_string());
    }
    if let Some(t) = &d.tracking {
        f.insert("campaign", t.campaign.clone());
        f.insert("keyword", t.keyword.clone());
    }
    f.insert("legacy_status", view.legacy_status().to_string());
    f
}

/// The timeline of `steps`: each folded into `state` with `apply`, with the fields (flattened
/// by `fields`) it changed. A field missing on one side reads as empty.
fn timeline_with<S>(
    steps: &[Step],
    mut state: S,
    apply: impl Fn(&mut S, &Step),
    fields: impl Fn(&S) -> BTreeMap<&'static str, String>,
) -> Vec<HistoryEntry> {
    let mut before = fields(&state);
    let mut out = Vec::with_capacity(steps.len());
    for step in steps {
        apply(&mut state, step);
        let after = fields(&state);
        let changes = after
            .iter()
            .filter(|(k, v)| before.get(*k).map(String::as_str).unwrap_or("") != v.as_str())
            .map(|(k, v)| Change {
                field: (*k).to_owned(),
                before: before.get(k).cloned().unwrap_or_default(),
                after: v.clone(),
            })
            .collect();
        // A donation's streams hold the ledger's envelopes only (the KurrentDB port writes
        // foreign metadata outside the ledger's categories); an empty actor marks the exception.
        let m = step.recorded.metadata.ledger();
        out.push(HistoryEntry {
            occurred_at: step.recorded.occurred_at(),
            position: step.recorded.position,
            stream: step.recorded.stream.clone(),
            event_type: step.recorded.event_type.clone(),
            actor_kind: m.map_or("", |m| m.actor.kind.as_str()).to_owned(),
            actor: m.map_or_else(String::new, |m| m.actor.id.clone()),
            source: m.map_or_else(String::new, |m| m.source.clone()),
            changes,
        });
        before = after;
    }
    out
}

/// The timeline with what each step changed.
pub fn timeline(steps: &[Step]) -> Vec<HistoryEntry> {
    timeline_with(
        steps,
        DonationView::default(),
        |view, step| view.apply(&step.recorded.stream, &step.event),
        fields,
    )
}

/// Where to stop folding for a state-as-of query.
#[derive(Debug, Clone, Copy)]
pub enum AsOf {
    /// Events that happened at or before this time.
    Time(DateTime<Utc>),
    /// Events at or before this global position.
    Position(Position),
}

/// The combined view folded from all steps.
pub fn view(steps: &[Step]) -> DonationView {
    let mut view = DonationView::default();
    for step in steps {
        view.apply(&step.recorded.stream, &step.event);
    }
    view
}

impl AsOf {
    /// Whether `step` happened at or before this point.
    pub fn includes(&self, step: &Step) -> bool {
        match *self {
            AsOf::Time(t) => step.recorded.occurred_at() <= t,
            AsOf::Position(p) => step.recorded.position <= p,
        }
    }
}

/// The combined view folded from the steps up to `as_of`.
pub fn state_as_of(steps: &[Step], as_of: AsOf) -> DonationView {
    let mut view = DonationView::default();
    for step in steps.iter().filter(|s| as_of.includes(s)) {
        view.apply(&step.recorded.stream, &step.event);
    }
    view
}
