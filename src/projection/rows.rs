//! Column values and table layouts shared by every SQL dialect, and the multi-row statement
//! helpers of the dialects that expand a one-row `VALUES` tuple (SQLite, MariaDB).
//!
//! The projector folds rows as plain structs; to load and write them it turns each row into a
//! `Vec<Value>` in the column order of the table layouts below, which is also the column order
//! of the statements in `projections/{sqlite,postgres,mariadb}/*.sql` (a unit test checks that).
//! The readers at the end ([`text`], [`flag`], …) take a loaded row's columns back apart.
//!
//! Over 600 lines, one concern: every table's layout in one place, so that the dump, the
//! swap, `verify` and the statement checks walk the same list.

use chrono::{DateTime, Utc};

/// The storage class of a column, as the projector binds and reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColType {
    /// An integer (ids, cents, counts), bound as `i64`.
    I64,
    /// Text (also exact decimals, which PostgreSQL stores as NUMERIC).
    Text,
    /// A boolean (INTEGER 0/1 in SQLite).
    Bool,
    /// A UTC timestamp (RFC 3339 text in SQLite, TIMESTAMPTZ in PostgreSQL).
    Time,
}

/// One column value; `None` is SQL NULL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    I64(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
}

impl Value {
    pub(crate) fn int(v: i64) -> Self {
        Self::I64(Some(v))
    }
    pub(crate) fn text(v: &str) -> Self {
        Self::Text(Some(v.to_owned()))
    }
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Self::I64(v) => *v,
            _ => None,
        }
    }
    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(v) => v.as_deref(),
            _ => None,
        }
    }
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(v) => *v,
            _ => None,
        }
    }
    pub(crate) fn as_time(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Time(v) => *v,
            _ => None,
        }
    }
    /// A dialect-neutral rendering, for table dumps.
    pub(crate) fn render(&self) -> String {
        match self {
            Self::I64(Some(v)) => v.to_string(),
            Self::Text(Some(v)) => v.clone(),
            Self::Bool(Some(v)) => v.to_string(),
            Self::Time(Some(v)) => v.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            _ => "NULL".to_owned(),
        }
    }
}

/// A table or view: its name, the key its dump is ordered by, and its columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) name: &'static str,
    pub(crate) order_by: &'static str,
    pub(crate) columns: &'static [(&'static str, ColType)],
}

pub(crate) const DONATION_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("created_at", ColType::Time),
    ("updated_at", ColType::Time),
    ("amount_cents", ColType::I64),
    ("currency", ColType::Text),
    ("interval_months", ColType::I64),
    ("payment_id", ColType::I64),
    ("payment_method", ColType::Text),
    ("payment_state", ColType::Text),
    ("payment_booked_at", ColType::Time),
    ("deletion_state", ColType::Text),
    ("moderation_state", ColType::Text),
    ("is_exported", ColType::Bool),
    ("exported_at", ColType::Time),
    ("export_batch", ColType::Text),
    ("is_scrubbed", ColType::Bool),
    ("scrubbed_at", ColType::Time),
    ("scrub_rule", ColType::Text),
    ("donor_kind", ColType::Text),
    ("salutation", ColType::Text),
    ("title", ColType::Text),
    ("first_name", ColType::Text),
    ("last_name", ColType::Text),
    ("company_name", ColType::Text),
    ("street", ColType::Text),
    ("postcode", ColType::Text),
    ("city", ColType::Text),
    ("country", ColType::Text),
    ("email", ColType::Text),
    ("wants_newsletter", ColType::Bool),
    ("wants_receipt", ColType::Bool),
    ("comment", ColType::Text),
    ("comment_is_public", ColType::Bool),
    ("comment_display_name", ColType::Text),
    ("tracking_id", ColType::I64),
    ("campaign", ColType::Text),
    ("keyword", ColType::Text),
    ("impression_count", ColType::I64),
    ("banner_impression_count", ColType::I64),
    ("contribution_tracking_id", ColType::I64),
    ("parent_donation_id", ColType::I64),
    ("approved_as_anonymous", ColType::Bool),
];
pub(crate) const PAYMENT_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("donation_id", ColType::I64),
    ("method", ColType::Text),
    ("amount_cents", ColType::I64),
    ("currency", ColType::Text),
    ("interval_months", ColType::I64),
    ("state", ColType::Text),
    ("state_before_cancellation", ColType::Text),
    ("valuation_date", ColType::Time),
    ("parent_payment_id", ColType::I64),
    ("refunded_cents", ColType::I64),
    ("charged_back_cents", ColType::I64),
    ("iban", ColType::Text),
    ("bic", ColType::Text),
    ("payment_reference_code", ColType::Text),
    ("transaction_id", ColType::Text),
    ("payer_id", ColType::Text),
    ("subscription_id", ColType::Text),
    ("payer_status", ColType::Text),
    ("provider_payment_status", ColType::Text),
    ("created_at", ColType::Time),
    ("updated_at", ColType::Time),
];
pub(crate) const CONTRIBUTION_TRACKING_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("contribution_id", ColType::I64),
    ("allocation_token", ColType::Text),
    ("amount", ColType::Text),
    ("currency", ColType::Text),
    ("usd_amount", ColType::Text),
    ("is_recurring", ColType::Bool),
    ("referrer", ColType::Text),
    ("utm_medium", ColType::Text),
    ("utm_campaign", ColType::Text),
    ("utm_key", ColType::Text),
    ("gateway", ColType::Text),
    ("appeal", ColType::Text),
    ("payments_form_variant", ColType::Text),
    ("banner", ColType::Text),
    ("landing_page", ColType::Text),
    ("payment_method_id", ColType::I64),
    ("payment_submethod_id", ColType::I64),
    ("language", ColType::Text),
    ("country", ColType::Text),
    ("tracking_date", ColType::Time),
    ("os", ColType::Text),
    ("os_version", ColType::Text),
    ("browser", ColType::Text),
    ("browser_version", ColType::Text),
    ("recurring_choice_id", ColType::I64),
    ("device_type_id", ColType::I64),
    ("banner_size_id", ColType::I64),
    ("is_test_variant", ColType::Bool),
    ("banner_variant", ColType::Text),
    ("is_pay_fee", ColType::Bool),
    ("mailing_identifier", ColType::Text),
    ("utm_source", ColType::Text),
    ("banner_history_log_id", ColType::Text),
    ("screen_width", ColType::I64),
    ("screen_height", ColType::I64),
    ("app_install_id", ColType::Text),
];
pub(crate) const DONATION_EVENT_COLUMNS: &[(&str, ColType)] = &[
    ("donation_id", ColType::I64),
    ("position", ColType::I64),
    ("stream", ColType::Text),
    ("event_type", ColType::Text),
    ("actor_kind", ColType::Text),
    ("actor_id", ColType::Text),
    ("occurred_at", ColType::Time),
];
pub(crate) const CONFLICT_COLUMNS: &[(&str, ColType)] = &[
    ("position", ColType::I64),
    ("contribution_tracking_id", ColType::I64),
    ("kind", ColType::Text),
    ("existing", ColType::Text),
    ("attempted", ColType::Text),
    ("at", ColType::Time),
];
pub(crate) const TRACKING_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("campaign", ColType::Text),
    ("keyword", ColType::Text),
];
pub(crate) const REASON_COLUMNS: &[(&str, ColType)] = &[
    ("donation_id", ColType::I64),
    ("moderation_identifier", ColType::Text),
    ("source", ColType::Text),
];
/// `membership_application`, one row per application (see `membership.rs`).
pub(crate) const MEMBERSHIP_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("created_at", ColType::Time),
    ("updated_at", ColType::Time),
    ("applicant_kind", ColType::Text),
    ("membership_type", ColType::Text),
    ("fee_cents", ColType::I64),
    ("interval_months", ColType::I64),
    ("yearly_fee_cents", ColType::I64),
    ("payment_id", ColType::I64),
    ("payment_method", ColType::Text),
    ("is_confirmed", ColType::Bool),
    ("moderation_state", ColType::Text),
    ("cancellation_state", ColType::Text),
    ("is_exported", ColType::Bool),
    ("exported_at", ColType::Time),
    ("export_batch", ColType::Text),
    ("is_scrubbed", ColType::Bool),
    ("scrubbed_at", ColType::Time),
    ("scrub_rule", ColType::Text),
    ("salutation", ColType::Text),
    ("title", ColType::Text),
    ("first_name", ColType::Text),
    ("last_name", ColType::Text),
    ("company_name", ColType::Text),
    ("street", ColType::Text),
    ("postcode", ColType::Text),
    ("city", ColType::Text),
    ("country", ColType::Text),
    ("email", ColType::Text),
    ("phone", ColType::Text),
    ("date_of_birth", ColType::Text),
    ("iban", ColType::Text),
    ("bic", ColType::Text),
    ("payment_reference_code", ColType::Text),
    ("campaign", ColType::Text),
    ("keyword", ColType::Text),
    ("incentives", ColType::Text),
    ("wants_receipt", ColType::Bool),
    ("receipt_answered", ColType::Bool),
];
pub(crate) const MEMBERSHIP_REASON_COLUMNS: &[(&str, ColType)] = &[
    ("membership_id", ColType::I64),
    ("moderation_identifier", ColType::Text),
    ("source", ColType::Text),
];
/// `address_change`, one row per address change (see `address_change.rs`).
pub(crate) const ADDRESS_CHANGE_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("created_at", ColType::Time),
    ("modified_at", ColType::Time),
    ("current_identifier", ColType::Text),
    ("previous_identifier", ColType::Text),
    ("external_id_kind", ColType::Text),
    ("external_id", ColType::I64),
    ("address_type", ColType::Text),
    ("has_address", ColType::Bool),
    ("salutation", ColType::Text),
    ("title", ColType::Text),
    ("first_name", ColType::Text),
    ("last_name", ColType::Text),
    ("company_name", ColType::Text),
    ("street", ColType::Text),
    ("postcode", ColType::Text),
    ("city", ColType::Text),
    ("country", ColType::Text),
    ("donation_receipt", ColType::Bool),
    ("export_state", ColType::Text),
    ("is_exported", ColType::Bool),
    ("exported_at", ColType::Time),
    ("export_batch", ColType::Text),
    ("is_scrubbed", ColType::Bool),
    ("scrubbed_at", ColType::Time),
    ("scrub_rule", ColType::Text),
];
/// `subscription`, one row per subscription (see `subscription.rs`); no address column.
pub(crate) const SUBSCRIPTION_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("created_at", ColType::Time),
    ("status", ColType::Text),
    ("confirmed_at", ColType::Time),
    ("tracking", ColType::Text),
    ("source", ColType::Text),
    ("is_exported", ColType::Bool),
    ("exported_at", ColType::Time),
    ("export_batch", ColType::Text),
    ("is_removed", ColType::Bool),
    ("removed_at", ColType::Time),
    ("removal_rule", ColType::Text),
];
/// `membership_event`, the membership applications' change log: the columns of
/// `donation_event` with `membership_id` for `donation_id`.
pub(crate) const MEMBERSHIP_EVENT_COLUMNS: &[(&str, ColType)] = &[
    ("membership_id", ColType::I64),
    ("position", ColType::I64),
    ("stream", ColType::Text),
    ("event_type", ColType::Text),
    ("actor_kind", ColType::Text),
    ("actor_id", ColType::Text),
    ("occurred_at", ColType::Time),
];
/// `address_change_event`, the address changes' change log: the columns of `donation_event`
/// with `address_change_id` for `donation_id`.
pub(crate) const ADDRESS_CHANGE_EVENT_COLUMNS: &[(&str, ColType)] = &[
    ("address_change_id", ColType::I64),
    ("position", ColType::I64),
    ("stream", ColType::Text),
    ("event_type", ColType::Text),
    ("actor_kind", ColType::Text),
    ("actor_id", ColType::Text),
    ("occurred_at", ColType::Time),
];
/// The `change_log` view: every context's change log in one, `context` naming whose
/// (`donation`, `membership`, `address_change`) and `subject_id` its id.
pub(crate) const CHANGE_LOG_COLUMNS: &[(&str, ColType)] = &[
    ("context", ColType::Text),
    ("subject_id", ColType::I64),
    ("position", ColType::I64),
    ("stream", ColType::Text),
    ("event_type", ColType::Text),
    ("actor_kind", ColType::Text),
    ("actor_id", ColType::Text),
    ("occurred_at", ColType::Time),
];
/// The `legacy_request` view (its `backup` column, always NULL, is not compared).
pub(crate) const LEGACY_REQUEST_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("status", ColType::I64),
    ("timestamp", ColType::Text),
    ("anrede", ColType::Text),
    ("titel", ColType::Text),
    ("firma", ColType::Text),
    ("name", ColType::Text),
    ("vorname", ColType::Text),
    ("nachname", ColType::Text),
    ("strasse", ColType::Text),
    ("plz", ColType::Text),
    ("ort", ColType::Text),
    ("country", ColType::Text),
    ("email", ColType::Text),
    ("phone", ColType::Text),
    ("dob", ColType::Text),
    ("membership_type", ColType::Text),
    ("payment_type", ColType::Text),
    ("membership_fee", ColType::I64),
    ("membership_fee_interval", ColType::I64),
    ("account_number", ColType::Text),
    ("bank_code", ColType::Text),
    ("bank_name", ColType::Text),
    ("iban", ColType::Text),
    ("bic", ColType::Text),
    ("export", ColType::Text),
    ("tracking", ColType::Text),
    ("donation_receipt", ColType::I64),
    ("payment_id", ColType::I64),
    ("is_scrubbed", ColType::Bool),
];
pub(crate) const PROJECTOR_CHECKPOINT_COLUMNS: &[(&str, ColType)] =
    &[("projector", ColType::Text), ("position", ColType::I64)];
pub(crate) const SKIPPED_EVENT_COLUMNS: &[(&str, ColType)] = &[
    ("projector", ColType::Text),
    ("position", ColType::I64),
    ("stream", ColType::Text),
    ("event_type", ColType::Text),
    ("reason", ColType::Text),
    ("skipped_by", ColType::Text),
    ("at", ColType::Time),
];
pub(crate) const LEGACY_SPENDEN_COLUMNS: &[(&str, ColType)] = &[
    ("id", ColType::I64),
    ("status", ColType::Text),
    ("name", ColType::Text),
    ("ort", ColType::Text),
    ("email", ColType::Text),
    ("info", ColType::I64),
    ("bescheinigung", ColType::I64),
    ("eintrag", ColType::Text),
    ("betrag", ColType::Text),
    ("periode", ColType::I64),
    ("zahlweise", ColType::Text),
    ("kommentar", ColType::Text),
    ("ueb_code", ColType::Text),
    ("adresstyp", ColType::Text),
    ("is_public", ColType::I64),
    ("is_scrubbed", ColType::Bool),
    ("dt_new", ColType::Text),
    ("dt_gruen", ColType::Text),
    ("payment_id", ColType::I64),
    ("tracking_id", ColType::I64),
    ("impression_count", ColType::I64),
    ("banner_impression_count", ColType::I64),
];

/// The columns of `civishare_outgoing`, in the order of its upsert (CiviShare's status
/// mirror writes them, not the projector; `verify` leaves them out).
pub(crate) const CIVISHARE_OUTGOING_COLUMNS: &[(&str, ColType)] = &[
    ("node", ColType::Text),
    ("seq", ColType::I64),
    ("peer", ColType::Text),
    ("log_position", ColType::I64),
    ("event_id", ColType::Text),
    ("change_type", ColType::Text),
    ("entity", ColType::Text),
    ("entity_reference", ColType::Text),
    ("status", ColType::Text),
    ("attempts", ColType::I64),
    ("last_error", ColType::Text),
    ("message_id", ColType::Text),
    ("peer_status", ColType::Text),
    ("peer_reason", ColType::Text),
    ("queued_at", ColType::Time),
    ("sent_at", ColType::Time),
    ("acknowledged_at", ColType::Time),
];

/// The columns of `civishare_incoming`, in the order of its upsert (CiviShare's status
/// mirror writes them, not the projector; `verify` leaves them out).
pub(crate) const CIVISHARE_INCOMING_COLUMNS: &[(&str, ColType)] = &[
    ("node", ColType::Text),
    ("seq", ColType::I64),
    ("sender", ColType::Text),
    ("message_id", ColType::Text),
    ("change_index", ColType::I64),
    ("change_type", ColType::Text),
    ("entity", ColType::Text),
    ("entity_reference", ColType::Text),
    ("status", ColType::Text),
    ("reason", ColType::Text),
    ("local_reference", ColType::Text),
    ("received_at", ColType::Time),
];

/// The columns of `civishare_status_checkpoint`, in the order of its upsert (CiviShare's status
/// mirror writes them, not the projector; `verify` leaves them out).
pub(crate) const CIVISHARE_STATUS_CHECKPOINT_COLUMNS: &[(&str, ColType)] = &[
    ("node", ColType::Text),
    ("revision", ColType::I64),
    ("updated_at", ColType::Time),
];

/// Every table of the read model in dependency order (a referenced table before the tables
/// that reference it), then the legacy view. `projector_checkpoint` and
/// `projector_skipped_event` come last because they describe the projection, not the data.
pub(crate) const TABLES: &[Layout] = &[
    Layout {
        name: "donation_tracking",
        order_by: "id",
        columns: TRACKING_COLUMNS,
    },
    Layout {
        name: "donation",
        order_by: "id",
        columns: DONATION_COLUMNS,
    },
    Layout {
        name: "donation_moderation_reason",
        order_by: "donation_id, moderation_identifier, source",
        columns: REASON_COLUMNS,
    },
    Layout {
        name: "payment",
        order_by: "id",
        columns: PAYMENT_COLUMNS,
    },
    Layout {
        name: "donation_event",
        order_by: "donation_id, position",
        columns: DONATION_EVENT_COLUMNS,
    },
    Layout {
        name: "contribution_tracking",
        order_by: "id",
        columns: CONTRIBUTION_TRACKING_COLUMNS,
    },
    Layout {
        name: "contribution_tracking_conflict",
        order_by: "position",
        columns: CONFLICT_COLUMNS,
    },
    Layout {
        name: "membership_application",
        order_by: "id",
        columns: MEMBERSHIP_COLUMNS,
    },
    Layout {
        name: "membership_moderation_reason",
        order_by: "membership_id, moderation_identifier, source",
        columns: MEMBERSHIP_REASON_COLUMNS,
    },
    Layout {
        name: "address_change",
        order_by: "id",
        columns: ADDRESS_CHANGE_COLUMNS,
    },
    Layout {
        name: "subscription",
        order_by: "id",
        columns: SUBSCRIPTION_COLUMNS,
    },
    Layout {
        name: "membership_event",
        order_by: "membership_id, position",
        columns: MEMBERSHIP_EVENT_COLUMNS,
    },
    Layout {
        name: "address_change_event",
        order_by: "address_change_id, position",
        columns: ADDRESS_CHANGE_EVENT_COLUMNS,
    },
    Layout {
        name: "projector_checkpoint",
        order_by: "projector",
        columns: PROJECTOR_CHECKPOINT_COLUMNS,
    },
    Layout {
        name: "projector_skipped_event",
        order_by: "projector, position",
        columns: SKIPPED_EVENT_COLUMNS,
    },
];

/// The legacy strangler view of donations.
pub(crate) const LEGACY_SPENDEN: Layout = Layout {
    name: "legacy_spenden",
    order_by: "id",
    columns: LEGACY_SPENDEN_COLUMNS,
};

/// The legacy strangler view of membership applications.
pub(crate) const LEGACY_REQUEST: Layout = Layout {
    name: "legacy_request",
    order_by: "id",
    columns: LEGACY_REQUEST_COLUMNS,
};

/// The change log of every context in one view (`donation_event`, `membership_event` and
/// `address_change_event`).
pub(crate) const CHANGE_LOG: Layout = Layout {
    name: "change_log",
    order_by: "context, subject_id, position",
    columns: CHANGE_LOG_COLUMNS,
};

/// The views, each after the tables it reads: the legacy ones and the change log.
pub(crate) const VIEWS: &[Layout] = &[LEGACY_SPENDEN, LEGACY_REQUEST, CHANGE_LOG];

/// Every table, then the views: what a dump or a `verify` walks.
pub(crate) fn tables_and_views() -> impl Iterator<Item = &'static Layout> {
    TABLES.iter().chain(VIEWS)
}

/// Column `i` of a loaded row as text (`''` for NULL).
pub(crate) fn text(values: &[Value], i: usize) -> String {
    values[i].as_text().unwrap_or_default().to_owned()
}
/// Column `i` of a loaded row as an integer (0 for NULL).
pub(crate) fn int(values: &[Value], i: usize) -> i64 {
    values[i].as_i64().unwrap_or_default()
}
/// An id or count column as the domain's unsigned type (a negative one reads as 0).
pub(crate) fn unsigned<T: TryFrom<i64> + Default>(values: &[Value], i: usize) -> T {
    T::try_from(int(values, i)).unwrap_or_default()
}
/// Column `i` of a loaded row as a boolean (false for NULL).
pub(crate) fn flag(values: &[Value], i: usize) -> bool {
    values[i].as_bool().unwrap_or_default()
}
/// Column `i` of a loaded row as a time.
pub(crate) fn time(values: &[Value], i: usize) -> Option<DateTime<Utc>> {
    values[i].as_time()
}
/// A code column as its domain enum (an unknown code reads as the enum's default).
pub(crate) fn code<T: std::str::FromStr + Default>(values: &[Value], i: usize) -> T {
    values[i]
        .as_text()
        .and_then(|c| c.parse().ok())
        .unwrap_or_default()
}

/// Repeats the parenthesised tuple after `VALUES` in `sql` `rows` times (SQLite multi-row
/// insert from the one-row statement in `projections/sqlite/`).
pub(crate) fn expand_values(sql: &str, rows: usize) -> String {
    let start = sql.find("VALUES (").expect("statement has a VALUES tuple") + "VALUES ".len();
    let end = start + sql[start..].find(')').expect("tuple is closed") + 1;
    let tuple = &sql[start..end];
    let mut out = String::with_capacity(sql.len() + tuple.len() * rows);
    out.push_str(&sql[..start]);
    for i in 0..rows {
        if i > 0 {
            out.push_str(",\n       ");
        }
        out.push_str(tuple);
    }
    out.push_str(&sql[end..]);
    out
}

/// The statement sizes `rows` rows are written in: as many full statements of `max` rows as
/// fit, then the rest as descending powers of two. Only a handful of distinct multi-row
/// statements exist per table, so each is prepared once per connection and then reused from
/// the statement cache (an ad-hoc size would be parsed anew for every batch).
pub(crate) fn chunk_sizes(rows: usize, max: usize) -> impl Iterator<Item = usize> {
    let full = std::iter::repeat_n(max, rows / max);
    let rest = rows % max;
    let bits = (0..usize::BITS)
        .rev()
        .map(|b| 1usize << b)
        .filter(move |size| rest & size != 0);
    full.chain(bits)
}

/// Multi-row statements by (address of the one-row statement, rows).
type ExpandedCache =
    std::sync::Mutex<std::collections::HashMap<(usize, usize), std::sync::Arc<str>>>;

/// The multi-row form of `statement` for `rows` rows, built once per process.
pub(crate) fn expanded(statement: &'static str, rows: usize) -> std::sync::Arc<str> {
    static CACHE: std::sync::OnceLock<ExpandedCache> = std::sync::OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("statement cache lock");
    cache
        .entry((statement.as_ptr() as usize, rows))
        .or_insert_with(|| expand_values(statement, rows).into())
        .clone()
}

/// The column names listed between `INSERT INTO table (` and `)` (or after `SELECT` up to
/// `FROM`), for checking a statement against its layout.
/// Binds [`Value`]s to a query of any dialect, in order.
macro_rules! bind_values {
    ($query:expr, $values:expr) => {{
        let mut q = $query;
        for v in $values {
            q = match v {
                $crate::projection::rows::Value::I64(v) => q.bind(*v),
                $crate::projection::rows::Value::Text(v) => q.bind(v.clone()),
                $crate::projection::rows::Value::Bool(v) => q.bind(*v),
                $crate::projection::rows::Value::Time(v) => q.bind(*v),
            };
        }
        q
    }};
}
pub(crate) use bind_values;

#[cfg(test)]
pub(crate) fn statement_columns(sql: &str) -> Vec<String> {
    let body: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    let list = if let Some(i) = body.find("INSERT INTO") {
        let open = i + body[i..].find('(').unwrap() + 1;
        let close = open + body[open..].find(')').unwrap();
        body[open..close].to_owned()
    } else {
        let s = body.find("SELECT").unwrap() + "SELECT".len();
        let e = body.find("FROM").unwrap();
        body[s..e].to_owned()
    };
    list.split(',')
        .map(|c| {
            let c = c.trim();
            let c = c.rsplit(" AS ").next().unwrap_or(c);
            c.split("::").next().unwrap().trim().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_cover_every_row_with_few_distinct_sizes() {
        for rows in [0, 1, 7, 256, 257, 1000, 4095] {
            let sizes: Vec<usize> = chunk_sizes(rows, 256).collect();
            assert_eq!(sizes.iter().sum::<usize>(), rows, "{rows}");
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= 256));
        }
        assert_eq!(
            chunk_sizes(1000, 256).collect::<Vec<_>>(),
            [256, 256, 256, 128, 64, 32, 8]
        );
    }

    #[test]
    fn expand_values_repeats_the_tuple() {
        let sql = "INSERT INTO t (a, b)\nVALUES (?, ?)\nON CONFLICT (a) DO NOTHING;";
        let out = expand_values(sql, 3);
        assert_eq!(out.matches("(?, ?)").count(), 3);
        assert!(out.ends_with("ON CONFLICT (a) DO NOTHING;"));
    }

    /// The type of every `table.column` that the read-model migrations `sql` create (the
    /// first word after the column's name; a decimal's precision and scale together).
    fn column_types(sql: &str) -> std::collections::HashMap<String, String> {
        let mut types = std::collections::HashMap::new();
        let mut table = None;
        for line in sql.lines() {
            if let Some(rest) = line.strip_prefix("ALTER TABLE ") {
                // `ALTER TABLE t ADD COLUMN c TYPE ...`
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let [t, "ADD", "COLUMN", c, ty, ..] = words[..] {
                    types.insert(format!("{t}.{c}"), ty.trim_end_matches(',').to_owned());
                }
            } else if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                table = rest.split_whitespace().next().map(str::to_owned);
            } else if line.starts_with(')') {
                table = None;
            } else if let Some(t) = &table {
                let mut words = line.split_whitespace();
                let (Some(column), Some(ty)) = (words.next(), words.next()) else {
                    continue;
                };
                if column == "--" || column.chars().any(|c| c.is_uppercase() || c == '(') {
                    continue;
                }
                let ty = if ty.starts_with("NUMERIC") || ty.starts_with("DECIMAL") {
                    format!("{ty}{}", words.next().unwrap_or_default())
                } else {
                    ty.trim_end_matches(',').to_owned()
                };
                types.insert(format!("{t}.{column}"), ty);
            }
        }
        types
    }

    /// The PostgreSQL type of every `table.column` the read-model migrations create.
    fn postgres_types() -> std::collections::HashMap<String, String> {
        column_types(
            &[
                include_str!("../../migrations/postgres/readmodel/20261201000001_readmodel.sql"),
                include_str!(
                    "../../migrations/postgres/readmodel/20261206000001_approved_as_anonymous.sql"
                ),
                include_str!("../../migrations/postgres/readmodel/20261207000001_membership.sql"),
                include_str!(
                    "../../migrations/postgres/readmodel/20261207000003_address_change.sql"
                ),
                include_str!(
                    "../../migrations/postgres/readmodel/20261207100000_membership_event.sql"
                ),
                include_str!("../../migrations/postgres/readmodel/20261207200000_subscription.sql"),
                include_str!(
                    "../../migrations/postgres/readmodel/20261208000001_address_change_event.sql"
                ),
            ]
            .concat(),
        )
    }

    /// The MariaDB type of every `table.column` the read-model migrations create.
    fn mariadb_types() -> std::collections::HashMap<String, String> {
        column_types(
            &[
                include_str!("../../migrations/mariadb/readmodel/20261201000001_readmodel.sql"),
                include_str!(
                    "../../migrations/mariadb/readmodel/20261206000001_approved_as_anonymous.sql"
                ),
                include_str!("../../migrations/mariadb/readmodel/20261207000001_membership.sql"),
                include_str!(
                    "../../migrations/mariadb/readmodel/20261207000003_address_change.sql"
                ),
                include_str!(
                    "../../migrations/mariadb/readmodel/20261207100000_membership_event.sql"
                ),
                include_str!("../../migrations/mariadb/readmodel/20261207200000_subscription.sql"),
                include_str!(
                    "../../migrations/mariadb/readmodel/20261208000001_address_change_event.sql"
                ),
            ]
            .concat(),
        )
    }

    /// Every column of every layout with its admission rule and its type in `types`.
    fn rules_and_types(
        types: &std::collections::HashMap<String, String>,
    ) -> Vec<(String, crate::domain::admission::Holds, String)> {
        use crate::domain::admission::COLUMNS;
        let mut out = Vec::new();
        for layout in TABLES {
            for (column, _) in layout.columns {
                let name = format!("{}.{column}", layout.name);
                let holds = COLUMNS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, h)| *h)
                    .unwrap_or_else(|| panic!("{name} has no rule in admission::COLUMNS"));
                let ty = types
                    .get(&name)
                    .unwrap_or_else(|| panic!("{name} not found in the migration"))
                    .clone();
                out.push((name, holds, ty));
            }
        }
        assert_eq!(
            out.len(),
            COLUMNS.len(),
            "admission::COLUMNS lists a column no table has"
        );
        out
    }

    #[test]
    fn every_read_model_column_has_an_admission_rule_that_fits_its_mariadb_type() {
        use crate::domain::admission::Holds;
        for (name, holds, ty) in rules_and_types(&mariadb_types()) {
            // VARCHAR(n) holds n characters; TEXT 65,535 bytes, 16,383 four-byte characters.
            let chars = |ty: &str| match ty {
                "TEXT" => Some(16_383),
                _ => ty
                    .strip_prefix("VARCHAR(")
                    .and_then(|n| n.strip_suffix(')'))
                    .and_then(|n| n.parse::<usize>().ok()),
            };
            let fits = match holds {
                Holds::Id | Holds::Cents => ty == "BIGINT",
                Holds::Count | Holds::Int => ty == "INTEGER",
                Holds::Line(max) | Holds::Lines(max) => chars(&ty).is_some_and(|n| n >= max),
                Holds::Decimal { int, frac } => ty == format!("DECIMAL({},{frac})", int + frac),
                Holds::Time => ty == "DATETIME(6)",
                Holds::Bool => ty == "BOOLEAN",
                Holds::Derived => true,
            };
            assert!(fits, "{name}: {holds:?} does not describe {ty}");
        }
    }

    #[test]
    fn every_read_model_column_has_an_admission_rule_that_fits_its_postgres_type() {
        use crate::domain::admission::Holds;
        for (name, holds, ty) in rules_and_types(&postgres_types()) {
            let fits = match holds {
                Holds::Id | Holds::Cents => ty == "BIGINT",
                Holds::Count | Holds::Int => ty == "INTEGER",
                Holds::Line(_) | Holds::Lines(_) => ty == "TEXT",
                Holds::Decimal { int, frac } => ty == format!("NUMERIC({},{frac})", int + frac),
                Holds::Time => ty == "TIMESTAMPTZ",
                Holds::Bool => ty == "BOOLEAN",
                Holds::Derived => true,
            };
            assert!(fits, "{name}: {holds:?} does not describe {ty}");
        }
    }
}
