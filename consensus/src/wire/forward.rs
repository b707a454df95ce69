//! The `/tpw/forward/1` protocol: a follower or observer hands verified envelopes to the
//! leader, which admits them again and queues them for its next block.
//!
//! Request: u32 count, then each envelope as u32 length + bytes. Reply: a tag byte, 0 queued,
//! 1 not leader (u64 leader id, 0 if unknown), 2 overloaded, 3 stopping, 4 refused (code and
//! message strings).

use tpw_contracts::codec::{DecodeError, Reader, Writer};
use tpw_contracts::limits::ENVELOPE_SIZE_MAX;

use crate::limits::PEER_TEXT_SIZE_MAX as TEXT_SIZE_MAX;

/// Why the leader did not queue a forwarded submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardRefusal {
    /// The peer does not lead; it names the leader it knows.
    NotLeader(Option<u64>),
    /// The leader's queues are full.
    Overloaded,
    /// The leader is stopping.
    Stopping,
    /// The leader could not be reached (decided by the forwarding node, never sent: it
    /// encodes as [`ForwardRefusal::Stopping`]).
    Unreachable,
    /// The leader's admission refused the submission.
    Refused {
        /// Stable error code.
        code: String,
        /// What was wrong.
        message: String,
    },
}

/// The outcome of forwarding.
pub type ForwardReply = Result<(), ForwardRefusal>;

/// Why a forwarded submission does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardRequestError {
    /// The frame is not a count followed by that many envelopes.
    #[error("{0}")]
    Malformed(#[from] DecodeError),
    /// No envelope, or more than one submission may carry.
    #[error("{count} envelopes; 1 to {envelopes_max} allowed")]
    Count {
        /// The count the frame declares.
        count: usize,
        /// The most one submission may carry.
        envelopes_max: usize,
    },
}

/// Encodes a forwarded submission.
pub fn encode_request(envelopes: &[Vec<u8>]) -> Vec<u8> {
    let mut writer = Writer::with_capacity(
        envelopes
            .iter()
            .map(|envelope| envelope.len() + 4)
            .sum::<usize>()
            + 4,
    );
    writer.u32(envelopes.len() as u32);
    for envelope in envelopes {
        writer.bytes(envelope);
    }
    writer.finish()
}

/// Decodes a forwarded submission of 1 to `envelopes_max` envelopes, each at most
/// [`ENVELOPE_SIZE_MAX`] bytes (what they contain is admission's business).
pub fn decode_request(
    bytes: &[u8],
    envelopes_max: usize,
) -> Result<Vec<Vec<u8>>, ForwardRequestError> {
    let mut reader = Reader::new(bytes);
    let count = reader.u32("forward.count")? as usize;
    if count == 0 || count > envelopes_max {
        return Err(ForwardRequestError::Count {
            count,
            envelopes_max,
        });
    }
    let mut envelopes = Vec::with_capacity(count);
    for _ in 0..count {
        envelopes.push(
            reader
                .bytes("forward.envelope", ENVELOPE_SIZE_MAX)?
                .to_vec(),
        );
    }
    reader.finish()?;
    Ok(envelopes)
}

/// Encodes the leader's answer; a refusal's code and message are each cut to at most
/// [`TEXT_SIZE_MAX`] bytes, at a character boundary.
pub fn encode_reply(reply: &ForwardReply) -> Vec<u8> {
    let mut writer = Writer::with_capacity(64);
    match reply {
        Ok(()) => writer.u8(0),
        Err(ForwardRefusal::NotLeader(leader)) => {
            writer.u8(1);
            writer.u64(leader.unwrap_or(0));
        }
        Err(ForwardRefusal::Overloaded) => writer.u8(2),
        Err(ForwardRefusal::Stopping | ForwardRefusal::Unreachable) => writer.u8(3),
        Err(ForwardRefusal::Refused { code, message }) => {
            writer.u8(4);
            writer.string(cut_text(code));
            writer.string(cut_text(message));
        }
    }
    writer.finish()
}

/// The longest start of `text` of at most [`TEXT_SIZE_MAX`] bytes that ends at a character
/// boundary.
fn cut_text(text: &str) -> &str {
    let end = (0..=text.len().min(TEXT_SIZE_MAX))
        .rev()
        .find(|index| text.is_char_boundary(*index))
        .unwrap_or(0);
    &text[..end]
}

/// Decodes the leader's answer; bytes that are no answer become the refusal
/// `malformed_forward_reply`, so the caller always gets a reply to act on.
pub fn decode_reply(bytes: &[u8]) -> ForwardReply {
    let mut reader = Reader::new(bytes);
    let malformed = |error: String| ForwardRefusal::Refused {
        code: "malformed_forward_reply".into(),
        message: error,
    };
    let reply = match reader.u8("reply.tag") {
        Ok(0) => Ok(()),
        Ok(1) => match reader.u64("reply.leader") {
            Ok(0) => Err(ForwardRefusal::NotLeader(None)),
            Ok(leader) => Err(ForwardRefusal::NotLeader(Some(leader))),
            Err(error) => Err(malformed(error.to_string())),
        },
        Ok(2) => Err(ForwardRefusal::Overloaded),
        Ok(3) => Err(ForwardRefusal::Stopping),
        Ok(4) => match (
            reader.string("reply.code", TEXT_SIZE_MAX),
            reader.string("reply.message", TEXT_SIZE_MAX),
        ) {
            (Ok(code), Ok(message)) => Err(ForwardRefusal::Refused { code, message }),
            _ => Err(malformed("refusal text does not decode".into())),
        },
        Ok(tag) => Err(malformed(format!("unknown reply tag {tag}"))),
        Err(error) => Err(malformed(error.to_string())),
    };
    match reader.finish() {
        Ok(()) => reply,
        Err(error) => Err(malformed(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip_and_garbage_is_refused() {
        // Proves the forward frames decode to what was encoded and bad frames are errors, not panics.
        let envelopes = vec![vec![1, 2, 3], vec![4]];
        assert_eq!(
            decode_request(&encode_request(&envelopes), 4096).unwrap(),
            envelopes
        );
        assert!(decode_request(&[], 4096).is_err());
        assert!(decode_request(&encode_request(&[]), 4096).is_err());
        assert_eq!(
            decode_request(&encode_request(&envelopes), 1)
                .unwrap_err()
                .to_string(),
            "2 envelopes; 1 to 1 allowed"
        );
        let replies = [
            Ok(()),
            Err(ForwardRefusal::NotLeader(Some(3))),
            Err(ForwardRefusal::NotLeader(None)),
            Err(ForwardRefusal::Overloaded),
            Err(ForwardRefusal::Stopping),
            Err(ForwardRefusal::Refused {
                code: "bad_signature".into(),
                message: "é".repeat(3000),
            }),
        ];
        for reply in replies {
            let decoded = decode_reply(&encode_reply(&reply));
            match (&reply, &decoded) {
                (
                    Err(ForwardRefusal::Refused { code, .. }),
                    Err(ForwardRefusal::Refused { code: got, .. }),
                ) => assert_eq!(code, got),
                _ => assert_eq!(decoded, reply),
            }
        }
        // Found by fuzz/peer_messages: a code over the limit whose cut fell inside a
        // character panicked; both texts are now cut at a character boundary.
        let long = Err(ForwardRefusal::Refused {
            code: format!("x{}", "é".repeat(3000)),
            message: "m".into(),
        });
        let Err(ForwardRefusal::Refused { code, .. }) = decode_reply(&encode_reply(&long)) else {
            panic!("a refusal decodes as a refusal");
        };
        assert_eq!(code.len(), TEXT_SIZE_MAX - 1);
        assert!(matches!(
            decode_reply(&[9]),
            Err(ForwardRefusal::Refused { .. })
        ));
        assert!(matches!(
            decode_reply(&[0, 0]),
            Err(ForwardRefusal::Refused { .. })
        ));
    }
}
