//! Multi-asset values with checked arithmetic, and output decoding helpers.

use std::collections::BTreeMap;

use pallas_codec::utils::{Bytes, PositiveCoin};
use pallas_crypto::hash::Hash;
use pallas_primitives::conway::{self, DatumOption, ScriptRef, TransactionOutput};

/// An amount of lovelace and native assets (policy id → asset name → quantity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Value {
    /// Lovelace.
    pub coin: u64,
    /// Native assets; quantities are never zero.
    pub assets: BTreeMap<Hash<28>, BTreeMap<Vec<u8>, u64>>,
}

impl Value {
    /// Lovelace only.
    pub fn lovelace(coin: u64) -> Self {
        Self {
            coin,
            assets: BTreeMap::new(),
        }
    }

    /// Adds one asset quantity.
    pub fn with_asset(mut self, policy: Hash<28>, name: &[u8], qty: u64) -> Self {
        if qty > 0 {
            *self
                .assets
                .entry(policy)
                .or_default()
                .entry(name.to_vec())
                .or_default() += qty;
        }
        self
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(&self, other: &Value) -> Option<Value> {
        let mut out = self.clone();
        out.coin = out.coin.checked_add(other.coin)?;
        for (p, names) in &other.assets {
            for (n, q) in names {
                let slot = out
                    .assets
                    .entry(*p)
                    .or_default()
                    .entry(n.clone())
                    .or_default();
                *slot = slot.checked_add(*q)?;
            }
        }
        Some(out)
    }

    /// `self - other`, or `None` if any quantity would go negative.
    pub fn checked_sub(&self, other: &Value) -> Option<Value> {
        let mut out = self.clone();
        out.coin = out.coin.checked_sub(other.coin)?;
        for (p, names) in &other.assets {
            for (n, q) in names {
                let policy = out.assets.get_mut(p)?;
                let slot = policy.get_mut(n)?;
                *slot = slot.checked_sub(*q)?;
                if *slot == 0 {
                    policy.remove(n);
                }
                if policy.is_empty() {
                    out.assets.remove(p);
                }
            }
        }
        Some(out)
    }

    /// True when the value holds no native assets.
    pub fn is_pure_ada(&self) -> bool {
        self.assets.is_empty()
    }

    /// Quantity of one asset.
    pub fn asset(&self, policy: &Hash<28>, name: &[u8]) -> u64 {
        self.assets
            .get(policy)
            .and_then(|m| m.get(name))
            .copied()
            .unwrap_or(0)
    }

    /// Blockfrost's `amount` array: lovelace first, then `policy‖name` units.
    pub fn to_blockfrost(&self) -> serde_json::Value {
        let mut v =
            vec![serde_json::json!({"unit": "lovelace", "quantity": self.coin.to_string()})];
        for (p, names) in &self.assets {
            for (n, q) in names {
                v.push(serde_json::json!({
                    "unit": format!("{}{}", hex::encode(p), hex::encode(n)),
                    "quantity": q.to_string(),
                }));
            }
        }
        serde_json::Value::Array(v)
    }

    /// From a Conway value.
    pub fn from_conway(v: &conway::Value) -> Self {
        match v {
            conway::Value::Coin(c) => Self::lovelace(*c),
            conway::Value::Multiasset(c, ma) => {
                let mut out = Self::lovelace(*c);
                for (p, names) in ma.iter() {
                    for (n, q) in names.iter() {
                        out = out.with_asset(*p, n, u64::from(q));
                    }
                }
                out
            }
        }
    }

    /// From a legacy (Alonzo-shaped) value.
    pub fn from_alonzo(v: &pallas_primitives::alonzo::Value) -> Self {
        match v {
            pallas_primitives::alonzo::Value::Coin(c) => Self::lovelace(*c),
            pallas_primitives::alonzo::Value::Multiasset(c, ma) => {
                let mut out = Self::lovelace(*c);
                for (p, names) in ma.iter() {
                    for (n, q) in names.iter() {
                        out = out.with_asset(*p, n, *q);
                    }
                }
                out
            }
        }
    }

    /// To a Conway value.
    pub fn to_conway(&self) -> conway::Value {
        if self.assets.is_empty() {
            return conway::Value::Coin(self.coin);
        }
        let mut ma = BTreeMap::new();
        for (p, names) in &self.assets {
            let mut inner = BTreeMap::new();
            for (n, q) in names {
                if let Ok(pc) = PositiveCoin::try_from(*q) {
                    inner.insert(Bytes::from(n.clone()), pc);
                }
            }
            if !inner.is_empty() {
                ma.insert(*p, inner);
            }
        }
        conway::Value::Multiasset(self.coin, ma)
    }
}

/// The parts of a transaction output the rules and the API need.
#[derive(Debug, Clone)]
pub struct OutputView {
    /// Address bytes.
    pub address: Vec<u8>,
    /// Value.
    pub value: Value,
    /// Datum hash, if the output carries one by hash.
    pub datum_hash: Option<Hash<32>>,
    /// Inline datum CBOR, if any.
    pub inline_datum: Option<Vec<u8>>,
    /// Reference script: (language tag 0=native,1..3 = Plutus V1..V3, script
    /// bytes as they are hashed after the tag, i.e. the CBOR of the native
    /// script or the Plutus script bytes).
    pub script_ref: Option<(u8, Vec<u8>)>,
}

impl OutputView {
    /// Decodes an output's CBOR.
    pub fn decode(cbor: &[u8]) -> Result<Self, pallas_codec::minicbor::decode::Error> {
        let out: TransactionOutput<'_> = pallas_codec::minicbor::decode(cbor)?;
        Ok(Self::from_output(&out))
    }

    /// From a decoded output.
    pub fn from_output(out: &TransactionOutput<'_>) -> Self {
        match out {
            TransactionOutput::Legacy(o) => OutputView {
                address: o.address.to_vec(),
                value: Value::from_alonzo(&o.amount),
                datum_hash: o.datum_hash,
                inline_datum: None,
                script_ref: None,
            },
            TransactionOutput::PostAlonzo(o) => {
                let (datum_hash, inline_datum) = match o.datum_option.as_deref() {
                    Some(DatumOption::Hash(h)) => (Some(*h), None),
                    Some(DatumOption::Data(d)) => (None, Some(d.0.raw_cbor().to_vec())),
                    None => (None, None),
                };
                let script_ref = o.script_ref.as_ref().map(|s| match &s.0 {
                    ScriptRef::NativeScript(n) => (0u8, n.raw_cbor().to_vec()),
                    ScriptRef::PlutusV1Script(p) => (1u8, p.as_ref().to_vec()),
                    ScriptRef::PlutusV2Script(p) => (2u8, p.as_ref().to_vec()),
                    ScriptRef::PlutusV3Script(p) => (3u8, p.as_ref().to_vec()),
                });
                OutputView {
                    address: o.address.to_vec(),
                    value: Value::from_conway(&o.value),
                    datum_hash,
                    inline_datum,
                    script_ref,
                }
            }
        }
    }

    /// Hash of the reference script, if any (blake2b-224 of tag ‖ bytes).
    pub fn script_ref_hash(&self) -> Option<Hash<28>> {
        self.script_ref
            .as_ref()
            .map(|(tag, bytes)| script_hash(*tag, bytes))
    }

    /// Bech32 (or hex for Byron) form of the address.
    pub fn address_text(&self) -> String {
        address_text(&self.address)
    }
}

/// Script hash: blake2b-224 of the language tag followed by the script bytes.
pub fn script_hash(tag: u8, bytes: &[u8]) -> Hash<28> {
    let mut buf = Vec::with_capacity(bytes.len() + 1);
    buf.push(tag);
    buf.extend_from_slice(bytes);
    pallas_crypto::hash::Hasher::<224>::hash(&buf)
}

/// Bech32 text of address bytes (hex when it cannot be rendered).
pub fn address_text(bytes: &[u8]) -> String {
    pallas_addresses::Address::from_bytes(bytes)
        .ok()
        .and_then(|a| match a {
            pallas_addresses::Address::Byron(b) => Some(b.to_base58()),
            other => other.to_bech32().ok(),
        })
        .unwrap_or_else(|| hex::encode(bytes))
}
