//! Inter-node transport: QUIC (quinn) with mutual TLS against the port CA.
//!
//! Every port runs its own certificate authority ([`tls::PortCa`]). Each node of the port
//! cluster, and each operator client such as the command line, holds a [`tls::Bundle`]: the
//! port CA certificate plus its own certificate and key. The certificate names exactly one
//! [`Identity`] through its DNS subject alternative name, `node-3.<port>.clearway` or
//! `client-admin.<port>.clearway`.
//!
//! Every connection is mutually authenticated at the TLS handshake:
//!
//! * the server requires a client certificate that chains to the port CA (and only to it);
//! * the client checks that the server certificate chains to the port CA and names the node it
//!   meant to reach (the server name is `Identity::Node(n).dns_name(port)`);
//! * after the handshake, both sides read the peer's [`Identity`] from its certificate
//!   ([`tls::peer_identity`]) and the caller checks it is the one it expected;
//! * the certificate also names the holder's [`Role`] (a URI subject alternative name,
//!   `clearway:role/lane/hengqin/passenger/12`): what the node's `cluster::authz` lets it do. A certificate
//!   without a role (issued before roles existed) is refused with a message that says how to
//!   re-issue it.
//!
//! A self-signed certificate, or one from another port's CA (even a port with the same name),
//! is refused at the handshake, before any request reaches a handler.
//!
//! [`rpc`] carries request/response exchanges over QUIC bidirectional streams, one exchange
//! per stream, each message framed as a big-endian `u32` length and the bytes.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub mod rpc;
pub mod signing;
pub mod tls;

#[cfg(test)]
mod tests;

/// The DNS suffix under which every Clearway certificate name lives.
pub const DNS_SUFFIX: &str = "clearway";

/// The longest port or client name, in characters.
pub const MAX_NAME_LEN: usize = 32;

/// Who is at the other end of a connection, as named by its certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A node of the port cluster, by node id. Displayed as `node-3`.
    Node(u64),
    /// An operator client (the command line, a console), by name: 1–32 characters of
    /// `[a-z0-9-]`. Displayed as `client-admin`.
    Client(String),
}

impl Identity {
    /// A client identity, checking the name (1–32 characters of `[a-z0-9-]`).
    pub fn client(name: &str) -> Result<Identity, NetError> {
        check_name(name, "client name")?;
        Ok(Identity::Client(name.to_owned()))
    }

    /// Checks that the identity can be written in a certificate (a client name must be 1–32
    /// characters of `[a-z0-9-]`; node identities are always valid).
    pub fn validate(&self) -> Result<(), NetError> {
        match self {
            Identity::Node(_) => Ok(()),
            Identity::Client(name) => check_name(name, "client name"),
        }
    }

    /// The DNS name that this identity has in the certificates of `port`:
    /// `node-3.hengqin.clearway`, `client-admin.hengqin.clearway`.
    pub fn dns_name(&self, port: &str) -> String {
        format!("{self}.{port}.{DNS_SUFFIX}")
    }

    /// Parses a certificate DNS name (`node-3.hengqin.clearway`) into the identity and the
    /// port name it belongs to.
    pub fn from_dns_name(name: &str) -> Result<(Identity, String), NetError> {
        let bad = |reason: &'static str| NetError::BadName {
            what: "certificate name",
            name: name.to_owned(),
            reason,
        };
        let rest = name
            .strip_suffix(DNS_SUFFIX)
            .and_then(|r| r.strip_suffix('.'))
            .ok_or_else(|| bad("not under .clearway"))?;
        let (label, port) = rest
            .split_once('.')
            .ok_or_else(|| bad("expected <identity>.<port>.clearway"))?;
        check_name(port, "port name").map_err(|_| {
            bad("port name must be 1 to 32 characters of lowercase letters, digits and '-'")
        })?;
        let identity = label
            .parse::<Identity>()
            .map_err(|_| bad("expected node-<id> or client-<name> before the port"))?;
        Ok((identity, port.to_owned()))
    }

    /// Parses a certificate DNS name and checks that it belongs to `port`.
    pub fn from_dns_name_in(name: &str, port: &str) -> Result<Identity, NetError> {
        let (identity, found) = Identity::from_dns_name(name)?;
        if found != port {
            return Err(NetError::WrongPort {
                what: name.to_owned(),
                expected: port.to_owned(),
                found,
            });
        }
        Ok(identity)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Node(id) => write!(f, "node-{id}"),
            Identity::Client(name) => write!(f, "client-{name}"),
        }
    }
}

impl FromStr for Identity {
    type Err = NetError;

    /// Parses `node-3` or `client-admin`. Node ids must be written canonically (no sign, no
    /// leading zero) so that parsing and [`Display`](fmt::Display) round-trip exactly.
    fn from_str(s: &str) -> Result<Identity, NetError> {
        let bad = |reason: &'static str| NetError::BadName {
            what: "identity",
            name: s.to_owned(),
            reason,
        };
        if let Some(id) = s.strip_prefix("node-") {
            let canonical = !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && (id == "0" || !id.starts_with('0'));
            if !canonical {
                return Err(bad(
                    "node id must be a decimal number without leading zeros",
                ));
            }
            let id = id.parse::<u64>().map_err(|_| bad("node id out of range"))?;
            Ok(Identity::Node(id))
        } else if let Some(name) = s.strip_prefix("client-") {
            check_name(name, "client name").map_err(|_| {
                bad("client name must be 1 to 32 characters of lowercase letters, digits and '-'")
            })?;
            Ok(Identity::Client(name.to_owned()))
        } else {
            Err(bad("expected node-<id> or client-<name>"))
        }
    }
}

/// The URI scheme and path prefix under which a certificate names its [`Role`]:
/// `clearway:role/voter`, `clearway:role/lane/hengqin/passenger/12`, `clearway:role/console`,
/// `clearway:role/operator` (a subject alternative name of type URI, exactly one per certificate).
pub const ROLE_URI_PREFIX: &str = "clearway:role/";

/// The longest channel id, in characters.
pub const MAX_CHANNEL_LEN: usize = 96;

/// What a certificate's holder may do in the port. Read from the certificate and nowhere else;
/// The node's `cluster::authz` says what each role may call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A voting rack node: Raft traffic, forwarding its clients' calls to the leader.
    Voter,
    /// A lane appliance in a passenger hall, bound to one channel (`hengqin/passenger/12`): a
    /// learner that may register travellers at its own channel and nothing else that writes.
    Lane {
        /// The channel id.
        channel: String,
    },
    /// The supervisors' console: it vouches for its signed-in users.
    Console,
    /// A person's or tool's client (the command line).
    Operator,
}

impl Role {
    /// The role's name without its channel (`voter`, `lane`, `console`, `operator`): a bounded
    /// metric label.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Voter => "voter",
            Role::Lane { .. } => "lane",
            Role::Console => "console",
            Role::Operator => "operator",
        }
    }

    /// The subject alternative name URI that carries the role.
    pub fn uri(&self) -> String {
        format!("{ROLE_URI_PREFIX}{self}")
    }

    /// Reads a role from its certificate URI (`clearway:role/lane/hengqin/passenger/12`).
    pub fn from_uri(uri: &str) -> Result<Role, NetError> {
        uri.strip_prefix(ROLE_URI_PREFIX)
            .ok_or_else(|| NetError::BadName {
                what: "role uri",
                name: uri.to_owned(),
                reason: "expected clearway:role/<role>",
            })?
            .parse()
    }

    /// Checks that `identity` may hold this role: nodes are voters or lanes, clients are
    /// consoles or operators.
    pub fn fits(&self, identity: &Identity) -> Result<(), NetError> {
        let fits = match (identity, self) {
            (Identity::Node(_), Role::Voter | Role::Lane { .. }) => true,
            (Identity::Client(_), Role::Console | Role::Operator) => true,
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(NetError::BadName {
                what: "role",
                name: format!("{identity} as {self}"),
                reason: "nodes are voters or lanes; clients are consoles or operators",
            })
        }
    }
}

impl fmt::Display for Role {
    /// `voter`, `lane/hengqin/passenger/12`, `console`, `operator`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Lane { channel } => write!(f, "lane/{channel}"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for Role {
    type Err = NetError;

    /// Parses `voter`, `lane/<port>/<hall>/<number>`, `console` or `operator`.
    fn from_str(s: &str) -> Result<Role, NetError> {
        match s {
            "voter" => Ok(Role::Voter),
            "console" => Ok(Role::Console),
            "operator" => Ok(Role::Operator),
            _ => match s.strip_prefix("lane/") {
                Some(channel) => {
                    check_channel(channel)?;
                    Ok(Role::Lane {
                        channel: channel.to_owned(),
                    })
                }
                None => Err(NetError::BadName {
                    what: "role",
                    name: s.to_owned(),
                    reason: "expected voter, lane/<port>/<hall>/<number>, console or operator",
                }),
            },
        }
    }
}

/// Checks a channel id: three `/`-separated parts of `[a-z0-9-]` (port, hall, number), at most
/// [`MAX_CHANNEL_LEN`] characters, e.g. `hengqin/passenger/12`.
pub fn check_channel(channel: &str) -> Result<(), NetError> {
    let parts: Vec<&str> = channel.split('/').collect();
    let ok = channel.len() <= MAX_CHANNEL_LEN
        && parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(NetError::BadName {
            what: "channel",
            name: channel.to_owned(),
            reason: "expected <port>/<hall>/<number> of lowercase letters, digits and '-'",
        })
    }
}

/// Who is at the other end of a connection, as its certificate names it: the identity, its
/// role, the certificate's serial number and when it was issued (what a revocation compares).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// `node-3`, `client-console`.
    pub identity: Identity,
    /// What it may do.
    pub role: Role,
    /// The certificate's serial number, hex.
    pub serial: String,
    /// When the certificate was issued, Unix seconds (its notBefore plus the backdating).
    pub issued_at: i64,
}

/// Revoked certificates: identity → certificates of it issued at or before this time (Unix
/// seconds) are refused. A replacement issued later for the same identity is accepted.
pub type Revoked = std::collections::HashMap<Identity, i64>;

impl Peer {
    /// Whether `revoked` covers this peer's certificate.
    pub fn is_revoked(&self, revoked: &Revoked) -> bool {
        revoked
            .get(&self.identity)
            .is_some_and(|&until| self.issued_at <= until)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.identity, self.role)
    }
}

/// Checks a port or client name: 1–32 characters of `[a-z0-9-]`. `what` names it in the error
/// ("port name", "client name").
pub fn check_name(name: &str, what: &'static str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NetError::BadName {
            what,
            name: name.to_owned(),
            reason: "must be 1 to 32 characters of lowercase letters, digits and '-'",
        })
    }
}

/// Everything that can go wrong in the transport: certificates, files, handshakes, frames.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A port, client or certificate name that is not well formed.
    #[error("invalid {what} {name:?}: {reason}")]
    BadName {
        /// What kind of name ("port name", "client name", "certificate name").
        what: &'static str,
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// rcgen could not generate a key or a certificate.
    #[error("could not create certificate: {0}")]
    CertCreate(#[from] rcgen::Error),
    /// A file that should hold PEM does not.
    #[error("{path}: not a valid pem file ({reason})")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate or key that could be read but is not usable.
    #[error("{what}: bad certificate ({reason})")]
    BadCert {
        /// The file, or a description such as "peer certificate from 10.0.0.3:7400".
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A certificate that belongs to another port.
    #[error("{what}: belongs to port {found}, expected port {expected}")]
    WrongPort {
        /// The file or name concerned.
        what: String,
        /// The port we work for.
        expected: String,
        /// The port it names.
        found: String,
    },
    /// A port CA already exists where a new one would be written.
    #[error("{path}: a port ca already exists here; refusing to overwrite it")]
    CaExists {
        /// The existing key file.
        path: PathBuf,
    },
    /// The rustls/quinn configuration could not be built from the bundle.
    #[error("tls configuration failed: {reason}")]
    TlsConfig {
        /// What rustls or quinn said.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The UDP socket could not be bound.
    #[error("could not bind udp socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The connection could not be set up (unreachable, reset, timed out during the handshake).
    #[error("could not connect to {addr}: {reason}")]
    Connect {
        /// The peer address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// One side refused the other's certificate at the TLS handshake (foreign CA, self-signed,
    /// wrong name, no certificate).
    #[error("tls handshake with {addr} refused: {reason}")]
    HandshakeRefused {
        /// The peer address.
        addr: SocketAddr,
        /// What TLS said.
        reason: String,
    },
    /// The peer's certificate names another identity than the one expected.
    #[error("peer identity mismatch: expected {expected}, got {got}")]
    PeerMismatch {
        /// Whom we meant to reach.
        expected: Identity,
        /// Whom the certificate names.
        got: Identity,
    },
    /// An operation did not finish in time.
    #[error("timed out after {after:?}")]
    Timeout {
        /// The bound that was exceeded.
        after: Duration,
    },
    /// A frame longer than allowed, refused without reading it.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The declared or actual length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// The QUIC connection is closed or was lost.
    #[error("connection closed: {reason}")]
    ConnectionClosed {
        /// Why, as quinn reports it.
        reason: String,
    },
    /// The stream was reset or stopped by the peer.
    #[error("stream closed: {reason}")]
    StreamClosed {
        /// Why.
        reason: String,
    },
    /// The peer's certificate has been revoked.
    #[error("{peer}: the certificate has been revoked")]
    Revoked {
        /// Who.
        peer: String,
    },
    /// A frame that is not well formed (truncated, trailing bytes).
    #[error("bad frame: {reason}")]
    BadFrame {
        /// What is wrong.
        reason: String,
    },
}

impl NetError {
    /// Wraps an IO error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> NetError {
        NetError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A stable identifier for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            NetError::BadName { .. } => "bad_name",
            NetError::CertCreate(_) => "cert_create",
            NetError::BadPem { .. } => "bad_pem",
            NetError::BadCert { .. } => "bad_cert",
            NetError::WrongPort { .. } => "wrong_port",
            NetError::CaExists { .. } => "ca_exists",
            NetError::TlsConfig { .. } => "tls_config",
            NetError::Io { .. } => "io",
            NetError::Bind { .. } => "bind",
            NetError::Connect { .. } => "connect",
            NetError::HandshakeRefused { .. } => "handshake_refused",
            NetError::PeerMismatch { .. } => "peer_mismatch",
            NetError::Timeout { .. } => "timeout",
            NetError::FrameTooLarge { .. } => "frame_too_large",
            NetError::ConnectionClosed { .. } => "connection_closed",
            NetError::StreamClosed { .. } => "stream_closed",
            NetError::BadFrame { .. } => "bad_frame",
            NetError::Revoked { .. } => "revoked",
        }
    }
}
