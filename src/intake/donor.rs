//! Donor commands: the donor's data changes.

use super::error::invalid_if_any;
use super::{Intake, IntakeError, Method, RequestMeta};
use crate::domain::commands::{self, NewDonor};
use crate::domain::validation::{donor_fits_payment, validate_donor};
use crate::proto::api;

impl Intake {
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
}
