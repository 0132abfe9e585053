/**
 * Strict Ed25519 (SPEC §4): what noble's `verify` accepts and ledger-core's `verify_strict`
 * refuses — a small-order key, a small-order `R`, a mixed-order key (the cofactored equation),
 * a non-canonical `S` — is refused here too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';

import { concatBytes, fromHex } from '../src/verify/bytes.ts';
import { publicKeyProblem, verifyStrict } from '../src/verify/ed25519.ts';

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const Point = ed25519.Point;
const msg = new TextEncoder().encode('a2a-ledger/seal/v1\nrun\n3\n…\ncompleted\n');

/** The encodings of small-order points (order 1, 2, 4 and 8). */
const SMALL_ORDER = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
].map(fromHex);
const T8 = Point.fromBytes(SMALL_ORDER[4]!, true);

function le(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}
function le32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}
const challenge = (r: Uint8Array, a: Uint8Array, m: Uint8Array): bigint => le(sha512(concatBytes(r, a, m))) % L;

const seed = new Uint8Array(32).fill(0x22);
const { scalar: a, pointBytes: A } = ed25519.utils.getExtendedPublicKey(seed);

test('a valid signature verifies; another message does not', () => {
  const sig = ed25519.sign(msg, seed);
  assert.equal(verifyStrict(A, msg, sig), true);
  assert.equal(verifyStrict(A, new Uint8Array([...msg, 0x0a]), sig), false);
  assert.equal(publicKeyProblem(A), undefined);
});

test('a small-order key is refused: (R = identity, S = 0) would verify any message', () => {
  const forged = concatBytes(SMALL_ORDER[0]!, new Uint8Array(32));
  assert.equal(ed25519.verify(forged, msg, SMALL_ORDER[0]!), true, "noble's default (ZIP-215) accepts it");
  assert.equal(verifyStrict(SMALL_ORDER[0]!, msg, forged), false);
  for (const p of SMALL_ORDER) {
    assert.match(publicKeyProblem(p)!, /small-order/);
    assert.equal(verifyStrict(p, msg, concatBytes(SMALL_ORDER[0]!, new Uint8Array(32))), false);
  }
  assert.equal(publicKeyProblem(fromHex('02'.padEnd(64, '0'))), 'not a valid curve point');
});

test('a small-order R is refused although the cofactored equation holds', () => {
  const r = SMALL_ORDER[4]!;
  const s = (challenge(r, A, msg) * a) % L;
  const sig = concatBytes(r, le32(s));
  assert.equal(ed25519.verify(sig, msg, A, { zip215: false }), true, "noble's strict mode accepts it");
  assert.equal(verifyStrict(A, msg, sig), false);
});

test('a mixed-order key is refused where only the cofactored equation holds', () => {
  const mixed = Point.fromBytes(A, true).add(T8).toBytes();
  assert.equal(publicKeyProblem(mixed), undefined, 'a mixed-order key is not of small order');
  // Sign with the secret of A but hash the mixed key's bytes (what a signer holding it would do).
  let found = 0;
  for (let i = 0; found < 3 && i < 64; i++) {
    const m = new Uint8Array([...msg, i]);
    const nonce = le(sha512(new Uint8Array([i, ...seed]))) % L;
    const R = Point.BASE.multiply(nonce).toBytes();
    const k = challenge(R, mixed, m);
    if (k % 8n === 0n) continue; // then [k]T vanishes and both equations agree
    const sig = concatBytes(R, le32((nonce + k * a) % L));
    assert.equal(ed25519.verify(sig, m, mixed, { zip215: false }), true, 'the cofactored equation holds');
    assert.equal(verifyStrict(mixed, m, sig), false, 'the cofactorless one does not');
    found++;
  }
  assert.equal(found, 3);
});

test('a non-canonical S (S + L) is refused', () => {
  const sig = ed25519.sign(msg, seed);
  const big = concatBytes(sig.subarray(0, 32), le32(le(sig.subarray(32)) + L));
  assert.equal(verifyStrict(A, msg, big), false);
  assert.equal(verifyStrict(A, msg, sig), true);
});

test('wrong lengths are refused', () => {
  const sig = ed25519.sign(msg, seed);
  assert.equal(verifyStrict(A.subarray(0, 31), msg, sig), false);
  assert.equal(verifyStrict(A, msg, sig.subarray(0, 63)), false);
});
