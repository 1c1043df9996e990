//! Donor decisions: replacing the donor's data.

use super::{active, existing, not_scrubbed, Decision};
use crate::domain::donation::PersonalData;
use crate::domain::error::DomainError;
use crate::domain::streams;
use crate::domain::types::StreamEvent;
use crate::domain::view::DonationView;
use crate::proto::events as ev;

/// Replaces the donor; refused when scrubbed, exported, cancelled or deleted.
pub fn update_donor(
    view: &DonationView,
    donor: ev::DonorPublic,
    personal: PersonalData,
) -> Decision {
    let id = existing(view)?;
    not_scrubbed(view, "update the donor")?;
    if view.is_exported() {
        return Err(DomainError::Exported {
            action: "update the donor",
        });
    }
    active(view, "update the donor")?;
    Ok(vec![StreamEvent::new(
        streams::donation(id),
        ev::DonorUpdated {
            donor: Some(donor),
            personal: Some(personal),
            personal_sealed: None,
        },
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::testing::*;

    fn new_donor() -> (ev::DonorPublic, PersonalData) {
        (
            ev::DonorPublic {
                kind: DonorKind::Person as i32,
                salutation: "Herr".into(),
                ..Default::default()
            },
            PersonalData {
                last_name: "Babbage".into(),
                ..Default::default()
            },
        )
    }

    #[test]
    fn updating_the_donor_replaces_it() {
        let mut v = given(BankTransfer);
        let (d, p) = new_donor();
        when!(v, update_donor(&v, d, p));
        assert_eq!(v.donation.personal.as_ref().unwrap().last_name, "Babbage");
    }

    #[test]
    fn updating_the_donor_is_refused_when_exported_scrubbed_or_cancelled() {
        let (d, p) = new_donor();
        let mut exported = given(BankTransfer);
        when!(exported, mark_exported(&exported, "b1", t0()));
        assert!(matches!(
            update_donor(&exported, d.clone(), p.clone()),
            Err(DomainError::Exported { .. })
        ));
        let mut gone = given(BankTransfer);
        gone.apply("scrub-7", &scrubbed());
        assert!(matches!(
            update_donor(&gone, d.clone(), p.clone()),
            Err(DomainError::Scrubbed { .. })
        ));
        let mut cancelled = given(BankTransfer);
        when!(cancelled, cancel_by_donor(&cancelled, ""));
        assert!(matches!(
            update_donor(&cancelled, d, p),
            Err(DomainError::Inactive { .. })
        ));
    }
}
