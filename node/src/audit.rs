//! The node's hash-chained audit log: every admin request and every API request that submits,
//! reads participant data or fails authentication is recorded with who asked, what, and the
//! answer. Each record carries the hash of the one before it, so a record deleted, altered or
//! reordered breaks the chain (`tpw audit verify`). The log is this node's own (not
//! replicated); the periodic `audit head` log line, shipped off the host, anchors it.
//!
//! Record (key: sequence u64 big-endian, in the `audit` column family, sealed like every
//! stored value): `sequence:u64 | time_ms:u64 | channel:u8 | actor | action | target |
//! status:u16 | detail:[32] | previous:[32] | hash:[32]`, strings as u32 length + UTF-8;
//! `hash = blake3("tpwalletoec/audit\0" || every byte before it)`.

use crate::limits::{
    AUDIT_BATCH_MAX, AUDIT_HEAD_LOG_INTERVAL_RECORDS, AUDIT_QUEUE_MAX, AUDIT_TEXT_SIZE_MAX,
};
use crate::storage::{open_record, seal_record, Db, StorageError, CF_AUDIT};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tpw_contracts::codec::{Reader, Writer};

const DOMAIN: &[u8] = b"tpwalletoec/audit\0";

/// Where an action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The public HTTP API.
    Api,
    /// The operator's admin interface.
    Admin,
}

/// One action to record.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Wall-clock time of the request, ms since the Unix epoch.
    pub time_ms: u64,
    /// API or admin.
    pub channel: Channel,
    /// Who: `participant:<id>`, `key:<hex>` (not registered), `operator` or `anonymous`.
    pub actor: String,
    /// What: method and path (`POST /v1/transactions`).
    pub action: String,
    /// Extra identification (transaction ids of a submission, the query of a read).
    pub target: String,
    /// The HTTP status answered.
    pub status: u16,
    /// blake3 of the request body (zeros when none).
    pub detail: [u8; 32],
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    /// Position in the chain, from 1.
    pub sequence: u64,
    /// Time of the request.
    pub time_ms: u64,
    /// `api` or `admin`.
    pub channel: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Extra identification.
    pub target: String,
    /// HTTP status answered.
    pub status: u16,
    /// blake3 of the request body, hex.
    pub detail: String,
    /// The previous record's hash, hex (zeros for the first).
    pub previous: String,
    /// This record's hash, hex.
    pub hash: String,
}

/// `text` cut to [`AUDIT_TEXT_SIZE_MAX`] bytes at a character boundary.
pub fn cut_text(text: &str) -> &str {
    cut(text)
}

fn cut(text: &str) -> &str {
    if text.len() <= AUDIT_TEXT_SIZE_MAX {
        return text;
    }
    let mut end = AUDIT_TEXT_SIZE_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn encode(sequence: u64, entry: &Entry, previous: &[u8; 32]) -> Vec<u8> {
    let mut writer = Writer::with_capacity(256);
    writer.u64(sequence);
    writer.u64(entry.time_ms);
    writer.u8(match entry.channel {
        Channel::Api => 1,
        Channel::Admin => 2,
    });
    writer.string(cut(&entry.actor));
    writer.string(cut(&entry.action));
    writer.string(cut(&entry.target));
    writer.u16(entry.status);
    writer.fixed(&entry.detail);
    writer.fixed(previous);
    let mut bytes = writer.finish();
    let hash = chain_hash(&bytes);
    bytes.extend_from_slice(&hash);
    bytes
}

fn chain_hash(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(DOMAIN);
    hasher.update(bytes);
    *hasher.finalize().as_bytes()
}

/// Decodes a stored record and checks its own hash.
fn decode(bytes: &[u8]) -> Result<(Record, [u8; 32], [u8; 32]), String> {
    let corrupt = |error: tpw_contracts::codec::DecodeError| error.to_string();
    let mut reader = Reader::new(bytes);
    let sequence = reader.u64("audit.sequence").map_err(corrupt)?;
    let time_ms = reader.u64("audit.time_ms").map_err(corrupt)?;
    let channel = match reader.u8("audit.channel").map_err(corrupt)? {
        1 => "api",
        2 => "admin",
        other => return Err(format!("unknown channel {other}")),
    };
    let actor = reader
        .string("audit.actor", AUDIT_TEXT_SIZE_MAX)
        .map_err(corrupt)?;
    let action = reader
        .string("audit.action", AUDIT_TEXT_SIZE_MAX)
        .map_err(corrupt)?;
    let target = reader
        .string("audit.target", AUDIT_TEXT_SIZE_MAX)
        .map_err(corrupt)?;
    let status = reader.u16("audit.status").map_err(corrupt)?;
    let detail: [u8; 32] = reader.array("audit.detail").map_err(corrupt)?;
    let previous: [u8; 32] = reader.array("audit.previous").map_err(corrupt)?;
    let covered = reader.position();
    let hash: [u8; 32] = reader.array("audit.hash").map_err(corrupt)?;
    reader.finish().map_err(corrupt)?;
    if chain_hash(&bytes[..covered]) != hash {
        return Err(format!(
            "record {sequence}: its hash does not match its content"
        ));
    }
    Ok((
        Record {
            sequence,
            time_ms,
            channel: channel.into(),
            actor,
            action,
            target,
            status,
            detail: hex::encode(detail),
            previous: hex::encode(previous),
            hash: hex::encode(hash),
        },
        previous,
        hash,
    ))
}

/// The appender: requests queue entries, one writer thread chains and writes them in order.
#[derive(Clone)]
pub struct AuditLog {
    sender: tokio::sync::mpsc::Sender<Message>,
    written: Arc<AtomicU64>,
}

/// What the writer receives.
enum Message {
    /// An action to chain and write.
    Record(Entry),
    /// The node stops: write what is queued, then end.
    Close,
}

impl AuditLog {
    /// Opens the chain in `db` (continuing after its last record) and starts the writer, which
    /// ends once every clone of the log is dropped, or at [`AuditLog::close`].
    pub fn start(db: Db) -> Result<(Self, std::thread::JoinHandle<()>), StorageError> {
        let (mut sequence, mut previous) = match db
            .rocks()
            .iterator_cf(db.cf(CF_AUDIT), rocksdb::IteratorMode::End)
            .next()
        {
            None => (0, [0u8; 32]),
            Some(item) => {
                let (_, value) = item?;
                let (record, _, hash) = decode(open_record(&value, "audit")?)
                    .map_err(|error| StorageError::Corrupt(format!("audit log: {error}")))?;
                (record.sequence, hash)
            }
        };
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Message>(AUDIT_QUEUE_MAX);
        let written = Arc::new(AtomicU64::new(sequence));
        let counter = Arc::clone(&written);
        let writer = std::thread::Builder::new()
            .name("tpw-audit".into())
            .spawn(move || {
                let mut batch_entries = Vec::with_capacity(AUDIT_BATCH_MAX);
                let mut closing = false;
                while let Some(first) = receiver.blocking_recv() {
                    let mut next = Some(first);
                    while let Some(message) = next.take() {
                        match message {
                            Message::Record(entry) => batch_entries.push(entry),
                            // Refuse new entries; the queued ones are still received below.
                            Message::Close => {
                                receiver.close();
                                closing = true;
                            }
                        }
                        if batch_entries.len() < AUDIT_BATCH_MAX {
                            next = receiver.try_recv().ok();
                        }
                    }
                    if batch_entries.is_empty() && closing {
                        break;
                    }
                    let mut batch = rocksdb::WriteBatch::default();
                    for entry in batch_entries.drain(..) {
                        sequence += 1;
                        let bytes = encode(sequence, &entry, &previous);
                        previous.copy_from_slice(&bytes[bytes.len() - 32..]);
                        batch.put_cf(db.cf(CF_AUDIT), sequence.to_be_bytes(), seal_record(&bytes));
                        if sequence % AUDIT_HEAD_LOG_INTERVAL_RECORDS == 0 {
                            tracing::info!(sequence, head = %hex::encode(previous), "audit head");
                        }
                    }
                    if let Err(error) = db.rocks().write(batch) {
                        // The chain in memory ran ahead of the disk: stop recording rather
                        // than write a chain with a hole.
                        tracing::error!(%error, "audit log write failed; the audit log stops");
                        crate::storage::note_corruption(&StorageError::Rocks(error));
                        return;
                    }
                    counter.store(sequence, Ordering::Relaxed);
                }
            })
            .map_err(|error| StorageError::Unusable(format!("audit thread: {error}")))?;
        Ok((Self { sender, written }, writer))
    }

    /// Records an action; waits (never drops) when the writer is behind.
    pub async fn record(&self, entry: Entry) {
        if self.sender.send(Message::Record(entry)).await.is_err() {
            tracing::warn!("the audit log is closed (the node is stopping): action not recorded");
        }
    }

    /// Ends the writer once what is queued is written, even while requests still hold the
    /// log (a submission waiting for a commit that will not come as the node stops).
    pub async fn close(&self) {
        let _ = self.sender.send(Message::Close).await;
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// Records from `from` (a sequence), at most `limit`, as stored.
pub fn read(db: &Db, from: u64, limit: usize) -> Result<Vec<Record>, StorageError> {
    let iterator = db.rocks().iterator_cf(
        db.cf(CF_AUDIT),
        rocksdb::IteratorMode::From(&from.to_be_bytes(), rocksdb::Direction::Forward),
    );
    let mut records = Vec::new();
    for item in iterator.take(limit) {
        let (_, value) = item?;
        let (record, _, _) = decode(open_record(&value, "audit")?)
            .map_err(|error| StorageError::Corrupt(format!("audit log: {error}")))?;
        records.push(record);
    }
    Ok(records)
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// The last record's hash, hex (what to compare with a shipped `audit head`).
    pub head: String,
    /// The first break, if any: which record and why.
    pub broken: Option<String>,
}

/// Walks the whole chain: every record's own hash, its link to the one before, and sequences
/// without gaps from 1.
pub fn verify(db: &Db) -> Result<VerifyReport, StorageError> {
    let mut expected_previous = [0u8; 32];
    let mut report = VerifyReport {
        records: 0,
        head: hex::encode([0u8; 32]),
        broken: None,
    };
    let records = db
        .rocks()
        .iterator_cf(db.cf(CF_AUDIT), rocksdb::IteratorMode::Start);
    for (expected_sequence, item) in (1u64..).zip(records) {
        let (key, value) = item?;
        let payload = match open_record(&value, "audit") {
            Ok(payload) => payload,
            Err(error) => {
                report.broken = Some(format!("key {}: {error}", hex::encode(&key)));
                return Ok(report);
            }
        };
        let (record, previous, hash) = match decode(payload) {
            Ok(decoded) => decoded,
            Err(error) => {
                report.broken = Some(error);
                return Ok(report);
            }
        };
        if key.as_ref() != record.sequence.to_be_bytes() || record.sequence != expected_sequence {
            report.broken = Some(format!(
                "record {} found where record {expected_sequence} belongs (a record is missing or moved)",
                record.sequence
            ));
            return Ok(report);
        }
        if previous != expected_previous {
            report.broken = Some(format!(
                "record {}: it does not link to the record before it",
                record.sequence
            ));
            return Ok(report);
        }
        expected_previous = hash;
        report.records += 1;
        report.head = record.hash;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> Entry {
        Entry {
            time_ms: 1,
            channel: Channel::Api,
            actor: "participant:3".into(),
            action: action.into(),
            target: String::new(),
            status: 200,
            detail: [0; 32],
        }
    }

    #[test]
    fn records_round_trip_and_any_changed_byte_is_caught() {
        // Proves a record decodes to what was encoded and that changing any byte of it fails
        // its own hash or its decoding.
        let bytes = encode(7, &entry("GET /v1/accounts/301"), &[9; 32]);
        let (record, previous, _) = decode(&bytes).unwrap();
        assert_eq!(record.sequence, 7);
        assert_eq!(previous, [9; 32]);
        assert_eq!(record.action, "GET /v1/accounts/301");
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x01;
            assert!(decode(&damaged).is_err(), "byte {position}");
        }
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        // Proves oversized fields are bounded without splitting a UTF-8 character.
        let long = "é".repeat(AUDIT_TEXT_SIZE_MAX);
        let cut_text = cut(&long);
        assert!(cut_text.len() <= AUDIT_TEXT_SIZE_MAX);
        assert!(long.starts_with(cut_text));
        let bytes = encode(1, &entry(&long), &[0; 32]);
        assert!(decode(&bytes).is_ok());
    }
}
