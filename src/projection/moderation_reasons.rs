//! The open-reason tables of both contexts (`donation_moderation_reason`,
//! `membership_moderation_reason`, the same columns: owner id, identifier, source): loaded
//! into the domain's [`ModerationState`] per owner, and replaced wholesale for the owners
//! whose reasons a batch changed.

use std::collections::{BTreeSet, HashMap};

use super::backend::{db_error, ProjectionError, ReasonTable, Session};
use super::rows::Value;
use crate::domain::moderation::{ModerationIdentifier, ModerationReason, ModerationState};

/// Loads the open reasons of the owners `ids` from `table` into `into`, one state per owner
/// (an owner without rows gets no entry).
pub(super) async fn load(
    session: &mut dyn Session,
    table: ReasonTable,
    ids: &[i64],
    into: &mut HashMap<i64, ModerationState>,
) -> Result<(), ProjectionError> {
    if ids.is_empty() {
        return Ok(());
    }
    for v in session.load(table.load(), ids).await? {
        let owner = v[0].as_i64().unwrap_or_default();
        let code = v[1].as_text().unwrap_or_default();
        let identifier = code.parse::<ModerationIdentifier>().map_err(|_| {
            db_error(sqlx::Error::Decode(
                format!("{} holds an unknown identifier {code:?}", table.name()).into(),
            ))
        })?;
        let source = v[2].as_text().unwrap_or_default();
        into.entry(owner)
            .or_default()
            .open_reasons
            .insert(ModerationReason::new(identifier, source));
    }
    Ok(())
}

/// Replaces the rows of every owner in `owners` with its open reasons (none: its rows go).
pub(super) async fn replace<'a>(
    session: &mut dyn Session,
    table: ReasonTable,
    owners: impl IntoIterator<Item = (i64, &'a BTreeSet<ModerationReason>)>,
) -> Result<(), ProjectionError> {
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for (id, reasons) in owners {
        ids.push(id);
        rows.extend(reasons.iter().map(|r| {
            vec![
                Value::int(id),
                Value::text(r.identifier_name()),
                Value::text(&r.source),
            ]
        }));
    }
    if ids.is_empty() {
        return Ok(());
    }
    session.delete_reasons(table, &ids).await?;
    session.write(table.write(), rows).await
}
