//! The Leptos application: the HTML shell, the router and the widgets pages share. Every page
//! renders on the server (`SsrMode::Async`, so a 404 status can still be set) and hydrates in
//! the browser.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::api::whoami;
use crate::dto::{ApiError, Role, Viewer, code_id};
use crate::i18n::{Lang, tr};
use crate::live::LiveAlarms;
use crate::pages::{
    AccountPage, AlarmQueue, AuditPage, ConsoleAuditPage, DeskPage, HallPage, LanePage, LoginPage,
    OverviewPage, PortPage, RolloutPage, UsersPage,
};

/// The tab's icon: a gate, inline (no file to serve).
const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='6' fill='%2314324a'/%3E%3Cpath d='M9 7v18M23 7v18' stroke='%23fff' stroke-width='3'/%3E%3Cpath d='M13 16h6' stroke='%23fff' stroke-width='3' stroke-linecap='round'/%3E%3C/svg%3E";

/// The stylesheet, inline (the site dir then holds only the wasm package).
const CSS: &str = r#"
:root { font-family: system-ui, sans-serif; color: #1b1f24; background: #f6f7f9; }
body { margin: 0; }
header.nav { display: flex; gap: 1rem; align-items: center; padding: .5rem 1rem; background: #14324a; color: #fff; }
header.nav a { color: #fff; }
header.nav form { margin-left: auto; }
header.nav .lang a { margin-left: .5rem; }
main { padding: 1rem; max-width: 1400px; }
table { border-collapse: collapse; background: #fff; }
td.reason { white-space: pre-wrap; overflow-wrap: anywhere; min-width: 12rem; max-width: 28rem; }
.alarm-queue { border-left: .4rem solid #b3261e; background: #fff; padding: .2rem .8rem; margin: 0 0 1rem; }
.alarm-queue[data-count="0"] { border-left-color: #2e7d32; }
.alarm-queue h2 { font-size: 1rem; margin: .3rem 0; display: flex; gap: 1rem; align-items: center; }
.alarm-queue ul { margin: .2rem 0; padding-left: 1.2rem; }
.alarm-queue li { margin: .2rem 0; }
.alarm-queue form { display: inline; margin-left: .5rem; }
button.mute { font-size: .8rem; }
.hall-alarms { background: #fff; border: 1px solid #d0d5dc; padding: .2rem .8rem; margin: .5rem 0; }
.hall-alarms h2 { font-size: 1rem; margin: .3rem 0; }
nav.tabs { display: flex; gap: .3rem; border-bottom: 2px solid #14324a; margin: .5rem 0 1rem; }
nav.tabs a { padding: .4rem .9rem; border: 1px solid #d0d5dc; border-bottom: none; border-radius: 4px 4px 0 0; background: #e3e7ec; color: #14324a; text-decoration: none; }
nav.tabs a[aria-current="page"] { background: #14324a; color: #fff; font-weight: 600; }
.trend .p95-dot { fill: #b26b00; }
fieldset.risk-stop { border-color: #2e7d32; }
fieldset.risk-restore { border-color: #9aa5b1; }
fieldset.risk-opens { border-color: #b26b00; background: #fff9ef; }
fieldset.risk-opens button { border: 2px solid #b26b00; }
td, th { border: 1px solid #d0d5dc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
.error { background: #fde8e8; border: 2px solid #c0262d; padding: .5rem; color: #7a1015; }
.ok { background: #e6f4ea; border: 1px solid #2e7d32; padding: .5rem; }
.pending { background: #fff7e0; border: 1px solid #b7791f; padding: .5rem; }
.banner-break { background: #c0262d; color: #fff; font-size: 1.4rem; padding: 1rem; font-weight: bold; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .4rem; }
.cell { background: #fff; border: 2px solid #9aa5b1; border-left-width: .5rem; border-radius: 4px; padding: .3rem; font-size: .8rem; }
.sev-word { font-weight: 600; }
.sev-fault { border-color: #b3261e; background: #fde8e8; }
.sev-fault .sev-word { color: #8c1d18; }
.sev-held { border-color: #b26b00; background: #fff4e0; }
.sev-held .sev-word { color: #7a4a00; }
.sev-passage { border-color: #1f5fa8; background: #e8f0fb; }
.sev-passage .sev-word { color: #174a85; }
.sev-idle { border-color: #9aa5b1; }
.cell.sev-not_deployed { border-color: #e1e5ea; color: #8a94a0; font-size: .7rem; opacity: .7; }
.legend { display: flex; flex-wrap: wrap; gap: .4rem 1rem; list-style: none; padding: 0; margin: .5rem 0; font-size: .85rem; }
.legend .swatch { display: inline-block; width: .9rem; height: .9rem; margin-right: .3rem; vertical-align: middle; border: 2px solid; border-left-width: .4rem; border-radius: 2px; }
.legend .sev-fault .swatch { border-color: #b3261e; background: #fde8e8; }
.legend .sev-held .swatch { border-color: #b26b00; background: #fff4e0; }
.legend .sev-passage .swatch { border-color: #1f5fa8; background: #e8f0fb; }
.legend .sev-idle .swatch { border-color: #9aa5b1; background: #fff; }
.legend .sev-not_deployed .swatch { border-color: #e1e5ea; background: #fff; }
.cell .alarmed { color: #c0262d; font-weight: bold; }
.gate { display: inline-block; padding: 0 .2rem; margin-right: .2rem; border-radius: 3px; background: #e3e7ec; }
.gate[data-gate-state="open"] { background: #c8e6c9; }
.gate[data-gate-state="locked"], .gate[data-gate-state="fault"] { background: #f8bbbb; }
form.inline { display: inline; }
fieldset { margin: .5rem 0; background: #fff; }
label { display: block; margin: .2rem 0; }
textarea { width: 30rem; max-width: 100%; }
.link[data-link="lost"] { color: #c0262d; }
.muted { color: #6b7785; }
.trend { display: flex; flex-wrap: wrap; gap: .2rem 1.5rem; align-items: flex-end; margin: .5rem 0; }
.trend h2 { width: 100%; font-size: 1rem; margin: .2rem 0; }
.trend figure { margin: 0; }
.trend svg { background: #fff; border: 1px solid #d0d5dc; display: block; }
.trend .bars rect { fill: #1f5fa8; }
.trend .p95 { fill: none; stroke: #b26b00; stroke-width: 2; }
.trend .axis { stroke: #9aa5b1; }
.trend figcaption { font-size: .85rem; }
.stills { display: flex; flex-wrap: wrap; gap: .5rem; }
figure.still { margin: 0; background: #fff; border: 1px solid #d0d5dc; padding: .3rem; }
figure.still img { display: block; background: #1b1f24; max-width: 100%; height: auto; }
"#;

/// The HTML document around the app (server side).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang=Lang::current().tag()>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href=FAVICON />
                <style nonce=use_nonce()>{CSS}</style>
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The Content-Security-Policy of a page: its own scripts only — the hydration script by this
/// response's nonce (Leptos puts it on every inline script and style it writes), the wasm
/// package it loads (`'strict-dynamic'`, `'wasm-unsafe-eval'`) —, no inline script or style
/// without the nonce, no framing, forms and connections to the console only. The server's
/// header middleware makes the nonce and gives it to the render (`server::security_headers`).
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; \
         style-src 'nonce-{nonce}'; img-src 'self' data:; connect-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The signed-in user, loaded once per page load and shared through context.
pub type ViewerResource = Resource<Result<Option<Viewer>, ApiError>>;

/// The application: navigation and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let viewer: ViewerResource = Resource::new(|| (), |_| whoami());
    provide_context(viewer);
    provide_context(LiveAlarms::new());
    view! {
        <Title text="Clearway console" />
        <Router>
            <Nav />
            <main>
                <AlarmQueue />
                <Routes fallback=|| view! { <NotFound what="page".to_string() /> }>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                    <Route path=path!("/") view=OverviewPage ssr=SsrMode::Async />
                    <Route path=path!("/port/:port") view=PortPage ssr=SsrMode::Async />
                    <Route path=path!("/port/:port/hall/:hall") view=HallPage ssr=SsrMode::Async />
                    <Route path=path!("/lane/:port/:hall/:n") view=LanePage ssr=SsrMode::Async />
                    <Route path=path!("/desk") view=DeskPage ssr=SsrMode::Async />
                    <Route path=path!("/rollout") view=RolloutPage ssr=SsrMode::Async />
                    <Route path=path!("/audit/:port") view=AuditPage ssr=SsrMode::Async />
                    <Route path=path!("/users") view=UsersPage ssr=SsrMode::Async />
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                    <Route path=path!("/console/audit") view=ConsoleAuditPage ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}

/// The bar at the top: who is signed in, the pages their role has, sign out.
#[component]
fn Nav() -> impl IntoView {
    let viewer = expect_context::<ViewerResource>();
    let lang = Lang::current();
    view! {
        <header class="nav">
            <strong>{tr(lang, "console-name")}</strong>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match viewer.await {
                        Ok(Some(v)) => {
                            let mut links = match v.role {
                                _ if v.must_change => vec![],
                                Role::Supervisor => vec![("/", tr(lang, "nav-ports"))],
                                Role::ServiceDesk => vec![("/desk", tr(lang, "nav-desk"))],
                                Role::PortAdmin => vec![
                                    ("/", tr(lang, "nav-ports")),
                                    ("/rollout", tr(lang, "nav-rollout")),
                                    ("/users", tr(lang, "nav-users")),
                                    ("/console/audit", tr(lang, "nav-console-audit")),
                                ],
                            };
                            links.push(("/account", tr(lang, "nav-account")));
                            view! {
                                {links
                                    .into_iter()
                                    .map(|(href, text)| view! { <A href=href>{text}</A> })
                                    .collect_view()}
                                <span data-test="whoami" data-role=v.role.as_str()>
                                    {format!("{} ({})", v.name, tr(lang, &code_id("role", v.role.as_str())))}
                                </span>
                                <form method="post" action="/auth/logout">
                                    <input type="hidden" name="csrf" value=v.csrf.clone() />
                                    <button type="submit" data-test="logout">
                                        {tr(lang, "sign-out")}
                                    </button>
                                </form>
                            }
                                .into_any()
                        }
                        _ => ().into_any(),
                    }
                })}
            </Suspense>
            <LanguageSwitch lang=lang />
        </header>
    }
}

/// Links to the other languages; the server keeps the choice in a cookie and sends the user back
/// to the page they were on.
#[component]
fn LanguageSwitch(lang: Lang) -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    view! {
        <span class="lang" data-test="language" data-lang=lang.tag()>
            {Lang::ALL
                .into_iter()
                .filter(|l| *l != lang)
                .map(|l| {
                    let href = move || {
                        let path = location.pathname.get();
                        let search = location.search.get();
                        let search = search.trim_start_matches('?');
                        let here = if search.is_empty() {
                            path
                        } else {
                            format!("{path}?{search}")
                        };
                        format!("/lang/{}?back={}", l.tag(), urlencode(&here))
                    };
                    view! {
                        <a href=href rel="external" data-test=format!("language-{}", l.tag()) lang=l.tag()>
                            {l.name()}
                        </a>
                    }
                })
                .collect_view()}
        </span>
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A 404 page for an unknown path (the server sets the status).
#[component]
pub fn NotFound(what: String) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
        r.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    let lang = Lang::current();
    view! {
        <h1 data-test="not-found">{tr(lang, "not-found")}</h1>
        <p class="error" data-test="error" data-code="not_found">
            {crate::i18n::tr_with(lang, "not-found-what", &[("what", what.into())])}
        </p>
        <p>
            <A href="/">{tr(lang, "back-to-console")}</A>
        </p>
    }
}

/// An error from the server, with a way on.
#[component]
pub fn ErrorBox(error: ApiError) -> impl IntoView {
    let signin = matches!(error.code.as_str(), "unauthenticated" | "session_expired");
    let lang = Lang::current();
    view! {
        <div class="error" data-test="error" data-code=error.code.clone() data-status=error.status>
            <strong>
                {match error.status {
                    404 => tr(lang, "err-404"),
                    403 => tr(lang, "err-403"),
                    401 => tr(lang, "err-401"),
                    413 => tr(lang, "err-413"),
                    422 => tr(lang, "err-422"),
                    409 => tr(lang, "err-409"),
                    502 => tr(lang, "err-502"),
                    _ => tr(lang, "err-other"),
                }}
                " "
            </strong>
            {error.message.clone()}
            {signin.then(|| view! { " " <a href="/login" data-test="login-link">{tr(lang, "sign-in-again")}</a> })}
        </div>
    }
}

/// The outcome of an action form: nothing yet, a pending note, the error, or `ok`.
pub fn action_result<T, V>(
    value: Option<Result<T, ApiError>>,
    pending: bool,
    test: &'static str,
    ok: impl FnOnce(T) -> V,
) -> AnyView
where
    V: IntoView + 'static,
{
    if pending {
        return view! {
            <p class="pending" data-test=test data-result="sending">
                {tr(Lang::current(), "sending")}
            </p>
        }
        .into_any();
    }
    match value {
        None => ().into_any(),
        Some(Ok(v)) => {
            view! { <div class="ok" data-test=test data-result="ok">{ok(v)}</div> }.into_any()
        }
        Some(Err(e)) => view! {
            <div data-test=test data-result="error">
                <ErrorBox error=e />
            </div>
        }
        .into_any(),
    }
}

/// The hidden CSRF field every form carries.
#[component]
pub fn Csrf(viewer: Viewer) -> impl IntoView {
    view! { <input type="hidden" name="csrf" value=viewer.csrf /> }
}

/// The reason field every state-changing form carries.
#[component]
pub fn Reason(test: &'static str) -> impl IntoView {
    view! {
        <label>
            {tr(Lang::current(), "reason-required")}
            " "
            <textarea name="reason" required maxlength="500" rows="2" data-test=test></textarea>
        </label>
    }
}
