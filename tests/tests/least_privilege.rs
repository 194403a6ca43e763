//! Least privilege inside a port, attacked from outside real `clearway-node` processes over real
//! QUIC: a stolen lane appliance's certificate, a console forging its users, an operator forging
//! an actor, a certificate from before roles. Each refusal is checked on the wire, on `/metrics`
//! and in the node's log (which must not carry the personal data involved).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use clearway_gallery::ops::{AuditDraft, GateAction, GateId, Op, OverrideAction};
use clearway_gallery::{
    Authority, Command, ConsentKind, ConsentRecord, DocumentKind, Outcome, PersonId, Registration,
    Registrations, Request,
};
use clearway_node::cluster::ClusterClient;
use clearway_node::cluster::protocol::{Call, MembershipChange, Reply};
use clearway_node::net::tls::Bundle;
use clearway_node::net::{Identity, Role};
use clearway_tests::port::{LocalPort, PORT, Tuning, enrol, leader, random_embedding};
use clearway_wire::Error;
use rand::SeedableRng;

const LONG: Duration = Duration::from_secs(60);
const CHANNEL: &str = "testport/passenger/7";

/// A stolen lane appliance's bundle (its certificate and key), used from another machine.
fn stolen_lane(port: &LocalPort) -> Bundle {
    port.ca
        .issue(
            &Identity::Node(17),
            &Role::Lane {
                channel: CHANNEL.into(),
            },
        )
        .expect("lane bundle")
}

fn client_with(port: &LocalPort, bundle: &Bundle) -> ClusterClient {
    let nodes: BTreeMap<u64, _> = port.addrs.clone().into_iter().collect();
    ClusterClient::new(bundle, nodes).expect("client")
}

/// The error code a call was refused with.
fn refused(result: Result<Reply, Error>) -> String {
    match result {
        Err(Error::Remote { code, message, .. }) => format!("{code}: {message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A lane's registration of `doc` at `channel`: a new traveller, with their face, registered
/// with both authorities and consenting to both, as a lane writes it.
fn registration_at(doc: &str, channel: &str, rng: &mut impl rand::Rng) -> Command {
    let Command::Enrol {
        mut person,
        templates,
    } = enrol(doc, &random_embedding(rng))
    else {
        unreachable!()
    };
    let reg = Registration {
        registered_at: Utc::now(),
        location: channel.into(),
    };
    person.registrations = Registrations {
        macao: Some(reg.clone()),
        mainland: Some(reg),
    };
    person.consents = Authority::ALL
        .iter()
        .map(|&authority| ConsentRecord {
            authority,
            kind: ConsentKind::SmartClearanceRegistration,
            given_at: Utc::now(),
            channel: channel.into(),
        })
        .collect();
    Command::Enrol { person, templates }
}

fn open_gate(actor: &str, role: &str) -> Request {
    Request::V2(vec![
        Op::Audit(AuditDraft {
            actor: actor.into(),
            role: role.into(),
            action: "order.gate_open".into(),
            target: CHANNEL.into(),
            reason: "let my friend through".into(),
            reason_salt: "00".repeat(16),
            at: Utc::now(),
            ops_digest: String::new(),
            signature: None,
        }),
        Op::Order {
            channel: CHANNEL.into(),
            action: OverrideAction::Gate {
                gate: GateId::One,
                action: GateAction::Open,
            },
        },
    ])
}

/// `request`'s audit record completed and signed with `client`'s certificate key.
fn signed(client: &ClusterClient, request: Request) -> Request {
    let Request::V2(mut ops) = request else {
        return request;
    };
    client.sign(&mut ops).expect("sign");
    Request::V2(ops)
}

/// The value of a counter line `name{labels}` on a node's `/metrics`.
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// 3 voters; a stolen lane certificate, a console and an operator against them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_certificate_does_only_what_its_role_allows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut port = LocalPort::new(tmp.path(), 1..=3, Tuning::default());
    let operator = port.bootstrap(&[1, 2, 3], &[]).await;
    let leader_id = leader(&operator, &[1, 2, 3]).await;
    let follower = [1, 2, 3]
        .into_iter()
        .find(|&id| id != leader_id)
        .expect("a follower");
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);

    // A registered traveller the attacker would like to become, or to erase.
    let (_, outcomes) = operator
        .write_audited(
            vec![enrol("VICTIM001", &random_embedding(&mut rng))],
            "enrol",
            "gallery",
            "registered at a service location",
            LONG,
        )
        .await
        .expect("enrol");
    let victim = outcomes[0].person().expect("enrolled");

    // --- A stolen lane appliance --------------------------------------------------------
    let lane = client_with(&port, &stolen_lane(&port));
    let mut refusals = Vec::new();
    for (what, call) in [
        (
            "cancel anyone",
            Call::Write(Request::V1(vec![Command::Cancel { person: victim }])),
        ),
        (
            "put its own face on a registered traveller",
            Call::Write(Request::V1(vec![Command::ReplaceTemplates {
                person: victim,
                templates: vec![clearway_tests::port::template(&random_embedding(&mut rng))],
            }])),
        ),
        (
            "register a traveller at another channel",
            Call::Write(Request::V1(vec![registration_at(
                "OTHER0001",
                "testport/passenger/8",
                &mut rng,
            )])),
        ),
        (
            "open a gate with a forged supervisor",
            Call::Write(open_gate("ana", "supervisor")),
        ),
        (
            "add itself as a voter",
            Call::Membership {
                change: MembershipChange::Promote { id: 17 },
                audit: Request::V2(vec![]),
            },
        ),
        (
            "remove a voter",
            Call::Membership {
                change: MembershipChange::Remove { id: follower },
                audit: Request::V2(vec![]),
            },
        ),
        (
            "read a person by id",
            Call::Person {
                person: victim,
                linearizable: false,
            },
        ),
        (
            "enumerate person records",
            Call::Person {
                person: PersonId(2),
                linearizable: false,
            },
        ),
        (
            "look up a document",
            Call::FindDocument {
                kind: DocumentKind::MainlandTravelPermitHkMacao,
                number: "VICTIM001".into(),
            },
        ),
        (
            "pass itself off as the console through forwarding",
            Call::OnBehalf {
                client: "client-console".into(),
                role: "console".into(),
                call: Box::new(Call::Write(open_gate("ana", "supervisor"))),
            },
        ),
        (
            "send Raft votes",
            Call::Vote(openraft::raft::VoteRequest::new(
                openraft::Vote::new(99, 17),
                None,
            )),
        ),
    ] {
        for node in [leader_id, follower] {
            let why = refused(lane.call(node, &call).await);
            assert!(
                why.starts_with("forbidden: lane may not"),
                "{what} via {node}: {why}"
            );
            refusals.push(what);
        }
    }

    // What a lane may do, it can: register a traveller at its own channel (through any voter).
    let (_, outcomes) = lane
        .write(
            Request::V1(vec![registration_at("NEWCOMER1", CHANNEL, &mut rng)]),
            LONG,
        )
        .await
        .expect("a lane registers at its own channel");
    assert!(matches!(outcomes[0], Outcome::Enrolled(_)), "{outcomes:?}");
    // ... and read status.
    lane.status(follower).await.expect("status");

    // Nothing the lane tried changed anything: the victim is still there, unchanged.
    let entry = operator
        .person(leader_id, victim, true)
        .await
        .expect("read")
        .expect("still registered");
    assert_eq!(entry.document.number, "VICTIM001");
    let ledger = operator.ledger(leader_id).await.expect("ledger");
    assert!(
        ledger.lanes.get(CHANNEL).is_none(),
        "no order reached {CHANNEL}"
    );
    let status = operator.status(leader_id).await.expect("status");
    assert_eq!(status.voters, vec![1, 2, 3]);

    // --- The console: its users are its to vouch for, bound to its certificate ----------
    let console_bundle = port
        .ca
        .issue(&Identity::client("console").expect("name"), &Role::Console)
        .expect("console bundle");
    let console = client_with(&port, &console_bundle);
    // Through a follower: forwarded to the leader with the console's identity attached, its
    // audit record signed with the console's key.
    let reply = console
        .call(
            follower,
            &Call::Write(signed(&console, open_gate("ana@console", "supervisor"))),
        )
        .await
        .expect("the console orders");
    assert!(matches!(reply, Reply::Written { .. }), "{reply:?}");
    // A console cannot claim another console's user, write an unsigned record, or write
    // without an audit record.
    let why = refused(
        console
            .call(
                leader_id,
                &Call::Write(signed(&console, open_gate("ana@elsewhere", "supervisor"))),
            )
            .await,
    );
    assert!(why.starts_with("forbidden"), "{why}");
    let why = refused(
        console
            .call(
                leader_id,
                &Call::Write(open_gate("ana@console", "supervisor")),
            )
            .await,
    );
    assert!(why.contains("not signed"), "{why}");
    let why = refused(
        console
            .call(
                leader_id,
                &Call::Write(Request::V1(vec![Command::Cancel { person: victim }])),
            )
            .await,
    );
    assert!(why.contains("audited V2 batch"), "{why}");

    // --- A voter's stolen certificate cannot write as the console ------------------------
    // It may forward clients' calls, but holds no client's key: a record it makes up in the
    // console's name is unsigned, or signed by itself.
    let voter = client_with(
        &port,
        &port
            .ca
            .issue(&Identity::Node(follower), &Role::Voter)
            .expect("voter bundle"),
    );
    for (what, request) in [
        ("unsigned", open_gate("ana@console", "supervisor")),
        (
            "signed by the voter",
            signed(&voter, open_gate("ana@console", "supervisor")),
        ),
    ] {
        let why = refused(
            voter
                .call(
                    leader_id,
                    &Call::OnBehalf {
                        client: "client-console".into(),
                        role: "console".into(),
                        call: Box::new(Call::Write(request)),
                    },
                )
                .await,
        );
        assert!(why.starts_with("forbidden"), "{what}: {why}");
        assert!(why.contains("signed"), "{what}: {why}");
    }

    // --- An operator forging an actor: refused; its records name its certificate ---------
    let why = refused(
        operator
            .call(
                follower,
                &Call::Write(signed(&operator, open_gate("ana", "port_admin"))),
            )
            .await,
    );
    assert!(why.contains("names its certificate"), "{why}");
    let reply = operator
        .call(
            follower,
            &Call::Write(signed(&operator, open_gate("tests", "operator"))),
        )
        .await
        .expect("the operator orders");
    assert!(matches!(reply, Reply::Written { .. }), "{reply:?}");
    let audit = operator.audit_trail(leader_id).await.expect("audit");
    let actors: Vec<String> = audit
        .iter()
        .map(|r| format!("{} {} ({})", r.entry.action, r.entry.actor, r.entry.role))
        .collect();
    assert_eq!(
        actors,
        vec![
            "enrol tests (operator)",
            "order.gate_open ana@console (supervisor)",
            "order.gate_open tests (operator)",
        ],
        "the lane's registration is not audited as a console change; every other write is"
    );

    // --- Seen on /metrics and in the log, without the personal data ----------------------
    for node in [leader_id, follower] {
        let metrics = port.scrape(node);
        let lane_writes = counter(
            &metrics,
            "clearway_cluster_calls_refused_total{call=\"write\",role=\"lane\"}",
        );
        assert!(lane_writes >= 4.0, "node {node}: {lane_writes}\n{metrics}");
        for call in ["membership", "person", "find_document", "vote"] {
            let series =
                format!("clearway_cluster_calls_refused_total{{call=\"{call}\",role=\"lane\"}}");
            assert!(counter(&metrics, &series) >= 1.0, "node {node}: {series}");
        }
        let log = port.log(node);
        assert!(log.contains("Call refused."), "node {node}");
        for secret in ["VICTIM001", "Traveller VICTIM001", "OTHER0001"] {
            assert!(!log.contains(secret), "node {node}'s log holds {secret}");
        }
    }
    assert_eq!(refusals.len(), 22);
}

/// Person reads are counted and rate-limited per client.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn person_reads_are_rate_limited_and_counted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut port = LocalPort::new(tmp.path(), 1..=1, Tuning::default());
    port.bootstrap(&[1], &[]).await;
    let console_bundle = port
        .ca
        .issue(&Identity::client("console").expect("name"), &Role::Console)
        .expect("console bundle");
    let console = client_with(&port, &console_bundle);
    let mut limited = 0;
    for n in 0..400u64 {
        match console
            .call(
                1,
                &Call::Person {
                    person: PersonId(n + 1),
                    linearizable: false,
                },
            )
            .await
        {
            Ok(Reply::Person(None)) => {}
            Err(Error::Remote { code, .. }) if code == "rate_limited" => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(limited > 0, "enumerating 400 ids in a burst is slowed down");
    let metrics = port.scrape(1);
    assert!(
        counter(
            &metrics,
            "clearway_cluster_person_reads_total{result=\"rate_limited\",role=\"console\"}"
        ) >= limited as f64,
        "{metrics}"
    );
    assert!(
        counter(
            &metrics,
            "clearway_cluster_person_reads_total{result=\"answered\",role=\"console\"}"
        ) >= 100.0
    );
}

/// A node refuses to start with a certificate that names no role, or a role that does not fit
/// its config, and says how to re-issue; a peer presenting such a certificate is turned away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_without_a_role_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut port = LocalPort::new(tmp.path(), 1..=2, Tuning::default());
    port.start(1);
    // Node 2's certificate replaced by one made before roles existed.
    let legacy = legacy_certificate(&port, "node-2");
    std::fs::write(port.node_dir(2).join("tls/cert.pem"), &legacy.0).expect("cert");
    std::fs::write(port.node_dir(2).join("tls/key.pem"), &legacy.1).expect("key");
    let out = std::process::Command::new(clearway_tests::node_bin())
        .args(["run", "--config"])
        .arg(port.node_dir(2).join("node.toml"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("names no role"), "{stderr}");
    assert!(stderr.contains("port issue --ca"), "{stderr}");

    // A lane certificate on a node whose config runs no lane is fine (a replica); a voter
    // certificate on a node that runs a lane is not — see `clearway-node`'s start-up check,
    // exercised by the lane rig. Here: an operator with a role-less certificate is refused at
    // the connection.
    let dir = tmp.path().join("legacy-client");
    std::fs::create_dir_all(&dir).expect("dir");
    let legacy = legacy_certificate(&port, "client-old");
    let bundle = Bundle::from_pem(
        &dir,
        port.ca.cert_pem().to_owned(),
        legacy.0.clone(),
        legacy.1.clone(),
    );
    let err = bundle.expect_err("a role-less bundle does not load");
    assert!(err.to_string().contains("names no role"), "{err}");
}

/// A certificate for `name` signed by the port's CA the way certificates were issued before
/// they carried roles (a DNS name only): (cert PEM, key PEM).
fn legacy_certificate(port: &LocalPort, name: &str) -> (String, String) {
    let ca_key = std::fs::read_to_string(port.dir.join("ca/ca.key")).expect("the port CA's key");
    let ca_key = rcgen::KeyPair::from_pem(&ca_key).expect("CA key");
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Clearway port CA {PORT}"),
    );
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let dns = format!("{name}.{PORT}.clearway");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(vec![dns]).expect("params");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// A stolen lane appliance is revoked by an audited op: every node closes its connections and
/// refuses it from then on, the leader stops replicating to it, and removing it from the
/// cluster needs nothing more. Its replacement, issued a new certificate, joins again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_appliance_is_cut_off() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut port = LocalPort::new(tmp.path(), 1..=2, Tuning::default());
    let lane_role = Role::Lane {
        channel: CHANNEL.into(),
    };
    let tls = port.node_dir(2).join("tls");
    port.ca
        .issue(&Identity::Node(2), &lane_role)
        .expect("lane bundle")
        .save(&tls)
        .expect("save");
    let operator = port.bootstrap(&[1], &[2]).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (index, _) = operator
        .write_audited(
            vec![enrol("BEFORE001", &random_embedding(&mut rng))],
            "enrol",
            "gallery",
            "before the theft",
            LONG,
        )
        .await
        .expect("enrol");
    operator
        .wait_for(2, "catch-up", LONG, |s| {
            s.applied_index.is_some_and(|a| a >= index)
        })
        .await
        .expect("the lane replicates");

    // The thief holds the appliance's certificate and key.
    let stolen = Bundle::load(&tls).expect("the appliance's bundle");
    let thief = client_with(&port, &stolen);
    thief.status(1).await.expect("served before the revocation");

    let revoked_at = operator
        .revoke(&Identity::Node(2), "appliance taken from hall 1", LONG)
        .await
        .expect("revoke");
    // Cut off: its open connection is closed and new ones are refused.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if thief.status(1).await.is_err() {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "still served 5 s after the revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh = client_with(&port, &stolen);
    assert!(
        fresh.status(1).await.is_err(),
        "a new connection is refused"
    );

    // The leader replicates nothing more to it.
    let (after, _) = operator
        .write_audited(
            vec![enrol("AFTER0001", &random_embedding(&mut rng))],
            "enrol",
            "gallery",
            "after the theft",
            LONG,
        )
        .await
        .expect("enrol");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lane = operator
        .status(2)
        .await
        .expect("the appliance itself still answers");
    assert!(
        lane.applied_index.is_some_and(|a| a < after),
        "replicated after revocation (revoked at {revoked_at}): {lane:?}"
    );
    let metrics = port.scrape(1);
    assert_eq!(
        counter(&metrics, "clearway_cluster_revoked_certificates"),
        1.0
    );
    assert!(
        counter(
            &metrics,
            "clearway_cluster_calls_refused_total{call=\"revoked\",role=\"lane\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        port.log(1)
            .contains("Closed the connections of revoked certificates.")
    );

    // Removed from the cluster, audited; the revocation is in the trail too.
    operator
        .change_membership(MembershipChange::Remove { id: 2 }, LONG)
        .await
        .expect("remove");
    let trail: Vec<String> = operator
        .audit_trail(1)
        .await
        .expect("audit")
        .iter()
        .map(|r| {
            format!(
                "{} {} by {} ({})",
                r.entry.action, r.entry.target, r.entry.actor, r.entry.role
            )
        })
        .collect();
    assert_eq!(
        trail,
        vec![
            "membership.add_learner node-2 by tests (operator)",
            "enrol gallery by tests (operator)",
            "revoke node-2 by tests (operator)",
            "enrol gallery by tests (operator)",
            "membership.remove node-2 by tests (operator)",
        ]
    );

    // The replacement appliance: a certificate issued after the revocation, the same node id.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    port.stop(2);
    port.ca
        .issue(&Identity::Node(2), &lane_role)
        .expect("replacement bundle")
        .save(&tls)
        .expect("save");
    port.start(2);
    operator
        .change_membership(
            MembershipChange::AddLearner {
                id: 2,
                addr: port.addrs[&2].to_string(),
            },
            LONG,
        )
        .await
        .expect("the replacement joins");
    operator
        .wait_for(2, "catch-up", LONG, |s| {
            s.applied_index.is_some_and(|a| a >= after)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", port.log(1)));
}

/// Runs `clearway-node run` on node `id`'s config with `env`, for at most `secs`: (exit code,
/// stderr) if it stopped by itself, None if it was still running (then killed).
fn run_node(
    port: &LocalPort,
    id: u64,
    env: &[(&str, &std::path::Path)],
    secs: u64,
) -> Option<(i32, String)> {
    let log = port.node_dir(id).join("run.log");
    let mut cmd = std::process::Command::new(clearway_tests::node_bin());
    cmd.args(["run", "--config"])
        .arg(port.node_dir(id).join("node.toml"))
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if let Some(status) = child.try_wait().expect("wait") {
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            return Some((status.code().unwrap_or(-1), stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Sets `key = value` lines at the top of node `id`'s config (replacing `key_file`).
fn set_keys(port: &LocalPort, id: u64, lines: &str) {
    let file = port.node_dir(id).join("node.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let rest: String = text
        .lines()
        .filter(|l| {
            !l.starts_with("key_file")
                && !l.starts_with("key_encryption_credential")
                && !l.starts_with("allow_key_in_data_dir")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, format!("{lines}{rest}")).expect("write");
}

/// Key custody: no key file in the data directory; key files sealed under a systemd credential
/// are useless without it.
#[test]
fn key_files_stay_out_of_the_data_directory_and_are_sealed_by_a_credential() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = LocalPort::new(tmp.path(), 1..=1, Tuning::default());

    // No key file: refused before anything is written, and told what to do.
    set_keys(&port, 1, "");
    let (code, stderr) = run_node(&port, 1, &[], 30).expect("exits");
    assert_ne!(code, 0);
    assert!(stderr.contains("key_file is not set"), "{stderr}");
    // Inside the data directory: refused, unless a test says so.
    set_keys(&port, 1, "key_file = \"data/node.keyring\"\n");
    let (code, stderr) = run_node(&port, 1, &[], 30).expect("exits");
    assert_ne!(code, 0);
    assert!(stderr.contains("inside the data directory"), "{stderr}");
    assert!(!port.data_dir(1).join("node.keyring").exists());
    set_keys(
        &port,
        1,
        "key_file = \"data/node.keyring\"\nallow_key_in_data_dir = true\n",
    );
    assert!(run_node(&port, 1, &[], 3).is_none(), "a test may");
    assert!(port.data_dir(1).join("node.keyring").exists());
    std::fs::remove_dir_all(port.data_dir(1)).expect("clean");

    // Sealed under the credential systemd would hand it.
    let creds = tmp.path().join("credentials");
    std::fs::create_dir_all(&creds).expect("mkdir");
    std::fs::write(creds.join("clearway-kek"), format!("{}\n", "5a".repeat(32))).expect("kek");
    set_keys(
        &port,
        1,
        "key_file = \"keys/node.keyring\"\nkey_encryption_credential = \"clearway-kek\"\n",
    );
    let env = [("CREDENTIALS_DIRECTORY", creds.as_path())];
    assert!(
        run_node(&port, 1, &env, 3).is_none(),
        "starts with its credential"
    );
    let keyring = port.node_dir(1).join("keys/node.keyring");
    let sealed = std::fs::read_to_string(&keyring).expect("keyring");
    assert!(sealed.starts_with("clearway sealed key v1\n"), "{sealed}");
    assert!(!sealed.contains("clearway keyring v1"));
    // Restarted with it: fine. Without it, or with another: refused, saying why.
    assert!(
        run_node(&port, 1, &env, 3).is_none(),
        "restarts with its credential"
    );
    let (code, stderr) = run_node(&port, 1, &[], 30).expect("exits");
    assert_ne!(code, 0);
    assert!(stderr.contains("CREDENTIALS_DIRECTORY"), "{stderr}");
    let other = tmp.path().join("other-credentials");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("clearway-kek"), "a5".repeat(32)).expect("kek");
    let (code, stderr) =
        run_node(&port, 1, &[("CREDENTIALS_DIRECTORY", other.as_path())], 30).expect("exits");
    assert_ne!(code, 0);
    assert!(
        stderr.contains("cannot be opened with the credential"),
        "{stderr}"
    );
    // The keyring cannot be read without the credential: a copy of the disk is not enough.
    set_keys(&port, 1, "key_file = \"keys/node.keyring\"\n");
    let (code, stderr) = run_node(&port, 1, &[], 30).expect("exits");
    assert_ne!(code, 0);
    assert!(
        stderr.contains("sealed under a key-encryption credential"),
        "{stderr}"
    );
}

/// A stolen lane certificate floods a voter with streams, oversized frames, garbage and extra
/// connections; the port keeps committing writes throughout, and the flood is visible on
/// `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_from_a_valid_certificate_does_not_stop_the_port() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut port = LocalPort::new(tmp.path(), 1..=3, Tuning::default());
    let operator = port.bootstrap(&[1, 2, 3], &[]).await;
    let target = leader(&operator, &[1, 2, 3]).await;
    let addr = port.addrs[&target];
    let stolen = stolen_lane(&port);

    let flood = clearway_tests::flood::Flood::start(&stolen, addr, target);

    // The port keeps committing while the flood lasts.
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let started = std::time::Instant::now();
    let mut committed = 0;
    while started.elapsed() < Duration::from_secs(8) {
        operator
            .write_audited(
                vec![enrol(
                    &format!("FLOOD{committed:04}"),
                    &random_embedding(&mut rng),
                )],
                "enrol",
                "gallery",
                "during a flood",
                LONG,
            )
            .await
            .expect("the port commits under the flood");
        committed += 1;
    }
    let sent = flood.stop().await;
    assert!(committed >= 5, "{committed} writes in 8 s");
    assert!(sent > 1000, "the flood was a flood: {sent} calls");
    let metrics = port.scrape(target);
    assert!(
        counter(
            &metrics,
            "clearway_cluster_calls_refused_total{call=\"too_many_connections\",role=\"lane\"}"
        ) >= 1.0,
        "connections over the cap refused: {metrics}"
    );
    assert!(
        counter(
            &metrics,
            "clearway_cluster_calls_refused_total{call=\"person\",role=\"lane\"}"
        ) >= 1.0
    );
    let status = operator.status(target).await.expect("status");
    assert_eq!(status.voters, vec![1, 2, 3]);
}

/// One node's audit trail truncated on its disk (a consistent, re-hashed prefix: it still
/// verifies on its own) is found by comparing the replicas: `cluster status` fails naming the
/// nodes, and `/metrics` shows the different heads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_audit_trail_rewritten_on_one_disk_is_detected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut port = LocalPort::new(tmp.path(), 1..=3, Tuning::default());
    let operator = port.bootstrap(&[1, 2, 3], &[]).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    for n in 0..3 {
        operator
            .write_audited(
                vec![enrol(&format!("AUDIT{n:04}"), &random_embedding(&mut rng))],
                "enrol",
                "gallery",
                "before the tampering",
                LONG,
            )
            .await
            .expect("enrol");
    }
    let status_args = |port: &LocalPort| {
        let mut args = vec![
            "cluster".to_owned(),
            "--bundle".to_owned(),
            port.dir.join("client").display().to_string(),
        ];
        for (id, addr) in &port.addrs {
            args.push("--node".into());
            args.push(format!("{id}={addr}"));
        }
        args.push("status".into());
        args
    };
    let run_status = |port: &LocalPort| {
        let args = status_args(port);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        clearway_tests::node(&refs)
    };
    // Converged: status succeeds.
    let until = std::time::Instant::now() + LONG;
    loop {
        let r = run_status(&port);
        if r.code == 0 {
            break;
        }
        assert!(std::time::Instant::now() < until, "{}", r.stderr);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Node 3 stopped; its newest audit record removed from its disk.
    assert!(port.stop(3));
    {
        let db = sled::open(port.data_dir(3).join("db")).expect("node 3's database");
        let audit = db.open_tree("sm_audit").expect("audit tree");
        let (last, _) = audit.last().expect("read").expect("a record");
        audit.remove(last).expect("remove");
        db.flush().expect("flush");
    }
    port.start(3);
    let (index, _) = operator
        .write_audited(
            vec![enrol("AUDIT9999", &random_embedding(&mut rng))],
            "enrol",
            "gallery",
            "after the tampering",
            LONG,
        )
        .await
        .expect("enrol");
    for id in [1, 2, 3] {
        operator
            .wait_for(id, "catch-up", LONG, |s| {
                s.applied_index.is_some_and(|a| a >= index)
            })
            .await
            .expect("applied");
    }
    let until = std::time::Instant::now() + LONG;
    let r = loop {
        let r = run_status(&port);
        if r.code != 0 {
            break r;
        }
        assert!(
            std::time::Instant::now() < until,
            "never detected: {}",
            r.stdout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(r.stderr.contains("audit trails diverge"), "{}", r.stderr);
    assert!(r.stderr.contains("node 3"), "{}", r.stderr);
    let records = |id| counter(&port.scrape(id), "clearway_audit_records");
    assert_eq!(records(1), records(2));
    assert_eq!(records(3), records(1) - 1.0);
    let head = |id| counter(&port.scrape(id), "clearway_audit_head_prefix");
    assert_eq!(head(1), head(2));
    assert_ne!(head(3), head(1));
}

/// A node with disk access rewrites history on every replica alike (so no replica differs) and
/// re-hashes the chain after its change: the clients' signatures still give it away, in
/// `cluster audit` and on the console's audit page.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_audit_trail_rewritten_alike_on_every_disk_is_caught_by_the_signatures() {
    use clearway_gallery::ops::AuditRecord;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut port = LocalPort::new(tmp.path(), 1..=3, Tuning::default());
    let operator = port.bootstrap(&[1, 2, 3], &[]).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let mut last = 0;
    for n in 0..3 {
        let (index, _) = operator
            .write_audited(
                vec![enrol(&format!("SIGNED{n:03}"), &random_embedding(&mut rng))],
                "enrol",
                "gallery",
                "before the rewriting",
                LONG,
            )
            .await
            .expect("enrol");
        last = index;
    }
    for id in [1, 2, 3] {
        operator
            .wait_for(id, "applied", LONG, |s| {
                s.applied_index.is_some_and(|a| a >= last)
            })
            .await
            .expect("applied");
    }
    let cluster_args = |port: &LocalPort, command: &str| {
        let mut args = vec![
            "cluster".to_owned(),
            "--bundle".to_owned(),
            port.dir.join("client").display().to_string(),
        ];
        for (id, addr) in &port.addrs {
            args.push("--node".into());
            args.push(format!("{id}={addr}"));
        }
        args.push(command.into());
        args
    };
    let cli = |port: &LocalPort, command: &str| {
        let args = cluster_args(port, command);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        clearway_tests::node(&refs)
    };
    let before = cli(&port, "audit");
    assert_eq!(before.code, 0, "{}{}", before.stdout, before.stderr);
    assert!(
        before.stdout.contains("records verified, signed by"),
        "{}",
        before.stdout
    );

    // Every node stopped; on each disk the first enrolment's record is made to say something
    // else, and the chain after it re-hashed, the same way on all three.
    for id in [1, 2, 3] {
        assert!(port.stop(id));
    }
    let mut first_enrolment = 0;
    for id in [1, 2, 3] {
        let db = sled::open(port.data_dir(id).join("db")).expect("database");
        let audit = db.open_tree("sm_audit").expect("audit tree");
        let mut records: Vec<AuditRecord> = audit
            .iter()
            .map(|kv| postcard::from_bytes(&kv.expect("read").1).expect("record"))
            .collect();
        let at = records
            .iter()
            .position(|r| r.entry.action == "enrol")
            .expect("an enrolment record");
        first_enrolment = at;
        records[at].entry.action = "gallery.test_data".into();
        for n in at..records.len() {
            let prev = if n == 0 {
                clearway_gallery::ops::GENESIS.to_string()
            } else {
                records[n - 1].hash.clone()
            };
            records[n].prev = prev;
            records[n].hash = AuditRecord::compute_hash(
                records[n].seq,
                records[n].index,
                &records[n].prev,
                &records[n].entry,
            );
        }
        for r in &records {
            audit
                .insert(r.seq.to_be_bytes(), postcard::to_stdvec(r).expect("encode"))
                .expect("write");
        }
        db.flush().expect("flush");
    }
    for id in [1, 2, 3] {
        port.start(id);
    }
    // The replicas agree with each other, and each chain hashes through ...
    let until = std::time::Instant::now() + LONG;
    loop {
        let r = cli(&port, "status");
        if r.code == 0 {
            break;
        }
        assert!(std::time::Instant::now() < until, "{}", r.stderr);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // ... but the rewritten record no longer carries its operator's signature.
    let after = cli(&port, "audit");
    assert_ne!(after.code, 0, "{}", after.stdout);
    assert!(
        after.stderr.contains("audit trail does not verify"),
        "{}",
        after.stderr
    );
    for id in [1, 2, 3] {
        assert!(
            after.stdout.contains(&format!(
                "node {id}: BROKEN at record {first_enrolment}: the signature does not match the record"
            )),
            "{}",
            after.stdout
        );
    }
}
