"""Tests for the independent Python verifier (a2a_verify.py).

Run from the repository root:  python3 -m unittest discover -s tests/python

The helpers below (tree, proofs, a mini ledger that writes entries, checkpoints, receipts and packs)
are written from SPEC and RFC 9162 §2.1 directly, with their own hashing, so that they do not share
code with the verifier under test.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

import blake3
import cbor2
from nacl.signing import SigningKey

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import a2a_verify as v  # noqa: E402

GOLDEN = os.path.normpath(os.path.join(HERE, "..", "..", "testdata", "golden"))
SCRIPT = os.path.join(HERE, "a2a_verify.py")

# ---------------------------------------------------------------------------------------------
# Reference tree (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1), naive and independent of the verifier
# ---------------------------------------------------------------------------------------------

HFN = {"blake3": lambda d: blake3.blake3(d).digest(), "sha256": lambda d: hashlib.sha256(d).digest()}


def lh(h, e):
    return HFN[h](b"\x00" + e)


def nh(h, a, b):
    return HFN[h](b"\x01" + a + b)


def split(n):
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def mth(h, leaves):
    """MTH over leaf hashes."""
    if not leaves:
        return HFN[h](b"")
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return nh(h, mth(h, leaves[:k]), mth(h, leaves[k:]))


def path(h, m, leaves):
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return path(h, m, leaves[:k]) + [mth(h, leaves[k:])]
    return path(h, m - k, leaves[k:]) + [mth(h, leaves[:k])]


def subproof(h, m, leaves, b):
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(h, leaves)]
    k = split(n)
    if m <= k:
        return subproof(h, m, leaves[:k], b) + [mth(h, leaves[k:])]
    return subproof(h, m - k, leaves[k:], False) + [mth(h, leaves[:k])]


def cproof(h, m, leaves):
    """PROOF(m, D[n]); empty for m == 0 or m == n."""
    if m == 0 or m == len(leaves):
        return []
    return subproof(h, m, leaves, True)


def compact_left(h, leaves, s):
    """Roots of the perfect subtrees [0, s) decomposes into, largest first."""
    out, pos = [], 0
    for bit in range(s.bit_length() - 1, -1, -1):
        if s >> bit & 1:
            out.append(mth(h, leaves[pos: pos + (1 << bit)]))
            pos += 1 << bit
    return out


b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731

# ---------------------------------------------------------------------------------------------
# Mini ledger: entries, seals, checkpoints, receipts, packs (from SPEC)
# ---------------------------------------------------------------------------------------------

TS0 = 1767225600000000000


def enc(m: dict) -> bytes:
    """Canonical CBOR for test entries (cbor2 canonical = length-first key order, as SPEC §2)."""
    return cbor2.dumps(m, canonical=True)


def entry(run, seq, kind, attrs, actor="svc", ts=None, grant=None, payload=None) -> bytes:
    m = {"v": 1, "ts": TS0 + seq if ts is None else ts, "run": run, "seq": seq, "kind": kind,
         "actor": actor, "attrs": attrs}
    if grant is not None:
        m["grant"] = grant
    if payload is not None:
        m["payload"] = payload
    return enc(m)


def identity(name, seq, pub) -> bytes:
    return entry("id/" + name, seq, "identity.registered", {"alg": "ed25519", "public_key": pub}, actor=name)


def seal(h, run, actor, sk, covered, status="completed", events=None, chash=None, seq=None) -> bytes:
    k = len(covered)
    ch = blake3.blake3(b"a2a-ledger/run/v1\n" + b"".join(lh(h, e) for e in covered)).digest()
    ch = ch if chash is None else chash
    msg = f"a2a-ledger/seal/v1\n{run}\n{k}\n{ch.hex()}\n{status}\n".encode()
    sig = sk.sign(msg).signature
    return entry(run, k if seq is None else seq, "receipt.sealed",
                 {"content_hash": ch, "events": k if events is None else events, "status": status, "sig": sig},
                 actor=actor)


class MiniLog:
    def __init__(self, h="blake3", origin="example.test/log", seed=b"\x11" * 32):
        self.h, self.origin = h, origin
        self.sk = SigningKey(seed)
        self.entries: list[bytes] = []

    @property
    def pub(self):
        return bytes(self.sk.verify_key)

    def vkey(self):
        kid = hashlib.sha256(self.origin.encode() + b"\n\x01" + self.pub).digest()[:4]
        key = b64(b"\x01" + self.pub)
        return f"{self.origin}+{kid.hex()}+{key}"

    def descriptor(self):
        return {"origin": self.origin, "hash": self.h, "vkey": self.vkey()}

    def trusted(self):
        return v.LogDescriptor.from_json(self.descriptor())

    def append(self, raw: bytes) -> int:
        self.entries.append(raw)
        return len(self.entries) - 1

    def leaves(self, n=None):
        return [lh(self.h, e) for e in self.entries[: len(self.entries) if n is None else n]]

    def note(self, n=None, sk=None, extra_lines=(), body_extra=""):
        n = len(self.entries) if n is None else n
        text = f"{self.origin}\n{n}\n{b64(mth(self.h, self.leaves(n)))}\n{body_extra}"
        sk = sk or self.sk
        kid = hashlib.sha256(self.origin.encode() + b"\n\x01" + bytes(sk.verify_key)).digest()[:4]
        sig = sk.sign(text.encode()).signature
        lines = "".join(extra_lines) + f"\u2014 {self.origin} {b64(kid + sig)}\n"
        return text + "\n" + lines

    def item(self, i, n):
        return {"index": i, "entry": b64(self.entries[i]), "proof": [b64(p) for p in path(self.h, i, self.leaves(n))]}

    def receipt(self, run, indices, signer, n=None):
        n = len(self.entries) if n is None else n
        return {"format": "a2a-ledger/receipt/v1", "log": self.descriptor(), "run": run,
                "checkpoint": self.note(n), "entries": [self.item(i, n) for i in indices],
                "signer": self.item(signer, n)}

    def pack_files(self, s, e, n=None, extra=None):
        n = len(self.entries) if n is None else n
        leaves = self.leaves(n)
        files = {
            "entries.bin": b"".join(len(x).to_bytes(4, "big") + x for x in self.entries[s:e]),
            "proof.json": json.dumps({"left": [b64(x) for x in compact_left(self.h, leaves, s)],
                                      "consistency": [b64(x) for x in cproof(self.h, e, leaves)]}).encode(),
            "checkpoint": self.note(n).encode(),
        }
        files.update(extra or {})
        return files


def manifest(log: MiniLog, files, s, e, n, over=None):
    m = {"format": "a2a-ledger/pack/v1", "log": log.descriptor(), "start": s, "end": e, "tree_size": n,
         "created": "2026-01-01T00:00:00Z",
         "files": {k: blake3.blake3(b).hexdigest() for k, b in files.items()}}
    m.update(over or {})
    return m


def build_pack(log, s, e, n=None, extra=None, mutate=None, man_over=None):
    """Pack files dict (with manifest). `mutate(files)` edits files before the manifest is made."""
    n = len(log.entries) if n is None else n
    files = log.pack_files(s, e, n, extra)
    if mutate:
        mutate(files)
    files["manifest.json"] = json.dumps(manifest(log, files, s, e, n, man_over)).encode()
    return files


def write_dir(files, root):
    for name, data in files.items():
        p = os.path.join(root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    return root


def write_tar(files, path):
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return path


def golden_entries(name="entries.txt"):
    with open(os.path.join(GOLDEN, name)) as f:
        return [(k, bytes.fromhex(h)) for k, h in (line.split() for line in f if line.strip())]


def build_scenario(h="blake3", bad_r2_sig=False, r1_reseal_with_old_key=False):
    """A log with the golden entries and two sealed runs by service `svc`, with a key rotation:
       0      id/svc seq0 (key K1)
       1..18  golden entries (id/gateway seq 0; golden-run seq 1..17, never starts in a log: partial)
       19..22 run r1 seq 0..3 (accepted, status, completed, seal by K1)
       23     id/svc seq1 (rotation to K2)
       24..26 run r2 seq 0..2 (accepted, failed, seal by K2)
       27..28 run r1 seq 4..5 (eval.scored, re-seal by K2)
    """
    log = MiniLog(h)
    k1, k2, wrong = SigningKey(b"\x21" * 32), SigningKey(b"\x22" * 32), SigningKey(b"\x23" * 32)
    log.append(identity("svc", 0, bytes(k1.verify_key)))
    for _, raw in golden_entries():
        log.append(raw)
    r1 = [entry("r1", 0, "task.accepted", {"protocol": "a2a", "skill": "s", "caller": "c", "input_hash": b"\x01" * 32}),
          entry("r1", 1, "task.status", {"state": "working"}),
          entry("r1", 2, "task.completed", {"artifacts": [], "elapsed_ms": 5})]
    for x in r1:
        log.append(x)
    r1.append(seal(h, "r1", "svc", k1, r1))
    log.append(r1[-1])
    log.append(identity("svc", 1, bytes(k2.verify_key)))
    r2 = [entry("r2", 0, "task.accepted", {"protocol": "mcp", "skill": "s", "caller": "c", "input_hash": b"\x02" * 32}),
          entry("r2", 1, "task.failed", {"error": "boom", "artifacts": [], "elapsed_ms": 1})]
    for x in r2:
        log.append(x)
    log.append(seal(h, "r2", "svc", wrong if bad_r2_sig else k2, r2, status="failed"))
    r1.append(entry("r1", 4, "eval.scored", {"rubric": "r", "score_milli": 900, "failures": []}))
    log.append(r1[-1])
    log.append(seal(h, "r1", "svc", k1 if r1_reseal_with_old_key else k2, r1))
    return log


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def load_golden(h):
    with open(os.path.join(GOLDEN, f"receipt-{h}.json")) as f:
        rec = json.load(f)
    with open(os.path.join(GOLDEN, f"log-{h}.json")) as f:
        desc = json.load(f)
    return rec, v.LogDescriptor.from_json(desc)


def flip_b64(s, byte=0):
    raw = bytearray(base64.b64decode(s))
    raw[byte] ^= 0x01
    return b64(bytes(raw))


class TestTree(unittest.TestCase):
    # RFC 6962 / certificate-transparency test vectors (SHA-256).
    LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
    ROOTS = {
        0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    }
    INCLUSION = [
        (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    ]
    CONSISTENCY = [
        (1, 1, []),
        (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    ]

    def setUp(self):
        self.t = v.Tree("sha256")
        self.lh = [self.t.leaf(bytes.fromhex(x)) for x in self.LEAVES]

    def root(self, n):
        return bytes.fromhex(self.ROOTS[n])

    def test_rfc6962_roots(self):
        for n, want in self.ROOTS.items():
            self.assertEqual(self.t.root_of_leaf_hashes(self.lh[:n]).hex(), want)
            rng = []
            for x in self.lh[:n]:
                self.t.compact_append(rng, x)
            self.assertEqual(self.t.compact_fold(rng).hex(), want, n)

    def test_rfc6962_inclusion(self):
        for i, n, p in self.INCLUSION:
            proof = [bytes.fromhex(x) for x in p]
            self.assertTrue(self.t.verify_inclusion(i, n, self.lh[i], proof, self.root(n)), (i, n))
            self.assertFalse(self.t.verify_inclusion(i, n, self.lh[i], proof[:-1], self.root(n)))
            self.assertFalse(self.t.verify_inclusion(i, n, self.lh[i], proof + proof[:1], self.root(n)))
            self.assertFalse(self.t.verify_inclusion(i ^ 1, n, self.lh[i], proof, self.root(n)))
            self.assertFalse(self.t.verify_inclusion(i, n, self.lh[i ^ 1], proof, self.root(n)))

    def test_rfc6962_consistency(self):
        for m, n, p in self.CONSISTENCY:
            proof = [bytes.fromhex(x) for x in p]
            self.assertTrue(self.t.verify_consistency(m, n, self.root(m), self.root(n), proof), (m, n))
            if proof:
                self.assertFalse(self.t.verify_consistency(m, n, self.root(m), self.root(n), proof[:-1]))
                self.assertFalse(self.t.verify_consistency(m, n, self.root(m), self.root(n), proof + proof[:1]))
                self.assertFalse(self.t.verify_consistency(m, n, self.root(n), self.root(n), proof))

    def test_random_trees_against_naive_proofs(self):
        rnd = random.Random(9162)
        for h in ("blake3", "sha256"):
            t = v.Tree(h)
            for n in list(range(1, 34)) + [rnd.randrange(34, 300) for _ in range(6)]:
                leaves = [lh(h, rnd.randbytes(rnd.randrange(0, 40))) for _ in range(n)]
                root = mth(h, leaves)
                self.assertEqual(t.root_of_leaf_hashes(leaves), root)
                for i in {0, n - 1, rnd.randrange(n), rnd.randrange(n)}:
                    p = path(h, i, leaves)
                    self.assertTrue(t.verify_inclusion(i, n, leaves[i], p, root), (h, n, i))
                    self.assertFalse(t.verify_inclusion(i, n + 1, leaves[i], p + [root], root))
                    if p:
                        bad = list(p)
                        bad[rnd.randrange(len(bad))] = b"\x00" * 32
                        self.assertFalse(t.verify_inclusion(i, n, leaves[i], bad, root))
                self.assertFalse(t.verify_inclusion(n, n, leaves[0], [], root))
                for m in {0, 1, n, rnd.randrange(1, n + 1), rnd.randrange(1, n + 1)}:
                    rm, p = mth(h, leaves[:m]), cproof(h, m, leaves)
                    self.assertTrue(t.verify_consistency(m, n, rm, root, p), (h, m, n))
                    if 0 < m < n:
                        self.assertFalse(t.verify_consistency(m, n, rm, root, p[:-1]))
                        self.assertFalse(t.verify_consistency(m, n, root, rm, p))
                        bad = list(p)
                        bad[rnd.randrange(len(bad))] = b"\x00" * 32
                        self.assertFalse(t.verify_consistency(m, n, rm, root, bad))
                    # compact range of [0, m) + remaining leaves folds to root(n)
                    rng = list(zip(v.compact_sizes(m), compact_left(h, leaves, m)))
                    for x in leaves[m:]:
                        t.compact_append(rng, x)
                    self.assertEqual(t.compact_fold(rng), root)

    def test_empty_tree(self):
        for h in ("blake3", "sha256"):
            t = v.Tree(h)
            self.assertEqual(t.root_of_leaf_hashes([]), HFN[h](b""))
            self.assertTrue(t.verify_consistency(0, 5, HFN[h](b""), b"x" * 32, []))
            self.assertFalse(t.verify_consistency(0, 5, b"\x00" * 32, b"x" * 32, []))


class TestNotes(unittest.TestCase):
    def setUp(self):
        self.log = MiniLog("sha256")
        for i in range(5):
            self.log.append(entry("r", i, "task.status", {"state": "working"}))
        self.d = self.log.trusted()

    def test_golden_checkpoints(self):
        for h in ("blake3", "sha256"):
            with open(os.path.join(GOLDEN, f"log-{h}.json")) as f:
                d = v.LogDescriptor.from_json(json.load(f))
            with open(os.path.join(GOLDEN, f"checkpoint-{h}.txt")) as f:
                cp = v.verify_checkpoint(f.read(), d)
            self.assertEqual(cp.size, 19)

    def test_valid_and_witness_lines_ignored(self):
        witness = SigningKey(b"\x33" * 32)
        wline = f"\u2014 witness.example {b64(b'abcd' + witness.sign(b'x').signature)}\n"
        note = self.log.note(extra_lines=[wline])
        self.assertEqual(v.verify_checkpoint(note, self.d).size, 5)
        # an extension line is signed over and kept
        cp = v.verify_checkpoint(self.log.note(body_extra="ext line\n"), self.d)
        self.assertEqual(cp.extensions, ["ext line"])

    def test_rejections(self):
        note = self.log.note()
        bad_sig = note[: -10] + ("A" if note[-10] != "A" else "B") + note[-9:]
        cases = {
            "flipped signature": bad_sig,
            "no trusted signature": self.log.note(sk=SigningKey(b"\x55" * 32)),
            "no blank line": note.replace("\n\n", "\n"),
            "ascii dash": note.replace("\u2014", "-"),
            "tampered size": note.replace("\n5\n", "\n6\n", 1),
            "missing final newline": note[:-1],
        }
        for what, n in cases.items():
            with self.subTest(what):
                with self.assertRaises(v.Invalid):
                    v.verify_checkpoint(n, self.d)
        # origin mismatch: a note from another log with the same key
        o = MiniLog("sha256", origin="other.test/log")
        o.entries = self.log.entries
        with self.assertRaisesRegex(v.Invalid, "signature|origin"):
            v.verify_checkpoint(o.note(), self.d)

    def test_vkey_parsing(self):
        vk = self.log.vkey()
        v.VerifierKey.parse(vk)
        name, kid, key = vk.split("+", 2)
        for bad in (f"{name}+00000000+{key}", f"{name}+{kid.upper()}+{key}", f"{name}+{kid}",
                    name + "+" + kid + "+" + b64(b"\x02" + self.log.pub)):
            with self.assertRaises(ValueError):
                v.VerifierKey.parse(bad)
        with self.assertRaises(ValueError):  # key name must equal origin
            v.LogDescriptor.from_json({"origin": "x", "hash": "sha256", "vkey": vk})


class TestEntries(unittest.TestCase):
    def base(self, **over):
        m = {"v": 1, "ts": TS0, "run": "r", "seq": 0, "kind": "task.status", "actor": "a",
             "attrs": {"state": "working"}}
        m.update(over)
        return m

    def test_golden_entries_decode(self):
        kinds = set()
        for kind, raw in golden_entries():
            e = v.decode_entry(raw)
            self.assertEqual(e.kind, kind)
            kinds.add(kind)
        self.assertEqual(kinds, set(v.KINDS) - set(v.KINDS_1_1))

    def test_non_canonical_rejected(self):
        good = enc(self.base())
        v.decode_entry(good)
        seq0 = bytes.fromhex("6373657100")  # "seq": 0
        self.assertIn(seq0, good)
        cases = {
            "non-shortest int": good.replace(seq0, bytes.fromhex("63736571" "1800")),
            "float": good.replace(seq0, bytes.fromhex("63736571" "f90000")),
            "tag": good.replace(seq0, bytes.fromhex("63736571" "c000")),
            "trailing": good + b"\x00",
            "truncated": good[:-1],
            "indefinite map": b"\xbf" + good[1:] + b"\xff",
            # keys out of order: "ts" before "v"
            "unsorted": cbor2.dumps(dict([("ts", TS0), ("v", 1)] + [(k, x) for k, x in self.base().items()
                                                                  if k not in ("v", "ts")])),
            "duplicate key": bytes([good[0] + 1]) + good[1:] + enc({"v": 1})[1:],
            "byte-string key": bytes([good[0] + 1]) + good[1:] + bytes.fromhex("4178") + b"\x00",
            "non-shortest length": good.replace(bytes.fromhex("63736571"), bytes.fromhex("7803736571")),
        }
        for what, raw in cases.items():
            with self.subTest(what):
                with self.assertRaises(v.Invalid):
                    v.decode_entry(raw)

    def test_schema_rejected(self):
        small_order = b"\x01" + b"\x00" * 31  # the identity point
        cases = {
            "v=2": self.base(v=2),
            "unknown key": dict(self.base(), zzz=1),
            "missing actor": {k: x for k, x in self.base().items() if k != "actor"},
            "bad run char": self.base(run="a b"),
            "empty run": self.base(run=""),
            "long run": self.base(run="r" * 129),
            "unknown kind": self.base(kind="task.exploded"),
            "negative seq": self.base(seq=-1),
            "bool seq": self.base(seq=True),
            "payload 31 bytes": self.base(payload=b"\x00" * 31),
            "unknown attr": self.base(attrs={"state": "working", "extra": "x"}),
            "missing attr": self.base(kind="task.failed", attrs={"artifacts": [], "elapsed_ms": 1}),
            "pct 101": self.base(kind="skill.progress", attrs={"pct": 101, "stage": "s", "message": "m"}),
            "bad protocol": self.base(kind="task.accepted", attrs={"protocol": "ftp", "skill": "s",
                                                                   "caller": "c", "input_hash": b"\x00" * 32}),
            "bad status": self.base(kind="receipt.sealed", attrs={"content_hash": b"\x00" * 32, "events": 0,
                                                                  "status": "done", "sig": b"\x00" * 64}),
            "small-order key": self.base(run="id/a", kind="identity.registered",
                                         attrs={"alg": "ed25519", "public_key": small_order}),
            "identity outside id/": self.base(kind="identity.registered",
                                              attrs={"alg": "ed25519", "public_key": bytes(SigningKey(b"\x01" * 32).verify_key)}),
        }
        for what, m in cases.items():
            with self.subTest(what):
                with self.assertRaises(v.Invalid):
                    v.decode_entry(enc(m))
        v.decode_entry(enc(self.base(run="id/a", kind="identity.registered",
                                     attrs={"alg": "ed25519", "public_key": bytes(SigningKey(b"\x01" * 32).verify_key)})))

    def test_size_limit(self):
        base_len = len(enc(self.base(attrs={"state": "working", "message": ""})))
        # message of length L costs L + 3 header bytes instead of 1 for L >= 256
        fill = 65536 - base_len + 1 - 3
        exact = enc(self.base(attrs={"state": "working", "message": "x" * fill}))
        self.assertEqual(len(exact), 65536)
        v.decode_entry(exact)
        over = enc(self.base(attrs={"state": "working", "message": "x" * (fill + 1)}))
        self.assertEqual(len(over), 65537)
        with self.assertRaisesRegex(v.Invalid, "64 KiB"):
            v.decode_entry(over)


class TestRevision11(unittest.TestCase):
    """SPEC revision 1.1: optional `context` and `parent` on task.accepted, the payload.erased kind."""

    ACCEPTED = {"protocol": "a2a", "skill": "s", "caller": "c", "input_hash": b"\x01" * 32}
    HASH = blake3.blake3(b"erased payload").digest()

    def accepted(self, **attrs):
        return entry("r", 0, "task.accepted", dict(self.ACCEPTED, **attrs))

    def erased(self, run=None, seq=0, h=None):
        h = self.HASH if h is None else h
        return entry("erasure/" + self.HASH.hex() if run is None else run, seq, "payload.erased",
                     {"hash": h, "reason": "asked", "approver": "dpo"})

    def test_golden_1_1_entries(self):
        kinds = set()
        for kind, raw in golden_entries("entries-1.1.txt"):
            e = v.decode_entry(raw)
            self.assertEqual(e.kind, kind)
            kinds.add(kind)
            if kind == "payload.erased":
                self.assertEqual((e.run, e.seq), ("erasure/" + e.attrs["hash"].hex(), 0))
        self.assertEqual(kinds, {"task.accepted", "payload.erased"})
        first = v.decode_entry(golden_entries("entries-1.1.txt")[0][1])
        self.assertEqual((first.attrs["context"], first.attrs["parent"]), ("ctx-7f3a", "golden-0"))
        # 1.0 and 1.1 fixtures together hold every kind.
        self.assertEqual(kinds | {k for k, _ in golden_entries()}, set(v.KINDS))

    def test_golden_1_1_receipts(self):
        for h in ("blake3", "sha256"):
            with open(os.path.join(GOLDEN, f"receipt-1.1-{h}.json")) as f:
                rec = json.load(f)
            with open(os.path.join(GOLDEN, f"log-{h}.json")) as f:
                desc = v.LogDescriptor.from_json(json.load(f))
            out = v.verify_receipt(rec, desc)
            self.assertEqual((out["ok"], out["run"], out["events"]), (True, "golden-child", 5))
            accepted = v.decode_entry(base64.b64decode(rec["entries"][0]["entry"]))
            self.assertEqual(accepted.attrs["parent"], "golden-0")

    def test_valid_shapes(self):
        for attrs in ({}, {"context": "c"}, {"context": "x" * 256}, {"parent": "p/1:a.b_c-d"},
                      {"context": "ctx", "parent": "r" * 128}):
            with self.subTest(attrs=attrs):
                self.assertEqual(v.decode_entry(self.accepted(**attrs)).attrs, dict(self.ACCEPTED, **attrs))
        e = v.decode_entry(self.erased())
        self.assertEqual((e.kind, e.attrs["hash"]), ("payload.erased", self.HASH))
        # A 1.0 kind in an erasure/ run stays valid (1.1 accepts everything 1.0 did).
        v.decode_entry(entry("erasure/" + self.HASH.hex(), 3, "task.status", {"state": "working"}))

    def test_rejections_each_with_its_reason(self):
        # Keys out of canonical order: context (7 bytes) before parent (6 bytes).
        top = {"v": 1, "ts": TS0, "run": "r", "seq": 0, "kind": "task.accepted", "actor": "svc"}
        attrs = {"skill": "s", "caller": "c", "context": "ctx", "parent": "p", "protocol": "a2a",
                 "input_hash": b"\x01" * 32}
        unsorted = cbor2.dumps(dict(top, attrs=attrs))  # insertion order, not canonical
        self.assertEqual(unsorted, enc(dict(top, attrs=attrs)).replace(
            b"\x66parent\x61p\x67context\x63ctx", b"\x67context\x63ctx\x66parent\x61p"))
        cases = [
            ("key order", unsorted, "order|canonical|sorted"),
            ("empty context", self.accepted(context=""), "context is 0 bytes"),
            ("long context", self.accepted(context="x" * 257), "context is 257 bytes"),
            ("long context (multi-byte)", self.accepted(context="é" * 129), "context is 258 bytes"),
            ("context not text", self.accepted(context=b"ctx"), "context"),
            ("bad parent", self.accepted(parent="has space"), "parent .* is not a run id"),
            ("empty parent", self.accepted(parent=""), "parent .* is not a run id"),
            ("long parent", self.accepted(parent="r" * 129), "parent .* is not a run id"),
            ("erasure in another run", self.erased(run="erasure/" + bytes(32).hex()), "must be in run erasure/"),
            ("erasure in an uppercase run", self.erased(run="erasure/" + self.HASH.hex().upper()),
             "must be in run erasure/"),
            ("erasure at seq 1", self.erased(seq=1), "at seq 0, not 1"),
            ("erasure with a 31-byte hash", self.erased(h=self.HASH[:31]), "hash.*bytes\\(32\\)"),
            ("erasure without approver", entry("erasure/" + self.HASH.hex(), 0, "payload.erased",
                                               {"hash": self.HASH, "reason": "r"}), "missing key attrs.'approver'"),
        ]
        for what, raw, reason in cases:
            with self.subTest(what):
                with self.assertRaisesRegex(v.Invalid, reason):
                    v.decode_entry(raw)

    def test_fuzz_seeds_agree(self):
        """The 1.1 seeds of the entry_decode corpus: the good ones decode, the near misses do not."""
        corpus = os.path.join(HERE, "..", "..", "fuzz", "corpus", "entry_decode")
        names = sorted(n for n in os.listdir(corpus) if n.startswith("seed-1.1-"))
        self.assertEqual(len(names), 11)
        for name in names:
            with self.subTest(name), open(os.path.join(corpus, name), "rb") as f:
                raw = f.read()
                if name.startswith("seed-1.1-bad-"):
                    with self.assertRaises(v.Invalid):
                        v.decode_entry(raw)
                else:
                    v.decode_entry(raw)

    def test_pack_with_an_erasure(self):
        log = build_scenario("blake3")
        log.append(self.erased())
        n = len(log.entries)
        for s in (0, n - 1):
            with self.subTest(start=s):
                out = v.verify_pack_files(build_pack(log, s, n), log.trusted())
                self.assertTrue(out["ok"], out)
                self.assertIn("erasure/" + self.HASH.hex(), out["unsealed"])
                erased = out["payloads_erased"]
                self.assertEqual([(x["hash"], x["index"], x["approver"]) for x in erased],
                                 [(self.HASH.hex(), n - 1, "dpo")] if s < n else [], out)

    def test_pack_payload_report(self):
        log = build_scenario("blake3")
        log.append(self.erased())
        n = len(log.entries)
        named = set()
        for raw in log.entries:
            d = cbor2.loads(raw)
            if "payload" in d:
                named.add(d["payload"])
            if d["kind"] == "task.accepted":
                named.add(d["attrs"]["input_hash"])
            if d["kind"] in ("artifact.added", "workspace.read", "workspace.written"):
                named.add(d["attrs"]["hash"])
        named = sorted(named)
        self.assertTrue(named, "the scenario names payloads")
        files = build_pack(log, 0, n)
        out = v.verify_pack_files(files, log.trusted())
        self.assertEqual((out["payloads_included"], out["payloads_absent"]), (0, [h.hex() for h in named]), out)
        # No payload bytes are known for the scenario's hashes, so include a file for one that is
        # named by a test entry of its own: an erased hash's bytes are never included by a server.
        good = {"payloads/" + blake3.blake3(b"hi").hexdigest(): b"hi"}
        out = v.verify_pack_files(build_pack(log, 0, n, extra=good), log.trusted())
        self.assertTrue(out["ok"], out)
        self.assertEqual(out["payloads_included"], 1)
        bad = {"payloads/" + blake3.blake3(b"hi").hexdigest(): b"hI"}
        out = v.verify_pack_files(build_pack(log, 0, n, extra=bad), log.trusted())
        self.assertFalse(out["ok"])
        self.assertEqual(out["check"], "payload")
        self.assertIn("payloads/" + blake3.blake3(b"hi").hexdigest(), out["reason"])


class TestEd25519(unittest.TestCase):
    # The eight small-order points of edwards25519 (canonical encodings).
    SMALL_ORDER = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ]

    def test_small_order_keys(self):
        for hx in self.SMALL_ORDER:
            b = bytes.fromhex(hx)
            self.assertIsNotNone(v._ed_decompress(b), hx)   # on the curve ...
            self.assertFalse(v.ed25519_key_ok(b), hx)       # ... but of small order
        rnd = random.Random(8032)
        for _ in range(20):
            self.assertTrue(v.ed25519_key_ok(bytes(SigningKey(rnd.randbytes(32)).verify_key)))

    def test_strict_verification(self):
        ident = bytes.fromhex(self.SMALL_ORDER[0])
        # A = R = identity, S = 0 satisfies the cofactorless equation for every message.
        self.assertFalse(v.ed25519_verify_strict(ident, b"any message", ident + bytes(32)))
        sk = SigningKey(b"\x05" * 32)
        sig = sk.sign(b"m").signature
        pk = bytes(sk.verify_key)
        self.assertTrue(v.ed25519_verify_strict(pk, b"m", sig))
        # non-canonical S: S + L
        L = 2**252 + 27742317777372353535851937790883648493
        s_plus_l = (int.from_bytes(sig[32:], "little") + L).to_bytes(32, "little")
        self.assertFalse(v.ed25519_verify_strict(pk, b"m", sig[:32] + s_plus_l))


class TestReceipts(unittest.TestCase):
    def assertStep(self, rec, log, step, index="any"):
        with self.assertRaises(v.StepFailure) as cm:
            v.verify_receipt(rec, log)
        self.assertEqual(cm.exception.step, step, cm.exception.reason)
        if index != "any":
            self.assertEqual(cm.exception.index, index, cm.exception.reason)
        return cm.exception

    def test_golden_receipts(self):
        for h in ("blake3", "sha256"):
            rec, d = load_golden(h)
            out = v.verify_receipt(rec, d)
            self.assertEqual((out["ok"], out["run"], out["events"], out["tree_size"]), (True, "golden-1", 5, 19))

    def test_golden_tampering(self):
        for h in ("blake3", "sha256"):
            rec, d = load_golden(h)
            with self.subTest(h=h, what="checkpoint signature"):
                r = copy.deepcopy(rec)
                text, sigline = r["checkpoint"].rsplit("\n\n", 1)
                dash, name, sig = sigline.rstrip("\n").split(" ")
                r["checkpoint"] = f"{text}\n\n{dash} {name} {flip_b64(sig, 10)}\n"
                self.assertStep(r, d, 1, None)
            with self.subTest(h=h, what="checkpoint root"):
                r = copy.deepcopy(rec)
                lines = r["checkpoint"].split("\n")
                lines[2] = flip_b64(lines[2])
                r["checkpoint"] = "\n".join(lines)
                self.assertStep(r, d, 1)
            with self.subTest(h=h, what="log descriptor"):
                r = copy.deepcopy(rec)
                r["log"]["hash"] = "sha256" if h == "blake3" else "blake3"
                self.assertStep(r, d, 1)
            with self.subTest(h=h, what="proof hash"):
                r = copy.deepcopy(rec)
                r["entries"][2]["proof"][1] = flip_b64(r["entries"][2]["proof"][1], 5)
                self.assertStep(r, d, 2, rec["entries"][2]["index"])
            with self.subTest(h=h, what="entry byte"):
                r = copy.deepcopy(rec)
                r["entries"][3]["entry"] = flip_b64(r["entries"][3]["entry"], 20)
                self.assertStep(r, d, 2, rec["entries"][3]["index"])
            with self.subTest(h=h, what="signer proof"):
                r = copy.deepcopy(rec)
                r["signer"]["proof"][0] = flip_b64(r["signer"]["proof"][0])
                self.assertStep(r, d, 2, rec["signer"]["index"])
            with self.subTest(h=h, what="wrong index"):
                r = copy.deepcopy(rec)
                r["entries"][0]["index"] += 1
                self.assertStep(r, d, 2, rec["entries"][0]["index"] + 1)
            with self.subTest(h=h, what="dropped entry"):
                r = copy.deepcopy(rec)
                del r["entries"][1]
                self.assertStep(r, d, 3)
            with self.subTest(h=h, what="other run name"):
                r = copy.deepcopy(rec)
                r["run"] = "golden-2"
                self.assertStep(r, d, 3, rec["entries"][0]["index"])
            with self.subTest(h=h, what="signer = a run entry"):
                r = copy.deepcopy(rec)
                r["signer"] = copy.deepcopy(rec["entries"][0])
                self.assertStep(r, d, 5, rec["entries"][0]["index"])
            with self.subTest(h=h, what="malformed"):
                r = copy.deepcopy(rec)
                r["entries"][0]["entry"] = "***"
                with self.assertRaises(v.Unchecked):
                    v.verify_receipt(r, d)

    def run_entries(self, h):
        return [entry("job", 0, "task.accepted", {"protocol": "https", "skill": "s", "caller": "c",
                                                  "input_hash": b"\x09" * 32}, grant="g"),
                entry("job", 1, "skill.progress", {"pct": 100, "stage": "x", "message": "m"}),
                entry("job", 2, "task.completed", {"artifacts": ["a"], "elapsed_ms": 7})]

    def build(self, h, run_entries=None, seal_fn=None, signer_pub=None, signer_run="svc"):
        log = MiniLog(h)
        k = SigningKey(b"\x66" * 32)
        log.append(entry("other", 0, "task.status", {"state": "working"}))
        sidx = log.append(identity(signer_run, 0, signer_pub or bytes(k.verify_key)))
        es = run_entries or self.run_entries(h)
        idx = [log.append(x) for x in es]
        log.append(entry("other", 1, "task.status", {"state": "working"}))
        s = seal_fn(es, k) if seal_fn else seal(h, "job", "svc", k, es)
        idx.append(log.append(s))
        log.append(entry("other", 2, "task.status", {"state": "working"}))
        return log, idx, sidx

    def test_built_receipts(self):
        for h in ("blake3", "sha256"):
            with self.subTest(h=h):
                log, idx, sidx = self.build(h)
                out = v.verify_receipt(log.receipt("job", idx, sidx), log.trusted())
                self.assertEqual((out["events"], out["seal_index"], out["signer_index"]), (3, idx[-1], sidx))
                # an older checkpoint still covering everything also works
                out = v.verify_receipt(log.receipt("job", idx, sidx, n=idx[-1] + 1), log.trusted())
                self.assertEqual(out["tree_size"], idx[-1] + 1)

    def test_step3_non_canonical_entry(self):
        for h in ("blake3", "sha256"):
            es = self.run_entries(h)
            seq0 = bytes.fromhex("6373657100")
            es[0] = es[0].replace(seq0, bytes.fromhex("637365711800"))
            log, idx, sidx = self.build(h, run_entries=es)
            self.assertStep(log.receipt("job", idx, sidx), log.trusted(), 3, idx[0])

    def test_step3_other_breaks(self):
        h = "blake3"
        es = self.run_entries(h)
        es[1] = entry("job", 2, "skill.progress", {"pct": 1, "stage": "x", "message": "m"})  # seq gap
        log, idx, sidx = self.build(h, run_entries=es)
        self.assertStep(log.receipt("job", idx, sidx), log.trusted(), 3, idx[1])
        # last entry not a seal
        log, idx, sidx = self.build(h)
        self.assertStep(log.receipt("job", idx[:-1], sidx), log.trusted(), 3, idx[-2])
        # entries out of index order
        log, idx, sidx = self.build(h)
        r = log.receipt("job", idx, sidx)
        r["entries"][0], r["entries"][1] = r["entries"][1], r["entries"][0]
        self.assertStep(r, log.trusted(), 3)

    def test_step4_content_hash_and_events(self):
        for h in ("blake3", "sha256"):
            log, idx, sidx = self.build(h, seal_fn=lambda es, k: seal(h, "job", "svc", k, es, chash=b"\x00" * 32))
            self.assertStep(log.receipt("job", idx, sidx), log.trusted(), 4, idx[-1])
            # the content hash of the other hash function's leaves is wrong too
            other = "sha256" if h == "blake3" else "blake3"
            log, idx, sidx = self.build(h, seal_fn=lambda es, k: seal(other, "job", "svc", k, es))
            self.assertStep(log.receipt("job", idx, sidx), log.trusted(), 4, idx[-1])
            log, idx, sidx = self.build(h, seal_fn=lambda es, k: seal(h, "job", "svc", k, es, events=2))
            self.assertStep(log.receipt("job", idx, sidx), log.trusted(), 4, idx[-1])

    def test_step5_signature_and_signer(self):
        for h in ("blake3", "sha256"):
            wrong = SigningKey(b"\x77" * 32)
            log, idx, sidx = self.build(h, seal_fn=lambda es, k: seal(h, "job", "svc", wrong, es))
            self.assertStep(log.receipt("job", idx, sidx), log.trusted(), 5, idx[-1])
            # seal sig byte flipped (entry rebuilt so inclusion still holds)
            def flipped(es, k):
                m = cbor2.loads(seal(h, "job", "svc", k, es))
                m["attrs"]["sig"] = bytes([m["attrs"]["sig"][0] ^ 1]) + m["attrs"]["sig"][1:]
                return enc(m)
            log, idx, sidx = self.build(h, seal_fn=flipped)
            self.assertStep(log.receipt("job", idx, sidx), log.trusted(), 5, idx[-1])
            # identity of another actor
            log, idx, sidx = self.build(h, signer_run="intruder")
            self.assertStep(log.receipt("job", idx, sidx), log.trusted(), 5, sidx)
            # signer registered after the seal
            log, idx, _ = self.build(h)
            late = log.append(identity("svc", 1, bytes(SigningKey(b"\x66" * 32).verify_key)))
            self.assertStep(log.receipt("job", idx, late), log.trusted(), 5, late)
            # small-order identity key: a forged "signature" must not verify
            small = b"\x01" + b"\x00" * 31
            log, idx, sidx = self.build(h, signer_pub=small)
            self.assertStep(log.receipt("job", idx, sidx), log.trusted(), 5, sidx)


class TestPacks(unittest.TestCase):
    def verify(self, files, log):
        return v.verify_pack_files(files, log.trusted())

    def test_full_and_ranges(self):
        for h in ("blake3", "sha256"):
            log = build_scenario(h)
            n = len(log.entries)
            with self.subTest(h=h, rng="full"):
                out = self.verify(build_pack(log, 0, n), log)
                self.assertTrue(out["ok"], out)
                self.assertEqual((out["entries"], out["runs_verified"], out["seals_verified"]), (n, 2, 3))
                self.assertEqual(out["partial"], ["golden-run"])
                self.assertEqual(out["unsealed"], ["id/gateway", "id/svc"])
            with self.subTest(h=h, rng="[1,n): first r1 signer outside"):
                out = self.verify(build_pack(log, 1, n), log)
                self.assertTrue(out["ok"], out)
                self.assertEqual(out["signer_outside_range"], ["r1"])
                self.assertEqual(out["runs_verified"], 1)
                self.assertIn("id/svc", out["partial"])
            with self.subTest(h=h, rng="[20,n): r1 cut"):
                out = self.verify(build_pack(log, 20, n), log)
                self.assertTrue(out["ok"], out)
                self.assertIn("r1", out["partial"])
                self.assertEqual(out["runs_verified"], 1)  # r2
            for s, e, m in [(0, 0, n), (0, 0, 0), (5, 5, 9), (3, 17, 17), (7, 8, n), (16, 29, n), (1, 2, 2),
                            (0, 1, 1), (13, 27, 28)]:
                with self.subTest(h=h, s=s, e=e, n=m):
                    out = self.verify(build_pack(log, s, e, m), log)
                    self.assertTrue(out["ok"], out)
                    self.assertEqual(out["entries"], e - s)

    def test_dir_and_tar_and_cli(self):
        log = build_scenario("sha256")
        files = build_pack(log, 0, len(log.entries), extra={"payloads/" + blake3.blake3(b"hi").hexdigest(): b"hi"})
        with tempfile.TemporaryDirectory() as tmp:
            d = write_dir(files, os.path.join(tmp, "pack"))
            t = write_tar(files, os.path.join(tmp, "pack.tar"))
            logf = os.path.join(tmp, "log.json")
            with open(logf, "w") as f:
                json.dump(log.descriptor(), f)
            for p in (d, t):
                self.assertTrue(v.verify_pack(p, log.trusted())["ok"])
                code, out = run_cli(["pack", p, "--log", logf])
                self.assertEqual(code, 0, out)
                self.assertEqual(out["runs_verified"], 2)
            bad = dict(files)
            bad["entries.bin"] = bad["entries.bin"][:-1] + bytes([bad["entries.bin"][-1] ^ 1])
            t2 = write_tar(bad, os.path.join(tmp, "bad.tar"))
            code, out = run_cli(["pack", t2, "--log", logf])
            self.assertEqual((code, out["ok"], out["check"]), (1, False, "files"))
            code, out = run_cli(["pack", os.path.join(tmp, "nope.tar"), "--log", logf])
            self.assertEqual(code, 2)

    def test_tampered_packs(self):
        log = build_scenario("blake3")
        n = len(log.entries)

        def flip_entry(files):
            b = bytearray(files["entries.bin"])
            b[40] ^= 1
            files["entries.bin"] = bytes(b)

        def drop_last(files):
            raw = log.entries[n - 1]
            files["entries.bin"] = files["entries.bin"][: -(len(raw) + 4)]

        def bad_left(files):
            p = json.loads(files["proof.json"])
            p["left"][0] = flip_b64(p["left"][0])
            files["proof.json"] = json.dumps(p).encode()

        def bad_cons(files):
            p = json.loads(files["proof.json"])
            p["consistency"][-1] = flip_b64(p["consistency"][-1])
            files["proof.json"] = json.dumps(p).encode()

        def trailing(files):
            files["entries.bin"] += b"\x00\x00"

        def wrong_cp(files):
            files["checkpoint"] = log.note(n - 1).encode()

        def cp_other_key(files):
            files["checkpoint"] = log.note(n, sk=SigningKey(b"\x99" * 32)).encode()

        cases = [
            ("entry flipped (manifest updated)", dict(s=3, e=20, m=n, mutate=flip_entry), "consistency"),
            ("entry dropped", dict(s=3, e=n, m=n, mutate=drop_last), "entries"),
            ("trailing bytes", dict(s=3, e=20, m=n, mutate=trailing), "entries"),
            ("left root", dict(s=5, e=20, m=n, mutate=bad_left), "consistency"),
            ("consistency hash", dict(s=5, e=20, m=n, mutate=bad_cons), "consistency"),
            ("checkpoint of another size", dict(s=5, e=20, m=n, mutate=wrong_cp), "checkpoint"),
            ("checkpoint by another key", dict(s=5, e=20, m=n, mutate=cp_other_key), "checkpoint"),
        ]
        for what, kw, check in cases:
            with self.subTest(what):
                files = build_pack(log, kw["s"], kw["e"], kw["m"], mutate=kw["mutate"])
                with self.assertRaises(v.PackFailure) as cm:
                    self.verify(files, log)
                self.assertEqual(cm.exception.check, check, cm.exception.reason)

        good = build_pack(log, 2, 20)
        # file changed after the manifest was written
        files = dict(good, checkpoint=good["checkpoint"] + b"\n")
        with self.assertRaisesRegex(v.PackFailure, "BLAKE3"):
            self.verify(files, log)
        # listed file missing, required file not listed, wrong descriptor, bad range
        files = dict(good)
        del files["proof.json"]
        with self.assertRaisesRegex(v.PackFailure, "missing"):
            self.verify(files, log)
        for over, msg in [({"files": {"entries.bin": "00" * 32}}, "does not list"),
                          ({"log": dict(log.descriptor(), hash="sha256")}, "descriptor"),
                          ({"start": 21}, "start"), ({"format": "x"}, "format"),
                          ({"end": 19}, "entries.bin holds"), ({"tree_size": n - 1}, "checkpoint size")]:
            with self.subTest(over=over):
                files = build_pack(log, 2, 20, n, man_over=over)
                with self.assertRaisesRegex(v.PackFailure, msg):
                    self.verify(files, log)
        with self.assertRaises(v.Unchecked):
            self.verify({k: x for k, x in good.items() if k != "manifest.json"}, log)

    def test_bad_seals_in_range(self):
        for kw, idx in [(dict(bad_r2_sig=True), 26), (dict(r1_reseal_with_old_key=True), 28)]:
            with self.subTest(**kw):
                log = build_scenario("sha256", **kw)
                out = self.verify(build_pack(log, 0, len(log.entries)), log)
                self.assertFalse(out["ok"])
                self.assertEqual((out["check"], out["index"]), ("seal", idx), out)
                # cut before the run starts: partial, not a failure
                out = self.verify(build_pack(log, 25, len(log.entries)), log)
                self.assertTrue(out["ok"], out)

    def test_bad_entry_in_range(self):
        log = build_scenario("blake3")
        log.append(entry("r9", 0, "task.status", {"state": "working"}).replace(bytes.fromhex("6373657100"),
                                                                              bytes.fromhex("637365711800")))
        out = self.verify(build_pack(log, 10, len(log.entries)), log)
        self.assertFalse(out["ok"])
        self.assertEqual((out["check"], out["index"]), ("entry", len(log.entries) - 1))


def run_cli(args):
    p = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
    return p.returncode, json.loads(p.stdout)


class TestCLI(unittest.TestCase):
    def test_receipt_and_checkpoint(self):
        for h in ("blake3", "sha256"):
            logf = os.path.join(GOLDEN, f"log-{h}.json")
            code, out = run_cli(["receipt", os.path.join(GOLDEN, f"receipt-{h}.json"), "--log", logf])
            self.assertEqual((code, out["ok"], out["run"], out["events"], out["tree_size"]), (0, True, "golden-1", 5, 19))
            code, out = run_cli(["checkpoint", os.path.join(GOLDEN, f"checkpoint-{h}.txt"), "--log", logf])
            self.assertEqual((code, out["ok"], out["tree_size"]), (0, True, 19))
        # wrong descriptor for the receipt -> invalid at step 1
        code, out = run_cli(["receipt", os.path.join(GOLDEN, "receipt-blake3.json"),
                             "--log", os.path.join(GOLDEN, "log-sha256.json")])
        self.assertEqual((code, out["step"]), (1, 1))
        # a checkpoint of the other hash's log has a valid signature but, under the wrong log, still parses
        code, out = run_cli(["receipt", "/nonexistent.json", "--log", os.path.join(GOLDEN, "log-blake3.json")])
        self.assertEqual((code, out["ok"]), (2, False))

    def test_bad_inputs(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.json")
            with open(bad, "w") as f:
                f.write("{nope")
            code, _ = run_cli(["receipt", bad, "--log", os.path.join(GOLDEN, "log-blake3.json")])
            self.assertEqual(code, 2)
            code, _ = run_cli(["receipt", os.path.join(GOLDEN, "receipt-blake3.json"), "--log", bad])
            self.assertEqual(code, 2)
            tampered = os.path.join(tmp, "cp.txt")
            with open(os.path.join(GOLDEN, "checkpoint-blake3.txt")) as f:
                note = f.read()
            with open(tampered, "w") as f:
                f.write(note.replace("\n19\n", "\n20\n"))
            code, out = run_cli(["checkpoint", tampered, "--log", os.path.join(GOLDEN, "log-blake3.json")])
            self.assertEqual((code, out["ok"]), (1, False))

    def test_consistency(self):
        log = build_scenario("sha256")
        n = len(log.entries)
        leaves = log.leaves()
        with tempfile.TemporaryDirectory() as tmp:
            def w(name, data):
                p = os.path.join(tmp, name)
                with open(p, "w") as f:
                    f.write(data if isinstance(data, str) else json.dumps(data))
                return p
            logf = w("log.json", log.descriptor())
            for m in (0, 1, 7, 16, n):
                old = w("old", log.note(m))
                new = w("new", log.note(n))
                pf = w("p.json", {"proof": [b64(x) for x in cproof("sha256", m, leaves)]})
                code, out = run_cli(["consistency", "--log", logf, old, new, "--proof", pf])
                self.assertEqual((code, out), (0, {"ok": True, "old_size": m, "new_size": n, "hash": "sha256"}))
            pf = w("p.json", {"proof": [b64(x) for x in cproof("sha256", 7, leaves)][:-1]})
            code, out = run_cli(["consistency", "--log", logf, w("old", log.note(7)), w("new", log.note(n)),
                                 "--proof", pf])
            self.assertEqual((code, out["check"]), (1, "consistency"))
            # a forked old checkpoint (same size, other root) is rejected
            fork = MiniLog("sha256")
            fork.entries = list(log.entries[:7])
            fork.entries[3] = entry("fork", 0, "task.status", {"state": "working"})
            pf = w("p.json", {"proof": [b64(x) for x in cproof("sha256", 7, leaves)]})
            code, out = run_cli(["consistency", "--log", logf, w("old", fork.note(7)), w("new", log.note(n)),
                                 "--proof", pf])
            self.assertEqual((code, out["check"]), (1, "consistency"))


# ---------------------------------------------------------------------------------------------
# SPEC §8: trust policies and cosignatures. The witnesses, keys and cosignatures here are made
# with this file's own helpers (pynacl); the shared cases in testdata/verify/ are made by the Rust
# side, and both verifiers must reach the same verdict and failing step on each.
# ---------------------------------------------------------------------------------------------

VERIFY = os.path.normpath(os.path.join(HERE, "..", "..", "testdata", "verify"))
NOW = 1_800_000_000


class Witness:
    def __init__(self, name, seed):
        self.name, self.sk = name, SigningKey(bytes([seed]) * 32)
        self.pub = bytes(self.sk.verify_key)
        self.kid = hashlib.sha256(name.encode() + b"\n\x04" + self.pub).digest()[:4]

    def vkey(self):
        return f"{self.name}+{self.kid.hex()}+" + b64(b"\x04" + self.pub)

    def line(self, note, ts=NOW - 60, raw=None):
        text = note[: note.rindex("\n\n") + 1]
        msg = f"cosignature/v1\ntime {ts}\n".encode() + text.encode()
        sig = self.kid + ts.to_bytes(8, "big") + self.sk.sign(msg).signature
        return f"\u2014 {self.name} {b64(raw(sig) if raw else sig)}\n"


W = [Witness(f"w{i}.example/witness", 0x60 + i) for i in range(5)]


def pol(*lines):
    return ("\n".join(lines) + "\n").encode()


class TestPolicyParse(unittest.TestCase):
    def refused(self, data, line, words):
        with self.assertRaises(v.PolicyError) as cm:
            v.parse_policy(data)
        self.assertEqual(cm.exception.line, line, cm.exception)
        self.assertIn(words, str(cm.exception))

    def test_every_line_kind(self):
        log = MiniLog("sha256")
        p = v.parse_policy(pol(
            "# comment, then a blank line", "",
            f"log {log.descriptor()['vkey']} https://log.example/",
            f"witness a {W[0].vkey()} https://a.example/add",
            f"\twitness  b\t{W[1].vkey()}   ",
            f"witness c {W[2].vkey()}",
            "   # an indented comment with non-ASCII \u00e9",
            "group ab all a b", "group top 1 ab c", "quorum top"))
        self.assertEqual([u for _, u in p.logs], ["https://log.example/"])
        self.assertEqual(list(p.witnesses), ["a", "b", "c"])
        self.assertEqual(p.witnesses["a"][1], "https://a.example/add")
        self.assertIsNone(p.witnesses["b"][1])
        self.assertEqual((p.groups["ab"].threshold, p.groups["top"].threshold, p.quorum), (2, 1, "top"))
        self.assertEqual(v.parse_policy(b"quorum none").quorum, "none")  # no final newline
        self.assertEqual(v.parse_policy(pol(f"witness a {W[0].vkey()}", "quorum a")).quorum, "a")
        self.assertEqual(v.parse_policy(pol(f"witness a {W[0].vkey()}", "group g any a", "quorum g"))
                         .groups["g"].threshold, 1)

    def test_refusals(self):
        a, b = f"witness a {W[0].vkey()}", f"witness b {W[1].vkey()}"
        log = MiniLog("sha256").descriptor()["vkey"]
        self.refused(pol(a), 0, "no quorum line")
        self.refused(pol(a, "quorum a", "quorum none"), 3, "second quorum")
        self.refused(pol(a, "quorum"), 2, "quorum takes one name")
        self.refused(pol(a, "quorum a b"), 2, "quorum takes one name")
        self.refused(pol(a, f"witness c {W[0].vkey()}", "quorum a"), 2, "duplicate witness key")
        self.refused(pol(a, f"witness a {W[1].vkey()}", "quorum a"), 2, "duplicate name a")
        self.refused(pol(a, "group a any a", "quorum a"), 2, "duplicate name a")
        self.refused(pol(f"log {log}", f"log {log} https://x/", "quorum none"), 2, "duplicate log key")
        self.refused(pol(a, "group g any a b", b, "quorum g"), 2, "b is not defined on an earlier line")
        self.refused(pol("quorum g", a, "group g any a"), 1, "g is not defined on an earlier line")
        self.refused(pol(a, "group g any g", "quorum g"), 2, "g is not defined on an earlier line")  # no self-reference
        self.refused(pol(a, b, "group g1 any a", "group g2 any a b", "quorum g2"), 4, "a is already a member")
        self.refused(pol(a, "group g 2 a a", "quorum g"), 2, "a is already a member")
        self.refused(pol(a, b, "group g 3 a b", "quorum g"), 3, "threshold 3")
        self.refused(pol(a, b, "group g 0 a b", "quorum g"), 3, "threshold 0")
        self.refused(pol(a, b, "group g -1 a b", "quorum g"), 3, "not a number")
        self.refused(pol(a, b, "group g most a b", "quorum g"), 3, "not a number")
        self.refused(pol(a, "group g any", "quorum g"), 2, "at least one member")
        self.refused(pol(a, "group g any none", "quorum g"), 2, "none is not a member")
        self.refused(pol(f"witness none {W[0].vkey()}", "quorum none"), 1, "reserved")
        self.refused(pol(a, "group none any a", "quorum none"), 2, "reserved")
        self.refused(pol(f"witness a {log}", "quorum a"), 1, "0x04")  # a log key is not a witness key
        self.refused(pol(f"log {W[0].vkey()}", "quorum none"), 1, "vkey")  # nor the other way round
        self.refused(pol("witness a", "quorum none"), 1, "witness takes")
        self.refused(pol(f"witness a {W[0].vkey()} https://a/ extra", "quorum none"), 1, "witness takes")
        self.refused(pol(f"log {log} https://a/ extra", "quorum none"), 1, "log takes")
        self.refused(pol("threshold 1", "quorum none"), 1, "unknown keyword")
        self.refused(pol("quorum none\r"), 1, "0x0d")
        self.refused(pol("# fine", "quorum\x00none"), 2, "0x00")
        self.refused(b"quorum none\n\xff\n", 2, "UTF-8")
        self.refused(b"# " + b"x" * v.MAX_POLICY_BYTES, 0, "limit")
        vk = W[0].vkey()
        self.refused(pol(f"witness a {vk[:-2]}AA", "quorum a"), 1, "")  # key id no longer matches
        self.refused(pol(f"witness a {vk.replace('+', '+X', 1)}", "quorum a"), 1, "key id")
        small = "w+" + hashlib.sha256(b"w\n\x04" + bytes(32)).digest()[:4].hex() + "+" + b64(b"\x04" + bytes(32))
        self.refused(pol(f"witness a {small}", "quorum a"), 1, "small order")
        # comment lines may hold any octets but control characters
        self.assertEqual(v.parse_policy(b"# \xff\xfe\nquorum none\n").quorum, "none")


class TestWitnessQuorum(unittest.TestCase):
    def setUp(self):
        self.log = MiniLog("sha256")
        self.log.append(entry("r", 0, "task.status", {"state": "working"}))
        self.note = self.log.note(1)
        self.p = v.parse_policy(pol(*(f"witness w{i} {W[i].vkey()}" for i in range(3)),
                                    "group two 2 w0 w1 w2", "quorum two"))

    def q(self, note, policy=None, now=NOW):
        return v.witness_quorum(policy or self.p, note, now)

    def test_counts(self):
        n = self.note
        self.assertEqual(self.q(n + W[0].line(n) + W[2].line(n))[0], ["w0", "w2"])
        # unknown keys ignored; a second good line of one witness counts once
        self.assertEqual(self.q(n + W[4].line(n) + W[1].line(n) + W[1].line(n, NOW - 5) + W[2].line(n))[0],
                         ["w1", "w2"])
        with self.assertRaises(v.QuorumFailure) as cm:
            self.q(n + W[0].line(n) + W[4].line(n) + W[3].line(n))
        self.assertEqual((cm.exception.cosigned, cm.exception.not_cosigned),
                         (["w0"], [("w1", "no cosignature"), ("w2", "no cosignature")]))
        self.assertIn("witness quorum not met: cosigned by [w0], not by [w1 (no cosignature)", str(cm.exception))
        # quorum none: nothing needed
        self.assertEqual(self.q(n, v.parse_policy(b"quorum none\n")), ([], []))

    def test_clock(self):
        n = self.note
        ok = n + W[0].line(n, NOW + 600) + W[1].line(n)
        self.assertEqual(self.q(ok)[0], ["w0", "w1"])  # exactly ten minutes ahead still counts
        with self.assertRaises(v.QuorumFailure) as cm:
            self.q(n + W[0].line(n, NOW + 601) + W[1].line(n))
        self.assertEqual(cm.exception.not_cosigned[0], ("w0", f"timestamp {NOW + 601} is in the future"))
        self.assertEqual(self.q(n + W[0].line(n, 0) + W[1].line(n, 2**63 - 1), now=2**63)[0], ["w0", "w1"])

    def test_bad_lines(self):
        n = self.note
        cases = [
            (lambda s: s[:20] + bytes([s[20] ^ 1]) + s[21:], "bad signature"),  # signature bit
            (lambda s: s[:4] + (NOW - 59).to_bytes(8, "big") + s[12:], "bad signature"),  # timestamp not signed
            (lambda s: s[:-1], "malformed cosignature (75 bytes, expected 76)"),
            (lambda s: s + b"\0", "malformed cosignature (77 bytes, expected 76)"),
            (lambda s: s[:4] + (2**63).to_bytes(8, "big") + s[12:], "malformed cosignature (timestamp"),
        ]
        for mangle, why in cases:
            with self.subTest(why=why), self.assertRaises(v.QuorumFailure) as cm:
                self.q(n + W[0].line(n, raw=mangle) + W[1].line(n))
            self.assertTrue(cm.exception.not_cosigned[0][1].startswith(why), cm.exception.not_cosigned)
        # a cosignature of another checkpoint of the same log does not count here
        other = self.log.note(0)
        with self.assertRaises(v.QuorumFailure):
            self.q(n + W[0].line(other) + W[1].line(n))
        # the message is "cosignature/v1\ntime <ts>\n" + text: a signature over the bare text fails
        text = n[: n.rindex("\n\n") + 1]
        bare = W[0].kid + (NOW - 60).to_bytes(8, "big") + W[0].sk.sign(text.encode()).signature
        with self.assertRaises(v.QuorumFailure):
            self.q(n + f"\u2014 {W[0].name} {b64(bare)}\n" + W[1].line(n))

    def test_small_order_witness_key_cannot_cosign(self):
        # A small-order point as key with R = identity, S = 0 verifies everything non-strictly.
        ident = bytes([1]) + bytes(31)
        kid = hashlib.sha256(b"evil\n\x04" + ident).digest()[:4]
        with self.assertRaises(ValueError):
            v.WitnessKey.parse(f"evil+{kid.hex()}+" + b64(b"\x04" + ident))
        k = v.WitnessKey("evil", kid, ident)
        self.assertFalse(k.check("x\n", kid + (1).to_bytes(8, "big") + ident + bytes(32), NOW)[0])

    def test_receipts_and_packs_under_a_policy(self):
        log = build_scenario("sha256")
        n = log.note(len(log.entries))
        rec = log.receipt("r2", [24, 25, 26], 23)
        d = log.trusted()
        rec["checkpoint"] = n + W[0].line(n) + W[2].line(n)
        out = v.verify_receipt(rec, d, self.p, NOW)
        self.assertEqual(out["witnesses"]["cosigned"], ["w0", "w2"])
        rec["checkpoint"] = n + W[0].line(n)
        with self.assertRaises(v.StepFailure) as cm:
            v.verify_receipt(rec, d, self.p, NOW)
        self.assertEqual((cm.exception.step, cm.exception.extra["cosigned"]), ("witness quorum", ["w0"]))
        # without a policy the cosignatures are ignored, as before SPEC §8
        self.assertTrue(v.verify_receipt(rec, d)["ok"])
        # a bad log signature is still step 1, before the quorum
        rec["checkpoint"] = log.note(len(log.entries), sk=SigningKey(b"\x77" * 32)) + W[0].line(n) + W[1].line(n)
        with self.assertRaises(v.StepFailure) as cm:
            v.verify_receipt(rec, d, self.p, NOW)
        self.assertEqual(cm.exception.step, 1)

        files = build_pack(log, 0, len(log.entries))
        self.assertTrue(v.verify_pack_files(files, d)["ok"])
        with self.assertRaises(v.PackFailure) as cm:
            v.verify_pack_files(files, d, self.p, NOW)
        self.assertEqual((cm.exception.check, cm.exception.extra["cosigned"]), ("witness quorum", []))
        files = build_pack(log, 0, len(log.entries),
                           mutate=lambda f: f.update(checkpoint=f["checkpoint"] + (W[1].line(n) + W[2].line(n)).encode()))
        out = v.verify_pack_files(files, d, self.p, NOW)
        self.assertEqual((out["ok"], out["witnesses"]["cosigned"]), (True, ["w1", "w2"]))

    def test_cli(self):
        log = build_scenario("blake3")
        n = log.note(len(log.entries))
        with tempfile.TemporaryDirectory() as tmp:
            def w(name, data):
                p = os.path.join(tmp, name)
                with open(p, "wb") as f:
                    f.write(data if isinstance(data, bytes) else json.dumps(data).encode())
                return p
            logf = w("log.json", log.descriptor())
            polf = w("policy.txt", pol(f"log {log.vkey()}", f"witness a {W[0].vkey()}", "quorum a"))
            rec = log.receipt("r2", [24, 25, 26], 23)
            rec["checkpoint"] = n + W[0].line(n, int(time.time()) - 5)
            code, out = run_cli(["receipt", w("r.json", rec), "--log", logf, "--policy", polf])
            self.assertEqual((code, out["witnesses"]["cosigned"]), (0, ["a"]))
            rec["checkpoint"] = n + W[0].line(n, int(time.time()) + 3600)
            code, out = run_cli(["receipt", w("r.json", rec), "--log", logf, "--policy", polf])
            self.assertEqual((code, out["step"], out["not_cosigned"][0]["name"]), (1, "witness quorum", "a"))
            self.assertIn("in the future", out["not_cosigned"][0]["why"])
            # a policy whose log line is another log's key cannot be used with this descriptor
            other = w("other.txt", pol("log " + MiniLog(seed=b"\x12" * 32).vkey(), "quorum none"))
            code, out = run_cli(["receipt", w("r.json", rec), "--log", logf, "--policy", other])
            self.assertEqual(code, 2)
            code, out = run_cli(["pack", write_dir(build_pack(log, 0, len(log.entries)), os.path.join(tmp, "p")),
                                 "--log", logf, "--policy", polf, "-q"])
            self.assertEqual((code, out["check"]), (1, "witness quorum"))


class TestGoldenCases(unittest.TestCase):
    """testdata/verify/cases.json: the same verdict (exit code) and failing step as ledger-verify."""

    def test_cases(self):
        with open(os.path.join(VERIFY, "cases.json")) as f:
            cases = json.load(f)["cases"]
        self.assertGreater(len(cases), 40)
        for case in cases:
            with self.subTest(case["name"]):
                args = [a if a.startswith("-") or a in ("receipt", "pack", "consistency")
                        else os.path.join(VERIFY, a) for a in case["args"]]
                code, out = v.run_cli(args)
                self.assertEqual(code, case["exit"], out)
                step = case["step"]
                if code == 0:
                    self.assertTrue(out["ok"], out)
                elif code == 1:
                    self.assertEqual(out.get("step", out.get("check")), step, out)
                elif step and step.startswith("policy line "):
                    self.assertIn(f"trust policy, line {step[len('policy line '):]}: ", out["error"])
                elif step == "policy log":
                    self.assertIn("log lines do not list the trusted log key", out["error"])
                else:
                    self.assertIsNone(step)
                if step == "witness quorum" and "cosigned by [" in case["message"]:
                    # both name the witnesses that did cosign, in policy order
                    self.assertIn(f"cosigned by [{', '.join(out['cosigned'])}]", case["message"])


if __name__ == "__main__":
    unittest.main()
