//! The on-disk record envelope: version u8 | payload | checksum (first 4 bytes of blake3 of
//! version and payload). Every value the node stores goes through it, both ways.

use super::db::StorageError;

/// Version of the record envelope and of the payload layouts inside it.
pub const RECORD_VERSION: u8 = 1;
const CHECKSUM_SIZE: usize = 4;

fn checksum(version_and_payload: &[u8]) -> [u8; CHECKSUM_SIZE] {
    let hash = blake3::hash(version_and_payload);
    let mut out = [0u8; CHECKSUM_SIZE];
    out.copy_from_slice(&hash.as_bytes()[..CHECKSUM_SIZE]);
    out
}

/// Wraps a payload for storage.
pub fn seal_record(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(payload.len() + 1 + CHECKSUM_SIZE);
    bytes.push(RECORD_VERSION);
    bytes.extend_from_slice(payload);
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum);
    bytes
}

/// Checks and unwraps a stored value; `what` names it in the error.
pub fn open_record<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8], StorageError> {
    if bytes.len() < 1 + CHECKSUM_SIZE {
        return Err(StorageError::Corrupt(format!(
            "{what}: record of {} bytes is too short",
            bytes.len()
        )));
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_SIZE);
    if checksum(body) != sum {
        return Err(StorageError::Corrupt(format!("{what}: checksum mismatch")));
    }
    if body[0] != RECORD_VERSION {
        return Err(StorageError::Corrupt(format!(
            "{what}: unknown record version {}",
            body[0]
        )));
    }
    Ok(&body[1..])
}

/// The (height, sequence) cursor stored big-endian in a key at `at` (8 + 4 bytes).
pub(crate) fn key_cursor(key: &[u8], at: usize) -> Option<(u64, u32)> {
    let height = key
        .get(at..at + 8)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map(u64::from_be_bytes)?;
    let sequence = key
        .get(at + 8..at + 12)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map(u32::from_be_bytes)?;
    Some((height, sequence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_flipped_bit_is_detected() {
        // Proves a single corrupted bit anywhere in a record is refused rather than served.
        let sealed = seal_record(b"ledger state");
        assert_eq!(open_record(&sealed, "t").unwrap(), b"ledger state");
        for index in 0..sealed.len() {
            for bit in 0..8 {
                let mut damaged = sealed.clone();
                damaged[index] ^= 1 << bit;
                assert!(
                    open_record(&damaged, "t").is_err(),
                    "byte {index} bit {bit}"
                );
            }
        }
        assert!(open_record(&[1, 2], "t").is_err());
    }
}
