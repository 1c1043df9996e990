//! The read model at a glance, for the status console: rows by each independent state column,
//! the flags, contribution-tracking links and conflicts, and every projector's checkpoint. The
//! queries are written once in SQL that SQLite, PostgreSQL and MariaDB all accept (`COUNT` of a
//! `CASE` rather than `SUM`, which MariaDB answers as DECIMAL), and run in one snapshot so the
//! figures agree with each other.

use serde::Serialize;

use super::backend::ProjectionError;
use super::read_model::ReadModel;
use super::rows::{ColType, Value};

/// How many rows of `table` hold `value` in `column`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateCount {
    /// The table.
    pub table: &'static str,
    /// The state column (or flag, shown as `is_exported` = `true`/`false`).
    pub column: &'static str,
    /// The state.
    pub value: String,
    /// Rows in that state.
    pub rows: i64,
}

/// A projector's last applied position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointRow {
    /// The projector's name.
    pub projector: String,
    /// Its position; `None` before its first event.
    pub position: Option<i64>,
}

/// Everything the console shows of the read model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// Rows by state, table by table, column by column, states sorted.
    pub states: Vec<StateCount>,
    /// Every projector's checkpoint.
    pub checkpoints: Vec<CheckpointRow>,
}

/// The independent state columns whose values are counted, by table.
const STATE_COLUMNS: [(&str, &str); 4] = [
    ("donation", "payment_state"),
    ("donation", "deletion_state"),
    ("donation", "moderation_state"),
    ("donation", "payment_method"),
];

/// Boolean flags counted as `true`/`false`.
const FLAGS: [(&str, &str); 3] = [
    ("donation", "is_exported"),
    ("donation", "is_scrubbed"),
    ("donation", "comment_is_public"),
];

impl ReadModel {
    /// The read model's rows by state and its checkpoints, from one snapshot.
    pub async fn overview(&self) -> Result<Overview, ProjectionError> {
        let mut tx = self.backend.snapshot().await?;
        // Text read back as text in every dialect (MariaDB answers binary-collated columns
        // as VARBINARY).
        let flavor = self.backend.flavor();
        let text_of = |column: &str| flavor.typed(column, ColType::Text);
        let mut states = Vec::new();
        for (table, column) in STATE_COLUMNS {
            let sql = format!(
                "SELECT {} AS value, COUNT(*) AS n FROM {table} GROUP BY {column} ORDER BY {column}",
                text_of(column)
            );
            let rows = tx
                .fetch(&sql, &[], &[("value", ColType::Text), ("n", ColType::I64)])
                .await?;
            for row in rows {
                states.push(StateCount {
                    table,
                    column,
                    value: text(&row[0]),
                    rows: row[1].as_i64().unwrap_or(0),
                });
            }
        }
        for (table, column) in FLAGS {
            let sql = format!(
                "SELECT COUNT(CASE WHEN {column} THEN 1 END) AS yes, \
                 COUNT(CASE WHEN {column} THEN NULL ELSE 1 END) AS no FROM {table}"
            );
            let rows = tx
                .fetch(&sql, &[], &[("yes", ColType::I64), ("no", ColType::I64)])
                .await?;
            if let Some(row) = rows.first() {
                for (value, count) in [("true", &row[0]), ("false", &row[1])] {
                    states.push(StateCount {
                        table,
                        column,
                        value: value.to_owned(),
                        rows: count.as_i64().unwrap_or(0),
                    });
                }
            }
        }
        let rows = tx
            .fetch(
                "SELECT COUNT(CASE WHEN contribution_id IS NULL THEN NULL ELSE 1 END) AS linked, \
                 COUNT(CASE WHEN contribution_id IS NULL THEN 1 END) AS unlinked \
                 FROM contribution_tracking",
                &[],
                &[("linked", ColType::I64), ("unlinked", ColType::I64)],
            )
            .await?;
        if let Some(row) = rows.first() {
            for (value, count) in [("linked", &row[0]), ("not linked", &row[1])] {
                states.push(StateCount {
                    table: "contribution_tracking",
                    column: "contribution_id",
                    value: value.to_owned(),
                    rows: count.as_i64().unwrap_or(0),
                });
            }
        }
        let rows = tx
            .fetch(
                &format!(
                    "SELECT {} AS value, COUNT(*) AS n FROM contribution_tracking_conflict \
                     GROUP BY kind ORDER BY kind",
                    text_of("kind")
                ),
                &[],
                &[("value", ColType::Text), ("n", ColType::I64)],
            )
            .await?;
        for row in rows {
            states.push(StateCount {
                table: "contribution_tracking_conflict",
                column: "kind",
                value: text(&row[0]),
                rows: row[1].as_i64().unwrap_or(0),
            });
        }
        let rows = tx
            .fetch(
                &format!(
                    "SELECT {} AS projector, position AS position FROM projector_checkpoint \
                     ORDER BY projector",
                    text_of("projector")
                ),
                &[],
                &[("projector", ColType::Text), ("position", ColType::I64)],
            )
            .await?;
        tx.finish().await?;
        let checkpoints = rows
            .into_iter()
            .map(|row| CheckpointRow {
                projector: text(&row[0]),
                position: row[1].as_i64(),
            })
            .collect();
        Ok(Overview {
            states,
            checkpoints,
        })
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Text(Some(s)) => s.clone(),
        Value::Text(None) => String::new(),
        other => format!("{other:?}"),
    }
}

impl Overview {
    /// The rows of `table` whose `column` holds `value` (0 when none).
    pub fn count(&self, table: &str, column: &str, value: &str) -> i64 {
        self.states
            .iter()
            .find(|s| s.table == table && s.column == column && s.value == value)
            .map_or(0, |s| s.rows)
    }
}
