//! A bank member registers another signing key for a participant it sponsors (a checker key
//! for maker-checker, or a key to rotate to).

use crate::approval;
use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::{parse_hash32, ParticipantId, PublicKey};
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Registers another signing key for a participant; its bank member only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddKey {
    /// The participant.
    pub participant: ParticipantId,
    /// The new key.
    pub key: PublicKey,
}

/// JSON view of a key registration: the key in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddKeyJson {
    /// Participant.
    pub participant: ParticipantId,
    /// The key, hex.
    pub key: String,
}

impl LedgerOperation for AddKey {
    type View = AddKeyJson;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.participant);
        writer.fixed(&self.key);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            participant: reader.u64("add_key.participant")?,
            key: reader.array("add_key.key")?,
        })
    }

    fn to_view(&self) -> Self::View {
        AddKeyJson {
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

impl Rule for AddKey {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        approval::add_key(overlay, context, self.participant, self.key)
    }
}
