/**
 * Strict Ed25519 (SPEC §4): the rules of ed25519-dalek's `verify_strict`, which ledger-core uses,
 * so that this verifier and ledger-core agree on every signature.
 *
 * - `S` must be canonical (`S < L`);
 * - the public key `A` and `R` must decode to curve points and neither may be of small order
 *   (a small-order key makes a signature that verifies for every message);
 * - the equation is the cofactorless one: `R` must equal the encoding of `[S]B - [k]A` byte for
 *   byte, with `k = SHA-512(R ‖ A ‖ M) mod L` over the bytes as given.
 *
 * noble's `ed25519.verify` is not used: its default (`zip215: true`) accepts small-order keys and
 * `R`, and even with `zip215: false` it checks the cofactored equation and accepts a small-order
 * `R`, so a mixed-order signature could verify here and fail in ledger-core. Point decoding is
 * noble's with `zip215 = true`, which (like curve25519-dalek's decompression) reads a `y` that is
 * not reduced mod p; such a key is not of small order only in theory, and then both sides accept
 * it and hash its bytes as given.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { blake3 } from '@noble/hashes/blake3.js';
import { sha512 } from '@noble/hashes/sha2.js';

import { concatBytes, equalBytes, toHex } from './bytes.ts';

const Point = ed25519.Point;
/** The order of the prime subgroup. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function le(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

type EdPoint = ReturnType<typeof Point.fromBytes>;

function decode(b: Uint8Array): EdPoint | undefined {
  if (b.length !== 32) return undefined;
  try {
    return Point.fromBytes(b, true);
  } catch {
    return undefined;
  }
}

/**
 * Why `key` is not an Ed25519 public key the ledger accepts, or `undefined` when it is: a valid
 * point that is not of small order. The reasons are ledger-core's `BadPublicKey` texts.
 */
export function publicKeyProblem(key: Uint8Array): string | undefined {
  // Keys are few (a log key, a gateway's identities) and decompressing one costs a square root:
  // remember the verdicts (a pure function of the bytes).
  const id = toHex(key);
  const known = keyMemo.get(id);
  if (known !== undefined) return known === '' ? undefined : known;
  const p = decode(key);
  const problem =
    p === undefined ? 'not a valid curve point' : p.isSmallOrder() ? 'small-order point: it would accept forged signatures' : '';
  if (keyMemo.size >= MEMO_MAX) keyMemo.clear();
  keyMemo.set(id, problem);
  return problem === '' ? undefined : problem;
}

const keyMemo = new Map<string, string>();

/**
 * Decoded keys with their multiplication tables: a pack's seals are nearly all by one gateway
 * key, and a table makes each `[k]A` several times cheaper. The table is a cache of multiples of
 * the point; the result of the arithmetic is the same with or without it.
 */
const points = new Map<string, EdPoint | null>();
const POINTS_MAX = 64;

function keyPoint(key: Uint8Array): EdPoint | undefined {
  const id = toHex(key);
  const known = points.get(id);
  if (known !== undefined) return known ?? undefined;
  const p = decode(key);
  if (points.size >= POINTS_MAX) points.clear();
  points.set(id, p === undefined || p.isSmallOrder() ? null : p.precompute(8, false));
  return p;
}

/**
 * Verdicts already reached, keyed by key, signature and the BLAKE3 of the message: a dashboard
 * checks many receipts under one checkpoint and one gateway key, and a pure function's result
 * can be reused. BLAKE3's collision resistance makes the key as good as the message itself.
 */
const memo = new Map<string, boolean>();
const MEMO_MAX = 4096;

/** Strict Ed25519 verification of `sig` over `msg` under `key` (see the module doc). */
export function verifyStrict(key: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64 || key.length !== 32) return false;
  const id = toHex(key) + toHex(sig) + toHex(blake3(msg));
  const known = memo.get(id);
  if (known !== undefined) return known;
  const ok = verifyUncached(key, msg, sig);
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(id, ok);
  return ok;
}

function verifyUncached(key: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  const s = le(sig.subarray(32));
  if (s >= L) return false;
  const A = keyPoint(key);
  const rBytes = sig.subarray(0, 32);
  const R = decode(rBytes);
  if (A === undefined || R === undefined) return false;
  if (A.isSmallOrder() || R.isSmallOrder()) return false;
  const k = le(sha512(concatBytes(rBytes, key, msg))) % L;
  const expected = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k));
  return equalBytes(expected.toBytes(), rBytes);
}
