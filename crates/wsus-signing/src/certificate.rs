//! The server's code-signing certificate: generated self-signed on request (as WSUS's
//! `SetSigningCertificate` does) or loaded from PEM, with an RSA key. Clients trust what
//! it signs once it is in their Trusted Publishers store (and, self-signed, in Trusted
//! Root) and the policy "Allow signed updates from an intranet Microsoft update service
//! location" is on.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _};
use chrono::{DateTime, Utc};
use const_oid::db::rfc5280::ID_KP_CODE_SIGNING;
use const_oid::db::rfc5912::{RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION};
use der::asn1::{BitString, OctetString};
use der::{Any, Decode, DecodePem, Encode, EncodePem};
use sha1::Digest as _;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::AsExtension;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::SigningError;

/// Below this, Windows refuses the signature (KB2661254 blocks under 1024; publishing
/// guidance asks for 2048).
const MIN_KEY_BITS: usize = 2048;

/// A code-signing certificate and its private key.
pub struct SigningCertificate {
    certificate: Certificate,
    der: Vec<u8>,
    /// Certificates between it and a root, sent beside it in each signature.
    chain: Vec<Certificate>,
    key: KeyPair,
}

impl std::fmt::Debug for SigningCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("SigningCertificate")
            .field("subject", &self.subject())
            .field("thumbprint", &self.thumbprint())
            .finish()
    }
}

impl SigningCertificate {
    /// A new self-signed code-signing certificate for `common_name` with a 3072-bit RSA
    /// key, valid from an hour ago (clocks differ) for `valid_for`.
    pub fn generate(common_name: &str, valid_for: Duration) -> Result<Self, SigningError> {
        let key =
            KeyPair::generate(KeySize::Rsa3072).map_err(|_| SigningError::Key("cannot generate an RSA key".into()))?;
        let public: PublicKeyX509Der = key.public_key().as_der().map_err(|_| SigningError::Key("public key".into()))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(public.as_ref())?;
        let key_id = sha1::Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec();
        let name = Name::from_str(&format!("CN={}", escape_rdn(common_name)))?;
        let now = SystemTime::now();
        let validity = Validity {
            not_before: Time::try_from(now - Duration::from_secs(3600))?,
            not_after: Time::try_from(now + valid_for)?,
        };
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| SigningError::Key("no randomness".into()))?;
        serial[0] &= 0x7f; // positive
        serial[0] |= 0x01; // and no leading zero byte
        let extensions = vec![
            BasicConstraints { ca: false, path_len_constraint: None }.to_extension(&name, &[])?,
            KeyUsage(KeyUsages::DigitalSignature.into()).to_extension(&name, &[])?,
            ExtendedKeyUsage(vec![ID_KP_CODE_SIGNING]).to_extension(&name, &[])?,
            SubjectKeyIdentifier(OctetString::new(key_id.clone())?).to_extension(&name, &[])?,
            AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(key_id)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            }
            .to_extension(&name, &[])?,
        ];
        let signature_algorithm = sha256_with_rsa();
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&serial)?,
            signature: signature_algorithm.clone(),
            issuer: name.clone(),
            validity,
            subject: name,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        let signature = sign_with(&key, &tbs.to_der()?)?;
        let certificate =
            Certificate { tbs_certificate: tbs, signature_algorithm, signature: BitString::from_bytes(&signature)? };
        Self::new(certificate, Vec::new(), key)
    }

    /// The certificate (then any chain certificates, signer first) and its key, both PEM:
    /// the key PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_pem(certificates: &str, key: &str) -> Result<Self, SigningError> {
        let mut chain = certificate_blocks(certificates)
            .map(|block| Certificate::from_pem(block.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        if chain.is_empty() {
            return Err(SigningError::Certificate("no certificate in the PEM".into()));
        }
        let certificate = chain.remove(0);
        let (label, der) = der::pem::decode_vec(key.as_bytes()).map_err(|e| SigningError::Key(e.to_string()))?;
        let key = match label {
            "PRIVATE KEY" => KeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => KeyPair::from_der(&der),
            other => return Err(SigningError::Key(format!("a {other} is not an RSA private key"))),
        }
        .map_err(|e| SigningError::Key(format!("not a usable RSA key: {e}")))?;
        Self::new(certificate, chain, key)
    }

    /// The certificate, its chain and its key from a PKCS#12 file (`.pfx`).
    pub fn from_pkcs12(pfx: &[u8], password: &str) -> Result<Self, SigningError> {
        let (mut certificates, key) = crate::pfx::open(pfx, password)?;
        let key = KeyPair::from_pkcs8(&key).map_err(|e| SigningError::Key(format!("not a usable RSA key: {e}")))?;
        let public: PublicKeyX509Der = key.public_key().as_der().map_err(|_| SigningError::Key("public key".into()))?;
        // The signer is the certificate of the key; the others are its chain.
        let signer = certificates
            .iter()
            .position(|c| c.tbs_certificate.subject_public_key_info.to_der().is_ok_and(|d| d == public.as_ref()))
            .ok_or_else(|| SigningError::Certificate("no certificate in the PKCS#12 file is the key's".into()))?;
        let certificate = certificates.remove(signer);
        Self::new(certificate, certificates, key)
    }

    /// Checks that the key is the certificate's, long enough, and allowed to sign code.
    fn new(certificate: Certificate, chain: Vec<Certificate>, key: KeyPair) -> Result<Self, SigningError> {
        let public: PublicKeyX509Der = key.public_key().as_der().map_err(|_| SigningError::Key("public key".into()))?;
        if public.as_ref() != certificate.tbs_certificate.subject_public_key_info.to_der()?.as_slice() {
            return Err(SigningError::Key("the key is not the certificate's".into()));
        }
        if key.public_modulus_len() * 8 < MIN_KEY_BITS {
            return Err(SigningError::Key(format!(
                "an RSA key of {} bits; at least {MIN_KEY_BITS}",
                key.public_modulus_len() * 8
            )));
        }
        let tbs = &certificate.tbs_certificate;
        if let Some((_, usage)) = tbs.get::<ExtendedKeyUsage>()?
            && !usage.0.contains(&ID_KP_CODE_SIGNING)
        {
            return Err(SigningError::Certificate("its extended key usage does not include code signing".into()));
        }
        if let Some((_, usage)) = tbs.get::<KeyUsage>()?
            && !usage.digital_signature()
        {
            return Err(SigningError::Certificate("its key usage does not include digital signature".into()));
        }
        let der = certificate.to_der()?;
        Ok(Self { certificate, der, chain, key })
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate, PEM (what administrators distribute to clients).
    pub fn certificate_pem(&self) -> Result<String, SigningError> {
        Ok(self.certificate.to_pem(der::pem::LineEnding::LF)?)
    }

    /// The private key, PKCS#8 PEM (to keep a generated certificate).
    pub fn key_pem(&self) -> Result<String, SigningError> {
        let der: Pkcs8V1Der = self.key.as_der().map_err(|_| SigningError::Key("cannot encode the key".into()))?;
        der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, der.as_ref())
            .map_err(|e| SigningError::Key(e.to_string()))
    }

    /// The chain certificates, the signer's issuer first.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The subject, as RFC 4514 text.
    pub fn subject(&self) -> String {
        self.certificate.tbs_certificate.subject.to_string()
    }

    /// The SHA-1 of the certificate, hex upper case, as Windows' certificate stores show it.
    pub fn thumbprint(&self) -> String {
        hex::encode_upper(sha1::Sha1::digest(&self.der))
    }

    pub fn not_after(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from(self.certificate.tbs_certificate.validity.not_after.to_system_time())
    }

    pub fn not_before(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from(self.certificate.tbs_certificate.validity.not_before.to_system_time())
    }

    /// RSA PKCS#1 v1.5 with SHA-256 over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        sign_with(&self.key, message)
    }
}

/// Each `-----BEGIN CERTIFICATE-----` block of a PEM text, whatever stands between them
/// (`openssl pkcs12` writes "Bag Attributes" lines there).
fn certificate_blocks(pem: &str) -> impl Iterator<Item = &str> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = pem;
    std::iter::from_fn(move || {
        let start = rest.find(BEGIN)?;
        let end = start + rest[start..].find(END)? + END.len();
        let block = &rest[start..end];
        rest = &rest[end..];
        Some(block)
    })
}

fn sign_with(key: &KeyPair, message: &[u8]) -> Result<Vec<u8>, SigningError> {
    let mut signature = vec![0u8; key.public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    key.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
        .map_err(|_| SigningError::Key("the RSA signature failed".into()))?;
    Ok(signature)
}

/// sha256WithRSAEncryption, parameters NULL.
pub(crate) fn sha256_with_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: SHA_256_WITH_RSA_ENCRYPTION, parameters: Some(Any::null()) }
}

/// rsaEncryption, parameters NULL: what signtool and osslsigncode name a signer's algorithm.
pub(crate) fn rsa_encryption() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(Any::null()) }
}

/// Verifies an RSA PKCS#1 v1.5 SHA-256 signature with the key of `spki`.
pub(crate) fn verify_rsa(spki: &SubjectPublicKeyInfoOwned, message: &[u8], signature: &[u8]) -> bool {
    let key =
        signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, spki.subject_public_key.raw_bytes());
    key.verify(message, signature).is_ok()
}

/// An RDN value as RFC 4514 writes it (the characters it reserves escaped).
fn escape_rdn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') || (i == 0 && matches!(c, '#' | ' ')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
