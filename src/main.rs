//! The `ledger` binary: parse arguments, start telemetry, hand over to the library.
use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: the projector and the event log allocate and free
/// many small rows and strings per batch; see `BENCHMARKS.md` for the measured difference.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = ledger::cli::Cli::parse();
    ledger::telemetry::init();
    ledger::store::sqlite::configure_library();
    ledger::api::install_crypto_provider();
    match ledger::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the cause chain, never a backtrace: returning the error from
            // `main` would print its `Debug`, which with `RUST_BACKTRACE` set is a stack trace
            // for what is usually a mistyped flag. Panics still print theirs.
            eprintln!("error: {}", ledger::telemetry::error_line(&error));
            ExitCode::FAILURE
        }
    }
}
