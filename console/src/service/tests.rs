//! The service layer without a browser: the role matrix, reasons and bad input against a port
//! that cannot be reached (refusals happen before any IO). Every action against a real
//! three-node port cluster: `tests/tests/console_service.rs` (the console does not depend on the
//! node).

use std::collections::BTreeMap;

use chrono::{Datelike, Utc};

use super::*;
use crate::auth::now_ms;
use crate::testing::{console, port_config, viewer};

/// A console with ports `hengqin` and `gongbei` whose bundles do not exist: every permitted
/// action fails with `port_unreachable` at the first IO, so the code tells which check answered.
fn offline_console() -> (tempfile::TempDir, Console) {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = BTreeMap::from([("1".to_string(), "127.0.0.1:9".to_string())]);
    let ports = ["hengqin", "gongbei"]
        .iter()
        .map(|p| port_config(p, &dir.path().join(format!("no-bundle-{p}")), nodes.clone()))
        .collect();
    let c = console(dir.path(), ports);
    (dir, c)
}

fn code<T>(r: Result<T>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn every_action_is_refused_on_the_server_unless_the_role_allows_it_on_this_port() {
    let (_dir, c) = offline_console();
    let sup = viewer("ana", Role::Supervisor, &["hengqin"]);
    let desk = viewer("bo", Role::ServiceDesk, &[]);
    let admin = viewer("cy", Role::PortAdmin, &[]);
    let other = viewer("di", Role::Supervisor, &["gongbei"]);
    let reason = "checked with the traveller";
    let form = ConsentForm::default();
    let mut rows = Vec::new();
    for (who, v) in [
        ("supervisor", &sup),
        ("desk", &desk),
        ("admin", &admin),
        ("other-port", &other),
    ] {
        let now = now_ms();
        let results = [
            ("overview", code(c.overview(v))),
            ("snapshot", code(c.snapshot(v, "hengqin"))),
            ("lane", code(c.lane_detail(v, "hengqin", "passenger", "1"))),
            (
                "override",
                code(
                    c.lane_override(
                        v,
                        "hengqin",
                        "hengqin/passenger/1",
                        "gate1_open",
                        reason,
                        now,
                    )
                    .await,
                ),
            ),
            (
                "ack",
                code(
                    c.ack_alarm(
                        v,
                        "hengqin",
                        "hengqin/passenger/1",
                        "camera_down",
                        1,
                        reason,
                        now,
                    )
                    .await,
                ),
            ),
            (
                "find",
                code(
                    c.find_registration(v, "hengqin", "permit_hk_macao", "C12345678")
                        .await,
                ),
            ),
            (
                "consent",
                code(c.guardian_consent(v, "hengqin", &form, reason, now).await),
            ),
            (
                "cancel",
                code(
                    c.cancel_registration(
                        v,
                        "hengqin",
                        "P00000001",
                        &CancelEvidence::default(),
                        reason,
                        now,
                    )
                    .await,
                ),
            ),
            (
                "stage",
                code(
                    c.stage_face_scan(v, "hengqin", "all", "", reason, now)
                        .await,
                ),
            ),
            (
                "init",
                code(c.init_cluster(v, "hengqin", reason, now).await),
            ),
            (
                "learner",
                code(
                    c.add_learner(v, "hengqin", "9", "127.0.0.1:7409", reason, now)
                        .await,
                ),
            ),
            (
                "retire",
                code(c.retire_appliance(v, "hengqin", "9", reason, now).await),
            ),
            ("audit", code(c.audit(v, "hengqin").await)),
            ("users", code(c.users(v, now))),
            ("rollout", code(c.rollout_ports(v))),
        ];
        rows.push(format!(
            "{who:<10} {}",
            results
                .iter()
                .map(|(a, r)| format!("{a}={r}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    // `invalid` for the desk's consent and cancellation: the (empty) form is checked after the
    // role, before any port is asked.
    expect_test::expect![[r#"
        supervisor overview=ok snapshot=ok lane=ok override=port_unreachable ack=port_unreachable find=forbidden consent=forbidden cancel=forbidden stage=forbidden init=forbidden learner=forbidden retire=forbidden audit=port_unreachable users=forbidden rollout=forbidden
        desk       overview=forbidden snapshot=forbidden lane=forbidden override=forbidden ack=forbidden find=port_unreachable consent=invalid cancel=invalid stage=forbidden init=forbidden learner=forbidden retire=forbidden audit=forbidden users=forbidden rollout=forbidden
        admin      overview=ok snapshot=ok lane=ok override=forbidden ack=forbidden find=forbidden consent=forbidden cancel=forbidden stage=port_unreachable init=port_unreachable learner=port_unreachable retire=port_unreachable audit=port_unreachable users=ok rollout=ok
        other-port overview=ok snapshot=forbidden lane=forbidden override=forbidden ack=forbidden find=forbidden consent=forbidden cancel=forbidden stage=forbidden init=forbidden learner=forbidden retire=forbidden audit=forbidden users=forbidden rollout=forbidden"#]]
    .assert_eq(&rows.join("\n"));
    // The supervisor of another port sees only that port.
    let seen: Vec<String> = c
        .overview(&other)
        .expect("overview")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(seen, ["gongbei"]);
    assert!(
        c.metrics
            .render()
            .contains("clearway_console_refused_total{code=\"forbidden\"}"),
        "refusals are counted"
    );
}

#[tokio::test]
async fn changes_need_a_reason_and_sane_input_before_a_port_is_asked() {
    let (_dir, c) = offline_console();
    let sup = viewer("ana", Role::Supervisor, &["hengqin"]);
    let desk = viewer("bo", Role::ServiceDesk, &[]);
    let now = now_ms();
    let long = "x".repeat(crate::dto::MAX_REASON_CHARS + 1);
    let lane = "hengqin/passenger/1";
    let table: Vec<(&str, &'static str)> = vec![
        (
            "empty reason",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", "", now)
                    .await,
            ),
        ),
        (
            "blank reason",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", " \n ", now)
                    .await,
            ),
        ),
        (
            "long reason",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", &long, now)
                    .await,
            ),
        ),
        (
            "control chars",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", "a\u{7}b", now)
                    .await,
            ),
        ),
        (
            "unknown action",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate4_open", "r", now)
                    .await,
            ),
        ),
        (
            "unknown lane",
            code(
                c.lane_override(&sup, "hengqin", "hengqin/passenger/5", "release", "r", now)
                    .await,
            ),
        ),
        (
            "foreign lane",
            code(
                c.lane_override(&sup, "hengqin", "gongbei/passenger/1", "release", "r", now)
                    .await,
            ),
        ),
        (
            "unknown port",
            code(
                c.lane_override(&sup, "nowhere", lane, "release", "r", now)
                    .await,
            ),
        ),
        (
            "unknown alarm",
            code(
                c.ack_alarm(&sup, "hengqin", lane, "boredom", 1, "r", now)
                    .await,
            ),
        ),
        (
            "node alarm",
            code(
                c.ack_alarm(
                    &sup,
                    "hengqin",
                    "hengqin/node-3",
                    "replication_lag",
                    1,
                    "r",
                    now,
                )
                .await,
            ),
        ),
        (
            "lane page 404",
            code(c.lane_detail(&sup, "hengqin", "passenger", "99")),
        ),
        (
            "hall 404",
            code(c.lane_detail(&sup, "hengqin", "departure", "1")),
        ),
        (
            "bad person id",
            code(
                c.cancel_registration(
                    &desk,
                    "hengqin",
                    "H1234567",
                    &CancelEvidence::default(),
                    "r",
                    now,
                )
                .await,
            ),
        ),
        (
            "cancel no reason",
            code(
                c.cancel_registration(
                    &desk,
                    "hengqin",
                    "P00000001",
                    &CancelEvidence::default(),
                    "",
                    now,
                )
                .await,
            ),
        ),
        (
            "bad document no",
            code(
                c.find_registration(&desk, "hengqin", "permit_hk_macao", "12 34")
                    .await,
            ),
        ),
        (
            "bad document kind",
            code(
                c.find_registration(&desk, "hengqin", "passport", "C1")
                    .await,
            ),
        ),
        (
            "ok override",
            code(
                c.lane_override(&sup, "hengqin", lane, "gate1_open", "stuck", now)
                    .await,
            ),
        ),
    ];
    let text: Vec<String> = table.iter().map(|(w, c)| format!("{w}: {c}")).collect();
    expect_test::expect![[r#"
        empty reason: reason_required
        blank reason: reason_required
        long reason: reason_required
        control chars: invalid
        unknown action: invalid
        unknown lane: not_found
        foreign lane: not_found
        unknown port: not_found
        unknown alarm: invalid
        node alarm: port_unreachable
        lane page 404: not_found
        hall 404: not_found
        bad person id: invalid
        cancel no reason: reason_required
        bad document no: invalid
        bad document kind: invalid
        ok override: port_unreachable"#]]
    .assert_eq(&text.join("\n"));
    assert_eq!(Error::ReasonRequired.status(), 422);
    assert_eq!(Error::NotFound(String::new()).status(), 404);
}

#[test]
fn a_port_definition_file_is_previewed_as_the_appliances_will_be_provisioned() {
    let (_dir, c) = offline_console();
    let admin = viewer("cy", Role::PortAdmin, &[]);
    let sup = viewer("ana", Role::Supervisor, &["hengqin"]);
    let hengqin = include_str!("../../../deploy/ports/hengqin.toml");
    let (form, view) = c
        .preview_definition(&admin, hengqin)
        .expect("Hengqin's definition");
    assert_eq!(
        (view.id.as_str(), view.utc_offset_minutes),
        ("hengqin", 480)
    );
    let halls: Vec<(&str, u32)> = view
        .halls
        .iter()
        .map(|(id, _, n)| (id.as_str(), *n))
        .collect();
    assert_eq!(halls, [("passenger", 48), ("onboard", 16)]);
    let voters: Vec<&str> = view.nodes.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(
        voters,
        ["10.1.0.11:7400", "10.1.0.12:7400", "10.1.0.13:7400"]
    );
    // The form it makes is the one the console's own parsers accept.
    assert_eq!(
        crate::rollout::parse_halls(&form.halls)
            .expect("halls")
            .len(),
        2
    );
    assert_eq!(
        crate::rollout::parse_nodes(&form.nodes)
            .expect("nodes")
            .len(),
        3
    );
    // Only a port admin; a bad file is a clear error, not a port.
    assert_eq!(code(c.preview_definition(&sup, hengqin)), "forbidden");
    let bad = c
        .preview_definition(&admin, "id = \"x\"\nname = 3\n")
        .expect_err("a bad definition");
    assert!(bad.to_string().contains("the port definition"), "{bad}");
    let piped = hengqin.replace("Passenger Inspection Hall", "Passenger | Hall");
    assert_eq!(code(c.preview_definition(&admin, &piped)), "invalid");
    let huge = "#".repeat(300 * 1024);
    assert_eq!(code(c.preview_definition(&admin, &huge)), "invalid");
}

#[tokio::test]
async fn a_minors_age_turns_at_midnight_at_the_port_not_in_utc() {
    let (_dir, c) = offline_console();
    let desk = viewer("bo", Role::ServiceDesk, &[]);
    let form = |dob: &str| ConsentForm {
        name: "Chan Siu Ming".into(),
        date_of_birth: dob.into(),
        category: "macao_resident".into(),
        document_kind: "mainland_travel_permit_hk_macao".into(),
        document_number: "H12345678".into(),
        valid_from: "2024-01-01".into(),
        valid_until: "2034-01-01".into(),
        guardian_name: "Chan Tai Man".into(),
        guardian_document: "Macao resident identity card 1234567(8)".into(),
        relationship_proof: "birth certificate B-998".into(),
        service_location: "1".into(),
    };
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("time")
            .timestamp_millis()
    };
    // Hengqin is UTC+8: 16:30 UTC on 5 December is 00:30 on 6 December there. Accepted by the
    // desk's checks = the write is tried (this port is unreachable); refused = `invalid`.
    let cases = [
        (
            "turns 14 at the port's midnight",
            "2012-12-06",
            "2026-12-05T16:30:00Z",
            "port_unreachable",
        ),
        (
            "13 until the port's midnight",
            "2012-12-06",
            "2026-12-05T15:59:00Z",
            "invalid",
        ),
        (
            "turns 18 at the port's midnight",
            "2008-12-06",
            "2026-12-05T16:30:00Z",
            "invalid",
        ),
        (
            "17 until the port's midnight",
            "2008-12-06",
            "2026-12-05T15:59:00Z",
            "port_unreachable",
        ),
    ];
    for (what, dob, now, want) in cases {
        let got = code(
            c.guardian_consent(&desk, "hengqin", &form(dob), "consent given", at(now))
                .await,
        );
        assert_eq!(got, want, "{what}");
    }
}

#[tokio::test]
async fn guardian_consent_is_for_minors_with_a_complete_form() {
    let (_dir, c) = offline_console();
    let desk = viewer("bo", Role::ServiceDesk, &[]);
    let today = Utc::now().date_naive();
    let born = |years: i32| format!("{}-01-01", today.year() - years);
    let good = ConsentForm {
        name: "Chan Siu Ming".into(),
        date_of_birth: born(15),
        category: "macao_resident".into(),
        document_kind: "mainland_travel_permit_hk_macao".into(),
        document_number: "H12345678".into(),
        valid_from: "2024-01-01".into(),
        valid_until: "2034-01-01".into(),
        guardian_name: "Chan Tai Man".into(),
        guardian_document: "Macao resident identity card 1234567(8)".into(),
        relationship_proof: "birth certificate B-998".into(),
        service_location: "1".into(),
    };
    let cases = [
        ("complete", good.clone(), "port_unreachable"),
        (
            "adult",
            ConsentForm {
                date_of_birth: born(30),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "too young",
            ConsentForm {
                date_of_birth: born(10),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "no date",
            ConsentForm {
                date_of_birth: "soon".into(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "no guardian",
            ConsentForm {
                guardian_name: " ".into(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "no proof",
            ConsentForm {
                relationship_proof: String::new(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "no location",
            ConsentForm {
                service_location: "99".into(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "validity backwards",
            ConsentForm {
                valid_until: "2020-01-01".into(),
                ..good.clone()
            },
            "invalid",
        ),
        (
            "wrong document",
            ConsentForm {
                document_kind: "permit_hk_macao".into(),
                ..good.clone()
            },
            "invalid",
        ),
    ];
    for (what, form, want) in cases {
        let got = code(
            c.guardian_consent(&desk, "hengqin", &form, "consent given", now_ms())
                .await,
        );
        assert_eq!(got, want, "{what}");
    }
}
