//! `/desk`: the service desk, one task per page (`?task=find|consent|cancel`) — find a
//! registration by document, record a guardian's consent for a minor, cancel a registration
//! (reached from the registration found, or by person id) and watch every replica confirm the
//! erasure; the service locations and their office hours.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::loading;
use crate::api::{
    CancelRegistration, FindRegistration, GuardianConsent, desk_ports, fetch_cancel_progress,
};
use crate::app::{ErrorBox, ViewerResource, action_result};
use crate::dto::{
    ApiError, CATEGORIES, CancelProgress, DOCUMENT_KINDS, RegistrationView, SERVICE_LOCATIONS,
    Viewer, WriteReceipt,
};
use crate::i18n::{Lang, tr};

/// The service desk.
#[component]
pub fn DeskPage() -> impl IntoView {
    let ports = Resource::new(|| (), |_| desk_ports());
    let viewer = expect_context::<ViewerResource>();
    let lang = Lang::current();
    view! {
        <Title text=format!("{} · Clearway", tr(lang, "desk-title")) />
        <h1>{tr(lang, "desk-title")}</h1>
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match (viewer.await, ports.await) {
                    (_, Err(e)) => view! { <ErrorBox error=e /> }.into_any(),
                    (Ok(Some(v)), Ok(ports)) => view! { <Desk viewer=v ports=ports /> }.into_any(),
                    _ => {
                        view! {
                            <ErrorBox error=ApiError::new(401, "unauthenticated", "sign in first") />
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
        <h2>{tr(lang, "desk-locations")}</h2>
        <p>{tr(Lang::current(), "desk-locations-help")}</p>
        <table data-test="service-locations"><tbody>
            <tr>
                <th>{tr(Lang::current(), "desk-location")}</th>
                <th>{tr(Lang::current(), "desk-phone")}</th>
                <th>{tr(Lang::current(), "desk-hours")}</th>
            </tr>
            {SERVICE_LOCATIONS
                .iter()
                .map(|l| {
                    view! {
                        <tr data-test="service-location">
                            <td>{l.name}</td>
                            <td>{l.phone}</td>
                            <td>{l.hours}</td>
                        </tr>
                    }
                })
                .collect_view()}
        </tbody></table>
    }
}

#[component]
fn PortSelect(
    ports: Vec<(String, String)>,
    test: &'static str,
    #[prop(optional)] selected: String,
) -> impl IntoView {
    view! {
        <label>
            {tr(Lang::current(), "ports-port")} " "
            <select name="port" data-test=test>
                {ports
                    .into_iter()
                    .map(|(id, name)| {
                        let chosen = id == selected;
                        view! { <option value=id selected=chosen>{name}</option> }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

/// The desk's tasks (query value; the tab's message is `desk-task-<task>`).
const TASKS: [&str; 3] = ["find", "consent", "cancel"];

#[component]
fn Desk(viewer: Viewer, ports: Vec<(String, String)>) -> impl IntoView {
    let find = ServerAction::<FindRegistration>::new();
    let consent = ServerAction::<GuardianConsent>::new();
    let cancel = ServerAction::<CancelRegistration>::new();
    let csrf = StoredValue::new(viewer.csrf.clone());
    let ports = StoredValue::new(ports);
    // The port of the last cancellation, for its progress.
    let cancel_port = RwSignal::new(String::new());
    // A lookup shown before a cancellation is stale after it: cleared.
    Effect::new(move |_| {
        if matches!(cancel.value().get(), Some(Ok(_))) {
            find.value().set(None);
        }
    });
    let query = use_query_map();
    let task = Memo::new(move |_| {
        query.with(|q| match q.get("task").as_deref() {
            Some("consent") => "consent",
            Some("cancel") => "cancel",
            _ => "find",
        })
    });
    let wanted = move |key: &str| query.with(|q| q.get(key).unwrap_or_default());
    // The port of the last lookup, for the link to cancel what it found.
    let find_port = RwSignal::new(String::new());
    let cancel_person = NodeRef::<leptos::html::Input>::new();
    let cancel_reason = NodeRef::<leptos::html::Textarea>::new();
    // An irreversible cancellation repeats who and why before it is sent.
    let confirm_cancel = move |ev: leptos::ev::MouseEvent| {
        let person = cancel_person.get().map(|i| i.value()).unwrap_or_default();
        let reason = cancel_reason.get().map(|r| r.value()).unwrap_or_default();
        let question = format!(
            "Cancel the registration of {}? The person is erased on every replica of the port; \
             this cannot be undone.\nReason: {}",
            person.trim(),
            reason.trim()
        );
        if !person.trim().is_empty() && !reason.trim().is_empty() && !super::confirmed(&question) {
            ev.prevent_default();
        }
    };
    let first_port = StoredValue::new(
        ports.with_value(|p| p.first().map(|(id, _)| id.clone()).unwrap_or_default()),
    );
    let lang = Lang::current();
    let looked_up_port = move || {
        let p = find_port.get_untracked();
        if p.is_empty() {
            first_port.get_value()
        } else {
            p
        }
    };
    view! {
        <nav class="tabs" data-test="desk-tasks" aria-label="Service desk tasks">
            {TASKS
                .into_iter()
                .map(|id| {
                    let label = tr(lang, &crate::dto::code_id("desk-task", id));
                    view! {
                        <A
                            href=format!("/desk?task={id}")
                            attr:data-test=format!("desk-task-{id}")
                            attr:aria-current=move || (task.get() == id).then_some("page")
                        >
                            {label}
                        </A>
                    }
                })
                .collect_view()}
        </nav>
        {move || (task.get() == "find").then(|| view! {
        <h2>{tr(lang, "desk-find")}</h2>
        <ActionForm action=find>
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <span on:change=move |ev| find_port.set(event_target_value(&ev))>
                <PortSelect ports=ports.get_value() test="find-port" selected=find_port.get_untracked() />
            </span>
            <label>
                {tr(Lang::current(), "desk-document")} " "
                <select name="kind" data-test="find-kind">
                    {DOCUMENT_KINDS
                        .iter()
                        .map(|(k, label)| view! { <option value=*k>{*label}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                {tr(Lang::current(), "desk-number")} " "
                <input type="text" name="number" required maxlength="32" data-test="find-number" />
            </label>
            <button type="submit" data-test="find-submit">
                {tr(Lang::current(), "desk-find-submit")}
            </button>
        </ActionForm>
        {move || action_result(
            find.value().get(),
            find.pending().get(),
            "find-result",
            move |r: Option<RegistrationView>| match r {
                None => view! { <p data-test="not-registered">"No registration with this document."</p> }.into_any(),
                Some(r) => {
                    let href = format!("/desk?task=cancel&person={}&port={}", r.person, looked_up_port());
                    view! {
                        <Registration r=r />
                        <p>
                            <A href=href attr:data-test="cancel-this">
                                {tr(lang, "desk-cancel-this")}
                            </A>
                        </p>
                    }
                    .into_any()
                }
            },
        )}
        }.into_any())}

        {move || (task.get() == "consent").then(|| view! {
        <h2>{tr(lang, "desk-consent")}</h2>
        <p class="muted">
            {tr(Lang::current(), "desk-consent-help")}
        </p>
        <ActionForm action=consent>
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <PortSelect ports=ports.get_value() test="consent-port" />
            <fieldset>
                <legend>{tr(Lang::current(), "desk-minor")}</legend>
                <label>
                    {tr(Lang::current(), "desk-name-doc")} " "
                    <input type="text" name="name" required maxlength="200" data-test="consent-name" />
                </label>
                <label>
                    {tr(Lang::current(), "desk-dob")} " "
                    <input type="date" name="date_of_birth" required data-test="consent-dob" />
                </label>
                <label>
                    {tr(Lang::current(), "desk-category")} " "
                    <select name="category" data-test="consent-category">
                        {CATEGORIES
                            .iter()
                            .map(|(k, label)| view! { <option value=*k>{*label}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    {tr(Lang::current(), "desk-document")} " "
                    <select name="document_kind" data-test="consent-document-kind">
                        {DOCUMENT_KINDS
                            .iter()
                            .map(|(k, label)| view! { <option value=*k>{*label}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    {tr(Lang::current(), "desk-doc-number")} " "
                    <input
                        type="text"
                        name="document_number"
                        required
                        maxlength="32"
                        data-test="consent-document-number"
                    />
                </label>
                <label>
                    {tr(Lang::current(), "desk-valid-from")} " "
                    <input type="date" name="valid_from" required data-test="consent-valid-from" />
                </label>
                <label>
                    {tr(Lang::current(), "desk-valid-until")} " "
                    <input type="date" name="valid_until" required data-test="consent-valid-until" />
                </label>
            </fieldset>
            <fieldset>
                <legend>{tr(Lang::current(), "desk-guardian")}</legend>
                <label>
                    {tr(Lang::current(), "users-name")} " "
                    <input
                        type="text"
                        name="guardian_name"
                        required
                        maxlength="200"
                        data-test="consent-guardian-name"
                    />
                </label>
                <label>
                    {tr(Lang::current(), "desk-guardian-doc")} " "
                    <input
                        type="text"
                        name="guardian_document"
                        required
                        maxlength="200"
                        data-test="consent-guardian-document"
                    />
                </label>
                <label>
                    {tr(Lang::current(), "desk-proof")} " "
                    <input
                        type="text"
                        name="relationship_proof"
                        required
                        maxlength="200"
                        data-test="consent-relationship-proof"
                    />
                </label>
                <label>
                    {tr(Lang::current(), "desk-service-location")} " "
                    <select name="service_location" data-test="consent-location">
                        {SERVICE_LOCATIONS
                            .iter()
                            .enumerate()
                            .map(|(i, l)| view! { <option value=i.to_string()>{l.name}</option> })
                            .collect_view()}
                    </select>
                </label>
            </fieldset>
            <label>
                {tr(Lang::current(), "reason-required")} " "
                <textarea name="reason" required maxlength="500" rows="2" data-test="consent-reason"></textarea>
            </label>
            <button type="submit" data-test="consent-submit">
                {tr(Lang::current(), "desk-record-consent")}
            </button>
        </ActionForm>
        {move || action_result(
            consent.value().get(),
            consent.pending().get(),
            "consent-result",
            |r: WriteReceipt| view! { <span data-test="consent-receipt">{r.summary}</span> },
        )}
        }.into_any())}

        {move || (task.get() == "cancel").then(|| {
        let person = wanted("person");
        let port = wanted("port");
        if !port.is_empty() && cancel_port.get_untracked().is_empty() {
            cancel_port.set(port.clone());
        }
        view! {
        <h2>{tr(lang, "desk-cancel")}</h2>
        <p class="muted">
            {tr(Lang::current(), "desk-cancel-help")}
        </p>
        <ActionForm action=cancel>
            <input type="hidden" name="csrf" value=csrf.get_value() />
            <span on:change=move |ev| cancel_port.set(event_target_value(&ev))>
                <PortSelect ports=ports.get_value() test="cancel-port" selected=port />
            </span>
            <label>
                {tr(Lang::current(), "desk-person-id")} " "
                <input
                    node_ref=cancel_person
                    type="text"
                    name="person"
                    required
                    pattern="P[0-9]+"
                    placeholder="P00000001"
                    value=person
                    data-test="cancel-person"
                />
            </label>
            <fieldset>
                <legend>{tr(Lang::current(), "desk-cancel-in-person")}</legend>
                <label>
                    {tr(Lang::current(), "desk-service-location")} " "
                    <select name="service_location" data-test="cancel-location">
                        {SERVICE_LOCATIONS
                            .iter()
                            .enumerate()
                            .map(|(i, l)| view! { <option value=i.to_string()>{l.name}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    {tr(Lang::current(), "desk-presented")} " "
                    <select name="document_kind" data-test="cancel-document-kind">
                        {DOCUMENT_KINDS
                            .iter()
                            .map(|(k, label)| view! { <option value=*k>{*label}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    {tr(Lang::current(), "desk-doc-number")} " "
                    <input
                        type="text"
                        name="document_number"
                        required
                        maxlength="32"
                        autocomplete="off"
                        data-test="cancel-document-number"
                    />
                </label>
            </fieldset>
            <fieldset>
                <legend>{tr(Lang::current(), "desk-cancel-guardian")}</legend>
                <label>
                    {tr(Lang::current(), "users-name")} " "
                    <input type="text" name="guardian_name" maxlength="200" data-test="cancel-guardian-name" />
                </label>
                <label>
                    {tr(Lang::current(), "desk-guardian-doc")} " "
                    <input type="text" name="guardian_document" maxlength="200" data-test="cancel-guardian-document" />
                </label>
                <label>
                    {tr(Lang::current(), "desk-proof")} " "
                    <input type="text" name="relationship_proof" maxlength="200" data-test="cancel-relationship-proof" />
                </label>
            </fieldset>
            <label>
                {tr(Lang::current(), "reason-required")} " "
                <textarea
                    node_ref=cancel_reason
                    name="reason"
                    required
                    maxlength="500"
                    rows="2"
                    data-test="cancel-reason"
                ></textarea>
            </label>
            <button type="submit" data-test="cancel-submit" on:click=confirm_cancel>
                {tr(Lang::current(), "desk-cancel-submit")}
            </button>
        </ActionForm>
        {move || {
            let csrf = csrf.get_value();
            let first = ports.with_value(|p| p.first().map(|(id, _)| id.clone()).unwrap_or_default());
            action_result(
                cancel.value().get(),
                cancel.pending().get(),
                "cancel-result",
                move |r: WriteReceipt| {
                    let port = cancel_port.get_untracked();
                    let port = if port.is_empty() { first } else { port };
                    view! {
                        <p data-test="cancel-receipt">{r.summary.clone()}</p>
                        <Confirmation csrf=csrf port=port index=r.index />
                    }
                },
            )
        }}
        }.into_any()})}
    }
}

#[component]
fn Registration(r: RegistrationView) -> impl IntoView {
    view! {
        <table data-test="registration" data-person=r.person.clone() data-status=r.status.clone()><tbody>
            <tr>
                <th>{tr(Lang::current(), "desk-person-id")}</th>
                <td data-test="person-id">{r.person.clone()}</td>
            </tr>
            <tr>
                <th>{tr(Lang::current(), "users-name")}</th>
                <td>{r.name.clone()}</td>
            </tr>
            <tr>
                <th>{tr(Lang::current(), "desk-dob")}</th>
                <td>{r.date_of_birth.clone()}</td>
            </tr>
            <tr>
                <th>{tr(Lang::current(), "desk-category")}</th>
                <td>{r.category.replace('_', " ")}</td>
            </tr>
            <tr>
                <th>{tr(Lang::current(), "desk-doc-valid-until")}</th>
                <td>{r.document_valid_until.clone()}</td>
            </tr>
            <tr>
                <th>{tr(Lang::current(), "desk-registered-with")}</th>
                <td>
                    {[
                        r.macao_registered.then_some("Macao"),
                        r.mainland_registered.then_some("the Mainland"),
                    ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" and ")}
                </td>
            </tr>
            <tr>
                <th>{tr(Lang::current(), "desk-task-consent")}</th>
                <td data-test="guardian-consent">
                    {match &r.guardian_consent {
                        Some((g, proof, place)) => format!("{g}; proof {proof}; at {place}"),
                        None => "none".into(),
                    }}
                </td>
            </tr>
            <tr>
                <th>{tr(Lang::current(), "desk-status")}</th>
                <td>{r.status.clone()}</td>
            </tr>
        </tbody></table>
    }
}

/// Every replica's confirmation of a cancellation, polled every second until complete.
#[component]
fn Confirmation(csrf: String, port: String, index: u64) -> impl IntoView {
    let tick = RwSignal::new(0u32);
    let progress = Resource::new(
        move || tick.get(),
        move |_| fetch_cancel_progress(csrf.clone(), port.clone(), index),
    );
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(
            move || {
                let done = progress
                    .get_untracked()
                    .is_some_and(|p| p.as_ref().is_ok_and(|p: &CancelProgress| p.complete));
                if !done {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(1),
        ) {
            on_cleanup(move || h.clear());
        }
    });
    view! {
        <Transition fallback=super::loading>
            {move || Suspend::new(async move {
                match progress.await {
                    Ok(p) => view! { <ProgressTable p=p /> }.into_any(),
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ProgressTable(p: CancelProgress) -> impl IntoView {
    view! {
        <div data-test="cancel-progress" data-complete=p.complete.to_string() data-index=p.index.to_string()>
            <p>
                {if p.complete {
                    {tr(Lang::current(), "desk-cancel-done")}
                } else {
                    {tr(Lang::current(), "desk-cancel-waiting")}
                }}
            </p>
            <table><tbody>
                <tr>
                    <th>{tr(Lang::current(), "desk-node")}</th>
                    <th>{tr(Lang::current(), "desk-applied-index")}</th>
                    <th>{tr(Lang::current(), "desk-applied")}</th>
                    <th>{tr(Lang::current(), "desk-erased")}</th>
                </tr>
                {p
                    .replicas
                    .iter()
                    .map(|r| {
                        view! {
                            <tr
                                data-test="replica"
                                data-node=r.node.to_string()
                                data-applied=r.applied.to_string()
                                data-shredded=r.shredded.to_string()
                            >
                                <td>{r.node}</td>
                                <td>
                                    {if r.reachable {
                                        r.applied_index.map(|a| a.to_string()).unwrap_or_default()
                                    } else {
                                        "unreachable".into()
                                    }}
                                </td>
                                <td>{if r.applied { "yes" } else { "not yet" }}</td>
                                <td>{if r.shredded { "yes" } else { "not yet" }}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody></table>
        </div>
    }
}
