//! The intake: the application service behind the gRPC API (which only translates). One
//! async method per command: check the request (`domain::validation`), load the streams it
//! needs, fold, let the domain decide (`domain::commands`), seal personal data, append
//! everything in one atomic append. One file per command family (`donation.rs`,
//! `payment.rs`, `deletion.rs`, `moderation.rs`, `comment.rs`, `donor.rs`, `export.rs`,
//! `contribution_tracking.rs`, `next_id.rs`, `membership.rs`, `address_change.rs`,
//! `subscription.rs`); `decide.rs` holds the shared shapes of a
//! decision on a donation or a payment; `method.rs` is the one list of RPCs.
//!
//! Idempotency without a separate store: every mutating call appends, in the same atomic
//! append as its events, a `RequestHandled.v1` event to stream `request-{request_id}` with
//! expected revision `NoStream`, holding the encoded response (ids and states only). A call
//! first reads that stream and, when present, answers from it. Two identical requests racing:
//! the loser's append conflicts on `request-…` (nothing of it is written), it reads the
//! winner's record and answers with it. A crash before the commit leaves nothing; after it,
//! the record is there.

mod address_change;
pub mod clock;
mod comment;
mod contribution_tracking;
mod decide;
mod deletion;
mod donation;
mod donor;
pub mod error;
mod export;
pub mod ids;
mod membership;
mod method;
mod moderation;
mod next_id;
mod payment;
pub mod reference;
pub mod sequence_check;
mod subscription;
mod view;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use prost::Message;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::admission;
use crate::domain::policy::ModerationPolicy;
use crate::domain::validation::FieldError;
use crate::domain::{DomainEvent, StreamEvent};
use crate::metrics::Metrics;
use crate::privacy::{seal_with, Vault};
use crate::proto::api;
use crate::repository;
use crate::sequence::SequenceGenerator;
use crate::store::{
    Actor, CurrentRevision, Direction, EventData, EventLog, ExpectedRevision, Metadata, StoreError,
    StreamAppend, StreamStart,
};

pub use address_change::address_change_message;
pub use clock::{Clock, ManualClock};
pub use error::IntakeError;
pub use membership::membership_message;
pub use method::Method;
pub use payment::{BookPaymentCommand, MoneyBack};
pub use subscription::subscription_message;
pub use view::donation_message;

/// Stream category of the idempotency records.
pub const REQUEST_CATEGORY: &str = "request";
/// Event type of an idempotency record.
pub const REQUEST_HANDLED: &str = "RequestHandled.v1";
/// Longest request id.
pub const MAX_REQUEST_ID_CHARS: usize = 128;
/// Namespace of the UUIDv5 correlation ids derived from request ids.
const REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6467_6572_5f72_6571_7565_7374_5f69);

/// The stream of a request's idempotency record.
pub fn request_stream(request_id: &str) -> String {
    format!("{REQUEST_CATEGORY}-{request_id}")
}

/// The correlation id of every event a call with `request_id` appends (a UUIDv5 of the
/// request id): how a reader of the log finds the events of one request.
pub fn correlation_id(request_id: &str) -> Uuid {
    Uuid::new_v5(&REQUEST_NAMESPACE, request_id.as_bytes())
}

/// Who asks, and the idempotency key of the call.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    request_id: String,
    actor: Actor,
    source: String,
    fingerprint: [u8; 32],
}

impl RequestMeta {
    /// Checks the request id (1 to 128 printable ASCII characters, no spaces), the actor id
    /// and the source. `request_bytes` is the encoded request, fingerprinted so that a
    /// request id reused with other content is refused.
    pub fn new(
        request_id: &str,
        actor: Actor,
        source: &str,
        request_bytes: &[u8],
    ) -> Result<Self, IntakeError> {
        let mut errors = Vec::new();
        let n = request_id.chars().count();
        if n == 0 || n > MAX_REQUEST_ID_CHARS {
            errors.push(("context.request_id", "is required: 1 to 128 characters"));
        } else if !request_id.bytes().all(|b| b.is_ascii_graphic()) {
            errors.push((
                "context.request_id",
                "must be printable ASCII without spaces",
            ));
        }
        let mut errors: Vec<FieldError> = errors
            .into_iter()
            .map(|(f, r)| FieldError::new(f, r))
            .collect();
        // The actor id reaches `donation_event.actor_id`; the source is held to the same rule.
        let line = admission::holds("donation_event.actor_id");
        for (field, value) in [
            ("context.actor.id", actor.id.as_str()),
            ("context.source", source),
        ] {
            if let Some(rule) = admission::text_misfit(value, line) {
                errors.push(FieldError::new(field, rule));
            }
        }
        if !errors.is_empty() {
            return Err(IntakeError::Invalid(errors));
        }
        Ok(Self {
            request_id: request_id.to_owned(),
            actor,
            source: source.to_owned(),
            fingerprint: Sha256::digest(request_bytes).into(),
        })
    }

    /// The client's idempotency key.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    fn metadata(&self, occurred_at: DateTime<Utc>) -> Metadata {
        let id = correlation_id(&self.request_id);
        let mut metadata = Metadata::new(self.actor.clone(), self.source.clone(), id);
        metadata.occurred_at = occurred_at;
        metadata
    }
}

/// Responses that carry the log position of the call's last event.
pub trait Positioned: Message + Default {
    /// Sets the position.
    fn set_position(&mut self, position: u64);
}

macro_rules! positioned {
    ($($t:ty),+) => {$(
        impl Positioned for $t {
            fn set_position(&mut self, position: u64) {
                self.position = position;
            }
        }
    )+};
}
positioned!(
    api::AddDonationResponse,
    api::PaymentResponse,
    api::DonationResponse,
    api::MarkExportedResponse,
    api::ContributionTrackingResponse,
    api::NextIdResponse,
    api::ApplyForMembershipResponse,
    api::MembershipResponse,
    api::MarkMembershipsExportedResponse,
    api::ChangeAddressResponse,
    api::MarkAddressChangesExportedResponse,
    api::SubscribeResponse,
    api::SubscriptionResponse,
    api::MarkSubscriptionsExportedResponse
);

/// What a command decided: the events (sealed), the revisions of the streams it read, and the
/// answer (plus, when it differs, the answer to store, stripped of anything personal).
struct Plan<R> {
    events: Vec<StreamEvent>,
    read: HashMap<String, CurrentRevision>,
    response: R,
    stored: Option<R>,
}

/// Decoded events of one stream and its revision.
struct Loaded {
    events: Vec<DomainEvent>,
    revision: CurrentRevision,
}

/// The application service.
pub struct Intake {
    log: Arc<dyn EventLog>,
    vault: Vault,
    sequences: Arc<dyn SequenceGenerator>,
    ids: ids::IdBlocks,
    policy: ModerationPolicy,
    metrics: Metrics,
    clock: Clock,
}

impl Intake {
    /// An intake over these stores; ids are reserved `id_block` at a time.
    pub fn new(
        log: Arc<dyn EventLog>,
        vault: Vault,
        sequences: Arc<dyn SequenceGenerator>,
        policy: ModerationPolicy,
        metrics: Metrics,
        id_block: u64,
    ) -> Self {
        Self {
            ids: ids::IdBlocks::new(sequences.clone(), vault.keys().clone(), id_block),
            log,
            vault,
            sequences,
            policy,
            metrics,
            clock: Clock::System,
        }
    }

    /// The same intake taking the time from `clock` (the system clock unless set).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The event log.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// The key store.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The timeline of a donation across its streams, decrypted while its key exists.
    pub async fn history(
        &self,
        donation_id: u64,
    ) -> Result<Vec<crate::audit::HistoryEntry>, IntakeError> {
        match crate::audit::load_donation(&*self.log, &self.vault, donation_id).await {
            Ok(steps) => Ok(crate::audit::timeline(&steps)),
            Err(crate::audit::AuditError::NotFound(id)) => Err(IntakeError::NotFound {
                what: "donation",
                id,
            }),
            Err(crate::audit::AuditError::MembershipNotFound(id)) => Err(IntakeError::NotFound {
                what: "membership application",
                id,
            }),
            Err(crate::audit::AuditError::AddressChangeNotFound(id)) => {
                Err(IntakeError::NotFound {
                    what: "address change",
                    id,
                })
            }
            Err(crate::audit::AuditError::SubscriptionNotFound(id)) => Err(IntakeError::NotFound {
                what: "subscription",
                id,
            }),
            Err(crate::audit::AuditError::Store(e)) => Err(e.into()),
            Err(crate::audit::AuditError::Privacy(e)) => Err(e.into()),
            Err(crate::audit::AuditError::Decode { source, .. }) => Err(source.into()),
        }
    }

    /// The sequence generator.
    pub fn sequences(&self) -> &Arc<dyn SequenceGenerator> {
        &self.sequences
    }

    /// Reads and decodes one stream (personal units stay sealed).
    async fn load(&self, stream: &str) -> Result<Loaded, IntakeError> {
        let loaded = repository::load_stream(&*self.log, stream).await?;
        Ok(Loaded {
            revision: loaded.revision,
            events: loaded.into_events(),
        })
    }

    /// Seals every clear personal unit of `events` with key `key_id`: a donation's id, or
    /// [`crate::privacy::membership_key_id`] of an application's.
    async fn seal(&self, key_id: u64, events: &mut [StreamEvent]) -> Result<(), IntakeError> {
        if !events.iter_mut().any(|e| e.event.has_clear_personal_data()) {
            return Ok(());
        }
        let key = self.vault.keys().get_or_create(key_id).await?;
        for e in events {
            seal_with(std::slice::from_mut(&mut e.event), key_id, &key);
        }
        Ok(())
    }

    /// The stored answer to an earlier call with this request id, with its position.
    async fn replay<R: Positioned>(
        &self,
        meta: &RequestMeta,
        method: Method,
    ) -> Result<Option<R>, IntakeError> {
        let stream = request_stream(&meta.request_id);
        let recorded = self
            .log
            .read_stream(&stream, Direction::Forwards, StreamStart::Beginning, 1)
            .await?;
        let Some(record) = recorded.first() else {
            return Ok(None);
        };
        let corrupt = || IntakeError::CorruptRecord(meta.request_id.clone());
        if record.event_type != REQUEST_HANDLED {
            return Err(corrupt());
        }
        let handled =
            api::RequestHandled::decode(record.payload.as_slice()).map_err(|_| corrupt())?;
        if handled.method != method.name() {
            return Err(IntakeError::RequestIdReused {
                request_id: meta.request_id.clone(),
                used_for: handled.method,
                method: method.name(),
            });
        }
        if handled.request_sha256 != meta.fingerprint {
            return Err(IntakeError::RequestIdReusedWithOtherContent(
                meta.request_id.clone(),
            ));
        }
        let mut response = R::decode(handled.response.as_slice()).map_err(|_| corrupt())?;
        response.set_position(record.position);
        self.metrics.count(
            "ledger_idempotent_replays_total",
            &[("method", method.name())],
            1,
        );
        // A client's retry, answered as before: nothing an operator needs to see.
        tracing::debug!(%method, request_id = %meta.request_id, "idempotent replay: answered from the request record");
        Ok(Some(response))
    }

    /// Runs a command once per request id: answers from the record when there is one, else
    /// plans and commits.
    async fn run<R, F>(&self, meta: &RequestMeta, method: Method, plan: F) -> Result<R, IntakeError>
    where
        R: Positioned,
        F: std::future::Future<Output = Result<Plan<R>, IntakeError>>,
    {
        Ok(self.run_flagged(meta, method, plan, true).await?.0)
    }

    /// [`Intake::run`], also telling whether the answer came from the record of an earlier
    /// call (and so lacks what the record leaves out).
    ///
    /// Without `read_first`, the record is only read when the append conflicts: one read less
    /// per call, for commands whose plan cannot be refused by state an earlier call of the
    /// same request created (a new donation: its retry conflicts on `request-…` and answers
    /// from the record; it only burns a pair of ids and a key).
    async fn run_flagged<R, F>(
        &self,
        meta: &RequestMeta,
        method: Method,
        plan: F,
        read_first: bool,
    ) -> Result<(R, bool), IntakeError>
    where
        R: Positioned,
        F: std::future::Future<Output = Result<Plan<R>, IntakeError>>,
    {
        if read_first {
            if let Some(answer) = self.replay(meta, method).await? {
                return Ok((answer, true));
            }
        }
        let plan = plan.await?;
        self.commit(meta, method, plan).await
    }

    /// Appends the plan's events and the request record in one atomic append.
    async fn commit<R: Positioned>(
        &self,
        meta: &RequestMeta,
        method: Method,
        plan: Plan<R>,
    ) -> Result<(R, bool), IntakeError> {
        let Plan {
            mut events,
            read,
            mut response,
            stored,
        } = plan;
        // The admission rule: nothing is appended that a read model could not hold. The
        // request checks above name the request's fields; this names the event's.
        let refused: Vec<FieldError> = events
            .iter()
            .flat_map(|e| admission::admit(&e.event))
            .collect();
        if !refused.is_empty() {
            tracing::warn!(%method, refused = %admission::describe(&refused), "an event breaks the admission rule; nothing appended");
            return Err(IntakeError::Invalid(refused));
        }
        let metadata = meta.metadata(self.clock.now());
        if let Some(i) = events
            .iter_mut()
            .position(|e| e.event.has_clear_personal_data())
        {
            return Err(IntakeError::ClearPersonalData(events.swap_remove(i).stream));
        }
        let mut parts = repository::appends(events, &read, &metadata);
        let record = api::RequestHandled {
            method: method.name().to_owned(),
            request_sha256: meta.fingerprint.to_vec(),
            response: stored.as_ref().unwrap_or(&response).encode_to_vec(),
        };
        // Last, so its position is the position of the call's last event.
        parts.push(StreamAppend {
            stream: request_stream(&meta.request_id),
            expected: ExpectedRevision::NoStream,
            events: vec![EventData {
                id: Uuid::now_v7(),
                event_type: REQUEST_HANDLED.to_owned(),
                payload: record.encode_to_vec(),
                metadata: metadata.into(),
            }],
        });
        match self.log.append_atomic(parts).await {
            Ok(results) => {
                let position = results.last().map_or(0, |r| r.position);
                response.set_position(position);
                Ok((response, false))
            }
            Err(StoreError::Conflict {
                stream,
                expected,
                actual,
            }) => {
                // Maybe an identical request won the race: then its answer is ours.
                if let Some(answer) = self.replay(meta, method).await? {
                    return Ok((answer, true));
                }
                Err(IntakeError::Store(StoreError::Conflict {
                    stream,
                    expected,
                    actual,
                }))
            }
            Err(e) => Err(e.into()),
        }
    }
}
