/**
 * A pack made here from SPEC alone (cborg's canonical encoder, noble's signer): hundreds of
 * interleaved runs, runs sealed twice, streamed in chunk sizes that split frames and headers,
 * with and without a cut at the start; and a bad seal deep inside, reported at its index.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decodeEntry, verifyPack } from '../src/verify/index.ts';
import { streamOf, tar } from './helpers.ts';
import { log, makeLog, pack } from './synthetic.ts';

test('a pack of 300 interleaved runs verifies, in any chunking, whole and cut', async () => {
  const { entries, seals } = makeLog(300);
  assert.equal(decodeEntry(entries[1]!).kind, 'task.accepted', 'cborg writes canonical entries');
  const archive = tar(pack(entries, 0));
  for (const size of [1 << 20, 4096, 1021]) {
    let seen = 0n;
    const v = await verifyPack(streamOf(archive, size), log, { onEntry: () => seen++ });
    assert.equal(v.ok, true, v.message ?? v.malformed);
    assert.equal(v.report!.sealsVerified, seals);
    assert.equal(v.report!.openRuns, 0);
    assert.deepEqual(v.report!.partial, []);
    assert.equal(seen, BigInt(entries.length));
    assert.equal(v.entriesRead, BigInt(entries.length));
  }
  // Cut after the first 700 entries: every run is cut by the start, none is verified.
  const cut = await verifyPack(streamOf(tar(pack(entries, 700)), 777), log);
  assert.equal(cut.ok, true, cut.message);
  assert.equal(cut.report!.start, 700n);
  assert.equal(cut.report!.sealsVerified, 0);
  assert.equal(cut.report!.partial.length, 300);
});

test('a bad seal deep inside a pack is reported at its index', async () => {
  const { entries } = makeLog(60, 41);
  const v = await verifyPack(streamOf(tar(pack(entries, 0)), 997), log);
  assert.equal(v.ok, false);
  const index = entries.findIndex((e) => {
    const d = decodeEntry(e);
    return d.run === 'run-41' && d.kind === 'receipt.sealed';
  });
  assert.equal(v.error?.index, BigInt(index));
  assert.equal(v.message, `pack entries.bin at index ${index}: seal of run "run-41": signature does not verify under "gw"'s key`);
});
