//! Moving money back along a settled transfer: by its beneficiary, or by a regulator as a
//! reversal order (the contract is in `crate::reversal`).

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::{ParticipantId, TransferId};
use crate::ops::interface::{body_hash, LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::posting::RejectedTransfer;
use crate::reversal::{self, ReversalRequest};
use serde::{Deserialize, Serialize};

/// Moves `amount` back along a settled transfer (from its credit to its debit account);
/// signed by the original beneficiary, or by a regulator as a reversal order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reverse {
    /// This reversal's own transfer id.
    #[serde(with = "crate::decimal")]
    pub id: TransferId,
    /// Who submitted the original transfer.
    pub original_owner: ParticipantId,
    /// The original transfer's id.
    #[serde(with = "crate::decimal")]
    pub original_id: TransferId,
    /// Amount to move back (at most what remains of the original).
    #[serde(with = "crate::decimal")]
    pub amount: u128,
}

impl LedgerOperation for Reverse {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u64(self.original_owner);
        writer.u128(self.original_id);
        writer.u128(self.amount);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("reverse.id")?,
            original_owner: reader.u64("reverse.original_owner")?,
            original_id: reader.u128("reverse.original_id")?,
            amount: reader.u128("reverse.amount")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    fn transfer_id(&self) -> Option<TransferId> {
        Some(self.id)
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.transfer(self.original_owner, self.original_id)
    }
}

impl Rule for Reverse {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        let request = ReversalRequest {
            id: self.id,
            original_owner: self.original_owner,
            original_id: self.original_id,
            amount: self.amount,
            body_hash: body_hash(self),
        };
        reversal::reverse(overlay, context, &request)
    }

    fn rejected(&self) -> RejectedTransfer {
        RejectedTransfer {
            amount: self.amount,
            pending_id: self.original_id,
            ..RejectedTransfer::default()
        }
    }
}
