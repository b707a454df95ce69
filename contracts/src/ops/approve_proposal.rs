//! A bank member's approval of an open proposal; the last approval needed executes the change.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::governance;
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// A bank member approves an open proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveProposal {
    /// The proposal's id.
    pub proposal: u64,
}

impl LedgerOperation for ApproveProposal {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.proposal);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            proposal: reader.u64("approve_proposal.proposal")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    /// Every bank member hears of an approval (they vote), and so does the participant the
    /// proposed change names.
    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.bank_members()?;
        let action = parties.lookup().proposal_action(self.proposal)?;
        if let Some(participant) = action.and_then(|action| action.participant()) {
            parties.add(participant);
        }
        Ok(())
    }
}

impl Rule for ApproveProposal {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        governance::approve(overlay, context, self.proposal)
    }
}
