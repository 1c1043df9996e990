//! Outgoing: the projector that reads the log from its checkpoint and queues one row per
//! shared change and peer (rows and checkpoint in one transaction), and the delivery that
//! builds signed messages from the queue at send time and posts them, in queue order per
//! peer, with exponential back-off. `run_until_stopped` runs both until shutdown.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use super::changes::{self, Shared, Subject};
use super::message::{format_time, Change, Envelope, Payload};
use super::outbox::{NewRow, QueuedRow};
use super::receive::Answer;
use super::{signing, CivishareError, CivishareStore, Peering};
use crate::domain::{streams, DomainEvent};
use crate::metrics::Metrics;
use crate::privacy::Vault;
use crate::store::{ActorKind, Direction, EventLog, RecordedEvent, StreamStart};

/// Events the projector reads per step.
const READ_BATCH: usize = 500;
/// Changes per message at most.
pub const MESSAGE_CHANGES: i64 = 100;
/// The longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a delivery may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the worker looks for new events and due peers when idle.
const POLL: Duration = Duration::from_millis(100);

/// `ledger_civishare_changes_sent_total`.
pub const SENT: &str = "ledger_civishare_changes_sent_total";
/// `ledger_civishare_delivery_failures_total`.
pub const FAILURES: &str = "ledger_civishare_delivery_failures_total";
/// `ledger_civishare_queue_depth`.
pub const QUEUE_DEPTH: &str = "ledger_civishare_queue_depth";

/// `ledger_civishare_oldest_undelivered_seconds`.
pub const OLDEST_UNDELIVERED: &str = "ledger_civishare_oldest_undelivered_seconds";

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Events read (or changes delivered).
    Processed(usize),
    /// Nothing to do.
    CaughtUp,
}

/// The back-off after `attempts` failed attempts: 1 s doubled per attempt, at most 300 s.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 1u64 << attempts.saturating_sub(1).min(9);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// The TLS client configuration for peers' `https://` endpoints: the system's roots (which
/// `SSL_CERT_FILE` replaces) and the CAs of the PEM file `extra_ca`, if given.
pub fn client_tls(extra_ca: Option<&std::path::Path>) -> anyhow::Result<rustls::ClientConfig> {
    use anyhow::Context as _;
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    crate::api::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "CiviShare: a system root certificate could not be read");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let read = || -> anyhow::Result<Vec<CertificateDer<'static>>> {
            Ok(CertificateDer::pem_file_iter(path)?.collect::<Result<_, _>>()?)
        };
        let certs =
            read().with_context(|| format!("reading CA certificates from {}", path.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "{} holds no CA certificate",
            path.display()
        );
        for cert in certs {
            roots
                .add(cert)
                .with_context(|| format!("a CA certificate of {}", path.display()))?;
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The outgoing side.
pub struct Outgoing {
    store: CivishareStore,
    log: Arc<dyn EventLog>,
    vault: Vault,
    metrics: Metrics,
    client: Client<HttpsConnector<HttpConnector>, Full<bytes::Bytes>>,
    /// Per peer: failed attempts in a row and when it may be tried again.
    waits: tokio::sync::Mutex<HashMap<i64, (u32, Instant)>>,
}

impl Outgoing {
    /// The outgoing side over these stores, posting to `http://` endpoints in clear and to
    /// `https://` ones with `tls` (see [`client_tls`]).
    pub fn new(
        store: CivishareStore,
        log: Arc<dyn EventLog>,
        vault: Vault,
        metrics: Metrics,
        tls: rustls::ClientConfig,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Self {
            store,
            log,
            vault,
            metrics,
            client: Client::builder(TokioExecutor::new()).build(connector),
            waits: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// One projector step: reads a batch from the checkpoint and queues its shared changes
    /// for every peer that takes them and has not had them (loop rule).
    #[tracing::instrument(level = "debug", skip_all, err)]
    pub async fn try_enqueue(&self) -> Result<Outcome, CivishareError> {
        let Some(local) = self.store.local_node().await? else {
            return Ok(Outcome::CaughtUp);
        };
        let from = self.store.checkpoint().await?;
        let events = self.log.read_all(from, READ_BATCH).await?;
        let Some(last) = events.last() else {
            return Ok(Outcome::CaughtUp);
        };
        let next = last.position + 1;
        // Read in this order: a peering added with its history meanwhile is in neither list
        // or in both, never only in the first.
        let peerings = self.store.peerings().await?;
        let backfilling = self.store.backfills().await?;
        let live: Vec<Peering> = peerings
            .into_iter()
            .filter(|p| !backfilling.contains_key(&p.id))
            .collect();
        let rows = self.rows_for(&local, &events, &live).await?;
        self.store.enqueue(&rows, next).await?;
        Ok(Outcome::Processed(events.len()))
    }

    /// One step of every peering still getting its history: the next batch of the log below
    /// the live projector's checkpoint, queued for that peering alone.
    #[tracing::instrument(level = "debug", skip_all, err)]
    pub async fn try_backfill(&self) -> Result<Outcome, CivishareError> {
        let backfilling = self.store.backfills().await?;
        if backfilling.is_empty() {
            return Ok(Outcome::CaughtUp);
        }
        let Some(local) = self.store.local_node().await? else {
            return Ok(Outcome::CaughtUp);
        };
        let peerings = self.store.peerings().await?;
        let mut read = 0;
        for (peering_id, from) in backfilling {
            let Some(peering) = peerings.iter().find(|p| p.id == peering_id) else {
                continue;
            };
            let until = self.store.checkpoint().await?;
            let mut events = self.log.read_all(from, READ_BATCH).await?;
            events.retain(|e| e.position < until);
            let next = events.last().map_or(until.max(from), |e| e.position + 1);
            let rows = self
                .rows_for(&local, &events, std::slice::from_ref(peering))
                .await?;
            let done = self.store.backfill_step(peering_id, &rows, next).await?;
            if done {
                tracing::info!(peer = %peering.node_name, "CiviShare: the peer's history is queued");
            }
            read += events.len();
        }
        Ok(if read == 0 {
            Outcome::CaughtUp
        } else {
            Outcome::Processed(read)
        })
    }

    /// The queue rows of `events` for `peerings`: each shared change for every peer whose
    /// outgoing types include it and that has not had it (loop rule).
    async fn rows_for(
        &self,
        local: &str,
        events: &[RecordedEvent],
        peerings: &[Peering],
    ) -> Result<Vec<NewRow>, CivishareError> {
        let mut rows = Vec::new();
        let mut donations_of_payments = HashMap::new();
        for event in events {
            let Some(shared) = changes::shared(event) else {
                continue;
            };
            if !peerings
                .iter()
                .any(|p| p.outgoing.contains(shared.change_type))
            {
                continue;
            }
            let donation_id = match shared.subject {
                Subject::Donation(id) => id,
                Subject::PaymentOf(payment_id) => match donations_of_payments.get(&payment_id) {
                    Some(&id) => id,
                    None => {
                        let Some(id) = self.donation_of_payment(payment_id).await? else {
                            continue;
                        };
                        donations_of_payments.insert(payment_id, id);
                        id
                    }
                },
            };
            let Some(loop_detection) = self.loop_list(local, event).await? else {
                continue;
            };
            for p in peerings {
                if !p.outgoing.contains(shared.change_type) {
                    continue;
                }
                // Never to a node that already has the change.
                if loop_detection.contains(&signing::node_stamp(&p.node_name, &loop_detection[0])) {
                    continue;
                }
                rows.push(row(p, event, &shared, donation_id, &loop_detection));
            }
        }
        Ok(rows)
    }

    /// The donation a payment belongs to, from its `PaymentInitiated`; `None` for a payment
    /// stream that does not start with one.
    async fn donation_of_payment(&self, payment_id: u64) -> Result<Option<u64>, CivishareError> {
        let first = self
            .log
            .read_stream(
                &streams::payment(payment_id),
                Direction::Forwards,
                StreamStart::Beginning,
                1,
            )
            .await?;
        Ok(first
            .first()
            .and_then(|e| match DomainEvent::decode(&e.event_type, &e.payload) {
                Ok(DomainEvent::PaymentInitiated(p)) => Some(p.donation_id),
                _ => None,
            }))
    }

    /// The loop list this node sends with the change of `event`: a change applied from a peer
    /// keeps the list it came with; a change of this node starts one. This node's stamp last.
    /// `None` for a change applied from a peer whose list is no longer remembered (older than
    /// the retention, met again by a peering's history): without it nothing proves the change
    /// would not go back where it came from, so it is not shared.
    async fn loop_list(
        &self,
        local: &str,
        event: &RecordedEvent,
    ) -> Result<Option<Vec<String>>, CivishareError> {
        let from_peer = event
            .metadata
            .ledger()
            .filter(|m| m.actor.kind == ActorKind::Peer)
            .map(|m| m.correlation_id);
        let mut list = match from_peer {
            Some(correlation) => match self.store.loop_of(&correlation).await? {
                Some(list) if !list.is_empty() => list,
                _ => return Ok(None),
            },
            None => Vec::new(),
        };
        if list.is_empty() {
            list.push(signing::origin_signature(local, &event.id));
        }
        let stamp = signing::node_stamp(local, &list[0]);
        if !list.contains(&stamp) {
            list.push(stamp);
        }
        Ok(Some(list))
    }

    /// One delivery to `peering`, if it has undelivered rows and is not waiting out a
    /// back-off.
    #[tracing::instrument(level = "debug", skip_all, fields(peer = %peering.node_name), err)]
    pub async fn try_deliver(
        &self,
        local: &str,
        peering: &Peering,
    ) -> Result<Outcome, CivishareError> {
        let rows = self.store.undelivered(peering.id, MESSAGE_CHANGES).await?;
        let queue = self.store.queue_status(peering.id).await?;
        let peer = [("peer", peering.node_name.as_str())];
        self.metrics
            .gauge(QUEUE_DEPTH, &peer, queue.undelivered as f64);
        let age = queue
            .oldest_undelivered
            .as_deref()
            .and_then(super::message::parse_time)
            .map_or(0.0, |t| {
                (chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0
            });
        self.metrics.gauge(OLDEST_UNDELIVERED, &peer, age.max(0.0));
        if let Some((_, until)) = self.waits.lock().await.get(&peering.id) {
            if Instant::now() < *until {
                return Ok(Outcome::CaughtUp);
            }
        }
        if rows.is_empty() {
            return Ok(Outcome::CaughtUp);
        }
        let mut changes = Vec::with_capacity(rows.len());
        for r in &rows {
            changes.push(self.change(r).await?);
        }
        let payload = Payload {
            sender: local.to_owned(),
            sent: format_time(chrono::Utc::now()),
            changes,
        };
        let id = uuid::Uuid::now_v7().to_string();
        let secret = self.store.secret(self.vault.keys(), peering).await?;
        let body = Envelope::build(&id, secret.expose_secret(), &payload);
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        self.store.mark_sent(&seqs, &id).await?;
        match self.post(&peering.endpoint, body).await {
            Ok(answer) => {
                let answers: Vec<(i64, String, Option<String>)> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let result = answer.results.iter().find(|a| a.index == i);
                        (
                            r.seq,
                            result.map_or_else(|| "unanswered".to_owned(), |a| a.status.clone()),
                            result.and_then(|a| a.reason.clone()),
                        )
                    })
                    .collect();
                self.store.mark_acknowledged(&answers).await?;
                self.waits.lock().await.remove(&peering.id);
                self.metrics
                    .count(SENT, &[("peer", &peering.node_name)], rows.len() as u64);
                Ok(Outcome::Processed(rows.len()))
            }
            Err(error) => {
                self.store.mark_failed(&seqs, &error).await?;
                self.metrics
                    .count(FAILURES, &[("peer", &peering.node_name)], 1);
                let mut waits = self.waits.lock().await;
                let attempts = waits.get(&peering.id).map_or(0, |(n, _)| *n) + 1;
                let wait = backoff(attempts);
                tracing::warn!(peer = %peering.node_name, %error, attempts, wait_secs = wait.as_secs(), "CiviShare delivery failed; retrying after a back-off");
                waits.insert(peering.id, (attempts, Instant::now() + wait));
                Ok(Outcome::CaughtUp)
            }
        }
    }

    /// The change of a queued row, built from its event as the log holds it now: personal
    /// data whose key was destroyed is gone.
    async fn change(&self, row: &QueuedRow) -> Result<Change, CivishareError> {
        let recorded = self.log.read_all(row.position, 1).await?;
        let event = recorded
            .into_iter()
            .next()
            .filter(|e| e.id.to_string() == row.event_id);
        let (timestamp, attributes) = match event {
            Some(e) => {
                let when = e.occurred_at();
                let attributes = match DomainEvent::decode(&e.event_type, &e.payload) {
                    Ok(mut decoded) => {
                        self.vault.unseal(std::iter::once(&mut decoded)).await?;
                        changes::attributes(&decoded)
                    }
                    Err(_) => Vec::new(),
                };
                (when, attributes)
            }
            None => (chrono::Utc::now(), Vec::new()),
        };
        Ok(Change {
            change_type: row.change_type.clone(),
            timestamp: format_time(timestamp),
            entity: row.entity.clone(),
            entity_reference: row.entity_reference.clone(),
            attribute_changes: attributes,
            loop_detection: row.loop_detection.clone(),
        })
    }

    /// Posts a body; the peer's answer on 200, else the error as text.
    async fn post(&self, endpoint: &str, body: Vec<u8>) -> Result<Answer, String> {
        let request = hyper::Request::post(endpoint)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes::Bytes::from(body)))
            .map_err(|e| format!("bad endpoint {endpoint}: {e}"))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
            .map_err(|e| format!("request failed: {}", crate::telemetry::format_chain(&e)))?;
        let status = response.status();
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| "the answer's body did not arrive".to_owned())?
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        if status != hyper::StatusCode::OK {
            return Err(format!(
                "HTTP {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("the answer is not JSON results: {e}"))
    }

    /// Queues and delivers until `shutdown`; errors are logged and retried after a pause.
    /// An idle worker wakes when the log commits (where the log can tell), else every
    /// [`POLL`]; the pause also paces retries of peers that are backing off.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let mut appended = self.log.head_watch();
        let mut pause = POLL;
        while !shutdown.is_cancelled() {
            match self.round().await {
                Ok(busy) => {
                    pause = POLL;
                    if busy {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %crate::telemetry::format_chain(&e), "CiviShare worker step failed");
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
                () = committed(&mut appended) => {}
            }
        }
    }

    /// One round: queue what is new, then one delivery per peer. Whether anything was done.
    async fn round(&self) -> Result<bool, CivishareError> {
        let mut busy = false;
        while let Outcome::Processed(_) = self.try_enqueue().await? {
            busy = true;
        }
        // A peering's history a batch per round, so that live changes keep flowing meanwhile.
        if let Outcome::Processed(_) = self.try_backfill().await? {
            busy = true;
        }
        let Some(local) = self.store.local_node().await? else {
            return Ok(false);
        };
        for peering in self.store.peerings().await? {
            if let Outcome::Processed(_) = self.try_deliver(&local, &peering).await? {
                busy = true;
            }
        }
        Ok(busy)
    }
}

/// Resolves when the log has committed since the last call; never without a watch (or once
/// the log is gone).
async fn committed(watch: &mut Option<tokio::sync::watch::Receiver<crate::store::Position>>) {
    let changed = match watch {
        Some(w) => w.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
}

fn row(
    p: &Peering,
    event: &RecordedEvent,
    shared: &Shared,
    donation_id: u64,
    loop_detection: &[String],
) -> NewRow {
    NewRow {
        peering_id: p.id,
        position: event.position,
        event_id: event.id,
        change_type: shared.change_type.to_owned(),
        entity: Shared::ENTITY.to_owned(),
        entity_reference: donation_id.to_string(),
        loop_detection: loop_detection.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_one_second_up_to_five_minutes() {
        let secs: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }
}
