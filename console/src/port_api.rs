//! The only code that talks to port clusters: a [`ClusterClient`] per port with the console's
//! client bundle, and the mapping between the cluster's types (`clearway_gallery::ops`,
//! `clearway_node::cluster::protocol`) and the console's DTOs.
//!
//! Every change goes out as one `Request::V2` batch carrying exactly one `Op::Audit`: the
//! state machine refuses a batch without one, so nothing the console changes is unaudited.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clearway_gallery::ops::{
    AuditDraft, AuditRecord, GateAction as OpsGateAction, GateId, LaneMode as OpsLaneMode,
    LedgerView, Op, OverrideAction as OpsOverride,
};
use clearway_gallery::{
    Category, Command, DocumentKind, GuardianConsent, NewPerson, Outcome, Person, PersonId,
    PersonStatus, Request, TravelDocument,
};
use clearway_wire::ClusterClient;
use clearway_wire::net::signing::{AuditVerifier, verify_trail};
use clearway_wire::net::tls::Bundle;
use clearway_wire::protocol::{LaneStatus, MembershipChange, NodeStatus};
use futures::future::join_all;
use tokio::sync::Mutex;
use tracing::debug;

use crate::dto::{
    AuditRecordView, AuditView, CancelProgress, DecisionView, Gate, GateAction, LaneMode, LaneView,
    OrderView, OverrideAction, RegistrationView, ReplicaProgress, WriteReceipt,
};
use crate::error::{Error, Result};
use crate::snapshot::{LanePoll, LedgerInfo, MemberPoll, NodeInfo, Polled};

/// How long a write keeps retrying across leader changes.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// Who does what, and why: the console's half of an audit record.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// User name.
    pub actor: String,
    /// Role (snake_case).
    pub role: String,
    /// Action, e.g. `order.gate1_open`.
    pub action: String,
    /// A channel, person id or port; never a document number.
    pub target: String,
    /// The user's reason (checked non-empty by the service).
    pub reason: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
}

/// A minor's registration started at a service location (guardian's consent, no face yet).
#[derive(Clone, Debug, PartialEq)]
pub struct MinorRegistration {
    /// Name as on the document.
    pub name: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Category (snake_case).
    pub category: String,
    /// Document kind (snake_case).
    pub document_kind: String,
    /// Document number.
    pub document_number: String,
    /// Document valid from.
    pub valid_from: NaiveDate,
    /// Document valid until.
    pub valid_until: NaiveDate,
    /// Parent's or guardian's name.
    pub guardian_name: String,
    /// Their identity document, as presented.
    pub guardian_document: String,
    /// Reference of the proof of relationship presented.
    pub relationship_proof: String,
    /// The service location.
    pub service_location: String,
}

/// A change the console replicates through a port's log (with its audit record).
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Only the audit record (membership changes, which are not log commands of their own).
    AuditOnly,
    /// An override to one lane.
    Order {
        /// Channel id.
        channel: String,
        /// What.
        action: OverrideAction,
    },
    /// The mode of several lanes (staged face-scan roll-out, roll-back): these channels to
    /// `mode`, and the `others` (if any) to `others_mode`.
    SetMode {
        /// Channel ids.
        channels: Vec<String>,
        /// Mode.
        mode: LaneMode,
        /// The rest of the port's channels, with their mode (a pilot: card only elsewhere).
        others: Option<(Vec<String>, LaneMode)>,
    },
    /// Acknowledge an alarm.
    AckAlarm {
        /// Channel id.
        channel: String,
        /// Alarm kind.
        kind: String,
        /// Raised at, ms.
        since_ms: i64,
    },
    /// Enrol a minor with the guardian's consent and no templates.
    GuardianConsent(Box<MinorRegistration>),
    /// Cancel a registration (erasure across the port).
    Cancel {
        /// Person id, e.g. `P00000001`.
        person: String,
    },
    /// Revoke every certificate of an appliance issued until now (retire appliance).
    Revoke {
        /// `node-12`.
        identity: String,
    },
}

fn ops_gate(g: Gate) -> GateId {
    match g {
        Gate::One => GateId::One,
        Gate::Two => GateId::Two,
        Gate::Three => GateId::Three,
    }
}

fn ops_gate_action(a: GateAction) -> OpsGateAction {
    match a {
        GateAction::Open => OpsGateAction::Open,
        GateAction::Close => OpsGateAction::Close,
        GateAction::Lock => OpsGateAction::Lock,
        GateAction::Unlock => OpsGateAction::Unlock,
    }
}

fn ops_mode(m: LaneMode) -> OpsLaneMode {
    match m {
        LaneMode::FaceAndCard => OpsLaneMode::FaceAndCard,
        LaneMode::CardOnly => OpsLaneMode::CardOnly,
        LaneMode::Closed => OpsLaneMode::Closed,
    }
}

/// The console's word for a cluster lane mode.
pub fn dto_mode(m: OpsLaneMode) -> LaneMode {
    match m {
        OpsLaneMode::FaceAndCard => LaneMode::FaceAndCard,
        OpsLaneMode::CardOnly => LaneMode::CardOnly,
        OpsLaneMode::Closed => LaneMode::Closed,
    }
}

fn ops_override(a: OverrideAction) -> OpsOverride {
    match a {
        OverrideAction::Gate { gate, action } => OpsOverride::Gate {
            gate: ops_gate(gate),
            action: ops_gate_action(action),
        },
        OverrideAction::Mode { mode } => OpsOverride::Mode {
            mode: ops_mode(mode),
        },
        OverrideAction::SendToOfficer => OpsOverride::SendToOfficer,
        OverrideAction::Release => OpsOverride::Release,
    }
}

/// The console's word for a cluster override.
pub fn dto_override(a: OpsOverride) -> OverrideAction {
    let gate = |g: GateId| match g {
        GateId::One => Gate::One,
        GateId::Two => Gate::Two,
        GateId::Three => Gate::Three,
    };
    let action = |a: OpsGateAction| match a {
        OpsGateAction::Open => GateAction::Open,
        OpsGateAction::Close => GateAction::Close,
        OpsGateAction::Lock => GateAction::Lock,
        OpsGateAction::Unlock => GateAction::Unlock,
    };
    match a {
        OpsOverride::Gate { gate: g, action: a } => OverrideAction::Gate {
            gate: gate(g),
            action: action(a),
        },
        OpsOverride::Mode { mode } => OverrideAction::Mode {
            mode: dto_mode(mode),
        },
        OpsOverride::SendToOfficer => OverrideAction::SendToOfficer,
        OpsOverride::Release => OverrideAction::Release,
    }
}

/// Reads a document kind's snake_case name.
pub fn document_kind(s: &str) -> Result<DocumentKind> {
    [
        DocumentKind::MainlandTravelPermitHkMacao,
        DocumentKind::PermitHkMacao,
        DocumentKind::MainlandTravelPermitTaiwan,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
    .ok_or_else(|| Error::Invalid(format!("unknown document kind {s:?}")))
}

fn category(s: &str) -> Result<Category> {
    Category::ALL
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| Error::Invalid(format!("unknown category {s:?}")))
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// The batch a change becomes: the audit record first, then the change's operations.
pub fn batch(audit: &AuditEntry, change: &Change) -> Result<Vec<Op>> {
    let draft = AuditDraft {
        actor: audit.actor.clone(),
        role: audit.role.clone(),
        action: audit.action.clone(),
        target: audit.target.clone(),
        reason: audit.reason.clone(),
        reason_salt: String::new(),
        at: utc(audit.at_ms),
        ops_digest: String::new(),
        signature: None,
    };
    let mut ops = vec![Op::Audit(draft)];
    match change {
        Change::AuditOnly => {}
        Change::Revoke { identity } => ops.push(Op::Revoke {
            identity: identity.clone(),
        }),
        Change::Order { channel, action } => ops.push(Op::Order {
            channel: channel.clone(),
            action: ops_override(*action),
        }),
        Change::SetMode {
            channels,
            mode,
            others,
        } => {
            // The node takes at most MAX_CHANNELS per op; one batch holds as many ops as needed.
            let groups =
                std::iter::once((channels, mode)).chain(others.as_ref().map(|(c, m)| (c, m)));
            for (channels, mode) in groups {
                for chunk in channels.chunks(clearway_gallery::ops::MAX_CHANNELS) {
                    ops.push(Op::SetMode {
                        channels: chunk.to_vec(),
                        mode: ops_mode(*mode),
                    });
                }
            }
        }
        Change::AckAlarm {
            channel,
            kind,
            since_ms,
        } => ops.push(Op::AckAlarm {
            channel: channel.clone(),
            alarm: kind.clone(),
            since_ms: *since_ms,
        }),
        Change::GuardianConsent(m) => {
            let category = category(&m.category)?;
            let kind = document_kind(&m.document_kind)?;
            if category.document_kind() != kind {
                return Err(Error::Invalid(format!(
                    "a {} travels with a {}, not a {}",
                    category.as_str().replace('_', " "),
                    category.document_kind().as_str().replace('_', " "),
                    kind.as_str().replace('_', " ")
                )));
            }
            let person = NewPerson {
                name: m.name.clone(),
                date_of_birth: m.date_of_birth,
                category,
                document: TravelDocument {
                    kind,
                    number: m.document_number.clone(),
                    valid_from: m.valid_from,
                    valid_until: m.valid_until,
                },
                endorsement: None,
                registrations: Default::default(),
                consents: Vec::new(),
                guardian_consent: Some(GuardianConsent {
                    guardian_name: m.guardian_name.clone(),
                    guardian_document: m.guardian_document.clone(),
                    relationship_proof: m.relationship_proof.clone(),
                    service_location: m.service_location.clone(),
                    given_at: utc(audit.at_ms),
                }),
            };
            ops.push(Op::Gallery(Command::Enrol {
                person,
                templates: Vec::new(),
            }));
        }
        Change::Cancel { person } => {
            let id: PersonId = person.parse().map_err(|_| {
                Error::Invalid(format!("{person:?} is not a person id (P00000001)"))
            })?;
            ops.push(Op::Gallery(Command::Cancel { person: id }));
        }
    }
    Ok(ops)
}

/// What a batch answered: the audit record's sequence number, or the refusal.
pub fn receipt(index: u64, outcomes: &[Outcome]) -> Result<WriteReceipt> {
    if let Some(Outcome::Refused { code, reason }) = outcomes
        .iter()
        .find(|o| matches!(o, Outcome::Refused { .. }))
    {
        return Err(Error::Refused(format!("{reason} ({code})")));
    }
    // Enrolling a document already registered changes nothing (the guardian's consent was not
    // recorded): say so rather than report success.
    if let Some(Outcome::AlreadyEnrolled(p)) = outcomes
        .iter()
        .find(|o| matches!(o, Outcome::AlreadyEnrolled(_)))
    {
        return Err(Error::Refused(format!(
            "this document is already registered, as {p}; nothing was changed (already_registered)"
        )));
    }
    let audit_seq = outcomes
        .iter()
        .find_map(|o| match o {
            Outcome::Audited { seq, .. } => Some(*seq),
            _ => None,
        })
        .ok_or_else(|| Error::Refused("the port wrote no audit record for the change".into()))?;
    let summary = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Enrolled(p) => Some(format!("enrolled as {p}")),
            Outcome::AlreadyEnrolled(p) => Some(format!("already registered as {p}")),
            Outcome::Updated(p) => Some(format!("{p} updated")),
            Outcome::Cancelled(p) => Some(format!("{p} cancelled")),
            Outcome::Ordered => Some("recorded".to_string()),
            Outcome::Audited { .. } | Outcome::Refused { .. } => None,
        })
        .chain(std::iter::once(format!(
            "audit record {audit_seq}, log index {index}"
        )))
        .collect::<Vec<_>>()
        .join("; ");
    Ok(WriteReceipt {
        index,
        audit_seq,
        summary,
    })
}

/// A node's status in the console's words.
pub fn node_info(s: &NodeStatus) -> NodeInfo {
    NodeInfo {
        state: s.state.clone(),
        leader: s.leader,
        last_log_index: s.last_log_index,
        applied_index: s.applied_index,
        shredded_index: s.shredded_index,
        replication: s.replication.clone(),
        members: s.members.clone(),
        voters: s.voters.clone(),
        channel: s.channel.clone(),
        audit: (s.audit_len, s.audit_head.clone()),
    }
}

/// A lane's status in the console's words.
pub fn lane_poll(node: u64, l: &LaneStatus, offset_minutes: i32) -> LanePoll {
    LanePoll {
        channel: l.channel.clone(),
        view: LaneView {
            node,
            step: l.step.clone(),
            mode: dto_mode(l.mode),
            face_scan: l.face_scan,
            gates: l.gates.to_vec(),
            occupancy: l.occupancy,
            held_for: l.held_for.clone(),
            cameras_up: l.cameras_up.to_vec(),
            last_decision: l.last_decision.as_ref().map(|d| DecisionView {
                outcome: d.outcome.clone(),
                latency_ms: d.latency_ms,
                passage_ms: d.passage_ms,
                at: crate::time::local(d.at.timestamp_millis(), offset_minutes),
            }),
            acked_order: l.acked_order,
            clearances: l.clearances,
            clearances_last_hour: l.clearances_last_hour,
            staleness_ms: l.staleness_ms,
            fence: l.fence,
            direction: l.direction.clone(),
            pad: l.pad.clone(),
        },
        alarms: l
            .alarms
            .iter()
            .map(|a| (a.kind.clone(), a.since.timestamp_millis()))
            .collect(),
    }
}

/// The ledger in the console's words.
pub fn ledger_info(v: &LedgerView) -> LedgerInfo {
    LedgerInfo {
        modes: v
            .lanes
            .iter()
            .filter_map(|(c, l)| l.mode.map(|m| (c.clone(), dto_mode(m))))
            .collect(),
        orders: v
            .lanes
            .iter()
            .map(|(c, l)| {
                let orders = l
                    .orders
                    .iter()
                    .map(|o| OrderView {
                        index: o.index,
                        term: o.term,
                        action: dto_override(o.action),
                        audit_seq: o.audit_seq,
                    })
                    .collect();
                (c.clone(), orders)
            })
            .collect(),
        acked: v.acked_alarms.clone(),
        audit_len: v.audit_len,
    }
}

/// A registration in the desk's words.
pub fn registration(p: &Person) -> RegistrationView {
    RegistrationView {
        person: p.id.to_string(),
        name: p.name.clone(),
        date_of_birth: p.date_of_birth.to_string(),
        category: p.category.as_str().into(),
        document_kind: p.document.kind.as_str().into(),
        document_valid_until: p.document.valid_until.to_string(),
        status: match p.status {
            PersonStatus::Active => "active",
            PersonStatus::Cancelled => "cancelled",
        }
        .into(),
        macao_registered: p.registrations.macao.is_some(),
        mainland_registered: p.registrations.mainland.is_some(),
        guardian_consent: p.guardian_consent.as_ref().map(|g| {
            (
                format!("{} ({})", g.guardian_name, g.guardian_document),
                g.relationship_proof.clone(),
                g.service_location.clone(),
            )
        }),
    }
}

/// Audit records in the page's words, with the chain's verification: the hash chain, and each
/// record's client signature against the port CA (`verifier`, from the console's bundle).
pub fn audit_view(
    port: &str,
    node: u64,
    records: &[AuditRecord],
    total: u64,
    verifier: &AuditVerifier,
    offset_minutes: i32,
) -> AuditView {
    AuditView {
        port: port.to_string(),
        break_at: verify_trail(records, verifier)
            .err()
            .map(|b| (b.seq, b.why)),
        records: records
            .iter()
            .map(|r| AuditRecordView {
                seq: r.seq,
                index: r.index,
                actor: r.entry.actor.clone(),
                role: r.entry.role.clone(),
                action: r.entry.action.clone(),
                target: r.entry.target.clone(),
                person: r.entry.person().or(r.subject).map(|p| p.to_string()),
                reason: r
                    .reason_text()
                    .unwrap_or("(erased with the person's registration)")
                    .to_owned(),
                refused: r.refused.clone(),
                at: crate::time::local(r.entry.at.timestamp_millis(), offset_minutes),
                signed_by: verifier
                    .verify(&r.entry)
                    .map(|s| s.identity.to_string())
                    .unwrap_or_else(|e| format!("NOT VERIFIED: {e}")),
                prev: r.prev.clone(),
                hash: r.hash.clone(),
            })
            .collect(),
        total,
        node,
    }
}

/// A client and the nodes it was made for.
type KnownClient = (BTreeMap<u64, SocketAddr>, Arc<ClusterClient>);

/// One port's connection: the console's bundle and a client over the members known.
pub struct PortApi {
    port: String,
    bundle_dir: std::path::PathBuf,
    timeout: Duration,
    client: Mutex<Option<KnownClient>>,
    offset_minutes: i32,
    /// The loaded bundle's (certificate, port CA) notAfter, Unix seconds.
    expiry: std::sync::Mutex<Option<(i64, i64)>>,
}

impl std::fmt::Debug for PortApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortApi")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl PortApi {
    /// A connection to `port` with the bundle in `bundle_dir`; nothing is opened yet.
    pub fn new(
        port: &str,
        bundle_dir: &std::path::Path,
        timeout: Duration,
        offset_minutes: i32,
    ) -> PortApi {
        PortApi {
            port: port.to_string(),
            bundle_dir: bundle_dir.to_path_buf(),
            timeout,
            client: Mutex::new(None),
            offset_minutes,
            expiry: std::sync::Mutex::new(None),
        }
    }

    fn unreachable(&self, message: impl Into<String>) -> Error {
        Error::PortUnreachable {
            port: self.port.clone(),
            message: message.into(),
        }
    }

    /// When the console's client certificate for this port and the port CA expire (notAfter,
    /// Unix seconds), once the bundle has been loaded.
    pub fn bundle_expiry(&self) -> Option<(i64, i64)> {
        *self.expiry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client that knows exactly `nodes` (re-made when the membership changes).
    async fn client(&self, nodes: &BTreeMap<u64, SocketAddr>) -> Result<Arc<ClusterClient>> {
        let mut slot = self.client.lock().await;
        if let Some((known, client)) = slot.as_ref()
            && known == nodes
        {
            return Ok(client.clone());
        }
        let bundle = Bundle::load(&self.bundle_dir).map_err(|e| {
            self.unreachable(format!(
                "cannot load the console's client bundle for this port: {e}"
            ))
        })?;
        if bundle.port != self.port {
            return Err(self.unreachable(format!(
                "the client bundle in {} is for port {}, not {}",
                self.bundle_dir.display(),
                bundle.port,
                self.port
            )));
        }
        *self.expiry.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((bundle.not_after, bundle.ca_not_after));
        let client = Arc::new(
            ClusterClient::new(&bundle, nodes.clone())
                .map_err(|e| self.unreachable(e.to_string()))?,
        );
        *slot = Some((nodes.clone(), client.clone()));
        Ok(client)
    }

    async fn timed<T>(
        &self,
        f: impl std::future::Future<Output = clearway_wire::Result<T>>,
    ) -> std::result::Result<T, String> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }

    /// Polls every node of `nodes`: status, then lanes of the nodes that run one, then the
    /// ledger from the leader (or any node that answered).
    pub async fn poll(&self, nodes: &BTreeMap<u64, String>, at_ms: i64) -> Polled {
        let mut addrs = BTreeMap::new();
        let mut bad = Vec::new();
        for (id, a) in nodes {
            match a.parse::<SocketAddr>() {
                Ok(sa) => {
                    addrs.insert(*id, sa);
                }
                Err(_) => bad.push(MemberPoll {
                    id: *id,
                    addr: a.clone(),
                    status: Err(format!("{a:?} is not an IP:PORT address")),
                }),
            }
        }
        let client = match self.client(&addrs).await {
            Ok(c) => c,
            Err(e) => {
                return Polled {
                    at_ms,
                    members: addrs
                        .iter()
                        .map(|(id, a)| MemberPoll {
                            id: *id,
                            addr: a.to_string(),
                            status: Err(e.to_string()),
                        })
                        .chain(bad)
                        .collect(),
                    error: Some(e.to_string()),
                    ..Polled::default()
                };
            }
        };
        let statuses = join_all(addrs.keys().map(|id| {
            let client = client.clone();
            async move { (*id, self.timed(client.status(*id)).await) }
        }))
        .await;
        let mut members: Vec<MemberPoll> = statuses
            .iter()
            .map(|(id, s)| MemberPoll {
                id: *id,
                addr: addrs.get(id).map(|a| a.to_string()).unwrap_or_default(),
                status: s.as_ref().map(node_info).map_err(Clone::clone),
            })
            .collect();
        members.extend(bad);
        let lane_nodes: Vec<u64> = statuses
            .iter()
            .filter(|(_, s)| s.as_ref().is_ok_and(|s| s.channel.is_some()))
            .map(|(id, _)| *id)
            .collect();
        let lanes = join_all(lane_nodes.iter().map(|id| {
            let client = client.clone();
            async move { (*id, self.timed(client.lane(*id)).await) }
        }))
        .await;
        let lanes = lanes
            .into_iter()
            .filter_map(|(id, l)| match l {
                Ok(Some(l)) => Some(lane_poll(id, &l, self.offset_minutes)),
                Ok(None) => None,
                Err(e) => {
                    debug!(port = %self.port, node = id, error = %e, "Lane poll failed.");
                    None
                }
            })
            .collect();
        let leader = statuses
            .iter()
            .find_map(|(_, s)| s.as_ref().ok().and_then(|s| s.leader));
        let answered: Vec<u64> = statuses
            .iter()
            .filter(|(_, s)| s.is_ok())
            .map(|(id, _)| *id)
            .collect();
        let mut ledger = None;
        for id in leader
            .filter(|l| answered.contains(l))
            .into_iter()
            .chain(answered.iter().copied())
        {
            match self.timed(client.ledger(id)).await {
                Ok(v) => {
                    ledger = Some(ledger_info(&v));
                    break;
                }
                Err(e) => debug!(port = %self.port, node = id, error = %e, "Ledger poll failed."),
            }
        }
        let error = answered.is_empty().then(|| {
            let why: BTreeSet<String> = members
                .iter()
                .filter_map(|m| m.status.as_ref().err().cloned())
                .collect();
            format!(
                "no node of the port answered ({})",
                why.into_iter().collect::<Vec<_>>().join("; ")
            )
        });
        Polled {
            at_ms,
            members,
            lanes,
            ledger,
            error,
        }
    }

    /// Replicates a change with its audit record.
    pub async fn submit(
        &self,
        nodes: &BTreeMap<u64, SocketAddr>,
        audit: &AuditEntry,
        change: &Change,
    ) -> Result<WriteReceipt> {
        let mut ops = batch(audit, change)?;
        let client = self.client(nodes).await?;
        // The record names the user and this console, and is signed with the console's key.
        let author = client.console_user(&audit.actor, &audit.role);
        for op in &mut ops {
            if let Op::Audit(d) = op {
                d.actor = author.actor.clone();
            }
        }
        client
            .sign(&mut ops)
            .map_err(|e| self.unreachable(format!("cannot sign the audit record: {e}")))?;
        let (index, outcomes) = client
            .write(Request::V2(ops), WRITE_DEADLINE)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        receipt(index, &outcomes)
    }

    /// A still of `camera` of the lane `node` runs, for the viewing audit record `audit_seq`
    /// records (the node checks it). `None` while the lane makes the viewing's first still.
    pub async fn still(
        &self,
        nodes: &BTreeMap<u64, SocketAddr>,
        node: u64,
        camera: u8,
        audit_seq: u64,
    ) -> Result<Option<Vec<u8>>> {
        let client = self.client(nodes).await?;
        match tokio::time::timeout(self.timeout, client.lane_still(node, camera, audit_seq)).await {
            Ok(Ok(jpeg)) => Ok(jpeg),
            Ok(Err(clearway_wire::Error::Remote { code, message, .. }))
                if code == "still_refused" =>
            {
                Err(Error::Forbidden(message))
            }
            Ok(Err(e)) => Err(self.unreachable(e.to_string())),
            Err(_) => {
                Err(self.unreachable(format!("no answer within {} ms", self.timeout.as_millis())))
            }
        }
    }

    /// Finds a registration by document on one node's replica (the first that answers).
    pub async fn find_document(
        &self,
        nodes: &BTreeMap<u64, SocketAddr>,
        kind: &str,
        number: &str,
    ) -> Result<Option<RegistrationView>> {
        let kind = document_kind(kind)?;
        let client = self.client(nodes).await?;
        let mut last = String::from("no node to ask");
        for id in nodes.keys() {
            match self
                .timed(client.find_document(*id, kind, number.to_string()))
                .await
            {
                Ok(p) => return Ok(p.as_ref().map(registration)),
                Err(e) => last = e,
            }
        }
        Err(self.unreachable(last))
    }

    /// The whole audit chain from one node's replica (the leader first), verified.
    pub async fn audit(
        &self,
        nodes: &BTreeMap<u64, SocketAddr>,
        leader: Option<u64>,
    ) -> Result<AuditView> {
        let client = self.client(nodes).await?;
        let mut last = String::from("no node to ask");
        for id in leader.into_iter().chain(nodes.keys().copied()) {
            let trail = tokio::time::timeout(Duration::from_secs(30), client.audit_trail(id)).await;
            match trail {
                Ok(Ok(records)) => {
                    let total = records.len() as u64;
                    let verifier = client
                        .audit_verifier()
                        .map_err(|e| self.unreachable(e.to_string()))?;
                    return Ok(audit_view(
                        &self.port,
                        id,
                        &records,
                        total,
                        &verifier,
                        self.offset_minutes,
                    ));
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "no answer within 30 s".into(),
            }
        }
        Err(self.unreachable(last))
    }

    /// The audit records `seqs` from one node's replica (the leader first), by seq; records a
    /// replica does not hold yet are left out.
    pub async fn audit_records(
        &self,
        nodes: &BTreeMap<u64, SocketAddr>,
        leader: Option<u64>,
        seqs: &[u64],
    ) -> Result<BTreeMap<u64, AuditRecord>> {
        let client = self.client(nodes).await?;
        let mut last = String::from("no node to ask");
        for id in leader.into_iter().chain(nodes.keys().copied()) {
            let pages = join_all(seqs.iter().map(|seq| {
                let client = client.clone();
                async move { self.timed(client.audit(id, *seq, 1)).await }
            }))
            .await;
            match pages
                .into_iter()
                .collect::<std::result::Result<Vec<_>, _>>()
            {
                Ok(pages) => {
                    return Ok(pages
                        .into_iter()
                        .flatten()
                        .map(|r| (r.seq, r))
                        .filter(|(seq, _)| seqs.contains(seq))
                        .collect());
                }
                Err(e) => last = e,
            }
        }
        Err(self.unreachable(last))
    }

    /// Every member's progress on the write at `index` (applied; shredded, for cancellations).
    pub async fn progress(
        &self,
        nodes: &BTreeMap<u64, SocketAddr>,
        index: u64,
        shred: bool,
    ) -> Result<CancelProgress> {
        let client = self.client(nodes).await?;
        let statuses = join_all(nodes.keys().map(|id| {
            let client = client.clone();
            async move { (*id, self.timed(client.status(*id)).await) }
        }))
        .await;
        Ok(progress(index, shred, &statuses))
    }

    /// Initialises the cluster on the first voter.
    pub async fn initialize(
        &self,
        nodes: &BTreeMap<u64, SocketAddr>,
        voters: &BTreeMap<u64, String>,
    ) -> Result<()> {
        let first = *voters
            .keys()
            .next()
            .ok_or_else(|| Error::Invalid("name at least one voter".into()))?;
        let client = self.client(nodes).await?;
        client
            .initialize(first, voters.clone())
            .await
            .map_err(|e| Error::Refused(e.to_string()))
    }

    /// Removes a node from the cluster through the leader (the leader also revokes it), audited
    /// as `audit`'s user.
    pub async fn remove_node(
        &self,
        nodes: &BTreeMap<u64, SocketAddr>,
        id: u64,
        audit: &AuditEntry,
    ) -> Result<()> {
        let client = self.client(nodes).await?;
        let author = client.console_user(&audit.actor, &audit.role);
        client
            .change_membership_by(
                MembershipChange::Remove { id },
                &author,
                &audit.reason,
                WRITE_DEADLINE,
            )
            .await
            .map_err(|e| Error::Refused(e.to_string()))
    }

    /// Adds a learner (a lane node) through the leader, audited as `audit`'s user.
    pub async fn add_learner(
        &self,
        nodes: &BTreeMap<u64, SocketAddr>,
        id: u64,
        addr: &str,
        audit: &AuditEntry,
    ) -> Result<()> {
        let client = self.client(nodes).await?;
        let author = client.console_user(&audit.actor, &audit.role);
        client
            .change_membership_by(
                MembershipChange::AddLearner {
                    id,
                    addr: addr.to_string(),
                },
                &author,
                &audit.reason,
                WRITE_DEADLINE,
            )
            .await
            .map_err(|e| Error::Refused(e.to_string()))
    }
}

/// Progress of every member on a write.
pub fn progress(
    index: u64,
    shred: bool,
    statuses: &[(u64, std::result::Result<NodeStatus, String>)],
) -> CancelProgress {
    let replicas: Vec<ReplicaProgress> = statuses
        .iter()
        .map(|(id, s)| match s {
            Ok(s) => {
                let applied = s.applied_index.is_some_and(|a| a >= index);
                ReplicaProgress {
                    node: *id,
                    reachable: true,
                    applied_index: s.applied_index,
                    shredded_index: s.shredded_index,
                    applied,
                    shredded: !shred || s.shredded_index >= index,
                }
            }
            Err(_) => ReplicaProgress {
                node: *id,
                reachable: false,
                applied_index: None,
                shredded_index: 0,
                applied: false,
                shredded: false,
            },
        })
        .collect();
    CancelProgress {
        index,
        complete: !replicas.is_empty() && replicas.iter().all(|r| r.applied && r.shredded),
        replicas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, target: &str) -> AuditEntry {
        AuditEntry {
            actor: "ana".into(),
            role: "supervisor".into(),
            action: action.into(),
            target: target.into(),
            reason: "passenger stuck".into(),
            at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn every_change_becomes_one_batch_led_by_its_audit_record() {
        let minor = MinorRegistration {
            name: "Chan Siu Ming".into(),
            date_of_birth: NaiveDate::from_ymd_opt(2010, 3, 1).expect("date"),
            category: "macao_resident".into(),
            document_kind: "mainland_travel_permit_hk_macao".into(),
            document_number: "H12345678".into(),
            valid_from: NaiveDate::from_ymd_opt(2020, 1, 1).expect("date"),
            valid_until: NaiveDate::from_ymd_opt(2030, 1, 1).expect("date"),
            guardian_name: "Chan Tai Man".into(),
            guardian_document: "Macao resident identity card 1234567(8)".into(),
            relationship_proof: "birth certificate B-998".into(),
            service_location: "Qingmao Checkpoint (Departure Office, 3/F)".into(),
        };
        let changes = [
            Change::AuditOnly,
            Change::Order {
                channel: "hengqin/passenger/12".into(),
                action: OverrideAction::Gate {
                    gate: Gate::Two,
                    action: GateAction::Lock,
                },
            },
            Change::SetMode {
                channels: vec!["hengqin/passenger/1".into()],
                mode: LaneMode::FaceAndCard,
                others: Some((vec!["hengqin/passenger/2".into()], LaneMode::CardOnly)),
            },
            Change::AckAlarm {
                channel: "hengqin/passenger/1".into(),
                kind: "camera_down".into(),
                since_ms: 5,
            },
            Change::GuardianConsent(Box::new(minor.clone())),
            Change::Cancel {
                person: "P00000007".into(),
            },
        ];
        let mut trace = Vec::new();
        for c in &changes {
            let ops = batch(&entry("x", "t"), c).expect("batch");
            assert!(matches!(ops[0], Op::Audit(_)), "audit first");
            assert_eq!(
                ops.iter().filter(|o| matches!(o, Op::Audit(_))).count(),
                1,
                "exactly one audit record"
            );
            let names: Vec<String> = ops
                .iter()
                .map(|o| match o {
                    Op::Gallery(Command::Enrol { person, templates }) => format!(
                        "enrol(templates={}, guardian={})",
                        templates.len(),
                        person.guardian_consent.is_some()
                    ),
                    Op::Gallery(c) => c.name().to_string(),
                    Op::Audit(_) => "audit".into(),
                    Op::Order { channel, action } => format!("order({channel}, {})", action.name()),
                    Op::SetMode { channels, mode } => {
                        format!("set_mode({}, {})", channels.join(","), mode.as_str())
                    }
                    Op::AckAlarm {
                        alarm, since_ms, ..
                    } => format!("ack({alarm}, {since_ms})"),
                    Op::Revoke { identity } => format!("revoke({identity})"),
                })
                .collect();
            trace.push(names.join(" + "));
        }
        expect_test::expect![[r#"
            audit
            audit + order(hengqin/passenger/12, gate_lock)
            audit + set_mode(hengqin/passenger/1, face_and_card) + set_mode(hengqin/passenger/2, card_only)
            audit + ack(camera_down, 5)
            audit + enrol(templates=0, guardian=true)
            audit + cancel"#]]
        .assert_eq(&trace.join("\n"));

        // Bad input is an error naming it, never a panic.
        let bad = [
            Change::Cancel {
                person: "H12345678".into(),
            },
            Change::GuardianConsent(Box::new(MinorRegistration {
                category: "martian".into(),
                ..minor.clone()
            })),
            Change::GuardianConsent(Box::new(MinorRegistration {
                document_kind: "permit_hk_macao".into(),
                ..minor
            })),
        ];
        for c in &bad {
            let e = batch(&entry("x", "t"), c).expect_err("refused");
            assert_eq!(e.code(), "invalid", "{e}");
        }
    }

    #[test]
    fn overrides_map_both_ways() {
        for a in OverrideAction::all() {
            assert_eq!(dto_override(ops_override(a)), a);
        }
    }

    #[test]
    fn outcomes_become_receipts_or_refusals() {
        let ok = receipt(
            42,
            &[
                Outcome::Audited {
                    seq: 3,
                    hash: "ab".into(),
                },
                Outcome::Ordered,
            ],
        )
        .expect("receipt");
        assert_eq!((ok.index, ok.audit_seq), (42, 3));
        assert_eq!(ok.summary, "recorded; audit record 3, log index 42");
        let refused = receipt(
            43,
            &[Outcome::Refused {
                code: "no_audit".into(),
                reason: "a console change needs exactly one audit record".into(),
            }],
        )
        .expect_err("refused");
        assert_eq!(refused.code(), "refused");
        assert!(refused.to_string().contains("no_audit"));
        assert!(receipt(44, &[Outcome::Ordered]).is_err(), "no audit record");
    }

    #[test]
    fn cancellation_is_confirmed_only_when_every_replica_shredded_it() {
        let st = |applied, shredded| {
            Ok(NodeStatus {
                applied_index: Some(applied),
                shredded_index: shredded,
                ..NodeStatus::default()
            })
        };
        let p = progress(
            10,
            true,
            &[(1, st(10, 10)), (2, st(12, 9)), (3, Err("down".into()))],
        );
        let line: Vec<String> = p
            .replicas
            .iter()
            .map(|r| {
                format!(
                    "{}:{}{}{}",
                    r.node, r.reachable as u8, r.applied as u8, r.shredded as u8
                )
            })
            .collect();
        assert_eq!(line.join(" "), "1:111 2:110 3:000");
        assert!(!p.complete);
        let done = progress(10, true, &[(1, st(10, 10)), (2, st(12, 11))]);
        assert!(done.complete);
        assert!(
            !progress(10, true, &[]).complete,
            "no replica is no confirmation"
        );
    }
}
