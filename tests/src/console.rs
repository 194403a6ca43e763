//! The console rig: the lane rig (a voter and a lane node with every device simulated) plus a
//! real `clearway-console` process serving the test port, with three users, and the browser
//! driver (Playwright driving Debian's headless Chromium) run as a child process. The pieces
//! (`console.toml`, `user add`, serving, signing in over HTTP) are shared with the demo.
//!
//! The browser script and this side meet at checkpoints: the script prints `CHECKPOINT <name>
//! [arg]` on its stdout and waits for one line on its stdin; the Rust test checks what the page
//! cannot see (the gate controller's registers, the lane's screen, a new appliance) and answers
//! `ok` or `fail <why>`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clearway_node::net::Identity;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::http::Https;
use crate::lane::{Rig, rig};
use crate::port::PORT;
use crate::{assets, node_bin, ort_library, root};

/// The console users the rig creates: (name, role, password).
pub const USERS: [(&str, &str, &str); 3] = [
    ("admin", "port-admin", "admin-password-1234"),
    ("wong", "supervisor", "supervisor-pass-5678"),
    ("lee", "service-desk", "service-desk-pass-90"),
];

/// How long an unused console session lasts in the rig, seconds (short, so the browser test can
/// see one expire).
pub const SESSION_IDLE_S: u64 = 15;

/// The `clearway-console` binary beside the test's `clearway-node` (`CLEARWAY_CONSOLE_BIN`
/// overrides).
pub fn console_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CLEARWAY_CONSOLE_BIN") {
        return PathBuf::from(p);
    }
    let bin = node_bin().with_file_name("clearway-console");
    assert!(
        bin.is_file(),
        "{} missing; build it with `cargo build --release -p clearway-console` (`just test` does)",
        bin.display()
    );
    bin
}

/// The console's compiled browser code (`CLEARWAY_CONSOLE_SITE`, exported by the justfile).
pub fn console_site() -> PathBuf {
    let site = std::env::var_os("CLEARWAY_CONSOLE_SITE")
        .map(PathBuf::from)
        .expect("CLEARWAY_CONSOLE_SITE is not set; run the tests through `just test`");
    assert!(
        site.join("pkg").is_dir(),
        "{} has no pkg/; build it with `just console`",
        site.display()
    );
    site
}

/// A lane rig with a console in front of it.
pub struct ConsoleRig {
    /// The port, the lane and its devices.
    pub rig: Rig,
    /// The console's base URL, e.g. `https://127.0.0.1:40123`.
    pub url: String,
    /// A client of the console that trusts its (self-signed) certificate.
    pub https: crate::http::Https,
    /// The console's certificate (PEM).
    pub cert: PathBuf,
    /// Where the console serves `/metrics` for Prometheus (not at `url`).
    pub metrics: SocketAddr,
    /// The rig's directory.
    pub dir: PathBuf,
    console: Child,
    /// Appliances started from bundles the console generated.
    pub appliances: Vec<Child>,
}

impl Drop for ConsoleRig {
    fn drop(&mut self) {
        for c in std::iter::once(&mut self.console).chain(self.appliances.iter_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A hall of a port: its id, name and number of channels.
#[derive(Clone, Copy, Debug)]
pub struct Hall {
    /// Id, the middle part of channel ids (`passenger`).
    pub id: &'static str,
    /// Name shown on pages.
    pub name: &'static str,
    /// Channels 1..=channels.
    pub channels: u32,
}

/// Hengqin Port's halls: the Passenger Inspection Hall (48 channels) and the Immigration
/// Clearance Hall for On-board Passengers (16).
pub const HENGQIN_HALLS: [Hall; 2] = [
    Hall {
        id: "passenger",
        name: "Passenger Inspection Hall",
        channels: 48,
    },
    Hall {
        id: "onboard",
        name: "On-board Passengers Hall",
        channels: 16,
    },
];

/// A `console.toml` for one port: the console on `listen` over HTTPS with the certificate in
/// `tls/` ([`console_certificate`]), its `/metrics` on `metrics`, its data in `data/` and the
/// port's client bundle in `bundle/` beside the file, every node of the port as a seed.
pub fn console_config(
    listen: SocketAddr,
    metrics: SocketAddr,
    port: &str,
    port_name: &str,
    nodes: &BTreeMap<u64, SocketAddr>,
    halls: &[Hall],
    session_idle_s: Option<u64>,
) -> String {
    let nodes: String = nodes
        .iter()
        .map(|(id, addr)| format!("\"{id}\" = \"{addr}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let auth = session_idle_s
        .map(|s| format!("\n[auth]\nsession_idle_s = {s}\n"))
        .unwrap_or_default();
    let halls: String = halls
        .iter()
        .map(|h| {
            format!(
                "\n[[port.hall]]\nid = \"{}\"\nname = \"{}\"\nchannels = {}\n",
                h.id, h.name, h.channels
            )
        })
        .collect();
    format!(
        "listen = \"{listen}\"\nmetrics_listen = \"{metrics}\"\ndata_dir = \"data\"\npoll_interval_ms = 250\n# A lab: the rollout page may create port CAs.\nlab_ca = true\n\n[tls]\ncert = \"tls/console-cert.pem\"\nkey = \"tls/console-key.pem\"\n{auth}\n[[port]]\nid = \"{port}\"\nname = \"{port_name}\"\nbundle_dir = \"bundle\"\ndashboard_url = \"https://grafana.test.invalid/d/clearway-port?var-port={port}\"\nnodes = {{ {nodes} }}\n{halls}"
    )
}

/// The console's HTTPS certificate in `<console dir>/tls/` (`console-cert.pem`, key 0600):
/// made self-signed for 127.0.0.1 and localhost by `clearway-console tls self-signed` unless it
/// exists (a demo's second run keeps it). Answers the certificate's path and its SHA-256
/// fingerprint (`clearway-console tls fingerprint`).
pub fn console_certificate(console_bin: &Path, cdir: &Path) -> anyhow::Result<(PathBuf, String)> {
    let dir = cdir.join("tls");
    let cert = dir.join("console-cert.pem");
    let run = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new(console_bin)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", console_bin.display()))?;
        if !out.status.success() {
            bail!(
                "clearway-console {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let dir_text = dir.to_string_lossy().into_owned();
    let cert_text = cert.to_string_lossy().into_owned();
    if !cert.is_file() {
        run(&[
            "tls",
            "self-signed",
            "--dir",
            &dir_text,
            "--names",
            "127.0.0.1,localhost",
        ])?;
    }
    let printed = run(&["tls", "fingerprint", "--cert", &cert_text])?;
    let fingerprint = printed
        .lines()
        .find_map(|l| l.strip_prefix("SHA-256 fingerprint: "))
        .with_context(|| format!("no fingerprint in {printed:?}"))?
        .trim()
        .to_string();
    Ok((cert, fingerprint))
}

/// `clearway-console user add`: a user `name` with `role` (and for a supervisor, the `ports`
/// they act on), whose password is the first line of `password_file`. The console must not be
/// running (it locks its database).
pub fn add_user(
    console_bin: &Path,
    data: &Path,
    name: &str,
    role: &str,
    ports: &[&str],
    password_file: &Path,
) -> anyhow::Result<()> {
    let mut cmd = std::process::Command::new(console_bin);
    cmd.args(["user", "add", "--data"])
        .arg(data)
        .args(["--name", name, "--role", role, "--password-file"])
        .arg(password_file);
    if !ports.is_empty() {
        cmd.arg("--ports").arg(ports.join(","));
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", console_bin.display()))?;
    if !out.status.success() {
        bail!(
            "clearway-console user add {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Starts `clearway-console serve --config <config>` with its browser code from `site`, its
/// output appended to `log`.
pub fn spawn_console(
    console_bin: &Path,
    config: &Path,
    site: &Path,
    log: &Path,
) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    std::process::Command::new(console_bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("CLEARWAY_CONSOLE_SITE", site)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", console_bin.display()))
}

/// Waits until something listens on `addr`.
pub async fn wait_listening(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {addr} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` escaping of one value.
fn form_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Signs in at the console on `addr` as a browser does: the login page sets the form's CSRF
/// cookie, the form posts it back with the name and password. The session token.
pub fn login(console: &Https, name: &str, password: &str) -> anyhow::Result<String> {
    let page = console
        .request("GET", "/login", &[("Accept", "text/html")], &[])
        .context("GET /login")?;
    let token = page.set_cookie(LOGIN_COOKIE).with_context(|| {
        format!(
            "the login page ({}) set no {LOGIN_COOKIE} cookie",
            page.status
        )
    })?;
    let cookie = format!("{LOGIN_COOKIE}={token}");
    let form = format!(
        "csrf={token}&name={}&password={}",
        form_escape(name),
        form_escape(password)
    );
    let answer = console
        .request(
            "POST",
            "/auth/login",
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form.as_bytes(),
        )
        .context("POST /auth/login")?;
    answer.set_cookie(SESSION_COOKIE).with_context(|| {
        format!(
            "login as {name} refused: {} to {}",
            answer.status,
            answer.header("location").unwrap_or("?")
        )
    })
}

/// `GET` a console route with a session; the JSON answer of a server function.
pub fn get_json(console: &Https, session: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let cookie = format!("{SESSION_COOKIE}={session}");
    let r = console
        .request(
            "GET",
            path,
            &[("Cookie", &cookie), ("Accept", "application/json")],
            &[],
        )
        .with_context(|| format!("GET {path}"))?;
    if r.status != 200 {
        bail!("GET {path}: {} {}", r.status, r.body);
    }
    serde_json::from_str(&r.body).with_context(|| format!("GET {path}: not JSON: {}", r.body))
}

/// The login form's CSRF cookie (`console/src/server/mod.rs`).
pub const LOGIN_COOKIE: &str = "clearway_login";
/// The session cookie (`console/src/dto.rs`).
pub const SESSION_COOKIE: &str = "clearway_session";

/// Starts the lane rig and a console for its port (halls: passenger 48, onboard 16).
pub async fn console_rig(dir: &Path) -> ConsoleRig {
    let rig = rig(dir).await;
    let cdir = dir.join("console");
    rig.port
        .ca
        .issue(
            &Identity::client("console").expect("client name"),
            &clearway_node::net::Role::Console,
        )
        .expect("console bundle")
        .save(&cdir.join("bundle"))
        .expect("save console bundle");
    let listen = crate::port::free_tcp().expect("free TCP port");
    let metrics = crate::port::free_tcp().expect("free TCP port");
    let config = console_config(
        listen,
        metrics,
        PORT,
        "Hengqin Port (test)",
        &rig.port.addrs,
        &HENGQIN_HALLS,
        Some(SESSION_IDLE_S),
    );
    std::fs::write(cdir.join("console.toml"), config).expect("write console.toml");
    let (cert, _) = console_certificate(&console_bin(), &cdir).unwrap_or_else(|e| panic!("{e:#}"));
    let https = Https::new(listen, &cert).expect("a client trusting the console");
    for (name, role, password) in USERS {
        let file = cdir.join(format!("{name}.password"));
        std::fs::write(&file, password).expect("password file");
        let ports: &[&str] = if role == "supervisor" { &[PORT] } else { &[] };
        add_user(&console_bin(), &cdir.join("data"), name, role, ports, &file)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
    let console = spawn_console(
        &console_bin(),
        &cdir.join("console.toml"),
        &console_site(),
        &cdir.join("log"),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let url = https.url();
    if let Err(e) = wait_listening(listen, Duration::from_secs(30)).await {
        panic!(
            "the console did not start: {e}\n{}",
            std::fs::read_to_string(cdir.join("log")).unwrap_or_default()
        );
    }
    ConsoleRig {
        rig,
        url,
        https,
        cert,
        metrics,
        dir: dir.to_path_buf(),
        console,
        appliances: Vec::new(),
    }
}

impl ConsoleRig {
    /// The console's log so far.
    pub fn console_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("console/log")).unwrap_or_default()
    }

    /// Starts an appliance (a `clearway-node`) from a node bundle directory the console made.
    pub fn start_appliance(&mut self, bundle: &Path) {
        let config = bundle.join("node.toml");
        assert!(config.is_file(), "{} has no node.toml", bundle.display());
        let log = std::fs::File::create(bundle.join("log")).expect("appliance log");
        let child = std::process::Command::new(node_bin())
            .args(["run", "--config"])
            .arg(&config)
            .env("CLEARWAY_ASSETS", assets())
            .env("ORT_DYLIB_PATH", ort_library())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("clearway-node starts");
        self.appliances.push(child);
    }
}

/// Where browser screenshots go: `<target dir>/test-output/<name>/` (printed by the test).
pub fn screenshot_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root().join("target"));
    let dir = target.join("test-output").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// A browser script run by `node` with Playwright (from `tests/browser/node_modules`, installed
/// by `just setup`), talking to the test at checkpoints.
pub struct Browser {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stdin: tokio::process::ChildStdin,
    /// Everything the script printed so far.
    pub transcript: String,
}

impl Browser {
    /// Runs `tests/browser/<script>` with `env`.
    pub fn start(script: &str, env: &BTreeMap<String, String>) -> Browser {
        let dir = root().join("tests/browser");
        assert!(
            dir.join("node_modules/playwright-core").is_dir(),
            "{} has no node_modules/playwright-core; run `just setup`",
            dir.display()
        );
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join(script))
            .current_dir(&dir)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (Debian package nodejs)");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        Browser {
            child,
            lines: BufReader::new(stdout).lines(),
            stdin,
            transcript: String::new(),
        }
    }

    /// The next checkpoint `(name, argument)`, or `None` when the script has ended (its exit
    /// status is then checked by [`Browser::finish`]).
    pub async fn checkpoint(&mut self, within: Duration) -> Option<(String, String)> {
        loop {
            let line = tokio::time::timeout(within, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "the browser script said nothing for {within:?}:\n{}",
                        self.transcript
                    )
                })
                .expect("read the script's output")?;
            println!("browser: {line}");
            self.transcript.push_str(&line);
            self.transcript.push('\n');
            if let Some(rest) = line.strip_prefix("CHECKPOINT ") {
                let (name, arg) = rest.split_once(' ').unwrap_or((rest, ""));
                return Some((name.to_string(), arg.to_string()));
            }
        }
    }

    /// Answers the current checkpoint.
    pub async fn answer(&mut self, result: Result<(), String>) {
        let line = match result {
            Ok(()) => "ok\n".to_string(),
            Err(why) => format!("fail {}\n", why.replace('\n', " ")),
        };
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("answer the script");
    }

    /// Waits for the script to end; its exit status must be 0.
    pub async fn finish(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the browser script ends")
            .expect("wait for node");
        assert!(
            status.success(),
            "the browser script failed ({status}):\n{}",
            self.transcript
        );
    }
}
