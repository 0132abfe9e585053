/**
 * The tree hash (SPEC §1): `blake3` or `sha256`, leaf hash `H(0x00 ‖ e)`, node hash
 * `H(0x01 ‖ l ‖ r)`, empty root `H("")`.
 */
import { blake3 } from '@noble/hashes/blake3.js';
import { sha256 } from '@noble/hashes/sha2.js';

import { toHex } from './bytes.ts';

/** A log's tree hash function. */
export type TreeHashName = 'blake3' | 'sha256';

/** The hash function `H` of a tree. */
export function treeHash(name: TreeHashName): (b: Uint8Array) => Uint8Array {
  return name === 'blake3' ? (b) => blake3(b) : (b) => sha256(b);
}

/** `LH(entry) = H(0x00 ‖ entry)`. */
export function leafHash(name: TreeHashName, entry: Uint8Array): Uint8Array {
  const buf = new Uint8Array(entry.length + 1);
  buf.set(entry, 1);
  return treeHash(name)(buf);
}

/** `NH(l, r) = H(0x01 ‖ l ‖ r)`, hashed from one contiguous buffer. */
export function nodeHash(name: TreeHashName, l: Uint8Array, r: Uint8Array): Uint8Array {
  const buf = new Uint8Array(65);
  buf[0] = 1;
  buf.set(l, 1);
  buf.set(r, 33);
  return treeHash(name)(buf);
}

/** The root of the empty tree, `H("")`. */
export function emptyRoot(name: TreeHashName): Uint8Array {
  return treeHash(name)(new Uint8Array(0));
}

/** BLAKE3-256 of `bytes`. */
export function blake3Bytes(bytes: Uint8Array): Uint8Array {
  return blake3(bytes);
}

/** Lowercase hex of BLAKE3-256 of `bytes` (payloads are named by it). */
export function blake3Hex(bytes: Uint8Array): string {
  return toHex(blake3(bytes));
}

/** An incremental BLAKE3 (for `entries.bin` and payload files streamed in chunks). */
export function blake3Stream(): { update(b: Uint8Array): void; hex(): string } {
  const h = blake3.create();
  return {
    update: (b) => {
      h.update(b);
    },
    hex: () => toHex(h.digest()),
  };
}

/** SHA-256 of `bytes`. */
export function sha256Bytes(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}
