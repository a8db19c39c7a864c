//! The Conway fee and deposit formulas, exactly as the ledger computes them.

use pallas_primitives::RationalNumber;

use crate::params::Params;

/// Size of one tier of the reference-script fee (bytes).
pub const REF_SCRIPT_TIER_BYTES: u64 = 25_600;
/// Each tier's price is the previous one times 1.2 (6/5).
const REF_SCRIPT_MULTIPLIER: (u64, u64) = (6, 5);
/// The per-transaction cap on the total size of reference scripts (200 KiB).
pub const MAX_REF_SCRIPT_SIZE_PER_TX: u64 = 200 * 1024;
/// Bytes the ledger adds to an output's size for min-UTxO.
pub const UTXO_ENTRY_OVERHEAD: u64 = 160;

/// A breakdown of the minimum fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinFee {
    /// `min_fee_a * size + min_fee_b`.
    pub size_fee: u64,
    /// `ceil(price_mem * mem + price_step * steps)` over the declared units.
    pub script_fee: u64,
    /// Tiered fee on the reference scripts the transaction uses.
    pub ref_script_fee: u64,
}

impl MinFee {
    /// The whole minimum fee.
    pub fn total(&self) -> u64 {
        self.size_fee + self.script_fee + self.ref_script_fee
    }
}

/// Exact rational arithmetic on u128: n/d.
#[derive(Debug, Clone, Copy)]
struct Ratio {
    n: u128,
    d: u128,
}

impl Ratio {
    fn add(self, o: Ratio) -> Ratio {
        Ratio {
            n: self.n * o.d + o.n * self.d,
            d: self.d * o.d,
        }
        .reduce()
    }
    fn mul_int(self, k: u128) -> Ratio {
        Ratio {
            n: self.n * k,
            d: self.d,
        }
        .reduce()
    }
    fn reduce(self) -> Ratio {
        let mut a = self.n;
        let mut b = self.d;
        while b != 0 {
            (a, b) = (b, a % b);
        }
        let g = a.max(1);
        Ratio {
            n: self.n / g,
            d: self.d / g,
        }
    }
    fn ceil(self) -> u128 {
        self.n.div_ceil(self.d)
    }
    fn floor(self) -> u128 {
        self.n / self.d
    }
}

fn ratio(r: &RationalNumber) -> Ratio {
    Ratio {
        n: r.numerator as u128,
        d: r.denominator.max(1) as u128,
    }
}

/// `ceil(price_mem * mem + price_step * steps)`.
pub fn script_fee(p: &Params, mem: u64, steps: u64) -> u64 {
    let total = ratio(&p.price_mem)
        .mul_int(mem as u128)
        .add(ratio(&p.price_step).mul_int(steps as u128));
    total.ceil().min(u64::MAX as u128) as u64
}

/// The tiered reference-script fee (Conway): the first 25,600 bytes cost
/// `base` lovelace each, the next 25,600 cost `base * 1.2`, and so on; the
/// total is rounded down at the end (the ledger's `tierRefScriptFee`).
pub fn ref_script_fee(p: &Params, ref_script_bytes: u64) -> u64 {
    let mut acc = Ratio { n: 0, d: 1 };
    let mut price = Ratio {
        n: p.min_fee_ref_script_cost_per_byte as u128,
        d: 1,
    };
    let mut remaining = ref_script_bytes as u128;
    while remaining > 0 {
        let chunk = remaining.min(REF_SCRIPT_TIER_BYTES as u128);
        acc = acc.add(price.mul_int(chunk));
        remaining -= chunk;
        price = Ratio {
            n: price.n * REF_SCRIPT_MULTIPLIER.0 as u128,
            d: price.d * REF_SCRIPT_MULTIPLIER.1 as u128,
        }
        .reduce();
    }
    acc.floor().min(u64::MAX as u128) as u64
}

/// The minimum fee of a transaction of `size` bytes that declares
/// `(mem, steps)` execution units and uses `ref_script_bytes` of reference scripts.
pub fn min_fee(p: &Params, size: u64, mem: u64, steps: u64, ref_script_bytes: u64) -> MinFee {
    MinFee {
        size_fee: p.min_fee_a * size + p.min_fee_b,
        script_fee: script_fee(p, mem, steps),
        ref_script_fee: ref_script_fee(p, ref_script_bytes),
    }
}

/// Minimum lovelace of an output whose CBOR is `output_size` bytes long:
/// `coinsPerUTxOByte * (160 + size)` (Babbage/Conway).
pub fn min_utxo(p: &Params, output_size: u64) -> u64 {
    p.coins_per_utxo_byte * (UTXO_ENTRY_OVERHEAD + output_size)
}

/// Minimum collateral for `fee`: `ceil(fee * collateral_percent / 100)`.
pub fn min_collateral(p: &Params, fee: u64) -> u64 {
    ((fee as u128 * p.collateral_percent as u128).div_ceil(100)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ProtocolParams;

    fn p() -> Params {
        ProtocolParams::mainnet().parsed().expect("params")
    }

    #[test]
    fn script_fee_matches_measured_escrow_spend() {
        // From the stack notes: mem 36,717 / cpu 11,618,923 costs 2,957 lovelace.
        assert_eq!(script_fee(&p(), 36_717, 11_618_923), 2_957);
    }

    #[test]
    fn size_fee_of_743_bytes() {
        assert_eq!(min_fee(&p(), 743, 0, 0, 0).size_fee, 188_073);
    }

    #[test]
    fn ref_script_fee_is_tiered() {
        let p = p();
        assert_eq!(ref_script_fee(&p, 0), 0);
        assert_eq!(ref_script_fee(&p, 1_000), 15_000);
        assert_eq!(ref_script_fee(&p, 25_600), 384_000);
        // The second tier costs 18 lovelace a byte.
        assert_eq!(ref_script_fee(&p, 25_601), 384_018);
        // Third tier: 21.6 a byte, rounded down at the end.
        assert_eq!(ref_script_fee(&p, 51_205), 384_000 + 460_800 + 108);
    }

    #[test]
    fn min_utxo_uses_serialized_size() {
        // The notes' 120-byte escrow output needs 1.2068 ADA.
        assert_eq!(min_utxo(&p(), 120), 1_206_800);
    }

    #[test]
    fn collateral_rounds_up() {
        assert_eq!(min_collateral(&p(), 191_031), 286_547);
    }
}
