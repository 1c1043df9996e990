//! CiviShare peering between real `ledger serve` processes over loopback HTTP: the seed's
//! example message signed per `docs/civishare.md` and posted; tampered, unsigned, replayed,
//! stale and unknown-sender messages refused, counted and appending nothing; two ledgers
//! peered both ways share a donation exactly once without ping-pong; and a peer that was down
//! receives everything once it is back; over HTTPS (both ports TLS, the peer's certificate
//! checked against a CA the sender trusts) the same, and a peer signed by another CA gets
//! nothing. Statuses are read from `civishare.sqlite` by SQL.
//!
//! Over 600 lines because the scenarios share one harness (`Node`: a data directory, its
//! `serve` process, its CLI and its tables) and the seed's example message, kept beside them.
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger::civishare::message::{format_time, Envelope};
use ledger::civishare::signing;
use ledger::metrics::exposition;
use ledger::proto::api;
use ledger::proto::api::ledger_client::LedgerClient;
use ledger::proto::events as ev;

use super::cli_serve::free_port;
use crate::support::api::{context, donation, with_token};
use crate::support::http_get;

/// A test secret, as `peer add` would generate one.
const SECRET: &str = "TestSecretTestSecretTestSecret0123456789abc";

/// A running `ledger serve` and its ports.
struct Node {
    child: Option<Child>,
    dir: tempfile::TempDir,
    grpc: u16,
    http: u16,
    name: String,
    tls: Option<Pki>,
}

/// The files of a test CA and the `localhost` certificate it signed.
#[derive(Clone)]
struct Pki {
    ca: String,
    ca_pem: String,
    cert: String,
    key: String,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let (ca, cert, key) = crate::cli_serve::test_pki();
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path.display().to_string()
        };
        Self {
            ca: write("ca.pem", &ca),
            cert: write("cert.pem", &cert),
            key: write("key.pem", &key),
            ca_pem: ca,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Node {
    /// A data directory with its node named `name`, not yet serving.
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = Self {
            child: None,
            dir,
            grpc: free_port(),
            http: free_port(),
            name: name.to_owned(),
            tls: None,
        };
        node.ledger(&["peer", "node", "--name", name], &[]);
        node
    }

    /// This node serving TLS with `pki`'s certificate, trusting its CA for its peers.
    fn with_tls(mut self, pki: &Pki) -> Self {
        self.tls = Some(pki.clone());
        self
    }

    /// The message endpoint.
    fn endpoint(&self) -> String {
        match self.tls {
            Some(_) => format!("https://localhost:{}/civishare/v1/messages", self.http),
            None => format!("http://127.0.0.1:{}/civishare/v1/messages", self.http),
        }
    }

    /// Starts `ledger serve` and waits until its HTTP port answers (accepts connections, with
    /// TLS).
    fn start(&mut self) {
        let tls = self.tls.as_ref().map_or(Vec::new(), |pki| {
            vec![
                "--tls-cert",
                pki.cert.as_str(),
                "--tls-key",
                pki.key.as_str(),
                "--civishare-ca-file",
                pki.ca.as_str(),
            ]
        });
        let child = Command::new(assert_cmd::cargo::cargo_bin("ledger"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.grpc),
                "--metrics-listen",
                &format!("127.0.0.1:{}", self.http),
                "--kurrentdb-listen",
                "off",
                "--scrub-interval-minutes",
                "0",
            ])
            .args(tls)
            .env("LEDGER_DATA_DIR", self.dir.path())
            .env_remove("LEDGER_READ_MODEL_URL")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let http = self.http;
        if self.tls.is_some() {
            wait_for("the HTTPS port accepts connections", 60, || {
                std::net::TcpStream::connect(("127.0.0.1", http)).is_ok()
            });
            return;
        }
        wait_for("the HTTP port answers", 60, || {
            http_get(http, "/healthz").is_some_and(|(c, _)| c == 200)
        });
    }

    /// Kills the server (SIGKILL) and waits for it.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs the built `ledger` on this node's data directory; its stdout (it must succeed).
    fn ledger(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = Command::new(assert_cmd::cargo::cargo_bin("ledger"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .envs(env.iter().copied())
            .env_remove("LEDGER_READ_MODEL_URL")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ledger {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Peers with `other` under the test secret.
    fn peer_with(&self, name: &str, endpoint: &str, incoming: &str) {
        self.ledger(
            &[
                "peer",
                "add",
                "--node",
                name,
                "--url",
                endpoint,
                "--incoming",
                incoming,
            ],
            &[("LEDGER_PEER_SECRET", SECRET)],
        );
    }

    /// One number from `civishare.sqlite`.
    fn count(&self, sql: &str) -> i64 {
        self.query("civishare.sqlite", sql)
    }

    /// One text from `civishare.sqlite`.
    fn query_text(&self, sql: &str) -> String {
        let db = rusqlite::Connection::open_with_flags(
            self.dir.path().join("civishare.sqlite"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        db.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// One number from the SQLite file `file` of the data directory, read-only.
    fn query(&self, file: &str, sql: &str) -> i64 {
        let db = rusqlite::Connection::open_with_flags(
            self.dir.path().join(file),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// A series of the node's `/metrics` (0 when absent).
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (_, text) = http_get(self.http, "/metrics").unwrap();
        exposition::parse(&text).value(name, labels).unwrap_or(0.0)
    }

    /// The position of the log's head (0 when empty), read from the embedded log's file.
    fn head(&self) -> f64 {
        self.query(
            "events.sqlite",
            "SELECT COALESCE(MAX(position), 0) FROM events",
        ) as f64
    }

    /// The admin token `serve` generated.
    fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// A PayPal donation of `cents` taken by this node's intake; its answer.
    async fn donate(&self, cents: i64) -> api::AddDonationResponse {
        self.client()
            .await
            .add_donation(with_token(
                donation(ev::PaymentMethod::Paypal, cents),
                &self.token(),
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn client(&self) -> LedgerClient<tonic::transport::Channel> {
        let Some(pki) = &self.tls else {
            return LedgerClient::connect(format!("http://127.0.0.1:{}", self.grpc))
                .await
                .unwrap();
        };
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&pki.ca_pem))
            .domain_name("localhost");
        let endpoint =
            tonic::transport::Channel::from_shared(format!("https://127.0.0.1:{}", self.grpc))
                .unwrap()
                .tls_config(tls)
                .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match endpoint.connect().await {
                Ok(channel) => return LedgerClient::new(channel),
                Err(e) => assert!(Instant::now() < deadline, "no TLS connection: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Polls `check` every 100 ms until it holds, for at most `secs` seconds.
fn wait_for(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `POST path` with a JSON body over HTTP/1.0; the status code and body.
fn post(port: u16, body: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /civishare/v1/messages HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        code,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// The seed's example message (`seeds/003_…`), with the two commas its text lacks (after
/// `sent` and after the first change's `attribute_changes`) restored so that it is JSON.
const SEED_EXAMPLE: &str = r#"{
  "id": "some-unique-id",
  "payload_signature": "/HbL/n2GaZWex15bmNquRUYWUriGEPpncqcIUQkqgwoltCzQU+x2IjMZZNgSFJ2oMJBk24AzHn/WZw8eOn5RPX2frgjtPtR1FO24H7YqD8X59rZMBHgRN+4TYl+hJjo8pEpgTQvp0WMmV8DZNEVZBjmwdmtlJ4e/f5SNWRi2kNQ=",
  "payload": {
    "sender": "https://node4.mydistributed.org",
    "sent": "2024-10-23 20:10:00 CEST",
    "changes": [
      {
        "type": "civishare.change.contact.base",
        "timestamp": "2024-10-23 20:08:48 CEST",
        "entity": "Contact",
        "entity_reference": "312",
        "attribute_changes": [
          {"name": "first_name", "from": "Karl", "to": "Carl"},
          {"name": "birth_date", "from": "", "to": "2000-01-01"}
        ],
        "loop_detection": ["5R+hJjo8pEpgTQvp0WMmV8DZNEVZB"]
      },
      {
        "type": "civishare.change.contact.base",
        "timestamp": "2024-10-23 20:08:48 CEST",
        "entity": "Contact",
        "entity_reference": "2312",
        "attribute_changes": [
          {"name": "first_name", "from": "Karlotta", "to": "Escarlata"},
          {"name": "last_name", "from": "", "to": "La Pirata"}
        ],
        "loop_detection": ["5RPX2frgjtPtR1FO24H7YqD8X59rZMBHgRN+4TYl+hJjo8pEpgTQvp0WMmV8DZNEVZB","5RPX2frgjtPtR1FO2asdwqwewqe+4TYl+hJjo8pEpgTQvp0WMmV8DZNEVZB"]
      }
    ]
  }
}"#;

/// The seed's payload with `sent` set to now, and its id, signed per the doc under `secret`.
fn seed_message(id: &str, secret: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let message: serde_json::Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    let mut payload = message["payload"].clone();
    payload["sent"] = format_time(chrono::Utc::now()).into();
    edit(&mut payload);
    let payload: ledger::civishare::Payload = serde_json::from_value(payload).unwrap();
    Envelope::build(id, secret, &payload)
}

/// A `ledger.change.donation.created` of a new PayPal donation, as node `sender` sends it.
fn created_change(sender: &str, reference: &str, last_name: &str) -> serde_json::Value {
    let origin = signing::origin_signature(sender, &uuid::Uuid::new_v4());
    let stamp = signing::node_stamp(sender, &origin);
    let attr = |n: &str, v: &str| serde_json::json!({"name": n, "from": "", "to": v});
    serde_json::json!({
        "type": "ledger.change.donation.created",
        "timestamp": format_time(chrono::Utc::now()),
        "entity": "Donation",
        "entity_reference": reference,
        "attribute_changes": [
            attr("amount_cents", "2500"), attr("currency", "EUR"), attr("interval_months", "0"),
            attr("payment_method", "PPL"), attr("donor_kind", "person"), attr("salutation", "Frau"),
            attr("first_name", "Karla"), attr("last_name", last_name), attr("street", "Hauptstr. 1"),
            attr("postcode", "10115"), attr("city", "Berlin"), attr("country", "DE"),
            attr("email", "karla@example.org")
        ],
        "loop_detection": [origin, stamp]
    })
}

#[tokio::test]
async fn the_seeds_example_signed_per_the_doc_is_verified_and_its_contact_changes_refused_with_a_reason(
) {
    let mut b = Node::new("https://ledger-b.example.org");
    let seed_sender = "https://node4.mydistributed.org";
    b.peer_with(seed_sender, "http://127.0.0.1:9/unused", "all");
    b.peer_with(
        "https://narrow.example.org",
        "http://127.0.0.1:9/unused",
        "ledger.change.donation.created",
    );
    b.start();
    let head = b.head();

    // All types accepted: verified and parsed, each contact change refused by the ledger,
    // which keeps no contacts.
    let (code, answer) = post(b.http, &seed_message("seed-1", SECRET, |_| {}));
    assert_eq!(code, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert_eq!(r["status"], "refused", "{answer}");
        assert!(
            r["reason"].as_str().unwrap().starts_with("no_processor:"),
            "{answer}"
        );
    }

    // A peering that accepts donations only says so.
    let (code, answer) = post(
        b.http,
        &seed_message("seed-2", SECRET, |p| {
            p["sender"] = "https://narrow.example.org".into()
        }),
    );
    assert_eq!(code, 200, "{answer}");
    let reason = answer["results"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("type_not_accepted:"), "{reason}");
    assert!(reason.contains("civishare.change.contact.base"), "{reason}");
    assert_eq!(b.head(), head, "a refused change appends nothing");

    // The same payload carrying a donation is applied through the intake, the peer as actor.
    let (code, answer) = post(
        b.http,
        &seed_message("seed-3", SECRET, |p| {
            p["changes"] = serde_json::json!([created_change(seed_sender, "77", "Beispiel")]);
        }),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["results"][0]["status"], "applied", "{answer}");
    let local: u64 = answer["results"][0]["local_reference"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let donation = b
        .client()
        .await
        .get_donation(with_token(
            api::GetDonationRequest { donation_id: local },
            &b.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(donation.donor.unwrap().last_name, "Beispiel");
    assert_eq!(
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'"),
        1
    );
    assert_eq!(
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'refused'"),
        4
    );
    b.stop();
}

#[tokio::test]
async fn tampered_unsigned_replayed_stale_and_unknown_sender_messages_are_refused_counted_and_append_nothing(
) {
    let mut b = Node::new("https://ledger-b.example.org");
    let a = "https://ledger-a.example.org";
    b.peer_with(a, "http://127.0.0.1:9/unused", "all");
    b.start();
    let head = b.head();
    let message = |id: &str, secret: &str, sender: &str| {
        seed_message(id, secret, |p| {
            p["sender"] = sender.into();
            p["changes"] = serde_json::json!([created_change(sender, "1", "Beispiel")]);
        })
    };
    let refused = |body: &[u8], code: u16, error: &str| {
        let (got, answer) = post(b.http, body);
        assert_eq!(got, code, "{answer}");
        assert_eq!(answer["error"], error, "{answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty());
    };

    // Tampered: one byte of the payload changed after signing.
    let good = message("m-1", SECRET, a);
    let text = String::from_utf8(good.clone()).unwrap();
    refused(
        text.replacen("Beispiel", "Beispiek", 1).as_bytes(),
        403,
        "bad_signature",
    );
    // Signed with another secret.
    refused(
        &message("m-2", "AnotherSecretAnotherSecretAnother012345678", a),
        403,
        "bad_signature",
    );
    // Unsigned.
    let unsigned = text.replacen(
        &text[text.find("\"payload_signature\"").unwrap()..text.find(",\"payload\":").unwrap()],
        "\"payload_signature\":\"\"",
        1,
    );
    refused(unsigned.as_bytes(), 401, "unsigned");
    // Unknown sender.
    refused(
        &message("m-3", SECRET, "https://stranger.example.org"),
        403,
        "unknown_sender",
    );
    // Stale: sent an hour ago.
    let stale = seed_message("m-4", SECRET, |p| {
        p["sender"] = a.into();
        p["sent"] = format_time(chrono::Utc::now() - chrono::Duration::hours(1)).into();
    });
    refused(&stale, 409, "stale");
    // Malformed: members out of order.
    refused(
        b"{\"payload\":{},\"id\":\"x\",\"payload_signature\":\"AA==\"}",
        400,
        "malformed",
    );
    assert_eq!(b.head(), head, "nothing appended by a refused message");

    // The good message is applied once; the same bytes again are a replay.
    let (code, answer) = post(b.http, &good);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["results"][0]["status"], "applied");
    let after = b.head();
    refused(&good, 409, "replayed");
    assert_eq!(b.head(), after, "nothing appended by a replay");

    let refusals =
        |reason: &str| b.metric("ledger_civishare_refusals_total", &[("reason", reason)]);
    assert_eq!(refusals("bad_signature"), 2.0);
    assert_eq!(refusals("unsigned"), 1.0);
    assert_eq!(refusals("unknown_sender"), 1.0);
    assert_eq!(refusals("stale"), 1.0);
    assert_eq!(refusals("malformed"), 1.0);
    assert_eq!(refusals("replayed"), 1.0);
    b.stop();
}

#[tokio::test]
async fn a_donation_on_a_reaches_b_exactly_once_and_does_not_come_back_to_a() {
    let mut a = Node::new("https://ledger-a.example.org");
    let mut b = Node::new("https://ledger-b.example.org");
    a.peer_with(&b.name, &b.endpoint(), "all");
    b.peer_with(&a.name, &a.endpoint(), "all");
    a.start();
    b.start();

    let added = a.donate(2_500).await;

    wait_for("B applied the donation", 60, || {
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") == 1
    });
    wait_for("A saw it acknowledged", 60, || {
        a.count("SELECT COUNT(*) FROM civishare_outbox WHERE status = 'acknowledged'") == 1
    });
    // B's projector has read past its copy (its checkpoint is beyond its head) and queued
    // nothing for A: A's stamp is in the change's loop list.
    wait_for("B's outgoing projector caught up", 60, || {
        b.count("SELECT COALESCE(MAX(position), 0) FROM civishare_checkpoint") as f64 > b.head()
    });
    assert_eq!(b.count("SELECT COUNT(*) FROM civishare_outbox"), 0);
    assert_eq!(a.count("SELECT COUNT(*) FROM civishare_inbox"), 0);
    assert_eq!(b.count("SELECT COUNT(*) FROM civishare_inbox"), 1);
    assert_eq!(
        b.count(&format!(
            "SELECT COUNT(*) FROM civishare_inbox WHERE entity_reference = '{}' \
             AND sender = 'https://ledger-a.example.org'",
            added.donation_id
        )),
        1
    );
    let sent = a.metric(
        "ledger_civishare_changes_sent_total",
        &[("peer", "https://ledger-b.example.org")],
    );
    assert_eq!(sent, 1.0);
    // Both statuses reach each node's read model, where the back office queries them.
    wait_for("A's read model shows the change applied by B", 60, || {
        a.query(
            "readmodel.sqlite",
            &format!(
                "SELECT COUNT(*) FROM civishare_outgoing WHERE node = 'https://ledger-a.example.org' \
                 AND peer = 'https://ledger-b.example.org' AND entity_reference = '{}' \
                 AND status = 'acknowledged' AND peer_status = 'applied' AND attempts = 1",
                added.donation_id
            ),
        ) == 1
    });
    wait_for("B's read model shows the change applied", 60, || {
        b.query(
            "readmodel.sqlite",
            "SELECT COUNT(*) FROM civishare_incoming WHERE node = 'https://ledger-b.example.org' \
             AND sender = 'https://ledger-a.example.org' AND status = 'applied' \
             AND local_reference <> ''",
        ) == 1
    });
    a.stop();
    b.stop();
}

#[tokio::test]
async fn a_donations_later_life_on_a_reaches_bs_copy_as_the_same_commands_once_and_in_order() {
    let mut a = Node::new("https://ledger-a.example.org");
    let mut b = Node::new("https://ledger-b.example.org");
    a.peer_with(&b.name, &b.endpoint(), "all");
    b.peer_with(&a.name, &a.endpoint(), "all");
    a.start();
    b.start();
    let token = a.token();
    let mut client = a.client().await;
    let added = a.donate(2_500).await;
    let (donation_id, payment_id) = (added.donation_id, added.payment_id);

    client
        .book_payment(with_token(
            api::BookPaymentRequest {
                context: context(api::ActorKind::Provider),
                payment_id,
                transaction_id: "PAYID-TEST-1".into(),
                amount_cents: 2_500,
                currency: "EUR".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap();
    let mut donor = donation(ev::PaymentMethod::Paypal, 2_500).donor.unwrap();
    donor.last_name = "Umgezogen".into();
    donor.street = "Neue Allee 3".into();
    client
        .update_donor(with_token(
            api::UpdateDonorRequest {
                context: context(api::ActorKind::FocUser),
                donation_id,
                donor: Some(donor),
            },
            &token,
        ))
        .await
        .unwrap();
    client
        .refund_payment(with_token(
            api::RefundPaymentRequest {
                context: context(api::ActorKind::Provider),
                payment_id,
                amount_cents: 1_000,
                currency: "EUR".into(),
                reason: "partial refund".into(),
            },
            &token,
        ))
        .await
        .unwrap();
    for restore in [false, true] {
        let request = with_token(
            api::DonationActionRequest {
                context: context(api::ActorKind::FocUser),
                donation_id,
                reason: "checking".into(),
            },
            &token,
        );
        if restore {
            client.restore_donation(request).await.unwrap();
        } else {
            client.delete_donation(request).await.unwrap();
        }
    }

    let expected = [
        "ledger.change.donation.created",
        "ledger.change.payment.booked",
        "ledger.change.donation.donor_updated",
        "ledger.change.payment.refunded",
        "ledger.change.donation.deleted",
        "ledger.change.donation.restored",
    ];
    wait_for("B applied all six changes", 60, || {
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") == 6
    });
    let applied = b.query_text(
        "SELECT group_concat(change_type, ' ') FROM \
         (SELECT change_type FROM civishare_inbox WHERE status = 'applied' ORDER BY seq)",
    );
    assert_eq!(applied, expected.join(" "));
    assert_eq!(
        b.count(&format!(
            "SELECT COUNT(DISTINCT entity_reference) FROM civishare_inbox \
             WHERE entity = 'Donation' AND entity_reference = '{donation_id}'"
        )),
        1,
        "every change names the donation on A, payment changes included"
    );
    let copy: u64 = b
        .query_text(
            "SELECT local_reference FROM civishare_inbox \
             WHERE change_type = 'ledger.change.donation.created'",
        )
        .parse()
        .unwrap();
    let b_token = b.token();
    let mut b_client = b.client().await;
    let on_b = b_client
        .get_donation(with_token(
            api::GetDonationRequest { donation_id: copy },
            &b_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(on_b.donor.as_ref().unwrap().last_name, "Umgezogen");
    assert_eq!(on_b.donor.as_ref().unwrap().street, "Neue Allee 3");
    assert_eq!(on_b.payment_state, "refunded", "{on_b:?}");
    assert_eq!(on_b.deletion_state, "active", "{on_b:?}");
    let history = b_client
        .get_history(with_token(
            api::GetHistoryRequest { donation_id: copy },
            &b_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let peer_made: Vec<&str> = history
        .entries
        .iter()
        .filter(|e| e.actor_kind == "peer" && e.actor == a.name)
        .map(|e| e.event_type.as_str())
        .collect();
    for event_type in [
        "PaymentBooked.v1",
        "DonorUpdated.v1",
        "PaymentRefunded.v1",
        "DonationDeleted.v1",
        "DonationRestored.v1",
    ] {
        assert_eq!(
            peer_made.iter().filter(|t| **t == event_type).count(),
            1,
            "{event_type} once on B, by A: {peer_made:?}"
        );
    }
    // Nothing came back: B's copies carry A's stamp.
    wait_for("B's outgoing projector caught up", 60, || {
        b.count("SELECT COALESCE(MAX(position), 0) FROM civishare_checkpoint") as f64 > b.head()
    });
    assert_eq!(b.count("SELECT COUNT(*) FROM civishare_outbox"), 0);
    assert_eq!(a.count("SELECT COUNT(*) FROM civishare_inbox"), 0);
    assert_eq!(
        a.count(
            "SELECT COUNT(*) FROM civishare_outbox \
             WHERE status = 'acknowledged' AND peer_status = 'applied'"
        ),
        6
    );
    a.stop();
    b.stop();
}

#[tokio::test]
async fn a_change_to_a_donation_the_peer_never_got_is_refused_as_unknown_and_changes_nothing() {
    let mut b = Node::new("https://ledger-b.example.org");
    b.peer_with(
        "https://ledger-a.example.org",
        "http://127.0.0.1:9/x",
        "all",
    );
    b.start();
    let head = b.head();
    let mut change = created_change("https://ledger-a.example.org", "4711", "Niemand");
    change["type"] = "ledger.change.payment.booked".into();
    change["attribute_changes"] = serde_json::json!([
        {"name": "amount_cents", "from": "", "to": "2500"},
        {"name": "currency", "from": "", "to": "EUR"}
    ]);
    let body = seed_message(&uuid::Uuid::now_v7().to_string(), SECRET, |m| {
        m["sender"] = "https://ledger-a.example.org".into();
        m["changes"] = serde_json::json!([change]);
    });
    let (status, answer) = post(b.http, &body);
    assert_eq!(status, 200, "{answer}");
    let result = &answer["results"][0];
    assert_eq!(result["status"], "refused");
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .starts_with("unknown_entity"),
        "{answer}"
    );
    assert_eq!(b.head(), head, "nothing appended");
    b.stop();
}

#[tokio::test]
async fn a_peer_added_with_its_history_gets_the_earlier_changes_first_and_one_added_without_only_later_ones(
) {
    let mut a = Node::new("https://ledger-a.example.org");
    let mut b = Node::new("https://ledger-b.example.org");
    let mut c = Node::new("https://ledger-c.example.org");
    b.peer_with(&a.name, &a.endpoint(), "all");
    c.peer_with(&a.name, &a.endpoint(), "all");
    a.start();
    b.start();
    c.start();
    let mut early = Vec::new();
    for cents in [1_100, 1_200, 1_300] {
        early.push(a.donate(cents).await.donation_id);
    }
    wait_for(
        "A's outgoing projector passed the early donations",
        60,
        || a.count("SELECT COALESCE(MAX(position), 0) FROM civishare_checkpoint") as f64 > a.head(),
    );
    // Added while A serves: B with its history, C without.
    for (node, history) in [(&b, true), (&c, false)] {
        let mut args = vec![
            "peer".to_owned(),
            "add".to_owned(),
            "--node".to_owned(),
            node.name.clone(),
            "--url".to_owned(),
            node.endpoint(),
        ];
        if history {
            args.push("--history".to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        a.ledger(&args, &[("LEDGER_PEER_SECRET", SECRET)]);
    }
    let late = a.donate(1_400).await.donation_id;

    wait_for("B got all four donations", 60, || {
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") == 4
    });
    wait_for("C got the late donation", 60, || {
        c.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") == 1
    });
    let mut expected = early.clone();
    expected.push(late);
    let order = |node: &Node| {
        node.query_text(
            "SELECT group_concat(entity_reference, ' ') FROM \
             (SELECT entity_reference FROM civishare_inbox ORDER BY message_id, change_index)",
        )
    };
    let in_order: Vec<String> = expected.iter().map(u64::to_string).collect();
    assert_eq!(
        order(&b),
        in_order.join(" "),
        "the history first, in log order"
    );
    assert_eq!(order(&c), late.to_string(), "no history for C");
    assert_eq!(
        a.count("SELECT COUNT(*) FROM civishare_backfill"),
        0,
        "B's history is complete"
    );
    // Everything once: the history and the live projector did not both queue a change.
    wait_for("A saw B's four acknowledged", 60, || {
        a.count(
            "SELECT COUNT(*) FROM civishare_outbox o JOIN civishare_peering p \
             ON p.id = o.peering_id WHERE p.node_name = 'https://ledger-b.example.org' \
             AND o.status = 'acknowledged'",
        ) == 4
    });
    assert_eq!(
        a.count(
            "SELECT COUNT(*) FROM civishare_outbox o JOIN civishare_peering p \
             ON p.id = o.peering_id WHERE p.node_name = 'https://ledger-b.example.org'"
        ),
        4
    );
    a.stop();
    b.stop();
    c.stop();
}

#[tokio::test]
async fn over_https_a_donation_on_a_reaches_b_and_the_port_answers_no_plaintext() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(pki_dir.path());
    let mut a = Node::new("https://ledger-a.example.org").with_tls(&pki);
    let mut b = Node::new("https://ledger-b.example.org").with_tls(&pki);
    assert!(b.endpoint().starts_with("https://localhost:"));
    a.peer_with(&b.name, &b.endpoint(), "all");
    b.peer_with(&a.name, &a.endpoint(), "all");
    a.start();
    b.start();

    a.donate(2_500).await;
    wait_for("B applied the donation sent over HTTPS", 60, || {
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") == 1
    });
    wait_for("A saw it acknowledged", 60, || {
        a.count("SELECT COUNT(*) FROM civishare_outbox WHERE status = 'acknowledged'") == 1
    });
    // The HTTP port speaks TLS only: a plaintext request gets no HTTP answer.
    assert_eq!(http_get(b.http, "/healthz"), None);
    a.stop();
    b.stop();
}

#[test]
fn a_peer_whose_certificate_no_trusted_ca_signed_gets_nothing() {
    let pki_dir = tempfile::tempdir().unwrap();
    let (pki, other) = (
        Pki::new(pki_dir.path()),
        Pki::new(&{
            let d = pki_dir.path().join("other");
            std::fs::create_dir(&d).unwrap();
            d
        }),
    );
    // A trusts `other`'s CA only; B's certificate is signed by `pki`'s.
    let mut a = Node::new("https://ledger-a.example.org").with_tls(&Pki {
        ca: other.ca.clone(),
        ..pki.clone()
    });
    let mut b = Node::new("https://ledger-b.example.org").with_tls(&pki);
    a.peer_with(&b.name, &b.endpoint(), "all");
    b.peer_with(&a.name, &a.endpoint(), "all");
    a.start();
    b.start();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(a.donate(2_500));
    wait_for("A's delivery failed on B's certificate", 60, || {
        a.query_text("SELECT COALESCE(MAX(last_error), '') FROM civishare_outbox")
            .contains("certificate")
    });
    assert_eq!(b.count("SELECT COUNT(*) FROM civishare_inbox"), 0);
    a.stop();
    b.stop();
}

#[tokio::test]
async fn a_peer_that_was_down_receives_every_change_in_order_once_it_is_back() {
    let mut a = Node::new("https://ledger-a.example.org");
    let mut b = Node::new("https://ledger-b.example.org");
    a.peer_with(&b.name, &b.endpoint(), "all");
    b.peer_with(&a.name, &a.endpoint(), "all");
    a.start();

    // B is down: A queues, fails, backs off.
    let mut client = a.client().await;
    for cents in [1_000, 2_000, 3_000] {
        client
            .add_donation(with_token(
                donation(ev::PaymentMethod::Paypal, cents),
                &a.token(),
            ))
            .await
            .unwrap();
    }
    wait_for("A tried and failed", 60, || {
        a.count("SELECT COUNT(*) FROM civishare_outbox WHERE status = 'failed' AND attempts >= 1")
            == 3
    });
    // A restart of the sender loses nothing.
    a.stop();
    a.start();
    b.start();
    wait_for("B applied all three", 120, || {
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") == 3
    });
    wait_for("A recorded the answers", 60, || {
        a.count("SELECT COUNT(*) FROM civishare_outbox WHERE status = 'acknowledged'") == 3
    });
    assert_eq!(a.count("SELECT COUNT(*) FROM civishare_outbox"), 3);
    // In order: B received A's donations in the order A created them (messages are UUIDv7,
    // so in the order sent; a message's changes to different donations are applied at once).
    let db = rusqlite::Connection::open(b.dir.path().join("civishare.sqlite")).unwrap();
    let refs: Vec<u64> = db
        .prepare("SELECT entity_reference FROM civishare_inbox ORDER BY message_id, change_index")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r: rusqlite::Result<String>| r.unwrap().parse().unwrap())
        .collect();
    assert_eq!(refs.len(), 3);
    assert!(refs.windows(2).all(|w| w[0] < w[1]), "{refs:?}");
    a.stop();
    b.stop();
}

#[test]
fn the_peering_secret_is_never_stored_in_clear_and_removal_destroys_its_key() {
    let node = Node::new("https://ledger-a.example.org");
    let out = node.ledger(
        &[
            "peer",
            "add",
            "--node",
            "https://b.example.org",
            "--url",
            "http://127.0.0.1:1/x",
        ],
        &[],
    );
    let secret = out.lines().last().unwrap().trim().to_owned();
    assert_eq!(secret.len(), 43, "{out}");
    let listed = node.ledger(&["peer", "list"], &[]);
    assert!(listed.contains("https://b.example.org") && !listed.contains(&secret));
    for (path, bytes) in crate::support::read_dir_bytes(node.dir.path()) {
        assert!(
            !crate::support::contains(&bytes, secret.as_bytes()),
            "the secret is in clear in {}",
            path.display()
        );
    }
    node.ledger(&["peer", "remove", "--node", "https://b.example.org"], &[]);
    assert!(!node
        .ledger(&["peer", "list"], &[])
        .contains("https://b.example.org"));
    let _: &Path = node.dir.path();
}

#[tokio::test]
async fn in_a_triangle_a_donation_is_applied_once_on_each_other_node_and_never_returns() {
    let mut nodes = [
        Node::new("https://ledger-a.example.org"),
        Node::new("https://ledger-b.example.org"),
        Node::new("https://ledger-c.example.org"),
    ];
    for i in 0..3 {
        for j in 0..3 {
            if i != j {
                nodes[i].peer_with(&nodes[j].name, &nodes[j].endpoint(), "all");
            }
        }
    }
    for n in &mut nodes {
        n.start();
    }
    let [a, b, c] = &nodes;
    a.donate(4_200).await;
    for n in [b, c] {
        wait_for("the donation applied", 60, || {
            n.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") == 1
        });
    }
    // Every node's projector past its head and its queue delivered: nothing is in flight.
    for n in [a, b, c] {
        wait_for("the node's outgoing side is idle", 60, || {
            n.count("SELECT COALESCE(MAX(position), 0) FROM civishare_checkpoint") as f64 > n.head()
                && n.count("SELECT COUNT(*) FROM civishare_outbox WHERE status <> 'acknowledged'")
                    == 0
        });
    }
    assert_eq!(
        a.count("SELECT COUNT(*) FROM civishare_inbox"),
        0,
        "it came back to A"
    );
    let received = b.count("SELECT COUNT(*) FROM civishare_inbox")
        + c.count("SELECT COUNT(*) FROM civishare_inbox");
    let sent: i64 = [a, b, c]
        .iter()
        .map(|n| n.count("SELECT COUNT(*) FROM civishare_outbox"))
        .sum();
    // A to B and C, then at most one forward between B and C each way: the second copy
    // is ignored as a loop, and nothing travels further.
    assert_eq!(sent, received, "changes sent and received");
    assert!((2..=4).contains(&received), "{received} changes received");
    assert_eq!(
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'")
            + c.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'"),
        2
    );
}

/// A peer that only records: answers every message 200 with one `applied` per change and
/// keeps the raw bodies.
fn capture_peer(port: u16) -> std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>> {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut raw = Vec::new();
            let mut buf = [0u8; 65536];
            // Read the head, then as many body bytes as it announces.
            let body = loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                raw.extend_from_slice(&buf[..n]);
                let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if raw.len() >= end + 4 + length {
                    break Some(raw[end + 4..end + 4 + length].to_vec());
                }
            };
            let Some(body) = body else { continue };
            let message = Envelope::parse(&body).unwrap();
            let results: Vec<serde_json::Value> = (0..message.payload.changes.len())
                .map(|i| serde_json::json!({"index": i, "type": "x", "status": "applied"}))
                .collect();
            kept.lock().unwrap().push(body);
            let answer = serde_json::json!({"id": message.id, "results": results}).to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    bodies
}

#[tokio::test]
async fn a_donation_scrubbed_while_queued_goes_out_without_its_personal_data_and_its_scrub_follows()
{
    let mut a = Node::new("https://ledger-a.example.org");
    let port = free_port();
    a.peer_with(
        "https://capture.example.org",
        &format!("http://127.0.0.1:{port}/civishare/v1/messages"),
        "",
    );
    a.start();
    // The peer is down while the donation is queued.
    a.donate(2_500).await;
    wait_for("the change is queued and its delivery failed", 60, || {
        a.count("SELECT COUNT(*) FROM civishare_outbox WHERE status = 'failed'") == 1
    });
    // Scrubbed (an abandoned PayPal donation, with no grace period) while still queued.
    a.stop();
    let report = a.ledger(&["scrub", "--scrub-grace-hours", "0", "--json"], &[]);
    assert!(report.contains("abandoned"), "{report}");
    a.start();
    let bodies = capture_peer(port);
    wait_for("both changes acknowledged", 60, || {
        a.count("SELECT COUNT(*) FROM civishare_outbox WHERE status = 'acknowledged'") == 2
    });
    let bodies = bodies.lock().unwrap().clone();
    let all: Vec<u8> = bodies.concat();
    for personal in [
        "Adelheid",
        "Zwiebelmeier",
        "Geheimweg",
        "10963",
        "adelheid.zwiebelmeier",
    ] {
        assert!(
            !crate::support::contains(&all, personal.as_bytes()),
            "{personal} was sent after the scrub"
        );
    }
    let types: Vec<String> = bodies
        .iter()
        .flat_map(|b| Envelope::parse(b).unwrap().payload.changes)
        .map(|c| c.change_type)
        .collect();
    assert_eq!(
        types,
        [
            "ledger.change.donation.created",
            "ledger.change.donation.scrubbed"
        ]
    );
    // What is left of the donation still goes: its kind and salutation.
    assert!(crate::support::contains(
        &all,
        b"\"salutation\",\"from\":\"\",\"to\":\"Frau\""
    ));
}

#[tokio::test]
async fn a_scrub_on_a_purges_the_copy_on_b() {
    let mut a = Node::new("https://ledger-a.example.org");
    let mut b = Node::new("https://ledger-b.example.org");
    a.peer_with(&b.name, &b.endpoint(), "all");
    b.peer_with(&a.name, &a.endpoint(), "all");
    a.start();
    b.start();
    a.donate(2_500).await;
    wait_for("B applied the donation", 60, || {
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") == 1
    });
    a.stop();
    a.ledger(&["scrub", "--scrub-grace-hours", "0"], &[]);
    a.start();
    wait_for("B applied the scrub", 60, || {
        b.count(
            "SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied' \
             AND change_type = 'ledger.change.donation.scrubbed'",
        ) == 1
    });
    let local: u64 = b
        .query_text("SELECT local_reference FROM civishare_inbox ORDER BY seq LIMIT 1")
        .parse()
        .unwrap();
    let copy = b
        .client()
        .await
        .get_donation(with_token(
            api::GetDonationRequest { donation_id: local },
            &b.token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let donor = copy.donor.unwrap_or_default();
    assert!(
        donor.last_name.is_empty() && donor.email.is_empty(),
        "{donor:?}"
    );
    assert!(copy.is_scrubbed);
    assert_eq!(copy.donor_kind, "person");
}

#[tokio::test]
async fn a_sender_killed_mid_delivery_loses_and_doubles_nothing() {
    const N: i64 = 40;
    let mut a = Node::new("https://ledger-a.example.org");
    let mut b = Node::new("https://ledger-b.example.org");
    a.peer_with(&b.name, &b.endpoint(), "all");
    b.peer_with(&a.name, &a.endpoint(), "all");
    a.start();
    b.start();
    let mut client = a.client().await;
    for i in 0..N {
        client
            .add_donation(with_token(
                donation(ev::PaymentMethod::Paypal, 1_000 + i),
                &a.token(),
            ))
            .await
            .unwrap();
    }
    // SIGKILL while B is part-way through (or, on a fast machine, just done).
    wait_for("B applied a first change", 60, || {
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") >= 1
    });
    a.stop();
    let before = b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'");
    a.start();
    wait_for("B applied every change", 120, || {
        b.count("SELECT COUNT(*) FROM civishare_inbox WHERE status = 'applied'") == N
    });
    wait_for("A recorded every answer", 60, || {
        a.count("SELECT COUNT(*) FROM civishare_outbox WHERE status = 'acknowledged'") == N
    });
    assert_eq!(a.count("SELECT COUNT(*) FROM civishare_outbox"), N);
    // Exactly one donation on B per donation on A, whatever was sent twice.
    assert_eq!(
        b.query(
            "events.sqlite",
            "SELECT COUNT(*) FROM events WHERE event_type = 'DonationCreated.v2'"
        ),
        N
    );
    assert_eq!(
        b.count(
            "SELECT COUNT(DISTINCT entity_reference) FROM civishare_inbox WHERE status = 'applied'"
        ),
        N
    );
    assert!(before <= N);
}
