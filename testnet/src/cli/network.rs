//! The commands on a local network in a folder: create or restart it, read its status, stop
//! it, and run the demo's payments through it (the fault commands call `commands` directly).

use super::{block_on, print_line};
use std::path::{Path, PathBuf};
use tpw_testnet::commands;

/// What `tpw-testnet up` was asked.
#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// The network's folder.
    #[arg(long)]
    dir: PathBuf,
    /// Voting nodes.
    #[arg(long, default_value_t = 3)]
    voters: usize,
    /// Regulator observer nodes.
    #[arg(long, default_value_t = 1)]
    observers: usize,
    /// Serve the APIs and admin interfaces over TLS: a throwaway CA and node certificates in
    /// DIR/tls; the line names the CA file clients use ("ca"). A network that exists keeps
    /// what it was created with.
    #[arg(long)]
    tls: bool,
}

/// Runs `tpw-testnet up`.
pub(crate) fn up(args: UpArgs) -> anyhow::Result<()> {
    let UpArgs {
        dir,
        voters,
        observers,
        tls,
    } = args;
    block_on(async move { print_line(&commands::up(&dir, voters, observers, tls).await?) })
}

/// Runs `tpw-testnet env`.
pub(crate) fn env(dir: &Path) -> anyhow::Result<()> {
    for (name, value) in commands::env(dir)? {
        println!("export {name}={}", shell_quoted(&value));
    }
    Ok(())
}

/// `value` in single quotes for a POSIX shell.
fn shell_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Runs `tpw-testnet status`.
pub(crate) fn status(dir: PathBuf) -> anyhow::Result<()> {
    block_on(async move { print_line(&commands::status(&dir).await?) })
}

/// Runs `tpw-testnet down`.
pub(crate) fn down(dir: &Path) -> anyhow::Result<()> {
    commands::down(dir).map(|stopped| {
        println!("{}", serde_json::json!({ "stopped": stopped }));
    })
}

/// Runs `tpw-testnet demo`: fails unless every node agrees and money is conserved.
pub(crate) fn demo(dir: PathBuf) -> anyhow::Result<()> {
    block_on(async move {
        let report = commands::demo(&dir).await?;
        print_line(&report)?;
        anyhow::ensure!(
            report.conserved && report.nodes_agreeing == report.nodes,
            "the nodes do not agree: {} of {} on one head, conserved: {}",
            report.nodes_agreeing,
            report.nodes,
            report.conserved
        );
        Ok(())
    })
}
