/**
 * The in-browser verifier of a2a-ledger: everything the dashboard shows as verified is checked
 * here, in the browser, against a log descriptor (and optionally a trust policy) that the auditor
 * pinned, never against what the serving ledger says. It follows SPEC §2–§6 and §8 and
 * ledger-core's verdicts: the same verdict, failing step and index for every receipt and pack.
 *
 * Libraries: `@noble/hashes` (BLAKE3, SHA-256, SHA-512), `@noble/curves` (Ed25519 points; the
 * verification equation is ours, strict as SPEC §4 requires), `cborg` (CBOR values, after our own
 * byte-level check of deterministic encoding). Numbers that can pass 2^53 are `bigint`.
 *
 * Module map: `bytes` (hex, strict base64, UTF-8), `json` (strict JSON), `hash` (tree hash),
 * `ed25519` (strict signatures), `entry` (SPEC §2), `merkle` (RFC 9162 proofs), `note` (keys,
 * signed notes, checkpoints, descriptors), `policy` (cosignatures and trust policies), `seal`
 * (SPEC §3), `receipt` (SPEC §5), `checkpoint` (checkpoints alone and their consistency),
 * `tar` and `pack` (SPEC §6).
 */

/** A log's tree hash: `blake3` (default) or `sha256`. */
export type { TreeHashName } from './hash.ts';
/**
 * What the auditor trusts of a log (SPEC §4): `{origin, hash, vkey}`. Pinned by the auditor,
 * never taken from the server.
 */
export type { LogDescriptor, Checkpoint } from './note.ts';
/**
 * `StepVerdict`: one SPEC §5 step (`step` 1–5, `name` as ledger-core names it, `ok`, `error`,
 * the log `index` concerned, `reached`). `ReceiptVerdict`: the verdict on a receipt, with every
 * step, the checkpoint, the decoded entries (`IndexedEntry`: a `DecodedEntry` with its log index
 * and leaf hash), the signer, and under a policy the quorum; `malformed` when it could not be
 * checked at all.
 */
export type { StepVerdict, ReceiptVerdict, IndexedEntry } from './receipt.ts';
/**
 * `DecodedEntry`: a valid SPEC §2 entry (integers as bigint, byte strings as Uint8Array, its
 * bytes as stored). `EntryKind`: the event kinds. `AttrValue`: an attr's value.
 * `EntryErrorCode`: what `decodeEntry` refuses (ledger-core's variant names).
 */
export type { DecodedEntry, EntryKind, AttrValue, EntryErrorCode } from './entry.ts';
/**
 * `QuorumVerdict`: how a checkpoint stands under a trust policy (who cosigned, who did not and
 * why). `WitnessVerdict`: one witness of it. `Group`, `Member`, `PolicyWitness`, `PolicyLog`:
 * the parts of a `Policy`.
 */
export type { QuorumVerdict, WitnessVerdict, Group, Member, PolicyWitness, PolicyLog } from './policy.ts';
/** `CheckpointVerdict`: a signed checkpoint under the trusted log. `ConsistencyVerdict`: two checkpoints. */
export type { CheckpointVerdict, ConsistencyVerdict } from './checkpoint.ts';
/** `PackVerdict`: the verdict on a pack; `PackReport`: what a valid pack proves; `ErasedPayload`: one erasure in it. */
export type { PackVerdict, PackReport, ErasedPayload } from './pack.ts';

/** A parsed C2SP trust policy (SPEC §8); `toString()` gives its canonical form. */
export { Policy, PolicyError } from './policy.ts';
/** Why an entry was refused: `code` (ledger-core's variant), `offset`, `key`. */
export { EntryError } from './entry.ts';

/** Parses and checks a log descriptor's JSON; throws an `Error` saying what is wrong. */
export { parseDescriptor } from './note.ts';
/** Parses a trust policy; throws `PolicyError` naming the 1-based line (0: the file as a whole). */
export { parsePolicy } from './policy.ts';
/** Verifies a receipt (SPEC §5, and §8 under a policy; `now` in seconds since the epoch). */
export { verifyReceipt } from './receipt.ts';
/** Verifies a signed checkpoint (and its witnesses under a policy); `verifyConsistency` proves one extends another. */
export { verifyCheckpoint, verifyConsistency } from './checkpoint.ts';
/** Verifies a compliance pack streamed as a tar (SPEC §6), with progress in bytes read. */
export { verifyPack } from './pack.ts';
/** Decodes and checks one entry (SPEC §2); throws `EntryError`. */
export { decodeEntry, namedPayloads, attrsJson } from './entry.ts';
/** Lowercase hex BLAKE3 of bytes (payloads are named by it). */
export { blake3Hex } from './hash.ts';
/** Byte helpers for the UI: lowercase hex, strict padded base64. */
export { toHex, fromHex, fromBase64, toBase64 } from './bytes.ts';
