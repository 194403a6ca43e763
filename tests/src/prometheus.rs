//! A real Prometheus server (Debian's `prometheus`) with the shipped scrape config
//! (`deploy/prometheus/prometheus.yml` and its rules), scraping a local port through a file-SD
//! target file, and `promtool check metrics` on a scrape. Used by `tests/console.rs` and the
//! demo.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::lane::http;
use crate::root;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

/// One scrape target of a port's file-SD target file.
pub struct Target {
    /// `host:port` of its `/metrics`.
    pub addr: SocketAddr,
    /// Its labels (`role`, `member`, `port`, `node`, `hall`, `channel`), as in
    /// `deploy/prometheus/README.md`.
    pub labels: Vec<(&'static str, String)>,
}

/// A running Prometheus server; killed on drop.
pub struct Prometheus {
    child: Child,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for e in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let e = e?;
        std::fs::copy(e.path(), to.join(e.file_name()))
            .with_context(|| format!("cannot copy {}", e.path().display()))?;
    }
    Ok(())
}

/// Whether Debian's `prometheus` is installed.
pub fn installed() -> bool {
    Path::new(PROMETHEUS).is_file()
}

/// Writes `<dir>/targets/<port>.json` in Prometheus' `file_sd` format, through a temporary
/// file renamed into place (Prometheus never reads half a file).
pub fn write_targets(dir: &Path, port: &str, targets: &[Target]) -> anyhow::Result<()> {
    let groups: Vec<Value> = targets
        .iter()
        .map(|t| {
            let labels: serde_json::Map<String, Value> = t
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                .collect();
            json!({"targets": [t.addr.to_string()], "labels": labels})
        })
        .collect();
    let targets_dir = dir.join("targets");
    std::fs::create_dir_all(&targets_dir)
        .with_context(|| format!("cannot create {}", targets_dir.display()))?;
    let file = targets_dir.join(format!("{port}.json"));
    let tmp = targets_dir.join(format!(".{port}.json.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&groups)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))
}

impl Prometheus {
    /// Lays out the shipped config in `dir` (`prometheus.yml`, `rules/`), writes
    /// `targets/<port>.json` and starts Prometheus on a free loopback port.
    pub fn start(dir: &Path, port: &str, targets: &[Target]) -> Prometheus {
        assert!(
            installed(),
            "{PROMETHEUS} is missing: `just setup` installs the Debian package prometheus"
        );
        let listen = crate::port::free_tcp().expect("free TCP port");
        Prometheus::try_start(dir, port, targets, listen).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// [`Prometheus::start`] on `listen`, with errors as values. The config and rules are
    /// copied afresh each time; the data (`data/`) is kept.
    pub fn try_start(
        dir: &Path,
        port: &str,
        targets: &[Target],
        listen: SocketAddr,
    ) -> anyhow::Result<Prometheus> {
        if !installed() {
            bail!("{PROMETHEUS} is missing: `just setup` installs the Debian package prometheus");
        }
        let shipped = root().join("deploy/prometheus");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::copy(shipped.join("prometheus.yml"), dir.join("prometheus.yml"))
            .with_context(|| format!("cannot copy {}", shipped.join("prometheus.yml").display()))?;
        copy_dir(&shipped.join("rules"), &dir.join("rules"))?;
        write_targets(dir, port, targets)?;
        let log_path = dir.join("prometheus.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let child = Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {PROMETHEUS}"))?;
        Ok(Prometheus {
            child,
            addr: listen,
            dir: dir.to_path_buf(),
        })
    }

    /// SIGTERM, and wait up to `grace` for it to finish writing (SIGKILL after).
    pub fn stop(mut self, grace: Duration) -> crate::process::Stopped {
        crate::process::terminate(&mut self.child, grace)
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Prometheus's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET` on the HTTP API; the parsed `data`, or why not.
    pub fn api(&self, path_and_query: &str) -> Result<Value, String> {
        if std::net::TcpStream::connect(self.addr).is_err() {
            return Err("not listening yet".into());
        }
        let (status, body) = http(self.addr, "GET", path_and_query);
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{status}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// Active targets as (scrape URL, job, health).
    pub fn targets(&self) -> Result<Vec<(String, String, String)>, String> {
        let data = self.api("/api/v1/targets?state=active")?;
        Ok(data["activeTargets"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                        (
                            s("scrapeUrl"),
                            t["labels"]["job"].as_str().unwrap_or_default().to_string(),
                            s("health"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// An instant query (a plain selector: no characters that need URL encoding but `{}"=`).
    pub fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let q: String = promql
            .chars()
            .map(|c| match c {
                '{' => "%7B".to_string(),
                '}' => "%7D".to_string(),
                '"' => "%22".to_string(),
                '=' => "%3D".to_string(),
                ' ' => "%20".to_string(),
                ',' => "%2C".to_string(),
                c => c.to_string(),
            })
            .collect();
        let data = self.api(&format!("/api/v1/query?query={q}"))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Waits up to `within` for `probe` to answer.
    pub fn wait<T>(
        &self,
        within: Duration,
        what: &str,
        mut probe: impl FnMut(&Prometheus) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            match probe(self) {
                Ok(v) => return v,
                Err(why) if Instant::now() > deadline => {
                    panic!("{what}: {why}\nprometheus log:\n{}", self.log())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
}

/// `promtool check metrics` on one scrape (the exposition text without HTTP headers): `Err`
/// with promtool's complaints when it finds any.
pub fn promtool_check_metrics(exposition: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{PROMTOOL}: {e} (`just setup` installs prometheus)"))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
