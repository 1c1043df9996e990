//! A legacy `spenden` database for tests and benchmarks: the legacy tables (`spenden`, the
//! payment tables, tracking, moderation reasons, the membership applications of `request`
//! with theirs) created in a given MariaDB database and filled with rows in every state
//! `domain/wmde.md` and `domain/wmde-memberships.md` describe, oddities included, at any size,
//! the same for the same seed.
//!
//! The first rows take every [`Scenario`] once, so any fixture of at least
//! [`Scenario::ALL`]`.len()` rows covers them all; the rest follow the mix of a real table
//! (nearly all exported and scrubbed) with a malformed row now and then. The summary says which
//! ids are malformed and why, and which are imported by a rule the report notes.
//!
//! Memberships: applications 1 to [`MembershipScenario::ALL`]`.len()` take every membership
//! state once; one more follows every 1009th donation (its payment id among the donations',
//! as when both forms wrote one `payment` table), and any further ones requested come after.
//! They draw from their own random stream, so the donations are the same whatever the number
//! of memberships.
//!
//! Over 600 lines, one concern: the rows of every legacy state (donations and memberships),
//! their writer, and the tests that hold each state to the note and status it promises.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{MySql, MySqlPool, QueryBuilder};

use super::php::{encode_blob, PhpValue};
use super::report::class;

/// The legacy tables (after DON, PAY and MEM's Doctrine mappings), one statement each.
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE spenden (
        id INT NOT NULL PRIMARY KEY,
        status CHAR(1) NOT NULL DEFAULT 'N',
        name VARCHAR(250) NULL, ort VARCHAR(250) NULL, email VARCHAR(250) NULL,
        info TINYINT NOT NULL DEFAULT 0, bescheinigung TINYINT NULL,
        eintrag VARCHAR(250) NOT NULL DEFAULT '', betrag VARCHAR(250) NULL,
        periode SMALLINT NOT NULL DEFAULT 0, zahlweise CHAR(3) NOT NULL DEFAULT 'BEZ',
        kommentar TEXT NOT NULL, ueb_code VARCHAR(32) NOT NULL DEFAULT '', data TEXT NULL,
        source VARCHAR(250) NULL, remote_addr VARCHAR(250) NOT NULL DEFAULT '',
        hash VARCHAR(250) NULL, is_public TINYINT NOT NULL DEFAULT 0,
        is_scrubbed TINYINT(1) NOT NULL DEFAULT 0, dt_new DATETIME NOT NULL,
        dt_del DATETIME NULL, dt_exp DATETIME NULL, dt_gruen DATETIME NULL,
        dt_backup DATETIME NULL, payment_id INT UNSIGNED NOT NULL DEFAULT 0,
        tracking_id INT NULL, impression_count INT NOT NULL DEFAULT 0,
        banner_impression_count INT NOT NULL DEFAULT 0,
        KEY d_dt_new (dt_new, is_public), KEY d_zahlweise (zahlweise, dt_new),
        KEY d_dt_gruen (dt_gruen, dt_del), KEY d_status (status, dt_new),
        KEY d_payment_id (payment_id), KEY d_is_scrubbed (is_scrubbed)
    ) DEFAULT CHARSET = utf8mb4",
    "CREATE TABLE payment (id INT NOT NULL PRIMARY KEY, amount INT NOT NULL,
        payment_interval INT NOT NULL, payment_method VARCHAR(3) NOT NULL)",
    "CREATE TABLE payment_direct_debit (id INT NOT NULL PRIMARY KEY, iban VARCHAR(34) NULL,
        bic VARCHAR(11) NULL, is_cancelled TINYINT(1) NOT NULL DEFAULT 0)",
    "CREATE TABLE payment_bank_transfer (id INT NOT NULL PRIMARY KEY,
        payment_reference_code VARCHAR(16) NULL, is_cancelled TINYINT(1) NOT NULL DEFAULT 0)",
    "CREATE TABLE payment_sofort (id INT NOT NULL PRIMARY KEY,
        payment_reference_code VARCHAR(16) NULL, valuation_date DATETIME NULL,
        transaction_id VARCHAR(255) NULL)",
    "CREATE TABLE payment_credit_card (id INT NOT NULL PRIMARY KEY,
        valuation_date DATETIME NULL, booking_data LONGTEXT NULL)",
    "CREATE TABLE payment_paypal (id INT NOT NULL PRIMARY KEY, valuation_date DATETIME NULL,
        booking_data LONGTEXT NULL, transaction_id VARCHAR(36) NULL,
        parent_payment_id INT NULL, KEY ppl_transaction_id (transaction_id))",
    "CREATE TABLE donation_tracking (id INT NOT NULL PRIMARY KEY, campaign VARCHAR(100) NOT NULL,
        keyword VARCHAR(100) NOT NULL, UNIQUE KEY campaign_keyword (campaign, keyword))",
    "CREATE TABLE donation_moderation_reason (id INT NOT NULL PRIMARY KEY,
        moderation_identifier VARCHAR(50) NOT NULL, source VARCHAR(32) NOT NULL)",
    "CREATE TABLE donations_moderation_reasons (donation_id INT NOT NULL,
        moderation_reason_id INT NOT NULL, PRIMARY KEY (donation_id, moderation_reason_id))",
    // MEM's mapping and migrations up to 2025-11 (`domain/wmde-memberships.md` §1.7).
    "CREATE TABLE request (
        id INT NOT NULL PRIMARY KEY, status SMALLINT NULL DEFAULT 0, donation_id INT NULL,
        timestamp DATETIME NOT NULL, anrede VARCHAR(16) NULL, titel VARCHAR(16) NULL,
        firma VARCHAR(100) NULL, name VARCHAR(250) NOT NULL DEFAULT '',
        vorname VARCHAR(50) NOT NULL DEFAULT '', nachname VARCHAR(50) NOT NULL DEFAULT '',
        strasse VARCHAR(100) NULL, plz VARCHAR(16) NULL, ort VARCHAR(100) NULL,
        country VARCHAR(8) NULL, email VARCHAR(250) NOT NULL DEFAULT '',
        phone VARCHAR(30) NOT NULL DEFAULT '', dob DATE NULL,
        wikimedium_shipping VARCHAR(255) NOT NULL DEFAULT '',
        membership_type VARCHAR(255) NULL DEFAULT 'sustaining',
        payment_type VARCHAR(255) NULL DEFAULT 'BEZ', membership_fee INT NOT NULL DEFAULT 0,
        membership_fee_interval SMALLINT NULL DEFAULT 12, account_number VARCHAR(16) NULL,
        bank_code VARCHAR(16) NULL, bank_name VARCHAR(100) NULL, iban VARCHAR(32) NULL,
        bic VARCHAR(32) NULL, comment TEXT NOT NULL, export DATETIME NULL, backup DATETIME NULL,
        wikilogin TINYINT NOT NULL DEFAULT 0, tracking VARCHAR(50) NULL, data TEXT NULL,
        donation_receipt TINYINT(1) NULL, payment_id INT UNSIGNED NOT NULL DEFAULT 0,
        is_scrubbed TINYINT(1) NOT NULL DEFAULT 0,
        KEY idx_m_lastname (nachname), KEY idx_m_email (email),
        KEY idx_m_payment_id (payment_id), KEY idx_m_is_scrubbed (is_scrubbed)
    ) DEFAULT CHARSET = utf8mb4",
    "CREATE TABLE membership_moderation_reason (id INT NOT NULL PRIMARY KEY,
        moderation_identifier VARCHAR(50) NOT NULL, source VARCHAR(32) NOT NULL)",
    "CREATE TABLE memberships_moderation_reasons (membership_id INT NOT NULL,
        moderation_reason_id INT NOT NULL, PRIMARY KEY (membership_id, moderation_reason_id))",
];

/// The state a fixture row is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// BEZ, `N`.
    DirectDebit,
    /// BEZ cancelled by the donor, `D`.
    DirectDebitCancelled,
    /// UEB of a company with a public comment, `Z`.
    BankTransferCompany,
    /// UEB deleted by an administrator (`dt_del`), `D`.
    BankTransferDeleted,
    /// Sofort not booked, `X`.
    SofortOpen,
    /// Sofort booked, `Z`.
    SofortBooked,
    /// Credit card not booked, `X`.
    CardOpen,
    /// Credit card booked, `B`.
    CardBooked,
    /// Booked credit card under the old code `MBK`, `B`.
    MbkBooked,
    /// PayPal not booked, `X`.
    PayPalOpen,
    /// PayPal booked, `B`.
    PayPalBooked,
    /// A recurring PayPal payment's follow-up, `B`.
    PayPalFollowUp,
    /// Moderated for its amount, `P`.
    ModeratedAmount,
    /// Moderated for two reasons, `P`.
    ModeratedTwoReasons,
    /// Cancelled and moderated, stored as `D` with its reasons.
    CancelledModerated,
    /// `P` without reasons in the join table (before 2022).
    ModeratedWithoutReasons,
    /// Approved by a moderator (the log says so), `N`.
    Approved,
    /// Approved as anonymous, `Z`.
    ApprovedAnonymous,
    /// Exported, not scrubbed yet, `N`.
    Exported,
    /// Exported and scrubbed: most of a real table.
    ExportedScrubbed,
    /// Cancelled and scrubbed, `D`.
    ScrubbedCancelled,
    /// External, never booked, scrubbed after the grace period, `X`.
    ScrubbedAbandoned,
    /// Moderated for long and scrubbed, `P`.
    ScrubbedModerated,
    /// Booked and scrubbed without export (the pre-2026 anonymiser), `B`.
    ScrubbedBeforeImport,
    /// The deprecated export letter `E`.
    DeprecatedE,
    /// Anonymous donor, bank transfer, `Z`.
    Anonymous,
    /// Email-only donor, PayPal booked, `B`.
    EmailOnly,
    /// A blob without its tracking, impression, country, title, email and log keys.
    MissingKeys,
    /// A zero `dt_gruen`.
    ZeroExportDate,
    /// A blob without `adresstyp`.
    MissingAddressType,
    /// `bescheinigung` NULL.
    ReceiptNull,
    /// Malformed: the blob is not base64 of a serialized array.
    BrokenBlob,
    /// Malformed: status `Q`.
    UnknownStatus,
    /// Malformed: `betrag` is not a number.
    BadAmount,
    /// Malformed: `payment_id` names no payment.
    MissingPayment,
    /// Malformed: payment type `FCH` (membership fee changes).
    UnknownPaymentType,
}

use Scenario as S;

impl Scenario {
    /// Every scenario, in the order the first rows take them.
    pub const ALL: [Scenario; 36] = [
        S::DirectDebit,
        S::DirectDebitCancelled,
        S::BankTransferCompany,
        S::BankTransferDeleted,
        S::SofortOpen,
        S::SofortBooked,
        S::CardOpen,
        S::CardBooked,
        S::MbkBooked,
        S::PayPalOpen,
        S::PayPalBooked,
        S::PayPalFollowUp,
        S::ModeratedAmount,
        S::ModeratedTwoReasons,
        S::CancelledModerated,
        S::ModeratedWithoutReasons,
        S::Approved,
        S::ApprovedAnonymous,
        S::Exported,
        S::ExportedScrubbed,
        S::ScrubbedCancelled,
        S::ScrubbedAbandoned,
        S::ScrubbedModerated,
        S::ScrubbedBeforeImport,
        S::DeprecatedE,
        S::Anonymous,
        S::EmailOnly,
        S::MissingKeys,
        S::ZeroExportDate,
        S::MissingAddressType,
        S::ReceiptNull,
        S::BrokenBlob,
        S::UnknownStatus,
        S::BadAmount,
        S::MissingPayment,
        S::UnknownPaymentType,
    ];

    /// The class of the report note the import writes for a row in this state: skipped
    /// (`false`) or imported by a rule (`true`); `None` when it writes none.
    pub fn expected_note(self) -> Option<(&'static str, bool)> {
        Some(match self {
            S::BrokenBlob => (class::BROKEN_BLOB, false),
            S::UnknownStatus => (class::UNKNOWN_STATUS, false),
            S::BadAmount => (class::BAD_AMOUNT, false),
            S::MissingPayment => (class::MISSING_PAYMENT, false),
            S::UnknownPaymentType => (class::UNKNOWN_PAYMENT_TYPE, false),
            S::MbkBooked => (class::MBK_CREDIT_CARD, true),
            S::ModeratedWithoutReasons => (class::MODERATED_WITHOUT_REASONS, true),
            S::DeprecatedE => (class::DEPRECATED_STATUS_E, true),
            S::ZeroExportDate => (class::ZERO_EXPORT_DATE, true),
            S::MissingAddressType => (class::DONOR_KIND_INFERRED, true),
            _ => return None,
        })
    }

    /// Whether the import skips a row in this state.
    pub fn is_malformed(self) -> bool {
        self.expected_note().is_some_and(|(_, imported)| !imported)
    }

    /// A stable name.
    pub fn name(self) -> String {
        format!("{self:?}")
    }

    /// A state drawn by the mix of a real table: nearly all exported and scrubbed.
    fn draw(rng: &mut StdRng) -> Self {
        match rng.gen_range(0..1000) {
            0..=799 => S::ExportedScrubbed,
            800..=839 => S::ScrubbedCancelled,
            840..=869 => S::ScrubbedAbandoned,
            870..=879 => S::ScrubbedBeforeImport,
            880..=884 => S::ScrubbedModerated,
            885..=887 => [S::BrokenBlob, S::UnknownStatus, S::BadAmount][rng.gen_range(0..3)],
            888..=889 => {
                [S::MissingPayment, S::UnknownPaymentType, S::MbkBooked][rng.gen_range(0..3)]
            }
            _ => {
                let recent = &Self::ALL[..19];
                recent[rng.gen_range(0..recent.len())]
            }
        }
    }
}

/// The state a fixture `request` row (membership application) is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MembershipScenario {
    /// A person paying by direct debit, confirmed: status 1.
    Confirmed,
    /// A company paying by bank transfer (salutation `Firma`), confirmed: 1.
    CompanyBankTransfer,
    /// PayPal, never booked: not confirmed, 0.
    Neutral,
    /// Cancelled in the back office (its direct debit cancelled): −1.
    Cancelled,
    /// More than 1000 EUR a year: −2 with `MEMBERSHIP_FEE_TOO_HIGH`.
    ModeratedFeeTooHigh,
    /// Flagged by an administrator (the log says when): −2 with `MANUALLY_FLAGGED_BY_ADMIN`.
    ModeratedManually,
    /// `ADDRESS_CONTENT_VIOLATION` and `EMAIL_BLOCKED`: −2.
    ModeratedTwoReasons,
    /// Moderated for its fee and cancelled: −3.
    CancelledModerated,
    /// −2 without reasons in the join table (before 2022-07).
    ModeratedWithoutReasons,
    /// Flagged, then approved (the log says so): 1.
    Approved,
    /// Cancelled, then restored (the log says so); a fee with cents: 1.
    Restored,
    /// Exported, not scrubbed yet: 1.
    Exported,
    /// Exported and scrubbed: most of a real table.
    ExportedScrubbed,
    /// Cancelled and scrubbed: −1.
    ScrubbedCancelled,
    /// Moderated, never exported, scrubbed after the grace period: −2.
    ScrubbedAfterGracePeriod,
    /// No tracking, phone, date of birth, receipt answer or blob: 1.
    Sparse,
    /// Pre-IBAN bank data beside the IBAN (noted, not imported): 1.
    OldBankAccount,
    /// A zero `export` (noted, not exported): 1.
    ZeroExportDate,
    /// Malformed: status −4 (the pre-2021 ABORTED).
    UnknownStatus,
    /// Malformed: `membership_fee` is not the payment's amount.
    FeeMismatch,
    /// Malformed: a one-time payment.
    BadInterval,
    /// Malformed: `payment_id` names no payment.
    MissingPayment,
    /// Malformed: membership type `honorary`.
    UnknownType,
    /// Malformed: status 1 with a moderation reason in the join table.
    ModerationDisagrees,
    /// Malformed: the blob is not base64 of a serialized array.
    BrokenBlob,
}

use MembershipScenario as M;

impl MembershipScenario {
    /// Every membership scenario, in the order applications 1, 2, … take them.
    pub const ALL: [MembershipScenario; 25] = [
        M::Confirmed,
        M::CompanyBankTransfer,
        M::Neutral,
        M::Cancelled,
        M::ModeratedFeeTooHigh,
        M::ModeratedManually,
        M::ModeratedTwoReasons,
        M::CancelledModerated,
        M::ModeratedWithoutReasons,
        M::Approved,
        M::Restored,
        M::Exported,
        M::ExportedScrubbed,
        M::ScrubbedCancelled,
        M::ScrubbedAfterGracePeriod,
        M::Sparse,
        M::OldBankAccount,
        M::ZeroExportDate,
        M::UnknownStatus,
        M::FeeMismatch,
        M::BadInterval,
        M::MissingPayment,
        M::UnknownType,
        M::ModerationDisagrees,
        M::BrokenBlob,
    ];

    /// The class of the report note the import writes for a row in this state: skipped
    /// (`false`) or imported by a rule (`true`); `None` when it writes none.
    pub fn expected_note(self) -> Option<(&'static str, bool)> {
        Some(match self {
            M::ModeratedWithoutReasons => (class::MODERATED_WITHOUT_REASONS, true),
            M::OldBankAccount => (class::OLD_BANK_ACCOUNT_DROPPED, true),
            M::ZeroExportDate => (class::ZERO_EXPORT_DATE, true),
            M::UnknownStatus => (class::UNKNOWN_STATUS, false),
            M::FeeMismatch => (class::FEE_MISMATCH, false),
            M::BadInterval => (class::BAD_FEE_INTERVAL, false),
            M::MissingPayment => (class::MISSING_PAYMENT, false),
            M::UnknownType => (class::UNKNOWN_MEMBERSHIP_TYPE, false),
            M::ModerationDisagrees => (class::MODERATION_DISAGREES, false),
            M::BrokenBlob => (class::BROKEN_BLOB, false),
            _ => return None,
        })
    }

    /// Whether the import skips a row in this state.
    pub fn is_malformed(self) -> bool {
        self.expected_note().is_some_and(|(_, imported)| !imported)
    }

    /// Whether the row's personal data was scrubbed.
    pub fn is_scrubbed(self) -> bool {
        matches!(
            self,
            M::ExportedScrubbed | M::ScrubbedCancelled | M::ScrubbedAfterGracePeriod
        )
    }

    /// The legacy status a row in this state stores.
    pub fn status(self) -> i64 {
        match self {
            M::Neutral => 0,
            M::Cancelled | M::ScrubbedCancelled => -1,
            M::ModeratedFeeTooHigh
            | M::ModeratedManually
            | M::ModeratedTwoReasons
            | M::ModeratedWithoutReasons
            | M::ScrubbedAfterGracePeriod => -2,
            M::CancelledModerated => -3,
            M::UnknownStatus => -4,
            _ => 1,
        }
    }

    /// A state drawn by the mix of a real table: nearly all exported and scrubbed.
    fn draw(rng: &mut StdRng) -> Self {
        match rng.gen_range(0..1000) {
            0..=799 => M::ExportedScrubbed,
            800..=849 => M::ScrubbedCancelled,
            850..=869 => M::ScrubbedAfterGracePeriod,
            870..=872 => [M::FeeMismatch, M::UnknownStatus, M::MissingPayment][rng.gen_range(0..3)],
            _ => {
                let recent = &Self::ALL[..12];
                recent[rng.gen_range(0..recent.len())]
            }
        }
    }
}

/// What a fixture holds.
#[derive(Debug, Clone, Default)]
pub struct FixtureSummary {
    /// `spenden` rows.
    pub rows: u64,
    /// The highest `spenden` id.
    pub max_id: u64,
    /// Payments without a donation (they should be reported).
    pub orphan_payments: Vec<u64>,
    /// Membership applications (`request` rows).
    pub memberships: u64,
    /// The highest `request` id.
    pub max_membership_id: u64,
    /// The state of every row, by id.
    pub scenarios: BTreeMap<u64, Scenario>,
    /// The state of every `request` row, by id.
    pub membership_scenarios: BTreeMap<u64, MembershipScenario>,
}

impl FixtureSummary {
    /// Ids and expected note class of the rows the import must skip.
    pub fn malformed(&self) -> BTreeMap<u64, &'static str> {
        self.scenarios
            .iter()
            .filter(|(_, s)| s.is_malformed())
            .map(|(id, s)| {
                (
                    *id,
                    s.expected_note().expect("malformed rows have a note").0,
                )
            })
            .collect()
    }

    /// Rows per state.
    pub fn counts(&self) -> BTreeMap<Scenario, u64> {
        let mut out = BTreeMap::new();
        for s in self.scenarios.values() {
            *out.entry(*s).or_default() += 1;
        }
        out
    }

    /// Ids and expected note class of the `request` rows the import must skip.
    pub fn malformed_memberships(&self) -> BTreeMap<u64, &'static str> {
        self.membership_scenarios
            .iter()
            .filter(|(_, s)| s.is_malformed())
            .map(|(id, s)| {
                (
                    *id,
                    s.expected_note().expect("malformed rows have a note").0,
                )
            })
            .collect()
    }

    /// `request` rows per state.
    pub fn membership_counts(&self) -> BTreeMap<MembershipScenario, u64> {
        let mut out = BTreeMap::new();
        for s in self.membership_scenarios.values() {
            *out.entry(*s).or_default() += 1;
        }
        out
    }
}

const FIRST: &[&str] = &[
    "Anna", "Jonas", "Lea", "Paul", "Mia", "Emil", "Sofia", "Noah",
];
const LAST: &[&str] = &[
    "Schmidt", "Weber", "Fischer", "Wagner", "Becker", "Müller", "Koch",
];
const CITIES: &[&str] = &["Berlin", "Hamburg", "Leipzig", "Köln", "Dresden", "Bremen"];
const SALUTATIONS: &[&str] = &["Herr", "Frau", "Divers"];
const TRACKING: &[(&str, &str)] = &[
    ("c24_wpde_desktop", "org-01-240926-ctrl"),
    ("c24_wpde_mobile", "org-02-241003-var"),
    ("c24_wmde_mail", ""),
    ("spenden.wikimedia.de", "direct"),
    ("c23_wpde_english", "en-01-231120-ctrl"),
];
const AMOUNTS: &[i64] = &[500, 1000, 1337, 1500, 2000, 2500, 5000, 10_000];
const REASONS: &[(&str, &str)] = &[
    ("AMOUNT_TOO_HIGH", "amount"),
    ("ADDRESS_CONTENT_VIOLATION", "lastName"),
    ("EMAIL_BLOCKED", "email"),
    ("MANUALLY_FLAGGED_BY_ADMIN", ""),
];
/// The charset of payment reference codes.
const CODE_CHARS: &[u8] = b"ACDEFKLMNPRTWXYZ349";

/// A row of `spenden` as the fixture writes it.
#[derive(Debug, Clone, Default)]
struct Row {
    id: u64,
    status: String,
    name: Option<String>,
    ort: Option<String>,
    email: Option<String>,
    info: i64,
    bescheinigung: Option<i64>,
    eintrag: String,
    betrag: String,
    periode: i64,
    zahlweise: String,
    kommentar: String,
    ueb_code: String,
    data: String,
    is_public: i64,
    is_scrubbed: i64,
    dt_new: String,
    dt_del: Option<String>,
    dt_exp: Option<String>,
    dt_gruen: Option<String>,
    dt_backup: Option<String>,
    payment_id: u64,
    tracking_id: Option<i64>,
    impression_count: i64,
    banner_impression_count: i64,
}

#[derive(Debug, Clone, Default)]
struct PaymentRow {
    id: u64,
    amount: i64,
    interval: i64,
    method: String,
    iban: Option<String>,
    bic: Option<String>,
    cancelled: i64,
    code: Option<String>,
    valuation: Option<String>,
    transaction: Option<String>,
    booking: Option<String>,
    parent: Option<i64>,
}

/// A row of `request` as the fixture writes it.
#[derive(Debug, Clone, Default)]
struct RequestRow {
    id: u64,
    status: i64,
    timestamp: String,
    anrede: String,
    titel: String,
    firma: String,
    name: String,
    vorname: String,
    nachname: String,
    strasse: String,
    plz: String,
    ort: String,
    country: String,
    email: String,
    phone: String,
    dob: Option<String>,
    membership_type: String,
    membership_fee: i64,
    interval: i64,
    old_bank: [String; 3],
    iban: String,
    bic: String,
    export: Option<String>,
    backup: Option<String>,
    tracking: Option<String>,
    data: Option<String>,
    donation_receipt: Option<i64>,
    payment_id: u64,
    is_scrubbed: i64,
}

#[derive(Debug, Default)]
struct Tables {
    spenden: Vec<Row>,
    payments: Vec<PaymentRow>,
    reasons: Vec<(u64, i64)>,
    requests: Vec<RequestRow>,
    request_reasons: Vec<(u64, i64)>,
}

/// The membership moderation reasons (`membership_moderation_reason`), ids 1 to 4.
const MEMBERSHIP_REASONS: &[(&str, &str)] = &[
    ("MEMBERSHIP_FEE_TOO_HIGH", "amount"),
    ("ADDRESS_CONTENT_VIOLATION", "applicant-last-name"),
    ("EMAIL_BLOCKED", "applicant-email"),
    ("MANUALLY_FLAGGED_BY_ADMIN", ""),
];
/// Membership tracking as the form stored it: not lowercased, a part may be missing.
const MEMBERSHIP_TRACKING: &[&str] = &[
    "C24_WMDE_Mitglied/banner-02",
    "c24_wpde_desktop/org-01-240926-ctrl",
    "mitgliedschaft/",
    "/newsletter",
    "",
];
/// `(fee in euros, interval in months)` of ordinary applications.
const FEES: &[(i64, i64)] = &[
    (5, 1),
    (10, 1),
    (15, 3),
    (30, 3),
    (50, 6),
    (24, 12),
    (60, 12),
    (120, 12),
];

/// Builds one membership application in `scenario` into `t`.
fn build_request(
    t: &mut Tables,
    id: u64,
    payment_id: u64,
    scenario: MembershipScenario,
    rng: &mut StdRng,
) {
    let created = Utc.with_ymd_and_hms(2019, 1, 1, 9, 0, 0).unwrap()
        + Duration::seconds(i64::try_from(id).unwrap_or(0) * 7919 % 230_000_000);
    let later = |days: i64| fmt(created + Duration::days(days));
    let scrubbed = scenario.is_scrubbed();
    let company = scenario == M::CompanyBankTransfer;
    let method = match scenario {
        M::CompanyBankTransfer => "UEB",
        M::Neutral => "PPL",
        _ => "BEZ",
    };
    let (mut fee, mut interval) = FEES[rng.gen_range(0..FEES.len())];
    if matches!(scenario, M::ModeratedFeeTooHigh | M::CancelledModerated) {
        (fee, interval) = (100, 1);
    }
    if company {
        (fee, interval) = (30, 3);
    }
    let mut cents = fee * 100;
    if scenario == M::Restored {
        // Whole euros in the row, the cents only in the payment (`Euro::getEuros()`).
        (fee, interval, cents) = (12, 1, 1250);
    }
    let reasons: &[usize] = match scenario {
        M::ModeratedFeeTooHigh | M::CancelledModerated => &[0],
        M::ModeratedManually => &[3],
        M::ModeratedTwoReasons => &[1, 2],
        M::ModerationDisagrees => &[2],
        M::ScrubbedAfterGracePeriod => &[0],
        _ => &[],
    };
    if scenario == M::ScrubbedAfterGracePeriod {
        (fee, interval, cents) = (100, 1, 10_000);
    }
    let cancelled = matches!(
        scenario,
        M::Cancelled | M::CancelledModerated | M::ScrubbedCancelled
    );
    let exported = matches!(
        scenario,
        M::Exported | M::ExportedScrubbed | M::OldBankAccount
    );

    let first = FIRST[rng.gen_range(0..FIRST.len())];
    let last = LAST[rng.gen_range(0..LAST.len())];
    let city = CITIES[rng.gen_range(0..CITIES.len())];
    let salutation = SALUTATIONS[rng.gen_range(0..SALUTATIONS.len())];
    let title = if rng.gen_bool(0.1) { "Dr." } else { "" };
    let tracking = MEMBERSHIP_TRACKING[rng.gen_range(0..MEMBERSHIP_TRACKING.len())];
    let receipt = i64::from(rng.gen_bool(0.5));
    let email = format!(
        "{}.{}.m{id}@example.org",
        first.to_lowercase(),
        last.to_lowercase()
    );
    let mut log = BTreeMap::new();
    match scenario {
        M::Cancelled | M::CancelledModerated | M::ScrubbedCancelled => {
            log.insert(later(1), s("cancelled by user: foc:anna"));
        }
        M::ModeratedManually => {
            log.insert(later(1), s("marked for moderation by user: foc:jonas"));
        }
        M::Approved => {
            log.insert(later(1), s("marked for moderation by user: foc:jonas"));
            log.insert(later(2), s("marked as approved by user: foc:jonas"));
        }
        M::Restored => {
            log.insert(later(1), s("cancelled by user: foc:anna"));
            log.insert(later(3), s("restored by user: foc:anna"));
        }
        _ => {}
    }
    let mut blob: BTreeMap<String, PhpValue> = BTreeMap::new();
    if !log.is_empty() {
        blob.insert("log".into(), PhpValue::Array(log));
    }
    if !scrubbed {
        // The deprecated access tokens, still in old blobs.
        blob.insert("token".into(), s(&format!("{:016x}", rng.gen::<u64>())));
    }
    let data = match scenario {
        M::Sparse => None,
        M::BrokenBlob => {
            let decoded = base64_decode(&encode_blob(&blob));
            Some(base64_encode(&decoded[..decoded.len() / 2]))
        }
        _ => Some(encode_blob(&blob)),
    };

    let mut r = RequestRow {
        id,
        status: scenario.status(),
        timestamp: fmt(created),
        membership_type: if scenario == M::UnknownType {
            "honorary".into()
        } else if company || rng.gen_bool(0.7) {
            "sustaining".into()
        } else {
            "active".into()
        },
        membership_fee: if scenario == M::FeeMismatch {
            fee + 5
        } else {
            fee
        },
        interval,
        export: if scenario == M::ZeroExportDate {
            Some("0000-00-00 00:00:00".into())
        } else {
            exported.then(|| later(7))
        },
        backup: (scrubbed || exported).then(|| later(8)),
        tracking: (scenario != M::Sparse).then(|| tracking.to_owned()),
        data,
        donation_receipt: (scenario != M::Sparse).then_some(receipt),
        payment_id: if scenario == M::MissingPayment {
            payment_id + 900_000_000
        } else {
            payment_id
        },
        is_scrubbed: i64::from(scrubbed),
        ..Default::default()
    };
    if !scrubbed {
        if company {
            r.anrede = "Firma".into();
            r.firma = format!("{last} e.V.");
            r.name = r.firma.clone();
        } else {
            r.anrede = salutation.into();
            r.titel = title.into();
            r.vorname = first.into();
            r.nachname = last.into();
            r.name = [title, first, last]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            if scenario != M::Sparse {
                r.dob = Some(format!(
                    "{}-{:02}-{:02}",
                    1940 + id % 60,
                    1 + id % 12,
                    1 + id % 28
                ));
                r.phone = format!("030 {:07}", id * 37 % 10_000_000);
            }
        }
        r.strasse = format!("Lindenallee {}", id % 150 + 1);
        r.plz = format!("{:05}", 10_000 + id * 13 % 89_999);
        r.ort = city.into();
        r.country = "DE".into();
        r.email = email;
        if method == "BEZ" {
            r.iban = "DE02120300000000202051".into();
            r.bic = "BYLADEM1001".into();
        }
        if scenario == M::OldBankAccount {
            r.old_bank = [
                "0000202051".into(),
                "12030000".into(),
                "Deutsche Kreditbank Berlin".into(),
            ];
        }
    }
    for reason in reasons {
        t.request_reasons.push((id, *reason as i64 + 1));
    }
    t.requests.push(r);
    if scenario == M::MissingPayment {
        return;
    }
    let mut p = PaymentRow {
        id: payment_id,
        amount: cents,
        interval: if scenario == M::BadInterval {
            0
        } else {
            interval
        },
        method: method.into(),
        cancelled: i64::from(cancelled),
        ..Default::default()
    };
    if scenario == M::BadInterval {
        if let Some(r) = t.requests.last_mut() {
            r.interval = 0;
        }
    }
    match method {
        "BEZ" if !scrubbed => {
            p.iban = Some("DE02120300000000202051".into());
            p.bic = Some("BYLADEM1001".into());
        }
        "BEZ" => {
            // The payment anonymiser blanks them too.
            p.iban = Some(String::new());
            p.bic = Some(String::new());
        }
        "UEB" => p.code = Some(format!("XM-{}", &reference_code(id)[3..])),
        _ => {}
    }
    t.payments.push(p);
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn reference_code(n: u64) -> String {
    let mut digits = String::new();
    let mut v = n;
    for _ in 0..6 {
        digits.push(CODE_CHARS[(v % CODE_CHARS.len() as u64) as usize] as char);
        v /= CODE_CHARS.len() as u64;
    }
    format!("XW-{}-{}-X", &digits[..3], &digits[3..])
}

fn s(v: &str) -> PhpValue {
    PhpValue::Str(v.to_owned())
}

/// Builds one donation in `scenario` into `t`.
fn build(t: &mut Tables, id: u64, payment_id: u64, scenario: Scenario, rng: &mut StdRng) {
    let created = Utc.with_ymd_and_hms(2015, 1, 1, 8, 0, 0).unwrap()
        + Duration::seconds(i64::try_from(id).unwrap_or(0) * 97 % 340_000_000);
    let later = |days: i64| fmt(created + Duration::days(days));
    let scrubbed = matches!(
        scenario,
        S::ExportedScrubbed
            | S::ScrubbedCancelled
            | S::ScrubbedAbandoned
            | S::ScrubbedModerated
            | S::ScrubbedBeforeImport
    );
    let method = match scenario {
        S::DirectDebit
        | S::DirectDebitCancelled
        | S::ModeratedAmount
        | S::CancelledModerated
        | S::ModeratedWithoutReasons
        | S::Approved
        | S::Exported
        | S::ScrubbedModerated
        | S::DeprecatedE
        | S::MissingKeys
        | S::ZeroExportDate
        | S::MissingAddressType
        | S::BrokenBlob
        | S::UnknownStatus
        | S::BadAmount
        | S::MissingPayment => "BEZ",
        S::BankTransferCompany
        | S::BankTransferDeleted
        | S::ModeratedTwoReasons
        | S::ApprovedAnonymous
        | S::Anonymous
        | S::ReceiptNull => "UEB",
        S::SofortOpen | S::SofortBooked => "SUB",
        S::CardOpen | S::CardBooked | S::MbkBooked => "MCP",
        S::PayPalOpen | S::PayPalBooked | S::PayPalFollowUp | S::EmailOnly => "PPL",
        S::ScrubbedBeforeImport | S::ScrubbedAbandoned => ["PPL", "MCP"][rng.gen_range(0..2)],
        S::ScrubbedCancelled => ["BEZ", "UEB"][rng.gen_range(0..2)],
        S::ExportedScrubbed => ["BEZ", "UEB", "PPL", "MCP", "SUB"][rng.gen_range(0..5)],
        S::UnknownPaymentType => "FCH",
    };
    let booked = matches!(
        scenario,
        S::SofortBooked
            | S::CardBooked
            | S::MbkBooked
            | S::PayPalBooked
            | S::PayPalFollowUp
            | S::EmailOnly
            | S::ScrubbedBeforeImport
    ) || (scenario == S::ExportedScrubbed && ["PPL", "MCP", "SUB"].contains(&method));
    let cancelled = matches!(
        scenario,
        S::DirectDebitCancelled
            | S::BankTransferDeleted
            | S::CancelledModerated
            | S::ScrubbedCancelled
    );
    let kind = match scenario {
        S::BankTransferCompany => "firma",
        S::Anonymous | S::ApprovedAnonymous => "anonym",
        S::EmailOnly => "email",
        _ => "person",
    };
    let reasons: &[usize] = match scenario {
        S::ModeratedAmount | S::CancelledModerated | S::ScrubbedModerated => &[0],
        S::ModeratedTwoReasons => &[1, 2],
        _ => &[],
    };
    let exported = matches!(scenario, S::Exported | S::ExportedScrubbed);
    let mut cents = AMOUNTS[rng.gen_range(0..AMOUNTS.len())];
    if scenario == S::ModeratedAmount || scenario == S::ScrubbedModerated {
        cents = 150_000;
    }
    let interval = if method == "SUB" {
        0
    } else {
        [0, 0, 0, 1, 3, 6, 12][rng.gen_range(0..7)]
    };
    let status = if scenario == S::UnknownStatus {
        "Q"
    } else if scenario == S::DeprecatedE {
        "E"
    } else if cancelled {
        "D"
    } else if !reasons.is_empty() || scenario == S::ModeratedWithoutReasons {
        "P"
    } else {
        match (method, booked) {
            ("BEZ", _) | ("FCH", _) => "N",
            ("UEB", _) | ("SUB", true) => "Z",
            (_, true) => "B",
            _ => "X",
        }
    };

    let salutation = SALUTATIONS[rng.gen_range(0..SALUTATIONS.len())];
    let first = FIRST[rng.gen_range(0..FIRST.len())];
    let last = LAST[rng.gen_range(0..LAST.len())];
    let city = CITIES[rng.gen_range(0..CITIES.len())];
    let title = if rng.gen_bool(0.1) && scenario != S::MissingKeys {
        "Dr."
    } else {
        ""
    };
    let email = format!(
        "{}.{}{id}@example.org",
        first.to_lowercase(),
        last.to_lowercase()
    );
    let company = format!("{last} GmbH");
    let (campaign, keyword) = TRACKING[rng.gen_range(0..TRACKING.len())];
    let tracked = rng.gen_bool(0.8);
    let impressions = rng.gen_range(0..40);
    let banner_impressions = rng.gen_range(0..=impressions);

    let mut blob: BTreeMap<String, PhpValue> = BTreeMap::new();
    blob.insert("adresstyp".into(), s(kind));
    if kind != "anonym" {
        blob.insert("anrede".into(), s(salutation));
    }
    if tracked {
        let legacy = if keyword.is_empty() {
            campaign.to_owned()
        } else {
            format!("{campaign}/{keyword}")
        };
        blob.insert("tracking".into(), s(&legacy));
    }
    blob.insert("impCount".into(), PhpValue::Int(impressions));
    blob.insert("bImpCount".into(), PhpValue::Int(banner_impressions));
    let mut log = BTreeMap::new();
    let (name, ort, mail) = match kind {
        // A recurring payment's follow-up has a recurring donor: salutation and kind only.
        _ if scenario == S::PayPalFollowUp => (
            Some(String::new()),
            Some(String::new()),
            Some(String::new()),
        ),
        "anonym" => (
            Some("Anonym".to_owned()),
            Some(String::new()),
            Some(String::new()),
        ),
        "firma" => (
            Some(company.clone()),
            Some(city.to_owned()),
            Some(email.clone()),
        ),
        "email" => (
            Some(format!("{first} {last}")),
            Some(String::new()),
            Some(email.clone()),
        ),
        _ => (
            Some(
                [title, first, last]
                    .iter()
                    .filter(|p| !p.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Some(city.to_owned()),
            Some(email.clone()),
        ),
    };
    if !scrubbed && scenario != S::PayPalFollowUp {
        match kind {
            "anonym" => {}
            "email" => {
                blob.insert("vorname".into(), s(first));
                blob.insert("nachname".into(), s(last));
                blob.insert("email".into(), s(&email));
            }
            _ => {
                if kind == "firma" {
                    blob.insert("firma".into(), s(&company));
                } else {
                    blob.insert("titel".into(), s(title));
                    blob.insert("vorname".into(), s(first));
                    blob.insert("nachname".into(), s(last));
                }
                blob.insert(
                    "strasse".into(),
                    s(&format!("Hauptstraße {}", id % 200 + 1)),
                );
                blob.insert("plz".into(), s(&format!("{:05}", 10_000 + id % 89_999)));
                blob.insert("ort".into(), s(city));
                blob.insert("country".into(), s("DE"));
                blob.insert("email".into(), s(&email));
            }
        }
        if method == "BEZ" {
            blob.insert("iban".into(), s("DE02120300000000202051"));
            blob.insert("bic".into(), s("BYLADEM1001"));
        }
        if scenario == S::MbkBooked {
            blob.insert("mb_amount".into(), s(&format!("{}", cents / 100)));
        }
    }
    match scenario {
        S::DirectDebitCancelled | S::CancelledModerated => {
            log.insert(later(1), s("cancelled by user: foc:anna"));
        }
        S::Approved => {
            log.insert(later(2), s("marked as approved by user: foc:jonas"));
        }
        S::ApprovedAnonymous => {
            log.insert(
                later(2),
                s("marked as approved and anonymized by user: foc:jonas"),
            );
        }
        _ => {}
    }
    if method != "BEZ" && booked {
        log.insert(
            fmt(created + Duration::minutes(5)),
            s("book_donation_use_case: booked"),
        );
    }
    if !log.is_empty() {
        blob.insert("log".into(), PhpValue::Array(log));
    }
    if scenario == S::MissingKeys {
        for k in [
            "tracking",
            "impCount",
            "bImpCount",
            "country",
            "titel",
            "email",
            "log",
        ] {
            blob.remove(k);
        }
    }
    if scenario == S::MissingAddressType {
        blob.remove("adresstyp");
    }
    let data = if scenario == S::BrokenBlob {
        // A serialisation cut off in the middle, as a truncated TEXT column leaves it.
        let whole = encode_blob(&blob);
        let decoded = base64_decode(&whole);
        base64_encode(&decoded[..decoded.len() / 2])
    } else {
        encode_blob(&blob)
    };

    let has_comment = matches!(scenario, S::BankTransferCompany) || rng.gen_bool(0.15);
    let public = scenario == S::BankTransferCompany || rng.gen_bool(0.5);
    let (kommentar, is_public, eintrag) = if !has_comment
        || kind == "anonym" && scenario == S::ApprovedAnonymous
        || scenario == S::PayPalFollowUp
        || (scrubbed && !public)
    {
        (String::new(), 0, String::new())
    } else {
        let shown = if public && rng.gen_bool(0.5) {
            name.clone().unwrap_or_default()
        } else {
            "anonym".to_owned()
        };
        (
            format!("Danke für Wikipedia! ({id})"),
            i64::from(public),
            shown,
        )
    };
    let code = (method == "UEB" || method == "SUB").then(|| reference_code(id));
    let gruen = exported.then(|| later(7));
    let row = Row {
        id,
        status: status.into(),
        name: if scrubbed { Some(String::new()) } else { name },
        ort: if scrubbed { Some(String::new()) } else { ort },
        email: if scrubbed { Some(String::new()) } else { mail },
        info: i64::from(rng.gen_bool(0.3)),
        bescheinigung: if scenario == S::ReceiptNull {
            None
        } else {
            Some(i64::from(rng.gen_bool(0.6)))
        },
        eintrag,
        betrag: if scenario == S::BadAmount {
            "zwölf Euro".into()
        } else {
            format!("{}.{:02}", cents / 100, cents % 100)
        },
        periode: interval,
        zahlweise: if scenario == S::MbkBooked {
            "MBK".into()
        } else {
            method.into()
        },
        kommentar,
        ueb_code: if scrubbed {
            String::new()
        } else {
            code.clone().unwrap_or_default()
        },
        data,
        is_public,
        is_scrubbed: i64::from(scrubbed),
        dt_new: fmt(created),
        dt_del: (scenario == S::BankTransferDeleted).then(|| later(3)),
        dt_exp: if scenario == S::DeprecatedE {
            Some(later(6))
        } else {
            gruen.clone()
        },
        dt_gruen: if scenario == S::ZeroExportDate {
            Some("0000-00-00 00:00:00".into())
        } else {
            gruen.clone()
        },
        dt_backup: scrubbed.then(|| later(8)),
        payment_id: if scenario == S::MissingPayment {
            payment_id + 900_000_000
        } else {
            payment_id
        },
        tracking_id: tracked.then(|| {
            TRACKING
                .iter()
                .position(|p| *p == (campaign, keyword))
                .map_or(1, |i| i as i64 + 1)
        }),
        impression_count: impressions,
        banner_impression_count: banner_impressions,
    };
    for r in reasons {
        t.reasons.push((id, *r as i64 + 1));
    }
    t.spenden.push(row);
    if scenario == S::MissingPayment {
        return;
    }
    let valuation = booked.then(|| fmt(created + Duration::minutes(5)));
    let transaction = format!("TX{id:010}");
    let mut p = PaymentRow {
        id: payment_id,
        amount: cents,
        interval,
        method: method.into(),
        valuation: valuation.clone(),
        cancelled: i64::from(cancelled),
        ..Default::default()
    };
    match method {
        "BEZ" if !scrubbed => {
            p.iban = Some("DE02120300000000202051".into());
            p.bic = Some("BYLADEM1001".into());
        }
        "UEB" | "SUB" if !scrubbed => p.code = code,
        "MCP" if booked => {
            p.booking = Some(if scrubbed {
                "{}".into()
            } else {
                format!(
                    r#"{{"ext_payment_id":"{transaction}","mcp_sessionid":"S{id}","mcp_auth":"A{id}","ext_payment_status":"processed","mcp_amount":"{cents}"}}"#
                )
            });
        }
        "PPL" if booked => {
            if !scrubbed {
                p.transaction = Some(transaction.clone());
            }
            p.booking = Some(if scrubbed {
                "{}".into()
            } else {
                format!(
                    r#"{{"paypal_payer_id":"P{id}","paypal_payer_status":"verified","ext_payment_status":"Completed/web_accept","ext_payment_id":"{transaction}"}}"#
                )
            });
            if scenario == S::PayPalFollowUp {
                p.parent = Some(i64::try_from(payment_id).unwrap_or(1) - 1);
            }
        }
        "SUB" if booked && !scrubbed => p.transaction = Some(transaction),
        _ => {}
    }
    t.payments.push(p);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Creates the legacy tables in the database `pool` is on and fills them with `rows` donations
/// and the default number of membership applications (one per [`MembershipScenario`] and one
/// per 1009 donations) from `seed`. The database should be empty.
pub async fn generate(
    pool: &MySqlPool,
    rows: u64,
    seed: u64,
) -> Result<FixtureSummary, sqlx::Error> {
    generate_with(pool, rows, None, seed).await
}

/// [`generate`] with at least `memberships` membership applications (never fewer than the
/// default number); the donations are the same whatever their number.
pub async fn generate_with(
    pool: &MySqlPool,
    rows: u64,
    memberships: Option<u64>,
    seed: u64,
) -> Result<FixtureSummary, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    // Zero dates are one of the oddities: allow them, as old servers did.
    sqlx::query("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
        .execute(&mut *conn)
        .await?;
    for ddl in SCHEMA {
        sqlx::query(ddl).execute(&mut *conn).await?;
    }
    let mut q =
        QueryBuilder::<MySql>::new("INSERT INTO donation_tracking (id, campaign, keyword) ");
    q.push_values(TRACKING.iter().enumerate(), |mut b, (i, (c, k))| {
        b.push_bind(i as i64 + 1).push_bind(*c).push_bind(*k);
    });
    q.build().execute(&mut *conn).await?;
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO donation_moderation_reason (id, moderation_identifier, source) ",
    );
    q.push_values(REASONS.iter().enumerate(), |mut b, (i, (m, src))| {
        b.push_bind(i as i64 + 1).push_bind(*m).push_bind(*src);
    });
    q.build().execute(&mut *conn).await?;
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO membership_moderation_reason (id, moderation_identifier, source) ",
    );
    q.push_values(
        MEMBERSHIP_REASONS.iter().enumerate(),
        |mut b, (i, (m, src))| {
            b.push_bind(i as i64 + 1).push_bind(*m).push_bind(*src);
        },
    );
    q.build().execute(&mut *conn).await?;

    let mut rng = StdRng::seed_from_u64(seed);
    // The memberships' own stream: the donations do not depend on them.
    let mut mrng = StdRng::seed_from_u64(seed ^ 0x6d65_6d62_6572_7368);
    let first_extra = MembershipScenario::ALL.len() as u64 + 1;
    let mut membership_id = first_extra - 1;
    let mut summary = FixtureSummary::default();
    let mut id = 0u64;
    let mut payment_id = 1_000_000u64;
    let mut t = Tables::default();
    for n in 0..rows {
        id += 1 + u64::from(rng.gen_bool(0.1)) * rng.gen_range(1..5);
        payment_id += 1;
        let scenario = match Scenario::ALL.get(n as usize) {
            Some(s) => *s,
            None => Scenario::draw(&mut rng),
        };
        build(&mut t, id, payment_id, scenario, &mut rng);
        summary.scenarios.insert(id, scenario);
        // Now and then a payment no donation refers to, and a membership with its payment.
        if n % 997 == 5 {
            payment_id += 1;
            t.payments.push(PaymentRow {
                id: payment_id,
                amount: 2500,
                interval: 0,
                method: "PPL".into(),
                valuation: Some(fmt(Utc.with_ymd_and_hms(2020, 5, 1, 0, 0, 0).unwrap())),
                ..Default::default()
            });
            summary.orphan_payments.push(payment_id);
        }
        if n % 1009 == 7 {
            payment_id += 1;
            membership_id += 1;
            let scenario = MembershipScenario::draw(&mut mrng);
            build_request(&mut t, membership_id, payment_id, scenario, &mut mrng);
            summary.membership_scenarios.insert(membership_id, scenario);
        }
        if t.spenden.len() >= 500 {
            write(&mut conn, &mut t).await?;
        }
    }
    // Applications 1, 2, … in every state, then any further ones asked for.
    let defaults = MembershipScenario::ALL.len() as u64 + (membership_id + 1 - first_extra);
    let extra = memberships.unwrap_or(0).saturating_sub(defaults);
    let states = MembershipScenario::ALL.iter().copied().zip(1..first_extra);
    let more = (0..extra).map(|n| (None, membership_id + 1 + n));
    for (scenario, mid) in states.map(|(s, i)| (Some(s), i)).chain(more) {
        let scenario = scenario.unwrap_or_else(|| MembershipScenario::draw(&mut mrng));
        payment_id += 1;
        build_request(&mut t, mid, payment_id, scenario, &mut mrng);
        summary.membership_scenarios.insert(mid, scenario);
        if t.requests.len() >= 500 {
            write(&mut conn, &mut t).await?;
        }
    }
    write(&mut conn, &mut t).await?;
    summary.rows = rows;
    summary.max_id = id;
    summary.memberships = summary.membership_scenarios.len() as u64;
    summary.max_membership_id = summary
        .membership_scenarios
        .keys()
        .last()
        .copied()
        .unwrap_or(0);
    Ok(summary)
}

/// Writes and empties the gathered rows.
async fn write(conn: &mut sqlx::MySqlConnection, t: &mut Tables) -> Result<(), sqlx::Error> {
    if !t.spenden.is_empty() {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO spenden (id, status, name, ort, email, info, bescheinigung, eintrag, \
             betrag, periode, zahlweise, kommentar, ueb_code, data, is_public, is_scrubbed, \
             dt_new, dt_del, dt_exp, dt_gruen, dt_backup, payment_id, tracking_id, \
             impression_count, banner_impression_count) ",
        );
        q.push_values(t.spenden.drain(..), |mut b, r| {
            b.push_bind(r.id)
                .push_bind(r.status)
                .push_bind(r.name)
                .push_bind(r.ort)
                .push_bind(r.email)
                .push_bind(r.info)
                .push_bind(r.bescheinigung)
                .push_bind(r.eintrag)
                .push_bind(r.betrag)
                .push_bind(r.periode)
                .push_bind(r.zahlweise)
                .push_bind(r.kommentar)
                .push_bind(r.ueb_code)
                .push_bind(r.data)
                .push_bind(r.is_public)
                .push_bind(r.is_scrubbed)
                .push_bind(r.dt_new)
                .push_bind(r.dt_del)
                .push_bind(r.dt_exp)
                .push_bind(r.dt_gruen)
                .push_bind(r.dt_backup)
                .push_bind(r.payment_id)
                .push_bind(r.tracking_id)
                .push_bind(r.impression_count)
                .push_bind(r.banner_impression_count);
        });
        q.build().execute(&mut *conn).await?;
    }
    if !t.payments.is_empty() {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO payment (id, amount, payment_interval, payment_method) ",
        );
        q.push_values(&t.payments, |mut b, p| {
            b.push_bind(p.id)
                .push_bind(p.amount)
                .push_bind(p.interval)
                .push_bind(p.method.clone());
        });
        q.build().execute(&mut *conn).await?;
        fn of<'a>(
            payments: &'a [PaymentRow],
            m: &'static str,
        ) -> impl Iterator<Item = &'a PaymentRow> {
            payments.iter().filter(move |p| p.method == m)
        }
        let of = |m: &'static str| of(&t.payments, m);
        if of("BEZ").next().is_some() {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO payment_direct_debit (id, iban, bic, is_cancelled) ",
            );
            q.push_values(of("BEZ"), |mut b, p| {
                b.push_bind(p.id)
                    .push_bind(p.iban.clone())
                    .push_bind(p.bic.clone())
                    .push_bind(p.cancelled);
            });
            q.build().execute(&mut *conn).await?;
        }
        if of("UEB").next().is_some() {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO payment_bank_transfer (id, payment_reference_code, is_cancelled) ",
            );
            q.push_values(of("UEB"), |mut b, p| {
                b.push_bind(p.id)
                    .push_bind(p.code.clone())
                    .push_bind(p.cancelled);
            });
            q.build().execute(&mut *conn).await?;
        }
        if of("SUB").next().is_some() {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO payment_sofort (id, payment_reference_code, valuation_date, transaction_id) ",
            );
            q.push_values(of("SUB"), |mut b, p| {
                b.push_bind(p.id)
                    .push_bind(p.code.clone())
                    .push_bind(p.valuation.clone())
                    .push_bind(p.transaction.clone());
            });
            q.build().execute(&mut *conn).await?;
        }
        if of("MCP").next().is_some() {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO payment_credit_card (id, valuation_date, booking_data) ",
            );
            q.push_values(of("MCP"), |mut b, p| {
                b.push_bind(p.id)
                    .push_bind(p.valuation.clone())
                    .push_bind(p.booking.clone());
            });
            q.build().execute(&mut *conn).await?;
        }
        if of("PPL").next().is_some() {
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO payment_paypal (id, valuation_date, booking_data, transaction_id, parent_payment_id) ",
            );
            q.push_values(of("PPL"), |mut b, p| {
                b.push_bind(p.id)
                    .push_bind(p.valuation.clone())
                    .push_bind(p.booking.clone())
                    .push_bind(p.transaction.clone())
                    .push_bind(p.parent);
            });
            q.build().execute(&mut *conn).await?;
        }
        t.payments.clear();
    }
    if !t.reasons.is_empty() {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO donations_moderation_reasons (donation_id, moderation_reason_id) ",
        );
        q.push_values(t.reasons.drain(..), |mut b, (d, r)| {
            b.push_bind(d).push_bind(r);
        });
        q.build().execute(&mut *conn).await?;
    }
    if !t.requests.is_empty() {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO request (id, status, timestamp, anrede, titel, firma, name, vorname, \
             nachname, strasse, plz, ort, country, email, phone, dob, membership_type, \
             membership_fee, membership_fee_interval, account_number, bank_code, bank_name, \
             iban, bic, comment, export, backup, tracking, data, donation_receipt, payment_id, \
             is_scrubbed) ",
        );
        q.push_values(t.requests.drain(..), |mut b, r| {
            let [account, code, bank] = r.old_bank;
            b.push_bind(r.id)
                .push_bind(r.status)
                .push_bind(r.timestamp)
                .push_bind(r.anrede)
                .push_bind(r.titel)
                .push_bind(r.firma)
                .push_bind(r.name)
                .push_bind(r.vorname)
                .push_bind(r.nachname)
                .push_bind(r.strasse)
                .push_bind(r.plz)
                .push_bind(r.ort)
                .push_bind(r.country)
                .push_bind(r.email)
                .push_bind(r.phone)
                .push_bind(r.dob)
                .push_bind(r.membership_type)
                .push_bind(r.membership_fee)
                .push_bind(r.interval)
                .push_bind(account)
                .push_bind(code)
                .push_bind(bank)
                .push_bind(r.iban)
                .push_bind(r.bic)
                .push_bind("")
                .push_bind(r.export)
                .push_bind(r.backup)
                .push_bind(r.tracking)
                .push_bind(r.data)
                .push_bind(r.donation_receipt)
                .push_bind(r.payment_id)
                .push_bind(r.is_scrubbed);
        });
        q.build().execute(&mut *conn).await?;
    }
    if !t.request_reasons.is_empty() {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO memberships_moderation_reasons (membership_id, moderation_reason_id) ",
        );
        q.push_values(t.request_reasons.drain(..), |mut b, (m, r)| {
            b.push_bind(m).push_bind(r);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::interpret::interpret;
    use crate::legacy::request::interpret_request;
    use crate::legacy::source::{SourcePayment, SourceRequest, SourceRow};

    /// The fixture's rows as the source reader returns them, without a database.
    fn as_source(t: &Tables) -> Vec<SourceRow> {
        t.spenden
            .iter()
            .map(|r| {
                let p = t.payments.iter().find(|p| p.id == r.payment_id);
                SourceRow {
                    id: r.id,
                    status: r.status.clone(),
                    name: r.name.clone(),
                    ort: r.ort.clone(),
                    email: r.email.clone(),
                    info: r.info,
                    bescheinigung: r.bescheinigung,
                    eintrag: r.eintrag.clone(),
                    betrag: Some(r.betrag.clone()),
                    periode: r.periode,
                    zahlweise: r.zahlweise.clone(),
                    kommentar: r.kommentar.clone(),
                    ueb_code: r.ueb_code.clone(),
                    data: Some(r.data.clone()),
                    is_public: r.is_public,
                    is_scrubbed: r.is_scrubbed,
                    dt_new: Some(r.dt_new.clone()),
                    dt_del: r.dt_del.clone(),
                    dt_exp: r.dt_exp.clone(),
                    dt_gruen: r.dt_gruen.clone(),
                    dt_backup: r.dt_backup.clone(),
                    payment_id: r.payment_id as i64,
                    tracking_id: r.tracking_id,
                    impression_count: r.impression_count,
                    banner_impression_count: r.banner_impression_count,
                    payment: p.map(|p| SourcePayment {
                        id: p.id as i64,
                        amount: Some(p.amount.to_string()),
                        interval: Some(p.interval),
                        method: p.method.clone(),
                        iban: p.iban.clone(),
                        bic: p.bic.clone(),
                        is_cancelled: Some(p.cancelled),
                        reference_code: p.code.clone(),
                        valuation_date: p.valuation.clone(),
                        transaction_id: p.transaction.clone(),
                        booking_data: p.booking.clone(),
                        parent_payment_id: p.parent,
                    }),
                    tracking: r
                        .tracking_id
                        .map(|i| TRACKING[i as usize - 1])
                        .map(|(c, k)| (c.to_owned(), k.to_owned())),
                    reasons: t
                        .reasons
                        .iter()
                        .filter(|(d, _)| *d == r.id)
                        .map(|(_, m)| {
                            let (i, s) = REASONS[*m as usize - 1];
                            (i.to_owned(), s.to_owned())
                        })
                        .collect(),
                }
            })
            .collect()
    }

    #[test]
    fn every_scenario_gets_the_note_and_letter_it_promises() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut t = Tables::default();
        for (n, scenario) in Scenario::ALL.iter().enumerate() {
            build(&mut t, n as u64 + 1, n as u64 + 100, *scenario, &mut rng);
        }
        for (row, scenario) in as_source(&t).iter().zip(Scenario::ALL) {
            let got = interpret(row);
            match scenario.expected_note() {
                Some((class, false)) => {
                    let note = got.expect_err(&scenario.name());
                    assert_eq!(note.class, class, "{scenario:?}");
                }
                expected => {
                    let i = got.unwrap_or_else(|n| panic!("{scenario:?}: {n:?}"));
                    let classes: Vec<&str> = i.notes.iter().map(|n| n.class.as_str()).collect();
                    let want: Vec<&str> = expected.map(|(c, _)| c).into_iter().collect();
                    assert_eq!(classes, want, "{scenario:?}");
                    if scenario != S::DeprecatedE {
                        assert!(
                            row.status.starts_with(i.derived_status),
                            "{scenario:?}: stored {} derived {}",
                            row.status,
                            i.derived_status
                        );
                    }
                }
            }
        }
    }

    /// The fixture's `request` rows as the source reader returns them, without a database.
    fn requests_as_source(t: &Tables) -> Vec<SourceRequest> {
        let some = |v: &str| Some(v.to_owned());
        t.requests
            .iter()
            .map(|r| {
                let p = t.payments.iter().find(|p| p.id == r.payment_id);
                SourceRequest {
                    id: r.id,
                    status: Some(r.status),
                    timestamp: some(&r.timestamp),
                    anrede: some(&r.anrede),
                    titel: some(&r.titel),
                    firma: some(&r.firma),
                    name: some(&r.name),
                    vorname: some(&r.vorname),
                    nachname: some(&r.nachname),
                    strasse: some(&r.strasse),
                    plz: some(&r.plz),
                    ort: some(&r.ort),
                    country: some(&r.country),
                    email: some(&r.email),
                    phone: some(&r.phone),
                    dob: r.dob.clone(),
                    membership_type: some(&r.membership_type),
                    membership_fee: Some(r.membership_fee),
                    membership_fee_interval: Some(r.interval),
                    old_bank: r.old_bank.clone().map(Some),
                    iban: some(&r.iban),
                    bic: some(&r.bic),
                    export: r.export.clone(),
                    backup: r.backup.clone(),
                    tracking: r.tracking.clone(),
                    data: r.data.clone(),
                    donation_receipt: r.donation_receipt,
                    payment_id: r.payment_id as i64,
                    is_scrubbed: r.is_scrubbed,
                    payment: p.map(|p| SourcePayment {
                        id: p.id as i64,
                        amount: Some(p.amount.to_string()),
                        interval: Some(p.interval),
                        method: p.method.clone(),
                        iban: p.iban.clone(),
                        bic: p.bic.clone(),
                        is_cancelled: Some(p.cancelled),
                        reference_code: p.code.clone(),
                        ..Default::default()
                    }),
                    reasons: t
                        .request_reasons
                        .iter()
                        .filter(|(m, _)| *m == r.id)
                        .map(|(_, x)| {
                            let (i, s) = MEMBERSHIP_REASONS[*x as usize - 1];
                            (i.to_owned(), s.to_owned())
                        })
                        .collect(),
                }
            })
            .collect()
    }

    #[test]
    fn every_membership_scenario_gets_the_note_and_status_it_promises() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut t = Tables::default();
        for (n, scenario) in MembershipScenario::ALL.iter().enumerate() {
            build_request(&mut t, n as u64 + 1, n as u64 + 100, *scenario, &mut rng);
        }
        for (row, scenario) in requests_as_source(&t).iter().zip(MembershipScenario::ALL) {
            let got = interpret_request(row);
            match scenario.expected_note() {
                Some((class, false)) => {
                    let note = got.expect_err(&format!("{scenario:?}"));
                    assert_eq!(note.class, class, "{scenario:?}");
                }
                expected => {
                    let i = got.unwrap_or_else(|n| panic!("{scenario:?}: {n:?}"));
                    let classes: Vec<&str> = i.notes.iter().map(|n| n.class.as_str()).collect();
                    let want: Vec<&str> = expected.map(|(c, _)| c).into_iter().collect();
                    assert_eq!(classes, want, "{scenario:?}");
                    assert_eq!(
                        i64::from(i.derived_status.code()),
                        scenario.status(),
                        "{scenario:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn reference_codes_differ_per_id() {
        assert_ne!(reference_code(1), reference_code(2));
        assert_eq!(reference_code(1).len(), "XW-ABC-DEF-X".len());
    }
}
