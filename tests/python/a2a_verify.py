#!/usr/bin/env python3
"""Independent verifier for the a2a-ledger wire and storage formats.

Written from the normative SPEC (shared/SPEC.md, "a2a-ledger wire and storage formats") alone,
plus RFC 9162 (Merkle trees), RFC 8949 (CBOR) and C2SP signed-note / tlog-checkpoint /
tlog-cosignature / tlog-policy. It shares no
code with the Rust implementation; it exists to catch the two drifting apart.

Dependencies: blake3, pynacl (libsodium: strict Ed25519), cbor2, standard library.

CLI (one JSON object on stdout; exit 0 = valid, 1 = invalid, 2 = could not check):

    python3 a2a_verify.py receipt RECEIPT.json --log LOG.json [--policy POLICY]
    python3 a2a_verify.py pack PATH(.tar|dir) --log LOG.json [--policy POLICY] [-q]
    python3 a2a_verify.py checkpoint NOTE_FILE --log LOG.json
    python3 a2a_verify.py consistency --log LOG.json OLD_NOTE NEW_NOTE --proof PROOF.json
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import sys
import tarfile
import time
from dataclasses import dataclass
from typing import Any, Callable

import blake3 as _blake3
import cbor2
import nacl.exceptions
import nacl.signing

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class Invalid(Exception):
    """The input was checked and is not valid (exit 1)."""


class Unchecked(Exception):
    """The input could not be checked at all: unreadable file, bad JSON, bad trust anchor (exit 2)."""


class StepFailure(Invalid):
    """A receipt verification step (SPEC §5, 1..5, or "witness quorum" under a trust policy,
    SPEC §8) failed, optionally for one log index; `extra` goes into the JSON report."""

    def __init__(self, step: int | str, index: int | None, reason: str, extra: dict | None = None):
        super().__init__(reason)
        self.step = step
        self.index = index
        self.reason = reason
        self.extra = extra or {}


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def b64decode_strict(s: Any, what: str) -> bytes:
    """RFC 4648 standard base64 with padding, canonical (SPEC §5: "Base64 is RFC 4648 standard
    with padding"). Rejects non-alphabet characters, missing padding and non-zero trailing bits
    (checked by re-encoding)."""
    if not isinstance(s, str):
        raise ValueError(f"{what}: expected a base64 string")
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"{what}: bad base64 ({exc})") from None
    if base64.b64encode(raw).decode("ascii") != s:
        raise ValueError(f"{what}: non-canonical base64")
    return raw


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def is_int(x: Any) -> bool:
    """A JSON/CBOR integer that is not a bool (bool is a subclass of int in Python)."""
    return type(x) is int


def blake3_256(data: bytes) -> bytes:
    return _blake3.blake3(data).digest()


def ed25519_verify_strict(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """SPEC §4: strict Ed25519. pynacl calls libsodium's crypto_sign_open, which rejects a
    small-order or non-canonical public key, a small-order R and a non-canonical S."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
        return True
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError, ValueError):
        return False


# --- Ed25519 point validity (SPEC §4: the ledger refuses identity keys of small order or not a
# valid point). Pure-Python decompression per RFC 8032 §5.1.3 and a [8]P == identity test.
_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _ed_decompress(b: bytes) -> tuple[int, int] | None:
    if len(b) != 32:
        return None
    y = int.from_bytes(b, "little") & ((1 << 255) - 1)
    sign = b[31] >> 7
    if y >= _P:  # non-canonical encoding of y
        return None
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x2 = u * pow(v, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None  # not on the curve
    if x == 0 and sign == 1:
        return None  # RFC 8032: decoding fails
    if (x & 1) != sign:
        x = _P - x
    return x, y


def _ed_add(p1: tuple[int, int], p2: tuple[int, int]) -> tuple[int, int]:
    # Complete twisted Edwards addition (a = -1): valid for all inputs on edwards25519.
    x1, y1 = p1
    x2, y2 = p2
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, _P - 2, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P
    return x3, y3


def ed25519_key_ok(pk: bytes) -> bool:
    """True when pk is a canonical encoding of a curve point that is not of small order."""
    pt = _ed_decompress(pk)
    if pt is None:
        return False
    q = pt
    for _ in range(3):  # [8]P
        q = _ed_add(q, q)
    return q != (0, 1)


# ---------------------------------------------------------------------------------------------
# SPEC §1: the tree (RFC 9162 §2.1)
# ---------------------------------------------------------------------------------------------

HASHES: dict[str, Callable[[bytes], bytes]] = {
    "blake3": blake3_256,
    "sha256": lambda d: hashlib.sha256(d).digest(),
}


class Tree:
    """Tree hashing for one log hash function H (SPEC §1)."""

    def __init__(self, hash_name: str):
        if hash_name not in HASHES:
            raise ValueError(f"unknown tree hash {hash_name!r}")
        self.name = hash_name
        self.H = HASHES[hash_name]

    def empty_root(self) -> bytes:
        return self.H(b"")

    def leaf(self, entry: bytes) -> bytes:
        return self.H(b"\x00" + entry)

    def node(self, left: bytes, right: bytes) -> bytes:
        return self.H(b"\x01" + left + right)

    # -- RFC 9162 §2.1.1 (naive; used for small folds and by the tests) -----------------------
    def root_of_leaf_hashes(self, leaves: list[bytes]) -> bytes:
        n = len(leaves)
        if n == 0:
            return self.empty_root()
        if n == 1:
            return leaves[0]
        k = largest_power_of_two_below(n)
        return self.node(self.root_of_leaf_hashes(leaves[:k]), self.root_of_leaf_hashes(leaves[k:]))

    # -- RFC 9162 §2.1.3.2: verify an inclusion proof ---------------------------------------
    def verify_inclusion(self, leaf_index: int, tree_size: int, leaf_hash: bytes,
                         proof: list[bytes], root: bytes) -> bool:
        if leaf_index < 0 or leaf_index >= tree_size:          # step 1
            return False
        fn, sn = leaf_index, tree_size - 1                      # step 2
        r = leaf_hash                                           # step 3
        for p in proof:                                         # step 4
            if sn == 0:                                         # 4a
                return False
            if (fn & 1) or fn == sn:                            # 4b
                r = self.node(p, r)
                if not (fn & 1):
                    while not (fn & 1) and fn != 0:
                        fn >>= 1
                        sn >>= 1
            else:
                r = self.node(r, p)
            fn >>= 1                                            # 4c
            sn >>= 1
        return sn == 0 and r == root                            # step 5

    # -- RFC 9162 §2.1.4.2: verify a consistency proof --------------------------------------
    def verify_consistency(self, first: int, second: int, first_hash: bytes,
                           second_hash: bytes, proof: list[bytes]) -> bool:
        # Edge cases RFC 9162 leaves to the caller (its algorithm assumes 0 < first < second):
        # from size 0 or between equal sizes the proof is empty (SPEC §6: "empty when e == n").
        if first < 0 or second < first:
            return False
        if first == second:
            return len(proof) == 0 and first_hash == second_hash
        if first == 0:
            return len(proof) == 0 and first_hash == self.empty_root()
        if len(proof) == 0:                                     # step 1
            return False
        path = list(proof)
        if first & (first - 1) == 0:                            # step 2: first is a power of 2
            path = [first_hash] + path
        fn, sn = first - 1, second - 1                          # step 3
        while fn & 1:                                           # step 4
            fn >>= 1
            sn >>= 1
        fr = sr = path[0]                                       # step 5
        for c in path[1:]:                                      # step 6
            if sn == 0:                                         # 6a
                return False
            if (fn & 1) or fn == sn:                            # 6b
                fr = self.node(c, fr)
                sr = self.node(c, sr)
                if not (fn & 1):
                    while not (fn & 1) and fn != 0:
                        fn >>= 1
                        sn >>= 1
            else:
                sr = self.node(sr, c)
            fn >>= 1                                            # 6c
            sn >>= 1
        return fr == first_hash and sr == second_hash and sn == 0   # step 7

    # -- Compact ranges (SPEC §6) -----------------------------------------------------------
    def compact_append(self, rng: list[tuple[int, bytes]], leaf_hash: bytes) -> None:
        """Append one leaf to a compact range [0, s) held as (subtree size, root) pairs, largest
        first; merges equal-sized neighbours so the list stays one subtree per set bit."""
        rng.append((1, leaf_hash))
        while len(rng) >= 2 and rng[-1][0] == rng[-2][0]:
            (sz, right), (_, left) = rng.pop(), rng.pop()
            rng.append((2 * sz, self.node(left, right)))

    def compact_fold(self, rng: list[tuple[int, bytes]]) -> bytes:
        """Fold a compact range [0, s) right to left with NH into root(s)."""
        if not rng:
            return self.empty_root()
        acc = rng[-1][1]
        for _, h in reversed(rng[:-1]):
            acc = self.node(h, acc)
        return acc


def largest_power_of_two_below(n: int) -> int:
    """RFC 9162 §2.1.1: the largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def compact_sizes(s: int) -> list[int]:
    """Sizes of the perfect subtrees [0, s) decomposes into, largest first (one per set bit)."""
    return [1 << b for b in range(s.bit_length() - 1, -1, -1) if s >> b & 1]


# ---------------------------------------------------------------------------------------------
# SPEC §4: log descriptor, verifier key, signed notes and checkpoints
# ---------------------------------------------------------------------------------------------

EM_DASH = "\u2014"


def key_id(name: str, pub: bytes) -> bytes:
    """SPEC §4: first 4 bytes of SHA-256(name || 0x0A || 0x01 || public_key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n\x01" + pub).digest()[:4]


@dataclass
class VerifierKey:
    name: str
    key_id: bytes
    public_key: bytes

    @staticmethod
    def parse(vkey: str) -> "VerifierKey":
        """`<name>+<8 lowercase hex key id>+<base64(0x01 || public_key)>`. The name cannot contain
        '+' (C2SP signed-note) while standard base64 can, so split at the first two '+'."""
        if not isinstance(vkey, str):
            raise ValueError("vkey is not a string")
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise ValueError("vkey: expected <name>+<keyid>+<key>")
        name, hexid, keyb64 = parts
        if not name or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            raise ValueError("vkey: bad key name")
        if not re.fullmatch(r"[0-9a-f]{8}", hexid):
            raise ValueError("vkey: key id must be 8 lowercase hex digits")
        raw = b64decode_strict(keyb64, "vkey key")
        if len(raw) != 33 or raw[0] != 0x01:
            raise ValueError("vkey: key must be 0x01 || 32-byte Ed25519 public key")
        pub = raw[1:]
        if key_id(name, pub).hex() != hexid:
            raise ValueError("vkey: key id does not match the key")
        return VerifierKey(name, bytes.fromhex(hexid), pub)


@dataclass
class LogDescriptor:
    """SPEC §4: {"origin", "hash", "vkey"}."""
    origin: str
    hash: str
    vkey: str
    key: VerifierKey
    tree: Tree

    def as_json(self) -> dict:
        return {"origin": self.origin, "hash": self.hash, "vkey": self.vkey}

    @staticmethod
    def from_json(obj: Any) -> "LogDescriptor":
        if not isinstance(obj, dict):
            raise ValueError("log descriptor is not a JSON object")
        if set(obj) != {"origin", "hash", "vkey"}:
            raise ValueError(f"log descriptor must have exactly origin, hash, vkey (has {sorted(obj)})")
        origin, h, vkey = obj["origin"], obj["hash"], obj["vkey"]
        if not isinstance(origin, str) or not origin:
            raise ValueError("log descriptor: origin must be a non-empty string")
        if h not in HASHES:
            raise ValueError(f"log descriptor: hash must be blake3 or sha256, got {h!r}")
        key = VerifierKey.parse(vkey)
        if key.name != origin:  # SPEC §4: "the key name equals the origin"
            raise ValueError("log descriptor: vkey name differs from origin")
        return LogDescriptor(origin, h, vkey, key, Tree(h))


@dataclass
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: list[str]
    text: str


def parse_signed_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """C2SP signed-note: the text ends at the LAST blank line; each following line is
    `— <name> <base64(key id || signature)>`. Returns (text incl. its final newline, sigs)."""
    if not isinstance(note, str):
        raise Invalid("note is not text")
    for c in note:
        if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F:
            raise Invalid("note contains a control character")
    idx = note.rfind("\n\n")
    if idx < 0:
        raise Invalid("note has no blank line before the signatures")
    text, sigblock = note[: idx + 1], note[idx + 2:]
    if not text.strip("\n"):
        raise Invalid("note text is empty")
    if not sigblock or not sigblock.endswith("\n"):
        raise Invalid("note has no signature lines, or they do not end in a newline")
    sigs = []
    for line in sigblock[:-1].split("\n"):
        m = re.fullmatch(EM_DASH + r" ([^ +]+) ([A-Za-z0-9+/=]+)", line)
        if not m:
            raise Invalid(f"malformed signature line {line!r}")
        try:
            raw = b64decode_strict(m.group(2), "signature")
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if len(raw) < 5:
            raise Invalid("signature line too short")
        sigs.append((m.group(1), raw))
    return text, sigs


def verify_note(note: str, key: VerifierKey) -> str:
    """Verify a signed note under one trusted key. Lines from unknown keys are ignored; a line
    from the trusted key (same name and key id) that does not verify rejects the note; the note
    must carry at least one verifying line from the trusted key. Returns the note text."""
    text, sigs = parse_signed_note(note)
    good = 0
    for name, raw in sigs:
        if name != key.name or raw[:4] != key.key_id:
            continue  # unknown key (e.g. a witness cosignature): ignored
        if len(raw) != 4 + 64 or not ed25519_verify_strict(key.public_key, text.encode("utf-8"), raw[4:]):
            raise Invalid("checkpoint signature by the log key does not verify")
        good += 1
    if good == 0:
        raise Invalid("checkpoint carries no signature by the log key")
    return text


def parse_checkpoint_text(text: str, tree: Tree) -> Checkpoint:
    """C2SP tlog-checkpoint body: origin, decimal size, base64 root, optional extension lines."""
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise Invalid("checkpoint needs origin, size and root lines")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not origin:
        raise Invalid("checkpoint origin is empty")
    if not re.fullmatch(r"0|[1-9][0-9]*", size_s) or int(size_s) >= 2**64:
        raise Invalid(f"bad checkpoint tree size {size_s!r}")
    try:
        root = b64decode_strict(root_s, "checkpoint root")
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if len(root) != len(tree.empty_root()):
        raise Invalid("checkpoint root has the wrong length")
    ext = lines[3:]
    if any(not e for e in ext):
        raise Invalid("empty extension line in checkpoint")
    size = int(size_s)
    if size == 0 and root != tree.empty_root():
        raise Invalid("checkpoint of size 0 must have root H(\"\")")
    return Checkpoint(origin, size, root, ext, text)


def verify_checkpoint(note: str, log: LogDescriptor) -> Checkpoint:
    """SPEC §4 / §5 step 1: signature under vkey, and origin line equals the descriptor origin."""
    text = verify_note(note, log.key)
    cp = parse_checkpoint_text(text, log.tree)
    if cp.origin != log.origin:
        raise Invalid(f"checkpoint origin {cp.origin!r} is not the log origin {log.origin!r}")
    return cp


# ---------------------------------------------------------------------------------------------
# SPEC §8: witness cosignatures (C2SP tlog-cosignature, cosignature/v1) and trust policies
# (C2SP tlog-policy)
# ---------------------------------------------------------------------------------------------

COSIGNATURE_ALG = 0x04
MAX_COSIGNATURE_TIMESTAMP = 2**63 - 1
MAX_CLOCK_SKEW = 10 * 60     # a timestamp more than ten minutes after the verifier's clock does not count
MAX_POLICY_BYTES = 64 * 1024  # a policy is a small hand-written file; larger input is refused


class PolicyError(Unchecked):
    """A trust policy that breaks a tlog-policy rule (exit 2: the trust anchor is unusable).
    `line` is 1-based, 0 for the file as a whole."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"trust policy, line {line}: {reason}")
        self.line = line
        self.reason = reason


class QuorumFailure(Invalid):
    """The checkpoint's verified cosignatures do not satisfy the policy's quorum."""

    def __init__(self, cosigned: list[str], not_cosigned: list[tuple[str, str]]):
        missing = ", ".join(f"{n} ({why})" for n, why in not_cosigned)
        super().__init__(f"witness quorum not met: cosigned by [{', '.join(cosigned)}], not by [{missing}]")
        self.cosigned = cosigned
        self.not_cosigned = not_cosigned


def witness_key_id(name: str, pub: bytes) -> bytes:
    """SPEC §8: first 4 bytes of SHA-256(name || 0x0A || 0x04 || public_key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n\x04" + pub).digest()[:4]


@dataclass
class WitnessKey:
    name: str
    key_id: bytes
    public_key: bytes

    @staticmethod
    def parse(vkey: str) -> "WitnessKey":
        """`<name>+<8 lowercase hex key id>+<base64(0x04 || public_key)>` (SPEC §8)."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise ValueError("witness key: expected <name>+<keyid>+<key>")
        name, hexid, keyb64 = parts
        if not name or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            raise ValueError("witness key: bad key name")
        if not re.fullmatch(r"[0-9a-f]{8}", hexid):
            raise ValueError("witness key: key id must be 8 lowercase hex digits")
        raw = b64decode_strict(keyb64, "witness key")
        if len(raw) != 33 or raw[0] != COSIGNATURE_ALG:
            raise ValueError("witness key: key must be 0x04 || 32-byte Ed25519 public key (cosignature/v1)")
        pub = raw[1:]
        if not ed25519_key_ok(pub):
            raise ValueError("witness key: not a valid Ed25519 point, or of small order")
        if witness_key_id(name, pub).hex() != hexid:
            raise ValueError("witness key: key id does not match the name and key")
        return WitnessKey(name, bytes.fromhex(hexid), pub)

    def check(self, text: str, raw: bytes, now: int) -> tuple[bool, str]:
        """Judges one signature line of this key (raw = key id || rest) on the note text:
        (counts, why). It counts when it is 4 + 8 + 64 bytes, its timestamp is at most 2^63 - 1
        and not more than ten minutes after `now`, and the signature verifies strictly over
        "cosignature/v1\\ntime <ts>\\n" + text."""
        if len(raw) != 4 + 8 + 64:
            return False, f"malformed cosignature ({len(raw)} bytes, expected 76)"
        ts = int.from_bytes(raw[4:12], "big")
        if ts > MAX_COSIGNATURE_TIMESTAMP:
            return False, f"malformed cosignature (timestamp {ts} over 2^63 - 1)"
        msg = b"cosignature/v1\ntime " + str(ts).encode("ascii") + b"\n" + text.encode("utf-8")
        if not ed25519_verify_strict(self.public_key, msg, raw[12:]):
            return False, "bad signature"
        if ts > now + MAX_CLOCK_SKEW:
            return False, f"timestamp {ts} is in the future"
        return True, f"cosigned at {ts}"


@dataclass
class PolicyGroup:
    name: str
    threshold: int
    members: list[str]


@dataclass
class Policy:
    logs: list[tuple[VerifierKey, str | None]]
    witnesses: dict[str, tuple[WitnessKey, str | None]]  # insertion order = policy order
    groups: dict[str, PolicyGroup]                         # insertion order = policy order
    quorum: str                                            # "none", a witness or a group


_POLICY_NAME_RE = re.compile(r"[^ \t]+")


def parse_policy(data: bytes) -> Policy:
    """C2SP tlog-policy as SPEC §8 states it. Lines end in LF (a last line without one is read
    too); fields are separated by spaces or tabs; blank lines and whole-line `#` comments are
    skipped; only tab is allowed among the control characters. Witness and group names share one
    namespace in which `none` is reserved. A group or the quorum names only witnesses and groups
    defined on earlier lines (so no cycles); a name is a member of at most one group, once; a
    group has 1 <= k <= members. Two logs or two witnesses with one public key are refused.
    Exactly one quorum line."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(0, f"{len(data)} bytes, over the {MAX_POLICY_BYTES}-byte limit")
    logs: list[tuple[VerifierKey, str | None]] = []
    log_lines: list[int] = []
    witnesses: dict[str, tuple[WitnessKey, str | None]] = {}
    groups: dict[str, PolicyGroup] = {}
    defined_at: dict[str, int] = {}
    member_of: dict[str, str] = {}
    quorum: tuple[str, int] | None = None

    body = data[:-1] if data.endswith(b"\n") else data
    for n, raw in enumerate(body.split(b"\n"), start=1):
        for b in raw:
            if b < 0x20 and b != 0x09 or b == 0x7F:
                raise PolicyError(n, f"control byte 0x{b:02x} is not allowed")
        stripped = raw.strip(b" \t")
        if not stripped or stripped.startswith(b"#"):
            continue  # blank line or whole-line comment (any octets allowed in a comment)
        try:
            line = stripped.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(n, "not UTF-8") from None
        fields = [f for f in re.split(r"[ \t]+", line) if f]
        kw, args = fields[0], fields[1:]

        def new_name(name: str) -> None:
            if name == "none":
                raise PolicyError(n, "the name none is reserved")
            if name in defined_at:
                raise PolicyError(n, f"duplicate name {name} (line {defined_at[name]})")

        def earlier(name: str, within: str) -> None:
            if name == "none":
                raise PolicyError(n, f"{within}: none is not a member")
            if name not in defined_at:
                raise PolicyError(n, f"{within}: {name} is not defined on an earlier line")

        if kw == "log":
            if len(args) not in (1, 2):
                raise PolicyError(n, "log takes <vkey> [<url>]")
            try:
                key = VerifierKey.parse(args[0])
            except ValueError as exc:
                raise PolicyError(n, str(exc)) from None
            for (other, _), at in zip(logs, log_lines):
                if other.public_key == key.public_key:
                    raise PolicyError(n, f"duplicate log key (line {at})")
            logs.append((key, args[1] if len(args) == 2 else None))
            log_lines.append(n)
        elif kw == "witness":
            if len(args) not in (2, 3):
                raise PolicyError(n, "witness takes <name> <vkey> [<url>]")
            name = args[0]
            new_name(name)
            try:
                key = WitnessKey.parse(args[1])
            except ValueError as exc:
                raise PolicyError(n, f"witness {name}: {exc}") from None
            for other, (okey, _) in witnesses.items():
                if okey.public_key == key.public_key:
                    raise PolicyError(n, f"duplicate witness key: {name} and {other} (line {defined_at[other]})")
            witnesses[name] = (key, args[2] if len(args) == 3 else None)
            defined_at[name] = n
        elif kw == "group":
            if len(args) < 3:
                raise PolicyError(n, "group takes <name> <k|any|all> <member>... (at least one member)")
            name, k, members = args[0], args[1], args[2:]
            new_name(name)
            if k == "any":
                threshold = 1
            elif k == "all":
                threshold = len(members)
            elif re.fullmatch(r"[0-9]+", k):
                threshold = int(k)
                if not 1 <= threshold <= len(members):
                    raise PolicyError(n, f"group {name}: threshold {k} is not between 1 and {len(members)}")
            else:
                raise PolicyError(n, f"group {name}: threshold {k!r} is not a number, any or all")
            for m in members:
                earlier(m, f"group {name}")
                if m in member_of:
                    raise PolicyError(n, f"{m} is already a member of group {member_of[m]}")
                member_of[m] = name
            groups[name] = PolicyGroup(name, threshold, members)
            defined_at[name] = n
        elif kw == "quorum":
            if len(args) != 1:
                raise PolicyError(n, "quorum takes one name")
            if quorum is not None:
                raise PolicyError(n, f"a second quorum line (the first is line {quorum[1]})")
            if args[0] != "none":
                earlier(args[0], "quorum")
            quorum = (args[0], n)
        else:
            raise PolicyError(n, f"unknown keyword {kw!r}")
    if quorum is None:
        raise PolicyError(0, "no quorum line (exactly one is required)")
    return Policy(logs, witnesses, groups, quorum[0])


def check_policy_log(policy: Policy, log: LogDescriptor) -> None:
    """A policy with `log` lines must list the trusted descriptor's key among them; the log
    signature itself is checked under that descriptor (receipt step 1, pack checkpoint)."""
    if policy.logs and not any(k.public_key == log.key.public_key and k.name == log.key.name
                               and k.key_id == log.key.key_id for k, _ in policy.logs):
        raise Unchecked("the trust policy's log lines do not list the trusted log key "
                        f"{log.vkey}")


def witness_quorum(policy: Policy, note: str, now: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Evaluates the cosignatures of a note (whose log signature the caller has verified) under
    the policy at the verifier's clock `now`. Lines of keys the policy does not list are ignored.
    Returns (cosigned, [(not cosigned, why)]) in policy order; raises QuorumFailure when the
    quorum is not met."""
    text, sigs = parse_signed_note(note)
    cosigned: list[str] = []
    missing: list[tuple[str, str]] = []
    for name, (key, _) in policy.witnesses.items():
        why = "no cosignature"
        for sname, raw in sigs:
            if sname != key.name or raw[:4] != key.key_id:
                continue
            counts, why = key.check(text, raw, now)
            if counts:
                break
        else:
            missing.append((name, why))
            continue
        cosigned.append(name)

    ok: dict[str, bool] = {w: w in cosigned for w in policy.witnesses}
    for g in policy.groups.values():  # a group names only earlier ones: one pass in order
        ok[g.name] = sum(ok[m] for m in g.members) >= g.threshold
    if policy.quorum != "none" and not ok[policy.quorum]:
        raise QuorumFailure(cosigned, missing)
    return cosigned, missing


# ---------------------------------------------------------------------------------------------
# SPEC §2: entries — strict core-deterministic CBOR walker and schema
# ---------------------------------------------------------------------------------------------

MAX_ENTRY = 64 * 1024  # "over 64 KiB" is rejected; exactly 65536 bytes is allowed
MAX_DEPTH = 32         # nesting guard (the schema needs depth 3)
RUN_RE = re.compile(r"[A-Za-z0-9._:/-]{1,128}")


class CborError(Invalid):
    pass


class _Walker:
    """Decodes one CBOR item while enforcing RFC 8949 §4.2.1 core deterministic encoding as SPEC §2
    restates it: shortest heads, definite lengths, no tags, no floats, text-string map keys sorted
    by encoded bytes (shorter first, then bytewise), no duplicates, valid UTF-8 text."""

    def __init__(self, data: bytes):
        self.d = data
        self.i = 0

    def _take(self, n: int) -> bytes:
        if self.i + n > len(self.d):
            raise CborError(f"truncated at byte {self.i}")
        b = self.d[self.i: self.i + n]
        self.i += n
        return b

    def _head(self) -> tuple[int, int, int]:
        at = self.i
        b = self._take(1)[0]
        major, ai = b >> 5, b & 0x1F
        if major == 7:
            if ai in (25, 26, 27):
                raise CborError(f"float at byte {at}")
            if ai == 31:
                raise CborError(f"break/indefinite at byte {at}")
            if ai in (20, 21, 22, 23):
                return major, ai, at
            raise CborError(f"unsupported simple value at byte {at}")
        if ai < 24:
            return major, ai, at
        if ai == 31:
            raise CborError(f"indefinite length at byte {at}")
        if ai > 27:
            raise CborError(f"reserved additional info at byte {at}")
        n = 1 << (ai - 24)
        val = int.from_bytes(self._take(n), "big")
        minimum = {1: 24, 2: 1 << 8, 4: 1 << 16, 8: 1 << 32}[n]
        if val < minimum:
            raise CborError(f"non-shortest head at byte {at}")
        return major, val, at

    def item(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise CborError("nesting too deep")
        major, val, at = self._head()
        if major == 0:
            return val
        if major == 1:
            return -1 - val
        if major == 2:
            return bytes(self._take(val))
        if major == 3:
            try:
                return self._take(val).decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                raise CborError(f"invalid UTF-8 text at byte {at}") from None
        if major == 4:
            if val > len(self.d):
                raise CborError(f"array length beyond input at byte {at}")
            return [self.item(depth + 1) for _ in range(val)]
        if major == 5:
            if val > len(self.d):
                raise CborError(f"map length beyond input at byte {at}")
            out: dict[str, Any] = {}
            prev: bytes | None = None
            for _ in range(val):
                kstart = self.i
                if self.d[kstart: kstart + 1] and self.d[kstart] >> 5 != 3:
                    raise CborError(f"map key at byte {kstart} is not a text string")
                key = self.item(depth + 1)
                kenc = self.d[kstart: self.i]
                if prev is not None:
                    if kenc == prev:
                        raise CborError(f"duplicate map key {key!r} at byte {kstart}")
                    if (len(kenc), kenc) < (len(prev), prev):
                        raise CborError(f"map key {key!r} out of order at byte {kstart}")
                prev = kenc
                out[key] = self.item(depth + 1)
            return out
        if major == 6:
            raise CborError(f"tag at byte {at}")
        # major 7 simple values
        return {20: False, 21: True, 22: None, 23: _UNDEFINED}[val]


class _Undefined:
    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED = _Undefined()


def cbor_decode_strict(data: bytes) -> Any:
    w = _Walker(data)
    value = w.item()
    if w.i != len(data):
        raise CborError(f"trailing bytes after the item at byte {w.i}")
    return value


# Entry schema (SPEC §2 table). Attrs types that SPEC does not spell out are inferred: names,
# paths, reasons etc. are text; `bytes`, `elapsed_ms`, `events` uint; `pct` uint 0..100;
# `score_milli` int; "hashes are BLAKE3-256 byte strings" -> bytes(32).
TEXT, UINT, INT, B32, B64, TEXTS = "text", "uint", "int", "bytes(32)", "bytes(64)", "[text]"

TERMINAL = ("completed", "failed", "canceled", "rejected")
_TERMINAL_ATTRS = {"elapsed_ms": (UINT, True), "artifacts": (TEXTS, True)}

# kind -> {attr: (type, required)}
KINDS: dict[str, dict[str, tuple[str, bool]]] = {
    "identity.registered": {"alg": (TEXT, True), "public_key": (B32, True)},
    "task.accepted": {"protocol": (TEXT, True), "skill": (TEXT, True), "caller": (TEXT, True),
                      "input_hash": (B32, True),
                      # (1.1) optional: the A2A contextId, and the run the call was made for.
                      "context": (TEXT, False), "parent": (TEXT, False)},
    "task.status": {"state": (TEXT, True), "message": (TEXT, False)},
    "skill.progress": {"stage": (TEXT, True), "pct": (UINT, True), "message": (TEXT, True)},
    "workspace.read": {"path": (TEXT, True), "bytes": (UINT, True), "hash": (B32, True)},
    "workspace.written": {"path": (TEXT, True), "bytes": (UINT, True), "hash": (B32, True)},
    "workspace.denied": {"op": (TEXT, True), "path": (TEXT, True), "reason": (TEXT, True)},
    "scope.requested": {"paths": (TEXTS, True), "reason": (TEXT, True)},
    "scope.granted": {"prior_grant": (TEXT, True), "new_grant": (TEXT, True), "paths": (TEXTS, True),
                      "approver": (TEXT, True)},
    "scope.denied": {"approver": (TEXT, True), "reason": (TEXT, True)},
    "artifact.added": {"name": (TEXT, True), "media_type": (TEXT, True), "bytes": (UINT, True),
                       "hash": (B32, True)},
    "task.completed": dict(_TERMINAL_ATTRS),
    "task.failed": dict(_TERMINAL_ATTRS, error=(TEXT, True)),
    "task.canceled": dict(_TERMINAL_ATTRS),
    "task.rejected": dict(_TERMINAL_ATTRS),
    "eval.scored": {"rubric": (TEXT, True), "score_milli": (INT, True), "failures": (TEXTS, True)},
    "review.signed": {"approver": (TEXT, True), "notes": (TEXT, True)},
    "receipt.sealed": {"content_hash": (B32, True), "events": (UINT, True), "status": (TEXT, True),
                       "sig": (B64, True)},
    # (1.1) in run erasure/<lowercase hex of hash>, at seq 0.
    "payload.erased": {"hash": (B32, True), "reason": (TEXT, True), "approver": (TEXT, True)},
}

# Kinds SPEC revision 1.1 added; every other kind is 1.0.
KINDS_1_1 = ("payload.erased",)
MAX_CONTEXT = 256

TOP: dict[str, tuple[str, bool]] = {
    "v": (UINT, True), "ts": (INT, True), "run": (TEXT, True), "seq": (UINT, True),
    "kind": (TEXT, True), "actor": (TEXT, True), "attrs": ("map", True),
    "grant": (TEXT, False), "payload": (B32, False),
}

U64_MAX = 2**64 - 1


def _type_ok(t: str, v: Any) -> bool:
    if t == TEXT:
        return isinstance(v, str)
    if t == UINT:
        return is_int(v) and 0 <= v <= U64_MAX
    if t == INT:  # CBOR major 0 or 1
        return is_int(v) and -(2**64) <= v <= U64_MAX
    if t == B32:
        return isinstance(v, bytes) and len(v) == 32
    if t == B64:
        return isinstance(v, bytes) and len(v) == 64
    if t == TEXTS:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if t == "map":
        return isinstance(v, dict)
    raise AssertionError(t)


def _check_fields(obj: dict, schema: dict[str, tuple[str, bool]], where: str) -> None:
    for k in obj:
        if k not in schema:
            raise Invalid(f"unknown key {where}{k!r}")
    for k, (t, required) in schema.items():
        if k not in obj:
            if required:
                raise Invalid(f"missing key {where}{k!r}")
            continue
        if not _type_ok(t, obj[k]):
            raise Invalid(f"key {where}{k!r} must be {t}")


@dataclass
class Entry:
    raw: bytes
    v: int
    ts: int
    run: str
    seq: int
    kind: str
    actor: str
    attrs: dict
    grant: str | None
    payload: bytes | None


def decode_entry(raw: bytes) -> Entry:
    """SPEC §2: size limit, core deterministic CBOR, schema and value rules. Raises Invalid."""
    if len(raw) > MAX_ENTRY:
        raise Invalid(f"entry is {len(raw)} bytes, over 64 KiB")
    m = cbor_decode_strict(raw)
    # Cross-check with an independent CBOR decoder: both must agree on the value.
    try:
        other = cbor2.loads(raw)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not valid CBOR"
        raise CborError(f"cbor2 rejects the entry: {exc}") from None
    if other != m:
        raise CborError("cbor2 decodes a different value")
    if not isinstance(m, dict):
        raise Invalid("entry is not a CBOR map")
    _check_fields(m, TOP, "")
    if m["v"] != 1:
        raise Invalid(f"unsupported entry version {m['v']}")
    if not RUN_RE.fullmatch(m["run"]) or len(m["run"].encode()) > 128:
        raise Invalid(f"bad run id {m['run']!r}")
    if m["kind"] not in KINDS:
        raise Invalid(f"unknown kind {m['kind']!r}")
    if not m["actor"]:
        raise Invalid("empty actor")
    kind, attrs = m["kind"], m["attrs"]
    _check_fields(attrs, KINDS[kind], "attrs.")
    # Value rules stated in SPEC §2 / §3 / §4.
    if kind == "identity.registered":
        if attrs["alg"] != "ed25519":
            raise Invalid("identity.registered: alg must be ed25519")
        if not m["run"].startswith("id/") or len(m["run"]) == 3:
            raise Invalid("identity.registered must be in run id/<identity>")
        if not ed25519_key_ok(attrs["public_key"]):
            raise Invalid("identity.registered: public key is not a valid point or is of small order")
    elif kind == "task.accepted":
        if attrs["protocol"] not in ("a2a", "mcp", "https"):
            raise Invalid(f"task.accepted: bad protocol {attrs['protocol']!r}")
        # (1.1) Optional attrs are omitted when absent, never empty.
        if "context" in attrs and not 1 <= len(attrs["context"].encode()) <= MAX_CONTEXT:
            raise Invalid(f"task.accepted: context is {len(attrs['context'].encode())} bytes, not 1..{MAX_CONTEXT}")
        if "parent" in attrs and (not RUN_RE.fullmatch(attrs["parent"]) or len(attrs["parent"].encode()) > 128):
            raise Invalid(f"task.accepted: parent {attrs['parent']!r} is not a run id")
    elif kind == "task.status":
        if not re.fullmatch(r"[a-z]+(_[a-z]+)*", attrs["state"]):
            raise Invalid(f"task.status: state {attrs['state']!r} is not lower snake case")
    elif kind == "skill.progress":
        if attrs["pct"] > 100:
            raise Invalid("skill.progress: pct over 100")
    elif kind == "receipt.sealed":
        if attrs["status"] not in TERMINAL:
            raise Invalid(f"receipt.sealed: bad status {attrs['status']!r}")
    elif kind == "payload.erased":
        want = "erasure/" + attrs["hash"].hex()
        if m["run"] != want:
            raise Invalid(f"payload.erased must be in run {want}, not {m['run']!r}")
        if m["seq"] != 0:
            raise Invalid(f"payload.erased must be at seq 0, not {m['seq']}")
    return Entry(raw, m["v"], m["ts"], m["run"], m["seq"], kind, m["actor"], attrs,
                 m.get("grant"), m.get("payload"))


# ---------------------------------------------------------------------------------------------
# SPEC §3: seals
# ---------------------------------------------------------------------------------------------


def content_hash(tree: Tree, covered: list[bytes]) -> bytes:
    """BLAKE3("a2a-ledger/run/v1\\n" || LH(e_0) || ... || LH(e_{k-1})), LH with the log's H."""
    return blake3_256(b"a2a-ledger/run/v1\n" + b"".join(tree.leaf(e) for e in covered))


def seal_message(run: str, k: int, chash: bytes, status: str) -> bytes:
    return f"a2a-ledger/seal/v1\n{run}\n{k}\n{chash.hex()}\n{status}\n".encode("utf-8")


def check_seal_content(tree: Tree, seal: Entry, covered: list[bytes]) -> str | None:
    """§3 events and content_hash. Returns a reason on failure, None when fine."""
    k = seal.seq
    if seal.attrs["events"] != k:
        return f"seal events {seal.attrs['events']} != seq {k}"
    if len(covered) != k:
        return f"seal covers {k} entries, {len(covered)} given"
    if content_hash(tree, covered) != seal.attrs["content_hash"]:
        return "seal content_hash does not match the covered entries"
    return None


def check_seal_sig(seal: Entry, public_key: bytes) -> bool:
    msg = seal_message(seal.run, seal.seq, seal.attrs["content_hash"], seal.attrs["status"])
    return ed25519_verify_strict(public_key, msg, seal.attrs["sig"])


# ---------------------------------------------------------------------------------------------
# SPEC §5: receipts
# ---------------------------------------------------------------------------------------------

RECEIPT_FORMAT = "a2a-ledger/receipt/v1"


@dataclass
class ReceiptItem:
    index: int
    entry: bytes
    proof: list[bytes]


def _parse_item(obj: Any, where: str, hash_len: int) -> ReceiptItem:
    if not isinstance(obj, dict):
        raise Unchecked(f"{where} is not an object")
    for k in ("index", "entry", "proof"):
        if k not in obj:
            raise Unchecked(f"{where} lacks {k!r}")
    if not is_int(obj["index"]) or obj["index"] < 0:
        raise Unchecked(f"{where}.index is not a non-negative integer")
    if not isinstance(obj["proof"], list):
        raise Unchecked(f"{where}.proof is not an array")
    try:
        entry = b64decode_strict(obj["entry"], f"{where}.entry")
        proof = [b64decode_strict(p, f"{where}.proof") for p in obj["proof"]]
    except ValueError as exc:
        raise Unchecked(str(exc)) from None
    if any(len(p) != hash_len for p in proof):
        raise Unchecked(f"{where}.proof hash of the wrong length")
    return ReceiptItem(obj["index"], entry, proof)


def verify_receipt(receipt: Any, log: LogDescriptor, policy: Policy | None = None, now: int | None = None) -> dict:
    """SPEC §5. Raises StepFailure(step, index, reason) or Unchecked (malformed receipt). With a
    trust policy (SPEC §8), step 1 also requires its witness quorum at the clock `now` (seconds
    since the epoch; the system clock when None); that failure is the step "witness quorum"."""
    tree = log.tree
    hlen = len(tree.empty_root())
    # -- structure (a receipt that cannot be parsed could not be checked) --
    if not isinstance(receipt, dict):
        raise Unchecked("receipt is not a JSON object")
    for k in ("format", "log", "run", "checkpoint", "entries", "signer"):
        if k not in receipt:
            raise Unchecked(f"receipt lacks {k!r}")
    if receipt["format"] != RECEIPT_FORMAT:
        raise Unchecked(f"unknown receipt format {receipt['format']!r}")
    if not isinstance(receipt["run"], str) or not isinstance(receipt["checkpoint"], str):
        raise Unchecked("receipt run/checkpoint must be strings")
    if not isinstance(receipt["entries"], list) or not receipt["entries"]:
        raise Unchecked("receipt entries must be a non-empty array")
    items = [_parse_item(e, f"entries[{j}]", hlen) for j, e in enumerate(receipt["entries"])]
    signer = _parse_item(receipt["signer"], "signer", hlen)
    run = receipt["run"]

    # -- step 1: checkpoint signature under vkey, origin matches (and it is this log) --
    if receipt["log"] != log.as_json():
        raise StepFailure(1, None, "receipt's log descriptor differs from the trusted one")
    try:
        cp = verify_checkpoint(receipt["checkpoint"], log)
    except Invalid as exc:
        raise StepFailure(1, None, str(exc)) from None
    witnesses = None
    if policy is not None:
        try:
            cosigned, missing = witness_quorum(policy, receipt["checkpoint"], _now(now))
        except QuorumFailure as f:
            raise StepFailure("witness quorum", None, str(f), _quorum_json(f.cosigned, f.not_cosigned)) from None
        witnesses = _quorum_json(cosigned, missing)

    # -- step 2: inclusion of every entry and the signer against the checkpoint root --
    for it in items + [signer]:
        if not tree.verify_inclusion(it.index, cp.size, tree.leaf(it.entry), it.proof, cp.root):
            raise StepFailure(2, it.index, f"inclusion proof for index {it.index} does not verify "
                                           f"against the checkpoint (size {cp.size})")

    # -- step 3: §2 decoding, shared run, seq 0..k in order, last is receipt.sealed --
    entries: list[Entry] = []
    prev_index = -1
    for j, it in enumerate(items):
        try:
            e = decode_entry(it.entry)
        except Invalid as exc:
            raise StepFailure(3, it.index, f"entry does not decode under SPEC §2: {exc}") from None
        if e.run != run:
            raise StepFailure(3, it.index, f"entry run {e.run!r} is not the receipt run {run!r}")
        if e.seq != j:
            raise StepFailure(3, it.index, f"entry seq {e.seq}, expected {j}")
        if it.index <= prev_index:
            raise StepFailure(3, it.index, "entry indices are not increasing")
        prev_index = it.index
        entries.append(e)
    seal, seal_index = entries[-1], items[-1].index
    if seal.kind != "receipt.sealed":
        raise StepFailure(3, seal_index, f"last entry is {seal.kind}, not receipt.sealed")

    # -- step 4: events and content_hash over the entries before the seal --
    reason = check_seal_content(tree, seal, [it.entry for it in items[:-1]])
    if reason:
        raise StepFailure(4, seal_index, reason)

    # -- step 5: signer is the actor's key (§3) and the seal signature verifies under it --
    try:
        s = decode_entry(signer.entry)
    except Invalid as exc:
        raise StepFailure(5, signer.index, f"signer entry does not decode under SPEC §2: {exc}") from None
    if s.kind != "identity.registered":
        raise StepFailure(5, signer.index, f"signer entry is {s.kind}, not identity.registered")
    if s.run != "id/" + seal.actor:
        raise StepFailure(5, signer.index, f"signer run {s.run!r} is not 'id/{seal.actor}'")
    if signer.index >= seal_index:
        raise StepFailure(5, signer.index, "signer entry is not below the seal")
    if not check_seal_sig(seal, s.attrs["public_key"]):
        raise StepFailure(5, seal_index, "seal signature does not verify under the signer key")

    out = {"ok": True, "run": run, "events": seal.seq, "status": seal.attrs["status"],
           "seal_index": seal_index, "signer_index": signer.index, "tree_size": cp.size,
           "hash": log.hash}
    if witnesses is not None:
        out["witnesses"] = witnesses
    return out


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def _quorum_json(cosigned: list[str], missing: list[tuple[str, str]]) -> dict:
    return {"cosigned": cosigned, "not_cosigned": [{"name": n, "why": why} for n, why in missing]}


# ---------------------------------------------------------------------------------------------
# SPEC §6: compliance packs
# ---------------------------------------------------------------------------------------------

PACK_FORMAT = "a2a-ledger/pack/v1"
REQUIRED_PACK_FILES = ("entries.bin", "proof.json", "checkpoint")
RFC3339_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


class PackFailure(Invalid):
    def __init__(self, check: str, reason: str, index: int | None = None, extra: dict | None = None):
        super().__init__(reason)
        self.check, self.reason, self.index, self.extra = check, reason, index, extra or {}


def _safe_name(name: str) -> str | None:
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    return name


def read_pack_files(path: str) -> dict[str, bytes]:
    """All regular files of a pack directory or tar archive, by relative name."""
    files: dict[str, bytes] = {}
    try:
        if os.path.isdir(path):
            for dirpath, _dirs, names in os.walk(path):
                for n in names:
                    full = os.path.join(dirpath, n)
                    if os.path.islink(full) or not os.path.isfile(full):
                        continue
                    rel = os.path.relpath(full, path).replace(os.sep, "/")
                    with open(full, "rb") as f:
                        files[rel] = f.read()
        else:
            with tarfile.open(path, "r:*") as tar:
                for member in tar.getmembers():
                    if not member.isfile():
                        continue
                    name = _safe_name(member.name)
                    if name is None:
                        raise Unchecked(f"unsafe path in tar: {member.name!r}")
                    if name in files:
                        raise Unchecked(f"duplicate file in tar: {name!r}")
                    fobj = tar.extractfile(member)
                    files[name] = fobj.read() if fobj else b""
    except (OSError, tarfile.TarError) as exc:
        raise Unchecked(f"cannot read pack {path}: {exc}") from None
    return files


def _json_file(files: dict[str, bytes], name: str) -> Any:
    try:
        return json.loads(files[name].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unchecked(f"{name} is not valid JSON: {exc}") from None


def verify_pack_files(files: dict[str, bytes], log: LogDescriptor, policy: Policy | None = None,
                      now: int | None = None) -> dict:
    """SPEC §6; with a trust policy, the checkpoint must also carry its witness quorum (SPEC §8),
    else the check "witness quorum" fails."""
    tree = log.tree
    hlen = len(tree.empty_root())

    # -- manifest.json --
    if "manifest.json" not in files:
        raise Unchecked("pack has no manifest.json")
    man = _json_file(files, "manifest.json")
    if not isinstance(man, dict):
        raise PackFailure("manifest", "manifest is not a JSON object")
    if man.get("format") != PACK_FORMAT:
        raise PackFailure("manifest", f"manifest format is {man.get('format')!r}, not {PACK_FORMAT}")
    if man.get("log") != log.as_json():
        raise PackFailure("manifest", "manifest log descriptor differs from the trusted one")
    s, e, n = man.get("start"), man.get("end"), man.get("tree_size")
    if not all(is_int(x) and x >= 0 for x in (s, e, n)) or not s <= e <= n:
        raise PackFailure("manifest", "manifest needs integers 0 <= start <= end <= tree_size")
    if not isinstance(man.get("created"), str) or not RFC3339_RE.fullmatch(man["created"]):
        raise PackFailure("manifest", "manifest created is not an RFC 3339 timestamp")
    listed = man.get("files")
    if not isinstance(listed, dict):
        raise PackFailure("manifest", "manifest files is not an object")
    for req in REQUIRED_PACK_FILES:
        if req not in listed:
            raise PackFailure("manifest", f"manifest does not list {req}")

    # -- every listed file exists and has the listed BLAKE3 --
    for name, hexhash in listed.items():
        if not isinstance(hexhash, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", hexhash):
            raise PackFailure("files", f"bad hash for {name!r} in the manifest")
        if name not in files:
            raise PackFailure("files", f"listed file {name!r} is missing")
        if blake3_256(files[name]).hex() != hexhash.lower():
            raise PackFailure("files", f"BLAKE3 of {name!r} does not match the manifest")
    unlisted = sorted(f for f in files if f != "manifest.json" and f not in listed)

    # -- checkpoint: signature, origin, size n --
    try:
        note = files["checkpoint"].decode("utf-8")
    except UnicodeDecodeError:
        raise PackFailure("checkpoint", "checkpoint is not UTF-8") from None
    try:
        cp = verify_checkpoint(note, log)
    except Invalid as exc:
        raise PackFailure("checkpoint", str(exc)) from None
    if cp.size != n:
        raise PackFailure("checkpoint", f"checkpoint size {cp.size} != manifest tree_size {n}")
    witnesses = None
    if policy is not None:
        try:
            witnesses = _quorum_json(*witness_quorum(policy, note, _now(now)))
        except QuorumFailure as f:
            raise PackFailure("witness quorum", str(f), extra=_quorum_json(f.cosigned, f.not_cosigned)) from None

    # -- entries.bin: exactly e - s length-prefixed entries, nothing after --
    blob, pos, raw_entries = files["entries.bin"], 0, []
    while pos < len(blob):
        if pos + 4 > len(blob):
            raise PackFailure("entries", f"truncated length prefix at byte {pos}")
        ln = int.from_bytes(blob[pos: pos + 4], "big")
        if pos + 4 + ln > len(blob):
            raise PackFailure("entries", f"truncated entry at byte {pos}", s + len(raw_entries))
        raw_entries.append(blob[pos + 4: pos + 4 + ln])
        pos += 4 + ln
    if len(raw_entries) != e - s:
        raise PackFailure("entries", f"entries.bin holds {len(raw_entries)} entries, expected {e - s}")

    # -- proof.json: compact range of [0, s), consistency proof e -> n --
    proof = _json_file(files, "proof.json")
    if not isinstance(proof, dict) or not isinstance(proof.get("left"), list) \
            or not isinstance(proof.get("consistency"), list):
        raise PackFailure("proof", "proof.json needs arrays left and consistency")
    try:
        left = [b64decode_strict(x, "proof.left") for x in proof["left"]]
        cons = [b64decode_strict(x, "proof.consistency") for x in proof["consistency"]]
    except ValueError as exc:
        raise PackFailure("proof", str(exc)) from None
    if any(len(h) != hlen for h in left + cons):
        raise PackFailure("proof", "proof hash of the wrong length")
    sizes = compact_sizes(s)
    if len(left) != len(sizes):
        raise PackFailure("proof", f"left has {len(left)} hashes, the compact range of [0, {s}) has {len(sizes)}")

    # Append the entries to the compact range, fold to root(e), check consistency to root(n).
    rng = list(zip(sizes, left))
    for raw in raw_entries:
        tree.compact_append(rng, tree.leaf(raw))
    root_e = tree.compact_fold(rng)
    if not tree.verify_consistency(e, n, root_e, cp.root, cons):
        raise PackFailure("consistency", f"entries [{s}, {e}) with left do not match the checkpoint "
                                         f"(size {n}) by the consistency proof")

    # -- §2 for every entry (collect all failures) --
    failures: list[dict] = []
    decoded: list[Entry | None] = []
    for j, raw in enumerate(raw_entries):
        try:
            decoded.append(decode_entry(raw))
        except Invalid as exc:
            decoded.append(None)
            failures.append({"check": "entry", "index": s + j, "reason": str(exc)})

    # -- run rules within the range, and §3 for every run fully inside it --
    runs: dict[str, list[tuple[int, Entry]]] = {}
    for j, ent in enumerate(decoded):
        if ent is not None:
            runs.setdefault(ent.run, []).append((s + j, ent))

    verified, partial, unsealed, outside, seals_ok = [], [], [], [], 0
    for run, ents in runs.items():
        # The range is contiguous, so a run's in-range entries must have consecutive seqs.
        bad = next(((i, en) for (i, en), (_, pv) in zip(ents[1:], ents) if en.seq != pv.seq + 1), None)
        if bad:
            failures.append({"check": "run", "index": bad[0], "run": run,
                             "reason": f"seq {bad[1].seq} does not follow the run's previous entry"})
            continue
        seals = [(i, en) for i, en in ents if en.kind == "receipt.sealed"]
        if ents[0][1].seq != 0:
            partial.append(run)          # starts before the range: cut by the boundary
            # events = seq needs nothing outside the range, so it is still checked.
            for i, en in seals:
                if en.attrs["events"] != en.seq:
                    failures.append({"check": "seal", "index": i, "run": run,
                                     "reason": f"seal events {en.attrs['events']} != seq {en.seq}"})
            continue
        if not seals:
            unsealed.append(run)
            continue
        run_ok, run_outside = True, False
        for i, seal in seals:
            covered = [en.raw for _, en in ents[: seal.seq]]
            reason = check_seal_content(tree, seal, covered)
            if reason:
                failures.append({"check": "seal", "index": i, "run": run, "reason": reason})
                run_ok = False
                continue
            # Signer: the latest identity.registered in run id/<actor> below the seal's index.
            # Every index in [s, i) is in the pack, so if none is found there it lies before s.
            ids = [(k, en) for k, en in runs.get("id/" + seal.actor, [])
                   if k < i and en.kind == "identity.registered"]
            if not ids:
                run_outside = True
                continue
            if not check_seal_sig(seal, ids[-1][1].attrs["public_key"]):
                failures.append({"check": "seal", "index": i, "run": run,
                                 "reason": f"seal signature does not verify under the key at index {ids[-1][0]}"})
                run_ok = False
                continue
            seals_ok += 1
        if run_ok:
            (outside if run_outside else verified).append(run)

    # -- optional payloads/<hex>: the file is named by its BLAKE3 --
    included = set()
    for name in files:
        if name.startswith("payloads/"):
            hexname = name[len("payloads/"):]
            if blake3_256(files[name]).hex() != hexname:
                failures.append({"check": "payload", "index": None, "reason": f"{name} does not hash to its name"})
            else:
                included.add(hexname)
    # The payloads the entries name (docs/FORMATS.md §6) and the erasures in the range.
    named, erased = set(), {}
    for j, ent in enumerate(decoded):
        if ent is None:
            continue
        if ent.payload is not None:
            named.add(ent.payload.hex())
        if ent.kind == "task.accepted":
            named.add(ent.attrs["input_hash"].hex())
        elif ent.kind in ("artifact.added", "workspace.read", "workspace.written"):
            named.add(ent.attrs["hash"].hex())
        elif ent.kind == "payload.erased":
            erased[ent.attrs["hash"].hex()] = {"hash": ent.attrs["hash"].hex(), "index": s + j, "ts": ent.ts,
                                                "approver": ent.attrs["approver"], "reason": ent.attrs["reason"]}

    history = _check_history(files, listed, log, cp) if "history.json" in files else None

    result = {
        "ok": not failures, "start": s, "end": e, "tree_size": n, "hash": log.hash,
        "entries": e - s, "runs": len(runs),
        "runs_verified": len(verified), "runs_partial": len(partial),
        "runs_unsealed": len(unsealed), "runs_signer_outside_range": len(outside),
        "seals_verified": seals_ok,
        "partial": sorted(partial), "signer_outside_range": sorted(outside),
        "unsealed": sorted(unsealed), "unlisted_files": unlisted,
        "payloads_included": len(included),
        "payloads_absent": sorted(h for h in named if h not in included and h not in erased),
        "payloads_erased": [erased[h] for h in sorted(erased)],
    }
    if history is not None:
        result["history"] = history
    if witnesses is not None:
        result["witnesses"] = witnesses
    if failures:
        result.update(check=failures[0]["check"], index=failures[0]["index"],
                      reason=failures[0]["reason"], failures=failures)
    return result


def _check_history(files: dict[str, bytes], listed: dict, log: LogDescriptor, cp: Checkpoint) -> dict:
    """history.json: SPEC §6 gives no byte layout ("earlier checkpoints ..., each with a consistency
    proof to n"). We accept a list (or {"checkpoints": list}) of objects holding a note under
    "checkpoint" and a proof under "consistency" or "proof"; any other shape is reported as
    unchecked, not as a failure."""
    try:
        h = json.loads(files["history.json"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"checked": False, "reason": "history.json is not JSON"}
    if isinstance(h, dict):
        h = h.get("checkpoints")
    if not isinstance(h, list) or not all(isinstance(x, dict) and isinstance(x.get("checkpoint"), str)
                                          for x in h):
        return {"checked": False, "reason": "unrecognised history.json shape"}
    ok = 0
    for x in h:
        pr = x.get("consistency", x.get("proof"))
        try:
            old = verify_checkpoint(x["checkpoint"], log)
            proof = [b64decode_strict(p, "history proof") for p in pr]
        except (Invalid, ValueError, TypeError) as exc:
            raise PackFailure("history", f"history checkpoint: {exc}") from None
        if not log.tree.verify_consistency(old.size, cp.size, old.root, cp.root, proof):
            raise PackFailure("history", f"history checkpoint of size {old.size} is not consistent with the pack's")
        ok += 1
    return {"checked": True, "checkpoints": ok}


def verify_pack(path: str, log: LogDescriptor, policy: Policy | None = None, now: int | None = None) -> dict:
    return verify_pack_files(read_pack_files(path), log, policy, now)


# ---------------------------------------------------------------------------------------------
# Checkpoint and consistency commands
# ---------------------------------------------------------------------------------------------


def checkpoint_summary(cp: Checkpoint, log: LogDescriptor) -> dict:
    return {"origin": cp.origin, "tree_size": cp.size, "root": b64(cp.root), "hash": log.hash}


def verify_consistency_cmd(old_note: str, new_note: str, proof_obj: Any, log: LogDescriptor) -> dict:
    if not isinstance(proof_obj, dict) or not isinstance(proof_obj.get("proof"), list):
        raise Unchecked('proof file must be {"proof": [base64, ...]}')
    try:
        proof = [b64decode_strict(p, "proof") for p in proof_obj["proof"]]
    except ValueError as exc:
        raise Unchecked(str(exc)) from None
    try:
        old = verify_checkpoint(old_note, log)
    except Invalid as exc:
        raise PackFailure("old_checkpoint", str(exc)) from None
    try:
        new = verify_checkpoint(new_note, log)
    except Invalid as exc:
        raise PackFailure("new_checkpoint", str(exc)) from None
    if not log.tree.verify_consistency(old.size, new.size, old.root, new.root, proof):
        raise PackFailure("consistency", f"checkpoints of sizes {old.size} and {new.size} are not "
                                         "consistent under the proof")
    return {"ok": True, "old_size": old.size, "new_size": new.size, "hash": log.hash}


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise Unchecked(f"cannot read {path}: {exc}") from None


def _read_text(path: str) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise Unchecked(f"{path} is not UTF-8") from None


def _read_json(path: str) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise Unchecked(f"{path} is not valid JSON: {exc}") from None


def load_log(path: str) -> LogDescriptor:
    try:
        return LogDescriptor.from_json(_read_json(path))
    except ValueError as exc:
        raise Unchecked(f"bad log descriptor {path}: {exc}") from None


def load_policy(path: str | None, log: LogDescriptor) -> Policy | None:
    if path is None:
        return None
    try:
        policy = parse_policy(_read_bytes(path))
    except PolicyError as exc:
        raise Unchecked(f"{path}: {exc}") from None
    check_policy_log(policy, log)
    return policy


def run_cli(argv: list[str]) -> tuple[int, dict]:
    ap = argparse.ArgumentParser(prog="a2a_verify.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("receipt", help="verify a run receipt (SPEC §5)")
    p.add_argument("receipt")
    p.add_argument("--log", required=True)
    p.add_argument("--policy", help="a trust policy (C2SP tlog-policy): the checkpoint must carry its quorum")
    p = sub.add_parser("pack", help="verify a compliance pack, tar or directory (SPEC §6)")
    p.add_argument("path")
    p.add_argument("--log", required=True)
    p.add_argument("--policy", help="a trust policy (C2SP tlog-policy): the checkpoint must carry its quorum")
    p.add_argument("-q", "--quiet", action="store_true", help="accepted for ledger-verify's CLI shape; "
                   "the output is one JSON object either way")
    p = sub.add_parser("checkpoint", help="verify a signed checkpoint (SPEC §4)")
    p.add_argument("note")
    p.add_argument("--log", required=True)
    p = sub.add_parser("consistency", help="verify consistency between two checkpoints")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--log", required=True)
    p.add_argument("--proof", required=True)
    args = ap.parse_args(argv)

    try:
        log = load_log(args.log)
        if args.cmd == "receipt":
            policy = load_policy(args.policy, log)
            return 0, verify_receipt(_read_json(args.receipt), log, policy)
        if args.cmd == "pack":
            policy = load_policy(args.policy, log)
            if not os.path.exists(args.path):
                raise Unchecked(f"no such pack: {args.path}")
            res = verify_pack(args.path, log, policy)
            return (0 if res["ok"] else 1), res
        if args.cmd == "checkpoint":
            note = _read_text(args.note)
            try:
                cp = verify_checkpoint(note, log)
            except Invalid as exc:
                return 1, {"ok": False, "reason": str(exc)}
            return 0, {"ok": True, **checkpoint_summary(cp, log)}
        if args.cmd == "consistency":
            old, new = _read_text(args.old), _read_text(args.new)
            return 0, verify_consistency_cmd(old, new, _read_json(args.proof), log)
    except StepFailure as f:
        return 1, {"ok": False, "step": f.step, "index": f.index, "reason": f.reason, **f.extra}
    except PackFailure as f:
        return 1, {"ok": False, "check": f.check, "index": f.index, "reason": f.reason, **f.extra}
    except Invalid as f:
        return 1, {"ok": False, "reason": str(f)}
    except Unchecked as exc:
        return 2, {"ok": False, "error": str(exc)}
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    code, out = run_cli(sys.argv[1:] if argv is None else argv)
    print(json.dumps(out, sort_keys=False))
    return code


if __name__ == "__main__":
    sys.exit(main())
