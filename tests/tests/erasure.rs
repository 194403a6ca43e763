//! Cancellation reaches every copy (issue 13, part 4), on real processes and real disks: a
//! traveller registered by an operator passes a lane by face, so his templates, name and
//! document number are in the Raft log and replicas of both nodes and his clearance records
//! went through the lane's outbox to both reference authorities. The lane is down when the
//! registration is cancelled; when it comes back it does not recognise him, every node's
//! storage key and the lane's outbox key move past the cancellation, both authorities hear of
//! the cancellation exactly once (the lane delivers the replicated notice it finds when it
//! comes back), and a scan of every file the nodes keep (data directories, key directories,
//! configs, logs) finds none of his template bytes, name or document number.

use std::time::{Duration, Instant};

use clearway_gallery::{Authority, Command};
use clearway_node::lane::camera::sim::Scene;
use clearway_node::lane::procedure::AuthorityRecord;
use clearway_tests::lane::{http, metric, registered_macao_adult, rig, until, wait_lane_api};
use clearway_tests::{files_containing, photo};

const NAME: &str = "OBAMA, BARACK";
const DOCUMENT: &str = "M10000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_traveller_leaves_nothing_readable_on_any_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = rig(dir.path()).await;
    let client = rig.port.client();
    let template = rig.template("face_recognition/obama.jpg");
    let needle_template: Vec<u8> = template.data()[..32].iter().map(|v| *v as u8).collect();
    let (_, outcomes) = client
        .write_audited(
            vec![Command::Enrol {
                person: registered_macao_adult(DOCUMENT, NAME),
                templates: vec![template],
            }],
            "enrol",
            "gallery",
            "registered at a service location",
            Duration::from_secs(20),
        )
        .await
        .expect("enrol");
    let person = outcomes[0].person().expect("enrolled");

    // He passes the lane by face; both authorities acknowledge his clearance records.
    wait_lane_api(&rig).await;
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    rig.wait_event("decision", "admitted", Duration::from_secs(60))
        .await;
    rig.walk_through().await;
    let names_him = |records: Vec<(String, AuthorityRecord)>| {
        records.iter().any(|(_, r)| {
            serde_json::to_string(r)
                .unwrap_or_default()
                .contains(DOCUMENT)
        })
    };
    until(
        "both authorities' records",
        Duration::from_secs(30),
        async || {
            names_him(rig.records(Authority::Macao).await)
                && names_him(rig.records(Authority::Mainland).await)
        },
    )
    .await;
    until("an empty outbox", Duration::from_secs(30), async || {
        let m = rig.port.scrape(2);
        metric(&m, "clearway_outbox_depth{authority=\"macao\"}") == Some(0.0)
            && metric(&m, "clearway_outbox_depth{authority=\"mainland\"}") == Some(0.0)
    })
    .await;
    let outbox_epoch = metric(&rig.port.scrape(2), "clearway_outbox_key_epoch").expect("epoch");
    let mut epochs = Vec::new();
    for id in [1u64, 2] {
        epochs.push(client.status(id).await.expect("status").key_epoch);
    }

    // The lane is down when his registration is cancelled.
    assert!(rig.port.stop(2), "the lane stops cleanly");
    let (index, _) = client
        .write_audited(
            vec![Command::Cancel { person }],
            "cancel",
            &person.to_string(),
            // Free text names him, as a desk officer's words would.
            &format!("{NAME} asked at a service location"),
            Duration::from_secs(20),
        )
        .await
        .expect("cancel");
    rig.port.start(2);

    // Back, it has applied the cancellation before it recognises anyone: he is not recognised.
    wait_lane_api(&rig).await;
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    rig.wait_screen("not_recognised", Duration::from_secs(60))
        .await;
    rig.show(Scene::Empty);
    let (status, _) = http(rig.lane.api, "GET", "/lane");
    assert_eq!(status, 200);

    // Both authorities hear of the cancellation, from the notice the lane found when it came
    // back: one record each, naming his document, under one key; then no notice is left.
    let cancellations = |records: Vec<(String, AuthorityRecord)>| -> Vec<String> {
        records
            .into_iter()
            .filter_map(|(key, r)| match r {
                AuthorityRecord::RegistrationCancelled { document, .. }
                    if document.number == DOCUMENT =>
                {
                    Some(key)
                }
                _ => None,
            })
            .collect()
    };
    until(
        "the cancellation at both authorities",
        Duration::from_secs(60),
        async || {
            !cancellations(rig.records(Authority::Macao).await).is_empty()
                && !cancellations(rig.records(Authority::Mainland).await).is_empty()
        },
    )
    .await;
    until(
        "no cancellation notice left",
        Duration::from_secs(30),
        async || metric(&rig.port.scrape(2), "clearway_cancellation_notices_pending") == Some(0.0),
    )
    .await;
    let macao = cancellations(rig.records(Authority::Macao).await);
    let mainland = cancellations(rig.records(Authority::Mainland).await);
    assert_eq!(macao.len(), 1, "exactly once at Macao: {macao:?}");
    assert_eq!(macao, mainland, "one key for the cancellation, at both");

    // Every node shredded the cancellation: storage keys rotated, the lane's outbox key too.
    for (id, before) in [1u64, 2].into_iter().zip(epochs) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = client.status(id).await;
            if status
                .as_ref()
                .is_ok_and(|s| s.shredded_index >= index && s.key_epoch > before)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not shred the cancellation at log index {index} (key epoch was {before}): {status:?}\n{}",
                clearway_tests::lane::tail(&rig.port.log(id))
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    until(
        "the outbox key rotated",
        Duration::from_secs(30),
        async || {
            metric(&rig.port.scrape(2), "clearway_outbox_key_epoch")
                .is_some_and(|e| e > outbox_epoch)
        },
    )
    .await;

    // The audit trail keeps the cancellation, its reason's text erased with him; it still
    // verifies, signatures and all; so does the record of his enrolment.
    let trail = client.audit_trail(1).await.expect("trail");
    let verifier = client.audit_verifier().expect("verifier");
    clearway_node::net::signing::verify_trail(&trail, &verifier).expect("the trail verifies");
    let cancel = trail
        .iter()
        .find(|r| r.entry.action == "cancel")
        .expect("the cancellation's record");
    assert_eq!(cancel.entry.target, person.to_string());
    assert_eq!(
        cancel.reason_text(),
        None,
        "the reason naming him is erased"
    );
    let enrol = trail
        .iter()
        .find(|r| r.entry.action == "enrol")
        .expect("the enrolment's record");
    assert_eq!(enrol.subject, Some(person), "it enrolled him alone");
    assert_eq!(enrol.reason_text(), None, "it concerned only him");

    // The disks, as a thief would take them.
    rig.port.stop_all(&[1, 2], Duration::from_secs(10));
    for id in [1u64, 2] {
        let node_dir = rig.port.node_dir(id);
        // The scan works: what is in the clear is found.
        assert!(
            !files_containing(&node_dir, b"key_file").is_empty(),
            "the scan misses plain text in {}",
            node_dir.display()
        );
        for (what, needle) in [
            ("template bytes", needle_template.as_slice()),
            ("name", NAME.as_bytes()),
            ("document number", DOCUMENT.as_bytes()),
        ] {
            let found = files_containing(&node_dir, needle);
            assert!(found.is_empty(), "node {id}: his {what} in {found:?}");
        }
    }
}
