//! `clearway-demo` (`just demo`) end to end: the real binary on a fresh directory with a short
//! walk interval. It must come up (three voters, four lanes, the console, Prometheus when
//! installed), clear travellers (seen on a lane's `/metrics` and through the console's JSON
//! API after signing in with the printed credential), stop cleanly on SIGINT (exit 0, every
//! child waited for), and on a second run find everything as it was: the same CA, the
//! cluster rejoined rather than initialised, the same persons in the registry, the same
//! console credential. Bad input gives one clear error line, never a panic.
//!
//! Time-outs here are hang guards, not performance goals.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use clearway_node::cluster::ClusterClient;
use clearway_tests::console::{console_bin, console_certificate, get_json, login};
use clearway_tests::demo::registry::{Standing, TRAVELLERS};
use clearway_tests::demo::{LANES, PORT_ID, channel};
use clearway_tests::http::Https;
use clearway_tests::node_bin;
use clearway_tests::port::LocalPort;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};

const DEMO: &str = env!("CARGO_BIN_EXE_clearway-demo");

/// A running `clearway-demo`, in its own process group (killed with all its children on drop).
struct Demo {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
            let _ = self.child.wait();
        }
    }
}

fn command(dir: &Path) -> Command {
    let mut c = Command::new(DEMO);
    c.env("CLEARWAY_DEMO_DIR", dir)
        .env("CLEARWAY_DEMO_WALK_INTERVAL_MS", "1000")
        .env("CLEARWAY_NODE_BIN", node_bin())
        .env("CLEARWAY_CONSOLE_BIN", console_bin())
        .env("CLEARWAY_ASSETS", clearway_tests::assets())
        .env("ORT_DYLIB_PATH", clearway_tests::ort_library())
        .env_remove("CLEARWAY_DEMO_CONSOLE_PORT")
        .env_remove("CLEARWAY_DEMO_PROMETHEUS_PORT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

impl Demo {
    fn start(dir: &Path) -> Demo {
        let mut child = command(dir)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("clearway-demo starts");
        let out = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for (stream, tag) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, "demo"),
            (Box::new(stderr), "demo stderr"),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    println!("{tag}: {line}");
                    if let Ok(mut o) = out.lock() {
                        o.push(line);
                    }
                }
            });
        }
        Demo { child, out }
    }

    fn output(&self) -> Vec<String> {
        self.out.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Waits for a line containing `text`.
    fn wait_line(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.output().into_iter().find(|l| l.contains(text)) {
                return l;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads catch up before reporting.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "clearway-demo exited ({status}) before printing {text:?}:\n{}",
                    self.output().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} within {within:?}:\n{}",
                self.output().join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The first `http://…` on the line containing `text`.
    fn url(&mut self, text: &str) -> SocketAddr {
        let line = self.wait_line(text, Duration::from_secs(5));
        line.split_whitespace()
            .find_map(|w| {
                w.strip_prefix("https://")
                    .or_else(|| w.strip_prefix("http://"))
            })
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no http://address in {line:?}"))
    }

    /// SIGINT, then the exit status within `within`.
    fn interrupt(&mut self, within: Duration) -> std::process::ExitStatus {
        kill_process(Pid::from_child(&self.child), Signal::INT).expect("SIGINT");
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "clearway-demo did not stop within {within:?} of SIGINT:\n{}",
                self.output().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A console page left open: a live event stream (`/events/port/…`) read on a thread until the
/// console closes it. The thread answers how many bytes arrived before the end.
fn open_live_page(console: &Https, session: &str) -> std::thread::JoinHandle<usize> {
    use std::io::{Read, Write};
    let mut stream = console.connect().expect("connect to the console");
    let request = format!(
        "GET /events/port/{PORT_ID} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\
         Cookie: {}={session}\r\n\r\n",
        console.addr,
        clearway_tests::console::SESSION_COOKIE
    );
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    std::thread::spawn(move || {
        let mut seen = 0;
        let mut buf = [0u8; 4096];
        // No read time-out: the stream ends when the console closes it (or the test fails on
        // the demo's stop first).
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen += n;
        }
        seen
    })
}

/// The metrics address of every lane, from the demo's lane table.
fn lane_metrics(demo: &mut Demo) -> Vec<SocketAddr> {
    (1..=LANES)
        .map(|n| {
            let line = demo.wait_line(&format!("{}  node", channel(n)), Duration::from_secs(5));
            line.split("metrics http://")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
        })
        .collect()
}

fn cleared(metrics: SocketAddr) -> f64 {
    let Ok(r) = clearway_tests::http::request(metrics, "GET", "/metrics", &[], &[]) else {
        return 0.0;
    };
    r.body
        .lines()
        .filter(|l| {
            l.starts_with("clearway_lane_decisions_total{") && l.contains("outcome=\"cleared\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The registry as node 1 sees it: (document, person id) of every traveller found, and the
/// replica's person count.
async fn registry(client: &ClusterClient) -> (Vec<(String, String)>, usize) {
    let mut found = Vec::new();
    for t in &TRAVELLERS {
        let p = client
            .find_document(1, t.document_kind(), t.document.to_string())
            .await
            .expect("find by document");
        match t.standing {
            Standing::Registered | Standing::MinorWithConsent => {
                let p = p.unwrap_or_else(|| panic!("{} is not in the registry", t.name));
                assert_eq!(p.name, t.name);
                found.push((t.document.to_string(), p.id.to_string()));
            }
            Standing::Cancelled | Standing::Unregistered | Standing::MinorWithoutConsent => {
                assert_eq!(p.map(|p| p.name), None, "{} must not be registered", t.name)
            }
        }
    }
    let persons = client.status(1).await.expect("status").persons;
    (found, persons)
}

fn console_clearances(console: &Https, session: &str) -> Result<u64, String> {
    let snap = get_json(
        console,
        session,
        &format!("/api/port_snapshot?port={PORT_ID}"),
    )
    .map_err(|e| format!("{e:#}"))?;
    let channels = snap["halls"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|h| h["channels"].as_array().cloned().unwrap_or_default());
    Ok(channels
        .filter_map(|c| c["lane"]["clearances"].as_u64())
        .sum())
}

fn bad_input() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("a-file");
    std::fs::write(&file, "not a directory").expect("write");
    let not_demo = scratch.path().join("not-a-demo");
    std::fs::create_dir_all(&not_demo).expect("mkdir");
    std::fs::write(not_demo.join("notes.txt"), "mine").expect("write");
    let cases: Vec<(&str, Command, &str)> = vec![
        (
            "a file as the directory",
            command(&file),
            "is not a directory",
        ),
        (
            "a directory under a file",
            command(&file.join("demo")),
            "cannot create the demo directory",
        ),
        (
            "someone else's directory",
            command(&not_demo),
            "not a demo directory",
        ),
        (
            "a missing node binary",
            {
                let mut c = command(&scratch.path().join("fresh"));
                c.env("CLEARWAY_NODE_BIN", scratch.path().join("no-such-node"));
                c
            },
            "cargo build --release --locked -p clearway-node",
        ),
        (
            "a bad camera setting",
            {
                let mut c = command(&scratch.path().join("fresh"));
                c.env("CLEARWAY_DEMO_CAMERA", "big");
                c
            },
            "WIDTHxHEIGHT@FPS",
        ),
    ];
    for (what, mut cmd, expect) in cases {
        let out = cmd.output().expect("clearway-demo runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: succeeded");
        assert!(!stderr.contains("panicked"), "{what}: panicked:\n{stderr}");
        assert!(
            stderr.contains(expect),
            "{what}: no {expect:?} in:\n{stderr}"
        );
        println!("bad input, {what}: {}", stderr.trim());
    }
    assert!(
        !scratch.path().join("fresh").join("port").exists(),
        "nothing is created before the inputs are checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_a_port_stops_cleanly_and_resumes() {
    let started = Instant::now();
    bad_input();

    let dir = tempfile::tempdir().expect("tempdir");
    let demo_dir = dir.path().join("demo");

    // First run: everything is created.
    let mut demo = Demo::start(&demo_dir);
    demo.wait_line("Ready.", Duration::from_secs(180));
    let console_addr = demo.url("  Console ");
    let certificate = demo.wait_line("  Certificate  ", Duration::from_secs(5));
    // The console presents the certificate the demo made (the client trusts nothing else),
    // and the printed fingerprint is that certificate's.
    let (cert, fingerprint) =
        console_certificate(&console_bin(), &demo_dir.join("console")).expect("the certificate");
    assert!(certificate.contains(&fingerprint), "{certificate}");
    let console = Https::new(console_addr, &cert).expect("a client of the console");
    let line = demo.wait_line("  Sign in      admin / ", Duration::from_secs(5));
    let printed = line
        .split("admin / ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("a printed password")
        .to_string();
    let password_file = demo_dir.join("console/admin.password");
    let stored = std::fs::read_to_string(&password_file).expect("password file");
    assert_eq!(
        stored.trim(),
        printed,
        "the printed password is the stored one"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&password_file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the credential file is private");
    }
    let lanes = lane_metrics(&mut demo);
    let deadline = Instant::now() + Duration::from_secs(180);
    while lanes.iter().map(|m| cleared(*m)).sum::<f64>() < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no clearance on any lane's /metrics:\n{}",
            demo.output().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let session = login(&console, "admin", &printed).expect("sign in with the printed credential");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match console_clearances(&console, &session) {
            Ok(n) if n >= 1 => break,
            other => assert!(
                Instant::now() < deadline,
                "the console shows no clearance: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if clearway_tests::prometheus::installed() {
        let prom = demo.url("  Prometheus ");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let up = clearway_tests::http::request(
                prom,
                "GET",
                "/api/v1/query?query=up%7Bjob%3D%22clearway-lanes%22%7D%3D%3D1",
                &[],
                &[],
            )
            .ok()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
            .and_then(|v| v["data"]["result"].as_array().map(Vec::len))
            .unwrap_or(0);
            if up == LANES as usize {
                break;
            }
            assert!(Instant::now() < deadline, "Prometheus sees {up} lanes up");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let port = LocalPort::open(&demo_dir.join("port"), node_bin()).expect("the demo's port");
    let node1 = port.addrs[&1];
    let ca = std::fs::read(demo_dir.join("port/ca/ca.pem")).expect("CA");
    let before = registry(&port.client()).await;
    println!("registry: {before:?}");

    // The demo tells the story a visitor needs: a service-desk user, the travellers' permits,
    // and a channel held for an officer within a minute of the start.
    let out = demo.output().join("\n");
    assert!(
        out.contains("created user desk"),
        "a service-desk user:\n{out}"
    );
    for t in &TRAVELLERS {
        assert!(
            out.lines()
                .any(|l| l.contains(t.name) && l.contains(t.document)),
            "{}'s permit {} is printed:\n{out}",
            t.name,
            t.document
        );
    }
    demo.wait_line(
        "held for an officer (fingerprint_failed)",
        Duration::from_secs(120),
    );

    // A supervisor's page is open (a live event stream) when the demo is stopped: the console
    // still stops cleanly, and closes the stream.
    let live = open_live_page(&console, &session);
    std::thread::sleep(Duration::from_millis(500));
    let status = demo.interrupt(Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "exit status after SIGINT");
    assert!(
        demo.output().iter().any(|l| l.contains("Stopped cleanly")),
        "every child exits 0:\n{}",
        demo.output().join("\n")
    );
    let seen = live.join().expect("the live page's reader");
    assert!(
        seen > 0,
        "the live page got its first snapshot before the stop"
    );
    std::net::UdpSocket::bind(node1).expect("node 1 is gone: its QUIC port is free");
    drop(demo);
    let first_run = started.elapsed();

    // Second run: nothing is created again.
    let mut demo = Demo::start(&demo_dir);
    demo.wait_line("Ready.", Duration::from_secs(180));
    let out = demo.output().join("\n");
    for (expected, why) in [
        ("reused", "the data directory is reused"),
        ("rejoined the cluster", "no second initialisation"),
        ("seeded on the first run", "no re-enrolment"),
        (
            "the password is in the existing file",
            "the same console users",
        ),
    ] {
        assert!(out.contains(expected), "{why}: no {expected:?} in:\n{out}");
    }
    for unexpected in [
        "created the port CA",
        "initialised the cluster",
        "created user",
    ] {
        assert!(
            !out.contains(unexpected),
            "{unexpected:?} on a second run:\n{out}"
        );
    }
    assert_eq!(
        std::fs::read(demo_dir.join("port/ca/ca.pem")).expect("CA"),
        ca,
        "the same CA"
    );
    assert_eq!(
        demo.url("  Console "),
        console_addr,
        "the console where it was"
    );
    let after = registry(&port.client()).await;
    assert_eq!(after, before, "the same persons in the registry");
    login(&console, "admin", &printed).expect("the same credential signs in");
    let status = demo.interrupt(Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "exit status after SIGINT");
    println!(
        "demo smoke test: first run {:.0} s, all {:.0} s (today {})",
        first_run.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        Utc::now().date_naive()
    );
}
