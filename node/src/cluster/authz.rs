//! Who may make which call: the port's one authorisation table, pure and unit-tested as a table.
//!
//! Every certificate names a [`Role`] (`net::Role`, read from the certificate at the handshake and
//! nowhere else). [`authorize`] decides from the role and the call alone, before the node does
//! anything with the call (before it is forwarded, decoded further or proposed); the node adds
//! the few checks that need its state (a lane may add a face only to a person still pending
//! their channel registration) and checks each audit record's actor and client signature
//! ([`check_audit`]) on the leader.
//!
//! | call                         | voter            | lane (channel c)                     | console | operator |
//! |------------------------------|------------------|--------------------------------------|---------|----------|
//! | `Append`, `Vote`, `Snapshot` | as itself only   | no                                   | no      | no       |
//! | `Write(V1)`                  | no               | its traveller's registration at `c`  | no      | no       |
//! | `Write(V2)` (audited ops)    | no               | no                                   | yes     | yes      |
//! | `Membership` (audited; `Remove` also revokes) | no | no                         | yes     | yes      |
//! | `Initialize`                 | no               | no                                   | yes     | yes      |
//! | `Person`, `FindDocument`     | no               | no                                   | yes (rate-limited) | yes (rate-limited) |
//! | `Search`, `Audit`            | no               | no                                   | yes     | yes      |
//! | `Status`, `Digest`, `Metrics`, `Lane`, `Ledger` | yes | yes                         | yes     | yes      |
//! | `LaneStill` (a viewing the trail records, [`still_viewing`]) | no | no                | yes     | no       |
//! | `OnBehalf` (forwarding)      | the client's call, authorised as the client | authorised as the lane itself | no | no |
//!
//! Raft messages additionally name their sender, which must be the certificate's node
//! (checked in the node's dispatch). A voter forwards a client's call to the leader inside
//! `Call::OnBehalf` with the client's identity and role; the leader authorises that identity,
//! trusting the forwarding only because the forwarder's certificate says `voter`. A lane that
//! wraps a call in `OnBehalf` gains nothing: the call is authorised as the lane.

use clearway_gallery::ops::{AuditDraft, Op};
use clearway_gallery::{Command, ConsentKind, Request};

use super::protocol::Call;
use crate::net::signing::AuditVerifier;
use crate::net::{Identity, Role};

/// Longest audit actor (a console user name) a console may vouch for.
pub const MAX_ACTOR_LEN: usize = 64;

/// The largest request frame each role may send. Voters carry log entries and snapshot chunks;
/// clients write batches (an import chunk of a thousand enrolments is well under a megabyte);
/// a lane sends one registration at a time.
pub fn max_request(role: &Role) -> usize {
    match role {
        Role::Voter => crate::net::rpc::MAX_FRAME,
        Role::Console | Role::Operator => 16 << 20,
        Role::Lane { .. } => 1 << 20,
    }
}

/// An authenticated caller: the certificate's identity and role (for a forwarded call, the
/// original client's, as vouched for by a voter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `client-console`, `node-11`.
    pub identity: Identity,
    /// What it may do.
    pub role: Role,
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.identity, self.role)
    }
}

/// Why a call was refused: shown to the caller, logged and counted (`call`, `role` are bounded
/// metric labels; `reason` never carries personal data).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{role} may not {call}: {reason}")]
pub struct Refusal {
    /// The call's name.
    pub call: &'static str,
    /// The caller's role name.
    pub role: &'static str,
    /// Why.
    pub reason: String,
}

fn refuse(call: &Call, role: &Role, reason: impl Into<String>) -> Refusal {
    Refusal {
        call: call.name(),
        role: role.name(),
        reason: reason.into(),
    }
}

/// Decides whether `role` may make `call`. Pure: the table in the module doc, one arm per row.
/// `OnBehalf` is unwrapped by the caller ([`forwarded_principal`]) before the inner call comes
/// here, so it is refused here.
pub fn authorize(role: &Role, call: &Call) -> Result<(), Refusal> {
    let client = matches!(role, Role::Console | Role::Operator);
    match call {
        Call::Append(_) | Call::Vote(_) | Call::Snapshot(_) => match role {
            Role::Voter => Ok(()),
            _ => Err(refuse(call, role, "only voters send raft messages")),
        },
        Call::Write(Request::V1(commands)) => match role {
            Role::Lane { channel } => {
                lane_registration(channel, commands).map_err(|reason| refuse(call, role, reason))
            }
            _ => Err(refuse(
                call,
                role,
                "unaudited gallery writes are only a lane's channel registration; \
                 send the commands as an audited V2 batch",
            )),
        },
        Call::Write(Request::V2(ops)) => {
            if !client {
                return Err(refuse(
                    call,
                    role,
                    "only a console or an operator writes ops",
                ));
            }
            if !ops.iter().any(|op| matches!(op, Op::Audit(_))) {
                return Err(refuse(call, role, "a V2 batch needs its audit record"));
            }
            Ok(())
        }
        Call::Membership { .. }
        | Call::Initialize { .. }
        | Call::Search { .. }
        | Call::Audit { .. } => clients_only(client, call, role, "only a console or an operator"),
        Call::Person { .. } | Call::FindDocument { .. } => clients_only(
            client,
            call,
            role,
            "person records are read only by a console or an operator",
        ),
        Call::Status | Call::Digest | Call::Metrics | Call::Lane | Call::Ledger => Ok(()),
        Call::LaneStill { .. } => match role {
            Role::Console => Ok(()),
            _ => Err(refuse(
                call,
                role,
                "camera stills are shown only to a supervisor at the console",
            )),
        },
        Call::OnBehalf { .. } => Err(refuse(call, role, "a forwarded call cannot be forwarded")),
    }
}

/// Whether `record` (the audit record a [`Call::LaneStill`] names, from the node's own replica)
/// records a supervisor's viewing of `channel`'s cameras that is still current at `now`: action
/// [`STILL_ACTION`](super::node::STILL_ACTION), target the channel, role `supervisor`, applied,
/// made at most [`STILL_VIEWING`](super::node::STILL_VIEWING) ago (and not in the future beyond
/// the clock skew the leader allows). A still is never shown without its record.
pub fn still_viewing(
    record: Option<&clearway_gallery::ops::AuditRecord>,
    channel: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    let r = record.ok_or("no such audit record in this replica (yet)")?;
    let e = &r.entry;
    if e.action != super::node::STILL_ACTION {
        return Err(format!(
            "audit record {} is a {:?}, not a camera viewing",
            r.seq, e.action
        ));
    }
    if e.target != channel {
        return Err(format!(
            "audit record {} is a viewing of {}, not of {channel}",
            r.seq, e.target
        ));
    }
    if e.role != "supervisor" {
        return Err(format!(
            "audit record {} was made by a {}; only a supervisor views cameras",
            r.seq, e.role
        ));
    }
    if let Some(code) = &r.refused {
        return Err(format!("audit record {} was refused ({code})", r.seq));
    }
    let age = now.signed_duration_since(e.at);
    let window = chrono::Duration::from_std(super::node::STILL_VIEWING).unwrap_or_default();
    if age > window || age < -AUDIT_CLOCK_SKEW {
        return Err(format!(
            "the viewing recorded by audit record {} has ended; record a new one",
            r.seq
        ));
    }
    Ok(())
}

fn clients_only(client: bool, call: &Call, role: &Role, reason: &str) -> Result<(), Refusal> {
    if client {
        Ok(())
    } else {
        Err(refuse(call, role, reason))
    }
}

/// Whom a call that `forwarder` wrapped in `OnBehalf` for `client` (identity and role as the
/// forwarder wrote them) is authorised as: the client if the forwarder is a voter, otherwise the
/// forwarder itself — a lane cannot speak for anyone else.
pub fn forwarded_principal(
    forwarder: &Principal,
    client: &str,
    role: &str,
) -> Result<Principal, String> {
    if forwarder.role != Role::Voter {
        return Ok(forwarder.clone());
    }
    let identity: Identity = client
        .parse()
        .map_err(|e| format!("forwarded identity: {e}"))?;
    let role: Role = role.parse().map_err(|e| format!("forwarded role: {e}"))?;
    role.fits(&identity).map_err(|e| e.to_string())?;
    if !matches!(role, Role::Console | Role::Operator) {
        return Err(format!(
            "{identity} ({role}) is not a client; nodes are not forwarded for"
        ));
    }
    Ok(Principal { identity, role })
}

/// Most cancellation notices one lane batch reports delivered.
pub const MAX_NOTICES_PER_BATCH: usize = 64;

/// Checks that a lane's V1 batch is what a lane writes, for one traveller at its own channel:
///
/// * a registration: a new person enrolled with their face, the prerequisites the authorities
///   confirmed and the Smart Immigration Clearance consent with the port's authorities; or one face added to a person
///   enrolled without one (a minor approved at a service location), or a renewed permit's holder
///   relinked (their templates replaced by the new capture), each followed by the card's
///   document data, the prerequisites and the consents;
/// * a card read keeping a registered record true: the document's data and/or the prerequisites;
/// * cancellation notices it delivered to every authority of the port (removing them; a stolen
///   lane could report one it did not deliver — the authorities' own records are the check).
///
/// Every Smart Immigration Clearance consent names `channel`. Nothing else: no cancellation, no
/// guardian's consent, no consent kept by the authorities (the fingerprint-read authorisation
/// travels only as a confirmed prerequisite).
pub fn lane_registration(channel: &str, commands: &[Command]) -> Result<(), String> {
    let consent = |c: &clearway_gallery::ConsentRecord| {
        match c.kind {
        ConsentKind::SmartClearanceRegistration if c.channel == channel => Ok(()),
        ConsentKind::SmartClearanceRegistration => {
            Err("a consent names another channel than the lane's own".to_string())
        }
        ConsentKind::FingerprintReadAuthorisation => {
            Err("a fingerprint-read authorisation is confirmed by the Macao authority, not recorded by a lane".to_string())
        }
    }
    };
    let same = |p: &clearway_gallery::PersonId, who: &clearway_gallery::PersonId, c: &Command| {
        if p == who {
            Ok(())
        } else {
            Err(format!(
                "{} is about another person than the lane's registration",
                c.name()
            ))
        }
    };
    match commands {
        [Command::Enrol { person, templates }] => {
            if templates.is_empty() {
                return Err("a lane registration enrols the traveller's face".into());
            }
            if person.guardian_consent.is_some() {
                return Err("a guardian's consent is recorded at a service location".into());
            }
            // With each of the port's authorities (the lane's procedure waits for every one of
            // them); the node does not know the port's policy, so at least one.
            let agreed = person
                .consents
                .iter()
                .any(|c| c.kind == ConsentKind::SmartClearanceRegistration);
            if !agreed {
                return Err("a lane registration records the traveller's consent".into());
            }
            person
                .consents
                .iter()
                .filter(|c| c.kind == ConsentKind::SmartClearanceRegistration)
                .try_for_each(consent)
        }
        [
            first @ (Command::AddTemplate { .. } | Command::ReplaceTemplates { .. }),
            rest @ ..,
        ] => {
            let (person, relink) = match first {
                Command::AddTemplate { person, .. } => (person, false),
                Command::ReplaceTemplates { person, templates } if templates.len() == 1 => {
                    (person, true)
                }
                _ => return Err("a relinked holder's templates are one new capture".into()),
            };
            let mut consents = 0;
            let mut document = false;
            for c in rest {
                match c {
                    Command::UpdateDocument { person: p, .. } => {
                        same(p, person, c)?;
                        document = true;
                    }
                    Command::ConfirmPrerequisites { person: p, .. } => same(p, person, c)?,
                    Command::RecordConsent {
                        person: p,
                        consent: k,
                    } => {
                        same(p, person, c)?;
                        consent(k)?;
                        consents += 1;
                    }
                    other => {
                        return Err(format!(
                            "{} is not part of a lane registration of this person",
                            other.name()
                        ));
                    }
                }
            }
            if consents == 0 {
                return Err("a lane registration records the traveller's consent".into());
            }
            if relink && !document {
                return Err("a relink moves the person to the renewed document".into());
            }
            Ok(())
        }
        [Command::UpdateDocument { person, .. }]
        | [Command::ConfirmPrerequisites { person, .. }] => {
            let _ = person;
            Ok(())
        }
        [
            Command::UpdateDocument { person, .. },
            c @ Command::ConfirmPrerequisites { person: p, .. },
        ] => same(p, person, c),
        delivered
            if !delivered.is_empty()
                && delivered.len() <= MAX_NOTICES_PER_BATCH
                && delivered
                    .iter()
                    .all(|c| matches!(c, Command::NoticeDelivered { .. })) =>
        {
            Ok(())
        }
        _ => Err("a lane writes only the registration of one traveller at its channel".into()),
    }
}

/// The person a lane's registration adds a face to, if it completes a pending person (the node
/// checks that person has no face yet).
pub fn completes(commands: &[Command]) -> Option<clearway_gallery::PersonId> {
    match commands.first() {
        Some(Command::AddTemplate { person, .. }) => Some(*person),
        _ => None,
    }
}

/// How far an audit record's time may be from the leader's clock when it is proposed: a signed
/// batch cannot be held back and replayed later (a lane also ignores orders that reach it late).
pub const AUDIT_CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Checks a V2 batch's audit record against the authenticated client, on the leader just before
/// it is proposed: the record names the client (an operator's record names the operator's
/// certificate, `actor` = its name, `role` = `operator`; a console's names the signed-in user
/// the console vouches for and the console, `ana@console`, with a console role), it is signed
/// with that client's certificate key ([`AuditVerifier`]), and its time is within
/// [`AUDIT_CLOCK_SKEW`] of `now`. A forwarding voter holds no client's key, so it cannot write
/// a record in a client's name.
pub fn check_audit(
    principal: &Principal,
    request: &Request,
    verifier: &AuditVerifier,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    let Request::V2(ops) = request else {
        return Ok(());
    };
    let Identity::Client(name) = &principal.identity else {
        return Err("only clients write audited batches".into());
    };
    for op in ops {
        if let Op::Audit(draft) = op {
            check_actor(principal, name, draft)?;
            let skew = (draft.at - now).abs();
            if skew > AUDIT_CLOCK_SKEW {
                return Err(format!(
                    "the audit record's time is {} s from the leader's clock (at most {} s)",
                    skew.num_seconds(),
                    AUDIT_CLOCK_SKEW.num_seconds()
                ));
            }
            let signer = verifier
                .verify(&draft.entry())
                .map_err(|e| format!("the audit record's signature: {e}"))?;
            if signer.identity != principal.identity || signer.role != principal.role {
                return Err(format!(
                    "the audit record is signed by {} ({}), not by the client that sent it",
                    signer.identity, signer.role
                ));
            }
        }
    }
    Ok(())
}

/// The actor and role a client may write into its records.
fn check_actor(principal: &Principal, name: &str, draft: &AuditDraft) -> Result<(), String> {
    match principal.role {
        Role::Operator => {
            if draft.actor != name || draft.role != "operator" {
                return Err(format!(
                    "an operator's audit record names its certificate: actor {name:?}, role \"operator\""
                ));
            }
            Ok(())
        }
        Role::Console => {
            let user = draft
                .actor
                .strip_suffix(name)
                .and_then(|u| u.strip_suffix('@'))
                .unwrap_or_default();
            let ok = !user.is_empty()
                && user.len() <= MAX_ACTOR_LEN
                && !user.contains('@')
                && !user.chars().any(char::is_control);
            if !ok {
                return Err(format!(
                    "the audit actor must be the console user's name and this console's, user@{name}"
                ));
            }
            if !matches!(
                draft.role.as_str(),
                "supervisor" | "service_desk" | "port_admin"
            ) {
                return Err(format!("{:?} is not a console role", draft.role));
            }
            Ok(())
        }
        _ => Err("only clients write audited batches".into()),
    }
}

#[cfg(test)]
mod tests;
