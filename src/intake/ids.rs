//! Ids from the sequence generators, reserved in blocks and handed out from memory, so an
//! intake call does not pay a durable sequence write (one fsync) per id.
//!
//! A block is reserved with one `next_block` call; donation blocks also get their data keys
//! created up front, in one key-store transaction, so a new donation pays neither a sequence
//! nor a key-store commit. When a pool falls below half a block, the next block is reserved in
//! the background. Ids (and keys) left over when the process stops are never used: gaps are
//! fine, duplicates are not, and the generator never hands out a block twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::intake::IntakeError;
use crate::privacy::{DataKey, KeyStore};
use crate::sequence::{SequenceGenerator, SequenceName, MAX_BLOCK};

/// Default number of ids reserved per sequence call.
pub const DEFAULT_BLOCK: u64 = 1024;

/// An id handed out, with its data key when the pool creates keys.
#[derive(Debug)]
pub struct Reserved {
    /// The id.
    pub id: u64,
    /// The data key of the donation with this id, created durably before the id was handed out.
    pub key: Option<DataKey>,
}

#[derive(Default)]
struct Pool {
    queue: VecDeque<Reserved>,
    refilling: bool,
}

/// One sequence's pool with what refilling it needs.
struct Slot {
    name: SequenceName,
    pool: Mutex<Pool>,
    /// Serialises refills when the pool runs dry, so waiting callers share one block.
    gate: tokio::sync::Mutex<()>,
    sequences: Arc<dyn SequenceGenerator>,
    keys: Option<KeyStore>,
    block: u64,
}

impl Slot {
    async fn reserve(&self) -> Result<Vec<Reserved>, IntakeError> {
        let block = self.sequences.next_block(self.name, self.block).await?;
        let ids: Vec<u64> = block.collect();
        let mut keys = match &self.keys {
            Some(store) => store.create_many(&ids).await?,
            None => HashMap::new(),
        };
        Ok(ids
            .into_iter()
            .map(|id| Reserved {
                id,
                key: keys.remove(&id),
            })
            .collect())
    }

    fn pop(self: &Arc<Self>) -> Option<Reserved> {
        let mut pool = self.pool.lock().expect("id pool lock");
        let next = pool.queue.pop_front()?;
        if (pool.queue.len() as u64) < self.block / 2 && !pool.refilling {
            pool.refilling = true;
            let slot = self.clone();
            tokio::spawn(async move {
                let reserved = slot.reserve().await;
                let mut pool = slot.pool.lock().expect("id pool lock");
                pool.refilling = false;
                match reserved {
                    Ok(r) => pool.queue.extend(r),
                    Err(e) => {
                        tracing::error!(sequence = %slot.name, error = %e, "reserving ids in the background failed")
                    }
                }
            });
        }
        Some(next)
    }
}

/// Block-reserving id source over a sequence generator.
pub struct IdBlocks {
    slots: HashMap<SequenceName, Arc<Slot>>,
}

impl IdBlocks {
    /// Reserves `block` ids per call (clamped to `1..=MAX_BLOCK`); donation ids come with
    /// their keys from `keys`.
    pub fn new(sequences: Arc<dyn SequenceGenerator>, keys: KeyStore, block: u64) -> Self {
        let block = block.clamp(1, MAX_BLOCK);
        let slots = SequenceName::ALL
            .into_iter()
            .map(|name| {
                let slot = Slot {
                    name,
                    pool: Mutex::new(Pool::default()),
                    gate: tokio::sync::Mutex::new(()),
                    sequences: sequences.clone(),
                    keys: (name == SequenceName::Donation).then(|| keys.clone()),
                    block,
                };
                (name, Arc::new(slot))
            })
            .collect();
        Self { slots }
    }

    /// The next id of `name` (with its key for donations).
    pub async fn take(&self, name: SequenceName) -> Result<Reserved, IntakeError> {
        let slot = &self.slots[&name];
        loop {
            if let Some(r) = slot.pop() {
                return Ok(r);
            }
            let _gate = slot.gate.lock().await;
            if !slot.pool.lock().expect("id pool lock").queue.is_empty() {
                continue;
            }
            let reserved = slot.reserve().await?;
            slot.pool
                .lock()
                .expect("id pool lock")
                .queue
                .extend(reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::sqlite::SqliteSequenceGenerator;

    #[tokio::test]
    async fn ids_are_unique_across_blocks_come_with_keys_and_restarts_leave_only_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let seq: Arc<dyn SequenceGenerator> = Arc::new(
            SqliteSequenceGenerator::open(&dir.path().join("seq.sqlite"))
                .await
                .unwrap(),
        );
        let keys = KeyStore::open_sqlite(&dir.path().join("keys.sqlite"))
            .await
            .unwrap();
        let ids = IdBlocks::new(seq.clone(), keys.clone(), 4);
        let mut seen = Vec::new();
        for _ in 0..10 {
            let r = ids.take(SequenceName::Donation).await.unwrap();
            let stored = keys.get_many(&[r.id]).await.unwrap();
            assert_eq!(
                stored[&r.id].expose_for_tests(),
                r.key.unwrap().expose_for_tests(),
                "the key was stored before the id was handed out"
            );
            seen.push(r.id);
        }
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
        let payment = ids.take(SequenceName::Payment).await.unwrap();
        assert!(payment.key.is_none());
        // A "restart": a new pool starts above everything reserved so far.
        let reserved = seq.current(SequenceName::Donation).await.unwrap().unwrap();
        let again = IdBlocks::new(seq, keys, 4);
        assert!(again.take(SequenceName::Donation).await.unwrap().id > reserved);
    }
}
