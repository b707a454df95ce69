//! Bridges raft's slog output into `tracing`, so the node has one log stream with fields.

use slog::{Drain, Level, OwnedKVList, Record, KV};
use std::fmt::Write as _;

/// A slog drain that re-emits every record as a tracing event.
struct TracingDrain;

struct FieldWriter(String);

impl slog::Serializer for FieldWriter {
    fn emit_arguments(&mut self, key: slog::Key, value: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = FieldWriter(String::new());
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let message = record.msg();
        let fields = fields.0;
        match record.level() {
            Level::Critical | Level::Error => {
                tracing::error!(target: "raft", fields = %fields, "{message}")
            }
            Level::Warning => tracing::warn!(target: "raft", fields = %fields, "{message}"),
            Level::Info => tracing::info!(target: "raft", fields = %fields, "{message}"),
            Level::Debug => tracing::debug!(target: "raft", fields = %fields, "{message}"),
            Level::Trace => tracing::trace!(target: "raft", fields = %fields, "{message}"),
        }
        Ok(())
    }
}

/// A slog logger for raft, tagged with the node id, that writes through `tracing`.
pub fn raft_logger(node_id: u64) -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!("node_id" => node_id))
}
