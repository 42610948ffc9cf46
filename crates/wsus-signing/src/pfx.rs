//! A signing certificate given as PKCS#12 (a `.pfx` exported from Windows' certificate
//! store or by OpenSSL): its integrity MAC checked, then its certificates and private key
//! decrypted. Encryption as OpenSSL 3 and Windows' "AES256-SHA256" export write it
//! (PBES2: PBKDF2 with HMAC-SHA-1/256, AES-CBC); the older 3DES and RC2 schemes are refused
//! with what to do instead.

use aws_lc_rs::cipher::{AES_128, AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::{hmac, pbkdf2};
use cms::content_info::ContentInfo;
use cms::encrypted_data::EncryptedData;
use const_oid::db::rfc5911::{ID_DATA, ID_ENCRYPTED_DATA};
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use der::asn1::OctetString;
use der::{Decode, Encode};
use pkcs5::pbes2::{self, Pbkdf2Prf};
use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
use pkcs12::pfx::Pfx;
use pkcs12::safe_bag::SafeContents;
use pkcs12::{PKCS_12_CERT_BAG_OID, PKCS_12_KEY_BAG_OID, PKCS_12_PKCS8_KEY_BAG_OID, PKCS_12_X509_CERT_OID};
use x509_cert::Certificate;

use crate::SigningError;

/// More rounds than this in a file's key derivation are refused (a hostile file could ask
/// for hours); exports use 2,048 to 600,000.
const MAX_ROUNDS: u32 = 10_000_000;

fn bad(why: impl Into<String>) -> SigningError {
    SigningError::Certificate(format!("PKCS#12: {}", why.into()))
}

/// The certificates and the private key (PKCS#8 DER) of a PKCS#12 file.
pub fn open(pfx: &[u8], password: &str) -> Result<(Vec<Certificate>, Vec<u8>), SigningError> {
    let pfx = Pfx::from_der(pfx).map_err(|e| bad(format!("not a PKCS#12 file ({e})")))?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(bad("signed with a public key (only password integrity is read)"));
    }
    let safe = pfx.auth_safe.content.decode_as::<OctetString>()?;
    let mac = pfx.mac_data.as_ref().ok_or_else(|| bad("no integrity MAC"))?;
    let rounds = u32::try_from(mac.iterations).ok().filter(|r| (1..=MAX_ROUNDS).contains(r));
    let rounds = rounds.ok_or_else(|| bad("an unreasonable MAC iteration count"))?;
    let (algorithm, length) = match mac.mac.algorithm.oid {
        ID_SHA_256 => (hmac::HMAC_SHA256, 32),
        ID_SHA_1 => (hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, 20),
        other => return Err(bad(format!("a MAC over {other}"))),
    };
    let salt = mac.mac_salt.as_bytes();
    let key = match length {
        32 => derive_key_utf8::<sha2::Sha256>(password, salt, Pkcs12KeyType::Mac, rounds as i32, length)?,
        _ => derive_key_utf8::<sha1::Sha1>(password, salt, Pkcs12KeyType::Mac, rounds as i32, length)?,
    };
    hmac::verify(&hmac::Key::new(algorithm, &key), safe.as_bytes(), mac.mac.digest.as_bytes())
        .map_err(|_| bad("wrong password, or the file is damaged"))?;

    let (mut certificates, mut keys) = (Vec::new(), Vec::new());
    for content in Vec::<ContentInfo>::from_der(safe.as_bytes())? {
        let bags = match content.content_type {
            ID_DATA => content.content.decode_as::<OctetString>()?.as_bytes().to_vec(),
            ID_ENCRYPTED_DATA => {
                let encrypted: EncryptedData = content.content.decode_as()?;
                let info = encrypted.enc_content_info;
                let data = info.encrypted_content.ok_or_else(|| bad("encrypted content without its bytes"))?;
                decrypt(&info.content_enc_alg.to_der()?, data.as_bytes(), password)?
            }
            other => return Err(bad(format!("a content of type {other}"))),
        };
        for bag in SafeContents::from_der(&bags)? {
            let value = explicit_value(&bag.bag_value)?;
            match bag.bag_id {
                PKCS_12_CERT_BAG_OID => {
                    let cert = pkcs12::cert_type::CertBag::from_der(value)?;
                    if cert.cert_id == PKCS_12_X509_CERT_OID {
                        let der = cert_der(&cert.cert_value)?;
                        certificates.push(Certificate::from_der(&der)?);
                    }
                }
                PKCS_12_PKCS8_KEY_BAG_OID => {
                    let shrouded = pkcs8::EncryptedPrivateKeyInfo::from_der(value)?;
                    let scheme = shrouded.encryption_algorithm.to_der()?;
                    keys.push(decrypt(&scheme, shrouded.encrypted_data, password)?);
                }
                PKCS_12_KEY_BAG_OID => keys.push(value.to_vec()),
                _ => {}
            }
        }
    }
    match keys.len() {
        1 => Ok((certificates, keys.remove(0))),
        0 => Err(bad("no private key")),
        _ => Err(bad("more than one private key")),
    }
}

/// The bytes inside a bag's `[0] EXPLICIT` value.
fn explicit_value(tlv: &[u8]) -> Result<&[u8], SigningError> {
    let mut reader = der::SliceReader::new(tlv)?;
    let header = der::Header::decode(&mut reader)?;
    let start = usize::try_from(header.encoded_len()?).map_err(|_| bad("a bag too large"))?;
    let length = usize::try_from(header.length).map_err(|_| bad("a bag too large"))?;
    tlv.get(start..start + length).ok_or_else(|| bad("a bag cut short"))
}

/// An x509Certificate bag's certificate: an OCTET STRING holding its DER.
fn cert_der(value: &impl Encode) -> Result<Vec<u8>, SigningError> {
    Ok(OctetString::from_der(&value.to_der()?)?.as_bytes().to_vec())
}

/// Decrypts `data` under the PBES2 scheme `algorithm` (an AlgorithmIdentifier, DER).
fn decrypt(algorithm: &[u8], data: &[u8], password: &str) -> Result<Vec<u8>, SigningError> {
    let scheme = pkcs5::EncryptionScheme::from_der(algorithm).map_err(|_| {
        bad("encrypted with a scheme older than PBES2 (3DES or RC2): export it again with AES-256 \
             (Windows: \"AES256-SHA256\"), or convert it to PEM")
    })?;
    let pkcs5::EncryptionScheme::Pbes2(params) = scheme else {
        return Err(bad("encrypted with PBES1: export it again with AES-256, or convert it to PEM"));
    };
    let pbes2::Kdf::Pbkdf2(kdf) = &params.kdf else { return Err(bad("a key derivation other than PBKDF2")) };
    let rounds = std::num::NonZeroU32::new(kdf.iteration_count)
        .filter(|r| r.get() <= MAX_ROUNDS)
        .ok_or_else(|| bad("an unreasonable PBKDF2 iteration count"))?;
    let prf = match kdf.prf {
        Pbkdf2Prf::HmacWithSha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        Pbkdf2Prf::HmacWithSha1 => pbkdf2::PBKDF2_HMAC_SHA1,
        Pbkdf2Prf::HmacWithSha384 => pbkdf2::PBKDF2_HMAC_SHA384,
        Pbkdf2Prf::HmacWithSha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        _ => return Err(bad("PBKDF2 with a hash other than SHA-1, SHA-256, SHA-384 or SHA-512")),
    };
    let (cipher, key_len, iv) = match params.encryption {
        pbes2::EncryptionScheme::Aes128Cbc { iv } => (&AES_128, 16, iv),
        pbes2::EncryptionScheme::Aes256Cbc { iv } => (&AES_256, 32, iv),
        _ => return Err(bad("a cipher other than AES-128-CBC or AES-256-CBC")),
    };
    let mut key = vec![0u8; key_len];
    pbkdf2::derive(prf, rounds, kdf.salt, password.as_bytes(), &mut key);
    let unbound = UnboundCipherKey::new(cipher, &key).map_err(|_| bad("an unusable key"))?;
    let decrypting = PaddedBlockDecryptingKey::cbc_pkcs7(unbound).map_err(|_| bad("an unusable key"))?;
    let mut buffer = data.to_vec();
    let plain = decrypting
        .decrypt(&mut buffer, DecryptionContext::Iv128((*iv).into()))
        .map_err(|_| bad("cannot decrypt: wrong password, or the file is damaged"))?;
    Ok(plain.to_vec())
}
