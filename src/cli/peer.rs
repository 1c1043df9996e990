//! `ledger peer`: the CiviShare local node and the peerings with other ledgers or CRMs
//! (`docs/civishare.md`). Works while `ledger serve` runs: `serve` reads the peerings afresh
//! for every message it receives and every delivery round.
use std::collections::BTreeSet;
use std::io::{BufRead as _, Write as _};

use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use super::preflight::Needs;
use crate::civishare::peers::{generate_secret, parse_types};
use crate::civishare::{CivishareStore, NewPeering};
use crate::config::StorageArgs;

/// Peering operations.
#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Show this ledger's node name, or set it with `--name` (by convention its base URL; the
    /// name its peers know it by).
    Node(NodeArgs),
    /// Peer with a remote node: prints the generated shared secret once, or takes the one the
    /// other side generated (`--secret-stdin` or `LEDGER_PEER_SECRET`).
    Add(AddArgs),
    /// List the peerings (never their secrets).
    List,
    /// Remove a peering: its queue goes, its secret's key is destroyed.
    Remove(RemoveArgs),
    /// Per peer: the outgoing queue by status, its oldest undelivered change, the last error,
    /// and what became of the changes received from it.
    Status,
}

/// Flags of `ledger peer node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The local node's name (e.g. `https://ledger-a.example.org`); absent: show it.
    #[arg(long, env = "LEDGER_PEER_NODE_NAME")]
    pub name: Option<String>,
}

/// Flags of `ledger peer add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The remote node's name, exactly as it names itself (`ledger peer node` over there).
    #[arg(long, env = "LEDGER_PEER_NODE")]
    pub node: String,

    /// The remote node's message endpoint, e.g. `http://10.0.0.2:9184/civishare/v1/messages`.
    #[arg(long, env = "LEDGER_PEER_URL")]
    pub url: String,

    /// Change types sent to the peer, comma-separated, or `all`; empty sends nothing.
    #[arg(long, env = "LEDGER_PEER_OUTGOING", default_value = "all")]
    pub outgoing: String,

    /// Change types accepted from the peer, comma-separated, or `all`; empty accepts nothing.
    #[arg(long, env = "LEDGER_PEER_INCOMING", default_value = "all")]
    pub incoming: String,

    /// Also send the changes already in the log (from its start, in log order, before any
    /// later one), not only those appended from now on.
    #[arg(long, env = "LEDGER_PEER_HISTORY")]
    pub history: bool,

    /// Read the shared secret the other side generated from the first line of stdin.
    #[arg(long, env = "LEDGER_PEER_SECRET_STDIN")]
    pub secret_stdin: bool,

    /// The shared secret the other side generated (prefer `--secret-stdin`: an environment
    /// variable or flag may be seen by other users of the machine). Absent: one is generated.
    #[arg(long, env = "LEDGER_PEER_SECRET", hide_env_values = true)]
    pub secret: Option<SecretString>,
}

/// Flags of `ledger peer remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The remote node's name.
    #[arg(long, env = "LEDGER_PEER_NODE")]
    pub node: String,
}

/// What a peer command uses: the key store (sealed secrets) and the data directory.
pub fn needs(_cmd: &PeerCommand) -> Needs {
    Needs {
        key_store: true,
        creates: true,
        ..Needs::default()
    }
}

/// Runs a peer command.
pub async fn run(storage: &StorageArgs, cmd: PeerCommand) -> anyhow::Result<()> {
    let store = CivishareStore::open_in(&storage.data_dir).await?;
    let mut out = std::io::stdout().lock();
    match cmd {
        PeerCommand::Node(args) => {
            if let Some(name) = args.name {
                store.set_local_node(&name).await?;
            }
            match store.local_node().await? {
                Some(name) => writeln!(out, "{name}")?,
                None => anyhow::bail!(crate::civishare::CivishareError::NoLocalNode),
            }
        }
        PeerCommand::Add(args) => {
            let vault = storage.open_vault().await?;
            let (secret, generated) = match (args.secret, args.secret_stdin) {
                (Some(s), _) => (s, false),
                (None, true) => {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    (SecretString::from(line.trim().to_owned()), false)
                }
                (None, false) => (SecretString::from(generate_secret()), true),
            };
            let new = NewPeering {
                node_name: args.node,
                endpoint: args.url,
                secret,
                outgoing: parse_types("--outgoing", &args.outgoing)?,
                incoming: parse_types("--incoming", &args.incoming)?,
                history: args.history,
            };
            let peering = store.add_peering(vault.keys(), &new).await?;
            writeln!(
                out,
                "peering {} with {} at {}\n  outgoing: {}\n  incoming: {}",
                peering.id,
                peering.node_name,
                peering.endpoint,
                list(&peering.outgoing),
                list(&peering.incoming)
            )?;
            if generated {
                writeln!(
                    out,
                    "shared secret (shown this once; give it to the other side's \
                     `ledger peer add --secret-stdin`):\n{}",
                    new.secret.expose_secret()
                )?;
            }
        }
        PeerCommand::List => {
            let local = store
                .local_node()
                .await?
                .unwrap_or_else(|| "(unnamed)".into());
            writeln!(out, "local node: {local}")?;
            for p in store.peerings().await? {
                writeln!(
                    out,
                    "{}\t{}\toutgoing={}\tincoming={}\tsince {}",
                    p.node_name,
                    p.endpoint,
                    list(&p.outgoing),
                    list(&p.incoming),
                    p.created_at
                )?;
            }
        }
        PeerCommand::Remove(args) => {
            let vault = storage.open_vault().await?;
            store.remove_peering(vault.keys(), &args.node).await?;
            writeln!(
                out,
                "peering with {} removed; its secret's key is destroyed",
                args.node
            )?;
        }
        PeerCommand::Status => {
            for report in store.peer_reports().await? {
                let (p, q) = (&report.peering, &report.queue);
                let statuses: Vec<String> = q
                    .by_status
                    .iter()
                    .map(|(s, n)| format!("{s}={n}"))
                    .collect();
                writeln!(out, "{}", p.node_name)?;
                writeln!(
                    out,
                    "  outgoing: {} (undelivered {}{})",
                    if statuses.is_empty() {
                        "none".into()
                    } else {
                        statuses.join(" ")
                    },
                    q.undelivered,
                    q.oldest_undelivered
                        .as_ref()
                        .map(|t| format!(", oldest queued {t}"))
                        .unwrap_or_default()
                )?;
                if let Some(e) = &q.last_error {
                    writeln!(out, "  last error: {e}")?;
                }
                let incoming: Vec<String> = report
                    .incoming
                    .iter()
                    .map(|(status, n)| format!("{status}={n}"))
                    .collect();
                writeln!(
                    out,
                    "  incoming: {}",
                    if incoming.is_empty() {
                        "none".into()
                    } else {
                        incoming.join(" ")
                    }
                )?;
            }
        }
    }
    Ok(())
}

fn list(types: &BTreeSet<String>) -> String {
    if types.is_empty() {
        "(none)".into()
    } else {
        types.iter().cloned().collect::<Vec<_>>().join(",")
    }
}
