//! One method per command. Each loads what it reads, lets the domain decide, seals and
//! commits through [`Intake::run`], so every mutating call is idempotent per request id.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::{donation_message, reference, Intake, IntakeError, Loaded, Method, Plan, RequestMeta};
use crate::domain::admission::{self, holds, Holds};
use crate::domain::commands::{self, DonationIds, FollowUpIds, NewComment, NewDonation, NewDonor};
use crate::domain::contribution_tracking::{ContributionTrackingFields, ContributionTrackingState};
use crate::domain::donation::DonationState;
use crate::domain::moderation::{ModerationReason, ModerationStatus};
use crate::domain::payment::{PaymentState, PaymentStatus};
use crate::domain::streams;
use crate::domain::types::{Money, PaymentMethod};
use crate::domain::validation::{
    donor_fits_payment, validate_comment, validate_donor, validate_new_donation, FieldError,
};
use crate::domain::{DomainError, DonationView, StreamEvent};
use crate::proto::{api, events as ev};
use crate::sequence::{new_token, SequenceName, MAX_BLOCK};
use crate::store::CurrentRevision;

/// Longest free-text reason, batch id or note.
const MAX_REASON_CHARS: usize = 1000;
/// Most donations in one `MarkExported` batch.
pub const MAX_EXPORT_BATCH: usize = 1000;
/// Views loaded concurrently by a batch.
const BATCH_CONCURRENCY: usize = 16;

/// A provider's booking notification.
#[derive(Debug, Clone)]
pub struct BookPaymentCommand {
    /// The payment.
    pub payment_id: u64,
    /// Provider transaction id.
    pub transaction_id: String,
    /// When the provider booked it (now when absent).
    pub valuation_date: Option<DateTime<Utc>>,
    /// The amount the provider reports.
    pub amount: Option<Money>,
    /// Further provider data.
    pub provider: ev::ProviderData,
}

/// A refund or charge-back.
#[derive(Debug, Clone)]
pub struct MoneyBack {
    /// The payment.
    pub payment_id: u64,
    /// The amount; `None` for everything still held.
    pub amount: Option<Money>,
    /// Why.
    pub reason: String,
}

fn bad(field: &str, rule: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        rule: rule.into(),
    }
}

/// Checks a text field against what its column holds (the admission rule's length and
/// character set).
fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, holds: Holds) {
    if let Some(rule) = admission::text_misfit(value, holds) {
        errors.push(bad(field, rule));
    }
}

fn invalid_if_any(errors: Vec<FieldError>) -> Result<(), IntakeError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IntakeError::Invalid(errors))
    }
}

fn check_id(field: &str, id: u64) -> Result<(), IntakeError> {
    if id == 0 || i64::try_from(id).is_err() {
        return Err(IntakeError::field(field, "is required: a positive id"));
    }
    Ok(())
}

fn check_reason(field: &str, reason: &str) -> Result<(), IntakeError> {
    let mut errors = Vec::new();
    check_text(&mut errors, field, reason, Holds::Lines(MAX_REASON_CHARS));
    invalid_if_any(errors)
}

/// A view loaded for a decision, with the revisions of the streams it was folded from.
struct ViewLoad {
    view: DonationView,
    read: HashMap<String, CurrentRevision>,
}

impl ViewLoad {
    /// Applies decided events so the answer shows the state after the call.
    fn apply(&mut self, events: &[StreamEvent]) {
        for e in events {
            self.view.apply(&e.stream, &e.event);
        }
    }
}

impl Intake {
    /// Loads the six streams of a donation; personal units are unsealed when `unseal`.
    async fn load_view(&self, donation_id: u64, unseal: bool) -> Result<ViewLoad, IntakeError> {
        let donation_stream = streams::donation(donation_id);
        let mut donation = self.load(&donation_stream).await?;
        let state = DonationState::fold(&donation.events);
        if !state.exists() {
            return Err(IntakeError::NotFound {
                what: "donation",
                id: donation_id,
            });
        }
        let names = [
            streams::payment(state.payment_id),
            streams::moderation(donation_id),
            streams::deletion(donation_id),
            streams::export(donation_id),
            streams::scrub(donation_id),
        ];
        let mut others: Vec<Loaded> =
            futures::future::try_join_all(names.iter().map(|s| self.load(s))).await?;
        if unseal {
            // One key lookup for both streams that carry personal units.
            let both = donation.events.iter_mut().chain(&mut others[0].events);
            self.vault.unseal(both).await?;
        }
        let mut view = DonationView::default();
        let mut read = HashMap::new();
        for e in &donation.events {
            view.apply(&donation_stream, e);
        }
        read.insert(donation_stream, donation.revision);
        for (name, loaded) in names.into_iter().zip(others) {
            for e in &loaded.events {
                view.apply(&name, e);
            }
            read.insert(name, loaded.revision);
        }
        Ok(ViewLoad { view, read })
    }

    /// Loads a payment stream, unsealed (a booking compares transaction ids).
    async fn load_payment(
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

    /// A new donation with its payment and, when the policy says so, moderation reasons, in one
    /// atomic append.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn add_donation(
        &self,
        meta: &RequestMeta,
        cmd: NewDonation,
    ) -> Result<api::AddDonationResponse, IntakeError> {
        invalid_if_any(validate_new_donation(&cmd))?;
        let supplied = cmd.donation_id;
        let result = self
            .run_flagged(meta, Method::AddDonation, self.plan_donation(cmd), false)
            .await;
        let response = match (result, supplied) {
            (
                Err(IntakeError::Store(crate::store::StoreError::Conflict { stream, .. })),
                Some(id),
            ) if stream == streams::donation(id) => {
                return Err(IntakeError::AlreadyExists {
                    what: "donation",
                    id,
                })
            }
            (result, _) => result?,
        };
        let (mut response, replayed) = response;
        if replayed {
            // An answer from the idempotency record: the code is personal (sealed in the
            // payment stream), so it is read back from there.
            if let Ok((payment, _)) = self.load_payment(response.payment_id).await {
                if let Some(bank) = payment.bank {
                    response.payment_reference_code = bank.payment_reference_code;
                }
            }
        }
        Ok(response)
    }

    async fn plan_donation(
        &self,
        cmd: NewDonation,
    ) -> Result<Plan<api::AddDonationResponse>, IntakeError> {
        let (donation_id, key) = match cmd.donation_id {
            Some(id) => {
                let current = self.sequences.current(SequenceName::Donation).await?;
                if current.is_none_or(|c| id > c) {
                    return Err(IntakeError::field(
                        "donation_id",
                        "was not handed out by NextId(donation)",
                    ));
                }
                (id, None)
            }
            None => {
                let r = self.ids.take(SequenceName::Donation).await?;
                (r.id, r.key)
            }
        };
        let payment_id = self.ids.take(SequenceName::Payment).await?.id;
        let ids = DonationIds {
            donation_id,
            payment_id,
        };
        let created = commands::create_donation(
            &cmd,
            ids,
            self.clock.now(),
            &self.policy,
            reference::generate,
        )?;
        let mut events = created.events;
        match key {
            // The key was created with the id block: no key-store commit on this path.
            Some(key) => {
                for e in &mut events {
                    crate::privacy::seal_with(
                        std::slice::from_mut(&mut e.event),
                        donation_id,
                        &key,
                    );
                }
            }
            None => self.seal(donation_id, &mut events).await?,
        }
        let moderation = if created.reasons.is_empty() {
            ModerationStatus::None
        } else {
            ModerationStatus::Open
        };
        let response = api::AddDonationResponse {
            donation_id,
            payment_id,
            payment_state: PaymentStatus::Pending.as_str().to_owned(),
            moderation_state: moderation.as_str().to_owned(),
            moderation_reasons: created
                .reasons
                .iter()
                .map(ModerationReason::to_proto)
                .collect(),
            payment_reference_code: created.payment_reference_code,
            position: 0,
        };
        let stored = api::AddDonationResponse {
            payment_reference_code: String::new(),
            ..response.clone()
        };
        Ok(Plan {
            events,
            read: HashMap::new(),
            response,
            stored: Some(stored),
        })
    }

    /// A provider booked a payment; booking an initial recurring PayPal payment again creates
    /// a follow-up payment and donation.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn book_payment(
        &self,
        meta: &RequestMeta,
        cmd: BookPaymentCommand,
    ) -> Result<api::PaymentResponse, IntakeError> {
        check_id("payment_id", cmd.payment_id)?;
        let mut errors = Vec::new();
        if cmd.transaction_id.trim().is_empty() {
            errors.push(bad("transaction_id", "is required"));
        }
        for (field, value) in [
            ("transaction_id", &cmd.transaction_id),
            ("payer_id", &cmd.provider.payer_id),
            ("subscription_id", &cmd.provider.subscription_id),
            ("payer_status", &cmd.provider.payer_status),
            ("payment_status", &cmd.provider.payment_status),
        ] {
            check_text(&mut errors, field, value, holds("payment.transaction_id"));
        }
        invalid_if_any(errors)?;
        self.run(meta, Method::BookPayment, async {
            let (payment, revision) = self.load_payment(cmd.payment_id).await?;
            let txn = cmd.transaction_id.trim();
            let follow_up = if payment.status == PaymentStatus::Booked
                && !payment.knows_transaction(txn)
                && payment.method == Some(PaymentMethod::PayPal)
                && payment.interval_months > 0
                && payment.parent_payment_id.is_none()
            {
                Some(FollowUpIds {
                    child_payment_id: self.ids.take(SequenceName::Payment).await?.id,
                    child_donation_id: self.ids.take(SequenceName::Donation).await?.id,
                })
            } else {
                None
            };
            let decision = commands::book_payment(
                &payment,
                &commands::BookPayment {
                    transaction_id: txn.to_owned(),
                    valuation_date: cmd.valuation_date.unwrap_or_else(|| self.clock.now()),
                    amount: cmd.amount.clone(),
                    provider: cmd.provider.clone(),
                    follow_up,
                },
            )?;
            let own = streams::payment(payment.payment_id);
            let (mut parent_events, mut child_events): (Vec<_>, Vec<_>) =
                decision.into_iter().partition(|e| e.stream == own);
            let mut state = payment.clone();
            for e in &parent_events {
                state.apply(&e.event);
            }
            let mut response = api::PaymentResponse {
                payment_id: payment.payment_id,
                payment_state: state.status.as_str().to_owned(),
                ..Default::default()
            };
            if let (Some(ids), false) = (follow_up, child_events.is_empty()) {
                let parent = self.load(&streams::donation(payment.donation_id)).await?;
                let parent = DonationState::fold(&parent.events);
                child_events.extend(commands::follow_up_donation(
                    &parent,
                    ids,
                    self.clock.now(),
                )?);
                self.seal(ids.child_donation_id, &mut child_events).await?;
                response.follow_up_payment_id = ids.child_payment_id;
                response.follow_up_donation_id = ids.child_donation_id;
            }
            self.seal(payment.donation_id, &mut parent_events).await?;
            parent_events.extend(child_events);
            Ok(Plan {
                events: parent_events,
                read: HashMap::from([(own, revision)]),
                response,
                stored: None,
            })
        })
        .await
    }

    /// A payment-only decision on one payment stream.
    async fn payment_decision(
        &self,
        meta: &RequestMeta,
        method: Method,
        payment_id: u64,
        decide: impl FnOnce(&PaymentState) -> Result<Vec<StreamEvent>, DomainError>,
    ) -> Result<api::PaymentResponse, IntakeError> {
        check_id("payment_id", payment_id)?;
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

    /// A provider reported a failed payment.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn fail_payment(
        &self,
        meta: &RequestMeta,
        payment_id: u64,
        reason: &str,
    ) -> Result<api::PaymentResponse, IntakeError> {
        check_reason("reason", reason)?;
        self.payment_decision(meta, Method::FailPayment, payment_id, |p| {
            commands::fail_payment(p, reason)
        })
        .await
    }

    /// A provider refunded (part of) a payment.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn refund_payment(
        &self,
        meta: &RequestMeta,
        cmd: MoneyBack,
    ) -> Result<api::PaymentResponse, IntakeError> {
        check_reason("reason", &cmd.reason)?;
        self.payment_decision(meta, Method::RefundPayment, cmd.payment_id, |p| {
            commands::refund_payment(p, cmd.amount.as_ref(), &cmd.reason)
        })
        .await
    }

    /// The payer's bank reversed a payment.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn report_chargeback(
        &self,
        meta: &RequestMeta,
        cmd: MoneyBack,
    ) -> Result<api::PaymentResponse, IntakeError> {
        check_reason("reason", &cmd.reason)?;
        self.payment_decision(meta, Method::ReportChargeback, cmd.payment_id, |p| {
            commands::report_chargeback(p, cmd.amount.as_ref(), &cmd.reason)
        })
        .await
    }

    /// A decision on a donation's view; the answer is the view after it, without personal data.
    async fn donation_decision(
        &self,
        meta: &RequestMeta,
        method: Method,
        donation_id: u64,
        unseal: bool,
        decide: impl FnOnce(&DonationView) -> Result<Vec<StreamEvent>, IntakeError>,
    ) -> Result<api::DonationResponse, IntakeError> {
        check_id("donation_id", donation_id)?;
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
                },
                stored: None,
            })
        })
        .await
    }

    /// The donor cancels (direct debit and bank transfer only).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn cancel_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        check_reason("reason", reason)?;
        self.donation_decision(meta, Method::CancelDonation, donation_id, false, |v| {
            Ok(commands::cancel_by_donor(v, reason)?)
        })
        .await
    }

    /// An administrator deletes a donation.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        check_reason("reason", reason)?;
        self.donation_decision(meta, Method::DeleteDonation, donation_id, false, |v| {
            Ok(commands::delete_by_admin(v, reason)?)
        })
        .await
    }

    /// An administrator restores a cancelled or deleted donation.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn restore_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        check_reason("reason", reason)?;
        self.donation_decision(meta, Method::RestoreDonation, donation_id, false, |v| {
            Ok(commands::restore(v, reason)?)
        })
        .await
    }

    /// An administrator flags a donation for moderation.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn flag_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        note: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        check_reason("reason", note)?;
        self.donation_decision(meta, Method::FlagDonation, donation_id, false, |v| {
            Ok(commands::flag_manually(v, note)?)
        })
        .await
    }

    /// A moderator approves a donation, optionally as anonymous.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn approve_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        as_anonymous: bool,
    ) -> Result<api::DonationResponse, IntakeError> {
        self.donation_decision(meta, Method::ApproveDonation, donation_id, false, |v| {
            Ok(commands::approve(v, as_anonymous)?)
        })
        .await
    }

    /// The donor adds the donation's one comment; the text policy may force it private.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn add_comment(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        comment: NewComment,
    ) -> Result<api::DonationResponse, IntakeError> {
        invalid_if_any(validate_comment(&comment))?;
        let policy = &self.policy;
        self.donation_decision(meta, Method::AddComment, donation_id, false, |v| {
            Ok(commands::add_comment(v, policy, &comment)?)
        })
        .await
    }

    /// A moderator publishes the comment (its private text is read, so the view is unsealed).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn publish_comment(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        check_reason("reason", reason)?;
        let policy = &self.policy;
        self.donation_decision(meta, Method::PublishComment, donation_id, true, |v| {
            Ok(commands::publish_comment(v, policy)?)
        })
        .await
    }

    /// A moderator retracts a published comment.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn retract_comment(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        check_reason("reason", reason)?;
        self.donation_decision(meta, Method::RetractComment, donation_id, false, |v| {
            Ok(commands::retract_comment(v, reason)?)
        })
        .await
    }

    /// The donor's data changes.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn update_donor(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        donor: NewDonor,
    ) -> Result<api::DonationResponse, IntakeError> {
        invalid_if_any(validate_donor(&donor))?;
        let (public, personal) = (donor.public(), donor.personal());
        self.donation_decision(meta, Method::UpdateDonor, donation_id, false, |v| {
            if let Some(rule) = donor_fits_payment(donor.kind, v.payment_method()) {
                return Err(IntakeError::field("donor.kind", rule));
            }
            Ok(commands::update_donor(v, public, personal)?)
        })
        .await
    }

    /// The export batch exported these donations. Already exported ones are reported, not
    /// refused; any other refusal refuses the whole batch (nothing is appended).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn mark_exported(
        &self,
        meta: &RequestMeta,
        donation_ids: &[u64],
        batch_id: &str,
    ) -> Result<api::MarkExportedResponse, IntakeError> {
        let mut errors = Vec::new();
        if donation_ids.is_empty() || donation_ids.len() > MAX_EXPORT_BATCH {
            errors.push(bad(
                "donation_ids",
                format!("must hold 1 to {MAX_EXPORT_BATCH} ids"),
            ));
        }
        if donation_ids
            .iter()
            .any(|&id| id == 0 || i64::try_from(id).is_err())
        {
            errors.push(bad("donation_ids", "must hold positive ids only"));
        }
        if batch_id.trim().is_empty() {
            errors.push(bad("batch_id", "is required"));
        }
        check_text(
            &mut errors,
            "batch_id",
            batch_id,
            holds("donation.export_batch"),
        );
        invalid_if_any(errors)?;
        let mut ids = donation_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        self.run(meta, Method::MarkExported, async {
            let now = self.clock.now();
            let loads: Vec<(u64, ViewLoad)> = futures::stream::iter(ids.iter().copied())
                .map(|id| async move {
                    self.load_view(id, false)
                        .await
                        .map(|l| (id, l))
                        .map_err(|e| IntakeError::InBatch {
                            donation_id: id,
                            source: Box::new(e),
                        })
                })
                .buffered(BATCH_CONCURRENCY)
                .try_collect()
                .await?;
            let mut events = Vec::new();
            let mut read = HashMap::new();
            let mut response = api::MarkExportedResponse::default();
            for (id, load) in loads {
                match commands::mark_exported(&load.view, batch_id, now) {
                    Ok(decided) => {
                        response.exported.push(id);
                        events.extend(decided);
                        read.extend(load.read);
                    }
                    Err(DomainError::AlreadyExported { .. }) => response.already_exported.push(id),
                    Err(e) => {
                        return Err(IntakeError::InBatch {
                            donation_id: id,
                            source: Box::new(e.into()),
                        })
                    }
                }
            }
            Ok(Plan {
                events,
                read,
                response,
                stored: None,
            })
        })
        .await
    }

    /// Tracking data for a contribution-tracking id. Tracking data from a second allocation of
    /// the id (another allocation token: the sequence generator handed it out twice) is
    /// recorded as evidence, answered with `allocation_collision`, counted and logged; the fold
    /// and the projector keep it out of the row and the projector reports the conflict.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn record_contribution_tracking(
        &self,
        meta: &RequestMeta,
        contribution_tracking_id: u64,
        allocation_token: &str,
        fields: ContributionTrackingFields,
    ) -> Result<api::ContributionTrackingResponse, IntakeError> {
        check_id("contribution_tracking_id", contribution_tracking_id)?;
        let mut errors = Vec::new();
        if allocation_token.is_empty() {
            errors.push(bad(
                "allocation_token",
                "is required: send the token NextId returned with the id",
            ));
        } else if allocation_token.len() > 64
            || !allocation_token.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            errors.push(bad(
                "allocation_token",
                "must be the token NextId returned (up to 64 letters and digits)",
            ));
        }
        // Every field against its column: texts, decimals, the tracking date.
        errors.extend(admission::admit_tracking_fields(&fields));
        invalid_if_any(errors)?;
        self.check_handed_out(contribution_tracking_id).await?;
        let plan = async {
            let stream = streams::contribution_tracking(contribution_tracking_id);
            let loaded = self.load(&stream).await?;
            let state = ContributionTrackingState::fold(&loaded.events);
            let decided = commands::record_contribution_tracking(
                &state,
                contribution_tracking_id,
                allocation_token,
                fields,
            );
            // The row's contribution belongs to the first allocation, not to this caller.
            let contribution_id = if decided.collision {
                0
            } else {
                state.contribution_id.unwrap_or_default()
            };
            Ok(Plan {
                events: decided.events,
                read: HashMap::from([(stream, loaded.revision)]),
                response: api::ContributionTrackingResponse {
                    contribution_tracking_id,
                    contribution_id,
                    position: 0,
                    allocation_collision: decided.collision,
                },
                stored: None,
            })
        };
        let (response, replayed) = self
            .run_flagged(meta, Method::RecordContributionTracking, plan, true)
            .await?;
        // Reported once, by the call that appended the evidence.
        if response.allocation_collision && !replayed {
            self.metrics.count(
                "ledger_sequence_collisions_total",
                &[("sequence", SequenceName::ContributionTracking.as_str())],
                1,
            );
            tracing::warn!(
                contribution_tracking_id,
                position = response.position,
                "contribution-tracking id allocated twice: the sequence generator handed it out \
                 again; the tracking data was recorded as a collision, not merged"
            );
        }
        Ok(response)
    }

    /// Refuses a contribution-tracking id the sequence has not handed out yet: the log would
    /// otherwise hold ids ahead of the sequence (`ledger sequence check` fails on that).
    async fn check_handed_out(&self, contribution_tracking_id: u64) -> Result<(), IntakeError> {
        let current = self
            .sequences
            .current(SequenceName::ContributionTracking)
            .await?;
        if current.is_none_or(|c| contribution_tracking_id > c) {
            return Err(IntakeError::field(
                "contribution_tracking_id",
                "was not handed out by NextId(contribution-tracking)",
            ));
        }
        Ok(())
    }

    /// Links a contribution to a tracking id; the first contribution id wins.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn link_contribution(
        &self,
        meta: &RequestMeta,
        contribution_tracking_id: u64,
        contribution_id: u64,
    ) -> Result<api::ContributionTrackingResponse, IntakeError> {
        check_id("contribution_tracking_id", contribution_tracking_id)?;
        check_id("contribution_id", contribution_id)?;
        self.check_handed_out(contribution_tracking_id).await?;
        self.run(meta, Method::LinkContribution, async {
            let stream = streams::contribution_tracking(contribution_tracking_id);
            let loaded = self.load(&stream).await?;
            let state = ContributionTrackingState::fold(&loaded.events);
            let events = match commands::link_contribution(
                &state,
                contribution_tracking_id,
                contribution_id,
            ) {
                Err(e @ DomainError::ContributionAlreadyLinked { .. }) => {
                    self.metrics
                        .count("ledger_contribution_link_refusals_total", &[], 1);
                    tracing::warn!(
                        contribution_tracking_id,
                        contribution_id,
                        "refused to change the linked contribution id"
                    );
                    return Err(e.into());
                }
                other => other?,
            };
            Ok(Plan {
                events,
                read: HashMap::from([(stream, loaded.revision)]),
                response: api::ContributionTrackingResponse {
                    contribution_tracking_id,
                    contribution_id,
                    position: 0,
                    allocation_collision: false,
                },
                stored: None,
            })
        })
        .await
    }

    /// The combined view of a donation folded from the log and decrypted: a confirmation page
    /// sees its own write even while projectors lag.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn get_donation(&self, donation_id: u64) -> Result<api::Donation, IntakeError> {
        check_id("donation_id", donation_id)?;
        let load = self.load_view(donation_id, true).await?;
        Ok(donation_message(&load.view, true))
    }

    /// A block of ids from a named sequence, with a fresh allocation token. Idempotent per
    /// request id: the ids are taken durably first, then the answer is recorded in
    /// `request-{id}`; a repeat answers from the record and takes nothing. A crash in between
    /// only leaves a gap (the caller never saw those ids).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn next_id(
        &self,
        meta: &RequestMeta,
        sequence: &str,
        count: u32,
    ) -> Result<api::NextIdResponse, IntakeError> {
        let name = SequenceName::parse(sequence)
            .map_err(|e| IntakeError::field("sequence", e.to_string()))?;
        let count = u64::from(count.max(1));
        if count > MAX_BLOCK {
            return Err(IntakeError::field(
                "count",
                format!("must be at most {MAX_BLOCK}"),
            ));
        }
        self.run(meta, Method::NextId, async {
            let block = self.sequences.next_block(name, count).await?;
            Ok(Plan {
                events: Vec::new(),
                read: HashMap::new(),
                response: api::NextIdResponse {
                    first_id: *block.start(),
                    last_id: *block.end(),
                    allocation_token: new_token(),
                    position: 0,
                },
                stored: None,
            })
        })
        .await
    }
}
