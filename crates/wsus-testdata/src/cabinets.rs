//! Independent checks of signed Cabinets, by tools written elsewhere (Debian's packages,
//! installed by `scripts/test-setup`).

use std::path::Path;
use std::process::Command;

/// `osslsigncode verify` of `cab` with `certificate_pem` the one trusted certificate:
/// (accepted, what it printed).
pub fn osslsigncode_verify(cab: &Path, certificate_pem: &Path) -> (bool, String) {
    let out = Command::new("osslsigncode")
        .args(["verify", "-CAfile"])
        .arg(certificate_pem)
        .arg("-in")
        .arg(cab)
        .output()
        .expect("osslsigncode (scripts/test-setup installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && text.contains("Signature verification: ok"), text)
}

/// The files cabextract unpacks from `cab` into `into`.
pub fn cabextract(cab: &Path, into: &Path) {
    let status = Command::new("cabextract").arg("-q").arg("-d").arg(into).arg(cab).status().expect("cabextract");
    assert!(status.success(), "cabextract {}", cab.display());
}
