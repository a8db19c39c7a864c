//! Coin selection: enough wallet UTxOs to cover a value, largest first.

use crate::tx::{Utxo, Value};

use super::BuildError;

/// Picks UTxOs from `available` that together hold at least `needed`: first those
/// holding the assets `needed` names (most first), then the largest in lovelace.
/// Returns them in the order picked.
pub fn select_coins(available: &[Utxo], needed: &Value) -> Result<Vec<Utxo>, BuildError> {
    let mut pool: Vec<&Utxo> = available.iter().collect();
    let mut picked: Vec<Utxo> = Vec::new();
    let mut have = Value::default();
    for (policy, names) in &needed.assets {
        for (name, quantity) in names {
            pool.sort_by_key(|u| std::cmp::Reverse(u.output.value.quantity_of(policy, name)));
            while have.quantity_of(policy, name) < *quantity {
                let Some(pos) = pool
                    .iter()
                    .position(|u| u.output.value.quantity_of(policy, name) > 0)
                else {
                    return Err(BuildError::Invalid(format!(
                        "the wallet holds {} of asset {}{} but {} are needed: fund the wallet",
                        have.quantity_of(policy, name),
                        hex::encode(policy),
                        hex::encode(name),
                        quantity
                    )));
                };
                let u = pool.remove(pos);
                have.add(&u.output.value);
                picked.push(u.clone());
            }
        }
    }
    pool.sort_by_key(|u| std::cmp::Reverse(u.output.value.lovelace));
    let mut rest = pool.into_iter();
    while have.lovelace < needed.lovelace {
        let Some(u) = rest.next() else {
            return Err(BuildError::Invalid(format!(
                "the wallet holds {} lovelace but {} are needed: fund the wallet",
                have.lovelace, needed.lovelace
            )));
        };
        have.add(&u.output.value);
        picked.push(u.clone());
    }
    Ok(picked)
}
