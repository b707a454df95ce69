//! The ledger's nouns: participants, assets, accounts and transfer records, with their encodings.

use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::{NAME_SIZE_MAX, PARTICIPANT_KEYS_MAX};
use serde::{Deserialize, Serialize};

/// Identifies a participant (a bank member, settlement partner, regulator or operator).
pub type ParticipantId = u64;
/// Identifies an asset (a ledger of one currency or security).
pub type AssetId = u32;
/// Identifies an account; chosen by whoever opens it, unique across the network.
pub type AccountId = u128;
/// A client-chosen transfer id, unique per submitting participant.
pub type TransferId = u128;
/// An ed25519 public key in its 32-byte encoding.
pub type PublicKey = [u8; 32];
/// A blake3 digest.
pub type Hash = [u8; 32];

/// How a transfer moves money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// Moves the amount at once.
    Posted,
    /// Reserves the amount until posted, voided, or `timeout_ms` of block time pass.
    Pending {
        /// Milliseconds of block time before the reservation expires.
        timeout_ms: u64,
    },
}

/// Whether a node votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// A bank's voting node.
    Voter,
    /// A regulator's observer: a Raft learner that never votes.
    Observer,
}

/// Parses 32 bytes of hex (a hashlock or its secret).
pub fn parse_hash32(text: &str) -> Result<[u8; 32], String> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("{text:?} is not 32 bytes of hex"))
}

/// What a participant may do on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A consortium bank: runs a voting node and sponsors settlement partners.
    BankMember,
    /// A company or payment firm that owns accounts and pays.
    SettlementPartner,
    /// Reads everything; never originates a payment.
    Regulator,
    /// Runs the network's parameters; owns no money.
    Operator,
}

impl Role {
    fn code(self) -> u8 {
        match self {
            Role::BankMember => 1,
            Role::SettlementPartner => 2,
            Role::Regulator => 3,
            Role::Operator => 4,
        }
    }
    fn from_code(code: u8) -> Result<Self, DecodeError> {
        Ok(match code {
            1 => Role::BankMember,
            2 => Role::SettlementPartner,
            3 => Role::Regulator,
            4 => Role::Operator,
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "role",
                    value: other.into(),
                })
            }
        })
    }
}

/// A registered participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Its id.
    pub id: ParticipantId,
    /// Human-readable name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The bank member that sponsors it (settlement partners only).
    pub bank: Option<ParticipantId>,
    /// Its registered signing keys.
    pub keys: Vec<PublicKey>,
}

impl Participant {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u64(self.id);
        writer.string(&self.name);
        writer.u8(self.role.code());
        match self.bank {
            None => writer.u8(0),
            Some(bank) => {
                writer.u8(1);
                writer.u64(bank);
            }
        }
        writer.u8(u8::try_from(self.keys.len()).expect("keys are bounded by PARTICIPANT_KEYS_MAX"));
        for key in &self.keys {
            writer.fixed(key);
        }
    }
    /// Reads a record written by [`Participant::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = reader.u64("participant.id")?;
        let name = reader.string("participant.name", NAME_SIZE_MAX)?;
        let role = Role::from_code(reader.u8("participant.role")?)?;
        let bank = if reader.bool("participant.bank")? {
            Some(reader.u64("participant.bank")?)
        } else {
            None
        };
        let count = reader.u8("participant.keys")? as usize;
        if count > PARTICIPANT_KEYS_MAX {
            return Err(DecodeError::TooLong {
                field: "participant.keys",
                length: count,
                limit: PARTICIPANT_KEYS_MAX,
            });
        }
        let mut keys = Vec::with_capacity(count);
        for _ in 0..count {
            keys.push(reader.array("participant.key")?);
        }
        Ok(Self {
            id,
            name,
            role,
            bank,
            keys,
        })
    }
}

/// An asset: one currency or security, counted in integer minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Its id.
    pub id: AssetId,
    /// Its code, such as "EUR".
    pub code: String,
    /// Digits after the decimal point: an amount of 1 minor unit is 10^-scale.
    pub scale: u8,
    /// The participant that issues it.
    pub issuer: ParticipantId,
    /// The issuer's account through which money enters (debit) and leaves (credit) the ledger.
    pub issuance_account: AccountId,
}

impl Asset {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u32(self.id);
        writer.string(&self.code);
        writer.u8(self.scale);
        writer.u64(self.issuer);
        writer.u128(self.issuance_account);
    }
    /// Reads a record written by [`Asset::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: reader.u32("asset.id")?,
            code: reader.string("asset.code", NAME_SIZE_MAX)?,
            scale: reader.u8("asset.scale")?,
            issuer: reader.u64("asset.issuer")?,
            issuance_account: reader.u128("asset.issuance_account")?,
        })
    }
}

/// Account flags; unknown bits are rejected.
pub mod account_flags {
    /// Debits (posted plus pending) must not exceed posted credits: no overdraft.
    pub const DEBITS_MUST_NOT_EXCEED_CREDITS: u16 = 1;
    /// Credits (posted plus pending) must not exceed posted debits.
    pub const CREDITS_MUST_NOT_EXCEED_DEBITS: u16 = 1 << 1;
    /// Frozen: no transfer may debit or credit it.
    pub const FROZEN: u16 = 1 << 2;
    /// An asset's issuance account, set by the genesis only: the one account with no outflow
    /// bound, moved only by the issuer's mint and burn.
    pub const ISSUANCE: u16 = 1 << 3;
    /// Every defined bit.
    pub const ALL: u16 =
        DEBITS_MUST_NOT_EXCEED_CREDITS | CREDITS_MUST_NOT_EXCEED_DEBITS | FROZEN | ISSUANCE;
}

/// An account of one participant in one asset, with its four running balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// Its owner.
    pub owner: ParticipantId,
    /// Its asset.
    pub asset: AssetId,
    /// [`account_flags`] bits.
    pub flags: u16,
    /// Sum of posted debits, in minor units.
    pub debits_posted: u128,
    /// Sum of posted credits, in minor units.
    pub credits_posted: u128,
    /// Sum of reserved (pending) debits, in minor units.
    pub debits_pending: u128,
    /// Sum of reserved (pending) credits, in minor units.
    pub credits_pending: u128,
    /// How far its debits may exceed its posted credits: a line granted by its owner's bank
    /// (or by governance); 0 for none.
    pub credit_line: u128,
}

impl Account {
    /// A new account with zero balances.
    pub fn new(id: AccountId, owner: ParticipantId, asset: AssetId, flags: u16) -> Self {
        Self {
            id,
            owner,
            asset,
            flags,
            debits_posted: 0,
            credits_posted: 0,
            debits_pending: 0,
            credits_pending: 0,
            credit_line: 0,
        }
    }
    /// Whether a flag bit is set.
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
    /// Whether debits (posted plus pending) of `debits_total` stay within the account's bound:
    /// its posted credits plus its credit line. Every account is bounded whatever its flags,
    /// except an asset's issuance account (which only mint and burn move).
    pub fn debits_within_bound(&self, debits_total: u128) -> bool {
        self.has(account_flags::ISSUANCE)
            || debits_total <= self.credits_posted.saturating_add(self.credit_line)
    }
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u128(self.id);
        writer.u64(self.owner);
        writer.u32(self.asset);
        writer.u16(self.flags);
        writer.u128(self.debits_posted);
        writer.u128(self.credits_posted);
        writer.u128(self.debits_pending);
        writer.u128(self.credits_pending);
        writer.u128(self.credit_line);
    }
    /// Reads a record written by [`Account::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = reader.u128("account.id")?;
        let owner = reader.u64("account.owner")?;
        let asset = reader.u32("account.asset")?;
        let flags = reader.u16("account.flags")?;
        if flags & !account_flags::ALL != 0 {
            return Err(DecodeError::InvalidValue {
                field: "account.flags",
                value: flags.into(),
            });
        }
        Ok(Self {
            id,
            owner,
            asset,
            flags,
            debits_posted: reader.u128("account.debits_posted")?,
            credits_posted: reader.u128("account.credits_posted")?,
            debits_pending: reader.u128("account.debits_pending")?,
            credits_pending: reader.u128("account.credits_pending")?,
            credit_line: reader.u128("account.credit_line")?,
        })
    }
}

/// A regulator's hold on an account: who placed it, why, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRecord {
    /// The held account.
    pub account: AccountId,
    /// The regulator's reason code (1..=65535).
    pub reason: u16,
    /// The regulator that placed it.
    pub regulator: ParticipantId,
    /// Height of the block that placed it.
    pub height: u64,
    /// That block's time.
    pub time_ms: u64,
}

impl HoldRecord {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u128(self.account);
        writer.u16(self.reason);
        writer.u64(self.regulator);
        writer.u64(self.height);
        writer.u64(self.time_ms);
    }
    /// Reads a record written by [`HoldRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            account: reader.u128("hold.account")?,
            reason: reader.u16("hold.reason")?,
            regulator: reader.u64("hold.regulator")?,
            height: reader.u64("hold.height")?,
            time_ms: reader.u64("hold.time_ms")?,
        })
    }
}

/// Where a recorded transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// Rejected; the record keeps the id so a retry gets the same outcome.
    Rejected,
    /// Posted at once, or the post/void of a pending transfer that succeeded.
    Posted,
    /// Funds reserved, waiting for post or void.
    Pending,
    /// A pending transfer that was later posted.
    PendingPosted,
    /// A pending transfer that was voided.
    PendingVoided,
    /// A pending transfer whose timeout passed.
    PendingExpired,
    /// A void operation that released a pending transfer.
    Voided,
}

impl TransferState {
    fn code(self) -> u8 {
        match self {
            TransferState::Rejected => 0,
            TransferState::Posted => 1,
            TransferState::Pending => 2,
            TransferState::PendingPosted => 3,
            TransferState::PendingVoided => 4,
            TransferState::PendingExpired => 5,
            TransferState::Voided => 6,
        }
    }
    fn from_code(code: u8) -> Result<Self, DecodeError> {
        Ok(match code {
            0 => TransferState::Rejected,
            1 => TransferState::Posted,
            2 => TransferState::Pending,
            3 => TransferState::PendingPosted,
            4 => TransferState::PendingVoided,
            5 => TransferState::PendingExpired,
            6 => TransferState::Voided,
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "transfer.state",
                    value: other.into(),
                })
            }
        })
    }
}

/// The ledger's record of one transfer id of one participant, kept for the ledger's lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    /// The submitting participant.
    pub owner: ParticipantId,
    /// The client-chosen id.
    pub id: TransferId,
    /// blake3 of the operation's canonical bytes: a retry must match it.
    pub body_hash: Hash,
    /// The transaction that carried it.
    pub tx_id: Hash,
    /// Block height at which it was decided.
    pub height: u64,
    /// Its outcome code (see [`crate::ResultCode`]).
    pub result: u16,
    /// Where it stands now.
    pub state: TransferState,
    /// Debited account (zero when rejected before the accounts were known).
    pub debit_account: AccountId,
    /// Credited account.
    pub credit_account: AccountId,
    /// Asset.
    pub asset: AssetId,
    /// Amount moved or reserved, in minor units.
    pub amount: u128,
    /// For pending transfers: the block time from which it is expired.
    pub expires_at_ms: u64,
    /// For post and void: the pending transfer's id.
    pub pending_id: TransferId,
}

impl TransferRecord {
    /// Canonical record encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u64(self.owner);
        writer.u128(self.id);
        writer.fixed(&self.body_hash);
        writer.fixed(&self.tx_id);
        writer.u64(self.height);
        writer.u16(self.result);
        writer.u8(self.state.code());
        writer.u128(self.debit_account);
        writer.u128(self.credit_account);
        writer.u32(self.asset);
        writer.u128(self.amount);
        writer.u64(self.expires_at_ms);
        writer.u128(self.pending_id);
    }
    /// Reads a record written by [`TransferRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            owner: reader.u64("transfer.owner")?,
            id: reader.u128("transfer.id")?,
            body_hash: reader.array("transfer.body_hash")?,
            tx_id: reader.array("transfer.tx_id")?,
            height: reader.u64("transfer.height")?,
            result: reader.u16("transfer.result")?,
            state: TransferState::from_code(reader.u8("transfer.state")?)?,
            debit_account: reader.u128("transfer.debit_account")?,
            credit_account: reader.u128("transfer.credit_account")?,
            asset: reader.u32("transfer.asset")?,
            amount: reader.u128("transfer.amount")?,
            expires_at_ms: reader.u64("transfer.expires_at_ms")?,
            pending_id: reader.u128("transfer.pending_id")?,
        })
    }
}

/// Encodes a record with the given encoder into a fresh vector.
pub fn to_bytes(encode: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut writer = Writer::with_capacity(160);
    encode(&mut writer);
    writer.finish()
}

/// Decodes a whole byte string with `decode`, rejecting trailing bytes.
pub fn from_bytes<T>(
    bytes: &[u8],
    decode: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut reader = Reader::new(bytes);
    let value = decode(&mut reader)?;
    reader.finish()?;
    Ok(value)
}
