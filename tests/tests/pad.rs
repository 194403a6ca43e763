//! Presentation-attack detection at a lane, end to end with real parts: a port cluster of
//! `clearway-node` processes, RTSP camera streams of a real photo, the real PAD model on every
//! frame, the Modbus gate simulator, the reference authorities.
//!
//! The camera simulator shows a photo: a presentation attack by construction. Whether this
//! model judges that photo live is the model's quality (`pad-eval`, BENCHMARKS.md), not the
//! lane's wiring, so this test pins the model's verdict through its threshold and checks what
//! the lane does with it, enforcing:
//! * threshold 1.0 (no face is judged bona fide): gate 1 never opens for the registered
//!   traveller, the screen asks them to look at the camera (never "attack"), the console gets a
//!   `presentation_attack` alarm, `/metrics` counts the attack verdicts;
//! * threshold 0.0 (every face is bona fide, and a still picture's landmark track is never
//!   flat, only inconclusive): gate 1 opens after the required bona fide frames and the
//!   traveller clears gates 2 and 3.
//!
//! A registration at an enforcing lane captures only a face judged bona fide: with nothing judged
//! so, the traveller's registration fails and nobody's template is made from the photo.
//!
//! Observing is what every other lane test and the demo run (tests/src/lane.rs), and
//! `lane.rs` checks that its lane reports it.

use std::time::Duration;

use clearway_gallery::{Category, DocumentKind, PersonId};
use clearway_node::lane::camera::sim::Scene;
use clearway_tests::lane::{http, prerequisites_held, rig_with_face, wait_lane_api};
use clearway_tests::photo;

/// The value of the sample of `name` carrying every label of `labels` (`gate="1"`), whatever
/// their order; 0 when there is none.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

const ENFORCE: &str =
    "\n[lane.procedure.pad]\nmode = \"enforce\"\nwindow = 5\nrequired = 3\nalarm_after = 4\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enforcing_lane_opens_only_for_bona_fide_faces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = rig_with_face(dir.path(), ENFORCE, "[pad]\nthreshold = 1.0\n").await;
    rig.enrol_macao_adult("M10000001", "OBAMA, BARACK", "face_recognition/obama.jpg")
        .await;
    wait_lane_api(&rig).await;
    assert_eq!(rig.status()["view"]["pad"], "enforce");

    // 1. Nothing is judged bona fide: the registered traveller is asked to look at the camera,
    //    never admitted, and the console is alarmed.
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    rig.wait_event("alarm", "presentation_attack", Duration::from_secs(60))
        .await;
    rig.wait_screen("look_at_camera", Duration::from_secs(5))
        .await;
    let status = rig.status();
    let events = status["events"].as_array().cloned().unwrap_or_default();
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "decision" && e["code"] == "admitted"),
        "admitted on attack verdicts: {events:?}"
    );
    assert_eq!(status["view"]["step"], "idle");
    let metrics = rig.port.scrape(2);
    let attacks = sample(
        &metrics,
        "clearway_lane_pad_verdicts_total",
        &["gate=\"1\"", "mode=\"enforce\"", "verdict=\"attack\""],
    );
    assert!(attacks >= 4.0, "attack verdicts counted: {attacks}");
    assert!(
        sample(
            &metrics,
            "clearway_lane_alarms_total",
            &["kind=\"presentation_attack\""]
        ) >= 1.0
    );
    // Counts only: no score, person or document in any PAD metric line.
    for line in metrics.lines().filter(|l| l.contains("pad_")) {
        assert!(
            !line.contains("M10000001") && !line.contains("OBAMA"),
            "{line}"
        );
    }

    // 2. Every face judged bona fide: gate 1 opens, the traveller clears gates 2 and 3.
    rig.show(Scene::Empty);
    rig.port.kill(2);
    rig.port
        .set_face(2, "[pad]\nthreshold = 0.0\n")
        .expect("face config");
    rig.port.start(2);
    wait_lane_api(&rig).await;
    rig.lane.skip_events().expect("events");
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    rig.wait_event("decision", "admitted", Duration::from_secs(60))
        .await;
    rig.walk_through().await;
    let metrics = rig.port.scrape(2);
    let bona_fide = sample(
        &metrics,
        "clearway_lane_pad_verdicts_total",
        &["gate=\"1\"", "mode=\"enforce\"", "verdict=\"bona_fide\""],
    );
    assert!(
        bona_fide >= 3.0,
        "bona fide verdicts before gate 1 opened: {bona_fide}"
    );
    let gate2 = sample(
        &metrics,
        "clearway_lane_pad_verdicts_total",
        &["gate=\"2\"", "mode=\"enforce\"", "verdict=\"bona_fide\""],
    );
    assert!(gate2 >= 1.0, "gate 2's face judged too: {gate2}");
    let pad_stage = sample(
        &metrics,
        "clearway_lane_stage_seconds_count",
        &["stage=\"pad\""],
    );
    assert!(pad_stage >= 4.0, "PAD timed per face: {pad_stage}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enforcing_lane_registers_no_face_it_did_not_judge_bona_fide() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rig = rig_with_face(dir.path(), ENFORCE, "[pad]\nthreshold = 1.0\n").await;
    // An unregistered Hong Kong resident whom both authorities have registered for automated
    // clearance: offered the declaration at a card scan.
    rig.authorities.hold(
        "H30000004",
        prerequisites_held(Category::HongKongPermanentResident),
    );
    wait_lane_api(&rig).await;
    rig.show(Scene::Photo(photo("face_recognition/biden.jpg")));
    rig.present(
        DocumentKind::MainlandTravelPermitHkMacao,
        "H30000004",
        "BIDEN, JOSEPH",
        "1962-11-20",
        "2031-06-30",
    );
    rig.wait_screen("declaration", Duration::from_secs(20))
        .await;
    let (status, _) = http(rig.lane.api, "POST", "/lane/screen/agree");
    assert_eq!(status, 204);
    // The camera shows his face all along, but never one judged bona fide: nothing is captured.
    rig.wait_screen("registration_failed", Duration::from_secs(30))
        .await;
    let person = rig
        .port
        .client()
        .person(2, PersonId(1), false)
        .await
        .expect("person read");
    assert!(person.is_none(), "registered from a photo: {person:?}");
}
