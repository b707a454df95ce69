//! Posting one of the signer's pending transfers: moving up to the reserved amount and
//! releasing the rest. A reservation held by a contract or waiting for a checker is not the
//! maker's to post.

use crate::approval;
use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::escrow;
use crate::exchange;
use crate::model::TransferId;
use crate::ops::interface::{body_hash, LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::pending::settle_pending;
use crate::posting::RejectedTransfer;
use crate::result::ResultCode;
use serde::{Deserialize, Serialize};

/// Completes a pending transfer of the signer, moving `amount` (at most the reserved amount).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostPending {
    /// This operation's own transfer id.
    #[serde(with = "crate::decimal")]
    pub id: TransferId,
    /// The pending transfer's id.
    #[serde(with = "crate::decimal")]
    pub pending_id: TransferId,
    /// Amount to move; the rest of the reservation is released.
    #[serde(with = "crate::decimal")]
    pub amount: u128,
}

impl LedgerOperation for PostPending {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u128(self.pending_id);
        writer.u128(self.amount);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("post_pending.id")?,
            pending_id: reader.u128("post_pending.pending_id")?,
            amount: reader.u128("post_pending.amount")?,
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

impl Rule for PostPending {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        let owner = context.signer.id;
        if escrow::is_escrow(overlay, owner, self.pending_id)? {
            return Ok(Outcome::Rejected(ResultCode::EscrowLocked));
        }
        // A transfer waiting for its checker may be cancelled (voided) by its maker, not posted.
        if approval::is_awaiting(overlay, owner, self.pending_id)? {
            return Ok(Outcome::Rejected(ResultCode::ApprovalRequired));
        }
        // An offer may be withdrawn (voided) but its leg settles only with the other one.
        if exchange::is_exchange(overlay, owner, self.pending_id)? {
            return Ok(Outcome::Rejected(ResultCode::ExchangeLegLocked));
        }
        settle_pending(
            overlay,
            context,
            self.id,
            (owner, self.pending_id),
            Some(self.amount),
            body_hash(self),
        )
    }

    fn rejected(&self) -> RejectedTransfer {
        RejectedTransfer {
            amount: self.amount,
            pending_id: self.pending_id,
            ..RejectedTransfer::default()
        }
    }
}
