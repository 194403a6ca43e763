//! Lanes: the lane page, overrides, alarm acknowledgements and the staged face-scan roll-out.

use crate::auth::Millis;
use crate::dto::{LaneDetail, LaneMode, OverrideAction, Role, Viewer, WriteReceipt};
use crate::error::{Error, Result};
use crate::port_api::Change;

use super::{Console, Write, check_reason};

/// Kinds of alarm a supervisor may acknowledge.
pub const ALARM_KINDS: [&str; 13] = [
    "camera_down",
    "tailgating",
    "multiple_faces",
    "authority_not_answering",
    "replica_stale",
    "gate_fault",
    "gate_failed",
    "gate1_locked",
    "held",
    "lane_offline",
    "replication_lag",
    "order_refused",
    "order_expired",
];

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
        if p.def.locate(channel).is_none() {
            return Err(Error::NotFound(format!(
                "port {port} has no lane {channel:?}"
            )));
        }
        // A channel no appliance serves (as far as the port's membership says; an unreachable
        // port cannot say) has nobody to carry an order out: refused before the log.
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
        if !ALARM_KINDS.contains(&kind) {
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
