//! Signature verification measured side by side: ZIP-215 batches (what the ledger uses), ZIP-215
//! one by one, and ed25519-dalek's batch and strict single checks, on one core.

use ed25519_dalek::{Signer, SigningKey, Verifier};
use std::time::Instant;
use tpw_contracts::sig::{verify_all, SignatureItem};

/// One JSON object per method and batch size, with signatures per second.
pub fn run(count: usize, key_count: usize) -> anyhow::Result<Vec<serde_json::Value>> {
    anyhow::ensure!(
        count > 0 && key_count > 0,
        "--signatures and --keys must be positive"
    );
    let corpus = Corpus::new(count, key_count);
    let mut reports = Vec::new();
    let mut report = |method: &str, batch: usize, started: Instant| {
        let per_second = count as f64 / started.elapsed().as_secs_f64();
        reports.push(serde_json::json!({
            "method": method,
            "batch": batch,
            "signatures": count,
            "keys": key_count,
            "signatures_per_s": per_second.round(),
        }));
    };
    for batch in [64usize, 256, 1024] {
        let started = Instant::now();
        corpus.zip215_batches(batch)?;
        report("zip215_batch", batch, started);
        let started = Instant::now();
        corpus.dalek_batches(batch)?;
        report("dalek_batch", batch, started);
    }
    let started = Instant::now();
    corpus.zip215_singles()?;
    report("zip215_single", 1, started);
    let started = Instant::now();
    corpus.dalek_singles()?;
    report("dalek_single", 1, started);
    Ok(reports)
}

/// The signed messages every method verifies: message `index` is signed by key
/// `index % keys`.
struct Corpus {
    keys: Vec<SigningKey>,
    messages: Vec<Vec<u8>>,
    signatures: Vec<ed25519_dalek::Signature>,
    publics: Vec<[u8; 32]>,
    signature_bytes: Vec<[u8; 64]>,
}

impl Corpus {
    fn new(count: usize, key_count: usize) -> Self {
        let keys: Vec<SigningKey> = (0..key_count as u64)
            .map(|index| {
                let mut seed = [7u8; 32];
                seed[..8].copy_from_slice(&index.to_le_bytes());
                SigningKey::from_bytes(&seed)
            })
            .collect();
        let messages: Vec<Vec<u8>> = (0..count)
            .map(|index| format!("transfer {index} of the signature bench").into_bytes())
            .collect();
        let signatures: Vec<ed25519_dalek::Signature> = messages
            .iter()
            .enumerate()
            .map(|(index, message)| keys[index % keys.len()].sign(message))
            .collect();
        let publics: Vec<[u8; 32]> = keys
            .iter()
            .map(|key| key.verifying_key().to_bytes())
            .collect();
        let signature_bytes: Vec<[u8; 64]> = signatures
            .iter()
            .map(ed25519_dalek::Signature::to_bytes)
            .collect();
        Self {
            keys,
            messages,
            signatures,
            publics,
            signature_bytes,
        }
    }

    /// ZIP-215 batch verification (the ledger's), `batch` signatures at a time.
    fn zip215_batches(&self, batch: usize) -> anyhow::Result<()> {
        for (chunk_index, chunk) in self.messages.chunks(batch).enumerate() {
            let items: Vec<SignatureItem<'_>> = chunk
                .iter()
                .enumerate()
                .map(|(offset, message)| {
                    let index = chunk_index * batch + offset;
                    SignatureItem {
                        key: &self.publics[index % self.publics.len()],
                        signature: &self.signature_bytes[index],
                        message,
                    }
                })
                .collect();
            anyhow::ensure!(
                verify_all(&items).iter().all(|valid| *valid),
                "a valid signature was refused"
            );
        }
        Ok(())
    }

    /// ed25519-dalek's batch verification, `batch` signatures at a time.
    fn dalek_batches(&self, batch: usize) -> anyhow::Result<()> {
        for (chunk_index, chunk) in self.messages.chunks(batch).enumerate() {
            let start = chunk_index * batch;
            let verifying: Vec<ed25519_dalek::VerifyingKey> = (start..start + chunk.len())
                .map(|index| self.keys[index % self.keys.len()].verifying_key())
                .collect();
            let chunk_messages: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(
                &chunk_messages,
                &self.signatures[start..start + chunk.len()],
                &verifying,
            )
            .map_err(|error| anyhow::anyhow!("dalek batch refused valid signatures: {error}"))?;
        }
        Ok(())
    }

    /// ZIP-215 verification one signature at a time.
    fn zip215_singles(&self) -> anyhow::Result<()> {
        for (index, message) in self.messages.iter().enumerate() {
            let item = SignatureItem {
                key: &self.publics[index % self.publics.len()],
                signature: &self.signature_bytes[index],
                message,
            };
            anyhow::ensure!(
                tpw_contracts::sig::verify_one(&item),
                "a valid signature was refused"
            );
        }
        Ok(())
    }

    /// ed25519-dalek's strict verification one signature at a time.
    fn dalek_singles(&self) -> anyhow::Result<()> {
        for (index, message) in self.messages.iter().enumerate() {
            self.keys[index % self.keys.len()]
                .verifying_key()
                .verify(message, &self.signatures[index])?;
        }
        Ok(())
    }
}
