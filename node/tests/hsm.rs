//! Keys in a hardware token, against the real SoftHSM2 (Debian's softhsm2; scripts/setup
//! installs it): a partner's ed25519 key generated in the token by `tpw keygen --pkcs11`
//! signs a transfer and a signed read through the `tpw` CLI, the private key is sensitive and
//! never extractable, a wrong PIN is refused with the token's reason, and neither the PIN nor
//! key material reaches a file of ours or the CLI's output.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// SoftHSM2's PKCS#11 library as Debian installs it.
const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of the test token: distinctive, so a leak into any output is found.
const PIN: &str = "tpw-pin-7Qx3vK";

/// A token of its own in `folder`: SoftHSM2's configuration (set for every command through
/// `SOFTHSM2_CONF`), its token folder, and a PIN file. Returns the configuration's path.
fn token(folder: &Path) -> PathBuf {
    assert!(
        Path::new(MODULE).exists(),
        "SoftHSM2 is not installed ({MODULE} is missing): run scripts/setup"
    );
    let tokens = folder.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let config = folder.join("softhsm2.conf");
    std::fs::write(
        &config,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let initialised = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &config)
        .args([
            "--init-token",
            "--free",
            "--label",
            "tpw-test",
            "--pin",
            PIN,
        ])
        .args(["--so-pin", "tpw-so-pin-9"])
        .output()
        .unwrap();
    assert!(
        initialised.status.success(),
        "softhsm2-util: {}",
        String::from_utf8_lossy(&initialised.stderr)
    );
    config
}

/// `tpw` with the token's configuration in its environment.
fn tpw(softhsm: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tpw"))
        .env("SOFTHSM2_CONF", softhsm)
        .args(args)
        .output()
        .unwrap()
}

/// Every file under `folder`, recursively.
fn files(folder: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_signs_transfers_and_reads_with_a_key_that_never_leaves_the_token() {
    // Proves the PKCS#11 signer end to end with SoftHSM2: the key is made in the token and is
    // sensitive and never extractable there; the ledger admits the partner's transfer signed
    // by the token and answers its signed read; a wrong PIN fails with the token's reason; and
    // no file the node or CLI wrote, and no output, holds the PIN.
    let folder = tempfile::tempdir().unwrap();
    let softhsm = token(&folder.path().join("hsm"));
    let pin_file = folder.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let uri = format!(
        "pkcs11:token=tpw-test;object=acme?module-path={MODULE}&pin-source=file:{}",
        pin_file.display()
    );
    let generated = tpw(&softhsm, &["keygen", "--pkcs11", &uri]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let generated: serde_json::Value = serde_json::from_slice(&generated.stdout).unwrap();
    let public_key = generated["public_key"].as_str().unwrap().to_string();
    assert_eq!(public_key.len(), 64);
    // The same label again is refused: a key is never replaced by accident.
    let again = tpw(&softhsm, &["keygen", "--pkcs11", &uri]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a key labelled"));

    // The token says its private key is sensitive and cannot be extracted.
    let listed = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", &softhsm)
        .args([
            "--module",
            MODULE,
            "--token-label",
            "tpw-test",
            "--login",
            "--pin",
            PIN,
        ])
        .args(["--list-objects", "--type", "privkey"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("sensitive") && listed.contains("never extractable"),
        "{listed}"
    );

    // Acme's genesis key is the token's key.
    let node_folder = folder.path().join("node");
    let config = common::prepare(&node_folder);
    common::rewrite_genesis(&config, |genesis| {
        let acme = genesis
            .participants
            .iter_mut()
            .find(|participant| participant.id == 3)
            .unwrap();
        acme.keys = vec![public_key.clone()];
    });
    let node = tpw_node::node::start(&config).await.unwrap();
    let base = format!("http://{}", node.api_address);

    let transfer = tpw(
        &softhsm,
        &[
            "transfer", "--node", &base, "--key", &uri, "--id", "100", "--debit", "301",
            "--credit", "501", "--asset", "1", "--amount", "1999",
        ],
    );
    let transfer_out = String::from_utf8_lossy(&transfer.stdout).to_string();
    assert!(
        transfer.status.success(),
        "{transfer_out} {}",
        String::from_utf8_lossy(&transfer.stderr)
    );
    assert!(transfer_out.contains("\"committed\""), "{transfer_out}");
    let read = tpw(
        &softhsm,
        &["account", "--node", &base, "--key", &uri, "301"],
    );
    let read_out = String::from_utf8_lossy(&read.stdout).to_string();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let account: serde_json::Value = serde_json::from_str(&read_out).unwrap();
    assert_eq!(account["account"]["debits_posted"], "1999");

    // A wrong PIN: refused by the token, named.
    let wrong_pin = folder.path().join("wrong-pin");
    std::fs::write(&wrong_pin, "not-the-pin\n").unwrap();
    let wrong_uri = uri.replace(
        &pin_file.display().to_string(),
        &wrong_pin.display().to_string(),
    );
    let refused = tpw(
        &softhsm,
        &["account", "--node", &base, "--key", &wrong_uri, "301"],
    );
    assert!(!refused.status.success());
    let refused_err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(
        refused_err.contains("C_Login") && refused_err.contains("PIN is incorrect"),
        "{refused_err}"
    );

    node.stop().await.unwrap();
    // Nothing of ours holds the PIN: the node's folder (data, logs), and every output.
    for path in files(&node_folder) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(PIN.len())
                .any(|window| window == PIN.as_bytes()),
            "{} holds the PIN",
            path.display()
        );
    }
    for output in [&transfer_out, &read_out, &refused_err] {
        assert!(!output.contains(PIN));
    }
}
