//! What every ledger operation provides, so that one module per operation holds its fields,
//! encoding, JSON view, rule and event parties, and the registry (`crate::ops`) only lists them.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::governance::GovernanceAction;
use crate::model::{AccountId, AssetId, Hash, ParticipantId, TransferId};
use crate::overlay::Overlay;
use crate::posting::RejectedTransfer;
use crate::result::ResultCode;

/// An operation's canonical fields, JSON view, and what admission and the event stream read of
/// it. Its tag and JSON type name come from its line in the registry.
pub trait LedgerOperation: Sized {
    /// Its JSON view: the operation itself when the JSON has the same fields.
    type View;
    /// Writes the fields that follow the tag, in their canonical order.
    fn encode_fields(&self, writer: &mut Writer);
    /// Reads fields written by [`LedgerOperation::encode_fields`], refusing non-canonical ones.
    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Its JSON view.
    fn to_view(&self) -> Self::View;
    /// The operation a JSON view describes, or what is wrong with it.
    fn from_view(view: &Self::View) -> Result<Self, String>;
    /// The transfer id it records, for operations that record one (unique per signer).
    fn transfer_id(&self) -> Option<TransferId> {
        None
    }
    /// What admission checks of it before ordering.
    fn needs(&self) -> Needs {
        Needs::Nothing
    }
    /// Adds the participants its settled event concerns (the signer is already in).
    fn parties<L: PartyLookup>(&self, parties: &mut Parties<'_, L>) -> Result<(), L::Error> {
        let _ = parties;
        Ok(())
    }
}

/// The operation's rule: checked against the state in a fixed order, answering stable codes.
pub(crate) trait Rule: LedgerOperation {
    /// Checks the rules in their fixed order and, when they hold, writes the effects.
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError>;
    /// What the rejected transfer record names; read only for operations with a transfer id.
    fn rejected(&self) -> RejectedTransfer {
        RejectedTransfer::default()
    }
    /// Its code in a retried linked batch, for an operation without a transfer id:
    /// `batch_code` (the batch's outcome) unless the state says otherwise.
    fn retried_code(
        &self,
        overlay: &Overlay<'_>,
        batch_code: ResultCode,
    ) -> Result<ResultCode, ApplyError> {
        let _ = overlay;
        Ok(batch_code)
    }
}

/// The tag the registry gave an operation type.
pub(crate) trait Registered: LedgerOperation {
    /// The operation's tag byte on the wire.
    const TAG: u8;
}

/// blake3 of an operation's canonical bytes (tag and fields): what idempotent retries compare.
pub(crate) fn body_hash<T: Registered>(operation: &T) -> Hash {
    let mut writer = Writer::with_capacity(128);
    writer.u8(T::TAG);
    operation.encode_fields(&mut writer);
    *blake3::hash(&writer.finish()).as_bytes()
}

/// What admission needs to know of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Opens an account (`account`, `owner`, `asset`).
    Opens(AccountId, ParticipantId, AssetId),
    /// Debits an account the signer must own, in this asset.
    OwnDebit(AccountId, AssetId),
    /// Only a regulator may sign it.
    RegulatorOnly,
    /// Nothing admission can decide.
    Nothing,
}

/// The ledger reads that name an event's parties; the node answers them from its store.
pub trait PartyLookup {
    /// Why a read failed.
    type Error;
    /// An account's owner, if the account exists.
    fn account_owner(&self, account: AccountId) -> Result<Option<ParticipantId>, Self::Error>;
    /// A transfer's debit and credit accounts, if it exists.
    fn transfer_accounts(
        &self,
        owner: ParticipantId,
        id: TransferId,
    ) -> Result<Option<(AccountId, AccountId)>, Self::Error>;
    /// A netting cycle's opener and members, if it exists.
    fn cycle_parties(&self, cycle: u128) -> Result<Vec<ParticipantId>, Self::Error>;
    /// Every bank member (they vote on proposals).
    fn bank_members(&self) -> Result<Vec<ParticipantId>, Self::Error>;
    /// The change a proposal names, if it exists.
    fn proposal_action(&self, proposal: u64) -> Result<Option<GovernanceAction>, Self::Error>;
}

/// Collects the participants an event concerns.
pub struct Parties<'a, L: PartyLookup> {
    lookup: &'a L,
    signer: Option<ParticipantId>,
    found: Vec<ParticipantId>,
}

impl<'a, L: PartyLookup> Parties<'a, L> {
    /// Starts with the signer, when the event has one.
    pub fn new(lookup: &'a L, signer: Option<ParticipantId>) -> Self {
        Self {
            lookup,
            signer,
            found: signer.into_iter().collect(),
        }
    }
    /// The store the parties are read from.
    pub fn lookup(&self) -> &L {
        self.lookup
    }
    /// Adds one participant.
    pub fn add(&mut self, participant: ParticipantId) {
        self.found.push(participant);
    }
    /// Adds several participants.
    pub fn extend(&mut self, participants: impl IntoIterator<Item = ParticipantId>) {
        self.found.extend(participants);
    }
    /// Adds an account's owner.
    pub fn account(&mut self, account: AccountId) -> Result<(), L::Error> {
        if let Some(owner) = self.lookup.account_owner(account)? {
            self.found.push(owner);
        }
        Ok(())
    }
    /// Adds a transfer's owner and the owners of its two accounts.
    pub fn transfer(&mut self, owner: ParticipantId, id: TransferId) -> Result<(), L::Error> {
        self.found.push(owner);
        if let Some((debit_account, credit_account)) = self.lookup.transfer_accounts(owner, id)? {
            self.account(debit_account)?;
            self.account(credit_account)?;
        }
        Ok(())
    }
    /// Adds the parties of one of the signer's own transfers: its accounts name the
    /// counterparty.
    pub fn signer_transfer(&mut self, id: TransferId) -> Result<(), L::Error> {
        match self.signer {
            Some(owner) => self.transfer(owner, id),
            None => Ok(()),
        }
    }
    /// Adds a netting cycle's opener and members.
    pub fn cycle(&mut self, cycle: u128) -> Result<(), L::Error> {
        let parties = self.lookup.cycle_parties(cycle)?;
        self.found.extend(parties);
        Ok(())
    }
    /// Adds every bank member.
    pub fn bank_members(&mut self) -> Result<(), L::Error> {
        let members = self.lookup.bank_members()?;
        self.found.extend(members);
        Ok(())
    }
    /// The participants, ascending and each once.
    pub fn finish(mut self) -> Vec<ParticipantId> {
        self.found.sort_unstable();
        self.found.dedup();
        self.found
    }
}
