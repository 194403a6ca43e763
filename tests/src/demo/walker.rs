//! Travellers walking through one lane on a loop, as a traveller would: face the gate-1
//! camera; if the screen says the face is not recognised, present the permit; answer the
//! registration declaration if it appears; walk through gates 2 and 3 once admitted. What the
//! lane decides is read from its screen API and printed as one line per passage.
//!
//! A channel held for an officer (two faces, a fingerprint not taken, an authority not
//! answering) stays held for [`OFFICER_AFTER`] so the console shows it; then the demo's
//! officer releases it with an audited order through the port's log, as a supervisor would
//! from the console's lane page. So that a hold shows within a minute of the start, lane 1's
//! first traveller has, every other visit, a finger the reader cannot take
//! ([`dry_finger`]): three poor captures, and the procedure refers them to an officer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::Utc;
use clearway_gallery::ops::OverrideAction;
use clearway_node::cluster::ClusterClient;
use clearway_node::lane::camera::sim::Scene;
use serde_json::Value;
use tokio::sync::watch;

use clearway_node::lane::fingerprint::SimOutcome;

use super::registry::{TRAVELLERS, Traveller, photo};
use crate::lane::Lane;

/// How long one passage may take before the walker gives up on it (a hang guard).
const PASSAGE_LIMIT: Duration = Duration::from_secs(90);
/// Without any sign from the lane this long, the traveller presents the permit anyway.
const PRESENT_AFTER: Duration = Duration::from_secs(10);
/// How long a held channel waits for someone to release it from the console before the
/// demo's officer does.
pub const OFFICER_AFTER: Duration = Duration::from_secs(20);

/// What the lane showed the traveller.
#[derive(Debug)]
enum Sign {
    /// A decision event (`admitted`, `refused`, `registered`, …).
    Decision(String, Value),
    /// A referral to an officer.
    Referral(String, Value),
    /// An alarm.
    Alarm(String),
    /// A screen (`not_recognised`, `declaration`, …).
    Screen(String),
}

/// The next new event, else the screens, read once.
fn look(lane: &mut Lane) -> anyhow::Result<Vec<Sign>> {
    let status = lane.status()?;
    let mut signs = Vec::new();
    let mut events: Vec<&Value> = status["events"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    events.sort_by_key(|e| e["seq"].as_u64().unwrap_or(0));
    // A lane that restarted numbers its events from 1 again.
    let newest = events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0) as usize;
    if newest < lane.seen_events {
        lane.seen_events = 0;
    }
    for e in events {
        let seq = e["seq"].as_u64().unwrap_or(0) as usize;
        if seq <= lane.seen_events {
            continue;
        }
        lane.seen_events = seq;
        let code = e["code"].as_str().unwrap_or_default().to_string();
        match e["kind"].as_str() {
            Some("decision") => signs.push(Sign::Decision(code, e.clone())),
            Some("referral") => signs.push(Sign::Referral(code, e.clone())),
            Some("alarm") => signs.push(Sign::Alarm(code)),
            _ => {}
        }
    }
    for s in status["screens"].as_array().into_iter().flatten() {
        if let Some(code) = s["code"].as_str() {
            signs.push(Sign::Screen(code.to_string()));
        }
    }
    Ok(signs)
}

/// One passage's story, for the narrative.
#[derive(Default)]
struct Story {
    steps: Vec<String>,
}

impl Story {
    fn add(&mut self, s: impl Into<String>) {
        let s = s.into();
        if self.steps.last() != Some(&s) {
            self.steps.push(s);
        }
    }
}

/// Whether the traveller at lane `number` on this visit has a finger the reader cannot take:
/// lane 1's first traveller, every other visit (the first one included).
pub fn dry_finger(number: u32, traveller: usize, visit: usize) -> bool {
    number == 1 && traveller == 0 && visit % 2 == 0
}

/// Walks `t` through the lane once; the story of the passage.
async fn pass(
    lane: &mut Lane,
    assets: &std::path::Path,
    t: &Traveller,
    visit: usize,
    dry: bool,
) -> anyhow::Result<String> {
    let rel = t.photos[visit % t.photos.len()];
    // Whatever the lane said before this traveller stepped up is not about them.
    lane.skip_events()?;
    if dry {
        // The reader's next three captures (the procedure's tries) are too poor to use.
        lane.fingers
            .push(std::iter::repeat_n(SimOutcome::LowQuality, 3));
    }
    lane.show(Scene::Photo(photo(assets, rel)?))?;
    let started = Instant::now();
    let mut story = Story::default();
    let mut presented = false;
    let mut answered = false;
    loop {
        if started.elapsed() > PASSAGE_LIMIT {
            bail!(
                "no decision within {PASSAGE_LIMIT:?} ({})",
                story.steps.join(" → ")
            );
        }
        let signs = look(lane)?;
        let mut screens = Vec::new();
        for sign in signs {
            match sign {
                Sign::Decision(code, e) if code == "admitted" => {
                    let how = if e["detail"].as_str().unwrap_or_default().contains("face") {
                        "gate 1 opens by face"
                    } else {
                        "gate 1 opens by card"
                    };
                    story.add(how);
                    lane.walk_through().await?;
                    story.add("both authorities clear → gates 2, 3 open → cleared");
                    return Ok(story.steps.join(" → "));
                }
                Sign::Decision(code, _) if code == "registered" => {
                    story.add("registered at the channel (consent sent to both authorities)");
                }
                Sign::Decision(code, e) => {
                    // The detail reads `refused (guardian_consent_missing, card)`.
                    let detail = e["detail"].as_str().unwrap_or_default();
                    let reason = detail
                        .split_once('(')
                        .and_then(|(_, r)| r.split([',', ')']).next())
                        .unwrap_or(detail);
                    story.add(format!("{code}: {reason}"));
                }
                Sign::Referral(code, e) => {
                    // The channel is held: the walk loop waits for the release.
                    let detail = e["detail"].as_str().unwrap_or_default();
                    story.add(format!("referred to an officer ({code}: {detail})"));
                    return Ok(story.steps.join(" → "));
                }
                Sign::Alarm(code) => story.add(format!("alarm {code}")),
                Sign::Screen(code) => screens.push(code),
            }
        }
        for code in screens {
            match code.as_str() {
                "not_recognised" if !presented => {
                    story.add("face not recognised");
                }
                "declaration" if !answered => {
                    let agree = t.standing.agrees();
                    lane.answer_declaration(agree)?;
                    answered = true;
                    story.add(if agree {
                        "reads the declaration, taps Agree"
                    } else {
                        "declines to register"
                    });
                }
                "minor_needs_guardian" => story.add("minor: needs a guardian's consent"),
                c if c.starts_with("not_offered:") => story.add(format!(
                    "not offered registration ({}; the authorities were asked)",
                    c.trim_start_matches("not_offered:").replace('_', " ")
                )),
                "face_quality" => story.add("face not usable (quality gate)"),
                _ => {}
            }
        }
        let not_recognised = story.steps.iter().any(|s| s == "face not recognised");
        if !presented && (not_recognised || started.elapsed() > PRESENT_AFTER) {
            lane.present(
                t.document_kind(),
                t.document,
                t.name,
                t.date_of_birth(Utc::now().date_naive()),
                t.expiry(),
            )?;
            presented = true;
            story.add("presents the permit (card scan)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The traveller walks away (out of view, out of the zone); waits until the lane is idle.
async fn leave(lane: &mut Lane) -> anyhow::Result<()> {
    lane.show(Scene::Empty)?;
    lane.gates.set_occupancy(0);
    lane.wait_step("idle", Duration::from_secs(30)).await
}

/// Walks the demo's travellers through `lane` on a loop, one every `interval`, starting with
/// traveller `first`, until `stop` turns true. Prints one line per passage.
pub async fn walk(
    mut lane: Lane,
    number: u32,
    assets: std::path::PathBuf,
    client: Arc<ClusterClient>,
    interval: Duration,
    first: usize,
    mut stop: watch::Receiver<bool>,
) -> Lane {
    let _ = lane.skip_events();
    let mut n = first;
    let mut unreachable = false;
    loop {
        // A lane node that is down (or restarting) gets no travellers, and one line.
        match lane.status() {
            Err(e) => {
                if !unreachable {
                    say!("lane {number}  unreachable ({e:#}); travellers wait until it is back");
                    unreachable = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = stop.wait_for(|s| *s) => return lane,
                }
            }
            Ok(_) if unreachable => {
                say!("lane {number}  back");
                unreachable = false;
            }
            Ok(_) => {}
        }
        let t = &TRAVELLERS[n % TRAVELLERS.len()];
        let visit = n / TRAVELLERS.len();
        let dry = dry_finger(number, n % TRAVELLERS.len(), visit);
        let started = Instant::now();
        let result = tokio::select! {
            r = pass(&mut lane, &assets, t, visit, dry) => r,
            _ = stop.wait_for(|s| *s) => return lane,
        };
        if *stop.borrow() {
            return lane;
        }
        let took = started.elapsed().as_secs_f32();
        let who = format!(
            "lane {number}  {:<15} {:<27}",
            t.name,
            t.standing.describe()
        );
        match result {
            Ok(story) => say!("{who}{story}  [{took:.1} s]"),
            Err(e) => say!("{who}did not get through: {e:#}  [{took:.1} s]"),
        }
        let _ = lane.show(Scene::Empty);
        lane.gates.set_occupancy(0);
        let held = lane
            .status()
            .ok()
            .and_then(|s| s["view"]["held_for"].as_str().map(str::to_string));
        if let Some(why) = held {
            say!(
                "lane {number}  held for an officer ({why}): release it from the console's lane page \
                 (the demo's officer does in {} s)",
                OFFICER_AFTER.as_secs()
            );
            tokio::select! {
                _ = release_when_held(&lane, &client, number) => {}
                _ = stop.wait_for(|s| *s) => return lane,
            }
        }
        let _ = leave(&mut lane).await;
        n += 1;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return lane,
        }
    }
}

/// Waits [`OFFICER_AFTER`]; if the channel is still held, releases it with an audited order.
async fn release_when_held(lane: &Lane, client: &ClusterClient, number: u32) {
    tokio::time::sleep(OFFICER_AFTER).await;
    let still = lane
        .status()
        .ok()
        .is_some_and(|s| s["view"]["held_for"].is_string());
    if !still {
        say!("lane {number}  released from the console");
        return;
    }
    match crate::lane::order(
        client,
        &lane.channel,
        OverrideAction::Release,
        "demo-officer",
        "demo: the officer dealt with the traveller in person",
    )
    .await
    {
        Ok(index) => say!(
            "lane {number}  the demo's officer released the channel (order at log index {index}, audited)"
        ),
        Err(e) => {
            say!("lane {number}  the demo's officer could not release the channel: {e:#}")
        }
    }
}
