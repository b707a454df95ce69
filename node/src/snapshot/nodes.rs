//! Learning the node set from peers: a node whose ledger is behind (it was away while members
//! were added or re-keyed, or it starts from an older ledger: a new node, a wiped observer, a
//! restore) knows only the keys its ledger records, and would refuse a leader added or
//! re-keyed since. Every few seconds it asks a peer it admits for that peer's node records
//! (`/tpw/snapshot/1`, request `nodes`); the engine admits the peers they name while that
//! peer's ledger is ahead of this one (`Replica::handle_vouched_nodes`). Peers are consortium
//! nodes, trusted as Raft trusts them; the ledger's own node set takes over once it catches up.

use super::{SnapshotRequest, SnapshotResponse};
use crate::mailbox::{Command, RaftInbox, Shared};
use crate::network::NetworkHandle;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The node-set learning task's inputs.
pub struct NodeSetSync {
    /// The peer transport.
    pub network: NetworkHandle,
    /// Where the answers go.
    pub inbox: RaftInbox,
    /// Status (the configuration to pick peers from) and the stop flag.
    pub shared: Arc<Shared>,
    /// This node's id.
    pub me: u64,
}

impl NodeSetSync {
    /// Runs until the node stops, asking one peer at a time, in turn.
    pub async fn run(self) {
        let mut turn = 0usize;
        while !self.shared.stopping.load(Ordering::Relaxed) {
            tokio::time::sleep(crate::limits::NODE_SET_ASK_INTERVAL).await;
            let peers: Vec<u64> = {
                let status = self
                    .shared
                    .status
                    .read()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                status
                    .voters
                    .iter()
                    .chain(&status.learners)
                    .copied()
                    .filter(|peer| *peer != self.me)
                    .collect()
            };
            if peers.is_empty() {
                continue;
            }
            turn = turn.wrapping_add(1);
            let peer = peers[turn % peers.len()];
            match self
                .network
                .snapshot_request(peer, SnapshotRequest::Nodes)
                .await
            {
                Ok(SnapshotResponse::Nodes { height, records }) => {
                    let _ = self.inbox.try_send(Command::Vouched { height, records });
                }
                Ok(_) => tracing::debug!(node_id = peer, "a peer did not answer with its nodes"),
                Err(error) => tracing::debug!(node_id = peer, %error, "node set request failed"),
            }
        }
    }
}
