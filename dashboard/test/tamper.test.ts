/**
 * The tamper corpus (testdata/tamper/corpus.json, ledger-core's verdicts, made by
 * ledger-core/tests/tamper_corpus.rs): the same verdict, step and index here for every case.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parsePolicy, verifyPack, verifyReceipt, type LogDescriptor, type PackVerdict, type ReceiptVerdict } from '../src/verify/index.ts';
import { bytes, descriptor, packDir, streamOf, tar, text } from './helpers.ts';

interface Corpus {
  receipts: { receipt: string; log: string; flips: Record<string, string[]> }[];
  packs: { pack: string; log: string; file: string; flips: Record<string, string[]> }[];
  cases: { name: string; log: LogDescriptor; receipt: string; verdict: string; policy?: string }[];
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
  if (v.error === undefined) return `malformed: ${v.malformed}`;
  return `${v.error.file}${v.error.index !== undefined ? ` at ${v.error.index}` : ''}`;
}

for (const r of corpus.receipts) {
  test(`every flipped bit of ${r.receipt}: ledger-core's verdict`, async () => {
    const original = bytes(`testdata/${r.receipt}`);
    const log = descriptor(`testdata/${r.log}`);
    let checked = 0;
    for (const [bit, verdicts] of Object.entries(r.flips)) {
      assert.equal(verdicts.length, original.length);
      for (let pos = 0; pos < original.length; pos++) {
        const t = original.slice();
        t[pos]! ^= Number(bit);
        let got: string;
        try {
          got = receiptWords(await verifyReceipt(strictUtf8.decode(t), log));
        } catch (e) {
          // Bytes that are not UTF-8 are not JSON text: serde_json refuses them too.
          if (!(e instanceof TypeError)) throw e;
          got = 'malformed';
        }
        assert.equal(got, verdicts[pos], `bit ${bit} of byte ${pos}`);
        checked++;
      }
    }
    assert.ok(checked >= 2 * original.length);
  });
}

for (const p of corpus.packs) {
  test(`every flipped bit of ${p.pack}/${p.file}: ledger-core's verdict`, async () => {
    const files = packDir(`testdata/${p.pack}`);
    const log = descriptor(`testdata/${p.log}`);
    const at = files.findIndex(([n]) => n === p.file);
    const original = files[at]![1];
    for (const [bit, verdicts] of Object.entries(p.flips)) {
      for (let pos = 0; pos < original.length; pos++) {
        const t = original.slice();
        t[pos]! ^= Number(bit);
        const tampered = files.map(([n, b], i): [string, Uint8Array] => [n, i === at ? t : b]);
        const got = packWords(await verifyPack(streamOf(tar(tampered), 1 << 16), log));
        assert.equal(got, verdicts[pos], `bit ${bit} of byte ${pos}`);
      }
    }
  });
}

test('hand-made tamper cases: ledger-core\'s verdict, step and index', async () => {
  assert.ok(corpus.cases.length > 100);
  for (const c of corpus.cases) {
    const opts = c.policy === undefined ? {} : { policy: parsePolicy(c.policy) };
    const v = await verifyReceipt(c.receipt, c.log, opts);
    assert.equal(receiptWords(v), c.verdict, `${c.name}: ${v.message ?? v.malformed ?? ''}`);
    if (c.verdict.includes('witness quorum')) {
      assert.equal(v.quorum?.satisfied, false);
      assert.ok(v.quorum!.missing.length >= 2, c.name);
      assert.match(v.message!, /^receipt step 1 \(witness quorum\) failed: witness quorum not met: cosigned by \[/);
    }
  }
});
