/**
 * Trust policies and cosignatures (SPEC §8): parsing refusals naming the line (ledger-core's
 * texts), evaluation of groups and quorums, and checkpoints verified under a policy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ed25519 } from '@noble/curves/ed25519.js';

import { toBase64, toHex } from '../src/verify/bytes.ts';
import { parsePolicy, PolicyError, verifyCheckpoint, verifyPack, verifyReceipt } from '../src/verify/index.ts';
import { keyId, parseNote } from '../src/verify/note.ts';
import { cosignedMessage, parsePolicyBytes } from '../src/verify/policy.ts';
import { descriptor, streamOf, text } from './helpers.ts';

const NOW = 1_767_225_600n;

function witness(i: number): { name: string; seed: Uint8Array; vkey: string } {
  const name = `witness.example/w${i}`;
  const seed = new Uint8Array(32).fill(100 + i);
  const pub = ed25519.getPublicKey(seed);
  return { name, seed, vkey: `${name}+${toHex(keyId(name, 4, pub))}+${toBase64(new Uint8Array([4, ...pub]))}` };
}

/** A `cosignature/v1` line of witness `i` on `note` at `time`. */
function cosign(note: string, i: number, time: bigint): string {
  const w = witness(i);
  const pub = ed25519.getPublicKey(w.seed);
  const textPart = parseNote(note).text;
  const sig = ed25519.sign(cosignedMessage(textPart, time), w.seed);
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setBigUint64(0, time);
  return `\u2014 ${w.name} ${toBase64(new Uint8Array([...keyId(w.name, 4, pub), ...ts, ...sig]))}\n`;
}

function refused(policy: string, line: number, why: string): void {
  try {
    parsePolicy(policy);
  } catch (e) {
    assert.ok(e instanceof PolicyError, String(e));
    assert.equal(e.line, line, e.message);
    assert.ok(e.reason.includes(why), `${e.reason} lacks ${why}`);
    assert.equal(e.message, `trust policy, line ${line}: ${e.reason}`);
    return;
  }
  assert.fail(`accepted: ${JSON.stringify(policy)}`);
}

const log = descriptor('testdata/golden/log-sha256.json');
const ws = [1, 2, 3].map((i) => `witness W${i} ${witness(i).vkey}\n`).join('');

test('the C2SP example of two levels of groups parses and prints canonically', () => {
  const example = `log ${log.vkey}\n\n${ws}group X 2 W1 W2 W3\n\nwitness Y1 ${witness(4).vkey}\ngroup Y any Y1\n\ngroup XY all X Y\nquorum XY\n`;
  const p = parsePolicy(example);
  assert.equal(p.logs.length, 1);
  assert.equal(p.witnesses.length, 4);
  assert.deepEqual(
    p.groups.map((g) => g.threshold),
    [2, 1, 2],
  );
  assert.equal(parsePolicy(p.toString()).toString(), p.toString());
});

test('comments, blank lines, tabs, URLs and a last line without its newline', () => {
  const p = parsePolicy(`# c\n   # é\n\t\n  \nlog\t${log.vkey}  https://log.example/  \n\twitness  W1 ${witness(1).vkey} https://w1.example\nquorum W1`);
  assert.equal(p.logs[0]!.url, 'https://log.example/');
  assert.equal(p.witnesses[0]!.url, 'https://w1.example');
  assert.equal(parsePolicyBytes(new Uint8Array([0x23, 0xff, 0xfe, 0x0a, ...new TextEncoder().encode('quorum none\n')])).quorum, 'none');
});

test('refusals name the line and say what is wrong', () => {
  refused('quorum none\r\n', 1, 'byte 0x0d');
  refused('# ok\nquorum\x01 none\n', 2, 'byte 0x01');
  refused('frobnicate x\nquorum none\n', 1, 'unknown keyword "frobnicate"');
  refused('# nothing\n\n', 0, 'no quorum line');
  refused('', 0, 'no quorum line');
  refused('log\nquorum none\n', 1, 'log takes <vkey> [<url>], found 0');
  refused('log nonsense\nquorum none\n', 1, 'log key: malformed verifier key');
  refused(`log ${witness(1).vkey}\nquorum none\n`, 1, 'not Ed25519 (0x01)');
  refused(`witness W1 ${log.vkey}\nquorum none\n`, 1, 'type 0x01 is a log');
  refused(`witness none ${witness(1).vkey}\nquorum none\n`, 1, 'reserved');
  refused(`${ws}witness W1 ${witness(4).vkey}\nquorum none\n`, 4, 'duplicate name W1: already defined on line 1');
  refused(`${ws}witness W4 ${witness(1).vkey}\nquorum none\n`, 4, 'W4 has the same public key as W1 on line 1');
  refused(`${ws}group G\nquorum none\n`, 4, 'group takes <name> <k|any|all> <member>');
  refused(`${ws}group G 1\nquorum none\n`, 4, 'group G has no members');
  refused(`${ws}group G 3 W1 W2\nquorum none\n`, 4, 'threshold 3 is not between 1 and its 2 members');
  refused(`${ws}group G 99999999999999999999999 W1\nquorum none\n`, 4, 'not between');
  refused(`${ws}group G -1 W1\nquorum none\n`, 4, 'threshold "-1" is not a decimal number, any or all');
  refused(`${ws}group G any W1 none\nquorum none\n`, 4, 'none cannot be a group member');
  refused(`${ws}group G any W1 D\nquorum none\n`, 4, 'group G: D is not a witness or group defined on an earlier line');
  refused(`group G any W1\n${ws}quorum none\n`, 1, 'W1 is not a witness or group defined');
  refused(`${ws}group G 1 W1 W1\nquorum none\n`, 4, 'W1 is already a member of group G (line 4)');
  refused(`${ws}group G any W1 W2\ngroup H any W1 W3\nquorum none\n`, 5, 'a name may be a member only once');
  refused('quorum\n', 1, 'quorum takes one name, found 0');
  refused('quorum none\nquorum none\n', 2, 'a second quorum line (the first is line 1)');
  refused(`quorum W1\n${ws}`, 1, 'quorum: W1 is not a witness or group defined on an earlier line');
});

const note = text('testdata/golden/checkpoint-1.1-sha256.txt');
const twoOfThree = parsePolicy(`# three\n${ws}group two 2 W1 W2 W3\nquorum two\n`);

test('a checkpoint under a 2-of-3 policy: two cosignatures pass, one fails naming who did not', async () => {
  const ok = await verifyCheckpoint(note + cosign(note, 1, NOW) + cosign(note, 3, NOW), log, { policy: twoOfThree, now: NOW });
  assert.equal(ok.ok, true, ok.error);
  assert.deepEqual(ok.quorum!.cosigned, ['W1', 'W3']);
  assert.deepEqual(ok.quorum!.missing, ['W2 (no cosignature)']);
  assert.equal(ok.signers.length, 3);

  const one = await verifyCheckpoint(note + cosign(note, 2, NOW), log, { policy: twoOfThree, now: NOW });
  assert.equal(one.ok, false);
  assert.equal(one.error, 'step witness quorum failed: witness quorum not met: cosigned by [W2], not by [W1 (no cosignature), W3 (no cosignature)]');

  // A future timestamp does not count; nor does a tampered line.
  const future = await verifyCheckpoint(note + cosign(note, 1, NOW + 601n) + cosign(note, 2, NOW), log, { policy: twoOfThree, now: NOW });
  assert.equal(future.ok, false);
  assert.ok(future.quorum!.missing.includes(`W1 (timestamp ${NOW + 601n} is in the future)`), future.error);
  const inTime = await verifyCheckpoint(note + cosign(note, 1, NOW + 600n) + cosign(note, 2, NOW), log, { policy: twoOfThree, now: NOW });
  assert.equal(inTime.ok, true, inTime.error);
  const line = cosign(note, 1, NOW);
  const tampered = line.slice(0, 40) + (line[40] === 'A' ? 'B' : 'A') + line.slice(41);
  const bad = await verifyCheckpoint(note + tampered + cosign(note, 2, NOW), log, { policy: twoOfThree, now: NOW });
  assert.equal(bad.ok, false);
  assert.ok(bad.quorum!.missing.some((m) => m.startsWith('W1 (')), bad.error);

  // Without a policy the cosignature lines change nothing.
  assert.equal((await verifyCheckpoint(note + tampered, log)).ok, true);
});

test('receipts under a policy: step 1 named witness quorum, with who did and did not cosign', async () => {
  const r = JSON.parse(text('testdata/golden/receipt-1.1-sha256.json')) as { checkpoint: string };
  const withLines = (lines: string): string => JSON.stringify({ ...r, checkpoint: r.checkpoint + lines });
  const ok = await verifyReceipt(withLines(cosign(r.checkpoint, 1, NOW) + cosign(r.checkpoint, 2, NOW)), log, { policy: twoOfThree, now: NOW });
  assert.equal(ok.ok, true, ok.message);
  assert.deepEqual(
    ok.steps.map((s) => [s.step, s.name, s.ok]),
    [
      [1, 'checkpoint signature', true],
      [1, 'witness quorum', true],
      [2, 'inclusion proofs', true],
      [3, 'entries', true],
      [4, 'content hash', true],
      [5, 'seal signature', true],
    ],
  );
  const v = await verifyReceipt(withLines(cosign(r.checkpoint, 2, NOW)), log, { policy: twoOfThree, now: NOW });
  assert.equal(v.ok, false);
  assert.equal(v.failed?.name, 'witness quorum');
  assert.equal(
    v.message,
    'receipt step 1 (witness quorum) failed: witness quorum not met: cosigned by [W2], not by [W1 (no cosignature), W3 (no cosignature)]',
  );
  assert.deepEqual(v.quorum?.cosigned, ['W2']);
  assert.deepEqual(
    v.steps.map((s) => s.reached),
    [true, true, false, false, false, false],
  );
});

test('a policy whose log lines name another key could not be checked against the descriptor', async () => {
  const pub = ed25519.getPublicKey(new Uint8Array(32).fill(0x55));
  const other = `${log.origin}+${toHex(keyId(log.origin, 1, pub))}+${toBase64(new Uint8Array([1, ...pub]))}`;
  const p = parsePolicy(`log ${other}\nquorum none\n`);
  const v = await verifyReceipt(text('testdata/golden/receipt-1.1-sha256.json'), log, { policy: p, now: NOW });
  assert.equal(v.ok, false);
  assert.match(v.malformed!, /^the trust policy's log lines name \[/);
});

test('a policy naming another log is refused before the pack or checkpoint is read, as ledger-verify refuses it at load', async () => {
  const trusted = descriptor('testdata/verify/log.json');
  const other = parsePolicy(text('testdata/verify/policy/bad-other-log.txt'));
  const garbage = new TextEncoder().encode('not a tar at all'.repeat(64));
  const pack = await verifyPack(streamOf(garbage), trusted, { policy: other, now: NOW });
  assert.equal(pack.ok, false);
  assert.equal(pack.error, undefined);
  assert.match(pack.malformed!, /^the trust policy's log lines name \[verify\.a2a-ledger\.example\/log\+7aca4a8a\+/);
  assert.equal(pack.bytesRead, 0);
  // Without the policy the same bytes are a damaged tar (invalid, not unchecked).
  assert.match((await verifyPack(streamOf(garbage), trusted)).message!, /^the tar archive is damaged: /);
  const cp = await verifyCheckpoint('not a note', trusted, { policy: other, now: NOW });
  assert.equal(cp.ok, false);
  assert.match(cp.error!, /^the trust policy's log lines name \[/);
  assert.deepEqual(cp.signers, []);
});
