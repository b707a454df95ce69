//! The settlement ledger engine: pure, deterministic, and free of IO.
//!
//! It defines the ledger's model, the canonical encoding of transactions and blocks, signature
//! rules, the genesis, and [`apply_block`], the state transition every node and auditor runs.
//! It reads no clock, draws no randomness and iterates only ordered collections, so the same
//! blocks give the same state root everywhere.

pub mod apply;
pub mod approval;
pub mod audit;
pub mod block;
pub mod block_record;
pub mod codec;
mod context;
pub mod decimal;
mod dispatch;
pub mod escrow;
pub mod exchange;
pub mod genesis;
pub mod governance;
pub mod governance_view;
pub mod issuance;
pub mod limits;
pub mod limits_rules;
pub mod model;
pub mod netting;
pub mod ops;
mod overlay;
mod pending;
mod posting;
pub mod proof;
pub mod replay;
pub mod result;
pub mod reversal;
pub mod sig;
pub mod state;
pub mod supply;
pub mod tx;
pub mod view;

pub use apply::{apply_block, next_expiry_ms, BlockOutcome};
pub use audit::{check_block_record, BlockCheckError};
pub use block::{check_attestation, AttestationCheck, BlockEffect, BlockHeader, Proposal, Receipt};
pub use block_record::{encode_block_record, BlockRecord, BlockRecordError};
pub use context::ApplyError;
pub use genesis::{Genesis, GenesisState};
pub use ops::{webhook_key, webhook_url_valid};
pub use result::ResultCode;
pub use state::{ChainHead, MemStore, StateDiff, StateStore};
pub use tx::{transaction_id, Body, Operation, Transaction, TransferKind, Validity};
