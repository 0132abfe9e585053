//! `ledger-verify export`: Parquet and JSON lines read back by a real Parquet reader (pyarrow,
//! through tests/python/check_export.py) and compared row by row with the pack; and nothing is
//! left behind when the pack fails.

mod common;

use common::*;
use ledger_core::{Entry, Event, RunId};

#[test]
fn parquet_and_jsonl_match_the_pack_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_runs(40);
    // Rows with a grant and a payload, for the nullable columns.
    let run_id = RunId::new("with-grant").unwrap();
    let e = Entry {
        ts: 1_767_225_600_123_456_789,
        run: run_id,
        seq: 0,
        actor: "gateway".into(),
        event: Event::WorkspaceWritten { path: "out/report.md".into(), bytes: 42, hash: [7; 32] },
        grant: Some("grant-1".into()),
        payload: Some([9; 32]),
    };
    log.append(vec![e.encode()]).unwrap();
    log.sign_checkpoint().unwrap();
    let n = log.durable_size();
    let log_json = dir.path().join("log.json");
    std::fs::write(&log_json, serde_json::to_vec(log.descriptor()).unwrap()).unwrap();
    for (start, end) in [(0, n), (7, n - 5)] {
        let pack = write_dir(&dir.path().join(format!("pack-{start}")), &pack_files(&log, start, end));
        let (pq, jl) = (dir.path().join(format!("{start}.parquet")), dir.path().join(format!("{start}.jsonl")));
        let (code, out, err) = export(&pack, &log_json, &pq, &jl);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("exported   {} rows", end - start)), "{out}");
        check_export_with_pyarrow(&pack, &pq, &jl, end - start);
    }

    // A pack that fails leaves no output behind.
    let mut files = pack_files(&log, 0, n);
    let mid = files[3].1.len() / 2;
    files[3].1[mid] ^= 1;
    let bad = write_dir(&dir.path().join("bad"), &files);
    let out = dir.path().join("bad.parquet");
    let (code, _, err) = run(&[
        "export".as_ref(),
        bad.as_os_str(),
        "--log".as_ref(),
        log_json.as_os_str(),
        "--parquet".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists() && !dir.path().join("bad.parquet.partial").exists());
}
