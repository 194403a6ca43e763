//! The cluster command line end to end: make a port CA and bundles, run a node, initialise the
//! cluster, import persons from real photos, read, cancel, and refuse bad input with exit 2.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clearway_tests::{Killed, node, node_bin, photo, root, s};

/// A person example file as JSON.
fn person_json(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("deploy/examples/persons").join(file))
        .expect("example");
    let value: toml::Value = toml::from_str(&text).expect("toml");
    serde_json::to_value(value).expect("json")
}

#[test]
fn port_cluster_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let ca = d.join("ca");
    assert_eq!(
        node(&["port", "init", "--port", "clitest", "--ca", s(&ca)]).code,
        0
    );
    let again = node(&["port", "init", "--port", "clitest", "--ca", s(&ca)]);
    assert_eq!(again.code, 2, "an existing CA is never overwritten");
    assert!(again.stderr.starts_with("error: "), "{}", again.stderr);
    let bad = node(&[
        "port",
        "init",
        "--port",
        "Bad Name",
        "--ca",
        s(&d.join("x")),
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert_eq!(
        node(&[
            "port",
            "issue",
            "--ca",
            s(&ca),
            "--node",
            "1",
            "--role",
            "voter",
            "--out",
            s(&d.join("n1/tls"))
        ])
        .code,
        0
    );
    assert_eq!(
        node(&[
            "port",
            "issue",
            "--ca",
            s(&ca),
            "--client",
            "ops",
            "--out",
            s(&d.join("ops"))
        ])
        .code,
        0
    );

    let addr = clearway_tests::port::free_addr().expect("free loopback port");
    let config = d.join("n1/node.toml");
    std::fs::write(&config, format!("node_id = 1\nlisten = \"{addr}\"\ndata_dir = \"data\"\nkey_file = \"keys/node.keyring\"\ntls_dir = \"tls\"\nrole = \"voter\"\n"))
        .expect("config");
    let log = std::fs::File::create(d.join("n1/log")).expect("log");
    let _child = Killed(
        Command::new(node_bin())
            .args(["run", "--config", s(&config)])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run"),
    );
    let node_arg = format!("1={addr}");
    let ops = d.join("ops");
    let connect = ["--bundle", s(&ops), "--node", node_arg.as_str()];
    let cluster = |args: &[&str]| {
        let mut all = vec!["cluster"];
        all.extend_from_slice(&connect);
        all.extend_from_slice(args);
        node(&all)
    };
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        // The node's own config says it is a voter (role) and names no peers.
        let r = cluster(&["init", "--config", s(&config)]);
        if r.code == 0 {
            break;
        }
        assert!(Instant::now() < until, "init never succeeded: {}", r.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }

    // Import two persons from real photos.
    let lines = [
        serde_json::json!({"person": person_json("hk-resident.toml"), "photos": [s(&photo("face_recognition/obama.jpg"))]}),
        serde_json::json!({"person": person_json("macao-resident.toml"), "photos": [s(&photo("face_recognition/biden.jpg"))]}),
    ];
    let file = d.join("import.jsonl");
    std::fs::write(
        &file,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("write");
    let mut args = vec!["--json", "gallery"];
    args.extend_from_slice(&connect);
    args.extend_from_slice(&["import", s(&file)]);
    let r = node(&args);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    let summary: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
    assert_eq!(summary["enrolled"], 2, "{summary}");
    // Importing again changes nothing: the documents are already registered.
    let r = node(&args);
    let summary: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
    assert_eq!(summary["already_enrolled"], 2, "{summary}");

    let r = cluster(&["person", "P00000001"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("CHAN Tai Man"), "{}", r.stdout);
    let mut status_args = vec!["--json", "cluster"];
    status_args.extend_from_slice(&connect);
    status_args.push("status");
    let r = node(&status_args);
    let status: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
    assert_eq!(status[0]["persons"], 2, "{status}");
    assert_eq!(status[0]["state"], "leader", "{status}");
    // Each command closes its connection on exit: a burst of commands, more than one identity
    // may hold open at once, all get through (a lingering connection would count against the
    // cap until its idle timeout and refuse the later ones).
    for _ in 0..clearway_node::net::rpc::MAX_CONNECTIONS_PER_IDENTITY + 4 {
        let r = node(&status_args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let status: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
        assert_eq!(status[0]["error"], serde_json::Value::Null, "{status}");
    }
    let log1 = std::fs::read_to_string(d.join("n1/log")).expect("log");
    assert!(
        !log1.contains("too many from this identity"),
        "a finished command's connection was still counted"
    );

    assert_eq!(
        cluster(&[
            "cancel",
            "P00000001",
            "--reason",
            "cancelled at the service desk"
        ])
        .code,
        0
    );
    assert_eq!(
        cluster(&["person", "P00000001"]).code,
        1,
        "cancelled: not registered"
    );
    let r = cluster(&[
        "cancel",
        "P00000001",
        "--reason",
        "cancelled at the service desk",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no person P00000001"), "{}", r.stderr);

    // Membership: a second node joins as a learner, is promoted, demoted and removed. Its
    // certificate comes from a signing request: its key is made where it runs and never leaves.
    let tls2 = d.join("n2/tls");
    let r = node(&[
        "port",
        "csr",
        "--port",
        "clitest",
        "--node",
        "2",
        "--out",
        s(&tls2),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let key2 = std::fs::read(tls2.join("key.pem")).expect("key made on the appliance");
    let again = node(&[
        "port",
        "csr",
        "--port",
        "clitest",
        "--node",
        "2",
        "--out",
        s(&tls2),
    ]);
    assert_eq!(
        again.code, 2,
        "a key is never overwritten: {}",
        again.stderr
    );
    let csr = tls2.join("request.csr");
    let sign = |csr: &std::path::Path, id: &str, out: &std::path::Path| {
        node(&[
            "port",
            "sign",
            "--ca",
            s(&ca),
            "--csr",
            s(csr),
            "--node",
            id,
            "--role",
            "voter",
            "--out",
            s(out),
        ])
    };
    // A request for node 2 is not signed as node 3 (a swapped file), nor a damaged one.
    let r = sign(&csr, "3", &d.join("signed3"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("asks for"), "{}", r.stderr);
    let text = std::fs::read_to_string(&csr).expect("csr");
    let damaged = d.join("damaged.csr");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mid = lines.len() / 2;
    lines[mid] = lines[mid].chars().rev().collect();
    std::fs::write(&damaged, lines.join("\n")).expect("write");
    let r = sign(&damaged, "2", &d.join("signed-damaged"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!d.join("signed-damaged/cert.pem").exists());
    let signed = d.join("signed2");
    let r = sign(&csr, "2", &signed);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in ["cert.pem", "ca.pem"] {
        std::fs::copy(signed.join(f), tls2.join(f)).expect("copy to the appliance");
    }
    assert_eq!(std::fs::read(tls2.join("key.pem")).expect("key"), key2);
    let bundle = clearway_node::net::tls::Bundle::load(&tls2).expect("a bundle from the request");
    assert_eq!(bundle.identity, clearway_node::net::Identity::Node(2));
    assert_eq!(bundle.role, clearway_node::net::Role::Voter);
    let addr2 = clearway_tests::port::free_addr().expect("free loopback port");
    let config2 = d.join("n2/node.toml");
    std::fs::write(
        &config2,
        format!("node_id = 2\nlisten = \"{addr2}\"\ndata_dir = \"data\"\nkey_file = \"keys/node.keyring\"\ntls_dir = \"tls\"\n"),
    )
    .expect("config");
    let log2 = std::fs::File::create(d.join("n2/log")).expect("log");
    let mut second = Killed(
        Command::new(node_bin())
            .args(["run", "--config", s(&config2)])
            .stdin(Stdio::null())
            .stderr(log2)
            .spawn()
            .expect("run"),
    );
    let addr2s = addr2.to_string();
    let r = cluster(&["add-learner", "2", addr2s.as_str(), "--wait"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("node 2 caught up"), "{}", r.stdout);
    let members = || {
        let r = node(&status_args);
        let status: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
        (status[0]["voters"].clone(), status[0]["learners"].clone())
    };
    assert_eq!(members(), (serde_json::json!([1]), serde_json::json!([2])));
    assert_eq!(cluster(&["promote", "2"]).code, 0);
    assert_eq!(
        members(),
        (serde_json::json!([1, 2]), serde_json::json!([]))
    );
    assert_eq!(cluster(&["demote", "2"]).code, 0);
    assert_eq!(members(), (serde_json::json!([1]), serde_json::json!([2])));
    assert_eq!(cluster(&["remove", "2"]).code, 0);
    assert_eq!(members(), (serde_json::json!([1]), serde_json::json!([])));
    // SIGTERM stops a node cleanly.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(second.0.id().to_string())
        .status();
    assert!(
        second.0.wait().expect("wait").success(),
        "clean exit on SIGTERM"
    );

    // Bad input: one line on stderr, exit 2.
    std::fs::write(&file, "{\"person\": 1}\n").expect("write");
    let r = node(&args);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("import.jsonl:1"), "{}", r.stderr);
    let r = node(&[
        "cluster",
        "--bundle",
        s(&d.join("ops")),
        "--node",
        "nonsense",
        "status",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = node(&[
        "cluster",
        "--bundle",
        s(&d.join("nowhere")),
        "--node",
        node_arg.as_str(),
        "status",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    std::fs::write(&config, "node_id = 1\n").expect("config");
    let r = node(&["run", "--config", s(&config)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing field"), "{}", r.stderr);
}
