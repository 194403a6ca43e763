//! Client signatures on audit records.
//!
//! A console or an operator's tool signs the audit record of every batch it sends with its
//! certificate's key ([`sign_batch`]). The record carries the signer's certificate, so the
//! leader — and later anyone holding the port CA certificate — can check ([`AuditVerifier`])
//! that the record was made by that client, at the time it says, for the operations the batch
//! carried (the record names their digest). A node holds no client key: it can neither write a
//! record in a client's name nor rewrite one and re-hash the chain after it without the
//! signatures failing.

use std::sync::Arc;

use clearway_gallery::ops::{AuditEntry, AuditSignature, Op, set_ops_digest};
use rustls::SignatureScheme;
use rustls::pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use super::tls::{Bundle, LeafInfo};
use super::{Identity, NetError, Role};

/// Who signed an audit record, as the certificate in it names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// `client-console`, `client-ops`.
    pub identity: Identity,
    /// The certificate's role.
    pub role: Role,
}

/// Why a record's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The record carries no signature.
    #[error("the record is not signed")]
    Unsigned,
    /// The certificate in the record was not issued by the port CA, or was not valid then.
    #[error("the signer's certificate does not hold at the record's time: {0}")]
    Certificate(String),
    /// The signature does not match the record.
    #[error("the signature does not match the record (it was changed after signing)")]
    Mismatch,
    /// The signature scheme is not one a port certificate uses.
    #[error("unsupported signature scheme {0:#06x}")]
    Scheme(u16),
}

/// Completes an audited batch and signs it with `bundle`'s key: a fresh salt for each record's
/// reason (where none is set), the digest of the batch's other operations, then the signature
/// over [`AuditEntry::signed_message`].
pub fn sign_batch(bundle: &Bundle, ops: &mut [Op]) -> Result<(), NetError> {
    let (_, cert, key) = bundle.ders()?;
    let key =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| NetError::TlsConfig {
            reason: format!("the bundle's key cannot sign: {e}"),
        })?;
    let signer = key
        .choose_scheme(SCHEMES)
        .ok_or_else(|| NetError::TlsConfig {
            reason: "the bundle's key has no supported signature scheme".into(),
        })?;
    for op in ops.iter_mut() {
        if let Op::Audit(draft) = op
            && draft.reason_salt.is_empty()
        {
            draft.reason_salt = hex::encode(rand::random::<[u8; 16]>());
        }
    }
    set_ops_digest(ops);
    for op in ops.iter_mut() {
        if let Op::Audit(draft) = op {
            draft.signature = None;
            let message = draft.entry().signed_message();
            let signature = signer.sign(&message).map_err(|e| NetError::TlsConfig {
                reason: format!("signing the audit record: {e}"),
            })?;
            draft.signature = Some(AuditSignature {
                certificate: cert.to_vec(),
                scheme: u16::from(signer.scheme()),
                signature,
            });
        }
    }
    Ok(())
}

/// The schemes a port key signs with, in order of preference (rcgen makes ECDSA P-256 keys).
const SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
];

/// Checks audit records' signatures against one port's CA certificate.
#[derive(Clone)]
pub struct AuditVerifier {
    ca: Arc<CertificateDer<'static>>,
    port: String,
}

impl AuditVerifier {
    /// A verifier for the port whose CA `bundle` trusts.
    pub fn new(bundle: &Bundle) -> Result<AuditVerifier, NetError> {
        let (ca, _, _) = bundle.ders()?;
        Ok(AuditVerifier {
            ca: Arc::new(ca),
            port: bundle.port.clone(),
        })
    }

    /// Who signed `entry`, if its signature holds: the certificate chains to the port CA and
    /// was valid for client authentication at the record's time, names a client of this port,
    /// and its key signed exactly this entry.
    pub fn verify(&self, entry: &AuditEntry) -> Result<Signer, SignatureError> {
        let sig = entry.signature.as_ref().ok_or(SignatureError::Unsigned)?;
        let cert_der = CertificateDer::from(sig.certificate.as_slice());
        let bad_cert = |e: &dyn std::fmt::Display| SignatureError::Certificate(e.to_string());
        let cert = EndEntityCert::try_from(&cert_der).map_err(|e| bad_cert(&e))?;
        let anchor = webpki::anchor_from_trusted_cert(&self.ca).map_err(|e| bad_cert(&e))?;
        let at = u64::try_from(entry.at.timestamp()).unwrap_or(0);
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(at)),
            KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| bad_cert(&e))?;
        let alg = algorithm(sig.scheme)?;
        cert.verify_signature(alg, &entry.signed_message(), &sig.signature)
            .map_err(|_| SignatureError::Mismatch)?;
        let leaf = LeafInfo::parse("the audit record's signer", &sig.certificate)
            .map_err(|e| bad_cert(&e))?;
        if leaf.port != self.port {
            return Err(SignatureError::Certificate(format!(
                "it belongs to port {:?}, not {:?}",
                leaf.port, self.port
            )));
        }
        Ok(Signer {
            identity: leaf.identity,
            role: leaf.role,
        })
    }
}

/// What a verified trail holds: how many records, who signed them, how many reasons were erased
/// with the persons they concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrailSummary {
    /// Records in the trail.
    pub records: usize,
    /// Records per signer (`client-console`).
    pub signers: std::collections::BTreeMap<String, usize>,
    /// Records whose reason's text was erased.
    pub reasons_erased: usize,
}

/// Checks a whole trail from its first record: the hash chain ([`verify_chain`]) and every
/// record's client signature. The first record that does not hold is the error.
///
/// [`verify_chain`]: clearway_gallery::ops::verify_chain
pub fn verify_trail(
    records: &[clearway_gallery::ops::AuditRecord],
    verifier: &AuditVerifier,
) -> Result<TrailSummary, clearway_gallery::ops::ChainBreak> {
    clearway_gallery::ops::verify_chain(records)?;
    let mut summary = TrailSummary {
        records: records.len(),
        ..TrailSummary::default()
    };
    for r in records {
        let signer = verifier
            .verify(&r.entry)
            .map_err(|e| clearway_gallery::ops::ChainBreak {
                seq: r.seq,
                why: e.to_string(),
            })?;
        *summary
            .signers
            .entry(signer.identity.to_string())
            .or_default() += 1;
        if r.reason.is_none() {
            summary.reasons_erased += 1;
        }
    }
    Ok(summary)
}

fn algorithm(
    scheme: u16,
) -> Result<&'static dyn rustls::pki_types::SignatureVerificationAlgorithm, SignatureError> {
    match SignatureScheme::from(scheme) {
        SignatureScheme::ECDSA_NISTP256_SHA256 => Ok(webpki::ring::ECDSA_P256_SHA256),
        SignatureScheme::ECDSA_NISTP384_SHA384 => Ok(webpki::ring::ECDSA_P384_SHA384),
        SignatureScheme::ED25519 => Ok(webpki::ring::ED25519),
        SignatureScheme::RSA_PSS_SHA256 => Ok(webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY),
        _ => Err(SignatureError::Scheme(scheme)),
    }
}

#[cfg(test)]
mod tests;
