//! Webhook delivery progress and dead letters, kept in the meta column family: each endpoint's
//! delivered-up-to cursor and its dead-lettered deliveries. Both the delivering leader and the
//! apply path (replicated progress carried in block proposals) write here; a cursor only moves
//! forward.

use super::db::{Db, StorageError, CF_META};
use super::record::{open_record, seal_record};
use std::sync::Mutex;
use tpw_contracts::block::{DeadLetter, WebhookProgress};
use tpw_contracts::codec::{Reader, Writer};

const PROGRESS_PREFIX: &[u8] = b"wh";
const DEAD_PREFIX: &[u8] = b"wd";

/// Serialises the read-modify-write of cursors between the apply thread and the deliverer.
static WRITES: Mutex<()> = Mutex::new(());

fn progress_key(participant: u64, endpoint: u16) -> Vec<u8> {
    let mut key = PROGRESS_PREFIX.to_vec();
    key.extend_from_slice(&participant.to_be_bytes());
    key.extend_from_slice(&endpoint.to_be_bytes());
    key
}

fn dead_key(participant: u64, endpoint: u16, height: u64, sequence: u32) -> Vec<u8> {
    let mut key = DEAD_PREFIX.to_vec();
    key.extend_from_slice(&participant.to_be_bytes());
    key.extend_from_slice(&endpoint.to_be_bytes());
    key.extend_from_slice(&height.to_be_bytes());
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

/// An endpoint's delivered-up-to cursor (height, sequence), if any delivery was recorded.
pub fn delivered(
    db: &Db,
    participant: u64,
    endpoint: u16,
) -> Result<Option<(u64, u32)>, StorageError> {
    let Some(bytes) = db
        .rocks()
        .get_cf(db.cf(CF_META), progress_key(participant, endpoint))?
    else {
        return Ok(None);
    };
    let payload = open_record(&bytes, "webhook progress")?;
    let mut reader = Reader::new(payload);
    let corrupt = |_| StorageError::Corrupt("webhook progress record".into());
    let height = reader.u64("height").map_err(corrupt)?;
    let sequence = reader.u32("sequence").map_err(corrupt)?;
    Ok(Some((height, sequence)))
}

/// Held from reading the cursors to writing the batch that moves them, so two writers never
/// move one cursor back.
pub(crate) fn write_guard() -> std::sync::MutexGuard<'static, ()> {
    WRITES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Records progress: moves each cursor forward (never back), adds dead letters and removes
/// revived ones.
pub fn record(db: &Db, entries: &[WebhookProgress]) -> Result<(), StorageError> {
    if entries.is_empty() {
        return Ok(());
    }
    let _guard = write_guard();
    let mut batch = rocksdb::WriteBatch::default();
    stage(db, &mut batch, entries)?;
    db.rocks().write(batch)?;
    Ok(())
}

/// Adds the writes of [`record`] to `batch`; the caller holds [`write_guard`] until the batch
/// is written.
pub(crate) fn stage(
    db: &Db,
    batch: &mut rocksdb::WriteBatch,
    entries: &[WebhookProgress],
) -> Result<(), StorageError> {
    let cf = db.cf(CF_META);
    for entry in entries {
        let current = delivered(db, entry.participant, entry.endpoint)?;
        let new = (entry.delivered_height, entry.delivered_sequence);
        if current.is_none_or(|current| new > current) {
            let mut writer = Writer::default();
            writer.u64(new.0);
            writer.u32(new.1);
            batch.put_cf(
                cf,
                progress_key(entry.participant, entry.endpoint),
                seal_record(&writer.finish()),
            );
        }
        for dead in &entry.dead {
            let mut writer = Writer::default();
            writer.u32(dead.attempts);
            writer.string(&dead.error);
            batch.put_cf(
                cf,
                dead_key(
                    entry.participant,
                    entry.endpoint,
                    dead.height,
                    dead.sequence,
                ),
                seal_record(&writer.finish()),
            );
        }
        for (height, sequence) in &entry.revived {
            batch.delete_cf(
                cf,
                dead_key(entry.participant, entry.endpoint, *height, *sequence),
            );
        }
    }
    Ok(())
}

/// An endpoint's dead letters, oldest first, at most `limit`.
pub fn dead_letters(
    db: &Db,
    participant: u64,
    endpoint: u16,
    limit: usize,
) -> Result<Vec<DeadLetter>, StorageError> {
    let start = dead_key(participant, endpoint, 0, 0);
    let mut end = dead_key(participant, endpoint, u64::MAX, u32::MAX);
    end.push(0);
    let mut options = rocksdb::ReadOptions::default();
    options.set_iterate_upper_bound(end);
    let iterator = db.rocks().iterator_cf_opt(
        db.cf(CF_META),
        options,
        rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
    );
    let mut letters = Vec::new();
    for item in iterator.take(limit) {
        let (key, value) = item?;
        let corrupt = || StorageError::Corrupt("webhook dead letter".into());
        let (height, sequence) = super::record::key_cursor(&key, 12).ok_or_else(corrupt)?;
        let payload = open_record(&value, "webhook dead letter")?;
        let mut reader = Reader::new(payload);
        let attempts = reader.u32("attempts").map_err(|_| corrupt())?;
        let error = reader
            .string("error", tpw_contracts::block::WEBHOOK_ERROR_SIZE_MAX)
            .map_err(|_| corrupt())?;
        letters.push(DeadLetter {
            height,
            sequence,
            attempts,
            error,
        });
    }
    Ok(letters)
}
