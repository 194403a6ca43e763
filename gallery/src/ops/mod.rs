//! Port operations replicated with the gallery: supervisors' orders to lanes, the lanes' desired
//! modes, acknowledged alarms, and the hash-chained audit trail of every console action.
//!
//! Plain data and a sans-IO [`Ledger`] that applies [`Op`]s in log order, like the
//! [`Registry`](crate::Registry) applies gallery commands. The node's state machine applies a
//! [`Request::V2`](crate::Request::V2) batch through [`Ledger::apply`]; every replica computes the
//! same audit hashes because each is a function of the record and the previous hash only.
//!
//! Invariants:
//! * a V2 batch changes nothing unless it carries exactly one [`Op::Audit`] with a reason: no
//!   console change without its audit record, written in the same log entry;
//! * audit record `n` carries the hash of record `n - 1` ([`GENESIS`] for record 0), and its own
//!   hash covers that link, so a changed or missing record breaks [`verify_chain`];
//! * audit records name persons by id, never by document number, and hold no biometric data.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::registry::{Change, Command, Outcome, Registry};

#[cfg(test)]
mod tests;

/// The `prev` of the first audit record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Orders kept per lane (newest last); older ones have been carried out or superseded.
pub const ORDERS_KEPT: usize = 32;
/// Acknowledged alarms kept (the oldest are forgotten first).
pub const ACKS_KEPT: usize = 4096;
/// Longest reason, actor, target or channel accepted, in characters.
pub const MAX_TEXT: usize = 1000;
/// Most channels one `SetMode` may name.
pub const MAX_CHANNELS: usize = 1024;

/// The three gates of a joint inspection channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateId {
    /// Gate 1, the channel's entrance: opens on identification (face scan) or card scan.
    One,
    /// Gate 2, after the inspection zone: opens when both authorities clear the traveller.
    Two,
    /// Gate 3, the channel's exit: opens with gate 2.
    Three,
}

impl GateId {
    /// All three, in walking order.
    pub const ALL: [GateId; 3] = [GateId::One, GateId::Two, GateId::Three];

    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            GateId::One => 1,
            GateId::Two => 2,
            GateId::Three => 3,
        }
    }

    /// The gate numbered `n` (1, 2 or 3).
    pub fn from_number(n: u8) -> Option<GateId> {
        match n {
            1 => Some(GateId::One),
            2 => Some(GateId::Two),
            3 => Some(GateId::Three),
            _ => None,
        }
    }
}

impl fmt::Display for GateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gate {}", self.number())
    }
}

/// What a gate is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateAction {
    /// Open (the gate closes by itself once the traveller has passed, or on `Close`).
    Open,
    /// Close.
    Close,
    /// Close and stay closed whatever else is asked, until `Unlock` (supervisor override).
    Lock,
    /// Lift a lock; the gate stays closed.
    Unlock,
}

impl GateAction {
    /// Stable snake_case name (a bounded metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            GateAction::Open => "open",
            GateAction::Close => "close",
            GateAction::Lock => "lock",
            GateAction::Unlock => "unlock",
        }
    }
}

/// How a lane is run, set by a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneMode {
    /// Face scan and card scan (the normal mode).
    FaceAndCard,
    /// Card scan only.
    CardOnly,
    /// Closed: nobody is let in.
    Closed,
}

impl LaneMode {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LaneMode::FaceAndCard => "face_and_card",
            LaneMode::CardOnly => "card_only",
            LaneMode::Closed => "closed",
        }
    }
}

/// A supervisor's instruction to a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideAction {
    /// Move one gate.
    Gate {
        /// Which.
        gate: GateId,
        /// How.
        action: GateAction,
    },
    /// Change the lane's mode.
    Mode {
        /// The new mode.
        mode: LaneMode,
    },
    /// Send the traveller in the channel to an officer.
    SendToOfficer,
    /// An officer has dealt with the traveller; the channel returns to service.
    Release,
}

impl OverrideAction {
    /// Stable snake_case name (a bounded metrics label), e.g. `gate_lock`, `mode`.
    pub fn name(&self) -> &'static str {
        match self {
            OverrideAction::Gate { action, .. } => match action {
                GateAction::Open => "gate_open",
                GateAction::Close => "gate_close",
                GateAction::Lock => "gate_lock",
                GateAction::Unlock => "gate_unlock",
            },
            OverrideAction::Mode { .. } => "mode",
            OverrideAction::SendToOfficer => "send_to_officer",
            OverrideAction::Release => "release",
        }
    }
}

/// What the console submits with every change: who did what to what, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// The console user.
    pub actor: String,
    /// Their role (`supervisor`, `service_desk`, `port_admin`).
    pub role: String,
    /// What was done, e.g. `order.gate_lock`, `cancel`, `guardian_consent`.
    pub action: String,
    /// What it was done to: a channel id, a person id (`P00000001`), a port; never a document
    /// number.
    pub target: String,
    /// Why, in the user's words (required).
    pub reason: String,
    /// When the console sent it.
    pub at: DateTime<Utc>,
}

/// One record of the audit trail, as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the trail (0, 1, …).
    pub seq: u64,
    /// The Raft log index of the entry that carried it.
    pub index: u64,
    /// What was submitted.
    pub draft: AuditDraft,
    /// The previous record's hash (hex SHA-256), [`GENESIS`] for the first.
    pub prev: String,
    /// This record's hash (hex SHA-256) over all of the above.
    pub hash: String,
}

impl AuditRecord {
    /// The hash a record with these contents has: SHA-256 over a domain tag and every field,
    /// each length-prefixed, so no two different records hash alike by shifting text between
    /// fields.
    pub fn compute_hash(seq: u64, index: u64, prev: &str, draft: &AuditDraft) -> String {
        let mut h = Sha256::new();
        h.update(b"clearway-audit-v1");
        h.update(seq.to_be_bytes());
        h.update(index.to_be_bytes());
        let at = draft.at.timestamp_micros().to_string();
        for field in [
            prev,
            &draft.actor,
            &draft.role,
            &draft.action,
            &draft.target,
            &draft.reason,
            &at,
        ] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Where and why an audit trail does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("audit chain broken at record {seq}: {why}")]
pub struct ChainBreak {
    /// The first record that does not verify.
    pub seq: u64,
    /// What is wrong with it.
    pub why: String,
}

/// Checks a trail read from the start: consecutive sequence numbers from 0, each `prev` the
/// previous record's hash, each hash recomputed from the record.
pub fn verify_chain(records: &[AuditRecord]) -> Result<(), ChainBreak> {
    let mut prev = GENESIS.to_string();
    for (n, r) in records.iter().enumerate() {
        let n = n as u64;
        let broken = |why: String| ChainBreak { seq: n, why };
        if r.seq != n {
            return Err(broken(format!(
                "expected record {n}, found record {}",
                r.seq
            )));
        }
        if r.prev != prev {
            return Err(broken(
                "it does not carry the previous record's hash (a record before it was changed or removed)"
                    .into(),
            ));
        }
        let hash = AuditRecord::compute_hash(r.seq, r.index, &r.prev, &r.draft);
        if r.hash != hash {
            return Err(broken(
                "its contents do not match its hash (the record was changed)".into(),
            ));
        }
        prev = hash;
    }
    Ok(())
}

/// One operation of a [`Request::V2`](crate::Request::V2) batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// A gallery command (service desk: guardian consent, cancellation).
    Gallery(Command),
    /// The batch's audit record (exactly one per batch).
    Audit(AuditDraft),
    /// An order to one lane.
    Order {
        /// The channel, e.g. `hengqin/passenger/12`.
        channel: String,
        /// What to do.
        action: OverrideAction,
    },
    /// Set the mode of several lanes (staged face-scan roll-out and roll-back): each lane's
    /// desired mode, and an order to each.
    SetMode {
        /// The channels.
        channels: Vec<String>,
        /// The mode.
        mode: LaneMode,
    },
    /// Acknowledge an alarm a lane raised.
    AckAlarm {
        /// The channel.
        channel: String,
        /// The alarm kind, e.g. `camera_down`.
        alarm: String,
        /// When it was raised (milliseconds since the Unix epoch), which tells it from later ones.
        since_ms: i64,
    },
    /// Revoke every certificate of one appliance or client issued up to the batch's audit time
    /// (a retired or stolen appliance): nodes refuse it at the handshake and close its
    /// connections. A certificate issued to the same identity afterwards (its replacement) is
    /// accepted.
    Revoke {
        /// The certificate identity, `node-11` or `client-ops`.
        identity: String,
    },
}

/// An order as the log carried it: its fencing token is the entry's (term, index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedOrder {
    /// Log index of the entry.
    pub index: u64,
    /// Term of the leader that wrote the entry.
    pub term: u64,
    /// What to do.
    pub action: OverrideAction,
    /// The audit record that goes with it.
    pub audit_seq: u64,
    /// When the console issued it (its audit record's time): a lane does not carry out a gate
    /// or officer order that reaches it much later (after a partition, say).
    pub at: DateTime<Utc>,
}

/// One lane's orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneOrders {
    /// The mode a supervisor last set (the lane takes it on start).
    pub mode: Option<LaneMode>,
    /// The newest orders, oldest first (at most [`ORDERS_KEPT`]).
    pub orders: Vec<IssuedOrder>,
}

/// The ledger's small, often-read part: everything but the audit records themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerView {
    /// Orders by channel.
    pub lanes: BTreeMap<String, LaneOrders>,
    /// Acknowledged alarms: (channel, kind, raised at in ms).
    pub acked_alarms: BTreeSet<(String, String, i64)>,
    /// Audit records so far.
    pub audit_len: u64,
    /// Hash of the newest audit record ([`GENESIS`] when there is none).
    pub audit_head: String,
}

/// The port's certificate revocation list: identity (`node-11`) → certificates of it issued at or
/// before this time are revoked.
pub type Revocations = BTreeMap<String, DateTime<Utc>>;

/// The replicated operations state: a [`LedgerView`], the whole audit trail and the revocation
/// list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    view: LedgerView,
    audit: Vec<AuditRecord>,
    revoked: Revocations,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger {
            view: LedgerView {
                audit_head: GENESIS.to_string(),
                ..LedgerView::default()
            },
            audit: Vec::new(),
            revoked: Revocations::new(),
        }
    }
}

/// What [`Ledger::apply`] changed, for the storage layer.
#[derive(Debug, Default, PartialEq)]
pub struct LedgerChanges {
    /// Audit records appended.
    pub audit: Vec<AuditRecord>,
    /// Whether the [`LedgerView`] (orders, modes, acknowledgements) changed.
    pub view: bool,
    /// Whether the revocation list changed.
    pub revoked: bool,
}

impl Ledger {
    /// Rebuilds a ledger from its stored parts, as they are: a trail that does not verify is kept
    /// so that [`verify_chain`] can show where it breaks.
    pub fn from_parts(view: LedgerView, audit: Vec<AuditRecord>, revoked: Revocations) -> Ledger {
        let mut view = view;
        view.audit_len = audit.len() as u64;
        view.audit_head = audit
            .last()
            .map_or_else(|| GENESIS.to_string(), |r| r.hash.clone());
        Ledger {
            view,
            audit,
            revoked,
        }
    }

    /// The revocation list.
    pub fn revoked(&self) -> &Revocations {
        &self.revoked
    }

    /// Orders, modes, acknowledgements and the trail's length and head.
    pub fn view(&self) -> &LedgerView {
        &self.view
    }

    /// The audit trail, oldest first.
    pub fn audit(&self) -> &[AuditRecord] {
        &self.audit
    }

    /// One lane's orders.
    pub fn lane(&self, channel: &str) -> Option<&LaneOrders> {
        self.view.lanes.get(channel)
    }

    /// Applies one V2 batch carried by the log entry (`term`, `index`): gallery commands go to
    /// `registry` (their changes to `changes`), the rest to the ledger (`ledger_changes`). One
    /// outcome per op. A batch without exactly one valid audit record changes nothing.
    pub fn apply(
        &mut self,
        ops: Vec<Op>,
        term: u64,
        index: u64,
        registry: &mut Registry,
        changes: &mut Vec<Change>,
        ledger_changes: &mut LedgerChanges,
    ) -> Vec<Outcome> {
        if let Err(reason) = check_batch(&ops) {
            return ops
                .iter()
                .map(|_| Outcome::Refused {
                    code: "bad_batch".into(),
                    reason: reason.clone(),
                })
                .collect();
        }
        // The audit record first, so orders can name it.
        let seq = self.audit.len() as u64;
        let at = ops
            .iter()
            .find_map(|op| match op {
                Op::Audit(d) => Some(d.at),
                _ => None,
            })
            .unwrap_or_default();
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let outcome = match op {
                Op::Audit(draft) => {
                    let prev = self.view.audit_head.clone();
                    let hash = AuditRecord::compute_hash(seq, index, &prev, &draft);
                    let record = AuditRecord {
                        seq,
                        index,
                        draft,
                        prev,
                        hash: hash.clone(),
                    };
                    self.view.audit_head = hash.clone();
                    self.view.audit_len = seq + 1;
                    self.audit.push(record.clone());
                    ledger_changes.audit.push(record);
                    Outcome::Audited { seq, hash }
                }
                Op::Gallery(command) => registry.apply(command, changes),
                Op::Order { channel, action } => {
                    self.order(channel, action, (term, index, seq), at);
                    ledger_changes.view = true;
                    Outcome::Ordered
                }
                Op::SetMode { channels, mode } => {
                    for channel in channels {
                        self.order(
                            channel,
                            OverrideAction::Mode { mode },
                            (term, index, seq),
                            at,
                        );
                    }
                    ledger_changes.view = true;
                    Outcome::Ordered
                }
                Op::AckAlarm {
                    channel,
                    alarm,
                    since_ms,
                } => {
                    let acks = &mut self.view.acked_alarms;
                    acks.insert((channel, alarm, since_ms));
                    while acks.len() > ACKS_KEPT {
                        // Forget the acknowledgement of the oldest alarm.
                        let oldest = acks.iter().min_by_key(|a| a.2).cloned();
                        if let Some(oldest) = oldest {
                            acks.remove(&oldest);
                        }
                    }
                    ledger_changes.view = true;
                    Outcome::Ordered
                }
                Op::Revoke { identity } => {
                    let until = self.revoked.entry(identity).or_insert(at);
                    *until = (*until).max(at);
                    ledger_changes.revoked = true;
                    Outcome::Ordered
                }
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Records an order carried by the entry (`term`, `index`) with audit record `seq`.
    fn order(
        &mut self,
        channel: String,
        action: OverrideAction,
        (term, index, seq): (u64, u64, u64),
        at: DateTime<Utc>,
    ) {
        let lane = self.view.lanes.entry(channel).or_default();
        if let OverrideAction::Mode { mode } = action {
            lane.mode = Some(mode);
        }
        lane.orders.push(IssuedOrder {
            index,
            term,
            action,
            audit_seq: seq,
            at,
        });
        if lane.orders.len() > ORDERS_KEPT {
            let extra = lane.orders.len() - ORDERS_KEPT;
            lane.orders.drain(..extra);
        }
    }
}

/// Why a batch is refused as a whole, if it is.
fn check_batch(ops: &[Op]) -> Result<(), String> {
    let audits: Vec<&AuditDraft> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Audit(d) => Some(d),
            _ => None,
        })
        .collect();
    let [draft] = audits.as_slice() else {
        return Err(format!(
            "a console change needs exactly one audit record; this one has {}",
            audits.len()
        ));
    };
    text("the audit record's actor", &draft.actor, false)?;
    text("the audit record's role", &draft.role, false)?;
    text("the audit record's action", &draft.action, false)?;
    text("the audit record's target", &draft.target, true)?;
    text("the reason", &draft.reason, false)?;
    for op in ops {
        match op {
            Op::Order { channel, .. } | Op::AckAlarm { channel, .. } => {
                text("the channel", channel, false)?
            }
            Op::SetMode { channels, .. } => {
                if channels.is_empty() || channels.len() > MAX_CHANNELS {
                    return Err(format!(
                        "a mode change names 1 to {MAX_CHANNELS} channels, not {}",
                        channels.len()
                    ));
                }
                for c in channels {
                    text("the channel", c, false)?;
                }
            }
            Op::Revoke { identity } => {
                text("the revoked identity", identity, false)?;
                if identity.len() > 64 || identity.contains(char::is_whitespace) {
                    return Err(format!("{identity:?} is not a certificate identity"));
                }
            }
            Op::Gallery(_) | Op::Audit(_) => {}
        }
    }
    Ok(())
}

fn text(what: &str, value: &str, may_be_empty: bool) -> Result<(), String> {
    if !may_be_empty && value.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(format!("{what} is longer than {MAX_TEXT} characters"));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}
