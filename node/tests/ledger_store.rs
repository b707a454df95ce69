//! Ledger store conformance: the node's RocksDB ledger store (with its record cache) answers
//! exactly like the replica engine's in-memory store, which the simulator runs on, through the
//! same sequences of applied blocks, skipped entries, configuration changes, own-key rotation
//! marks and a snapshot install, and again after the RocksDB store is reopened.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tpw_consensus::raft_types::{ConfState, Snapshot};
use tpw_consensus::replica::StagedState;
use tpw_consensus::wire::snapshot::SnapshotDescriptor;
use tpw_consensus::{LogPosition, LogStore, MemLedger, MemLogStore, ReplicaLedger};
use tpw_contracts::{apply_block, Genesis, Proposal};
use tpw_node::storage::{Db, LedgerStore, RaftLogStore, StagedSnapshot, Staging};

/// Everything a store answers that the engine reads.
fn observe<L: LogStore>(store: &impl ReplicaLedger<L>, top: u64) -> Vec<String> {
    let head = store.head();
    let mut seen = vec![
        format!("applied {}", store.applied_index()),
        format!(
            "head {} {} {} {}",
            head.height,
            hex::encode(head.hash),
            head.time_ms,
            hex::encode(head.commitment.root())
        ),
        format!("rekey {:?}", store.own_rekey_index().unwrap()),
    ];
    for height in 0..=top {
        seen.push(format!(
            "hash {height} {:?}",
            store.header_hash(height).unwrap().map(hex::encode)
        ));
    }
    for (key, value) in store.scan(&[0], &[0xff; 8], usize::MAX).unwrap() {
        seen.push(format!(
            "record {} {}",
            hex::encode(&key),
            hex::encode(&value)
        ));
        // Point reads, through the cache for the hot record kinds.
        assert_eq!(store.get(&key).unwrap(), Some(value));
    }
    assert_eq!(store.get(b"Zmissing").unwrap(), None);
    seen
}

/// One step of a sequence, applied to both stores alike.
enum Step {
    Block(u128),
    Skip,
    Conf(Vec<u64>, Vec<u64>),
    Rekey(Option<u64>),
}

struct Pair {
    rocks: LedgerStore,
    log: RaftLogStore,
    mem: MemLedger,
    mem_log: MemLogStore,
    db: Db,
    index: u64,
}

impl Pair {
    fn apply(&mut self, step: &Step, network: [u8; 32], acme: &ed25519_dalek::SigningKey) {
        self.index += 1;
        let position = LogPosition {
            index: self.index,
            term: 2,
        };
        match step {
            Step::Block(id) => {
                let proposal = Proposal {
                    attestation: None,
                    proposer_time_ms: 1_800_000_000_000 + self.index * 1_000,
                    transactions: vec![sign(
                        network,
                        acme,
                        payment(*id, account_of(3, EUR), account_of(5, EUR), EUR, 7),
                    )],
                    webhooks: Vec::new(),
                };
                let bytes = proposal.to_bytes();
                let head = ReplicaLedger::<RaftLogStore>::head(&self.rocks).clone();
                let outcome = apply_block(&self.rocks, &head, &proposal, &|_| false).unwrap();
                let from_mem = apply_block(&self.mem, &head, &proposal, &|_| false).unwrap();
                assert_eq!(
                    outcome.head.hash, from_mem.head.hash,
                    "both states apply alike"
                );
                ReplicaLedger::<RaftLogStore>::commit_block(
                    &mut self.rocks,
                    position,
                    &bytes,
                    &outcome,
                    &[],
                )
                .unwrap();
                ReplicaLedger::<MemLogStore>::commit_block(
                    &mut self.mem,
                    position,
                    &bytes,
                    &outcome,
                    &[],
                )
                .unwrap();
            }
            Step::Skip => {
                ReplicaLedger::<RaftLogStore>::skip_entry(&mut self.rocks, self.index).unwrap();
                ReplicaLedger::<MemLogStore>::skip_entry(&mut self.mem, self.index).unwrap();
            }
            Step::Conf(voters, learners) => {
                let conf = ConfState::from((voters.clone(), learners.clone()));
                ReplicaLedger::<RaftLogStore>::record_conf_change(
                    &mut self.rocks,
                    self.index,
                    &self.log,
                    &conf,
                )
                .unwrap();
                self.mem
                    .record_conf_change(self.index, &self.mem_log, &conf)
                    .unwrap();
                assert_eq!(self.log.conf_state(), conf);
            }
            Step::Rekey(index) => {
                self.index -= 1;
                ReplicaLedger::<RaftLogStore>::record_own_rekey(&mut self.rocks, *index).unwrap();
                ReplicaLedger::<MemLogStore>::record_own_rekey(&mut self.mem, *index).unwrap();
            }
        }
    }

    fn reopen(&mut self, genesis: &Genesis) {
        self.rocks = LedgerStore::open(self.db.clone(), genesis).unwrap();
    }

    fn compare(&self, top: u64) {
        assert_eq!(
            observe::<RaftLogStore>(&self.rocks, top),
            observe::<MemLogStore>(&self.mem, top)
        );
    }
}

#[test]
fn the_rocksdb_ledger_store_answers_like_the_in_memory_one() {
    // Proves the simulator's ledger store is a faithful model of the node's: on the same
    // sequence the two agree on head, applied index, header hashes, every record (point reads
    // through the cache and scans) and the own-key mark, after every step and after reopening.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let genesis = tpw_node::node::load_genesis(&config.genesis_file).unwrap();
    let network = genesis.compute_network_id().unwrap();
    let acme = key(folder.path(), "acme");
    let db = Db::open(&folder.path().join("conformance-db")).unwrap();
    let built = genesis.build().unwrap();
    let voters: Vec<u64> = vec![1];
    let mut pair = Pair {
        rocks: LedgerStore::open(db.clone(), &genesis).unwrap(),
        log: RaftLogStore::open(db.clone(), voters.clone(), Vec::new()).unwrap(),
        mem: MemLedger::genesis(&built),
        mem_log: MemLogStore::new(voters, Vec::new()),
        db,
        index: 0,
    };
    pair.compare(0);
    let steps = [
        Step::Block(1),
        Step::Skip,
        Step::Block(2),
        Step::Conf(vec![1], vec![2]),
        Step::Block(2),
        Step::Rekey(Some(5)),
        Step::Block(3),
        Step::Conf(vec![1, 2], Vec::new()),
        Step::Skip,
        Step::Block(4),
        Step::Rekey(None),
        Step::Block(5),
    ];
    let mut top = 0;
    for (number, step) in steps.iter().enumerate() {
        pair.apply(step, network, &acme);
        if matches!(step, Step::Block(_)) {
            top += 1;
        }
        pair.compare(top + 1);
        if number % 3 == 2 {
            pair.reopen(&genesis);
            pair.compare(top + 1);
        }
    }
    pair.reopen(&genesis);
    pair.compare(top + 1);
}

#[test]
fn a_snapshot_installs_alike_in_both_stores_and_survives_reopening() {
    // Proves the install path agrees: a snapshot of a more advanced ledger, staged in each
    // store's own way, replaces state and head and leaves the same gap below it in both.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let genesis = tpw_node::node::load_genesis(&config.genesis_file).unwrap();
    let network = genesis.compute_network_id().unwrap();
    let acme = key(folder.path(), "acme");
    let built = genesis.build().unwrap();
    // The source: an in-memory ledger five blocks ahead.
    let mut source = MemLedger::genesis(&built);
    for index in 1..=5u64 {
        let proposal = Proposal {
            attestation: None,
            proposer_time_ms: 1_800_000_000_000 + index * 1_000,
            transactions: vec![sign(
                network,
                &acme,
                payment(
                    u128::from(index),
                    account_of(3, EUR),
                    account_of(5, EUR),
                    EUR,
                    3,
                ),
            )],
            webhooks: Vec::new(),
        };
        let head = ReplicaLedger::<MemLogStore>::head(&source).clone();
        let outcome = apply_block(&source, &head, &proposal, &|_| false).unwrap();
        ReplicaLedger::<MemLogStore>::commit_block(
            &mut source,
            LogPosition { index, term: 1 },
            &proposal.to_bytes(),
            &outcome,
            &[],
        )
        .unwrap();
    }
    let head = ReplicaLedger::<MemLogStore>::head(&source).clone();
    let descriptor = SnapshotDescriptor {
        network_id: network,
        height: head.height,
        head_hash: head.hash,
        state_root: head.commitment.root(),
        applied_index: 5,
    };
    let records: Vec<(Vec<u8>, Vec<u8>)> = source
        .state()
        .records()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let block = source.block(head.height).unwrap().to_vec();
    let mut snapshot = Snapshot::default();
    snapshot.set_data(descriptor.to_bytes().into());
    snapshot.mut_metadata().index = 5;
    snapshot.mut_metadata().term = 1;
    snapshot
        .mut_metadata()
        .set_conf_state(ConfState::from((vec![1], Vec::new())));

    let db = Db::open(&folder.path().join("install-db")).unwrap();
    let mut rocks = LedgerStore::open(db.clone(), &genesis).unwrap();
    let log = RaftLogStore::open(db.clone(), vec![1], Vec::new()).unwrap();
    let staging = Staging::new(db.clone());
    staging.write_records(&records).unwrap();
    staging
        .seal(&StagedSnapshot {
            descriptor: descriptor.clone(),
            head: head.clone(),
            block: block.clone(),
        })
        .unwrap();
    let mut mem = MemLedger::genesis(&built);
    let mem_log = MemLogStore::new(vec![1], Vec::new());
    mem.stage(StagedState {
        descriptor: descriptor.to_bytes(),
        applied_index: 5,
        records,
        head,
        block,
    });
    ReplicaLedger::<RaftLogStore>::install_snapshot(&mut rocks, &log, &snapshot).unwrap();
    ReplicaLedger::<MemLogStore>::install_snapshot(&mut mem, &mem_log, &snapshot).unwrap();
    let rocks_view = observe::<RaftLogStore>(&rocks, 6);
    assert_eq!(rocks_view, observe::<MemLogStore>(&mem, 6));
    assert_eq!(
        tpw_node::storage::block_gaps(&db).unwrap(),
        mem.gaps().to_vec(),
        "the same blocks are left for backfill"
    );
    assert_eq!(mem.gaps(), &[(1, 4)]);
    drop(rocks);
    let reopened = LedgerStore::open(db.clone(), &genesis).unwrap();
    assert_eq!(observe::<RaftLogStore>(&reopened, 6), rocks_view);
}
