//! Log store conformance: the RocksDB Raft log answers exactly like raft-rs' in-memory store
//! through appends, conflicting overwrites and hard-state changes, and again after reopening.
#![allow(clippy::unwrap_used)]

use tpw_consensus::raft_types::{Entry, HardState};
use tpw_consensus::{GetEntriesContext, LogStore, MemLogStore, Storage};
use tpw_node::storage::{Db, RaftLogStore};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("entry {index} of term {term}").into_bytes().into(),
        ..Default::default()
    }
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

/// Everything a store answers about indexes 0..=12.
fn observe(store: &impl Storage) -> Vec<String> {
    let mut seen = vec![
        format!("first {:?}", store.first_index().ok()),
        format!("last {:?}", store.last_index().ok()),
        format!(
            "state {:?}",
            store
                .initial_state()
                .map(|state| (state.hard_state, state.conf_state))
                .ok()
        ),
    ];
    for index in 0..=12 {
        seen.push(format!("term {index} {:?}", store.term(index).ok()));
    }
    let last = store.last_index().unwrap();
    for low in 1..=last {
        let entries = store
            .entries(low, last + 1, None, GetEntriesContext::empty(false))
            .unwrap();
        seen.push(format!(
            "entries {low} {:?}",
            entries
                .iter()
                .map(|entry| (entry.index, entry.term))
                .collect::<Vec<_>>()
        ));
        let limited = store
            .entries(low, last + 1, Some(1), GetEntriesContext::empty(false))
            .unwrap();
        seen.push(format!("limited {low} {}", limited.len()));
    }
    seen
}

#[test]
fn rocksdb_log_store_matches_the_in_memory_store() {
    // Proves appends, suffix overwrites, hard state and commit behave as raft-rs' own store, and survive reopening.
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("db");
    let memory = MemLogStore::new(vec![1, 2, 3], vec![4]);
    let rocks = RaftLogStore::open(Db::open(&path).unwrap(), vec![1, 2, 3], vec![4]).unwrap();
    let steps: Vec<(Vec<Entry>, Option<HardState>)> = vec![
        (
            (1..=5).map(|index| entry(index, 1)).collect(),
            Some(hard_state(1, 1, 0)),
        ),
        (
            (6..=8).map(|index| entry(index, 2)).collect(),
            Some(hard_state(2, 2, 3)),
        ),
        // A new leader overwrites a conflicting suffix with a shorter one.
        (vec![entry(5, 3), entry(6, 3)], Some(hard_state(3, 3, 4))),
        ((7..=10).map(|index| entry(index, 3)).collect(), None),
        (vec![entry(9, 4)], Some(hard_state(4, 1, 8))),
    ];
    for (entries, state) in steps {
        memory.persist(&entries, state.as_ref()).unwrap();
        rocks.persist(&entries, state.as_ref()).unwrap();
        assert_eq!(observe(&rocks), observe(&memory));
    }
    memory.persist_commit(9).unwrap();
    rocks.persist_commit(9).unwrap();
    assert_eq!(observe(&rocks), observe(&memory));
    let expected = observe(&memory);
    drop(rocks);
    let reopened = RaftLogStore::open(Db::open(&path).unwrap(), vec![9], vec![]).unwrap();
    assert_eq!(
        observe(&reopened),
        expected,
        "a reopened log is the same log, whatever the genesis says"
    );
}

#[test]
fn compaction_drops_the_prefix_keeps_the_term_at_the_point_and_survives_reopening() {
    // Proves compaction removes entries up to the point (reads there say "compacted"), keeps
    // the later entries and the term of the point itself (raft needs it to append after the
    // point), and that a reopened log starts at the same place.
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("db");
    let rocks = RaftLogStore::open(Db::open(&path).unwrap(), vec![1], vec![]).unwrap();
    let entries: Vec<Entry> = (1..=4)
        .map(|index| entry(index, 1))
        .chain((5..=10).map(|index| entry(index, 2)))
        .collect();
    rocks
        .persist(&entries, Some(&hard_state(2, 1, 10)))
        .unwrap();
    rocks.compact(6).unwrap();
    rocks.compact(3).unwrap();
    let check = |store: &RaftLogStore, last: u64| {
        assert_eq!(store.first_index().unwrap(), 7);
        assert_eq!(store.last_index().unwrap(), last);
        assert_eq!(store.compacted_index(), 6);
        assert_eq!(store.term(6).unwrap(), 2);
        assert_eq!(store.term(7).unwrap(), 2);
        assert!(format!("{:?}", store.term(5)).contains("Compacted"));
        assert!(store
            .entries(6, 11, None, GetEntriesContext::empty(false))
            .is_err());
        let kept = store
            .entries(7, 11, None, GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(
            kept.iter().map(|entry| entry.index).collect::<Vec<_>>(),
            vec![7, 8, 9, 10]
        );
    };
    check(&rocks, 10);
    rocks.persist(&[entry(11, 3)], None).unwrap();
    assert_eq!(rocks.term(11).unwrap(), 3);
    drop(rocks);
    let reopened = RaftLogStore::open(Db::open(&path).unwrap(), vec![1], vec![]).unwrap();
    check(&reopened, 11);
    assert_eq!(reopened.term(11).unwrap(), 3);
}
