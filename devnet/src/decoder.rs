//! What the Conway ledger's CBOR decoder refuses and pallas' decoder accepts.
//!
//! The ledger decodes a transaction against the Conway CDDL, in which many
//! sets and maps are non-empty (`nonempty_set`, `nonempty_oset`, `{+ k => v}`),
//! multi-asset quantities are non-zero (mint) or positive (outputs), the
//! treasury donation is a positive coin, and a map may not repeat a key.
//! pallas decodes such bytes without complaint, so [`check`] walks the raw CBOR
//! first and refuses them the way the ledger's decoder does, before any rule
//! runs. [`check_metadata`] applies the UTXOW rule on metadata values (text and
//! byte strings at most 64 bytes: `InvalidMetadata`).

use std::collections::HashSet;

use pallas_codec::minicbor::Decoder;
use pallas_codec::minicbor::data::{Tag, Type};

use crate::error::LedgerError;

/// The CBOR tag of a set (`#6.258`).
const SET_TAG: u64 = 258;
/// The tag of Alonzo-era auxiliary data (`#6.259`).
const AUX_TAG: u64 = 259;
/// The longest metadata text or byte string.
pub const MAX_METADATUM_BYTES: usize = 64;

/// Refuses what the ledger's decoder refuses: empty sets and maps where the
/// CDDL says non-empty, zero quantities, a zero donation, repeated map keys.
pub(crate) fn check(bytes: &[u8]) -> Result<(), LedgerError> {
    let mut d = Decoder::new(bytes);
    let mut w = Walker { d: &mut d };
    match w.transaction() {
        Err(Walk::Rule(rule, detail)) => Err(LedgerError::Undecodable { rule, detail }),
        // A shape this walk does not follow is pallas' decoder's to judge.
        Err(Walk::Cbor) | Ok(()) => Ok(()),
    }
}

/// Refuses metadata whose text or byte strings exceed 64 bytes (`bytes` is the
/// transaction).
pub(crate) fn check_metadata(bytes: &[u8]) -> Result<(), LedgerError> {
    let mut d = Decoder::new(bytes);
    let mut w = Walker { d: &mut d };
    match w.metadata_of_transaction() {
        Err(Walk::Rule(_, detail)) => Err(LedgerError::InvalidMetadata(detail)),
        Err(Walk::Cbor) | Ok(()) => Ok(()),
    }
}

/// Why the walk stopped: a rule the ledger's decoder applies, or a shape the
/// walk does not follow (left to pallas' decoder).
enum Walk {
    Rule(&'static str, String),
    Cbor,
}

impl From<pallas_codec::minicbor::decode::Error> for Walk {
    fn from(_: pallas_codec::minicbor::decode::Error) -> Walk {
        Walk::Cbor
    }
}

fn empty(what: &str) -> Walk {
    Walk::Rule(
        "DeserialiseFailure",
        format!("{what} is empty, but the Conway CDDL allows only a non-empty one"),
    )
}

struct Walker<'a, 'b> {
    d: &'a mut Decoder<'b>,
}

type Step<T = ()> = Result<T, Walk>;

impl Walker<'_, '_> {
    fn transaction(&mut self) -> Step {
        self.d.array()?;
        self.body()?;
        self.witnesses()?;
        Ok(())
    }

    fn metadata_of_transaction(&mut self) -> Step {
        let n = self.d.array()?;
        self.d.skip()?; // body
        self.d.skip()?; // witnesses
        if n == Some(3) {
            // Babbage-style three-element form: body, witnesses, auxiliary data.
            return self.auxiliary();
        }
        self.d.skip()?; // is_valid
        self.auxiliary()
    }

    /// A map from small integers, no key twice (`what` names it); `entry`
    /// reads each value.
    fn keyed(&mut self, what: &str, mut entry: impl FnMut(&mut Self, u64) -> Step) -> Step {
        let entries = self.map_len()?;
        let mut seen = HashSet::new();
        for _ in 0..entries {
            let key = self.d.u64()?;
            if !seen.insert(key) {
                return Err(Walk::Rule(
                    "DeserialiseFailure",
                    format!("{what} has key {key} twice"),
                ));
            }
            entry(self, key)?;
        }
        Ok(())
    }

    /// The body: a map from small integers, no key twice.
    fn body(&mut self) -> Step {
        self.keyed("the transaction body", |w, key| w.body_entry(key))
    }

    fn body_entry(&mut self, key: u64) -> Step {
        match key {
            1 => self.outputs()?,
            4 => self.nonempty_set("the certificates")?,
            5 => self.nonempty_map("the withdrawals")?,
            9 => self.multiasset("the mint", Quantity::NonZero)?,
            13 => self.nonempty_set("the collateral inputs")?,
            14 => self.nonempty_set("the required signers")?,
            16 => self.output()?,
            18 => self.nonempty_set("the reference inputs")?,
            19 => self.votes()?,
            20 => self.nonempty_set("the proposal procedures")?,
            22 => {
                if self.d.u64()? == 0 {
                    return Err(Walk::Rule(
                        "DeserialiseFailure",
                        "the treasury donation is 0, but it must be a positive coin".into(),
                    ));
                }
            }
            _ => self.d.skip()?,
        }
        Ok(())
    }

    fn witnesses(&mut self) -> Step {
        self.keyed("the witness set", |w, key| w.witness_entry(key))
    }

    fn witness_entry(&mut self, key: u64) -> Step {
        let what = match key {
            0 => "the verification-key witnesses",
            1 => "the native scripts",
            2 => "the bootstrap witnesses",
            3 => "the Plutus V1 scripts",
            4 => "the Plutus data",
            5 => "the redeemers",
            6 => "the Plutus V2 scripts",
            7 => "the Plutus V3 scripts",
            _ => return Ok(self.d.skip()?),
        };
        match self.d.datatype()? {
            Type::Map | Type::MapIndef => self.nonempty_map(what),
            _ => self.nonempty_set(what),
        }
    }

    fn outputs(&mut self) -> Step {
        let n = self.array_len()?;
        for _ in 0..n {
            self.output()?;
        }
        Ok(())
    }

    /// A legacy (`[address, value, ?datum_hash]`) or post-Alonzo (`{0: address,
    /// 1: value, ?2, ?3}`) output; its value's assets must be positive.
    fn output(&mut self) -> Step {
        match self.d.datatype()? {
            Type::Array | Type::ArrayIndef => {
                let n = self.array_len()?;
                self.d.skip()?;
                self.value()?;
                for _ in 2..n {
                    self.d.skip()?;
                }
            }
            _ => self.keyed("an output", |w, key| {
                if key == 1 { w.value() } else { Ok(w.d.skip()?) }
            })?,
        }
        Ok(())
    }

    fn value(&mut self) -> Step {
        match self.d.datatype()? {
            Type::Array | Type::ArrayIndef => {
                self.d.array()?;
                self.d.skip()?; // coin
                self.multiasset("an output's assets", Quantity::Positive)
            }
            _ => Ok(self.d.skip()?),
        }
    }

    /// `{+ policy => {+ name => quantity}}`.
    fn multiasset(&mut self, what: &str, rule: Quantity) -> Step {
        let policies = self.map_len()?;
        if policies == 0 {
            return Err(empty(what));
        }
        let mut seen = HashSet::new();
        for _ in 0..policies {
            let policy = self.d.bytes()?.to_vec();
            if !seen.insert(policy.clone()) {
                return Err(Walk::Rule(
                    "DeserialiseFailure",
                    format!("{what} names policy {} twice", hex::encode(&policy)),
                ));
            }
            let names = self.map_len()?;
            if names == 0 {
                return Err(empty(&format!(
                    "{what}' bundle of policy {}",
                    hex::encode(&policy)
                )));
            }
            let mut names_seen = HashSet::new();
            for _ in 0..names {
                let name = self.d.bytes()?.to_vec();
                if !names_seen.insert(name.clone()) {
                    return Err(Walk::Rule(
                        "DeserialiseFailure",
                        format!("{what} names asset {} twice", hex::encode(&name)),
                    ));
                }
                let q: i128 = self.d.int()?.into();
                let bad = match rule {
                    Quantity::NonZero => q == 0,
                    Quantity::Positive => q <= 0,
                };
                if bad {
                    return Err(Walk::Rule(
                        "DeserialiseFailure",
                        format!(
                            "{what} hold {q} of asset {}.{}, but the quantity must be {}",
                            hex::encode(&policy),
                            hex::encode(&name),
                            rule.says()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `{+ voter => {+ gov_action_id => voting_procedure}}`.
    fn votes(&mut self) -> Step {
        let voters = self.map_len()?;
        if voters == 0 {
            return Err(empty("the voting procedures"));
        }
        for _ in 0..voters {
            self.d.skip()?;
            self.nonempty_map("a voter's votes")?;
        }
        Ok(())
    }

    /// A set (tagged 258 or not) with at least one element.
    fn nonempty_set(&mut self, what: &str) -> Step {
        if self.d.datatype()? == Type::Tag {
            let tag = self.d.tag()?;
            if tag != Tag::new(SET_TAG) {
                return Err(Walk::Cbor);
            }
        }
        let n = self.array_len()?;
        if n == 0 {
            return Err(empty(what));
        }
        for _ in 0..n {
            self.d.skip()?;
        }
        Ok(())
    }

    fn nonempty_map(&mut self, what: &str) -> Step {
        let n = self.map_len()?;
        if n == 0 {
            return Err(empty(what));
        }
        let mut seen = HashSet::new();
        for _ in 0..n {
            let start = self.d.position();
            self.d.skip()?;
            let key = self.d.input()[start..self.d.position()].to_vec();
            if !seen.insert(key) {
                return Err(Walk::Rule(
                    "DeserialiseFailure",
                    format!("{what} has a key twice"),
                ));
            }
            self.d.skip()?;
        }
        Ok(())
    }

    /// A definite array's length. Indefinite lengths are legal CBOR but no
    /// Cardano encoder writes them in a transaction's structure; this walk
    /// leaves such bytes to pallas' decoder.
    fn array_len(&mut self) -> Step<u64> {
        match self.d.array()? {
            Some(n) => Ok(n),
            None => Err(Walk::Cbor),
        }
    }

    /// A definite map's length (see [`Walker::array_len`]).
    fn map_len(&mut self) -> Step<u64> {
        match self.d.map()? {
            Some(n) => Ok(n),
            None => Err(Walk::Cbor),
        }
    }

    /// Auxiliary data: Shelley's metadata map, Allegra's `[metadata, scripts]`,
    /// or Alonzo's `#6.259({? 0: metadata, …})`.
    fn auxiliary(&mut self) -> Step {
        match self.d.datatype()? {
            Type::Null | Type::Undefined => Ok(()),
            Type::Map | Type::MapIndef => self.metadata(),
            Type::Array | Type::ArrayIndef => {
                self.d.array()?;
                self.metadata()?;
                Ok(())
            }
            Type::Tag => {
                if self.d.tag()? != Tag::new(AUX_TAG) {
                    return Err(Walk::Cbor);
                }
                let n = self.map_len()?;
                for _ in 0..n {
                    if self.d.u64()? == 0 {
                        self.metadata()?;
                    } else {
                        self.d.skip()?;
                    }
                }
                Ok(())
            }
            _ => Err(Walk::Cbor),
        }
    }

    /// `{* label => metadatum}`.
    fn metadata(&mut self) -> Step {
        let n = self.map_len()?;
        for _ in 0..n {
            let label = self.d.u64()?;
            self.metadatum(label)?;
        }
        Ok(())
    }

    fn metadatum(&mut self, label: u64) -> Step {
        let too_long = |kind: &str, len: usize| {
            Walk::Rule(
                "InvalidMetadata",
                format!(
                    "metadata label {label} holds a {kind} of {len} bytes; at most {MAX_METADATUM_BYTES} are allowed (split longer values into a list)"
                ),
            )
        };
        match self.d.datatype()? {
            Type::String => {
                let s = self.d.str()?;
                if s.len() > MAX_METADATUM_BYTES {
                    return Err(too_long("text string", s.len()));
                }
            }
            Type::Bytes => {
                let b = self.d.bytes()?;
                if b.len() > MAX_METADATUM_BYTES {
                    return Err(too_long("byte string", b.len()));
                }
            }
            Type::StringIndef | Type::BytesIndef => {
                return Err(Walk::Rule(
                    "InvalidMetadata",
                    format!("metadata label {label} holds an indefinite-length string"),
                ));
            }
            Type::Array | Type::ArrayIndef => match self.d.array()? {
                Some(n) => {
                    for _ in 0..n {
                        self.metadatum(label)?;
                    }
                }
                None => {
                    while self.d.datatype()? != Type::Break {
                        self.metadatum(label)?;
                    }
                    self.d.skip()?;
                }
            },
            Type::Map | Type::MapIndef => match self.d.map()? {
                Some(n) => {
                    for _ in 0..2 * n {
                        self.metadatum(label)?;
                    }
                }
                None => {
                    while self.d.datatype()? != Type::Break {
                        self.metadatum(label)?;
                        self.metadatum(label)?;
                    }
                    self.d.skip()?;
                }
            },
            _ => self.d.skip()?,
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Quantity {
    NonZero,
    Positive,
}

impl Quantity {
    fn says(self) -> &'static str {
        match self {
            Quantity::NonZero => "non-zero",
            Quantity::Positive => "positive",
        }
    }
}
