use chrono::TimeZone;
use expect_test::{Expect, expect};

use super::*;
use crate::{ModelId, PersonId};

fn draft(action: &str, target: &str, reason: &str) -> AuditDraft {
    AuditDraft {
        actor: "wong".into(),
        role: "supervisor".into(),
        action: action.into(),
        target: target.into(),
        reason: reason.into(),
        reason_salt: "5a".repeat(16),
        ops_digest: String::new(),
        signature: None,
        at: Utc
            .with_ymd_and_hms(2026, 11, 22, 9, 30, 0)
            .single()
            .expect("valid time"),
    }
}

fn lock(channel: &str) -> Op {
    Op::Order {
        channel: channel.into(),
        action: OverrideAction::Gate {
            gate: GateId::One,
            action: GateAction::Lock,
        },
    }
}

/// Applies batches (term 3, log index 10, 11, …) and renders each batch's outcomes, then the
/// ledger's view.
fn check(batches: Vec<Vec<Op>>, expected: Expect) {
    let mut ledger = Ledger::default();
    let mut registry = Registry::new(ModelId::new("sface", "2021dec"), 8).expect("registry");
    let mut out = String::new();
    for (n, mut ops) in batches.into_iter().enumerate() {
        set_ops_digest(&mut ops);
        let mut changes = Vec::new();
        let mut lc = LedgerChanges::default();
        let outcomes = ledger.apply(ops, 3, 10 + n as u64, &mut registry, &mut changes, &mut lc);
        for o in outcomes {
            let line = match o {
                Outcome::Audited { seq, hash } => format!("audited #{seq} {}…", &hash[..8]),
                other => format!("{other:?}"),
            };
            out.push_str(&format!("{}: {line}\n", 10 + n));
        }
        out.push_str(&format!(
            "   changes: gallery {changes:?}, audit {:?}, view {}\n",
            lc.audit
                .iter()
                .map(|r| match &r.refused {
                    None => format!("#{} applied", r.seq),
                    Some(code) => format!("#{} refused {code}", r.seq),
                })
                .collect::<Vec<_>>(),
            lc.view
        ));
    }
    for (channel, lane) in &ledger.view().lanes {
        out.push_str(&format!(
            "lane {channel}: mode {:?}\n",
            lane.mode.map(|m| m.as_str())
        ));
        for o in &lane.orders {
            out.push_str(&format!(
                "  order {} at {}.{} (audit #{})\n",
                o.action.name(),
                o.term,
                o.index,
                o.audit_seq
            ));
        }
    }
    for (c, k, t) in &ledger.view().acked_alarms {
        out.push_str(&format!("acked {c} {k} {t}\n"));
    }
    out.push_str(&format!("audit records: {}\n", ledger.view().audit_len));
    expected.assert_eq(&out);
    verify_chain(ledger.audit()).expect("the trail the ledger wrote verifies");
}

#[test]
fn orders_modes_and_acks_are_recorded_with_their_audit_record() {
    check(
        vec![
            vec![
                Op::Audit(draft(
                    "order.gate_lock",
                    "hengqin/passenger/1",
                    "fight in queue",
                )),
                lock("hengqin/passenger/1"),
            ],
            vec![
                Op::Audit(draft("face_scan.pilot", "hengqin", "pilot stage")),
                Op::SetMode {
                    channels: vec!["hengqin/passenger/1".into(), "hengqin/passenger/2".into()],
                    mode: LaneMode::FaceAndCard,
                },
            ],
            vec![
                Op::Audit(draft("alarm.ack", "hengqin/passenger/2", "camera cleaned")),
                Op::AckAlarm {
                    channel: "hengqin/passenger/2".into(),
                    alarm: "camera_down".into(),
                    since_ms: 1_790_000_000_000,
                },
            ],
        ],
        expect![[r##"
            10: audited #0 2078c9ba…
            10: Ordered
               changes: gallery [], audit ["#0 applied"], view true
            11: audited #1 818eb12a…
            11: Ordered
               changes: gallery [], audit ["#1 applied"], view true
            12: audited #2 70cb2306…
            12: Ordered
               changes: gallery [], audit ["#2 applied"], view true
            lane hengqin/passenger/1: mode Some("face_and_card")
              order gate_lock at 3.10 (audit #0)
              order mode at 3.11 (audit #1)
            lane hengqin/passenger/2: mode Some("face_and_card")
              order mode at 3.11 (audit #1)
            acked hengqin/passenger/2 camera_down 1790000000000
            audit records: 3
        "##]],
    );
}

#[test]
fn a_batch_without_exactly_one_valid_audit_record_changes_nothing() {
    check(
        vec![
            vec![lock("hengqin/passenger/1")],
            vec![
                Op::Audit(draft("order.gate_lock", "x", "a")),
                Op::Audit(draft("order.gate_lock", "x", "b")),
            ],
            vec![
                Op::Audit(draft("order.gate_lock", "hengqin/passenger/1", "  ")),
                lock("hengqin/passenger/1"),
            ],
            vec![
                Op::Audit(draft("order.gate_lock", "hengqin/passenger/1", "ok")),
                lock(""),
            ],
            vec![
                Op::Audit(draft("face_scan.all", "hengqin", "go")),
                Op::SetMode {
                    channels: vec![],
                    mode: LaneMode::FaceAndCard,
                },
            ],
            vec![
                Op::Audit(draft("cancel", "P00000009", "traveller asked")),
                Op::Gallery(Command::Cancel {
                    person: PersonId(9),
                }),
            ],
        ],
        expect![[r##"
            10: Refused { code: "bad_batch", reason: "a console change needs exactly one audit record; this one has 0" }
               changes: gallery [], audit [], view false
            11: Refused { code: "bad_batch", reason: "a console change needs exactly one audit record; this one has 2" }
            11: Refused { code: "bad_batch", reason: "a console change needs exactly one audit record; this one has 2" }
               changes: gallery [], audit [], view false
            12: Refused { code: "bad_batch", reason: "the reason is empty" }
            12: Refused { code: "bad_batch", reason: "the reason is empty" }
               changes: gallery [], audit [], view false
            13: Refused { code: "bad_batch", reason: "the channel is empty" }
            13: Refused { code: "bad_batch", reason: "the channel is empty" }
               changes: gallery [], audit [], view false
            14: Refused { code: "bad_batch", reason: "a mode change names 1 to 1024 channels, not 0" }
            14: Refused { code: "bad_batch", reason: "a mode change names 1 to 1024 channels, not 0" }
               changes: gallery [], audit [], view false
            15: audited #0 6a9893bd…
            15: Refused { code: "unknown_person", reason: "no person P00000009 is registered" }
               changes: gallery [], audit ["#0 refused unknown_person"], view false
            audit records: 1
        "##]],
    );
}

#[test]
fn only_the_newest_orders_are_kept() {
    let mut ledger = Ledger::default();
    let mut registry = Registry::new(ModelId::new("sface", "2021dec"), 8).expect("registry");
    for i in 0..(ORDERS_KEPT as u64 + 5) {
        let mut ops = vec![Op::Audit(draft("order.gate_lock", "c", "r")), lock("c")];
        set_ops_digest(&mut ops);
        ledger.apply(
            ops,
            1,
            i,
            &mut registry,
            &mut Vec::new(),
            &mut LedgerChanges::default(),
        );
    }
    let orders = &ledger.lane("c").expect("lane").orders;
    assert_eq!(orders.len(), ORDERS_KEPT);
    assert_eq!(orders.first().map(|o| o.index), Some(5));
    assert_eq!(orders.last().map(|o| o.index), Some(ORDERS_KEPT as u64 + 4));
}

/// Builds a trail of `n` records through the ledger.
fn trail(n: usize) -> Vec<AuditRecord> {
    let mut ledger = Ledger::default();
    let mut registry = Registry::new(ModelId::new("sface", "2021dec"), 8).expect("registry");
    for i in 0..n {
        let mut ops = vec![
            Op::Audit(draft("order.release", "c", &format!("reason {i}"))),
            Op::Order {
                channel: "c".into(),
                action: OverrideAction::Release,
            },
        ];
        set_ops_digest(&mut ops);
        ledger.apply(
            ops,
            1,
            100 + i as u64,
            &mut registry,
            &mut Vec::new(),
            &mut LedgerChanges::default(),
        );
    }
    ledger.audit().to_vec()
}

#[test]
fn verify_chain_finds_every_kind_of_break() {
    let good = trail(5);
    assert_eq!(verify_chain(&good), Ok(()));
    assert_eq!(verify_chain(&[]), Ok(()));

    let cases: Vec<(&str, Box<dyn Fn(&mut Vec<AuditRecord>)>)> = vec![
        (
            "reason edited",
            Box::new(|t| {
                if let Some(r) = &mut t[2].reason {
                    r.text = "nothing to see".into();
                }
            }),
        ),
        (
            "actor edited",
            Box::new(|t| t[3].entry.actor = "someone".into()),
        ),
        (
            "record removed",
            Box::new(|t| {
                t.remove(1);
            }),
        ),
        (
            "record removed and renumbered",
            Box::new(|t| {
                t.remove(1);
                for (i, r) in t.iter_mut().enumerate() {
                    r.seq = i as u64;
                }
            }),
        ),
        (
            "rehashed after an edit",
            Box::new(|t| {
                t[1].entry.action = "rewritten".into();
                t[1].hash =
                    AuditRecord::compute_hash(t[1].seq, t[1].index, &t[1].prev, &t[1].entry);
            }),
        ),
        (
            "first record's link changed",
            Box::new(|t| t[0].prev = "ff".repeat(32)),
        ),
        (
            "time shifted",
            Box::new(|t| t[4].entry.at += chrono::Duration::seconds(1)),
        ),
        (
            "signature stripped",
            Box::new(|t| {
                t[0].entry.signature = Some(AuditSignature {
                    certificate: vec![1],
                    scheme: 0x0403,
                    signature: vec![2],
                })
            }),
        ),
        ("reason erased", Box::new(|t| t[2].reason = None)),
    ];
    let mut out = String::new();
    for (name, tamper) in cases {
        let mut t = good.clone();
        tamper(&mut t);
        let got = match verify_chain(&t) {
            Ok(()) => "verifies".to_string(),
            Err(e) => e.to_string(),
        };
        out.push_str(&format!("{name}: {got}\n"));
    }
    expect![[r#"
        reason edited: audit chain broken at record 2: its reason does not match the reason's commitment (the text was changed)
        actor edited: audit chain broken at record 3: its contents do not match its hash (the record was changed)
        record removed: audit chain broken at record 1: expected record 1, found record 2
        record removed and renumbered: audit chain broken at record 1: it does not carry the previous record's hash (a record before it was changed or removed)
        rehashed after an edit: audit chain broken at record 2: it does not carry the previous record's hash (a record before it was changed or removed)
        first record's link changed: audit chain broken at record 0: it does not carry the previous record's hash (a record before it was changed or removed)
        time shifted: audit chain broken at record 4: its contents do not match its hash (the record was changed)
        signature stripped: audit chain broken at record 0: its contents do not match its hash (the record was changed)
        reason erased: verifies
    "#]]
    .assert_eq(&out);
}

#[test]
fn a_ledger_rebuilt_from_parts_keeps_its_trail_as_stored() {
    let good = trail(3);
    let ledger = Ledger::from_parts(LedgerView::default(), good.clone(), Default::default());
    assert_eq!(ledger.view().audit_len, 3);
    assert_eq!(ledger.view().audit_head, good[2].hash);
    assert_eq!(verify_chain(ledger.audit()), Ok(()));
    let mut bad = good;
    bad[1].entry.target = "other".into();
    let ledger = Ledger::from_parts(LedgerView::default(), bad, Default::default());
    assert_eq!(verify_chain(ledger.audit()).map_err(|b| b.seq), Err(1));
}

#[test]
fn orders_round_trip_through_postcard() {
    // The log stores ops with postcard, which cannot read internally tagged enums.
    let ops = vec![
        lock("c"),
        Op::Order {
            channel: "c".into(),
            action: OverrideAction::Mode {
                mode: LaneMode::CardOnly,
            },
        },
        Op::Order {
            channel: "c".into(),
            action: OverrideAction::SendToOfficer,
        },
        Op::Audit(draft("a", "t", "r")),
    ];
    let bytes = postcard::to_stdvec(&ops).expect("encodes");
    let back: Vec<Op> = postcard::from_bytes(&bytes).expect("decodes");
    assert_eq!(back, ops);
}

#[test]
fn a_batch_whose_operations_differ_from_its_record_changes_nothing() {
    let mut ledger = Ledger::default();
    let mut registry = Registry::new(ModelId::new("sface", "2021dec"), 8).expect("registry");
    let mut ops = vec![
        Op::Audit(draft("order.gate_lock", "hengqin/passenger/1", "fight")),
        lock("hengqin/passenger/1"),
    ];
    set_ops_digest(&mut ops);
    // A node swaps the signed lock for an open.
    ops[1] = Op::Order {
        channel: "hengqin/passenger/1".into(),
        action: OverrideAction::Gate {
            gate: GateId::One,
            action: GateAction::Open,
        },
    };
    let mut lc = LedgerChanges::default();
    let outcomes = ledger.apply(ops, 1, 1, &mut registry, &mut Vec::new(), &mut lc);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Refused { code, .. } if code == "bad_batch")),
        "{outcomes:?}"
    );
    assert_eq!(ledger.view().audit_len, 0);
    assert!(ledger.lane("hengqin/passenger/1").is_none());
}

#[test]
fn cancelling_a_person_erases_the_reasons_that_concern_them_and_the_trail_still_verifies() {
    use crate::{Category, NewPerson, Registrations, Template, TravelDocument};
    let mut ledger = Ledger::default();
    let model = ModelId::new("sface", "2021dec");
    let mut registry = Registry::new(model.clone(), 8).expect("registry");
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date");
    let person = |number: &str| NewPerson {
        name: "Chan Tai Man".into(),
        date_of_birth: day(1980, 1, 1),
        category: Category::MacaoResident,
        document: TravelDocument {
            kind: Category::MacaoResident.document_kind(),
            number: number.into(),
            valid_from: day(2020, 1, 1),
            valid_until: day(2035, 1, 1),
        },
        endorsement: None,
        registrations: Registrations::default(),
        consents: vec![],
        guardian_consent: None,
    };
    let batches = vec![
        (
            draft("enrol", "gallery", "desk enrolment"),
            vec![Op::Gallery(Command::Enrol {
                person: person("H1234567"),
                templates: vec![Template::quantize(model.clone(), &[0.5; 8]).expect("template")],
            })],
        ),
        (
            draft(
                "guardian_consent",
                "P00000001",
                "mother Chan Siu Ling signed",
            ),
            vec![],
        ),
        (
            draft("enrol", "hengqin", "minor, father Chan Kin present"),
            vec![Op::Gallery(Command::Enrol {
                person: person("H7654321"),
                templates: vec![Template::quantize(model.clone(), &[0.25; 8]).expect("template")],
            })],
        ),
        (
            draft("cancel", "P00000002", "withdrawn by his father"),
            vec![Op::Gallery(Command::Cancel {
                person: PersonId(2),
            })],
        ),
        (
            draft("order.release", "c", "queue cleared"),
            vec![lock("c")],
        ),
        (
            draft("cancel", "P00000001", "Chan Tai Man asked at the desk"),
            vec![Op::Gallery(Command::Cancel {
                person: PersonId(1),
            })],
        ),
    ];
    let mut erased = Vec::new();
    for (n, (d, rest)) in batches.into_iter().enumerate() {
        let mut ops = vec![Op::Audit(d)];
        ops.extend(rest);
        set_ops_digest(&mut ops);
        let mut lc = LedgerChanges::default();
        let outcomes = ledger.apply(
            ops,
            1,
            n as u64 + 1,
            &mut registry,
            &mut Vec::new(),
            &mut lc,
        );
        assert!(
            !outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Refused { .. })),
            "{outcomes:?}"
        );
        erased.extend(lc.reasons_erased);
    }
    assert_eq!(
        erased,
        vec![2, 3, 0, 1, 5],
        "the records about each cancelled person lose their reasons, those enrolling them too"
    );
    let texts: Vec<Option<&str>> = ledger
        .audit()
        .iter()
        .map(AuditRecord::reason_text)
        .collect();
    assert_eq!(
        texts,
        vec![None, None, None, None, Some("queue cleared"), None]
    );
    assert_eq!(verify_chain(ledger.audit()), Ok(()));
    let stored = format!("{:?}", ledger.audit());
    assert!(!stored.contains("Chan"), "{stored}");
}
