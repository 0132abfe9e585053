/**
 * testdata/verify/cases.json, the golden cases of `ledger-verify`, run through the verifier's API
 * the way ledger-verify runs them: its arguments read as ledger-verify reads them (`--log`, and
 * `--policy` parsed before anything is verified), and the outcome reduced to what each case
 * records: the exit code, the failing step and the message.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { PolicyError, type LogDescriptor, type Policy } from '../src/verify/index.ts';
import { parsePolicyBytes } from '../src/verify/policy.ts';
import { descriptor, REPO, text } from './helpers.ts';

/** Where the cases' files are. */
export const CASE_DIR = 'testdata/verify';

/**
 * One case: ledger-verify's arguments (files relative to CASE_DIR), its exit code (0 valid, 1
 * invalid, 2 could not check), a part of its message, and the failing step (see the file's
 * `about`).
 */
export interface Case {
  name: string;
  args: string[];
  exit: number;
  message: string;
  step: number | string | null;
}

export const CASES: Case[] = (JSON.parse(text(`${CASE_DIR}/cases.json`)) as { cases: Case[] }).cases;

/** The arguments of a `receipt` or `pack` case. */
export interface CaseArgs {
  /** The receipt file or pack directory. */
  input: string;
  /** The `--log` file. */
  log: string;
  /** The `--policy` file, if one is given. */
  policy?: string;
}

/** Reads `receipt FILE --log L [--policy P]` and `pack DIR --log L [--policy P] [-q]`. */
export function caseArgs(c: Case): CaseArgs {
  const [, input, ...rest] = c.args;
  assert.ok(input !== undefined, `${c.name}: no input`);
  const logs: string[] = [];
  let policy: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '-q') continue;
    const value = rest[++i];
    assert.ok(value !== undefined, `${c.name}: ${a} without a value`);
    if (a === '--log') logs.push(value);
    else if (a === '--policy') {
      assert.equal(policy, undefined, `${c.name}: two --policy arguments`);
      policy = value;
    } else assert.fail(`${c.name}: argument ${a} is not understood here`);
  }
  // The API takes one trusted descriptor; several --log files (key rotation) would need a loop
  // over them as ledger-verify has.
  assert.equal(logs.length, 1, `${c.name}: one --log file`);
  return policy === undefined ? { input, log: logs[0]! } : { input, log: logs[0]!, policy };
}

/** What ledger-verify says of a file it cannot read: `<path>: No such file or directory`. */
function missing(path: string, e: unknown): string {
  assert.equal((e as NodeJS.ErrnoException).code, 'ENOENT', String(e));
  return `${path}: No such file or directory`;
}

/**
 * What loading a case's trust settings gives: the descriptor and the parsed policy, or why
 * ledger-verify would stop before verifying anything (exit 2). A policy is read as octets and
 * parsed with `parsePolicyBytes`, as ledger-verify reads it.
 */
export function loadTrust(a: CaseArgs): { ok: true; log: LogDescriptor; policy?: Policy } | { ok: false; step: string | null; message: string } {
  const log = descriptor(`${CASE_DIR}/${a.log}`);
  if (a.policy === undefined) return { ok: true, log };
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(join(REPO, CASE_DIR, a.policy)));
  } catch (e) {
    return { ok: false, step: null, message: missing(a.policy, e) };
  }
  try {
    return { ok: true, log, policy: parsePolicyBytes(bytes) };
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    return { ok: false, step: `policy line ${e.line}`, message: e.message };
  }
}

/** Reads a case's input file, or gives ledger-verify's message for a missing one. */
export function readInput(a: CaseArgs): { ok: true; text: string } | { ok: false; message: string } {
  try {
    return { ok: true, text: readFileSync(join(REPO, CASE_DIR, a.input), 'utf8') };
  } catch (e) {
    return { ok: false, message: missing(a.input, e) };
  }
}

/**
 * The step a malformed verdict (exit 2) stands for: a policy whose `log` lines name another
 * log is `policy log`; anything else that could not be checked names no step.
 */
export function malformedStep(malformed: string): string | null {
  return malformed.startsWith("the trust policy's log lines name [") ? 'policy log' : null;
}

/** The witnesses ledger-verify's message says did cosign (`cosigned by [w1, w2]`), if it says. */
export function cosignedIn(message: string): string[] | undefined {
  const m = /cosigned by \[([^\]]*)\]/.exec(message);
  if (m === null) return undefined;
  return m[1] === '' ? [] : m[1]!.split(', ');
}

/**
 * Asserts that an outcome is the case's: its exit code and step, and its message holding the
 * case's (ledger-verify's) text.
 */
export function assertOutcome(c: Case, got: { exit: number; step: number | string | null; message: string }): void {
  assert.equal(got.exit, c.exit, `${c.name}: exit ${got.exit}: ${got.message}`);
  assert.equal(got.step, c.step, `${c.name}: step: ${got.message}`);
  assert.ok(got.message.includes(c.message), `${c.name}: ${JSON.stringify(got.message)} should contain ${JSON.stringify(c.message)}`);
}

/**
 * The clock a case is verified at: ledger-verify's is the system clock, and so is this. The
 * golden cosignatures are dated 2025-12-01 and the one from the future 2^62 s after the epoch,
 * so every clock between gives the same verdicts.
 */
export function caseClock(): bigint {
  const now = BigInt(Math.floor(Date.now() / 1000));
  assert.ok(now > 1_764_547_200n && now < 1n << 62n, `the system clock (${now}) is outside the cases' range`);
  return now;
}
