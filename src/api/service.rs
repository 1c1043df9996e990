//! `LedgerService`: the generated `ledger.api.v1.Ledger` trait, one call per method of the
//! `.proto`, each answered by its command family's file, which translates messages to intake
//! commands and intake answers back. No business rule lives here. Every call goes through
//! [`LedgerService::call`]: authorisation, metrics and the log of refusals.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use super::auth::{scope, Authenticator, Principal};
use super::refusal::{log_refusal, RecentRefusals};
use crate::intake::{Intake, Method};
use crate::metrics::{catalog, Metrics};
use crate::proto::api::{self, ledger_server::Ledger};

/// The gRPC service over an intake.
#[derive(Clone)]
pub struct LedgerService {
    pub(super) intake: Arc<Intake>,
    auth: Arc<Authenticator>,
    metrics: Metrics,
    refusals: RecentRefusals,
}

impl LedgerService {
    /// A service answering with `intake`, admitting the clients of `auth`.
    pub fn new(intake: Arc<Intake>, auth: Arc<Authenticator>, metrics: Metrics) -> Self {
        Self {
            intake,
            auth,
            metrics,
            refusals: RecentRefusals::default(),
        }
    }

    /// The refusals this service answered recently (shared with the status console).
    pub fn refusals(&self) -> &RecentRefusals {
        &self.refusals
    }

    /// Authorises, runs `f`, counts the call by method and code.
    pub(super) async fn call<Req, Resp, F, Fut>(
        &self,
        method: Method,
        request: Request<Req>,
        f: F,
    ) -> Result<Response<Resp>, Status>
    where
        F: FnOnce(Principal, Req) -> Fut,
        Fut: Future<Output = Result<Resp, Status>>,
    {
        let started = Instant::now();
        let result = match self.auth.authorize(&request, scope(method), method.name()) {
            Ok(principal) => f(principal, request.into_inner()).await,
            Err(status) => Err(status),
        };
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        };
        if let Err(status) = &result {
            log_refusal(method.name(), status);
            self.refusals.record(method.name(), status);
        }
        let code = format!("{code:?}");
        self.metrics.count(
            catalog::GRPC_REQUESTS,
            &[("method", method.name()), ("code", &code)],
            1,
        );
        self.metrics.observe(
            catalog::GRPC_DURATION,
            &[("method", method.name())],
            started.elapsed().as_secs_f64(),
        );
        result.map(Response::new)
    }
}

/// Each call is its family's function (`donation.rs`, `payment.rs`, …), so the service lists
/// the `.proto`'s methods and nothing else.
#[tonic::async_trait]
impl Ledger for LedgerService {
    async fn add_donation(
        &self,
        request: Request<api::AddDonationRequest>,
    ) -> Result<Response<api::AddDonationResponse>, Status> {
        super::donation::add_donation(self, request).await
    }

    async fn book_payment(
        &self,
        request: Request<api::BookPaymentRequest>,
    ) -> Result<Response<api::PaymentResponse>, Status> {
        super::payment::book_payment(self, request).await
    }

    async fn fail_payment(
        &self,
        request: Request<api::FailPaymentRequest>,
    ) -> Result<Response<api::PaymentResponse>, Status> {
        super::payment::fail_payment(self, request).await
    }

    async fn refund_payment(
        &self,
        request: Request<api::RefundPaymentRequest>,
    ) -> Result<Response<api::PaymentResponse>, Status> {
        super::payment::refund_payment(self, request).await
    }

    async fn report_chargeback(
        &self,
        request: Request<api::RefundPaymentRequest>,
    ) -> Result<Response<api::PaymentResponse>, Status> {
        super::payment::report_chargeback(self, request).await
    }

    async fn cancel_donation(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        super::deletion::cancel_donation(self, request).await
    }

    async fn delete_donation(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        super::deletion::delete_donation(self, request).await
    }

    async fn restore_donation(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        super::deletion::restore_donation(self, request).await
    }

    async fn flag_donation(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        super::moderation::flag_donation(self, request).await
    }

    async fn approve_donation(
        &self,
        request: Request<api::ApproveDonationRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        super::moderation::approve_donation(self, request).await
    }

    async fn add_comment(
        &self,
        request: Request<api::AddCommentRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        super::comment::add_comment(self, request).await
    }

    async fn publish_comment(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        super::comment::publish_comment(self, request).await
    }

    async fn retract_comment(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        super::comment::retract_comment(self, request).await
    }

    async fn update_donor(
        &self,
        request: Request<api::UpdateDonorRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        super::donation::update_donor(self, request).await
    }

    async fn mark_exported(
        &self,
        request: Request<api::MarkExportedRequest>,
    ) -> Result<Response<api::MarkExportedResponse>, Status> {
        super::export::mark_exported(self, request).await
    }

    async fn record_contribution_tracking(
        &self,
        request: Request<api::RecordContributionTrackingRequest>,
    ) -> Result<Response<api::ContributionTrackingResponse>, Status> {
        super::contribution_tracking::record_contribution_tracking(self, request).await
    }

    async fn link_contribution(
        &self,
        request: Request<api::LinkContributionRequest>,
    ) -> Result<Response<api::ContributionTrackingResponse>, Status> {
        super::contribution_tracking::link_contribution(self, request).await
    }

    async fn get_donation(
        &self,
        request: Request<api::GetDonationRequest>,
    ) -> Result<Response<api::Donation>, Status> {
        super::donation::get_donation(self, request).await
    }

    async fn get_history(
        &self,
        request: Request<api::GetHistoryRequest>,
    ) -> Result<Response<api::GetHistoryResponse>, Status> {
        super::history::get_history(self, request).await
    }

    async fn next_id(
        &self,
        request: Request<api::NextIdRequest>,
    ) -> Result<Response<api::NextIdResponse>, Status> {
        super::next_id::next_id(self, request).await
    }

    async fn apply_for_membership(
        &self,
        request: Request<api::ApplyForMembershipRequest>,
    ) -> Result<Response<api::ApplyForMembershipResponse>, Status> {
        super::membership::apply_for_membership(self, request).await
    }

    async fn cancel_membership(
        &self,
        request: Request<api::MembershipActionRequest>,
    ) -> Result<Response<api::MembershipResponse>, Status> {
        super::membership::cancel_membership(self, request).await
    }

    async fn restore_membership(
        &self,
        request: Request<api::MembershipActionRequest>,
    ) -> Result<Response<api::MembershipResponse>, Status> {
        super::membership::restore_membership(self, request).await
    }

    async fn flag_membership(
        &self,
        request: Request<api::MembershipActionRequest>,
    ) -> Result<Response<api::MembershipResponse>, Status> {
        super::membership::flag_membership(self, request).await
    }

    async fn approve_membership(
        &self,
        request: Request<api::MembershipActionRequest>,
    ) -> Result<Response<api::MembershipResponse>, Status> {
        super::membership::approve_membership(self, request).await
    }

    async fn mark_memberships_exported(
        &self,
        request: Request<api::MarkMembershipsExportedRequest>,
    ) -> Result<Response<api::MarkMembershipsExportedResponse>, Status> {
        super::membership::mark_memberships_exported(self, request).await
    }

    async fn get_membership(
        &self,
        request: Request<api::GetMembershipRequest>,
    ) -> Result<Response<api::Membership>, Status> {
        super::membership::get_membership(self, request).await
    }

    async fn get_membership_history(
        &self,
        request: Request<api::GetMembershipHistoryRequest>,
    ) -> Result<Response<api::GetHistoryResponse>, Status> {
        super::membership::get_membership_history(self, request).await
    }

    async fn get_address_change(
        &self,
        request: Request<api::GetAddressChangeRequest>,
    ) -> Result<Response<api::AddressChange>, Status> {
        super::address_change::get_address_change(self, request).await
    }

    async fn change_address(
        &self,
        request: Request<api::ChangeAddressRequest>,
    ) -> Result<Response<api::ChangeAddressResponse>, Status> {
        super::address_change::change_address(self, request).await
    }

    async fn mark_address_changes_exported(
        &self,
        request: Request<api::MarkAddressChangesExportedRequest>,
    ) -> Result<Response<api::MarkAddressChangesExportedResponse>, Status> {
        super::address_change::mark_address_changes_exported(self, request).await
    }

    async fn subscribe(
        &self,
        request: Request<api::SubscribeRequest>,
    ) -> Result<Response<api::SubscribeResponse>, Status> {
        super::subscription::subscribe(self, request).await
    }

    async fn confirm_subscription(
        &self,
        request: Request<api::ConfirmSubscriptionRequest>,
    ) -> Result<Response<api::SubscriptionResponse>, Status> {
        super::subscription::confirm_subscription(self, request).await
    }

    async fn mark_subscriptions_exported(
        &self,
        request: Request<api::MarkSubscriptionsExportedRequest>,
    ) -> Result<Response<api::MarkSubscriptionsExportedResponse>, Status> {
        super::subscription::mark_subscriptions_exported(self, request).await
    }

    async fn get_subscription(
        &self,
        request: Request<api::GetSubscriptionRequest>,
    ) -> Result<Response<api::Subscription>, Status> {
        super::subscription::get_subscription(self, request).await
    }

    async fn remove_subscription(
        &self,
        request: Request<api::RemoveSubscriptionRequest>,
    ) -> Result<Response<api::SubscriptionResponse>, Status> {
        super::subscription::remove_subscription(self, request).await
    }
}
