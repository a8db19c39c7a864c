//! The ledger's reasons for refusing a transaction, parsed once from the
//! provider's message into [`LedgerRule`]s, so that no caller decides anything
//! on the text of an error.
//!
//! cardano-node (through Blockfrost's `/tx/submit`) and the devnet both name
//! the Conway ledger's predicate failures in their messages, e.g.
//! `… (ConwayUtxowFailure (UtxoFailure (BadInputsUTxO (fromList […])))) …`.

macro_rules! ledger_rules {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// A Conway ledger predicate failure, named as the node names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(non_camel_case_types)]
        pub enum LedgerRule {
            $($(#[$doc])* $name,)*
        }

        impl LedgerRule {
            /// Every rule this client knows.
            pub const ALL: &'static [LedgerRule] = &[$(LedgerRule::$name,)*];

            /// The node's name of the rule.
            pub fn name(self) -> &'static str {
                match self {
                    $(LedgerRule::$name => stringify!($name),)*
                }
            }
        }
    };
}

ledger_rules! {
    /// An input (or collateral, or reference input) is not in the UTxO set:
    /// spent already, or never created.
    BadInputsUTxO,
    /// The transaction spends no input.
    InputSetEmptyUTxO,
    /// The current slot is outside the validity interval.
    OutsideValidityIntervalUTxO,
    /// The fee is below the minimum.
    FeeTooSmallUTxO,
    /// Consumed and produced value differ.
    ValueNotConservedUTxO,
    /// An output holds less than its minimum ADA.
    BabbageOutputTooSmallUTxO,
    /// An output's value is too large to serialise.
    OutputTooBigUTxO,
    /// The transaction is larger than the maximum.
    MaxTxSizeUTxO,
    /// The declared execution units exceed the per-transaction maximum.
    ExUnitsTooBigUTxO,
    /// An output's address is for another network.
    WrongNetwork,
    /// The body's network id is another network's.
    WrongNetworkInTxBody,
    /// Scripts run but no collateral is given.
    NoCollateralInputs,
    /// More collateral inputs than allowed.
    TooManyCollateralInputs,
    /// Collateral is not enough.
    InsufficientCollateral,
    /// Collateral holds other assets than ADA (without a return).
    CollateralContainsNonADA,
    /// `total_collateral` disagrees with the collateral.
    IncorrectTotalCollateralField,
    /// Collateral sits at a script address.
    ScriptsNotPaidUTxO,
    /// A signature a required signer or input needs is missing.
    MissingVKeyWitnessesUTXOW,
    /// A signature does not verify.
    InvalidWitnessesUTXOW,
    /// A script the transaction needs is not provided.
    MissingScriptWitnessesUTXOW,
    /// A script is provided that nothing needs.
    ExtraneousScriptWitnessesUTXOW,
    /// A script witness cannot be decoded.
    MalformedScriptWitnesses,
    /// A script purpose has no redeemer.
    MissingRedeemers,
    /// A redeemer points at nothing.
    ExtraRedeemers,
    /// A datum a spent script output needs is missing.
    MissingRequiredDatums,
    /// A datum is provided that nothing needs.
    NotAllowedSupplementalDatums,
    /// The script-data hash does not match.
    PPViewHashesDontMatch,
    /// The metadata hash is there without metadata.
    MissingTxMetadata,
    /// Metadata is there without its hash.
    MissingTxBodyMetadataHash,
    /// The metadata does not hash to the body's hash.
    ConflictingMetadataHash,
    /// A script's outcome disagrees with the transaction's `is_valid` flag
    /// (a script failed).
    ValidationTagMismatch,
    /// The bytes are not a transaction.
    DeserialiseFailure,
    /// An input is already spent by a transaction in the mempool (the devnet's
    /// name; a node reports `BadInputsUTxO`).
    DoubleSpend,
}

impl std::fmt::Display for LedgerRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The rules a provider's rejection message names, in order of appearance,
/// each once. Words are read whole, so `BadInputsUTxOs` names nothing.
pub fn rules_named_in(reason: &str) -> Vec<LedgerRule> {
    let mut found = Vec::new();
    for word in reason.split(|c: char| !c.is_ascii_alphanumeric()) {
        if let Some(rule) = LedgerRule::ALL.iter().find(|r| r.name() == word)
            && !found.contains(rule)
        {
            found.push(*rule);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_message_is_read_into_its_rules() {
        let node = r#""transaction submit error ShelleyTxValidationError ShelleyBasedEraConway (ApplyTxError (ConwayUtxowFailure (UtxoFailure (BadInputsUTxO (fromList [TxIn (TxId {unTxId = SafeHash \"ab\"}) (TxIx 0)]))) :| [ConwayUtxowFailure (UtxoFailure (ValueNotConservedUTxO (MaryValue (Coin 1) (MultiAsset (fromList []))))),ConwayUtxowFailure (UtxoFailure (BadInputsUTxO (fromList [])))]))""#;
        assert_eq!(
            rules_named_in(node),
            vec![LedgerRule::BadInputsUTxO, LedgerRule::ValueNotConservedUTxO]
        );
        assert_eq!(
            rules_named_in("BadInputsUTxOs and FeeTooSmall"),
            Vec::<LedgerRule>::new(),
            "only whole names count"
        );
        for rule in LedgerRule::ALL {
            assert_eq!(rules_named_in(&format!("({} x)", rule.name())), vec![*rule]);
        }
    }
}
