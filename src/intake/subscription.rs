//! Subscription commands: a new subscription from a banner or form, its confirmation by code,
//! the export batch, the back office's read by id and its forced (GDPR) removal. The shape of
//! the address-change commands: find the subscription (by code through its code stream), load
//! its streams, fold, let the domain decide (`domain::subscription::commands`), seal the
//! address with the subscription's own key, commit once per request id through
//! [`Intake::run`].
//!
//! The 30-minute rule is decided from the log: the duplicate index streams of the
//! subscription's window and the previous one (`domain::subscription`), keyed by an HMAC of the
//! address under each window's key. The append expects the index stream of the own window at
//! the revision read, so two concurrent subscriptions of one address cannot both pass.

use std::collections::HashMap;

use rand::RngCore;

use super::decide::ContextLoad;
use super::error::invalid_if_any;
use super::export::ExportBatch;
use super::{Intake, IntakeError, Method, Plan, RequestMeta};
use crate::domain::scrub::ScrubRule;
use crate::domain::subscription::commands::{self, NewSubscription};
use crate::domain::subscription::{
    code_stream, email_stream, normalised_email, window_of, SubscriptionView,
};
use crate::domain::types::{opt_datetime, to_timestamp};
use crate::domain::validation::{validate_confirmation_code, validate_id, validate_subscribe};
use crate::domain::{DomainError, DomainEvent, StreamEvent};
use crate::privacy::{email_hmac, subscription_key_id, subscription_window_key_id};
use crate::proto::api;
use crate::repository;
use crate::sequence::SequenceName;
use crate::store::{CurrentRevision, Direction, StreamStart};

/// What a missing subscription is called in errors.
const WHAT: &str = "subscription";

/// A subscription's view with the revisions of the streams it was folded from.
type SubscriptionLoad = ContextLoad<SubscriptionView>;

/// The subscription as the API shows it; with `include_email`, the address while readable
/// (answers to mutating calls and idempotency records never hold it).
pub fn subscription_message(view: &SubscriptionView, include_email: bool) -> api::Subscription {
    api::Subscription {
        subscription_id: view.id.unwrap_or_default(),
        status: view.status.as_str().to_owned(),
        created_at: view.created_at.map(to_timestamp),
        confirmed_at: view.confirmed_at.map(to_timestamp),
        tracking: view.tracking.clone(),
        source: view.source.clone(),
        is_exported: view.is_exported(),
        exported_at: view.export.exported_at.map(to_timestamp),
        export_batch: view.export.batch_id.clone().unwrap_or_default(),
        is_removed: view.is_removed(),
        removed_at: view.removal.scrubbed_at.map(to_timestamp),
        removal_rule: view.removal.rule.map_or("", ScrubRule::as_str).to_owned(),
        email: if include_email {
            view.email().unwrap_or_default().to_owned()
        } else {
            String::new()
        },
    }
}

/// A fresh confirmation code: hex of 16 random bytes (the legacy code).
fn new_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Intake {
    /// The subscription a confirmation code was issued for.
    async fn subscription_id_of(&self, code: &str) -> Result<u64, IntakeError> {
        match self.first_of(&code_stream(code)).await? {
            Some(DomainEvent::SubscriptionCodeIssued(e)) => Ok(e.subscription_id),
            _ => Err(IntakeError::UnknownSubscriptionCode),
        }
    }

    /// Loads a subscription's three streams; the address is unsealed when `unseal`.
    async fn load_subscription(
        &self,
        id: u64,
        unseal: bool,
    ) -> Result<SubscriptionLoad, IntakeError> {
        let loaded = repository::load_subscription(&*self.log, id).await?;
        self.fold_loaded(
            loaded,
            unseal,
            SubscriptionView::apply,
            SubscriptionView::exists,
        )
        .await?
        .ok_or(IntakeError::NotFound { what: WHAT, id })
    }

    /// The last subscription time the duplicate index stream `stream` holds, with the
    /// stream's revision.
    async fn last_subscribed(
        &self,
        stream: &str,
    ) -> Result<(Option<chrono::DateTime<chrono::Utc>>, CurrentRevision), IntakeError> {
        let recorded = self
            .log
            .read_stream(stream, Direction::Backwards, StreamStart::Beginning, 1)
            .await?;
        let Some(last) = recorded.into_iter().next() else {
            return Ok((None, CurrentRevision::NoStream));
        };
        let at = match DomainEvent::decode(&last.event_type, &last.payload)? {
            DomainEvent::SubscriptionEmailUsed(e) => opt_datetime(e.subscribed_at.as_ref()),
            _ => None,
        };
        Ok((at, CurrentRevision::At(last.revision)))
    }

    /// A new subscription (status new): refused when the same address subscribed in the last
    /// 30 minutes. Answers its id and confirmation code.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn subscribe(
        &self,
        meta: &RequestMeta,
        email: &str,
        campaign: &str,
        keyword: &str,
        source: &str,
    ) -> Result<api::SubscribeResponse, IntakeError> {
        let input: NewSubscription =
            validate_subscribe(email, campaign, keyword, source).map_err(IntakeError::Invalid)?;
        self.run(meta, Method::Subscribe, async {
            let now = self.clock.now();
            let address = normalised_email(&input.email);
            let window = window_of(now);
            let keys = self.vault.keys();
            let own_key = keys
                .get_or_create(subscription_window_key_id(window))
                .await?;
            let own_hmac = email_hmac(&own_key, &address);
            let own_stream = email_stream(&own_hmac);
            let (mut last, own_revision) = self.last_subscribed(&own_stream).await?;
            // The previous window's key, unless it was never made or is destroyed already.
            let previous = subscription_window_key_id(window.saturating_sub(1));
            if let Some(key) = keys.get_many(&[previous]).await?.get(&previous) {
                let (at, _) = self
                    .last_subscribed(&email_stream(&email_hmac(key, &address)))
                    .await?;
                last = last.max(at);
            }
            commands::check_interval(last, now)?;
            let id = self.ids.take(SequenceName::Subscription).await?.id;
            let code = new_code();
            let mut events = commands::create(id, &input, &code, &own_hmac, now);
            self.seal(subscription_key_id(id), &mut events).await?;
            Ok(Plan {
                events,
                read: HashMap::from([(own_stream, own_revision)]),
                response: api::SubscribeResponse {
                    subscription_id: id,
                    confirmation_code: code,
                    position: 0,
                },
                stored: None,
            })
        })
        .await
    }

    /// A decision on a subscription: load, decide (the events, and the keys to destroy before
    /// they are appended), answer with the state after the call.
    async fn subscription_decision(
        &self,
        meta: &RequestMeta,
        method: Method,
        id: impl std::future::Future<Output = Result<u64, IntakeError>>,
        decide: impl FnOnce(&SubscriptionView) -> Result<(Vec<StreamEvent>, Vec<u64>), DomainError>,
    ) -> Result<api::SubscriptionResponse, IntakeError> {
        self.run(meta, method, async {
            let mut load = self.load_subscription(id.await?, false).await?;
            let (events, shred) = decide(&load.view)?;
            self.vault.destroy(&shred).await?;
            for e in &events {
                load.view.apply(&e.stream, &e.event);
            }
            Ok(Plan {
                events,
                read: load.read,
                response: api::SubscriptionResponse {
                    subscription: Some(subscription_message(&load.view, false)),
                    position: 0,
                },
                stored: None,
            })
        })
        .await
    }

    /// The subscriber confirmed with the code of the confirmation mail.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn confirm_subscription(
        &self,
        meta: &RequestMeta,
        confirmation_code: &str,
    ) -> Result<api::SubscriptionResponse, IntakeError> {
        invalid_if_any(validate_confirmation_code(confirmation_code))?;
        let code = confirmation_code.to_ascii_lowercase();
        let now = self.clock.now();
        self.subscription_decision(
            meta,
            Method::ConfirmSubscription,
            self.subscription_id_of(&code),
            |view| Ok((commands::confirm(view, now)?, Vec::new())),
        )
        .await
    }

    /// The export batch exported these subscriptions. Already exported ones are reported, not
    /// refused; any other refusal refuses the whole batch (nothing is appended).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn mark_subscriptions_exported(
        &self,
        meta: &RequestMeta,
        subscription_ids: &[u64],
        batch_id: &str,
    ) -> Result<api::MarkSubscriptionsExportedResponse, IntakeError> {
        let batch = ExportBatch {
            method: Method::MarkSubscriptionsExported,
            ids_field: "subscription_ids",
            ids: subscription_ids,
            batch_id,
            decide: commands::mark_exported,
            already_exported: |e| matches!(e, DomainError::SubscriptionAlreadyExported { .. }),
            in_batch: |subscription_id, source| IntakeError::InSubscriptionBatch {
                subscription_id,
                source,
            },
        };
        self.export_batch(meta, batch, |id| self.load_subscription(id, false))
            .await
    }

    /// A subscription folded from the log, its address unsealed while its key exists.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn get_subscription(
        &self,
        subscription_id: u64,
    ) -> Result<api::Subscription, IntakeError> {
        invalid_if_any(validate_id("subscription_id", subscription_id))?;
        let load = self.load_subscription(subscription_id, true).await?;
        Ok(subscription_message(&load.view, true))
    }

    /// A forced removal by id (a GDPR request): the subscription's key is destroyed first (as
    /// the removal job does, so a crash in between leaves an unreadable address that a retry
    /// marks removed), then `PersonalDataScrubbed` appended. The key of the duplicate-index
    /// window it was made in goes too once no duplicate check needs it any more.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn remove_subscription(
        &self,
        meta: &RequestMeta,
        subscription_id: u64,
    ) -> Result<api::SubscriptionResponse, IntakeError> {
        invalid_if_any(validate_id("subscription_id", subscription_id))?;
        let now = self.clock.now();
        let id = async { Ok(subscription_id) };
        self.subscription_decision(meta, Method::RemoveSubscription, id, |view| {
            let events = commands::force_remove(view, now)?;
            let mut shred = vec![subscription_key_id(subscription_id)];
            let made_in = view.created_at.map(window_of);
            if let Some(window) = made_in.filter(|w| w + 2 <= window_of(now)) {
                shred.push(subscription_window_key_id(window));
            }
            Ok((events, shred))
        })
        .await
    }

    /// A subscription folded from the log with its address unsealed while its key exists (the
    /// audit; only `GetSubscription` answers with the address).
    pub async fn subscription_view(&self, id: u64) -> Result<SubscriptionView, IntakeError> {
        Ok(self.load_subscription(id, true).await?.view)
    }
}
