//! The decoding rule: how a provider picks each token, and how a verifier checks a
//! picked token against its own logits with tolerance ε.
//!
//! All arithmetic on probabilities is in f64 from the f32 logits.
//!
//! **Greedy.** `t = argmax z` (lowest id among equal logits). Check:
//! `max z − z_t ≤ ε`.
//!
//! **Sample** (temperature `T`, nucleus mass `p`, seed `s`). With `q = softmax(z / T)`
//! and tokens ordered by logit (descending, then id), the nucleus `N` is the shortest
//! prefix whose mass reaches `p`. The provider picks
//! `t = argmax_{j ∈ N} (z_j / T + g(s, i, j))` (Gumbel-max), where `g` is Gumbel noise
//! fixed by the seed, the position `i` (0 = first new token) and the token id `j`
//! ([`gumbel`]). Check, for a verifier whose logits may differ from the provider's by
//! up to ε/2 each (so any difference of two logits by up to ε, and any probability
//! ratio by up to `e^(ε/T)`):
//! 1. *nucleus with margin*: the tokens surely above `t`, `A = {j : z_j > z_t + ε}`,
//!    have a mass the provider can have seen below `p`:
//!    `max(q(A)·e^(−ε/T), 1 − e^(ε/T)·(1 − q(A))) < p`;
//! 2. *the draw with margin*: for every token `j` surely in the provider's nucleus
//!    (with `B = {k ≠ j : z_k ≥ z_j − ε}`,
//!    `min(e^(ε/T)·q(B), 1 − e^(−ε/T)·(1 − q(B))) < p`),
//!    `z_t + T·g_t ≥ z_j + T·g_j − ε`;
//! 3. *the draw against the top*: the provider's most likely token is always in its
//!    nucleus and lies in `M = {j : z_j ≥ max z − ε}`; unless `t ∈ M`, `t` must satisfy
//!    the inequality of 2 for at least one `j ∈ M`.
//!
//! With the ε that quantised kernels need (see `LOGIT_TOLERANCE`), `e^(ε/T)` is large
//! at usual temperatures, so checks 1 and 2 only catch gross departures (tokens far
//! down the distribution); check 3 catches tokens that lose the seeded draw to every
//! plausible top token by more than ε.
//!
//! An honest provider always passes both (for logit deviations ≤ ε/2); a provider that
//! used another temperature, no sampling, another seed, another model or edited tokens
//! fails one of them at some position with a probability that grows with the length.

use std::cmp::Ordering;

use crate::generate::spec::Decoding;

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform in (0, 1) from the seed, the position and the token id (53 random bits).
pub fn uniform(seed: u64, position: u32, token: u32) -> f64 {
    let h = mix(mix(mix(seed ^ 0x6e74_7867_656e_0001) ^ u64::from(position)) ^ u64::from(token));
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// Gumbel(0, 1) noise `−ln(−ln u)` for the seed, position and token.
pub fn gumbel(seed: u64, position: u32, token: u32) -> f64 {
    -(-uniform(seed, position, token).ln()).ln()
}

/// Token order: larger logit first, then smaller id.
fn by_logit_desc(logits: &[f32]) -> impl Fn(&u32, &u32) -> Ordering + '_ {
    move |&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    }
}

/// `argmax` with the lowest id among equal values.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &z) in logits.iter().enumerate() {
        if z > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Token ids sorted by [`by_logit_desc`], computed lazily: the first 256, then all.
struct Sorted<'a> {
    logits: &'a [f32],
    ids: Vec<u32>,
    sorted_up_to: usize,
}

impl<'a> Sorted<'a> {
    fn new(logits: &'a [f32]) -> Self {
        let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
        let k = 256.min(ids.len());
        let cmp = by_logit_desc(logits);
        if k < ids.len() {
            ids.select_nth_unstable_by(k, &cmp);
        }
        ids[..k].sort_unstable_by(&cmp);
        Self {
            logits,
            ids,
            sorted_up_to: k,
        }
    }

    /// The `i`-th token in order, or None past the end.
    fn get(&mut self, i: usize) -> Option<u32> {
        if i >= self.sorted_up_to && self.sorted_up_to < self.ids.len() {
            let cmp = by_logit_desc(self.logits);
            self.ids[self.sorted_up_to..].sort_unstable_by(&cmp);
            self.sorted_up_to = self.ids.len();
        }
        self.ids.get(i).copied()
    }
}

/// `exp((z − max) / T)` for every logit, and their sum.
fn weights(logits: &[f32], temperature: f64) -> (Vec<f64>, f64) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let w: Vec<f64> = logits
        .iter()
        .map(|&z| ((z as f64 - max) / temperature).exp())
        .collect();
    let sum = w.iter().sum();
    (w, sum)
}

/// The provider's choice at `position` (0 = first new token).
pub fn choose(decoding: &Decoding, logits: &[f32], position: u32) -> u32 {
    match *decoding {
        Decoding::Greedy => argmax(logits),
        Decoding::Sample {
            temperature_milli,
            top_p_milli,
            seed,
        } => {
            let t = f64::from(temperature_milli) / 1000.0;
            let p = f64::from(top_p_milli) / 1000.0;
            let (w, sum) = weights(logits, t);
            let mut sorted = Sorted::new(logits);
            let mut mass = 0.0;
            let mut best: Option<(f64, u32)> = None;
            let mut i = 0;
            while let Some(j) = sorted.get(i) {
                let score = logits[j as usize] as f64 / t + gumbel(seed, position, j);
                if best.is_none_or(|(s, id)| score > s || (score == s && j < id)) {
                    best = Some((score, j));
                }
                mass += w[j as usize] / sum;
                if mass >= p {
                    break;
                }
                i += 1;
            }
            best.map_or(0, |(_, id)| id)
        }
    }
}

/// A verifier's finding at one position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Finding {
    /// The token is consistent with the rule within ε; `gap` is how far (in logits) the
    /// check was from failing in the tightest comparison (≥ 0) — for greedy,
    /// `max z − z_t`.
    Consistent {
        /// Greedy: `max z − z_t`. Sample: the largest `z_j + T·g_j − (z_t + T·g_t)` over
        /// the tokens surely in the nucleus (≤ ε), or −∞ when there are none.
        gap: f64,
    },
    /// Greedy: the token's logit is more than ε below the maximum.
    BelowMax {
        /// `max z − z_t`.
        gap: f64,
        /// The argmax token.
        best: u32,
    },
    /// Sample: the token is outside the nucleus even with the margin.
    OutsideNucleus {
        /// Mass (verifier's) of the tokens surely above it.
        mass_above: f64,
        /// The least mass the provider can have seen for them (≥ `p`).
        provider_at_least: f64,
    },
    /// Sample: a token surely in the nucleus wins the seeded draw by more than ε.
    LostDraw {
        /// The winning token.
        winner: u32,
        /// `z_w + T·g_w − (z_t + T·g_t)`.
        gap: f64,
    },
}

impl Finding {
    /// Whether the token passes.
    pub fn is_consistent(&self) -> bool {
        matches!(self, Self::Consistent { .. })
    }
}

/// Checks `token` at `position` against the verifier's `logits` with tolerance `eps`.
pub fn check(decoding: &Decoding, logits: &[f32], position: u32, token: u32, eps: f64) -> Finding {
    let zt = logits[token as usize] as f64;
    match *decoding {
        Decoding::Greedy => {
            let best = argmax(logits);
            let gap = logits[best as usize] as f64 - zt;
            if gap <= eps {
                Finding::Consistent { gap }
            } else {
                Finding::BelowMax { gap, best }
            }
        }
        Decoding::Sample {
            temperature_milli,
            top_p_milli,
            seed,
        } => {
            let t = f64::from(temperature_milli) / 1000.0;
            let p = f64::from(top_p_milli) / 1000.0;
            let (w, sum) = weights(logits, t);
            let slack = (eps / t).exp();
            // 1. Nucleus with margin.
            let mass_above: f64 = logits
                .iter()
                .zip(&w)
                .filter(|&(&z, _)| z as f64 > zt + eps)
                .map(|(_, &wj)| wj / sum)
                .sum();
            // The provider's mass of A is at least this (ratios move by ≤ e^(ε/T), both
            // for A and for its complement).
            let provider_at_least = (mass_above / slack).max(1.0 - slack * (1.0 - mass_above));
            if provider_at_least >= p {
                return Finding::OutsideNucleus {
                    mass_above,
                    provider_at_least,
                };
            }
            // 2. The draw against every token surely in the nucleus. That set is a
            // prefix of the logit order: walk it with a second pointer that adds the
            // mass of every token within ε below the current one.
            let own = zt + t * gumbel(seed, position, token);
            let mut sorted = Sorted::new(logits);
            let mut worst: Option<(f64, u32)> = None;
            let mut covered = 0usize; // tokens k with z_k ≥ z_j − ε, in order
            let mut covered_mass = 0.0;
            let mut i = 0;
            while let Some(j) = sorted.get(i) {
                let zj = logits[j as usize] as f64;
                while let Some(k) = sorted.get(covered) {
                    if (logits[k as usize] as f64) < zj - eps {
                        break;
                    }
                    covered_mass += w[k as usize] / sum;
                    covered += 1;
                }
                // Mass the provider can have put before j, at most.
                let others = (covered_mass - w[j as usize] / sum).max(0.0);
                let provider_at_most = (slack * others).min(1.0 - (1.0 - others) / slack);
                if provider_at_most >= p {
                    break;
                }
                if j != token {
                    let gap = zj + t * gumbel(seed, position, j) - own;
                    if worst.is_none_or(|(g, _)| gap > g) {
                        worst = Some((gap, j));
                    }
                }
                i += 1;
            }
            if let Some((gap, winner)) = worst
                && gap > eps
            {
                return Finding::LostDraw { winner, gap };
            }
            // 3. The provider's most likely token is always in its nucleus, and is one of
            // M = {j : z_j ≥ max z − ε}: unless t is in M, it must win the draw (with
            // the margin) against at least one token of M.
            let zmax = logits[argmax(logits) as usize] as f64;
            if zt < zmax - eps {
                let weakest = logits
                    .iter()
                    .enumerate()
                    .filter(|&(_, &z)| z as f64 >= zmax - eps)
                    .map(|(j, &z)| (z as f64 + t * gumbel(seed, position, j as u32) - own, j))
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((gap, winner)) = weakest
                    && gap > eps
                {
                    return Finding::LostDraw {
                        winner: winner as u32,
                        gap,
                    };
                }
            }
            Finding::Consistent {
                gap: worst.map_or(f64::NEG_INFINITY, |(g, _)| g),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    fn random_logits(seed: u64, n: usize, scale: f32) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| ((xorshift(&mut s) >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale)
            .collect()
    }

    fn sample(t: u32, p: u32, seed: u64) -> Decoding {
        Decoding::Sample {
            temperature_milli: t,
            top_p_milli: p,
            seed,
        }
    }

    #[test]
    fn noise_is_fixed_and_in_range() {
        assert_eq!(uniform(1, 2, 3), uniform(1, 2, 3));
        assert_ne!(uniform(1, 2, 3), uniform(1, 2, 4));
        assert_ne!(uniform(1, 2, 3), uniform(1, 3, 3));
        assert_ne!(uniform(1, 2, 3), uniform(2, 2, 3));
        for tok in 0..10_000 {
            let u = uniform(7, 0, tok);
            assert!(u > 0.0 && u < 1.0);
            assert!(gumbel(7, 0, tok).is_finite());
        }
        // Mean of Gumbel(0,1) is the Euler–Mascheroni constant 0.5772.
        let mean: f64 = (0..100_000).map(|t| gumbel(3, 1, t)).sum::<f64>() / 100_000.0;
        assert!((mean - 0.5772).abs() < 0.02, "{mean}");
    }

    #[test]
    fn greedy_picks_first_max_and_check_uses_eps() {
        let z = [1.0, 3.0, 3.0, 2.9];
        assert_eq!(argmax(&z), 1);
        assert_eq!(choose(&Decoding::Greedy, &z, 0), 1);
        assert!(check(&Decoding::Greedy, &z, 0, 2, 0.0).is_consistent());
        assert!(check(&Decoding::Greedy, &z, 0, 3, 0.1).is_consistent());
        assert_eq!(
            check(&Decoding::Greedy, &z, 0, 3, 0.05),
            Finding::BelowMax {
                gap: 3.0f32 as f64 - 2.9f32 as f64,
                best: 1
            }
        );
    }

    #[test]
    fn honest_samples_pass_with_perturbed_logits() {
        for round in 0..200u64 {
            let z = random_logits(round + 1, 3000, 12.0);
            let d = sample(
                300 + (round as u32 % 10) * 150,
                500 + (round as u32 % 6) * 100,
                round,
            );
            let t = choose(&d, &z, round as u32);
            // Same logits: consistent with ε = 0.
            assert!(
                check(&d, &z, round as u32, t, 0.0).is_consistent(),
                "round {round}"
            );
            // The verifier's logits differ by up to 0.01; ε = 0.02 covers it.
            let noise = random_logits(round + 1000, 3000, 0.02);
            let zv: Vec<f32> = z.iter().zip(&noise).map(|(a, b)| a + b).collect();
            let f = check(&d, &zv, round as u32, t, 0.02);
            assert!(f.is_consistent(), "round {round}: {f:?}");
        }
    }

    #[test]
    fn other_temperature_or_greedy_is_caught_over_many_positions() {
        let d = sample(700, 900, 5);
        let (mut hot, mut cold, mut greedy) = (0, 0, 0);
        for pos in 0..300u32 {
            let z = random_logits(u64::from(pos) + 77, 2000, 8.0);
            let fail = |tok| !check(&d, &z, pos, tok, 0.02).is_consistent();
            hot += usize::from(fail(choose(&sample(1500, 900, 5), &z, pos)));
            cold += usize::from(fail(choose(&sample(300, 900, 5), &z, pos)));
            greedy += usize::from(fail(choose(&Decoding::Greedy, &z, pos)));
        }
        assert!(
            hot > 30 && cold > 30 && greedy > 30,
            "{hot} {cold} {greedy}"
        );
    }

    #[test]
    fn top_p_one_draws_from_everything() {
        let z = random_logits(9, 500, 1.0);
        let d = sample(1000, 1000, 1);
        let picks: std::collections::HashSet<u32> =
            (0..200).map(|pos| choose(&d, &z, pos)).collect();
        assert!(picks.len() > 100, "{}", picks.len());
    }
}
