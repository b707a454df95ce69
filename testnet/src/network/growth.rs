//! Growing and re-keying a local network the way an operator does: a key and a config for a
//! node that governance adds, its first start with `--node-id`, and a node restarted with a
//! rotated key.

use super::{admin_token_path, free_port, LocalNetwork};
use anyhow::Context;
use tpw_contracts::ops::{ApproveProposal, Propose};

/// A node prepared to join: governance still has to add it.
pub struct PreparedNode {
    /// Its index in the network (from 0).
    pub index: usize,
    /// Its Raft id.
    pub id: u64,
    /// Its public key.
    pub public_key: [u8; 32],
    /// Its peer address, `127.0.0.1:port`.
    pub p2p_address: String,
}

impl LocalNetwork {
    /// Bank 1 proposes `action` and bank 2 approves it (M = 2 of the 2 banks), each waiting
    /// for commit, through the node at `api`. Each signed envelope is resubmitted as it is
    /// (idempotent) until committed, as a client does after `retry` or a 503.
    pub async fn decide(
        &self,
        api: &str,
        proposal: u64,
        action: tpw_contracts::governance::GovernanceAction,
    ) -> anyhow::Result<()> {
        use tpw_contracts::{Body, Operation, ResultCode, Transaction};
        let client = tpw_node::client::Client::new(api);
        let network_id = self.genesis.compute_network_id()?;
        let expires_at_ms = tpw_node::runtime::now_ms() + 3_600_000;
        for (bank, operation) in [
            (
                "bank-1",
                Operation::Propose(Propose {
                    proposal,
                    expires_at_ms,
                    action: action.clone(),
                }),
            ),
            (
                "bank-2",
                Operation::ApproveProposal(ApproveProposal { proposal }),
            ),
        ] {
            let key = tpw_node::keys::load(&self.dir.join("keys").join(format!("{bank}.json")))?;
            let envelope = Transaction::sign(
                network_id,
                &key,
                tpw_node::client::fresh_validity(),
                Body::single(operation),
            )
            .to_bytes();
            let mut attempts = 0;
            loop {
                attempts += 1;
                match client
                    .submit(std::slice::from_ref(&envelope), true, None)
                    .await
                {
                    Ok((200, response)) if response.results[0].status == "committed" => {
                        if response.results[0].code != Some(ResultCode::Ok) {
                            anyhow::bail!("governance proposal {proposal}: {response:?}");
                        }
                        break;
                    }
                    Ok((status, response)) if (400..500).contains(&status) => {
                        anyhow::bail!("governance proposal {proposal}: {status} {response:?}")
                    }
                    outcome => {
                        if attempts >= 60 {
                            anyhow::bail!(
                                "governance proposal {proposal}: no commit after {attempts} tries: {outcome:?}"
                            );
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes a key and a config for a new node with the next id (ids are never reused), which
    /// lists every existing node as a peer and names its own id (the ledger does not know its
    /// key until it replicated the `add_node` change). Its first start is a new node's.
    pub fn prepare_node(&mut self) -> anyhow::Result<PreparedNode> {
        let index = self.apis.len();
        let node = index + 1;
        let key = tpw_node::keys::generate()?;
        let key_path = self.dir.join("keys").join(format!("node-{node}.json"));
        tpw_node::keys::write(&key_path, &key)?;
        let port = free_port()?;
        let admin = free_port()?;
        let p2p = free_port()?;
        tpw_node::keys::write_admin_token(&admin_token_path(&self.dir, node))?;
        let (top, tls_sections) = super::tls_fragments(&self.dir, node, self.tls)?;
        let mut config = format!(
            "data_dir = \"{}\"\ngenesis_file = \"{}\"\nnode_key_file = \"{}\"\napi_listen = \"127.0.0.1:{port}\"\np2p_listen = \"127.0.0.1:{p2p}\"\nadmin_listen = \"127.0.0.1:{admin}\"\nadmin_token_file = \"{}\"\nnode_id = {node}\n{top}",
            self.dir.join(format!("node-{node}")).display(),
            self.dir.join("genesis.json").display(),
            key_path.display(),
            admin_token_path(&self.dir, node).display()
        );
        for peer in 0..index {
            let address = self
                .p2p_address(peer)
                .with_context(|| format!("node {} has no p2p address", peer + 1))?;
            config.push_str(&format!(
                "[[peers]]\nid = {}\naddress = \"{address}\"\n",
                peer + 1
            ));
        }
        config.push_str("[webhooks]\nallow_private_networks = true\nallow_plain_http = true\n[log]\nlevel = \"warn\"\n");
        config.push_str(&tls_sections);
        std::fs::write(self.dir.join(format!("node-{node}.toml")), config)?;
        let scheme = if self.tls { "https" } else { "http" };
        self.apis.push(format!("{scheme}://127.0.0.1:{port}"));
        self.admins.push(format!("{scheme}://127.0.0.1:{admin}"));
        self.new_nodes.push(true);
        self.children.push(None);
        Ok(PreparedNode {
            index,
            id: node as u64,
            public_key: key.verifying_key().to_bytes(),
            p2p_address: format!("127.0.0.1:{p2p}"),
        })
    }

    /// Starts a prepared node and waits until it serves.
    pub async fn start_node(&mut self, index: usize) -> anyhow::Result<()> {
        self.spawn(index)?;
        self.wait_serving(index).await
    }

    /// Writes a new key file for node `index` and points its config at it, naming the node's
    /// id (the node may restart before it applied the rotation, when its own ledger still
    /// records the old key); returns the new public key. The node keeps running on its old key
    /// until it is restarted.
    pub fn rotate_node_key(&mut self, index: usize) -> anyhow::Result<[u8; 32]> {
        let node = index + 1;
        let key = tpw_node::keys::generate()?;
        let key_path = self
            .dir
            .join("keys")
            .join(format!("node-{node}-{}.json", tpw_node::runtime::now_ms()));
        tpw_node::keys::write(&key_path, &key)?;
        let config_path = self.dir.join(format!("node-{node}.toml"));
        let config = std::fs::read_to_string(&config_path)?;
        let mut rewritten: Vec<String> = config
            .lines()
            .map(|line| {
                if line.starts_with("node_key_file = ") {
                    format!("node_key_file = \"{}\"", key_path.display())
                } else {
                    line.to_string()
                }
            })
            .collect();
        if !rewritten.iter().any(|line| line.starts_with("node_id = ")) {
            // Top-level keys go before the first table.
            let first_table = rewritten
                .iter()
                .position(|line| line.starts_with('['))
                .unwrap_or(rewritten.len());
            rewritten.insert(first_table, format!("node_id = {node}"));
        }
        std::fs::write(&config_path, rewritten.join("\n") + "\n")?;
        Ok(key.verifying_key().to_bytes())
    }
}
