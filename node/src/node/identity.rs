//! Who this node is: the checks that keep a node from running on a data folder or under an id
//! it must not (an empty folder of a voter that lost its data, a folder restored from its own
//! backup, a removed node), and the peers its configuration names.

use crate::config::NodeConfig;
use crate::storage::Db;
use anyhow::{bail, Context};
use std::net::SocketAddr;
use tpw_contracts::genesis::NodeRole;
use tpw_contracts::governance::NodeRecord;
use tpw_contracts::Genesis;

/// Refuses an empty data folder unless this is the node's first start (`--new-node`): a voter
/// that lost its data must never vote again under its old identity.
pub(super) fn check_empty_folder(
    config: &NodeConfig,
    genesis: &Genesis,
    public_key: &[u8; 32],
) -> anyhow::Result<()> {
    let genesis_me = genesis
        .nodes
        .iter()
        .find(|node| node.public_key == hex::encode(public_key));
    match genesis_me {
        Some(node) if node.role == NodeRole::Voter => bail!(
            "the data folder {} holds no ledger. A voter that lost its data must never vote again under \
             its old identity: it could vote twice in one term. If this is the first start of node {}, \
             start it with --new-node; to replace a lost node, give it a new key and add it through a \
             governance add_node change (docs/operating.md, Rebuild a lost node).",
            config.data_dir.display(),
            node.name
        ),
        Some(_) => Ok(()),
        None => bail!(
            "the data folder {} holds no ledger and the node key {} is not in the genesis node set: \
             a node added by governance starts with --node-id <its id> --new-node",
            config.data_dir.display(),
            config.node_key_file.display()
        ),
    }
}

/// Refuses a data folder restored from a backup of this very node, or one whose restored
/// ledger records this node: that node may have voted and acknowledged entries after it.
pub(super) fn check_restored(db: &Db, me: &Identity) -> anyhow::Result<()> {
    if crate::restore::restored_from(db)? == Some(me.id) {
        bail!(
            "this data folder was restored from a backup of node {} itself: that node may have voted \
             and acknowledged entries after the backup, so it never runs again on it. Run the folder \
             as a new node (a new key and id added by governance, docs/operating.md).",
            me.id
        );
    }
    if crate::restore::restored_refused(db)?.contains(&me.id) {
        bail!(
            "this data folder was restored (tpw restore), and its ledger records node {} at the \
             restored height: that node may have voted and acknowledged entries after it, so it \
             never runs on the folder. Run it as a new node (a new key and id added by \
             governance, docs/operating.md).",
            me.id
        );
    }
    Ok(())
}

/// Who this node is in the node set the ledger records: the active node with its key, or the
/// id the configuration names (a node added by governance that has not yet replicated its own
/// record, or one restarted with a rotated key before it applied the rotation).
pub(super) fn identify(
    node_set: &[NodeRecord],
    public_key: &[u8; 32],
    config: &NodeConfig,
    fresh: bool,
) -> anyhow::Result<Identity> {
    if let Some(node) = node_set
        .iter()
        .find(|node| node.active() && node.public_key == *public_key)
    {
        if config.node_id.is_some_and(|id| id != node.id) {
            bail!(
                "node_id {:?} is configured, but the ledger records this key as node {}",
                config.node_id,
                node.id
            );
        }
        return Ok(Identity { id: node.id });
    }
    let Some(id) = config.node_id else {
        bail!(
            "the node key {} (public key {}) belongs to no active node of the node set this ledger \
             records; a node added by governance starts with --node-id <its id> --new-node",
            config.node_key_file.display(),
            hex::encode(public_key)
        );
    };
    match node_set.iter().find(|node| node.id == id) {
        Some(_) if fresh => bail!(
            "node {id} is already in this ledger's node set, and the data folder is empty: a node \
             that lost its data must never start again under its old id (it could vote twice in \
             one term). Add it as a new node with a new id and key (docs/operating.md)."
        ),
        Some(node) if !node.active() => bail!(
            "node {id} was removed from the node set at height {:?}; a removed node never returns \
             (add a new node with a new id and key)",
            node.removed_at_height
        ),
        Some(_) => {
            tracing::warn!(
                node_id = id,
                "this key is not the one the local ledger records for this node: a key rotation \
                 this node has not applied yet; peers admit the new key once they have"
            );
            Ok(Identity { id })
        }
        None => {
            tracing::info!(
                node_id = id,
                "joining: the local ledger does not record this node yet; it replicates the \
                 ledger from the leader once governance added it"
            );
            Ok(Identity { id })
        }
    }
}

/// This node's id in the node set (its role is read from the ledger as it changes).
pub(super) struct Identity {
    pub(super) id: u64,
}

/// The configured peer addresses; a peer the ledger does not record yet is allowed (it may be
/// added by governance later) but named in the log.
pub(super) fn configured_peers(
    config: &NodeConfig,
    node_set: &[NodeRecord],
) -> anyhow::Result<std::collections::BTreeMap<u64, SocketAddr>> {
    let mut configured = std::collections::BTreeMap::new();
    for peer in &config.peers {
        let address: SocketAddr = peer
            .address
            .parse()
            .with_context(|| format!("peer {} address", peer.id))?;
        if !node_set.iter().any(|node| node.id == peer.id) {
            tracing::warn!(
                node_id = peer.id,
                "configured peer is not in the node set the ledger records (yet)"
            );
        }
        configured.insert(peer.id, address);
    }
    Ok(configured)
}
