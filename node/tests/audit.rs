//! The node's hash-chained audit log on a real node: submissions, signed reads, refused
//! authentication and admin requests are recorded with who asked and the answer; the chain
//! verifies offline, and a changed, removed or reordered record is found.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;
use tpw_node::demo::{account_of, EUR};
use tpw_node::storage::{seal_record, Db, CF_AUDIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_admin_actions_form_a_chain_that_verifies_and_shows_tampering() {
    // Proves who/what/answer are recorded for each kind of request, monitoring polls are not,
    // the chain continues across a restart, `tpw audit verify` accepts it, and rewriting,
    // deleting or moving one record is reported at that record.
    let folder = tempfile::tempdir().unwrap();
    let (config, admin, token) = common::prepare_with_admin(folder.path());
    let node = tpw_node::node::start(&config).await.unwrap();
    let base = format!("http://{}", node.api_address);
    let network = network_id(&config);
    let acme = key(folder.path(), "acme");

    let client = tpw_node::client::Client::new(&base);
    let envelope = sign(
        network,
        &acme,
        payment(1, account_of(3, EUR), account_of(4, EUR), EUR, 5),
    );
    let (status, _) = client.submit(&[envelope], true, None).await.unwrap();
    assert_eq!(status, 200);
    let reader = tpw_node::client::Client::new(&base).with_key(&acme);
    assert!(reader.account(account_of(3, EUR)).await.unwrap().is_some());
    let http = reqwest::Client::new();
    let refused = http
        .get(format!("{base}/v1/accounts/301"))
        .header(tpw_node::request_auth::HEADER_KEY, "ab".repeat(32))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    for _ in 0..5 {
        assert!(client.healthy().await, "monitoring polls are not audited");
    }
    let unauthorized = http
        .get(format!("http://{admin}/admin/v1/audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    let read_audit = || async {
        let answer: Value = http
            .get(format!("http://{admin}/admin/v1/audit?from=1&limit=100"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["records"].as_array().unwrap().clone()
    };
    // The writer thread records after the answer: wait for the five actions so far.
    let mut records = Vec::new();
    for _ in 0..100 {
        records = read_audit().await;
        if records.len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let summary: Vec<(String, String, String, u64)> = records
        .iter()
        .map(|record| {
            (
                record["channel"].as_str().unwrap().to_string(),
                record["actor"].as_str().unwrap().to_string(),
                record["action"].as_str().unwrap().to_string(),
                record["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let entry = |channel: &str, actor: &str, action: &str, status: u64| {
        (
            channel.to_string(),
            actor.to_string(),
            action.to_string(),
            status,
        )
    };
    assert_eq!(
        summary[..5],
        [
            entry("api", "anonymous", "POST /v1/transactions", 200),
            entry("api", "participant:3", "GET /v1/accounts/301", 200),
            entry(
                "api",
                &format!("key:{}", "ab".repeat(32)),
                "GET /v1/accounts/301",
                401
            ),
            entry("admin", "anonymous", "GET /admin/v1/audit", 401),
            entry("admin", "operator", "GET /admin/v1/audit", 200),
        ],
        "{records:#?}"
    );
    assert_ne!(records[0]["detail"], "0".repeat(64), "the body's hash");
    for pair in records.windows(2) {
        assert_eq!(pair[1]["previous"], pair[0]["hash"]);
    }
    node.stop().await.unwrap();

    // The chain continues after a restart.
    let node = tpw_node::node::start(&config).await.unwrap();
    let base = format!("http://{}", node.api_address);
    let reader = tpw_node::client::Client::new(&base).with_key(&acme);
    assert!(reader.account(account_of(3, EUR)).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    node.stop().await.unwrap();
    let data_dir = config.data_dir.to_str().unwrap().to_string();
    let verified = tpw(&["audit", "verify", "--data-dir", &data_dir]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    let count = report["records"].as_u64().unwrap();
    assert!(count >= 7, "{report}");

    // Tampering, one kind at a time, each on a copy of the log.
    let database = config.data_dir.join("db");
    let original: Vec<(Vec<u8>, Vec<u8>)> = {
        let db = Db::open(&database).unwrap();
        db.rocks()
            .iterator_cf(db.cf(CF_AUDIT), rocksdb::IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.unwrap();
                (key.to_vec(), value.to_vec())
            })
            .collect()
    };
    let restore = |db: &Db| {
        for (key, value) in &original {
            db.rocks().put_cf(db.cf(CF_AUDIT), key, value).unwrap();
        }
    };
    type Tamper = Box<dyn Fn(&Db)>;
    let second_key = original[1].0.clone();
    let third = original[2].clone();
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "record 2: its hash does not match",
            Box::new(move |db: &Db| {
                // Re-sealed (valid checksum) with one byte of the actor changed.
                let payload =
                    tpw_node::storage::open_record(&original_value(db, &second_key), "audit")
                        .unwrap()
                        .to_vec();
                let mut changed = payload.clone();
                changed[17 + 4] ^= 0x01;
                db.rocks()
                    .put_cf(db.cf(CF_AUDIT), &second_key, seal_record(&changed))
                    .unwrap();
            }),
        ),
        (
            "record 4 found where record 3 belongs",
            Box::new(move |db: &Db| {
                db.rocks().delete_cf(db.cf(CF_AUDIT), &third.0).unwrap();
            }),
        ),
    ];
    for (expected, tamper) in cases {
        {
            let db = Db::open(&database).unwrap();
            restore(&db);
            tamper(&db);
        }
        let broken = tpw(&["audit", "verify", "--data-dir", &data_dir]);
        assert!(!broken.status.success(), "{expected}");
        let report: Value = serde_json::from_slice(&broken.stdout).unwrap();
        assert!(
            report["broken"].as_str().unwrap().contains(expected),
            "{report} should say {expected}"
        );
    }
}

fn original_value(db: &Db, key: &[u8]) -> Vec<u8> {
    db.rocks().get_cf(db.cf(CF_AUDIT), key).unwrap().unwrap()
}
