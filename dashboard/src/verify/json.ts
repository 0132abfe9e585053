/**
 * A strict JSON reader for the documents the verifier takes (receipts, descriptors, pack
 * manifests and proofs). It reads what `serde_json` reads into the project's structs with
 * `deny_unknown_fields`: duplicate keys are refused, integers keep their exact value (u64 indices
 * and sizes pass 2^53), and trailing characters or lone surrogates are errors. `JSON.parse` would
 * take the last of two duplicate keys and round large integers.
 */

/** A JSON number, kept as its text. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** A JSON value: objects are `Map`s in document order. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
/** A JSON object. */
export type JsonObject = Map<string, JsonValue>;

/** Parses `text` as one JSON value; throws `Error` with the position on malformed input. */
export function parseJson(text: string): JsonValue {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at offset ${i}`);
  };
  const ws = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const value = (depth: number): JsonValue => {
    if (depth > 128) fail('recursion limit exceeded');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: JsonObject = new Map();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('key must be a string');
        const key = string();
        if (obj.has(key)) fail(`duplicate field \`${key}\``);
        ws();
        if (text[i] !== ':') fail('expected `:`');
        i++;
        obj.set(key, value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('expected `,` or `}`');
      }
    }
    if (c === '[') {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('expected `,` or `]`');
      }
    }
    if (c === '"') return string();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (m === null || m[0] === '' || m[0] === '-') return fail('expected value');
    i += m[0].length;
    return new JsonNumber(m[0]);
  };
  const string = (): string => {
    i++; // opening quote
    let out = '';
    let run = i; // start of the characters not yet copied to `out`
    for (;;) {
      if (i >= text.length) fail('EOF while parsing a string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(run, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character (\\u0000-\\u001F) found while parsing a string');
      if (c === 0x5c) {
        out += text.slice(run, i);
        const e = text[i + 1];
        i += 2;
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            const hi = hex4();
            if (hi >= 0xdc00 && hi <= 0xdfff) fail('lone trailing surrogate in hex escape');
            if (hi >= 0xd800 && hi <= 0xdbff) {
              if (text[i] !== '\\' || text[i + 1] !== 'u') fail('lone leading surrogate in hex escape');
              i += 2;
              const lo = hex4();
              if (lo < 0xdc00 || lo > 0xdfff) fail('lone leading surrogate in hex escape');
              out += String.fromCharCode(hi, lo);
            } else {
              out += String.fromCharCode(hi);
            }
            break;
          }
          default:
            fail('invalid escape');
        }
        run = i;
        continue;
      }
      // A lone surrogate in the JS string itself cannot come from valid UTF-8 text.
      if (c >= 0xd800 && c <= 0xdbff) {
        const d = text.charCodeAt(i + 1);
        if (!(d >= 0xdc00 && d <= 0xdfff)) fail('invalid unicode code point');
        i += 2;
        continue;
      }
      if (c >= 0xdc00 && c <= 0xdfff) fail('invalid unicode code point');
      i++;
    }
  };
  const hex4 = (): number => {
    const h = text.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('invalid escape');
    i += 4;
    return parseInt(h, 16);
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}

/** Field access for one struct-like JSON object: every field must be read or the object is refused. */
export class Fields {
  private readonly seen = new Set<string>();
  constructor(
    private readonly obj: JsonObject,
    private readonly what: string,
  ) {}

  static of(v: JsonValue | undefined, what: string): Fields {
    if (!(v instanceof Map)) throw new Error(`${what}: expected an object`);
    return new Fields(v, what);
  }

  private take(key: string): JsonValue {
    this.seen.add(key);
    const v = this.obj.get(key);
    if (v === undefined) throw new Error(`${this.what}: missing field \`${key}\``);
    return v;
  }

  has(key: string): boolean {
    return this.obj.has(key);
  }

  string(key: string): string {
    const v = this.take(key);
    if (typeof v !== 'string') throw new Error(`${this.what}: \`${key}\` must be a string`);
    return v;
  }

  u64(key: string): bigint {
    return jsonU64(this.take(key), `${this.what}: \`${key}\``);
  }

  array(key: string): JsonValue[] {
    const v = this.take(key);
    if (!Array.isArray(v)) throw new Error(`${this.what}: \`${key}\` must be an array`);
    return v;
  }

  object(key: string): JsonObject {
    const v = this.take(key);
    if (!(v instanceof Map)) throw new Error(`${this.what}: \`${key}\` must be an object`);
    return v;
  }

  value(key: string): JsonValue {
    return this.take(key);
  }

  /** Refuses fields that were not read (`deny_unknown_fields`). */
  done(): void {
    for (const k of this.obj.keys()) {
      if (!this.seen.has(k)) throw new Error(`${this.what}: unknown field \`${k}\``);
    }
  }
}

/** A JSON number that is an unsigned 64-bit integer (no fraction, no exponent). */
export function jsonU64(v: JsonValue | undefined, what: string): bigint {
  // No sign: serde_json reads `-0` as a float and `-1` as negative, neither a u64.
  if (!(v instanceof JsonNumber) || !/^[0-9]+$/.test(v.text)) {
    throw new Error(`${what} must be an unsigned integer`);
  }
  const n = BigInt(v.text);
  if (n > (1n << 64n) - 1n) throw new Error(`${what} is out of the u64 range`);
  return n;
}
