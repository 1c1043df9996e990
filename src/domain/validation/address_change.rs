//! The field rules of `ChangeAddress` (`domain/wmde-memberships.md` §2): the token is a UUID;
//! a request is "opt-out only" when it opts out of the receipt and every address field is
//! empty; otherwise a person needs salutation, first name, last name, street, postcode, city
//! and country, a company its name, street, postcode, city and country (title optional); the
//! country defaults to `DE`; every text fits the legacy `address` column.

use super::{FieldError, FieldErrors};
use crate::domain::address_change::commands::AddressChangeInput;
use crate::domain::address_change::AddressType;
use crate::domain::admission::address_fields;
use crate::proto::events as ev;

/// The country of an address given without one (the legacy API's default).
pub const DEFAULT_COUNTRY: &str = "DE";

/// The address fields a type requires, by path.
fn required_for(address_type: AddressType) -> &'static [&'static str] {
    match address_type {
        AddressType::Person => &[
            "address.salutation",
            "address.first_name",
            "address.last_name",
            "address.street",
            "address.postcode",
            "address.city",
            "address.country",
        ],
        AddressType::Company => &[
            "address.company_name",
            "address.street",
            "address.postcode",
            "address.city",
            "address.country",
        ],
        AddressType::Unspecified => &[],
    }
}

/// The request as the domain's input: `None` for the address when every field is empty (the
/// legacy "opt-out only" test), else the address with its country defaulted to `DE`.
pub fn address_change_input(
    address_type: AddressType,
    address: ev::AddressData,
    donation_receipt_opt_out: bool,
) -> AddressChangeInput {
    let empty = address_fields(&address)
        .iter()
        .all(|(_, value, _)| value.is_empty());
    let address = (!empty).then(|| {
        let mut a = address;
        if a.country.trim().is_empty() {
            a.country = DEFAULT_COUNTRY.into();
        }
        (address_type, a)
    });
    AddressChangeInput {
        address,
        donation_receipt_opt_out,
    }
}

/// Validates an address-change token: a hyphenated UUID.
pub fn validate_token(field: &str, token: &str) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    if token.trim().is_empty() {
        errors.push(field, "is required");
    } else if token.len() != 36 || uuid::Uuid::parse_str(token).is_err() {
        errors.push(field, "must be a UUID written with hyphens (36 characters)");
    }
    errors.into_vec()
}

/// Validates a `ChangeAddress` request's token and input; every field error at once.
pub fn validate_change_address(identifier: &str, input: &AddressChangeInput) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    errors.extend(validate_token("identifier", identifier));
    match &input.address {
        None if !input.donation_receipt_opt_out => errors.push(
            "address",
            "is required unless the request only opts out of the donation receipt",
        ),
        None => {}
        Some((address_type, a)) => {
            if *address_type == AddressType::Unspecified {
                errors.push("address.type", "must be person or company");
            }
            let required = required_for(*address_type);
            for (path, value, holds) in address_fields(a) {
                if required.contains(&path) && value.trim().is_empty() {
                    errors.push(path, "is required for this address type");
                }
                errors.text(path, value, holds);
            }
        }
    }
    errors.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0b7d2f3e-5c1a-4b8e-9f00-000000000001";

    fn person() -> ev::AddressData {
        ev::AddressData {
            salutation: "Frau".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            street: "Hauptstraße 1".into(),
            postcode: "12345".into(),
            city: "Berlin".into(),
            ..Default::default()
        }
    }

    fn fields(input: &AddressChangeInput) -> Vec<String> {
        validate_change_address(TOKEN, input)
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_person_without_a_country_gets_de_and_is_valid() {
        let input = address_change_input(AddressType::Person, person(), false);
        assert_eq!(input.address.as_ref().unwrap().1.country, "DE");
        assert_eq!(fields(&input), Vec::<String>::new());
    }

    #[test]
    fn a_person_needs_salutation_and_names_and_a_company_its_name() {
        let mut a = person();
        a.salutation.clear();
        a.last_name = " ".into();
        let input = address_change_input(AddressType::Person, a, false);
        assert_eq!(fields(&input), ["address.salutation", "address.last_name"]);
        let input = address_change_input(AddressType::Company, person(), false);
        assert_eq!(fields(&input), ["address.company_name"]);
    }

    #[test]
    fn empty_address_fields_with_the_opt_out_are_an_opt_out_only_and_without_it_are_refused() {
        let input = address_change_input(AddressType::Unspecified, Default::default(), true);
        assert_eq!(input.address, None);
        assert_eq!(fields(&input), Vec::<String>::new());
        let input = address_change_input(AddressType::Person, Default::default(), false);
        assert_eq!(fields(&input), ["address"]);
    }

    #[test]
    fn an_address_needs_a_type_and_texts_that_fit_the_legacy_columns() {
        let mut a = person();
        a.postcode = "123456789".into();
        a.city = "Ber\u{7}lin".into();
        let input = address_change_input(AddressType::Unspecified, a, false);
        assert_eq!(
            fields(&input),
            ["address.type", "address.postcode", "address.city"]
        );
    }

    #[test]
    fn a_token_must_be_a_hyphenated_uuid() {
        assert_eq!(validate_token("identifier", TOKEN), vec![]);
        for bad in ["", "abc", "0b7d2f3e5c1a4b8e9f00000000000001"] {
            assert_eq!(validate_token("identifier", bad).len(), 1, "{bad:?}");
        }
    }
}
