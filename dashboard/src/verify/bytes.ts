/**
 * Byte helpers shared by the verifier: hex, strict base64 (RFC 4648 standard alphabet, padded,
 * no stray trailing bits, as the Rust `base64` crate's STANDARD engine reads it), strict UTF-8,
 * and u64 bounds.
 */

/** The largest u64, as a bigint. */
export const U64_MAX = (1n << 64n) - 1n;
/** The largest i64, as a bigint. */
export const I64_MAX = (1n << 63n) - 1n;
/** The smallest i64, as a bigint. */
export const I64_MIN = -(1n << 63n);

const HEX = '0123456789abcdef';

/** Lowercase hex of `b`. */
export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += HEX[x >> 4]! + HEX[x & 15]!;
  return s;
}

/** Bytes of a hex string (either case); throws on odd length or a non-hex digit. */
export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new Error(`not hex: ${JSON.stringify(s)}`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** Standard base64 with padding. */
export function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]!;
    s += i + 1 < b.length ? B64[(n >> 6) & 63]! : '=';
    s += i + 2 < b.length ? B64[n & 63]! : '=';
  }
  return s;
}

/**
 * Strict standard base64: length a multiple of 4, padding only at the end and only as much as
 * needed, the unused bits of the last symbol zero (a canonical encoding), no whitespace.
 * Throws `Error` describing the first problem.
 */
export function fromBase64(s: string): Uint8Array {
  if (s.length % 4 !== 0) throw new Error('invalid base64: length is not a multiple of 4');
  let pad = 0;
  if (s.endsWith('==')) pad = 2;
  else if (s.endsWith('=')) pad = 1;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const last = i + 4 === s.length;
    const v = [0, 0, 0, 0];
    for (let j = 0; j < 4; j++) {
      const c = s.charCodeAt(i + j);
      if (last && j >= 4 - pad) {
        if (c !== 61) throw new Error('invalid base64: bad padding');
        continue;
      }
      const x = c < 128 ? B64_INDEX[c]! : -1;
      if (x < 0) throw new Error(`invalid base64: symbol ${JSON.stringify(s[i + j])} at offset ${i + j}`);
      v[j] = x;
    }
    const n = (v[0]! << 18) | (v[1]! << 12) | (v[2]! << 6) | v[3]!;
    if (last && pad === 2 && (n & 0xffff) !== 0) throw new Error('invalid base64: non-zero trailing bits');
    if (last && pad === 1 && (n & 0xff) !== 0) throw new Error('invalid base64: non-zero trailing bits');
    out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();

/** Decodes UTF-8, or returns `undefined` if the bytes are not valid UTF-8. */
export function utf8(b: Uint8Array): string | undefined {
  try {
    return UTF8_STRICT.decode(b);
  } catch {
    return undefined;
  }
}

/** The UTF-8 bytes of `s`. */
export function utf8Bytes(s: string): Uint8Array {
  return UTF8_ENCODER.encode(s);
}

/** Byte-wise equality. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The concatenation of `parts`. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Number of set bits of a u64. */
export function popcount(n: bigint): number {
  let c = 0;
  while (n > 0n) {
    c += Number(n & 1n);
    n >>= 1n;
  }
  return c;
}

/** Rust's `char::is_whitespace` (Unicode White_Space) for one code point. */
export function isUnicodeWhitespace(cp: number): boolean {
  return (
    (cp >= 0x09 && cp <= 0x0d) ||
    cp === 0x20 ||
    cp === 0x85 ||
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

/** Rust's `char::is_control` (general category Cc) for one code point. */
export function isUnicodeControl(cp: number): boolean {
  return cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f);
}

/**
 * `s` quoted as Rust's `{:?}` prints a string, so that messages read as ledger-core's do:
 * `"`, `\` and the ASCII controls escaped (`\0`, `\t`, `\n`, `\r`, else `\u{1f}`), as are the
 * C1 controls; other characters as they are.
 */
export function debugStr(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c === 0) out += '\\0';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}
