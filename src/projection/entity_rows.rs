//! The rows of a context with one row per entity (an address change, a subscription): the
//! shape their batches share. A batch loads the rows of the entities its events touch (a
//! rebuild finds most in its write-back cache), folds each event into its row with the
//! context's own rules ([`EntityRow`]), and writes back every changed row (a rebuild when the
//! row leaves the cache). What differs per context is only the row: its columns, its creation event and
//! how an event changes it.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::backend::{Load, ProjectionError, Session, Write};
use super::batch::check_same;
use super::cache::{from_cache, CachedRow, CachedTable};
use super::donation::Rejection;
use super::rows::Value;
use crate::domain::scrub::ScrubRule;
use crate::domain::DomainEvent;

/// One entity's row of a context's table, folded from the entity's streams.
pub(crate) trait EntityRow: Sized {
    /// The context's stream categories.
    type Category: Copy + PartialEq;
    /// What an entity is called in rejections (`address change`).
    const WHAT: &'static str;
    /// The payload field of the creation event that names the entity's id.
    const ID_FIELD: &'static str;
    /// The statement that loads rows.
    const LOAD: Load;
    /// The statement that writes rows.
    const WRITE: Write;
    /// A category's name.
    fn category_name(category: Self::Category) -> &'static str;
    /// The category an event belongs in, `None` for an event of no category of the context.
    fn category_of(event: &DomainEvent) -> Option<Self::Category>;
    /// The id a creation event names; `None` for every other event.
    fn created_id(event: &DomainEvent) -> Option<u64>;
    /// The row a creation event makes (the caller checked the ids agree).
    fn created(id: i64, event: &DomainEvent, occurred_at: DateTime<Utc>)
        -> Result<Self, Rejection>;
    /// Applies an event of the entity's stream of `category` (not its creation).
    fn apply(&mut self, category: Self::Category, event: &DomainEvent);
    /// The row's id.
    fn id(&self) -> i64;
    /// The row as column values, in the order of its layout.
    fn to_values(&self) -> Vec<Value>;
    /// A loaded row, from values in the order of its layout.
    fn from_values(values: &[Value]) -> Self;
}

/// The rows of one context that one batch touches, in memory.
#[derive(Debug)]
pub(super) struct EntityRows<R> {
    pub(super) rows: HashMap<i64, R>,
    /// Entities whose row changed.
    pub(super) dirty: BTreeSet<i64>,
}

impl<R> Default for EntityRows<R> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            dirty: BTreeSet::new(),
        }
    }
}

impl<R: EntityRow> EntityRows<R> {
    /// Loads the rows of `ids`: copies of those the rebuild's `cache` holds, the others from
    /// the database.
    pub(super) async fn load(
        &mut self,
        session: &mut dyn Session,
        ids: &BTreeSet<i64>,
        cache: Option<(&CachedTable<R>, bool)>,
    ) -> Result<(), ProjectionError>
    where
        R: CachedRow,
    {
        let ids = from_cache(ids, &mut self.rows, cache);
        if ids.is_empty() {
            return Ok(());
        }
        for v in session.load(R::LOAD, &ids).await? {
            let row = R::from_values(&v);
            self.rows.insert(row.id(), row);
        }
        Ok(())
    }

    /// Applies an event of stream `{category}-{id}`; on a rejection nothing was changed.
    pub(super) fn apply(
        &mut self,
        category: R::Category,
        id: i64,
        event: &DomainEvent,
        occurred_at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let expected = R::category_of(event);
        if expected != Some(category) {
            let belongs = expected.map_or("another context", R::category_name);
            return Err(format!(
                "a `{}` stream cannot hold this event (it belongs in `{belongs}`)",
                R::category_name(category)
            ));
        }
        if let Some(named) = R::created_id(event) {
            check_same(named, id, R::ID_FIELD)?;
            if self.rows.contains_key(&id) {
                return Err(format!("{} {id} was already created", R::WHAT));
            }
            self.rows.insert(id, R::created(id, event, occurred_at)?);
        } else {
            if let DomainEvent::PersonalDataScrubbed(e) = event {
                if ScrubRule::try_from(e.rule).unwrap_or_default() == ScrubRule::Unspecified {
                    return Err(format!("unknown scrub rule {}", e.rule));
                }
            }
            let row = self
                .rows
                .get_mut(&id)
                .ok_or_else(|| format!("unknown {} {id}", R::WHAT))?;
            row.apply(category, event);
        }
        self.dirty.insert(id);
        Ok(())
    }

    /// Writes every changed row.
    pub(super) async fn write(&self, session: &mut dyn Session) -> Result<(), ProjectionError> {
        let rows: Vec<Vec<Value>> = self
            .dirty
            .iter()
            .map(|id| self.rows[id].to_values())
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        session.write(R::WRITE, rows).await
    }
}

/// Test-only helpers of the entity rows' unit tests.
#[cfg(test)]
pub(super) mod testing {
    use std::collections::HashMap;

    use super::super::rows::ColType;
    use super::*;

    /// The time of the `i`-th event of a test history.
    pub(in crate::projection) fn at(i: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + i, 0).unwrap()
    }

    /// Entity `id`'s rows after `history` (each event on its stream), from the `from`-th event.
    fn fold_onto<R: EntityRow>(
        rows: &mut EntityRows<R>,
        id: i64,
        category: fn(&str) -> Option<R::Category>,
        from: usize,
        history: &[(String, DomainEvent)],
    ) {
        for (i, (stream, event)) in history.iter().enumerate() {
            let c = category(stream).unwrap();
            rows.apply(c, id, event, at((from + i) as i64)).unwrap();
        }
    }

    /// Entity `id`'s rows after `history`.
    pub(in crate::projection) fn fold<R: EntityRow>(
        history: &[(String, DomainEvent)],
        id: i64,
        category: fn(&str) -> Option<R::Category>,
    ) -> EntityRows<R> {
        let mut rows = EntityRows::default();
        fold_onto(&mut rows, id, category, 0, history);
        rows
    }

    /// Row `id`'s columns by name, in the table's `layout`.
    pub(in crate::projection) fn columns<R: EntityRow>(
        rows: &EntityRows<R>,
        id: i64,
        layout: &[(&'static str, ColType)],
    ) -> HashMap<&'static str, Value> {
        layout
            .iter()
            .map(|(c, _)| *c)
            .zip(rows.rows[&id].to_values())
            .collect()
    }

    /// Folds `history` at every split point: up to the split in memory, the row written to its
    /// columns and loaded back, the rest folded onto the loaded row; the columns must equal
    /// those of the row folded in memory only.
    pub(in crate::projection) fn assert_a_loaded_row_folds_on_like_the_one_in_memory<
        R: EntityRow,
    >(
        history: &[(String, DomainEvent)],
        id: i64,
        category: fn(&str) -> Option<R::Category>,
    ) {
        let memory = fold::<R>(history, id, category);
        for split in 1..history.len() {
            let mut loaded = fold::<R>(&history[..split], id, category);
            let back = R::from_values(&loaded.rows[&id].to_values());
            loaded.rows.insert(id, back);
            fold_onto(&mut loaded, id, category, split, &history[split..]);
            assert_eq!(
                loaded.rows[&id].to_values(),
                memory.rows[&id].to_values(),
                "loaded back after {split} events"
            );
        }
    }
}
