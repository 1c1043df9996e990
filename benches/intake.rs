//! AddDonation over gRPC: the real server on a temporary data directory, 64 concurrent
//! clients (each on its own HTTP/2 connection), durable appends. Prints calls/s and latency
//! percentiles. Client and server share the machine, so the figures are a lower bound.
//!
//! Run: `cargo bench --bench intake` (`LEDGER_BENCH_CALLS`, `LEDGER_BENCH_CLIENTS` to vary).

use std::time::{Duration, Instant};

use ledger::api::auth::{Authenticator, Scope};
use ledger::api::{Application, Settings};
use ledger::proto::api::{self, ledger_client::LedgerClient};
use ledger::proto::events as ev;
use tonic::Request;

const TOKEN: &str = "bench-token";

fn request(i: usize) -> Request<api::AddDonationRequest> {
    let method = if i.is_multiple_of(2) {
        ev::PaymentMethod::DirectDebit
    } else {
        ev::PaymentMethod::Paypal
    };
    let mut r = Request::new(api::AddDonationRequest {
        context: Some(api::RequestContext {
            request_id: format!("bench-{}", uuid::Uuid::now_v7()),
            actor: Some(api::Actor {
                kind: api::ActorKind::Frontend as i32,
                id: "bench".into(),
            }),
            source: "bench".into(),
        }),
        donor: Some(api::DonorInput {
            kind: ev::DonorKind::Person as i32,
            salutation: "Frau".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            street: "Analytical Street 1".into(),
            postcode: "10963".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            email: "ada@example.org".into(),
            ..Default::default()
        }),
        payment: Some(api::PaymentInput {
            method: method as i32,
            amount_cents: 2_500,
            currency: "EUR".into(),
            interval_months: 0,
            iban: if i.is_multiple_of(2) {
                "DE02120300000000202051".into()
            } else {
                String::new()
            },
            bic: String::new(),
        }),
        tracking: Some(api::TrackingInput {
            campaign: "bench".into(),
            ..Default::default()
        }),
        comment: None,
        donation_id: 0,
    });
    r.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    r
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let calls = env("LEDGER_BENCH_CALLS", 60_000);
    let clients = env("LEDGER_BENCH_CLIENTS", 64);
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::default().with_token("bench", TOKEN, [Scope::All].into());
    let app = Application::build(Settings::for_tests(dir.path(), auth))
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    // Warm-up: connections, first id blocks, SQLite caches.
    let mut warm = LedgerClient::connect(url.clone()).await.unwrap();
    for i in 0..200 {
        warm.add_donation(request(i)).await.unwrap();
    }

    let per_client = calls / clients;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut client = LedgerClient::connect(url).await.unwrap();
                let mut latencies = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let t = Instant::now();
                    client
                        .add_donation(request(c * per_client + i))
                        .await
                        .unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(calls);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "AddDonation over gRPC: {} calls from {clients} clients in {:.2}s = {:.0} calls/s; \
         latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.90).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
}
