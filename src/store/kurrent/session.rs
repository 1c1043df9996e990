//! The KurrentDB backend's writes: every append, of one stream or several, is one protocol v2
//! `AppendSession` (KurrentDB 25.1+, and the ledger's own KurrentDB port), so several streams
//! are written atomically and refusals come back with their details (which stream conflicted,
//! at which revision; which event id was written where). The v1 client crate has no such call.
//! With a `+discover` connection string or several nodes, sessions go to the leader the seeds'
//! gossip names.

use ::kurrentdb::ClientSettings;
use base64::Engine as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;

use crate::kurrentdb::append_session::{
    current_from_wire, expected_to_wire, store_error_of, METADATA_PROPERTY,
};
use crate::proto::kurrentdb::event_store::client::gossip::{
    gossip_client::GossipClient, member_info,
};
use crate::proto::kurrentdb::event_store::client::Empty;
use crate::proto::kurrentdb::kurrentdb::protocol::v2::streams::{
    streams_service_client::StreamsServiceClient, AppendRecord, AppendRequest, SchemaFormat,
    SchemaInfo,
};
use crate::store::{
    validate_atomic, AppendResult, ContentType, CurrentRevision, StoreError, StreamAppend,
};

/// The longest an append session may take before it counts as failed (transient: a retry
/// with the same event ids is answered by the first write if that one landed). Without it, an
/// append to a node that died mid-call could wait for ever.
pub const APPEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a seed may take to answer `Gossip.Read`.
const GOSSIP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Where append sessions go.
enum Target {
    /// The one node of the connection string.
    Node(StreamsServiceClient<Channel>),
    /// The leader of a cluster, found by asking the seeds' `Gossip.Read` (a `+discover`
    /// connection string, or several nodes); forgotten after a failed session, so the next
    /// one asks again (the leader may have changed).
    Leader {
        settings: Box<ClientSettings>,
        leader: tokio::sync::Mutex<Option<StreamsServiceClient<Channel>>>,
    },
}

/// The connection of append sessions: to the one node of the connection string, or to the
/// cluster's leader.
#[derive(Clone)]
pub struct Sessions {
    target: std::sync::Arc<Target>,
    authorization: Option<MetadataValue<Ascii>>,
}

/// A lazy channel to `host:port` with the connection string's TLS settings.
fn channel(
    settings: &ClientSettings,
    host: &str,
    port: u32,
    timeout: std::time::Duration,
) -> Result<Channel, StoreError> {
    let scheme = if settings.is_secure_mode_enabled() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{host}:{port}"))
        .map_err(|e| invalid_url(format!("{host}:{port} is not a node address: {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(timeout);
    if settings.is_secure_mode_enabled() {
        endpoint = endpoint
            .tls_config(tls_config(settings, host)?)
            .map_err(|e| invalid_url(format!("TLS: {e}")))?;
    }
    Ok(endpoint.connect_lazy())
}

fn invalid_url(rule: String) -> StoreError {
    StoreError::InvalidInput {
        field: "event_log_url",
        rule,
    }
}

/// `Basic base64(login:password)` for the connection string's user. The crate keeps the
/// credentials' fields private but serialises them (as byte arrays).
fn authorization(settings: &ClientSettings) -> Result<Option<MetadataValue<Ascii>>, StoreError> {
    let Some(credentials) = settings.default_authenticated_user() else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Plain {
        login: Vec<u8>,
        password: Vec<u8>,
    }
    let plain: Plain = serde_json::to_value(credentials)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            invalid_url(format!(
                "cannot read the user of the connection string: {e}"
            ))
        })?;
    let mut pair = plain.login;
    pair.push(b':');
    pair.extend_from_slice(&plain.password);
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    MetadataValue::try_from(value)
        .map(Some)
        .map_err(|_| invalid_url("the user cannot be sent as a header".into()))
}

/// The TLS settings of a secure connection string: the server's certificate checked against
/// `tlsCAFile` when given, else against the system's roots (which honour `SSL_CERT_FILE`), and
/// the client certificate of `userCertFile`/`userKeyFile` when given. `tlsVerifyCert=false` is
/// refused: the log's writes are not sent to a server whose identity is unchecked.
fn tls_config(settings: &ClientSettings, domain: &str) -> Result<ClientTlsConfig, StoreError> {
    if !settings.is_tls_certificate_verification_enabled() {
        return Err(invalid_url(
            "tlsVerifyCert=false: the log backend always checks the server's certificate; give \
             its CA as `tlsCAFile=<path>` instead"
                .into(),
        ));
    }
    let read = |what: &str, path: &str| {
        std::fs::read(path).map_err(|e| invalid_url(format!("cannot read {what} {path}: {e}")))
    };
    let mut tls = ClientTlsConfig::new().domain_name(domain);
    tls = match settings.tls_ca_file() {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read("tlsCAFile", ca)?)),
        None => tls.with_native_roots(),
    };
    if let Some((cert, key)) = settings.user_certificate() {
        tls = tls.identity(Identity::from_pem(
            read("userCertFile", cert)?,
            read("userKeyFile", key)?,
        ));
    }
    Ok(tls)
}

impl Sessions {
    /// Prepares the connection: lazily to the one node of `settings`, or, for a `+discover`
    /// connection string or several nodes, to the leader their gossip names (asked at the
    /// first append); over TLS when the connection string asks for it.
    pub fn new(settings: &ClientSettings) -> Result<Self, StoreError> {
        let hosts = settings.hosts();
        let host = hosts
            .first()
            .ok_or_else(|| invalid_url("names no host".into()))?;
        let target = if settings.is_dns_discovery_enabled() || hosts.len() > 1 {
            // Every seed's channel is checked now, so a bad address fails at start-up.
            for seed in hosts {
                channel(settings, &seed.host, seed.port, GOSSIP_TIMEOUT)?;
            }
            Target::Leader {
                settings: Box::new(settings.clone()),
                leader: tokio::sync::Mutex::new(None),
            }
        } else {
            Target::Node(StreamsServiceClient::new(channel(
                settings,
                &host.host,
                host.port,
                APPEND_TIMEOUT,
            )?))
        };
        Ok(Self {
            target: std::sync::Arc::new(target),
            authorization: authorization(settings)?,
        })
    }

    /// The client of the node appends go to now.
    async fn client(&self) -> Result<StreamsServiceClient<Channel>, StoreError> {
        let (settings, leader) = match self.target.as_ref() {
            Target::Node(client) => return Ok(client.clone()),
            Target::Leader { settings, leader } => (settings, leader),
        };
        let mut leader = leader.lock().await;
        if let Some(client) = leader.as_ref() {
            return Ok(client.clone());
        }
        let mut failures = Vec::new();
        for seed in settings.hosts() {
            let mut gossip =
                GossipClient::new(channel(settings, &seed.host, seed.port, GOSSIP_TIMEOUT)?);
            let mut request = tonic::Request::new(Empty {});
            if let Some(value) = &self.authorization {
                request
                    .metadata_mut()
                    .insert("authorization", value.clone());
            }
            let members = match gossip.read(request).await {
                Ok(info) => info.into_inner().members,
                Err(status) => {
                    failures.push(format!("{}:{}: {}", seed.host, seed.port, status.message()));
                    continue;
                }
            };
            let found = members
                .into_iter()
                .find(|m| m.is_alive && m.state == member_info::VNodeState::Leader as i32);
            match found.and_then(|m| m.http_end_point) {
                Some(at) => {
                    let client = StreamsServiceClient::new(channel(
                        settings,
                        &at.address,
                        at.port,
                        APPEND_TIMEOUT,
                    )?);
                    *leader = Some(client.clone());
                    return Ok(client);
                }
                None => failures.push(format!("{}:{}: names no live leader", seed.host, seed.port)),
            }
        }
        Err(StoreError::Remote {
            message: format!(
                "no KurrentDB leader found through the seeds ({})",
                failures.join("; ")
            ),
            transient: true,
        })
    }

    /// After a failed session: ask the seeds for the leader again next time.
    async fn forget_leader(&self) {
        if let Target::Leader { leader, .. } = self.target.as_ref() {
            *leader.lock().await = None;
        }
    }

    /// Appends every part atomically.
    pub async fn append(&self, parts: Vec<StreamAppend>) -> Result<Vec<AppendResult>, StoreError> {
        let metadata = validate_atomic(&parts)?;
        let mut requests = Vec::with_capacity(parts.len());
        for (part, metadata) in parts.into_iter().zip(metadata) {
            let mut records = Vec::with_capacity(part.events.len());
            for (event, bytes) in part.events.into_iter().zip(metadata) {
                let mut record = AppendRecord {
                    record_id: Some(event.id.to_string()),
                    schema: Some(SchemaInfo {
                        format: match event.metadata.content_type() {
                            ContentType::Json => SchemaFormat::Json,
                            ContentType::Binary => SchemaFormat::Bytes,
                        } as i32,
                        name: event.event_type,
                        id: None,
                    }),
                    data: event.payload,
                    ..Default::default()
                };
                if !bytes.is_empty() {
                    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidInput {
                        field: "metadata",
                        rule: "must be UTF-8 text on the KurrentDB backend".into(),
                    })?;
                    record.properties.insert(
                        METADATA_PROPERTY.to_owned(),
                        prost_types::Value {
                            kind: Some(prost_types::value::Kind::StringValue(text)),
                        },
                    );
                }
                records.push(record);
            }
            requests.push(AppendRequest {
                stream: part.stream,
                records,
                expected_revision: Some(expected_to_wire(part.expected)),
            });
        }
        let mut request = tonic::Request::new(futures::stream::iter(requests));
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        let response = match self.client().await?.append_session(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let error = refused(&status);
                if error.is_transient() {
                    self.forget_leader().await;
                }
                return Err(error);
            }
        };
        Ok(response
            .output
            .into_iter()
            .map(|out| AppendResult {
                next_expected_revision: match current_from_wire(out.stream_revision) {
                    CurrentRevision::At(r) => r,
                    CurrentRevision::NoStream => 0,
                },
                position: out.position.unwrap_or(response.position).max(0) as u64,
            })
            .collect())
    }
}

/// The store error of a refused session: the one its detail names, else by its code.
pub fn refused(status: &tonic::Status) -> StoreError {
    if let Some(e) = store_error_of(status) {
        return e;
    }
    let transient = matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled
    );
    let message = match status.code() {
        Code::PermissionDenied | Code::Unauthenticated => format!(
            "access denied ({}): the connection string's user needs write grants on every \
             category the ledger writes",
            status.message()
        ),
        Code::Unimplemented => "the server has no multi-stream append (protocol v2 \
                                AppendSession, KurrentDB 25.1+)"
            .to_owned(),
        _ => format!("{:?}: {}", status.code(), status.message()),
    };
    StoreError::Remote { message, transient }
}
