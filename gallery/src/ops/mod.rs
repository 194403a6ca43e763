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
//! * audit records name persons by id, never by document number, and hold no biometric data;
//! * a record's hash covers its reason's salted commitment, not the text: the text of a record
//!   that concerns a person is erased when that person is cancelled, and the trail still
//!   verifies;
//! * a record names the digest of its batch's other operations, so a client's signature over
//!   the record covers what was done.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::PersonId;
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

/// What a client (the console, an operator's tool) submits with every change: who did what to
/// what, and why, signed with the client's certificate key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// Who: an operator's certificate name (`ops`), or the console user and the console that
    /// vouches for them (`ana@console`). The leader checks it against the client's certificate.
    pub actor: String,
    /// Their role (`operator`, `supervisor`, `service_desk`, `port_admin`).
    pub role: String,
    /// What was done, e.g. `order.gate_lock`, `cancel`, `guardian_consent`.
    pub action: String,
    /// What it was done to: a channel id, a person id (`P00000001`), a port; never a document
    /// number.
    pub target: String,
    /// Why, in the user's words (required). Never stored in the clear: the record keeps its
    /// salted commitment; the text is sealed and erased with the person it concerns.
    pub reason: String,
    /// 16 random bytes, hex, that salt the reason's commitment (a short reason cannot be guessed
    /// from its hash).
    pub reason_salt: String,
    /// When the client sent it.
    pub at: DateTime<Utc>,
    /// [`ops_digest`] of the batch's other operations: the signature covers what was done.
    pub ops_digest: String,
    /// The client's signature over [`AuditEntry::signed_message`]; nodes require one on every
    /// batch a client sends, so no node can write or rewrite a record in a client's name.
    pub signature: Option<AuditSignature>,
}

impl AuditDraft {
    /// The record's signed part as this draft makes it.
    pub fn entry(&self) -> AuditEntry {
        AuditEntry {
            actor: self.actor.clone(),
            role: self.role.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            at: self.at,
            reason_commitment: self.reason_text().commitment(),
            ops_digest: self.ops_digest.clone(),
            signature: self.signature.clone(),
        }
    }

    /// The reason with its salt.
    pub fn reason_text(&self) -> AuditReason {
        AuditReason {
            salt: self.reason_salt.clone(),
            text: self.reason.clone(),
        }
    }
}

/// A client's signature over an audit entry: its certificate (DER, issued by the port CA; the
/// identity and role in it are the signer's), the TLS signature scheme and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSignature {
    /// The signer's certificate, DER.
    pub certificate: Vec<u8>,
    /// The TLS `SignatureScheme` code (e.g. `0x0403`, ECDSA P-256 SHA-256).
    pub scheme: u16,
    /// The signature.
    pub signature: Vec<u8>,
}

/// What an audit record says, as hashed into the chain and signed by the client: everything but
/// the reason's text, which is kept apart (sealed, erasable) and represented by its commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Who (see [`AuditDraft::actor`]).
    pub actor: String,
    /// Their role.
    pub role: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// When the client sent it.
    pub at: DateTime<Utc>,
    /// [`AuditReason::commitment`] of the reason.
    pub reason_commitment: String,
    /// [`ops_digest`] of the batch's other operations.
    pub ops_digest: String,
    /// The client's signature over [`AuditEntry::signed_message`].
    pub signature: Option<AuditSignature>,
}

impl AuditEntry {
    /// The bytes a client signs: a domain tag and every field but the signature, each
    /// length-prefixed.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut out = b"clearway-audit-signed-v2".to_vec();
        let at = self.at.timestamp_micros().to_string();
        for field in [
            &self.actor,
            &self.role,
            &self.action,
            &self.target,
            &at,
            &self.reason_commitment,
            &self.ops_digest,
        ] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    /// The person the record concerns, if its target names one: their reason is erased with them.
    pub fn person(&self) -> Option<crate::PersonId> {
        self.target.parse().ok()
    }
}

/// A reason in the user's words with the salt of its commitment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReason {
    /// 16 bytes, hex.
    pub salt: String,
    /// The text.
    pub text: String,
}

impl fmt::Debug for AuditReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Free text may name a person: never in logs.
        f.write_str("AuditReason(..)")
    }
}

impl AuditReason {
    /// SHA-256 (hex) over a domain tag, the salt and the text: what the chain and the signature
    /// cover, so the text can be erased and the trail still verifies.
    pub fn commitment(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"clearway-audit-reason-v1");
        h.update((self.salt.len() as u64).to_be_bytes());
        h.update(self.salt.as_bytes());
        h.update((self.text.len() as u64).to_be_bytes());
        h.update(self.text.as_bytes());
        hex::encode(h.finalize())
    }
}

/// SHA-256 (hex) over a domain tag and the `postcard` encoding of a batch's operations other
/// than its audit record, in order.
pub fn ops_digest(ops: &[Op]) -> String {
    let others: Vec<&Op> = ops
        .iter()
        .filter(|op| !matches!(op, Op::Audit(_)))
        .collect();
    let mut h = Sha256::new();
    h.update(b"clearway-audit-ops-v1");
    // Encoding plain data into a Vec cannot fail.
    h.update(postcard::to_stdvec(&others).unwrap_or_default());
    hex::encode(h.finalize())
}

/// Fills in the [`ops_digest`] of a batch's audit record(s) from the batch's other operations
/// (a client calls this when the batch is complete, before signing).
pub fn set_ops_digest(ops: &mut [Op]) {
    let digest = ops_digest(ops);
    for op in ops {
        if let Op::Audit(draft) = op {
            draft.ops_digest = digest.clone();
        }
    }
}

/// One record of the audit trail, as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the trail (0, 1, …).
    pub seq: u64,
    /// The Raft log index of the entry that carried it.
    pub index: u64,
    /// What it says (hashed and signed).
    pub entry: AuditEntry,
    /// The reason's text; `None` once erased with the person the record concerns (or as stored
    /// in the `sm_audit` tree, which keeps texts apart, sealed). Not hashed: its commitment is.
    pub reason: Option<AuditReason>,
    /// The one person the batch enrolled or changed when its target does not name them (a
    /// minor enrolled at a service location has no id until the batch applies): their
    /// cancellation erases this record's reason too. Derived by every replica alike; not hashed.
    pub subject: Option<PersonId>,
    /// The code of the first op of the batch that was refused when it applied (`unknown_person`,
    /// `too_many_templates`, …); `None` when every op applied. Derived by every replica alike
    /// from the same log entry; not hashed (the outcome follows from the hashed content).
    pub refused: Option<String>,
    /// The previous record's hash (hex SHA-256), [`GENESIS`] for the first.
    pub prev: String,
    /// This record's hash (hex SHA-256) over all of the above but the reason's text.
    pub hash: String,
}

impl AuditRecord {
    /// The hash a record with these contents has: SHA-256 over a domain tag and every field,
    /// each length-prefixed, so no two different records hash alike by shifting text between
    /// fields.
    pub fn compute_hash(seq: u64, index: u64, prev: &str, entry: &AuditEntry) -> String {
        let mut h = Sha256::new();
        h.update(b"clearway-audit-v2");
        h.update(seq.to_be_bytes());
        h.update(index.to_be_bytes());
        h.update((prev.len() as u64).to_be_bytes());
        h.update(prev.as_bytes());
        h.update(entry.signed_message());
        match &entry.signature {
            None => h.update([0]),
            Some(s) => {
                h.update([1]);
                h.update(s.scheme.to_be_bytes());
                for part in [&s.certificate, &s.signature] {
                    h.update((part.len() as u64).to_be_bytes());
                    h.update(part);
                }
            }
        }
        hex::encode(h.finalize())
    }

    /// The reason's text, or `None` once erased. A text that does not match the commitment
    /// (changed on disk) is not returned.
    pub fn reason_text(&self) -> Option<&str> {
        self.reason
            .as_ref()
            .filter(|r| r.commitment() == self.entry.reason_commitment)
            .map(|r| r.text.as_str())
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
        let hash = AuditRecord::compute_hash(r.seq, r.index, &r.prev, &r.entry);
        if r.hash != hash {
            return Err(broken(
                "its contents do not match its hash (the record was changed)".into(),
            ));
        }
        if r.reason
            .as_ref()
            .is_some_and(|t| t.commitment() != r.entry.reason_commitment)
        {
            return Err(broken(
                "its reason does not match the reason's commitment (the text was changed)".into(),
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
    /// Records whose reason was erased (the person they concern was cancelled).
    pub reasons_erased: Vec<u64>,
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
        let changes_before = changes.len();
        let at = ops
            .iter()
            .find_map(|op| match op {
                Op::Audit(d) => Some(d.at),
                _ => None,
            })
            .unwrap_or_default();
        registry.begin_batch(index, Some(at));
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let outcome = match op {
                Op::Audit(draft) => {
                    let prev = self.view.audit_head.clone();
                    let entry = draft.entry();
                    let hash = AuditRecord::compute_hash(seq, index, &prev, &entry);
                    let record = AuditRecord {
                        seq,
                        index,
                        entry,
                        reason: Some(draft.reason_text()),
                        subject: None,
                        refused: None,
                        prev,
                        hash: hash.clone(),
                    };
                    self.view.audit_head = hash.clone();
                    self.view.audit_len = seq + 1;
                    self.audit.push(record.clone());
                    ledger_changes.audit.push(record);
                    Outcome::Audited { seq, hash }
                }
                Op::Gallery(command) => {
                    let before = changes.len();
                    let outcome = registry.apply(command, changes);
                    let erased: Vec<PersonId> = changes[before..]
                        .iter()
                        .filter_map(|c| match c {
                            Change::Erase(id) => Some(*id),
                            Change::Put(_) | Change::Notice(_) => None,
                        })
                        .collect();
                    for id in erased {
                        self.forget_person(id, ledger_changes);
                    }
                    outcome
                }
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
        // What came of the batch: its first refusal, on the record and on what is stored of it.
        let refused = outcomes.iter().find_map(|o| match o {
            Outcome::Refused { code, .. } => Some(code.clone()),
            _ => None,
        });
        if refused.is_some() {
            if let Some(record) = self.audit.last_mut().filter(|r| r.seq == seq) {
                record.refused.clone_from(&refused);
            }
            if let Some(r) = ledger_changes.audit.iter_mut().find(|r| r.seq == seq) {
                r.refused = refused;
            }
        }
        // The one person this batch enrolled or changed, if its target does not name them.
        let touched: BTreeSet<PersonId> = changes[changes_before..]
            .iter()
            .filter_map(|c| match c {
                Change::Put(id) => Some(*id),
                Change::Erase(_) | Change::Notice(_) => None,
            })
            .collect();
        if let (Some(record), [id]) = (
            self.audit.last_mut(),
            touched.iter().copied().collect::<Vec<_>>().as_slice(),
        ) && record.seq == seq
            && record.entry.person().is_none()
        {
            record.subject = Some(*id);
            if let Some(r) = ledger_changes.audit.iter_mut().find(|r| r.seq == seq) {
                r.subject = Some(*id);
            }
        }
        outcomes
    }

    /// Erases the reasons of every record that concerns `person` (their cancellation): the
    /// records stay, with their commitments, so the trail still verifies.
    pub fn forget_person(&mut self, person: PersonId, changes: &mut LedgerChanges) {
        for record in &mut self.audit {
            let concerns = record.entry.person() == Some(person) || record.subject == Some(person);
            if record.reason.is_some() && concerns {
                record.reason = None;
                changes.reasons_erased.push(record.seq);
            }
        }
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
    if draft.reason_salt.len() != 32 || !draft.reason_salt.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the reason's salt is not 16 bytes of hex".into());
    }
    if draft.ops_digest != ops_digest(ops) {
        return Err(
            "the audit record does not describe this batch (its digest of the operations differs)"
                .into(),
        );
    }
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
