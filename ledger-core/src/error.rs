//! The one error type of `ledger-core`.

use std::path::PathBuf;

/// Which step of receipt verification (SPEC §5) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptStep {
    /// Step 1: the checkpoint's log signature and origin.
    Checkpoint = 1,
    /// Step 2: inclusion of every entry and of the signer entry.
    Inclusion = 2,
    /// Step 3: entries decode, share the run, seq `0..k`, last one a seal.
    Entries = 3,
    /// Step 4: the seal's `content_hash` and `events`.
    ContentHash = 4,
    /// Step 5: the signer entry and the seal signature.
    Signature = 5,
    /// Step 1 under a trust policy (SPEC §8): the checkpoint's cosignatures meet the policy's
    /// quorum. Displayed as step 1, named `witness quorum`.
    WitnessQuorum = 6,
}

/// Everything that can go wrong in `ledger-core`.
///
/// Decode failures name the byte offset; verification failures name the SPEC step and the log
/// index; storage failures name what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- entries (SPEC §2) ----
    /// The entry is larger than the 64 KiB limit.
    #[error("entry is {len} bytes, over the {max}-byte limit")]
    EntryTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes end in the middle of a CBOR item.
    #[error("truncated CBOR at byte {offset}")]
    Truncated {
        /// Where the missing item starts.
        offset: usize,
    },
    /// Bytes follow the entry's map.
    #[error("{count} trailing bytes after the entry at byte {offset}")]
    TrailingBytes {
        /// Where the trailing bytes start.
        offset: usize,
        /// How many.
        count: usize,
    },
    /// Valid CBOR, but not in core deterministic encoding.
    #[error("not canonical CBOR at byte {offset}: {what}")]
    NotCanonical {
        /// Where.
        offset: usize,
        /// Which rule: non-shortest integer or length, indefinite length, key order.
        what: &'static str,
    },
    /// A floating-point value (entries use integers only).
    #[error("floating-point value at byte {offset}: entries use integers")]
    Float {
        /// Where.
        offset: usize,
    },
    /// A CBOR tag (entries carry none).
    #[error("CBOR tag at byte {offset}: entries carry no tags")]
    Tag {
        /// Where.
        offset: usize,
    },
    /// A key the format does not define.
    #[error("unknown key {key:?} in {within}")]
    UnknownKey {
        /// The key.
        key: String,
        /// `entry` or the kind whose attrs held it.
        within: String,
    },
    /// A key the format requires is absent.
    #[error("missing key {key:?} in {within}")]
    MissingKey {
        /// The key.
        key: &'static str,
        /// `entry` or the kind whose attrs lack it.
        within: String,
    },
    /// The same key twice in one map.
    #[error("duplicate key {key:?} at byte {offset}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the second one starts.
        offset: usize,
    },
    /// A value of the wrong CBOR type.
    #[error("wrong type for {key:?} at byte {offset}: expected {expected}")]
    WrongType {
        /// The key whose value it is.
        key: String,
        /// What the format wants.
        expected: &'static str,
        /// Where.
        offset: usize,
    },
    /// A value of the right type outside its allowed range or set.
    #[error("bad value for {key:?}: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A `kind` the format does not define.
    #[error("unknown entry kind {0:?}")]
    UnknownKind(String),
    /// An entry format version other than 1.
    #[error("unsupported entry version {0} (this build reads version 1)")]
    UnsupportedVersion(u64),
    /// A run id or identity name that breaks the rules of SPEC §2.
    #[error("bad run id {id:?}: {reason}")]
    BadRunId {
        /// The offending id (truncated for display if long).
        id: String,
        /// Why.
        reason: &'static str,
    },

    // ---- tree and proofs (SPEC §1) ----
    /// A tree-hash name other than `blake3` or `sha256`.
    #[error("unknown tree hash {0:?} (expected \"blake3\" or \"sha256\")")]
    UnknownTreeHash(String),
    /// An index or size beyond the tree.
    #[error("{what} {value} is out of range for tree size {size}")]
    OutOfRange {
        /// What was asked for.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The tree size.
        size: u64,
    },
    /// An inclusion proof that does not lead to the root.
    #[error("inclusion proof for index {index} in tree size {size} does not verify: {reason}")]
    BadInclusionProof {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
        /// Why.
        reason: &'static str,
    },
    /// A consistency proof that does not verify.
    #[error("consistency proof from size {from} to size {to} does not verify: {reason}")]
    BadConsistencyProof {
        /// The old size.
        from: u64,
        /// The new size.
        to: u64,
        /// Why.
        reason: &'static str,
    },

    // ---- notes, keys and checkpoints (SPEC §4) ----
    /// A signed note or checkpoint that cannot be parsed.
    #[error("malformed signed note: {0}")]
    MalformedNote(String),
    /// A verifier key string that cannot be parsed.
    #[error("malformed verifier key: {0}")]
    MalformedKey(String),
    /// A witness cosignature line that cannot be read as `cosignature/v1` (SPEC §8).
    #[error("malformed cosignature: {0}")]
    MalformedCosignature(String),
    /// A trust policy (C2SP `tlog-policy`) that breaks a rule; `line` is 1-based, 0 for the
    /// whole file (a missing `quorum` line, say).
    #[error("trust policy, line {line}: {reason}")]
    MalformedPolicy {
        /// The 1-based line number, or 0 for the file as a whole.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint's verified cosignatures do not satisfy the policy's quorum (SPEC §8).
    #[error("witness quorum not met: cosigned by [{}], not by [{}]", cosigned.join(", "), missing.join(", "))]
    WitnessQuorum {
        /// The policy names of the witnesses whose cosignatures verified.
        cosigned: Vec<String>,
        /// The policy names of the others, each with why (`no cosignature`, `bad signature` …).
        missing: Vec<String>,
    },
    /// A trust policy with `log` lines none of which is the trusted log's key (SPEC §8): the
    /// policy and the log descriptor disagree about which log is trusted.
    #[error("the trust policy's log lines name [{}], not the trusted log key {trusted}", listed.join(", "))]
    PolicyLogMismatch {
        /// The policy's log keys.
        listed: Vec<String>,
        /// The trusted descriptor's key.
        trusted: String,
    },
    /// An origin or key name that is empty or contains whitespace or `+`.
    #[error("bad origin {0:?}: must be non-empty, printable, without spaces or '+'")]
    BadOrigin(String),
    /// No signature line from the expected key.
    #[error("note has no signature from key {name}+{key_id}")]
    NoKnownSignature {
        /// The key name.
        name: String,
        /// The key id in hex.
        key_id: String,
    },
    /// A signature from a known key that does not verify.
    #[error("signature by {name} does not verify")]
    BadSignature {
        /// The key name.
        name: String,
    },
    /// A public key that is not a valid Ed25519 point or has small order.
    #[error("public key is not a valid Ed25519 key: {0}")]
    BadPublicKey(&'static str),
    /// A key file that exists but cannot be used.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    // ---- receipts (SPEC §3, §5) ----
    /// The receipt JSON is malformed (not a verification failure: it could not be checked).
    #[error("malformed receipt: {0}")]
    MalformedReceipt(String),
    /// The receipt names another log than the one the verifier trusts.
    #[error("receipt is for log {found}, expected {expected}")]
    WrongLog {
        /// What the receipt says.
        found: String,
        /// What the verifier was given.
        expected: String,
    },
    /// A SPEC §5 step failed.
    #[error("receipt step {step} ({}) failed{}: {reason}", step_name(*step), index.map(|i| format!(" at index {i}")).unwrap_or_default())]
    ReceiptInvalid {
        /// Which step.
        step: ReceiptStep,
        /// The log index of the entry concerned, if one is.
        index: Option<u64>,
        /// What was wrong.
        reason: String,
    },

    // ---- compliance packs (SPEC §6) ----
    /// A pack failed verification: which file, which log index if one, and why.
    #[error("pack {file}{}: {reason}", index.map(|i| format!(" at index {i}")).unwrap_or_default())]
    PackInvalid {
        /// The pack file at fault.
        file: String,
        /// The log index concerned, if one is.
        index: Option<u64>,
        /// What was wrong.
        reason: String,
    },

    // ---- payloads (`crate::payload`) ----
    /// A payload over the size limit.
    #[error("payload {hash} is {len} bytes or more, over the size limit of {max} bytes")]
    PayloadTooLarge {
        /// Its hash, lowercase hex.
        hash: String,
        /// Its length (declared, or the bytes received when the limit was passed).
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A payload that would take the payload store over its quota.
    #[error("payload {hash} ({len} bytes) would take the payload store over its quota: {used} of {quota} bytes used")]
    PayloadQuota {
        /// Its hash, lowercase hex.
        hash: String,
        /// Its length.
        len: u64,
        /// Bytes all stored payloads take.
        used: u64,
        /// The quota.
        quota: u64,
    },
    /// Bytes whose BLAKE3 is not the hash they were sent under.
    #[error("payload bytes hash to {actual}, not to {expected} they were sent under")]
    PayloadMismatch {
        /// The hash named, lowercase hex.
        expected: String,
        /// The BLAKE3 of the bytes, lowercase hex.
        actual: String,
    },
    /// The payload was erased: the `payload.erased` entry at `index` records when, why and who.
    #[error("payload erased by the payload.erased entry at index {index}")]
    PayloadErased {
        /// The erasure entry's log index.
        index: u64,
    },
    /// No payload is stored under the hash.
    #[error("payload not stored")]
    PayloadMissing,

    // ---- the log and its store ----
    /// A run's entries must arrive in seq order without gaps.
    #[error("run {run:?}: entry has seq {got}, expected {expected}")]
    SeqGap {
        /// The run.
        run: String,
        /// The next seq the log expects.
        expected: u64,
        /// The seq of the entry.
        got: u64,
    },
    /// `(run, seq)` exists with different bytes.
    #[error("run {run:?} seq {seq} already exists at index {index} with different bytes")]
    Conflict {
        /// The run.
        run: String,
        /// The seq.
        seq: u64,
        /// The index of the existing entry.
        index: u64,
    },
    /// An entry of a batch was refused; nothing of the batch was appended.
    #[error("batch entry {position}: {source}")]
    InBatch {
        /// Position of the entry in the submitted batch.
        position: usize,
        /// Why it was refused.
        source: Box<Error>,
    },
    /// The caller may not append this entry (for example: an actor its token is not bound to).
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// A run search that cannot be made: a filter out of its range, filters that contradict,
    /// a cursor another search handed out (`crate::store::catalog::search`).
    #[error("{0}")]
    BadSearch(String),
    /// A run has no entries.
    #[error("unknown run {0:?}")]
    UnknownRun(String),
    /// A run exists but has no seal yet.
    #[error("run {0:?} is not sealed yet")]
    Unsealed(String),
    /// The run's latest seal is not yet under a signed checkpoint.
    #[error("run {run:?}: the seal at index {seal_index} is not yet covered by a checkpoint")]
    NotYetCheckpointed {
        /// The run.
        run: String,
        /// The seal's index.
        seal_index: u64,
    },
    /// No `identity.registered` entry for the seal's actor precedes the seal.
    #[error("no identity.registered entry for {actor:?} precedes index {before}")]
    UnknownSigner {
        /// The actor.
        actor: String,
        /// The seal's index.
        before: u64,
    },
    /// A storage write or sync failed earlier; the log refuses every write until reopened.
    #[error("log is poisoned after a storage failure, reopen it to recover: {0}")]
    Poisoned(String),
    /// The log is shutting down.
    #[error("log is closed")]
    Closed,
    /// The store failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Stored data contradicts itself or the log's parameters.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// Opening a log with parameters that differ from the ones it was created with.
    #[error("log was created with {what} {stored:?}, refusing to open it with {requested:?}")]
    ParameterMismatch {
        /// Which parameter.
        what: &'static str,
        /// The stored value.
        stored: String,
        /// The requested value.
        requested: String,
    },
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn step_name(step: ReceiptStep) -> &'static str {
    match step {
        ReceiptStep::Checkpoint => "checkpoint signature",
        ReceiptStep::Inclusion => "inclusion proofs",
        ReceiptStep::Entries => "entries",
        ReceiptStep::ContentHash => "content hash",
        ReceiptStep::Signature => "seal signature",
        ReceiptStep::WitnessQuorum => "witness quorum",
    }
}

impl std::fmt::Display for ReceiptStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiptStep::WitnessQuorum => write!(f, "1"),
            step => write!(f, "{}", *step as u8),
        }
    }
}

impl Error {
    /// For receipt verification failures, the step that failed.
    pub fn receipt_step(&self) -> Option<ReceiptStep> {
        match self {
            Error::ReceiptInvalid { step, .. } => Some(*step),
            Error::WrongLog { .. } => Some(ReceiptStep::Checkpoint),
            _ => None,
        }
    }

    pub(crate) fn receipt(step: ReceiptStep, index: Option<u64>, reason: impl ToString) -> Error {
        Error::ReceiptInvalid { step, index, reason: reason.to_string() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
