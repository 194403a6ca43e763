//! Port cluster benchmarks on loopback (separate `clearway-node run` processes, fsync on):
//!
//! 1. enrolment commit latency: one enrolment per log entry, one writer, p50/p99;
//! 2. batched throughput: 256 enrolments per entry, 4 writers;
//! 3. catch-up: a fresh learner joins a gallery of N templates (default 1,000,000) by snapshot;
//! 4. restart: that learner stops cleanly (timed: it writes its replica checkpoint) and starts again;
//!    time from its start until it answers with its whole index (the registry and the 1:N index are
//!    loaded before the node answers anything), once from its checkpoint and once, killed, from its
//!    records; and its resident memory after catch-up and after the restart beside the size of what
//!    it holds;
//! 5. commit latency while every node shreds a cancellation (a snapshot of the whole gallery, a log
//!    purge and a key rotation), one enrolment per entry, one writer.
//!
//! `cargo bench -p clearway-tests --bench cluster [-- CATCHUP_TEMPLATES]`; `just bench` runs it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clearway_gallery::Command;
use clearway_node::cluster::protocol::MembershipChange;
use clearway_tests::port::{LocalPort, Tuning, enrol, leader, random_embedding};
use rand::{Rng, SeedableRng};

const LONG: Duration = Duration::from_secs(600);

fn synthetic(doc: String, rng: &mut impl Rng) -> Command {
    enrol(&doc, &random_embedding(rng))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let catchup: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // The port's directory (every node's data and log) is removed after a run that completes,
    // and kept after one that fails, for its logs: a failed 10M run is an hour to repeat.
    let tmp = tempfile::tempdir().expect("tempdir").keep();
    eprintln!("port directory (kept if the run fails): {}", tmp.display());
    // A wait that scales with the gallery: at 10M a snapshot build alone takes minutes of a core
    // on this VM, and three nodes build at once.
    let slow = LONG.max(Duration::from_secs((catchup / 5_000) as u64));
    // One snapshot per 400 entries up to 1M, fewer beyond: at 10M the load is 10,000 entries of
    // 1,000 persons, and a build every 400 of them would keep all three nodes (on this VM's two
    // cores) building a gallery of millions back to back. A lane's enrolments come one per entry,
    // so the production default (5,000 entries) is far apart in persons.
    let tuning = Tuning {
        snapshot_every: 400.max(catchup as u64 / 4_000),
        keep_logs_after_snapshot: 0,
        fsync: true,
        heartbeat_ms: 250,
    };
    let snapshot_every = tuning.snapshot_every;
    let mut port = LocalPort::new(&tmp, 1..=3, tuning);
    let client = Arc::new(port.bootstrap(&[1, 2, 3], &[]).await);
    let leader_id = leader(&client, &[1, 2, 3]).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);

    // 1. Commit latency, one enrolment per entry, through the leader.
    let mut lat = Vec::new();
    for i in 0..2000 {
        let req = client
            .audited(
                vec![synthetic(format!("L{i}"), &mut rng)],
                "enrol",
                "gallery",
                "benchmark load",
            )
            .expect("sign");
        let t = Instant::now();
        let reply = client
            .call(
                leader_id,
                &clearway_node::cluster::protocol::Call::Write(req),
            )
            .await;
        lat.push(t.elapsed());
        reply.expect("write");
    }
    lat.sort();
    println!(
        "commit latency (1 enrolment/entry, 1 writer, 3 voters, fsync): n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        lat.len(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );

    // 2. Batched throughput.
    let t = Instant::now();
    let mut writers = Vec::new();
    for w in 0..4 {
        let client = client.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(10 + w);
            for b in 0..50 {
                let cmds = (0..256)
                    .map(|i| synthetic(format!("T{w}-{b}-{i}"), &mut rng))
                    .collect();
                client
                    .write_audited(cmds, "import", "gallery", "benchmark load", LONG)
                    .await
                    .expect("write");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let n = 4 * 50 * 256;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "throughput (256 enrolments/entry, 4 writers): {n} enrolments in {secs:.2} s = {:.0} enrolments/s",
        n as f64 / secs
    );

    // 3. Catch-up of a fresh learner.
    let have = client.status(leader_id).await.expect("status").persons;
    let t = Instant::now();
    let mut last = 0;
    let mut b = 0;
    while have + b * 1000 < catchup {
        let cmds = (0..1000)
            .map(|i| synthetic(format!("C{b}-{i}"), &mut rng))
            .collect();
        last = client
            .write_audited(cmds, "import", "gallery", "benchmark load", LONG)
            .await
            .expect("write")
            .0;
        b += 1;
    }
    println!(
        "loaded {} persons in {:.1} s",
        have + b * 1000,
        t.elapsed().as_secs_f64()
    );
    // Until the leader has a snapshot of the whole load and has purged the log under it, so the
    // learner receives the gallery as a snapshot and replays only a short tail. A build starts
    // once `snapshot_every` entries follow the last snapshot: single enrolments are written until
    // one does, then none while it builds.
    let load_end = last;
    let wait = Instant::now();
    let mut fillers = 0;
    loop {
        // A node busy building may not answer in time: ask again.
        let Ok(s) = client.status(leader_id).await else {
            continue;
        };
        if s.purged_index.is_some_and(|p| p >= load_end) {
            break;
        }
        assert!(
            wait.elapsed() < slow,
            "gave up after {slow:?} waiting for a snapshot past {load_end}: {s:?}"
        );
        let since = (s.last_log_index.unwrap_or(0)).saturating_sub(s.snapshot_index.unwrap_or(0));
        if since < snapshot_every {
            let cmds = vec![synthetic(format!("F{fillers}"), &mut rng)];
            last = client
                .write_audited(cmds, "enrol", "gallery", "benchmark filler", LONG)
                .await
                .expect("write")
                .0;
            fillers += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!(
        "leader's snapshot of the whole load purged its log {:.1} s after loading ({fillers} single \
         enrolments written meanwhile to reach its interval of {snapshot_every} entries)",
        wait.elapsed().as_secs_f64()
    );
    port.add_node(4);
    port.start(4);
    let client = port.client();
    // Resident memory of the sender (the leader) and the receiver during the transfer: sampled
    // every 100 ms until node 4 has caught up.
    let sender_before = port.pid(leader_id).and_then(rss_mib);
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let peaks = {
        let pids = [port.pid(leader_id), port.pid(4)];
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = [0u64; 2];
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                for (p, pid) in peak.iter_mut().zip(pids) {
                    *p = (*p).max(pid.and_then(rss_mib).unwrap_or(0));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let t = Instant::now();
    client
        .change_membership(
            MembershipChange::AddLearner {
                id: 4,
                addr: port.addrs[&4].to_string(),
            },
            LONG,
        )
        .await
        .expect("add learner");
    let s = client
        .wait_for(4, "catch-up", slow, |s| {
            s.applied_index.is_some_and(|a| a >= last)
        })
        .await
        .expect("caught up");
    println!(
        "catch-up: fresh learner applied {} templates (index {last}) in {:.1} s",
        s.indexed_templates,
        t.elapsed().as_secs_f64()
    );
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let [sender_peak, receiver_peak] = peaks.join().unwrap_or_default();
    println!(
        "transfer memory: sender (node {leader_id}) RSS {} MiB before, peak {sender_peak} MiB during; \
         receiver (node 4) peak {receiver_peak} MiB",
        sender_before.map_or("?".into(), |m| m.to_string()),
    );

    // Where the catch-up time went: node 4's snapshot milestones (timestamps, no personal data).
    let log = std::fs::read_to_string(port.node_dir(4).join("log")).unwrap_or_default();
    for line in log.lines().filter(|l| l.contains("napshot")).take(12) {
        println!("  node 4: {line}");
    }

    // 4. Restart of the lane node that caught up.
    let templates = s.indexed_templates;
    // Let the snapshot file and the last batches settle before measuring memory.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_caught_up = port.pid(4).and_then(rss_mib);
    let stop = Instant::now();
    assert!(port.stop(4), "node 4 stops cleanly");
    let stopping = stop.elapsed().as_secs_f64();
    let log_path = port.node_dir(4).join("log");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if let Some(line) = log.lines().rev().find(|l| l.contains("replica checkpoint")) {
        println!("  node 4: {line}");
    }
    // A clean stop left a checkpoint of the replica's indexes: this start reads it.
    let (serving, rss_restarted) = restart(&mut port, &client, 4, templates, &log_path).await;
    // Killed, a node leaves none: the next start opens every record.
    port.kill(4);
    let (serving_records, _) = restart(&mut port, &client, 4, templates, &log_path).await;
    // What the node holds, raw: one 128-byte int8 row (+ scale, sum and person id: 16 bytes) and one
    // ~150-byte record per template (one template per synthetic person).
    let raw_mib = templates as f64 * (128.0 + 16.0 + 150.0) / (1024.0 * 1024.0);
    println!(
        "restart: node 4 stopped cleanly in {stopping:.1} s, then serves searches over {templates} \
         templates {serving:.1} s after its start (from its checkpoint); killed, {serving_records:.1} s \
         (from its records); RSS {} MiB after catch-up, {} MiB after restart; raw templates + \
         records ~{raw_mib:.0} MiB; data dir {:.0} MiB on disk",
        rss_caught_up.map_or("?".into(), |m| m.to_string()),
        rss_restarted.map_or("?".into(), |m| m.to_string()),
        dir_size(&port.data_dir(4)) as f64 / (1024.0 * 1024.0),
    );

    // 5. Commit latency while the port shreds a cancellation: every node builds a snapshot of
    // the whole gallery past it, purges its log and re-seals its person keys under a new key.
    // Writes go on meanwhile, one enrolment per entry, one writer, until the leader has shredded
    // it (at least 100 writes).
    let before = client.status(leader_id).await.expect("status");
    let t = Instant::now();
    let (cancelled_at, _) = client
        .write_audited(
            vec![Command::Cancel {
                person: clearway_gallery::PersonId(1),
            }],
            "cancel",
            "person",
            "benchmark shred",
            LONG,
        )
        .await
        .expect("cancel");
    let mut lat = Vec::new();
    let mut i = 0;
    let mut unanswered = 0;
    let mut timed_out = 0;
    loop {
        // A status call the leader does not answer in time is counted, not fatal.
        let shredded = match client.status(leader_id).await {
            Ok(s) => s.shredded_index >= cancelled_at,
            Err(_) => {
                unanswered += 1;
                false
            }
        };
        if shredded && lat.len() >= 100 {
            break;
        }
        let req = client
            .audited(
                vec![synthetic(format!("S{i}"), &mut rng)],
                "enrol",
                "gallery",
                "benchmark load",
            )
            .expect("sign");
        let w = Instant::now();
        // A write unanswered within the client's deadline (10 s) is counted at what it waited.
        if client
            .call(
                leader_id,
                &clearway_node::cluster::protocol::Call::Write(req),
            )
            .await
            .is_err()
        {
            timed_out += 1;
        }
        lat.push(w.elapsed());
        i += 1;
    }
    let shred = t.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "commit latency while the port shreds a cancellation over {} persons (snapshot, purge, \
         key rotation on every node; {shred:.1} s until the leader's was done): n={} p50={:.2} ms \
         p99={:.2} ms max={:.1} ms; writes unanswered in 10 s: {timed_out}; status calls \
         unanswered: {unanswered}",
        before.persons,
        lat.len(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );
    let log = std::fs::read_to_string(port.node_dir(leader_id).join("log")).unwrap_or_default();
    for line in log
        .lines()
        .filter(|l| l.contains("napshot built") || l.contains("hredded"))
        .rev()
        .take(4)
    {
        println!("  node {leader_id}: {line}");
    }
    // The run completed: its nodes are stopped and its directory removed.
    drop(port);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Starts node `id` and times it until it answers with its whole index; prints its log lines of
/// this start (timestamps, no personal data) and returns the time and its resident memory then.
async fn restart(
    port: &mut LocalPort,
    client: &clearway_node::cluster::ClusterClient,
    id: u64,
    templates: usize,
    log_path: &std::path::Path,
) -> (f64, Option<u64>) {
    let logged = std::fs::metadata(log_path).map_or(0, |m| m.len() as usize);
    let t = Instant::now();
    port.start(id);
    client
        .wait_for(id, "restart", LONG, |s| s.indexed_templates >= templates)
        .await
        .expect("restarted");
    let serving = t.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let lines: Vec<&str> = log.get(logged..).unwrap_or_default().lines().collect();
    for line in lines.iter().take(20) {
        println!("  node {id}: {line}");
    }
    (serving, port.pid(id).and_then(rss_mib))
}

/// Resident set of a process in MiB (`VmRSS` of `/proc/PID/status`).
fn rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
