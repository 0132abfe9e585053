//! Compiles the A2A 1.0 gRPC binding (package `lf.a2a.v1`, server and client) from
//! `proto/a2a-v1.binpb`, the specification's own a2a.proto as the official SDK ships it
//! compiled (`scripts/a2a-descriptor` writes it and `scripts/test` checks it). Messages get the
//! proto3 JSON mapping (pbjson), which is the A2A JSON form: the gRPC service converts each
//! request to the JSON the other two bindings' shared operations take, and their answers back.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/a2a-v1.binpb");
    let bytes = std::fs::read("proto/a2a-v1.binpb")?;
    let fds = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    tonic_prost_build::configure()
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    pbjson_build::Builder::new()
        .register_descriptors(&bytes)?
        .out_dir(&out)
        .extern_path(".google.protobuf", "::pbjson_types")
        // Our answers are made by the shared operations, as the other bindings' JSON: a field
        // the proto does not have is dropped rather than failing the call.
        .ignore_unknown_fields()
        .build(&[".lf.a2a.v1"])?;
    Ok(())
}
