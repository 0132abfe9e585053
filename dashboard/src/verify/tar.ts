/**
 * A streaming reader of ustar archives (with GNU long names and pax `path` records), for packs:
 * headers are read whole, file bodies are handed on in the chunks they arrive in, so a pack of
 * any size passes through in memory bounded by the chunk size.
 */

/** A damaged archive; `message` says how. */
export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

/** Pull-based bytes over a stream reader, counting what it consumed. */
export class ByteSource {
  private buf: Uint8Array = new Uint8Array(0);
  private off = 0;
  private done = false;
  /** Bytes taken from the stream so far. */
  bytesRead = 0;

  constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    private readonly onChunk: (bytesRead: number) => void,
  ) {}

  private async fill(): Promise<boolean> {
    while (this.off >= this.buf.length) {
      if (this.done) return false;
      const { value, done } = await this.reader.read();
      if (done) {
        this.done = true;
        return false;
      }
      this.buf = value;
      this.off = 0;
      this.bytesRead += value.length;
      this.onChunk(this.bytesRead);
    }
    return true;
  }

  /** Exactly `n` bytes, or fewer at the end of the stream. */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n && (await this.fill())) {
      const take = Math.min(n - got, this.buf.length - this.off);
      out.set(this.buf.subarray(this.off, this.off + take), got);
      this.off += take;
      got += take;
    }
    return got === n ? out : out.subarray(0, got);
  }

  /** Hands `n` bytes to `each` in the pieces they arrived in; false if the stream ended first. */
  async forward(n: number, each: (chunk: Uint8Array) => void): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) return false;
      const take = Math.min(left, this.buf.length - this.off);
      each(this.buf.subarray(this.off, this.off + take));
      this.off += take;
      left -= take;
    }
    return true;
  }

  /** Reads to the end of the stream (what follows the end-of-archive blocks is padding). */
  async drain(): Promise<void> {
    while (await this.fill()) this.off = this.buf.length;
  }

  /** Skips `n` bytes. */
  async skip(n: number): Promise<boolean> {
    return this.forward(n, () => {});
  }
}

/** One member of the archive. */
export interface TarMember {
  name: string;
  /** '0' regular, '5' directory, … as in the header. */
  type: string;
  size: number;
}

function field(h: Uint8Array, start: number, len: number): string {
  let end = start;
  while (end < start + len && h[end] !== 0) end++;
  return new TextDecoder('utf-8', { fatal: false }).decode(h.subarray(start, end));
}

function octal(h: Uint8Array, start: number, len: number, what: string): number {
  if ((h[start]! & 0x80) !== 0) {
    // GNU base-256 for large numbers.
    let n = BigInt(h[start]! & 0x7f);
    for (let i = 1; i < len; i++) n = (n << 8n) | BigInt(h[start + i]!);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarError(`${what} too large`);
    return Number(n);
  }
  const s = field(h, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`numeric field ${what} was not octal: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

/**
 * Reads the archive member by member: `onMember(member, body)` is called for each file, with
 * `body(each)` forwarding its bytes chunk by chunk (call it at most once; unread bodies are
 * skipped).
 */
export async function readTar(
  src: ByteSource,
  onMember: (m: TarMember, body: (each: (chunk: Uint8Array) => void) => Promise<void>) => Promise<void>,
): Promise<void> {
  let longName: string | undefined;
  for (;;) {
    const h = await src.read(512);
    // The end of the stream ends the archive (an empty stream is an archive without members).
    if (h.length === 0) return;
    if (h.length < 512) throw new TarError('failed to read entire block');
    if (h.every((b) => b === 0)) {
      // The end-of-archive blocks; the rest is padding (tar pads to whole records).
      await src.drain();
      return;
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (octal(h, 148, 8, 'checksum') !== sum) throw new TarError('archive header checksum mismatch');
    const size = octal(h, 124, 12, 'size');
    const type = String.fromCharCode(h[156]! === 0 ? 0x30 : h[156]!);
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'L' || type === 'x') {
      // A GNU long name, or a pax header whose `path` names the next member.
      const data = await src.read(padded);
      if (data.length < padded) throw new TarError('unexpected end of the archive');
      const text = new TextDecoder().decode(data.subarray(0, size));
      if (type === 'L') longName = text.replace(/\0+$/, '');
      else {
        for (const rec of text.split('\n')) {
          const m = /^[0-9]+ path=(.*)$/.exec(rec);
          if (m !== null) longName = m[1]!;
        }
      }
      continue;
    }
    if (type === 'g') {
      if (!(await src.skip(padded))) throw new TarError('unexpected end of the archive');
      continue;
    }
    let name = longName ?? field(h, 0, 100);
    longName = undefined;
    const ustar = field(h, 257, 6).startsWith('ustar');
    const prefix = ustar ? field(h, 345, 155) : '';
    if (prefix !== '' && name === field(h, 0, 100)) name = `${prefix}/${name}`;
    let used = false;
    let ended = false;
    await onMember({ name, type, size }, async (each) => {
      used = true;
      if (!(await src.forward(size, each))) ended = true;
    });
    if (ended) throw new TarError('unexpected end of the archive');
    if (!used && !(await src.skip(size))) throw new TarError('unexpected end of the archive');
    if (!(await src.skip(padded - size))) throw new TarError('unexpected end of the archive');
  }
}
