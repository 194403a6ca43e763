//! A full disk under the lane's outbox (issue 16). The records that make a passage lawful (the
//! clearance both authorities receive) must be on disk before gates 2 and 3 open.
//!
//! * The lane: its outbox lives on a size-limited tmpfs that the test fills while a traveller
//!   is in the channel. The outbox keeps a reserve of free space (sled writes into log segments
//!   it has already grown, so a write on a full disk may succeed or fail long after it filled):
//!   the clearance cannot be stored, so gates 2 and 3 stay shut, an officer is called, the alarm
//!   reaches the console, `/metrics` counts it, and nobody passes (face or card) until the disk
//!   has room again. Then the lane recovers by itself, and the next passage's records reach both
//!   authorities, with none for the passage that did not happen.
//! * The outbox alone, with no reserve, on a tmpfs filled to the last byte: sled's own write
//!   fails (ENOSPC); every record accepted before is kept, the refused one is never stored, and
//!   the outbox reopens its database once there is room.
//!
//! Mounting a tmpfs needs root (CI runs as root).

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use std::sync::Arc;

use chrono::Utc;
use clearway_gallery::ops::OverrideAction;
use clearway_gallery::{Authority, DocumentKind};
use clearway_node::lane::authority::{AuthorityMetrics, Outbox, OutboxError, OutboxKeys};
use clearway_node::lane::camera::sim::Scene;
use clearway_node::lane::procedure::{
    AuthorityRecord, ClearanceMethod, Delivery, DocumentKey, GateId, GateState,
};
use clearway_node::store::custody::Custody;
use clearway_node::store::keyring::Keyring;
use clearway_tests::lane::{CHANNEL, metric, order, rig_with, until, wait_lane_api};
use clearway_tests::photo;

/// A tmpfs of a fixed size, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Process::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a {size} tmpfs at {} failed ({status}): this test needs root, as in CI",
            at.display()
        );
        Tmpfs(at.to_owned())
    }

    /// Writes one file until the filesystem is full; its path.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        for size in [1 << 16, 4096, 1] {
            let chunk = vec![0xA5u8; size];
            loop {
                match file.write_all(&chunk) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::StorageFull => break,
                    Err(e) => panic!("filling {}: {e}", path.display()),
                }
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: the lane node may still hold files there while the rig shuts down.
        let _ = Process::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The clearances of document `number` the authority holds.
async fn clearances(rig: &clearway_tests::lane::Rig, authority: Authority, number: &str) -> usize {
    rig.records(authority)
        .await
        .into_iter()
        .filter(|(_, r)| {
            matches!(r, AuthorityRecord::Clearance { document, .. } if document.number == number)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_stops_passages_before_the_gates_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Tmpfs::mount(&dir.path().join("outbox-disk"), "24m");
    let outbox = disk.0.join("outbox");
    let mut rig = rig_with(
        dir.path(),
        "",
        &Authority::ALL,
        &format!(
            "outbox_dir = \"{}\"\noutbox_reserve_mb = 8\n",
            outbox.display()
        ),
    )
    .await;
    let client = rig.port.client();
    rig.enrol_macao_adult("M10000001", "OBAMA, BARACK", "face_recognition/obama.jpg")
        .await;
    wait_lane_api(&rig).await;
    assert!(outbox.is_dir(), "the lane's outbox is on the small disk");

    // 1. A passage with room on the disk: cleared, its records reach both authorities.
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    rig.wait_event("decision", "admitted", Duration::from_secs(60))
        .await;
    rig.walk_through().await;
    for authority in Authority::ALL {
        until(
            "the first clearance's records",
            Duration::from_secs(20),
            async || clearances(&rig, authority, "M10000001").await == 1,
        )
        .await;
    }

    // 2. The next traveller is admitted at gate 1 (nothing to record yet), and the disk fills
    //    as he walks to gate 2: his clearance cannot be stored (or the lane's watch on the
    //    disk noticed first): gates 2 and 3 stay shut and an officer is called.
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    rig.wait_event("decision", "admitted", Duration::from_secs(30))
        .await;
    let filler = disk.fill();
    rig.lane.show(Scene::Empty).expect("gate-1 scene");
    rig.lane.gates.set_occupancy(1);
    rig.wait_event("referral", "records_unwritable", Duration::from_secs(30))
        .await;
    let status = rig.status();
    assert_eq!(status["view"]["held_for"], "records_unwritable", "{status}");
    assert_eq!(status["view"]["records_unwritable"], true, "{status}");
    assert_eq!(status["view"]["face_scan"], false, "{status}");
    let events = status["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "decision" && e["code"] == "cleared")
            .count(),
        1,
        "only the first passage was cleared: {events:?}"
    );
    // Gates 2 and 3 were never told to open (give a wrongly sent command time to show).
    tokio::time::sleep(Duration::from_secs(1)).await;
    for gate in [GateId::Two, GateId::Three] {
        assert_eq!(rig.lane.gates.state(gate), GateState::Closed, "{gate}");
    }
    let report = client.lane(2).await.expect("lane").expect("lane");
    assert!(
        report.alarms.iter().any(|a| a.kind == "records_unwritable"),
        "the console sees it: {report:?}"
    );
    // Counted as an alarm. (As a failed write only when the write was tried: the lane's watch on
    // the free space may stop the passage first. The outbox test below counts failed writes.)
    let m = rig.port.scrape(2);
    assert_eq!(metric(&m, "clearway_outbox_writable"), Some(0.0));
    assert_eq!(
        metric(
            &m,
            "clearway_lane_alarms_total{kind=\"records_unwritable\"}"
        ),
        Some(1.0)
    );

    // 3. The officer takes the traveller out and releases the channel; while the disk is full
    //    nobody starts a passage: not by card, not by face.
    rig.lane.gates.set_occupancy(0);
    order(
        &client,
        CHANNEL,
        OverrideAction::Release,
        "supervisor-1",
        "traveller escorted to the officer's desk",
    )
    .await
    .expect("release");
    rig.wait_step("idle", Duration::from_secs(15)).await;
    rig.wait_screen("records_unwritable", Duration::from_secs(5))
        .await;
    rig.present(
        clearway_gallery::DocumentKind::MainlandTravelPermitHkMacao,
        "M10000001",
        "OBAMA, BARACK",
        "1961-08-04",
        "2030-12-31",
    );
    rig.wait_event("decision", "refused", Duration::from_secs(10))
        .await;
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rig.lane.gates.state(GateId::One), GateState::Closed);
    rig.show(Scene::Empty);

    // 4. Room again: the lane notices by itself (a probe write), face scan is back, the alarm
    //    clears, and a passage is recorded with both authorities.
    std::fs::remove_file(&filler).expect("free the disk");
    until(
        "the outbox writes again",
        Duration::from_secs(20),
        async || {
            let s = rig.status();
            s["view"]["records_unwritable"] == false && s["view"]["face_scan"] == true
        },
    )
    .await;
    assert_eq!(
        metric(&rig.port.scrape(2), "clearway_outbox_writable"),
        Some(1.0)
    );
    // Frames of step 3's face still in flight when the disk came back may have admitted the
    // traveller already (rightly: he stood there); that passage lapses unused. Only a passage
    // that starts from here counts.
    rig.wait_step("idle", Duration::from_secs(10)).await;
    rig.lane.skip_events().expect("lane status");
    rig.show(Scene::Photo(photo("face_recognition/obama2.jpg")));
    rig.wait_event("decision", "admitted", Duration::from_secs(30))
        .await;
    rig.walk_through().await;
    for authority in Authority::ALL {
        until(
            "the last clearance's records",
            Duration::from_secs(20),
            async || clearances(&rig, authority, "M10000001").await == 2,
        )
        .await;
    }
    // … and the passage that did not happen was never reported.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for authority in Authority::ALL {
        assert_eq!(
            clearances(&rig, authority, "M10000001").await,
            2,
            "{authority}"
        );
    }
    let report = client.lane(2).await.expect("lane").expect("lane");
    assert!(
        !report.alarms.iter().any(|a| a.kind == "records_unwritable"),
        "the alarm cleared: {report:?}"
    );
    drop(rig);
}

fn record(n: u32) -> Delivery {
    Delivery {
        authority: Authority::Macao,
        record: AuthorityRecord::Clearance {
            document: DocumentKey {
                kind: DocumentKind::PermitHkMacao,
                number: format!("C{n:08}"),
            },
            method: ClearanceMethod::Face,
            cleared_at: Utc::now(),
            channel: "testport/passenger/1".into(),
            direction: "Macao → Hengqin".into(),
        },
    }
}

#[test]
fn an_outbox_on_a_full_disk_keeps_what_it_accepted_and_stores_nothing_it_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Tmpfs::mount(&dir.path().join("disk"), "4m");
    let ring = Keyring::load(
        &dir.path().join("outbox.keyring"),
        true,
        Arc::new(Custody::plain()),
    )
    .expect("keyring");
    let path = disk.0.join("outbox");
    let registry = prometheus::Registry::new();
    let metrics = AuthorityMetrics::new(&registry).expect("metrics");
    let scrape = || {
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut text)
            .expect("encode");
        text
    };
    // No reserve: sled meets the full disk itself.
    let outbox = Outbox::open_path(&path, "lane-2", OutboxKeys::new(Arc::new(ring)), metrics)
        .expect("outbox");
    let filler = disk.fill();
    let mut accepted = Vec::new();
    let refused = loop {
        let n = accepted.len() as u32;
        assert!(n < 100_000, "a full 4 MiB disk took 100,000 records");
        match outbox.push(record(n)) {
            Ok(key) => accepted.push(key),
            Err(e) => break e,
        }
    };
    assert!(matches!(refused, OutboxError::Storage(_)), "{refused}");
    assert!(
        !accepted.is_empty(),
        "sled wrote into the segment it had grown"
    );
    assert!(outbox.unwritable().is_some());
    // Nothing more is taken while the disk is full, and nothing reopens.
    assert!(outbox.push(record(u32::MAX)).is_err());
    assert!(outbox.recover().is_err(), "the disk is still full");
    assert_eq!(outbox.depth(Authority::Macao), accepted.len());
    // Both refusals are counted as failed writes, and the outbox shows as unwritable.
    assert_eq!(
        metric(&scrape(), "clearway_outbox_write_failures_total"),
        Some(2.0)
    );
    assert_eq!(metric(&scrape(), "clearway_outbox_writable"), Some(0.0));

    // Room again: reopened from disk, every accepted record is there, in order; the refused
    // one is not (its sequence number is given to the next record).
    std::fs::remove_file(&filler).expect("free the disk");
    outbox.recover().expect("the outbox writes again");
    assert!(outbox.unwritable().is_none());
    assert_eq!(metric(&scrape(), "clearway_outbox_writable"), Some(1.0));
    assert_eq!(
        outbox.pending_keys(Authority::Macao).expect("keys"),
        accepted
    );
    let (key, _) = outbox
        .peek(Authority::Macao)
        .expect("peek")
        .expect("a record");
    assert_eq!(key, accepted[0]);
    let next = outbox.push(record(0)).expect("a write after recovery");
    assert_eq!(outbox.depth(Authority::Macao), accepted.len() + 1);
    assert_eq!(
        outbox.pending_keys(Authority::Macao).expect("keys").last(),
        Some(&next)
    );
    drop(outbox);
}
