fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    // protox compiles .proto in pure Rust: no protoc on the machine.
    let fds = protox::compile(["wsus/reporting/v1/reporting.proto", "wsus/sync/v1/sync.proto"], ["../../proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
