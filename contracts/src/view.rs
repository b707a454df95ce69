//! JSON views of ledger values for the HTTP API and its clients: u128 values as decimal
//! strings, hashes and keys as lowercase hex, codes and states as snake_case names.

use crate::block::{BlockHeader, Receipt};
use crate::genesis::flag_names;
pub use crate::model::parse_hash32;
use crate::model::{Account, AssetId, ParticipantId, TransferRecord, TransferState};
pub use crate::ops::OperationView;
use crate::result::ResultCode;
use crate::tx::Transaction;
use serde::{Deserialize, Serialize};

/// An account and its balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Account id.
    #[serde(with = "crate::decimal")]
    pub id: u128,
    /// Owner.
    pub owner: ParticipantId,
    /// Asset.
    pub asset: AssetId,
    /// Flag names.
    pub flags: Vec<String>,
    /// Posted debits.
    #[serde(with = "crate::decimal")]
    pub debits_posted: u128,
    /// Posted credits.
    #[serde(with = "crate::decimal")]
    pub credits_posted: u128,
    /// Pending debits.
    #[serde(with = "crate::decimal")]
    pub debits_pending: u128,
    /// Pending credits.
    #[serde(with = "crate::decimal")]
    pub credits_pending: u128,
    /// How far debits may exceed posted credits (a credit line; "0" for none).
    #[serde(with = "crate::decimal")]
    pub credit_line: u128,
}

/// JSON view of a regulator's hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldView {
    /// The regulator's reason code.
    pub reason: u16,
    /// The regulator that placed it.
    pub regulator: ParticipantId,
    /// Height of the block that placed it.
    pub height: u64,
    /// That block's time.
    pub time_ms: u64,
}

impl From<&crate::model::HoldRecord> for HoldView {
    fn from(record: &crate::model::HoldRecord) -> Self {
        Self {
            reason: record.reason,
            regulator: record.regulator,
            height: record.height,
            time_ms: record.time_ms,
        }
    }
}

impl From<&Account> for AccountView {
    fn from(account: &Account) -> Self {
        Self {
            id: account.id,
            owner: account.owner,
            asset: account.asset,
            flags: flag_names(account.flags)
                .into_iter()
                .map(String::from)
                .collect(),
            debits_posted: account.debits_posted,
            credits_posted: account.credits_posted,
            debits_pending: account.debits_pending,
            credits_pending: account.credits_pending,
            credit_line: account.credit_line,
        }
    }
}

/// A recorded transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferView {
    /// Submitting participant.
    pub owner: ParticipantId,
    /// Client id.
    #[serde(with = "crate::decimal")]
    pub id: u128,
    /// Outcome code.
    pub result: ResultCode,
    /// Where it stands.
    pub state: TransferState,
    /// Transaction that carried it, hex.
    pub tx_id: String,
    /// Height at which it was decided.
    pub height: u64,
    /// Debited account.
    #[serde(with = "crate::decimal")]
    pub debit_account: u128,
    /// Credited account.
    #[serde(with = "crate::decimal")]
    pub credit_account: u128,
    /// Asset.
    pub asset: AssetId,
    /// Amount.
    #[serde(with = "crate::decimal")]
    pub amount: u128,
    /// Expiry block time of a pending transfer (0 otherwise).
    pub expires_at_ms: u64,
    /// Referenced pending transfer for post and void (0 otherwise).
    #[serde(with = "crate::decimal")]
    pub pending_id: u128,
}

impl From<&TransferRecord> for TransferView {
    fn from(record: &TransferRecord) -> Self {
        Self {
            owner: record.owner,
            id: record.id,
            result: ResultCode::from_number(record.result)
                .unwrap_or(ResultCode::MalformedTransaction),
            state: record.state,
            tx_id: hex::encode(record.tx_id),
            height: record.height,
            debit_account: record.debit_account,
            credit_account: record.credit_account,
            asset: record.asset,
            amount: record.amount,
            expires_at_ms: record.expires_at_ms,
            pending_id: record.pending_id,
        }
    }
}

/// JSON view of a netting cycle and, once settled, its report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleView {
    /// Cycle id.
    #[serde(with = "crate::decimal")]
    pub id: u128,
    /// Who opened it.
    pub opener: ParticipantId,
    /// Its asset.
    pub asset: AssetId,
    /// Block time at which it closes by itself.
    pub closes_at_ms: u64,
    /// "open" or "settled".
    pub status: String,
    /// Number of members.
    pub member_count: u16,
    /// Obligations queued.
    pub obligations: u32,
    /// Once settled: height of the settling block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_height: Option<u64>,
    /// Once settled: sum of the settled obligations.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::decimal::option"
    )]
    pub gross: Option<u128>,
    /// Once settled: sum of the net amounts posted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::decimal::option"
    )]
    pub net: Option<u128>,
    /// Once settled: gross minus net, the liquidity netting saved.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::decimal::option"
    )]
    pub liquidity_saved: Option<u128>,
    /// Once settled: obligations settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<u32>,
    /// Once settled: obligations moved to another cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_over: Option<u32>,
    /// Once settled: obligations rejected as unfunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<u32>,
}

impl From<&crate::netting::CycleRecord> for CycleView {
    fn from(cycle: &crate::netting::CycleRecord) -> Self {
        let report = cycle.report.as_ref();
        Self {
            id: cycle.id,
            opener: cycle.opener,
            asset: cycle.asset,
            closes_at_ms: cycle.closes_at_ms,
            status: if report.is_some() { "settled" } else { "open" }.into(),
            member_count: cycle.members,
            obligations: cycle.count,
            settled_height: report.map(|report| report.height),
            gross: report.map(|report| report.gross),
            net: report.map(|report| report.net),
            liquidity_saved: report.map(|report| report.gross.saturating_sub(report.net)),
            settled: report.map(|report| report.settled),
            carried_over: report.map(|report| report.carried_over),
            rejected: report.map(|report| report.rejected),
        }
    }
}

/// JSON view of the reversals of a settled transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalView {
    /// Total moved back so far.
    #[serde(with = "crate::decimal")]
    pub reversed: u128,
    /// The reversal transfers as {owner, id}.
    pub reversals: Vec<TransferRef>,
}

/// A transfer named by its owner and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRef {
    /// Who submitted it.
    pub owner: ParticipantId,
    /// Its id.
    #[serde(with = "crate::decimal")]
    pub id: u128,
}

impl From<&crate::reversal::ReversalRecord> for ReversalView {
    fn from(record: &crate::reversal::ReversalRecord) -> Self {
        Self {
            reversed: record.reversed,
            reversals: record
                .reversals
                .iter()
                .map(|(owner, id)| TransferRef {
                    owner: *owner,
                    id: *id,
                })
                .collect(),
        }
    }
}

/// JSON view of an exchange offer's counter leg (the offered leg is the transfer itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeView {
    /// The party that must accept.
    pub counterparty: ParticipantId,
    /// The counterparty's account it pays from.
    #[serde(with = "crate::decimal")]
    pub counter_debit_account: u128,
    /// The offerer's account it is paid into.
    #[serde(with = "crate::decimal")]
    pub counter_credit_account: u128,
    /// The asset of the counter leg.
    pub counter_asset: AssetId,
    /// The amount of the counter leg.
    #[serde(with = "crate::decimal")]
    pub counter_amount: u128,
}

impl From<&crate::exchange::ExchangeRecord> for ExchangeView {
    fn from(record: &crate::exchange::ExchangeRecord) -> Self {
        Self {
            counterparty: record.counterparty,
            counter_debit_account: record.counter_debit_account,
            counter_credit_account: record.counter_credit_account,
            counter_asset: record.counter_asset,
            counter_amount: record.counter_amount,
        }
    }
}

/// JSON view of an escrow's terms and approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowView {
    /// blake3 of the secret that releases it, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashlock: Option<String>,
    /// Block time from which release is allowed (0: none).
    pub release_after_ms: u64,
    /// Participants whose approvals count.
    pub approvers: Vec<ParticipantId>,
    /// Approvals needed.
    pub approvals_required: u8,
    /// Approvers that approved.
    pub approvals: Vec<ParticipantId>,
}

impl From<&crate::escrow::EscrowRecord> for EscrowView {
    fn from(record: &crate::escrow::EscrowRecord) -> Self {
        Self {
            hashlock: record.terms.hashlock.map(hex::encode),
            release_after_ms: record.terms.release_after_ms,
            approvers: record.terms.approvers.clone(),
            approvals_required: record.terms.approvals_required,
            approvals: record.approvals.clone(),
        }
    }
}

/// A decoded transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionView {
    /// Signer public key, hex.
    pub signer: String,
    /// The signer's nonce, a decimal string (a u64 exceeds what a JSON number holds exactly).
    pub nonce: String,
    /// The last block time at which the envelope may apply.
    pub valid_until_ms: u64,
    /// Whether the operations are linked.
    pub linked: bool,
    /// The operations.
    pub operations: Vec<OperationView>,
}

impl From<&Transaction> for TransactionView {
    fn from(transaction: &Transaction) -> Self {
        Self {
            signer: hex::encode(transaction.signer),
            nonce: transaction.validity.nonce.to_string(),
            valid_until_ms: transaction.validity.valid_until_ms,
            linked: transaction.body.linked,
            operations: transaction
                .body
                .operations
                .iter()
                .map(OperationView::from)
                .collect(),
        }
    }
}

/// A transaction's receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptView {
    /// Transaction id, hex.
    pub tx_id: String,
    /// Overall code.
    pub code: ResultCode,
    /// Per-operation codes.
    pub operations: Vec<ResultCode>,
}

impl From<&Receipt> for ReceiptView {
    fn from(receipt: &Receipt) -> Self {
        Self {
            tx_id: hex::encode(receipt.tx_id),
            code: receipt.code,
            operations: receipt.operations.clone(),
        }
    }
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderView {
    /// Height.
    pub height: u64,
    /// Header hash, hex.
    pub hash: String,
    /// Previous header hash, hex.
    pub previous_hash: String,
    /// Effective time.
    pub time_ms: u64,
    /// Leader's stamp.
    pub proposer_time_ms: u64,
    /// Transaction count.
    pub transaction_count: u32,
    /// Transactions Merkle root, hex.
    pub transactions_root: String,
    /// Receipts Merkle root, hex.
    pub receipts_root: String,
    /// Merkle root of the block's effects, hex.
    pub effects_root: String,
    /// State root, hex.
    pub state_root: String,
}

impl From<&BlockHeader> for HeaderView {
    fn from(header: &BlockHeader) -> Self {
        Self {
            height: header.height,
            hash: hex::encode(header.hash()),
            previous_hash: hex::encode(header.previous_hash),
            time_ms: header.time_ms,
            proposer_time_ms: header.proposer_time_ms,
            transaction_count: header.transaction_count,
            transactions_root: hex::encode(header.transactions_root),
            receipts_root: hex::encode(header.receipts_root),
            effects_root: hex::encode(header.effects_root),
            state_root: hex::encode(header.state_root),
        }
    }
}
