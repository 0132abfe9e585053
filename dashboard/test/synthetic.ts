/**
 * Packs made from SPEC alone, for the scale test and the benchmark: cborg's canonical encoder
 * writes the entries, noble signs seals and the checkpoint, a naive RFC 9162 tree gives the root.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { encode } from 'cborg';

import { toBase64, toHex } from '../src/verify/bytes.ts';
import { blake3Hex, blake3Bytes, emptyRoot, leafHash, nodeHash } from '../src/verify/hash.ts';
import { splitPoint } from '../src/verify/merkle.ts';
import { keyId } from '../src/verify/note.ts';
import { contentHash, sealMessage } from '../src/verify/seal.ts';
import type { LogDescriptor } from '../src/verify/index.ts';

const logSeed = new Uint8Array(32).fill(0x11);
const gwSeed = new Uint8Array(32).fill(0x22);
const origin = 'scale.a2a-ledger.example/log';
const logPub = ed25519.getPublicKey(logSeed);
export const log: LogDescriptor = {
  origin,
  hash: 'blake3',
  vkey: `${origin}+${toHex(keyId(origin, 1, logPub))}+${toBase64(new Uint8Array([1, ...logPub]))}`,
};
const T0 = 1_767_225_600_000_000_000n;

function entry(run: string, seq: number, kind: string, attrs: Record<string, unknown>): Uint8Array {
  return encode({ v: 1, ts: T0 + BigInt(seq), run, seq, kind, actor: 'gw', attrs });
}

function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return emptyRoot('blake3');
  if (leaves.length === 1) return leaves[0]!;
  const k = Number(splitPoint(BigInt(leaves.length)));
  return nodeHash('blake3', mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** `runs` runs interleaved round-robin, every third sealed a second time after an eval. */
export function makeLog(runs: number, badSealOf?: number): { entries: Uint8Array[]; seals: number } {
  const entries: Uint8Array[] = [
    encode({ v: 1, ts: T0, run: 'id/gw', seq: 0, kind: 'identity.registered', actor: 'gw', attrs: { alg: 'ed25519', public_key: ed25519.getPublicKey(gwSeed) } }),
  ];
  const leaves = new Map<string, Uint8Array[]>();
  const perRun: ((run: string, r: number) => Uint8Array)[] = [
    (run) => entry(run, 0, 'task.accepted', { skill: 's', caller: 'c', protocol: 'a2a', input_hash: blake3Bytes(new TextEncoder().encode(run)) }),
    (run) => entry(run, 1, 'task.status', { state: 'working' }),
    (run) => entry(run, 2, 'artifact.added', { hash: new Uint8Array(32).fill(7), name: 'a', bytes: 1, media_type: 'text/plain' }),
    (run) => entry(run, 3, 'task.completed', { artifacts: ['a'], elapsed_ms: 5 }),
  ];
  let seals = 0;
  const seal = (run: string, r: number, k: number): Uint8Array => {
    const ch = contentHash(leaves.get(run)!);
    let sig = ed25519.sign(sealMessage(run, BigInt(k), ch, 'completed'), gwSeed);
    if (r === badSealOf) sig = ed25519.sign(sealMessage(run, BigInt(k), ch, 'failed'), gwSeed);
    seals++;
    return entry(run, k, 'receipt.sealed', { sig, events: k, status: 'completed', content_hash: ch });
  };
  const push = (run: string, e: Uint8Array): void => {
    entries.push(e);
    leaves.get(run)!.push(leafHash('blake3', e));
  };
  for (let r = 0; r < runs; r++) leaves.set(`run-${r}`, []);
  for (let step = 0; step < 4; step++) for (let r = 0; r < runs; r++) push(`run-${r}`, perRun[step]!(`run-${r}`, r));
  for (let r = 0; r < runs; r++) push(`run-${r}`, seal(`run-${r}`, r, 4));
  for (let r = 0; r < runs; r += 3) {
    push(`run-${r}`, entry(`run-${r}`, 5, 'eval.scored', { rubric: 'r', failures: [], score_milli: -5 }));
    push(`run-${r}`, seal(`run-${r}`, r, 6));
  }
  return { entries, seals };
}

export function pack(entries: Uint8Array[], start: number): [string, Uint8Array][] {
  const n = entries.length;
  const leaves = entries.map((e) => leafHash('blake3', e));
  const text = `${origin}\n${n}\n${toBase64(mth(leaves))}\n`;
  const sig = ed25519.sign(new TextEncoder().encode(text), logSeed);
  const checkpoint = new TextEncoder().encode(`${text}\n\u2014 ${origin} ${toBase64(new Uint8Array([...keyId(origin, 1, logPub), ...sig]))}\n`);
  const left: string[] = [];
  let at = 0;
  for (let bit = 20; bit >= 0; bit--) {
    if (start & (1 << bit)) {
      left.push(toBase64(mth(leaves.slice(at, at + (1 << bit)))));
      at += 1 << bit;
    }
  }
  const proof = new TextEncoder().encode(JSON.stringify({ left, consistency: [] }));
  const frames: number[] = [];
  for (const e of entries.slice(start)) frames.push(e.length >>> 24, (e.length >>> 16) & 255, (e.length >>> 8) & 255, e.length & 255, ...e);
  const bin = new Uint8Array(frames);
  const manifest = {
    format: 'a2a-ledger/pack/v1',
    log,
    start,
    end: n,
    tree_size: n,
    created: '2026-01-01T00:00:00Z',
    files: { checkpoint: blake3Hex(checkpoint), 'entries.bin': blake3Hex(bin), 'proof.json': blake3Hex(proof) },
  };
  return [
    ['manifest.json', new TextEncoder().encode(JSON.stringify(manifest))],
    ['checkpoint', checkpoint],
    ['proof.json', proof],
    ['entries.bin', bin],
  ];
}

