//! Prints the devnet's throughput.
//!
//! ```text
//! cargo run --release -p ntx-devnet --example bench [payments] [plutus] [--json]
//! cargo run --release -p ntx-devnet --example bench steady [payments] [per_slot] [--json]
//! ```
//!
//! The first submits each kind as one burst; `steady` submits `per_slot`
//! payments (default 250), then makes that slot's block, slot after slot, and
//! prints the rate for every 10,000 payments, so a devnet that slows as it
//! grows shows it.
#![allow(missing_docs)]

fn main() -> Result<(), ntx_devnet::DevnetError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let mut args = args.iter().filter(|a| *a != "--json").peekable();
    let steady = args.peek().is_some_and(|a| *a == "steady");
    if steady {
        args.next();
    }
    let mut number = |default: usize| {
        args.next()
            .and_then(|a| a.parse::<usize>().ok())
            .unwrap_or(default)
    };
    if steady {
        let (payments, per_slot) = (number(100_000), number(250));
        eprintln!("signing {payments} payments, then {per_slot} a slot with a block every slot …");
        let r = ntx_devnet::bench::steady(payments, per_slot, 10_000)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            return Ok(());
        }
        println!(
            "steady payments: {} in {:.3} s = {:.0}/s, {} a slot, {} blocks",
            r.payments, r.secs, r.per_sec, r.per_slot, r.blocks
        );
        for s in &r.stretches {
            println!(
                "  payments {:>7} – {:>7}: {:>8.3} s = {:>6.0}/s",
                s.first, s.last, s.secs, s.per_sec
            );
        }
        println!("last stretch / first stretch: {:.2}", r.last_over_first);
        return Ok(());
    }
    let (payments, plutus) = (number(2000), number(500));
    let r = ntx_devnet::bench::run(payments, plutus)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(());
    }
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
