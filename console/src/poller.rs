//! One poller task per port (the port's `*Driver`): every `poll_interval_ms` it asks every
//! member for its status, every lane node for its lane and one node for the ledger, assembles
//! the port's snapshot and publishes it when it changed (SSE clients get it at once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::auth::now_ms;
use crate::service::{Console, PortHandle};
use crate::snapshot::Tracker;

/// Starts a poller for every port.
pub fn spawn_all(console: &Arc<Console>) {
    for port in console.ports() {
        spawn(console.clone(), port);
    }
}

/// Starts the poller of one port; it runs as long as the runtime.
pub fn spawn(console: Arc<Console>, port: Arc<PortHandle>) {
    tokio::spawn(async move { run(console, port).await });
}

async fn run(console: Arc<Console>, port: Arc<PortHandle>) {
    let interval = Duration::from_millis(console.config().poll_interval_ms);
    let lag_alarm = console.config().replication_lag_alarm_entries;
    let id = port.def.id.clone();
    let up = console.metrics.port_up.with_label_values(&[id.as_str()]);
    let mut nodes: BTreeMap<u64, String> = port
        .def
        .seeds
        .iter()
        .map(|(n, a)| (*n, a.to_string()))
        .collect();
    let mut was_up = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    info!(port = %id, nodes = nodes.len(), interval_ms = interval.as_millis() as u64, "Polling port.");
    loop {
        ticker.tick().await;
        let polled = port.api.poll(&nodes, now_ms()).await;
        nodes = Tracker::members_to_poll(&polled, &port.def.seeds);
        let snapshot = {
            let mut tracker = port.tracker.lock().unwrap_or_else(|e| e.into_inner());
            tracker.assemble(&port.def, &polled, lag_alarm)
        };
        let reachable = snapshot.reachable;
        console
            .metrics
            .polls
            .with_label_values(&[id.as_str(), if reachable { "ok" } else { "unreachable" }])
            .inc();
        up.set(i64::from(reachable));
        if let Some((cert, ca)) = port.api.bundle_expiry() {
            for (certificate, t) in [("console_client", cert), ("port_ca", ca)] {
                console
                    .metrics
                    .certificate_expiry
                    .with_label_values(&[certificate, id.as_str()])
                    .set(t);
            }
        }
        if was_up != Some(reachable) {
            match (&snapshot.error, reachable) {
                (Some(e), false) => warn!(port = %id, error = %e, "Port unreachable."),
                _ => info!(port = %id, leader = ?snapshot.leader, "Port reachable."),
            }
            was_up = Some(reachable);
        }
        if port.publish(snapshot) {
            debug!(port = %id, "Port state changed.");
        }
    }
}
