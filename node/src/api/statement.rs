//! GET /v1/accounts/{id}/statement: a paged account statement for a height or time range,
//! each entry with its transfer id, counterparty account, signed amount, running balance and
//! block; JSON, or CSV with `format=csv`.

use super::extract::{ApiPath, ApiQuery};
use super::{parse_u128, ApiError, AppState, Principal};
use crate::events::Cursor;
use crate::limits::{STATEMENT_CHUNK_ENTRIES, STATEMENT_PAGE_DEFAULT, STATEMENT_PAGE_MAX};
use crate::storage::statement::{self, StatementEntry};
use axum::extract::{Extension, State};
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
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<StatementQuery>,
) -> Result<Response, ApiError> {
    let id = parse_u128(&id, "bad_account_id")?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(bad_query("format is json or csv")),
    };
    let limit = query.limit.unwrap_or(STATEMENT_PAGE_DEFAULT);
    if !(1..=STATEMENT_PAGE_MAX).contains(&limit) {
        return Err(bad_query("limit is 1 to 1000"));
    }
    let owner = match context.reader.account(id).map_err(ApiError::storage)? {
        Some((account, _, _)) => account.owner,
        None => return Err(ApiError::not_found("account")),
    };
    if !principal.sees(&context.reader, owner)? {
        return Err(ApiError::not_found("account"));
    }
    let (head, _) = context.reader.head().map_err(ApiError::storage)?;
    let range = PageRange {
        start: page_start(&query)?,
        to_height: query.to_height.unwrap_or(head.height).min(head.height),
        from_time: query.from_time_ms.unwrap_or(0),
        to_time: query.to_time_ms.unwrap_or(u64::MAX),
    };
    let (lines, more) = read_page(context.reader.db(), id, range, limit)?;
    let next = more
        .then(|| lines.last().map(|last| last.cursor.clone()))
        .flatten();
    if csv {
        return Ok(csv_response(&lines, next));
    }
    Ok(Json(serde_json::json!({
        "account": id.to_string(),
        "head_height": head.height,
        "entries": lines,
        "next": next,
    }))
    .into_response())
}

fn bad_query(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_query", message)
}

/// Where a page starts: after the `after` cursor, or at `from_height` (default 1).
fn page_start(query: &StatementQuery) -> Result<(u64, Option<u32>), ApiError> {
    let Some(after) = &query.after else {
        return Ok((query.from_height.unwrap_or(1), None));
    };
    let cursor = Cursor::parse(after)
        .ok_or_else(|| bad_query("after is a cursor from a previous page: height.sequence"))?;
    Ok(match cursor.sequence {
        Some(sequence) => (cursor.height, Some(sequence)),
        None => (cursor.height.saturating_add(1), None),
    })
}

/// The heights and block times a page reads within.
struct PageRange {
    /// (height, sequence exclusive) to read from.
    start: (u64, Option<u32>),
    to_height: u64,
    from_time: u64,
    to_time: u64,
}

/// Reads up to `limit` lines in the range, chunk by chunk; true with them when more follow.
fn read_page(
    db: &crate::storage::Db,
    id: u128,
    range: PageRange,
    limit: usize,
) -> Result<(Vec<StatementLine>, bool), ApiError> {
    let PageRange {
        mut start,
        to_height,
        from_time,
        to_time,
    } = range;
    let mut lines = Vec::new();
    loop {
        let chunk = statement::read(db, id, start, to_height, STATEMENT_CHUNK_ENTRIES)
            .map_err(ApiError::storage)?;
        let exhausted = chunk.len() < STATEMENT_CHUNK_ENTRIES;
        for entry in &chunk {
            start = (entry.height, Some(entry.sequence));
            if entry.time_ms < from_time {
                continue;
            }
            if entry.time_ms > to_time {
                return Ok((lines, false));
            }
            if lines.len() == limit {
                return Ok((lines, true));
            }
            lines.push(line(entry));
        }
        if exhausted {
            return Ok((lines, false));
        }
    }
}

/// The page as CSV with a header row; the next page's cursor goes in `tpw-next-page`.
fn csv_response(lines: &[StatementLine], next: Option<String>) -> Response {
    let mut text = String::from(
        "height,cursor,block_time_ms,kind,transfer_owner,transfer_id,counterparty_account,direction,amount,balance\n",
    );
    for line in lines {
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
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response();
    if let Some(next) = next {
        if let Ok(value) = next.parse() {
            response.headers_mut().insert("tpw-next-page", value);
        }
    }
    response
}
