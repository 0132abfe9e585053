/** Packs and checkpoint consistency: every pack and consistency case of testdata/verify/cases.json. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fromBase64, verifyConsistency, verifyPack } from '../src/verify/index.ts';
import { assertOutcome, caseArgs, caseClock, CASES, cosignedIn, loadTrust, malformedStep } from './cases.ts';
import { descriptor, packDir, streamOf, tar, text } from './helpers.ts';

const log = descriptor('testdata/verify/log.json');

/** The file a pack failure names for each pack check of cases.json. */
const CHECK_FILE: Record<string, string> = {
  entry: 'entries.bin',
  entries: 'entries.bin',
  files: 'manifest.json',
  consistency: 'proof.json',
  history: 'history.json',
};

for (const c of CASES.filter((c) => c.args[0] === 'pack')) {
  test(`verify case: ${c.name}`, async () => {
    const args = caseArgs(c);
    // ledger-verify loads the descriptor and the policy before it reads the pack.
    const trust = loadTrust(args);
    if (!trust.ok) {
      assertOutcome(c, { exit: 2, step: trust.step, message: trust.message });
      return;
    }
    const archive = tar(packDir(`testdata/verify/${args.input}`));
    const opts = trust.policy === undefined ? {} : { policy: trust.policy, now: caseClock() };
    // Odd chunk sizes: frames and tar headers split across chunks.
    for (const size of [1 << 20, 509, 7]) {
      const progress: number[] = [];
      const v = await verifyPack(streamOf(archive, size), trust.log, { ...opts, onProgress: (n) => progress.push(n) });
      if (v.malformed !== undefined) {
        assertOutcome(c, { exit: 2, step: malformedStep(v.malformed), message: v.malformed });
        continue;
      }
      if (v.ok) {
        assert.equal(v.error, undefined);
        assert.deepEqual([c.exit, c.step], [0, null], `${c.name}: valid`);
        // The case's message (ledger-verify's summary, not the API's text) is either the seal
        // count or the `<pack>: valid` line.
        const m = /seals +(\d+) verified/.exec(c.message);
        if (m !== null) assert.equal(v.report!.sealsVerified, Number(m[1]));
        else assert.equal(c.message, `${args.input}: valid`);
        assert.equal(v.quorum?.satisfied ?? true, true);
        assert.equal(v.quorum === undefined, trust.policy === undefined);
        assert.equal(progress.at(-1), archive.length);
        assert.equal(v.bytesRead, archive.length);
        continue;
      }
      const file = v.error?.file;
      const quorum = file === 'checkpoint' && v.message!.startsWith('checkpoint: step witness quorum failed: ');
      // A pack check is told by the file it names (entry and entries both by entries.bin).
      const named = typeof c.step === 'string' && CHECK_FILE[c.step] === file ? c.step : `a check of ${file}`;
      const step = quorum ? 'witness quorum' : named;
      assertOutcome(c, { exit: 1, step, message: v.message! });
      const m = /^pack ([a-z.]+)(?: at index (\d+))?:/.exec(c.message);
      if (m !== null) {
        assert.equal(v.error?.file, m[1]);
        assert.equal(v.error?.index, m[2] === undefined ? undefined : BigInt(m[2]));
      }
      if (quorum) {
        assert.equal(v.quorum?.satisfied, false);
        const cosigned = cosignedIn(c.message);
        if (cosigned !== undefined) assert.deepEqual(v.quorum!.cosigned, cosigned);
      }
      assert.ok(progress.length > 0 && progress.every((n, i) => i === 0 || n > progress[i - 1]!));
    }
  });
}

for (const c of CASES.filter((c) => c.args[0] === 'consistency')) {
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
