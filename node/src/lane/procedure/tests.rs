//! The procedure, walked through without IO. Each scenario is a list of timed inputs and the
//! outputs expected, written one per line in a compact form (see `render`).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use clearway_gallery::{
    Authority, Category, ConsentKind, ConsentRecord, DocumentKind, Endorsement, EndorsementKind,
    GuardianConsent, Person, PersonId, PersonStatus, Registration, Registrations, TravelDocument,
};

use super::*;

/// 2026-11-21 10:00 in Macao (UTC+8).
fn t(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap() + chrono::TimeDelta::milliseconds(ms)
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn registration() -> Registration {
    Registration {
        registered_at: t(-86_400_000),
        location: "Hengqin Port, channel 1".into(),
    }
}

/// The Smart Immigration Clearance consent, acknowledged by both authorities.
fn agreed() -> Vec<ConsentRecord> {
    Authority::ALL
        .into_iter()
        .map(|authority| ConsentRecord {
            authority,
            kind: ConsentKind::SmartClearanceRegistration,
            given_at: t(-86_400_000),
            channel: "hq/ph/1".into(),
        })
        .collect()
}

/// A Macao resident of 40, registered with the Mainland and for face scan: eligible.
fn macao_adult() -> Person {
    Person {
        id: PersonId(1),
        name: "CHAN, TAI MAN".into(),
        date_of_birth: day("1986-05-04"),
        category: Category::MacaoResident,
        document: TravelDocument {
            kind: DocumentKind::MainlandTravelPermitHkMacao,
            number: "M12345678".into(),
            valid_from: day("2020-01-01"),
            valid_until: day("2029-12-31"),
        },
        endorsement: None,
        registrations: Registrations {
            macao: None,
            mainland: Some(registration()),
        },
        consents: agreed(),
        guardian_consent: None,
        status: PersonStatus::Active,
    }
}

/// A Mainland resident whose multiple-entry endorsement expired yesterday.
fn mainland_expired_endorsement() -> Person {
    Person {
        id: PersonId(2),
        name: "LI, MING".into(),
        date_of_birth: day("1990-02-02"),
        category: Category::MainlandResident,
        document: TravelDocument {
            kind: DocumentKind::PermitHkMacao,
            number: "C01234567".into(),
            valid_from: day("2019-01-01"),
            valid_until: day("2028-12-31"),
        },
        endorsement: Some(Endorsement {
            kind: EndorsementKind::T,
            multiple_entry: true,
            valid_from: day("2025-11-21"),
            valid_until: day("2026-11-20"),
            destination: clearway_gallery::Destination::Macao,
        }),
        registrations: Registrations::default(),
        consents: vec![ConsentRecord {
            authority: Authority::Macao,
            kind: ConsentKind::FingerprintReadAuthorisation,
            given_at: t(-1),
            channel: "document application, Mainland".into(),
        }],
        guardian_consent: None,
        status: PersonStatus::Active,
    }
}

fn read(person: &Person) -> DocumentRead {
    DocumentRead {
        kind: person.document.kind,
        category: person.category,
        number: person.document.number.clone(),
        name: person.name.clone(),
        date_of_birth: person.date_of_birth,
        valid_from: person.document.valid_from,
        valid_until: person.document.valid_until,
        endorsement: person.endorsement.clone(),
        fingerprint_read_authorised: false,
    }
}

/// A Hong Kong resident's card, not registered, born on `dob`.
fn hk_card(dob: &str) -> DocumentRead {
    DocumentRead {
        kind: DocumentKind::MainlandTravelPermitHkMacao,
        category: Category::HongKongPermanentResident,
        number: "H87654321".into(),
        name: "WONG, KA YAN".into(),
        date_of_birth: day(dob),
        valid_from: day("2022-03-01"),
        valid_until: day("2032-02-28"),
        endorsement: None,
        fingerprint_read_authorised: false,
    }
}

fn guardian() -> GuardianConsent {
    GuardianConsent {
        guardian_name: "WONG, MEI".into(),
        guardian_document: "Macao resident identity card 1234567(8)".into(),
        relationship_proof: "birth certificate 123".into(),
        service_location: "Qingmao Checkpoint, Departure Office, 3/F".into(),
        given_at: t(-3_600_000),
    }
}

/// An authority's prerequisite answer for `document`.
fn prereq(
    authority: Authority,
    document: &DocumentRead,
    result: Result<PrerequisiteStatus, String>,
) -> Input {
    Input::Prerequisites {
        authority,
        document: document.key(),
        result,
    }
}

/// Registered with the authority's automated clearance service.
fn enrolled() -> PrerequisiteStatus {
    PrerequisiteStatus {
        automated_clearance: Some(registration()),
        fingerprint_read_authorised_at: None,
    }
}

/// Holds nothing for the document.
fn nothing() -> PrerequisiteStatus {
    PrerequisiteStatus::default()
}

/// The Macao authority holds the fingerprint-read authorisation (and nothing else).
fn fingerprint_authorised() -> PrerequisiteStatus {
    PrerequisiteStatus {
        automated_clearance: None,
        fingerprint_read_authorised_at: Some(t(-400_000_000)),
    }
}

/// Both authorities answer at `ms` and `ms + 50` that the traveller holds every prerequisite.
fn both_hold(ms: i64, document: &DocumentRead) -> Vec<(i64, Input)> {
    vec![
        (ms, prereq(Authority::Macao, document, Ok(enrolled()))),
        (
            ms + 50,
            prereq(Authority::Mainland, document, Ok(enrolled())),
        ),
    ]
}

/// `authority` acknowledged (or not) the consent given by Agree at `agreed_ms`.
fn ack(
    authority: Authority,
    document: &DocumentRead,
    agreed_ms: i64,
    result: Result<(), String>,
) -> Input {
    Input::ConsentRecorded {
        authority,
        key: consent_key("hq/ph/1", &document.key(), t(agreed_ms)),
        result,
    }
}

fn identified(person: Person) -> Input {
    Input::Gate1(FaceScan {
        pad: None,
        faces_in_zone: 1,
        face: Some(FaceCheck::Identified {
            person: Box::new(person),
            score: 0.71,
        }),
    })
}

fn card(document: DocumentRead, holder: Holder) -> Input {
    Input::Card(CardScan::Read {
        document: Box::new(document),
        holder,
    })
}

fn fresh() -> Input {
    Input::Replica {
        fence: Fence { term: 3, index: 40 },
        staleness: Some(Duration::from_millis(200)),
    }
}

fn gates(occupancy: u32) -> Input {
    Input::Gates {
        states: [GateState::Closed; 3],
        occupancy,
        fence: Fence::default(),
    }
}

fn finger() -> Input {
    Input::Fingerprint(Ok(FingerprintCapture {
        quality: 80,
        template: vec![7; 32],
    }))
}

fn verdict(authority: Authority, key: &str, result: Result<Verdict, String>) -> Input {
    Input::Verdict {
        authority,
        key: key.into(),
        result,
    }
}

/// One output as a short line: `gate 1 open 3.40`, `screen 1 welcome`, `decision admitted
/// eligible face`, `register`, `finger`, `inspect <method> <score>`, `deliver macao clearance`,
/// `alarm tailgating`, `referral <code>`.
fn render(o: &Output) -> String {
    match o {
        Output::Gate(c) => format!("gate {} {} {}", c.gate.number(), c.action.as_str(), c.fence),
        Output::Screen(s) => format!("screen {} {}", s.gate.number(), s.code),
        Output::CheckPrerequisites(d) => format!("prerequisites {}", d.number),
        Output::RecordConsent(_) => "consent".into(), // to every authority of the port
        Output::Register(r) => format!(
            "register {}{}",
            r.document.number,
            if r.existing.is_some() {
                " existing"
            } else {
                ""
            }
        ),
        Output::CaptureFingerprint => "finger".into(),
        Output::Inspect(r) => format!("inspect {} {:.2}", r.method.as_str(), r.face_score),
        Output::Deliver(d) => format!(
            "deliver {} {}",
            d.authority,
            match d.record {
                AuthorityRecord::RegistrationConsent { .. } => "consent",
                AuthorityRecord::Clearance { .. } => "clearance",
                AuthorityRecord::ConsentWithdrawn { .. } => "withdrawal",
                AuthorityRecord::RegistrationCancelled { .. } => "cancellation",
            }
        ),
        Output::Alarm { kind, .. } => format!("alarm {}", kind.as_str()),
        Output::Referral { code, .. } => format!("referral {code}"),
        Output::Decision(d) => format!(
            "decision {} {}{}",
            d.outcome.as_str(),
            d.reason,
            d.method
                .map(|m| format!(" {}", m.as_str()))
                .unwrap_or_default()
        ),
    }
}

/// Feeds `steps` (milliseconds, input) and returns every output rendered, in order.
fn run(p: &mut Procedure, steps: Vec<(i64, Input)>) -> Vec<String> {
    let mut out = Vec::new();
    for (ms, input) in steps {
        p.handle(t(ms), input);
        while let Some(o) = p.poll_output() {
            // Every screen the tables reach has words on the gate screens, in every language
            // (`lane::kiosk`'s tests check the languages).
            if let Output::Screen(s) = &o {
                assert!(
                    crate::lane::kiosk::screen_text(s.code, true).is_some(),
                    "screen code `{}` has no text in lane/kiosk",
                    s.code
                );
            }
            out.push(render(&o));
        }
    }
    out
}

/// The procedure most tables walk. Their `gates(n)` reports show every gate closed whatever
/// it was told, so they give the gates an hour to confirm a command; the tables of
/// [`gates_must_confirm_what_they_were_told`] report the gates' states as a controller does and
/// use the real deadline.
fn procedure() -> Procedure {
    procedure_with(Duration::from_secs(3600))
}

fn procedure_with(gate_confirm_timeout: Duration) -> Procedure {
    let mut p = Procedure::new(ProcedureConfig {
        channel: "hq/ph/1".into(),
        gate_confirm_timeout,
        // These tables are about the procedure, not PAD: its verdicts are only observed here
        // (`presentation_attack_detection` walks the enforcing mode).
        pad: PadPolicy {
            mode: PadMode::Observe,
            ..PadPolicy::default()
        },
        ..ProcedureConfig::default()
    });
    p.handle(t(0), fresh());
    while p.poll_output().is_some() {}
    p
}

/// The key the procedure gives the first inspection at `ms`.
fn key(ms: i64) -> String {
    format!("hq/ph/1/{}/1", t(ms).timestamp_millis())
}

struct Case {
    name: &'static str,
    steps: Vec<(i64, Input)>,
    expect: &'static str,
}

fn check(cases: Vec<Case>) {
    check_with(cases, procedure);
}

fn check_with(cases: Vec<Case>, make: fn() -> Procedure) {
    let mut failures = Vec::new();
    for case in cases {
        let mut p = make();
        let got = run(&mut p, case.steps).join("\n");
        let want: Vec<&str> = case
            .expect
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if got != want.join("\n") {
            failures.push(format!(
                "--- {}\nwant:\n{}\ngot:\n{}",
                case.name,
                want.join("\n"),
                got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn walks_through_the_channel() {
    check(vec![
        Case {
            name: "registered eligible adult by face: gates 1, 2, 3",
            steps: vec![
                (100, identified(macao_adult())),
                (900, gates(1)),
                (
                    1200,
                    Input::Gate2(Gate2Face::Face {
                        score: Some(0.66),
                        pad: None,
                    }),
                ),
                (1500, finger()),
                (
                    1700,
                    verdict(Authority::Macao, &key(1500), Ok(Verdict::Cleared)),
                ),
                (
                    1750,
                    verdict(Authority::Mainland, &key(1500), Ok(Verdict::Cleared)),
                ),
                (4000, gates(0)),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 2 biometrics
                finger
                screen 2 inspecting
                inspect face 0.66
                gate 2 open 3.40
                gate 3 open 3.40
                screen 2 cleared
                decision cleared both_cleared face
                deliver macao clearance
                deliver mainland clearance
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 ready
            ",
        },
        Case {
            name: "unknown face is told to use card scan; card scan of an adult offers registration; Agree registers",
            steps: vec![
                (
                    100,
                    Input::Gate1(FaceScan {
                        pad: None,
                        faces_in_zone: 1,
                        face: Some(FaceCheck::Unknown),
                    }),
                ),
                (
                    200,
                    Input::Gate1(FaceScan {
                        pad: None,
                        faces_in_zone: 1,
                        face: Some(FaceCheck::Unknown),
                    }),
                ),
                (2000, card(hk_card("1990-01-01"), Holder::Unknown)),
                (
                    2100,
                    prereq(Authority::Macao, &hk_card("1990-01-01"), Ok(enrolled())),
                ),
                (
                    2150,
                    prereq(Authority::Mainland, &hk_card("1990-01-01"), Ok(enrolled())),
                ),
                (5000, Input::Agree),
                (
                    5100,
                    ack(Authority::Mainland, &hk_card("1990-01-01"), 5000, Ok(())),
                ),
                (
                    5200,
                    ack(Authority::Macao, &hk_card("1990-01-01"), 5000, Ok(())),
                ),
                (5400, Input::Registered(Ok(PersonId(9)))),
            ],
            expect: "
                screen 1 not_recognised
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                consent
                screen 1 registering
                register H87654321
                decision registered agreed card
                gate 1 open 3.40
                screen 1 registered
                decision admitted card_valid card
            ",
        },
        Case {
            name: "declining the declaration proceeds by card",
            steps: [
                vec![(100, card(hk_card("1990-01-01"), Holder::Unknown))],
                both_hold(200, &hk_card("1990-01-01")),
                vec![(900, Input::Decline)],
            ]
            .concat(),
            expect: "
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                gate 1 open 3.40
                screen 1 welcome
                decision admitted card_valid card
            ",
        },
        Case {
            name: "the declaration times out into card scan",
            steps: [
                vec![(100, card(hk_card("1990-01-01"), Holder::Unknown))],
                both_hold(200, &hk_card("1990-01-01")),
                vec![(30_249, Input::Tick), (30_250, Input::Tick)],
            ]
            .concat(),
            expect: "
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                gate 1 open 3.40
                screen 1 welcome
                decision admitted card_valid card
            ",
        },
        Case {
            name: "a minor without guardian consent cannot register, passes by card",
            steps: vec![(100, card(hk_card("2010-06-01"), Holder::Unknown))],
            expect: "
                decision not_offered guardian_consent_missing card
                gate 1 open 3.40
                screen 1 minor_needs_guardian
                decision admitted card_valid card
            ",
        },
        Case {
            name: "a minor approved at a service location completes registration at the channel",
            steps: vec![
                (
                    100,
                    card(
                        hk_card("2010-06-01"),
                        Holder::Pending(Box::new(Person {
                            guardian_consent: Some(guardian()),
                            ..macao_adult()
                        })),
                    ),
                ),
                (
                    200,
                    prereq(Authority::Macao, &hk_card("2010-06-01"), Ok(enrolled())),
                ),
                (
                    250,
                    prereq(Authority::Mainland, &hk_card("2010-06-01"), Ok(enrolled())),
                ),
                (800, Input::Agree),
                (
                    900,
                    ack(Authority::Macao, &hk_card("2010-06-01"), 800, Ok(())),
                ),
                (
                    950,
                    ack(Authority::Mainland, &hk_card("2010-06-01"), 800, Ok(())),
                ),
            ],
            expect: "
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                consent
                screen 1 registering
                register H87654321 existing
            ",
        },
        Case {
            name: "under 14: card scan only, no declaration",
            steps: vec![(100, card(hk_card("2014-01-01"), Holder::Unknown))],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted card_valid card
            ",
        },
        Case {
            name: "registered traveller by card is not asked to register again",
            steps: vec![(
                100,
                card(
                    read(&macao_adult()),
                    Holder::Registered(Box::new(macao_adult())),
                ),
            )],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted card_valid card
            ",
        },
        Case {
            name: "registration write fails: the consent is withdrawn from both, proceed by card",
            steps: [
                vec![(100, card(hk_card("1990-01-01"), Holder::Unknown))],
                both_hold(120, &hk_card("1990-01-01")),
                vec![
                    (200, Input::Agree),
                    (
                        220,
                        ack(Authority::Macao, &hk_card("1990-01-01"), 200, Ok(())),
                    ),
                    (
                        240,
                        ack(Authority::Mainland, &hk_card("1990-01-01"), 200, Ok(())),
                    ),
                    (300, Input::Registered(Err("cluster unavailable".into()))),
                ],
            ]
            .concat(),
            expect: "
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                consent
                screen 1 registering
                register H87654321
                deliver macao withdrawal
                deliver mainland withdrawal
                gate 1 open 3.40
                screen 1 registration_failed
                decision admitted card_valid card
            ",
        },
    ]);
}

#[test]
fn refuses_and_refers() {
    let mut cancelled = macao_adult();
    cancelled.status = PersonStatus::Cancelled;
    let mut expired_card = hk_card("1990-01-01");
    expired_card.valid_until = day("2026-11-20");
    let mut child = macao_adult();
    child.date_of_birth = day("2013-01-01");
    let mut minor = macao_adult();
    minor.date_of_birth = day("2010-01-01");
    let mut hk_unregistered = macao_adult();
    hk_unregistered.category = Category::HongKongPermanentResident;
    check(vec![
        Case {
            name: "expired endorsement refused at gate 1",
            steps: vec![(100, identified(mainland_expired_endorsement()))],
            expect: "
                screen 1 endorsement_expired
                referral endorsement_expired
                decision refused endorsement_expired face
            ",
        },
        Case {
            name: "cancelled record never opens gate 1",
            steps: vec![(100, identified(cancelled))],
            expect: "
                screen 1 cancelled
                referral cancelled
                decision refused cancelled face
            ",
        },
        Case {
            name: "under 14 by face",
            steps: vec![(100, identified(child))],
            expect: "
                screen 1 under_age
                referral under_age
                decision refused under_age face
            ",
        },
        Case {
            name: "minor without guardian consent by face",
            steps: vec![(100, identified(minor))],
            expect: "
                screen 1 guardian_consent_missing
                referral guardian_consent_missing
                decision refused guardian_consent_missing face
            ",
        },
        Case {
            name: "Hong Kong resident registered with only one authority",
            steps: vec![(100, identified(hk_unregistered))],
            expect: "
                screen 1 not_registered_macao
                referral not_registered_macao
                decision refused not_registered_macao face
            ",
        },
        Case {
            name: "a refusal clears after its display time; faces are ignored meanwhile",
            steps: vec![
                (100, identified(mainland_expired_endorsement())),
                (200, identified(mainland_expired_endorsement())),
                (4100, Input::Tick),
                (4200, identified(macao_adult())),
            ],
            expect: "
                screen 1 endorsement_expired
                referral endorsement_expired
                decision refused endorsement_expired face
                screen 1 ready
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
            ",
        },
        Case {
            name: "expired document by card",
            steps: vec![(100, card(expired_card, Holder::Unknown))],
            expect: "
                screen 1 document_expired
                referral document_expired
                decision refused document_expired card
            ",
        },
        Case {
            name: "unreadable card",
            steps: vec![(
                100,
                Input::Card(CardScan::Unreadable {
                    code: "check_digit",
                    reason: "bad check digit".into(),
                }),
            )],
            expect: "
                screen 1 check_digit
                referral check_digit
                decision refused check_digit card
            ",
        },
        Case {
            name: "two faces for three frames hold the channel",
            steps: vec![
                (
                    100,
                    Input::Gate1(FaceScan {
                        pad: None,
                        faces_in_zone: 2,
                        face: None,
                    }),
                ),
                (
                    200,
                    Input::Gate1(FaceScan {
                        pad: None,
                        faces_in_zone: 2,
                        face: None,
                    }),
                ),
                (
                    300,
                    Input::Gate1(FaceScan {
                        pad: None,
                        faces_in_zone: 2,
                        face: None,
                    }),
                ),
                (400, identified(macao_adult())),
            ],
            expect: "
                screen 1 one_at_a_time
                alarm multiple_faces
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 multiple_faces
                screen 2 multiple_faces
            ",
        },
        Case {
            name: "two faces passing by once do not hold",
            steps: vec![
                (
                    100,
                    Input::Gate1(FaceScan {
                        pad: None,
                        faces_in_zone: 2,
                        face: None,
                    }),
                ),
                (200, identified(macao_adult())),
            ],
            expect: "
                screen 1 one_at_a_time
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
            ",
        },
        Case {
            name: "a second person between the gates holds the channel",
            steps: vec![(100, identified(macao_adult())), (900, gates(2))],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                alarm tailgating
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 tailgating
                screen 2 tailgating
            ",
        },
        Case {
            name: "face at gate 2 does not match the gate-1 identity",
            steps: vec![
                (100, identified(macao_adult())),
                (900, gates(1)),
                (
                    1200,
                    Input::Gate2(Gate2Face::Face {
                        score: Some(0.2),
                        pad: None,
                    }),
                ),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 2 biometrics
                finger
                decision referred face_mismatch face
                referral face_mismatch
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 face_mismatch
                screen 2 face_mismatch
            ",
        },
        Case {
            name: "one authority refers",
            steps: vec![
                (100, identified(macao_adult())),
                (900, gates(1)),
                (
                    1200,
                    Input::Gate2(Gate2Face::Face {
                        score: Some(0.66),
                        pad: None,
                    }),
                ),
                (1500, finger()),
                (
                    1700,
                    verdict(Authority::Macao, &key(1500), Ok(Verdict::Cleared)),
                ),
                (
                    1800,
                    verdict(
                        Authority::Mainland,
                        &key(1500),
                        Ok(Verdict::Refer {
                            reason: "watch list".into(),
                        }),
                    ),
                ),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 2 biometrics
                finger
                screen 2 inspecting
                inspect face 0.66
                decision referred authority_refer face
                referral authority_refer
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 authority_refer
                screen 2 authority_refer
            ",
        },
        Case {
            name: "an authority that does not answer in time",
            steps: vec![
                (100, identified(macao_adult())),
                (900, gates(1)),
                (
                    1200,
                    Input::Gate2(Gate2Face::Face {
                        score: Some(0.66),
                        pad: None,
                    }),
                ),
                (1500, finger()),
                (
                    1700,
                    verdict(Authority::Macao, &key(1500), Ok(Verdict::Cleared)),
                ),
                (6500, Input::Tick),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 2 biometrics
                finger
                screen 2 inspecting
                inspect face 0.66
                alarm authority_not_answering
                decision referred authority_not_answering face
                referral authority_not_answering
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 authority_not_answering
                screen 2 authority_not_answering
            ",
        },
        Case {
            name: "three bad fingerprints",
            steps: vec![
                (100, identified(macao_adult())),
                (900, gates(1)),
                (1000, Input::Fingerprint(Err("low quality".into()))),
                (1100, Input::Fingerprint(Err("low quality".into()))),
                (1200, Input::Fingerprint(Err("low quality".into()))),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 2 biometrics
                finger
                screen 2 fingerprint_retry
                finger
                finger
                decision referred fingerprint_failed face
                referral fingerprint_failed
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 fingerprint_failed
                screen 2 fingerprint_failed
            ",
        },
        Case {
            name: "nobody steps in: gate 1 closes again",
            steps: vec![(100, identified(macao_adult())), (10_100, Input::Tick)],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 1 ready
            ",
        },
    ]);
}

#[test]
fn card_traveller_without_templates_is_inspected_by_the_authorities() {
    check(vec![Case {
        name: "unregistered card traveller",
        steps: vec![
            (100, card(hk_card("2014-01-01"), Holder::Unknown)),
            (500, gates(1)),
            (
                600,
                Input::Gate2(Gate2Face::Face {
                    score: None,
                    pad: None,
                }),
            ),
            (700, finger()),
            (
                800,
                verdict(Authority::Mainland, &key(700), Ok(Verdict::Cleared)),
            ),
            (
                900,
                verdict(Authority::Macao, &key(700), Ok(Verdict::Cleared)),
            ),
            (10_900, Input::Tick),
        ],
        expect: "
            gate 1 open 3.40
            screen 1 welcome
            decision admitted card_valid card
            gate 1 close 3.40
            screen 2 biometrics
            finger
            screen 2 inspecting
            inspect card 0.00
            gate 2 open 3.40
            gate 3 open 3.40
            screen 2 cleared
            decision cleared both_cleared card
            deliver macao clearance
            deliver mainland clearance
            gate 2 close 3.40
            gate 3 close 3.40
            screen 1 ready
        ",
    }]);
}

#[test]
fn fencing_tokens_follow_the_replica_and_refuse_stale_overrides() {
    let mut p = procedure();
    p.handle(
        t(10),
        Input::Replica {
            fence: Fence { term: 4, index: 7 },
            staleness: Some(Duration::ZERO),
        },
    );
    // An older replica report never lowers the token.
    p.handle(
        t(20),
        Input::Replica {
            fence: Fence { term: 3, index: 99 },
            staleness: Some(Duration::ZERO),
        },
    );
    let out = run(
        &mut p,
        vec![
            (
                30,
                Input::Override {
                    action: OverrideAction::Gate {
                        gate: GateId::One,
                        action: GateAction::Lock,
                    },
                    fence: Fence { term: 4, index: 6 },
                },
            ),
            (
                40,
                Input::Override {
                    action: OverrideAction::Gate {
                        gate: GateId::One,
                        action: GateAction::Lock,
                    },
                    fence: Fence { term: 4, index: 9 },
                },
            ),
            (50, identified(macao_adult())),
        ],
    );
    assert_eq!(
        out,
        [
            "alarm gate_fault",
            "gate 1 lock 4.9",
            "gate 1 open 4.9",
            "screen 1 welcome",
            "decision admitted eligible face"
        ]
    );
    assert_eq!(p.view().fence, Fence { term: 4, index: 9 });
}

/// The controller reports the highest fence it accepted.
fn controller_fence(term: u64, index: u64) -> Input {
    Input::Gates {
        states: [GateState::Closed; 3],
        occupancy: 0,
        fence: Fence { term, index },
    }
}

#[test]
fn a_fence_the_lane_never_issued_stops_every_passage_until_reset() {
    check(vec![
        Case {
            name: "the lane's own fence at the controller is normal",
            steps: vec![
                (0, fresh()),
                (10, controller_fence(3, 40)),
                (20, identified(macao_adult())),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
            ",
        },
        Case {
            name: "a forged u64::MAX fence: alarm once, nobody admitted by face or card",
            steps: vec![
                (0, fresh()),
                (10, controller_fence(u64::MAX, u64::MAX)),
                (20, controller_fence(u64::MAX, u64::MAX)),
                (30, identified(macao_adult())),
                (6000, card(read(&macao_adult()), Holder::Unknown)),
            ],
            expect: "
                alarm foreign_fence
                screen 1 lane_closed
                decision refused foreign_fence face
                decision refused foreign_fence card
            ",
        },
        Case {
            name: "a technician resets the controller: passages again",
            steps: vec![
                (0, fresh()),
                (10, controller_fence(3, 41)),
                (20, controller_fence(0, 0)),
                (30, identified(macao_adult())),
            ],
            expect: "
                alarm foreign_fence
                screen 1 lane_closed
                screen 1 ready
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
            ",
        },
        Case {
            name: "a lane back from a restart, its replica behind what it issued: no alarm yet",
            steps: vec![
                (
                    0,
                    Input::Replica {
                        fence: Fence { term: 3, index: 12 },
                        staleness: None,
                    },
                ),
                (10, controller_fence(3, 40)),
                (20, fresh()),
                (30, controller_fence(3, 40)),
            ],
            expect: "
                alarm replica_stale
                screen 1 card_only
            ",
        },
    ]);
}

#[test]
fn a_stale_replica_stops_face_scan_but_not_card_scan() {
    let mut p = procedure();
    let out = run(
        &mut p,
        vec![
            (
                10,
                Input::Replica {
                    fence: Fence { term: 3, index: 41 },
                    staleness: Some(Duration::from_secs(301)),
                },
            ),
            (20, identified(macao_adult())),
            (
                30,
                card(
                    read(&macao_adult()),
                    Holder::Registered(Box::new(macao_adult())),
                ),
            ),
        ],
    );
    assert_eq!(
        out,
        [
            "alarm replica_stale",
            "screen 1 card_only",
            "gate 1 open 3.41",
            "screen 1 welcome",
            "decision admitted card_valid card"
        ]
    );
    assert!(!p.view().face_scan);
    // Unregistered travellers are not offered registration while the cluster is out of reach.
    let mut p = procedure();
    let out = run(
        &mut p,
        vec![
            (
                10,
                Input::Replica {
                    fence: Fence::default(),
                    staleness: None,
                },
            ),
            (20, card(hk_card("1990-01-01"), Holder::Unknown)),
        ],
    );
    assert!(!out.iter().any(|l| l.contains("declaration")), "{out:?}");
    // Back in touch: face scan resumes.
    p.handle(t(30_000), fresh());
    assert!(p.view().face_scan);
}

#[test]
fn modes_and_release() {
    let mut p = procedure();
    let out = run(
        &mut p,
        vec![
            (
                10,
                Input::Override {
                    action: OverrideAction::Mode {
                        mode: LaneMode::Closed,
                    },
                    fence: Fence { term: 3, index: 50 },
                },
            ),
            (20, identified(macao_adult())),
            (
                30,
                card(
                    read(&macao_adult()),
                    Holder::Registered(Box::new(macao_adult())),
                ),
            ),
            (
                40,
                Input::Override {
                    action: OverrideAction::Mode {
                        mode: LaneMode::CardOnly,
                    },
                    fence: Fence { term: 3, index: 51 },
                },
            ),
            (50, identified(macao_adult())),
        ],
    );
    assert_eq!(out, ["screen 1 lane_closed"]);
    assert!(!p.wants_gate1_faces());
    // Hold, then release by an officer.
    let mut p = procedure();
    run(
        &mut p,
        vec![(100, identified(macao_adult())), (200, gates(2))],
    );
    assert_eq!(p.view().held_for, Some("tailgating"));
    // Nothing opens a held channel but an override.
    let out = run(
        &mut p,
        vec![(300, identified(macao_adult())), (400, gates(0))],
    );
    assert!(!out.iter().any(|l| l.contains("open")), "{out:?}");
    let out = run(
        &mut p,
        vec![(
            500,
            Input::Override {
                action: OverrideAction::Release,
                fence: Fence { term: 3, index: 60 },
            },
        )],
    );
    assert_eq!(out, ["screen 1 ready"]);
    assert_eq!(p.view().step, "idle");
}

/// Whatever arrives in whatever order, gates 2 and 3 open only after both authorities cleared
/// the current passage, and gate 1 opens only in answer to an identification or a card.
#[test]
fn no_input_sequence_opens_gates_without_grounds() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let inputs = |k: &str| -> Vec<Input> {
        vec![
            Input::Tick,
            identified(macao_adult()),
            identified(mainland_expired_endorsement()),
            Input::Gate1(FaceScan {
                pad: None,
                faces_in_zone: 2,
                face: None,
            }),
            Input::Gate1(FaceScan {
                pad: None,
                faces_in_zone: 1,
                face: Some(FaceCheck::Unknown),
            }),
            Input::Gate2(Gate2Face::Face {
                score: Some(0.8),
                pad: None,
            }),
            Input::Gate2(Gate2Face::Face {
                score: Some(0.1),
                pad: None,
            }),
            Input::Gate2(Gate2Face::NoFace),
            finger(),
            Input::Fingerprint(Err("no finger".into())),
            gates(0),
            gates(1),
            gates(2),
            verdict(Authority::Macao, k, Ok(Verdict::Cleared)),
            verdict(Authority::Mainland, k, Ok(Verdict::Cleared)),
            verdict(Authority::Macao, "other", Ok(Verdict::Cleared)),
            Input::Agree,
            Input::Decline,
            card(hk_card("1990-01-01"), Holder::Unknown),
            fresh(),
        ]
    };
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..300 {
        let mut p = procedure();
        let mut ms = 0;
        let mut cleared: Vec<Authority> = Vec::new();
        let mut current_key: Option<String> = None;
        let mut grounds_for_gate1 = false;
        for _ in 0..60 {
            ms += rng.random_range(1..3000);
            let k = current_key.clone().unwrap_or_else(|| "none".into());
            let all = inputs(&k);
            let input = all[rng.random_range(0..all.len())].clone();
            let gate1_ground = matches!(
                &input,
                Input::Gate1(FaceScan {
                    pad: None,
                    face: Some(FaceCheck::Identified { .. }),
                    ..
                })
            ) || matches!(
                input,
                Input::Card(_) | Input::Agree | Input::Decline | Input::Tick
            );
            if let Input::Verdict {
                authority,
                key,
                result: Ok(Verdict::Cleared),
            } = &input
                && Some(key) == current_key.as_ref()
            {
                cleared.push(*authority);
            }
            p.handle(t(ms), input);
            grounds_for_gate1 |= gate1_ground;
            while let Some(o) = p.poll_output() {
                match o {
                    Output::Inspect(r) => {
                        current_key = Some(r.key.clone());
                        cleared.clear();
                    }
                    Output::Gate(GateCommand {
                        gate: GateId::Two | GateId::Three,
                        action: GateAction::Open,
                        ..
                    }) => {
                        assert!(
                            cleared.contains(&Authority::Macao)
                                && cleared.contains(&Authority::Mainland),
                            "gates 2/3 opened without both clearances"
                        );
                    }
                    Output::Gate(GateCommand {
                        gate: GateId::One,
                        action: GateAction::Open,
                        ..
                    }) => {
                        assert!(grounds_for_gate1, "gate 1 opened without grounds");
                        grounds_for_gate1 = false;
                    }
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn config_validation() {
    assert!(ProcedureConfig::default().validate().is_ok());
    let bad = [
        ProcedureConfig {
            channel: " ".into(),
            ..Default::default()
        },
        ProcedureConfig {
            utc_offset_minutes: 2000,
            ..Default::default()
        },
        ProcedureConfig {
            fingerprint_attempts: 0,
            ..Default::default()
        },
        ProcedureConfig {
            verify_threshold: 1.5,
            ..Default::default()
        },
    ];
    for c in bad {
        assert!(c.validate().is_err(), "{c:?}");
    }
    let parsed: ProcedureConfig =
        toml::from_str("channel = \"hq/ph/2\"\nmax_staleness = 60000").unwrap();
    assert_eq!(parsed.max_staleness, Duration::from_secs(60));
    assert!(toml::from_str::<ProcedureConfig>("chanel = \"x\"").is_err());
}

fn reported(states: [GateState; 3], occupancy: u32) -> Input {
    Input::Gates {
        states,
        occupancy,
        fence: Fence::default(),
    }
}

fn failed(gate: GateId, action: GateAction) -> Input {
    Input::GateFailed {
        gate,
        action,
        why: "refused by the controller".into(),
    }
}

const LOCKED_1: [GateState; 3] = [GateState::Locked, GateState::Closed, GateState::Closed];

/// The procedure acts on what the gate controller did, not on what it was told (issue 14's
/// safety bug: a locked gate 1 used to let the passage carry on as if it had opened).
#[test]
fn a_gate_that_does_not_do_what_it_was_told_ends_the_passage_safely() {
    check(vec![
        Case {
            name: "gate 1 locked: no passage starts; the console hears a traveller was turned away",
            steps: vec![
                (50, reported(LOCKED_1, 0)),
                (100, identified(macao_adult())),
                (9000, reported(LOCKED_1, 0)),
            ],
            expect: "
                screen 1 gate1_locked
                alarm gate1_locked
                decision refused gate1_locked face
            ",
        },
        Case {
            name: "gate 1 locked: a card is turned away too",
            steps: vec![
                (50, reported(LOCKED_1, 0)),
                (
                    200,
                    card(
                        read(&macao_adult()),
                        Holder::Registered(Box::new(macao_adult())),
                    ),
                ),
            ],
            expect: "
                screen 1 gate1_locked
                alarm gate1_locked
                decision refused gate1_locked card
            ",
        },
        Case {
            name: "gate 1 unlocked again: the channel is ready and a traveller passes gate 1",
            steps: vec![
                (50, reported(LOCKED_1, 0)),
                (300, gates(0)),
                (400, identified(macao_adult())),
            ],
            expect: "
                screen 1 gate1_locked
                screen 1 ready
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
            ",
        },
        Case {
            name: "gate 1 locked after the traveller was identified: refused, never inspected",
            steps: vec![
                (100, identified(macao_adult())),
                (400, reported(LOCKED_1, 0)),
                (600, reported(LOCKED_1, 1)),
                (5000, Input::Tick),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                alarm gate_failed
                decision refused gate1_locked face
                screen 1 gate1_locked
            ",
        },
        Case {
            name: "gate 1 refuses to open (not locked): held for an officer, every gate closed",
            steps: vec![
                (
                    100,
                    card(
                        read(&macao_adult()),
                        Holder::Registered(Box::new(macao_adult())),
                    ),
                ),
                (300, failed(GateId::One, GateAction::Open)),
                (900, gates(1)),
                (
                    1200,
                    Input::Gate2(Gate2Face::Face {
                        score: Some(0.66),
                        pad: None,
                    }),
                ),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted card_valid card
                alarm gate_failed
                decision referred gate_failed card
                referral gate_failed
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 gate_failed
                screen 2 gate_failed
            ",
        },
        Case {
            name: "gates 2 and 3 do not open after both authorities cleared: held inside",
            steps: vec![
                (100, identified(macao_adult())),
                (900, gates(1)),
                (
                    1200,
                    Input::Gate2(Gate2Face::Face {
                        score: Some(0.66),
                        pad: None,
                    }),
                ),
                (1500, finger()),
                (
                    1700,
                    verdict(Authority::Macao, &key(1500), Ok(Verdict::Cleared)),
                ),
                (
                    1750,
                    verdict(Authority::Mainland, &key(1500), Ok(Verdict::Cleared)),
                ),
                (1900, failed(GateId::Two, GateAction::Open)),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 2 biometrics
                finger
                screen 2 inspecting
                inspect face 0.66
                gate 2 open 3.40
                gate 3 open 3.40
                screen 2 cleared
                decision cleared both_cleared face
                deliver macao clearance
                deliver mainland clearance
                alarm gate_failed
                decision referred gate_failed face
                referral gate_failed
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 gate_failed
                screen 2 gate_failed
            ",
        },
        Case {
            name: "a refused close with nobody in the channel: the empty channel is held",
            steps: vec![(100, failed(GateId::Three, GateAction::Close))],
            expect: "
                alarm gate_failed
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 gate_failed
                screen 2 gate_failed
            ",
        },
        Case {
            name: "a refused opening nobody waits for (a supervisor's, on an idle lane): the alarm only",
            steps: vec![(100, failed(GateId::Three, GateAction::Open))],
            expect: "
                alarm gate_failed
            ",
        },
    ]);
}

const OPEN_1: [GateState; 3] = [GateState::Open, GateState::Closed, GateState::Closed];
const CLOSED: [GateState; 3] = [GateState::Closed; 3];

/// Gates are given [`ProcedureConfig::gate_confirm_timeout`] (3 s by default) to report the
/// state they were commanded into; one that does not (stuck, unpowered, its controller not
/// answering) ends the passage safely, like a refused command.
#[test]
fn gates_must_confirm_what_they_were_told() {
    check_with(
        vec![
            Case {
                name: "gate 1 opens in time: nothing more happens",
                steps: vec![
                    (100, identified(macao_adult())),
                    (
                        400,
                        reported([GateState::Moving, GateState::Closed, GateState::Closed], 0),
                    ),
                    (700, reported(OPEN_1, 0)),
                    (5000, Input::Tick),
                ],
                expect: "
                    gate 1 open 3.40
                    screen 1 welcome
                    decision admitted eligible face
                ",
            },
            Case {
                name: "gate 1 never reports open: the traveller is held for an officer, every gate closed",
                steps: vec![
                    (100, identified(macao_adult())),
                    (
                        400,
                        reported([GateState::Moving, GateState::Closed, GateState::Closed], 0),
                    ),
                    (
                        3000,
                        reported([GateState::Moving, GateState::Closed, GateState::Closed], 0),
                    ),
                    (3100, Input::Tick),
                ],
                expect: "
                    gate 1 open 3.40
                    screen 1 welcome
                    decision admitted eligible face
                    alarm gate_failed
                    decision referred gate_failed face
                    referral gate_failed
                    gate 1 close 3.40
                    gate 2 close 3.40
                    gate 3 close 3.40
                    screen 1 gate_failed
                    screen 2 gate_failed
                ",
            },
            Case {
                name: "the controller stops answering after the clearance: gate 2 never opens, held inside",
                steps: vec![
                    (100, identified(macao_adult())),
                    (500, reported(OPEN_1, 0)),
                    (900, reported(OPEN_1, 1)),
                    (1100, reported(CLOSED, 1)),
                    (
                        1200,
                        Input::Gate2(Gate2Face::Face {
                            score: Some(0.66),
                            pad: None,
                        }),
                    ),
                    (1500, finger()),
                    (
                        1700,
                        verdict(Authority::Macao, &key(1500), Ok(Verdict::Cleared)),
                    ),
                    (
                        1750,
                        verdict(Authority::Mainland, &key(1500), Ok(Verdict::Cleared)),
                    ),
                    (
                        2000,
                        reported([GateState::Closed, GateState::Moving, GateState::Open], 1),
                    ),
                    (4800, Input::Tick),
                ],
                expect: "
                    gate 1 open 3.40
                    screen 1 welcome
                    decision admitted eligible face
                    gate 1 close 3.40
                    screen 2 biometrics
                    finger
                    screen 2 inspecting
                    inspect face 0.66
                    gate 2 open 3.40
                    gate 3 open 3.40
                    screen 2 cleared
                    decision cleared both_cleared face
                    deliver macao clearance
                    deliver mainland clearance
                    alarm gate_failed
                    decision referred gate_failed face
                    referral gate_failed
                    gate 1 close 3.40
                    gate 2 close 3.40
                    gate 3 close 3.40
                    screen 1 gate_failed
                    screen 2 gate_failed
                ",
            },
            Case {
                name: "gate 1 does not close after nobody stepped in: the empty channel is held",
                steps: vec![
                    (100, identified(macao_adult())),
                    (500, reported(OPEN_1, 0)),
                    (10_100, Input::Tick),
                    (11_000, reported(OPEN_1, 0)),
                    (13_100, Input::Tick),
                ],
                expect: "
                    gate 1 open 3.40
                    screen 1 welcome
                    decision admitted eligible face
                    gate 1 close 3.40
                    screen 1 ready
                    alarm gate_failed
                    gate 1 close 3.40
                    gate 2 close 3.40
                    gate 3 close 3.40
                    screen 1 gate_failed
                    screen 2 gate_failed
                ",
            },
            Case {
                name: "a refused command is not reported twice when its deadline passes",
                steps: vec![
                    (100, identified(macao_adult())),
                    (300, failed(GateId::One, GateAction::Open)),
                    (600, reported(CLOSED, 0)),
                    (3200, Input::Tick),
                ],
                expect: "
                    gate 1 open 3.40
                    screen 1 welcome
                    decision admitted eligible face
                    alarm gate_failed
                    decision referred gate_failed face
                    referral gate_failed
                    gate 1 close 3.40
                    gate 2 close 3.40
                    gate 3 close 3.40
                    screen 1 gate_failed
                    screen 2 gate_failed
                ",
            },
        ],
        || procedure_with(ProcedureConfig::default().gate_confirm_timeout),
    );
}

/// Ages turn at midnight at the port (UTC+8), eight hours before UTC's: the traveller born on
/// 22 November 2008 is 17 at 23:59 on the 21st in Macao and 18 a minute past midnight there,
/// while UTC still says the 21st.
#[test]
fn ages_turn_at_the_ports_midnight_not_utcs() {
    // t(0) is 02:00 UTC; 13 h 59 min later is 23:59 in Macao, 14 h 01 min later 00:01.
    let before = 13 * 3_600_000 + 59 * 60_000;
    let after = 14 * 3_600_000 + 60_000;
    check(vec![
        Case {
            name: "17 until the port's midnight: a minor without consent passes by card",
            steps: vec![(before, card(hk_card("2008-11-22"), Holder::Unknown))],
            expect: "
                decision not_offered guardian_consent_missing card
                gate 1 open 3.40
                screen 1 minor_needs_guardian
                decision admitted card_valid card
            ",
        },
        Case {
            name: "18 from the port's midnight (UTC still the day before): offered the declaration",
            steps: [
                vec![(after, card(hk_card("2008-11-22"), Holder::Unknown))],
                both_hold(after + 100, &hk_card("2008-11-22")),
                vec![(after + 800, Input::Decline)],
            ]
            .concat(),
            expect: "
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                gate 1 open 3.40
                screen 1 welcome
                decision admitted card_valid card
            ",
        },
    ]);
    let p = procedure();
    assert_eq!(p.travel_day(t(before)), day("2026-11-21"));
    assert_eq!(p.travel_day(t(after)), day("2026-11-22"));
}

/// Seed 000's registration, branch by branch: the document first, then the prerequisites asked
/// of the authorities, then the consent acknowledged by both before anything is written.
#[test]
fn registration_follows_seed_000() {
    let macao_card = || {
        let mut d = read(&macao_adult());
        d.number = "M55555555".into();
        d
    };
    let mainland_card = || {
        let mut d = read(&mainland_expired_endorsement());
        if let Some(e) = d.endorsement.as_mut() {
            e.valid_until = day("2027-11-20");
        }
        d
    };
    let single_entry = || {
        let mut d = mainland_card();
        if let Some(e) = d.endorsement.as_mut() {
            e.multiple_entry = false;
        }
        d
    };
    let taiwan_three_years = || DocumentRead {
        kind: DocumentKind::MainlandTravelPermitTaiwan,
        category: Category::TaiwanResident,
        number: "01234567".into(),
        name: "LIN, YA TING".into(),
        date_of_birth: day("1990-05-05"),
        valid_from: day("2025-01-01"),
        valid_until: day("2027-12-31"),
        endorsement: None,
        fingerprint_read_authorised: true,
    };
    let hk = || hk_card("1990-01-01");
    let mut never_agreed = mainland_expired_endorsement();
    never_agreed.endorsement = mainland_card().endorsement;
    check(vec![
        Case {
            name: "Macao resident not registered with the Mainland's automated clearance: not offered",
            steps: vec![
                (100, card(macao_card(), Holder::Unknown)),
                (200, prereq(Authority::Macao, &macao_card(), Ok(enrolled()))),
                (
                    250,
                    prereq(Authority::Mainland, &macao_card(), Ok(nothing())),
                ),
            ],
            expect: "
                prerequisites M55555555
                screen 1 checking
                decision not_offered not_registered_mainland card
                gate 1 open 3.40
                screen 1 not_offered:not_registered_mainland
                decision admitted card_valid card
            ",
        },
        Case {
            name: "Macao resident registered with the Mainland only: offered (Macao's is not needed)",
            steps: vec![
                (100, card(macao_card(), Holder::Unknown)),
                (200, prereq(Authority::Macao, &macao_card(), Ok(nothing()))),
                (
                    250,
                    prereq(Authority::Mainland, &macao_card(), Ok(enrolled())),
                ),
            ],
            expect: "
                prerequisites M55555555
                screen 1 checking
                screen 1 declaration
            ",
        },
        Case {
            name: "Hong Kong resident registered with the Mainland only: not offered",
            steps: vec![
                (100, card(hk(), Holder::Unknown)),
                (200, prereq(Authority::Mainland, &hk(), Ok(enrolled()))),
                (250, prereq(Authority::Macao, &hk(), Ok(nothing()))),
            ],
            expect: "
                prerequisites H87654321
                screen 1 checking
                decision not_offered not_registered_macao card
                gate 1 open 3.40
                screen 1 not_offered:not_registered_macao
                decision admitted card_valid card
            ",
        },
        Case {
            name: "Mainland resident without the fingerprint-read authorisation (whatever the chip says): not offered",
            steps: vec![
                (100, card(mainland_card(), Holder::Unknown)),
                (
                    200,
                    prereq(Authority::Macao, &mainland_card(), Ok(nothing())),
                ),
                (
                    250,
                    prereq(Authority::Mainland, &mainland_card(), Ok(enrolled())),
                ),
            ],
            expect: "
                prerequisites C01234567
                screen 1 checking
                decision not_offered fingerprint_authorisation_missing card
                gate 1 open 3.40
                screen 1 not_offered:fingerprint_authorisation_missing
                decision admitted card_valid card
            ",
        },
        Case {
            name: "Mainland resident whose authorisation the Macao authority holds: offered",
            steps: vec![
                (100, card(mainland_card(), Holder::Unknown)),
                (
                    200,
                    prereq(
                        Authority::Macao,
                        &mainland_card(),
                        Ok(fingerprint_authorised()),
                    ),
                ),
                (
                    250,
                    prereq(Authority::Mainland, &mainland_card(), Ok(nothing())),
                ),
            ],
            expect: "
                prerequisites C01234567
                screen 1 checking
                screen 1 declaration
            ",
        },
        Case {
            name: "single-entry endorsement: not offered, nobody asked",
            steps: vec![(100, card(single_entry(), Holder::Unknown))],
            expect: "
                decision not_offered endorsement_not_multiple_entry card
                gate 1 open 3.40
                screen 1 not_offered:endorsement_not_multiple_entry
                decision admitted card_valid card
            ",
        },
        Case {
            name: "Taiwan resident with a 3-year permit: not offered",
            steps: vec![(100, card(taiwan_three_years(), Holder::Unknown))],
            expect: "
                decision not_offered document_not_five_year card
                gate 1 open 3.40
                screen 1 not_offered:document_not_five_year
                decision admitted card_valid card
            ",
        },
        Case {
            name: "an authority cannot be asked: registration unavailable, card passage",
            steps: vec![
                (100, card(hk(), Holder::Unknown)),
                (200, prereq(Authority::Macao, &hk(), Ok(enrolled()))),
                (
                    250,
                    prereq(Authority::Mainland, &hk(), Err("HTTP 503".into())),
                ),
            ],
            expect: "
                prerequisites H87654321
                screen 1 checking
                gate 1 open 3.40
                screen 1 registration_unavailable
                decision admitted card_valid card
            ",
        },
        Case {
            name: "no answer in 3 s: registration unavailable; a late answer or another document's is ignored",
            steps: vec![
                (100, card(hk(), Holder::Unknown)),
                (200, prereq(Authority::Macao, &macao_card(), Ok(enrolled()))),
                (3_099, Input::Tick),
                (3_100, Input::Tick),
                (3_200, prereq(Authority::Macao, &hk(), Ok(enrolled()))),
            ],
            expect: "
                prerequisites H87654321
                screen 1 checking
                gate 1 open 3.40
                screen 1 registration_unavailable
                decision admitted card_valid card
            ",
        },
        Case {
            name: "only Macao acknowledges the consent in time: nothing registered, withdrawn from both",
            steps: [
                vec![(100, card(hk(), Holder::Unknown))],
                both_hold(200, &hk()),
                vec![
                    (1_000, Input::Agree),
                    (1_100, ack(Authority::Macao, &hk(), 1_000, Ok(()))),
                    (10_999, Input::Tick),
                    (11_000, Input::Tick),
                    // Mainland's late answer changes nothing.
                    (11_500, ack(Authority::Mainland, &hk(), 1_000, Ok(()))),
                ],
            ]
            .concat(),
            expect: "
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                consent
                screen 1 registering
                deliver macao withdrawal
                deliver mainland withdrawal
                gate 1 open 3.40
                screen 1 registration_failed
                decision admitted card_valid card
            ",
        },
        Case {
            name: "Mainland refuses the consent: withdrawn from both at once, card passage",
            steps: [
                vec![(100, card(hk(), Holder::Unknown))],
                both_hold(200, &hk()),
                vec![
                    (1_000, Input::Agree),
                    // Another consent's acknowledgement is not this one's.
                    (1_050, ack(Authority::Macao, &hk(), 999, Ok(()))),
                    (
                        1_100,
                        ack(Authority::Mainland, &hk(), 1_000, Err("HTTP 503".into())),
                    ),
                ],
            ]
            .concat(),
            expect: "
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                consent
                screen 1 registering
                deliver macao withdrawal
                deliver mainland withdrawal
                gate 1 open 3.40
                screen 1 registration_failed
                decision admitted card_valid card
            ",
        },
        Case {
            name: "the gallery write outlasts its time: card passage, a late success is still registered",
            steps: [
                vec![(100, card(hk(), Holder::Unknown))],
                both_hold(200, &hk()),
                vec![
                    (1_000, Input::Agree),
                    (1_100, ack(Authority::Macao, &hk(), 1_000, Ok(()))),
                    (1_200, ack(Authority::Mainland, &hk(), 1_000, Ok(()))),
                    (11_200, Input::Tick),
                    (12_000, Input::Registered(Ok(PersonId(9)))),
                ],
            ]
            .concat(),
            expect: "
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                consent
                screen 1 registering
                register H87654321
                gate 1 open 3.40
                screen 1 registration_pending
                decision admitted card_valid card
                decision registered agreed card
            ",
        },
        Case {
            name: "the gallery write outlasts its time and then fails: the consent is withdrawn",
            steps: [
                vec![(100, card(hk(), Holder::Unknown))],
                both_hold(200, &hk()),
                vec![
                    (1_000, Input::Agree),
                    (1_100, ack(Authority::Macao, &hk(), 1_000, Ok(()))),
                    (1_200, ack(Authority::Mainland, &hk(), 1_000, Ok(()))),
                    (11_200, Input::Tick),
                    (12_000, Input::Registered(Err("no leader".into()))),
                ],
            ]
            .concat(),
            expect: "
                prerequisites H87654321
                screen 1 checking
                screen 1 declaration
                consent
                screen 1 registering
                register H87654321
                gate 1 open 3.40
                screen 1 registration_pending
                decision admitted card_valid card
                deliver macao withdrawal
                deliver mainland withdrawal
            ",
        },
        Case {
            name: "a Mainland resident enrolled without Agree is not identified for face scan",
            steps: vec![(100, identified(never_agreed.clone()))],
            expect: "
                screen 1 consent_missing_macao
                referral consent_missing_macao
                decision refused consent_missing_macao face
            ",
        },
    ]);
}

#[test]
fn consent_keys_are_stable_and_name_no_document() {
    let d = hk_card("1990-01-01");
    let a = consent_key("hq/ph/1", &d.key(), t(5));
    assert_eq!(
        a,
        consent_key("hq/ph/1", &d.key(), t(5)),
        "stable for retries"
    );
    assert_ne!(a, consent_key("hq/ph/2", &d.key(), t(5)));
    assert_ne!(a, consent_key("hq/ph/1", &d.key(), t(6)));
    assert!(!a.contains("H87654321") && a.len() < 64, "{a}");
}

/// What a completed registration writes, and what a card read of a registered traveller
/// changes in their record.
#[test]
fn registrations_write_one_person_per_face_and_records_stay_true() {
    let card = hk_card("1990-01-01");
    let (prerequisites, ok) = confirm_prerequisites(card.category, &enrolled(), &enrolled());
    assert_eq!(ok, Ok(()));
    let done = Completed {
        document: &card,
        pending: None,
        guardian_consent: None,
        prerequisites: &prerequisites,
        acknowledged_at: t(5),
        authorities: &Authority::ALL,
        channel: "hq/ph/1",
    };
    let template = || {
        clearway_gallery::Template::quantize(
            clearway_gallery::ModelId::new("sface", "2021dec"),
            &[0.5; 8],
        )
        .expect("template")
    };
    let names =
        |c: &[clearway_gallery::Command]| c.iter().map(|c| c.name()).collect::<Vec<_>>().join(" ");
    // Nobody has the face: a new person, both consents, the prerequisites as confirmed.
    let new = registration_commands(&done, template(), FaceOnRecord::Nobody).expect("new");
    let clearway_gallery::Command::Enrol { person, .. } = &new[0] else {
        panic!("{new:?}")
    };
    assert_eq!(person.registrations, prerequisites.registrations);
    assert_eq!(person.consents.len(), 2);
    // A pending minor: completed with the card's document data.
    let pending = Person {
        guardian_consent: Some(guardian()),
        ..macao_adult()
    };
    let minor = Completed {
        pending: Some(pending.id),
        ..done.clone()
    };
    let c = registration_commands(&minor, template(), FaceOnRecord::Nobody).expect("minor");
    assert_eq!(
        names(&c),
        "add_template update_document confirm_prerequisites record_consent record_consent"
    );
    // A renewed permit: the same holder's face under a new number relinks them.
    let mut holder = macao_adult();
    (holder.name, holder.date_of_birth, holder.category) =
        (card.name.clone(), card.date_of_birth, card.category);
    let c =
        registration_commands(&done, template(), FaceOnRecord::Person(&holder)).expect("relink");
    assert_eq!(
        names(&c),
        "replace_templates update_document confirm_prerequisites record_consent record_consent"
    );
    // Someone else's face: refused, an officer checks.
    assert_eq!(
        registration_commands(&done, template(), FaceOnRecord::Person(&macao_adult())),
        Err(RegistrationRefused::FaceRegisteredToAnother)
    );

    // Card reads of a registered traveller.
    let person = macao_adult();
    let (same, _) = confirm_prerequisites(
        person.category,
        &nothing(),
        &PrerequisiteStatus {
            automated_clearance: person.registrations.mainland.clone(),
            fingerprint_read_authorised_at: None,
        },
    );
    assert!(refresh_commands(&person, Some(&read(&person)), Some(&same)).is_empty());
    assert!(refresh_commands(&person, Some(&read(&person)), None).is_empty());
    let mut renewed = read(&person);
    renewed.valid_until = day("2039-12-31");
    assert_eq!(
        names(&refresh_commands(&person, Some(&renewed), None)),
        "update_document"
    );
    let (withdrawn, why) = confirm_prerequisites(person.category, &nothing(), &nothing());
    assert_eq!(
        why,
        Err(clearway_gallery::Ineligible::NotRegistered(
            Authority::Mainland
        ))
    );
    // A face passage re-confirms the prerequisites alone.
    assert!(refresh_commands(&person, None, Some(&same)).is_empty());
    assert_eq!(
        names(&refresh_commands(&person, None, Some(&withdrawn))),
        "confirm_prerequisites"
    );
    let c = refresh_commands(&person, Some(&read(&person)), Some(&withdrawn));
    assert_eq!(names(&c), "confirm_prerequisites");
    let clearway_gallery::Command::ConfirmPrerequisites { registrations, .. } = &c[0] else {
        panic!("{c:?}")
    };
    assert_eq!(
        *registrations,
        Registrations::default(),
        "a withdrawn prerequisite is removed"
    );
}

/// Seed 001's ports with one inspecting authority (an airport, a Shenzhen land port): no
/// prerequisites to ask, the consent and every inspection and record with that authority only.
#[test]
fn a_one_authority_port_clears_with_its_own_authority() {
    fn airport() -> Procedure {
        let mut p = Procedure::new(ProcedureConfig {
            channel: "hq/ph/1".into(),
            gate_confirm_timeout: Duration::from_secs(3600),
            pad: PadPolicy {
                mode: PadMode::Observe,
                ..PadPolicy::default()
            },
            authorities: vec![Authority::Mainland],
            prerequisites: false,
            ..ProcedureConfig::default()
        });
        p.handle(t(0), fresh());
        while p.poll_output().is_some() {}
        p
    }
    let consented = Person {
        registrations: Registrations::default(),
        consents: vec![ConsentRecord {
            authority: Authority::Mainland,
            kind: ConsentKind::SmartClearanceRegistration,
            given_at: t(-1),
            channel: "hq/ph/1".into(),
        }],
        ..macao_adult()
    };
    let hk = || hk_card("1990-01-01");
    check_with(
        vec![
            Case {
                name: "registered with the airport's authority: face, one inspection, one record",
                steps: vec![
                    (100, identified(consented.clone())),
                    (900, gates(1)),
                    (
                        1200,
                        Input::Gate2(Gate2Face::Face {
                            score: Some(0.66),
                            pad: None,
                        }),
                    ),
                    (1500, finger()),
                    (
                        1700,
                        verdict(Authority::Mainland, &key(1500), Ok(Verdict::Cleared)),
                    ),
                ],
                expect: "
                    gate 1 open 3.40
                    screen 1 welcome
                    decision admitted eligible face
                    gate 1 close 3.40
                    screen 2 biometrics
                    finger
                    screen 2 inspecting
                    inspect face 0.66
                    gate 2 open 3.40
                    gate 3 open 3.40
                    screen 2 cleared
                    decision cleared cleared face
                    deliver mainland clearance
                ",
            },
            Case {
                name: "registration: no prerequisites asked, the airport's authority's acknowledgement completes it",
                steps: vec![
                    (100, card(hk(), Holder::Unknown)),
                    (1_000, Input::Agree),
                    (1_100, ack(Authority::Mainland, &hk(), 1_000, Ok(()))),
                    (1_400, Input::Registered(Ok(PersonId(9)))),
                ],
                expect: "
                    screen 1 declaration
                    consent
                    screen 1 registering
                    register H87654321
                    decision registered agreed card
                    gate 1 open 3.40
                    screen 1 registered
                    decision admitted card_valid card
                ",
            },
            Case {
                name: "a failed registration is withdrawn from the airport's authority only",
                steps: vec![
                    (100, card(hk(), Holder::Unknown)),
                    (1_000, Input::Agree),
                    (
                        1_100,
                        ack(Authority::Mainland, &hk(), 1_000, Err("HTTP 503".into())),
                    ),
                ],
                expect: "
                    screen 1 declaration
                    consent
                    screen 1 registering
                    deliver mainland withdrawal
                    gate 1 open 3.40
                    screen 1 registration_failed
                    decision admitted card_valid card
                ",
            },
            Case {
                name: "a Hengqin-style record without the airport authority's consent: no face scan",
                steps: vec![(
                    100,
                    identified(Person {
                        consents: vec![ConsentRecord {
                            authority: Authority::Macao,
                            ..consented.consents[0].clone()
                        }],
                        ..consented.clone()
                    }),
                )],
                expect: "
                    screen 1 consent_missing_mainland
                    referral consent_missing_mainland
                    decision refused consent_missing_mainland face
                ",
            },
        ],
        airport,
    );
}

/// A channel held for an officer while the consent is out withdraws it: the acknowledgements
/// that come later complete nothing.
#[test]
fn a_hold_while_the_consent_is_out_withdraws_it() {
    let hk = || hk_card("1990-01-01");
    check(vec![Case {
        name: "a supervisor sends the traveller to an officer after Agree",
        steps: [
            vec![(100, card(hk(), Holder::Unknown))],
            both_hold(200, &hk()),
            vec![
                (1_000, Input::Agree),
                (1_100, ack(Authority::Macao, &hk(), 1_000, Ok(()))),
                (
                    1_200,
                    Input::Override {
                        action: OverrideAction::SendToOfficer,
                        fence: Fence { term: 3, index: 41 },
                    },
                ),
                (1_300, ack(Authority::Mainland, &hk(), 1_000, Ok(()))),
            ],
        ]
        .concat(),
        expect: "
            prerequisites H87654321
            screen 1 checking
            screen 1 declaration
            consent
            screen 1 registering
            decision referred supervisor
            referral supervisor
            deliver macao withdrawal
            deliver mainland withdrawal
            gate 1 close 3.41
            gate 2 close 3.41
            gate 3 close 3.41
            screen 1 supervisor
            screen 2 supervisor
        ",
    }]);
}

/// A registered adult identified at gate 1, walks in, is inspected and cleared by both
/// authorities (by 1750 ms).
fn face_passage_cleared_by_both() -> Vec<(i64, Input)> {
    vec![
        (100, identified(macao_adult())),
        (900, gates(1)),
        (
            1200,
            Input::Gate2(Gate2Face::Face {
                score: Some(0.66),
                pad: None,
            }),
        ),
        (1500, finger()),
        (
            1700,
            verdict(Authority::Macao, &key(1500), Ok(Verdict::Cleared)),
        ),
        (
            1750,
            verdict(Authority::Mainland, &key(1500), Ok(Verdict::Cleared)),
        ),
    ]
}

/// The records of a clearance could not be stored (the runtime withheld gates 2 and 3).
fn unwritable() -> Input {
    Input::RecordsUnwritable {
        withheld: vec![GateId::Two, GateId::Three],
    }
}

#[test]
fn no_passage_without_its_records_stored() {
    let release = |index| Input::Override {
        action: OverrideAction::Release,
        fence: Fence { term: 3, index },
    };
    check(vec![
        Case {
            name: "a clearance whose records cannot be stored: gates 2 and 3 stay shut, an officer comes",
            steps: [
                face_passage_cleared_by_both(),
                vec![
                    (1760, unwritable()),
                    // The confirmation deadline of the withheld openings passes: no gate alarm.
                    (9000, Input::Tick),
                ],
            ]
            .concat(),
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 2 biometrics
                finger
                screen 2 inspecting
                inspect face 0.66
                gate 2 open 3.40
                gate 3 open 3.40
                screen 2 cleared
                decision cleared both_cleared face
                deliver macao clearance
                deliver mainland clearance
                alarm records_unwritable
                decision referred records_unwritable face
                referral records_unwritable
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 records_unwritable
                screen 2 records_unwritable
            ",
        },
        Case {
            name: "the disk fills as a cleared traveller walks out: he leaves, nobody follows",
            steps: [
                face_passage_cleared_by_both(),
                vec![
                    (1800, Input::RecordsUnwritable { withheld: vec![] }),
                    (4000, gates(0)),
                ],
            ]
            .concat(),
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 2 biometrics
                finger
                screen 2 inspecting
                inspect face 0.66
                gate 2 open 3.40
                gate 3 open 3.40
                screen 2 cleared
                decision cleared both_cleared face
                deliver macao clearance
                deliver mainland clearance
                alarm records_unwritable
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 records_unwritable
            ",
        },
        Case {
            name: "while records cannot be stored nobody starts a passage, by face or card; then all is normal",
            steps: vec![
                (0, fresh()),
                (10, Input::RecordsUnwritable { withheld: vec![] }),
                (20, identified(macao_adult())),
                (30, card(read(&macao_adult()), Holder::Unknown)),
                (5000, Input::RecordsUnwritable { withheld: vec![] }),
                (6000, Input::RecordsWritable),
                (6100, identified(macao_adult())),
            ],
            expect: "
                alarm records_unwritable
                screen 1 records_unwritable
                decision refused records_unwritable card
                screen 1 ready
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
            ",
        },
        Case {
            name: "the held channel is released while records still cannot be stored: still no passage",
            steps: vec![
                (100, identified(macao_adult())),
                (900, gates(1)),
                (1000, unwritable()),
                (2000, gates(0)),
                (3000, release(60)),
                (3100, identified(macao_adult())),
                (4000, Input::RecordsWritable),
                (4100, identified(macao_adult())),
            ],
            expect: "
                gate 1 open 3.40
                screen 1 welcome
                decision admitted eligible face
                gate 1 close 3.40
                screen 2 biometrics
                finger
                alarm records_unwritable
                decision referred records_unwritable face
                referral records_unwritable
                gate 1 close 3.40
                gate 2 close 3.40
                gate 3 close 3.40
                screen 1 records_unwritable
                screen 2 records_unwritable
                screen 1 records_unwritable
                screen 1 ready
                gate 1 open 3.60
                screen 1 welcome
                decision admitted eligible face
            ",
        },
    ]);
    // Face scan is off while records cannot be stored, and back after.
    let mut p = procedure();
    run(
        &mut p,
        vec![
            (0, fresh()),
            (10, Input::RecordsUnwritable { withheld: vec![] }),
        ],
    );
    assert!(!p.wants_gate1_faces());
    assert!(!p.view().face_scan);
    assert!(p.view().records_unwritable);
    run(&mut p, vec![(20, Input::RecordsWritable)]);
    assert!(p.wants_gate1_faces());
    assert!(!p.view().records_unwritable);
}

/// The procedure with PAD enforcing: 3 bona fide of the latest 5 verdicts open gate 1, 4
/// attacks in a row raise the alarm.
fn enforcing() -> Procedure {
    let mut p = Procedure::new(ProcedureConfig {
        channel: "hq/ph/1".into(),
        gate_confirm_timeout: Duration::from_secs(3600),
        pad: PadPolicy {
            mode: PadMode::Enforce,
            window: 5,
            required: 3,
            alarm_after: 4,
        },
        ..ProcedureConfig::default()
    });
    p.handle(t(0), fresh());
    while p.poll_output().is_some() {}
    p
}

/// A gate-1 frame of `person` identified, with a PAD verdict.
fn seen(person: Person, pad: Option<PadVerdict>) -> Input {
    let Input::Gate1(scan) = identified(person) else {
        unreachable!()
    };
    Input::Gate1(FaceScan { pad, ..scan })
}

fn nobody() -> Input {
    Input::Gate1(FaceScan {
        faces_in_zone: 0,
        face: None,
        pad: None,
    })
}

/// Gate 1 asks the traveller to look at the camera until enough bona fide frames came, then
/// opens.
const ASKED_THEN_ADMITTED: &str = "
    screen 1 look_at_camera
    gate 1 open 3.40
    screen 1 welcome
    decision admitted eligible face
";

#[test]
fn presentation_attack_detection() {
    use PadVerdict::{Attack, BonaFide};
    let live = || seen(macao_adult(), Some(BonaFide));
    let attack = || seen(macao_adult(), Some(Attack));
    check_with(
        vec![
            Case {
                name: "a live traveller: gate 1 opens at the third bona fide frame, not before",
                steps: vec![(100, live()), (150, live()), (200, live())],
                expect: ASKED_THEN_ADMITTED,
            },
            Case {
                name: "a photo held up: never opens; the fourth attack in a row raises the alarm, \
                       the screen only asks to look at the camera",
                steps: (1..=9).map(|i| (i * 50, attack())).collect(),
                expect: "
                    screen 1 look_at_camera
                    alarm presentation_attack
                    alarm presentation_attack
                ",
            },
            Case {
                name: "one attack frame among bona fide ones still opens (3 of the latest 5)",
                steps: vec![(100, live()), (150, attack()), (200, live()), (250, live())],
                expect: ASKED_THEN_ADMITTED,
            },
            Case {
                name: "a photo of a registered person who may not use face scan: asked to look \
                       at the camera, not told why face scan is refused (that is theirs to read)",
                steps: vec![
                    (100, seen(mainland_expired_endorsement(), Some(Attack))),
                    (150, seen(mainland_expired_endorsement(), Some(Attack))),
                ],
                expect: "screen 1 look_at_camera",
            },
            Case {
                name: "the same person live is told why, after enough bona fide frames",
                steps: vec![
                    (100, seen(mainland_expired_endorsement(), Some(BonaFide))),
                    (150, seen(mainland_expired_endorsement(), Some(BonaFide))),
                    (200, seen(mainland_expired_endorsement(), Some(BonaFide))),
                ],
                expect: "
                    screen 1 look_at_camera
                    screen 1 endorsement_expired
                    referral endorsement_expired
                    decision refused endorsement_expired face
                ",
            },
            Case {
                name: "no PAD verdict (the model failed on the frame) is not bona fide",
                steps: vec![
                    (100, seen(macao_adult(), None)),
                    (150, seen(macao_adult(), None)),
                    (200, seen(macao_adult(), None)),
                ],
                expect: "screen 1 look_at_camera",
            },
            Case {
                name: "the face leaving the zone forgets its verdicts",
                steps: vec![
                    (100, live()),
                    (150, live()),
                    (200, nobody()),
                    (250, live()),
                    (300, live()),
                ],
                expect: "screen 1 look_at_camera",
            },
            Case {
                name: "gate 2 ignores a face PAD judged an attack; a bona fide one verifies",
                steps: vec![
                    (100, live()),
                    (150, live()),
                    (200, live()),
                    (900, gates(1)),
                    (
                        1200,
                        Input::Gate2(Gate2Face::Face {
                            score: Some(0.66),
                            pad: Some(Attack),
                        }),
                    ),
                    (1250, finger()),
                    (
                        1300,
                        Input::Gate2(Gate2Face::Face {
                            score: Some(0.66),
                            pad: Some(BonaFide),
                        }),
                    ),
                ],
                expect: "
                    screen 1 look_at_camera
                    gate 1 open 3.40
                    screen 1 welcome
                    decision admitted eligible face
                    gate 1 close 3.40
                    screen 2 biometrics
                    finger
                    screen 2 inspecting
                    inspect face 0.66
                ",
            },
        ],
        enforcing,
    );
    // Observing, the same photo is admitted at its first frame and raises no alarm.
    check(vec![Case {
        name: "observe mode changes nothing",
        steps: vec![(100, attack())],
        expect: "
            gate 1 open 3.40
            screen 1 welcome
            decision admitted eligible face
        ",
    }]);
    assert_eq!(enforcing().view().pad, PadMode::Enforce);
    assert_eq!(procedure().view().pad, PadMode::Observe);
    assert_eq!(ProcedureConfig::default().pad.mode, PadMode::Enforce);
}
