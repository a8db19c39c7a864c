//! Subcommands, one file each with its `Args` and `run`.

mod bench;
mod devnet;

use clap::{Parser, Subcommand};

/// Pay for AI compute with NTX through a Cardano escrow.
#[derive(Debug, Parser)]
#[command(name = "ntx", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the contract's size, execution units and fees.
    Bench(bench::Args),
    /// Run the embedded development chain.
    Devnet(devnet::Args),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> miette::Result<()> {
        match self.command {
            Command::Bench(args) => bench::run(args),
            Command::Devnet(args) => devnet::run(args),
        }
    }
}
