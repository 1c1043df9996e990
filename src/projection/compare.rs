//! Table-by-table comparison of two read models (the live one and a scratch rebuild) in
//! key-ordered pages, so memory stays bounded whatever the table sizes.
//!
//! Each side is read inside one read transaction ([`Snapshot`]): a consistent snapshot even
//! while a projector keeps writing. Pages come by keyset pagination on the table's key
//! (`WHERE (k1, k2) > (…) ORDER BY k1, k2 LIMIT n`, text keys in byte order on both dialects),
//! and the two ordered streams are merged like a sort-merge join: equal keys compare column by
//! column, a key on one side only is a missing row. Every row also feeds a SHA-256 checksum of
//! its rendered values (length-prefixed, so no separator can be forged by a value).

use std::cmp::Ordering;
use std::collections::VecDeque;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Sqlite, Transaction};

use super::rows::{self, ColType, Layout, Value};
use super::{db_error, postgres, sqlite, Backend, ProjectionError, ReadModel};
use crate::store::Position;

/// Rows per page by default: peak memory is about three pages per side (about 100 MB with
/// `donation` rows of this size), throughput hardly grows with larger pages.
pub const DEFAULT_PAGE_SIZE: usize = 2_000;
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
    /// The live value (the whole rendered row for [`DifferenceKind::OnlyLive`]).
    pub live: Option<String>,
    /// The rebuilt value (the whole rendered row for [`DifferenceKind::OnlyRebuilt`]).
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
    /// SHA-256 (hex) over the live rows in key order.
    pub live_checksum: String,
    /// SHA-256 (hex) over the rebuilt rows in key order.
    pub rebuilt_checksum: String,
    /// Rows that differ (changed or on one side only), all counted.
    pub differing_rows: u64,
    /// The first differences, up to the listing cap.
    pub differences: Vec<RowDifference>,
    /// Wall time of the comparison, in seconds.
    pub seconds: f64,
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
    /// Rows fetched per page and side.
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

fn layouts() -> impl Iterator<Item = &'static Layout> {
    rows::TABLES.iter().chain([&rows::LEGACY_SPENDEN])
}

enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A read transaction on a read model: every page read through it sees the same snapshot.
pub struct Snapshot {
    tx: Tx,
}

impl Snapshot {
    /// Opens a read-only snapshot. SQLite takes it at the first read (WAL readers are
    /// isolated); PostgreSQL runs `REPEATABLE READ, READ ONLY`.
    pub async fn begin(read_model: &ReadModel) -> Result<Self, ProjectionError> {
        let tx = match &read_model.backend {
            Backend::Sqlite { pool, .. } => Tx::Sqlite(pool.begin().await.map_err(db_error)?),
            Backend::Postgres { pool, .. } => {
                let mut tx = pool.begin().await.map_err(db_error)?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                Tx::Postgres(tx)
            }
        };
        Ok(Self { tx })
    }

    /// The checkpoint of `projector` as this snapshot sees it (the first read fixes the
    /// SQLite snapshot).
    pub async fn checkpoint(
        &mut self,
        projector: &str,
    ) -> Result<Option<Position>, ProjectionError> {
        let position: Option<Option<i64>> = match &mut self.tx {
            Tx::Sqlite(tx) => {
                sqlx::query_scalar("SELECT position FROM projector_checkpoint WHERE projector = ?1")
                    .bind(projector)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_error)?
            }
            Tx::Postgres(tx) => {
                sqlx::query_scalar("SELECT position FROM projector_checkpoint WHERE projector = $1")
                    .bind(projector)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_error)?
            }
        };
        Ok(position.flatten().map(|p| p as Position))
    }

    /// Ends the snapshot.
    pub async fn finish(self) -> Result<(), ProjectionError> {
        match self.tx {
            Tx::Sqlite(tx) => tx.rollback().await.map_err(db_error),
            Tx::Postgres(tx) => tx.rollback().await.map_err(db_error),
        }
    }

    /// Up to `limit` rows of `layout` with a key after `after`, in key order.
    async fn page(
        &mut self,
        layout: &Layout,
        key: &[(usize, ColType)],
        after: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>, ProjectionError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match &mut self.tx {
            Tx::Sqlite(tx) => {
                let sql = page_sql(layout, key, after.is_some(), Dialect::Sqlite);
                let mut q = sqlx::query(&sql);
                for v in after.unwrap_or_default() {
                    q = match v {
                        Value::I64(v) => q.bind(*v),
                        Value::Text(v) => q.bind(v.clone()),
                        Value::Bool(v) => q.bind(*v),
                        Value::Time(v) => q.bind(*v),
                    };
                }
                let rows = q.bind(limit).fetch_all(&mut **tx).await.map_err(db_error)?;
                rows.iter()
                    .map(|r| sqlite::read(r, layout.columns))
                    .collect()
            }
            Tx::Postgres(tx) => {
                let sql = page_sql(layout, key, after.is_some(), Dialect::Postgres);
                let mut q = sqlx::query(&sql);
                for v in after.unwrap_or_default() {
                    q = match v {
                        Value::I64(v) => q.bind(*v),
                        Value::Text(v) => q.bind(v.clone()),
                        Value::Bool(v) => q.bind(*v),
                        Value::Time(v) => q.bind(*v),
                    };
                }
                let rows = q.bind(limit).fetch_all(&mut **tx).await.map_err(db_error)?;
                rows.iter()
                    .map(|r| postgres::read(r, layout.columns))
                    .collect()
            }
        }
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
                .page(layout, &key, after.as_deref(), DEFAULT_PAGE_SIZE)
                .await?;
            let done = page.len() < DEFAULT_PAGE_SIZE;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
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

/// The keyset page query: columns in layout order, text keys compared in byte order (SQLite's
/// default; PostgreSQL's `"C"` collation) so that both dialects order exactly as [`cmp_key`].
fn page_sql(layout: &Layout, key: &[(usize, ColType)], after: bool, dialect: Dialect) -> String {
    let columns: Vec<String> = layout
        .columns
        .iter()
        .map(|(c, t)| match (dialect, t) {
            (Dialect::Postgres, ColType::I64) => format!("{c}::BIGINT"),
            (Dialect::Postgres, ColType::Text) => format!("{c}::TEXT"),
            _ => (*c).to_owned(),
        })
        .collect();
    let key_exprs: Vec<String> = key
        .iter()
        .map(|(i, t)| {
            let c = layout.columns[*i].0;
            match (dialect, t) {
                (Dialect::Postgres, ColType::Text) => format!("{c} COLLATE \"C\""),
                _ => c.to_owned(),
            }
        })
        .collect();
    let placeholder = |n: usize| match dialect {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    };
    let mut sql = format!("SELECT {} FROM {}", columns.join(", "), layout.name);
    if after {
        let params: Vec<String> = (1..=key.len()).map(placeholder).collect();
        if key.len() == 1 {
            sql.push_str(&format!(" WHERE {} > {}", key_exprs[0], params[0]));
        } else {
            sql.push_str(&format!(
                " WHERE ({}) > ({})",
                key_exprs.join(", "),
                params.join(", ")
            ));
        }
    }
    let limit = placeholder(if after { key.len() + 1 } else { 1 });
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", key_exprs.join(", ")));
    sql
}

/// Orders two keys as the page queries do: integers numerically, text by bytes, NULL first.
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

fn render_key(layout: &Layout, key: &[(usize, ColType)], row: &[Value]) -> String {
    key.iter()
        .map(|(i, _)| format!("{}={}", layout.columns[*i].0, row[*i].render()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_row(layout: &Layout, row: &[Value]) -> String {
    layout
        .columns
        .iter()
        .zip(row)
        .map(|((c, _), v)| format!("{c}={}", v.render()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Feeds one row into a table checksum in a canonical, dialect-neutral binary form: per value
/// a tag (NULL, integer, text, boolean, time), then its fixed-size bytes or, for text, its
/// length and bytes; then a row terminator. Times are UTC microseconds, as the dumps render
/// them.
fn hash_row(hasher: &mut Sha256, row: &[Value]) {
    for v in row {
        match v {
            Value::I64(None) | Value::Text(None) | Value::Bool(None) | Value::Time(None) => {
                hasher.update([0u8])
            }
            Value::I64(Some(n)) => {
                hasher.update([1u8]);
                hasher.update(n.to_le_bytes());
            }
            Value::Text(Some(t)) => {
                hasher.update([2u8]);
                hasher.update((t.len() as u64).to_le_bytes());
                hasher.update(t.as_bytes());
            }
            Value::Bool(Some(b)) => hasher.update([3u8, u8::from(*b)]),
            Value::Time(Some(t)) => {
                hasher.update([4u8]);
                hasher.update(t.timestamp_micros().to_le_bytes());
            }
        }
    }
    hasher.update([0x1e]);
}

/// Orders two rows by their key columns, without copying them.
fn cmp_rows(a: &[Value], b: &[Value], key: &[(usize, ColType)]) -> Ordering {
    for (i, _) in key {
        let o = cmp_key(std::slice::from_ref(&a[*i]), std::slice::from_ref(&b[*i]));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// What a side's reader task sends: pages of one table in key order, then the table's totals.
enum Message {
    Page(Vec<Vec<Value>>),
    End { rows: u64, checksum: String },
}

/// Reads every compared table of one side in key-ordered pages, checksumming as it goes, and
/// sends the pages down a channel of one page: the database reads of both sides and the merge
/// overlap, and at most three pages per side are in memory.
async fn read_side(
    mut snapshot: Snapshot,
    page_size: usize,
    tx: tokio::sync::mpsc::Sender<Message>,
) -> Result<Snapshot, ProjectionError> {
    for layout in layouts() {
        let key = key_columns(layout);
        let mut hasher = Sha256::new();
        let mut rows = 0u64;
        let mut after: Option<Vec<Value>> = None;
        loop {
            let page = snapshot
                .page(layout, &key, after.as_deref(), page_size)
                .await?;
            let done = page.len() < page_size;
            for row in &page {
                hash_row(&mut hasher, row);
            }
            rows += page.len() as u64;
            after = page.last().map(|r| key_of(r, &key));
            if !page.is_empty() && tx.send(Message::Page(page)).await.is_err() {
                // The merge stopped (it failed): nothing more to do.
                return Ok(snapshot);
            }
            if done {
                break;
            }
        }
        let checksum = hex::encode(hasher.finalize());
        if tx.send(Message::End { rows, checksum }).await.is_err() {
            return Ok(snapshot);
        }
    }
    Ok(snapshot)
}

/// The merge's view of one side: the current page and the channel the next ones come from.
struct Side {
    rx: tokio::sync::mpsc::Receiver<Message>,
    page: VecDeque<Vec<Value>>,
    end: Option<(u64, String)>,
}

impl Side {
    /// Makes sure a row is buffered unless the table is finished; true when it received a page.
    async fn fill(&mut self) -> bool {
        if !self.page.is_empty() || self.end.is_some() {
            return false;
        }
        match self.rx.recv().await {
            Some(Message::Page(p)) => {
                self.page = p.into();
                true
            }
            Some(Message::End { rows, checksum }) => {
                self.end = Some((rows, checksum));
                false
            }
            // The reader failed; its error is reported when it is joined.
            None => {
                self.end = Some((0, String::new()));
                false
            }
        }
    }
}

/// Merges one table's pages from both sides. `progress` is called after every page.
async fn merge_table(
    layout: &Layout,
    live: &mut Side,
    rebuilt: &mut Side,
    options: CompareOptions,
    progress: &mut (dyn FnMut(&str, u64) + Send),
) -> TableComparison {
    let started = std::time::Instant::now();
    let key = key_columns(layout);
    let (mut seen_live, mut seen_rebuilt) = (0u64, 0u64);
    let mut differing_rows = 0u64;
    let mut differences = Vec::new();
    let mut list = |d: RowDifference| {
        if differences.len() < options.max_listed {
            differences.push(d);
        }
    };
    loop {
        let (a, b) = tokio::join!(live.fill(), rebuilt.fill());
        if a || b {
            progress(layout.name, seen_live.max(seen_rebuilt));
        }
        let order = match (live.page.front(), rebuilt.page.front()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => cmp_rows(a, b, &key),
        };
        match order {
            Ordering::Equal => {
                let a = live.page.pop_front().expect("front");
                let b = rebuilt.page.pop_front().expect("front");
                seen_live += 1;
                seen_rebuilt += 1;
                if a != b {
                    differing_rows += 1;
                    let row_key = render_key(layout, &key, &a);
                    for (((column, _), x), y) in layout.columns.iter().zip(&a).zip(&b) {
                        if x != y {
                            list(RowDifference {
                                key: row_key.clone(),
                                kind: DifferenceKind::Changed,
                                column: Some((*column).to_owned()),
                                live: Some(x.render()),
                                rebuilt: Some(y.render()),
                            });
                        }
                    }
                }
            }
            Ordering::Less => {
                let a = live.page.pop_front().expect("front");
                seen_live += 1;
                differing_rows += 1;
                list(RowDifference {
                    key: render_key(layout, &key, &a),
                    kind: DifferenceKind::OnlyLive,
                    column: None,
                    live: Some(render_row(layout, &a)),
                    rebuilt: None,
                });
            }
            Ordering::Greater => {
                let b = rebuilt.page.pop_front().expect("front");
                seen_rebuilt += 1;
                differing_rows += 1;
                list(RowDifference {
                    key: render_key(layout, &key, &b),
                    kind: DifferenceKind::OnlyRebuilt,
                    column: None,
                    live: None,
                    rebuilt: Some(render_row(layout, &b)),
                });
            }
        }
    }
    let (live_rows, live_checksum) = live.end.take().unwrap_or_default();
    let (rebuilt_rows, rebuilt_checksum) = rebuilt.end.take().unwrap_or_default();
    TableComparison {
        table: layout.name.to_owned(),
        live_rows,
        rebuilt_rows,
        live_checksum,
        rebuilt_checksum,
        differing_rows,
        differences,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Compares every table and the legacy view between two snapshots, in key-ordered pages read
/// by one task per side. `progress(table, rows)` is called after each page; each finished
/// table is passed to `done`. Returns the snapshots for the caller to finish.
pub async fn compare_snapshots(
    live: Snapshot,
    rebuilt: Snapshot,
    options: CompareOptions,
    progress: &mut (dyn FnMut(&str, u64) + Send),
    done: &mut (dyn FnMut(&TableComparison) + Send),
) -> Result<(Vec<TableComparison>, Snapshot, Snapshot), ProjectionError> {
    let page_size = options.page_size.max(1);
    let (live_tx, live_rx) = tokio::sync::mpsc::channel(1);
    let (rebuilt_tx, rebuilt_rx) = tokio::sync::mpsc::channel(1);
    let live_reader = tokio::spawn(read_side(live, page_size, live_tx));
    let rebuilt_reader = tokio::spawn(read_side(rebuilt, page_size, rebuilt_tx));
    let mut live = Side {
        rx: live_rx,
        page: VecDeque::new(),
        end: None,
    };
    let mut rebuilt = Side {
        rx: rebuilt_rx,
        page: VecDeque::new(),
        end: None,
    };
    let mut out = Vec::new();
    let mut complete = true;
    for layout in layouts() {
        let table = merge_table(layout, &mut live, &mut rebuilt, options, progress).await;
        // A real checksum is never empty: an empty one means that side's reader stopped.
        if table.live_checksum.is_empty() || table.rebuilt_checksum.is_empty() {
            complete = false;
            break;
        }
        done(&table);
        out.push(table);
    }
    drop((live, rebuilt));
    let join = |r: Result<Result<Snapshot, ProjectionError>, tokio::task::JoinError>| {
        r.map_err(|e| ProjectionError::Rebuild(format!("compare reader failed: {e}")))?
    };
    let live = join(live_reader.await)?;
    let rebuilt = join(rebuilt_reader.await)?;
    if !complete {
        return Err(ProjectionError::Rebuild(
            "a compare reader stopped before the last table".into(),
        ));
    }
    Ok((out, live, rebuilt))
}

/// Compares two read models table by table (each read in one snapshot).
pub async fn compare(
    live: &ReadModel,
    rebuilt: &ReadModel,
    options: CompareOptions,
) -> Result<Vec<TableComparison>, ProjectionError> {
    let a = Snapshot::begin(live).await?;
    let b = Snapshot::begin(rebuilt).await?;
    let (out, a, b) = compare_snapshots(a, b, options, &mut |_, _| {}, &mut |_| {}).await?;
    a.finish().await?;
    b.finish().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
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
    fn page_queries_are_keyset_queries_in_byte_order() {
        let l = layout("donation_moderation_reason");
        let key = key_columns(l);
        let first = page_sql(l, &key, false, Dialect::Sqlite);
        assert!(first.ends_with("ORDER BY donation_id, moderation_identifier, source LIMIT ?1"));
        let next = page_sql(l, &key, true, Dialect::Postgres);
        assert!(
            next.contains(
                "WHERE (donation_id, moderation_identifier COLLATE \"C\", source COLLATE \"C\") > ($1, $2, $3)"
            ),
            "{next}"
        );
        assert!(next.ends_with("LIMIT $4"), "{next}");
        let d = layout("donation");
        let next = page_sql(d, &key_columns(d), true, Dialect::Sqlite);
        assert!(
            next.contains("WHERE id > ?1 ORDER BY id LIMIT ?2"),
            "{next}"
        );
    }

    #[test]
    fn keys_order_numbers_numerically_and_text_by_bytes() {
        let k = |n: i64, s: &str| vec![Value::int(n), Value::text(s)];
        assert_eq!(cmp_key(&k(2, "a"), &k(10, "a")), Ordering::Less);
        assert_eq!(cmp_key(&k(1, "Z"), &k(1, "a")), Ordering::Less);
        assert_eq!(cmp_key(&k(1, "b"), &k(1, "b")), Ordering::Equal);
    }

    #[test]
    fn checksums_tell_null_from_the_text_null_and_cannot_be_forged_by_separators() {
        let digest = |rows: &[Vec<Value>]| {
            let mut h = Sha256::new();
            for r in rows {
                hash_row(&mut h, r);
            }
            hex::encode(h.finalize())
        };
        assert_ne!(
            digest(&[vec![Value::Text(None)]]),
            digest(&[vec![Value::text("NULL")]])
        );
        assert_ne!(
            digest(&[vec![Value::text("a | b"), Value::text("c")]]),
            digest(&[vec![Value::text("a"), Value::text("b | c")]])
        );
    }
}
