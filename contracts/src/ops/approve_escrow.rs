//! An approver's approval of an escrow: one of the M of N approvals its terms may ask for.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::escrow;
use crate::model::{ParticipantId, TransferId};
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Records the signer's approval of an escrow; the signer must be one of its approvers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveEscrow {
    /// The escrow's payer.
    pub owner: ParticipantId,
    /// The escrow's id.
    #[serde(with = "crate::decimal")]
    pub escrow_id: TransferId,
}

impl LedgerOperation for ApproveEscrow {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.owner);
        writer.u128(self.escrow_id);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            owner: reader.u64("approve_escrow.owner")?,
            escrow_id: reader.u128("approve_escrow.escrow_id")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.transfer(self.owner, self.escrow_id)
    }
}

impl Rule for ApproveEscrow {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        escrow::approve(overlay, context, self.owner, self.escrow_id)
    }
}
