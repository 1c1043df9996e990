//! The `ledger` binary: parse arguments, start telemetry, hand over to the library.
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ledger::cli::Cli::parse();
    ledger::telemetry::init();
    ledger::cli::run(cli).await
}
