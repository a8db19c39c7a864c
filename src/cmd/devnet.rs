//! `ntx devnet up`: serve the embedded devnet over HTTP on loopback.

use std::path::PathBuf;

use clap::Subcommand;
use miette::{IntoDiagnostic, WrapErr};
use tokio_util::sync::CancellationToken;

/// Arguments of `ntx devnet`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start (or resume) a devnet and serve its Blockfrost-compatible API until Ctrl-C.
    Up {
        /// Loopback port (0 picks a free one).
        #[arg(long, default_value_t = 3000, env = "NTX_DEVNET_PORT")]
        port: u16,
        /// Where the chain is kept; an existing directory is resumed.
        #[arg(long, default_value = ".devnet", env = "NTX_DEVNET_DATA_DIR")]
        data_dir: PathBuf,
        /// Slot length in milliseconds (new chains only).
        #[arg(long, default_value_t = 1000)]
        slot_length_ms: u64,
        /// Genesis file (new chains only); the default funds a few accounts.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
}

/// Runs `ntx devnet`.
pub fn run(args: Args) -> miette::Result<()> {
    let Command::Up {
        port,
        data_dir,
        slot_length_ms,
        genesis,
    } = args.command;
    let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("stopping the devnet…");
            on_signal.cancel();
        });
        let config = ntx_devnet::ServeConfig {
            port,
            data_dir: data_dir.clone(),
            slot_length_ms,
            genesis,
        };
        ntx_devnet::serve(config, cancel, |addr, devnet| {
            println!(
                "devnet serving http://{addr}/api/v0 (network magic {})",
                devnet.network_magic()
            );
            println!("chain and keys in {}", data_dir.display());
        })
        .await
        .into_diagnostic()
        .wrap_err("the devnet stopped with an error")
    })
}
