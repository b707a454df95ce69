//! A real `tpw run` process is SIGKILLed while clients stream transfers; after a restart every
//! transfer acknowledged as committed is there and debits still equal credits.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tpw_node::client::Client;

fn spawn_node(dir: &std::path::Path, log_name: &str) -> Child {
    let log = std::fs::File::create(dir.join(log_name)).unwrap();
    let first_start = !dir.join("data").exists();
    Command::new(env!("CARGO_BIN_EXE_tpw"))
        .arg("run")
        .arg("--config")
        .arg(dir.join("node.toml"))
        .args(first_start.then_some("--new-node"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_healthy(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.healthy().await {
        assert!(Instant::now() < deadline, "the node did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_transfer() {
    // Proves acknowledged commits survive SIGKILL: the Raft log is synced before any ack.
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let config = prepare(dir);
    let network = network_id(&config);
    let base = format!("http://{}", config.api_listen);
    let mut node = spawn_node(dir, "node-1.log");
    let client = Client::new(&base).with_key(&key(dir, "regulator"));
    wait_healthy(&client).await;

    let acked: Arc<Mutex<Vec<(u64, u128)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop_at = Instant::now() + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for (index, (stem, payer)) in [
        ("acme", 3u64),
        ("globex", 4),
        ("initech", 5),
        ("umbrella", 6),
    ]
    .into_iter()
    .enumerate()
    {
        for lane in 0..2u128 {
            let (client, acked, key) = (client.clone(), Arc::clone(&acked), key(dir, stem));
            let payee = 3 + (index as u64 + 1) % 4;
            tasks.push(tokio::spawn(async move {
                for sequence in 0..5_000u128 {
                    if Instant::now() > stop_at {
                        break;
                    }
                    let id = lane * 1_000_000 + sequence;
                    let envelope = sign(
                        network,
                        &key,
                        payment(id, account_of(payer, EUR), account_of(payee, EUR), EUR, 1),
                    );
                    match client.submit(&[envelope], true, Some(5_000)).await {
                        Ok((200, response)) if response.results[0].status == "committed" => {
                            acked.lock().unwrap().push((payer, id));
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    node.kill().unwrap();
    node.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the load ran before the kill ({} acknowledged)",
        acked.len()
    );

    let mut node = spawn_node(dir, "node-2.log");
    wait_healthy(&client).await;
    for (payer, id) in &acked {
        let transfer = client.transfer(*payer, *id).await.unwrap();
        let transfer =
            transfer.unwrap_or_else(|| panic!("acknowledged transfer {payer}/{id} was lost"));
        assert_eq!(
            transfer.transfer.state,
            tpw_contracts::model::TransferState::Posted
        );
    }
    let (mut debits, mut credits) = (0u128, 0u128);
    for (account, asset) in tpw_node::demo::all_accounts() {
        if asset == EUR {
            let view = client.account(account).await.unwrap().unwrap().account;
            debits += view.debits_posted;
            credits += view.credits_posted;
        }
    }
    assert_eq!(debits, credits, "debits equal credits after the crash");
    node.kill().unwrap();
    node.wait().unwrap();
}
