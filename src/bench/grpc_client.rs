//! The benches' load generator: unary and client-streaming gRPC calls (every request message
//! sent at once, one reply) written straight onto an HTTP/2 connection with the `h2` crate.
//!
//! Frontends run on other machines; the bench's 64 clients share the two CPUs with the server
//! being measured, so every cycle the load generator spends is taken from the server. tonic's
//! client hands each call to a buffer task, then to hyper, which sends the request's HEADERS
//! and its DATA from different tasks, so most calls cost the client two socket writes. Here
//! both frames are queued in one step and leave in one write. The wire format is the same
//! (`application/grpc`, length-prefixed protobuf, status in the trailers), and the server is
//! the real one; only the client is lighter.

use anyhow::{bail, Context as _};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Uri};

/// One HTTP/2 connection that sends gRPC calls with one reply.
pub struct GrpcClient {
    send: h2::client::SendRequest<Bytes>,
    authority: String,
    authorization: Option<HeaderValue>,
}

impl GrpcClient {
    /// Connects to `addr` (`host:port`) with `TCP_NODELAY` and drives the connection on a task
    /// of the current runtime; every call carries `authorization` (none when empty).
    pub async fn connect(addr: &str, authorization: &str) -> anyhow::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::handshake(tcp)
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "bench gRPC connection ended");
            }
        });
        Ok(Self {
            send,
            authority: addr.to_owned(),
            authorization: match authorization {
                "" => None,
                value => Some(
                    HeaderValue::from_str(value)
                        .context("authorization is not a valid header value")?,
                ),
            },
        })
    }

    /// Calls the unary method at `path` (`/package.Service/Method`) with `message` and decodes
    /// the reply; a gRPC status other than OK is an error carrying its code and message.
    pub async fn unary<M: prost::Message, R: prost::Message + Default>(
        &mut self,
        path: &str,
        message: &M,
    ) -> anyhow::Result<R> {
        self.call(path, std::slice::from_ref(message)).await
    }

    /// Calls the method at `path` with every message of `messages` (a client stream, sent at
    /// once and closed) and decodes its one reply.
    pub async fn call<M: prost::Message, R: prost::Message + Default>(
        &mut self,
        path: &str,
        messages: &[M],
    ) -> anyhow::Result<R> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(self.authority.as_str())
            .path_and_query(path)
            .build()?;
        let mut request = Request::post(uri)
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization.clone());
        }
        let request = request.body(())?;
        let len: usize = messages.iter().map(|m| 5 + m.encoded_len()).sum();
        let mut body = BytesMut::with_capacity(len);
        for message in messages {
            body.put_u8(0);
            body.put_u32(u32::try_from(message.encoded_len()).context("message too large")?);
            message.encode(&mut body)?;
        }

        let mut send = self.send.clone().ready().await?;
        let (response, mut stream) = send.send_request(request, false)?;
        stream.send_data(body.freeze(), true)?;
        let response = response.await?;
        if response.status() != http::StatusCode::OK {
            bail!("HTTP status {}", response.status());
        }
        // A "trailers-only" answer (an error) carries the status in the headers.
        if response.headers().contains_key("grpc-status") {
            check_status(response.headers())?;
        }
        let mut body = response.into_body();
        let mut reply = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            body.flow_control().release_capacity(chunk.len())?;
            reply.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await?.unwrap_or_default();
        check_status(&trailers)?;
        decode_frame(&reply)
    }
}

/// Fails unless the `grpc-status` in `headers` is 0 (OK).
fn check_status(headers: &HeaderMap) -> anyhow::Result<()> {
    let status = headers
        .get("grpc-status")
        .context("the reply carries no grpc-status")?;
    if status != "0" {
        let message = headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .unwrap_or("");
        bail!("gRPC status {status:?}: {message}");
    }
    Ok(())
}

/// Decodes the one length-prefixed, uncompressed message of a unary reply.
fn decode_frame<R: prost::Message + Default>(frame: &[u8]) -> anyhow::Result<R> {
    let Some((header, rest)) = frame.split_first_chunk::<5>() else {
        bail!(
            "the reply is {} bytes, shorter than a gRPC frame header",
            frame.len()
        );
    };
    if header[0] != 0 {
        bail!("the reply is compressed, which the bench never asks for");
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if rest.len() != len {
        bail!(
            "the reply frame says {len} bytes but carries {}",
            rest.len()
        );
    }
    Ok(R::decode(rest)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn frames_decode_only_when_whole_and_uncompressed() {
        let message = prost_types::Duration {
            seconds: 7,
            nanos: 9,
        };
        let mut frame = vec![0, 0, 0, 0, message.encoded_len() as u8];
        message.encode(&mut frame).unwrap();
        let decoded: prost_types::Duration = decode_frame(&frame).unwrap();
        assert_eq!(decoded, message);
        assert!(decode_frame::<prost_types::Duration>(&frame[..frame.len() - 1]).is_err());
        assert!(decode_frame::<prost_types::Duration>(&frame[..3]).is_err());
        frame[0] = 1;
        assert!(decode_frame::<prost_types::Duration>(&frame).is_err());
    }

    #[test]
    fn only_status_zero_is_ok() {
        let mut headers = HeaderMap::new();
        assert!(check_status(&headers).is_err());
        headers.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(check_status(&headers).is_ok());
        headers.insert("grpc-status", HeaderValue::from_static("3"));
        headers.insert("grpc-message", HeaderValue::from_static("amount_cents"));
        let err = check_status(&headers).unwrap_err().to_string();
        assert!(
            err.contains("\"3\"") && err.contains("amount_cents"),
            "{err}"
        );
    }

    /// Against the real server: a good call decodes its reply; a refused one (a field error,
    /// a wrong token) is an error naming the gRPC status, not a silent success.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_the_real_server_and_reports_its_refusals() {
        use crate::api::auth::{Authenticator, Scope};
        use crate::proto::api as pb;

        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::default().with_token("bench", "t0ken", [Scope::All].into());
        let server = crate::bench::InProcessServer::start(dir.path(), auth)
            .await
            .unwrap();
        let addr = server.addr.clone();
        const PATH: &str = "/ledger.api.v1.Ledger/AddDonation";

        let mut client = GrpcClient::connect(&addr, "Bearer t0ken").await.unwrap();
        let reply: pb::AddDonationResponse = client
            .unary(PATH, &crate::bench::add_donation_request(0))
            .await
            .unwrap();
        assert!(reply.donation_id > 0 && reply.payment_id > 0, "{reply:?}");

        let mut bad = crate::bench::add_donation_request(1);
        bad.payment.as_mut().unwrap().amount_cents = 0;
        let err = client
            .unary::<_, pb::AddDonationResponse>(PATH, &bad)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"3\"") && err.contains("amount_cents"),
            "{err}"
        );

        let mut stranger = GrpcClient::connect(&addr, "Bearer wrong").await.unwrap();
        let err = stranger
            .unary::<_, pb::AddDonationResponse>(PATH, &crate::bench::add_donation_request(2))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"16\""), "{err}");

        server.stop().await.unwrap();
    }
}
