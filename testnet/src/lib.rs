//! Tools for tpwalletoec: local networks of `tpw run` processes on loopback, the load generator
//! and benchmarks. The binary `tpw-testnet` is their command line; tests use them directly.

pub mod bench;
pub mod chaos;
pub mod commands;
pub mod dr;
pub mod drills;
pub mod eventbench;
pub mod hostile;
pub mod keydrill;
pub mod limits;
pub mod netbench;
pub mod network;
pub mod receiver;
pub mod sigbench;
pub mod sim;
pub mod workload;
