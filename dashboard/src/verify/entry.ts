/**
 * Entries (SPEC §2): a strict reader of core deterministic CBOR and of every kind's schema, as
 * ledger-core's `entry.rs` checks them, and `cborg` decoding the bytes it accepted.
 *
 * `cborg`'s strict mode refuses non-shortest integers but accepts unsorted map keys and floats,
 * so every byte is read here first, in ledger-core's order: shortest heads, definite lengths, no
 * tags, no floats, text map keys in canonical order (shorter first, then bytewise) without
 * duplicates, valid UTF-8, the type the schema wants, unknown keys refused before their values,
 * each kind's value rules, nothing after the map. An entry is accepted exactly when ledger-core
 * accepts it, and refused for the same rule in the same words (the tamper corpus checks both).
 * Only then does `cborg` decode it, and the two decodings must agree.
 */
import { decode as cborDecode } from 'cborg';

import { debugStr, equalBytes, I64_MAX, I64_MIN, toHex, utf8 } from './bytes.ts';
import { publicKeyProblem } from './ed25519.ts';

/** The largest entry, in bytes. */
export const MAX_ENTRY_BYTES = 64 * 1024;
/** The longest run id, in bytes. */
export const MAX_RUN_ID_BYTES = 128;
/** The longest `context` of a `task.accepted` (1.1). */
export const MAX_CONTEXT_BYTES = 256;

/** The event kinds of SPEC §2. */
export const KINDS = [
  'identity.registered',
  'task.accepted',
  'task.status',
  'skill.progress',
  'workspace.read',
  'workspace.written',
  'workspace.denied',
  'scope.requested',
  'scope.granted',
  'scope.denied',
  'artifact.added',
  'task.completed',
  'task.failed',
  'task.canceled',
  'task.rejected',
  'eval.scored',
  'review.signed',
  'receipt.sealed',
  'payload.erased',
] as const;

/** One of the event kinds. */
export type EntryKind = (typeof KINDS)[number];

/** An attr value: text, an integer (as bigint), bytes, or an array of text. */
export type AttrValue = string | bigint | Uint8Array | string[];

/** A decoded, valid entry. */
export interface DecodedEntry {
  /** Entry format version, always 1. */
  v: 1n;
  /** Event time, Unix nanoseconds UTC (can exceed 2^53). */
  ts: bigint;
  /** The run id. */
  run: string;
  /** Position in the run. */
  seq: bigint;
  /** The event kind. */
  kind: EntryKind;
  /** The service identity that emitted it. */
  actor: string;
  /** Kind-specific attrs by SPEC §2 name (absent optional attrs are absent here too). */
  attrs: Record<string, AttrValue>;
  /** Optional grant id. */
  grant?: string;
  /** Optional BLAKE3 of a payload kept outside the log (32 bytes). */
  payload?: Uint8Array;
  /** The entry's bytes exactly as stored. */
  bytes: Uint8Array;
}

/** What is wrong with an entry: ledger-core's `Error` variant names. */
export type EntryErrorCode =
  | 'EntryTooLarge'
  | 'Truncated'
  | 'TrailingBytes'
  | 'NotCanonical'
  | 'Float'
  | 'Tag'
  | 'UnknownKey'
  | 'MissingKey'
  | 'DuplicateKey'
  | 'WrongType'
  | 'BadValue'
  | 'UnknownKind'
  | 'UnsupportedVersion'
  | 'BadRunId';

/** An entry that breaks a rule; `message` is ledger-core's text for the same error. */
export class EntryError extends Error {
  constructor(
    readonly code: EntryErrorCode,
    message: string,
    readonly offset?: number,
    readonly key?: string,
  ) {
    super(message);
    this.name = 'EntryError';
  }
}

type Ty = 'text' | 'uint' | 'int' | 'b32' | 'b64' | 'texts';
interface Field {
  key: string;
  ty: Ty;
  required: boolean;
}
const req = (key: string, ty: Ty): Field => ({ key, ty, required: true });
const opt = (key: string, ty: Ty): Field => ({ key, ty, required: false });

const S_ENDED = [req('artifacts', 'texts'), req('elapsed_ms', 'uint')];
const S_WORKSPACE = [req('hash', 'b32'), req('path', 'text'), req('bytes', 'uint')];
/** Attr schemas, each in canonical key order. */
const SCHEMAS: Record<EntryKind, Field[]> = {
  'identity.registered': [req('alg', 'text'), req('public_key', 'b32')],
  'task.accepted': [
    req('skill', 'text'),
    req('caller', 'text'),
    opt('parent', 'text'),
    opt('context', 'text'),
    req('protocol', 'text'),
    req('input_hash', 'b32'),
  ],
  'task.status': [req('state', 'text'), opt('message', 'text')],
  'skill.progress': [req('pct', 'uint'), req('stage', 'text'), req('message', 'text')],
  'workspace.read': S_WORKSPACE,
  'workspace.written': S_WORKSPACE,
  'workspace.denied': [req('op', 'text'), req('path', 'text'), req('reason', 'text')],
  'scope.requested': [req('paths', 'texts'), req('reason', 'text')],
  'scope.granted': [req('paths', 'texts'), req('approver', 'text'), req('new_grant', 'text'), req('prior_grant', 'text')],
  'scope.denied': [req('reason', 'text'), req('approver', 'text')],
  'artifact.added': [req('hash', 'b32'), req('name', 'text'), req('bytes', 'uint'), req('media_type', 'text')],
  'task.completed': S_ENDED,
  'task.failed': [req('error', 'text'), req('artifacts', 'texts'), req('elapsed_ms', 'uint')],
  'task.canceled': S_ENDED,
  'task.rejected': S_ENDED,
  'eval.scored': [req('rubric', 'text'), req('failures', 'texts'), req('score_milli', 'int')],
  'review.signed': [req('notes', 'text'), req('approver', 'text')],
  'receipt.sealed': [req('sig', 'b64'), req('events', 'uint'), req('status', 'text'), req('content_hash', 'b32')],
  'payload.erased': [req('hash', 'b32'), req('reason', 'text'), req('approver', 'text')],
};

/** A2A task states, as `task.status` carries them. */
export const TASK_STATES = ['submitted', 'working', 'input_required', 'auth_required', 'completed', 'failed', 'canceled', 'rejected'];
/** Terminal statuses of a seal. */
export const RUN_STATUSES = ['completed', 'failed', 'canceled', 'rejected'];
const PROTOCOLS = ['a2a', 'mcp', 'https'];

// ---- the reader ----------------------------------------------------------------------------
//
// A strict streaming reader in ledger-core's order: before each item it checks the item's head
// against the deterministic-encoding rules and the type the schema wants there, then reads the
// value. Keys are checked for canonical order as they come, unknown keys are refused before their
// values are read, and each kind's value rules run when its attrs are read, so that an entry
// breaking several rules is refused for the same one, with the same text, as ledger-core refuses it.

const MAJOR_UNSIGNED = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;

/** Whether `b[start, end)` is valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF). */
function validUtf8(b: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    let cp: number;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= end) return false;
    for (let j = 1; j <= n; j++) {
      const d = b[i + j]!;
      if ((d & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

/** A text's characters (valid UTF-8, checked): ASCII without a decoder. */
function textOf(b: Uint8Array, start: number, end: number): string {
  if (end - start > 64) return utf8(b.subarray(start, end))!;
  let out = '';
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c >= 0x80) return utf8(b.subarray(start, end))!;
    out += String.fromCharCode(c);
  }
  return out;
}

/** Compares two keys in canonical order: by length, then bytewise. */
function compareKeys(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  /**
   * Checks the head of the next item: present, no tag, no float, definite, not reserved,
   * shortest, and of one of `majors` (else `WrongType` naming `expected`). Returns the major
   * type and argument (above 2^53 only approximately; the exact value of an integer is read by
   * `intValue`), and moves past the head.
   */
  head(key: string, majors: number[], expected: string): { major: number; arg: number } {
    const b = this.b;
    const pos = this.pos;
    const ib = b[pos];
    if (ib === undefined) throw new EntryError('Truncated', `truncated CBOR at byte ${pos}`, pos);
    const major = ib >> 5;
    const ai = ib & 0x1f;
    if (major === MAJOR_TAG) throw new EntryError('Tag', `CBOR tag at byte ${pos}: entries carry no tags`, pos);
    if (major === MAJOR_SIMPLE && ai >= 25 && ai <= 27) {
      throw new EntryError('Float', `floating-point value at byte ${pos}: entries use integers`, pos);
    }
    if (ai === 31) throw new EntryError('NotCanonical', `not canonical CBOR at byte ${pos}: indefinite length`, pos);
    if (ai >= 28) {
      throw new EntryError('NotCanonical', `not canonical CBOR at byte ${pos}: reserved additional information`, pos);
    }
    let arg = ai;
    let next = pos + 1;
    if (ai >= 24 && major !== MAJOR_SIMPLE) {
      const n = 1 << (ai - 24);
      if (pos + 1 + n > b.length) throw new EntryError('Truncated', `truncated CBOR at byte ${pos}`, pos);
      let shortest: boolean;
      if (n === 8) {
        const hi = ((b[pos + 1]! << 24) >>> 0) + (b[pos + 2]! << 16) + (b[pos + 3]! << 8) + b[pos + 4]!;
        const lo = ((b[pos + 5]! << 24) >>> 0) + (b[pos + 6]! << 16) + (b[pos + 7]! << 8) + b[pos + 8]!;
        arg = hi * 2 ** 32 + lo;
        shortest = hi !== 0;
      } else {
        arg = 0;
        for (let i = 0; i < n; i++) arg = arg * 256 + b[pos + 1 + i]!;
        shortest = arg >= [24, 1 << 8, 1 << 16][ai - 24]!;
      }
      if (!shortest) {
        throw new EntryError('NotCanonical', `not canonical CBOR at byte ${pos}: integer or length not in shortest form`, pos);
      }
      next = pos + 1 + n;
    }
    if (!majors.includes(major)) {
      throw new EntryError('WrongType', `wrong type for ${debugStr(key)} at byte ${pos}: expected ${expected}`, pos, key);
    }
    this.pos = next;
    return { major, arg };
  }

  /** The exact integer argument of the head at `at` (major 0 or 1). */
  private intValue(at: number): bigint {
    const ai = this.b[at]! & 0x1f;
    if (ai < 24) return BigInt(ai);
    let v = 0n;
    for (let i = 0; i < 1 << (ai - 24); i++) v = (v << 8n) | BigInt(this.b[at + 1 + i]!);
    return v;
  }

  /** The bytes of a byte or text string whose head was just read. */
  private body(key: string, at: number, len: number, isText: boolean): [number, number] {
    if (len > this.b.length - this.pos) throw new EntryError('Truncated', `truncated CBOR at byte ${at}`, at);
    const start = this.pos;
    this.pos += len;
    if (isText && !validUtf8(this.b, start, this.pos)) {
      throw new EntryError('BadValue', `bad value for ${debugStr(key)}: invalid utf-8 at position ${at}`, at, key);
    }
    return [start, this.pos];
  }

  text(key: string): string {
    const at = this.pos;
    const { arg } = this.head(key, [MAJOR_TEXT], 'text');
    const [s, e] = this.body(key, at, arg, true);
    return textOf(this.b, s, e);
  }

  uint(key: string): bigint {
    const at = this.pos;
    this.head(key, [MAJOR_UNSIGNED], 'unsigned integer');
    return this.intValue(at);
  }

  int(key: string): bigint {
    const at = this.pos;
    const { major } = this.head(key, [MAJOR_UNSIGNED, MAJOR_NEGATIVE], 'integer');
    const v = this.intValue(at);
    const n = major === MAJOR_NEGATIVE ? -1n - v : v;
    if (n < I64_MIN || n > I64_MAX) throw badValue(key, 'outside the 64-bit signed range');
    return n;
  }

  bytesOf(key: string, want: number): Uint8Array {
    const at = this.pos;
    const { arg } = this.head(key, [MAJOR_BYTES], 'byte string');
    const [s, e] = this.body(key, at, arg, false);
    if (e - s !== want) throw badValue(key, `${e - s} bytes, expected ${want}`);
    return this.b.slice(s, e);
  }

  texts(key: string): string[] {
    const at = this.pos;
    const { arg } = this.head(key, [MAJOR_ARRAY], 'array of text');
    // Each item takes at least one byte: a count beyond the input is truncation.
    if (arg > this.b.length - this.pos) throw new EntryError('Truncated', `truncated CBOR at byte ${at}`, at);
    const out: string[] = [];
    for (let i = 0; i < arg; i++) out.push(this.text(key));
    return out;
  }

  map(key: string): number {
    return this.head(key, [MAJOR_MAP], 'map').arg;
  }

  /** A map key: text, strictly after the previous key in canonical order. */
  key(prev: { bytes?: Uint8Array }): string {
    const at = this.pos;
    const { arg } = this.head('<map key>', [MAJOR_TEXT], 'text');
    const [s, e] = this.body('<map key>', at, arg, true);
    const name = textOf(this.b, s, e);
    const encoded = this.b.subarray(s, e);
    if (prev.bytes !== undefined) {
      const c = compareKeys(prev.bytes, encoded);
      if (c === 0) throw new EntryError('DuplicateKey', `duplicate key ${debugStr(name)} at byte ${at}`, at, name);
      if (c > 0) throw new EntryError('NotCanonical', `not canonical CBOR at byte ${at}: map keys not in canonical order`, at);
    }
    prev.bytes = encoded;
    return name;
  }
}

// ---- the schema ----------------------------------------------------------------------------

function missing(key: string, within: string): EntryError {
  return new EntryError('MissingKey', `missing key ${debugStr(key)} in ${within}`, undefined, key);
}
function badValue(key: string, reason: string): EntryError {
  return new EntryError('BadValue', `bad value for ${debugStr(key)}: ${reason}`, undefined, key);
}

function isRunByte(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x3a ||
    c === 0x2f ||
    c === 0x2d
  );
}

/** The UTF-8 length of `s`. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Why `id` is not a run id (SPEC §2), or `undefined` when it is one. */
export function runIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'empty';
  if (utf8Length(id) > MAX_RUN_ID_BYTES) return 'longer than 128 bytes';
  for (let i = 0; i < id.length; i++) if (!isRunByte(id.charCodeAt(i))) return 'allowed characters are A-Z a-z 0-9 . _ : / -';
  return undefined;
}

function badRunId(id: string, reason: string): EntryError {
  const shown = [...id].slice(0, 140).join('');
  return new EntryError('BadRunId', `bad run id ${debugStr(shown)}: ${reason}`, undefined, 'run');
}

/** Reads and checks the attrs of `kind`: the schema's keys and types, then the rules on values. */
function readAttrs(r: Reader, kind: EntryKind): Record<string, AttrValue> {
  const schema = SCHEMAS[kind];
  const n = r.map('attrs');
  const out: Record<string, AttrValue> = {};
  const prev = {};
  for (let i = 0; i < n; i++) {
    const key = r.key(prev);
    const f = schema.find((x) => x.key === key);
    if (f === undefined) throw new EntryError('UnknownKey', `unknown key ${debugStr(key)} in ${kind}`, undefined, key);
    switch (f.ty) {
      case 'text':
        out[key] = r.text(key);
        break;
      case 'uint':
        out[key] = r.uint(key);
        break;
      case 'int':
        out[key] = r.int(key);
        break;
      case 'b32':
        out[key] = r.bytesOf(key, 32);
        break;
      case 'b64':
        out[key] = r.bytesOf(key, 64);
        break;
      case 'texts':
        out[key] = r.texts(key);
        break;
    }
  }
  for (const f of schema) if (f.required && !(f.key in out)) throw missing(f.key, kind);
  switch (kind) {
    case 'identity.registered': {
      const alg = out.alg as string;
      if (alg !== 'ed25519') throw badValue('alg', `${debugStr(alg)} is not "ed25519"`);
      const problem = publicKeyProblem(out.public_key as Uint8Array);
      if (problem !== undefined) throw badValue('public_key', `public key is not a valid Ed25519 key: ${problem}`);
      break;
    }
    case 'task.accepted': {
      const parent = out.parent as string | undefined;
      if (parent !== undefined) {
        const p = runIdProblem(parent);
        if (p !== undefined) throw badValue('parent', `not a run id: ${p}`);
      }
      const context = out.context as string | undefined;
      if (context !== undefined) {
        const len = utf8Length(context);
        if (len === 0) throw badValue('context', 'empty (an absent context is omitted, not empty)');
        if (len > MAX_CONTEXT_BYTES) throw badValue('context', `${len} bytes, over the ${MAX_CONTEXT_BYTES}-byte limit`);
      }
      const protocol = out.protocol as string;
      if (!PROTOCOLS.includes(protocol)) {
        throw badValue('protocol', `${debugStr(protocol)} is not one of ${PROTOCOLS.join(', ')}`);
      }
      break;
    }
    case 'task.status': {
      const state = out.state as string;
      if (!TASK_STATES.includes(state)) {
        throw badValue('state', `${debugStr(state)} is not an A2A task state (${TASK_STATES.join(', ')})`);
      }
      break;
    }
    case 'skill.progress': {
      const pct = out.pct as bigint;
      if (pct > 100n) throw badValue('pct', `${pct} is over 100`);
      break;
    }
    case 'receipt.sealed': {
      const status = out.status as string;
      if (!RUN_STATUSES.includes(status)) {
        throw badValue('status', `${debugStr(status)} is not one of ${RUN_STATUSES.join(', ')}`);
      }
      break;
    }
    default:
      break;
  }
  return out;
}

/** Reads one entry in ledger-core's order (`check_entry`). */
function readEntry(r: Reader, bytes: Uint8Array): DecodedEntry {
  const n = r.map('entry');
  let v: bigint | undefined;
  let ts: bigint | undefined;
  let run: string | undefined;
  let seq: bigint | undefined;
  let kindText: string | undefined;
  let kind: EntryKind | undefined;
  let actor: string | undefined;
  let attrs: Record<string, AttrValue> | undefined;
  let grant: string | undefined;
  let payload: Uint8Array | undefined;
  const prev = {};
  for (let i = 0; i < n; i++) {
    const key = r.key(prev);
    switch (key) {
      case 'v':
        v = r.uint('v');
        break;
      case 'ts':
        ts = r.int('ts');
        break;
      case 'run':
        run = r.text('run');
        break;
      case 'seq':
        seq = r.uint('seq');
        break;
      case 'kind':
        kindText = r.text('kind');
        break;
      case 'actor':
        actor = r.text('actor');
        break;
      case 'attrs': {
        // The attrs schema depends on `kind`, which precedes `attrs` in canonical order.
        if (kindText === undefined) throw missing('kind', 'entry');
        const k = KINDS.find((x) => x === kindText);
        if (k === undefined) throw new EntryError('UnknownKind', `unknown entry kind ${debugStr(kindText)}`);
        kind = k;
        attrs = readAttrs(r, k);
        break;
      }
      case 'grant':
        grant = r.text('grant');
        break;
      case 'payload':
        payload = r.bytesOf('payload', 32);
        break;
      default:
        throw new EntryError('UnknownKey', `unknown key ${debugStr(key)} in entry`, undefined, key);
    }
  }
  if (v === undefined) throw missing('v', 'entry');
  if (v !== 1n) throw new EntryError('UnsupportedVersion', `unsupported entry version ${v} (this build reads version 1)`);
  if (ts === undefined) throw missing('ts', 'entry');
  if (run === undefined) throw missing('run', 'entry');
  const runProblem = runIdProblem(run);
  if (runProblem !== undefined) throw badRunId(run, runProblem);
  if (seq === undefined) throw missing('seq', 'entry');
  if (kindText === undefined) throw missing('kind', 'entry');
  if (actor === undefined) throw missing('actor', 'entry');
  if (utf8Length(actor) > MAX_RUN_ID_BYTES - 3) throw badValue('actor', 'identity names are at most 125 bytes');
  const actorProblem = runIdProblem(actor);
  if (actorProblem !== undefined) throw badValue('actor', actorProblem);
  if (attrs === undefined || kind === undefined) throw missing('attrs', 'entry');
  if (kind === 'identity.registered' && (!run.startsWith('id/') || run.length === 3)) {
    throw badValue('run', 'identity.registered entries belong to run id/<identity>');
  }
  if (kind === 'receipt.sealed' && attrs.events !== seq) {
    throw badValue('events', `a seal at seq ${seq} covers ${seq} events, not ${String(attrs.events)}`);
  }
  if (kind === 'payload.erased') {
    const expected = `erasure/${toHex(attrs.hash as Uint8Array)}`;
    if (run !== expected) {
      throw badValue('run', `a payload.erased entry belongs to run ${expected} (named by its hash), not ${run}`);
    }
    if (seq !== 0n) throw badValue('seq', `a payload.erased entry is the only entry of its run, at seq 0, not ${seq}`);
  }
  const entry: DecodedEntry = { v: 1n, ts, run, seq, kind, actor, attrs, bytes };
  if (grant !== undefined) entry.grant = grant;
  if (payload !== undefined) entry.payload = payload;
  return entry;
}

type Cbor = number | bigint | string | Uint8Array | Cbor[] | Map<string, Cbor> | boolean | null | undefined;

/** Whether cborg's value `c` is the reader's value `a`. */
function same(c: Cbor, a: AttrValue): boolean {
  if (typeof a === 'string') return c === a;
  if (typeof a === 'bigint') return (typeof c === 'number' || typeof c === 'bigint') && BigInt(c) === a;
  if (a instanceof Uint8Array) return c instanceof Uint8Array && equalBytes(c, a);
  return Array.isArray(c) && c.length === a.length && c.every((x, i) => x === a[i]);
}

/**
 * Decodes and checks one entry by every rule of SPEC §2 (and ledger-core's additions). Throws
 * `EntryError` naming the rule, the byte offset or the key, as ledger-core does.
 *
 * The reader above decides validity, byte by byte in ledger-core's order; `cborg` then decodes
 * the same bytes independently, and the two must agree on every value.
 */
export function decodeEntry(bytes: Uint8Array): DecodedEntry {
  if (bytes.length > MAX_ENTRY_BYTES) {
    throw new EntryError('EntryTooLarge', `entry is ${bytes.length} bytes, over the ${MAX_ENTRY_BYTES}-byte limit`);
  }
  const r = new Reader(bytes);
  const entry = readEntry(r, bytes);
  if (r.pos !== bytes.length) {
    throw new EntryError('TrailingBytes', `${bytes.length - r.pos} trailing bytes after the entry at byte ${r.pos}`, r.pos);
  }
  const map = cborDecode(bytes, { strict: true, useMaps: true, rejectDuplicateMapKeys: true, allowIndefinite: false, allowUndefined: false }) as Cbor;
  const top: [string, AttrValue | undefined][] = [
    ['v', 1n],
    ['ts', entry.ts],
    ['run', entry.run],
    ['seq', entry.seq],
    ['kind', entry.kind],
    ['actor', entry.actor],
    ['grant', entry.grant],
    ['payload', entry.payload],
  ];
  const attrs = map instanceof Map ? map.get('attrs') : undefined;
  const agree =
    map instanceof Map &&
    top.every(([k, v]) => (v === undefined ? !map.has(k) : same(map.get(k), v))) &&
    attrs instanceof Map &&
    attrs.size === Object.keys(entry.attrs).length &&
    Object.entries(entry.attrs).every(([k, v]) => same(attrs.get(k), v));
  if (!agree) throw new Error('internal error: the CBOR reader and cborg disagree on an entry');
  return entry;
}

/**
 * The payloads an entry names by BLAKE3: `input_hash` of `task.accepted`, `hash` of
 * `artifact.added`, `workspace.read` and `workspace.written`, then the `payload` field. (A
 * `payload.erased` names content that is gone: not listed.)
 */
export function namedPayloads(e: DecodedEntry): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (e.kind === 'task.accepted') out.push(e.attrs.input_hash as Uint8Array);
  if (e.kind === 'artifact.added' || e.kind === 'workspace.read' || e.kind === 'workspace.written') {
    out.push(e.attrs.hash as Uint8Array);
  }
  if (e.payload !== undefined) out.push(e.payload);
  return out;
}

/** The attrs as plain JSON-able values: bytes as lowercase hex, integers as decimal strings. */
export function attrsJson(e: DecodedEntry): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of Object.keys(e.attrs).sort()) {
    const v = e.attrs[key]!;
    out[key] = v instanceof Uint8Array ? toHex(v) : typeof v === 'bigint' ? v.toString() : v;
  }
  return out;
}
