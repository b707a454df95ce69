//! `tpw genesis`: turns a genesis spec into the genesis file every node of a network starts
//! from.

use super::common::print_json;
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use tpw_contracts::Genesis;

#[derive(Subcommand)]
pub(crate) enum GenesisCommand {
    /// Checks a genesis spec, computes its network id and writes the genesis file.
    Create {
        /// Genesis JSON without network_id.
        #[arg(long)]
        spec: PathBuf,
        /// Where to write the genesis.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `tpw genesis ...`.
pub(crate) fn genesis(command: GenesisCommand) -> anyhow::Result<()> {
    match command {
        GenesisCommand::Create { spec, out } => create_genesis(&spec, &out),
    }
}

fn create_genesis(spec: &Path, out: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(spec).with_context(|| format!("cannot read {}", spec.display()))?;
    let genesis: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("{} is not genesis JSON", spec.display()))?;
    let genesis = Genesis {
        network_id: None,
        ..genesis
    };
    genesis.build()?;
    let network_id = hex::encode(genesis.compute_network_id()?);
    let genesis = Genesis {
        network_id: Some(network_id.clone()),
        ..genesis
    };
    std::fs::write(out, serde_json::to_string_pretty(&genesis)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    print_json(&serde_json::json!({ "network_id": network_id, "genesis": out }))
}
