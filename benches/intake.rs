//! AddDonation over gRPC: the real server on a temporary data directory, 64 concurrent
//! clients (each on its own HTTP/2 connection), durable appends. Prints calls/s and latency
//! percentiles. The measurement is `ledger::bench::intake_rate`, the one `ledger bench` runs.
//!
//! Run: `cargo bench --bench intake` (`LEDGER_BENCH_CALLS`, `LEDGER_BENCH_CLIENTS` to vary).

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // The SQLite settings `ledger` runs with (see `configure_library`), so figures match its own.
    ledger::store::sqlite::configure_library();
    let calls = env("LEDGER_BENCH_CALLS", 60_000);
    let clients = env("LEDGER_BENCH_CLIENTS", ledger::bench::CONCURRENCY);
    let dir = tempfile::tempdir().unwrap();
    let f = ledger::bench::intake_rate(dir.path(), calls, clients)
        .await
        .unwrap();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "AddDonation over gRPC: {} calls from {clients} clients in {:.2}s = {:.0} calls/s; \
         latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        f.calls,
        f.elapsed.as_secs_f64(),
        f.calls_per_second(),
        ms(f.p50),
        ms(f.p90),
        ms(f.p99),
        ms(f.max),
    );
}
