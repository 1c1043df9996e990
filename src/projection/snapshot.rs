//! One side of `verify`'s comparison: a read-only snapshot of a read model ([`Snapshot`]) and
//! the keyset queries that read a table from it in key-ordered pages, each page rendered by
//! the engine into one text (see `compare.rs` for the method).

use super::backend::{ProjectionError, ReadTx, SqlFlavor};
use super::compare::DEFAULT_PAGE_SIZE;
use super::diff::PageText;
use super::read_model::{checkpoint_of, checkpoint_query, CHECKPOINT_COLUMN};
use super::rows::{ColType, Layout, Value};
use super::ReadModel;
use crate::store::Position;

/// What a page query returns: the row count and the rows' texts (NULL for no row).
const PAGE_COLUMNS: &[(&str, ColType)] = &[("rows", ColType::I64), ("text", ColType::Text)];

/// A read transaction on a read model: every page read through it sees the same snapshot.
pub struct Snapshot {
    tx: Box<dyn ReadTx>,
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
        let sql = checkpoint_query(self.tx.flavor());
        let rows = self
            .tx
            .fetch(&sql, &[Value::text(projector)], CHECKPOINT_COLUMN)
            .await?;
        Ok(checkpoint_of(&rows))
    }

    /// Ends the snapshot.
    pub async fn finish(self) -> Result<(), ProjectionError> {
        self.tx.finish().await
    }

    /// The stored definition of view `name` (`None` when there is no such view).
    pub(super) async fn view_definition(
        &mut self,
        name: &str,
    ) -> Result<Option<String>, ProjectionError> {
        let sql = self.tx.flavor().view_definition_sql();
        let rows = self
            .tx
            .fetch(sql, &[Value::text(name)], &[("definition", ColType::Text)])
            .await?;
        Ok(rows.into_iter().next().and_then(|r| match &r[0] {
            Value::Text(definition) => definition.clone(),
            _ => None,
        }))
    }

    /// The rows of table or view `name`.
    pub(super) async fn count(&mut self, name: &str) -> Result<u64, ProjectionError> {
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
    pub(super) async fn bound(
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
    pub(super) async fn page_text(
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
        let page = self.tx.fetch(&sql, &binds, PAGE_COLUMNS).await?;
        let row = page.first();
        Ok(PageText {
            rows: row
                .and_then(|r| r[0].as_i64())
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or_default(),
            text: row
                .and_then(|r| r[1].as_text())
                .unwrap_or_default()
                .to_owned(),
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
pub(super) fn key_columns(layout: &Layout) -> Vec<(usize, ColType)> {
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

pub(super) fn key_of(row: &[Value], key: &[(usize, ColType)]) -> Vec<Value> {
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

#[cfg(test)]
mod tests {
    use super::super::postgres::PostgresFlavor;
    use super::super::sqlite::SqliteFlavor;
    use super::*;
    use crate::projection::compare::layout;

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
}
