/**
 * What the auditor pinned, kept in this browser's local storage and never taken from a server:
 * log descriptors and trust policies (entered or dropped once), and per log the last checkpoint
 * this browser verified (the fork alarm compares the next one with it).
 */
import { parseDescriptor, parsePolicy, type LogDescriptor, type Policy } from '../verify/index.ts';

const DESCRIPTORS = 'a2a-ledger.descriptors';
const POLICIES = 'a2a-ledger.policies';
const SEEN = 'a2a-ledger.seen.';
const LEDGER_URL = 'a2a-ledger.url';

function read<T>(key: string, fallback: T): T {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : (JSON.parse(v) as T);
  } catch {
    return fallback;
  }
}

function write(key: string, v: unknown): void {
  localStorage.setItem(key, JSON.stringify(v));
}

/** The pinned descriptors, as the JSON text each was pinned from. */
export function descriptorTexts(): string[] {
  return read<string[]>(DESCRIPTORS, []);
}

/** The pinned descriptors, parsed (a stored one that no longer parses is skipped). */
export function descriptors(): LogDescriptor[] {
  const out: LogDescriptor[] = [];
  for (const t of descriptorTexts()) {
    try {
      out.push(parseDescriptor(t));
    } catch {
      /* dropped below when the user looks */
    }
  }
  return out;
}

/** Pins a descriptor (throws saying what is wrong with it). Replaces one of the same origin. */
export function pinDescriptor(text: string): LogDescriptor {
  const d = parseDescriptor(text.trim());
  const kept = descriptorTexts().filter((t) => {
    try {
      return parseDescriptor(t).origin !== d.origin;
    } catch {
      return false;
    }
  });
  write(DESCRIPTORS, [...kept, JSON.stringify(d)]);
  return d;
}

/** Drops the descriptor of `origin`. */
export function dropDescriptor(origin: string): void {
  write(
    DESCRIPTORS,
    descriptorTexts().filter((t) => {
      try {
        return parseDescriptor(t).origin !== origin;
      } catch {
        return false;
      }
    }),
  );
}

/** The pinned descriptor for `origin`. */
export function descriptorFor(origin: string): LogDescriptor | undefined {
  return descriptors().find((d) => d.origin === origin);
}

/** Pinned trust policies: `{name, text}`. */
export function policyTexts(): { name: string; text: string }[] {
  return read<{ name: string; text: string }[]>(POLICIES, []);
}

/** Pins a policy under `name` (throws `PolicyError` naming the line). */
export function pinPolicy(name: string, text: string): Policy {
  const p = parsePolicy(text);
  write(POLICIES, [...policyTexts().filter((x) => x.name !== name), { name, text }]);
  return p;
}

/** Drops the policy `name`. */
export function dropPolicy(name: string): void {
  write(POLICIES, policyTexts().filter((x) => x.name !== name));
}

/** The pinned policy whose `log` lines name `origin` (or that names no log), parsed. */
export function policyFor(origin: string): { name: string; policy: Policy } | undefined {
  for (const { name, text } of policyTexts()) {
    try {
      const policy = parsePolicy(text);
      const logs = policy.logs.map((l) => l.key.name);
      if (logs.length === 0 || logs.includes(origin)) return { name, policy };
    } catch {
      /* an unparsable stored policy is shown in the settings */
    }
  }
  return undefined;
}

/** The last checkpoint note this browser verified for `origin`. */
export function lastSeen(origin: string): string | undefined {
  return read<string | undefined>(SEEN + origin, undefined);
}

/** Remembers a verified checkpoint note for `origin`. */
export function rememberSeen(origin: string, note: string): void {
  write(SEEN + origin, note);
}

/** The ledger URL typed when the page runs from disk. */
export function ledgerUrl(): string {
  return read<string>(LEDGER_URL, '');
}

/** Remembers the ledger URL. */
export function rememberLedgerUrl(url: string): void {
  write(LEDGER_URL, url);
}
