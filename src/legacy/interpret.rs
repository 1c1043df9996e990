//! One legacy `spenden` row → the events that reproduce its state, or the reason it cannot be
//! interpreted. Pure: no I/O, personal data still in clear (the importer seals it).
//!
//! What a row becomes (facts in `domain/wmde.md`):
//!
//! * `DonationCreated` at `dt_new`: amount and interval from the payment (checked against the
//!   deprecated mirrors `betrag` and `periode`), donor kind and salutation from the blob's
//!   `adresstyp` and `anrede`, personal data from the blob (city and email fall back to the
//!   columns), tracking from `donation_tracking` (else the blob's `campaign/keyword`), the
//!   impression columns, the comment (`kommentar`, `is_public`, `eintrag`);
//! * `PaymentInitiated` at `dt_new` (IBAN/BIC, payment reference code), then `PaymentBooked` at
//!   the valuation date of a booked Sofort, credit-card or PayPal payment, or `PaymentCancelled`
//!   for a cancelled direct debit or bank transfer;
//! * moderation: `ModerationReasonsRaised` with the join table's reasons; `ManuallyFlagged` for
//!   a `P` without any; `ModerationApproved` at the time the blob's log records an approval;
//! * `DonationDeleted` (when `dt_del` is set) or `DonationCancelled` for `D`, at the log's
//!   cancellation time, else `dt_del`, else `dt_new`;
//! * `DonationExported` at `dt_gruen` (`E`, the deprecated export letter: at `dt_exp`);
//! * `PersonalDataScrubbed` for `is_scrubbed`, with the rule the legacy anonymiser applied,
//!   after everything else; such a row carries no personal data at all (no key is made).
//!
//! Source times are naive `DATETIME`s, read as UTC.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use uuid::Uuid;

use super::php::{decode_blob, PhpValue};
use super::report::{class, Note};
use super::source::SourceRow;
use crate::domain::admission;
use crate::domain::donation::DonorKind;
use crate::domain::moderation::ModerationIdentifier;
use crate::domain::scrub::ScrubRule;
use crate::domain::types::{to_timestamp, PaymentMethod};
use crate::domain::{streams, DomainEvent, DonationView, StreamEvent};
use crate::proto::events as ev;

/// Namespace of the import's UUIDv5 correlation ids (one per source row).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6761_6379_5f73_7065_6e64_656e_0001);

/// A deterministic event id (RFC 9562 version 8, custom): the source id in the high 48 bits,
/// then a 4-bit `kind` and an 8-bit index, then 62 bits of the SHA-256 of `name`. The same
/// source row gives the same ids on every run (the idempotency of a rerun), and ids grow with
/// the source id, so the log's event-id index grows at its end instead of taking random
/// inserts across millions of keys (see BENCHMARKS.md for what random UUIDv5 ids cost).
pub fn event_id(source_id: u64, kind: u8, index: u8, name: &str) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{NAMESPACE}/{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&source_id.to_be_bytes()[2..]);
    bytes[6] = kind & 0x0f;
    bytes[7] = index;
    bytes[8..].copy_from_slice(&digest[..8]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The 4-bit kind of an event id: its stream's category (the import's own records 13–15).
fn kind_of(stream: &str) -> u8 {
    streams::Category::of(stream).map_or(12, |c| {
        streams::Category::ALL
            .iter()
            .position(|x| *x == c)
            .map_or(12, |i| i as u8)
    })
}

/// An event to append, with its deterministic id and the time it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportEvent {
    /// The id: [`event_id`] of the source row, the stream and the event's index in it.
    pub id: Uuid,
    /// The event and its stream.
    pub event: StreamEvent,
    /// When it happened, from the source.
    pub occurred_at: DateTime<Utc>,
}

/// A row interpreted: its events and the rules applied that the report records.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpreted {
    /// The donation id (the source id).
    pub donation_id: u64,
    /// Its events, in append order.
    pub events: Vec<ImportEvent>,
    /// Notes of the rules applied (imported rows).
    pub notes: Vec<Note>,
    /// The letter the ledger's view derives from these events.
    pub derived_status: char,
}

/// A parsed naive source time, read as UTC; `None` for NULL, and an error text for a zero
/// or otherwise invalid date.
pub(super) fn time(value: &Option<String>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| Some(t.and_utc()))
        .map_err(|_| format!("{v:?} is not a date and time"))
}

fn text(blob: &BTreeMap<String, PhpValue>, key: &str) -> String {
    blob.get(key)
        .and_then(PhpValue::as_text)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

pub(super) fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Cents of a legacy euro string (`13.37`, `5`, `5.5`); `None` if it is not one.
pub fn euro_cents(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let frac_cents: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac_cents)
}

/// The blob's `log`: (time, message) in time order.
pub(super) fn log_entries(blob: &BTreeMap<String, PhpValue>) -> Vec<(DateTime<Utc>, String)> {
    let Some(PhpValue::Array(log)) = blob.get("log") else {
        return Vec::new();
    };
    let mut out: Vec<_> = log
        .iter()
        .filter_map(|(t, m)| Some((time(&Some(t.clone())).ok()??, m.as_text()?)))
        .collect();
    out.sort();
    out
}

/// What the row's payment tells once read.
struct Payment {
    id: u64,
    method: PaymentMethod,
    cents: i64,
    interval: u32,
    bank: Option<ev::BankData>,
    booked_at: Option<DateTime<Utc>>,
    provider: Option<ev::ProviderData>,
    cancelled: bool,
    parent: u64,
}

pub(super) type Skip = (&'static str, String);

/// Appends the scrub of a legacy row to its `events`, after all of them: at the latest of
/// their times and the row's backup time (`backup`, when it parses).
pub(super) fn push_scrub(
    events: &mut Vec<(StreamEvent, DateTime<Utc>)>,
    stream: String,
    rule: ScrubRule,
    backup: &Option<String>,
    created: DateTime<Utc>,
) {
    let backup = time(backup).ok().flatten();
    let last = events
        .iter()
        .map(|(_, t)| *t)
        .chain(backup)
        .max()
        .unwrap_or(created);
    events.push((
        StreamEvent::new(
            stream,
            ev::PersonalDataScrubbed {
                rule: rule as i32,
                scrubbed_at: None,
            },
        ),
        last,
    ));
}

/// The moderation reasons of a join table's rows `(moderation_identifier, source)`; an
/// identifier the ledger does not know skips the row.
pub(super) fn moderation_reasons(
    rows: &[(String, String)],
) -> Result<Vec<ev::ModerationReason>, Skip> {
    let mut reasons = Vec::new();
    for (identifier, source) in rows {
        let parsed: ModerationIdentifier = identifier
            .trim()
            .parse()
            .ok()
            .filter(|i| *i != ModerationIdentifier::Unspecified)
            .ok_or_else(|| {
                skip(
                    class::UNKNOWN_MODERATION_REASON,
                    format!("moderation_identifier {identifier:?}"),
                )
            })?;
        reasons.push(ev::ModerationReason {
            identifier: parsed as i32,
            source: source.trim().to_owned(),
        });
    }
    Ok(reasons)
}

pub(super) fn skip(class: &'static str, detail: impl Into<String>) -> Skip {
    (class, detail.into())
}

fn payment(row: &SourceRow, blob: &BTreeMap<String, PhpValue>) -> Result<Payment, Skip> {
    let p = row.payment.as_ref().ok_or_else(|| {
        skip(
            class::MISSING_PAYMENT,
            format!("payment_id {} names no payment row", row.payment_id),
        )
    })?;
    let method = PaymentMethod::from_code(p.method.trim()).ok_or_else(|| {
        skip(
            class::UNKNOWN_PAYMENT_TYPE,
            format!("payment.payment_method {:?}", p.method),
        )
    })?;
    let column = PaymentMethod::from_code(row.zahlweise.trim()).ok_or_else(|| {
        skip(
            class::UNKNOWN_PAYMENT_TYPE,
            format!("zahlweise {:?}", row.zahlweise),
        )
    })?;
    if column != method {
        return Err(skip(
            class::PAYMENT_TYPE_MISMATCH,
            format!(
                "zahlweise {:?} but payment.payment_method {:?}",
                row.zahlweise, p.method
            ),
        ));
    }
    let cents = p
        .amount
        .as_deref()
        .and_then(|a| a.trim().parse::<i64>().ok())
        .filter(|c| *c >= 0)
        .ok_or_else(|| skip(class::BAD_AMOUNT, format!("payment.amount {:?}", p.amount)))?;
    let betrag = row.betrag.as_deref().unwrap_or_default();
    match euro_cents(betrag) {
        None => {
            return Err(skip(
                class::BAD_AMOUNT,
                format!("betrag {betrag:?} is not an amount in euros"),
            ))
        }
        Some(c) if c != cents => {
            return Err(skip(
                class::AMOUNT_MISMATCH,
                format!("betrag {betrag:?} but payment.amount {cents} cents"),
            ))
        }
        Some(_) => {}
    }
    let interval = p.interval.unwrap_or(-1);
    if ![0, 1, 3, 6, 12].contains(&interval) {
        return Err(skip(
            class::BAD_INTERVAL,
            format!("payment.payment_interval {:?}", p.interval),
        ));
    }
    if interval != row.periode {
        return Err(skip(
            class::BAD_INTERVAL,
            format!(
                "periode {} but payment.payment_interval {interval}",
                row.periode
            ),
        ));
    }
    let booked_at = time(&p.valuation_date)
        .map_err(|e| skip(class::BAD_DATE, format!("valuation_date: {e}")))?;
    let scrubbed = row.is_scrubbed != 0;
    let bank = match method {
        PaymentMethod::DirectDebit => Some(ev::BankData {
            iban: nonempty(&p.iban).unwrap_or_else(|| text(blob, "iban")),
            bic: nonempty(&p.bic).unwrap_or_else(|| text(blob, "bic")),
            payment_reference_code: String::new(),
        }),
        PaymentMethod::BankTransfer | PaymentMethod::Sofort => Some(ev::BankData {
            payment_reference_code: nonempty(&p.reference_code)
                .unwrap_or_else(|| row.ueb_code.trim().to_owned()),
            ..Default::default()
        }),
        PaymentMethod::CreditCard | PaymentMethod::PayPal => None,
    }
    .filter(|b| !scrubbed && *b != ev::BankData::default());
    let provider = if booked_at.is_some() && !scrubbed {
        provider(
            method,
            p.transaction_id.as_deref(),
            p.booking_data.as_deref(),
        )?
    } else {
        None
    };
    Ok(Payment {
        id: u64::try_from(p.id).unwrap_or(0),
        method,
        cents,
        interval: interval as u32,
        bank,
        booked_at: booked_at.filter(|_| method.is_external()),
        provider,
        cancelled: method.is_cancellable() && p.is_cancelled.unwrap_or(0) != 0,
        parent: p
            .parent_payment_id
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0),
    })
}

/// The provider data of a booked payment: its transaction id column and its booking data.
fn provider(
    method: PaymentMethod,
    transaction_id: Option<&str>,
    booking: Option<&str>,
) -> Result<Option<ev::ProviderData>, Skip> {
    let data: serde_json::Map<String, serde_json::Value> = match booking.map(str::trim) {
        None | Some("") => serde_json::Map::new(),
        Some(json) => match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(serde_json::Value::Array(a)) if a.is_empty() => serde_json::Map::new(),
            _ => {
                return Err(skip(
                    class::BROKEN_BOOKING_DATA,
                    "booking_data is not a JSON object",
                ))
            }
        },
    };
    let get = |k: &str| match data.get(k) {
        Some(serde_json::Value::String(s)) => s.trim().to_owned(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let transaction = transaction_id
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map_or_else(|| get("ext_payment_id"), str::to_owned);
    let p = match method {
        PaymentMethod::CreditCard => ev::ProviderData {
            transaction_id: transaction,
            session_id: get("mcp_sessionid"),
            auth_code: get("mcp_auth"),
            payment_status: get("ext_payment_status"),
            ..Default::default()
        },
        PaymentMethod::PayPal => ev::ProviderData {
            transaction_id: transaction,
            payer_id: get("paypal_payer_id"),
            subscription_id: get("paypal_subscr_id"),
            payer_status: get("paypal_payer_status"),
            payment_status: get("ext_payment_status"),
            ..Default::default()
        },
        _ => ev::ProviderData {
            transaction_id: transaction,
            ..Default::default()
        },
    };
    Ok((p != ev::ProviderData::default()).then_some(p))
}

/// The donor kind: the blob's `adresstyp`, or, when the blob has none, inferred from the data
/// present (recorded as a note).
fn donor_kind(
    row: &SourceRow,
    blob: &BTreeMap<String, PhpValue>,
    notes: &mut Vec<Note>,
) -> Result<DonorKind, Skip> {
    let code = text(blob, "adresstyp");
    if !code.is_empty() {
        return DonorKind::from_legacy_code(&code)
            .ok_or_else(|| skip(class::UNKNOWN_ADDRESS_TYPE, format!("adresstyp {code:?}")));
    }
    let kind = if !text(blob, "firma").is_empty() {
        DonorKind::Company
    } else if !text(blob, "strasse").is_empty() || !text(blob, "plz").is_empty() {
        DonorKind::Person
    } else if !text(blob, "vorname").is_empty() || !text(blob, "nachname").is_empty() {
        DonorKind::EmailOnly
    } else {
        DonorKind::Anonymous
    };
    notes.push(Note::imported(
        row.id,
        class::DONOR_KIND_INFERRED,
        format!("the blob has no adresstyp; taken as {}", kind.as_str()),
    ));
    Ok(kind)
}

/// The tracking pair: `donation_tracking`'s, else the blob's lowercased `campaign/keyword`.
fn tracking(row: &SourceRow, blob: &BTreeMap<String, PhpValue>) -> ev::Tracking {
    let (campaign, keyword) = match &row.tracking {
        Some((c, k)) => (c.clone(), k.clone()),
        None => {
            let t = text(blob, "tracking").to_lowercase();
            match t.split_once('/') {
                Some((c, k)) => (c.to_owned(), k.to_owned()),
                None => (t, String::new()),
            }
        }
    };
    let count = |v: i64| u32::try_from(v).unwrap_or(0);
    ev::Tracking {
        campaign,
        keyword,
        impression_count: count(row.impression_count),
        banner_impression_count: count(row.banner_impression_count),
        contribution_tracking_id: 0,
    }
}

/// Interprets one row: its events, or the class and reason it is skipped for.
pub fn interpret(row: &SourceRow) -> Result<Interpreted, Note> {
    interpret_inner(row).map_err(|(class, detail)| Note::skipped(row.id, class, detail))
}

fn interpret_inner(row: &SourceRow) -> Result<Interpreted, Skip> {
    let id = row.id;
    let mut notes = Vec::new();
    let status = row.status.trim();
    if !["N", "Z", "X", "B", "P", "D", "E"].contains(&status) {
        return Err(skip(class::UNKNOWN_STATUS, format!("status {status:?}")));
    }
    let blob = match row.data.as_deref().map(str::trim) {
        None | Some("") => BTreeMap::new(),
        Some(data) => decode_blob(data).map_err(|e| skip(class::BROKEN_BLOB, e.to_string()))?,
    };
    let created = time(&row.dt_new)
        .map_err(|e| skip(class::BAD_DATE, format!("dt_new: {e}")))?
        .ok_or_else(|| skip(class::BAD_DATE, "dt_new is NULL"))?;
    let payment = payment(row, &blob)?;
    if row.zahlweise.trim() == "MBK" {
        notes.push(Note::imported(
            id,
            class::MBK_CREDIT_CARD,
            "zahlweise MBK (the old credit-card code) imported as MCP",
        ));
    }
    let kind = donor_kind(row, &blob, &mut notes)?;
    let scrubbed = row.is_scrubbed != 0;
    let log = log_entries(&blob);

    let personal = (!scrubbed && kind != DonorKind::Anonymous).then(|| ev::PersonalData {
        title: text(&blob, "titel"),
        first_name: text(&blob, "vorname"),
        last_name: text(&blob, "nachname"),
        company_name: text(&blob, "firma"),
        street: text(&blob, "strasse"),
        postcode: text(&blob, "plz"),
        city: Some(text(&blob, "ort"))
            .filter(|c| !c.is_empty())
            .or_else(|| nonempty(&row.ort))
            .unwrap_or_default(),
        country: text(&blob, "country"),
        email: Some(text(&blob, "email"))
            .filter(|c| !c.is_empty())
            .or_else(|| nonempty(&row.email))
            .unwrap_or_default(),
    });
    if scrubbed
        && [&row.name, &row.email, &row.ort]
            .iter()
            .any(|c| nonempty(c).is_some())
    {
        notes.push(Note::imported(
            id,
            class::PERSONAL_DATA_AFTER_SCRUB,
            "scrubbed, yet name, email or ort is set: not imported",
        ));
    }
    let text_of_comment = row.kommentar.trim();
    let is_public = row.is_public != 0;
    let comment = if text_of_comment.is_empty() {
        None
    } else if is_public {
        Some(ev::Comment {
            is_public: true,
            display_name: row.eintrag.trim().to_owned(),
            public_text: row.kommentar.clone(),
            ..Default::default()
        })
    } else if scrubbed {
        notes.push(Note::imported(
            id,
            class::PERSONAL_DATA_AFTER_SCRUB,
            "scrubbed, yet a private comment is kept: not imported",
        ));
        None
    } else {
        Some(ev::Comment {
            is_public: false,
            display_name: row.eintrag.trim().to_owned(),
            private_text: Some(ev::CommentText {
                text: row.kommentar.clone(),
            }),
            ..Default::default()
        })
    };
    let amount = Some(ev::Money {
        cents: payment.cents,
        currency: "EUR".into(),
    });

    let mut events: Vec<(StreamEvent, DateTime<Utc>)> = Vec::new();
    events.push((
        StreamEvent::new(
            streams::donation(id),
            ev::DonationCreated {
                donation_id: id,
                created_at: Some(to_timestamp(created)),
                amount: amount.clone(),
                interval_months: payment.interval,
                payment_id: payment.id,
                payment_method: payment.method.to_proto(),
                donor: Some(ev::DonorPublic {
                    kind: kind as i32,
                    salutation: text(&blob, "anrede"),
                    wants_newsletter: row.info != 0,
                    wants_receipt: row.bescheinigung == Some(1),
                }),
                personal,
                personal_sealed: None,
                tracking: Some(tracking(row, &blob)),
                comment,
            },
        ),
        created,
    ));
    let pay_stream = streams::payment(payment.id);
    events.push((
        StreamEvent::new(
            pay_stream.clone(),
            ev::PaymentInitiated {
                payment_id: payment.id,
                donation_id: id,
                method: payment.method.to_proto(),
                amount: amount.clone(),
                interval_months: payment.interval,
                bank: payment.bank,
                bank_sealed: None,
                parent_payment_id: payment.parent,
            },
        ),
        created,
    ));
    let cancelled_at = log
        .iter()
        .rev()
        .find(|(_, m)| m.starts_with("cancelled by user"))
        .map(|(t, _)| *t);
    let dt_del = time(&row.dt_del).map_err(|e| skip(class::BAD_DATE, format!("dt_del: {e}")))?;
    if let Some(booked) = payment.booked_at {
        events.push((
            StreamEvent::new(
                pay_stream.clone(),
                ev::PaymentBooked {
                    valuation_date: Some(to_timestamp(booked)),
                    amount: amount.clone(),
                    provider: payment.provider,
                    provider_sealed: None,
                },
            ),
            booked,
        ));
    }
    let cancel_time = cancelled_at.or(dt_del).unwrap_or(created);
    if payment.cancelled {
        events.push((
            StreamEvent::new(
                pay_stream,
                ev::PaymentCancelled {
                    reason: "cancelled in the legacy system".into(),
                },
            ),
            cancel_time,
        ));
    }

    // Moderation: the join table is the truth (as the legacy converter reads it).
    let reasons = moderation_reasons(&row.reasons)?;
    let moderation = streams::moderation(id);
    let approval = log.iter().rev().find_map(|(t, m)| {
        if m.starts_with("marked as approved and anonymized by user") {
            Some((*t, true))
        } else if m.starts_with("marked as approved by user") {
            Some((*t, false))
        } else {
            None
        }
    });
    if !reasons.is_empty() {
        events.push((
            StreamEvent::new(moderation, ev::ModerationReasonsRaised { reasons }),
            created,
        ));
    } else if status == "P" {
        notes.push(Note::imported(
            id,
            class::MODERATED_WITHOUT_REASONS,
            "status P without moderation reasons: imported as manually flagged",
        ));
        events.push((
            StreamEvent::new(
                moderation,
                ev::ManuallyFlagged {
                    note: "legacy status P without moderation reasons".into(),
                },
            ),
            created,
        ));
    } else if let Some((at, as_anonymous)) = approval {
        events.push((
            StreamEvent::new(moderation, ev::ModerationApproved { as_anonymous }),
            at,
        ));
    }

    if status == "D" {
        let event: DomainEvent = if dt_del.is_some() {
            ev::DonationDeleted {
                reason: "deleted in the legacy system".into(),
            }
            .into()
        } else {
            ev::DonationCancelled {
                reason: "cancelled in the legacy system".into(),
            }
            .into()
        };
        events.push((
            StreamEvent {
                stream: streams::deletion(id),
                event,
            },
            cancel_time,
        ));
    }

    let gruen = match time(&row.dt_gruen) {
        Ok(t) => t.filter(|t| t.timestamp() > 0),
        Err(_) => {
            notes.push(Note::imported(
                id,
                class::ZERO_EXPORT_DATE,
                format!(
                    "dt_gruen {:?} is no date: not exported",
                    row.dt_gruen.as_deref().unwrap_or_default()
                ),
            ));
            None
        }
    };
    let exported_at = if status == "E" {
        let dt_exp = time(&row.dt_exp).ok().flatten();
        let at = gruen.or(dt_exp).unwrap_or(created);
        notes.push(Note::imported(
            id,
            class::DEPRECATED_STATUS_E,
            "status E (deprecated export letter): imported as exported; the view shows the letter its payment gives",
        ));
        Some(at)
    } else {
        gruen
    };
    if let Some(at) = exported_at {
        events.push((
            StreamEvent::new(
                streams::export(id),
                ev::DonationExported {
                    batch_id: "legacy".into(),
                    exported_at: Some(to_timestamp(at)),
                },
            ),
            at,
        ));
    }

    let mut view = DonationView::default();
    for (e, _) in &events {
        view.apply(&e.stream, &e.event);
    }
    let derived_status = view.legacy_status();
    if scrubbed {
        let rule = if exported_at.is_some() {
            ScrubRule::Exported
        } else if status == "D" {
            ScrubRule::CancelledOrDeleted
        } else if derived_status == 'X' {
            ScrubRule::Abandoned
        } else if derived_status == 'P' {
            ScrubRule::StaleModeration
        } else {
            ScrubRule::BeforeImport
        };
        push_scrub(
            &mut events,
            streams::scrub(id),
            rule,
            &row.dt_backup,
            created,
        );
    }
    if status != "E" && status.starts_with(derived_status) {
        // The stored letter is what the data say.
    } else if status != "E" {
        notes.push(Note::imported(
            id,
            class::STATUS_DISAGREES,
            format!("stored status {status}, the data give {derived_status}"),
        ));
    }

    let refused: Vec<_> = events
        .iter()
        .flat_map(|(e, _)| admission::admit(&e.event))
        .collect();
    if !refused.is_empty() {
        return Err(skip(class::INADMISSIBLE, admission::describe(&refused)));
    }

    let mut index: BTreeMap<String, u8> = BTreeMap::new();
    let events = events
        .into_iter()
        .map(|(event, occurred_at)| {
            let n = index.entry(event.stream.clone()).or_default();
            let name = format!("spenden/{id}/{}/{n}", event.stream);
            let uuid = event_id(id, kind_of(&event.stream), *n, &name);
            *n += 1;
            ImportEvent {
                id: uuid,
                event,
                occurred_at,
            }
        })
        .collect();
    Ok(Interpreted {
        donation_id: id,
        events,
        notes,
        derived_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::php::encode_blob;
    use crate::legacy::source::SourcePayment;

    fn blob(pairs: &[(&str, &str)]) -> Option<String> {
        Some(encode_blob(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), PhpValue::Str((*v).to_owned())))
                .collect(),
        ))
    }

    fn row(status: &str, method: &str) -> SourceRow {
        SourceRow {
            id: 42,
            status: status.into(),
            betrag: Some("13.37".into()),
            periode: 3,
            zahlweise: method.into(),
            dt_new: Some("2024-10-01 12:00:00".into()),
            data: blob(&[
                ("adresstyp", "person"),
                ("anrede", "Frau"),
                ("vorname", "Ada"),
                ("nachname", "Lovelace"),
                ("email", "ada@example.org"),
            ]),
            payment_id: 7,
            payment: Some(SourcePayment {
                id: 7,
                amount: Some("1337".into()),
                interval: Some(3),
                method: if method == "MBK" { "MCP" } else { method }.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn types(i: &Interpreted) -> Vec<(&str, &str)> {
        i.events
            .iter()
            .map(|e| (e.event.stream.as_str(), e.event.event.event_type()))
            .collect()
    }

    #[test]
    fn a_direct_debit_row_becomes_a_donation_and_its_payment() {
        let i = interpret(&row("N", "BEZ")).unwrap();
        assert_eq!(
            types(&i),
            [
                ("donation-42", "DonationCreated.v2"),
                ("payment-7", "PaymentInitiated.v1")
            ]
        );
        assert_eq!(i.derived_status, 'N');
        assert!(i.notes.is_empty(), "{:?}", i.notes);
        assert_eq!(
            interpret(&row("N", "BEZ")).unwrap().events,
            i.events,
            "ids are stable"
        );
    }

    #[test]
    fn a_booked_old_mbk_row_is_a_booked_credit_card_with_a_note() {
        let mut r = row("B", "MBK");
        r.payment.as_mut().unwrap().valuation_date = Some("2024-10-01 12:05:00".into());
        r.payment.as_mut().unwrap().booking_data = Some(r#"{"ext_payment_id":"T-1"}"#.into());
        let i = interpret(&r).unwrap();
        assert_eq!(i.derived_status, 'B');
        assert_eq!(i.notes[0].class, class::MBK_CREDIT_CARD);
        assert_eq!(types(&i)[2], ("payment-7", "PaymentBooked.v1"));
    }

    #[test]
    fn cancelled_and_moderated_is_d_and_keeps_its_reasons() {
        let mut r = row("D", "UEB");
        r.payment.as_mut().unwrap().is_cancelled = Some(1);
        r.reasons = vec![("AMOUNT_TOO_HIGH".into(), "amount".into())];
        let i = interpret(&r).unwrap();
        assert_eq!(i.derived_status, 'D');
        let t = types(&i);
        assert!(t.contains(&("moderation-42", "ModerationReasonsRaised.v1")));
        assert!(t.contains(&("deletion-42", "DonationCancelled.v1")));
    }

    #[test]
    fn a_scrubbed_exported_row_carries_no_personal_data() {
        let mut r = row("N", "BEZ");
        r.is_scrubbed = 1;
        r.dt_gruen = Some("2024-11-01 00:00:00".into());
        r.data = blob(&[("adresstyp", "person"), ("anrede", "Herr")]);
        let mut i = interpret(&r).unwrap();
        let last = i.events.last().unwrap();
        assert_eq!(last.event.event.event_type(), "PersonalDataScrubbed.v1");
        assert!(!i
            .events
            .iter_mut()
            .any(|e| e.event.event.has_clear_personal_data()));
    }

    #[test]
    fn malformed_rows_are_skipped_with_their_class() {
        let mut bad_blob = row("N", "BEZ");
        bad_blob.data = Some("%%%".into());
        let mut bad_status = row("Q", "BEZ");
        bad_status.status = "Q".into();
        let mut bad_amount = row("N", "BEZ");
        bad_amount.betrag = Some("zwölf".into());
        let mut no_payment = row("N", "BEZ");
        no_payment.payment = None;
        for (r, expected) in [
            (bad_blob, class::BROKEN_BLOB),
            (bad_status, class::UNKNOWN_STATUS),
            (bad_amount, class::BAD_AMOUNT),
            (no_payment, class::MISSING_PAYMENT),
        ] {
            let note = interpret(&r).unwrap_err();
            assert_eq!(note.class, expected);
            assert!(!note.imported);
        }
    }

    #[test]
    fn euro_strings_become_cents_and_anything_else_does_not() {
        assert_eq!(euro_cents("13.37"), Some(1337));
        assert_eq!(euro_cents("5"), Some(500));
        assert_eq!(euro_cents("5.5"), Some(550));
        for bad in ["", "12,50", "abc", "1.234", "-5", ".5"] {
            assert_eq!(euro_cents(bad), None, "{bad}");
        }
    }
}
