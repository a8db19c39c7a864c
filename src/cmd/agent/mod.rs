//! `ntx agent run --config agent.toml`: the provider / verifier daemon
//! (`ntx_node_agent::run_agent`) until Ctrl-C or SIGTERM; `ntx agent offer`:
//! its offers on chain (`offer.rs`).

mod offer;

use std::path::PathBuf;

use clap::Subcommand;
use miette::{IntoDiagnostic, WrapErr};
use tokio_util::sync::CancellationToken;

use super::common::shutdown_signal;

/// Arguments of `ntx agent`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent (provider, verifier or both, as the config says) until Ctrl-C or SIGTERM.
    ///
    /// The config is layered: the file (--config, else $NTX_AGENT_CONFIG, else
    /// ./agent.toml), then NTX_* environment variables (see node-agent/README.md).
    /// Logs go to stderr; set RUST_LOG (default `info`) to change their level.
    Run {
        /// The agent's TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Show the agent's offers on chain, or take them down with --withdraw.
    Offer(offer::Args),
}

/// Runs `ntx agent`.
pub fn run(args: Args, chain: &super::common::ChainArgs) -> Result<(), super::CliError> {
    match args.command {
        Command::Run { config } => run_agent(config, chain).map_err(super::failed),
        Command::Offer(args) => offer::run(args, chain),
    }
}

fn run_agent(config: Option<PathBuf>, chain: &super::common::ChainArgs) -> miette::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let mut config = ntx_node_agent::AgentConfig::load(config.as_deref()).into_diagnostic()?;
    // Explicit --deployment / --provider-url (or their NTX_* variables) win over the file.
    if let Some(d) = &chain.deployment {
        config.deployment = d.clone();
    }
    if let Some(url) = &chain.provider_url {
        config.chain.provider_url = Some(url.clone());
    }
    let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("stopping the agent");
            on_signal.cancel();
        });
        ntx_node_agent::run_agent(config, cancel)
            .await
            .into_diagnostic()
            .wrap_err("the agent stopped with an error")
    });
    // An inference still running on the blocking pool is abandoned: its job was recorded
    // before it started, and the next run computes it again.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}
