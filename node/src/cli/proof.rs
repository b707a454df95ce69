//! `tpw proof`: a transfer's inclusion proof, fetched from a node or checked offline against a
//! head hash obtained elsewhere.

use super::common::{print_json, ClientArgs};
use anyhow::{bail, Context};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub(crate) enum ProofCommand {
    /// Fetches a transfer's inclusion proof (a signed read) and writes it to a file.
    Get {
        #[command(flatten)]
        client: ClientArgs,
        /// Submitting participant.
        #[arg(long)]
        participant: u64,
        /// The transfer's id, as its submitter chose it.
        #[arg(long)]
        id: u128,
        /// Height the proof's headers end at (default: the node's head).
        #[arg(long)]
        up_to: Option<u64>,
        /// Where to write the proof (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Checks a proof offline: the transaction's signature, its receipt, both Merkle paths and
    /// the hash links of the headers, optionally up to a head hash you trust. Needs no node.
    Verify {
        /// The proof file `tpw proof get` wrote.
        #[arg(long)]
        file: PathBuf,
        /// The network's genesis file (for the network id).
        #[arg(long)]
        genesis: PathBuf,
        /// A head header hash (hex) obtained elsewhere, say from another bank's node or a
        /// regulator: the proof's headers must end at it. Required: without an anchor, anyone
        /// holding a signed envelope could make up the headers.
        #[arg(long)]
        trusted_head: String,
    },
}

/// Runs `tpw proof ...`.
pub(crate) async fn proof(command: ProofCommand) -> anyhow::Result<()> {
    match command {
        ProofCommand::Get {
            client,
            participant,
            id,
            up_to,
            out,
        } => get_proof(&client, participant, id, up_to, &out).await,
        ProofCommand::Verify {
            file,
            genesis,
            trusted_head,
        } => verify_proof(&file, &genesis, &trusted_head),
    }
}

/// `tpw proof get`: fetches a transfer's proof and writes it to `out`.
async fn get_proof(
    client: &ClientArgs,
    participant: u64,
    id: u128,
    up_to: Option<u64>,
    out: &Path,
) -> anyhow::Result<()> {
    match client.connect()?.proof(participant, id, up_to).await? {
        Some(response) => {
            let text = serde_json::to_string_pretty(&response)? + "\n";
            std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
            print_json(&serde_json::json!({
                "height": response.height,
                "head_height": response.head_height,
                "head_hash": response.head_hash,
                "file": out,
            }))
        }
        None => bail!("transfer {participant}/{id} not found"),
    }
}

/// `tpw proof verify`: checks an inclusion proof offline and prints what it proves.
fn verify_proof(file: &Path, genesis: &Path, trusted_head: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the proof file {}", file.display()))?;
    let response: tpw_node::api_types::ProofResponse =
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a proof written by `tpw proof get`",
                file.display()
            )
        })?;
    let bytes = hex::decode(&response.proof).context("the proof is not hex")?;
    let proof = tpw_contracts::proof::InclusionProof::from_bytes(&bytes)
        .map_err(|error| anyhow::anyhow!("the proof does not decode: {error}"))?;
    let network_id = tpw_node::node::load_genesis(genesis)?.compute_network_id()?;
    let trusted =
        <[u8; 32]>::try_from(hex::decode(trusted_head).context("--trusted-head is not hex")?)
            .map_err(|_| anyhow::anyhow!("--trusted-head must be 32 bytes of hex"))?;
    let proven = proof
        .verify(&network_id, Some(&trusted))
        .map_err(|error| anyhow::anyhow!("the proof does not hold: {error}"))?;
    let view = tpw_contracts::view::TransactionView::from(&proven.transaction);
    print_json(&serde_json::json!({
        "verified": true,
        "tx_id": hex::encode(proven.receipt.tx_id),
        "height": proven.height,
        "code": proven.receipt.code.name(),
        "head_height": proven.head.0,
        "head_hash": hex::encode(proven.head.1),
        "transaction": view,
    }))
}
