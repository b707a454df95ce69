//! `tpw-testnet bench-netting`: one netting cycle of many obligations among many participants,
//! queued through a real node and settled in one block; reports gross, net and the time from
//! the close request to its commit (which includes applying the settlement).

use crate::bench::drive;
use crate::network::{partner_account, partner_key, LocalNetwork, LOAD_ASSET};
use anyhow::{bail, Context};
use serde::Serialize;
use std::time::Instant;
use tpw_contracts::ops::{CloseCycle, OpenCycle, SubmitObligation};
use tpw_contracts::{Body, Operation, ResultCode, Transaction};
use tpw_node::client::Client;

/// The one-line JSON report (a stable interface).
#[derive(Debug, Serialize)]
pub struct NettingReport {
    /// Obligations queued.
    pub obligations: usize,
    /// Participants owing and owed.
    pub participants: usize,
    /// Sum of the settled obligations, minor units.
    pub gross_minor: u128,
    /// Sum of the net amounts posted, minor units.
    pub net_minor: u128,
    /// Obligations settled.
    pub settled: u32,
    /// Obligations carried over (the bench names no carry-over cycle, so 0) or rejected.
    pub carried_over: u32,
    /// From the close request to its commit: computing and settling the cycle in one block.
    pub settle_ms: u64,
}

/// A deterministic stream of obligation parameters (splitmix64), so runs are comparable.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }
}

/// Builds a one-node network, queues the obligations, closes the cycle and reports.
pub async fn run(obligations: usize, participants: usize) -> anyhow::Result<NettingReport> {
    if participants < 2 || obligations == 0 {
        bail!("--participants must be at least 2 and --obligations positive");
    }
    if obligations > tpw_contracts::netting::OBLIGATIONS_PER_CYCLE_MAX as usize {
        bail!(
            "--obligations must be at most {} (one cycle settles in one block)",
            tpw_contracts::netting::OBLIGATIONS_PER_CYCLE_MAX
        );
    }
    let dir = tempfile::Builder::new().prefix("tpw-netting-").tempdir()?;
    let (mut network, _) = LocalNetwork::create(dir.path(), 1, 0, participants)?;
    network.start().await?;
    let network_id = network.genesis.compute_network_id()?;
    let bank = tpw_node::keys::load(&dir.path().join("keys").join("bank-1.json"))?;
    let node = Client::new(&network.apis[0]).with_key(&bank);
    let cycle = 1u128;
    let open = Operation::OpenCycle(OpenCycle {
        cycle,
        asset: LOAD_ASSET,
        closes_at_ms: tpw_node::runtime::now_ms() + 3_600_000,
        members: (0..participants).map(crate::network::partner_id).collect(),
    });
    let (_, opened) = node
        .sign_and_submit(&bank, Body::single(open), true)
        .await?;
    if opened.results[0].code != Some(ResultCode::Ok) {
        bail!("the cycle did not open: {:?}", opened.results[0]);
    }
    eprintln!("signing {obligations} obligations among {participants} participants...");
    let envelopes = sign_obligations(network_id, cycle, obligations, participants);
    eprintln!("queueing them...");
    let rejected = drive(&node, &envelopes, 500, 16).await;
    if rejected > 0 {
        bail!("{rejected} obligations were not queued");
    }
    eprintln!("closing the cycle...");
    let started = Instant::now();
    let close = Operation::CloseCycle(CloseCycle { cycle, carry_to: 0 });
    let (_, closed) = node
        .sign_and_submit(&bank, Body::single(close), true)
        .await?;
    let settle_ms = started.elapsed().as_millis() as u64;
    if closed.results[0].code != Some(ResultCode::Ok) {
        bail!("the cycle did not close: {:?}", closed.results[0]);
    }
    let report = node
        .netting_cycle(cycle)
        .await?
        .context("the settled cycle is not readable")?
        .cycle;
    network.stop();
    Ok(NettingReport {
        obligations,
        participants,
        gross_minor: report.gross.unwrap_or(0),
        net_minor: report.net.unwrap_or(0),
        settled: report.settled.unwrap_or(0),
        carried_over: report.carried_over.unwrap_or(0) + report.rejected.unwrap_or(0),
        settle_ms,
    })
}

/// The obligations, each from a random participant to another, signed by the debtor; the
/// same stream every run.
fn sign_obligations(
    network_id: [u8; 32],
    cycle: u128,
    obligations: usize,
    participants: usize,
) -> Vec<Vec<u8>> {
    let keys: Vec<_> = (0..participants).map(partner_key).collect();
    let mut stream = Stream(42);
    (0..obligations)
        .map(|index| {
            let from = (stream.next() % participants as u64) as usize;
            let offset = 1 + (stream.next() % (participants as u64 - 1)) as usize;
            let to = (from + offset) % participants;
            let amount = 1 + u128::from(stream.next() % 1_000_000);
            let operation = Operation::SubmitObligation(SubmitObligation {
                id: index as u128,
                cycle,
                debit_account: partner_account(from),
                credit_account: partner_account(to),
                amount,
            });
            Transaction::sign(
                network_id,
                &keys[from],
                tpw_node::client::fresh_validity(),
                Body::single(operation),
            )
            .to_bytes()
        })
        .collect()
}
