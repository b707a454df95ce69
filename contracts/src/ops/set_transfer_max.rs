//! The direct request to set an asset's per-transfer maximum, refused with
//! `governance_required`: an approved governance proposal sets network parameters.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::limits_rules;
use crate::model::AssetId;
use crate::ops::interface::{LedgerOperation, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Sets an asset's per-transfer maximum (0 removes it). Refused with
/// `governance_required`: an approved governance proposal sets network parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetTransferMax {
    /// The asset.
    pub asset: AssetId,
    /// Largest amount of one transfer ("0" removes the maximum).
    #[serde(with = "crate::decimal")]
    pub amount_max: u128,
}

impl LedgerOperation for SetTransferMax {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u32(self.asset);
        writer.u128(self.amount_max);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            asset: reader.u32("set_transfer_max.asset")?,
            amount_max: reader.u128("set_transfer_max.amount_max")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }
}

impl Rule for SetTransferMax {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        limits_rules::set_transfer_max(overlay, context, self.asset)
    }
}
