//! The axum wiring: the session guard (body limit and deadline, session, CSRF), login and
//! logout, the SSE endpoints (a few streams per session), the Leptos routes and server
//! functions, static files and 404s; `/metrics` on a router of its own ([`metrics_router`]),
//! served on a separate listener; [`listen`]: the connections (header deadline, a bounded
//! count, graceful stop).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Path as UrlPath, Query, Request, State};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION,
    REFERRER_POLICY, SET_COOKIE, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use futures::stream::Stream;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use crate::app::{App, shell};
use crate::auth::{now_ms, tokens_equal};
use crate::dto::{ApiError, CSRF_FIELD, MAX_BODY_BYTES, SESSION_COOKIE, Viewer};
use crate::error::Error;
use crate::metrics::SseClientGuard;
use crate::service::Console;

pub mod listen;

/// Time a client has to send a request's body once its headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(20);

/// Live-update streams (server-sent events) one session may hold open at once: a few tabs.
pub const STREAMS_PER_SESSION: usize = 6;

/// The open live-update streams of each session (by the token's hash).
#[derive(Debug, Default)]
pub struct StreamSlots {
    open: std::sync::Mutex<std::collections::HashMap<[u8; 32], usize>>,
}

/// One open stream; dropping it frees its slot.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    key: [u8; 32],
}

impl StreamSlots {
    /// A slot for one more stream of the session `token`, if it has fewer than
    /// [`STREAMS_PER_SESSION`].
    pub fn take(self: &Arc<Self>, token: &str) -> Option<StreamSlot> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= STREAMS_PER_SESSION {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "clearway_login";

/// The router's state.
#[derive(Clone)]
pub struct AppState {
    /// The console.
    pub console: Arc<Console>,
    /// Leptos' options (site dir, output name).
    pub leptos: LeptosOptions,
    /// Live-update streams open per session.
    pub streams: Arc<StreamSlots>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> LeptosOptions {
        s.leptos.clone()
    }
}

/// Leptos' options for a site dir holding `pkg/clearway_console{.js,_bg.wasm}`.
pub fn leptos_options(site_dir: &Path) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("clearway_console")
        .site_root(site_dir.display().to_string())
        .site_pkg_dir("pkg")
        .build()
}

/// The whole application.
pub fn router(console: Arc<Console>, site_dir: &Path) -> Router {
    let leptos = leptos_options(site_dir);
    let state = AppState {
        console: console.clone(),
        leptos: leptos.clone(),
        streams: Arc::default(),
    };
    let routes = generate_route_list(App);
    let context = {
        let c = console.clone();
        move || {
            provide_context(c.clone());
            // This response's CSP nonce, made by `guard`: Leptos writes it on its
            // inline scripts and styles (replacing the one it would make itself).
            let nonce = leptos::prelude::use_context::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
            if let Some(CspNonce(n)) = nonce {
                provide_context(leptos::nonce::Nonce::from_value(n));
            }
        }
    };
    let app_shell = {
        let o = leptos.clone();
        move || shell(o.clone())
    };
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/events/port/{id}", get(events))
        .route("/events/alarms", get(alarm_events))
        .route("/lang/{tag}", get(choose_language))
        .route("/still/{port}/{hall}/{n}/{camera}", get(still))
        .route("/healthz", get(|| async { "ok" }))
        // The page's own files on a route of their own, not through Leptos' file fallback: that
        // one answers a found file with the status of whatever render is still current on the
        // worker thread (a refused page's 403 once reached a browser's `.wasm`).
        .route_service(
            &leptos_axum::site_pkg_dir_service_route_path(&leptos),
            leptos_axum::site_pkg_dir_service(&leptos),
        )
        .leptos_routes_with_context(&state, routes, context.clone(), app_shell)
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(middleware::from_fn_with_state(console, guard))
        .with_state(state)
}

/// This response's Content-Security-Policy nonce, in the request's extensions.
#[derive(Clone, Debug)]
struct CspNonce(String);

/// What every answer that is not a page gets as its Content-Security-Policy: nothing runs,
/// nothing loads, nothing frames it.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers on every answer, the guard's refusals included: no MIME sniffing, no referrer, no
/// framing, HSTS (meaningful once served over TLS), a Content-Security-Policy (an HTML page's
/// [`crate::app::page_csp`] with the nonce made here for its render; [`DEFAULT_CSP`]
/// otherwise), and `no-store` on
/// everything but the wasm package (pages and answers can hold personal data).
fn security_headers(response: &mut Response, nonce: &str, package: bool) {
    let h = response.headers_mut();
    let page = h
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if page && let Ok(v) = HeaderValue::from_str(&crate::app::page_csp(nonce)) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
    if !package {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

// ---------------------------------------------------------------------------------- cookies

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// A `Set-Cookie` value: HttpOnly, Secure, SameSite=Strict, Path=/; `max_age` 0 deletes it.
pub fn cookie_header(name: &str, value: &str, max_age: Option<u64>) -> String {
    let mut s = format!("{name}={value}; HttpOnly; Secure; SameSite=Strict; Path=/");
    if let Some(a) = max_age {
        s += &format!("; Max-Age={a}");
    }
    s
}

// ---------------------------------------------------------------------------------- errors

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An error answer: an HTML page for a browser navigation or form post, JSON (an
/// [`ApiError`]) for a server-function call.
pub fn error_response(headers: &HeaderMap, e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if wants_html(headers) {
        let login = matches!(e.code.as_str(), "unauthenticated" | "session_expired")
            .then_some(r#"<p><a href="/login" data-test="login-link">Sign in</a></p>"#)
            .unwrap_or(r#"<p><a href="/">Back to the console</a></p>"#);
        let html = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Clearway console</title></head>\
             <body><main><h1>{} {}</h1><p class=\"error\" data-test=\"error\" data-code=\"{}\">{}</p>{login}</main></body></html>",
            status.as_u16(),
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            escape(&e.code),
            escape(&e.message),
        );
        return (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    }
    let body = serde_json::to_string(e).unwrap_or_else(|_| e.message.clone());
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

// ---------------------------------------------------------------------------------- guard

fn is_public(method: &Method, path: &str) -> bool {
    path.starts_with("/pkg/")
        || path == "/healthz"
        || path == "/favicon.ico"
        || (path == "/auth/login" && method == Method::POST)
        || (path.starts_with("/lang/") && method == Method::GET)
}

/// What a session whose password an administrator set may reach until the user changes it.
const PASSWORD_CHANGE_PATHS: [&str; 4] = [
    "/account",
    "/api/change_password",
    "/api/whoami",
    "/auth/logout",
];

pub(crate) fn csrf_from_form(body: &[u8]) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == CSRF_FIELD)
        .map(|(_, v)| v.to_string())
}

/// Every request passes here: bodies over 64 KiB are refused (413); outside the public paths a
/// live session is required (pages redirect to the login, calls get 401); a state-changing
/// request must carry the session's CSRF token in the `x-csrf-token` header or a `csrf` form
/// field (403). The viewer goes into the request's extensions for the handlers.
async fn guard(State(console): State<Arc<Console>>, mut req: Request, next: Next) -> Response {
    let package = req.uri().path().starts_with("/pkg/");
    // 128 random bits, hex (a valid CSP nonce), for this response's page.
    let nonce = crate::auth::random_token()[..32].to_string();
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = checked(console, req, next).await;
    security_headers(&mut response, &nonce, package);
    response
}

async fn checked(console: Arc<Console>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let refuse = |parts: &axum::http::request::Parts, e: Error| {
        console.metrics.refused.with_label_values(&[e.code()]).inc();
        error_response(&parts.headers, &ApiError::from(e))
    };
    let too_big = ApiError::new(
        413,
        "too_large",
        format!(
            "the request is larger than {} KiB; shorten the form",
            MAX_BODY_BYTES / 1024
        ),
    );
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        console
            .metrics
            .refused
            .with_label_values(&["too_large"])
            .inc();
        return error_response(&parts.headers, &too_big);
    }
    let body = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES));
    let body: Bytes = match body.await {
        Ok(Ok(b)) => b,
        Err(_) => {
            console
                .metrics
                .refused
                .with_label_values(&["body_timeout"])
                .inc();
            let slow = ApiError::new(
                408,
                "body_timeout",
                format!(
                    "the request's body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            );
            return error_response(&parts.headers, &slow);
        }
        Ok(Err(_)) => {
            console
                .metrics
                .refused
                .with_label_values(&["too_large"])
                .inc();
            return error_response(&parts.headers, &too_big);
        }
    };
    let path = parts.uri.path().to_string();
    let method = parts.method.clone();
    let token = cookie(&parts.headers, SESSION_COOKIE);
    let session = console.auth.session(token.as_deref(), now_ms());
    if let Ok(v) = &session {
        parts.extensions.insert(v.clone());
    }
    if !is_public(&method, &path) && path != "/login" {
        let viewer: Viewer = match session {
            Ok(v) => v,
            Err(e) => {
                let page = method == Method::GET && wants_html(&parts.headers);
                return if page {
                    let why = if token.is_some() { "?expired=1" } else { "" };
                    redirect(&format!("/login{why}"))
                } else {
                    refuse(&parts, e)
                };
            }
        };
        if viewer.must_change && !PASSWORD_CHANGE_PATHS.contains(&path.as_str()) {
            // An administrator set the password: nothing but choosing a new one.
            let page = method == Method::GET && wants_html(&parts.headers);
            return if page {
                redirect("/account")
            } else {
                refuse(&parts, Error::PasswordChangeRequired)
            };
        }
        if !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| csrf_from_form(&body));
            if !sent.is_some_and(|s| tokens_equal(&s, &viewer.csrf)) {
                warn!(user = %viewer.name, path = %path, "Request refused: CSRF token missing or wrong.");
                return refuse(&parts, Error::Csrf);
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

// ---------------------------------------------------------------------------------- login

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginFields {
    name: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

/// How long a login waits for a password-hashing permit before it is answered "busy".
const HASHING_WAIT: Duration = Duration::from_secs(5);

async fn login(
    State(state): State<AppState>,
    client: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginFields>,
) -> Response {
    let c = &state.console;
    let expected = cookie(&headers, LOGIN_COOKIE);
    if !expected.is_some_and(|t| !f.csrf.is_empty() && tokens_equal(&t, &f.csrf)) {
        c.metrics.logins.with_label_values(&["csrf"]).inc();
        return error_response(
            &headers,
            &ApiError::new(
                403,
                "csrf",
                "the login form's security (CSRF) token is missing or wrong; reload the login page and try again",
            ),
        );
    }
    let name = f.name.trim().to_string();
    let password = f.password;
    // Behind no proxy: the peer is the client (a TLS-terminating proxy would need its
    // forwarded address trusted explicitly; see ARCHITECTURE.md).
    let client = client.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.0.ip());
    // A bounded number of hashes at once; a flood waits here briefly, then is told "busy".
    let Ok(Ok(permit)) = tokio::time::timeout(HASHING_WAIT, c.auth.hashing().acquire()).await
    else {
        c.metrics.logins.with_label_values(&["busy"]).inc();
        return redirect("/login?error=busy");
    };
    let auth = c.clone();
    // argon2 takes tens of milliseconds: off the async workers.
    let result =
        tokio::task::spawn_blocking(move || auth.auth.login(&name, &password, client, now_ms()))
            .await;
    drop(permit);
    let result = match result {
        Ok(r) => r,
        Err(e) => Err(Error::Store(format!("login task failed: {e}"))),
    };
    match result {
        Ok(li) => {
            c.metrics.logins.with_label_values(&["ok"]).inc();
            let mut r = redirect(match li.viewer.role {
                crate::dto::Role::ServiceDesk => "/desk",
                _ => "/",
            });
            for v in [
                cookie_header(SESSION_COOKIE, &li.token, None),
                cookie_header(LOGIN_COOKIE, "", Some(0)),
            ] {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    r.headers_mut().append(SET_COOKIE, v);
                }
            }
            r
        }
        Err(e) => {
            c.metrics.logins.with_label_values(&[e.code()]).inc();
            redirect(&format!("/login?error={}", e.code()))
        }
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(t) = cookie(&headers, SESSION_COOKIE) {
        state.console.auth.logout(&t);
    }
    let mut r = redirect("/login");
    if let Ok(v) = HeaderValue::from_str(&cookie_header(SESSION_COOKIE, "", Some(0))) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

// ---------------------------------------------------------------------------------- live

/// `GET /events/port/{id}`: the port's snapshot now and after every change, as server-sent
/// events (JSON [`crate::dto::PortSnapshot`]). Ends when the session does.
async fn events(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    req: Request,
) -> Response {
    let c = state.console.clone();
    let (parts, _) = req.into_parts();
    let Some(viewer) = parts.extensions.get::<Viewer>().cloned() else {
        return error_response(&parts.headers, &Error::Unauthenticated.into());
    };
    let port = match c.monitored(&viewer, &id) {
        Ok(p) => p,
        Err(e) => return error_response(&parts.headers, &e.into()),
    };
    let token = cookie(&parts.headers, SESSION_COOKIE).unwrap_or_default();
    let Some(slot) = state.streams.take(&token) else {
        return too_many_streams(&c, &parts.headers);
    };
    let stream = snapshots(c, port, token, slot);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
        .into_response()
}

fn snapshots(
    console: Arc<Console>,
    port: Arc<crate::service::PortHandle>,
    token: String,
    slot: StreamSlot,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    let guard = (
        SseClientGuard::new(console.metrics.sse_clients.clone()),
        slot,
    );
    let rx = port.subscribe();
    let first = Some(port.latest());
    let stopping = console.stopping();
    futures::stream::unfold(
        (first, rx, guard, console, token, stopping),
        |(first, mut rx, guard, console, token, mut stopping)| async move {
            let event = |s: &crate::dto::PortSnapshot| {
                Event::default().data(serde_json::to_string(s).unwrap_or_default())
            };
            if *stopping.borrow_and_update() {
                return None;
            }
            if let Some(s) = first {
                let e = event(&s);
                return Some((Ok(e), (None, rx, guard, console, token, stopping)));
            }
            let mut check = tokio::time::interval(Duration::from_secs(5));
            check.tick().await;
            loop {
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(s) => {
                            if !console.auth.peek(&token, now_ms()) {
                                return None;
                            }
                            let e = event(&s);
                            return Some((Ok(e), (None, rx, guard, console, token, stopping)));
                        }
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                    _ = check.tick() => {
                        if !console.auth.peek(&token, now_ms()) {
                            return None;
                        }
                    }
                    // The console is stopping: end the stream, so the connection closes.
                    _ = stopping.changed() => return None,
                }
            }
        },
    )
}

/// `GET /still/{port}/{hall}/{n}/{camera}?viewing={audit_seq}`: the newest still (JPEG) of a
/// lane camera (1 = gate 1, 2 = gate 2) for the supervisor's recorded viewing; 204 while the
/// lane makes the first one. Never cached or stored.
async fn still(
    State(state): State<AppState>,
    UrlPath((port, hall, n, camera)): UrlPath<(String, String, String, u8)>,
    Query(q): Query<StillQuery>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let Some(viewer) = parts.extensions.get::<Viewer>().cloned() else {
        return error_response(&parts.headers, &Error::Unauthenticated.into());
    };
    let channel = format!("{port}/{hall}/{n}");
    let no_store = [(CACHE_CONTROL, "no-store")];
    match state
        .console
        .camera_still(&viewer, &port, &channel, camera, q.viewing)
        .await
    {
        Ok(Some(jpeg)) => (no_store, [(CONTENT_TYPE, "image/jpeg")], jpeg).into_response(),
        Ok(None) => (StatusCode::NO_CONTENT, no_store).into_response(),
        Err(e) => error_response(&parts.headers, &e.into()),
    }
}

/// `GET /lang/{tag}?back=/path`: keeps the user's language in a cookie (a year; not secret,
/// so readable by the page) and sends them back to `back`, a path on this console only.
async fn choose_language(UrlPath(tag): UrlPath<String>, Query(q): Query<LangQuery>) -> Response {
    let Some(lang) = crate::i18n::Lang::parse(&tag) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no language {tag:?}: the console speaks en and zh-Hant"),
        )
            .into_response();
    };
    let back = q
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let mut r = redirect(&back);
    let cookie = format!(
        "{}={}; Secure; SameSite=Strict; Path=/; Max-Age=31536000",
        crate::i18n::LANG_COOKIE,
        lang.tag()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

/// The query of a language choice.
#[derive(Deserialize)]
struct LangQuery {
    back: Option<String>,
}

/// The query of a still: the viewing's audit record.
#[derive(Deserialize)]
struct StillQuery {
    viewing: u64,
}

/// 429: the session has [`STREAMS_PER_SESSION`] live-update streams open already.
fn too_many_streams(console: &Console, headers: &HeaderMap) -> Response {
    console
        .metrics
        .refused
        .with_label_values(&["too_many_streams"])
        .inc();
    error_response(
        headers,
        &ApiError::new(
            429,
            "too_many_streams",
            format!("this session has {STREAMS_PER_SESSION} live pages open already; close one"),
        ),
    )
}

/// `GET /events/alarms`: the open alarms of every port the user watches
/// ([`crate::dto::QueuedAlarm`]s as JSON), now and after every change (checked each second).
/// Ends when the session or the console does.
async fn alarm_events(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let Some(viewer) = parts.extensions.get::<Viewer>().cloned() else {
        return error_response(&parts.headers, &Error::Unauthenticated.into());
    };
    let token = cookie(&parts.headers, SESSION_COOKIE).unwrap_or_default();
    let console = state.console.clone();
    let Some(slot) = state.streams.take(&token) else {
        return too_many_streams(&console, &parts.headers);
    };
    let guard = (
        SseClientGuard::new(console.metrics.sse_clients.clone()),
        slot,
    );
    let stopping = console.stopping();
    let stream = futures::stream::unfold(
        (
            None::<Vec<crate::dto::QueuedAlarm>>,
            console,
            viewer,
            token,
            stopping,
            guard,
        ),
        |(last, console, viewer, token, mut stopping, guard)| async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                if *stopping.borrow_and_update() || !console.auth.peek(&token, now_ms()) {
                    return None;
                }
                let queue = console.alarm_queue(&viewer);
                if last.as_ref() != Some(&queue) {
                    let event =
                        Event::default().data(serde_json::to_string(&queue).unwrap_or_default());
                    let state = (Some(queue), console, viewer, token, stopping, guard);
                    return Some((Ok::<_, std::convert::Infallible>(event), state));
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopping.changed() => return None,
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
        .into_response()
}

/// `/metrics` and `/healthz` for Prometheus, served on `metrics_listen` (never on the console's
/// own address, where `/metrics` is not found).
pub fn metrics_router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(console)
}

async fn metrics(State(console): State<Arc<Console>>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        console.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
