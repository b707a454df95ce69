//! Voiding one of the signer's pending transfers: the reservation returns and nothing moves.
//! An escrow's reservation is the contract's, not the payer's to void.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::escrow;
use crate::model::TransferId;
use crate::ops::interface::{body_hash, LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::pending::settle_pending;
use crate::posting::RejectedTransfer;
use crate::result::ResultCode;
use serde::{Deserialize, Serialize};

/// Releases a pending transfer of the signer without moving money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidPending {
    /// This operation's own transfer id.
    #[serde(with = "crate::decimal")]
    pub id: TransferId,
    /// The pending transfer's id.
    #[serde(with = "crate::decimal")]
    pub pending_id: TransferId,
}

impl LedgerOperation for VoidPending {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u128(self.pending_id);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("void_pending.id")?,
            pending_id: reader.u128("void_pending.pending_id")?,
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
        parties.signer_transfer(self.pending_id)
    }
}

impl Rule for VoidPending {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        let owner = context.signer.id;
        if escrow::is_escrow(overlay, owner, self.pending_id)? {
            return Ok(Outcome::Rejected(ResultCode::EscrowLocked));
        }
        settle_pending(
            overlay,
            context,
            self.id,
            (owner, self.pending_id),
            None,
            body_hash(self),
        )
    }

    fn rejected(&self) -> RejectedTransfer {
        RejectedTransfer {
            pending_id: self.pending_id,
            ..RejectedTransfer::default()
        }
    }
}
