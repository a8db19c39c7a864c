//! `ntx`: the ntx-escrow command-line tool (see `ntx --help`).
//!
//! Exit codes: 0 success; 1 the chain, the provider or the machine failed;
//! 2 bad input (one line says what to change; nothing was submitted);
//! 3 `ntx audit` checked the chain and found broken rules.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cmd::Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
