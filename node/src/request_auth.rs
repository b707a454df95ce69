//! The signed-request scheme of the HTTP API (docs/api.md, "Authentication"): a participant
//! signs each read with one of its registered ed25519 keys, so a node can tell who asks and show
//! it only what is its own. Shared by the server, the Rust client and the documentation's
//! Python example.
//!
//! Signed message: `"tpwalletoec/api-request" 0x00 || network_id [32] || METHOD || 0x0a ||
//! path_and_query || 0x0a || timestamp_ms (decimal ASCII) || 0x0a || nonce (hex ASCII) || 0x0a ||
//! blake3(body) [32]`.

use ed25519_dalek::{Signer, SigningKey};
use tpw_contracts::model::Hash;

/// Header carrying the signer's public key (64 hex digits).
pub const HEADER_KEY: &str = "tpw-key";
/// Header carrying the signing time in milliseconds since the Unix epoch (decimal).
pub const HEADER_TIMESTAMP: &str = "tpw-timestamp";
/// Header carrying a client-chosen nonce: 16 to 64 hex digits, fresh for every request.
pub const HEADER_NONCE: &str = "tpw-nonce";
/// Header carrying the signature (128 hex digits).
pub const HEADER_SIGNATURE: &str = "tpw-signature";
/// Domain tag of the signed message.
pub const DOMAIN: &[u8] = b"tpwalletoec/api-request";

/// The bytes a request signature covers.
pub fn message(
    network_id: &Hash,
    method: &str,
    path_and_query: &str,
    timestamp_ms: u64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + 128 + path_and_query.len());
    message.extend_from_slice(DOMAIN);
    message.push(0);
    message.extend_from_slice(network_id);
    message.extend_from_slice(method.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(path_and_query.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(timestamp_ms.to_string().as_bytes());
    message.push(b'\n');
    message.extend_from_slice(nonce.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(blake3::hash(body).as_bytes());
    message
}

/// The four authentication headers (name, value) for one request, signed by `key`.
pub fn headers(
    key: &SigningKey,
    network_id: &Hash,
    method: &str,
    path_and_query: &str,
    timestamp_ms: u64,
    body: &[u8],
) -> [(&'static str, String); 4] {
    let signed = headers_with(
        key.verifying_key().to_bytes(),
        |message| Ok::<_, std::convert::Infallible>(key.sign(message).to_bytes()),
        network_id,
        method,
        path_and_query,
        timestamp_ms,
        body,
    );
    match signed {
        Ok(headers) => headers,
        Err(never) => match never {},
    }
}

/// As [`headers`], for a key held elsewhere (a token): `sign` signs the request's message and
/// its error is returned as is.
pub fn headers_with<E>(
    public_key: [u8; 32],
    sign: impl FnOnce(&[u8]) -> Result<[u8; 64], E>,
    network_id: &Hash,
    method: &str,
    path_and_query: &str,
    timestamp_ms: u64,
    body: &[u8],
) -> Result<[(&'static str, String); 4], E> {
    let mut nonce = [0u8; 16];
    if getrandom::getrandom(&mut nonce).is_err() {
        // No system randomness: the time and an in-process counter still make it unique.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        nonce[..8].copy_from_slice(&count.to_le_bytes());
        nonce[8..].copy_from_slice(&timestamp_ms.to_le_bytes());
    }
    let nonce = hex::encode(nonce);
    let signature = sign(&message(
        network_id,
        method,
        path_and_query,
        timestamp_ms,
        &nonce,
        body,
    ))?;
    Ok([
        (HEADER_KEY, hex::encode(public_key)),
        (HEADER_TIMESTAMP, timestamp_ms.to_string()),
        (HEADER_NONCE, nonce),
        (HEADER_SIGNATURE, hex::encode(signature)),
    ])
}
