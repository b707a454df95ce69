//! The `tpw` command line end to end: key and genesis tools, a node started with `tpw run`, and
//! every client subcommand against it, including the failures a user will meet first.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The key file that signs reads when a command names none (TPW_KEY): the regulator's, which
/// may read everything.
static READ_KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn tpw(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tpw"));
    if let Some(key) = READ_KEY.get() {
        command.env("TPW_KEY", key);
    }
    command.args(args).stdin(Stdio::null()).output().unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "stdout is JSON: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn every_cli_command_works_against_a_running_node() {
    // Proves the documented CLI flows, and that the first mistakes get clear errors.
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let config = prepare(dir);
    let url = format!("http://{}", config.api_listen);

    let keygen = tpw(&["keygen", "--out", &path(dir, "new-key.json")]);
    assert!(keygen.status.success());
    assert_eq!(json(&keygen)["public_key"].as_str().unwrap().len(), 64);
    assert_eq!(
        std::fs::metadata(dir.join("new-key.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(
        !tpw(&["keygen", "--out", &path(dir, "new-key.json")])
            .status
            .success(),
        "never overwrites a key"
    );

    let mut spec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("genesis.json")).unwrap()).unwrap();
    let stated_id = spec["network_id"].as_str().unwrap().to_string();
    spec.as_object_mut().unwrap().remove("network_id");
    std::fs::write(dir.join("spec.json"), spec.to_string()).unwrap();
    let created = tpw(&[
        "genesis",
        "create",
        "--spec",
        &path(dir, "spec.json"),
        "--out",
        &path(dir, "again.json"),
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert_eq!(json(&created)["network_id"], stated_id.as_str());

    let open_key = path(dir, "keys/open.json");
    std::fs::copy(dir.join("keys/node-1.json"), &open_key).unwrap();
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = tpw(&[
        "run",
        "--config",
        &path(dir, "node.toml"),
        "--node-key",
        &open_key,
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("chmod 600"));
    let missing = tpw(&["run", "--config", &path(dir, "missing.toml")]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));

    let wiped = tpw(&["run", "--config", &path(dir, "node.toml")]);
    assert!(
        !wiped.status.success(),
        "a voter never starts on an empty data folder unless told it is new"
    );
    assert!(String::from_utf8_lossy(&wiped.stderr).contains("--new-node"));
    assert!(!dir.join("data/db").exists(), "the refusal created nothing");
    let mut node = Command::new(env!("CARGO_BIN_EXE_tpw"))
        .args(["run", "--config", &path(dir, "node.toml"), "--new-node"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    READ_KEY.get_or_init(|| path(dir, "keys/regulator.json"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tpw(&["account", "--node", &url, "301"]).status.success() {
        assert!(Instant::now() < deadline, "the node did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }

    let acme = path(dir, "keys/acme.json");
    let signed = |args: &[&str]| {
        let mut all = vec![args[0], "--node", url.as_str(), "--key", acme.as_str()];
        all.extend_from_slice(&args[1..]);
        tpw(&all)
    };
    let paid = signed(&[
        "transfer", "--id", "1", "--debit", "301", "--credit", "501", "--asset", "1", "--amount",
        "100",
    ]);
    assert!(
        paid.status.success(),
        "{}",
        String::from_utf8_lossy(&paid.stderr)
    );
    let tx_id = json(&paid)["results"][0]["tx_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(json(&paid)["results"][0]["code"], "ok");
    let reserve = [
        "transfer",
        "--id",
        "2",
        "--debit",
        "301",
        "--credit",
        "501",
        "--asset",
        "1",
        "--amount",
        "80",
        "--pending-timeout-ms",
        "60000",
    ];
    assert!(signed(&reserve).status.success());
    assert!(
        signed(&["post", "--id", "3", "--pending-id", "2", "--amount", "50"])
            .status
            .success()
    );
    let reserve = [
        "transfer",
        "--id",
        "4",
        "--debit",
        "301",
        "--credit",
        "501",
        "--asset",
        "1",
        "--amount",
        "7",
        "--pending-timeout-ms",
        "60000",
    ];
    assert!(signed(&reserve).status.success());
    assert!(signed(&["void", "--id", "5", "--pending-id", "4"])
        .status
        .success());
    let opened = signed(&[
        "open-account",
        "--account",
        "9001",
        "--owner",
        "3",
        "--asset",
        "1",
        "--flag",
        "debits_must_not_exceed_credits",
    ]);
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    std::fs::write(
        dir.join("batch.json"),
        r#"[{"type":"transfer","id":"6","debit_account":"301","credit_account":"9001","asset":1,"amount":"30"},
            {"type":"transfer","id":"7","debit_account":"302","credit_account":"502","asset":2,"amount":"5"}]"#,
    )
    .unwrap();
    let linked = signed(&["linked", "--file", &path(dir, "batch.json")]);
    assert!(
        linked.status.success(),
        "{}",
        String::from_utf8_lossy(&linked.stderr)
    );
    assert_eq!(
        json(&linked)["results"][0]["operations"],
        serde_json::json!(["ok", "ok"])
    );

    let too_much = signed(&[
        "transfer",
        "--id",
        "8",
        "--debit",
        "301",
        "--credit",
        "501",
        "--asset",
        "1",
        "--amount",
        "999999999999",
    ]);
    assert!(
        !too_much.status.success(),
        "a ledger rejection is a failing exit"
    );
    assert_eq!(json(&too_much)["error"]["code"], "exceeds_credits");

    let account = json(&tpw(&["account", "--node", &url, "301"]));
    assert_eq!(
        account["account"]["debits_posted"], "180",
        "100 paid, 50 posted, 30 in the batch"
    );
    assert_eq!(account["account"]["debits_pending"], "0");
    let tx = json(&tpw(&["tx", "--node", &url, &tx_id]));
    assert_eq!(tx["status"], "committed");
    let status = json(&tpw(&[
        "transfer-status",
        "--node",
        &url,
        "--participant",
        "3",
        "--id",
        "2",
    ]));
    assert_eq!(status["transfer"]["state"], "pending_posted");
    let regulator = path(dir, "keys/regulator.json");
    let as_regulator = |args: &[&str]| {
        let mut all = vec![args[0], "--node", url.as_str(), "--key", regulator.as_str()];
        all.extend_from_slice(&args[1..]);
        tpw(&all)
    };
    let refused = signed(&["hold", "--account", "301", "--reason", "4"]);
    assert!(!refused.status.success(), "a partner cannot place a hold");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("regulator_only"));
    let held = as_regulator(&["hold", "--account", "301", "--reason", "4"]);
    assert_eq!(
        json(&held)["results"][0]["code"],
        "ok",
        "{}",
        String::from_utf8_lossy(&held.stderr)
    );
    let account = json(&tpw(&["account", "--node", &url, "301"]));
    assert_eq!(account["hold"]["reason"], 4);
    assert_eq!(account["hold"]["regulator"], 7);
    assert!(account["account"]["flags"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("frozen")));
    let blocked = signed(&[
        "transfer", "--id", "9", "--debit", "301", "--credit", "501", "--asset", "1", "--amount",
        "1",
    ]);
    assert_eq!(json(&blocked)["error"]["code"], "account_frozen");
    let released = as_regulator(&["release-hold", "--account", "301"]);
    assert_eq!(json(&released)["results"][0]["code"], "ok");
    let paid_again = signed(&[
        "transfer", "--id", "10", "--debit", "301", "--credit", "501", "--asset", "1", "--amount",
        "1",
    ]);
    assert_eq!(json(&paid_again)["results"][0]["code"], "ok");
    assert!(json(&tpw(&["account", "--node", &url, "301"]))
        .get("hold")
        .is_none());

    let secret = "07".repeat(32);
    let hashlock = json(&tpw(&["escrow", "hashlock", "--secret", &secret]))["hashlock"]
        .as_str()
        .unwrap()
        .to_string();
    let nested = |key: &str, args: &[&str]| {
        let mut all = vec![args[0], args[1], "--node", url.as_str(), "--key", key];
        all.extend_from_slice(&args[2..]);
        tpw(&all)
    };
    let escrowed = nested(
        &acme,
        &[
            "escrow",
            "create",
            "--id",
            "20",
            "--debit",
            "301",
            "--credit",
            "501",
            "--asset",
            "1",
            "--amount",
            "25",
            "--timeout-ms",
            "600000",
            "--hashlock",
            &hashlock,
        ],
    );
    let escrowed_json = json(&escrowed);
    assert_eq!(escrowed_json["results"][0]["code"], "ok", "{escrowed_json}");
    // Account 501 belongs to Initech, the payee.
    let initech = path(dir, "keys/initech.json");
    let as_payee = |args: &[&str]| nested(&initech, args);
    let wrong = as_payee(&[
        "escrow",
        "release",
        "--id",
        "1",
        "--owner",
        "3",
        "--escrow-id",
        "20",
        "--secret",
        &"08".repeat(32),
    ]);
    assert_eq!(json(&wrong)["error"]["code"], "escrow_wrong_preimage");
    let opened_escrow = as_payee(&[
        "escrow",
        "release",
        "--id",
        "2",
        "--owner",
        "3",
        "--escrow-id",
        "20",
        "--secret",
        &secret,
    ]);
    assert_eq!(json(&opened_escrow)["results"][0]["code"], "ok");
    let status = json(&tpw(&[
        "transfer-status",
        "--node",
        &url,
        "--participant",
        "3",
        "--id",
        "20",
    ]));
    assert_eq!(status["transfer"]["state"], "pending_posted");
    assert_eq!(status["escrow"]["hashlock"], hashlock.as_str());

    // Acme (3) delivers 10.00 EUR from 301 to Initech's 501 against 11.00 USD from Initech's
    // 502 into Acme's 302; Initech accepts and both legs settle.
    let offered = nested(
        &acme,
        &[
            "exchange",
            "offer",
            "--id",
            "30",
            "--debit",
            "301",
            "--credit",
            "501",
            "--asset",
            "1",
            "--amount",
            "1000",
            "--counter-debit",
            "502",
            "--counter-credit",
            "302",
            "--counter-asset",
            "2",
            "--counter-amount",
            "1100",
            "--timeout-ms",
            "600000",
        ],
    );
    assert_eq!(
        json(&offered)["results"][0]["code"],
        "ok",
        "{}",
        String::from_utf8_lossy(&offered.stderr)
    );
    let usd_before = json(&tpw(&["account", "--node", &url, "302"]))["account"]["credits_posted"]
        .as_str()
        .unwrap()
        .parse::<u128>()
        .unwrap();
    let accepted = as_payee(&[
        "exchange",
        "accept",
        "--id",
        "3",
        "--owner",
        "3",
        "--exchange-id",
        "30",
    ]);
    assert_eq!(json(&accepted)["results"][0]["code"], "ok");
    let usd_after = json(&tpw(&["account", "--node", &url, "302"]))["account"]["credits_posted"]
        .as_str()
        .unwrap()
        .parse::<u128>()
        .unwrap();
    assert_eq!(usd_after, usd_before + 1100);
    let offer = json(&tpw(&[
        "transfer-status",
        "--node",
        &url,
        "--participant",
        "3",
        "--id",
        "30",
    ]));
    assert_eq!(offer["transfer"]["state"], "pending_posted");
    assert_eq!(offer["exchange"]["counterparty"], 5);
    assert_eq!(offer["exchange"]["counter_amount"], "1100");

    // A netting cycle: Acme owes Initech 500, Initech owes Acme 300; only 200 moves.
    let bank = path(dir, "keys/bank-a.json");
    let closes_at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_600_000)
        .to_string();
    let opened_cycle = nested(
        &bank,
        &[
            "netting",
            "open",
            "--cycle",
            "5",
            "--asset",
            "1",
            "--closes-at-ms",
            &closes_at,
            "--members",
            "3,5",
        ],
    );
    assert_eq!(
        json(&opened_cycle)["results"][0]["code"],
        "ok",
        "{}",
        String::from_utf8_lossy(&opened_cycle.stderr)
    );
    let owed = nested(
        &acme,
        &[
            "netting", "owe", "--id", "1", "--cycle", "5", "--debit", "301", "--credit", "501",
            "--amount", "500",
        ],
    );
    assert_eq!(json(&owed)["results"][0]["code"], "ok");
    // Initech lets Acme owe it at most 600 net in a cycle: 500 more would be 1,000.
    let limited = as_payee(&[
        "limits", "credit", "--debtor", "3", "--asset", "1", "--limit", "600",
    ]);
    assert_eq!(json(&limited)["results"][0]["code"], "ok");
    let shown_limit = json(&tpw(&[
        "limits",
        "show-credit",
        "--node",
        &url,
        "--creditor",
        "5",
        "--debtor",
        "3",
        "--asset",
        "1",
    ]));
    assert_eq!(shown_limit["limit"], "600");
    let over_limit = nested(
        &acme,
        &[
            "netting", "owe", "--id", "2", "--cycle", "5", "--debit", "301", "--credit", "501",
            "--amount", "500",
        ],
    );
    assert_eq!(
        json(&over_limit)["results"][0]["code"],
        "credit_limit_exceeded"
    );
    let owed_back = as_payee(&[
        "netting", "owe", "--id", "1", "--cycle", "5", "--debit", "501", "--credit", "301",
        "--amount", "300",
    ]);
    assert_eq!(json(&owed_back)["results"][0]["code"], "ok");
    let closed = nested(&bank, &["netting", "close", "--cycle", "5"]);
    assert_eq!(json(&closed)["results"][0]["code"], "ok");
    let shown = json(&tpw(&["netting", "show", "--node", &url, "--cycle", "5"]));
    assert_eq!(shown["cycle"]["status"], "settled");
    assert_eq!(shown["cycle"]["gross"], "800");
    assert_eq!(shown["cycle"]["net"], "200");
    assert_eq!(shown["cycle"]["liquidity_saved"], "600");
    assert_eq!(shown["members"], serde_json::json!([3, 5]));

    // Acme's bank caps its EUR outflow at 5 for the rest of the day (the count starts now).
    let capped = nested(
        &bank,
        &[
            "limits",
            "outflow-cap",
            "--participant",
            "3",
            "--asset",
            "1",
            "--cap",
            "5",
        ],
    );
    assert_eq!(json(&capped)["results"][0]["code"], "ok");
    let over_cap = signed(&[
        "transfer", "--id", "40", "--debit", "301", "--credit", "501", "--asset", "1", "--amount",
        "6",
    ]);
    assert_eq!(json(&over_cap)["error"]["code"], "exceeds_daily_cap");
    let shown_limits = json(&tpw(&[
        "limits",
        "show",
        "--node",
        &url,
        "--participant",
        "3",
        "--asset",
        "1",
    ]));
    assert_eq!(shown_limits["outflow_cap"], "5");
    assert_eq!(shown_limits["spent_today"], "0");
    assert_eq!(shown_limits["transfer_max"], serde_json::Value::Null);

    // A per-transfer maximum is a network parameter: bank A proposes, bank B's approval (2 of
    // the 2 bank members) decides it in that block.
    let bank_b = path(dir, "keys/bank-b.json");
    let proposed = nested(
        &bank,
        &[
            "governance",
            "propose",
            "--proposal",
            "1",
            "transfer-max",
            "--asset",
            "1",
            "--amount-max",
            "3",
        ],
    );
    assert_eq!(json(&proposed)["results"][0]["code"], "ok");
    let show = |key: &str| {
        json(&tpw(&[
            "governance",
            "show",
            "--node",
            &url,
            "--key",
            key,
            "--proposal",
            "1",
        ]))
    };
    assert_eq!(show(&bank)["status"], "open");
    assert_eq!(show(&bank)["change"]["action"], "set_transfer_max");
    let approved = nested(&bank_b, &["governance", "approve", "--proposal", "1"]);
    assert_eq!(json(&approved)["results"][0]["code"], "ok");
    assert_eq!(show(&bank_b)["status"], "executed");
    assert_eq!(show(&bank_b)["approvals"], serde_json::json!([1, 2]));
    let over_max = signed(&[
        "transfer", "--id", "41", "--debit", "301", "--credit", "501", "--asset", "1", "--amount",
        "4",
    ]);
    assert_eq!(json(&over_max)["error"]["code"], "exceeds_transfer_max");
    let listed = json(&tpw(&[
        "governance",
        "show",
        "--node",
        &url,
        "--key",
        &bank,
    ]));
    assert_eq!(listed["proposals"][0]["id"], 1);
    let nodes = json(&tpw(&["governance", "nodes", "--node", &url]));
    assert_eq!(nodes["nodes"][0]["active"], true);
    assert_eq!(nodes["nodes"][0]["role"], "voter");

    // Money only by the rules: governance caps the credit line bank A may grant Acme, bank A
    // grants one, the EUR issuer (bank A) mints, and a partner's mint is refused.
    let capped = nested(
        &bank,
        &[
            "governance",
            "propose",
            "--proposal",
            "2",
            "credit-line-cap",
            "--participant",
            "3",
            "--asset",
            "1",
            "--cap",
            "1000",
        ],
    );
    assert_eq!(json(&capped)["results"][0]["code"], "ok");
    let approved = nested(&bank_b, &["governance", "approve", "--proposal", "2"]);
    assert_eq!(json(&approved)["results"][0]["code"], "ok");
    let line = |amount: &str| {
        nested(
            &bank,
            &[
                "issuance",
                "credit-line",
                "--account",
                "301",
                "--line",
                amount,
            ],
        )
    };
    assert_eq!(
        json(&line("1001"))["error"]["code"],
        "exceeds_credit_line_cap"
    );
    assert_eq!(json(&line("500"))["results"][0]["code"], "ok");
    let supply_before = json(&tpw(&["issuance", "show", "--node", &url, "1"]));
    let mint = |key: &str| {
        nested(
            key,
            &[
                "issuance",
                "mint",
                "--id",
                "90",
                "--account",
                "301",
                "--asset",
                "1",
                "--amount",
                "2",
            ],
        )
    };
    assert_eq!(json(&mint(&bank))["results"][0]["code"], "ok");
    assert_eq!(json(&mint(&acme))["error"]["code"], "issuer_only");
    let supply_after = json(&tpw(&["issuance", "show", "--node", &url, "1"]));
    let outstanding = |shown: &Value| {
        shown["outstanding"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
    };
    assert_eq!(outstanding(&supply_after), outstanding(&supply_before) + 2);
    assert_eq!(
        json(&tpw(&["account", "--node", &url, "301"]))["account"]["credit_line"],
        "500"
    );

    // Acme's first two events, from the start of the chain.
    let events = tpw(&[
        "events", "--node", &url, "--key", &acme, "--after", "0", "--count", "2",
    ]);
    assert!(
        events.status.success(),
        "{}",
        String::from_utf8_lossy(&events.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&events.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["signer"], 3);
    assert_eq!(lines[0]["status"], "settled");

    // Acme's statement as CSV: a header, then a line per movement ending at its balance.
    let statement = tpw(&["statement", "--node", &url, "--key", &acme, "301", "--csv"]);
    assert!(
        statement.status.success(),
        "{}",
        String::from_utf8_lossy(&statement.stderr)
    );
    let text = String::from_utf8_lossy(&statement.stdout).to_string();
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("height,cursor,"));
    assert!(rows.len() > 2, "{text}");
    let account = json(&tpw(&["account", "--node", &url, "301"]));
    let balance = account["account"]["credits_posted"]
        .as_str()
        .unwrap()
        .parse::<i128>()
        .unwrap()
        - account["account"]["debits_posted"]
            .as_str()
            .unwrap()
            .parse::<i128>()
            .unwrap();
    assert!(
        rows.last().unwrap().ends_with(&format!(",{balance}")),
        "{text}"
    );

    // A partner reads its own account, and another's answers exactly as a missing one.
    let acme_key = path(dir, "keys/acme.json");
    let own = tpw(&["account", "--node", &url, "--key", &acme_key, "301"]);
    assert!(own.status.success());
    let foreign = tpw(&["account", "--node", &url, "--key", &acme_key, "501"]);
    assert!(!foreign.status.success());
    assert!(String::from_utf8_lossy(&foreign.stderr).contains("account 501 not found"));
    let unknown = tpw(&["account", "--node", &url, "424242"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not found"));
    node.kill().unwrap();
    node.wait().unwrap();
}

#[test]
fn the_demo_hint_works_as_printed() {
    // Proves the command `tpw demo` prints for the user to try next succeeds, as printed,
    // against the demo node while it serves (account reads are signed: the hint names a key).
    use std::io::BufRead;
    let folder = tempfile::tempdir().unwrap();
    let net = path(folder.path(), "net");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_tpw"))
        .args(["demo", "--dir", &net, "--api-listen", "127.0.0.1:0"])
        .env_remove("TPW_KEY")
        .env_remove("TPW_NODE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(demo.stdout.take().unwrap());
    let mut hint = None;
    for line in stdout.lines().take(500) {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Try: ") {
            hint = Some(rest.to_string());
            break;
        }
    }
    let hint = hint.expect("the demo prints a hint");
    let args = hint
        .strip_prefix("cargo run --release --locked --bin tpw -- ")
        .unwrap_or_else(|| panic!("the hint runs tpw: {hint}"));
    let args: Vec<&str> = args.split_whitespace().collect();
    let output = Command::new(env!("CARGO_BIN_EXE_tpw"))
        .args(&args)
        .env_remove("TPW_KEY")
        .env_remove("TPW_NODE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    demo.kill().unwrap();
    demo.wait().unwrap();
    assert!(
        output.status.success(),
        "{hint}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        json(&output)["account"]["id"].as_str(),
        Some("301"),
        "{hint}"
    );
}
