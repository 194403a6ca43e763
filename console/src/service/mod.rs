//! The console's service layer: every page read and every action, with its role check, input
//! checks and reason check, over `auth` and `port_api`. Server functions and axum handlers are
//! thin wrappers around these methods; the tests call them directly, without a browser.
//!
//! Checks come in a fixed order: the port exists (404), the viewer's role allows it on this
//! port (403), the input makes sense (422), a reason is given (422); only then is a port asked.

mod desk;
mod lanes;
mod manage;
#[cfg(test)]
pub(crate) mod tests;

pub use desk::{CancelEvidence, ConsentForm};
pub use lanes::{Stage, acknowledgeable};
pub use manage::PortForm;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tracing::info;

use crate::auth::{Auth, Millis};
use crate::config::{ConsoleConfig, PortConfig};
use crate::dto::{MAX_REASON_CHARS, PortSnapshot, PortSummary, Role, Viewer};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::port_api::{AuditEntry, Change, PortApi};
use crate::rollout::RolloutStore;
use crate::snapshot::{self, PortDef, Tracker};

/// One port the console runs: its definition, its connection and its latest state.
pub struct PortHandle {
    /// Definition.
    pub def: PortDef,
    /// Connection.
    pub api: PortApi,
    latest: RwLock<Arc<PortSnapshot>>,
    tx: broadcast::Sender<Arc<PortSnapshot>>,
    /// What the poller remembers (lane nodes learnt from bundles are seeded here).
    pub tracker: std::sync::Mutex<Tracker>,
    /// Camera viewings this console recorded: audit seq → (user, channel). Only the user whose
    /// viewing a record is may fetch stills with it.
    pub viewings: std::sync::Mutex<BTreeMap<u64, (String, String)>>,
}

impl std::fmt::Debug for PortHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortHandle")
            .field("port", &self.def.id)
            .finish_non_exhaustive()
    }
}

impl PortHandle {
    fn new(def: PortDef, poll_timeout: Duration, now: Millis) -> PortHandle {
        let api = PortApi::new(
            &def.id,
            &def.bundle_dir,
            poll_timeout,
            def.utc_offset_minutes,
        );
        let (tx, _) = broadcast::channel(16);
        PortHandle {
            latest: RwLock::new(Arc::new(snapshot::waiting(&def, now))),
            tx,
            api,
            def,
            tracker: std::sync::Mutex::new(Tracker::default()),
            viewings: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The latest snapshot.
    pub fn latest(&self) -> Arc<PortSnapshot> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stores a snapshot and tells subscribers, if anything but its time changed. Returns
    /// whether it changed.
    pub fn publish(&self, s: PortSnapshot) -> bool {
        let mut latest = self.latest.write().unwrap_or_else(|p| p.into_inner());
        let same = {
            let old = latest.as_ref();
            PortSnapshot {
                taken_at_ms: old.taken_at_ms,
                taken_at: old.taken_at.clone(),
                ..s.clone()
            } == *old
        };
        if same {
            return false;
        }
        let s = Arc::new(s);
        *latest = s.clone();
        // No subscriber is fine.
        let _ = self.tx.send(s);
        true
    }

    /// Live updates.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<PortSnapshot>> {
        self.tx.subscribe()
    }

    /// The nodes to talk to: every member seen, plus the seeds.
    pub fn nodes(&self) -> BTreeMap<u64, SocketAddr> {
        let mut out = self.def.seeds.clone();
        for m in &self.latest().members {
            if let Ok(a) = m.addr.parse() {
                out.insert(m.id, a);
            }
        }
        out
    }
}

/// One change to replicate: its metric label, audit action and target, reason, and content.
struct Write {
    /// Bounded metric label (`gate1_open`, `ack_alarm`, `cancel`, …).
    metric: String,
    /// Audit action, e.g. `order.gate1_open`.
    action: String,
    /// Audit target: a channel, person id or port; never a document number.
    target: String,
    /// The user's reason (checked).
    reason: String,
    /// What to replicate.
    change: Change,
}

/// The console: users, ports, metrics.
pub struct Console {
    config: ConsoleConfig,
    /// Users and sessions.
    pub auth: Auth,
    /// Metrics.
    pub metrics: Metrics,
    ports: RwLock<BTreeMap<String, Arc<PortHandle>>>,
    rollout: RolloutStore,
    /// The console's own hash-chained audit log (accounts, ports, bundles, retirements).
    ledger: crate::ledger::Ledger,
    /// Turns true when the console is stopping: live streams end so the server can too.
    stopping: tokio::sync::watch::Sender<bool>,
    _db: sled::Db,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

/// Opens the console's database in `data_dir`.
pub fn open_db(data_dir: &Path) -> Result<sled::Db> {
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    let path = data_dir.join("console.sled");
    sled::open(&path).map_err(|e| Error::Store(format!("{}: {e}", path.display())))
}

fn port_def(p: &PortConfig, rolled_out: bool) -> Result<PortDef> {
    Ok(PortDef {
        id: p.id.clone(),
        name: p.name.clone(),
        utc_offset_minutes: p.utc_offset_minutes,
        halls: p.halls.clone(),
        bundle_dir: p.bundle_dir.clone(),
        seeds: p.seeds().map_err(Error::Invalid)?,
        rolled_out,
        dashboard_url: p.dashboard_url.clone(),
    })
}

/// Checks a reason: non-empty after trimming, at most [`MAX_REASON_CHARS`], no control
/// characters but newlines (CRLF becomes LF).
pub fn check_reason(reason: &str) -> Result<String> {
    // Browsers send a textarea's line breaks as CRLF; the port's log keeps plain newlines.
    let r = reason.replace("\r\n", "\n").replace('\r', "\n");
    let r = r.trim();
    if r.is_empty() || r.chars().count() > MAX_REASON_CHARS {
        return Err(Error::ReasonRequired);
    }
    if r.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::Invalid(
            "the reason contains control characters".into(),
        ));
    }
    Ok(r.to_string())
}

/// Checks a short free-text field (names, references): 1–200 characters, no control characters.
pub fn check_text(what: &str, s: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::Invalid(format!("{what} is required")));
    }
    if s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{what} must be at most 200 characters without control characters"
        )));
    }
    Ok(s.to_string())
}

impl Console {
    /// Opens the console: the database in the config's data dir, the ports of the config file
    /// and those rolled out before. Pollers are started by [`crate::poller::spawn_all`].
    pub fn open(config: ConsoleConfig, metrics: Metrics) -> Result<Console> {
        let db = open_db(&config.data_dir)?;
        let auth = Auth::open(&db, config.auth.clone())?;
        Console::with_parts(config, metrics, db, auth)
    }

    /// Opens the console with an explicit auth store (tests use a cheap hashing cost).
    pub fn with_parts(
        config: ConsoleConfig,
        metrics: Metrics,
        db: sled::Db,
        auth: Auth,
    ) -> Result<Console> {
        let rollout = RolloutStore::open(&db, &config.data_dir.join("ports"), config.lab_ca)?;
        let ledger = crate::ledger::Ledger::open(&db)?;
        let now = crate::auth::now_ms();
        let mut ports = BTreeMap::new();
        let timeout = Duration::from_millis(config.poll_timeout_ms);
        for p in &config.ports {
            ports.insert(
                p.id.clone(),
                Arc::new(PortHandle::new(port_def(p, false)?, timeout, now)),
            );
        }
        for p in rollout.ports()? {
            if ports.contains_key(&p.id) {
                return Err(Error::Invalid(format!(
                    "port {} is both in the config file and rolled out from the console",
                    p.id
                )));
            }
            let handle = PortHandle::new(port_def(&p, true)?, timeout, now);
            for b in rollout.bundles(&p.id)? {
                if let Some(c) = &b.channel {
                    handle
                        .tracker
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .learn_lane(c, b.node);
                }
            }
            ports.insert(p.id.clone(), Arc::new(handle));
        }
        Ok(Console {
            config,
            auth,
            metrics,
            ports: RwLock::new(ports),
            rollout,
            ledger,
            stopping: tokio::sync::watch::Sender::new(false),
            _db: db,
        })
    }

    /// Ends every live stream (server-sent events) now and any opened later: the console is
    /// stopping, and a graceful shutdown waits for open connections.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Watches for [`Console::stop`].
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The configuration.
    pub fn config(&self) -> &ConsoleConfig {
        &self.config
    }

    /// Every port.
    pub fn ports(&self) -> Vec<Arc<PortHandle>> {
        self.ports
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A port, or 404.
    pub fn port(&self, id: &str) -> Result<Arc<PortHandle>> {
        self.ports
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("there is no port {id:?}")))
    }

    fn add_port(&self, handle: Arc<PortHandle>) {
        self.ports
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(handle.def.id.clone(), handle);
    }

    /// The port if the viewer may watch it: 404 when unknown, 403 when not theirs.
    pub fn monitored(&self, v: &Viewer, port: &str) -> Result<Arc<PortHandle>> {
        let p = self.port(port)?;
        if !v.may_monitor(port) {
            return Err(self.refuse(match v.role {
                Role::ServiceDesk => {
                    "the service desk does not monitor lanes; use the service desk page".into()
                }
                _ => format!("you are not a supervisor of port {port}"),
            }));
        }
        Ok(p)
    }

    /// The port if the viewer may override its lanes.
    fn overridable(&self, v: &Viewer, port: &str) -> Result<Arc<PortHandle>> {
        let p = self.port(port)?;
        if !v.may_override(port) {
            return Err(self.refuse(format!(
                "only a supervisor of port {port} may override its lanes or acknowledge its alarms"
            )));
        }
        Ok(p)
    }

    fn require(&self, v: &Viewer, role: Role, what: &str) -> Result<()> {
        if v.role == role {
            Ok(())
        } else {
            Err(self.refuse(format!("only a {} may {what}", role.label().to_lowercase())))
        }
    }

    /// Records a console-local administrative action in the console's audit log (flushed
    /// before the action is answered).
    fn record(
        &self,
        v: &Viewer,
        action: &str,
        target: &str,
        reason: &str,
        now: Millis,
    ) -> Result<()> {
        let seq = self.ledger.record(
            crate::ledger::Action {
                actor: &v.name,
                role: v.role.as_str(),
                action,
                target,
                reason,
            },
            now,
        )?;
        info!(user = %v.name, action, seq, "Console audit record written.");
        Ok(())
    }

    fn refuse(&self, message: String) -> Error {
        self.metrics.refused.with_label_values(&["forbidden"]).inc();
        Error::Forbidden(message)
    }

    /// Replicates a change with its audit record, counting it by action and result.
    async fn submit(
        &self,
        port: &PortHandle,
        v: &Viewer,
        w: Write,
        now: Millis,
    ) -> Result<crate::dto::WriteReceipt> {
        let audit = AuditEntry {
            actor: v.name.clone(),
            role: v.role.as_str().into(),
            action: w.action.clone(),
            target: w.target.clone(),
            reason: w.reason,
            at_ms: now,
        };
        let result = port.api.submit(&port.nodes(), &audit, &w.change).await;
        let word = match &result {
            Ok(_) => "ok",
            Err(Error::Refused(_)) => "refused",
            Err(_) => "error",
        };
        self.metrics
            .overrides
            .with_label_values(&[w.metric.as_str(), word])
            .inc();
        match &result {
            Ok(r) => info!(
                port = %port.def.id, user = %v.name, action = %w.action, target = %w.target,
                index = r.index, audit_seq = r.audit_seq, "Change replicated."
            ),
            Err(e) => info!(
                port = %port.def.id, user = %v.name, action = %w.action, target = %w.target,
                error = %e, "Change failed."
            ),
        }
        result
    }

    // ------------------------------------------------------------------ monitoring

    /// The ports the viewer may watch.
    pub fn overview(&self, v: &Viewer) -> Result<Vec<PortSummary>> {
        if v.role == Role::ServiceDesk {
            return Err(self.refuse(
                "the service desk does not monitor lanes; use the service desk page".into(),
            ));
        }
        Ok(self
            .ports()
            .iter()
            .filter(|p| v.may_monitor(&p.def.id))
            .map(|p| PortSummary::from(p.latest().as_ref()))
            .collect())
    }

    /// The open alarms of every port the viewer watches, newest first (empty for the desk).
    pub fn alarm_queue(&self, v: &Viewer) -> Vec<crate::dto::QueuedAlarm> {
        let snaps: Vec<Arc<PortSnapshot>> = self.ports().iter().map(|p| p.latest()).collect();
        crate::dto::alarm_queue(v, snaps.iter().map(|s| s.as_ref()))
    }

    /// A port's live state.
    pub fn snapshot(&self, v: &Viewer, port: &str) -> Result<Arc<PortSnapshot>> {
        Ok(self.monitored(v, port)?.latest())
    }

    /// Where rolled-out ports keep their files.
    pub fn ports_dir(&self) -> PathBuf {
        self.config.data_dir.join("ports")
    }
}
