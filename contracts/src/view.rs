//! JSON views of ledger values for the HTTP API and its clients: u128 values as decimal
//! strings, hashes and keys as lowercase hex, codes and states as snake_case names.

use crate::block::{BlockHeader, Receipt};
use crate::genesis::flag_names;
pub use crate::model::parse_hash32;
use crate::model::TransferKind;
use crate::model::{Account, AssetId, ParticipantId, TransferRecord, TransferState};
use crate::result::ResultCode;
use crate::tx::{Operation, Transaction};
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

/// One operation, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OperationView {
    /// Opens an account.
    OpenAccount {
        /// Account id.
        #[serde(with = "crate::decimal")]
        account: u128,
        /// Owner.
        owner: ParticipantId,
        /// Asset.
        asset: AssetId,
        /// Flag names.
        #[serde(default)]
        flags: Vec<String>,
    },
    /// A posted or pending transfer.
    Transfer {
        /// Transfer id.
        #[serde(with = "crate::decimal")]
        id: u128,
        /// Debited account.
        #[serde(with = "crate::decimal")]
        debit_account: u128,
        /// Credited account.
        #[serde(with = "crate::decimal")]
        credit_account: u128,
        /// Asset.
        asset: AssetId,
        /// Amount.
        #[serde(with = "crate::decimal")]
        amount: u128,
        /// Pending timeout; absent for a posted transfer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pending_timeout_ms: Option<u64>,
        /// Client reference.
        #[serde(default, with = "crate::decimal")]
        reference: u128,
    },
    /// Posts a pending transfer.
    PostPending {
        /// Transfer id.
        #[serde(with = "crate::decimal")]
        id: u128,
        /// Pending transfer id.
        #[serde(with = "crate::decimal")]
        pending_id: u128,
        /// Amount to post.
        #[serde(with = "crate::decimal")]
        amount: u128,
    },
    /// Voids a pending transfer.
    VoidPending {
        /// Transfer id.
        #[serde(with = "crate::decimal")]
        id: u128,
        /// Pending transfer id.
        #[serde(with = "crate::decimal")]
        pending_id: u128,
    },
    /// Locks an amount for a payee until the escrow terms hold.
    CreateEscrow {
        /// Escrow (transfer) id.
        #[serde(with = "crate::decimal")]
        id: u128,
        /// The payer's account.
        #[serde(with = "crate::decimal")]
        debit_account: u128,
        /// The payee's account.
        #[serde(with = "crate::decimal")]
        credit_account: u128,
        /// Asset.
        asset: AssetId,
        /// Amount.
        #[serde(with = "crate::decimal")]
        amount: u128,
        /// Milliseconds of block time before the escrow is refunded.
        timeout_ms: u64,
        /// blake3 of the secret that releases it, hex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hashlock: Option<String>,
        /// Block time from which release is allowed (0: none).
        #[serde(default)]
        release_after_ms: u64,
        /// Participants whose approvals count.
        #[serde(default)]
        approvers: Vec<ParticipantId>,
        /// Approvals needed.
        #[serde(default)]
        approvals_required: u8,
    },
    /// Approves an escrow.
    ApproveEscrow {
        /// The escrow's payer.
        owner: ParticipantId,
        /// The escrow's id.
        #[serde(with = "crate::decimal")]
        escrow_id: u128,
    },
    /// Releases an escrow whose terms hold.
    ReleaseEscrow {
        /// This operation's transfer id.
        #[serde(with = "crate::decimal")]
        id: u128,
        /// The escrow's payer.
        owner: ParticipantId,
        /// The escrow's id.
        #[serde(with = "crate::decimal")]
        escrow_id: u128,
        /// The hashlock's secret, hex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preimage: Option<String>,
    },
    /// Offers an exchange of two assets (DvP, PvP).
    OfferExchange {
        /// Offer (transfer) id.
        #[serde(with = "crate::decimal")]
        id: u128,
        /// The offerer's account it delivers from.
        #[serde(with = "crate::decimal")]
        debit_account: u128,
        /// The counterparty's account it delivers into.
        #[serde(with = "crate::decimal")]
        credit_account: u128,
        /// The asset the offerer delivers.
        asset: AssetId,
        /// The amount it delivers.
        #[serde(with = "crate::decimal")]
        amount: u128,
        /// The counterparty's account it pays from.
        #[serde(with = "crate::decimal")]
        counter_debit_account: u128,
        /// The offerer's account it is paid into.
        #[serde(with = "crate::decimal")]
        counter_credit_account: u128,
        /// The asset the counterparty pays.
        counter_asset: AssetId,
        /// The amount it pays.
        #[serde(with = "crate::decimal")]
        counter_amount: u128,
        /// Milliseconds of block time before an unaccepted offer is refunded.
        timeout_ms: u64,
    },
    /// Accepts an exchange offer.
    AcceptExchange {
        /// The acceptor's transfer id for its leg.
        #[serde(with = "crate::decimal")]
        id: u128,
        /// The offerer.
        owner: ParticipantId,
        /// The offer's id.
        #[serde(with = "crate::decimal")]
        exchange_id: u128,
    },
    /// Opens a netting cycle.
    OpenCycle {
        /// Cycle id.
        #[serde(with = "crate::decimal")]
        cycle: u128,
        /// Asset.
        asset: AssetId,
        /// Block time at which it closes by itself.
        closes_at_ms: u64,
        /// Participants that may queue obligations in it and be paid through it.
        members: Vec<ParticipantId>,
    },
    /// Registers or (empty URL) removes one of the signer's webhook endpoints.
    SetWebhook {
        /// Endpoint number, 0 to 3.
        endpoint: u16,
        /// http:// or https:// URL; empty removes it.
        url: String,
    },
    /// Sets or removes the bilateral credit limit the signer grants a debtor.
    SetCreditLimit {
        /// The debtor.
        debtor: ParticipantId,
        /// Asset.
        asset: AssetId,
        /// The limit in minor units; absent or null removes it.
        #[serde(default, with = "crate::decimal::option")]
        limit: Option<u128>,
    },
    /// Queues an obligation in a cycle.
    SubmitObligation {
        /// Obligation id.
        #[serde(with = "crate::decimal")]
        id: u128,
        /// Cycle id.
        #[serde(with = "crate::decimal")]
        cycle: u128,
        /// Debtor's account.
        #[serde(with = "crate::decimal")]
        debit_account: u128,
        /// Creditor's account.
        #[serde(with = "crate::decimal")]
        credit_account: u128,
        /// Amount.
        #[serde(with = "crate::decimal")]
        amount: u128,
    },
    /// Closes and settles a cycle.
    CloseCycle {
        /// Cycle id.
        #[serde(with = "crate::decimal")]
        cycle: u128,
        /// Where unfunded obligations go ("0": rejected).
        #[serde(default, with = "crate::decimal")]
        carry_to: u128,
    },
    /// Reverses (part of) a settled transfer.
    Reverse {
        /// This reversal's transfer id.
        #[serde(with = "crate::decimal")]
        id: u128,
        /// Who submitted the original.
        original_owner: ParticipantId,
        /// The original's id.
        #[serde(with = "crate::decimal")]
        original_id: u128,
        /// Amount moved back.
        #[serde(with = "crate::decimal")]
        amount: u128,
    },
    /// Sets an asset's per-transfer maximum (operator).
    SetTransferMax {
        /// Asset.
        asset: AssetId,
        /// Largest amount of one transfer ("0" removes the maximum).
        #[serde(with = "crate::decimal")]
        amount_max: u128,
    },
    /// Sets a participant's daily outflow cap (its bank member).
    SetOutflowCap {
        /// Participant.
        participant: ParticipantId,
        /// Asset.
        asset: AssetId,
        /// Most it may send per UTC day ("0" removes the cap).
        #[serde(with = "crate::decimal")]
        cap: u128,
    },
    /// Sets an account's maker-checker threshold.
    SetApprovalPolicy {
        /// Account.
        #[serde(with = "crate::decimal")]
        account: u128,
        /// Transfers above this amount wait for a second key ("0" removes the rule).
        #[serde(with = "crate::decimal")]
        threshold: u128,
    },
    /// Registers another key for a participant.
    AddKey {
        /// Participant.
        participant: ParticipantId,
        /// The key, hex.
        key: String,
    },
    /// Approves the signer's transfer waiting for a checker.
    ApproveTransfer {
        /// The waiting transfer's id.
        #[serde(with = "crate::decimal")]
        id: u128,
    },
    /// A regulator places or lifts a hold on an account.
    SetHold {
        /// The account.
        #[serde(with = "crate::decimal")]
        account: u128,
        /// Place (true) or lift (false).
        frozen: bool,
        /// Reason code.
        reason: u16,
    },
    /// A bank member proposes a consortium change.
    Propose {
        /// Proposal id, unique on the network.
        proposal: u64,
        /// Block time after which it can no longer be approved.
        expires_at_ms: u64,
        /// The change.
        #[serde(rename = "change")]
        action: crate::governance_view::GovernanceActionView,
    },
    /// A bank member approves a proposal.
    ApproveProposal {
        /// Proposal id.
        proposal: u64,
    },
    /// Revokes a participant key at once.
    RevokeKey {
        /// Participant.
        participant: ParticipantId,
        /// The key, hex.
        key: String,
    },
}

impl From<&Operation> for OperationView {
    fn from(operation: &Operation) -> Self {
        match operation {
            Operation::OpenAccount {
                account,
                owner,
                asset,
                flags,
            } => OperationView::OpenAccount {
                account: *account,
                owner: *owner,
                asset: *asset,
                flags: flag_names(*flags).into_iter().map(String::from).collect(),
            },
            Operation::Transfer {
                id,
                debit_account,
                credit_account,
                asset,
                amount,
                kind,
                reference,
            } => OperationView::Transfer {
                id: *id,
                debit_account: *debit_account,
                credit_account: *credit_account,
                asset: *asset,
                amount: *amount,
                pending_timeout_ms: match kind {
                    TransferKind::Posted => None,
                    TransferKind::Pending { timeout_ms } => Some(*timeout_ms),
                },
                reference: *reference,
            },
            Operation::PostPending {
                id,
                pending_id,
                amount,
            } => OperationView::PostPending {
                id: *id,
                pending_id: *pending_id,
                amount: *amount,
            },
            Operation::VoidPending { id, pending_id } => OperationView::VoidPending {
                id: *id,
                pending_id: *pending_id,
            },
            Operation::SetHold {
                account,
                frozen,
                reason,
            } => OperationView::SetHold {
                account: *account,
                frozen: *frozen,
                reason: *reason,
            },
            Operation::CreateEscrow {
                id,
                debit_account,
                credit_account,
                asset,
                amount,
                timeout_ms,
                terms,
            } => OperationView::CreateEscrow {
                id: *id,
                debit_account: *debit_account,
                credit_account: *credit_account,
                asset: *asset,
                amount: *amount,
                timeout_ms: *timeout_ms,
                hashlock: terms.hashlock.map(hex::encode),
                release_after_ms: terms.release_after_ms,
                approvers: terms.approvers.clone(),
                approvals_required: terms.approvals_required,
            },
            Operation::OfferExchange {
                id,
                debit_account,
                credit_account,
                asset,
                amount,
                counter_debit_account,
                counter_credit_account,
                counter_asset,
                counter_amount,
                timeout_ms,
            } => OperationView::OfferExchange {
                id: *id,
                debit_account: *debit_account,
                credit_account: *credit_account,
                asset: *asset,
                amount: *amount,
                counter_debit_account: *counter_debit_account,
                counter_credit_account: *counter_credit_account,
                counter_asset: *counter_asset,
                counter_amount: *counter_amount,
                timeout_ms: *timeout_ms,
            },
            Operation::AcceptExchange {
                id,
                owner,
                exchange_id,
            } => OperationView::AcceptExchange {
                id: *id,
                owner: *owner,
                exchange_id: *exchange_id,
            },
            Operation::OpenCycle {
                cycle,
                asset,
                closes_at_ms,
                members,
            } => OperationView::OpenCycle {
                cycle: *cycle,
                asset: *asset,
                closes_at_ms: *closes_at_ms,
                members: members.clone(),
            },
            Operation::SetWebhook { endpoint, url } => OperationView::SetWebhook {
                endpoint: *endpoint,
                url: url.clone(),
            },
            Operation::SetCreditLimit {
                debtor,
                asset,
                limit,
            } => OperationView::SetCreditLimit {
                debtor: *debtor,
                asset: *asset,
                limit: *limit,
            },
            Operation::SubmitObligation {
                id,
                cycle,
                debit_account,
                credit_account,
                amount,
            } => OperationView::SubmitObligation {
                id: *id,
                cycle: *cycle,
                debit_account: *debit_account,
                credit_account: *credit_account,
                amount: *amount,
            },
            Operation::Reverse {
                id,
                original_owner,
                original_id,
                amount,
            } => OperationView::Reverse {
                id: *id,
                original_owner: *original_owner,
                original_id: *original_id,
                amount: *amount,
            },
            Operation::SetApprovalPolicy { account, threshold } => {
                OperationView::SetApprovalPolicy {
                    account: *account,
                    threshold: *threshold,
                }
            }
            Operation::AddKey { participant, key } => OperationView::AddKey {
                participant: *participant,
                key: hex::encode(key),
            },
            Operation::ApproveTransfer { id } => OperationView::ApproveTransfer { id: *id },
            Operation::Propose {
                proposal,
                expires_at_ms,
                action,
            } => OperationView::Propose {
                proposal: *proposal,
                expires_at_ms: *expires_at_ms,
                action: action.into(),
            },
            Operation::ApproveProposal { proposal } => OperationView::ApproveProposal {
                proposal: *proposal,
            },
            Operation::RevokeKey { participant, key } => OperationView::RevokeKey {
                participant: *participant,
                key: hex::encode(key),
            },
            Operation::SetTransferMax { asset, amount_max } => OperationView::SetTransferMax {
                asset: *asset,
                amount_max: *amount_max,
            },
            Operation::SetOutflowCap {
                participant,
                asset,
                cap,
            } => OperationView::SetOutflowCap {
                participant: *participant,
                asset: *asset,
                cap: *cap,
            },
            Operation::CloseCycle { cycle, carry_to } => OperationView::CloseCycle {
                cycle: *cycle,
                carry_to: *carry_to,
            },
            Operation::ApproveEscrow { owner, escrow_id } => OperationView::ApproveEscrow {
                owner: *owner,
                escrow_id: *escrow_id,
            },
            Operation::ReleaseEscrow {
                id,
                owner,
                escrow_id,
                preimage,
            } => OperationView::ReleaseEscrow {
                id: *id,
                owner: *owner,
                escrow_id: *escrow_id,
                preimage: preimage.map(hex::encode),
            },
        }
    }
}

impl OperationView {
    /// The operation this view describes.
    pub fn to_operation(&self) -> Result<Operation, String> {
        Ok(match self {
            OperationView::OpenAccount {
                account,
                owner,
                asset,
                flags,
            } => Operation::OpenAccount {
                account: *account,
                owner: *owner,
                asset: *asset,
                flags: crate::genesis::parse_flags(flags)?,
            },
            OperationView::Transfer {
                id,
                debit_account,
                credit_account,
                asset,
                amount,
                pending_timeout_ms,
                reference,
            } => Operation::Transfer {
                id: *id,
                debit_account: *debit_account,
                credit_account: *credit_account,
                asset: *asset,
                amount: *amount,
                kind: match pending_timeout_ms {
                    None => TransferKind::Posted,
                    Some(timeout_ms) => TransferKind::Pending {
                        timeout_ms: *timeout_ms,
                    },
                },
                reference: *reference,
            },
            OperationView::PostPending {
                id,
                pending_id,
                amount,
            } => Operation::PostPending {
                id: *id,
                pending_id: *pending_id,
                amount: *amount,
            },
            OperationView::VoidPending { id, pending_id } => Operation::VoidPending {
                id: *id,
                pending_id: *pending_id,
            },
            OperationView::SetHold {
                account,
                frozen,
                reason,
            } => Operation::SetHold {
                account: *account,
                frozen: *frozen,
                reason: *reason,
            },
            OperationView::CreateEscrow {
                id,
                debit_account,
                credit_account,
                asset,
                amount,
                timeout_ms,
                hashlock,
                release_after_ms,
                approvers,
                approvals_required,
            } => {
                let mut sorted = approvers.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != approvers.len() {
                    return Err("approvers must not repeat".into());
                }
                if sorted.len() > crate::limits::ESCROW_APPROVERS_MAX {
                    return Err(format!(
                        "at most {} approvers",
                        crate::limits::ESCROW_APPROVERS_MAX
                    ));
                }
                Operation::CreateEscrow {
                    id: *id,
                    debit_account: *debit_account,
                    credit_account: *credit_account,
                    asset: *asset,
                    amount: *amount,
                    timeout_ms: *timeout_ms,
                    terms: crate::tx::EscrowTerms {
                        hashlock: hashlock.as_deref().map(parse_hash32).transpose()?,
                        release_after_ms: *release_after_ms,
                        approvers: sorted,
                        approvals_required: *approvals_required,
                    },
                }
            }
            OperationView::OfferExchange {
                id,
                debit_account,
                credit_account,
                asset,
                amount,
                counter_debit_account,
                counter_credit_account,
                counter_asset,
                counter_amount,
                timeout_ms,
            } => Operation::OfferExchange {
                id: *id,
                debit_account: *debit_account,
                credit_account: *credit_account,
                asset: *asset,
                amount: *amount,
                counter_debit_account: *counter_debit_account,
                counter_credit_account: *counter_credit_account,
                counter_asset: *counter_asset,
                counter_amount: *counter_amount,
                timeout_ms: *timeout_ms,
            },
            OperationView::AcceptExchange {
                id,
                owner,
                exchange_id,
            } => Operation::AcceptExchange {
                id: *id,
                owner: *owner,
                exchange_id: *exchange_id,
            },
            OperationView::OpenCycle {
                cycle,
                asset,
                closes_at_ms,
                members,
            } => {
                let mut sorted = members.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != members.len() {
                    return Err("members must not repeat".into());
                }
                if !(2..=crate::limits::CYCLE_MEMBERS_MAX).contains(&sorted.len()) {
                    return Err(format!(
                        "a cycle has 2 to {} members",
                        crate::limits::CYCLE_MEMBERS_MAX
                    ));
                }
                Operation::OpenCycle {
                    cycle: *cycle,
                    asset: *asset,
                    closes_at_ms: *closes_at_ms,
                    members: sorted,
                }
            }
            OperationView::SetWebhook { endpoint, url } => Operation::SetWebhook {
                endpoint: *endpoint,
                url: url.clone(),
            },
            OperationView::SetCreditLimit {
                debtor,
                asset,
                limit,
            } => Operation::SetCreditLimit {
                debtor: *debtor,
                asset: *asset,
                limit: *limit,
            },
            OperationView::SubmitObligation {
                id,
                cycle,
                debit_account,
                credit_account,
                amount,
            } => Operation::SubmitObligation {
                id: *id,
                cycle: *cycle,
                debit_account: *debit_account,
                credit_account: *credit_account,
                amount: *amount,
            },
            OperationView::Reverse {
                id,
                original_owner,
                original_id,
                amount,
            } => Operation::Reverse {
                id: *id,
                original_owner: *original_owner,
                original_id: *original_id,
                amount: *amount,
            },
            OperationView::SetApprovalPolicy { account, threshold } => {
                Operation::SetApprovalPolicy {
                    account: *account,
                    threshold: *threshold,
                }
            }
            OperationView::AddKey { participant, key } => Operation::AddKey {
                participant: *participant,
                key: parse_hash32(key)?,
            },
            OperationView::ApproveTransfer { id } => Operation::ApproveTransfer { id: *id },
            OperationView::Propose {
                proposal,
                expires_at_ms,
                action,
            } => Operation::Propose {
                proposal: *proposal,
                expires_at_ms: *expires_at_ms,
                action: action.to_action()?,
            },
            OperationView::ApproveProposal { proposal } => Operation::ApproveProposal {
                proposal: *proposal,
            },
            OperationView::RevokeKey { participant, key } => Operation::RevokeKey {
                participant: *participant,
                key: parse_hash32(key)?,
            },
            OperationView::SetTransferMax { asset, amount_max } => Operation::SetTransferMax {
                asset: *asset,
                amount_max: *amount_max,
            },
            OperationView::SetOutflowCap {
                participant,
                asset,
                cap,
            } => Operation::SetOutflowCap {
                participant: *participant,
                asset: *asset,
                cap: *cap,
            },
            OperationView::CloseCycle { cycle, carry_to } => Operation::CloseCycle {
                cycle: *cycle,
                carry_to: *carry_to,
            },
            OperationView::ApproveEscrow { owner, escrow_id } => Operation::ApproveEscrow {
                owner: *owner,
                escrow_id: *escrow_id,
            },
            OperationView::ReleaseEscrow {
                id,
                owner,
                escrow_id,
                preimage,
            } => Operation::ReleaseEscrow {
                id: *id,
                owner: *owner,
                escrow_id: *escrow_id,
                preimage: preimage.as_deref().map(parse_hash32).transpose()?,
            },
        })
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
    /// Whether the operations are linked.
    pub linked: bool,
    /// The operations.
    pub operations: Vec<OperationView>,
}

impl From<&Transaction> for TransactionView {
    fn from(transaction: &Transaction) -> Self {
        Self {
            signer: hex::encode(transaction.signer),
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
