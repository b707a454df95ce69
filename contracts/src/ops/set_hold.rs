//! A regulator's hold on an account: the frozen flag stops every debit and credit, and the
//! hold record says who placed it, why and when.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::model::{account_flags as flags, AccountId, HoldRecord, Role};
use crate::ops::interface::{LedgerOperation, Needs, Parties, PartyLookup, Rule};
use crate::overlay::Overlay;
use crate::result::ResultCode;
use serde::{Deserialize, Serialize};

/// Places (`frozen`) or lifts a regulator's hold on an account; regulators only. A held
/// account can be neither debited nor credited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetHold {
    /// The account.
    #[serde(with = "crate::decimal")]
    pub account: AccountId,
    /// Place (true) or lift (false) the hold.
    pub frozen: bool,
    /// The regulator's reason code (1..=65535 to place a hold; any value to lift one).
    pub reason: u16,
}

impl LedgerOperation for SetHold {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u128(self.account);
        writer.u8(u8::from(self.frozen));
        writer.u16(self.reason);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            account: reader.u128("set_hold.account")?,
            frozen: reader.bool("set_hold.frozen")?,
            reason: reader.u16("set_hold.reason")?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }

    fn needs(&self) -> Needs {
        Needs::RegulatorOnly
    }

    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        parties.account(self.account)
    }
}

impl Rule for SetHold {
    /// Placing a hold on a held account replaces the record (a new reason); lifting clears
    /// both the flag and the record.
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        if context.signer.role != Role::Regulator {
            return Ok(Outcome::Rejected(ResultCode::RegulatorOnly));
        }
        let Some(mut account) = overlay.account(self.account)? else {
            return Ok(Outcome::Rejected(ResultCode::UnknownAccount));
        };
        if self.frozen {
            if self.reason == 0 {
                return Ok(Outcome::Rejected(ResultCode::InvalidHoldReason));
            }
            account.flags |= flags::FROZEN;
            overlay.put_account(&account);
            let record = HoldRecord {
                account: self.account,
                reason: self.reason,
                regulator: context.signer.id,
                height: context.block.height,
                time_ms: context.block.time_ms,
            };
            overlay.put_hold(self.account, Some(&record));
        } else {
            if !account.has(flags::FROZEN) {
                return Ok(Outcome::Rejected(ResultCode::NotHeld));
            }
            account.flags &= !flags::FROZEN;
            overlay.put_account(&account);
            overlay.put_hold(self.account, None);
        }
        Ok(Outcome::Applied)
    }
}
