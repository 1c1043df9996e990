//! `POST /civishare/v1/messages`: a message from a peer is parsed, its sender looked up, its
//! signature verified in constant time, its clock and id checked; then each change is
//! deduplicated by its origin signature and applied through the intake, with the peer as the
//! actor. A refused message appends nothing and is counted by reason.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::changes::{
    self, FollowUp, CONTACT_BASE, DONATION_CREATED, DONATION_ENTITY, DONATION_SCRUBBED,
};
use super::inbox::{ChangeStatus, InboxRow};
use super::message::{parse_time, Change, Envelope};
use super::{signing, CivishareError, CivishareStore, Peering, MESSAGES_PATH};
use crate::domain::streams;
use crate::domain::types::to_timestamp;
use crate::intake::{
    correlation_id, BookPaymentCommand, Intake, IntakeError, MoneyBack, RequestMeta,
};
use crate::metrics::Metrics;
use crate::privacy::KeyStore;
use crate::proto::events as ev;
use crate::store::{Actor, ActorKind, EventData, ExpectedRevision, Metadata, StoreError};

/// `ledger_civishare_refusals_total`.
pub const REFUSALS: &str = "ledger_civishare_refusals_total";
/// `ledger_civishare_changes_received_total`.
pub const RECEIVED: &str = "ledger_civishare_changes_received_total";

/// Default clock window.
pub const DEFAULT_WINDOW_SECS: u64 = 300;
/// Default retention of origin signatures.
pub const DEFAULT_RETENTION_DAYS: u64 = 30;

/// The receiving side.
pub struct Receiver {
    store: CivishareStore,
    keys: KeyStore,
    intake: Arc<Intake>,
    metrics: Metrics,
    window_secs: u64,
    retention_secs: i64,
    /// Held while one message's changes are checked and applied.
    applying: tokio::sync::Mutex<()>,
}

/// What became of one change, as answered.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ChangeResult {
    /// Its index in the message.
    pub index: usize,
    /// Its type.
    #[serde(rename = "type")]
    pub change_type: String,
    /// `applied`, `ignored_loop` or `refused`.
    pub status: String,
    /// Why, when not applied.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// The entity's id here, when applied.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub local_reference: Option<String>,
}

/// The answer to an accepted message.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Answer {
    /// The message id.
    pub id: String,
    /// One result per change, in order.
    pub results: Vec<ChangeResult>,
}

/// The outcome of one change before it is recorded.
struct Outcome {
    status: ChangeStatus,
    reason: Option<String>,
    local_reference: Option<String>,
}

impl Outcome {
    fn refused(reason: impl Into<String>) -> Self {
        Self {
            status: ChangeStatus::Refused,
            reason: Some(reason.into()),
            local_reference: None,
        }
    }

    fn ignored(reason: &str) -> Self {
        Self {
            status: ChangeStatus::IgnoredLoop,
            reason: Some(reason.to_owned()),
            local_reference: None,
        }
    }
}

impl Receiver {
    /// A receiver applying through `intake`; `window_secs` is the clock window, origin
    /// signatures are kept `retention_days`.
    pub fn new(
        store: CivishareStore,
        keys: KeyStore,
        intake: Arc<Intake>,
        metrics: Metrics,
        window_secs: u64,
        retention_days: u64,
    ) -> Self {
        Self {
            store,
            keys,
            intake,
            metrics,
            window_secs,
            retention_secs: i64::try_from(retention_days.saturating_mul(86_400))
                .unwrap_or(i64::MAX),
            applying: tokio::sync::Mutex::new(()),
        }
    }

    /// Receives one message body at `now`.
    #[tracing::instrument(skip_all)]
    pub async fn receive(&self, body: &[u8], now: DateTime<Utc>) -> Result<Answer, CivishareError> {
        let result = self.check_and_apply(body, now).await;
        if let Err(e) = &result {
            if let Some(code) = e.refusal_code() {
                self.metrics.count(REFUSALS, &[("reason", code)], 1);
                tracing::warn!(reason = code, error = %e, "CiviShare message refused");
            }
        }
        result
    }

    async fn check_and_apply(
        &self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Answer, CivishareError> {
        let envelope = Envelope::parse(body)?;
        let sender = envelope.payload.sender.clone();
        let peering = self
            .store
            .peering(&sender)
            .await?
            .ok_or_else(|| CivishareError::UnknownSender(sender.clone()))?;
        let secret = self.store.secret(&self.keys, &peering).await?;
        if !signing::verify(
            secret.expose_secret(),
            &envelope.id,
            &envelope.payload_bytes,
            &envelope.payload_signature,
        ) {
            return Err(CivishareError::BadSignature);
        }
        let sent = parse_time(&envelope.payload.sent).ok_or_else(|| {
            CivishareError::Malformed(format!(
                "`sent` {:?} is neither RFC 3339 nor `YYYY-MM-DD HH:MM:SS` with UTC, GMT, CET or CEST",
                envelope.payload.sent
            ))
        })?;
        let skew = (now - sent).num_seconds().unsigned_abs();
        if skew > self.window_secs {
            return Err(CivishareError::Stale {
                sent: envelope.payload.sent.clone(),
                now: super::message::format_time(now),
                window_secs: self.window_secs,
            });
        }
        let window = i64::try_from(self.window_secs).unwrap_or(i64::MAX / 4);
        if !self
            .store
            .remember_message(&envelope.id, &sender, now.timestamp(), 2 * window)
            .await?
        {
            return Err(CivishareError::Replayed(envelope.id.clone()));
        }
        self.store
            .purge_changes(now.timestamp() - self.retention_secs)
            .await?;
        let local = self
            .store
            .local_node()
            .await?
            .ok_or(CivishareError::NoLocalNode)?;
        let changes = &envelope.payload.changes;
        // One message at a time: two copies of one change (from two peers) must not both pass
        // the origin check before either is remembered. A change remembered but not marked
        // done (this node stopped half-way) is applied again: the intake's idempotency key,
        // derived from the origin, makes that harmless.
        let _one_at_a_time = self.applying.lock().await;
        // Changes to different entities are applied concurrently, so that their appends share
        // the log's group commits; the changes to one entity (two copies of one change
        // included) one after the other, in message order.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_of: std::collections::HashMap<(&str, &str), usize> =
            std::collections::HashMap::new();
        for (index, change) in changes.iter().enumerate() {
            let key = (change.entity.as_str(), change.entity_reference.as_str());
            let group = *group_of.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[group].push(index);
        }
        let (peering, local, message_id, sender) = (
            &peering,
            local.as_str(),
            envelope.id.as_str(),
            sender.as_str(),
        );
        let applied = futures::future::join_all(groups.iter().map(|group| async move {
            let mut results = Vec::with_capacity(group.len());
            for &index in group {
                // Recorded at once: a later change to the entity finds the local id there.
                let result = match self.apply(peering, local, &changes[index], now).await {
                    Ok(outcome) => {
                        self.record(message_id, sender, index, &changes[index], outcome)
                            .await
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(result) => results.push(result),
                    // The rest of this entity's changes wait for the sender's retry.
                    Err(e) => return (results, Some(e)),
                }
            }
            (results, None)
        }))
        .await;
        let mut results = Vec::with_capacity(changes.len());
        let mut failure = None;
        for (done, error) in applied {
            results.extend(done);
            if failure.is_none() {
                failure = error;
            }
        }
        results.sort_by_key(|r| r.index);
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(Answer {
            id: envelope.id,
            results,
        })
    }

    /// Records what became of change `index` of message `message_id` (inbox row and counter)
    /// and answers it.
    async fn record(
        &self,
        message_id: &str,
        sender: &str,
        index: usize,
        change: &Change,
        outcome: Outcome,
    ) -> Result<ChangeResult, CivishareError> {
        self.store
            .record(&InboxRow {
                message_id,
                sender,
                change_index: index,
                change,
                status: outcome.status,
                reason: outcome.reason.clone(),
                local_reference: outcome.local_reference.clone(),
            })
            .await?;
        self.metrics
            .count(RECEIVED, &[("status", outcome.status.as_str())], 1);
        Ok(ChangeResult {
            index,
            change_type: change.change_type.clone(),
            status: outcome.status.as_str().to_owned(),
            reason: outcome.reason,
            local_reference: outcome.local_reference,
        })
    }

    /// Applies one change, or says why not. `Err` only for failures of this node (the
    /// sender then retries the message).
    async fn apply(
        &self,
        peering: &Peering,
        local: &str,
        change: &Change,
        now: DateTime<Utc>,
    ) -> Result<Outcome, CivishareError> {
        let Some(origin) = change.origin().map(str::to_owned) else {
            return Ok(Outcome::refused(
                "malformed_change: loop_detection must start with the change's origin signature",
            ));
        };
        if change
            .loop_detection
            .contains(&signing::node_stamp(local, &origin))
        {
            return Ok(Outcome::ignored("this node's stamp is in loop_detection"));
        }
        if self.store.origin_done(&origin).await? == Some(true) {
            return Ok(Outcome::ignored(
                "a change with this origin was processed before",
            ));
        }
        if !peering.incoming.contains(&change.change_type) {
            return Ok(Outcome::refused(format!(
                "type_not_accepted: the peering with {} does not accept {} (it accepts: {})",
                peering.node_name,
                change.change_type,
                if peering.incoming.is_empty() {
                    "nothing".to_owned()
                } else {
                    peering
                        .incoming
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
        if change.change_type != CONTACT_BASE && change.entity != DONATION_ENTITY {
            return Ok(Outcome::refused(format!(
                "invalid: entity must be {DONATION_ENTITY} for {}",
                change.change_type
            )));
        }
        match change.change_type.as_str() {
            DONATION_CREATED => self.apply_created(peering, change, &origin, now).await,
            DONATION_SCRUBBED => self.apply_scrubbed(peering, change, &origin, now).await,
            CONTACT_BASE => Ok(Outcome::refused(
                "no_processor: the ledger keeps donations, not contacts; \
                 civishare.change.contact.base cannot be applied here",
            )),
            other => match changes::follow_up(other, &change.attribute_changes) {
                Ok(Some(follow_up)) => {
                    self.apply_follow_up(peering, change, &origin, now, follow_up)
                        .await
                }
                Ok(None) => Ok(Outcome::refused(format!("unknown_type: {other}"))),
                Err(e) => Ok(Outcome::refused(e.0)),
            },
        }
    }

    /// Runs the intake call a change becomes, with the peer as the actor and a request id
    /// derived from the change's origin: a second application of the same change (after a
    /// crash between the append and this node's memory) is answered from the intake's
    /// idempotency record instead of acting twice. The change is remembered before the call,
    /// with the correlation id of its events (so the outgoing projector finds the loop list of
    /// what it forwards), and settled after: done when applied or refused for what it says,
    /// forgotten on a failure of this node (then `Err`: the sender retries the message).
    /// `call` answers the entity's id here.
    async fn through_intake<F, Fut>(
        &self,
        peering: &Peering,
        change: &Change,
        origin: &str,
        now: DateTime<Utc>,
        call: F,
    ) -> Result<Outcome, CivishareError>
    where
        F: FnOnce(RequestMeta) -> Fut,
        Fut: std::future::Future<Output = Result<String, IntakeError>>,
    {
        let request_id = request_id(origin);
        let actor = Actor {
            kind: ActorKind::Peer,
            id: peering.node_name.clone(),
        };
        let meta = match RequestMeta::new(&request_id, actor, "civishare", origin.as_bytes()) {
            Ok(meta) => meta,
            Err(e) => return Ok(Outcome::refused(format!("invalid: {e}"))),
        };
        self.store
            .remember_change(
                origin,
                &peering.node_name,
                &change.loop_detection,
                Some(correlation_id(&request_id)),
                now.timestamp(),
            )
            .await?;
        match call(meta).await {
            Ok(local_reference) => {
                self.store.change_done(origin).await?;
                Ok(Outcome {
                    status: ChangeStatus::Applied,
                    reason: None,
                    local_reference: Some(local_reference),
                })
            }
            Err(e) => match refusal(&e) {
                Some(reason) => {
                    self.store.change_done(origin).await?;
                    Ok(Outcome::refused(reason))
                }
                None => {
                    self.store.forget_change(origin).await?;
                    Err(CivishareError::Invalid {
                        field: "intake",
                        rule: format!("failed: {e}"),
                    })
                }
            },
        }
    }

    /// The receiver's copy of the donation a change names: the one it created from the same
    /// sender's `created` change with that reference. `None` when it has none; the change is
    /// then refused but not remembered, so a copy of it arriving later by another path (after
    /// the `created` change) still applies.
    async fn local_donation(
        &self,
        peering: &Peering,
        change: &Change,
    ) -> Result<Option<u64>, CivishareError> {
        Ok(self
            .store
            .local_reference(&peering.node_name, &change.entity, &change.entity_reference)
            .await?
            .and_then(|local| local.parse().ok()))
    }

    /// A change to a donation this node has: the intake command it asks for, on this node's
    /// copy (and that copy's payment).
    async fn apply_follow_up(
        &self,
        peering: &Peering,
        change: &Change,
        origin: &str,
        now: DateTime<Utc>,
        follow_up: FollowUp,
    ) -> Result<Outcome, CivishareError> {
        let Some(donation_id) = self.local_donation(peering, change).await? else {
            return Ok(unknown_entity(peering, change));
        };
        let intake = &self.intake;
        let transaction_id = request_id(origin);
        self.through_intake(peering, change, origin, now, |meta| async move {
            let payment_id = || async {
                Ok::<_, IntakeError>(intake.get_donation(donation_id).await?.payment_id)
            };
            match follow_up {
                FollowUp::Cancel { reason } => {
                    intake.cancel_donation(&meta, donation_id, &reason).await?;
                }
                FollowUp::Delete { reason } => {
                    intake.delete_donation(&meta, donation_id, &reason).await?;
                }
                FollowUp::Restore { reason } => {
                    intake.restore_donation(&meta, donation_id, &reason).await?;
                }
                FollowUp::UpdateDonor(donor) => {
                    intake.update_donor(&meta, donation_id, donor).await?;
                }
                FollowUp::Book {
                    amount,
                    valuation_date,
                } => {
                    let cmd = BookPaymentCommand {
                        payment_id: payment_id().await?,
                        transaction_id,
                        valuation_date,
                        amount,
                        provider: ev::ProviderData::default(),
                    };
                    intake.book_payment(&meta, cmd).await?;
                }
                FollowUp::Fail { reason } => {
                    intake
                        .fail_payment(&meta, payment_id().await?, &reason)
                        .await?;
                }
                FollowUp::Refund { amount, reason } => {
                    let cmd = MoneyBack {
                        payment_id: payment_id().await?,
                        amount,
                        reason,
                    };
                    intake.refund_payment(&meta, cmd).await?;
                }
                FollowUp::Chargeback { amount, reason } => {
                    let cmd = MoneyBack {
                        payment_id: payment_id().await?,
                        amount,
                        reason,
                    };
                    intake.report_chargeback(&meta, cmd).await?;
                }
            }
            Ok(donation_id.to_string())
        })
        .await
    }

    async fn apply_created(
        &self,
        peering: &Peering,
        change: &Change,
        origin: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, CivishareError> {
        let cmd = match changes::new_donation(&change.attribute_changes) {
            Ok(cmd) => cmd,
            Err(e) => return Ok(Outcome::refused(e.0)),
        };
        let intake = &self.intake;
        self.through_intake(peering, change, origin, now, |meta| async move {
            Ok(intake
                .add_donation(&meta, cmd)
                .await?
                .donation_id
                .to_string())
        })
        .await
    }

    /// A peer's scrub: the local copy's key is destroyed and `PersonalDataScrubbed` appended
    /// with the peer's rule, as the scrub job does (key first, then the event).
    async fn apply_scrubbed(
        &self,
        peering: &Peering,
        change: &Change,
        origin: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, CivishareError> {
        let Some(donation_id) = self.local_donation(peering, change).await? else {
            return Ok(unknown_entity(peering, change));
        };
        let local = donation_id.to_string();
        let rule = changes::scrub_rule(&change.attribute_changes);
        let correlation = correlation_id(&request_id(origin));
        self.store
            .remember_change(
                origin,
                &peering.node_name,
                &change.loop_detection,
                Some(correlation),
                now.timestamp(),
            )
            .await?;
        self.intake.vault().destroy(&[donation_id]).await?;
        let mut metadata = Metadata::new(
            Actor {
                kind: ActorKind::Peer,
                id: peering.node_name.clone(),
            },
            "civishare",
            correlation,
        );
        metadata.occurred_at = now;
        let event = ev::PersonalDataScrubbed {
            rule: rule as i32,
            scrubbed_at: Some(to_timestamp(now)),
        };
        let data = EventData {
            id: uuid::Uuid::new_v5(&correlation, b"scrub"),
            event_type: "PersonalDataScrubbed.v1".to_owned(),
            payload: prost::Message::encode_to_vec(&event),
            metadata: metadata.into(),
        };
        match self
            .intake
            .log()
            .append(
                &streams::scrub(donation_id),
                ExpectedRevision::NoStream,
                vec![data],
            )
            .await
        {
            // Already scrubbed here: the key is gone either way.
            Ok(_) | Err(StoreError::Conflict { .. }) => {
                self.store.change_done(origin).await?;
                Ok(Outcome {
                    status: ChangeStatus::Applied,
                    reason: None,
                    local_reference: Some(local),
                })
            }
            Err(e) => {
                self.store.forget_change(origin).await?;
                Err(e.into())
            }
        }
    }
}

/// The intake request id of a change with this origin (also the transaction id of a booking
/// applied from a peer): `civishare-` and the SHA-256 of the origin signature, in hex.
fn request_id(origin: &str) -> String {
    format!(
        "civishare-{}",
        hex::encode(Sha256::digest(origin.as_bytes()))
    )
}

fn unknown_entity(peering: &Peering, change: &Change) -> Outcome {
    Outcome::refused(format!(
        "unknown_entity: no {} {} of {} was applied here",
        change.entity, change.entity_reference, peering.node_name
    ))
}

/// The reason to answer when the intake refuses a change for what it says; `None` for a
/// failure of this node.
fn refusal(e: &IntakeError) -> Option<String> {
    match e {
        IntakeError::Invalid(_)
        | IntakeError::Rule(_)
        | IntakeError::AlreadyExists { .. }
        | IntakeError::NotFound { .. }
        | IntakeError::RequestIdReused { .. }
        | IntakeError::RequestIdReusedWithOtherContent(_)
        | IntakeError::InBatch { .. }
        | IntakeError::InMembershipBatch { .. }
        | IntakeError::UnknownAddressChangeToken
        | IntakeError::InAddressChangeBatch { .. }
        | IntakeError::UnknownSubscriptionCode
        | IntakeError::InSubscriptionBatch { .. } => Some(format!("invalid: {e}")),
        IntakeError::Store(_)
        | IntakeError::Privacy(_)
        | IntakeError::Sequence(_)
        | IntakeError::Codec(_)
        | IntakeError::CorruptRecord(_)
        | IntakeError::ClearPersonalData(_) => None,
    }
}

/// The HTTP answer to a failed message: 4xx with the refusal, 503 for this node's failures.
fn error_response(e: &CivishareError) -> Response {
    let status = match e {
        CivishareError::Malformed(_) => StatusCode::BAD_REQUEST,
        CivishareError::Unsigned => StatusCode::UNAUTHORIZED,
        CivishareError::UnknownSender(_) | CivishareError::BadSignature => StatusCode::FORBIDDEN,
        CivishareError::Stale { .. } | CivishareError::Replayed(_) => StatusCode::CONFLICT,
        CivishareError::Invalid { .. }
        | CivishareError::NoLocalNode
        | CivishareError::RenamePeered { .. }
        | CivishareError::NoPeering(_)
        | CivishareError::PeeringExists(_)
        | CivishareError::Database(_)
        | CivishareError::Migrate(_)
        | CivishareError::Privacy(_)
        | CivishareError::Store(_) => {
            tracing::error!(error = %crate::telemetry::format_chain(e), "CiviShare message not processed");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let code = e.refusal_code().unwrap_or("unavailable");
    (
        status,
        Json(serde_json::json!({ "error": code, "message": e.to_string() })),
    )
        .into_response()
}

/// The route `POST /civishare/v1/messages`.
pub fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route(MESSAGES_PATH, post(handle))
        .with_state(receiver)
}

async fn handle(State(receiver): State<Arc<Receiver>>, body: Bytes) -> Response {
    // In a task of its own: a sender that hangs up (or is killed) does not cancel a message
    // half-applied.
    let task = tokio::spawn(async move { receiver.receive(&body, Utc::now()).await });
    match task.await {
        Ok(Ok(answer)) => (StatusCode::OK, Json(answer)).into_response(),
        Ok(Err(e)) => error_response(&e),
        Err(e) => {
            tracing::error!(error = %e, "CiviShare message handler panicked");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({"error": "unavailable", "message": "internal error"})),
            )
                .into_response()
        }
    }
}
