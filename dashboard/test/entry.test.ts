/**
 * Entries (SPEC §2): every golden entry decodes; the deterministic-encoding refusals cborg's
 * strict mode would let through (unsorted keys, floats) and the others (non-shortest heads,
 * indefinite lengths, tags, duplicates, trailing and truncated bytes, bad UTF-8), each with
 * ledger-core's error.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decode as cborDecode } from 'cborg';

import { attrsJson, decodeEntry, EntryError, fromHex, namedPayloads, type EntryErrorCode } from '../src/verify/index.ts';
import { text } from './helpers.ts';

function golden(file: string): [string, Uint8Array][] {
  return text(file)
    .trim()
    .split('\n')
    .map((l) => {
      const [kind, hex] = l.split(' ');
      return [kind!, fromHex(hex!)];
    });
}

const all = [...golden('testdata/golden/entries.txt'), ...golden('testdata/golden/entries-1.1.txt')];

test('every golden entry decodes to its kind', () => {
  assert.equal(all.length, 22);
  const kinds = new Set<string>();
  for (const [kind, bytes] of all) {
    const e = decodeEntry(bytes);
    assert.equal(e.kind, kind);
    assert.equal(e.v, 1n);
    assert.equal(typeof e.ts, 'bigint');
    assert.deepEqual(e.bytes, bytes);
    kinds.add(kind);
    assert.equal(typeof attrsJson(e), 'object');
  }
  assert.equal(kinds.size, 19, 'every kind of SPEC §2');
});

test('named payloads: input_hash, hashes of artifacts and workspace files, payload', () => {
  for (const [kind, bytes] of all) {
    const n = namedPayloads(decodeEntry(bytes)).length;
    const expected = ['task.accepted', 'artifact.added', 'workspace.read', 'workspace.written'].includes(kind) ? 1 : 0;
    assert.ok(n >= expected && n <= expected + 1, kind);
  }
});

/** The first golden entry of `kind`. */
function sample(kind: string): Uint8Array {
  return all.find(([k]) => k === kind)![1].slice();
}

function refused(bytes: Uint8Array, code: EntryErrorCode, message?: RegExp): EntryError {
  try {
    decodeEntry(bytes);
  } catch (e) {
    assert.ok(e instanceof EntryError, String(e));
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return e;
  }
  assert.fail(`accepted, expected ${code}`);
}

function find(b: Uint8Array, needle: number[]): number {
  for (let i = 0; i + needle.length <= b.length; i++) if (needle.every((x, j) => b[i + j] === x)) return i;
  throw new Error('needle not found');
}

function splice(b: Uint8Array, at: number, remove: number, insert: number[]): Uint8Array {
  return new Uint8Array([...b.subarray(0, at), ...insert, ...b.subarray(at + remove)]);
}

const V = [0x61, 0x76]; // the text key "v"

test('unsorted map keys are refused (cborg strict mode accepts them)', () => {
  const e = sample('review.signed');
  // The entry begins {"v": 1, "ts": <8-byte int>, …}: put the ts pair first.
  assert.deepEqual([...e.subarray(1, 4)], [0x61, 0x76, 0x01]);
  assert.deepEqual([...e.subarray(4, 8)], [0x62, 0x74, 0x73, 0x1b]);
  const swapped = new Uint8Array([e[0]!, ...e.subarray(4, 16), ...e.subarray(1, 4), ...e.subarray(16)]);
  assert.doesNotThrow(() => cborDecode(swapped, { strict: true, useMaps: true, rejectDuplicateMapKeys: true }));
  refused(swapped, 'NotCanonical', /map keys not in canonical order/);
});

test('floats are refused (cborg strict mode accepts them)', () => {
  const e = sample('task.status');
  const at = find(e, V) + 2;
  const float = splice(e, at, 1, [0xf9, 0x3c, 0x00]); // v = 1.0 as a half float
  assert.doesNotThrow(() => cborDecode(float, { strict: true, useMaps: true }));
  refused(float, 'Float', new RegExp(`floating-point value at byte ${at}`));
  refused(splice(e, at, 1, [0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]), 'Float');
});

test('non-shortest heads are refused, for integers and lengths', () => {
  const e = sample('task.status');
  const at = find(e, V) + 2;
  refused(splice(e, at, 1, [0x18, 0x01]), 'NotCanonical', /integer or length not in shortest form/);
  refused(splice(e, at, 1, [0x19, 0x00, 0x01]), 'NotCanonical', /shortest form/);
  // The key "v" itself with a one-byte length head: 0x78 0x01 'v'.
  refused(splice(e, at - 2, 1, [0x78, 0x01]), 'NotCanonical', /shortest form/);
  // The entry map's own head: 0xb8 <n>.
  refused(splice(e, 0, 1, [0xb8, e[0]! - 0xa0]), 'NotCanonical', /at byte 0: integer or length not in shortest form/);
});

test('indefinite lengths, tags, duplicate keys, trailing and truncated bytes, bad UTF-8', () => {
  const e = sample('task.status');
  refused(splice(e, 0, 1, [0xbf]), 'NotCanonical', /indefinite length/);
  const at = find(e, V) + 2;
  refused(splice(e, at, 0, [0xc1]), 'Tag', /CBOR tag at byte/);
  refused(new Uint8Array([...e, 0x00]), 'TrailingBytes', /1 trailing bytes after the entry/);
  refused(e.subarray(0, e.length - 1), 'Truncated');
  refused(new Uint8Array(0), 'Truncated');
  // Duplicate "v": the map gets one more pair, v again first.
  const dup = splice(e, at + 1, 0, [0x61, 0x76, 0x01]);
  dup[0] = dup[0]! + 1;
  refused(dup, 'DuplicateKey', /duplicate key "v"/);
  // A text value that is not UTF-8: the run "golden…"'s first byte made 0xff.
  const run = find(e, [0x63, 0x72, 0x75, 0x6e]) + 4;
  const bad = e.slice();
  bad[run + 1] = 0xff;
  refused(bad, 'BadValue', /invalid utf-8 at position/);
  refused(new Uint8Array(64 * 1024 + 1), 'EntryTooLarge');
});

test('schema refusals name the key', () => {
  const e = sample('task.status');
  const at = find(e, V) + 2;
  refused(splice(e, at, 1, [0x02]), 'UnsupportedVersion', /unsupported entry version 2/);
  refused(splice(e, at, 1, [0x61, 0x31]), 'WrongType', /wrong type for "v"/);
  refused(splice(e, at, 1, [0xf5]), 'WrongType');
  const state = decodeEntry(e).attrs.state as string;
  const s = find(e, [0x60 + state.length, ...new TextEncoder().encode(state)]);
  const renamed = e.slice();
  renamed[s + 1] = 0x78; // "working" → "xorking"
  refused(renamed, 'BadValue', /is not an A2A task state/);
  const kind = find(e, [...new TextEncoder().encode('task.status')]);
  const unknown = e.slice();
  unknown[kind] = 0x78;
  refused(unknown, 'UnknownKind', /unknown entry kind "xask.status"/);
  // An identity key of small order (the identity point) is refused.
  const id = sample('identity.registered');
  const key = find(id, [0x58, 0x20]) + 2;
  const weak = id.slice();
  weak.fill(0, key, key + 32);
  weak[key] = 1;
  refused(weak, 'BadValue', /small-order point/);
});
