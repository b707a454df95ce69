//! Releasing an escrow to its payee once its terms hold; signed by the payer, the payee or an
//! approver.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::escrow::{self, ReleaseRequest};
use crate::model::{parse_hash32, ParticipantId, TransferId};
use crate::ops::interface::{body_hash, LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::posting::RejectedTransfer;
use serde::{Deserialize, Serialize};

/// Releases an escrow to the payee once its terms hold; signed by the payer, the payee or
/// an approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEscrow {
    /// This operation's own transfer id.
    pub id: TransferId,
    /// The escrow's payer.
    pub owner: ParticipantId,
    /// The escrow's id.
    pub escrow_id: TransferId,
    /// The secret whose blake3 is the hashlock, if the escrow has one.
    pub preimage: Option<[u8; 32]>,
}

/// JSON view of an escrow release: the secret in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseEscrowJson {
    /// This operation's transfer id.
    #[serde(with = "crate::decimal")]
    pub id: u128,
    /// The escrow's payer.
    pub owner: ParticipantId,
    /// The escrow's id.
    #[serde(with = "crate::decimal")]
    pub escrow_id: u128,
    /// The hashlock's secret, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preimage: Option<String>,
}

impl LedgerOperation for ReleaseEscrow {
    type View = ReleaseEscrowJson;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u64(self.owner);
        writer.u128(self.escrow_id);
        match &self.preimage {
            None => writer.u8(0),
            Some(secret) => {
                writer.u8(1);
                writer.fixed(secret);
            }
        }
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u128("release_escrow.id")?,
            owner: reader.u64("release_escrow.owner")?,
            escrow_id: reader.u128("release_escrow.escrow_id")?,
            preimage: if reader.bool("release_escrow.has_preimage")? {
                Some(reader.array("release_escrow.preimage")?)
            } else {
                None
            },
        })
    }

    fn to_view(&self) -> Self::View {
        ReleaseEscrowJson {
            id: self.id,
            owner: self.owner,
            escrow_id: self.escrow_id,
            preimage: self.preimage.map(hex::encode),
        }
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(Self {
            id: view.id,
            owner: view.owner,
            escrow_id: view.escrow_id,
            preimage: view.preimage.as_deref().map(parse_hash32).transpose()?,
        })
    }

    fn transfer_id(&self) -> Option<TransferId> {
        Some(self.id)
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.transfer(self.owner, self.escrow_id)
    }
}

impl Rule for ReleaseEscrow {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        let request = ReleaseRequest {
            id: self.id,
            owner: self.owner,
            escrow_id: self.escrow_id,
            preimage: self.preimage,
            body_hash: body_hash(self),
        };
        escrow::release(overlay, context, &request)
    }

    fn rejected(&self) -> RejectedTransfer {
        RejectedTransfer {
            pending_id: self.escrow_id,
            ..RejectedTransfer::default()
        }
    }
}
