//! A reader that closes stdout early is not a failure (`ledger-verify inspect FILE | head`).

use std::path::PathBuf;
use std::process::Command;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/golden").join(name)
}

#[test]
fn a_closed_stdout_is_success() {
    // The read end is closed before the child starts, so its first write meets a broken pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-verify"))
        .args(["inspect".as_ref(), golden("receipt-blake3.json").as_os_str()])
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "nothing on stderr, no panic message: {err}");
}

#[test]
fn other_failures_keep_their_exit_codes() {
    // A file that is not there still could not be checked (2), with a closed stdout too.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_ledger-verify"))
        .args(["inspect".as_ref(), golden("no-such-file.json").as_os_str()])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
