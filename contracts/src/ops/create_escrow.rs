//! Creating an escrow: the payer's amount is locked for the payee until the terms hold or the
//! timeout refunds it (the contract is in `crate::escrow`).

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::escrow::{self, EscrowRequest, EscrowTerms};
use crate::limits::ESCROW_APPROVERS_MAX;
use crate::model::{parse_hash32, AccountId, AssetId, ParticipantId, TransferId};
use crate::ops::interface::{body_hash, LedgerOperation, Needs, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::posting::RejectedTransfer;
use serde::{Deserialize, Serialize};

/// Locks `amount` from the payer's account for the payee until the terms hold (then anyone
/// entitled releases it) or `timeout_ms` of block time pass (then it returns to the payer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateEscrow {
    /// Client-chosen id, unique per signer (the payer).
    pub id: TransferId,
    /// The payer's account; the signer must own it.
    pub debit_account: AccountId,
    /// The payee's account.
    pub credit_account: AccountId,
    /// Asset of both accounts.
    pub asset: AssetId,
    /// Amount in minor units.
    pub amount: u128,
    /// Milliseconds of block time before the escrow is refunded.
    pub timeout_ms: u64,
    /// The release conditions.
    pub terms: EscrowTerms,
}

/// JSON view of an escrow creation: the terms are fields of the operation, hashes in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEscrowJson {
    /// Escrow (transfer) id.
    #[serde(with = "crate::decimal")]
    pub id: u128,
    /// The payer's account.
    #[serde(with = "crate::decimal")]
    pub debit_account: u128,
    /// The payee's account.
    #[serde(with = "crate::decimal")]
    pub credit_account: u128,
    /// Asset.
    pub asset: AssetId,
    /// Amount.
    #[serde(with = "crate::decimal")]
    pub amount: u128,
    /// Milliseconds of block time before the escrow is refunded.
    pub timeout_ms: u64,
    /// blake3 of the secret that releases it, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashlock: Option<String>,
    /// Block time from which release is allowed (0: none).
    #[serde(default)]
    pub release_after_ms: u64,
    /// Participants whose approvals count.
    #[serde(default)]
    pub approvers: Vec<ParticipantId>,
    /// Approvals needed.
    #[serde(default)]
    pub approvals_required: u8,
}

impl LedgerOperation for CreateEscrow {
    type View = CreateEscrowJson;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u128(self.debit_account);
        writer.u128(self.credit_account);
        writer.u32(self.asset);
        writer.u128(self.amount);
        writer.u64(self.timeout_ms);
        self.terms.encode(writer);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("create_escrow.id")?,
            debit_account: reader.u128("create_escrow.debit_account")?,
            credit_account: reader.u128("create_escrow.credit_account")?,
            asset: reader.u32("create_escrow.asset")?,
            amount: reader.u128("create_escrow.amount")?,
            timeout_ms: reader.u64("create_escrow.timeout_ms")?,
            terms: EscrowTerms::decode(reader)?,
        })
    }

    fn to_view(&self) -> Self::View {
        CreateEscrowJson {
            id: self.id,
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            asset: self.asset,
            amount: self.amount,
            timeout_ms: self.timeout_ms,
            hashlock: self.terms.hashlock.map(hex::encode),
            release_after_ms: self.terms.release_after_ms,
            approvers: self.terms.approvers.clone(),
            approvals_required: self.terms.approvals_required,
        }
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        let mut sorted = view.approvers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != view.approvers.len() {
            return Err("approvers must not repeat".into());
        }
        if sorted.len() > ESCROW_APPROVERS_MAX {
            return Err(format!("at most {ESCROW_APPROVERS_MAX} approvers"));
        }
        Ok(Self {
            id: view.id,
            debit_account: view.debit_account,
            credit_account: view.credit_account,
            asset: view.asset,
            amount: view.amount,
            timeout_ms: view.timeout_ms,
            terms: EscrowTerms {
                hashlock: view.hashlock.as_deref().map(parse_hash32).transpose()?,
                release_after_ms: view.release_after_ms,
                approvers: sorted,
                approvals_required: view.approvals_required,
            },
        })
    }

    fn transfer_id(&self) -> Option<TransferId> {
        Some(self.id)
    }

    fn needs(&self) -> Needs {
        Needs::OwnDebit(self.debit_account, self.asset)
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        // The named approvers must act on it, so they hear of it too.
        parties.extend(self.terms.approvers.iter().copied());
        parties.account(self.debit_account)?;
        parties.account(self.credit_account)
    }
}

impl Rule for CreateEscrow {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        let request = EscrowRequest {
            id: self.id,
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            asset: self.asset,
            amount: self.amount,
            timeout_ms: self.timeout_ms,
            terms: &self.terms,
            body_hash: body_hash(self),
        };
        escrow::create(overlay, context, &request)
    }

    fn rejected(&self) -> RejectedTransfer {
        RejectedTransfer {
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            asset: self.asset,
            amount: self.amount,
            pending_id: 0,
        }
    }
}
