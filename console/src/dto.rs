//! Every type that crosses a boundary of the console: node ↔ console (the server-only
//! `port_api` maps the cluster's types into these) and server ↔ browser (server function
//! arguments and answers, the server-sent events). Plain `serde` data, wasm-safe: no clocks, no
//! node types, times as milliseconds since the Unix epoch plus a pre-formatted local string.
//!
//! **Invariant:** nothing here carries biometric data; document numbers appear only in the service
//! desk's lookup answer, which is shown to the officer and never logged.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Most bytes a request body may have (forms and server function calls); more is answered 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Most characters of a reason.
pub const MAX_REASON_CHARS: usize = 500;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "clearway_session";

/// Name of the form field (or `x-csrf-token` header) carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

// ------------------------------------------------------------------------------------ people

/// What a console user may do.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Monitors and overrides the lanes of the ports named in their account.
    Supervisor,
    /// Service-desk officer: registration lookup, guardian consent, cancellation.
    ServiceDesk,
    /// Rolls out ports and nodes, manages users; monitors every port.
    PortAdmin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Supervisor, Role::ServiceDesk, Role::PortAdmin];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Supervisor => "supervisor",
            Role::ServiceDesk => "service_desk",
            Role::PortAdmin => "port_admin",
        }
    }

    /// Reads a role; dashes and underscores both work (`port-admin`, `port_admin`).
    pub fn parse(s: &str) -> Result<Role, String> {
        match s.trim().replace('-', "_").as_str() {
            "supervisor" => Ok(Role::Supervisor),
            "service_desk" => Ok(Role::ServiceDesk),
            "port_admin" => Ok(Role::PortAdmin),
            other => Err(format!(
                "unknown role {other:?}: expected supervisor, service-desk or port-admin"
            )),
        }
    }

    /// Words for a page.
    pub fn label(self) -> &'static str {
        match self {
            Role::Supervisor => "Supervisor",
            Role::ServiceDesk => "Service-desk officer",
            Role::PortAdmin => "Port administrator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The signed-in user as pages see it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Viewer {
    /// User name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Ports a supervisor may act on (empty for other roles).
    pub ports: Vec<String>,
    /// The session's CSRF token: every form carries it back.
    pub csrf: String,
    /// An administrator set the password: the user must choose a new one before anything else.
    #[serde(default)]
    pub must_change: bool,
}

impl Viewer {
    /// Whether this user may watch the port's lanes.
    pub fn may_monitor(&self, port: &str) -> bool {
        match self.role {
            Role::PortAdmin => true,
            Role::Supervisor => self.ports.iter().any(|p| p == port),
            Role::ServiceDesk => false,
        }
    }

    /// Whether this user may override lanes and acknowledge alarms at the port.
    pub fn may_override(&self, port: &str) -> bool {
        self.role == Role::Supervisor && self.ports.iter().any(|p| p == port)
    }
}

/// A console account, as the users page lists it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct UserView {
    /// User name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Ports (supervisors).
    pub ports: Vec<String>,
    /// Locked out until (local time), if locked.
    pub locked_until: Option<String>,
    /// Failed logins since the last success.
    pub failed_logins: u32,
    /// Disabled by an administrator.
    #[serde(default)]
    pub disabled: bool,
    /// Must change the password at the next sign-in.
    #[serde(default)]
    pub must_change: bool,
}

/// One live session of a user (the account page and the users page).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct SessionView {
    /// What it is revoked by (a hash of the session's key; not the token).
    pub id: String,
    /// Signed in (local time).
    pub signed_in: String,
    /// Last request (local time, to within half a minute).
    pub last_seen: String,
    /// The client address it signed in from.
    pub client: String,
    /// The session this page was asked from.
    pub current: bool,
}

/// What an administrator can do to an account (the users page's form).
pub const USER_ACTIONS: [&str; 6] = [
    "unlock",
    "disable",
    "enable",
    "reset_password",
    "revoke_sessions",
    "delete",
];

/// What an administrator's account action answered.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ManagedUser {
    /// The account.
    pub name: String,
    /// The action taken.
    pub action: String,
    /// A reset's generated password, shown once.
    pub generated_password: Option<String>,
}

/// One record of the console's own audit log (its local administration).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ConsoleAuditRecord {
    /// Sequence number (0-based).
    pub seq: u64,
    /// When (console local time).
    pub at: String,
    /// Who.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// What (`user.create`, `port.create`, `bundle.issue`, …).
    pub action: String,
    /// On what.
    pub target: String,
    /// Why.
    pub reason: String,
    /// Hash of the previous record (hex).
    pub prev: String,
    /// This record's hash (hex).
    pub hash: String,
}

/// The console's audit log, its hash chain verified.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ConsoleAuditView {
    /// The newest records (up to the console's cap), oldest first.
    pub records: Vec<ConsoleAuditRecord>,
    /// Records in the log.
    pub total: u64,
    /// The first break, if the chain does not verify: (seq, why).
    pub break_at: Option<(u64, String)>,
}

/// A user just created from the console.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct CreatedUser {
    /// User name.
    pub name: String,
    /// The generated password, shown once (None when the admin chose one).
    pub generated_password: Option<String>,
}

// ------------------------------------------------------------------------------------ errors

/// An error a server function answers, with the HTTP status it was sent with.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status (401, 403, 404, 413, 422, 502, 500).
    pub status: u16,
    /// Stable code: `unauthenticated`, `session_expired`, `csrf`, `forbidden`, `not_found`,
    /// `invalid`, `reason_required`, `port_unreachable`, `refused`, `internal`.
    pub code: String,
    /// What went wrong, in words a supervisor can act on.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl leptos::server_fn::error::FromServerFnError for ApiError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match value {
            E::Request(m) | E::Response(m) => {
                ApiError::new(0, "network", format!("the console did not answer: {m}"))
            }
            E::Args(m) | E::Deserialization(m) => {
                ApiError::new(422, "invalid", format!("the form could not be read: {m}"))
            }
            other => ApiError::new(500, "internal", other.to_string()),
        }
    }
}

// ------------------------------------------------------------------------------------ lanes

/// A lane's mode (mirror of the cluster's `LaneMode`).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LaneMode {
    /// Face scan and card scan.
    FaceAndCard,
    /// Card scan only.
    CardOnly,
    /// Closed to travellers.
    Closed,
}

impl LaneMode {
    /// Every mode.
    pub const ALL: [LaneMode; 3] = [LaneMode::FaceAndCard, LaneMode::CardOnly, LaneMode::Closed];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LaneMode::FaceAndCard => "face_and_card",
            LaneMode::CardOnly => "card_only",
            LaneMode::Closed => "closed",
        }
    }

    /// Words for a page.
    pub fn label(self) -> &'static str {
        match self {
            LaneMode::FaceAndCard => "face + card",
            LaneMode::CardOnly => "card only",
            LaneMode::Closed => "closed",
        }
    }

    /// Reads the snake_case name.
    pub fn parse(s: &str) -> Result<LaneMode, String> {
        LaneMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown lane mode {s:?}"))
    }
}

/// One of a channel's three gates.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Entrance.
    One,
    /// Inner gate.
    Two,
    /// Exit.
    Three,
}

impl Gate {
    /// The three gates in order.
    pub const ALL: [Gate; 3] = [Gate::One, Gate::Two, Gate::Three];

    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            Gate::One => 1,
            Gate::Two => 2,
            Gate::Three => 3,
        }
    }
}

/// What an override does to a gate.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum GateAction {
    /// Open it.
    Open,
    /// Close it.
    Close,
    /// Lock it closed.
    Lock,
    /// Release a lock.
    Unlock,
}

impl GateAction {
    /// Every action.
    pub const ALL: [GateAction; 4] = [
        GateAction::Open,
        GateAction::Close,
        GateAction::Lock,
        GateAction::Unlock,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            GateAction::Open => "open",
            GateAction::Close => "close",
            GateAction::Lock => "lock",
            GateAction::Unlock => "unlock",
        }
    }
}

/// A supervisor's override of one lane (mirror of the cluster's `OverrideAction`).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OverrideAction {
    /// Drive a gate.
    Gate {
        /// Which.
        gate: Gate,
        /// What to do.
        action: GateAction,
    },
    /// Switch the lane's mode.
    Mode {
        /// The new mode.
        mode: LaneMode,
    },
    /// Send the traveller in the channel to an officer.
    SendToOfficer,
    /// Release a held channel.
    Release,
}

/// How much harm an override can do, for the lane page's grouping and confirmations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideRisk {
    /// Stops or holds (close, lock, send to an officer): safe at any time.
    Stop,
    /// Undoes a stop (unlock, release): the procedure takes over again.
    Restore,
    /// Opens a gate or changes the lane's mode: asks for a confirmation.
    Opens,
}

impl OverrideRisk {
    /// Every group, in the page's order.
    pub const ALL: [OverrideRisk; 3] = [
        OverrideRisk::Stop,
        OverrideRisk::Restore,
        OverrideRisk::Opens,
    ];

    /// Stable name (`data-test="overrides-<name>"`).
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideRisk::Stop => "stop",
            OverrideRisk::Restore => "restore",
            OverrideRisk::Opens => "opens",
        }
    }
}

impl OverrideAction {
    /// Its risk group.
    pub fn risk(&self) -> OverrideRisk {
        match self {
            OverrideAction::Gate {
                action: GateAction::Open,
                ..
            }
            | OverrideAction::Mode { .. } => OverrideRisk::Opens,
            OverrideAction::Gate {
                action: GateAction::Unlock,
                ..
            }
            | OverrideAction::Release => OverrideRisk::Restore,
            OverrideAction::Gate { .. } | OverrideAction::SendToOfficer => OverrideRisk::Stop,
        }
    }

    /// What the confirmation asks before a risky override is sent.
    pub fn confirmation(&self, channel: &str) -> String {
        let label = self.label();
        let mut words = label.chars();
        let first = words.next().map(|c| c.to_uppercase().collect::<String>());
        format!(
            "{}{} at {channel}? This is recorded in the audit trail with your reason.",
            first.unwrap_or_default(),
            words.as_str()
        )
    }

    /// Every override a lane page offers, in page order.
    pub fn all() -> Vec<OverrideAction> {
        let mut all = Vec::new();
        for gate in Gate::ALL {
            for action in GateAction::ALL {
                all.push(OverrideAction::Gate { gate, action });
            }
        }
        for mode in LaneMode::ALL {
            all.push(OverrideAction::Mode { mode });
        }
        all.push(OverrideAction::SendToOfficer);
        all.push(OverrideAction::Release);
        all
    }

    /// The form code: `gate1_open`, `mode_card_only`, `send_to_officer`, `release`.
    pub fn code(self) -> String {
        match self {
            OverrideAction::Gate { gate, action } => {
                format!("gate{}_{}", gate.number(), action.as_str())
            }
            OverrideAction::Mode { mode } => format!("mode_{}", mode.as_str()),
            OverrideAction::SendToOfficer => "send_to_officer".into(),
            OverrideAction::Release => "release".into(),
        }
    }

    /// Reads a form code back; unknown codes are an error naming the code.
    pub fn parse(code: &str) -> Result<OverrideAction, String> {
        OverrideAction::all()
            .into_iter()
            .find(|a| a.code() == code)
            .ok_or_else(|| format!("unknown override {code:?}"))
    }

    /// Words for a page.
    pub fn label(self) -> String {
        match self {
            OverrideAction::Gate { gate, action } => {
                format!("{} gate {}", action.as_str(), gate.number())
            }
            OverrideAction::Mode { mode } => format!("switch to {}", mode.label()),
            OverrideAction::SendToOfficer => "send traveller to an officer".into(),
            OverrideAction::Release => "release the channel".into(),
        }
    }
}

/// The last decision a lane took.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct DecisionView {
    /// Outcome word (e.g. `cleared`, `no_match`, `officer`).
    pub outcome: String,
    /// Camera frame to decision, ms: only for decisions made on a frame (a face at gate 1).
    pub latency_ms: Option<f64>,
    /// For a clearance: gate 1's admission to the clearance, ms.
    pub passage_ms: Option<f64>,
    /// When (local time of the port).
    pub at: String,
}

impl DecisionView {
    /// The decision in words, with what was measured for it: the time from the camera frame
    /// for a decision made on one, the passage time for a clearance.
    pub fn summary(&self) -> String {
        let mut s = self.outcome.clone();
        if let Some(ms) = self.latency_ms {
            s.push_str(&format!(", {ms:.0} ms after the camera frame"));
        }
        if let Some(ms) = self.passage_ms {
            s.push_str(&format!(", passage {:.1} s", ms / 1000.0));
        }
        s
    }
}

/// The message id (`console/locales/*/console.ftl`) of a code: `prefix-code`, `_` as `-`.
pub fn code_id(prefix: &str, code: &str) -> String {
    format!("{prefix}-{}", code.replace('_', "-"))
}

/// Kinds of alarm the console shows.
pub const ALARM_CODES: [&str; 17] = [
    "camera_down",
    "tailgating",
    "multiple_faces",
    "authority_not_answering",
    "replica_stale",
    "gate_fault",
    "gate_failed",
    "gate1_locked",
    "foreign_fence",
    "records_unwritable",
    "presentation_attack",
    "held",
    "lane_offline",
    "replication_lag",
    "order_refused",
    "order_expired",
    "audit_divergence",
];
/// The procedure's steps as lanes report them.
pub const STEP_CODES: [&str; 8] = [
    "idle",
    "refused",
    "declaration",
    "registering",
    "gate1_open",
    "inspection",
    "exit",
    "officer",
];
/// A channel's mode words ([`ChannelView::mode_code`]).
pub const MODE_CODES: [&str; 5] = [
    "face_and_card",
    "card_only",
    "closed",
    "offline",
    "not_deployed",
];

/// Presentation-attack detection modes a lane reports ([`LaneView::pad`]).
pub const PAD_CODES: [&str; 3] = ["enforce", "observe", "off"];

/// The states a lane reports for a gate.
pub const GATE_STATES: [&str; 5] = ["closed", "moving", "open", "locked", "fault"];

/// Every message id the pages build from a code (for the translations' completeness test).
pub fn message_ids_from_codes() -> Vec<String> {
    let owned = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let groups: [(&str, Vec<String>); 10] = [
        ("alarm", owned(&ALARM_CODES)),
        ("lane-pad", owned(&PAD_CODES)),
        ("step", owned(&STEP_CODES)),
        ("mode", owned(&MODE_CODES)),
        (
            "severity",
            Severity::ALL
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
        ),
        (
            "role",
            Role::ALL.iter().map(|r| r.as_str().to_string()).collect(),
        ),
        (
            "risk",
            OverrideRisk::ALL
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
        ),
        ("desk-task", owned(&["find", "consent", "cancel"])),
        (
            "override",
            OverrideAction::all().iter().map(|a| a.code()).collect(),
        ),
        ("gate", owned(&GATE_STATES)),
    ];
    groups
        .iter()
        .flat_map(|(prefix, codes)| codes.iter().map(move |c| code_id(prefix, c)))
        .collect()
}

/// How urgent a channel is, for the hall grid: colour and words (never colour alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Offline, a camera down or a gate fault: red.
    Fault,
    /// Held for an officer: amber.
    Held,
    /// A passage in progress: blue.
    Passage,
    /// Waiting for a traveller: neutral.
    Idle,
    /// No lane deployed: faint and small.
    NotDeployed,
}

impl Severity {
    /// Every severity, most urgent first (the legend's order).
    pub const ALL: [Severity; 5] = [
        Severity::Fault,
        Severity::Held,
        Severity::Passage,
        Severity::Idle,
        Severity::NotDeployed,
    ];

    /// Stable snake_case name (`data-severity`, CSS).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fault => "fault",
            Severity::Held => "held",
            Severity::Passage => "passage",
            Severity::Idle => "idle",
            Severity::NotDeployed => "not_deployed",
        }
    }
}

/// An alarm: raised by a lane, or by the console (`lane_offline`, `replication_lag`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct AlarmView {
    /// The channel, e.g. `hengqin/passenger/12`.
    pub channel: String,
    /// Kind: `camera_down`, `tailgating`, `multiple_faces`, `authority_not_answering`,
    /// `replica_stale`, `gate_fault`, `held`, `lane_offline`, `replication_lag`,
    /// `audit_divergence` (a replica's audit trail was changed on its disk).
    pub kind: String,
    /// Since when, ms since the epoch (identifies the alarm with channel and kind).
    pub since_ms: i64,
    /// Since when, local time of the port.
    pub since: String,
    /// Acknowledged by a supervisor (replicated through the port's log).
    pub acked: bool,
}

/// One open alarm in the queue at the top of every page.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct QueuedAlarm {
    /// Port id.
    pub port: String,
    /// Port name.
    pub port_name: String,
    /// The alarm.
    pub alarm: AlarmView,
    /// Whether the viewer may acknowledge it (and release a hold).
    pub may_override: bool,
}

/// The open (unacknowledged) alarms of every port `v` may monitor, newest first.
pub fn alarm_queue<'a>(
    v: &Viewer,
    ports: impl IntoIterator<Item = &'a PortSnapshot>,
) -> Vec<QueuedAlarm> {
    let mut out: Vec<QueuedAlarm> = ports
        .into_iter()
        .filter(|s| v.may_monitor(&s.port))
        .flat_map(|s| {
            let may_override = v.may_override(&s.port);
            s.alarms
                .iter()
                .filter(|a| !a.acked)
                .map(move |a| QueuedAlarm {
                    port: s.port.clone(),
                    port_name: s.name.clone(),
                    alarm: a.clone(),
                    may_override,
                })
        })
        .collect();
    out.sort_by(|a, b| {
        b.alarm
            .since_ms
            .cmp(&a.alarm.since_ms)
            .then_with(|| a.alarm.channel.cmp(&b.alarm.channel))
            .then_with(|| a.alarm.kind.cmp(&b.alarm.kind))
    });
    out
}

/// A lane's live state, as its node reports it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct LaneView {
    /// The node running the lane.
    pub node: u64,
    /// The procedure's current step.
    pub step: String,
    /// The mode the lane runs in.
    pub mode: LaneMode,
    /// Whether face scan works right now (mode and replica freshness).
    pub face_scan: bool,
    /// Gates 1..3: `closed`, `moving`, `open`, `locked`, `fault`.
    pub gates: Vec<String>,
    /// People between the gates.
    pub occupancy: u32,
    /// Why the channel is held for an officer, if it is.
    pub held_for: Option<String>,
    /// Cameras at gate 1 and gate 2.
    pub cameras_up: Vec<bool>,
    /// The last decision.
    pub last_decision: Option<DecisionView>,
    /// Log index of the newest override the lane has applied.
    pub acked_order: u64,
    /// Clearances since the lane started.
    pub clearances: u64,
    /// Clearances in the last hour, as the lane counts them.
    pub clearances_last_hour: u64,
    /// Time since the leader last reached the lane's replica, ms.
    pub staleness_ms: u64,
    /// The lane's fencing token (term, applied index).
    pub fence: (u64, u64),
    /// Which way the channel clears travellers (`Macao → Hengqin`; empty: not said).
    #[serde(default)]
    pub direction: String,
    /// Presentation-attack detection: `enforce`, `observe` (verdicts counted, nothing refused:
    /// the demo's photo scenes) or `off`.
    #[serde(default)]
    pub pad: String,
}

/// Whether a channel runs.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// Its lane node answers.
    Online,
    /// A node is known to run it, but does not answer.
    Offline,
    /// No node runs it yet.
    NotDeployed,
}

impl ChannelState {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Online => "online",
            ChannelState::Offline => "offline",
            ChannelState::NotDeployed => "not_deployed",
        }
    }
}

/// One channel of a hall.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ChannelView {
    /// Channel id `<port>/<hall>/<n>`.
    pub id: String,
    /// Its number in the hall (1-based).
    pub n: u32,
    /// Online, offline or not deployed.
    pub state: ChannelState,
    /// The mode the port's log asks of it (the staged face-scan roll-out), if set.
    pub desired_mode: Option<LaneMode>,
    /// Live state, when online.
    pub lane: Option<LaneView>,
}

impl ChannelView {
    /// How urgent the channel is: a fault (offline, a camera down, a gate reporting a fault)
    /// before a hold, a hold before a passage.
    pub fn severity(&self) -> Severity {
        let Some(l) = &self.lane else {
            return match self.state {
                ChannelState::NotDeployed => Severity::NotDeployed,
                ChannelState::Online | ChannelState::Offline => Severity::Fault,
            };
        };
        if self.state == ChannelState::Offline
            || l.cameras_up.iter().any(|up| !up)
            || l.gates.iter().any(|g| g == "fault")
        {
            Severity::Fault
        } else if l.held_for.is_some() || l.step == "officer" {
            Severity::Held
        } else if matches!(l.step.as_str(), "idle" | "refused") {
            Severity::Idle
        } else {
            Severity::Passage
        }
    }

    /// The mode a grid cell shows, as a code ([`MODE_CODES`]).
    pub fn mode_code(&self) -> &'static str {
        match (&self.lane, self.state) {
            (Some(l), _) => l.mode.as_str(),
            (None, ChannelState::NotDeployed) => "not_deployed",
            (None, _) => "offline",
        }
    }

    /// The mode word a grid cell shows: the lane's mode, or `offline` / `not deployed`.
    pub fn mode_word(&self) -> &'static str {
        match (&self.lane, self.state) {
            (Some(l), _) => l.mode.label(),
            (None, ChannelState::NotDeployed) => "not deployed",
            (None, _) => "offline",
        }
    }
}

/// A hall and its channels.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct HallView {
    /// Hall id, e.g. `passenger`.
    pub id: String,
    /// Name, e.g. "Passenger Inspection Hall".
    pub name: String,
    /// Channels 1..=n.
    pub channels: Vec<ChannelView>,
    /// The last hour, minute by minute: clearances and decision latency p95 (oldest first).
    pub trend: Vec<crate::trend::TrendPoint>,
}

/// One cluster member as the console sees it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct MemberView {
    /// Node id.
    pub id: u64,
    /// QUIC address.
    pub addr: String,
    /// `voter`, `learner`, or `seed` (named in the console's config, not (yet) a member).
    pub membership: String,
    /// Whether it answered the last poll.
    pub reachable: bool,
    /// Raft state (`Leader`, `Follower`, `Learner`, …) when reachable.
    pub state: String,
    /// Index applied to its replica.
    pub applied_index: Option<u64>,
    /// Index of the latest cancellation shredded on it.
    pub shredded_index: u64,
    /// The leader's last log index minus this node's matched index.
    pub lag: Option<u64>,
    /// The channel it runs, if a lane node.
    pub channel: Option<String>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// A port's live state: what the poller broadcasts and the pages render.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct PortSnapshot {
    /// Port id, e.g. `hengqin`.
    pub port: String,
    /// Name, e.g. "Hengqin Port".
    pub name: String,
    /// When taken, ms since the epoch.
    pub taken_at_ms: i64,
    /// When taken, local time of the port.
    pub taken_at: String,
    /// Whether any node answered.
    pub reachable: bool,
    /// Why the port could not be reached, if it could not.
    pub error: Option<String>,
    /// The leader's id.
    pub leader: Option<u64>,
    /// The leader's last log index.
    pub last_log_index: Option<u64>,
    /// Members (and seeds not yet members).
    pub members: Vec<MemberView>,
    /// Halls with their channels.
    pub halls: Vec<HallView>,
    /// Open alarms, newest first.
    pub alarms: Vec<AlarmView>,
    /// Clearances over the last hour (all lanes).
    pub clearances_per_hour: u64,
    /// Audit records in the port's chain.
    pub audit_len: u64,
    /// The port's Grafana dashboard, if the console's config names it.
    pub dashboard_url: Option<String>,
}

impl PortSnapshot {
    /// The dashboard narrowed to one hall (`var-hall`), if there is a dashboard.
    pub fn hall_dashboard(&self, hall: &str) -> Option<String> {
        self.dashboard_url.as_ref().map(|u| {
            let sep = if u.contains('?') { '&' } else { '?' };
            format!("{u}{sep}var-hall={hall}")
        })
    }

    /// The channel with this id.
    pub fn channel(&self, id: &str) -> Option<&ChannelView> {
        self.halls
            .iter()
            .flat_map(|h| h.channels.iter())
            .find(|c| c.id == id)
    }

    /// Lanes online and offline (not counting channels not deployed).
    pub fn lanes_up_down(&self) -> (usize, usize) {
        let all = self.halls.iter().flat_map(|h| h.channels.iter());
        all.fold((0, 0), |(up, down), c| match c.state {
            ChannelState::Online => (up + 1, down),
            ChannelState::Offline => (up, down + 1),
            ChannelState::NotDeployed => (up, down),
        })
    }

    /// Alarms not yet acknowledged.
    pub fn open_alarms(&self) -> usize {
        self.alarms.iter().filter(|a| !a.acked).count()
    }
}

/// One port on the overview page.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct PortSummary {
    /// Port id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Halls: (id, name, channels).
    pub halls: Vec<(String, String, u32)>,
    /// Lanes answering.
    pub lanes_up: usize,
    /// Lanes known but not answering.
    pub lanes_down: usize,
    /// Clearances over the last hour.
    pub clearances_per_hour: u64,
    /// Alarms not acknowledged.
    pub alarms: usize,
    /// Whether any node answered.
    pub reachable: bool,
    /// Why not.
    pub error: Option<String>,
}

impl From<&PortSnapshot> for PortSummary {
    fn from(s: &PortSnapshot) -> PortSummary {
        let (lanes_up, lanes_down) = s.lanes_up_down();
        PortSummary {
            id: s.port.clone(),
            name: s.name.clone(),
            halls: s
                .halls
                .iter()
                .map(|h| (h.id.clone(), h.name.clone(), h.channels.len() as u32))
                .collect(),
            lanes_up,
            lanes_down,
            clearances_per_hour: s.clearances_per_hour,
            alarms: s.open_alarms(),
            reachable: s.reachable,
            error: s.error.clone(),
        }
    }
}

// ------------------------------------------------------------------------------------ overrides

/// An override as recorded in the port's log.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct OrderView {
    /// Log index of the entry that carried it.
    pub index: u64,
    /// Raft term of that entry (with the index, the fencing token).
    pub term: u64,
    /// What it does.
    pub action: OverrideAction,
    /// The audit record written with it.
    pub audit_seq: u64,
}

/// An order with what its audit record says: who, when, why.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RecordedOrder {
    /// The order.
    pub order: OrderView,
    /// Who gave it (`wong@console`).
    pub actor: String,
    /// In which role.
    pub role: String,
    /// When, in the port's local time.
    pub at: String,
    /// Why.
    pub reason: String,
}

/// A lane's page: the channel, its orders and who may act on it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct LaneDetail {
    /// Port id.
    pub port: String,
    /// Port name.
    pub port_name: String,
    /// Hall id.
    pub hall: String,
    /// Hall name.
    pub hall_name: String,
    /// The channel.
    pub channel: ChannelView,
    /// Overrides recorded for it, newest last.
    pub orders: Vec<OrderView>,
    /// Its open alarms.
    pub alarms: Vec<AlarmView>,
    /// Whether the viewer may override it.
    pub may_override: bool,
}

/// What a replicated console write answered.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct WriteReceipt {
    /// Log index of the entry.
    pub index: u64,
    /// Sequence number of its audit record.
    pub audit_seq: u64,
    /// What happened, in words.
    pub summary: String,
}

// ------------------------------------------------------------------------------------ desk

/// The kinds of travel document (mirror of the gallery's `DocumentKind`).
pub const DOCUMENT_KINDS: [(&str, &str); 3] = [
    (
        "mainland_travel_permit_hk_macao",
        "Mainland Travel Permit for Hong Kong and Macao Residents",
    ),
    (
        "permit_hk_macao",
        "Permit for Travelling to and from Hong Kong and Macao",
    ),
    (
        "mainland_travel_permit_taiwan",
        "Mainland Travel Permit for Taiwan Residents",
    ),
];

/// Resident categories (mirror of the gallery's `Category`).
pub const CATEGORIES: [(&str, &str); 4] = [
    ("macao_resident", "Macao resident"),
    (
        "hong_kong_permanent_resident",
        "Hong Kong permanent resident",
    ),
    ("mainland_resident", "Mainland resident"),
    ("taiwan_resident", "Taiwan resident"),
];

/// A registration found at the service desk.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RegistrationView {
    /// Person id, e.g. `P00000001`.
    pub person: String,
    /// Name as on the document.
    pub name: String,
    /// Date of birth (YYYY-MM-DD).
    pub date_of_birth: String,
    /// Category (snake_case).
    pub category: String,
    /// Document kind (snake_case).
    pub document_kind: String,
    /// Document valid until (YYYY-MM-DD).
    pub document_valid_until: String,
    /// `active` or `cancelled`.
    pub status: String,
    /// Registered with Macao's automated clearance service.
    pub macao_registered: bool,
    /// Registered with the Mainland's automated clearance service.
    pub mainland_registered: bool,
    /// Guardian's consent, if the person registered as a minor: (guardian, proof, location).
    pub guardian_consent: Option<(String, String, String)>,
}

/// One replica's progress on a write (cancellation confirmation, catch-up).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ReplicaProgress {
    /// Node id.
    pub node: u64,
    /// Whether it answered.
    pub reachable: bool,
    /// Its applied index.
    pub applied_index: Option<u64>,
    /// Its shredded index.
    pub shredded_index: u64,
    /// Applied the write.
    pub applied: bool,
    /// Shredded the cancelled person's data (cancellations only).
    pub shredded: bool,
}

/// A cancellation's confirmation across the port.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct CancelProgress {
    /// The write's log index.
    pub index: u64,
    /// Every member.
    pub replicas: Vec<ReplicaProgress>,
    /// Every member applied and shredded it.
    pub complete: bool,
}

/// A service location of DOMAIN.md (a constant the desk page renders; never sent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceLocation {
    /// Name and place.
    pub name: &'static str,
    /// Telephone.
    pub phone: &'static str,
    /// Office hours.
    pub hours: &'static str,
}

/// The service locations for minors' registration and cancellation (DOMAIN.md).
pub const SERVICE_LOCATIONS: [ServiceLocation; 10] = [
    ServiceLocation {
        name: "Checkpoint of Macao Port Zone of Hengqin Port (Visa Room, Arrival Hall)",
        phone: "(853) 8805 4322",
        hours: "10:00–19:00 daily, no lunch break",
    },
    ServiceLocation {
        name: "Qingmao Checkpoint (Departure Office, 3/F)",
        phone: "(853) 8591 0321",
        hours: "10:00–19:00 daily, no lunch break",
    },
    ServiceLocation {
        name: "Hong Kong–Zhuhai–Macao Bridge Checkpoint (HK–Macao Arrival Hall, ground floor; Departure Office, HK–Macao Departure Hall)",
        phone: "(853) 8805 0323",
        hours: "10:00–19:00 daily, no lunch break",
    },
    ServiceLocation {
        name: "Outer Harbour Ferry Terminal Checkpoint (Arrival Hall)",
        phone: "(853) 8798 5327",
        hours: "10:00–19:00 daily, no lunch break",
    },
    ServiceLocation {
        name: "Taipa Ferry Terminal Checkpoint (Arrival Hall)",
        phone: "(853) 2885 0355",
        hours: "10:00–19:00 daily, no lunch break",
    },
    ServiceLocation {
        name: "Airport Checkpoint (Arrival Hall)",
        phone: "(853) 8898 1317",
        hours: "10:00–19:00 daily, no lunch break",
    },
    ServiceLocation {
        name: "Border Gate Checkpoint (Departure Office)",
        phone: "(853) 8980 0321",
        hours: "10:00–19:00 daily, no lunch break",
    },
    ServiceLocation {
        name: "Public Security Police Force – Immigration Building",
        phone: "(853) 2872 5488",
        hours: "09:00–17:00; closed Sat, Sun and public holidays; online booking available",
    },
    ServiceLocation {
        name: "Macao Government Services Centre – PSP Service Counter",
        phone: "(853) 2845 1515",
        hours: "09:00–18:00; closed Sat, Sun and public holidays; online booking available",
    },
    ServiceLocation {
        name: "Macao Government Services Centre in Islands – PSP Service Counter",
        phone: "(853) 2842 1212",
        hours: "09:00–18:00; closed Sat, Sun and public holidays; online booking available",
    },
];

// ------------------------------------------------------------------------------------ rollout

/// A port as the rollout page lists it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct PortDefinition {
    /// Port id.
    pub id: String,
    /// Name.
    pub name: String,
    /// UTC offset of the port's travel day, minutes.
    pub utc_offset_minutes: i32,
    /// Halls: (id, name, channels).
    pub halls: Vec<(String, String, u32)>,
    /// Seed nodes: (id, QUIC address).
    pub nodes: Vec<(u64, String)>,
    /// Created from the console (false: from the config file).
    pub rolled_out: bool,
}

/// A node bundle generated for a new appliance.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct BundleView {
    /// Node id.
    pub node: u64,
    /// Directory on the console's machine holding `node.toml` and `tls/`.
    pub dir: String,
    /// Files written (relative to `dir`).
    pub files: Vec<String>,
}

/// The rollout page's view of one port.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RolloutView {
    /// The port.
    pub port: PortDefinition,
    /// Bundles generated so far.
    pub bundles: Vec<BundleView>,
    /// Live cluster state (members, catch-up).
    pub snapshot: PortSnapshot,
}

// ------------------------------------------------------------------------------------ audit

/// One audit record of a port's chain.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct AuditRecordView {
    /// Sequence number (0-based).
    pub seq: u64,
    /// Raft log index.
    pub index: u64,
    /// Who.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// What.
    pub action: String,
    /// On what (a channel, a person id, a port).
    pub target: String,
    /// The person the record concerns, when it concerns one: its target, or the one person its
    /// batch enrolled (a guardian's consent names the port, the minor's id comes with the batch).
    pub person: Option<String>,
    /// Why.
    pub reason: String,
    /// The code its batch was refused with when it applied (`unknown_person`, …); `None` when
    /// everything in it applied.
    pub refused: Option<String>,
    /// When, in the port's local time.
    pub at: String,
    /// Whose certificate signed it (`client-console`), or why its signature does not hold.
    pub signed_by: String,
    /// Hash of the previous record (hex).
    pub prev: String,
    /// This record's hash (hex).
    pub hash: String,
}

/// A port's audit chain and its verification.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct AuditView {
    /// Port id.
    pub port: String,
    /// Records read (all of the chain up to the console's cap), oldest first.
    pub records: Vec<AuditRecordView>,
    /// Length of the chain according to the node.
    pub total: u64,
    /// The first break, if the chain does not verify: (seq, why).
    pub break_at: Option<(u64, String)>,
    /// The node that was read.
    pub node: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_queue_holds_the_open_alarms_of_the_viewers_ports_newest_first() {
        let alarm = |channel: &str, kind: &str, since_ms: i64, acked: bool| AlarmView {
            channel: channel.into(),
            kind: kind.into(),
            since_ms,
            since: String::new(),
            acked,
        };
        let port = |id: &str, alarms: Vec<AlarmView>| PortSnapshot {
            port: id.into(),
            name: format!("{id} port"),
            taken_at_ms: 0,
            taken_at: String::new(),
            reachable: true,
            error: None,
            leader: None,
            last_log_index: None,
            members: Vec::new(),
            halls: Vec::new(),
            alarms,
            clearances_per_hour: 0,
            audit_len: 0,
            dashboard_url: None,
        };
        let ports = [
            port(
                "hq",
                vec![
                    alarm("hq/p/1", "held", 30, false),
                    alarm("hq/p/2", "camera_down", 10, true),
                ],
            ),
            port("zh", vec![alarm("zh/p/1", "gate_failed", 40, false)]),
            port("mo", vec![alarm("mo/p/1", "held", 50, false)]),
        ];
        let viewer = |role, ports: &[&str]| Viewer {
            name: "wong".into(),
            role,
            ports: ports.iter().map(|p| p.to_string()).collect(),
            csrf: String::new(),
            must_change: false,
        };
        let queue = |v: &Viewer| {
            alarm_queue(v, &ports)
                .iter()
                .map(|q| format!("{}:{}:{}", q.alarm.channel, q.alarm.kind, q.may_override))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            queue(&viewer(Role::Supervisor, &["hq", "zh"])),
            "zh/p/1:gate_failed:true hq/p/1:held:true",
            "a supervisor: their ports, open alarms only, newest first"
        );
        assert_eq!(
            queue(&viewer(Role::PortAdmin, &[])),
            "mo/p/1:held:false zh/p/1:gate_failed:false hq/p/1:held:false",
            "a port admin watches every port and acts on none"
        );
        assert_eq!(
            queue(&viewer(Role::ServiceDesk, &[])),
            "",
            "the desk watches no lane"
        );
    }

    #[test]
    fn override_codes_round_trip_and_unknown_codes_are_refused() {
        let all = OverrideAction::all();
        assert_eq!(all.len(), 12 + 3 + 2);
        for a in &all {
            assert_eq!(OverrideAction::parse(&a.code()), Ok(*a), "{}", a.code());
        }
        let codes: Vec<String> = all.iter().map(|a| a.code()).collect();
        expect_test::expect![[r#"gate1_open gate1_close gate1_lock gate1_unlock gate2_open gate2_close gate2_lock gate2_unlock gate3_open gate3_close gate3_lock gate3_unlock mode_face_and_card mode_card_only mode_closed send_to_officer release"#]]
        .assert_eq(&codes.join(" "));
        assert!(OverrideAction::parse("gate4_open").is_err());
        assert!(OverrideAction::parse("").is_err());
    }

    #[test]
    fn a_channel_shows_its_most_urgent_state_and_a_decision_only_what_was_measured() {
        let lane = |step: &str, held: bool, cameras: [bool; 2], gate1: &str| LaneView {
            node: 4,
            step: step.into(),
            mode: LaneMode::FaceAndCard,
            face_scan: true,
            gates: vec![gate1.into(), "closed".into(), "closed".into()],
            occupancy: 0,
            held_for: held.then(|| "tailgating".to_string()),
            cameras_up: cameras.to_vec(),
            last_decision: None,
            acked_order: 0,
            clearances: 0,
            clearances_last_hour: 0,
            staleness_ms: 10,
            direction: String::new(),
            pad: "enforce".into(),
            fence: (1, 2),
        };
        let channel = |state, lane| ChannelView {
            id: "hq/passenger/1".into(),
            n: 1,
            state,
            desired_mode: None,
            lane,
        };
        let ok = [true, true];
        let rows = [
            (channel(ChannelState::NotDeployed, None), "not_deployed"),
            (channel(ChannelState::Offline, None), "fault"),
            (
                channel(
                    ChannelState::Online,
                    Some(lane("idle", false, ok, "closed")),
                ),
                "idle",
            ),
            (
                channel(
                    ChannelState::Online,
                    Some(lane("refused", false, ok, "closed")),
                ),
                "idle",
            ),
            (
                channel(
                    ChannelState::Online,
                    Some(lane("inspection", false, ok, "closed")),
                ),
                "passage",
            ),
            (
                channel(
                    ChannelState::Online,
                    Some(lane("officer", true, ok, "closed")),
                ),
                "held",
            ),
            // A fault outranks a hold: the channel needs a technician first.
            (
                channel(
                    ChannelState::Online,
                    Some(lane("officer", true, [true, false], "closed")),
                ),
                "fault",
            ),
            (
                channel(ChannelState::Online, Some(lane("idle", false, ok, "fault"))),
                "fault",
            ),
            // A locked gate is a supervisor's decision, not a fault.
            (
                channel(
                    ChannelState::Online,
                    Some(lane("idle", false, ok, "locked")),
                ),
                "idle",
            ),
        ];
        for (c, want) in rows {
            assert_eq!(c.severity().as_str(), want, "{c:?}");
        }
        assert_eq!(Severity::ALL.map(|s| s.as_str()).len(), 5);
        // Steps in words (the pages' words are the Fluent messages `step-<code>`).
        let words = |code: &str| crate::i18n::tr(crate::i18n::Lang::En, &code_id("step", code));
        assert_eq!(
            words("inspection"),
            "inspecting a traveller (both authorities)"
        );
        assert_eq!(words("gate1_open"), "gate 1 open for a traveller");

        // A clearance the authorities' answers triggered has no frame: no "0 ms".
        let d = |latency_ms, passage_ms| DecisionView {
            outcome: "cleared".into(),
            latency_ms,
            passage_ms,
            at: "10:00:00".into(),
        };
        assert_eq!(d(None, Some(12_400.0)).summary(), "cleared, passage 12.4 s");
        assert_eq!(d(None, None).summary(), "cleared");
        let admitted = DecisionView {
            outcome: "admitted".into(),
            ..d(Some(183.2), None)
        };
        assert_eq!(
            admitted.summary(),
            "admitted, 183 ms after the camera frame"
        );
    }

    #[test]
    fn overrides_that_open_a_gate_or_change_the_lane_ask_to_confirm() {
        let groups: Vec<String> = OverrideRisk::ALL
            .iter()
            .map(|r| {
                let codes: Vec<String> = OverrideAction::all()
                    .iter()
                    .filter(|a| a.risk() == *r)
                    .map(|a| a.code())
                    .collect();
                format!("{}: {}", r.as_str(), codes.join(" "))
            })
            .collect();
        expect_test::expect![[r#"
            stop: gate1_close gate1_lock gate2_close gate2_lock gate3_close gate3_lock send_to_officer
            restore: gate1_unlock gate2_unlock gate3_unlock release
            opens: gate1_open gate2_open gate3_open mode_face_and_card mode_card_only mode_closed"#]]
        .assert_eq(&groups.join("\n"));
    }

    #[test]
    fn roles_parse_with_dashes_or_underscores() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
            assert_eq!(Role::parse(&r.as_str().replace('_', "-")), Ok(r));
        }
        assert!(Role::parse("root").unwrap_err().contains("unknown role"));
    }

    #[test]
    fn viewer_rights_follow_role_and_ports() {
        let v = |role, ports: &[&str]| Viewer {
            name: "x".into(),
            role,
            ports: ports.iter().map(|p| p.to_string()).collect(),
            csrf: String::new(),
            must_change: false,
        };
        let table = [
            (v(Role::Supervisor, &["hengqin"]), "hengqin", true, true),
            (v(Role::Supervisor, &["hengqin"]), "gongbei", false, false),
            (v(Role::PortAdmin, &[]), "hengqin", true, false),
            (v(Role::ServiceDesk, &["hengqin"]), "hengqin", false, false),
        ];
        for (viewer, port, monitor, overrides) in table {
            assert_eq!(viewer.may_monitor(port), monitor, "{viewer:?} {port}");
            assert_eq!(viewer.may_override(port), overrides, "{viewer:?} {port}");
        }
    }
}
