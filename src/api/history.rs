//! `GetHistory`: a donation's timeline across its streams.

use tonic::{Request, Response, Status};

use super::context::status;
use super::service::LedgerService;
use crate::intake::Method;
use crate::proto::api;

#[tracing::instrument(skip_all)]
pub(super) async fn get_history(
    svc: &LedgerService,
    request: Request<api::GetHistoryRequest>,
) -> Result<Response<api::GetHistoryResponse>, Status> {
    svc.call(Method::GetHistory, request, |_, req| async move {
        let entries = svc.intake.history(req.donation_id).await.map_err(status)?;
        Ok(history_response(entries))
    })
    .await
}

/// A timeline as the API answers it (a donation's or a membership application's).
pub(super) fn history_response(
    entries: Vec<crate::audit::HistoryEntry>,
) -> api::GetHistoryResponse {
    api::GetHistoryResponse {
        entries: entries
            .into_iter()
            .map(|e| api::HistoryEntry {
                occurred_at: Some(crate::domain::types::to_timestamp(e.occurred_at)),
                position: e.position,
                stream: e.stream,
                event_type: e.event_type,
                actor_kind: e.actor_kind,
                actor: e.actor,
                source: e.source,
                changes: e
                    .changes
                    .into_iter()
                    .map(|c| api::HistoryChange {
                        field: c.field,
                        before: c.before,
                        after: c.after,
                    })
                    .collect(),
            })
            .collect(),
    }
}
