//! Multi-process port clusters on loopback: replication, leader and learner crashes, snapshots,
//! certificate refusal and erasure. Every wait is on a condition with a deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clearway_gallery::{Command, Outcome, PersonId};
use clearway_node::cluster::ClusterClient;
use clearway_node::cluster::protocol::{Call, NodeStatus, Reply, encode};
use clearway_node::net::Identity;
use clearway_node::net::rpc::RpcEndpoint;
use clearway_node::net::tls::PortCa;
use clearway_tests::port::{LocalPort, PORT, Tuning, enrol, leader, random_embedding, template};
use rand::SeedableRng;

const LONG: Duration = Duration::from_secs(120);

/// Waits until every node has applied at least `index`, then returns their digests.
async fn converged(
    port: &LocalPort,
    client: &ClusterClient,
    nodes: &[u64],
    index: u64,
) -> Vec<String> {
    let mut digests = Vec::new();
    for &id in nodes {
        client
            .wait_for(id, "catch-up", LONG, |s| {
                s.applied_index.is_some_and(|a| a >= index)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", port.log(id)));
    }
    // Applied indexes may still differ (blank entries after elections): compare at a quiet point.
    let until = std::time::Instant::now() + LONG;
    loop {
        digests.clear();
        let mut applied = Vec::new();
        for &id in nodes {
            let (d, a) = client.digest(id).await.expect("digest");
            digests.push(d);
            applied.push(a);
        }
        if applied.windows(2).all(|w| w[0] == w[1]) {
            return digests;
        }
        assert!(
            std::time::Instant::now() < until,
            "applied indexes never settled: {applied:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 3 voters + 2 learners: writes through any node converge; 10,000 enrolments survive two leader
/// SIGKILLs and a learner SIGKILL; a cancellation is erased everywhere and shredded on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_replicates_through_crashes_and_erases_cancelled_persons() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut port = LocalPort::new(
        tmp.path(),
        1..=5,
        Tuning {
            snapshot_every: 2000,
            ..Tuning::default()
        },
    );
    let client = port.bootstrap(&[1, 2, 3], &[4, 5]).await;
    let all = [1, 2, 3, 4, 5];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);

    // Writes through a learner, a follower and whoever leads are forwarded and converge.
    let needle = random_embedding(&mut rng);
    let mut last = 0;
    for (via, doc) in [(4u64, "NEEDLE"), (2, "A-2"), (1, "A-1")] {
        let embedding = if doc == "NEEDLE" {
            needle.clone()
        } else {
            random_embedding(&mut rng)
        };
        let reply = client
            .call(
                via,
                &Call::Write(
                    client
                        .audited(vec![enrol(doc, &embedding)], "enrol", "gallery", "test")
                        .expect("sign"),
                ),
            )
            .await
            .expect("write");
        let Reply::Written { index, outcomes } = reply else {
            panic!("unexpected {reply:?}")
        };
        assert!(matches!(outcomes[1], Outcome::Enrolled(_)), "{outcomes:?}");
        last = last.max(index);
    }
    let digests = converged(&port, &client, &all, last).await;
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "replicas differ: {digests:?}"
    );

    // 10,000 enrolments in batches of 50 from 4 writers, while the leader is killed twice and a
    // learner once.
    let acked: Arc<std::sync::Mutex<BTreeMap<String, PersonId>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let client = Arc::new(client);
    let mut writers = Vec::new();
    for w in 0..4usize {
        let (client, acked, done) = (client.clone(), acked.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(100 + w as u64);
            for b in 0..50usize {
                let docs: Vec<String> = (0..50).map(|i| format!("W{w}-{b}-{i}")).collect();
                let commands = docs
                    .iter()
                    .map(|d| enrol(d, &random_embedding(&mut rng)))
                    .collect();
                // Retried across elections; the document makes a retry idempotent.
                let (_, outcomes) = client
                    .write_audited(commands, "enrol", "gallery", "test", LONG)
                    .await
                    .expect("write acknowledged");
                let mut acked = acked.lock().expect("lock");
                for (doc, o) in docs.into_iter().zip(outcomes) {
                    match o {
                        Outcome::Enrolled(id) | Outcome::AlreadyEnrolled(id) => {
                            acked.insert(doc, id);
                        }
                        other => panic!("{doc}: {other:?}"),
                    }
                }
                done.fetch_add(50, Ordering::SeqCst);
            }
        }));
    }
    let wait_done = |n: usize| {
        let done = done.clone();
        async move {
            let until = std::time::Instant::now() + LONG;
            while done.load(Ordering::SeqCst) < n {
                assert!(
                    std::time::Instant::now() < until,
                    "writers stalled below {n}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    for (at, kill_learner) in [(2500, true), (6000, false)] {
        wait_done(at).await;
        let old = leader(&client, &[1, 2, 3]).await;
        port.kill(old);
        if kill_learner {
            port.kill(5);
        }
        let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&v| v != old).collect();
        let new = leader(&client, &others).await;
        assert_ne!(new, old);
        port.start(old);
        if kill_learner {
            port.start(5);
        }
    }
    for w in writers {
        w.await.expect("writer");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    assert_eq!(acked.len(), 10_000);
    let s = client
        .status(leader(&client, &[1, 2, 3]).await)
        .await
        .expect("status");
    let digests = converged(&port, &client, &all, s.applied_index.unwrap_or(0)).await;
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "replicas differ: {digests:?}"
    );
    // Every acknowledged write is on the replicas (identical, so checking one learner suffices).
    for (doc, id) in &acked {
        // Person reads are rate-limited (even an operator's): wait when told to.
        let entry = loop {
            match client.person(5, *id, false).await {
                Err(clearway_wire::Error::Remote { code, .. }) if code == "rate_limited" => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => break other,
            }
        }
        .expect("read")
        .unwrap_or_else(|| panic!("{doc} missing"));
        assert_eq!(&entry.document.number, doc);
    }
    for id in all {
        let st = client.status(id).await.expect("status");
        assert_eq!(st.persons, 10_003, "node {id}");
    }

    // Cancel the needle person: nobody identifies them, and the disk no longer holds them.
    let hits = client.search(4, needle.clone(), 1).await.expect("search");
    let needle_id = hits[0].person;
    assert!(hits[0].score > 0.99);
    let epochs: Vec<u32> = key_epochs(&client, &all).await;
    let (cancel_index, outcomes) = client
        .write_audited(
            vec![Command::Cancel { person: needle_id }],
            "cancel",
            &needle_id.to_string(),
            "cancelled at a service location",
            LONG,
        )
        .await
        .expect("cancel");
    assert_eq!(outcomes, vec![Outcome::Cancelled(needle_id)]);
    for id in all {
        let st = client
            .wait_for(id, "shredding", LONG, |s| s.shredded_index >= cancel_index)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", port.log(id)));
        assert!(
            st.key_epoch > epochs[(id - 1) as usize],
            "node {id}: key not rotated"
        );
        let metrics = client.metrics(id).await.expect("metrics");
        assert!(
            metrics.contains(&format!("clearway_storage_key_epoch {}", st.key_epoch)),
            "{metrics}"
        );
        let hits = client.search(id, needle.clone(), 1).await.expect("search");
        assert!(
            hits.iter().all(|h| h.person != needle_id),
            "node {id} still finds the cancelled person"
        );
        assert!(
            client
                .person(id, needle_id, false)
                .await
                .expect("read")
                .is_none()
        );
    }
    let bytes: Vec<u8> = template(&needle).data().iter().map(|&b| b as u8).collect();
    for id in all {
        port.kill(id);
        let found = clearway_tests::files_containing(&port.data_dir(id), &bytes);
        assert!(found.is_empty(), "node {id}: template bytes in {found:?}");
        let found = clearway_tests::files_containing(&port.data_dir(id), b"NEEDLE");
        assert!(found.is_empty(), "node {id}: document number in {found:?}");
    }
    // Restarted after SIGKILL, every node still has its data.
    for id in all {
        port.start(id);
    }
    let s = client
        .status(leader(&client, &[1, 2, 3]).await)
        .await
        .expect("status");
    let digests = converged(&port, &client, &all, s.applied_index.unwrap_or(0)).await;
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "replicas differ after restart: {digests:?}"
    );
    assert_eq!(client.status(4).await.expect("status").persons, 10_002);
}

async fn key_epochs(client: &ClusterClient, nodes: &[u64]) -> Vec<u32> {
    let mut out = Vec::new();
    for &id in nodes {
        out.push(client.status(id).await.expect("status").key_epoch);
    }
    out
}

/// A fresh learner with an empty disk joins a gallery of 100,000 templates by snapshot and
/// answers a 1:N query; a linearizable read sees the latest write. A person was cancelled before
/// it joined: the learner never held him, so it records the cancellation as shredded without a
/// key rotation (`cluster/exposure.rs`), and does not hold him.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fresh_learner_catches_up_from_a_100k_snapshot() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tuning = Tuning {
        snapshot_every: 20,
        keep_logs_after_snapshot: 0,
        ..Tuning::default()
    };
    let mut port = LocalPort::new(tmp.path(), 1..=3, tuning);
    let client = port.bootstrap(&[1, 2, 3], &[]).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let needle = random_embedding(&mut rng);
    let cancelled = random_embedding(&mut rng);
    let mut last = 0;
    let mut cancelled_at = 0;
    for b in 0..100 {
        let commands: Vec<Command> = (0..1000)
            .map(|i| {
                if b == 57 && i == 123 {
                    enrol("NEEDLE", &needle)
                } else {
                    enrol(&format!("S{b}-{i}"), &random_embedding(&mut rng))
                }
            })
            .collect();
        let (index, _) = client
            .write_audited(commands, "enrol", "gallery", "test", LONG)
            .await
            .expect("write");
        last = index;
        if b == 20 {
            // Someone enrolled, then cancelled, long before the learner joins.
            let (_, outcomes) = client
                .write_audited(
                    vec![enrol("CANCELLED", &cancelled)],
                    "enrol",
                    "gallery",
                    "test",
                    LONG,
                )
                .await
                .expect("enrol");
            let person = outcomes[0].person().expect("enrolled");
            (cancelled_at, _) = client
                .write_audited(
                    vec![Command::Cancel { person }],
                    "cancel",
                    &person.to_string(),
                    "test",
                    LONG,
                )
                .await
                .expect("cancel");
        }
    }
    let leader_id = leader(&client, &[1, 2, 3]).await;
    // The leader's last snapshot must leave room for the entries adding the learner: a snapshot
    // built while the learner installs an older one is sent too, and a second install rotates
    // (the first one's data is older than it). One enrolment at a time until it does.
    let mut extra = 0;
    loop {
        let purged = client
            .wait_for(leader_id, "the last snapshot and purge", LONG, |s| {
                s.purged_index
                    .is_some_and(|p| p > cancelled_at && p + 20 > last)
            })
            .await
            .expect("leader purged its log")
            .purged_index
            .unwrap_or(0);
        if purged + 20 > last + 4 {
            break;
        }
        let more = vec![enrol(&format!("X{extra}"), &random_embedding(&mut rng))];
        (last, _) = client
            .write_audited(more, "enrol", "gallery", "test", LONG)
            .await
            .expect("write");
        extra += 1;
    }

    port.add_node(4);
    port.start(4);
    let client = port.client();
    let epoch = client
        .wait_for(4, "the new node", LONG, |_| true)
        .await
        .expect("status")
        .key_epoch;
    let change = clearway_node::cluster::protocol::MembershipChange::AddLearner {
        id: 4,
        addr: port.addrs[&4].to_string(),
    };
    client
        .change_membership(change, LONG)
        .await
        .expect("add learner");
    let st = client
        .wait_for(4, "snapshot catch-up", LONG, |s| {
            s.applied_index.is_some_and(|a| a >= last)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", port.log(4)));
    assert_eq!(st.indexed_templates, 100_000 + extra);
    assert!(
        port.log(4).contains("Snapshot installed"),
        "caught up by snapshot:\n{}",
        port.log(4)
    );
    let st = client
        .wait_for(4, "the cancellation recorded as shredded", LONG, |s| {
            s.shredded_index >= cancelled_at
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", port.log(4)));
    assert_eq!(
        st.key_epoch,
        epoch,
        "a learner that held nothing before its snapshot does not rotate its key:\n{}",
        port.log(4)
    );
    assert!(
        client.search(4, cancelled, 1).await.expect("search")[0].score < 0.9,
        "the cancelled person is not in the learner's replica"
    );
    let metrics = port.scrape(4);
    for line in [
        "clearway_cluster_snapshots_installed_total 1".to_string(),
        format!(
            "clearway_gallery_templates{{model=\"sface@2021dec\"}} {}",
            100_000 + extra
        ),
        "clearway_cluster_state{state=\"learner\"} 1".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    let hits = client.search(4, needle.clone(), 3).await.expect("search");
    let expected = client.search(leader_id, needle, 3).await.expect("search");
    assert_eq!(hits, expected);
    assert!(hits[0].score > 0.99);
    // A linearizable read through the learner: right after a heavy catch-up it may not have
    // heard from the (possibly new) leader yet, and says so with a retryable error.
    let until = std::time::Instant::now() + LONG;
    let entry = loop {
        match client.person(4, hits[0].person, true).await {
            Ok(entry) => break entry.expect("registered"),
            Err(clearway_wire::Error::Remote { retry: true, .. })
                if std::time::Instant::now() < until =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("linearizable read: {e}"),
        }
    };
    assert_eq!(entry.document.number, "NEEDLE");
}

/// A node whose certificate is not from the port CA cannot send a single Raft message; a client
/// certificate cannot speak for a node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_certificates_and_impersonation_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut port = LocalPort::new(tmp.path(), 1..=1, Tuning::default());
    let client = port.bootstrap(&[1], &[]).await;
    let before = client.status(1).await.expect("status");

    let vote = |node: u64, term: u64| {
        let vote = openraft::Vote::new(term, node);
        Call::Vote(openraft::raft::VoteRequest::new(vote, None))
    };
    // A CA of the same port name that is not this port's CA.
    let foreign = PortCa::create(PORT)
        .expect("foreign CA")
        .issue(&Identity::Node(2), &clearway_node::net::Role::Voter)
        .expect("bundle");
    let endpoint = RpcEndpoint::client(&foreign).expect("endpoint");
    let err = endpoint
        .call(
            port.addrs[&1],
            &Identity::Node(1),
            &encode(&vote(2, 99)).expect("encode"),
            Duration::from_secs(5),
        )
        .await
        .expect_err("foreign certificate refused");
    eprintln!("refused as expected: {err}");

    // A real client certificate claiming to be node 7.
    let reply = client
        .call(1, &vote(7, 99))
        .await
        .expect_err("impersonation refused");
    assert!(reply.to_string().contains("may not vote"), "{reply}");

    let after: NodeStatus = client.status(1).await.expect("status");
    assert_eq!(after.term, before.term, "no vote reached raft");
    assert_eq!(after.state, "leader");
}
