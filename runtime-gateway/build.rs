//! Compiles the ledger's gRPC client from ledger-server's `.proto` (one source of truth for the
//! wire) with protoc, which the set-up scripts install from Debian's `protobuf-compiler`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../ledger-server/proto";
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure()
        .build_server(false)
        // As on the server: a spooled batch is resent by cloning references, not bytes.
        .bytes(".ledger.v1.AppendRequest.entries")
        .compile_protos(&[format!("{proto}/ledger/v1/ledger.proto")], &[proto.to_string()])?;
    Ok(())
}
