//! Which Raft messages a node accepts from a peer on `/tpw/raft/1`: the frame must decode as a
//! raft-rs message, name the sending peer's own node id, and be a kind that peer's role may
//! send. Who the peer is (its authenticated node id and role) is the transport's to know.

use protobuf::Message as _;
use raft::prelude::{Message, MessageType};

/// Why a peer's Raft message was dropped.
#[derive(Debug, thiserror::Error)]
pub enum RaftAdmissionError {
    /// The frame is not a protobuf Raft message.
    #[error("malformed raft message: {0}")]
    Malformed(#[from] protobuf::ProtobufError),
    /// It claims to come from another node than the peer that sent it.
    #[error("raft message claims sender {claimed}")]
    WrongSender {
        /// The node id it claims.
        claimed: u64,
    },
    /// A kind this peer may not send (see [`peer_may_send`]).
    #[error("raft message of kind {0:?}, which this peer may not send")]
    KindNotAllowed(MessageType),
}

/// Which Raft messages a peer may send. Proposals never travel between nodes (submissions go on
/// /tpw/forward/1 and are admitted by the leader), local message kinds never come from outside,
/// and an observer, which never votes or leads, may only answer the leader.
pub fn peer_may_send(kind: MessageType, observer: bool) -> bool {
    use MessageType::*;
    match kind {
        MsgAppendResponse | MsgHeartbeatResponse => true,
        MsgAppend
        | MsgHeartbeat
        | MsgSnapshot
        | MsgTimeoutNow
        | MsgRequestVote
        | MsgRequestVoteResponse
        | MsgRequestPreVote
        | MsgRequestPreVoteResponse => !observer,
        _ => false,
    }
}

/// Decodes a Raft message received from node `sender` (an observer when `observer`), and
/// accepts it only if it names `sender` as its origin and is a kind that node may send.
pub fn admit_raft_message(
    bytes: &[u8],
    sender: u64,
    observer: bool,
) -> Result<Message, RaftAdmissionError> {
    let message = Message::parse_from_bytes(bytes)?;
    if message.from != sender {
        return Err(RaftAdmissionError::WrongSender {
            claimed: message.from,
        });
    }
    let kind = message.get_msg_type();
    if !peer_may_send(kind, observer) {
        return Err(RaftAdmissionError::KindNotAllowed(kind));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(kind: MessageType, from: u64) -> Vec<u8> {
        let mut message = Message::default();
        message.set_msg_type(kind);
        message.from = from;
        message.to = 1;
        message.write_to_bytes().unwrap()
    }

    #[test]
    fn only_well_formed_messages_from_their_sender_of_an_allowed_kind_pass() {
        // Proves each of the three admission rules refuses on its own, and that a voter's
        // ordinary message passes.
        let admitted = admit_raft_message(&bytes(MessageType::MsgAppend, 2), 2, false).unwrap();
        assert_eq!(admitted.get_msg_type(), MessageType::MsgAppend);
        assert!(matches!(
            admit_raft_message(&[0xff, 0xff, 0xff], 2, false),
            Err(RaftAdmissionError::Malformed(_))
        ));
        assert!(matches!(
            admit_raft_message(&bytes(MessageType::MsgAppend, 3), 2, false),
            Err(RaftAdmissionError::WrongSender { claimed: 3 })
        ));
        assert!(matches!(
            admit_raft_message(&bytes(MessageType::MsgPropose, 2), 2, false),
            Err(RaftAdmissionError::KindNotAllowed(MessageType::MsgPropose))
        ));
        assert!(matches!(
            admit_raft_message(&bytes(MessageType::MsgRequestVote, 2), 2, true),
            Err(RaftAdmissionError::KindNotAllowed(_))
        ));
        assert!(admit_raft_message(&bytes(MessageType::MsgAppendResponse, 2), 2, true).is_ok());
    }
}
