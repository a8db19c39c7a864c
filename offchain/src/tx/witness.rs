//! Key witnesses added to a finished transaction, for offline signing.
//!
//! A transaction built for someone else to sign (`--out-file`) is sized for its
//! witnesses with placeholders (all-zero signatures, [`super::Draft::encode`]'s
//! `extra_witnesses`). [`without_placeholders`] drops them; [`add_signatures`]
//! drops them and adds each signer's real witness. Both edit only the witness
//! set's key 0 in the raw CBOR: the body, and so the transaction id, and every
//! other witness (redeemers and datums, whose bytes the script-data hash
//! covers) stay byte for byte as they were.

use pallas_codec::minicbor::data::{Tag, Type};
use pallas_codec::minicbor::{Decoder, Encoder};

use crate::protocol::blake2b_256;
use crate::wallet::Signer;

/// The CBOR tag of a set.
const SET_TAG: u64 = 258;

/// Why a transaction's witnesses could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The bytes are not a transaction of the shape Conway clients write.
    #[error(
        "not a Conway transaction ({0}): give the cborHex of a cardano-cli transaction envelope"
    )]
    Malformed(String),
}

impl From<pallas_codec::minicbor::decode::Error> for WitnessError {
    fn from(e: pallas_codec::minicbor::decode::Error) -> Self {
        WitnessError::Malformed(e.to_string())
    }
}

/// A transaction's witnesses, split for editing.
struct Split<'a> {
    /// Everything before the witness set (array header and body).
    head: &'a [u8],
    /// The transaction id (blake2b-256 of the body's bytes).
    id: [u8; 32],
    /// Key witnesses: (verification key, signature).
    vkeys: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether key 0 was a tagged set.
    tagged: bool,
    /// The other witness-set entries, raw, in their order.
    others: Vec<(u64, &'a [u8])>,
    /// Everything after the witness set.
    tail: &'a [u8],
}

fn split(tx: &[u8]) -> Result<Split<'_>, WitnessError> {
    let malformed = |what: &str| WitnessError::Malformed(what.to_string());
    let mut d = Decoder::new(tx);
    if !matches!(d.array()?, Some(3 | 4)) {
        return Err(malformed("a transaction is an array of 3 or 4"));
    }
    let body_start = d.position();
    d.skip()?;
    let body_end = d.position();
    let id = blake2b_256(&tx[body_start..body_end]);
    let entries = d
        .map()?
        .ok_or_else(|| malformed("an indefinite-length witness set"))?;
    let (mut vkeys, mut tagged, mut others) = (Vec::new(), true, Vec::new());
    for _ in 0..entries {
        let key = d.u64()?;
        let start = d.position();
        if key == 0 {
            tagged = d.datatype()? == Type::Tag;
            if tagged && d.tag()? != Tag::new(SET_TAG) {
                return Err(malformed("the key witnesses carry an unknown tag"));
            }
            let n = d
                .array()?
                .ok_or_else(|| malformed("an indefinite-length witness list"))?;
            for _ in 0..n {
                d.array()?;
                let vkey = d.bytes()?.to_vec();
                let signature = d.bytes()?.to_vec();
                vkeys.push((vkey, signature));
            }
        } else {
            d.skip()?;
            others.push((key, &tx[start..d.position()]));
        }
    }
    let ws_end = d.position();
    Ok(Split {
        head: &tx[..body_end],
        id,
        vkeys,
        tagged,
        others,
        tail: &tx[ws_end..],
    })
}

fn join(s: &Split<'_>) -> Vec<u8> {
    let mut ws = Vec::new();
    let mut e = Encoder::new(&mut ws);
    let entries = s.others.len() as u64 + u64::from(!s.vkeys.is_empty());
    e.map(entries).expect("writing to a Vec");
    if !s.vkeys.is_empty() {
        e.u8(0).expect("writing to a Vec");
        if s.tagged {
            e.tag(Tag::new(SET_TAG)).expect("writing to a Vec");
        }
        e.array(s.vkeys.len() as u64).expect("writing to a Vec");
        for (vkey, signature) in &s.vkeys {
            e.array(2)
                .and_then(|e| e.bytes(vkey))
                .and_then(|e| e.bytes(signature))
                .expect("writing to a Vec");
        }
    }
    for (key, raw) in &s.others {
        Encoder::new(&mut ws).u64(*key).expect("writing to a Vec");
        ws.extend_from_slice(raw);
    }
    [s.head, &ws, s.tail].concat()
}

fn is_placeholder(signature: &[u8]) -> bool {
    signature.iter().all(|b| *b == 0)
}

/// `tx` without placeholder key witnesses (all-zero signatures).
pub fn without_placeholders(tx: &[u8]) -> Result<Vec<u8>, WitnessError> {
    let mut s = split(tx)?;
    s.vkeys.retain(|(_, sig)| !is_placeholder(sig));
    Ok(join(&s))
}

/// `tx` signed by `signers` as well: placeholders dropped, each signer's
/// witness over the transaction id added (replacing an earlier one of the same
/// key). Returns the transaction and its id.
pub fn add_signatures(
    tx: &[u8],
    signers: &[&dyn Signer],
) -> Result<(Vec<u8>, [u8; 32]), WitnessError> {
    let mut s = split(tx)?;
    s.vkeys.retain(|(_, sig)| !is_placeholder(sig));
    for signer in signers {
        let vkey = signer.public_key().to_vec();
        s.vkeys.retain(|(k, _)| *k != vkey);
        s.vkeys.push((vkey, signer.sign(&s.id).to_vec()));
    }
    Ok((join(&s), s.id))
}

/// The transaction id of `tx` (blake2b-256 of its body's bytes).
pub fn tx_id(tx: &[u8]) -> Result<[u8; 32], WitnessError> {
    Ok(split(tx)?.id)
}

#[cfg(test)]
mod tests {
    use pallas_crypto::key::ed25519::SecretKey;

    use super::*;
    use crate::tx::{Draft, TxOutput, Utxo, Value};

    fn draft() -> Draft {
        let input = Utxo {
            reference: crate::protocol::OutputReference {
                transaction_id: [1; 32],
                output_index: 0,
            },
            output: TxOutput::new(vec![0x61; 29], Value::lovelace(10_000_000)),
        };
        Draft {
            inputs: vec![input],
            outputs: vec![TxOutput::new(vec![0x61; 29], Value::lovelace(9_000_000))],
            fee: 1_000_000,
            ..Draft::default()
        }
    }

    fn key(seed: u8) -> SecretKey {
        SecretKey::from([seed; 32])
    }

    #[test]
    fn signing_offline_gives_the_bytes_signing_at_build_time_gives() {
        let (a, b) = (key(1), key(2));
        let signed = draft().encode(&[&a, &b], 0).expect("encodes");
        let unsigned = draft().encode(&[], 2).expect("encodes");
        assert_eq!(unsigned.cbor.len(), signed.cbor.len(), "sized alike");
        let (once, id) = add_signatures(&unsigned.cbor, &[&a]).expect("signs");
        let (twice, id2) = add_signatures(&once, &[&b]).expect("signs");
        assert_eq!((id, id2), (signed.id, signed.id));
        assert_eq!(twice, signed.cbor);
        // Signing again with the same key replaces its witness.
        let (again, _) = add_signatures(&twice, &[&b]).expect("signs");
        assert_eq!(again, signed.cbor);
    }

    #[test]
    fn placeholders_are_dropped_and_nothing_else_changes() {
        let unsigned = draft().encode(&[], 2).expect("encodes");
        let bare = without_placeholders(&unsigned.cbor).expect("strips");
        assert_eq!(tx_id(&bare).expect("an id"), unsigned.id);
        assert!(bare.len() < unsigned.cbor.len());
        assert_eq!(without_placeholders(&bare).expect("strips"), bare);
    }

    #[test]
    fn other_bytes_are_refused() {
        assert!(add_signatures(b"not cbor", &[]).is_err());
        assert!(add_signatures(&[0x80], &[]).is_err());
    }
}
