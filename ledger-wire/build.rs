//! Compiles `proto/ledger/v1/ledger.proto` (server and client) with protoc, which the set-up
//! scripts install from Debian's `protobuf-compiler`. `AppendRequest.entries` decode as `Bytes`:
//! slices of the received message, handed to the log without a copy (and, in a gateway's
//! spool, resent by cloning references, not bytes).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .bytes(".ledger.v1.AppendRequest.entries")
        .compile_protos(&["proto/ledger/v1/ledger.proto"], &["proto"])?;
    Ok(())
}
