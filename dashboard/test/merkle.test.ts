/**
 * RFC 9162 proofs against a naive recursive oracle (MTH, PATH, PROOF/SUBPROOF of RFC 9162
 * §2.1), for every size up to 40 and both tree hashes: every proof verifies, every changed hash
 * or neighbouring index fails; compact ranges fold to the same roots.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { emptyRoot, leafHash, nodeHash, type TreeHashName } from '../src/verify/hash.ts';
import { CompactRange, consistencyProblem, inclusionProblem, splitPoint } from '../src/verify/merkle.ts';

function mth(h: TreeHashName, leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return emptyRoot(h);
  if (leaves.length === 1) return leaves[0]!;
  const k = Number(splitPoint(BigInt(leaves.length)));
  return nodeHash(h, mth(h, leaves.slice(0, k)), mth(h, leaves.slice(k)));
}

function path(h: TreeHashName, m: number, leaves: Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  const k = Number(splitPoint(BigInt(leaves.length)));
  return m < k
    ? [...path(h, m, leaves.slice(0, k)), mth(h, leaves.slice(k))]
    : [...path(h, m - k, leaves.slice(k)), mth(h, leaves.slice(0, k))];
}

function subproof(h: TreeHashName, m: number, leaves: Uint8Array[], b: boolean): Uint8Array[] {
  const n = leaves.length;
  if (m === n) return b ? [] : [mth(h, leaves)];
  const k = Number(splitPoint(BigInt(n)));
  return m <= k
    ? [...subproof(h, m, leaves.slice(0, k), b), mth(h, leaves.slice(k))]
    : [...subproof(h, m - k, leaves.slice(k), false), mth(h, leaves.slice(0, k))];
}

const flip = (b: Uint8Array): Uint8Array => {
  const c = b.slice();
  c[5]! ^= 0x10;
  return c;
};

for (const h of ['blake3', 'sha256'] as const) {
  const leaves = Array.from({ length: 40 }, (_, i) => leafHash(h, new TextEncoder().encode(`entry ${i}`)));

  test(`${h}: inclusion proofs of every leaf of every size up to 40`, () => {
    for (let n = 1; n <= 40; n++) {
      const tree = leaves.slice(0, n);
      const root = mth(h, tree);
      for (let m = 0; m < n; m++) {
        const proof = path(h, m, tree);
        assert.equal(inclusionProblem(h, BigInt(m), BigInt(n), tree[m]!, proof, root), undefined, `${m} of ${n}`);
        assert.notEqual(inclusionProblem(h, BigInt(m), BigInt(n), flip(tree[m]!), proof, root), undefined);
        proof.forEach((_, j) => {
          const bad = proof.map((p, i) => (i === j ? flip(p) : p));
          assert.notEqual(inclusionProblem(h, BigInt(m), BigInt(n), tree[m]!, bad, root), undefined);
        });
        assert.notEqual(inclusionProblem(h, BigInt(m), BigInt(n), tree[m]!, [...proof, root], root), undefined);
        if (m + 1 < n) assert.notEqual(inclusionProblem(h, BigInt(m + 1), BigInt(n), tree[m]!, proof, root), undefined);
      }
      assert.equal(inclusionProblem(h, BigInt(n), BigInt(n), tree[0]!, [], root), "index is not below the checkpoint's tree size");
    }
  });

  test(`${h}: consistency proofs between every pair of sizes up to 40`, () => {
    for (let n = 1; n <= 40; n++) {
      const newRoot = mth(h, leaves.slice(0, n));
      for (let m = 0; m <= n; m++) {
        const oldRoot = mth(h, leaves.slice(0, m));
        const proof = m === 0 ? [] : subproof(h, m, leaves.slice(0, n), true);
        assert.equal(consistencyProblem(h, BigInt(m), BigInt(n), oldRoot, newRoot, proof), undefined, `${m} → ${n}`);
        if (m > 0 && m < n) {
          proof.forEach((_, j) => {
            const bad = proof.map((p, i) => (i === j ? flip(p) : p));
            assert.notEqual(consistencyProblem(h, BigInt(m), BigInt(n), oldRoot, newRoot, bad), undefined);
          });
          assert.notEqual(consistencyProblem(h, BigInt(m), BigInt(n), flip(oldRoot), newRoot, proof), undefined);
          assert.notEqual(consistencyProblem(h, BigInt(m), BigInt(n), oldRoot, flip(newRoot), proof), undefined);
          assert.equal(consistencyProblem(h, BigInt(m), BigInt(n), oldRoot, newRoot, []), 'empty proof');
        }
      }
      assert.equal(consistencyProblem(h, BigInt(n), BigInt(n - 1), newRoot, newRoot, []), 'the old tree is larger than the new one');
    }
  });

  test(`${h}: compact ranges extended leaf by leaf fold to the tree's roots`, () => {
    for (let s = 0; s <= 20; s++) {
      const left: Uint8Array[] = [];
      let start = 0;
      for (let bit = 5; bit >= 0; bit--) {
        if (s & (1 << bit)) {
          left.push(mth(h, leaves.slice(start, start + (1 << bit))));
          start += 1 << bit;
        }
      }
      const range = CompactRange.fromParts(BigInt(s), left)!;
      assert.deepEqual(range.root(h), mth(h, leaves.slice(0, s)));
      for (let e = s; e < 40; e++) {
        range.push(h, leaves[e]!);
        assert.deepEqual(range.root(h), mth(h, leaves.slice(0, e + 1)), `${s} → ${e + 1}`);
      }
      assert.equal(CompactRange.fromParts(BigInt(s), [...left, leaves[0]!]), undefined);
    }
  });
}
