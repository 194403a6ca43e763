//! The demo's directory and what it needs from the machine: `demo.json` (what is remembered
//! between runs), the directory checks and lock, the binaries and the console's browser code,
//! free ports, and the console users' generated passwords (files of mode 0600).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// What the demo remembers between runs (`demo.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct State {
    /// Layout version.
    pub(super) version: u32,
    /// The console's address, chosen on the first run.
    pub(super) console_listen: Option<SocketAddr>,
    /// The console's `/metrics` address, chosen on the first run.
    #[serde(default)]
    pub(super) console_metrics: Option<SocketAddr>,
    /// Prometheus' address, chosen on the first run it ran.
    pub(super) prometheus_listen: Option<SocketAddr>,
    /// Whether the registry was seeded (all enrolments and the cancellation committed).
    pub(super) seeded: bool,
}

impl State {
    pub(super) fn load(dir: &Path) -> anyhow::Result<Option<State>> {
        let file = dir.join("demo.json");
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a demo state file; remove the directory to start over",
                    file.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
        }
    }

    pub(super) fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(".demo.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join("demo.json"))
            .with_context(|| format!("cannot write {}", dir.join("demo.json").display()))
    }
}

/// A program the demo runs, found beside `clearway-demo` (or where `env` points).
pub(super) fn binary(env: &str, name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .context("cannot find this program's own path")?
            .with_file_name(name),
    };
    if !path.is_file() {
        bail!(
            "{name} not found at {}: build it with `cargo build --release --locked -p {package}` \
             (`just demo` builds everything), or set {env} to it",
            path.display()
        );
    }
    Ok(path)
}

/// The console's compiled browser code.
pub(super) fn console_site() -> PathBuf {
    if let Some(p) = std::env::var_os("CLEARWAY_CONSOLE_SITE") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("CLEARWAY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/clearway-cache"));
    cache.join("console-site")
}

/// Makes sure `dir` is a demo directory we may use, and takes its lock. Whether it is new.
pub(super) fn prepare_dir(dir: &Path) -> anyhow::Result<(File, Option<State>)> {
    let hint = "set CLEARWAY_DEMO_DIR (or --dir) to a writable directory";
    if dir.exists() && !dir.is_dir() {
        bail!("{} is not a directory; {hint}", dir.display());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the demo directory {}; {hint}", dir.display()))?;
    let state = State::load(dir)?;
    if state.is_none() {
        let entries: Vec<String> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "demo.lock")
            .collect();
        if !entries.is_empty() {
            let what = if entries.iter().any(|e| e == "gallery") {
                " (it looks like the CLI walk-through's, `just demo-cli`)"
            } else {
                ""
            };
            bail!(
                "{} is not empty and holds no demo.json, so it is not a demo directory{what}: \
                 remove it (rm -rf {}) or {hint}",
                dir.display(),
                dir.display()
            );
        }
    }
    let lock_path = dir.join("demo.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot write in {}; {hint}", dir.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another clearway-demo is running on {}; stop it first (Ctrl-C in its terminal)",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
        }
    }
    Ok((lock, state))
}

/// Fails with a clear message if `addr` is taken (TCP or UDP); `hint` says what to do.
pub(super) fn check_free(
    addr: SocketAddr,
    udp: bool,
    what: &str,
    hint: &str,
) -> anyhow::Result<()> {
    let r = if udp {
        UdpSocket::bind(addr).map(drop)
    } else {
        TcpListener::bind(addr).map(drop)
    };
    r.with_context(|| format!("{addr} ({what}) is in use: {hint}"))
}

/// What to do when a node's address is taken.
pub(super) const NODE_PORT_HINT: &str = "is an earlier demo still running? (`pgrep -a clearway-node`); \
                              the addresses were chosen on the first run and are kept in port/node-N/node.toml";

/// A password of 20 characters from an alphabet without look-alikes.
pub(super) fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Writes a new file readable by its owner only (mode 0600).
pub(super) fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(f, "{text}").with_context(|| format!("cannot write {}", path.display()))
}
