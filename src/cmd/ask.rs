//! `ntx ask "question"`: the short form of `ntx job run --task generate
//! --prompt "question"`, with its defaults (greedy decoding, 128 new tokens,
//! the cheapest provider that has enough verifiers it accepts).

use std::path::PathBuf;

use super::common::{ChainArgs, CliError, WalletArgs, block_on};
use super::job::{RequestArgs, RunArgs, TaskKind, run_job};

/// Arguments of `ntx ask`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The question or instruction.
    question: String,
    #[command(flatten)]
    wallet: WalletArgs,
    /// Stop after this many new tokens.
    #[arg(long, default_value_t = 128)]
    max_new_tokens: u32,
    /// The most you pay, in NTX (e.g. 2.5).
    #[arg(long, value_name = "NTX")]
    max_price: Option<String>,
    /// Only this provider: its agent key hash, offer key or payout address.
    #[arg(long)]
    provider: Option<String>,
    /// Only models one of whose file hashes is this (hex).
    #[arg(long, value_name = "HASH")]
    model: Option<String>,
    /// Also write the answer to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `ntx ask`.
pub fn run(args: Args, chain: &ChainArgs) -> Result<(), CliError> {
    let run = RunArgs {
        request: RequestArgs {
            task: Some(TaskKind::Generate),
            inputs: Vec::new(),
            input_file: None,
            prompt: Some(args.question),
            system: None,
            max_new_tokens: args.max_new_tokens,
            greedy: true,
            temperature: None,
            top_p: 1.0,
            seed: None,
            spec: None,
            model: args.model,
            max_price: args.max_price,
            provider: args.provider,
            verifiers: 3,
        },
        wallet: args.wallet,
        submit_within: "10m".into(),
        settle_within: None,
        out: args.out,
    };
    let chain = chain.clone();
    block_on(async move { run_job(&chain, run).await })
}
