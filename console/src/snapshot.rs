//! A port's live state assembled from one poll (pure: no IO, time passed in). The poller feeds
//! [`Tracker::assemble`] what `port_api` gathered; the result is what pages render and SSE
//! clients receive.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::HallConfig;
use crate::dto::{
    AlarmView, ChannelState, ChannelView, HallView, LaneMode, LaneView, MemberView, OrderView,
    PortDefinition, PortSnapshot,
};

/// A port the console runs: from the config file or rolled out from the console.
#[derive(Clone, Debug, PartialEq)]
pub struct PortDef {
    /// Port id.
    pub id: String,
    /// Name.
    pub name: String,
    /// UTC offset, minutes.
    pub utc_offset_minutes: i32,
    /// Halls.
    pub halls: Vec<HallConfig>,
    /// The console's client bundle.
    pub bundle_dir: PathBuf,
    /// Seed nodes.
    pub seeds: BTreeMap<u64, SocketAddr>,
    /// Created from the console.
    pub rolled_out: bool,
    /// Its Grafana dashboard, if configured.
    pub dashboard_url: Option<String>,
}

impl PortDef {
    /// Channel ids of every hall, in order.
    pub fn channel_ids(&self) -> impl Iterator<Item = String> + '_ {
        self.halls
            .iter()
            .flat_map(move |h| (1..=h.channels).map(move |n| format!("{}/{}/{n}", self.id, h.id)))
    }

    /// The hall and number of a channel id of this port, if it names one.
    pub fn locate(&self, channel: &str) -> Option<(&HallConfig, u32)> {
        let mut parts = channel.split('/');
        let (port, hall, n) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || port != self.id {
            return None;
        }
        // Only the canonical number: `01` or `+1` would name a channel no lane reports as.
        if n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = n.parse().ok()?;
        let hall = self.halls.iter().find(|h| h.id == hall)?;
        (1..=hall.channels).contains(&n).then_some((hall, n))
    }

    /// The page's view of the definition.
    pub fn view(&self) -> PortDefinition {
        PortDefinition {
            id: self.id.clone(),
            name: self.name.clone(),
            utc_offset_minutes: self.utc_offset_minutes,
            halls: self
                .halls
                .iter()
                .map(|h| (h.id.clone(), h.name.clone(), h.channels))
                .collect(),
            nodes: self
                .seeds
                .iter()
                .map(|(id, a)| (*id, a.to_string()))
                .collect(),
            rolled_out: self.rolled_out,
        }
    }
}

/// What one node's status said, in the console's words.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    /// Raft state.
    pub state: String,
    /// The leader it knows.
    pub leader: Option<u64>,
    /// Last log index.
    pub last_log_index: Option<u64>,
    /// Applied index.
    pub applied_index: Option<u64>,
    /// Latest shredded cancellation.
    pub shredded_index: u64,
    /// Leader only: matched index per follower.
    pub replication: BTreeMap<u64, Option<u64>>,
    /// Every member's address (from its membership config).
    pub members: BTreeMap<u64, String>,
    /// Voters.
    pub voters: Vec<u64>,
    /// The channel it runs.
    pub channel: Option<String>,
    /// Its audit trail: (records, head hash).
    pub audit: (u64, String),
}

/// One member (or seed) polled.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberPoll {
    /// Node id.
    pub id: u64,
    /// Address.
    pub addr: String,
    /// Its status, or why it did not answer.
    pub status: Result<NodeInfo, String>,
}

/// One lane polled: its view and raw alarms (kind, since ms).
#[derive(Clone, Debug, PartialEq)]
pub struct LanePoll {
    /// The channel.
    pub channel: String,
    /// Live state.
    pub view: LaneView,
    /// Alarms in force: (kind, since ms).
    pub alarms: Vec<(String, i64)>,
}

/// The port's ledger (replicated console state), in the console's words.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LedgerInfo {
    /// Desired modes by channel.
    pub modes: BTreeMap<String, LaneMode>,
    /// Orders by channel, newest last.
    pub orders: BTreeMap<String, Vec<OrderView>>,
    /// Acknowledged alarms: (channel, kind, since ms).
    pub acked: BTreeSet<(String, String, i64)>,
    /// Audit records in the chain.
    pub audit_len: u64,
}

/// Everything one poll gathered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Polled {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Members and seeds.
    pub members: Vec<MemberPoll>,
    /// Lanes that answered.
    pub lanes: Vec<LanePoll>,
    /// The ledger, if a node answered it.
    pub ledger: Option<LedgerInfo>,
    /// Why nothing answered, if nothing did.
    pub error: Option<String>,
}

/// What the console remembers between polls: which node runs which channel, since when things
/// are wrong, and clearance samples for the hourly rate.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    lane_nodes: BTreeMap<String, u64>,
    offline_since: BTreeMap<String, i64>,
    lag_since: BTreeMap<u64, i64>,
    /// Members whose audit trail differed from the others' at the same applied index, since when.
    diverged_since: BTreeMap<u64, i64>,
    /// The latest ledger seen (kept when a poll could not read it).
    pub ledger: LedgerInfo,
    /// Each hall's last hour.
    trends: crate::trend::Trends,
}

impl Tracker {
    /// The node that runs `channel`, as far as the polls and bundles say.
    pub fn lane_node(&self, channel: &str) -> Option<u64> {
        self.lane_nodes.get(channel).copied()
    }

    /// Remembers that `node` runs `channel` (e.g. from a generated bundle).
    pub fn learn_lane(&mut self, channel: &str, node: u64) {
        self.lane_nodes.insert(channel.to_string(), node);
    }

    /// The member ids worth polling next time: every member any node reported, plus seeds.
    pub fn members_to_poll(
        polled: &Polled,
        seeds: &BTreeMap<u64, SocketAddr>,
    ) -> BTreeMap<u64, String> {
        let mut out: BTreeMap<u64, String> =
            seeds.iter().map(|(id, a)| (*id, a.to_string())).collect();
        for m in &polled.members {
            if let Ok(s) = &m.status {
                out.extend(s.members.iter().map(|(id, a)| (*id, a.clone())));
            }
        }
        out
    }

    /// Builds the port's snapshot from a poll.
    pub fn assemble(&mut self, def: &PortDef, polled: &Polled, lag_alarm: u64) -> PortSnapshot {
        let at = polled.at_ms;
        let offset = def.utc_offset_minutes;
        let fmt = |ms: i64| crate::time::local(ms, offset);
        if let Some(l) = &polled.ledger {
            self.ledger = l.clone();
        }
        let reachable: Vec<(&MemberPoll, &NodeInfo)> = polled
            .members
            .iter()
            .filter_map(|m| m.status.as_ref().ok().map(|s| (m, s)))
            .collect();
        // The leader's view, if it answered; else any node's.
        let leader_id = reachable.iter().find_map(|(_, s)| s.leader);
        let leader = reachable
            .iter()
            .find(|(m, _)| Some(m.id) == leader_id)
            .map(|(_, s)| *s);
        let membership: Option<&BTreeMap<u64, String>> = leader
            .map(|s| &s.members)
            .or_else(|| reachable.first().map(|(_, s)| &s.members));
        let voters: BTreeSet<u64> = leader
            .or_else(|| reachable.first().map(|(_, s)| *s))
            .map(|s| s.voters.iter().copied().collect())
            .unwrap_or_default();

        // Which node runs which channel: learnt from answers; forgotten when the node left.
        for (m, s) in &reachable {
            if let Some(c) = &s.channel {
                self.lane_nodes.insert(c.clone(), m.id);
            }
        }
        if let Some(members) = membership.filter(|m| !m.is_empty()) {
            self.lane_nodes.retain(|_, node| members.contains_key(node));
        }

        // Members.
        let last_log = leader.and_then(|s| s.last_log_index);
        let mut members = Vec::new();
        let mut alarms = Vec::new();
        for m in &polled.members {
            let is_member = membership.is_some_and(|ms| ms.contains_key(&m.id));
            let membership_word = match (is_member, voters.contains(&m.id)) {
                (true, true) => "voter",
                (true, false) => "learner",
                (false, _) => "seed",
            };
            let matched = leader.and_then(|l| l.replication.get(&m.id).copied().flatten());
            let lag = match (last_log, matched, Some(m.id) == leader_id) {
                (Some(_), _, true) => Some(0),
                (Some(last), Some(matched), false) => Some(last.saturating_sub(matched)),
                _ => None,
            };
            let channel = match &m.status {
                Ok(s) => s.channel.clone(),
                Err(_) => self
                    .lane_nodes
                    .iter()
                    .find(|(_, n)| **n == m.id)
                    .map(|(c, _)| c.clone()),
            };
            if lag.is_some_and(|l| l > lag_alarm) {
                let since = *self.lag_since.entry(m.id).or_insert(at);
                let channel = channel
                    .clone()
                    .unwrap_or_else(|| format!("{}/node-{}", def.id, m.id));
                alarms.push(self.alarm(&channel, "replication_lag", since, &fmt));
            } else {
                self.lag_since.remove(&m.id);
            }
            members.push(MemberView {
                id: m.id,
                addr: m.addr.clone(),
                membership: membership_word.into(),
                reachable: m.status.is_ok(),
                state: m
                    .status
                    .as_ref()
                    .map(|s| s.state.clone())
                    .unwrap_or_default(),
                applied_index: m.status.as_ref().ok().and_then(|s| s.applied_index),
                shredded_index: m.status.as_ref().map(|s| s.shredded_index).unwrap_or(0),
                lag,
                channel,
                error: m.status.as_ref().err().cloned(),
            });
        }

        // Audit trails: replicas at the same applied index must hold the same trail. The value
        // most of them hold (the leader's on a tie) counts as the port's; a member holding
        // another was changed on its disk. A member that cannot be compared this time keeps its
        // alarm until a comparison finds it agreeing again.
        let mut by_index: BTreeMap<u64, Vec<(u64, &(u64, String))>> = BTreeMap::new();
        for (m, s) in &reachable {
            if let Some(applied) = s.applied_index {
                by_index.entry(applied).or_default().push((m.id, &s.audit));
            }
        }
        for group in by_index.values().filter(|g| g.len() > 1) {
            let count = |v: &(u64, String)| group.iter().filter(|(_, w)| *w == v).count();
            let agreed = group
                .iter()
                .max_by_key(|(id, v)| (count(v), Some(*id) == leader_id))
                .map(|(_, v)| *v);
            for (id, v) in group {
                if Some(*v) == agreed {
                    self.diverged_since.remove(id);
                } else {
                    self.diverged_since.entry(*id).or_insert(at);
                }
            }
        }
        self.diverged_since
            .retain(|id, _| polled.members.iter().any(|m| m.id == *id));
        for (id, since) in self.diverged_since.clone() {
            let channel = self
                .lane_nodes
                .iter()
                .find(|(_, n)| **n == id)
                .map(|(c, _)| c.clone())
                .unwrap_or_else(|| format!("{}/node-{id}", def.id));
            alarms.push(self.alarm(&channel, "audit_divergence", since, &fmt));
        }

        // Channels.
        let lanes: BTreeMap<&str, &LanePoll> = polled
            .lanes
            .iter()
            .map(|l| (l.channel.as_str(), l))
            .collect();
        let mut halls = Vec::new();
        let mut clearances_per_hour = 0u64;
        for hall in &def.halls {
            let mut channels = Vec::new();
            for n in 1..=hall.channels {
                let id = format!("{}/{}/{n}", def.id, hall.id);
                let desired_mode = self.ledger.modes.get(&id).copied();
                let (state, lane) = match lanes.get(id.as_str()) {
                    Some(l) => {
                        self.offline_since.remove(&id);
                        for (kind, since) in &l.alarms {
                            alarms.push(self.alarm(&id, kind, *since, &fmt));
                        }
                        clearances_per_hour += l.view.clearances_last_hour;
                        self.trends.observe(&hall.id, &id, &l.view, at);
                        (ChannelState::Online, Some(l.view.clone()))
                    }
                    None if self.lane_nodes.contains_key(&id) => {
                        let since = *self.offline_since.entry(id.clone()).or_insert(at);
                        alarms.push(self.alarm(&id, "lane_offline", since, &fmt));
                        (ChannelState::Offline, None)
                    }
                    None => (ChannelState::NotDeployed, None),
                };
                channels.push(ChannelView {
                    id,
                    n,
                    state,
                    desired_mode,
                    lane,
                });
            }
            halls.push(HallView {
                id: hall.id.clone(),
                name: hall.name.clone(),
                channels,
                trend: self.trends.points(&hall.id, at),
            });
        }
        alarms.sort_by(|a, b| {
            (b.since_ms, &a.channel, &a.kind).cmp(&(a.since_ms, &b.channel, &b.kind))
        });

        PortSnapshot {
            port: def.id.clone(),
            name: def.name.clone(),
            taken_at_ms: at,
            taken_at: fmt(at),
            reachable: !reachable.is_empty(),
            error: if reachable.is_empty() {
                Some(
                    polled
                        .error
                        .clone()
                        .unwrap_or_else(|| "no node of the port answered".into()),
                )
            } else {
                None
            },
            leader: leader_id,
            last_log_index: last_log,
            members,
            halls,
            alarms,
            clearances_per_hour,
            audit_len: self.ledger.audit_len,
            dashboard_url: def.dashboard_url.clone(),
        }
    }

    fn alarm(
        &self,
        channel: &str,
        kind: &str,
        since_ms: i64,
        fmt: &dyn Fn(i64) -> String,
    ) -> AlarmView {
        AlarmView {
            channel: channel.to_string(),
            kind: kind.to_string(),
            since_ms,
            since: fmt(since_ms),
            acked: self
                .ledger
                .acked
                .contains(&(channel.to_string(), kind.to_string(), since_ms)),
        }
    }
}

/// A snapshot for a port that has not been polled yet.
pub fn waiting(def: &PortDef, at_ms: i64) -> PortSnapshot {
    let mut t = Tracker::default();
    let polled = Polled {
        at_ms,
        error: Some("waiting for the first poll of the port's nodes".into()),
        ..Polled::default()
    };
    t.assemble(def, &polled, u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::LaneMode;

    fn def() -> PortDef {
        PortDef {
            id: "hengqin".into(),
            name: "Hengqin Port".into(),
            utc_offset_minutes: 480,
            halls: vec![
                HallConfig {
                    id: "passenger".into(),
                    name: "Passenger Inspection Hall".into(),
                    channels: 3,
                },
                HallConfig {
                    id: "onboard".into(),
                    name: "On-board Passengers Hall".into(),
                    channels: 1,
                },
            ],
            bundle_dir: PathBuf::from("/b"),
            seeds: BTreeMap::from([(1, "127.0.0.1:7401".parse().expect("addr"))]),
            rolled_out: false,
            dashboard_url: Some("https://grafana.example/d/clearway-port?var-port=hengqin".into()),
        }
    }

    fn node(leader: u64, channel: Option<&str>) -> NodeInfo {
        NodeInfo {
            state: if leader == 1 { "Leader" } else { "Learner" }.into(),
            leader: Some(1),
            last_log_index: Some(2000),
            applied_index: Some(2000),
            shredded_index: 0,
            replication: BTreeMap::from([(1, Some(2000)), (4, Some(2000)), (5, Some(10))]),
            members: BTreeMap::from([
                (1, "127.0.0.1:7401".into()),
                (4, "127.0.0.1:7404".into()),
                (5, "127.0.0.1:7405".into()),
            ]),
            voters: vec![1],
            channel: channel.map(str::to_string),
            audit: (7, "a1b2".into()),
        }
    }

    fn lane(clearances: u64) -> LaneView {
        LaneView {
            pad: "enforce".into(),
            node: 4,
            step: "idle".into(),
            mode: LaneMode::FaceAndCard,
            face_scan: true,
            gates: vec!["closed".into(); 3],
            occupancy: 0,
            held_for: None,
            cameras_up: vec![true, false],
            last_decision: None,
            acked_order: 0,
            clearances,
            clearances_last_hour: clearances,
            staleness_ms: 10,
            direction: String::new(),
            fence: (1, 2000),
        }
    }

    fn render(s: &PortSnapshot) -> String {
        let mut out = format!(
            "reachable={} leader={:?} audit={} clearances/h={}\n",
            s.reachable, s.leader, s.audit_len, s.clearances_per_hour
        );
        for m in &s.members {
            out += &format!(
                "member {} {} reachable={} lag={:?} channel={:?}\n",
                m.id, m.membership, m.reachable, m.lag, m.channel
            );
        }
        for h in &s.halls {
            for c in &h.channels {
                out += &format!(
                    "{} {} {} desired={:?}\n",
                    c.id,
                    c.state.as_str(),
                    c.mode_word(),
                    c.desired_mode.map(|m| m.as_str())
                );
            }
        }
        for a in &s.alarms {
            out += &format!(
                "alarm {} {} since={} acked={}\n",
                a.channel, a.kind, a.since, a.acked
            );
        }
        out
    }

    #[test]
    fn a_poll_becomes_a_grid_with_alarms_and_acknowledgements() {
        let d = def();
        let mut t = Tracker::default();
        let ledger = LedgerInfo {
            modes: BTreeMap::from([("hengqin/passenger/2".into(), LaneMode::CardOnly)]),
            acked: BTreeSet::from([("hengqin/passenger/1".into(), "camera_down".into(), 1_000)]),
            audit_len: 7,
            ..LedgerInfo::default()
        };
        let polled = |at, lanes: Vec<LanePoll>, five: Result<NodeInfo, String>| Polled {
            at_ms: at,
            members: vec![
                MemberPoll {
                    id: 1,
                    addr: "127.0.0.1:7401".into(),
                    status: Ok(node(1, None)),
                },
                MemberPoll {
                    id: 4,
                    addr: "127.0.0.1:7404".into(),
                    status: if lanes.is_empty() {
                        Err("timed out".into())
                    } else {
                        Ok(node(4, Some("hengqin/passenger/1")))
                    },
                },
                MemberPoll {
                    id: 5,
                    addr: "127.0.0.1:7405".into(),
                    status: five,
                },
            ],
            lanes,
            ledger: Some(ledger.clone()),
            error: None,
        };
        let one = |clearances| LanePoll {
            channel: "hengqin/passenger/1".into(),
            view: lane(clearances),
            alarms: vec![("camera_down".into(), 1_000), ("tailgating".into(), 2_000)],
        };
        let first = t.assemble(&d, &polled(10_000, vec![one(5)], Ok(node(5, None))), 1000);
        let later = t.assemble(&d, &polled(20_000, vec![one(9)], Ok(node(5, None))), 1000);
        let offline = t.assemble(&d, &polled(30_000, vec![], Err("timed out".into())), 1000);
        let text = format!(
            "{}---\n{}---\n{}",
            render(&first),
            render(&later),
            render(&offline)
        );
        expect_test::expect![[r#"
            reachable=true leader=Some(1) audit=7 clearances/h=5
            member 1 voter reachable=true lag=Some(0) channel=None
            member 4 learner reachable=true lag=Some(0) channel=Some("hengqin/passenger/1")
            member 5 learner reachable=true lag=Some(1990) channel=None
            hengqin/passenger/1 online face + card desired=None
            hengqin/passenger/2 not_deployed not deployed desired=Some("card_only")
            hengqin/passenger/3 not_deployed not deployed desired=None
            hengqin/onboard/1 not_deployed not deployed desired=None
            alarm hengqin/node-5 replication_lag since=1970-01-01 08:00:10 UTC+08:00 acked=false
            alarm hengqin/passenger/1 tailgating since=1970-01-01 08:00:02 UTC+08:00 acked=false
            alarm hengqin/passenger/1 camera_down since=1970-01-01 08:00:01 UTC+08:00 acked=true
            ---
            reachable=true leader=Some(1) audit=7 clearances/h=9
            member 1 voter reachable=true lag=Some(0) channel=None
            member 4 learner reachable=true lag=Some(0) channel=Some("hengqin/passenger/1")
            member 5 learner reachable=true lag=Some(1990) channel=None
            hengqin/passenger/1 online face + card desired=None
            hengqin/passenger/2 not_deployed not deployed desired=Some("card_only")
            hengqin/passenger/3 not_deployed not deployed desired=None
            hengqin/onboard/1 not_deployed not deployed desired=None
            alarm hengqin/node-5 replication_lag since=1970-01-01 08:00:10 UTC+08:00 acked=false
            alarm hengqin/passenger/1 tailgating since=1970-01-01 08:00:02 UTC+08:00 acked=false
            alarm hengqin/passenger/1 camera_down since=1970-01-01 08:00:01 UTC+08:00 acked=true
            ---
            reachable=true leader=Some(1) audit=7 clearances/h=0
            member 1 voter reachable=true lag=Some(0) channel=None
            member 4 learner reachable=false lag=Some(0) channel=Some("hengqin/passenger/1")
            member 5 learner reachable=false lag=Some(1990) channel=None
            hengqin/passenger/1 offline offline desired=None
            hengqin/passenger/2 not_deployed not deployed desired=Some("card_only")
            hengqin/passenger/3 not_deployed not deployed desired=None
            hengqin/onboard/1 not_deployed not deployed desired=None
            alarm hengqin/passenger/1 lane_offline since=1970-01-01 08:00:30 UTC+08:00 acked=false
            alarm hengqin/node-5 replication_lag since=1970-01-01 08:00:10 UTC+08:00 acked=false
        "#]]
        .assert_eq(&text);
        let (up, down) = offline.lanes_up_down();
        assert_eq!((up, down), (0, 1));
    }

    #[test]
    fn nothing_reachable_says_why() {
        let s = waiting(&def(), 0);
        assert!(!s.reachable);
        assert_eq!(
            s.error.as_deref(),
            Some("waiting for the first poll of the port's nodes")
        );
        assert_eq!(s.halls.iter().map(|h| h.channels.len()).sum::<usize>(), 4);
        assert!(
            s.halls[0]
                .channels
                .iter()
                .all(|c| c.mode_word() == "not deployed")
        );
    }

    #[test]
    fn channel_ids_are_located_only_within_the_port_s_halls() {
        let d = def();
        assert_eq!(
            d.locate("hengqin/passenger/3")
                .map(|(h, n)| (h.id.as_str(), n)),
            Some(("passenger", 3))
        );
        for bad in [
            "hengqin/passenger/4",
            "hengqin/passenger/0",
            "gongbei/passenger/1",
            "hengqin/x/1",
            "hengqin/passenger/1/2",
            "hengqin/passenger/one",
            "",
        ] {
            assert!(d.locate(bad).is_none(), "{bad}");
        }
        assert_eq!(d.channel_ids().count(), 4);
    }

    #[test]
    fn a_replica_whose_audit_trail_differs_raises_an_alarm_until_it_agrees() {
        let d = def();
        let mut t = Tracker::default();
        let member = |id: u64, applied: u64, audit: (u64, &str)| MemberPoll {
            id,
            addr: format!("127.0.0.1:740{id}"),
            status: Ok(NodeInfo {
                applied_index: Some(applied),
                audit: (audit.0, audit.1.into()),
                ..node(id, None)
            }),
        };
        let poll = |at, members| Polled {
            at_ms: at,
            members,
            lanes: vec![],
            ledger: None,
            error: None,
        };
        let kinds = |s: &PortSnapshot| {
            s.alarms
                .iter()
                .filter(|a| a.kind == "audit_divergence")
                .map(|a| format!("{} since {}", a.channel, a.since_ms))
                .collect::<Vec<_>>()
        };
        let cases: &[(i64, Vec<MemberPoll>, Vec<&str>)] = &[
            // All agree.
            (
                1_000,
                vec![
                    member(1, 50, (7, "aa")),
                    member(4, 50, (7, "aa")),
                    member(5, 50, (7, "aa")),
                ],
                vec![],
            ),
            // Node 5's trail was truncated and re-hashed on its disk.
            (
                2_000,
                vec![
                    member(1, 60, (8, "bb")),
                    member(4, 60, (8, "bb")),
                    member(5, 60, (6, "cc")),
                ],
                vec!["hengqin/node-5 since 2000"],
            ),
            // Node 5 cannot be compared (another applied index): the alarm stays.
            (
                3_000,
                vec![
                    member(1, 70, (9, "dd")),
                    member(4, 70, (9, "dd")),
                    member(5, 65, (6, "cc")),
                ],
                vec!["hengqin/node-5 since 2000"],
            ),
            // Two against the leader: the majority's trail is the port's.
            (
                4_000,
                vec![
                    member(1, 80, (9, "ee")),
                    member(4, 80, (9, "ff")),
                    member(5, 80, (9, "ff")),
                ],
                vec!["hengqin/node-1 since 4000"],
            ),
            // Agreement again clears both.
            (
                5_000,
                vec![
                    member(1, 90, (10, "gg")),
                    member(4, 90, (10, "gg")),
                    member(5, 90, (10, "gg")),
                ],
                vec![],
            ),
        ];
        for (at, members, want) in cases {
            let snapshot = t.assemble(&d, &poll(*at, members.clone()), 1_000_000);
            assert_eq!(kinds(&snapshot), *want, "poll at {at}");
        }
    }
}
