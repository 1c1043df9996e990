//! The request context every mutating call carries, checked and turned into the intake's
//! request metadata; and the error answers shared by the calls.

use prost::Message;
use tonic::Status;

use super::auth::Principal;
use super::error::to_status;
use crate::intake::{IntakeError, RequestMeta};
use crate::proto::api;
use crate::store::{Actor, ActorKind};

/// INVALID_ARGUMENT naming `field` and `rule`.
pub(super) fn invalid(field: &str, rule: &str) -> Status {
    to_status(&IntakeError::field(field, rule))
}

/// The request context as intake metadata; the actor kind must be one the client may act as.
pub(super) fn meta<M: Message>(
    principal: &Principal,
    context: Option<&api::RequestContext>,
    request: &M,
) -> Result<RequestMeta, Status> {
    let context =
        context.ok_or_else(|| invalid("context", "is required (request_id, actor, source)"))?;
    let actor = context
        .actor
        .as_ref()
        .ok_or_else(|| invalid("context.actor", "is required"))?;
    let kind = match api::ActorKind::try_from(actor.kind) {
        Ok(api::ActorKind::Frontend) => ActorKind::Frontend,
        Ok(api::ActorKind::FocUser) => ActorKind::FocUser,
        Ok(api::ActorKind::Provider) => ActorKind::Provider,
        Ok(api::ActorKind::System) => ActorKind::System,
        Ok(api::ActorKind::Unspecified) | Err(_) => {
            return Err(invalid(
                "context.actor.kind",
                "must be FRONTEND, FOC_USER, PROVIDER or SYSTEM",
            ))
        }
    };
    if !principal.may_act_as(kind) {
        tracing::warn!(client = %principal.name, actor_kind = kind.as_str(), "refused: actor kind not allowed");
        return Err(Status::permission_denied(format!(
            "client `{}` may not act as {}",
            principal.name,
            kind.as_str()
        )));
    }
    let id = if actor.id.is_empty() {
        principal.name.clone()
    } else {
        actor.id.clone()
    };
    RequestMeta::new(
        &context.request_id,
        Actor { kind, id },
        &context.source,
        &request.encode_to_vec(),
    )
    .map_err(|e| to_status(&e))
}

/// The status of an intake error.
pub(super) fn status(e: IntakeError) -> Status {
    to_status(&e)
}
