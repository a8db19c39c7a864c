//! Prints the devnet's throughput: `cargo run --release -p ntx-devnet --example bench [payments] [plutus]`.
#![allow(missing_docs)]

fn main() -> Result<(), ntx_devnet::DevnetError> {
    let mut args = std::env::args().skip(1);
    let payments = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let plutus = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let r = ntx_devnet::bench::run(payments, plutus)?;
    println!(
        "simple payments: {} in {:.3} s = {:.0}/s\nPlutus V3 spends: {} in {:.3} s = {:.0}/s",
        r.payments,
        r.payments_secs,
        r.payments_per_sec,
        r.plutus_spends,
        r.plutus_secs,
        r.plutus_per_sec
    );
    Ok(())
}
