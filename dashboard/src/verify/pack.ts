/**
 * Compliance packs (SPEC §6), streamed: the tar is read chunk by chunk, `entries.bin` goes
 * through `PackVerifier` in the pieces it arrives in, and memory grows with the runs a pack holds
 * (their open state and, while a run starts inside the pack, its leaf hashes), never with the
 * bytes of its entries. The checks, their order and their texts are ledger-core's `pack.rs` and
 * `ledger-verify pack`'s; seal signatures are checked as each seal arrives, which reports the
 * same first failure as ledger-core's batches (it checks its queue before any later error).
 */
import { debugStr, equalBytes, fromBase64, popcount, toHex, utf8 } from './bytes.ts';
import { verifyStrict } from './ed25519.ts';
import { decodeEntry, MAX_ENTRY_BYTES, namedPayloads, type DecodedEntry } from './entry.ts';
import { blake3Hex, blake3Stream, leafHash } from './hash.ts';
import { Fields, parseJson, type JsonValue } from './json.ts';
import { CompactRange, consistencyProblem } from './merkle.ts';
import { descriptorFromFields, descriptorKey, openCheckpoint, sameLog, type Checkpoint, type LogDescriptor, type NamedPublicKey } from './note.ts';
import { evaluatePolicy, policyLogProblem, quorumError, type Policy, type QuorumVerdict } from './policy.ts';
import { unixNow } from './receipt.ts';
import { contentHash, sealMessage } from './seal.ts';
import { ByteSource, readTar, TarError } from './tar.ts';

export const PACK_FORMAT = 'a2a-ledger/pack/v1';
export const MANIFEST = 'manifest.json';
export const CHECKPOINT = 'checkpoint';
export const PROOF = 'proof.json';
export const ENTRIES = 'entries.bin';
export const HISTORY = 'history.json';
export const PAYLOADS_DIR = 'payloads/';
/** The largest small file (manifest, checkpoint, proof, history, a payload) read whole. */
const SMALL_LIMIT = 64 << 20;

/** A pack that fails: the file at fault, the log index if one, and why (ledger-core's text). */
export class PackFailure extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly index?: bigint,
    /** The whole line when it is not `pack <file>…: <reason>`. */
    line?: string,
  ) {
    super(line ?? `pack ${file}${index !== undefined ? ` at index ${index}` : ''}: ${reason}`);
    this.name = 'PackFailure';
  }
}

/** An erasure recorded in the pack. */
export interface ErasedPayload {
  hash: string;
  index: bigint;
  ts: bigint;
  approver: string;
  reason: string;
}

/** What a valid pack proves. */
export interface PackReport {
  start: bigint;
  end: bigint;
  treeSize: bigint;
  /** Seals whose run lies wholly in the range, all verified. */
  sealsVerified: number;
  /** Runs whose seals could not be checked from the pack alone, and why. */
  partial: { run: string; reason: string }[];
  /** Runs whose last entry in the pack is not a seal (identity runs and erasures not counted). */
  openRuns: number;
  /** Checkpoints of history.json proven consistent. */
  history: number;
  /** payloads/<hex> files, each checked against its name. */
  payloadsIncluded: number;
  /** Payloads entries name that the pack neither holds nor erases (hex). */
  payloadsAbsent: string[];
  /** Erasures in the pack. */
  payloadsErased: ErasedPayload[];
  /** Every file of the pack other than manifest.json, checkpoint, proof.json and entries.bin. */
  files: string[];
}

/** The verdict on one pack. */
export interface PackVerdict {
  ok: boolean;
  /** The pack could not be checked at all (not a tar, a required small file missing …). */
  malformed?: string;
  /** The first failure. */
  error?: { file: string; index?: bigint; reason: string };
  /** The failure as `ledger-verify` prints it after the pack's name. */
  message?: string;
  /** Under a policy: who cosigned the pack's checkpoint. */
  quorum?: QuorumVerdict;
  report?: PackReport;
  /** Tar bytes read. */
  bytesRead: number;
  /** Entries of entries.bin checked. */
  entriesRead: bigint;
}

interface Manifest {
  log: LogDescriptor;
  start: bigint;
  end: bigint;
  treeSize: bigint;
  created: string;
  files: Map<string, string>;
}

function parseManifest(bytes: Uint8Array): Manifest {
  const text = utf8(bytes);
  if (text === undefined) throw new Error('not UTF-8');
  const f = Fields.of(parseJson(text), 'manifest');
  const format = f.string('format');
  const log = descriptorFromFields(Fields.of(f.object('log'), 'log'));
  const start = f.u64('start');
  const end = f.u64('end');
  const treeSize = f.u64('tree_size');
  const created = f.string('created');
  const files = new Map<string, string>();
  for (const [k, v] of f.object('files')) {
    if (typeof v !== 'string') throw new Error(`files.${k}: expected a string`);
    files.set(k, v);
  }
  f.done();
  if (format !== PACK_FORMAT) throw new PackFailure(MANIFEST, `format ${debugStr(format)}, expected ${debugStr(PACK_FORMAT)}`);
  return { log, start, end, treeSize, created, files };
}

function hashes(v: JsonValue[]): Uint8Array[] {
  return v.map((h) => {
    if (typeof h !== 'string') throw new Error('proof hashes are base64 strings');
    const b = fromBase64(h);
    if (b.length !== 32) throw new Error(`proof hash of ${b.length} bytes, expected 32`);
    return b;
  });
}

interface RunState {
  firstSeq: bigint;
  nextSeq: bigint;
  /** Leaf hashes of the run's entries, kept while the run starts inside the pack. */
  leaves: Uint8Array[];
  /** The last entry is a seal, or the run is an erasure. */
  closed: boolean;
}

/** Streaming verification of one pack's files (ledger-core's `PackVerifier`). */
export class PackVerifier {
  readonly manifest: Manifest;
  private readonly checkpoint: Checkpoint;
  private readonly consistency: Uint8Array[];
  private readonly range: CompactRange;
  private nextIndex: bigint;
  private readonly runs = new Map<string, RunState>();
  private readonly identities = new Map<string, { index: bigint; key: Uint8Array }[]>();
  private readonly partial = new Map<string, string>();
  private sealsVerified = 0;
  private readonly entriesHash = blake3Stream();
  private carry: Uint8Array = new Uint8Array(0);
  private readonly named = new Set<string>();
  private readonly included = new Set<string>();
  private readonly erased = new Map<string, ErasedPayload>();

  /** Checks the manifest against `log`, the files' hashes, the checkpoint and the proof's shape. */
  constructor(
    private readonly log: LogDescriptor,
    manifest: Uint8Array,
    checkpoint: Uint8Array,
    proof: Uint8Array,
  ) {
    let m: Manifest;
    try {
      m = parseManifest(manifest);
    } catch (e) {
      if (e instanceof PackFailure) throw e;
      throw new PackFailure(MANIFEST, (e as Error).message);
    }
    if (!sameLog(m.log, log)) {
      throw new PackFailure(
        MANIFEST,
        `the pack is for log ${m.log.origin} (${m.log.hash}, key ${m.log.vkey}), not the trusted ${log.origin} (${log.hash}, key ${log.vkey})`,
      );
    }
    if (m.start > m.end || m.end > m.treeSize) {
      throw new PackFailure(MANIFEST, `range [${m.start}, ${m.end}) does not fit a tree of size ${m.treeSize}`);
    }
    for (const required of [CHECKPOINT, PROOF, ENTRIES]) {
      if (!m.files.has(required)) throw new PackFailure(MANIFEST, `files does not list ${required}`);
    }
    checkFileHash(m, CHECKPOINT, checkpoint);
    checkFileHash(m, PROOF, proof);
    const note = utf8(checkpoint);
    if (note === undefined) throw new PackFailure(CHECKPOINT, 'invalid utf-8');
    let cp: Checkpoint;
    try {
      cp = openCheckpoint(note, descriptorKey(log)).checkpoint;
    } catch (e) {
      throw new PackFailure(CHECKPOINT, (e as Error).message);
    }
    if (cp.size !== m.treeSize) {
      throw new PackFailure(CHECKPOINT, `checkpoint has size ${cp.size}, the manifest says ${m.treeSize}`);
    }
    let left: Uint8Array[];
    let consistency: Uint8Array[];
    try {
      const text = utf8(proof);
      if (text === undefined) throw new Error('not UTF-8');
      const f = Fields.of(parseJson(text), 'proof');
      left = hashes(f.array('left'));
      consistency = hashes(f.array('consistency'));
      f.done();
    } catch (e) {
      throw new PackFailure(PROOF, (e as Error).message);
    }
    const range = CompactRange.fromParts(m.start, left);
    if (range === undefined) {
      throw new PackFailure(PROOF, `left has ${left.length} hashes; start ${m.start} needs ${popcount(m.start)}`);
    }
    this.manifest = m;
    this.checkpoint = cp;
    this.consistency = consistency;
    this.range = range;
    this.nextIndex = m.start;
  }

  /** Entries taken so far. */
  entriesDone(): bigint {
    return this.nextIndex - this.manifest.start;
  }

  /** Feeds the next bytes of entries.bin. */
  entriesBin(chunk: Uint8Array, each?: (index: bigint, e: DecodedEntry) => void): void {
    this.entriesHash.update(chunk);
    if (this.carry.length > 0) {
      const need = this.carry.length >= 4 ? 4 + frameLen(this.carry) - this.carry.length : 4 - this.carry.length;
      let take = Math.min(need, chunk.length);
      this.carry = concat(this.carry, chunk.subarray(0, take));
      chunk = chunk.subarray(take);
      if (this.carry.length === 4) {
        // The header is complete; the body may still be partial.
        const n = this.checkedFrameLen(this.carry);
        take = Math.min(n, chunk.length);
        this.carry = concat(this.carry, chunk.subarray(0, take));
        chunk = chunk.subarray(take);
      }
      if (this.carry.length >= 4 && this.carry.length === 4 + frameLen(this.carry)) {
        const frame = this.carry;
        this.carry = new Uint8Array(0);
        this.entry(frame.subarray(4), each);
      } else {
        return;
      }
    }
    while (chunk.length >= 4) {
      const n = this.checkedFrameLen(chunk);
      if (chunk.length < 4 + n) break;
      this.entry(chunk.subarray(4, 4 + n), each);
      chunk = chunk.subarray(4 + n);
    }
    this.carry = concat(this.carry, chunk);
  }

  /** The length in a frame header, refused when no entry can be that long. */
  private checkedFrameLen(header: Uint8Array): number {
    const n = frameLen(header);
    if (n > MAX_ENTRY_BYTES) {
      throw new PackFailure(ENTRIES, `a frame of ${n} bytes, over the ${MAX_ENTRY_BYTES}-byte entry limit`, this.nextIndex);
    }
    return n;
  }

  private entry(bytes: Uint8Array, each?: (index: bigint, e: DecodedEntry) => void): void {
    const index = this.nextIndex;
    const m = this.manifest;
    if (index >= m.end) throw new PackFailure(ENTRIES, `more than the ${m.end - m.start} entries the manifest names`, index);
    let e: DecodedEntry;
    try {
      e = decodeEntry(bytes.slice());
    } catch (err) {
      throw new PackFailure(ENTRIES, (err as Error).message, index);
    }
    const h = this.log.hash;
    const leaf = leafHash(h, bytes);
    this.range.push(h, leaf);
    this.nextIndex += 1n;
    for (const p of namedPayloads(e)) this.named.add(toHex(p));
    if (e.kind === 'payload.erased') {
      const hash = toHex(e.attrs.hash as Uint8Array);
      this.erased.set(hash, { hash, index, ts: e.ts, approver: e.attrs.approver as string, reason: e.attrs.reason as string });
    }
    const run = e.run;
    let state = this.runs.get(run);
    if (state !== undefined) {
      if (e.seq !== state.nextSeq) {
        throw new PackFailure(ENTRIES, `run ${debugStr(run)} has seq ${e.seq} after seq ${state.nextSeq - 1n}`, index);
      }
    } else {
      if (e.seq !== 0n) this.partial.set(run, `the range starts at seq ${e.seq} of the run`);
      state = { firstSeq: e.seq, nextSeq: e.seq, leaves: [], closed: false };
      this.runs.set(run, state);
    }
    state.nextSeq = e.seq + 1n;
    const isSeal = e.kind === 'receipt.sealed';
    state.closed = isSeal || e.kind === 'payload.erased';
    if (e.kind === 'identity.registered') {
      const actor = run.startsWith('id/') ? run.slice(3) : run;
      const list = this.identities.get(actor) ?? [];
      list.push({ index, key: e.attrs.public_key as Uint8Array });
      this.identities.set(actor, list);
    } else if (isSeal) {
      const events = e.attrs.events as bigint;
      if (events !== e.seq) {
        throw new PackFailure(ENTRIES, `seal of run ${debugStr(run)} at seq ${e.seq} says events ${events}`, index);
      }
      if (state.firstSeq === 0n) {
        const ch = e.attrs.content_hash as Uint8Array;
        if (!equalBytes(contentHash(state.leaves), ch)) {
          throw new PackFailure(ENTRIES, `seal of run ${debugStr(run)}: content hash does not match the run's entries`, index);
        }
        const keys = this.identities.get(e.actor) ?? [];
        let key: Uint8Array | undefined;
        for (let i = keys.length - 1; i >= 0; i--) {
          if (keys[i]!.index < index) {
            key = keys[i]!.key;
            break;
          }
        }
        if (key !== undefined) {
          const msg = sealMessage(run, events, ch, e.attrs.status as string);
          if (!verifyStrict(key, msg, e.attrs.sig as Uint8Array)) {
            throw new PackFailure(
              ENTRIES,
              `seal of run ${debugStr(run)}: signature does not verify under ${debugStr(e.actor)}'s key`,
              index,
            );
          }
          this.sealsVerified++;
          this.partial.delete(run);
        } else {
          this.partial.set(run, `the key of ${debugStr(e.actor)} is registered before the pack's range`);
        }
      }
    }
    if (state.firstSeq === 0n) state.leaves.push(leaf);
    each?.(index, e);
  }

  /** Checks a further file the manifest lists (history.json, a payload, …). */
  otherFile(name: string, bytes: Uint8Array): void {
    if (name.startsWith(PAYLOADS_DIR)) {
      // Named by its BLAKE3: checked against the name first, so a changed byte names this file.
      const got = blake3Hex(bytes);
      if (got !== name.slice(PAYLOADS_DIR.length)) throw new PackFailure(name, `the payload hashes to ${got}, not to its name`);
      this.included.add(got);
    }
    checkFileHash(this.manifest, name, bytes);
    if (name === HISTORY) {
      let items: { checkpoint: string; consistency: Uint8Array[] }[];
      try {
        const text = utf8(bytes);
        if (text === undefined) throw new Error('not UTF-8');
        const v = parseJson(text);
        if (!Array.isArray(v)) throw new Error('expected an array');
        items = v.map((item, i) => {
          const f = Fields.of(item, `history[${i}]`);
          const checkpoint = f.string('checkpoint');
          const consistency = hashes(f.array('consistency'));
          f.done();
          return { checkpoint, consistency };
        });
      } catch (e) {
        throw new PackFailure(HISTORY, (e as Error).message);
      }
      const key = descriptorKey(this.log);
      items.forEach((item, i) => {
        let old: Checkpoint;
        try {
          old = openCheckpoint(item.checkpoint, key).checkpoint;
        } catch (e) {
          throw new PackFailure(HISTORY, `checkpoint ${i}: ${(e as Error).message}`, BigInt(i));
        }
        const problem = consistencyProblem(this.log.hash, old.size, this.checkpoint.size, old.root, this.checkpoint.root, item.consistency);
        if (problem !== undefined) {
          throw new PackFailure(
            HISTORY,
            `checkpoint ${i} (size ${old.size}) is not consistent with the pack's: consistency proof from size ${old.size} to size ${this.checkpoint.size} does not verify: ${problem}`,
            BigInt(i),
          );
        }
      });
    }
  }

  /** Ends entries.bin: its count and hash, then the tree folded and proven against the checkpoint. */
  finish(): PackReport {
    const m = this.manifest;
    if (this.carry.length > 0) {
      throw new PackFailure(ENTRIES, `truncated: ${this.carry.length} bytes of an unfinished entry at the end`, this.nextIndex);
    }
    if (this.nextIndex !== m.end) {
      throw new PackFailure(ENTRIES, `holds ${this.nextIndex - m.start} entries, the manifest says ${m.end - m.start}`);
    }
    const got = this.entriesHash.hex();
    if (m.files.get(ENTRIES) !== got) {
      throw new PackFailure(MANIFEST, `${ENTRIES} hashes to ${got}, the manifest says ${m.files.get(ENTRIES)}`);
    }
    const root = this.range.root(this.log.hash);
    const problem = consistencyProblem(this.log.hash, m.end, m.treeSize, root, this.checkpoint.root, this.consistency);
    if (problem !== undefined) {
      throw new PackFailure(
        PROOF,
        `the entries do not lead to the checkpoint: consistency proof from size ${m.end} to size ${m.treeSize} does not verify: ${problem}`,
      );
    }
    let openRuns = 0;
    for (const [run, s] of this.runs) if (!s.closed && !run.startsWith('id/')) openRuns++;
    const partial = [...this.partial].map(([run, reason]) => ({ run, reason })).sort((a, b) => (a.run < b.run ? -1 : a.run > b.run ? 1 : 0));
    const payloadsAbsent = [...this.named].filter((h) => !this.included.has(h) && !this.erased.has(h)).sort();
    const payloadsErased = [...this.erased.values()].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
    return {
      start: m.start,
      end: m.end,
      treeSize: m.treeSize,
      sealsVerified: this.sealsVerified,
      partial,
      openRuns,
      history: 0,
      payloadsIncluded: this.included.size,
      payloadsAbsent,
      payloadsErased,
      files: [],
    };
  }
}

function frameLen(b: Uint8Array): number {
  return ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function checkFileHash(m: Manifest, name: string, bytes: Uint8Array): void {
  const want = m.files.get(name);
  if (want === undefined) throw new PackFailure(MANIFEST, `the pack holds ${name}, which the manifest does not list`);
  const got = blake3Hex(bytes);
  if (want !== got) throw new PackFailure(MANIFEST, `${name} hashes to ${got}, the manifest says ${want}`);
}

class Malformed extends Error {}

/**
 * Verifies a pack streamed as a tar (as `GET /v1/pack` serves it, or a file dropped on the page)
 * against the trusted `log`, and `policy` at `now` seconds. `onProgress(bytes)` follows the tar
 * bytes read. The small files are read whole (at most 64 MiB each); entries.bin is checked as it
 * streams, or held until the small files arrive if it comes first.
 */
export async function verifyPack(
  stream: ReadableStream<Uint8Array>,
  log: LogDescriptor,
  opts: { policy?: Policy; onProgress?: (bytes: number) => void; now?: bigint; onEntry?: (index: bigint, e: DecodedEntry) => void } = {},
): Promise<PackVerdict> {
  const reader = stream.getReader();
  const src = new ByteSource(reader, (n) => opts.onProgress?.(n));
  const verdict: PackVerdict = { ok: false, bytesRead: 0, entriesRead: 0n };
  let verifier: PackVerifier | undefined;
  const small = new Map<string, Uint8Array>();
  const others: [string, Uint8Array][] = [];
  let spooled: Uint8Array[] | undefined;
  let entriesDone = false;

  const ready = (): boolean => {
    if (verifier !== undefined) return true;
    const m = small.get(MANIFEST);
    const c = small.get(CHECKPOINT);
    const p = small.get(PROOF);
    if (m === undefined || c === undefined || p === undefined) return false;
    // A manifest that is not one could not be checked (ledger-verify: exit 2).
    try {
      parseManifest(m);
    } catch (e) {
      if (!(e instanceof PackFailure)) throw new Malformed(`${MANIFEST}: not a pack manifest: ${(e as Error).message}`);
    }
    const v = new PackVerifier(log, m, c, p);
    // Under a trust policy the checkpoint, whose log signature was just checked, must also carry
    // the policy's quorum of cosignatures (SPEC §8).
    if (opts.policy !== undefined) {
      const note = utf8(c) ?? '';
      let q: QuorumVerdict;
      try {
        q = evaluatePolicy(opts.policy, note, descriptorKey(log), opts.now ?? unixNow()).quorum;
      } catch (e) {
        throw new PackFailure(CHECKPOINT, `step witness quorum failed: ${(e as Error).message}`, undefined, `${CHECKPOINT}: step witness quorum failed: ${(e as Error).message}`);
      }
      verdict.quorum = q;
      if (!q.satisfied) {
        const why = `step witness quorum failed: ${quorumError(q)}`;
        throw new PackFailure(CHECKPOINT, why, undefined, `${CHECKPOINT}: ${why}`);
      }
    }
    verifier = v;
    return true;
  };
  const feed = (chunk: Uint8Array): void => {
    verifier!.entriesBin(chunk, opts.onEntry);
    verdict.entriesRead = verifier!.entriesDone();
  };

  try {
    let key: NamedPublicKey;
    try {
      key = descriptorKey(log);
    } catch (e) {
      throw new Malformed(`trusted log descriptor: ${(e as Error).message}`);
    }
    // The trust settings are checked before a byte of the pack is read, as ledger-verify loads
    // them: a policy naming another log could not check any pack, damaged or not.
    if (opts.policy !== undefined) {
      const problem = policyLogProblem(opts.policy, key);
      if (problem !== undefined) throw new Malformed(problem);
    }
    await readTar(src, async (member, body) => {
      if (member.type === '5') return;
      if (member.type !== '0' && member.type !== '7') {
        throw new PackFailure('tar', `the tar holds a ${member.type} entry; a pack holds only files`, undefined, `the tar holds a ${debugStr(member.type)} entry; a pack holds only files`);
      }
      const name = member.name.replace(/^(\.\/)+/, '');
      if (name.split('/').some((c) => c === '..' || c === '')) {
        throw new PackFailure('tar', `the tar entry ${debugStr(name)} leaves the pack`, undefined, `the tar entry ${debugStr(name)} leaves the pack`);
      }
      if (name === ENTRIES) {
        if (ready()) {
          await body(feed);
          entriesDone = true;
        } else {
          // The small files come later: hold entries.bin meanwhile.
          const parts: Uint8Array[] = [];
          await body((c) => parts.push(c.slice()));
          spooled = parts;
        }
        return;
      }
      if (member.size > SMALL_LIMIT) {
        throw new PackFailure(name, `${name} is over ${SMALL_LIMIT} bytes`, undefined, `${name} is over ${SMALL_LIMIT} bytes`);
      }
      const buf = new Uint8Array(member.size);
      let o = 0;
      await body((c) => {
        buf.set(c, o);
        o += c.length;
      });
      if (name === MANIFEST || name === CHECKPOINT || name === PROOF) small.set(name, buf);
      else others.push([name, buf]);
      if (spooled !== undefined && ready()) {
        const parts = spooled;
        spooled = undefined;
        for (const p of parts) feed(p);
        entriesDone = true;
      }
    });
    for (const name of [MANIFEST, CHECKPOINT, PROOF]) {
      if (!small.has(name)) throw new Malformed(`the pack has no ${name}`);
    }
    ready();
    if (!entriesDone) throw new PackFailure(ENTRIES, `the pack has no ${ENTRIES}`, undefined, `the pack has no ${ENTRIES}`);
    const v = verifier!;
    let history = 0;
    const names: string[] = [];
    for (const [name, bytes] of others) {
      v.otherFile(name, bytes);
      if (name === HISTORY) {
        try {
          const h = parseJson(utf8(bytes) ?? '');
          history = Array.isArray(h) ? h.length : 0;
        } catch {
          history = 0;
        }
      }
      names.push(name);
    }
    // In the order ledger-core lists them (sorted by name).
    for (const name of [...v.manifest.files.keys()].sort()) {
      const core = name === CHECKPOINT || name === PROOF || name === ENTRIES;
      if (!core && !names.includes(name)) {
        const why = `the manifest lists ${name}, which the pack does not hold`;
        throw new PackFailure(MANIFEST, why, undefined, why);
      }
    }
    const report = v.finish();
    report.history = history;
    report.files = names;
    verdict.ok = true;
    verdict.report = report;
  } catch (e) {
    if (e instanceof Malformed) verdict.malformed = e.message;
    else if (e instanceof TarError) {
      // ledger-verify: a damaged archive is invalid (exit 1), not "could not check".
      const reason = `the tar archive is damaged: ${e.message}`;
      verdict.error = { file: 'tar', reason };
      verdict.message = reason;
    }
    else if (e instanceof PackFailure) {
      verdict.error = e.index === undefined ? { file: e.file, reason: e.reason } : { file: e.file, index: e.index, reason: e.reason };
      verdict.message = e.message;
    } else throw e;
  } finally {
    verdict.bytesRead = src.bytesRead;
    // A verdict reached before the end of the stream needs none of the rest.
    if (!verdict.ok) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  return verdict;
}

