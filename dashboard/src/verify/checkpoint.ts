/**
 * Checkpoints on their own (the log page of the dashboard): a signed note verified under the
 * trusted log, with its witnesses under a policy, and the consistency of two checkpoints (the
 * fork alarm).
 */
import { toHex } from './bytes.ts';
import { consistencyProblem } from './merkle.ts';
import { descriptorKey, openCheckpoint, parseNote, type Checkpoint, type LogDescriptor, type NamedPublicKey } from './note.ts';
import { evaluatePolicy, policyLogProblem, quorumError, type Policy, type QuorumVerdict } from './policy.ts';
import { unixNow } from './receipt.ts';

/** The verdict on one signed checkpoint. */
export interface CheckpointVerdict {
  /** The log signature verified (and, under a policy, the quorum is met). */
  ok: boolean;
  /** Why not. */
  error?: string;
  /** The checkpoint, once its log signature verified. */
  checkpoint?: Checkpoint;
  /** Every signature line of the note (the log's and witnesses'), not verified: names and key ids. */
  signers: { name: string; keyId: string }[];
  /** Under a policy: who cosigned. */
  quorum?: QuorumVerdict;
}

/** Verifies a signed checkpoint under the trusted log (and policy, at `now` seconds). */
export async function verifyCheckpoint(
  note: string,
  log: LogDescriptor,
  opts: { policy?: Policy; now?: bigint } = {},
): Promise<CheckpointVerdict> {
  const verdict: CheckpointVerdict = { ok: false, signers: [] };
  let key: NamedPublicKey;
  try {
    key = descriptorKey(log);
  } catch (e) {
    verdict.error = (e as Error).message;
    return verdict;
  }
  // A policy naming another log could not check any checkpoint: said before the note is read,
  // as ledger-verify refuses such a policy when it loads it.
  const problem = opts.policy === undefined ? undefined : policyLogProblem(opts.policy, key);
  if (problem !== undefined) {
    verdict.error = problem;
    return verdict;
  }
  try {
    verdict.signers = parseNote(note).signatures.map((s) => ({ name: s.name, keyId: toHex(s.keyId) }));
    verdict.checkpoint = openCheckpoint(note, key).checkpoint;
  } catch (e) {
    verdict.error = (e as Error).message;
    return verdict;
  }
  if (opts.policy !== undefined) {
    try {
      verdict.quorum = evaluatePolicy(opts.policy, note, key, opts.now ?? unixNow()).quorum;
    } catch (e) {
      verdict.error = `step witness quorum failed: ${(e as Error).message}`;
      return verdict;
    }
    if (!verdict.quorum.satisfied) {
      verdict.error = `step witness quorum failed: ${quorumError(verdict.quorum)}`;
      return verdict;
    }
  }
  verdict.ok = true;
  return verdict;
}

/** The outcome of a consistency check between two checkpoints. */
export interface ConsistencyVerdict {
  ok: boolean;
  error?: string;
  /** Both checkpoints verify under the log, yet the newer does not extend the older: a fork (or the tree shrank). */
  fork?: boolean;
  older?: Checkpoint;
  newer?: Checkpoint;
}

/**
 * Checks that checkpoint `older` is a prefix of checkpoint `newer` by the RFC 9162 consistency
 * `proof`, both signed by the trusted log (`ledger-verify consistency`).
 */
export async function verifyConsistency(
  older: string,
  newer: string,
  proof: Uint8Array[],
  log: LogDescriptor,
): Promise<ConsistencyVerdict> {
  let key: NamedPublicKey;
  let a: Checkpoint;
  let b: Checkpoint;
  try {
    key = descriptorKey(log);
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  try {
    a = openCheckpoint(older, key).checkpoint;
  } catch (e) {
    return { ok: false, error: `older checkpoint: ${(e as Error).message}` };
  }
  try {
    b = openCheckpoint(newer, key).checkpoint;
  } catch (e) {
    return { ok: false, error: `newer checkpoint: ${(e as Error).message}`, older: a };
  }
  if (b.size < a.size) {
    return {
      ok: false,
      fork: true,
      older: a,
      newer: b,
      error: `the tree shrank from ${a.size} to ${b.size} entries: the newer checkpoint is not an extension of the older`,
    };
  }
  const problem = consistencyProblem(log.hash, a.size, b.size, a.root, b.root, proof);
  if (problem !== undefined) {
    return {
      ok: false,
      fork: true,
      older: a,
      newer: b,
      error: `FORK: the checkpoints of size ${a.size} and ${b.size} are both signed by the log but not consistent: consistency proof from size ${a.size} to size ${b.size} does not verify: ${problem}`,
    };
  }
  return { ok: true, older: a, newer: b };
}
