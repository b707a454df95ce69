//! Opening RocksDB with the node's column families and tuning.

use rocksdb::{BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, Options, DB};
use std::path::Path;
use std::sync::Arc;

/// Raft log entries by index.
pub const CF_RAFT_LOG: &str = "raft_log";
/// Raft hard state and conf state.
pub const CF_RAFT_STATE: &str = "raft_state";
/// Applied blocks by height.
pub const CF_BLOCKS: &str = "blocks";
/// Ledger state records (contracts' keys).
pub const CF_STATE: &str = "state";
/// Transaction id to block position.
pub const CF_INDEX: &str = "index";
/// Chain head and applied index.
pub const CF_META: &str = "meta";
/// State records of a snapshot being received, kept apart until Raft accepts the snapshot.
pub const CF_STAGING: &str = "snapshot_staging";
/// The node's hash-chained audit log, by sequence (node/src/audit.rs).
pub const CF_AUDIT: &str = "audit";

const COLUMN_FAMILIES: [&str; 8] = [
    CF_RAFT_LOG,
    CF_RAFT_STATE,
    CF_BLOCKS,
    CF_STATE,
    CF_INDEX,
    CF_META,
    CF_STAGING,
    CF_AUDIT,
];

fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    COLUMN_FAMILIES
        .iter()
        .map(|name| {
            let mut cf_options = Options::default();
            cf_options.set_compression_type(DBCompressionType::Lz4);
            if *name == CF_STATE || *name == CF_INDEX {
                // Most lookups here miss (new transfer ids, new transaction ids): bloom filters
                // on the tables and in the memtable answer those without a search.
                let mut table = BlockBasedOptions::default();
                table.set_bloom_filter(10.0, false);
                cf_options.set_block_based_table_factory(&table);
                cf_options.set_memtable_whole_key_filtering(true);
                cf_options.set_memtable_prefix_bloom_ratio(0.05);
            }
            ColumnFamilyDescriptor::new(*name, cf_options)
        })
        .collect()
}

/// A storage failure. `Corrupt` means the data on disk is damaged or foreign: the node stops.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB reported an error.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored record failed its checks.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The data folder belongs to another network or is otherwise unusable.
    #[error("{0}")]
    Unusable(String),
}

impl StorageError {
    /// Whether the error means damaged data: a record failing its checksum or RocksDB finding
    /// a damaged file.
    pub fn is_corruption(&self) -> bool {
        match self {
            StorageError::Corrupt(_) => true,
            StorageError::Rocks(error) => error.kind() == rocksdb::ErrorKind::Corruption,
            StorageError::Unusable(_) => false,
        }
    }
}

/// The first corruption this process detected. A node serves one data folder per process, so
/// the process stops serving once it is set.
static CORRUPTION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records `error` if it means damaged data, so the node stops instead of serving on.
pub fn note_corruption(error: &StorageError) {
    if error.is_corruption() && CORRUPTION.set(error.to_string()).is_ok() {
        tracing::error!(%error, "DATA CORRUPTION detected: this node stops");
    }
}

/// The damage detected while serving, if any.
pub fn corruption_detected() -> Option<&'static str> {
    CORRUPTION.get().map(String::as_str)
}

/// What [`verify_integrity`] checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Records whose checksum was checked.
    pub records: u64,
}

/// Reads every record of every column family, so that RocksDB checks every block's checksum
/// and every value's envelope is checked too: a damaged file or record is found before
/// anything is served or applied.
pub fn verify_integrity(db: &Db) -> Result<IntegrityReport, StorageError> {
    let mut report = IntegrityReport::default();
    for name in COLUMN_FAMILIES {
        let mut options = rocksdb::ReadOptions::default();
        options.set_verify_checksums(true);
        options.fill_cache(false);
        let iterator =
            db.rocks()
                .iterator_cf_opt(db.cf(name), options, rocksdb::IteratorMode::Start);
        for item in iterator {
            let (key, value) = item?;
            super::record::open_record(&value, name).map_err(|_| {
                StorageError::Corrupt(format!(
                    "the {name} record with key {} fails its checksum",
                    hex::encode(&key)
                ))
            })?;
            report.records += 1;
        }
    }
    Ok(report)
}

/// The node's database handle, shared by the raft loop and the API readers.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DB>,
    /// Serialises read-modify-write of the block gap list (snapshot install and backfill).
    gaps: Arc<std::sync::Mutex<()>>,
}

impl Db {
    /// Opens (or creates) the database in `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(DBCompressionType::Lz4);
        options.set_max_background_jobs(2);
        options.set_bytes_per_sync(1 << 20);
        // A torn last record of the write-ahead log is an unsynced write cut by a crash and is
        // dropped; damage anywhere before it stops the open instead of silently truncating.
        options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        options.set_paranoid_checks(true);
        let db = DB::open_cf_descriptors(&options, path, descriptors())?;
        Ok(Self {
            inner: Arc::new(db),
            gaps: Arc::default(),
        })
    }

    /// Opens a checkpoint of the database for reading only (a snapshot being served).
    pub fn open_read_only(path: &Path) -> Result<Self, StorageError> {
        let db =
            DB::open_cf_descriptors_read_only(&Options::default(), path, descriptors(), false)?;
        Ok(Self {
            inner: Arc::new(db),
            gaps: Arc::default(),
        })
    }

    /// Held while the block gap list is read, changed and written.
    pub(super) fn lock_gaps(&self) -> std::sync::MutexGuard<'_, ()> {
        self.gaps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes a point-in-time copy of the database into `path` (a folder that must not exist
    /// yet), by hard links where the files allow, while the database keeps serving.
    pub fn checkpoint(&self, path: &Path) -> Result<(), StorageError> {
        rocksdb::checkpoint::Checkpoint::new(&self.inner)?.create_checkpoint(path)?;
        Ok(())
    }

    /// The RocksDB handle.
    pub fn rocks(&self) -> &DB {
        &self.inner
    }

    /// A column family handle; the families are created at open, so this cannot fail.
    pub fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.inner
            .cf_handle(name)
            .expect("every column family is created when the database opens")
    }
}
