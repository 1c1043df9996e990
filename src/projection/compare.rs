//! Table-by-table comparison of two read models (the live one and a scratch rebuild), with the
//! row work done inside the database engines.
//!
//! Each side is read inside one read transaction ([`Snapshot`], `snapshot.rs`): a consistent snapshot even
//! while a projector keeps writing. A table is walked in key-ordered pages whose bounds both
//! sides share: a page holds the rows after the previous bound up to the smaller of the two
//! sides' `page_size`-th next key (keyset queries on the primary key, text keys in byte order
//! in every dialect), so a page never holds more than `page_size` rows per side. The engine
//! renders a whole page into ONE text: each row a JSON array of its column values
//! (`json_array` in SQLite, `json_build_array` in PostgreSQL, `JSON_ARRAY` in MariaDB), rows
//! joined by newlines in key order. A page thus costs one round trip per side instead of a
//! driver hand-off and a dozen allocations per row; the two sides run concurrently on their
//! own connections, and a blocking thread checks one page while the next is read.
//!
//! Per table and side this yields the row count and a SHA-256 over the row texts (the table
//! checksum; it does not depend on the page size, but it does on the dialect). Equal page
//! texts need nothing more. Only a page whose texts differ is split into rows and merged by
//! key, to count and list the differing rows and columns (`diff.rs`, pure). JSON tells SQL NULL (`null`), the
//! empty string (`""`) and the text `NULL` (`"NULL"`) apart, keeps integers and text apart,
//! and escapes newlines, so one row's text never spans two lines. (A BLOB written by hand
//! into an SQLite column cannot be rendered: the compare then fails with SQLite's error
//! instead of listing the row.) The legacy view is read only when needed; see
//! [`LEGACY_SPENDEN_INPUTS`].

use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::backend::ProjectionError;
use super::diff::{shared_bound, Checksum, Differences, PageChecker, PageText};
use super::rows::{self, Layout, Value};
use super::snapshot::key_columns;
use super::ReadModel;

pub use super::snapshot::Snapshot;

/// Rows per page and side by default. A `donation` page renders to about 3 MB of text per
/// side; larger pages hardly go faster.
pub const DEFAULT_PAGE_SIZE: usize = 10_000;
/// Differences listed per table by default (all are counted).
pub const DEFAULT_MAX_LISTED: usize = 20;

/// How a row differs between the live read model and the rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// The row exists on both sides; one column differs.
    Changed,
    /// The row is in the live read model only.
    OnlyLive,
    /// The row is in the rebuild only (missing from the live read model).
    OnlyRebuilt,
}

/// One listed difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowDifference {
    /// The row's key, e.g. `id=3` or `donation_id=1, position=5`.
    pub key: String,
    /// What kind of difference.
    pub kind: DifferenceKind,
    /// The differing column (`None` for a missing row).
    pub column: Option<String>,
    /// [`DifferenceKind::Changed`]: the live value, `None` for SQL NULL.
    /// [`DifferenceKind::OnlyLive`]: the whole row, rendered (`column=value, …`, text values
    /// in JSON quotes, NULL bare).
    pub live: Option<String>,
    /// The rebuilt value, as [`RowDifference::live`] (the whole row for
    /// [`DifferenceKind::OnlyRebuilt`]).
    pub rebuilt: Option<String>,
}

/// The comparison of one table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableComparison {
    /// Table or view name.
    pub table: String,
    /// Rows in the live read model.
    pub live_rows: u64,
    /// Rows in the rebuild.
    pub rebuilt_rows: u64,
    /// SHA-256 (hex) over the live rows' JSON texts in key order, newline-separated.
    pub live_checksum: String,
    /// SHA-256 (hex) over the rebuilt rows' JSON texts in key order, newline-separated.
    pub rebuilt_checksum: String,
    /// Rows that differ (changed or on one side only), all counted.
    pub differing_rows: u64,
    /// The first differences, up to the listing cap.
    pub differences: Vec<RowDifference>,
    /// How the table was compared.
    pub method: CompareMethod,
    /// Wall time of the comparison, in seconds.
    pub seconds: f64,
}

/// How a table was compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareMethod {
    /// Row by row; the checksums are over the rows.
    Rows,
    /// A view whose definition is the same on both sides and whose input tables compared
    /// identical: its rows are identical by construction and were not read. The checksums are
    /// SHA-256 over the definition and the inputs' checksums; the row counts are counted.
    DefinitionAndInputs,
}

impl TableComparison {
    /// Whether both sides hold the same rows.
    pub fn is_identical(&self) -> bool {
        self.differing_rows == 0 && self.live_checksum == self.rebuilt_checksum
    }
}

/// Paging and listing limits.
#[derive(Debug, Clone, Copy)]
pub struct CompareOptions {
    /// Rows per page and side.
    pub page_size: usize,
    /// Differences listed per table.
    pub max_listed: usize,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            page_size: DEFAULT_PAGE_SIZE,
            max_listed: DEFAULT_MAX_LISTED,
        }
    }
}

/// The names of the compared tables, in comparison order (every table, then the views).
pub fn compared_tables() -> Vec<&'static str> {
    layouts().map(|l| l.name).collect()
}

/// Every table, then the views (after the tables they read).
fn layouts() -> impl Iterator<Item = &'static Layout> {
    rows::tables_and_views()
}

/// The tables the `legacy_spenden` view reads (`FROM donation LEFT JOIN payment`; a unit test
/// holds this list to every dialect's view definition).
///
/// The view is not read row by row when both sides' definitions are the same text and these
/// tables compared identical: a view is a query, and every function it calls (`CASE`,
/// `printf`, `datetime`, `TRIM`, `LPAD`, `AT TIME ZONE 'UTC'`, …) is deterministic, so the
/// same query over the same rows yields the same rows. That saves reading, joining and
/// formatting every donation twice more. When an input or the definition differs, the view is
/// compared row by row like a table, so its differing rows are still listed for the legacy
/// consumers that read it.
const LEGACY_SPENDEN_INPUTS: &[&str] = &["donation", "payment"];

/// The tables the `legacy_request` view reads (`FROM membership_application`), compared the
/// same way as [`LEGACY_SPENDEN_INPUTS`].
const LEGACY_REQUEST_INPUTS: &[&str] = &["membership_application"];

/// The tables the `change_log` view reads (one `UNION ALL` arm per context), compared the
/// same way as [`LEGACY_SPENDEN_INPUTS`].
const CHANGE_LOG_INPUTS: &[&str] = &["donation_event", "membership_event", "address_change_event"];

/// The input tables of a compared view, `None` for a table.
fn view_inputs(layout: &Layout) -> Option<&'static [&'static str]> {
    if layout.name == rows::LEGACY_SPENDEN.name {
        Some(LEGACY_SPENDEN_INPUTS)
    } else if layout.name == rows::LEGACY_REQUEST.name {
        Some(LEGACY_REQUEST_INPUTS)
    } else if layout.name == rows::CHANGE_LOG.name {
        Some(CHANGE_LOG_INPUTS)
    } else {
        None
    }
}

/// The compared layout called `name`, for unit tests.
#[cfg(test)]
pub(super) fn layout(name: &str) -> &'static Layout {
    layouts().find(|l| l.name == name).unwrap()
}

/// Compares one table: shared page bounds, then both sides' page texts, concurrently; the
/// pages are checked on another thread meanwhile.
async fn compare_table(
    live: &mut Snapshot,
    rebuilt: &mut Snapshot,
    layout: &'static Layout,
    options: CompareOptions,
    progress: &mut (dyn FnMut(&str, u64) + Send),
) -> Result<TableComparison, ProjectionError> {
    let started = Instant::now();
    let key = key_columns(layout);
    let page_size = options.page_size.max(1);
    let (pages, mut to_check) = tokio::sync::mpsc::channel::<(PageText, PageText)>(1);
    let mut checker = PageChecker {
        live: Checksum::default(),
        rebuilt: Checksum::default(),
        differences: Differences::new(layout, options.max_listed),
    };
    let checking = tokio::task::spawn_blocking(move || {
        while let Some((a, b)) = to_check.blocking_recv() {
            checker.check(&a, &b);
        }
        checker
    });
    let mut after: Option<Vec<Value>> = None;
    let mut rows = 0;
    loop {
        let (a, b) = tokio::join!(
            live.bound(layout, &key, after.as_deref(), page_size),
            rebuilt.bound(layout, &key, after.as_deref(), page_size)
        );
        let upto = shared_bound(a?, b?);
        let (a, b) = tokio::join!(
            live.page_text(layout, &key, after.as_deref(), upto.as_deref()),
            rebuilt.page_text(layout, &key, after.as_deref(), upto.as_deref())
        );
        let (a, b) = (a?, b?);
        rows += a.rows.max(b.rows);
        if pages.send((a, b)).await.is_err() {
            break; // The checker panicked; joining it reports that.
        }
        progress(layout.name, rows);
        match upto {
            Some(upto) => after = Some(upto),
            None => break,
        }
    }
    drop(pages);
    let checker = checking
        .await
        .map_err(|e| ProjectionError::Rebuild(format!("checking {} failed: {e}", layout.name)))?;
    let (live_rows, live_checksum) = checker.live.finish();
    let (rebuilt_rows, rebuilt_checksum) = checker.rebuilt.finish();
    Ok(TableComparison {
        table: layout.name.to_owned(),
        live_rows,
        rebuilt_rows,
        live_checksum,
        rebuilt_checksum,
        differing_rows: checker.differences.rows,
        differences: checker.differences.listed,
        method: CompareMethod::Rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A view's comparison from its definitions and its inputs' comparisons (see
/// [`LEGACY_SPENDEN_INPUTS`]), or `None` when it must be compared row by row.
async fn compare_view_by_definition(
    live: &mut Snapshot,
    rebuilt: &mut Snapshot,
    layout: &Layout,
    inputs: &[&str],
    compared: &[TableComparison],
) -> Result<Option<TableComparison>, ProjectionError> {
    let started = Instant::now();
    let inputs: Option<Vec<&TableComparison>> = inputs
        .iter()
        .map(|name| compared.iter().find(|t| t.table == *name))
        .collect();
    let Some(inputs) = inputs.filter(|i| i.iter().all(|t| t.is_identical())) else {
        return Ok(None);
    };
    let (a, b) = tokio::join!(
        live.view_definition(layout.name),
        rebuilt.view_definition(layout.name)
    );
    let (Some(a), Some(b)) = (a?, b?) else {
        return Ok(None);
    };
    if a != b {
        return Ok(None);
    }
    let (live_rows, rebuilt_rows) =
        tokio::join!(live.count(layout.name), rebuilt.count(layout.name));
    let checksum = |definition: &str, side: fn(&TableComparison) -> &str| {
        let mut hasher = Sha256::new();
        hasher.update(definition.as_bytes());
        for t in &inputs {
            hasher.update(b"\n");
            hasher.update(side(t).as_bytes());
        }
        hex::encode(hasher.finalize())
    };
    Ok(Some(TableComparison {
        table: layout.name.to_owned(),
        live_rows: live_rows?,
        rebuilt_rows: rebuilt_rows?,
        live_checksum: checksum(&a, |t| &t.live_checksum),
        rebuilt_checksum: checksum(&b, |t| &t.rebuilt_checksum),
        differing_rows: 0,
        differences: Vec::new(),
        method: CompareMethod::DefinitionAndInputs,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// Compares every table and the legacy view between two snapshots. `progress(table, rows)` is
/// called after each page; each finished table is passed to `done`.
pub async fn compare_snapshots(
    live: &mut Snapshot,
    rebuilt: &mut Snapshot,
    options: CompareOptions,
    progress: &mut (dyn FnMut(&str, u64) + Send),
    done: &mut (dyn FnMut(&TableComparison) + Send),
) -> Result<Vec<TableComparison>, ProjectionError> {
    let mut out: Vec<TableComparison> = Vec::new();
    for layout in layouts() {
        let by_definition = match view_inputs(layout) {
            Some(inputs) => compare_view_by_definition(live, rebuilt, layout, inputs, &out).await?,
            None => None,
        };
        let table = match by_definition {
            Some(table) => table,
            None => compare_table(live, rebuilt, layout, options, progress).await?,
        };
        done(&table);
        out.push(table);
    }
    Ok(out)
}

/// Compares two read models table by table (each read in one snapshot).
pub async fn compare(
    live: &ReadModel,
    rebuilt: &ReadModel,
    options: CompareOptions,
) -> Result<Vec<TableComparison>, ProjectionError> {
    let mut a = Snapshot::begin(live).await?;
    let mut b = Snapshot::begin(rebuilt).await?;
    let out = compare_snapshots(&mut a, &mut b, options, &mut |_, _| {}, &mut |_| {}).await?;
    a.finish().await?;
    b.finish().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_column_is_a_column_of_its_layout() {
        for l in layouts() {
            assert!(!key_columns(l).is_empty(), "{}", l.name);
        }
    }

    /// The tables the `CREATE VIEW {view}` of `migration` reads (the words after FROM and
    /// JOIN).
    fn read_by(migration: &str, view: &str) -> Vec<String> {
        // `CREATE VIEW` or `CREATE OR REPLACE VIEW` (a later migration's new definition).
        let start = migration.find(&format!("VIEW {view} AS")).unwrap();
        let definition = &migration[start..];
        let definition = &definition[..definition.find(';').unwrap()];
        let words: Vec<&str> = definition.split_whitespace().collect();
        words
            .windows(2)
            .filter(|w| matches!(w[0], "FROM" | "JOIN"))
            .map(|w| w[1].to_owned())
            .collect()
    }

    #[test]
    fn the_views_read_exactly_their_listed_inputs_in_every_dialect() {
        for (view, inputs, migrations) in [
            (
                "legacy_spenden",
                LEGACY_SPENDEN_INPUTS,
                [
                    include_str!("../../migrations/sqlite/readmodel/20261201000001_readmodel.sql"),
                    include_str!(
                        "../../migrations/postgres/readmodel/20261201000001_readmodel.sql"
                    ),
                    include_str!("../../migrations/mariadb/readmodel/20261201000001_readmodel.sql"),
                ],
            ),
            (
                "legacy_request",
                LEGACY_REQUEST_INPUTS,
                [
                    include_str!("../../migrations/sqlite/readmodel/20261207000001_membership.sql"),
                    include_str!(
                        "../../migrations/postgres/readmodel/20261207000001_membership.sql"
                    ),
                    include_str!(
                        "../../migrations/mariadb/readmodel/20261207000001_membership.sql"
                    ),
                ],
            ),
            (
                "change_log",
                CHANGE_LOG_INPUTS,
                [
                    include_str!(
                        "../../migrations/sqlite/readmodel/20261208000001_address_change_event.sql"
                    ),
                    include_str!(
                        "../../migrations/postgres/readmodel/20261208000001_address_change_event.sql"
                    ),
                    include_str!(
                        "../../migrations/mariadb/readmodel/20261208000001_address_change_event.sql"
                    ),
                ],
            ),
        ] {
            for migration in migrations {
                assert_eq!(read_by(migration, view), inputs, "{view}");
            }
            assert_eq!(view_inputs(layout(view)), Some(inputs));
        }
    }
}
