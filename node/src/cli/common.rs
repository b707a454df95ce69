//! What the client commands share: how to reach a node, how to sign, and how to print an
//! answer, so that every command connects, signs and prints the same way.

use anyhow::bail;
use std::path::PathBuf;
use tpw_contracts::Body;
use tpw_node::client::Client;

#[derive(clap::Args)]
pub(crate) struct ClientArgs {
    /// The node's API address.
    #[arg(long, env = "TPW_NODE", default_value = "http://127.0.0.1:7100")]
    pub(crate) node: String,
    /// Key file of a participant: signs transactions, and signs reads, which show only what
    /// that participant may see.
    #[arg(long, env = "TPW_KEY")]
    pub(crate) key: Option<PathBuf>,
}

impl ClientArgs {
    /// A client for the node, signing reads with the key when one is given.
    pub(crate) fn connect(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.node);
        Ok(match &self.key {
            Some(path) => client.with_key(&tpw_node::keys::load(path)?),
            None => client,
        })
    }
}

#[derive(clap::Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Return at once instead of waiting for commit.
    #[arg(long)]
    no_wait: bool,
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) async fn submit(sign: &SignArgs, body: Body) -> anyhow::Result<()> {
    let Some(key_path) = &sign.client.key else {
        bail!("--key names the signer's key file");
    };
    let key = tpw_node::keys::load(key_path)?;
    let client = Client::new(&sign.client.node);
    let (status, response) = client.sign_and_submit(&key, body, !sign.no_wait).await?;
    print_json(&response)?;
    if status == 422 {
        bail!("the ledger rejected the transaction");
    }
    Ok(())
}
