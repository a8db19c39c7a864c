//! The ledger's fee and deposit rules (Conway), computed on exact bytes.

use crate::evaluate::ExUnits;

/// A non-negative rational, as protocol parameters state prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    /// Numerator.
    pub num: u64,
    /// Denominator (never zero).
    pub den: u64,
}

impl Ratio {
    /// `num / den`.
    pub const fn new(num: u64, den: u64) -> Ratio {
        Ratio { num, den }
    }
}

/// The protocol parameters that price a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeParams {
    /// Lovelace per transaction byte (`min_fee_a`).
    pub min_fee_a: u64,
    /// Lovelace per transaction (`min_fee_b`).
    pub min_fee_b: u64,
    /// Lovelace per memory unit.
    pub price_mem: Ratio,
    /// Lovelace per CPU step.
    pub price_steps: Ratio,
    /// Lovelace per reference-script byte, in the first 25,600-byte tier.
    pub ref_script_cost_per_byte: Ratio,
    /// Lovelace per byte of a UTxO entry (min-UTxO).
    pub coins_per_utxo_byte: u64,
    /// Collateral, as a percentage of the fee.
    pub collateral_percent: u64,
}

impl FeeParams {
    /// Mainnet's values (protocol version 10).
    pub const MAINNET: FeeParams = FeeParams {
        min_fee_a: 44,
        min_fee_b: 155_381,
        price_mem: Ratio::new(577, 10_000),
        price_steps: Ratio::new(721, 10_000_000),
        ref_script_cost_per_byte: Ratio::new(15, 1),
        coins_per_utxo_byte: 4_310,
        collateral_percent: 150,
    };

    /// The minimum fee: `a·size + b + ⌈prices · units⌉ + refScriptFee(refs)`.
    pub fn min_fee(&self, tx_size: usize, units: ExUnits, ref_script_bytes: usize) -> u64 {
        let size_fee = self.min_fee_a * tx_size as u64 + self.min_fee_b;
        size_fee + self.script_fee(units) + self.ref_script_fee(ref_script_bytes)
    }

    /// `⌈priceMem·mem + priceSteps·steps⌉`, summed as rationals before rounding.
    pub fn script_fee(&self, units: ExUnits) -> u64 {
        let (pm, ps) = (self.price_mem, self.price_steps);
        let den = u128::from(pm.den) * u128::from(ps.den);
        let num = u128::from(units.mem) * u128::from(pm.num) * u128::from(ps.den)
            + u128::from(units.steps) * u128::from(ps.num) * u128::from(pm.den);
        num.div_ceil(den) as u64
    }

    /// The Conway reference-script fee: the per-byte price grows ×1.2 every
    /// 25,600 bytes, and the total is rounded down at the end.
    pub fn ref_script_fee(&self, bytes: usize) -> u64 {
        const TIER: u128 = 25_600;
        // Exact rational arithmetic: price = base · (6/5)^tier.
        let (mut num, mut den) = (
            u128::from(self.ref_script_cost_per_byte.num),
            u128::from(self.ref_script_cost_per_byte.den),
        );
        let (mut acc_num, mut acc_den) = (0u128, 1u128);
        let mut left = bytes as u128;
        loop {
            let chunk = left.min(TIER);
            // acc += chunk · num/den
            acc_num = acc_num * den + chunk * num * acc_den;
            acc_den *= den;
            let g = gcd(acc_num, acc_den);
            (acc_num, acc_den) = (acc_num / g, acc_den / g);
            left -= chunk;
            if left == 0 {
                break;
            }
            num *= 6;
            den *= 5;
        }
        (acc_num / acc_den) as u64
    }

    /// The minimum lovelace of an output: `coinsPerUTxOByte · (160 + size)`.
    pub fn min_ada(&self, output_cbor_size: usize) -> u64 {
        self.coins_per_utxo_byte * (160 + output_cbor_size as u64)
    }
}

/// Greatest common divisor (1 for `gcd(0, 0)`), for reducing ratios.
pub(crate) fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The measured example of shared/notes/cardano-stack.md §5: a 743-byte V3
    /// spend with 36,717 mem and 11,618,923 steps costs 191,030 lovelace.
    #[test]
    fn mainnet_fee_of_the_measured_escrow_spend() {
        let fee = FeeParams::MAINNET.min_fee(
            743,
            ExUnits {
                mem: 36_717,
                steps: 11_618_923,
            },
            0,
        );
        assert_eq!(fee, 188_073 + 2_957);
    }

    #[test]
    fn reference_script_fee_is_tiered() {
        let p = FeeParams::MAINNET;
        assert_eq!(p.ref_script_fee(0), 0);
        assert_eq!(p.ref_script_fee(4_000), 60_000);
        assert_eq!(p.ref_script_fee(25_600), 384_000);
        // The second tier costs 18 per byte.
        assert_eq!(p.ref_script_fee(25_600 + 1_000), 384_000 + 18_000);
    }

    #[test]
    fn min_ada_counts_the_output_bytes_and_the_entry_overhead() {
        assert_eq!(FeeParams::MAINNET.min_ada(120), 1_206_800);
    }
}
