//! The supervisor console end to end, in a real browser: Debian's headless Chromium driven by
//! Playwright (`tests/browser/console.e2e.mjs`), against a real `clearway-console` process and a
//! real local port (a voter and a lane node whose cameras are RTSP streams of real photos, with
//! the Modbus gate simulator and the other device simulators).
//!
//! The script logs in (a wrong password first), watches the hall grid change live while a
//! traveller walks through, locks and unlocks gate 1 of the lane (this test checks the gate
//! controller's registers), is refused an override as a service-desk officer, cancels a
//! registration (this test then shows that traveller's face to the lane, which no longer knows
//! it), records a guardian's consent, checks the audit chain, creates a port and generates a node
//! bundle (this test starts an appliance from it) and watches it join, and tries bad input:
//! a missing CSRF token, an oversized form, an unknown lane, an expired session. Screenshots of
//! every page are saved under `<target>/test-output/console/`.
//!
//! Then a real Prometheus (Debian's) with the shipped `deploy/prometheus` config scrapes the
//! voter, the lane and the console through a file-SD target file: every target is up and the
//! key series are there; each `/metrics` also passes `promtool check metrics`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use clearway_gallery::{Command, DocumentKind};
use clearway_node::lane::camera::sim::Scene;
use clearway_node::lane::procedure::{GateId, GateState};
use clearway_tests::console::{
    Browser, ConsoleRig, SESSION_IDLE_S, USERS, console_rig, screenshot_dir,
};
use clearway_tests::lane;
use clearway_tests::lane::{registered_macao_adult, wait_lane_api};
use clearway_tests::photo;
use clearway_tests::port::PORT;
use clearway_tests::prometheus::{Prometheus, Target, promtool_check_metrics};

/// Waits for `done` to hold, up to `within`.
async fn wait_until(within: Duration, what: &str, done: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("{what} did not happen within {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn supervisors_run_the_port_from_the_console_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = console_rig(dir.path()).await;
    let client = c.rig.port.client();
    let obama = c.rig.template("face_recognition/obama.jpg");
    client
        .write_audited(
            vec![Command::Enrol {
                person: registered_macao_adult("M10000001", "OBAMA, BARACK"),
                templates: vec![obama],
            }],
            "enrol",
            "gallery",
            "seeding the test registry",
            Duration::from_secs(20),
        )
        .await
        .expect("enrol");
    wait_lane_api(&c.rig).await;
    c.rig.show(Scene::Empty);

    let shots = screenshot_dir("console");
    let new_node = clearway_tests::port::free_addr().expect("free loopback port");
    let mut env = BTreeMap::new();
    env.insert("CONSOLE_URL".to_string(), c.url.clone());
    env.insert("SHOTS".into(), shots.display().to_string());
    env.insert("PORT_ID".into(), PORT.into());
    env.insert("CHANNEL".into(), c.rig.lane.channel.clone());
    env.insert("SESSION_IDLE_S".into(), SESSION_IDLE_S.to_string());
    env.insert("NEW_NODE_ADDR".into(), new_node.to_string());
    // The new appliance's own directory: its key is made and stays here.
    let appliance = c.dir.join("appliance");
    env.insert("APPLIANCE_DIR".into(), appliance.display().to_string());
    env.insert("TODAY".into(), Utc::now().date_naive().to_string());
    for (name, _, password) in USERS {
        env.insert(format!("PASSWORD_{}", name.to_uppercase()), password.into());
    }
    let mut browser = Browser::start("console.e2e.mjs", &env);
    while let Some((name, arg)) = browser.checkpoint(Duration::from_secs(180)).await {
        let result = match name.as_str() {
            // The hall grid is open: a registered traveller steps up to gate 1.
            "walk" => {
                c.rig
                    .show(Scene::Photo(photo("face_recognition/obama2.jpg")));
                Ok(())
            }
            // The page showed the admission live: the traveller walks on through.
            "walked" => {
                c.rig.walk_through().await;
                c.rig.show(Scene::Empty);
                Ok(())
            }
            // Gate 1 is locked at the controller; a traveller presents a card and is turned
            // away, which raises an alarm the page must show.
            "gate1-locked" => {
                let gates = &c.rig.lane.gates;
                let locked = wait_until(
                    Duration::from_secs(10),
                    "gate 1 locked at the controller",
                    || gates.state(GateId::One) == GateState::Locked,
                )
                .await;
                if locked.is_ok() {
                    c.rig.present(
                        DocumentKind::MainlandTravelPermitHkMacao,
                        "H30000004",
                        "BIDEN, JOSEPH",
                        "1962-11-20",
                        "2031-06-30",
                    );
                }
                locked
            }
            "gate1-unlocked" => {
                let gates = &c.rig.lane.gates;
                wait_until(
                    Duration::from_secs(10),
                    "gate 1 unlocked at the controller",
                    || gates.state(GateId::One) != GateState::Locked,
                )
                .await
            }
            // Two people step between the gates together: the lane holds the channel.
            "hold" => {
                c.rig.lane.gates.set_occupancy(2);
                Ok(())
            }
            // The second one went back: the officer may release the channel.
            "separated" => {
                c.rig.lane.gates.set_occupancy(0);
                Ok(())
            }
            // The registration was cancelled from the service desk: the lane must not know the
            // face any more.
            "registration-cancelled" => {
                c.rig
                    .show(Scene::Photo(photo("face_recognition/obama2.jpg")));
                c.rig
                    .wait_screen("not_recognised", Duration::from_secs(30))
                    .await;
                c.rig.show(Scene::Empty);
                Ok(())
            }
            // A second cancellation of the same person written straight to the port (as an
            // operator's would be): it reaches the log and is refused when it applies.
            "cancel-again" => match arg.parse::<clearway_gallery::PersonId>() {
                Ok(person) => match c
                    .rig
                    .port
                    .client()
                    .write_audited(
                        vec![clearway_gallery::Command::Cancel { person }],
                        "cancel",
                        &person.to_string(),
                        "asked twice by mistake",
                        Duration::from_secs(20),
                    )
                    .await
                {
                    Ok((_, outcomes)) if outcomes.iter().any(|o| matches!(o, clearway_gallery::Outcome::Refused { code, .. } if code == "unknown_person")) => Ok(()),
                    other => Err(format!("the second cancellation: {other:?}")),
                },
                Err(e) => Err(format!("{arg}: {e}")),
            },
            // On the new appliance: its key pair and a signing request for the port's CA.
            "csr" => {
                let r = clearway_tests::node(&[
                    "port",
                    "csr",
                    "--port",
                    &arg,
                    "--node",
                    "1",
                    "--out",
                    &appliance.join("tls").display().to_string(),
                ]);
                if r.code == 0 {
                    Ok(())
                } else {
                    Err(format!("port csr: {}", r.stderr))
                }
            }
            // The console signed the request: its certificate, the CA's and node.toml go beside
            // the appliance's key (which never left it); power the appliance on.
            "bundle" => {
                let bundle = Path::new(&arg);
                let copy = |from: &str| {
                    std::fs::copy(bundle.join(from), appliance.join(from))
                        .map(|_| ())
                        .map_err(|e| format!("{arg}/{from}: {e}"))
                };
                let result = if bundle.join("tls/key.pem").exists() {
                    Err(format!("{arg} holds a private key: the console made one"))
                } else {
                    copy("node.toml")
                        .and_then(|()| copy("tls/cert.pem"))
                        .and_then(|()| copy("tls/ca.pem"))
                };
                result.map(|()| c.start_appliance(&appliance))
            }
            other => Err(format!("unknown checkpoint {other}")),
        };
        if let Err(why) = &result {
            eprintln!(
                "checkpoint {name} failed: {why}\nconsole log:\n{}",
                c.console_log()
            );
        }
        browser.answer(result).await;
    }
    browser.finish().await;
    println!("screenshots: {}", shots.display());
    let pngs = std::fs::read_dir(&shots)
        .expect("screenshot dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
        })
        .count();
    assert!(pngs >= 8, "only {pngs} screenshots in {}", shots.display());

    prometheus_scrapes_the_port(&c);
}

/// A real Prometheus with the shipped scrape config scrapes the voter, the lane and the console
/// through a file-SD target file; every target is up and the key series are there. Each
/// scrape also passes `promtool check metrics`.
fn prometheus_scrapes_the_port(c: &ConsoleRig) {
    // Not on the supervisors' address (HTTPS): only on the metrics listener.
    let on_console = c
        .https
        .request("GET", "/metrics", &[], &[])
        .expect("the console answers over HTTPS");
    assert_ne!(
        on_console.status, 200,
        "/metrics on the console's own address"
    );
    assert!(
        !on_console.body.contains("clearway_console_"),
        "{}",
        on_console.body
    );
    let body = |http: String| {
        http.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    };
    let scrapes = [
        ("voter", body(c.rig.port.scrape(1))),
        ("lane", body(c.rig.port.scrape(2))),
        ("console", lane::http(c.metrics, "GET", "/metrics").1),
    ];
    for (who, text) in &scrapes {
        if let Err(why) = promtool_check_metrics(text) {
            panic!("promtool check metrics on the {who}'s /metrics:\n{why}");
        }
    }
    let node = |id: u64, member: &str| Target {
        addr: c.rig.port.metrics[&id],
        labels: vec![
            ("port", PORT.to_string()),
            ("role", "node".into()),
            ("member", member.into()),
            ("node", id.to_string()),
        ],
    };
    let mut lane_target = node(2, "learner");
    lane_target.labels.extend([
        ("hall", "passenger".to_string()),
        ("channel", c.rig.lane.channel.clone()),
    ]);
    let targets = [
        node(1, "voter"),
        lane_target,
        Target {
            addr: c.metrics,
            labels: vec![("role", "console".into())],
        },
    ];
    let dir = c.dir.join("prometheus");
    let prom = Prometheus::start(&dir, PORT, &targets);
    let up = prom.wait(Duration::from_secs(90), "every target up", |p| {
        let ts = p.targets()?;
        let jobs: Vec<&str> = ts.iter().map(|(_, j, _)| j.as_str()).collect();
        if ts.len() == 3 && ts.iter().all(|(_, _, h)| h == "up") {
            Ok(jobs.iter().map(|j| j.to_string()).collect::<Vec<_>>())
        } else {
            Err(format!("targets: {ts:?}"))
        }
    });
    let mut jobs = up;
    jobs.sort();
    assert_eq!(
        jobs,
        ["clearway-console", "clearway-lanes", "clearway-voters"]
    );
    let series = [
        "up{job=\"clearway-lanes\",channel=\"testport/passenger/1\"}",
        "clearway_cluster_state{state=\"leader\",node=\"1\"}",
        "clearway_cluster_applied_index{member=\"learner\"}",
        "clearway_cluster_staleness_seconds{node=\"2\"}",
        "clearway_certificate_expiry_timestamp_seconds{certificate=\"port_ca\"}",
        "clearway_certificate_expiry_timestamp_seconds{certificate=\"macao_client\",member=\"learner\"}",
        "clearway_cluster_voters_reachable{node=\"1\"}",
        "clearway_cluster_commit_index{node=\"1\"}",
        "clearway_cluster_peer_contact_age_seconds{node=\"1\"}",
        "clearway_quic_connections{member=\"learner\"}",
        "clearway_lane_mode{mode=\"face_and_card\"}",
        "clearway_camera_up",
        "clearway_lane_decisions_total",
        "clearway_lane_frame_to_gate1_seconds_count",
        "clearway_outbox_depth",
        "clearway_console_logins_total",
        "clearway_console_port_up",
        "clearway_certificate_expiry_timestamp_seconds{role=\"console\",certificate=\"console_client\"}",
    ];
    for s in series {
        let found = prom.wait(Duration::from_secs(30), s, |p| {
            let r = p.query(s)?;
            if r.is_empty() {
                Err("no series".into())
            } else {
                Ok(r)
            }
        });
        println!("prometheus: {s} -> {} series", found.len());
    }
    // The leader is node 1 and the lane's gate-1 opening was measured.
    let leader = prom
        .query("clearway_cluster_state{state=\"leader\",node=\"1\"}")
        .expect("query");
    assert_eq!(leader[0]["value"][1], "1", "{leader:?}");
    // The leader is in touch with every voter, and it and the lane hold QUIC connections.
    let at_risk = prom
        .query(
            "clearway_cluster_voters_reachable{node=\"1\"} < clearway_cluster_voters{node=\"1\"}",
        )
        .expect("query");
    assert!(at_risk.is_empty(), "{at_risk:?}");
    let idle = prom.query("clearway_quic_connections == 0").expect("query");
    assert!(idle.is_empty(), "{idle:?}");
    let count = prom
        .query("clearway_lane_frame_to_gate1_seconds_count")
        .expect("query");
    assert_ne!(count[0]["value"][1], "0", "{count:?}");
}
