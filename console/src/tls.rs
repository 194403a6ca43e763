//! HTTPS for the supervisors: the server configuration from the certificate and key files in
//! `[tls]` (PEM; issued by the port's or the operator's CA), and a self-signed certificate for
//! a demo or a lab (`clearway-console tls self-signed`), named by its SHA-256 fingerprint so a
//! supervisor can check what their browser is shown.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What `tls self-signed` writes.
#[derive(Debug)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (write it 0600).
    pub key_pem: String,
    /// SHA-256 of the certificate's DER, as browsers show it (`AB:CD:…`).
    pub fingerprint: String,
}

/// A self-signed certificate (ECDSA P-256, a year) for the given DNS names and IP addresses.
/// For a demo or a lab only: production consoles get one from the operator's CA.
pub fn self_signed(names: &[String]) -> Result<SelfSigned> {
    if names.is_empty() {
        return Err(Error::Invalid(
            "name at least one host name or address".into(),
        ));
    }
    let key = rcgen::KeyPair::generate()
        .map_err(|e| Error::Invalid(format!("cannot make a key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| Error::Invalid(format!("bad certificate names {names:?}: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Clearway console (self-signed)");
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(365 * 86_400)).into();
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Invalid(format!("cannot sign the certificate: {e}")))?;
    Ok(SelfSigned {
        fingerprint: fingerprint(cert.der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// SHA-256 of a certificate's DER, colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The fingerprint of the first certificate in a PEM file.
pub fn fingerprint_file(cert: &Path) -> Result<String> {
    let first = CertificateDer::pem_file_iter(cert)
        .map_err(|e| Error::Config {
            path: cert.to_path_buf(),
            message: format!("not a PEM certificate: {e}"),
        })?
        .next()
        .ok_or_else(|| Error::Config {
            path: cert.to_path_buf(),
            message: "no CERTIFICATE block".into(),
        })?
        .map_err(|e| Error::Config {
            path: cert.to_path_buf(),
            message: format!("not a PEM certificate: {e}"),
        })?;
    Ok(fingerprint(&first))
}

/// The console's TLS server configuration (TLS 1.2 and 1.3, ring, ALPN `http/1.1`) from its
/// certificate chain and key files. Answers it with the leaf's fingerprint.
pub fn server_config(cert: &Path, key: &Path) -> Result<(rustls::ServerConfig, String)> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Config {
            path: cert.to_path_buf(),
            message: format!("not a PEM certificate chain: {e}"),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(Error::Config {
            path: cert.to_path_buf(),
            message: "no CERTIFICATE block".into(),
        });
    };
    let print = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::Config {
        path: key.to_path_buf(),
        message: format!("no usable private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Invalid(format!("tls setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::Config {
            path: cert.to_path_buf(),
            message: format!("the key does not fit the certificate: {e}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, print))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_loads_and_a_wrong_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = self_signed(&["127.0.0.1".into(), "console.test".into()]).expect("a");
        let b = self_signed(&["127.0.0.1".into()]).expect("b");
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        assert_ne!(a.fingerprint, b.fingerprint);
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &a.cert_pem).expect("cert");
        std::fs::write(&key, &a.key_pem).expect("key");
        let (_, print) = server_config(&cert, &key).expect("loads");
        assert_eq!(print, a.fingerprint);
        assert_eq!(fingerprint_file(&cert).expect("fingerprint"), a.fingerprint);
        std::fs::write(&key, &b.key_pem).expect("other key");
        let e = server_config(&cert, &key)
            .expect_err("mismatch")
            .to_string();
        assert!(e.contains("does not fit"), "{e}");
        std::fs::write(&cert, "not pem").expect("garbage");
        let e = server_config(&cert, &key).expect_err("garbage").to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
        assert!(self_signed(&[]).is_err());
    }
}
