//! One batch of the projector: load the rows the batch touches, fold the events into them in
//! memory, and write the changed rows and the checkpoint back in the same transaction.
//!
//! The dialects differ only in how a `Session` loads and writes rows (see `sqlite.rs`,
//! `postgres.rs`); everything decided here is dialect-neutral, so both databases end up with
//! the same rows.
//!
//! One concern, about 600 lines: how one batch folds every event type into rows (the row
//! logic itself is in `donation.rs`, `membership.rs` and `contribution_tracking.rs`, the
//! reason tables in `moderation_reasons.rs`, the cache in `cache.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::address_change::AddressChanges;
use super::backend::ReasonTable;
use super::backend::{Load, Session, Write};
use super::cache::{from_cache, Committed, RowCache};
use super::contribution_tracking::{Conflict, ContributionTrackingRow, Outcome};
use super::donation::{
    self, id, micros, moderation_identifier, DonationRow, PaymentRow, Rejection,
};
use super::membership::Memberships;
use super::moderation_reasons;
use super::rows::Value;
use super::subscription::Subscriptions;
use super::{DecodeError, ProjectionError};
use crate::domain::address_change::{self, is_address_change_stream, AddressChangeCategory};
use crate::domain::admission;
use crate::domain::membership::{is_membership_stream, MembershipCategory};
use crate::domain::moderation::ModerationState;
use crate::domain::subscription::{self, is_subscription_stream, SubscriptionCategory};
use crate::domain::validation::FieldError;
use crate::domain::{streams, DomainEvent};
use crate::store::{Position, RecordedEvent};

/// An event read from the log with its decoding.
pub(crate) struct Decoded {
    pub record: RecordedEvent,
    pub event: Result<DomainEvent, DecodeError>,
}

/// What a batch did.
#[derive(Debug, Default)]
pub(crate) struct BatchOutcome {
    /// Another projector moved the checkpoint first; nothing was written.
    pub raced: bool,
    /// Events applied or passed over as skipped.
    pub processed: usize,
    /// Of those, events an operator skipped.
    pub skipped: usize,
    /// The new checkpoint.
    pub checkpoint: Option<Position>,
    /// Refused contribution-tracking changes written in this batch.
    pub conflicts: Vec<Conflict>,
    /// The event the batch stopped at, if any (everything before it was committed).
    pub error: Option<ProjectionError>,
}

/// The rows of one batch, in memory.
#[derive(Default)]
pub(super) struct State {
    pub(super) donations: HashMap<i64, DonationRow>,
    pub(super) dirty_donations: BTreeSet<i64>,
    pub(super) created: Vec<i64>,
    pub(super) payments: HashMap<i64, PaymentRow>,
    pub(super) dirty_payments: BTreeSet<i64>,
    /// Each touched donation's moderation, folded by the domain (its open reasons are the
    /// `donation_moderation_reason` rows).
    reasons: HashMap<i64, ModerationState>,
    dirty_reasons: BTreeSet<i64>,
    pub(super) cts: HashMap<i64, ContributionTrackingRow>,
    pub(super) dirty_cts: BTreeSet<i64>,
    /// The membership applications the batch touches, with their open reasons.
    pub(super) memberships: Memberships,
    /// The address changes the batch touches.
    pub(super) address_changes: AddressChanges,
    /// The subscriptions the batch touches.
    pub(super) subscriptions: Subscriptions,
    conflicts: Vec<Conflict>,
    /// `donation_event` rows.
    log: Vec<Vec<Value>>,
    /// `membership_event` rows.
    membership_log: Vec<Vec<Value>>,
    /// `address_change_event` rows.
    address_change_log: Vec<Vec<Value>>,
}

/// The ids a batch needs loaded, collected from its decoded events.
#[derive(Default)]
struct Wanted {
    donations: BTreeSet<i64>,
    payments: BTreeSet<i64>,
    reasons: BTreeSet<i64>,
    cts: BTreeSet<i64>,
    memberships: BTreeSet<i64>,
    address_changes: BTreeSet<i64>,
    subscriptions: BTreeSet<i64>,
}

impl Wanted {
    fn collect(events: &[Decoded]) -> Self {
        use DomainEvent as E;
        let mut w = Self::default();
        let as_id = |v: u64| i64::try_from(v).ok();
        for d in events {
            let (Some((category, sid)), Ok(event)) = (streams::parse(&d.record.stream), &d.event)
            else {
                continue;
            };
            let Some(sid) = as_id(sid) else { continue };
            if is_membership_stream(&d.record.stream) {
                w.memberships.insert(sid);
                continue;
            }
            if is_address_change_stream(&d.record.stream) {
                w.address_changes.insert(sid);
                continue;
            }
            if is_subscription_stream(&d.record.stream) {
                w.subscriptions.insert(sid);
                continue;
            }
            match category {
                streams::category::PAYMENT => {
                    w.payments.insert(sid);
                }
                streams::category::CONTRIBUTION_TRACKING => {
                    w.cts.insert(sid);
                }
                streams::category::MODERATION => {
                    w.donations.insert(sid);
                    w.reasons.insert(sid);
                }
                _ => {
                    w.donations.insert(sid);
                }
            }
            let extra = match event {
                E::DonationCreated(e) => (Some(e.payment_id), None),
                E::FollowUpDonationCreated(e) => (Some(e.payment_id), None),
                E::PaymentInitiated(e) => (None, Some(e.donation_id)),
                E::FollowUpPaymentBooked(e) => {
                    (Some(e.child_payment_id), Some(e.child_donation_id))
                }
                _ => (None, None),
            };
            w.payments
                .extend(extra.0.and_then(as_id).filter(|&i| i != 0));
            w.donations
                .extend(extra.1.and_then(as_id).filter(|&i| i != 0));
        }
        w
    }
}

/// Loads, folds and writes one batch. `expected` is the checkpoint the events were read after.
/// With a `cache` (a rebuild), the per-entity rows (donation, payment, contribution tracking,
/// membership application, address change, subscription) come from and go back to it instead
/// of the database; the caller commits and then calls [`Committed::finish`].
pub(crate) async fn apply(
    session: &mut dyn Session,
    projector: &str,
    expected: Option<Position>,
    events: &[Decoded],
    cache: Option<&RowCache>,
) -> Result<(BatchOutcome, Committed), ProjectionError> {
    let mut outcome = BatchOutcome::default();
    let current = session.checkpoint(projector).await?;
    if current.map(|p| p as Position) != expected {
        outcome.raced = true;
        return Ok((outcome, Committed::default()));
    }
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok((outcome, Committed::default()));
    };
    let pos = |p: Position| i64::try_from(p).unwrap_or(i64::MAX);
    let skipped = session
        .skipped(
            projector,
            pos(first.record.position),
            pos(last.record.position),
        )
        .await?;

    let wanted = Wanted::collect(events);
    let mut state = State::default();
    load(session, &wanted, &mut state, cache).await?;

    let mut last_applied = None;
    for d in events {
        let rec = &d.record;
        let position = pos(rec.position);
        if skipped.contains(&position) {
            outcome.skipped += 1;
        } else if !streams::is_domain_stream(&rec.stream)
            && !is_membership_stream(&rec.stream)
            && !is_address_change_stream(&rec.stream)
            && !is_subscription_stream(&rec.stream)
        {
            // Streams outside the seven donation categories, the five membership ones, the
            // three address-change ones and the three subscription ones (e.g. `request-*`
            // idempotency records of the intake, the `address_change_token-*` index, the
            // subscription indexes) belong to other consumers; the read model has no rows for
            // them.
        } else {
            let applied = match &d.event {
                Ok(event) => admitted(rec, event).and_then(|()| state.apply(rec, position, event)),
                Err(e) => Err(format!("cannot decode: {e}")),
            };
            if let Err(reason) = applied {
                outcome.error = Some(ProjectionError::EventRejected {
                    projector: projector.to_owned(),
                    position: rec.position,
                    stream: rec.stream.clone(),
                    event_type: rec.event_type.clone(),
                    reason,
                });
                break;
            }
        }
        outcome.processed += 1;
        last_applied = Some(rec.position);
    }

    let mut evicted = None;
    if let Some(position) = last_applied {
        state.finish(session, cache.is_none()).await?;
        if let Some(cache) = cache {
            evicted = Some(cache.evict(session, &state).await?);
        }
        session
            .set_checkpoint(projector, pos(position), micros(Utc::now()))
            .await?;
    }
    outcome.checkpoint = last_applied.or(expected);
    outcome.conflicts = std::mem::take(&mut state.conflicts);
    Ok((outcome, Committed { state, evicted }))
}

/// Checks `event` against the admission rule before it is folded: a value no read-model
/// column can hold is refused here, naming the field, instead of failing the batch's
/// transaction (events written before the rule, or by another writer).
fn admitted(rec: &RecordedEvent, event: &DomainEvent) -> Result<(), Rejection> {
    let Some(metadata) = rec.metadata.ledger() else {
        return Err("carries a KurrentDB client's metadata, not the ledger's envelope".into());
    };
    let mut errors = admission::admit(event);
    errors.extend(admission::admit_actor_id(&metadata.actor.id));
    if let Some(rule) = admission::instant_misfit(metadata.occurred_at) {
        errors.push(FieldError::new("metadata.occurred_at", rule));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "breaks the admission rule: {}",
            admission::describe(&errors)
        ))
    }
}

async fn load(
    session: &mut dyn Session,
    wanted: &Wanted,
    state: &mut State,
    cache: Option<&RowCache>,
) -> Result<(), ProjectionError> {
    let ids = |set: &BTreeSet<i64>| set.iter().copied().collect::<Vec<_>>();
    let started_empty = cache.is_some_and(|c| c.started_empty);
    let payments = cache.map(|c| (&c.payments, started_empty));
    let missing = from_cache(&wanted.payments, &mut state.payments, payments);
    load_payments(session, &missing, state).await?;
    let mut donation_ids = wanted.donations.clone();
    donation_ids.extend(state.payments.values().map(|p| p.donation_id));
    let donations = cache.map(|c| (&c.donations, started_empty));
    let missing = from_cache(&donation_ids, &mut state.donations, donations);
    if !missing.is_empty() {
        for v in session.load(Load::Donation, &missing).await? {
            let d = DonationRow::from_values(&v);
            state.donations.insert(d.id, d);
        }
    }
    // The payments of loaded donations (a scrub blanks them, a sync reads them).
    let more: BTreeSet<i64> = state
        .donations
        .values()
        .map(|d| d.payment_id)
        .filter(|id| *id != 0 && !state.payments.contains_key(id))
        .collect();
    let missing = from_cache(&more, &mut state.payments, payments);
    load_payments(session, &missing, state).await?;
    let reasons = ids(&wanted.reasons);
    moderation_reasons::load(session, ReasonTable::Donation, &reasons, &mut state.reasons).await?;
    let memberships = cache.map(|c| (&c.memberships, started_empty));
    state
        .memberships
        .load(session, &wanted.memberships, memberships)
        .await?;
    let address_changes = cache.map(|c| (&c.address_changes, started_empty));
    state
        .address_changes
        .load(session, &wanted.address_changes, address_changes)
        .await?;
    let subscriptions = cache.map(|c| (&c.subscriptions, started_empty));
    state
        .subscriptions
        .load(session, &wanted.subscriptions, subscriptions)
        .await?;
    let cts = cache.map(|c| (&c.cts, started_empty));
    let missing = from_cache(&wanted.cts, &mut state.cts, cts);
    if !missing.is_empty() {
        for v in session.load(Load::ContributionTracking, &missing).await? {
            let row = ContributionTrackingRow::from_values(v);
            state.cts.insert(row.id, row);
        }
    }
    Ok(())
}

async fn load_payments(
    session: &mut dyn Session,
    ids: &[i64],
    state: &mut State,
) -> Result<(), ProjectionError> {
    if !ids.is_empty() {
        for v in session.load(Load::Payment, ids).await? {
            let p = PaymentRow::from_values(&v);
            state.payments.insert(p.id, p);
        }
    }
    Ok(())
}

/// The stream category an event belongs in.
fn category_of(event: &DomainEvent) -> &'static str {
    use streams::category as c;
    use DomainEvent as E;
    match event {
        E::DonationCreated(_)
        | E::DonorUpdated(_)
        | E::CommentAdded(_)
        | E::CommentPublished(_)
        | E::CommentRetracted(_)
        | E::FollowUpDonationCreated(_) => c::DONATION,
        E::PaymentInitiated(_)
        | E::PaymentBooked(_)
        | E::PaymentFailed(_)
        | E::PaymentCancelled(_)
        | E::PaymentRestored(_)
        | E::FollowUpPaymentBooked(_)
        | E::PaymentRefunded(_)
        | E::ChargebackReceived(_) => c::PAYMENT,
        E::ModerationReasonsRaised(_) | E::ModerationApproved(_) | E::ManuallyFlagged(_) => {
            c::MODERATION
        }
        E::DonationCancelled(_) | E::DonationDeleted(_) | E::DonationRestored(_) => c::DELETION,
        E::DonationExported(_) => c::EXPORT,
        E::PersonalDataScrubbed(_) => c::SCRUB,
        E::ContributionTrackingRecorded(_) | E::ContributionLinked(_) => c::CONTRIBUTION_TRACKING,
        // The membership context's own events (`membership.rs` checks its streams); here so
        // that a membership event in a donation stream is refused.
        E::MembershipApplied(_) => MembershipCategory::Application.as_str(),
        E::MembershipCancelled(_) | E::MembershipRestored(_) => {
            MembershipCategory::Cancellation.as_str()
        }
        E::MembershipExported(_) => MembershipCategory::Export.as_str(),
        // The address-change context's own events (`address_change.rs` checks its streams).
        E::AddressChangeCreated(_) | E::AddressChanged(_) | E::DonationReceiptOptedOut(_) => {
            AddressChangeCategory::AddressChange.as_str()
        }
        E::AddressChangeExported(_) => AddressChangeCategory::Export.as_str(),
        E::AddressChangeTokenIssued(_) => address_change::TOKEN_CATEGORY,
        // The subscription context's own events (`subscription.rs` checks its streams).
        E::SubscriptionCreated(_) | E::SubscriptionConfirmed(_) => {
            SubscriptionCategory::Subscription.as_str()
        }
        E::SubscriptionExported(_) => SubscriptionCategory::Export.as_str(),
        E::SubscriptionCodeIssued(_) => subscription::CODE_CATEGORY,
        E::SubscriptionEmailUsed(_) => subscription::EMAIL_CATEGORY,
    }
}

impl State {
    /// Applies one event; on a rejection nothing was changed.
    fn apply(
        &mut self,
        rec: &RecordedEvent,
        position: i64,
        event: &DomainEvent,
    ) -> Result<(), Rejection> {
        use DomainEvent as E;
        let (category, sid) = streams::parse(&rec.stream)
            .ok_or_else(|| "the stream name has no `category-id` form".to_owned())?;
        let sid = id(sid, "stream id")?;
        let at = micros(rec.occurred_at());
        if let Some(category) = MembershipCategory::of(&rec.stream) {
            self.memberships.apply(category, sid, event, at)?;
            self.membership_log
                .push(change_log_row(sid, rec, position, at));
            return Ok(());
        }
        if let Some(category) = AddressChangeCategory::of(&rec.stream) {
            self.address_changes.apply(category, sid, event, at)?;
            self.address_change_log
                .push(change_log_row(sid, rec, position, at));
            return Ok(());
        }
        if let Some(category) = SubscriptionCategory::of(&rec.stream) {
            return self.subscriptions.apply(category, sid, event, at);
        }
        let expected = category_of(event);
        if category != expected {
            return Err(format!(
                "a `{category}` stream cannot hold this event (it belongs in `{expected}`)"
            ));
        }
        match event {
            E::DonationCreated(e) => {
                check_same(e.donation_id, sid, "donation_id")?;
                if self.donations.contains_key(&sid) {
                    return Err(format!("donation {sid} was already created"));
                }
                let row = DonationRow::created(sid, e, at)?;
                self.insert_donation(row, rec, position, at);
            }
            E::FollowUpDonationCreated(e) => {
                check_same(e.donation_id, sid, "donation_id")?;
                if self.donations.contains_key(&sid) {
                    return Err(format!("donation {sid} was already created"));
                }
                let row = DonationRow::follow_up(sid, e, at)?;
                self.insert_donation(row, rec, position, at);
            }
            E::PaymentInitiated(e) => {
                check_same(e.payment_id, sid, "payment_id")?;
                if self.payments.contains_key(&sid) {
                    return Err(format!("payment {sid} was already initiated"));
                }
                let row = PaymentRow::initiated(sid, e, at)?;
                let donation = row.donation_id;
                self.payments.insert(sid, row);
                self.dirty_payments.insert(sid);
                self.touch_donation(donation, rec, position, at);
            }
            E::FollowUpPaymentBooked(e) => {
                let parent = self
                    .payments
                    .get(&sid)
                    .ok_or_else(|| format!("unknown payment {sid}"))?;
                let child = PaymentRow::follow_up(parent, e, at)?;
                if self.payments.contains_key(&child.id) {
                    return Err(format!("payment {} already exists", child.id));
                }
                let donation = parent.donation_id;
                self.dirty_payments.insert(child.id);
                self.payments.insert(child.id, child);
                self.touch_donation(donation, rec, position, at);
            }
            E::ContributionTrackingRecorded(e) => {
                check_same(e.contribution_tracking_id, sid, "contribution_tracking_id")?;
                let (mut row, existed) = self.take_ct(sid);
                let outcome = row.record(e, position, at);
                self.ct_outcome(row, existed, outcome)?;
            }
            E::ContributionLinked(e) => {
                if e.contribution_id == 0 {
                    return Err("contribution_id is 0".into());
                }
                let contribution_id = id(e.contribution_id, "contribution id")?;
                let (mut row, existed) = self.take_ct(sid);
                let outcome = row.link(contribution_id, position, at);
                self.ct_outcome(row, existed, Ok(outcome))?;
            }
            _ if expected == streams::category::PAYMENT => {
                let payment = self
                    .payments
                    .get_mut(&sid)
                    .ok_or_else(|| format!("unknown payment {sid}"))?;
                payment.apply(event, at)?;
                let donation = payment.donation_id;
                self.dirty_payments.insert(sid);
                self.touch_donation(donation, rec, position, at);
            }
            _ => {
                // Checked before anything changes: moderation identifiers.
                if let E::ModerationReasonsRaised(e) = event {
                    for r in &e.reasons {
                        moderation_identifier(r.identifier)?;
                    }
                }
                let row = self
                    .donations
                    .get_mut(&sid)
                    .ok_or_else(|| format!("unknown donation {sid}"))?;
                row.apply(event, at)?;
                let payment_id = row.payment_id;
                self.dirty_donations.insert(sid);
                if category == streams::category::MODERATION {
                    self.reasons.entry(sid).or_default().apply(event);
                    self.dirty_reasons.insert(sid);
                }
                if matches!(event, E::PersonalDataScrubbed(_)) {
                    if let Some(p) = self.payments.get_mut(&payment_id) {
                        p.blank_personal(at);
                        self.dirty_payments.insert(payment_id);
                    }
                }
                self.log(sid, rec, position, at);
            }
        }
        Ok(())
    }

    fn insert_donation(
        &mut self,
        row: DonationRow,
        rec: &RecordedEvent,
        position: i64,
        at: DateTime<Utc>,
    ) {
        let id = row.id;
        self.donations.insert(id, row);
        self.dirty_donations.insert(id);
        self.created.push(id);
        self.log(id, rec, position, at);
    }

    /// Records that a payment event changed donation `id` (if its row exists yet).
    fn touch_donation(&mut self, id: i64, rec: &RecordedEvent, position: i64, at: DateTime<Utc>) {
        if let Some(row) = self.donations.get_mut(&id) {
            row.touch(at);
            self.dirty_donations.insert(id);
        }
        self.log(id, rec, position, at);
    }

    /// Takes contribution-tracking row `id` out of the batch (a new empty one if it has none)
    /// for an event to change in place, and whether it existed; [`State::ct_outcome`] puts it
    /// back. Moving instead of copying: the row is the batch's own copy already.
    fn take_ct(&mut self, id: i64) -> (ContributionTrackingRow, bool) {
        match self.cts.remove(&id) {
            Some(row) => (row, true),
            None => (ContributionTrackingRow::new(id), false),
        }
    }

    /// Puts a row taken with [`State::take_ct`] back after an event: changed, it is marked for
    /// writing; unchanged or refused (the row methods change nothing then), an existing row
    /// goes back as it was and a new one is dropped.
    fn ct_outcome(
        &mut self,
        row: ContributionTrackingRow,
        existed: bool,
        outcome: Result<Outcome, Rejection>,
    ) -> Result<(), Rejection> {
        let changed = matches!(outcome, Ok(Outcome::Changed));
        if changed {
            self.dirty_cts.insert(row.id);
        }
        if changed || existed {
            self.cts.insert(row.id, row);
        }
        match outcome? {
            Outcome::Refused(conflict) => self.conflicts.push(conflict),
            Outcome::Changed | Outcome::Unchanged => {}
        }
        Ok(())
    }

    fn log(&mut self, donation_id: i64, rec: &RecordedEvent, position: i64, at: DateTime<Utc>) {
        self.log
            .push(change_log_row(donation_id, rec, position, at));
    }

    /// Mirrors payment states into donations, numbers new tracking pairs, and writes every
    /// changed row (the per-entity rows only with `write_rows`; otherwise the row cache keeps
    /// them, and only the open reasons, the conflicts and the change logs are written).
    async fn finish(
        &mut self,
        session: &mut dyn Session,
        write_rows: bool,
    ) -> Result<(), ProjectionError> {
        for pid in &self.dirty_payments {
            let p = &self.payments[pid];
            if self
                .donations
                .get(&p.donation_id)
                .is_some_and(|d| d.payment_id == p.id)
            {
                self.dirty_donations.insert(p.donation_id);
            }
        }
        for did in &self.dirty_donations {
            let d = self
                .donations
                .get_mut(did)
                .expect("dirty donations are loaded");
            if let Some(p) = self.payments.get(&d.payment_id) {
                d.sync_payment(p);
            }
        }

        // donation_tracking: ids continue from the highest, in order of first appearance.
        let mut pairs: Vec<(String, String)> = Vec::new();
        for did in &self.created {
            if let Some(key) = self.donations[did].tracking_key() {
                if !pairs.contains(&key) {
                    pairs.push(key);
                }
            }
        }
        if !pairs.is_empty() {
            let (existing, mut max_id) = session.tracking(&pairs).await?;
            let mut ids: BTreeMap<(String, String), i64> =
                existing.into_iter().map(|(i, c, k)| ((c, k), i)).collect();
            let mut new_rows = Vec::new();
            for key in pairs {
                if let std::collections::btree_map::Entry::Vacant(slot) = ids.entry(key) {
                    max_id += 1;
                    new_rows.push(vec![
                        Value::int(max_id),
                        Value::text(&slot.key().0),
                        Value::text(&slot.key().1),
                    ]);
                    slot.insert(max_id);
                }
            }
            session.write(Write::DonationTracking, new_rows).await?;
            for did in &self.created {
                let d = self
                    .donations
                    .get_mut(did)
                    .expect("created donations are loaded");
                d.tracking_id = d.tracking_key().and_then(|k| ids.get(&k).copied());
            }
        }

        let rows = |set: &BTreeSet<i64>, f: &dyn Fn(i64) -> Vec<Value>| -> Vec<Vec<Value>> {
            set.iter().map(|id| f(*id)).collect()
        };
        if write_rows {
            let donations = rows(&self.dirty_donations, &|id| self.donations[&id].to_values());
            session.write(Write::Donation, donations).await?;
            let payments = rows(&self.dirty_payments, &|id| self.payments[&id].to_values());
            session.write(Write::Payment, payments).await?;
            let cts = rows(&self.dirty_cts, &|id| self.cts[&id].to_values());
            session.write(Write::ContributionTracking, cts).await?;
            self.memberships.write_rows(session).await?;
            self.address_changes.write(session).await?;
            self.subscriptions.write(session).await?;
        }
        let reasons = self
            .dirty_reasons
            .iter()
            .map(|id| (*id, &self.reasons[id].open_reasons));
        moderation_reasons::replace(session, ReasonTable::Donation, reasons).await?;
        self.memberships.write_reasons(session).await?;
        let conflicts: Vec<Vec<Value>> = self.conflicts.iter().map(Conflict::to_values).collect();
        session.write(Write::Conflict, conflicts).await?;
        write_change_log(session, Write::DonationEvent, &mut self.log, write_rows).await?;
        write_change_log(
            session,
            Write::MembershipEvent,
            &mut self.membership_log,
            write_rows,
        )
        .await?;
        write_change_log(
            session,
            Write::AddressChangeEvent,
            &mut self.address_change_log,
            write_rows,
        )
        .await
    }
}

/// A change-log row (`donation_event`, `membership_event`, `address_change_event`: the same
/// columns): who changed
/// `subject_id` with the event at `position`, and when.
fn change_log_row(
    subject_id: i64,
    rec: &RecordedEvent,
    position: i64,
    at: DateTime<Utc>,
) -> Vec<Value> {
    // Admitted events carry the ledger's envelope (see `admitted`).
    let actor = rec.metadata.ledger().map(|m| &m.actor);
    vec![
        Value::int(subject_id),
        Value::int(position),
        Value::text(&rec.stream),
        Value::text(&rec.event_type),
        Value::text(actor.map_or("", |a| a.kind.as_str())),
        Value::text(actor.map_or("", |a| a.id.as_str())),
        Value::Time(Some(at)),
    ]
}

/// Writes the change-log rows a batch collected for one context's table (`what`).
async fn write_change_log(
    session: &mut dyn Session,
    what: Write,
    log: &mut Vec<Vec<Value>>,
    write_rows: bool,
) -> Result<(), ProjectionError> {
    // In key order: the change log's primary-key index is filled page by page instead of at
    // random places (the log itself comes in position order).
    log.sort_unstable_by_key(|r| (r[0].as_i64(), r[1].as_i64()));
    let log = std::mem::take(log);
    if write_rows {
        session.write(what, log).await
    } else {
        // Write-back (a rebuild's fresh tables): nothing can be in the way.
        session.insert_new(what, log).await
    }
}

/// Refuses a payload whose id (`field`, 0 when absent) is not the stream's.
pub(super) fn check_same(payload_id: u64, stream_id: i64, field: &str) -> Result<(), Rejection> {
    if payload_id != 0 && donation::id(payload_id, field)? != stream_id {
        return Err(format!(
            "{field} {payload_id} in the payload differs from the stream's id {stream_id}"
        ));
    }
    Ok(())
}
