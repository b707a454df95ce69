//! The Raft log and hard state in RocksDB: synced writes, checksummed records, and an
//! in-memory index of term runs so `term()` never touches the disk.

use super::db::{Db, StorageError, CF_RAFT_LOG, CF_RAFT_STATE};
use super::record::{open_record, seal_record};
use protobuf::Message as _;
use rocksdb::{IteratorMode, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use tpw_consensus::raft_types::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use tpw_consensus::{
    GetEntriesContext, LogStore, LogStoreError, RaftState, Storage,
    StorageError as RaftStorageError,
};

const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_CONF_STATE: &[u8] = b"conf_state";
const KEY_SNAPSHOT: &[u8] = b"snapshot";
const TERM_RUN_PREFIX: u8 = b't';

fn term_run_key(start: u64) -> Vec<u8> {
    let mut key = vec![TERM_RUN_PREFIX];
    key.extend_from_slice(&start.to_be_bytes());
    key
}

struct LogState {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot_index: u64,
    snapshot_term: u64,
    last_index: u64,
    /// First index of each run of entries with the same term, mapped to that term.
    term_runs: BTreeMap<u64, u64>,
}

/// A point-in-time ledger snapshot this node can send (the engine's rules say which may go).
pub use tpw_consensus::replica::snapshot::SnapshotOffer;

/// Where the snapshot maker publishes its latest snapshot and where Raft asks for a new one.
#[derive(Default)]
pub struct SnapshotSlot {
    offer: Mutex<Option<(SnapshotOffer, std::time::Instant)>>,
    wanted: Mutex<bool>,
    signal: Condvar,
}

impl SnapshotSlot {
    /// The latest snapshot on offer.
    pub fn offer(&self) -> Option<SnapshotOffer> {
        self.offer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map(|(offer, _)| offer.clone())
    }
    /// The index of the latest snapshot if it was offered less than `hold` ago.
    pub fn held_offer(&self, hold: std::time::Duration) -> Option<u64> {
        self.offer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .filter(|(_, offered)| offered.elapsed() < hold)
            .map(|(offer, _)| offer.index)
    }
    /// Publishes a new snapshot. Requests made while it was being made are answered by it:
    /// should it not cover them, Raft asks again.
    pub fn publish(&self, offer: SnapshotOffer) {
        *self
            .wanted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = false;
        *self
            .offer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some((offer, std::time::Instant::now()));
    }
    /// Asks the maker for a fresh snapshot.
    pub fn want(&self) {
        *self
            .wanted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        self.signal.notify_all();
    }
    /// Waits up to `timeout` for a request; true (and the request taken) if there was one.
    pub fn wait_wanted(&self, timeout: std::time::Duration) -> bool {
        let wanted = self
            .wanted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (mut wanted, _) = self
            .signal
            .wait_timeout_while(wanted, timeout, |wanted| !*wanted)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *wanted)
    }
}

/// The node's [`LogStore`]; clones share one state.
#[derive(Clone)]
pub struct RaftLogStore {
    db: Db,
    state: Arc<RwLock<LogState>>,
    snapshots: Arc<SnapshotSlot>,
}

fn other(error: impl std::fmt::Display) -> raft::Error {
    raft::Error::Store(RaftStorageError::Other(error.to_string().into()))
}

fn decode_entry(bytes: &[u8]) -> Result<Entry, StorageError> {
    let payload = open_record(bytes, "raft log entry")?;
    Entry::parse_from_bytes(payload)
        .map_err(|error| StorageError::Corrupt(format!("raft log entry: {error}")))
}

impl RaftLogStore {
    /// Opens the log, initialising it with the genesis membership on first start.
    pub fn open(db: Db, voters: Vec<u64>, learners: Vec<u64>) -> Result<Self, StorageError> {
        let (conf_state, hard_state) = read_raft_states(&db, voters, learners)?;
        let (snapshot_index, snapshot_term) = read_snapshot_marker(&db)?;
        let term_runs = read_term_runs(&db)?;
        let last_index = read_last_index(&db, snapshot_index)?;
        let state = LogState {
            hard_state,
            conf_state,
            snapshot_index,
            snapshot_term,
            last_index,
            term_runs,
        };
        Ok(Self {
            db,
            state: Arc::new(RwLock::new(state)),
            snapshots: Arc::new(SnapshotSlot::default()),
        })
    }

    /// Where snapshots are offered and requested.
    pub fn snapshots(&self) -> &Arc<SnapshotSlot> {
        &self.snapshots
    }

    /// The index of the last entry compacted away (or installed by a snapshot); entries from
    /// the one after it are kept.
    pub fn compacted_index(&self) -> u64 {
        self.read_state().snapshot_index
    }

    /// Drops the entries up to and including `to`, which must be applied already. Log
    /// compaction: a peer that needs them later gets a snapshot of the state instead. Not
    /// synced, since losing it only keeps entries a little longer.
    pub fn compact(&self, to: u64) -> Result<(), StorageError> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if to <= state.snapshot_index {
            return Ok(());
        }
        assert!(to <= state.last_index, "compaction stays within the log");
        let term = state
            .term_runs
            .range(..=to)
            .next_back()
            .map(|(_, term)| *term)
            .ok_or_else(|| StorageError::Corrupt(format!("no term recorded for index {to}")))?;
        let raft_cf = self.db.cf(CF_RAFT_STATE);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.db.cf(CF_RAFT_LOG), index_key(0), index_key(to + 1));
        // The run holding `to` still answers for the entries after it; earlier runs go.
        let covering = state
            .term_runs
            .range(..=to)
            .next_back()
            .map(|(start, _)| *start);
        let stale: Vec<u64> = state
            .term_runs
            .range(..to)
            .map(|(start, _)| *start)
            .filter(|start| Some(*start) != covering)
            .collect();
        for start in &stale {
            batch.delete_cf(raft_cf, term_run_key(*start));
        }
        batch.put_cf(
            raft_cf,
            KEY_SNAPSHOT,
            seal_record(&snapshot_marker(to, term)),
        );
        self.db.rocks().write(batch)?;
        for start in stale {
            state.term_runs.remove(&start);
        }
        state.snapshot_index = to;
        state.snapshot_term = term;
        Ok(())
    }

    /// Adds to `batch` the log's side of installing a snapshot: the log is emptied and starts
    /// after the snapshot. The caller writes the batch (with the ledger's side, atomically) and
    /// then calls [`RaftLogStore::snapshot_installed`].
    pub fn snapshot_changes(
        &self,
        metadata: &SnapshotMetadata,
        batch: &mut WriteBatch,
    ) -> Result<HardState, StorageError> {
        let state = self.read_state();
        let log_cf = self.db.cf(CF_RAFT_LOG);
        let raft_cf = self.db.cf(CF_RAFT_STATE);
        batch.delete_range_cf(log_cf, index_key(0), index_key(u64::MAX));
        for start in state.term_runs.keys() {
            batch.delete_cf(raft_cf, term_run_key(*start));
        }
        batch.put_cf(
            raft_cf,
            KEY_SNAPSHOT,
            seal_record(&snapshot_marker(metadata.index, metadata.term)),
        );
        batch.put_cf(
            raft_cf,
            KEY_CONF_STATE,
            seal_record(&encode(metadata.get_conf_state())?),
        );
        let mut hard_state = state.hard_state.clone();
        hard_state.commit = hard_state.commit.max(metadata.index);
        hard_state.term = hard_state.term.max(metadata.term);
        batch.put_cf(raft_cf, KEY_HARD_STATE, seal_record(&encode(&hard_state)?));
        Ok(hard_state)
    }

    /// Updates the in-memory view after the batch from [`RaftLogStore::snapshot_changes`] was
    /// written.
    pub fn snapshot_installed(&self, metadata: &SnapshotMetadata, hard_state: HardState) {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.snapshot_index = metadata.index;
        state.snapshot_term = metadata.term;
        state.last_index = metadata.index;
        state.term_runs.clear();
        state.conf_state = metadata.get_conf_state().clone();
        state.hard_state = hard_state;
    }

    /// Adds to `batch` a restored folder's Raft state: the log emptied and starting after
    /// `index` (the backup's applied index, of term `term`), its configuration kept, and a hard
    /// state that has voted for no one (`tpw restore`).
    pub fn restored_state_changes(
        &self,
        index: u64,
        term: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        let mut metadata = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        metadata.set_conf_state(self.conf_state());
        self.snapshot_changes(&metadata, batch)?;
        let hard_state = HardState {
            term,
            commit: index,
            ..Default::default()
        };
        batch.put_cf(
            self.db.cf(CF_RAFT_STATE),
            KEY_HARD_STATE,
            seal_record(&encode(&hard_state)?),
        );
        Ok(())
    }

    /// Adds a new configuration to `batch`, which the caller writes together with the applied
    /// index of the entry that changed it (so a restart neither loses nor repeats it), then
    /// calls [`RaftLogStore::conf_state_changed`].
    pub fn conf_state_change(
        &self,
        conf_state: &ConfState,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        batch.put_cf(
            self.db.cf(CF_RAFT_STATE),
            KEY_CONF_STATE,
            seal_record(&encode(conf_state)?),
        );
        Ok(())
    }

    /// Updates the in-memory view after the batch from [`RaftLogStore::conf_state_change`]
    /// was written.
    pub fn conf_state_changed(&self, conf_state: ConfState) {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .conf_state = conf_state;
    }

    /// Raft's configuration as last applied.
    pub fn conf_state(&self) -> ConfState {
        self.read_state().conf_state.clone()
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, LogState> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> HardState {
        self.read_state().hard_state.clone()
    }
}

fn encode(message: &impl protobuf::Message) -> Result<Vec<u8>, StorageError> {
    message
        .write_to_bytes()
        .map_err(|error| StorageError::Corrupt(format!("protobuf encode: {error}")))
}

/// The configuration stored in a database (a checkpoint's, for its snapshot offer).
pub(crate) fn stored_conf_state(db: &Db) -> Result<Option<ConfState>, StorageError> {
    match db.rocks().get_cf(db.cf(CF_RAFT_STATE), KEY_CONF_STATE)? {
        None => Ok(None),
        Some(bytes) => ConfState::parse_from_bytes(open_record(&bytes, "raft state")?)
            .map(Some)
            .map_err(|error| StorageError::Corrupt(format!("conf state: {error}"))),
    }
}

fn write_synced(db: &Db, batch: WriteBatch) -> Result<(), StorageError> {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.rocks().write_opt(batch, &options)?;
    Ok(())
}

fn snapshot_marker(index: u64, term: u64) -> Vec<u8> {
    let mut marker = index.to_be_bytes().to_vec();
    marker.extend_from_slice(&term.to_be_bytes());
    marker
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl Storage for RaftLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let state = self.read_state();
        Ok(RaftState {
            hard_state: state.hard_state.clone(),
            conf_state: state.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let max_size = max_size.into().unwrap_or(u64::MAX);
        {
            let state = self.read_state();
            if low <= state.snapshot_index {
                return Err(raft::Error::Store(RaftStorageError::Compacted));
            }
            if high > state.last_index + 1 {
                return Err(raft::Error::Store(RaftStorageError::Unavailable));
            }
        }
        let mut entries = Vec::with_capacity((high - low).min(1024) as usize);
        let mut size = 0u64;
        let iterator = self.db.rocks().iterator_cf(
            self.db.cf(CF_RAFT_LOG),
            IteratorMode::From(&index_key(low), rocksdb::Direction::Forward),
        );
        for item in iterator {
            let (_, value) = item.map_err(other)?;
            let entry = decode_entry(&value).map_err(other)?;
            if entry.index >= high {
                break;
            }
            if entry.index != low + entries.len() as u64 {
                return Err(other(format!(
                    "raft log gap: expected {}, found {}",
                    low + entries.len() as u64,
                    entry.index
                )));
            }
            size += u64::from(protobuf::Message::compute_size(&entry));
            if !entries.is_empty() && size > max_size {
                break;
            }
            entries.push(entry);
        }
        if entries.is_empty() && low < high {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        let state = self.read_state();
        if index == state.snapshot_index {
            return Ok(state.snapshot_term);
        }
        if index < state.snapshot_index {
            return Err(raft::Error::Store(RaftStorageError::Compacted));
        }
        if index > state.last_index {
            return Err(raft::Error::Store(RaftStorageError::Unavailable));
        }
        state
            .term_runs
            .range(..=index)
            .next_back()
            .map(|(_, term)| *term)
            .ok_or_else(|| other(format!("no term recorded for index {index}")))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.read_state().snapshot_index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.read_state().last_index)
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        // Raft calls this when a peer needs entries compacted away. The offer must cover them
        // (stand at or after the compaction point) and be at least as recent as asked; any
        // other answer than a snapshot or "temporarily unavailable" would stop raft.
        let compacted = self.read_state().snapshot_index;
        match self.snapshots.offer() {
            Some(offer) if offer.serves(request_index, compacted, to) => {
                tracing::info!(to, index = offer.index, "sending a snapshot");
                Ok(offer.to_snapshot())
            }
            _ => {
                self.snapshots.want();
                Err(raft::Error::Store(
                    RaftStorageError::SnapshotTemporarilyUnavailable,
                ))
            }
        }
    }
}

impl LogStore for RaftLogStore {
    fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), LogStoreError> {
        let store_error = |error: StorageError| LogStoreError(error.to_string());
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let log_cf = self.db.cf(CF_RAFT_LOG);
        let raft_cf = self.db.cf(CF_RAFT_STATE);
        let mut batch = WriteBatch::default();
        let mut runs = state.term_runs.clone();
        let mut last_index = state.last_index;
        if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
            assert!(
                first.index > state.snapshot_index,
                "raft never appends below the snapshot"
            );
            assert!(
                first.index <= state.last_index + 1,
                "raft appends without gaps"
            );
            if last.index < state.last_index {
                batch.delete_range_cf(
                    log_cf,
                    index_key(last.index + 1),
                    index_key(state.last_index + 1),
                );
            }
            let stale: Vec<u64> = runs.range(first.index..).map(|(start, _)| *start).collect();
            for start in stale {
                runs.remove(&start);
                batch.delete_cf(raft_cf, term_run_key(start));
            }
            for entry in entries {
                let previous_term = runs.range(..entry.index).next_back().map(|(_, term)| *term);
                if previous_term != Some(entry.term) {
                    runs.insert(entry.index, entry.term);
                    batch.put_cf(
                        raft_cf,
                        term_run_key(entry.index),
                        seal_record(&entry.term.to_be_bytes()),
                    );
                }
                batch.put_cf(
                    log_cf,
                    index_key(entry.index),
                    seal_record(&encode(entry).map_err(store_error)?),
                );
            }
            last_index = last.index;
        }
        if let Some(hard_state) = hard_state {
            batch.put_cf(
                raft_cf,
                KEY_HARD_STATE,
                seal_record(&encode(hard_state).map_err(store_error)?),
            );
        }
        write_synced(&self.db, batch).map_err(store_error)?;
        state.term_runs = runs;
        state.last_index = last_index;
        if let Some(hard_state) = hard_state {
            state.hard_state = hard_state.clone();
        }
        Ok(())
    }

    fn persist_commit(&self, commit: u64) -> Result<(), LogStoreError> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut hard_state = state.hard_state.clone();
        hard_state.commit = commit;
        let bytes = encode(&hard_state).map_err(|error| LogStoreError(error.to_string()))?;
        // Not synced: RocksDB's write-ahead log keeps writes in order, so this record is durable
        // whenever a later (also unsynced) apply batch is, and a lost commit index is relearned
        // from the leader or clamped up to the applied index at start-up.
        self.db
            .rocks()
            .put_cf(
                self.db.cf(CF_RAFT_STATE),
                KEY_HARD_STATE,
                seal_record(&bytes),
            )
            .map_err(|error| LogStoreError(error.to_string()))?;
        state.hard_state = hard_state;
        Ok(())
    }

    fn apply_snapshot(&self, snapshot: Snapshot) -> Result<(), LogStoreError> {
        let store_error = |error: StorageError| LogStoreError(error.to_string());
        let metadata = snapshot.get_metadata();
        let mut batch = WriteBatch::default();
        let hard_state = self
            .snapshot_changes(metadata, &mut batch)
            .map_err(store_error)?;
        write_synced(&self.db, batch).map_err(store_error)?;
        self.snapshot_installed(metadata, hard_state);
        Ok(())
    }

    fn set_conf_state(&self, conf_state: ConfState) -> Result<(), LogStoreError> {
        let store_error = |error: StorageError| LogStoreError(error.to_string());
        let mut batch = WriteBatch::default();
        self.conf_state_change(&conf_state, &mut batch)
            .map_err(store_error)?;
        write_synced(&self.db, batch).map_err(store_error)?;
        self.conf_state_changed(conf_state);
        Ok(())
    }

    fn compacted_index(&self) -> u64 {
        RaftLogStore::compacted_index(self)
    }

    fn compact(&self, to: u64) -> Result<(), LogStoreError> {
        RaftLogStore::compact(self, to).map_err(|error| LogStoreError(error.to_string()))
    }

    fn snapshot_hold(&self) -> Option<u64> {
        self.snapshots()
            .held_offer(crate::limits::SNAPSHOT_OFFER_HOLD)
    }
}

/// A record of the Raft state column family, opened and checked.
fn read_raft_state(db: &Db, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
    match db.rocks().get_cf(db.cf(CF_RAFT_STATE), key)? {
        None => Ok(None),
        Some(bytes) => Ok(Some(open_record(&bytes, "raft state")?.to_vec())),
    }
}

/// The stored configuration and hard state; on a new log, the genesis configuration (`voters`
/// and `learners`) and an empty hard state, written first.
fn read_raft_states(
    db: &Db,
    voters: Vec<u64>,
    learners: Vec<u64>,
) -> Result<(ConfState, HardState), StorageError> {
    let raft_cf = db.cf(CF_RAFT_STATE);
    let conf_state = match read_raft_state(db, KEY_CONF_STATE)? {
        Some(bytes) => ConfState::parse_from_bytes(&bytes)
            .map_err(|error| StorageError::Corrupt(format!("conf state: {error}")))?,
        None => {
            let conf_state = ConfState::from((voters, learners));
            let mut batch = WriteBatch::default();
            batch.put_cf(raft_cf, KEY_CONF_STATE, seal_record(&encode(&conf_state)?));
            batch.put_cf(
                raft_cf,
                KEY_HARD_STATE,
                seal_record(&encode(&HardState::default())?),
            );
            write_synced(db, batch)?;
            conf_state
        }
    };
    let hard_state = match read_raft_state(db, KEY_HARD_STATE)? {
        Some(bytes) => HardState::parse_from_bytes(&bytes)
            .map_err(|error| StorageError::Corrupt(format!("hard state: {error}")))?,
        None => {
            return Err(StorageError::Corrupt(
                "conf state without hard state".into(),
            ))
        }
    };
    Ok((conf_state, hard_state))
}

/// The index and term of the last snapshot installed or compacted to, (0, 0) for none.
fn read_snapshot_marker(db: &Db) -> Result<(u64, u64), StorageError> {
    match read_raft_state(db, KEY_SNAPSHOT)? {
        Some(bytes) if bytes.len() == 16 => Ok((
            u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
            u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes")),
        )),
        Some(_) => Err(StorageError::Corrupt(
            "snapshot marker has the wrong size".into(),
        )),
        None => Ok((0, 0)),
    }
}

/// The term runs: the first index of each term in the log, by index.
fn read_term_runs(db: &Db) -> Result<BTreeMap<u64, u64>, StorageError> {
    let mut term_runs = BTreeMap::new();
    for item in db
        .rocks()
        .prefix_iterator_cf(db.cf(CF_RAFT_STATE), [TERM_RUN_PREFIX])
    {
        let (key, value) = item?;
        if key.first() != Some(&TERM_RUN_PREFIX) {
            break;
        }
        let payload = open_record(&value, "term run")?;
        let (Ok(start), Ok(term)) = (<[u8; 8]>::try_from(&key[1..]), <[u8; 8]>::try_from(payload))
        else {
            return Err(StorageError::Corrupt(
                "term run record has the wrong size".into(),
            ));
        };
        term_runs.insert(u64::from_be_bytes(start), u64::from_be_bytes(term));
    }
    Ok(term_runs)
}

/// The index of the log's last entry (the snapshot's index when the log holds none), checked
/// against the entry's own index.
fn read_last_index(db: &Db, snapshot_index: u64) -> Result<u64, StorageError> {
    match db
        .rocks()
        .iterator_cf(db.cf(CF_RAFT_LOG), IteratorMode::End)
        .next()
    {
        Some(item) => {
            let (key, value) = item?;
            let entry = decode_entry(&value)?;
            let index = <[u8; 8]>::try_from(&key[..])
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if index != entry.index {
                return Err(StorageError::Corrupt(format!(
                    "raft log key {index} holds entry {}",
                    entry.index
                )));
            }
            Ok(index)
        }
        None => Ok(snapshot_index),
    }
}
