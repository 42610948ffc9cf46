//! The reference material tests are held to lives in the repository's `testdata/`
//! (`testdata/PROVENANCE.md` says where each set comes from), so a clone tests itself.
//! Also the real S3 server the object-storage tests run against ([`S3Server`]), and the
//! tools that check signed Cabinets ([`cabinets`]).

pub mod cabinets;
mod s3;

pub use s3::S3Server;

use std::path::{Path, PathBuf};

/// `len` bytes that do not compress, the same every time (xorshift64): a stand-in for an
/// installer or any payload a compressor should store as it is.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The `testdata/` folder of the repository.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// `testdata/<relative>`.
pub fn path(relative: &str) -> PathBuf {
    root().join(relative)
}

/// The bytes of `testdata/<relative>`; panics naming the file when it cannot be read.
pub fn read(relative: &str) -> Vec<u8> {
    let p = path(relative);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The text of `testdata/<relative>`; panics naming the file when it cannot be read.
pub fn read_to_string(relative: &str) -> String {
    let p = path(relative);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_material_is_in_the_repository() {
        assert!(super::path("PROVENANCE.md").is_file(), "{}", super::root().display());
        assert!(super::read_to_string("wusp/examples/native-capture/GetConfig.request.xml").contains("GetConfig"));
    }
}
