//! The change log of a period for auditors' tools: one line per domain event whose
//! `occurred_at` lies in the period, with its envelope and the fields it changed: for
//! donation-related events with the donation id, from [`super::timeline`] (so personal data
//! shows exactly as in `ledger history`: decrypted while the key exists, `<scrubbed>` after);
//! for contribution-tracking events from [`super::contribution_tracking::timeline`]; for
//! membership applications from [`super::membership::timeline`] (their lines carry no
//! `donation_id`; the stream names the application).
//!
//! The log is streamed with `read_all` in pages; the timelines of recently seen donations are
//! cached (bounded), so memory does not grow with the log.

use std::collections::HashMap;
use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{AuditError, Change};
use crate::domain::address_change::{is_address_change_stream, AddressChangeCategory};
use crate::domain::membership::{is_membership_stream, MembershipCategory};
use crate::domain::subscription::{is_subscription_stream, SubscriptionCategory};
use crate::domain::{streams, DomainEvent};
use crate::privacy::Vault;
use crate::store::{Direction, EventLog, Position, RecordedEvent, StreamStart};

/// Events read from the log per page.
const PAGE: usize = 1000;
/// Donations and contribution-tracking records whose timelines are kept at most; the cache
/// is emptied when it is full.
const CACHED_TIMELINES: usize = 4096;
/// Payment-to-donation links kept at most.
const CACHED_PAYMENTS: usize = 100_000;

/// Errors of an audit export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or decoding the log failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Writing the output failed.
    #[error("writing the export failed")]
    Io(#[from] std::io::Error),
    /// Writing a CSV record failed.
    #[error("writing the CSV export failed")]
    Csv(#[from] csv::Error),
    /// The period is empty or reversed.
    #[error("invalid period: `from` ({from}) must be before `to` ({to})")]
    InvalidPeriod {
        /// Start (inclusive).
        from: DateTime<Utc>,
        /// End (exclusive).
        to: DateTime<Utc>,
    },
}

/// One event of the exported period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditLine {
    /// When it happened (envelope `occurredAt`).
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
    pub actor_id: String,
    /// Source.
    pub source: String,
    /// Correlation id.
    pub correlation_id: Uuid,
    /// Causation id.
    pub causation_id: Uuid,
    /// The donation the event concerns, when it concerns one.
    pub donation_id: Option<u64>,
    /// What the event changed on its donation or contribution-tracking record.
    pub changes: Vec<Change>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// The CSV header, in column order.
pub const CSV_HEADER: [&str; 12] = [
    "occurred_at",
    "position",
    "stream",
    "event_type",
    "actor_kind",
    "actor_id",
    "source",
    "correlation_id",
    "causation_id",
    "donation_id",
    "changed_fields",
    "changes",
];

/// Writes audit lines in one format.
pub struct AuditWriter<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(W),
}

impl<W: Write> AuditWriter<W> {
    /// A writer of `format` into `out` (CSV writes its header at once).
    pub fn new(format: Format, out: W) -> Result<Self, ExportError> {
        let inner = match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(CSV_HEADER)?;
                Inner::Csv(Box::new(w))
            }
            Format::Jsonl => Inner::Jsonl(out),
        };
        Ok(Self { inner })
    }

    /// Writes one line.
    pub fn write(&mut self, line: &AuditLine) -> Result<(), ExportError> {
        match &mut self.inner {
            Inner::Csv(w) => {
                let names: Vec<&str> = line.changes.iter().map(|c| c.field.as_str()).collect();
                let changes: Vec<String> = line
                    .changes
                    .iter()
                    .map(|c| format!("{}: {} → {}", c.field, c.before, c.after))
                    .collect();
                w.write_record([
                    line.occurred_at
                        .to_rfc3339_opts(SecondsFormat::Micros, true)
                        .as_str(),
                    &line.position.to_string(),
                    &line.stream,
                    &line.event_type,
                    &line.actor_kind,
                    &line.actor_id,
                    &line.source,
                    &line.correlation_id.to_string(),
                    &line.causation_id.to_string(),
                    &line.donation_id.map(|d| d.to_string()).unwrap_or_default(),
                    &names.join(";"),
                    &changes.join("; "),
                ])?;
            }
            Inner::Jsonl(w) => {
                serde_json::to_writer(&mut *w, line).map_err(std::io::Error::from)?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn finish(self) -> Result<W, ExportError> {
        match self.inner {
            Inner::Csv(w) => w.into_inner().map_err(|e| ExportError::Io(e.into_error())),
            Inner::Jsonl(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

/// What an export covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    /// Events read from the log.
    pub events_read: u64,
    /// Lines written (events in the period).
    pub lines: u64,
}

/// What an event's changes are computed on: a donation (across its streams) or a
/// contribution-tracking record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    Donation(u64),
    ContributionTracking(u64),
    Membership(u64),
    AddressChange(u64),
    Subscription(u64),
}

/// Resolves donation ids and per-event changes, caching recent timelines.
struct Changes<'a> {
    log: &'a dyn EventLog,
    vault: &'a Vault,
    timelines: HashMap<Subject, HashMap<Position, Vec<Change>>>,
    payments: HashMap<u64, Option<u64>>,
}

impl Changes<'_> {
    /// The donation or contribution-tracking record a domain event concerns.
    async fn subject_of(&mut self, event: &RecordedEvent) -> Result<Option<Subject>, AuditError> {
        use streams::Category::*;
        if MembershipCategory::of(&event.stream).is_some() {
            return Ok(streams::parse(&event.stream).map(|(_, id)| Subject::Membership(id)));
        }
        if AddressChangeCategory::of(&event.stream).is_some() {
            return Ok(streams::parse(&event.stream).map(|(_, id)| Subject::AddressChange(id)));
        }
        if SubscriptionCategory::of(&event.stream).is_some() {
            return Ok(streams::parse(&event.stream).map(|(_, id)| Subject::Subscription(id)));
        }
        let Some((category, id)) = streams::parse_domain(&event.stream) else {
            return Ok(None);
        };
        match category {
            Donation | Moderation | Deletion | Export | Scrub => Ok(Some(Subject::Donation(id))),
            ContributionTracking => Ok(Some(Subject::ContributionTracking(id))),
            Payment => {
                if let Some(d) = self.payments.get(&id) {
                    return Ok(d.map(Subject::Donation));
                }
                let first = self
                    .log
                    .read_stream(
                        &event.stream,
                        Direction::Forwards,
                        StreamStart::Beginning,
                        1,
                    )
                    .await?;
                let donation = first.first().and_then(|r| {
                    match DomainEvent::decode(&r.event_type, &r.payload) {
                        Ok(DomainEvent::PaymentInitiated(p)) => Some(p.donation_id),
                        _ => None,
                    }
                });
                if self.payments.len() >= CACHED_PAYMENTS {
                    self.payments.clear();
                }
                self.payments.insert(id, donation);
                Ok(donation.map(Subject::Donation))
            }
        }
    }

    /// What the event at `position` changed on `subject`.
    async fn changes(
        &mut self,
        subject: Subject,
        position: Position,
    ) -> Result<Vec<Change>, AuditError> {
        if !self.timelines.contains_key(&subject) {
            let timeline = match subject {
                Subject::Donation(id) => match super::load_donation(self.log, self.vault, id).await
                {
                    Ok(steps) => super::timeline(&steps),
                    // A moderation or payment stream whose donation stream is missing: the
                    // line is still exported, without changes.
                    Err(AuditError::NotFound(_)) => Vec::new(),
                    Err(e) => return Err(e),
                },
                Subject::ContributionTracking(id) => {
                    let steps = super::contribution_tracking::load(self.log, id).await?;
                    super::contribution_tracking::timeline(&steps)
                }
                Subject::Membership(id) => {
                    match super::membership::load_membership(self.log, self.vault, id).await {
                        Ok(steps) => super::membership::timeline(&steps),
                        // A moderation stream whose application stream is missing.
                        Err(AuditError::MembershipNotFound(_)) => Vec::new(),
                        Err(e) => return Err(e),
                    }
                }
                Subject::AddressChange(id) => {
                    use super::address_change as ac;
                    match ac::load_address_change(self.log, self.vault, id).await {
                        Ok(steps) => ac::timeline(&steps),
                        // An export or scrub stream whose address-change stream is missing.
                        Err(AuditError::AddressChangeNotFound(_)) => Vec::new(),
                        Err(e) => return Err(e),
                    }
                }
                Subject::Subscription(id) => {
                    use super::subscription as sub;
                    match sub::load_subscription(self.log, self.vault, id).await {
                        Ok(steps) => sub::timeline(&steps),
                        // An export or removal stream whose subscription stream is missing.
                        Err(AuditError::SubscriptionNotFound(_)) => Vec::new(),
                        Err(e) => return Err(e),
                    }
                }
            };
            if self.timelines.len() >= CACHED_TIMELINES {
                self.timelines.clear();
            }
            let entries = timeline
                .into_iter()
                .map(|e| (e.position, e.changes))
                .collect();
            self.timelines.insert(subject, entries);
        }
        Ok(self
            .timelines
            .get(&subject)
            .and_then(|t| t.get(&position))
            .cloned()
            .unwrap_or_default())
    }
}

/// Streams every domain event with `from <= occurred_at < to` to `emit`, in log order.
pub async fn export_period(
    log: &dyn EventLog,
    vault: &Vault,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    emit: &mut (dyn FnMut(AuditLine) -> Result<(), ExportError> + Send),
) -> Result<ExportSummary, ExportError> {
    if from >= to {
        return Err(ExportError::InvalidPeriod { from, to });
    }
    let mut changes = Changes {
        log,
        vault,
        timelines: HashMap::new(),
        payments: HashMap::new(),
    };
    let mut summary = ExportSummary {
        events_read: 0,
        lines: 0,
    };
    let mut next = 0;
    loop {
        let page = log.read_all(next, PAGE).await.map_err(AuditError::from)?;
        let done = page.len() < PAGE;
        for event in page {
            next = event.position + 1;
            summary.events_read += 1;
            // A foreign (KurrentDB client) event is not the ledger's to audit.
            let Some(m) = event.metadata.ledger() else {
                continue;
            };
            // The token index (`address_change_token-*`) is not audited: its events change
            // nothing but where a token points; nor are the subscription indexes (a code, a
            // keyed hash of an address).
            let audited = streams::is_domain_stream(&event.stream)
                || is_membership_stream(&event.stream)
                || is_address_change_stream(&event.stream)
                || is_subscription_stream(&event.stream);
            if m.occurred_at < from || m.occurred_at >= to || !audited {
                continue;
            }
            let subject = changes.subject_of(&event).await?;
            let line_changes = match subject {
                Some(s) => changes.changes(s, event.position).await?,
                None => Vec::new(),
            };
            let donation_id = match subject {
                Some(Subject::Donation(d)) => Some(d),
                _ => None,
            };
            emit(AuditLine {
                occurred_at: m.occurred_at,
                position: event.position,
                stream: event.stream.clone(),
                event_type: event.event_type.clone(),
                actor_kind: m.actor.kind.as_str().to_owned(),
                actor_id: m.actor.id.clone(),
                source: m.source.clone(),
                correlation_id: m.correlation_id,
                causation_id: m.causation_id,
                donation_id,
                changes: line_changes,
            })?;
            summary.lines += 1;
        }
        if done {
            return Ok(summary);
        }
    }
}
