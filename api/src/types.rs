//! Request and response bodies of the HTTP API, shared by the server and the client library.

use crate::limits::{SUBMIT_TRANSACTIONS_MAX, WAIT_TIMEOUT_MS_MAX};
use serde::{Deserialize, Serialize};
use tpw_contracts::view::{AccountView, HeaderView, ReceiptView, TransactionView, TransferView};
use tpw_contracts::ResultCode;

/// POST /v1/transactions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// Envelopes, hex. Parsing stops at the first one past [`SUBMIT_TRANSACTIONS_MAX`], so a
    /// body of millions of tiny strings is refused before they are all held in memory.
    #[serde(deserialize_with = "bounded_transactions")]
    pub transactions: Vec<String>,
    /// Wait until every transaction is committed (or the timeout passes).
    #[serde(default)]
    pub wait: bool,
    /// How long to wait, in ms.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Why a submission body was refused before any envelope in it was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitRequestError {
    /// Not JSON of the request's shape (the parser's message).
    MalformedJson(String),
    /// No transaction.
    EmptyBatch,
    /// More than [`SUBMIT_TRANSACTIONS_MAX`] transactions (parsing stopped at the first one
    /// past the limit).
    BatchTooLarge,
    /// A wait longer than [`WAIT_TIMEOUT_MS_MAX`].
    BadTimeout,
}

impl SubmitRequestError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::EmptyBatch => "empty_batch",
            Self::BatchTooLarge => "batch_too_large",
            Self::BadTimeout => "bad_timeout",
        }
    }

    /// What was wrong and what to do.
    pub fn message(&self) -> String {
        match self {
            Self::MalformedJson(error) => {
                format!("{error}; expected {{\"transactions\": [hex, ...], \"wait\": bool}}")
            }
            Self::EmptyBatch => "send at least one transaction".into(),
            Self::BatchTooLarge => {
                format!("more than {SUBMIT_TRANSACTIONS_MAX} transactions in one request; split it")
            }
            Self::BadTimeout => format!("timeout_ms must be at most {WAIT_TIMEOUT_MS_MAX}"),
        }
    }

    /// Whether the request is refused for its size (HTTP 413) rather than its form (400).
    pub fn too_large(&self) -> bool {
        matches!(self, Self::BatchTooLarge)
    }
}

impl SubmitRequest {
    /// Parses and checks a POST /v1/transactions body: the JSON shape, 1 to
    /// [`SUBMIT_TRANSACTIONS_MAX`] transactions, and a wait of at most [`WAIT_TIMEOUT_MS_MAX`].
    /// The envelopes themselves are admission's to check.
    pub fn from_json(body: &[u8]) -> Result<Self, SubmitRequestError> {
        let request: Self = serde_json::from_slice(body).map_err(|error| {
            if error.to_string().starts_with(TOO_MANY_TRANSACTIONS) {
                SubmitRequestError::BatchTooLarge
            } else {
                SubmitRequestError::MalformedJson(error.to_string())
            }
        })?;
        if request.transactions.is_empty() {
            return Err(SubmitRequestError::EmptyBatch);
        }
        if request.timeout_ms.unwrap_or(0) > WAIT_TIMEOUT_MS_MAX {
            return Err(SubmitRequestError::BadTimeout);
        }
        Ok(request)
    }
}

/// The message of the parser error that stops a too long transaction list.
const TOO_MANY_TRANSACTIONS: &str = "too many transactions";

/// Reads the transaction list, stopping with an error at the first one past the limit.
fn bounded_transactions<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    struct Bounded;
    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = Vec<String>;
        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(
                formatter,
                "a list of at most {SUBMIT_TRANSACTIONS_MAX} hex strings"
            )
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut transactions = Vec::new();
            while let Some(transaction) = seq.next_element::<String>()? {
                if transactions.len() == SUBMIT_TRANSACTIONS_MAX {
                    return Err(serde::de::Error::custom(TOO_MANY_TRANSACTIONS));
                }
                transactions.push(transaction);
            }
            Ok(transactions)
        }
    }
    deserializer.deserialize_seq(Bounded)
}

/// Where one submitted transaction stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResult {
    /// Transaction id, hex.
    pub tx_id: String,
    /// "received" (queued, not yet committed when the response was sent), "committed", or
    /// "retry" (dropped before ordering because this node lost leadership or is stopping:
    /// resubmit, which is safe since transfer ids are idempotent).
    pub status: String,
    /// Block height, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Position in the block, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Outcome, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ResultCode>,
    /// Once committed: "settled" (the code is `ok`) or "rejected" (any other code). The
    /// lifecycle is received, then committed at a height, then settled or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Per-operation outcomes, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<ResultCode>>,
}

/// An error body: a stable code, a message saying what to fix, and the offending item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
    /// Index of the offending transaction in the request, where one is at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

/// Response of POST /v1/transactions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitResponse {
    /// One result per submitted transaction, in order.
    pub results: Vec<SubmitResult>,
    /// Set (with HTTP 422) when a waited-for transaction was rejected by the ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// Any error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// GET /v1/transactions/{tx_id}.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransactionResponse {
    /// Transaction id, hex.
    pub tx_id: String,
    /// "received" or "committed".
    pub status: String,
    /// Block height, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Position in the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Block time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_time_ms: Option<u64>,
    /// The receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptView>,
    /// The decoded transaction (absent if its bytes were not a valid envelope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionView>,
    /// Height of this node's chain head when it answered.
    #[serde(default)]
    pub head_height: u64,
}

/// GET /v1/accounts/{id}.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountResponse {
    /// Height the read reflects.
    pub height: u64,
    /// The account.
    pub account: AccountView,
    /// A regulator's hold on it, if one was placed (a frozen account without it was frozen
    /// in the genesis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<tpw_contracts::view::HoldView>,
}

/// GET /v1/transfers/{participant}/{id}.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferResponse {
    /// Height the read reflects.
    pub height: u64,
    /// The transfer.
    pub transfer: TransferView,
    /// The escrow terms and approvals, when the transfer is an escrow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow: Option<tpw_contracts::view::EscrowView>,
    /// The reversals of this transfer, if it was reversed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal: Option<tpw_contracts::view::ReversalView>,
    /// The counter leg, when the transfer is an exchange offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<tpw_contracts::view::ExchangeView>,
    /// True while the transfer waits for a checker's approval (maker-checker).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_approval: bool,
}

/// GET /v1/assets/{id}: an asset and its supply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssetResponse {
    /// Height the read reflects.
    pub height: u64,
    /// The asset's id.
    pub id: u32,
    /// Its code, such as "EUR".
    pub code: String,
    /// Digits after the decimal point.
    pub scale: u8,
    /// The issuing participant (the only signer of its mint and burn).
    pub issuer: u64,
    /// Its issuance account.
    #[serde(with = "tpw_contracts::decimal")]
    pub issuance_account: u128,
    /// Most that may be outstanding (set by the genesis, then by governance).
    #[serde(with = "tpw_contracts::decimal")]
    pub supply_cap: u128,
    /// In circulation: minted (the genesis funding included) minus burned; equal to the posted
    /// balances of every account of the asset but the issuance account.
    #[serde(with = "tpw_contracts::decimal")]
    pub outstanding: u128,
}

/// GET /v1/limits/{participant}/{asset}.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitsResponse {
    /// Height the read reflects.
    pub height: u64,
    /// The participant.
    pub participant: u64,
    /// The asset.
    pub asset: u32,
    /// The asset's per-transfer maximum (set by the operator); null: none.
    #[serde(with = "tpw_contracts::decimal::option")]
    pub transfer_max: Option<u128>,
    /// The participant's daily outflow cap in the asset (set by its bank); null: none.
    #[serde(with = "tpw_contracts::decimal::option")]
    pub outflow_cap: Option<u128>,
    /// What the participant sent in the asset on the head block's UTC day (counted only
    /// while a cap is set).
    #[serde(with = "tpw_contracts::decimal")]
    pub spent_today: u128,
}

/// GET /v1/netting/{cycle}.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CycleResponse {
    /// Height the read reflects.
    pub height: u64,
    /// The cycle and, once settled, its report.
    pub cycle: tpw_contracts::view::CycleView,
    /// The participants that may use it, ascending.
    pub members: Vec<u64>,
}

/// GET /v1/credit-limits/{creditor}/{debtor}/{asset}.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditLimitResponse {
    /// Height the read reflects.
    pub height: u64,
    /// The participant that grants the credit.
    pub creditor: u64,
    /// The participant it is granted to.
    pub debtor: u64,
    /// The asset.
    pub asset: u32,
    /// The most the debtor may owe the creditor net within one cycle; null: no limit.
    #[serde(with = "tpw_contracts::decimal::option")]
    pub limit: Option<u128>,
}

/// GET /v1/blocks/{height}.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockResponse {
    /// Height of this node's chain head when it answered.
    #[serde(default)]
    pub head_height: u64,
    /// Header.
    pub header: HeaderView,
    /// Transaction ids, hex.
    pub transactions: Vec<String>,
    /// Receipts.
    pub receipts: Vec<ReceiptView>,
}

/// GET /v1/blocks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecentBlocksResponse {
    /// Height of this node's chain head when it answered.
    #[serde(default)]
    pub head_height: u64,
    /// Newest first.
    pub blocks: Vec<HeaderView>,
}

/// GET /v1/status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResponse {
    /// This node's Raft id.
    pub node_id: u64,
    /// Network id, hex.
    pub network_id: String,
    /// Raft role.
    pub role: String,
    /// Raft term.
    pub term: u64,
    /// Known leader.
    pub leader_id: Option<u64>,
    /// Raft commit index.
    pub commit_index: u64,
    /// Raft applied index.
    pub applied_index: u64,
    /// Block height.
    pub height: u64,
    /// Head hash, hex.
    pub head_hash: String,
    /// State root, hex.
    pub state_root: String,
    /// Head block time.
    pub block_time_ms: u64,
    /// Transactions queued for a block.
    pub queue_depth: usize,
    /// Blocks whose leader-attested head differed from this node's chain (0 when healthy).
    #[serde(default)]
    pub divergence_alarms: u64,
    /// Snapshots installed on this node since it started.
    #[serde(default)]
    pub snapshots_installed: u64,
    /// Raft log entries up to this index are compacted away.
    #[serde(default)]
    pub log_compacted_index: u64,
    /// Blocks below an installed snapshot not yet fetched from peers (0 when the chain is
    /// complete from genesis).
    #[serde(default)]
    pub blocks_missing: u64,
    /// Voting nodes in Raft's configuration as this node applied it.
    #[serde(default)]
    pub voters: Vec<u64>,
    /// Learners: observers, and added voters still catching up.
    #[serde(default)]
    pub learners: Vec<u64>,
}

/// One ledger event, as the event stream (`GET /v1/events`) and webhooks deliver it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// `height.sequence`: the same on every node; resume after it.
    pub cursor: String,
    /// Block height.
    pub height: u64,
    /// Position among the block's events, from 0.
    pub sequence: u32,
    /// Block time.
    pub block_time_ms: u64,
    /// "operation" (one operation of a transaction), "transaction" (a transaction refused
    /// before any operation ran), "pending_expired" or "cycle_settled".
    pub kind: String,
    /// "settled" (applied) or "rejected" (see `code`).
    pub status: String,
    /// The result code.
    pub code: tpw_contracts::ResultCode,
    /// The transaction, for operation and transaction events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<String>,
    /// The transaction's position in the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// The operation's index in the transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_index: Option<u32>,
    /// The signing participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<u64>,
    /// The transfer it records (the client's transfer id), or the expired transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<tpw_contracts::view::TransferRef>,
    /// The netting cycle settled by time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<String>,
    /// The operation, as submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<tpw_contracts::view::OperationView>,
}

/// GET /v1/webhooks: the signed-in participant's endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhooksResponse {
    /// Its endpoints.
    pub endpoints: Vec<WebhookView>,
}

/// One webhook endpoint and its delivery state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookView {
    /// Endpoint number.
    pub endpoint: u16,
    /// Where deliveries go.
    pub url: String,
    /// The block that registered it: deliveries start after it.
    pub registered_height: u64,
    /// Cursor of the last event delivered or dead-lettered, as this node knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<String>,
    /// Deliveries that exhausted their attempts.
    pub dead_letters: Vec<DeadLetterView>,
}

/// A dead-lettered delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetterView {
    /// The event's cursor.
    pub cursor: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
}

/// GET /v1/nodes: the node set, whose keys sign webhook deliveries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodesResponse {
    /// The network id.
    pub network_id: String,
    /// The height the node set is read at.
    pub height: u64,
    /// Every node the ledger records, active and removed (removed ones keep their record).
    pub nodes: Vec<tpw_contracts::governance_view::NodeView>,
}

/// GET /v1/governance/proposals: proposals by id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProposalsResponse {
    /// The height read at.
    pub height: u64,
    /// The proposals, ascending by id.
    pub proposals: Vec<tpw_contracts::governance_view::ProposalView>,
}

/// GET /v1/proofs/{participant}/{id}: an inclusion proof and where its headers end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofResponse {
    /// The block holding the transfer's transaction.
    pub height: u64,
    /// The height the proof's headers end at.
    pub head_height: u64,
    /// That header's hash: compare it with a head you trust.
    pub head_hash: String,
    /// Hex of `tpw_contracts::proof::InclusionProof::to_bytes` (docs/encoding.md).
    pub proof: String,
}
