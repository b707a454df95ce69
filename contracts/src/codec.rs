//! Canonical binary encoding primitives shared by transactions, blocks and state records.
//!
//! Every value has exactly one encoding: fixed-width little-endian integers, length-prefixed
//! byte strings, and tagged enums. Readers reject trailing bytes, unknown tags and lengths over
//! their limits, so decode-then-encode always reproduces the input (docs/encoding.md).

use thiserror::Error;

/// Why a byte string is not a canonical encoding of the expected value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("input ends early: needed {needed} more bytes for {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// Bytes remain after a complete value.
    #[error("{count} trailing bytes after a complete value")]
    TrailingBytes {
        /// How many bytes remain.
        count: usize,
    },
    /// A tag or flag value that this format version does not define.
    #[error("invalid value {value} for {field}")]
    InvalidValue {
        /// The field being read.
        field: &'static str,
        /// The offending value.
        value: u128,
    },
    /// A length over the limit for its field.
    #[error("{field} has length {length}, over the limit {limit}")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// The length found.
        length: usize,
        /// The limit.
        limit: usize,
    },
}

/// Appends canonical encodings to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// A writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
        }
    }
    /// Appends one byte.
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    /// Appends a little-endian u16.
    pub fn u16(&mut self, value: u16) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    /// Appends a little-endian u32.
    pub fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    /// Appends a little-endian u64.
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    /// Appends a little-endian u128.
    pub fn u128(&mut self, value: u128) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    /// Appends raw bytes of a fixed-size field.
    pub fn fixed(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
    }
    /// Appends a u32 length prefix and the bytes.
    pub fn bytes(&mut self, value: &[u8]) {
        let length =
            u32::try_from(value.len()).expect("encoded fields are bounded far below 4 GiB");
        self.u32(length);
        self.bytes.extend_from_slice(value);
    }
    /// Appends a UTF-8 string as length-prefixed bytes.
    pub fn string(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }
    /// The bytes written so far.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads canonical encodings from a byte slice.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }
    /// The offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.position
    }
    /// How many bytes are left to read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }
    /// Takes `count` bytes.
    pub fn take(&mut self, count: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let remaining = self.bytes.len() - self.position;
        if remaining < count {
            return Err(DecodeError::Truncated {
                field,
                needed: count - remaining,
            });
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }
    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }
    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }
    /// Reads a little-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    /// Reads a little-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    /// Reads a little-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    /// Reads a little-endian u128.
    pub fn u128(&mut self, field: &'static str) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array(field)?))
    }
    /// Reads a 0/1 boolean; any other byte is rejected.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidValue {
                field,
                value: other.into(),
            }),
        }
    }
    /// Reads length-prefixed bytes of at most `limit` bytes.
    pub fn bytes(&mut self, field: &'static str, limit: usize) -> Result<&'a [u8], DecodeError> {
        let length = self.u32(field)? as usize;
        if length > limit {
            return Err(DecodeError::TooLong {
                field,
                length,
                limit,
            });
        }
        self.take(length, field)
    }
    /// Reads a length-prefixed UTF-8 string of at most `limit` bytes.
    pub fn string(&mut self, field: &'static str, limit: usize) -> Result<String, DecodeError> {
        let bytes = self.bytes(field, limit)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidValue { field, value: 0 })
    }
    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        let count = self.bytes.len() - self.position;
        if count == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { count })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_and_trailing_bytes_are_rejected() {
        // Proves the primitives are inverse to each other and that readers refuse leftovers.
        let mut writer = Writer::default();
        writer.u8(7);
        writer.u16(0x1234);
        writer.u64(u64::MAX);
        writer.u128(1 << 100);
        writer.bytes(b"abc");
        let mut bytes = writer.finish();
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.u8("a").unwrap(), 7);
        assert_eq!(reader.u16("b").unwrap(), 0x1234);
        assert_eq!(reader.u64("c").unwrap(), u64::MAX);
        assert_eq!(reader.u128("d").unwrap(), 1 << 100);
        assert_eq!(reader.bytes("e", 3).unwrap(), b"abc");
        reader.finish().unwrap();
        bytes.push(0);
        let mut reader = Reader::new(&bytes);
        reader.take(bytes.len() - 1, "all").unwrap();
        assert_eq!(
            reader.finish(),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn lengths_over_the_limit_and_bad_booleans_are_rejected() {
        // Proves that limits are enforced before allocation and booleans have one encoding.
        let mut writer = Writer::default();
        writer.bytes(b"abcd");
        let bytes = writer.finish();
        assert!(matches!(
            Reader::new(&bytes).bytes("f", 3),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(matches!(
            Reader::new(&[2]).bool("b"),
            Err(DecodeError::InvalidValue { .. })
        ));
        assert!(matches!(
            Reader::new(&[1, 2]).u32("t"),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
