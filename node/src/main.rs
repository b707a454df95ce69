//! `tpw`: run a settlement node, manage keys and genesis, and act as a client of a node.
#![allow(clippy::print_stdout)]

mod cli;
mod contracts_cli;

use clap::Parser;
// The command modules share these; `contracts_cli` and `cli::governance` reach them here.
pub(crate) use cli::common::{print_json, submit, ClientArgs, SignArgs};

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
