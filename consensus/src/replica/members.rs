//! The replica's side of governance: the node set the ledger records, Raft's configuration
//! moved toward it by the leader (the plan is [`crate::membership::plan`]'s), and the hand-over
//! of a leader whose own key was rotated while a member has not replicated the rotation.

use super::{Effect, Executor, Replica, ReplicaError, ReplicaLedger};
use crate::limits::{REKEY_HANDOVER_AFTER_MS, REKEY_HANDOVER_BACKOFF_MS};
use crate::log_store::LogStore;
use crate::membership::Membership;
use tpw_contracts::genesis::NodeRole;
use tpw_contracts::governance::{node_key, node_records, NodeRecord};
use tpw_contracts::model::PublicKey;
use tpw_contracts::StateDiff;

/// The Raft configuration the ledger asks for: its active voters and observers.
pub fn wanted_membership(records: &[NodeRecord]) -> Membership {
    let mut wanted = Membership::default();
    for node in records.iter().filter(|node| node.active()) {
        match node.role {
            NodeRole::Voter => wanted.voters.insert(node.id),
            NodeRole::Observer => wanted.learners.insert(node.id),
        };
    }
    wanted
}

/// A peer the transport admits: the key it must present, whether it votes, and where the
/// ledger (or a vouching peer) says it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmittedPeer {
    /// Its Raft id.
    pub id: u64,
    /// The key it must present.
    pub public_key: PublicKey,
    /// Whether it votes (false for an observer).
    pub voter: bool,
    /// Its recorded peer address.
    pub address: String,
}

/// The peers a transport admits: every node the ledger records as active, every node still in
/// Raft's configuration `raft` (a removed node stays reachable until Raft has removed it, so a
/// leaving leader can hand over and the removal can commit), and the same nodes as a peer
/// vouched for them (from a ledger ahead of this one: a node that was away, or starts from an
/// older ledger, learns which keys the current members present). Where a vouched key differs from
/// the recorded one, both are admitted and the vouched one comes last, so a transport keeping
/// one key per node to dial keeps the newer.
pub fn admitted_peers(
    records: &[NodeRecord],
    vouched: &[NodeRecord],
    raft: &Membership,
) -> Vec<AdmittedPeer> {
    let peer = |node: &NodeRecord| AdmittedPeer {
        id: node.id,
        public_key: node.public_key,
        voter: node.role == NodeRole::Voter,
        address: node.address.clone(),
    };
    let wanted = |node: &&NodeRecord| {
        node.active() || raft.voters.contains(&node.id) || raft.learners.contains(&node.id)
    };
    let mut peers: Vec<AdmittedPeer> = records.iter().filter(wanted).map(peer).collect();
    for node in vouched.iter().filter(wanted) {
        if !peers
            .iter()
            .any(|known| known.id == node.id && known.public_key == node.public_key)
        {
            peers.push(peer(node));
        }
    }
    peers
}

/// Whether node `me` serves as an observer: recorded as one, or not recorded yet.
pub fn serves_as_observer(records: &[NodeRecord], me: u64) -> bool {
    records
        .iter()
        .find(|node| node.id == me && node.active())
        .is_none_or(|node| node.role == NodeRole::Observer)
}

/// Whether a block changed a record of the kind `kind` (the diff is ordered: one seek).
pub(super) fn touches_prefix(diff: &StateDiff, kind: u8) -> bool {
    diff.range(vec![kind]..vec![kind + 1]).next().is_some()
}

/// Whether a block's state changes give node `me`'s record another key than `records` hold.
pub(super) fn rotates_key_of(
    records: &[NodeRecord],
    me: u64,
    diff: &StateDiff,
) -> Result<bool, ReplicaError> {
    let Some(Some(bytes)) = diff.get(&node_key(me)) else {
        return Ok(false);
    };
    let record = tpw_contracts::model::from_bytes(bytes, NodeRecord::decode).map_err(|error| {
        tpw_contracts::state::StoreError(format!("node record {me} does not decode: {error}"))
    })?;
    Ok(records
        .iter()
        .any(|node| node.id == me && node.public_key != record.public_key))
}

impl<L: LogStore, S: ReplicaLedger<L>> Replica<L, S> {
    /// Reads the node set from the ledger (after a block that changed a node record, or a
    /// snapshot) and notes a rotation of this node's key that arrived in a snapshot.
    pub(super) fn refresh_nodes(&mut self) -> Result<(), ReplicaError> {
        let records = node_records(&self.ledger)?;
        let me = self.driver.id();
        let key_of = |records: &[NodeRecord]| {
            records
                .iter()
                .find(|node| node.id == me)
                .map(|node| node.public_key)
        };
        // A rotation that arrived in a snapshot (one in a block was recorded as it applied).
        if let (Some(old), Some(new)) = (key_of(&self.nodes), key_of(&records)) {
            let index = self.ledger.applied_index();
            if old != new && self.rekeyed_at != Some(index) {
                self.ledger.record_own_rekey(Some(index))?;
                self.rekeyed_at = Some(index);
                tracing::info!(index, "this node's key was rotated");
            }
        }
        if records != self.nodes {
            self.nodes = records;
            self.nodes_changed = true;
            let wanted = wanted_membership(&self.nodes);
            tracing::info!(voters = ?wanted.voters, observers = ?wanted.learners, "node set read from the ledger");
        }
        Ok(())
    }

    /// A peer's node set, from its ledger at `height`: kept while that ledger is ahead of this
    /// one (the peers it names are admitted besides this ledger's), dropped otherwise.
    pub fn handle_vouched_nodes(&mut self, height: u64, records: Vec<NodeRecord>) {
        let ahead = height > self.ledger.head().height;
        let vouched = if ahead { records } else { Vec::new() };
        if vouched != self.vouched {
            tracing::info!(
                height,
                nodes = vouched.len(),
                "node set vouched for by a peer"
            );
            self.vouched = vouched;
            self.nodes_changed = true;
        }
    }

    /// As leader, takes the next step toward the ledger's node set.
    pub(super) fn reconcile_membership(&mut self) {
        let wanted = wanted_membership(&self.nodes);
        if let Some(step) = self.driver.reconcile_membership(&wanted) {
            tracing::info!(?step, "membership: next step toward the ledger's node set");
        }
    }

    /// As a leader whose key was ever rotated (at `rekeyed_at`, its latest rotation), hands
    /// leadership to a voter that has the rotation while a member does not and has not
    /// answered for [`REKEY_HANDOVER_AFTER_MS`]: a node that was down during the rotation, or
    /// one that joined later from an older ledger, still refuses the new key, and only the
    /// leader sends it entries. At most once per [`REKEY_HANDOVER_BACKOFF_MS`] for each such
    /// member, since a member that is simply down looks the same.
    pub(super) fn hand_over_after_rekey(
        &mut self,
        now_ms: u64,
        executor: &mut dyn Executor,
    ) -> Result<(), ReplicaError> {
        let Some(rekeyed_at) = self.rekeyed_at.filter(|_| self.driver.is_leader()) else {
            self.lagging_since_ms.clear();
            return Ok(());
        };
        let behind = self.driver.members_behind_and_silent(rekeyed_at);
        self.lagging_since_ms
            .retain(|member, _| behind.contains(member));
        for member in &behind {
            self.lagging_since_ms.entry(*member).or_insert(now_ms);
        }
        let due: Vec<u64> =
            self.lagging_since_ms
                .iter()
                .filter(|(member, since)| {
                    now_ms.saturating_sub(**since) >= REKEY_HANDOVER_AFTER_MS
                        && self.handed_over_for_ms.get(member).is_none_or(|at| {
                            now_ms.saturating_sub(*at) >= REKEY_HANDOVER_BACKOFF_MS
                        })
                })
                .map(|(member, _)| *member)
                .collect();
        if due.is_empty() {
            return Ok(());
        }
        if let Some(target) = self.driver.hand_over_after_rekey(rekeyed_at) {
            tracing::warn!(
                target,
                rekeyed_at,
                members = ?due,
                "members have not replicated this node's key rotation and refuse its new key: \
                 leadership handed over so that they can catch up"
            );
            for member in due {
                self.handed_over_for_ms.insert(member, now_ms);
            }
            executor.effect(Effect::HandedOver { target });
        }
        Ok(())
    }
}
