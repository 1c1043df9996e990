//! The `Streams` service: each call authenticates its caller, turns the request into the
//! log's terms (`write.rs`, `read.rs`), and answers in the shapes clients expect — an append's
//! wrong expected version in-band with old and new fields filled, BatchAppend's errors as a
//! `google.rpc.Status` per batch, everything else as a status with `exception` trailers.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Router;
use tonic::transport::Server;
use tonic::{Request, Response, Status, Streaming};

use super::append_session::AppendSessions;
use super::cluster::Cluster;
use super::errors::Refusal;
use super::write::{self, Appended, Deletion, Proposed, MAX_APPEND_SIZE};
use super::{convert, read, Port};
use crate::proto::kurrentdb::event_store::client::gossip::gossip_server::GossipServer;
use crate::proto::kurrentdb::event_store::client::persistent_subscriptions::persistent_subscriptions_server::PersistentSubscriptionsServer;
use crate::proto::kurrentdb::event_store::client::server_features::server_features_server::ServerFeaturesServer;
use crate::proto::kurrentdb::event_store::client::streams::streams_server::{Streams, StreamsServer};
use crate::proto::kurrentdb::kurrentdb::protocol::v2::streams::streams_service_server::StreamsServiceServer;
use crate::proto::kurrentdb::event_store::client::streams::{
    append_req, append_resp, batch_append_req, batch_append_resp, delete_req, delete_resp,
    tombstone_req, tombstone_resp, AppendReq, AppendResp, BatchAppendReq, BatchAppendResp,
    DeleteReq, DeleteResp, ReadReq, TombstoneReq, TombstoneResp,
};
use crate::proto::kurrentdb::event_store::client::{
    AllStreamPosition, Empty, StreamIdentifier, Uuid as UuidMessage,
};
use crate::store::{CurrentRevision, ExpectedRevision};

/// Every service of the port on one router.
pub fn router(builder: Server, port: Arc<Port>) -> Router {
    let cluster = Cluster { port: port.clone() };
    // KurrentDB answers plain HTTP on the same port; `GET /health/live` (204 while the node
    // is up) is what the clients' test harnesses and container health checks wait for.
    let health = axum::Router::new().route(
        "/health/live",
        axum::routing::get(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    let mut builder = builder.accept_http1(true);
    builder
        .add_routes(tonic::service::Routes::from(health))
        .add_service(StreamsServiceServer::new(AppendSessions {
            port: port.clone(),
        }))
        .add_service(StreamsServer::new(StreamsService { port }))
        .add_service(ServerFeaturesServer::new(cluster.clone()))
        .add_service(GossipServer::new(cluster.clone()))
        .add_service(PersistentSubscriptionsServer::new(cluster))
}

struct StreamsService {
    port: Arc<Port>,
}

impl StreamsService {
    fn caller<T>(
        &self,
        method: &'static str,
        request: &Request<T>,
    ) -> Result<super::access::Caller, Status> {
        self.port.called(method);
        self.port.users.caller(request.metadata()).map_err(|r| {
            self.port.refused(method, &r);
            r.status()
        })
    }

    fn refuse(&self, method: &'static str, refusal: Refusal) -> Status {
        self.port.refused(method, &refusal);
        refusal.status()
    }

    /// A soft delete or a tombstone: the position of the event that records it.
    async fn remove(
        &self,
        method: &'static str,
        caller: &super::access::Caller,
        stream: Option<StreamIdentifier>,
        expected: Result<ExpectedRevision, Refusal>,
        how: Deletion,
    ) -> Result<u64, Status> {
        let outcome = match (convert::stream_name(stream.as_ref()), expected) {
            (Ok(stream), Ok(expected)) => {
                write::delete(
                    self.port.log.as_ref(),
                    &self.port.metadata_streams,
                    caller,
                    &stream,
                    expected,
                    how,
                )
                .await
            }
            (Err(r), _) | (_, Err(r)) => Err(r),
        };
        outcome.map_err(|r| self.refuse(method, r))
    }
}

/// A proposed event from its message parts.
fn proposed(
    id: Option<&UuidMessage>,
    metadata: &HashMap<String, String>,
    custom_metadata: Vec<u8>,
    data: Vec<u8>,
) -> Result<Proposed, Refusal> {
    let (event_type, content_type) = convert::proposed_type(metadata)?;
    Ok(Proposed {
        id: convert::parse_uuid(id)?,
        event_type,
        content_type,
        custom_metadata,
        data,
    })
}

/// Adds an event's size to a running total, refusing past the limit before reading further.
fn tally(total: &mut usize, event: &Proposed) -> Result<(), Refusal> {
    *total += event.data.len() + event.custom_metadata.len();
    if *total > MAX_APPEND_SIZE as usize {
        return Err(Refusal::MaximumAppendSizeExceeded(MAX_APPEND_SIZE));
    }
    Ok(())
}

/// The four expectation forms of a write request, each request type with its own oneof.
macro_rules! expectation {
    ($oneof:path, $value:expr) => {{
        use $oneof as E;
        match $value {
            Some(E::Revision(r)) => Ok(ExpectedRevision::Exact(r)),
            Some(E::NoStream(_)) => Ok(ExpectedRevision::NoStream),
            Some(E::Any(_)) => Ok(ExpectedRevision::Any),
            Some(E::StreamExists(_)) => Ok(ExpectedRevision::StreamExists),
            None => Err(missing_expectation()),
        }
    }};
}

fn missing_expectation() -> Refusal {
    Refusal::BadRequest(
        "missing expected_stream_revision: `revision`, `no_stream`, `any` or `stream_exists`"
            .into(),
    )
}

/// The in-band wrong-expected-version answer of `Append`, with the old and new fields.
fn wrong_version(expected: ExpectedRevision, actual: CurrentRevision) -> AppendResp {
    use append_resp::wrong_expected_version::{
        CurrentRevisionOption as Current, CurrentRevisionOption2060 as Current2060,
        ExpectedRevisionOption as Expected, ExpectedRevisionOption2060 as Expected2060,
    };
    let (current, current_2060) = match actual {
        CurrentRevision::NoStream => (
            Current::CurrentNoStream(Empty {}),
            Current2060::NoStream2060(Empty {}),
        ),
        CurrentRevision::At(r) => (
            Current::CurrentRevision(r),
            Current2060::CurrentRevision2060(r),
        ),
    };
    let (expected_new, expected_2060) = match expected {
        ExpectedRevision::Any => (
            Expected::ExpectedAny(Empty {}),
            Expected2060::Any2060(Empty {}),
        ),
        ExpectedRevision::StreamExists => (
            Expected::ExpectedStreamExists(Empty {}),
            Expected2060::StreamExists2060(Empty {}),
        ),
        ExpectedRevision::NoStream => (
            Expected::ExpectedNoStream(Empty {}),
            Expected2060::ExpectedRevision2060(u64::MAX),
        ),
        ExpectedRevision::Exact(r) => (
            Expected::ExpectedRevision(r),
            Expected2060::ExpectedRevision2060(r),
        ),
    };
    AppendResp {
        result: Some(append_resp::Result::WrongExpectedVersion(
            append_resp::WrongExpectedVersion {
                current_revision_option_20_6_0: Some(current_2060),
                expected_revision_option_20_6_0: Some(expected_2060),
                current_revision_option: Some(current),
                expected_revision_option: Some(expected_new),
            },
        )),
    }
}

fn append_success(done: Appended) -> AppendResp {
    use append_resp::success::{CurrentRevisionOption, PositionOption};
    AppendResp {
        result: Some(append_resp::Result::Success(append_resp::Success {
            current_revision_option: Some(match done.revision {
                CurrentRevision::NoStream => CurrentRevisionOption::NoStream(Empty {}),
                CurrentRevision::At(r) => CurrentRevisionOption::CurrentRevision(r),
            }),
            position_option: Some(match done.position {
                Some(p) => PositionOption::Position(append_resp::Position {
                    commit_position: p,
                    prepare_position: p,
                }),
                None => PositionOption::NoPosition(Empty {}),
            }),
        })),
    }
}

/// Reads an `Append` call's messages: the options first, then the proposed events.
async fn read_append(
    mut messages: Streaming<AppendReq>,
) -> Result<(String, ExpectedRevision, Vec<Proposed>), Refusal> {
    let bad = |e: Status| Refusal::BadRequest(format!("invalid request: {}", e.message()));
    let first = messages.message().await.map_err(bad)?;
    let Some(AppendReq {
        content: Some(append_req::Content::Options(options)),
    }) = first
    else {
        return Err(Refusal::BadRequest(
            "invalid request: the first message of an append must be its options".into(),
        ));
    };
    let stream = convert::stream_name(options.stream_identifier.as_ref())?;
    let expected = expectation!(
        append_req::options::ExpectedStreamRevision,
        options.expected_stream_revision
    )?;
    let mut events = Vec::new();
    let mut total = 0usize;
    while let Some(message) = messages.message().await.map_err(bad)? {
        match message.content {
            Some(append_req::Content::ProposedMessage(m)) => {
                let event = proposed(m.id.as_ref(), &m.metadata, m.custom_metadata, m.data)?;
                tally(&mut total, &event)?;
                events.push(event);
            }
            _ => {
                return Err(Refusal::BadRequest(
                    "invalid request: after the options, an append takes proposed messages only"
                        .into(),
                ))
            }
        }
    }
    Ok((stream, expected, events))
}

type BatchResponses = ReceiverStream<Result<BatchAppendResp, Status>>;

#[tonic::async_trait]
impl Streams for StreamsService {
    type ReadStream = read::Responses;
    type BatchAppendStream = BatchResponses;

    async fn read(&self, request: Request<ReadReq>) -> Result<Response<Self::ReadStream>, Status> {
        let caller = self.caller("Read", &request)?;
        match read::start(self.port.clone(), &caller, request.into_inner()).await {
            Ok(responses) => Ok(Response::new(responses)),
            Err(refusal) => Err(self.refuse("Read", refusal)),
        }
    }

    async fn append(
        &self,
        request: Request<Streaming<AppendReq>>,
    ) -> Result<Response<AppendResp>, Status> {
        let caller = self.caller("Append", &request)?;
        let (stream, expected, events) = read_append(request.into_inner())
            .await
            .map_err(|r| self.refuse("Append", r))?;
        let count = events.len() as u64;
        match write::append(
            self.port.log.as_ref(),
            &self.port.metadata_streams,
            &caller,
            &stream,
            expected,
            events,
        )
        .await
        {
            Ok(done) => {
                self.port
                    .metrics
                    .count("ledger_kurrentdb_events_appended_total", &[], count);
                Ok(Response::new(append_success(done)))
            }
            Err(refusal) => {
                self.port.refused("Append", &refusal);
                match refusal {
                    Refusal::WrongExpectedVersion {
                        expected, actual, ..
                    } => Ok(Response::new(wrong_version(expected, actual))),
                    other => Err(other.status()),
                }
            }
        }
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        let caller = self.caller("Delete", &request)?;
        let options = request.into_inner().options.unwrap_or_default();
        let expected = expectation!(
            delete_req::options::ExpectedStreamRevision,
            options.expected_stream_revision
        );
        let p = self
            .remove(
                "Delete",
                &caller,
                options.stream_identifier,
                expected,
                Deletion::Soft,
            )
            .await?;
        Ok(Response::new(DeleteResp {
            position_option: Some(delete_resp::PositionOption::Position(
                delete_resp::Position {
                    commit_position: p,
                    prepare_position: p,
                },
            )),
        }))
    }

    async fn tombstone(
        &self,
        request: Request<TombstoneReq>,
    ) -> Result<Response<TombstoneResp>, Status> {
        let caller = self.caller("Tombstone", &request)?;
        let options = request.into_inner().options.unwrap_or_default();
        let expected = expectation!(
            tombstone_req::options::ExpectedStreamRevision,
            options.expected_stream_revision
        );
        let p = self
            .remove(
                "Tombstone",
                &caller,
                options.stream_identifier,
                expected,
                Deletion::Tombstone,
            )
            .await?;
        Ok(Response::new(TombstoneResp {
            position_option: Some(tombstone_resp::PositionOption::Position(
                tombstone_resp::Position {
                    commit_position: p,
                    prepare_position: p,
                },
            )),
        }))
    }

    async fn batch_append(
        &self,
        request: Request<Streaming<BatchAppendReq>>,
    ) -> Result<Response<Self::BatchAppendStream>, Status> {
        let caller = self.caller("BatchAppend", &request)?;
        let mut requests = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let port = self.port.clone();
        tokio::spawn(async move {
            let mut pending: HashMap<Vec<u8>, Batch> = HashMap::new();
            loop {
                let message = match requests.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        let refusal =
                            Refusal::BadRequest(format!("invalid request: {}", e.message()));
                        port.refused("BatchAppend", &refusal);
                        let _ = tx.send(Err(refusal.status())).await;
                        break;
                    }
                };
                let answer = batch_step(&port, &caller, &mut pending, message).await;
                if let Some(answer) = answer {
                    if tx.send(Ok(answer)).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// A batch being received: its options (from its first request) and its events so far, or the
/// refusal it already earned.
struct Batch {
    correlation_id: Option<UuidMessage>,
    options: batch_append_req::Options,
    events: Vec<Proposed>,
    size: usize,
    refused: Option<Refusal>,
}

fn batch_expected(
    option: Option<&batch_append_req::options::ExpectedStreamPosition>,
) -> Result<ExpectedRevision, Refusal> {
    use batch_append_req::options::ExpectedStreamPosition as E;
    match option {
        Some(E::StreamPosition(r)) => Ok(ExpectedRevision::Exact(*r)),
        Some(E::NoStream(())) => Ok(ExpectedRevision::NoStream),
        Some(E::Any(())) => Ok(ExpectedRevision::Any),
        Some(E::StreamExists(())) => Ok(ExpectedRevision::StreamExists),
        None => Err(missing_expectation()),
    }
}

/// How long a batch may still take, from its options: `deadline` is relative (as the server
/// reads it; the Rust client puts an absolute time there, which reads as decades), the older
/// `deadline_21_10_0` is a point in time. Zero when it has passed; `None` without a deadline.
fn batch_deadline(options: &batch_append_req::Options) -> Option<std::time::Duration> {
    use batch_append_req::options::DeadlineOption;
    let left = match options.deadline_option.as_ref()? {
        DeadlineOption::Deadline(d) => {
            let nanos = i128::from(d.seconds) * 1_000_000_000 + i128::from(d.nanos);
            u64::try_from(nanos.max(0)).unwrap_or(u64::MAX)
        }
        DeadlineOption::Deadline21100(at) => {
            let at = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
            let now = chrono::Utc::now()
                .timestamp_nanos_opt()
                .map_or(i128::MAX, i128::from);
            u64::try_from((at - now).max(0)).unwrap_or(u64::MAX)
        }
    };
    // Decades of deadline are no deadline; a timer that far out helps no one.
    Some(std::time::Duration::from_nanos(left).min(std::time::Duration::from_secs(86_400)))
}

/// Takes one request of a BatchAppend call; answers when a batch is final.
async fn batch_step(
    port: &Port,
    caller: &super::access::Caller,
    pending: &mut HashMap<Vec<u8>, Batch>,
    message: BatchAppendReq,
) -> Option<BatchAppendResp> {
    let key = message
        .correlation_id
        .as_ref()
        .map(prost::Message::encode_to_vec)
        .unwrap_or_default();
    let batch = pending.entry(key.clone()).or_insert_with(|| Batch {
        correlation_id: message.correlation_id.clone(),
        options: message.options.clone().unwrap_or_default(),
        events: Vec::new(),
        size: 0,
        refused: message.options.is_none().then(|| {
            Refusal::BadRequest(
                "invalid request: a batch's first request carries its options".into(),
            )
        }),
    });
    if batch.refused.is_none() {
        for m in message.proposed_messages {
            match proposed(m.id.as_ref(), &m.metadata, m.custom_metadata, m.data)
                .and_then(|event| tally(&mut batch.size, &event).map(|()| event))
            {
                Ok(event) => batch.events.push(event),
                Err(refusal) => {
                    batch.refused = Some(refusal);
                    batch.events.clear();
                    break;
                }
            }
        }
    }
    if !message.is_final {
        return None;
    }
    let batch = pending.remove(&key)?;
    let stream_identifier = batch.options.stream_identifier.clone();
    let echo = batch.options.expected_stream_position.map(|e| {
        use batch_append_req::options::ExpectedStreamPosition as E;
        use batch_append_resp::ExpectedStreamPosition as R;
        match e {
            E::StreamPosition(r) => R::StreamPosition(r),
            E::NoStream(()) => R::NoStream(()),
            E::Any(()) => R::Any(()),
            E::StreamExists(()) => R::StreamExists(()),
        }
    });
    let count = batch.events.len() as u64;
    let outcome = match batch.refused {
        Some(refusal) => Err(refusal),
        None => match (
            convert::stream_name(stream_identifier.as_ref()),
            batch_expected(batch.options.expected_stream_position.as_ref()),
        ) {
            (Ok(stream), Ok(expected)) => match batch_deadline(&batch.options) {
                None => {
                    write::append(
                        port.log.as_ref(),
                        &port.metadata_streams,
                        caller,
                        &stream,
                        expected,
                        batch.events,
                    )
                    .await
                }
                Some(left) if left.is_zero() => Err(Refusal::Timeout(format!(
                    "the batch's deadline for `{stream}` had passed when it arrived"
                ))),
                Some(left) => tokio::time::timeout(
                    left,
                    write::append(
                        port.log.as_ref(),
                        &port.metadata_streams,
                        caller,
                        &stream,
                        expected,
                        batch.events,
                    ),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(Refusal::Timeout(format!(
                        "the append to `{stream}` did not end within the batch's deadline"
                    )))
                }),
            },
            (Err(r), _) | (_, Err(r)) => Err(r),
        },
    };
    let result = match outcome {
        Ok(done) => {
            port.metrics
                .count("ledger_kurrentdb_events_appended_total", &[], count);
            use batch_append_resp::success::{CurrentRevisionOption, PositionOption};
            batch_append_resp::Result::Success(batch_append_resp::Success {
                current_revision_option: Some(match done.revision {
                    CurrentRevision::NoStream => CurrentRevisionOption::NoStream(()),
                    CurrentRevision::At(r) => CurrentRevisionOption::CurrentRevision(r),
                }),
                position_option: Some(match done.position {
                    Some(p) => PositionOption::Position(AllStreamPosition {
                        commit_position: p,
                        prepare_position: p,
                    }),
                    None => PositionOption::NoPosition(()),
                }),
            })
        }
        Err(refusal) => {
            port.refused("BatchAppend", &refusal);
            batch_append_resp::Result::Error(refusal.batch_status())
        }
    };
    Some(BatchAppendResp {
        correlation_id: batch.correlation_id,
        result: Some(result),
        stream_identifier,
        expected_stream_position: echo,
    })
}
