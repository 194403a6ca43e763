//! The console rig: the lane rig (a voter and a lane node with every device simulated) plus a
//! real `clearway-console` process serving the test port, with three users, and the browser
//! driver (Playwright driving Debian's headless Chromium) run as a child process.
//!
//! The browser script and this side meet at checkpoints: the script prints `CHECKPOINT <name>
//! [arg]` on its stdout and waits for one line on its stdin; the Rust test checks what the page
//! cannot see (the gate controller's registers, the lane's screen, a new appliance) and answers
//! `ok` or `fail <why>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use clearway_node::net::Identity;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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
    /// The console's base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
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

fn free_tcp() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free TCP port")
}

/// Starts the lane rig and a console for its port (halls: passenger 48, onboard 16).
pub async fn console_rig(dir: &Path) -> ConsoleRig {
    let rig = rig(dir).await;
    let cdir = dir.join("console");
    rig.port
        .ca
        .issue(&Identity::client("console").expect("client name"))
        .expect("console bundle")
        .save(&cdir.join("bundle"))
        .expect("save console bundle");
    let listen = free_tcp();
    let nodes: String = rig
        .port
        .addrs
        .iter()
        .map(|(id, addr)| format!("\"{id}\" = \"{addr}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        "listen = \"{listen}\"\ndata_dir = \"data\"\npoll_interval_ms = 250\n\n[auth]\nsession_idle_s = {SESSION_IDLE_S}\n\n[[port]]\nid = \"{PORT}\"\nname = \"Hengqin Port (test)\"\nbundle_dir = \"bundle\"\nnodes = {{ {nodes} }}\n\n[[port.hall]]\nid = \"passenger\"\nname = \"Passenger Inspection Hall\"\nchannels = 48\n\n[[port.hall]]\nid = \"onboard\"\nname = \"On-board Passengers Hall\"\nchannels = 16\n"
    );
    std::fs::write(cdir.join("console.toml"), config).expect("write console.toml");
    for (name, role, password) in USERS {
        let file = cdir.join(format!("{name}.password"));
        std::fs::write(&file, password).expect("password file");
        let mut cmd = std::process::Command::new(console_bin());
        cmd.args(["user", "add", "--data"])
            .arg(cdir.join("data"))
            .args(["--name", name, "--role", role, "--password-file"])
            .arg(&file);
        if role == "supervisor" {
            cmd.args(["--ports", PORT]);
        }
        let out = cmd.output().expect("clearway-console user add runs");
        assert!(
            out.status.success(),
            "user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = std::fs::File::create(cdir.join("log")).expect("console log");
    let console = std::process::Command::new(console_bin())
        .args(["serve", "--config"])
        .arg(cdir.join("console.toml"))
        .env("CLEARWAY_CONSOLE_SITE", console_site())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("clearway-console starts");
    let url = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(
            Instant::now() < deadline,
            "the console did not start:\n{}",
            std::fs::read_to_string(cdir.join("log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ConsoleRig {
        rig,
        url,
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
