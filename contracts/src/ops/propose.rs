//! A bank member's proposal of a consortium change; its own approval counts at once (the
//! contract is in `crate::governance`).

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::governance::{self, GovernanceAction};
use crate::governance_view::GovernanceActionView;
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// A bank member proposes a consortium change; its own approval counts at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propose {
    /// The proposal's id, unique on the network.
    pub proposal: u64,
    /// Block time after which it can no longer be approved (at most 30 days ahead).
    pub expires_at_ms: u64,
    /// The change.
    pub action: GovernanceAction,
}

/// JSON view of a proposal: the change under `change`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposeJson {
    /// Proposal id, unique on the network.
    pub proposal: u64,
    /// Block time after which it can no longer be approved.
    pub expires_at_ms: u64,
    /// The change.
    #[serde(rename = "change")]
    pub action: GovernanceActionView,
}

impl LedgerOperation for Propose {
    type View = ProposeJson;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.proposal);
        writer.u64(self.expires_at_ms);
        self.action.encode(writer);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            proposal: reader.u64("propose.proposal")?,
            expires_at_ms: reader.u64("propose.expires_at_ms")?,
            action: GovernanceAction::decode(reader)?,
        })
    }

    fn to_view(&self) -> Self::View {
        ProposeJson {
            proposal: self.proposal,
            expires_at_ms: self.expires_at_ms,
            action: (&self.action).into(),
        }
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(Self {
            proposal: view.proposal,
            expires_at_ms: view.expires_at_ms,
            action: view.action.to_action()?,
        })
    }

    /// Every bank member hears of a proposal (they vote on it), and so does the participant
    /// the change names.
    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.bank_members()?;
        if let Some(participant) = self.action.participant() {
            parties.add(participant);
        }
        Ok(())
    }
}

impl Rule for Propose {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        governance::propose(
            overlay,
            context,
            self.proposal,
            self.expires_at_ms,
            &self.action,
        )
    }
}
