"""Reads a SPEC §7 export back with a real Parquet reader (pyarrow) and compares it row by row
with the pack it came from, decoded independently (cbor2, blake3/hashlib).

    python check_export.py PACK_DIR OUT.parquet [OUT.jsonl]

Prints "ok <rows>" and exits 0, or raises on the first difference.
"""
import hashlib
import json
import struct
import sys

import blake3
import cbor2
import pyarrow.parquet as pq


def attrs_json(v):
    """SPEC §7: attrs as JSON, byte strings as lowercase hex."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {k: attrs_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [attrs_json(x) for x in v]
    return v


def main():
    pack_dir, parquet_path = sys.argv[1], sys.argv[2]
    jsonl_path = sys.argv[3] if len(sys.argv) > 3 else None
    manifest = json.load(open(f"{pack_dir}/manifest.json"))
    leaf = (lambda b: blake3.blake3(b"\x00" + b).digest()) if manifest["log"]["hash"] == "blake3" \
        else (lambda b: hashlib.sha256(b"\x00" + b).digest())
    data = open(f"{pack_dir}/entries.bin", "rb").read()
    entries, at = [], 0
    while at < len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        entries.append(data[at + 4:at + 4 + n])
        at += 4 + n

    table = pq.read_table(parquet_path)
    schema = {f.name: str(f.type) for f in table.schema}
    expected_types = {
        "index": "uint64", "leaf_hash": "fixed_size_binary[32]", "run": "string", "seq": "uint64",
        "kind": "dictionary<values=string, indices=int32, ordered=0>", "ts": "timestamp[ns, tz=UTC]",
        "actor": "string", "grant": "string", "payload": "fixed_size_binary[32]", "attrs": "string",
    }
    assert schema == expected_types, f"schema {schema}"
    assert table.num_rows == len(entries), f"{table.num_rows} rows for {len(entries)} entries"
    # ts is compared through its int64 view below (Python datetimes hold microseconds only).
    rows = table.drop_columns(["ts"]).to_pylist()
    lines = [json.loads(l) for l in open(jsonl_path)] if jsonl_path else None
    if lines is not None:
        assert len(lines) == len(entries)
    for i, (raw, row) in enumerate(zip(entries, rows)):
        e = cbor2.loads(raw)
        want = {
            "index": manifest["start"] + i,
            "leaf_hash": leaf(raw),
            "run": e["run"],
            "seq": e["seq"],
            "kind": e["kind"],
            "actor": e["actor"],
            "grant": e.get("grant"),
            "payload": e.get("payload"),
        }
        got = {k: row[k] for k in want}
        assert got == want, f"row {i}: {got} != {want}"
        assert json.loads(row["attrs"]) == attrs_json(e["attrs"]), f"row {i}: attrs {row['attrs']}"
        if lines is not None:
            l = lines[i]
            assert l["index"] == want["index"] and l["leaf_hash"] == want["leaf_hash"].hex(), f"jsonl {i}"
            assert l["attrs"] == attrs_json(e["attrs"]) and l["ts"] == e["ts"], f"jsonl {i}"
    # ts exactly, nanoseconds, through the integer view.
    ts_ints = table.column("ts").cast("int64").to_pylist()
    assert ts_ints == [cbor2.loads(r)["ts"] for r in entries], "ts column"
    print(f"ok {len(rows)}")


if __name__ == "__main__":
    main()
