//! Every port its own rules (seeds 001/003): a lane of a port with ONE inspecting authority — an
//! airport or a Shenzhen land port, as `deploy/ports/shanghai-hongqiao.toml` and
//! `shenzhen-luohu.toml` define them — end to end with real parts (cluster processes, RTSP
//! cameras, the Modbus gate controller, the readers, the reference authorities over mutual TLS).
//! The joint Macao–Mainland kind (Hengqin) is `tests/lane.rs`.
//!
//! No prerequisite is asked of anyone; the registration's consent, every inspection and every
//! record go to the port's one authority; the other authority's service hears nothing.

use std::time::Duration;

use clearway_gallery::{Authority, Command, ConsentKind, PersonId};
use clearway_node::lane::camera::sim::Scene;
use clearway_node::lane::procedure::AuthorityRecord;
use clearway_tests::lane::{http, registered_macao_adult, rig_for, wait_lane_api};
use clearway_tests::photo;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lane_of_a_one_authority_port_clears_with_that_authority_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = rig_for(
        dir.path(),
        "authorities = [\"mainland\"]\nprerequisites = false\n",
        &[Authority::Mainland],
    )
    .await;
    let client = rig.port.client();

    // A traveller registered at this port: the consent with its authority, nothing else.
    let obama = rig.template("face_recognition/obama.jpg");
    let mut person = registered_macao_adult("M10000001", "OBAMA, BARACK");
    person.registrations = Default::default();
    person
        .consents
        .retain(|c| c.authority == Authority::Mainland);
    client
        .write_audited(
            vec![Command::Enrol {
                person,
                templates: vec![obama],
            }],
            "enrol",
            "gallery",
            "seeding the test registry",
            Duration::from_secs(20),
        )
        .await
        .expect("enrol");
    wait_lane_api(&rig).await;

    // 1. By face: gate 1, then one authority's inspection opens gates 2 and 3.
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    rig.wait_event("decision", "admitted", Duration::from_secs(60))
        .await;
    rig.walk_through().await;

    // 2. An unregistered traveller: the declaration at once (nothing to ask), Agree, the
    //    consent to the one authority, registered; recognised by face next time.
    rig.show(Scene::Photo(photo("face_recognition/biden.jpg")));
    rig.wait_screen("not_recognised", Duration::from_secs(30))
        .await;
    rig.present(
        clearway_gallery::DocumentKind::MainlandTravelPermitHkMacao,
        "H30000004",
        "BIDEN, JOSEPH",
        "1962-11-20",
        "2031-06-30",
    );
    rig.wait_screen("declaration", Duration::from_secs(10))
        .await;
    let (status, _) = http(rig.lane.api, "POST", "/lane/screen/agree");
    assert_eq!(status, 204);
    rig.wait_event("decision", "registered", Duration::from_secs(20))
        .await;
    rig.wait_event("decision", "admitted", Duration::from_secs(10))
        .await;
    rig.walk_through().await;
    rig.show(Scene::Photo(photo("face_recognition/biden.jpg")));
    let e = rig
        .wait_event("decision", "admitted", Duration::from_secs(30))
        .await;
    assert!(e["detail"].as_str().unwrap_or("").contains("face"), "{e}");
    rig.show(Scene::Empty);
    rig.wait_step("idle", Duration::from_secs(15)).await;
    let biden = client
        .person(2, PersonId(2), false)
        .await
        .expect("person read")
        .expect("registered at the channel");
    assert!(biden.has_consent(Authority::Mainland, ConsentKind::SmartClearanceRegistration));
    assert!(!biden.has_consent(Authority::Macao, ConsentKind::SmartClearanceRegistration));

    // What each authority heard: the Mainland the consent and both clearances; Macao nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mainland = rig.records(Authority::Mainland).await;
        let clearances = mainland
            .iter()
            .filter(|(_, r)| matches!(r, AuthorityRecord::Clearance { .. }))
            .count();
        let consents = mainland
            .iter()
            .filter(|(_, r)| matches!(r, AuthorityRecord::RegistrationConsent { .. }))
            .count();
        if clearances == 2 && consents == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the Mainland's records: {mainland:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let macao = &rig.authorities.macao;
    assert!(rig.records(Authority::Macao).await.is_empty());
    assert_eq!(macao.inspection_requests(), 0);
    assert_eq!(macao.prerequisite_requests(), 0);
    assert_eq!(rig.authorities.mainland.prerequisite_requests(), 0);
}
