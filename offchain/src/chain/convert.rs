//! Blockfrost JSON → this crate's types.

use pallas_codec::minicbor;
use pallas_primitives::PlutusData;
use pallas_primitives::conway::NativeScript;
use serde_json::Value as Json;

use crate::protocol::{OutputReference, blake2b_224};
use crate::tx::{Datum, ScriptRef, TxOutput, Utxo, Value};

use super::params::json_u64;

/// Fixed-size bytes from hex.
pub(crate) fn hex_array<const N: usize>(s: &str) -> Result<[u8; N], String> {
    hex::decode(s)
        .ok()
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or_else(|| format!("{s:?} is not {N} bytes of hex"))
}

fn str_field<'a>(j: &'a Json, field: &str) -> Result<&'a str, String> {
    j.get(field)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("`{field}` is missing or not a string"))
}

fn opt_str<'a>(j: &'a Json, field: &str) -> Option<&'a str> {
    j.get(field).and_then(Json::as_str)
}

/// An address's raw bytes from its bech32 (Shelley) or base58 (Byron) text.
pub(crate) fn address_bytes(text: &str) -> Result<Vec<u8>, String> {
    if let Ok(a) = pallas_addresses::Address::from_bech32(text) {
        return Ok(a.to_vec());
    }
    pallas_addresses::ByronAddress::from_base58(text)
        .map(|a| a.to_vec())
        .map_err(|_| format!("{text:?} is not a bech32 or base58 address"))
}

/// Blockfrost's `amount` list: `[{unit: "lovelace" | policy‖name hex, quantity}]`.
pub(crate) fn value_from_amounts(amounts: &Json) -> Result<Value, String> {
    let list = amounts
        .as_array()
        .ok_or_else(|| "`amount` is not a list".to_string())?;
    let mut value = Value::default();
    for a in list {
        let unit = str_field(a, "unit")?;
        let quantity = json_u64(a.get("quantity").unwrap_or(&Json::Null))
            .ok_or_else(|| format!("the quantity of {unit} is not a non-negative integer"))?;
        if unit == "lovelace" {
            value.lovelace += quantity;
            continue;
        }
        let bytes = hex::decode(unit)
            .ok()
            .filter(|b| b.len() >= 28 && b.len() <= 28 + 32)
            .ok_or_else(|| format!("asset unit {unit:?} is not policy id ‖ asset name hex"))?;
        let mut policy = [0u8; 28];
        policy.copy_from_slice(&bytes[..28]);
        value.add_asset(policy, &bytes[28..], quantity);
    }
    Ok(value)
}

/// What an output JSON says about its reference script, before the script is fetched.
pub(crate) fn reference_script_hash(j: &Json) -> Result<Option<[u8; 28]>, String> {
    opt_str(j, "reference_script_hash")
        .map(hex_array::<28>)
        .transpose()
}

/// One output of `/addresses/{a}/utxos` or `/txs/{h}/utxos`, with its reference
/// script already fetched (`script`), as a [`Utxo`].
pub(crate) fn utxo_from_json(
    j: &Json,
    tx_hash: Option<&str>,
    script: Option<ScriptRef>,
) -> Result<Utxo, String> {
    let tx_hash = match tx_hash {
        Some(h) => h,
        None => str_field(j, "tx_hash")?,
    };
    let output_index = j
        .get("output_index")
        .and_then(json_u64)
        .ok_or_else(|| "`output_index` is missing".to_string())?;
    let address = address_bytes(str_field(j, "address")?)?;
    let value = value_from_amounts(j.get("amount").unwrap_or(&Json::Null))?;
    let datum = match (opt_str(j, "inline_datum"), opt_str(j, "data_hash")) {
        (Some(cbor), _) => {
            let bytes = hex::decode(cbor).map_err(|_| "`inline_datum` is not hex".to_string())?;
            let data: PlutusData = minicbor::decode(&bytes)
                .map_err(|e| format!("`inline_datum` is not Plutus data: {e}"))?;
            Datum::Inline(data)
        }
        (None, Some(h)) => Datum::Hash(hex_array::<32>(h)?),
        (None, None) => Datum::None,
    };
    Ok(Utxo {
        reference: OutputReference {
            transaction_id: hex_array::<32>(tx_hash)?,
            output_index,
        },
        output: TxOutput {
            address,
            value,
            datum,
            script_ref: script,
        },
    })
}

/// The ledger's hash of a script: blake2b-224 of language tag ‖ bytes.
pub(crate) fn script_hash(script: &ScriptRef) -> [u8; 28] {
    let (tag, bytes) = match script {
        ScriptRef::Native(n) => {
            let mut out = Vec::new();
            let _ = minicbor::encode(n, &mut out);
            (0u8, out)
        }
        ScriptRef::PlutusV1(b) => (1, b.clone()),
        ScriptRef::PlutusV2(b) => (2, b.clone()),
        ScriptRef::PlutusV3(b) => (3, b.clone()),
    };
    let mut pre = Vec::with_capacity(bytes.len() + 1);
    pre.push(tag);
    pre.extend_from_slice(&bytes);
    blake2b_224(&pre)
}

/// A Plutus script from `/scripts/{h}/cbor` whose hash is `hash`. Providers
/// disagree on how many CBOR byte-string wrappings they serve; the one whose
/// hash matches is taken.
pub(crate) fn plutus_script(
    language: &str,
    cbor_hex: &str,
    hash: &[u8; 28],
) -> Result<ScriptRef, String> {
    let make: fn(Vec<u8>) -> ScriptRef = match language {
        "plutusV1" => ScriptRef::PlutusV1,
        "plutusV2" => ScriptRef::PlutusV2,
        "plutusV3" => ScriptRef::PlutusV3,
        other => return Err(format!("unknown script type {other:?}")),
    };
    let served = hex::decode(cbor_hex).map_err(|_| "script CBOR is not hex".to_string())?;
    let mut wrapped = Vec::new();
    let _ = minicbor::encode(minicbor::bytes::ByteVec::from(served.clone()), &mut wrapped);
    let unwrapped = minicbor::decode::<minicbor::bytes::ByteVec>(&served)
        .ok()
        .map(|b| b.to_vec());
    [Some(served), unwrapped, Some(wrapped)]
        .into_iter()
        .flatten()
        .map(make)
        .find(|s| script_hash(s) == *hash)
        .ok_or_else(|| format!("the served script does not hash to {}", hex::encode(hash)))
}

/// A native script from its CBOR (when the provider serves it) or from
/// cardano-cli's JSON form (`/scripts/{h}/json`), checked against `hash`.
pub(crate) fn native_script(
    cbor_hex: Option<&str>,
    json: Option<&Json>,
    hash: &[u8; 28],
) -> Result<ScriptRef, String> {
    let script = match (cbor_hex, json) {
        (Some(c), _) => {
            let bytes = hex::decode(c).map_err(|_| "script CBOR is not hex".to_string())?;
            minicbor::decode::<NativeScript>(&bytes)
                .map_err(|e| format!("not a native script: {e}"))?
        }
        (None, Some(j)) => native_from_json(j)?,
        (None, None) => return Err("the provider serves neither CBOR nor JSON".into()),
    };
    let script = ScriptRef::Native(script);
    if script_hash(&script) != *hash {
        return Err(format!(
            "the served native script does not hash to {}",
            hex::encode(hash)
        ));
    }
    Ok(script)
}

/// cardano-cli's native-script JSON: `{type: "sig", keyHash}`, `{type:
/// "all"|"any", scripts}`, `{type: "atLeast", required, scripts}`, `{type:
/// "after"|"before", slot}`.
pub(crate) fn native_from_json(j: &Json) -> Result<NativeScript, String> {
    let scripts = |j: &Json| -> Result<Vec<NativeScript>, String> {
        j.get("scripts")
            .and_then(Json::as_array)
            .ok_or_else(|| "`scripts` is missing".to_string())?
            .iter()
            .map(native_from_json)
            .collect()
    };
    let slot = |j: &Json| {
        j.get("slot")
            .and_then(json_u64)
            .ok_or_else(|| "`slot` is missing".to_string())
    };
    Ok(match str_field(j, "type")? {
        "sig" => NativeScript::ScriptPubkey(hex_array::<28>(str_field(j, "keyHash")?)?.into()),
        "all" => NativeScript::ScriptAll(scripts(j)?),
        "any" => NativeScript::ScriptAny(scripts(j)?),
        "atLeast" => NativeScript::ScriptNOfK(
            j.get("required")
                .and_then(json_u64)
                .and_then(|n| n.try_into().ok())
                .ok_or_else(|| "`required` is missing".to_string())?,
            scripts(j)?,
        ),
        "after" => NativeScript::InvalidBefore(slot(j)?),
        "before" => NativeScript::InvalidHereafter(slot(j)?),
        other => return Err(format!("unknown native script type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_a_value() {
        let policy = "11".repeat(28);
        let j = serde_json::json!([
            {"unit": "lovelace", "quantity": "1500000"},
            {"unit": format!("{policy}4e5458"), "quantity": "25"},
            {"unit": policy, "quantity": 3},
        ]);
        let v = value_from_amounts(&j).expect("value");
        assert_eq!(v.lovelace, 1_500_000);
        assert_eq!(v.quantity_of(&[0x11; 28], b"NTX"), 25);
        assert_eq!(v.quantity_of(&[0x11; 28], b""), 3);
        assert!(value_from_amounts(&serde_json::json!([{"unit": "zz", "quantity": "1"}])).is_err());
    }

    #[test]
    fn plutus_scripts_are_matched_by_hash_whatever_the_wrapping() {
        let flat_wrapped = vec![0x46, 1, 2, 3, 4, 5, 6];
        let want = ScriptRef::PlutusV3(flat_wrapped.clone());
        let hash = script_hash(&want);
        // Served as is, and with one more CBOR wrapping.
        assert_eq!(
            plutus_script("plutusV3", &hex::encode(&flat_wrapped), &hash),
            Ok(want.clone())
        );
        let mut double = Vec::new();
        let _ = minicbor::encode(minicbor::bytes::ByteVec::from(flat_wrapped), &mut double);
        assert_eq!(
            plutus_script("plutusV3", &hex::encode(&double), &hash),
            Ok(want)
        );
        assert!(plutus_script("plutusV2", "46010203040506", &hash).is_err());
    }

    #[test]
    fn native_script_json_matches_its_hash() {
        let j = serde_json::json!({"type": "all", "scripts": [
            {"type": "sig", "keyHash": "22".repeat(28)},
            {"type": "before", "slot": 1000},
        ]});
        let script = ScriptRef::Native(native_from_json(&j).expect("parses"));
        let hash = script_hash(&script);
        assert_eq!(native_script(None, Some(&j), &hash), Ok(script));
        assert!(native_script(None, Some(&j), &[0; 28]).is_err());
    }
}
