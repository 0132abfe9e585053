/**
 * Receipts (SPEC §5): the five steps in ledger-core's order, each failure naming the step and
 * the log index concerned, with ledger-core's step numbers, names and texts. Under a trust
 * policy (SPEC §8) step 1 also requires the checkpoint to satisfy it (`witness quorum`).
 */
import { debugStr, equalBytes, fromBase64 } from './bytes.ts';
import { verifyStrict } from './ed25519.ts';
import { decodeEntry, type DecodedEntry } from './entry.ts';
import { leafHash } from './hash.ts';
import { Fields, parseJson, type JsonValue } from './json.ts';
import { inclusionProblem } from './merkle.ts';
import { descriptorFromFields, descriptorKey, openCheckpoint, sameLog, VerifyError, type LogDescriptor, type NamedPublicKey } from './note.ts';
import { evaluatePolicy, policyLogProblem, quorumError, type Policy, type QuorumVerdict } from './policy.ts';
import { contentHash, sealMessage } from './seal.ts';

/** The receipt format string. */
export const RECEIPT_FORMAT = 'a2a-ledger/receipt/v1';

/** One step of SPEC §5 and how it went. */
export interface StepVerdict {
  /** The SPEC §5 step number (the witness quorum is step 1). */
  step: number;
  /** ledger-core's name: checkpoint signature, witness quorum, inclusion proofs, entries, content hash, seal signature. */
  name: string;
  /** The step ran and passed. */
  ok: boolean;
  /** Why it failed. */
  error?: string;
  /** The log index concerned, when one is. */
  index?: bigint;
  /** False for steps after the failing one (not run). */
  reached: boolean;
}

/** A decoded entry with its log index and leaf hash. */
export interface IndexedEntry extends DecodedEntry {
  index: bigint;
  leafHash: Uint8Array;
}

/** The verdict on one receipt. */
export interface ReceiptVerdict {
  /** Every step passed. */
  ok: boolean;
  /** The receipt's run id. */
  run?: string;
  /** The checkpoint it is proven against (once its signature verified). */
  checkpoint?: { origin: string; size: bigint; root: Uint8Array };
  /** Every step in order; steps after a failure have `reached: false`. Empty when malformed. */
  steps: StepVerdict[];
  /** Under a policy: who cosigned the checkpoint. */
  quorum?: { satisfied: boolean; cosigned: string[]; missing: string[] } & Partial<QuorumVerdict>;
  /** The run's entries that decoded, in seq order. */
  entries?: IndexedEntry[];
  /** The signer's identity entry, if it decoded. */
  signer?: IndexedEntry;
  /** The sealed status, when valid. */
  status?: string;
  /** The failing step (also in `steps`). */
  failed?: StepVerdict;
  /** The failure as `ledger-verify` prints it. */
  message?: string;
  /** The receipt could not be checked at all (not JSON, wrong format, bad trust settings). */
  malformed?: string;
}

/** A receipt entry: log index, bytes, inclusion proof. */
interface ProvenEntry {
  index: bigint;
  entry: Uint8Array;
  proof: Uint8Array[];
}

interface Receipt {
  format: string;
  log: LogDescriptor;
  run: string;
  checkpoint: string;
  entries: ProvenEntry[];
  signer: ProvenEntry;
}

function b64Hashes(v: JsonValue[], what: string): Uint8Array[] {
  return v.map((h) => {
    if (typeof h !== 'string') throw new Error(`${what}: proof hashes are strings`);
    const b = fromBase64(h);
    if (b.length !== 32) throw new Error(`proof hash of ${b.length} bytes, expected 32`);
    return b;
  });
}

function provenEntry(v: JsonValue | undefined, what: string): ProvenEntry {
  const f = Fields.of(v, what);
  const index = f.u64('index');
  const entry = fromBase64(f.string('entry'));
  const proof = b64Hashes(f.array('proof'), what);
  f.done();
  return { index, entry, proof };
}

/** Parses receipt JSON strictly (unknown fields, duplicate keys and non-canonical base64 refused). */
export function parseReceipt(json: string): Receipt {
  const f = Fields.of(parseJson(json), 'receipt');
  const format = f.string('format');
  const log = descriptorFromFields(Fields.of(f.object('log'), 'log'));
  const run = f.string('run');
  const checkpoint = f.string('checkpoint');
  const entries = f.array('entries').map((e, i) => provenEntry(e, `entries[${i}]`));
  const signer = provenEntry(f.value('signer'), 'signer');
  f.done();
  if (format !== RECEIPT_FORMAT) throw new Error(`format ${debugStr(format)}, expected ${debugStr(RECEIPT_FORMAT)}`);
  return { format, log, run, checkpoint, entries, signer };
}

const NAMES: Record<number, string> = {
  1: 'checkpoint signature',
  2: 'inclusion proofs',
  3: 'entries',
  4: 'content hash',
  5: 'seal signature',
};

class StepFailure {
  constructor(
    readonly step: number,
    readonly name: string,
    readonly reason: string,
    readonly index?: bigint,
    /** The whole message when it is not `receipt step …` (a wrong log). */
    readonly message?: string,
  ) {}
}

function fail(step: number, index: bigint | undefined, reason: string): StepFailure {
  return new StepFailure(step, NAMES[step]!, reason, index);
}

/** Seconds since the Unix epoch by this machine's clock. */
export function unixNow(): bigint {
  return BigInt(Math.floor(Date.now() / 1000));
}

/** Verifies receipt JSON against the trusted `log` (and `policy`, at `now` seconds). */
export async function verifyReceipt(
  receiptJson: string,
  log: LogDescriptor,
  opts: { policy?: Policy; now?: bigint } = {},
): Promise<ReceiptVerdict> {
  let key: NamedPublicKey;
  try {
    key = descriptorKey(log);
  } catch (e) {
    return { ok: false, steps: [], malformed: `trusted log descriptor: ${(e as Error).message}` };
  }
  if (opts.policy !== undefined) {
    const p = policyLogProblem(opts.policy, key);
    if (p !== undefined) return { ok: false, steps: [], malformed: p };
  }
  let r: Receipt;
  try {
    r = parseReceipt(receiptJson);
  } catch (e) {
    return { ok: false, steps: [], malformed: `malformed receipt: ${(e as Error).message}` };
  }
  const order: [number, string][] = [[1, 'checkpoint signature']];
  if (opts.policy !== undefined) order.push([1, 'witness quorum']);
  order.push([2, 'inclusion proofs'], [3, 'entries'], [4, 'content hash'], [5, 'seal signature']);
  const verdict: ReceiptVerdict = { ok: false, run: r.run, steps: [] };
  let done = 0;
  const pass = (): void => {
    const [step, name] = order[done]!;
    verdict.steps.push({ step, name, ok: true, reached: true });
    done++;
  };
  try {
    check(r, log, key, opts, verdict, pass);
    verdict.ok = true;
  } catch (e) {
    if (!(e instanceof StepFailure)) throw e;
    const failed: StepVerdict = { step: e.step, name: e.name, ok: false, error: e.reason, reached: true };
    if (e.index !== undefined) failed.index = e.index;
    verdict.steps.push(failed);
    verdict.failed = failed;
    done++;
    verdict.message =
      e.message ?? `receipt step ${e.step} (${e.name}) failed${e.index !== undefined ? ` at index ${e.index}` : ''}: ${e.reason}`;
  }
  for (; done < order.length; done++) {
    const [step, name] = order[done]!;
    verdict.steps.push({ step, name, ok: false, reached: false });
  }
  return verdict;
}

function check(
  r: Receipt,
  log: LogDescriptor,
  key: NamedPublicKey,
  opts: { policy?: Policy; now?: bigint },
  verdict: ReceiptVerdict,
  pass: () => void,
): void {
  const h = log.hash;
  // Step 1: the receipt names the trusted log; its checkpoint is signed by the log key.
  if (!sameLog(r.log, log)) {
    const message = `receipt is for log ${r.log.origin} (${r.log.hash}, ${r.log.vkey}), expected ${log.origin} (${log.hash}, ${log.vkey})`;
    throw new StepFailure(1, NAMES[1]!, message, undefined, message);
  }
  let cp;
  try {
    cp = openCheckpoint(r.checkpoint, key).checkpoint;
  } catch (e) {
    if (e instanceof VerifyError && e.kind === 'WrongLog') throw new StepFailure(1, NAMES[1]!, e.message, undefined, e.message);
    throw fail(1, undefined, (e as Error).message);
  }
  verdict.checkpoint = { origin: cp.origin, size: cp.size, root: cp.root };
  pass();
  if (opts.policy !== undefined) {
    let quorum: QuorumVerdict;
    try {
      quorum = evaluatePolicy(opts.policy, r.checkpoint, key, opts.now ?? unixNow()).quorum;
    } catch (e) {
      throw new StepFailure(1, 'witness quorum', (e as Error).message);
    }
    verdict.quorum = quorum;
    if (!quorum.satisfied) throw new StepFailure(1, 'witness quorum', quorumError(quorum));
    pass();
  }

  // Step 2: every entry and the signer entry are in the checkpoint's tree.
  if (r.entries.length === 0) throw fail(3, undefined, 'the receipt has no entries');
  const leaves: Uint8Array[] = [];
  for (const pe of [...r.entries, r.signer]) {
    const leaf = leafHash(h, pe.entry);
    const problem = inclusionProblem(h, pe.index, cp.size, leaf, pe.proof, cp.root);
    if (problem !== undefined) {
      throw fail(2, pe.index, `inclusion proof for index ${pe.index} in tree size ${cp.size} does not verify: ${problem}`);
    }
    leaves.push(leaf);
  }
  pass();

  // Step 3: the entries decode, share the run, have seq 0..=k in increasing indices, end in a seal.
  const k = r.entries.length - 1;
  const decoded: IndexedEntry[] = [];
  verdict.entries = decoded;
  let prev: bigint | undefined;
  for (let seq = 0; seq <= k; seq++) {
    const pe = r.entries[seq]!;
    let e: DecodedEntry;
    try {
      e = decodeEntry(pe.entry);
    } catch (err) {
      throw fail(3, pe.index, (err as Error).message);
    }
    decoded.push({ ...e, index: pe.index, leafHash: leaves[seq]! });
    if (e.run !== r.run) {
      throw fail(3, pe.index, `entry of run ${debugStr(e.run)}, receipt is for ${debugStr(r.run)}`);
    }
    if (e.seq !== BigInt(seq)) throw fail(3, pe.index, `seq ${e.seq} where ${seq} belongs`);
    if (prev !== undefined && pe.index <= prev) throw fail(3, pe.index, 'indices do not increase with seq');
    prev = pe.index;
  }
  const sealIndex = r.entries[k]!.index;
  const seal = decoded[k]!;
  if (seal.kind !== 'receipt.sealed') throw fail(3, sealIndex, `the last entry is ${seal.kind}, not receipt.sealed`);
  pass();

  // Step 4: the seal's count and content hash cover exactly the entries before it.
  const events = seal.attrs.events as bigint;
  const claimed = seal.attrs.content_hash as Uint8Array;
  if (events !== BigInt(k)) throw fail(4, sealIndex, `seal counts ${events} events, the receipt holds ${k}`);
  if (!equalBytes(contentHash(leaves.slice(0, k)), claimed)) {
    throw fail(4, sealIndex, 'content hash does not match the entries before the seal');
  }
  pass();

  // Step 5: the signer entry is the actor's key, registered before the seal, and it signed.
  let signer: DecodedEntry;
  try {
    signer = decodeEntry(r.signer.entry);
  } catch (err) {
    throw fail(5, r.signer.index, (err as Error).message);
  }
  verdict.signer = { ...signer, index: r.signer.index, leafHash: leaves[k + 1]! };
  if (signer.kind !== 'identity.registered') {
    throw fail(5, r.signer.index, `signer entry is ${signer.kind}, not identity.registered`);
  }
  if (signer.run !== `id/${seal.actor}`) {
    throw fail(
      5,
      r.signer.index,
      `signer entry is in run ${debugStr(signer.run)}, the seal's actor needs ${debugStr(`id/${seal.actor}`)}`,
    );
  }
  if (r.signer.index >= sealIndex) {
    throw fail(5, r.signer.index, `identity registered at index ${r.signer.index}, not before the seal at ${sealIndex}`);
  }
  const status = seal.attrs.status as string;
  const msg = sealMessage(r.run, events, claimed, status);
  if (!verifyStrict(signer.attrs.public_key as Uint8Array, msg, seal.attrs.sig as Uint8Array)) {
    throw fail(5, sealIndex, `seal signature does not verify under the key of ${debugStr(seal.actor)}`);
  }
  verdict.status = status;
  pass();
}

