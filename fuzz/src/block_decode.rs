//! Blocks: the proposal every node decodes from a committed Raft entry, the derived header, and
//! the block record peers send to a node catching up through a snapshot. Decoding must refuse
//! anything that is not one canonical encoding and never panic; what decodes must re-encode to
//! the input; and the consistency check a fetched block record goes through must not panic
//! either, whatever the record claims. Inclusion proofs (files a verifier is handed) likewise.

use tpw_consensus::raft_types::{Entry, EntryType};
use tpw_consensus::{classify, EntryKind};
use tpw_contracts::{check_block_record, BlockHeader, BlockRecord, Proposal};

/// The property, for one input: panics when it does not hold.
pub fn run(data: &[u8]) {
    if let Ok(proposal) = Proposal::from_bytes(data) {
        assert_eq!(proposal.to_bytes(), data, "canonical proposal");
        let mut entry = Entry::default();
        entry.set_entry_type(EntryType::EntryNormal);
        entry.data = data.to_vec().into();
        assert!(
            matches!(classify(&entry), EntryKind::Block(ref block) if *block == proposal),
            "a committed entry holding a proposal is that block"
        );
    }
    if let Ok(header) = BlockHeader::from_bytes(data) {
        assert_eq!(header.to_bytes(), data, "canonical header");
    }
    if let Ok(record) = BlockRecord::from_bytes(data) {
        assert_eq!(record.to_bytes(), data, "canonical block record");
        assert_eq!(record.receipts.len(), record.proposal.transactions.len());
        // The receiver and backfill check a fetched record against the network it claims
        // (their own network id when it is theirs).
        let _ = check_block_record(
            &record.header.network_id,
            &record.header,
            &record.proposal,
            &record.receipts,
            &record.effects,
        );
    }
    if let Ok(proof) = tpw_contracts::proof::InclusionProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data, "canonical inclusion proof");
        let network = proof
            .headers
            .first()
            .map(|header| header.network_id)
            .unwrap_or_default();
        let _ = proof.verify(&network, None);
    }
}
