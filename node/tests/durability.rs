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

/// Starts the node with a crash point armed at its `hit`-th pass.
fn spawn_armed(dir: &std::path::Path, point: &str, hit: usize) -> Child {
    let log = std::fs::File::create(dir.join("armed.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tpw"))
        .arg("run")
        .arg("--config")
        .arg(dir.join("node.toml"))
        .arg("--new-node")
        .env(tpw_node::failpoint::VARIABLE, format!("{point}:{hit}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Runs payments against a node armed to abort at `point`, restarts it, and checks that every
/// acknowledged payment is there and that the data folder equals a replay of its own blocks.
async fn crash_at(point: &str, hit: usize) {
    use std::os::unix::process::ExitStatusExt;
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let config = prepare(dir);
    // Compact often, so the compaction point is reached too.
    let mut toml = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    toml.push_str("\n[raft]\nlog_retention_entries = 64\n");
    std::fs::write(dir.join("node.toml"), toml).unwrap();
    let network = network_id(&config);
    let base = format!("http://{}", config.api_listen);
    let mut node = spawn_armed(dir, point, hit);
    let client = Client::new(&base).with_key(&key(dir, "regulator"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.healthy().await {
        assert!(
            node.try_wait().unwrap().is_none(),
            "{point}: the node stopped before serving"
        );
        assert!(
            Instant::now() < deadline,
            "{point}: the node did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked: Arc<Mutex<Vec<(u64, u128)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (stem, payer, payee) in [("acme", 3u64, 4u64), ("globex", 4, 5), ("initech", 5, 3)] {
        let (client, acked, key) = (client.clone(), Arc::clone(&acked), key(dir, stem));
        tasks.push(tokio::spawn(async move {
            for id in 0..2_000u128 {
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
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = node.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{point}: the crash point was not reached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        status.signal(),
        Some(6),
        "{point}: the node aborted at the crash point ({status:?})"
    );
    for task in tasks {
        task.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let mut node = spawn_node(dir, "after.log");
    wait_healthy(&client).await;
    for (payer, id) in &acked {
        let transfer = client.transfer(*payer, *id).await.unwrap();
        let transfer = transfer
            .unwrap_or_else(|| panic!("{point}: acknowledged transfer {payer}/{id} was lost"));
        assert_eq!(
            transfer.transfer.state,
            tpw_contracts::model::TransferState::Posted
        );
    }
    let served = client.status().await.unwrap();
    node.kill().unwrap();
    node.wait().unwrap();
    let genesis = tpw_node::node::load_genesis(&config.genesis_file).unwrap();
    let replay =
        tpw_node::verify::replay_data_folder(&config.data_dir, &genesis).unwrap_or_else(|error| {
            panic!("{point}: the data folder is not a replay of its log: {error}")
        });
    assert!(
        replay.height >= served.height,
        "{point}: replayed {} blocks, the node served height {}",
        replay.height,
        served.height
    );
    eprintln!(
        "{point} (hit {hit}): {} acknowledged before the abort, all present; {} blocks replayed to the stored state ({} records)",
        acked.len(),
        replay.height,
        replay.state_records
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_persist_and_apply_point_loses_nothing_and_state_equals_a_replay() {
    // Proves crash safety at every boundary between persisting and applying: the node aborts
    // at each crash point in turn, mid-load; after a restart every acknowledged transfer is
    // there, and the data folder equals a replay of its own blocks from genesis.
    for (round, point) in tpw_node::failpoint::POINTS.iter().enumerate() {
        crash_at(point, 40 + 13 * round).await;
    }
}

/// Starts the node on damaged data: it must stop with a clear message and never serve.
async fn refuses_damaged_data(dir: &std::path::Path, client: &Client, what: &str) {
    let mut node = spawn_node(dir, "damaged.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        assert!(
            !client.healthy().await,
            "{what}: the node served on damaged data"
        );
        if let Some(status) = node.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{what}: the node did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success(), "{what}: the node exited successfully");
    let log = std::fs::read_to_string(dir.join("damaged.log")).unwrap();
    eprintln!("{what}: {}", log.lines().last().unwrap_or_default());
    assert!(
        log.contains("data corruption detected") && log.contains("rebuild"),
        "{what}: the node's message does not say what happened: {log}"
    );
}

/// Flips one byte of a stored value in column family `family` (the last record, or the one
/// under `key`) and returns what to put back.
fn damage_record(data: &std::path::Path, family: &str, key: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let db = tpw_node::storage::Db::open(&data.join("db")).unwrap();
    let cf = db.cf(family);
    let (key, value) = match key {
        Some(key) => (key.to_vec(), db.rocks().get_cf(cf, key).unwrap().unwrap()),
        None => {
            let (key, value) = db
                .rocks()
                .iterator_cf(cf, rocksdb::IteratorMode::End)
                .next()
                .unwrap()
                .unwrap();
            (key.to_vec(), value.to_vec())
        }
    };
    let mut damaged = value.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x10;
    db.rocks().put_cf(cf, &key, &damaged).unwrap();
    db.rocks().flush_cf(cf).unwrap();
    (key, value)
}

fn restore_record(data: &std::path::Path, family: &str, (key, value): (Vec<u8>, Vec<u8>)) {
    let db = tpw_node::storage::Db::open(&data.join("db")).unwrap();
    db.rocks().put_cf(db.cf(family), key, value).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_records_and_files_are_detected_and_the_node_stops_with_a_clear_message() {
    // Proves corruption is caught by checksums before anything is served or applied: a
    // damaged ledger record, a damaged Raft log entry and a damaged data file each make the
    // node stop at start with a message naming the damage; with the damage undone, it serves.
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let config = prepare(dir);
    let network = network_id(&config);
    let base = format!("http://{}", config.api_listen);
    let client = Client::new(&base).with_key(&key(dir, "regulator"));
    let mut node = spawn_node(dir, "node-1.log");
    wait_healthy(&client).await;
    let acme = key(dir, "acme");
    for id in 0..20u128 {
        let envelope = sign(
            network,
            &acme,
            payment(id, account_of(3, EUR), account_of(4, EUR), EUR, 1),
        );
        let (status, _) = client.submit(&[envelope], true, Some(5_000)).await.unwrap();
        assert_eq!(status, 200);
    }
    node.kill().unwrap();
    node.wait().unwrap();
    let data = &config.data_dir;

    let account = tpw_contracts::state::account_key(account_of(3, EUR));
    let undo = damage_record(data, "state", Some(&account));
    refuses_damaged_data(dir, &client, "a damaged account record").await;
    restore_record(data, "state", undo);

    let undo = damage_record(data, "raft_log", None);
    refuses_damaged_data(dir, &client, "a damaged raft log entry").await;
    restore_record(data, "raft_log", undo);

    let mut node = spawn_node(dir, "repaired.log");
    wait_healthy(&client).await;
    let balance = client.account(account_of(4, EUR)).await.unwrap().unwrap();
    assert!(balance.account.credits_posted >= 20);
    node.kill().unwrap();
    node.wait().unwrap();

    // A damaged table file: every family flushed to files, then bytes of the largest file
    // flipped in place.
    {
        let db = tpw_node::storage::Db::open(&data.join("db")).unwrap();
        for family in ["state", "blocks", "raft_log", "index", "meta"] {
            db.rocks().flush_cf(db.cf(family)).unwrap();
        }
    }
    let largest = std::fs::read_dir(data.join("db"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "sst"))
        .max_by_key(|path| std::fs::metadata(path).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&largest).unwrap();
    let third = bytes.len() / 3;
    for byte in &mut bytes[third..third + 16] {
        *byte ^= 0x5a;
    }
    std::fs::write(&largest, bytes).unwrap();
    refuses_damaged_data(dir, &client, "a damaged table file").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpw_verify_replays_a_data_folder_and_names_the_first_divergence() {
    // Proves the offline verifier: an untouched data folder verifies (every signature, hash
    // link, receipt and state root replayed), and a block whose stored receipt or a state
    // record that was rewritten (with a valid checksum, so only a replay can tell) is reported
    // with its height and exactly what differs.
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let config = prepare(dir);
    let network = network_id(&config);
    let base = format!("http://{}", config.api_listen);
    let client = Client::new(&base).with_key(&key(dir, "regulator"));
    let mut node = spawn_node(dir, "node-1.log");
    wait_healthy(&client).await;
    let acme = key(dir, "acme");
    for id in 0..10u128 {
        let envelope = sign(
            network,
            &acme,
            payment(id, account_of(3, EUR), account_of(4, EUR), EUR, 1),
        );
        client.submit(&[envelope], true, Some(5_000)).await.unwrap();
    }
    node.kill().unwrap();
    node.wait().unwrap();
    let verify = || {
        let output = Command::new(env!("CARGO_BIN_EXE_tpw"))
            .arg("verify")
            .arg("--data-dir")
            .arg(&config.data_dir)
            .arg("--genesis")
            .arg(&config.genesis_file)
            .output()
            .unwrap();
        let line = String::from_utf8(output.stdout).unwrap();
        let report: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        (output.status.success(), report)
    };
    let (ok, report) = verify();
    assert!(ok, "{report}");
    assert_eq!(report["verified"], true);
    assert!(report["height"].as_u64().unwrap() >= 10, "{report}");

    // A stored receipt rewritten: block 3's first receipt now claims another result.
    let db = tpw_node::storage::Db::open(&config.data_dir.join("db")).unwrap();
    let blocks = db.cf("blocks");
    let stored = db
        .rocks()
        .get_cf(blocks, 3u64.to_be_bytes())
        .unwrap()
        .unwrap();
    let payload = tpw_node::storage::open_record(&stored, "block").unwrap();
    let mut record = tpw_node::storage::parse_block_record(payload).unwrap();
    let original = record.clone();
    record.receipts[0].code = tpw_contracts::ResultCode::ExceedsCredits;
    let rewritten = tpw_node::storage::seal_record(&record.to_bytes());
    db.rocks()
        .put_cf(blocks, 3u64.to_be_bytes(), rewritten)
        .unwrap();
    drop(db);
    let (ok, report) = verify();
    assert!(!ok);
    assert_eq!(report["first_divergence"]["height"], 3, "{report}");
    let what = report["first_divergence"]["what"].as_str().unwrap();
    assert!(
        what.contains("receipt 0") && what.contains("exceeds_credits"),
        "{what}"
    );

    // Put it back, and rewrite an account's balance instead.
    let db = tpw_node::storage::Db::open(&config.data_dir.join("db")).unwrap();
    let restored = tpw_node::storage::seal_record(&original.to_bytes());
    db.rocks()
        .put_cf(db.cf("blocks"), 3u64.to_be_bytes(), restored)
        .unwrap();
    let account_key = tpw_contracts::state::account_key(account_of(4, EUR));
    let stored = db
        .rocks()
        .get_cf(db.cf("state"), &account_key)
        .unwrap()
        .unwrap();
    let payload = tpw_node::storage::open_record(&stored, "account").unwrap();
    let mut account =
        tpw_contracts::model::from_bytes(payload, tpw_contracts::model::Account::decode).unwrap();
    account.credits_posted += 1_000_000;
    let bytes = tpw_contracts::model::to_bytes(|writer| account.encode(writer));
    db.rocks()
        .put_cf(
            db.cf("state"),
            &account_key,
            tpw_node::storage::seal_record(&bytes),
        )
        .unwrap();
    drop(db);
    let (ok, report) = verify();
    assert!(!ok);
    let what = report["first_divergence"]["what"].as_str().unwrap();
    assert!(
        what.contains(&hex::encode(&account_key)) && what.contains("other bytes"),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_node_key_serves_and_no_key_bytes_reach_the_logs() {
    // Proves key secrecy end to end: a node whose key file is encrypted starts only with its
    // passphrase; without it, it stops with a clear message; and its trace-level logs, through
    // a start, payments, and both exits, never carry the node's secret key, the passphrase or
    // the admin token.
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let config = prepare(dir);
    let network = network_id(&config);
    let secret = hex::encode(
        tpw_node::keys::load(&config.node_key_file)
            .unwrap()
            .to_bytes(),
    );
    let passphrase = "a long passphrase for the node key";
    let encrypt = Command::new(env!("CARGO_BIN_EXE_tpw"))
        .args(["encrypt-key", "--file"])
        .arg(&config.node_key_file)
        .env(tpw_node::keys::PASSPHRASE_VARIABLE, passphrase)
        .output()
        .unwrap();
    assert!(encrypt.status.success(), "{encrypt:?}");
    let on_disk = std::fs::read_to_string(&config.node_key_file).unwrap();
    assert!(!on_disk.contains(&secret));
    let spawn = |passphrase: Option<&str>, log_name: &str| {
        let log = std::fs::File::create(dir.join(log_name)).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tpw"));
        command
            .arg("run")
            .arg("--config")
            .arg(dir.join("node.toml"))
            .args(["--log-level", "trace"])
            .args((!dir.join("data").exists()).then_some("--new-node"))
            .env_remove(tpw_node::keys::PASSPHRASE_VARIABLE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(passphrase) = passphrase {
            command.env(tpw_node::keys::PASSPHRASE_VARIABLE, passphrase);
        }
        command.spawn().unwrap()
    };
    // Without the passphrase: a clear refusal.
    let mut refused = spawn(None, "no-passphrase.log");
    let status = refused.wait().unwrap();
    assert!(!status.success());
    let message = std::fs::read_to_string(dir.join("no-passphrase.log")).unwrap();
    assert!(
        message.contains("encrypted") && message.contains(tpw_node::keys::PASSPHRASE_VARIABLE),
        "{message}"
    );
    // With it: serves; then payments and a SIGKILL.
    let mut node = spawn(Some(passphrase), "node.log");
    let base = format!("http://{}", config.api_listen);
    let client = Client::new(&base).with_key(&key(dir, "regulator"));
    wait_healthy(&client).await;
    for id in 0..5u128 {
        let envelope = sign(
            network,
            &key(dir, "acme"),
            payment(id, account_of(3, EUR), account_of(4, EUR), EUR, 1),
        );
        let (status, _) = client.submit(&[envelope], true, Some(5_000)).await.unwrap();
        assert_eq!(status, 200);
    }
    node.kill().unwrap();
    node.wait().unwrap();
    let admin_token = config
        .admin_token_file
        .as_ref()
        .map(|path| tpw_node::keys::load_admin_token(path).unwrap());
    for log_name in ["no-passphrase.log", "node.log"] {
        let log = std::fs::read_to_string(dir.join(log_name)).unwrap();
        assert!(
            log.len() > 1_000 || log_name == "no-passphrase.log",
            "trace logs were written"
        );
        assert!(
            !log.contains(&secret),
            "{log_name} shows the node's secret key"
        );
        assert!(!log.contains(passphrase), "{log_name} shows the passphrase");
        if let Some(token) = &admin_token {
            assert!(
                !log.contains(token.as_str()),
                "{log_name} shows the admin token"
            );
        }
    }
}
