//! The alarm queue at the top of every page: the open alarms of every port the user watches,
//! newest first, each linking to its lane, acknowledged (and a hold released) right there. It
//! is announced to screen readers, counted in the tab title ([`titled`]) and, unless the user
//! muted it, chimes when a new alarm arrives.

use std::collections::BTreeSet;

use leptos::prelude::*;

use super::ports::AlarmRow;
use crate::api::fetch_alarm_queue;
use crate::app::ViewerResource;
use crate::dto::{QueuedAlarm, Role, Viewer};
use crate::i18n::{Lang, tr, tr_with};
use crate::live::LiveAlarms;

/// The key that tells one alarm from another (the alarm's identity in the port's log).
fn key(q: &QueuedAlarm) -> (String, String, i64) {
    (
        q.alarm.channel.clone(),
        q.alarm.kind.clone(),
        q.alarm.since_ms,
    )
}

/// `title` with the number of open alarms in front, `(3) Passenger hall · …`, when there are any.
pub fn titled(title: String) -> impl Fn() -> String + Send + Sync + 'static {
    let alarms = use_context::<LiveAlarms>();
    move || {
        let open = alarms.map_or(0, |a| a.queue.with(Vec::len));
        if open == 0 {
            title.clone()
        } else {
            format!("({open}) {title}")
        }
    }
}

/// Where the mute setting is kept in the browser.
#[cfg(feature = "hydrate")]
const MUTE_KEY: &str = "clearway.alarm-sound-muted";

/// The queue, for a user who watches ports (supervisors and port admins).
#[component]
pub fn AlarmQueue() -> impl IntoView {
    let viewer = expect_context::<ViewerResource>();
    let alarms = expect_context::<LiveAlarms>();
    let initial = Resource::new(|| (), |_| fetch_alarm_queue());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match (viewer.await, initial.await) {
                    (Ok(Some(v)), Ok(queue)) if v.role != Role::ServiceDesk => {
                        alarms.follow(queue);
                        view! { <Queue alarms=alarms viewer=v /> }.into_any()
                    }
                    _ => ().into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Queue(alarms: LiveAlarms, viewer: Viewer) -> impl IntoView {
    let lang = Lang::current();
    let muted = RwSignal::new(false);
    // How many times the queue chimed (for the browser test; the sound itself is not checked).
    let chimes = RwSignal::new(0u32);
    let seen = StoredValue::new(None::<BTreeSet<(String, String, i64)>>);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let stored = window()
            .local_storage()
            .ok()
            .flatten()
            .and_then(|s| s.get_item(MUTE_KEY).ok().flatten());
        muted.set(stored.as_deref() == Some("1"));
    });
    Effect::new(move |_| {
        let now: BTreeSet<_> = alarms.queue.with(|q| q.iter().map(key).collect());
        let fresh = seen.with_value(|s| {
            s.as_ref()
                .is_some_and(|before| now.iter().any(|k| !before.contains(k)))
        });
        seen.set_value(Some(now));
        if fresh && !muted.get_untracked() {
            chimes.update(|c| *c += 1);
            #[cfg(feature = "hydrate")]
            chime();
        }
    });
    let toggle = move |_| {
        let m = !muted.get_untracked();
        muted.set(m);
        #[cfg(feature = "hydrate")]
        if let Some(s) = window().local_storage().ok().flatten() {
            let _ = s.set_item(MUTE_KEY, if m { "1" } else { "0" });
        }
    };
    view! {
        <section
            class="alarm-queue"
            data-test="alarm-queue"
            data-count=move || alarms.queue.with(Vec::len).to_string()
            data-chimes=move || chimes.get().to_string()
        >
            <h2>
                {move || match alarms.queue.with(Vec::len) {
                    0 => tr(lang, "queue-none"),
                    n => tr_with(lang, "queue-open", &[("count", n.into())]),
                }}
                " "
                <button
                    type="button"
                    class="mute"
                    data-test="alarm-mute"
                    aria-pressed=move || muted.get().to_string()
                    on:click=toggle
                >
                    {move || if muted.get() { tr(lang, "sound-off") } else { tr(lang, "sound-on") }}
                </button>
            </h2>
            <ul aria-live="assertive" aria-label="Open alarms of your ports" data-test="queued-alarms">
                <For
                    each=move || alarms.queue.get()
                    key=key
                    children=move |q| {
                        view! {
                            <AlarmRow
                                alarm=q.alarm
                                port=q.port
                                port_name=q.port_name
                                viewer=viewer.clone()
                                may_override=q.may_override
                                test="queued-alarm"
                            />
                        }
                    }
                />
            </ul>
        </section>
    }
}

/// A short two-tone chime through Web Audio (browsers may keep it silent until the user has
/// interacted with the page).
#[cfg(feature = "hydrate")]
fn chime() {
    let Ok(ctx) = web_sys::AudioContext::new() else {
        return;
    };
    let t = ctx.current_time();
    for (n, freq) in [880.0_f32, 660.0].into_iter().enumerate() {
        let (Ok(osc), Ok(gain)) = (ctx.create_oscillator(), ctx.create_gain()) else {
            return;
        };
        let start = t + n as f64 * 0.18;
        osc.frequency().set_value(freq);
        gain.gain().set_value(0.08);
        let _ = osc.connect_with_audio_node(&gain);
        let _ = gain.connect_with_audio_node(&ctx.destination());
        let _ = osc.start_with_when(start);
        let _ = osc.stop_with_when(start + 0.15);
    }
}
