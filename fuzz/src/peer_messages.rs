//! What a node decodes from its peers: Raft messages on `/tpw/raft/1` (with the admission check
//! and what the node then reads out of them: entries and the snapshot descriptor), forwarded
//! submissions and their replies on `/tpw/forward/1`, and the snapshot protocol on
//! `/tpw/snapshot/1` (with the block records it carries). Every decoder must refuse bad bytes
//! without panicking, and what decodes must encode back to an equal value.

use protobuf::Message as _;
use tpw_consensus::raft_types::{Entry, Message, MessageType};
use tpw_consensus::wire::forward::{
    decode_reply, decode_request, encode_reply, encode_request, ForwardRefusal,
};
use tpw_consensus::wire::{
    admit_raft_message, SnapshotDescriptor, SnapshotRequest, SnapshotResponse,
};
use tpw_consensus::{classify, EntryKind};
use tpw_contracts::BlockRecord;

/// Envelopes in one forwarded submission: the node's `SUBMIT_TRANSACTIONS_MAX`.
const FORWARD_ENVELOPES_MAX: usize = 4096;

/// The property, for one input: panics when it does not hold.
pub fn run(data: &[u8]) {
    raft_message(data);
    forward(data);
    snapshot(data);
}

/// A peer's Raft message, admitted as the node admits it, from a voter and from an observer.
fn raft_message(data: &[u8]) {
    let Ok(parsed) = Message::parse_from_bytes(data) else {
        assert!(admit_raft_message(data, 1, false).is_err());
        return;
    };
    for observer in [false, true] {
        let Ok(message) = admit_raft_message(data, parsed.from, observer) else {
            continue;
        };
        assert_eq!(message, parsed);
        for entry in message.get_entries() {
            check_entry(entry);
        }
        if message.get_msg_type() == MessageType::MsgSnapshot {
            let descriptor_bytes = message.get_snapshot().get_data();
            if let Ok(descriptor) = SnapshotDescriptor::from_bytes(descriptor_bytes) {
                assert_eq!(
                    descriptor.to_bytes(),
                    descriptor_bytes,
                    "canonical descriptor"
                );
            }
        }
    }
    if parsed.from != u64::MAX {
        assert!(admit_raft_message(data, parsed.from + 1, false).is_err());
    }
}

/// An entry the leader replicates: the log store writes it and reads it back, and the apply
/// path classifies it.
fn check_entry(entry: &Entry) {
    let bytes = entry.write_to_bytes().expect("an entry encodes");
    let back = Entry::parse_from_bytes(&bytes).expect("an encoded entry decodes");
    assert_eq!(&back, entry, "an entry survives the log store");
    if let EntryKind::Block(proposal) = classify(entry) {
        assert_eq!(
            proposal.to_bytes(),
            entry.data.as_ref(),
            "canonical proposal"
        );
    }
}

/// Forwarded submissions, their replies, and refusals of any text.
fn forward(data: &[u8]) {
    if let Ok(envelopes) = decode_request(data, FORWARD_ENVELOPES_MAX) {
        assert!(!envelopes.is_empty() && envelopes.len() <= FORWARD_ENVELOPES_MAX);
        assert_eq!(encode_request(&envelopes), data, "canonical request");
    }
    let reply = decode_reply(data);
    assert_eq!(
        decode_reply(&encode_reply(&reply)),
        reply,
        "a reply survives"
    );
    // The leader sends back refusals whose code and message come from its admission; the
    // encoder cuts long ones and must not panic on any text.
    let text = String::from_utf8_lossy(data);
    let repeat = usize::from(data.first().copied().unwrap_or(0) % 8) + 1;
    let refusal = ForwardRefusal::Refused {
        code: text.repeat(repeat),
        message: text.repeat(repeat),
    };
    let _ = decode_reply(&encode_reply(&Err(refusal)));
}

/// Snapshot requests and responses, and the block records a response carries.
fn snapshot(data: &[u8]) {
    if let Ok(request) = SnapshotRequest::from_bytes(data) {
        assert_eq!(
            SnapshotRequest::from_bytes(&request.to_bytes()).as_ref(),
            Ok(&request),
            "a request survives"
        );
    }
    if let Ok(response) = SnapshotResponse::from_bytes(data) {
        assert_eq!(response.to_bytes(), data, "canonical response");
        if let SnapshotResponse::Blocks(blocks) = &response {
            for block in blocks {
                if let Ok(record) = BlockRecord::from_bytes(block) {
                    assert_eq!(&record.to_bytes(), block, "canonical block record");
                }
            }
        }
    }
    if let Ok(descriptor) = SnapshotDescriptor::from_bytes(data) {
        assert_eq!(descriptor.to_bytes(), data, "canonical descriptor");
    }
}
