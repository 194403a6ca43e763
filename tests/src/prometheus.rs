//! A real Prometheus server (Debian's `prometheus`) with the shipped scrape config
//! (`deploy/prometheus/prometheus.yml` and its rules), scraping a local port through a file-SD
//! target file, and `promtool check metrics` on a scrape. Used by `tests/console.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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

fn free_tcp() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free TCP port")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("dir entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

impl Prometheus {
    /// Lays out the shipped config in `dir` (`prometheus.yml`, `rules/`), writes
    /// `targets/<port>.json` and starts Prometheus on a free loopback port.
    pub fn start(dir: &Path, port: &str, targets: &[Target]) -> Prometheus {
        assert!(
            Path::new(PROMETHEUS).is_file(),
            "{PROMETHEUS} is missing: `just setup` installs the Debian package prometheus"
        );
        let shipped = root().join("deploy/prometheus");
        std::fs::create_dir_all(dir.join("targets")).expect("targets dir");
        std::fs::copy(shipped.join("prometheus.yml"), dir.join("prometheus.yml"))
            .expect("copy prometheus.yml");
        copy_dir(&shipped.join("rules"), &dir.join("rules"));
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
        std::fs::write(
            dir.join("targets").join(format!("{port}.json")),
            serde_json::to_vec_pretty(&groups).expect("json"),
        )
        .expect("write targets");
        let addr = free_tcp();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            addr,
            dir: dir.to_path_buf(),
        }
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
        let (status, body) = get(self.addr, path_and_query)?;
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

/// `GET` over HTTP/1.0, so the answer is never chunked: (status, body).
fn get(addr: SocketAddr, path_and_query: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "GET {path_and_query} HTTP/1.0\r\nHost: localhost\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
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
