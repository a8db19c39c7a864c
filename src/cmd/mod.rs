//! Subcommands, one file each with its `Args` and `run`. Chain-facing
//! commands share their flags and errors through `common`.

mod agent;
mod ask;
mod audit;
mod bench;
mod common;
mod completions;
mod demo;
mod deploy;
mod devnet;
mod job;
mod market;
mod settle;
mod tx;
mod wallet;

use clap::{Parser, Subcommand};

pub use common::CliError;

/// Pay for AI compute with NTX through a Cardano escrow.
#[derive(Debug, Parser)]
#[command(name = "ntx", version = version(), about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    chain: common::ChainArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole system on one machine in under a minute: devnet, agents, jobs, audit.
    Demo(demo::Args),
    /// Measure the contract's size, execution units and fees.
    Bench(bench::Args),
    /// Run the embedded development chain, fund addresses, move its clock.
    Devnet(devnet::Args),
    /// Make keys, show their address and balance.
    Wallet(wallet::Args),
    /// Deploy the escrow on a network (once).
    Deploy(deploy::Args),
    /// Ask a question: a generate job through the market, answered and verified.
    Ask(ask::Args),
    /// The live offers of providers and verifiers.
    Market(market::Args),
    /// Run, follow, lock, inspect, cancel and refund jobs.
    Job(job::Args),
    /// Settle every escrow that is due (claims and refunds), as a keeper.
    Settle(settle::Args),
    /// Replay every escrow from the chain and check it against the protocol.
    Audit(audit::Args),
    /// Run a provider or verifier node agent.
    Agent(agent::Args),
    /// Sign and submit transactions written with --out-file (offline signing).
    Tx(tx::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
}

/// `ntx --version`: the crate version and the escrow script this build carries
/// (its hash for mainnet NTX; every deployment of this build for that asset
/// has it).
fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let script = ntx_offchain::Blueprint::embedded()
            .escrow(&ntx_offchain::protocol::Asset::mainnet_ntx())
            .map(|s| hex::encode(s.hash()))
            .unwrap_or_else(|e| format!("unavailable ({e})"));
        format!(
            "{} (escrow script for mainnet NTX: {script})",
            env!("CARGO_PKG_VERSION")
        )
    })
}

/// A miette report as a failure (for commands that report with miette).
fn failed(e: miette::Report) -> CliError {
    CliError::Failed(format!("{e:?}"))
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> Result<(), CliError> {
        match self.command {
            Command::Bench(args) => bench::run(args, self.chain.json).map_err(failed),
            Command::Demo(args) => demo::run(args, &self.chain),
            Command::Devnet(args) => devnet::run(args, &self.chain),
            Command::Wallet(args) => wallet::run(args, &self.chain),
            Command::Deploy(args) => deploy::run(args, &self.chain),
            Command::Ask(args) => ask::run(args, &self.chain),
            Command::Market(args) => market::run(args, &self.chain),
            Command::Job(args) => job::run(args, &self.chain),
            Command::Settle(args) => settle::run(args, &self.chain),
            Command::Audit(args) => audit::run(args, &self.chain),
            Command::Agent(args) => agent::run(args, &self.chain),
            Command::Tx(args) => tx::run(args, &self.chain),
            Command::Completions(args) => {
                completions::run(args);
                Ok(())
            }
        }
    }
}
