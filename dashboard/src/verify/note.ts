/**
 * Signed-note verifier keys, C2SP signed notes and `tlog-checkpoint`s, and log descriptors
 * (SPEC §4), read as ledger-core's `keys.rs` and `checkpoint.rs` read them.
 */
import { debugStr, equalBytes, fromBase64, isUnicodeControl, isUnicodeWhitespace, toHex, U64_MAX, utf8Bytes } from './bytes.ts';
import { publicKeyProblem, verifyStrict } from './ed25519.ts';
import { sha256Bytes, type TreeHashName } from './hash.ts';
import { Fields, parseJson } from './json.ts';

/** The largest signed note accepted, in UTF-8 bytes. */
export const MAX_NOTE_BYTES = 16 * 1024;
/** The most signature lines on one note. */
export const MAX_NOTE_SIGNATURES = 100;
const DASH = '\u2014 ';

/** Signed-note key types: Ed25519 log keys and `cosignature/v1` witness keys. */
export const ALG_ED25519 = 0x01;
export const ALG_COSIGNATURE_V1 = 0x04;

/** A failure with ledger-core's error text. `kind` names its variant. */
export class VerifyError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
    this.name = 'VerifyError';
  }
}

/** What a verifier must know of a log (SPEC §4). */
export interface LogDescriptor {
  /** The log's origin, also its key name. */
  origin: string;
  /** The tree hash. */
  hash: TreeHashName;
  /** The signed-note verifier key `<origin>+<key id>+<base64(0x01 ‖ key)>`. */
  vkey: string;
}

/** Checks a key name (= origin): non-empty, no whitespace, control characters or `+`. */
export function keyNameProblem(name: string): boolean {
  if (name.length === 0) return true;
  for (const ch of name) {
    const cp = ch.codePointAt(0)!;
    if (isUnicodeWhitespace(cp) || isUnicodeControl(cp) || ch === '+') return true;
  }
  return false;
}

function checkKeyName(name: string): void {
  if (keyNameProblem(name)) {
    throw new VerifyError('BadOrigin', `bad origin ${debugStr(name)}: must be non-empty, printable, without spaces or '+'`);
  }
}

/** The key id: first 4 bytes of `SHA-256(name ‖ 0x0A ‖ type ‖ public key)`. */
export function keyId(name: string, alg: number, publicKey: Uint8Array): Uint8Array {
  const n = utf8Bytes(name);
  const buf = new Uint8Array(n.length + 2 + 32);
  buf.set(n, 0);
  buf[n.length] = 0x0a;
  buf[n.length + 1] = alg;
  buf.set(publicKey, n.length + 2);
  return sha256Bytes(buf).slice(0, 4);
}

/** A parsed signed-note verifier key (log, type 0x01) or witness key (type 0x04). */
export interface NamedPublicKey {
  name: string;
  id: Uint8Array;
  publicKey: Uint8Array;
  alg: number;
  /** The key as text. */
  text: string;
}

/** Parses `<name>+<key id>+<base64(type ‖ key)>` of the given type, as ledger-core does. */
export function parseVerifierKey(s: string, alg: number = ALG_ED25519): NamedPublicKey {
  const bad = (why: string): VerifyError =>
    alg === ALG_ED25519
      ? new VerifyError('MalformedKey', `malformed verifier key: ${why} in ${debugStr(s)}`)
      : new VerifyError('MalformedKey', `malformed verifier key: witness key ${debugStr(s)}: ${why}`);
  // Names never contain '+'; base64 may, so split at the first two.
  const a = s.indexOf('+');
  const b = a < 0 ? -1 : s.indexOf('+', a + 1);
  if (a < 0 || b < 0) throw bad('expected <name>+<key id>+<key>');
  const name = s.slice(0, a);
  const idHex = s.slice(a + 1, b);
  const b64 = s.slice(b + 1);
  if (alg === ALG_ED25519) checkKeyName(name);
  else if (keyNameProblem(name)) throw bad("the name is empty or holds whitespace or '+'");
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw bad('key id is not 8 lowercase hex digits');
  let raw: Uint8Array;
  try {
    raw = fromBase64(b64);
  } catch {
    throw bad('key is not standard base64');
  }
  if (raw.length === 0) throw bad('empty key');
  if (raw[0] !== alg) {
    if (alg === ALG_ED25519) throw bad('key type is not Ed25519 (0x01)');
    if (raw[0] === ALG_ED25519) throw bad('type 0x01 is a log (signed-note Ed25519) key; a cosignature/v1 witness key has 0x04');
    throw bad(`type 0x${raw[0]!.toString(16).padStart(2, '0')} is not cosignature/v1 Ed25519 (0x04)`);
  }
  const key = raw.slice(1);
  if (key.length !== 32) throw bad('Ed25519 key is not 32 bytes');
  if (alg !== ALG_ED25519) checkKeyName(name);
  const problem = publicKeyProblem(key);
  if (problem !== undefined) throw new VerifyError('BadPublicKey', `public key is not a valid Ed25519 key: ${problem}`);
  const id = keyId(name, alg, key);
  if (toHex(id) !== idHex) throw bad('key id does not match the name and key');
  return { name, id, publicKey: key, alg, text: s };
}

/** One signature line of a note. */
export interface NoteSignature {
  name: string;
  keyId: Uint8Array;
  /** The bytes after the key id. */
  signature: Uint8Array;
}

/** A parsed signed note: its text (ending in a newline) and signature lines. */
export interface Note {
  text: string;
  signatures: NoteSignature[];
}

/** Parses a C2SP signed note; does not verify signatures. */
export function parseNote(note: string): Note {
  const bad = (why: string): VerifyError => new VerifyError('MalformedNote', `malformed signed note: ${why}`);
  const len = utf8Bytes(note).length;
  if (len > MAX_NOTE_BYTES) throw bad(`${len} bytes, over the ${MAX_NOTE_BYTES}-byte limit`);
  for (const ch of note) {
    const c = ch.codePointAt(0)!;
    if (c !== 0x0a && (c < 0x20 || c === 0x7f)) {
      throw bad(`contains control character U+${c.toString(16).toUpperCase().padStart(4, '0')}`);
    }
  }
  // The text ends at the *last* blank line: texts may hold blank lines, signatures cannot.
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw bad('no blank line between text and signatures');
  const text = note.slice(0, split + 1);
  const sigs = note.slice(split + 2);
  if (!sigs.endsWith('\n')) throw bad('signature block does not end with a newline');
  const signatures: NoteSignature[] = [];
  for (const line of sigs.slice(0, -1).split('\n')) {
    if (signatures.length === MAX_NOTE_SIGNATURES) throw bad(`more than ${MAX_NOTE_SIGNATURES} signatures`);
    if (!line.startsWith(DASH)) throw bad(`signature line ${debugStr(line)} does not start with "— "`);
    const rest = line.slice(DASH.length);
    const sp = rest.indexOf(' ');
    if (sp < 0) throw bad(`signature line ${debugStr(line)} has no signature`);
    const name = rest.slice(0, sp);
    const b64 = rest.slice(sp + 1);
    if (keyNameProblem(name)) throw bad(`bad key name ${debugStr(name)}`);
    let raw: Uint8Array;
    try {
      raw = fromBase64(b64);
    } catch {
      throw bad(`signature of ${name} is not standard base64`);
    }
    if (raw.length < 5) throw bad(`signature of ${name} is too short`);
    signatures.push({ name, keyId: raw.slice(0, 4), signature: raw.slice(4) });
  }
  return { text, signatures };
}

/** Verifies the signature line(s) of `key` on `note`: at least one, and every one valid. */
export function verifyNote(note: Note, key: NamedPublicKey): void {
  let found = false;
  const text = utf8Bytes(note.text);
  for (const s of note.signatures) {
    if (s.name !== key.name || !equalBytes(s.keyId, key.id)) continue;
    found = true;
    if (s.signature.length !== 64 || !verifyStrict(key.publicKey, text, s.signature)) {
      throw new VerifyError('BadSignature', `signature by ${key.name} does not verify`);
    }
  }
  if (!found) {
    throw new VerifyError('NoKnownSignature', `note has no signature from key ${key.name}+${toHex(key.id)}`);
  }
}

/** The body of a checkpoint. */
export interface Checkpoint {
  origin: string;
  size: bigint;
  root: Uint8Array;
  extensions: string[];
}

/** Parses note text as a checkpoint body. */
export function parseCheckpointText(text: string): Checkpoint {
  const bad = (why: string): VerifyError => new VerifyError('MalformedNote', `malformed signed note: ${why}`);
  if (!text.endsWith('\n')) throw bad('checkpoint text does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  const origin = lines[0] ?? '';
  if (keyNameProblem(origin)) throw bad(`bad origin line ${debugStr(origin)}`);
  const sizeLine = lines[1];
  if (sizeLine === undefined) throw bad('missing tree size line');
  const canonical = /^(0|[1-9][0-9]*)$/.test(sizeLine);
  if (!canonical || BigInt(sizeLine) > U64_MAX) throw bad(`tree size ${debugStr(sizeLine)} is not a decimal number`);
  const rootLine = lines[2];
  if (rootLine === undefined) throw bad('missing root hash line');
  let root: Uint8Array | undefined;
  try {
    root = fromBase64(rootLine);
  } catch {
    root = undefined;
  }
  if (root === undefined || root.length !== 32) throw bad(`root ${debugStr(rootLine)} is not 32 bytes of base64`);
  const extensions = lines.slice(3);
  if (extensions.some((e) => e === '')) throw bad('empty extension line');
  return { origin, size: BigInt(sizeLine), root, extensions };
}

/**
 * Parses a signed checkpoint and verifies it under `key`, whose name must be the origin. A wrong
 * origin is `VerifyError('WrongLog')`.
 */
export function openCheckpoint(noteText: string, key: NamedPublicKey): { checkpoint: Checkpoint; note: Note } {
  const note = parseNote(noteText);
  const checkpoint = parseCheckpointText(note.text);
  if (checkpoint.origin !== key.name) {
    throw new VerifyError('WrongLog', `receipt is for log ${checkpoint.origin}, expected ${key.name}`);
  }
  verifyNote(note, key);
  return { checkpoint, note };
}

/** Reads a descriptor object (`{"origin", "hash", "vkey"}`, nothing else). */
export function descriptorFromFields(f: Fields): LogDescriptor {
  const origin = f.string('origin');
  const hash = f.string('hash');
  if (hash !== 'blake3' && hash !== 'sha256') {
    throw new Error(`unknown tree hash ${debugStr(hash)} (expected "blake3" or "sha256")`);
  }
  const vkey = f.string('vkey');
  f.done();
  return { origin, hash, vkey };
}

/** The descriptor's verifier key; its name must be the origin. */
export function descriptorKey(log: LogDescriptor): NamedPublicKey {
  const key = parseVerifierKey(log.vkey, ALG_ED25519);
  if (key.name !== log.origin) {
    throw new VerifyError(
      'MalformedKey',
      `malformed verifier key: verifier key name ${debugStr(key.name)} differs from origin ${debugStr(log.origin)}`,
    );
  }
  return key;
}

/**
 * Parses a log descriptor's JSON, strictly (unknown fields refused), and checks its key. Throws
 * an `Error` saying what is wrong.
 */
export function parseDescriptor(json: string): LogDescriptor {
  let log: LogDescriptor;
  try {
    log = descriptorFromFields(Fields.of(parseJson(json), 'log descriptor'));
  } catch (e) {
    throw new Error(`not a log descriptor: ${(e as Error).message}`);
  }
  descriptorKey(log);
  return log;
}

/** Descriptor equality (what a receipt or pack names against what the auditor trusts). */
export function sameLog(a: LogDescriptor, b: LogDescriptor): boolean {
  return a.origin === b.origin && a.hash === b.hash && a.vkey === b.vkey;
}
