//! The rules: each job's lifecycle rebuilt from a [`History`] and every step
//! checked against docs/PROTOCOL.md, with the totals and timeline for the report.

use std::collections::BTreeMap;

use pallas_primitives::PlutusData;
use serde::Serialize;

use super::history::{EscrowTx, History, Target};
use crate::network::Network;
use crate::protocol::{
    self, Address, Attestation, Credential, FromPlutusData, JobDatum, JobState, MintAction,
    Settlement, SpendAction, Verdict, attestation_message, job_id, verify_attestation,
};
use crate::tx::{Datum, TxOutput, Value};

/// A protocol rule the auditor checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A transaction or an escrow redeemer that cannot be read.
    Malformed,
    /// A job token is minted exactly once (quantity 1), by a well-formed lock.
    MintOnce,
    /// A lock creates a well-formed escrow: datum, value, deadline, job id from its seed.
    Lock,
    /// A Submit is signed by the agent, on time, and keeps the escrow but its state.
    Submit,
    /// A claim or rejecting refund carries ≥ threshold distinct, valid
    /// verifier signatures over the right 98-byte message.
    Attestations,
    /// The payee receives at least the escrow's value (less its job token) in
    /// outputs tagged with the payout datum.
    Payout,
    /// A settlement is allowed by its rule: the escrow's state, the validity
    /// interval against the deadlines, and the signers (Cancel).
    SettlementRule,
    /// Every settlement burns its job token once (−1), and nothing else is burned.
    BurnOnce,
    /// Value leaves an escrow only by Submit or a settlement.
    EscrowLeak,
    /// An escrow past its `settle_by` is still unsettled (funds wait on a keeper).
    Overdue,
    /// A re-run of the job disagrees with what the quorum signed.
    Recompute,
    /// A job token sits somewhere other than the escrow address itself (e.g. at
    /// the script's payment credential with someone's stake key).
    TokenElsewhere,
}

impl Rule {
    /// The rule's short name (as in JSON).
    pub fn code(self) -> &'static str {
        match self {
            Rule::Malformed => "malformed",
            Rule::MintOnce => "mint-once",
            Rule::Lock => "lock",
            Rule::Submit => "submit",
            Rule::Attestations => "attestations",
            Rule::Payout => "payout",
            Rule::SettlementRule => "settlement-rule",
            Rule::BurnOnce => "burn-once",
            Rule::EscrowLeak => "escrow-leak",
            Rule::Overdue => "overdue",
            Rule::Recompute => "recompute",
            Rule::TokenElsewhere => "token-elsewhere",
        }
    }

    /// What the rule says, in one line.
    pub fn statement(self) -> &'static str {
        match self {
            Rule::Malformed => "every escrow transaction and redeemer can be read",
            Rule::MintOnce => "a job token is minted once, by a well-formed lock",
            Rule::Lock => "a lock creates a well-formed escrow before its deadline",
            Rule::Submit => {
                "Submit is signed by the agent before submit_by and changes only the state"
            }
            Rule::Attestations => {
                "a claim or rejection carries >= threshold distinct valid verifier signatures"
            }
            Rule::Payout => "the payee gets at least the escrow's value in payout-tagged outputs",
            Rule::SettlementRule => "a settlement happens only when its rule allows it",
            Rule::BurnOnce => "each settlement burns its job token exactly once",
            Rule::EscrowLeak => "value leaves an escrow only through Submit or a settlement",
            Rule::Overdue => "no escrow is past settle_by and still unsettled",
            Rule::Recompute => "a re-run of the job agrees with the quorum",
            Rule::TokenElsewhere => "job tokens sit only at the escrow address itself",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// The job (hex), when one is concerned.
    pub job_id: Option<String>,
    /// The transaction (hex) that broke it, if any (none for an overdue escrow).
    pub tx_id: Option<String>,
    /// What is wrong.
    pub detail: String,
}

/// Where a job ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Locked, no result yet.
    Locked,
    /// A result is submitted; not settled.
    Submitted,
    /// Paid to the provider.
    Claimed,
    /// Refunded: no result by `submit_by`.
    RefundedNoShow,
    /// Refunded: no claim by `settle_by`.
    RefundedTimeout,
    /// Refunded: a quorum rejected the result.
    RefundedRejected,
    /// Cancelled by requester and agent.
    Cancelled,
    /// Spent without Submit or a settlement (a [`Rule::EscrowLeak`] finding).
    Leaked,
}

impl Outcome {
    /// Its name (as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Locked => "locked",
            Outcome::Submitted => "submitted",
            Outcome::Claimed => "claimed",
            Outcome::RefundedNoShow => "refunded-no-show",
            Outcome::RefundedTimeout => "refunded-timeout",
            Outcome::RefundedRejected => "refunded-rejected",
            Outcome::Cancelled => "cancelled",
            Outcome::Leaked => "leaked",
        }
    }

    /// Whether the escrow is gone (settled, or leaked).
    pub fn is_settled(self) -> bool {
        !matches!(self, Outcome::Locked | Outcome::Submitted)
    }

    fn of(settlement: &Settlement) -> Outcome {
        match settlement {
            Settlement::Claim { .. } | Settlement::FastClaim { .. } => Outcome::Claimed,
            Settlement::RefundNoShow => Outcome::RefundedNoShow,
            Settlement::RefundTimeout => Outcome::RefundedTimeout,
            Settlement::RefundRejected { .. } | Settlement::FastRefundRejected { .. } => {
                Outcome::RefundedRejected
            }
            Settlement::Cancel => Outcome::Cancelled,
        }
    }
}

/// One job's lifecycle, as rebuilt from the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobReport {
    /// The job id (hex).
    pub job_id: String,
    /// Requester (bech32).
    pub requester: String,
    /// Provider payee (bech32).
    pub provider: String,
    /// The provider's agent key hash (hex).
    pub agent: String,
    /// The job spec's hash (hex).
    pub spec_hash: String,
    /// Price in settlement-asset units.
    pub price: u64,
    /// Settlement-asset units the escrow held.
    pub amount: u64,
    /// Verifiers and threshold, as `t-of-n`.
    pub quorum: String,
    /// POSIX ms deadlines.
    pub submit_by: u64,
    /// POSIX ms.
    pub settle_by: u64,
    /// The lock transaction (hex); `None` if before the audited range.
    pub lock_tx: Option<String>,
    /// The lock's slot.
    pub lock_slot: Option<u64>,
    /// The Submit transaction (hex).
    pub submit_tx: Option<String>,
    /// The Submit's slot.
    pub submit_slot: Option<u64>,
    /// The result hash (hex): the submitted one, or the one a fast-path
    /// settlement named.
    pub result_hash: Option<String>,
    /// The transaction whose record names where the result is served (hex):
    /// the Submit, or the fast-path settlement.
    pub result_tx: Option<String>,
    /// Whether the job was settled on the fast path, straight from `Locked`.
    pub fast_path: bool,
    /// The settlement transaction (hex).
    pub settle_tx: Option<String>,
    /// The settlement's slot.
    pub settle_slot: Option<u64>,
    /// Attestations the settlement carried (claims and rejections).
    pub attestations: usize,
    /// Where it ended up.
    pub outcome: Outcome,
}

/// Totals for one provider or requester, in settlement-asset units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartyTotals {
    /// The party's payee address (bech32).
    pub address: String,
    /// Jobs seen.
    pub jobs: u64,
    /// Paid to providers (claims).
    pub paid: u64,
    /// Refunded to requesters (refunds and cancels).
    pub refunded: u64,
    /// Still in escrow.
    pub locked: u64,
}

/// The state after one transaction, for the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimelinePoint {
    /// Slot of the transaction.
    pub slot: u64,
    /// POSIX ms of that slot.
    pub time_ms: u64,
    /// Settlement-asset units in open escrows.
    pub locked: u64,
    /// Cumulative units paid to providers.
    pub paid: u64,
    /// Cumulative units refunded to requesters.
    pub refunded: u64,
}

/// The deployment, as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetReport {
    /// The network.
    pub network: String,
    /// Script hash (hex).
    pub script_hash: String,
    /// Settlement asset unit (policy ‖ name, hex).
    pub settlement: String,
    /// The escrow address (bech32).
    pub escrow_address: String,
}

/// What the auditor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// The deployment.
    pub target: TargetReport,
    /// First slot audited.
    pub from_slot: u64,
    /// Last slot audited.
    pub to_slot: u64,
    /// The "now" overdue escrows are judged against (POSIX ms).
    pub now_ms: u64,
    /// Transactions read.
    pub transactions: usize,
    /// Every job, in the order first seen.
    pub jobs: Vec<JobReport>,
    /// Every broken rule.
    pub findings: Vec<Finding>,
    /// Per provider payee.
    pub providers: Vec<PartyTotals>,
    /// Per requester.
    pub requesters: Vec<PartyTotals>,
    /// All jobs together (`address` empty).
    pub totals: PartyTotals,
    /// Locked, paid and refunded after each transaction that moved them.
    pub timeline: Vec<TimelinePoint>,
    /// Notes that are not findings (e.g. results a re-run could not fetch).
    pub notes: Vec<String>,
}

impl Audit {
    /// Whether every checked rule held.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The findings for one rule.
    pub fn findings_for(&self, rule: Rule) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.rule == rule).collect()
    }
}

/// A job while it is being rebuilt.
struct Job {
    id: [u8; 32],
    datum: JobDatum,
    amount: u64,
    lock: Option<([u8; 32], u64)>,
    mints: u32,
    submit: Option<([u8; 32], [u8; 32], u64)>,
    settle: Option<([u8; 32], u64, Outcome, usize)>,
    /// The result hash a fast-path settlement named.
    fast_result: Option<[u8; 32]>,
    burns: u32,
}

struct Checker<'h> {
    history: &'h History,
    network: Network,
    jobs: Vec<Job>,
    index: BTreeMap<[u8; 32], usize>,
    findings: Vec<Finding>,
    timeline: Vec<TimelinePoint>,
    locked: u64,
    paid: u64,
    refunded: u64,
}

/// Checks every rule over `history` (see [`Rule`]), on `network` (for the
/// addresses the report prints).
pub fn check(history: &History, network: Network) -> Audit {
    let mut c = Checker {
        history,
        network,
        jobs: Vec::new(),
        index: BTreeMap::new(),
        findings: Vec::new(),
        timeline: Vec::new(),
        locked: 0,
        paid: 0,
        refunded: 0,
    };
    for tx in history.txs.iter().filter(|t| t.valid) {
        c.transaction(tx);
    }
    c.finish()
}

fn hex32(b: &[u8; 32]) -> String {
    hex::encode(b)
}

impl<'h> Checker<'h> {
    fn target(&self) -> &'h Target {
        &self.history.target
    }

    fn finding(
        &mut self,
        rule: Rule,
        job: Option<&[u8; 32]>,
        tx: Option<&[u8; 32]>,
        detail: String,
    ) {
        self.findings.push(Finding {
            rule,
            job_id: job.map(hex32),
            tx_id: tx.map(hex32),
            detail,
        });
    }

    fn ms(&self, slot: u64) -> u64 {
        self.history.slot_config.slot_to_posix_ms(slot)
    }

    /// Exactly the escrow address: the script's payment credential, no stake
    /// part (the lock refuses any other).
    fn is_escrow_address(&self, address: &[u8]) -> bool {
        address == super::collect::escrow_address(&self.target().script_hash, self.network).to_vec()
    }

    fn amount(&self, value: &Value) -> u64 {
        let s = &self.target().settlement;
        value.quantity_of(&s.policy, &s.name)
    }

    /// The job token an output holds (the first, if it holds several) and its datum.
    fn escrow_of(&self, output: &TxOutput) -> Option<([u8; 32], Result<JobDatum, String>)> {
        if !self.is_escrow_address(&output.address) {
            return None;
        }
        let tokens = output.value.assets.get(&self.target().script_hash)?;
        let (name, _) = tokens.iter().next()?;
        let id: [u8; 32] = name.as_slice().try_into().ok()?;
        let datum = match &output.datum {
            Datum::Inline(d) => JobDatum::from_plutus_data(d).map_err(|e| e.to_string()),
            _ => Err("it has no inline datum".into()),
        };
        Some((id, datum))
    }

    fn job_mut(&mut self, id: &[u8; 32]) -> Option<&mut Job> {
        let i = *self.index.get(id)?;
        self.jobs.get_mut(i)
    }

    /// The job, created from `datum` if first seen (its lock outside the range).
    fn ensure_job(&mut self, id: [u8; 32], datum: &JobDatum, amount: u64) {
        if !self.index.contains_key(&id) {
            self.index.insert(id, self.jobs.len());
            self.jobs.push(Job {
                id,
                datum: datum.clone(),
                amount,
                lock: None,
                mints: 0,
                submit: None,
                settle: None,
                fast_result: None,
                burns: 0,
            });
            self.locked += amount;
        }
    }

    fn transaction(&mut self, tx: &'h EscrowTx) {
        let before = (self.locked, self.paid, self.refunded);
        self.mints(tx);
        self.spends(tx);
        if (self.locked, self.paid, self.refunded) != before {
            self.timeline.push(TimelinePoint {
                slot: tx.slot,
                time_ms: self.ms(tx.slot),
                locked: self.locked,
                paid: self.paid,
                refunded: self.refunded,
            });
        }
    }

    fn decode<T: FromPlutusData>(
        &mut self,
        data: &PlutusData,
        what: &str,
        tx: &EscrowTx,
    ) -> Option<T> {
        match T::from_plutus_data(data) {
            Ok(v) => Some(v),
            Err(e) => {
                self.finding(
                    Rule::Malformed,
                    None,
                    Some(&tx.id),
                    format!("its {what} redeemer cannot be read: {e}"),
                );
                None
            }
        }
    }

    /// Mints: each a lock of a new job.
    fn mints(&mut self, tx: &'h EscrowTx) {
        let minted: Vec<(&Vec<u8>, i64)> = tx
            .mint
            .iter()
            .filter(|(_, q)| **q > 0)
            .map(|(n, q)| (n, *q))
            .collect();
        if minted.is_empty() {
            return;
        }
        let action = match &tx.redeemers.mint {
            Some(d) => self.decode::<MintAction>(d, "mint", tx),
            None => {
                self.finding(
                    Rule::Malformed,
                    None,
                    Some(&tx.id),
                    "it mints job tokens without a mint redeemer".into(),
                );
                None
            }
        };
        if matches!(action, Some(MintAction::Burn)) {
            self.finding(
                Rule::MintOnce,
                None,
                Some(&tx.id),
                "it mints job tokens under a Burn redeemer".into(),
            );
        }
        let upper_ms = tx.invalid_from_slot.map(|s| self.ms(s));
        for (name, quantity) in minted {
            let Ok(id) = <[u8; 32]>::try_from(name.as_slice()) else {
                self.finding(
                    Rule::MintOnce,
                    None,
                    Some(&tx.id),
                    format!(
                        "it mints a token named {} that is not a 32-byte job id",
                        hex::encode(name)
                    ),
                );
                continue;
            };
            if quantity != 1 {
                self.finding(
                    Rule::MintOnce,
                    Some(&id),
                    Some(&tx.id),
                    format!("it mints {quantity} of the job token (must be 1)"),
                );
            }
            if let Some(job) = self.job_mut(&id) {
                job.mints += 1;
                self.finding(
                    Rule::MintOnce,
                    Some(&id),
                    Some(&tx.id),
                    "the job token is minted again (it already exists)".into(),
                );
                continue;
            }
            // The escrow output that must carry it.
            let escrow = tx
                .outputs
                .iter()
                .filter_map(|o| self.escrow_of(o).map(|e| (o, e)))
                .find(|(_, (token, _))| *token == id);
            let Some((output, (_, datum))) = escrow else {
                self.finding(
                    Rule::Lock,
                    Some(&id),
                    Some(&tx.id),
                    "the minted job token does not go to the escrow address".into(),
                );
                continue;
            };
            let datum = match datum {
                Ok(d) => d,
                Err(e) => {
                    self.finding(
                        Rule::Lock,
                        Some(&id),
                        Some(&tx.id),
                        format!("the escrow's datum is malformed: {e}"),
                    );
                    continue;
                }
            };
            let amount = self.amount(&output.value);
            let mut problems = lock_problems(&datum, &id, output, amount, self.target());
            if !tx.inputs.iter().any(|i| job_id(&i.reference) == id) {
                problems.push("the job id is not the hash of any input it spends".into());
            }
            match upper_ms {
                Some(u) if u < datum.submit_by => {}
                Some(u) => problems.push(format!(
                    "its validity ends at {u} ms, not before submit_by {}",
                    datum.submit_by
                )),
                None => problems.push("it has no validity upper bound".into()),
            }
            for p in problems {
                self.finding(Rule::Lock, Some(&id), Some(&tx.id), p);
            }
            self.ensure_job(id, &datum, amount);
            if let Some(job) = self.job_mut(&id) {
                job.lock = Some((tx.id, tx.slot));
                job.mints = 1;
            }
        }
    }

    /// Escrow inputs: Submit, settlements, and anything else (a leak); burns.
    fn spends(&mut self, tx: &'h EscrowTx) {
        let mut settled: Vec<(usize, [u8; 32], JobDatum, TxOutput)> = Vec::new();
        for (i, input) in tx.inputs.iter().enumerate() {
            let Some(output) = &input.output else {
                continue;
            };
            if !self.is_escrow_address(&output.address) {
                continue;
            }
            let Some((id, datum)) = self.escrow_of(output) else {
                self.finding(
                    Rule::EscrowLeak,
                    None,
                    Some(&tx.id),
                    format!(
                        "it spends {}#{}, a UTxO at the escrow address without a job token",
                        hex::encode(input.reference.transaction_id),
                        input.reference.output_index
                    ),
                );
                continue;
            };
            let datum = match datum {
                Ok(d) => d,
                Err(e) => {
                    self.finding(
                        Rule::EscrowLeak,
                        Some(&id),
                        Some(&tx.id),
                        format!("it spends an escrow whose datum is malformed: {e}"),
                    );
                    continue;
                }
            };
            let amount = self.amount(&output.value);
            self.ensure_job(id, &datum, amount);
            let action = match tx.redeemers.spend.get(&(i as u32)) {
                Some(d) => self.decode::<SpendAction>(d, "spend", tx),
                None => None,
            };
            match action {
                Some(SpendAction::Submit {
                    input_index,
                    output_index,
                    result_hash,
                }) => {
                    if input_index as usize != i {
                        self.finding(
                            Rule::Submit,
                            Some(&id),
                            Some(&tx.id),
                            format!("its Submit points at input {input_index}, but the escrow is input {i}"),
                        );
                    }
                    self.submit(tx, id, &datum, output, output_index, result_hash);
                }
                Some(SpendAction::Settle { input_index }) => {
                    if input_index as usize != i {
                        self.finding(
                            Rule::Malformed,
                            Some(&id),
                            Some(&tx.id),
                            format!("its Settle points at input {input_index}, but the escrow is input {i}"),
                        );
                    }
                    settled.push((i, id, datum, output.clone()));
                }
                None => {
                    self.finding(
                        Rule::EscrowLeak,
                        Some(&id),
                        Some(&tx.id),
                        "it spends the escrow without a Submit or Settle redeemer".into(),
                    );
                    self.locked = self.locked.saturating_sub(amount);
                    if let Some(job) = self.job_mut(&id)
                        && job.settle.is_none()
                    {
                        job.settle = Some((tx.id, tx.slot, Outcome::Leaked, 0));
                    }
                }
            }
        }
        self.settlements(tx, &settled);
        self.burns(tx, &settled);
    }

    fn submit(
        &mut self,
        tx: &EscrowTx,
        id: [u8; 32],
        datum: &JobDatum,
        input: &TxOutput,
        output_index: u32,
        result_hash: [u8; 32],
    ) {
        let mut problems = Vec::new();
        if datum.state != JobState::Locked {
            problems.push("the escrow already holds a submitted result".to_string());
        }
        if !tx.required_signers.contains(&datum.agent) {
            problems.push(format!(
                "the agent {} does not sign it",
                hex::encode(datum.agent)
            ));
        }
        match tx.invalid_from_slot.map(|s| self.ms(s)) {
            Some(u) if u <= datum.submit_by => {}
            Some(u) => problems.push(format!(
                "its validity ends at {u} ms, after submit_by {}",
                datum.submit_by
            )),
            None => problems.push("it has no validity upper bound".into()),
        }
        let mut expected = datum.clone();
        expected.state = JobState::Submitted { result_hash };
        match tx.outputs.get(output_index as usize) {
            None => problems.push(format!(
                "its continuing output {output_index} does not exist"
            )),
            Some(out) => {
                if out.address != input.address {
                    problems.push("the continuing output is not at the escrow address".into());
                }
                if out.value != input.value {
                    problems.push("the continuing output's value differs from the escrow's".into());
                }
                if out.script_ref.is_some() {
                    problems.push("the continuing output carries a reference script".into());
                }
                let same = matches!(&out.datum, Datum::Inline(d)
                    if JobDatum::from_plutus_data(d).as_ref() == Ok(&expected));
                if !same {
                    problems.push(
                        "the continuing output's datum is not the escrow's with state Submitted"
                            .into(),
                    );
                }
            }
        }
        for p in problems {
            self.finding(Rule::Submit, Some(&id), Some(&tx.id), p);
        }
        if let Some(job) = self.job_mut(&id) {
            job.submit = Some((tx.id, result_hash, tx.slot));
        }
    }

    fn settlements(&mut self, tx: &EscrowTx, settled: &[(usize, [u8; 32], JobDatum, TxOutput)]) {
        if settled.is_empty() {
            return;
        }
        if !tx.withdraws {
            self.finding(
                Rule::SettlementRule,
                None,
                Some(&tx.id),
                "it settles escrows without withdrawing from the escrow's stake credential".into(),
            );
        }
        let list: Vec<Settlement> = match &tx.redeemers.withdraw {
            Some(d) => self.decode(d, "withdraw", tx).unwrap_or_default(),
            None => Vec::new(),
        };
        if list.len() != settled.len() {
            self.finding(
                Rule::Malformed,
                None,
                Some(&tx.id),
                format!(
                    "it settles {} escrows but its withdraw redeemer lists {} settlements",
                    settled.len(),
                    list.len()
                ),
            );
        }
        let lower_ms = tx.valid_from_slot.map(|s| self.ms(s));
        let upper_ms = tx.invalid_from_slot.map(|s| self.ms(s));
        // What each payee is owed in this transaction.
        let mut owed: Vec<(Address, Value, Vec<[u8; 32]>)> = Vec::new();
        for ((_, id, datum, output), settlement) in settled.iter().zip(&list) {
            let outcome = Outcome::of(settlement);
            let submitted = match datum.state {
                JobState::Submitted { result_hash } => Some(result_hash),
                JobState::Locked => None,
            };
            let mut problems: Vec<(Rule, String)> = Vec::new();
            let mut rule = |p: String| problems.push((Rule::SettlementRule, p));
            let name = outcome.name();
            match settlement {
                Settlement::Claim { .. }
                | Settlement::RefundRejected { .. }
                | Settlement::RefundTimeout
                    if submitted.is_none() =>
                {
                    rule(format!("{name}: no result was submitted"));
                }
                Settlement::RefundNoShow | Settlement::Cancel if submitted.is_some() => {
                    rule(format!("{name}: a result was already submitted"));
                }
                Settlement::FastClaim { .. } | Settlement::FastRefundRejected { .. }
                    if submitted.is_some() =>
                {
                    rule(format!(
                        "{name} on the fast path: a result was already submitted"
                    ));
                }
                _ => {}
            }
            match settlement {
                Settlement::Claim { .. } => match upper_ms {
                    Some(u) if u <= datum.settle_by => {}
                    Some(u) => rule(format!(
                        "claimed with validity ending at {u} ms, after settle_by {}",
                        datum.settle_by
                    )),
                    None => rule("claimed without a validity upper bound".into()),
                },
                Settlement::RefundNoShow => match lower_ms {
                    Some(l) if l > datum.submit_by => {}
                    Some(l) => rule(format!(
                        "refunded as a no-show from {l} ms, not after submit_by {}",
                        datum.submit_by
                    )),
                    None => rule("refunded as a no-show without a validity lower bound".into()),
                },
                Settlement::RefundTimeout => match lower_ms {
                    Some(l) if l > datum.settle_by => {}
                    Some(l) => rule(format!(
                        "refunded on timeout from {l} ms, not after settle_by {}",
                        datum.settle_by
                    )),
                    None => rule("refunded on timeout without a validity lower bound".into()),
                },
                Settlement::Cancel => {
                    match datum.requester.payment {
                        Credential::Key(k) if tx.required_signers.contains(&k) => {}
                        _ => rule("cancelled without the requester's signature".into()),
                    }
                    if !tx.required_signers.contains(&datum.agent) {
                        rule("cancelled without the agent's signature".into());
                    }
                }
                Settlement::FastClaim { .. } => match upper_ms {
                    Some(u) if u <= datum.submit_by => {}
                    Some(u) => rule(format!(
                        "claimed on the fast path with validity ending at {u} ms, after submit_by {}",
                        datum.submit_by
                    )),
                    None => rule("claimed on the fast path without a validity upper bound".into()),
                },
                Settlement::RefundRejected { .. } | Settlement::FastRefundRejected { .. } => {}
            }
            let attestations = settlement.attestations();
            let fast_result = settlement.fast_result_hash();
            let signed_hash = fast_result.or(submitted);
            if let (Some((verdict, atts)), Some(result_hash)) = (attestations, signed_hash) {
                for p in attestation_problems(
                    &self.target().script_hash,
                    datum,
                    &result_hash,
                    verdict,
                    atts,
                ) {
                    problems.push((Rule::Attestations, p));
                }
            }
            for (r, p) in problems {
                self.finding(r, Some(id), Some(&tx.id), p);
            }
            let payee = if settlement.pays_provider() {
                datum.provider
            } else {
                datum.requester
            };
            let mut value = output.value.clone();
            value.assets.remove(&self.target().script_hash);
            match owed.iter_mut().find(|(a, _, _)| *a == payee) {
                Some((_, v, ids)) => {
                    v.add(&value);
                    ids.push(*id);
                }
                None => owed.push((payee, value.clone(), vec![*id])),
            }
            let amount = self.amount(&output.value);
            self.locked = self.locked.saturating_sub(amount);
            if outcome == Outcome::Claimed {
                self.paid += amount;
            } else {
                self.refunded += amount;
            }
            let count = attestations.map(|(_, a)| a.len()).unwrap_or(0);
            if let Some(job) = self.job_mut(id) {
                if let Some((first, ..)) = job.settle {
                    let again = format!("the job was already settled in {}", hex32(&first));
                    self.finding(Rule::SettlementRule, Some(id), Some(&tx.id), again);
                } else {
                    job.settle = Some((tx.id, tx.slot, outcome, count));
                    job.fast_result = fast_result;
                }
            }
        }
        // Payouts: tagged outputs, summed per address.
        let tag = protocol::payout_datum(&self.target().script_hash);
        for (payee, value, ids) in owed {
            let mut got = Value::default();
            for o in &tx.outputs {
                let tagged = matches!(&o.datum, Datum::Inline(d) if *d == tag);
                let to_payee = matches!(pallas_addresses::Address::from_bytes(&o.address),
                    Ok(pallas_addresses::Address::Shelley(a)) if Address::from(&a) == payee);
                if tagged && to_payee {
                    got.add(&o.value);
                }
            }
            let short = short_of(&value, &got);
            if !short.is_empty() {
                let who = payee.to_shelley(self.network.address_network());
                let who = who
                    .to_bech32()
                    .unwrap_or_else(|_| hex::encode(who.to_vec()));
                for id in &ids {
                    self.finding(
                        Rule::Payout,
                        Some(id),
                        Some(&tx.id),
                        format!(
                            "{who} is owed {} but receives {} in payout-tagged outputs",
                            describe(&value, self.target()),
                            describe(&got, self.target())
                        ),
                    );
                }
            }
        }
    }

    fn burns(&mut self, tx: &EscrowTx, settled: &[(usize, [u8; 32], JobDatum, TxOutput)]) {
        for (name, quantity) in tx.mint.iter().filter(|(_, q)| **q < 0) {
            let id = <[u8; 32]>::try_from(name.as_slice()).ok();
            let settling = id.is_some_and(|id| settled.iter().any(|(_, s, ..)| *s == id));
            if *quantity != -1 || !settling {
                self.finding(
                    Rule::BurnOnce,
                    id.as_ref(),
                    Some(&tx.id),
                    format!(
                        "it burns {} of token {} {}",
                        -quantity,
                        hex::encode(name),
                        if settling {
                            "(must be exactly 1)"
                        } else {
                            "without settling its escrow"
                        }
                    ),
                );
            }
            if let Some(job) = id.and_then(|id| self.job_mut(&id)) {
                job.burns += 1;
            }
        }
        for (_, id, ..) in settled {
            if tx.mint.get(id.as_slice()) != Some(&-1) {
                self.finding(
                    Rule::BurnOnce,
                    Some(id),
                    Some(&tx.id),
                    "the settlement does not burn the job token".into(),
                );
            }
        }
    }

    fn finish(mut self) -> Audit {
        let elsewhere: Vec<(Option<[u8; 32]>, String)> = self
            .history
            .holdings
            .iter()
            .filter(|h| !self.is_escrow_address(&h.address))
            .map(|h| {
                let shown = pallas_addresses::Address::from_bytes(&h.address)
                    .ok()
                    .and_then(|a| a.to_bech32().ok())
                    .unwrap_or_else(|| hex::encode(&h.address));
                let token = hex::encode(&h.name);
                (
                    h.name.as_slice().try_into().ok(),
                    format!(
                        "{} of job token {token} sit at {shown}, not at the escrow address",
                        h.quantity
                    ),
                )
            })
            .collect();
        for (id, detail) in elsewhere {
            self.finding(Rule::TokenElsewhere, id.as_ref(), None, detail);
        }
        let now = self.history.now_ms;
        let overdue: Vec<([u8; 32], u64)> = self
            .jobs
            .iter()
            .filter(|j| j.settle.is_none() && j.datum.settle_by < now)
            .map(|j| (j.id, j.datum.settle_by))
            .collect();
        for (id, settle_by) in overdue {
            self.finding(
                Rule::Overdue,
                Some(&id),
                None,
                format!(
                    "unsettled, {} s past its settle_by ({settle_by} ms)",
                    (now - settle_by) / 1000
                ),
            );
        }
        let mut burned_twice = Vec::new();
        for j in &self.jobs {
            if j.burns > 1 {
                burned_twice.push(j.id);
            }
        }
        for id in burned_twice {
            self.finding(
                Rule::BurnOnce,
                Some(&id),
                None,
                "the job token is burned more than once".into(),
            );
        }
        let network = self.network.address_network();
        let bech = |a: &Address| {
            let s = a.to_shelley(network);
            s.to_bech32().unwrap_or_else(|_| hex::encode(s.to_vec()))
        };
        let mut jobs = Vec::new();
        let mut providers: BTreeMap<String, PartyTotals> = BTreeMap::new();
        let mut requesters: BTreeMap<String, PartyTotals> = BTreeMap::new();
        let mut totals = PartyTotals::default();
        for j in &self.jobs {
            let outcome = match (&j.settle, &j.submit, &j.datum.state) {
                (Some((_, _, o, _)), _, _) => *o,
                (None, Some(_), _) | (None, None, JobState::Submitted { .. }) => Outcome::Submitted,
                _ => Outcome::Locked,
            };
            let d = &j.datum;
            let (provider, requester) = (bech(&d.provider), bech(&d.requester));
            for (map, who) in [(&mut providers, &provider), (&mut requesters, &requester)] {
                let t = map.entry(who.clone()).or_insert_with(|| PartyTotals {
                    address: who.clone(),
                    ..PartyTotals::default()
                });
                add_job(t, outcome, j.amount);
            }
            add_job(&mut totals, outcome, j.amount);
            let result_hash = match (&j.submit, &d.state, &j.fast_result) {
                (Some((_, h, _)), ..) => Some(hex32(h)),
                (None, JobState::Submitted { result_hash }, _) => Some(hex32(result_hash)),
                (None, JobState::Locked, Some(h)) => Some(hex32(h)),
                _ => None,
            };
            let result_tx = match (&j.submit, &j.fast_result, &j.settle) {
                (Some((t, ..)), ..) => Some(hex32(t)),
                (None, Some(_), Some((t, ..))) => Some(hex32(t)),
                _ => None,
            };
            jobs.push(JobReport {
                job_id: hex32(&j.id),
                requester,
                provider,
                agent: hex::encode(d.agent),
                spec_hash: hex32(&d.spec_hash),
                price: d.price,
                amount: j.amount,
                quorum: format!("{}-of-{}", d.threshold, d.verifiers.len()),
                submit_by: d.submit_by,
                settle_by: d.settle_by,
                lock_tx: j.lock.map(|(t, _)| hex32(&t)),
                lock_slot: j.lock.map(|(_, s)| s),
                submit_tx: j.submit.map(|(t, ..)| hex32(&t)),
                submit_slot: j.submit.map(|(.., s)| s),
                result_hash,
                result_tx,
                fast_path: j.fast_result.is_some(),
                settle_tx: j.settle.map(|(t, ..)| hex32(&t)),
                settle_slot: j.settle.map(|(_, s, ..)| s),
                attestations: j.settle.map(|(.., n)| n).unwrap_or(0),
                outcome,
            });
        }
        let t = self.target();
        let escrow = Address {
            payment: Credential::Script(t.script_hash),
            stake: None,
        };
        Audit {
            target: TargetReport {
                network: self.network.name().to_string(),
                script_hash: hex::encode(t.script_hash),
                settlement: t.settlement.unit(),
                escrow_address: bech(&escrow),
            },
            from_slot: self.history.from_slot,
            to_slot: self.history.to_slot,
            now_ms: now,
            transactions: self.history.txs.len(),
            jobs,
            findings: self.findings,
            providers: providers.into_values().collect(),
            requesters: requesters.into_values().collect(),
            totals,
            timeline: self.timeline,
            notes: Vec::new(),
        }
    }
}

fn add_job(t: &mut PartyTotals, outcome: Outcome, amount: u64) {
    t.jobs += 1;
    match outcome {
        Outcome::Locked | Outcome::Submitted => t.locked += amount,
        Outcome::Claimed => t.paid += amount,
        Outcome::Leaked => {}
        _ => t.refunded += amount,
    }
}

/// What `got` lacks of `owed` (lovelace and every asset).
fn short_of(owed: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if got.lovelace < owed.lovelace {
        out.push("lovelace".to_string());
    }
    for (policy, names) in &owed.assets {
        for (name, q) in names {
            if got.quantity_of(policy, name) < *q {
                out.push(format!("{}{}", hex::encode(policy), hex::encode(name)));
            }
        }
    }
    out
}

fn describe(value: &Value, target: &Target) -> String {
    let s = &target.settlement;
    format!(
        "{} units of the settlement asset and {} lovelace",
        value.quantity_of(&s.policy, &s.name),
        value.lovelace
    )
}

/// What is wrong with a freshly locked escrow (the mint handler's checks).
fn lock_problems(
    datum: &JobDatum,
    token: &[u8; 32],
    output: &TxOutput,
    amount: u64,
    target: &Target,
) -> Vec<String> {
    let mut p = Vec::new();
    if datum.job_id != *token {
        p.push("the datum's job id is not the token's name".to_string());
    }
    if datum.state != JobState::Locked {
        p.push("the escrow does not start in state Locked".into());
    }
    for (who, a) in [
        ("requester", &datum.requester),
        ("provider", &datum.provider),
    ] {
        if !a.is_payee() {
            p.push(format!(
                "the {who} cannot be paid: not a key address, or a stake pointer"
            ));
        }
    }
    if datum.price == 0 {
        p.push("the price is zero".into());
    }
    if amount < datum.price {
        p.push(format!(
            "the escrow holds {amount} units, less than the price {}",
            datum.price
        ));
    }
    let n = datum.verifiers.len();
    if datum.threshold == 0 || datum.threshold as usize > n {
        p.push(format!(
            "threshold {} is not between 1 and {n}",
            datum.threshold
        ));
    }
    if !datum.verifiers.windows(2).all(|w| w[0] < w[1]) {
        p.push("the verifier keys are not distinct and ascending".into());
    }
    if datum.submit_by >= datum.settle_by {
        p.push("submit_by is not before settle_by".into());
    }
    let expected = Value::lovelace(output.value.lovelace)
        .with_asset(target.settlement.policy, &target.settlement.name, amount)
        .with_asset(target.script_hash, token, 1);
    if output.value != expected {
        p.push(
            "the escrow holds something besides ADA, the settlement asset and its job token".into(),
        );
    }
    if output.script_ref.is_some() {
        p.push("the escrow carries a reference script".into());
    }
    p
}

/// Why a list of attestations does not make a quorum for `verdict` (empty when it does).
pub fn attestation_problems(
    script_hash: &[u8; 28],
    datum: &JobDatum,
    result_hash: &[u8; 32],
    verdict: Verdict,
    attestations: &[Attestation],
) -> Vec<String> {
    let message = attestation_message(verdict, script_hash, &datum.job_id, result_hash);
    let word = match verdict {
        Verdict::Accept => "accept",
        Verdict::Reject => "reject",
    };
    let mut problems = Vec::new();
    let mut valid = std::collections::BTreeSet::new();
    let mut last: Option<u32> = None;
    for a in attestations {
        let i = a.verifier_index;
        if let Some(prev) = last
            && i <= prev
        {
            problems.push(if i == prev {
                format!("verifier {i} is counted twice")
            } else {
                format!("verifier indexes are not ascending ({prev} then {i})")
            });
        }
        last = Some(i);
        match datum.verifiers.get(i as usize) {
            None => problems.push(format!(
                "verifier index {i} is out of range ({} verifiers)",
                datum.verifiers.len()
            )),
            Some(key) if verify_attestation(key, &message, &a.signature) => {
                valid.insert(i);
            }
            Some(key) => problems.push(format!(
                "the signature of verifier {i} ({}) does not verify over the {word} message",
                hex::encode(key)
            )),
        }
    }
    if valid.len() < datum.threshold as usize {
        problems.push(format!(
            "{} distinct valid {word} signature(s), the threshold is {}",
            valid.len(),
            datum.threshold
        ));
    }
    problems
}
