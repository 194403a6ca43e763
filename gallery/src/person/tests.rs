use chrono::{DateTime, NaiveDate, Utc};
use expect_test::{Expect, expect};

use super::*;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The launch day of face scan at Hengqin Port: the travel day of every case below.
const TODAY: &str = "2025-11-05";

fn registration() -> Registration {
    Registration {
        registered_at: at("2025-11-05T09:30:00Z"),
        location: "Hengqin Port, Passenger Inspection Hall, channel 12".into(),
    }
}

/// An eligible adult of `category`: the document and registrations the table in DOMAIN.md asks for.
fn person(category: Category) -> Person {
    let (valid_from, valid_until) = match category {
        Category::TaiwanResident => (day("2022-03-01"), day("2027-02-28")),
        _ => (day("2020-01-10"), day("2030-01-09")),
    };
    let mut p = Person {
        id: PersonId(42),
        name: "CHAN Tai Man".into(),
        date_of_birth: day("1990-06-15"),
        category,
        document: TravelDocument {
            kind: category.document_kind(),
            number: "H12345678".into(),
            valid_from,
            valid_until,
        },
        endorsement: None,
        registrations: Registrations::default(),
        consents: Vec::new(),
        guardian_consent: None,
        status: PersonStatus::Active,
    };
    for &authority in category.required_registrations() {
        p.registrations.set(authority, registration());
    }
    // The Smart Immigration Clearance registration itself: Agree, acknowledged by both.
    for authority in Authority::ALL {
        p.consents.push(ConsentRecord {
            authority,
            kind: ConsentKind::SmartClearanceRegistration,
            given_at: at("2025-11-05T09:30:00Z"),
            channel: "Hengqin Port, channel 12".into(),
        });
    }
    if category == Category::MainlandResident {
        p.endorsement = Some(Endorsement {
            kind: EndorsementKind::D,
            multiple_entry: true,
            valid_from: day("2025-01-01"),
            valid_until: day("2026-12-31"),
            destination: Destination::Macao,
        });
        p.consents.push(ConsentRecord {
            authority: Authority::Macao,
            kind: ConsentKind::FingerprintReadAuthorisation,
            given_at: at("2024-12-20T03:00:00Z"),
            channel: "document application, Mainland".into(),
        });
    }
    p
}

fn guardian() -> GuardianConsent {
    GuardianConsent {
        guardian_name: "CHAN Siu Ming".into(),
        guardian_document: "Macao resident identity card 1234567(8)".into(),
        relationship_proof: "birth certificate 2011/0042".into(),
        service_location: "Qingmao Checkpoint, Departure Office, 3/F".into(),
        given_at: at("2025-11-01T10:15:00Z"),
    }
}

fn minor(category: Category, date_of_birth: &str) -> Person {
    let mut p = person(category);
    p.date_of_birth = day(date_of_birth);
    p.guardian_consent = Some(guardian());
    p
}

fn with(mut p: Person, change: impl FnOnce(&mut Person)) -> Person {
    change(&mut p);
    p
}

fn endorsement(p: &mut Person) -> &mut Endorsement {
    p.endorsement.as_mut().unwrap()
}

/// Renders one line per case: its name, then `ok` or the reason it is ineligible on [`TODAY`].
fn check(cases: Vec<(&str, Person)>, expect: Expect) {
    let today = day(TODAY);
    let width = cases.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, p) in &cases {
        let result = match eligibility(p, today) {
            Ok(()) => "ok".to_string(),
            Err(why) => format!("{} ({why})", why.code()),
        };
        out.push_str(&format!("{name:width$}  {result}\n"));
    }
    expect.assert_eq(&out);
}

#[test]
fn eligibility_table() {
    use Category::*;
    let mainland = || person(MainlandResident);
    check(
        vec![
            ("macao resident", person(MacaoResident)),
            (
                "hong kong permanent resident",
                person(HongKongPermanentResident),
            ),
            ("mainland resident", person(MainlandResident)),
            ("taiwan resident", person(TaiwanResident)),
            (
                "macao: not registered",
                with(person(MacaoResident), |p| {
                    p.registrations = Registrations::default()
                }),
            ),
            (
                "macao: macao registration only",
                with(person(MacaoResident), |p| {
                    p.registrations = Registrations::default();
                    p.registrations.set(Authority::Macao, registration());
                }),
            ),
            (
                "hong kong: mainland only",
                with(person(HongKongPermanentResident), |p| {
                    p.registrations.macao = None
                }),
            ),
            (
                "hong kong: macao only",
                with(person(HongKongPermanentResident), |p| {
                    p.registrations.mainland = None
                }),
            ),
            (
                "taiwan: macao missing",
                with(person(TaiwanResident), |p| p.registrations.macao = None),
            ),
            (
                "taiwan: 3-month permit",
                with(person(TaiwanResident), |p| {
                    p.document.valid_from = day("2025-10-01");
                    p.document.valid_until = day("2025-12-31");
                }),
            ),
            (
                "taiwan: one day short of 5 years",
                with(person(TaiwanResident), |p| {
                    p.document.valid_until = day("2027-02-27")
                }),
            ),
            (
                "mainland: endorsement T",
                with(mainland(), |p| endorsement(p).kind = EndorsementKind::T),
            ),
            (
                "mainland: endorsement S",
                with(mainland(), |p| endorsement(p).kind = EndorsementKind::S),
            ),
            (
                "mainland: endorsement R",
                with(mainland(), |p| endorsement(p).kind = EndorsementKind::R),
            ),
            (
                "mainland: endorsement Q",
                with(mainland(), |p| endorsement(p).kind = EndorsementKind::Q),
            ),
            (
                "mainland: no endorsement",
                with(mainland(), |p| p.endorsement = None),
            ),
            (
                "mainland: single entry",
                with(mainland(), |p| endorsement(p).multiple_entry = false),
            ),
            (
                "mainland: endorsement expired yesterday",
                with(mainland(), |p| {
                    endorsement(p).valid_until = day("2025-11-04")
                }),
            ),
            (
                "mainland: endorsement ends today",
                with(mainland(), |p| {
                    endorsement(p).valid_until = day("2025-11-05")
                }),
            ),
            (
                "mainland: endorsement from tomorrow",
                with(mainland(), |p| {
                    endorsement(p).valid_from = day("2025-11-06")
                }),
            ),
            (
                "mainland: fingerprint to mainland only",
                with(mainland(), |p| {
                    for c in &mut p.consents {
                        c.authority = Authority::Mainland;
                    }
                }),
            ),
            (
                "mainland: no fingerprint consent",
                with(mainland(), |p| p.consents.clear()),
            ),
            (
                "mainland: enrolled without Agree",
                with(mainland(), |p| {
                    p.consents
                        .retain(|c| c.kind != ConsentKind::SmartClearanceRegistration)
                }),
            ),
            (
                "macao: Agree acknowledged by macao only",
                with(person(MacaoResident), |p| {
                    p.consents.retain(|c| c.authority == Authority::Macao)
                }),
            ),
            (
                "hong kong: Agree acknowledged by mainland only",
                with(person(HongKongPermanentResident), |p| {
                    p.consents.retain(|c| c.authority == Authority::Mainland)
                }),
            ),
            (
                "document expired yesterday",
                with(person(MacaoResident), |p| {
                    p.document.valid_until = day("2025-11-04")
                }),
            ),
            (
                "document ends today",
                with(person(MacaoResident), |p| {
                    p.document.valid_until = day("2025-11-05")
                }),
            ),
            (
                "document valid from tomorrow",
                with(person(MacaoResident), |p| {
                    p.document.valid_from = day("2025-11-06")
                }),
            ),
            (
                "wrong document for category",
                with(person(MacaoResident), |p| {
                    p.document.kind = DocumentKind::PermitHkMacao
                }),
            ),
            (
                "cancelled",
                with(person(MacaoResident), |p| {
                    p.status = PersonStatus::Cancelled
                }),
            ),
            (
                "cancelled and under age",
                with(minor(MacaoResident, "2015-01-01"), |p| {
                    p.status = PersonStatus::Cancelled
                }),
            ),
            (
                "14 today, guardian consent",
                minor(MacaoResident, "2011-11-05"),
            ),
            ("14 tomorrow", minor(MacaoResident, "2011-11-06")),
            (
                "16, no guardian consent",
                with(minor(HongKongPermanentResident, "2009-03-03"), |p| {
                    p.guardian_consent = None
                }),
            ),
            (
                "16, guardian consent",
                minor(HongKongPermanentResident, "2009-03-03"),
            ),
            (
                "mainland 15, no guardian consent",
                with(minor(MainlandResident, "2010-05-05"), |p| {
                    p.guardian_consent = None
                }),
            ),
            (
                "18 today, no guardian consent",
                with(person(TaiwanResident), |p| {
                    p.date_of_birth = day("2007-11-05")
                }),
            ),
            (
                "17, registered as minor, no guardian",
                with(person(TaiwanResident), |p| {
                    p.date_of_birth = day("2007-11-06")
                }),
            ),
            ("born in the future", minor(MacaoResident, "2026-01-01")),
        ],
        expect![[r#"
            macao resident                                  ok
            hong kong permanent resident                    ok
            mainland resident                               ok
            taiwan resident                                 ok
            macao: not registered                           not_registered_mainland (not registered with the mainland authority)
            macao: macao registration only                  not_registered_mainland (not registered with the mainland authority)
            hong kong: mainland only                        not_registered_macao (not registered with the macao authority)
            hong kong: macao only                           not_registered_mainland (not registered with the mainland authority)
            taiwan: macao missing                           not_registered_macao (not registered with the macao authority)
            taiwan: 3-month permit                          document_not_five_year (travel document is not a 5-year permit)
            taiwan: one day short of 5 years                document_not_five_year (travel document is not a 5-year permit)
            mainland: endorsement T                         ok
            mainland: endorsement S                         ok
            mainland: endorsement R                         ok
            mainland: endorsement Q                         ok
            mainland: no endorsement                        endorsement_missing (endorsement missing)
            mainland: single entry                          endorsement_not_multiple_entry (endorsement is not multiple-entry)
            mainland: endorsement expired yesterday         endorsement_expired (endorsement expired)
            mainland: endorsement ends today                ok
            mainland: endorsement from tomorrow             endorsement_not_yet_valid (endorsement not yet valid)
            mainland: fingerprint to mainland only          fingerprint_authorisation_missing (fingerprint-read authorisation missing)
            mainland: no fingerprint consent                fingerprint_authorisation_missing (fingerprint-read authorisation missing)
            mainland: enrolled without Agree                consent_missing_macao (Smart Immigration Clearance consent not recorded with the macao authority)
            macao: Agree acknowledged by macao only         consent_missing_mainland (Smart Immigration Clearance consent not recorded with the mainland authority)
            hong kong: Agree acknowledged by mainland only  consent_missing_macao (Smart Immigration Clearance consent not recorded with the macao authority)
            document expired yesterday                      document_expired (travel document expired)
            document ends today                             ok
            document valid from tomorrow                    document_not_yet_valid (travel document not yet valid)
            wrong document for category                     document_not_accepted (document not accepted for this category)
            cancelled                                       cancelled (registration cancelled)
            cancelled and under age                         cancelled (registration cancelled)
            14 today, guardian consent                      ok
            14 tomorrow                                     under_age (under 14 years of age)
            16, no guardian consent                         guardian_consent_missing (guardian consent missing)
            16, guardian consent                            ok
            mainland 15, no guardian consent                guardian_consent_missing (guardian consent missing)
            18 today, no guardian consent                   ok
            17, registered as minor, no guardian            guardian_consent_missing (guardian consent missing)
            born in the future                              under_age (under 14 years of age)
        "#]],
    );
}

#[test]
fn age_counts_full_years_and_leap_day_birthdays_move_to_march_first() {
    let cases = [
        ("2008-02-29", "2022-02-28", 13),
        ("2008-02-29", "2022-03-01", 14),
        ("2008-02-29", "2024-02-29", 16),
        ("2011-11-05", "2025-11-04", 13),
        ("2011-11-05", "2025-11-05", 14),
        ("2011-11-05", "2011-11-05", 0),
        ("2011-11-05", "2011-11-04", 0),
        ("1900-01-01", "2025-11-05", 125),
    ];
    for (born, on, age) in cases {
        assert_eq!(age_on(day(born), day(on)), age, "born {born}, on {on}");
    }
}

#[test]
fn validate_table() {
    use Category::*;
    let cases = vec![
        (
            "every base person",
            Category::ALL.iter().map(|&c| person(c)).collect::<Vec<_>>(),
        ),
        (
            "blank name",
            vec![with(person(MacaoResident), |p| p.name = "  ".into())],
        ),
        (
            "blank document number",
            vec![with(person(MacaoResident), |p| p.document.number.clear())],
        ),
        (
            "taiwan permit for a macao resident",
            vec![with(person(MacaoResident), |p| {
                p.document.kind = DocumentKind::MainlandTravelPermitTaiwan
            })],
        ),
        (
            "hk-macao permit for a mainland resident",
            vec![with(person(MainlandResident), |p| {
                p.document.kind = DocumentKind::MainlandTravelPermitHkMacao
            })],
        ),
        (
            "document ends before it starts",
            vec![with(person(TaiwanResident), |p| {
                p.document.valid_until = day("2019-01-01")
            })],
        ),
        (
            "endorsement for a hong kong resident",
            vec![with(person(HongKongPermanentResident), |p| {
                p.endorsement = person(MainlandResident).endorsement
            })],
        ),
        (
            "endorsement ends before it starts",
            vec![with(person(MainlandResident), |p| {
                endorsement(p).valid_until = day("2024-01-01")
            })],
        ),
        (
            "expired but consistent",
            vec![with(person(MacaoResident), |p| {
                p.document.valid_until = day("2021-01-01")
            })],
        ),
    ];
    let mut out = String::new();
    for (name, persons) in cases {
        let results: Vec<String> = persons
            .iter()
            .map(|p| match p.validate() {
                Ok(()) => "ok".into(),
                Err(e) => format!("{}: {e}", e.code()),
            })
            .collect();
        out.push_str(&format!("{name}: {}\n", results.join(", ")));
    }
    expect![[r#"
        every base person: ok, ok, ok, ok
        blank name: missing_field: missing field: name
        blank document number: missing_field: missing field: document.number
        taiwan permit for a macao resident: document_mismatch: document mainland_travel_permit_taiwan does not fit category macao_resident
        hk-macao permit for a mainland resident: document_mismatch: document mainland_travel_permit_hk_macao does not fit category mainland_resident
        document ends before it starts: invalid_period: invalid period: document is valid until before it is valid from
        endorsement for a hong kong resident: endorsement_not_applicable: endorsement not applicable to category hong_kong_permanent_resident
        endorsement ends before it starts: invalid_period: invalid period: endorsement is valid until before it is valid from
        expired but consistent: ok
    "#]]
    .assert_eq(&out);
}

#[test]
fn person_id_displays_and_parses() {
    assert_eq!(PersonId(42).to_string(), "P00000042");
    assert_eq!(PersonId(1_234_567_890).to_string(), "P1234567890");
    assert_eq!("P00000042".parse::<PersonId>(), Ok(PersonId(42)));
    assert_eq!(
        "P1234567890".parse::<PersonId>(),
        Ok(PersonId(1_234_567_890))
    );
    let id = PersonId(u64::MAX);
    assert_eq!(id.to_string().parse::<PersonId>(), Ok(id));
    for bad in [
        "",
        "P",
        "42",
        "p42",
        "P-1",
        "P+1",
        "P 1",
        "P99999999999999999999",
        "P4x",
    ] {
        let err = bad.parse::<PersonId>().unwrap_err();
        assert_eq!(err.code(), "invalid_person_id", "{bad:?}");
    }
}

#[test]
fn person_round_trips_through_postcard() {
    for category in Category::ALL {
        let mut p = minor(category, "2010-02-02");
        p.id = PersonId(7_000_000_001);
        let bytes = postcard::to_stdvec(&p).unwrap();
        let back: Person = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, p);
    }
}

#[test]
fn categories_require_what_the_domain_table_says() {
    let rendered: Vec<String> = Category::ALL
        .iter()
        .map(|c| {
            let regs: Vec<&str> = c
                .required_registrations()
                .iter()
                .map(|a| a.as_str())
                .collect();
            format!("{c}: {} + [{}]", c.document_kind(), regs.join(", "))
        })
        .collect();
    expect![[r#"
        macao_resident: mainland_travel_permit_hk_macao + [mainland]
        hong_kong_permanent_resident: mainland_travel_permit_hk_macao + [mainland, macao]
        mainland_resident: permit_hk_macao + []
        taiwan_resident: mainland_travel_permit_taiwan + [mainland, macao]"#]]
    .assert_eq(&rendered.join("\n"));
}

/// Seed 001's ports with one inspecting authority: no automated-clearance prerequisites, the
/// consent with that authority only.
#[test]
fn a_one_authority_port_asks_for_its_own_consent_only() {
    use Category::*;
    let airport = Policy {
        authorities: vec![Authority::Mainland],
        prerequisites: false,
        destination: None,
    };
    let today = day(TODAY);
    let consented_mainland_only = |category| {
        with(person(category), |p| {
            p.registrations = Registrations::default();
            p.consents.retain(|c| {
                c.kind == ConsentKind::SmartClearanceRegistration
                    && c.authority == Authority::Mainland
            });
        })
    };
    for category in Category::ALL {
        let p = consented_mainland_only(category);
        assert_eq!(eligibility_under(&p, today, &airport), Ok(()), "{category}");
        assert!(
            eligibility(&p, today).is_err(),
            "{category}: Hengqin asks for more"
        );
    }
    let p = with(person(MacaoResident), |p| p.consents.clear());
    assert_eq!(
        eligibility_under(&p, today, &airport),
        Err(Ineligible::ConsentMissing(Authority::Mainland))
    );
    // The document rules stand everywhere.
    let p = with(consented_mainland_only(MainlandResident), |p| {
        endorsement(p).multiple_entry = false
    });
    assert_eq!(
        eligibility_under(&p, today, &airport),
        Err(Ineligible::EndorsementNotMultipleEntry)
    );
    assert!(airport.validate().is_ok());
    // A Hong Kong endorsement is no Macao endorsement: Hengqin looks at Macao's, an airport at
    // whichever the record holds.
    let hk = with(person(MainlandResident), |p| {
        endorsement(p).destination = Destination::HongKong
    });
    assert_eq!(eligibility(&hk, today), Err(Ineligible::EndorsementMissing));
    let hk_consented = with(consented_mainland_only(MainlandResident), |p| {
        endorsement(p).destination = Destination::HongKong
    });
    assert_eq!(eligibility_under(&hk_consented, today, &airport), Ok(()));
    let twice = Policy {
        authorities: vec![Authority::Macao, Authority::Macao],
        prerequisites: true,
        destination: None,
    };
    assert!(twice.validate().is_err());
    let none = Policy {
        authorities: vec![],
        prerequisites: false,
        destination: None,
    };
    assert!(none.validate().is_err());
}
