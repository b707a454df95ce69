//! Accepting an exchange offer: the counterparty's leg and the offered leg settle together or
//! not at all.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::exchange;
use crate::model::{ParticipantId, TransferId};
use crate::ops::interface::{body_hash, LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::posting::RejectedTransfer;
use serde::{Deserialize, Serialize};

/// Accepts an exchange offer: the signer's (counterparty's) leg and the offered leg settle
/// together or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptExchange {
    /// The signer's transfer id for its leg.
    #[serde(with = "crate::decimal")]
    pub id: TransferId,
    /// The offerer.
    pub owner: ParticipantId,
    /// The offer's id.
    #[serde(with = "crate::decimal")]
    pub exchange_id: TransferId,
}

impl LedgerOperation for AcceptExchange {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u64(self.owner);
        writer.u128(self.exchange_id);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("accept_exchange.id")?,
            owner: reader.u64("accept_exchange.owner")?,
            exchange_id: reader.u128("accept_exchange.exchange_id")?,
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
        parties.transfer(self.owner, self.exchange_id)
    }
}

impl Rule for AcceptExchange {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        exchange::accept(
            overlay,
            context,
            self.id,
            (self.owner, self.exchange_id),
            body_hash(self),
        )
    }

    fn rejected(&self) -> RejectedTransfer {
        RejectedTransfer {
            pending_id: self.exchange_id,
            ..RejectedTransfer::default()
        }
    }
}
