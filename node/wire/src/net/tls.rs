//! The port CA, node and client certificates, and the rustls/quinn configurations built on them.
//!
//! * [`PortCa`]: one self-signed CA per port (rcgen, ECDSA P-256, ten years). Its key never
//!   leaves the machine it was made on; `ca.key` is written once and never overwritten.
//! * [`Bundle`]: what a node or client holds — the port CA certificate, its own certificate
//!   (about two years, DNS name `node-3.<port>.clearway`) and key.
//! * [`server_config`] / [`client_config`]: TLS 1.3 with the ring provider, ALPN `clearway/1`,
//!   and the port CA as the only trust anchor in both directions.
//! * [`peer_identity`]: the [`Identity`] named by the peer's certificate after a handshake.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use zeroize::Zeroizing;

use super::{Identity, NetError, Peer, Role, check_name};

/// The ALPN protocol every Clearway connection negotiates.
pub const ALPN: &[u8] = b"clearway/1";

/// How long a port CA is valid: ten years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long a voter, console or operator certificate is valid: about two years.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 3600);

/// How long a lane appliance's certificate is valid: 90 days. Lanes stand in passenger halls;
/// a stolen one's certificate dies on its own even if nobody revokes it. Renewal: `port csr`
/// on the appliance, `port sign` by the CA holder (deploy/README.md).
pub const LANE_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

impl Role {
    /// How long a certificate for this role is valid.
    pub fn validity(&self) -> Duration {
        match self {
            Role::Lane { .. } => LANE_VALIDITY,
            _ => LEAF_VALIDITY,
        }
    }
}

/// Certificates start being valid this long before they are made, to tolerate clock skew
/// between the machine that issues them and the nodes that check them.
pub const BACKDATE: Duration = Duration::from_secs(3600);

/// Interval between QUIC keep-alive packets on an otherwise idle connection.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// A connection with no packets from the peer for this long is considered lost.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many request streams a peer may have open at once on one connection.
/// Tens, not thousands: Raft sends a handful at a time, clients one or two, and each stream
/// holds a handler (and up to a frame of memory) on the serving node.
pub const MAX_CONCURRENT_STREAMS: u32 = 32;

/// The prefix of the port CA's common name; the port name follows it.
const CA_CN_PREFIX: &str = "Clearway port CA ";

/// File names inside a CA or bundle directory.
const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca.key";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// The certificate authority of one port. Every node and client certificate of the port is
/// issued by it, and it is the only trust anchor of the port's connections.
#[derive(Clone)]
pub struct PortCa {
    port: String,
    cert_pem: String,
    key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for PortCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortCa")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl PortCa {
    /// Makes a new CA for `port` (1–32 characters of `[a-z0-9-]`): a self-signed ECDSA P-256
    /// certificate, common name `Clearway port CA <port>`, valid ten years, allowed to sign
    /// end-entity certificates and CRLs only.
    pub fn create(port: &str) -> Result<PortCa, NetError> {
        check_name(port, "port name")?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let now = SystemTime::now();
        let mut params = ca_params(port);
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + CA_VALIDITY).into();
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        Ok(PortCa {
            port: port.to_owned(),
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }

    /// The port this CA belongs to.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes `ca.key` (mode 0600) and `ca.pem` (mode 0644) into `dir`, creating it if needed.
    /// Refuses with [`NetError::CaExists`] if `dir` already holds a CA key: a port CA is never
    /// overwritten.
    pub fn save(&self, dir: &Path) -> Result<(), NetError> {
        fs::create_dir_all(dir).map_err(|e| NetError::io(dir, e))?;
        let key_path = dir.join(CA_KEY_FILE);
        let mut file = open_options(0o600)
            .create_new(true)
            .open(&key_path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => NetError::CaExists {
                    path: key_path.clone(),
                },
                _ => NetError::io(&key_path, e),
            })?;
        file.write_all(self.key_pem.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| NetError::io(&key_path, e))?;
        write_file(&dir.join(CA_CERT_FILE), self.cert_pem.as_bytes(), 0o644)
    }

    /// Reads `ca.pem` and `ca.key` from `dir` and checks that the certificate is a Clearway port
    /// CA and that the key is its key.
    pub fn load(dir: &Path) -> Result<PortCa, NetError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_pem = read_file(&cert_path)?;
        let key_pem = Zeroizing::new(read_file(&key_path)?);
        let der = pem_cert(&cert_path, &cert_pem)?;
        let ca = CaInfo::parse(&cert_path.display().to_string(), &der)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| NetError::BadPem {
            path: key_path.clone(),
            reason: format!("not a private key: {e}"),
        })?;
        if key.subject_public_key_info() != ca.spki {
            return Err(NetError::BadCert {
                what: key_path.display().to_string(),
                reason: format!("this key does not belong to the certificate in {CA_CERT_FILE}"),
            });
        }
        Ok(PortCa {
            port: ca.port,
            cert_pem,
            key_pem,
        })
    }

    /// Issues a certificate for `identity` holding `role` on this port: DNS name
    /// `identity.dns_name(port)`, the role as a URI name ([`Role::uri`]), not a CA, usable for
    /// both TLS server and client authentication, valid [`Role::validity`].
    pub fn issue(&self, identity: &Identity, role: &Role) -> Result<Bundle, NetError> {
        role.fits(identity)?;
        self.sign_leaf(identity, Some(role), role.validity())
    }

    /// A certificate as issued before certificates carried roles, to show it is refused.
    #[cfg(test)]
    pub(crate) fn issue_without_role(&self, identity: &Identity) -> Result<String, NetError> {
        match self.sign_leaf(identity, None, LEAF_VALIDITY) {
            Err(NetError::BadCert { reason, .. }) => Ok(reason),
            Err(e) => Err(e),
            Ok(_) => Ok("accepted".into()),
        }
    }

    /// Signs a certificate signing request made where the key lives (`port csr`): the request
    /// gives only its public key and the identity it asks for; the name, the role, the lifetime
    /// and the usages are the CA holder's, exactly as [`PortCa::issue`] sets them. Refused: a
    /// request whose self-signature does not verify, or that asks for another identity than
    /// `identity` (a swapped file). Returns the certificate (PEM).
    pub fn sign(
        &self,
        csr_pem: &str,
        identity: &Identity,
        role: &Role,
    ) -> Result<String, NetError> {
        role.fits(identity)?;
        let bad = |reason: String| NetError::BadCert {
            what: "certificate signing request".into(),
            reason,
        };
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| bad(format!("not a valid signed request: {e}")))?;
        let asked = csr
            .params
            .distinguished_name
            .get(&DnType::CommonName)
            .and_then(|v| match v {
                rcgen::DnValue::Utf8String(s) => Some(s.clone()),
                rcgen::DnValue::PrintableString(p) => Some(p.as_str().to_owned()),
                _ => None,
            })
            .ok_or_else(|| bad("the request names no identity (common name)".into()))?;
        let expected = identity.dns_name(&self.port);
        if asked != expected {
            return Err(bad(format!(
                "the request asks for {asked}, not {expected}: refusing to sign it as {identity}"
            )));
        }
        let params = leaf_params(&self.port, identity, Some(role), role.validity())?;
        Ok(params.signed_by(&csr.public_key, &self.issuer()?)?.pem())
    }

    /// The CA as rcgen's issuer: its subject name and key identifier, and its key.
    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, NetError> {
        let what = format!("port ca {}", self.port);
        let ca_der = pem_cert(Path::new(&what), &self.cert_pem)?;
        let ca = CaInfo::parse(&what, &ca_der)?;
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let mut issuer_params = ca_params(&self.port);
        if let Some(ski) = ca.ski {
            issuer_params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
        }
        Ok(Issuer::new(issuer_params, ca_key))
    }

    fn sign_leaf(
        &self,
        identity: &Identity,
        role: Option<&Role>,
        validity: Duration,
    ) -> Result<Bundle, NetError> {
        let what = format!("port ca {}", self.port);
        let params = leaf_params(&self.port, identity, role, validity)?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer()?)?;
        // Read back with the checks every loaded bundle gets (and its expiry dates).
        Bundle::from_pem(
            Path::new(&what),
            self.cert_pem.clone(),
            cert.pem(),
            key.serialize_pem(),
        )
    }
}

/// A leaf certificate's parameters: DNS name `identity.dns_name(port)`, the role as a URI name,
/// not a CA, usable for TLS server and client authentication, valid `validity` from now.
fn leaf_params(
    port: &str,
    identity: &Identity,
    role: Option<&Role>,
    validity: Duration,
) -> Result<CertificateParams, NetError> {
    identity.validate()?;
    let dns_name = identity.dns_name(port);
    let now = SystemTime::now();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, dns_name.clone());
    params.subject_alt_names = vec![SanType::DnsName(dns_name.try_into()?)];
    if let Some(role) = role {
        params
            .subject_alt_names
            .push(SanType::URI(role.uri().try_into()?));
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + validity).into();
    params.serial_number = Some(random_serial());
    Ok(params)
}

/// A key pair and a certificate signing request for `identity` on `port`, made on the machine
/// that will use the key (`port csr`): the private key never leaves it; the request goes to the
/// CA holder (`port sign`).
pub fn signing_request(
    port: &str,
    identity: &Identity,
) -> Result<(Zeroizing<String>, String), NetError> {
    check_name(port, "port")?;
    identity.validate()?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, identity.dns_name(port));
    let csr = params.serialize_request(&key)?;
    Ok((Zeroizing::new(key.serialize_pem()), csr.pem()?))
}

/// What a node or client needs to take part in the port's connections: the port CA certificate,
/// its own certificate and its key.
#[derive(Clone)]
pub struct Bundle {
    /// The port, as named by the certificate.
    pub port: String,
    /// Who this bundle's certificate says we are.
    pub identity: Identity,
    /// What the certificate lets us do.
    pub role: Role,
    /// The certificate's serial number, hex.
    pub serial: String,
    /// When the certificate was issued, Unix seconds.
    pub issued_at: i64,
    /// When this bundle's certificate expires (notAfter), Unix seconds.
    pub not_after: i64,
    /// When the port CA certificate expires (notAfter), Unix seconds.
    pub ca_not_after: i64,
    ca_pem: String,
    cert_pem: String,
    key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("port", &self.port)
            .field("identity", &self.identity)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// Builds a bundle from PEM text, with the same checks as [`Bundle::load`]; `origin` names
    /// where the text came from in errors (a directory, "the command line").
    pub fn from_pem(
        origin: &Path,
        ca_pem: String,
        cert_pem: String,
        key_pem: String,
    ) -> Result<Bundle, NetError> {
        let key_pem = Zeroizing::new(key_pem);
        let ca_path = origin.join(CA_CERT_FILE);
        let cert_path = origin.join(CERT_FILE);
        let key_path = origin.join(KEY_FILE);
        let ca_what = ca_path.display().to_string();
        let cert_what = cert_path.display().to_string();

        let ca_der = pem_cert(&ca_path, &ca_pem)?;
        let ca = CaInfo::parse(&ca_what, &ca_der)?;
        let cert_der = pem_cert(&cert_path, &cert_pem)?;
        let leaf = LeafInfo::parse(&cert_what, &cert_der)?;
        if leaf.port != ca.port {
            return Err(NetError::WrongPort {
                what: cert_what,
                expected: ca.port,
                found: leaf.port,
            });
        }
        let key = KeyPair::from_pem(&key_pem).map_err(|e| NetError::BadPem {
            path: key_path.clone(),
            reason: format!("not a private key: {e}"),
        })?;
        if key.subject_public_key_info() != leaf.spki {
            return Err(NetError::BadCert {
                what: key_path.display().to_string(),
                reason: format!("this key does not belong to the certificate in {CERT_FILE}"),
            });
        }

        // The same check the peers will make: the certificate chains to the port CA, is valid
        // now and may be used for client authentication.
        let verifier = client_verifier(&ca_der)?;
        verifier
            .verify_client_cert(&cert_der, &[], UnixTime::now())
            .map_err(|e| NetError::BadCert {
                what: cert_what,
                reason: format!("not accepted by the port ca in {CA_CERT_FILE}: {e}"),
            })?;

        Ok(Bundle {
            port: leaf.port,
            identity: leaf.identity,
            role: leaf.role,
            serial: leaf.serial,
            issued_at: leaf.not_before + BACKDATE.as_secs() as i64,
            not_after: leaf.not_after,
            ca_not_after: ca.not_after,
            ca_pem,
            cert_pem,
            key_pem,
        })
    }

    /// Reads `ca.pem`, `cert.pem` and `key.pem` from `dir` and checks them: each is PEM, the
    /// certificate names an identity of the CA's port, the key is the certificate's key, and
    /// the certificate is issued by the CA and valid now. Port and identity come from the
    /// certificate.
    pub fn load(dir: &Path) -> Result<Bundle, NetError> {
        let ca_pem = read_file(&dir.join(CA_CERT_FILE))?;
        let cert_pem = read_file(&dir.join(CERT_FILE))?;
        let key_pem = read_file(&dir.join(KEY_FILE))?;
        Bundle::from_pem(dir, ca_pem, cert_pem, key_pem)
    }

    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir` (created if needed), all mode
    /// 0600, each replaced atomically.
    pub fn save(&self, dir: &Path) -> Result<(), NetError> {
        fs::create_dir_all(dir).map_err(|e| NetError::io(dir, e))?;
        write_file(&dir.join(CA_CERT_FILE), self.ca_pem.as_bytes(), 0o600)?;
        write_file(&dir.join(CERT_FILE), self.cert_pem.as_bytes(), 0o600)?;
        write_file(&dir.join(KEY_FILE), self.key_pem.as_bytes(), 0o600)
    }

    /// The port CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Our certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A bundle made of arbitrary PEM, unchecked, to present bad certificates in tests.
    #[cfg(test)]
    pub(crate) fn unchecked(
        port: &str,
        identity: Identity,
        ca_pem: String,
        cert_pem: String,
        key_pem: String,
    ) -> Bundle {
        Bundle {
            port: port.to_owned(),
            identity,
            role: Role::Voter,
            serial: String::new(),
            issued_at: 0,
            not_after: 0,
            ca_not_after: 0,
            ca_pem,
            cert_pem,
            key_pem: Zeroizing::new(key_pem),
        }
    }

    /// The DER forms of the CA certificate, our certificate and our key.
    pub(super) fn ders(
        &self,
    ) -> Result<
        (
            CertificateDer<'static>,
            CertificateDer<'static>,
            PrivateKeyDer<'static>,
        ),
        NetError,
    > {
        let origin = Path::new("bundle");
        let ca = pem_cert(&origin.join(CA_CERT_FILE), &self.ca_pem)?;
        let cert = pem_cert(&origin.join(CERT_FILE), &self.cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| {
            NetError::BadPem {
                path: origin.join(KEY_FILE),
                reason: e.to_string(),
            }
        })?;
        Ok((ca, cert, key))
    }
}

/// The QUIC server configuration of a node: TLS 1.3, our certificate, and a client certificate
/// that chains to the port CA is required.
pub fn server_config(b: &Bundle) -> Result<quinn::ServerConfig, NetError> {
    let (ca, cert, key) = b.ders()?;
    let verifier = client_verifier(&ca)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(tls_error)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport_config()?);
    Ok(config)
}

/// The QUIC client configuration of a node or client: TLS 1.3, the port CA as the only root,
/// and our certificate for client authentication. The server name to connect with is the
/// peer's [`Identity::dns_name`], which rustls checks against the server's certificate.
pub fn client_config(b: &Bundle) -> Result<quinn::ClientConfig, NetError> {
    let (ca, cert, key) = b.ders()?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_root_certificates(roots(&ca)?)
        .with_client_auth_cert(vec![cert], key)
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(tls_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport_config()?);
    Ok(config)
}

/// The identity and role named by the peer's certificate on an established connection, checked
/// to belong to `port`. The certificate chain itself was verified at the handshake.
pub fn peer_identity(conn: &quinn::Connection, port: &str) -> Result<Peer, NetError> {
    let what = format!("peer certificate from {}", conn.remote_address());
    let bad = |reason: &str| NetError::BadCert {
        what: what.clone(),
        reason: reason.to_owned(),
    };
    let chain = conn
        .peer_identity()
        .ok_or_else(|| bad("the peer presented no certificate"))?
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| bad("the peer's identity is not an x.509 certificate chain"))?;
    let end_entity = chain
        .first()
        .ok_or_else(|| bad("the peer's certificate chain is empty"))?;
    let leaf = LeafInfo::parse(&what, end_entity)?;
    if leaf.port != port {
        return Err(NetError::WrongPort {
            what,
            expected: port.to_owned(),
            found: leaf.port,
        });
    }
    Ok(Peer {
        identity: leaf.identity,
        role: leaf.role,
        serial: leaf.serial,
        issued_at: leaf.not_before + BACKDATE.as_secs() as i64,
    })
}

/// The QUIC endpoint configuration of a node. Its stateless-reset key is derived from the
/// bundle's private key rather than drawn at random, so that a node restarted with the same
/// bundle (after a crash, say) can reset the connections its predecessor left open: peers learn
/// at their next packet that the connection is gone and reconnect, instead of waiting for the
/// idle timeout. For the same reason connection ids are plain random ones, which any instance
/// accepts as possibly its own (quinn's default generator tags them with a per-process key, and
/// a restarted process would silently drop the old connection's packets instead of resetting).
pub fn endpoint_config(b: &Bundle) -> Result<quinn::EndpointConfig, NetError> {
    let (_, _, key) = b.ders()?;
    let mut config = quinn::EndpointConfig::new(Arc::new(ResetKey::derive(key.secret_der())?));
    config.cid_generator(|| Box::new(RandomCids));
    Ok(config)
}

/// Random 8-byte connection ids, without a per-process tag.
struct RandomCids;

impl RandomCids {
    const LEN: usize = 8;
}

impl quinn::ConnectionIdGenerator for RandomCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        let bytes: [u8; Self::LEN] = rand::random();
        quinn::ConnectionId::new(&bytes)
    }

    fn cid_len(&self) -> usize {
        Self::LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// HMAC-SHA256 (ring, through rustls) under a key derived with HKDF from a node's private key;
/// quinn signs connection ids with it to make stateless-reset tokens.
struct ResetKey {
    hkdf: &'static dyn rustls::crypto::tls13::Hkdf,
    key: rustls::crypto::tls13::OkmBlock,
}

impl ResetKey {
    const SALT: &'static [u8] = b"clearway/1 quic";
    const INFO: &'static [u8] = b"stateless reset key";

    fn derive(secret: &[u8]) -> Result<ResetKey, NetError> {
        let hkdf = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
            .tls13()
            .ok_or_else(|| tls_error("the ring provider lacks TLS13_AES_128_GCM_SHA256"))?
            .hkdf_provider;
        let key = hkdf
            .extract_from_secret(Some(Self::SALT), secret)
            .expand_block(&[Self::INFO]);
        Ok(ResetKey { hkdf, key })
    }

    fn tag(&self, data: &[u8]) -> rustls::crypto::hmac::Tag {
        self.hkdf.hmac_sign(&self.key, data)
    }
}

impl quinn::crypto::HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let tag = self.tag(data);
        let tag = tag.as_ref();
        let n = signature_out.len().min(tag.len());
        signature_out[..n].copy_from_slice(&tag[..n]);
    }

    fn signature_len(&self) -> usize {
        self.tag(&[]).as_ref().len()
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        let tag = self.tag(data);
        let tag = tag.as_ref();
        // Constant time in the contents: every byte is compared.
        let differ = tag.len() != signature.len()
            || tag
                .iter()
                .zip(signature)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differ {
            Err(quinn::crypto::CryptoError)
        } else {
            Ok(())
        }
    }
}

/// The crypto provider of every Clearway TLS configuration, named explicitly so that nothing
/// depends on a process-wide default.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding only the port CA.
fn roots(ca: &CertificateDer<'static>) -> Result<RootCertStore, NetError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).map_err(tls_error)?;
    Ok(roots)
}

/// A verifier that requires a client certificate chaining to the port CA.
fn client_verifier(
    ca: &CertificateDer<'static>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, NetError> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
        .build()
        .map_err(tls_error)
}

/// Keep-alives, idle timeout and stream limits shared by servers and clients.
fn transport_config() -> Result<Arc<quinn::TransportConfig>, NetError> {
    let idle = quinn::IdleTimeout::try_from(IDLE_TIMEOUT).map_err(tls_error)?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(Some(idle))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_CONCURRENT_STREAMS))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    Ok(Arc::new(transport))
}

fn tls_error(e: impl std::fmt::Display) -> NetError {
    NetError::TlsConfig {
        reason: e.to_string(),
    }
}

/// The parameters of the port CA that matter for issuing: its name and key usages.
fn ca_params(port: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{CA_CN_PREFIX}{port}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// A random positive 128-bit serial number.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// What we read from a port CA certificate.
struct CaInfo {
    port: String,
    /// The subject key identifier, which issued certificates must name as their authority key.
    ski: Option<Vec<u8>>,
    /// The DER subject public key info, to check a key against.
    spki: Vec<u8>,
    /// The certificate's notAfter, Unix seconds.
    not_after: i64,
}

impl CaInfo {
    fn parse(what: &str, der: &[u8]) -> Result<CaInfo, NetError> {
        let bad = |reason: String| NetError::BadCert {
            what: what.to_owned(),
            reason,
        };
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| bad(format!("not an x.509 certificate: {e}")))?;
        if !cert.is_ca() {
            return Err(bad("not a ca certificate".to_owned()));
        }
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or_else(|| bad("the ca certificate has no common name".to_owned()))?;
        let port = cn
            .strip_prefix(CA_CN_PREFIX)
            .ok_or_else(|| bad(format!("{cn:?} is not a clearway port ca")))?;
        check_name(port, "port name")?;
        let ski = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            });
        Ok(CaInfo {
            port: port.to_owned(),
            ski,
            spki: cert.public_key().raw.to_vec(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// What we read from a node or client certificate.
pub(super) struct LeafInfo {
    pub(super) port: String,
    pub(super) identity: Identity,
    pub(super) role: Role,
    /// The serial number, hex.
    serial: String,
    spki: Vec<u8>,
    /// The certificate's notAfter, Unix seconds.
    not_after: i64,
    /// The certificate's notBefore, Unix seconds.
    not_before: i64,
}

impl LeafInfo {
    /// Reads the identity from the certificate's single DNS subject alternative name and the
    /// role from its single `clearway:role/` URI name.
    pub(super) fn parse(what: &str, der: &[u8]) -> Result<LeafInfo, NetError> {
        let bad = |reason: String| NetError::BadCert {
            what: what.to_owned(),
            reason,
        };
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| bad(format!("not an x.509 certificate: {e}")))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| bad(format!("unreadable subject alternative name: {e}")))?
            .ok_or_else(|| bad("no subject alternative name".to_owned()))?;
        let mut names = san.value.general_names.iter().filter_map(|n| match n {
            GeneralName::DNSName(name) => Some(*name),
            _ => None,
        });
        let (Some(name), None) = (names.next(), names.next()) else {
            return Err(bad("expected exactly one dns name".to_owned()));
        };
        let (identity, port) = Identity::from_dns_name(name)?;
        let mut roles = san.value.general_names.iter().filter_map(|n| match n {
            GeneralName::URI(uri) if uri.starts_with(super::ROLE_URI_PREFIX) => Some(*uri),
            _ => None,
        });
        let role = match (roles.next(), roles.next()) {
            (Some(uri), None) => Role::from_uri(uri)?,
            (None, _) => {
                return Err(bad(format!(
                    "{identity} names no role (issued before certificates carried roles); \
                     re-issue it with `clearway-node port issue --ca <port-ca> {} --out <dir>` \
                     or `port sign`, and install the new bundle",
                    match &identity {
                        Identity::Node(id) => format!("--node {id} --role voter|lane/<channel>"),
                        Identity::Client(name) =>
                            format!("--client {name} --role console|operator"),
                    }
                )));
            }
            (Some(_), Some(_)) => return Err(bad("names more than one role".to_owned())),
        };
        role.fits(&identity)?;
        Ok(LeafInfo {
            port,
            identity,
            role,
            serial: cert.raw_serial_as_string().replace(':', ""),
            not_before: cert.validity().not_before.timestamp(),
            spki: cert.public_key().raw.to_vec(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// The first certificate in a PEM text.
fn pem_cert(path: &Path, pem: &str) -> Result<CertificateDer<'static>, NetError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| NetError::BadPem {
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no certificate in it".to_owned(),
            e => e.to_string(),
        },
    })
}

/// When the (first) certificate in the PEM file at `path` expires (notAfter), Unix seconds. For
/// certificates that are not the port's, such as a lane's authority client certificates.
pub fn certificate_not_after(path: &Path) -> Result<i64, NetError> {
    let der = pem_cert(path, &read_file(path)?)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| NetError::BadCert {
        what: path.display().to_string(),
        reason: format!("not an x.509 certificate: {e}"),
    })?;
    Ok(cert.validity().not_after.timestamp())
}

fn read_file(path: &Path) -> Result<String, NetError> {
    fs::read_to_string(path).map_err(|e| NetError::io(path, e))
}

fn open_options(mode: u32) -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a crash leaves
/// either the old file or the new one, with `mode` from the start.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), NetError> {
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".tmp");
    let result = (|| {
        let mut file = open_options(mode).create(true).truncate(true).open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        NetError::io(path, e)
    })
}
