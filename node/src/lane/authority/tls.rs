//! rustls configurations for the authority connections: the lane's client side (our certificate,
//! the authority's CA as the only root) and the reference service's server side (client
//! certificates required, issued by the configured CA).

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::AuthorityError;

/// ALPN: the authority APIs are HTTP/1.1.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// PEM text of the three files of one side of a mutual TLS connection.
#[derive(Clone)]
pub(crate) struct TlsPem {
    /// Trust anchors: CA certificate(s).
    pub ca: Vec<u8>,
    /// Our certificate chain, leaf first.
    pub cert: Vec<u8>,
    /// Our private key.
    pub key: zeroize::Zeroizing<Vec<u8>>,
}

impl TlsPem {
    /// Reads the three files.
    pub fn read(ca: &Path, cert: &Path, key: &Path) -> Result<TlsPem, AuthorityError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| AuthorityError::tls(p, format!("cannot read: {e}")))
        };
        Ok(TlsPem {
            ca: read(ca)?,
            cert: read(cert)?,
            key: zeroize::Zeroizing::new(read(key)?),
        })
    }
}

/// Names of the three parts, for error messages when the PEM came from files.
pub(crate) struct TlsOrigin<'a> {
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(pem: &[u8], origin: &Path) -> Result<RootCertStore, AuthorityError> {
    let mut roots = RootCertStore::empty();
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| AuthorityError::tls(origin, format!("not PEM: {e}")))?;
        roots.add(cert).map_err(|e| {
            AuthorityError::tls(origin, format!("not a usable CA certificate: {e}"))
        })?;
        n += 1;
    }
    if n == 0 {
        return Err(AuthorityError::tls(origin, "no CERTIFICATE block"));
    }
    Ok(roots)
}

fn chain(pem: &[u8], origin: &Path) -> Result<Vec<CertificateDer<'static>>, AuthorityError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AuthorityError::tls(origin, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(AuthorityError::tls(origin, "no CERTIFICATE block"));
    }
    Ok(certs)
}

fn key(pem: &[u8], origin: &Path) -> Result<PrivateKeyDer<'static>, AuthorityError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| AuthorityError::tls(origin, format!("no usable private key: {e}")))
}

/// The lane's client configuration: TLS 1.2/1.3 (ring), the authority's CA as the only root, our
/// client certificate always presented, ALPN `http/1.1`.
pub(crate) fn client_config(
    pem: &TlsPem,
    origin: &TlsOrigin<'_>,
) -> Result<rustls::ClientConfig, AuthorityError> {
    let roots = roots(&pem.ca, origin.ca)?;
    let chain = chain(&pem.cert, origin.cert)?;
    let key = key(&pem.key, origin.key)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthorityError::tls(origin.cert, format!("tls setup: {e}")))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            AuthorityError::tls(
                origin.key,
                format!("the key does not fit the client certificate: {e}"),
            )
        })?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}

/// The reference service's server configuration: a client certificate issued by the configured
/// CA is required (anonymous clients are refused at the handshake), ALPN `http/1.1`.
pub(crate) fn server_config(
    pem: &TlsPem,
    origin: &TlsOrigin<'_>,
) -> Result<rustls::ServerConfig, AuthorityError> {
    let provider = provider();
    let roots = roots(&pem.ca, origin.ca)?;
    let chain = chain(&pem.cert, origin.cert)?;
    let key = key(&pem.key, origin.key)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| AuthorityError::tls(origin.ca, format!("client verifier: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthorityError::tls(origin.cert, format!("tls setup: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            AuthorityError::tls(
                origin.key,
                format!("the key does not fit the server certificate: {e}"),
            )
        })?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}
