//! Account statements: at each block, every account whose posted balance moved gets one entry
//! per transfer that moved it (in block order) and, for what no transfer record explains (a
//! netting cycle's net posting), one closing entry; each entry carries the running balance
//! (credits posted minus debits posted). Derived from the applied block and written in the
//! same batch, in the meta column family, so a statement is a range read.

use super::db::{Db, StorageError, CF_META};
use super::record::{open_record, seal_record};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tpw_contracts::codec::{Reader, Writer};
use tpw_contracts::model::{from_bytes, Account, TransferRecord, TransferState};
use tpw_contracts::state::prefix;
use tpw_contracts::{BlockOutcome, StateStore};

const PREFIX: &[u8] = b"st";

/// A key and its sealed value, to write.
type Record = (Vec<u8>, Vec<u8>);

/// One statement line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementEntry {
    /// Block height.
    pub height: u64,
    /// Position among the account's entries in that block.
    pub sequence: u32,
    /// Block time.
    pub time_ms: u64,
    /// The transfer (owner, id) that moved the balance; `None` for a net posting (netting).
    pub transfer: Option<(u64, u128)>,
    /// The account on the other side of the transfer.
    pub counterparty_account: Option<u128>,
    /// Signed change: positive credits the account, negative debits it.
    pub amount: i128,
    /// Balance after this entry.
    pub balance: i128,
}

fn key(account: u128, height: u64, sequence: u32) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(&account.to_be_bytes());
    key.extend_from_slice(&height.to_be_bytes());
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

fn encode(entry: &StatementEntry) -> Vec<u8> {
    let mut writer = Writer::default();
    writer.u64(entry.time_ms);
    match entry.transfer {
        Some((owner, id)) => {
            writer.u8(1);
            writer.u64(owner);
            writer.u128(id);
            writer.u128(entry.counterparty_account.unwrap_or(0));
        }
        None => writer.u8(0),
    }
    writer.u128(entry.amount as u128);
    writer.u128(entry.balance as u128);
    writer.finish()
}

fn decode(account_key: &[u8], value: &[u8]) -> Result<StatementEntry, StorageError> {
    let corrupt = || StorageError::Corrupt("statement entry".into());
    let (height, sequence) = super::record::key_cursor(account_key, 18).ok_or_else(corrupt)?;
    let payload = open_record(value, "statement entry")?;
    let mut reader = Reader::new(payload);
    fn read<T>(result: Result<T, tpw_contracts::codec::DecodeError>) -> Result<T, StorageError> {
        result.map_err(|_| StorageError::Corrupt("statement entry".into()))
    }
    let time_ms = read(reader.u64("time"))?;
    let (transfer, counterparty_account) = if read(reader.bool("has_transfer"))? {
        let owner = read(reader.u64("owner"))?;
        let id = read(reader.u128("id"))?;
        let counterparty = read(reader.u128("counterparty"))?;
        (Some((owner, id)), Some(counterparty))
    } else {
        (None, None)
    };
    Ok(StatementEntry {
        height,
        sequence,
        time_ms,
        transfer,
        counterparty_account,
        amount: read(reader.u128("amount"))? as i128,
        balance: read(reader.u128("balance"))? as i128,
    })
}

/// Credits posted minus debits posted, when it fits an i128 (balances beyond ±2^127 minor
/// units get no statement lines; nothing here may panic on what a transaction can reach).
fn balance(account: &Account) -> Option<i128> {
    i128::try_from(account.credits_posted)
        .ok()?
        .checked_sub(i128::try_from(account.debits_posted).ok()?)
}

/// A transfer's place in its block (receipt position, owner, id), which orders its lines.
type Order = (usize, u64, u128);

/// A transfer that moved posted balances, with the amount it moved.
type Move = (Order, TransferRecord, u128);

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(format!("{what} in a block's changes"))
}

fn read_before(before: &dyn StateStore, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
    before
        .get(key)
        .map_err(|error| StorageError::Corrupt(error.0))
}

/// The statement entries of one block, as (key, sealed value) pairs to write with it.
/// `before` reads the committed state (before the block).
pub fn block_entries(
    before: &dyn StateStore,
    outcome: &BlockOutcome,
) -> Result<Vec<Record>, StorageError> {
    let mut unrepresentable = BTreeSet::new();
    let accounts = balance_changes(before, outcome, &mut unrepresentable)?;
    if accounts.is_empty() {
        return Ok(Vec::new());
    }
    let moves = transfer_moves(before, outcome)?;
    let mut lines = Lines {
        height: outcome.header.height,
        time_ms: outcome.header.time_ms,
        running: accounts.iter().map(|(id, (old, _))| (*id, *old)).collect(),
        lines: BTreeMap::new(),
        unrepresentable,
    };
    for (_, record, amount) in &moves {
        lines.transfer(record, *amount);
    }
    // What the transfers do not explain (a netting cycle's net posting) closes the block.
    for (account, (_, after)) in &accounts {
        lines.residual(*account, *after);
    }
    for account in &lines.unrepresentable {
        lines.lines.remove(account);
    }
    Ok(lines
        .lines
        .into_iter()
        .flat_map(|(account, entries)| {
            entries.into_iter().map(move |entry| {
                (
                    key(account, entry.height, entry.sequence),
                    seal_record(&encode(&entry)),
                )
            })
        })
        .collect())
}

/// Balances before and after the block, for every account the block changed; accounts whose
/// balance an i128 cannot hold go to `unrepresentable` instead.
fn balance_changes(
    before: &dyn StateStore,
    outcome: &BlockOutcome,
    unrepresentable: &mut BTreeSet<u128>,
) -> Result<BTreeMap<u128, (i128, i128)>, StorageError> {
    let mut accounts: BTreeMap<u128, (i128, i128)> = BTreeMap::new();
    for (key, value) in outcome
        .diff
        .range(vec![prefix::ACCOUNT]..vec![prefix::ACCOUNT + 1])
    {
        let Some(value) = value else { continue };
        let after = from_bytes(value, Account::decode).map_err(|_| corrupt("account"))?;
        let old = match read_before(before, key)? {
            Some(bytes) => {
                balance(&from_bytes(&bytes, Account::decode).map_err(|_| corrupt("account"))?)
            }
            None => Some(0),
        };
        match (old, balance(&after)) {
            (Some(old), Some(new)) => {
                accounts.insert(after.id, (old, new));
            }
            _ => {
                tracing::warn!(
                    account = after.id,
                    "balance beyond ±2^127: no statement lines"
                );
                unrepresentable.insert(after.id);
            }
        }
    }
    Ok(accounts)
}

/// Transfers that moved posted balances in this block, in block order: new posted records, and
/// pending transfers posted without a post record of their own (a checker's approval).
fn transfer_moves(
    before: &dyn StateStore,
    outcome: &BlockOutcome,
) -> Result<Vec<Move>, StorageError> {
    let positions: HashMap<[u8; 32], usize> = outcome
        .receipts
        .iter()
        .enumerate()
        .map(|(position, receipt)| (receipt.tx_id, position))
        .collect();
    let order_of = |record: &TransferRecord| -> Order {
        (
            positions.get(&record.tx_id).copied().unwrap_or(usize::MAX),
            record.owner,
            record.id,
        )
    };
    let mut moves: Vec<Move> = Vec::new();
    let mut posted_pendings = std::collections::HashSet::new();
    let mut transitions = Vec::new();
    for (key, value) in outcome
        .diff
        .range(vec![prefix::TRANSFER]..vec![prefix::TRANSFER + 1])
    {
        let Some(value) = value else { continue };
        let record = from_bytes(value, TransferRecord::decode).map_err(|_| corrupt("transfer"))?;
        // A posted record decided in this block is new (a later change keeps its height), so
        // the hot path needs no read; only a pending transfer's posting reads its old state.
        if record.state != TransferState::PendingPosted {
            if record.state == TransferState::Posted
                && record.result == 0
                && record.height == outcome.header.height
            {
                let order = order_of(&record);
                if record.pending_id != 0 {
                    posted_pendings.insert((
                        record.pending_id,
                        record.debit_account,
                        record.credit_account,
                    ));
                }
                let amount = record.amount;
                moves.push((order, record, amount));
            }
            continue;
        }
        let old_state = match read_before(before, key)? {
            Some(bytes) => Some(
                from_bytes(&bytes, TransferRecord::decode)
                    .map_err(|_| corrupt("transfer"))?
                    .state,
            ),
            None => None,
        };
        let order = order_of(&record);
        // A post record (above) names its pending transfer by id and carries its accounts;
        // its owner may differ (a payee releasing an escrow signs the post).
        if matches!(old_state, None | Some(TransferState::Pending)) {
            transitions.push((order, record));
        }
    }
    for (order, record) in transitions {
        if !posted_pendings.contains(&(record.id, record.debit_account, record.credit_account)) {
            let amount = record.amount;
            moves.push((order, record, amount));
        }
    }
    moves.sort_by_key(|(order, _, _)| *order);
    Ok(moves)
}

/// The statement lines of one block as they are written, with each account's running balance.
struct Lines {
    height: u64,
    time_ms: u64,
    running: BTreeMap<u128, i128>,
    lines: BTreeMap<u128, Vec<StatementEntry>>,
    /// Accounts that get no lines: an amount or balance beyond what an i128 holds.
    unrepresentable: BTreeSet<u128>,
}

impl Lines {
    /// One line on each side of a transfer, for the accounts whose balances moved.
    fn transfer(&mut self, record: &TransferRecord, amount: u128) {
        // Amounts beyond 2^127 cannot move an i128 balance; their accounts get no lines.
        let Ok(signed_amount) = i128::try_from(amount) else {
            self.unrepresentable.insert(record.debit_account);
            self.unrepresentable.insert(record.credit_account);
            return;
        };
        for (account, counterparty, signed) in [
            (record.debit_account, record.credit_account, -signed_amount),
            (record.credit_account, record.debit_account, signed_amount),
        ] {
            let Some(balance) = self.running.get_mut(&account) else {
                continue;
            };
            let Some(updated) = balance.checked_add(signed) else {
                self.unrepresentable.insert(account);
                continue;
            };
            *balance = updated;
            let entries = self.lines.entry(account).or_default();
            entries.push(StatementEntry {
                height: self.height,
                sequence: entries.len() as u32,
                time_ms: self.time_ms,
                transfer: Some((record.owner, record.id)),
                counterparty_account: Some(counterparty),
                amount: signed,
                balance: *balance,
            });
        }
    }

    /// The closing line of an account whose balance the transfers do not fully explain.
    fn residual(&mut self, account: u128, after: i128) {
        let reached = self.running[&account];
        let Some(residual) = after.checked_sub(reached) else {
            self.unrepresentable.insert(account);
            return;
        };
        if residual != 0 {
            let entries = self.lines.entry(account).or_default();
            entries.push(StatementEntry {
                height: self.height,
                sequence: entries.len() as u32,
                time_ms: self.time_ms,
                transfer: None,
                counterparty_account: None,
                amount: residual,
                balance: after,
            });
        }
    }
}

/// Statement entries of `account` from (`from_height`, `after_sequence` exclusive) up to
/// `to_height`, at most `limit`.
pub fn read(
    db: &Db,
    account: u128,
    start: (u64, Option<u32>),
    to_height: u64,
    limit: usize,
) -> Result<Vec<StatementEntry>, StorageError> {
    let first = match start.1 {
        Some(sequence) => key(account, start.0, sequence.saturating_add(1)),
        None => key(account, start.0, 0),
    };
    let mut end = key(account, to_height, u32::MAX);
    end.push(0);
    let mut options = rocksdb::ReadOptions::default();
    options.set_iterate_upper_bound(end);
    let iterator = db.rocks().iterator_cf_opt(
        db.cf(CF_META),
        options,
        rocksdb::IteratorMode::From(&first, rocksdb::Direction::Forward),
    );
    let mut entries = Vec::new();
    for item in iterator.take(limit) {
        let (key, value) = item?;
        entries.push(decode(&key, &value)?);
    }
    Ok(entries)
}
