//! Restoring an online backup (`tpw restore`): the restored folder replays from genesis to the
//! backup's head, the Raft state is reset, an interrupted restore is simply run again, and the
//! folder never runs as the node the backup was taken from; bad backups and targets are refused
//! without leaving a half-restored ledger.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_a_new_folder_that_never_runs_as_its_old_node() {
    // Proves the restored head equals the manifest and replays from genesis, the Raft state
    // is reset to the backup's applied index with no vote, the original node refuses the
    // folder, and existing targets, foreign networks and staging leftovers are handled.
    let folder = tempfile::tempdir().unwrap();
    let (config, admin, token) = common::prepare_with_admin(folder.path());
    let node = common::start_with_payments(&config, folder.path(), 40).await;
    let backup = folder.path().join("backup");
    let manifest: Value = reqwest::Client::new()
        .post(format!("http://{admin}/admin/v1/backup"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "path": backup }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    node.stop().await.unwrap();

    let genesis = config.genesis_file.to_str().unwrap().to_string();
    let restored = folder.path().join("restored");
    let restored_dir = restored.to_str().unwrap().to_string();
    let backup_dir = backup.to_str().unwrap().to_string();
    // A leftover of an interrupted restore is started over.
    std::fs::create_dir_all(restored.join("db.restoring")).unwrap();
    std::fs::write(restored.join("db.restoring/junk"), b"partial").unwrap();
    let run = |target: &str| {
        tpw(&[
            "restore",
            "--backup",
            &backup_dir,
            "--data-dir",
            target,
            "--genesis",
            &genesis,
        ])
    };
    let output = run(&restored_dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["height"], manifest["height"]);
    assert_eq!(report["head_hash"], manifest["head_hash"]);
    assert_eq!(report["from_node"], manifest["node_id"]);
    assert!(!restored.join("db.restoring").exists());

    let again = run(&restored_dir);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a ledger"));

    let verified = tpw(&["verify", "--data-dir", &restored_dir, "--genesis", &genesis]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let replayed: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(replayed["height"], manifest["height"]);

    // The Raft state: applied up to the backup, the log empty after it, no vote.
    {
        let db = tpw_node::storage::Db::open(&restored.join("db")).unwrap();
        let log = tpw_node::storage::RaftLogStore::open(db.clone(), vec![1], vec![]).unwrap();
        let applied = manifest["applied_index"].as_u64().unwrap();
        assert_eq!(log.compacted_index(), applied);
        assert_eq!(log.hard_state().vote, 0);
        assert_eq!(log.hard_state().commit, applied);
        assert_eq!(tpw_node::restore::restored_from(&db).unwrap(), Some(1));
    }

    // The node the backup came from never runs on it.
    let mut original = config.clone();
    original.data_dir = restored.clone();
    original.admin_listen = None;
    original.admin_token_file = None;
    let refused = match tpw_node::node::start(&original).await {
        Ok(_) => panic!("the original node started on its own restored backup"),
        Err(error) => error.to_string(),
    };
    assert!(
        refused.contains("restored from a backup of node 1"),
        "{refused}"
    );

    // A backup of another network is refused, and nothing is written.
    let mut foreign: Value =
        serde_json::from_str(&std::fs::read_to_string(&config.genesis_file).unwrap()).unwrap();
    foreign["network_name"] = "another".into();
    foreign.as_object_mut().unwrap().remove("network_id");
    let foreign_spec = folder.path().join("foreign-spec.json");
    std::fs::write(&foreign_spec, foreign.to_string()).unwrap();
    let foreign_genesis = folder.path().join("foreign.json");
    assert!(tpw(&[
        "genesis",
        "create",
        "--spec",
        foreign_spec.to_str().unwrap(),
        "--out",
        foreign_genesis.to_str().unwrap()
    ])
    .status
    .success());
    let elsewhere = folder.path().join("elsewhere");
    let mismatch = tpw(&[
        "restore",
        "--backup",
        &backup_dir,
        "--data-dir",
        elsewhere.to_str().unwrap(),
        "--genesis",
        foreign_genesis.to_str().unwrap(),
    ]);
    assert!(!mismatch.status.success());
    assert!(String::from_utf8_lossy(&mismatch.stderr).contains("belongs to network"));
    assert!(!elsewhere.join("db").exists());
}
