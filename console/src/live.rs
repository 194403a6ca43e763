//! Live port state in the browser: the page starts from the server-rendered snapshot and an
//! `EventSource` on `/events/port/{id}` replaces it with every newer one. On the server (and
//! before hydration) the signal simply holds the initial snapshot.

use leptos::prelude::*;

use crate::dto::PortSnapshot;

/// Whether live updates are flowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Rendered by the server; not connected yet.
    Connecting,
    /// Updates arrive.
    Live,
    /// The connection dropped (the browser retries) or was refused (session ended).
    Lost,
}

impl Link {
    /// Stable word for `data-link`.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Connecting => "connecting",
            Link::Live => "live",
            Link::Lost => "lost",
        }
    }
}

/// A port's snapshot that follows the server's changes.
#[derive(Clone, Copy)]
pub struct LivePort {
    /// The latest snapshot.
    pub snap: RwSignal<PortSnapshot>,
    /// The connection's state.
    pub link: RwSignal<Link>,
}

/// Starts following `initial`'s port (in the browser; a no-op on the server).
pub fn live_port(initial: PortSnapshot) -> LivePort {
    let live = LivePort {
        snap: RwSignal::new(initial),
        link: RwSignal::new(Link::Connecting),
    };
    #[cfg(feature = "hydrate")]
    {
        let port = live.snap.with_untracked(|s| s.port.clone());
        Effect::new(move |_| browser::connect(&port, live));
    }
    live
}

/// The live-updates badge.
#[component]
pub fn LinkBadge(live: LivePort) -> impl IntoView {
    let word = move || live.link.get().as_str();
    let text = move || match live.link.get() {
        Link::Connecting => "connecting to live updates…".to_string(),
        Link::Live => format!("live · {}", live.snap.with(|s| s.taken_at.clone())),
        Link::Lost => {
            "live updates interrupted; retrying (sign in again if your session ended)".to_string()
        }
    };
    view! {
        <span class="link" data-test="live-link" data-link=word>
            {text}
        </span>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    use super::{Link, LivePort};
    use crate::dto::PortSnapshot;

    pub fn connect(port: &str, live: LivePort) {
        let url = format!("/events/port/{port}");
        let Ok(es) = web_sys::EventSource::new(&url) else {
            live.link.set(Link::Lost);
            return;
        };
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if let Some(text) = e.data().as_string() {
                    match serde_json::from_str::<PortSnapshot>(&text) {
                        Ok(s) => {
                            live.snap.set(s);
                            live.link.set(Link::Live);
                        }
                        Err(e) => leptos::logging::warn!("live update not understood: {e}"),
                    }
                }
            });
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| live.link.set(Link::Live));
        let on_error =
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| live.link.set(Link::Lost));
        es.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        es.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        es.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // The closures live as long as the EventSource, which is closed when the page goes.
        let handlers = StoredValue::new_local((es, on_message, on_open, on_error));
        on_cleanup(move || {
            handlers.try_with_value(|(es, ..)| es.close());
            handlers.dispose();
        });
    }
}
