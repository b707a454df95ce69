//! Closing and settling a netting cycle now, by its opener or an operator; unfunded
//! obligations carry to another open cycle or are rejected.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::netting;
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Closes and settles a cycle now (its opener or an operator); unfunded obligations move
/// to `carry_to` (an open cycle of the same asset) or are rejected when it is 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseCycle {
    /// The cycle.
    #[serde(with = "crate::decimal")]
    pub cycle: u128,
    /// Where unfunded obligations go ("0": rejected).
    #[serde(default, with = "crate::decimal")]
    pub carry_to: u128,
}

impl LedgerOperation for CloseCycle {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.cycle);
        writer.u128(self.carry_to);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            cycle: reader.u128("close_cycle.cycle")?,
            carry_to: reader.u128("close_cycle.carry_to")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.cycle(self.cycle)
    }
}

impl Rule for CloseCycle {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        netting::close(overlay, context, self.cycle, self.carry_to)
    }
}
