//! Compiles the protobuf schemas in `proto/` with protox (pure Rust, no system `protoc`).
use std::path::{Path, PathBuf};

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read proto dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            proto_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // `sqlx::migrate!` embeds the migration files at compile time but cannot tell cargo about
    // them: a new or changed migration must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    // The ledger's own schemas: everything under `proto/` except the KurrentDB protocol, whose
    // imports are bare (`import "shared.proto"`) and which compiles on its own below.
    let mut files = Vec::new();
    proto_files(Path::new("proto/ledger"), &mut files);
    let fds = protox::compile(&files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("ledger_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // Undecodable requests answer INVALID_ARGUMENT, not tonic_prost's INTERNAL.
        .codec_path("crate::api::codec::LedgerCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;

    // The KurrentDB client protocol (v1), served by `src/kurrentdb/`; the client code drives it
    // in the tests and in `ledger bench`.
    let mut files = Vec::new();
    proto_files(Path::new("proto/kurrentdb"), &mut files);
    let fds = protox::compile(&files, ["proto/kurrentdb"])?;
    tonic_prost_build::configure()
        .codec_path("crate::api::codec::LedgerCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
