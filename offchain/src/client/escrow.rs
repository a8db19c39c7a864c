//! [`EscrowClient`]: the escrow's transactions against a live chain.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::record::{
    FastResult, LockRecord, METADATA_LABEL, ResultLocation, SettleRecord, SpecSource, SubmitRecord,
};
use super::{ClientError, Deployed, DeploymentInfo, JobSpecDoc};
use crate::Blueprint;
use crate::builder::{self, Deployment, EscrowUtxo, Finished, JobTerms};
use crate::chain::{AwaitOptions, ChainError, ChainProvider, Confirmation, LedgerRule, TxId};
use crate::evaluate::{EvalError, ExUnits};
use crate::fetch::{AddressPolicy, FetchKind, PeerFetcher};
use crate::network::Network;
use crate::protocol::{Asset, OutputReference, Settlement};
use crate::tx::{Draft, TxOutput, Utxo, Value};
use crate::wallet::{Signer, Wallet};

/// A transaction stays valid this long after it is built.
pub const TX_VALIDITY_MS: u64 = 10 * 60 * 1000;

/// How long [`EscrowClient::send`] waits for a sent transaction to appear in a
/// block before it sends the same signed transaction again.
pub const RESEND_AFTER: Duration = Duration::from_secs(10);

/// The smallest pure-ADA UTxO used as collateral (collateral is 150% of a fee
/// of at most about 2 ADA), and the size of one created when none exists.
pub const COLLATERAL_LOVELACE: u64 = 5_000_000;

/// Lovelace set aside for a transaction's fee when selecting coins.
pub(super) const FEE_ALLOWANCE: u64 = 3_000_000;

/// Where the result of each fast-path settlement is served, by job id.
pub type ResultUrls = std::collections::BTreeMap<[u8; 32], String>;

/// One job to lock: its terms and where its spec is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    /// Who pays whom, how much, checked by whom, by when.
    pub terms: JobTerms,
    /// The spec (its hash is `terms.spec_hash`).
    pub spec: SpecSource,
}

/// A balanced, signed transaction, not yet submitted (print it for `--dry-run`,
/// write it for `--out-file`, or [`EscrowClient::send`] it).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The transaction and its costs.
    pub finished: Finished,
    /// The jobs it creates or settles.
    pub job_ids: Vec<[u8; 32]>,
}

impl Prepared {
    /// The transaction id.
    pub fn tx_id(&self) -> TxId {
        self.finished.tx.id
    }

    /// The fee in lovelace.
    pub fn fee(&self) -> u64 {
        self.finished.fee
    }

    /// The transaction's CBOR (signed by the keys given; unsigned when none were).
    pub fn cbor(&self) -> &[u8] {
        &self.finished.tx.cbor
    }

    /// Execution units declared, summed over its redeemers.
    pub fn ex_units(&self) -> ExUnits {
        self.finished.draft.total_ex_units()
    }
}

/// What the escrow address holds: genuine escrows, and what was skipped.
#[derive(Debug, Clone, Default)]
pub struct EscrowScan {
    /// Escrows with their job token and a well-formed datum.
    pub escrows: Vec<EscrowUtxo>,
    /// Everything else at the address (the reference script, dust, junk), with the reason.
    pub skipped: Vec<(OutputReference, String)>,
}

/// The escrow's operations against a chain, for one deployment.
///
/// Inputs spent by a transaction this client sent are held back from coin
/// selection until the transaction is confirmed, so one client can build
/// several transactions from the same wallet without double-spending.
pub struct EscrowClient {
    chain: Arc<dyn ChainProvider>,
    deployment: Deployment,
    info: DeploymentInfo,
    max_tx_size: u64,
    pending: Mutex<HashSet<OutputReference>>,
    create_collateral: bool,
    unsigned: bool,
    fetcher: PeerFetcher,
}

impl std::fmt::Debug for EscrowClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscrowClient")
            .field("deployment", &self.info)
            .finish_non_exhaustive()
    }
}

/// Prices, limits and evaluator of the chain, as the builders take them.
struct ChainContext {
    deployment_parts: (crate::tx::FeeParams, crate::Evaluator, Vec<i64>),
    key_deposit: u64,
    max_tx_size: u64,
}

async fn chain_context(chain: &dyn ChainProvider) -> Result<ChainContext, ClientError> {
    let params = chain.protocol_params().await?;
    let sc = chain.slot_config().await?;
    let cost_model = params.cost_model_v3().ok_or_else(|| {
        ClientError::Deployment(
            "the chain's protocol parameters have no Plutus V3 cost model".into(),
        )
    })?;
    Ok(ChainContext {
        deployment_parts: (params.fee_params(), params.evaluator(sc), cost_model),
        key_deposit: params.key_deposit,
        max_tx_size: params.max_tx_size,
    })
}

fn pallas_address(bytes: &[u8]) -> Result<pallas_addresses::Address, ClientError> {
    pallas_addresses::Address::from_bytes(bytes)
        .map_err(|e| ClientError::Invalid(format!("malformed address: {e}")))
}

impl EscrowClient {
    /// Connects to the deployment `info` describes, checking it against the
    /// blueprint and the chain.
    pub async fn connect(
        chain: Arc<dyn ChainProvider>,
        info: &DeploymentInfo,
    ) -> Result<EscrowClient, ClientError> {
        let network = info.network()?;
        let script = Blueprint::embedded().escrow(&info.settlement()?)?;
        if hex::encode(script.hash()) != info.script_hash {
            return Err(ClientError::Deployment(format!(
                "the deployment file names script {} but this build's escrow for that asset is {}: redeploy with this build, or use the build that deployed it",
                info.script_hash,
                hex::encode(script.hash())
            )));
        }
        let script_ref = info.script_ref()?;
        let script_utxo = chain.utxo_by_ref(&script_ref).await?.ok_or_else(|| {
            ClientError::Deployment(format!(
                "the reference script UTxO {} is spent: redeploy",
                info.script_ref
            ))
        })?;
        if script_utxo.output.script_ref.is_none() {
            return Err(ClientError::Deployment(format!(
                "{} carries no reference script: check the deployment file",
                info.script_ref
            )));
        }
        let ctx = chain_context(chain.as_ref()).await?;
        let (fee_params, evaluator, cost_model_v3) = ctx.deployment_parts;
        let fetcher = PeerFetcher::new(AddressPolicy::default_for(network))?;
        Ok(EscrowClient {
            fetcher,
            deployment: Deployment {
                script,
                script_utxo,
                network,
                fee_params,
                evaluator,
                cost_model_v3,
            },
            info: info.clone(),
            max_tx_size: ctx.max_tx_size,
            chain,
            pending: Mutex::new(HashSet::new()),
            create_collateral: true,
            unsigned: false,
        })
    }

    /// Deploys the escrow for `settlement` on `network`: publishes the script
    /// as a reference script and registers its stake credential, paid by
    /// `wallet`; waits for one confirmation.
    pub async fn deploy(
        chain: Arc<dyn ChainProvider>,
        network: Network,
        settlement: &Asset,
        wallet: &Wallet,
    ) -> Result<Deployed, ClientError> {
        check_wallet_network(wallet, network)?;
        let script = Blueprint::embedded().escrow(settlement)?;
        let register = chain
            .reward_account(&script.stake_address(network))
            .await?
            .is_none();
        let ctx = chain_context(chain.as_ref()).await?;
        let (fee_params, evaluator, cost_model_v3) = ctx.deployment_parts;
        let address = wallet.address().to_bytes();
        let utxos = chain.utxos_at(&pallas_address(&address)?).await?;
        let needed = Value::lovelace(ctx.key_deposit + 25_000_000);
        let funding = select_coins(&utxos, &needed)?;
        let draft = builder::deploy(
            &script,
            network,
            &fee_params,
            ctx.key_deposit,
            funding,
            register,
        )?;
        let deployment = Deployment {
            script_utxo: Utxo {
                reference: OutputReference {
                    transaction_id: [0; 32],
                    output_index: 0,
                },
                output: draft.outputs[0].clone(),
            },
            script,
            network,
            fee_params,
            evaluator,
            cost_model_v3,
        };
        let finished = deployment.finish(draft, &address, &[wallet], 0)?;
        let id = chain.submit(&finished.tx.cbor).await?;
        chain
            .await_tx(&id, &AwaitOptions::new(1, Duration::from_secs(300)))
            .await?;
        let script_ref = OutputReference {
            transaction_id: id,
            output_index: 0,
        };
        Ok(Deployed {
            info: DeploymentInfo::new(network, settlement, &deployment.script.hash(), &script_ref),
            registered_stake: register,
        })
    }

    /// Builds transactions without creating collateral on the fly (a dry run
    /// must not submit anything): a wallet without a pure-ADA UTxO is refused.
    pub fn without_collateral_creation(mut self) -> EscrowClient {
        self.create_collateral = false;
        self
    }

    /// Builds transactions for external signing: nothing is signed, the fee
    /// is sized for the witnesses the signers will add, and no collateral is
    /// created on the fly. The wallets given only pay and receive change.
    pub fn unsigned(mut self) -> EscrowClient {
        self.unsigned = true;
        self.create_collateral = false;
        self
    }

    /// Evaluates, balances and signs (or, [`EscrowClient::unsigned`], sizes
    /// the fee for `signers`' witnesses without signing).
    pub(super) fn finish(
        &self,
        draft: Draft,
        change: &[u8],
        signers: &[&dyn Signer],
        extra: usize,
    ) -> Result<Finished, ClientError> {
        let finished = if self.unsigned {
            self.deployment
                .finish(draft, change, &[], extra + signers.len())?
        } else {
            self.deployment.finish(draft, change, signers, extra)?
        };
        Ok(finished)
    }

    /// How this client fetches URLs from chain data (specs; results and
    /// attestations for its callers): the network's default address policy and
    /// limits unless [`EscrowClient::set_fetcher`] replaced it.
    pub fn fetcher(&self) -> &PeerFetcher {
        &self.fetcher
    }

    /// Fetches with `fetcher` from now on (an operator's own address policy and
    /// limits).
    pub fn set_fetcher(&mut self, fetcher: PeerFetcher) {
        self.fetcher = fetcher;
    }

    /// The deployment (script, reference UTxO, prices, evaluator).
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The deployment file's contents.
    pub fn info(&self) -> &DeploymentInfo {
        &self.info
    }

    /// The chain.
    pub fn chain(&self) -> &Arc<dyn ChainProvider> {
        &self.chain
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.deployment.network
    }

    /// The slot a transaction built now lands in.
    pub async fn now_slot(&self) -> Result<u64, ClientError> {
        Ok(self.chain.current_slot().await?)
    }

    /// POSIX ms at the start of `slot`.
    pub fn slot_time(&self, slot: u64) -> u64 {
        self.deployment.evaluator.slot_config.slot_to_posix_ms(slot)
    }

    /// The escrow address's UTxOs, sorted into escrows and everything else.
    pub async fn scan(&self) -> Result<EscrowScan, ClientError> {
        let address = self.deployment.script.address(self.network()).to_vec();
        let utxos = self.chain.utxos_at(&pallas_address(&address)?).await?;
        let mut scan = EscrowScan::default();
        for utxo in utxos {
            let reference = utxo.reference;
            match EscrowUtxo::from_utxo(&self.deployment, utxo) {
                Ok(e) => scan.escrows.push(e),
                Err(e) => scan.skipped.push((reference, e.to_string())),
            }
        }
        Ok(scan)
    }

    /// Every genuine escrow of this deployment (dust and junk skipped).
    pub async fn escrows(&self) -> Result<Vec<EscrowUtxo>, ClientError> {
        Ok(self.scan().await?.escrows)
    }

    /// The escrow of `job_id`, found by its job token.
    pub async fn escrow(&self, job_id: &[u8; 32]) -> Result<EscrowUtxo, ClientError> {
        let address = self.deployment.script.address(self.network()).to_vec();
        let found = self
            .chain
            .utxos_at_with_asset(
                &pallas_address(&address)?,
                &self.deployment.script.policy_id(),
                job_id,
            )
            .await?;
        found
            .into_iter()
            .find_map(|u| EscrowUtxo::from_utxo(&self.deployment, u).ok())
            .filter(|e| e.datum.job_id == *job_id)
            .ok_or_else(|| ClientError::NotAnEscrow(hex::encode(job_id)))
    }

    /// `wallet`'s UTxOs, less those spent by transactions this client sent
    /// and has not yet seen confirmed.
    pub async fn wallet_utxos(&self, wallet: &Wallet) -> Result<Vec<Utxo>, ClientError> {
        check_wallet_network(wallet, self.network())?;
        self.unspent_at(&wallet.address().to_bytes()).await
    }

    /// The UTxOs at `address` (raw bytes), less those spent by transactions this
    /// client sent and has not yet seen confirmed.
    pub(super) async fn unspent_at(&self, address: &[u8]) -> Result<Vec<Utxo>, ClientError> {
        let utxos = self.chain.utxos_at(&pallas_address(address)?).await?;
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        Ok(utxos
            .into_iter()
            .filter(|u| !pending.contains(&u.reference))
            .collect())
    }

    /// A pure-ADA UTxO of `wallet` for collateral: an existing one, or (unless
    /// disabled) a fresh one sent from the wallet to itself and confirmed.
    pub async fn collateral(&self, wallet: &Wallet) -> Result<Utxo, ClientError> {
        let utxos = self.wallet_utxos(wallet).await?;
        if let Some(u) = pure_ada(&utxos) {
            return Ok(u);
        }
        if !self.create_collateral {
            return Err(ClientError::InsufficientFunds(format!(
                "the wallet has no pure-ADA UTxO of at least {} ADA for collateral: send that much ADA to {}",
                COLLATERAL_LOVELACE / 1_000_000,
                wallet.address().to_bech32()
            )));
        }
        let prepared = self
            .pay_self(wallet, &[COLLATERAL_LOVELACE], utxos)
            .map_err(|e| match e {
                ClientError::InsufficientFunds(m) => ClientError::InsufficientFunds(format!(
                    "no collateral UTxO, and none can be made: {m}"
                )),
                other => other,
            })?;
        self.send(&prepared, 1).await?;
        let id = prepared.tx_id();
        self.wallet_utxos(wallet)
            .await?
            .into_iter()
            .find(|u| u.reference.transaction_id == id && u.output.value.assets.is_empty())
            .ok_or_else(|| ClientError::Invalid("the collateral UTxO did not appear".into()))
    }

    /// Inputs covering `needed`, a collateral UTxO, and the wallet's UTxOs.
    /// Funds are checked before a collateral UTxO is made, so a wallet that
    /// cannot pay spends nothing.
    async fn funds(
        &self,
        wallet: &Wallet,
        needed: &Value,
    ) -> Result<(Vec<Utxo>, Utxo, Vec<Utxo>), ClientError> {
        let mut with_collateral = needed.clone();
        if pure_ada(&self.wallet_utxos(wallet).await?).is_none() {
            with_collateral.lovelace += COLLATERAL_LOVELACE + FEE_ALLOWANCE;
        }
        select_coins(&self.wallet_utxos(wallet).await?, &with_collateral)?;
        let collateral = self.collateral(wallet).await?;
        let utxos = self.wallet_utxos(wallet).await?;
        let funding = select_coins(&utxos, needed)?;
        Ok((funding, collateral, utxos))
    }

    /// Splits `wallet`'s funds so that it has `count` more pure-ADA UTxOs of
    /// `lovelace` each (a batch lock needs one seed UTxO per job).
    pub async fn split(
        &self,
        wallet: &Wallet,
        count: usize,
        lovelace: u64,
    ) -> Result<Prepared, ClientError> {
        let utxos = self.wallet_utxos(wallet).await?;
        self.pay_self(wallet, &vec![lovelace; count], utxos)
    }

    fn pay_self(
        &self,
        wallet: &Wallet,
        amounts: &[u64],
        utxos: Vec<Utxo>,
    ) -> Result<Prepared, ClientError> {
        let address = wallet.address().to_bytes();
        let total: u64 = amounts.iter().sum();
        let funding = select_coins(&utxos, &Value::lovelace(total + FEE_ALLOWANCE))?;
        let draft = Draft {
            inputs: funding,
            outputs: amounts
                .iter()
                .map(|a| TxOutput::new(address.clone(), Value::lovelace(*a)))
                .collect(),
            ..Draft::default()
        };
        let finished = self.finish(draft, &address, &[wallet], 0)?;
        Ok(Prepared {
            finished,
            job_ids: Vec::new(),
        })
    }

    /// Locks `jobs` in one transaction, paid by `wallet`, each job's spec (or
    /// its URL) in the lock record.
    pub async fn lock(
        &self,
        wallet: &Wallet,
        jobs: Vec<LockRequest>,
    ) -> Result<Prepared, ClientError> {
        if jobs.is_empty() {
            return Err(ClientError::Invalid("nothing to lock".into()));
        }
        let now = self.now_slot().await?;
        let sc = self.deployment.evaluator.slot_config;
        let now_ms = sc.slot_to_posix_ms(now);
        let mut invalid_from = sc.posix_ms_to_slot(now_ms + TX_VALIDITY_MS);
        for job in &jobs {
            if job.terms.submit_by <= now_ms {
                return Err(ClientError::Invalid(format!(
                    "the submit deadline ({} ms) is not in the future (now {now_ms} ms): give a later deadline",
                    job.terms.submit_by
                )));
            }
            // The lock must end strictly before the submit deadline.
            invalid_from = invalid_from.min(sc.posix_ms_to_slot(job.terms.submit_by - 1));
        }
        if invalid_from <= now {
            return Err(ClientError::Invalid(
                "the submit deadline is too close to lock before it: give the provider more time"
                    .into(),
            ));
        }
        let settlement = self.deployment.script.settlement().clone();
        let price: u64 = jobs.iter().map(|j| j.terms.price).sum();
        let needed = Value::lovelace(jobs.len() as u64 * 3_000_000 + FEE_ALLOWANCE).with_asset(
            settlement.policy,
            &settlement.name,
            price,
        );
        let (mut funding, collateral, utxos) = self.funds(wallet, &needed).await?;
        if funding.len() < jobs.len() {
            // One seed input per job: add the wallet's largest remaining UTxOs.
            let mut rest: Vec<&Utxo> = utxos
                .iter()
                .filter(|u| !funding.iter().any(|f| f.reference == u.reference))
                .collect();
            rest.sort_by_key(|u| std::cmp::Reverse(u.output.value.lovelace));
            for u in rest.into_iter().take(jobs.len() - funding.len()) {
                funding.push(u.clone());
            }
        }
        if funding.len() < jobs.len() {
            return Err(ClientError::Invalid(format!(
                "locking {} jobs in one transaction needs {} wallet UTxOs (one seed each), but the wallet has {}: split the wallet's funds first",
                jobs.len(),
                jobs.len(),
                funding.len()
            )));
        }
        let terms: Vec<JobTerms> = jobs.iter().map(|j| j.terms.clone()).collect();
        // Job ids follow from the seeds, which the builder picks from the sorted inputs.
        let mut draft = builder::lock(
            &self.deployment,
            &terms,
            funding,
            collateral,
            invalid_from,
            Default::default(),
        )?;
        let job_ids: Vec<[u8; 32]> = draft
            .sorted_inputs()
            .iter()
            .take(jobs.len())
            .map(crate::protocol::job_id)
            .collect();
        let record = LockRecord {
            jobs: job_ids
                .iter()
                .copied()
                .zip(jobs.into_iter().map(|j| j.spec))
                .collect(),
        };
        draft.metadata = record.to_metadata();
        let address = wallet.address().to_bytes();
        let finished = self.finish(draft, &address, &[wallet], 0)?;
        self.check_limits(&finished)?;
        Ok(Prepared { finished, job_ids })
    }

    /// Submits `result_hash` for `escrow`, signed and paid by the agent's
    /// wallet; the submit record names `result_url` and the lock transaction.
    pub async fn submit(
        &self,
        agent: &Wallet,
        escrow: &EscrowUtxo,
        result_hash: [u8; 32],
        result_url: &str,
    ) -> Result<Prepared, ClientError> {
        if agent.key_hash() != escrow.datum.agent {
            return Err(ClientError::Invalid(format!(
                "job {} names agent key {} but this wallet's key is {}: use the agent key the job was locked for",
                hex::encode(escrow.datum.job_id),
                hex::encode(escrow.datum.agent),
                hex::encode(agent.key_hash())
            )));
        }
        let now = self.now_slot().await?;
        let sc = self.deployment.evaluator.slot_config;
        let last = sc.posix_ms_to_slot(escrow.datum.submit_by);
        let invalid_from = last.min(sc.posix_ms_to_slot(sc.slot_to_posix_ms(now) + TX_VALIDITY_MS));
        if invalid_from <= now {
            return Err(ClientError::Invalid(format!(
                "job {} is past its submit deadline: it can only be refunded",
                hex::encode(escrow.datum.job_id)
            )));
        }
        let (funding, collateral, _) = self.funds(agent, &Value::lovelace(FEE_ALLOWANCE)).await?;
        let mut draft = builder::submit(
            &self.deployment,
            escrow,
            result_hash,
            funding,
            collateral,
            invalid_from,
        )?;
        draft.metadata = SubmitRecord {
            job_id: escrow.datum.job_id,
            lock_tx: escrow.utxo.reference.transaction_id,
            result_url: result_url.to_string(),
        }
        .to_metadata();
        let address = agent.address().to_bytes();
        let finished = self.finish(draft, &address, &[agent], 0)?;
        Ok(Prepared {
            finished,
            job_ids: vec![escrow.datum.job_id],
        })
    }

    /// Settles as many of `items` as fit in one transaction (size and
    /// execution limits), fees paid by `payer` (anyone: a keeper, the
    /// provider, the requester). Returns the transaction and the items left
    /// for the next one. Fast-path settlements need their result's URL: use
    /// [`EscrowClient::settle_with_results`].
    #[allow(clippy::type_complexity)]
    pub async fn settle(
        &self,
        payer: &Wallet,
        items: Vec<(EscrowUtxo, Settlement)>,
    ) -> Result<(Prepared, Vec<(EscrowUtxo, Settlement)>), ClientError> {
        self.settle_with_results(payer, items, &ResultUrls::new())
            .await
    }

    /// [`EscrowClient::settle`], where `results` names the URL serving the
    /// result of each fast-path settlement (`FastClaim`, `FastRefundRejected`)
    /// by job id: the transaction carries them as its settle record, as a
    /// Submit carries its submit record.
    #[allow(clippy::type_complexity)]
    pub async fn settle_with_results(
        &self,
        payer: &Wallet,
        mut items: Vec<(EscrowUtxo, Settlement)>,
        results: &ResultUrls,
    ) -> Result<(Prepared, Vec<(EscrowUtxo, Settlement)>), ClientError> {
        if items.is_empty() {
            return Err(ClientError::Invalid("nothing to settle".into()));
        }
        for (escrow, settlement) in &items {
            if settlement.fast_result_hash().is_some()
                && !results.contains_key(&escrow.datum.job_id)
            {
                return Err(ClientError::Invalid(format!(
                    "job {} settles on the fast path but no result URL was given: the settlement must record where its result is served",
                    hex::encode(escrow.datum.job_id)
                )));
            }
        }
        let now = self.now_slot().await?;
        let sc = self.deployment.evaluator.slot_config;
        let ttl = TX_VALIDITY_MS / u64::from(sc.slot_length_ms.max(1));
        let (funding, collateral, _) = self.funds(payer, &Value::lovelace(FEE_ALLOWANCE)).await?;
        let balance = self.reward_balance().await?;
        let address = payer.address().to_bytes();
        let attempt = |n: usize| -> Result<Prepared, ClientError> {
            let batch: Vec<_> = items[..n].to_vec();
            let job_ids = batch.iter().map(|(e, _)| e.datum.job_id).collect();
            let record = SettleRecord {
                results: batch
                    .iter()
                    .filter_map(|(e, s)| {
                        Some(FastResult {
                            job_id: e.datum.job_id,
                            result_hash: s.fast_result_hash()?,
                            result_url: results[&e.datum.job_id].clone(),
                        })
                    })
                    .collect(),
            };
            let mut draft = builder::settle(
                &self.deployment,
                batch,
                funding.clone(),
                collateral.clone(),
                now,
                ttl,
                balance,
            )?;
            if !record.results.is_empty() {
                draft.metadata = record.to_metadata();
            }
            let finished = self.finish(draft, &address, &[payer], 0)?;
            self.check_limits(&finished)?;
            Ok(Prepared { finished, job_ids })
        };
        let too_big = |e: &ClientError| {
            matches!(
                e,
                ClientError::Build(builder::BuildError::Script(EvalError::OverBudget { .. }))
            ) || matches!(e, ClientError::OverLimit { .. })
        };
        // The largest prefix that fits: try all, then binary-search.
        let prepared = match attempt(items.len()) {
            Ok(p) => p,
            Err(e) if too_big(&e) && items.len() > 1 => {
                let (mut lo, mut hi) = (0usize, items.len());
                let mut best: Option<Prepared> = None;
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    match attempt(mid) {
                        Ok(p) => {
                            lo = mid;
                            best = Some(p);
                        }
                        Err(e) if too_big(&e) => hi = mid,
                        Err(e) => return Err(e),
                    }
                }
                best.ok_or(e)?
            }
            Err(e) => return Err(e),
        };
        let rest = items.split_off(prepared.job_ids.len());
        Ok((prepared, rest))
    }

    /// The escrow's reward account balance, which every settlement withdraws
    /// whole (0 when the account is not registered: the ledger then says so).
    pub async fn reward_balance(&self) -> Result<u64, ClientError> {
        let stake = self.deployment.script.stake_address(self.network());
        Ok(self
            .chain
            .reward_account(&stake)
            .await?
            .map_or(0, |a| a.withdrawable))
    }

    /// Cancels a job that has no result yet: the requester (paying) and the
    /// job's agent sign. Without `agent`, the transaction is sized for the
    /// agent's witness, to be added by the agent (`--out-file`).
    pub async fn cancel(
        &self,
        requester: &Wallet,
        agent: Option<&dyn Signer>,
        escrow: &EscrowUtxo,
    ) -> Result<Prepared, ClientError> {
        let now = self.now_slot().await?;
        let sc = self.deployment.evaluator.slot_config;
        let ttl = TX_VALIDITY_MS / u64::from(sc.slot_length_ms.max(1));
        let (funding, collateral, _) = self
            .funds(requester, &Value::lovelace(FEE_ALLOWANCE))
            .await?;
        let draft = builder::settle(
            &self.deployment,
            vec![(escrow.clone(), Settlement::Cancel)],
            funding,
            collateral,
            now,
            ttl,
            self.reward_balance().await?,
        )?;
        let address = requester.address().to_bytes();
        let mut signers: Vec<&dyn Signer> = vec![requester];
        signers.extend(agent);
        let extra = usize::from(agent.is_none());
        let finished = self.finish(draft, &address, &signers, extra)?;
        Ok(Prepared {
            finished,
            job_ids: vec![escrow.datum.job_id],
        })
    }

    /// Submits a prepared transaction and waits for `confirmations`.
    pub async fn send(
        &self,
        prepared: &Prepared,
        confirmations: u64,
    ) -> Result<Confirmation, ClientError> {
        let inputs: Vec<OutputReference> = prepared
            .finished
            .draft
            .inputs
            .iter()
            .map(|u| u.reference)
            .collect();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(inputs.iter().copied());
        let id = prepared.tx_id();
        let cbor = prepared.cbor();
        let result = match self.chain.submit(cbor).await {
            Ok(_) => {
                self.land(cbor, &id, confirmations, Duration::from_secs(300))
                    .await
            }
            // A clean refusal for another reason: the transaction is not on chain.
            Err(e @ ChainError::Rejected { .. })
                if !e.is_rejection_by(LedgerRule::BadInputsUTxO) =>
            {
                Err(e)
            }
            // The answer was lost, or an earlier attempt whose answer was lost
            // already spent these inputs: the transaction may be in the
            // mempool or on chain. Its id is known, so look for it.
            Err(e) => self
                .land(cbor, &id, confirmations, Duration::from_secs(30))
                .await
                .map_err(|_| e),
        };
        // Inputs of a transaction whose fate is unknown stay held back, so no
        // later transaction of this client spends them twice.
        let settled = matches!(result, Ok(_) | Err(ChainError::Rejected { .. }));
        if settled {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for r in &inputs {
                pending.remove(r);
            }
        }
        Ok(result?)
    }

    /// Sends signed bytes again that were recorded before a restart (the agent
    /// records each Submit and Claim before sending it) and waits for
    /// `confirmations`. A refusal may only mean that the transaction itself is
    /// pending or on chain already, its inputs spent by it; so it is looked for (and
    /// sent again while in no block) for up to 30 s before the refusal is the
    /// answer, which then means it can no longer land.
    pub async fn resend(
        &self,
        cbor: &[u8],
        confirmations: u64,
    ) -> Result<Confirmation, ClientError> {
        let id = crate::chain::tx_id_of(cbor).ok_or_else(|| {
            ClientError::Invalid("the recorded bytes are not a transaction".into())
        })?;
        let result = match self.chain.submit(cbor).await {
            Ok(_) => {
                self.land(cbor, &id, confirmations, Duration::from_secs(300))
                    .await
            }
            Err(e) => self
                .land(cbor, &id, confirmations, Duration::from_secs(30))
                .await
                .map_err(|_| e),
        };
        Ok(result?)
    }

    /// Waits up to `timeout` for the submitted transaction `id` to reach
    /// `confirmations`, sending the same signed bytes (`cbor`) again whenever it
    /// has been in no block for [`RESEND_AFTER`]. A mempool can lose an accepted
    /// transaction (the node restarts, or a rollback drops it), and nothing
    /// else would send it again; the same bytes can only land once. A resend
    /// refused for a reason other than spent inputs (it expired, say) means it
    /// can no longer land, unless it already has: that refusal is the answer.
    async fn land(
        &self,
        cbor: &[u8],
        id: &TxId,
        confirmations: u64,
        timeout: Duration,
    ) -> Result<Confirmation, ChainError> {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            let options = AwaitOptions::new(confirmations, left.min(RESEND_AFTER))
                .with_poll(Duration::from_millis(100), Duration::from_secs(2));
            match self.chain.await_tx(id, &options).await {
                Err(ChainError::Timeout { tx, wanted, .. }) => {
                    if start.elapsed() >= timeout {
                        return Err(ChainError::Timeout {
                            tx,
                            wanted,
                            waited: start.elapsed(),
                        });
                    }
                }
                done => return done,
            }
            // In no block yet (or not deep enough): send it again. "Inputs
            // spent" means it is in the mempool or a block already, or lost to
            // a conflicting transaction; either way, keep looking.
            match self.chain.submit(cbor).await {
                Err(e @ ChainError::Rejected { .. })
                    if !e.is_rejection_by(LedgerRule::BadInputsUTxO) =>
                {
                    let once = AwaitOptions::new(1, Duration::ZERO);
                    if self.chain.await_tx(id, &once).await.is_err() {
                        return Err(e);
                    }
                }
                _ => {}
            }
        }
    }

    /// Where `escrow`'s spec is, from its lock record (found through the
    /// submit record once a result is on chain).
    pub async fn job_spec(&self, escrow: &EscrowUtxo) -> Result<SpecSource, ClientError> {
        let lock_tx = match self.submit_record(escrow).await? {
            Some(record) => record.lock_tx,
            None => escrow.utxo.reference.transaction_id,
        };
        let json = self.record_json(&lock_tx).await?;
        let record =
            LockRecord::from_json(&json).map_err(|e| ClientError::Record(e.to_string()))?;
        record
            .spec_of(&escrow.datum.job_id)
            .cloned()
            .ok_or_else(|| {
                ClientError::Record(format!(
                    "the lock record of {} does not name job {}",
                    hex::encode(lock_tx),
                    hex::encode(escrow.datum.job_id)
                ))
            })
    }

    /// `escrow`'s job spec: from its lock record, or fetched from the URL the
    /// record names; refused unless its hash is the datum's `spec_hash`.
    pub async fn spec_doc(&self, escrow: &EscrowUtxo) -> Result<JobSpecDoc, ClientError> {
        let bytes = match self.job_spec(escrow).await? {
            SpecSource::Inline(bytes) => bytes,
            SpecSource::Url(url) => self
                .fetcher
                .get(&url, FetchKind::Spec)
                .await
                .map_err(|e| ClientError::Record(format!("cannot fetch the spec: {e}")))?,
        };
        let id = hex::encode(escrow.datum.job_id);
        if crate::protocol::blake2b_256(&bytes) != escrow.datum.spec_hash {
            return Err(ClientError::Record(format!(
                "the spec of job {id} does not hash to its datum's spec_hash: refuse the job"
            )));
        }
        JobSpecDoc::parse(&bytes).map_err(|e| ClientError::Record(format!("job {id}: {e}")))
    }

    /// The submit record of a submitted escrow (`None` while it is locked).
    pub async fn submit_record(
        &self,
        escrow: &EscrowUtxo,
    ) -> Result<Option<SubmitRecord>, ClientError> {
        if escrow.datum.state == crate::protocol::JobState::Locked {
            return Ok(None);
        }
        let json = self
            .record_json(&escrow.utxo.reference.transaction_id)
            .await?;
        let record =
            SubmitRecord::from_json(&json).map_err(|e| ClientError::Record(e.to_string()))?;
        if record.job_id != escrow.datum.job_id {
            return Err(ClientError::Record(format!(
                "the submit record names job {}, not {}",
                hex::encode(record.job_id),
                hex::encode(escrow.datum.job_id)
            )));
        }
        Ok(Some(record))
    }

    /// Where transaction `tx` records `job_id`'s result, which hashes to
    /// `result_hash`: the job's Submit (its submit record) or its fast-path
    /// settlement (its settle record); also for a settled job.
    pub async fn result_location_in(
        &self,
        tx: &TxId,
        job_id: &[u8; 32],
        result_hash: &[u8; 32],
    ) -> Result<ResultLocation, ClientError> {
        let json = self.record_json(tx).await?;
        ResultLocation::find(&json, job_id, result_hash)
            .map_err(|e| ClientError::Record(e.to_string()))
    }

    async fn record_json(&self, tx: &TxId) -> Result<serde_json::Value, ClientError> {
        self.chain
            .tx_metadata(tx)
            .await?
            .into_iter()
            .find(|m| m.label == METADATA_LABEL)
            .map(|m| m.json)
            .ok_or_else(|| {
                ClientError::Record(format!(
                    "transaction {} has no ntx-escrow record (label {METADATA_LABEL})",
                    hex::encode(tx)
                ))
            })
    }

    fn check_limits(&self, finished: &Finished) -> Result<(), ClientError> {
        let size = finished.tx.cbor.len() as u64;
        let units = finished.draft.total_ex_units();
        let limit = self.deployment.evaluator.max_tx_ex_units;
        if size > self.max_tx_size || units.mem > limit.mem || units.steps > limit.steps {
            return Err(ClientError::OverLimit {
                size,
                max_size: self.max_tx_size,
                units,
                max_units: limit,
            });
        }
        Ok(())
    }
}

/// Coin selection whose failure is the wallet's lack of funds.
fn select_coins(utxos: &[Utxo], needed: &Value) -> Result<Vec<Utxo>, ClientError> {
    builder::select_coins(utxos, needed).map_err(|e| ClientError::InsufficientFunds(e.to_string()))
}

fn pure_ada(utxos: &[Utxo]) -> Option<Utxo> {
    utxos
        .iter()
        .filter(|u| {
            u.output.value.assets.is_empty()
                && u.output.value.lovelace >= COLLATERAL_LOVELACE
                && u.output.script_ref.is_none()
                && matches!(u.output.datum, crate::tx::Datum::None)
        })
        .min_by_key(|u| u.output.value.lovelace)
        .cloned()
}

fn check_wallet_network(wallet: &Wallet, network: Network) -> Result<(), ClientError> {
    if wallet.network().id() != network.id() {
        return Err(ClientError::Invalid(format!(
            "the wallet is a {} wallet but the command runs on {network}: use a key made for {network}",
            wallet.network()
        )));
    }
    Ok(())
}
