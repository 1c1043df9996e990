//! `ledger import legacy --check`: the ledger's `legacy_spenden` view against the source, row
//! for row, by class: status letter, amount, interval, payment type, payment id, creation time,
//! export (flag and time), scrub flag, tracking (campaign and keyword through the tracking
//! table, impression counts), comment, newsletter and receipt flags, and, for rows not
//! scrubbed, name, city, email and payment reference code.
//!
//! The source is read in the same batches as the import and every row goes through the same
//! interpreter first: a row the import skips must be absent (and is counted apart, not as a
//! difference); for the others the expected values are the source's columns, normalised only
//! where the import documents a rule (the old `MBK` code is `MCP`; `E` shows the letter its
//! payment gives and counts as exported; a zero `dt_gruen` is not exported; NULL text is '').
//!
//! [`check_requests`] does the same for `request` against `legacy_request`: status code, fee
//! (whole euros), interval, payment type (the payment's method), payment id, membership type,
//! creation time, export (a zero `export` is not exported), scrub flag, tracking (split at the
//! first `/` as the import reads it), receipt answer, and, for rows not scrubbed, the applicant
//! columns (salutation, title, company, names, address, email, phone, date of birth) and the
//! direct debit's IBAN and BIC (the payment's, else the row's own).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;

use super::interpret::{euro_cents, interpret};
use super::request::{interpret_request, split_tracking};
use super::source::{Source, SourceError, SourceRequest, SourceRow};
use crate::projection::rows::{ColType, Value};
use crate::projection::ProjectionError;
use crate::projection::ReadModel;

/// The columns the check reads: the view's, and the tracking pair its `tracking_id` names.
const COLUMNS: &[(&str, ColType)] = &[
    ("l.id", ColType::I64),
    ("l.status", ColType::Text),
    ("l.name", ColType::Text),
    ("l.ort", ColType::Text),
    ("l.email", ColType::Text),
    ("l.info", ColType::I64),
    ("l.bescheinigung", ColType::I64),
    ("l.eintrag", ColType::Text),
    ("l.betrag", ColType::Text),
    ("l.periode", ColType::I64),
    ("l.zahlweise", ColType::Text),
    ("l.kommentar", ColType::Text),
    ("l.ueb_code", ColType::Text),
    ("l.is_public", ColType::I64),
    ("l.is_scrubbed", ColType::Bool),
    ("l.dt_new", ColType::Text),
    ("l.dt_gruen", ColType::Text),
    ("l.payment_id", ColType::I64),
    ("l.impression_count", ColType::I64),
    ("l.banner_impression_count", ColType::I64),
    ("t.campaign", ColType::Text),
    ("t.keyword", ColType::Text),
];

/// The columns of `legacy_request` the check reads.
const REQUEST_COLUMNS: &[(&str, ColType)] = &[
    ("l.id", ColType::I64),
    ("l.status", ColType::I64),
    ("l.timestamp", ColType::Text),
    ("l.anrede", ColType::Text),
    ("l.titel", ColType::Text),
    ("l.firma", ColType::Text),
    ("l.vorname", ColType::Text),
    ("l.nachname", ColType::Text),
    ("l.strasse", ColType::Text),
    ("l.plz", ColType::Text),
    ("l.ort", ColType::Text),
    ("l.country", ColType::Text),
    ("l.email", ColType::Text),
    ("l.phone", ColType::Text),
    ("l.dob", ColType::Text),
    ("l.membership_type", ColType::Text),
    ("l.payment_type", ColType::Text),
    ("l.membership_fee", ColType::I64),
    ("l.membership_fee_interval", ColType::I64),
    ("l.iban", ColType::Text),
    ("l.bic", ColType::Text),
    ("l.export", ColType::Text),
    ("l.tracking", ColType::Text),
    ("l.donation_receipt", ColType::I64),
    ("l.payment_id", ColType::I64),
    ("l.is_scrubbed", ColType::Bool),
];

/// Errors of the check.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The read model failed.
    #[error("read model: {0}")]
    ReadModel(#[from] ProjectionError),
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// The table compared (`spenden` or `request`).
    pub table: String,
    /// Source rows compared.
    pub rows: u64,
    /// Rows the import skips (not expected in the ledger), by class.
    pub skipped: BTreeMap<String, u64>,
    /// Differences by class, with up to five example ids and values each.
    pub differences: BTreeMap<String, (u64, Vec<String>)>,
}

impl CheckReport {
    /// The number of differences.
    pub fn difference_count(&self) -> u64 {
        self.differences.values().map(|(n, _)| n).sum()
    }

    fn differ(&mut self, class: &str, id: u64, expected: &str, found: &str) {
        let entry = self.differences.entry(class.to_owned()).or_default();
        entry.0 += 1;
        if entry.1.len() < 5 {
            entry
                .1
                .push(format!("{id}: source {expected:?}, ledger {found:?}"));
        }
    }

    /// The summary printed by `--check`.
    pub fn summary(&self) -> String {
        let table = if self.table == "request" {
            " (memberships, `request` against `legacy_request`)"
        } else {
            ""
        };
        let mut s = format!(
            "legacy check{table}: {} source rows, {} differences\n",
            self.rows,
            self.difference_count()
        );
        for (class, (n, examples)) in &self.differences {
            s.push_str(&format!("  {class}: {n} (e.g. {})\n", examples.join("; ")));
        }
        if !self.skipped.is_empty() {
            s.push_str("not expected in the ledger (skipped by the import, see its report):\n");
            for (class, n) in &self.skipped {
                s.push_str(&format!("  {class}: {n}\n"));
            }
        }
        s
    }
}

/// A time as whole seconds, from the source's or a view's rendering.
fn seconds(v: &str) -> Option<i64> {
    let v = v.trim().replace('T', " ");
    let v = v.trim_end_matches('Z');
    NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(Some(t)) => t.clone(),
        Value::I64(Some(i)) => i.to_string(),
        Value::Bool(Some(b)) => i64::from(*b).to_string(),
        _ => String::new(),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::I64(Some(i)) => *i,
        Value::Bool(Some(b)) => i64::from(*b),
        Value::Text(Some(t)) => t.trim().parse().unwrap_or(-1),
        _ => 0,
    }
}

/// Compares the view with the source, batch by batch.
pub async fn check(
    source: &Source,
    read_model: &ReadModel,
    batch: usize,
) -> Result<CheckReport, CheckError> {
    let flavor = read_model.backend.flavor();
    let columns: Vec<String> = COLUMNS.iter().map(|(c, t)| flavor.typed(c, *t)).collect();
    let sql = format!(
        "SELECT {} FROM legacy_spenden AS l LEFT JOIN donation_tracking AS t \
         ON t.id = l.tracking_id WHERE l.id >= {} AND l.id <= {} ORDER BY l.id",
        columns.join(", "),
        flavor.param(1),
        flavor.param(2)
    );
    let mut report = CheckReport {
        table: "spenden".into(),
        ..CheckReport::default()
    };
    let mut after = 0u64;
    loop {
        let rows = source.batch(after, batch.max(1)).await?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            break;
        };
        after = last.id;
        let bounds = [
            Value::int(i64::try_from(first.id).unwrap_or(i64::MAX)),
            Value::int(i64::try_from(last.id).unwrap_or(i64::MAX)),
        ];
        let found = read_model.backend.fetch(&sql, &bounds, COLUMNS).await?;
        let found: HashMap<u64, Vec<Value>> = found
            .into_iter()
            .map(|r| (int(&r[0]).unsigned_abs(), r))
            .collect();
        for row in &rows {
            report.rows += 1;
            compare(&mut report, row, found.get(&row.id));
        }
    }
    Ok(report)
}

fn compare(report: &mut CheckReport, row: &SourceRow, found: Option<&Vec<Value>>) {
    let id = row.id;
    let interpreted = match interpret(row) {
        Ok(i) => i,
        Err(note) => {
            *report.skipped.entry(note.class).or_default() += 1;
            if found.is_some() {
                report.differ("skipped_row_in_ledger", id, "absent", "present");
            }
            return;
        }
    };
    let Some(v) = found else {
        report.differ("missing_in_ledger", id, "a row", "none");
        return;
    };
    let status = row.status.trim();
    let expected_status = if status == "E" {
        interpreted.derived_status.to_string()
    } else {
        status.to_owned()
    };
    let mut diff = |class: &str, expected: String, got: String| {
        if expected != got {
            report.differ(class, id, &expected, &got);
        }
    };
    diff("status", expected_status, text(&v[1]));
    let cents = |s: &str| euro_cents(s).map_or_else(|| s.to_owned(), |c| c.to_string());
    diff(
        "amount",
        cents(row.betrag.as_deref().unwrap_or_default()),
        cents(&text(&v[8])),
    );
    diff("interval", row.periode.to_string(), int(&v[9]).to_string());
    let method = match row.zahlweise.trim() {
        "MBK" => "MCP",
        m => m,
    };
    diff("payment_type", method.to_owned(), text(&v[10]));
    diff(
        "payment_id",
        row.payment_id.to_string(),
        int(&v[17]).to_string(),
    );
    diff(
        "created",
        format!("{:?}", row.dt_new.as_deref().and_then(seconds)),
        format!("{:?}", seconds(&text(&v[15]))),
    );
    let exported_at = interpreted
        .events
        .iter()
        .find_map(|e| match &e.event.event {
            crate::domain::DomainEvent::DonationExported(x) => x.exported_at.map(|t| t.seconds),
            _ => None,
        });
    let source_export = match row.dt_gruen.as_deref().and_then(seconds) {
        Some(t) if t > 0 => Some(t),
        _ if status == "E" => exported_at,
        _ => None,
    };
    diff(
        "export",
        format!("{source_export:?}"),
        format!("{:?}", seconds(&text(&v[16]))),
    );
    let scrubbed = row.is_scrubbed != 0;
    diff(
        "scrub",
        scrubbed.to_string(),
        (int(&v[14]) != 0).to_string(),
    );
    let pair = row.tracking.clone().unwrap_or_else(|| {
        interpreted
            .events
            .first()
            .and_then(|e| match &e.event.event {
                crate::domain::DomainEvent::DonationCreated(c) => c.tracking.as_ref(),
                _ => None,
            })
            .map(|t| (t.campaign.clone(), t.keyword.clone()))
            .unwrap_or_default()
    });
    diff(
        "tracking",
        format!("{}/{}", pair.0.to_lowercase(), pair.1.to_lowercase()),
        format!("{}/{}", text(&v[20]), text(&v[21])),
    );
    diff(
        "impressions",
        format!("{}/{}", row.impression_count, row.banner_impression_count),
        format!("{}/{}", int(&v[18]), int(&v[19])),
    );
    let public = row.is_public != 0 && !row.kommentar.trim().is_empty();
    diff(
        "comment",
        format!(
            "{public}|{}|{}",
            if row.kommentar.trim().is_empty() {
                ""
            } else {
                row.eintrag.trim()
            },
            row.kommentar
        ),
        format!("{}|{}|{}", int(&v[13]) != 0, text(&v[7]), text(&v[11])),
    );
    diff(
        "flags",
        format!("{}/{}", row.info != 0, row.bescheinigung == Some(1)),
        format!("{}/{}", int(&v[5]) != 0, int(&v[6]) != 0),
    );
    if !scrubbed {
        let t = |o: &Option<String>| o.as_deref().unwrap_or_default().trim().to_owned();
        diff(
            "donor",
            format!("{}|{}|{}", t(&row.name), t(&row.ort), t(&row.email)),
            format!("{}|{}|{}", text(&v[2]), text(&v[3]), text(&v[4])),
        );
        diff(
            "payment_reference",
            row.ueb_code.trim().to_owned(),
            text(&v[12]),
        );
    }
}

/// Compares the `legacy_request` view with the source's `request` rows, batch by batch.
pub async fn check_requests(
    source: &Source,
    read_model: &ReadModel,
    batch: usize,
) -> Result<CheckReport, CheckError> {
    let flavor = read_model.backend.flavor();
    let columns: Vec<String> = REQUEST_COLUMNS
        .iter()
        .map(|(c, t)| flavor.typed(c, *t))
        .collect();
    let sql = format!(
        "SELECT {} FROM legacy_request AS l WHERE l.id >= {} AND l.id <= {} ORDER BY l.id",
        columns.join(", "),
        flavor.param(1),
        flavor.param(2)
    );
    let mut report = CheckReport {
        table: "request".into(),
        ..CheckReport::default()
    };
    let mut after = 0u64;
    loop {
        let rows = source.request_batch(after, batch.max(1)).await?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            break;
        };
        after = last.id;
        let bounds = [
            Value::int(i64::try_from(first.id).unwrap_or(i64::MAX)),
            Value::int(i64::try_from(last.id).unwrap_or(i64::MAX)),
        ];
        let found = read_model
            .backend
            .fetch(&sql, &bounds, REQUEST_COLUMNS)
            .await?;
        let found: HashMap<u64, Vec<Value>> = found
            .into_iter()
            .map(|r| (int(&r[0]).unsigned_abs(), r))
            .collect();
        for row in &rows {
            report.rows += 1;
            compare_request(&mut report, row, found.get(&row.id));
        }
    }
    Ok(report)
}

fn compare_request(report: &mut CheckReport, row: &SourceRequest, found: Option<&Vec<Value>>) {
    let id = row.id;
    if let Err(note) = interpret_request(row) {
        *report.skipped.entry(note.class).or_default() += 1;
        if found.is_some() {
            report.differ("skipped_row_in_ledger", id, "absent", "present");
        }
        return;
    }
    let Some(v) = found else {
        report.differ("missing_in_ledger", id, "a row", "none");
        return;
    };
    let mut diff = |class: &str, expected: String, got: String| {
        if expected != got {
            report.differ(class, id, &expected, &got);
        }
    };
    let t = |o: &Option<String>| o.as_deref().unwrap_or_default().trim().to_owned();
    let opt = |o: Option<i64>| o.map_or_else(String::new, |v| v.to_string());
    diff("status", opt(row.status), int(&v[1]).to_string());
    diff("fee", opt(row.membership_fee), int(&v[17]).to_string());
    diff(
        "interval",
        opt(row.membership_fee_interval),
        int(&v[18]).to_string(),
    );
    let method = row
        .payment
        .as_ref()
        .map(|p| p.method.trim().to_owned())
        .unwrap_or_default();
    diff("payment_type", method, text(&v[16]));
    diff(
        "payment_id",
        row.payment_id.to_string(),
        int(&v[24]).to_string(),
    );
    diff("membership_type", t(&row.membership_type), text(&v[15]));
    diff(
        "created",
        format!("{:?}", row.timestamp.as_deref().and_then(seconds)),
        format!("{:?}", seconds(&text(&v[2]))),
    );
    let export = row.export.as_deref().and_then(seconds).filter(|t| *t > 0);
    diff(
        "export",
        format!("{export:?}"),
        format!("{:?}", seconds(&text(&v[21]))),
    );
    let scrubbed = row.is_scrubbed != 0;
    diff(
        "scrub",
        scrubbed.to_string(),
        (int(&v[25]) != 0).to_string(),
    );
    let (campaign, keyword) = split_tracking(&row.tracking);
    let tracking = if campaign.is_empty() && keyword.is_empty() {
        String::new()
    } else {
        format!("{campaign}/{keyword}")
    };
    diff("tracking", tracking, text(&v[22]));
    diff("receipt", opt(row.donation_receipt), text(&v[23]));
    if !scrubbed {
        let source = [
            &row.anrede,
            &row.titel,
            &row.firma,
            &row.vorname,
            &row.nachname,
            &row.strasse,
            &row.plz,
            &row.ort,
            &row.country,
            &row.email,
            &row.phone,
        ]
        .map(t)
        .join("|");
        // A dob that is no date (a zero date) is imported without one (noted).
        let dob = Some(t(&row.dob))
            .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
            .unwrap_or_default();
        let source = format!("{source}|{dob}");
        let ledger = (3..=14).map(|i| text(&v[i])).collect::<Vec<_>>().join("|");
        diff("applicant", source, ledger);
        let p = row.payment.as_ref();
        let bank = |of: Option<&Option<String>>, own: &Option<String>| {
            of.map(t)
                .filter(|x| !x.is_empty())
                .unwrap_or_else(|| t(own))
        };
        let (iban, bic) = if method_is(row, "BEZ") {
            (
                bank(p.map(|p| &p.iban), &row.iban),
                bank(p.map(|p| &p.bic), &row.bic),
            )
        } else {
            (String::new(), String::new())
        };
        diff(
            "bank",
            format!("{iban}|{bic}"),
            format!("{}|{}", text(&v[19]), text(&v[20])),
        );
    }
}

/// Whether the row's payment is of `method`.
fn method_is(row: &SourceRequest, method: &str) -> bool {
    row.payment
        .as_ref()
        .is_some_and(|p| p.method.trim() == method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_compare_by_the_second_whatever_the_rendering() {
        assert_eq!(
            seconds("2024-10-01 12:00:00"),
            seconds("2024-10-01T12:00:00Z")
        );
        assert_eq!(
            seconds("2024-10-01 12:00:00.000000"),
            seconds("2024-10-01 12:00:00")
        );
        assert_eq!(seconds("0000-00-00 00:00:00"), None);
    }
}
