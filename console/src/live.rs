//! Live state in the browser: a page starts from the server-rendered snapshot and an
//! `EventSource` on `/events/port/{id}` replaces it with every newer one; the alarm queue at the
//! top of every page follows `/events/alarms` alike. On the server (and before hydration) the
//! signals simply hold the initial values.

use leptos::prelude::*;

use crate::dto::{PortSnapshot, QueuedAlarm};

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

/// The open alarms of every port the viewer watches (newest first), shared by the queue at the
/// top of every page and the tab titles; empty until the queue has loaded.
#[derive(Clone, Copy)]
pub struct LiveAlarms {
    /// The queue, newest first.
    pub queue: RwSignal<Vec<QueuedAlarm>>,
    /// The connection's state.
    pub link: RwSignal<Link>,
}

impl LiveAlarms {
    /// An empty queue, not yet following anything.
    pub fn new() -> LiveAlarms {
        LiveAlarms {
            queue: RwSignal::new(Vec::new()),
            link: RwSignal::new(Link::Connecting),
        }
    }

    /// Starts with `initial` and follows the server's changes (in the browser; on the server it
    /// only sets `initial`).
    pub fn follow(self, initial: Vec<QueuedAlarm>) {
        self.queue.set(initial);
        #[cfg(feature = "hydrate")]
        Effect::new(move |_| {
            browser::follow("/events/alarms", self.link, move |q: Vec<QueuedAlarm>| {
                self.queue.set(q)
            })
        });
    }
}

impl Default for LiveAlarms {
    fn default() -> Self {
        LiveAlarms::new()
    }
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
    use serde::de::DeserializeOwned;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    use super::{Link, LivePort};
    use crate::dto::PortSnapshot;

    pub fn connect(port: &str, live: LivePort) {
        follow(
            &format!("/events/port/{port}"),
            live.link,
            move |s: PortSnapshot| live.snap.set(s),
        );
    }

    /// Follows the server-sent events at `url`: each message's JSON goes to `on_value`, the
    /// connection's state to `link`. Closed when the page (the owner) goes.
    pub fn follow<T: DeserializeOwned + 'static>(
        url: &str,
        link: RwSignal<Link>,
        on_value: impl Fn(T) + 'static,
    ) {
        let Ok(es) = web_sys::EventSource::new(url) else {
            link.set(Link::Lost);
            return;
        };
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if let Some(text) = e.data().as_string() {
                    match serde_json::from_str::<T>(&text) {
                        Ok(v) => {
                            on_value(v);
                            link.set(Link::Live);
                        }
                        Err(e) => leptos::logging::warn!("live update not understood: {e}"),
                    }
                }
            });
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| link.set(Link::Live));
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| link.set(Link::Lost));
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
