//! The node's HTTP API against a real node (RocksDB in a temp folder, server on loopback):
//! reads, idempotent writes, restarts, idle-time expiry, and a stable code for every bad input.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tpw_contracts::ops::{
    CloseCycle, CreateEscrow, OpenAccount, OpenCycle, PostPending, ReleaseEscrow, SetCreditLimit,
    SetWebhook, SubmitObligation, Transfer,
};
use tpw_contracts::{Body, Operation, Transaction, TransferKind};

struct Api {
    http: reqwest::Client,
    base: String,
    reader: Option<(ed25519_dalek::SigningKey, [u8; 32])>,
}

impl Api {
    fn new(address: std::net::SocketAddr) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{address}"),
            reader: None,
        }
    }
    /// Signs reads as `key`'s participant (docs/api.md, Authentication).
    fn reading_as(mut self, key: ed25519_dalek::SigningKey, network: [u8; 32]) -> Self {
        self.reader = Some((key, network));
        self
    }
    async fn post_raw(&self, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/transactions", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
    async fn submit(&self, envelopes: &[Vec<u8>], wait: bool) -> (u16, Value) {
        let body = json!({ "transactions": envelopes.iter().map(hex::encode).collect::<Vec<_>>(), "wait": wait });
        self.post_raw(serde_json::to_vec(&body).unwrap()).await
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.get_with(path, None).await
    }
    /// A GET with one extra header; the status is checked before the body is read, so a
    /// stream that should have been refused fails the test instead of hanging it.
    async fn get_refused_with(&self, path: &str, header: (&str, &[u8])) -> (u16, Value) {
        let value = reqwest::header::HeaderValue::from_bytes(header.1).unwrap();
        self.get_with(path, Some((header.0, value))).await
    }
    async fn get_with(
        &self,
        path: &str,
        header: Option<(&str, reqwest::header::HeaderValue)>,
    ) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        let refusal_expected = header.is_some();
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        if let Some((key, network)) = &self.reader {
            let now_ms = tpw_node::runtime::now_ms();
            for (name, value) in
                tpw_node::request_auth::headers(key, network, "GET", path, now_ms, b"")
            {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert!(
            !refusal_expected || status >= 400,
            "{path}: answered {status} where a refusal was expected"
        );
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_stable_code_and_changes_nothing() {
    // Proves every kind of bad submission is refused with its own code and no balance moves.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let api =
        Api::new(node.api_address).reading_as(key(folder.path(), "regulator"), network_id(&config));
    let network = network_id(&config);
    let acme = key(folder.path(), "acme");
    let bank_a = key(folder.path(), "bank-a");
    let good = sign(
        network,
        &acme,
        payment(1, account_of(3, EUR), account_of(5, EUR), EUR, 10),
    );
    let mut trailing = good.clone();
    trailing.push(0);
    let mut bad_signature = good.clone();
    *bad_signature.last_mut().unwrap() ^= 1;
    let mut future_version = good.clone();
    future_version[0] = 9;
    let mut first_version = good.clone();
    first_version[0] = 1;
    // A window that ended long before the head's time.
    let expired = Transaction::sign(
        network,
        &acme,
        tpw_contracts::Validity::new(5, 1_000),
        Body::single(payment(4, account_of(3, EUR), account_of(5, EUR), EUR, 10)),
    )
    .to_bytes();
    let foreign = sign(
        [9; 32],
        &acme,
        payment(1, account_of(3, EUR), account_of(5, EUR), EUR, 10),
    );
    let stranger = sign(
        network,
        &ed25519_dalek::SigningKey::from_bytes(&[42; 32]),
        payment(1, 301, 501, EUR, 1),
    );
    let unknown_account = sign(
        network,
        &acme,
        payment(2, 999_999, account_of(3, EUR), EUR, 10),
    );
    let others_account = sign(
        network,
        &acme,
        payment(2, account_of(5, EUR), account_of(3, EUR), EUR, 10),
    );
    let mismatch = sign(
        network,
        &acme,
        payment(3, account_of(3, EUR), account_of(5, USD), USD, 10),
    );
    let hex_of = |bytes: &Vec<u8>| {
        json!({ "transactions": [hex::encode(bytes)] })
            .to_string()
            .into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("not json", b"{not json".to_vec(), 400, "malformed_json"),
        (
            "unknown field",
            br#"{"transactions":[],"extra":1}"#.to_vec(),
            400,
            "malformed_json",
        ),
        (
            "empty batch",
            br#"{"transactions":[]}"#.to_vec(),
            400,
            "empty_batch",
        ),
        (
            "bad hex",
            br#"{"transactions":["zz"]}"#.to_vec(),
            400,
            "bad_hex",
        ),
        (
            "truncated envelope",
            br#"{"transactions":["02"]}"#.to_vec(),
            400,
            "malformed_transaction",
        ),
        (
            "format version 1 (no nonce)",
            hex_of(&first_version),
            400,
            "unsupported_version",
        ),
        ("validity window ended", hex_of(&expired), 422, "expired"),
        (
            "trailing byte",
            hex_of(&trailing),
            400,
            "malformed_transaction",
        ),
        (
            "future version",
            hex_of(&future_version),
            400,
            "unsupported_version",
        ),
        ("wrong network", hex_of(&foreign), 400, "wrong_network"),
        (
            "bad signature",
            hex_of(&bad_signature),
            400,
            "bad_signature",
        ),
        ("unknown signer", hex_of(&stranger), 403, "unknown_signer"),
        (
            "unknown account",
            hex_of(&unknown_account),
            422,
            "unknown_account",
        ),
        (
            "another's account",
            hex_of(&others_account),
            422,
            "unknown_account",
        ),
        ("asset mismatch", hex_of(&mismatch), 422, "asset_mismatch"),
        (
            "timeout too long",
            json!({ "transactions": [hex::encode(&good)], "wait": true, "timeout_ms": 3_600_000 })
                .to_string()
                .into_bytes(),
            400,
            "bad_timeout",
        ),
        (
            "body too large",
            vec![b' '; tpw_node::limits::BODY_SIZE_MAX + 1],
            413,
            "body_too_large",
        ),
        (
            "batch too large",
            json!({ "transactions": vec!["00"; tpw_node::limits::SUBMIT_TRANSACTIONS_MAX + 1] })
                .to_string()
                .into_bytes(),
            413,
            "batch_too_large",
        ),
    ];
    for (name, body, status, expected) in cases {
        let (got_status, body) = api.post_raw(body).await;
        assert_eq!(
            (got_status, code(&body)),
            (status, expected),
            "{name}: {body}"
        );
        assert!(
            !body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{name} explains itself"
        );
    }
    // A batch with one bad member is refused whole, naming the member.
    let (status, body) = api
        .submit(&[good.clone(), bad_signature.clone()], false)
        .await;
    assert_eq!(
        (status, code(&body), body["error"]["index"].as_u64()),
        (400, "bad_signature", Some(1))
    );

    // Ledger rejections come back as 422 with the rule's code when the client waits: the
    // issuance account moves by mint and burn only, even for its issuer.
    let by_transfer = sign(
        network,
        &bank_a,
        payment(9, issuance_of(EUR), account_of(3, EUR), EUR, u128::MAX),
    );
    let (status, body) = api.submit(&[by_transfer], true).await;
    assert_eq!((status, code(&body)), (422, "issuance_account"), "{body}");
    let too_much = sign(
        network,
        &acme,
        payment(
            4,
            account_of(3, EUR),
            account_of(5, EUR),
            EUR,
            1_000_000_000,
        ),
    );
    let (status, body) = api.submit(&[too_much], true).await;
    assert_eq!((status, code(&body)), (422, "exceeds_credits"), "{body}");

    for account in [account_of(3, EUR), account_of(5, EUR)] {
        let (_, body) = api.get(&format!("/v1/accounts/{account}")).await;
        assert_eq!(
            body["account"]["debits_posted"], "0",
            "nothing was applied to {account}"
        );
    }
    for (path, status, expected) in [
        ("/v1/accounts/abc", 400, "bad_account_id"),
        ("/v1/accounts/-1", 400, "bad_account_id"),
        ("/v1/accounts/999999", 404, "not_found"),
        ("/v1/transactions/xyz", 400, "bad_tx_id"),
        (
            "/v1/transactions/00000000000000000000000000000000000000000000000000000000000000aa",
            404,
            "not_found",
        ),
        ("/v1/blocks/abc", 400, "bad_height"),
        ("/v1/blocks/99999", 404, "not_found"),
        ("/v1/blocks?limit=x", 400, "bad_query"),
        ("/v1/transfers/x/1", 400, "bad_participant_id"),
        ("/v1/nowhere", 404, "not_found"),
        // Refusals before the handler runs are JSON errors with a code too.
        ("/v1/accounts/%FF", 400, "bad_path"),
        ("/v1/transfers/%C3%28/1", 400, "bad_path"),
        ("/v1/governance/proposals/%FF", 400, "bad_path"),
        ("/v1/proofs/3/1?bogus=1", 400, "bad_query"),
        ("/v1/proofs/3/1?up_to=x", 400, "bad_query"),
        ("/v1/accounts/301/statement?limit=x", 400, "bad_query"),
    ] {
        let (got, body) = api.get(path).await;
        assert_eq!((got, code(&body)), (status, expected), "{path}");
    }
    let response = api
        .http
        .delete(format!("{}/v1/accounts/1", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "method_not_allowed");
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_answers_alike_whatever_other_partners_accounts_hold() {
    // Proves admission is no oracle for other partners' accounts (found by an outside review):
    // a batch [own -> X, unowned debit -> Y] is refused with the same status, code, index and
    // message whether X exists in the transfer's asset, exists in another asset, or does not
    // exist, and a debit account that exists but is another's is refused as one that does not.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let api = Api::new(node.api_address);
    let acme = key(folder.path(), "acme");
    let mut answers = Vec::new();
    for (case, credit) in [
        ("exists, same asset", account_of(5, EUR)),
        ("exists, other asset", account_of(5, USD)),
        ("absent", 987_654_321),
    ] {
        let first = sign(
            network,
            &acme,
            payment(41, account_of(3, EUR), credit, EUR, 1),
        );
        let second = sign(network, &acme, payment(42, 555_555, credit, EUR, 1));
        let (status, body) = api.submit(&[first, second], false).await;
        answers.push((case, status, body["error"].clone()));
    }
    for (case, status, error) in &answers {
        assert_eq!(
            (*status, error),
            (answers[0].1, &answers[0].2),
            "{case} answers like {}",
            answers[0].0
        );
    }
    assert_eq!(answers[0].1, 422);
    assert_eq!(answers[0].2["code"], "unknown_account");
    assert_eq!(answers[0].2["index"], 1);
    let mut refusals = Vec::new();
    for debit in [account_of(5, EUR), 555_555] {
        let envelope = sign(
            network,
            &acme,
            payment(43, debit, account_of(3, EUR), EUR, 1),
        );
        let (status, body) = api.submit(&[envelope], false).await;
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .replace(&debit.to_string(), "D");
        refusals.push((status, code(&body).to_string(), message));
    }
    assert_eq!(
        refusals[0], refusals[1],
        "another's account reads as an absent one"
    );
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_reads_retries_and_restart() {
    // Proves submit-and-wait, every read endpoint, idempotent resubmission, and state surviving a restart.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let api =
        Api::new(node.api_address).reading_as(key(folder.path(), "regulator"), network_id(&config));
    let network = network_id(&config);
    let acme = key(folder.path(), "acme");
    let payment = sign(
        network,
        &acme,
        payment(7, account_of(3, EUR), account_of(5, EUR), EUR, 250),
    );
    let (status, body) = api.submit(std::slice::from_ref(&payment), true).await;
    assert_eq!(status, 200, "{body}");
    let result = &body["results"][0];
    assert_eq!(
        (result["status"].as_str(), result["code"].as_str()),
        (Some("committed"), Some("ok"))
    );
    let tx_id = result["tx_id"].as_str().unwrap().to_string();
    let height = result["height"].as_u64().unwrap();

    let (status, again) = api.submit(&[payment], true).await;
    assert_eq!(
        (status, &again["results"][0]),
        (200, result),
        "a resubmission returns the original outcome"
    );

    let (_, tx) = api.get(&format!("/v1/transactions/{tx_id}")).await;
    assert_eq!(tx["status"], "committed");
    assert!(
        tx["head_height"].as_u64().unwrap() >= height,
        "a read says the height it reflects"
    );
    assert_eq!(tx["receipt"]["code"], "ok");
    assert_eq!(tx["transaction"]["operations"][0]["amount"], "250");
    let (_, account) = api
        .get(&format!("/v1/accounts/{}", account_of(3, EUR)))
        .await;
    assert_eq!(account["account"]["debits_posted"], "250");
    assert!(account["height"].as_u64().unwrap() >= height);
    let (_, transfer) = api.get("/v1/transfers/3/7").await;
    assert_eq!(
        (
            transfer["transfer"]["state"].as_str(),
            transfer["transfer"]["tx_id"].as_str()
        ),
        (Some("posted"), Some(tx_id.as_str()))
    );
    let (_, block) = api.get(&format!("/v1/blocks/{height}")).await;
    assert_eq!(block["transactions"][0], tx_id.as_str());
    let (_, recent) = api.get("/v1/blocks?limit=2").await;
    assert_eq!(recent["blocks"][0]["height"].as_u64(), Some(height));
    let (_, status_body) = api.get("/v1/status").await;
    assert_eq!(status_body["role"], "leader");
    let (health, _) = api.get("/v1/health").await;
    assert_eq!(health, 200);
    let (_, metrics) = api.get("/metrics").await;
    assert!(metrics.as_str().unwrap().contains("tpw_block_height"));
    let head = status_body["head_hash"].clone();

    node.stop().await.unwrap();
    let node = tpw_node::node::start(&config).await.unwrap();
    let api =
        Api::new(node.api_address).reading_as(key(folder.path(), "regulator"), network_id(&config));
    let (_, status_body) = api.get("/v1/status").await;
    assert_eq!(
        status_body["head_hash"], head,
        "the restarted node is at the same head"
    );
    let (_, account) = api
        .get(&format!("/v1/accounts/{}", account_of(3, EUR)))
        .await;
    assert_eq!(account["account"]["debits_posted"], "250");
    let next = sign(
        network,
        &acme,
        common::payment(8, account_of(3, EUR), account_of(5, EUR), EUR, 5),
    );
    let (status, _) = api.submit(&[next], true).await;
    assert_eq!(status, 200);
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_transfers_expire_on_an_idle_network() {
    // Proves the leader proposes a block when a pending timeout is due even without traffic.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let api =
        Api::new(node.api_address).reading_as(key(folder.path(), "regulator"), network_id(&config));
    let network = network_id(&config);
    let globex = key(folder.path(), "globex");
    let reserve = Operation::Transfer(Transfer {
        id: 1,
        debit_account: account_of(4, EUR),
        credit_account: account_of(6, EUR),
        asset: EUR,
        amount: 1_000,
        kind: TransferKind::Pending { timeout_ms: 300 },
        reference: 0,
    });
    let envelope = Transaction::sign(
        network,
        &globex,
        tpw_node::client::fresh_validity(),
        Body::single(reserve),
    )
    .to_bytes();
    let (status, _) = api.submit(&[envelope], true).await;
    assert_eq!(status, 200);
    let mut state = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, transfer) = api.get("/v1/transfers/4/1").await;
        state = transfer["transfer"]["state"].as_str().unwrap().to_string();
        if state == "pending_expired" {
            break;
        }
    }
    assert_eq!(state, "pending_expired");
    let (_, account) = api
        .get(&format!("/v1/accounts/{}", account_of(4, EUR)))
        .await;
    assert_eq!(account["account"]["debits_pending"], "0");
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_interface_answers_only_the_operator_token() {
    // Proves admin requests without the token or with a wrong one are refused with
    // admin_unauthorized, the right token gets through, and the node refuses to start with an
    // admin listener but no token file.
    let folder = tempfile::tempdir().unwrap();
    let mut config = common::prepare(folder.path());
    let admin = format!("127.0.0.1:{}", common::free_port());
    config.admin_listen = Some(admin.clone());
    assert!(
        config.validate().is_err(),
        "admin_listen needs a token file"
    );
    let token_file = folder.path().join("admin-token");
    let token = tpw_node::keys::write_admin_token(&token_file).unwrap();
    config.admin_token_file = Some(token_file);
    config.validate().unwrap();
    let node = tpw_node::node::start(&config).await.unwrap();
    let url = format!("http://{admin}/admin/v1/partition");
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "isolate_from": [] });
    for presented in [None, Some("0".repeat(64)), Some(format!("{token}x"))] {
        let mut request = http.post(&url).json(&body);
        if let Some(presented) = presented {
            request = request.bearer_auth(presented);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(code(&answer), "admin_unauthorized");
    }
    let response = http
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    // Authenticated; a one-node network has no peers to cut off.
    assert_eq!(response.status(), 409);
    node.stop().await.unwrap();
}

/// A seeded generator for the request mix.
struct Stream(u64);

impl Stream {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_across_roles_leak_nothing() {
    // Proves read scoping on 10,000 random signed requests: every principal (two banks, four
    // partners, the regulator, the operator) gets 200 exactly where the documented rule says it
    // may read (its own records, its sponsored partners' for a bank, everything for the
    // regulator), and everywhere else an answer byte-identical to that for a record that does
    // not exist; unsigned, tampered, stale and replayed requests get 401 and no data.
    use tpw_node::demo::PARTICIPANTS;
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let stem = |id: u64| PARTICIPANTS.iter().find(|p| p.0 == id).unwrap().1;
    let bank_of = |id: u64| PARTICIPANTS.iter().find(|p| p.0 == id).unwrap().4;
    let role = |id: u64| PARTICIPANTS.iter().find(|p| p.0 == id).unwrap().3;
    let principals: Vec<u64> = PARTICIPANTS.iter().map(|p| p.0).collect();
    let apis: Vec<Api> = principals
        .iter()
        .map(|id| Api::new(node.api_address).reading_as(key(folder.path(), stem(*id)), network))
        .collect();
    let regulator = &apis[principals.iter().position(|id| *id == 7).unwrap()];

    // Records to read: a payment from each partner to the next, a netting cycle between
    // 3 and 5 with a credit limit, and the transaction ids.
    let mut transfers = Vec::new();
    let mut transactions = Vec::new();
    for partner in 3..=6u64 {
        let to = if partner == 6 { 3 } else { partner + 1 };
        let envelope = sign(
            network,
            &key(folder.path(), stem(partner)),
            common::payment(1, account_of(partner, EUR), account_of(to, EUR), EUR, 10),
        );
        let (status, body) = regulator.submit(&[envelope], true).await;
        assert_eq!(status, 200, "{body}");
        transfers.push((partner, 1u128, partner, to));
        transactions.push((
            body["results"][0]["tx_id"].as_str().unwrap().to_string(),
            partner,
        ));
    }
    let bank_a = key(folder.path(), "bank-a");
    let open = Operation::OpenCycle(OpenCycle {
        cycle: 9,
        asset: EUR,
        closes_at_ms: tpw_node::runtime::now_ms() + 3_600_000,
        members: vec![3, 5],
    });
    let (status, _) = regulator
        .submit(&[sign(network, &bank_a, open)], true)
        .await;
    assert_eq!(status, 200);
    let limit = Operation::SetCreditLimit(SetCreditLimit {
        debtor: 3,
        asset: EUR,
        limit: Some(500),
    });
    let initech = key(folder.path(), "initech");
    let (status, _) = regulator
        .submit(&[sign(network, &initech, limit)], true)
        .await;
    assert_eq!(status, 200);

    // Who may read what belongs to `owner`.
    let sees = |principal: u64, owner: u64| {
        principal == owner
            || role(principal) == tpw_contracts::model::Role::Regulator
            || (role(principal) == tpw_contracts::model::Role::BankMember
                && bank_of(owner) == Some(principal))
    };
    let accounts: Vec<(u128, u64)> = tpw_node::demo::all_accounts()
        .into_iter()
        .map(|(account, asset)| {
            let owner = if account < 1000 {
                (account / 100) as u64
            } else if asset == EUR {
                1
            } else {
                2
            };
            (account, owner)
        })
        .collect();
    // The answer for something that does not exist, per kind, as each principal sees it.
    let mut missing = std::collections::BTreeMap::new();
    for (index, api) in apis.iter().enumerate() {
        for (kind, path) in [
            ("account", "/v1/accounts/999999".to_string()),
            ("transfer", "/v1/transfers/3/999999".to_string()),
            (
                "transaction",
                format!("/v1/transactions/{}", "ab".repeat(32)),
            ),
            ("cycle", "/v1/netting/999999".to_string()),
            ("block", "/v1/blocks/999999".to_string()),
        ] {
            let (status, body) = api.get(&path).await;
            assert_eq!(status, 404, "{kind} {body}");
            missing.insert((index, kind), body);
        }
    }
    let mut stream = Stream(0x9e37_79b9_7f4a_7c15);
    let (mut allowed, mut refused) = (0, 0);
    for request in 0..10_000 {
        let index = stream.below(apis.len() as u64) as usize;
        let principal = principals[index];
        let (kind, path, visible) = match stream.below(8) {
            0 | 1 => {
                let (account, owner) = accounts[stream.below(accounts.len() as u64) as usize];
                (
                    "account",
                    format!("/v1/accounts/{account}"),
                    sees(principal, owner),
                )
            }
            2 | 3 => {
                let (owner, id, debtor, creditor) =
                    transfers[stream.below(transfers.len() as u64) as usize];
                let visible = [owner, debtor, creditor]
                    .iter()
                    .any(|party| sees(principal, *party));
                ("transfer", format!("/v1/transfers/{owner}/{id}"), visible)
            }
            4 => {
                let (tx_id, signer) =
                    &transactions[stream.below(transactions.len() as u64) as usize];
                (
                    "transaction",
                    format!("/v1/transactions/{tx_id}"),
                    sees(principal, *signer),
                )
            }
            5 => (
                "cycle",
                "/v1/netting/9".to_string(),
                [1, 3, 5].iter().any(|party| sees(principal, *party)),
            ),
            6 => (
                "block",
                format!("/v1/blocks/{}", 1 + stream.below(4)),
                matches!(
                    role(principal),
                    tpw_contracts::model::Role::Regulator | tpw_contracts::model::Role::BankMember
                ),
            ),
            _ => {
                let (creditor, debtor) = (5u64, 3u64);
                (
                    "credit",
                    format!("/v1/credit-limits/{creditor}/{debtor}/{EUR}"),
                    sees(principal, creditor) || sees(principal, debtor),
                )
            }
        };
        let (status, body) = apis[index].get(&path).await;
        if visible {
            assert_eq!(status, 200, "request {request}: {principal} {path}: {body}");
            allowed += 1;
        } else {
            assert_eq!(status, 404, "request {request}: {principal} {path}: {body}");
            if let Some(expected) = missing.get(&(index, kind)) {
                assert_eq!(&body, expected, "request {request}: {principal} {path}");
            }
            refused += 1;
        }
    }
    assert!(allowed > 2_000 && refused > 2_000, "{allowed} {refused}");

    // Requests that are not properly signed never get data.
    let account = format!("/v1/accounts/{}", account_of(3, EUR));
    let (status, body) = Api::new(node.api_address).get(&account).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    let http = reqwest::Client::new();
    let url = format!("http://{}{account}", node.api_address);
    let acme = key(folder.path(), "acme");
    let now_ms = tpw_node::runtime::now_ms();
    let send = |headers: Vec<(&'static str, String)>| {
        let mut request = http.get(&url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, code(&body).to_string())
        }
    };
    let signed = tpw_node::request_auth::headers(&acme, &network, "GET", &account, now_ms, b"");
    assert_eq!(send(signed.to_vec()).await.0, 200);
    assert_eq!(
        send(signed.to_vec()).await,
        (401, "replayed_request".into())
    );
    let other_path =
        tpw_node::request_auth::headers(&acme, &network, "GET", "/v1/accounts/1", now_ms, b"");
    assert_eq!(
        send(other_path.to_vec()).await,
        (401, "bad_signature".into())
    );
    let stale =
        tpw_node::request_auth::headers(&acme, &network, "GET", &account, now_ms - 120_000, b"");
    assert_eq!(send(stale.to_vec()).await, (401, "stale_request".into()));
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let unknown =
        tpw_node::request_auth::headers(&stranger, &network, "GET", &account, now_ms, b"");
    assert_eq!(send(unknown.to_vec()).await, (401, "unknown_key".into()));

    // A transaction still in flight is no more visible than a committed one: its signer reads
    // it (received or committed), another partner gets the not-found answer.
    let envelopes: Vec<Vec<u8>> = (1_000..3_000u128)
        .map(|id| {
            let payment = common::payment(id, account_of(3, EUR), account_of(4, EUR), EUR, 1);
            sign(network, &acme, payment)
        })
        .collect();
    let last = hex::encode(tpw_contracts::transaction_id(envelopes.last().unwrap()));
    let acme_reads = &apis[principals.iter().position(|id| *id == 3).unwrap()];
    let initech_reads = &apis[principals.iter().position(|id| *id == 5).unwrap()];
    let (_, not_found) = initech_reads
        .get(&format!("/v1/transactions/{}", "ab".repeat(32)))
        .await;
    let (status, body) = regulator.submit(&envelopes, false).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = initech_reads.get(&format!("/v1/transactions/{last}")).await;
    assert_eq!((status, &body), (404, &not_found));
    let (status, body) = acme_reads.get(&format!("/v1/transactions/{last}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        ["received", "committed"].contains(&body["status"].as_str().unwrap()),
        "{body}"
    );
    node.stop().await.unwrap();
}

/// Reads `count` events from a stream, failing after 20 s.
async fn read_events(
    stream: &mut tpw_node::client::EventStream,
    count: usize,
) -> Vec<tpw_node::api_types::EventView> {
    let mut events = Vec::new();
    while events.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("an event within 20 s")
            .unwrap()
            .expect("the stream stays open");
        events.push(next);
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_exactly_once_across_disconnects_and_a_restart() {
    // Proves a partner's stream carries its own events only (operations it signed or that
    // touch its accounts, rejections, the expiry of its pending transfer), that reconnecting
    // with the last cursor continues with the next event without a gap or a repeat, also after
    // the node restarts, and that live events arrive on an open stream.
    use tpw_node::client::Client;
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let base = format!("http://{}", node.api_address);
    let acme_key = key(folder.path(), "acme");
    let acme = Client::new(&base).with_key(&acme_key);
    let submit = |signer: &str, operation: Operation| {
        let key = key(folder.path(), signer);
        let client = Client::new(&base);
        async move {
            let envelope = Transaction::sign(
                network,
                &key,
                tpw_node::client::fresh_validity(),
                Body::single(operation),
            )
            .to_bytes();
            let (_, response) = client.submit(&[envelope], true, None).await.unwrap();
            assert_eq!(response.results[0].status, "committed");
            response.results[0].outcome.clone().unwrap()
        }
    };
    submit(
        "acme",
        common::payment(1, account_of(3, EUR), account_of(5, EUR), EUR, 100),
    )
    .await;
    submit(
        "globex",
        common::payment(1, account_of(4, EUR), account_of(6, EUR), EUR, 100),
    )
    .await;
    submit(
        "initech",
        common::payment(1, account_of(5, EUR), account_of(3, EUR), EUR, 40),
    )
    .await;
    submit(
        "acme",
        Operation::Transfer(Transfer {
            id: 2,
            debit_account: account_of(3, EUR),
            credit_account: account_of(4, EUR),
            asset: EUR,
            amount: 5,
            kind: TransferKind::Pending { timeout_ms: 2_000 },
            reference: 0,
        }),
    )
    .await;
    let outcome = submit(
        "acme",
        common::payment(
            3,
            account_of(3, EUR),
            account_of(5, EUR),
            EUR,
            u64::MAX.into(),
        ),
    )
    .await;
    assert_eq!(
        outcome, "rejected",
        "the lifecycle ends in rejected, with its code"
    );

    let mut stream = acme.events(Some("0")).await.unwrap();
    let reference = read_events(&mut stream, 5).await;
    drop(stream);
    let kinds: Vec<(&str, &str)> = reference
        .iter()
        .map(|event| (event.kind.as_str(), event.status.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("operation", "settled"),
            ("operation", "settled"),
            ("operation", "settled"),
            ("operation", "rejected"),
            ("pending_expired", "settled"),
        ],
        "{reference:?}"
    );
    assert_eq!(reference[1].signer, Some(5), "Initech's payment to Acme");
    assert_eq!(reference[3].code, tpw_contracts::ResultCode::ExceedsCredits);
    assert!(
        reference.iter().all(|event| event.signer != Some(4)),
        "Globex's payment to Umbrella is not Acme's"
    );
    let transfer = reference[4].transfer.as_ref().unwrap();
    assert_eq!((transfer.owner, transfer.id), (3, 2));

    // Disconnect after two events and resume from the second's cursor.
    let mut stream = acme.events(Some("0")).await.unwrap();
    let first = read_events(&mut stream, 2).await;
    drop(stream);
    let mut resumed = acme.events(Some(&first[1].cursor)).await.unwrap();
    let rest = read_events(&mut resumed, 3).await;
    drop(resumed);
    let joined: Vec<_> = first.into_iter().chain(rest).collect();
    assert_eq!(joined, reference);

    // Initech sees the two payments between it and Acme, not Acme's rejected attempt that
    // named Initech's account.
    let initech = Client::new(&base).with_key(&key(folder.path(), "initech"));
    let mut stream = initech.events(Some("0")).await.unwrap();
    let theirs = read_events(&mut stream, 2).await;
    assert!(theirs.iter().all(|event| event.status == "settled"));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), stream.next())
            .await
            .is_err(),
        "no third event for Initech"
    );
    drop(stream);

    // The regulator sees Globex's payment too.
    let regulator = Client::new(&base).with_key(&key(folder.path(), "regulator"));
    let mut all = regulator.events(Some("0")).await.unwrap();
    let seen = read_events(&mut all, 6).await;
    assert!(seen.iter().any(|event| event.signer == Some(4)));
    drop(all);

    // Restart, then resume from the last cursor: the next event is new and arrives live.
    node.stop().await.unwrap();
    let node = tpw_node::node::start(&config).await.unwrap();
    let base = format!("http://{}", node.api_address);
    let acme = Client::new(&base).with_key(&acme_key);
    let mut resumed = acme.events(Some(&reference[4].cursor)).await.unwrap();
    let envelope = Transaction::sign(
        network,
        &acme_key,
        tpw_node::client::fresh_validity(),
        Body::single(common::payment(
            4,
            account_of(3, EUR),
            account_of(5, EUR),
            EUR,
            1,
        )),
    )
    .to_bytes();
    Client::new(&base)
        .submit(&[envelope], true, None)
        .await
        .unwrap();
    let live = read_events(&mut resumed, 1).await;
    assert_eq!(
        live[0]
            .transfer
            .as_ref()
            .map(|transfer| (transfer.owner, transfer.id)),
        Some((3, 4))
    );
    let (status, body) = Api::new(node.api_address)
        .reading_as(acme_key.clone(), network)
        .get("/v1/events?after=x.y")
        .await;
    assert_eq!((status, code(&body)), (400, "bad_cursor"));
    // A resume header that is not ASCII is refused too, not ignored (which would start the
    // stream at the head and skip the events in between).
    let (status, body) = Api::new(node.api_address)
        .reading_as(acme_key.clone(), network)
        .get_refused_with("/v1/events", ("last-event-id", "14.\u{e9}".as_bytes()))
        .await;
    assert_eq!((status, code(&body)), (400, "bad_cursor"), "{body}");
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_principal_has_its_own_rate_limit() {
    // Proves signed reads and submitted transactions are limited per principal with 429,
    // `rate_limited` and a Retry-After, that another principal is unaffected, and that tokens
    // come back with time.
    let folder = tempfile::tempdir().unwrap();
    let mut config = prepare(folder.path());
    config.api.requests_per_second = 2;
    config.api.request_burst = 3;
    config.api.transactions_per_second = 2;
    config.api.transaction_burst = 3;
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let acme_key = key(folder.path(), "acme");
    let acme = Api::new(node.api_address).reading_as(acme_key.clone(), network);
    let globex = Api::new(node.api_address).reading_as(key(folder.path(), "globex"), network);
    let path = format!("/v1/accounts/{}", account_of(3, EUR));
    for _ in 0..3 {
        assert_eq!(acme.get(&path).await.0, 200);
    }
    let (status, body) = acme.get(&path).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"));
    let other = format!("/v1/accounts/{}", account_of(4, EUR));
    assert_eq!(globex.get(&other).await.0, 200, "Globex has its own bucket");
    let headers = tpw_node::request_auth::headers(
        &acme_key,
        &network,
        "GET",
        &path,
        tpw_node::runtime::now_ms(),
        b"",
    );
    let mut request = reqwest::Client::new().get(format!("http://{}{path}", node.api_address));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(acme.get(&path).await.0, 200, "a token came back");

    let payments: Vec<Vec<u8>> = (1..=5)
        .map(|id| {
            sign(
                network,
                &acme_key,
                common::payment(id, account_of(3, EUR), account_of(5, EUR), EUR, 1),
            )
        })
        .collect();
    let (status, _) = acme.submit(&payments[..4], false).await;
    assert_eq!(status, 202, "a batch over the burst fits a full bucket");
    let (status, body) = acme.submit(&payments[4..], false).await;
    assert_eq!(
        (status, code(&body)),
        (429, "rate_limited"),
        "the bucket is in debt"
    );

    // A refused batch costs its signer like an admitted one: a key no participant holds
    // gets its refusal once, then waits its turn like anyone.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let strangers: Vec<Vec<u8>> = (1..=8)
        .map(|id| {
            sign(
                network,
                &stranger,
                common::payment(id, account_of(3, EUR), account_of(5, EUR), EUR, 1),
            )
        })
        .collect();
    let (status, body) = acme.submit(&strangers[..4], false).await;
    assert_eq!((status, code(&body)), (403, "unknown_signer"), "{body}");
    let (status, body) = acme.submit(&strangers[4..], false).await;
    assert_eq!(
        (status, code(&body)),
        (429, "rate_limited"),
        "refusals are charged: {body}"
    );

    // A captured signed read sent again is refused as a replay without spending the
    // victim's read budget.
    let globex_key = key(folder.path(), "globex");
    let globex_path = format!("/v1/accounts/{}", account_of(4, EUR));
    let captured = tpw_node::request_auth::headers(
        &globex_key,
        &network,
        "GET",
        &globex_path,
        tpw_node::runtime::now_ms(),
        b"",
    );
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    for attempt in 0..10 {
        let mut request =
            reqwest::Client::new().get(format!("http://{}{globex_path}", node.api_address));
        for (name, value) in &captured {
            request = request.header(*name, value.as_str());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let expected = if attempt == 0 {
            (200, "<none>")
        } else {
            (401, "replayed_request")
        };
        assert_eq!((status, code(&body)), expected, "attempt {attempt}: {body}");
    }
    assert_eq!(
        globex.get(&globex_path).await.0,
        200,
        "replays spent none of Globex's reads"
    );
    node.stop().await.unwrap();
}

/// Deliveries as received: headers and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A local HTTP receiver of webhook deliveries that can go down and come back on its port.
struct Receiver {
    port: u16,
    received: Received,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start(port: u16) -> Self {
        let mut receiver = Self {
            port,
            received: Default::default(),
            task: None,
        };
        receiver.up().await;
        receiver
    }
    async fn up(&mut self) {
        let received = std::sync::Arc::clone(&self.received);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let received = std::sync::Arc::clone(&received);
                    async move {
                        received.lock().unwrap().push((headers, body.to_vec()));
                        "ok"
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
    }
    async fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
    fn delivery_ids(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(headers, _)| headers["tpw-delivery"].to_str().unwrap().to_string())
            .collect()
    }
    async fn wait_for(&self, count: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.received.lock().unwrap().len() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "only {:?} arrived",
                self.delivery_ids()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_dead_lettered_replayed_and_survive_a_restart() {
    // Proves a registered endpoint receives the participant's events signed by the node (the
    // documented scheme verifies against GET /v1/nodes), that a receiver that is down gets the
    // delivery after backoff retries once it is back, that a delivery that exhausts its
    // attempts moves to the dead-letter list and replay delivers it, and that progress survives
    // a node restart (nothing delivered twice, nothing skipped).
    use tpw_node::client::Client;
    let folder = tempfile::tempdir().unwrap();
    let mut config = prepare(folder.path());
    config.webhooks.max_attempts = 4;
    config.webhooks.allow_private_networks = true;
    config.webhooks.allow_plain_http = true;
    config.webhooks.backoff_initial_ms = 200;
    config.webhooks.backoff_max_ms = 800;
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let base = format!("http://{}", node.api_address);
    let acme_key = key(folder.path(), "acme");
    let acme = Client::new(&base).with_key(&acme_key);
    let pay = |id: u128| {
        let envelope = sign(
            network,
            &acme_key,
            common::payment(id, account_of(3, EUR), account_of(5, EUR), EUR, 1),
        );
        let client = Client::new(&base);
        async move {
            let (status, _) = client.submit(&[envelope], true, None).await.unwrap();
            assert_eq!(status, 200);
        }
    };
    let mut receiver = Receiver::start(free_port()).await;
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let register = sign(
        network,
        &acme_key,
        Operation::SetWebhook(SetWebhook {
            endpoint: 0,
            url: url.clone(),
        }),
    );
    let (status, _) = Client::new(&base)
        .submit(&[register], true, None)
        .await
        .unwrap();
    assert_eq!(status, 200);

    pay(1).await;
    receiver.wait_for(1).await;
    let nodes = acme.nodes().await.unwrap();
    let node_key: [u8; 32] = hex::decode(&nodes.nodes[0].public_key)
        .unwrap()
        .try_into()
        .unwrap();
    {
        let received = receiver.received.lock().unwrap();
        let (headers, body) = &received[0];
        let header = |name: &str| headers[name].to_str().unwrap().to_string();
        let delivery_id = header("tpw-delivery");
        assert!(
            tpw_node::webhooks::verify_delivery(
                &node_key,
                &network,
                &delivery_id,
                header("tpw-timestamp").parse().unwrap(),
                body,
                &header("tpw-signature"),
            ),
            "the delivery verifies against the node's published key"
        );
        assert!(!tpw_node::webhooks::verify_delivery(
            &node_key,
            &network,
            &delivery_id,
            header("tpw-timestamp").parse().unwrap(),
            b"{}",
            &header("tpw-signature"),
        ));
        let json: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["delivery_id"], delivery_id.as_str());
        assert_eq!(json["event"]["transfer"]["id"], "1");
        assert!(delivery_id.starts_with("3.0."));
    }

    // Down for a moment: the delivery arrives after backoff retries.
    receiver.down().await;
    pay(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.up().await;
    receiver.wait_for(2).await;

    // Down for longer than the attempts last: dead-lettered, then replayed.
    receiver.down().await;
    pay(3).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let listed = acme.webhooks().await.unwrap();
        if let Some(letter) = listed.endpoints[0].dead_letters.first() {
            break letter.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.attempts, 4);
    receiver.up().await;
    pay(4).await;
    receiver.wait_for(3).await;
    acme.replay_webhook(0).await.unwrap();
    receiver.wait_for(4).await;
    let listed = acme.webhooks().await.unwrap();
    assert!(listed.endpoints[0].dead_letters.is_empty());
    let ids = receiver.delivery_ids();
    assert_eq!(
        ids[3],
        format!("3.0.{}", dead.cursor),
        "the replay is the dead letter"
    );

    // Restart: progress was kept, so only the next event is delivered.
    node.stop().await.unwrap();
    let node = tpw_node::node::start(&config).await.unwrap();
    let base = format!("http://{}", node.api_address);
    let envelope = sign(
        network,
        &acme_key,
        common::payment(5, account_of(3, EUR), account_of(5, EUR), EUR, 1),
    );
    Client::new(&base)
        .submit(&[envelope], true, None)
        .await
        .unwrap();
    receiver.wait_for(5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = receiver.delivery_ids();
    assert_eq!(ids.len(), 5, "nothing delivered twice: {ids:?}");
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 5);
    receiver.down().await;
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_statement_reconciles_to_the_balance_and_pages() {
    // Proves a statement lists every posted movement of an account with its transfer id,
    // counterparty and running balance (a payment out, one in, a two-phase post, a netting
    // cycle's net posting), that the last balance equals the account's, that pages continue
    // exactly, that CSV carries the same lines, and that another partner cannot read it.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let acme_key = key(folder.path(), "acme");
    let initech_key = key(folder.path(), "initech");
    let api = Api::new(node.api_address).reading_as(acme_key.clone(), network);
    let submit = |key: &ed25519_dalek::SigningKey, operation: Operation| {
        let envelope = sign(network, key, operation);
        let api = &api;
        async move {
            let (status, body) = api.submit(&[envelope], true).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    let acme_eur = account_of(3, EUR);
    let initech_eur = account_of(5, EUR);
    let (_, before) = api.get(&format!("/v1/accounts/{acme_eur}")).await;
    submit(
        &acme_key,
        common::payment(1, acme_eur, initech_eur, EUR, 700),
    )
    .await;
    submit(
        &initech_key,
        common::payment(1, initech_eur, acme_eur, EUR, 250),
    )
    .await;
    submit(
        &acme_key,
        Operation::Transfer(Transfer {
            id: 2,
            debit_account: acme_eur,
            credit_account: initech_eur,
            asset: EUR,
            amount: 90,
            kind: TransferKind::Pending { timeout_ms: 60_000 },
            reference: 0,
        }),
    )
    .await;
    submit(
        &acme_key,
        Operation::PostPending(PostPending {
            id: 3,
            pending_id: 2,
            amount: 60,
        }),
    )
    .await;
    let bank_a = key(folder.path(), "bank-a");
    submit(
        &bank_a,
        Operation::OpenCycle(OpenCycle {
            cycle: 1,
            asset: EUR,
            closes_at_ms: tpw_node::runtime::now_ms() + 3_600_000,
            members: vec![3, 5],
        }),
    )
    .await;
    for (key, id, from, to, amount) in [
        (&acme_key, 10, acme_eur, initech_eur, 500),
        (&initech_key, 10, initech_eur, acme_eur, 120),
    ] {
        submit(
            key,
            Operation::SubmitObligation(SubmitObligation {
                id,
                cycle: 1,
                debit_account: from,
                credit_account: to,
                amount,
            }),
        )
        .await;
    }
    submit(
        &bank_a,
        Operation::CloseCycle(CloseCycle {
            cycle: 1,
            carry_to: 0,
        }),
    )
    .await;

    let path = format!("/v1/accounts/{acme_eur}/statement");
    let (status, statement) = api.get(&path).await;
    assert_eq!(status, 200, "{statement}");
    let entries = statement["entries"].as_array().unwrap();
    let amounts: Vec<(String, String, String)> = entries
        .iter()
        .map(|entry| {
            (
                entry["kind"].as_str().unwrap().to_string(),
                entry["direction"].as_str().unwrap().to_string(),
                entry["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("transfer", "debit", "700"),
        ("transfer", "credit", "250"),
        ("transfer", "debit", "60"),
        ("net_posting", "debit", "380"),
    ];
    assert_eq!(
        amounts,
        expected
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(entries[0]["transfer"]["owner"], 3);
    assert_eq!(entries[0]["transfer"]["id"], "1");
    assert_eq!(entries[0]["counterparty_account"], initech_eur.to_string());
    assert_eq!(entries[1]["transfer"]["owner"], 5);
    assert_eq!(
        entries[2]["transfer"]["id"], "3",
        "the post operation's own id"
    );
    let (_, after) = api.get(&format!("/v1/accounts/{acme_eur}")).await;
    let balance = |view: &Value| {
        view["account"]["credits_posted"]
            .as_str()
            .unwrap()
            .parse::<i128>()
            .unwrap()
            - view["account"]["debits_posted"]
                .as_str()
                .unwrap()
                .parse::<i128>()
                .unwrap()
    };
    assert_eq!(balance(&after), balance(&before) - 700 + 250 - 60 - 380);
    assert_eq!(
        entries.last().unwrap()["balance"],
        balance(&after).to_string(),
        "the running balance ends at the account's balance"
    );

    // Pages of two continue exactly; CSV carries the same lines.
    let (_, first) = api.get(&format!("{path}?limit=2")).await;
    let next = first["next"].as_str().unwrap().to_string();
    let (_, second) = api.get(&format!("{path}?limit=2&after={next}")).await;
    let paged: Vec<Value> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["entries"].as_array().unwrap())
        .cloned()
        .collect();
    assert_eq!(&paged, entries);
    assert_eq!(second["next"], Value::Null);
    let (_, csv) = api.get(&format!("{path}?format=csv")).await;
    let csv = csv.as_str().unwrap().to_string();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5);
    assert!(rows[0].starts_with("height,cursor,block_time_ms,kind,transfer_owner"));
    assert!(
        rows[1].contains(",transfer,3,1,")
            && rows[1].ends_with(&format!(
                ",debit,700,{}",
                entries[0]["balance"].as_str().unwrap()
            ))
    );
    let globex = Api::new(node.api_address).reading_as(key(folder.path(), "globex"), network);
    let (status, body) = globex.get(&path).await;
    assert_eq!((status, code(&body)), (404, "not_found"));

    // An escrow released by its payee is one credit line on the payee's statement (the post
    // record is the payee's, the escrow the payer's: counted once, no correction line).
    let secret = [7u8; 32];
    submit(
        &acme_key,
        Operation::CreateEscrow(CreateEscrow {
            id: 30,
            debit_account: acme_eur,
            credit_account: initech_eur,
            asset: EUR,
            amount: 45,
            timeout_ms: 600_000,
            terms: tpw_contracts::tx::EscrowTerms {
                hashlock: Some(*blake3::hash(&secret).as_bytes()),
                release_after_ms: 0,
                approvers: Vec::new(),
                approvals_required: 0,
            },
        }),
    )
    .await;
    submit(
        &initech_key,
        Operation::ReleaseEscrow(ReleaseEscrow {
            id: 31,
            owner: 3,
            escrow_id: 30,
            preimage: Some(secret),
        }),
    )
    .await;
    let initech = Api::new(node.api_address).reading_as(initech_key.clone(), network);
    let (_, payee) = initech
        .get(&format!("/v1/accounts/{initech_eur}/statement?limit=1000"))
        .await;
    let payee_entries = payee["entries"].as_array().unwrap();
    let last = payee_entries.last().unwrap();
    assert_eq!(last["kind"], "transfer", "{payee_entries:?}");
    assert_eq!(last["direction"], "credit");
    assert_eq!(last["amount"], "45");
    let (_, payee_account) = initech.get(&format!("/v1/accounts/{initech_eur}")).await;
    assert_eq!(last["balance"], balance(&payee_account).to_string());

    // Paying 2^127 out of an empty account is refused (every account is bounded: money only
    // by the rules), moves nothing, and disturbs no statement.
    for account in [390u128, 391] {
        submit(
            &acme_key,
            Operation::OpenAccount(OpenAccount {
                account,
                owner: 3,
                asset: EUR,
                flags: tpw_contracts::model::account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            }),
        )
        .await;
    }
    let overdraft = sign(
        network,
        &acme_key,
        common::payment(20, 390, 391, EUR, 1 << 127),
    );
    let (status, refused) = api.submit(&[overdraft], true).await;
    assert_eq!(
        (status, code(&refused)),
        (422, "exceeds_credits"),
        "{refused}"
    );
    submit(
        &acme_key,
        common::payment(21, acme_eur, initech_eur, EUR, 1),
    )
    .await;
    let (status, huge) = api.get("/v1/accounts/391/statement").await;
    assert_eq!(status, 200);
    assert_eq!(huge["entries"], serde_json::json!([]));
    let (_, after_huge) = api.get(&path).await;
    assert_eq!(
        after_huge["entries"].as_array().unwrap().len(),
        entries.len() + 2,
        "the escrow's debit and payment 21"
    );
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_enters_only_by_the_issuers_mint_and_the_supply_is_served() {
    // Proves, through the HTTP API, that GET /v1/assets/{id} serves the supply record, that
    // the issuer's mint raises it by exactly what it credits while a partner's mint, a mint
    // over the cap and a transfer out of the issuance account are refused with their codes,
    // and that the outstanding amount is what the issuance account let out.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let regulator = Api::new(node.api_address).reading_as(key(folder.path(), "regulator"), network);
    let (status, before) = regulator.get("/v1/assets/1").await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["code"], "EUR");
    assert_eq!(
        before["outstanding"], "400000000",
        "four partners funded 100,000,000 each"
    );
    assert_eq!(before["supply_cap"], tpw_node::demo::SUPPLY_CAP.to_string());
    let mint = |id, amount| {
        Operation::Mint(tpw_contracts::ops::Mint(
            tpw_contracts::ops::IssuanceFields {
                id,
                account: account_of(3, EUR),
                asset: EUR,
                amount,
            },
        ))
    };
    let bank_a = key(folder.path(), "bank-a");
    let acme = key(folder.path(), "acme");
    let cases = [
        (&bank_a, mint(1, 5_000), 200, "ok"),
        (&acme, mint(2, 5_000), 422, "issuer_only"),
        (
            &bank_a,
            mint(3, tpw_node::demo::SUPPLY_CAP),
            422,
            "exceeds_supply_cap",
        ),
        (
            &bank_a,
            payment(4, issuance_of(EUR), account_of(3, EUR), EUR, 1),
            422,
            "issuance_account",
        ),
    ];
    for (signer, operation, status, expected) in cases {
        let (got, body) = regulator
            .submit(&[sign(network, signer, operation)], true)
            .await;
        assert_eq!(got, status, "{body}");
        assert_eq!(body["results"][0]["code"], expected, "{body}");
    }
    let (status, after) = regulator.get("/v1/assets/1").await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["outstanding"], "400005000");
    let (_, issuance) = regulator
        .get(&format!("/v1/accounts/{}", issuance_of(EUR)))
        .await;
    let let_out = issuance["account"]["debits_posted"]
        .as_str()
        .unwrap()
        .parse::<u128>()
        .unwrap()
        - issuance["account"]["credits_posted"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap();
    assert_eq!(let_out.to_string(), after["outstanding"]);
    assert_eq!(issuance["account"]["flags"], json!(["issuance"]));
    let (status, missing) = regulator.get("/v1/assets/9").await;
    assert_eq!((status, code(&missing)), (404, "not_found"));
    let (status, bad) = regulator.get("/v1/assets/x").await;
    assert_eq!((status, code(&bad)), (400, "bad_asset_id"));
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_far_from_ledger_time_raises_the_alarm_and_the_node_stays_ready() {
    // Proves the clock alarm on a real node: with ledger time an hour ahead of this machine's
    // clock (the genesis is stamped an hour from now, and a leader's stamps never go back nor
    // jump to its clock), /v1/ready lists a clock_skew warning while still answering ready,
    // and the metrics raise the alarm. It also shows ledger time deciding validity windows: an
    // envelope valid for ten minutes of this machine's clock has already expired.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    common::rewrite_genesis(&config, |genesis| genesis.genesis_time_ms += 3_600_000);
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let api = Api::new(node.api_address).reading_as(key(folder.path(), "regulator"), network);
    let acme = key(folder.path(), "acme");
    let operation = || payment(1, account_of(3, EUR), account_of(4, EUR), EUR, 5);
    let (status, expired) = api.submit(&[sign(network, &acme, operation())], true).await;
    assert_eq!((status, code(&expired)), (422, "expired"), "{expired}");
    let now_ms = tpw_node::runtime::now_ms();
    let in_ledger_time = Transaction::sign(
        network,
        &acme,
        tpw_contracts::Validity::new(2, now_ms + 3_600_000 + 600_000),
        Body::single(operation()),
    )
    .to_bytes();
    let (status, paid) = api.submit(&[in_ledger_time], true).await;
    assert_eq!(status, 200, "{paid}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let (status, ready) = api.get("/v1/ready").await;
        assert_eq!(status, 200, "{ready}");
        if ready["warnings"]
            .as_array()
            .is_some_and(|warnings| !warnings.is_empty())
        {
            break ready;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no clock warning: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ready["ready"], true);
    let warning = ready["warnings"][0].as_str().unwrap();
    assert!(warning.starts_with("clock_skew: "), "{warning}");
    let (_, metrics) = api.get("/metrics").await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(metrics.contains("tpw_clock_skew_alarm 1"), "{metrics}");
    let skew = metrics
        .lines()
        .find_map(|line| line.strip_prefix("tpw_clock_skew_ms "))
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert!((3_590_000..=3_610_000).contains(&skew), "{skew}");
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_client_signs_submits_and_reads() {
    // Proves integration from another language using only the documents: the Python client
    // (clients/python) encodes and signs a transfer that the node commits, and its signed read
    // sees its own account but not another partner's.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let script = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../clients/python/tpw_client.py");
    let acme = folder.path().join("keys/acme.json");
    let url = format!("http://{}", node.api_address);
    let run = |args: Vec<String>| {
        let script = script.clone();
        let (url, acme) = (url.clone(), acme.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3")
                .arg(&script)
                .args(["--node", &url, "--key", acme.to_str().unwrap()])
                .args(args)
                .output()
                .expect("python3 runs (the machine has CPython 3.11)")
        })
    };
    let paid = run(
        "pay --id 77 --debit 301 --credit 501 --asset 1 --amount 1250"
            .split(' ')
            .map(String::from)
            .collect(),
    )
    .await
    .unwrap();
    assert!(
        paid.status.success(),
        "{}{}",
        String::from_utf8_lossy(&paid.stdout),
        String::from_utf8_lossy(&paid.stderr)
    );
    let result: Value = serde_json::from_slice(&paid.stdout).unwrap();
    assert_eq!(result["status"], "committed");
    assert_eq!(result["outcome"], "settled");
    let api = Api::new(node.api_address).reading_as(key(folder.path(), "acme"), network);
    let (status, transfer) = api.get("/v1/transfers/3/77").await;
    assert_eq!(status, 200);
    assert_eq!(transfer["transfer"]["amount"], "1250");
    let own = run(vec!["account".into(), "301".into()]).await.unwrap();
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    let view: Value = serde_json::from_slice(&own.stdout).unwrap();
    assert_eq!(view["account"]["owner"], 3);
    let foreign = run(vec!["account".into(), "501".into()]).await.unwrap();
    assert!(!foreign.status.success());
    let answer: Value = serde_json::from_slice(&foreign.stdout).unwrap();
    assert_eq!(code(&answer), "not_found");
    // The same encoder reproduces the published vectors byte for byte (nonce and window
    // included), signed with the vectors' seed.
    let vectors = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../docs/encoding-vectors.json");
    let checked = run(vec!["vectors".into(), vectors.display().to_string()])
        .await
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let checked: Value = serde_json::from_slice(&checked.stdout).unwrap();
    assert_eq!(
        checked["checked"],
        serde_json::json!(["posted transfer", "pending transfer", "linked batch"])
    );
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_names_every_route_and_only_routes() {
    // Proves GET /v1/openapi.json serves docs/openapi.json, and that each documented path and
    // method reaches a real handler (never the unknown-endpoint fallback or 405), so the
    // document cannot name an endpoint the node lacks.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let api = Api::new(node.api_address);
    let (status, document) = api.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    let on_disk: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    assert_eq!(document, on_disk);
    assert_eq!(document["openapi"], "3.1.0");
    let http = reqwest::Client::new();
    let paths = document["paths"].as_object().unwrap();
    // The router's routes (node/src/api/mod.rs): a new route must be documented to pass.
    let served = [
        "/v1/transactions",
        "/v1/transactions/{tx_id}",
        "/v1/accounts/{id}",
        "/v1/accounts/{id}/statement",
        "/v1/transfers/{participant}/{id}",
        "/v1/proofs/{participant}/{id}",
        "/v1/netting/{cycle}",
        "/v1/limits/{participant}/{asset}",
        "/v1/assets/{id}",
        "/v1/credit-limits/{creditor}/{debtor}/{asset}",
        "/v1/blocks",
        "/v1/blocks/{height}",
        "/v1/events",
        "/v1/webhooks",
        "/v1/webhooks/{endpoint}/replay",
        "/v1/governance/proposals",
        "/v1/governance/proposals/{id}",
        "/v1/nodes",
        "/v1/status",
        "/v1/health",
        "/v1/ready",
        "/v1/openapi.json",
        "/metrics",
    ];
    let documented: std::collections::BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(documented, served.into_iter().collect());
    for (path, methods) in paths {
        let concrete = path
            .replace("{tx_id}", &"ab".repeat(32))
            .replace(['{', '}'], "")
            .split('/')
            .map(|part| {
                if [
                    "id",
                    "participant",
                    "cycle",
                    "asset",
                    "creditor",
                    "debtor",
                    "height",
                    "endpoint",
                ]
                .contains(&part)
                {
                    "1"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in methods.as_object().unwrap().keys() {
            let url = format!("http://{}{concrete}", node.api_address);
            let request = match method.as_str() {
                "get" => http.get(&url),
                "post" => http.post(&url).body("{}"),
                other => panic!("{path}: unexpected method {other}"),
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                !text.contains("no such endpoint"),
                "{method} {path} is documented but not served"
            );
        }
    }
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_private_addresses_are_refused_by_default() {
    // Proves a participant cannot make the leader POST into its own networks: an endpoint on
    // loopback gets nothing and the delivery is dead-lettered as "destination not allowed"
    // unless the operator set webhooks.allow_private_networks.
    use tpw_node::client::Client;
    let folder = tempfile::tempdir().unwrap();
    let mut config = prepare(folder.path());
    config.webhooks.max_attempts = 1;
    config.webhooks.allow_plain_http = true;
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let base = format!("http://{}", node.api_address);
    let acme_key = key(folder.path(), "acme");
    let receiver = Receiver::start(free_port()).await;
    let operations = [
        Operation::SetWebhook(SetWebhook {
            endpoint: 0,
            url: format!("http://127.0.0.1:{}/hook", receiver.port),
        }),
        common::payment(1, account_of(3, EUR), account_of(5, EUR), EUR, 1),
    ];
    for operation in operations {
        let envelope = sign(network, &acme_key, operation);
        let (status, _) = Client::new(&base)
            .submit(&[envelope], true, None)
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    let acme = Client::new(&base).with_key(&acme_key);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let letter = loop {
        let listed = acme.webhooks().await.unwrap();
        if let Some(letter) = listed.endpoints[0].dead_letters.first() {
            break letter.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letter.error, "destination not allowed");
    assert!(receiver.delivery_ids().is_empty());
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inclusion_proof_is_served_to_the_parties_and_checked_offline() {
    // Proves inclusion proofs: a party to a transfer gets one, it checks offline against the
    // head it names (library and `tpw proof verify`), others get not found, and any change to
    // the transaction, the receipt, a path or the header chain, or another trusted head,
    // makes it fail.
    use tpw_contracts::proof::{InclusionProof, ProofError};
    use tpw_node::client::Client;
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let base = format!("http://{}", node.api_address);
    let acme = Client::new(&base).with_key(&key(folder.path(), "acme"));
    for id in 1..=5u128 {
        let envelope = sign(
            network,
            &key(folder.path(), "acme"),
            common::payment(id, account_of(3, EUR), account_of(4, EUR), EUR, 10),
        );
        let (status, _) = acme.submit(&[envelope], true, None).await.unwrap();
        assert_eq!(status, 200);
    }
    let response = acme.proof(3, 2, None).await.unwrap().unwrap();
    let head = acme.status().await.unwrap();
    assert!(response.head_height >= response.height + 3);
    let proof = InclusionProof::from_bytes(&hex::decode(&response.proof).unwrap()).unwrap();
    let trusted: [u8; 32] = hex::decode(&response.head_hash)
        .unwrap()
        .try_into()
        .unwrap();
    let proven = proof.verify(&network, Some(&trusted)).unwrap();
    assert_eq!(proven.receipt.code, tpw_contracts::ResultCode::Ok);
    assert_eq!(proven.height, response.height);
    assert!(head.height >= response.head_height);

    // Globex, the payee, may have it; Initech may not.
    let globex = Client::new(&base).with_key(&key(folder.path(), "globex"));
    assert!(globex.proof(3, 2, None).await.unwrap().is_some());
    let initech = Client::new(&base).with_key(&key(folder.path(), "initech"));
    assert!(initech.proof(3, 2, None).await.unwrap().is_none());
    // A linked batch paying Globex and Initech: the proof would show each the other's leg, so
    // only the signer's readers get it.
    let linked = tpw_contracts::Transaction::sign(
        network,
        &key(folder.path(), "acme"),
        tpw_node::client::fresh_validity(),
        tpw_contracts::Body::linked(vec![
            common::payment(10, account_of(3, EUR), account_of(4, EUR), EUR, 1),
            common::payment(11, account_of(3, EUR), account_of(5, EUR), EUR, 1),
        ]),
    )
    .to_bytes();
    let (status, _) = acme.submit(&[linked], true, None).await.unwrap();
    assert_eq!(status, 200);
    assert!(acme.proof(3, 10, None).await.unwrap().is_some());
    assert!(globex.proof(3, 10, None).await.unwrap().is_none());
    assert!(initech.proof(3, 11, None).await.unwrap().is_none());
    // Ending earlier, at the block itself.
    let short = acme
        .proof(3, 2, Some(response.height))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(short.head_height, short.height);
    let error = acme.proof(3, 2, Some(head.height + 100)).await.unwrap_err();
    assert!(error.to_string().contains("bad_up_to"), "{error}");

    // Tampering of every part is caught.
    let mut changed = proof.clone();
    let last = changed.envelope.len() - 1;
    changed.envelope[last] ^= 1;
    assert!(matches!(
        changed.verify(&network, None),
        Err(ProofError::Transaction(_))
    ));
    let mut changed = proof.clone();
    changed.receipt.code = tpw_contracts::ResultCode::ExceedsCredits;
    assert_eq!(
        changed.verify(&network, None),
        Err(ProofError::Path("receipts"))
    );
    let mut changed = proof.clone();
    changed.transaction_path.index ^= 1;
    assert_eq!(
        changed.verify(&network, None),
        Err(ProofError::Path("position"))
    );
    let mut changed = proof.clone();
    // A leaf count other than the block's transaction count.
    changed.transaction_path.leaf_count += 1;
    changed.receipt_path.leaf_count += 1;
    assert_eq!(
        changed.verify(&network, None),
        Err(ProofError::Path("position"))
    );
    let mut changed = proof.clone();
    changed.headers.remove(1);
    assert!(matches!(
        changed.verify(&network, None),
        Err(ProofError::BrokenLink { .. })
    ));
    assert!(matches!(
        proof.verify(&network, Some(&[7; 32])),
        Err(ProofError::UntrustedHead(_))
    ));

    // The CLI checks the file offline, with no node.
    let file = folder.path().join("proof.json");
    std::fs::write(&file, serde_json::to_string(&response).unwrap()).unwrap();
    node.stop().await.unwrap();
    let run = |trusted: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tpw"))
            .args(["proof", "verify", "--file"])
            .arg(&file)
            .arg("--genesis")
            .arg(&config.genesis_file)
            .args(["--trusted-head", trusted])
            .output()
            .unwrap()
    };
    let output = run(&response.head_hash);
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["verified"], true);
    assert_eq!(printed["code"], "ok");
    let output = run(&"00".repeat(32));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("trusted head"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_backups_are_taken_under_load_and_verify_as_data_folders() {
    // Proves online backup: while payments stream in, the admin interface takes RocksDB
    // checkpoints; each backup's manifest names its head, and each backup replays from genesis
    // (`tpw_node::verify`) to exactly that head. A bad path is refused with a stable code.
    let folder = tempfile::tempdir().unwrap();
    let (config, admin, token) = common::prepare_with_admin(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let base = format!("http://{}", node.api_address);
    let acme_key = key(folder.path(), "acme");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_load = std::sync::Arc::clone(&stop);
    let load = tokio::spawn(async move {
        let client = tpw_node::client::Client::new(&base);
        for id in 0..100_000u128 {
            if stop_load.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let envelope = sign(
                network,
                &acme_key,
                common::payment(id, account_of(3, EUR), account_of(4, EUR), EUR, 1),
            );
            let _ = client.submit(&[envelope], true, Some(5_000)).await;
        }
    });
    let http = reqwest::Client::new();
    let url = format!("http://{admin}/admin/v1/backup");
    let genesis = tpw_node::node::load_genesis(&config.genesis_file).unwrap();
    let mut heights = Vec::new();
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let path = folder.path().join(format!("backup-{round}"));
        let response = http
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "path": path }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let manifest: Value = response.json().await.unwrap();
        let replay = tpw_node::verify::replay_data_folder(&path, &genesis).unwrap();
        assert_eq!(replay.height, manifest["height"].as_u64().unwrap());
        assert_eq!(replay.head_hash, manifest["head_hash"].as_str().unwrap());
        assert_eq!(replay.state_root, manifest["state_root"].as_str().unwrap());
        let on_disk: Value =
            serde_json::from_str(&std::fs::read_to_string(path.join("backup.json")).unwrap())
                .unwrap();
        assert_eq!(on_disk, manifest);
        heights.push(replay.height);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();
    assert!(heights[2] > heights[0], "backups under load: {heights:?}");
    for bad in [
        json!({ "path": "relative/dir" }),
        json!({ "path": folder.path().join("backup-0") }),
    ] {
        let response = http
            .post(&url)
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(code(&answer), "bad_backup_path");
    }
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_leader_and_nothing_to_apply_is_ready() {
    // Proves readiness on a serving single-node network: 200, no reasons, no apply lag.
    let folder = tempfile::tempdir().unwrap();
    let config = prepare(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let api = Api::new(node.api_address);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = api.get("/v1/ready").await;
        if status == 200 || std::time::Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["reasons"], json!([]));
    assert_eq!(body["apply_lag"], 0);
    node.stop().await.unwrap();
}

/// Writes `bytes` to a raw connection, then reads until the server answers or closes;
/// returns what it sent back and how long after `started` the answer was complete.
async fn raw_exchange(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    started: std::time::Instant,
) -> (String, Duration) {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(read)) => {
                answer.extend_from_slice(&buffer[..read]);
                // One whole answer is enough: its headers, and a body of its stated length.
                let text = String::from_utf8_lossy(&answer);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
            }
            Err(_) => panic!("no answer and no close within 30 s"),
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_oversized_requests_are_cut_off() {
    // Proves that no client holds a connection or a request past the configured bounds: a
    // client trickling header lines is disconnected after the header read timeout; a body
    // trickled, or announced by a chunk size it never sends, is answered 408 body_timeout
    // within api.request_timeout_ms; and a body announced larger than the limit is refused
    // with 413 before it is read, even when the client asks for "100 Continue" first, and
    // answered rather than reset when the client sends it anyway.
    use tokio::io::AsyncWriteExt;
    let folder = tempfile::tempdir().unwrap();
    let mut config = prepare(folder.path());
    config.api.request_timeout_ms = 2_000;
    let node = tpw_node::node::start(&config).await.unwrap();
    let address = node.api_address;
    let connect = || async move { tokio::net::TcpStream::connect(address).await.unwrap() };

    // Headers a line every 2 s: the connection is closed about 10 s after it opened.
    let mut trickle = connect().await;
    let started = std::time::Instant::now();
    trickle
        .write_all(b"GET /v1/status HTTP/1.1\r\nhost: node\r\n")
        .await
        .unwrap();
    let mut closed_after = None;
    for line in 0..20 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let header = format!("x-trickle-{line}: 1\r\n");
        if trickle.write_all(header.as_bytes()).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(10), trickle.peek(&mut probe)).await
        {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("a header trickle is cut off");
    assert!(
        closed_after < Duration::from_secs(15),
        "closed after {closed_after:?}"
    );

    // A body a byte every 400 ms: 408 within the 2 s request timeout.
    let (mut slow_reader, mut slow_body) = connect().await.into_split();
    let started = std::time::Instant::now();
    slow_body
        .write_all(
            b"POST /v1/transactions HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n",
        )
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        for _ in 0..20 {
            if slow_body.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        slow_body
    });
    let (answer, took) = raw_exchange(&mut slow_reader, started).await;
    drop(writer.await.unwrap());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // A chunk size no body can have, then silence: refused, never a hang.
    let mut huge_chunk = connect().await;
    let started = std::time::Instant::now();
    huge_chunk
        .write_all(
            b"POST /v1/transactions HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n7FFFFFFFFFFFFFFF\r\n",
        )
        .await
        .unwrap();
    let (answer, took) = raw_exchange(&mut huge_chunk, started).await;
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "a refusal or a close with a 4xx: {answer:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // 100 GB announced, "100 Continue" asked for: 413 at once, no body read.
    let mut expect = connect().await;
    let started = std::time::Instant::now();
    expect
        .write_all(
            b"POST /v1/transactions HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\ncontent-length: 100000000000\r\nexpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let (answer, took) = raw_exchange(&mut expect, started).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("\"body_too_large\""), "{answer}");
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // A body past the limit sent whole, by several clients at once: each reads its 413 (the
    // server discards what it refused instead of resetting the connection under the writer).
    let oversized = (0..8).map(|_| async move {
        let body = vec![b' '; tpw_node::limits::BODY_SIZE_MAX + 1];
        let (status, body) = Api::new(address).post_raw(body).await;
        (status, code(&body).to_string())
    });
    for answer in futures::future::join_all(oversized).await {
        assert_eq!(answer, (413, "body_too_large".to_string()));
    }

    // The node still serves.
    let (status, _) = Api::new(address).get("/v1/status").await;
    assert_eq!(status, 200);
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_capped_per_source_address() {
    // Proves api.requests_in_flight_per_address: while one request from an address waits for
    // its body, a second from that address is refused with 429 too_many_in_flight; once the
    // first ends, the address is served again.
    use tokio::io::AsyncWriteExt;
    let folder = tempfile::tempdir().unwrap();
    let mut config = prepare(folder.path());
    config.api.request_timeout_ms = 2_000;
    config.api.requests_in_flight_per_address = 1;
    let node = tpw_node::node::start(&config).await.unwrap();
    let mut holding = tokio::net::TcpStream::connect(node.api_address)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    holding
        .write_all(
            b"POST /v1/transactions HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = Api::new(node.api_address).get("/v1/status").await;
    assert_eq!((status, code(&body)), (429, "too_many_in_flight"), "{body}");
    let (answer, _) = raw_exchange(&mut holding, started).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (status, _) = Api::new(node.api_address).get("/v1/status").await;
    assert_eq!(status, 200, "the place came back");
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_per_participant_and_end_when_their_key_goes() {
    // Proves a participant holds at most api.event_streams_per_participant streams (a place
    // comes back when one closes), and that a stream opened with a key ends at the block that
    // revokes it: nothing from that block or later reaches it.
    use tpw_contracts::ops::{AddKey, RevokeKey};
    use tpw_node::client::Client;
    let folder = tempfile::tempdir().unwrap();
    let mut config = prepare(folder.path());
    config.api.event_streams_per_participant = 2;
    let node = tpw_node::node::start(&config).await.unwrap();
    let network = network_id(&config);
    let base = format!("http://{}", node.api_address);
    let acme_key = key(folder.path(), "acme");
    let acme = Client::new(&base).with_key(&acme_key);
    let first = acme.events(None).await.unwrap();
    let second = acme.events(None).await.unwrap();
    match acme.events(None).await {
        Err(tpw_node::client::ClientError::Api {
            status: 429, code, ..
        }) => {
            assert_eq!(code, "too_many_streams")
        }
        Err(other) => panic!("expected too_many_streams, got {other}"),
        Ok(_) => panic!("a third stream opened"),
    }
    let globex = Client::new(&base).with_key(&key(folder.path(), "globex"));
    let _globex_stream = globex
        .events(None)
        .await
        .expect("Globex has its own places");
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let third = loop {
        if let Ok(stream) = acme.events(None).await {
            break stream;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a closed stream gave its place back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // A second key for Acme, registered by its bank, opens a stream; the bank revokes it.
    let bank_a = key(folder.path(), "bank-a");
    let second_key = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let commit = |signer: &ed25519_dalek::SigningKey, operation: Operation| {
        let envelope = Transaction::sign(
            network,
            signer,
            tpw_node::client::fresh_validity(),
            Body::single(operation),
        )
        .to_bytes();
        let client = Client::new(&base);
        async move {
            let (_, response) = client.submit(&[envelope], true, None).await.unwrap();
            assert_eq!(
                response.results[0].code,
                Some(tpw_contracts::ResultCode::Ok)
            );
            response.results[0].height.unwrap()
        }
    };
    commit(
        &bank_a,
        Operation::AddKey(AddKey {
            participant: 3,
            key: second_key.verifying_key().to_bytes(),
        }),
    )
    .await;
    drop((second, third));
    let by_second_key = Client::new(&base).with_key(&second_key);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        if let Ok(stream) = by_second_key.events(None).await {
            break stream;
        }
        assert!(std::time::Instant::now() < deadline, "places came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let paid = commit(
        &acme_key,
        common::payment(1, account_of(3, EUR), account_of(5, EUR), EUR, 1),
    )
    .await;
    let before = read_events(&mut stream, 1).await;
    assert_eq!(
        before[0].height, paid,
        "the stream serves while its key signs"
    );
    let revoked = commit(
        &bank_a,
        Operation::RevokeKey(RevokeKey {
            participant: 3,
            key: second_key.verifying_key().to_bytes(),
        }),
    )
    .await;
    commit(
        &acme_key,
        common::payment(2, account_of(3, EUR), account_of(5, EUR), EUR, 1),
    )
    .await;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
            Err(_) => panic!("the stream of a revoked key is still open"),
            Ok(Ok(Some(event))) => assert!(
                event.height < revoked,
                "an event at {} after the revocation at {revoked}",
                event.height
            ),
            Ok(Ok(None)) | Ok(Err(_)) => break,
        }
    }
    node.stop().await.unwrap();
}
