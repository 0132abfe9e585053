/** Shared helpers of the verifier tests: repository paths, fixtures, a ustar writer, streams. */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseDescriptor, type LogDescriptor } from '../src/verify/index.ts';

/** The repository root. */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A file of the repository as text. */
export function text(rel: string): string {
  return readFileSync(join(REPO, rel), 'utf8');
}

/** A file of the repository as bytes. */
export function bytes(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(REPO, rel)));
}

/** A log descriptor file of the repository. */
export function descriptor(rel: string): LogDescriptor {
  return parseDescriptor(text(rel));
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar archive of `files` in the order given (as ledger-server writes packs). */
export function tar(files: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const [name, data] of files) {
    const h = new Uint8Array(512);
    h.set(enc.encode(name).subarray(0, 100), 0);
    h.set(enc.encode(octal(0o644, 8)), 100);
    h.set(enc.encode(octal(0, 8)), 108);
    h.set(enc.encode(octal(0, 8)), 116);
    h.set(enc.encode(octal(data.length, 12)), 124);
    h.set(enc.encode(octal(0, 12)), 136);
    h.set(enc.encode('        '), 148);
    h[156] = 0x30;
    h.set(enc.encode('ustar\0'), 257);
    h.set(enc.encode('00'), 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.set(enc.encode(octal(sum, 7) + ' '), 148);
    parts.push(h, data);
    const pad = (512 - (data.length % 512)) % 512;
    parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024));
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

/** The files of a pack directory in ledger-verify's order: the small files, entries.bin, the rest. */
export function packDir(rel: string): [string, Uint8Array][] {
  const root = join(REPO, rel);
  const names: string[] = [];
  const walk = (d: string, prefix: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p, `${prefix}${n}/`);
      else names.push(prefix + n);
    }
  };
  walk(root, '');
  const rank = (n: string): number => ['manifest.json', 'checkpoint', 'proof.json', 'entries.bin'].indexOf(n) >>> 0;
  names.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  return names.map((n) => [n, new Uint8Array(readFileSync(join(root, n)))]);
}

/** A stream of `data` in chunks of `size` bytes. */
export function streamOf(data: Uint8Array, size = 4096): ReadableStream<Uint8Array> {
  let o = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (o >= data.length) {
        c.close();
        return;
      }
      c.enqueue(data.slice(o, o + size));
      o += size;
    },
  });
}
