//! A Rust client for the node's HTTP API, used by the CLI and the testnet tools.

use crate::api_types::*;
use crate::limits::{
    CLIENT_EVENT_STREAM_TIMEOUT, CLIENT_IDLE_CONNECTIONS_MAX, CLIENT_IDLE_CONNECTION_TIMEOUT,
    CLIENT_RATE_LIMIT_PAUSE, CLIENT_RATE_LIMIT_RETRIES_MAX, CLIENT_REQUEST_TIMEOUT,
};
use tpw_contracts::model::Hash;
use tpw_contracts::{Body, Transaction, Validity};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not complete.
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The signer did not sign (a token that refused or is gone).
    #[error("{signer} did not sign: {message}")]
    Signer {
        /// Which signer.
        signer: String,
        /// Why.
        message: String,
    },
    /// The node answered with an error.
    #[error("node answered {status}: {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// What to fix.
        message: String,
    },
}

/// A connection to one node; with a key, reads are signed as that key's participant (see
/// [`crate::request_auth`]).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    identity: Option<std::sync::Arc<dyn crate::signer::Signer>>,
    network_id: std::sync::Arc<std::sync::OnceLock<Hash>>,
}

impl Client {
    /// A client for the node at `base` (such as https://127.0.0.1:7100), trusting what this
    /// process trusts (see [`crate::tls::client`]).
    pub fn new(base: &str) -> Self {
        Self::with_http(base, crate::tls::client::http_builder())
    }

    /// A client for the node at `base` with its own TLS (trust and client certificate).
    pub fn with_tls(base: &str, tls: &crate::tls::ClientTls) -> Result<Self, crate::tls::TlsError> {
        let config = tls.config()?;
        Ok(Self::with_http(
            base,
            reqwest::Client::builder().use_preconfigured_tls(config),
        ))
    }

    fn with_http(base: &str, builder: reqwest::ClientBuilder) -> Self {
        let http = builder
            .pool_max_idle_per_host(CLIENT_IDLE_CONNECTIONS_MAX)
            // A node closes a connection idle for its header read timeout: let it go first.
            .pool_idle_timeout(CLIENT_IDLE_CONNECTION_TIMEOUT)
            .timeout(CLIENT_REQUEST_TIMEOUT)
            .build()
            .expect("a client with a rustls configuration always builds");
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            identity: None,
            network_id: std::sync::Arc::default(),
        }
    }

    /// The same node, with reads signed by `key` (a key registered to a participant).
    pub fn with_key(self, key: &ed25519_dalek::SigningKey) -> Self {
        self.with_signer(std::sync::Arc::new(crate::signer::KeySigner::new(
            key.clone(),
            "a key in memory",
        )))
    }

    /// The same node, with reads signed by `signer` (a key file or a token's key).
    pub fn with_signer(mut self, signer: std::sync::Arc<dyn crate::signer::Signer>) -> Self {
        self.identity = Some(signer);
        self
    }

    /// A GET request for `path`, signed when this client has a key.
    async fn get_request(
        &self,
        path: &str,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        self.signed_request("GET", path, url, b"").await
    }

    /// A request for `path` with `body`, signed when this client has a key.
    async fn signed_request(
        &self,
        method: &str,
        path: &str,
        url: &str,
        body: &[u8],
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let mut request = if method == "POST" {
            self.http.post(url).body(body.to_vec())
        } else {
            self.http.get(url)
        };
        if let Some(signer) = &self.identity {
            let network_id = match self.network_id.get() {
                Some(id) => *id,
                None => {
                    let id = self.network_id().await?;
                    *self.network_id.get_or_init(|| id)
                }
            };
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis() as u64);
            let headers = crate::request_auth::headers_with(
                signer.public_key(),
                |message| signer.sign(message),
                &network_id,
                method,
                path,
                now_ms,
                body,
            )
            .map_err(|error| ClientError::Signer {
                signer: signer.describe(),
                message: error.to_string(),
            })?;
            for (name, value) in headers {
                request = request.header(name, value);
            }
        }
        Ok(request)
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let http = |source| ClientError::Http {
            url: url.to_string(),
            source,
        };
        let response = request.send().await.map_err(http)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(http)?.to_vec();
        Ok((status, body))
    }

    fn api_error(status: u16, body: &[u8]) -> ClientError {
        match serde_json::from_slice::<ErrorResponse>(body) {
            Ok(error) => ClientError::Api {
                status,
                code: error.error.code,
                message: error.error.message,
            },
            Err(_) => ClientError::Api {
                status,
                code: "unexpected".into(),
                message: String::from_utf8_lossy(body).into_owned(),
            },
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, ClientError> {
        let url = format!("{}{path}", self.base);
        // A rate-limited read is signed anew and retried after the node's Retry-After.
        for _ in 0..CLIENT_RATE_LIMIT_RETRIES_MAX {
            let request = self.get_request(path, &url).await?;
            match self.decode_get(request, &url).await {
                Err(ClientError::Api { status: 429, .. }) => {
                    tokio::time::sleep(CLIENT_RATE_LIMIT_PAUSE).await;
                }
                other => return other,
            }
        }
        let request = self.get_request(path, &url).await?;
        self.decode_get(request, &url).await
    }

    /// A GET of a public endpoint (never signed).
    async fn get_public<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, ClientError> {
        let url = format!("{}{path}", self.base);
        self.decode_get(self.http.get(&url), &url).await
    }

    async fn decode_get<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Option<T>, ClientError> {
        let url = url.to_string();
        let (status, body) = self.send(request, &url).await?;
        match status {
            200 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|error| ClientError::Api {
                    status,
                    code: "bad_response".into(),
                    message: error.to_string(),
                }),
            404 => Ok(None),
            _ => Err(Self::api_error(status, &body)),
        }
    }

    /// GET /v1/health: whether the node serves.
    pub async fn healthy(&self) -> bool {
        let url = format!("{}/v1/health", self.base);
        matches!(self.send(self.http.get(&url), &url).await, Ok((200, _)))
    }

    /// GET /v1/status.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.get_public("/v1/status")
            .await?
            .ok_or(ClientError::Api {
                status: 404,
                code: "not_found".into(),
                message: "no status".into(),
            })
    }

    /// The network id, from the node's status.
    pub async fn network_id(&self) -> Result<Hash, ClientError> {
        let status = self.status().await?;
        hex::decode(&status.network_id)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(ClientError::Api {
                status: 200,
                code: "bad_response".into(),
                message: "network_id is not 32 bytes of hex".into(),
            })
    }

    /// POST /v1/transactions. A 422 (a waited-for rejection) is returned as a response, since it
    /// carries the per-transaction results.
    pub async fn submit(
        &self,
        envelopes: &[Vec<u8>],
        wait: bool,
        timeout_ms: Option<u64>,
    ) -> Result<(u16, SubmitResponse), ClientError> {
        let request = SubmitRequest {
            transactions: envelopes.iter().map(hex::encode).collect(),
            wait,
            timeout_ms,
        };
        let url = format!("{}/v1/transactions", self.base);
        let (status, body) = self.send(self.http.post(&url).json(&request), &url).await?;
        match status {
            200 | 202 | 422 => serde_json::from_slice(&body)
                .map(|response| (status, response))
                .map_err(|_| Self::api_error(status, &body)),
            _ => Err(Self::api_error(status, &body)),
        }
    }

    /// Signs a body with `key` for this node's network and submits it.
    pub async fn sign_and_submit(
        &self,
        key: &ed25519_dalek::SigningKey,
        body: Body,
        wait: bool,
    ) -> Result<(u16, SubmitResponse), ClientError> {
        let network_id = self.network_id().await?;
        let envelope = Transaction::sign(network_id, key, fresh_validity(), body).to_bytes();
        self.submit(&[envelope], wait, None).await
    }

    /// Signs a body with `signer` (a key file or a token's key) for this node's network and
    /// submits it.
    pub async fn sign_with_and_submit(
        &self,
        signer: &dyn crate::signer::Signer,
        body: Body,
        wait: bool,
    ) -> Result<(u16, SubmitResponse), ClientError> {
        let network_id = self.network_id().await?;
        let envelope = Transaction::sign_with(
            network_id,
            signer.public_key(),
            fresh_validity(),
            body,
            |message| signer.sign(message),
        )
        .map_err(|error| ClientError::Signer {
            signer: signer.describe(),
            message: error.to_string(),
        })?
        .to_bytes();
        self.submit(&[envelope], wait, None).await
    }

    /// GET /v1/assets/{id}: an asset and its supply.
    pub async fn asset(&self, id: u32) -> Result<Option<AssetResponse>, ClientError> {
        self.get(&format!("/v1/assets/{id}")).await
    }

    /// GET /v1/accounts/{id}.
    pub async fn account(&self, id: u128) -> Result<Option<AccountResponse>, ClientError> {
        self.get(&format!("/v1/accounts/{id}")).await
    }

    /// GET /v1/transactions/{tx_id}.
    pub async fn transaction(
        &self,
        tx_id: &str,
    ) -> Result<Option<TransactionResponse>, ClientError> {
        self.get(&format!("/v1/transactions/{tx_id}")).await
    }

    /// GET /v1/transfers/{participant}/{id}.
    pub async fn transfer(
        &self,
        participant: u64,
        id: u128,
    ) -> Result<Option<TransferResponse>, ClientError> {
        self.get(&format!("/v1/transfers/{participant}/{id}")).await
    }

    /// GET /v1/proofs/{participant}/{id}: an inclusion proof for a transfer, its headers
    /// ending at the head or at `up_to`.
    pub async fn proof(
        &self,
        participant: u64,
        id: u128,
        up_to: Option<u64>,
    ) -> Result<Option<ProofResponse>, ClientError> {
        let query = up_to
            .map(|height| format!("?up_to={height}"))
            .unwrap_or_default();
        self.get(&format!("/v1/proofs/{participant}/{id}{query}"))
            .await
    }

    /// GET /v1/netting/{cycle}.
    pub async fn netting_cycle(&self, cycle: u128) -> Result<Option<CycleResponse>, ClientError> {
        self.get(&format!("/v1/netting/{cycle}")).await
    }

    /// GET /v1/events: the signing participant's events after `after` (a cursor), or from now.
    pub async fn events(&self, after: Option<&str>) -> Result<EventStream, ClientError> {
        let path = match after {
            Some(cursor) => format!("/v1/events?after={cursor}"),
            None => "/v1/events".to_string(),
        };
        let url = format!("{}{path}", self.base);
        // A stream lives as long as the client reads it.
        let request = self
            .get_request(&path, &url)
            .await?
            .timeout(CLIENT_EVENT_STREAM_TIMEOUT);
        let http = |source| ClientError::Http {
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(http)?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.bytes().await.map_err(http)?;
            return Err(Self::api_error(status, &body));
        }
        Ok(EventStream {
            response,
            buffer: Vec::new(),
            url,
        })
    }

    /// GET /v1/accounts/{id}/statement with a query string (such as `limit=100&format=csv`):
    /// the raw body, JSON or CSV.
    pub async fn statement(
        &self,
        account: u128,
        query: &str,
    ) -> Result<Option<String>, ClientError> {
        let path = if query.is_empty() {
            format!("/v1/accounts/{account}/statement")
        } else {
            format!("/v1/accounts/{account}/statement?{query}")
        };
        let url = format!("{}{path}", self.base);
        let request = self.get_request(&path, &url).await?;
        let (status, body) = self.send(request, &url).await?;
        match status {
            200 => Ok(Some(String::from_utf8_lossy(&body).into_owned())),
            404 => Ok(None),
            _ => Err(Self::api_error(status, &body)),
        }
    }

    /// GET /v1/webhooks: the signing participant's webhook endpoints and dead letters.
    pub async fn webhooks(&self) -> Result<WebhooksResponse, ClientError> {
        self.get("/v1/webhooks").await?.ok_or(ClientError::Api {
            status: 404,
            code: "not_found".into(),
            message: "the node has no webhooks endpoint".into(),
        })
    }

    /// POST /v1/webhooks/{endpoint}/replay: delivers the endpoint's dead letters again (the
    /// leader answers; others say `not_leader`).
    pub async fn replay_webhook(&self, endpoint: u16) -> Result<(), ClientError> {
        let path = format!("/v1/webhooks/{endpoint}/replay");
        let url = format!("{}{path}", self.base);
        let request = self.signed_request("POST", &path, &url, b"").await?;
        let (status, body) = self.send(request, &url).await?;
        match status {
            202 => Ok(()),
            _ => Err(Self::api_error(status, &body)),
        }
    }

    /// GET /v1/nodes: the node set, whose keys sign webhook deliveries.
    pub async fn nodes(&self) -> Result<NodesResponse, ClientError> {
        self.get_public("/v1/nodes").await?.ok_or(ClientError::Api {
            status: 404,
            code: "not_found".into(),
            message: "the node has no nodes endpoint".into(),
        })
    }

    /// GET /v1/governance/proposals: proposals from id `from`, ascending.
    pub async fn proposals(&self, from: u64) -> Result<Option<ProposalsResponse>, ClientError> {
        self.get(&format!("/v1/governance/proposals?from={from}"))
            .await
    }

    /// GET /v1/governance/proposals/{id}.
    pub async fn proposal(
        &self,
        id: u64,
    ) -> Result<Option<tpw_contracts::governance_view::ProposalView>, ClientError> {
        self.get(&format!("/v1/governance/proposals/{id}")).await
    }

    /// GET /v1/limits/{participant}/{asset}.
    pub async fn limits(
        &self,
        participant: u64,
        asset: u32,
    ) -> Result<Option<LimitsResponse>, ClientError> {
        self.get(&format!("/v1/limits/{participant}/{asset}")).await
    }

    /// GET /v1/credit-limits/{creditor}/{debtor}/{asset}.
    pub async fn credit_limit(
        &self,
        creditor: u64,
        debtor: u64,
        asset: u32,
    ) -> Result<Option<CreditLimitResponse>, ClientError> {
        self.get(&format!("/v1/credit-limits/{creditor}/{debtor}/{asset}"))
            .await
    }

    /// GET /v1/blocks/{height}.
    pub async fn block(&self, height: u64) -> Result<Option<BlockResponse>, ClientError> {
        self.get(&format!("/v1/blocks/{height}")).await
    }
}

/// An open event stream (Server-Sent Events).
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    url: String,
}

impl EventStream {
    /// The next event; `None` when the node closed the stream.
    pub async fn next(&mut self) -> Result<Option<EventView>, ClientError> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|window| window == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&frame);
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(|data| data.strip_prefix(' ').unwrap_or(data))
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return serde_json::from_str(&data.join("\n"))
                    .map(Some)
                    .map_err(|error| ClientError::Api {
                        status: 200,
                        code: "bad_response".into(),
                        message: format!("an event is not JSON: {error}"),
                    });
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.buffer.extend_from_slice(&bytes),
                Ok(None) => return Ok(None),
                Err(source) => {
                    return Err(ClientError::Http {
                        url: self.url.clone(),
                        source,
                    })
                }
            }
        }
    }
}

/// How long an envelope signed by [`fresh_validity`] may apply: a retry of it within this
/// window applies once; after it the ledger answers `expired` (docs/encoding.md).
pub const VALIDITY_MS: u64 = 10 * 60 * 1000;

/// A validity for a new submission: a nonce no other submission of this process uses (a
/// counter started at a random point) and a window of [`VALIDITY_MS`] from this machine's
/// clock. Keep the envelope to retry it; sign again for a submission meant to apply again.
pub fn fresh_validity() -> Validity {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let mut seed = [0u8; 8];
        if getrandom::getrandom(&mut seed).is_err() {
            // No OS randomness: the clock in nanoseconds and the process id still make a start
            // no other process of this machine shares.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos() as u64)
                .unwrap_or(0);
            seed = (nanos ^ (u64::from(std::process::id()) << 40)).to_le_bytes();
        }
        std::sync::atomic::AtomicU64::new(u64::from_le_bytes(seed))
    });
    let nonce = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0);
    Validity::new(nonce, now_ms.saturating_add(VALIDITY_MS))
}
