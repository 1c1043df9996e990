//! One batch of the projector: load the rows the batch touches, fold the events into them in
//! memory, and write the changed rows and the checkpoint back in the same transaction.
//!
//! The dialects differ only in how a `Session` loads and writes rows (see `sqlite.rs`,
//! `postgres.rs`); everything decided here is dialect-neutral, so both databases end up with
//! the same rows.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::contribution_tracking::{Conflict, ContributionTrackingRow, Outcome};
use super::donation::{self, id, moderation_identifier, DonationRow, PaymentRow, Rejection};
use super::rows::Value;
use super::{DecodeError, ProjectionError};
use crate::domain::admission;
use crate::domain::moderation::{ModerationIdentifier, MANUAL_FLAG_SOURCE};
use crate::domain::validation::FieldError;
use crate::domain::{streams, DomainEvent};
use crate::store::{Position, RecordedEvent};

/// The row sets a `Session` loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    Donation,
    Payment,
    ContributionTracking,
    ModerationReason,
}

/// The statements a `Session` writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    DonationTracking,
    Donation,
    Payment,
    ModerationReason,
    DonationEvent,
    ContributionTracking,
    Conflict,
}

/// One read-model transaction, in one dialect.
#[async_trait::async_trait]
pub(crate) trait Session: Send {
    /// The projector's checkpoint (creating its row), locked until commit.
    async fn checkpoint(&mut self, projector: &str) -> Result<Option<i64>, ProjectionError>;
    /// Positions an operator skipped, between `from` and `to` inclusive.
    async fn skipped(
        &mut self,
        projector: &str,
        from: i64,
        to: i64,
    ) -> Result<HashSet<i64>, ProjectionError>;
    /// Rows of `what` whose key is one of `ids`, as values in layout order.
    async fn load(&mut self, what: Load, ids: &[i64]) -> Result<Vec<Vec<Value>>, ProjectionError>;
    /// Existing `donation_tracking` rows of `pairs`, and the highest id.
    async fn tracking(
        &mut self,
        pairs: &[(String, String)],
    ) -> Result<(Vec<(i64, String, String)>, i64), ProjectionError>;
    /// Writes rows with one of the projection statements (multi-row).
    /// Writes `rows` (taken by value: a driver binds their text without copying it again).
    async fn write(&mut self, what: Write, rows: Vec<Vec<Value>>) -> Result<(), ProjectionError>;
    /// Inserts rows known to be absent from their table (what a write-back projector writes
    /// for the first time into its fresh tables, and the change log), the fastest way the
    /// dialect has. By default the same as [`Session::write`].
    async fn insert_new(
        &mut self,
        what: Write,
        rows: Vec<Vec<Value>>,
    ) -> Result<(), ProjectionError> {
        self.write(what, rows).await
    }
    /// Deletes the moderation reasons of `donation_ids`.
    async fn delete_reasons(&mut self, donation_ids: &[i64]) -> Result<(), ProjectionError>;
    /// Stores the checkpoint.
    async fn set_checkpoint(
        &mut self,
        projector: &str,
        position: i64,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError>;
    /// Commits the transaction.
    async fn commit(self: Box<Self>) -> Result<(), ProjectionError>;
}

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
struct State {
    donations: HashMap<i64, DonationRow>,
    dirty_donations: BTreeSet<i64>,
    created: Vec<i64>,
    payments: HashMap<i64, PaymentRow>,
    dirty_payments: BTreeSet<i64>,
    reasons: HashMap<i64, BTreeSet<(String, String)>>,
    dirty_reasons: BTreeSet<i64>,
    cts: HashMap<i64, ContributionTrackingRow>,
    dirty_cts: BTreeSet<i64>,
    conflicts: Vec<Conflict>,
    log: Vec<Vec<Value>>,
}

/// Donation, payment and contribution-tracking rows a rebuild keeps in memory between batches
/// (write-back): a row is written once when it leaves the cache or when the rebuild catches
/// up, not after every batch that touched it, and a later batch finds it here instead of
/// loading it back.
///
/// Only for tables nobody reads before the end (a rebuild's fresh tables, a verify's scratch
/// database): their checkpoint runs ahead of the rows still held here, and a crash discards
/// the whole fill anyway. A batch works on copies of cached rows; the cache takes the new
/// versions only after the batch's transaction committed, so a failed batch can be retried
/// against the cache as it was. Rows leave it (oldest ids first) only in a committed
/// transaction that wrote them.
#[derive(Debug, Default)]
pub(crate) struct RowCache {
    capacity: usize,
    donations: CachedTable<DonationRow>,
    payments: CachedTable<PaymentRow>,
    cts: CachedTable<ContributionTrackingRow>,
    /// Whether the tables held no rows when the projector started (no checkpoint yet): then
    /// a row that is neither cached nor evicted does not exist, and is not looked for.
    started_empty: bool,
}

/// The cached rows of one table.
#[derive(Debug)]
struct CachedTable<R> {
    rows: BTreeMap<i64, R>,
    /// Rows changed since they were last written.
    dirty: BTreeSet<i64>,
    /// Rows written to the database: when they left the cache, or by a flush. (With a table
    /// that started empty, a row not in here is not in the table.)
    in_database: HashSet<i64>,
}

impl<R> Default for CachedTable<R> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            dirty: BTreeSet::new(),
            in_database: HashSet::new(),
        }
    }
}

impl<R: CachedRow> CachedTable<R> {
    /// Copies the cached rows of `ids` into `into` and returns the ids to load from the
    /// database (those it may hold).
    fn copy_into(
        &self,
        ids: &BTreeSet<i64>,
        into: &mut HashMap<i64, R>,
        started_empty: bool,
    ) -> Vec<i64> {
        let mut missing = Vec::new();
        for &id in ids {
            if let Some(row) = self.rows.get(&id) {
                into.insert(id, row.clone());
            } else if !started_empty || self.in_database.contains(&id) {
                missing.push(id);
            }
        }
        missing
    }

    /// Rows over capacity (after the batch's `touched` rows join the cache), oldest first,
    /// that the batch did not touch.
    fn victims(&self, touched: &HashMap<i64, R>, capacity: usize) -> Vec<i64> {
        let new = touched
            .keys()
            .filter(|id| !self.rows.contains_key(id))
            .count();
        let total = self.rows.len() + new;
        if total <= capacity {
            return Vec::new();
        }
        // Down to three quarters, so eviction happens in bulk every few batches.
        let excess = total - capacity * 3 / 4;
        self.rows
            .keys()
            .filter(|id| !touched.contains_key(id))
            .take(excess)
            .copied()
            .collect()
    }

    /// The column values of those of `ids` that are dirty, in the order of `ids`: the rows
    /// never written before (only when the table `started_empty`: then a row that never left
    /// the cache is not in the database), and the rows to write over.
    fn dirty_values<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a i64>,
        started_empty: bool,
    ) -> DirtyRows {
        let mut out = DirtyRows::default();
        for id in ids.into_iter().filter(|id| self.dirty.contains(id)) {
            let values = self.rows[id].values();
            if started_empty && !self.in_database.contains(id) {
                out.new.push(values);
            } else {
                out.rewritten.push(values);
            }
        }
        out
    }

    /// Every row waiting to be written.
    fn all_dirty_values(&self, started_empty: bool) -> DirtyRows {
        self.dirty_values(&self.dirty, started_empty)
    }

    /// After a committed flush: every dirty row is now in the database.
    fn flushed(&mut self) {
        self.in_database.extend(std::mem::take(&mut self.dirty));
    }

    /// After a committed batch: drops the `evicted` rows and takes the batch's versions.
    fn absorb(
        &mut self,
        evicted: Vec<i64>,
        touched: &mut HashMap<i64, R>,
        dirty: &mut BTreeSet<i64>,
    ) {
        for id in evicted {
            self.rows.remove(&id);
            self.dirty.remove(&id);
            self.in_database.insert(id);
        }
        self.dirty.extend(std::mem::take(dirty));
        self.rows.extend(touched.drain());
    }
}

/// Dirty cached rows as they are written: inserted as new, or written over.
#[derive(Default)]
struct DirtyRows {
    new: Vec<Vec<Value>>,
    rewritten: Vec<Vec<Value>>,
}

impl DirtyRows {
    /// Writes both kinds (the new ones with [`Session::insert_new`]), `chunk` rows per call.
    async fn write(
        self,
        session: &mut dyn Session,
        what: Write,
        chunk: usize,
    ) -> Result<(), ProjectionError> {
        for (new, mut rows) in [(true, self.new), (false, self.rewritten)] {
            while !rows.is_empty() {
                let rest = rows.split_off(rows.len().min(chunk));
                let rows = std::mem::replace(&mut rows, rest);
                if new {
                    session.insert_new(what, rows).await?;
                } else {
                    session.write(what, rows).await?;
                }
            }
        }
        Ok(())
    }
}

/// Writes the dirty rows of each cached table, `chunk` rows per call.
async fn write_tables(
    session: &mut dyn Session,
    tables: [(Write, DirtyRows); 3],
    chunk: usize,
) -> Result<(), ProjectionError> {
    for (what, rows) in tables {
        rows.write(session, what, chunk).await?;
    }
    Ok(())
}

/// What leaves the cache when a batch commits.
#[derive(Default)]
struct Eviction {
    donations: Vec<i64>,
    payments: Vec<i64>,
    cts: Vec<i64>,
}

impl RowCache {
    /// A cache of up to `capacity` rows of each table.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ..Self::default()
        }
    }

    /// Records whether the tables were empty when the projector started (its first step found
    /// no checkpoint).
    pub(crate) fn set_started_empty(&mut self, empty: bool) {
        self.started_empty = empty;
    }

    /// Whether rows are waiting to be written.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.donations.dirty.is_empty()
            || !self.payments.dirty.is_empty()
            || !self.cts.dirty.is_empty()
    }

    /// Rows over capacity (after this batch's `state` joins the cache), oldest first, that the
    /// batch did not touch; writes the dirty ones in the batch's transaction.
    async fn evict(
        &self,
        session: &mut dyn Session,
        state: &State,
    ) -> Result<Eviction, ProjectionError> {
        let out = Eviction {
            donations: self.donations.victims(&state.donations, self.capacity),
            payments: self.payments.victims(&state.payments, self.capacity),
            cts: self.cts.victims(&state.cts, self.capacity),
        };
        let empty = self.started_empty;
        let tables = [
            (
                Write::Donation,
                self.donations.dirty_values(&out.donations, empty),
            ),
            (
                Write::Payment,
                self.payments.dirty_values(&out.payments, empty),
            ),
            (
                Write::ContributionTracking,
                self.cts.dirty_values(&out.cts, empty),
            ),
        ];
        write_tables(session, tables, usize::MAX).await?;
        Ok(out)
    }

    /// After the batch committed: drops what was evicted and takes the batch's rows.
    fn absorb(&mut self, state: &mut State, evicted: Eviction) {
        self.donations.absorb(
            evicted.donations,
            &mut state.donations,
            &mut state.dirty_donations,
        );
        self.payments.absorb(
            evicted.payments,
            &mut state.payments,
            &mut state.dirty_payments,
        );
        self.cts
            .absorb(evicted.cts, &mut state.cts, &mut state.dirty_cts);
    }

    /// Writes every row still waiting (when the rebuild has caught up). The caller commits,
    /// then calls [`RowCache::flushed`].
    pub(crate) async fn flush(&self, session: &mut dyn Session) -> Result<(), ProjectionError> {
        let empty = self.started_empty;
        let tables = [
            (Write::Donation, self.donations.all_dirty_values(empty)),
            (Write::Payment, self.payments.all_dirty_values(empty)),
            (
                Write::ContributionTracking,
                self.cts.all_dirty_values(empty),
            ),
        ];
        write_tables(session, tables, FLUSH_CHUNK).await
    }

    /// Marks everything written after a committed [`RowCache::flush`]: the rows stay cached,
    /// and are now in the database too (a later change writes over them).
    pub(crate) fn flushed(&mut self) {
        self.donations.flushed();
        self.payments.flushed();
        self.cts.flushed();
    }
}

/// A row the cache holds: written as its column values.
trait CachedRow: Clone {
    fn values(&self) -> Vec<Value>;
}

impl CachedRow for DonationRow {
    fn values(&self) -> Vec<Value> {
        self.to_values()
    }
}

impl CachedRow for PaymentRow {
    fn values(&self) -> Vec<Value> {
        self.to_values()
    }
}

impl CachedRow for ContributionTrackingRow {
    fn values(&self) -> Vec<Value> {
        self.to_values()
    }
}

/// Rows per write call when the cache is flushed (bounds the memory of the bound values).
const FLUSH_CHUNK: usize = 10_000;

/// The ids a batch needs loaded, collected from its decoded events.
#[derive(Default)]
struct Wanted {
    donations: BTreeSet<i64>,
    payments: BTreeSet<i64>,
    reasons: BTreeSet<i64>,
    cts: BTreeSet<i64>,
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.timestamp_subsec_nanos() / 1000 * 1000;
    DateTime::from_timestamp(t.timestamp(), nanos).unwrap_or(t)
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
/// With a `cache` (a rebuild), donation and payment rows come from and go back to it instead
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
        } else if !streams::is_domain_stream(&rec.stream) {
            // Streams outside the seven domain categories (e.g. `request-*` idempotency
            // records of the intake) belong to other consumers; the read model has no rows
            // for them.
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
    let mut errors = admission::admit(event);
    errors.extend(admission::admit_actor_id(&rec.metadata.actor.id));
    if let Some(rule) = admission::instant_misfit(rec.metadata.occurred_at) {
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

/// What a batch leaves for the row cache once its transaction has committed.
#[derive(Default)]
pub(crate) struct Committed {
    state: State,
    evicted: Option<Eviction>,
}

impl Committed {
    /// Hands the batch's rows to the cache (call only after the commit succeeded).
    pub(crate) fn finish(mut self, cache: &mut RowCache) {
        if let Some(evicted) = self.evicted.take() {
            cache.absorb(&mut self.state, evicted);
        }
    }
}

/// Copies the cached rows of `ids` into `into` and returns the ids still to load (all of
/// them without a cache).
fn from_cache<R: CachedRow>(
    ids: &BTreeSet<i64>,
    into: &mut HashMap<i64, R>,
    cache: Option<(&CachedTable<R>, bool)>,
) -> Vec<i64> {
    match cache {
        Some((table, started_empty)) => table.copy_into(ids, into, started_empty),
        None => ids.iter().copied().collect(),
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
    if !wanted.reasons.is_empty() {
        for v in session
            .load(Load::ModerationReason, &ids(&wanted.reasons))
            .await?
        {
            let donation = v[0].as_i64().unwrap_or_default();
            let identifier = v[1].as_text().unwrap_or_default().to_owned();
            let source = v[2].as_text().unwrap_or_default().to_owned();
            state
                .reasons
                .entry(donation)
                .or_default()
                .insert((identifier, source));
        }
    }
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
        let expected = category_of(event);
        if category != expected {
            return Err(format!(
                "a `{category}` stream cannot hold this event (it belongs in `{expected}`)"
            ));
        }
        let at = micros(rec.metadata.occurred_at);
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
                let raised = match event {
                    E::ModerationReasonsRaised(e) => e
                        .reasons
                        .iter()
                        .map(|r| {
                            Ok((
                                moderation_identifier(r.identifier)?.to_owned(),
                                r.source.clone(),
                            ))
                        })
                        .collect::<Result<Vec<_>, Rejection>>()?,
                    E::ManuallyFlagged(_) => {
                        let flag = ModerationIdentifier::ManuallyFlaggedByAdmin.as_str();
                        vec![(flag.to_owned(), MANUAL_FLAG_SOURCE.to_owned())]
                    }
                    _ => Vec::new(),
                };
                let row = self
                    .donations
                    .get_mut(&sid)
                    .ok_or_else(|| format!("unknown donation {sid}"))?;
                row.apply(event, at)?;
                let payment_id = row.payment_id;
                self.dirty_donations.insert(sid);
                if category == streams::category::MODERATION {
                    let reasons = self.reasons.entry(sid).or_default();
                    if matches!(event, E::ModerationApproved(_)) {
                        reasons.clear();
                    }
                    reasons.extend(raised);
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
        self.log.push(vec![
            Value::int(donation_id),
            Value::int(position),
            Value::text(&rec.stream),
            Value::text(&rec.event_type),
            Value::text(rec.metadata.actor.kind.as_str()),
            Value::text(&rec.metadata.actor.id),
            Value::Time(Some(at)),
        ]);
    }

    /// Mirrors payment states into donations, numbers new tracking pairs, and writes every
    /// changed row (donation, payment and contribution-tracking rows only with `write_rows`;
    /// otherwise the row cache keeps them).
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
        }
        if !self.dirty_reasons.is_empty() {
            let ids: Vec<i64> = self.dirty_reasons.iter().copied().collect();
            session.delete_reasons(&ids).await?;
            let reasons: Vec<Vec<Value>> = ids
                .iter()
                .flat_map(|id| {
                    self.reasons[id]
                        .iter()
                        .map(move |(i, s)| vec![Value::int(*id), Value::text(i), Value::text(s)])
                })
                .collect();
            session.write(Write::ModerationReason, reasons).await?;
        }
        let conflicts: Vec<Vec<Value>> = self.conflicts.iter().map(Conflict::to_values).collect();
        session.write(Write::Conflict, conflicts).await?;
        // In key order: the change log's primary-key index is filled page by page instead of
        // at random places (the log itself comes in position order).
        self.log
            .sort_unstable_by_key(|r| (r[0].as_i64(), r[1].as_i64()));
        let log = std::mem::take(&mut self.log);
        if write_rows {
            session.write(Write::DonationEvent, log).await?;
        } else {
            // Write-back (a rebuild's fresh tables): nothing can be in the way.
            session.insert_new(Write::DonationEvent, log).await?;
        }
        Ok(())
    }
}

fn check_same(payload_id: u64, stream_id: i64, field: &str) -> Result<(), Rejection> {
    if payload_id != 0 && donation::id(payload_id, field)? != stream_id {
        return Err(format!(
            "{field} {payload_id} in the payload differs from the stream's id {stream_id}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64) -> PaymentRow {
        PaymentRow {
            id,
            ..PaymentRow::default()
        }
    }

    #[test]
    fn only_rows_never_written_count_as_new_in_a_table_that_started_empty() {
        let mut table = CachedTable::<PaymentRow>::default();
        let mut touched: HashMap<i64, PaymentRow> = (1..=3).map(|id| (id, row(id))).collect();
        let mut dirty: BTreeSet<i64> = (1..=3).collect();
        table.absorb(Vec::new(), &mut touched, &mut dirty);
        let ids = |rows: &[Vec<Value>]| -> Vec<i64> {
            rows.iter().map(|r| r[0].as_i64().unwrap()).collect()
        };
        let fresh = table.all_dirty_values(true);
        assert_eq!(
            (ids(&fresh.new), ids(&fresh.rewritten)),
            (vec![1, 2, 3], vec![])
        );

        // Row 1 leaves the cache (written), the rest are flushed; then all three change again.
        let mut none = HashMap::new();
        table.absorb(vec![1], &mut none, &mut BTreeSet::new());
        table.flushed();
        let mut touched: HashMap<i64, PaymentRow> = (1..=4).map(|id| (id, row(id))).collect();
        let mut dirty: BTreeSet<i64> = (1..=4).collect();
        table.absorb(Vec::new(), &mut touched, &mut dirty);
        let again = table.all_dirty_values(true);
        assert_eq!(
            (ids(&again.new), ids(&again.rewritten)),
            (vec![4], vec![1, 2, 3])
        );
        // Without an empty start nothing can be assumed absent.
        assert_eq!(table.all_dirty_values(false).new.len(), 0);
    }
}
