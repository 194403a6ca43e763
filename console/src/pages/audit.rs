//! `/audit/{port}`: the port's audit trail read from a replica, its hash chain verified; a
//! break is shown at the top of the page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use super::loading;
use crate::api::fetch_audit;
use crate::app::ErrorBox;
use crate::dto::AuditView;
use crate::i18n::{Lang, tr, tr_with};

/// The audit page.
#[component]
pub fn AuditPage() -> impl IntoView {
    let params = use_params_map();
    let port = move || params.read().get("port").unwrap_or_default();
    let data = Resource::new(port, fetch_audit);
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(a) => view! { <Audit a=a /> }.into_any(),
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Whether `field` contains the filter's text (case-insensitive); an empty filter takes all.
fn matches(filter: &str, field: &str) -> bool {
    let f = filter.trim().to_lowercase();
    f.is_empty() || field.to_lowercase().contains(&f)
}

#[component]
fn Audit(a: AuditView) -> impl IntoView {
    let lang = Lang::current();
    let status = if a.break_at.is_some() { "broken" } else { "ok" };
    let by_actor = RwSignal::new(String::new());
    let by_action = RwSignal::new(String::new());
    let by_target = RwSignal::new(String::new());
    let by_time = RwSignal::new(String::new());
    let records = StoredValue::new(a.records.clone());
    let break_at = a.break_at.as_ref().map(|(s, _)| *s);
    let filter = |label: String, test: &'static str, signal: RwSignal<String>| {
        view! {
            <label>
                {label}
                " "
                <input
                    type="search"
                    data-test=test
                    prop:value=move || signal.get()
                    on:input=move |ev| signal.set(event_target_value(&ev))
                />
            </label>
            " "
        }
    };
    view! {
        <Title text=format!("{} · {}", tr(lang, "audit-title"), a.port) />
        <h1>{tr_with(lang, "audit-heading", &[("port", a.port.clone().into())])}</h1>
        <p>
            <A href=format!("/port/{}", a.port)>"port view"</A>
        </p>
        {match &a.break_at {
            Some((seq, why)) => view! {
                <div
                    class="banner-break"
                    data-test="audit-chain"
                    data-status=status
                    data-break-seq=seq.to_string()
                >
                    {format!(
                        "THE AUDIT CHAIN IS BROKEN at record {seq}: {why}. Records from {seq} on cannot be trusted; report this to the port's security officer."
                    )}
                </div>
            }
            .into_any(),
            None => view! {
                <p class="ok" data-test="audit-chain" data-status=status>
                    {format!(
                        "Chain intact: {} records verified, each signed by the client that made it (read from node {}).",
                        a.records.len(),
                        a.node,
                    )}
                </p>
            }
            .into_any(),
        }}
        <p class="filters" data-test="audit-filters">
            {filter(tr(lang, "filter-who"), "filter-actor", by_actor)}
            {filter(tr(lang, "filter-action"), "filter-action", by_action)}
            {filter(tr(lang, "filter-target"), "filter-target", by_target)}
            {filter(tr(lang, "filter-when"), "filter-time", by_time)}
        </p>
        <table data-test="audit-records"><tbody>
            <tr>
                <th>"#"</th>
                <th>{tr(lang, "audit-index")}</th>
                <th>{tr(lang, "orders-when")}</th>
                <th>{tr(lang, "orders-who")}</th>
                <th>{tr(lang, "audit-action")}</th>
                <th>{tr(lang, "audit-target")}</th>
                <th>{tr(lang, "audit-person")}</th>
                <th>{tr(lang, "audit-outcome")}</th>
                <th>{tr(lang, "orders-reason")}</th>
                <th>{tr(lang, "audit-signed-by")}</th>
                <th>{tr(lang, "audit-hash")}</th>
            </tr>
            {move || {
                records
                    .with_value(|rs| {
                        rs.iter()
                            .rev()
                            .filter(|r| {
                                matches(&by_actor.get(), &format!("{} {}", r.actor, r.role))
                                    && matches(&by_action.get(), &r.action)
                                    && matches(
                                        &by_target.get(),
                                        &format!("{} {}", r.target, r.person.as_deref().unwrap_or("")),
                                    )
                                    && matches(&by_time.get(), &r.at)
                            })
                            .cloned()
                            .collect::<Vec<_>>()
                    })
                    .into_iter()
                    .map(|r| {
                    let broken = break_at.is_some_and(|s| r.seq >= s);
                    view! {
                        <tr
                            data-test="audit-record"
                            data-seq=r.seq.to_string()
                            data-action=r.action.clone()
                            class=if broken { "error" } else { "" }
                        >
                            <td>{r.seq}</td>
                            <td>{r.index}</td>
                            <td>{r.at.clone()}</td>
                            <td>{format!("{} ({})", r.actor, r.role)}</td>
                            <td>{r.action.clone()}</td>
                            <td>{r.target.clone()}</td>
                            <td data-test="audit-person">{r.person.clone().unwrap_or_default()}</td>
                            <td
                                data-test="audit-outcome"
                                data-outcome=if r.refused.is_some() { "refused" } else { "applied" }
                                data-code=r.refused.clone().unwrap_or_default()
                            >
                                {match &r.refused {
                                    None => tr(lang, "audit-applied"),
                                    Some(code) => tr_with(lang, "audit-refused", &[("code", code.clone().into())]),
                                }}
                            </td>
                            <td class="reason">{r.reason.clone()}</td>
                            <td>{r.signed_by.clone()}</td>
                            <td>
                                <code>{r.hash.chars().take(16).collect::<String>()}</code>
                            </td>
                        </tr>
                    }
                })
                .collect_view()
            }}
        </tbody></table>
    }
}

/// `/console/audit`: the console's own audit log (accounts, ports, bundles, retirements), its
/// hash chain verified (port admins).
#[component]
pub fn ConsoleAuditPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| crate::api::console_audit());
    let lang = Lang::current();
    view! {
        <Title text=format!("{} · Clearway", tr(lang, "console-audit-title")) />
        <h1>{tr(lang, "console-audit-title")}</h1>
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(a) => view! { <ConsoleAudit a=a /> }.into_any(),
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ConsoleAudit(a: crate::dto::ConsoleAuditView) -> impl IntoView {
    let lang = Lang::current();
    let status = if a.break_at.is_some() { "broken" } else { "ok" };
    let break_at = a.break_at.as_ref().map(|(s, _)| *s);
    view! {
        {match &a.break_at {
            Some((seq, why)) => view! {
                <div class="banner-break" data-test="audit-chain" data-status=status data-break-seq=seq.to_string()>
                    {tr_with(lang, "console-audit-broken", &[("seq", (*seq).into()), ("why", why.clone().into())])}
                </div>
            }
            .into_any(),
            None => view! {
                <p class="ok" data-test="audit-chain" data-status=status>
                    {tr_with(lang, "console-audit-intact", &[("count", a.total.into())])}
                </p>
            }
            .into_any(),
        }}
        <table data-test="audit-records"><tbody>
            <tr>
                <th>"#"</th>
                <th>{tr(lang, "orders-when")}</th>
                <th>{tr(lang, "orders-who")}</th>
                <th>{tr(lang, "audit-action")}</th>
                <th>{tr(lang, "audit-target")}</th>
                <th>{tr(lang, "orders-reason")}</th>
                <th>{tr(lang, "audit-hash")}</th>
            </tr>
            {a.records
                .into_iter()
                .rev()
                .map(|r| {
                    let broken = break_at.is_some_and(|s| r.seq >= s);
                    let action = r.action.clone();
                    view! {
                        <tr
                            data-test="audit-record"
                            data-seq=r.seq.to_string()
                            data-action=action
                            class=if broken { "error" } else { "" }
                        >
                            <td>{r.seq}</td>
                            <td>{r.at}</td>
                            <td>{format!("{} ({})", r.actor, r.role)}</td>
                            <td>{r.action}</td>
                            <td>{r.target}</td>
                            <td class="reason">{r.reason}</td>
                            <td><code>{r.hash.chars().take(16).collect::<String>()}</code></td>
                        </tr>
                    }
                })
                .collect_view()}
        </tbody></table>
    }
}
