//! Phase 1 and the whole submit pipeline.
//!
//! Order: decode → our own checks (the rules pallas-validate 1.4 gets wrong or
//! skips, with precise messages) → `pallas_validate::phase1::validate_tx` for
//! the structural witness rules (needed scripts, datums, exact redeemer set,
//! required signers, script-data hash, auxiliary-data hash) → phase 2.
//!
//! Workarounds for pallas-validate 1.4 (see the README):
//! - its value-preservation check ignores deposits, refunds and withdrawals:
//!   we check preservation ourselves and hand pallas a UTxO view in which the
//!   net of those amounts is added to (or taken from) spent inputs, so its own
//!   check agrees; nothing else pallas checks reads input values.
//! - its min-fee, min-UTxO, TTL, total-ex-units (a no-op) and value-size
//!   checks are weaker than the ledger's: ours run first and are exact.
//! - it can panic on malformed input (`unwrap`s): it runs under `catch_unwind`.

use std::collections::{BTreeMap, HashMap, HashSet};

use pallas_addresses::{Address, ShelleyPaymentPart};
use pallas_codec::minicbor;
use pallas_crypto::hash::{Hash, Hasher};
use pallas_crypto::key::ed25519::{PublicKey, Signature};
use pallas_primitives::conway::{Certificate, DRep, NativeScript, Redeemers, TransactionOutput};
use pallas_primitives::{NetworkId, TransactionInput};
use pallas_traverse::{Era, MultiEraInput, MultiEraOutput, MultiEraTx};
use pallas_validate::utils::{Environment, MultiEraProtocolParameters, UTxOs};

use crate::error::LedgerError;
use crate::fees;
use crate::ledger::{Account, Credential, LedgerView, Lookup, OutRef, ValidatedTx};
use crate::params::Params;
use crate::phase2::{self, Declared, Phase2Error, SlotConfig};
use crate::value::{OutputView, Value, script_hash};

/// What the rules read besides the ledger.
pub(crate) struct Env<'a> {
    pub params: &'a Params,
    pub pallas_params: &'a MultiEraProtocolParameters,
    pub slot: u64,
    pub slot_config: SlotConfig,
    pub network_magic: u32,
}

/// Where a needed script comes from.
#[derive(Clone)]
enum ScriptSrc {
    Native(NativeScript),
    Plutus(u8),
}

fn pay_part(addr: &[u8]) -> Option<ShelleyPaymentPart> {
    match Address::from_bytes(addr).ok()? {
        Address::Shelley(s) => Some(s.payment().clone()),
        _ => None,
    }
}

/// Evaluates a native script against the key hashes that signed and the
/// transaction's validity interval (the ledger's `evalTimelock`).
fn eval_native(
    s: &NativeScript,
    signers: &HashSet<Hash<28>>,
    start: Option<u64>,
    ttl: Option<u64>,
) -> bool {
    match s {
        NativeScript::ScriptPubkey(h) => signers.contains(h),
        NativeScript::ScriptAll(xs) => xs.iter().all(|x| eval_native(x, signers, start, ttl)),
        NativeScript::ScriptAny(xs) => xs.iter().any(|x| eval_native(x, signers, start, ttl)),
        NativeScript::ScriptNOfK(n, xs) => {
            xs.iter()
                .filter(|x| eval_native(x, signers, start, ttl))
                .count() as i64
                >= *n
        }
        NativeScript::InvalidBefore(s) => start.is_some_and(|st| st >= *s),
        NativeScript::InvalidHereafter(s) => ttl.is_some_and(|t| t <= *s),
    }
}

fn render(v: &Value) -> String {
    let mut s = format!("{} lovelace", v.coin);
    for (p, names) in &v.assets {
        for (n, q) in names {
            s.push_str(&format!(" + {q} {p}.{}", hex::encode(n)));
        }
    }
    s
}

fn output_cbor(o: &TransactionOutput<'_>) -> Vec<u8> {
    minicbor::to_vec(o).unwrap_or_default()
}

/// Validates `bytes` against `view` and returns what applying it changes.
pub(crate) fn validate_tx(
    bytes: &[u8],
    env: &Env<'_>,
    view: &dyn LedgerView,
) -> Result<ValidatedTx, LedgerError> {
    let p = env.params;
    crate::decoder::check(bytes)?;
    let mtx = MultiEraTx::decode_for_era(Era::Conway, bytes)
        .map_err(|e| LedgerError::Decode(e.to_string()))?;
    crate::decoder::check_metadata(bytes)?;
    let tx = mtx
        .as_conway()
        .ok_or_else(|| LedgerError::Decode("not a Conway transaction".into()))?;
    let body = &tx.transaction_body;
    let wits = &tx.transaction_witness_set;
    let hash = mtx.hash();
    let size = bytes.len() as u64;
    let is_valid = tx.success;

    // --- Unsupported features --------------------------------------------
    if body.voting_procedures.is_some()
        || body.proposal_procedures.is_some()
        || body.treasury_value.is_some()
    {
        return Err(LedgerError::Unsupported(
            "governance (votes, proposals, treasury value)".into(),
        ));
    }
    if wits.bootstrap_witness.is_some() {
        return Err(LedgerError::Unsupported("Byron bootstrap witnesses".into()));
    }

    // --- Inputs exist, are unspent, and are disjoint from reference inputs --
    if body.inputs.is_empty() {
        return Err(LedgerError::NoInputs);
    }
    let inputs: Vec<OutRef> = {
        let mut v: Vec<OutRef> = body.inputs.iter().map(OutRef::from).collect();
        v.sort();
        v.dedup();
        v
    };
    let collateral: Vec<OutRef> = body
        .collateral
        .as_ref()
        .map(|c| c.iter().map(OutRef::from).collect())
        .unwrap_or_default();
    let references: Vec<OutRef> = body
        .reference_inputs
        .as_ref()
        .map(|c| c.iter().map(OutRef::from).collect())
        .unwrap_or_default();
    let mut resolved: BTreeMap<OutRef, Vec<u8>> = BTreeMap::new();
    for (kind, list) in [
        ("input", &inputs),
        ("collateral input", &collateral),
        ("reference input", &references),
    ] {
        for r in list {
            match view.utxo(r) {
                Lookup::Unspent(b) => {
                    resolved.insert(*r, b.to_vec());
                }
                Lookup::SpentByPending(by) => {
                    return Err(LedgerError::DoubleSpend {
                        input: r.to_string(),
                        kind,
                        by: by.to_string(),
                    });
                }
                Lookup::Unknown => {
                    return Err(LedgerError::UnknownInput {
                        input: r.to_string(),
                        kind,
                    });
                }
            }
        }
    }
    let outs: HashMap<OutRef, OutputView> = resolved
        .iter()
        .map(|(r, b)| {
            OutputView::decode(b)
                .map(|v| (*r, v))
                .map_err(|e| LedgerError::Decode(format!("stored output {r}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if let Some(r) = references.iter().find(|r| inputs.contains(r)) {
        return Err(LedgerError::NonDisjointRefInputs {
            input: r.to_string(),
        });
    }

    // --- Validity interval [start, ttl) --------------------------------------
    let start = body.validity_interval_start;
    let ttl = body.ttl;
    if let Some(s) = start
        && env.slot < s
    {
        return Err(LedgerError::NotYetValid {
            slot: env.slot,
            start: s,
        });
    }
    if let Some(t) = ttl
        && env.slot >= t
    {
        return Err(LedgerError::Expired {
            slot: env.slot,
            ttl: t,
        });
    }

    // --- Network ids -------------------------------------------------------
    let all_outputs: Vec<(String, &TransactionOutput<'_>)> = body
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| (format!("output #{i}"), o))
        .chain(
            body.collateral_return
                .iter()
                .map(|o| ("collateral return".to_string(), o)),
        )
        .collect();
    for (which, o) in &all_outputs {
        let v = OutputView::from_output(o);
        match Address::from_bytes(&v.address) {
            Ok(Address::Shelley(s)) if s.network().value() == 0 => {}
            Ok(Address::Byron(_)) => {
                return Err(LedgerError::Unsupported(format!(
                    "a Byron address in {which}"
                )));
            }
            _ => {
                return Err(LedgerError::WrongNetwork {
                    what: format!("the address of {which}"),
                    rule: "WrongNetwork",
                });
            }
        }
    }
    if let Some(NetworkId::Mainnet) = body.network_id {
        return Err(LedgerError::WrongNetwork {
            what: "the body's network_id".into(),
            rule: "WrongNetworkInTxBody",
        });
    }
    if let Some(w) = &body.withdrawals {
        for ra in w.keys() {
            if ra.first().map(|h| h & 0x0f) != Some(0) {
                return Err(LedgerError::WrongNetwork {
                    what: format!("reward account {}", hex::encode(ra.as_slice())),
                    rule: "WrongNetworkWithdrawal",
                });
            }
        }
    }

    // --- Size ------------------------------------------------------------------
    if size > p.max_tx_size {
        return Err(LedgerError::TxTooLarge {
            size,
            max: p.max_tx_size,
        });
    }

    // --- Scripts available -------------------------------------------------
    let mut scripts: HashMap<Hash<28>, ScriptSrc> = HashMap::new();
    if let Some(ns) = &wits.native_script {
        for s in ns.iter() {
            scripts.insert(
                script_hash(0, s.raw_cbor()),
                ScriptSrc::Native((**s).clone()),
            );
        }
    }
    for (tag, list) in [
        (
            1u8,
            wits.plutus_v1_script
                .as_ref()
                .map(|l| l.iter().map(|s| s.as_ref().to_vec()).collect::<Vec<_>>()),
        ),
        (
            2,
            wits.plutus_v2_script
                .as_ref()
                .map(|l| l.iter().map(|s| s.as_ref().to_vec()).collect()),
        ),
        (
            3,
            wits.plutus_v3_script
                .as_ref()
                .map(|l| l.iter().map(|s| s.as_ref().to_vec()).collect()),
        ),
    ] {
        for s in list.unwrap_or_default() {
            scripts.insert(script_hash(tag, &s), ScriptSrc::Plutus(tag));
        }
    }
    let witnessed: HashSet<Hash<28>> = scripts.keys().copied().collect();
    let mut ref_script_bytes: u64 = 0;
    for r in inputs.iter().chain(references.iter()) {
        if let Some(v) = outs.get(r)
            && let Some((tag, b)) = &v.script_ref
        {
            ref_script_bytes += b.len() as u64;
            // The ledger wants witness-set scripts ⊆ needed \ provided by
            // reference. Only reference inputs count here: pallas-validate does
            // not take a spent input's reference script as the witness, so such
            // a spend still needs it in the witness set (devnet/README.md).
            let hash = script_hash(*tag, b);
            if witnessed.contains(&hash) && references.contains(r) {
                return Err(LedgerError::ExtraneousScript {
                    hash: hash.to_string(),
                });
            }
            let src = if *tag == 0 {
                match minicbor::decode::<NativeScript>(b) {
                    Ok(ns) => ScriptSrc::Native(ns),
                    Err(_) => continue,
                }
            } else {
                ScriptSrc::Plutus(*tag)
            };
            scripts.entry(script_hash(*tag, b)).or_insert(src);
        }
    }
    if ref_script_bytes > fees::MAX_REF_SCRIPT_SIZE_PER_TX {
        return Err(LedgerError::RefScriptsTooBig {
            size: ref_script_bytes,
            max: fees::MAX_REF_SCRIPT_SIZE_PER_TX,
        });
    }

    // --- Redeemers and execution units ----------------------------------------
    let mut declared: Vec<Declared> = Vec::new();
    if let Some(rs) = &wits.redeemer {
        match &**rs {
            Redeemers::List(l) => {
                for r in l {
                    declared.push(Declared {
                        tag: r.tag as u8,
                        index: r.index,
                        mem: r.ex_units.mem,
                        steps: r.ex_units.steps,
                        data_hash: Hasher::<256>::hash(
                            &minicbor::to_vec(&r.data).unwrap_or_default(),
                        )
                        .to_string(),
                        script: None,
                    });
                }
            }
            Redeemers::Map(m) => {
                for (k, v) in m.iter() {
                    declared.push(Declared {
                        tag: k.tag as u8,
                        index: k.index,
                        mem: v.ex_units.mem,
                        steps: v.ex_units.steps,
                        data_hash: Hasher::<256>::hash(
                            &minicbor::to_vec(&v.data).unwrap_or_default(),
                        )
                        .to_string(),
                        script: None,
                    });
                }
            }
        }
    }
    let (ex_mem, ex_steps) = declared.iter().fold((0u64, 0u64), |(m, s), d| {
        (m.saturating_add(d.mem), s.saturating_add(d.steps))
    });
    if ex_mem > p.max_tx_ex_mem || ex_steps > p.max_tx_ex_steps {
        return Err(LedgerError::ExUnitsTooBig {
            mem: ex_mem,
            steps: ex_steps,
            max_mem: p.max_tx_ex_mem,
            max_steps: p.max_tx_ex_steps,
        });
    }

    // --- Fee -----------------------------------------------------------------
    let min_fee = fees::min_fee(p, size, ex_mem, ex_steps, ref_script_bytes);
    if body.fee < min_fee.total() {
        return Err(LedgerError::FeeTooSmall {
            paid: body.fee,
            min: min_fee.total(),
            size_fee: min_fee.size_fee,
            script_fee: min_fee.script_fee,
            ref_script_fee: min_fee.ref_script_fee,
        });
    }

    // --- Outputs: min-UTxO and value size ---------------------------------------
    for (which, o) in &all_outputs {
        let cbor = output_cbor(o);
        let v = OutputView::from_output(o);
        let min = fees::min_utxo(p, cbor.len() as u64);
        if v.value.coin < min {
            return Err(LedgerError::OutputTooSmall {
                which: which.clone(),
                coin: v.value.coin,
                min,
                size: cbor.len() as u64,
            });
        }
        let vsize = minicbor::to_vec(v.value.to_conway())
            .unwrap_or_default()
            .len() as u64;
        if vsize > p.max_val_size {
            return Err(LedgerError::OutputValueTooBig {
                which: which.clone(),
                size: vsize,
                max: p.max_val_size,
            });
        }
    }

    // --- Collateral -----------------------------------------------------------
    let mut collateral_net = Value::default();
    if !declared.is_empty() {
        if collateral.is_empty() {
            return Err(LedgerError::NoCollateral);
        }
        if collateral.len() as u64 > p.max_collateral_inputs {
            return Err(LedgerError::TooManyCollateralInputs {
                count: collateral.len() as u64,
                max: p.max_collateral_inputs,
            });
        }
        let mut total = Value::default();
        for r in &collateral {
            let v = &outs[r];
            if !matches!(pay_part(&v.address), Some(ShelleyPaymentPart::Key(_))) {
                return Err(LedgerError::CollateralNotVKey {
                    input: r.to_string(),
                });
            }
            total = total
                .checked_add(&v.value)
                .ok_or_else(|| LedgerError::Decode("collateral overflows".into()))?;
        }
        let ret = body
            .collateral_return
            .as_ref()
            .map(|o| OutputView::from_output(o).value)
            .unwrap_or_default();
        let Some(net) = total.checked_sub(&ret) else {
            if ret.coin > total.coin {
                return Err(LedgerError::InsufficientCollateral {
                    provided: 0,
                    required: fees::min_collateral(p, body.fee),
                    percent: p.collateral_percent,
                });
            }
            return Err(LedgerError::CollateralHasAssets);
        };
        if !net.is_pure_ada() {
            return Err(LedgerError::CollateralHasAssets);
        }
        if (net.coin as u128) * 100 < (body.fee as u128) * (p.collateral_percent as u128) {
            return Err(LedgerError::InsufficientCollateral {
                provided: net.coin,
                required: fees::min_collateral(p, body.fee),
                percent: p.collateral_percent,
            });
        }
        if let Some(t) = body.total_collateral
            && t != net.coin
        {
            return Err(LedgerError::IncorrectTotalCollateral {
                declared: t,
                actual: net.coin as i128,
            });
        }
        collateral_net = net;
    }

    // --- Signatures -------------------------------------------------------------
    let mut signers: HashSet<Hash<28>> = HashSet::new();
    if let Some(vk) = &wits.vkeywitness {
        for w in vk.iter() {
            let ok = (|| {
                let pk = PublicKey::try_from(w.vkey.as_slice()).ok()?;
                let sig = Signature::try_from(w.signature.as_slice()).ok()?;
                Some(pk.verify(hash.as_ref(), &sig))
            })();
            if ok != Some(true) {
                return Err(LedgerError::InvalidSignature {
                    vkey: hex::encode(w.vkey.as_slice()),
                });
            }
            signers.insert(Hasher::<224>::hash(w.vkey.as_slice()));
        }
    }

    // --- Certificates, withdrawals, deposits -----------------------------------
    let mut overlay: HashMap<Credential, Option<Account>> = HashMap::new();
    let mut updates: Vec<(Credential, Option<Account>)> = Vec::new();
    let get = |overlay: &HashMap<Credential, Option<Account>>, c: &Credential| match overlay.get(c)
    {
        Some(a) => *a,
        None => view.account(c),
    };
    let mut deposits: u64 = 0;
    let mut refunds: u64 = 0;
    let mut needs: Vec<(Credential, String)> = Vec::new();
    if let Some(certs) = &body.certificates {
        for (index, cert) in certs.iter().enumerate() {
            let cert_err = |reason: String, rule: &'static str| LedgerError::Certificate {
                index,
                reason,
                rule,
            };
            match cert {
                Certificate::StakeRegistration(c) | Certificate::Reg(c, _) => {
                    let cred = Credential::from_pallas(c);
                    let deposit = match cert {
                        Certificate::Reg(_, coin) => {
                            if *coin != p.key_deposit {
                                return Err(cert_err(
                                    format!(
                                        "the registration deposit {coin} differs from key_deposit {}",
                                        p.key_deposit
                                    ),
                                    "ConwayIncorrectDepositDELEG",
                                ));
                            }
                            needs.push((cred, format!("certificate #{index} (registration)")));
                            *coin
                        }
                        _ => p.key_deposit,
                    };
                    if get(&overlay, &cred).is_some() {
                        return Err(cert_err(
                            format!("{cred} is already registered"),
                            "StakeKeyRegisteredDELEG",
                        ));
                    }
                    let acct = Some(Account {
                        balance: 0,
                        deposit,
                    });
                    overlay.insert(cred, acct);
                    updates.push((cred, acct));
                    deposits += deposit;
                }
                Certificate::StakeDeregistration(c) | Certificate::UnReg(c, _) => {
                    let cred = Credential::from_pallas(c);
                    needs.push((cred, format!("certificate #{index} (deregistration)")));
                    let Some(acct) = get(&overlay, &cred) else {
                        return Err(cert_err(
                            format!("{cred} is not registered"),
                            "StakeKeyNotRegisteredDELEG",
                        ));
                    };
                    if acct.balance != 0 {
                        return Err(cert_err(
                            format!(
                                "{cred} still holds {} lovelace of rewards; withdraw them in the same transaction first",
                                acct.balance
                            ),
                            "StakeKeyHasNonZeroRewardAccountBalanceDELEG",
                        ));
                    }
                    if let Certificate::UnReg(_, coin) = cert
                        && *coin != acct.deposit
                    {
                        return Err(cert_err(
                            format!(
                                "the refund {coin} differs from the deposit {} paid at registration",
                                acct.deposit
                            ),
                            "ConwayIncorrectDepositDELEG",
                        ));
                    }
                    overlay.insert(cred, None);
                    updates.push((cred, None));
                    refunds += acct.deposit;
                }
                Certificate::VoteDeleg(c, DRep::Abstain | DRep::NoConfidence) => {
                    let cred = Credential::from_pallas(c);
                    needs.push((cred, format!("certificate #{index} (vote delegation)")));
                    if get(&overlay, &cred).is_none() {
                        return Err(cert_err(
                            format!("{cred} is not registered"),
                            "StakeKeyNotRegisteredDELEG",
                        ));
                    }
                }
                Certificate::StakeDelegation(..)
                | Certificate::VoteDeleg(..)
                | Certificate::StakeVoteDeleg(..)
                | Certificate::StakeRegDeleg(..)
                | Certificate::VoteRegDeleg(..)
                | Certificate::StakeVoteRegDeleg(..) => {
                    return Err(LedgerError::Unsupported(format!(
                        "certificate #{index}: delegation to a stake pool or DRep (the devnet has none)"
                    )));
                }
                _ => {
                    return Err(LedgerError::Unsupported(format!(
                        "certificate #{index}: pool, DRep and committee certificates"
                    )));
                }
            }
        }
    }
    let mut withdrawn: u64 = 0;
    if let Some(w) = &body.withdrawals {
        for (ra, amount) in w.iter() {
            let account = hex::encode(ra.as_slice());
            let cred = match (ra.first().map(|h| h >> 4), ra.get(1..29)) {
                (Some(0xe), Some(h)) => Credential::Key(Hash::from(h)),
                (Some(0xf), Some(h)) => Credential::Script(Hash::from(h)),
                _ => {
                    return Err(LedgerError::Withdrawal {
                        account,
                        reason: "not a reward address".into(),
                        rule: "WithdrawalsNotInRewardsCERTS",
                    });
                }
            };
            let Some(acct) = get(&overlay, &cred) else {
                return Err(LedgerError::Withdrawal {
                    account,
                    reason: format!(
                        "{cred} is not registered; register it (a stake registration certificate) first"
                    ),
                    rule: "WithdrawalsNotInRewardsCERTS",
                });
            };
            if *amount != acct.balance {
                return Err(LedgerError::Withdrawal {
                    account,
                    reason: format!(
                        "it withdraws {amount} but the balance is {}; withdraw exactly the balance",
                        acct.balance
                    ),
                    rule: "WithdrawalsNotInRewardsCERTS",
                });
            }
            if *amount > 0 {
                let a = Some(Account { balance: 0, ..acct });
                overlay.insert(cred, a);
                updates.push((cred, a));
            }
            withdrawn += amount;
            needs.push((cred, format!("withdrawal from {account}")));
        }
    }

    // --- Value preservation ---------------------------------------------------
    let mut consumed = Value::lovelace(withdrawn.saturating_add(refunds));
    for r in &inputs {
        consumed = consumed
            .checked_add(&outs[r].value)
            .ok_or_else(|| LedgerError::Decode("input values overflow".into()))?;
    }
    let mut produced = Value::lovelace(
        body.fee
            .saturating_add(deposits)
            .saturating_add(body.donation.as_ref().map(u64::from).unwrap_or(0)),
    );
    for o in &body.outputs {
        produced = produced
            .checked_add(&OutputView::from_output(o).value)
            .ok_or_else(|| LedgerError::Decode("output values overflow".into()))?;
    }
    if let Some(mint) = &body.mint {
        for (policy, names) in mint.iter() {
            for (name, q) in names.iter() {
                let q = i64::from(q);
                let delta = Value::default().with_asset(*policy, name, q.unsigned_abs());
                if q > 0 {
                    consumed = consumed.checked_add(&delta).unwrap_or(consumed);
                } else {
                    produced = produced.checked_add(&delta).unwrap_or(produced);
                }
            }
        }
    }
    if consumed != produced {
        return Err(LedgerError::ValueNotConserved {
            consumed: render(&consumed),
            produced: render(&produced),
        });
    }

    // --- Witnesses for credentials, and native scripts -------------------------
    let mut needed_scripts: Vec<(Hash<28>, String)> = Vec::new();
    for r in &inputs {
        if let Some(ShelleyPaymentPart::Script(h)) = pay_part(&outs[r].address) {
            needed_scripts.push((h, format!("spending {r}")));
        }
    }
    if let Some(mint) = &body.mint {
        for policy in mint.keys() {
            needed_scripts.push((*policy, format!("minting policy {policy}")));
        }
    }
    for (cred, purpose) in &needs {
        match cred {
            Credential::Key(h) => {
                if !signers.contains(h) {
                    return Err(LedgerError::MissingVKeyWitness {
                        key_hash: h.to_string(),
                        purpose: purpose.clone(),
                    });
                }
            }
            Credential::Script(h) => needed_scripts.push((*h, purpose.clone())),
        }
    }
    for (h, purpose) in &needed_scripts {
        match scripts.get(h) {
            None => {
                return Err(LedgerError::MissingScript {
                    hash: h.to_string(),
                    purpose: purpose.clone(),
                });
            }
            Some(ScriptSrc::Native(ns)) => {
                if !eval_native(ns, &signers, start, ttl) {
                    return Err(LedgerError::NativeScriptFailed {
                        hash: h.to_string(),
                        purpose: purpose.clone(),
                    });
                }
            }
            Some(ScriptSrc::Plutus(_)) => {}
        }
    }

    // --- pallas-validate's structural rules ------------------------------------
    let delta: i128 = withdrawn as i128 + refunds as i128 - deposits as i128;
    run_pallas(&mtx, &resolved, &inputs, &collateral, delta, env)?;

    // --- Phase 2 -----------------------------------------------------------------
    // Which script each redeemer runs (for the V3 unit rule and for reports).
    let policies: Vec<Hash<28>> = body
        .mint
        .as_ref()
        .map(|m| m.keys().copied().collect())
        .unwrap_or_default();
    let reward_creds: Vec<Hash<28>> = body
        .withdrawals
        .as_ref()
        .map(|w| {
            w.keys()
                .filter_map(|ra| ra.get(1..29).map(Hash::<28>::from))
                .collect()
        })
        .unwrap_or_default();
    let cert_creds: Vec<Option<Hash<28>>> = body
        .certificates
        .as_ref()
        .map(|cs| {
            cs.iter()
                .map(|c| match c {
                    Certificate::StakeRegistration(c)
                    | Certificate::StakeDeregistration(c)
                    | Certificate::Reg(c, _)
                    | Certificate::UnReg(c, _)
                    | Certificate::VoteDeleg(c, _) => Some(*Credential::from_pallas(c).hash()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for d in &mut declared {
        let h = match d.tag {
            0 => inputs
                .get(d.index as usize)
                .and_then(|r| match pay_part(&outs[r].address) {
                    Some(ShelleyPaymentPart::Script(h)) => Some(h),
                    _ => None,
                }),
            1 => policies.get(d.index as usize).copied(),
            2 => cert_creds.get(d.index as usize).copied().flatten(),
            3 => reward_creds.get(d.index as usize).copied(),
            _ => None,
        };
        d.script = h.and_then(|h| match scripts.get(&h) {
            Some(ScriptSrc::Plutus(lang)) => Some((*lang, h.to_string())),
            _ => None,
        });
    }

    let mut redeemers = Vec::new();
    let mut script_failed = false;
    if !declared.is_empty() {
        let utxo_bytes: Vec<(Vec<u8>, Vec<u8>)> = resolved
            .iter()
            .map(|(r, b)| (r.to_cbor(), b.clone()))
            .collect();
        match phase2::run(bytes, &utxo_bytes, &declared, p, env.slot_config) {
            Ok(r) => redeemers = r,
            Err(Phase2Error::Structural(e)) => return Err(e),
            Err(Phase2Error::Script(e)) => {
                if is_valid {
                    return Err(e);
                }
                script_failed = true;
            }
        }
    }
    if !is_valid && !script_failed {
        return Err(LedgerError::ValidTagMismatch);
    }

    // --- What applying it changes ---------------------------------------------------
    let (consumed_refs, produced_outs, fee, account_updates) = if is_valid {
        let produced: Vec<(OutRef, Vec<u8>)> = body
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| (OutRef::new(hash, i as u32), output_cbor(o)))
            .collect();
        (inputs.clone(), produced, body.fee, updates)
    } else {
        let produced = body
            .collateral_return
            .iter()
            .map(|o| (OutRef::new(hash, body.outputs.len() as u32), output_cbor(o)))
            .collect();
        (
            collateral.clone(),
            produced,
            collateral_net.coin,
            Vec::new(),
        )
    };
    Ok(ValidatedTx {
        hash,
        cbor: bytes.to_vec(),
        is_valid,
        fee,
        consumed: consumed_refs,
        produced: produced_outs,
        account_updates,
        redeemers,
        size,
        ex_mem,
        ex_steps,
        deposit: if is_valid {
            deposits as i64 - refunds as i64
        } else {
            0
        },
        invalid_before: start,
        invalid_hereafter: ttl,
    })
}

/// Adds `delta` lovelace to the spent inputs (spreading a negative delta over
/// them) so pallas-validate's deposit-blind preservation check sees a balanced
/// transaction. Collateral-only inputs are left alone.
fn adjusted_outputs(
    resolved: &BTreeMap<OutRef, Vec<u8>>,
    inputs: &[OutRef],
    collateral: &[OutRef],
    delta: i128,
) -> BTreeMap<OutRef, Vec<u8>> {
    let mut out = resolved.clone();
    if delta == 0 {
        return out;
    }
    let mut remaining = delta;
    let order: Vec<&OutRef> = inputs
        .iter()
        .filter(|r| !collateral.contains(r))
        .chain(inputs.iter().filter(|r| collateral.contains(r)))
        .collect();
    for r in order {
        if remaining == 0 {
            break;
        }
        let Some(bytes) = resolved.get(r) else {
            continue;
        };
        let Ok(o) = minicbor::decode::<TransactionOutput<'_>>(bytes) else {
            continue;
        };
        let coin = OutputView::from_output(&o).value.coin as i128;
        let new_coin = if remaining > 0 {
            coin + remaining
        } else {
            (coin + remaining).max(0)
        };
        remaining -= new_coin - coin;
        let new_coin = new_coin.min(u64::MAX as i128) as u64;
        let re = match o {
            TransactionOutput::PostAlonzo(k) => {
                let mut inner = (*k).clone();
                inner.value = match inner.value {
                    pallas_primitives::conway::Value::Coin(_) => {
                        pallas_primitives::conway::Value::Coin(new_coin)
                    }
                    pallas_primitives::conway::Value::Multiasset(_, ma) => {
                        pallas_primitives::conway::Value::Multiasset(new_coin, ma)
                    }
                };
                minicbor::to_vec(TransactionOutput::PostAlonzo(
                    pallas_codec::utils::KeepRaw::from(inner),
                ))
            }
            TransactionOutput::Legacy(k) => {
                let mut inner = (*k).clone();
                inner.amount = match inner.amount {
                    pallas_primitives::alonzo::Value::Coin(_) => {
                        pallas_primitives::alonzo::Value::Coin(new_coin)
                    }
                    pallas_primitives::alonzo::Value::Multiasset(_, ma) => {
                        pallas_primitives::alonzo::Value::Multiasset(new_coin, ma)
                    }
                };
                minicbor::to_vec(TransactionOutput::Legacy(
                    pallas_codec::utils::KeepRaw::from(inner),
                ))
            }
        };
        if let Ok(b) = re {
            out.insert(*r, b);
        }
    }
    out
}

fn run_pallas(
    mtx: &MultiEraTx<'_>,
    resolved: &BTreeMap<OutRef, Vec<u8>>,
    inputs: &[OutRef],
    collateral: &[OutRef],
    delta: i128,
    env: &Env<'_>,
) -> Result<(), LedgerError> {
    let adjusted = adjusted_outputs(resolved, inputs, collateral, delta);
    let keys: Vec<(TransactionInput, &Vec<u8>)> = adjusted
        .iter()
        .map(|(r, b)| {
            (
                TransactionInput {
                    transaction_id: r.tx_hash,
                    index: r.index as u64,
                },
                b,
            )
        })
        .collect();
    let mut utxos: UTxOs<'_> = UTxOs::new();
    for (ti, b) in &keys {
        let out = MultiEraOutput::decode(Era::Conway, b)
            .map_err(|e| LedgerError::Decode(format!("stored output: {e}")))?;
        utxos.insert(MultiEraInput::from_alonzo_compatible(ti), out);
    }
    let environment = Environment {
        prot_params: env.pallas_params.clone(),
        prot_magic: env.network_magic,
        block_slot: env.slot,
        network_id: 0,
        acnt: Some(pallas_validate::utils::AccountState::default()),
    };
    let mut cert_state = pallas_validate::utils::CertState::default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pallas_validate::phase1::validate_tx(mtx, 0, &environment, &utxos, &mut cert_state)
    }));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LedgerError::Phase1 {
            rule: crate::ledger_rules::ledger_rule(&e, mtx),
            pallas: format!("{e:?}"),
            message: e.to_string(),
        }),
        Err(_) => Err(LedgerError::Phase1 {
            rule: "DeserialiseFailure",
            pallas: "panic".into(),
            message: "pallas-validate panicked on this transaction (malformed input)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_script_timelocks_use_the_validity_interval() {
        let signers = HashSet::new();
        let after = NativeScript::InvalidBefore(10);
        assert!(!eval_native(&after, &signers, None, None));
        assert!(!eval_native(&after, &signers, Some(9), None));
        assert!(eval_native(&after, &signers, Some(10), None));
        let before = NativeScript::InvalidHereafter(10);
        assert!(eval_native(&before, &signers, None, Some(10)));
        assert!(!eval_native(&before, &signers, None, Some(11)));
        let two_of = NativeScript::ScriptNOfK(1, vec![after, before]);
        assert!(eval_native(&two_of, &signers, Some(10), Some(20)));
    }
}
