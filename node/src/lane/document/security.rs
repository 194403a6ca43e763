//! Passive authentication of the chip (ICAO 9303 Part 11 §5.1): the chip's Document Security
//! Object (EF.SOD) is a CMS `SignedData` (RFC 5652) whose content, an `LDSSecurityObject`,
//! lists a hash of each data group; a Document Signer (DS) certificate, issued by the issuing
//! state's Country Signing CA (CSCA), signs it. Checking it proves the data groups are the ones
//! the issuer wrote: nothing on the reader's link, and no cloned or doctored chip, can change the
//! endorsement or the fingerprint authorisation without breaking a hash or the signature.
//!
//! * [`ChipSecurity`] — what the reader delivers beside the MRZ: the data groups as read (DG1,
//!   DG13) and EF.SOD, all as the chip's bytes.
//! * [`ChipTrust`] — the CSCA certificates this lane accepts; [`ChipTrust::verify`] is the pure
//!   check (no IO, the day is a parameter) and returns the chip data the issuer signed.
//! * [`DocumentSigner`] — a **test** document signer (its own CSCA and DS) for the reader
//!   simulator, so that what the lane checks is a real signature.
//!
//! The data groups, as this product's chips carry them:
//! * DG1 (tag `61`): the MRZ as the chip holds it (`5F1F`: the MRZ characters, lines
//!   concatenated); it must equal the MRZ the reader read from the page.
//! * DG13 (tag `6D`, "optional details", issuer-defined): an OCTET STRING holding the
//!   [`ChipData`] JSON. Real permits keep the endorsement in issuer-specific data groups whose
//!   layout is not public; DG13 is where ICAO puts issuer-defined details.
//!
//! DER is read and written with `yasna` (already in the tree under `rcgen`); certificates are
//! parsed and their signatures checked with `x509-parser` (its `verify` feature, on `ring`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use x509_parser::prelude::{FromDer, X509Certificate};
use yasna::models::ObjectIdentifier;
use yasna::{ASN1Result, BERReader, Tag};

use super::chip::ChipData;
use super::error::DocumentError;

/// `id-signedData` (RFC 5652).
const OID_SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
/// `id-icao-mrtd-security-ldsSecurityObject` (ICAO 9303 Part 10).
const OID_LDS_SECURITY_OBJECT: &[u64] = &[2, 23, 136, 1, 1, 1];
/// CMS attributes `contentType` and `messageDigest` (RFC 5652 §11).
const OID_CONTENT_TYPE: &[u64] = &[1, 2, 840, 113549, 1, 9, 3];
const OID_MESSAGE_DIGEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 4];
/// SHA-2 (NIST) hash algorithms.
const OID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const OID_SHA384: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 2];
const OID_SHA512: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 3];
/// `ecdsa-with-SHA256`: what [`DocumentSigner`] signs with.
const OID_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];

/// The data groups a chip of this product carries, and EF.SOD, as the reader read them (hex in
/// the reader's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipSecurity {
    /// EF.DG1 (tag `61`): the MRZ.
    #[serde(with = "hex_bytes")]
    pub dg1: Vec<u8>,
    /// EF.DG13 (tag `6D`): the chip data JSON.
    #[serde(with = "hex_bytes")]
    pub dg13: Vec<u8>,
    /// EF.SOD (tag `77`): the Document Security Object.
    #[serde(with = "hex_bytes")]
    pub sod: Vec<u8>,
}

/// Bytes as a hex string in JSON.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

impl ChipSecurity {
    /// The chip data DG13 holds, not checked (for display and round trips; the lane uses only
    /// what [`ChipTrust::verify`] returns).
    pub fn unverified_data(&self) -> Option<ChipData> {
        let json = dg13_json(&self.dg13).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// Why a chip failed passive authentication. Messages never carry the holder's data.
fn fail(reason: impl Into<String>) -> DocumentError {
    DocumentError::ChipNotAuthentic {
        reason: reason.into(),
    }
}

fn oid(parts: &[u64]) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(parts)
}

/// A hash algorithm an `LDSSecurityObject` or a signer may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(o: &ObjectIdentifier) -> Result<Hash, DocumentError> {
        match o.components().as_slice() {
            OID_SHA256 => Ok(Hash::Sha256),
            OID_SHA384 => Ok(Hash::Sha384),
            OID_SHA512 => Ok(Hash::Sha512),
            _ => Err(fail(format!("unsupported hash algorithm {o}"))),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

fn invalid() -> yasna::ASN1Error {
    yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid)
}

/// Reads an AlgorithmIdentifier's OID (parameters, if any, must be NULL).
fn read_algorithm(r: BERReader<'_, '_>) -> ASN1Result<ObjectIdentifier> {
    r.read_sequence(|r| {
        let o = r.next().read_oid()?;
        r.read_optional(|r| r.read_null())?;
        Ok(o)
    })
}

/// The parts of EF.SOD passive authentication needs.
struct Sod {
    content_type: ObjectIdentifier,
    /// The `LDSSecurityObject`'s DER (the eContent).
    content: Vec<u8>,
    /// DER certificates carried in the SignedData.
    certificates: Vec<Vec<u8>>,
    signer: SignerInfo,
}

struct SignerInfo {
    /// DER of the issuer Name and of the serial INTEGER the signer names.
    issuer: Vec<u8>,
    serial: Vec<u8>,
    digest: ObjectIdentifier,
    /// The signed attributes re-tagged as a SET OF: what the signature covers.
    signed_attributes: Vec<u8>,
    /// DER of the signature's AlgorithmIdentifier.
    signature_algorithm: Vec<u8>,
    signature: Vec<u8>,
}

fn parse_sod(ef_sod: &[u8]) -> Result<Sod, DocumentError> {
    let content_info = yasna::parse_der(ef_sod, |r| {
        r.read_tagged(Tag::application(23), |r| r.read_der())
    })
    .map_err(|e| fail(format!("EF.SOD is not DER (tag 77): {e}")))?;
    let (content_type, content, certificates, signer_infos, digests) =
        yasna::parse_der(&content_info, |r| {
            r.read_sequence(|r| {
                let kind = r.next().read_oid()?;
                if kind != oid(OID_SIGNED_DATA) {
                    return Err(invalid());
                }
                r.next().read_tagged(Tag::context(0), |r| {
                    r.read_sequence(|r| {
                        // RFC 5652 §5.1: 3 when the content is not id-data.
                        if r.next().read_u8()? != 3 {
                            return Err(invalid());
                        }
                        let digests = r.next().collect_set_of(read_algorithm)?;
                        let (content_type, content) = r.next().read_sequence(|r| {
                            let t = r.next().read_oid()?;
                            let c = r.next().read_tagged(Tag::context(0), |r| r.read_bytes())?;
                            Ok((t, c))
                        })?;
                        let certificates = r.next().read_tagged_implicit(Tag::context(0), |r| {
                            r.collect_set_of(|r| r.read_der())
                        })?;
                        let signers = r.next().collect_set_of(|r| r.read_der())?;
                        Ok((content_type, content, certificates, signers, digests))
                    })
                })
            })
        })
        .map_err(|e| {
            fail(format!(
                "EF.SOD is not a CMS SignedData with its certificate: {e}"
            ))
        })?;
    let [signer] = signer_infos.as_slice() else {
        return Err(fail(format!(
            "EF.SOD has {} signers, expected one",
            signer_infos.len()
        )));
    };
    let signer = yasna::parse_der(signer, |r| {
        r.read_sequence(|r| {
            // Version 1: the signer named by issuer and serial number.
            if r.next().read_u8()? != 1 {
                return Err(invalid());
            }
            let (issuer, serial) = r
                .next()
                .read_sequence(|r| Ok((r.next().read_der()?, r.next().read_der()?)))?;
            let digest = read_algorithm(r.next())?;
            let mut signed_attributes = r.next().read_der()?;
            let signature_algorithm = r.next().read_der()?;
            // Kept as bytes for x509-parser, which reads it leniently: held to DER here.
            yasna::parse_der(&signature_algorithm, read_algorithm)?;
            let signature = r.next().read_bytes()?;
            // `[0] IMPLICIT SET OF Attribute`: the signature covers it tagged as a SET.
            if signed_attributes.first() != Some(&0xA0) {
                return Err(invalid());
            }
            signed_attributes[0] = 0x31;
            Ok(SignerInfo {
                issuer,
                serial,
                digest,
                signed_attributes,
                signature_algorithm,
                signature,
            })
        })
    })
    .map_err(|e| {
        fail(format!(
            "EF.SOD's SignerInfo (issuer and serial, signed attributes): {e}"
        ))
    })?;
    if !digests.contains(&signer.digest) {
        return Err(fail(
            "the signer's digest algorithm is not among the SignedData's",
        ));
    }
    Ok(Sod {
        content_type,
        content,
        certificates,
        signer,
    })
}

/// The `LDSSecurityObject`: its hash algorithm and each data group's hash.
/// Each data group's number and hash, as the security object lists them.
type DataGroupHashes = Vec<(u8, Vec<u8>)>;

fn parse_lds(content: &[u8]) -> Result<(Hash, DataGroupHashes), DocumentError> {
    let (algorithm, hashes) = yasna::parse_der(content, |r| {
        r.read_sequence(|r| {
            // v0, or v1 with the LDS version info (which this product's chips do not carry).
            if r.next().read_u8()? != 0 {
                return Err(invalid());
            }
            let algorithm = read_algorithm(r.next())?;
            let hashes = r.next().collect_sequence_of(|r| {
                r.read_sequence(|r| Ok((r.next().read_u8()?, r.next().read_bytes()?)))
            })?;
            Ok((algorithm, hashes))
        })
    })
    .map_err(|e| fail(format!("the LDSSecurityObject: {e}")))?;
    Ok((Hash::from_oid(&algorithm)?, hashes))
}

/// The signed attributes' `contentType` and `messageDigest`.
fn parse_attributes(set: &[u8]) -> Result<(ObjectIdentifier, Vec<u8>), DocumentError> {
    let attributes = yasna::parse_der(set, |r| {
        r.collect_set_of(|r| {
            r.read_sequence(|r| {
                let t = r.next().read_oid()?;
                let values = r.next().collect_set_of(|r| r.read_der())?;
                Ok((t, values))
            })
        })
    })
    .map_err(|e| fail(format!("the signed attributes: {e}")))?;
    let single = |wanted: &[u64]| -> Result<Vec<u8>, DocumentError> {
        let mut found = attributes.iter().filter(|(t, _)| *t == oid(wanted));
        match (found.next(), found.next()) {
            (Some((_, values)), None) if values.len() == 1 => Ok(values[0].clone()),
            _ => Err(fail(format!(
                "the signed attributes need exactly one {}",
                oid(wanted)
            ))),
        }
    };
    let content_type = yasna::parse_der(&single(OID_CONTENT_TYPE)?, |r| r.read_oid())
        .map_err(|e| fail(format!("the contentType attribute: {e}")))?;
    let digest = yasna::parse_der(&single(OID_MESSAGE_DIGEST)?, |r| r.read_bytes())
        .map_err(|e| fail(format!("the messageDigest attribute: {e}")))?;
    Ok((content_type, digest))
}

/// What RFC 5280 asks of a certificate's unsigned parts and x509-parser does not hold it to:
/// the outer signature algorithm is byte for byte the one inside the signed part (§4.1.1.2),
/// and the signature BIT STRING has no unused bits. Without this, bytes outside the signed part
/// could change and the certificate still verify (a fuzzing test found a mis-tagged outer OID
/// accepted).
fn strict_certificate(der: &[u8]) -> Result<(), DocumentError> {
    let parts = yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let inner = r.next().read_sequence(|r| {
                r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
                let _serial = r.next().read_der()?;
                let algorithm = r.next().read_der()?;
                while r.read_optional(|r| r.read_der())?.is_some() {}
                Ok(algorithm)
            })?;
            let outer = r.next().read_der()?;
            let (_, bits) = r.next().read_bitvec_bytes()?;
            Ok((inner, outer, bits))
        })
    });
    match parts {
        Ok((inner, outer, bits)) if inner == outer && bits % 8 == 0 => Ok(()),
        _ => Err(fail(
            "the Document Signer certificate is not strict DER (RFC 5280)",
        )),
    }
}

/// DER of an INTEGER with `content` as its content octets.
fn integer_der(content: &[u8]) -> Vec<u8> {
    tlv(0x02, content)
}

/// A primitive TLV with a DER length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The MRZ characters DG1 holds.
fn dg1_mrz(dg1: &[u8]) -> Result<Vec<u8>, DocumentError> {
    yasna::parse_der(dg1, |r| {
        r.read_tagged(Tag::application(1), |r| {
            r.read_tagged_implicit(Tag::application(31), |r| r.read_bytes())
        })
    })
    .map_err(|e| fail(format!("DG1 is not the MRZ (61 / 5F1F): {e}")))
}

/// The chip data JSON DG13 holds.
fn dg13_json(dg13: &[u8]) -> Result<Vec<u8>, DocumentError> {
    yasna::parse_der(dg13, |r| {
        r.read_tagged(Tag::application(13), |r| r.read_bytes())
    })
    .map_err(|e| fail(format!("DG13 is not an OCTET STRING under tag 6D: {e}")))
}

/// The MRZ as DG1 holds it: the lines without separators.
fn mrz_characters(mrz: &str) -> Vec<u8> {
    super::read::mrz_lines(mrz).concat().into_bytes()
}

fn asn1_day(day: NaiveDate) -> Result<x509_parser::time::ASN1Time, DocumentError> {
    let noon = day
        .and_hms_opt(12, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| fail("no such day"))?;
    x509_parser::time::ASN1Time::from_timestamp(noon).map_err(|e| fail(format!("day: {e}")))
}

/// The Country Signing CA certificates a lane accepts chips from (the CSCA master list of the
/// issuers whose permits the channel takes). Empty: no chip passes, so every card scan goes to
/// an officer.
#[derive(Clone, Default)]
pub struct ChipTrust {
    cscas: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ChipTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipTrust")
            .field("cscas", &self.cscas.len())
            .finish()
    }
}

impl ChipTrust {
    /// Trusts nothing: every chip fails.
    pub fn none() -> ChipTrust {
        ChipTrust::default()
    }

    /// The CSCA certificates in `pem` (one or more `CERTIFICATE` blocks). Each must parse and be
    /// a CA.
    pub fn from_pem(pem: &[u8]) -> Result<ChipTrust, DocumentError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut cscas = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| DocumentError::Config(format!("CSCA: not PEM: {e}")))?;
            let (_, parsed) = X509Certificate::from_der(&cert)
                .map_err(|e| DocumentError::Config(format!("CSCA: not a certificate: {e}")))?;
            if !parsed.is_ca() {
                return Err(DocumentError::Config(format!(
                    "CSCA: {} is not a CA certificate",
                    parsed.subject()
                )));
            }
            let signs_certificates = matches!(
                parsed.key_usage(),
                Ok(Some(usage)) if usage.value.key_cert_sign()
            );
            if !signs_certificates {
                return Err(DocumentError::Config(format!(
                    "CSCA: {} may not sign certificates (key usage keyCertSign)",
                    parsed.subject()
                )));
            }
            cscas.push(cert.to_vec());
        }
        if cscas.is_empty() {
            return Err(DocumentError::Config(
                "CSCA: no CERTIFICATE block".to_owned(),
            ));
        }
        Ok(ChipTrust { cscas })
    }

    /// Reads [`ChipTrust::from_pem`] from a file.
    pub fn read(path: &std::path::Path) -> Result<ChipTrust, DocumentError> {
        let pem = std::fs::read(path).map_err(|e| {
            DocumentError::Config(format!("cannot read the CSCA file {}: {e}", path.display()))
        })?;
        ChipTrust::from_pem(&pem)
            .map_err(|e| DocumentError::Config(format!("{}: {e}", path.display())))
    }

    /// How many CSCA certificates are trusted.
    pub fn len(&self) -> usize {
        self.cscas.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.cscas.is_empty()
    }

    /// Passive authentication of `chip` read with the page's `mrz`, on `today`: EF.SOD is a
    /// SignedData over an LDSSecurityObject; its signer is the DS certificate it carries; that
    /// certificate is valid today and signed by a trusted CSCA; the signed attributes carry the
    /// content's type and digest; the signature verifies; DG1 and DG13 hash to what the object
    /// lists; DG1 is the page's MRZ. Returns the chip data DG13 holds.
    ///
    /// Never panics, whatever the bytes.
    pub fn verify(
        &self,
        chip: &ChipSecurity,
        mrz: &str,
        today: NaiveDate,
    ) -> Result<ChipData, DocumentError> {
        if self.cscas.is_empty() {
            return Err(fail("no CSCA certificate is configured for this lane"));
        }
        // Everything is parsed before anything is trusted; every check below must pass.
        let sod = parse_sod(&chip.sod)?;
        if sod.content_type != oid(OID_LDS_SECURITY_OBJECT) {
            return Err(fail("EF.SOD does not hold an LDSSecurityObject"));
        }
        let (hash, hashes) = parse_lds(&sod.content)?;
        let (attr_type, attr_digest) = parse_attributes(&sod.signer.signed_attributes)?;
        let chip_mrz = dg1_mrz(&chip.dg1)?;
        let data = dg13_json(&chip.dg13)?;
        // The signer: the DS certificate in the SignedData, named by the SignerInfo.
        let [ds_der] = sod.certificates.as_slice() else {
            return Err(fail(format!(
                "EF.SOD carries {} certificates, expected the Document Signer's",
                sod.certificates.len()
            )));
        };
        let (_, ds) = X509Certificate::from_der(ds_der)
            .map_err(|e| fail(format!("the Document Signer certificate: {e}")))?;
        strict_certificate(ds_der)?;
        // ICAO 9303 Part 12: a Document Signer certificate is an end entity whose key may sign
        // (key usage digitalSignature); a CA's certificate or a key for anything else is not one.
        match ds.key_usage() {
            Ok(Some(usage)) if usage.value.digital_signature() => {}
            Ok(_) => {
                return Err(fail(
                    "the Document Signer certificate's key usage does not allow signing",
                ));
            }
            Err(e) => return Err(fail(format!("the Document Signer's key usage: {e}"))),
        }
        if ds.is_ca() {
            return Err(fail("the Document Signer certificate is a CA certificate"));
        }
        if ds.tbs_certificate.issuer.as_raw() != sod.signer.issuer.as_slice()
            || integer_der(ds.raw_serial()) != sod.signer.serial
        {
            return Err(fail("the signer is not the certificate EF.SOD carries"));
        }
        let when = asn1_day(today)?;
        if !ds.validity().is_valid_at(when) {
            return Err(fail("the Document Signer certificate is not valid today"));
        }
        let csca = self
            .cscas
            .iter()
            .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
            .find(|c| {
                c.subject().as_raw() == ds.issuer().as_raw()
                    && ds.verify_signature(Some(c.public_key())).is_ok()
            })
            .ok_or_else(|| fail("the Document Signer was not issued by a trusted CSCA"))?;
        if !csca.validity().is_valid_at(when) {
            return Err(fail("the CSCA certificate is not valid today"));
        }
        // The signature over the signed attributes, which bind the content.
        if attr_type != sod.content_type {
            return Err(fail("the signed contentType is not the content's"));
        }
        if attr_digest != Hash::from_oid(&sod.signer.digest)?.digest(&sod.content) {
            return Err(fail("the signed messageDigest is not the content's"));
        }
        let (_, algorithm) =
            x509_parser::x509::AlgorithmIdentifier::from_der(&sod.signer.signature_algorithm)
                .map_err(|e| fail(format!("the signature algorithm: {e}")))?;
        let signature = x509_parser::asn1_rs::BitString::new(0, &sod.signer.signature);
        x509_parser::verify::verify_signature(
            ds.public_key(),
            &algorithm,
            &signature,
            &sod.signer.signed_attributes,
        )
        .map_err(|e| {
            fail(format!(
                "the Document Signer's signature does not verify: {e}"
            ))
        })?;
        // The data groups.
        for (number, bytes) in [(1u8, &chip.dg1), (13, &chip.dg13)] {
            let listed = hashes
                .iter()
                .find(|(n, _)| *n == number)
                .ok_or_else(|| fail(format!("DG{number} is not in the security object")))?;
            if listed.1 != hash.digest(bytes) {
                return Err(fail(format!("DG{number} does not match its signed hash")));
            }
        }
        if chip_mrz != mrz_characters(mrz) {
            return Err(fail("the chip's MRZ (DG1) is not the page's"));
        }
        serde_json::from_slice::<ChipData>(&data)
            .map_err(|e| fail(format!("DG13 is not chip data: {e}")))
    }
}

/// A **test** document signer: a CSCA of its own and a Document Signer it issued, for the
/// reader simulator and the tests. Real chips are signed by their issuer; a lane trusts this one
/// only where its CSCA is configured (`document_reader.csca_certs`).
pub struct DocumentSigner {
    csca_pem: String,
    ds_pem: String,
    ds_der: Vec<u8>,
    ds_key: rcgen::KeyPair,
}

impl std::fmt::Debug for DocumentSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentSigner").finish_non_exhaustive()
    }
}

impl DocumentSigner {
    /// A new CSCA (ECDSA P-256) and a Document Signer under it (rcgen's default validity).
    pub fn generate(name: &str) -> Result<DocumentSigner, DocumentError> {
        DocumentSigner::generate_as(name, vec![rcgen::KeyUsagePurpose::DigitalSignature], false)
    }

    /// [`DocumentSigner::generate`] with a Document Signer certificate of these key usages,
    /// made a CA where `ds_is_ca`: the misissued signers the tests show refused.
    pub(crate) fn generate_as(
        name: &str,
        ds_key_usages: Vec<rcgen::KeyUsagePurpose>,
        ds_is_ca: bool,
    ) -> Result<DocumentSigner, DocumentError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let err = |e: rcgen::Error| DocumentError::Config(format!("test document signer: {e}"));
        let csca_key = KeyPair::generate().map_err(err)?;
        let mut csca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        csca.distinguished_name.push(DnType::CountryName, "CN");
        csca.distinguished_name
            .push(DnType::CommonName, format!("{name} CSCA (SIMULATOR)"));
        csca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        csca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let csca_cert = csca.self_signed(&csca_key).map_err(err)?;
        let issuer = Issuer::new(csca, csca_key);
        let ds_key = KeyPair::generate().map_err(err)?;
        let mut ds = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ds.distinguished_name.push(DnType::CountryName, "CN");
        ds.distinguished_name.push(
            DnType::CommonName,
            format!("{name} Document Signer (SIMULATOR)"),
        );
        ds.key_usages = ds_key_usages;
        if ds_is_ca {
            ds.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let ds_cert = ds.signed_by(&ds_key, &issuer).map_err(err)?;
        Ok(DocumentSigner {
            csca_pem: csca_cert.pem(),
            ds_pem: ds_cert.pem(),
            ds_der: ds_cert.der().to_vec(),
            ds_key,
        })
    }

    /// The signer kept in `dir` (`csca.pem`, `document-signer.pem`, `document-signer.key`, as
    /// [`DocumentSigner::write`] leaves them) when it is there, else a new one written there:
    /// a restarted simulator signs as before, so lanes that trust its CSCA go on accepting.
    pub fn read_or_generate(dir: &std::path::Path) -> Result<DocumentSigner, DocumentError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let cfg = |e: String| {
            DocumentError::Config(format!("test document signer in {}: {e}", dir.display()))
        };
        if !dir.join("csca.pem").is_file() {
            let signer = DocumentSigner::generate("Clearway test issuer")?;
            signer.write(dir)?;
            return Ok(signer);
        }
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| cfg(format!("{name}: {e}")))
        };
        let ds = read("document-signer.pem")?;
        let ds_der = CertificateDer::from_pem_slice(ds.as_bytes())
            .map_err(|e| cfg(format!("document-signer.pem: {e}")))?
            .to_vec();
        let ds_key = rcgen::KeyPair::from_pem(&read("document-signer.key")?)
            .map_err(|e| cfg(format!("document-signer.key: {e}")))?;
        Ok(DocumentSigner {
            csca_pem: read("csca.pem")?,
            ds_pem: ds,
            ds_der,
            ds_key,
        })
    }

    /// Writes the CSCA certificate and the Document Signer's certificate and key to `dir`.
    pub fn write(&self, dir: &std::path::Path) -> Result<(), DocumentError> {
        let io = |e: std::io::Error| {
            DocumentError::Config(format!("test document signer in {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::write(dir.join("csca.pem"), &self.csca_pem).map_err(io)?;
        std::fs::write(dir.join("document-signer.pem"), &self.ds_pem).map_err(io)?;
        std::fs::write(dir.join("document-signer.key"), self.ds_key.serialize_pem()).map_err(io)?;
        Ok(())
    }

    /// The CSCA certificate (PEM) a lane must trust to accept this signer's chips.
    pub fn csca_pem(&self) -> &str {
        &self.csca_pem
    }

    /// The chip of a document with this `mrz` holding `data`, signed: DG1, DG13 and EF.SOD.
    pub fn sign(&self, mrz: &str, data: &ChipData) -> Result<ChipSecurity, DocumentError> {
        use rcgen::SigningKey;
        let json = serde_json::to_vec(data).map_err(|e| fail(format!("chip data: {e}")))?;
        let dg1 = yasna::construct_der(|w| {
            w.write_tagged(Tag::application(1), |w| {
                w.write_tagged_implicit(Tag::application(31), |w| {
                    w.write_bytes(&mrz_characters(mrz))
                })
            })
        });
        let dg13 = yasna::construct_der(|w| {
            w.write_tagged(Tag::application(13), |w| w.write_bytes(&json))
        });
        let sha256 = |w: yasna::DERWriter<'_>| {
            w.write_sequence(|w| {
                w.next().write_oid(&oid(OID_SHA256));
                w.next().write_null();
            })
        };
        let lds = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_u8(0);
                sha256(w.next());
                w.next().write_sequence_of(|w| {
                    for (n, dg) in [(1u8, &dg1), (13, &dg13)] {
                        w.next().write_sequence(|w| {
                            w.next().write_u8(n);
                            w.next().write_bytes(&Hash::Sha256.digest(dg));
                        });
                    }
                });
            })
        });
        let attributes = yasna::construct_der(|w| {
            w.write_set_of(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(OID_CONTENT_TYPE));
                    w.next()
                        .write_set_of(|w| w.next().write_oid(&oid(OID_LDS_SECURITY_OBJECT)));
                });
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(OID_MESSAGE_DIGEST));
                    w.next()
                        .write_set_of(|w| w.next().write_bytes(&Hash::Sha256.digest(&lds)));
                });
            })
        });
        let signature = self
            .ds_key
            .sign(&attributes)
            .map_err(|e| fail(format!("signing: {e}")))?;
        let (_, ds) = X509Certificate::from_der(&self.ds_der)
            .map_err(|e| fail(format!("the Document Signer certificate: {e}")))?;
        let mut implicit = attributes.clone();
        implicit[0] = 0xA0;
        let signed_data = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_u8(3);
                w.next().write_set_of(|w| sha256(w.next()));
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(OID_LDS_SECURITY_OBJECT));
                    w.next()
                        .write_tagged(Tag::context(0), |w| w.write_bytes(&lds));
                });
                w.next().write_tagged_implicit(Tag::context(0), |w| {
                    w.write_set_of(|w| w.next().write_der(&self.ds_der))
                });
                w.next().write_set_of(|w| {
                    w.next().write_sequence(|w| {
                        w.next().write_u8(1);
                        w.next().write_sequence(|w| {
                            w.next().write_der(ds.tbs_certificate.issuer.as_raw());
                            w.next().write_der(&integer_der(ds.raw_serial()));
                        });
                        sha256(w.next());
                        w.next().write_der(&implicit);
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(OID_ECDSA_SHA256));
                        });
                        w.next().write_bytes(&signature);
                    });
                });
            })
        });
        let sod = yasna::construct_der(|w| {
            w.write_tagged(Tag::application(23), |w| {
                w.write_sequence(|w| {
                    w.next().write_oid(&oid(OID_SIGNED_DATA));
                    w.next()
                        .write_tagged(Tag::context(0), |w| w.write_der(&signed_data));
                })
            })
        });
        Ok(ChipSecurity { dg1, dg13, sod })
    }
}
