//! Lanes: the lane page, overrides, alarm acknowledgements and the staged face-scan roll-out.

use crate::auth::Millis;
use crate::dto::{
    LaneDetail, LaneMode, OrderView, OverrideAction, RecordedOrder, Role, Viewer, WriteReceipt,
};
use crate::error::{Error, Result};
use crate::port_api::Change;

use super::{Console, Write, check_reason};

/// Orders a lane page lists.
pub const ORDERS_SHOWN: usize = 10;

/// Camera viewings a port remembers (the oldest are forgotten first).
const MAX_VIEWINGS: usize = 1000;

/// Kinds of alarm a supervisor may acknowledge: every kind but a replica's audit divergence,
/// which stays until the replica is dealt with.
pub fn acknowledgeable(kind: &str) -> bool {
    crate::dto::ALARM_CODES.contains(&kind) && kind != "audit_divergence"
}

/// Stages of the face-scan roll-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Face scan on the pilot channels.
    Pilot,
    /// Face scan on every channel.
    All,
    /// Back to card scan on every channel.
    Rollback,
}

impl Stage {
    /// Reads `pilot`, `all` or `rollback`.
    pub fn parse(s: &str) -> Result<Stage> {
        match s {
            "pilot" => Ok(Stage::Pilot),
            "all" => Ok(Stage::All),
            "rollback" => Ok(Stage::Rollback),
            other => Err(Error::Invalid(format!(
                "unknown stage {other:?}: expected pilot, all or rollback"
            ))),
        }
    }
}

impl Console {
    /// A lane's page: `/lane/{port}/{hall}/{n}`.
    pub fn lane_detail(&self, v: &Viewer, port: &str, hall: &str, n: &str) -> Result<LaneDetail> {
        let p = self.monitored(v, port)?;
        let channel = format!("{port}/{hall}/{n}");
        let (h, _) = p
            .def
            .locate(&channel)
            .ok_or_else(|| Error::NotFound(format!("port {port} has no lane {hall}/{n}")))?;
        let snap = p.latest();
        let view = snap
            .channel(&channel)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("port {port} has no lane {hall}/{n}")))?;
        let tracker = p.tracker.lock().unwrap_or_else(|e| e.into_inner());
        let orders = tracker
            .ledger
            .orders
            .get(&channel)
            .cloned()
            .unwrap_or_default();
        Ok(LaneDetail {
            port: port.to_string(),
            port_name: p.def.name.clone(),
            hall: h.id.clone(),
            hall_name: h.name.clone(),
            alarms: snap
                .alarms
                .iter()
                .filter(|a| a.channel == channel)
                .cloned()
                .collect(),
            channel: view,
            orders,
            may_override: v.may_override(port),
        })
    }

    /// The newest orders of a lane (newest first, at most [`ORDERS_SHOWN`]) with who gave each,
    /// when and why, from the port's audit trail.
    pub async fn lane_orders(
        &self,
        v: &Viewer,
        port: &str,
        channel: &str,
    ) -> Result<Vec<RecordedOrder>> {
        let p = self.monitored(v, port)?;
        if p.def.locate(channel).is_none() {
            return Err(Error::NotFound(format!(
                "port {port} has no lane {channel:?}"
            )));
        }
        let orders: Vec<OrderView> = {
            let tracker = p.tracker.lock().unwrap_or_else(|e| e.into_inner());
            let all = tracker
                .ledger
                .orders
                .get(channel)
                .cloned()
                .unwrap_or_default();
            all.into_iter().rev().take(ORDERS_SHOWN).collect()
        };
        if orders.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<u64> = orders.iter().map(|o| o.audit_seq).collect();
        let leader = p.latest().leader;
        let records = p.api.audit_records(&p.nodes(), leader, &seqs).await?;
        let offset = p.def.utc_offset_minutes;
        Ok(orders
            .into_iter()
            .map(|order| match records.get(&order.audit_seq) {
                Some(r) => RecordedOrder {
                    actor: r.entry.actor.clone(),
                    role: r.entry.role.clone(),
                    at: crate::time::local(r.entry.at.timestamp_millis(), offset),
                    reason: r
                        .reason_text()
                        .unwrap_or("(erased with the person's registration)")
                        .to_owned(),
                    order,
                },
                None => RecordedOrder {
                    actor: String::new(),
                    role: String::new(),
                    at: String::new(),
                    reason: "(its audit record has not reached the replica asked yet)".into(),
                    order,
                },
            })
            .collect())
    }

    /// An override of one lane: an order replicated with its audit record. The lane carries it
    /// out with the entry's fencing token; `LaneView::acked_order >= receipt.index` shows it did.
    pub async fn lane_override(
        &self,
        v: &Viewer,
        port: &str,
        channel: &str,
        action: &str,
        reason: &str,
        now: Millis,
    ) -> Result<WriteReceipt> {
        let p = self.overridable(v, port)?;
        // Nobody would carry an order to an empty channel out: refused before the log.
        self.deployed(&p, channel)?;
        let action = OverrideAction::parse(action).map_err(Error::Invalid)?;
        let reason = check_reason(reason)?;
        let code = action.code();
        let w = Write {
            metric: code.clone(),
            action: format!("order.{code}"),
            target: channel.to_string(),
            reason,
            change: Change::Order {
                channel: channel.to_string(),
                action,
            },
        };
        self.submit(&p, v, w, now).await
    }

    /// Starts a supervisor's viewing of a lane's cameras: an audit record (action
    /// `camera.view`, with the reason) replicated before any still is shown; its sequence
    /// number is the viewing's key for [`Console::camera_still`] for the next ten minutes.
    pub async fn watch_cameras(
        &self,
        v: &Viewer,
        port: &str,
        channel: &str,
        reason: &str,
        now: Millis,
    ) -> Result<WriteReceipt> {
        let p = self.overridable(v, port)?;
        self.deployed(&p, channel)?;
        let reason = check_reason(reason)?;
        let w = Write {
            metric: "camera_view".into(),
            action: clearway_wire::protocol::STILL_ACTION.into(),
            target: channel.to_string(),
            reason,
            change: Change::AuditOnly,
        };
        let receipt = self.submit(&p, v, w, now).await?;
        let mut viewings = p.viewings.lock().unwrap_or_else(|e| e.into_inner());
        viewings.insert(receipt.audit_seq, (v.name.clone(), channel.to_string()));
        while viewings.len() > MAX_VIEWINGS {
            viewings.pop_first();
        }
        Ok(receipt)
    }

    /// The newest still (JPEG) of `camera` (1 = gate 1, 2 = gate 2) of `channel`'s lane, for
    /// the viewing this user recorded as audit record `audit_seq` (the lane's node checks the
    /// record too). Memory only: never stored, never cached. `None` while the first is made.
    pub async fn camera_still(
        &self,
        v: &Viewer,
        port: &str,
        channel: &str,
        camera: u8,
        audit_seq: u64,
    ) -> Result<Option<Vec<u8>>> {
        let p = self.overridable(v, port)?;
        if !(1..=2).contains(&camera) {
            return Err(Error::Invalid(format!(
                "camera {camera}: a lane has the gate-1 and gate-2 cameras (1 or 2)"
            )));
        }
        let mine = p
            .viewings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&audit_seq)
            .is_some_and(|(user, c)| *user == v.name && c == channel);
        if !mine {
            return Err(self.refuse(format!(
                "audit record {audit_seq} is not your viewing of {channel}; start a viewing with a reason"
            )));
        }
        let node = p
            .tracker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lane_node(channel)
            .ok_or_else(|| Error::NotFound(format!("no lane is deployed at {channel}")))?;
        p.api.still(&p.nodes(), node, camera - 1, audit_seq).await
    }

    /// Refuses a channel of no lane (unknown, or no appliance serves it as far as the port's
    /// membership says; an unreachable port cannot say).
    fn deployed(&self, p: &super::PortHandle, channel: &str) -> Result<()> {
        if p.def.locate(channel).is_none() {
            return Err(Error::NotFound(format!(
                "port {} has no lane {channel:?}",
                p.def.id
            )));
        }
        let snap = p.latest();
        if snap.reachable
            && !snap.members.is_empty()
            && snap
                .channel(channel)
                .is_some_and(|c| c.state == crate::dto::ChannelState::NotDeployed)
        {
            return Err(Error::Invalid(format!(
                "no lane is deployed at {channel}: nothing would carry the order out"
            )));
        }
        Ok(())
    }

    /// Acknowledges an alarm (replicated, so every console sees it).
    #[allow(clippy::too_many_arguments)]
    pub async fn ack_alarm(
        &self,
        v: &Viewer,
        port: &str,
        channel: &str,
        kind: &str,
        since_ms: i64,
        reason: &str,
        now: Millis,
    ) -> Result<WriteReceipt> {
        let p = self.overridable(v, port)?;
        let node_alarm = channel
            .strip_prefix(&format!("{port}/node-"))
            .is_some_and(|n| n.parse::<u64>().is_ok());
        if p.def.locate(channel).is_none() && !node_alarm {
            return Err(Error::NotFound(format!(
                "port {port} has no lane {channel:?}"
            )));
        }
        if !acknowledgeable(kind) {
            return Err(Error::Invalid(format!("unknown alarm kind {kind:?}")));
        }
        let reason = check_reason(reason)?;
        let w = Write {
            metric: "ack_alarm".into(),
            action: format!("ack_alarm.{kind}"),
            target: channel.to_string(),
            reason,
            change: Change::AckAlarm {
                channel: channel.to_string(),
                kind: kind.to_string(),
                since_ms,
            },
        };
        self.submit(&p, v, w, now).await
    }

    /// The staged face-scan roll-out: face + card on the pilot channels, then on all; or back
    /// to card only on all. Port admins only.
    pub async fn stage_face_scan(
        &self,
        v: &Viewer,
        port: &str,
        stage: &str,
        pilot: &str,
        reason: &str,
        now: Millis,
    ) -> Result<WriteReceipt> {
        let p = self.port(port)?;
        self.require(v, Role::PortAdmin, "roll out face scan")?;
        let stage = Stage::parse(stage)?;
        let (channels, mode, others): (Vec<String>, LaneMode, _) = match stage {
            Stage::Pilot => {
                let mut channels = Vec::new();
                for c in pilot
                    .split([',', ' ', '\n'])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                {
                    let c = if c.starts_with(&format!("{port}/")) {
                        c.to_string()
                    } else {
                        format!("{port}/{c}")
                    };
                    if p.def.locate(&c).is_none() {
                        return Err(Error::Invalid(format!(
                            "{c:?} is not a channel of port {port} (write hall/n, e.g. passenger/1)"
                        )));
                    }
                    if !channels.contains(&c) {
                        channels.push(c);
                    }
                }
                if channels.is_empty() {
                    return Err(Error::Invalid(
                        "name the pilot channels, e.g. passenger/1, passenger/2".into(),
                    ));
                }
                // A pilot: face scan on the pilot channels, card only everywhere else.
                let rest: Vec<String> = p
                    .def
                    .channel_ids()
                    .filter(|c| !channels.contains(c))
                    .collect();
                let others = (!rest.is_empty()).then_some((rest, LaneMode::CardOnly));
                (channels, LaneMode::FaceAndCard, others)
            }
            Stage::All => (p.def.channel_ids().collect(), LaneMode::FaceAndCard, None),
            Stage::Rollback => (p.def.channel_ids().collect(), LaneMode::CardOnly, None),
        };
        let reason = check_reason(reason)?;
        let target = port.to_string();
        let w = Write {
            metric: "set_mode".into(),
            action: format!("set_mode.{}", mode.as_str()),
            target,
            reason,
            change: Change::SetMode {
                channels,
                mode,
                others,
            },
        };
        self.submit(&p, v, w, now).await
    }
}
