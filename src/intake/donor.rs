//! Donor commands: the donor's data changes.

use super::donation::postal_address_type;
use super::error::invalid_if_any;
use super::view::donation_message;
use super::{Intake, IntakeError, Method, Plan, RequestMeta};
use crate::domain::address_change::ExternalIdKind;
use crate::domain::commands::{self, NewDonor};
use crate::domain::validation::{donor_fits_payment, validate_donor, validate_id};
use crate::proto::api;

impl Intake {
    /// The donor's data changes. A donor who gains a postal address (from email-only or
    /// anonymous to a person or a company) gets an address change with it, in the same
    /// append, as at `AddDonation` (legacy `CreateAddressChangeHandler` on `DonorUpdatedEvent`);
    /// its token is in the response.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn update_donor(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        donor: NewDonor,
    ) -> Result<api::DonationResponse, IntakeError> {
        invalid_if_any(validate_donor(&donor))?;
        invalid_if_any(validate_id("donation_id", donation_id))?;
        let (public, personal) = (donor.public(), donor.personal());
        self.run(meta, Method::UpdateDonor, async {
            let mut load = self.load_view(donation_id, false).await?;
            if let Some(rule) = donor_fits_payment(donor.kind, load.view.payment_method()) {
                return Err(IntakeError::field("donor.kind", rule));
            }
            let mut events = commands::update_donor(&load.view, public, personal)?;
            let had_address = load.view.donation.had_postal_address;
            load.apply(&events);
            self.seal(donation_id, &mut events).await?;
            let mut address_change_token = String::new();
            if let (Some(address_type), false) = (postal_address_type(donor.kind), had_address) {
                let (more, token) = self
                    .new_address_change(ExternalIdKind::Donation, donation_id, address_type)
                    .await?;
                // Nothing personal in them: they need no key.
                events.extend(more);
                address_change_token = token;
            }
            Ok(Plan {
                events,
                read: load.read,
                response: api::DonationResponse {
                    donation: Some(donation_message(&load.view, false)),
                    position: 0,
                    address_change_token,
                },
                stored: None,
            })
        })
        .await
    }
}
