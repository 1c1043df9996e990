//! The kill test of the KurrentDB backend. Ledger A serves its embedded log on its KurrentDB
//! port; ledger B takes donations with its log in A (`--event-log-url esdb://…`). Four writers
//! send donations to B without pause, each retrying a failed call with the same request id
//! until it is answered, while A and B are each killed with SIGKILL 20 times, in turn, and
//! started again on the same ports and data directories. At the end every answered donation is
//! in A's log exactly once with its payment, B's read model has exactly the answered donations,
//! each with its payment row (no half of a command), and nothing was quarantined.
use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::projection::ReadModel;
use ledger::proto::api::ledger_client::LedgerClient;
use ledger::proto::events as ev;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{EventLog, Position};
use support::api::{donation, with_token};

use crate::cli_serve::{free_port, serving, sigterm};
use crate::serve_on_kurrentdb::users_file;

const KILLS_EACH: usize = 20;
const WRITERS: usize = 4;

/// One `ledger serve` process that is killed and started again with the same flags, ports and
/// data directory; its stderr goes to `serve.log` there, appended across lives.
struct Restartable {
    dir: PathBuf,
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl Restartable {
    fn new(dir: &Path, args: Vec<String>) -> Self {
        let port = free_port();
        let mut args = args;
        args.extend([
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--metrics-listen".to_owned(),
            format!("127.0.0.1:{}", free_port()),
        ]);
        Self {
            dir: dir.to_owned(),
            port,
            args,
            child: None,
        }
    }

    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("ledger"))
            .arg("serve")
            .args(&self.args)
            .env("LEDGER_DATA_DIR", &self.dir)
            .env_remove("LEDGER_READ_MODEL_URL")
            .env_remove("LEDGER_EVENT_LOG_URL")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        serving(self.port, &self.dir).await;
    }

    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, and the exit must be clean.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        sigterm(&child);
        let status = child.wait().unwrap();
        assert!(status.success(), "{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends donations until `stop` is set, each until it is answered: to the first of `targets`
/// (gRPC port and its token), and after a failure the same request (same request id) to the
/// next one in turn. The answers' donation ids are pushed to `answered`.
pub(crate) async fn writer(
    targets: Vec<(u16, String)>,
    stop: Arc<AtomicBool>,
    answered: Arc<Mutex<Vec<u64>>>,
) {
    let mut clients: Vec<_> = targets
        .into_iter()
        .map(|(port, token)| {
            let channel =
                tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
                    .unwrap()
                    .timeout(Duration::from_secs(40))
                    .connect_timeout(Duration::from_secs(2))
                    .connect_lazy();
            (LedgerClient::new(channel), token)
        })
        .collect();
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        let request = donation(ev::PaymentMethod::BankTransfer, 1_000);
        let id = loop {
            let count = clients.len();
            let (client, token) = &mut clients[next % count];
            match client
                .add_donation(with_token(request.clone(), token))
                .await
            {
                Ok(r) => break r.into_inner().donation_id,
                Err(status) => {
                    next += 1;
                    // Only the failures a dying server or log gives; a refusal is a bug.
                    assert!(
                        matches!(
                            status.code(),
                            tonic::Code::Unavailable
                                | tonic::Code::Unknown
                                | tonic::Code::Cancelled
                                | tonic::Code::DeadlineExceeded
                                | tonic::Code::Internal
                        ),
                        "{status:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        answered.lock().unwrap().push(id);
    }
}

/// Waits until `answered` has grown by `more`; panics after a minute without it.
pub(crate) async fn progress(answered: &Mutex<Vec<u64>>, more: usize, what: &str) {
    let target = answered.lock().unwrap().len() + more;
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < target {
        assert!(Instant::now() < deadline, "no donation answered {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The numeric id of a `category-N` stream.
fn stream_id(stream: &str) -> u64 {
    stream.rsplit('-').next().unwrap().parse().unwrap()
}

/// Every event of `category` in the log, in order.
async fn category(log: &SqliteEventLog, category: &str) -> Vec<ledger::store::RecordedEvent> {
    let mut out = Vec::new();
    let mut from: Position = 0;
    loop {
        let batch = log.read_category(category, from, 1_000).await.unwrap();
        let Some(last) = batch.last() else {
            return out;
        };
        from = last.position + 1;
        out.extend(batch);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_kurrentdb_endpoint_and_the_ledger_on_it_twenty_times_each_loses_and_doubles_nothing(
) {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let kurrent_port = free_port();
    let users = users_file(a_dir.path());
    let mut a = Restartable::new(
        a_dir.path(),
        vec![
            "--kurrentdb-listen".into(),
            format!("127.0.0.1:{kurrent_port}"),
            "--kurrentdb-users".into(),
            users,
        ],
    );
    a.start().await;
    let log_url = format!("esdb://ledger:pw@127.0.0.1:{kurrent_port}?tls=false");
    let mut b = Restartable::new(
        b_dir.path(),
        vec![
            "--kurrentdb-listen".into(),
            "off".into(),
            "--event-log-url".into(),
            log_url,
        ],
    );
    b.start().await;
    let token = std::fs::read_to_string(b_dir.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            tokio::spawn(writer(
                vec![(b.port, token.clone())],
                stop.clone(),
                answered.clone(),
            ))
        })
        .collect();

    for round in 0..2 * KILLS_EACH {
        progress(&answered, 3, &format!("before kill {round}")).await;
        // A little later than the answer, so that some kills land inside a call.
        tokio::time::sleep(Duration::from_millis((round as u64 * 7) % 30)).await;
        let target = if round % 2 == 0 { &mut a } else { &mut b };
        target.kill();
        target.start().await;
    }
    progress(&answered, 3, "after the last restart").await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let answered: Vec<u64> = answered.lock().unwrap().clone();
    let ids: BTreeSet<u64> = answered.iter().copied().collect();
    assert_eq!(
        ids.len(),
        answered.len(),
        "two answers with one donation id"
    );

    // B's projector catches up: the read model holds exactly the answered donations, each
    // with its payment.
    let read_model = format!(
        "sqlite://{}",
        b_dir.path().join("readmodel.sqlite").display()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let dump = loop {
        let rm = ReadModel::connect(&read_model).await.unwrap();
        let dump = rm.dump().await.unwrap();
        rm.close().await;
        if dump["donation"].len() >= ids.len() || Instant::now() > deadline {
            break dump;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let column = |row: &str, i: usize| -> u64 { row.split(" | ").nth(i).unwrap().parse().unwrap() };
    let donations: BTreeMap<u64, u64> = dump["donation"]
        .iter()
        .map(|r| (column(r, 0), column(r, 6)))
        .collect();
    let payments: BTreeMap<u64, u64> = dump["payment"]
        .iter()
        .map(|r| (column(r, 0), column(r, 1)))
        .collect();
    assert_eq!(dump["donation"].len(), ids.len(), "donation rows");
    assert_eq!(
        donations.keys().copied().collect::<BTreeSet<_>>(),
        ids,
        "the read model's donations are the answered ones"
    );
    assert_eq!(
        payments.len(),
        donations.len(),
        "one payment row a donation"
    );
    for (donation_id, payment_id) in &donations {
        assert_eq!(
            payments.get(payment_id),
            Some(donation_id),
            "donation {donation_id}'s payment {payment_id}"
        );
    }
    assert!(
        dump["projector_skipped_event"].is_empty(),
        "quarantined: {:?}",
        dump["projector_skipped_event"]
    );

    b.stop();
    a.stop();
    // A's log holds each answered donation once, created once, with its payment.
    let log = SqliteEventLog::open(&a_dir.path().join("events.sqlite"))
        .await
        .unwrap();
    let created: Vec<u64> = category(&log, "donation")
        .await
        .iter()
        .filter(|e| e.event_type.starts_with("DonationCreated"))
        .map(|e| stream_id(&e.stream))
        .collect();
    assert_eq!(created.len(), ids.len(), "DonationCreated events");
    assert_eq!(created.into_iter().collect::<BTreeSet<_>>(), ids);
    let payment_streams: BTreeSet<u64> = category(&log, "payment")
        .await
        .iter()
        .map(|e| stream_id(&e.stream))
        .collect();
    assert_eq!(
        payment_streams,
        payments.keys().copied().collect::<BTreeSet<_>>(),
        "the log's payment streams are those of the answered donations"
    );
    eprintln!(
        "{} donations answered across {} kills of each process",
        ids.len(),
        KILLS_EACH
    );
}
