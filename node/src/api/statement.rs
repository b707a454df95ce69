//! GET /v1/accounts/{id}/statement: a paged account statement for a height or time range,
//! each entry with its transfer id, counterparty account, signed amount, running balance and
//! block; JSON, or CSV with `format=csv`.

use super::{parse_u128, ApiError, AppState, Principal};
use crate::events::Cursor;
use crate::limits::{STATEMENT_CHUNK_ENTRIES, STATEMENT_PAGE_DEFAULT, STATEMENT_PAGE_MAX};
use crate::storage::statement::{self, StatementEntry};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatementQuery {
    from_height: Option<u64>,
    to_height: Option<u64>,
    from_time_ms: Option<u64>,
    to_time_ms: Option<u64>,
    after: Option<String>,
    limit: Option<usize>,
    format: Option<String>,
}

/// One line of a statement.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatementLine {
    /// `height.sequence`: pass it as `after` to continue.
    pub cursor: String,
    /// Block height.
    pub height: u64,
    /// Block time.
    pub block_time_ms: u64,
    /// "transfer" or "net_posting" (a netting cycle's net amount).
    pub kind: String,
    /// The transfer that moved the balance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<tpw_contracts::view::TransferRef>,
    /// The account on the other side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty_account: Option<String>,
    /// "credit" or "debit".
    pub direction: String,
    /// Amount moved, minor units.
    pub amount: String,
    /// Balance after this line: credits posted minus debits posted (may be negative).
    pub balance: String,
}

fn line(entry: &StatementEntry) -> StatementLine {
    StatementLine {
        cursor: format!("{}.{}", entry.height, entry.sequence),
        height: entry.height,
        block_time_ms: entry.time_ms,
        kind: if entry.transfer.is_some() {
            "transfer"
        } else {
            "net_posting"
        }
        .into(),
        transfer: entry
            .transfer
            .map(|(owner, id)| tpw_contracts::view::TransferRef { owner, id }),
        counterparty_account: entry
            .counterparty_account
            .map(|account| account.to_string()),
        direction: if entry.amount < 0 { "debit" } else { "credit" }.into(),
        amount: entry.amount.unsigned_abs().to_string(),
        balance: entry.balance.to_string(),
    }
}

pub(super) async fn statement(
    State(context): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    query: Result<Query<StatementQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let id = parse_u128(&id, "bad_account_id")?;
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", rejection.body_text())
    })?;
    let bad = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", message);
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(bad("format is json or csv")),
    };
    let limit = query.limit.unwrap_or(STATEMENT_PAGE_DEFAULT);
    if !(1..=STATEMENT_PAGE_MAX).contains(&limit) {
        return Err(bad("limit is 1 to 1000"));
    }
    let owner = match context.reader.account(id).map_err(ApiError::storage)? {
        Some((account, _, _)) => account.owner,
        None => return Err(ApiError::not_found("account")),
    };
    if !principal.sees(&context.reader, owner)? {
        return Err(ApiError::not_found("account"));
    }
    let (head, _) = context.reader.head().map_err(ApiError::storage)?;
    let to_height = query.to_height.unwrap_or(head.height).min(head.height);
    let mut start = (query.from_height.unwrap_or(1), None);
    if let Some(after) = &query.after {
        let cursor = Cursor::parse(after)
            .ok_or_else(|| bad("after is a cursor from a previous page: height.sequence"))?;
        start = match cursor.sequence {
            Some(sequence) => (cursor.height, Some(sequence)),
            None => (cursor.height.saturating_add(1), None),
        };
    }
    let (from_time, to_time) = (
        query.from_time_ms.unwrap_or(0),
        query.to_time_ms.unwrap_or(u64::MAX),
    );
    let db = context.reader.db();
    let mut lines = Vec::new();
    let mut more = false;
    'read: loop {
        let chunk = statement::read(db, id, start, to_height, STATEMENT_CHUNK_ENTRIES)
            .map_err(ApiError::storage)?;
        let exhausted = chunk.len() < STATEMENT_CHUNK_ENTRIES;
        for entry in &chunk {
            start = (entry.height, Some(entry.sequence));
            if entry.time_ms < from_time {
                continue;
            }
            if entry.time_ms > to_time {
                break 'read;
            }
            if lines.len() == limit {
                more = true;
                break 'read;
            }
            lines.push(line(entry));
        }
        if exhausted {
            break;
        }
    }
    let next = more
        .then(|| lines.last().map(|last| last.cursor.clone()))
        .flatten();
    if csv {
        let mut text = String::from(
            "height,cursor,block_time_ms,kind,transfer_owner,transfer_id,counterparty_account,direction,amount,balance\n",
        );
        for line in &lines {
            let (owner, transfer) = line
                .transfer
                .as_ref()
                .map_or((String::new(), String::new()), |transfer| {
                    (transfer.owner.to_string(), transfer.id.to_string())
                });
            text.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                line.height,
                line.cursor,
                line.block_time_ms,
                line.kind,
                owner,
                transfer,
                line.counterparty_account.clone().unwrap_or_default(),
                line.direction,
                line.amount,
                line.balance
            ));
        }
        let mut response =
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response();
        if let Some(next) = next {
            if let Ok(value) = next.parse() {
                response.headers_mut().insert("tpw-next-page", value);
            }
        }
        return Ok(response);
    }
    Ok(Json(serde_json::json!({
        "account": id.to_string(),
        "head_height": head.height,
        "entries": lines,
        "next": next,
    }))
    .into_response())
}
