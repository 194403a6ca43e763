//! A flood from one valid certificate, for the test and the benchmark that show a port keeps
//! committing through it: more endpoints than the per-identity connection cap, each sending
//! bursts of concurrent calls — requests over a lane's size cap, garbage, and a call a lane may
//! not make — until stopped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clearway_gallery::PersonId;
use clearway_node::cluster::protocol::{Call, encode};
use clearway_node::net::Identity;
use clearway_node::net::rpc::{MAX_CONNECTIONS_PER_IDENTITY, RpcEndpoint};
use clearway_node::net::tls::Bundle;

/// Concurrent calls per endpoint in each burst.
pub const BURST: usize = 64;

/// A running flood.
pub struct Flood {
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<u64>,
}

impl Flood {
    /// Floods node `node` at `addr` with `bundle`'s certificate from
    /// `MAX_CONNECTIONS_PER_IDENTITY + 4` endpoints (the last ones over the cap).
    pub fn start(bundle: &Bundle, addr: SocketAddr, node: u64) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for f in 0..(MAX_CONNECTIONS_PER_IDENTITY + 4) {
            let (bundle, stop) = (bundle.clone(), stop.clone());
            tasks.spawn(async move {
                let endpoint = Arc::new(RpcEndpoint::client(&bundle).expect("endpoint"));
                let mut sent = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let mut burst = tokio::task::JoinSet::new();
                    for i in 0..BURST {
                        let endpoint = endpoint.clone();
                        burst.spawn(async move {
                            let request = match (i + f) % 3 {
                                // Over a lane's request cap: refused after the length header.
                                0 => vec![0u8; 2 << 20],
                                // Garbage: not a call.
                                1 => vec![0xEE; 512],
                                // A call a lane may not make.
                                _ => encode(&Call::Person {
                                    person: PersonId(1),
                                    linearizable: true,
                                })
                                .expect("encode"),
                            };
                            let _ = endpoint
                                .call(
                                    addr,
                                    &Identity::Node(node),
                                    &request,
                                    Duration::from_secs(2),
                                )
                                .await;
                        });
                    }
                    while burst.join_next().await.is_some() {}
                    sent += BURST as u64;
                }
                sent
            });
        }
        Flood { stop, tasks }
    }

    /// Stops the flood; how many calls it sent.
    pub async fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let mut sent = 0;
        while let Some(n) = self.tasks.join_next().await {
            sent += n.expect("flooder");
        }
        sent
    }
}
