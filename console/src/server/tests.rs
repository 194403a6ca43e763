//! The HTTP layer without a browser: login with its CSRF cookie, cookie attributes, sessions
//! ending, CSRF on state-changing calls, the body limit, 404s, SSE and `/metrics`, driven
//! through the router with `tower::ServiceExt::oneshot`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use tower::ServiceExt;

use super::*;
use crate::testing::{console, port_config};

struct Http {
    _dir: tempfile::TempDir,
    app: Router,
    console: Arc<crate::service::Console>,
}

const PW: &str = "a long enough password";

/// These tests run one at a time: run concurrently in one process, one of them now and then
/// never finished (seen about one run in four, before and after the least-privilege work; the
/// threads were all parked, none in our code). Serialising them costs well under a second.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn app() -> Http {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = BTreeMap::from([("1".to_string(), "127.0.0.1:9".to_string())]);
    let c = console(
        dir.path(),
        vec![port_config("hengqin", &dir.path().join("no-bundle"), nodes)],
    );
    c.auth
        .add_user(
            "ana",
            crate::dto::Role::Supervisor,
            &["hengqin".into()],
            PW,
            0,
        )
        .expect("user");
    c.auth
        .add_user("bo", crate::dto::Role::ServiceDesk, &[], PW, 0)
        .expect("user");
    let site = dir.path().join("site");
    let console = Arc::new(c);
    let app = router(console.clone(), &site);
    Http {
        _dir: dir,
        app,
        console,
    }
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value a `Set-Cookie` of this answer gives `name`.
    fn cookie_value(&self, name: &str) -> Option<String> {
        let cookie = self.set_cookie(name)?;
        let pair = cookie.split(';').next()?;
        pair.split_once('=').map(|(_, v)| v.to_string())
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn api_error(&self) -> ApiError {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// `router`'s answer to `req`, its body read whole.
async fn answer(router: Router, req: Request<Body>) -> Answer {
    let res = router.oneshot(req).await.expect("answer");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 10 << 20)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl Http {
    async fn send(&self, req: Request<Body>) -> Answer {
        answer(self.app.clone(), req).await
    }

    async fn page(&self, path: &str, session: Option<&str>) -> Answer {
        let mut b = Request::get(path).header(ACCEPT, "text/html");
        if let Some(s) = session {
            b = b.header(COOKIE, format!("{SESSION_COOKIE}={s}"));
        }
        self.send(b.body(Body::empty()).expect("request")).await
    }

    async fn post(&self, path: &str, session: Option<&str>, body: String, html: bool) -> Answer {
        let mut b = Request::post(path)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(
                ACCEPT,
                if html {
                    "text/html"
                } else {
                    "application/json"
                },
            );
        if let Some(s) = session {
            b = b.header(COOKIE, format!("{SESSION_COOKIE}={s}"));
        }
        self.send(b.body(Body::from(body)).expect("request")).await
    }

    /// A GET of a server function (JSON) with a session.
    async fn call(&self, path: &str, session: &str) -> Answer {
        let req = Request::get(path)
            .header(COOKIE, format!("{SESSION_COOKIE}={session}"))
            .body(Body::empty())
            .expect("request");
        self.send(req).await
    }

    /// A scrape of `/metrics` on the metrics listener's router.
    async fn metrics(&self) -> Answer {
        let req = Request::get("/metrics")
            .body(Body::empty())
            .expect("request");
        answer(metrics_router(self.console.clone()), req).await
    }

    /// Signs in through the login page; returns (session token, CSRF token).
    async fn login(&self, name: &str, password: &str) -> Result<(String, String), Answer> {
        let page = self.page("/login", None).await;
        assert_eq!(page.status, StatusCode::OK);
        let cookie = page.set_cookie(LOGIN_COOKIE).expect("login cookie");
        let token = cookie
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_string())
            .expect("token");
        assert!(
            page.body.contains(&format!("value=\"{token}\"")),
            "the form carries the cookie's token"
        );
        let req = Request::post("/auth/login")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(COOKIE, format!("{LOGIN_COOKIE}={token}"))
            .body(Body::from(format!(
                "csrf={token}&name={name}&password={}",
                password.replace(' ', "+")
            )))
            .expect("request");
        let a = self.send(req).await;
        let Some(session) = a.set_cookie(SESSION_COOKIE) else {
            return Err(a);
        };
        let value = session
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_string())
            .expect("session");
        // Every page carries the token; the account page is one every session may see (also
        // one that must change its password first).
        let home = self.page("/account", Some(&value)).await;
        let csrf = home
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("every page carries the CSRF token")
            .to_string();
        Ok((value, csrf))
    }
}

#[tokio::test]
async fn login_sets_a_secure_http_only_strict_session_cookie() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let page = h.page("/login", None).await;
    let login = page.set_cookie(LOGIN_COOKIE).expect("login cookie");
    assert!(
        login.ends_with("; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=3600"),
        "{login}"
    );
    assert!(page.body.contains("data-test=\"login-form\""));

    // Without the login cookie, the form is refused.
    let a = h
        .post(
            "/auth/login",
            None,
            format!("csrf=x&name=ana&password={PW}"),
            true,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("data-code=\"csrf\""), "{}", a.body);

    // Wrong password: back to the form with the reason.
    let wrong = h
        .login("ana", "not the password")
        .await
        .expect_err("refused");
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    assert_eq!(wrong.location(), "/login?error=invalid_credentials");
    let shown = h.page(wrong.location(), None).await;
    assert!(shown.body.contains("data-code=\"invalid_credentials\""));
    assert!(shown.body.contains("Wrong user name or password."));

    // Right password.
    let (session, csrf) = h.login("ana", PW).await.expect("signed in");
    assert_eq!(session.len(), 64);
    assert_eq!(csrf.len(), 64);
    let home = h.page("/", Some(&session)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("data-test=\"port-row\""),
        "{}",
        home.body
    );
    assert!(home.body.contains("data-role=\"supervisor\""));
}

#[tokio::test]
async fn the_session_cookie_has_every_attribute() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let page = h.page("/login", None).await;
    let token = page.cookie_value(LOGIN_COOKIE).expect("token");
    let req = Request::post("/auth/login")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, format!("{LOGIN_COOKIE}={token}"))
        .body(Body::from(format!(
            "csrf={token}&name=ana&password={}",
            PW.replace(' ', "+")
        )))
        .expect("request");
    let a = h.send(req).await;
    assert_eq!(a.location(), "/");
    let cookie = a.set_cookie(SESSION_COOKIE).expect("session cookie");
    assert!(
        cookie.ends_with("; HttpOnly; Secure; SameSite=Strict; Path=/"),
        "{cookie}"
    );
}

#[tokio::test]
async fn lock_out_after_five_failures() {
    let _serial = SERIAL.lock().await;
    let h = app();
    for _ in 0..5 {
        let a = h
            .login("ana", "wrong wrong wrong")
            .await
            .expect_err("wrong");
        assert_eq!(a.location(), "/login?error=invalid_credentials");
    }
    let a = h
        .login("ana", "wrong wrong wrong")
        .await
        .expect_err("locked");
    assert_eq!(a.location(), "/login?error=locked_out");
    let a = h.login("ana", PW).await.expect_err("still locked");
    assert_eq!(a.location(), "/login?error=locked_out");
    let shown = h.page("/login?error=locked_out", None).await;
    assert!(
        shown.body.contains("signing in is paused"),
        "{}",
        shown.body
    );
}

#[tokio::test]
async fn ended_sessions_send_pages_to_the_login_and_calls_get_401() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let anonymous = h.page("/port/hengqin", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location(), "/login");
    let (session, csrf) = h.login("ana", PW).await.expect("signed in");
    let out = h
        .post("/auth/logout", Some(&session), format!("csrf={csrf}"), true)
        .await;
    assert_eq!(out.location(), "/login");
    let expired = h.page("/port/hengqin", Some(&session)).await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert_eq!(expired.location(), "/login?expired=1");
    let page = h.page("/login?expired=1", None).await;
    assert!(page.body.contains("data-code=\"session_expired\""));
    let call = h
        .post(
            "/api/lane_override",
            Some(&session),
            format!("csrf={csrf}&port=hengqin&channel=hengqin/passenger/1&action=release&reason=r"),
            false,
        )
        .await;
    assert_eq!(call.status, StatusCode::UNAUTHORIZED);
    assert_eq!(call.api_error().code, "session_expired");
    let forged = h.page("/", Some("0123")).await;
    assert_eq!(forged.location(), "/login?expired=1");
}

#[tokio::test]
async fn state_changing_calls_need_the_csrf_token() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let (session, csrf) = h.login("ana", PW).await.expect("signed in");
    let body = |token: &str, reason: &str| {
        format!(
            "csrf={token}&port=hengqin&channel=hengqin/passenger/1&action=gate1_open&reason={reason}"
        )
    };
    let cases = [
        (
            "missing",
            body("", "stuck").replace("csrf=&", ""),
            403,
            "csrf",
        ),
        ("empty", body("", "stuck"), 403, "csrf"),
        ("wrong", body(&"0".repeat(64), "stuck"), 403, "csrf"),
        ("right, no reason", body(&csrf, ""), 422, "reason_required"),
        ("right", body(&csrf, "stuck"), 502, "port_unreachable"),
    ];
    for (what, b, status, code) in cases {
        let a = h.post("/api/lane_override", Some(&session), b, false).await;
        assert_eq!(a.status.as_u16(), status, "{what}: {}", a.body);
        assert_eq!(a.api_error().code, code, "{what}");
    }
    // The token in a header works too; a plain form post gets an HTML page.
    let req = Request::post("/api/lane_override")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, format!("{SESSION_COOKIE}={session}"))
        .header("x-csrf-token", &csrf)
        .body(Body::from(
            "csrf=&port=hengqin&channel=hengqin/passenger/1&action=gate1_open&reason=",
        ))
        .expect("request");
    let a = h.send(req).await;
    assert_eq!(
        a.status.as_u16(),
        403,
        "the guard passes, the server function re-checks: {}",
        a.body
    );
    let html = h
        .post("/auth/logout", Some(&session), String::new(), true)
        .await;
    assert_eq!(html.status, StatusCode::FORBIDDEN);
    assert!(html.body.contains("CSRF"), "{}", html.body);
    // A service-desk officer with a valid token is still refused an override.
    let (desk, desk_csrf) = h.login("bo", PW).await.expect("signed in");
    let a = h
        .post(
            "/api/lane_override",
            Some(&desk),
            body(&desk_csrf, "stuck"),
            false,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.api_error().code, "forbidden");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let (session, csrf) = h.login("ana", PW).await.expect("signed in");
    let big = format!("csrf={csrf}&reason={}", "x".repeat(MAX_BODY_BYTES));
    let a = h
        .post("/api/lane_override", Some(&session), big.clone(), false)
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.api_error().code, "too_large");
    // Without a Content-Length (streamed), the limit still holds.
    let stream = futures::stream::iter(
        big.into_bytes()
            .chunks(4096)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let req = Request::post("/auth/login")
        .header(ACCEPT, "text/html")
        .body(Body::from_stream(stream))
        .expect("request");
    let a = h.send(req).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(a.body.contains("larger than 64 KiB"), "{}", a.body);
}

#[tokio::test]
async fn unknown_ports_lanes_and_pages_are_404() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let (session, _) = h.login("ana", PW).await.expect("signed in");
    for (path, needle) in [
        (
            "/lane/hengqin/passenger/99",
            "port hengqin has no lane passenger/99",
        ),
        (
            "/lane/hengqin/departure/1",
            "port hengqin has no lane departure/1",
        ),
        ("/port/nowhere", "there is no port"),
        ("/port/hengqin/hall/departure", "There is no such hall"),
        ("/no/such/page", "There is no such page."),
    ] {
        let a = h.page(path, Some(&session)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert!(a.body.contains("data-code=\"not_found\""), "{path}");
        assert!(a.body.contains(needle), "{path}: {}", a.body);
    }
    let ok = h.page("/lane/hengqin/passenger/4", Some(&session)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.body.contains("data-test=\"override-gate1_open\""));
}

#[tokio::test]
async fn live_updates_need_a_session_that_may_watch_the_port() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let get = |session: Option<String>| {
        let mut b = Request::get("/events/port/hengqin");
        if let Some(s) = session {
            b = b.header(COOKIE, format!("{SESSION_COOKIE}={s}"));
        }
        b.body(Body::empty()).expect("request")
    };
    let a = h.send(get(None)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let (desk, _) = h.login("bo", PW).await.expect("desk");
    let a = h.send(get(Some(desk))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    let (sup, _) = h.login("ana", PW).await.expect("supervisor");
    let res = h.app.clone().oneshot(get(Some(sup))).await.expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut body = res.into_body().into_data_stream();
    let first = body.next().await.expect("an event").expect("bytes");
    let text = String::from_utf8_lossy(&first);
    let json = text.trim().strip_prefix("data: ").expect("a data line");
    let snap: crate::dto::PortSnapshot = serde_json::from_str(json).expect("a snapshot");
    assert_eq!(snap.port, "hengqin");
    assert_eq!(snap.halls.len(), 2);
    let metrics = h.metrics().await;
    assert!(
        metrics.body.contains("clearway_console_sse_clients 1"),
        "{}",
        metrics.body
    );
    // The console stops (SIGINT): the stream ends, so the connection can close and the
    // graceful shutdown completes.
    h.console.stop();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
        .await
        .expect("the stream ends when the console stops");
    assert!(end.is_none(), "no more events after the stop: {end:?}");
    drop(body);
    let metrics = h.metrics().await;
    assert!(metrics.body.contains("clearway_console_sse_clients 0"));
    assert!(
        metrics
            .body
            .contains("clearway_console_logins_total{result=\"ok\"} 2")
    );
}

#[tokio::test]
async fn the_language_is_kept_in_a_cookie_and_only_local_pages_are_returned_to() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let cases = [
        (
            "/lang/zh-Hant?back=/port/hengqin",
            StatusCode::SEE_OTHER,
            Some("/port/hengqin"),
        ),
        (
            "/lang/en?back=%2Flane%2Fhengqin%2Fpassenger%2F1",
            StatusCode::SEE_OTHER,
            Some("/lane/hengqin/passenger/1"),
        ),
        (
            "/lang/zh-hant?back=//evil.example/",
            StatusCode::SEE_OTHER,
            Some("/"),
        ),
        (
            "/lang/zh-Hant?back=https://evil.example/",
            StatusCode::SEE_OTHER,
            Some("/"),
        ),
        (
            "/lang/zh-Hant?back=/\\evil.example",
            StatusCode::SEE_OTHER,
            Some("/"),
        ),
        ("/lang/zh-Hant", StatusCode::SEE_OTHER, Some("/")),
        ("/lang/fr?back=/", StatusCode::NOT_FOUND, None),
    ];
    for (path, status, location) in cases {
        let a = h.page(path, None).await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
        let got = a.headers.get(LOCATION).and_then(|v| v.to_str().ok());
        assert_eq!(got, location, "{path}");
        if status == StatusCode::SEE_OTHER {
            let c = a
                .set_cookie(crate::i18n::LANG_COOKIE)
                .expect("the language cookie");
            assert!(c.contains("SameSite=Strict") && c.contains("Path=/"), "{c}");
        }
    }
    // The page is then rendered in that language, <html lang> saying which.
    let page = h
        .send(
            Request::get("/login")
                .header(ACCEPT, "text/html")
                .header(COOKIE, format!("{}=zh-Hant", crate::i18n::LANG_COOKIE))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert!(
        page.body.contains("<html lang=\"zh-Hant\""),
        "{}",
        &page.body[..200.min(page.body.len())]
    );
    assert!(page.body.contains("登入"), "the login page in Chinese");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_pages_a_nonce_policy() {
    let _serial = SERIAL.lock().await;
    let http = app();
    let header = |a: &Answer, name: &str| {
        a.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let page = http.page("/login", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = header(&page, "content-security-policy");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_else(|| panic!("a nonce in the page's policy: {csp}"));
    assert!(nonce.len() >= 16, "{nonce}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Every inline script and style the page holds carries this response's nonce.
    for tag in ["<script", "<style"] {
        for (i, part) in page.body.split(tag).enumerate().skip(1) {
            let open = part.split('>').next().unwrap_or_default();
            if open.contains("src=") {
                continue;
            }
            assert!(
                open.contains(&format!("nonce=\"{nonce}\"")),
                "{tag} #{i} without the nonce: {tag}{open}>"
            );
        }
    }
    let again = http.page("/login", None).await;
    assert_ne!(
        header(&again, "content-security-policy"),
        csp,
        "a fresh nonce per response"
    );

    // Answers that are not pages: nothing runs, nothing frames them; nothing is stored.
    let refused = http.post("/auth/logout", None, String::new(), false).await;
    let missing = http.page("/no/such/page", None).await;
    for a in [&page, &refused, &missing] {
        assert_eq!(header(a, "x-content-type-options"), "nosniff");
        assert_eq!(header(a, "referrer-policy"), "no-referrer");
        assert_eq!(header(a, "x-frame-options"), "DENY");
        assert!(header(a, "strict-transport-security").starts_with("max-age="));
        assert_eq!(header(a, "cache-control"), "no-store", "{}", a.status);
        assert!(
            header(a, "content-security-policy").contains("frame-ancestors 'none'"),
            "{}",
            a.status
        );
    }
    assert_eq!(header(&refused, "content-security-policy"), DEFAULT_CSP);
}

#[tokio::test]
async fn metrics_are_not_served_on_the_consoles_own_address() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let scrape = h.metrics().await;
    assert_eq!(scrape.status, StatusCode::OK);
    assert!(scrape.body.contains("clearway_console_"), "{}", scrape.body);
    let here = h
        .send(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_ne!(here.status, StatusCode::OK, "{}", here.body);
    assert!(!here.body.contains("clearway_console_"), "{}", here.body);
    let (session, _) = h.login("ana", PW).await.expect("supervisor");
    let signed_in = h.page("/metrics", Some(&session)).await;
    assert!(
        !signed_in.body.contains("clearway_console_sse_clients"),
        "not even for a signed-in user"
    );
}

#[tokio::test]
async fn a_login_flood_from_one_address_does_not_keep_another_user_out() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let page = h.page("/login", None).await;
    let token = page.cookie_value(LOGIN_COOKIE).expect("login token");
    let attempt = |from: [u8; 4], name: String, password: &str| {
        let mut req = Request::post("/auth/login")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(COOKIE, format!("{LOGIN_COOKIE}={token}"))
            .body(Body::from(format!(
                "csrf={token}&name={name}&password={}",
                password.replace(' ', "+")
            )))
            .expect("request");
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                from, 50000,
            ))));
        req
    };
    // 200 guesses, each at another name, from one address: after its free ones the address
    // backs off, and those are refused before any password is hashed.
    let hashed_before = h.console.auth.hashes();
    let mut flood = Vec::new();
    for i in 0..200 {
        let guess = attempt([10, 9, 9, 9], format!("guess{i}"), "a wrong password");
        flood.push(h.send(guess).await);
    }
    let paused = flood
        .iter()
        .filter(|a| a.location() == "/login?error=locked_out")
        .count();
    assert!(
        paused >= 200 - crate::throttle::CLIENT_FREE as usize,
        "{paused} of 200 paused"
    );
    assert_eq!(
        h.console.auth.hashes() - hashed_before,
        u64::from(crate::throttle::CLIENT_FREE),
        "only the address's free attempts cost a password hash"
    );
    // A supervisor at another desk signs in: the flood took neither her account's attempts nor
    // her address's.
    let a = h.send(attempt([10, 0, 0, 1], "ana".into(), PW)).await;
    assert!(a.set_cookie(SESSION_COOKIE).is_some(), "{a:?}");
}

#[tokio::test]
async fn an_admin_resets_a_password_the_user_must_change_before_anything_else() {
    let _serial = SERIAL.lock().await;
    let h = app();
    h.console
        .auth
        .add_user("root", crate::dto::Role::PortAdmin, &[], PW, 0)
        .expect("admin");
    let (root, root_csrf) = h.login("root", PW).await.expect("admin signed in");
    let (ana_old, _) = h.login("ana", PW).await.expect("ana signed in");
    let manage = |action: &str, reason: &str| {
        format!("csrf={root_csrf}&name=ana&action={action}&reason={reason}")
    };
    let a = h
        .post(
            "/api/manage_user",
            Some(&root),
            manage("reset_password", ""),
            false,
        )
        .await;
    assert_eq!(a.api_error().code, "reason_required", "{}", a.body);
    let a = h
        .post(
            "/api/manage_user",
            Some(&root),
            manage("reset_password", "forgot+it"),
            false,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let m: crate::dto::ManagedUser = serde_json::from_str(&a.body).expect("answer");
    let generated = m.generated_password.expect("a generated password");
    assert_eq!(
        h.page("/", Some(&ana_old)).await.status,
        StatusCode::SEE_OTHER,
        "the reset ended ana's session"
    );
    // Signed in with the generated password, ana can do nothing but change it.
    let (ana, csrf) = h
        .login("ana", &generated)
        .await
        .expect("generated password");
    let home = h.page("/", Some(&ana)).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/account");
    let call = h.call("/api/ports_overview", &ana).await;
    assert_eq!(call.status, StatusCode::FORBIDDEN);
    assert_eq!(call.api_error().code, "password_change_required");
    let change = |new: &str| {
        format!(
            "csrf={csrf}&current={generated}&new={}&repeat={}",
            new.replace(' ', "+"),
            new.replace(' ', "+")
        )
    };
    let a = h
        .post(
            "/api/change_password",
            Some(&ana),
            change("too short"),
            false,
        )
        .await;
    assert_eq!(a.api_error().code, "invalid", "{}", a.body);
    let a = h
        .post(
            "/api/change_password",
            Some(&ana),
            change("ana's own new password"),
            false,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(h.page("/", Some(&ana)).await.status, StatusCode::OK);
    // Disabled: no session, and sign-in says so only to whoever has the password.
    let a = h
        .post(
            "/api/manage_user",
            Some(&root),
            manage("disable", "left+the+team"),
            false,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(h.page("/", Some(&ana)).await.status, StatusCode::SEE_OTHER);
    let refused = h
        .login("ana", "ana's own new password")
        .await
        .expect_err("disabled");
    assert_eq!(refused.location(), "/login?error=account_disabled");
    // Every step is in the console's audit log, the chain intact.
    let log = h.call("/api/console_audit", &root).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    let log: crate::dto::ConsoleAuditView = serde_json::from_str(&log.body).expect("log");
    assert_eq!(log.break_at, None);
    let steps: Vec<String> = log
        .records
        .iter()
        .map(|r| format!("{} {} {} {}", r.actor, r.action, r.target, r.reason))
        .collect();
    assert_eq!(
        steps,
        [
            "root user.reset_password ana forgot it",
            "ana user.change_password ana by the user",
            "root user.disable ana left the team",
        ]
    );
    // The log is the port admins'.
    let (bo, _) = h.login("bo", PW).await.expect("bo");
    let a = h.call("/api/console_audit", &bo).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_session_holds_a_bounded_number_of_live_streams() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let (sup, _) = h.login("ana", PW).await.expect("supervisor");
    let (other, _) = h.login("ana", PW).await.expect("a second session");
    let get = |session: &str, path: &str| {
        Request::get(path)
            .header(COOKIE, format!("{SESSION_COOKIE}={session}"))
            .body(Body::empty())
            .expect("request")
    };
    let mut open = Vec::new();
    for i in 0..STREAMS_PER_SESSION {
        let path = if i % 2 == 0 {
            "/events/port/hengqin"
        } else {
            "/events/alarms"
        };
        let res = h
            .app
            .clone()
            .oneshot(get(&sup, path))
            .await
            .expect("answer");
        assert_eq!(res.status(), StatusCode::OK, "stream {i}");
        open.push(res);
    }
    for path in ["/events/port/hengqin", "/events/alarms"] {
        let a = h.send(get(&sup, path)).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert_eq!(a.api_error().code, "too_many_streams");
    }
    // Another session of the same user has its own.
    let res = h
        .app
        .clone()
        .oneshot(get(&other, "/events/alarms"))
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    // Closing one frees its slot.
    drop(open.pop());
    let res = h
        .app
        .clone()
        .oneshot(get(&sup, "/events/alarms"))
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_never_arrives_is_given_up_on() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let (sup, csrf) = h.login("ana", PW).await.expect("supervisor");
    // A body stream that never ends: the guard stops waiting (BODY_TIMEOUT, here on a paused
    // clock) and answers 408.
    let never = futures::stream::pending::<Result<Bytes, std::io::Error>>();
    let req = Request::post("/api/lane_override")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, format!("{SESSION_COOKIE}={sup}"))
        .header("x-csrf-token", &csrf)
        .body(Body::from_stream(never))
        .expect("request");
    tokio::time::pause();
    let a = h.send(req).await;
    tokio::time::resume();
    assert_eq!(a.status.as_u16(), 408, "{}", a.body);
    assert_eq!(a.api_error().code, "body_timeout");
}

/// The page's own files are served whatever page came before them on the same thread: a
/// refused page (403) or a missing one (404) must not lend its status to the next file (Leptos'
/// file fallback looked up the status of a render still current on the worker thread, and a
/// desk officer's browser once got its `.wasm` with a 403).
#[tokio::test]
async fn the_package_files_are_served_after_a_refused_page() {
    let _serial = SERIAL.lock().await;
    let h = app();
    let pkg = h._dir.path().join("site").join("pkg");
    std::fs::create_dir_all(&pkg).expect("pkg dir");
    std::fs::write(pkg.join("clearway_console_bg.wasm"), b"\0asm\x01\0\0\0").expect("wasm");
    std::fs::write(pkg.join("clearway_console.js"), b"export default 1;").expect("js");
    let (desk, _) = h.login("bo", PW).await.expect("signed in");
    for round in 0..3 {
        let refused = h.page("/lane/hengqin/passenger/4", Some(&desk)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "round {round}");
        let missing = h.page("/no/such/page", Some(&desk)).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "round {round}");
        // What the worker thread may be left with: a render's owner, current, holding a 403.
        let leaked = leptos::prelude::Owner::new();
        leaked.set();
        let options = leptos_axum::ResponseOptions::default();
        options.set_status(StatusCode::FORBIDDEN);
        leptos::prelude::provide_context(options);
        for file in ["clearway_console_bg.wasm", "clearway_console.js"] {
            let a = h.page(&format!("/pkg/{file}"), None).await;
            assert_eq!(a.status, StatusCode::OK, "round {round}: /pkg/{file}");
        }
        leaked.unset();
        let gone = h.page("/pkg/no_such_file.js", None).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "round {round}");
    }
}
