//! The `ledger` binary: parse arguments, start telemetry, hand over to the library.
use clap::Parser;

/// mimalloc instead of glibc's allocator: the projector and the event log allocate and free
/// many small rows and strings per batch; see `BENCHMARKS.md` for the measured difference.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ledger::cli::Cli::parse();
    ledger::telemetry::init();
    ledger::store::sqlite::configure_library();
    ledger::api::install_crypto_provider();
    ledger::cli::run(cli).await
}
