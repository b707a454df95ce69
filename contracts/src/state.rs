//! Ledger state as ordered key-value records, the store trait apply reads through, and the
//! state commitment.
//!
//! Keys are byte strings whose order is the order of their fields (big-endian integers), so an
//! ordered store iterates them deterministically. The node keeps these records in RocksDB;
//! tests and the simulator use [`MemStore`].
//!
//! The state root is blake3 of a lattice homomorphic hash (LtHash, 1024 lanes of u16) over
//! every record (key and value). Adding or removing a record is one hash and one lane-wise
//! add, so a block costs time proportional to the records it changes, and a node that receives
//! a snapshot can recompute the root from the records alone.

use crate::codec::{DecodeError, Reader, Writer};
use crate::model::{AccountId, AssetId, Hash, ParticipantId, PublicKey, TransferId};
use std::collections::BTreeMap;

/// A fatal storage failure while reading state: the node must stop rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state store failure: {0}")]
pub struct StoreError(pub String);

/// Records as (key, value) pairs in key order.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Read access to the committed ledger state.
pub trait StateStore {
    /// The value of `key`, if present.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` records with `start <= key < end`, in key order.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Records, StoreError>;
}

/// Record changes of one block: `None` deletes. Ordered, so applying it is deterministic.
pub type StateDiff = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Key prefixes: one byte per record kind.
pub mod prefix {
    /// Participant by id.
    pub const PARTICIPANT: u8 = b'P';
    /// Participant id by public key.
    pub const KEY: u8 = b'K';
    /// Asset by id.
    pub const ASSET: u8 = b'S';
    /// Account by id.
    pub const ACCOUNT: u8 = b'A';
    /// A transfer's record by (owner, id).
    pub const TRANSFER: u8 = b'T';
    /// Pending expiry index by (expires_at_ms, owner, id).
    pub const EXPIRY: u8 = b'E';
    /// A regulator's hold on an account, by account id.
    pub const HOLD: u8 = b'H';
    /// An escrow's terms and approvals, by (payer, escrow id).
    pub const ESCROW: u8 = b'W';
    /// An exchange offer's counter leg, by (offerer, exchange id).
    pub const EXCHANGE: u8 = b'X';
    /// A netting cycle, by cycle id.
    pub const CYCLE: u8 = b'N';
    /// A queued obligation, by (cycle id, sequence).
    pub const QUEUE: u8 = b'Q';
    /// An obligation's pointer, by (debtor, obligation id).
    pub const OBLIGATION: u8 = b'O';
    /// A cycle's close-time index, by (closes_at_ms, cycle id).
    pub const CYCLE_DUE: u8 = b'D';
    /// The reversals of a settled transfer, by (owner, transfer id).
    pub const REVERSAL: u8 = b'R';
    /// An asset's per-transfer maximum, by asset id.
    pub const TRANSFER_MAX: u8 = b'M';
    /// A participant's daily outflow cap in an asset, by (participant, asset).
    pub const OUTFLOW_CAP: u8 = b'L';
    /// An account's maker-checker threshold, by account id.
    pub const APPROVAL_POLICY: u8 = b'Y';
    /// A transfer waiting for its checker (the maker's key), by (owner, transfer id).
    pub const AWAITING_APPROVAL: u8 = b'Z';
    /// A participant's webhook endpoint: participant u64 | endpoint u16 -> URL (UTF-8).
    pub const WEBHOOK: u8 = b'V';
    /// A netting cycle's member: cycle u128 | participant u64 -> empty.
    pub const CYCLE_MEMBER: u8 = b'G';
    /// A bilateral credit limit: creditor u64 | debtor u64 | asset u32 -> limit u128.
    pub const CREDIT_LIMIT: u8 = b'C';
    /// A bilateral position in an open cycle: cycle u128 | lower participant u64 | higher
    /// participant u64 -> i128 net owed by the lower to the higher.
    pub const BILATERAL: u8 = b'B';
    /// A member of the node set, active or removed, by node id (governance).
    pub const NODE: u8 = b'I';
    /// A governance proposal, by proposal id.
    pub const PROPOSAL: u8 = b'F';
    /// An active bank member (the governance electorate): participant u64 -> empty.
    pub const MEMBER: u8 = b'U';
    /// An offboarded participant: participant u64 -> height (u64 LE).
    pub const OFFBOARDED: u8 = b'J';
    /// Governance settings: `g` `m` -> the approvals a proposal needs (u8).
    pub const GOVERNANCE: u8 = b'g';
    /// Every key ever registered: public key [32] -> participant u64 LE. Never deleted, so a
    /// past transaction's signer is known after its key was rotated out or revoked, and a key
    /// is never registered twice.
    pub const KEY_OWNER: u8 = b'k';
    /// An applied envelope within its validity window: valid_until_ms u64 (big-endian) |
    /// transaction id [32] -> empty. Removed once the block time passes valid_until_ms.
    pub const REPLAY: u8 = b'r';
    /// An asset's supply: asset u32 -> cap u128, outstanding u128.
    pub const SUPPLY: u8 = b's';
    /// The most a bank may grant one partner's account as a credit line: participant u64 |
    /// asset u32 -> cap u128 (set by governance).
    pub const CREDIT_LINE_CAP: u8 = b'c';
}

/// Key of the never-deleted key-owner record.
pub fn key_owner_key(public_key: &PublicKey) -> Vec<u8> {
    let mut key = vec![prefix::KEY_OWNER];
    key.extend_from_slice(public_key);
    key
}

/// The signer index record (`K` key): the participant a key belongs to and, for a key rotated
/// out, the block time from which it no longer signs. Encoded as participant u64, then the
/// retirement time u64 only when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignerRecord {
    /// The key's participant.
    pub participant: ParticipantId,
    /// Block time from which the key is refused (after a rotation's overlap window).
    pub retire_at_ms: Option<u64>,
}

impl SignerRecord {
    /// Canonical encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u64(self.participant);
        if let Some(at) = self.retire_at_ms {
            writer.u64(at);
        }
    }
    /// Reads a record written by [`SignerRecord::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let participant = reader.u64("signer.participant")?;
        let retire_at_ms = if reader.remaining() > 0 {
            Some(reader.u64("signer.retire_at_ms")?)
        } else {
            None
        };
        Ok(Self {
            participant,
            retire_at_ms,
        })
    }
    /// Whether the key still signs at block time `now_ms`.
    pub fn signs_at(&self, now_ms: u64) -> bool {
        self.retire_at_ms.is_none_or(|at| now_ms < at)
    }
}

/// Key of a participant record.
pub fn participant_key(id: ParticipantId) -> Vec<u8> {
    let mut key = vec![prefix::PARTICIPANT];
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Key of the public-key index record.
pub fn signer_key(public_key: &PublicKey) -> Vec<u8> {
    let mut key = vec![prefix::KEY];
    key.extend_from_slice(public_key);
    key
}

/// Key of an asset record.
pub fn asset_key(id: AssetId) -> Vec<u8> {
    let mut key = vec![prefix::ASSET];
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Key of an account record.
pub fn account_key(id: AccountId) -> Vec<u8> {
    let mut key = vec![prefix::ACCOUNT];
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Key of an escrow record.
pub fn escrow_key(owner: ParticipantId, id: TransferId) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix::ESCROW);
    key.extend_from_slice(&owner.to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Key of an exchange record.
pub fn exchange_key(owner: ParticipantId, id: TransferId) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix::EXCHANGE);
    key.extend_from_slice(&owner.to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Key of a hold record.
pub fn hold_key(account: AccountId) -> Vec<u8> {
    let mut key = vec![prefix::HOLD];
    key.extend_from_slice(&account.to_be_bytes());
    key
}

/// Key of a transfer record.
pub fn transfer_key(owner: ParticipantId, id: TransferId) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix::TRANSFER);
    key.extend_from_slice(&owner.to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Key of a pending-expiry index entry.
pub fn expiry_key(expires_at_ms: u64, owner: ParticipantId, id: TransferId) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(prefix::EXPIRY);
    key.extend_from_slice(&expires_at_ms.to_be_bytes());
    key.extend_from_slice(&owner.to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Splits an expiry key into (expires_at_ms, owner, id).
pub fn parse_expiry_key(key: &[u8]) -> Option<(u64, ParticipantId, TransferId)> {
    if key.len() != 33 || key[0] != prefix::EXPIRY {
        return None;
    }
    let at = u64::from_be_bytes(key[1..9].try_into().ok()?);
    let owner = u64::from_be_bytes(key[9..17].try_into().ok()?);
    let id = u128::from_be_bytes(key[17..33].try_into().ok()?);
    Some((at, owner, id))
}

/// Key of an applied envelope's replay record, ordered by the end of its validity window.
pub fn replay_key(valid_until_ms: u64, tx_id: &Hash) -> Vec<u8> {
    let mut key = Vec::with_capacity(41);
    key.push(prefix::REPLAY);
    key.extend_from_slice(&valid_until_ms.to_be_bytes());
    key.extend_from_slice(tx_id);
    key
}

/// Number of 16-bit lanes of the state commitment.
pub const COMMITMENT_LANES: usize = 1024;

/// The homomorphic multiset hash of every (key, value) record in the state.
#[derive(Clone, PartialEq, Eq)]
pub struct Commitment {
    lanes: Box<[u16; COMMITMENT_LANES]>,
}

impl std::fmt::Debug for Commitment {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Commitment({})", hex::encode(self.root()))
    }
}

impl Default for Commitment {
    fn default() -> Self {
        Self {
            lanes: Box::new([0; COMMITMENT_LANES]),
        }
    }
}

impl Commitment {
    fn record_lanes(key: &[u8], value: &[u8]) -> [u16; COMMITMENT_LANES] {
        let mut hasher = blake3::Hasher::new_derive_key("tpwalletoec state record lthash v1");
        hasher.update(&(key.len() as u64).to_le_bytes());
        hasher.update(key);
        hasher.update(value);
        let mut bytes = [0u8; COMMITMENT_LANES * 2];
        hasher.finalize_xof().fill(&mut bytes);
        let mut lanes = [0u16; COMMITMENT_LANES];
        for (lane, pair) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([pair[0], pair[1]]);
        }
        lanes
    }
    /// Adds a record.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        let lanes = Self::record_lanes(key, value);
        for (total, lane) in self.lanes.iter_mut().zip(lanes.iter()) {
            *total = total.wrapping_add(*lane);
        }
    }
    /// Removes a record that was added before.
    pub fn remove(&mut self, key: &[u8], value: &[u8]) {
        let lanes = Self::record_lanes(key, value);
        for (total, lane) in self.lanes.iter_mut().zip(lanes.iter()) {
            *total = total.wrapping_sub(*lane);
        }
    }
    /// The 32-byte state root.
    pub fn root(&self) -> Hash {
        let mut hasher = blake3::Hasher::new_derive_key("tpwalletoec state root v1");
        for lane in self.lanes.iter() {
            hasher.update(&lane.to_le_bytes());
        }
        *hasher.finalize().as_bytes()
    }
    /// Canonical encoding: the lanes, little-endian.
    pub fn encode(&self, writer: &mut Writer) {
        for lane in self.lanes.iter() {
            writer.u16(*lane);
        }
    }
    /// Reads a commitment written by [`Commitment::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut commitment = Self::default();
        for lane in commitment.lanes.iter_mut() {
            *lane = reader.u16("commitment.lane")?;
        }
        Ok(commitment)
    }
    /// Recomputes a commitment from every record, as a node receiving a snapshot does.
    pub fn of_records<'a>(records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut commitment = Self::default();
        for (key, value) in records {
            commitment.insert(key, value);
        }
        commitment
    }
}

/// Where the chain stands after the last applied block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Network id.
    pub network_id: Hash,
    /// Height of the last applied block.
    pub height: u64,
    /// Its header hash.
    pub hash: Hash,
    /// Its effective time.
    pub time_ms: u64,
    /// The state commitment after it.
    pub commitment: Commitment,
}

impl ChainHead {
    /// Canonical encoding.
    pub fn encode(&self, writer: &mut Writer) {
        writer.fixed(&self.network_id);
        writer.u64(self.height);
        writer.fixed(&self.hash);
        writer.u64(self.time_ms);
        self.commitment.encode(writer);
    }
    /// Reads a head written by [`ChainHead::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            network_id: reader.array("head.network_id")?,
            height: reader.u64("head.height")?,
            hash: reader.array("head.hash")?,
            time_ms: reader.u64("head.time_ms")?,
            commitment: Commitment::decode(reader)?,
        })
    }
}

/// An in-memory ordered store for tests and the simulator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemStore {
    records: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemStore {
    /// Applies a block's changes.
    pub fn apply_diff(&mut self, diff: &StateDiff) {
        for (key, value) in diff {
            match value {
                Some(value) => {
                    self.records.insert(key.clone(), value.clone());
                }
                None => {
                    self.records.remove(key);
                }
            }
        }
    }
    /// Every record, in key order.
    pub fn records(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.records.iter()
    }
}

impl StateStore for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.records.get(key).cloned())
    }
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Records, StoreError> {
        Ok(self
            .records
            .range(start.to_vec()..end.to_vec())
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_is_order_independent_and_removal_inverts_insertion() {
        // Proves the root depends on the set of records only, so replicas and snapshots agree.
        let mut forward = Commitment::default();
        forward.insert(b"a", b"1");
        forward.insert(b"b", b"2");
        let mut backward = Commitment::default();
        backward.insert(b"b", b"2");
        backward.insert(b"a", b"1");
        assert_eq!(forward.root(), backward.root());
        forward.remove(b"b", b"2");
        let mut only_a = Commitment::default();
        only_a.insert(b"a", b"1");
        assert_eq!(forward, only_a);
        assert_ne!(only_a.root(), Commitment::default().root());
        let mut bytes = Writer::default();
        only_a.encode(&mut bytes);
        let bytes = bytes.finish();
        assert_eq!(
            Commitment::decode(&mut Reader::new(&bytes)).unwrap(),
            only_a
        );
    }

    #[test]
    fn keys_sort_by_their_fields() {
        // Proves big-endian keys iterate in numeric order, which the expiry scan relies on.
        assert!(expiry_key(1, 9, 9) < expiry_key(2, 0, 0));
        assert!(transfer_key(1, u128::MAX) < transfer_key(2, 0));
        assert_eq!(parse_expiry_key(&expiry_key(5, 6, 7)), Some((5, 6, 7)));
    }
}
