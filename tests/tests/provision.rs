//! A port laid down from its definition, end to end: `port provision` for three voters (each in
//! its own root, at its own loopback address, all on the same ports as on real appliances), the
//! nodes started from exactly the files it wrote, `cluster init --config` from voter 1's
//! node.toml, and Prometheus' target file from `port targets`. Then the leader's `/metrics`
//! shows every voter reachable.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clearway_tests::{Killed, node, node_bin, s};

/// A port number free on all three voter addresses (127.0.1.1–3 are loopback on Linux).
fn free_port(udp: bool) -> u16 {
    for _ in 0..50 {
        // Outside the ephemeral range, so no client socket lands on it before the node binds.
        let port = clearway_tests::port::free_addr()
            .expect("free loopback port")
            .port();
        let free = (1..=3).all(|i| {
            let a = SocketAddr::from((Ipv4Addr::new(127, 0, 1, i), port));
            if udp {
                UdpSocket::bind(a).is_ok()
            } else {
                std::net::TcpListener::bind(a).is_ok()
            }
        });
        if free {
            return port;
        }
    }
    panic!("no free port on 127.0.1.1-3");
}

const LANE: &str = r#"
camera_gate1 = { name = "gate1", source = "test://" }
camera_gate2 = { name = "gate2", source = "test://" }
gates = { address = "127.0.2.{n}:1502" }
document_reader = { address = "127.0.2.{n}:1503" }
fingerprint_reader = { address = "127.0.2.{n}:1504" }
macao = { base_url = "https://127.0.0.1:1", ca_cert = "/etc/clearway/authority/ca.pem", client_cert = "/etc/clearway/authority/c.pem", client_key = "/etc/clearway/authority/c.key" }
mainland = { base_url = "https://127.0.0.1:2", ca_cert = "/etc/clearway/authority/ca.pem", client_cert = "/etc/clearway/authority/c.pem", client_key = "/etc/clearway/authority/c.key" }
"#;

#[test]
fn a_port_provisioned_from_its_definition_forms_its_cluster() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let (quic, metrics, lane) = (free_port(true), free_port(false), free_port(false));
    let def = d.join("provtest.toml");
    std::fs::write(
        &def,
        format!(
            "id = \"provtest\"\nname = \"Provisioning test port\"\n\
             [listen]\nquic = {quic}\nmetrics = {metrics}\nlane = {lane}\n\
             [paths]\nconfig_dir = \"/etc/clearway\"\ndata_dir = \"data\"\nkey_dir = \"keys\"\n\
             [raft]\nfsync = false\n\
             [[voter]]\nid = 1\naddr = \"127.0.1.1\"\n\
             [[voter]]\nid = 2\naddr = \"127.0.1.2\"\n\
             [[voter]]\nid = 3\naddr = \"127.0.1.3\"\n\
             [[hall]]\nid = \"passenger\"\nname = \"Passenger Inspection Hall\"\nchannels = 2\n\
             first_node_id = 11\nnode_addr = \"127.0.1.1{{n}}\"\n[hall.lane]\n{LANE}"
        ),
    )
    .expect("definition");

    let ca = d.join("ca");
    assert_eq!(
        node(&["port", "init", "--port", "provtest", "--ca", s(&ca)]).code,
        0
    );

    // Bad input first: an unknown node, a CA of another port, a broken definition.
    let provision = |id: &str, ca: &Path, root: &Path, extra: &[&str]| {
        let mut args = vec!["port", "provision", "--def", s(&def), "--node", id];
        args.extend(["--ca", s(ca), "--root", s(root)]);
        args.extend_from_slice(extra);
        node(&args)
    };
    let unknown = provision("99", &ca, &d.join("x"), &[]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("has no node 99"),
        "{}",
        unknown.stderr
    );
    let other = d.join("other-ca");
    assert_eq!(
        node(&["port", "init", "--port", "other", "--ca", s(&other)]).code,
        0
    );
    let wrong = provision("1", &other, &d.join("x"), &[]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(!d.join("x").exists(), "nothing written on refusal");
    let broken = d.join("broken.toml");
    std::fs::write(&broken, "id = \"provtest\"\nname = 3\n").expect("write");
    let r = node(&["port", "targets", "--def", s(&broken)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);

    let mut children = Vec::new();
    for id in 1..=3 {
        let root = d.join(format!("n{id}"));
        let r = provision(&id.to_string(), &ca, &root, &["--user", "root"]);
        assert_eq!(r.code, 0, "provision {id}: {}", r.stderr);
        let etc = root.join("etc/clearway");
        let key = std::fs::metadata(etc.join("tls/key.pem")).expect("key");
        assert_eq!(key.permissions().mode() & 0o777, 0o640);
        let again = provision(&id.to_string(), &ca, &root, &[]);
        assert_eq!(
            again.code, 2,
            "a provisioned node is not overwritten: {}",
            again.stdout
        );
        let log = std::fs::File::create(d.join(format!("node{id}.log"))).expect("log");
        children.push(Killed(
            Command::new(node_bin())
                .args(["run", "--config", s(&etc.join("node.toml"))])
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("node starts"),
        ));
    }

    let ops = d.join("ops");
    assert_eq!(
        node(&[
            "port",
            "issue",
            "--ca",
            s(&ca),
            "--client",
            "ops",
            "--out",
            s(&ops)
        ])
        .code,
        0
    );
    let nodes = [1, 2, 3].map(|i| format!("{i}=127.0.1.{i}:{quic}"));
    let cluster = |args: &[&str]| {
        let mut all = vec!["--json", "cluster", "--bundle", s(&ops)];
        for n in &nodes {
            all.extend(["--node", n.as_str()]);
        }
        all.extend_from_slice(args);
        node(&all)
    };
    let v1 = d.join("n1/etc/clearway/node.toml");
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let r = cluster(&["init", "--config", s(&v1)]);
        if r.code == 0 {
            break;
        }
        let logs = std::fs::read_to_string(d.join("node1.log")).unwrap_or_default();
        assert!(
            Instant::now() < until,
            "init never succeeded: {}\n{logs}",
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let r = cluster(&["status"]);
        let status: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
        let leaders = status
            .as_array()
            .expect("list")
            .iter()
            .filter(|n| n["state"] == "leader")
            .count();
        if leaders == 1
            && status
                .as_array()
                .expect("list")
                .iter()
                .all(|n| n["voters"] == serde_json::json!([1, 2, 3]))
        {
            break status;
        }
        assert!(
            Instant::now() < until,
            "no settled 3-voter cluster: {status}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let leader = status
        .as_array()
        .expect("list")
        .iter()
        .find(|n| n["state"] == "leader")
        .and_then(|n| n["id"].as_u64())
        .expect("leader id");

    // The leader's /metrics, at the address the definition gave it.
    let metrics_addr: SocketAddr = format!("127.0.1.{leader}:{metrics}").parse().expect("addr");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let text = clearway_tests::http::request(metrics_addr, "GET", "/metrics", &[], b"")
            .map(|r| r.body)
            .unwrap_or_default();
        if text
            .lines()
            .any(|l| l == "clearway_cluster_voters_reachable 3")
        {
            assert!(
                text.lines().any(|l| l == "clearway_cluster_voters 3"),
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "leader {leader} never saw all voters:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Prometheus' target file from the same definition.
    let targets = d.join("targets/provtest.json");
    std::fs::create_dir_all(targets.parent().expect("dir")).expect("mkdir");
    let r = node(&["port", "targets", "--def", s(&def), "--out", s(&targets)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let groups: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&targets).expect("targets")).expect("json");
    let groups = groups.as_array().expect("list");
    assert_eq!(groups.len(), 5, "3 voters, 2 lanes, no console: {groups:?}");
    assert_eq!(groups[0]["targets"][0], format!("127.0.1.1:{metrics}"));
    assert_eq!(groups[4]["labels"]["channel"], "provtest/passenger/2");
    assert_eq!(groups[4]["targets"][0], format!("127.0.1.12:{metrics}"));
}
