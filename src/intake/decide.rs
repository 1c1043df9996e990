//! The two shapes of a decision on existing state, and the loading they need: a decision on
//! a donation's view (folded from its six streams) and one on a payment stream. Each loads,
//! lets the domain decide, seals and commits through [`Intake::run`].

use std::collections::HashMap;

use super::error::invalid_if_any;
use super::{donation_message, Intake, IntakeError, Method, Plan, RequestMeta};
use crate::domain::commands::Decision;
use crate::domain::payment::PaymentState;
use crate::domain::streams;
use crate::domain::validation::{validate_id, validate_reason};
use crate::domain::{DomainError, DomainEvent, DonationView, StreamEvent};
use crate::proto::api;
use crate::repository::{self, LoadedStream};
use crate::store::{CurrentRevision, Direction, StreamStart};

/// An entity's view (a donation's, an application's, an address change's …) loaded for a
/// decision, with the revisions of the streams it was folded from.
pub(super) struct ContextLoad<V> {
    pub(super) view: V,
    pub(super) read: HashMap<String, CurrentRevision>,
}

/// A donation's view loaded for a decision.
pub(super) type ViewLoad = ContextLoad<DonationView>;

impl ViewLoad {
    /// Applies decided events so the answer shows the state after the call.
    pub(super) fn apply(&mut self, events: &[StreamEvent]) {
        for e in events {
            self.view.apply(&e.stream, &e.event);
        }
    }
}

impl Intake {
    /// The first event of an index stream (an address-change token's, a confirmation
    /// code's), decoded; `None` when nothing was indexed under it.
    pub(super) async fn first_of(&self, stream: &str) -> Result<Option<DomainEvent>, IntakeError> {
        let recorded = self
            .log
            .read_stream(stream, Direction::Forwards, StreamStart::Beginning, 1)
            .await?;
        match recorded.into_iter().next() {
            Some(first) => Ok(Some(DomainEvent::decode(
                &first.event_type,
                &first.payload,
            )?)),
            None => Ok(None),
        }
    }

    /// An entity's view folded from its loaded streams (the first, its own, unsealed when
    /// `unseal`) with the revisions read; `None` when there are no streams or the view says
    /// the entity was never created.
    pub(super) async fn fold_loaded<V: Default>(
        &self,
        loaded: Option<Vec<LoadedStream>>,
        unseal: bool,
        apply: fn(&mut V, &str, &DomainEvent),
        exists: fn(&V) -> bool,
    ) -> Result<Option<ContextLoad<V>>, IntakeError> {
        let Some(mut streams) = loaded else {
            return Ok(None);
        };
        if unseal {
            let own = streams[0].steps.iter_mut().map(|s| &mut s.event);
            self.vault.unseal(own).await?;
        }
        let mut view = V::default();
        let mut read = HashMap::new();
        for stream in &streams {
            for s in &stream.steps {
                apply(&mut view, &stream.name, &s.event);
            }
            read.insert(stream.name.clone(), stream.revision);
        }
        Ok(exists(&view).then_some(ContextLoad { view, read }))
    }

    /// Loads the six streams of a donation; personal units are unsealed when `unseal`.
    pub(super) async fn load_view(
        &self,
        donation_id: u64,
        unseal: bool,
    ) -> Result<ViewLoad, IntakeError> {
        let not_found = || IntakeError::NotFound {
            what: "donation",
            id: donation_id,
        };
        let mut loaded = repository::load_donation(&*self.log, donation_id)
            .await?
            .ok_or_else(not_found)?;
        if !loaded.state.exists() {
            return Err(not_found());
        }
        if unseal {
            // One key lookup for both streams that carry personal units.
            let payment = &mut loaded.related[0];
            let both = loaded.donation.steps.iter_mut().chain(&mut payment.steps);
            self.vault.unseal(both.map(|s| &mut s.event)).await?;
        }
        let mut view = DonationView::default();
        let mut read = HashMap::new();
        for stream in loaded.streams() {
            for s in &stream.steps {
                view.apply(&stream.name, &s.event);
            }
            read.insert(stream.name.clone(), stream.revision);
        }
        Ok(ViewLoad { view, read })
    }

    /// Loads a payment stream, unsealed (a booking compares transaction ids).
    pub(super) async fn load_payment(
        &self,
        payment_id: u64,
    ) -> Result<(PaymentState, CurrentRevision), IntakeError> {
        let mut loaded = self.load(&streams::payment(payment_id)).await?;
        self.vault.unseal(&mut loaded.events).await?;
        let state = PaymentState::fold(&loaded.events);
        if !state.initiated {
            return Err(IntakeError::NotFound {
                what: "payment",
                id: payment_id,
            });
        }
        Ok((state, loaded.revision))
    }

    /// A payment-only decision on one payment stream.
    pub(super) async fn payment_decision(
        &self,
        meta: &RequestMeta,
        method: Method,
        payment_id: u64,
        decide: impl FnOnce(&PaymentState) -> Result<Vec<StreamEvent>, DomainError>,
    ) -> Result<api::PaymentResponse, IntakeError> {
        invalid_if_any(validate_id("payment_id", payment_id))?;
        self.run(meta, method, async {
            let (payment, revision) = self.load_payment(payment_id).await?;
            let events = decide(&payment)?;
            let mut state = payment.clone();
            for e in &events {
                state.apply(&e.event);
            }
            Ok(Plan {
                events,
                read: HashMap::from([(streams::payment(payment_id), revision)]),
                response: api::PaymentResponse {
                    payment_id,
                    payment_state: state.status.as_str().to_owned(),
                    ..Default::default()
                },
                stored: None,
            })
        })
        .await
    }

    /// A decision on a donation's view; the answer is the view after it, without personal data.
    pub(super) async fn donation_decision(
        &self,
        meta: &RequestMeta,
        method: Method,
        donation_id: u64,
        unseal: bool,
        decide: impl FnOnce(&DonationView) -> Result<Vec<StreamEvent>, IntakeError>,
    ) -> Result<api::DonationResponse, IntakeError> {
        invalid_if_any(validate_id("donation_id", donation_id))?;
        self.run(meta, method, async {
            let mut load = self.load_view(donation_id, unseal).await?;
            let mut events = decide(&load.view)?;
            load.apply(&events);
            self.seal(donation_id, &mut events).await?;
            Ok(Plan {
                events,
                read: load.read,
                response: api::DonationResponse {
                    donation: Some(donation_message(&load.view, false)),
                    position: 0,
                    address_change_token: String::new(),
                },
                stored: None,
            })
        })
        .await
    }

    /// A decision on a donation's view that takes the action's free-text reason (or note),
    /// checked first; the view stays sealed.
    pub(super) async fn reasoned_decision(
        &self,
        meta: &RequestMeta,
        method: Method,
        donation_id: u64,
        reason: &str,
        decide: impl FnOnce(&DonationView, &str) -> Decision,
    ) -> Result<api::DonationResponse, IntakeError> {
        invalid_if_any(validate_reason(reason))?;
        self.donation_decision(meta, method, donation_id, false, |v| Ok(decide(v, reason)?))
            .await
    }
}
