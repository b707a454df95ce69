//! Revoking one of a participant's keys at once, by the participant itself or its bank member
//! (a consortium-wide revocation is a governance change instead).

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::governance;
use crate::model::{parse_hash32, ParticipantId, PublicKey};
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Revokes one of a participant's keys at once; signed by the participant (with another
/// key, or the key itself) or its bank member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeKey {
    /// The participant.
    pub participant: ParticipantId,
    /// The key.
    pub key: PublicKey,
}

/// JSON view of a key revocation: the key in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeKeyJson {
    /// Participant.
    pub participant: ParticipantId,
    /// The key, hex.
    pub key: String,
}

impl LedgerOperation for RevokeKey {
    type View = RevokeKeyJson;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.participant);
        writer.fixed(&self.key);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            participant: reader.u64("revoke_key.participant")?,
            key: reader.array("revoke_key.key")?,
        })
    }

    fn to_view(&self) -> Self::View {
        RevokeKeyJson {
            participant: self.participant,
            key: hex::encode(self.key),
        }
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(Self {
            participant: view.participant,
            key: parse_hash32(&view.key)?,
        })
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.add(self.participant);
        Ok(())
    }
}

impl Rule for RevokeKey {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        governance::revoke_key(overlay, context, self.participant, &self.key)
    }
}
