#!/usr/bin/env python3
"""Mutation check of the validator's tests: removes (or weakens) one check at a
time in a scratch copy of contracts/, runs `aiken check`, and requires the named
fail__ tests to fail. A check whose removal no test notices is a hole in the
suite. Run from anywhere: python3 contracts/scripts/mutants.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
scratch = tempfile.mkdtemp(prefix="ntx-mutants-")
shutil.copytree(here, os.path.join(scratch, "contracts"), ignore=shutil.ignore_patterns("build"))
os.chdir(os.path.join(scratch, "contracts"))

# (file, text of the check, what replaces it, tests that must then fail)
cases = [
  ("lib/escrow/lock.ak", "    (threshold >= 1)?,\n", "", ["fail__lock_threshold_zero"]),
  ("lib/escrow/lock.ak", "    has_length(spec_hash, 32)?,\n", "", ["fail__lock_31_byte_spec_hash"]),
  ("lib/escrow/lock.ak", "      expect builtin.less_than_bytearray(previous, key)\n", "", ["fail__lock_duplicate_verifier_keys"]),
  ("lib/escrow/lock.ak", "    is_payee(provider)?,\n", "", ["fail__lock_provider_with_script_credential"]),
  ("lib/escrow/lock.ak", "        builtin.length_of_bytearray(h) == 28\n", "        True\n", ["fail__lock_provider_with_short_stake_hash", "fail__lock_requester_with_short_stake_hash"]),
  ("lib/escrow/lock.ak", "    (quantity == 1)?,\n", "", ["fail__lock_mints_two_tokens_for_one_job"]),
  ("lib/escrow/submit.ak", "    is_signed_by(self, builtin.un_b_data(builtin.head_list(agent_at)))?,\n", "", ["fail__submit_without_agent_signature"]),
  ("lib/escrow/settle.ak", "    burns_exactly(value.tokens(self.mint, own_hash), settled)?,\n", "    True,\n", ["fail__claim_job_token_not_burned"]),
  ("lib/escrow/settle.ak", "      quantity == -1 && burns_exactly(rest, settled - 1)", "burns_exactly(rest, settled - 1)", ["fail__claim_mints_instead_of_burning"]),
  ("lib/escrow/settle.ak", "      lovelace <= 0 && paid <= 0 && is_paid(rest)", "lovelace <= 0 && is_paid(rest)", ["fail__claim_pays_provider_one_ntx_unit_short"]),
  ("lib/escrow/attestation.ak", "  count_valid(attestations, verifiers, 0, message, 0) >= threshold", "count_valid(attestations, verifiers, 0, message, 0) >= 0", ["fail__claim_below_threshold"]),
  ("lib/escrow/attestation.ak", "      count_valid(rest, after, verifier_index + 1, message, count + 1)", "count_valid(rest, verifiers, 0, message, count + 1)", ["fail__claim_repeated_verifier_index"]),
  ("lib/ledger/interval.ak", "    Finite(upper) -> upper <= deadline", "    Finite(upper) -> upper <= deadline + 1", ["fail__claim_one_ms_late", "fail__submit_one_ms_late"]),
  ("lib/ledger/interval.ak", "    Finite(lower) -> lower > deadline", "    Finite(lower) -> lower >= deadline", ["fail__refund_no_show_at_submit_by", "fail__refund_timeout_at_settle_by"]),
  ("lib/escrow/holdings.ak", "  expect tokens == [Pair(job_id, 1)]\n", "", ["fail__settle_escrow_holding_another_jobs_token"]),
  ("lib/escrow/lock.ak", "    (address == Address {\n      payment_credential: Script(own_policy),\n      stake_credential: None,\n    })?,\n", "    (address.payment_credential == Script(own_policy))?,\n", ["fail__lock_escrow_output_with_a_stake_key", "fail__lock_escrow_output_with_a_script_stake_part"]),
  ("lib/escrow/submit.ak", "    (value.quantity_of(own.value, own_hash, job_id) == 1)?,\n", "", ["fail__submit_an_input_without_its_job_token"]),
  ("lib/escrow/settle.ak", "    5 -> {\n      expect builtin.fst_pair(state) == locked\n", "    5 -> {\n", ["fail__fast_claim_of_a_submitted_job"]),
  ("lib/escrow/settle.ak", "    6 -> {\n      expect builtin.fst_pair(state) == locked\n", "    6 -> {\n", ["fail__fast_refund_rejected_of_a_submitted_job"]),
  ("lib/escrow/settle.ak", "      expect fast_quorum(attestation.accept)\n", "", ["fail__fast_claim_below_threshold", "fail__fast_claim_names_another_result_hash"]),
  ("lib/escrow/settle.ak", "      expect fast_quorum(attestation.reject)\n", "      expect fast_quorum(attestation.accept)\n", ["fail__fast_refund_rejected_with_accepting_signatures"]),
  ("lib/escrow/settle.ak", "      expect fast_quorum(attestation.accept)\n      builtin.head_list(provider_at)", "      expect fast_quorum(attestation.accept)\n      builtin.head_list(requester_at)", ["fail__fast_claim_pays_the_requester"]),
  ("lib/escrow/settle.ak", "      expect fast_quorum(attestation.reject)\n      builtin.head_list(requester_at)", "      expect fast_quorum(attestation.reject)\n      builtin.head_list(provider_at)", ["fail__fast_refund_rejected_pays_the_provider"]),
  ("lib/escrow/settle.ak", "    5 -> {\n      expect builtin.fst_pair(state) == locked\n      expect\n        interval.ends_by(\n          range,\n          builtin.un_i_data(builtin.head_list(submit_by_at)),\n        )\n", "    5 -> {\n      expect builtin.fst_pair(state) == locked\n", ["fail__fast_claim_one_ms_after_submit_by", "fail__fast_claim_without_upper_bound"]),
]
ok = True
for path, old, new, expected in cases:
    src = open(path).read()
    if old not in src:
        print("MISSING", path, old.strip()); ok = False; continue
    open(path, "w").write(src.replace(old, new, 1))
    out = subprocess.run(["aiken", "check"], capture_output=True, text=True).stdout
    open(path, "w").write(src)
    try:
        j = json.loads(out[out.index("{"):out.rindex("}")+1])
    except Exception:
        print("NO JSON for", old.strip()); print(out[-800:]); ok = False; continue
    failed = [t["title"] for m in j["modules"] for t in m["tests"] if t["status"] != "pass"]
    hit = all(e in failed for e in expected)
    ok &= hit
    print(("OK  " if hit else "MISS"), path, "|", old.strip()[:60], "->", failed)
shutil.rmtree(scratch, ignore_errors=True)
print("all mutants caught" if ok else "some mutants survived")
sys.exit(0 if ok else 1)
