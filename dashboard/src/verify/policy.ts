/**
 * Witness cosignatures (C2SP `tlog-cosignature`, Ed25519 `cosignature/v1`) and trust policies
 * (C2SP `tlog-policy`), SPEC §8, read and evaluated as ledger-core's `witness.rs` and
 * `policy.rs` do.
 */
import { concatBytes, debugStr, equalBytes, toHex, utf8, utf8Bytes } from './bytes.ts';
import { verifyStrict } from './ed25519.ts';
import {
  ALG_COSIGNATURE_V1,
  ALG_ED25519,
  parseCheckpointText,
  parseNote,
  parseVerifierKey,
  verifyNote,
  VerifyError,
  type Checkpoint,
  type NamedPublicKey,
  type Note,
  type NoteSignature,
} from './note.ts';

/** The largest policy file, in bytes. */
export const MAX_POLICY_BYTES = 64 * 1024;
/** How far after the verifier's clock a cosignature timestamp may lie, in seconds. */
export const MAX_CLOCK_SKEW_SECS = 600n;
/** The largest cosignature timestamp (2^63 - 1). */
export const MAX_TIMESTAMP = (1n << 63n) - 1n;

/** A policy line that breaks a rule: `line` is 1-based, 0 for the file as a whole. */
export class PolicyError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`trust policy, line ${line}: ${reason}`);
    this.name = 'PolicyError';
  }
}

/** A member of a group: a witness or an earlier group, by position. */
export type Member = { witness: number } | { group: number };

/** A `group` line. */
export interface Group {
  name: string;
  threshold: number;
  members: Member[];
}

/** A `witness` line. */
export interface PolicyWitness {
  /** Its name within the policy. */
  name: string;
  /** Its `cosignature/v1` key (type 0x04). */
  key: NamedPublicKey;
  url?: string;
}

/** A `log` line. */
export interface PolicyLog {
  key: NamedPublicKey;
  url?: string;
}

/** A parsed, valid C2SP trust policy. Made by `parsePolicy` only. */
export class Policy {
  constructor(
    readonly logs: PolicyLog[],
    readonly witnesses: PolicyWitness[],
    readonly groups: Group[],
    /** `'none'` or the member the quorum names. */
    readonly quorum: 'none' | Member,
  ) {}

  memberName(m: Member): string {
    return 'witness' in m ? this.witnesses[m.witness]!.name : this.groups[m.group]!.name;
  }

  /** The canonical form: logs, witnesses, groups, quorum; single spaces, no comments. */
  toString(): string {
    const url = (u?: string): string => (u === undefined ? '' : ` ${u}`);
    let s = '';
    for (const l of this.logs) s += `log ${l.key.text}${url(l.url)}\n`;
    for (const w of this.witnesses) s += `witness ${w.name} ${w.key.text}${url(w.url)}\n`;
    for (const g of this.groups) s += `group ${g.name} ${g.threshold}${g.members.map((m) => ` ${this.memberName(m)}`).join('')}\n`;
    s += `quorum ${this.quorum === 'none' ? 'none' : this.memberName(this.quorum)}\n`;
    return s;
  }
}

function trimWs(b: Uint8Array): Uint8Array {
  let s = 0;
  let e = b.length;
  while (s < e && (b[s] === 0x20 || b[s] === 0x09)) s++;
  while (e > s && (b[e - 1] === 0x20 || b[e - 1] === 0x09)) e--;
  return b.subarray(s, e);
}

/** Parses a policy file (its UTF-8 text). Throws `PolicyError` naming the line. */
export function parsePolicy(text: string): Policy {
  return parsePolicyBytes(utf8Bytes(text));
}

/** Parses a policy file given as octets. Throws `PolicyError` naming the line. */
export function parsePolicyBytes(input: Uint8Array): Policy {
  if (input.length > MAX_POLICY_BYTES) throw new PolicyError(0, `${input.length} bytes, over the ${MAX_POLICY_BYTES}-byte limit`);
  const logs: { log: PolicyLog; line: number }[] = [];
  const witnesses: { w: PolicyWitness; line: number }[] = [];
  const groups: Group[] = [];
  const names = new Map<string, { member: Member; line: number }>();
  const memberOf = new Map<string, { group: string; line: number }>();
  let quorum: { q: 'none' | Member; line: number } | undefined;
  // A final line without its newline is accepted, as line-reading tools do.
  const body = input.length > 0 && input[input.length - 1] === 0x0a ? input.subarray(0, input.length - 1) : input;
  const rawLines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= body.length; i++) {
    if (i === body.length || body[i] === 0x0a) {
      rawLines.push(body.subarray(start, i));
      start = i + 1;
    }
  }
  const define = (name: string, n: number): void => {
    if (name === 'none') throw new PolicyError(n, 'the name none is reserved');
    const d = names.get(name);
    if (d !== undefined) throw new PolicyError(n, `duplicate name ${name}: already defined on line ${d.line}`);
  };
  const refer = (name: string, n: number, within: string): Member => {
    if (name === 'none') throw new PolicyError(n, `${within}: none cannot be a group member`);
    const d = names.get(name);
    if (d === undefined) throw new PolicyError(n, `${within}: ${name} is not a witness or group defined on an earlier line`);
    return d.member;
  };
  rawLines.forEach((raw, i) => {
    const n = i + 1;
    for (const b of raw) {
      if (!(b === 0x09 || (b >= 0x20 && b <= 0x7e) || b >= 0x80)) {
        throw new PolicyError(
          n,
          `byte 0x${b.toString(16).padStart(2, '0')} is not allowed (only tab, newline, printable ASCII and non-ASCII octets)`,
        );
      }
    }
    const trimmed = trimWs(raw);
    if (trimmed.length === 0 || trimmed[0] === 0x23) return;
    const line = utf8(trimmed);
    if (line === undefined) throw new PolicyError(n, 'non-ASCII octets outside a comment must be UTF-8 here');
    const fields = line.split(/[ \t]/).filter((f) => f !== '');
    const keyword = fields[0]!;
    const args = fields.slice(1);
    switch (keyword) {
      case 'log': {
        if (args.length < 1 || args.length > 2) throw new PolicyError(n, `log takes <vkey> [<url>], found ${args.length} fields`);
        let key: NamedPublicKey;
        try {
          key = parseVerifierKey(args[0]!, ALG_ED25519);
        } catch (e) {
          throw new PolicyError(n, `log key: ${(e as Error).message}`);
        }
        const dup = logs.find((l) => equalBytes(l.log.key.publicKey, key.publicKey));
        if (dup !== undefined) throw new PolicyError(n, `duplicate log: the same public key as line ${dup.line}`);
        logs.push({ log: args[1] === undefined ? { key } : { key, url: args[1] }, line: n });
        break;
      }
      case 'witness': {
        if (args.length < 2 || args.length > 3) {
          throw new PolicyError(n, `witness takes <name> <vkey> [<url>], found ${args.length} fields`);
        }
        const name = args[0]!;
        define(name, n);
        let key: NamedPublicKey;
        try {
          key = parseVerifierKey(args[1]!, ALG_COSIGNATURE_V1);
        } catch (e) {
          throw new PolicyError(n, `witness ${name}: ${(e as Error).message}`);
        }
        const dup = witnesses.find((w) => equalBytes(w.w.key.publicKey, key.publicKey));
        if (dup !== undefined) {
          throw new PolicyError(n, `duplicate witness key: ${name} has the same public key as ${dup.w.name} on line ${dup.line}`);
        }
        names.set(name, { member: { witness: witnesses.length }, line: n });
        witnesses.push({ w: args[2] === undefined ? { name, key } : { name, key, url: args[2] }, line: n });
        break;
      }
      case 'group': {
        if (args.length < 2) throw new PolicyError(n, 'group takes <name> <k|any|all> <member>…');
        const [name, k] = [args[0]!, args[1]!];
        const memberNames = args.slice(2);
        if (memberNames.length === 0) throw new PolicyError(n, `group ${name} has no members (at least one is required)`);
        define(name, n);
        const count = memberNames.length;
        let threshold: number;
        if (k === 'all') threshold = count;
        else if (k === 'any') threshold = 1;
        else if (/^[0-9]+$/.test(k)) {
          const t = BigInt(k);
          if (t < 1n || t > BigInt(count)) throw new PolicyError(n, `group ${name}: threshold ${k} is not between 1 and its ${count} members`);
          threshold = Number(t);
        } else {
          throw new PolicyError(n, `group ${name}: threshold ${debugStr(k)} is not a decimal number, any or all`);
        }
        const members: Member[] = [];
        for (const m of memberNames) {
          const member = refer(m, n, `group ${name}`);
          const prior = memberOf.get(m);
          if (prior !== undefined) {
            throw new PolicyError(n, `${m} is already a member of group ${prior.group} (line ${prior.line}); a name may be a member only once`);
          }
          memberOf.set(m, { group: name, line: n });
          members.push(member);
        }
        names.set(name, { member: { group: groups.length }, line: n });
        groups.push({ name, threshold, members });
        break;
      }
      case 'quorum': {
        if (args.length !== 1) throw new PolicyError(n, `quorum takes one name, found ${args.length} fields`);
        if (quorum !== undefined) throw new PolicyError(n, `a second quorum line (the first is line ${quorum.line})`);
        const name = args[0]!;
        quorum = { q: name === 'none' ? 'none' : refer(name, n, 'quorum'), line: n };
        break;
      }
      default:
        throw new PolicyError(n, `unknown keyword ${debugStr(keyword)}; expected log, witness, group or quorum`);
    }
  });
  if (quorum === undefined) {
    throw new PolicyError(0, 'no quorum line (exactly one is required; `quorum none` requires no witness)');
  }
  return new Policy(
    logs.map((l) => l.log),
    witnesses.map((w) => w.w),
    groups,
    quorum.q,
  );
}

// ---- cosignatures --------------------------------------------------------------------------

/** The message a witness signs: `cosignature/v1\ntime <t>\n` then the note text. */
export function cosignedMessage(text: string, timestamp: bigint): Uint8Array {
  return concatBytes(utf8Bytes(`cosignature/v1\ntime ${timestamp}\n`), utf8Bytes(text));
}

/** Verifies a witness's line; returns its timestamp, or throws naming why not. */
export function verifyCosignature(key: NamedPublicKey, text: string, sig: NoteSignature): bigint {
  if (sig.name !== key.name || !equalBytes(sig.keyId, key.id)) {
    throw new VerifyError(
      'MalformedCosignature',
      `malformed cosignature: line of ${sig.name}+${toHex(sig.keyId)} is not from witness key ${key.name}+${toHex(key.id)}`,
    );
  }
  if (sig.signature.length !== 72) {
    throw new VerifyError(
      'MalformedCosignature',
      `malformed cosignature: line of ${sig.name}: ${sig.signature.length} bytes after the key id, expected 72`,
    );
  }
  let timestamp = 0n;
  for (let i = 0; i < 8; i++) timestamp = (timestamp << 8n) | BigInt(sig.signature[i]!);
  if (timestamp > MAX_TIMESTAMP) {
    throw new VerifyError('MalformedCosignature', `malformed cosignature: line of ${sig.name}: timestamp ${timestamp} is over 2^63 - 1`);
  }
  if (!verifyStrict(key.publicKey, cosignedMessage(text, timestamp), sig.signature.subarray(8))) {
    throw new VerifyError('BadSignature', `signature by ${key.name} does not verify`);
  }
  return timestamp;
}

/** How one witness of a policy stands on a checkpoint. */
export interface WitnessVerdict {
  /** Its policy name. */
  name: string;
  /** cosigned; none (no line); bad (a line that does not verify); malformed; future (timestamp after now + 600 s). */
  state: 'cosigned' | 'none' | 'bad' | 'malformed' | 'future';
  timestamp?: bigint;
  /** Why a line is malformed. */
  detail?: string;
}

/** The outcome of a policy on one checkpoint. */
export interface QuorumVerdict {
  satisfied: boolean;
  /** `none`, a witness or a group name. */
  quorum: string;
  /** Policy names of the witnesses whose cosignatures verified. */
  cosigned: string[];
  /** The others, each as `<name> (<why>)`, ledger-core's text. */
  missing: string[];
  /** Every witness of the policy, in policy order. */
  witnesses: WitnessVerdict[];
}

function why(w: WitnessVerdict): string {
  switch (w.state) {
    case 'cosigned':
      return `cosigned at ${w.timestamp}`;
    case 'none':
      return 'no cosignature';
    case 'bad':
      return 'bad signature';
    case 'malformed':
      return w.detail ?? 'malformed cosignature';
    case 'future':
      return `timestamp ${w.timestamp} is in the future`;
  }
}

/** Checks that the policy agrees with the trusted log key (`PolicyLogMismatch` otherwise). */
export function policyLogProblem(policy: Policy, key: NamedPublicKey): string | undefined {
  if (policy.logs.length === 0 || policy.logs.some((l) => l.key.text === key.text || (l.key.name === key.name && equalBytes(l.key.publicKey, key.publicKey)))) {
    return undefined;
  }
  return `the trust policy's log lines name [${policy.logs.map((l) => l.key.text).join(', ')}], not the trusted log key ${key.text}`;
}

/**
 * Evaluates the signed checkpoint `noteText` under `policy` at `now` (seconds since the epoch).
 * The log signature must verify (under the policy's `log` keys of the origin, or `log` when it has
 * none): its failure throws. An unmet quorum is a verdict, not an error.
 */
export function evaluatePolicy(
  policy: Policy,
  noteText: string,
  log: NamedPublicKey | undefined,
  now: bigint,
): { checkpoint: Checkpoint; quorum: QuorumVerdict } {
  const note = parseNote(noteText);
  const checkpoint = parseCheckpointText(note.text);
  verifyPolicyLog(policy, note, checkpoint, log);
  const limit = now + MAX_CLOCK_SKEW_SECS;
  const witnesses: WitnessVerdict[] = policy.witnesses.map((w) => {
    let v: WitnessVerdict = { name: w.name, state: 'none' };
    for (const sig of note.signatures) {
      if (sig.name !== w.key.name || !equalBytes(sig.keyId, w.key.id)) continue;
      try {
        const timestamp = verifyCosignature(w.key, note.text, sig);
        v = timestamp <= limit ? { name: w.name, state: 'cosigned', timestamp } : { name: w.name, state: 'future', timestamp };
      } catch (e) {
        v =
          e instanceof VerifyError && e.kind === 'BadSignature'
            ? { name: w.name, state: 'bad' }
            : { name: w.name, state: 'malformed', detail: (e as Error).message };
      }
      if (v.state === 'cosigned') break;
    }
    return v;
  });
  const groupsOk: boolean[] = [];
  const witnessed = (m: Member): boolean => ('witness' in m ? witnesses[m.witness]!.state === 'cosigned' : groupsOk[m.group]!);
  for (const g of policy.groups) groupsOk.push(g.members.filter(witnessed).length >= g.threshold);
  const satisfied = policy.quorum === 'none' ? true : witnessed(policy.quorum);
  return {
    checkpoint,
    quorum: {
      satisfied,
      quorum: policy.quorum === 'none' ? 'none' : policy.memberName(policy.quorum),
      cosigned: witnesses.filter((w) => w.state === 'cosigned').map((w) => w.name),
      missing: witnesses.filter((w) => w.state !== 'cosigned').map((w) => `${w.name} (${why(w)})`),
      witnesses,
    },
  };
}

/** ledger-core's text for an unmet quorum. */
export function quorumError(q: QuorumVerdict): string {
  return `witness quorum not met: cosigned by [${q.cosigned.join(', ')}], not by [${q.missing.join(', ')}]`;
}

function verifyPolicyLog(policy: Policy, note: Note, checkpoint: Checkpoint, given: NamedPublicKey | undefined): void {
  let candidates: NamedPublicKey[];
  if (policy.logs.length === 0) {
    if (given === undefined) throw new PolicyError(0, 'the policy lists no log and no log key was given');
    candidates = [given];
  } else {
    candidates = policy.logs.map((l) => l.key);
  }
  const named = candidates.filter((k) => k.name === checkpoint.origin);
  if (named.length === 0) {
    throw new VerifyError('WrongLog', `receipt is for log ${checkpoint.origin}, expected ${candidates.map((k) => k.name).join(' or ')}`);
  }
  // Several keys may share an origin (a rotated key): one verifying is enough; a line that fails
  // to verify is the error to report, before a missing one.
  let first: Error | undefined;
  for (const key of named) {
    try {
      verifyNote(note, key);
      return;
    } catch (e) {
      if (e instanceof VerifyError && e.kind === 'BadSignature') throw e;
      first ??= e as Error;
    }
  }
  throw first!;
}
