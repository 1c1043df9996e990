//! The jobs of `ledger serve` while the PostgreSQL read model is away. Intake never waits for
//! the back office: the server keeps accepting donations, and once the database is back the
//! projector brings every donation into the read model exactly once, with the donor's data
//! decrypted. Meanwhile the monitors tell the truth: the lag gauge keeps rising, and the
//! scrub-eligible gauge shows the figure of `ledger scrub status` or, while it cannot be
//! computed, nothing.
//!
//! The outage is a TCP proxy between the jobs and PostgreSQL that the test cuts: every open
//! connection dropped, new ones closed at once, as a server that went away. The shared server
//! keeps running for the other tests, so this runs everywhere PostgreSQL does.
use crate::support;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ledger::cli::jobs::{self, JobArgs, Jobs};
use ledger::cli::scrub::ScrubPolicyArgs;
use ledger::config::StorageArgs;
use ledger::metrics::Metrics;
use ledger::projection::ReadModel;
use ledger::proto::events as ev;
use support::api::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A TCP proxy in front of PostgreSQL that the test cuts and restores.
struct Proxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Proxy {
    /// Forwards to the server of `url` (`postgres://[user@]host:port/db`).
    async fn start(url: &str) -> Self {
        let upstream = host_port(url).to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, state) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*state.borrow() {
                    // Cut: accepted and closed at once, before the server could say a word.
                    continue;
                }
                let (mut cut, upstream) = (state.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    /// `url` through the proxy.
    fn url(&self, url: &str) -> String {
        url.replacen(host_port(url), &self.addr.to_string(), 1)
    }

    /// Drops every connection and closes new ones until [`Proxy::restore`].
    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// The `host:port` of a PostgreSQL URL.
fn host_port(url: &str) -> &str {
    let authority = url.split_once("://").unwrap().1.split('/').next().unwrap();
    authority.rsplit('@').next().unwrap()
}

/// Polls `check` until it holds; fails with `what` after `secs` seconds.
pub(crate) async fn eventually<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The jobs of `ledger serve` for `app`, with the read model at `url`.
pub(crate) async fn start_jobs(
    app: &TestApp,
    url: &str,
    args: JobArgs,
) -> (Jobs, CancellationToken) {
    let storage = StorageArgs::in_dir(app.dir.path());
    // The stores the server opened: the log itself, the key store once more (as `serve` hands
    // the intake's to the jobs).
    let stores = jobs::SharedStores {
        log: app.log.clone(),
        vault: storage.open_vault().await.unwrap(),
        read_model_url: url.to_owned(),
    };
    let shutdown = CancellationToken::new();
    let jobs = jobs::start(stores, &args, app.metrics.clone(), shutdown.clone());
    (jobs, shutdown)
}

pub(crate) async fn stop_jobs(jobs: Jobs, shutdown: CancellationToken) {
    shutdown.cancel();
    for h in jobs.handles {
        h.await.unwrap();
    }
}

/// Projectors on, no scrub schedule, the default grace period.
pub(crate) fn job_args() -> JobArgs {
    JobArgs {
        projectors: true,
        scrub_interval_minutes: 0,
        scrub_first_run_after_minutes: None,
        scrub_at_start: false,
        scrub_status_interval_seconds: 60,
        scrub: ScrubPolicyArgs {
            scrub_grace_hours: 48,
            scrub_stale_moderation_days: None,
            membership_scrub_grace_hours: 48,
            address_change_scrub_grace_days: 30,
            subscription_removal_grace_days: 30,
        },
    }
}

pub(crate) async fn add_donations(
    app: &mut TestApp,
    method: ev::PaymentMethod,
    n: usize,
) -> Vec<u64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let r = app
            .client
            .add_donation(with_token(donation(method, 2_500), ADMIN))
            .await
            .unwrap();
        ids.push(r.into_inner().donation_id);
    }
    ids
}

async fn donation_rows(rm: &ReadModel) -> Option<usize> {
    rm.dump().await.ok().map(|d| d["donation"].len())
}

/// The lag gauge as `/metrics` shows it.
fn lag(metrics: &Metrics) -> Option<f64> {
    metrics.gauge_value(
        "ledger_projector_lag_positions",
        &[("projector", "readmodel")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn donations_added_while_postgres_is_away_reach_the_read_model_exactly_once() {
    let Some(db) = support::postgres::fresh_database("outage").await else {
        return;
    };
    let proxy = Proxy::start(&db.url).await;
    let mut app = spawn_app().await;
    let (jobs, shutdown) = start_jobs(&app, &proxy.url(&db.url), job_args()).await;
    let rm = ReadModel::connect(&db.url).await.unwrap();

    let mut added = add_donations(&mut app, ev::PaymentMethod::DirectDebit, 10).await;
    eventually("the first donations are projected", 60, || async {
        donation_rows(&rm).await == Some(10)
    })
    .await;

    proxy.cut();
    let during = add_donations(&mut app, ev::PaymentMethod::BankTransfer, 30);
    let during = tokio::time::timeout(Duration::from_secs(60), during).await;
    proxy.restore();
    added.extend(during.expect("intake did not wait for the read model"));

    eventually(
        "donations added during the outage are projected",
        120,
        || async { donation_rows(&rm).await == Some(40) },
    )
    .await;
    for id in &added {
        let row = rm
            .row("donation", *id as i64)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("donation {id} missing"));
        assert_eq!(row["last_name"], "Zwiebelmeier", "decrypted donor of {id}");
    }
    // Exactly once: one change-log row per log position of a domain stream.
    let dump = rm.dump().await.unwrap();
    let events = &dump["donation_event"];
    let domain_events = app
        .log
        .read_all(0, usize::MAX)
        .await
        .unwrap()
        .iter()
        .filter(|e| ledger::domain::streams::is_domain_stream(&e.stream))
        .count();
    assert_eq!(
        events.len(),
        domain_events,
        "every domain event projected exactly once"
    );

    stop_jobs(jobs, shutdown).await;
    rm.close().await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_gauge_rises_while_the_read_model_is_away_and_returns_to_zero() {
    let Some(db) = support::postgres::fresh_database("lag").await else {
        return;
    };
    let proxy = Proxy::start(&db.url).await;
    let mut app = spawn_app().await;
    let (jobs, shutdown) = start_jobs(&app, &proxy.url(&db.url), job_args()).await;
    let rm = ReadModel::connect(&db.url).await.unwrap();
    let metrics = app.metrics.clone();

    add_donations(&mut app, ev::PaymentMethod::DirectDebit, 3).await;
    eventually("the first donations are projected, lag 0", 60, || async {
        donation_rows(&rm).await == Some(3) && lag(&metrics) == Some(0.0)
    })
    .await;

    // Caught up: the checkpoint is the head. From now on lag is head minus that checkpoint.
    proxy.cut();
    let checkpoint = head(&app.log).await;
    add_donations(&mut app, ev::PaymentMethod::BankTransfer, 5).await;
    let behind = (head(&app.log).await - checkpoint) as f64;
    assert!(behind > 0.0);
    eventually("lag shows the events appended while away", 60, || async {
        lag(&metrics) == Some(behind)
    })
    .await;
    add_donations(&mut app, ev::PaymentMethod::BankTransfer, 5).await;
    let further = (head(&app.log).await - checkpoint) as f64;
    assert!(further > behind);
    eventually("lag keeps rising while away", 60, || async {
        lag(&metrics) == Some(further)
    })
    .await;

    proxy.restore();
    eventually(
        "lag returns to 0 once the read model is back",
        120,
        || async { lag(&metrics) == Some(0.0) && donation_rows(&rm).await == Some(13) },
    )
    .await;

    stop_jobs(jobs, shutdown).await;
    rm.close().await;
    drop(db);
}

/// `ledger scrub --scrub-grace-hours 0 status --json` on `app`'s data, read model at `url`.
pub(crate) fn cli_eligible(app: &TestApp, url: &str) -> f64 {
    let out = app
        .ledger()
        .args(["--read-model-url", url])
        .args(["scrub", "--scrub-grace-hours", "0", "status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scrub status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["eligible"].as_u64().unwrap() as f64
}

pub(crate) fn scrub_gauges(metrics: &Metrics) -> (Option<f64>, Option<f64>) {
    (
        metrics.gauge_value("ledger_scrub_eligible", &[]),
        metrics.gauge_value("ledger_scrub_status_up", &[]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_eligible_gauge_shows_the_figure_of_scrub_status_and_nothing_while_the_read_model_is_away(
) {
    let Some(db) = support::postgres::fresh_database("scrub_gauge").await else {
        return;
    };
    let proxy = Proxy::start(&db.url).await;
    let mut app = spawn_app().await;
    // No scrub schedule: the gauge must not depend on one. A grace period of 0 makes every
    // pending PayPal donation abandoned, so eligible, at once.
    let mut args = job_args();
    args.scrub_status_interval_seconds = 1;
    args.scrub.scrub_grace_hours = 0;
    let (jobs, shutdown) = start_jobs(&app, &proxy.url(&db.url), args).await;
    let metrics = app.metrics.clone();

    add_donations(&mut app, ev::PaymentMethod::Paypal, 4).await;
    add_donations(&mut app, ev::PaymentMethod::BankTransfer, 2).await;
    let figure = cli_eligible(&app, &db.url);
    assert_eq!(figure, 4.0, "the pending PayPal donations are eligible");
    eventually("the gauge shows the figure of scrub status", 60, || async {
        scrub_gauges(&metrics) == (Some(figure), Some(1.0))
    })
    .await;

    add_donations(&mut app, ev::PaymentMethod::Paypal, 3).await;
    let figure = cli_eligible(&app, &db.url);
    assert_eq!(figure, 7.0);
    eventually("the gauge follows without a scrub run", 60, || async {
        scrub_gauges(&metrics) == (Some(figure), Some(1.0))
    })
    .await;

    // Away, the figure cannot be computed (`scrub status` cannot catch up either): the gauge
    // is absent rather than an old number, and the status reads down.
    proxy.cut();
    eventually("the gauge is withdrawn while away", 60, || async {
        scrub_gauges(&metrics) == (None, Some(0.0))
    })
    .await;
    add_donations(&mut app, ev::PaymentMethod::Sofort, 2).await;
    proxy.restore();
    let figure = cli_eligible(&app, &db.url);
    assert_eq!(figure, 9.0);
    eventually(
        "the gauge is back with the figure of scrub status",
        60,
        || async { scrub_gauges(&metrics) == (Some(figure), Some(1.0)) },
    )
    .await;

    stop_jobs(jobs, shutdown).await;
    drop(db);
}
