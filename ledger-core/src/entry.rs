//! Entries, the leaves of the log (SPEC §2): a typed model of every event kind, its canonical
//! CBOR encoding, and a strict decoder.
//!
//! The decoder accepts exactly the bytes that [`Entry::encode`] produces for some entry: core
//! deterministic CBOR (RFC 8949 §4.2.1), known keys only, every required key present, no floats,
//! no tags, at most [`MAX_ENTRY_BYTES`]. Each rule has its own [`Error`] variant naming the byte
//! offset or key, so an ingest client can be told exactly what is wrong. Nobody re-encodes before
//! hashing: the leaf is the bytes as received.

use std::fmt;

use minicbor::{Decoder, Encoder};

use crate::{Error, Hash, Result};

/// The largest entry the log accepts, in bytes.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;
/// The entry format version this build reads and writes.
pub const ENTRY_VERSION: u64 = 1;
/// The longest run id, in bytes.
pub const MAX_RUN_ID_BYTES: usize = 128;
/// The prefix of the run that holds an identity's `identity.registered` entries.
pub const IDENTITY_RUN_PREFIX: &str = "id/";
/// The prefix of the run that holds a `payload.erased` entry (1.1): `erasure/<hex of the hash>`.
pub const ERASURE_RUN_PREFIX: &str = "erasure/";
/// The longest `context` of a `task.accepted` entry (1.1), in bytes.
pub const MAX_CONTEXT_BYTES: usize = 256;

/// A validated run id: 1..=128 bytes of `[A-Za-z0-9._:/-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

impl RunId {
    /// Validates `id` as a run id.
    pub fn new(id: impl Into<String>) -> Result<RunId> {
        let id = id.into();
        check_run_id(&id)?;
        Ok(RunId(id))
    }

    /// The run that holds the `identity.registered` entries of `identity`.
    pub fn identity(identity: &str) -> Result<RunId> {
        check_actor(identity)?;
        Ok(RunId(format!("{IDENTITY_RUN_PREFIX}{identity}")))
    }

    /// The run that holds the `payload.erased` entry of the payload whose BLAKE3 is `hash` (1.1).
    pub fn erasure(hash: &Hash) -> RunId {
        RunId(format!("{ERASURE_RUN_PREFIX}{}", hex::encode(hash)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad_run(id: &str, reason: &'static str) -> Error {
    let shown: String = id.chars().take(140).collect();
    Error::BadRunId { id: shown, reason }
}

/// Checks the run-id rules of SPEC §2.
pub fn check_run_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(bad_run(id, "empty"));
    }
    if id.len() > MAX_RUN_ID_BYTES {
        return Err(bad_run(id, "longer than 128 bytes"));
    }
    if !id.bytes().all(is_run_byte) {
        return Err(bad_run(id, "allowed characters are A-Z a-z 0-9 . _ : / -"));
    }
    Ok(())
}

/// Checks an actor (service identity) name: a run-id suffix, so that `id/<actor>` is a run id.
pub fn check_actor(actor: &str) -> Result<()> {
    if actor.len() > MAX_RUN_ID_BYTES - IDENTITY_RUN_PREFIX.len() {
        return Err(bad_run(actor, "identity names are at most 125 bytes"));
    }
    check_run_id(actor)
}

fn is_run_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-')
}

/// The protocol a task arrived over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// A2A (JSON-RPC or HTTP+JSON).
    A2a,
    /// MCP.
    Mcp,
    /// Plain HTTPS (`/invoke/<skill>`).
    Https,
}

/// The terminal status of a run, as a seal states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// `completed`
    Completed,
    /// `failed`
    Failed,
    /// `canceled`
    Canceled,
    /// `rejected`
    Rejected,
}

macro_rules! text_enum {
    ($ty:ident, $key:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
            fn parse(s: &str) -> Result<$ty> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(Error::BadValue {
                        key: $key.into(),
                        reason: format!("{other:?} is not one of {}", [$($text),+].join(", ")),
                    }),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl std::str::FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<$ty> { $ty::parse(s) }
        }
    };
}

text_enum!(Protocol, "protocol", { A2a => "a2a", Mcp => "mcp", Https => "https" });
text_enum!(RunStatus, "status", {
    Completed => "completed", Failed => "failed", Canceled => "canceled", Rejected => "rejected",
});

/// A2A task states in lower snake case, as `task.status` carries them.
pub const TASK_STATES: &[&str] =
    &["submitted", "working", "input_required", "auth_required", "completed", "failed", "canceled", "rejected"];

/// One event: its kind and its kind-specific attrs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `identity.registered`: a service identity's Ed25519 key (alg is always `ed25519`).
    IdentityRegistered {
        /// The public key; a valid point of full order.
        public_key: [u8; 32],
    },
    /// `task.accepted`
    TaskAccepted {
        /// Protocol the task came in over.
        protocol: Protocol,
        /// Skill id.
        skill: String,
        /// The authenticated caller.
        caller: String,
        /// BLAKE3 of the task input.
        input_hash: Hash,
        /// (1.1) The A2A `contextId` the task belongs to, 1..=256 bytes.
        context: Option<String>,
        /// (1.1) The run on whose behalf the call was made, when the caller says so.
        parent: Option<RunId>,
    },
    /// `task.status`
    TaskStatus {
        /// A2A state in lower snake case.
        state: String,
        /// Optional status message.
        message: Option<String>,
    },
    /// `skill.progress`
    SkillProgress {
        /// Stage name.
        stage: String,
        /// Percent done, 0..=100.
        pct: u8,
        /// Message.
        message: String,
    },
    /// `workspace.read`
    WorkspaceRead {
        /// Path.
        path: String,
        /// Byte count.
        bytes: u64,
        /// BLAKE3 of the content.
        hash: Hash,
    },
    /// `workspace.written`
    WorkspaceWritten {
        /// Path.
        path: String,
        /// Byte count.
        bytes: u64,
        /// BLAKE3 of the content.
        hash: Hash,
    },
    /// `workspace.denied`
    WorkspaceDenied {
        /// The operation refused.
        op: String,
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// `scope.requested`
    ScopeRequested {
        /// Globs asked for.
        paths: Vec<String>,
        /// Why.
        reason: String,
    },
    /// `scope.granted`
    ScopeGranted {
        /// The grant replaced.
        prior_grant: String,
        /// The new grant.
        new_grant: String,
        /// Globs granted.
        paths: Vec<String>,
        /// Who approved.
        approver: String,
    },
    /// `scope.denied`
    ScopeDenied {
        /// Who denied.
        approver: String,
        /// Why.
        reason: String,
    },
    /// `artifact.added`
    ArtifactAdded {
        /// Name.
        name: String,
        /// Media type.
        media_type: String,
        /// Byte count.
        bytes: u64,
        /// BLAKE3 of the content.
        hash: Hash,
    },
    /// `task.completed`, `task.failed`, `task.canceled` or `task.rejected`.
    TaskEnded {
        /// Which terminal state.
        status: RunStatus,
        /// Run time.
        elapsed_ms: u64,
        /// Names of the artifacts produced.
        artifacts: Vec<String>,
        /// The error (present exactly for `task.failed`).
        error: Option<String>,
    },
    /// `eval.scored`
    EvalScored {
        /// Rubric name.
        rubric: String,
        /// Score in thousandths.
        score_milli: i64,
        /// Failed checks.
        failures: Vec<String>,
    },
    /// `review.signed`
    ReviewSigned {
        /// Who reviewed.
        approver: String,
        /// Notes.
        notes: String,
    },
    /// `receipt.sealed` (SPEC §3).
    ReceiptSealed {
        /// BLAKE3 content hash over the covered entries' leaf hashes.
        content_hash: Hash,
        /// Number of covered entries, equal to the seal's seq.
        events: u64,
        /// Terminal status of the run.
        status: RunStatus,
        /// Ed25519 signature of the seal message.
        sig: [u8; 64],
    },
    /// `payload.erased` (1.1): the bytes behind `hash` were deleted on request. Its run is
    /// `erasure/<lowercase hex of hash>` ([`RunId::erasure`]) and its seq 0.
    PayloadErased {
        /// BLAKE3 of the erased payload.
        hash: Hash,
        /// Why it was erased.
        reason: String,
        /// Who approved the erasure.
        approver: String,
    },
}

/// The kind of an event, without its attrs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Kind {
    IdentityRegistered,
    TaskAccepted,
    TaskStatus,
    SkillProgress,
    WorkspaceRead,
    WorkspaceWritten,
    WorkspaceDenied,
    ScopeRequested,
    ScopeGranted,
    ScopeDenied,
    ArtifactAdded,
    TaskCompleted,
    TaskFailed,
    TaskCanceled,
    TaskRejected,
    EvalScored,
    ReviewSigned,
    ReceiptSealed,
    PayloadErased,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Uint,
    Int,
    Bytes32,
    Bytes64,
    TextArray,
}

struct Field {
    key: &'static str,
    ty: Ty,
    required: bool,
}

const fn req(key: &'static str, ty: Ty) -> Field {
    Field { key, ty, required: true }
}
const fn opt(key: &'static str, ty: Ty) -> Field {
    Field { key, ty, required: false }
}

use Ty::*;

/// Attr schemas, each in canonical key order (shorter keys first, then bytewise).
const S_IDENTITY: &[Field] = &[req("alg", Text), req("public_key", Bytes32)];
const S_ACCEPTED: &[Field] = &[
    req("skill", Text),
    req("caller", Text),
    opt("parent", Text),
    opt("context", Text),
    req("protocol", Text),
    req("input_hash", Bytes32),
];
const S_STATUS: &[Field] = &[req("state", Text), opt("message", Text)];
const S_PROGRESS: &[Field] = &[req("pct", Uint), req("stage", Text), req("message", Text)];
const S_WORKSPACE: &[Field] = &[req("hash", Bytes32), req("path", Text), req("bytes", Uint)];
const S_DENIED: &[Field] = &[req("op", Text), req("path", Text), req("reason", Text)];
const S_SCOPE_REQ: &[Field] = &[req("paths", TextArray), req("reason", Text)];
const S_SCOPE_GRANTED: &[Field] =
    &[req("paths", TextArray), req("approver", Text), req("new_grant", Text), req("prior_grant", Text)];
const S_SCOPE_DENIED: &[Field] = &[req("reason", Text), req("approver", Text)];
const S_ARTIFACT: &[Field] = &[req("hash", Bytes32), req("name", Text), req("bytes", Uint), req("media_type", Text)];
const S_ENDED: &[Field] = &[req("artifacts", TextArray), req("elapsed_ms", Uint)];
const S_FAILED: &[Field] = &[req("error", Text), req("artifacts", TextArray), req("elapsed_ms", Uint)];
const S_EVAL: &[Field] = &[req("rubric", Text), req("failures", TextArray), req("score_milli", Int)];
const S_REVIEW: &[Field] = &[req("notes", Text), req("approver", Text)];
const S_SEALED: &[Field] =
    &[req("sig", Bytes64), req("events", Uint), req("status", Text), req("content_hash", Bytes32)];
const S_ERASED: &[Field] = &[req("hash", Bytes32), req("reason", Text), req("approver", Text)];

/// The most attrs any kind has (`task.accepted` with both optional attrs).
const MAX_ATTRS: usize = 6;

impl Kind {
    /// Every kind, in SPEC table order (the 1.1 kind last).
    pub const ALL: [Kind; 19] = [
        Kind::IdentityRegistered,
        Kind::TaskAccepted,
        Kind::TaskStatus,
        Kind::SkillProgress,
        Kind::WorkspaceRead,
        Kind::WorkspaceWritten,
        Kind::WorkspaceDenied,
        Kind::ScopeRequested,
        Kind::ScopeGranted,
        Kind::ScopeDenied,
        Kind::ArtifactAdded,
        Kind::TaskCompleted,
        Kind::TaskFailed,
        Kind::TaskCanceled,
        Kind::TaskRejected,
        Kind::EvalScored,
        Kind::ReviewSigned,
        Kind::ReceiptSealed,
        Kind::PayloadErased,
    ];

    /// The wire name, e.g. `task.accepted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::IdentityRegistered => "identity.registered",
            Kind::TaskAccepted => "task.accepted",
            Kind::TaskStatus => "task.status",
            Kind::SkillProgress => "skill.progress",
            Kind::WorkspaceRead => "workspace.read",
            Kind::WorkspaceWritten => "workspace.written",
            Kind::WorkspaceDenied => "workspace.denied",
            Kind::ScopeRequested => "scope.requested",
            Kind::ScopeGranted => "scope.granted",
            Kind::ScopeDenied => "scope.denied",
            Kind::ArtifactAdded => "artifact.added",
            Kind::TaskCompleted => "task.completed",
            Kind::TaskFailed => "task.failed",
            Kind::TaskCanceled => "task.canceled",
            Kind::TaskRejected => "task.rejected",
            Kind::EvalScored => "eval.scored",
            Kind::ReviewSigned => "review.signed",
            Kind::ReceiptSealed => "receipt.sealed",
            Kind::PayloadErased => "payload.erased",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| Error::UnknownKind(s.to_string()))
    }

    fn schema(self) -> &'static [Field] {
        match self {
            Kind::IdentityRegistered => S_IDENTITY,
            Kind::TaskAccepted => S_ACCEPTED,
            Kind::TaskStatus => S_STATUS,
            Kind::SkillProgress => S_PROGRESS,
            Kind::WorkspaceRead | Kind::WorkspaceWritten => S_WORKSPACE,
            Kind::WorkspaceDenied => S_DENIED,
            Kind::ScopeRequested => S_SCOPE_REQ,
            Kind::ScopeGranted => S_SCOPE_GRANTED,
            Kind::ScopeDenied => S_SCOPE_DENIED,
            Kind::ArtifactAdded => S_ARTIFACT,
            Kind::TaskCompleted | Kind::TaskCanceled | Kind::TaskRejected => S_ENDED,
            Kind::TaskFailed => S_FAILED,
            Kind::EvalScored => S_EVAL,
            Kind::ReviewSigned => S_REVIEW,
            Kind::ReceiptSealed => S_SEALED,
            Kind::PayloadErased => S_ERASED,
        }
    }

    /// The terminal status a `task.*` end kind stands for.
    pub fn terminal_status(self) -> Option<RunStatus> {
        match self {
            Kind::TaskCompleted => Some(RunStatus::Completed),
            Kind::TaskFailed => Some(RunStatus::Failed),
            Kind::TaskCanceled => Some(RunStatus::Canceled),
            Kind::TaskRejected => Some(RunStatus::Rejected),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Event::IdentityRegistered { .. } => Kind::IdentityRegistered,
            Event::TaskAccepted { .. } => Kind::TaskAccepted,
            Event::TaskStatus { .. } => Kind::TaskStatus,
            Event::SkillProgress { .. } => Kind::SkillProgress,
            Event::WorkspaceRead { .. } => Kind::WorkspaceRead,
            Event::WorkspaceWritten { .. } => Kind::WorkspaceWritten,
            Event::WorkspaceDenied { .. } => Kind::WorkspaceDenied,
            Event::ScopeRequested { .. } => Kind::ScopeRequested,
            Event::ScopeGranted { .. } => Kind::ScopeGranted,
            Event::ScopeDenied { .. } => Kind::ScopeDenied,
            Event::ArtifactAdded { .. } => Kind::ArtifactAdded,
            Event::TaskEnded { status, .. } => match status {
                RunStatus::Completed => Kind::TaskCompleted,
                RunStatus::Failed => Kind::TaskFailed,
                RunStatus::Canceled => Kind::TaskCanceled,
                RunStatus::Rejected => Kind::TaskRejected,
            },
            Event::EvalScored { .. } => Kind::EvalScored,
            Event::ReviewSigned { .. } => Kind::ReviewSigned,
            Event::ReceiptSealed { .. } => Kind::ReceiptSealed,
            Event::PayloadErased { .. } => Kind::PayloadErased,
        }
    }

    /// The attrs as (key, value) pairs in canonical key order (the order of the kind's schema).
    fn attrs(&self) -> Vec<(&'static str, Value<'_>)> {
        use Value as V;
        match self {
            Event::IdentityRegistered { public_key } => {
                vec![("alg", V::Text("ed25519")), ("public_key", V::Bytes(public_key))]
            }
            Event::TaskAccepted { protocol, skill, caller, input_hash, context, parent } => {
                let mut v = vec![("skill", V::Text(skill)), ("caller", V::Text(caller))];
                if let Some(p) = parent {
                    v.push(("parent", V::Text(p.as_str())));
                }
                if let Some(c) = context {
                    v.push(("context", V::Text(c)));
                }
                v.push(("protocol", V::Text(protocol.as_str())));
                v.push(("input_hash", V::Bytes(input_hash)));
                v
            }
            Event::TaskStatus { state, message } => {
                let mut v = vec![("state", V::Text(state))];
                if let Some(m) = message {
                    v.push(("message", V::Text(m)));
                }
                v
            }
            Event::SkillProgress { stage, pct, message } => {
                vec![("pct", V::Uint(u64::from(*pct))), ("stage", V::Text(stage)), ("message", V::Text(message))]
            }
            Event::WorkspaceRead { path, bytes, hash } | Event::WorkspaceWritten { path, bytes, hash } => {
                vec![("hash", V::Bytes(hash)), ("path", V::Text(path)), ("bytes", V::Uint(*bytes))]
            }
            Event::WorkspaceDenied { op, path, reason } => {
                vec![("op", V::Text(op)), ("path", V::Text(path)), ("reason", V::Text(reason))]
            }
            Event::ScopeRequested { paths, reason } => {
                vec![("paths", V::Texts(paths)), ("reason", V::Text(reason))]
            }
            Event::ScopeGranted { prior_grant, new_grant, paths, approver } => vec![
                ("paths", V::Texts(paths)),
                ("approver", V::Text(approver)),
                ("new_grant", V::Text(new_grant)),
                ("prior_grant", V::Text(prior_grant)),
            ],
            Event::ScopeDenied { approver, reason } => {
                vec![("reason", V::Text(reason)), ("approver", V::Text(approver))]
            }
            Event::ArtifactAdded { name, media_type, bytes, hash } => vec![
                ("hash", V::Bytes(hash)),
                ("name", V::Text(name)),
                ("bytes", V::Uint(*bytes)),
                ("media_type", V::Text(media_type)),
            ],
            Event::TaskEnded { elapsed_ms, artifacts, error, .. } => {
                let mut v = Vec::with_capacity(3);
                if let Some(e) = error {
                    v.push(("error", V::Text(e)));
                }
                v.push(("artifacts", V::Texts(artifacts)));
                v.push(("elapsed_ms", V::Uint(*elapsed_ms)));
                v
            }
            Event::EvalScored { rubric, score_milli, failures } => vec![
                ("rubric", V::Text(rubric)),
                ("failures", V::Texts(failures)),
                ("score_milli", V::Int(*score_milli)),
            ],
            Event::ReviewSigned { approver, notes } => {
                vec![("notes", V::Text(notes)), ("approver", V::Text(approver))]
            }
            Event::ReceiptSealed { content_hash, events, status, sig } => vec![
                ("sig", V::Bytes(sig)),
                ("events", V::Uint(*events)),
                ("status", V::Text(status.as_str())),
                ("content_hash", V::Bytes(content_hash)),
            ],
            Event::PayloadErased { hash, reason, approver } => {
                vec![("hash", V::Bytes(hash)), ("reason", V::Text(reason)), ("approver", V::Text(approver))]
            }
        }
    }
}

impl Event {
    /// The attrs as a JSON object, byte strings as lowercase hex (SPEC §7's `attrs` column, and
    /// what the server and the verifier show people).
    pub fn attrs_json(&self) -> serde_json::Value {
        let map = self
            .attrs()
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::Text(t) => serde_json::Value::from(t),
                    Value::Uint(u) => serde_json::Value::from(u),
                    Value::Int(i) => serde_json::Value::from(i),
                    Value::Bytes(b) => serde_json::Value::from(hex::encode(b)),
                    Value::Texts(t) => serde_json::Value::from(t.to_vec()),
                };
                (k.to_string(), v)
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// An attr value: the only shapes SPEC §2 uses.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value<'a> {
    Text(&'a str),
    Uint(u64),
    Int(i64),
    Bytes(&'a [u8]),
    Texts(&'a [String]),
}

/// One decoded entry (SPEC §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Event time, Unix nanoseconds UTC.
    pub ts: i64,
    /// The run.
    pub run: RunId,
    /// Position in the run.
    pub seq: u64,
    /// Emitting service identity.
    pub actor: String,
    /// Kind and attrs.
    pub event: Event,
    /// Optional grant id.
    pub grant: Option<String>,
    /// Optional BLAKE3 of a payload kept outside the log.
    pub payload: Option<Hash>,
}

impl Entry {
    /// The event kind.
    pub fn kind(&self) -> Kind {
        self.event.kind()
    }

    /// The entry as JSON (SPEC §2 keys), byte strings as lowercase hex.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("v".into(), 1.into());
        m.insert("ts".into(), self.ts.into());
        m.insert("run".into(), self.run.as_str().into());
        m.insert("seq".into(), self.seq.into());
        m.insert("kind".into(), self.kind().as_str().into());
        m.insert("actor".into(), self.actor.clone().into());
        m.insert("attrs".into(), self.event.attrs_json());
        if let Some(g) = &self.grant {
            m.insert("grant".into(), g.clone().into());
        }
        if let Some(p) = &self.payload {
            m.insert("payload".into(), hex::encode(p).into());
        }
        serde_json::Value::Object(m)
    }

    /// Encodes the entry in core deterministic CBOR.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out);
        out
    }

    /// Encodes the entry in core deterministic CBOR, appending to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.write(&mut Encoder::new(out)).expect("encoding into a Vec cannot fail");
    }

    /// Keys are written in canonical order; minicbor writes shortest-form heads.
    fn write(&self, e: &mut Encoder<&mut Vec<u8>>) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        let n = 7 + u64::from(self.grant.is_some()) + u64::from(self.payload.is_some());
        e.map(n)?;
        e.str("v")?.u64(ENTRY_VERSION)?;
        e.str("ts")?.i64(self.ts)?;
        e.str("run")?.str(self.run.as_str())?;
        e.str("seq")?.u64(self.seq)?;
        e.str("kind")?.str(self.kind().as_str())?;
        e.str("actor")?.str(&self.actor)?;
        let attrs = self.event.attrs();
        e.str("attrs")?.map(attrs.len() as u64)?;
        for (k, v) in &attrs {
            e.str(k)?;
            match v {
                Value::Text(s) => {
                    e.str(s)?;
                }
                Value::Uint(u) => {
                    e.u64(*u)?;
                }
                Value::Int(i) => {
                    e.i64(*i)?;
                }
                Value::Bytes(b) => {
                    e.bytes(b)?;
                }
                Value::Texts(ts) => {
                    e.array(ts.len() as u64)?;
                    for t in ts.iter() {
                        e.str(t)?;
                    }
                }
            }
        }
        if let Some(g) = &self.grant {
            e.str("grant")?.str(g)?;
        }
        if let Some(p) = &self.payload {
            e.str("payload")?.bytes(p)?;
        }
        Ok(())
    }

    /// Decodes and validates one entry. See the module docs for what is rejected.
    pub fn decode(bytes: &[u8]) -> Result<Entry> {
        Entry::check(bytes).map(|v| v.to_entry())
    }

    /// Checks one entry by every rule of [`Entry::decode`] without copying anything out of
    /// `bytes`: verifiers that only need to know an entry is valid (and read a few fields of it)
    /// use this, and materialise an [`Entry`] only when they show it.
    pub fn check(bytes: &[u8]) -> Result<EntryView<'_>> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(Error::EntryTooLarge { len: bytes.len(), max: MAX_ENTRY_BYTES });
        }
        let mut r = Reader { d: Decoder::new(bytes) };
        let view = check_entry(&mut r)?;
        let end = r.d.position();
        if end != bytes.len() {
            return Err(Error::TrailingBytes { offset: end, count: bytes.len() - end });
        }
        Ok(view)
    }
}

/// An entry that passed every check of [`Entry::decode`], borrowed from its bytes. Read-only, so
/// that what it says stays what was checked.
#[derive(Clone, Debug)]
pub struct EntryView<'b> {
    ts: i64,
    run: &'b str,
    seq: u64,
    actor: &'b str,
    grant: Option<&'b str>,
    payload: Option<Hash>,
    attrs: Attrs<'b>,
}

/// The attrs of a `receipt.sealed` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealAttrs {
    /// The content hash over the covered entries' leaf hashes.
    pub content_hash: Hash,
    /// How many entries the seal covers (its own seq).
    pub events: u64,
    /// The sealed status.
    pub status: RunStatus,
    /// Ed25519 signature over the seal message.
    pub sig: [u8; 64],
}

/// The attrs of a `task.accepted` entry that say whose run it is and where it belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptedAttrs<'b> {
    /// The skill asked for.
    pub skill: &'b str,
    /// The authenticated caller.
    pub caller: &'b str,
    /// (1.1) The A2A `contextId`, if any.
    pub context: Option<&'b str>,
    /// (1.1) The parent run, if any (a valid run id).
    pub parent: Option<&'b str>,
    /// BLAKE3 of the task input.
    pub input_hash: Hash,
}

impl<'b> EntryView<'b> {
    /// Event time, Unix nanoseconds UTC.
    pub fn ts(&self) -> i64 {
        self.ts
    }

    /// The run (a valid run id).
    pub fn run(&self) -> &'b str {
        self.run
    }

    /// Position in the run.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Emitting service identity (a valid identity name).
    pub fn actor(&self) -> &'b str {
        self.actor
    }

    /// Optional grant id.
    pub fn grant(&self) -> Option<&'b str> {
        self.grant
    }

    /// Optional BLAKE3 of a payload kept outside the log.
    pub fn payload(&self) -> Option<Hash> {
        self.payload
    }

    /// The event kind.
    pub fn kind(&self) -> Kind {
        self.attrs.kind
    }

    /// The attrs of a seal, or `None` for any other kind.
    pub fn seal(&self) -> Option<SealAttrs> {
        (self.attrs.kind == Kind::ReceiptSealed).then(|| {
            let s = &self.attrs.slots;
            SealAttrs {
                sig: s.b64(0),
                events: s.uint(1),
                status: RunStatus::parse(s.text(2)).expect("checked when the entry was"),
                content_hash: s.b32(3),
            }
        })
    }

    /// The public key of an `identity.registered` entry, or `None` for any other kind.
    pub fn public_key(&self) -> Option<[u8; 32]> {
        (self.attrs.kind == Kind::IdentityRegistered).then(|| self.attrs.slots.b32(1))
    }

    /// (1.1) The erased payload's hash of a `payload.erased` entry, or `None` for any other kind.
    pub fn erased(&self) -> Option<Hash> {
        (self.attrs.kind == Kind::PayloadErased).then(|| self.attrs.slots.b32(0))
    }

    /// The caller, context and parent of a `task.accepted` entry, or `None` for any other kind.
    pub fn accepted(&self) -> Option<AcceptedAttrs<'b>> {
        (self.attrs.kind == Kind::TaskAccepted).then(|| {
            let s = &self.attrs.slots;
            AcceptedAttrs {
                skill: s.text(0),
                caller: s.text(1),
                parent: s.opt_str(2),
                context: s.opt_str(3),
                input_hash: s.b32(5),
            }
        })
    }

    /// Every BLAKE3 of content kept outside the log that the entry names, in attrs order then
    /// the `payload` field: `input_hash` of `task.accepted`, `hash` of `artifact.added`,
    /// `workspace.read` and `workspace.written`, and the entry's `payload`. (A `payload.erased`
    /// entry's `hash` names content that is gone: not listed.) At most two; a hash named twice
    /// is listed twice.
    pub fn content_hashes(&self) -> impl Iterator<Item = Hash> + '_ {
        let attr = match self.attrs.kind {
            Kind::TaskAccepted => Some(self.attrs.slots.b32(5)),
            Kind::ArtifactAdded | Kind::WorkspaceRead | Kind::WorkspaceWritten => Some(self.attrs.slots.b32(0)),
            _ => None,
        };
        attr.into_iter().chain(self.payload)
    }

    /// The kind and attrs as an owned [`Event`].
    pub fn event(&self) -> Event {
        self.attrs.event()
    }

    /// Appends the attrs as compact JSON to `out`: exactly the text of
    /// `self.event().attrs_json().to_string()` (keys sorted, byte strings as lowercase hex),
    /// written straight from the entry's bytes.
    pub fn write_attrs_json(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let schema = self.attrs.kind.schema();
        let mut present: [(&str, Option<&Slot<'_>>); MAX_ATTRS] = [("", None); MAX_ATTRS];
        let mut n = 0;
        for (f, slot) in schema.iter().zip(&self.attrs.slots.0) {
            if let Some(slot) = slot {
                present[n] = (f.key, Some(slot));
                n += 1;
            }
        }
        let present = &mut present[..n];
        present.sort_unstable_by_key(|(key, _)| *key);
        let string = |out: &mut Vec<u8>, s: &str| serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
        let hex = |out: &mut Vec<u8>, b: &[u8]| {
            out.push(b'"');
            let start = out.len();
            out.resize(start + 2 * b.len(), 0);
            hex::encode_to_slice(b, &mut out[start..]).expect("sized for the hex digits");
            out.push(b'"');
        };
        out.push(b'{');
        for (i, (key, slot)) in present.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, key);
            out.push(b':');
            match slot.expect("present") {
                Slot::Text(t) => string(out, t),
                Slot::Uint(u) => write!(out, "{u}").expect("writing to a Vec cannot fail"),
                Slot::Int(v) => write!(out, "{v}").expect("writing to a Vec cannot fail"),
                Slot::B32(b) => hex(out, b),
                Slot::B64(b) => hex(out, b),
                Slot::Texts(t) => {
                    out.push(b'[');
                    let mut d = Decoder::new(t.items);
                    for j in 0..t.n {
                        if j > 0 {
                            out.push(b',');
                        }
                        string(out, d.str().expect("checked when the entry was"));
                    }
                    out.push(b']');
                }
            }
        }
        out.push(b'}');
    }

    /// The entry as an owned [`Entry`].
    pub fn to_entry(&self) -> Entry {
        Entry {
            ts: self.ts,
            run: RunId(self.run.to_string()),
            seq: self.seq,
            actor: self.actor.to_string(),
            event: self.attrs.event(),
            grant: self.grant.map(str::to_string),
            payload: self.payload,
        }
    }
}

const ENTRY_KEYS: [&str; 9] = ["v", "ts", "run", "seq", "kind", "actor", "attrs", "grant", "payload"];

fn check_entry<'b>(r: &mut Reader<'b>) -> Result<EntryView<'b>> {
    let n = r.map("entry")?;
    let mut v = None;
    let mut ts = None;
    let mut run = None;
    let mut seq = None;
    let mut kind_at: Option<(&str, usize)> = None;
    let mut actor = None;
    let mut attrs_at = None;
    let mut grant = None;
    let mut payload = None;
    let mut prev: Option<&str> = None;
    for _ in 0..n {
        let key = r.key(&mut prev)?;
        match key {
            "v" => v = Some(r.uint("v")?),
            "ts" => ts = Some(r.int("ts")?),
            "run" => run = Some(r.text("run")?),
            "seq" => seq = Some(r.uint("seq")?),
            "kind" => {
                let pos = r.d.position();
                kind_at = Some((r.text("kind")?, pos));
            }
            "actor" => actor = Some(r.text("actor")?),
            "attrs" => {
                // The attrs schema depends on `kind`, which precedes `attrs` in canonical order.
                let Some((k, _)) = kind_at else {
                    return Err(missing("kind", "entry"));
                };
                attrs_at = Some(check_attrs(r, Kind::parse(k)?)?);
            }
            "grant" => grant = Some(r.text("grant")?),
            "payload" => payload = Some(r.bytes32("payload")?),
            other => {
                return Err(Error::UnknownKey { key: other.to_string(), within: "entry".into() });
            }
        }
    }
    let v = v.ok_or_else(|| missing(ENTRY_KEYS[0], "entry"))?;
    if v != ENTRY_VERSION {
        return Err(Error::UnsupportedVersion(v));
    }
    let ts = ts.ok_or_else(|| missing(ENTRY_KEYS[1], "entry"))?;
    let run = run.ok_or_else(|| missing(ENTRY_KEYS[2], "entry"))?;
    check_run_id(run)?;
    let seq = seq.ok_or_else(|| missing(ENTRY_KEYS[3], "entry"))?;
    let (kind, _) = kind_at.ok_or_else(|| missing(ENTRY_KEYS[4], "entry"))?;
    let actor = actor.ok_or_else(|| missing(ENTRY_KEYS[5], "entry"))?;
    check_actor(actor).map_err(|e| match e {
        Error::BadRunId { reason, .. } => Error::BadValue { key: "actor".into(), reason: reason.into() },
        e => e,
    })?;
    let attrs = attrs_at.ok_or_else(|| missing(ENTRY_KEYS[6], "entry"))?;
    debug_assert_eq!(attrs.kind.as_str(), kind);
    if attrs.kind == Kind::IdentityRegistered
        && (!run.starts_with(IDENTITY_RUN_PREFIX) || run.len() == IDENTITY_RUN_PREFIX.len())
    {
        return Err(Error::BadValue {
            key: "run".into(),
            reason: "identity.registered entries belong to run id/<identity>".into(),
        });
    }
    if attrs.kind == Kind::ReceiptSealed
        && let events = attrs.slots.uint(1)
        && events != seq
    {
        return Err(Error::BadValue {
            key: "events".into(),
            reason: format!("a seal at seq {seq} covers {seq} events, not {events}"),
        });
    }
    if attrs.kind == Kind::PayloadErased {
        // (1.1) An erasure is a run of its own, named by the hash it erases, with one entry.
        let hash = attrs.slots.b32(0);
        let expected = RunId::erasure(&hash);
        if run != expected.as_str() {
            return Err(Error::BadValue {
                key: "run".into(),
                reason: format!("a payload.erased entry belongs to run {expected} (named by its hash), not {run}"),
            });
        }
        if seq != 0 {
            return Err(Error::BadValue {
                key: "seq".into(),
                reason: format!("a payload.erased entry is the only entry of its run, at seq 0, not {seq}"),
            });
        }
    }
    Ok(EntryView { ts, run, seq, actor, grant, payload, attrs })
}

fn missing(key: &'static str, within: &str) -> Error {
    Error::MissingKey { key, within: within.to_string() }
}

/// Reads and checks the attrs of `kind`: the schema's keys and types, then the rules on values.
fn check_attrs<'b>(r: &mut Reader<'b>, kind: Kind) -> Result<Attrs<'b>> {
    let schema = kind.schema();
    let within = kind.as_str();
    let n = r.map("attrs")?;
    let mut slots: [Option<Slot<'_>>; MAX_ATTRS] = Default::default();
    let mut prev: Option<&str> = None;
    for _ in 0..n {
        let key = r.key(&mut prev)?;
        let Some(i) = schema.iter().position(|f| f.key == key) else {
            return Err(Error::UnknownKey { key: key.to_string(), within: within.into() });
        };
        slots[i] = Some(match schema[i].ty {
            Text => Slot::Text(r.text(key)?),
            Uint => Slot::Uint(r.uint(key)?),
            Int => Slot::Int(r.int(key)?),
            Bytes32 => Slot::B32(r.bytes32(key)?),
            Bytes64 => Slot::B64(r.bytes64(key)?),
            TextArray => Slot::Texts(r.texts(key)?),
        });
    }
    for (f, s) in schema.iter().zip(&slots) {
        if f.required && s.is_none() {
            return Err(missing(f.key, within));
        }
    }
    let s = Slots(slots);
    match kind {
        Kind::IdentityRegistered => {
            let alg = s.text(0);
            if alg != "ed25519" {
                return Err(Error::BadValue { key: "alg".into(), reason: format!("{alg:?} is not \"ed25519\"") });
            }
            crate::keys::check_public_key(&s.b32(1))
                .map_err(|e| Error::BadValue { key: "public_key".into(), reason: e.to_string() })?;
        }
        Kind::TaskAccepted => {
            if let Some(parent) = s.opt_str(2) {
                check_run_id(parent).map_err(|e| match e {
                    Error::BadRunId { reason, .. } => {
                        Error::BadValue { key: "parent".into(), reason: format!("not a run id: {reason}") }
                    }
                    e => e,
                })?;
            }
            if let Some(context) = s.opt_str(3) {
                if context.is_empty() {
                    return Err(Error::BadValue {
                        key: "context".into(),
                        reason: "empty (an absent context is omitted, not empty)".into(),
                    });
                }
                if context.len() > MAX_CONTEXT_BYTES {
                    return Err(Error::BadValue {
                        key: "context".into(),
                        reason: format!("{} bytes, over the {MAX_CONTEXT_BYTES}-byte limit", context.len()),
                    });
                }
            }
            Protocol::parse(s.text(4))?;
        }
        Kind::TaskStatus => {
            let state = s.text(0);
            if !TASK_STATES.contains(&state) {
                return Err(Error::BadValue {
                    key: "state".into(),
                    reason: format!("{state:?} is not an A2A task state ({})", TASK_STATES.join(", ")),
                });
            }
        }
        Kind::SkillProgress => {
            let pct = s.uint(0);
            if pct > 100 {
                return Err(Error::BadValue { key: "pct".into(), reason: format!("{pct} is over 100") });
            }
        }
        Kind::ReceiptSealed => {
            RunStatus::parse(s.text(2))?;
        }
        _ => {}
    }
    Ok(Attrs { kind, slots: s })
}

/// Checked attrs: every required slot is present, of its schema's type, with a valid value.
#[derive(Clone, Debug)]
struct Attrs<'b> {
    kind: Kind,
    slots: Slots<'b>,
}

impl Attrs<'_> {
    fn event(&self) -> Event {
        let s = &self.slots;
        match self.kind {
            Kind::IdentityRegistered => Event::IdentityRegistered { public_key: s.b32(1) },
            Kind::TaskAccepted => Event::TaskAccepted {
                skill: s.text(0).into(),
                caller: s.text(1).into(),
                parent: s.opt_str(2).map(|p| RunId(p.to_string())),
                context: s.opt_text(3),
                protocol: Protocol::parse(s.text(4)).expect("checked"),
                input_hash: s.b32(5),
            },
            Kind::TaskStatus => Event::TaskStatus { state: s.text(0).into(), message: s.opt_text(1) },
            Kind::SkillProgress => {
                Event::SkillProgress { pct: s.uint(0) as u8, stage: s.text(1).into(), message: s.text(2).into() }
            }
            Kind::WorkspaceRead => Event::WorkspaceRead { hash: s.b32(0), path: s.text(1).into(), bytes: s.uint(2) },
            Kind::WorkspaceWritten => {
                Event::WorkspaceWritten { hash: s.b32(0), path: s.text(1).into(), bytes: s.uint(2) }
            }
            Kind::WorkspaceDenied => {
                Event::WorkspaceDenied { op: s.text(0).into(), path: s.text(1).into(), reason: s.text(2).into() }
            }
            Kind::ScopeRequested => Event::ScopeRequested { paths: s.texts(0), reason: s.text(1).into() },
            Kind::ScopeGranted => Event::ScopeGranted {
                paths: s.texts(0),
                approver: s.text(1).into(),
                new_grant: s.text(2).into(),
                prior_grant: s.text(3).into(),
            },
            Kind::ScopeDenied => Event::ScopeDenied { reason: s.text(0).into(), approver: s.text(1).into() },
            Kind::ArtifactAdded => Event::ArtifactAdded {
                hash: s.b32(0),
                name: s.text(1).into(),
                bytes: s.uint(2),
                media_type: s.text(3).into(),
            },
            Kind::TaskCompleted | Kind::TaskCanceled | Kind::TaskRejected => Event::TaskEnded {
                status: self.kind.terminal_status().expect("terminal kind"),
                artifacts: s.texts(0),
                elapsed_ms: s.uint(1),
                error: None,
            },
            Kind::TaskFailed => Event::TaskEnded {
                status: RunStatus::Failed,
                error: Some(s.text(0).into()),
                artifacts: s.texts(1),
                elapsed_ms: s.uint(2),
            },
            Kind::EvalScored => {
                Event::EvalScored { rubric: s.text(0).into(), failures: s.texts(1), score_milli: s.int(2) }
            }
            Kind::ReviewSigned => Event::ReviewSigned { notes: s.text(0).into(), approver: s.text(1).into() },
            Kind::ReceiptSealed => Event::ReceiptSealed {
                sig: s.b64(0),
                events: s.uint(1),
                status: RunStatus::parse(s.text(2)).expect("checked"),
                content_hash: s.b32(3),
            },
            Kind::PayloadErased => {
                Event::PayloadErased { hash: s.b32(0), reason: s.text(1).into(), approver: s.text(2).into() }
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Slot<'b> {
    Text(&'b str),
    Uint(u64),
    Int(i64),
    B32([u8; 32]),
    B64([u8; 64]),
    Texts(Texts<'b>),
}

/// A checked CBOR array of text strings: its `n` items, as encoded in `items`.
#[derive(Clone, Debug)]
struct Texts<'b> {
    items: &'b [u8],
    n: u64,
}

impl Texts<'_> {
    fn to_vec(&self) -> Vec<String> {
        let mut d = Decoder::new(self.items);
        (0..self.n).map(|_| d.str().expect("checked when the entry was").to_string()).collect()
    }
}

/// Decoded attr values by schema position. Only read after the schema check, so a slot of a
/// required field is present and of the schema's type.
#[derive(Clone, Debug)]
struct Slots<'b>([Option<Slot<'b>>; MAX_ATTRS]);

impl<'b> Slots<'b> {
    fn text(&self, i: usize) -> &'b str {
        match self.0[i] {
            Some(Slot::Text(t)) => t,
            _ => unreachable!("schema guarantees a text at {i}"),
        }
    }
    fn opt_str(&self, i: usize) -> Option<&'b str> {
        match self.0[i] {
            Some(Slot::Text(t)) => Some(t),
            _ => None,
        }
    }
    fn opt_text(&self, i: usize) -> Option<String> {
        self.opt_str(i).map(str::to_string)
    }
    fn uint(&self, i: usize) -> u64 {
        match self.0[i] {
            Some(Slot::Uint(u)) => u,
            _ => unreachable!("schema guarantees a uint at {i}"),
        }
    }
    fn int(&self, i: usize) -> i64 {
        match self.0[i] {
            Some(Slot::Int(v)) => v,
            _ => unreachable!("schema guarantees an int at {i}"),
        }
    }
    fn b32(&self, i: usize) -> [u8; 32] {
        match self.0[i] {
            Some(Slot::B32(b)) => b,
            _ => unreachable!("schema guarantees bytes(32) at {i}"),
        }
    }
    fn b64(&self, i: usize) -> [u8; 64] {
        match self.0[i] {
            Some(Slot::B64(b)) => b,
            _ => unreachable!("schema guarantees bytes(64) at {i}"),
        }
    }
    fn texts(&self, i: usize) -> Vec<String> {
        match &self.0[i] {
            Some(Slot::Texts(t)) => t.to_vec(),
            _ => unreachable!("schema guarantees a text array at {i}"),
        }
    }
}

// CBOR major types.
const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const TAG: u8 = 6;
const SIMPLE: u8 = 7;

/// A strict layer over `minicbor::Decoder`: before each item it checks the item's head against
/// the deterministic-encoding rules, then lets minicbor read the value.
struct Reader<'b> {
    d: Decoder<'b>,
}

impl<'b> Reader<'b> {
    /// Checks the head of the next item: canonical, definite, of one of the `majors`.
    fn head(&self, key: &str, majors: &[u8], expected: &'static str) -> Result<u8> {
        let input = self.d.input();
        let pos = self.d.position();
        let Some(&ib) = input.get(pos) else {
            return Err(Error::Truncated { offset: pos });
        };
        let (major, ai) = (ib >> 5, ib & 0x1f);
        if major == TAG {
            return Err(Error::Tag { offset: pos });
        }
        if major == SIMPLE && (25..=27).contains(&ai) {
            return Err(Error::Float { offset: pos });
        }
        if ai == 31 {
            return Err(Error::NotCanonical { offset: pos, what: "indefinite length" });
        }
        if (28..=30).contains(&ai) {
            return Err(Error::NotCanonical { offset: pos, what: "reserved additional information" });
        }
        if ai >= 24 && major != SIMPLE {
            let n = 1usize << (ai - 24);
            let Some(arg) = input.get(pos + 1..pos + 1 + n) else {
                return Err(Error::Truncated { offset: pos });
            };
            let value = arg.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            let min = [24u64, 1 << 8, 1 << 16, 1 << 32][usize::from(ai - 24)];
            if value < min {
                return Err(Error::NotCanonical { offset: pos, what: "integer or length not in shortest form" });
            }
        }
        if !majors.contains(&major) {
            return Err(Error::WrongType { key: key.to_string(), expected, offset: pos });
        }
        Ok(major)
    }

    fn fail(&self, key: &str, pos: usize, e: minicbor::decode::Error) -> Error {
        if e.is_end_of_input() {
            Error::Truncated { offset: pos }
        } else {
            Error::BadValue { key: key.to_string(), reason: e.to_string() }
        }
    }

    fn text(&mut self, key: &str) -> Result<&'b str> {
        let pos = self.d.position();
        self.head(key, &[TEXT], "text")?;
        self.d.str().map_err(|e| self.fail(key, pos, e))
    }

    fn uint(&mut self, key: &str) -> Result<u64> {
        let pos = self.d.position();
        self.head(key, &[UNSIGNED], "unsigned integer")?;
        self.d.u64().map_err(|e| self.fail(key, pos, e))
    }

    fn int(&mut self, key: &str) -> Result<i64> {
        let pos = self.d.position();
        self.head(key, &[UNSIGNED, NEGATIVE], "integer")?;
        let i = self.d.int().map_err(|e| self.fail(key, pos, e))?;
        i64::try_from(i)
            .map_err(|_| Error::BadValue { key: key.to_string(), reason: "outside the 64-bit signed range".into() })
    }

    fn bytes(&mut self, key: &str) -> Result<&'b [u8]> {
        let pos = self.d.position();
        self.head(key, &[BYTES], "byte string")?;
        self.d.bytes().map_err(|e| self.fail(key, pos, e))
    }

    fn bytes32(&mut self, key: &str) -> Result<[u8; 32]> {
        let b = self.bytes(key)?;
        b.try_into()
            .map_err(|_| Error::BadValue { key: key.to_string(), reason: format!("{} bytes, expected 32", b.len()) })
    }

    fn bytes64(&mut self, key: &str) -> Result<[u8; 64]> {
        let b = self.bytes(key)?;
        b.try_into()
            .map_err(|_| Error::BadValue { key: key.to_string(), reason: format!("{} bytes, expected 64", b.len()) })
    }

    fn texts(&mut self, key: &str) -> Result<Texts<'b>> {
        let pos = self.d.position();
        self.head(key, &[ARRAY], "array of text")?;
        let n = self.d.array().map_err(|e| self.fail(key, pos, e))?.unwrap_or(0);
        // Each element takes at least one byte: a count beyond the input is truncation.
        if n as usize > self.d.input().len() - self.d.position() {
            return Err(Error::Truncated { offset: pos });
        }
        let start = self.d.position();
        for _ in 0..n {
            self.text(key)?;
        }
        Ok(Texts { items: &self.d.input()[start..self.d.position()], n })
    }

    fn map(&mut self, key: &str) -> Result<u64> {
        let pos = self.d.position();
        self.head(key, &[MAP], "map")?;
        Ok(self.d.map().map_err(|e| self.fail(key, pos, e))?.unwrap_or(0))
    }

    /// Reads a map key: text, strictly after the previous key in canonical order.
    fn key(&mut self, prev: &mut Option<&'b str>) -> Result<&'b str> {
        let pos = self.d.position();
        let key = self.text("<map key>")?;
        if let Some(p) = *prev {
            match (p.len(), p.as_bytes()).cmp(&(key.len(), key.as_bytes())) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    return Err(Error::DuplicateKey { key: key.to_string(), offset: pos });
                }
                std::cmp::Ordering::Greater => {
                    return Err(Error::NotCanonical { offset: pos, what: "map keys not in canonical order" });
                }
            }
        }
        *prev = Some(key);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(event: Event) -> Entry {
        Entry {
            ts: 1_767_225_600_000_000_000,
            run: RunId::new("run-1").unwrap(),
            seq: 0,
            actor: "gateway".into(),
            event,
            grant: None,
            payload: None,
        }
    }

    #[test]
    fn schemas_are_in_canonical_key_order() {
        for kind in Kind::ALL {
            let keys: Vec<_> = kind.schema().iter().map(|f| (f.key.len(), f.key)).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "{kind}");
        }
        let keys: Vec<_> = ENTRY_KEYS.iter().map(|k| (k.len(), *k)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn round_trip_and_kind_names() {
        let e = sample(Event::SkillProgress { stage: "fetch".into(), pct: 40, message: "m".into() });
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()).unwrap(), k);
        }
    }

    #[test]
    fn attrs_json_written_from_the_bytes_is_serde_jsons_text() {
        let tricky = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} del \u{7f} é 漢 🦀 </script>";
        let h = [0xab; 32];
        let events = vec![
            Event::IdentityRegistered {
                public_key: crate::keys::NamedKey::from_seed("k", [3; 32]).unwrap().public_key(),
            },
            Event::TaskAccepted {
                skill: tricky.into(),
                caller: "c".into(),
                protocol: Protocol::Mcp,
                input_hash: h,
                context: None,
                parent: None,
            },
            Event::TaskAccepted {
                skill: "s".into(),
                caller: "c".into(),
                protocol: Protocol::A2a,
                input_hash: h,
                context: Some(tricky.into()),
                parent: Some(RunId::new("parent-run").unwrap()),
            },
            Event::TaskStatus { state: "working".into(), message: None },
            Event::TaskStatus { state: "failed".into(), message: Some(tricky.into()) },
            Event::SkillProgress { stage: "".into(), pct: 100, message: tricky.into() },
            Event::WorkspaceRead { path: "a/b".into(), bytes: u64::MAX, hash: h },
            Event::WorkspaceWritten { path: tricky.into(), bytes: 0, hash: h },
            Event::WorkspaceDenied { op: "write".into(), path: "/etc".into(), reason: tricky.into() },
            Event::ScopeRequested { paths: vec![], reason: "r".into() },
            Event::ScopeGranted {
                paths: vec!["a".into(), tricky.into(), "".into()],
                approver: "x".into(),
                new_grant: "g2".into(),
                prior_grant: "g1".into(),
            },
            Event::ScopeDenied { reason: tricky.into(), approver: "y".into() },
            Event::ArtifactAdded { name: "n".into(), media_type: "text/plain".into(), bytes: 3, hash: h },
            Event::TaskEnded { status: RunStatus::Completed, artifacts: vec!["x".into()], elapsed_ms: 5, error: None },
            Event::TaskEnded {
                status: RunStatus::Failed,
                artifacts: vec![],
                elapsed_ms: 0,
                error: Some(tricky.into()),
            },
            Event::TaskEnded { status: RunStatus::Canceled, artifacts: vec![], elapsed_ms: 1, error: None },
            Event::TaskEnded { status: RunStatus::Rejected, artifacts: vec![], elapsed_ms: 2, error: None },
            Event::EvalScored { rubric: tricky.into(), failures: vec![tricky.into()], score_milli: i64::MIN },
            Event::ReviewSigned { notes: tricky.into(), approver: "boss".into() },
            Event::ReceiptSealed { content_hash: h, events: 3, status: RunStatus::Failed, sig: [7; 64] },
            Event::PayloadErased { hash: h, reason: tricky.into(), approver: "dpo".into() },
        ];
        let mut kinds = std::collections::HashSet::new();
        for event in events {
            kinds.insert(event.kind());
            let mut e = sample(event);
            if e.kind() == Kind::IdentityRegistered {
                e.run = RunId::new("id/gateway").unwrap();
            }
            if let Event::ReceiptSealed { .. } = e.event {
                e.seq = 3;
            }
            if let Event::PayloadErased { hash, .. } = e.event {
                e.run = RunId::erasure(&hash);
            }
            let bytes = e.encode();
            let mut written = Vec::new();
            Entry::check(&bytes).unwrap().write_attrs_json(&mut written);
            assert_eq!(String::from_utf8(written).unwrap(), e.event.attrs_json().to_string(), "{}", e.kind());
        }
        assert_eq!(kinds.len(), Kind::ALL.len(), "every kind");
    }

    #[test]
    fn rejections_have_their_own_errors() {
        let good = sample(Event::TaskStatus { state: "working".into(), message: None }).encode();
        // A trailing byte.
        let mut b = good.clone();
        b.push(0);
        assert!(matches!(Entry::decode(&b), Err(Error::TrailingBytes { .. })));
        // Truncation.
        assert!(matches!(Entry::decode(&good[..good.len() - 1]), Err(Error::Truncated { .. })));
        // Oversize.
        assert!(matches!(Entry::decode(&vec![0; MAX_ENTRY_BYTES + 1]), Err(Error::EntryTooLarge { .. })));
        // A float where `v` should be: replace 0x01 after "v" with f16 1.0 (0xf9 0x3c 0x00).
        let pos = good.windows(2).position(|w| w == [0x61, b'v']).unwrap() + 2;
        let mut f = good[..pos].to_vec();
        f.extend_from_slice(&[0xf9, 0x3c, 0x00]);
        f.extend_from_slice(&good[pos + 1..]);
        assert!(matches!(Entry::decode(&f), Err(Error::Float { .. })));
        // A tag before `v`'s value.
        let mut t = good[..pos].to_vec();
        t.push(0xc1);
        t.extend_from_slice(&good[pos..]);
        assert!(matches!(Entry::decode(&t), Err(Error::Tag { .. })));
        // Non-shortest integer: v = 0x18 0x01.
        let mut n = good[..pos].to_vec();
        n.extend_from_slice(&[0x18, 0x01]);
        n.extend_from_slice(&good[pos + 1..]);
        assert!(matches!(Entry::decode(&n), Err(Error::NotCanonical { .. })));
        // Wrong type: v = "1".
        let mut w = good[..pos].to_vec();
        w.extend_from_slice(&[0x61, b'1']);
        w.extend_from_slice(&good[pos + 1..]);
        assert!(matches!(Entry::decode(&w), Err(Error::WrongType { .. })));
    }

    fn accepted(context: Option<&str>, parent: Option<&str>) -> Entry {
        sample(Event::TaskAccepted {
            skill: "s".into(),
            caller: "c".into(),
            protocol: Protocol::A2a,
            input_hash: [1; 32],
            context: context.map(str::to_string),
            // Unchecked on purpose: the encoder writes what it is given, the decoder judges it.
            parent: parent.map(|p| RunId(p.to_string())),
        })
    }

    fn erased(run: Option<&str>, seq: u64) -> Entry {
        let hash = [0x5a; 32];
        let mut e = sample(Event::PayloadErased { hash, reason: "gdpr art. 17".into(), approver: "dpo".into() });
        e.run = run.map_or_else(|| RunId::erasure(&hash), |r| RunId::new(r).unwrap());
        e.seq = seq;
        e
    }

    fn bad_value(bytes: &[u8]) -> (String, String) {
        match Entry::decode(bytes) {
            Err(Error::BadValue { key, reason }) => (key, reason),
            other => panic!("expected a bad value, got {other:?}"),
        }
    }

    #[test]
    fn optional_accepted_attrs_round_trip_in_canonical_order() {
        for (context, parent) in [(None, None), (Some("ctx-1"), None), (None, Some("p/1")), (Some("c"), Some("p"))] {
            let e = accepted(context, parent);
            let bytes = e.encode();
            assert_eq!(Entry::decode(&bytes).unwrap(), e);
            let n_attrs = 4 + usize::from(context.is_some()) + usize::from(parent.is_some());
            let attrs_at = bytes.windows(6).position(|w| w == b"\x65attrs").unwrap() + 6;
            assert_eq!(bytes[attrs_at], 0xa0 + n_attrs as u8, "absent attrs are omitted");
        }
        // The longest context is allowed; keys go skill, caller, parent, context, protocol, input_hash.
        let long = "x".repeat(MAX_CONTEXT_BYTES);
        let e = accepted(Some(&long), Some("a/b"));
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
        let at = |k: &[u8]| bytes.windows(k.len()).position(|w| w == k).unwrap();
        assert!(at(b"caller") < at(b"parent") && at(b"parent") < at(b"context") && at(b"context") < at(b"protocol"));
    }

    #[test]
    fn optional_accepted_attrs_are_refused_when_wrong() {
        // parent and context swapped: not in canonical key order.
        let bytes = accepted(Some("ctx"), Some("p")).encode();
        let p = bytes.windows(7).position(|w| w == b"\x66parent").unwrap();
        let c = bytes.windows(8).position(|w| w == b"\x67context").unwrap();
        let end = bytes.windows(9).position(|w| w == b"\x68protocol").unwrap();
        let mut swapped = bytes[..p].to_vec();
        swapped.extend_from_slice(&bytes[c..end]);
        swapped.extend_from_slice(&bytes[p..c]);
        swapped.extend_from_slice(&bytes[end..]);
        assert_eq!(swapped.len(), bytes.len());
        assert!(
            matches!(Entry::decode(&swapped), Err(Error::NotCanonical { what: "map keys not in canonical order", .. })),
            "{:?}",
            Entry::decode(&swapped)
        );
        // context: empty, and one byte over the limit.
        let (key, reason) = bad_value(&accepted(Some(""), None).encode());
        assert_eq!((key.as_str(), reason.starts_with("empty")), ("context", true), "{reason}");
        let (key, reason) = bad_value(&accepted(Some(&"x".repeat(MAX_CONTEXT_BYTES + 1)), None).encode());
        assert_eq!(key, "context");
        assert!(reason.contains("257 bytes, over the 256-byte limit"), "{reason}");
        // parent: not a run id (bad byte, empty, too long).
        for bad in ["has space", "", &"r".repeat(MAX_RUN_ID_BYTES + 1)] {
            let (key, reason) = bad_value(&accepted(None, Some(bad)).encode());
            assert_eq!(key, "parent");
            assert!(reason.starts_with("not a run id"), "{reason}");
        }
        // Wrong type for a new key.
        let bytes = accepted(Some("ctx"), None).encode();
        let c = bytes.windows(8).position(|w| w == b"\x67context").unwrap() + 8;
        let mut t = bytes[..c].to_vec();
        t.push(0x01);
        t.extend_from_slice(&bytes[c + 4..]);
        assert!(matches!(Entry::decode(&t), Err(Error::WrongType { ref key, .. }) if key == "context"));
    }

    #[test]
    fn payload_erased_is_checked_against_its_run_and_seq() {
        let e = erased(None, 0);
        assert_eq!(e.run.as_str(), format!("erasure/{}", "5a".repeat(32)));
        let bytes = e.encode();
        let view = Entry::check(&bytes).unwrap();
        assert_eq!(view.to_entry(), e);
        assert_eq!(view.erased(), Some([0x5a; 32]));
        assert_eq!(Entry::check(&accepted(None, None).encode()).unwrap().erased(), None);
        // The run of another hash, an uppercase spelling of its own, or an unrelated run.
        for run in [format!("erasure/{}", "5b".repeat(32)), format!("erasure/{}", "5A".repeat(32)), "run-1".into()] {
            let (key, reason) = bad_value(&erased(Some(&run), 0).encode());
            assert_eq!(key, "run", "{run}");
            assert!(reason.contains(&format!("belongs to run erasure/{}", "5a".repeat(32))), "{reason}");
        }
        let (key, reason) = bad_value(&erased(None, 1).encode());
        assert_eq!(key, "seq");
        assert!(reason.contains("at seq 0, not 1"), "{reason}");
        // A 31-byte hash: 0x58 0x20 <32 bytes> becomes 0x58 0x1f <31 bytes>.
        let h = bytes.windows(3).position(|w| w == [0x58, 0x20, 0x5a]).unwrap();
        let mut short = bytes[..h].to_vec();
        short.extend_from_slice(&[0x58, 0x1f]);
        short.extend_from_slice(&bytes[h + 3..]);
        let (key, reason) = bad_value(&short);
        assert_eq!((key.as_str(), reason.as_str()), ("hash", "31 bytes, expected 32"));
        // Required attrs.
        let mut no_approver = bytes.clone();
        let a = no_approver.windows(9).position(|w| w == b"\x68approver").unwrap();
        no_approver.truncate(a);
        let attrs_at = no_approver.windows(6).position(|w| w == b"\x65attrs").unwrap() + 6;
        no_approver[attrs_at] = 0xa2;
        assert!(matches!(Entry::decode(&no_approver), Err(Error::MissingKey { key: "approver", .. })));
    }

    /// Entries of the 1.0 kinds in an `erasure/` run stay valid: a 1.1 verifier accepts
    /// everything a 1.0 one did.
    #[test]
    fn erasure_runs_are_not_reserved_for_other_kinds() {
        let mut e = accepted(None, None);
        e.run = RunId::erasure(&[0x5a; 32]);
        e.seq = 4;
        assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
    }
}
