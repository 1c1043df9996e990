//! Contribution-tracking decisions: recording tracking data (telling a second allocation
//! of an id from a legitimate repeat) and linking the contribution id, first one wins.

use super::Decision;
use crate::domain::contribution_tracking::{ContributionTrackingFields, ContributionTrackingState};
use crate::domain::error::DomainError;
use crate::domain::streams;
use crate::domain::types::StreamEvent;
use crate::proto::events as ev;

/// Tracking data for an id, decided: the event to append, and whether it comes from another
/// allocation than the row's.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingDecision {
    /// The `ContributionTrackingRecorded` event.
    pub events: Vec<StreamEvent>,
    /// The id was allocated before under another token (a sequence-generator fault): the event
    /// is evidence of the collision, and the fold and the projector keep it out of the row.
    pub collision: bool,
}

/// Records tracking fields. Repeats with the same allocation token are legitimate; a new token
/// for an id that already has one means the id was allocated twice. The data is recorded either
/// way, so the collision is reported from the log, and is never merged into the row.
pub fn record_contribution_tracking(
    state: &ContributionTrackingState,
    contribution_tracking_id: u64,
    allocation_token: &str,
    fields: ContributionTrackingFields,
) -> TrackingDecision {
    TrackingDecision {
        collision: state.collides_with(allocation_token),
        events: vec![StreamEvent::new(
            streams::contribution_tracking(contribution_tracking_id),
            ev::ContributionTrackingRecorded {
                contribution_tracking_id,
                allocation_token: allocation_token.to_owned(),
                fields: Some(fields),
            },
        )],
    }
}

/// Links the contribution id. The first wins: the same id again is a no-op, a different one is
/// refused (the caller counts the refusal).
pub fn link_contribution(
    state: &ContributionTrackingState,
    contribution_tracking_id: u64,
    contribution_id: u64,
) -> Decision {
    match state.contribution_id {
        Some(existing) if existing == contribution_id => Ok(Vec::new()),
        Some(existing) => Err(DomainError::ContributionAlreadyLinked {
            contribution_tracking_id,
            existing,
            attempted: contribution_id,
        }),
        None => Ok(vec![StreamEvent::new(
            streams::contribution_tracking(contribution_tracking_id),
            ev::ContributionLinked { contribution_id },
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::testing::*;

    #[test]
    fn repeated_tracking_with_the_same_allocation_is_recorded() {
        let mut s = ContributionTrackingState::default();
        for _ in 0..2 {
            let decided = record_contribution_tracking(&s, 3, "alloc-a", Default::default());
            assert!(!decided.collision);
            assert_eq!(decided.events[0].stream, "contribution_tracking-3");
            for e in &decided.events {
                s.apply(&e.event);
            }
        }
        assert_eq!(s.records, 2);
    }

    #[test]
    fn tracking_from_a_second_allocation_of_the_same_id_is_recorded_as_a_collision() {
        let mut s = ContributionTrackingState::default();
        let banner = |b: &str| ContributionTrackingFields {
            banner: Some(b.into()),
            ..Default::default()
        };
        for e in record_contribution_tracking(&s, 3, "alloc-a", banner("B1")).events {
            s.apply(&e.event);
        }
        let decided = record_contribution_tracking(&s, 3, "alloc-b", banner("B2"));
        assert!(decided.collision);
        assert_eq!(decided.events.len(), 1);
        for e in &decided.events {
            s.apply(&e.event);
        }
        assert_eq!(s.fields.banner.as_deref(), Some("B1"));
        assert_eq!(s.collisions, 1);
    }

    #[test]
    fn the_first_contribution_link_wins() {
        let mut s = ContributionTrackingState::default();
        for e in link_contribution(&s, 3, 900).unwrap() {
            s.apply(&e.event);
        }
        assert_eq!(link_contribution(&s, 3, 900), Ok(vec![]));
        assert_eq!(
            link_contribution(&s, 3, 901),
            Err(DomainError::ContributionAlreadyLinked {
                contribution_tracking_id: 3,
                existing: 900,
                attempted: 901
            })
        );
    }
}
