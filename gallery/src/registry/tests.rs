use chrono::NaiveDate;
use expect_test::expect;

use super::*;
use crate::{ConsentKind, Registration};
use std::collections::BTreeMap;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn model() -> ModelId {
    ModelId::new("sface", "2021dec")
}

/// A unit-ish vector that is distinct per seed.
fn template(seed: u32) -> Template {
    let v: Vec<f32> = (0..8)
        .map(|i| {
            (((seed * 31 + i * 7) % 17) as f32 - 8.0) / 8.0 + if i == seed % 8 { 3.0 } else { 0.0 }
        })
        .collect();
    Template::quantize(model(), &v).expect("valid vector")
}

fn macao(number: &str) -> NewPerson {
    NewPerson {
        name: format!("Resident {number}"),
        date_of_birth: day(1990, 1, 2),
        category: Category::MacaoResident,
        document: TravelDocument {
            kind: Category::MacaoResident.document_kind(),
            number: number.to_string(),
            valid_from: day(2020, 1, 1),
            valid_until: day(2030, 1, 1),
        },
        endorsement: None,
        registrations: Registrations::default(),
        consents: vec![],
        guardian_consent: None,
    }
}

/// Applies commands in order and renders outcomes and changes, one line per command.
fn trace(registry: &mut Registry, commands: Vec<Command>) -> String {
    let mut out = String::new();
    for c in commands {
        let name = c.name();
        let mut changes = Vec::new();
        let outcome = registry.apply(c, &mut changes);
        out.push_str(&format!("{name}: {outcome:?} {changes:?}\n"));
    }
    out
}

#[test]
fn commands_apply_in_order_with_deterministic_ids() {
    let mut r = Registry::new(model(), 8).expect("registry");
    let consent = ConsentRecord {
        authority: Authority::Macao,
        kind: ConsentKind::SmartClearanceRegistration,
        given_at: day(2026, 11, 1)
            .and_hms_opt(9, 0, 0)
            .expect("time")
            .and_utc(),
        channel: "hengqin/passenger/12".into(),
    };
    let got = trace(
        &mut r,
        vec![
            Command::Enrol {
                person: macao("1234567(8)"),
                templates: vec![template(1)],
            },
            Command::Enrol {
                person: macao("7654321(0)"),
                templates: vec![template(2)],
            },
            // A retried enrolment of the same document is answered, not duplicated.
            Command::Enrol {
                person: macao("1234567(8)"),
                templates: vec![template(1)],
            },
            Command::Enrol {
                person: macao("5555555(5)"),
                templates: vec![],
            },
            Command::Enrol {
                person: macao("5555555(5)"),
                templates: (0..9).map(template).collect(),
            },
            Command::AddTemplate {
                person: PersonId(1),
                template: template(3),
            },
            Command::RecordConsent {
                person: PersonId(1),
                consent: consent.clone(),
            },
            Command::RecordConsent {
                person: PersonId(1),
                consent,
            },
            Command::Register {
                person: PersonId(2),
                authority: Authority::Mainland,
                registration: Registration {
                    registered_at: day(2026, 11, 2)
                        .and_hms_opt(10, 0, 0)
                        .expect("time")
                        .and_utc(),
                    location: "Hengqin Port".into(),
                },
            },
            Command::Cancel {
                person: PersonId(2),
            },
            Command::Cancel {
                person: PersonId(2),
            },
            Command::AddTemplate {
                person: PersonId(9),
                template: template(4),
            },
            Command::Enrol {
                person: macao("7654321(0)"),
                templates: vec![template(2)],
            },
        ],
    );
    expect![[r#"
        enrol: Enrolled(PersonId(1)) [Put(PersonId(1))]
        enrol: Enrolled(PersonId(2)) [Put(PersonId(2))]
        enrol: AlreadyEnrolled(PersonId(1)) []
        enrol: Refused { code: "no_template", reason: "at least one face template is required" } []
        enrol: Refused { code: "too_many_templates", reason: "a person holds at most 8 templates" } []
        add_template: Updated(PersonId(1)) [Put(PersonId(1))]
        record_consent: Updated(PersonId(1)) [Put(PersonId(1))]
        record_consent: Updated(PersonId(1)) [Put(PersonId(1))]
        register: Updated(PersonId(2)) [Put(PersonId(2))]
        cancel: Cancelled(PersonId(2)) [Erase(PersonId(2)), Notice(NoticeId { index: 0, person: PersonId(2) })]
        cancel: Refused { code: "unknown_person", reason: "no person P00000002 is registered" } []
        add_template: Refused { code: "unknown_person", reason: "no person P00000009 is registered" } []
        enrol: Enrolled(PersonId(3)) [Put(PersonId(3))]
    "#]]
    .assert_eq(&got);
    assert_eq!(
        r.get(PersonId(1)).unwrap().map(|e| e.templates.len()),
        Some(2)
    );
    assert_eq!(
        r.get(PersonId(1)).unwrap().map(|e| e.person.consents.len()),
        Some(1)
    );
    assert_eq!(r.index().len(), 3, "two templates of P1, one of P3");
    assert_eq!(
        r.find_document(Category::MacaoResident.document_kind(), "7654321(0)")
            .unwrap(),
        Some(PersonId(3))
    );
}

#[test]
fn cancelled_person_is_never_found() {
    let mut r = Registry::new(model(), 8).expect("registry");
    let mut changes = Vec::new();
    r.apply(
        Command::Enrol {
            person: macao("A"),
            templates: vec![template(5)],
        },
        &mut changes,
    );
    let probe = template(5).dequantize();
    assert_eq!(
        r.index().search(&probe, 1).expect("search")[0].person,
        PersonId(1)
    );
    r.apply(
        Command::Cancel {
            person: PersonId(1),
        },
        &mut changes,
    );
    assert!(r.index().search(&probe, 1).expect("search").is_empty());
    assert!(r.get(PersonId(1)).unwrap().is_none());
    assert_eq!(
        r.find_document(Category::MacaoResident.document_kind(), "A")
            .unwrap(),
        None
    );
}

#[test]
fn a_cancellation_leaves_a_notice_until_delivered() {
    let mut r = Registry::new(model(), 8).expect("registry");
    let mut changes = Vec::new();
    r.apply(
        Command::Enrol {
            person: macao("1234567(8)"),
            templates: vec![template(5)],
        },
        &mut changes,
    );
    let at: chrono::DateTime<chrono::Utc> = "2026-03-01T09:30:00Z".parse().expect("time");
    r.begin_batch(41, Some(at));
    changes.clear();
    r.apply(
        Command::Cancel {
            person: PersonId(1),
        },
        &mut changes,
    );
    let id = NoticeId {
        index: 41,
        person: PersonId(1),
    };
    assert_eq!(changes, [Change::Erase(PersonId(1)), Change::Notice(id)]);
    let notice = r.notice(id).expect("a notice for the authorities").clone();
    assert_eq!(notice.number, "1234567(8)");
    assert_eq!(notice.kind, Category::MacaoResident.document_kind());
    assert_eq!(notice.cancelled_at, Some(at));

    // Snapshots carry it: a replica that installs one delivers it too.
    let copy = Registry::from_image(model(), 8, r.image().unwrap()).expect("from image");
    assert_eq!(copy.notice(id), Some(&notice));
    assert_eq!(
        postcard::to_stdvec(&r.image_ref()).expect("ref"),
        postcard::to_stdvec(&r.image().unwrap()).expect("image"),
        "the borrowed image serialises like the owned one"
    );

    // Delivered: gone, and a second lane's report of the same delivery changes nothing.
    changes.clear();
    let outcome = r.apply(Command::NoticeDelivered { notice: id }, &mut changes);
    assert_eq!(outcome, Outcome::Ordered);
    assert_eq!(changes, [Change::Notice(id)]);
    assert!(r.notice(id).is_none());
    changes.clear();
    let again = r.apply(Command::NoticeDelivered { notice: id }, &mut changes);
    assert_eq!(again, Outcome::Ordered);
    assert!(changes.is_empty());
    assert_eq!(r.notices().count(), 0);
}

#[test]
fn refused_commands_change_nothing() {
    let mut r = Registry::new(model(), 8).expect("registry");
    let mut bad = macao("B");
    bad.name = "  ".into();
    let mut changes = Vec::new();
    let outcome = r.apply(
        Command::Enrol {
            person: bad,
            templates: vec![template(1)],
        },
        &mut changes,
    );
    assert!(matches!(outcome, Outcome::Refused { ref code, .. } if code == "missing_field"));
    assert!(changes.is_empty());
    assert_eq!(r.next_id(), 1, "a refused enrolment does not use up an id");
    assert!(r.is_empty());
}

#[test]
fn image_round_trips_and_replicas_agree() {
    let commands: Vec<Command> = (0..50u32)
        .map(|i| Command::Enrol {
            person: macao(&format!("D{i}")),
            templates: vec![template(i)],
        })
        .chain([Command::Cancel {
            person: PersonId(7),
        }])
        .collect();
    let mut a = Registry::new(model(), 8).expect("registry");
    let mut b = Registry::new(model(), 8).expect("registry");
    let mut changes = Vec::new();
    for c in &commands {
        a.apply(c.clone(), &mut changes);
        b.apply(c.clone(), &mut changes);
    }
    let image = a.image().unwrap();
    let bytes = postcard::to_stdvec(&image).expect("serialise");
    assert_eq!(
        bytes,
        postcard::to_stdvec(&b.image().unwrap()).expect("serialise"),
        "identical replicas"
    );
    let back: RegistryImage = postcard::from_bytes(&bytes).expect("deserialise");
    let c = Registry::from_image(model(), 8, back).expect("restore");
    assert_eq!(c.image().unwrap(), image);
    assert_eq!(c.next_id(), 51);
    assert_eq!(c.index().len(), 49);
}

#[test]
fn restoring_a_person_again_replaces_their_templates_and_document() {
    let mut r = Registry::new(model(), 8).expect("registry");
    let entry = |number: &str, seeds: &[u32]| Entry {
        person: macao(number).into_person(PersonId(1)),
        templates: seeds.iter().map(|&s| template(s)).collect(),
    };
    r.restore(entry("A1", &[1, 2])).expect("first");
    r.restore(entry("B2", &[3]))
        .expect("again, renewed document");
    assert_eq!(r.len(), 1);
    assert_eq!(
        r.index().len(),
        1,
        "the old templates are gone from the index"
    );
    assert_eq!(
        r.find_document(Category::MacaoResident.document_kind(), "A1")
            .unwrap(),
        None
    );
    assert_eq!(
        r.find_document(Category::MacaoResident.document_kind(), "B2")
            .unwrap(),
        Some(PersonId(1))
    );
    let hits = r
        .index()
        .search(&template(3).dequantize(), 2)
        .expect("search");
    assert_eq!(
        hits.iter().map(|h| h.person).collect::<Vec<_>>(),
        vec![PersonId(1)]
    );
    // Another person with the freed document is now fine.
    let mut other = entry("A1", &[4]);
    other.person = macao("A1").into_person(PersonId(2));
    r.restore(other).expect("the old document is free");
    assert_eq!(r.index().len(), 2);
}

#[test]
fn restore_refuses_a_document_held_by_another_person() {
    let mut r = Registry::new(model(), 8).expect("registry");
    let a = Entry {
        person: macao("X").into_person(PersonId(1)),
        templates: vec![template(1)],
    };
    let b = Entry {
        person: macao("X").into_person(PersonId(2)),
        templates: vec![template(2)],
    };
    r.restore(a).expect("first");
    let err = r.restore(b).expect_err("duplicate");
    assert_eq!(err.code(), "duplicate_document");
}

#[test]
fn requests_are_versioned_on_the_wire() {
    let req = Request::V1(vec![Command::Cancel {
        person: PersonId(3),
    }]);
    let bytes = postcard::to_stdvec(&req).expect("serialise");
    // Variant 0 (V1), one command, variant 6 (Cancel), id 3: the layout is part of the log format.
    assert_eq!(bytes, [0, 1, 6, 3]);
    // Variant 1 (V2), no ops: console changes.
    assert_eq!(
        postcard::from_bytes::<Request>(&[1, 0]),
        Ok(Request::V2(vec![]))
    );
    assert!(
        postcard::from_bytes::<Request>(&[2, 0]).is_err(),
        "unknown version refused"
    );
}

/// Seed 000, minors: the guardian's consent is recorded at a service location before any face is
/// captured (enrolled without templates, not searchable); the channel registration adds the face.
#[test]
fn a_minor_approved_at_a_service_location_is_enrolled_without_a_face() {
    let mut r = Registry::new(model(), 8).expect("registry");
    let mut minor = macao("1234567(8)");
    minor.date_of_birth = day(2010, 6, 1);
    minor.guardian_consent = Some(GuardianConsent {
        guardian_name: "Parent".into(),
        guardian_document: "Macao resident identity card 1234567(8)".into(),
        relationship_proof: "birth certificate".into(),
        service_location: "Qingmao Checkpoint".into(),
        given_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
    });
    let mut no_consent = macao("2345678(9)");
    no_consent.date_of_birth = day(2010, 6, 1);
    let out = trace(
        &mut r,
        vec![
            Command::Enrol {
                person: minor,
                templates: vec![],
            },
            Command::Enrol {
                person: no_consent,
                templates: vec![],
            },
        ],
    );
    expect![[r#"
        enrol: Enrolled(PersonId(1)) [Put(PersonId(1))]
        enrol: Refused { code: "no_template", reason: "at least one face template is required" } []
    "#]]
    .assert_eq(&out);
    assert_eq!(
        r.index().len(),
        0,
        "nothing searchable before the face is added"
    );
    let out = trace(
        &mut r,
        vec![Command::AddTemplate {
            person: PersonId(1),
            template: template(1),
        }],
    );
    assert_eq!(
        out,
        "add_template: Updated(PersonId(1)) [Put(PersonId(1))]\n"
    );
    assert_eq!(r.index().len(), 1);
}

#[test]
fn documents_are_kept_true_renewals_relink_and_prerequisites_are_replaced() {
    let mut r = Registry::new(model(), 8).expect("registry");
    let renewed = |number: &str, until: NaiveDate| TravelDocument {
        kind: Category::MacaoResident.document_kind(),
        number: number.to_string(),
        valid_from: day(2030, 1, 2),
        valid_until: until,
    };
    let registration = Registration {
        registered_at: day(2026, 11, 2)
            .and_hms_opt(10, 0, 0)
            .expect("time")
            .and_utc(),
        location: "Mainland automated clearance, Gongbei".into(),
    };
    let fingerprint = ConsentRecord {
        authority: Authority::Macao,
        kind: ConsentKind::FingerprintReadAuthorisation,
        given_at: day(2026, 1, 1)
            .and_hms_opt(0, 0, 0)
            .expect("time")
            .and_utc(),
        channel: "document application".into(),
    };
    let got = trace(
        &mut r,
        vec![
            Command::Enrol {
                person: macao("M10000001"),
                templates: vec![template(1)],
            },
            Command::Enrol {
                person: macao("M10000002"),
                templates: vec![template(2)],
            },
            // The same number, a new validity: refreshed in place.
            Command::UpdateDocument {
                person: PersonId(1),
                document: renewed("M10000001", day(2040, 1, 1)),
                endorsement: None,
            },
            // A renewed permit with a new number: relinked, the old number released.
            Command::UpdateDocument {
                person: PersonId(1),
                document: renewed("M10000009", day(2040, 1, 1)),
                endorsement: None,
            },
            // Another person's number, or another kind of document: refused.
            Command::UpdateDocument {
                person: PersonId(1),
                document: renewed("M10000002", day(2040, 1, 1)),
                endorsement: None,
            },
            Command::UpdateDocument {
                person: PersonId(1),
                document: TravelDocument {
                    kind: DocumentKind::PermitHkMacao,
                    ..renewed("C10000009", day(2040, 1, 1))
                },
                endorsement: None,
            },
            Command::UpdateDocument {
                person: PersonId(7),
                document: renewed("M10000007", day(2040, 1, 1)),
                endorsement: None,
            },
            Command::ConfirmPrerequisites {
                person: PersonId(1),
                registrations: Registrations {
                    macao: None,
                    mainland: Some(registration),
                },
                fingerprint_read: Some(fingerprint.clone()),
            },
            Command::ConfirmPrerequisites {
                person: PersonId(1),
                registrations: Registrations::default(),
                fingerprint_read: None,
            },
        ],
    );
    expect![[r#"
        enrol: Enrolled(PersonId(1)) [Put(PersonId(1))]
        enrol: Enrolled(PersonId(2)) [Put(PersonId(2))]
        update_document: Updated(PersonId(1)) [Put(PersonId(1))]
        update_document: Updated(PersonId(1)) [Put(PersonId(1))]
        update_document: Refused { code: "document_in_use", reason: "the document is registered to P00000002" } []
        update_document: Refused { code: "document_kind_changed", reason: "P00000001 clears with a mainland_travel_permit_hk_macao, not a permit_hk_macao" } []
        update_document: Refused { code: "unknown_person", reason: "no person P00000007 is registered" } []
        confirm_prerequisites: Updated(PersonId(1)) [Put(PersonId(1))]
        confirm_prerequisites: Updated(PersonId(1)) [Put(PersonId(1))]
    "#]]
    .assert_eq(&got);
    let kind = Category::MacaoResident.document_kind();
    assert_eq!(
        r.find_document(kind, "M10000001").unwrap(),
        None,
        "old number released"
    );
    assert_eq!(
        r.find_document(kind, "M10000009").unwrap(),
        Some(PersonId(1))
    );
    let person = &r.get(PersonId(1)).unwrap().expect("entry").person;
    assert_eq!(person.document.valid_until, day(2040, 1, 1));
    assert_eq!(person.registrations, Registrations::default(), "withdrawn");
    assert!(!person.has_consent(Authority::Macao, ConsentKind::FingerprintReadAuthorisation));
    // The index still finds the person under their id (re-indexed, not duplicated).
    assert_eq!(r.index().len(), 2);
}

/// The storage layer's side of a store-backed registry, in memory: what it last wrote, a count of
/// its reads, and a switch that makes it fail.
#[derive(Clone, Default)]
struct TestStore {
    written: std::sync::Arc<std::sync::Mutex<BTreeMap<PersonId, Vec<u8>>>>,
    reads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TestStore {
    fn check(&self) -> Result<()> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Storage {
                reason: "the disk is gone".into(),
            });
        }
        Ok(())
    }

    /// Writes what the registry has not written yet, as the node's state machine does after a
    /// batch.
    fn write_through(&self, r: &mut Registry) {
        {
            let mut w = self.written.lock().expect("lock");
            for (id, bytes) in r.unwritten() {
                match bytes {
                    Some(b) => w.insert(id, b.to_vec()),
                    None => w.remove(&id),
                };
            }
        }
        r.written();
        assert_eq!(r.unwritten().count(), 0, "nothing left to write");
    }
}

impl EntryStore for TestStore {
    fn read(&self, id: PersonId) -> Result<Option<StoredBytes>> {
        self.check()?;
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let w = self.written.lock().expect("lock");
        Ok(w.get(&id).map(|b| StoredBytes::new(b.clone())))
    }

    fn scan(&self) -> Box<dyn Iterator<Item = Result<(PersonId, StoredBytes)>> + '_> {
        if let Err(e) = self.check() {
            return Box::new(std::iter::once(Err(e)));
        }
        let w = self.written.lock().expect("lock");
        let all: Vec<_> = w
            .iter()
            .map(|(id, b)| Ok((*id, StoredBytes::new(b.clone()))))
            .collect();
        Box::new(all.into_iter())
    }
}

/// A mix of every kind of change: enrolments (one retried), templates added and replaced,
/// registrations, a renewed document, cancellations (one of a person enrolled in the same
/// batch).
fn mixed_commands() -> Vec<Command> {
    let registration = Registration {
        registered_at: day(2026, 11, 2)
            .and_hms_opt(10, 0, 0)
            .expect("time")
            .and_utc(),
        location: "Hengqin Port".into(),
    };
    let mut commands: Vec<Command> = (0..30u32)
        .map(|i| Command::Enrol {
            person: macao(&format!("M2{i:07}")),
            templates: vec![template(i)],
        })
        .collect();
    commands.extend([
        Command::Enrol {
            person: macao("M20000003"),
            templates: vec![template(99)],
        },
        Command::AddTemplate {
            person: PersonId(4),
            template: template(40),
        },
        Command::ReplaceTemplates {
            person: PersonId(5),
            templates: vec![template(50), template(51)],
        },
        Command::Register {
            person: PersonId(6),
            authority: Authority::Mainland,
            registration,
        },
        Command::UpdateDocument {
            person: PersonId(7),
            document: TravelDocument {
                kind: Category::MacaoResident.document_kind(),
                number: "M29999999".into(),
                valid_from: day(2030, 1, 2),
                valid_until: day(2040, 1, 1),
            },
            endorsement: None,
        },
        Command::Cancel {
            person: PersonId(8),
        },
        Command::Enrol {
            person: macao("M28888888"),
            templates: vec![template(88)],
        },
        Command::Cancel {
            person: PersonId(31),
        },
        Command::Cancel {
            person: PersonId(8),
        },
        Command::AddTemplate {
            person: PersonId(8),
            template: template(41),
        },
    ]);
    commands
}

fn image_bytes(r: &Registry) -> Vec<u8> {
    postcard::to_stdvec(&r.image_ref()).expect("image")
}

#[test]
fn a_store_backed_registry_agrees_with_an_in_memory_one_and_restarts_from_its_store() {
    let mut memory = Registry::new(model(), 8).expect("registry");
    let store = TestStore::default();
    let mut backed = Registry::with_store(model(), 8, Box::new(store.clone())).expect("registry");
    for (n, c) in mixed_commands().into_iter().enumerate() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let expected = memory.apply(c.clone(), &mut a);
        assert_eq!(backed.apply(c, &mut b), expected, "command {n}");
        assert_eq!(a, b, "command {n}'s changes");
        // Written every fourth command: the registry holds some changes over stored entries
        // (at the end, the erasure of a person enrolled after the last write).
        if n % 4 == 0 {
            store.write_through(&mut backed);
        }
        assert_eq!(
            image_bytes(&backed),
            image_bytes(&memory),
            "after command {n}"
        );
    }
    assert!(backed.unwritten().count() > 0, "the last changes are held");
    assert_eq!(
        memory.unwritten().count(),
        0,
        "an in-memory registry writes nothing"
    );
    for r in [&memory, &backed] {
        assert_eq!(r.len(), 29);
        assert_eq!(r.template_count(), 31);
        assert_eq!(r.index().len(), 31);
        assert_eq!(r.get(PersonId(8)).expect("read"), None, "cancelled");
        assert_eq!(
            r.find_document(Category::MacaoResident.document_kind(), "M29999999")
                .expect("read"),
            Some(PersonId(7))
        );
    }
    assert_eq!(
        backed.get(PersonId(4)).expect("read"),
        memory.get(PersonId(4)).expect("read")
    );
    store.write_through(&mut backed);

    // A restart: a new registry restores what the store holds, in id order, without reading it
    // again person by person.
    let reads = store.reads.load(std::sync::atomic::Ordering::SeqCst);
    let mut restarted =
        Registry::with_store(model(), 8, Box::new(store.clone())).expect("registry");
    let stored: Vec<Entry> = restarted.entries().collect::<Result<_>>().expect("scan");
    for entry in stored {
        restarted.restore(entry).expect("restore");
    }
    for (id, notice) in memory.notices() {
        restarted.restore_notice(*id, notice.clone());
    }
    restarted.set_next_id(memory.next_id());
    assert_eq!(
        store.reads.load(std::sync::atomic::Ordering::SeqCst),
        reads,
        "restoring in id order reads nothing back"
    );
    assert_eq!(image_bytes(&restarted), image_bytes(&memory));
    assert_eq!(restarted.len(), 29);
    assert_eq!(restarted.template_count(), 31);
    assert_eq!(restarted.index().len(), 31);

    // A checkpoint of it restores the same registry without reading the store at all.
    let (header, rows, documents) = backed.checkpoint().expect("all written");
    let rows: Vec<_> = rows.map(|(p, v, s)| Ok((p, v.to_vec(), s))).collect();
    let documents: Vec<_> = documents.map(Ok).collect();
    let reads = store.reads.load(std::sync::atomic::Ordering::SeqCst);
    let mut from_checkpoint = Registry::from_checkpoint(
        model(),
        8,
        Box::new(store.clone()),
        &header,
        rows.clone().into_iter(),
        documents.clone().into_iter(),
    )
    .expect("checkpoint");
    for (id, notice) in memory.notices() {
        from_checkpoint.restore_notice(*id, notice.clone());
    }
    assert_eq!(store.reads.load(std::sync::atomic::Ordering::SeqCst), reads);
    assert_eq!(image_bytes(&from_checkpoint), image_bytes(&memory));
    assert_eq!(
        (from_checkpoint.len(), from_checkpoint.template_count()),
        (29, 31)
    );
    let probe = template(12).dequantize();
    assert_eq!(
        from_checkpoint.index().search(&probe, 3).expect("search"),
        backed.index().search(&probe, 3).expect("search")
    );
    assert_eq!(
        from_checkpoint
            .find_document(Category::MacaoResident.document_kind(), "M29999999")
            .expect("read"),
        Some(PersonId(7))
    );
    // Enrolling an enrolled document again still finds it (the document keys came along).
    let mut changes = Vec::new();
    assert_eq!(
        from_checkpoint.apply(
            Command::Enrol {
                person: macao("M20000010"),
                templates: vec![template(5)],
            },
            &mut changes
        ),
        Outcome::AlreadyEnrolled(PersonId(11))
    );
    // A checkpoint cut short, or a row that is no template, is refused.
    let short = Registry::from_checkpoint(
        model(),
        8,
        Box::new(store.clone()),
        &header,
        rows[1..].to_vec().into_iter(),
        documents.clone().into_iter(),
    );
    assert!(matches!(short, Err(Error::Storage { .. })));
    let mut bad = rows.clone();
    bad[0] = Ok((PersonId(2), vec![i8::MIN; 8], 1.0));
    let bad = Registry::from_checkpoint(
        model(),
        8,
        Box::new(store.clone()),
        &header,
        bad.into_iter(),
        documents.into_iter(),
    );
    assert!(matches!(bad, Err(Error::InvalidTemplate { .. })));
    let mut held = from_checkpoint;
    held.apply(
        Command::AddTemplate {
            person: PersonId(2),
            template: template(77),
        },
        &mut changes,
    );
    assert!(
        held.checkpoint().is_none(),
        "not while changes are unwritten"
    );
}

#[test]
fn a_failing_store_refuses_the_command_and_everything_after_it() {
    let store = TestStore::default();
    let mut r = Registry::with_store(model(), 8, Box::new(store.clone())).expect("registry");
    let mut changes = Vec::new();
    r.apply(
        Command::Enrol {
            person: macao("M30000001"),
            templates: vec![template(1)],
        },
        &mut changes,
    );
    store.write_through(&mut r);
    store
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    changes.clear();
    let got = trace(
        &mut r,
        vec![
            // Reads the stored entry: refused.
            Command::AddTemplate {
                person: PersonId(1),
                template: template(2),
            },
            // Would read nothing, but the registry has faulted: refused too, no id taken.
            Command::Enrol {
                person: macao("M30000002"),
                templates: vec![template(3)],
            },
        ],
    );
    expect![[r#"
        add_template: Refused { code: "storage", reason: "the gallery's entry store failed: the disk is gone" } []
        enrol: Refused { code: "storage", reason: "the gallery's entry store failed: the disk is gone" } []
    "#]]
    .assert_eq(&got);
    assert_eq!(r.next_id(), 2, "no id was taken");
    assert!(matches!(r.take_fault(), Some(Error::Storage { .. })));
    assert!(r.take_fault().is_none(), "taken once");
    assert!(
        postcard::to_stdvec(&r.image_ref()).is_err(),
        "an image of a failing store fails, not truncated"
    );
}
