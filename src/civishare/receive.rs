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

use super::changes::{self, CONTACT_BASE, DONATION_CREATED, DONATION_ENTITY, DONATION_SCRUBBED};
use super::inbox::{ChangeStatus, InboxRow};
use super::message::{parse_time, Change, Envelope};
use super::{signing, CivishareError, CivishareStore, Peering, MESSAGES_PATH};
use crate::domain::streams;
use crate::domain::types::to_timestamp;
use crate::intake::{correlation_id, Intake, IntakeError, RequestMeta};
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
    /// Held while one change is checked and applied.
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
        let mut results = Vec::with_capacity(envelope.payload.changes.len());
        for (index, change) in envelope.payload.changes.iter().enumerate() {
            let outcome = self.apply(&peering, &local, change, now).await?;
            self.store
                .record(&InboxRow {
                    message_id: &envelope.id,
                    sender: &sender,
                    change_index: index,
                    change,
                    status: outcome.status,
                    reason: outcome.reason.clone(),
                    local_reference: outcome.local_reference.clone(),
                })
                .await?;
            self.metrics
                .count(RECEIVED, &[("status", outcome.status.as_str())], 1);
            results.push(ChangeResult {
                index,
                change_type: change.change_type.clone(),
                status: outcome.status.as_str().to_owned(),
                reason: outcome.reason,
                local_reference: outcome.local_reference,
            });
        }
        Ok(Answer {
            id: envelope.id,
            results,
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
        // One change at a time: two copies of one change (from two peers) must not both pass
        // the check below before either is remembered. A change remembered but not marked
        // done (this node stopped half-way) is applied again: the intake's idempotency key,
        // derived from the origin, makes that harmless.
        let _one_at_a_time = self.applying.lock().await;
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
        match change.change_type.as_str() {
            DONATION_CREATED => self.apply_created(peering, change, &origin, now).await,
            DONATION_SCRUBBED => self.apply_scrubbed(peering, change, &origin, now).await,
            CONTACT_BASE => Ok(Outcome::refused(
                "no_processor: the ledger keeps donations, not contacts; \
                 civishare.change.contact.base cannot be applied here",
            )),
            other => Ok(Outcome::refused(format!("unknown_type: {other}"))),
        }
    }

    async fn apply_created(
        &self,
        peering: &Peering,
        change: &Change,
        origin: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, CivishareError> {
        if change.entity != DONATION_ENTITY {
            return Ok(Outcome::refused(format!(
                "invalid: entity must be {DONATION_ENTITY} for {DONATION_CREATED}"
            )));
        }
        let cmd = match changes::new_donation(&change.attribute_changes) {
            Ok(cmd) => cmd,
            Err(e) => return Ok(Outcome::refused(e.0)),
        };
        // The request id is the origin's: a second application of the same change (after a
        // crash between the append and this node's memory) is answered from the intake's
        // idempotency record instead of creating a second donation.
        let request_id = format!(
            "civishare-{}",
            hex::encode(Sha256::digest(origin.as_bytes()))
        );
        let actor = Actor {
            kind: ActorKind::Peer,
            id: peering.node_name.clone(),
        };
        let meta = match RequestMeta::new(&request_id, actor, "civishare", origin.as_bytes()) {
            Ok(meta) => meta,
            Err(e) => return Ok(Outcome::refused(format!("invalid: {e}"))),
        };
        // Remembered before the append, with the correlation id of its events, so that the
        // outgoing projector finds the loop list of what it forwards.
        self.store
            .remember_change(
                origin,
                &peering.node_name,
                &change.loop_detection,
                Some(correlation_id(&request_id)),
                now.timestamp(),
            )
            .await?;
        match self.intake.add_donation(&meta, cmd).await {
            Ok(answer) => {
                self.store.change_done(origin).await?;
                Ok(Outcome {
                    status: ChangeStatus::Applied,
                    reason: None,
                    local_reference: Some(answer.donation_id.to_string()),
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

    /// A peer's scrub: the local copy's key is destroyed and `PersonalDataScrubbed` appended
    /// with the peer's rule, as the scrub job does (key first, then the event).
    async fn apply_scrubbed(
        &self,
        peering: &Peering,
        change: &Change,
        origin: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, CivishareError> {
        let Some(local) = self
            .store
            .local_reference(&peering.node_name, &change.entity, &change.entity_reference)
            .await?
        else {
            return Ok(Outcome::refused(format!(
                "unknown_entity: no {} {} of {} was applied here",
                change.entity, change.entity_reference, peering.node_name
            )));
        };
        let Ok(donation_id) = local.parse::<u64>() else {
            return Ok(Outcome::refused(format!("unknown_entity: {local}")));
        };
        let rule = changes::scrub_rule(&change.attribute_changes);
        let request_id = format!(
            "civishare-{}",
            hex::encode(Sha256::digest(origin.as_bytes()))
        );
        let correlation = correlation_id(&request_id);
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
        | IntakeError::InAddressChangeBatch { .. } => Some(format!("invalid: {e}")),
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
