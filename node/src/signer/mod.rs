//! Where a participant's or a bank member's ed25519 key signs: one abstraction over a key file
//! (plain or encrypted, [`crate::keys`]) and a key held in a hardware token through PKCS#11
//! ([`pkcs11`]), so the CLI and the Rust client sign the same way whatever holds the key. A
//! token's key never leaves the token: the signer sends it the message and gets the signature.
//!
//! A signer is named by a key file's path or by an RFC 7512 PKCS#11 URI:
//! `pkcs11:token=<label>;object=<key label>?module-path=<library>&pin-source=file:<path>`
//! (the PIN may also come from `TPW_PKCS11_PIN`, the module from `TPW_PKCS11_MODULE`).

pub mod pkcs11;

use std::sync::Arc;

/// Why a signer could not be opened or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// A key file could not be loaded.
    #[error(transparent)]
    KeyFile(#[from] crate::keys::KeyFileError),
    /// A PKCS#11 URI that does not say which token, key and library.
    #[error("PKCS#11 URI: {0}")]
    Uri(String),
    /// The token or its library refused (the PKCS#11 return value is named).
    #[error("PKCS#11: {0}")]
    Token(String),
}

/// A key that signs ed25519 (pure EdDSA, RFC 8032) messages.
pub trait Signer: Send + Sync {
    /// The public key.
    fn public_key(&self) -> [u8; 32];
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError>;
    /// Where the key is, for messages (never key material).
    fn describe(&self) -> String;
}

/// A key held in memory (loaded from a key file).
pub struct KeySigner {
    key: ed25519_dalek::SigningKey,
    source: String,
}

impl KeySigner {
    /// Signs with `key`, described as `source`.
    pub fn new(key: ed25519_dalek::SigningKey, source: impl Into<String>) -> Self {
        Self {
            key,
            source: source.into(),
        }
    }
}

impl Signer for KeySigner {
    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        use ed25519_dalek::Signer as _;
        Ok(self.key.sign(message).to_bytes())
    }
    fn describe(&self) -> String {
        self.source.clone()
    }
}

/// The signer `spec` names: a PKCS#11 URI (`pkcs11:...`) or a key file's path.
pub fn open(spec: &str) -> Result<Arc<dyn Signer>, SignerError> {
    if spec.starts_with("pkcs11:") {
        let uri = pkcs11::TokenKey::parse(spec)?;
        return Ok(Arc::new(pkcs11::Pkcs11Signer::open(&uri)?));
    }
    let path = std::path::Path::new(spec);
    let key = crate::keys::load(path)?;
    Ok(Arc::new(KeySigner::new(
        key,
        format!("key file {}", path.display()),
    )))
}

/// Checks `signature` over `message` against `public_key` (strict RFC 8032): a token's
/// answer is checked before it is used, so a faulty token or a key that is not the one named
/// fails here rather than on the ledger.
pub(crate) fn check(
    public_key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignerError> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
        .map_err(|_| SignerError::Token("the token's public key is not an ed25519 point".into()))?;
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
        .map_err(|_| {
            SignerError::Token("the token's signature does not verify under its public key".into())
        })
}
