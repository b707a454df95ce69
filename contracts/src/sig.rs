//! Signature verification with one answer for every node and auditor, however it batches.
//!
//! Rules: ed25519 as specified by ZIP-215 (the `ed25519-zebra` crate, the Zcash Foundation's reference implementation of ZIP-215). Under ZIP-215 a
//! signature is valid or not on its own, and batch verification accepts exactly the set that
//! single verification accepts, so the signatures a block accepts are a function of the block
//! alone. Batches use coefficients drawn from blake3 of the whole batch rather than a thread
//! RNG: deterministic, yet unknown to a forger until the batch is fixed. On a batch failure
//! every item is checked alone to find the culprits.

use crate::model::PublicKey;
use ed25519_zebra::{batch, Signature, VerificationKey, VerificationKeyBytes};
use rand_core::{CryptoRng, RngCore};

/// One signature to check.
#[derive(Debug, Clone, Copy)]
pub struct SignatureItem<'a> {
    /// The signer key.
    pub key: &'a PublicKey,
    /// The signature.
    pub signature: &'a [u8; 64],
    /// The signed message.
    pub message: &'a [u8],
}

/// Checks one signature under ZIP-215 rules.
pub fn verify_one(item: &SignatureItem<'_>) -> bool {
    let Ok(key) = VerificationKey::try_from(*item.key) else {
        return false;
    };
    key.verify(&Signature::from(*item.signature), item.message)
        .is_ok()
}

/// Checks every signature; the verdicts equal `verify_one` on each item.
pub fn verify_all(items: &[SignatureItem<'_>]) -> Vec<bool> {
    if items.len() < 2 {
        return items.iter().map(verify_one).collect();
    }
    let mut transcript =
        blake3::Hasher::new_derive_key("tpwalletoec batch verification coefficients v1");
    let mut verifier = batch::Verifier::new();
    for item in items {
        transcript.update(item.key);
        transcript.update(item.signature);
        transcript.update(&(item.message.len() as u64).to_le_bytes());
        transcript.update(item.message);
        verifier.queue((
            VerificationKeyBytes::from(*item.key),
            Signature::from(*item.signature),
            item.message,
        ));
    }
    let mut rng = TranscriptRng(transcript.finalize_xof());
    if verifier.verify(&mut rng).is_ok() {
        return vec![true; items.len()];
    }
    items.iter().map(verify_one).collect()
}

/// A deterministic RNG reading the blake3 output stream of the batch transcript.
struct TranscriptRng(blake3::OutputReader);

impl RngCore for TranscriptRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0u8; 4];
        self.0.fill(&mut bytes);
        u32::from_le_bytes(bytes)
    }
    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.0.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }
    fn fill_bytes(&mut self, destination: &mut [u8]) {
        self.0.fill(destination);
    }
    fn try_fill_bytes(&mut self, destination: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(destination);
        Ok(())
    }
}

impl CryptoRng for TranscriptRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn batch_verdicts_equal_single_verdicts_however_grouped() {
        // Proves that a bad signature is found in a batch and good ones still pass, in any grouping.
        let keys: Vec<SigningKey> = (1..=8u8)
            .map(|seed| SigningKey::from_bytes(&[seed; 32]))
            .collect();
        let messages: Vec<Vec<u8>> = (0..8u8).map(|index| vec![index; 10]).collect();
        let public: Vec<PublicKey> = keys
            .iter()
            .map(|key| key.verifying_key().to_bytes())
            .collect();
        let mut signatures: Vec<[u8; 64]> = keys
            .iter()
            .zip(&messages)
            .map(|(key, message)| key.sign(message).to_bytes())
            .collect();
        signatures[3][0] ^= 1;
        signatures[6] = signatures[5];
        let items: Vec<SignatureItem<'_>> = (0..8)
            .map(|index| SignatureItem {
                key: &public[index],
                signature: &signatures[index],
                message: &messages[index],
            })
            .collect();
        let single: Vec<bool> = items.iter().map(verify_one).collect();
        assert_eq!(
            single,
            vec![true, true, true, false, true, true, false, true]
        );
        assert_eq!(verify_all(&items), single);
        for size in 1..=8 {
            let grouped: Vec<bool> = items.chunks(size).flat_map(verify_all).collect();
            assert_eq!(grouped, single, "group size {size}");
        }
    }
}
