//! A bank member sets the daily outflow cap of a participant it sponsors, per asset.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::limits_rules;
use crate::model::{AssetId, ParticipantId};
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Sets a participant's daily outflow cap in an asset (0 removes it); its bank member only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetOutflowCap {
    /// The participant.
    pub participant: ParticipantId,
    /// The asset.
    pub asset: AssetId,
    /// Most it may send per UTC day of block time ("0" removes the cap).
    #[serde(with = "crate::decimal")]
    pub cap: u128,
}

impl LedgerOperation for SetOutflowCap {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.participant);
        writer.u32(self.asset);
        writer.u128(self.cap);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            participant: reader.u64("set_outflow_cap.participant")?,
            asset: reader.u32("set_outflow_cap.asset")?,
            cap: reader.u128("set_outflow_cap.cap")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.add(self.participant);
        Ok(())
    }
}

impl Rule for SetOutflowCap {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        limits_rules::set_outflow_cap(overlay, context, self.participant, self.asset, self.cap)
    }
}
