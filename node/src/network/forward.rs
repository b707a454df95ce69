//! The `/tpw/forward/1` protocol: a follower or observer hands verified envelopes to the
//! leader, which admits them again and queues them for its next block.
//!
//! Request: u32 count, then each envelope as u32 length + bytes. Reply: a tag byte, 0 queued,
//! 1 not leader (u64 leader id, 0 if unknown), 2 overloaded, 3 stopping, 4 refused (code and
//! message strings).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tpw_contracts::codec::{Reader, Writer};
use tpw_contracts::limits::ENVELOPE_SIZE_MAX;

/// Why the leader did not queue a forwarded submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardRefusal {
    /// The peer does not lead; it names the leader it knows.
    NotLeader(Option<u64>),
    /// The leader's queues are full.
    Overloaded,
    /// The leader is stopping.
    Stopping,
    /// The leader could not be reached.
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

/// How a node serves forwarded submissions (installed by the API).
pub type ForwardHandler =
    Arc<dyn Fn(Vec<Vec<u8>>) -> Pin<Box<dyn Future<Output = ForwardReply> + Send>> + Send + Sync>;

const TEXT_SIZE_MAX: usize = 4096;

pub(super) fn encode_request(envelopes: &[Vec<u8>]) -> Vec<u8> {
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

pub(super) fn decode_request(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut reader = Reader::new(bytes);
    let count = reader
        .u32("forward.count")
        .map_err(|error| error.to_string())? as usize;
    if count == 0 || count > crate::limits::SUBMIT_TRANSACTIONS_MAX {
        return Err(format!(
            "{count} envelopes; 1 to {} allowed",
            crate::limits::SUBMIT_TRANSACTIONS_MAX
        ));
    }
    let mut envelopes = Vec::with_capacity(count);
    for _ in 0..count {
        envelopes.push(
            reader
                .bytes("forward.envelope", ENVELOPE_SIZE_MAX)
                .map_err(|error| error.to_string())?
                .to_vec(),
        );
    }
    reader.finish().map_err(|error| error.to_string())?;
    Ok(envelopes)
}

pub(super) fn encode_reply(reply: &ForwardReply) -> Vec<u8> {
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
            writer.string(&code[..code.len().min(TEXT_SIZE_MAX)]);
            let cut = (0..=message.len().min(TEXT_SIZE_MAX))
                .rev()
                .find(|index| message.is_char_boundary(*index))
                .unwrap_or(0);
            writer.string(&message[..cut]);
        }
    }
    writer.finish()
}

pub(super) fn decode_reply(bytes: &[u8]) -> ForwardReply {
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
            decode_request(&encode_request(&envelopes)).unwrap(),
            envelopes
        );
        assert!(decode_request(&[]).is_err());
        assert!(decode_request(&encode_request(&[])).is_err());
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
