//! Applying committed entries: blocks (after the leader's attestation check, with the webhook
//! progress a block may carry), configuration changes, skipped entries, and snapshots.

use super::LedgerStoreError;
use super::{members, Alarm, Effect, Executor, LogPosition, Replica, ReplicaError, ReplicaLedger};
use crate::entry::{classify, EntryKind};
use crate::log_store::LogStore;
use raft::prelude::{ConfChange, Entry, Snapshot};
use tpw_contracts::block::WebhookProgress;
use tpw_contracts::state::prefix;
use tpw_contracts::{apply_block, check_attestation, AttestationCheck, Proposal};

impl<L: LogStore, S: ReplicaLedger<L>> Replica<L, S> {
    pub(super) fn apply_entry(
        &mut self,
        entry: &Entry,
        executor: &mut dyn Executor,
    ) -> Result<(), ReplicaError> {
        if entry.index <= self.ledger.applied_index() {
            return Ok(());
        }
        let block = match classify(entry) {
            EntryKind::Block(proposal) => Some(self.apply_block_entry(entry, &proposal, executor)?),
            EntryKind::Skip => {
                self.ledger.skip_entry(entry.index)?;
                None
            }
            EntryKind::ConfChange(change) => {
                self.apply_conf_change(entry.index, &change, executor)?;
                None
            }
            EntryKind::Malformed(error) => {
                tracing::error!(index = entry.index, %error, "committed entry is not a block; skipped on every node");
                executor.effect(Effect::Alarm(Alarm::MalformedEntry { index: entry.index }));
                self.ledger.skip_entry(entry.index)?;
                None
            }
        };
        if self.config.report_entries {
            executor.effect(Effect::EntryApplied { entry, block });
        }
        Ok(())
    }

    /// Applies one block and answers its waiters; returns its height and header hash.
    fn apply_block_entry(
        &mut self,
        entry: &Entry,
        proposal: &Proposal,
        executor: &mut dyn Executor,
    ) -> Result<(u64, tpw_contracts::model::Hash), ReplicaError> {
        self.check_attestation(proposal, executor)?;
        executor.effect(Effect::Applying { index: entry.index });
        let preverified = &self.preverified;
        let outcome = apply_block(&self.ledger, self.ledger.head(), proposal, &|tx_id| {
            preverified.contains(tx_id)
        })?;
        let height = outcome.header.height;
        self.ledger_clock
            .observe(self.poll_ms, outcome.header.time_ms);
        let webhooks = plausible_webhooks(proposal, height);
        if webhooks.len() < proposal.webhooks.len() {
            let count = proposal.webhooks.len() - webhooks.len();
            tracing::warn!(refused = count, "webhook progress beyond the chain refused");
            executor.effect(Effect::Alarm(Alarm::WebhookProgressRefused { count }));
        }
        // Recorded before the block, so a crash between the two cannot lose it (the block is
        // applied again at restart and finds the same rotation at the same index).
        if members::rotates_key_of(&self.nodes, self.driver.id(), &outcome.diff)? {
            self.ledger.record_own_rekey(Some(entry.index))?;
            self.rekeyed_at = Some(entry.index);
            tracing::info!(index = entry.index, "this node's key was rotated");
        }
        let position = LogPosition {
            index: entry.index,
            term: entry.term,
        };
        self.ledger
            .commit_block(position, &entry.data, &outcome, &webhooks)?;
        if members::touches_prefix(&outcome.diff, prefix::NODE) {
            self.refresh_nodes()?;
        }
        if members::touches_prefix(&outcome.diff, prefix::KEY) {
            executor.effect(Effect::SignersChanged);
        }
        self.next_expiry_ms = tpw_contracts::next_expiry_ms(&self.ledger)?;
        while self
            .proposed
            .front()
            .is_some_and(|(index, _)| *index <= entry.index)
        {
            self.proposed.pop_front();
        }
        for receipt in &outcome.receipts {
            self.preverified.remove(&receipt.tx_id);
        }
        let hash = outcome.head.hash;
        executor.effect(Effect::Committed {
            height,
            receipts: outcome.receipts,
        });
        Ok((height, hash))
    }

    /// Compares the leader's attested head with this node's chain; a difference means the
    /// replicas diverged, which is an alarm, never ignored.
    fn check_attestation(
        &self,
        proposal: &Proposal,
        executor: &mut dyn Executor,
    ) -> Result<(), ReplicaError> {
        let head = self.ledger.head();
        let stored = match proposal.attestation {
            Some((height, _)) if height < head.height => self.ledger.header_hash(height)?,
            _ => None,
        };
        let check = check_attestation(proposal.attestation, |height| {
            if height == head.height {
                Some(head.hash)
            } else {
                stored
            }
        });
        match check {
            AttestationCheck::Agrees => {}
            AttestationCheck::Unknown => {
                tracing::warn!(attested = ?proposal.attestation.map(|(height, _)| height), height = head.height, "attested height not applied here");
            }
            AttestationCheck::Diverged {
                height,
                mine,
                theirs,
            } => {
                tracing::error!(
                    height,
                    mine = %hex_string(&mine),
                    leader = %hex_string(&theirs),
                    "ALARM: this node's chain differs from the leader's at this height"
                );
                executor.effect(Effect::Alarm(Alarm::Divergence {
                    height,
                    mine,
                    theirs,
                }));
            }
        }
        Ok(())
    }

    /// Applies a committed configuration change at `index`.
    fn apply_conf_change(
        &mut self,
        index: u64,
        change: &ConfChange,
        executor: &mut dyn Executor,
    ) -> Result<(), ReplicaError> {
        match self.driver.apply_conf_change(change) {
            Ok(conf_state) => {
                if conf_state.learners.contains(&self.driver.id()) {
                    self.config.joining = false;
                }
                tracing::info!(
                    index,
                    change = ?change.get_change_type(),
                    node_id = change.node_id,
                    voters = ?conf_state.voters,
                    learners = ?conf_state.learners,
                    "raft configuration changed"
                );
                self.ledger
                    .record_conf_change(index, self.driver.store(), &conf_state)?;
                self.nodes_changed = true;
                executor.effect(Effect::ConfChanged { index });
            }
            Err(error) => {
                // Every node refuses the same change alike; it changes nothing anywhere.
                tracing::error!(index, %error, "configuration change refused by raft; skipped");
                self.ledger.skip_entry(index)?;
            }
        }
        Ok(())
    }

    /// Installs a snapshot Raft accepted (its records were staged and verified before Raft
    /// saw the message). A node that joined on an empty folder and finds itself a voter in the
    /// snapshot was a member before and lost its data: it stops rather than vote again.
    pub(super) fn install_snapshot(
        &mut self,
        snapshot: &Snapshot,
        executor: &mut dyn Executor,
    ) -> Result<(), ReplicaError> {
        let metadata = snapshot.get_metadata();
        let conf_state = metadata.get_conf_state();
        let me = self.driver.id();
        if self.config.joining && conf_state.voters.contains(&me) {
            return Err(ReplicaError::Ledger(LedgerStoreError::Unusable(format!(
                "node {me} started on an empty data folder, but the network already counts it as a \
                 voter: it was a member before and lost its data. It must not vote again under this \
                 id; add it as a new node with a new id and key (docs/operating.md)."
            ))));
        }
        if conf_state.learners.contains(&me) {
            self.config.joining = false;
        }
        self.ledger
            .install_snapshot(self.driver.store(), snapshot)?;
        self.next_expiry_ms = tpw_contracts::next_expiry_ms(&self.ledger)?;
        self.ledger_clock
            .observe(self.poll_ms, self.ledger.head().time_ms);
        self.refresh_nodes()?;
        let index = metadata.index;
        if self.snapshot_stepped == Some(index) {
            self.snapshot_stepped = None;
        }
        tracing::info!(
            index,
            height = self.ledger.head().height,
            "snapshot applied to the ledger"
        );
        executor.effect(Effect::SnapshotInstalled {
            index,
            height: self.ledger.head().height,
        });
        Ok(())
    }
}

/// The webhook progress a block at `height` carries that can be true: a leader can only have
/// delivered events of earlier blocks, so anything claimed beyond is refused.
pub fn plausible_webhooks(proposal: &Proposal, height: u64) -> Vec<WebhookProgress> {
    proposal
        .webhooks
        .iter()
        .filter(|entry| {
            entry.delivered_height < height
                && entry.dead.iter().all(|dead| dead.height < height)
                && entry.revived.iter().all(|(revived, _)| *revived < height)
        })
        .cloned()
        .collect()
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
