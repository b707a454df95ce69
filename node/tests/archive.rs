//! Ledger archives and restores to a chosen height: `tpw export` beside a running node and
//! resumed after an interruption, `tpw verify --archive` (and its refusal of altered or cut
//! archives), and `tpw restore --to-height` from an archive and from a backup, which rebuild
//! the ledger exactly as it stood at that height and refuse every node it records.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn text(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_verify_resume_and_restore_to_a_chosen_height() {
    let folder = tempfile::tempdir().unwrap();
    let (config, admin, _token) = common::prepare_with_admin(folder.path());
    let node = common::start_with_payments(&config, folder.path(), 30).await;
    let genesis = text(&config.genesis_file);
    let data_dir = text(&config.data_dir);

    // An export beside the running node, read-only on its folder, verifies.
    let live = folder.path().join("live.tpwa");
    let exported = tpw_json(&["export", "--data-dir", &data_dir, "--out", &text(&live)]);
    assert!(exported["height"].as_u64().unwrap() >= 2);
    let verified = tpw_json(&["verify", "--archive", &text(&live), "--genesis", &genesis]);
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["head_hash"], exported["head_hash"]);
    // An archive is never overwritten.
    let again = tpw(&["export", "--data-dir", &data_dir, "--out", &text(&live)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    // `tpw status` follows a node until it reaches a reference node's height.
    let api = format!("http://{}", node.api_address);
    let caught_up = tpw_json(&[
        "status",
        "--node",
        &api,
        "--until-caught-up",
        "--reference",
        &api,
        "--timeout-s",
        "30",
    ]);
    assert!(caught_up["height"].as_u64().unwrap() >= 2);
    assert_eq!(caught_up["blocks_missing"], 0);
    let refused = tpw(&["status", "--node", &api, "--until-caught-up"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs --reference"));

    // `tpw backup` takes an online backup through the admin interface and replays it.
    let backup = folder.path().join("backup");
    let taken = tpw_json(&[
        "backup",
        "--admin",
        &format!("http://{admin}"),
        "--token-file",
        &text(&folder.path().join("admin-token")),
        "--path",
        &text(&backup),
        "--verify",
        "--genesis",
        &genesis,
    ]);
    let manifest = taken["manifest"].clone();
    assert_eq!(taken["verified"]["height"], manifest["height"]);
    assert_eq!(taken["verified"]["head_hash"], manifest["head_hash"]);
    let again = tpw(&[
        "backup",
        "--admin",
        &format!("http://{admin}"),
        "--token-file",
        &text(&folder.path().join("admin-token")),
        "--path",
        &text(&backup),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("bad_backup_path"));
    node.stop().await.unwrap();

    // The whole ledger, exported from the stopped node, replays to its head.
    let archive = folder.path().join("ledger.tpwa");
    let exported = tpw_json(&["export", "--data-dir", &data_dir, "--out", &text(&archive)]);
    let head = exported["height"].as_u64().unwrap();
    assert_eq!(exported["blocks_written"].as_u64().unwrap(), head);
    assert_eq!(exported["resumed_after_height"], Value::Null);
    let verified = tpw_json(&[
        "verify",
        "--archive",
        &text(&archive),
        "--genesis",
        &genesis,
    ]);
    assert_eq!(verified["height"].as_u64().unwrap(), head);
    assert_eq!(verified["head_hash"], exported["head_hash"]);
    let folder_verified = tpw_json(&["verify", "--data-dir", &data_dir, "--genesis", &genesis]);
    assert_eq!(verified["state_root"], folder_verified["state_root"]);
    assert_eq!(verified["state_records"], folder_verified["state_records"]);
    // The replay checked the money invariants: each asset's supply, as the node serves it.
    assert_eq!(verified["assets"], folder_verified["assets"]);
    assert_eq!(
        folder_verified["assets"][0],
        serde_json::json!({ "asset": 1, "outstanding": "400000000" })
    );
    let bytes = std::fs::read(&archive).unwrap();

    // An export cut off mid-record resumes after its last complete block and writes the
    // same archive.
    let resumed = folder.path().join("resumed.tpwa");
    std::fs::write(
        folder.path().join("resumed.tpwa.partial"),
        &bytes[..bytes.len() * 2 / 3],
    )
    .unwrap();
    let report = tpw_json(&["export", "--data-dir", &data_dir, "--out", &text(&resumed)]);
    let resumed_after = report["resumed_after_height"].as_u64().unwrap();
    assert!(resumed_after > 0 && resumed_after < head, "{report}");
    assert_eq!(
        report["blocks_written"].as_u64().unwrap(),
        head - resumed_after
    );
    assert_eq!(std::fs::read(&resumed).unwrap(), bytes);
    assert!(!folder.path().join("resumed.tpwa.partial").exists());

    // A partial export cut inside its header starts over.
    let restarted = folder.path().join("restarted.tpwa");
    std::fs::write(folder.path().join("restarted.tpwa.partial"), &bytes[..10]).unwrap();
    let report = tpw_json(&[
        "export",
        "--data-dir",
        &data_dir,
        "--out",
        &text(&restarted),
    ]);
    assert_eq!(report["resumed_after_height"], Value::Null);
    assert_eq!(std::fs::read(&restarted).unwrap(), bytes);

    // An altered byte in the last block, and a cut archive, are refused.
    let mut altered = bytes.clone();
    // The end record: length, kind, height, head hash, one node id, checksum.
    let end_record = 4 + 1 + 8 + 32 + 4 + 8 + 32;
    let position = altered.len() - end_record - 3;
    altered[position] ^= 0x40;
    let altered_path = folder.path().join("altered.tpwa");
    std::fs::write(&altered_path, &altered).unwrap();
    let refused = tpw(&[
        "verify",
        "--archive",
        &text(&altered_path),
        "--genesis",
        &genesis,
    ]);
    assert!(!refused.status.success());
    let line: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(line["verified"], false, "{line}");
    let cut_path = folder.path().join("cut.tpwa");
    std::fs::write(&cut_path, &bytes[..bytes.len() - end_record]).unwrap();
    let refused = tpw(&[
        "verify",
        "--archive",
        &text(&cut_path),
        "--genesis",
        &genesis,
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("without its end record"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Restored to a chosen height from the archive: exactly the ledger of that height.
    let chosen = head / 2;
    let expected_hash = {
        let db = tpw_node::storage::Db::open_read_only(&config.data_dir.join("db")).unwrap();
        let block = tpw_node::storage::LedgerReader::new(db)
            .block(chosen)
            .unwrap()
            .unwrap();
        hex::encode(block.header.hash())
    };
    let from_archive = folder.path().join("from-archive");
    let report = tpw_json(&[
        "restore",
        "--archive",
        &text(&archive),
        "--to-height",
        &chosen.to_string(),
        "--data-dir",
        &text(&from_archive),
        "--genesis",
        &genesis,
    ]);
    assert_eq!(report["height"].as_u64().unwrap(), chosen);
    assert_eq!(report["head_hash"], expected_hash);
    assert_eq!(report["replayed_blocks"].as_u64().unwrap(), chosen);
    assert_eq!(report["refused_nodes"], serde_json::json!([1]));
    let replayed = tpw_json(&[
        "verify",
        "--data-dir",
        &text(&from_archive),
        "--genesis",
        &genesis,
    ]);
    assert_eq!(replayed["height"].as_u64().unwrap(), chosen);
    assert_eq!(replayed["head_hash"], expected_hash);

    // The same height from the backup gives the same ledger.
    let from_backup = folder.path().join("from-backup");
    let same = tpw_json(&[
        "restore",
        "--backup",
        &text(&backup),
        "--to-height",
        &chosen.to_string(),
        "--data-dir",
        &text(&from_backup),
        "--genesis",
        &genesis,
    ]);
    assert_eq!(same["head_hash"], expected_hash);
    assert_eq!(same["state_root"], report["state_root"]);
    assert_eq!(same["applied_index"], report["applied_index"]);
    assert_eq!(same["from_node"], manifest["node_id"]);

    // Raft resumes after the block's own position, with nothing voted.
    {
        let db = tpw_node::storage::Db::open(&from_archive.join("db")).unwrap();
        let applied = report["applied_index"].as_u64().unwrap();
        assert!(applied >= chosen);
        let log = tpw_node::storage::RaftLogStore::open(db.clone(), vec![1], vec![]).unwrap();
        assert_eq!(log.compacted_index(), applied);
        assert_eq!(log.hard_state().vote, 0);
        assert_eq!(tpw_node::restore::restored_refused(&db).unwrap(), vec![1]);
    }

    // No node the restored ledger records runs on it.
    let mut original = config.clone();
    original.data_dir = from_archive.clone();
    original.admin_listen = None;
    original.admin_token_file = None;
    let refused = match tpw_node::node::start(&original).await {
        Ok(_) => panic!("node 1 started on a folder restored to an earlier height"),
        Err(error) => error.to_string(),
    };
    assert!(refused.contains("records node 1"), "{refused}");

    // Beyond the source's head, and into a folder holding a ledger: refused, nothing written.
    let beyond = folder.path().join("beyond");
    let refused = tpw(&[
        "restore",
        "--archive",
        &text(&archive),
        "--to-height",
        &(head + 1).to_string(),
        "--data-dir",
        &text(&beyond),
        "--genesis",
        &genesis,
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("below the chosen height"));
    assert!(!beyond.join("db").exists());
    let refused = tpw(&[
        "restore",
        "--archive",
        &text(&archive),
        "--data-dir",
        &text(&from_archive),
        "--genesis",
        &genesis,
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds a ledger"));
}
