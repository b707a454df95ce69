//! The checker's approval: another key of the signer posts its transfer that waits above the
//! account's maker-checker threshold.

use crate::approval;
use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::TransferId;
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// A checker (another key of the signer) approves the signer's transfer waiting for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveTransfer {
    /// The waiting transfer's id.
    #[serde(with = "crate::decimal")]
    pub id: TransferId,
}

impl LedgerOperation for ApproveTransfer {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("approve_transfer.id")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    /// The approval posts the signer's waiting transfer: its payee hears of it.
    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.signer_transfer(self.id)
    }
}

impl Rule for ApproveTransfer {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        approval::approve(overlay, context, self.id)
    }
}
