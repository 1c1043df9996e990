//! The write-back row cache of a rebuild: the per-entity rows a batch would otherwise load and
//! upsert again every time (donation, payment, contribution tracking, membership application,
//! address change, subscription) kept in memory between batches and written once, when they
//! leave the cache or the rebuild catches up.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::address_change::AddressChangeRow;
use super::backend::{ProjectionError, Session, Write};
use super::batch::State;
use super::contribution_tracking::ContributionTrackingRow;
use super::donation::{DonationRow, PaymentRow};
use super::entity_rows::EntityRow;
use super::membership::MembershipRow;
use super::rows::Value;
use super::subscription::SubscriptionRow;

/// The rows of every per-entity table a rebuild keeps in memory between batches (write-back):
/// a row is written once when it leaves the cache or when the rebuild catches up, not after
/// every batch that touched it, and a later batch finds it here instead of loading it back.
///
/// Only for tables nobody reads before the end (a rebuild's fresh tables, a verify's scratch
/// database): their checkpoint runs ahead of the rows still held here, and a crash discards
/// the whole fill anyway. A batch works on copies of cached rows; the cache takes the new
/// versions only after the batch's transaction committed, so a failed batch can be retried
/// against the cache as it was. Rows leave it (oldest ids first) only in a committed
/// transaction that wrote them.
///
/// Not cached: the open-reason tables (a batch replaces the reasons it changed, so a row
/// loaded back after eviction finds them current), the change logs (appended, never read),
/// `donation_tracking` and the conflicts (inserted once).
#[derive(Debug, Default)]
pub(crate) struct RowCache {
    capacity: usize,
    pub(super) donations: CachedTable<DonationRow>,
    pub(super) payments: CachedTable<PaymentRow>,
    pub(super) cts: CachedTable<ContributionTrackingRow>,
    pub(super) memberships: CachedTable<MembershipRow>,
    pub(super) address_changes: CachedTable<AddressChangeRow>,
    pub(super) subscriptions: CachedTable<SubscriptionRow>,
    /// Whether the tables held no rows when the projector started (no checkpoint yet): then
    /// a row that is neither cached nor evicted does not exist, and is not looked for.
    pub(super) started_empty: bool,
}

/// The cached rows of one table.
#[derive(Debug)]
pub(super) struct CachedTable<R> {
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
    fn victims_among(&self, touched: &HashMap<i64, R>, capacity: usize) -> Vec<i64> {
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
    fn values_of<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a i64>,
        started_empty: bool,
    ) -> DirtyRows {
        let mut out = DirtyRows {
            what: R::WRITE,
            new: Vec::new(),
            rewritten: Vec::new(),
        };
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

/// A cached table whatever its rows: what eviction, the flush and a committed batch do with
/// each of them, so [`RowCache`] handles all its tables alike ([`RowCache::tables`]).
trait Table {
    /// Whether rows are waiting to be written.
    fn is_dirty(&self) -> bool;
    /// Rows over capacity (after the batch's rows of this table in `state` join the cache),
    /// oldest first, that the batch did not touch.
    fn victims(&self, state: &State, capacity: usize) -> Vec<i64>;
    /// The dirty ones of `ids`, as they are written.
    fn dirty_values(&self, ids: &[i64], started_empty: bool) -> DirtyRows;
    /// Every row waiting to be written.
    fn all_dirty_values(&self, started_empty: bool) -> DirtyRows;
    /// After a committed flush: every dirty row is now in the database.
    fn flushed(&mut self);
    /// After a committed batch: drops the `evicted` rows and takes the batch's versions of
    /// this table's rows out of `state`.
    fn take_batch(&mut self, evicted: Vec<i64>, state: &mut State);
}

impl<R: CachedRow> Table for CachedTable<R> {
    fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    fn victims(&self, state: &State, capacity: usize) -> Vec<i64> {
        self.victims_among(R::in_batch(state), capacity)
    }

    fn dirty_values(&self, ids: &[i64], started_empty: bool) -> DirtyRows {
        self.values_of(ids, started_empty)
    }

    fn all_dirty_values(&self, started_empty: bool) -> DirtyRows {
        self.values_of(&self.dirty, started_empty)
    }

    fn flushed(&mut self) {
        self.in_database.extend(std::mem::take(&mut self.dirty));
    }

    fn take_batch(&mut self, evicted: Vec<i64>, state: &mut State) {
        let (rows, dirty) = R::in_batch_mut(state);
        self.absorb(evicted, rows, dirty);
    }
}

/// Dirty cached rows of one table (`what`) as they are written: inserted as new, or written
/// over.
struct DirtyRows {
    what: Write,
    new: Vec<Vec<Value>>,
    rewritten: Vec<Vec<Value>>,
}

impl DirtyRows {
    /// Writes both kinds (the new ones with [`Session::insert_new`]), `chunk` rows per call.
    async fn write(self, session: &mut dyn Session, chunk: usize) -> Result<(), ProjectionError> {
        for (new, mut rows) in [(true, self.new), (false, self.rewritten)] {
            while !rows.is_empty() {
                let rest = rows.split_off(rows.len().min(chunk));
                let rows = std::mem::replace(&mut rows, rest);
                if new {
                    session.insert_new(self.what, rows).await?;
                } else {
                    session.write(self.what, rows).await?;
                }
            }
        }
        Ok(())
    }
}

/// Writes the dirty rows of each cached table, `chunk` rows per call.
async fn write_tables(
    session: &mut dyn Session,
    tables: Vec<DirtyRows>,
    chunk: usize,
) -> Result<(), ProjectionError> {
    for rows in tables {
        rows.write(session, chunk).await?;
    }
    Ok(())
}

/// What leaves the cache when a batch commits: the ids of each table, in the order of
/// [`RowCache::tables`].
#[derive(Default)]
pub(super) struct Eviction(Vec<Vec<i64>>);

/// How many tables the cache holds.
const TABLES: usize = 6;

impl RowCache {
    /// A cache of up to `capacity` rows of each table.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ..Self::default()
        }
    }

    /// Every cached table, in the order they are written (the order of [`Eviction`]).
    fn tables(&self) -> [&dyn Table; TABLES] {
        [
            &self.donations,
            &self.payments,
            &self.cts,
            &self.memberships,
            &self.address_changes,
            &self.subscriptions,
        ]
    }

    /// [`RowCache::tables`], to change.
    fn tables_mut(&mut self) -> [&mut dyn Table; TABLES] {
        [
            &mut self.donations,
            &mut self.payments,
            &mut self.cts,
            &mut self.memberships,
            &mut self.address_changes,
            &mut self.subscriptions,
        ]
    }

    /// Records whether the tables were empty when the projector started (its first step found
    /// no checkpoint).
    pub(crate) fn set_started_empty(&mut self, empty: bool) {
        self.started_empty = empty;
    }

    /// Whether rows are waiting to be written.
    pub(crate) fn is_dirty(&self) -> bool {
        self.tables().iter().any(|t| t.is_dirty())
    }

    /// Rows over capacity (after this batch's `state` joins the cache), oldest first, that the
    /// batch did not touch; writes the dirty ones in the batch's transaction.
    pub(super) async fn evict(
        &self,
        session: &mut dyn Session,
        state: &State,
    ) -> Result<Eviction, ProjectionError> {
        let victims: Vec<Vec<i64>> = self
            .tables()
            .iter()
            .map(|t| t.victims(state, self.capacity))
            .collect();
        let rows = self
            .tables()
            .iter()
            .zip(&victims)
            .map(|(t, ids)| t.dirty_values(ids, self.started_empty))
            .collect();
        write_tables(session, rows, usize::MAX).await?;
        Ok(Eviction(victims))
    }

    /// After the batch committed: drops what was evicted and takes the batch's rows.
    fn absorb(&mut self, state: &mut State, evicted: Eviction) {
        for (table, ids) in self.tables_mut().into_iter().zip(evicted.0) {
            table.take_batch(ids, state);
        }
    }

    /// Writes every row still waiting (when the rebuild has caught up). The caller commits,
    /// then calls [`RowCache::flushed`].
    pub(crate) async fn flush(&self, session: &mut dyn Session) -> Result<(), ProjectionError> {
        let rows = self
            .tables()
            .iter()
            .map(|t| t.all_dirty_values(self.started_empty))
            .collect();
        write_tables(session, rows, FLUSH_CHUNK).await
    }

    /// Marks everything written after a committed [`RowCache::flush`]: the rows stay cached,
    /// and are now in the database too (a later change writes over them).
    pub(crate) fn flushed(&mut self) {
        for table in self.tables_mut() {
            table.flushed();
        }
    }
}

/// A row the cache holds: written with `WRITE` as its column values, and kept by a batch in a
/// map of its table's rows with the set of those it changed.
pub(super) trait CachedRow: Clone {
    /// The statement that writes rows of its table.
    const WRITE: Write;
    /// The row's column values.
    fn values(&self) -> Vec<Value>;
    /// The batch's rows of its table.
    fn in_batch(state: &State) -> &HashMap<i64, Self>;
    /// The batch's rows of its table and the ids of those the batch changed.
    fn in_batch_mut(state: &mut State) -> (&mut HashMap<i64, Self>, &mut BTreeSet<i64>);
}

/// Implements [`CachedRow`] for a row type written with `$write`, whose batch rows are at
/// `state.$rows` and the ids the batch changed at `state.$dirty`.
macro_rules! cached_row {
    ($row:ty, $write:expr, $($rows:ident).+, $($dirty:ident).+) => {
        impl CachedRow for $row {
            const WRITE: Write = $write;

            fn values(&self) -> Vec<Value> {
                self.to_values()
            }

            fn in_batch(state: &State) -> &HashMap<i64, Self> {
                &state.$($rows).+
            }

            fn in_batch_mut(state: &mut State) -> (&mut HashMap<i64, Self>, &mut BTreeSet<i64>) {
                (&mut state.$($rows).+, &mut state.$($dirty).+)
            }
        }
    };
}

cached_row!(DonationRow, Write::Donation, donations, dirty_donations);
cached_row!(PaymentRow, Write::Payment, payments, dirty_payments);
cached_row!(
    ContributionTrackingRow,
    Write::ContributionTracking,
    cts,
    dirty_cts
);
cached_row!(
    MembershipRow,
    Write::Membership,
    memberships.rows,
    memberships.dirty
);
cached_row!(
    AddressChangeRow,
    Write::AddressChange,
    address_changes.rows,
    address_changes.dirty
);
cached_row!(
    SubscriptionRow,
    Write::Subscription,
    subscriptions.rows,
    subscriptions.dirty
);

/// Rows per write call when the cache is flushed (bounds the memory of the bound values).
const FLUSH_CHUNK: usize = 10_000;

/// What a batch leaves for the row cache once its transaction has committed.
#[derive(Default)]
pub(crate) struct Committed {
    pub(super) state: State,
    pub(super) evicted: Option<Eviction>,
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
pub(super) fn from_cache<R: CachedRow>(
    ids: &BTreeSet<i64>,
    into: &mut HashMap<i64, R>,
    cache: Option<(&CachedTable<R>, bool)>,
) -> Vec<i64> {
    match cache {
        Some((table, started_empty)) => table.copy_into(ids, into, started_empty),
        None => ids.iter().copied().collect(),
    }
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
