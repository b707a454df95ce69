//! `tpw-testnet hostile`: a corpus of hostile requests against a real node on loopback. Each
//! item of the outside review (replayed operations, slow and oversized requests, malformed
//! HTTP, bad paths, queries and cursors, replayed signed reads, overdrafts, unbounded accounts,
//! mints by a partner, expired and old-format envelopes, too many streams) is sent, and the
//! run checks what a bank would: no answer is a 5xx, none takes longer than the node's
//! configured timeouts allow, the node still serves afterwards, every refusal names a stable
//! code, and no refused request changes the ledger (the accounts and the supply it names read
//! the same before and after).

use anyhow::Context;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tpw_contracts::ops::{IssuanceFields, Mint, OpenAccount, SetHold};
use tpw_contracts::{Body, Operation, Transaction, Validity};
use tpw_node::client::fresh_validity;
use tpw_node::demo::{account_of, EUR};

/// The node's request timeout in the run (a body must arrive within it).
const REQUEST_TIMEOUT_MS: u64 = 3_000;
/// Event streams one participant may hold in the run.
const STREAMS_PER_PARTICIPANT: u64 = 2;
/// Slack on top of a configured timeout before an answer counts as a hang.
const SLACK: Duration = Duration::from_secs(3);

/// One hostile request and what came of it.
#[derive(Debug, Serialize)]
pub struct Item {
    /// What was sent.
    pub name: &'static str,
    /// The HTTP status, if one came (none: the node closed the connection, which is allowed).
    pub status: Option<u16>,
    /// The stable error or result code, if any.
    pub code: Option<String>,
    /// Milliseconds until the answer or the close.
    pub ms: u64,
    /// Whether it met its expectation (status class, code, time bound, state unchanged).
    pub ok: bool,
}

/// What the run found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Requests sent.
    pub requests: usize,
    /// Answers with a 5xx status.
    pub server_errors: usize,
    /// Requests not answered (or closed) within their bound.
    pub hangs: usize,
    /// Items that did not meet their expectation.
    pub failed: Vec<&'static str>,
    /// Whether the node still served at the end.
    pub serving: bool,
    /// Whether the ledger read the same after the refused requests as before.
    pub ledger_unchanged_by_refusals: bool,
    /// Every item.
    pub items: Vec<Item>,
}

/// A node to attack, and the keys of its demo participants.
struct Target {
    address: SocketAddr,
    /// Trusts the demo node's throwaway CA.
    tls: tokio_rustls::TlsConnector,
    base: String,
    network: [u8; 32],
    http: reqwest::Client,
    regulator: SigningKey,
    acme: SigningKey,
    items: Vec<Item>,
}

/// Starts a demo node in `dir` on a free loopback port and runs the corpus against it.
pub async fn run(dir: &Path) -> anyhow::Result<Report> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config_path = tpw_node::demo::prepare(
        dir,
        &format!("127.0.0.1:{port}"),
        tpw_node::demo::Serve::Tls,
    )?;
    let ca_file = tpw_node::demo::ca_file(dir);
    tpw_node::tls::client::trust_ca_file(&ca_file)?;
    let tls = tpw_node::tls::ClientTls::with_ca_file(&ca_file).config()?;
    let overrides = tpw_node::config::Overrides {
        new_node: true,
        ..Default::default()
    };
    let mut config = tpw_node::config::NodeConfig::load(Some(&config_path), &overrides)
        .map_err(|error| anyhow::anyhow!("{}", error.0))?;
    config.api.request_timeout_ms = REQUEST_TIMEOUT_MS;
    config.api.event_streams_per_participant = STREAMS_PER_PARTICIPANT;
    let node = tpw_node::node::start(&config).await?;
    let key = |stem: &str| -> anyhow::Result<SigningKey> {
        Ok(tpw_node::keys::load(
            &dir.join("keys").join(format!("{stem}.json")),
        )?)
    };
    let mut target = Target {
        address: node.api_address,
        tls: tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls)),
        base: format!("https://{}", node.api_address),
        network: tpw_node::node::load_genesis(&config.genesis_file)?.compute_network_id()?,
        http: tpw_node::tls::client::http_builder()
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS) + SLACK)
            .build()?,
        regulator: key("regulator")?,
        acme: key("acme")?,
        items: Vec::new(),
    };
    target.malformed_tls().await;
    target.malformed_http().await;
    target.slow_and_oversized().await;
    target.bad_paths_queries_and_cursors().await?;
    target.repeats().await?;
    let before = target.ledger_view().await?;
    target.refused_money().await?;
    let unchanged = target.ledger_view().await? == before;
    target.too_many_streams().await?;
    let serving = target
        .get("/v1/health")
        .await
        .is_ok_and(|(status, _)| status == 200);
    node.stop().await?;
    let items = target.items;
    Ok(Report {
        requests: items.len(),
        server_errors: items
            .iter()
            .filter(|item| item.status.is_some_and(|status| status >= 500))
            .count(),
        hangs: items
            .iter()
            .filter(|item| item.status.is_none() && item.code.as_deref() == Some("hang"))
            .count(),
        failed: items
            .iter()
            .filter(|item| !item.ok)
            .map(|item| item.name)
            .collect(),
        serving,
        ledger_unchanged_by_refusals: unchanged,
        items,
    })
}

/// What came back on a raw connection: the status line's code, or none if it closed.
struct Raw {
    status: Option<u16>,
    hung: bool,
    elapsed: Duration,
}

impl Target {
    fn note(&mut self, name: &'static str, raw: &Raw, ok: bool) {
        self.items.push(Item {
            name,
            status: raw.status,
            code: raw.hung.then(|| "hang".to_string()),
            ms: raw.elapsed.as_millis() as u64,
            ok: ok && !raw.hung && raw.status.is_none_or(|status| status < 500),
        });
    }

    /// Sends `parts` on a fresh connection, waiting `gap` between them, while reading until
    /// the status line arrives, the node closes, or `bound` passes (a hang).
    async fn raw(&self, parts: &[&[u8]], gap: Duration, bound: Duration) -> Raw {
        let started = Instant::now();
        let parts: Vec<Vec<u8>> = parts.iter().map(|part| part.to_vec()).collect();
        let outcome = tokio::time::timeout(bound, async {
            let stream = TcpStream::connect(self.address).await.ok()?;
            let name = rustls::pki_types::ServerName::from(self.address.ip());
            let stream = self.tls.connect(name, stream).await.ok()?;
            let (mut reader, mut writer) = tokio::io::split(stream);
            let writing = tokio::spawn(async move {
                for (index, part) in parts.iter().enumerate() {
                    if index > 0 {
                        tokio::time::sleep(gap).await;
                    }
                    if writer.write_all(part).await.is_err() {
                        break;
                    }
                }
                // Keep the connection open until the reader is done.
                tokio::time::sleep(Duration::from_secs(3_600)).await;
                drop(writer);
            });
            let mut answer = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                match reader.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(count) => {
                        answer.extend_from_slice(&buffer[..count]);
                        if answer.windows(2).any(|pair| pair == b"\r\n") {
                            break;
                        }
                    }
                }
            }
            writing.abort();
            Some(answer)
        })
        .await;
        let elapsed = started.elapsed();
        match outcome {
            Err(_) => Raw {
                status: None,
                hung: true,
                elapsed,
            },
            Ok(answer) => Raw {
                status: answer.as_deref().and_then(status_of),
                hung: false,
                elapsed,
            },
        }
    }

    /// What reaches the TLS listener before any HTTP: plain HTTP, bytes that are not TLS, and
    /// a client that never starts its handshake (cut off at the 10 s handshake bound).
    async fn malformed_tls(&mut self) {
        let cases: [(&'static str, &[u8], Duration); 3] = [
            (
                "plain HTTP to the TLS port",
                b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
                Duration::from_secs(5),
            ),
            (
                "random bytes instead of a ClientHello",
                &[0x9c; 512],
                Duration::from_secs(5),
            ),
            ("no handshake at all", b"", Duration::from_secs(15)),
        ];
        for (name, bytes, bound) in cases {
            let started = Instant::now();
            let closed = tokio::time::timeout(bound, async {
                let mut stream = TcpStream::connect(self.address).await.ok()?;
                stream.write_all(bytes).await.ok()?;
                let mut answer = Vec::new();
                // The node answers a TLS alert at most, then closes.
                let _ = stream.read_to_end(&mut answer).await;
                Some(answer)
            })
            .await;
            let raw = Raw {
                status: None,
                hung: !matches!(closed, Ok(Some(_))),
                elapsed: started.elapsed(),
            };
            let answered_http = matches!(&closed, Ok(Some(answer)) if answer.starts_with(b"HTTP"));
            self.note(name, &raw, !answered_http);
        }
    }

    async fn malformed_http(&mut self) {
        let quick = Duration::from_secs(5);
        let cases: [(&'static str, Vec<u8>); 4] = [
            ("garbage request line", b"GARBAGE\r\n\r\n".to_vec()),
            (
                "NUL in the method",
                b"G\0T /v1/health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            ),
            (
                "header without a colon",
                b"GET /v1/health HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
            ),
            (
                "HTTP/2 preface on HTTP/1",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            ),
        ];
        for (name, bytes) in cases {
            let raw = self.raw(&[&bytes], Duration::ZERO, quick).await;
            let ok = raw.status.is_none_or(|status| (400..500).contains(&status));
            self.note(name, &raw, ok);
        }
        // Headers past the 64 KiB read buffer: 431, never buffered without bound.
        let raw = self
            .raw(&[&cases_big_header()], Duration::ZERO, quick)
            .await;
        self.note("headers of 200 KB", &raw, raw.status == Some(431));
    }

    async fn slow_and_oversized(&mut self) {
        let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS) + SLACK;
        let chunk = b"POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7FFFFFFFFFFFFFFF\r\n{";
        let raw = self.raw(&[chunk], Duration::ZERO, timeout).await;
        let ok = raw.status.is_none_or(|status| (400..500).contains(&status));
        self.note("chunk size 7FFFFFFFFFFFFFFF", &raw, ok);

        let expect = b"POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\nExpect: 100-continue\r\n\r\n";
        let raw = self.raw(&[expect], Duration::ZERO, timeout).await;
        self.note(
            "Expect: 100-continue with 100 GB",
            &raw,
            raw.status == Some(413),
        );

        let body_head = b"POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
        let trickle: Vec<&[u8]> = std::iter::once(&body_head[..])
            .chain(std::iter::repeat_n(&b" "[..], 8))
            .collect();
        let raw = self
            .raw(&trickle, Duration::from_secs(1), timeout + SLACK)
            .await;
        self.note(
            "body trickled a byte a second",
            &raw,
            raw.status == Some(408),
        );

        // Headers trickled one line at a time: cut off by the 10 s header read timeout.
        let header_bound = tpw_node::limits::HTTP_HEADER_READ_TIMEOUT + SLACK;
        let lines: Vec<&[u8]> = std::iter::once(&b"GET /v1/health HTTP/1.1\r\n"[..])
            .chain(std::iter::repeat_n(&b"X-Slow: 1\r\n"[..], 20))
            .collect();
        let raw = self.raw(&lines, Duration::from_secs(2), header_bound).await;
        let ok = raw.elapsed <= header_bound && raw.status.is_none_or(|status| status == 408);
        self.note("headers trickled a line every 2 s", &raw, ok);

        // 16.5 MB of empty strings: refused at the 4097th, never parsed whole.
        let mut body = String::with_capacity(16_500_100);
        body.push_str("{\"transactions\":[\"\"");
        while body.len() < 16_500_000 {
            body.push_str(",\"\"");
        }
        body.push_str("]}");
        self.post_expect(
            "16.5 MB of empty strings",
            body.into_bytes(),
            413,
            "batch_too_large",
        )
        .await;
    }

    async fn bad_paths_queries_and_cursors(&mut self) -> anyhow::Result<()> {
        for (name, path, status, code) in [
            (
                "invalid UTF-8 in a path parameter",
                "/v1/accounts/%FF%FE",
                400,
                "bad_path",
            ),
            (
                "unknown query on /v1/proofs",
                "/v1/proofs/3/1?x=%FF",
                400,
                "bad_query",
            ),
            (
                "path parameter out of range",
                "/v1/accounts/340282366920938463463374607431768211456",
                400,
                "bad_account_id",
            ),
            ("unknown route", "/v1/../../etc/passwd", 404, "not_found"),
        ] {
            self.get_expect(name, path, None, status, code).await?;
        }
        let cursor = reqwest::header::HeaderValue::from_bytes("é".as_bytes())?;
        self.get_expect(
            "non-ASCII Last-Event-ID",
            "/v1/events",
            Some(("last-event-id", cursor)),
            400,
            "bad_cursor",
        )
        .await?;
        // A captured signed read, replayed: refused before it costs the victim anything.
        let path = "/v1/accounts/301";
        let headers = tpw_node::request_auth::headers(
            &self.regulator,
            &self.network,
            "GET",
            path,
            tpw_node::runtime::now_ms(),
            b"",
        );
        for name in ["signed read", "the same signed read replayed"] {
            let started = Instant::now();
            let mut request = self.http.get(format!("{}{path}", self.base));
            for (header, value) in &headers {
                request = request.header(*header, value);
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let expected = if name == "signed read" { 200 } else { 401 };
            let code = body["error"]["code"].as_str().map(String::from);
            let ok = status == expected
                && (expected == 200 || code.as_deref() == Some("replayed_request"));
            self.items.push(Item {
                name,
                status: Some(status),
                code,
                ms: started.elapsed().as_millis() as u64,
                ok,
            });
        }
        Ok(())
    }

    /// An operation without an id repeated on purpose applies each time; a retry of the same
    /// bytes is answered with its original commit and applies nothing.
    async fn repeats(&mut self) -> anyhow::Result<()> {
        let account = account_of(4, EUR);
        let hold = |frozen: bool| {
            Body::single(Operation::SetHold(SetHold {
                account,
                frozen,
                reason: u16::from(frozen),
            }))
        };
        let mut first = Vec::new();
        for (name, frozen) in [("hold", true), ("lift", false), ("hold again", true)] {
            let envelope = self.sign(&self.regulator.clone(), fresh_validity(), hold(frozen));
            if first.is_empty() {
                first = envelope.clone();
            }
            self.submit_expect(name, envelope, 200, "ok").await?;
        }
        let (_, view) = self.get(&format!("/v1/accounts/{account}")).await?;
        let frozen = view["hold"].is_object();
        self.items.push(Item {
            name: "hold, lift, hold again leaves the account held",
            status: Some(200),
            code: None,
            ms: 0,
            ok: frozen,
        });
        // The first hold's bytes again: its stored commit, and the account stays held.
        self.submit_expect("the first hold's bytes again", first, 200, "ok")
            .await?;
        Ok(())
    }

    /// Requests the ledger refuses: none may change the accounts or the supply they name.
    async fn refused_money(&mut self) -> anyhow::Result<()> {
        let acme = self.acme.clone();
        let overdraw = Operation::posted(
            9_001,
            account_of(3, EUR),
            account_of(5, EUR),
            EUR,
            1_000_000_000_000_000,
        );
        let envelope = self.sign(&acme, fresh_validity(), Body::single(overdraw));
        self.submit_expect("an overdraft of 10^18", envelope, 422, "exceeds_credits")
            .await?;
        let unbounded = Operation::OpenAccount(OpenAccount {
            account: 399,
            owner: 3,
            asset: EUR,
            flags: 0,
        });
        let envelope = self.sign(&acme, fresh_validity(), Body::single(unbounded));
        self.submit_expect(
            "an account without an outflow bound",
            envelope,
            422,
            "unbounded_account",
        )
        .await?;
        let mint = Operation::Mint(Mint(IssuanceFields {
            id: 9_002,
            account: account_of(3, EUR),
            asset: EUR,
            amount: 1_000_000,
        }));
        let envelope = self.sign(&acme, fresh_validity(), Body::single(mint));
        self.submit_expect("a partner's mint", envelope, 422, "issuer_only")
            .await?;
        let stale = Validity::new(1, 1_000);
        let pay = Operation::posted(9_003, account_of(3, EUR), account_of(5, EUR), EUR, 1);
        let envelope = self.sign(&acme, stale, Body::single(pay.clone()));
        self.submit_expect("an envelope whose window ended", envelope, 422, "expired")
            .await?;
        let mut old_format = self.sign(&acme, fresh_validity(), Body::single(pay));
        old_format[0] = 1;
        self.submit_expect(
            "an envelope of format 1",
            old_format,
            400,
            "unsupported_version",
        )
        .await?;
        Ok(())
    }

    async fn too_many_streams(&mut self) -> anyhow::Result<()> {
        let mut open = Vec::new();
        for _ in 0..STREAMS_PER_PARTICIPANT {
            let response = self.signed_get("/v1/events").await?;
            open.push(response);
        }
        let started = Instant::now();
        let response = self.signed_get("/v1/events").await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().map(String::from);
        self.items.push(Item {
            name: "one event stream more than allowed",
            status: Some(status),
            ms: started.elapsed().as_millis() as u64,
            ok: status == 429 && code.as_deref() == Some("too_many_streams"),
            code,
        });
        drop(open);
        Ok(())
    }

    /// The accounts and supply the refused requests name, as the regulator reads them.
    async fn ledger_view(&self) -> anyhow::Result<Vec<Value>> {
        let mut view = Vec::new();
        for path in [
            format!("/v1/accounts/{}", account_of(3, EUR)),
            format!("/v1/accounts/{}", account_of(5, EUR)),
            "/v1/accounts/399".to_string(),
            "/v1/assets/1".to_string(),
        ] {
            let (status, mut body) = self.get(&path).await?;
            if let Some(object) = body.as_object_mut() {
                object.remove("height");
            }
            view.push(json!({ "status": status, "body": body }));
        }
        Ok(view)
    }

    fn sign(&self, key: &SigningKey, validity: Validity, body: Body) -> Vec<u8> {
        Transaction::sign(self.network, key, validity, body).to_bytes()
    }

    /// A GET of `path` signed by the regulator (who may read everything).
    fn signed_request(&self, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.get(format!("{}{path}", self.base));
        let now_ms = tpw_node::runtime::now_ms();
        for (name, value) in tpw_node::request_auth::headers(
            &self.regulator,
            &self.network,
            "GET",
            path,
            now_ms,
            b"",
        ) {
            request = request.header(name, value);
        }
        request
    }

    async fn signed_get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self.signed_request(path).send().await?)
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self.signed_get(path).await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn get_expect(
        &mut self,
        name: &'static str,
        path: &str,
        header: Option<(&str, reqwest::header::HeaderValue)>,
        status: u16,
        code: &str,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut request = self.signed_request(path);
        if let Some((header, value)) = header {
            request = request.header(header, value);
        }
        let outcome = request.send().await;
        self.record(name, started, outcome, status, code).await
    }

    async fn post_expect(&mut self, name: &'static str, body: Vec<u8>, status: u16, code: &str) {
        let started = Instant::now();
        let outcome = self
            .http
            .post(format!("{}/v1/transactions", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        if let Err(error) = self.record(name, started, outcome, status, code).await {
            tracing::warn!(%error, name, "hostile request failed to send");
        }
    }

    async fn submit_expect(
        &mut self,
        name: &'static str,
        envelope: Vec<u8>,
        status: u16,
        code: &str,
    ) -> anyhow::Result<()> {
        let body = json!({ "transactions": [hex::encode(envelope)], "wait": true });
        self.post_expect(name, serde_json::to_vec(&body)?, status, code)
            .await;
        Ok(())
    }

    /// Records an HTTP answer: its status, and its code (an error's, else the first result's).
    async fn record(
        &mut self,
        name: &'static str,
        started: Instant,
        outcome: reqwest::Result<reqwest::Response>,
        status: u16,
        code: &str,
    ) -> anyhow::Result<()> {
        let (got, body) = match outcome {
            Ok(response) => {
                let got = response.status().as_u16();
                (
                    Some(got),
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
            Err(error) if error.is_timeout() => (None, json!({ "error": { "code": "hang" } })),
            Err(error) => return Err(error).context(name),
        };
        let found = body["error"]["code"]
            .as_str()
            .or(body["results"][0]["code"].as_str())
            .map(String::from);
        self.items.push(Item {
            name,
            status: got,
            ms: started.elapsed().as_millis() as u64,
            ok: got == Some(status) && found.as_deref() == Some(code),
            code: found,
        });
        Ok(())
    }
}

/// A request whose one header is 200 KB long.
fn cases_big_header() -> Vec<u8> {
    let mut bytes = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    bytes.extend(std::iter::repeat_n(b'a', 200_000));
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes
}

/// The status code of an HTTP/1.1 status line.
fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|byte| *byte == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split_whitespace();
    words
        .next()
        .filter(|version| version.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}
