//! Commit latency of a port (3 voters, separate `clearway-node run` processes on loopback, fsync
//! on) quiet and while a stolen lane certificate floods the leader from 12 endpoints (64
//! concurrent calls each: requests over the lane's size cap, garbage, calls its role may not
//! make; 4 endpoints over the per-identity connection cap). Same run, same machine: the ratio is
//! the figure. `cargo bench -p clearway-tests --bench flood [-- WRITES]`; `just bench` runs it.

use std::time::{Duration, Instant};

use clearway_node::cluster::ClusterClient;
use clearway_node::cluster::protocol::Call;
use clearway_node::net::{Identity, Role};
use clearway_tests::flood::Flood;
use clearway_tests::port::{LocalPort, Tuning, enrol, leader, random_embedding};
use rand::SeedableRng;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `n` single-enrolment writes through the leader, one at a time: sorted latencies.
async fn commits(client: &ClusterClient, leader: u64, tag: &str, n: usize) -> Vec<Duration> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(tag.len() as u64);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let request = client
            .audited(
                vec![enrol(&format!("{tag}{i}"), &random_embedding(&mut rng))],
                "enrol",
                "gallery",
                "benchmark",
            )
            .expect("sign");
        let t = Instant::now();
        client
            .call(leader, &Call::Write(request))
            .await
            .expect("write");
        lat.push(t.elapsed());
    }
    lat.sort();
    lat
}

fn report(what: &str, lat: &[Duration]) -> (f64, f64) {
    let (p50, p99) = (
        percentile(lat, 0.5).as_secs_f64() * 1e3,
        percentile(lat, 0.99).as_secs_f64() * 1e3,
    );
    println!("{what}: n={} p50={p50:.2} ms p99={p99:.2} ms", lat.len());
    (p50, p99)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let writes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let tmp = tempfile::tempdir().expect("tempdir");
    let tuning = Tuning {
        fsync: true,
        ..Tuning::default()
    };
    let mut port = LocalPort::new(tmp.path(), 1..=3, tuning);
    let client = port.bootstrap(&[1, 2, 3], &[]).await;
    let target = leader(&client, &[1, 2, 3]).await;
    let addr = port.addrs[&target];

    let quiet = commits(&client, target, "Q", writes).await;
    let (q50, q99) = report("commit latency, quiet", &quiet);

    let stolen = port
        .ca
        .issue(
            &Identity::Node(99),
            &Role::Lane {
                channel: "testport/passenger/9".into(),
            },
        )
        .expect("lane bundle");
    let flood = Flood::start(&stolen, addr, target);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let flooded = commits(&client, target, "F", writes).await;
    let secs = started.elapsed().as_secs_f64();
    let sent = flood.stop().await;
    let (f50, f99) = report("commit latency, flooded", &flooded);
    println!(
        "flood: {:.0} refused calls/s from one lane certificate; flooded/quiet p50 {:.2}x, p99 {:.2}x",
        sent as f64 / secs,
        f50 / q50,
        f99 / q99
    );
}
