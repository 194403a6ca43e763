//! Test support: a console, its ports and viewers made in a few lines. Used by the console's
//! unit tests and by the workspace's tests (`tests/tests/console_service.rs`, which runs the
//! service layer against real cluster nodes: the console crate itself does not depend on the
//! node, ARCHITECTURE.md "layers"). Nothing here is used by the console binary.

use std::collections::BTreeMap;
use std::path::Path;

use argon2::Params;

use crate::auth::Auth;
use crate::config::{AuthConfig, ConsoleConfig, HallConfig, PortConfig};
use crate::dto::{Role, Viewer};
use crate::metrics::Metrics;
use crate::service::{Console, open_db};

/// A signed-in user as the service layer sees them (CSRF token `t`).
pub fn viewer(name: &str, role: Role, ports: &[&str]) -> Viewer {
    Viewer {
        name: name.into(),
        role,
        ports: ports.iter().map(|p| p.to_string()).collect(),
        csrf: "t".into(),
        must_change: false,
    }
}

/// A port with two halls (passenger: 4 channels, onboard: 2) reached through `bundle_dir` at
/// `nodes` (node id → QUIC address).
pub fn port_config(id: &str, bundle_dir: &Path, nodes: BTreeMap<String, String>) -> PortConfig {
    PortConfig {
        id: id.into(),
        name: format!("{id} port"),
        utc_offset_minutes: 480,
        bundle_dir: bundle_dir.to_path_buf(),
        nodes,
        halls: vec![
            HallConfig {
                id: "passenger".into(),
                name: "Passenger Inspection Hall".into(),
                channels: 4,
            },
            HallConfig {
                id: "onboard".into(),
                name: "On-board Passengers Hall".into(),
                channels: 2,
            },
        ],
        dashboard_url: None,
    }
}

/// A console over `dir` with cheap password hashing, plain HTTP and the lab CA allowed.
pub fn console(dir: &Path, ports: Vec<PortConfig>) -> Console {
    let config = ConsoleConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: None,
        tls: None,
        plain_http: true,
        redirect_listen: None,
        data_dir: dir.join("console"),
        site_dir: None,
        auth: AuthConfig::default(),
        poll_interval_ms: 100,
        poll_timeout_ms: 1000,
        replication_lag_alarm_entries: 1000,
        lab_ca: true,
        ports,
    };
    let db = open_db(&config.data_dir).expect("db");
    let auth = Auth::with_params(
        &db,
        config.auth.clone(),
        Params::new(1024, 1, 1, None).expect("params"),
    )
    .expect("auth");
    let metrics = Metrics::new(prometheus::Registry::new()).expect("metrics");
    Console::with_parts(config, metrics, db, auth).expect("console")
}
