//! Authenticode signatures for Cabinets, as signtool and osslsigncode make them: a CMS
//! SignedData (version 1) whose content is an SpcIndirectDataContent naming the Cabinet's
//! SHA-256 digest, signed by one RSA signer identified by issuer and serial number, with
//! the code-signing statement and an empty SpcSpOpusInfo among its signed attributes.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SIGNED_DATA};
use const_oid::db::rfc5912::ID_SHA_256;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence, Tag, TagNumber};
use sha2::Digest as _;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

use crate::SigningError;
use crate::certificate::{SigningCertificate, rsa_encryption, verify_rsa};

/// SPC_INDIRECT_DATA_OBJID: the signed content's type.
pub const SPC_INDIRECT_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
/// SPC_CAB_DATA_OBJID: what is signed is a Cabinet.
pub const SPC_CAB_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.25");
/// SPC_STATEMENT_TYPE_OBJID, and its value for an individual's code signing.
const SPC_STATEMENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.11");
const SPC_INDIVIDUAL_SP_KEY_PURPOSE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.21");
/// SPC_SP_OPUS_INFO_OBJID: program name and URL, sent empty as signtool does.
const SPC_SP_OPUS_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.12");

/// SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue,
/// messageDigest DigestInfo }.
#[derive(Clone, Debug, Sequence)]
struct SpcIndirectDataContent {
    data: SpcAttributeTypeAndOptionalValue,
    message_digest: DigestInfo,
}

#[derive(Clone, Debug, Sequence)]
struct SpcAttributeTypeAndOptionalValue {
    value_type: ObjectIdentifier,
    value: Option<Any>,
}

#[derive(Clone, Debug, Sequence)]
struct DigestInfo {
    digest_algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: ID_SHA_256, parameters: Some(Any::null()) }
}

/// The SpcIndirectDataContent for a Cabinet with this digest: SPC_CAB_DATA with the
/// SpcLink every signer writes (`file`: the Unicode string "<<<Obsolete>>>").
fn indirect_data(digest: &[u8; 32]) -> Result<Any, SigningError> {
    let obsolete: Vec<u8> = "<<<Obsolete>>>".encode_utf16().flat_map(u16::to_be_bytes).collect();
    // SpcString.unicode [0] IMPLICIT BMPString, inside SpcLink.file [2] EXPLICIT.
    let unicode = Any::new(Tag::ContextSpecific { constructed: false, number: TagNumber::N0 }, obsolete)?;
    let link = Any::new(Tag::ContextSpecific { constructed: true, number: TagNumber::N2 }, unicode.to_der()?)?;
    let content = SpcIndirectDataContent {
        data: SpcAttributeTypeAndOptionalValue { value_type: SPC_CAB_DATA, value: Some(link) },
        message_digest: DigestInfo { digest_algorithm: sha256_algorithm(), digest: OctetString::new(digest.to_vec())? },
    };
    Ok(Any::from_der(&content.to_der()?)?)
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, SigningError> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![value])? })
}

/// A DER ContentInfo(SignedData) signing a Cabinet whose Authenticode digest is `digest`.
pub fn sign(digest: &[u8; 32], signer: &SigningCertificate) -> Result<Vec<u8>, SigningError> {
    let content = indirect_data(digest)?;
    // Authenticode hashes the content's value: the SEQUENCE without its tag and length.
    let content_digest = sha2::Sha256::digest(content.value());
    let statement = Any::encode_from(&vec![SPC_INDIVIDUAL_SP_KEY_PURPOSE])?;
    let signed_attrs: SignedAttributes = SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&SPC_INDIRECT_DATA)?)?,
        attribute(ID_MESSAGE_DIGEST, Any::encode_from(&OctetString::new(content_digest.to_vec())?)?)?,
        attribute(SPC_STATEMENT_TYPE, statement)?,
        attribute(SPC_SP_OPUS_INFO, Any::new(Tag::Sequence, Vec::<u8>::new())?)?,
    ])?;
    // The signature covers the attributes as a SET (tag 0x31), not as the [0] they are sent in.
    let signature = signer.sign(&signed_attrs.to_der()?)?;
    let tbs = &signer.certificate().tbs_certificate;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: sha256_algorithm(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: rsa_encryption(),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let mut certificates = vec![CertificateChoices::Certificate(signer.certificate().clone())];
    certificates.extend(signer.chain().iter().cloned().map(CertificateChoices::Certificate));
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256_algorithm()])?,
        encap_content_info: EncapsulatedContentInfo { econtent_type: SPC_INDIRECT_DATA, econtent: Some(content) },
        certificates: Some(CertificateSet(SetOfVec::try_from(certificates)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
    };
    Ok(ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&signed)? }.to_der()?)
}

/// Checks that `signature` (DER, trailing padding allowed) signs a Cabinet whose digest is
/// `digest`, and that its signer's signature holds; returns the signer's certificate.
/// Whether that certificate is trusted is the caller's question.
pub fn verify(digest: &[u8; 32], signature: &[u8]) -> Result<Certificate, SigningError> {
    let bad = |why: &str| SigningError::Signature(why.to_owned());
    let info = ContentInfo::from_der(der_prefix(signature)?)?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(bad("not a SignedData"));
    }
    let signed: SignedData = info.content.decode_as()?;
    let content = signed.encap_content_info.econtent.as_ref().ok_or_else(|| bad("no signed content"))?;
    if signed.encap_content_info.econtent_type != SPC_INDIRECT_DATA {
        return Err(bad("the signed content is not SpcIndirectDataContent"));
    }
    let indirect = SpcIndirectDataContent::from_der(&content.to_der()?)?;
    if indirect.data.value_type != SPC_CAB_DATA {
        return Err(bad("it does not sign a Cabinet"));
    }
    if indirect.message_digest.digest_algorithm.oid != ID_SHA_256 {
        return Err(bad("its digest is not SHA-256"));
    }
    if indirect.message_digest.digest.as_bytes() != digest {
        return Err(bad("the Cabinet's digest does not match the signed one"));
    }
    let [signer_info] = signed.signer_infos.0.as_slice() else { return Err(bad("not exactly one signer")) };
    let attrs = signer_info.signed_attrs.as_ref().ok_or_else(|| bad("no signed attributes"))?;
    let value_of = |oid: ObjectIdentifier| attrs.iter().find(|a| a.oid == oid).and_then(|a| a.values.get(0));
    let content_type = value_of(ID_CONTENT_TYPE).ok_or_else(|| bad("no contentType attribute"))?;
    if content_type.decode_as::<ObjectIdentifier>()? != SPC_INDIRECT_DATA {
        return Err(bad("the contentType attribute names another content"));
    }
    let message_digest = value_of(ID_MESSAGE_DIGEST).ok_or_else(|| bad("no messageDigest attribute"))?;
    if message_digest.decode_as::<OctetString>()?.as_bytes() != &sha2::Sha256::digest(content.value())[..] {
        return Err(bad("the messageDigest attribute does not match the signed content"));
    }
    let SignerIdentifier::IssuerAndSerialNumber(id) = &signer_info.sid else {
        return Err(bad("the signer is not named by issuer and serial number"));
    };
    let certificate = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some(c),
            _ => None,
        })
        .find(|c| c.tbs_certificate.issuer == id.issuer && c.tbs_certificate.serial_number == id.serial_number)
        .ok_or_else(|| bad("the signer's certificate is not in the signature"))?;
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    if !verify_rsa(spki, &attrs.to_der()?, signer_info.signature.as_bytes()) {
        return Err(bad("the signer's signature does not verify"));
    }
    Ok(certificate.clone())
}

/// The DER value at the start of `bytes`, without what follows it (a signature in a
/// Cabinet is padded to a multiple of 8 bytes).
fn der_prefix(bytes: &[u8]) -> Result<&[u8], SigningError> {
    let mut reader = der::SliceReader::new(bytes)?;
    let header = der::Header::decode(&mut reader)?;
    let total = (header.encoded_len()? + header.length)?;
    let end = usize::try_from(total).map_err(|_| SigningError::Signature("too long".into()))?;
    bytes.get(..end).ok_or_else(|| SigningError::Signature("cut short".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SpcIndirectDataContent osslsigncode 2.9 writes for a Cabinet, up to the digest
    /// (its `openssl asn1parse` dump: SPC_CAB_DATA, the "<<<Obsolete>>>" link, SHA-256).
    #[test]
    fn the_indirect_data_is_what_osslsigncode_writes() {
        let prefix = "3061302c060a2b060104018237020119a21e801c003c003c003c004f00620073006f006c006500740065003e003e003e3031300d060960864801650304020105000420";
        let digest = [0xabu8; 32];
        let der = indirect_data(&digest).unwrap().to_der().unwrap();
        assert_eq!(hex::encode(&der[..der.len() - 32]), prefix);
        assert_eq!(&der[der.len() - 32..], &digest);
    }
}
