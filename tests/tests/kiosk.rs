//! The gate-1 screen a traveller reads, end to end: a port of `clearway-node` processes (a voter
//! and a lane learner with its simulated devices, both reference authorities), the lane's own
//! kiosk page (`/kiosk`) in Debian's headless Chromium (`tests/browser/kiosk.e2e.mjs`). The
//! traveller switches through the four languages and taps Agree on the declaration; the test
//! then finds the registration in the replicated gallery. Screenshots under
//! `<target>/test-output/kiosk/`.

use std::collections::BTreeMap;
use std::time::Duration;

use clearway_gallery::{Category, DocumentKind, PersonId};
use clearway_node::lane::camera::sim::Scene;
use clearway_tests::console::{Browser, screenshot_dir};
use clearway_tests::http::request;
use clearway_tests::lane::{prerequisites_held, rig, wait_lane_api};
use clearway_tests::photo;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_traveller_registers_by_tapping_agree_on_the_gate_screen_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = rig(dir.path()).await;
    let client = rig.port.client();
    wait_lane_api(&rig).await;
    rig.show(Scene::Empty);
    let api = rig.lane.api;

    // The page's files and answers, over plain HTTP first: security headers, and bad queries
    // refused with a clear status, never a crash.
    let page = request(api, "GET", "/kiosk", &[], &[]).expect("GET /kiosk");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let screen = request(api, "GET", "/kiosk/screen?gate=1&lang=pt", &[], &[]).expect("screen");
    assert_eq!(screen.status, 200);
    assert_eq!(screen.header("cache-control"), Some("no-store"));
    let view: serde_json::Value = serde_json::from_str(&screen.body).expect("JSON");
    assert_eq!(view["lang"], "pt");
    assert_eq!(view["code"], "ready");
    for bad in [
        "/kiosk/screen?gate=999999",
        "/kiosk/screen?gate=x",
        "/kiosk/screen?gate=-1",
    ] {
        let r = request(api, "GET", bad, &[], &[]).expect(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let unknown = request(api, "GET", "/kiosk/screen?lang=fr", &[], &[]).expect("fr");
    assert!(
        unknown.body.contains("\"lang\":\"zh-Hant\""),
        "{}",
        unknown.body
    );

    let shots = screenshot_dir("kiosk");
    println!("screenshots: {}", shots.display());
    let env = BTreeMap::from([
        ("KIOSK_URL".to_string(), format!("http://{api}/kiosk")),
        ("SHOTS".to_string(), shots.display().to_string()),
    ]);
    let mut browser = Browser::start("kiosk.e2e.mjs", &env);
    while let Some((name, _)) = browser.checkpoint(Duration::from_secs(120)).await {
        let result = match name.as_str() {
            // An unregistered Hong Kong adult steps up (registration takes the face the gate-1
            // camera sees), is not recognised, and presents a card.
            "present" => {
                rig.show(Scene::Photo(photo("face_recognition/biden.jpg")));
                rig.wait_screen("not_recognised", Duration::from_secs(30))
                    .await;
                // He holds both automated clearance registrations (the prerequisites).
                rig.authorities.hold(
                    "H30000004",
                    prerequisites_held(Category::HongKongPermanentResident),
                );
                rig.present(
                    DocumentKind::MainlandTravelPermitHkMacao,
                    "H30000004",
                    "BIDEN, JOSEPH",
                    "1962-11-20",
                    "2031-06-30",
                );
                Ok(())
            }
            // The page said "Registration complete": the gallery says so too. The traveller
            // then walks away (standing there, he would now be recognised and let in by face).
            "registered" => {
                rig.show(Scene::Empty);
                let e = rig
                    .wait_event("decision", "registered", Duration::from_secs(10))
                    .await;
                match client.person(2, PersonId(1), false).await {
                    Ok(Some(p)) if p.document.number == "H30000004" => Ok(()),
                    other => Err(format!(
                        "no registration in the gallery after {e}: {other:?}"
                    )),
                }
            }
            other => Err(format!("unknown checkpoint {other}")),
        };
        browser.answer(result).await;
    }
    // What the lane did, for the transcript (a failure below is read against it).
    for e in rig.status()["events"].as_array().into_iter().flatten() {
        println!("lane event: {} {} {}", e["kind"], e["code"], e["detail"]);
    }
    for line in rig
        .port
        .log(2)
        .lines()
        .filter(|l| l.contains("screen") || l.contains("egist"))
    {
        println!("lane log: {line}");
    }
    browser.finish().await;
}
