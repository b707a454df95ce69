//! Blocks: the proposal a leader replicates through Raft, and the header every node derives.
//!
//! A Raft entry carries a [`Proposal`]: the leader's clock stamp and the transaction envelopes.
//! Each node applies it and derives the [`BlockHeader`]: height, previous header hash,
//! effective time, transaction Merkle root, receipts root and post-apply state root. Apply is
//! deterministic, so every honest node derives the same header and hash chain.

use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::{BLOCK_SIZE_MAX, BLOCK_TRANSACTIONS_MAX, ENVELOPE_SIZE_MAX, FORMAT_VERSION};
use crate::model::Hash;
use crate::result::ResultCode;

/// What a leader proposes as one Raft entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Proposal {
    /// The leader's clock when it cut the block, in ms since the Unix epoch.
    pub proposer_time_ms: u64,
    /// The leader's applied head when it cut the block (height and header hash): every node
    /// compares it with its own header at that height, so a diverged replica raises an alarm.
    pub attestation: Option<(u64, Hash)>,
    /// Transaction envelopes, in order.
    pub transactions: Vec<Vec<u8>>,
    /// The leader's webhook delivery progress since its last proposal: replicated with the
    /// block so that a new leader resumes deliveries where the old one stopped. Operational
    /// data: not part of the header or the state.
    pub webhooks: Vec<WebhookProgress>,
}

pub use crate::limits::WEBHOOK_DEAD_MAX;
pub use crate::limits::WEBHOOK_ERROR_SIZE_MAX;
pub use crate::limits::WEBHOOK_PROGRESS_MAX;

/// A delivery that exhausted its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The event's block height.
    pub height: u64,
    /// The event's sequence in the block.
    pub sequence: u32,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, short.
    pub error: String,
}

/// One webhook endpoint's delivery progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookProgress {
    /// The endpoint's participant.
    pub participant: u64,
    /// Its endpoint number.
    pub endpoint: u16,
    /// Every event of this endpoint up to (height, sequence) was delivered or dead-lettered.
    pub delivered_height: u64,
    /// See `delivered_height`.
    pub delivered_sequence: u32,
    /// Deliveries moved to the dead-letter list.
    pub dead: Vec<DeadLetter>,
    /// Dead letters delivered on replay (removed from the list), as (height, sequence).
    pub revived: Vec<(u64, u32)>,
}

impl WebhookProgress {
    fn encode(&self, writer: &mut Writer) {
        writer.u64(self.participant);
        writer.u16(self.endpoint);
        writer.u64(self.delivered_height);
        writer.u32(self.delivered_sequence);
        writer.u16(self.dead.len().min(WEBHOOK_DEAD_MAX) as u16);
        for dead in self.dead.iter().take(WEBHOOK_DEAD_MAX) {
            writer.u64(dead.height);
            writer.u32(dead.sequence);
            writer.u32(dead.attempts);
            let mut end = dead.error.len().min(WEBHOOK_ERROR_SIZE_MAX);
            while !dead.error.is_char_boundary(end) {
                end -= 1;
            }
            writer.string(&dead.error[..end]);
        }
        writer.u16(self.revived.len().min(WEBHOOK_DEAD_MAX) as u16);
        for (height, sequence) in self.revived.iter().take(WEBHOOK_DEAD_MAX) {
            writer.u64(*height);
            writer.u32(*sequence);
        }
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let participant = reader.u64("webhook.participant")?;
        let endpoint = reader.u16("webhook.endpoint")?;
        let delivered_height = reader.u64("webhook.delivered_height")?;
        let delivered_sequence = reader.u32("webhook.delivered_sequence")?;
        let count = bounded(reader.u16("webhook.dead_count")? as usize, "webhook.dead")?;
        let mut dead = Vec::with_capacity(count);
        for _ in 0..count {
            dead.push(DeadLetter {
                height: reader.u64("webhook.dead_height")?,
                sequence: reader.u32("webhook.dead_sequence")?,
                attempts: reader.u32("webhook.dead_attempts")?,
                error: reader.string("webhook.dead_error", WEBHOOK_ERROR_SIZE_MAX)?,
            });
        }
        let count = bounded(
            reader.u16("webhook.revived_count")? as usize,
            "webhook.revived",
        )?;
        let mut revived = Vec::with_capacity(count);
        for _ in 0..count {
            revived.push((
                reader.u64("webhook.revived_height")?,
                reader.u32("webhook.revived_sequence")?,
            ));
        }
        Ok(Self {
            participant,
            endpoint,
            delivered_height,
            delivered_sequence,
            dead,
            revived,
        })
    }
}

fn bounded(count: usize, field: &'static str) -> Result<usize, DecodeError> {
    if count > WEBHOOK_DEAD_MAX {
        return Err(DecodeError::TooLong {
            field,
            length: count,
            limit: WEBHOOK_DEAD_MAX,
        });
    }
    Ok(count)
}

/// What comparing a proposal's attestation with this node's own chain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationCheck {
    /// No attestation, or it matches.
    Agrees,
    /// This node does not have that height (it cannot happen for an honest leader).
    Unknown,
    /// This node's header at that height differs from the leader's: the chains diverged.
    Diverged {
        /// The attested height.
        height: u64,
        /// This node's header hash there.
        mine: Hash,
        /// The leader's.
        theirs: Hash,
    },
}

/// Compares an attestation with this node's header hashes (`mine(height)`).
pub fn check_attestation(
    attestation: Option<(u64, Hash)>,
    mine: impl FnOnce(u64) -> Option<Hash>,
) -> AttestationCheck {
    let Some((height, theirs)) = attestation else {
        return AttestationCheck::Agrees;
    };
    match mine(height) {
        None => AttestationCheck::Unknown,
        Some(mine) if mine == theirs => AttestationCheck::Agrees,
        Some(mine) => AttestationCheck::Diverged {
            height,
            mine,
            theirs,
        },
    }
}

impl Proposal {
    /// Canonical encoding: version u8 | proposer_time_ms u64 | attestation (u8 0, or u8 1,
    /// height u64, hash [32]) | count u32 | envelopes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let size: usize = self.transactions.iter().map(|tx| tx.len() + 4).sum();
        let mut writer = Writer::with_capacity(size + 16);
        writer.u8(FORMAT_VERSION);
        writer.u64(self.proposer_time_ms);
        match &self.attestation {
            None => writer.u8(0),
            Some((height, hash)) => {
                writer.u8(1);
                writer.u64(*height);
                writer.fixed(hash);
            }
        }
        writer.u32(
            u32::try_from(self.transactions.len()).expect("bounded by BLOCK_TRANSACTIONS_MAX"),
        );
        for transaction in &self.transactions {
            writer.bytes(transaction);
        }
        let progress = &self.webhooks[..self.webhooks.len().min(WEBHOOK_PROGRESS_MAX)];
        writer.u16(progress.len() as u16);
        for entry in progress {
            entry.encode(&mut writer);
        }
        writer.finish()
    }

    /// Decodes a proposal, enforcing the block limits.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > BLOCK_SIZE_MAX {
            return Err(DecodeError::TooLong {
                field: "proposal",
                length: bytes.len(),
                limit: BLOCK_SIZE_MAX,
            });
        }
        let mut reader = Reader::new(bytes);
        let version = reader.u8("proposal.version")?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::InvalidValue {
                field: "proposal.version",
                value: version.into(),
            });
        }
        let proposer_time_ms = reader.u64("proposal.proposer_time_ms")?;
        let attestation = if reader.bool("proposal.attestation")? {
            Some((
                reader.u64("proposal.attested_height")?,
                reader.array("proposal.attested_hash")?,
            ))
        } else {
            None
        };
        let count = reader.u32("proposal.count")? as usize;
        if count > BLOCK_TRANSACTIONS_MAX {
            return Err(DecodeError::TooLong {
                field: "proposal.transactions",
                length: count,
                limit: BLOCK_TRANSACTIONS_MAX,
            });
        }
        let mut transactions = Vec::with_capacity(count);
        for _ in 0..count {
            transactions.push(
                reader
                    .bytes("proposal.transaction", ENVELOPE_SIZE_MAX)?
                    .to_vec(),
            );
        }
        let count = reader.u16("proposal.webhook_count")? as usize;
        if count > WEBHOOK_PROGRESS_MAX {
            return Err(DecodeError::TooLong {
                field: "proposal.webhooks",
                length: count,
                limit: WEBHOOK_PROGRESS_MAX,
            });
        }
        let mut webhooks = Vec::with_capacity(count);
        for _ in 0..count {
            webhooks.push(WebhookProgress::decode(&mut reader)?);
        }
        reader.finish()?;
        Ok(Self {
            proposer_time_ms,
            attestation,
            transactions,
            webhooks,
        })
    }
}

/// The derived header of an applied block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHeader {
    /// The network id (genesis hash).
    pub network_id: Hash,
    /// Height: genesis is 0, each applied proposal adds one.
    pub height: u64,
    /// Hash of the previous header (zero for genesis).
    pub previous_hash: Hash,
    /// Effective block time: max(stamp, previous time + 1 ms).
    pub time_ms: u64,
    /// The leader's stamp as proposed.
    pub proposer_time_ms: u64,
    /// Number of transactions.
    pub transaction_count: u32,
    /// Merkle root of the transaction ids.
    pub transactions_root: Hash,
    /// Merkle root of the receipt hashes.
    pub receipts_root: Hash,
    /// Merkle root of the hashes of the block's effects (what fell due without a transaction).
    pub effects_root: Hash,
    /// State commitment after applying the block.
    pub state_root: Hash,
}

impl BlockHeader {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(200);
        writer.u8(FORMAT_VERSION);
        writer.fixed(&self.network_id);
        writer.u64(self.height);
        writer.fixed(&self.previous_hash);
        writer.u64(self.time_ms);
        writer.u64(self.proposer_time_ms);
        writer.u32(self.transaction_count);
        writer.fixed(&self.transactions_root);
        writer.fixed(&self.receipts_root);
        writer.fixed(&self.effects_root);
        writer.fixed(&self.state_root);
        writer.finish()
    }

    /// Decodes a header written by [`BlockHeader::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8("header.version")?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::InvalidValue {
                field: "header.version",
                value: version.into(),
            });
        }
        let header = Self {
            network_id: reader.array("header.network_id")?,
            height: reader.u64("header.height")?,
            previous_hash: reader.array("header.previous_hash")?,
            time_ms: reader.u64("header.time_ms")?,
            proposer_time_ms: reader.u64("header.proposer_time_ms")?,
            transaction_count: reader.u32("header.transaction_count")?,
            transactions_root: reader.array("header.transactions_root")?,
            receipts_root: reader.array("header.receipts_root")?,
            effects_root: reader.array("header.effects_root")?,
            state_root: reader.array("header.state_root")?,
        };
        reader.finish()?;
        Ok(header)
    }

    /// The header hash that the next block links to.
    pub fn hash(&self) -> Hash {
        *blake3::hash(&self.to_bytes()).as_bytes()
    }
}

/// The outcome of one transaction in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction id.
    pub tx_id: Hash,
    /// `Ok` if it applied, else the reason of the first failing operation.
    pub code: ResultCode,
    /// One code per operation (empty when the envelope itself was refused).
    pub operations: Vec<ResultCode>,
}

impl Receipt {
    /// Canonical encoding: tx_id | code u16 | count u16 | codes.
    pub fn encode(&self, writer: &mut Writer) {
        writer.fixed(&self.tx_id);
        writer.u16(self.code.number());
        writer.u16(u16::try_from(self.operations.len()).expect("bounded by LINKED_OPERATIONS_MAX"));
        for code in &self.operations {
            writer.u16(code.number());
        }
    }

    /// Reads a receipt written by [`Receipt::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tx_id = reader.array("receipt.tx_id")?;
        let code = read_code(reader)?;
        let count = reader.u16("receipt.count")? as usize;
        if count > crate::limits::LINKED_OPERATIONS_MAX {
            return Err(DecodeError::TooLong {
                field: "receipt.operations",
                length: count,
                limit: crate::limits::LINKED_OPERATIONS_MAX,
            });
        }
        let mut operations = Vec::with_capacity(count);
        for _ in 0..count {
            operations.push(read_code(reader)?);
        }
        Ok(Self {
            tx_id,
            code,
            operations,
        })
    }

    /// blake3 of the canonical encoding: the receipts Merkle leaf.
    pub fn hash(&self) -> Hash {
        let mut writer = Writer::with_capacity(64);
        self.encode(&mut writer);
        *blake3::hash(&writer.finish()).as_bytes()
    }
}

/// Something a block did at its start because it fell due by block time, not by a transaction:
/// recorded with the block (committed by the header's effects root) so every node can tell
/// clients about it in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockEffect {
    /// A pending transfer expired and its reservation returned.
    PendingExpired {
        /// Its owner.
        owner: crate::model::ParticipantId,
        /// Its id.
        id: crate::model::TransferId,
    },
    /// A netting cycle reached its close time and settled.
    CycleSettled {
        /// The cycle.
        cycle: u128,
    },
}

const EFFECT_PENDING_EXPIRED: u8 = 1;
const EFFECT_CYCLE_SETTLED: u8 = 2;

impl BlockEffect {
    /// Canonical encoding: tag u8 (1: owner u64, id u128; 2: cycle u128).
    pub fn encode(&self, writer: &mut Writer) {
        match self {
            BlockEffect::PendingExpired { owner, id } => {
                writer.u8(EFFECT_PENDING_EXPIRED);
                writer.u64(*owner);
                writer.u128(*id);
            }
            BlockEffect::CycleSettled { cycle } => {
                writer.u8(EFFECT_CYCLE_SETTLED);
                writer.u128(*cycle);
            }
        }
    }

    /// Reads an effect written by [`BlockEffect::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("effect.tag")? {
            EFFECT_PENDING_EXPIRED => Ok(BlockEffect::PendingExpired {
                owner: reader.u64("effect.owner")?,
                id: reader.u128("effect.id")?,
            }),
            EFFECT_CYCLE_SETTLED => Ok(BlockEffect::CycleSettled {
                cycle: reader.u128("effect.cycle")?,
            }),
            other => Err(DecodeError::InvalidValue {
                field: "effect.tag",
                value: other.into(),
            }),
        }
    }

    /// blake3 of the canonical encoding: the effects Merkle leaf.
    pub fn hash(&self) -> Hash {
        let mut writer = Writer::with_capacity(32);
        self.encode(&mut writer);
        *blake3::hash(&writer.finish()).as_bytes()
    }
}

pub use crate::limits::EFFECTS_PER_BLOCK_MAX;

fn read_code(reader: &mut Reader<'_>) -> Result<ResultCode, DecodeError> {
    let number = reader.u16("receipt.code")?;
    ResultCode::from_number(number).ok_or(DecodeError::InvalidValue {
        field: "receipt.code",
        value: number.into(),
    })
}

/// Binary Merkle root with domain-separated leaves and nodes; an odd last node is carried up.
/// The empty tree's root is blake3 of the empty-tree tag.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return *blake3::hash(b"tpwalletoec/merkle/empty").as_bytes();
    }
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|leaf| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(&[0]);
            hasher.update(leaf);
            *hasher.finalize().as_bytes()
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut hasher = blake3::Hasher::new();
                    hasher.update(&[1]);
                    hasher.update(left);
                    hasher.update(right);
                    *hasher.finalize().as_bytes()
                }
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestations_agree_only_with_the_same_header() {
        // Proves a diverged replica is told apart from an agreeing one and from a missing height.
        assert_eq!(check_attestation(None, |_| None), AttestationCheck::Agrees);
        assert_eq!(
            check_attestation(Some((3, [1; 32])), |_| Some([1; 32])),
            AttestationCheck::Agrees
        );
        assert_eq!(
            check_attestation(Some((3, [1; 32])), |_| None),
            AttestationCheck::Unknown
        );
        assert_eq!(
            check_attestation(Some((3, [1; 32])), |_| Some([2; 32])),
            AttestationCheck::Diverged {
                height: 3,
                mine: [2; 32],
                theirs: [1; 32]
            }
        );
    }

    #[test]
    fn proposal_and_header_round_trip() {
        // Proves both encodings are inverse to their decoders.
        let attested = Proposal {
            proposer_time_ms: 1,
            attestation: Some((7, [9; 32])),
            transactions: vec![vec![5]],
            webhooks: vec![WebhookProgress {
                participant: 3,
                endpoint: 1,
                delivered_height: 9,
                delivered_sequence: 2,
                dead: vec![DeadLetter {
                    height: 8,
                    sequence: 0,
                    attempts: 8,
                    error: "connection refused".into(),
                }],
                revived: vec![(7, 1)],
            }],
        };
        assert_eq!(
            Proposal::from_bytes(&attested.to_bytes()).unwrap(),
            attested
        );
        let proposal = Proposal {
            attestation: None,
            proposer_time_ms: 42,
            transactions: vec![vec![1, 2], vec![3]],
            webhooks: Vec::new(),
        };
        assert_eq!(
            Proposal::from_bytes(&proposal.to_bytes()).unwrap(),
            proposal
        );
        let header = BlockHeader {
            network_id: [1; 32],
            height: 3,
            previous_hash: [2; 32],
            time_ms: 5,
            proposer_time_ms: 4,
            transaction_count: 2,
            transactions_root: [3; 32],
            receipts_root: [4; 32],
            effects_root: [6; 32],
            state_root: [5; 32],
        };
        assert_eq!(BlockHeader::from_bytes(&header.to_bytes()).unwrap(), header);
    }

    #[test]
    fn merkle_root_depends_on_order_and_content() {
        // Proves the root commits to every leaf and its position.
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
        assert_ne!(merkle_root(&[a]), merkle_root(&[a, a]));
        assert_ne!(merkle_root(&[]), merkle_root(&[a]));
    }
}
