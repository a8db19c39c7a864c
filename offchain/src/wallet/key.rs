//! Ed25519 signing and verification keys: cardano-cli TextEnvelope files,
//! bech32 (CIP-5) and generation from the operating system's randomness.
//!
//! Secret bytes live in [`Zeroizing`] buffers (and pallas' own keys, which
//! scrub themselves), are never formatted by `Debug`, and never appear in an
//! error message: errors name the file and what is wrong, not the content.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use bech32::{Bech32, Hrp};
use pallas_crypto::key::ed25519::{SecretKey, SecretKeyExtended};
use rand::TryRngCore;
use zeroize::Zeroizing;

use super::signer::Signer;
use crate::protocol::blake2b_224;

/// What a key is for; it decides the TextEnvelope `type` and bech32 prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// A payment key (`m/1852'/1815'/0'/0/i`): spends UTxOs, signs transactions.
    Payment,
    /// A stake key (`m/1852'/1815'/0'/2/0`): the delegation part of base addresses.
    Stake,
}

impl KeyRole {
    fn word(self) -> &'static str {
        match self {
            KeyRole::Payment => "payment",
            KeyRole::Stake => "stake",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            KeyRole::Payment => "Payment",
            KeyRole::Stake => "Stake",
        }
    }

    fn signing_type(self, extended: bool) -> String {
        if extended {
            format!("{}ExtendedSigningKeyShelley_ed25519_bip32", self.prefix())
        } else {
            format!("{}SigningKeyShelley_ed25519", self.prefix())
        }
    }

    fn verification_type(self, extended: bool) -> String {
        if extended {
            format!(
                "{}ExtendedVerificationKeyShelley_ed25519_bip32",
                self.prefix()
            )
        } else {
            format!("{}VerificationKeyShelley_ed25519", self.prefix())
        }
    }

    fn vk_hrp(self) -> &'static str {
        match self {
            KeyRole::Payment => "addr_vk",
            KeyRole::Stake => "stake_vk",
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Why a key could not be read, decoded, generated or written.
///
/// No variant carries secret material: only paths, types, prefixes and lengths.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("cannot {action} key file {}: {source}", path.display())]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Refusing to overwrite a key file.
    #[error(
        "{} already exists: choose another file name or move the old key away (keys are never overwritten)",
        path.display()
    )]
    Exists {
        /// The file that exists.
        path: PathBuf,
    },
    /// Not a cardano-cli TextEnvelope.
    #[error(
        "{source_name} is not a cardano-cli key file (JSON with type, description and cborHex; {detail}): pass a .skey/.vkey written by cardano-cli or `ntx wallet new`"
    )]
    NotEnvelope {
        /// The file (or "the key text").
        source_name: String,
        /// What is wrong, without the content.
        detail: String,
    },
    /// A TextEnvelope of another type than asked for.
    #[error("key file {source_name} has type {found}, expected a {expected}: {hint}")]
    WrongType {
        /// The file.
        source_name: String,
        /// Its `type`.
        found: String,
        /// What the command needs.
        expected: String,
        /// What to do.
        hint: String,
    },
    /// The key bytes are malformed.
    #[error("{source_name}: {detail}: the key is damaged; re-export or regenerate it")]
    Malformed {
        /// The file, or "the bech32 key".
        source_name: String,
        /// What is wrong (lengths, bits), without the content.
        detail: String,
    },
    /// Not a bech32 string (or a bad checksum).
    #[error(
        "the {what} is not valid bech32 (a mistyped or truncated string?): pass it exactly as exported, e.g. {example}"
    )]
    Bech32 {
        /// "signing key" or "verification key".
        what: &'static str,
        /// An example prefix.
        example: &'static str,
    },
    /// A bech32 string with an unexpected prefix.
    #[error("a bech32 {what} starting with `{hrp}1` is not supported here: {expected}")]
    Bech32Prefix {
        /// "signing key" or "verification key".
        what: &'static str,
        /// The prefix found.
        hrp: String,
        /// The prefixes accepted.
        expected: &'static str,
    },
    /// The operating system gave no randomness.
    #[error("the operating system's random number generator failed ({0}): no key was generated")]
    Random(String),
}

fn hex32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

/// An Ed25519 verification (public) key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerificationKey([u8; 32]);

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerificationKey({})", hex::encode(self.0))
    }
}

impl VerificationKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        VerificationKey(bytes)
    }

    /// Its 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Its blake2b-224 hash: the credential in addresses and `required_signers`.
    pub fn hash(&self) -> [u8; 28] {
        blake2b_224(&self.0)
    }

    /// bech32 with the CIP-5 prefix of `role` (`addr_vk` or `stake_vk`).
    pub fn to_bech32(&self, role: KeyRole) -> String {
        bech32_encode(role.vk_hrp(), &self.0)
    }

    /// Decodes `addr_vk`, `stake_vk`, `ed25519_vk` (32 bytes) or `addr_xvk`,
    /// `stake_xvk`, `ed25519e_vk` (public key and chain code, 64 bytes).
    pub fn from_bech32(s: &str) -> Result<Self, KeyError> {
        const EXPECTED: &str =
            "use addr_vk1…, stake_vk1…, ed25519_vk1… or their extended (xvk) forms";
        let (hrp, data) = bech32::decode(s.trim()).map_err(|_| KeyError::Bech32 {
            what: "verification key",
            example: "addr_vk1…",
        })?;
        let hrp = hrp.to_lowercase();
        let expected_len = match hrp.as_str() {
            "addr_vk" | "stake_vk" | "ed25519_vk" => 32,
            "addr_xvk" | "stake_xvk" | "ed25519e_vk" => 64,
            _ => {
                return Err(KeyError::Bech32Prefix {
                    what: "verification key",
                    hrp,
                    expected: EXPECTED,
                });
            }
        };
        if data.len() != expected_len {
            return Err(KeyError::Malformed {
                source_name: format!("the bech32 {hrp} key"),
                detail: format!("{} bytes, expected {expected_len}", data.len()),
            });
        }
        let key = hex32(&data[..32]).ok_or_else(|| KeyError::Malformed {
            source_name: format!("the bech32 {hrp} key"),
            detail: "too short".to_owned(),
        })?;
        Ok(VerificationKey(key))
    }

    /// The cardano-cli TextEnvelope (`<Role>VerificationKeyShelley_ed25519`).
    pub fn to_text_envelope(&self, role: KeyRole) -> String {
        envelope_json(
            &role.verification_type(false),
            &format!("{} Verification Key", role.prefix()),
            &format!("5820{}", hex::encode(self.0)),
        )
    }

    /// Parses a verification-key TextEnvelope of `role` (plain or extended).
    pub fn from_text_envelope(text: &str, role: KeyRole) -> Result<Self, KeyError> {
        Self::parse_envelope(text, role, "the key text")
    }

    /// Reads a cardano-cli `.vkey` file of `role`.
    pub fn read_vkey(path: &Path, role: KeyRole) -> Result<Self, KeyError> {
        let text = read_file(path)?;
        Self::parse_envelope(&text, role, &path.display().to_string())
    }

    /// Writes a cardano-cli `.vkey` file; refuses to overwrite one.
    pub fn write_vkey(&self, path: &Path, role: KeyRole) -> Result<(), KeyError> {
        write_new_file(path, self.to_text_envelope(role).as_bytes(), false)
    }

    fn parse_envelope(text: &str, role: KeyRole, source_name: &str) -> Result<Self, KeyError> {
        let env = Envelope::parse(text, source_name)?;
        let plain = role.verification_type(false);
        let extended = role.verification_type(true);
        let expected_len = if env.kind == plain {
            32
        } else if env.kind == extended {
            64
        } else {
            let hint = if env.kind.contains("SigningKey") {
                "pass the .vkey, not the .skey".to_owned()
            } else {
                format!("pass the {role} .vkey")
            };
            return Err(KeyError::WrongType {
                source_name: source_name.to_owned(),
                found: env.kind,
                expected: format!("{role} verification key ({plain})"),
                hint,
            });
        };
        let bytes = env.cbor_bytes(expected_len, source_name)?;
        let key = hex32(&bytes[..32]).ok_or_else(|| KeyError::Malformed {
            source_name: source_name.to_owned(),
            detail: "key too short".to_owned(),
        })?;
        Ok(VerificationKey(key))
    }
}

/// The secret of a [`SigningKey`]: pallas' key for signing (scrubbed on drop)
/// and a zeroizing copy of the bytes for exporting.
#[derive(Clone)]
enum Secret {
    Normal {
        key: SecretKey,
        bytes: Zeroizing<[u8; 32]>,
    },
    Extended {
        key: SecretKeyExtended,
        bytes: Zeroizing<[u8; 64]>,
        chain_code: Option<Zeroizing<[u8; 32]>>,
    },
}

/// An Ed25519 signing key: a plain 32-byte key (cardano-cli `address key-gen`)
/// or a 64-byte BIP32-Ed25519 extended key (wallets, CIP-1852 derivation).
///
/// `Debug` shows the kind and the verification key, never the secret.
#[derive(Clone)]
pub struct SigningKey {
    secret: Secret,
    public: [u8; 32],
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field(
                "kind",
                &if self.is_extended() {
                    "extended"
                } else {
                    "normal"
                },
            )
            .field("verification_key", &hex::encode(self.public))
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// A new plain key from the operating system's randomness.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(bytes.as_mut())
            .map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_normal_bytes(&bytes))
    }

    /// A plain key from its 32 secret bytes.
    pub fn from_normal_bytes(bytes: &[u8; 32]) -> Self {
        let key = SecretKey::from(*bytes);
        let public = Signer::public_key(&key);
        SigningKey {
            secret: Secret::Normal {
                key,
                bytes: Zeroizing::new(*bytes),
            },
            public,
        }
    }

    /// An extended key from its 64 bytes (scalar and nonce prefix) and, when
    /// known, its BIP32 chain code (needed only to write the extended
    /// TextEnvelope, never to sign).
    pub fn from_extended_bytes(
        bytes: &[u8; 64],
        chain_code: Option<&[u8; 32]>,
    ) -> Result<Self, KeyError> {
        let key = SecretKeyExtended::from_bytes(*bytes).map_err(|_| KeyError::Malformed {
            source_name: "the extended signing key".to_owned(),
            detail: "its scalar does not have the Ed25519-BIP32 bit pattern".to_owned(),
        })?;
        let public = Signer::public_key(&key);
        Ok(SigningKey {
            secret: Secret::Extended {
                key,
                bytes: Zeroizing::new(*bytes),
                chain_code: chain_code.map(|c| Zeroizing::new(*c)),
            },
            public,
        })
    }

    /// Whether this is a 64-byte extended (BIP32-Ed25519) key.
    pub fn is_extended(&self) -> bool {
        matches!(self.secret, Secret::Extended { .. })
    }

    /// The verification key.
    pub fn verification_key(&self) -> VerificationKey {
        VerificationKey(self.public)
    }

    /// bech32: `ed25519_sk` for plain keys, `ed25519e_sk` for extended ones
    /// (cardano-cli's formats). The string is a secret: it is zeroized on drop.
    pub fn to_bech32(&self) -> Zeroizing<String> {
        match &self.secret {
            Secret::Normal { bytes, .. } => Zeroizing::new(bech32_encode("ed25519_sk", &bytes[..])),
            Secret::Extended { bytes, .. } => {
                Zeroizing::new(bech32_encode("ed25519e_sk", &bytes[..]))
            }
        }
    }

    /// Decodes `ed25519_sk`/`addr_sk`/`stake_sk` (32 bytes), `ed25519e_sk`
    /// (64 bytes) or `addr_xsk`/`stake_xsk` (64 bytes, or 96 with the chain code,
    /// as cardano-address writes them).
    pub fn from_bech32(s: &str) -> Result<Self, KeyError> {
        const EXPECTED: &str =
            "use ed25519_sk1…, ed25519e_sk1…, addr_sk1…, addr_xsk1…, stake_sk1… or stake_xsk1…";
        let (hrp, data) = bech32::decode(s.trim()).map_err(|_| KeyError::Bech32 {
            what: "signing key",
            example: "ed25519_sk1… or ed25519e_sk1…",
        })?;
        let data = Zeroizing::new(data);
        let hrp = hrp.to_lowercase();
        let source_name = format!("the bech32 {hrp} key");
        let bad_len = |expected: &str| KeyError::Malformed {
            source_name: source_name.clone(),
            detail: format!("{} bytes, expected {expected}", data.len()),
        };
        match hrp.as_str() {
            "ed25519_sk" | "addr_sk" | "stake_sk" => {
                let bytes: [u8; 32] = data[..].try_into().map_err(|_| bad_len("32"))?;
                let bytes = Zeroizing::new(bytes);
                Ok(Self::from_normal_bytes(&bytes))
            }
            "ed25519e_sk" | "addr_xsk" | "stake_xsk" | "root_xsk" | "acct_xsk" => {
                let (key, cc) = match data.len() {
                    64 => (&data[..64], None),
                    96 if hrp != "ed25519e_sk" => (&data[..64], Some(&data[64..])),
                    _ => return Err(bad_len("64 (or 96 with the chain code)")),
                };
                let key: Zeroizing<[u8; 64]> =
                    Zeroizing::new(key.try_into().map_err(|_| bad_len("64"))?);
                let cc: Option<Zeroizing<[u8; 32]>> = match cc {
                    Some(c) => Some(Zeroizing::new(c.try_into().map_err(|_| bad_len("96"))?)),
                    None => None,
                };
                Self::from_extended_bytes(&key, cc.as_deref()).map_err(|e| match e {
                    KeyError::Malformed { detail, .. } => KeyError::Malformed {
                        source_name: source_name.clone(),
                        detail,
                    },
                    other => other,
                })
            }
            _ => Err(KeyError::Bech32Prefix {
                what: "signing key",
                hrp,
                expected: EXPECTED,
            }),
        }
    }

    /// The cardano-cli TextEnvelope of this key as a `role` key: plain keys as
    /// `<Role>SigningKeyShelley_ed25519` (`5820` + key), extended keys with a
    /// chain code as `<Role>ExtendedSigningKeyShelley_ed25519_bip32` (`5880` +
    /// key, verification key, chain code). The text is a secret.
    ///
    /// `None` for an extended key without its chain code (e.g. one read from an
    /// `ed25519e_sk`): cardano-cli's format needs the chain code; export such a
    /// key with [`SigningKey::to_bech32`] instead.
    pub fn to_text_envelope(&self, role: KeyRole) -> Option<Zeroizing<String>> {
        match &self.secret {
            Secret::Normal { bytes, .. } => {
                let cbor = Zeroizing::new(format!("5820{}", hex::encode(&bytes[..])));
                Some(Zeroizing::new(envelope_json(
                    &role.signing_type(false),
                    &format!("{} Signing Key", role.prefix()),
                    &cbor,
                )))
            }
            Secret::Extended {
                bytes,
                chain_code: Some(cc),
                ..
            } => {
                let cbor = Zeroizing::new(format!(
                    "5880{}{}{}",
                    hex::encode(&bytes[..]),
                    hex::encode(self.public),
                    hex::encode(&cc[..])
                ));
                Some(Zeroizing::new(envelope_json(
                    &role.signing_type(true),
                    "",
                    &cbor,
                )))
            }
            Secret::Extended {
                chain_code: None, ..
            } => None,
        }
    }

    /// The matching verification-key TextEnvelope (extended when the signing
    /// key's is).
    pub fn to_vkey_envelope(&self, role: KeyRole) -> String {
        match &self.secret {
            Secret::Extended {
                chain_code: Some(cc),
                ..
            } => envelope_json(
                &role.verification_type(true),
                "",
                &format!("5840{}{}", hex::encode(self.public), hex::encode(&cc[..])),
            ),
            _ => self.verification_key().to_text_envelope(role),
        }
    }

    /// Parses a signing-key TextEnvelope of `role` (plain or extended).
    pub fn from_text_envelope(text: &str, role: KeyRole) -> Result<Self, KeyError> {
        Self::parse_envelope(text, role, "the key text")
    }

    /// Reads a cardano-cli `.skey` file of `role`.
    pub fn read_skey(path: &Path, role: KeyRole) -> Result<Self, KeyError> {
        let text = Zeroizing::new(read_file(path)?);
        Self::parse_envelope(&text, role, &path.display().to_string())
    }

    /// Writes `skey_path` (mode 0600) and `vkey_path` as cardano-cli
    /// TextEnvelopes of `role`; refuses to overwrite either file.
    pub fn write_key_pair(
        &self,
        skey_path: &Path,
        vkey_path: &Path,
        role: KeyRole,
    ) -> Result<(), KeyError> {
        let skey = self
            .to_text_envelope(role)
            .ok_or_else(|| KeyError::Malformed {
                source_name: "the extended signing key".to_owned(),
                detail: "its chain code is unknown, so it has no cardano-cli TextEnvelope form"
                    .to_owned(),
            })?;
        for path in [skey_path, vkey_path] {
            if path.exists() {
                return Err(KeyError::Exists {
                    path: path.to_owned(),
                });
            }
        }
        write_new_file(skey_path, skey.as_bytes(), true)?;
        write_new_file(vkey_path, self.to_vkey_envelope(role).as_bytes(), false)
    }

    fn parse_envelope(text: &str, role: KeyRole, source_name: &str) -> Result<Self, KeyError> {
        let env = Envelope::parse(text, source_name)?;
        let plain = role.signing_type(false);
        let extended = role.signing_type(true);
        let malformed = |detail: &str| KeyError::Malformed {
            source_name: source_name.to_owned(),
            detail: detail.to_owned(),
        };
        if env.kind == plain {
            let bytes = env.cbor_bytes(32, source_name)?;
            let key: Zeroizing<[u8; 32]> = Zeroizing::new(
                bytes[..]
                    .try_into()
                    .map_err(|_| malformed("not 32 bytes"))?,
            );
            Ok(Self::from_normal_bytes(&key))
        } else if env.kind == extended {
            let bytes = env.cbor_bytes_any(&[128, 96], source_name)?;
            let key: Zeroizing<[u8; 64]> =
                Zeroizing::new(bytes[..64].try_into().map_err(|_| malformed("too short"))?);
            let (public, cc) = if bytes.len() == 128 {
                (Some(&bytes[64..96]), &bytes[96..128])
            } else {
                (None, &bytes[64..96])
            };
            let cc: Zeroizing<[u8; 32]> =
                Zeroizing::new(cc.try_into().map_err(|_| malformed("too short"))?);
            let key = Self::from_extended_bytes(&key, Some(&cc)).map_err(|e| match e {
                KeyError::Malformed { detail, .. } => malformed(&detail),
                other => other,
            })?;
            if public.is_some_and(|p| p != key.public) {
                return Err(malformed(
                    "the verification key stored in it does not match its secret key",
                ));
            }
            Ok(key)
        } else {
            let other = match role {
                KeyRole::Payment => KeyRole::Stake,
                KeyRole::Stake => KeyRole::Payment,
            };
            let hint = if env.kind.contains("VerificationKey") {
                "pass the .skey, not the .vkey".to_owned()
            } else if env.kind.starts_with(other.prefix()) {
                format!("this is a {other} key; pass the {role} .skey")
            } else {
                format!("pass a {role} signing key written by cardano-cli or `ntx wallet new`")
            };
            Err(KeyError::WrongType {
                source_name: source_name.to_owned(),
                found: env.kind,
                expected: format!("{role} signing key ({plain} or {extended})"),
                hint,
            })
        }
    }
}

impl Signer for SigningKey {
    fn public_key(&self) -> [u8; 32] {
        self.public
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        match &self.secret {
            Secret::Normal { key, .. } => Signer::sign(key, msg),
            Secret::Extended { key, .. } => Signer::sign(key, msg),
        }
    }
}

/// A parsed TextEnvelope; `cbor_hex` may hold a secret and is zeroized.
struct Envelope {
    kind: String,
    cbor_hex: Zeroizing<String>,
}

#[derive(serde::Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "cborHex")]
    cbor_hex: String,
}

impl Envelope {
    fn parse(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let raw: RawEnvelope = serde_json::from_str(text).map_err(|e| KeyError::NotEnvelope {
            source_name: source_name.to_owned(),
            // serde_json's message may quote content; keep only where it failed.
            detail: format!(
                "{} at line {} column {}",
                match e.classify() {
                    serde_json::error::Category::Io | serde_json::error::Category::Syntax =>
                        "not JSON",
                    serde_json::error::Category::Eof => "truncated JSON",
                    serde_json::error::Category::Data => "a field is missing or not a string",
                },
                e.line(),
                e.column()
            ),
        })?;
        Ok(Envelope {
            kind: raw.kind,
            cbor_hex: Zeroizing::new(raw.cbor_hex),
        })
    }

    /// The bytes of the CBOR byte string, which must be one of `lens` long.
    fn cbor_bytes_any(
        &self,
        lens: &[usize],
        source_name: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let malformed = |detail: String| KeyError::Malformed {
            source_name: source_name.to_owned(),
            detail,
        };
        let cbor = Zeroizing::new(
            hex::decode(self.cbor_hex.trim())
                .map_err(|_| malformed("its cborHex is not hexadecimal".to_owned()))?,
        );
        let (len, header) = match cbor.first() {
            Some(&b) if (0x40..=0x57).contains(&b) => (usize::from(b - 0x40), 1),
            Some(0x58) => (usize::from(*cbor.get(1).unwrap_or(&0)), 2),
            Some(0x59) if cbor.len() >= 3 => (usize::from(cbor[1]) << 8 | usize::from(cbor[2]), 3),
            _ => {
                return Err(malformed(
                    "its cborHex is not a CBOR byte string".to_owned(),
                ));
            }
        };
        if cbor.len() != header + len {
            return Err(malformed(format!(
                "its CBOR byte string says {len} bytes but holds {}",
                cbor.len().saturating_sub(header)
            )));
        }
        if !lens.contains(&len) {
            return Err(malformed(format!(
                "its key is {len} bytes, expected {}",
                lens.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        Ok(Zeroizing::new(cbor[header..].to_vec()))
    }

    fn cbor_bytes(&self, len: usize, source_name: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.cbor_bytes_any(&[len], source_name)
    }
}

fn envelope_json(kind: &str, description: &str, cbor_hex: &str) -> String {
    // cardano-cli's layout: four-space indent, fields in this order.
    format!(
        "{{\n    \"type\": \"{kind}\",\n    \"description\": \"{description}\",\n    \"cborHex\": \"{cbor_hex}\"\n}}\n"
    )
}

pub(crate) fn bech32_encode(hrp: &str, data: &[u8]) -> String {
    // Both are fixed by this module: a valid prefix and at most 96 bytes.
    let hrp = Hrp::parse(hrp).expect("the module's bech32 prefixes are valid");
    bech32::encode::<Bech32>(hrp, data).expect("keys fit bech32's length limit")
}

fn read_file(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|source| KeyError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

fn write_new_file(path: &Path, content: &[u8], secret: bool) -> Result<(), KeyError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyError::Io {
                action: "write",
                path: path.to_owned(),
                source,
            }
        }
    })?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyError::Io {
            action: "write",
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let bytes = [0x5a; 32];
        let key = SigningKey::from_normal_bytes(&bytes);
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains(&hex::encode(bytes)), "{shown}");
        assert!(shown.contains("redacted"));
        assert!(shown.contains(&hex::encode(key.verification_key().to_bytes())));
    }

    #[test]
    fn cbor_lengths_are_checked() {
        let env = Envelope {
            kind: String::new(),
            cbor_hex: Zeroizing::new("5820aa".to_owned()),
        };
        let err = env.cbor_bytes(32, "k.skey").expect_err("short");
        assert!(
            err.to_string().contains("says 32 bytes but holds 1"),
            "{err}"
        );
        let env = Envelope {
            kind: String::new(),
            cbor_hex: Zeroizing::new(format!("5820{}", "11".repeat(32))),
        };
        assert_eq!(env.cbor_bytes(32, "k").expect("ok").len(), 32);
        assert!(env.cbor_bytes(64, "k").is_err());
        let env = Envelope {
            kind: String::new(),
            cbor_hex: Zeroizing::new("zz".to_owned()),
        };
        assert!(
            env.cbor_bytes(32, "k")
                .expect_err("hex")
                .to_string()
                .contains("not hexadecimal")
        );
    }
}
