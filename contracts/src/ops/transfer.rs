//! A posted or pending transfer between two accounts of one asset, debiting an account of the
//! signer: the operation most traffic is made of.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::{AccountId, AssetId, TransferId, TransferKind};
use crate::ops::interface::{body_hash, LedgerOperation, Needs, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::posting::{transfer, RejectedTransfer, TransferRequest};
use serde::{Deserialize, Serialize};

/// Moves or reserves money from the debit to the credit account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Client-chosen id, unique per signer.
    pub id: TransferId,
    /// Account debited; the signer must own it.
    pub debit_account: AccountId,
    /// Account credited.
    pub credit_account: AccountId,
    /// Asset of both accounts.
    pub asset: AssetId,
    /// Amount in minor units.
    pub amount: u128,
    /// Posted or pending.
    pub kind: TransferKind,
    /// Free client reference, such as an invoice number.
    pub reference: u128,
}

impl Transfer {
    /// A posted transfer with no client reference.
    pub fn posted(
        id: TransferId,
        debit_account: AccountId,
        credit_account: AccountId,
        asset: AssetId,
        amount: u128,
    ) -> Self {
        Self {
            id,
            debit_account,
            credit_account,
            asset,
            amount,
            kind: TransferKind::Posted,
            reference: 0,
        }
    }
}

/// JSON view of a transfer: a pending one names its timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferJson {
    /// Transfer id.
    #[serde(with = "crate::decimal")]
    pub id: u128,
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
    /// Pending timeout; absent for a posted transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_timeout_ms: Option<u64>,
    /// Client reference.
    #[serde(default, with = "crate::decimal")]
    pub reference: u128,
}

impl LedgerOperation for Transfer {
    type View = TransferJson;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u128(self.debit_account);
        writer.u128(self.credit_account);
        writer.u32(self.asset);
        writer.u128(self.amount);
        match self.kind {
            TransferKind::Posted => writer.u8(0),
            TransferKind::Pending { timeout_ms } => {
                writer.u8(1);
                writer.u64(timeout_ms);
            }
        }
        writer.u128(self.reference);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
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
        })
    }

    fn to_view(&self) -> Self::View {
        TransferJson {
            id: self.id,
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            asset: self.asset,
            amount: self.amount,
            pending_timeout_ms: match self.kind {
                TransferKind::Posted => None,
                TransferKind::Pending { timeout_ms } => Some(timeout_ms),
            },
            reference: self.reference,
        }
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(Self {
            id: view.id,
            debit_account: view.debit_account,
            credit_account: view.credit_account,
            asset: view.asset,
            amount: view.amount,
            kind: match view.pending_timeout_ms {
                None => TransferKind::Posted,
                Some(timeout_ms) => TransferKind::Pending { timeout_ms },
            },
            reference: view.reference,
        })
    }

    fn transfer_id(&self) -> Option<TransferId> {
        Some(self.id)
    }

    fn needs(&self) -> Needs {
        Needs::OwnDebit(self.debit_account, self.asset)
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.account(self.debit_account)?;
        parties.account(self.credit_account)
    }
}

impl Rule for Transfer {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        let request = TransferRequest {
            id: self.id,
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            asset: self.asset,
            amount: self.amount,
            kind: self.kind,
            body_hash: body_hash(self),
            checked: true,
            issuance: false,
        };
        transfer(overlay, context, &request)
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
