//! The authorisation table, as a table: every call against every role, and the shapes of a
//! lane's registration.

use chrono::{NaiveDate, TimeZone, Utc};
use clearway_gallery::ops::{AuditDraft, GateAction, GateId, Op, OverrideAction};
use clearway_gallery::{
    Authority, Category, Command, ConsentKind, ConsentRecord, DocumentKind, GuardianConsent,
    ModelId, NewPerson, PersonId, Registration, Registrations, Request, Template, TravelDocument,
};
use openraft::Vote;
use openraft::raft::{AppendEntriesRequest, VoteRequest};

use super::*;

const CHANNEL: &str = "hengqin/passenger/12";

fn lane() -> Role {
    Role::Lane {
        channel: CHANNEL.into(),
    }
}

fn template() -> Template {
    Template::quantize(ModelId::new("sface", "2021dec"), &[0.5; 8]).expect("template")
}

fn registration(at: &str) -> Registration {
    Registration {
        registered_at: Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap(),
        location: at.into(),
    }
}

fn consent(authority: Authority, at: &str) -> ConsentRecord {
    ConsentRecord {
        authority,
        kind: ConsentKind::SmartClearanceRegistration,
        given_at: Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap(),
        channel: at.into(),
    }
}

/// A lane's enrolment of a new traveller at `at`.
fn enrol_at(at: &str) -> Command {
    Command::Enrol {
        person: NewPerson {
            name: "CHAN Tai Man".into(),
            date_of_birth: NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
            category: Category::MacaoResident,
            document: TravelDocument {
                kind: DocumentKind::MainlandTravelPermitHkMacao,
                number: "H12345678".into(),
                valid_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                valid_until: NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
            },
            endorsement: None,
            registrations: Registrations {
                macao: Some(registration(at)),
                mainland: Some(registration(at)),
            },
            consents: vec![
                consent(Authority::Macao, at),
                consent(Authority::Mainland, at),
            ],
            guardian_consent: None,
        },
        templates: vec![template()],
    }
}

fn document() -> TravelDocument {
    TravelDocument {
        kind: DocumentKind::MainlandTravelPermitHkMacao,
        number: "H12345678".into(),
        valid_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        valid_until: NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
    }
}

/// The card's document data and the confirmed prerequisites of person 7.
fn keep_true() -> Vec<Command> {
    let person = PersonId(7);
    vec![
        Command::UpdateDocument {
            person,
            document: document(),
            endorsement: None,
        },
        Command::ConfirmPrerequisites {
            person,
            registrations: Registrations {
                macao: Some(registration("Macao automated clearance")),
                mainland: None,
            },
            fingerprint_read: None,
        },
    ]
}

/// A lane's completion of a pending minor at `at`.
fn complete_at(at: &str) -> Vec<Command> {
    let person = PersonId(7);
    let mut c = vec![Command::AddTemplate {
        person,
        template: template(),
    }];
    c.extend(keep_true());
    for authority in Authority::ALL {
        c.push(Command::RecordConsent {
            person,
            consent: consent(authority, at),
        });
    }
    c
}

fn draft(actor: &str, role: &str) -> AuditDraft {
    AuditDraft {
        actor: actor.into(),
        role: role.into(),
        action: "order.gate_open".into(),
        target: CHANNEL.into(),
        reason: "wheelchair user".into(),
        reason_salt: String::new(),
        at: Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap(),
        ops_digest: String::new(),
        signature: None,
    }
}

fn open_gate() -> Call {
    Call::Write(Request::V2(vec![
        Op::Audit(draft("ana", "supervisor")),
        Op::Order {
            channel: CHANNEL.into(),
            action: OverrideAction::Gate {
                gate: GateId::One,
                action: GateAction::Open,
            },
        },
    ]))
}

/// One row per call; columns voter, lane (at its own channel), console, operator.
#[test]
fn the_table() {
    let roles = [Role::Voter, lane(), Role::Console, Role::Operator];
    let vote = Vote::new(1, 1);
    let rows: Vec<(Call, [bool; 4])> = vec![
        (
            Call::Append(AppendEntriesRequest {
                vote,
                prev_log_id: None,
                entries: vec![],
                leader_commit: None,
            }),
            [true, false, false, false],
        ),
        (
            Call::Vote(VoteRequest::new(vote, None)),
            [true, false, false, false],
        ),
        (
            Call::Write(Request::V1(vec![enrol_at(CHANNEL)])),
            [false, true, false, false],
        ),
        (
            Call::Write(Request::V1(complete_at(CHANNEL))),
            [false, true, false, false],
        ),
        (
            Call::Write(Request::V1(vec![Command::Cancel {
                person: PersonId(1),
            }])),
            [false, false, false, false],
        ),
        (open_gate(), [false, false, true, true]),
        (
            Call::Write(Request::V2(vec![Op::Gallery(Command::Cancel {
                person: PersonId(1),
            })])),
            [false, false, false, false],
        ),
        (
            Call::Membership {
                change: super::super::protocol::MembershipChange::Remove { id: 2 },
                audit: Request::V2(vec![]),
            },
            [false, false, true, true],
        ),
        (
            Call::Initialize {
                voters: Default::default(),
            },
            [false, false, true, true],
        ),
        (
            Call::Person {
                person: PersonId(1),
                linearizable: false,
            },
            [false, false, true, true],
        ),
        (
            Call::FindDocument {
                kind: DocumentKind::MainlandTravelPermitHkMacao,
                number: "H12345678".into(),
            },
            [false, false, true, true],
        ),
        (
            Call::Search {
                probe: vec![0.0; 8],
                k: 1,
            },
            [false, false, true, true],
        ),
        (
            Call::Audit {
                from_seq: 0,
                limit: 10,
            },
            [false, false, true, true],
        ),
        (Call::Status, [true; 4]),
        (Call::Digest, [true; 4]),
        (Call::Metrics, [true; 4]),
        (Call::Lane, [true; 4]),
        (
            Call::LaneStill {
                camera: 0,
                audit_seq: 3,
            },
            [false, false, true, false],
        ),
        (Call::Ledger, [true; 4]),
        (
            Call::OnBehalf {
                client: "client-console".into(),
                role: "console".into(),
                call: Box::new(Call::Status),
            },
            [false; 4],
        ),
    ];
    let mut wrong = Vec::new();
    for (call, expected) in &rows {
        for (role, &allowed) in roles.iter().zip(expected) {
            let got = authorize(role, call);
            if got.is_ok() != allowed {
                wrong.push(format!("{} by {role}: {got:?}", call.name()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_lane_registers_only_at_its_own_channel() {
    let other = "hengqin/passenger/13";
    let refused = |commands: Vec<Command>| {
        authorize(&lane(), &Call::Write(Request::V1(commands))).expect_err("refused")
    };
    assert!(
        refused(vec![enrol_at(other)])
            .reason
            .contains("another channel")
    );
    assert!(
        refused(complete_at(other))
            .reason
            .contains("another channel")
    );

    // A consent at another channel inside an otherwise good enrolment.
    let mut enrol = enrol_at(CHANNEL);
    if let Command::Enrol { person, .. } = &mut enrol {
        person.consents[1].channel = other.into();
    }
    refused(vec![enrol]);

    // The fingerprint authorisation the Macao authority confirmed names no channel; it is fine
    // inside an enrolment (a prerequisite), …
    let mut enrol = enrol_at(CHANNEL);
    if let Command::Enrol { person, .. } = &mut enrol {
        person.consents.push(ConsentRecord {
            authority: Authority::Macao,
            kind: ConsentKind::FingerprintReadAuthorisation,
            given_at: Utc::now(),
            channel: "document application, Mainland (chip)".into(),
        });
    }
    authorize(&lane(), &Call::Write(Request::V1(vec![enrol]))).expect("allowed");
    // … but a lane does not record one on its own: it travels only as a confirmed prerequisite.
    let mut forged = complete_at(CHANNEL);
    forged.push(Command::RecordConsent {
        person: PersonId(7),
        consent: ConsentRecord {
            authority: Authority::Macao,
            kind: ConsentKind::FingerprintReadAuthorisation,
            given_at: Utc::now(),
            channel: "document application".into(),
        },
    });
    refused(forged);

    // A card read keeps a registered record true: document data, prerequisites, or both.
    for batch in [
        keep_true(),
        keep_true()[..1].to_vec(),
        keep_true()[1..].to_vec(),
    ] {
        authorize(&lane(), &Call::Write(Request::V1(batch))).expect("a refresh is allowed");
    }
    // Cancellation notices it delivered, alone in their batch.
    let delivered = |person| Command::NoticeDelivered {
        notice: clearway_gallery::NoticeId {
            index: 40,
            person: PersonId(person),
        },
    };
    authorize(
        &lane(),
        &Call::Write(Request::V1(vec![delivered(1), delivered(2)])),
    )
    .expect("delivered notices are allowed");
    let mut tucked = keep_true();
    tucked.push(delivered(1));
    refused(tucked);
    refused((0..=64).map(delivered).collect());
    // A renewed permit relinks its holder: one new capture, moved to the new document.
    let mut relink = complete_at(CHANNEL);
    relink[0] = Command::ReplaceTemplates {
        person: PersonId(7),
        templates: vec![template()],
    };
    authorize(&lane(), &Call::Write(Request::V1(relink.clone()))).expect("a relink is allowed");
    relink.retain(|c| !matches!(c, Command::UpdateDocument { .. }));
    refused(relink);

    // Two travellers in one batch, a face swapped onto someone else, a cancellation tucked in,
    // a forged guardian consent, a face-less enrolment, a half registration.
    refused(vec![enrol_at(CHANNEL), enrol_at(CHANNEL)]);
    refused(vec![Command::ReplaceTemplates {
        person: PersonId(1),
        templates: vec![template()],
    }]);
    let mut with_cancel = complete_at(CHANNEL);
    with_cancel.push(Command::Cancel {
        person: PersonId(1),
    });
    refused(with_cancel);
    let mut other_person = complete_at(CHANNEL);
    other_person.push(Command::RecordConsent {
        person: PersonId(8),
        consent: consent(Authority::Mainland, CHANNEL),
    });
    refused(other_person);
    refused(vec![Command::AddTemplate {
        person: PersonId(7),
        template: template(),
    }]);
    let mut guardian = enrol_at(CHANNEL);
    if let Command::Enrol { person, .. } = &mut guardian {
        person.guardian_consent = Some(GuardianConsent {
            guardian_name: "CHAN Siu Ming".into(),
            guardian_document: "Macao resident identity card 1234567(8)".into(),
            relationship_proof: "birth certificate".into(),
            service_location: "Qingmao Checkpoint".into(),
            given_at: Utc::now(),
        });
    }
    refused(vec![guardian]);
    let mut faceless = enrol_at(CHANNEL);
    if let Command::Enrol { templates, .. } = &mut faceless {
        templates.clear();
    }
    refused(vec![faceless]);
    // An enrolment without the traveller's consent is no registration.
    let mut unconsented = enrol_at(CHANNEL);
    if let Command::Enrol { person, .. } = &mut unconsented {
        person.consents.clear();
    }
    refused(vec![unconsented]);
    assert_eq!(completes(&complete_at(CHANNEL)), Some(PersonId(7)));
    assert_eq!(completes(&[enrol_at(CHANNEL)]), None);
}

#[test]
fn forwarding_is_honoured_only_from_voters() {
    let voter = Principal {
        identity: Identity::Node(1),
        role: Role::Voter,
    };
    let lane_node = Principal {
        identity: Identity::Node(11),
        role: lane(),
    };
    // A voter speaks for the console.
    let p = forwarded_principal(&voter, "client-console", "console").expect("forwarded");
    assert_eq!(p.role, Role::Console);
    assert_eq!(p.identity, Identity::Client("console".into()));
    // A lane claiming to forward for the console is still the lane.
    let p = forwarded_principal(&lane_node, "client-console", "console").expect("as itself");
    assert_eq!(p, lane_node);
    // A voter cannot make up a node, a mismatched role or garbage.
    assert!(forwarded_principal(&voter, "node-2", "voter").is_err());
    assert!(forwarded_principal(&voter, "client-ops", "voter").is_err());
    assert!(forwarded_principal(&voter, "client-ops", "root").is_err());
    assert!(forwarded_principal(&voter, "ops", "operator").is_err());
}

/// The audit record of a client's batch must name that client and carry its own signature, made
/// within minutes: every way around it, as a table.
#[test]
fn the_audit_record_is_the_authenticated_clients_own_signed_one() {
    use crate::net::signing::{AuditVerifier, sign_batch};
    use crate::net::tls::PortCa;
    let ca = PortCa::create("hengqin").expect("ca");
    let console_bundle = ca
        .issue(&Identity::Client("console".into()), &Role::Console)
        .expect("console");
    let ops_bundle = ca
        .issue(&Identity::Client("ops".into()), &Role::Operator)
        .expect("operator");
    let verifier = AuditVerifier::new(&ops_bundle).expect("verifier");
    let console = Principal {
        identity: Identity::Client("console".into()),
        role: Role::Console,
    };
    let operator = Principal {
        identity: Identity::Client("ops".into()),
        role: Role::Operator,
    };
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    // (case, sender, signing bundle (None: unsigned), actor, role, minutes before now)
    let cases: Vec<(
        &str,
        &Principal,
        Option<&crate::net::tls::Bundle>,
        &str,
        &str,
        i64,
    )> = vec![
        (
            "console user",
            &console,
            Some(&console_bundle),
            "ana@console",
            "supervisor",
            2,
        ),
        (
            "operator",
            &operator,
            Some(&ops_bundle),
            "ops",
            "operator",
            2,
        ),
        (
            "console, bare user name",
            &console,
            Some(&console_bundle),
            "ana",
            "supervisor",
            2,
        ),
        (
            "console, another console",
            &console,
            Some(&console_bundle),
            "ana@other",
            "supervisor",
            2,
        ),
        (
            "console, not a console role",
            &console,
            Some(&console_bundle),
            "ana@console",
            "root",
            2,
        ),
        (
            "console, long user name",
            &console,
            Some(&console_bundle),
            &format!("{}@console", "a".repeat(65)),
            "supervisor",
            2,
        ),
        (
            "operator, claims a person",
            &operator,
            Some(&ops_bundle),
            "ana",
            "operator",
            2,
        ),
        ("unsigned", &console, None, "ana@console", "supervisor", 2),
        (
            "signed by another client",
            &console,
            Some(&ops_bundle),
            "ana@console",
            "supervisor",
            2,
        ),
        (
            "ten minutes old",
            &console,
            Some(&console_bundle),
            "ana@console",
            "supervisor",
            10,
        ),
    ]
    .into_iter()
    .map(|(n, p, b, a, r, m)| {
        (
            n,
            p,
            b,
            Box::leak(a.to_owned().into_boxed_str()) as &str,
            r,
            m,
        )
    })
    .collect();
    let mut out = String::new();
    for (name, principal, bundle, actor, role, minutes) in cases {
        let mut d = draft(actor, role);
        d.at = now - chrono::TimeDelta::minutes(minutes);
        let mut ops = vec![
            Op::Audit(d),
            Op::Order {
                channel: CHANNEL.into(),
                action: OverrideAction::Gate {
                    gate: GateId::One,
                    action: GateAction::Open,
                },
            },
        ];
        match bundle {
            Some(b) => sign_batch(b, &mut ops).expect("sign"),
            None => clearway_gallery::ops::set_ops_digest(&mut ops),
        }
        let got = match check_audit(principal, &Request::V2(ops), &verifier, now) {
            Ok(()) => "accepted".to_owned(),
            Err(e) => e,
        };
        out.push_str(&format!("{name}: {got}\n"));
    }
    expect_test::expect![[r#"
        console user: accepted
        operator: accepted
        console, bare user name: the audit actor must be the console user's name and this console's, user@console
        console, another console: the audit actor must be the console user's name and this console's, user@console
        console, not a console role: "root" is not a console role
        console, long user name: the audit actor must be the console user's name and this console's, user@console
        operator, claims a person: an operator's audit record names its certificate: actor "ops", role "operator"
        unsigned: the audit record's signature: the record is not signed
        signed by another client: the audit record is signed by client-ops (operator), not by the client that sent it
        ten minutes old: the audit record's time is 600 s from the leader's clock (at most 300 s)
    "#]]
    .assert_eq(&out);
}

#[test]
fn request_caps_are_by_role() {
    assert!(max_request(&lane()) < max_request(&Role::Console));
    assert!(max_request(&Role::Console) < max_request(&Role::Voter));
    assert_eq!(max_request(&Role::Voter), crate::net::rpc::MAX_FRAME);
}

#[test]
fn a_camera_still_needs_a_current_supervisor_viewing_of_that_lane_on_record() {
    let made = Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap();
    let record = |action: &str, target: &str, role: &str, refused: Option<&str>| {
        let mut d = draft("ana", role);
        d.action = action.into();
        d.target = target.into();
        clearway_gallery::ops::AuditRecord {
            seq: 7,
            index: 40,
            entry: d.entry(),
            reason: None,
            subject: None,
            refused: refused.map(String::from),
            prev: String::new(),
            hash: String::new(),
        }
    };
    let minutes = |m: i64| made + chrono::Duration::minutes(m);
    let view = "camera.view";
    let cases = [
        (
            Some(record(view, CHANNEL, "supervisor", None)),
            minutes(1),
            Ok(()),
        ),
        (
            Some(record(view, CHANNEL, "supervisor", None)),
            minutes(10),
            Ok(()),
        ),
        (
            Some(record(view, CHANNEL, "supervisor", None)),
            minutes(11),
            Err("has ended"),
        ),
        (
            Some(record(view, CHANNEL, "supervisor", None)),
            minutes(-6),
            Err("has ended"),
        ),
        (None, minutes(1), Err("no such audit record")),
        (
            Some(record("order.gate_open", CHANNEL, "supervisor", None)),
            minutes(1),
            Err("not a camera viewing"),
        ),
        (
            Some(record(view, "hengqin/passenger/13", "supervisor", None)),
            minutes(1),
            Err("not of hengqin/passenger/12"),
        ),
        (
            Some(record(view, CHANNEL, "service_desk", None)),
            minutes(1),
            Err("only a supervisor"),
        ),
        (
            Some(record(view, CHANNEL, "supervisor", Some("bad_batch"))),
            minutes(1),
            Err("refused (bad_batch)"),
        ),
    ];
    for (n, (record, now, expected)) in cases.iter().enumerate() {
        let got = still_viewing(record.as_ref(), CHANNEL, *now);
        match (expected, &got) {
            (Ok(()), Ok(())) => {}
            (Err(want), Err(why)) if why.contains(want) => {}
            _ => panic!("case {n}: expected {expected:?}, got {got:?}"),
        }
    }
}
