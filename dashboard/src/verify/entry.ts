/**
 * Entries (SPEC §2): a byte-level check of core deterministic CBOR, decoding with `cborg`, and
 * the schema of every kind, as ledger-core's `entry.rs` checks them.
 *
 * `cborg`'s strict mode refuses non-shortest integers but accepts unsorted map keys and floats,
 * so every byte is first walked here: shortest heads, definite lengths, no tags, no floats, text
 * map keys in canonical order (shorter first, then bytewise) without duplicates, valid UTF-8,
 * nothing after the map. Only bytes that pass are handed to `cborg`, then to the schema. An entry
 * is accepted exactly when ledger-core accepts it; for an entry with one fault the error is the
 * one ledger-core names (its variant and text).
 */
import { decode as cborDecode } from 'cborg';

import { I64_MAX, I64_MIN, toHex, utf8 } from './bytes.ts';
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

const TY_EXPECTED: Record<Ty, string> = {
  text: 'text',
  uint: 'unsigned integer',
  int: 'integer',
  b32: 'byte string',
  b64: 'byte string',
  texts: 'array of text',
};

/** The CBOR type ledger-core reads for a key (one type per name across SPEC §2). */
const TOP_EXPECTED: Record<string, string> = {
  v: 'unsigned integer',
  ts: 'integer',
  run: 'text',
  seq: 'unsigned integer',
  kind: 'text',
  actor: 'text',
  attrs: 'map',
  grant: 'text',
  payload: 'byte string',
  entry: 'map',
  '<map key>': 'text',
};

function expectedFor(key: string): string {
  const top = TOP_EXPECTED[key];
  if (top !== undefined) return top;
  for (const schema of Object.values(SCHEMAS)) {
    const f = schema.find((x) => x.key === key);
    if (f !== undefined) return TY_EXPECTED[f.ty];
  }
  return 'a value of its type';
}

/** A2A task states, as `task.status` carries them. */
export const TASK_STATES = ['submitted', 'working', 'input_required', 'auth_required', 'completed', 'failed', 'canceled', 'rejected'];
/** Terminal statuses of a seal. */
export const RUN_STATUSES = ['completed', 'failed', 'canceled', 'rejected'];
const PROTOCOLS = ['a2a', 'mcp', 'https'];

// ---- the byte-level walk -------------------------------------------------------------------

const MAJOR_UNSIGNED = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;

interface Head {
  major: number;
  /** The argument; above 2^53 only approximately (it is then a length no input holds). */
  arg: number;
  /** Offset just after the head. */
  next: number;
}

/** Where the walk found each value of the entry map and of its attrs map (for error offsets). */
interface Offsets {
  top: Map<string, number>;
  attrs: Map<string, number>;
  /** The offsets of the items of each attrs array. */
  items: Map<string, number[]>;
}

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

/** A map key's text (valid UTF-8, checked by the walk): ASCII keys without a decoder. */
function keyText(b: Uint8Array, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c >= 0x80) return utf8(b.subarray(start, end))!;
    out += String.fromCharCode(c);
  }
  return out;
}

function readHead(b: Uint8Array, pos: number, key: string, expected: string): Head {
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
  if (major === MAJOR_SIMPLE) {
    // true, false, null, undefined and other simple values: no entry value has this type.
    throw new EntryError('WrongType', `wrong type for ${JSON.stringify(key)} at byte ${pos}: expected ${expected}`, pos, key);
  }
  if (ai < 24) return { major, arg: ai, next: pos + 1 };
  const n = 1 << (ai - 24);
  if (pos + 1 + n > b.length) throw new EntryError('Truncated', `truncated CBOR at byte ${pos}`, pos);
  let arg: number;
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
  return { major, arg, next: pos + 1 + n };
}

/** Compares two encoded map keys in canonical order: by length, then bytewise. */
function compareKeys(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * Walks one item at `pos` and returns the offset after it, refusing anything outside core
 * deterministic encoding. `depth` 0 is the entry map, 1 the values directly in it. With
 * `offsets`, it records where each value of the entry map and of its attrs map starts (only
 * wanted when an error must name one).
 */
function walk(
  b: Uint8Array,
  pos: number,
  key: string,
  depth: number,
  offsets: Offsets | undefined,
  inAttrs: boolean,
  expected: string = expectedFor(key),
): number {
  if (depth > 16) throw new EntryError('WrongType', `wrong type for ${JSON.stringify(key)} at byte ${pos}: nested too deeply`, pos, key);
  const h = readHead(b, pos, key, expected);
  switch (h.major) {
    case MAJOR_UNSIGNED:
    case MAJOR_NEGATIVE:
      return h.next;
    case MAJOR_BYTES:
    case MAJOR_TEXT: {
      if (h.arg > b.length - h.next) throw new EntryError('Truncated', `truncated CBOR at byte ${pos}`, pos);
      const end = h.next + h.arg;
      if (h.major === MAJOR_TEXT && !validUtf8(b, h.next, end)) {
        throw new EntryError('BadValue', `bad value for ${JSON.stringify(key)}: invalid utf-8 at position ${pos}`, pos, key);
      }
      return end;
    }
    case MAJOR_ARRAY: {
      // Each item takes at least one byte: a count beyond the input is truncation.
      if (h.arg > b.length - h.next) throw new EntryError('Truncated', `truncated CBOR at byte ${pos}`, pos);
      let p = h.next;
      // Arrays hold text only (SPEC §2); their items' offsets are kept for errors.
      const items = offsets?.items.get(key);
      for (let i = 0; i < h.arg; i++) {
        items?.push(p);
        p = walk(b, p, key, depth + 1, offsets, false, 'text');
      }
      return p;
    }
    case MAJOR_MAP: {
      if (h.arg > b.length - h.next) throw new EntryError('Truncated', `truncated CBOR at byte ${pos}`, pos);
      let p = h.next;
      let prev: Uint8Array | undefined;
      for (let i = 0; i < h.arg; i++) {
        const kpos = p;
        const kh = readHead(b, kpos, '<map key>', 'text');
        if (kh.major !== MAJOR_TEXT) {
          throw new EntryError('WrongType', `wrong type for "<map key>" at byte ${kpos}: expected text`, kpos, '<map key>');
        }
        const kend = walk(b, kpos, '<map key>', depth + 1, offsets, false, 'text');
        const encoded = b.subarray(kpos, kend);
        const name = (): string => keyText(b, kh.next, kend);
        if (prev !== undefined) {
          const c = compareKeys(prev, encoded);
          if (c === 0) throw new EntryError('DuplicateKey', `duplicate key ${JSON.stringify(name())} at byte ${kpos}`, kpos, name());
          if (c > 0) {
            throw new EntryError('NotCanonical', `not canonical CBOR at byte ${kpos}: map keys not in canonical order`, kpos);
          }
        }
        prev = encoded;
        const isAttrs = depth === 0 && encoded.length === 6 && name() === 'attrs';
        if (offsets !== undefined && depth === 0) offsets.top.set(name(), kend);
        if (offsets !== undefined && inAttrs) {
          offsets.attrs.set(name(), kend);
          offsets.items.set(name(), []);
        }
        p = walk(b, kend, depth === 0 || inAttrs ? name() : key, depth + 1, offsets, isAttrs);
      }
      return p;
    }
    default:
      throw new EntryError('WrongType', `wrong type for ${JSON.stringify(key)} at byte ${pos}`, pos, key);
  }
}

// ---- the schema ----------------------------------------------------------------------------

type Cbor = number | bigint | string | Uint8Array | Cbor[] | Map<string, Cbor> | boolean | null | undefined;

function missing(key: string, within: string): EntryError {
  return new EntryError('MissingKey', `missing key ${JSON.stringify(key)} in ${within}`, undefined, key);
}
function badValue(key: string, reason: string): EntryError {
  return new EntryError('BadValue', `bad value for ${JSON.stringify(key)}: ${reason}`, undefined, key);
}
function wrongType(key: string, expected: string, offset: number): EntryError {
  return new EntryError('WrongType', `wrong type for ${JSON.stringify(key)} at byte ${offset}: expected ${expected}`, offset, key);
}

function isInt(v: Cbor): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

function asValue(key: string, ty: Ty, v: Cbor, offset: () => number, itemOffset?: (i: number) => number): AttrValue {
  switch (ty) {
    case 'text':
      if (typeof v !== 'string') throw wrongType(key, TY_EXPECTED[ty], offset());
      return v;
    case 'uint':
      if (!isInt(v) || BigInt(v) < 0n) throw wrongType(key, TY_EXPECTED[ty], offset());
      return BigInt(v);
    case 'int': {
      if (!isInt(v)) throw wrongType(key, TY_EXPECTED[ty], offset());
      const n = BigInt(v);
      if (n < I64_MIN || n > I64_MAX) throw badValue(key, 'outside the 64-bit signed range');
      return n;
    }
    case 'b32':
    case 'b64': {
      if (!(v instanceof Uint8Array)) throw wrongType(key, TY_EXPECTED[ty], offset());
      const want = ty === 'b32' ? 32 : 64;
      if (v.length !== want) throw badValue(key, `${v.length} bytes, expected ${want}`);
      return v.slice();
    }
    case 'texts': {
      if (!Array.isArray(v)) throw wrongType(key, TY_EXPECTED[ty], offset());
      // Offsets of array items are not tracked; the array's own is named.
      return v.map((t, i) => {
        if (typeof t !== 'string') throw wrongType(key, 'text', itemOffset?.(i) ?? offset());
        return t;
      });
    }
  }
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
  return new EntryError('BadRunId', `bad run id ${JSON.stringify(shown)}: ${reason}`, undefined, 'run');
}

function checkAttrs(map: Cbor, kind: EntryKind, offsets: () => Offsets, offset: () => number): Record<string, AttrValue> {
  if (!(map instanceof Map)) throw wrongType('attrs', 'map', offset());
  const schema = SCHEMAS[kind];
  const out: Record<string, AttrValue> = {};
  for (const [key, v] of map) {
    const f = schema.find((s) => s.key === key);
    if (f === undefined) {
      throw new EntryError('UnknownKey', `unknown key ${JSON.stringify(key)} in ${kind}`, undefined, key);
    }
    out[key] = asValue(
      key,
      f.ty,
      v,
      () => offsets().attrs.get(key) ?? offset(),
      (i) => offsets().items.get(key)?.[i] ?? offset(),
    );
  }
  for (const f of schema) if (f.required && !(f.key in out)) throw missing(f.key, kind);
  switch (kind) {
    case 'identity.registered': {
      const alg = out.alg as string;
      if (alg !== 'ed25519') throw badValue('alg', `${JSON.stringify(alg)} is not "ed25519"`);
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
        throw badValue('protocol', `${JSON.stringify(protocol)} is not one of ${PROTOCOLS.join(', ')}`);
      }
      break;
    }
    case 'task.status': {
      const state = out.state as string;
      if (!TASK_STATES.includes(state)) {
        throw badValue('state', `${JSON.stringify(state)} is not an A2A task state (${TASK_STATES.join(', ')})`);
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
        throw badValue('status', `${JSON.stringify(status)} is not one of ${RUN_STATUSES.join(', ')}`);
      }
      break;
    }
    default:
      break;
  }
  return out;
}

/**
 * Decodes and checks one entry by every rule of SPEC §2 (and ledger-core's additions). Throws
 * `EntryError` naming the rule, the byte offset or the key.
 */
export function decodeEntry(bytes: Uint8Array): DecodedEntry {
  if (bytes.length > MAX_ENTRY_BYTES) {
    throw new EntryError('EntryTooLarge', `entry is ${bytes.length} bytes, over the ${MAX_ENTRY_BYTES}-byte limit`);
  }
  // Where values start, found again only when an error names one.
  let found: Offsets | undefined;
  const offsets = (): Offsets => {
    if (found === undefined) {
      found = { top: new Map(), attrs: new Map(), items: new Map() };
      walk(bytes, 0, 'entry', 0, found, false);
    }
    return found;
  };
  // The top item must be a map (ledger-core reads it as one before anything else).
  const top = readHead(bytes, 0, 'entry', 'map');
  if (top.major !== MAJOR_MAP) throw wrongType('entry', 'map', 0);
  const end = walk(bytes, 0, 'entry', 0, undefined, false);
  if (end !== bytes.length) {
    throw new EntryError('TrailingBytes', `${bytes.length - end} trailing bytes after the entry at byte ${end}`, end);
  }
  const map = cborDecode(bytes, {
    strict: true,
    useMaps: true,
    rejectDuplicateMapKeys: true,
    allowIndefinite: false,
    allowUndefined: false,
    allowBigInt: true,
  }) as Cbor;
  if (!(map instanceof Map)) throw wrongType('entry', 'map', 0);

  let v: bigint | undefined;
  let ts: bigint | undefined;
  let run: string | undefined;
  let seq: bigint | undefined;
  let kind: EntryKind | undefined;
  let kindText: string | undefined;
  let actor: string | undefined;
  let attrs: Record<string, AttrValue> | undefined;
  let grant: string | undefined;
  let payload: Uint8Array | undefined;
  for (const [key, value] of map) {
    const at = (): number => offsets().top.get(key) ?? 0;
    switch (key) {
      case 'v':
        v = asValue('v', 'uint', value, at) as bigint;
        break;
      case 'ts':
        ts = asValue('ts', 'int', value, at) as bigint;
        break;
      case 'run':
        run = asValue('run', 'text', value, at) as string;
        break;
      case 'seq':
        seq = asValue('seq', 'uint', value, at) as bigint;
        break;
      case 'kind':
        kindText = asValue('kind', 'text', value, at) as string;
        break;
      case 'actor':
        actor = asValue('actor', 'text', value, at) as string;
        break;
      case 'attrs': {
        // The attrs schema depends on `kind`, which precedes `attrs` in canonical order.
        if (kindText === undefined) throw missing('kind', 'entry');
        const k = KINDS.find((x) => x === kindText);
        if (k === undefined) throw new EntryError('UnknownKind', `unknown entry kind ${JSON.stringify(kindText)}`);
        kind = k;
        attrs = checkAttrs(value, k, offsets, at);
        break;
      }
      case 'grant':
        grant = asValue('grant', 'text', value, at) as string;
        break;
      case 'payload':
        payload = asValue('payload', 'b32', value, at) as Uint8Array;
        break;
      default:
        throw new EntryError('UnknownKey', `unknown key ${JSON.stringify(key)} in entry`, undefined, key);
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
  const actorLen = utf8Length(actor);
  if (actorLen > MAX_RUN_ID_BYTES - 3) throw badValue('actor', 'identity names are at most 125 bytes');
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
