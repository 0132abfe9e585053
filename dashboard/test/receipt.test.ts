/** Receipts: the golden receipts verify, and every receipt case of testdata/verify/cases.json gets ledger-verify's verdict. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { verifyCheckpoint, verifyReceipt, type ReceiptVerdict } from '../src/verify/index.ts';
import { assertOutcome, caseArgs, caseClock, CASES, cosignedIn, loadTrust, malformedStep, readInput } from './cases.ts';
import { descriptor, text } from './helpers.ts';

const NOW = 1_800_000_000n;

for (const name of ['blake3', 'sha256', '1.1-blake3', '1.1-sha256']) {
  test(`golden receipt-${name}.json verifies at every step`, async () => {
    const hash = name.endsWith('sha256') ? 'sha256' : 'blake3';
    const log = descriptor(`testdata/golden/log-${hash}.json`);
    const v = await verifyReceipt(text(`testdata/golden/receipt-${name}.json`), log);
    assert.equal(v.ok, true, v.message ?? v.malformed);
    assert.deepEqual(
      v.steps.map((s) => [s.step, s.name, s.ok]),
      [
        [1, 'checkpoint signature', true],
        [2, 'inclusion proofs', true],
        [3, 'entries', true],
        [4, 'content hash', true],
        [5, 'seal signature', true],
      ],
    );
    assert.equal(v.status, 'completed');
    assert.ok(v.entries !== undefined && v.entries.length > 1);
    assert.equal(v.entries.at(-1)!.kind, 'receipt.sealed');
    assert.equal(v.signer?.kind, 'identity.registered');
    assert.equal(v.signer?.run, 'id/gateway');
  });

  test(`golden checkpoint-${name}.txt verifies`, async () => {
    const hash = name.endsWith('sha256') ? 'sha256' : 'blake3';
    const log = descriptor(`testdata/golden/log-${hash}.json`);
    const v = await verifyCheckpoint(text(`testdata/golden/checkpoint-${name}.txt`), log, { now: NOW });
    assert.equal(v.ok, true, v.error);
    assert.equal(v.checkpoint?.origin, log.origin);
    assert.ok(v.signers.some((s) => s.name === log.origin));
  });
}

test('a receipt checked against the other tree hash fails at step 1', async () => {
  const log = descriptor('testdata/golden/log-sha256.json');
  const v = await verifyReceipt(text('testdata/golden/receipt-blake3.json'), log);
  assert.equal(v.ok, false);
  assert.equal(v.failed?.step, 1);
  assert.match(v.message!, /^receipt is for log /);
  assert.deepEqual(
    v.steps.map((s) => s.reached),
    [true, false, false, false, false],
  );
});

/** The log index ledger-verify's message names (`… failed at index N: …`). */
function expectedIndex(message: string): bigint | undefined {
  const m = /receipt step \d \([a-z ]+\) failed at index (\d+)/.exec(message);
  return m === null ? undefined : BigInt(m[1]!);
}

for (const c of CASES.filter((c) => c.args[0] === 'receipt')) {
  test(`verify case: ${c.name}`, async () => {
    const args = caseArgs(c);
    // ledger-verify loads the descriptor and the policy before it reads the receipt.
    const trust = loadTrust(args);
    if (!trust.ok) {
      assertOutcome(c, { exit: 2, step: trust.step, message: trust.message });
      return;
    }
    const receipt = readInput(args);
    if (!receipt.ok) {
      assertOutcome(c, { exit: 2, step: null, message: receipt.message });
      return;
    }
    const opts = trust.policy === undefined ? {} : { policy: trust.policy, now: caseClock() };
    const v: ReceiptVerdict = await verifyReceipt(receipt.text, trust.log, opts);
    if (v.ok) {
      assert.equal(v.failed, undefined);
      // Under a policy the quorum is one more part of step 1, and it passed.
      assert.equal(v.steps.some((s) => s.name === 'witness quorum' && s.ok), trust.policy !== undefined);
      assert.equal(v.quorum?.satisfied ?? true, true);
      assert.deepEqual([c.exit, c.step], [0, null], `${c.name}: valid`);
      assert.equal(c.message, `${args.input}: valid`);
      return;
    }
    if (v.malformed !== undefined) {
      assert.deepEqual(v.steps, []);
      assertOutcome(c, { exit: 2, step: malformedStep(v.malformed), message: v.malformed });
      return;
    }
    const failed = v.failed!;
    assert.equal(failed.ok, false);
    assertOutcome(c, { exit: 1, step: failed.name === 'witness quorum' ? 'witness quorum' : failed.step, message: v.message! });
    assert.equal(failed.index, expectedIndex(c.message), v.message);
    // The steps before the failing one passed, the failing one is the last reached.
    const at = v.steps.indexOf(failed);
    assert.ok(v.steps.every((s, i) => (i < at ? s.ok && s.reached : i === at ? s.reached : !s.reached)), v.message);
    if (failed.name === 'witness quorum') {
      // Under a policy the quorum step is reached only after the log signature verified.
      assert.deepEqual([v.steps[0]!.name, v.steps[0]!.ok], ['checkpoint signature', true]);
      assert.equal(v.quorum?.satisfied, false);
      const cosigned = cosignedIn(c.message);
      if (cosigned !== undefined) assert.deepEqual(v.quorum!.cosigned, cosigned);
    }
  });
}

test('receipts that could not be checked are malformed, not invalid', async () => {
  const log = descriptor('testdata/golden/log-blake3.json');
  const good = text('testdata/golden/receipt-blake3.json');
  const variants: [string, string][] = [
    ['not JSON', good.slice(0, 100)],
    ['an unknown field', good.replace('{"format"', '{"extra":1,"format"')],
    ['a duplicate field', good.replace('{"format"', '{"run":"x","format"')],
    ['a wrong format', good.replace('a2a-ledger/receipt/v1', 'a2a-ledger/receipt/v2')],
    ['an index as a float', good.replace(/"index":(\d+)/, '"index":$1.0')],
    ['a negative index', good.replace(/"index":(\d+)/, '"index":-1')],
    ['an index over u64', good.replace(/"index":(\d+)/, '"index":18446744073709551616')],
    ['base64 with stray bits', good.replace(/"proof":\["([A-Za-z0-9+/]{42})[A-Za-z0-9+/]=/, '"proof":["$1B=')],
    ['a proof hash of 31 bytes', good.replace(/"proof":\["[A-Za-z0-9+/]{43}=/, '"proof":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==')],
    ['an unknown tree hash in the log', good.replace('"hash":"blake3"', '"hash":"sha3"')],
    ['trailing characters', `${good.trim()} x`],
  ];
  for (const [what, json] of variants) {
    assert.notEqual(json, good, what);
    const v = await verifyReceipt(json, log);
    assert.equal(v.ok, false, what);
    assert.ok(v.malformed?.startsWith('malformed receipt: '), `${what}: ${v.malformed ?? v.message}`);
    assert.deepEqual(v.steps, []);
  }
  // An index past 2^53 is read exactly and named exactly.
  const far = good.replace(/"index":(\d+)/, '"index":9007199254740993');
  const v = await verifyReceipt(far, log);
  assert.equal(v.failed?.step, 2);
  assert.equal(v.failed?.index, 9007199254740993n);
});
