//! Server functions: the browser's (and the server renderer's) calls into the service layer.
//! Each is a few lines: find the signed-in viewer (put into the request by the session guard),
//! check the CSRF token of a state-changing call, call the service, map its error to an
//! [`ApiError`] with its HTTP status. Endpoints are `/api/<name>`; arguments are form fields.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::dto::{
    ApiError, AuditView, BundleView, CancelProgress, ConsoleAuditView, CreatedUser, LaneDetail,
    ManagedUser, PortDefinition, PortSnapshot, PortSummary, QueuedAlarm, RecordedOrder,
    RegistrationView, RolloutView, SessionView, UserView, Viewer, WriteReceipt,
};

/// What the login page needs.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, PartialEq)]
pub struct LoginInfo {
    /// The login form's CSRF token (double-submitted with the `clearway_login` cookie).
    pub csrf: String,
    /// Who is signed in already, if anyone.
    pub viewer: Option<Viewer>,
    /// Failed logins that lock an account.
    pub lockout_after: u32,
    /// Minutes an account stays locked.
    pub lockout_minutes: u64,
}

#[cfg(feature = "ssr")]
pub(crate) mod ctx {
    //! Server-side glue of the server functions.
    use std::sync::Arc;

    use axum::http::StatusCode;
    use axum::http::request::Parts;
    use leptos::prelude::*;

    use crate::auth::tokens_equal;
    use crate::dto::{ApiError, Viewer};
    use crate::error::Error;
    use crate::service::Console;

    /// The console.
    pub fn console() -> Result<Arc<Console>, ApiError> {
        use_context::<Arc<Console>>()
            .ok_or_else(|| ApiError::new(500, "internal", "the console's state is missing"))
    }

    /// Answers `e`, setting the response's status.
    pub fn fail(e: Error) -> ApiError {
        let api = ApiError::from(e);
        if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
            r.set_status(
                StatusCode::from_u16(api.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
        api
    }

    /// The signed-in viewer (the session guard put it into the request), if any.
    pub fn maybe_viewer() -> Option<Viewer> {
        use_context::<Parts>().and_then(|p| p.extensions.get::<Viewer>().cloned())
    }

    /// The console and the signed-in viewer, or 401.
    pub fn viewer() -> Result<(Arc<Console>, Viewer), ApiError> {
        let c = console()?;
        match maybe_viewer() {
            Some(v) => Ok((c, v)),
            None => Err(fail(Error::Unauthenticated)),
        }
    }

    /// As [`viewer`], for a state-changing call: its CSRF token must be the session's (403).
    pub fn authorize(csrf: &str) -> Result<(Arc<Console>, Viewer), ApiError> {
        let (c, v) = viewer()?;
        if !tokens_equal(csrf, &v.csrf) {
            c.metrics.refused.with_label_values(&["csrf"]).inc();
            return Err(fail(Error::Csrf));
        }
        Ok((c, v))
    }

    /// The request's session token (the cookie).
    pub fn token() -> Result<String, ApiError> {
        use_context::<Parts>()
            .and_then(|p| crate::server::cookie(&p.headers, crate::dto::SESSION_COOKIE))
            .ok_or_else(|| fail(Error::Unauthenticated))
    }

    /// Maps a service result.
    pub fn done<T>(r: crate::error::Result<T>) -> Result<T, ApiError> {
        r.map_err(fail)
    }
}

/// The signed-in user (None on the login page before signing in).
#[server(prefix = "/api", endpoint = "whoami", input = GetUrl)]
pub async fn whoami() -> Result<Option<Viewer>, ApiError> {
    Ok(ctx::maybe_viewer())
}

/// The login page's form: a CSRF token bound to the `clearway_login` cookie (set here).
#[server(prefix = "/api", endpoint = "login_form", input = GetUrl)]
pub async fn fetch_login() -> Result<LoginInfo, ApiError> {
    use axum::http::header::SET_COOKIE;
    use axum::http::{HeaderValue, request::Parts};

    let c = ctx::console()?;
    let existing = use_context::<Parts>().and_then(|p| {
        crate::server::cookie(&p.headers, crate::server::LOGIN_COOKIE)
            .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    let csrf = match existing {
        Some(t) => t,
        None => {
            let t = crate::auth::random_token();
            if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
                let v = crate::server::cookie_header(crate::server::LOGIN_COOKIE, &t, Some(3600));
                if let Ok(v) = HeaderValue::from_str(&v) {
                    r.append_header(SET_COOKIE, v);
                }
            }
            t
        }
    };
    let a = &c.config().auth;
    Ok(LoginInfo {
        csrf,
        viewer: ctx::maybe_viewer(),
        lockout_after: a.lockout_after,
        lockout_minutes: a.lockout_s.div_ceil(60),
    })
}

/// The ports the viewer may watch.
#[server(prefix = "/api", endpoint = "ports_overview", input = GetUrl)]
pub async fn ports_overview() -> Result<Vec<PortSummary>, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.overview(&v))
}

/// A port's live state.
#[server(prefix = "/api", endpoint = "port_snapshot", input = GetUrl)]
pub async fn fetch_port(port: String) -> Result<PortSnapshot, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.snapshot(&v, &port).map(|s| s.as_ref().clone()))
}

/// The open alarms of every port the viewer watches, newest first.
#[server(prefix = "/api", endpoint = "alarm_queue", input = GetUrl)]
pub async fn fetch_alarm_queue() -> Result<Vec<QueuedAlarm>, ApiError> {
    // Every page asks, the login page too: no session is no queue, not an error (which would
    // set the page's status).
    let c = ctx::console()?;
    Ok(ctx::maybe_viewer()
        .map(|v| c.alarm_queue(&v))
        .unwrap_or_default())
}

/// A lane's page.
#[server(prefix = "/api", endpoint = "lane_detail", input = GetUrl)]
pub async fn fetch_lane(port: String, hall: String, n: String) -> Result<LaneDetail, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.lane_detail(&v, &port, &hall, &n))
}

/// A lane's newest orders with who gave them, when and why.
#[server(prefix = "/api", endpoint = "lane_orders", input = GetUrl)]
pub async fn fetch_lane_orders(
    port: String,
    channel: String,
) -> Result<Vec<RecordedOrder>, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.lane_orders(&v, &port, &channel).await)
}

/// Overrides a lane (`action`: `gate1_open` … `release`), with a reason.
#[server(prefix = "/api", endpoint = "lane_override")]
pub async fn lane_override(
    csrf: String,
    port: String,
    channel: String,
    action: String,
    reason: String,
) -> Result<WriteReceipt, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    ctx::done(
        c.lane_override(&v, &port, &channel, &action, &reason, now)
            .await,
    )
}

/// Starts viewing a lane's cameras, with a reason (audited before any still is shown).
#[server(prefix = "/api", endpoint = "watch_cameras")]
pub async fn watch_cameras(
    csrf: String,
    port: String,
    channel: String,
    reason: String,
) -> Result<WriteReceipt, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    ctx::done(c.watch_cameras(&v, &port, &channel, &reason, now).await)
}

/// Acknowledges an alarm, with a reason.
#[server(prefix = "/api", endpoint = "ack_alarm")]
pub async fn ack_alarm(
    csrf: String,
    port: String,
    channel: String,
    kind: String,
    since_ms: i64,
    reason: String,
) -> Result<WriteReceipt, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    ctx::done(
        c.ack_alarm(&v, &port, &channel, &kind, since_ms, &reason, now)
            .await,
    )
}

/// The ports the service desk serves: (id, name).
#[server(prefix = "/api", endpoint = "desk_ports", input = GetUrl)]
pub async fn desk_ports() -> Result<Vec<(String, String)>, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.desk_ports(&v))
}

/// Finds a registration by travel document (service desk).
#[server(prefix = "/api", endpoint = "find_registration")]
pub async fn find_registration(
    csrf: String,
    port: String,
    kind: String,
    number: String,
) -> Result<Option<RegistrationView>, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    ctx::done(c.find_registration(&v, &port, &kind, &number).await)
}

/// Records a guardian's consent for a minor (service desk).
#[server(prefix = "/api", endpoint = "guardian_consent")]
#[allow(clippy::too_many_arguments)]
pub async fn guardian_consent(
    csrf: String,
    port: String,
    name: String,
    date_of_birth: String,
    category: String,
    document_kind: String,
    document_number: String,
    valid_from: String,
    valid_until: String,
    guardian_name: String,
    guardian_document: String,
    relationship_proof: String,
    service_location: String,
    reason: String,
) -> Result<WriteReceipt, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let form = crate::service::ConsentForm {
        name,
        date_of_birth,
        category,
        document_kind,
        document_number,
        valid_from,
        valid_until,
        guardian_name,
        guardian_document,
        relationship_proof,
        service_location,
    };
    let now = crate::auth::now_ms();
    ctx::done(c.guardian_consent(&v, &port, &form, &reason, now).await)
}

/// Cancels a registration (service desk).
#[server(prefix = "/api", endpoint = "cancel_registration")]
#[allow(clippy::too_many_arguments)] // one per form field
pub async fn cancel_registration(
    csrf: String,
    port: String,
    person: String,
    service_location: String,
    document_kind: String,
    document_number: String,
    guardian_name: String,
    guardian_document: String,
    relationship_proof: String,
    reason: String,
) -> Result<WriteReceipt, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    let evidence = crate::service::CancelEvidence {
        service_location,
        document_kind,
        document_number,
        guardian_name,
        guardian_document,
        relationship_proof,
    };
    ctx::done(
        c.cancel_registration(&v, &port, &person, &evidence, &reason, now)
            .await,
    )
}

/// Every replica's progress on a cancellation.
#[server(prefix = "/api", endpoint = "cancel_progress")]
pub async fn fetch_cancel_progress(
    csrf: String,
    port: String,
    index: u64,
) -> Result<CancelProgress, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    ctx::done(c.cancel_progress(&v, &port, index).await)
}

/// Every port's definition (port admins).
#[server(prefix = "/api", endpoint = "rollout_ports", input = GetUrl)]
pub async fn rollout_ports() -> Result<Vec<PortDefinition>, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.rollout_ports(&v))
}

/// Creates a port (port admins).
#[server(prefix = "/api", endpoint = "create_port")]
pub async fn create_port(
    csrf: String,
    id: String,
    name: String,
    utc_offset_minutes: String,
    halls: String,
    nodes: String,
    reason: String,
) -> Result<PortDefinition, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let form = crate::service::PortForm {
        id,
        name,
        utc_offset_minutes,
        halls,
        nodes,
    };
    let (def, handle) = ctx::done(c.create_port(&v, &form, &reason, crate::auth::now_ms()))?;
    crate::poller::spawn(c.clone(), handle);
    Ok(def)
}

/// What a port definition file would create (port admins); nothing is created.
#[server(prefix = "/api", endpoint = "preview_port_definition")]
pub async fn preview_port_definition(
    csrf: String,
    definition: String,
) -> Result<PortDefinition, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    ctx::done(c.preview_definition(&v, &definition).map(|(_, view)| view))
}

/// Creates a port from its definition file (`deploy/ports/<port>.toml`; port admins).
#[server(prefix = "/api", endpoint = "create_port_from_definition")]
pub async fn create_port_from_definition(
    csrf: String,
    definition: String,
    reason: String,
) -> Result<PortDefinition, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let (def, handle) =
        ctx::done(c.create_port_from_definition(&v, &definition, &reason, crate::auth::now_ms()))?;
    crate::poller::spawn(c.clone(), handle);
    Ok(def)
}

/// Issues a node bundle (port admins).
#[server(prefix = "/api", endpoint = "issue_bundle")]
pub async fn issue_bundle(
    csrf: String,
    port: String,
    node: String,
    addr: String,
    role: String,
    channel: String,
    csr: String,
    reason: String,
) -> Result<BundleView, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    ctx::done(c.issue_bundle(&v, &port, &node, &addr, &role, &channel, &csr, &reason, now))
}

/// A port's rollout state (port admins).
#[server(prefix = "/api", endpoint = "rollout_view", input = GetUrl)]
pub async fn fetch_rollout(port: String) -> Result<RolloutView, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.rollout_view(&v, &port))
}

/// Initialises a port's cluster (port admins).
#[server(prefix = "/api", endpoint = "init_cluster")]
pub async fn init_cluster(
    csrf: String,
    port: String,
    reason: String,
) -> Result<WriteReceipt, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    ctx::done(
        c.init_cluster(&v, &port, &reason, crate::auth::now_ms())
            .await,
    )
}

/// Adds a learner to a port's cluster (port admins).
#[server(prefix = "/api", endpoint = "add_learner")]
pub async fn add_learner(
    csrf: String,
    port: String,
    node: String,
    addr: String,
    reason: String,
) -> Result<WriteReceipt, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    ctx::done(c.add_learner(&v, &port, &node, &addr, &reason, now).await)
}

/// Retires an appliance: revokes its certificates and removes it from the cluster (port admins).
#[server(prefix = "/api", endpoint = "retire_appliance")]
pub async fn retire_appliance(
    csrf: String,
    port: String,
    node: String,
    reason: String,
) -> Result<WriteReceipt, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    ctx::done(c.retire_appliance(&v, &port, &node, &reason, now).await)
}

/// The staged face-scan roll-out (`stage`: pilot, all, rollback; port admins).
#[server(prefix = "/api", endpoint = "stage_face_scan")]
pub async fn stage_face_scan(
    csrf: String,
    port: String,
    stage: String,
    pilot: String,
    reason: String,
) -> Result<WriteReceipt, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    ctx::done(
        c.stage_face_scan(&v, &port, &stage, &pilot, &reason, now)
            .await,
    )
}

/// A port's audit chain, verified.
#[server(prefix = "/api", endpoint = "audit_view", input = GetUrl)]
pub async fn fetch_audit(port: String) -> Result<AuditView, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.audit(&v, &port).await)
}

/// Console users (port admins).
#[server(prefix = "/api", endpoint = "list_users", input = GetUrl)]
pub async fn list_users() -> Result<Vec<UserView>, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.users(&v, crate::auth::now_ms()))
}

/// Creates a console user (port admins); an empty password generates one.
#[server(prefix = "/api", endpoint = "create_user")]
pub async fn create_user(
    csrf: String,
    name: String,
    role: String,
    ports: String,
    password: String,
    reason: String,
) -> Result<CreatedUser, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    ctx::done(c.create_user(&v, &name, &role, &ports, &password, &reason, now))
}

/// An administrator's action on an account (port admins): `unlock`, `disable`, `enable`,
/// `reset_password`, `revoke_sessions`, `delete`; a reason is required and recorded.
#[server(prefix = "/api", endpoint = "manage_user")]
pub async fn manage_user(
    csrf: String,
    name: String,
    action: String,
    reason: String,
) -> Result<ManagedUser, ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    let now = crate::auth::now_ms();
    ctx::done(c.manage_user(&v, &name, &action, &reason, now))
}

/// The signed-in user's own sessions.
#[server(prefix = "/api", endpoint = "my_sessions", input = GetUrl)]
pub async fn my_sessions() -> Result<Vec<SessionView>, ApiError> {
    let (c, v) = ctx::viewer()?;
    let token = ctx::token()?;
    ctx::done(c.my_sessions(&v, &token, crate::auth::now_ms()))
}

/// Ends one of the signed-in user's own sessions.
#[server(prefix = "/api", endpoint = "revoke_session")]
pub async fn revoke_session(csrf: String, id: String) -> Result<(), ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    ctx::done(c.revoke_my_session(&v, &id))
}

/// Changes the signed-in user's own password; the other sessions end.
#[server(prefix = "/api", endpoint = "change_password")]
pub async fn change_password(
    csrf: String,
    current: String,
    new: String,
    repeat: String,
) -> Result<(), ApiError> {
    let (c, v) = ctx::authorize(&csrf)?;
    if new != repeat {
        return Err(ctx::fail(crate::error::Error::Invalid(
            "the new password and its repetition differ".into(),
        )));
    }
    let token = ctx::token()?;
    // Two argon2 hashes: under a hashing permit, off the async workers.
    let permit = c
        .auth
        .hashing()
        .acquire()
        .await
        .map_err(|e| ctx::fail(crate::error::Error::Store(e.to_string())))?;
    let console = c.clone();
    let r = tokio::task::spawn_blocking(move || {
        console.change_password(&v, &token, &current, &new, crate::auth::now_ms())
    })
    .await
    .map_err(|e| ctx::fail(crate::error::Error::Store(format!("password task: {e}"))))?;
    drop(permit);
    ctx::done(r)
}

/// The console's own audit log (port admins).
#[server(prefix = "/api", endpoint = "console_audit", input = GetUrl)]
pub async fn console_audit() -> Result<ConsoleAuditView, ApiError> {
    let (c, v) = ctx::viewer()?;
    ctx::done(c.console_audit(&v))
}
