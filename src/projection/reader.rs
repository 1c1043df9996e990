//! Reading a projector's batch from the log: decode each event, unseal the batch's personal
//! data with one key-store lookup (finding the event at fault when a ciphertext does not
//! open), and free applied batches off the projector's thread.

use std::sync::Arc;

use super::backend::{store_error, ProjectionError};
use super::batch::Decoded;
use super::{decode, DecodeError};
use crate::store::{EventLog, Position};

/// Decrypts the personal units of a decoded batch with one key-store lookup (the batch-level
/// half of `decode`: keys are fetched for the whole batch at once), in place.
async fn unseal_batch(
    vault: &crate::privacy::Vault,
    events: &mut [Decoded],
) -> Result<(), ProjectionError> {
    let decoded = events.iter_mut().filter_map(|d| d.event.as_mut().ok());
    Ok(vault.unseal(decoded).await?)
}

/// Reads up to `max` events from `from`, decodes them and unseals their personal data.
pub(crate) async fn read_batch(
    log: Arc<dyn EventLog>,
    vault: Option<crate::privacy::Vault>,
    from: Position,
    max: usize,
) -> Result<Vec<Decoded>, ProjectionError> {
    let records = log.read_all(from, max).await.map_err(store_error)?;
    let mut events: Vec<Decoded> = records
        .into_iter()
        .map(|record| Decoded {
            event: decode(&record),
            record,
        })
        .collect();
    if let Some(vault) = &vault {
        match unseal_batch(vault, &mut events).await {
            Ok(()) => {}
            // An event whose sealed unit cannot be opened: find it (and any other) one by
            // one, so the batch quarantines it instead of the projector stopping before it.
            Err(ProjectionError::Privacy(e)) if is_the_events_fault(&e) => {
                for d in &mut events {
                    let Ok(event) = d.event.as_mut() else {
                        continue;
                    };
                    match vault.unseal(std::iter::once(event)).await {
                        Ok(()) => {}
                        Err(e) if is_the_events_fault(&e) => d.event = Err(DecodeError::Unseal(e)),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(events)
}

/// Whether an unsealing failure lies in the event (altered or foreign ciphertext) rather than
/// in the key store.
fn is_the_events_fault(e: &crate::privacy::PrivacyError) -> bool {
    use crate::privacy::PrivacyError as P;
    match e {
        P::Tampered { .. } | P::Malformed(_) | P::KeyIdOutOfRange(_) => true,
        P::KeyDestroyed(_) | P::CorruptKey | P::WriteFailed(_) | P::Database(_) | P::Migrate(_) => {
            false
        }
    }
}

/// Events per batch from which [`release`] frees a batch on another thread.
const RELEASE_ELSEWHERE: usize = 4096;

/// Frees an applied batch. A rebuild's batches hold tens of thousands of decoded events with
/// their strings (freeing one was 3 % of the projector's thread, `perf` of `ledger bench
/// --parts projection`); a blocking-pool thread does that while the next batch is folded.
/// Small batches are freed in place, where that is cheaper than the hand-over.
pub(crate) fn release(events: Vec<Decoded>) {
    if events.len() >= RELEASE_ELSEWHERE {
        drop(tokio::task::spawn_blocking(move || drop(events)));
    }
}
