//! Deploy: publish the escrow script for reference, and register its stake
//! credential (unless it already is) so that its `withdraw` handler can run.

use pallas_crypto::hash::Hash;
use pallas_primitives::StakeCredential;
use pallas_primitives::conway::Certificate;

use super::BuildError;
use crate::blueprint::EscrowScript;
use crate::network::Network;
use crate::tx::{Draft, FeeParams, ScriptRef, TxOutput, Utxo, Value};

/// Publishes `script` once per network, funded by `funding`:
///
/// - output 0 carries the script as a reference script and sits at the escrow
///   address itself, without a job token: no handler ever lets such a UTxO be
///   spent, so the reference script can never be removed (its deposit is the
///   price of that);
/// - with `register`, a `stake_registration` certificate (Conway tag 0, which
///   needs no script witness) registers the script's stake credential, paying
///   `key_deposit`. Without it (the credential is registered already: anyone
///   can register a script credential, and a second registration would fail
///   the whole transaction) there is no certificate and no deposit.
pub fn deploy(
    script: &EscrowScript,
    network: Network,
    fee_params: &FeeParams,
    key_deposit: u64,
    funding: Vec<Utxo>,
    register: bool,
) -> Result<Draft, BuildError> {
    if funding.is_empty() {
        return Err(BuildError::Invalid(
            "deploying needs a funded wallet UTxO".into(),
        ));
    }
    let mut holder = TxOutput {
        script_ref: Some(ScriptRef::PlutusV3(script.cbor().to_vec())),
        ..TxOutput::new(
            script.address(network).to_vec(),
            Value::lovelace(u64::from(u32::MAX)),
        )
    };
    holder.value.lovelace = fee_params.min_ada(holder.to_cbor().len());
    Ok(Draft {
        inputs: funding,
        outputs: vec![holder],
        certificates: if register {
            vec![Certificate::StakeRegistration(StakeCredential::ScriptHash(
                Hash::new(script.hash()),
            ))]
        } else {
            Vec::new()
        },
        deposit: if register { key_deposit } else { 0 },
        ..Draft::default()
    })
}
