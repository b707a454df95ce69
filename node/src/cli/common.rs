//! What the client commands share: how to reach a node, how to sign, and how to print an
//! answer, so that every command connects, signs and prints the same way.

use anyhow::bail;
use std::path::PathBuf;
use tpw_contracts::Body;
use tpw_node::client::Client;

/// How every command that reaches a node speaks TLS.
#[derive(clap::Args)]
pub(crate) struct TlsArgs {
    /// PEM file of the CA that issued the node's certificate (a network's own CA: `tpw-testnet
    /// up --tls` and ./scripts/demo print it); only it is trusted. Without it, the system's
    /// trusted roots.
    #[arg(long, env = "TPW_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// Client certificate (PEM) shown to a listener with mutual TLS; with --client-key.
    #[arg(long, env = "TPW_CLIENT_CERT", global = true, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); with --client-cert.
    #[arg(long, env = "TPW_CLIENT_KEY", global = true, requires = "client_cert")]
    client_key: Option<PathBuf>,
}

impl TlsArgs {
    /// Makes these the TLS of every client this process opens.
    pub(crate) fn apply(&self) -> anyhow::Result<()> {
        if self.ca_file.is_none() && self.client_cert.is_none() {
            return Ok(());
        }
        let tls = tpw_node::tls::ClientTls {
            ca_files: self.ca_file.iter().cloned().collect(),
            system_roots_too: false,
            ca_certificates: Vec::new(),
            identity: self.client_cert.clone().zip(self.client_key.clone()),
        };
        tpw_node::tls::client::set_process_default(tls)?;
        Ok(())
    }
}

#[derive(clap::Args)]
pub(crate) struct ClientArgs {
    /// The node's API address (https://, or http:// for a node serving plain HTTP).
    #[arg(long, env = "TPW_NODE", default_value = "https://127.0.0.1:7100")]
    pub(crate) node: String,
    /// A participant's key: signs transactions, and signs reads, which show only what that
    /// participant may see. A key file's path, or a PKCS#11 URI for a key in a token
    /// (`pkcs11:token=LABEL;object=KEY?module-path=LIB&pin-source=file:PIN_FILE`; the PIN may
    /// come from TPW_PKCS11_PIN, the library from TPW_PKCS11_MODULE).
    #[arg(long, env = "TPW_KEY")]
    pub(crate) key: Option<String>,
}

impl ClientArgs {
    /// A client for the node, signing reads with the key when one is given.
    pub(crate) fn connect(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.node);
        Ok(match &self.key {
            Some(spec) => client.with_signer(tpw_node::signer::open(spec)?),
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
    let Some(spec) = &sign.client.key else {
        bail!("--key names the signer's key file or PKCS#11 URI");
    };
    let signer = tpw_node::signer::open(spec)?;
    let client = Client::new(&sign.client.node);
    let (status, response) = client
        .sign_with_and_submit(signer.as_ref(), body, !sign.no_wait)
        .await?;
    print_json(&response)?;
    if status == 422 {
        bail!("the ledger rejected the transaction");
    }
    Ok(())
}
