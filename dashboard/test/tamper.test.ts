/**
 * The tamper corpus (testdata/tamper/corpus.json, ledger-core's verdicts, made by
 * ledger-core/tests/tamper_corpus.rs): the same verdict, step and index here for every case.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parsePolicy, verifyPack, verifyReceipt, type LogDescriptor, type PackVerdict, type ReceiptVerdict } from '../src/verify/index.ts';
import { bytes, descriptor, packDir, streamOf, tar, text } from './helpers.ts';

interface Corpus {
  receipts: { receipt: string; log: string; flips: Record<string, string[]>; messages: Record<string, string[]> }[];
  packs: { pack: string; log: string; file: string; flips: Record<string, string[]>; messages: Record<string, string[]> }[];
  cases: { name: string; log: LogDescriptor; receipt: string; verdict: string; message: string; policy?: string }[];
}

const corpus = JSON.parse(text('testdata/tamper/corpus.json')) as Corpus;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A receipt verdict in the corpus's words. */
function receiptWords(v: ReceiptVerdict): string {
  if (v.ok) return 'valid';
  if (v.malformed !== undefined) return 'malformed';
  const f = v.failed!;
  const name = f.name === 'witness quorum' ? ' (witness quorum)' : '';
  return `step ${f.step}${name}${f.index !== undefined ? ` at ${f.index}` : ''}`;
}

/** A pack verdict in the corpus's words. */
function packWords(v: PackVerdict): string {
  if (v.ok) return 'valid';
  if (v.error === undefined) return 'malformed';
  return `${v.error.file}${v.error.index !== undefined ? ` at ${v.error.index}` : ''}`;
}

for (const r of corpus.receipts) {
  test(`every flipped bit of ${r.receipt}: ledger-core's verdict and message`, async () => {
    const original = bytes(`testdata/${r.receipt}`);
    const log = descriptor(`testdata/${r.log}`);
    let checked = 0;
    for (const [bit, verdicts] of Object.entries(r.flips)) {
      assert.equal(verdicts.length, original.length);
      for (let pos = 0; pos < original.length; pos++) {
        const t = original.slice();
        t[pos]! ^= Number(bit);
        let got: string;
        let message = '';
        try {
          const v = await verifyReceipt(strictUtf8.decode(t), log);
          got = receiptWords(v);
          message = v.message ?? '';
        } catch (e) {
          // Bytes that are not UTF-8 are not JSON text: serde_json refuses them too.
          if (!(e instanceof TypeError)) throw e;
          got = 'malformed';
        }
        assert.equal(got, verdicts[pos], `bit ${bit} of byte ${pos}`);
        assert.equal(message, r.messages[bit]![pos], `bit ${bit} of byte ${pos}: ledger-verify's words`);
        checked++;
      }
    }
    assert.ok(checked >= 2 * original.length);
  });
}

for (const p of corpus.packs) {
  test(`every flipped bit of ${p.pack}/${p.file}: ledger-core's verdict and message`, async () => {
    const files = packDir(`testdata/${p.pack}`);
    const log = descriptor(`testdata/${p.log}`);
    const at = files.findIndex(([n]) => n === p.file);
    const original = files[at]![1];
    for (const [bit, verdicts] of Object.entries(p.flips)) {
      for (let pos = 0; pos < original.length; pos++) {
        const t = original.slice();
        t[pos]! ^= Number(bit);
        const tampered = files.map(([n, b], i): [string, Uint8Array] => [n, i === at ? t : b]);
        const v = await verifyPack(streamOf(tar(tampered), 1 << 16), log);
        assert.equal(packWords(v), verdicts[pos], `bit ${bit} of byte ${pos}`);
        const message = p.messages[bit]![pos]!;
        // (Empty: valid, not checked, or another log, which ledger-verify names in its own words.)
        if (message !== '') assert.equal(v.message, message, `bit ${bit} of byte ${pos}: ledger-verify's words`);
      }
    }
  });
}

test('hand-made tamper cases: ledger-core\'s verdict, step, index and message', async () => {
  assert.ok(corpus.cases.length > 100);
  for (const c of corpus.cases) {
    const opts = c.policy === undefined ? {} : { policy: parsePolicy(c.policy) };
    const v = await verifyReceipt(c.receipt, c.log, opts);
    assert.equal(receiptWords(v), c.verdict, `${c.name}: ${v.message ?? v.malformed ?? ''}`);
    // The same words for the auditor, too: ledger-verify's line, byte for byte.
    assert.equal(v.message ?? '', c.message, c.name);
    if (c.verdict.includes('witness quorum')) {
      assert.equal(v.quorum?.satisfied, false);
      assert.ok(v.quorum!.missing.length >= 2, c.name);
      assert.match(v.message!, /^receipt step 1 \(witness quorum\) failed: witness quorum not met: cosigned by \[/);
    }
  }
});

interface PayloadPack {
  dir: string;
  log: LogDescriptor;
  payload_byte_changed: string;
  report: {
    start: number;
    end: number;
    tree_size: number;
    seals_verified: number;
    open_runs: number;
    partial: { run: string; reason: string }[];
    payloads_included: number;
    payloads_absent: string[];
    payloads_erased: { hash: string; index: number; approver: string; reason: string }[];
  };
}

test("a pack with payloads and an erasure: ledger-core's report, and a changed payload names its file", async () => {
  const p = (corpus as unknown as { payload_pack: PayloadPack }).payload_pack;
  const files = packDir(`testdata/${p.dir}`);
  const v = await verifyPack(streamOf(tar(files), 333), p.log);
  assert.equal(v.ok, true, v.message ?? v.malformed);
  const r = v.report!;
  const want = p.report;
  assert.deepEqual(
    [r.start, r.end, r.treeSize, r.sealsVerified, r.openRuns, r.payloadsIncluded],
    [BigInt(want.start), BigInt(want.end), BigInt(want.tree_size), want.seals_verified, want.open_runs, want.payloads_included],
  );
  assert.deepEqual(r.partial, want.partial);
  assert.deepEqual(r.payloadsAbsent, want.payloads_absent);
  // ts passes 2^53: compared as the corpus's digits.
  const ts = /"payloads_erased":\[\{[^}]*"ts":(\d+)/.exec(text('testdata/tamper/corpus.json'))![1]!;
  assert.deepEqual(
    r.payloadsErased.map((e) => [e.hash, e.index, e.approver, e.reason, e.ts]),
    want.payloads_erased.map((e) => [e.hash, BigInt(e.index), e.approver, e.reason, BigInt(ts)]),
  );
  assert.deepEqual(r.files, files.slice(4).map(([n]) => n));

  const changed = files.map(([n, b]): [string, Uint8Array] => [n, n.startsWith('payloads/') ? new Uint8Array([b[0]! ^ 1, ...b.subarray(1)]) : b]);
  const bad = await verifyPack(streamOf(tar(changed)), p.log);
  assert.equal(bad.error?.file, p.payload_byte_changed);
  assert.match(bad.message!, /the payload hashes to [0-9a-f]{64}, not to its name/);

  // A file the manifest does not list, and a listed one the pack lacks.
  const extra = await verifyPack(streamOf(tar([...files, ['notes.txt', new Uint8Array([1])]])), p.log);
  assert.equal(extra.message, 'pack manifest.json: the pack holds notes.txt, which the manifest does not list');
  const lacking = await verifyPack(streamOf(tar(files.slice(0, 4))), p.log);
  assert.match(lacking.message!, /^the manifest lists payloads\/[0-9a-f]{64}, which the pack does not hold$/);
});
