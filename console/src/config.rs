//! The console's configuration file (`console.toml`). Every field is documented with its
//! default; `validate()` refuses values that parse but make no sense.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "/var/lib/clearway-console"
//!
//! [[port]]
//! id = "hengqin"
//! name = "Hengqin Port"
//! bundle_dir = "/etc/clearway-console/hengqin"   # ca.pem, cert.pem, key.pem (client "console")
//! nodes = { 1 = "10.1.0.11:7400", 2 = "10.1.0.12:7400", 3 = "10.1.0.13:7400" }
//! [[port.hall]]
//! id = "passenger"
//! name = "Passenger Inspection Hall"
//! channels = 48
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The environment variable that overrides `site_dir`.
pub const SITE_ENV: &str = "CLEARWAY_CONSOLE_SITE";

/// The console's configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address the console serves HTTPS on (`[tls]`). Default `127.0.0.1:8443`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The console's certificate (chain) and key, PEM, issued by the operator's or the port's
    /// CA (`clearway-console tls self-signed` makes one for a demo or a lab). Required unless
    /// `plain_http`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Serve plain HTTP instead, on loopback only, behind a TLS-terminating proxy on the same
    /// machine. Default false. (The session cookie stays `Secure`: browsers send it over plain
    /// HTTP only to loopback.)
    #[serde(default)]
    pub plain_http: bool,
    /// An address that answers plain HTTP with a redirect to the HTTPS console, and nothing
    /// else. Default none.
    #[serde(default)]
    pub redirect_listen: Option<SocketAddr>,
    /// Address of `/metrics` (and `/healthz`) for Prometheus: a listener of its own, on the
    /// monitoring network, never the supervisors' console address. Default none: no metrics.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The console's own data: users (sled), rolled-out ports, their CAs (key 0600) and
    /// generated node bundles. Required; relative paths are from the config file's directory.
    pub data_dir: PathBuf,
    /// The compiled browser code (`pkg/clearway_console.js`, `pkg/clearway_console_bg.wasm`).
    /// Default `site` next to the config file; the environment variable `CLEARWAY_CONSOLE_SITE`
    /// overrides it (the justfile exports it).
    #[serde(default)]
    pub site_dir: Option<PathBuf>,
    /// Sessions and lock-out.
    #[serde(default)]
    pub auth: AuthConfig,
    /// How often each port's nodes are polled for status, lanes and ledger, ms. Default 250.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Per-call time-out of a poll, ms; a node slower than this counts as offline. Default 1000.
    #[serde(default = "default_poll_timeout_ms")]
    pub poll_timeout_ms: u64,
    /// A member this many log entries behind the leader raises `replication_lag`. Default 1000.
    #[serde(default = "default_lag_alarm")]
    pub replication_lag_alarm_entries: u64,
    /// Whether the rollout page may create port CAs and sign appliances' requests with them
    /// (keys under `data_dir`, 0600). Default false: a port's CA key belongs offline with its
    /// holder (`clearway-node port init`, `port sign`), and the console only runs ports it is
    /// given in `[[port]]`. Set it for a lab or a demo only.
    #[serde(default)]
    pub lab_ca: bool,
    /// The ports this console runs (more are added from the rollout page). Default none.
    #[serde(default, rename = "port")]
    pub ports: Vec<PortConfig>,
}

/// `[tls]`: the console's HTTPS certificate and key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM (leaf first).
    pub cert: PathBuf,
    /// Its private key, PEM (readable by the console's user only).
    pub key: PathBuf,
}

/// Sessions and lock-out.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A session unused this long ends, seconds. Default 900 (15 min).
    pub session_idle_s: u64,
    /// A session ends this long after login however busy, seconds. Default 43200 (12 h).
    pub session_lifetime_s: u64,
    /// Failed logins in a row that lock an account. Default 5.
    pub lockout_after: u32,
    /// How long a locked account stays locked, seconds. Default 900 (15 min).
    pub lockout_s: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_s: 900,
            session_lifetime_s: 12 * 3600,
            lockout_after: 5,
            lockout_s: 900,
        }
    }
}

impl AuthConfig {
    /// Idle time-out.
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_s)
    }

    /// Absolute lifetime.
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.session_lifetime_s)
    }

    /// Lock-out duration.
    pub fn lockout(&self) -> Duration {
        Duration::from_secs(self.lockout_s)
    }
}

/// One port.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Port id, as in its CA and channel ids (`[a-z0-9-]`, 1–32), e.g. `hengqin`. Required.
    pub id: String,
    /// Name shown on pages, e.g. "Hengqin Port". Required.
    pub name: String,
    /// UTC offset of the port's local time, minutes. Default 480 (UTC+8).
    #[serde(default = "default_offset")]
    pub utc_offset_minutes: i32,
    /// The console's client bundle for this port (`ca.pem`, `cert.pem`, `key.pem` from
    /// `clearway-node port issue --client console`). Required; relative paths are from the
    /// config file's directory.
    pub bundle_dir: PathBuf,
    /// Seed nodes, node id → QUIC address, e.g. `{ 1 = "10.1.0.11:7400" }`; the rest of the
    /// membership is learnt from them. Required (at least one).
    pub nodes: BTreeMap<String, String>,
    /// Halls and their channel counts. Required (at least one).
    #[serde(rename = "hall")]
    pub halls: Vec<HallConfig>,
    /// The port's Grafana dashboard (the shipped `deploy/grafana/clearway-port.json` as your
    /// Grafana serves it), e.g. `https://grafana.hq.example/d/clearway-port?var-port=hengqin`;
    /// hall pages link to it with `var-hall`. Default none (no link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
}

/// One hall of a port.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HallConfig {
    /// Hall id, the middle part of channel ids (`[a-z0-9-]`), e.g. `passenger`. Required.
    pub id: String,
    /// Name shown on pages, e.g. "Passenger Inspection Hall". Required.
    pub name: String,
    /// Channels 1..=channels (1–512). Required.
    pub channels: u32,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}
fn default_poll_ms() -> u64 {
    250
}
fn default_poll_timeout_ms() -> u64 {
    1000
}
fn default_lag_alarm() -> u64 {
    1000
}
fn default_offset() -> i32 {
    480
}

/// Whether `s` is a valid port or hall id: 1–32 of `[a-z0-9-]`, not starting with a dash.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl PortConfig {
    /// Seed nodes with parsed ids and addresses.
    pub fn seeds(&self) -> std::result::Result<BTreeMap<u64, SocketAddr>, String> {
        let mut out = BTreeMap::new();
        for (id, addr) in &self.nodes {
            let n: u64 = id
                .trim()
                .parse()
                .map_err(|_| format!("port {}: node id {id:?} is not a number", self.id))?;
            let a: SocketAddr = addr.trim().parse().map_err(|_| {
                format!(
                    "port {}: node {id}: {addr:?} is not an IP:PORT address",
                    self.id
                )
            })?;
            out.insert(n, a);
        }
        Ok(out)
    }

    /// Checks one port.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !valid_id(&self.id) {
            return Err(format!(
                "port id {:?} must be 1-32 characters of a-z, 0-9 and -",
                self.id
            ));
        }
        if self.name.trim().is_empty() {
            return Err(format!("port {}: name is empty", self.id));
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(format!(
                "port {}: utc_offset_minutes must be -720..=840",
                self.id
            ));
        }
        if self.nodes.is_empty() {
            return Err(format!("port {}: name at least one node", self.id));
        }
        if let Some(url) = &self.dashboard_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(format!(
                "port {}: dashboard_url {url:?} must be an http(s) address",
                self.id
            ));
        }
        self.seeds()?;
        if self.halls.is_empty() {
            return Err(format!("port {}: name at least one [[port.hall]]", self.id));
        }
        let mut seen = BTreeSet::new();
        for h in &self.halls {
            if !valid_id(&h.id) {
                return Err(format!(
                    "port {}: hall id {:?} must be 1-32 characters of a-z, 0-9 and -",
                    self.id, h.id
                ));
            }
            if !seen.insert(h.id.as_str()) {
                return Err(format!("port {}: hall {} appears twice", self.id, h.id));
            }
            if h.name.trim().is_empty() {
                return Err(format!("port {}: hall {}: name is empty", self.id, h.id));
            }
            if !(1..=512).contains(&h.channels) {
                return Err(format!(
                    "port {}: hall {}: channels must be 1..=512",
                    self.id, h.id
                ));
            }
        }
        Ok(())
    }
}

impl ConsoleConfig {
    /// Reads and validates a config file; relative paths are taken from its directory.
    pub fn from_file(path: &Path) -> Result<ConsoleConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        // Paths in the file are taken from its directory, made absolute so that the pages show
        // where generated bundles really are.
        let absolute = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        let config = ConsoleConfig::parse(&text, absolute.parent().unwrap_or(Path::new("/")))
            .map_err(|message| Error::Config {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// Parses and validates TOML text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> std::result::Result<ConsoleConfig, String> {
        let mut config: ConsoleConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut paths: Vec<&mut PathBuf> = vec![&mut config.data_dir];
        paths.extend(config.site_dir.as_mut());
        paths.extend(config.ports.iter_mut().map(|p| &mut p.bundle_dir));
        if let Some(t) = config.tls.as_mut() {
            paths.push(&mut t.cert);
            paths.push(&mut t.key);
        }
        for p in paths.into_iter().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
        if config.site_dir.is_none() {
            config.site_dir = Some(base.join("site"));
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let a = &self.auth;
        if a.session_idle_s == 0 || a.session_lifetime_s < a.session_idle_s {
            return Err("auth.session_idle_s must be > 0 and auth.session_lifetime_s >= it".into());
        }
        if a.lockout_after == 0 || a.lockout_s == 0 {
            return Err("auth.lockout_after and auth.lockout_s must be > 0".into());
        }
        if !(50..=10_000).contains(&self.poll_interval_ms) {
            return Err("poll_interval_ms must be 50..=10000".into());
        }
        if !(50..=30_000).contains(&self.poll_timeout_ms) {
            return Err("poll_timeout_ms must be 50..=30000".into());
        }
        let mut seen = BTreeSet::new();
        for p in &self.ports {
            p.validate()?;
            if !seen.insert(p.id.as_str()) {
                return Err(format!("port {} appears twice", p.id));
            }
        }
        match (&self.tls, self.plain_http) {
            (None, false) => {
                return Err("[tls] cert and key are required (or plain_http = true on loopback behind a TLS-terminating proxy)".into());
            }
            (Some(_), true) => return Err("plain_http and [tls] exclude each other".into()),
            (None, true) if !self.listen.ip().is_loopback() => {
                return Err(format!(
                    "plain_http serves only on loopback (behind a TLS-terminating proxy), not {}",
                    self.listen
                ));
            }
            _ => {}
        }
        if self.redirect_listen.is_some() && self.tls.is_none() {
            return Err("redirect_listen redirects to HTTPS: it needs [tls]".into());
        }
        Ok(())
    }

    /// The site directory: `CLEARWAY_CONSOLE_SITE` if set, else `site_dir`.
    pub fn site_dir(&self) -> PathBuf {
        match std::env::var_os(SITE_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => self
                .site_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("site")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HENGQIN: &str = include_str!("../../deploy/console/hengqin.toml");

    #[test]
    fn the_example_parses_with_both_halls() {
        let c = ConsoleConfig::parse(HENGQIN, Path::new("/etc/cw")).expect("example parses");
        let p = &c.ports[0];
        assert_eq!(p.id, "hengqin");
        let halls: Vec<(&str, &str, u32)> = p
            .halls
            .iter()
            .map(|h| (h.id.as_str(), h.name.as_str(), h.channels))
            .collect();
        assert_eq!(
            halls,
            [
                ("passenger", "Passenger Inspection Hall", 48),
                ("onboard", "On-board Passengers Hall", 16)
            ]
        );
        assert_eq!(p.seeds().expect("seeds").len(), 3);
        assert!(p.bundle_dir.is_absolute());
        assert_eq!(c.auth, AuthConfig::default());
    }

    #[test]
    fn the_example_agrees_with_the_port_definition() {
        // The console's view of Hengqin is written beside the port definition the appliances
        // are provisioned from; halls, channels, seeds and time zone must agree.
        let c = ConsoleConfig::parse(HENGQIN, Path::new("/etc/cw")).expect("example parses");
        let p = &c.ports[0];
        let def = clearway_wire::definition::PortDefinition::parse(include_str!(
            "../../deploy/ports/hengqin.toml"
        ))
        .expect("definition parses");
        assert_eq!(
            (p.id.as_str(), p.name.as_str()),
            (def.id.as_str(), def.name.as_str())
        );
        assert_eq!(p.utc_offset_minutes, def.utc_offset_minutes);
        // Prometheus scrapes the console where it serves /metrics, apart from its own address.
        assert_eq!(
            c.metrics_listen.map(|a| a.to_string()),
            def.console.clone(),
            "the target file's console is the console's metrics_listen"
        );
        assert_ne!(c.metrics_listen, Some(c.listen));
        let console_halls: Vec<(&str, &str, u32)> = p
            .halls
            .iter()
            .map(|h| (h.id.as_str(), h.name.as_str(), h.channels))
            .collect();
        // The halls that are built (Hengqin's departure and arrival halls are planned).
        let defined_halls: Vec<(&str, &str, u32)> = def
            .halls
            .iter()
            .filter(|h| !h.planned)
            .map(|h| (h.id.as_str(), h.name.as_str(), h.channels))
            .collect();
        assert_eq!(console_halls, defined_halls);
        let voters: BTreeMap<u64, SocketAddr> = def
            .voters
            .iter()
            .map(|v| (v.id, SocketAddr::new(v.addr, def.listen.quic)))
            .collect();
        assert_eq!(p.seeds().expect("seeds"), voters);
    }

    #[test]
    fn nonsense_is_refused_with_a_clear_message() {
        let port = |extra: &str| {
            format!(
                "plain_http = true\ndata_dir = \"d\"\n[[port]]\nid = \"hengqin\"\nname = \"H\"\nbundle_dir = \"b\"\nnodes = {{ 1 = \"127.0.0.1:7401\" }}\n{extra}"
            )
        };
        let hall = "[[port.hall]]\nid = \"passenger\"\nname = \"P\"\nchannels = 48\n";
        let table = [
            ("bogus = 1\ndata_dir = \"d\"\n".to_string(), "unknown field"),
            (
                "listen = \"nowhere\"\ndata_dir = \"d\"\n".into(),
                "invalid socket address",
            ),
            (
                "[auth]\nsession_idle_s = 0\n".into(),
                "missing field `data_dir`",
            ),
            (
                "data_dir = \"d\"\n[auth]\nsession_idle_s = 0\n".into(),
                "session_idle_s",
            ),
            (
                "data_dir = \"d\"\n[auth]\nlockout_after = 0\n".into(),
                "lockout_after",
            ),
            (
                "data_dir = \"d\"\npoll_interval_ms = 1\n".into(),
                "poll_interval_ms",
            ),
            (port(""), "missing field `hall`"),
            (
                port("[[port.hall]]\nid = \"P A\"\nname = \"P\"\nchannels = 1\n"),
                "hall id",
            ),
            (
                port("[[port.hall]]\nid = \"p\"\nname = \"P\"\nchannels = 0\n"),
                "channels must be",
            ),
            (port(&format!("{hall}{hall}")), "appears twice"),
            (port(hall).replace("\"hengqin\"", "\"Heng Qin\""), "port id"),
            (
                port(hall).replace("1 = \"127.0.0.1:7401\"", "x = \"127.0.0.1:7401\""),
                "not a number",
            ),
            (
                port(hall).replace("127.0.0.1:7401", "here"),
                "not an IP:PORT",
            ),
            (
                port(hall).replace("nodes = { 1 = \"127.0.0.1:7401\" }", "nodes = {}"),
                "at least one node",
            ),
            (
                port(&hall.replace("channels = 48", "channels = 48\nlanes = 2")),
                "unknown field",
            ),
            (
                port(hall).replace("plain_http = true\n", ""),
                "[tls] cert and key are required",
            ),
            (
                port(hall).replace(
                    "plain_http = true",
                    "plain_http = true\nlisten = \"10.1.0.20:8443\"",
                ),
                "only on loopback",
            ),
            (
                port(hall).replace(
                    "data_dir = \"d\"",
                    "data_dir = \"d\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"",
                ),
                "exclude each other",
            ),
            (
                port(hall).replace(
                    "plain_http = true",
                    "plain_http = true\nredirect_listen = \"127.0.0.1:8080\"",
                ),
                "needs [tls]",
            ),
        ];
        for (text, needle) in table {
            let e = ConsoleConfig::parse(&text, Path::new("/x")).expect_err(&text);
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        ConsoleConfig::parse(&port(hall), Path::new("/x")).expect("the base case is valid");
    }
}
