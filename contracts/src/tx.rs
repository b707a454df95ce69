//! Signed transactions: operations, the canonical body, and the envelope that carries a signature.
//!
//! Envelope layout (docs/encoding.md): version u8 | network_id [32] | signer key [32] |
//! body (u32 length + bytes) | signature [64]. The signature covers [`SIGNING_DOMAIN`]
//! followed by every envelope byte before the signature, so it binds the network, the format
//! version and the signer. The transaction id is blake3 of the whole envelope.

use crate::codec::{DecodeError, Reader, Writer};
use crate::governance::GovernanceAction;
use crate::limits::{ENVELOPE_SIZE_MAX, FORMAT_VERSION, LINKED_OPERATIONS_MAX};
use crate::model::{AccountId, AssetId, Hash, ParticipantId, PublicKey, TransferId};
use ed25519_dalek::{Signer, SigningKey};

pub use crate::model::TransferKind;

/// Prefix of every signed message, so a transaction signature is never valid for another use.
pub const SIGNING_DOMAIN: &[u8] = b"tpwalletoec/transaction\0";

/// When an escrowed amount may be released to the payee: every condition present must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowTerms {
    /// blake3 of a 32-byte secret that the releaser must present.
    pub hashlock: Option<Hash>,
    /// Block time from which release is allowed (0: no time condition).
    pub release_after_ms: u64,
    /// Named parties whose approvals count, in ascending order, at most
    /// [`crate::limits::ESCROW_APPROVERS_MAX`].
    pub approvers: Vec<ParticipantId>,
    /// Approvals needed (M of the N approvers); 0 when there are no approvers.
    pub approvals_required: u8,
}

impl EscrowTerms {
    /// Canonical encoding: has_hashlock u8 [hashlock [32]] | release_after_ms u64 |
    /// approver count u8 | approvers u64* (strictly ascending) | approvals_required u8.
    pub fn encode(&self, writer: &mut Writer) {
        match &self.hashlock {
            None => writer.u8(0),
            Some(hash) => {
                writer.u8(1);
                writer.fixed(hash);
            }
        }
        writer.u64(self.release_after_ms);
        writer.u8(u8::try_from(self.approvers.len()).expect("bounded by ESCROW_APPROVERS_MAX"));
        for approver in &self.approvers {
            writer.u64(*approver);
        }
        writer.u8(self.approvals_required);
    }

    /// Reads terms written by [`EscrowTerms::encode`], refusing unsorted or repeated approvers.
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let hashlock = if reader.bool("escrow.has_hashlock")? {
            Some(reader.array("escrow.hashlock")?)
        } else {
            None
        };
        let release_after_ms = reader.u64("escrow.release_after_ms")?;
        let count = reader.u8("escrow.approver_count")? as usize;
        if count > crate::limits::ESCROW_APPROVERS_MAX {
            return Err(DecodeError::TooLong {
                field: "escrow.approvers",
                length: count,
                limit: crate::limits::ESCROW_APPROVERS_MAX,
            });
        }
        let mut approvers: Vec<ParticipantId> = Vec::with_capacity(count);
        for _ in 0..count {
            let approver = reader.u64("escrow.approver")?;
            if approvers.last().is_some_and(|last| *last >= approver) {
                return Err(DecodeError::InvalidValue {
                    field: "escrow.approvers",
                    value: approver.into(),
                });
            }
            approvers.push(approver);
        }
        Ok(Self {
            hashlock,
            release_after_ms,
            approvers,
            approvals_required: reader.u8("escrow.approvals_required")?,
        })
    }
}

/// Reads a cycle's member list: a u16 count (2..=[`crate::limits::CYCLE_MEMBERS_MAX`]) and
/// that many participant ids, strictly ascending.
fn decode_members(reader: &mut Reader<'_>) -> Result<Vec<ParticipantId>, DecodeError> {
    let count = reader.u16("open_cycle.member_count")? as usize;
    if count > crate::limits::CYCLE_MEMBERS_MAX {
        return Err(DecodeError::TooLong {
            field: "open_cycle.members",
            length: count,
            limit: crate::limits::CYCLE_MEMBERS_MAX,
        });
    }
    if count < 2 {
        return Err(DecodeError::InvalidValue {
            field: "open_cycle.member_count",
            value: count as u128,
        });
    }
    let mut members: Vec<ParticipantId> = Vec::with_capacity(count);
    for _ in 0..count {
        let member = reader.u64("open_cycle.member")?;
        if members.last().is_some_and(|last| *last >= member) {
            return Err(DecodeError::InvalidValue {
                field: "open_cycle.members",
                value: member.into(),
            });
        }
        members.push(member);
    }
    Ok(members)
}

/// One ledger operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Opens an account; signed by the owner or the owner's bank member.
    OpenAccount {
        /// The new account's id.
        account: AccountId,
        /// Its owner.
        owner: ParticipantId,
        /// Its asset.
        asset: AssetId,
        /// Its flags (the frozen flag is not allowed here).
        flags: u16,
    },
    /// Moves or reserves money from the debit to the credit account.
    Transfer {
        /// Client-chosen id, unique per signer.
        id: TransferId,
        /// Account debited; the signer must own it.
        debit_account: AccountId,
        /// Account credited.
        credit_account: AccountId,
        /// Asset of both accounts.
        asset: AssetId,
        /// Amount in minor units.
        amount: u128,
        /// Posted or pending.
        kind: TransferKind,
        /// Free client reference, such as an invoice number.
        reference: u128,
    },
    /// Completes a pending transfer of the signer, moving `amount` (at most the reserved amount).
    PostPending {
        /// This operation's own transfer id.
        id: TransferId,
        /// The pending transfer's id.
        pending_id: TransferId,
        /// Amount to move; the rest of the reservation is released.
        amount: u128,
    },
    /// Releases a pending transfer of the signer without moving money.
    VoidPending {
        /// This operation's own transfer id.
        id: TransferId,
        /// The pending transfer's id.
        pending_id: TransferId,
    },
    /// Locks `amount` from the payer's account for the payee until the terms hold (then anyone
    /// entitled releases it) or `timeout_ms` of block time pass (then it returns to the payer).
    CreateEscrow {
        /// Client-chosen id, unique per signer (the payer).
        id: TransferId,
        /// The payer's account; the signer must own it.
        debit_account: AccountId,
        /// The payee's account.
        credit_account: AccountId,
        /// Asset of both accounts.
        asset: AssetId,
        /// Amount in minor units.
        amount: u128,
        /// Milliseconds of block time before the escrow is refunded.
        timeout_ms: u64,
        /// The release conditions.
        terms: EscrowTerms,
    },
    /// Records the signer's approval of an escrow; the signer must be one of its approvers.
    ApproveEscrow {
        /// The escrow's payer.
        owner: ParticipantId,
        /// The escrow's id.
        escrow_id: TransferId,
    },
    /// Releases an escrow to the payee once its terms hold; signed by the payer, the payee or
    /// an approver.
    ReleaseEscrow {
        /// This operation's own transfer id.
        id: TransferId,
        /// The escrow's payer.
        owner: ParticipantId,
        /// The escrow's id.
        escrow_id: TransferId,
        /// The secret whose blake3 is the hashlock, if the escrow has one.
        preimage: Option<[u8; 32]>,
    },
    /// Offers an exchange of two assets (DvP, PvP): the signer's leg is reserved at once; the
    /// counterparty's leg is named here and moves when it accepts.
    OfferExchange {
        /// Client-chosen id, unique per signer (the offerer).
        id: TransferId,
        /// The offerer's account it delivers from.
        debit_account: AccountId,
        /// The counterparty's account it delivers into.
        credit_account: AccountId,
        /// The asset the offerer delivers.
        asset: AssetId,
        /// The amount the offerer delivers.
        amount: u128,
        /// The counterparty's account it pays from.
        counter_debit_account: AccountId,
        /// The offerer's account it is paid into.
        counter_credit_account: AccountId,
        /// The asset the counterparty pays.
        counter_asset: AssetId,
        /// The amount the counterparty pays (the agreed rate is counter_amount / amount).
        counter_amount: u128,
        /// Milliseconds of block time before an unaccepted offer is refunded.
        timeout_ms: u64,
    },
    /// Accepts an exchange offer: the signer's (counterparty's) leg and the offered leg settle
    /// together or not at all.
    AcceptExchange {
        /// The signer's transfer id for its leg.
        id: TransferId,
        /// The offerer.
        owner: ParticipantId,
        /// The offer's id.
        exchange_id: TransferId,
    },
    /// Opens a multilateral netting cycle for one asset (bank members and operators).
    OpenCycle {
        /// The cycle id, unique on the network.
        cycle: u128,
        /// Its asset.
        asset: AssetId,
        /// Block time at which it closes and settles by itself.
        closes_at_ms: u64,
        /// The participants that may queue obligations in it and be paid through it
        /// (2..=1,024, strictly ascending).
        members: Vec<ParticipantId>,
    },
    /// Queues a payment obligation of the signer (the debtor) in an open cycle.
    SubmitObligation {
        /// Obligation id, unique per debtor.
        id: TransferId,
        /// The cycle.
        cycle: u128,
        /// The debtor's account.
        debit_account: AccountId,
        /// The creditor's account.
        credit_account: AccountId,
        /// Amount in minor units (at most 2^96).
        amount: u128,
    },
    /// Closes and settles a cycle now (its opener or an operator); unfunded obligations move
    /// to `carry_to` (an open cycle of the same asset) or are rejected when it is 0.
    CloseCycle {
        /// The cycle.
        cycle: u128,
        /// Where unfunded obligations go (0: rejected).
        carry_to: u128,
    },
    /// Moves `amount` back along a settled transfer (from its credit to its debit account);
    /// signed by the original beneficiary, or by a regulator as a reversal order.
    Reverse {
        /// This reversal's own transfer id.
        id: TransferId,
        /// Who submitted the original transfer.
        original_owner: ParticipantId,
        /// The original transfer's id.
        original_id: TransferId,
        /// Amount to move back (at most what remains of the original).
        amount: u128,
    },
    /// Sets an asset's per-transfer maximum (0 removes it). Refused with
    /// `governance_required`: an approved governance proposal sets network parameters.
    SetTransferMax {
        /// The asset.
        asset: AssetId,
        /// Largest amount of one transfer.
        amount_max: u128,
    },
    /// Sets (or, with `None`, removes) the most the signer (the creditor) accepts to be owed
    /// by `debtor` in an asset across one netting cycle: the bilateral credit limit.
    SetCreditLimit {
        /// The participant granted the credit.
        debtor: ParticipantId,
        /// The asset.
        asset: AssetId,
        /// The limit in minor units; `None` removes it (no bilateral limit).
        limit: Option<u128>,
    },
    /// Registers (or, with an empty URL, removes) one of the signer's webhook endpoints: the
    /// leader POSTs the signer's events there, signed by the delivering node.
    SetWebhook {
        /// Endpoint number, 0 to 3.
        endpoint: u16,
        /// http:// or https:// URL; empty removes the endpoint.
        url: String,
    },
    /// Sets a participant's daily outflow cap in an asset (0 removes it); its bank member only.
    SetOutflowCap {
        /// The participant.
        participant: ParticipantId,
        /// The asset.
        asset: AssetId,
        /// Most it may send per UTC day of block time.
        cap: u128,
    },
    /// Sets the amount above which a transfer from the account waits for a second key of its
    /// owner (maker-checker); 0 removes it. Signed by the owner or its bank member.
    SetApprovalPolicy {
        /// The account.
        account: AccountId,
        /// Transfers above this amount need a checker.
        threshold: u128,
    },
    /// Registers another signing key for a participant; its bank member only.
    AddKey {
        /// The participant.
        participant: ParticipantId,
        /// The new key.
        key: PublicKey,
    },
    /// A checker (another key of the signer) approves the signer's transfer waiting for it.
    ApproveTransfer {
        /// The waiting transfer's id.
        id: TransferId,
    },
    /// Places (`frozen`) or lifts a regulator's hold on an account; regulators only. A held
    /// account can be neither debited nor credited.
    SetHold {
        /// The account.
        account: AccountId,
        /// Place (true) or lift (false) the hold.
        frozen: bool,
        /// The regulator's reason code (1..=65535 to place a hold; any value to lift one).
        reason: u16,
    },
    /// A bank member proposes a consortium change; its own approval counts at once.
    Propose {
        /// The proposal's id, unique on the network.
        proposal: u64,
        /// Block time after which it can no longer be approved (at most 30 days ahead).
        expires_at_ms: u64,
        /// The change.
        action: GovernanceAction,
    },
    /// A bank member approves an open proposal.
    ApproveProposal {
        /// The proposal's id.
        proposal: u64,
    },
    /// Revokes one of a participant's keys at once; signed by the participant (with another
    /// key, or the key itself) or its bank member.
    RevokeKey {
        /// The participant.
        participant: ParticipantId,
        /// The key.
        key: PublicKey,
    },
}

const TAG_OPEN_ACCOUNT: u8 = 1;
const TAG_TRANSFER: u8 = 2;
const TAG_POST_PENDING: u8 = 3;
const TAG_VOID_PENDING: u8 = 4;
const TAG_SET_HOLD: u8 = 5;
const TAG_CREATE_ESCROW: u8 = 6;
const TAG_APPROVE_ESCROW: u8 = 7;
const TAG_RELEASE_ESCROW: u8 = 8;
const TAG_OFFER_EXCHANGE: u8 = 9;
const TAG_ACCEPT_EXCHANGE: u8 = 10;
const TAG_OPEN_CYCLE: u8 = 11;
const TAG_SUBMIT_OBLIGATION: u8 = 12;
const TAG_CLOSE_CYCLE: u8 = 13;
const TAG_REVERSE: u8 = 14;
const TAG_SET_TRANSFER_MAX: u8 = 15;
const TAG_SET_OUTFLOW_CAP: u8 = 16;
const TAG_SET_APPROVAL_POLICY: u8 = 17;
const TAG_ADD_KEY: u8 = 18;
const TAG_APPROVE_TRANSFER: u8 = 19;
const TAG_SET_CREDIT_LIMIT: u8 = 20;
const TAG_SET_WEBHOOK: u8 = 21;
const TAG_PROPOSE: u8 = 22;
const TAG_APPROVE_PROPOSAL: u8 = 23;
const TAG_REVOKE_KEY: u8 = 24;

impl Operation {
    /// A posted transfer with no client reference: the most common operation.
    pub fn posted(
        id: TransferId,
        debit_account: AccountId,
        credit_account: AccountId,
        asset: AssetId,
        amount: u128,
    ) -> Self {
        Operation::Transfer {
            id,
            debit_account,
            credit_account,
            asset,
            amount,
            kind: TransferKind::Posted,
            reference: 0,
        }
    }

    /// The transfer id this operation records, if it is a transfer kind.
    pub fn transfer_id(&self) -> Option<TransferId> {
        match self {
            Operation::OpenAccount { .. }
            | Operation::SetHold { .. }
            | Operation::ApproveEscrow { .. }
            | Operation::OpenCycle { .. }
            | Operation::SubmitObligation { .. }
            | Operation::CloseCycle { .. }
            | Operation::SetTransferMax { .. }
            | Operation::SetOutflowCap { .. }
            | Operation::SetCreditLimit { .. }
            | Operation::SetWebhook { .. }
            | Operation::SetApprovalPolicy { .. }
            | Operation::AddKey { .. }
            | Operation::ApproveTransfer { .. }
            | Operation::Propose { .. }
            | Operation::ApproveProposal { .. }
            | Operation::RevokeKey { .. } => None,
            Operation::CreateEscrow { id, .. }
            | Operation::ReleaseEscrow { id, .. }
            | Operation::OfferExchange { id, .. }
            | Operation::AcceptExchange { id, .. }
            | Operation::Reverse { id, .. } => Some(*id),
            Operation::Transfer { id, .. }
            | Operation::PostPending { id, .. }
            | Operation::VoidPending { id, .. } => Some(*id),
        }
    }

    /// Canonical encoding.
    pub fn encode(&self, writer: &mut Writer) {
        match self {
            Operation::OpenAccount {
                account,
                owner,
                asset,
                flags,
            } => {
                writer.u8(TAG_OPEN_ACCOUNT);
                writer.u128(*account);
                writer.u64(*owner);
                writer.u32(*asset);
                writer.u16(*flags);
            }
            Operation::Transfer {
                id,
                debit_account,
                credit_account,
                asset,
                amount,
                kind,
                reference,
            } => {
                writer.u8(TAG_TRANSFER);
                writer.u128(*id);
                writer.u128(*debit_account);
                writer.u128(*credit_account);
                writer.u32(*asset);
                writer.u128(*amount);
                match kind {
                    TransferKind::Posted => writer.u8(0),
                    TransferKind::Pending { timeout_ms } => {
                        writer.u8(1);
                        writer.u64(*timeout_ms);
                    }
                }
                writer.u128(*reference);
            }
            Operation::PostPending {
                id,
                pending_id,
                amount,
            } => {
                writer.u8(TAG_POST_PENDING);
                writer.u128(*id);
                writer.u128(*pending_id);
                writer.u128(*amount);
            }
            Operation::VoidPending { id, pending_id } => {
                writer.u8(TAG_VOID_PENDING);
                writer.u128(*id);
                writer.u128(*pending_id);
            }
            Operation::SetHold {
                account,
                frozen,
                reason,
            } => {
                writer.u8(TAG_SET_HOLD);
                writer.u128(*account);
                writer.u8(u8::from(*frozen));
                writer.u16(*reason);
            }
            Operation::CreateEscrow {
                id,
                debit_account,
                credit_account,
                asset,
                amount,
                timeout_ms,
                terms,
            } => {
                writer.u8(TAG_CREATE_ESCROW);
                writer.u128(*id);
                writer.u128(*debit_account);
                writer.u128(*credit_account);
                writer.u32(*asset);
                writer.u128(*amount);
                writer.u64(*timeout_ms);
                terms.encode(writer);
            }
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
            } => {
                writer.u8(TAG_OFFER_EXCHANGE);
                writer.u128(*id);
                writer.u128(*debit_account);
                writer.u128(*credit_account);
                writer.u32(*asset);
                writer.u128(*amount);
                writer.u128(*counter_debit_account);
                writer.u128(*counter_credit_account);
                writer.u32(*counter_asset);
                writer.u128(*counter_amount);
                writer.u64(*timeout_ms);
            }
            Operation::AcceptExchange {
                id,
                owner,
                exchange_id,
            } => {
                writer.u8(TAG_ACCEPT_EXCHANGE);
                writer.u128(*id);
                writer.u64(*owner);
                writer.u128(*exchange_id);
            }
            Operation::OpenCycle {
                cycle,
                asset,
                closes_at_ms,
                members,
            } => {
                writer.u8(TAG_OPEN_CYCLE);
                writer.u128(*cycle);
                writer.u32(*asset);
                writer.u64(*closes_at_ms);
                writer.u16(u16::try_from(members.len()).unwrap_or(u16::MAX));
                for member in members {
                    writer.u64(*member);
                }
            }
            Operation::SetWebhook { endpoint, url } => {
                writer.u8(TAG_SET_WEBHOOK);
                writer.u16(*endpoint);
                writer.string(url);
            }
            Operation::SetCreditLimit {
                debtor,
                asset,
                limit,
            } => {
                writer.u8(TAG_SET_CREDIT_LIMIT);
                writer.u64(*debtor);
                writer.u32(*asset);
                match limit {
                    None => writer.u8(0),
                    Some(limit) => {
                        writer.u8(1);
                        writer.u128(*limit);
                    }
                }
            }
            Operation::SubmitObligation {
                id,
                cycle,
                debit_account,
                credit_account,
                amount,
            } => {
                writer.u8(TAG_SUBMIT_OBLIGATION);
                writer.u128(*id);
                writer.u128(*cycle);
                writer.u128(*debit_account);
                writer.u128(*credit_account);
                writer.u128(*amount);
            }
            Operation::Reverse {
                id,
                original_owner,
                original_id,
                amount,
            } => {
                writer.u8(TAG_REVERSE);
                writer.u128(*id);
                writer.u64(*original_owner);
                writer.u128(*original_id);
                writer.u128(*amount);
            }
            Operation::SetApprovalPolicy { account, threshold } => {
                writer.u8(TAG_SET_APPROVAL_POLICY);
                writer.u128(*account);
                writer.u128(*threshold);
            }
            Operation::AddKey { participant, key } => {
                writer.u8(TAG_ADD_KEY);
                writer.u64(*participant);
                writer.fixed(key);
            }
            Operation::ApproveTransfer { id } => {
                writer.u8(TAG_APPROVE_TRANSFER);
                writer.u128(*id);
            }
            Operation::Propose {
                proposal,
                expires_at_ms,
                action,
            } => {
                writer.u8(TAG_PROPOSE);
                writer.u64(*proposal);
                writer.u64(*expires_at_ms);
                action.encode(writer);
            }
            Operation::ApproveProposal { proposal } => {
                writer.u8(TAG_APPROVE_PROPOSAL);
                writer.u64(*proposal);
            }
            Operation::RevokeKey { participant, key } => {
                writer.u8(TAG_REVOKE_KEY);
                writer.u64(*participant);
                writer.fixed(key);
            }
            Operation::SetTransferMax { asset, amount_max } => {
                writer.u8(TAG_SET_TRANSFER_MAX);
                writer.u32(*asset);
                writer.u128(*amount_max);
            }
            Operation::SetOutflowCap {
                participant,
                asset,
                cap,
            } => {
                writer.u8(TAG_SET_OUTFLOW_CAP);
                writer.u64(*participant);
                writer.u32(*asset);
                writer.u128(*cap);
            }
            Operation::CloseCycle { cycle, carry_to } => {
                writer.u8(TAG_CLOSE_CYCLE);
                writer.u128(*cycle);
                writer.u128(*carry_to);
            }
            Operation::ApproveEscrow { owner, escrow_id } => {
                writer.u8(TAG_APPROVE_ESCROW);
                writer.u64(*owner);
                writer.u128(*escrow_id);
            }
            Operation::ReleaseEscrow {
                id,
                owner,
                escrow_id,
                preimage,
            } => {
                writer.u8(TAG_RELEASE_ESCROW);
                writer.u128(*id);
                writer.u64(*owner);
                writer.u128(*escrow_id);
                match preimage {
                    None => writer.u8(0),
                    Some(secret) => {
                        writer.u8(1);
                        writer.fixed(secret);
                    }
                }
            }
        }
    }

    /// Reads an operation written by [`Operation::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.u8("operation.tag")? {
            TAG_OPEN_ACCOUNT => Operation::OpenAccount {
                account: reader.u128("open_account.account")?,
                owner: reader.u64("open_account.owner")?,
                asset: reader.u32("open_account.asset")?,
                flags: reader.u16("open_account.flags")?,
            },
            TAG_TRANSFER => Operation::Transfer {
                id: reader.u128("transfer.id")?,
                debit_account: reader.u128("transfer.debit_account")?,
                credit_account: reader.u128("transfer.credit_account")?,
                asset: reader.u32("transfer.asset")?,
                amount: reader.u128("transfer.amount")?,
                kind: match reader.u8("transfer.kind")? {
                    0 => TransferKind::Posted,
                    1 => TransferKind::Pending {
                        timeout_ms: reader.u64("transfer.timeout_ms")?,
                    },
                    other => {
                        return Err(DecodeError::InvalidValue {
                            field: "transfer.kind",
                            value: other.into(),
                        })
                    }
                },
                reference: reader.u128("transfer.reference")?,
            },
            TAG_POST_PENDING => Operation::PostPending {
                id: reader.u128("post_pending.id")?,
                pending_id: reader.u128("post_pending.pending_id")?,
                amount: reader.u128("post_pending.amount")?,
            },
            TAG_VOID_PENDING => Operation::VoidPending {
                id: reader.u128("void_pending.id")?,
                pending_id: reader.u128("void_pending.pending_id")?,
            },
            TAG_SET_HOLD => Operation::SetHold {
                account: reader.u128("set_hold.account")?,
                frozen: reader.bool("set_hold.frozen")?,
                reason: reader.u16("set_hold.reason")?,
            },
            TAG_CREATE_ESCROW => Operation::CreateEscrow {
                id: reader.u128("create_escrow.id")?,
                debit_account: reader.u128("create_escrow.debit_account")?,
                credit_account: reader.u128("create_escrow.credit_account")?,
                asset: reader.u32("create_escrow.asset")?,
                amount: reader.u128("create_escrow.amount")?,
                timeout_ms: reader.u64("create_escrow.timeout_ms")?,
                terms: EscrowTerms::decode(reader)?,
            },
            TAG_OFFER_EXCHANGE => Operation::OfferExchange {
                id: reader.u128("offer_exchange.id")?,
                debit_account: reader.u128("offer_exchange.debit_account")?,
                credit_account: reader.u128("offer_exchange.credit_account")?,
                asset: reader.u32("offer_exchange.asset")?,
                amount: reader.u128("offer_exchange.amount")?,
                counter_debit_account: reader.u128("offer_exchange.counter_debit_account")?,
                counter_credit_account: reader.u128("offer_exchange.counter_credit_account")?,
                counter_asset: reader.u32("offer_exchange.counter_asset")?,
                counter_amount: reader.u128("offer_exchange.counter_amount")?,
                timeout_ms: reader.u64("offer_exchange.timeout_ms")?,
            },
            TAG_ACCEPT_EXCHANGE => Operation::AcceptExchange {
                id: reader.u128("accept_exchange.id")?,
                owner: reader.u64("accept_exchange.owner")?,
                exchange_id: reader.u128("accept_exchange.exchange_id")?,
            },
            TAG_OPEN_CYCLE => Operation::OpenCycle {
                cycle: reader.u128("open_cycle.cycle")?,
                asset: reader.u32("open_cycle.asset")?,
                closes_at_ms: reader.u64("open_cycle.closes_at_ms")?,
                members: decode_members(reader)?,
            },
            TAG_SET_WEBHOOK => Operation::SetWebhook {
                endpoint: reader.u16("set_webhook.endpoint")?,
                url: reader.string("set_webhook.url", crate::limits::WEBHOOK_URL_SIZE_MAX)?,
            },
            TAG_SET_CREDIT_LIMIT => Operation::SetCreditLimit {
                debtor: reader.u64("set_credit_limit.debtor")?,
                asset: reader.u32("set_credit_limit.asset")?,
                limit: if reader.bool("set_credit_limit.has_limit")? {
                    Some(reader.u128("set_credit_limit.limit")?)
                } else {
                    None
                },
            },
            TAG_SUBMIT_OBLIGATION => Operation::SubmitObligation {
                id: reader.u128("submit_obligation.id")?,
                cycle: reader.u128("submit_obligation.cycle")?,
                debit_account: reader.u128("submit_obligation.debit_account")?,
                credit_account: reader.u128("submit_obligation.credit_account")?,
                amount: reader.u128("submit_obligation.amount")?,
            },
            TAG_REVERSE => Operation::Reverse {
                id: reader.u128("reverse.id")?,
                original_owner: reader.u64("reverse.original_owner")?,
                original_id: reader.u128("reverse.original_id")?,
                amount: reader.u128("reverse.amount")?,
            },
            TAG_SET_APPROVAL_POLICY => Operation::SetApprovalPolicy {
                account: reader.u128("set_approval_policy.account")?,
                threshold: reader.u128("set_approval_policy.threshold")?,
            },
            TAG_ADD_KEY => Operation::AddKey {
                participant: reader.u64("add_key.participant")?,
                key: reader.array("add_key.key")?,
            },
            TAG_APPROVE_TRANSFER => Operation::ApproveTransfer {
                id: reader.u128("approve_transfer.id")?,
            },
            TAG_SET_TRANSFER_MAX => Operation::SetTransferMax {
                asset: reader.u32("set_transfer_max.asset")?,
                amount_max: reader.u128("set_transfer_max.amount_max")?,
            },
            TAG_SET_OUTFLOW_CAP => Operation::SetOutflowCap {
                participant: reader.u64("set_outflow_cap.participant")?,
                asset: reader.u32("set_outflow_cap.asset")?,
                cap: reader.u128("set_outflow_cap.cap")?,
            },
            TAG_CLOSE_CYCLE => Operation::CloseCycle {
                cycle: reader.u128("close_cycle.cycle")?,
                carry_to: reader.u128("close_cycle.carry_to")?,
            },
            TAG_APPROVE_ESCROW => Operation::ApproveEscrow {
                owner: reader.u64("approve_escrow.owner")?,
                escrow_id: reader.u128("approve_escrow.escrow_id")?,
            },
            TAG_RELEASE_ESCROW => Operation::ReleaseEscrow {
                id: reader.u128("release_escrow.id")?,
                owner: reader.u64("release_escrow.owner")?,
                escrow_id: reader.u128("release_escrow.escrow_id")?,
                preimage: if reader.bool("release_escrow.has_preimage")? {
                    Some(reader.array("release_escrow.preimage")?)
                } else {
                    None
                },
            },
            TAG_PROPOSE => Operation::Propose {
                proposal: reader.u64("propose.proposal")?,
                expires_at_ms: reader.u64("propose.expires_at_ms")?,
                action: GovernanceAction::decode(reader)?,
            },
            TAG_APPROVE_PROPOSAL => Operation::ApproveProposal {
                proposal: reader.u64("approve_proposal.proposal")?,
            },
            TAG_REVOKE_KEY => Operation::RevokeKey {
                participant: reader.u64("revoke_key.participant")?,
                key: reader.array("revoke_key.key")?,
            },
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "operation.tag",
                    value: other.into(),
                })
            }
        })
    }

    /// blake3 of the canonical bytes: what idempotent retries are compared by.
    pub fn body_hash(&self) -> Hash {
        let mut writer = Writer::with_capacity(128);
        self.encode(&mut writer);
        *blake3::hash(&writer.finish()).as_bytes()
    }
}

/// The signed content: one operation, or a linked batch that applies all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// Whether the operations are linked (all or nothing). A single operation is never linked.
    pub linked: bool,
    /// The operations, in order.
    pub operations: Vec<Operation>,
}

impl Body {
    /// A body with one operation.
    pub fn single(operation: Operation) -> Self {
        Self {
            linked: false,
            operations: vec![operation],
        }
    }
    /// A linked batch.
    pub fn linked(operations: Vec<Operation>) -> Self {
        Self {
            linked: true,
            operations,
        }
    }
    /// Checks the shape rules that make the encoding canonical.
    pub fn check_shape(&self) -> Result<(), DecodeError> {
        let count = self.operations.len();
        if count == 0 || (!self.linked && count != 1) || (self.linked && count < 2) {
            return Err(DecodeError::InvalidValue {
                field: "body.operation_count",
                value: count as u128,
            });
        }
        if count > LINKED_OPERATIONS_MAX {
            return Err(DecodeError::TooLong {
                field: "body.operations",
                length: count,
                limit: LINKED_OPERATIONS_MAX,
            });
        }
        Ok(())
    }
    /// Canonical encoding: flags u8 (bit 0 = linked) | count u16 | operations.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u8(u8::from(self.linked));
        writer.u16(
            u16::try_from(self.operations.len())
                .expect("operations are bounded by LINKED_OPERATIONS_MAX"),
        );
        for operation in &self.operations {
            operation.encode(writer);
        }
    }
    /// Reads a body written by [`Body::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let linked = reader.bool("body.flags")?;
        let count = reader.u16("body.operation_count")? as usize;
        if count > LINKED_OPERATIONS_MAX {
            return Err(DecodeError::TooLong {
                field: "body.operations",
                length: count,
                limit: LINKED_OPERATIONS_MAX,
            });
        }
        let mut operations = Vec::with_capacity(count);
        for _ in 0..count {
            operations.push(Operation::decode(reader)?);
        }
        let body = Self { linked, operations };
        body.check_shape()?;
        Ok(body)
    }
}

/// Why envelope bytes were refused before any state was consulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not a canonical envelope.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    /// Larger than [`ENVELOPE_SIZE_MAX`].
    #[error("transaction is {size} bytes, over the limit {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A format version this build does not know.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// Signed for another network.
    #[error("signed for network {found}, this network is {expected}")]
    WrongNetwork {
        /// This network's id, hex.
        expected: String,
        /// The envelope's network id, hex.
        found: String,
    },
}

/// A decoded, canonical, not yet verified transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The network it is signed for.
    pub network_id: Hash,
    /// The signer's public key.
    pub signer: PublicKey,
    /// What it does.
    pub body: Body,
    /// ed25519 signature over [`SIGNING_DOMAIN`] and the envelope bytes before it.
    pub signature: [u8; 64],
}

impl Transaction {
    /// Builds and signs a transaction.
    pub fn sign(network_id: Hash, key: &SigningKey, body: Body) -> Self {
        let mut transaction = Self {
            network_id,
            signer: key.verifying_key().to_bytes(),
            body,
            signature: [0; 64],
        };
        let unsigned = transaction.unsigned_bytes();
        transaction.signature = key.sign(&signing_message(&unsigned)).to_bytes();
        transaction
    }

    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut body = Writer::with_capacity(128);
        self.body.encode(&mut body);
        let body = body.finish();
        let mut writer = Writer::with_capacity(body.len() + 140);
        writer.u8(FORMAT_VERSION);
        writer.fixed(&self.network_id);
        writer.fixed(&self.signer);
        writer.bytes(&body);
        writer.finish()
    }

    /// The canonical envelope bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.unsigned_bytes();
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// Decodes envelope bytes, checking size, version, network and canonical form.
    pub fn from_bytes(bytes: &[u8], network_id: &Hash) -> Result<Self, EnvelopeError> {
        if bytes.len() > ENVELOPE_SIZE_MAX {
            return Err(EnvelopeError::TooLarge {
                size: bytes.len(),
                limit: ENVELOPE_SIZE_MAX,
            });
        }
        let mut reader = Reader::new(bytes);
        let version = reader.u8("envelope.version")?;
        if version != FORMAT_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        let found: Hash = reader.array("envelope.network_id")?;
        if &found != network_id {
            return Err(EnvelopeError::WrongNetwork {
                expected: hex::encode(network_id),
                found: hex::encode(found),
            });
        }
        let signer = reader.array("envelope.signer")?;
        let body_bytes = reader.bytes("envelope.body", ENVELOPE_SIZE_MAX)?;
        let signature = reader.array("envelope.signature")?;
        reader.finish()?;
        let mut body_reader = Reader::new(body_bytes);
        let body = Body::decode(&mut body_reader)?;
        body_reader.finish()?;
        let transaction = Self {
            network_id: found,
            signer,
            body,
            signature,
        };
        // Every field has one encoding, so this holds by construction; checked because
        // idempotency and the transaction id depend on it.
        assert_eq!(
            transaction.to_bytes(),
            bytes,
            "canonical re-encoding must reproduce the envelope"
        );
        Ok(transaction)
    }

    /// The message the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        signing_message(&self.unsigned_bytes())
    }
}

fn signing_message(unsigned: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_DOMAIN.len() + unsigned.len());
    message.extend_from_slice(SIGNING_DOMAIN);
    message.extend_from_slice(unsigned);
    message
}

/// The transaction id: blake3 of the envelope bytes.
pub fn transaction_id(envelope: &[u8]) -> Hash {
    *blake3::hash(envelope).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn transfer(id: u128) -> Operation {
        Operation::Transfer {
            id,
            debit_account: 1,
            credit_account: 2,
            asset: 1,
            amount: 100,
            kind: TransferKind::Pending { timeout_ms: 5000 },
            reference: 9,
        }
    }

    #[test]
    fn a_cycle_member_list_has_one_encoding_and_bounds() {
        // Proves members must be strictly ascending, at least two and at most
        // CYCLE_MEMBERS_MAX on the wire, so one cycle opening encodes one way only.
        let network = [7u8; 32];
        let open = |members: Vec<ParticipantId>| {
            Transaction::sign(
                network,
                &key(1),
                Body::single(Operation::OpenCycle {
                    cycle: 1,
                    asset: 1,
                    closes_at_ms: 5,
                    members,
                }),
            )
            .to_bytes()
        };
        let decodes =
            |members: Vec<ParticipantId>| Transaction::from_bytes(&open(members), &network).is_ok();
        assert!(decodes(vec![1, 3]));
        assert!(decodes(
            (1..=crate::limits::CYCLE_MEMBERS_MAX as u64).collect()
        ));
        assert!(!decodes(vec![3, 1]));
        assert!(!decodes(vec![3, 3]));
        assert!(!decodes(vec![3]));
        assert!(!decodes(Vec::new()));
        assert!(!decodes(
            (1..=crate::limits::CYCLE_MEMBERS_MAX as u64 + 1).collect()
        ));
    }

    #[test]
    fn envelope_round_trips_byte_for_byte() {
        // Proves decode-then-encode reproduces the bytes for single and linked bodies.
        let network = [7u8; 32];
        for body in [
            Body::single(transfer(1)),
            Body::linked(vec![transfer(1), transfer(2)]),
        ] {
            let transaction = Transaction::sign(network, &key(1), body);
            let bytes = transaction.to_bytes();
            let decoded = Transaction::from_bytes(&bytes, &network).unwrap();
            assert_eq!(decoded, transaction);
            assert_eq!(decoded.to_bytes(), bytes);
        }
    }

    #[test]
    fn non_canonical_and_foreign_envelopes_are_rejected() {
        // Proves that every deviation from the one canonical form is refused with a reason.
        let network = [7u8; 32];
        let bytes = Transaction::sign(network, &key(1), Body::single(transfer(1))).to_bytes();
        assert!(matches!(
            Transaction::from_bytes(&bytes, &[8u8; 32]),
            Err(EnvelopeError::WrongNetwork { .. })
        ));
        let mut versioned = bytes.clone();
        versioned[0] = 2;
        assert_eq!(
            Transaction::from_bytes(&versioned, &network),
            Err(EnvelopeError::UnsupportedVersion(2))
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Transaction::from_bytes(&trailing, &network),
            Err(EnvelopeError::Malformed(_))
        ));
        for cut in [0, 1, 40, 70, bytes.len() - 1] {
            assert!(
                Transaction::from_bytes(&bytes[..cut], &network).is_err(),
                "cut at {cut}"
            );
        }
        // A single operation marked as linked is not canonical.
        let linked_single = Transaction::sign(
            network,
            &key(1),
            Body {
                linked: true,
                operations: vec![transfer(1)],
            },
        );
        assert!(matches!(
            Transaction::from_bytes(&linked_single.to_bytes(), &network),
            Err(EnvelopeError::Malformed(_))
        ));
        let huge = vec![1u8; ENVELOPE_SIZE_MAX + 1];
        assert!(matches!(
            Transaction::from_bytes(&huge, &network),
            Err(EnvelopeError::TooLarge { .. })
        ));
    }
}
