//! Trust policies: C2SP `tlog-policy` files and their evaluation on a checkpoint (SPEC §8).
//!
//! A policy lists the logs an auditor accepts, the witnesses it knows, groups of witnesses with a
//! threshold, and one quorum:
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <witness vkey> [<url>]
//! group <name> <k | any | all> <member> …
//! quorum <name | none>
//! ```
//!
//! Parsing keeps every rule of the C2SP page: lines end in newlines, fields are separated by
//! spaces and tabs only, blank lines and `#` comment lines are ignored, the only control
//! characters allowed are tab and newline; witnesses and groups share one namespace in which
//! `none` is reserved; a group or the quorum may name only witnesses and groups defined on
//! earlier lines (so there are no cycles); a group has at least one member and `1 <= k <= n`; a
//! name is a group member at most once in the whole file; two logs or two witnesses with the same
//! public key are refused; there is exactly one `quorum` line. Every refusal is an
//! [`Error::MalformedPolicy`] naming the line. Non-ASCII octets are allowed in comments; in the
//! other lines this implementation requires them to be UTF-8 (key names in signed notes are).
//!
//! A checkpoint **satisfies** a policy when its log signature verifies under a `log` key whose
//! name is its origin (or, in a policy without `log` lines, under the log key the caller gives),
//! and the witnesses whose cosignatures verify satisfy the quorum. A cosignature whose timestamp
//! is more than ten minutes after the caller's clock does not count.

use std::collections::HashMap;
use std::fmt;

use crate::checkpoint::Note;
use crate::keys::VerifierKey;
use crate::witness::WitnessKey;
use crate::{Checkpoint, Error, Result};

/// The largest policy file accepted.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// How far in the future (seconds after the verifier's clock) a cosignature timestamp may lie.
pub const MAX_CLOCK_SKEW_SECS: u64 = 10 * 60;

/// A `log` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyLog {
    /// The log's key; its name is the log's origin.
    pub key: VerifierKey,
    /// The optional URL (opaque).
    pub url: Option<String>,
}

/// A `witness` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyWitness {
    /// The witness's name within the policy (not the key name of its signature lines).
    pub name: String,
    /// Its `cosignature/v1` key.
    pub key: WitnessKey,
    /// The optional URL (opaque; for C2SP `tlog-witness`, the submission prefix).
    pub url: Option<String>,
}

/// A member of a group: a witness or an earlier group, by its position in the policy's lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    /// `Policy::witnesses()[i]`.
    Witness(usize),
    /// `Policy::groups()[i]`.
    Group(usize),
}

/// A `group` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// How many members must have witnessed a checkpoint (`any` = 1, `all` = the member count).
    pub threshold: usize,
    /// Its members, in the order written.
    pub members: Vec<Member>,
}

/// The `quorum` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// `quorum none`: no cosignature is required.
    None,
    /// One member (a witness or a group) must have witnessed the checkpoint.
    Of(Member),
}

/// A parsed, valid trust policy. Only [`Policy::parse`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    quorum: Quorum,
}

/// What a name in the shared witness/group namespace refers to, and where it was defined.
#[derive(Clone, Copy)]
struct Defined {
    member: Member,
    line: usize,
}

impl Policy {
    /// Parses a policy file (octets; see the module doc for the rules).
    pub fn parse(input: &[u8]) -> Result<Policy> {
        let bad = |line: usize, reason: String| Error::MalformedPolicy { line, reason };
        if input.len() > MAX_POLICY_BYTES {
            return Err(bad(0, format!("{} bytes, over the {MAX_POLICY_BYTES}-byte limit", input.len())));
        }
        let mut logs: Vec<(PolicyLog, usize)> = Vec::new();
        let mut witnesses: Vec<(PolicyWitness, usize)> = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut names: HashMap<String, Defined> = HashMap::new();
        // Which group (and its line) already lists a name as a member.
        let mut member_of: HashMap<String, (String, usize)> = HashMap::new();
        let mut quorum: Option<(Quorum, usize)> = None;

        // A final line without its newline is accepted, as line-reading tools do.
        let body = input.strip_suffix(b"\n").unwrap_or(input);
        for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            if let Some(&b) = raw.iter().find(|&&b| !(b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80)) {
                return Err(bad(
                    n,
                    format!("byte 0x{b:02x} is not allowed (only tab, newline, printable ASCII and non-ASCII octets)"),
                ));
            }
            let trimmed = trim_ws(raw);
            if trimmed.is_empty() || trimmed[0] == b'#' {
                continue;
            }
            let line = std::str::from_utf8(trimmed)
                .map_err(|_| bad(n, "non-ASCII octets outside a comment must be UTF-8 here".into()))?;
            let fields: Vec<&str> = line.split([' ', '\t']).filter(|f| !f.is_empty()).collect();
            let (keyword, args) = (fields[0], &fields[1..]);
            match keyword {
                "log" => {
                    let (vkey, url) = match args {
                        [vkey] => (vkey, None),
                        [vkey, url] => (vkey, Some(url.to_string())),
                        _ => return Err(bad(n, format!("log takes <vkey> [<url>], found {} fields", args.len()))),
                    };
                    let key: VerifierKey = vkey.parse().map_err(|e| bad(n, format!("log key: {e}")))?;
                    if let Some((_, at)) = logs.iter().find(|(l, _)| l.key.key() == key.key()) {
                        return Err(bad(n, format!("duplicate log: the same public key as line {at}")));
                    }
                    logs.push((PolicyLog { key, url }, n));
                }
                "witness" => {
                    let (name, vkey, url) = match args {
                        [name, vkey] => (name, vkey, None),
                        [name, vkey, url] => (name, vkey, Some(url.to_string())),
                        _ => {
                            return Err(bad(
                                n,
                                format!("witness takes <name> <vkey> [<url>], found {} fields", args.len()),
                            ));
                        }
                    };
                    define(&names, name, n)?;
                    let key: WitnessKey = vkey.parse().map_err(|e| bad(n, format!("witness {name}: {e}")))?;
                    if let Some((w, at)) = witnesses.iter().find(|(w, _)| w.key.public_key() == key.public_key()) {
                        return Err(bad(
                            n,
                            format!("duplicate witness key: {name} has the same public key as {} on line {at}", w.name),
                        ));
                    }
                    names.insert(name.to_string(), Defined { member: Member::Witness(witnesses.len()), line: n });
                    witnesses.push((PolicyWitness { name: name.to_string(), key, url }, n));
                }
                "group" => {
                    let [name, k, member_names @ ..] = args else {
                        return Err(bad(n, "group takes <name> <k|any|all> <member>…".into()));
                    };
                    if member_names.is_empty() {
                        return Err(bad(n, format!("group {name} has no members (at least one is required)")));
                    }
                    define(&names, name, n)?;
                    let count = member_names.len();
                    let threshold = match *k {
                        "all" => count,
                        "any" => 1,
                        k if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => match k.parse::<usize>() {
                            Ok(k) if (1..=count).contains(&k) => k,
                            _ => {
                                return Err(bad(
                                    n,
                                    format!("group {name}: threshold {k} is not between 1 and its {count} members"),
                                ));
                            }
                        },
                        k => {
                            return Err(bad(
                                n,
                                format!("group {name}: threshold {k:?} is not a decimal number, any or all"),
                            ));
                        }
                    };
                    let mut members = Vec::with_capacity(count);
                    for m in member_names {
                        let member = refer(&names, m, n, &format!("group {name}"))?;
                        if let Some((group, at)) = member_of.get(*m) {
                            return Err(bad(
                                n,
                                format!(
                                    "{m} is already a member of group {group} (line {at}); a name may be a member only once"
                                ),
                            ));
                        }
                        member_of.insert(m.to_string(), (name.to_string(), n));
                        members.push(member);
                    }
                    names.insert(name.to_string(), Defined { member: Member::Group(groups.len()), line: n });
                    groups.push(Group { name: name.to_string(), threshold, members });
                }
                "quorum" => {
                    let [name] = args else {
                        return Err(bad(n, format!("quorum takes one name, found {} fields", args.len())));
                    };
                    if let Some((_, at)) = quorum {
                        return Err(bad(n, format!("a second quorum line (the first is line {at})")));
                    }
                    let q = if *name == "none" { Quorum::None } else { Quorum::Of(refer(&names, name, n, "quorum")?) };
                    quorum = Some((q, n));
                }
                other => {
                    return Err(bad(n, format!("unknown keyword {other:?}; expected log, witness, group or quorum")));
                }
            }
        }
        let Some((quorum, _)) = quorum else {
            return Err(bad(0, "no quorum line (exactly one is required; `quorum none` requires no witness)".into()));
        };
        Ok(Policy {
            logs: logs.into_iter().map(|(l, _)| l).collect(),
            witnesses: witnesses.into_iter().map(|(w, _)| w).collect(),
            groups,
            quorum,
        })
    }

    /// The `log` lines, in order.
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// The `witness` lines, in order.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// The `group` lines, in order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The quorum.
    pub fn quorum(&self) -> Quorum {
        self.quorum
    }

    /// The quorum's name: `none`, a witness or a group.
    pub fn quorum_name(&self) -> &str {
        match self.quorum {
            Quorum::None => "none",
            Quorum::Of(m) => self.member_name(m),
        }
    }

    fn member_name(&self, m: Member) -> &str {
        match m {
            Member::Witness(i) => &self.witnesses[i].name,
            Member::Group(i) => &self.groups[i].name,
        }
    }

    /// Evaluates the signed checkpoint `note` under this policy at the verifier's clock `now`
    /// (seconds since the Unix epoch).
    ///
    /// The log signature must verify: under the `log` key named by the checkpoint's origin, or,
    /// when the policy has no `log` line, under `log` (required then; ignored otherwise). Its
    /// failure is an error ([`Error::WrongLog`], [`Error::NoKnownSignature`],
    /// [`Error::BadSignature`] …). Then every witness is looked at; the report says which
    /// cosigned and whether the quorum holds (an unmet quorum is a report, not an error: see
    /// [`Policy::verify`]).
    pub fn evaluate(&self, note: &str, log: Option<&VerifierKey>, now: u64) -> Result<QuorumReport> {
        let parsed = Note::parse(note)?;
        let checkpoint = Checkpoint::parse_text(parsed.text())?;
        let log_key = self.verify_log(&parsed, &checkpoint, log)?;

        let limit = now.saturating_add(MAX_CLOCK_SKEW_SECS);
        let witnesses: Vec<WitnessOutcome> = self
            .witnesses
            .iter()
            .map(|w| {
                let mut state = WitnessState::NoCosignature;
                for sig in parsed.signatures().iter().filter(|s| w.key.is_signer_of(s)) {
                    state = match w.key.verify(parsed.text(), sig) {
                        Ok(timestamp) if timestamp <= limit => WitnessState::Cosigned { timestamp },
                        Ok(timestamp) => WitnessState::InTheFuture { timestamp },
                        Err(Error::BadSignature { .. }) => WitnessState::BadSignature,
                        Err(Error::MalformedCosignature(why)) => WitnessState::Malformed(why),
                        Err(e) => WitnessState::Malformed(e.to_string()),
                    };
                    if matches!(state, WitnessState::Cosigned { .. }) {
                        break;
                    }
                }
                WitnessOutcome { name: w.name.clone(), state }
            })
            .collect();

        // Groups only name earlier groups, so one pass in order decides each of them.
        let witnessed = |m: Member, groups_ok: &[bool]| match m {
            Member::Witness(i) => matches!(witnesses[i].state, WitnessState::Cosigned { .. }),
            Member::Group(i) => groups_ok[i],
        };
        let mut groups_ok = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let count = g.members.iter().filter(|&&m| witnessed(m, &groups_ok)).count();
            groups_ok.push(count >= g.threshold);
        }
        let satisfied = match self.quorum {
            Quorum::None => true,
            Quorum::Of(m) => witnessed(m, &groups_ok),
        };
        Ok(QuorumReport { checkpoint, log: log_key, quorum: self.quorum_name().to_string(), witnesses, satisfied })
    }

    /// Like [`Policy::evaluate`], but an unmet quorum is [`Error::WitnessQuorum`] naming the
    /// witnesses that did and did not cosign; returns the checkpoint when the policy is satisfied.
    pub fn verify(&self, note: &str, log: Option<&VerifierKey>, now: u64) -> Result<Checkpoint> {
        let report = self.evaluate(note, log, now)?;
        if !report.satisfied {
            return Err(Error::WitnessQuorum {
                cosigned: report.cosigned().into_iter().map(str::to_string).collect(),
                missing: report.not_cosigned(),
            });
        }
        Ok(report.checkpoint)
    }

    /// Checks that the policy agrees with a verifier's trusted log key: a policy with `log`
    /// lines must list `key` among them ([`Error::PolicyLogMismatch`] otherwise); a policy
    /// without any trusts the key it is given.
    pub fn check_log(&self, key: &VerifierKey) -> Result<()> {
        if self.logs.is_empty() || self.logs.iter().any(|l| l.key == *key) {
            return Ok(());
        }
        Err(Error::PolicyLogMismatch {
            listed: self.logs.iter().map(|l| l.key.to_string()).collect(),
            trusted: key.to_string(),
        })
    }

    fn verify_log(&self, note: &Note, checkpoint: &Checkpoint, given: Option<&VerifierKey>) -> Result<VerifierKey> {
        let candidates: Vec<&VerifierKey> = if self.logs.is_empty() {
            let key = given.ok_or_else(|| Error::MalformedPolicy {
                line: 0,
                reason: "the policy lists no log and no log key was given".into(),
            })?;
            vec![key]
        } else {
            self.logs.iter().map(|l| &l.key).collect()
        };
        let named: Vec<&VerifierKey> = candidates.iter().copied().filter(|k| k.name() == checkpoint.origin).collect();
        if named.is_empty() {
            let expected = candidates.iter().map(|k| k.name()).collect::<Vec<_>>().join(" or ");
            return Err(Error::WrongLog { found: checkpoint.origin.clone(), expected });
        }
        // Several keys may share an origin (a rotated log key): one verifying is enough; otherwise
        // a line that fails to verify is the error to report, before a missing one.
        let mut first_err = None;
        for key in named {
            match note.verify(key) {
                Ok(()) => return Ok(key.clone()),
                Err(e @ Error::BadSignature { .. }) => return Err(e),
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        Err(first_err.expect("at least one candidate"))
    }
}

/// Prints the policy in canonical form: logs, witnesses, groups in order, then the quorum;
/// single spaces, no comments. Parsing it gives the same policy.
impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = |u: &Option<String>| u.as_ref().map(|u| format!(" {u}")).unwrap_or_default();
        for l in &self.logs {
            writeln!(f, "log {}{}", l.key, url(&l.url))?;
        }
        for w in &self.witnesses {
            writeln!(f, "witness {} {}{}", w.name, w.key, url(&w.url))?;
        }
        for g in &self.groups {
            write!(f, "group {} {}", g.name, g.threshold)?;
            for &m in &g.members {
                write!(f, " {}", self.member_name(m))?;
            }
            writeln!(f)?;
        }
        match self.quorum {
            Quorum::None => writeln!(f, "quorum none"),
            Quorum::Of(m) => writeln!(f, "quorum {}", self.member_name(m)),
        }
    }
}

/// Trims ASCII spaces and tabs (the only whitespace of the format) from both ends.
fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Checks that `name` may be defined on line `n`: not `none`, not defined before.
fn define(names: &HashMap<String, Defined>, name: &str, n: usize) -> Result<()> {
    if name == "none" {
        return Err(Error::MalformedPolicy { line: n, reason: "the name none is reserved".into() });
    }
    if let Some(d) = names.get(name) {
        return Err(Error::MalformedPolicy {
            line: n,
            reason: format!("duplicate name {name}: already defined on line {}", d.line),
        });
    }
    Ok(())
}

/// Resolves a reference to a witness or group defined on an earlier line.
fn refer(names: &HashMap<String, Defined>, name: &str, n: usize, within: &str) -> Result<Member> {
    if name == "none" {
        return Err(Error::MalformedPolicy { line: n, reason: format!("{within}: none cannot be a group member") });
    }
    names.get(name).map(|d| d.member).ok_or_else(|| Error::MalformedPolicy {
        line: n,
        reason: format!("{within}: {name} is not a witness or group defined on an earlier line"),
    })
}

/// How one witness of the policy stands on a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessState {
    /// A cosignature verified, with this timestamp.
    Cosigned {
        /// Its timestamp.
        timestamp: u64,
    },
    /// No line of the witness's key name and key id.
    NoCosignature,
    /// A line of its key that does not verify.
    BadSignature,
    /// A line of its key that is not a `cosignature/v1` signature (length, timestamp range).
    Malformed(String),
    /// A verified cosignature whose timestamp is more than ten minutes after the verifier's clock.
    InTheFuture {
        /// Its timestamp.
        timestamp: u64,
    },
}

impl fmt::Display for WitnessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WitnessState::Cosigned { timestamp } => write!(f, "cosigned at {timestamp}"),
            WitnessState::NoCosignature => write!(f, "no cosignature"),
            WitnessState::BadSignature => write!(f, "bad signature"),
            WitnessState::Malformed(why) => write!(f, "malformed cosignature: {why}"),
            WitnessState::InTheFuture { timestamp } => write!(f, "timestamp {timestamp} is in the future"),
        }
    }
}

/// One witness of the policy and how it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessOutcome {
    /// Its name in the policy.
    pub name: String,
    /// Whether and how it cosigned.
    pub state: WitnessState,
}

/// The outcome of [`Policy::evaluate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumReport {
    /// The checkpoint, whose log signature verified.
    pub checkpoint: Checkpoint,
    /// The log key it verified under.
    pub log: VerifierKey,
    /// The quorum's name (`none`, a witness or a group).
    pub quorum: String,
    /// Every witness of the policy, in policy order.
    pub witnesses: Vec<WitnessOutcome>,
    /// Whether the quorum holds.
    pub satisfied: bool,
}

impl QuorumReport {
    /// The policy names of the witnesses whose cosignatures verified.
    pub fn cosigned(&self) -> Vec<&str> {
        self.witnesses
            .iter()
            .filter(|w| matches!(w.state, WitnessState::Cosigned { .. }))
            .map(|w| w.name.as_str())
            .collect()
    }

    /// The other witnesses, each as `<name> (<why>)`.
    pub fn not_cosigned(&self) -> Vec<String> {
        self.witnesses
            .iter()
            .filter(|w| !matches!(w.state, WitnessState::Cosigned { .. }))
            .map(|w| format!("{} ({})", w.name, w.state))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::witness::Cosignature;
    use crate::{Checkpoint, NamedKey};

    const NOW: u64 = 1_700_000_000;

    fn log_key() -> NamedKey {
        NamedKey::from_seed("example.com/log", [9; 32]).unwrap()
    }

    fn witness(i: u8) -> NamedKey {
        NamedKey::from_seed(&format!("witness.example/w{i}"), [100 + i; 32]).unwrap()
    }

    fn wkey(i: u8) -> String {
        WitnessKey::of(&witness(i)).to_string()
    }

    fn note() -> String {
        let k = log_key();
        Checkpoint { origin: k.name().into(), size: 10, root: [3; 32], extensions: vec![] }.sign(&k)
    }

    /// `note` cosigned by the witnesses `who` at `NOW`.
    fn cosigned(note: &str, who: &[u8]) -> String {
        let text = Note::parse(note).unwrap().text().to_string();
        let mut out = note.to_string();
        for &i in who {
            out.push_str(&Cosignature::sign(&text, &witness(i), NOW).unwrap().to_line());
        }
        out
    }

    /// The error of parsing `text`: its line and reason.
    fn refusal(text: &str) -> (usize, String) {
        match Policy::parse(text.as_bytes()) {
            Err(Error::MalformedPolicy { line, reason }) => (line, reason),
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    fn assert_refused(text: &str, line: usize, why: &str) {
        let (l, reason) = refusal(text);
        assert_eq!(l, line, "{text:?}: {reason}");
        assert!(reason.contains(why), "{text:?}: {reason:?} lacks {why:?}");
    }

    /// The C2SP example: two levels of groups.
    fn example() -> String {
        format!(
            "log {log}\n\nwitness X1 {}\nwitness X2 {}\nwitness X3 {}\ngroup X-witnesses 2 X1 X2 X3\n\n\
             witness Y1 {}\nwitness Y2 {}\nwitness Y3 {}\ngroup Y-witnesses any Y1 Y2 Y3\n\n\
             group X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n",
            wkey(1),
            wkey(2),
            wkey(3),
            wkey(4),
            wkey(5),
            wkey(6),
            log = log_key().verifier()
        )
    }

    #[test]
    fn parses_the_c2sp_example() {
        let p = Policy::parse(example().as_bytes()).unwrap();
        assert_eq!(p.logs().len(), 1);
        assert_eq!(p.witnesses().len(), 6);
        assert_eq!(p.groups().len(), 3);
        assert_eq!(p.groups()[0].threshold, 2);
        assert_eq!(p.groups()[1].threshold, 1);
        assert_eq!(p.groups()[2].threshold, 2);
        assert_eq!(p.groups()[2].members, vec![Member::Group(0), Member::Group(1)]);
        assert_eq!(p.quorum(), Quorum::Of(Member::Group(2)));
        // The canonical form parses back to the same policy.
        assert_eq!(Policy::parse(p.to_string().as_bytes()).unwrap(), p);
    }

    #[test]
    fn comments_blank_lines_tabs_urls_and_no_final_newline() {
        let text = format!(
            "# a comment\n   # an indented comment with \u{e9} and bytes\n\t\n  \nlog\t{}  https://log.example/  \n\
             \twitness  W1 {} https://w1.example/add\nquorum W1",
            log_key().verifier(),
            wkey(1)
        );
        let p = Policy::parse(text.as_bytes()).unwrap();
        assert_eq!(p.logs()[0].url.as_deref(), Some("https://log.example/"));
        assert_eq!(p.witnesses()[0].url.as_deref(), Some("https://w1.example/add"));
        assert_eq!(p.witnesses()[0].name, "W1");
        assert_eq!(p.quorum(), Quorum::Of(Member::Witness(0)));
        // A comment may hold octets that are not UTF-8.
        let mut raw = b"# \xff\xfe\n".to_vec();
        raw.extend_from_slice(b"quorum none\n");
        assert_eq!(Policy::parse(&raw).unwrap().quorum(), Quorum::None);
    }

    #[test]
    fn quorum_none_needs_no_witness_or_log() {
        let p = Policy::parse(b"quorum none\n").unwrap();
        assert!(p.logs().is_empty() && p.witnesses().is_empty());
        assert_eq!(p.quorum(), Quorum::None);
    }

    #[test]
    fn line_and_character_refusals() {
        assert_refused("quorum none\r\n", 1, "byte 0x0d");
        assert_refused("# ok\nquorum\x01 none\n", 2, "byte 0x01");
        assert_refused("quorum none\n\x7f\n", 2, "byte 0x7f");
        let e = Policy::parse(b"quorum none\nwitness \xff w\n").unwrap_err();
        assert!(matches!(&e, Error::MalformedPolicy { line: 2, reason } if reason.contains("UTF-8")), "{e}");
        assert_refused("frobnicate x\nquorum none\n", 1, "unknown keyword \"frobnicate\"");
        assert_refused("Quorum none\n", 1, "unknown keyword");
        assert_refused("# nothing\n\n", 0, "no quorum line");
        assert_refused("", 0, "no quorum line");
        let big = format!("{}quorum none\n", "#\n".repeat(MAX_POLICY_BYTES));
        assert_refused(&big, 0, "over the");
    }

    #[test]
    fn log_refusals() {
        let log = log_key().verifier();
        assert_refused("log\nquorum none\n", 1, "log takes <vkey> [<url>], found 0");
        assert_refused(&format!("log {log} u extra\nquorum none\n"), 1, "found 3");
        assert_refused("log nonsense\nquorum none\n", 1, "log key: malformed verifier key");
        // A witness key (type 0x04) is not a log key.
        assert_refused(&format!("log {}\nquorum none\n", wkey(1)), 1, "not Ed25519 (0x01)");
        // The same public key twice, even under another name, is a duplicate.
        let renamed = NamedKey::from_seed("other.example/log", [9; 32]).unwrap().verifier();
        assert_refused(
            &format!("log {log}\n\nlog {renamed}\nquorum none\n"),
            3,
            "duplicate log: the same public key as line 1",
        );
    }

    #[test]
    fn witness_refusals() {
        assert_refused("witness W1\nquorum none\n", 1, "witness takes <name> <vkey> [<url>], found 1");
        assert_refused(&format!("witness W1 {} u x\nquorum none\n", wkey(1)), 1, "found 4");
        assert_refused(&format!("witness none {}\nquorum none\n", wkey(1)), 1, "reserved");
        assert_refused("witness W1 junk\nquorum none\n", 1, "witness W1: malformed verifier key");
        // A log key (type 0x01) is not a witness key.
        let e = refusal(&format!("witness W1 {}\nquorum none\n", log_key().verifier())).1;
        assert!(e.contains("type 0x01 is a log"), "{e}");
        assert_refused(
            &format!("witness W1 {}\nwitness W1 {}\nquorum none\n", wkey(1), wkey(2)),
            2,
            "duplicate name W1: already defined on line 1",
        );
        // The same key under another witness name, and under another key name.
        assert_refused(
            &format!("witness W1 {}\nwitness W2 {}\nquorum none\n", wkey(1), wkey(1)),
            2,
            "W2 has the same public key as W1 on line 1",
        );
        let renamed = WitnessKey::of(&NamedKey::from_seed("renamed.example", [101; 32]).unwrap());
        assert_refused(
            &format!("witness W1 {}\nwitness W2 {renamed}\nquorum none\n", wkey(1)),
            2,
            "duplicate witness key",
        );
    }

    #[test]
    fn group_refusals() {
        let ws = format!("witness A {}\nwitness B {}\nwitness C {}\n", wkey(1), wkey(2), wkey(3));
        let case = |group: &str| format!("{ws}{group}\nquorum none\n");
        assert_refused(&case("group G"), 4, "group takes <name> <k|any|all> <member>");
        assert_refused(&case("group G 1"), 4, "group G has no members");
        assert_refused(&case("group G all"), 4, "no members");
        assert_refused(&case("group G 0 A B"), 4, "threshold 0 is not between 1 and its 2 members");
        assert_refused(&case("group G 3 A B"), 4, "threshold 3 is not between 1 and its 2 members");
        assert_refused(&case("group G 99999999999999999999999 A"), 4, "not between");
        assert_refused(&case("group G -1 A"), 4, "threshold \"-1\" is not a decimal number, any or all");
        assert_refused(&case("group G some A"), 4, "not a decimal number");
        assert_refused(&case("group G ALL A"), 4, "not a decimal number");
        assert_refused(&case("group none any A"), 4, "reserved");
        assert_refused(&case("group A any B"), 4, "duplicate name A: already defined on line 1");
        assert_refused(&case("group G any A none"), 4, "none cannot be a group member");
        assert_refused(&case("group G any A D"), 4, "group G: D is not a witness or group defined on an earlier line");
        // A forward reference (to a later witness or group) and a reference to itself.
        assert_refused(&format!("group G any A\n{ws}quorum none\n"), 1, "A is not a witness or group defined");
        assert_refused(&case("group G any G"), 4, "G is not a witness or group defined");
        assert_refused(
            &format!("{ws}group G any A H\ngroup H any B\nquorum none\n"),
            4,
            "H is not a witness or group defined on an earlier line",
        );
        // A name is a member at most once: in the same group, and across groups.
        assert_refused(&case("group G 1 A A"), 4, "A is already a member of group G (line 4)");
        assert_refused(
            &format!("{ws}group G any A B\ngroup H any A C\nquorum none\n"),
            5,
            "A is already a member of group G (line 4); a name may be a member only once",
        );
        // Groups of groups are fine; a group and a witness share the namespace.
        let ok = format!("{ws}group G any A B\ngroup H all G C\nquorum H\n");
        assert!(Policy::parse(ok.as_bytes()).is_ok());
        assert_refused(&format!("{ws}group G any A\nwitness G {}\nquorum none\n", wkey(4)), 5, "duplicate name G");
    }

    #[test]
    fn quorum_refusals() {
        let w = format!("witness A {}\n", wkey(1));
        assert_refused("quorum\n", 1, "quorum takes one name, found 0");
        assert_refused("quorum a b\n", 1, "found 2");
        assert_refused("quorum none\nquorum none\n", 2, "a second quorum line (the first is line 1)");
        assert_refused(&format!("quorum A\n{w}"), 1, "quorum: A is not a witness or group defined on an earlier line");
        assert_refused(&format!("{w}quorum B\n"), 2, "quorum: B is not");
        // Lines after the quorum are allowed (only references must point backwards).
        assert!(Policy::parse(format!("{w}quorum A\nlog {}\n", log_key().verifier()).as_bytes()).is_ok());
    }

    #[test]
    fn two_levels_of_groups_evaluate() {
        let p = Policy::parse(example().as_bytes()).unwrap();
        let n = note();
        // (X-witnesses: 2 of 3) and (Y-witnesses: any).
        let cases: &[(&[u8], bool)] = &[
            (&[], false),
            (&[1, 2], false),
            (&[4, 5, 6], false),
            (&[1, 4], false),
            (&[1, 2, 4], true),
            (&[2, 3, 6], true),
            (&[1, 2, 3, 4, 5, 6], true),
        ];
        for &(who, expected) in cases {
            let r = p.evaluate(&cosigned(&n, who), None, NOW).unwrap();
            assert_eq!(r.satisfied, expected, "{who:?}: {r:?}");
            let names: Vec<String> =
                who.iter().map(|&i| if i <= 3 { format!("X{i}") } else { format!("Y{}", i - 3) }).collect();
            assert_eq!(r.cosigned(), names);
            assert_eq!(r.not_cosigned().len(), 6 - who.len());
            assert_eq!(r.quorum, "X-and-Y");
            assert_eq!(r.checkpoint.size, 10);
        }
        let e = p.verify(&cosigned(&n, &[1, 4]), None, NOW).unwrap_err();
        let Error::WitnessQuorum { cosigned: did, missing } = &e else { panic!("{e}") };
        assert_eq!(did, &["X1", "Y1"]);
        assert_eq!(missing[0], "X2 (no cosignature)");
        assert!(e.to_string().contains("cosigned by [X1, Y1], not by [X2 (no cosignature), X3"), "{e}");
        assert_eq!(p.verify(&cosigned(&n, &[1, 3, 5]), None, NOW).unwrap().size, 10);
    }

    #[test]
    fn quorum_of_one_witness_and_none() {
        let p = Policy::parse(format!("witness A {}\nquorum A\n", wkey(1)).as_bytes()).unwrap();
        let n = note();
        let log = log_key().verifier();
        assert!(p.evaluate(&cosigned(&n, &[1]), Some(&log), NOW).unwrap().satisfied);
        assert!(!p.evaluate(&cosigned(&n, &[2]), Some(&log), NOW).unwrap().satisfied);
        let none = Policy::parse(b"quorum none\n").unwrap();
        let r = none.evaluate(&n, Some(&log), NOW).unwrap();
        assert!(r.satisfied && r.witnesses.is_empty());
    }

    #[test]
    fn bad_future_and_foreign_cosignatures_do_not_count() {
        let p = Policy::parse(
            format!("witness A {}\nwitness B {}\ngroup G any A B\nquorum G\n", wkey(1), wkey(2)).as_bytes(),
        )
        .unwrap();
        let log = log_key().verifier();
        let n = note();
        let text = Note::parse(&n).unwrap().text().to_string();
        // A's line signed over other text; B's line ten minutes and one second ahead.
        let bad = Cosignature::sign("other\n", &witness(1), NOW).unwrap();
        let future = Cosignature::sign(&text, &witness(2), NOW + MAX_CLOCK_SKEW_SECS + 1).unwrap();
        // A stranger's valid cosignature is ignored.
        let stranger = Cosignature::sign(&text, &witness(7), NOW).unwrap();
        let all = format!("{n}{}{}{}", bad.to_line(), future.to_line(), stranger.to_line());
        let r = p.evaluate(&all, Some(&log), NOW).unwrap();
        assert!(!r.satisfied);
        assert_eq!(r.witnesses[0].state, WitnessState::BadSignature);
        assert_eq!(r.witnesses[1].state, WitnessState::InTheFuture { timestamp: NOW + 601 });
        assert_eq!(r.witnesses.len(), 2);
        // At exactly ten minutes ahead it counts.
        let edge = Cosignature::sign(&text, &witness(2), NOW + MAX_CLOCK_SKEW_SECS).unwrap();
        let r = p.evaluate(&format!("{all}{}", edge.to_line()), Some(&log), NOW).unwrap();
        assert!(r.satisfied);
        assert_eq!(r.cosigned(), ["B"]);
        // A line of A's key that is not 72 bytes is reported as malformed.
        let mut short = Cosignature::sign(&text, &witness(1), NOW).unwrap().to_note_signature();
        short.signature.truncate(64);
        let mut raw = short.key_id.to_vec();
        raw.extend_from_slice(&short.signature);
        let line = format!(
            "\u{2014} {} {}\n",
            short.name,
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw)
        );
        let r = p.evaluate(&format!("{n}{line}"), Some(&log), NOW).unwrap();
        assert!(matches!(&r.witnesses[0].state, WitnessState::Malformed(why) if why.contains("expected 72")));
        assert!(r.not_cosigned()[0].starts_with("A (malformed cosignature"));
    }

    #[test]
    fn the_log_signature_is_required() {
        let n = cosigned(&note(), &[1]);
        let with_log =
            Policy::parse(format!("log {}\nwitness A {}\nquorum A\n", log_key().verifier(), wkey(1)).as_bytes())
                .unwrap();
        assert!(with_log.evaluate(&n, None, NOW).unwrap().satisfied);
        // A log line of the same origin but another key: no known signature.
        let other = NamedKey::from_seed("example.com/log", [8; 32]).unwrap().verifier();
        let p = Policy::parse(format!("log {other}\nwitness A {}\nquorum A\n", wkey(1)).as_bytes()).unwrap();
        assert!(matches!(p.evaluate(&n, None, NOW), Err(Error::NoKnownSignature { .. })));
        // Both keys listed (a rotation): the one that signed is enough.
        let both = format!("log {other}\nlog {}\nwitness A {}\nquorum A\n", log_key().verifier(), wkey(1));
        let r = Policy::parse(both.as_bytes()).unwrap().evaluate(&n, None, NOW).unwrap();
        assert_eq!(r.log, log_key().verifier());
        // Another origin.
        let foreign = NamedKey::from_seed("elsewhere.example", [9; 32]).unwrap().verifier();
        let p = Policy::parse(format!("log {foreign}\nquorum none\n").as_bytes()).unwrap();
        assert!(matches!(p.evaluate(&n, None, NOW), Err(Error::WrongLog { .. })));
        // A tampered body fails the log signature before any witness is looked at.
        let tampered = n.replacen("\n10\n", "\n11\n", 1);
        assert!(matches!(with_log.evaluate(&tampered, None, NOW), Err(Error::BadSignature { .. })));
        // Without log lines the caller's key is used, and is required.
        let no_log = Policy::parse(format!("witness A {}\nquorum A\n", wkey(1)).as_bytes()).unwrap();
        assert!(no_log.evaluate(&n, Some(&log_key().verifier()), NOW).unwrap().satisfied);
        assert!(matches!(no_log.evaluate(&n, Some(&other), NOW), Err(Error::NoKnownSignature { .. })));
        assert!(matches!(no_log.evaluate(&n, None, NOW), Err(Error::MalformedPolicy { line: 0, .. })));
        assert!(matches!(no_log.evaluate("not a note", None, NOW), Err(Error::MalformedNote(_))));
    }
}
