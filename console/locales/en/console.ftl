# The supervisor console's words, English. Every message here is also in ../zh-Hant/console.ftl
# (the unit test `i18n::tests` checks both ways, and that every id the code uses exists).

## Navigation and the frame of every page
console-name = Clearway console
nav-ports = Ports
nav-rollout = Rollout
nav-users = Users
nav-account = Account
nav-console-audit = Console audit
nav-desk = Service desk
sign-out = Sign out
language = Language
not-found = Not found
not-found-what = There is no such { $what }.
back-to-console = Back to the console
loading = Loading…
sending = Sending…
sign-in-again = Sign in again
reason-required = Reason (required, audited)

## Error prefixes
err-404 = Not found:
err-403 = Refused:
err-401 = Sign in:
err-413 = Too large:
err-422 = Check the form:
err-409 = Refused by the port:
err-502 = Port unreachable:
err-other = Error:

## Roles
role-supervisor = Supervisor
role-service-desk = Service-desk officer
role-port-admin = Port administrator

## Login
login-title = Sign in
login-name = User name
login-password = Password
login-submit = Sign in
login-wrong = Wrong user name or password.
login-paused = Too many attempts after { $after } failures: signing in is paused. Wait (longer after each further attempt, at most { $minutes } minutes) and try again, or ask a port admin to lift the pause (Users page).
login-disabled = This account is disabled; ask a port admin.
login-failed = Signing in failed; try again.
login-expired = Your session has expired; sign in again.

## The alarm queue
queue-none = Alarms: none open
queue-open = { $count ->
    [one] Alarms: 1 open
   *[other] Alarms: { $count } open
}
sound-on = Sound on (mute)
sound-off = Sound off (turn on)
no-alarms = No alarms.
since = since { $time }
acknowledge = Acknowledge
acknowledged = acknowledged
reason-short = reason (required)
release-reason = reason to release (required)
release-channel = Release the channel

## Alarm kinds
alarm-camera-down = camera down
alarm-tailgating = two people in the channel
alarm-multiple-faces = several faces at the gate
alarm-authority-not-answering = authority not answering
alarm-replica-stale = replica stale
alarm-gate-fault = gate fault
alarm-gate-failed = a gate did not carry out a command; passage stopped
alarm-gate1-locked = traveller turned away at locked gate 1
alarm-foreign-fence = gate controller commanded by another device: technician reset needed
alarm-records-unwritable = outbox cannot store records (disk full?): no passages
alarm-presentation-attack = presentation attack suspected at gate 1 (photo, screen or mask)
alarm-held = channel held for an officer
alarm-lane-offline = lane offline
alarm-replication-lag = replication lag
alarm-order-refused = an order was not carried out
alarm-order-expired = an order arrived too late
alarm-audit-divergence = audit trail differs from the other replicas

## Severity (the hall grid and its legend)
severity-fault = fault, offline or camera down
severity-held = held for an officer
severity-passage = passage in progress
severity-idle = idle
severity-not-deployed = not deployed

## Lane modes
mode-face-and-card = face + card
mode-card-only = card only
mode-closed = closed
mode-offline = offline
mode-not-deployed = not deployed

## Procedure steps
step-idle = idle, waiting for a traveller
step-refused = turned a traveller away at gate 1
step-declaration = showing the registration declaration
step-registering = registering a traveller
step-gate1-open = gate 1 open for a traveller
step-inspection = inspecting a traveller (both authorities)
step-exit = gates 2 and 3 open, traveller leaving
step-officer = held for an officer

## Ports, port and hall pages
ports-title = Ports
hall-alarms = Alarms in this hall, newest first
trend-title = Last hour (minute by minute, since this console started)
trend-clearances = { $count ->
    [one] 1 clearance
   *[other] { $count } clearances
}
trend-p95 = decision latency p95: worst minute { $ms } ms
trend-no-decisions = no face decisions
grafana-open = Open this hall in Grafana
grafana-none = Longer history: the Grafana dashboard deploy/grafana/clearway-port.json (set dashboard_url in the console's [[port]] to link it here).

## Lane page
lane-state = State
lane-desired-mode = Mode asked by the port
lane-gates = Gates
lane-step = Step
lane-face-scan = Face scan
lane-face-scan-on = in use
lane-face-scan-off = not in use
lane-pad = Presentation-attack detection
lane-pad-enforce = enforcing
lane-pad-observe = observe only: not enforcing
lane-pad-off = off
lane-occupancy = In the channel
lane-held-for = Held for an officer
lane-cameras = Cameras
lane-last-decision = Last decision
lane-fence = Fencing token
lane-acked-order = Last override carried out
lane-staleness = Replica staleness
lane-direction = Direction
lane-direction-unset = not set in the port definition
no = no
none-yet = none yet
alarms = Alarms
cameras = Cameras
camera-reason = Reason to view the cameras (required, audited)
camera-show = Show the cameras
camera-live = Live, a few stills a second; your viewing is audit record { $seq }. Nothing is stored.
camera-ended = The viewing has ended. Give a reason to view again.
camera-gate = Gate { $n }
camera-waiting = waiting for the first still…
override = Override
overrides-recorded = Overrides recorded
orders-when = When (port time)
orders-order = Order
orders-who = Who
orders-reason = Reason
orders-log = Log
risk-stop = Stop — safe at any time
risk-restore = Restore — the procedure takes over again
risk-opens = Open a gate or change the lane — asks to confirm

## Service desk
desk-title = Service desk
desk-task-find = Look up a registration
desk-task-consent = Guardian's consent
desk-task-cancel = Cancel a registration
desk-find = Find a registration
desk-consent = Record a guardian's consent for a minor (14–17)
desk-cancel = Cancel a registration
desk-cancel-this = Cancel this registration…
desk-locations = Service locations

## Gates and cameras
gate-state = gate { $n }: { $state }
gate-closed = closed
gate-moving = moving
gate-open = open
gate-locked = locked
gate-fault = fault
camera-up = up
camera-down = DOWN

## Overrides
override-gate1-open = open gate 1
override-gate1-close = close gate 1
override-gate1-lock = lock gate 1
override-gate1-unlock = unlock gate 1
override-gate2-open = open gate 2
override-gate2-close = close gate 2
override-gate2-lock = lock gate 2
override-gate2-unlock = unlock gate 2
override-gate3-open = open gate 3
override-gate3-close = close gate 3
override-gate3-lock = lock gate 3
override-gate3-unlock = unlock gate 3
override-mode-face-and-card = switch to face + card
override-mode-card-only = switch to card only
override-mode-closed = switch to closed
override-send-to-officer = send traveller to an officer
override-release = release the channel

## Audit, users, ports
filter-who = Who
filter-action = Action
filter-target = Lane or person
filter-when = When
audit-index = Log index
audit-action = Action
audit-target = Target
audit-person = Person
audit-outcome = Outcome
audit-signed-by = Signed by
audit-hash = Hash
audit-applied = applied
audit-refused = refused ({ $code })
audit-title = Audit
audit-heading = Audit trail of { $port }
users-create = Create a user
users-name = Name
users-role = Role
users-failed = Failed logins
users-locked = Locked until
users-name-input = Name (a-z, 0-9, . _ -)
users-ports-input = Ports (supervisors; comma separated)
users-password-input = Password (empty: generate one, shown once)
users-state = State
users-active = active
users-disabled = disabled
users-must-change = must change password
users-manage = Manage an account
users-action = Action
users-apply = Apply
users-action-unlock = lift the login pause
users-action-disable = disable
users-action-enable = enable
users-action-reset_password = reset the password
users-action-revoke_sessions = end all sessions
users-action-delete = delete
account-must-change = An administrator set your password. Choose a new one to continue.
account-password = Change your password
account-current = Current password
account-new = New password (at least 12 characters)
account-repeat = New password again
account-change = Change password
account-changed = Password changed; your other sessions were ended.
account-sessions = Your sessions
account-signed-in = Signed in
account-last-seen = Last request
account-client = From
account-this-session = this session
account-revoke = End
console-audit-title = Console audit log
console-audit-intact = Chain intact: { $count } records verified.
console-audit-broken = THE CONSOLE'S AUDIT CHAIN IS BROKEN at record { $seq }: { $why }. Records from { $seq } on cannot be trusted; report this to the security officer.
ports-port = Port
ports-halls = Halls
ports-up = Lanes up
ports-down = Lanes down
ports-clearances = Clearances / h
ports-alarms = Open alarms
ports-cluster = Cluster

## Rollout
roll-seeds = Seed nodes
roll-origin = Origin
roll-from-def = Create a port from its definition file
roll-from-def-help = The same file the appliances are provisioned from (deploy/ports/<port>.toml): its voters become the console's seed nodes.
roll-choose-file = Choose the file
roll-preview = Preview
roll-create-def = Create the port (generates its CA)
roll-created = Port created:
roll-hall = Hall
roll-channels = Channels
roll-voter = Voter
roll-address = Address (QUIC)
roll-create = Create a port
roll-port-id = Port id (a-z, 0-9, -)
roll-offset = UTC offset (minutes)
roll-halls = Halls, one per line: id | name | channels
roll-seed-input = Seed nodes (ID=IP:PORT, comma separated)
roll-nodes = Nodes: joining and catching up
roll-bundles = Node bundles
roll-channel = Channel (lane nodes: hall/n)
roll-csr = Signing request (on the appliance: clearway-node port csr --node N --out tls; paste tls/request.csr)
roll-init = Initialise the cluster (voters: voter bundles, else the seed nodes)
roll-retire = Retire appliance (revoke its certificates, remove it from the cluster)
roll-stages = Face scan, in stages
roll-pilot = Pilot channels (hall/n, comma separated)
roll-enable-pilot = Enable face scan on the pilot channels
roll-enable-all = Enable face scan on all channels
roll-rollback = Roll back: card only on all channels

## Port status
port-hall-summary = { $channels } channels, { $up } up, { $down } down
port-status = leader node { $leader }, log index { $index }, { $clearances } clearances in the last hour

## Service desk forms, users
desk-locations-help = Registration of minors (with a guardian) and cancellation, in person:
desk-location = Location
desk-phone = Telephone
desk-hours = Hours
desk-number = Number
desk-find-submit = Find
desk-consent-help = The minor is enrolled without a face; they complete the registration at a channel like an adult.
desk-minor = The minor
desk-name-doc = Name as on the document
desk-dob = Date of birth
desk-category = Category
desk-doc-number = Document number
desk-document = Document
desk-valid-from = Valid from
desk-valid-until = Valid until
desk-guardian = The parent or guardian
desk-guardian-doc = Identity document (kind and number)
desk-proof = Proof of relationship (reference)
desk-service-location = Service location
desk-record-consent = Record consent
desk-cancel-help = Erases the person on every replica of the port. Seed 000: in person at a service location, with the identity document of the registration (checked against the record) and, for a minor, a parent or guardian with proof of relationship. Look the registration up first: its page links here with the person id.
desk-cancel-in-person = In person at a service location
desk-presented = Identity document presented
desk-cancel-guardian = A minor's parent or guardian (required for a minor)
desk-person-id = Person id
desk-cancel-submit = Cancel the registration
desk-doc-valid-until = Document valid until
desk-registered-with = Registered with
desk-status = Status
desk-cancel-done = Confirmed: every replica of the port has applied the cancellation and erased the data.
desk-cancel-waiting = Waiting for every replica to apply the cancellation and erase the data…
desk-node = Node
desk-applied-index = Applied index
desk-applied = Applied
desk-erased = Erased
users-created = User { $name } created.
users-password-once = Password (shown once):
