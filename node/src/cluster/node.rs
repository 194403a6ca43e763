//! A running cluster node: storage, Raft, the QUIC endpoint serving [`Call`]s, and the shredder
//! that turns each applied cancellation into an erasure on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clearway_gallery::ops::Revocations;
use clearway_gallery::{ModelId, Outcome, Request};
use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError};
use openraft::{BasicNode, ChangeMembers};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::authz::{self, Principal, Refusal};
use super::config::NodeConfig;
use super::freshness::Freshness;
use super::log_store::LogStore;
use super::metrics::{Live, Metrics};
use super::network::{Contacts, Network, resolve};
use super::protocol::{
    Call, LaneStatus, MAX_AUDIT_RECORDS, MembershipChange, NodeStatus, Reply, decode, encode,
    reply_error,
};
use super::state_machine::{GalleryHandle, Resealer, StateMachineStore};
use super::typ::{Node, NodeId, Raft};
use crate::error::{Error, Result};
use crate::net::rpc::{Handler, RpcEndpoint};
use crate::net::signing::AuditVerifier;
use crate::net::tls::Bundle;
use crate::net::{Identity, Peer, Revoked, Role};
use crate::store::keyring::Keyring;

/// sled's page cache. The node reads its database in full only at start (everything it serves
/// is in memory: the registry, the 1:N index, the ledger) and otherwise writes, so a small cache
/// costs little, while sled's default (1 GiB) would double a small port's resident memory.
const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long a forwarded call may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Person reads (by id or document) one client may make: a burst, then this many per second. A
/// console serves people at desks (a registration at a time); an operator's tool may verify an
/// import. Enumerating a 10M-person gallery takes a console days either way.
fn person_read_allowance(role: &Role) -> (f64, f64) {
    match role {
        Role::Operator => (2000.0, 1000.0),
        _ => (100.0, 20.0),
    }
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct ClusterNode {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    /// This node's role, from its certificate: only voters forward clients' calls.
    role: Role,
    raft: Raft,
    gallery: GalleryHandle,
    endpoint: Arc<RpcEndpoint>,
    /// When each peer last answered this node's Raft messages.
    contacts: Arc<Contacts>,
    /// A voter that answered the leader within this long (the longest election timeout) counts
    /// as reachable.
    reachable_within: Duration,
    keyring: Arc<Keyring>,
    log: LogStore,
    resealer: Resealer,
    /// Writes the replica checkpoint at shutdown.
    checkpointer: Arc<super::state_machine::Checkpointer>,
    db: sled::Db,
    /// Log index of the latest cancellation shredded here (persisted; the lane follows it).
    shredded: watch::Sender<u64>,
    snapshot_bytes: AtomicU64,
    shutdown: watch::Sender<bool>,
    metrics: Metrics,
    started: Instant,
    /// When (milliseconds after `started`) a leader's append last counted as contact: only once
    /// this replica applied what it said was committed (see [`super::freshness`]).
    freshness: std::sync::Mutex<Freshness>,
    model: String,
    /// The lane this node runs, once it has attached itself.
    lane: std::sync::RwLock<Option<AttachedLane>>,
    /// Person-read allowance per client: (tokens, last refill).
    person_reads: std::sync::Mutex<std::collections::HashMap<Identity, (f64, Instant)>>,
    /// Checks clients' signatures on audit records against the port CA.
    audit_verifier: AuditVerifier,
}

/// How the node's lane reports its state for [`Call::Lane`] (set by the lane runtime).
pub type LaneReporter = Arc<dyn Fn() -> LaneStatus + Send + Sync>;

/// The newest still (JPEG) of one of the lane's cameras (0 = gate 1, 1 = gate 2), if fresh;
/// asking keeps them coming for a few seconds (`lane::stills`).
pub type StillSource = Arc<dyn Fn(usize) -> Option<Vec<u8>> + Send + Sync>;

/// The lane a node runs, as its calls see it.
#[derive(Clone)]
struct AttachedLane {
    channel: String,
    report: LaneReporter,
    still: StillSource,
}

/// How long after its audit record a console may keep fetching a lane's camera stills.
pub const STILL_VIEWING: Duration = Duration::from_secs(10 * 60);
/// The audit action that records a supervisor's viewing of a lane's cameras.
pub use clearway_wire::protocol::STILL_ACTION;

impl ClusterNode {
    /// Opens the node's storage, starts Raft and serves the port's calls on `config.listen`.
    pub async fn start(config: &NodeConfig) -> Result<ClusterNode> {
        let bundle = Bundle::load(&config.tls_dir)?;
        if bundle.identity != Identity::Node(config.node_id) {
            return Err(Error::Config(format!(
                "{}: the certificate is for {}, but node_id is {}",
                config.tls_dir.display(),
                bundle.identity,
                config.node_id
            )));
        }
        check_role(&bundle, config)?;
        // Key custody is checked before anything is created.
        let key_file = config.key_file()?;
        let custody = Arc::new(config.custody()?);
        std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
        let db_path = config.data_dir.join("db");
        let is_new = !db_path.exists();
        let keyring = Arc::new(Keyring::load(&key_file, is_new, custody)?);
        let db = sled::Config::new()
            .path(&db_path)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()?;
        let fsync = config.raft.fsync;
        let log = LogStore::open(&db, keyring.clone(), fsync)?;
        let model = ModelId::new(&config.gallery.model, &config.gallery.model_version);
        let sm = StateMachineStore::open(
            &db,
            keyring.clone(),
            &config.data_dir.join("snapshot"),
            model,
            config.gallery.dim,
            fsync,
        )?;
        let resealer = sm.resealer();
        let checkpointer = Arc::new(sm.checkpointer());
        if keyring.rotating() {
            info!("Finishing an interrupted key rotation.");
            log.reseal().await?;
            resealer.reseal().await?;
            keyring.finish_rotation()?;
        }
        let erasures = sm.erasures();
        let revocations = sm.revocations();
        let shredded = sm.shredded_index()?;
        let gallery = sm.handle();
        let endpoint = Arc::new(RpcEndpoint::bind(&bundle, config.listen)?);
        let contacts = Arc::new(Contacts::default());
        let raft = Raft::new(
            config.node_id,
            Arc::new(config.openraft(&bundle.port)?),
            Network::new(endpoint.clone(), contacts.clone()),
            log.clone(),
            sm,
        )
        .await
        .map_err(|e| Error::Cluster(format!("raft did not start: {e}")))?;
        let (shutdown, _) = watch::channel(false);
        let metrics = Metrics::new(prometheus::Registry::new())
            .map_err(|e| Error::Cluster(format!("metrics: {e}")))?;
        metrics.certificate_expires("node", bundle.not_after);
        metrics.certificate_expires("port_ca", bundle.ca_not_after);
        let audit_verifier = AuditVerifier::new(&bundle)?;
        let node = ClusterNode {
            inner: Arc::new(Inner {
                audit_verifier,
                id: config.node_id,
                role: bundle.role.clone(),
                raft,
                gallery,
                endpoint: endpoint.clone(),
                contacts,
                reachable_within: Duration::from_millis(config.raft.election_timeout_max_ms),
                keyring,
                log,
                resealer,
                checkpointer,
                db,
                shredded: watch::Sender::new(shredded),
                snapshot_bytes: AtomicU64::new(0),
                shutdown,
                metrics,
                started: Instant::now(),
                lane: std::sync::RwLock::new(None),
                person_reads: std::sync::Mutex::new(std::collections::HashMap::new()),
                freshness: std::sync::Mutex::new(Freshness::default()),
                model: format!("{}@{}", config.gallery.model, config.gallery.model_version),
            }),
        };
        endpoint.serve(Arc::new(node.clone()));
        if let Some(addr) = config.metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Config(format!("metrics_listen {addr}: {e}")))?;
            let app = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get({
                        let node = node.clone();
                        move || {
                            let node = node.clone();
                            async move {
                                (
                                    [(
                                        axum::http::header::CONTENT_TYPE,
                                        "text/plain; version=0.0.4",
                                    )],
                                    node.metrics_text(),
                                )
                            }
                        }
                    }),
                )
                .route("/healthz", axum::routing::get(|| async { "ok\n" }));
            let mut stop = node.inner.shutdown.subscribe();
            tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.changed().await;
                    })
                    .await;
                if let Err(e) = served {
                    warn!(error = %e, "Metrics endpoint stopped.");
                }
            });
            info!(%addr, "Serving /metrics.");
        }
        tokio::spawn(node.clone().shredder(erasures));
        tokio::spawn(node.clone().revoker(revocations));
        info!(
            node = config.node_id,
            port = %bundle.port,
            listen = %config.listen,
            fsync,
            "Cluster node started."
        );
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The Raft handle.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The local replica of the gallery (what lanes match against).
    pub fn gallery(&self) -> &GalleryHandle {
        &self.inner.gallery
    }

    /// Replicates a batch of commands this node itself submits (its lane's registrations): on
    /// the leader directly, otherwise forwarded to it once, where it is authorised as this
    /// node's certificate (a lane: its own channel's registrations only). Returns the log index
    /// and one outcome per command.
    pub async fn write(&self, request: Request) -> Result<(u64, Vec<Outcome>)> {
        match self.inner.raft.client_write(request.clone()).await {
            Ok(r) => Ok((r.log_id.index, r.data.outcomes)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                match self.forward(&f, &Call::Write(request)).await? {
                    Reply::Written { index, outcomes } => Ok((index, outcomes)),
                    other => Err(reply_error(other).into()),
                }
            }
            Err(e) => Err(raft_error(e)),
        }
    }

    /// Replicates a client's batch: its audit record checked against the client's identity and
    /// signature on the leader ([`authz::check_audit`]), or forwarded (a voter only, `forward`)
    /// with the client's identity attached.
    async fn write_for(
        &self,
        principal: &Principal,
        forward: bool,
        request: Request,
    ) -> Result<(u64, Vec<Outcome>)> {
        // Checked wherever it is proposed from (and again by the leader if forwarded).
        self.check_audit(principal, &request)?;
        match self.inner.raft.client_write(request.clone()).await {
            Ok(r) => Ok((r.log_id.index, r.data.outcomes)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) if forward => match self
                .forward(&f, &on_behalf(principal, Call::Write(request)))
                .await?
            {
                Reply::Written { index, outcomes } => Ok((index, outcomes)),
                other => Err(reply_error(other).into()),
            },
            Err(e) => Err(raft_error(e)),
        }
    }

    /// [`authz::check_audit`] with this port's CA, refused (logged and counted) when it fails.
    fn check_audit(&self, principal: &Principal, request: &Request) -> Result<()> {
        authz::check_audit(
            principal,
            request,
            &self.inner.audit_verifier,
            chrono::Utc::now(),
        )
        .map_err(|reason| {
            warn!(peer = %principal, reason = %reason, "Audited batch refused.");
            self.inner.metrics.refused("write", principal.role.name());
            Error::Remote {
                code: "forbidden".into(),
                message: reason,
                retry: false,
            }
        })
    }

    /// Refuses `call` from `principal`: logged (no personal data: the call's name and the
    /// reason), counted, answered `forbidden`.
    fn refuse(&self, principal: &Principal, refusal: &Refusal) -> Reply {
        warn!(peer = %principal, call = refusal.call, reason = %refusal.reason, "Call refused.");
        self.inner.metrics.refused(refusal.call, refusal.role);
        Reply::error("forbidden", refusal.to_string(), false)
    }

    /// Refuses a call the node's own checks (not the table) turned down.
    fn refuse_because(&self, principal: &Principal, call: &'static str, reason: String) -> Reply {
        let refusal = Refusal {
            call,
            role: principal.role.name(),
            reason,
        };
        self.refuse(principal, &refusal)
    }

    /// Takes one person read from `principal`'s allowance: the answer to give instead when it
    /// is spent.
    fn person_read_limited(&self, principal: &Principal) -> Option<Reply> {
        if self.person_read_allowed(principal) {
            None
        } else {
            Some(Reply::error(
                "rate_limited",
                "too many person reads; slow down",
                true,
            ))
        }
    }

    fn person_read_allowed(&self, principal: &Principal) -> bool {
        let now = Instant::now();
        let mut reads = lock(&self.inner.person_reads);
        let (burst, per_second) = person_read_allowance(&principal.role);
        let (tokens, at) = reads
            .entry(principal.identity.clone())
            .or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(burst);
        *at = now;
        let allowed = *tokens >= 1.0;
        if allowed {
            *tokens -= 1.0;
        }
        self.inner.metrics.person_read(
            principal.role.name(),
            if allowed { "answered" } else { "rate_limited" },
        );
        allowed
    }

    /// A lane may add a face only to a person still pending their channel registration (a
    /// minor approved at a service location: guardian's consent, no face yet).
    fn check_completion(&self, request: &Request) -> std::result::Result<(), String> {
        let Request::V1(commands) = request else {
            return Ok(());
        };
        let Some(person) = authz::completes(commands) else {
            return Ok(());
        };
        match self.inner.gallery.entry(person) {
            Some(e) if e.templates.is_empty() && e.person.guardian_consent.is_some() => Ok(()),
            Some(_) => Err("this person is not pending a channel registration".into()),
            None => Err("no such person".into()),
        }
    }

    async fn forward(&self, to: &ForwardToLeader<NodeId, Node>, call: &Call) -> Result<Reply> {
        let (Some(id), Some(node)) = (to.leader_id, to.leader_node.as_ref()) else {
            return Err(no_leader());
        };
        if id == self.inner.id {
            return Err(no_leader());
        }
        let addr = resolve(&node.addr).await?;
        let bytes = encode(call)?;
        let reply = self
            .inner
            .endpoint
            .call(addr, &Identity::Node(id), &bytes, FORWARD_TIMEOUT)
            .await?;
        Ok(decode(&reply)?)
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> NodeStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let learners = membership
            .learner_ids()
            .filter(|id| !voters.contains(id))
            .collect();
        let (audit_len, audit_head) = self.inner.gallery.audit_head();
        let g = self.inner.gallery.read();
        NodeStatus {
            id: self.inner.id,
            state: format!("{:?}", m.state).to_lowercase(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters: voters.into_iter().collect(),
            learners,
            replication: m
                .replication
                .as_ref()
                .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect())
                .unwrap_or_default(),
            persons: g.registry.len(),
            indexed_templates: g.registry.index().len(),
            key_epoch: self.inner.keyring.epoch(),
            shredded_index: *self.inner.shredded.borrow(),
            members: membership
                .nodes()
                .map(|(id, node)| (*id, node.addr.clone()))
                .collect(),
            channel: self.lane_reporter().map(|l| l.channel),
            audit_len,
            audit_head,
        }
    }

    /// Attaches the lane this node runs: [`Call::Lane`] answers with what `reporter` says,
    /// [`Call::LaneStill`] with what `still` gives.
    pub fn attach_lane(&self, channel: String, reporter: LaneReporter, still: StillSource) {
        *self.inner.lane.write().unwrap_or_else(|e| e.into_inner()) = Some(AttachedLane {
            channel,
            report: reporter,
            still,
        });
    }

    /// A still of the lane's `camera` for the viewing audit record `audit_seq` records.
    fn lane_still(
        &self,
        camera: u8,
        audit_seq: u64,
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        let lane = self
            .lane_reporter()
            .ok_or_else(|| "this node runs no lane".to_string())?;
        let record = self.inner.gallery.audit(audit_seq, 1).into_iter().next();
        authz::still_viewing(record.as_ref(), &lane.channel, chrono::Utc::now())?;
        if camera > 1 {
            return Err(format!(
                "camera {camera}: a lane has cameras 0 (gate 1) and 1 (gate 2)"
            ));
        }
        Ok((lane.still)(usize::from(camera)))
    }

    fn lane_reporter(&self) -> Option<AttachedLane> {
        self.inner
            .lane
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Exports when a certificate the node uses expires; `certificate` names its role
    /// (`macao_client`), never its subject.
    pub fn certificate_expires(&self, certificate: &str, not_after_unix: i64) {
        self.inner
            .metrics
            .certificate_expires(certificate, not_after_unix);
    }

    /// Watches the log index of the latest cancellation shredded on this node (persisted across
    /// restarts): the lane's outbox rotates its key after each.
    pub fn shredded(&self) -> watch::Receiver<u64> {
        self.inner.shredded.subscribe()
    }

    /// The registry `/metrics` renders; other parts of the node (the lane) register on it.
    pub fn registry(&self) -> &prometheus::Registry {
        self.inner.metrics.registry()
    }

    /// Milliseconds since this replica last knew itself in touch with the cluster: for a leader,
    /// since a quorum acknowledged it; otherwise since the leader last reached it *and* this
    /// replica had applied what the leader then had committed (a node back from a restart or a
    /// partition is stale until it caught up). `None` if never.
    pub fn staleness_ms(&self) -> Option<u64> {
        let m = self.inner.raft.metrics().borrow().clone();
        if m.state == openraft::ServerState::Leader {
            m.millis_since_quorum_ack
        } else {
            let applied = m.last_applied.map_or(0, |l| l.index);
            let at = lock(&self.inner.freshness).current_at(applied)?;
            Some((self.inner.started.elapsed().as_millis() as u64).saturating_sub(at))
        }
    }

    /// The last applied log entry's (term, index): the fencing token this node's lane puts on
    /// gate commands. Committed entries' tokens rise with their index, so a supervisor's order
    /// (fenced with its own entry's token) is newer than every token applied before it.
    pub fn term_and_applied(&self) -> (u64, u64) {
        let m = self.inner.raft.metrics().borrow().clone();
        m.last_applied
            .map_or((0, 0), |l| (l.leader_id.term, l.index))
    }

    /// The node's metrics in Prometheus text format, refreshed now.
    pub fn metrics_text(&self) -> String {
        let live = Live {
            status: self.status(),
            staleness_ms: self.staleness_ms(),
            quic_connections: self.inner.endpoint.quic_connections(),
            contact_ages: self.inner.contacts.ages(),
            reachable_within: self.inner.reachable_within,
        };
        self.inner.metrics.render(&live, &self.inner.model)
    }

    /// Stops Raft and closes the endpoint, flushing storage.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        if let Err(e) = self.inner.raft.shutdown().await {
            warn!(error = %e, "Raft did not shut down cleanly.");
        }
        self.inner.endpoint.close().await;
        if let Err(e) = self.inner.db.flush_async().await {
            warn!(error = %e, "Final flush failed.");
        }
        // Raft has stopped applying: the replica is what sled holds, and its indexes go into a
        // checkpoint the next start reads instead of opening every record.
        let started = Instant::now();
        let checkpointer = self.inner.checkpointer.clone();
        match tokio::task::spawn_blocking(move || checkpointer.write()).await {
            Ok(Ok(true)) => info!(
                seconds = started.elapsed().as_secs_f64(),
                "Wrote the replica checkpoint."
            ),
            Ok(Ok(false)) => warn!("No replica checkpoint: the replica holds unwritten changes."),
            Ok(Err(e)) => warn!(error = %e, "The replica checkpoint could not be written."),
            Err(e) => warn!(error = %e, "The replica checkpoint's task failed."),
        }
    }

    /// Waits for applied cancellations and shreds them: snapshot past the cancellation, purge
    /// the log up to it, then rotate the storage key so nothing written before can be opened.
    async fn shredder(self, mut erasures: watch::Receiver<u64>) {
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            let target = *erasures.borrow_and_update();
            if target > *self.inner.shredded.borrow() {
                let mut backoff = Duration::from_millis(200);
                loop {
                    match self.shred(target).await {
                        Ok(()) => break,
                        Err(e) => {
                            warn!(error = %e, upto = target, "Shredding a cancellation failed; retrying.");
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = stop.changed() => return,
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                continue;
            }
            tokio::select! {
                r = erasures.changed() => if r.is_err() { return },
                _ = stop.changed() => return,
            }
        }
    }

    /// Keeps the endpoint's revocation list equal to the replicated one: a revocation applied
    /// here closes the revoked certificate's connections at once and refuses it from then on.
    async fn revoker(self, mut revocations: watch::Receiver<Revocations>) {
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            let list = revocations.borrow_and_update().clone();
            let revoked: Revoked = list
                .iter()
                .filter_map(|(identity, until)| {
                    Some((identity.parse::<Identity>().ok()?, until.timestamp()))
                })
                .collect();
            let closed = self.inner.endpoint.set_revoked(revoked);
            self.inner.metrics.revoked_certificates(list.len());
            if closed > 0 {
                info!(closed, "Closed the connections of revoked certificates.");
            }
            tokio::select! {
                r = revocations.changed() => if r.is_err() { return },
                _ = stop.changed() => return,
            }
        }
    }

    async fn shred(&self, upto: u64) -> Result<()> {
        if self.inner.resealer.shredded_index()? >= upto {
            // Recorded by a first snapshot install into a node that held nothing before it
            // (`exposure`): there is nothing older to shred, so no key rotation.
            self.inner.shredded.send_replace(upto);
            info!(
                upto,
                "Cancelled data shredded: this node holds nothing from before its snapshot."
            );
            return Ok(());
        }
        let raft = &self.inner.raft;
        let fatal = |e: openraft::error::Fatal<NodeId>| Error::Cluster(e.to_string());
        let timeout = Some(Duration::from_secs(15));
        // A build of a large gallery takes minutes, and a trigger while one runs does nothing:
        // wait in slices and trigger again until a snapshot reaches past the cancellation (one
        // that began before it ends below it).
        while !raft
            .metrics()
            .borrow()
            .snapshot
            .is_some_and(|s| s.index >= upto)
        {
            raft.trigger().snapshot().await.map_err(fatal)?;
            match raft
                .wait(timeout)
                .metrics(|m| m.snapshot.is_some_and(|s| s.index >= upto), "snapshot")
                .await
            {
                Ok(_) | Err(openraft::metrics::WaitError::Timeout(..)) => {}
                Err(e) => return Err(Error::Cluster(e.to_string())),
            }
        }
        raft.trigger().purge_log(upto).await.map_err(fatal)?;
        raft.wait(timeout)
            .metrics(|m| m.purged.is_some_and(|p| p.index >= upto), "purged")
            .await
            .map_err(|e| Error::Cluster(e.to_string()))?;
        let (epoch, resealed) = self.inner.resealer.rotate(&self.inner.log).await?;
        self.inner.resealer.set_shredded_index(upto)?;
        self.inner.shredded.send_replace(upto);
        info!(
            upto,
            epoch, resealed, "Cancelled data shredded: log purged, storage key rotated."
        );
        Ok(())
    }

    /// Authorises a call from `peer` ([`authz`]) and answers it. A voter's `OnBehalf` is
    /// authorised as the client it names; anyone else's as the peer itself.
    async fn serve(&self, peer: Peer, call: Call) -> Reply {
        let from = Principal {
            identity: peer.identity,
            role: peer.role,
        };
        let (principal, call, forwarded) = match call {
            Call::OnBehalf { client, role, call } if matches!(from.identity, Identity::Node(_)) => {
                match authz::forwarded_principal(&from, &client, &role) {
                    Ok(principal) => (principal, *call, true),
                    Err(reason) => return self.refuse_because(&from, "on_behalf", reason),
                }
            }
            call => (from, call, false),
        };
        if let Err(refusal) = authz::authorize(&principal.role, &call) {
            return self.refuse(&principal, &refusal);
        }
        // Only a voter forwards, and only its own clients' calls (one hop): a lane answers
        // "not leader" and the client tries a voter.
        let forward = !forwarded
            && self.inner.role == Role::Voter
            && matches!(principal.role, Role::Console | Role::Operator);
        self.dispatch(principal, forward, call).await
    }

    async fn dispatch(&self, principal: Principal, forward: bool, call: Call) -> Reply {
        let raft = &self.inner.raft;
        let peer = &principal.identity;
        match call {
            Call::Append(rpc) => {
                if *peer != Identity::Node(rpc.vote.leader_id().node_id) {
                    return impersonation(peer, "append");
                }
                let leader_commit = rpc.leader_commit.map_or(0, |l| l.index);
                let reply = raft.append_entries(rpc).await;
                if reply.is_ok() {
                    let now = self.inner.started.elapsed().as_millis() as u64;
                    let applied = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
                    lock(&self.inner.freshness).on_append(now, leader_commit, applied);
                }
                Reply::Append(reply)
            }
            Call::Vote(rpc) => {
                if *peer != Identity::Node(rpc.vote.leader_id().node_id) {
                    return impersonation(peer, "vote");
                }
                Reply::Vote(raft.vote(rpc).await)
            }
            Call::Snapshot(rpc) => {
                if *peer != Identity::Node(rpc.vote.leader_id().node_id) {
                    return impersonation(peer, "snapshot");
                }
                let len = rpc.data.len() as u64;
                let (offset, done) = (rpc.offset, rpc.done);
                let reply = raft.install_snapshot(rpc).await;
                let total = offset + len;
                let before = self
                    .inner
                    .snapshot_bytes
                    .swap(if done { 0 } else { total }, Ordering::SeqCst);
                self.inner
                    .metrics
                    .snapshot_receiving(if done { 0 } else { total });
                if done {
                    if reply.is_ok() {
                        self.inner.metrics.snapshot_installed();
                    }
                    info!(bytes = total, "Snapshot received.");
                } else if total / (64 << 20) > before / (64 << 20) || offset == 0 {
                    info!(bytes = total, "Receiving snapshot.");
                } else {
                    debug!(bytes = total, "Snapshot chunk.");
                }
                Reply::Snapshot(reply)
            }
            Call::Write(request) => {
                let result = match &principal.role {
                    Role::Lane { .. } => match self.check_completion(&request) {
                        Ok(()) => match raft.client_write(request).await {
                            Ok(r) => Ok((r.log_id.index, r.data.outcomes)),
                            Err(e) => Err(raft_error(e)),
                        },
                        Err(reason) => return self.refuse_because(&principal, "write", reason),
                    },
                    _ => self.write_for(&principal, forward, request).await,
                };
                match result {
                    Ok((index, outcomes)) => Reply::Written { index, outcomes },
                    Err(e) => error_reply(&e),
                }
            }
            Call::Person {
                person,
                linearizable,
            } => {
                if let Some(limited) = self.person_read_limited(&principal) {
                    return limited;
                }
                if linearizable {
                    match raft.ensure_linearizable().await {
                        Ok(_) => {}
                        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))
                            if forward =>
                        {
                            let call = Call::Person {
                                person,
                                linearizable,
                            };
                            return self
                                .forward(&f, &on_behalf(&principal, call))
                                .await
                                .unwrap_or_else(|e| error_reply(&e));
                        }
                        Err(e) => {
                            return error_reply(&Error::Remote {
                                code: "not_leader".into(),
                                message: e.to_string(),
                                retry: true,
                            });
                        }
                    }
                }
                Reply::Person(self.inner.gallery.entry(person).map(|e| Box::new(e.person)))
            }
            Call::Search { probe, k } => match self.inner.gallery.search(&probe, k.min(100)) {
                Ok(hits) => Reply::Hits(hits),
                Err(e) => error_reply(&e),
            },
            Call::Status => Reply::Status(Box::new(self.status())),
            Call::Lane => Reply::Lane(self.lane_reporter().map(|l| Box::new((l.report)()))),
            Call::LaneStill { camera, audit_seq } => match self.lane_still(camera, audit_seq) {
                Ok(jpeg) => Reply::Still(jpeg),
                Err(reason) => Reply::error("still_refused", reason, false),
            },
            Call::Ledger => Reply::Ledger(Box::new(self.inner.gallery.ledger_view())),
            Call::Audit { from_seq, limit } => Reply::Audit(
                self.inner
                    .gallery
                    .audit(from_seq, limit.min(MAX_AUDIT_RECORDS) as usize),
            ),
            Call::FindDocument { kind, number } => {
                if let Some(limited) = self.person_read_limited(&principal) {
                    return limited;
                }
                let g = &self.inner.gallery;
                Reply::Person(
                    g.find_document(kind, &number)
                        .and_then(|id| g.entry(id))
                        .map(|e| Box::new(e.person)),
                )
            }
            Call::Metrics => Reply::Metrics(self.metrics_text()),
            Call::Digest => {
                let applied_index = self.inner.gallery.read().last_applied.map(|l| l.index);
                Reply::Digest {
                    digest: self.inner.gallery.digest(),
                    applied_index,
                }
            }
            Call::Initialize { voters } => {
                let members: BTreeMap<NodeId, BasicNode> = voters
                    .into_iter()
                    .map(|(id, addr)| (id, BasicNode::new(addr)))
                    .collect();
                match raft.initialize(members).await {
                    Ok(()) => Reply::Done,
                    Err(e) => Reply::error("initialize", e.to_string(), false),
                }
            }
            Call::Membership { change, audit } => {
                // The client's signed audit record (and, for a removal, the revocation) first,
                // on the leader; it must be exactly the batch this change calls for.
                let expected = match &audit {
                    Request::V2(ops) => ops.iter().find_map(|op| match op {
                        clearway_gallery::ops::Op::Audit(d) => {
                            Some(super::protocol::membership_batch(&change, d.clone()))
                        }
                        _ => None,
                    }),
                    Request::V1(_) => None,
                };
                let (action, target) = super::protocol::membership_record(&change);
                let matches = expected.as_ref() == Some(&audit)
                    && matches!(&audit, Request::V2(ops) if ops.iter().any(|op| matches!(
                        op,
                        clearway_gallery::ops::Op::Audit(d) if d.action == action && d.target == target
                    )));
                if !matches {
                    return self.refuse_because(
                        &principal,
                        "membership",
                        "the audit batch does not describe this membership change".into(),
                    );
                }
                if let Err(e) = self.check_audit(&principal, &audit) {
                    return error_reply(&e);
                }
                let audited = raft.client_write(audit.clone()).await;
                let result = match audited {
                    Ok(r) => match r.data.outcomes.first() {
                        Some(Outcome::Refused { code, reason }) => {
                            return Reply::error(code, reason.clone(), false);
                        }
                        _ => self.change_membership(change.clone()).await,
                    },
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => Reply::Done,
                    // Clients are forwarded to the leader; a node forwarding to us is answered.
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) if forward => {
                        self.forward(
                            &f,
                            &on_behalf(&principal, Call::Membership { change, audit }),
                        )
                        .await
                        .unwrap_or_else(|e| error_reply(&e))
                    }
                    Err(e) => error_reply(&raft_error(e)),
                }
            }
            // Unwrapped in `serve`; authz refuses a nested one.
            Call::OnBehalf { .. } => Reply::error("forbidden", "nested forwarding", false),
        }
    }

    async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> std::result::Result<(), RaftError<NodeId, ClientWriteError<NodeId, Node>>> {
        let raft = &self.inner.raft;
        let one = |id| BTreeSet::from([id]);
        match change {
            MembershipChange::AddLearner { id, addr } => {
                raft.add_learner(id, BasicNode::new(addr), false).await?;
            }
            MembershipChange::Promote { id } => {
                raft.change_membership(ChangeMembers::AddVoterIds(one(id)), true)
                    .await?;
            }
            MembershipChange::Demote { id } => {
                raft.change_membership(ChangeMembers::RemoveVoters(one(id)), true)
                    .await?;
            }
            MembershipChange::Remove { id } => {
                let is_voter = raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == id);
                if is_voter {
                    raft.change_membership(ChangeMembers::RemoveVoters(one(id)), false)
                        .await?;
                } else {
                    raft.change_membership(ChangeMembers::RemoveNodes(one(id)), false)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

impl Handler for ClusterNode {
    fn max_request(&self, peer: &Peer) -> usize {
        authz::max_request(&peer.role)
    }

    fn refused_connection(&self, peer: &Peer, why: &'static str) {
        self.inner.metrics.refused(why, peer.role.name());
    }

    fn handle(&self, peer: Peer, request: Vec<u8>) -> impl Future<Output = Vec<u8>> + Send {
        let node = self.clone();
        async move {
            let reply = match decode::<Call>(&request) {
                Ok(call) => {
                    debug!(peer = %peer, call = call.name(), "Call.");
                    node.serve(peer, call).await
                }
                Err(e) => {
                    warn!(peer = %peer, error = %e, "Malformed call refused.");
                    error_reply(&e.into())
                }
            };
            encode(&reply).unwrap_or_else(|e| {
                encode(&Reply::error("encode", e.to_string(), false)).unwrap_or_default()
            })
        }
    }
}

/// Checks that the certificate's role fits what the config makes of the node: a lane runs the
/// channel its certificate names; a voter's certificate runs no lane.
fn check_role(bundle: &Bundle, config: &NodeConfig) -> Result<()> {
    let channel = config.lane.as_ref().map(|l| l.procedure.channel.as_str());
    match (&bundle.role, channel) {
        (Role::Lane { channel: c }, Some(runs)) if c == runs => Ok(()),
        (Role::Lane { .. }, None) | (Role::Voter, None) => Ok(()),
        (role, runs) => Err(Error::Config(format!(
            "{}: the certificate's role is {role}, but this node {}; issue the node a \
             certificate for its role (`port issue --node {} --role ...` or `port csr`/`port sign`)",
            config.tls_dir.display(),
            match runs {
                Some(c) => format!("runs the lane {c}"),
                None => "runs no lane".to_owned(),
            },
            config.node_id
        ))),
    }
}

/// `call` wrapped for forwarding with `principal`'s identity and role.
fn on_behalf(principal: &Principal, call: Call) -> Call {
    Call::OnBehalf {
        client: principal.identity.to_string(),
        role: principal.role.to_string(),
        call: Box::new(call),
    }
}

fn impersonation(peer: &Identity, what: &str) -> Reply {
    warn!(peer = %peer, call = what, "Raft message whose sender is not the certificate's node refused.");
    Reply::error(
        "forbidden",
        format!("{peer} may not send {what} messages for another node"),
        false,
    )
}

fn no_leader() -> Error {
    Error::Remote {
        code: "no_leader".into(),
        message: "the cluster has no leader at the moment; try again".into(),
        retry: true,
    }
}

fn raft_error<E: std::error::Error>(e: RaftError<NodeId, E>) -> Error {
    let retry = matches!(e, RaftError::APIError(_));
    Error::Remote {
        code: "raft".into(),
        message: e.to_string(),
        retry,
    }
}

fn error_reply(e: &Error) -> Reply {
    match e {
        Error::Remote {
            code,
            message,
            retry,
        } => Reply::error(code, message.clone(), *retry),
        Error::Net(n) => Reply::error(n.code(), n.to_string(), true),
        other => Reply::error(other.code(), other.to_string(), false),
    }
}

/// Locks a mutex; a poisoned one (a panic elsewhere while holding it) still holds valid data.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
