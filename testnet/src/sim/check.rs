//! The simulator's checkers. While a run goes on: at most one leader per term, every replica
//! applies the same entry at each Raft index and the same block at each height (conservation
//! is checked by each node after every block it applies). After the final heal: identical
//! chains and state roots, Raft logs that match on their committed prefix and wherever an
//! index carries the same term, every acknowledged transfer present on every replica, and each
//! tracked account's balance equal to its genesis balance plus the transfers the ledger holds,
//! each once.

use super::client::TrackedTransfer;
use super::node::SimNode;
use std::collections::{BTreeMap, BTreeSet};
use tpw_contracts::model::{from_bytes, Account, Hash, TransferRecord, TransferState};
use tpw_contracts::state::{account_key, prefix, transfer_key};
use tpw_contracts::{MemStore, StateStore};

/// A node's Raft log: index -> (term, blake3 of the entry's data).
type RaftLog = BTreeMap<u64, (u64, Hash)>;

/// Invariants watched as the run goes.
#[derive(Default)]
pub struct Online {
    leaders: BTreeMap<u64, u64>,
    entries: BTreeMap<u64, (u64, Hash)>,
    blocks: BTreeMap<u64, Hash>,
    /// Violations seen, first ones first.
    pub violations: Vec<String>,
    /// Heights at which two replicas applied different blocks.
    pub divergent: u64,
}

impl Online {
    fn violation(&mut self, text: String) {
        if self.violations.len() < 16 {
            self.violations.push(text);
        }
    }

    /// `node` leads `term`.
    pub fn leader(&mut self, node: u64, term: u64) {
        let first = *self.leaders.entry(term).or_insert(node);
        if first != node {
            self.violation(format!(
                "two leaders in term {term}: nodes {first} and {node}"
            ));
        }
    }

    /// `node` applied the entry at `index`.
    pub fn applied(
        &mut self,
        node: u64,
        index: u64,
        term: u64,
        data_hash: Hash,
        block: Option<(u64, Hash)>,
    ) {
        let first = *self.entries.entry(index).or_insert((term, data_hash));
        if first != (term, data_hash) {
            self.violation(format!(
                "node {node} applied another entry at index {index} (term {term}, first seen term {})",
                first.0
            ));
        }
        if let Some((height, hash)) = block {
            let first = *self.blocks.entry(height).or_insert(hash);
            if first != hash {
                self.divergent += 1;
                self.violation(format!(
                    "node {node} applied another block at height {height}"
                ));
            }
        }
    }

    /// Any violation so far.
    pub fn record(&mut self, text: String) {
        self.violation(text);
    }

    /// The highest height any replica applied.
    pub fn height(&self) -> u64 {
        self.blocks.keys().next_back().copied().unwrap_or(0)
    }
}

/// What the final checks found.
#[derive(Debug, Default)]
pub struct Final {
    /// Acknowledged transfers missing (or not posted) on some replica.
    pub lost: u64,
    /// Tracked accounts whose balance counts some transfer other than once.
    pub duplicated: u64,
    /// Replicas whose chain or state differs from the first's.
    pub divergent: u64,
    /// What was wrong, first things first.
    pub problems: Vec<String>,
}

impl Final {
    fn problem(&mut self, text: String) {
        if self.problems.len() < 16 {
            self.problems.push(text);
        }
    }
}

/// Net posted balance (credits minus debits) of an account, if it exists.
fn net_posted(state: &MemStore, account: u128) -> Option<i128> {
    let bytes = state.get(&account_key(account)).ok()??;
    let account = from_bytes(&bytes, Account::decode).ok()?;
    Some(account.credits_posted as i128 - account.debits_posted as i128)
}

/// Runs the final checks over every node (all up, converged), checker by checker.
pub fn after_heal(
    nodes: &[&SimNode],
    acknowledged: &BTreeSet<TrackedTransfer>,
    rejected: &BTreeSet<TrackedTransfer>,
    tracked_accounts: &[u128],
    genesis: &MemStore,
) -> Final {
    let mut found = Final::default();
    let Some(reference) = nodes.first() else {
        return found;
    };
    check_one_chain(&mut found, nodes, reference);
    check_raft_logs(&mut found, nodes);
    found.lost = check_acknowledged(&mut found, nodes, acknowledged);
    let contradicted = check_rejected(&mut found, nodes, rejected);
    let duplicated = check_balances(&mut found, nodes, tracked_accounts, genesis);
    found.duplicated = duplicated + contradicted;
    found
}

/// One chain, one state: every node up, holding the reference's chain and state root.
fn check_one_chain(found: &mut Final, nodes: &[&SimNode], reference: &SimNode) {
    for node in nodes {
        if !node.is_up() {
            found.problem(format!("node {} is not up after the heal", node.id));
            found.divergent += 1;
            continue;
        }
        if node.chain() != reference.chain() {
            found.divergent += 1;
            found.problem(format!(
                "node {} holds {} blocks, node {} holds {}, or they differ",
                node.id,
                node.chain().len(),
                reference.id,
                reference.chain().len()
            ));
        } else if node.head().map(|head| head.commitment.root())
            != reference.head().map(|head| head.commitment.root())
        {
            found.divergent += 1;
            found.problem(format!("node {} has another state root", node.id));
        }
    }
}

/// Raft log matching: the committed prefix is identical; an index with the same term holds
/// the same entry everywhere.
fn check_raft_logs(found: &mut Final, nodes: &[&SimNode]) {
    let logs: Vec<(u64, RaftLog)> = nodes
        .iter()
        .map(|node| {
            let commit = node.raft_indexes().map_or(0, |(commit, _, _)| commit);
            let log = node
                .log_terms()
                .into_iter()
                .map(|(index, term, hash)| (index, (term, hash)))
                .collect();
            (commit, log)
        })
        .collect();
    let commit_min = logs.iter().map(|(commit, _)| *commit).min().unwrap_or(0);
    for (position, (_, log)) in logs.iter().enumerate().skip(1) {
        let (_, first) = &logs[0];
        for (index, entry) in log {
            let Some(other) = first.get(index) else {
                continue;
            };
            if other != entry && (*index <= commit_min || other.0 == entry.0) {
                found.problem(format!(
                    "raft logs of nodes {} and {} differ at index {index}",
                    nodes[0].id, nodes[position].id
                ));
                found.divergent += 1;
                break;
            }
        }
    }
}

/// Every acknowledged transfer on every replica, posted, as acknowledged; the transfers
/// missing somewhere.
fn check_acknowledged(
    found: &mut Final,
    nodes: &[&SimNode],
    acknowledged: &BTreeSet<TrackedTransfer>,
) -> u64 {
    let mut lost = BTreeSet::new();
    for node in nodes {
        let Some(state) = node.state() else { continue };
        for transfer in acknowledged {
            let record = state
                .get(&transfer_key(transfer.owner, transfer.id))
                .ok()
                .flatten()
                .and_then(|bytes| from_bytes(&bytes, TransferRecord::decode).ok());
            let present = record.is_some_and(|record| {
                record.state == TransferState::Posted
                    && record.amount == transfer.amount
                    && record.debit_account == transfer.debit_account
                    && record.credit_account == transfer.credit_account
            });
            if !present && lost.insert(*transfer) {
                found.problem(format!(
                    "acknowledged transfer {}/{} missing on node {}",
                    transfer.owner, transfer.id, node.id
                ));
            }
        }
    }
    lost.len() as u64
}

/// A transfer answered as rejected must not be posted anywhere; the transfers that are.
fn check_rejected(
    found: &mut Final,
    nodes: &[&SimNode],
    rejected: &BTreeSet<TrackedTransfer>,
) -> u64 {
    let mut contradicted = BTreeSet::new();
    for node in nodes {
        let Some(state) = node.state() else { continue };
        for transfer in rejected {
            let posted = state
                .get(&transfer_key(transfer.owner, transfer.id))
                .ok()
                .flatten()
                .and_then(|bytes| from_bytes(&bytes, TransferRecord::decode).ok())
                .is_some_and(|record| record.state == TransferState::Posted);
            if posted && contradicted.insert(*transfer) {
                found.problem(format!(
                    "transfer {}/{} was answered rejected but is posted on node {}",
                    transfer.owner, transfer.id, node.id
                ));
            }
        }
    }
    contradicted.len() as u64
}

/// Tracked balances: genesis balance plus each posted transfer record once; the accounts
/// whose balance counts some transfer other than once.
fn check_balances(
    found: &mut Final,
    nodes: &[&SimNode],
    tracked_accounts: &[u128],
    genesis: &MemStore,
) -> u64 {
    let tracked: BTreeSet<u128> = tracked_accounts.iter().copied().collect();
    let mut duplicated = BTreeSet::new();
    for node in nodes {
        let Some(state) = node.state() else { continue };
        let mut moved: BTreeMap<u128, i128> = BTreeMap::new();
        for (key, value) in state.records() {
            if key.first() != Some(&prefix::TRANSFER) {
                continue;
            }
            let Ok(record) = from_bytes(value, TransferRecord::decode) else {
                found.problem(format!(
                    "node {}: a transfer record does not decode",
                    node.id
                ));
                continue;
            };
            if record.state != TransferState::Posted || record.height == 0 {
                continue;
            }
            let amount = record.amount as i128;
            if tracked.contains(&record.debit_account) {
                *moved.entry(record.debit_account).or_default() -= amount;
            }
            if tracked.contains(&record.credit_account) {
                *moved.entry(record.credit_account).or_default() += amount;
            }
        }
        for account in &tracked {
            let expected = net_posted(genesis, *account)
                .map(|start| start + moved.get(account).copied().unwrap_or(0));
            let actual = net_posted(state, *account);
            if expected != actual && duplicated.insert(*account) {
                found.problem(format!(
                    "node {}: tracked account {account} holds {actual:?}, its transfers give {expected:?}",
                    node.id
                ));
            }
        }
    }
    duplicated.len() as u64
}
