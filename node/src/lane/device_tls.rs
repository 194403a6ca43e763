//! Mutual TLS on the hall's device network: the lane's links to its gate controller
//! (Modbus/TCP Security) and to its document reader, and their simulators' server side.
//!
//! One CA, the device network's, certifies the devices and the lanes: a device answers only a
//! client with a certificate from it, and the lane talks only to a device certified by it, for
//! the name it expects. TLS 1.2 or 1.3 (ring), no ALPN (neither protocol names one). The PEM
//! handling is the authority links' (`authority::tls`).

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::lane::authority::tls::{TlsOrigin, TlsPem, client_config};

/// The lane's side of a device link over mutual TLS. The lane presents `client_cert`; the
/// device must present a certificate issued by `ca_cert` for `server_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceTlsConfig {
    /// The CA that issued the device's certificate (PEM); the only one trusted.
    pub ca_cert: PathBuf,
    /// The lane's certificate chain for the device network (PEM, leaf first).
    pub client_cert: PathBuf,
    /// Its private key (PEM).
    pub client_key: PathBuf,
    /// The name the device's certificate must carry. Default: the address's host.
    #[serde(default)]
    pub server_name: Option<String>,
}

impl DeviceTlsConfig {
    /// The name the device's certificate must carry when it is reached at `host`.
    pub(crate) fn name_for(
        &self,
        host: &str,
    ) -> Result<rustls::pki_types::ServerName<'static>, String> {
        let name = self.server_name.clone().unwrap_or_else(|| host.to_owned());
        rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(|e| format!("server_name {name:?}: {e}"))
    }

    /// The lane's TLS client: the configured CA as the only root, our certificate always
    /// presented, no ALPN. A file that cannot be read or used is named in the error.
    pub(crate) fn connector(&self) -> Result<tokio_rustls::TlsConnector, String> {
        let pem = TlsPem::read(&self.ca_cert, &self.client_cert, &self.client_key)
            .map_err(|e| e.to_string())?;
        let origin = TlsOrigin {
            ca: &self.ca_cert,
            cert: &self.client_cert,
            key: &self.client_key,
        };
        let mut config = client_config(&pem, &origin).map_err(|e| e.to_string())?;
        config.alpn_protocols.clear();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

/// The TLS client of one device link: built from the link's [`DeviceTlsConfig`] files on the
/// first handshake, then kept for every reconnection.
#[derive(Default)]
pub(crate) struct DeviceConnector(Option<tokio_rustls::TlsConnector>);

impl DeviceConnector {
    /// The TLS handshake over `stream`, connected to `host`, under `tls`: the device must
    /// present a certificate of the configured CA for the expected name.
    pub(crate) async fn handshake(
        &mut self,
        tls: &DeviceTlsConfig,
        stream: tokio::net::TcpStream,
        host: &str,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let name = tls.name_for(host)?;
        let connector = match &self.0 {
            Some(c) => c.clone(),
            None => {
                let c = tls.connector()?;
                self.0 = Some(c.clone());
                c
            }
        };
        connector
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))
    }
}

/// A device simulator's server side from PEM text: its certificate and key, and the CA whose
/// client certificates it accepts (no ALPN).
pub fn sim_tls_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, String> {
    use crate::lane::authority::tls::server_config;
    let pem = TlsPem {
        ca: ca_pem.to_vec(),
        cert: cert_pem.to_vec(),
        key: zeroize::Zeroizing::new(key_pem.to_vec()),
    };
    let here = std::path::Path::new("(device simulator)");
    let origin = TlsOrigin {
        ca: here,
        cert: here,
        key: here,
    };
    let mut config = server_config(&pem, &origin).map_err(|e| e.to_string())?;
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}

/// The Modbus/TCP Security role extension (the Modbus Organization's `RoleOID`): a UTF8String
/// naming the holder's role, which the controller authorises function codes by.
pub const MODBUS_ROLE_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 50316, 802, 1];

/// The role of a lane's certificate on the device network: the only one a gate controller lets
/// write (command the gates, move the fence). Any other certificate of the CA (a maintenance
/// laptop, a reader) may read the status and nothing more.
pub const LANE_ROLE: &str = "lane";

/// The role a certificate (DER) carries in [`MODBUS_ROLE_OID`], if any and well-formed.
pub(crate) fn modbus_role(cert_der: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let wanted = yasna::models::ObjectIdentifier::from_slice(MODBUS_ROLE_OID).to_string();
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == wanted)?;
    yasna::parse_der(ext.value, |r| r.read_utf8string()).ok()
}

/// The role extension carrying `role`, for a certificate being issued.
pub fn modbus_role_extension(role: &str) -> rcgen::CustomExtension {
    let value = yasna::construct_der(|w| w.write_utf8_string(role));
    rcgen::CustomExtension::from_oid_content(MODBUS_ROLE_OID, value)
}

/// A device network of its own, for tests: its PKI written to `dir` (CA, a device certificate
/// for loopback, a lane certificate with the Modbus `role`, or none), the device simulators'
/// server side, and the lane's side as configured.
#[cfg(test)]
pub(crate) fn test_network(
    dir: &std::path::Path,
    role: Option<&str>,
) -> (Arc<rustls::ServerConfig>, DeviceTlsConfig) {
    let pki = crate::lane::authority::DemoPki::generate_with_role(&[], role).expect("PKI");
    pki.write(dir).expect("write PKI");
    let server = sim_tls_config(
        pki.ca_pem.as_bytes(),
        pki.server_cert_pem.as_bytes(),
        pki.server_key_pem.as_bytes(),
    )
    .expect("server TLS");
    let lane = DeviceTlsConfig {
        ca_cert: dir.join("ca.pem"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
        server_name: None,
    };
    (server, lane)
}

/// How long a device simulator gives a client for its TLS handshake.
const SIM_TLS_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(2);

/// A client's connection as a device simulator (`simulator`, for the log) serves it: plain, or
/// once its TLS handshake (with a certificate of the CA) succeeded within 2 s.
pub(crate) async fn sim_admit(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    tls: Option<&tokio_rustls::TlsAcceptor>,
    simulator: &'static str,
) -> Option<Box<dyn DeviceStream>> {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        return Some(Box::new(stream));
    };
    match tokio::time::timeout(SIM_TLS_HANDSHAKE, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(e)) => {
            tracing::warn!(simulator = true, %peer, error = %e, "{simulator} SIMULATOR: TLS handshake refused.");
            None
        }
        Err(_) => {
            tracing::warn!(simulator = true, %peer, "{simulator} SIMULATOR: no TLS handshake in time.");
            None
        }
    }
}

/// A device connection, plain TCP or TLS.
pub(crate) trait DeviceStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> DeviceStream for T {}
