//! The KurrentDB backend's writes: every append, of one stream or several, is one protocol v2
//! `AppendSession` (KurrentDB 25.1+, and the ledger's own KurrentDB port), so several streams
//! are written atomically and refusals come back with their details (which stream conflicted,
//! at which revision; which event id was written where). The v1 client crate has no such call.

use ::kurrentdb::ClientSettings;
use base64::Engine as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;

use crate::kurrentdb::append_session::{
    current_from_wire, expected_to_wire, store_error_of, METADATA_PROPERTY,
};
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

/// A connection for append sessions to the first node of the connection string.
#[derive(Clone)]
pub struct Sessions {
    client: StreamsServiceClient<Channel>,
    authorization: Option<MetadataValue<Ascii>>,
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
    /// Prepares a lazy connection to the first host of `settings` (the leader of a cluster
    /// given by its nodes; a `+discover` seed must then be the leader, see the README), over
    /// TLS when the connection string asks for it.
    pub fn new(settings: &ClientSettings) -> Result<Self, StoreError> {
        let host = settings
            .hosts()
            .first()
            .ok_or_else(|| invalid_url("names no host".into()))?;
        let uri = settings.to_uri(host);
        let mut endpoint = Channel::builder(uri)
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(APPEND_TIMEOUT);
        if settings.is_secure_mode_enabled() {
            endpoint = endpoint
                .tls_config(tls_config(settings, &host.host)?)
                .map_err(|e| invalid_url(format!("TLS: {e}")))?;
        }
        Ok(Self {
            client: StreamsServiceClient::new(endpoint.connect_lazy()),
            authorization: authorization(settings)?,
        })
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
        let response = self
            .client
            .clone()
            .append_session(request)
            .await
            .map_err(|status| refused(&status))?
            .into_inner();
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
