/**
 * RFC 9162 Merkle tree proofs (SPEC §1) with BigInt arithmetic: indices and sizes are u64, and
 * JavaScript's bit operators are 32-bit.
 */
import { equalBytes } from './bytes.ts';
import { emptyRoot, nodeHash, type TreeHashName } from './hash.ts';

/** The largest power of two strictly below `n` (n >= 2). */
export function splitPoint(n: bigint): bigint {
  let k = 1n;
  while (k << 1n < n) k <<= 1n;
  return k;
}

/**
 * Checks that `leaf` is leaf `index` of the tree of `size` with `root`, walking the tree's shape
 * from the root down (as ledger-core's receipt verifier does). Returns why not, or `undefined`.
 * The reasons are ledger-core's.
 */
export function inclusionProblem(
  h: TreeHashName,
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  proof: Uint8Array[],
  root: Uint8Array,
): string | undefined {
  if (index >= size) return "index is not below the checkpoint's tree size";
  const ranges: [bigint, bigint][] = [];
  let start = 0n;
  let end = size;
  while (end - start > 1n) {
    ranges.push([start, end]);
    const k = splitPoint(end - start);
    if (index - start < k) end = start + k;
    else start += k;
  }
  if (proof.length !== ranges.length) return 'proof length does not match the tree';
  let node = leaf;
  let below = index;
  for (let i = 0; i < proof.length; i++) {
    const [s, e] = ranges[ranges.length - 1 - i]!;
    node = below === s ? nodeHash(h, node, proof[i]!) : nodeHash(h, proof[i]!, node);
    below = s;
    void e;
  }
  if (!equalBytes(node, root)) return 'computed root differs from the checkpoint root';
  return undefined;
}

/**
 * RFC 9162 §2.1.4.2: checks that `(oldSize, oldRoot)` is a prefix of `(newSize, newRoot)`.
 * Returns why not (ledger-core's reasons), or `undefined`.
 */
export function consistencyProblem(
  h: TreeHashName,
  oldSize: bigint,
  newSize: bigint,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: Uint8Array[],
): string | undefined {
  if (oldSize > newSize) return 'the old tree is larger than the new one';
  if (oldSize === newSize) {
    if (proof.length !== 0) return 'a proof between equal sizes must be empty';
    return equalBytes(oldRoot, newRoot) ? undefined : 'equal sizes with different roots';
  }
  if (oldSize === 0n) {
    if (proof.length !== 0) return 'a proof from the empty tree must be empty';
    return equalBytes(oldRoot, emptyRoot(h)) ? undefined : 'the empty tree has another root';
  }
  if (proof.length === 0) return 'empty proof';
  let path = proof;
  let first: Uint8Array;
  if ((oldSize & (oldSize - 1n)) === 0n) {
    first = oldRoot;
  } else {
    first = path[0]!;
    path = path.slice(1);
  }
  let fnode = oldSize - 1n;
  let snode = newSize - 1n;
  while ((fnode & 1n) === 1n) {
    fnode >>= 1n;
    snode >>= 1n;
  }
  let fr = first;
  let sr = first;
  for (const c of path) {
    if (snode === 0n) return 'proof is longer than expected';
    if ((fnode & 1n) === 1n || fnode === snode) {
      fr = nodeHash(h, c, fr);
      sr = nodeHash(h, c, sr);
      if ((fnode & 1n) === 0n) {
        while ((fnode & 1n) === 0n && fnode !== 0n) {
          fnode >>= 1n;
          snode >>= 1n;
        }
      }
    } else {
      sr = nodeHash(h, sr, c);
    }
    fnode >>= 1n;
    snode >>= 1n;
  }
  if (snode !== 0n) return 'proof is shorter than expected';
  if (!equalBytes(fr, oldRoot)) return 'proof does not lead to the old root';
  if (!equalBytes(sr, newRoot)) return 'proof does not lead to the new root';
  return undefined;
}

/**
 * The compact range of `[0, size)`: the roots of the perfect subtrees `size` decomposes into,
 * largest first. Appending leaves keeps it at one hash per set bit of the size.
 */
export class CompactRange {
  private constructor(
    private size: bigint,
    private readonly hashes: Uint8Array[],
  ) {}

  /** A range from its parts, or `undefined` when `hashes` is not one per set bit of `size`. */
  static fromParts(size: bigint, hashes: Uint8Array[]): CompactRange | undefined {
    let bits = 0;
    for (let s = size; s > 0n; s >>= 1n) bits += Number(s & 1n);
    return bits === hashes.length ? new CompactRange(size, [...hashes]) : undefined;
  }

  /** Appends one leaf hash. */
  push(h: TreeHashName, leaf: Uint8Array): void {
    let index = this.size;
    let node = leaf;
    while ((index & 1n) === 1n) {
      const left = this.hashes.pop()!;
      node = nodeHash(h, left, node);
      index >>= 1n;
    }
    this.hashes.push(node);
    this.size += 1n;
  }

  /** Folds the range into the root of `[0, size)`. */
  root(h: TreeHashName): Uint8Array {
    if (this.hashes.length === 0) return emptyRoot(h);
    let acc = this.hashes[this.hashes.length - 1]!;
    for (let i = this.hashes.length - 2; i >= 0; i--) acc = nodeHash(h, this.hashes[i]!, acc);
    return acc;
  }
}
