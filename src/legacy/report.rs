//! The import's report: every source row it skipped (it could not interpret it) or imported by
//! a rule worth knowing, with a stable class and the reason; a summary by class; a CSV file.
//!
//! The notes travel in the log (each batch's `LegacyImportBatchImported` event holds its own),
//! so the report of an import interrupted and run again lists every row exactly once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::proto::events as ev;

/// The classes of notes. Skipped rows are not in the ledger; the others are, by the rule the
/// class names.
pub mod class {
    /// Skipped: `data` is not base64 of a serialized PHP array.
    pub const BROKEN_BLOB: &str = "broken_blob";
    /// Skipped: a status letter other than N, Z, X, B, P, D, E (`spenden`); a status other
    /// than 1, 0, −1, −2, −3 (`request`).
    pub const UNKNOWN_STATUS: &str = "unknown_status";
    /// Skipped: `betrag` (or `payment.amount`) is not an amount.
    pub const BAD_AMOUNT: &str = "bad_amount";
    /// Skipped: `betrag` and `payment.amount` disagree.
    pub const AMOUNT_MISMATCH: &str = "amount_mismatch";
    /// Skipped: the interval is not 0, 1, 3, 6 or 12, or `periode` disagrees with the payment.
    pub const BAD_INTERVAL: &str = "bad_interval";
    /// Skipped: `payment_id` names no payment.
    pub const MISSING_PAYMENT: &str = "missing_payment";
    /// Skipped: a payment type the ledger does not know (e.g. `FCH`).
    pub const UNKNOWN_PAYMENT_TYPE: &str = "unknown_payment_type";
    /// Skipped: `zahlweise` and `payment.payment_method` disagree.
    pub const PAYMENT_TYPE_MISMATCH: &str = "payment_type_mismatch";
    /// Skipped: `dt_new` (or another date the events need) is not a date.
    pub const BAD_DATE: &str = "bad_date";
    /// Skipped: `booking_data` is not a JSON object.
    pub const BROKEN_BOOKING_DATA: &str = "broken_booking_data";
    /// Skipped: a moderation identifier the ledger does not know.
    pub const UNKNOWN_MODERATION_REASON: &str = "unknown_moderation_reason";
    /// Skipped: an `adresstyp` the ledger does not know.
    pub const UNKNOWN_ADDRESS_TYPE: &str = "unknown_address_type";
    /// Skipped: a value no read model could hold (the admission rule).
    pub const INADMISSIBLE: &str = "inadmissible";
    /// Skipped: the ledger already holds another history for the donation or its payment.
    pub const ALREADY_IN_LEDGER: &str = "already_in_ledger";
    /// Skipped (table `payment`): a payment no donation refers to.
    pub const PAYMENT_WITHOUT_DONATION: &str = "payment_without_donation";
    /// Imported: `MBK`, the old credit-card code, as `MCP`.
    pub const MBK_CREDIT_CARD: &str = "mbk_credit_card";
    /// Imported: the deprecated letter `E` as exported.
    pub const DEPRECATED_STATUS_E: &str = "deprecated_status_e";
    /// Imported: `P` without moderation reasons, as manually flagged.
    pub const MODERATED_WITHOUT_REASONS: &str = "moderated_without_reasons";
    /// Imported: no `adresstyp` in the blob; the kind inferred from the data present.
    pub const DONOR_KIND_INFERRED: &str = "donor_kind_inferred";
    /// Imported: a zero or invalid `dt_gruen`, as not exported.
    pub const ZERO_EXPORT_DATE: &str = "zero_export_date";
    /// Imported: the stored letter is not the one the row's data give.
    pub const STATUS_DISAGREES: &str = "status_disagrees";
    /// Imported: personal data left in a scrubbed row, dropped.
    pub const PERSONAL_DATA_AFTER_SCRUB: &str = "personal_data_after_scrub";

    // The classes of `request` rows (membership applications) beside the shared ones above
    // (`broken_blob`, `bad_date`, `missing_payment`, `unknown_payment_type`,
    // `unknown_status`, `unknown_moderation_reason`, `moderated_without_reasons` for status −2 or −3,
    // `inadmissible`, `already_in_ledger`, `zero_export_date`, `personal_data_after_scrub`).

    /// Skipped: `membership_fee` (whole euros) is not the payment's amount in euros.
    pub const FEE_MISMATCH: &str = "fee_mismatch";
    /// Skipped: the fee interval is not 1, 3, 6 or 12, or the request and its payment disagree.
    pub const BAD_FEE_INTERVAL: &str = "bad_fee_interval";
    /// Skipped: a membership type other than `active` or `sustaining`.
    pub const UNKNOWN_MEMBERSHIP_TYPE: &str = "unknown_membership_type";
    /// Skipped: moderation reasons in the join table, yet the status says not moderated (an
    /// approval clears them).
    pub const MODERATION_DISAGREES: &str = "moderation_disagrees";
    /// Imported: status 1 or 0 disagrees with whether the payment is complete; the status wins.
    pub const CONFIRMATION_FROM_STATUS: &str = "confirmation_from_status";
    /// Imported: `account_number`, `bank_code` or `bank_name` (pre-IBAN bank data) set; the
    /// ledger holds IBAN and BIC only, so they are dropped.
    pub const OLD_BANK_ACCOUNT_DROPPED: &str = "old_bank_account_dropped";
    /// Imported: `dob` is not a date; imported without a date of birth.
    pub const BAD_DATE_OF_BIRTH: &str = "bad_date_of_birth";
}

/// The longest detail kept (the notes of a batch share one event).
const MAX_DETAIL: usize = 200;

/// A row the import skipped, or imported by a rule worth knowing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    /// `spenden`, `request` or `payment`.
    pub table: String,
    /// The row's id.
    pub id: u64,
    /// Its class (see [`class`]).
    pub class: String,
    /// Whether the row is in the ledger.
    pub imported: bool,
    /// The reason, with the values concerned.
    pub detail: String,
}

fn cut(detail: String) -> String {
    if detail.len() <= MAX_DETAIL {
        return detail;
    }
    let mut end = MAX_DETAIL;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &detail[..end])
}

impl Note {
    /// `spenden` row `id` was skipped.
    pub fn skipped(id: u64, class: &str, detail: impl Into<String>) -> Self {
        Self {
            table: "spenden".into(),
            id,
            class: class.into(),
            imported: false,
            detail: cut(detail.into()),
        }
    }

    /// `spenden` row `id` was imported by the rule `class` names.
    pub fn imported(id: u64, class: &str, detail: impl Into<String>) -> Self {
        Self {
            imported: true,
            ..Self::skipped(id, class, detail)
        }
    }

    /// `request` row `id` (a membership application) was skipped (`imported` false) or
    /// imported by the rule `class` names.
    pub fn request(id: u64, class: &str, imported: bool, detail: impl Into<String>) -> Self {
        Self {
            table: "request".into(),
            imported,
            ..Self::skipped(id, class, detail)
        }
    }

    /// A payment row that was skipped.
    pub fn payment(id: u64, class: &str, detail: impl Into<String>) -> Self {
        Self {
            table: "payment".into(),
            ..Self::skipped(id, class, detail)
        }
    }

    /// To the message the log holds.
    pub fn to_proto(&self) -> ev::LegacyImportNote {
        ev::LegacyImportNote {
            table: self.table.clone(),
            id: self.id,
            class: self.class.clone(),
            imported: self.imported,
            detail: self.detail.clone(),
        }
    }

    /// From the message the log holds.
    pub fn from_proto(n: &ev::LegacyImportNote) -> Self {
        Self {
            table: n.table.clone(),
            id: n.id,
            class: n.class.clone(),
            imported: n.imported,
            detail: n.detail.clone(),
        }
    }
}

/// Everything an import did, gathered from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Source rows read.
    pub rows: u64,
    /// Donations imported.
    pub donations: u64,
    /// Events appended.
    pub events: u64,
    /// The last source id done.
    pub last_id: u64,
    /// Every note, ordered by table, id and class.
    pub notes: Vec<Note>,
    /// Rows of `request` (membership applications) in the source.
    pub membership_rows: u64,
    /// `request` rows read.
    pub request_rows: u64,
    /// Membership applications imported.
    pub memberships: u64,
    /// Events appended for them.
    pub membership_events: u64,
}

impl Report {
    /// Notes of skipped rows.
    pub fn skipped(&self) -> impl Iterator<Item = &Note> {
        self.notes.iter().filter(|n| !n.imported)
    }

    /// (class, whether imported) → count.
    pub fn by_class(&self) -> BTreeMap<(bool, String), u64> {
        let mut out = BTreeMap::new();
        for n in &self.notes {
            *out.entry((n.imported, n.class.clone())).or_default() += 1;
        }
        out
    }

    /// The summary printed at the end of an import.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "legacy import: {} rows read, {} donations imported ({} events), {} rows skipped\n",
            self.rows,
            self.donations,
            self.events,
            self.skipped().filter(|n| n.table != "request").count()
        );
        let classes = self.by_class();
        for imported in [false, true] {
            let heading = if imported {
                "imported by a rule (noted):"
            } else {
                "skipped (not in the ledger):"
            };
            let mine: Vec<_> = classes
                .iter()
                .filter(|((i, _), _)| *i == imported)
                .collect();
            if mine.is_empty() {
                continue;
            }
            s.push_str(heading);
            s.push('\n');
            for ((_, class), n) in mine {
                let examples: Vec<String> = self
                    .notes
                    .iter()
                    .filter(|x| x.imported == imported && &x.class == class)
                    .take(5)
                    .map(|x| format!("{} {}", x.table, x.id))
                    .collect();
                s.push_str(&format!("  {class}: {n} (e.g. {})\n", examples.join(", ")));
            }
        }
        if self.membership_rows > 0 || self.request_rows > 0 {
            let skipped = self.skipped().filter(|n| n.table == "request").count();
            s.push_str(&format!(
                "memberships: {} of {} `request` rows read, {} applications imported ({} events), \
                 {skipped} rows skipped\n",
                self.request_rows, self.membership_rows, self.memberships, self.membership_events
            ));
        }
        s
    }

    /// Writes every note to `path` as CSV: `table,id,class,outcome,detail`.
    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        let file = std::fs::File::create(path)?;
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
        w.write_record(["table", "id", "class", "outcome", "detail"])?;
        for n in &self.notes {
            let outcome = if n.imported { "imported" } else { "skipped" };
            w.write_record([
                n.table.as_str(),
                &n.id.to_string(),
                &n.class,
                outcome,
                &n.detail,
            ])?;
        }
        w.flush()?;
        w.into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_by_class_and_names_examples() {
        let report = Report {
            rows: 3,
            donations: 2,
            events: 5,
            notes: vec![
                Note::skipped(5, class::BROKEN_BLOB, "not base64"),
                Note::imported(6, class::MBK_CREDIT_CARD, "MBK"),
                Note::payment(9, class::PAYMENT_WITHOUT_DONATION, "PPL"),
            ],
            ..Default::default()
        };
        let s = report.summary();
        assert!(s.contains("2 rows skipped"), "{s}");
        assert!(s.contains("broken_blob: 1 (e.g. spenden 5)"), "{s}");
        assert!(
            s.contains("payment_without_donation: 1 (e.g. payment 9)"),
            "{s}"
        );
        assert!(s.contains("mbk_credit_card: 1 (e.g. spenden 6)"), "{s}");
    }

    #[test]
    fn a_long_detail_is_cut_on_a_character_boundary() {
        let n = Note::skipped(1, class::BAD_AMOUNT, "ü".repeat(300));
        assert!(n.detail.len() <= MAX_DETAIL + "…".len());
    }
}
