//! Ids from the sequence generators, reserved in blocks and handed out from memory, so an
//! intake call does not pay a durable sequence write (one fsync) per id.
//!
//! A block is reserved with one `next_block` call; its ids are handed out one by one. Ids left
//! in a block when the process stops are never used (gaps are fine, duplicates are not: the
//! generator never hands out a block twice).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::sequence::{SequenceError, SequenceGenerator, SequenceName, MAX_BLOCK};

/// Default number of ids reserved per sequence call.
pub const DEFAULT_BLOCK: u64 = 256;

/// The unused rest of a reserved block: `next..=last` (empty when `next > last`).
#[derive(Debug, Default)]
struct Block {
    next: u64,
    last: u64,
}

/// Block-reserving id source over a sequence generator.
pub struct IdBlocks {
    sequences: Arc<dyn SequenceGenerator>,
    block: u64,
    slots: HashMap<SequenceName, Mutex<Block>>,
}

impl IdBlocks {
    /// Reserves `block` ids per call (clamped to `1..=MAX_BLOCK`).
    pub fn new(sequences: Arc<dyn SequenceGenerator>, block: u64) -> Self {
        let slots = SequenceName::ALL
            .into_iter()
            .map(|n| (n, Mutex::new(Block { next: 1, last: 0 })))
            .collect();
        Self {
            sequences,
            block: block.clamp(1, MAX_BLOCK),
            slots,
        }
    }

    /// The next id of `name`. Concurrent callers wait for one refill instead of each
    /// reserving a block.
    pub async fn take(&self, name: SequenceName) -> Result<u64, SequenceError> {
        let mut slot = self.slots[&name].lock().await;
        if slot.next > slot.last {
            let block = self.sequences.next_block(name, self.block).await?;
            slot.next = *block.start();
            slot.last = *block.end();
        }
        let id = slot.next;
        slot.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::sqlite::SqliteSequenceGenerator;

    #[tokio::test]
    async fn ids_are_unique_across_blocks_and_restarts_leave_only_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq.sqlite");
        let seq: Arc<dyn SequenceGenerator> =
            Arc::new(SqliteSequenceGenerator::open(&path).await.unwrap());
        let ids = IdBlocks::new(seq.clone(), 4);
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(ids.take(SequenceName::Donation).await.unwrap());
        }
        assert_eq!(seen, (1..=10).collect::<Vec<_>>());
        assert_eq!(seq.current(SequenceName::Donation).await.unwrap(), Some(12));
        // A "restart": a new pool starts above everything reserved.
        let again = IdBlocks::new(seq, 4);
        assert_eq!(again.take(SequenceName::Donation).await.unwrap(), 13);
        assert_eq!(again.take(SequenceName::Payment).await.unwrap(), 1);
    }
}
