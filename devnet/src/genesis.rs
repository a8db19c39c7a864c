//! Genesis: the file format, the devnet's keys (written as cardano-cli
//! TextEnvelope files), and the initial UTxO set.
//!
//! Genesis outputs of funded key addresses live at transaction id
//! `blake2b_256(address bytes)`, index 0 (Shelley's convention); seeded
//! outputs live where the genesis file says.

use std::path::Path;

use pallas_addresses::{Network, ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart};
use pallas_codec::minicbor;
use pallas_crypto::hash::{Hash, Hasher};
use pallas_crypto::key::ed25519::SecretKey;
use pallas_primitives::conway::NativeScript;
use serde::{Deserialize, Serialize};

use crate::error::DevnetError;
use crate::ledger::OutRef;
use crate::value::{Value, script_hash};

/// The devnet's network magic (network id 0).
pub const NETWORK_MAGIC: u32 = 42;
/// Slots per epoch (mainnet's value).
pub const EPOCH_LENGTH: u64 = 432_000;
/// The devnet NTX asset name ("NTX").
pub const NTX_ASSET_NAME: &[u8] = b"NTX";

/// One funded account in the genesis file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenesisAccount {
    /// Name; the keys are written as `<name>.skey` / `<name>.vkey` / `<name>.addr`.
    pub name: String,
    /// Lovelace at genesis.
    pub lovelace: u64,
    /// Devnet NTX (smallest units) at genesis.
    #[serde(default)]
    pub ntx: u64,
}

/// An arbitrary output seeded at genesis (to replay transactions recorded elsewhere).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenesisUtxo {
    /// Transaction id (hex).
    pub tx_hash: String,
    /// Output index.
    pub index: u32,
    /// The output's CBOR (hex), Conway format.
    pub cbor: String,
}

/// The genesis file (JSON). Every field is optional.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GenesisConfig {
    /// Funded key accounts.
    pub accounts: Vec<GenesisAccount>,
    /// Lovelace held by the faucet (used by the fund admin call).
    pub faucet_lovelace: u64,
    /// Extra outputs at given references.
    pub utxos: Vec<GenesisUtxo>,
    /// Overrides of Blockfrost-shaped protocol parameters.
    pub protocol_params: serde_json::Map<String, serde_json::Value>,
}

impl Default for GenesisConfig {
    fn default() -> Self {
        Self {
            accounts: vec![
                GenesisAccount {
                    name: "alice".into(),
                    lovelace: 10_000_000_000,
                    ntx: 1_000_000_000,
                },
                GenesisAccount {
                    name: "bob".into(),
                    lovelace: 10_000_000_000,
                    ntx: 1_000_000_000,
                },
            ],
            faucet_lovelace: 1_000_000_000_000_000,
            utxos: Vec::new(),
            protocol_params: serde_json::Map::new(),
        }
    }
}

impl GenesisConfig {
    /// Reads a genesis file.
    pub fn from_file(path: &Path) -> Result<Self, DevnetError> {
        let text = std::fs::read_to_string(path).map_err(|e| DevnetError::io(path.display(), e))?;
        serde_json::from_str(&text)
            .map_err(|e| DevnetError::Genesis(format!("{}: {e}", path.display())))
    }
}

/// An ed25519 payment key the devnet created.
#[derive(Clone)]
pub struct KeyPair {
    /// Name.
    pub name: String,
    /// The 32-byte secret.
    pub secret: [u8; 32],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({}, {})", self.name, self.key_hash())
    }
}

impl KeyPair {
    /// A fresh random key.
    pub fn generate(name: &str) -> Self {
        Self {
            name: name.into(),
            secret: rand::random(),
        }
    }

    /// The pallas secret key.
    pub fn secret_key(&self) -> SecretKey {
        SecretKey::from(self.secret)
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        let pk = self.secret_key().public_key();
        let mut out = [0u8; 32];
        out.copy_from_slice(pk.as_ref());
        out
    }

    /// blake2b-224 of the public key.
    pub fn key_hash(&self) -> Hash<28> {
        Hasher::<224>::hash(&self.public_key())
    }

    /// The enterprise address (network 0) of this key.
    pub fn address(&self) -> ShelleyAddress {
        ShelleyAddress::new(
            Network::Testnet,
            ShelleyPaymentPart::key_hash(self.key_hash()),
            ShelleyDelegationPart::Null,
        )
    }

    /// Signs a transaction body hash.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let sig = self.secret_key().sign(msg);
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        out
    }

    /// cardano-cli's TextEnvelope of the signing key.
    pub fn skey_envelope(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "PaymentSigningKeyShelley_ed25519",
            "description": "Payment Signing Key",
            "cborHex": format!("5820{}", hex::encode(self.secret)),
        })
    }

    /// cardano-cli's TextEnvelope of the verification key.
    pub fn vkey_envelope(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "PaymentVerificationKeyShelley_ed25519",
            "description": "Payment Verification Key",
            "cborHex": format!("5820{}", hex::encode(self.public_key())),
        })
    }

    /// Reads a TextEnvelope signing key (`cborHex` = `5820` ‖ 32 bytes).
    pub fn from_skey_file(name: &str, path: &Path) -> Result<Self, DevnetError> {
        let text = std::fs::read_to_string(path).map_err(|e| DevnetError::io(path.display(), e))?;
        let j: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| DevnetError::Corrupt(format!("{}: {e}", path.display())))?;
        let hexs = j["cborHex"].as_str().unwrap_or_default();
        let bytes = hex::decode(hexs.strip_prefix("5820").unwrap_or_default())
            .map_err(|e| DevnetError::Corrupt(format!("{}: {e}", path.display())))?;
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| DevnetError::Corrupt(format!("{}: not a 32-byte key", path.display())))?;
        Ok(Self {
            name: name.into(),
            secret,
        })
    }

    /// Writes `<name>.skey`, `<name>.vkey` and `<name>.addr` into `dir`.
    pub fn write_files(&self, dir: &Path) -> Result<(), DevnetError> {
        let write = |ext: &str, content: String| {
            let p = dir.join(format!("{}.{ext}", self.name));
            std::fs::write(&p, content).map_err(|e| DevnetError::io(p.display(), e))
        };
        write("skey", self.skey_envelope().to_string())?;
        write("vkey", self.vkey_envelope().to_string())?;
        write(
            "addr",
            self.address()
                .to_bech32()
                .map_err(|e| DevnetError::Genesis(e.to_string()))?,
        )?;
        Ok(())
    }
}

/// The NTX minting policy: `ScriptPubkey(policy key hash)`.
pub fn ntx_policy_script(policy_key: &KeyPair) -> NativeScript {
    NativeScript::ScriptPubkey(policy_key.key_hash())
}

/// Policy id of the devnet NTX.
pub fn ntx_policy_id(policy_key: &KeyPair) -> Hash<28> {
    let cbor = minicbor::to_vec(ntx_policy_script(policy_key)).unwrap_or_default();
    script_hash(0, &cbor)
}

/// A Conway output (map form) paying `value` to `address`.
pub fn simple_output(address: &[u8], value: &Value) -> Vec<u8> {
    let out = pallas_primitives::conway::TransactionOutput::PostAlonzo(
        pallas_codec::utils::KeepRaw::from(
            pallas_primitives::conway::PostAlonzoTransactionOutput {
                address: address.to_vec().into(),
                value: value.to_conway(),
                datum_option: None,
                script_ref: None,
            },
        ),
    );
    minicbor::to_vec(out).unwrap_or_default()
}

/// The genesis UTxO set for `config`, given the accounts' keys and the faucet.
pub(crate) fn initial_utxos(
    config: &GenesisConfig,
    accounts: &[KeyPair],
    faucet: &KeyPair,
    ntx_policy: Hash<28>,
) -> Result<Vec<(OutRef, Vec<u8>)>, DevnetError> {
    let mut out = Vec::new();
    let mut add = |addr: Vec<u8>, value: Value| {
        let tx_hash = Hasher::<256>::hash(&addr);
        out.push((OutRef::new(tx_hash, 0), simple_output(&addr, &value)));
    };
    add(
        faucet.address().to_vec(),
        Value::lovelace(config.faucet_lovelace),
    );
    for (acct, key) in config.accounts.iter().zip(accounts) {
        let v = Value::lovelace(acct.lovelace).with_asset(ntx_policy, NTX_ASSET_NAME, acct.ntx);
        add(key.address().to_vec(), v);
    }
    for u in &config.utxos {
        let hash = hex::decode(&u.tx_hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                DevnetError::Genesis(format!(
                    "utxo tx_hash {:?} is not 32 bytes of hex",
                    u.tx_hash
                ))
            })?;
        let cbor = hex::decode(&u.cbor).map_err(|e| {
            DevnetError::Genesis(format!(
                "utxo {}#{}: cbor is not hex: {e}",
                u.tx_hash, u.index
            ))
        })?;
        crate::value::OutputView::decode(&cbor).map_err(|e| {
            DevnetError::Genesis(format!(
                "utxo {}#{}: not an output: {e}",
                u.tx_hash, u.index
            ))
        })?;
        out.push((OutRef::new(Hash::new(hash), u.index), cbor));
    }
    Ok(out)
}
