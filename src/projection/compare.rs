//! Table-by-table comparison of two read models (the live one and a scratch rebuild), with the
//! row work done inside the database engines.
//!
//! Each side is read inside one read transaction ([`Snapshot`]): a consistent snapshot even
//! while a projector keeps writing. A table is walked in key-ordered pages whose bounds both
//! sides share: a page holds the rows after the previous bound up to the smaller of the two
//! sides' `page_size`-th next key (keyset queries on the primary key, text keys in byte order
//! on both dialects), so a page never holds more than `page_size` rows per side. The engine
//! renders a whole page into ONE text: each row a JSON array of its column values
//! (`json_array` in SQLite, `json_build_array` in PostgreSQL), rows joined by newlines in key
//! order. A page thus costs one round trip per side instead of a driver hand-off and a dozen
//! allocations per row; the two sides run concurrently on their own connections, and a
//! blocking thread checks one page while the next is read.
//!
//! Per table and side this yields the row count and a SHA-256 over the row texts (the table
//! checksum; it does not depend on the page size, but it does on the dialect). Equal page
//! texts need nothing more. Only a page whose texts differ is split into rows and merged by
//! key, to count and list the differing rows and columns. JSON tells SQL NULL (`null`), the
//! empty string (`""`) and the text `NULL` (`"NULL"`) apart, keeps integers and text apart,
//! and escapes newlines, so one row's text never spans two lines. (A BLOB written by hand
//! into an SQLite column cannot be rendered: the compare then fails with SQLite's error
//! instead of listing the row.) The legacy view is read only when needed; see
//! [`LEGACY_SPENDEN_INPUTS`].

use std::cmp::Ordering;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::backend::{ProjectionError, ReadTx, SqlFlavor};
use super::rows::{self, ColType, Layout, Value};
use super::ReadModel;
use crate::store::Position;

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

/// The names of the compared tables, in comparison order (every table, then the legacy view).
pub fn compared_tables() -> Vec<&'static str> {
    layouts().map(|l| l.name).collect()
}

/// Every table, then the legacy view (after the tables it reads).
fn layouts() -> impl Iterator<Item = &'static Layout> {
    rows::TABLES.iter().chain([&rows::LEGACY_SPENDEN])
}

/// The tables the `legacy_spenden` view reads (`FROM donation LEFT JOIN payment`; a unit test
/// holds this list to both dialects' view definitions).
///
/// The view is not read row by row when both sides' definitions are the same text and these
/// tables compared identical: a view is a query, and every function it calls (`CASE`,
/// `printf`, `datetime`, `TRIM`, `LPAD`, `AT TIME ZONE 'UTC'`, …) is deterministic, so the
/// same query over the same rows yields the same rows. That saves reading, joining and
/// formatting every donation twice more. When an input or the definition differs, the view is
/// compared row by row like a table, so its differing rows are still listed for the legacy
/// consumers that read it.
const LEGACY_SPENDEN_INPUTS: &[&str] = &["donation", "payment"];

/// The input tables of a compared view, `None` for a table.
fn view_inputs(layout: &Layout) -> Option<&'static [&'static str]> {
    (layout.name == rows::LEGACY_SPENDEN.name).then_some(LEGACY_SPENDEN_INPUTS)
}

/// A read transaction on a read model: every page read through it sees the same snapshot.
pub struct Snapshot {
    tx: Box<dyn ReadTx>,
}

/// One page of a table as the engine rendered it.
struct PageText {
    rows: u64,
    /// The rows' JSON arrays in key order, one per line (empty for no row).
    text: String,
}

impl Snapshot {
    /// Opens a read-only snapshot (see [`Backend::snapshot`](super::backend::Backend)).
    pub async fn begin(read_model: &ReadModel) -> Result<Self, ProjectionError> {
        Ok(Self {
            tx: read_model.backend.snapshot().await?,
        })
    }

    /// The checkpoint of `projector` as this snapshot sees it (the first read fixes the
    /// SQLite snapshot).
    pub async fn checkpoint(
        &mut self,
        projector: &str,
    ) -> Result<Option<Position>, ProjectionError> {
        let sql = format!(
            "SELECT position FROM projector_checkpoint WHERE projector = {}",
            self.tx.flavor().param(1)
        );
        let rows = self
            .tx
            .fetch(
                &sql,
                &[Value::text(projector)],
                &[("position", ColType::I64)],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r[0].as_i64())
            .map(|p| p as Position))
    }

    /// Ends the snapshot.
    pub async fn finish(self) -> Result<(), ProjectionError> {
        self.tx.finish().await
    }

    /// The stored definition of view `name` (`None` when there is no such view).
    async fn view_definition(&mut self, name: &str) -> Result<Option<String>, ProjectionError> {
        self.tx.view_definition(name).await
    }

    /// The rows of table or view `name`.
    async fn count(&mut self, name: &str) -> Result<u64, ProjectionError> {
        let sql = format!("SELECT count(*) FROM {name}");
        let rows = self.tx.fetch(&sql, &[], &[("count", ColType::I64)]).await?;
        let count = rows.first().and_then(|r| r[0].as_i64()).unwrap_or_default();
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// Runs a typed keyset query of `shape` (see [`keyset_sql`]) for the rows after `after`,
    /// with `last` (its `LIMIT` or `OFFSET`) bound last, reading `columns`.
    async fn keyset_rows(
        &mut self,
        layout: &Layout,
        key: &[(usize, ColType)],
        shape: Shape,
        after: Option<&[Value]>,
        last: usize,
        columns: &[(&str, ColType)],
    ) -> Result<Vec<Vec<Value>>, ProjectionError> {
        let sql = keyset_sql(layout, key, self.tx.flavor(), shape, after.is_some(), false);
        let mut binds = after.unwrap_or_default().to_vec();
        binds.push(Value::int(i64::try_from(last).unwrap_or(i64::MAX)));
        self.tx.fetch(&sql, &binds, columns).await
    }

    /// The key of the `n`-th row (from 1) after `after`, or `None` when fewer rows follow.
    async fn bound(
        &mut self,
        layout: &Layout,
        key: &[(usize, ColType)],
        after: Option<&[Value]>,
        n: usize,
    ) -> Result<Option<Vec<Value>>, ProjectionError> {
        let columns: Vec<(&str, ColType)> = key.iter().map(|(i, _)| layout.columns[*i]).collect();
        let offset = n.max(1) - 1;
        let rows = self
            .keyset_rows(layout, key, Shape::Bound, after, offset, &columns)
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The rows with a key after `after` and up to `upto`, rendered by the engine.
    async fn page_text(
        &mut self,
        layout: &Layout,
        key: &[(usize, ColType)],
        after: Option<&[Value]>,
        upto: Option<&[Value]>,
    ) -> Result<PageText, ProjectionError> {
        let sql = keyset_sql(
            layout,
            key,
            self.tx.flavor(),
            Shape::Text,
            after.is_some(),
            upto.is_some(),
        );
        let binds: Vec<Value> = after
            .unwrap_or_default()
            .iter()
            .chain(upto.unwrap_or_default())
            .cloned()
            .collect();
        let (rows, text) = self.tx.count_and_text(&sql, &binds).await?;
        Ok(PageText {
            rows: u64::try_from(rows).unwrap_or_default(),
            text: text.unwrap_or_default(),
        })
    }

    /// Every row of `layout` (for small tables such as the operators' skips).
    pub(crate) async fn all_rows(
        &mut self,
        layout: &Layout,
    ) -> Result<Vec<Vec<Value>>, ProjectionError> {
        let key = key_columns(layout);
        let mut out = Vec::new();
        loop {
            let after = out.last().map(|r: &Vec<Value>| key_of(r, &key));
            let page = self
                .keyset_rows(
                    layout,
                    &key,
                    Shape::Rows,
                    after.as_deref(),
                    DEFAULT_PAGE_SIZE,
                    layout.columns,
                )
                .await?;
            let done = page.len() < DEFAULT_PAGE_SIZE;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }
}

/// The key columns of a layout (its `order_by`) as (column index, type).
fn key_columns(layout: &Layout) -> Vec<(usize, ColType)> {
    layout
        .order_by
        .split(',')
        .map(|name| {
            let name = name.trim();
            let index = layout
                .columns
                .iter()
                .position(|(c, _)| *c == name)
                .unwrap_or_else(|| panic!("key column {name} of {} is a column", layout.name));
            (index, layout.columns[index].1)
        })
        .collect()
}

fn key_of(row: &[Value], key: &[(usize, ColType)]) -> Vec<Value> {
    key.iter().map(|(i, _)| row[*i].clone()).collect()
}

/// What a keyset query returns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// Typed rows in key order, `LIMIT` bound last.
    Rows,
    /// The typed key of one row, `OFFSET` bound last.
    Bound,
    /// `count(*)` and the rows' JSON texts joined by newlines in key order.
    Text,
}

/// A keyset query on `layout`: rows with a key after the first bound values (when `after`)
/// and up to the next ones (when `upto`). Text keys compare in byte order (SQLite's default;
/// PostgreSQL's `"C"` collation), as [`KeyPart`] orders them.
fn keyset_sql(
    layout: &Layout,
    key: &[(usize, ColType)],
    flavor: &dyn SqlFlavor,
    shape: Shape,
    after: bool,
    upto: bool,
) -> String {
    let typed = |(c, t): &(&str, ColType)| flavor.typed(c, *t);
    let key_exprs: Vec<String> = key
        .iter()
        .map(|(i, t)| flavor.byte_ordered(layout.columns[*i].0, *t))
        .collect();
    let order = key_exprs.join(", ");
    let mut params = 0;
    let mut param = || {
        params += 1;
        flavor.param(params)
    };
    let mut tuple = |exprs: &[String]| {
        let ps: Vec<String> = exprs.iter().map(|_| param()).collect();
        if exprs.len() == 1 {
            (exprs[0].clone(), ps[0].clone())
        } else {
            (
                format!("({})", exprs.join(", ")),
                format!("({})", ps.join(", ")),
            )
        }
    };
    let mut conditions = Vec::new();
    if after {
        let (k, p) = tuple(&key_exprs);
        conditions.push(format!("{k} > {p}"));
    }
    if upto {
        let (k, p) = tuple(&key_exprs);
        conditions.push(format!("{k} <= {p}"));
    }
    let mut from_where = layout.name.to_owned();
    if !conditions.is_empty() {
        from_where.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    let select = |columns: Vec<String>| format!("SELECT {} FROM {from_where}", columns.join(", "));
    match shape {
        Shape::Rows => {
            let sql = select(layout.columns.iter().map(typed).collect());
            format!("{sql} ORDER BY {order} LIMIT {}", param())
        }
        Shape::Bound => {
            let sql = select(
                key.iter()
                    .map(|(i, _)| typed(&layout.columns[*i]))
                    .collect(),
            );
            format!("{sql} ORDER BY {order} LIMIT 1 OFFSET {}", param())
        }
        Shape::Text => {
            let columns: Vec<&str> = layout.columns.iter().map(|(c, _)| *c).collect();
            flavor.page_text(&columns.join(", "), &from_where, &order)
        }
    }
}

/// Orders two typed keys as the keyset queries do: integers numerically, text by bytes.
fn cmp_key(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Value::I64(x), Value::I64(y)) => x.cmp(y),
            (Value::Text(x), Value::Text(y)) => x
                .as_deref()
                .map(str::as_bytes)
                .cmp(&y.as_deref().map(str::as_bytes)),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            (Value::Time(x), Value::Time(y)) => x.cmp(y),
            _ => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// The smaller of the two sides' next page bounds (`None`: fewer than a page left on that
/// side; both `None`: the last page).
fn shared_bound(a: Option<Vec<Value>>, b: Option<Vec<Value>>) -> Option<Vec<Value>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if cmp_key(&a, &b) == Ordering::Greater {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    }
}

/// The raw texts of the elements of a flat JSON array: `[1, "a,\"b", null]` gives `1`,
/// `"a,\"b"` and `null`.
fn json_elements(row: &str) -> Vec<&str> {
    let row = row.trim();
    let inner = row
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(row);
    let mut out = Vec::new();
    let (mut start, mut in_string, mut escaped) = (0, false, false);
    // Byte-wise is safe: `"`, `\` and `,` never occur inside a multi-byte UTF-8 sequence.
    for (i, b) in inner.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            out.push(inner[start..i].trim());
            start = i + 1;
        }
    }
    let last = inner[start..].trim();
    if !(out.is_empty() && last.is_empty()) {
        out.push(last);
    }
    out
}

/// A JSON element as a value: `None` for `null`, a string's content, or the literal itself.
fn json_value(element: &str) -> Option<String> {
    if element == "null" {
        None
    } else if element.starts_with('"') {
        Some(serde_json::from_str(element).unwrap_or_else(|_| element.to_owned()))
    } else {
        Some(element.to_owned())
    }
}

/// One key column of a rendered row, ordered as the engines order keys: NULL, then numbers,
/// then text by bytes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KeyPart {
    Null,
    Int(i64),
    Text(String),
    Other(String),
}

impl KeyPart {
    fn of(element: &str) -> Self {
        match json_value(element) {
            None => Self::Null,
            Some(s) if element.starts_with('"') => Self::Text(s),
            Some(s) => s.parse().map(Self::Int).unwrap_or(Self::Other(s)),
        }
    }
}

/// One row of a page text, split into its elements.
struct PageRow<'t> {
    text: &'t str,
    values: Vec<&'t str>,
    key: Vec<KeyPart>,
}

fn page_rows<'t>(
    text: &'t str,
    key: &'t [(usize, ColType)],
) -> impl Iterator<Item = PageRow<'t>> + 't {
    text.split('\n').filter(|t| !t.is_empty()).map(|text| {
        let values = json_elements(text);
        let key = key
            .iter()
            .map(|(i, _)| KeyPart::of(values.get(*i).copied().unwrap_or("null")))
            .collect();
        PageRow { text, values, key }
    })
}

/// The row count and running checksum of one side of a table.
#[derive(Default)]
struct Checksum {
    rows: u64,
    hasher: Sha256,
}

impl Checksum {
    fn add(&mut self, page: &PageText) {
        if page.rows == 0 {
            return;
        }
        // Pages join with the same newline as rows, so the page size does not matter.
        if self.rows > 0 {
            self.hasher.update(b"\n");
        }
        self.hasher.update(page.text.as_bytes());
        self.rows += page.rows;
    }

    fn finish(self) -> (u64, String) {
        (self.rows, hex::encode(self.hasher.finalize()))
    }
}

/// The differing rows of one table found so far.
struct Differences {
    layout: &'static Layout,
    key: Vec<(usize, ColType)>,
    max_listed: usize,
    rows: u64,
    listed: Vec<RowDifference>,
}

impl Differences {
    fn new(layout: &'static Layout, max_listed: usize) -> Self {
        Self {
            layout,
            key: key_columns(layout),
            max_listed,
            rows: 0,
            listed: Vec::new(),
        }
    }

    fn list(&mut self, d: RowDifference) {
        if self.listed.len() < self.max_listed {
            self.listed.push(d);
        }
    }

    /// Merges the rows of one page's two texts by key (both are in key order).
    fn page(&mut self, live: &str, rebuilt: &str) {
        let key = self.key.clone();
        let mut l = page_rows(live, &key).peekable();
        let mut r = page_rows(rebuilt, &key).peekable();
        loop {
            let order = match (l.peek(), r.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.key.cmp(&b.key),
            };
            match order {
                Ordering::Equal => {
                    let (a, b) = (l.next().expect("peeked"), r.next().expect("peeked"));
                    if a.text != b.text {
                        self.changed(&a, &b);
                    }
                }
                Ordering::Less => {
                    let a = l.next().expect("peeked");
                    self.one_side(DifferenceKind::OnlyLive, &a);
                }
                Ordering::Greater => {
                    let b = r.next().expect("peeked");
                    self.one_side(DifferenceKind::OnlyRebuilt, &b);
                }
            }
        }
    }

    fn changed(&mut self, a: &PageRow, b: &PageRow) {
        self.rows += 1;
        let key = self.render_key(a);
        let mut listed = false;
        for (i, (column, _)) in self.layout.columns.iter().enumerate() {
            let (x, y) = (a.values.get(i), b.values.get(i));
            if x != y {
                listed = true;
                self.list(RowDifference {
                    key: key.clone(),
                    kind: DifferenceKind::Changed,
                    column: Some((*column).to_owned()),
                    live: x.and_then(|e| json_value(e)),
                    rebuilt: y.and_then(|e| json_value(e)),
                });
            }
        }
        if !listed {
            // Only the shapes differ (a column more or less): show both rows whole.
            self.list(RowDifference {
                key,
                kind: DifferenceKind::Changed,
                column: None,
                live: Some(a.text.to_owned()),
                rebuilt: Some(b.text.to_owned()),
            });
        }
    }

    fn one_side(&mut self, kind: DifferenceKind, row: &PageRow) {
        self.rows += 1;
        let rendered = Some(self.render_row(row));
        let (live, rebuilt) = match kind {
            DifferenceKind::OnlyLive => (rendered, None),
            _ => (None, rendered),
        };
        self.list(RowDifference {
            key: self.render_key(row),
            kind,
            column: None,
            live,
            rebuilt,
        });
    }

    fn render_key(&self, row: &PageRow) -> String {
        self.key
            .iter()
            .map(|(i, _)| {
                let value = row.values.get(*i).and_then(|e| json_value(e));
                format!(
                    "{}={}",
                    self.layout.columns[*i].0,
                    value.as_deref().unwrap_or("NULL")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn render_row(&self, row: &PageRow) -> String {
        self.layout
            .columns
            .iter()
            .zip(&row.values)
            .map(|((c, _), e)| format!("{c}={}", if *e == "null" { "NULL" } else { e }))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checksums and diffs one table's pages, on a blocking thread while the next pages are read.
struct PageChecker {
    live: Checksum,
    rebuilt: Checksum,
    differences: Differences,
}

impl PageChecker {
    fn check(&mut self, live: &PageText, rebuilt: &PageText) {
        if live.text != rebuilt.text {
            self.differences.page(&live.text, &rebuilt.text);
        }
        self.live.add(live);
        self.rebuilt.add(rebuilt);
    }
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
    use super::super::postgres::PostgresFlavor;
    use super::super::sqlite::SqliteFlavor;
    use super::*;

    fn layout(name: &str) -> &'static Layout {
        layouts().find(|l| l.name == name).unwrap()
    }

    #[test]
    fn every_key_column_is_a_column_of_its_layout() {
        for l in layouts() {
            assert!(!key_columns(l).is_empty(), "{}", l.name);
        }
    }

    #[test]
    fn the_legacy_view_reads_exactly_its_listed_inputs_in_both_dialects() {
        for migration in [
            include_str!("../../migrations/sqlite/readmodel/20261201000001_readmodel.sql"),
            include_str!("../../migrations/postgres/readmodel/20261201000001_readmodel.sql"),
        ] {
            let view = &migration[migration.find("CREATE VIEW legacy_spenden").unwrap()..];
            let view = &view[..view.find(';').unwrap()];
            let words: Vec<&str> = view.split_whitespace().collect();
            let read: Vec<&str> = words
                .windows(2)
                .filter(|w| matches!(w[0], "FROM" | "JOIN"))
                .map(|w| w[1])
                .collect();
            assert_eq!(read, LEGACY_SPENDEN_INPUTS, "{view}");
            assert_eq!(
                view_inputs(layout("legacy_spenden")),
                Some(LEGACY_SPENDEN_INPUTS)
            );
        }
    }

    #[test]
    fn keyset_queries_bound_pages_on_both_sides_in_byte_order() {
        let l = layout("donation_moderation_reason");
        let key = key_columns(l);
        let first = keyset_sql(l, &key, &SqliteFlavor, Shape::Rows, false, false);
        assert!(first.ends_with("ORDER BY donation_id, moderation_identifier, source LIMIT ?1"));
        let next = keyset_sql(l, &key, &PostgresFlavor, Shape::Bound, true, false);
        assert!(
            next.contains(
                "WHERE (donation_id, moderation_identifier COLLATE \"C\", source COLLATE \"C\") > ($1, $2, $3)"
            ),
            "{next}"
        );
        assert!(next.ends_with("LIMIT 1 OFFSET $4"), "{next}");
        let d = layout("donation");
        let text = keyset_sql(d, &key_columns(d), &SqliteFlavor, Shape::Text, true, true);
        assert!(
            text.starts_with(
                "SELECT count(*), group_concat(row_text, char(10)) FROM (SELECT json_array(id, created_at,"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("AS row_text FROM donation WHERE id > ?1 AND id <= ?2 ORDER BY id)"),
            "{text}"
        );
        let text = keyset_sql(
            d,
            &key_columns(d),
            &PostgresFlavor,
            Shape::Text,
            false,
            true,
        );
        assert!(text.contains("string_agg(json_build_array(id,"), "{text}");
        assert!(text.ends_with("FROM donation WHERE id <= $1"), "{text}");
    }

    #[test]
    fn typed_keys_order_numbers_numerically_and_text_by_bytes() {
        let k = |n: i64, s: &str| vec![Value::int(n), Value::text(s)];
        assert_eq!(cmp_key(&k(2, "a"), &k(10, "a")), Ordering::Less);
        assert_eq!(cmp_key(&k(1, "Z"), &k(1, "a")), Ordering::Less);
        assert_eq!(cmp_key(&k(1, "b"), &k(1, "b")), Ordering::Equal);
        assert_eq!(
            shared_bound(Some(k(5, "a")), Some(k(3, "z"))),
            Some(k(3, "z"))
        );
        assert_eq!(shared_bound(None, Some(k(3, "z"))), Some(k(3, "z")));
        assert_eq!(shared_bound(None, None), None);
    }

    #[test]
    fn rendered_keys_order_as_the_engines_do() {
        assert!(KeyPart::of("2") < KeyPart::of("10"));
        assert!(KeyPart::of("\"Z\"") < KeyPart::of("\"a\""));
        assert!(KeyPart::of("null") < KeyPart::of("-1"));
        assert!(KeyPart::of("7") < KeyPart::of("\"1\""));
    }

    #[test]
    fn json_rows_split_into_elements_whatever_the_strings_hold() {
        assert_eq!(
            json_elements(r#"[1,"a, \"b\" [c]",null,"",true]"#),
            vec!["1", r#""a, \"b\" [c]""#, "null", "\"\"", "true"]
        );
        assert_eq!(
            json_elements(r#"[1, "x\\", 12.500]"#),
            vec!["1", r#""x\\""#, "12.500"]
        );
        assert_eq!(json_elements("[]"), Vec::<&str>::new());
        assert_eq!(json_value(r#""a\nb""#).as_deref(), Some("a\nb"));
        assert_eq!(json_value("null"), None);
        assert_eq!(json_value(r#""NULL""#).as_deref(), Some("NULL"));
    }

    fn diff(live: &str, rebuilt: &str) -> (u64, Vec<RowDifference>) {
        let mut d = Differences::new(layout("donation_tracking"), 10);
        d.page(live, rebuilt);
        (d.rows, d.listed)
    }

    #[test]
    fn a_page_diff_names_changed_columns_and_rows_on_one_side() {
        let live = "[1,\"c\",\"k\"]\n[2,\"c\",\"x\"]\n[4,\"c\",\"k\"]";
        let rebuilt = "[1,\"c\",\"k\"]\n[2,\"c\",\"k\"]\n[3,\"c\",\"k\"]";
        let (rows, listed) = diff(live, rebuilt);
        assert_eq!(rows, 3);
        assert_eq!(
            listed[0],
            RowDifference {
                key: "id=2".into(),
                kind: DifferenceKind::Changed,
                column: Some("keyword".into()),
                live: Some("x".into()),
                rebuilt: Some("k".into()),
            }
        );
        assert_eq!(
            (listed[1].kind, listed[1].key.as_str()),
            (DifferenceKind::OnlyRebuilt, "id=3")
        );
        assert_eq!(
            listed[1].rebuilt.as_deref(),
            Some(r#"id=3, campaign="c", keyword="k""#)
        );
        assert_eq!(
            (listed[2].kind, listed[2].key.as_str()),
            (DifferenceKind::OnlyLive, "id=4")
        );
    }

    #[test]
    fn a_page_diff_tells_null_from_empty_and_from_the_text_null() {
        let (rows, listed) = diff(
            "[1,null,\"\"]\n[2,\"NULL\",\"a\"]",
            "[1,\"\",\"NULL\"]\n[2,null,\"a\"]",
        );
        assert_eq!(rows, 2);
        let values: Vec<_> = listed
            .iter()
            .map(|d| {
                (
                    d.column.as_deref().unwrap(),
                    d.live.clone(),
                    d.rebuilt.clone(),
                )
            })
            .collect();
        assert_eq!(
            values,
            vec![
                ("campaign", None, Some(String::new())),
                ("keyword", Some(String::new()), Some("NULL".into())),
                ("campaign", Some("NULL".into()), None),
            ]
        );
    }

    #[test]
    fn the_checksum_does_not_depend_on_the_page_size() {
        let page = |rows: u64, text: &str| PageText {
            rows,
            text: text.to_owned(),
        };
        let mut one = Checksum::default();
        one.add(&page(3, "[1]\n[2]\n[3]"));
        let mut three = Checksum::default();
        for p in [page(1, "[1]"), page(0, ""), page(2, "[2]\n[3]")] {
            three.add(&p);
        }
        assert_eq!(one.finish(), three.finish());
    }
}
