//! One legacy `request` row (a membership application) → the membership events that reproduce
//! its state, or the reason it cannot be interpreted. Pure: no I/O, personal data still in
//! clear (the importer seals it with the application's own key).
//!
//! What a row becomes (facts in `domain/wmde-memberships.md` §1):
//!
//! * `MembershipApplied` at `timestamp`: the applicant as at intake (a company when `firma` is
//!   set, else a person; salutation, title, names, address, email, phone, date of birth), the
//!   membership type, the fee and interval from the payment (checked against the mirrors
//!   `membership_fee`, whole euros, and `membership_fee_interval`), payment id and method, the
//!   direct debit's IBAN and BIC (the request's own columns when the payment has none) or the
//!   bank transfer's reference code, the tracking split at its first `/`, the receipt wish.
//!   `confirmed` (the payment was complete) is what status 1 or 0 says; −1, −2 and −3 lost it
//!   (§1.5), so there the payment tells: direct debit and bank transfer are complete, an
//!   external payment once booked;
//! * moderation, for −2 and −3 only: `ModerationReasonsRaised` with the join table's reasons
//!   (at the blob log's "marked for moderation" time when the only reason is the manual flag,
//!   else at creation), or `ManuallyFlagged` when the join table has none (rows before
//!   2022-07). A row not moderated whose log records an approval gets `ModerationApproved`
//!   then, after `ManuallyFlagged` when the log also records the flag before it;
//! * `MembershipCancelled` for −1 and −3 at the log's last cancellation (else at creation); a
//!   row not cancelled whose log cancels and later restores it gets both events;
//! * `MembershipExported` at `export` (batch `legacy`);
//! * `PersonalDataScrubbed` for `is_scrubbed`, after everything else (at `backup` when that is
//!   later), with the rule the legacy anonymiser applied: exported, cancelled, else after the
//!   grace period. Such a row carries no personal data at all, and it is taken as a person's,
//!   as the legacy converter reads it: the legacy scrub cleared `firma` and the salutation that
//!   told a company apart (a scrubbed company cannot be told apart; the read model keeps the
//!   kind, `legacy_request` shows no salutation after a scrub either way).
//!
//! Not imported: incentives, the pre-IBAN `account_number`/`bank_code`/`bank_name` (noted),
//! `payment_type` (not written since 2022; the payment's method is the truth), `comment`,
//! `wikilogin`, `wikimedium_shipping`, `donation_id`, the deprecated tokens in the blob.
//!
//! Over 600 lines because of its tests: one test per rule, beside the rules.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::interpret::{
    event_id, log_entries, moderation_reasons, nonempty, push_scrub, skip, time, ImportEvent, Skip,
};
use super::php::decode_blob;
use super::report::{class, Note};
use super::source::SourceRequest;
use crate::domain::admission;
use crate::domain::membership::{
    ApplicantKind, LegacyRequestStatus, MembershipCategory, MembershipType, MembershipView,
};
use crate::domain::moderation::ModerationIdentifier;
use crate::domain::scrub::ScrubRule;
use crate::domain::types::{to_timestamp, PaymentMethod};
use crate::domain::StreamEvent;
use crate::proto::events as ev;

/// A `request` row interpreted: its events and the rules applied that the report records.
#[derive(Debug, Clone, PartialEq)]
pub struct InterpretedRequest {
    /// The membership id (the source id).
    pub membership_id: u64,
    /// The payment id the application names.
    pub payment_id: u64,
    /// Its events, in append order.
    pub events: Vec<ImportEvent>,
    /// Notes of the rules applied.
    pub notes: Vec<Note>,
    /// The status the ledger's view derives from these events.
    pub derived_status: LegacyRequestStatus,
}

/// The 4-bit kind of an event id on a membership stream: 7 to 11, after the donation
/// categories' 0 to 6 and below the import records' 13 to 15.
fn kind_of(category: MembershipCategory) -> u8 {
    7 + MembershipCategory::ALL
        .iter()
        .position(|c| *c == category)
        .unwrap_or(0) as u8
}

/// A text column, trimmed; '' for NULL.
fn col(v: &Option<String>) -> String {
    v.as_deref().unwrap_or_default().trim().to_owned()
}

/// `campaign/keyword` split at the first `/` (a value without one is a campaign alone).
pub fn split_tracking(tracking: &Option<String>) -> (String, String) {
    let t = col(tracking);
    match t.split_once('/') {
        Some((c, k)) => (c.to_owned(), k.to_owned()),
        None => (t, String::new()),
    }
}

/// Whether `status` is one of the five legacy codes.
pub fn known_status(status: Option<i64>) -> bool {
    matches!(status, Some(-3..=1))
}

/// What the row's payment tells once checked against the row's mirrors.
struct Payment {
    id: u64,
    method: PaymentMethod,
    cents: i64,
    interval: u32,
    bank: Option<ev::BankData>,
    complete: bool,
}

fn payment(row: &SourceRequest) -> Result<Payment, Skip> {
    let p = row.payment.as_ref().ok_or_else(|| {
        skip(
            class::MISSING_PAYMENT,
            format!("payment_id {} names no payment row", row.payment_id),
        )
    })?;
    // The current codes only: `MBK` never paid a membership.
    let method: PaymentMethod = p.method.trim().parse().map_err(|_| {
        skip(
            class::UNKNOWN_PAYMENT_TYPE,
            format!("payment.payment_method {:?}", p.method),
        )
    })?;
    let cents = p
        .amount
        .as_deref()
        .and_then(|a| a.trim().parse::<i64>().ok())
        .filter(|c| *c > 0)
        .ok_or_else(|| skip(class::BAD_AMOUNT, format!("payment.amount {:?}", p.amount)))?;
    // `membership_fee` holds whole euros (`Euro::getEuros()`): the cents cut off.
    if row.membership_fee != Some(cents / 100) {
        return Err(skip(
            class::FEE_MISMATCH,
            format!(
                "membership_fee {:?} but payment.amount {cents} cents",
                row.membership_fee
            ),
        ));
    }
    let interval = p.interval.unwrap_or(-1);
    if ![1, 3, 6, 12].contains(&interval) {
        return Err(skip(
            class::BAD_FEE_INTERVAL,
            format!("payment.payment_interval {:?}", p.interval),
        ));
    }
    if row.membership_fee_interval != Some(interval) {
        return Err(skip(
            class::BAD_FEE_INTERVAL,
            format!(
                "membership_fee_interval {:?} but payment.payment_interval {interval}",
                row.membership_fee_interval
            ),
        ));
    }
    let booked = time(&p.valuation_date)
        .map_err(|e| skip(class::BAD_DATE, format!("valuation_date: {e}")))?
        .is_some();
    let bank = match method {
        PaymentMethod::DirectDebit => Some(ev::BankData {
            iban: nonempty(&p.iban).unwrap_or_else(|| col(&row.iban)),
            bic: nonempty(&p.bic).unwrap_or_else(|| col(&row.bic)),
            payment_reference_code: String::new(),
        }),
        PaymentMethod::BankTransfer => Some(ev::BankData {
            payment_reference_code: col(&p.reference_code),
            ..Default::default()
        }),
        _ => None,
    }
    .filter(|b| row.is_scrubbed == 0 && *b != ev::BankData::default());
    Ok(Payment {
        id: u64::try_from(p.id).unwrap_or(0),
        method,
        cents,
        interval: interval as u32,
        bank,
        complete: !method.is_external() || booked,
    })
}

/// The applicant as at intake, with the notes of what was dropped; `None` for a scrubbed row.
fn applicant(
    row: &SourceRequest,
    notes: &mut Vec<Note>,
) -> (ApplicantKind, Option<ev::ApplicantData>) {
    let id = row.id;
    let personal = [
        &row.name,
        &row.vorname,
        &row.nachname,
        &row.firma,
        &row.strasse,
        &row.plz,
        &row.ort,
        &row.email,
        &row.phone,
        &row.iban,
    ];
    let old_bank = row.old_bank.iter().any(|c| nonempty(c).is_some());
    if row.is_scrubbed != 0 {
        if old_bank || personal.iter().any(|c| nonempty(c).is_some()) {
            notes.push(Note::request(
                id,
                class::PERSONAL_DATA_AFTER_SCRUB,
                true,
                "scrubbed, yet a name, address, email, phone or bank column is set: not imported",
            ));
        }
        return (ApplicantKind::Person, None);
    }
    if old_bank {
        notes.push(Note::request(
            id,
            class::OLD_BANK_ACCOUNT_DROPPED,
            true,
            "account_number, bank_code or bank_name set: the ledger keeps IBAN and BIC only",
        ));
    }
    let dob = match nonempty(&row.dob) {
        None => String::new(),
        Some(d) => match NaiveDate::parse_from_str(&d, "%Y-%m-%d") {
            Ok(date) => date.format("%Y-%m-%d").to_string(),
            Err(_) => {
                notes.push(Note::request(
                    id,
                    class::BAD_DATE_OF_BIRTH,
                    true,
                    format!("dob {d:?} is no date: imported without one"),
                ));
                String::new()
            }
        },
    };
    let kind = if nonempty(&row.firma).is_some() {
        ApplicantKind::Company
    } else {
        ApplicantKind::Person
    };
    let data = ev::ApplicantData {
        salutation: col(&row.anrede),
        title: col(&row.titel),
        first_name: col(&row.vorname),
        last_name: col(&row.nachname),
        company_name: col(&row.firma),
        street: col(&row.strasse),
        postcode: col(&row.plz),
        city: col(&row.ort),
        country: col(&row.country),
        email: col(&row.email),
        phone: col(&row.phone),
        date_of_birth: dob,
    };
    (kind, Some(data))
}

/// The last log entry whose message starts with one of `prefixes`, optionally only before
/// `before`.
fn last_entry(
    log: &[(DateTime<Utc>, String)],
    prefixes: &[&str],
    before: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    log.iter()
        .rev()
        .filter(|(t, _)| before.is_none_or(|b| *t <= b))
        .find(|(_, m)| prefixes.iter().any(|p| m.starts_with(p)))
        .map(|(t, _)| *t)
}

const CANCELLED: &[&str] = &["cancelled by user", "frontend: cancellation"];
const RESTORED: &[&str] = &["restored by user"];
const FLAGGED: &[&str] = &["marked for moderation by user"];
const APPROVED: &[&str] = &["marked as approved by user"];

/// Interprets one `request` row: its events, or the class and reason it is skipped for.
pub fn interpret_request(row: &SourceRequest) -> Result<InterpretedRequest, Note> {
    interpret_inner(row).map_err(|(class, detail)| Note::request(row.id, class, false, detail))
}

fn interpret_inner(row: &SourceRequest) -> Result<InterpretedRequest, Skip> {
    let id = row.id;
    let mut notes = Vec::new();
    let status = row.status;
    if !known_status(status) {
        return Err(skip(class::UNKNOWN_STATUS, format!("status {status:?}")));
    }
    let status = status.unwrap_or_default();
    let (moderated, cancelled) = (matches!(status, -2 | -3), matches!(status, -1 | -3));
    let blob = match row.data.as_deref().map(str::trim) {
        None | Some("") => BTreeMap::new(),
        Some(data) => decode_blob(data).map_err(|e| skip(class::BROKEN_BLOB, e.to_string()))?,
    };
    let created = time(&row.timestamp)
        .map_err(|e| skip(class::BAD_DATE, format!("timestamp: {e}")))?
        .ok_or_else(|| skip(class::BAD_DATE, "timestamp is NULL"))?;
    let membership_type: MembershipType = col(&row.membership_type)
        .parse()
        .ok()
        .filter(|t| *t != MembershipType::Unspecified)
        .ok_or_else(|| {
            skip(
                class::UNKNOWN_MEMBERSHIP_TYPE,
                format!("membership_type {:?}", row.membership_type),
            )
        })?;
    let payment = payment(row)?;
    let reasons = moderation_reasons(&row.reasons)?;
    if !moderated && !reasons.is_empty() {
        return Err(skip(
            class::MODERATION_DISAGREES,
            format!(
                "status {status} (not moderated), yet {} moderation reasons in the join table",
                reasons.len()
            ),
        ));
    }
    let export = match time(&row.export) {
        Ok(t) => t.filter(|t| t.timestamp() > 0),
        Err(_) => {
            notes.push(Note::request(
                id,
                class::ZERO_EXPORT_DATE,
                true,
                format!("export {:?} is no date: not exported", col(&row.export)),
            ));
            None
        }
    };
    let confirmed = match status {
        1 | 0 => {
            let said = status == 1;
            if said != payment.complete {
                notes.push(Note::request(
                    id,
                    class::CONFIRMATION_FROM_STATUS,
                    true,
                    format!(
                        "status {status}, yet the {} payment is {}complete: confirmed = {said}",
                        payment.method.as_str(),
                        if payment.complete { "" } else { "not " }
                    ),
                ));
            }
            said
        }
        _ => payment.complete,
    };
    let (applicant_kind, applicant) = applicant(row, &mut notes);
    let (campaign, keyword) = split_tracking(&row.tracking);
    let log = log_entries(&blob);

    let on = |c: MembershipCategory| c.stream(id);
    let mut events: Vec<(StreamEvent, DateTime<Utc>)> = vec![(
        StreamEvent::new(
            on(MembershipCategory::Application),
            ev::MembershipApplied {
                membership_id: id,
                created_at: Some(to_timestamp(created)),
                applicant_kind: applicant_kind as i32,
                applicant,
                applicant_sealed: None,
                membership_type: membership_type as i32,
                fee: Some(ev::Money {
                    cents: payment.cents,
                    currency: "EUR".into(),
                }),
                interval_months: payment.interval,
                payment_id: payment.id,
                payment_method: payment.method.to_proto(),
                bank: payment.bank,
                bank_sealed: None,
                confirmed,
                tracking: Some(ev::MembershipTracking { campaign, keyword }),
                incentives: Vec::new(),
                donation_receipt: row.donation_receipt.map(|r| r != 0),
            },
        ),
        created,
    )];

    let moderation = on(MembershipCategory::Moderation);
    let flagged_at = last_entry(&log, FLAGGED, None);
    if moderated {
        let only_manual = reasons
            .iter()
            .all(|r| r.identifier == ModerationIdentifier::ManuallyFlaggedByAdmin as i32);
        let at = if only_manual {
            flagged_at.unwrap_or(created)
        } else {
            created
        };
        if reasons.is_empty() {
            notes.push(Note::request(
                id,
                class::MODERATED_WITHOUT_REASONS,
                true,
                format!("status {status} without moderation reasons: imported as manually flagged"),
            ));
            events.push((
                StreamEvent::new(
                    moderation,
                    ev::ManuallyFlagged {
                        note: format!("legacy status {status} without moderation reasons"),
                    },
                ),
                at,
            ));
        } else {
            events.push((
                StreamEvent::new(moderation, ev::ModerationReasonsRaised { reasons }),
                at,
            ));
        }
    } else if let Some(approved_at) = last_entry(&log, APPROVED, None) {
        if let Some(flagged) = last_entry(&log, FLAGGED, Some(approved_at)) {
            events.push((
                StreamEvent::new(
                    moderation.clone(),
                    ev::ManuallyFlagged {
                        note: "marked for moderation in the legacy system".into(),
                    },
                ),
                flagged,
            ));
        }
        events.push((
            StreamEvent::new(
                moderation,
                ev::ModerationApproved {
                    as_anonymous: false,
                },
            ),
            approved_at,
        ));
    }

    let cancellation = on(MembershipCategory::Cancellation);
    let cancelled_at = last_entry(&log, CANCELLED, None);
    if cancelled {
        events.push((
            StreamEvent::new(
                cancellation,
                ev::MembershipCancelled {
                    reason: "cancelled in the legacy system".into(),
                },
            ),
            cancelled_at.unwrap_or(created),
        ));
    } else if let Some(restored_at) = last_entry(&log, RESTORED, None) {
        if let Some(at) = last_entry(&log, CANCELLED, Some(restored_at)) {
            events.push((
                StreamEvent::new(
                    cancellation.clone(),
                    ev::MembershipCancelled {
                        reason: "cancelled in the legacy system".into(),
                    },
                ),
                at,
            ));
            events.push((
                StreamEvent::new(
                    cancellation,
                    ev::MembershipRestored {
                        reason: "restored in the legacy system".into(),
                    },
                ),
                restored_at,
            ));
        }
    }

    if let Some(at) = export {
        events.push((
            StreamEvent::new(
                on(MembershipCategory::Export),
                ev::MembershipExported {
                    batch_id: "legacy".into(),
                    exported_at: Some(to_timestamp(at)),
                },
            ),
            at,
        ));
    }

    if row.is_scrubbed != 0 {
        let rule = if export.is_some() {
            ScrubRule::Exported
        } else if cancelled {
            ScrubRule::CancelledOrDeleted
        } else {
            ScrubRule::AfterGracePeriod
        };
        push_scrub(
            &mut events,
            on(MembershipCategory::Scrub),
            rule,
            &row.backup,
            created,
        );
    }

    let refused: Vec<_> = events
        .iter()
        .flat_map(|(e, _)| admission::admit(&e.event))
        .collect();
    if !refused.is_empty() {
        return Err(skip(class::INADMISSIBLE, admission::describe(&refused)));
    }

    let view = MembershipView::fold(events.iter().map(|(e, _)| (e.stream.as_str(), &e.event)));
    let mut index: BTreeMap<String, u8> = BTreeMap::new();
    let events = events
        .into_iter()
        .map(|(event, occurred_at)| {
            let category =
                MembershipCategory::of(&event.stream).unwrap_or(MembershipCategory::Application);
            let n = index.entry(event.stream.clone()).or_default();
            let name = format!("request/{id}/{}/{n}", event.stream);
            let uuid = event_id(id, kind_of(category), *n, &name);
            *n += 1;
            ImportEvent {
                id: uuid,
                event,
                occurred_at,
            }
        })
        .collect();
    Ok(InterpretedRequest {
        membership_id: id,
        payment_id: payment.id,
        events,
        notes,
        derived_status: view.legacy_status(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::php::{encode_blob, PhpValue};
    use crate::legacy::source::SourcePayment;

    fn row(status: i64, method: &str) -> SourceRequest {
        SourceRequest {
            id: 42,
            status: Some(status),
            timestamp: Some("2024-10-01 12:00:00".into()),
            anrede: Some("Frau".into()),
            vorname: Some("Ada".into()),
            nachname: Some("Lovelace".into()),
            strasse: Some("Hauptstraße 1".into()),
            plz: Some("10117".into()),
            ort: Some("Berlin".into()),
            country: Some("DE".into()),
            email: Some("ada@example.org".into()),
            phone: Some("030 1234".into()),
            dob: Some("1815-12-10".into()),
            membership_type: Some("sustaining".into()),
            membership_fee: Some(10),
            membership_fee_interval: Some(3),
            tracking: Some("c24_mem/banner-1".into()),
            donation_receipt: Some(1),
            payment_id: 7,
            payment: Some(SourcePayment {
                id: 7,
                amount: Some("1000".into()),
                interval: Some(3),
                method: method.into(),
                iban: (method == "BEZ").then(|| "DE02120300000000202051".into()),
                bic: (method == "BEZ").then(|| "BYLADEM1001".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn log(entries: &[(&str, &str)]) -> Option<String> {
        let log = entries
            .iter()
            .map(|(t, m)| ((*t).to_owned(), PhpValue::Str((*m).to_owned())))
            .collect();
        Some(encode_blob(
            &[("log".to_owned(), PhpValue::Array(log))]
                .into_iter()
                .collect(),
        ))
    }

    fn types(i: &InterpretedRequest) -> Vec<(&str, &str)> {
        i.events
            .iter()
            .map(|e| (e.event.stream.as_str(), e.event.event.event_type()))
            .collect()
    }

    #[test]
    fn a_confirmed_direct_debit_row_becomes_one_application_with_its_applicant_and_bank() {
        let i = interpret_request(&row(1, "BEZ")).unwrap();
        assert_eq!(types(&i), [("membership-42", "MembershipApplied.v1")]);
        assert_eq!(i.derived_status, LegacyRequestStatus::Confirmed);
        assert!(i.notes.is_empty(), "{:?}", i.notes);
        let crate::domain::DomainEvent::MembershipApplied(a) = &i.events[0].event.event else {
            panic!("not an application");
        };
        assert_eq!(a.applicant_kind, ApplicantKind::Person as i32);
        assert_eq!(a.applicant.as_ref().unwrap().date_of_birth, "1815-12-10");
        assert_eq!(a.bank.as_ref().unwrap().iban, "DE02120300000000202051");
        assert_eq!(a.fee.as_ref().unwrap().cents, 1000);
        assert_eq!(
            a.tracking.as_ref().unwrap().keyword,
            "banner-1",
            "the keyword after the first slash"
        );
        assert_eq!(
            interpret_request(&row(1, "BEZ")).unwrap(),
            i,
            "ids are stable"
        );
    }

    #[test]
    fn every_legacy_status_is_what_the_events_derive() {
        for (status, reasons) in [(1, 0), (0, 0), (-1, 0), (-2, 1), (-3, 1), (-2, 0)] {
            let mut r = row(status, if status == 0 { "PPL" } else { "BEZ" });
            if reasons > 0 {
                r.reasons = vec![("MEMBERSHIP_FEE_TOO_HIGH".into(), "amount".into())];
            }
            let i = interpret_request(&r).unwrap();
            assert_eq!(i.derived_status.code(), status as i16, "status {status}");
        }
    }

    #[test]
    fn a_cancelled_and_restored_log_gives_both_events_and_an_approval_after_a_flag_both() {
        let mut r = row(1, "BEZ");
        r.data = log(&[
            (
                "2024-10-02 08:00:00",
                "marked for moderation by user: foc:anna",
            ),
            (
                "2024-10-03 08:00:00",
                "marked as approved by user: foc:anna",
            ),
            ("2024-10-04 08:00:00", "cancelled by user: foc:anna"),
            ("2024-10-05 08:00:00", "restored by user: foc:jonas"),
        ]);
        let i = interpret_request(&r).unwrap();
        assert_eq!(
            types(&i)[1..],
            [
                ("membership_moderation-42", "ManuallyFlagged.v1"),
                ("membership_moderation-42", "ModerationApproved.v1"),
                ("membership_cancellation-42", "MembershipCancelled.v1"),
                ("membership_cancellation-42", "MembershipRestored.v1"),
            ]
        );
        assert_eq!(i.derived_status, LegacyRequestStatus::Confirmed);
        assert_eq!(
            i.events[4].occurred_at.to_string(),
            "2024-10-05 08:00:00 UTC"
        );
    }

    #[test]
    fn a_scrubbed_exported_row_carries_no_personal_data_and_is_taken_as_a_persons() {
        let mut r = row(1, "BEZ");
        r.is_scrubbed = 1;
        r.export = Some("2024-11-01 00:00:00".into());
        for c in [
            &mut r.anrede,
            &mut r.vorname,
            &mut r.nachname,
            &mut r.strasse,
            &mut r.plz,
            &mut r.ort,
            &mut r.country,
            &mut r.email,
            &mut r.phone,
            &mut r.dob,
        ] {
            *c = Some(String::new());
        }
        let p = r.payment.as_mut().unwrap();
        (p.iban, p.bic) = (None, None);
        let mut i = interpret_request(&r).unwrap();
        assert!(i.notes.is_empty(), "{:?}", i.notes);
        assert_eq!(
            types(&i)[1..],
            [
                ("membership_export-42", "MembershipExported.v1"),
                ("membership_scrub-42", "PersonalDataScrubbed.v1"),
            ]
        );
        assert!(!i
            .events
            .iter_mut()
            .any(|e| e.event.event.has_clear_personal_data()));
    }

    #[test]
    fn malformed_rows_are_skipped_with_their_class() {
        let mut bad_status = row(1, "BEZ");
        bad_status.status = Some(-4);
        let mut bad_fee = row(1, "BEZ");
        bad_fee.membership_fee = Some(11);
        let mut bad_interval = row(1, "BEZ");
        bad_interval.payment.as_mut().unwrap().interval = Some(0);
        let mut no_payment = row(1, "BEZ");
        no_payment.payment = None;
        let mut bad_type = row(1, "BEZ");
        bad_type.membership_type = Some("honorary".into());
        let mut reasons_but_confirmed = row(1, "BEZ");
        reasons_but_confirmed.reasons = vec![("EMAIL_BLOCKED".into(), "applicant-email".into())];
        let mut zero_time = row(1, "BEZ");
        zero_time.timestamp = Some("0000-00-00 00:00:00".into());
        for (r, expected) in [
            (bad_status, class::UNKNOWN_STATUS),
            (bad_fee, class::FEE_MISMATCH),
            (bad_interval, class::BAD_FEE_INTERVAL),
            (no_payment, class::MISSING_PAYMENT),
            (bad_type, class::UNKNOWN_MEMBERSHIP_TYPE),
            (reasons_but_confirmed, class::MODERATION_DISAGREES),
            (zero_time, class::BAD_DATE),
        ] {
            let note = interpret_request(&r).unwrap_err();
            assert_eq!(
                (note.class.as_str(), note.table.as_str()),
                (expected, "request")
            );
            assert!(!note.imported);
        }
    }

    #[test]
    fn tracking_splits_at_the_first_slash_and_keeps_its_case() {
        assert_eq!(
            split_tracking(&Some("C24/a/b".into())),
            ("C24".into(), "a/b".into())
        );
        assert_eq!(
            split_tracking(&Some("c24/".into())),
            ("c24".into(), String::new())
        );
        assert_eq!(split_tracking(&None), (String::new(), String::new()));
    }
}
