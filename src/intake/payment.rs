//! Payment commands: a provider books, fails, refunds or charges back a payment.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::error::invalid_if_any;
use super::{Intake, IntakeError, Method, Plan, RequestMeta};
use crate::domain::commands::{self, FollowUpIds};
use crate::domain::donation::DonationState;
use crate::domain::streams;
use crate::domain::types::Money;
use crate::domain::validation::{validate_booking, validate_id, validate_reason};
use crate::proto::{api, events as ev};
use crate::sequence::SequenceName;

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

impl Intake {
    /// A provider booked a payment; booking an initial recurring PayPal payment again creates
    /// a follow-up payment and donation.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn book_payment(
        &self,
        meta: &RequestMeta,
        cmd: BookPaymentCommand,
    ) -> Result<api::PaymentResponse, IntakeError> {
        invalid_if_any(validate_id("payment_id", cmd.payment_id))?;
        invalid_if_any(validate_booking(&cmd.transaction_id, &cmd.provider))?;
        self.run(meta, Method::BookPayment, async {
            let (payment, revision) = self.load_payment(cmd.payment_id).await?;
            let txn = cmd.transaction_id.trim();
            let follow_up = if commands::takes_follow_up(&payment, txn) {
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

    /// A provider reported a failed payment.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn fail_payment(
        &self,
        meta: &RequestMeta,
        payment_id: u64,
        reason: &str,
    ) -> Result<api::PaymentResponse, IntakeError> {
        invalid_if_any(validate_reason(reason))?;
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
        invalid_if_any(validate_reason(&cmd.reason))?;
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
        invalid_if_any(validate_reason(&cmd.reason))?;
        self.payment_decision(meta, Method::ReportChargeback, cmd.payment_id, |p| {
            commands::report_chargeback(p, cmd.amount.as_ref(), &cmd.reason)
        })
        .await
    }
}
