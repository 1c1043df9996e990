//! Reading the legacy tables from MariaDB: `spenden` in batches by keyset pagination on its id
//! (never `OFFSET`, whose cost grows with the offset), each row joined with its payment (and
//! the payment's method table) and its tracking pair, plus the batch's moderation reasons from
//! the join table; the payments no donation refers to; and `request` (membership
//! applications) in the same way, with its payment and its moderation reasons.
//!
//! Every value is read as text or a signed integer (`CAST`), so an odd value in the source (a
//! zero date, a letter where a number belongs) reaches the interpreter, which reports it,
//! instead of failing the whole batch in the driver.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::Row;

/// Errors reading the source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL is not a `mysql://` or `mariadb://` URL naming a database.
    #[error("invalid --from: {0}")]
    InvalidUrl(String),
    /// The database failed.
    #[error("legacy database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A payment row with its method table's columns (those of the other methods are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourcePayment {
    /// `payment.id`.
    pub id: i64,
    /// `payment.amount` in cents, as text (checked by the interpreter).
    pub amount: Option<String>,
    /// `payment.payment_interval`.
    pub interval: Option<i64>,
    /// `payment.payment_method` (`BEZ`, `UEB`, `MCP`, `PPL`, `SUB`, `FCH`).
    pub method: String,
    /// `payment_direct_debit.iban`.
    pub iban: Option<String>,
    /// `payment_direct_debit.bic`.
    pub bic: Option<String>,
    /// `payment_direct_debit.is_cancelled` or `payment_bank_transfer.is_cancelled`.
    pub is_cancelled: Option<i64>,
    /// `payment_bank_transfer.payment_reference_code` or `payment_sofort`'s.
    pub reference_code: Option<String>,
    /// `valuation_date` of a Sofort, credit-card or PayPal payment, as text.
    pub valuation_date: Option<String>,
    /// `transaction_id` of a Sofort or PayPal payment.
    pub transaction_id: Option<String>,
    /// `booking_data` (JSON) of a credit-card or PayPal payment.
    pub booking_data: Option<String>,
    /// `payment_paypal.parent_payment_id`.
    pub parent_payment_id: Option<i64>,
}

/// One `spenden` row with what it refers to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRow {
    /// `id`.
    pub id: u64,
    /// `status`, the legacy letter.
    pub status: String,
    /// `name`.
    pub name: Option<String>,
    /// `ort`.
    pub ort: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `info` (newsletter).
    pub info: i64,
    /// `bescheinigung` (receipt), nullable.
    pub bescheinigung: Option<i64>,
    /// `eintrag` (the comment's display name).
    pub eintrag: String,
    /// `betrag` (amount as a euro string).
    pub betrag: Option<String>,
    /// `periode` (interval in months).
    pub periode: i64,
    /// `zahlweise` (payment type code).
    pub zahlweise: String,
    /// `kommentar`.
    pub kommentar: String,
    /// `ueb_code`.
    pub ueb_code: String,
    /// `data`, the base64 blob.
    pub data: Option<String>,
    /// `is_public`.
    pub is_public: i64,
    /// `is_scrubbed`.
    pub is_scrubbed: i64,
    /// `dt_new` as text.
    pub dt_new: Option<String>,
    /// `dt_del` as text.
    pub dt_del: Option<String>,
    /// `dt_exp` as text.
    pub dt_exp: Option<String>,
    /// `dt_gruen` as text.
    pub dt_gruen: Option<String>,
    /// `dt_backup` as text.
    pub dt_backup: Option<String>,
    /// `payment_id`.
    pub payment_id: i64,
    /// `tracking_id`.
    pub tracking_id: Option<i64>,
    /// `impression_count`.
    pub impression_count: i64,
    /// `banner_impression_count`.
    pub banner_impression_count: i64,
    /// The payment, when `payment_id` names one.
    pub payment: Option<SourcePayment>,
    /// `donation_tracking` (campaign, keyword), when `tracking_id` names a row.
    pub tracking: Option<(String, String)>,
    /// `(moderation_identifier, source)` of every reason linked to the row.
    pub reasons: Vec<(String, String)>,
}

/// One `request` row (a membership application) with its payment and moderation reasons.
/// Text columns stay text; `None` is SQL NULL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRequest {
    /// `id`.
    pub id: u64,
    /// `status` (1, 0, −1, −2, −3; NULL possible).
    pub status: Option<i64>,
    /// `timestamp` (creation) as text.
    pub timestamp: Option<String>,
    /// `anrede` (salutation; `Firma` for companies).
    pub anrede: Option<String>,
    /// `titel`.
    pub titel: Option<String>,
    /// `firma` (company name).
    pub firma: Option<String>,
    /// `name` ("first last", not written by the ledger's import).
    pub name: Option<String>,
    /// `vorname`.
    pub vorname: Option<String>,
    /// `nachname`.
    pub nachname: Option<String>,
    /// `strasse`.
    pub strasse: Option<String>,
    /// `plz`.
    pub plz: Option<String>,
    /// `ort`.
    pub ort: Option<String>,
    /// `country`.
    pub country: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `phone`.
    pub phone: Option<String>,
    /// `dob` as text.
    pub dob: Option<String>,
    /// `membership_type` (`active`, `sustaining`).
    pub membership_type: Option<String>,
    /// `membership_fee` in whole euros.
    pub membership_fee: Option<i64>,
    /// `membership_fee_interval` in months.
    pub membership_fee_interval: Option<i64>,
    /// `account_number`, `bank_code`, `bank_name` (pre-IBAN bank data).
    pub old_bank: [Option<String>; 3],
    /// `iban` (mirrors the direct-debit payment's).
    pub iban: Option<String>,
    /// `bic`.
    pub bic: Option<String>,
    /// `export` as text.
    pub export: Option<String>,
    /// `backup` as text.
    pub backup: Option<String>,
    /// `tracking` (`campaign/keyword`).
    pub tracking: Option<String>,
    /// `data`, the base64 blob.
    pub data: Option<String>,
    /// `donation_receipt`, nullable.
    pub donation_receipt: Option<i64>,
    /// `payment_id`.
    pub payment_id: i64,
    /// `is_scrubbed`.
    pub is_scrubbed: i64,
    /// The payment, when `payment_id` names one.
    pub payment: Option<SourcePayment>,
    /// `(moderation_identifier, source)` of every reason linked to the row.
    pub reasons: Vec<(String, String)>,
}

/// A connection to the legacy database.
#[derive(Debug, Clone)]
pub struct Source {
    pool: MySqlPool,
    location: String,
}

/// The columns of a batch, in the order [`row_of`] reads them.
const BATCH_SQL: &str =
    "SELECT CAST(s.id AS SIGNED), CAST(s.status AS CHAR), s.name, s.ort, s.email, \
    CAST(s.info AS SIGNED), CAST(s.bescheinigung AS SIGNED), s.eintrag, s.betrag, \
    CAST(s.periode AS SIGNED), CAST(s.zahlweise AS CHAR), s.kommentar, s.ueb_code, s.data, \
    CAST(s.is_public AS SIGNED), CAST(s.is_scrubbed AS SIGNED), \
    CAST(s.dt_new AS CHAR), CAST(s.dt_del AS CHAR), CAST(s.dt_exp AS CHAR), \
    CAST(s.dt_gruen AS CHAR), CAST(s.dt_backup AS CHAR), \
    CAST(s.payment_id AS SIGNED), CAST(s.tracking_id AS SIGNED), \
    CAST(s.impression_count AS SIGNED), CAST(s.banner_impression_count AS SIGNED), \
    CAST(p.id AS SIGNED), CAST(p.amount AS CHAR), CAST(p.payment_interval AS SIGNED), \
    CAST(p.payment_method AS CHAR), \
    dd.iban, dd.bic, CAST(COALESCE(dd.is_cancelled, bt.is_cancelled) AS SIGNED), \
    COALESCE(bt.payment_reference_code, so.payment_reference_code), \
    CAST(COALESCE(so.valuation_date, cc.valuation_date, pp.valuation_date) AS CHAR), \
    COALESCE(so.transaction_id, pp.transaction_id), \
    CAST(COALESCE(cc.booking_data, pp.booking_data) AS CHAR), \
    CAST(pp.parent_payment_id AS SIGNED), \
    t.campaign, t.keyword \
    FROM spenden AS s \
    LEFT JOIN payment AS p ON p.id = s.payment_id \
    LEFT JOIN payment_direct_debit AS dd ON dd.id = p.id \
    LEFT JOIN payment_bank_transfer AS bt ON bt.id = p.id \
    LEFT JOIN payment_sofort AS so ON so.id = p.id \
    LEFT JOIN payment_credit_card AS cc ON cc.id = p.id \
    LEFT JOIN payment_paypal AS pp ON pp.id = p.id \
    LEFT JOIN donation_tracking AS t ON t.id = s.tracking_id \
    WHERE s.id > ? ORDER BY s.id LIMIT ?";

const REASONS_SQL: &str = "SELECT CAST(r.donation_id AS SIGNED), \
    CAST(m.moderation_identifier AS CHAR), CAST(m.source AS CHAR) \
    FROM donations_moderation_reasons AS r \
    JOIN donation_moderation_reason AS m ON m.id = r.moderation_reason_id \
    WHERE r.donation_id >= ? AND r.donation_id <= ? ORDER BY r.donation_id, m.id";

/// The payment columns of a batch query, in the order [`payment_of`] reads them.
const PAYMENT_COLUMNS: &str = "CAST(p.id AS SIGNED), CAST(p.amount AS CHAR), \
    CAST(p.payment_interval AS SIGNED), CAST(p.payment_method AS CHAR), \
    dd.iban, dd.bic, CAST(COALESCE(dd.is_cancelled, bt.is_cancelled) AS SIGNED), \
    COALESCE(bt.payment_reference_code, so.payment_reference_code), \
    CAST(COALESCE(so.valuation_date, cc.valuation_date, pp.valuation_date) AS CHAR), \
    COALESCE(so.transaction_id, pp.transaction_id), \
    CAST(COALESCE(cc.booking_data, pp.booking_data) AS CHAR), \
    CAST(pp.parent_payment_id AS SIGNED)";

/// The joins of [`PAYMENT_COLUMNS`] on a payment id column (`s.payment_id`).
fn payment_joins(on: &str) -> String {
    format!(
        "LEFT JOIN payment AS p ON p.id = {on} \
         LEFT JOIN payment_direct_debit AS dd ON dd.id = p.id \
         LEFT JOIN payment_bank_transfer AS bt ON bt.id = p.id \
         LEFT JOIN payment_sofort AS so ON so.id = p.id \
         LEFT JOIN payment_credit_card AS cc ON cc.id = p.id \
         LEFT JOIN payment_paypal AS pp ON pp.id = p.id"
    )
}

/// The payment of a row whose [`PAYMENT_COLUMNS`] start at column `at`; `None` when its
/// payment id names no payment.
fn payment_of(r: &sqlx::mysql::MySqlRow, at: usize) -> Result<Option<SourcePayment>, sqlx::Error> {
    let text = |i: usize| r.try_get::<Option<String>, _>(at + i);
    let int = |i: usize| r.try_get::<Option<i64>, _>(at + i);
    let Some(id) = int(0)? else {
        return Ok(None);
    };
    Ok(Some(SourcePayment {
        id,
        amount: text(1)?,
        interval: int(2)?,
        method: text(3)?.unwrap_or_default(),
        iban: text(4)?,
        bic: text(5)?,
        is_cancelled: int(6)?,
        reference_code: text(7)?,
        valuation_date: text(8)?,
        transaction_id: text(9)?,
        booking_data: text(10)?,
        parent_payment_id: int(11)?,
    }))
}

fn row_of(r: &sqlx::mysql::MySqlRow) -> Result<SourceRow, sqlx::Error> {
    let text = |i: usize| r.try_get::<Option<String>, _>(i);
    let int = |i: usize| r.try_get::<Option<i64>, _>(i);
    let payment = payment_of(r, 25)?;
    let tracking = match (text(37)?, text(38)?) {
        (None, None) => None,
        (c, k) => Some((c.unwrap_or_default(), k.unwrap_or_default())),
    };
    Ok(SourceRow {
        id: r.try_get::<i64, _>(0)?.unsigned_abs(),
        status: text(1)?.unwrap_or_default(),
        name: text(2)?,
        ort: text(3)?,
        email: text(4)?,
        info: int(5)?.unwrap_or(0),
        bescheinigung: int(6)?,
        eintrag: text(7)?.unwrap_or_default(),
        betrag: text(8)?,
        periode: int(9)?.unwrap_or(0),
        zahlweise: text(10)?.unwrap_or_default(),
        kommentar: text(11)?.unwrap_or_default(),
        ueb_code: text(12)?.unwrap_or_default(),
        data: text(13)?,
        is_public: int(14)?.unwrap_or(0),
        is_scrubbed: int(15)?.unwrap_or(0),
        dt_new: text(16)?,
        dt_del: text(17)?,
        dt_exp: text(18)?,
        dt_gruen: text(19)?,
        dt_backup: text(20)?,
        payment_id: int(21)?.unwrap_or(0),
        tracking_id: int(22)?,
        impression_count: int(23)?.unwrap_or(0),
        banner_impression_count: int(24)?.unwrap_or(0),
        payment,
        tracking,
        reasons: Vec::new(),
    })
}

/// The columns of a `request` batch before the payment's, in the order [`request_of`] reads
/// them.
const REQUEST_COLUMNS: &str = "CAST(r.id AS SIGNED), CAST(r.status AS SIGNED), \
    CAST(r.timestamp AS CHAR), r.anrede, r.titel, r.firma, r.name, r.vorname, r.nachname, \
    r.strasse, r.plz, r.ort, r.country, r.email, r.phone, CAST(r.dob AS CHAR), \
    CAST(r.membership_type AS CHAR), CAST(r.membership_fee AS SIGNED), \
    CAST(r.membership_fee_interval AS SIGNED), r.account_number, r.bank_code, r.bank_name, \
    r.iban, r.bic, CAST(r.export AS CHAR), CAST(r.backup AS CHAR), r.tracking, r.data, \
    CAST(r.donation_receipt AS SIGNED), CAST(r.payment_id AS SIGNED), \
    CAST(r.is_scrubbed AS SIGNED)";

const REQUEST_REASONS_SQL: &str = "SELECT CAST(r.membership_id AS SIGNED), \
    CAST(m.moderation_identifier AS CHAR), CAST(m.source AS CHAR) \
    FROM memberships_moderation_reasons AS r \
    JOIN membership_moderation_reason AS m ON m.id = r.moderation_reason_id \
    WHERE r.membership_id >= ? AND r.membership_id <= ? ORDER BY r.membership_id, m.id";

fn request_of(r: &sqlx::mysql::MySqlRow) -> Result<SourceRequest, sqlx::Error> {
    let text = |i: usize| r.try_get::<Option<String>, _>(i);
    let int = |i: usize| r.try_get::<Option<i64>, _>(i);
    Ok(SourceRequest {
        id: r.try_get::<i64, _>(0)?.unsigned_abs(),
        status: int(1)?,
        timestamp: text(2)?,
        anrede: text(3)?,
        titel: text(4)?,
        firma: text(5)?,
        name: text(6)?,
        vorname: text(7)?,
        nachname: text(8)?,
        strasse: text(9)?,
        plz: text(10)?,
        ort: text(11)?,
        country: text(12)?,
        email: text(13)?,
        phone: text(14)?,
        dob: text(15)?,
        membership_type: text(16)?,
        membership_fee: int(17)?,
        membership_fee_interval: int(18)?,
        old_bank: [text(19)?, text(20)?, text(21)?],
        iban: text(22)?,
        bic: text(23)?,
        export: text(24)?,
        backup: text(25)?,
        tracking: text(26)?,
        data: text(27)?,
        donation_receipt: int(28)?,
        payment_id: int(29)?.unwrap_or(0),
        is_scrubbed: int(30)?.unwrap_or(0),
        payment: payment_of(r, 31)?,
        reasons: Vec::new(),
    })
}

/// Adds the `(identifier, source)` reasons of `rows` (`id, identifier, source`, ordered by id)
/// to the batch `out` (ordered by id), through `reasons_of`.
fn attach_reasons<T>(
    rows: &[sqlx::mysql::MySqlRow],
    out: &mut [T],
    id_of: impl Fn(&T) -> u64,
    reasons_of: impl Fn(&mut T) -> &mut Vec<(String, String)>,
) -> Result<(), sqlx::Error> {
    let mut i = 0;
    for r in rows {
        let id = r.try_get::<i64, _>(0)?.unsigned_abs();
        while i < out.len() && id_of(&out[i]) < id {
            i += 1;
        }
        if let Some(row) = out.get_mut(i).filter(|row| id_of(row) == id) {
            reasons_of(row).push((
                r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
            ));
        }
    }
    Ok(())
}

/// `mysql://` options of a `mysql://` or `mariadb://` URL that names a database.
pub fn options(url: &str) -> Result<MySqlConnectOptions, SourceError> {
    let driver = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None if url.starts_with("mysql://") => url.to_owned(),
        None => {
            return Err(SourceError::InvalidUrl(
                "must be a mysql:// or mariadb:// URL naming the legacy database".into(),
            ))
        }
    };
    let options = MySqlConnectOptions::from_str(&driver)
        .map_err(|e| SourceError::InvalidUrl(e.to_string()))?;
    if options.get_database().is_none_or(str::is_empty) {
        return Err(SourceError::InvalidUrl(
            "must name the legacy database (mysql://user@host:3306/fundraising)".into(),
        ));
    }
    Ok(options.charset("utf8mb4"))
}

/// `host:port/database` of a source: never a user name or password.
pub fn location(options: &MySqlConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

impl Source {
    /// Connects to the legacy database `url` names.
    pub async fn connect(url: &str) -> Result<Self, SourceError> {
        let options = options(url)?;
        let location = location(&options);
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool, location })
    }

    /// `host:port/database`.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The pool, for the fixture generator and tests.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// How many `spenden` rows have an id above `after`.
    pub async fn count_after(&self, after: u64) -> Result<u64, SourceError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spenden WHERE id > ?")
            .bind(after)
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unsigned_abs())
    }

    /// Up to `limit` rows with ids above `after`, in id order, with their payments, tracking
    /// pairs and moderation reasons.
    pub async fn batch(&self, after: u64, limit: usize) -> Result<Vec<SourceRow>, SourceError> {
        let rows = sqlx::query(BATCH_SQL)
            .bind(after)
            .bind(limit as u64)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows.iter().map(row_of).collect::<Result<Vec<_>, _>>()?;
        let (Some(first), Some(last)) = (out.first(), out.last()) else {
            return Ok(out);
        };
        let reasons = sqlx::query(REASONS_SQL)
            .bind(first.id)
            .bind(last.id)
            .fetch_all(&self.pool)
            .await?;
        attach_reasons(&reasons, &mut out, |r| r.id, |r| &mut r.reasons)?;
        Ok(out)
    }

    /// How many `request` rows have an id above `after` (0 without a `request` table).
    pub async fn request_count_after(&self, after: u64) -> Result<u64, SourceError> {
        if !self.has_table("request").await? {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM request WHERE id > ?")
            .bind(after)
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unsigned_abs())
    }

    /// Up to `limit` `request` rows with ids above `after`, in id order, with their payments
    /// and moderation reasons (none when the source has no `memberships_moderation_reasons`,
    /// which came in 2022-07).
    pub async fn request_batch(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SourceRequest>, SourceError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS}, {PAYMENT_COLUMNS} FROM request AS r {} \
             WHERE r.id > ? ORDER BY r.id LIMIT ?",
            payment_joins("r.payment_id")
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(limit as u64)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows.iter().map(request_of).collect::<Result<Vec<_>, _>>()?;
        let (Some(first), Some(last)) = (out.first(), out.last()) else {
            return Ok(out);
        };
        if !self.has_table("memberships_moderation_reasons").await? {
            return Ok(out);
        }
        let reasons = sqlx::query(REQUEST_REASONS_SQL)
            .bind(first.id)
            .bind(last.id)
            .fetch_all(&self.pool)
            .await?;
        attach_reasons(&reasons, &mut out, |r| r.id, |r| &mut r.reasons)?;
        Ok(out)
    }

    /// Up to `limit` payments with ids above `after` that no donation refers to (nor a
    /// membership application, when the source has a `request` table), with their methods.
    pub async fn orphan_payments(
        &self,
        after: i64,
        limit: usize,
        with_memberships: bool,
    ) -> Result<Vec<(i64, String)>, SourceError> {
        let memberships = if with_memberships {
            " AND NOT EXISTS (SELECT 1 FROM request AS r WHERE r.payment_id = p.id)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT CAST(p.id AS SIGNED), CAST(p.payment_method AS CHAR) FROM payment AS p \
             WHERE p.id > ? AND NOT EXISTS (SELECT 1 FROM spenden AS s WHERE s.payment_id = p.id)\
             {memberships} ORDER BY p.id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(limit as u64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)?,
                    r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(SourceError::from)
    }

    /// Whether the source has a table named `table`.
    pub async fn has_table(&self, table: &str) -> Result<bool, SourceError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        )
        .bind(table)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// The number of rows of `request` (membership applications).
    pub async fn membership_rows(&self) -> Result<u64, SourceError> {
        if !self.has_table("request").await? {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM request")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unsigned_abs())
    }
}
