//! Inclusion proofs: that a transaction, and its receipt, are in a block, and that the block is
//! in a chain ending at a head the verifier trusts. Built by a node from its stored blocks;
//! checked offline with nothing but the proof, the network id and the trusted head hash.
//!
//! The Merkle trees are those of [`crate::block::merkle_root`]: leaves hashed with a 0 tag,
//! nodes with a 1 tag, an odd last node carried up unchanged. A path lists the siblings from
//! the leaf up; where a node is carried up, it has none.

#[cfg(test)]
use crate::block::merkle_root;
use crate::block::{BlockHeader, Receipt};
use crate::codec::{DecodeError, Reader, Writer};
use crate::model::Hash;
use crate::tx::{transaction_id, Transaction};

/// A leaf's path to a Merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerklePath {
    /// The leaf's position.
    pub index: u32,
    /// Leaves in the tree.
    pub leaf_count: u32,
    /// Sibling hashes from the leaf up (none where a node is carried up).
    pub siblings: Vec<Hash>,
}

fn leaf_hash(leaf: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[0]);
    hasher.update(leaf);
    *hasher.finalize().as_bytes()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[1]);
    hasher.update(left);
    hasher.update(right);
    *hasher.finalize().as_bytes()
}

/// The path of leaf `index` among `leaves`; `None` if there is no such leaf.
pub fn merkle_path(leaves: &[Hash], index: usize) -> Option<MerklePath> {
    if index >= leaves.len() {
        return None;
    }
    let mut level: Vec<Hash> = leaves.iter().map(leaf_hash).collect();
    let mut position = index;
    let mut siblings = Vec::new();
    while level.len() > 1 {
        let sibling = position ^ 1;
        if sibling < level.len() {
            siblings.push(level[sibling]);
        }
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node_hash(left, right),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
        position /= 2;
    }
    Some(MerklePath {
        index: u32::try_from(index).ok()?,
        leaf_count: u32::try_from(leaves.len()).ok()?,
        siblings,
    })
}

/// The root that `leaf` at `path` leads to; `None` if the path is malformed (index out of
/// range, too few or too many siblings).
pub fn merkle_path_root(leaf: &Hash, path: &MerklePath) -> Option<Hash> {
    if path.index >= path.leaf_count {
        return None;
    }
    let mut hash = leaf_hash(leaf);
    let mut position = path.index;
    let mut count = path.leaf_count;
    let mut siblings = path.siblings.iter();
    while count > 1 {
        if position % 2 == 1 {
            hash = node_hash(siblings.next()?, &hash);
        } else if position + 1 < count {
            hash = node_hash(&hash, siblings.next()?);
        }
        position /= 2;
        count = count.div_ceil(2);
    }
    if siblings.next().is_some() {
        return None;
    }
    Some(hash)
}

/// Proof that a transaction settled in a block of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The signed transaction envelope.
    pub envelope: Vec<u8>,
    /// Its receipt in the block.
    pub receipt: Receipt,
    /// The transaction id's path to the header's transactions root.
    pub transaction_path: MerklePath,
    /// The receipt hash's path to the header's receipts root.
    pub receipt_path: MerklePath,
    /// The block's header, then each following header up to the head the proof ends at.
    pub headers: Vec<BlockHeader>,
}

/// What a proof established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenInclusion {
    /// The transaction, decoded and signature-checked.
    pub transaction: Transaction,
    /// Its receipt.
    pub receipt: Receipt,
    /// The block height that holds it.
    pub height: u64,
    /// The head the chain of headers ends at: height and hash.
    pub head: (u64, Hash),
}

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The envelope does not decode for this network, or its signature does not verify.
    #[error("the transaction: {0}")]
    Transaction(String),
    /// The receipt is for another transaction.
    #[error("the receipt is for another transaction")]
    ReceiptMismatch,
    /// A Merkle path does not lead to the header's root ("transactions", "receipts"), or the
    /// paths disagree with each other or with the block's transaction count ("position").
    #[error("the {0} path does not hold for the block")]
    Path(&'static str),
    /// No headers.
    #[error("the proof holds no block header")]
    NoHeader,
    /// A header is of another network.
    #[error("header {0} belongs to another network")]
    WrongNetwork(u64),
    /// Two headers do not link by hash and height.
    #[error("header {height} does not link to the header below it")]
    BrokenLink {
        /// The height of the header that does not link.
        height: u64,
    },
    /// The chain ends at another head than the trusted one.
    #[error("the headers end at {0}, not at the trusted head")]
    UntrustedHead(String),
}

impl InclusionProof {
    /// Checks the proof for `network_id`; with `trusted_head`, the headers must end at that
    /// header hash. Returns what it proves.
    pub fn verify(
        &self,
        network_id: &Hash,
        trusted_head: Option<&Hash>,
    ) -> Result<ProvenInclusion, ProofError> {
        let transaction = Transaction::from_bytes(&self.envelope, network_id)
            .map_err(|error| ProofError::Transaction(error.to_string()))?;
        let message = transaction.signed_message();
        let valid = crate::sig::verify_all(&[crate::sig::SignatureItem {
            key: &transaction.signer,
            signature: &transaction.signature,
            message: &message,
        }]);
        if valid != [true] {
            return Err(ProofError::Transaction(
                "the signature does not verify".into(),
            ));
        }
        let tx_id = transaction_id(&self.envelope);
        if self.receipt.tx_id != tx_id {
            return Err(ProofError::ReceiptMismatch);
        }
        let header = self.headers.first().ok_or(ProofError::NoHeader)?;
        // Both paths name the transaction's position in this block.
        if self.transaction_path.leaf_count != header.transaction_count
            || self.receipt_path.leaf_count != header.transaction_count
            || self.transaction_path.index != self.receipt_path.index
        {
            return Err(ProofError::Path("position"));
        }
        if merkle_path_root(&tx_id, &self.transaction_path) != Some(header.transactions_root) {
            return Err(ProofError::Path("transactions"));
        }
        if merkle_path_root(&self.receipt.hash(), &self.receipt_path) != Some(header.receipts_root)
        {
            return Err(ProofError::Path("receipts"));
        }
        for pair in self.headers.windows(2) {
            if pair[1].previous_hash != pair[0].hash() || pair[1].height != pair[0].height + 1 {
                return Err(ProofError::BrokenLink {
                    height: pair[1].height,
                });
            }
        }
        if let Some(header) = self.headers.iter().find(|h| h.network_id != *network_id) {
            return Err(ProofError::WrongNetwork(header.height));
        }
        let last = self.headers.last().ok_or(ProofError::NoHeader)?;
        let head_hash = last.hash();
        if let Some(trusted) = trusted_head {
            if *trusted != head_hash {
                return Err(ProofError::UntrustedHead(hex::encode(head_hash)));
            }
        }
        Ok(ProvenInclusion {
            transaction,
            receipt: self.receipt.clone(),
            height: header.height,
            head: (last.height, head_hash),
        })
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(self.envelope.len() + 256 * self.headers.len());
        writer.bytes(&self.envelope);
        self.receipt.encode(&mut writer);
        for path in [&self.transaction_path, &self.receipt_path] {
            writer.u32(path.index);
            writer.u32(path.leaf_count);
            writer.u32(path.siblings.len() as u32);
            for sibling in &path.siblings {
                writer.fixed(sibling);
            }
        }
        writer.u32(self.headers.len() as u32);
        for header in &self.headers {
            writer.bytes(&header.to_bytes());
        }
        writer.finish()
    }

    /// Reads a proof written by [`InclusionProof::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let envelope = reader
            .bytes("proof.envelope", crate::limits::ENVELOPE_SIZE_MAX)?
            .to_vec();
        let receipt = Receipt::decode(&mut reader)?;
        let transaction_path = read_path(&mut reader)?;
        let receipt_path = read_path(&mut reader)?;
        let count = reader.u32("proof.headers")? as usize;
        if count > PROOF_HEADERS_MAX {
            return Err(DecodeError::TooLong {
                field: "proof.headers",
                length: count,
                limit: PROOF_HEADERS_MAX,
            });
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            headers.push(BlockHeader::from_bytes(
                reader.bytes("proof.header", 1024)?,
            )?);
        }
        reader.finish()?;
        Ok(Self {
            envelope,
            receipt,
            transaction_path,
            receipt_path,
            headers,
        })
    }
}

pub use crate::limits::PROOF_HEADERS_MAX;

fn read_path(reader: &mut Reader<'_>) -> Result<MerklePath, DecodeError> {
    let index = reader.u32("proof.path.index")?;
    let leaf_count = reader.u32("proof.path.leaf_count")?;
    let count = reader.u32("proof.path.siblings")? as usize;
    // A tree of at most 2^32 leaves is at most 32 levels deep.
    if count > 32 {
        return Err(DecodeError::TooLong {
            field: "proof.path.siblings",
            length: count,
            limit: 32,
        });
    }
    let mut siblings = Vec::with_capacity(count);
    for _ in 0..count {
        siblings.push(reader.array("proof.path.sibling")?);
    }
    Ok(MerklePath {
        index,
        leaf_count,
        siblings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_of_every_tree_size_proves_against_the_root_and_nothing_else_does() {
        // Proves paths and roots agree for trees of 1 to 33 leaves (odd carries included),
        // and that another leaf, index or sibling does not lead to the root.
        for size in 1..=33u8 {
            let leaves: Vec<Hash> = (0..size).map(|n| [n; 32]).collect();
            let root = merkle_root(&leaves);
            for (index, leaf) in leaves.iter().enumerate() {
                let path = merkle_path(&leaves, index).unwrap();
                assert_eq!(merkle_path_root(leaf, &path), Some(root), "{size} {index}");
                assert_ne!(merkle_path_root(&[99; 32], &path), Some(root));
                if size > 1 {
                    let mut moved = path.clone();
                    moved.index = (moved.index + 1) % u32::from(size);
                    assert_ne!(merkle_path_root(leaf, &moved), Some(root));
                    let mut bent = path.clone();
                    bent.siblings[0][0] ^= 1;
                    assert_ne!(merkle_path_root(leaf, &bent), Some(root));
                    let mut longer = path.clone();
                    longer.siblings.push([0; 32]);
                    assert_eq!(merkle_path_root(leaf, &longer), None);
                }
            }
            assert!(merkle_path(&leaves, size as usize).is_none());
        }
    }
}
