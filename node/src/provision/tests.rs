use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;
use crate::cluster::NodeConfig;
use crate::cluster::config::Role;
use crate::net::Identity;
use crate::net::tls::{Bundle, PortCa};
use clearway_gallery::Authority;

fn hengqin_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ports/hengqin.toml")
}

fn hengqin() -> PortDefinition {
    definition::from_file(&hengqin_path()).expect("the shipped Hengqin definition is valid")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

#[test]
fn the_hengqin_definition_places_every_node() {
    let def = hengqin();
    let nodes = def.nodes().expect("nodes");
    assert_eq!(nodes.len(), 3 + 48 + 16);
    let voters: Vec<_> = nodes
        .iter()
        .filter(|n| n.role == Role::Voter)
        .map(|n| n.id)
        .collect();
    assert_eq!(voters, [1, 2, 3]);

    let v1 = def.node_config(1).expect("voter 1");
    assert_eq!(v1.listen, addr("10.1.0.11:7400"));
    assert_eq!(v1.metrics_listen, Some(addr("10.1.0.11:9400")));
    assert_eq!(v1.role, Role::Voter);
    assert!(v1.lane.is_none());
    let peers: Vec<_> = v1
        .peers
        .iter()
        .map(|p| (p.id, p.addr.as_str(), p.role))
        .collect();
    assert_eq!(
        peers,
        [
            (2, "10.1.0.12:7400", Role::Voter),
            (3, "10.1.0.13:7400", Role::Voter)
        ]
    );

    for (id, channel, node_addr, camera, gates) in [
        (
            101,
            "hengqin/passenger/1",
            "10.1.1.1",
            "rtsp://10.11.1.21:554/stream1",
            "10.11.1.30:802",
        ),
        (
            148,
            "hengqin/passenger/48",
            "10.1.1.48",
            "rtsp://10.11.48.21:554/stream1",
            "10.11.48.30:802",
        ),
        (
            201,
            "hengqin/onboard/1",
            "10.1.2.1",
            "rtsp://10.12.1.21:554/stream1",
            "10.12.1.30:802",
        ),
        (
            216,
            "hengqin/onboard/16",
            "10.1.2.16",
            "rtsp://10.12.16.21:554/stream1",
            "10.12.16.30:802",
        ),
    ] {
        let c = def.node_config(id).expect("lane node");
        assert_eq!(c.role, Role::Learner, "{id}");
        assert_eq!(c.listen, addr(&format!("{node_addr}:7400")), "{id}");
        assert_eq!(c.peers.len(), 3, "{id}: the voters");
        let lane = c.lane.expect("a lane section");
        assert_eq!(lane.procedure.channel, channel);
        assert_eq!(lane.procedure.utc_offset_minutes, 480);
        assert_eq!(
            lane.listen,
            addr("127.0.0.1:7600"),
            "the gate screens' API on the appliance only"
        );
        assert_eq!(lane.camera_gate1.source, camera);
        assert_eq!(lane.gates.address, addr(gates));
        // Modbus/TCP Security, on by default in the shipped definition.
        let tls = lane.gates.tls.expect("the gate link over mutual TLS");
        assert_eq!(tls.ca_cert, Path::new("/etc/clearway/gates/ca.pem"));
    }
    assert!(def.node(217).is_err(), "no channel 17 in the on-board hall");
}

#[test]
fn the_shipped_target_file_is_the_generated_one() {
    // `UPDATE_EXPECT=1 cargo test -p clearway-node provision` rewrites it after a change to the
    // definition.
    expect_test::expect_file!["../../../deploy/prometheus/targets/hengqin.json"]
        .assert_eq(&hengqin().targets().expect("targets"));
    let parsed: serde_json::Value =
        serde_json::from_str(&hengqin().targets().expect("targets")).expect("valid JSON");
    let groups = parsed.as_array().expect("a list of groups");
    assert_eq!(groups.len(), 67 + 1);
    assert_eq!(
        groups[3]["labels"],
        serde_json::json!({"port": "hengqin", "role": "node", "member": "learner", "node": "101",
                           "hall": "passenger", "channel": "hengqin/passenger/1"})
    );
    assert_eq!(groups[67]["labels"], serde_json::json!({"role": "console"}));
}

#[test]
fn bad_definitions_are_refused_with_a_reason() {
    let good = std::fs::read_to_string(hengqin_path()).expect("read");
    definition::parse(&good).expect("the original parses");
    for (from, to, needle) in [
        ("id = \"hengqin\"", "id = \"Heng Qin\"", "lowercase"),
        (
            "id = \"hengqin\"",
            "id = \"hengqin\"\nbogus = 1",
            "unknown field",
        ),
        (
            "id = 2\naddr = \"10.1.0.12\"",
            "id = 1\naddr = \"10.1.0.12\"",
            "node id 1 is used twice",
        ),
        (
            "addr = \"10.1.0.13\"",
            "addr = \"10.1.0.12\"",
            "address 10.1.0.12 is used by two nodes",
        ),
        (
            "addr = \"10.1.0.13\"",
            "addr = \"10.1.0\"",
            "invalid IP address",
        ),
        (
            "first_node_id = 201",
            "first_node_id = 140",
            "node id 140 is used twice",
        ),
        (
            "node_addr = \"10.1.2.{n}\"",
            "node_addr = \"10.1.2.7\"",
            "is used by two nodes",
        ),
        (
            "node_addr = \"10.1.2.{n}\"",
            "node_addr = \"10.1.2.{n}00\"",
            "is not an IP address",
        ),
        ("channels = 16", "channels = 0", "channels must be"),
        ("id = \"onboard\"", "id = \"passenger\"", "repeated"),
        ("lane = 7600", "lane = 7400", "three different ports"),
        (
            "console = \"10.1.0.20:9480\"",
            "console = \"10.1.0.20\"",
            "HOST:PORT",
        ),
        (
            "source = \"rtsp://10.12.{n}.21:554/stream1\"",
            "source = \"ftp://10.12.{n}.21/stream1\"",
            "hall onboard channel 1: [hall.lane] [lane.camera_gate1]",
        ),
        (
            "gates = { address = \"10.12.{n}.30:802\", tls = { ca_cert = \"/etc/clearway/gates/ca.pem\", client_cert = \"/etc/clearway/gates/lane-client.pem\", client_key = \"/etc/clearway/gates/lane-client.key\" } }",
            "gates = { address = \"10.12.{n}.30:802\", tls = { ca_cert = \"/etc/clearway/gates/ca.pem\", client_cert = \"/etc/clearway/gates/lane-client.pem\", client_key = \"/etc/clearway/gates/lane-client.key\" } }\nlisten = \"1.2.3.4:5\"",
            "must not set listen",
        ),
        (
            "gates = { address = \"10.12.{n}.30:802\", tls = { ca_cert = \"/etc/clearway/gates/ca.pem\", client_cert = \"/etc/clearway/gates/lane-client.pem\", client_key = \"/etc/clearway/gates/lane-client.key\" } }",
            "gates = { address = \"10.12.{n}.30:802\", tls = { ca_cert = \"/etc/clearway/gates/ca.pem\", client_cert = \"/etc/clearway/gates/lane-client.pem\", client_key = \"/etc/clearway/gates/lane-client.key\" } }\nprocedure = { channel = \"x\" }",
            "must not set procedure.channel",
        ),
        (
            "gates = { address = \"10.12.{n}.30:802\", tls = { ca_cert = \"/etc/clearway/gates/ca.pem\", client_cert = \"/etc/clearway/gates/lane-client.pem\", client_key = \"/etc/clearway/gates/lane-client.key\" } }",
            "gates = { address = \"10.12.{n}.30:802\", tls = { ca_cert = \"/etc/clearway/gates/ca.pem\", client_cert = \"/etc/clearway/gates/lane-client.pem\", client_key = \"/etc/clearway/gates/lane-client.key\" } }\nprocedure = { verify_threshold = 7.0 }",
            "verify_threshold",
        ),
        (
            "base_url = \"https://inspection.macao.example:8443\"",
            "base_url = \"http://inspection.macao.example\"",
            "[lane.macao]",
        ),
        (
            "gates = { address = \"10.11.{n}.30:802\", tls = { ca_cert = \"/etc/clearway/gates/ca.pem\", client_cert = \"/etc/clearway/gates/lane-client.pem\", client_key = \"/etc/clearway/gates/lane-client.key\" } }\n",
            "",
            "missing field `gates`",
        ),
    ] {
        assert!(good.contains(from), "{from:?} is in the definition");
        let text = good.replacen(from, to, 1);
        let err = definition::parse(&text).expect_err(to);
        assert!(err.contains(needle), "{to:?}: {err}");
    }
    let mut no_voters = good.clone();
    for v in [
        "[[voter]]\nid = 1\naddr = \"10.1.0.11\"",
        "[[voter]]\nid = 2\naddr = \"10.1.0.12\"",
        "[[voter]]\nid = 3\naddr = \"10.1.0.13\"",
    ] {
        no_voters = no_voters.replacen(v, "", 1);
    }
    let err = definition::parse(&no_voters).expect_err("no voters");
    assert!(err.contains("[[voter]]"), "{err}");
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

#[test]
fn provisioning_lays_down_a_node_with_owners_and_modes() {
    let def = hengqin();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let ca = PortCa::create("hengqin").expect("ca");
    // The files' owner must be someone this test may chown to: itself.
    let me = std::fs::metadata(tmp.path()).expect("metadata");
    let account = Account {
        name: "clearway".into(),
        uid: me.uid(),
        gid: me.gid(),
    };

    let lane = provision(
        &def,
        101,
        &Credentials::Ca(ca.clone()),
        &root,
        Some(&account),
        false,
    )
    .expect("provision lane 101");
    assert_eq!(lane.node_toml, root.join("etc/clearway/node.toml"));
    assert_eq!(mode(&lane.node_toml), 0o640);
    assert_eq!(mode(&lane.tls_dir), 0o750);
    assert_eq!(mode(&lane.tls_dir.join("key.pem")), 0o640);
    assert_eq!(mode(&lane.tls_dir.join("cert.pem")), 0o644);
    assert_eq!(mode(&lane.data_dir), 0o700);
    assert_eq!(lane.data_dir, root.join("var/lib/clearway"));
    assert_eq!(
        std::fs::metadata(&lane.data_dir).expect("meta").uid(),
        account.uid
    );
    // The written config is what the node reads, with the paths it will have on the appliance.
    let written = NodeConfig::from_file(&lane.node_toml).expect("node.toml loads");
    assert_eq!(written.tls_dir, lane.tls_dir);
    assert_eq!(lane.tls_dir, root.join("etc/clearway/tls"));
    assert_eq!(written.data_dir, PathBuf::from("/var/lib/clearway"));
    let mut expected = def.node_config(101).expect("config");
    expected.tls_dir = written.tls_dir.clone();
    assert_eq!(
        toml::to_string(&written).expect("toml"),
        toml::to_string(&expected).expect("toml")
    );
    let bundle = Bundle::load(&written.tls_dir).expect("the bundle loads");
    assert_eq!(bundle.identity, Identity::Node(101));
    assert_eq!(bundle.port, "hengqin");
    // The authorities' certificates, the gate network's and the issuers' CSCAs are the
    // operator's to bring.
    assert_eq!(lane.missing.len(), 10, "{:?}", lane.missing);
    for p in [
        "/etc/clearway/authority/macao-client.key",
        "/etc/clearway/gates/lane-client.key",
        "/etc/clearway/documents/csca.pem",
    ] {
        assert!(lane.missing.contains(&PathBuf::from(p)), "{p}");
    }

    // Not again without --force, and nothing changed by the refusal.
    let key = std::fs::read(lane.tls_dir.join("key.pem")).expect("key");
    std::fs::write(lane.data_dir.join("db-marker"), b"data").expect("marker");
    let err = provision(&def, 101, &Credentials::Ca(ca.clone()), &root, None, false)
        .expect_err("already provisioned")
        .to_string();
    assert!(err.contains("provisioned already"), "{err}");
    assert_eq!(
        std::fs::read(lane.tls_dir.join("key.pem")).expect("key"),
        key
    );
    // --force renews the certificate and keeps the data.
    provision(&def, 101, &Credentials::Ca(ca.clone()), &root, None, true).expect("renewal");
    assert_ne!(
        std::fs::read(lane.tls_dir.join("key.pem")).expect("key"),
        key
    );
    assert_eq!(
        std::fs::read(lane.data_dir.join("db-marker")).expect("marker"),
        b"data"
    );

    // A voter from a bundle issued elsewhere; it needs nothing more.
    let voter_root = tmp.path().join("voter");
    let issued = ca
        .issue(&Identity::Node(2), &crate::net::Role::Voter)
        .expect("issue");
    let voter = provision(
        &def,
        2,
        &Credentials::Bundle(issued.clone()),
        &voter_root,
        None,
        false,
    )
    .expect("provision voter 2");
    assert!(voter.missing.is_empty());
    let c = NodeConfig::from_file(&voter.node_toml).expect("loads");
    assert_eq!(c.role, Role::Voter);

    // Wrong credentials are refused before anything is written.
    let other = tmp.path().join("other");
    for (id, creds, needle) in [
        (3, Credentials::Bundle(issued), "not node 3"),
        (
            3,
            Credentials::Ca(PortCa::create("zhuhai").expect("ca")),
            "port zhuhai's",
        ),
        (999, Credentials::Ca(ca), "has no node 999"),
    ] {
        let err = provision(&def, id, &creds, &other, None, false)
            .expect_err(needle)
            .to_string();
        assert!(err.contains(needle), "{err}");
        assert!(!other.exists(), "{needle}: nothing written");
    }
}

#[test]
fn accounts_are_read_from_passwd() {
    let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                  clearway:x:998:997::/var/lib/clearway:/usr/sbin/nologin\n\
                  broken:x:abc:1::/:/bin/false\n";
    assert_eq!(
        Account::find(passwd, "clearway"),
        Some(Account {
            name: "clearway".into(),
            uid: 998,
            gid: 997
        })
    );
    assert_eq!(Account::find(passwd, "broken"), None);
    assert_eq!(Account::find(passwd, "clear"), None);
    assert_eq!(Account::lookup("root").expect("root exists").uid, 0);
    assert!(Account::lookup("no-such-user-here").is_err());
}

fn shipped(name: &str) -> PortDefinition {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../deploy/ports/{name}.toml"));
    definition::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every port its own rules: Hengqin's joint inspection with seed 000's prerequisites and its
/// planned halls, and two of seed 001's ports with one inspecting authority.
#[test]
fn each_shipped_port_carries_its_authorities_policy_and_directions() {
    let hengqin = hengqin();
    let lane = |def: &PortDefinition, id| def.node_config(id).expect("node").lane.expect("lane");
    let p = lane(&hengqin, 101).procedure;
    assert_eq!(p.authorities, [Authority::Macao, Authority::Mainland]);
    assert!(p.prerequisites);
    assert_eq!(p.direction, "Macao → Hengqin");
    assert_eq!(lane(&hengqin, 148).procedure.direction, "Hengqin → Macao");
    assert_eq!(lane(&hengqin, 216).procedure.direction, "Hengqin → Macao");
    // The 46 planned channels are in the plan, not in the cluster.
    let planned: u32 = hengqin
        .halls
        .iter()
        .filter(|h| h.planned)
        .map(|h| h.channels)
        .sum();
    assert_eq!(planned, 46);
    assert!(hengqin.node(301).is_err() && hengqin.node(401).is_err());

    assert_eq!(p.destination, crate::lane::procedure::EndorsementFor::Macao);
    for (name, first, direction, destination) in [
        (
            "shanghai-hongqiao",
            101,
            "Shanghai → Hong Kong, Macao, Taiwan",
            crate::lane::procedure::EndorsementFor::Any,
        ),
        (
            "shenzhen-luohu",
            140,
            "Shenzhen → Hong Kong",
            crate::lane::procedure::EndorsementFor::HongKong,
        ),
    ] {
        let def = shipped(name);
        let lane = lane(&def, first);
        assert_eq!(lane.procedure.destination, destination, "{name}");
        assert_eq!(lane.procedure.authorities, [Authority::Mainland], "{name}");
        assert!(!lane.procedure.prerequisites, "{name}");
        assert_eq!(lane.procedure.direction, direction, "{name}");
        assert!(lane.macao.is_none() && lane.mainland.is_some(), "{name}");
        def.targets().expect("targets");
    }

    // A lane section that names an authority the port does not inspect with, or lacks one it
    // does, is refused; so are a bad policy and a bad direction range.
    let text = std::fs::read_to_string(hengqin_path()).expect("read");
    let one = text.replace(
        "authorities = [\"macao\", \"mainland\"]",
        "authorities = [\"mainland\"]",
    );
    let e = definition::parse(&one).expect_err("macao given but not inspecting");
    assert!(e.contains("does not inspect"), "{e}");
    let airport = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ports/shanghai-hongqiao.toml"),
    )
    .expect("read");
    let e = definition::parse(&airport.replace("[\"mainland\"]", "[\"mainland\", \"macao\"]"))
        .expect_err("macao inspects but has no config");
    assert!(e.contains("is required"), "{e}");
    let e = definition::parse(&airport.replace("[\"mainland\"]", "[]")).expect_err("none");
    assert!(e.contains("[policy]"), "{e}");
    let e = definition::parse(&text.replace("\"25-48\"", "\"25-49\"")).expect_err("range");
    assert!(e.contains("channel_directions"), "{e}");
    // A planned hall's lane section is checked too, though the hall has no nodes yet.
    let planned_camera = "rtsp://10.13.{n}.21:554/stream1\", width = 1280";
    assert!(text.contains(planned_camera));
    let e = definition::parse(&text.replace(
        planned_camera,
        "rtsp://10.13.{n}.21:554/stream1\", width = 0",
    ))
    .expect_err("a planned hall's camera of no width");
    assert!(e.contains("departure"), "{e}");
    for procedure_key in [
        "authorities = [\"macao\"]",
        "direction = \"x\"",
        "prerequisites = false",
    ] {
        let bad = text.replacen(
            "[hall.lane]\n",
            &format!("[hall.lane]\nprocedure = {{ {procedure_key} }}\n"),
            1,
        );
        let e = definition::parse(&bad).expect_err(procedure_key);
        assert!(e.contains("the definition does"), "{procedure_key}: {e}");
    }
}
