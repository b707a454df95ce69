//! Opening a multilateral netting cycle for one asset, with its members and its close time
//! (the contract is in `crate::netting`).

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::limits::CYCLE_MEMBERS_MAX;
use crate::model::{AssetId, ParticipantId};
use crate::netting;
use crate::ops::interface::{LedgerOperation, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use serde::{Deserialize, Serialize};

/// Opens a multilateral netting cycle for one asset (bank members and operators).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenCycle {
    /// The cycle id, unique on the network.
    #[serde(with = "crate::decimal")]
    pub cycle: u128,
    /// Its asset.
    pub asset: AssetId,
    /// Block time at which it closes and settles by itself.
    pub closes_at_ms: u64,
    /// The participants that may queue obligations in it and be paid through it
    /// (2..=1,024, strictly ascending).
    pub members: Vec<ParticipantId>,
}

/// Reads a cycle's member list: a u16 count (2..=[`CYCLE_MEMBERS_MAX`]) and that many
/// participant ids, strictly ascending.
fn decode_members(reader: &mut Reader<'_>) -> Result<Vec<ParticipantId>, DecodeError> {
    let count = reader.u16("open_cycle.member_count")? as usize;
    if count > CYCLE_MEMBERS_MAX {
        return Err(DecodeError::TooLong {
            field: "open_cycle.members",
            length: count,
            limit: CYCLE_MEMBERS_MAX,
        });
    }
    if count < 2 {
        return Err(DecodeError::InvalidValue {
            field: "open_cycle.member_count",
            value: count as u128,
        });
    }
    let mut members: Vec<ParticipantId> = Vec::with_capacity(count);
    for _ in 0..count {
        let member = reader.u64("open_cycle.member")?;
        if members.last().is_some_and(|last| *last >= member) {
            return Err(DecodeError::InvalidValue {
                field: "open_cycle.members",
                value: member.into(),
            });
        }
        members.push(member);
    }
    Ok(members)
}

impl LedgerOperation for OpenCycle {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.cycle);
        writer.u32(self.asset);
        writer.u64(self.closes_at_ms);
        writer.u16(u16::try_from(self.members.len()).unwrap_or(u16::MAX));
        for member in &self.members {
            writer.u64(*member);
        }
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            cycle: reader.u128("open_cycle.cycle")?,
            asset: reader.u32("open_cycle.asset")?,
            closes_at_ms: reader.u64("open_cycle.closes_at_ms")?,
            members: decode_members(reader)?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    /// A view may list the members in any order, each once.
    fn from_view(view: &Self::View) -> Result<Self, String> {
        let mut sorted = view.members.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != view.members.len() {
            return Err("members must not repeat".into());
        }
        if !(2..=CYCLE_MEMBERS_MAX).contains(&sorted.len()) {
            return Err(format!("a cycle has 2 to {CYCLE_MEMBERS_MAX} members"));
        }
        Ok(Self {
            members: sorted,
            ..view.clone()
        })
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.extend(self.members.iter().copied());
        parties.cycle(self.cycle)
    }
}

impl Rule for OpenCycle {
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        netting::open(
            overlay,
            context,
            self.cycle,
            self.asset,
            self.closes_at_ms,
            &self.members,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Operation;
    use crate::tx::{Body, Transaction};
    use ed25519_dalek::SigningKey;

    #[test]
    fn a_cycle_member_list_has_one_encoding_and_bounds() {
        // Proves members must be strictly ascending, at least two and at most
        // CYCLE_MEMBERS_MAX on the wire, so one cycle opening encodes one way only.
        let network = [7u8; 32];
        let key = SigningKey::from_bytes(&[1; 32]);
        let open = |members: Vec<ParticipantId>| {
            let operation = Operation::OpenCycle(OpenCycle {
                cycle: 1,
                asset: 1,
                closes_at_ms: 5,
                members,
            });
            let validity = crate::tx::Validity::new(1, 1_000);
            Transaction::sign(network, &key, validity, Body::single(operation)).to_bytes()
        };
        let decodes =
            |members: Vec<ParticipantId>| Transaction::from_bytes(&open(members), &network).is_ok();
        assert!(decodes(vec![1, 3]));
        assert!(decodes((1..=CYCLE_MEMBERS_MAX as u64).collect()));
        assert!(!decodes(vec![3, 1]));
        assert!(!decodes(vec![3, 3]));
        assert!(!decodes(vec![3]));
        assert!(!decodes(Vec::new()));
        assert!(!decodes((1..=CYCLE_MEMBERS_MAX as u64 + 1).collect()));
    }
}
