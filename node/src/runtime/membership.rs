//! The raft loop's side of governance: it reads the node set the ledger records, tells the
//! network which peers to admit, applies committed configuration changes (persisted with the
//! applied index, so a restart neither loses nor repeats one), and as leader proposes the next
//! change toward the ledger's node set (the plan is `tpw_consensus::membership`'s).

use super::{Runtime, RuntimeError};
use crate::network::Member;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a re-keyed leader leads before it checks that every member replicated its key
/// rotation: long enough for every reachable member to have answered its appends.
const REKEY_HANDOVER_AFTER: Duration = Duration::from_secs(2);
/// At most one such hand-over per this long: a member that is down (which cannot be told
/// from one refusing the new key) costs at most one leadership transfer a minute, and two
/// re-keyed voters cannot pass leadership back and forth.
const REKEY_HANDOVER_BACKOFF: Duration = Duration::from_secs(60);
use tpw_consensus::raft_types::ConfChange;
use tpw_consensus::Membership;
use tpw_contracts::genesis::NodeRole;
use tpw_contracts::governance::{node_records, NodeRecord};
use tpw_contracts::StateDiff;

/// The ledger's node set as the loop uses it.
#[derive(Default)]
pub(crate) struct NodeSet {
    /// Every node record (removed ones included).
    pub(crate) records: Vec<NodeRecord>,
    /// Configured peer addresses, which take precedence over the ledger's.
    pub(crate) configured: BTreeMap<u64, SocketAddr>,
    /// The peers the network last accepted.
    pub(crate) sent: Option<Vec<Member>>,
    /// The node set or Raft's configuration changed since the network last took the peers.
    pub(crate) dirty: bool,
}

impl NodeSet {
    /// The Raft configuration the ledger asks for: its active voters and observers.
    pub(crate) fn wanted(&self) -> Membership {
        let mut wanted = Membership::default();
        for node in self.records.iter().filter(|node| node.active()) {
            match node.role {
                NodeRole::Voter => wanted.voters.insert(node.id),
                NodeRole::Observer => wanted.learners.insert(node.id),
            };
        }
        wanted
    }

    /// Whether node `me` serves as an observer: recorded as one, or not recorded yet.
    pub(crate) fn observer(&self, me: u64) -> bool {
        self.records
            .iter()
            .find(|node| node.id == me && node.active())
            .is_none_or(|node| node.role == NodeRole::Observer)
    }

    /// The peers the network admits and dials: every active node, and every node still in
    /// Raft's configuration `raft` (a removed node stays reachable until Raft has removed it,
    /// so a leaving leader can hand over and the removal can commit), at its configured
    /// address or else the one its `add_node` change gave.
    pub(crate) fn members(&self, raft: &Membership) -> Vec<Member> {
        self.records
            .iter()
            .filter(|node| {
                node.active() || raft.voters.contains(&node.id) || raft.learners.contains(&node.id)
            })
            .map(|node| Member {
                id: node.id,
                public_key: node.public_key,
                address: self
                    .configured
                    .get(&node.id)
                    .copied()
                    .or_else(|| node.address.parse().ok()),
                voter: node.role == NodeRole::Voter,
            })
            .collect()
    }
}

/// Whether a block changed a record of the kind `kind` (the diff is ordered: one seek).
pub(crate) fn touches_prefix(diff: &StateDiff, kind: u8) -> bool {
    diff.range(vec![kind]..vec![kind + 1]).next().is_some()
}

impl Runtime {
    /// Reads the node set from the ledger and hands the network its peers.
    pub(super) fn refresh_nodes(&mut self) -> Result<(), RuntimeError> {
        let records = node_records(&self.ledger)?;
        let me = self.driver.id();
        let key_of = |records: &[NodeRecord]| {
            records
                .iter()
                .find(|node| node.id == me)
                .map(|node| node.public_key)
        };
        // A rotation that arrived in a snapshot (one in a block was recorded as it applied).
        if let (Some(old), Some(new)) = (key_of(&self.nodes.records), key_of(&records)) {
            let index = self.ledger.applied_index();
            if old != new && self.rekeyed_at != Some(index) {
                self.ledger.record_own_rekey(Some(index))?;
                self.rekeyed_at = Some(index);
                tracing::info!(index, "this node's key was rotated");
            }
        }
        if records != self.nodes.records {
            self.nodes.records = records;
            self.nodes.dirty = true;
            let wanted = self.nodes.wanted();
            tracing::info!(
                voters = ?wanted.voters,
                observers = ?wanted.learners,
                "node set read from the ledger"
            );
        }
        self.sync_members();
        Ok(())
    }

    /// Hands the network the peers to admit when they changed (the ledger's node set, or
    /// Raft's configuration); an update the network could not take is retried on the next
    /// call, which the loop makes every iteration.
    pub(super) fn sync_members(&mut self) {
        let Some(network) = &self.network else {
            return;
        };
        if !self.nodes.dirty {
            return;
        }
        let members = self.nodes.members(&self.driver.membership());
        if self.nodes.sent.as_ref() == Some(&members) || network.set_members(members.clone()) {
            self.nodes.sent = Some(members);
            self.nodes.dirty = false;
        }
    }

    /// Applies a committed configuration change at `index` on this node.
    pub(super) fn apply_conf_change(
        &mut self,
        index: u64,
        change: &ConfChange,
    ) -> Result<(), RuntimeError> {
        match self.driver.apply_conf_change(change) {
            Ok(conf_state) => {
                if conf_state.learners.contains(&self.driver.id()) {
                    self.joining = false;
                }
                tracing::info!(
                    index,
                    change = ?change.get_change_type(),
                    node_id = change.node_id,
                    voters = ?conf_state.voters,
                    learners = ?conf_state.learners,
                    "raft configuration changed"
                );
                let log = self.driver.store().clone();
                self.ledger.record_conf_change(index, &log, conf_state)?;
                crate::metrics::Metrics::add(&self.shared.metrics.conf_changes_applied, 1);
                self.nodes.dirty = true;
                self.sync_members();
            }
            Err(error) => {
                // Every node refuses the same change alike; it changes nothing anywhere.
                tracing::error!(index, %error, "configuration change refused by raft; skipped");
                self.ledger.skip_entry(index)?;
            }
        }
        Ok(())
    }

    /// Whether a block's state changes give this node's record another key.
    pub(super) fn rotates_own_key(&self, diff: &StateDiff) -> Result<bool, RuntimeError> {
        let me = self.driver.id();
        let Some(Some(bytes)) = diff.get(&tpw_contracts::governance::node_key(me)) else {
            return Ok(false);
        };
        let record =
            tpw_contracts::model::from_bytes(bytes, NodeRecord::decode).map_err(|error| {
                RuntimeError::Storage(crate::storage::StorageError::Corrupt(format!(
                    "node record {me}: {error}"
                )))
            })?;
        Ok(self
            .nodes
            .records
            .iter()
            .any(|node| node.id == me && node.public_key != record.public_key))
    }

    /// As leader, takes the next step toward the ledger's node set.
    pub(super) fn reconcile_membership(&mut self) {
        let wanted = self.nodes.wanted();
        if let Some(step) = self.driver.reconcile_membership(&wanted) {
            tracing::info!(?step, "membership: next step toward the ledger's node set");
        }
    }

    /// As a leader whose key was rotated, hands leadership over while a member has not
    /// replicated the rotation (see `Driver::hand_over_after_rekey`), once it has led long
    /// enough for every reachable member to have answered.
    pub(super) fn hand_over_after_rekey(&mut self, now: Instant) {
        if !self.driver.is_leader() {
            self.leader_since = None;
            return;
        }
        let since = *self.leader_since.get_or_insert(now);
        let Some(rekeyed_at) = self.rekeyed_at else {
            return;
        };
        if self.driver.all_members_have(rekeyed_at) {
            // Every member admits the new key now: nothing left to hand over for.
            match self.ledger.record_own_rekey(None) {
                Ok(()) => self.rekeyed_at = None,
                Err(error) => tracing::warn!(%error, "could not record the rotation as done"),
            }
            return;
        }
        if now.duration_since(since) < REKEY_HANDOVER_AFTER
            || self
                .handed_over_at
                .is_some_and(|at| now.duration_since(at) < REKEY_HANDOVER_BACKOFF)
        {
            return;
        }
        if let Some(target) = self.driver.hand_over_after_rekey(rekeyed_at) {
            tracing::warn!(
                target,
                rekeyed_at,
                "a member has not replicated this node's key rotation and refuses its new key: \
                 leadership handed over so that it can catch up"
            );
            self.handed_over_at = Some(now);
        }
    }
}
