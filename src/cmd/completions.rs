//! `ntx completions bash|zsh|fish|…`: shell completions, printed to stdout.
//!
//! ```sh
//! ntx completions bash > ~/.local/share/bash-completion/completions/ntx
//! ```

use clap::CommandFactory;

use super::Cli;

/// Arguments of `ntx completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Prints the completion script for the chosen shell.
pub fn run(args: Args) {
    use std::io::Write;
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "ntx", &mut script);
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(&script);
}
