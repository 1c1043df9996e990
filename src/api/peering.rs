//! `PeeringService`: the generated `ledger.api.v1.Peering` trait, the CiviShare peering
//! administration of `ledger peer …` over gRPC. Every call needs `peers:admin`; the rules
//! (names, URLs, change types, secrets) are the CiviShare store's, so the CLI and these calls
//! refuse the same input with the same rule. Nothing here appends to the log.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::auth::{Authenticator, Scope};
use super::refusal::{log_refusal, RecentRefusals};
use crate::civishare::peers::{generate_secret, parse_types, PeerReport};
use crate::civishare::{CivishareError, CivishareStore, NewPeering};
use crate::metrics::{catalog, Metrics};
use crate::privacy::KeyStore;
use crate::proto::api::{self, peering_server};

/// The gRPC peering administration over a CiviShare store and the key store its secrets are
/// sealed with.
#[derive(Clone)]
pub struct PeeringService {
    store: CivishareStore,
    keys: KeyStore,
    auth: Arc<Authenticator>,
    metrics: Metrics,
    refusals: RecentRefusals,
}

impl PeeringService {
    /// The service over these stores, admitting the clients of `auth` that hold
    /// `peers:admin`; refusals are recorded with the ledger service's.
    pub fn new(
        store: CivishareStore,
        keys: KeyStore,
        auth: Arc<Authenticator>,
        metrics: Metrics,
        refusals: RecentRefusals,
    ) -> Self {
        Self {
            store,
            keys,
            auth,
            metrics,
            refusals,
        }
    }

    /// Authorises, runs `f`, counts the call by method and code.
    async fn call<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        request: Request<Req>,
        f: F,
    ) -> Result<Response<Resp>, Status>
    where
        F: FnOnce(Req) -> Fut,
        Fut: Future<Output = Result<Resp, CivishareError>>,
    {
        let started = Instant::now();
        let result = match self.auth.authorize(&request, Scope::PeersAdmin, method) {
            Ok(principal) => {
                let result = f(request.into_inner()).await.map_err(|e| to_status(&e));
                if result.is_ok() {
                    tracing::info!(method, client = %principal.name, "peering changed or read");
                }
                result
            }
            Err(status) => Err(status),
        };
        if let Err(status) = &result {
            log_refusal(method, status);
            self.refusals.record(method, status);
        }
        let code = format!(
            "{:?}",
            result.as_ref().map_or_else(Status::code, |_| Code::Ok)
        );
        self.metrics.count(
            catalog::GRPC_REQUESTS,
            &[("method", method), ("code", &code)],
            1,
        );
        self.metrics.observe(
            catalog::GRPC_DURATION,
            &[("method", method)],
            started.elapsed().as_secs_f64(),
        );
        result.map(Response::new)
    }
}

/// The request field a store rule names (the store speaks the CLI's flags).
fn request_field(field: &'static str) -> &'static str {
    match field {
        "--node" => "node",
        "--url" => "url",
        "--outgoing" => "outgoing",
        "--incoming" => "incoming",
        "--name" => "name",
        other => other,
    }
}

/// The status of a CiviShare error: a broken rule names its field; failures of this node are
/// logged and answered opaquely.
fn to_status(error: &CivishareError) -> Status {
    match error {
        CivishareError::Invalid { field, rule } => {
            let field = request_field(field);
            let mut details = ErrorDetails::new();
            details.add_bad_request_violation(field, rule.clone());
            Status::with_error_details(Code::InvalidArgument, format!("{field}: {rule}"), details)
        }
        CivishareError::NoLocalNode | CivishareError::RenamePeered { .. } => {
            Status::failed_precondition(error.to_string())
        }
        CivishareError::NoPeering(_) => Status::not_found(error.to_string()),
        CivishareError::PeeringExists(_) => Status::already_exists(error.to_string()),
        CivishareError::Malformed(_)
        | CivishareError::Unsigned
        | CivishareError::UnknownSender(_)
        | CivishareError::BadSignature
        | CivishareError::Stale { .. }
        | CivishareError::Replayed(_)
        | CivishareError::Database(_)
        | CivishareError::Migrate(_)
        | CivishareError::Privacy(_)
        | CivishareError::Store(_) => {
            tracing::error!(error = %crate::telemetry::format_chain(error), "peering call failed");
            Status::internal("internal error; the ledger logged the cause")
        }
    }
}

/// The change types of a request field: each element a type or `all`.
fn types(
    field: &'static str,
    list: &[String],
) -> Result<std::collections::BTreeSet<String>, CivishareError> {
    if let Some(bad) = list.iter().find(|t| t.contains(',')) {
        return Err(CivishareError::Invalid {
            field,
            rule: format!("names {bad:?}: one change type per element, no commas"),
        });
    }
    parse_types(field, &list.join(","))
}

fn peer(p: &crate::civishare::Peering) -> api::Peer {
    api::Peer {
        node: p.node_name.clone(),
        url: p.endpoint.clone(),
        outgoing: p.outgoing.iter().cloned().collect(),
        incoming: p.incoming.iter().cloned().collect(),
        created_at: p.created_at.clone(),
    }
}

fn peer_status(report: PeerReport) -> api::PeerStatus {
    api::PeerStatus {
        node: report.peering.node_name,
        outgoing: report.queue.by_status.into_iter().collect(),
        undelivered: report.queue.undelivered,
        oldest_undelivered: report.queue.oldest_undelivered.unwrap_or_default(),
        last_error: report.queue.last_error.unwrap_or_default(),
        incoming: report.incoming.into_iter().collect(),
    }
}

#[tonic::async_trait]
impl peering_server::Peering for PeeringService {
    async fn get_local_node(
        &self,
        request: Request<api::GetLocalNodeRequest>,
    ) -> Result<Response<api::LocalNode>, Status> {
        self.call("GetLocalNode", request, |_| async {
            Ok(api::LocalNode {
                name: self.store.local_node().await?.unwrap_or_default(),
            })
        })
        .await
    }

    async fn set_local_node(
        &self,
        request: Request<api::SetLocalNodeRequest>,
    ) -> Result<Response<api::LocalNode>, Status> {
        self.call("SetLocalNode", request, |r| async move {
            self.store.set_local_node(&r.name).await?;
            Ok(api::LocalNode { name: r.name })
        })
        .await
    }

    async fn add_peer(
        &self,
        request: Request<api::AddPeerRequest>,
    ) -> Result<Response<api::AddPeerResponse>, Status> {
        self.call("AddPeer", request, |r| async move {
            let generated = r.secret.is_empty();
            let secret = if generated {
                generate_secret()
            } else {
                r.secret
            };
            let new = NewPeering {
                node_name: r.node,
                endpoint: r.url,
                secret: SecretString::from(secret),
                outgoing: types("outgoing", &r.outgoing)?,
                incoming: types("incoming", &r.incoming)?,
                history: r.history,
            };
            let peering = self.store.add_peering(&self.keys, &new).await?;
            Ok(api::AddPeerResponse {
                peer: Some(peer(&peering)),
                generated_secret: if generated {
                    new.secret.expose_secret().to_owned()
                } else {
                    String::new()
                },
            })
        })
        .await
    }

    async fn list_peers(
        &self,
        request: Request<api::ListPeersRequest>,
    ) -> Result<Response<api::ListPeersResponse>, Status> {
        self.call("ListPeers", request, |_| async {
            Ok(api::ListPeersResponse {
                local_node: self.store.local_node().await?.unwrap_or_default(),
                peers: self.store.peerings().await?.iter().map(peer).collect(),
            })
        })
        .await
    }

    async fn remove_peer(
        &self,
        request: Request<api::RemovePeerRequest>,
    ) -> Result<Response<api::RemovePeerResponse>, Status> {
        self.call("RemovePeer", request, |r| async move {
            self.store.remove_peering(&self.keys, &r.node).await?;
            Ok(api::RemovePeerResponse {})
        })
        .await
    }

    async fn get_peer_status(
        &self,
        request: Request<api::GetPeerStatusRequest>,
    ) -> Result<Response<api::GetPeerStatusResponse>, Status> {
        self.call("GetPeerStatus", request, |_| async {
            Ok(api::GetPeerStatusResponse {
                peers: self
                    .store
                    .peer_reports()
                    .await?
                    .into_iter()
                    .map(peer_status)
                    .collect(),
            })
        })
        .await
    }
}
