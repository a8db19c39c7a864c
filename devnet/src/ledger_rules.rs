//! The Conway ledger's names for what pallas-validate refuses.
//!
//! pallas-validate names its failures after its own checks (`MetadataHash`,
//! `VKWitnessMissing`, …); clients and operators know the ledger's predicate
//! failures (`MissingTxMetadata`, `MissingVKeyWitnessesUTXOW`, …), which is what
//! cardano-node and Blockfrost report. [`ledger_rule`] maps one to the other;
//! where one pallas failure stands for several ledger rules (`MetadataHash`),
//! the transaction decides which.

use pallas_codec::utils::Nullable;
use pallas_traverse::MultiEraTx;
use pallas_validate::utils::{PostAlonzoError as P, ValidationError};

/// The ledger's predicate failure for pallas-validate's `e` on `tx`.
pub(crate) fn ledger_rule(e: &ValidationError, tx: &MultiEraTx<'_>) -> &'static str {
    let ValidationError::PostAlonzo(e) = e else {
        return "DeserialiseFailure";
    };
    match e {
        P::UnknownTxSize | P::InputDecoding | P::AddressDecoding | P::NegativeValue => {
            "DeserialiseFailure"
        }
        P::TxInsEmpty => "InputSetEmptyUTxO",
        P::InputNotInUTxO | P::CollateralNotInUTxO | P::ReferenceInputNotInUTxO => "BadInputsUTxO",
        P::BlockPrecedesValInt | P::BlockExceedsValInt => "OutsideValidityIntervalUTxO",
        P::FeeBelowMin => "FeeTooSmallUTxO",
        P::CollateralMissing => "NoCollateralInputs",
        P::TooManyCollaterals => "TooManyCollateralInputs",
        P::CollateralNotVKeyLocked => "ScriptsNotPaidUTxO",
        P::CollateralMinLovelace => "InsufficientCollateral",
        P::NonLovelaceCollateral | P::CollateralWrongAssets => "CollateralContainsNonADA",
        P::CollateralAnnotation => "IncorrectTotalCollateralField",
        P::PreservationOfValue => "ValueNotConservedUTxO",
        P::MinLovelaceUnreached => "BabbageOutputTooSmallUTxO",
        P::MaxValSizeExceeded => "OutputTooBigUTxO",
        P::OutputWrongNetworkID => "WrongNetwork",
        P::TxWrongNetworkID => "WrongNetworkInTxBody",
        P::TxExUnitsExceeded => "ExUnitsTooBigUTxO",
        P::RedeemerMissing => "MissingRedeemers",
        P::UnneededRedeemer => "ExtraRedeemers",
        P::MaxTxSizeExceeded => "MaxTxSizeUTxO",
        P::MintingLacksPolicy(_) | P::ScriptWitnessMissing => "MissingScriptWitnessesUTXOW",
        P::MetadataHash => metadata_rule(tx),
        P::DatumMissing => "MissingRequiredDatums",
        P::UnneededDatum => "NotAllowedSupplementalDatums",
        P::UnneededNativeScript
        | P::UnneededPlutusV1Script
        | P::UnneededPlutusV2Script
        | P::UnneededPlutusV3Script => "ExtraneousScriptWitnessesUTXOW",
        P::ReqSignerMissing | P::VKWitnessMissing => "MissingVKeyWitnessesUTXOW",
        P::ReqSignerWrongSig | P::VKWrongSignature => "InvalidWitnessesUTXOW",
        P::UnsupportedPlutusLanguage => "MalformedScriptWitnesses",
        P::ScriptIntegrityHash => "PPViewHashesDontMatch",
        // The enum is non-exhaustive: a failure added by a later pallas.
        _ => "UnmappedPallasFailure",
    }
}

/// Which of the three metadata rules pallas' one `MetadataHash` stands for.
fn metadata_rule(tx: &MultiEraTx<'_>) -> &'static str {
    let Some(t) = tx.as_conway() else {
        return "ConflictingMetadataHash";
    };
    let hash_in_body = t.transaction_body.auxiliary_data_hash.is_some();
    let has_metadata = matches!(t.auxiliary_data, Nullable::Some(_));
    match (hash_in_body, has_metadata) {
        (true, false) => "MissingTxMetadata",
        (false, true) => "MissingTxBodyMetadataHash",
        _ => "ConflictingMetadataHash",
    }
}
