//! `/lane/{port}/{hall}/{n}`: one lane live, its overrides (each with a reason) and whether
//! the lane has carried the latest one out.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use super::loading;
use super::ports::AlarmList;
use crate::api::{LaneOverride, WatchCameras, fetch_lane, fetch_lane_orders, fetch_port};
use crate::app::{ErrorBox, ViewerResource, action_result};
use crate::dto::code_id;
use crate::dto::{
    ApiError, Gate, GateAction, LaneDetail, LaneMode, OverrideAction, OverrideRisk, Viewer,
    WriteReceipt,
};
use crate::i18n::{Lang, tr, tr_with};
use crate::live::{LinkBadge, LivePort, live_port};

/// The lane page.
#[component]
pub fn LanePage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        params.with(|p| {
            (
                p.get("port").unwrap_or_default(),
                p.get("hall").unwrap_or_default(),
                p.get("n").unwrap_or_default(),
            )
        })
    };
    let detail = Resource::new(key, |(p, h, n)| fetch_lane(p, h, n));
    let snap = Resource::new(move || key().0, fetch_port);
    let viewer = expect_context::<ViewerResource>();
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match (viewer.await, detail.await, snap.await) {
                    (_, Err(e), _) | (_, _, Err(e)) => view! { <ErrorBox error=e /> }.into_any(),
                    (Ok(Some(v)), Ok(d), Ok(s)) => {
                        let live = live_port(s);
                        view! { <Lane detail=d live=live viewer=v /> }.into_any()
                    }
                    _ => {
                        view! {
                            <ErrorBox error=ApiError::new(401, "unauthenticated", "sign in first") />
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn Lane(detail: LaneDetail, live: LivePort, viewer: Viewer) -> impl IntoView {
    let d = detail;
    let channel = d.channel.id.clone();
    let title = format!("{} channel {} · {}", d.hall_name, d.channel.n, d.port_name);
    let ch = channel.clone();
    let state = move || live.snap.with(|s| s.channel(&ch).cloned());
    let lang = Lang::current();
    view! {
        <Title text=super::alarms::titled(title.clone()) />
        <h1 data-test="lane-title" data-channel=channel.clone()>{title}</h1>
        <p>
            <A href=format!("/port/{}", d.port)>{d.port_name.clone()}</A>
            " · "
            <A href=format!("/port/{}/hall/{}", d.port, d.hall)>{d.hall_name.clone()}</A>
            " · "
            <LinkBadge live=live />
        </p>
        {move || match state() {
            None => ().into_any(),
            Some(c) => {
                let mode = match &c.lane {
                    Some(l) => l.mode.as_str(),
                    None => c.state.as_str(),
                };
                view! {
                    <table data-test="lane-state" data-state=c.state.as_str() data-mode=mode><tbody>
                        <tr>
                            <th>{tr(lang, "lane-state")}</th>
                            <td data-test="lane-mode">{tr(lang, &code_id("mode", c.mode_code()))}</td>
                        </tr>
                        {c
                            .desired_mode
                            .map(|m| {
                                view! {
                                    <tr>
                                        <th>{tr(lang, "lane-desired-mode")}</th>
                                        <td data-test="desired-mode" data-mode=m.as_str()>
                                            {tr(lang, &code_id("mode", m.as_str()))}
                                        </td>
                                    </tr>
                                }
                            })}
                        {c
                            .lane
                            .map(|l| {
                                view! {
                                    <tr>
                                        <th>{tr(lang, "lane-gates")}</th>
                                        <td>
                                            {l
                                                .gates
                                                .iter()
                                                .enumerate()
                                                .map(|(i, g)| {
                                                    view! {
                                                        <span
                                                            class="gate"
                                                            data-test="gate-state"
                                                            data-gate=(i + 1).to_string()
                                                            data-gate-state=g.clone()
                                                        >
                                                            {tr_with(
                                                                lang,
                                                                "gate-state",
                                                                &[
                                                                    ("n", (i + 1).into()),
                                                                    ("state", tr(lang, &code_id("gate", g)).into()),
                                                                ],
                                                            )}
                                                        </span>
                                                    }
                                                })
                                                .collect_view()}
                                        </td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-step")}</th>
                                        <td data-test="lane-step" data-step=l.step.clone()>
                                            {tr(lang, &code_id("step", &l.step))}
                                        </td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-face-scan")}</th>
                                        <td data-test="face-scan">
                                            {if l.face_scan { tr(lang, "lane-face-scan-on") } else { tr(lang, "lane-face-scan-off") }}
                                        </td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-pad")}</th>
                                        <td data-test="pad-mode" data-pad=l.pad.clone()>
                                            {if l.pad.is_empty() { String::new() } else { tr(lang, &code_id("lane-pad", &l.pad)) }}
                                        </td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-occupancy")}</th>
                                        <td data-test="occupancy">{l.occupancy}</td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-held-for")}</th>
                                        <td data-test="held-for">
                                            {l.held_for.clone().unwrap_or_else(|| tr(lang, "no"))}
                                        </td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-cameras")}</th>
                                        <td data-test="camera-health">
                                            {l
                                                .cameras_up
                                                .iter()
                                                .enumerate()
                                                .map(|(i, u)| {
                                                    tr_with(
                                                        lang,
                                                        "gate-state",
                                                        &[
                                                            ("n", (i + 1).into()),
                                                            ("state", tr(lang, if *u { "camera-up" } else { "camera-down" }).into()),
                                                        ],
                                                    )
                                                })
                                                .collect::<Vec<_>>()
                                                .join(", ")}
                                        </td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-last-decision")}</th>
                                        <td data-test="last-decision">
                                            {match &l.last_decision {
                                                Some(d) => format!("{} at {}", d.summary(), d.at),
                                                None => tr(lang, "none-yet"),
                                            }}
                                        </td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-fence")}</th>
                                        <td data-test="fence">
                                            {format!("term {}, index {}", l.fence.0, l.fence.1)}
                                        </td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-acked-order")}</th>
                                        <td data-test="acked-order">{l.acked_order}</td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-direction")}</th>
                                        <td data-test="direction">
                                            {if l.direction.is_empty() {
                                                tr(lang, "lane-direction-unset")
                                            } else {
                                                l.direction.clone()
                                            }}
                                        </td>
                                    </tr>
                                    <tr>
                                        <th>{tr(lang, "lane-staleness")}</th>
                                        <td data-test="staleness">
                                            {if l.staleness_ms == u64::MAX {
                                                "never reached".to_string()
                                            } else {
                                                format!("{} ms", l.staleness_ms)
                                            }}
                                        </td>
                                    </tr>
                                }
                            })}
                    </tbody></table>
                }
                    .into_any()
            }
        }}
        <h2>{tr(lang, "alarms")}</h2>
        <AlarmList
            live=live
            viewer=viewer.clone()
            may_override=d.may_override
            scope=Some(channel.clone())
        />
        {d.may_override.then(|| view! { <Cameras viewer=viewer.clone() port=d.port.clone() channel=channel.clone() /> })}
        {d.may_override.then(|| view! { <Overrides live=live viewer=viewer.clone() port=d.port.clone() channel=channel.clone() /> })}
        <Recorded live=live port=d.port.clone() channel=channel.clone() />
    }
}

/// The override form: one reason, the actions grouped by risk; anything that opens a gate or
/// changes the lane's mode asks to confirm; the reason is cleared after each order.
#[component]
fn Overrides(live: LivePort, viewer: Viewer, port: String, channel: String) -> impl IntoView {
    let act = ServerAction::<LaneOverride>::new();
    let reason = NodeRef::<leptos::html::Textarea>::new();
    Effect::new(move |_| {
        if matches!(act.value().get(), Some(Ok(_)))
            && let Some(r) = reason.get()
        {
            r.set_value("");
        }
    });
    let all: Vec<OverrideAction> = Gate::ALL
        .into_iter()
        .flat_map(|gate| {
            GateAction::ALL
                .into_iter()
                .map(move |action| OverrideAction::Gate { gate, action })
        })
        .chain(
            LaneMode::ALL
                .into_iter()
                .map(|mode| OverrideAction::Mode { mode }),
        )
        .chain([OverrideAction::SendToOfficer, OverrideAction::Release])
        .collect();
    let button = {
        let channel = channel.clone();
        move |a: OverrideAction| {
            let code = a.code();
            let lang = Lang::current();
            let question = (a.risk() == OverrideRisk::Opens).then(|| a.confirmation(&channel));
            view! {
                <button
                    type="submit"
                    name="action"
                    value=code.clone()
                    data-test=format!("override-{code}")
                    data-risk=a.risk().as_str()
                    on:click=move |ev| {
                        if let Some(q) = &question
                            && !super::confirmed(q)
                        {
                            ev.prevent_default();
                        }
                    }
                >
                    {tr(lang, &code_id("override", &code))}
                </button>
                " "
            }
        }
    };
    let ch = channel.clone();
    let lang = Lang::current();
    view! {
        <h2>{tr(lang, "override")}</h2>
        <ActionForm action=act>
            <input type="hidden" name="csrf" value=viewer.csrf.clone() />
            <input type="hidden" name="port" value=port />
            <input type="hidden" name="channel" value=channel />
            <label>
                {tr(lang, "reason-required")}
                " "
                <textarea
                    node_ref=reason
                    name="reason"
                    required
                    maxlength="500"
                    rows="2"
                    data-test="override-reason"
                ></textarea>
            </label>
            {OverrideRisk::ALL
                .into_iter()
                .map(|risk| {
                    view! {
                        <fieldset
                            class=format!("risk-{}", risk.as_str())
                            data-test=format!("overrides-{}", risk.as_str())
                        >
                            <legend>{tr(lang, &code_id("risk", risk.as_str()))}</legend>
                            {all
                                .iter()
                                .filter(|a| a.risk() == risk)
                                .map(|a| button.clone()(*a))
                                .collect_view()}
                        </fieldset>
                    }
                })
                .collect_view()}
        </ActionForm>
        {move || {
            let ch = ch.clone();
            action_result(
                act.value().get(),
                act.pending().get(),
                "override-result",
                move |r: WriteReceipt| view! { <OrderStatus live=live receipt=r channel=ch /> },
            )
        }}
    }
}

/// Pending until the lane reports it carried out the order (`acked_order >= index`).
#[component]
fn OrderStatus(live: LivePort, receipt: WriteReceipt, channel: String) -> impl IntoView {
    let index = receipt.index;
    let acked = Memo::new(move |_| {
        live.snap.with(|s| {
            s.channel(&channel)
                .and_then(|c| c.lane.as_ref())
                .is_some_and(|l| l.acked_order >= index)
        })
    });
    view! {
        <span
            data-test="order-status"
            data-index=index.to_string()
            data-state=move || if acked.get() { "acknowledged" } else { "pending" }
        >
            {move || {
                if acked.get() {
                    format!("Acknowledged: the lane carried out the order (log index {index}).")
                } else {
                    format!(
                        "Pending: recorded at log index {index}; waiting for the lane to carry it out."
                    )
                }
            }}
        </span>
        <span class="muted">{format!(" {}", receipt.summary)}</span>
    }
}

/// How often the page asks for a new still while viewing.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const STILL_EVERY_MS: u64 = 333;
/// How long one viewing lasts in the page (the port honours its record for ten minutes).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const VIEWING_MS: u64 = 9 * 60 * 1000;

/// The gate-1 and gate-2 cameras, live, for a supervisor who gave a reason: the viewing is
/// recorded in the port's audit trail before the first still, and the stills are only ever
/// in this page (the console and the lane keep none).
#[component]
fn Cameras(viewer: Viewer, port: String, channel: String) -> impl IntoView {
    let lang = Lang::current();
    let act = ServerAction::<WatchCameras>::new();
    let viewing = Memo::new(move |_| match act.value().get() {
        Some(Ok(r)) => Some(r.audit_seq),
        _ => None,
    });
    let tick = RwSignal::new(0u64);
    let ended = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if viewing.get().is_none() {
            return;
        }
        ended.set(false);
        let started = tick.get_untracked();
        if let Ok(h) = set_interval_with_handle(
            move || {
                if (tick.get_untracked() - started) * STILL_EVERY_MS >= VIEWING_MS {
                    ended.set(true);
                } else {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_millis(STILL_EVERY_MS),
        ) {
            on_cleanup(move || h.clear());
        }
    });
    let path = format!("/still/{channel}");
    let still = move |camera: u8| {
        let path = path.clone();
        let loaded = RwSignal::new(false);
        view! {
            <figure class="still">
                <img
                    data-test="camera-still"
                    data-camera=camera.to_string()
                    data-loaded=move || loaded.get().to_string()
                    alt=format!("gate {camera} camera")
                    width="480"
                    height="270"
                    src=move || {
                        viewing
                            .get()
                            .map(|seq| format!("{path}/{camera}?viewing={seq}&n={}", tick.get()))
                            .unwrap_or_default()
                    }
                    on:load=move |_| loaded.set(true)
                />
                <figcaption>
                    {tr_with(lang, "camera-gate", &[("n", camera.into())])}
                    {move || (!loaded.get()).then(|| format!(" · {}", tr(lang, "camera-waiting")))}
                </figcaption>
            </figure>
        }
    };
    view! {
        <h2>{tr(lang, "cameras")}</h2>
        {move || match viewing.get() {
            Some(seq) if !ended.get() => view! {
                <p class="muted" data-test="camera-viewing" data-seq=seq.to_string()>
                    {tr_with(lang, "camera-live", &[("seq", seq.into())])}
                </p>
            }
            .into_any(),
            Some(_) => view! {
                <p class="pending" data-test="camera-viewing" data-ended="true">
                    {tr(lang, "camera-ended")}
                </p>
            }
            .into_any(),
            None => ().into_any(),
        }}
        <div class="stills">
            {move || viewing.get().is_some().then(|| (still.clone()(1), still.clone()(2)))}
        </div>
        <ActionForm action=act>
            <input type="hidden" name="csrf" value=viewer.csrf.clone() />
            <input type="hidden" name="port" value=port />
            <input type="hidden" name="channel" value=channel.clone() />
            <label>
                {tr(lang, "camera-reason")}
                " "
                <textarea
                    name="reason"
                    required
                    maxlength="500"
                    rows="1"
                    data-test="camera-reason"
                ></textarea>
            </label>
            <button type="submit" data-test="camera-submit">
                {tr(lang, "camera-show")}
            </button>
        </ActionForm>
        {move || {
            let v = act.value().get();
            match v {
                Some(Err(_)) => action_result(v, act.pending().get(), "camera-result", |_: WriteReceipt| ()),
                _ => ().into_any(),
            }
        }}
    }
}

/// "Overrides recorded": the lane's newest orders with who, when and why (from the port's audit
/// trail), refreshed whenever the port's ledger changes and every few seconds.
#[component]
fn Recorded(live: LivePort, port: String, channel: String) -> impl IntoView {
    let lang = Lang::current();
    let tick = RwSignal::new(0u64);
    // The ledger's length in the live snapshot moves with every order (and every other record).
    let audit_len = Memo::new(move |_| live.snap.with(|s| s.audit_len));
    let orders = Resource::new(
        move || (audit_len.get(), tick.get()),
        move |_| fetch_lane_orders(port.clone(), channel.clone()),
    );
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            std::time::Duration::from_secs(5),
        ) {
            on_cleanup(move || h.clear());
        }
    });
    view! {
        <h2>{tr(lang, "overrides-recorded")}</h2>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match orders.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => {
                        view! { <p class="muted" data-test="orders">{tr(lang, "none-yet")}</p> }.into_any()
                    }
                    Ok(list) => view! {
                        <table data-test="orders"><tbody>
                            <tr>
                                <th>{tr(lang, "orders-when")}</th>
                                <th>{tr(lang, "orders-order")}</th>
                                <th>{tr(lang, "orders-who")}</th>
                                <th>{tr(lang, "orders-reason")}</th>
                                <th>{tr(lang, "orders-log")}</th>
                            </tr>
                            {list
                                .into_iter()
                                .map(|r| {
                                    view! {
                                        <tr
                                            data-test="order"
                                            data-index=r.order.index.to_string()
                                            data-action=r.order.action.code()
                                        >
                                            <td>{r.at}</td>
                                            <td>{tr(lang, &code_id("override", &r.order.action.code()))}</td>
                                            <td data-test="order-actor">{format!("{} ({})", r.actor, r.role)}</td>
                                            <td class="reason" data-test="order-reason">{r.reason}</td>
                                            <td class="muted">
                                                {format!(
                                                    "index {}, term {}, audit record {}",
                                                    r.order.index,
                                                    r.order.term,
                                                    r.order.audit_seq,
                                                )}
                                            </td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody></table>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}
