//! `/` (ports overview), `/port/{port}` (halls, alarms, members) and
//! `/port/{port}/hall/{hall}` (the channel grid). The port and hall pages follow the port live.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use super::loading;
use crate::api::{AckAlarm, LaneOverride, fetch_port, ports_overview};
use crate::app::{ErrorBox, NotFound, ViewerResource, action_result};
use crate::dto::{AlarmView, ApiError, ChannelView, PortSnapshot, Viewer, code_id};
use crate::i18n::{Lang, tr, tr_with};
use crate::live::{LinkBadge, LivePort, live_port};

fn signin() -> ApiError {
    ApiError::new(401, "unauthenticated", "sign in first")
}

/// The ports the viewer may watch: lanes up and down, clearances, alarms. Refreshed every two
/// seconds in the browser.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| ports_overview());
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Ok(h) =
            set_interval_with_handle(move || data.refetch(), std::time::Duration::from_secs(2))
        {
            on_cleanup(move || h.clear());
        }
    });
    view! {
        <Title text=format!("{} · Clearway", tr(Lang::current(), "ports-title")) />
        <h1>{tr(Lang::current(), "ports-title")}</h1>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(ports) if ports.is_empty() => {
                        view! { <p data-test="no-ports">"No ports yet."</p> }.into_any()
                    }
                    Ok(ports) => {
                        view! {
                            <table data-test="ports"><tbody>
                                <tr>
                                    <th>{tr(Lang::current(), "ports-port")}</th>
                                    <th>{tr(Lang::current(), "ports-halls")}</th>
                                    <th>{tr(Lang::current(), "ports-up")}</th>
                                    <th>{tr(Lang::current(), "ports-down")}</th>
                                    <th>{tr(Lang::current(), "ports-clearances")}</th>
                                    <th>{tr(Lang::current(), "ports-alarms")}</th>
                                    <th>{tr(Lang::current(), "ports-cluster")}</th>
                                    <th></th>
                                </tr>
                                {ports
                                    .into_iter()
                                    .map(|p| {
                                        let href = format!("/port/{}", p.id);
                                        let audit = format!("/audit/{}", p.id);
                                        view! {
                                            <tr data-test="port-row" data-port=p.id.clone()>
                                                <td>
                                                    <A href=href>{p.name.clone()}</A>
                                                </td>
                                                <td>
                                                    {p
                                                        .halls
                                                        .iter()
                                                        .map(|(_, name, n)| format!("{name} ({n})"))
                                                        .collect::<Vec<_>>()
                                                        .join(", ")}
                                                </td>
                                                <td data-test="lanes-up">{p.lanes_up}</td>
                                                <td data-test="lanes-down">{p.lanes_down}</td>
                                                <td data-test="clearances">{p.clearances_per_hour}</td>
                                                <td data-test="alarms">{p.alarms}</td>
                                                <td
                                                    data-test="port-status"
                                                    data-reachable=p.reachable.to_string()
                                                >
                                                    {match &p.error {
                                                        None => "reachable".to_string(),
                                                        Some(e) => format!("unreachable: {e}"),
                                                    }}
                                                </td>
                                                <td>
                                                    <A href=audit>"audit"</A>
                                                </td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody></table>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Loads the port named in the URL, then renders `body` with the live port and the viewer.
fn with_port<V: IntoView + 'static>(
    body: impl Fn(LivePort, Viewer, PortSnapshot) -> V + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let params = use_params_map();
    let port = move || params.read().get("port").unwrap_or_default();
    let data = Resource::new(port, fetch_port);
    let viewer = expect_context::<ViewerResource>();
    view! {
        <Suspense fallback=loading>
            {move || {
                let body = body.clone();
                Suspend::new(async move {
                    match (viewer.await, data.await) {
                        (_, Err(e)) => view! { <ErrorBox error=e /> }.into_any(),
                        (Ok(Some(v)), Ok(s)) => {
                            let initial = s.clone();
                            body(live_port(s), v, initial).into_any()
                        }
                        _ => view! { <ErrorBox error=signin() /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// A port: its halls, open alarms and cluster members.
#[component]
pub fn PortPage() -> impl IntoView {
    with_port(|live, v, initial| {
        let may_override = v.may_override(&initial.port);
        view! {
            <Title text=super::alarms::titled(format!("{} · Clearway console", initial.name)) />
            <h1 data-test="port-name">{initial.name.clone()}</h1>
            <p>
                <LinkBadge live=live />
                " · "
                <A href=format!("/audit/{}", initial.port)>"audit trail"</A>
            </p>
            <PortStatus live=live />
            <h2>{tr(Lang::current(), "ports-halls")}</h2>
            <ul>
                {move || {
                    live.snap
                        .with(|s| {
                            s.halls
                                .iter()
                                .map(|h| {
                                    let (up, down) = h.channels.iter().fold((0, 0), |(u, d), c| {
                                        match c.state {
                                            crate::dto::ChannelState::Online => (u + 1, d),
                                            crate::dto::ChannelState::Offline => (u, d + 1),
                                            crate::dto::ChannelState::NotDeployed => (u, d),
                                        }
                                    });
                                    let name = h.name.clone();
                                    view! {
                                        <li data-test="hall" data-hall=h.id.clone()>
                                            <A href=format!(
                                                "/port/{}/hall/{}",
                                                s.port,
                                                h.id,
                                            )>{name}</A>
                                            ": "
                                            {tr_with(
                                                Lang::current(),
                                                "port-hall-summary",
                                                &[
                                                    ("channels", h.channels.len().into()),
                                                    ("up", up.into()),
                                                    ("down", down.into()),
                                                ],
                                            )}
                                        </li>
                                    }
                                })
                                .collect_view()
                        })
                }}
            </ul>
            <h2>{tr(Lang::current(), "alarms")}</h2>
            <AlarmList live=live viewer=v.clone() may_override=may_override scope=None />
            <h2>{tr(Lang::current(), "ports-cluster")}</h2>
            <Members live=live />
        }
    })
}

/// A hall: one cell per channel, and the hall's alarms.
#[component]
pub fn HallPage() -> impl IntoView {
    let params = use_params_map();
    let hall = move || params.read_untracked().get("hall").unwrap_or_default();
    with_port(move |live, v, initial| {
        let hall_id = hall();
        let Some(h) = initial.halls.iter().find(|h| h.id == hall_id) else {
            return view! { <NotFound what=format!("hall {hall_id:?} at {}", initial.name) /> }
                .into_any();
        };
        let may_override = v.may_override(&initial.port);
        let title = format!("{} · {}", h.name, initial.name);
        let id = hall_id.clone();
        view! {
            <Title text=super::alarms::titled(title.clone()) />
            <h1 data-test="hall-name">{title}</h1>
            <p>
                <A href=format!("/port/{}", initial.port)>{initial.name.clone()}</A>
                " · "
                <LinkBadge live=live />
            </p>
            <PortStatus live=live />
            <section class="hall-alarms">
                <h2>{tr(Lang::current(), "hall-alarms")}</h2>
                <AlarmList
                    live=live
                    viewer=v
                    may_override=may_override
                    scope=Some(format!("{}/{hall_id}", initial.port))
                />
            </section>
            <HallTrend live=live hall=hall_id.clone() />
            <SeverityLegend />
            <div class="grid" data-test="lane-grid" data-hall=hall_id.clone()>
                {move || {
                    live.snap
                        .with(|s| {
                            s.halls
                                .iter()
                                .find(|h| h.id == id)
                                .map(|h| {
                                    h.channels
                                        .iter()
                                        .map(|c| view! { <Cell channel=c.clone() /> })
                                        .collect_view()
                                })
                        })
                }}
            </div>
        }
        .into_any()
    })
}

/// Whether the port answers.
#[component]
fn PortStatus(live: LivePort) -> impl IntoView {
    move || {
        live.snap.with(|s| match &s.error {
            None => view! {
                <p data-test="port-status" data-reachable="true" class="muted">
                    {tr_with(
                        Lang::current(),
                        "port-status",
                        &[
                            ("leader", s.leader.map(|l| l.to_string()).unwrap_or_else(|| "?".into()).into()),
                            ("index", s.last_log_index.unwrap_or(0).into()),
                            ("clearances", s.clearances_per_hour.into()),
                        ],
                    )}
                </p>
            }
            .into_any(),
            Some(e) => view! {
                <p class="error" data-test="port-status" data-reachable="false">
                    {format!("{} {e}", tr(Lang::current(), "err-502"))}
                </p>
            }
            .into_any(),
        })
    }
}

/// What the grid's colours mean, in words.
#[component]
fn SeverityLegend() -> impl IntoView {
    let lang = Lang::current();
    view! {
        <ul class="legend" data-test="severity-legend" aria-label="Lane states">
            {crate::dto::Severity::ALL
                .iter()
                .map(|s| {
                    view! {
                        <li class=format!("sev-{}", s.as_str()) data-severity=s.as_str()>
                            <span class="swatch"></span>
                            {tr(lang, &code_id("severity", s.as_str()))}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

/// One channel of the grid.
#[component]
fn Cell(channel: ChannelView) -> impl IntoView {
    let c = channel;
    let href = {
        let mut parts = c.id.splitn(3, '/');
        let (p, h, n) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        format!("/lane/{p}/{h}/{n}")
    };
    let mode = match (&c.lane, c.state) {
        (Some(l), _) => l.mode.as_str(),
        (None, s) => s.as_str(),
    };
    let lane = c.lane.clone();
    let severity = c.severity();
    let lang = Lang::current();
    view! {
        <div
            class=format!("cell sev-{}", severity.as_str())
            data-test="lane-cell"
            data-channel=c.id.clone()
            data-state=c.state.as_str()
            data-severity=severity.as_str()
            data-mode=mode
        >
            <A href=href>
                <strong>{format!("#{}", c.n)}</strong>
            </A>
            " "
            <span data-test="lane-mode">{tr(lang, &code_id("mode", c.mode_code()))}</span>
            <div class="sev-word" data-test="lane-severity">
                {tr(lang, &code_id("severity", severity.as_str()))}
            </div>
            {c
                .desired_mode
                .filter(|d| lane.as_ref().is_none_or(|l| l.mode != *d))
                .map(|d| {
                    view! {
                        <div class="muted" data-test="desired-mode" data-mode=d.as_str()>
                            {format!("→ {}", tr(lang, &code_id("mode", d.as_str())))}
                        </div>
                    }
                })}
            {lane
                .map(|l| {
                    let cameras_up: String = l
                        .cameras_up
                        .iter()
                        .map(|u| if *u { '1' } else { '0' })
                        .collect();
                    let cameras_class = if l.cameras_up.iter().all(|u| *u) { "" } else { "alarmed" };
                    view! {
                        <div>
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
                                            {format!("G{} {}", i + 1, tr(lang, &code_id("gate", g)))}
                                        </span>
                                    }
                                })
                                .collect_view()}
                        </div>
                        <div data-test="lane-step" data-step=l.step.clone()>
                            {tr(lang, &code_id("step", &l.step))}
                        </div>
                        <div data-test="last-decision">
                            {match &l.last_decision {
                                Some(d) => d.summary(),
                                None => "no decision yet".to_string(),
                            }}
                        </div>
                        <div
                            data-test="camera-health"
                            data-up=cameras_up.clone()
                            class=cameras_class
                        >
                            {format!(
                                "{}: {}",
                                tr(lang, "lane-cameras"),
                                l
                                    .cameras_up
                                    .iter()
                                    .map(|u| tr(lang, if *u { "camera-up" } else { "camera-down" }))
                                    .collect::<Vec<_>>()
                                    .join(" / "),
                            )}
                        </div>
                    }
                })}
        </div>
    }
}

/// The port's alarms, newest first, each with its acknowledgement; `scope` narrows them to a
/// hall (`hengqin/passenger`) or a channel (`hengqin/passenger/12`).
#[component]
pub fn AlarmList(
    live: LivePort,
    viewer: Viewer,
    may_override: bool,
    scope: Option<String>,
) -> impl IntoView {
    let alarms = move || {
        live.snap.with(|s| {
            s.alarms
                .iter()
                .filter(|a| {
                    scope.as_ref().is_none_or(|p| {
                        a.channel == *p
                            || a.channel
                                .strip_prefix(p.as_str())
                                .is_some_and(|r| r.starts_with('/'))
                    })
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let port = live.snap.with_untracked(|s| s.port.clone());
    let none = {
        let alarms = alarms.clone();
        move || {
            alarms()
                .is_empty()
                .then(|| view! { <p class="muted" data-test="no-alarms">{tr(Lang::current(), "no-alarms")}</p> })
        }
    };
    view! {
        {none}
        <ul data-test="alarms" aria-live="polite" aria-label="Alarms">
            <For
                each=alarms
                key=|a| (a.channel.clone(), a.kind.clone(), a.since_ms, a.acked)
                children=move |a| {
                    view! {
                        <AlarmRow
                            alarm=a
                            port=port.clone()
                            viewer=viewer.clone()
                            may_override=may_override
                        />
                    }
                }
            />
        </ul>
    }
}

/// The lane page of a channel id (`port/hall/n`), if it is one.
fn lane_href(channel: &str) -> Option<String> {
    let mut parts = channel.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(h), Some(n), None) if n.parse::<u32>().is_ok() => {
            Some(format!("/lane/{p}/{h}/{n}"))
        }
        _ => None,
    }
}

/// One alarm; a supervisor of the port acknowledges it with a reason. `port_name` is shown
/// where alarms of several ports are listed; `test` marks the row (`alarm`, `queued-alarm`).
#[component]
pub fn AlarmRow(
    alarm: AlarmView,
    port: String,
    #[prop(optional)] port_name: Option<String>,
    viewer: Viewer,
    may_override: bool,
    #[prop(default = "alarm")] test: &'static str,
) -> impl IntoView {
    let a = alarm;
    let ack = ServerAction::<AckAlarm>::new();
    let release = ServerAction::<LaneOverride>::new();
    let (channel, kind, since) = (a.channel.clone(), a.kind.clone(), a.since_ms.to_string());
    let row_port = port.clone();
    let lang = Lang::current();
    let csrf = viewer.csrf.clone();
    // A held channel is released right here, with its own reason (audited like any order).
    let (release_csrf, release_port, release_channel) =
        (csrf.clone(), port.clone(), channel.clone());
    let release_form = (may_override && a.kind == "held").then(move || {
        view! {
            <ActionForm action=release attr:class="inline" attr:data-test="release-form">
                <input type="hidden" name="csrf" value=release_csrf />
                <input type="hidden" name="port" value=release_port />
                <input type="hidden" name="channel" value=release_channel />
                <input type="hidden" name="action" value="release" />
                <input
                    type="text"
                    name="reason"
                    placeholder=tr(lang, "release-reason")
                    required
                    maxlength="500"
                    data-test="release-reason"
                />
                <button type="submit" data-test="release-submit">
                    {tr(lang, "release-channel")}
                </button>
            </ActionForm>
            {move || action_result(
                release.value().get(),
                release.pending().get(),
                "release-result",
                |r| view! { {format!("release ordered ({})", r.summary)} },
            )}
        }
    });
    view! {
        <li
            data-test=test
            data-port=row_port
            data-channel=a.channel.clone()
            data-kind=a.kind.clone()
            data-since=a.since_ms.to_string()
            data-acked=a.acked.to_string()
        >
            <strong class=if a.acked { "" } else { "alarmed" }>
                {tr(lang, &code_id("alarm", &a.kind))}
            </strong>
            {port_name.map(|n| format!(" · {n}"))}
            " · "
            {
                let shown = a.channel.clone();
                match lane_href(&shown) {
                    Some(href) => {
                        view! { <A href=href attr:data-test="alarm-lane">{shown}</A> }.into_any()
                    }
                    None => shown.into_any(),
                }
            }
            " · "
            {tr_with(lang, "since", &[("time", a.since.clone().into())])}
            {release_form}
            {if a.acked {
                view! {
                    " "
                    <span data-test="ack-marker">{tr(lang, "acknowledged")}</span>
                }
                    .into_any()
            } else if may_override {
                view! {
                    <ActionForm action=ack>
                        <input type="hidden" name="csrf" value=csrf />
                        <input type="hidden" name="port" value=port />
                        <input type="hidden" name="channel" value=channel />
                        <input type="hidden" name="kind" value=kind />
                        <input type="hidden" name="since_ms" value=since />
                        <input
                            type="text"
                            name="reason"
                            placeholder=tr(lang, "reason-short")
                            required
                            maxlength="500"
                            data-test="ack-reason"
                        />
                        <button type="submit" data-test="ack-submit">
                            {tr(lang, "acknowledge")}
                        </button>
                    </ActionForm>
                    {move || action_result(
                        ack.value().get(),
                        ack.pending().get(),
                        "ack-result",
                        |r| view! { {format!("acknowledged ({})", r.summary)} },
                    )}
                }
                    .into_any()
            } else {
                ().into_any()
            }}
        </li>
    }
}

/// The cluster's members: state, applied index, lag.
#[component]
pub fn Members(live: LivePort) -> impl IntoView {
    view! {
        <table data-test="members"><tbody>
            <tr>
                <th>"Node"</th>
                <th>"Address"</th>
                <th>"Membership"</th>
                <th>"State"</th>
                <th>"Applied"</th>
                <th>"Behind leader"</th>
                <th>"Channel"</th>
            </tr>
            {move || {
                live.snap
                    .with(|s| {
                        s.members
                            .iter()
                            .map(|m| {
                                view! {
                                    <tr
                                        data-test="node-row"
                                        data-node=m.id.to_string()
                                        data-membership=m.membership.clone()
                                        data-reachable=m.reachable.to_string()
                                        data-applied=m
                                            .applied_index
                                            .map(|a| a.to_string())
                                            .unwrap_or_default()
                                        data-lag=m.lag.map(|l| l.to_string()).unwrap_or_default()
                                    >
                                        <td>{m.id}</td>
                                        <td>{m.addr.clone()}</td>
                                        <td>{m.membership.clone()}</td>
                                        <td>
                                            {match &m.error {
                                                None => m.state.clone(),
                                                Some(e) => format!("unreachable: {e}"),
                                            }}
                                        </td>
                                        <td>
                                            {m.applied_index.map(|a| a.to_string()).unwrap_or_default()}
                                        </td>
                                        <td>
                                            {match (m.lag, s.last_log_index) {
                                                (Some(0), _) => "caught up".to_string(),
                                                (Some(l), Some(last)) => {
                                                    format!(
                                                        "{l} entries ({:.0}% caught up)",
                                                        100.0 * (last.saturating_sub(l)) as f64
                                                            / last.max(1) as f64,
                                                    )
                                                }
                                                (Some(l), None) => format!("{l} entries"),
                                                (None, _) => "?".to_string(),
                                            }}
                                        </td>
                                        <td>{m.channel.clone().unwrap_or_default()}</td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    })
            }}
        </tbody></table>
    }
}

/// The hall's last hour from the console's own ring buffer: clearances per minute (bars) and
/// the face decisions' latency p95 per minute (line), with the totals in words, and the link to
/// the port's Grafana dashboard when the console knows it.
#[component]
fn HallTrend(live: LivePort, hall: String) -> impl IntoView {
    const W: f64 = 360.0;
    const H: f64 = 48.0;
    let trend = {
        let hall = hall.clone();
        move || {
            live.snap.with(|s| {
                s.halls
                    .iter()
                    .find(|h| h.id == hall)
                    .map(|h| h.trend.clone())
                    .unwrap_or_default()
            })
        }
    };
    let bars = {
        let trend = trend.clone();
        move || {
            let t = trend();
            let max = t.iter().map(|p| p.clearances).max().unwrap_or(0).max(1) as f64;
            let w = W / t.len().max(1) as f64;
            t.iter()
                .enumerate()
                .filter(|(_, p)| p.clearances > 0)
                .map(|(i, p)| {
                    let h = (p.clearances as f64 / max * (H - 2.0)).max(1.0);
                    view! {
                        <rect
                            x=format!("{:.1}", i as f64 * w)
                            y=format!("{:.1}", H - h)
                            width=format!("{:.1}", (w - 1.0).max(1.0))
                            height=format!("{h:.1}")
                        />
                    }
                })
                .collect_view()
        }
    };
    let line = {
        let trend = trend.clone();
        move || {
            let t = trend();
            let max = t.iter().filter_map(|p| p.p95_ms).fold(1.0_f64, f64::max);
            let w = W / t.len().max(1) as f64;
            t.iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    p.p95_ms.map(|ms| {
                        format!(
                            "{:.1},{:.1}",
                            (i as f64 + 0.5) * w,
                            H - 1.0 - ms / max * (H - 2.0)
                        )
                    })
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let words = {
        let trend = trend.clone();
        move || {
            let t = trend();
            let total: u64 = t.iter().map(|p| p.clearances).sum();
            let worst = t
                .iter()
                .filter_map(|p| p.p95_ms)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            (total, worst)
        }
    };
    let dashboard = live.snap.with_untracked(|s| s.hall_dashboard(&hall));
    let lang = Lang::current();
    view! {
        <section class="trend" data-test="hall-trend"
            data-clearances=move || words.clone()().0.to_string()
        >
            <h2>{tr(lang, "trend-title")}</h2>
            <figure>
                <svg viewBox=format!("0 0 {W} {H}") width=W height=H role="img"
                    aria-label="clearances per minute">
                    <line x1="0" y1=H x2=W y2=H class="axis" />
                    <g class="bars">{bars}</g>
                </svg>
                <figcaption data-test="trend-clearances">
                    {let w = words.clone(); move || tr_with(lang, "trend-clearances", &[("count", w().0.into())])}
                </figcaption>
            </figure>
            <figure>
                <svg viewBox=format!("0 0 {W} {H}") width=W height=H role="img"
                    aria-label="face decision latency p95 per minute">
                    <line x1="0" y1=H x2=W y2=H class="axis" />
                    <polyline class="p95" points=line.clone() />
                    {move || {
                        line()
                            .split(' ')
                            .filter_map(|p| p.split_once(','))
                            .map(|(x, y)| {
                                view! { <circle class="p95-dot" cx=x.to_string() cy=y.to_string() r="2" /> }
                            })
                            .collect_view()
                    }}
                </svg>
                <figcaption data-test="trend-latency">
                    {let w = words.clone(); move || match w().1 {
                        Some(ms) => tr_with(lang, "trend-p95", &[("ms", format!("{ms:.0}").into())]),
                        None => tr(lang, "trend-no-decisions"),
                    }}
                </figcaption>
            </figure>
            <p class="muted">
                {match dashboard {
                    Some(href) => view! {
                        <a href=href data-test="grafana-link" target="_blank" rel="noopener noreferrer">
                            {tr(lang, "grafana-open")}
                        </a>
                    }
                    .into_any(),
                    None => view! {
                        <span data-test="grafana-link">
                            {tr(lang, "grafana-none")}
                        </span>
                    }
                    .into_any(),
                }}
            </p>
        </section>
    }
}
