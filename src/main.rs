//! `ntx`: the ntx-escrow command-line tool (see `ntx --help`).

mod cmd;

use clap::Parser;

fn main() -> miette::Result<()> {
    cmd::Cli::parse().run()
}
