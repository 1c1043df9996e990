//! One way to load and to append, shared by the intake, the audit (history and export) and the
//! scrub job:
//!
//! * [`load_stream`] reads a stream whole, in pages, and decodes every event, with the revision
//!   it was read at;
//! * [`load_donation`] loads a donation's six streams together (its donation stream first, to
//!   learn its payment; the other five concurrently);
//! * [`appends`] turns decided events into the parts of one atomic append: a stream's events
//!   grouped in order, each stream expected at the revision it was read at (or new).
//!
//! Personal data stays sealed here; the callers unseal what they need through the vault.

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::donation::DonationState;
use crate::domain::{streams, CodecError, DomainEvent, StreamEvent};
use crate::store::{
    CurrentRevision, Direction, EventData, EventLog, ExpectedRevision, Metadata, Position,
    RecordedEvent, StoreError, StreamAppend, StreamStart,
};

/// Events read per page of a stream.
const PAGE: usize = 4096;

/// Errors loading from the log.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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
        source: CodecError,
    },
}

/// One event as recorded, with its decoding (personal units still sealed until a caller
/// unseals them).
#[derive(Debug, Clone)]
pub struct Step {
    /// The event as recorded.
    pub recorded: RecordedEvent,
    /// The decoded event.
    pub event: DomainEvent,
}

impl Step {
    /// Decodes a recorded event.
    pub fn decode(recorded: RecordedEvent) -> Result<Self, LoadError> {
        match DomainEvent::decode(&recorded.event_type, &recorded.payload) {
            Ok(event) => Ok(Self { recorded, event }),
            Err(source) => Err(LoadError::Decode {
                position: recorded.position,
                event_type: recorded.event_type,
                stream: recorded.stream,
                source,
            }),
        }
    }
}

/// A stream read whole.
#[derive(Debug, Clone)]
pub struct LoadedStream {
    /// Its name.
    pub name: String,
    /// Its events in revision order.
    pub steps: Vec<Step>,
    /// The revision it was read at (what an append to it expects).
    pub revision: CurrentRevision,
}

impl LoadedStream {
    /// Its decoded events, without the records.
    pub fn into_events(self) -> Vec<DomainEvent> {
        self.steps.into_iter().map(|s| s.event).collect()
    }
}

/// Reads `stream` whole, in pages, and decodes it.
pub async fn load_stream(log: &dyn EventLog, stream: &str) -> Result<LoadedStream, LoadError> {
    let mut steps = Vec::new();
    let mut from = 0u64;
    loop {
        let page = log
            .read_stream(
                stream,
                Direction::Forwards,
                StreamStart::Revision(from),
                PAGE,
            )
            .await?;
        let done = page.len() < PAGE;
        if let Some(last) = page.last() {
            from = last.revision + 1;
        }
        for recorded in page {
            steps.push(Step::decode(recorded)?);
        }
        if done {
            break;
        }
    }
    let revision = steps.last().map_or(CurrentRevision::NoStream, |s| {
        CurrentRevision::At(s.recorded.revision)
    });
    Ok(LoadedStream {
        name: stream.to_owned(),
        steps,
        revision,
    })
}

/// A donation's six streams.
#[derive(Debug, Clone)]
pub struct LoadedDonation {
    /// The donation stream (never empty, but possibly without a creation: an imported or
    /// foreign history; the intake refuses to decide on those).
    pub donation: LoadedStream,
    /// The donation stream folded (what found the payment's stream), for callers that
    /// decide on it.
    pub state: DonationState,
    /// Its payment's stream, then its moderation, deletion, export and scrub streams (each
    /// possibly empty).
    pub related: Vec<LoadedStream>,
}

impl LoadedDonation {
    /// Every stream, the donation stream first.
    pub fn streams(&self) -> impl Iterator<Item = &LoadedStream> {
        std::iter::once(&self.donation).chain(&self.related)
    }

    /// Every event of the six streams in the log's commit order.
    pub fn into_steps_in_commit_order(self) -> Vec<Step> {
        let mut steps: Vec<Step> = std::iter::once(self.donation)
            .chain(self.related)
            .flat_map(|s| s.steps)
            .collect();
        steps.sort_by_key(|s| s.recorded.position);
        steps
    }
}

/// Loads the six streams of `donation_id`; `None` when it has no donation stream.
pub async fn load_donation(
    log: &dyn EventLog,
    donation_id: u64,
) -> Result<Option<LoadedDonation>, LoadError> {
    let donation = load_stream(log, &streams::donation(donation_id)).await?;
    if donation.steps.is_empty() {
        return Ok(None);
    }
    let state = DonationState::fold(donation.steps.iter().map(|s| &s.event));
    let names = [
        streams::payment(state.payment_id),
        streams::moderation(donation_id),
        streams::deletion(donation_id),
        streams::export(donation_id),
        streams::scrub(donation_id),
    ];
    let related = futures::future::try_join_all(names.iter().map(|s| load_stream(log, s))).await?;
    Ok(Some(LoadedDonation {
        donation,
        state,
        related,
    }))
}

/// Loads the five streams of membership application `membership_id` (in
/// [`MembershipCategory::ALL`] order); `None` when it has no application stream.
///
/// [`MembershipCategory::ALL`]: crate::domain::membership::MembershipCategory::ALL
pub async fn load_membership(
    log: &dyn EventLog,
    membership_id: u64,
) -> Result<Option<Vec<LoadedStream>>, LoadError> {
    let names = crate::domain::membership::streams_of(membership_id);
    let mut loaded = Vec::with_capacity(names.len());
    for name in &names {
        let stream = load_stream(log, name).await?;
        if loaded.is_empty() && stream.steps.is_empty() {
            return Ok(None);
        }
        loaded.push(stream);
    }
    Ok(Some(loaded))
}

/// Loads the three streams of address change `id` (in [`AddressChangeCategory::ALL`]
/// order); `None` when it has no address-change stream.
///
/// [`AddressChangeCategory::ALL`]: crate::domain::address_change::AddressChangeCategory::ALL
pub async fn load_address_change(
    log: &dyn EventLog,
    id: u64,
) -> Result<Option<Vec<LoadedStream>>, LoadError> {
    load_entity(log, &crate::domain::address_change::streams_of(id)).await
}

/// Loads the three streams of subscription `id` (in [`SubscriptionCategory::ALL`] order);
/// `None` when it has no subscription stream.
///
/// [`SubscriptionCategory::ALL`]: crate::domain::subscription::SubscriptionCategory::ALL
pub async fn load_subscription(
    log: &dyn EventLog,
    id: u64,
) -> Result<Option<Vec<LoadedStream>>, LoadError> {
    load_entity(log, &crate::domain::subscription::streams_of(id)).await
}

/// Loads an entity's streams: the first, its own, then the others concurrently; `None` when
/// the first is empty.
async fn load_entity(
    log: &dyn EventLog,
    names: &[String],
) -> Result<Option<Vec<LoadedStream>>, LoadError> {
    let first = load_stream(log, &names[0]).await?;
    if first.steps.is_empty() {
        return Ok(None);
    }
    let rest =
        futures::future::try_join_all(names[1..].iter().map(|s| load_stream(log, s))).await?;
    let mut loaded = vec![first];
    loaded.extend(rest);
    Ok(Some(loaded))
}

/// The parts of one atomic append of `events`: a stream's events grouped, in order, each
/// stream expected at the revision `read` holds for it (new when it holds none), every event
/// with a fresh time-ordered id and `metadata`.
pub fn appends(
    events: Vec<StreamEvent>,
    read: &HashMap<String, CurrentRevision>,
    metadata: &Metadata,
) -> Vec<StreamAppend> {
    let mut parts: Vec<StreamAppend> = Vec::new();
    for e in events {
        let data = EventData {
            id: Uuid::now_v7(),
            event_type: e.event.event_type().to_owned(),
            payload: e.event.encode(),
            metadata: metadata.clone().into(),
        };
        match parts.iter_mut().find(|p| p.stream == e.stream) {
            Some(part) => part.events.push(data),
            None => {
                let expected = match read.get(&e.stream) {
                    Some(CurrentRevision::At(r)) => ExpectedRevision::Exact(*r),
                    Some(CurrentRevision::NoStream) | None => ExpectedRevision::NoStream,
                };
                parts.push(StreamAppend {
                    stream: e.stream,
                    expected,
                    events: vec![data],
                });
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{booked, raised};
    use crate::domain::moderation::ModerationIdentifier;
    use crate::store::Actor;

    fn on(stream: &str, event: DomainEvent) -> StreamEvent {
        StreamEvent {
            stream: stream.to_owned(),
            event,
        }
    }

    #[test]
    fn appends_group_a_streams_events_in_order_and_expect_the_revision_it_was_read_at() {
        let events = vec![
            on("payment-7", booked("t1")),
            on(
                "moderation-5",
                raised(ModerationIdentifier::AmountTooHigh, "amount"),
            ),
            on("payment-7", booked("t2")),
        ];
        let read = HashMap::from([("payment-7".to_owned(), CurrentRevision::At(3))]);
        let metadata = Metadata::new(Actor::system("test"), "test", Uuid::nil());
        let parts = appends(events, &read, &metadata);
        let shape: Vec<(&str, ExpectedRevision, usize)> = parts
            .iter()
            .map(|p| (p.stream.as_str(), p.expected, p.events.len()))
            .collect();
        assert_eq!(
            shape,
            [
                ("payment-7", ExpectedRevision::Exact(3), 2),
                ("moderation-5", ExpectedRevision::NoStream, 1)
            ]
        );
        let first = &parts[0].events;
        assert_eq!(first[0].payload, booked("t1").encode());
        assert_eq!(first[1].payload, booked("t2").encode());
        assert!(first[0].id < first[1].id, "time-ordered ids");
    }
}
