//! Ledger events: what each committed block did, one event per operation and per effect (an
//! expiry or a cycle closed by time), in block order. Each event names the participants it
//! concerns, so the event stream and webhooks show a principal only its own. An event's cursor
//! (`height.sequence`, the sequence counting the block's events from 0) is derived from the
//! chain alone, so it is the same on every node.

use crate::api_types::EventView;
use crate::limits::EVENT_CACHED_BLOCKS_MAX;
use crate::storage::{LedgerReader, StorageError, StoredBlock};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tpw_contracts::governance::GovernanceAction;
use tpw_contracts::model::Hash;
use tpw_contracts::ops::{Parties, PartyLookup};
use tpw_contracts::view::{OperationView, TransferRef};
use tpw_contracts::{BlockEffect, Operation, Receipt, ResultCode, Transaction};

/// One event and the participants it concerns.
#[derive(Debug, Clone)]
pub struct LedgerEvent {
    /// What clients see.
    pub view: EventView,
    /// Participants it concerns, ascending (empty: only regulators see it).
    pub parties: Vec<u64>,
}

/// A cursor: the block height and the event's sequence in it; `None` sequence means after
/// every event of that block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Block height.
    pub height: u64,
    /// Sequence in the block; `None`: the whole block is behind the cursor.
    pub sequence: Option<u32>,
}

impl Cursor {
    /// Parses `height` or `height.sequence`.
    pub fn parse(text: &str) -> Option<Self> {
        let (height, sequence) = match text.split_once('.') {
            Some((height, sequence)) => (height, Some(sequence.parse().ok()?)),
            None => (text, None),
        };
        Some(Self {
            height: height.parse().ok()?,
            sequence,
        })
    }

    /// Whether an event at (`height`, `sequence`) comes after this cursor.
    pub fn before(&self, height: u64, sequence: u32) -> bool {
        match self.sequence {
            None => height > self.height,
            Some(after) => (height, sequence) > (self.height, after),
        }
    }
}

/// Derived events of recent blocks, shared by all streams.
#[derive(Default)]
pub struct EventCache {
    blocks: Mutex<BTreeMap<u64, Arc<Vec<LedgerEvent>>>>,
}

impl EventCache {
    /// The events of block `height`, or `None` when this node does not hold that block (yet).
    pub fn block_events(
        &self,
        reader: &LedgerReader,
        network_id: &Hash,
        height: u64,
    ) -> Result<Option<Arc<Vec<LedgerEvent>>>, StorageError> {
        if let Some(found) = self
            .blocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&height)
        {
            return Ok(Some(Arc::clone(found)));
        }
        let Some(block) = reader.block(height)? else {
            return Ok(None);
        };
        let events = Arc::new(derive(reader, network_id, &block)?);
        let mut blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        blocks.insert(height, Arc::clone(&events));
        while blocks.len() > EVENT_CACHED_BLOCKS_MAX {
            blocks.pop_first();
        }
        Ok(Some(events))
    }
}

/// The ledger reads that name an event's parties, answered from this node's store.
struct StoreLookup<'a>(&'a LedgerReader);

impl PartyLookup for StoreLookup<'_> {
    type Error = StorageError;
    fn account_owner(&self, account: u128) -> Result<Option<u64>, StorageError> {
        self.0.account_owner(account)
    }
    fn transfer_accounts(
        &self,
        owner: u64,
        id: u128,
    ) -> Result<Option<(u128, u128)>, StorageError> {
        Ok(self
            .0
            .transfer_record(owner, id)?
            .map(|record| (record.debit_account, record.credit_account)))
    }
    fn cycle_parties(&self, cycle: u128) -> Result<Vec<u64>, StorageError> {
        Ok(match self.0.cycle(cycle)? {
            Some((record, members, _)) => std::iter::once(record.opener).chain(members).collect(),
            None => Vec::new(),
        })
    }
    fn bank_members(&self) -> Result<Vec<u64>, StorageError> {
        self.0.bank_members()
    }
    fn proposal_action(&self, proposal: u64) -> Result<Option<GovernanceAction>, StorageError> {
        Ok(self.0.proposal(proposal)?.map(|record| record.action))
    }
}

fn status_of(code: ResultCode) -> &'static str {
    if code == ResultCode::Ok {
        "settled"
    } else {
        "rejected"
    }
}

/// The events of one block, in order: its effects, then each transaction's operations.
pub fn derive(
    reader: &LedgerReader,
    network_id: &Hash,
    block: &StoredBlock,
) -> Result<Vec<LedgerEvent>, StorageError> {
    let mut events = BlockEvents {
        height: block.header.height,
        time_ms: block.header.time_ms,
        lookup: StoreLookup(reader),
        events: Vec::new(),
    };
    for effect in &block.effects {
        events.effect(effect)?;
    }
    for (position, (bytes, receipt)) in block
        .proposal
        .transactions
        .iter()
        .zip(&block.receipts)
        .enumerate()
    {
        let transaction = Transaction::from_bytes(bytes, network_id).ok();
        events.transaction(reader, position as u32, transaction.as_ref(), receipt)?;
    }
    Ok(events.events)
}

/// The events of one block as they are derived, numbered in order.
struct BlockEvents<'a> {
    height: u64,
    time_ms: u64,
    lookup: StoreLookup<'a>,
    events: Vec<LedgerEvent>,
}

impl BlockEvents<'_> {
    /// The next event's fields common to every kind.
    fn base(&self, kind: &str, code: ResultCode) -> EventView {
        let sequence = self.events.len() as u32;
        EventView {
            cursor: format!("{}.{sequence}", self.height),
            height: self.height,
            sequence,
            block_time_ms: self.time_ms,
            kind: kind.into(),
            status: status_of(code).into(),
            code,
            tx_id: None,
            position: None,
            operation_index: None,
            signer: None,
            transfer: None,
            cycle: None,
            operation: None,
        }
    }

    /// A block effect's event: a pending transfer that expired, or a netting cycle settled.
    fn effect(&mut self, effect: &BlockEffect) -> Result<(), StorageError> {
        let mut parties = Parties::new(&self.lookup, None);
        let view = match effect {
            BlockEffect::PendingExpired { owner, id } => {
                parties.transfer(*owner, *id)?;
                EventView {
                    transfer: Some(TransferRef {
                        owner: *owner,
                        id: *id,
                    }),
                    ..self.base("pending_expired", ResultCode::Ok)
                }
            }
            BlockEffect::CycleSettled { cycle } => {
                parties.cycle(*cycle)?;
                EventView {
                    cycle: Some(cycle.to_string()),
                    ..self.base("cycle_settled", ResultCode::Ok)
                }
            }
        };
        let parties = parties.finish();
        self.events.push(LedgerEvent { view, parties });
        Ok(())
    }

    /// A transaction's events: one per operation, or one for a transaction refused before any
    /// operation ran.
    fn transaction(
        &mut self,
        reader: &LedgerReader,
        position: u32,
        transaction: Option<&Transaction>,
        receipt: &Receipt,
    ) -> Result<(), StorageError> {
        let tx_id = Some(hex::encode(receipt.tx_id));
        let signer = match transaction {
            Some(transaction) => reader
                .key_owner(&transaction.signer)?
                .map(|participant| participant.id),
            None => None,
        };
        let operations: &[Operation] =
            transaction.map_or(&[], |transaction| transaction.body.operations.as_slice());
        let Some(signer) = signer.filter(|_| !operations.is_empty()) else {
            // Refused before any operation ran (malformed, bad signature, unknown signer):
            // only regulators see it.
            let view = EventView {
                tx_id,
                position: Some(position),
                signer,
                ..self.base("transaction", receipt.code)
            };
            let parties = signer.into_iter().collect();
            self.events.push(LedgerEvent { view, parties });
            return Ok(());
        };
        for (index, operation) in operations.iter().enumerate() {
            let code = receipt
                .operations
                .get(index)
                .copied()
                .unwrap_or(receipt.code);
            let mut parties = Parties::new(&self.lookup, Some(signer));
            // A rejected operation concerns only its signer: it moved nothing, and the records
            // it names may not exist (or exist only later), so deriving others from them
            // would differ between nodes and let anyone write into others' streams.
            if code == ResultCode::Ok {
                operation.parties(&mut parties)?;
            }
            let view = EventView {
                tx_id: tx_id.clone(),
                position: Some(position),
                operation_index: Some(index as u32),
                signer: Some(signer),
                transfer: operation
                    .transfer_id()
                    .map(|id| TransferRef { owner: signer, id }),
                operation: Some(OperationView::from(operation)),
                ..self.base("operation", code)
            };
            let parties = parties.finish();
            self.events.push(LedgerEvent { view, parties });
        }
        Ok(())
    }
}
