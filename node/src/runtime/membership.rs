//! The raft loop's side of the node set: the engine decides who the members are; this turns
//! them into the peers the network admits and dials (at their configured addresses, else the
//! ones the ledger records), and hands Raft's messages to the network.

use crate::network::{Member, NetworkHandle};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tpw_consensus::raft_types::Message;
use tpw_consensus::replica::AdmittedPeer;

/// The network's members for the engine's admitted peers, at their configured addresses or
/// else the ones the ledger records.
pub(crate) fn members_of(
    peers: Vec<AdmittedPeer>,
    configured: &BTreeMap<u64, SocketAddr>,
) -> Vec<Member> {
    peers
        .into_iter()
        .map(|peer| Member {
            id: peer.id,
            public_key: peer.public_key,
            address: configured
                .get(&peer.id)
                .copied()
                .or_else(|| peer.address.parse().ok()),
            voter: peer.voter,
        })
        .collect()
}

/// Keeps the network's peer set in step with the engine's node set.
#[derive(Default)]
pub(super) struct MemberSync {
    network: Option<NetworkHandle>,
    /// Configured peer addresses, which take precedence over the ledger's.
    configured: BTreeMap<u64, SocketAddr>,
    /// The peers the network last accepted.
    sent: Option<Vec<Member>>,
    /// Peers the network has not taken yet (it was busy): retried every iteration.
    pending: Option<Vec<Member>>,
}

impl MemberSync {
    pub(super) fn connect(
        &mut self,
        network: NetworkHandle,
        configured: BTreeMap<u64, SocketAddr>,
    ) {
        self.network = Some(network);
        self.configured = configured;
    }

    /// The engine's admitted peers changed.
    pub(super) fn update(&mut self, peers: Vec<AdmittedPeer>) {
        if self.network.is_none() {
            return;
        }
        let members = members_of(peers, &self.configured);
        if self.sent.as_ref() != Some(&members) {
            self.pending = Some(members);
            self.retry();
        }
    }

    /// Hands the network the pending peers, if any and it takes them now.
    pub(super) fn retry(&mut self) {
        let (Some(network), Some(members)) = (&self.network, &self.pending) else {
            return;
        };
        if network.set_members(members.clone()) {
            self.sent = self.pending.take();
        }
    }

    /// Queues Raft messages for their peers; snapshot messages that could not be queued are
    /// added to `unsent`.
    pub(super) fn send(&mut self, messages: Vec<Message>, unsent: &mut Vec<u64>) {
        match &self.network {
            Some(network) => unsent.extend(network.send(messages)),
            None => tracing::debug!(count = messages.len(), "no peers: raft messages dropped"),
        }
    }
}
