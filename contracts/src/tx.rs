//! Signed transactions: the canonical body of operations (`crate::ops`) and the envelope that
//! carries a signature.
//!
//! Envelope layout (docs/encoding.md): version u8 | network_id [32] | signer key [32] |
//! nonce u64 | valid_until_ms u64 | body (u32 length + bytes) | signature [64]. The signature
//! covers [`SIGNING_DOMAIN`] followed by every envelope byte before the signature, so it binds
//! the network, the format version, the signer and the validity. The transaction id is blake3
//! of the whole envelope: a retry sends the same bytes (one id, applied once); a submission
//! meant to apply again takes a new nonce (a new id).

use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::{ENVELOPE_SIZE_MAX, FORMAT_VERSION, LINKED_OPERATIONS_MAX};
use crate::model::{Hash, PublicKey};
use ed25519_dalek::{Signer, SigningKey};

pub use crate::escrow::EscrowTerms;
pub use crate::model::TransferKind;
pub use crate::ops::Operation;

/// Prefix of every signed message, so a transaction signature is never valid for another use.
pub const SIGNING_DOMAIN: &[u8] = b"tpwalletoec/transaction\0";

/// The signed content: one operation, or a linked batch that applies all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// Whether the operations are linked (all or nothing). A single operation is never linked.
    pub linked: bool,
    /// The operations, in order.
    pub operations: Vec<Operation>,
}

impl Body {
    /// A body with one operation.
    pub fn single(operation: Operation) -> Self {
        Self {
            linked: false,
            operations: vec![operation],
        }
    }
    /// A linked batch.
    pub fn linked(operations: Vec<Operation>) -> Self {
        Self {
            linked: true,
            operations,
        }
    }
    /// Checks the shape rules that make the encoding canonical.
    pub fn check_shape(&self) -> Result<(), DecodeError> {
        let count = self.operations.len();
        if count == 0 || (!self.linked && count != 1) || (self.linked && count < 2) {
            return Err(DecodeError::InvalidValue {
                field: "body.operation_count",
                value: count as u128,
            });
        }
        if count > LINKED_OPERATIONS_MAX {
            return Err(DecodeError::TooLong {
                field: "body.operations",
                length: count,
                limit: LINKED_OPERATIONS_MAX,
            });
        }
        Ok(())
    }
    /// Canonical encoding: flags u8 (bit 0 = linked) | count u16 | operations.
    pub fn encode(&self, writer: &mut Writer) {
        writer.u8(u8::from(self.linked));
        writer.u16(
            u16::try_from(self.operations.len())
                .expect("operations are bounded by LINKED_OPERATIONS_MAX"),
        );
        for operation in &self.operations {
            operation.encode(writer);
        }
    }
    /// Reads a body written by [`Body::encode`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let linked = reader.bool("body.flags")?;
        let count = reader.u16("body.operation_count")? as usize;
        if count > LINKED_OPERATIONS_MAX {
            return Err(DecodeError::TooLong {
                field: "body.operations",
                length: count,
                limit: LINKED_OPERATIONS_MAX,
            });
        }
        let mut operations = Vec::with_capacity(count);
        for _ in 0..count {
            operations.push(Operation::decode(reader)?);
        }
        let body = Self { linked, operations };
        body.check_shape()?;
        Ok(body)
    }
}

/// Why envelope bytes were refused before any state was consulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not a canonical envelope.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    /// Larger than [`ENVELOPE_SIZE_MAX`].
    #[error("transaction is {size} bytes, over the limit {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A format version this build does not know.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// Signed for another network.
    #[error("signed for network {found}, this network is {expected}")]
    WrongNetwork {
        /// This network's id, hex.
        expected: String,
        /// The envelope's network id, hex.
        found: String,
    },
}

/// What makes one intended submission unique and how long its retries count as the same one.
///
/// The ledger applies an envelope at most once while its window is open (it keeps the ids of
/// applied envelopes until `valid_until_ms`) and refuses it as `expired` once the block time
/// has passed `valid_until_ms`, so the record of applied envelopes stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Chosen by the signer, different for every submission it means to apply (a random u64).
    pub nonce: u64,
    /// The last block time (ms since the Unix epoch) at which the envelope may apply; at most
    /// [`crate::limits::VALIDITY_WINDOW_MAX_MS`] after the block that applies it.
    pub valid_until_ms: u64,
}

impl Validity {
    /// A validity with this nonce, open until `valid_until_ms`.
    pub fn new(nonce: u64, valid_until_ms: u64) -> Self {
        Self {
            nonce,
            valid_until_ms,
        }
    }
}

/// A decoded, canonical, not yet verified transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The network it is signed for.
    pub network_id: Hash,
    /// The signer's public key.
    pub signer: PublicKey,
    /// Its nonce and the end of its validity window.
    pub validity: Validity,
    /// What it does.
    pub body: Body,
    /// ed25519 signature over [`SIGNING_DOMAIN`] and the envelope bytes before it.
    pub signature: [u8; 64],
}

impl Transaction {
    /// Builds and signs a transaction.
    pub fn sign(network_id: Hash, key: &SigningKey, validity: Validity, body: Body) -> Self {
        let signed = Self::sign_with(
            network_id,
            key.verifying_key().to_bytes(),
            validity,
            body,
            |message| Ok::<_, std::convert::Infallible>(key.sign(message).to_bytes()),
        );
        match signed {
            Ok(transaction) => transaction,
            Err(never) => match never {},
        }
    }

    /// Builds a transaction for `signer` and has `sign` sign its message (a key held
    /// elsewhere: a hardware token, a KMS); `sign`'s error is returned as is.
    pub fn sign_with<E>(
        network_id: Hash,
        signer: PublicKey,
        validity: Validity,
        body: Body,
        sign: impl FnOnce(&[u8]) -> Result<[u8; 64], E>,
    ) -> Result<Self, E> {
        let mut transaction = Self {
            network_id,
            signer,
            validity,
            body,
            signature: [0; 64],
        };
        let unsigned = transaction.unsigned_bytes();
        transaction.signature = sign(&signing_message(&unsigned))?;
        Ok(transaction)
    }

    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut body = Writer::with_capacity(128);
        self.body.encode(&mut body);
        let body = body.finish();
        let mut writer = Writer::with_capacity(body.len() + 160);
        writer.u8(FORMAT_VERSION);
        writer.fixed(&self.network_id);
        writer.fixed(&self.signer);
        writer.u64(self.validity.nonce);
        writer.u64(self.validity.valid_until_ms);
        writer.bytes(&body);
        writer.finish()
    }

    /// The canonical envelope bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.unsigned_bytes();
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// Decodes envelope bytes, checking size, version, network and canonical form.
    pub fn from_bytes(bytes: &[u8], network_id: &Hash) -> Result<Self, EnvelopeError> {
        if bytes.len() > ENVELOPE_SIZE_MAX {
            return Err(EnvelopeError::TooLarge {
                size: bytes.len(),
                limit: ENVELOPE_SIZE_MAX,
            });
        }
        let mut reader = Reader::new(bytes);
        let version = reader.u8("envelope.version")?;
        if version != FORMAT_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        let found: Hash = reader.array("envelope.network_id")?;
        if &found != network_id {
            return Err(EnvelopeError::WrongNetwork {
                expected: hex::encode(network_id),
                found: hex::encode(found),
            });
        }
        let signer = reader.array("envelope.signer")?;
        let validity = Validity {
            nonce: reader.u64("envelope.nonce")?,
            valid_until_ms: reader.u64("envelope.valid_until_ms")?,
        };
        let body_bytes = reader.bytes("envelope.body", ENVELOPE_SIZE_MAX)?;
        let signature = reader.array("envelope.signature")?;
        reader.finish()?;
        let mut body_reader = Reader::new(body_bytes);
        let body = Body::decode(&mut body_reader)?;
        body_reader.finish()?;
        let transaction = Self {
            network_id: found,
            signer,
            validity,
            body,
            signature,
        };
        // Every field has one encoding, so this holds by construction; checked because
        // idempotency and the transaction id depend on it.
        assert_eq!(
            transaction.to_bytes(),
            bytes,
            "canonical re-encoding must reproduce the envelope"
        );
        Ok(transaction)
    }

    /// The message the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        signing_message(&self.unsigned_bytes())
    }
}

fn signing_message(unsigned: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_DOMAIN.len() + unsigned.len());
    message.extend_from_slice(SIGNING_DOMAIN);
    message.extend_from_slice(unsigned);
    message
}

/// The transaction id: blake3 of the envelope bytes.
pub fn transaction_id(envelope: &[u8]) -> Hash {
    *blake3::hash(envelope).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALIDITY: Validity = Validity {
        nonce: 7,
        valid_until_ms: 1_000_000,
    };

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn transfer(id: u128) -> Operation {
        Operation::posted(id, 1, 2, 1, 100)
    }

    #[test]
    fn envelope_round_trips_byte_for_byte() {
        // Proves decode-then-encode reproduces the bytes for single and linked bodies.
        let network = [7u8; 32];
        for body in [
            Body::single(transfer(1)),
            Body::linked(vec![transfer(1), transfer(2)]),
        ] {
            let transaction = Transaction::sign(network, &key(1), VALIDITY, body);
            let bytes = transaction.to_bytes();
            let decoded = Transaction::from_bytes(&bytes, &network).unwrap();
            assert_eq!(decoded, transaction);
            assert_eq!(decoded.to_bytes(), bytes);
        }
    }

    #[test]
    fn a_retry_is_the_same_bytes_and_a_new_nonce_a_new_transaction() {
        // Proves that signing the same body with the same validity reproduces the envelope
        // (deterministic signatures: a retry has the retried one's id) while another nonce or
        // window gives another transaction id, so a repeat meant to apply again is not a retry.
        let network = [7u8; 32];
        let body = || Body::single(transfer(1));
        let id = |validity| {
            transaction_id(&Transaction::sign(network, &key(1), validity, body()).to_bytes())
        };
        assert_eq!(id(VALIDITY), id(VALIDITY));
        assert_ne!(id(VALIDITY), id(Validity::new(8, VALIDITY.valid_until_ms)));
        assert_ne!(id(VALIDITY), id(Validity::new(VALIDITY.nonce, 1_000_001)));
    }

    #[test]
    fn non_canonical_and_foreign_envelopes_are_rejected() {
        // Proves that every deviation from the one canonical form is refused with a reason.
        let network = [7u8; 32];
        let bytes =
            Transaction::sign(network, &key(1), VALIDITY, Body::single(transfer(1))).to_bytes();
        assert!(matches!(
            Transaction::from_bytes(&bytes, &[8u8; 32]),
            Err(EnvelopeError::WrongNetwork { .. })
        ));
        let mut versioned = bytes.clone();
        versioned[0] = 1;
        assert_eq!(
            Transaction::from_bytes(&versioned, &network),
            Err(EnvelopeError::UnsupportedVersion(1))
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Transaction::from_bytes(&trailing, &network),
            Err(EnvelopeError::Malformed(_))
        ));
        for cut in [0, 1, 40, 70, bytes.len() - 1] {
            assert!(
                Transaction::from_bytes(&bytes[..cut], &network).is_err(),
                "cut at {cut}"
            );
        }
        // A single operation marked as linked is not canonical.
        let linked_single = Transaction::sign(
            network,
            &key(1),
            VALIDITY,
            Body {
                linked: true,
                operations: vec![transfer(1)],
            },
        );
        assert!(matches!(
            Transaction::from_bytes(&linked_single.to_bytes(), &network),
            Err(EnvelopeError::Malformed(_))
        ));
        let huge = vec![1u8; ENVELOPE_SIZE_MAX + 1];
        assert!(matches!(
            Transaction::from_bytes(&huge, &network),
            Err(EnvelopeError::TooLarge { .. })
        ));
    }
}
