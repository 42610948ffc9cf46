//! Signed Cabinets checked by tools written elsewhere: osslsigncode (Debian's, the
//! Authenticode verifier used beside signtool) accepts the signature against the exported
//! certificate and refuses it once a byte changes; cabextract unpacks the installer
//! byte for byte. Our own parser reads the signature back too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::TimeZone as _;
use wsus_signing::{SigningCertificate, SigningError, cabinet};
use wsus_testdata::cabinets::{cabextract, osslsigncode_verify};

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn installer(dir: &Path, name: &str, size: usize) -> PathBuf {
    // Not compressible, like a real installer; deterministic.
    let path = dir.join(name);
    std::fs::write(&path, wsus_testdata::noise(size)).unwrap();
    path
}

fn signed_cabinet(dir: &Path, signer: &SigningCertificate, size: usize) -> (PathBuf, PathBuf) {
    let msi = installer(dir, "contoso-tool-1.2.3.msi", size);
    let cab = dir.join("package.cab");
    let modified = chrono::Utc.with_ymd_and_hms(2026, 11, 10, 8, 30, 0).unwrap();
    cabinet::write(&cab, &[("contoso-tool-1.2.3.msi", &msi)], modified).unwrap();
    cabinet::sign(&cab, signer).unwrap();
    (cab, msi)
}

#[test]
fn osslsigncode_accepts_a_signed_cabinet_against_the_exported_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let signer = SigningCertificate::generate("WSUS Publishers Self-signed", YEAR).unwrap();
    let pem = dir.path().join("signing.pem");
    std::fs::write(&pem, signer.certificate_pem().unwrap()).unwrap();
    let (cab, msi) = signed_cabinet(dir.path(), &signer, 3 * 1024 * 1024 + 17);

    let (ok, out) = osslsigncode_verify(&cab, &pem);
    assert!(ok, "{out}");
    let ours = cabinet::verify(&cab).unwrap();
    assert_eq!(ours.tbs_certificate.subject.to_string(), "CN=WSUS Publishers Self-signed");

    // cabextract unpacks the installer, byte for byte.
    let unpacked = dir.path().join("unpacked");
    cabextract(&cab, &unpacked);
    assert_eq!(std::fs::read(unpacked.join("contoso-tool-1.2.3.msi")).unwrap(), std::fs::read(&msi).unwrap());

    // Another certificate is not trusted for it.
    let other = SigningCertificate::generate("Someone else", YEAR).unwrap();
    let other_pem = dir.path().join("other.pem");
    std::fs::write(&other_pem, other.certificate_pem().unwrap()).unwrap();
    assert!(!osslsigncode_verify(&cab, &other_pem).0);
}

#[test]
fn a_changed_byte_breaks_the_signature() {
    let dir = tempfile::tempdir().unwrap();
    let signer = SigningCertificate::generate("Contoso IT", YEAR).unwrap();
    let pem = dir.path().join("signing.pem");
    std::fs::write(&pem, signer.certificate_pem().unwrap()).unwrap();
    let (cab, _) = signed_cabinet(dir.path(), &signer, 100_000);
    let mut bytes = std::fs::read(&cab).unwrap();
    bytes[5000] ^= 1;
    std::fs::write(&cab, &bytes).unwrap();
    assert!(!osslsigncode_verify(&cab, &pem).0);
    assert!(matches!(cabinet::verify(&cab), Err(SigningError::Signature(_))));
}

#[test]
fn a_certificate_and_key_from_pem_sign_alike() {
    let dir = tempfile::tempdir().unwrap();
    let generated = SigningCertificate::generate("Contoso IT", YEAR).unwrap();
    let (cert_pem, key_pem) = (generated.certificate_pem().unwrap(), generated.key_pem().unwrap());
    let loaded = SigningCertificate::from_pem(&cert_pem, &key_pem).unwrap();
    assert_eq!(loaded.thumbprint(), generated.thumbprint());
    assert!(loaded.not_after() > chrono::Utc::now() + chrono::Duration::days(360));
    let pem = dir.path().join("signing.pem");
    std::fs::write(&pem, &cert_pem).unwrap();
    let (cab, _) = signed_cabinet(dir.path(), &loaded, 1000);
    assert!(osslsigncode_verify(&cab, &pem).0);

    // A key that is not the certificate's is refused, and so is what is not a key.
    let stranger = SigningCertificate::generate("Stranger", YEAR).unwrap();
    let mismatch = SigningCertificate::from_pem(&cert_pem, &stranger.key_pem().unwrap()).unwrap_err();
    assert!(mismatch.to_string().contains("not the certificate's"), "{mismatch}");
    assert!(SigningCertificate::from_pem(&cert_pem, &cert_pem).is_err());
    assert!(SigningCertificate::from_pem("", &key_pem).is_err());
}

#[test]
fn an_unsigned_or_foreign_file_is_not_taken_for_a_signed_cabinet() {
    let dir = tempfile::tempdir().unwrap();
    let msi = installer(dir.path(), "a.msi", 10);
    let cab = dir.path().join("unsigned.cab");
    cabinet::write(&cab, &[("a.msi", &msi)], chrono::Utc::now()).unwrap();
    assert!(matches!(cabinet::verify(&cab), Err(SigningError::Signature(_))));
    assert!(matches!(cabinet::verify(&msi), Err(SigningError::Cabinet(_))));
    let signer = SigningCertificate::generate("Contoso IT", YEAR).unwrap();
    cabinet::sign(&cab, &signer).unwrap();
    assert!(matches!(cabinet::sign(&cab, &signer), Err(SigningError::Cabinet(_))), "signed once only");
}

/// `openssl pkcs12 -export` of `signer` into `pfx` with `password` and `extra` arguments.
fn openssl_export(dir: &Path, signer: &SigningCertificate, pfx: &Path, password: &str, extra: &[&str]) {
    let (cert, key) = (dir.join("export.crt"), dir.join("export.key"));
    std::fs::write(&cert, signer.certificate_pem().unwrap()).unwrap();
    std::fs::write(&key, signer.key_pem().unwrap()).unwrap();
    let status = Command::new("openssl")
        .args(["pkcs12", "-export", "-in"])
        .arg(&cert)
        .arg("-inkey")
        .arg(&key)
        .arg("-out")
        .arg(pfx)
        .arg("-passout")
        .arg(format!("pass:{password}"))
        .args(extra)
        .status()
        .expect("openssl (scripts/test-setup installs it)");
    assert!(status.success());
}

/// A PKCS#12 file as OpenSSL 3 exports one (PBES2, AES-256-CBC, PBKDF2 with HMAC-SHA-256,
/// a SHA-256 MAC), as Windows' "AES256-SHA256" export does: its certificate and key sign
/// as the PEM ones do; a wrong password and the older 3DES encryption are refused, saying why.
#[test]
fn a_pkcs12_file_from_openssl_signs_alike() {
    let dir = tempfile::tempdir().unwrap();
    let signer = SigningCertificate::generate("Contoso IT", YEAR).unwrap();
    let pfx = dir.path().join("signing.pfx");
    openssl_export(dir.path(), &signer, &pfx, "pfx-pass-1", &[]);
    let bytes = std::fs::read(&pfx).unwrap();
    let loaded = SigningCertificate::from_pkcs12(&bytes, "pfx-pass-1").unwrap();
    assert_eq!(loaded.thumbprint(), signer.thumbprint());
    let pem = dir.path().join("signing.pem");
    std::fs::write(&pem, signer.certificate_pem().unwrap()).unwrap();
    let (cab, _) = signed_cabinet(dir.path(), &loaded, 5000);
    assert!(osslsigncode_verify(&cab, &pem).0);

    let wrong = SigningCertificate::from_pkcs12(&bytes, "not-it").unwrap_err();
    assert!(wrong.to_string().contains("wrong password"), "{wrong}");
    assert!(SigningCertificate::from_pkcs12(b"not a pfx", "x").is_err());

    let legacy = dir.path().join("legacy.pfx");
    openssl_export(
        dir.path(),
        &signer,
        &legacy,
        "pfx-pass-1",
        &["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"],
    );
    let refused = SigningCertificate::from_pkcs12(&std::fs::read(&legacy).unwrap(), "pfx-pass-1").unwrap_err();
    assert!(refused.to_string().contains("AES-256"), "{refused}");
}
