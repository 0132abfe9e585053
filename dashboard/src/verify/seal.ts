/** Seals (SPEC §3): the content hash over a run's leaf hashes and the message a seal signs. */
import { blake3 } from '@noble/hashes/blake3.js';

import { toHex, utf8Bytes } from './bytes.ts';

const CONTENT_HASH_PREFIX = utf8Bytes('a2a-ledger/run/v1\n');

/**
 * `BLAKE3("a2a-ledger/run/v1\n" ‖ LH(e_0) ‖ … ‖ LH(e_{k-1}))`: the leaf hashes use the log's
 * tree hash, the outer hash is always BLAKE3.
 */
export function contentHash(leaves: Iterable<Uint8Array>): Uint8Array {
  const h = blake3.create();
  h.update(CONTENT_HASH_PREFIX);
  for (const l of leaves) h.update(l);
  return h.digest();
}

/** The UTF-8 bytes a seal signs. */
export function sealMessage(run: string, events: bigint, contentHash: Uint8Array, status: string): Uint8Array {
  return utf8Bytes(`a2a-ledger/seal/v1\n${run}\n${events}\n${toHex(contentHash)}\n${status}\n`);
}
