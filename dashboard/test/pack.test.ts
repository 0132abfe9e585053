/** Packs and checkpoint consistency: every pack and consistency case of testdata/verify/cases.json. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fromBase64, verifyConsistency, verifyPack } from '../src/verify/index.ts';
import { descriptor, packDir, streamOf, tar, text } from './helpers.ts';

interface Case {
  name: string;
  args: string[];
  exit: number;
  message: string;
}

const cases = (JSON.parse(text('testdata/verify/cases.json')) as { cases: Case[] }).cases;
const log = descriptor('testdata/verify/log.json');

for (const c of cases.filter((c) => c.args[0] === 'pack')) {
  test(`verify case: ${c.name}`, async () => {
    const archive = tar(packDir(`testdata/verify/${c.args[1]!}`));
    // Odd chunk sizes: frames and tar headers split across chunks.
    for (const size of [1 << 20, 509, 7]) {
      const progress: number[] = [];
      const v = await verifyPack(streamOf(archive, size), log, { onProgress: (n) => progress.push(n) });
      assert.equal(v.malformed, undefined, v.malformed);
      if (c.exit === 0) {
        assert.equal(v.ok, true, v.message);
        const m = /seals +(\d+) verified/.exec(c.message);
        assert.equal(v.report!.sealsVerified, Number(m![1]));
        assert.equal(progress.at(-1), archive.length);
        assert.equal(v.bytesRead, archive.length);
        continue;
      }
      assert.equal(v.ok, false);
      assert.ok(v.message!.includes(c.message), `${v.message} should contain ${c.message}`);
      const m = /^pack ([a-z.]+)(?: at index (\d+))?:/.exec(c.message)!;
      assert.equal(v.error?.file, m[1]);
      assert.equal(v.error?.index, m[2] === undefined ? undefined : BigInt(m[2]));
      assert.ok(progress.length > 0 && progress.every((n, i) => i === 0 || n > progress[i - 1]!));
    }
  });
}

for (const c of cases.filter((c) => c.args[0] === 'consistency')) {
  test(`verify case: ${c.name}`, async () => {
    const proof = (JSON.parse(text(`testdata/verify/${c.args[4]!}`)) as { proof: string[] }).proof.map(fromBase64);
    const v = await verifyConsistency(text(`testdata/verify/${c.args[1]!}`), text(`testdata/verify/${c.args[2]!}`), proof, log);
    if (c.exit === 0) {
      assert.equal(v.ok, true, v.error);
      return;
    }
    assert.equal(v.ok, false);
    assert.equal(v.fork, true);
    assert.ok(v.error!.startsWith(c.message), v.error);
    assert.equal(v.older?.size, 5n);
    assert.equal(v.newer?.size, 13n);
  });
}

test('entries.bin before the small files is held until they come', async () => {
  const files = packDir('testdata/verify/pack-valid');
  const reordered = [files[3]!, files[0]!, files[1]!, files[2]!];
  const v = await verifyPack(streamOf(tar(reordered), 100), log);
  assert.equal(v.ok, true, v.message);
  assert.equal(v.report!.sealsVerified, 4);
});

test('a pack missing a small file could not be checked; one without entries.bin, or a damaged tar, is invalid', async () => {
  const files = packDir('testdata/verify/pack-valid');
  const noProof = await verifyPack(streamOf(tar(files.filter(([n]) => n !== 'proof.json'))), log);
  assert.equal(noProof.ok, false);
  assert.equal(noProof.malformed, 'the pack has no proof.json');
  const noEntries = await verifyPack(streamOf(tar(files.filter(([n]) => n !== 'entries.bin'))), log);
  assert.equal(noEntries.message, 'the pack has no entries.bin');
  // A damaged archive is invalid (as ledger-verify says, exit 1); an empty one holds no manifest.
  const garbage = await verifyPack(streamOf(new TextEncoder().encode('not a tar at all'.repeat(64))), log);
  assert.match(garbage.message!, /^the tar archive is damaged: /);
  assert.equal(garbage.error?.file, 'tar');
  const flipped = tar(files);
  flipped[0]! ^= 1;
  assert.equal((await verifyPack(streamOf(flipped), log)).message, 'the tar archive is damaged: archive header checksum mismatch');
  const cut = await verifyPack(streamOf(tar(files).subarray(0, 700)), log);
  assert.match(cut.message!, /^the tar archive is damaged: /);
  const empty = await verifyPack(streamOf(new Uint8Array(0)), log);
  assert.equal(empty.malformed, 'the pack has no manifest.json');
});
