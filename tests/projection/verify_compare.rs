//! The table comparison behind `ledger verify`, on both backends: two read models filled with
//! the same rows compare identical at every page size, and after hand edits of the live one
//! every kind of difference is found and named (a changed value, a deleted row, an extra row,
//! NULL against the empty string against the text 'NULL'), with the same checksums whatever
//! the page size. The legacy view is read row by row only when its definition or an input
//! table differs. PostgreSQL skips loudly when unreachable (fails under `CI=true`).
use crate::support;

use std::collections::BTreeMap;

use ledger::projection::compare::{
    self, CompareMethod, CompareOptions, DifferenceKind, TableComparison,
};
use ledger::projection::ReadModel;
use sqlx::{Connection, Executor};

/// Rows valid in both dialects (booleans as TRUE/FALSE, times as RFC 3339 text).
const BASE_ROWS: &[&str] = &[
    "INSERT INTO donation_tracking (id, campaign, keyword) VALUES (1, 'c', 'k1'), (2, 'c', 'k2')",
    "INSERT INTO donation (id, created_at, updated_at, amount_cents, payment_id, payment_method, \
     is_exported, tracking_id, city) VALUES \
     (1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 1000, 101, 'BEZ', TRUE, 1, 'Berlin'), \
     (2, '2026-01-01T00:01:00Z', '2026-01-01T00:01:00Z', 2000, 102, 'UEB', FALSE, 2, ''), \
     (3, '2026-01-01T00:02:00Z', '2026-01-01T00:02:00Z', 3000, 103, 'PPL', FALSE, NULL, '')",
    "INSERT INTO payment (id, donation_id, method, amount_cents, created_at, updated_at) VALUES \
     (101, 1, 'BEZ', 1000, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'), \
     (102, 2, 'UEB', 2000, '2026-01-01T00:01:00Z', '2026-01-01T00:01:00Z'), \
     (103, 3, 'PPL', 3000, '2026-01-01T00:02:00Z', '2026-01-01T00:02:00Z')",
    "INSERT INTO donation_event (donation_id, position, stream, event_type, actor_kind, \
     actor_id, occurred_at) VALUES \
     (1, 1, 'donation-1', 'DonationCreated.v2', 'frontend', 'f', '2026-01-01T00:00:00Z'), \
     (1, 2, 'payment-101', 'PaymentInitiated.v1', 'frontend', 'f', '2026-01-01T00:00:00Z'), \
     (2, 3, 'donation-2', 'DonationCreated.v2', 'frontend', 'f', '2026-01-01T00:01:00Z'), \
     (3, 4, 'donation-3', 'DonationCreated.v2', 'frontend', 'a \"quoted\", line\nbreak', \
      '2026-01-01T00:02:00Z')",
    "INSERT INTO donation_moderation_reason (donation_id, moderation_identifier, source) VALUES \
     (3, 'AMOUNT_TOO_HIGH', 'amount'), (3, 'EMAIL_BLOCKED', 'email')",
    "INSERT INTO contribution_tracking (id, allocation_token, referrer, utm_medium, utm_key) \
     VALUES (1, 't1', NULL, '', 'NULL'), (2, 't2', 'r', NULL, NULL)",
];

/// Hand edits of the live read model, one per kind of difference.
const EDITS: &[&str] = &[
    "UPDATE donation SET amount_cents = 1 WHERE id = 3",
    "DELETE FROM payment WHERE id = 102",
    "INSERT INTO donation_event (donation_id, position, stream, event_type, actor_kind, \
     actor_id, occurred_at) VALUES (9, 99, 'donation-9', 'X', 'system', 's', \
     '2026-01-01T00:00:00Z')",
    // NULL → '', '' → NULL, 'NULL' → NULL, NULL → 'NULL'.
    "UPDATE contribution_tracking SET referrer = '', utm_medium = NULL, utm_key = NULL \
     WHERE id = 1",
    "UPDATE contribution_tracking SET utm_medium = 'NULL' WHERE id = 2",
];

/// One read model under test and how to run SQL on it.
enum Side {
    Sqlite(String),
    Postgres { url: String, schema: String },
}

impl Side {
    /// The `CREATE VIEW legacy_spenden` statement of this side's migration.
    fn legacy_view(&self) -> String {
        let dialect = match self {
            Side::Sqlite(_) => "sqlite",
            Side::Postgres { .. } => "postgres",
        };
        let path = format!(
            "{}/migrations/{dialect}/readmodel/20261201000001_readmodel.sql",
            env!("CARGO_MANIFEST_DIR")
        );
        let migration = std::fs::read_to_string(path).unwrap();
        let view = &migration[migration.find("CREATE VIEW legacy_spenden").unwrap()..];
        view[..view.find(';').unwrap()].to_owned()
    }

    /// Replaces the legacy view by `definition`.
    async fn replace_legacy_view(&self, definition: &str) {
        self.run(&["DROP VIEW legacy_spenden", definition]).await;
    }

    async fn run(&self, statements: &[&str]) {
        match self {
            Side::Sqlite(url) => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                for s in statements {
                    conn.execute(*s)
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
                conn.close().await.unwrap();
            }
            Side::Postgres { url, schema } => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                conn.execute(format!("SET search_path TO {schema}").as_str())
                    .await
                    .unwrap();
                for s in statements {
                    conn.execute(*s)
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
                conn.close().await.unwrap();
            }
        }
    }

    async fn read_model(&self) -> ReadModel {
        let rm = match self {
            Side::Sqlite(url) => ReadModel::connect(url).await.unwrap(),
            Side::Postgres { url, schema } => {
                ReadModel::connect_with_schema(url, schema).await.unwrap()
            }
        };
        rm.migrate().await.unwrap();
        rm
    }
}

async fn compare_at(
    live: &ReadModel,
    rebuilt: &ReadModel,
    page_size: usize,
) -> BTreeMap<String, TableComparison> {
    let options = CompareOptions {
        page_size,
        max_listed: 20,
    };
    compare::compare(live, rebuilt, options)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.table.clone(), t))
        .collect()
}

/// A listed change: key, column, live value, rebuilt value (`None`: SQL NULL).
type Change = (String, Option<String>, Option<String>, Option<String>);

fn changed(t: &TableComparison) -> Vec<Change> {
    t.differences
        .iter()
        .map(|d| {
            assert_eq!(d.kind, DifferenceKind::Changed, "{d:?}");
            (
                d.key.clone(),
                d.column.clone(),
                d.live.clone(),
                d.rebuilt.clone(),
            )
        })
        .collect()
}

async fn every_difference_is_found_and_named(live: Side, rebuilt: Side) {
    let (live_rm, rebuilt_rm) = (live.read_model().await, rebuilt.read_model().await);
    live.run(BASE_ROWS).await;
    rebuilt.run(BASE_ROWS).await;

    let mut checksums = None;
    for page_size in [1, 2, 3, 10_000] {
        let tables = compare_at(&live_rm, &rebuilt_rm, page_size).await;
        let names: Vec<&str> = tables.keys().map(String::as_str).collect();
        let mut expected = compare::compared_tables();
        expected.sort_unstable();
        assert_eq!(names, expected);
        for t in tables.values() {
            assert!(t.is_identical(), "page size {page_size}: {t:?}");
        }
        assert_eq!(tables["donation_event"].live_rows, 4);
        let legacy = &tables["legacy_spenden"];
        assert_eq!(legacy.method, CompareMethod::DefinitionAndInputs);
        assert_eq!((legacy.live_rows, legacy.rebuilt_rows), (3, 3));
        assert_eq!(tables["donation"].method, CompareMethod::Rows);
        let sums: Vec<String> = tables.values().map(|t| t.live_checksum.clone()).collect();
        assert_eq!(
            checksums.get_or_insert(sums.clone()),
            &sums,
            "page size {page_size}"
        );
    }

    // A view changed by hand over identical tables is read row by row: a harmless change
    // (same rows) compares identical, a real one names the rows.
    let original = live.legacy_view();
    let harmless = original.replace("d.city AS ort", "COALESCE(d.city, d.city) AS ort");
    live.replace_legacy_view(&harmless).await;
    let tables = compare_at(&live_rm, &rebuilt_rm, 2).await;
    let legacy = &tables["legacy_spenden"];
    assert_eq!(legacy.method, CompareMethod::Rows);
    assert!(legacy.is_identical(), "{legacy:?}");
    let upper = original.replace("d.city AS ort", "UPPER(d.city) AS ort");
    live.replace_legacy_view(&upper).await;
    let tables = compare_at(&live_rm, &rebuilt_rm, 2).await;
    let differing: Vec<&str> = tables
        .values()
        .filter(|t| !t.is_identical())
        .map(|t| t.table.as_str())
        .collect();
    assert_eq!(differing, vec!["legacy_spenden"]);
    let d = &tables["legacy_spenden"].differences;
    assert_eq!(
        (d.len(), d[0].key.as_str(), d[0].column.as_deref()),
        (1, "id=1", Some("ort"))
    );
    assert_eq!(
        (d[0].live.as_deref(), d[0].rebuilt.as_deref()),
        (Some("BERLIN"), Some("Berlin"))
    );
    live.replace_legacy_view(&original).await;

    live.run(EDITS).await;
    for page_size in [1, 2, 3, 10_000] {
        let tables = compare_at(&live_rm, &rebuilt_rm, page_size).await;
        let differing: Vec<&str> = tables
            .values()
            .filter(|t| !t.is_identical())
            .map(|t| t.table.as_str())
            .collect();
        assert_eq!(
            differing,
            vec![
                // The change log's view reads `donation_event`.
                "change_log",
                "contribution_tracking",
                "donation",
                "donation_event",
                "legacy_spenden",
                "payment"
            ],
            "page size {page_size}"
        );
        let s = |v: &str| Some(v.to_owned());

        let donation = &tables["donation"];
        assert_eq!(donation.differing_rows, 1);
        assert_ne!(donation.live_checksum, donation.rebuilt_checksum);
        assert_eq!(
            changed(donation),
            vec![(s("id=3").unwrap(), s("amount_cents"), s("1"), s("3000"))]
        );
        let legacy = &tables["legacy_spenden"];
        assert_eq!(legacy.method, CompareMethod::Rows);
        assert_eq!(
            changed(legacy),
            vec![(s("id=3").unwrap(), s("betrag"), s("0.01"), s("30.00"))]
        );

        let payment = &tables["payment"];
        assert_eq!((payment.live_rows, payment.rebuilt_rows), (2, 3));
        assert_eq!(payment.differing_rows, 1);
        let d = &payment.differences[0];
        assert_eq!(
            (d.kind, d.key.as_str(), d.live.as_deref()),
            (DifferenceKind::OnlyRebuilt, "id=102", None)
        );
        let row = d.rebuilt.as_deref().unwrap();
        assert!(
            row.starts_with("id=102, donation_id=2, method=\"UEB\""),
            "{row}"
        );

        let events = &tables["donation_event"];
        assert_eq!((events.live_rows, events.rebuilt_rows), (5, 4));
        let d = &events.differences[0];
        assert_eq!(
            (d.kind, d.key.as_str(), d.rebuilt.as_deref()),
            (DifferenceKind::OnlyLive, "donation_id=9, position=99", None)
        );

        let tracking = &tables["contribution_tracking"];
        assert_eq!(tracking.differing_rows, 2);
        assert_eq!(
            changed(tracking),
            vec![
                (s("id=1").unwrap(), s("referrer"), s(""), None),
                (s("id=1").unwrap(), s("utm_medium"), None, s("")),
                (s("id=1").unwrap(), s("utm_key"), None, s("NULL")),
                (s("id=2").unwrap(), s("utm_medium"), s("NULL"), None),
            ],
            "page size {page_size}"
        );
    }
}

#[tokio::test]
async fn sqlite_compare_finds_and_names_every_kind_of_difference_at_every_page_size() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    every_difference_is_found_and_named(
        Side::Sqlite(url("live.sqlite")),
        Side::Sqlite(url("rebuilt.sqlite")),
    )
    .await;
}

#[tokio::test]
async fn postgres_compare_finds_and_names_every_kind_of_difference_at_every_page_size() {
    let Some(db) = support::postgres::fresh_database("compare").await else {
        return;
    };
    let side = |schema: &str| Side::Postgres {
        url: db.url.clone(),
        schema: schema.to_owned(),
    };
    every_difference_is_found_and_named(side("live"), side("rebuilt")).await;
    drop(db);
}
