//! The combined donation view as the API's `Donation` message.

use crate::domain::donation::DonorKind;
use crate::domain::types::{to_timestamp, PaymentMethod};
use crate::domain::view::DonorDisplay;
use crate::domain::DonationView;
use crate::proto::api;

/// The donation as the API shows it. With `include_personal`, the donor's personal data and a
/// private comment's text are filled in when readable; without, only ids, states and public
/// facts are (this form is stored in idempotency records).
pub fn donation_message(view: &DonationView, include_personal: bool) -> api::Donation {
    let d = &view.donation;
    let display = view.donor_display();
    let kind = match display {
        DonorDisplay::Anonymous => DonorKind::Anonymous,
        _ => d.donor.kind,
    };
    let donor = match (include_personal, display) {
        (true, DonorDisplay::Known { personal, .. }) => Some(api::DonorInput {
            kind: kind as i32,
            salutation: d.donor.salutation.clone(),
            title: personal.title.clone(),
            first_name: personal.first_name.clone(),
            last_name: personal.last_name.clone(),
            company_name: personal.company_name.clone(),
            street: personal.street.clone(),
            postcode: personal.postcode.clone(),
            city: personal.city.clone(),
            country: personal.country.clone(),
            email: personal.email.clone(),
            wants_newsletter: d.donor.wants_newsletter,
            wants_receipt: d.donor.wants_receipt,
        }),
        _ => None,
    };
    let comment = d.comment.as_ref();
    let comment_text = comment
        .map(|c| {
            if !c.public_text.is_empty() {
                c.public_text.clone()
            } else if include_personal && !view.is_scrubbed() {
                c.private_text.clone().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .unwrap_or_default();
    api::Donation {
        donation_id: d.id.unwrap_or_default(),
        created_at: d.created_at.map(to_timestamp),
        amount_cents: d.amount.as_ref().map_or(0, |m| m.cents),
        currency: d
            .amount
            .as_ref()
            .map(|m| m.currency.clone())
            .unwrap_or_default(),
        interval_months: d.interval_months,
        payment_method: view.payment_method().map_or(0, PaymentMethod::to_proto),
        payment_id: d.payment_id,
        payment_state: view.payment.status.as_str().to_owned(),
        deletion_state: view.deletion.as_str().to_owned(),
        moderation_state: view.moderation.status().as_str().to_owned(),
        moderation_reasons: view
            .moderation
            .open_reasons
            .iter()
            .map(|r| r.to_proto())
            .collect(),
        is_exported: view.is_exported(),
        exported_at: view.export.exported_at.map(to_timestamp),
        is_scrubbed: view.is_scrubbed(),
        scrubbed_at: view.scrub.scrubbed_at.map(to_timestamp),
        // Empty, not `unspecified`, for a kind the ledger does not know, as always.
        donor_kind: match kind {
            DonorKind::Unspecified => String::new(),
            known => known.as_str().to_owned(),
        },
        salutation: d.donor.salutation.clone(),
        donor,
        comment: comment_text,
        comment_is_public: comment.is_some_and(|c| c.is_public),
        comment_display_name: comment.map(|c| c.display_name.clone()).unwrap_or_default(),
        tracking: d.tracking.as_ref().map(|t| api::TrackingInput {
            campaign: t.campaign.clone(),
            keyword: t.keyword.clone(),
            impression_count: t.impression_count,
            banner_impression_count: t.banner_impression_count,
            contribution_tracking_id: t.contribution_tracking_id,
        }),
        legacy_status: view.legacy_status().to_string(),
        parent_donation_id: d.parent_donation_id.unwrap_or_default(),
    }
}
