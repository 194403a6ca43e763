//! The supervisors' console (issue 5): a Leptos 0.8 application served by axum, rendered on
//! the server and hydrated in the browser (wasm32, feature `hydrate`).
//!
//! # Module map
//!
//! Shared by server and browser (wasm-safe):
//! * [`dto`]: every type that crosses a boundary — node ↔ console (mapped by `port_api`) and
//!   server ↔ browser (server function answers, SSE payloads). Plain serde data.
//! * [`app`]: the HTML shell, router, navigation and shared widgets; [`pages`]: one module per
//!   page area; [`live`]: the browser's `EventSource`s (`/events/port/{id}`, `/events/alarms`)
//!   feeding signals; [`i18n`]: the pages' words in English and Traditional Chinese (Fluent);
//!   [`trend`]: each hall's last hour, minute by minute (the console's own ring buffer).
//! * [`api`]: server functions (`/api/<name>`), each a few lines over the service layer.
//!
//! Server only (feature `ssr`, the default):
//! * `config`: `console.toml`; `error`: the error enum with codes and HTTP statuses;
//!   `metrics`: Prometheus metrics on an explicit registry; `time`: local times for pages.
//! * `auth`: users (sled, argon2id), sessions (256-bit tokens, idle and absolute expiry, stored
//!   hashed), CSRF tokens, the account lifecycle. Time is passed in. `throttle`: the login
//!   back-off. `ledger`: the console's own hash-chained audit log.
//! * `service`: the service layer — every read and action with its role, input and reason
//!   checks; unit-tested without a browser. `testing`: a console, its ports and viewers in a few
//!   lines, for those tests and `tests/tests/console_service.rs` (real nodes; the console does not
//!   depend on the node).
//! * `port_api`: the only code that talks to port clusters (`ClusterClient` with the console's
//!   client bundle) and maps cluster types to DTOs; every change is one `Request::V2` batch
//!   led by its `Op::Audit`.
//! * `snapshot`: a port's live state assembled from one poll (pure); `poller`: one task per
//!   port polling status/lane/ledger every ~250 ms and broadcasting changes.
//! * `rollout`: port CAs (key 0600 under the data dir), client and node bundles, node configs.
//! * `server`: axum wiring — the session guard (64 KiB body limit → 413, session, CSRF on every
//!   state-changing request → 403), login/logout, SSE, `/metrics`, Leptos routes, 404s.
//!
//! # Invariants
//!
//! * Every refusal happens on the server: each server function and handler finds the viewer
//!   from the session and the service checks the role for the port before doing anything.
//! * Every state-changing request carries the session's CSRF token (form field `csrf` or header
//!   `x-csrf-token`), checked in constant time by the guard and again by the server function.
//! * Every change to a port needs a non-empty reason and travels with exactly one audit record
//!   in the same Raft entry (`Op::Audit` first in the `V2` batch).
//! * Only `dto` types reach the browser; the hydrate build depends on neither the node, tokio
//!   nor sled. The server reaches ports through `clearway-wire` (transport, protocol, client,
//!   port definitions), never the node crate: the console builds without GStreamer, ONNX Runtime
//!   or the lane (the node is a dev-dependency, for the service tests' in-process nodes).
//! * No personal data in logs or metric labels: logs name users, ports, channels and person
//!   ids, never document numbers, names or reasons' text.
//!
//! # Routes
//!
//! Pages (SSR, hydrated): `/login`, `/` (ports), `/port/{port}`, `/port/{port}/hall/{hall}`,
//! `/lane/{port}/{hall}/{n}`, `/desk`, `/rollout[?port=id]`, `/audit/{port}`, `/users`.
//! Handlers: `POST /auth/login` (form `name`, `password`, `csrf` = the `clearway_login`
//! cookie), `POST /auth/logout`, `GET /events/port/{id}` (SSE, JSON `PortSnapshot`),
//! `GET /events/alarms` (SSE, JSON `[QueuedAlarm]`), `GET /still/{port}/{hall}/{n}/{camera}
//! ?viewing={audit seq}` (a camera still, JPEG, `no-store`), `GET /lang/{tag}?back=/path` (the
//! language cookie), `GET /metrics`, `GET /healthz`, `/api/<server fn>`, `/pkg/*` (the wasm
//! package).
//! Browser tests find inputs, buttons and states by `data-test` attributes (listed per page
//! in [`pages`]).
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod dto;
pub mod i18n;
pub mod live;
pub mod pages;
pub mod trend;

#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod error;
#[cfg(feature = "ssr")]
pub mod fuzzing;
#[cfg(feature = "ssr")]
pub mod ledger;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
pub mod poller;
#[cfg(feature = "ssr")]
pub mod port_api;
#[cfg(feature = "ssr")]
pub mod rollout;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod snapshot;
#[cfg(feature = "ssr")]
pub mod testing;
#[cfg(feature = "ssr")]
pub mod throttle;
#[cfg(feature = "ssr")]
pub mod time;
#[cfg(feature = "ssr")]
pub mod tls;

/// The browser's entry point: hydrates the server-rendered page.
///
/// When the page's handlers are attached, `<html>` gets `data-hydrated="true"`: until then an
/// input's change (a chosen file, say) reaches no handler, so the browser test waits for it.
/// Set from a zero-delay timer, after the microtasks in which resources serialised into the page
/// resolve and the suspended parts of the page hydrate.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    leptos::prelude::set_timeout(
        || {
            let root = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.document_element());
            if let Some(root) = root {
                // Only a marker: a page that could not set it still works.
                let _ = root.set_attribute("data-hydrated", "true");
            }
        },
        std::time::Duration::ZERO,
    );
}

/// Opens a sled database a test has just dropped in this process. sled's background flusher
/// holds the database's file lock until it notices the drop, so an immediate reopen can fail
/// with `WouldBlock`; this waits for the lock (up to 5 s), as a restarted process would find it.
#[cfg(all(test, feature = "ssr"))]
pub(crate) fn reopen_sled(path: &std::path::Path) -> sled::Db {
    let mut last = None;
    for _ in 0..100 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} stayed locked: {last:?}", path.display())
}
